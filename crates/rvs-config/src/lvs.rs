//! Piranha `lvs.cf` → rvs configuration: what each key means, its default, and where it
//! lands ([`Config`], the network facts of [`LvsCf`], or data kept for later).
//!
//! Defaults follow Piranha's parser (`lvsconfig.c`): a virtual is inactive unless
//! `active = 1`, protocol tcp, port 80, scheduler wlc, health-check timeout 10 and reentry
//! 180; a server's weight is 1 and its port the virtual's port as set when the `server`
//! block starts; `pmask = 255.255.255.255` means one client (/32).
//!
//! Unknown keys: Piranha refuses them, keepalived ignores them; rvs warns and goes on,
//! except when the key is within two edits of a key valid in that block (`shceduler`):
//! that is clearly a typo, and ignoring it would silently change behaviour, so it is an
//! error naming the intended key. A key valid only in another block (`weight` in a
//! `virtual`) is a warning. Unknown *blocks* are errors: ignoring one would drop services.
//!
//! What lvsd does with the virtuals, rvs does (lvsd.c startVirtualServer()): an inactive
//! virtual is skipped, and so is one without an `address` yet (the Piranha tool writes a new
//! virtual without one), each with a warning. A later active virtual with the key of an
//! earlier one (the same `fwmark`, Red Hat's multi-port recipe, or the same address and
//! port) joins the earlier one's service, which keeps its scheduler, persistence and
//! servers; its health checks are added per port (see `merge_fwmark_virtual`). `virtual`
//! and `failover` blocks may share a file; `service` says which kind runs. A file with no
//! active service of that kind parses, but [`crate::failover::failover_from_lvs_cf`]
//! refuses it as pulse refuses to start. Keys that need no action (`serial_no`,
//! `debug_level`, `hard_shutdown`, ...) are accepted without a word.
//!
//! The redundancy keys (pulse's heartbeat, the sync daemon) are kept in [`Failover`] and
//! mapped by [`crate::failover`]. Every key rvs reads but does not act on is kept as data
//! and reported as a warning at its location.
//! This module does no I/O and resolves no host names.
//!
//! The nanny keys of each active virtual become its health monitoring ([`LvsCf::health`]),
//! one check per active server, as Piranha's `lvsd` starts one `nanny` per server:
//! - `send_program` (with `expect_program`, else `expect`, as the expected output) runs a
//!   program; otherwise `send`/`expect` talk to the server (`expect = "*"`: any reply;
//!   `use_regex = 1`: a regular expression; else a prefix), over UDP for `protocol = udp`;
//!   with neither, nanny's default: on port 80, send `GET / HTTP/1.0\r\n\r\n` and expect
//!   `HTTP`, on other ports connect only (UDP: send nothing, any reply or none);
//! - every `timeout` seconds, each check allowed `timeout` seconds, no retries; one failure
//!   takes the server out (`quiesce_server = 1`: weight 0 instead), `reentry / timeout`
//!   successes in a row bring it back (at least one), with nanny's slow start;
//! - `load_monitor` (any of uptime, rup, ruptime) feeds the server's load back into its
//!   weight, read from the rvs real-server agent every 20 s, up to 4 times the weight;
//! - `sorry_server` comes in (on the virtual's port, by the network's method) while no real
//!   server is up;
//! - a fwmark virtual's servers are checked on the virtual's `port`;
//! - rvs extension: `check_via_vip = 1` (direct routing and tunnelling only) sends each
//!   check to the VIP through the forwarding path to the server, proving the server answers
//!   for the VIP, instead of to the server's own address.

use core::ops::Range;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use core::time::Duration;

use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, Expect, HealthConfig, OnFailure,
    RealServerHealth, ServiceHealth, SorryServer,
};
use rvs_core::model::{
    Config, ConfigError, Family, ForwardMethod, FwmarkRule, LocalPool, Persistence, Prefix,
    Protocol, RealServerConfig, SchedulerKind, ServiceKey, Timeouts, TunnelCsum, TunnelKind,
    VirtualServiceConfig,
};

use crate::diag::{Diagnostic, Place, Severity};
use crate::failover::FosServiceSetup;
use crate::locate::{self, RealServerPart, ServicePart, Target};
use crate::syntax::{self, Block, KeyStmt, Stmt, Value};

type Span = Range<usize>;

/// The global `network` setting: how packets reach the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// `network = nat` (the default): masquerading through the `nat_router`.
    #[default]
    Nat,
    /// `network = direct`: direct routing.
    Direct,
    /// `network = tunnel`: IP-in-IP tunnelling.
    Tunnel,
    /// `network = fullnat` (rvs extension): source and destination NAT, local addresses
    /// from `fullnat_local` and `fullnat_ports`.
    FullNat,
}

impl Network {
    /// The forwarding method every real server gets.
    pub fn method(self) -> ForwardMethod {
        match self {
            Network::Nat => ForwardMethod::Masq,
            Network::Direct => ForwardMethod::DirectRoute,
            Network::Tunnel => ForwardMethod::Tunnel {
                kind: TunnelKind::Ipip,
                csum: TunnelCsum::NoCsum,
            },
            Network::FullNat => ForwardMethod::FullNat,
        }
    }
}

/// A floating address the active director brings up on a device alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (`vip_nmask` / `nat_nmask`; /32 or /128 when unset or `0.0.0.0`).
    pub prefix: u8,
    /// The device: `eth0` of `eth0:1`.
    pub device: String,
    /// The alias label as written: `eth0:1`.
    pub label: String,
}

/// `service = lvs | fos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServiceType {
    /// Load balancing with virtual servers (the default).
    #[default]
    Lvs,
    /// Failover services (`failover` blocks).
    Fos,
}

/// The redundancy, heartbeat and sync keys (pulse's), with Piranha's defaults, as written;
/// what rvs runs from them is [`crate::failover::failover_from_lvs_cf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// `service` [lvs].
    pub service: ServiceType,
    /// `primary`: the primary director's public address.
    pub primary: Option<IpAddr>,
    /// `primary_private`: the primary's address on the private (heartbeat) network.
    pub primary_private: Option<IpAddr>,
    /// `backup`: the backup director's public address.
    pub backup: Option<IpAddr>,
    /// `backup_private`: the backup's private address.
    pub backup_private: Option<IpAddr>,
    /// `backup_active` [0]: whether a backup director is configured.
    pub backup_active: bool,
    /// `heartbeat` [0]: whether heartbeats are sent.
    pub heartbeat: bool,
    /// `heartbeat_port` [539].
    pub heartbeat_port: u16,
    /// `keepalive` [2]: seconds between heartbeats.
    pub keepalive: u32,
    /// `deadtime` [5]: seconds of silence before failing over.
    pub deadtime: u32,
    /// `monitor_links` [0].
    pub monitor_links: bool,
    /// `syncdaemon` [0]: run the connection sync daemon.
    pub syncdaemon: bool,
    /// `syncd_iface` [eth0].
    pub syncd_iface: String,
    /// `syncd_id` [0].
    pub syncd_id: u32,
    /// `active_cmd`: run on becoming active.
    pub active_cmd: Option<String>,
    /// `inactive_cmd`: run on becoming inactive.
    pub inactive_cmd: Option<String>,
    /// Where each of these keys was written (its value, or the key when it has none), by
    /// key name; [`SERVICES_PLACE`]: the first `virtual` (or, with `service = fos`,
    /// `failover`) block.
    pub places: BTreeMap<String, Place>,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            service: ServiceType::Lvs,
            primary: None,
            primary_private: None,
            backup: None,
            backup_private: None,
            backup_active: false,
            heartbeat: false,
            heartbeat_port: 539,
            keepalive: 2,
            deadtime: 5,
            monitor_links: false,
            syncdaemon: false,
            syncd_iface: "eth0".to_string(),
            syncd_id: 0,
            active_cmd: None,
            inactive_cmd: None,
            places: BTreeMap::new(),
        }
    }
}

/// `load_monitor`: how nanny reads a real server's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadMonitor {
    /// `uptime` over rsh/ssh.
    Uptime,
    /// `rup`.
    Rup,
    /// `ruptime`.
    Ruptime,
}

/// A virtual's health-check keys (nanny's) as written, with Piranha's defaults. What rvs
/// does with them is [`LvsCf::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `send`: the string sent to the server, escapes resolved.
    pub send: Option<String>,
    /// `expect`: the reply's expected prefix (`*` = anything).
    pub expect: Option<String>,
    /// `use_regex` [0]: `expect` is a regular expression.
    pub use_regex: bool,
    /// `send_program`: a program to run instead (`%h` = server address, `%p` = port).
    pub send_program: Option<String>,
    /// `expect_program`: the program's expected output.
    pub expect_program: Option<String>,
    /// `timeout` [10]: seconds between checks.
    pub timeout: u32,
    /// `reentry` [180]: seconds a server must stay healthy to be readmitted.
    pub reentry: u32,
    /// `quiesce_server` [0]: set weight 0 instead of removing a failed server.
    pub quiesce_server: bool,
    /// `load_monitor` [none].
    pub load_monitor: Option<LoadMonitor>,
    /// `client_monitor` [/usr/sbin/nanny] (rvs checks by itself; not acted on).
    pub client_monitor: String,
    /// `check_via_vip` [0] (rvs extension): check each server through the VIP.
    pub check_via_vip: bool,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            send: None,
            expect: None,
            use_regex: false,
            send_program: None,
            expect_program: None,
            timeout: 10,
            reentry: 180,
            quiesce_server: false,
            load_monitor: None,
            client_monitor: "/usr/sbin/nanny".to_string(),
            check_via_vip: false,
        }
    }
}

/// A `server NAME { ... }` block as written, active or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// The block's name.
    pub name: String,
    /// `active` [0 in Piranha's parser; see [`LvsCf`]]: inactive servers are not in the
    /// [`Config`].
    pub active: bool,
    /// `address`.
    pub addr: IpAddr,
    /// `port` [the virtual's port].
    pub port: u16,
    /// `weight` [1].
    pub weight: u32,
}

/// A `virtual NAME { ... }` block as written, active or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// The block's name.
    pub name: String,
    /// `active` [0]: inactive virtuals are not in the [`Config`].
    pub active: bool,
    /// Index of this virtual's service in [`LvsCf::config`]`.services` (None if inactive).
    pub service: Option<usize>,
    /// The service as it would be configured (also for inactive virtuals).
    pub key: ServiceKey,
    /// `port` [80]: also the port health checks use for fwmark services.
    pub port: u16,
    /// The VIP (`address` + `vip_nmask`).
    pub vip: Vip,
    /// `protocol` [tcp].
    pub protocol: Protocol,
    /// `sorry_server`: where to send clients when no real server is up.
    pub sorry_server: Option<IpAddr>,
    /// Health-check keys.
    pub health: HealthCheck,
    /// Every `server` block, active or not.
    pub servers: Vec<RealServer>,
    /// For a fwmark virtual: the classifier rules from `fwmark_ports` (rvs extension) —
    /// the virtual's protocol, its address, each port or range — that give packets its mark
    /// (what Piranha leaves to `iptables -t mangle ... -j MARK`).
    pub fwmark_rules: Vec<FwmarkRule>,
}

/// A `failover NAME { ... }` block as written (what rvs runs with `service = fos` is
/// [`LvsCf::fos_services`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverService {
    /// The block's name.
    pub name: String,
    /// Its keys and values (multiple values joined by one space), in file order.
    pub keys: Vec<(String, String)>,
}

/// A parsed lvs.cf: the forwarding [`Config`] plus what the daemon needs around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsCf {
    /// Every active virtual with its active servers, validated.
    pub config: Config,
    /// The global `network` setting.
    pub network: Network,
    /// One VIP per distinct address and label of the active virtuals, in file order.
    pub vips: Vec<Vip>,
    /// `nat_router = IP dev:n` with `nat_nmask`: the real servers' gateway.
    pub nat_router: Option<Vip>,
    /// Redundancy and heartbeat keys.
    pub failover: Failover,
    /// Health monitoring of the active virtuals (nanny's keys, the sorry server), one entry
    /// per active virtual that has an active server or a sorry server.
    pub health: HealthConfig,
    /// Every virtual as written, active or not.
    pub virtuals: Vec<VirtualServer>,
    /// `failover` blocks.
    pub failover_services: Vec<FailoverService>,
    /// With `service = fos`: the active `failover` blocks that have an address, as fos
    /// runs them (empty with `service = lvs`).
    pub fos_services: Vec<FosServiceSetup>,
    /// Keys rvs does not act on (yet), unknown keys and other non-fatal findings.
    pub warnings: Vec<Diagnostic>,
    /// Each active fwmark virtual's mark and where its `fwmark` is written: the daemon warns
    /// there when neither `fwmark_ports` nor the host's MARK rules give packets that mark.
    pub fwmark_places: Vec<(u32, Place)>,
}

/// What rvs does with a key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// It shapes the configuration.
    Applied,
    /// Read by Piranha, with nothing for rvs (or the operator) to do: accepted silently.
    NoAction,
}

/// The key of [`Failover::places`] for the services (`virtual` or `failover` blocks, as
/// `service` says): the first such block, or the file's start when there is none.
pub const SERVICES_PLACE: &str = "<services>";

/// The global keys whose places [`Failover::places`] keeps.
const FAILOVER_KEYS_GLOBAL: &[&str] = &[
    "service",
    "primary",
    "primary_private",
    "backup",
    "backup_private",
    "backup_active",
    "heartbeat",
    "heartbeat_port",
    "keepalive",
    "deadtime",
    "monitor_links",
    "syncdaemon",
    "syncd_iface",
    "syncd_id",
    "active_cmd",
    "inactive_cmd",
];

const GLOBAL_KEYS: &[(&str, Use)] = &[
    ("service", Use::Applied),
    ("network", Use::Applied),
    ("nat_router", Use::Applied),
    ("nat_nmask", Use::Applied),
    ("tcp_timeout", Use::Applied),
    ("tcpfin_timeout", Use::Applied),
    ("udp_timeout", Use::Applied),
    ("fullnat_local", Use::Applied),
    ("fullnat_ports", Use::Applied),
    ("primary", Use::Applied),
    ("primary_private", Use::Applied),
    ("backup", Use::Applied),
    ("backup_private", Use::Applied),
    ("backup_active", Use::Applied),
    ("heartbeat", Use::Applied),
    ("heartbeat_port", Use::Applied),
    ("keepalive", Use::Applied),
    ("deadtime", Use::Applied),
    ("monitor_links", Use::Applied),
    ("syncdaemon", Use::Applied),
    ("syncd_iface", Use::Applied),
    ("syncd_id", Use::Applied),
    ("active_cmd", Use::Applied),
    ("inactive_cmd", Use::Applied),
    // Piranha's tool increments it on each save; nothing reads it.
    ("serial_no", Use::NoAction),
    // lvsd.c startServices(): whether lvsd shuts down when a nanny process dies; rvs's
    // checks are not processes that can die.
    ("hard_shutdown", Use::NoAction),
    // Parsed by lvsconfig.c, used by neither pulse.c, lvsd.c nor nanny.c (rsh_command:
    // load_monitor's remote shell, which rvs replaces with its agent).
    ("primary_shared", Use::NoAction),
    ("backup_shared", Use::NoAction),
    ("rsh_command", Use::NoAction),
    ("debug_level", Use::NoAction),
    ("ipvsadm", Use::NoAction),
    ("sync", Use::NoAction),
    ("reservation_conflict_action", Use::NoAction),
];

const VIRTUAL_KEYS: &[(&str, Use)] = &[
    ("active", Use::Applied),
    ("address", Use::Applied),
    ("vip_nmask", Use::Applied),
    ("fwmark", Use::Applied),
    ("fwmark_ports", Use::Applied),
    ("protocol", Use::Applied),
    ("port", Use::Applied),
    ("scheduler", Use::Applied),
    ("persistent", Use::Applied),
    ("pmask", Use::Applied),
    ("sorry_server", Use::Applied),
    ("send", Use::Applied),
    ("expect", Use::Applied),
    ("use_regex", Use::Applied),
    ("send_program", Use::Applied),
    ("expect_program", Use::Applied),
    ("timeout", Use::Applied),
    ("reentry", Use::Applied),
    ("quiesce_server", Use::Applied),
    ("load_monitor", Use::Applied),
    ("check_via_vip", Use::Applied),
    // Warned only when it names another program than nanny (see `virtual_block`).
    ("client_monitor", Use::Applied),
];

const SERVER_KEYS: &[(&str, Use)] = &[
    ("address", Use::Applied),
    ("active", Use::Applied),
    ("weight", Use::Applied),
    ("port", Use::Applied),
    ("nmask", Use::NoAction),
];

// fos.c reads `address`, `active`, `vip_nmask` (pulse's ARPs), `port`, `protocol`, `timeout`,
// `send`, `expect`, `send_program`, `start_cmd` and `stop_cmd`; it passes no
// `expect_program` and no `use_regex` to nanny, and `heartbeat` is pulse's global key.
const FAILOVER_KEYS: &[(&str, Use)] = &[
    ("address", Use::Applied),
    ("active", Use::Applied),
    ("vip_nmask", Use::Applied),
    ("port", Use::Applied),
    ("protocol", Use::Applied),
    ("timeout", Use::Applied),
    ("heartbeat", Use::NoAction),
    ("send", Use::Applied),
    ("expect", Use::Applied),
    ("send_program", Use::Applied),
    ("expect_program", Use::NoAction),
    ("start_cmd", Use::Applied),
    ("stop_cmd", Use::Applied),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Global,
    Virtual,
    Server,
    FailoverBlock,
}

impl Scope {
    fn keys(self) -> &'static [(&'static str, Use)] {
        match self {
            Scope::Global => GLOBAL_KEYS,
            Scope::Virtual => VIRTUAL_KEYS,
            Scope::Server => SERVER_KEYS,
            Scope::FailoverBlock => FAILOVER_KEYS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Global => "the global section",
            Scope::Virtual => "a `virtual` block",
            Scope::Server => "a `server` block",
            Scope::FailoverBlock => "a `failover` block",
        }
    }

    const ALL: [Scope; 4] = [
        Scope::Global,
        Scope::Virtual,
        Scope::Server,
        Scope::FailoverBlock,
    ];
}

/// The common service names `port` accepts, as in `/etc/services`.
const SERVICE_NAMES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("smtps", 465),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("mysql", 3306),
    ("postgresql", 5432),
];

/// Per-service spans kept while building, to locate `Config::validate` errors.
struct SvcSpans {
    header: Span,
    addr: Span,
    port: Span,
    persistent: Span,
    pmask: Span,
    fwmark: Span,
    scheduler: Span,
    /// `active = ...`'s value, or the block's name when the key is absent.
    active: Span,
    servers: Vec<SrvSpans>,
}

struct SrvSpans {
    addr: Span,
    weight: Span,
}

struct Ctx<'a> {
    text: &'a str,
    path: &'a str,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn diag(&self, span: Span, sev: Severity, msg: String, expected: Option<String>) -> Diagnostic {
        Diagnostic::new(self.text, self.path, span, sev, msg, expected)
    }

    fn error(&mut self, span: Span, msg: impl Into<String>, expected: impl Into<Option<String>>) {
        let d = self.diag(span, Severity::Error, msg.into(), expected.into());
        self.errors.push(d);
    }

    fn warn(&mut self, span: Span, msg: impl Into<String>, expected: impl Into<Option<String>>) {
        let d = self.diag(span, Severity::Warning, msg.into(), expected.into());
        self.warnings.push(d);
    }

    fn line_of(&self, span: &Span) -> usize {
        self.text[..span.start.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// Classify a key in a scope, reporting unknown, misplaced, pending and ignored keys.
    /// Returns whether its value should be read.
    fn check_key(&mut self, scope: Scope, k: &KeyStmt) -> bool {
        if let Some((_, u)) = scope.keys().iter().find(|(n, _)| *n == k.key) {
            return *u != Use::NoAction;
        }
        if let Some(near) = scope
            .keys()
            .iter()
            .map(|(n, _)| *n)
            .find(|n| k.key.len() >= 4 && edit_distance(n, &k.key) <= 2)
        {
            self.error(
                k.key_span.clone(),
                format!("unknown key `{}` in {}", k.key, scope.name()),
                Some(format!("`{near}`")),
            );
            return false;
        }
        if let Some(other) = Scope::ALL
            .iter()
            .find(|s| s.keys().iter().any(|(n, _)| *n == k.key))
        {
            self.warn(
                k.key_span.clone(),
                format!(
                    "`{}` belongs in {}; it has no effect in {}",
                    k.key,
                    other.name(),
                    scope.name()
                ),
                None,
            );
            return false;
        }
        self.warn(
            k.key_span.clone(),
            format!("unknown key `{}` in {}; ignored", k.key, scope.name()),
            None,
        );
        false
    }

    fn one<'v>(&mut self, k: &'v KeyStmt) -> Option<&'v Value> {
        if let Some(extra) = k.values.get(1) {
            let last = k.values.last().map_or(extra.span.end, |v| v.span.end);
            self.error(
                extra.span.start..last,
                format!("`{}` takes one value", k.key),
                Some("the end of the line".to_string()),
            );
            return None;
        }
        k.values.first()
    }

    /// The whole value as one string: a single (possibly quoted) value, or the source text
    /// from the first to the last word.
    fn string(&self, k: &KeyStmt) -> String {
        match k.values.as_slice() {
            [v] => v.text.clone(),
            _ => self.text[k.values_span()].to_string(),
        }
    }

    /// The whole value as bytes: a quoted string's escapes are bytes (`\xff` is one byte
    /// 0xff, as nanny's C reads it), other text is its UTF-8.
    fn bytes(&self, k: &KeyStmt) -> Vec<u8> {
        match k.values.as_slice() {
            [v] if v.quoted => unescape(&self.text[v.span.clone()]),
            _ => self.string(k).into_bytes(),
        }
    }

    fn u32(&mut self, k: &KeyStmt) -> Option<u32> {
        let v = self.one(k)?;
        match v.text.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    v.span.clone(),
                    format!("`{}` is not a number", v.text),
                    Some(format!("a non-negative integer for `{}`", k.key)),
                );
                None
            }
        }
    }

    fn bool(&mut self, k: &KeyStmt) -> Option<bool> {
        let v = self.one(k)?;
        match v.text.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Some(true),
            "0" | "no" | "false" | "off" => Some(false),
            _ => {
                self.error(
                    v.span.clone(),
                    format!("`{}` is not a boolean", v.text),
                    Some(format!("`0` or `1` for `{}`", k.key)),
                );
                None
            }
        }
    }

    fn ip_value(&mut self, v: &Value) -> Option<IpAddr> {
        match v.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    v.span.clone(),
                    format!("`{}` is not an IP address", v.text),
                    Some("an IPv4 or IPv6 address (rvs does not resolve host names)".to_string()),
                );
                None
            }
        }
    }

    fn ip(&mut self, k: &KeyStmt) -> Option<IpAddr> {
        let v = self.one(k)?;
        self.ip_value(v)
    }

    /// `protocol = tcp | udp`. Piranha's lvsconfig.c knows these two only: `sctp` is refused
    /// as lvsd refuses it (reference/piranha.md).
    fn protocol(&mut self, k: &KeyStmt) -> Option<Protocol> {
        let v = self.one(k)?;
        match v.text.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => {
                self.error(
                    v.span.clone(),
                    format!("unknown protocol `{}`", v.text),
                    Some("`tcp` or `udp`".to_string()),
                );
                None
            }
        }
    }

    fn port(&mut self, k: &KeyStmt) -> Option<u16> {
        let v = self.one(k)?;
        port_value(&v.text).or_else(|| {
            let msg = if v.text.bytes().all(|b| b.is_ascii_digit()) {
                format!("port `{}` is out of range", v.text)
            } else {
                format!("`{}` is not a port number or a known service name", v.text)
            };
            self.error(
                v.span.clone(),
                msg,
                Some("a port in 0..=65535 or a service name such as `http`".to_string()),
            );
            None
        })
    }

    /// Ports and port ranges (`80 443 8000-8100`, service names allowed) of every value.
    fn port_ranges(&mut self, k: &KeyStmt) -> Option<Vec<(u16, u16)>> {
        let mut out = Vec::new();
        for v in &k.values {
            let (lo, hi) = match v.text.split_once('-') {
                Some((a, b)) => (port_value(a), port_value(b)),
                None => (port_value(&v.text), port_value(&v.text)),
            };
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo <= hi => out.push((lo, hi)),
                _ => {
                    self.error(
                        v.span.clone(),
                        format!("`{}` is not a port or a port range", v.text),
                        Some("ports or ranges such as `80 443 8000-8100`".to_string()),
                    );
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.error(
                k.key_span.clone(),
                "`fwmark_ports` needs at least one port",
                Some("ports or ranges such as `80 443`".to_string()),
            );
            return None;
        }
        Some(out)
    }

    /// A dotted IPv4 netmask as a prefix length.
    fn netmask(&mut self, k: &KeyStmt) -> Option<u8> {
        let v = self.one(k)?;
        match v.text.parse::<std::net::Ipv4Addr>() {
            Ok(m) => {
                let bits = u32::from(m);
                let len = bits.leading_ones();
                if bits.checked_shl(len).unwrap_or(0) == 0 {
                    Some(len as u8)
                } else {
                    self.error(
                        v.span.clone(),
                        format!(
                            "`{}` is not a netmask: its one bits are not contiguous",
                            v.text
                        ),
                        Some("a netmask such as `255.255.255.0`".to_string()),
                    );
                    None
                }
            }
            Err(_) => {
                self.error(
                    v.span.clone(),
                    format!("`{}` is not a netmask", v.text),
                    Some("a dotted netmask such as `255.255.255.0`".to_string()),
                );
                None
            }
        }
    }

    /// `IP DEVICE[:ALIAS]`.
    fn address_dev(&mut self, k: &KeyStmt) -> Option<(IpAddr, String)> {
        let addr = self.ip_value(&k.values[0]);
        let dev = match k.values.get(1) {
            Some(d) => Some(d.text.clone()),
            None => {
                let end = k.values[0].span.end;
                self.error(
                    end..end,
                    format!("`{}` needs a device after the address", k.key),
                    Some(format!(
                        "`{} = IP DEVICE`, e.g. `192.168.26.10 eth0:1`",
                        k.key
                    )),
                );
                None
            }
        };
        if let Some(extra) = k.values.get(2) {
            self.error(
                extra.span.start..k.values_span().end,
                format!("`{}` takes an address and a device", k.key),
                Some("the end of the line".to_string()),
            );
            return None;
        }
        Some((addr?, dev?))
    }

    /// A key set twice: the later value wins (lvsconfig.c overwrites), worth a warning only
    /// when the values differ (Piranha's own sample.cf sets `backup_active = 1` twice).
    fn warn_duplicate(&mut self, seen: &mut HashMap<String, (Span, String)>, k: &KeyStmt) {
        let value = if k.values.is_empty() {
            String::new()
        } else {
            self.text[k.values_span()].to_string()
        };
        if let Some((first, old)) = seen.insert(k.key.clone(), (k.key_span.clone(), value.clone()))
            && old != value
        {
            let line = self.line_of(&first);
            self.warn(
                k.key_span.clone(),
                format!(
                    "`{}` is set again (first on line {line}); this value wins",
                    k.key
                ),
                None,
            );
        }
    }

    fn unexpected_block(&mut self, b: &Block, scope: Scope) {
        let allowed = match scope {
            Scope::Global => "`virtual NAME {` or `failover NAME {`",
            Scope::Virtual => "`server NAME {`",
            _ => "no block here",
        };
        let known = ["virtual", "server", "failover"].contains(&b.kind.as_str());
        let msg = if known {
            format!("a `{}` block cannot appear in {}", b.kind, scope.name())
        } else {
            format!("unknown block `{}`", b.kind)
        };
        self.error(b.kind_span.clone(), msg, Some(allowed.to_string()));
    }
}

fn port_value(s: &str) -> Option<u16> {
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        return s.parse().ok();
    }
    SERVICE_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|&(_, p)| p)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The bytes of a double-quoted string as written (quotes included), C escapes resolved.
/// The lexer has already refused bad escapes; anything it let through is kept as is.
fn unescape(quoted: &str) -> Vec<u8> {
    let inner = quoted.strip_prefix('"').unwrap_or(quoted);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        let simple = match c {
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' | b'?' => Some(c),
            _ => None,
        };
        if let Some(x) = simple {
            out.push(x);
            continue;
        }
        let (radix, max, start) = match c {
            b'x' => (16, 2, i),
            b'0'..=b'7' => (8, 3, i - 1),
            _ => {
                out.extend_from_slice(&[b'\\', c]);
                continue;
            }
        };
        let mut end = start;
        while end < b.len() && end - start < max && char::from(b[end]).is_digit(radix) {
            end += 1;
        }
        let v = u32::from_str_radix(&inner[start..end], radix).unwrap_or(0);
        out.push((v & 0xff) as u8);
        i = end;
    }
    out
}

/// nanny's default request when neither `send` nor `expect` is set and the port is 80.
const NANNY_HTTP_SEND: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
/// ... and the reply it expects.
const NANNY_HTTP_EXPECT: &[u8] = b"HTTP";

/// What of a `virtual` block decides its health monitoring.
pub(crate) struct NannyVirtual<'a> {
    /// The nanny keys.
    pub(crate) health: &'a HealthCheck,
    /// `send` as bytes.
    pub(crate) send: Option<&'a [u8]>,
    /// `expect` as bytes.
    pub(crate) expect: Option<&'a [u8]>,
    /// `protocol`.
    pub(crate) protocol: Protocol,
    /// `port`.
    pub(crate) port: u16,
    /// `sorry_server`.
    pub(crate) sorry_server: Option<IpAddr>,
}

/// The health monitoring lvsd and nanny give an active virtual (see the module docs): None
/// when it has neither an active server nor a sorry server. The lvs.cf writer uses it to
/// check that what it writes reads back the same.
/// nanny's check: `send_program` (its output compared with `expect_program`, when
/// `with_expect_program`, or `expect`), else send/expect (`*` = any reply, a regular
/// expression with `use_regex`), else on port 80 `GET / HTTP/1.0` expecting `HTTP`, else a
/// UDP exchange or a TCP connect.
fn nanny_check_kind(
    h: &HealthCheck,
    send: Option<&[u8]>,
    expect: Option<&[u8]>,
    udp: bool,
    port: u16,
    with_expect_program: bool,
) -> CheckKind {
    if let Some(command) = &h.send_program {
        let expect_program = h.expect_program.clone().filter(|_| with_expect_program);
        CheckKind::Program {
            command: command.clone(),
            expect: expect_program.or_else(|| h.expect.clone()),
        }
    } else if send.is_some() || expect.is_some() {
        CheckKind::SendExpect {
            send: send.unwrap_or_default().to_vec(),
            expect: expect.map(|e| match e {
                b"*" => Expect::Any,
                _ if h.use_regex => Expect::Regex(String::from_utf8_lossy(e).into()),
                _ => Expect::Prefix(e.to_vec()),
            }),
            udp,
        }
    } else if port == 80 {
        CheckKind::SendExpect {
            send: NANNY_HTTP_SEND.to_vec(),
            expect: Some(Expect::Prefix(NANNY_HTTP_EXPECT.to_vec())),
            udp,
        }
    } else if udp {
        CheckKind::SendExpect {
            send: Vec::new(),
            expect: None,
            udp: true,
        }
    } else {
        CheckKind::Tcp
    }
}

pub(crate) fn nanny_health(
    vs: &NannyVirtual<'_>,
    svc: &VirtualServiceConfig,
    method: ForwardMethod,
) -> Option<ServiceHealth> {
    if svc.real_servers.is_empty() && vs.sorry_server.is_none() {
        return None;
    }
    let h = vs.health;
    let nanny = vs;
    let every = Duration::from_secs(u64::from(h.timeout));
    let udp = vs.protocol == Protocol::Udp;
    let fwmark = matches!(svc.key, ServiceKey::Fwmark { .. });
    let real_servers = svc
        .real_servers
        .iter()
        .map(|r| {
            let connect_port = (fwmark && r.port != vs.port).then_some(vs.port);
            let port = connect_port.unwrap_or(r.port);
            let kind = nanny_check_kind(h, nanny.send, nanny.expect, udp, port, true);
            RealServerHealth {
                addr: r.addr,
                port: r.port,
                on_failure: if h.quiesce_server {
                    OnFailure::Quiesce
                } else {
                    OnFailure::Remove
                },
                // nanny.c run(): `isActive = 0; currCount = countThresh` — a server enters
                // the table only after its first successful check (at weight >> 5, then
                // slow start), at start-up and when a reload adds it.
                alpha: true,
                // nanny re-admits a server after reentry / timeout good checks in a row.
                rise: (h.reentry / h.timeout.max(1)).max(1),
                fall: 1,
                slow_start: Some(every),
                notify_up: None,
                notify_down: None,
                load_monitor: h.load_monitor.map(|_| rvs_core::health::LoadMonitor {
                    interval: Duration::from_secs(20),
                    agent: None,
                    scale: 4,
                }),
                checks: vec![CheckSpec {
                    kind,
                    target: CheckTarget {
                        connect_port,
                        via_vip: h.check_via_vip,
                        ..CheckTarget::default()
                    },
                    timers: CheckTimers {
                        interval: every,
                        timeout: every,
                        retry: 0,
                        delay_before_retry: Duration::ZERO,
                        warmup: Duration::ZERO,
                    },
                }],
            }
        })
        .collect();
    Some(ServiceHealth {
        service: svc.key,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        omega: false,
        sorry_server: vs.sorry_server.map(|addr| SorryServer {
            addr,
            port: vs.port,
            method,
            inhibit: false,
        }),
        real_servers,
    })
}

fn label_device(label: &str) -> String {
    label.split(':').next().unwrap_or(label).to_string()
}

/// Parse lvs.cf `text` (named `path` in diagnostics).
///
/// On success the [`LvsCf`] holds a validated [`Config`] and the warnings; on failure every
/// error found (syntax, values, and [`Config::validate`]'s, each located at the key or
/// block it blames), in file order.
pub fn parse_lvs_cf(text: &str, path: &str) -> Result<LvsCf, Vec<Diagnostic>> {
    let mut cx = Ctx {
        text,
        path,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let (stmts, syntax_errors) = syntax::parse(text);
    for e in syntax_errors {
        cx.error(e.span, e.message, e.expected);
    }

    let mut network = Network::Nat;
    let mut failover = Failover::default();
    let mut timeouts = Timeouts::default();
    let mut nat_router: Option<(IpAddr, String)> = None;
    let mut nat_nmask: Option<u8> = None;
    let mut pool = LocalPool::default();
    let mut pool_spans: Vec<Span> = Vec::new();
    let mut fullnat_ports_set = false;
    let mut seen = HashMap::new();
    let mut virtual_blocks = Vec::new();
    let mut failover_blocks = Vec::new();

    for s in &stmts {
        let k = match s {
            Stmt::Key(k) => k,
            Stmt::Block(b) if b.kind == "virtual" => {
                virtual_blocks.push(b);
                continue;
            }
            Stmt::Block(b) if b.kind == "failover" => {
                failover_blocks.push(b);
                continue;
            }
            Stmt::Block(b) => {
                cx.unexpected_block(b, Scope::Global);
                continue;
            }
        };
        if !cx.check_key(Scope::Global, k) {
            continue;
        }
        cx.warn_duplicate(&mut seen, k);
        if FAILOVER_KEYS_GLOBAL.contains(&k.key.as_str()) {
            let span = if k.values.is_empty() {
                k.key_span.clone()
            } else {
                k.values_span()
            };
            failover
                .places
                .insert(k.key.clone(), Place::new(text, path, span));
        }
        match k.key.as_str() {
            "service" => {
                if let Some(v) = cx.one(k) {
                    match v.text.as_str() {
                        "lvs" => failover.service = ServiceType::Lvs,
                        "fos" => failover.service = ServiceType::Fos,
                        _ => cx.error(
                            v.span.clone(),
                            format!("unknown service type `{}`", v.text),
                            Some("`lvs` or `fos`".to_string()),
                        ),
                    }
                }
            }
            "network" => {
                if let Some(v) = cx.one(k) {
                    match v.text.as_str() {
                        "nat" => network = Network::Nat,
                        "direct" => network = Network::Direct,
                        "tunnel" => network = Network::Tunnel,
                        "fullnat" => network = Network::FullNat,
                        _ => cx.error(
                            v.span.clone(),
                            format!("unknown network type `{}`", v.text),
                            Some("`nat`, `direct`, `tunnel` or rvs's `fullnat`".to_string()),
                        ),
                    }
                }
            }
            "nat_router" => nat_router = cx.address_dev(k),
            "nat_nmask" => nat_nmask = cx.netmask(k),
            "tcp_timeout" | "tcpfin_timeout" | "udp_timeout" => {
                if let Some(n) = cx.u32(k) {
                    let d = Timeouts::default();
                    let (slot, default) = match k.key.as_str() {
                        "tcp_timeout" => (&mut timeouts.tcp, d.tcp),
                        "tcpfin_timeout" => (&mut timeouts.tcp_fin, d.tcp_fin),
                        _ => (&mut timeouts.udp, d.udp),
                    };
                    // 0 = leave the kernel's value as it is.
                    *slot = if n == 0 { default } else { n };
                }
            }
            "fullnat_local" => {
                pool_spans.push(k.key_span.clone());
                pool.addrs = k.values.iter().filter_map(|v| cx.ip_value(v)).collect();
            }
            "fullnat_ports" => {
                pool_spans.push(k.key_span.clone());
                if let Some(v) = cx.one(k) {
                    let range = v.text.split_once('-').and_then(|(lo, hi)| {
                        Some((lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?))
                    });
                    match range {
                        Some((lo, hi)) if lo >= 1 && lo <= hi => {
                            pool.port_range = (lo, hi);
                            fullnat_ports_set = true;
                        }
                        _ => cx.error(
                            v.span.clone(),
                            format!("`{}` is not a port range", v.text),
                            Some(
                                "`LO-HI` with 1 <= LO <= HI <= 65535, e.g. `1024-65535`"
                                    .to_string(),
                            ),
                        ),
                    }
                }
            }
            "primary" => failover.primary = cx.ip(k),
            "primary_private" => failover.primary_private = cx.ip(k),
            "backup" => failover.backup = cx.ip(k),
            "backup_private" => failover.backup_private = cx.ip(k),
            "backup_active" => failover.backup_active = cx.bool(k).unwrap_or(false),
            "heartbeat" => failover.heartbeat = cx.bool(k).unwrap_or(false),
            "heartbeat_port" => failover.heartbeat_port = cx.port(k).unwrap_or(539),
            "keepalive" => failover.keepalive = cx.u32(k).unwrap_or(2),
            "deadtime" => failover.deadtime = cx.u32(k).unwrap_or(5),
            "monitor_links" => failover.monitor_links = cx.bool(k).unwrap_or(false),
            "syncdaemon" => failover.syncdaemon = cx.bool(k).unwrap_or(false),
            "syncd_iface" => {
                if let Some(v) = cx.one(k) {
                    failover.syncd_iface = v.text.clone();
                }
            }
            "syncd_id" => failover.syncd_id = cx.u32(k).unwrap_or(0),
            "active_cmd" => failover.active_cmd = Some(cx.string(k)),
            "inactive_cmd" => failover.inactive_cmd = Some(cx.string(k)),
            _ => unreachable!("every applied or pending global key is handled"),
        }
    }

    if network == Network::FullNat {
        if !fullnat_ports_set {
            pool.port_range = (1024, 65535);
        }
    } else {
        for s in pool_spans {
            cx.warn(
                s,
                "FullNAT keys have no effect unless `network = fullnat`",
                None,
            );
        }
        pool = LocalPool::default();
    }
    // lvsconfig.c parseConfiguration(): "Now that a "service" flag exists, they CAN both
    // exist in the same file"; `service` picks which pulse runs (pulse.c main(): lvsd
    // for `lvs`, fos for `fos`), the other kind of block is read and left unused.
    // Where a refusal for want of active services points: the first block of the kind
    // `service` runs, else the file's start.
    let first_block = match failover.service {
        ServiceType::Lvs => virtual_blocks.first(),
        ServiceType::Fos => failover_blocks.first(),
    };
    failover.places.insert(
        SERVICES_PLACE.to_string(),
        Place::new(text, path, first_block.map_or(0..0, |b| b.header_span())),
    );
    let mut fos_services = Vec::new();
    let failover_services: Vec<FailoverService> = failover_blocks
        .iter()
        .map(|b| {
            let (raw, fos) = failover_block(&mut cx, b, failover.service);
            fos_services.extend(fos);
            raw
        })
        .collect();
    if failover.service == ServiceType::Fos
        && let Some(first) = virtual_blocks.first()
    {
        cx.warn(
            first.header_span(),
            "`virtual` blocks are not used with `service = fos`: pulse runs failover \
             services then, not lvsd",
            None,
        );
        virtual_blocks.clear();
    }

    let method = network.method();
    let mut config = Config {
        timeouts,
        local_pool: pool,
        ..Config::default()
    };
    let mut spans = Vec::new();
    let mut health = HealthConfig::default();
    let mut virtuals: Vec<VirtualServer> = Vec::new();
    let mut fwmark_places: Vec<(u32, Place)> = Vec::new();
    let mut vips: Vec<Vip> = Vec::new();
    // The first active virtual of each service: its service's index, name and line.
    let mut firsts: HashMap<ServiceKey, (usize, (String, usize))> = HashMap::new();
    for b in virtual_blocks {
        if b.name.is_none() {
            continue;
        }
        // lvsconfig.c appends each block whatever its name, and lvsd.c (startServices(),
        // rereadConfigFiles()) tells virtuals and servers apart by address, protocol and
        // port: a name used twice changes nothing.
        let Some((vs, svc_spans)) = virtual_block(&mut cx, b) else {
            continue;
        };
        let mut vs = vs;
        let (svc_spans, sched_pers, nanny) = svc_spans;
        if let (true, Some(span), Network::Nat | Network::FullNat) =
            (vs.health.check_via_vip, &nanny.via_vip, network)
        {
            cx.error(
                span.clone(),
                "`check_via_vip` needs direct routing or tunnelling: with NAT the real \
                 servers do not own the VIP",
                Some("`network = direct` or `network = tunnel`, or no `check_via_vip`".to_string()),
            );
        }
        let keys = NannyVirtual {
            health: &vs.health,
            send: nanny.send.as_deref(),
            expect: nanny.expect.as_deref(),
            protocol: vs.protocol,
            port: vs.port,
            sorry_server: vs.sorry_server,
        };
        if !vs.active {
            // lvsd.c startVirtualServer(): `if (!vserver->isActive) return 0;`.
            cx.warn(
                svc_spans.active.clone(),
                format!(
                    "virtual `{}` is not active (`active = 1` turns it on): skipped, as lvsd \
                     skips it",
                    vs.name
                ),
                None,
            );
        } else if let Some(&(at, ref first)) = firsts.get(&vs.key) {
            vs.service = Some(at);
            let first_line = first.1;
            merge_fwmark_virtual(
                &mut cx,
                MergeInto {
                    svc: &mut config.services[at],
                    health: &mut health,
                    first_name: &first.0,
                    first_line,
                    network,
                },
                &vs,
                &keys,
                (&svc_spans, sched_pers),
                method,
            );
            config.fwmark_rules.extend(vs.fwmark_rules.iter().copied());
            if !vips.contains(&vs.vip) {
                vips.push(vs.vip.clone());
            }
        } else {
            let line = cx.line_of(&svc_spans.header);
            firsts.insert(vs.key, (config.services.len(), (vs.name.clone(), line)));
            vs.service = Some(config.services.len());
            let mut svc = VirtualServiceConfig::new(vs.key);
            let (sched, pers) = sched_pers;
            svc.scheduler = sched;
            svc.persistence = pers;
            let mut srv_spans = Vec::new();
            for (rs, sp) in vs.servers.iter().zip(svc_spans.servers) {
                if rs.active {
                    let mut r = RealServerConfig::new(rs.addr, rs.port);
                    r.weight = rs.weight;
                    r.method = method;
                    svc.real_servers.push(r);
                    srv_spans.push(sp);
                }
            }
            health.services.extend(nanny_health(&keys, &svc, method));
            config.services.push(svc);
            config.fwmark_rules.extend(vs.fwmark_rules.iter().copied());
            if let ServiceKey::Fwmark { mark, .. } = vs.key {
                let place = Place::new(cx.text, cx.path, svc_spans.fwmark.clone());
                fwmark_places.push((mark, place));
            }
            spans.push(SvcSpans {
                servers: srv_spans,
                ..svc_spans
            });
            if !vips.contains(&vs.vip) {
                vips.push(vs.vip.clone());
            }
        }
        virtuals.push(vs);
    }

    let nat_router = nat_router.map(|(addr, label)| Vip {
        addr,
        prefix: nat_nmask.unwrap_or(Family::of(&addr).max_prefix()),
        device: label_device(&label),
        label,
    });

    if cx.errors.is_empty()
        && let Err(errs) = config.validate()
    {
        locate_validate_errors(&mut cx, &config, &spans, &errs);
    }
    if !cx.errors.is_empty() {
        let mut errors = cx.errors;
        errors.sort_by_key(|d| d.span.start);
        return Err(errors);
    }
    let mut warnings = cx.warnings;
    warnings.sort_by_key(|d| d.span.start);
    Ok(LvsCf {
        config,
        network,
        vips,
        nat_router,
        failover,
        health,
        virtuals,
        failover_services,
        fos_services,
        warnings,
        fwmark_places,
    })
}

/// The service a later virtual with the same key joins, and its context.
struct MergeInto<'a> {
    svc: &'a mut VirtualServiceConfig,
    health: &'a mut HealthConfig,
    first_name: &'a str,
    first_line: usize,
    network: Network,
}

/// A second (third, ...) active virtual with the firewall mark of an earlier one — Red Hat's
/// multi-port recipe (HTTP and HTTPS, or FTP's ports, under one mark) — or with its
/// protocol, address and port, joins the service the first one made, as lvsd leaves it:
///
/// - lvsd.c startVirtualServer() runs `ipvsadm -A -f MARK -s SCHED [-p T [-M MASK]]` for
///   each active virtual; for the second one the kernel answers "Service already exists",
///   lvsd logs "ipvsadm failed for virtual server NAME!" and goes on. The service keeps
///   the first virtual's scheduler and persistence: a different one here is warned.
/// - The real servers enter the service through nanny (ipvs_exec.c bringUpDev():
///   `ipvsadm -a -f MARK -r RS:RPORT`), one per server of the first virtual. A server of
///   this virtual that the first one does not have never enters it: warned and skipped.
/// - This virtual's health check of each shared server is kept as a second check of that
///   server (on this virtual's port): the server is in while all its checks pass. (lvsd,
///   having failed the `-A`, returns before starting this virtual's nannies, so under
///   Piranha the later ports go unchecked; rvs checks each port, as the recipe intends.)
fn merge_fwmark_virtual(
    cx: &mut Ctx<'_>,
    into: MergeInto<'_>,
    vs: &VirtualServer,
    keys: &NannyVirtual<'_>,
    (spans, (sched, pers)): (&SvcSpans, (SchedulerKind, Option<Persistence>)),
    method: ForwardMethod,
) {
    let MergeInto {
        svc,
        health,
        first_name,
        first_line,
        network,
    } = into;
    let what = match svc.key {
        ServiceKey::Fwmark { mark, .. } => format!("fwmark {mark}"),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{} {}", protocol, std::net::SocketAddr::new(addr, port)),
    };
    let shared = format!(
        "virtual `{}` joins the {what} service of virtual `{first_name}` (line {first_line})",
        vs.name
    );
    if sched != svc.scheduler {
        cx.warn(
            spans.scheduler.clone(),
            format!(
                "{shared}: lvsd creates that service once, so its scheduler stays `{}` and \
                 this `{}` is not used",
                svc.scheduler.name(),
                sched.name()
            ),
            None,
        );
    }
    if pers != svc.persistence {
        let show = |p: Option<Persistence>| match p {
            Some(p) => format!("{} s /{}", p.timeout, p.prefix),
            None => "none".to_string(),
        };
        cx.warn(
            spans.persistent.clone(),
            format!(
                "{shared}: lvsd creates that service once, so its persistence stays {} and \
                 this {} is not used",
                show(svc.persistence),
                show(pers)
            ),
            None,
        );
    }
    let first_sorry = health
        .services
        .iter()
        .find(|h| h.service == svc.key)
        .and_then(|h| h.sorry_server.map(|s| s.addr));
    if let Some(sorry) = vs.sorry_server
        && first_sorry != Some(sorry)
    {
        cx.warn(
            spans.header.clone(),
            format!(
                "{shared}: its sorry server {} is not used (the service has {})",
                sorry,
                first_sorry.map_or("none".to_string(), |a| a.to_string())
            ),
            None,
        );
    }
    // This virtual's servers as their own service, to get nanny's checks of each.
    let mut mine = VirtualServiceConfig::new(svc.key);
    let mut mine_spans = Vec::new();
    for (rs, sp) in vs.servers.iter().zip(&spans.servers) {
        if rs.active {
            let mut r = RealServerConfig::new(rs.addr, rs.port);
            r.weight = rs.weight;
            r.method = method;
            mine.real_servers.push(r);
            mine_spans.push((rs, sp));
        }
    }
    let Some(mut my_health) = nanny_health(keys, &mine, method) else {
        return;
    };
    let mut nat_ports = false;
    for ((rs, sp), rh) in mine_spans.into_iter().zip(my_health.real_servers.drain(..)) {
        let at = svc
            .real_servers
            .iter()
            .position(|r| r.addr == rs.addr && r.port == rs.port)
            .or_else(|| svc.real_servers.iter().position(|r| r.addr == rs.addr));
        let Some(at) = at else {
            cx.warn(
                sp.addr.clone(),
                format!(
                    "{shared}: server `{}` ({}) is not in `{first_name}`, so it never enters \
                     the service (lvsd starts monitors only for `{first_name}`'s servers)",
                    rs.name, rs.addr
                ),
                None,
            );
            continue;
        };
        let dest = &svc.real_servers[at];
        if dest.weight != rs.weight {
            cx.warn(
                sp.weight.clone(),
                format!(
                    "{shared}: server {} keeps the weight {} it has in `{first_name}`; this \
                     weight {} is not used",
                    rs.addr, dest.weight, rs.weight
                ),
                None,
            );
        }
        nat_ports |= network == Network::Nat
            && matches!(svc.key, ServiceKey::Fwmark { .. })
            && dest.port != 0
            && dest.port != vs.port;
        let dest_port = dest.port;
        let Some(target) = health
            .services
            .iter_mut()
            .find(|h| h.service == svc.key)
            .and_then(|h| {
                h.real_servers
                    .iter_mut()
                    .find(|r| r.addr == rs.addr && r.port == dest_port)
            })
        else {
            continue;
        };
        for mut c in rh.checks {
            let port = c.target.connect_port.unwrap_or(rs.port);
            c.target.connect_port = (port != dest_port).then_some(port);
            if !target.checks.contains(&c) {
                target.checks.push(c);
            }
        }
    }
    if nat_ports {
        cx.warn(
            spans.port.clone(),
            format!(
                "{shared}: with `network = nat` IPVS sends every connection of that service \
                 to the real server's port from `{first_name}`, so port {} traffic arrives \
                 there too",
                vs.port
            ),
            Some("`port = 0` in the servers of both virtuals (the client's port is kept)".into()),
        );
    }
}

/// A `failover` block: as written, and with `service = fos` what fos runs of it (None when
/// inactive or without an address, each warned, or on an error).
fn failover_block(
    cx: &mut Ctx<'_>,
    b: &Block,
    service: ServiceType,
) -> (FailoverService, Option<FosServiceSetup>) {
    let mut keys = Vec::new();
    for s in &b.body {
        match s {
            // With `service = lvs` the blocks are read and left unused: only unknown keys
            // are worth a word.
            Stmt::Key(k) if service == ServiceType::Lvs => {
                if FAILOVER_KEYS.iter().any(|(n, _)| *n == k.key) {
                    keys.push((k.key.clone(), cx.string(k)));
                } else {
                    cx.check_key(Scope::FailoverBlock, k);
                }
            }
            Stmt::Key(k) => keys.push((k.key.clone(), cx.string(k))),
            Stmt::Block(inner) => cx.unexpected_block(inner, Scope::FailoverBlock),
        }
    }
    let raw = FailoverService {
        name: b.name.as_ref().map_or(String::new(), |n| n.text.clone()),
        keys,
    };
    let fos = match service {
        ServiceType::Fos => fos_block(cx, b),
        ServiceType::Lvs => None,
    };
    (raw, fos)
}

/// A `failover` block as fos runs it. lvsconfig.c reads it with the virtual's parser and
/// defaults (`lvsInitVirtualServer()`: port 80, tcp, timeout 10); fos.c skips inactive
/// ones (`if (!FOserver->isActive) return 0;`).
fn fos_block(cx: &mut Ctx<'_>, b: &Block) -> Option<FosServiceSetup> {
    let name = b.name.as_ref()?;
    let errors_before = cx.errors.len();
    let mut seen = HashMap::new();
    let mut active = (false, name.span.clone());
    let mut address: Option<(IpAddr, String)> = None;
    let mut vip_nmask: Option<u8> = None;
    let mut port = 80u16;
    let mut protocol = Protocol::Tcp;
    let mut timeout = 10u32;
    let mut health = HealthCheck::default();
    let (mut send, mut expect): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let (mut start_cmd, mut stop_cmd) = (None, None);
    for s in &b.body {
        let Stmt::Key(k) = s else { continue };
        if !cx.check_key(Scope::FailoverBlock, k) {
            continue;
        }
        cx.warn_duplicate(&mut seen, k);
        match k.key.as_str() {
            "active" => active = (cx.bool(k).unwrap_or(false), k.values_span()),
            "address" => address = cx.address_dev(k),
            "vip_nmask" => vip_nmask = cx.netmask(k),
            "port" => port = cx.port(k).unwrap_or(port),
            "protocol" => protocol = cx.protocol(k).unwrap_or(protocol),
            "timeout" => match cx.u32(k) {
                Some(0) => cx.error(
                    k.values_span(),
                    "`timeout = 0` would check without a pause",
                    Some("seconds between checks, at least 1".to_string()),
                ),
                Some(t) => timeout = t,
                None => {}
            },
            "send" => send = Some(cx.bytes(k)),
            "expect" => {
                expect = Some(cx.bytes(k));
                health.expect = Some(cx.string(k));
            }
            "send_program" => health.send_program = Some(cx.string(k)),
            // fos.c parseCommandStr(): the string (quotes stripped) cut at each space, run
            // by execv() without a shell.
            "start_cmd" => start_cmd = Some(fos_argv(&cx.string(k))),
            "stop_cmd" => stop_cmd = Some(fos_argv(&cx.string(k))),
            _ => unreachable!("every applied failover key is handled"),
        }
    }
    if cx.errors.len() != errors_before {
        return None;
    }
    if !active.0 {
        cx.warn(
            active.1,
            format!(
                "failover `{}` is not active (`active = 1` turns it on): skipped, as fos \
                 skips it",
                name.text
            ),
            None,
        );
        return None;
    }
    let Some((addr, label)) = address else {
        cx.warn(
            name.span.clone(),
            format!(
                "failover `{}` is active but has no `address`: skipped (fos would monitor and \
                 bring up 0.0.0.0)",
                name.text
            ),
            Some(
                "`address = IP DEVICE` in the block, e.g. `address = 192.168.26.20 eth0:2`"
                    .to_string(),
            ),
        );
        return None;
    };
    for (cmd, key) in [(&start_cmd, "start_cmd"), (&stop_cmd, "stop_cmd")] {
        if cmd.is_none() {
            cx.warn(
                b.header_span(),
                format!(
                    "failover `{}` has no `{key}`: nothing is run there (fos would run an \
                     undefined command)",
                    name.text
                ),
                None,
            );
        }
    }
    let family = Family::of(&addr);
    health.timeout = timeout;
    let check = fos_check(
        &health,
        send.as_deref(),
        expect.as_deref(),
        protocol == Protocol::Udp,
        port,
    );
    Some(FosServiceSetup {
        name: name.text.clone(),
        address: Vip {
            addr,
            prefix: match vip_nmask {
                Some(p) if p != 0 => p,
                _ => family.max_prefix(),
            },
            device: label_device(&label),
            label,
        },
        port,
        protocol,
        check,
        start_cmd,
        stop_cmd,
    })
}

/// The check fos runs of a failover service from its nanny keys (`h.timeout`,
/// `h.send_program`, `h.expect` as text) and `send` / `expect` as bytes: fos.c
/// startClientMonitor() starts nanny with `-s send -x expect -e send_program` (no `--regex`,
/// no `expect_program`), checking every `timeout` seconds, each check within `timeout`.
pub(crate) fn fos_check(
    h: &HealthCheck,
    send: Option<&[u8]>,
    expect: Option<&[u8]>,
    udp: bool,
    port: u16,
) -> CheckSpec {
    let every = Duration::from_secs(u64::from(h.timeout));
    CheckSpec {
        kind: nanny_check_kind(h, send, expect, udp, port, false),
        target: CheckTarget::default(),
        timers: CheckTimers {
            interval: every,
            timeout: every,
            retry: 0,
            delay_before_retry: Duration::ZERO,
            warmup: Duration::ZERO,
        },
    }
}

/// fos.c `parseCommandStr()`: the command cut at every single space (two spaces make an
/// empty argument, as there).
pub(crate) fn fos_argv(cmd: &str) -> Vec<String> {
    cmd.split(' ').map(str::to_string).collect()
}

type VirtualParts = (SvcSpans, (SchedulerKind, Option<Persistence>), Nanny);

/// What a virtual's nanny keys need beyond [`HealthCheck`]: `send` and `expect` as bytes
/// (escapes such as `\xff` are bytes, not characters) and where `check_via_vip` is.
struct Nanny {
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
    via_vip: Option<Span>,
}

fn virtual_block(cx: &mut Ctx<'_>, b: &Block) -> Option<(VirtualServer, VirtualParts)> {
    let name = b.name.as_ref()?;
    let errors_before = cx.errors.len();
    let header = b.header_span();
    let mut seen = HashMap::new();
    let mut active = false;
    let mut active_span = name.span.clone();
    let mut address: Option<(IpAddr, String, Span)> = None;
    let mut vip_nmask: Option<u8> = None;
    let mut fwmark: Option<(u32, Span)> = None;
    let mut protocol = Protocol::Tcp;
    let mut port: (u16, Span) = (80, header.clone());
    let mut scheduler = (SchedulerKind::Wlc, header.clone());
    let mut persistent: (u32, Span) = (0, header.clone());
    let mut pmask: Option<(u8, Span)> = None;
    let mut fwmark_ports: Option<(Vec<(u16, u16)>, Span)> = None;
    let mut health = HealthCheck::default();
    let mut nanny = Nanny {
        send: None,
        expect: None,
        via_vip: None,
    };
    let mut sorry_server = None;
    let mut servers = Vec::new();
    let mut server_spans = Vec::new();

    for s in &b.body {
        let k = match s {
            Stmt::Key(k) => k,
            Stmt::Block(sb) if sb.kind == "server" => {
                if sb.name.is_none() {
                    continue;
                }
                // Piranha: a server's port defaults to the virtual's port as set so far.
                if let Some((rs, sp)) = server_block(cx, sb, port.0) {
                    servers.push(rs);
                    server_spans.push(sp);
                }
                continue;
            }
            Stmt::Block(sb) => {
                cx.unexpected_block(sb, Scope::Virtual);
                continue;
            }
        };
        if !cx.check_key(Scope::Virtual, k) {
            continue;
        }
        cx.warn_duplicate(&mut seen, k);
        match k.key.as_str() {
            "active" => {
                active = cx.bool(k).unwrap_or(false);
                active_span = k.values_span();
            }
            "address" => {
                address = cx
                    .address_dev(k)
                    .map(|(a, d)| (a, d, k.values[0].span.clone()))
            }
            "vip_nmask" => vip_nmask = cx.netmask(k),
            "fwmark" => {
                if let Some(n) = cx.u32(k) {
                    fwmark = Some((n, k.values_span()));
                }
            }
            "fwmark_ports" => {
                if let Some(ranges) = cx.port_ranges(k) {
                    fwmark_ports = Some((ranges, k.values_span()));
                }
            }
            "protocol" => protocol = cx.protocol(k).unwrap_or(protocol),
            "port" => {
                if let Some(p) = cx.port(k) {
                    port = (p, k.values_span());
                }
            }
            "scheduler" => {
                if let Some(v) = cx.one(k) {
                    match SchedulerKind::from_name(&v.text) {
                        Some(s) => scheduler = (s, v.span.clone()),
                        None => cx.error(
                            v.span.clone(),
                            format!("unknown scheduler `{}`", v.text),
                            Some(
                                "one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh \
                                 (or the kernel's sed, nq, fo, ovf, mh, twos)"
                                    .to_string(),
                            ),
                        ),
                    }
                }
            }
            "persistent" => {
                if let Some(n) = cx.u32(k) {
                    persistent = (n, k.values_span());
                }
            }
            "pmask" => {
                if let Some(p) = cx.netmask(k) {
                    pmask = Some((p, k.values_span()));
                }
            }
            "sorry_server" => sorry_server = cx.ip(k),
            "send" => {
                health.send = Some(cx.string(k));
                nanny.send = Some(cx.bytes(k));
            }
            "expect" => {
                health.expect = Some(cx.string(k));
                nanny.expect = Some(cx.bytes(k));
            }
            "use_regex" => health.use_regex = cx.bool(k).unwrap_or(false),
            "send_program" => health.send_program = Some(cx.string(k)),
            "expect_program" => health.expect_program = Some(cx.string(k)),
            "timeout" => match cx.u32(k) {
                Some(0) => cx.error(
                    k.values_span(),
                    "`timeout = 0` would check without a pause",
                    Some("seconds between checks, at least 1".to_string()),
                ),
                Some(t) => health.timeout = t,
                None => {}
            },
            "check_via_vip" => {
                health.check_via_vip = cx.bool(k).unwrap_or(false);
                nanny.via_vip = Some(k.key_span.clone());
            }
            "reentry" => health.reentry = cx.u32(k).unwrap_or(180),
            "quiesce_server" => health.quiesce_server = cx.bool(k).unwrap_or(false),
            "client_monitor" => {
                health.client_monitor = cx.string(k);
                // lvsd.c startClientMonitor() runs this program per real server; rvs runs
                // nanny's checks itself, so only another program is worth a word.
                if health.client_monitor != "/usr/sbin/nanny" {
                    cx.warn(
                        k.values_span(),
                        format!(
                            "`client_monitor` is not run: rvs performs nanny's checks itself \
                             (`{}` is not nanny)",
                            health.client_monitor
                        ),
                        None,
                    );
                }
            }
            "load_monitor" => {
                if let Some(v) = cx.one(k) {
                    health.load_monitor = match v.text.as_str() {
                        "uptime" => Some(LoadMonitor::Uptime),
                        "rup" => Some(LoadMonitor::Rup),
                        "ruptime" => Some(LoadMonitor::Ruptime),
                        "none" => None,
                        _ => {
                            cx.error(
                                v.span.clone(),
                                format!("unknown load monitor `{}`", v.text),
                                Some("`uptime`, `rup`, `ruptime` or `none`".to_string()),
                            );
                            None
                        }
                    }
                }
            }
            _ => unreachable!("every applied or pending virtual key is handled"),
        }
    }

    let Some((addr, label, addr_span)) = address else {
        // lvsconfig.c leaves a missing address at 0.0.0.0 ("which will return an eventual
        // error if used"); the Piranha tool writes a new virtual without one until it is
        // filled in. lvsd skips an inactive virtual (startVirtualServer()); an active one
        // would become a service on 0.0.0.0 that no client reaches: rvs skips both.
        if cx.errors.len() == errors_before {
            let msg = if active {
                format!(
                    "virtual `{}` is active but has no `address`: skipped (lvsd would \
                     create a service on 0.0.0.0, which no client reaches)",
                    name.text
                )
            } else {
                format!(
                    "virtual `{}` has no `address` yet and is not active: skipped, as lvsd \
                     skips it",
                    name.text
                )
            };
            cx.warn(
                name.span.clone(),
                msg,
                Some(
                    "`address = IP DEVICE` in the block, e.g. `address = 192.168.26.10 eth0:1`"
                        .to_string(),
                ),
            );
        }
        return None;
    };
    if cx.errors.len() != errors_before {
        return None;
    }
    let family = Family::of(&addr);
    // Piranha: `fwmark = 0` means no firewall mark.
    let (key, key_span, fwmark_span) = match fwmark {
        Some((mark, span)) if mark != 0 => {
            (ServiceKey::Fwmark { mark, family }, span.clone(), span)
        }
        _ => (
            ServiceKey::Addr {
                protocol,
                addr,
                port: port.0,
            },
            addr_span.clone(),
            header.clone(),
        ),
    };
    let fwmark_rules: Vec<FwmarkRule> = match (&key, fwmark_ports) {
        (ServiceKey::Fwmark { mark, .. }, Some((ranges, _))) => ranges
            .into_iter()
            .map(|ports| FwmarkRule {
                protocol: Some(protocol),
                dst: Prefix {
                    addr,
                    len: family.max_prefix(),
                },
                src: None,
                ports,
                mark: *mark,
            })
            .collect(),
        // Without `fwmark_ports` the marks come from the director's iptables/nftables
        // MARK rules, read by the daemon; it warns when nothing gives the mark.
        (ServiceKey::Fwmark { .. }, None) => Vec::new(),
        (_, Some((_, span))) => {
            cx.warn(span, "`fwmark_ports` has no effect without `fwmark`", None);
            Vec::new()
        }
        (_, None) => Vec::new(),
    };
    if let (0, Some((_, span))) = (persistent.0, &pmask) {
        cx.warn(
            span.clone(),
            "`pmask` has no effect without `persistent`",
            None,
        );
    }
    let persistence = (persistent.0 != 0).then(|| Persistence {
        timeout: persistent.0,
        // Piranha: 255.255.255.255 (and no pmask) means one client address.
        prefix: match pmask {
            Some((p, _)) if p != 0 && p != 32 => p,
            _ => family.max_prefix(),
        },
    });
    let vip = Vip {
        addr,
        // Piranha: an unset or 0.0.0.0 vip_nmask is "unused".
        prefix: match vip_nmask {
            Some(p) if p != 0 => p,
            _ => family.max_prefix(),
        },
        device: label_device(&label),
        label,
    };
    let spans = SvcSpans {
        header,
        addr: key_span,
        port: port.1,
        persistent: persistent.1,
        pmask: pmask.map_or(addr_span, |(_, s)| s),
        fwmark: fwmark_span,
        scheduler: scheduler.1,
        active: active_span,
        servers: server_spans,
    };
    Some((
        VirtualServer {
            name: name.text.clone(),
            active,
            service: None,
            key,
            port: port.0,
            vip,
            protocol,
            sorry_server,
            health,
            servers,
            fwmark_rules,
        },
        (spans, (scheduler.0, persistence), nanny),
    ))
}

fn server_block(cx: &mut Ctx<'_>, b: &Block, default_port: u16) -> Option<(RealServer, SrvSpans)> {
    let name = b.name.as_ref()?;
    let errors_before = cx.errors.len();
    let mut seen = HashMap::new();
    let mut active = false;
    let mut addr: Option<(IpAddr, Span)> = None;
    let mut port = default_port;
    let mut weight = (1u32, b.header_span());
    for s in &b.body {
        let k = match s {
            Stmt::Key(k) => k,
            Stmt::Block(inner) => {
                cx.unexpected_block(inner, Scope::Server);
                continue;
            }
        };
        if !cx.check_key(Scope::Server, k) {
            continue;
        }
        cx.warn_duplicate(&mut seen, k);
        match k.key.as_str() {
            "address" => {
                addr = cx.ip(k).map(|a| (a, k.values_span()));
            }
            "active" => active = cx.bool(k).unwrap_or(false),
            "port" => port = cx.port(k).unwrap_or(port),
            "weight" => {
                if let Some(w) = cx.u32(k) {
                    weight = (w, k.values_span());
                }
            }
            _ => unreachable!("every applied server key is handled"),
        }
    }
    let Some((addr, addr_span)) = addr else {
        if cx.errors.len() == errors_before {
            cx.error(
                name.span.clone(),
                format!("server `{}` has no `address`", name.text),
                Some("`address = IP` in the block".to_string()),
            );
        }
        return None;
    };
    Some((
        RealServer {
            name: name.text.clone(),
            active,
            addr,
            port,
            weight: weight.0,
        },
        SrvSpans {
            addr: addr_span,
            weight: weight.1,
        },
    ))
}

/// Report `Config::validate`'s errors at the key or block each blames (see [`locate`]).
fn locate_validate_errors(
    cx: &mut Ctx<'_>,
    config: &Config,
    spans: &[SvcSpans],
    errs: &[ConfigError],
) {
    for l in locate::locate(config, errs) {
        let expected = match l.error {
            ConfigError::DuplicateService(_) => {
                "one virtual per protocol, address and port (or firewall mark)"
            }
            ConfigError::DuplicateRealServer { .. } => {
                "each real server address and port once per virtual"
            }
            ConfigError::ZeroPortNonPersistent(_) => "a non-zero `port`, or `persistent = SECONDS`",
            ConfigError::OnePacketTcp(_) => "`protocol = udp`",
            ConfigError::PersistencePrefix(_) => "a netmask of the service's address family",
            ConfigError::FamilyMismatch { .. } => {
                "an address of the virtual's family (only `network = tunnel` may cross)"
            }
            ConfigError::NoLocalPool(_) => {
                "`fullnat_local = IP ...` with an address of this family in the global section"
            }
            _ => l.expected,
        };
        cx.error(
            place(spans, l.target),
            l.message,
            Some(expected.to_string()),
        );
    }
}

/// The span of a [`Target`]. A server has no thresholds or method key of its own in lvs.cf:
/// those blame its address.
fn place(spans: &[SvcSpans], target: Target) -> Span {
    match target {
        Target::Service { svc, part } => spans.get(svc).map_or(0..0, |sp| {
            match part {
                ServicePart::Key => &sp.addr,
                ServicePart::Fwmark => &sp.fwmark,
                ServicePart::Port => &sp.port,
                ServicePart::OnePacket => &sp.header,
                ServicePart::PersistenceTimeout => &sp.persistent,
                ServicePart::PersistencePrefix => &sp.pmask,
                ServicePart::MhTableSize => &sp.scheduler,
            }
            .clone()
        }),
        Target::RealServer { svc, rs, part } => spans
            .get(svc)
            .and_then(|sp| sp.servers.get(rs))
            .map_or(0..0, |sp| match part {
                RealServerPart::Weight => sp.weight.clone(),
                RealServerPart::Addr | RealServerPart::Thresholds | RealServerPart::Method => {
                    sp.addr.clone()
                }
            }),
        Target::FwmarkRule(_) | Target::Unplaced => 0..0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("scheduler", "shceduler"), 2);
        assert_eq!(edit_distance("weight", "wieght"), 2);
        assert_eq!(edit_distance("port", "port"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn ports_and_service_names() {
        assert_eq!(port_value("http"), Some(80));
        assert_eq!(port_value("HTTPS"), Some(443));
        assert_eq!(port_value("65535"), Some(65535));
        assert_eq!(port_value("65536"), None);
        assert_eq!(port_value("gopherz"), None);
    }
}
