//! rvs's native configuration: one TOML file (`rvs.toml`) that says everything rvs can do —
//! the whole [`Config`] plus the director's network facts (VIPs with their device and prefix,
//! the NAT router's floating address) — parsed by [`parse_native`] and written by
//! [`emit_native`], so that `parse_native(&emit_native(c), _) == Ok(c)` for every valid `c`.
//!
//! The schema, every key with its default:
//!
//! ```toml
//! [timeouts]                        # seconds (ipvsadm --set)
//! tcp = 900
//! tcp_fin = 120
//! udp = 300
//!
//! [switches]                        # /proc/sys/net/ipv4/vs/
//! expire_nodest_conn = false
//! expire_quiescent_template = false
//! sloppy_tcp = false
//! conn_reuse_mode = 1               # 0..=3
//! amemthresh = 1024                 # pages of 4 KiB left under the table's memory limit
//! am_droprate = 10                  # drop_packet mode 3 drops 1 in this many
//! drop_entry = 0                    # defence modes: 0 off, 1 auto, 2 auto (on), 3 always
//! drop_packet = 0
//! secure_tcp = 0
//!
//! [conn_table]
//! max = 0                           # entries, 0 = no limit but memory
//! memory = "512M"                   # per address family; K, M, G, T (binary) or bytes
//! when_full = "drop-new"            # drop-new | evict-embryonic
//!
//! [synproxy]                        # the SYN proxy (docs/synproxy.md)
//! all = false                       # on for every TCP NAT/FullNAT service
//!
//! [syn_shed]                        # SYN admission under overload (docs/operating.md)
//! enabled = true                    # shed unproven SYNs while the SYN ring overflows
//! budget = 2000                     # unproven SYNs admitted per second meanwhile
//! proven = 65536                    # proven sources kept per family (≤ 4194304)
//!
//! [neighbors]                       # the neighbour table (Linux net.ipv4.neigh.default.*)
//! gc_thresh3 = 0                    # entries per family (≤ 4194304), 0 = the default (1024)
//!
//! [fullnat]                         # FullNAT's local address pool
//! local_addresses = ["10.2.0.250"]
//! ports = "1024-65535"
//!
//! [nat_router]                      # the real servers' gateway (NAT)
//! address = "10.2.0.254/24"         # prefix defaults to /32 or /128
//! device = "eth1"
//! label = "eth1:1"                  # [the device]
//!
//! [[vip]]                           # a floating address the active director brings up
//! address = "10.1.0.100/24"
//! device = "eth0"
//!
//! [[fwmark_rule]]                   # classifier rules, first match wins
//! mark = 1
//! protocol = "tcp"                  # tcp | udp | sctp [any]
//! destination = "10.1.0.100"        # address or prefix
//! source = "198.51.100.0/24"        # clients' address or prefix [any]
//! ports = "8000-8100"               # a port or "LO-HI" [any]
//!
//! [[service]]
//! vip = "10.1.0.100"                # either vip (+ protocol, port) ...
//! protocol = "tcp"                  # tcp | udp | sctp [tcp]
//! port = 80                         # 0 = all ports (persistent services only)
//! # fwmark = 1                      # ... or fwmark (+ family = "ipv4" | "ipv6" [ipv4])
//! scheduler = "wlc"                 # the 14 kernel schedulers [wlc]
//! flags = ["sh-port"]               # flag-1..3, sh-/mh-fallback, sh-/mh-port [none]
//! persistence = { timeout = 360, prefix = 24 }   # [none]; timeout [360], prefix [/32, /128]
//! one_packet = false                # UDP and fwmark services only
//! synproxy = false                  # the SYN proxy for this (TCP) service
//! mh_table_size = 4093              # a prime of MH_TABLE_SIZES
//! consistent = false                # true: mh, alike on every active-active director
//! method = "dr"                     # default method for the real servers below [none]
//!
//! [[service.real_server]]
//! address = "10.2.0.11"
//! port = 80                         # [the service's port]
//! weight = 1                        # 0..=65535, 0 quiesces [1]
//! u_threshold = 0                   # connection thresholds, 0 = none
//! l_threshold = 0
//! method = "tun"                    # nat | dr | tun | fullnat [the service's]
//! tunnel = { type = "gue", port = 6080, csum = "csum" }   # tun only; ipip | gue | gre
//! ```
//!
//! Health monitoring (a service is monitored when it has `[service.health]` or a real server
//! with `health` or `check`; then every real server of it is, those without checks as
//! always up). Times are seconds, integer or decimal (to the microsecond):
//!
//! ```toml
//! [service.health]                  # after the service's own keys
//! quorum = 1                        # live weight needed for the service to be up [1]
//! hysteresis = 0                    # [0]
//! quorum_up = "/usr/local/bin/up"   # command when the quorum is gained [none]
//! quorum_down = "/usr/local/bin/down"
//! quorum_up_user = "nobody"         # USER [GROUP] it runs as [the default script user]
//! quorum_down_user = "nobody nogroup"
//! omega = false                     # quorum_down and notify_down at shutdown
//! sorry_server = { address = "10.2.0.99", port = 80, method = "nat", inhibit = false }
//!                                   # port [the service's], method [the service's]
//! # Defaults for every real server (each may override them in its `health`):
//! on_failure = "remove"             # remove | quiesce (weight 0)
//! alpha = false                     # start down until a check passes (the first admits; rise counts after a failure)
//! rise = 1                          # good rounds in a row to come back up
//! fall = 1                          # failed rounds in a row to go down
//! slow_start = 10                   # weight ramps up after re-admission [none]
//! notify_up = "/bin/up"             # [none]
//! notify_down = "/bin/down"
//! notify_up_user = "nobody"         # USER [GROUP] [the default script user]; needs the
//! notify_down_user = "nobody"       #   script in the same table
//! load_monitor = { interval = 20, scale = 4, agent = "10.2.0.11:5391" }   # [none]
//!
//! [[service.health.check]]          # checks of every real server without its own
//! type = "http"                     # see below
//!
//! [[service.real_server]]
//! address = "10.2.0.11"
//! health = { on_failure = "quiesce", notify_up = "/bin/up web1" }
//!
//! [[service.real_server.check]]     # this server's checks (`check = []`: none)
//! type = "tcp"
//! ```
//!
//! Every check takes `interval` [60], `timeout` [5], `retry` [1], `delay_before_retry` [1],
//! `warmup` [0], and where it connects: `connect_ip`, `connect_port`, `bindto`, `bind_port`,
//! `fwmark` (SO_MARK), `via_vip` (DR/TUN: through the VIP). By `type`:
//! - `tcp`: connect only; `ping`: ICMP echo;
//! - `send-expect` (nanny's): `send` (or `send_hex`), then one of `expect` (a prefix),
//!   `expect_hex`, `expect_regex`, `expect_any = true`; `udp` [the service's protocol];
//! - `program` (nanny's `send_program`): `command` (`%h`, `%p`), `expect` (its output);
//! - `http`, `https`: `url = [{ path = "/", status = [200, "300-399"], digest = "MD5",
//!   virtualhost = "...", regex = "...", regex_no_match = false }]` (or `[[...check.url]]`
//!   tables), `virtualhost`, `http_version = "1.0" | "1.1"`, `sni` (https);
//! - `misc`: `command`, `user` (`USER [GROUP]`), `dynamic` (exit 2..=255 sets the weight); killed after `timeout`,
//!   else after `interval`;
//! - `udp`: `payload` (hex), `require_reply` (hex; `""` any reply), `min_reply_length`,
//!   `max_reply_length`;
//! - `dns`: `query_type` [SOA] (A, NS, CNAME, SOA, MX, TXT, AAAA), `name` ["."].
//!
//! Failover (the `native/failover.rs` module; documented in docs/operating.md):
//! `[[vrrp_instance]]`, `[[vrrp_sync_group]]` and `[[vrrp_script]]` with keepalived's key
//! names and meaning, or `[pulse]` with lvs.cf's; `[[failover_service]]` (`name`, `address`,
//! `device`, `label`, `port` \[80\], `protocol` \[tcp\], `start_cmd` / `stop_cmd` as argv
//! arrays, and one `[failover_service.check]`) for lvs.cf's `service = fos`, with or
//! without `[pulse]` and without `[[service]]`; `[sync]` for connection sync; `[cluster]`
//! for active-active directors (the `native/cluster.rs` module). A service
//! and a real server take a `name`; `active = false` keeps a real server written but out of
//! service ([`Names`]).
//!
//! Every table refuses unknown keys, and a check refuses the keys of other check types. Errors — TOML syntax, unknown keys, values of the wrong
//! type or out of range, and [`Config::validate`]'s findings — come back as
//! [`Diagnostic`]s located at the key or value they blame. This module does no I/O.

use core::ops::Range;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, DnsType, Expect, HealthConfig, LoadMonitor,
    Notify, OnFailure, RealServerHealth, ServiceHealth, SorryServer, UrlCheck,
};
use rvs_core::model::{
    Config, ConfigError, Defense, Family, ForwardMethod, FwmarkRule, LocalPool, Persistence,
    Prefix, Protocol, RealServerConfig, SchedFlags, SchedulerKind, ServiceKey, Switches, SynShed,
    TableFullPolicy, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Diagnostic, Severity};
use crate::failover::FailoverConfig;
use crate::locate::{self, RealServerPart, ServicePart, Target};
use crate::lvs::Vip;

mod cluster;
mod failover;
pub use cluster::depends_on_local_state;
pub(crate) use failover::{
    GarpValue, advert_switches, auth_pass, default_version, garp_settings, tracks_primary,
};
pub use failover::{fos_vips, vrrp_vips};

type Span = Range<usize>;
type Int = Spanned<i64>;
type Str = Spanned<String>;

/// A parsed native configuration: the forwarding [`Config`] and the network facts the
/// daemon needs around it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NativeConf {
    /// Services, classifier rules, timeouts, switches, table size, FullNAT pool; validated.
    pub config: Config,
    /// `[[vip]]`: the floating addresses the active director owns, in file order.
    pub vips: Vec<Vip>,
    /// `[nat_router]`: the real servers' gateway address for NAT.
    pub nat_router: Option<Vip>,
    /// Health monitoring: `[service.health]`, each real server's `health` and `check`s.
    pub health: HealthConfig,
    /// Failover: `[[vrrp_instance]]`, `[[vrrp_sync_group]]`, `[[vrrp_script]]` or
    /// `[pulse]`, and `[sync]`. Its `warnings` are the mapping's (values rounded as
    /// keepalived rounds them, scripts nobody tracks).
    pub failover: FailoverConfig,
    /// The names of services and real servers, and the inactive real servers.
    pub names: Names,
}

/// What the forwarding model does not hold about services and real servers: their names
/// (lvs.cf's `virtual NAME` and `server NAME`, the TOML's `name`) and the real servers
/// written but not in service (lvs.cf `active = 0`, the TOML's `active = false`).
///
/// Canonical: one entry per service that has a name, a named real server or an inactive
/// one, in service order; a service without any is absent. Build it with
/// [`Names::push`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    /// The services with something to say, in service order.
    pub services: Vec<ServiceNames>,
}

impl Names {
    /// The entry of the service `key`.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceNames> {
        self.services.iter().find(|s| s.service == *key)
    }

    /// Add `s` unless it says nothing (no name, no named or inactive real server).
    pub fn push(&mut self, s: ServiceNames) {
        if !s.is_empty() {
            self.services.push(s);
        }
    }

    /// Whether nothing is named and no real server is inactive.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The name of real server number `k` (in the model's order) of service `key`.
    pub fn server(&self, key: &ServiceKey, k: usize) -> Option<&str> {
        self.service(key)?
            .slots
            .iter()
            .filter_map(|s| match s {
                ServerSlot::Active(n) => Some(n),
                ServerSlot::Inactive(_) => None,
            })
            .nth(k)?
            .as_deref()
    }
}

/// One service's names and inactive real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNames {
    /// The service.
    pub service: ServiceKey,
    /// Its name.
    pub name: Option<String>,
    /// Its real servers in the order written: the active ones (the model's, in its order)
    /// with their names, and the inactive ones between them.
    pub slots: Vec<ServerSlot>,
}

impl ServiceNames {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self
                .slots
                .iter()
                .all(|s| matches!(s, ServerSlot::Active(None)))
    }
}

/// The real servers of a service as written: its slots, or without an entry its `n` real
/// servers, all active and unnamed.
pub(crate) fn server_slots(names: Option<&ServiceNames>, n: usize) -> Cow<'_, [ServerSlot]> {
    match names {
        Some(names) => Cow::Borrowed(&names.slots),
        None => Cow::Owned(vec![ServerSlot::Active(None); n]),
    }
}

/// A real server as written in a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSlot {
    /// The next real server of the model's service, with its name.
    Active(Option<String>),
    /// A real server written but not in service.
    Inactive(InactiveServer),
}

/// A real server written but not in service (lvs.cf `active = 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveServer {
    /// Its name.
    pub name: Option<String>,
    /// Its address.
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Its weight.
    pub weight: u32,
}

// ---------------------------------------------------------------------------------------
// The serde side: the file as written, every value with its span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    timeouts: Option<RawTimeouts>,
    switches: Option<RawSwitches>,
    conn_table: Option<RawConnTable>,
    synproxy: Option<RawSynProxy>,
    syn_shed: Option<RawSynShed>,
    neighbors: Option<RawNeighbors>,
    fullnat: Option<RawFullNat>,
    nat_router: Option<Spanned<RawVip>>,
    #[serde(default)]
    vip: Vec<Spanned<RawVip>>,
    #[serde(default)]
    fwmark_rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
    #[serde(default)]
    vrrp_instance: Vec<Spanned<failover::RawInstance>>,
    #[serde(default)]
    vrrp_sync_group: Vec<Spanned<failover::RawSyncGroup>>,
    #[serde(default)]
    vrrp_script: Vec<Spanned<failover::RawScript>>,
    pulse: Option<Spanned<failover::RawPulse>>,
    #[serde(default)]
    failover_service: Vec<Spanned<failover::RawFosService>>,
    sync: Option<Spanned<failover::RawSync>>,
    scripts: Option<failover::RawScriptPolicy>,
    cluster: Option<Spanned<cluster::RawCluster>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    tcp: Option<Int>,
    tcp_fin: Option<Int>,
    udp: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwitches {
    expire_nodest_conn: Option<bool>,
    expire_quiescent_template: Option<bool>,
    sloppy_tcp: Option<bool>,
    conn_reuse_mode: Option<Int>,
    amemthresh: Option<Int>,
    am_droprate: Option<Int>,
    drop_entry: Option<Int>,
    drop_packet: Option<Int>,
    secure_tcp: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnTable {
    max: Option<Int>,
    memory: Option<Str>,
    when_full: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynProxy {
    all: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynShed {
    enabled: Option<bool>,
    budget: Option<Int>,
    proven: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbors {
    gc_thresh3: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFullNat {
    #[serde(default)]
    local_addresses: Vec<Str>,
    ports: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVip {
    address: Str,
    device: Str,
    label: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    mark: Int,
    protocol: Option<Str>,
    destination: Str,
    source: Option<Str>,
    ports: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Option<Str>,
    vip: Option<Str>,
    protocol: Option<Str>,
    port: Option<Int>,
    fwmark: Option<Int>,
    family: Option<Str>,
    scheduler: Option<Str>,
    flags: Option<Vec<Str>>,
    persistence: Option<Spanned<RawPersistence>>,
    one_packet: Option<Spanned<bool>>,
    synproxy: Option<bool>,
    mh_table_size: Option<Int>,
    consistent: Option<Spanned<bool>>,
    method: Option<Str>,
    tunnel: Option<Spanned<RawTunnel>>,
    health: Option<Spanned<RawServiceHealth>>,
    #[serde(default)]
    real_server: Vec<Spanned<RawReal>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersistence {
    timeout: Option<Int>,
    prefix: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReal {
    name: Option<Str>,
    active: Option<Spanned<bool>>,
    address: Str,
    port: Option<Int>,
    weight: Option<Int>,
    u_threshold: Option<Int>,
    l_threshold: Option<Int>,
    method: Option<Str>,
    tunnel: Option<Spanned<RawTunnel>>,
    health: Option<Spanned<RawServerHealth>>,
    check: Option<Vec<Spanned<RawCheck>>>,
}

type Secs = Spanned<toml::Value>;

/// `[service.health]`: the service's own keys, and defaults for its real servers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceHealth {
    quorum: Option<Int>,
    hysteresis: Option<Int>,
    quorum_up: Option<Str>,
    quorum_down: Option<Str>,
    quorum_up_user: Option<Str>,
    quorum_down_user: Option<Str>,
    omega: Option<bool>,
    sorry_server: Option<Spanned<RawSorry>>,
    on_failure: Option<Str>,
    alpha: Option<bool>,
    rise: Option<Int>,
    fall: Option<Int>,
    slow_start: Option<Secs>,
    notify_up: Option<Str>,
    notify_down: Option<Str>,
    notify_up_user: Option<Str>,
    notify_down_user: Option<Str>,
    load_monitor: Option<Spanned<RawLoadMonitor>>,
    check: Option<Vec<Spanned<RawCheck>>>,
}

/// A real server's `health = { ... }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerHealth {
    on_failure: Option<Str>,
    alpha: Option<bool>,
    rise: Option<Int>,
    fall: Option<Int>,
    slow_start: Option<Secs>,
    notify_up: Option<Str>,
    notify_down: Option<Str>,
    notify_up_user: Option<Str>,
    notify_down_user: Option<Str>,
    load_monitor: Option<Spanned<RawLoadMonitor>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSorry {
    address: Str,
    port: Option<Int>,
    method: Option<Str>,
    tunnel: Option<Spanned<RawTunnel>>,
    inhibit: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoadMonitor {
    interval: Option<Secs>,
    agent: Option<Str>,
    scale: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(rename = "type")]
    kind: Str,
    interval: Option<Secs>,
    timeout: Option<Secs>,
    retry: Option<Int>,
    delay_before_retry: Option<Secs>,
    warmup: Option<Secs>,
    connect_ip: Option<Str>,
    connect_port: Option<Int>,
    bindto: Option<Str>,
    bind_port: Option<Int>,
    fwmark: Option<Int>,
    via_vip: Option<Spanned<bool>>,
    send: Option<Str>,
    send_hex: Option<Str>,
    expect: Option<Str>,
    expect_hex: Option<Str>,
    expect_regex: Option<Str>,
    expect_any: Option<Spanned<bool>>,
    udp: Option<Spanned<bool>>,
    command: Option<Str>,
    user: Option<Str>,
    dynamic: Option<Spanned<bool>>,
    url: Option<Spanned<Vec<Spanned<RawUrl>>>>,
    virtualhost: Option<Str>,
    http_version: Option<Str>,
    sni: Option<Spanned<bool>>,
    payload: Option<Str>,
    require_reply: Option<Str>,
    min_reply_length: Option<Int>,
    max_reply_length: Option<Int>,
    query_type: Option<Str>,
    name: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    path: Str,
    digest: Option<Str>,
    status: Option<Vec<Spanned<toml::Value>>>,
    virtualhost: Option<Str>,
    regex: Option<Str>,
    regex_no_match: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    #[serde(rename = "type")]
    kind: Option<Str>,
    port: Option<Int>,
    csum: Option<Str>,
}

// ---------------------------------------------------------------------------------------
// From the raw file to the model, with located errors.

/// Where each service's pieces are, to locate [`Config::validate`]'s errors.
struct SvcSpans {
    key: Span,
    port: Span,
    persistence_timeout: Span,
    persistence_prefix: Span,
    one_packet: Span,
    mh: Span,
    /// The scheduler (or the key when it is the default).
    scheduler: Span,
    servers: Vec<RsSpans>,
}

struct RsSpans {
    address: Span,
    weight: Span,
    thresholds: Span,
    method: Span,
}

struct Cx<'a> {
    text: &'a str,
    path: &'a str,
    errors: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn error(&mut self, span: Span, msg: impl Into<String>, expected: impl Into<String>) {
        self.errors.push(Diagnostic::new(
            self.text,
            self.path,
            span,
            Severity::Error,
            msg,
            Some(expected.into()),
        ));
    }

    fn int(&mut self, v: &Int, lo: i64, hi: i64, what: &str) -> Option<i64> {
        let n = *v.get_ref();
        if (lo..=hi).contains(&n) {
            Some(n)
        } else {
            self.error(
                v.span(),
                format!("{what} {n} is out of range"),
                format!("a value in {lo}..={hi}"),
            );
            None
        }
    }

    fn u32(&mut self, v: &Int, what: &str) -> Option<u32> {
        self.int(v, 0, i64::from(u32::MAX), what).map(|n| n as u32)
    }

    fn port(&mut self, v: &Int) -> Option<u16> {
        self.int(v, 0, 65_535, "port").map(|n| n as u16)
    }

    fn ip(&mut self, v: &Str) -> Option<IpAddr> {
        match v.get_ref().parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    v.span(),
                    format!("`{}` is not an IP address", v.get_ref()),
                    "an IPv4 or IPv6 address (rvs does not resolve host names)",
                );
                None
            }
        }
    }

    /// `ADDR` or `ADDR/LEN`; a bare address is a host prefix.
    fn prefix(&mut self, v: &Str) -> Option<(IpAddr, u8)> {
        let text = v.get_ref();
        let (a, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text.as_str(), None),
        };
        let Ok(addr) = a.parse::<IpAddr>() else {
            self.error(
                v.span(),
                format!("`{text}` is not an IP address or prefix"),
                "`ADDRESS` or `ADDRESS/LENGTH`, e.g. `10.1.0.100/24`",
            );
            return None;
        };
        let max = Family::of(&addr).max_prefix();
        match len.map(str::parse::<u8>) {
            None => Some((addr, max)),
            Some(Ok(l)) if l <= max => Some((addr, l)),
            Some(_) => {
                self.error(
                    v.span(),
                    format!("`{text}` has a bad prefix length"),
                    format!("a prefix length in 0..={max}"),
                );
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, v: &Str, what: &str, options: &[(&str, T)]) -> Option<T> {
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == v.get_ref()) {
            return Some(*t);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("`{n}`")).collect();
        self.error(
            v.span(),
            format!("unknown {what} `{}`", v.get_ref()),
            one_of(&names),
        );
        None
    }

    /// `"LO-HI"` (or a single port `"N"`): an inclusive range with LO <= HI.
    fn range(&mut self, v: &Str) -> Option<(u16, u16)> {
        match parse_range(v.get_ref()) {
            Some(r) => Some(r),
            None => {
                self.error(
                    v.span(),
                    format!("`{}` is not a port range", v.get_ref()),
                    "`LO-HI` with LO <= HI <= 65535, e.g. `1024-65535`",
                );
                None
            }
        }
    }
}

fn one_of(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
        None => {
            let p = s.trim().parse().ok()?;
            (p, p)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

const PROTOCOLS: &[(&str, Protocol)] = &[
    ("tcp", Protocol::Tcp),
    ("udp", Protocol::Udp),
    ("sctp", Protocol::Sctp),
];
const FAMILIES: &[(&str, Family)] = &[("ipv4", Family::V4), ("ipv6", Family::V6)];
const TABLE_FULL: &[(&str, TableFullPolicy)] = &[
    ("drop-new", TableFullPolicy::DropNew),
    ("evict-embryonic", TableFullPolicy::EvictEmbryonic),
];
const CSUMS: &[(&str, TunnelCsum)] = &[
    ("nocsum", TunnelCsum::NoCsum),
    ("csum", TunnelCsum::Csum),
    ("remcsum", TunnelCsum::RemCsum),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum MethodName {
    Nat,
    Dr,
    Tun,
    FullNat,
}

const METHODS: &[(&str, MethodName)] = &[
    ("nat", MethodName::Nat),
    ("dr", MethodName::Dr),
    ("tun", MethodName::Tun),
    ("fullnat", MethodName::FullNat),
];

/// The largest `[neighbors] gc_thresh3` accepted (entries per family, allocated at start).
const NEIGH_MAX: i64 = 1 << 22;

/// Parse native TOML `text` (named `path` in diagnostics).
///
/// On failure: every error found, in file order (a TOML syntax or type error stops the
/// parse at the first one, as the toml crate does).
pub fn parse_native(text: &str, path: &str) -> Result<NativeConf, Vec<Diagnostic>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| vec![toml_error(text, path, &e)])?;
    let mut cx = Cx {
        text,
        path,
        errors: Vec::new(),
    };
    let mut config = Config::default();

    if let Some(t) = &raw.timeouts {
        let d = Timeouts::default();
        let mut get = |v: &Option<Int>, what: &str, default: u32| {
            v.as_ref().and_then(|v| cx.u32(v, what)).unwrap_or(default)
        };
        config.timeouts = Timeouts {
            tcp: get(&t.tcp, "timeout", d.tcp),
            tcp_fin: get(&t.tcp_fin, "timeout", d.tcp_fin),
            udp: get(&t.udp, "timeout", d.udp),
        };
    }
    if let Some(s) = &raw.switches {
        let d = Switches::default();
        config.switches = Switches {
            expire_nodest_conn: s.expire_nodest_conn.unwrap_or(d.expire_nodest_conn),
            expire_quiescent_template: s
                .expire_quiescent_template
                .unwrap_or(d.expire_quiescent_template),
            sloppy_tcp: s.sloppy_tcp.unwrap_or(d.sloppy_tcp),
            conn_reuse_mode: s
                .conn_reuse_mode
                .as_ref()
                .and_then(|v| cx.int(v, 0, 3, "conn_reuse_mode"))
                .map_or(d.conn_reuse_mode, |n| n as u8),
        };
    }
    if let Some(s) = &raw.switches {
        // /proc/sys/net/ipv4/vs/{amemthresh,am_droprate,drop_entry,drop_packet,secure_tcp};
        // the kernel refuses a mode outside 0..=3 (`proc_do_defense_mode()`: -EINVAL).
        let d = &mut config.defense;
        let mut mode = |v: &Option<Int>, name: &str, cur: u8| {
            v.as_ref()
                .and_then(|v| cx.int(v, 0, 3, name))
                .map_or(cur, |n| n as u8)
        };
        d.drop_entry = mode(&s.drop_entry, "drop_entry", d.drop_entry);
        d.drop_packet = mode(&s.drop_packet, "drop_packet", d.drop_packet);
        d.secure_tcp = mode(&s.secure_tcp, "secure_tcp", d.secure_tcp);
        // The kernel takes any int and uses max(amemthresh, 0); rvs wants the real range.
        if let Some(v) = &s.amemthresh {
            d.amemthresh = cx.u32(v, "amemthresh").unwrap_or(d.amemthresh);
        }
        if let Some(v) = &s.am_droprate {
            d.am_droprate = cx.u32(v, "am_droprate").unwrap_or(d.am_droprate);
        }
    }
    if let Some(c) = &raw.conn_table {
        if let Some(v) = &c.max {
            config.conn_table_max = cx.int(v, 0, i64::MAX, "table size").unwrap_or(0) as usize;
        }
        if let Some(v) = &c.memory {
            match crate::parse_size(v.get_ref()) {
                Some(n) => config.conn_table_bytes = n,
                None => cx.error(
                    v.span(),
                    format!("`{}` is not a memory size", v.get_ref()),
                    "bytes, or a number with K, M, G or T (powers of 1024), e.g. \"512M\"",
                ),
            }
        }
        if let Some(v) = &c.when_full {
            config.table_full = cx
                .choice(v, "table-full policy", TABLE_FULL)
                .unwrap_or_default();
        }
    }
    if let Some(sp) = &raw.synproxy {
        config.synproxy.all = sp.all.unwrap_or(false);
    }
    if let Some(sh) = &raw.syn_shed {
        let d = &mut config.syn_shed;
        d.enabled = sh.enabled.unwrap_or(d.enabled);
        if let Some(v) = &sh.budget {
            d.budget = cx
                .int(v, 0, i64::from(u32::MAX), "SYN admission budget")
                .map_or(d.budget, |n| n as u32);
        }
        if let Some(v) = &sh.proven {
            // Preallocated at start, as the neighbour table.
            d.proven = cx
                .int(v, 1, NEIGH_MAX, "proven-source bound")
                .map_or(d.proven, |n| n as usize);
        }
    }
    if let Some(v) = raw.neighbors.as_ref().and_then(|n| n.gc_thresh3.as_ref()) {
        // Preallocated at start: bounded so that a typo cannot ask for gigabytes.
        config.neigh_gc_thresh3 =
            cx.int(v, 0, NEIGH_MAX, "neighbour table size").unwrap_or(0) as usize;
    }
    if let Some(f) = &raw.fullnat {
        config.local_pool = LocalPool {
            addrs: f.local_addresses.iter().filter_map(|a| cx.ip(a)).collect(),
            port_range: f
                .ports
                .as_ref()
                .and_then(|p| cx.range(p))
                .unwrap_or((1024, 65_535)),
        };
    }
    let nat_router = raw
        .nat_router
        .as_ref()
        .and_then(|v| vip(&mut cx, v.get_ref()));
    let mut vips: Vec<Vip> = Vec::new();
    let mut vip_lines: HashMap<IpAddr, Span> = HashMap::new();
    for v in &raw.vip {
        if let Some(x) = vip(&mut cx, v.get_ref()) {
            if let Some(first) = vip_lines.get(&x.addr) {
                let line = line_of(text, first.start);
                cx.error(
                    v.get_ref().address.span(),
                    format!("VIP {} is declared twice (first on line {line})", x.addr),
                    "each VIP once",
                );
            } else {
                vip_lines.insert(x.addr, v.get_ref().address.span());
            }
            vips.push(x);
        }
    }
    for r in &raw.fwmark_rule {
        if let Some(rule) = fwmark_rule(&mut cx, r.get_ref()) {
            config.fwmark_rules.push(rule);
        }
    }
    let mut spans = Vec::new();
    let mut health = HealthConfig::default();
    let mut names = Names::default();
    for s in &raw.service {
        if let Some((svc, sp, h, n)) = service(&mut cx, s) {
            if s.get_ref().synproxy == Some(true) {
                config.synproxy.services.push(svc.key);
            }
            config.services.push(svc);
            spans.push(sp);
            health.services.extend(h);
            names.push(n);
        }
    }
    let mut failover = failover::parse(
        &mut cx,
        &failover::RawFailover {
            instances: &raw.vrrp_instance,
            sync_groups: &raw.vrrp_sync_group,
            scripts: &raw.vrrp_script,
            pulse: raw.pulse.as_ref(),
            fos: &raw.failover_service,
            sync: raw.sync.as_ref(),
            scripts_policy: raw.scripts.as_ref(),
        },
    );
    if let Some(c) = &raw.cluster {
        failover.cluster = cluster::parse(&mut cx, c);
        cluster::check_mode(&mut cx, &failover, c.span());
    }
    // A VRRP instance's addresses are VIPs on their devices, as keepalived.conf's are; so
    // are the failover services' floating addresses, as an lvs.cf's are with `service = fos`.
    for v in vrrp_vips(&failover).into_iter().chain(fos_vips(&failover)) {
        if !vips.iter().any(|w| w.addr == v.addr) {
            vips.push(v);
        }
    }
    // Piranha's pulse runs fos instead of lvsd with `service = fos`: no virtual service.
    if let (Some(f), Some(s)) = (raw.failover_service.first(), raw.service.first()) {
        cx.error(
            s.span(),
            format!(
                "`[[service]]` with `[[failover_service]]` (`{}`): a director running failover \
                 services forwards no virtual service (lvs.cf's `service = fos`)",
                f.get_ref().name.get_ref()
            ),
            "either `[[service]]` or `[[failover_service]]` tables",
        );
    }

    if cx.errors.is_empty()
        && let Err(errs) = config.validate()
    {
        locate_validate_errors(&mut cx, &config, &raw, &spans, &errs);
    }
    if !cx.errors.is_empty() {
        let mut errors = cx.errors;
        errors.sort_by_key(|d| d.span.start);
        return Err(errors);
    }
    synproxy_skips(&cx, &config, &spans, &mut failover.warnings);
    let at: Vec<Span> = spans.iter().map(|s| s.scheduler.clone()).collect();
    let mut local = Vec::new();
    cluster::warn_local_state(&cx, &failover, &config, &at, &mut local);
    failover.warnings.extend(local);
    failover.warnings.sort_by_key(|d| d.span.start);
    Ok(NativeConf {
        config,
        vips,
        nat_router,
        health,
        failover,
        names,
    })
}

/// `[synproxy] all = true` skips the TCP services it cannot serve (a direct-routing or
/// tunnelled real server, whose replies bypass the director: nothing could translate their
/// sequence numbers); each gets a warning at its `[[service]]`. A service that asks for the
/// proxy itself (`synproxy = true`) is refused instead, by `Config::validate`.
fn synproxy_skips(cx: &Cx<'_>, config: &Config, spans: &[SvcSpans], out: &mut Vec<Diagnostic>) {
    if !config.synproxy.all {
        return;
    }
    for (svc, sp) in config.services.iter().zip(spans) {
        let tcp = !matches!(
            svc.key,
            ServiceKey::Addr {
                protocol: Protocol::Udp | Protocol::Sctp,
                ..
            }
        );
        if let Some(rs) = svc.synproxy_blocker().filter(|_| tcp) {
            let method = if matches!(rs.method, ForwardMethod::DirectRoute) {
                "direct routing"
            } else {
                "tunnelling"
            };
            out.push(Diagnostic::new(
                cx.text,
                cx.path,
                sp.key.clone(),
                Severity::Warning,
                format!(
                    "`[synproxy] all` skips virtual service {}: its real server {} is \
                     forwarded by {method}, whose replies bypass the director, so the proxy \
                     could not translate their sequence numbers; the service forwards SYNs to \
                     its real servers as without the proxy",
                    locate::describe(&svc.key),
                    rvs_core::model::sock(rs.addr, rs.port)
                ),
                None,
            ));
        }
    }
}

/// Read and parse a native TOML file. A file that cannot be read or is not UTF-8 gives one
/// diagnostic (at 1:1, or at the first bad byte).
pub fn load_native(path: &std::path::Path) -> Result<NativeConf, Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::new(
            "",
            &shown,
            0..0,
            Severity::Error,
            format!("cannot read the file: {e}"),
            None,
        )]
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse_native(&text, &shown),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Err(vec![Diagnostic::new(
                &text,
                &shown,
                at..at + 1,
                Severity::Error,
                "the file is not valid UTF-8",
                Some("UTF-8 text".to_string()),
            )])
        }
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// A toml crate error as a diagnostic: its message (split at ", expected" into message and
/// expectation) at its span.
fn toml_error(text: &str, path: &str, e: &toml::de::Error) -> Diagnostic {
    let msg = e.message().trim_end();
    let (message, expected) = match msg.split_once(", expected ") {
        Some((m, x)) => (m.to_string(), Some(x.to_string())),
        None => match msg.split_once("\nexpected ") {
            Some((m, x)) => (m.to_string(), Some(x.to_string())),
            None => (msg.to_string(), None),
        },
    };
    // serde names Rust types; say what the file should hold.
    let expected = expected.map(|x| match x.as_str() {
        "i64" => "an integer".to_string(),
        "a boolean" | "bool" => "`true` or `false`".to_string(),
        "a string" | "String" => "a string in double quotes".to_string(),
        _ => x,
    });
    Diagnostic::new(
        text,
        path,
        e.span().unwrap_or(0..0),
        Severity::Error,
        message,
        expected,
    )
}

fn vip(cx: &mut Cx<'_>, r: &RawVip) -> Option<Vip> {
    let (addr, prefix) = cx.prefix(&r.address)?;
    let device = r.device.get_ref().clone();
    if device.is_empty() || device.contains(':') {
        cx.error(
            r.device.span(),
            format!("`{device}` is not a device name"),
            "a network device such as `eth0` (an alias goes in `label`)",
        );
        return None;
    }
    let label = match &r.label {
        None => device.clone(),
        Some(l) => {
            let ok = l.get_ref() == &device
                || l.get_ref()
                    .strip_prefix(device.as_str())
                    .is_some_and(|rest| rest.starts_with(':'));
            if !ok {
                cx.error(
                    l.span(),
                    format!("label `{}` is not an alias of `{device}`", l.get_ref()),
                    format!("`{device}` or `{device}:ALIAS`"),
                );
                return None;
            }
            l.get_ref().clone()
        }
    };
    Some(Vip {
        addr,
        prefix,
        device,
        label,
    })
}

fn fwmark_rule(cx: &mut Cx<'_>, r: &RawRule) -> Option<FwmarkRule> {
    let mark = cx.u32(&r.mark, "firewall mark");
    let protocol = match &r.protocol {
        None => Some(None),
        Some(p) => cx.choice(p, "protocol", PROTOCOLS).map(Some),
    };
    let dst = cx.prefix(&r.destination);
    let ports = match &r.ports {
        None => Some((0, 65_535)),
        Some(v) => {
            let parsed = match v.get_ref() {
                toml::Value::Integer(n) => u16::try_from(*n).ok().map(|p| (p, p)),
                toml::Value::String(s) => parse_range(s),
                _ => None,
            };
            if parsed.is_none() {
                cx.error(
                    v.span(),
                    format!("`{}` is not a port or port range", v.get_ref()),
                    "a port such as `80` or a range such as `\"8000-8100\"`",
                );
            }
            parsed
        }
    };
    let src = match &r.source {
        None => Some(None),
        Some(v) => cx.prefix(v).map(|(addr, len)| Some(Prefix { addr, len })),
    };
    let (addr, len) = dst?;
    Some(FwmarkRule {
        protocol: protocol?,
        dst: Prefix { addr, len },
        src: src?,
        ports: ports?,
        mark: mark?,
    })
}

/// A method name and its tunnel options, as one forwarding method.
fn method(
    cx: &mut Cx<'_>,
    name: &Str,
    tunnel: Option<&Spanned<RawTunnel>>,
) -> Option<ForwardMethod> {
    let m = cx.choice(name, "forwarding method", METHODS)?;
    if m != MethodName::Tun {
        if let Some(t) = tunnel {
            cx.error(
                t.span(),
                format!("`tunnel` options with method `{}`", name.get_ref()),
                "`method = \"tun\"` (tunnel options are for tunnelling only)",
            );
            return None;
        }
        return Some(match m {
            MethodName::Nat => ForwardMethod::Masq,
            MethodName::Dr => ForwardMethod::DirectRoute,
            _ => ForwardMethod::FullNat,
        });
    }
    let Some(t) = tunnel else {
        return Some(ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        });
    };
    let raw = t.get_ref();
    let kind_name = match &raw.kind {
        Some(k) => cx.choice(k, "tunnel type", &[("ipip", 0u8), ("gue", 1), ("gre", 2)])?,
        None => 0,
    };
    let csum = match &raw.csum {
        Some(c) => cx.choice(c, "tunnel checksum option", CSUMS)?,
        None => TunnelCsum::NoCsum,
    };
    let kind = match (kind_name, &raw.port) {
        (1, Some(p)) => TunnelKind::Gue {
            port: cx.int(p, 1, 65_535, "GUE port")? as u16,
        },
        (1, None) => {
            cx.error(
                t.span(),
                "a GUE tunnel needs a port",
                "`port = N` in `tunnel`",
            );
            return None;
        }
        (_, Some(p)) => {
            cx.error(p.span(), "only GUE tunnels take a port", "`type = \"gue\"`");
            return None;
        }
        (0, None) => TunnelKind::Ipip,
        _ => TunnelKind::Gre,
    };
    let csum_span = raw.csum.as_ref().map_or(t.span(), Spanned::span);
    match (kind, csum) {
        (TunnelKind::Ipip, TunnelCsum::Csum | TunnelCsum::RemCsum) => {
            cx.error(
                csum_span,
                "IPIP tunnels have no checksum option",
                "`csum = \"nocsum\"`, or `type = \"gue\"` / `\"gre\"`",
            );
            None
        }
        (TunnelKind::Gre, TunnelCsum::RemCsum) => {
            cx.error(
                csum_span,
                "GRE tunnels do not support remote checksum offload",
                "`\"nocsum\"` or `\"csum\"`",
            );
            None
        }
        (kind, csum) => Some(ForwardMethod::Tunnel { kind, csum }),
    }
}

fn flag_bit(name: &str, scheduler: SchedulerKind) -> Result<u8, Option<SchedulerKind>> {
    let (bit, needs) = match name {
        "flag-1" => (SchedFlags::FLAG_1, None),
        "flag-2" => (SchedFlags::FLAG_2, None),
        "flag-3" => (SchedFlags::FLAG_3, None),
        "sh-fallback" => (SchedFlags::FLAG_1, Some(SchedulerKind::Sh)),
        "sh-port" => (SchedFlags::FLAG_2, Some(SchedulerKind::Sh)),
        "mh-fallback" => (SchedFlags::FLAG_1, Some(SchedulerKind::Mh)),
        "mh-port" => (SchedFlags::FLAG_2, Some(SchedulerKind::Mh)),
        _ => return Err(None),
    };
    match needs {
        Some(k) if k != scheduler => Err(Some(k)),
        _ => Ok(bit),
    }
}

type ServiceParts = (
    VirtualServiceConfig,
    SvcSpans,
    Option<ServiceHealth>,
    ServiceNames,
);

/// Whether a raw real server is in service (`active` \[true\]).
fn active(r: &RawReal) -> bool {
    r.active.as_ref().is_none_or(|a| *a.get_ref())
}

fn service(cx: &mut Cx<'_>, s: &Spanned<RawService>) -> Option<ServiceParts> {
    let errors_before = cx.errors.len();
    let r = s.get_ref();
    let table = s.span();
    let (key, key_span, port_span) = match (&r.vip, &r.fwmark) {
        (Some(v), None) => {
            if let Some(f) = &r.family {
                cx.error(
                    f.span(),
                    "`family` is for fwmark services",
                    "no `family`: a VIP's family is its address's",
                );
            }
            let addr = cx.ip(v);
            let protocol = match &r.protocol {
                Some(p) => cx.choice(p, "protocol", PROTOCOLS),
                None => Some(Protocol::Tcp),
            };
            let port = match &r.port {
                Some(p) => cx.port(p),
                None => {
                    cx.error(
                        v.span(),
                        "the service has no `port`",
                        "`port = N` (0 = all ports, persistent services only)",
                    );
                    None
                }
            };
            let key = ServiceKey::Addr {
                protocol: protocol?,
                addr: addr?,
                port: port?,
            };
            (
                key,
                v.span(),
                r.port.as_ref().map_or(v.span(), Spanned::span),
            )
        }
        (None, Some(m)) => {
            for (name, span) in [
                ("protocol", r.protocol.as_ref().map(Spanned::span)),
                ("port", r.port.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    cx.error(
                        span,
                        format!("`{name}` is for VIP services, not fwmark services"),
                        "classifier rules (`[[fwmark_rule]]`) to say which packets get the mark",
                    );
                }
            }
            let mark = cx.u32(m, "firewall mark");
            let family = match &r.family {
                Some(f) => cx.choice(f, "address family", FAMILIES),
                None => Some(Family::V4),
            };
            let key = ServiceKey::Fwmark {
                mark: mark?,
                family: family?,
            };
            (key, m.span(), m.span())
        }
        (Some(_), Some(m)) => {
            cx.error(
                m.span(),
                "a service has either `vip` or `fwmark`, not both",
                "`vip`, `protocol` and `port`, or `fwmark` (and `family`)",
            );
            return None;
        }
        (None, None) => {
            cx.error(
                table.start..table.start,
                "the service has neither `vip` nor `fwmark`",
                "`vip = \"ADDRESS\"` with `port`, or `fwmark = N`",
            );
            return None;
        }
    };
    let mut svc = VirtualServiceConfig::new(key);
    let mut spans = SvcSpans {
        key: key_span.clone(),
        port: port_span,
        persistence_timeout: key_span.clone(),
        persistence_prefix: key_span.clone(),
        one_packet: key_span.clone(),
        mh: key_span.clone(),
        scheduler: key_span.clone(),
        servers: Vec::new(),
    };
    if let Some(v) = &r.scheduler {
        svc.scheduler = cx
            .choice(v, "scheduler", &SchedulerKind::ALL.map(|k| (k.name(), k)))
            .unwrap_or_default();
        spans.mh = v.span();
        spans.scheduler = v.span();
    }
    if let Some(c) = &r.consistent {
        cluster::consistent(cx, c, r.scheduler.as_ref(), &mut svc);
    }
    for f in r.flags.iter().flatten() {
        match flag_bit(f.get_ref(), svc.scheduler) {
            Ok(bit) => svc.flags.0 |= bit,
            Err(None) => cx.error(
                f.span(),
                format!("unknown scheduler flag `{}`", f.get_ref()),
                "`flag-1`, `flag-2`, `flag-3`, `sh-fallback`, `sh-port`, `mh-fallback` or \
                 `mh-port`",
            ),
            Err(Some(k)) => cx.error(
                f.span(),
                format!(
                    "`{}` only applies to the {} scheduler",
                    f.get_ref(),
                    k.name()
                ),
                format!("`scheduler = \"{}\"`, or `flag-N`", k.name()),
            ),
        }
    }
    if let Some(p) = &r.persistence {
        let pr = p.get_ref();
        let timeout = match &pr.timeout {
            Some(t) => {
                spans.persistence_timeout = t.span();
                cx.u32(t, "persistence timeout")
            }
            None => {
                spans.persistence_timeout = p.span();
                Some(Persistence::DEFAULT_TIMEOUT)
            }
        };
        let prefix = match &pr.prefix {
            Some(l) => {
                spans.persistence_prefix = l.span();
                cx.int(l, 0, 255, "persistence prefix").map(|n| n as u8)
            }
            None => Some(svc.key.family().max_prefix()),
        };
        if let (Some(timeout), Some(prefix)) = (timeout, prefix) {
            svc.persistence = Some(Persistence { timeout, prefix });
        }
    }
    if let Some(o) = &r.one_packet {
        svc.one_packet = *o.get_ref();
        spans.one_packet = o.span();
    }
    if let Some(m) = &r.mh_table_size {
        svc.mh_table_size = cx.u32(m, "mh table size").unwrap_or(svc.mh_table_size);
        spans.mh = m.span();
    }
    let default_method = r
        .method
        .as_ref()
        .map(|m| (method(cx, m, r.tunnel.as_ref()), m.span()));
    if let (None, Some(t)) = (&r.method, &r.tunnel) {
        cx.error(
            t.span(),
            "`tunnel` options without `method = \"tun\"`",
            "`method = \"tun\"` next to `tunnel`",
        );
    }
    let svc_port = match key {
        ServiceKey::Addr { port, .. } => port,
        ServiceKey::Fwmark { .. } => 0,
    };
    let mut names = ServiceNames {
        service: key,
        name: r.name.as_ref().map(|n| n.get_ref().clone()),
        slots: Vec::new(),
    };
    for rs in &r.real_server {
        let raw = rs.get_ref();
        if !active(raw) {
            if let Some(s) = inactive_server(cx, raw, svc_port) {
                names.slots.push(ServerSlot::Inactive(s));
            }
            continue;
        }
        names.slots.push(ServerSlot::Active(
            raw.name.as_ref().map(|n| n.get_ref().clone()),
        ));
        let addr = cx.ip(&raw.address);
        let mut real = RealServerConfig::new(addr.unwrap_or(IpAddr::from([0, 0, 0, 0])), svc_port);
        let mut sp = RsSpans {
            address: raw.address.span(),
            weight: raw.address.span(),
            thresholds: raw.address.span(),
            method: raw.address.span(),
        };
        if let Some(p) = &raw.port {
            real.port = cx.port(p).unwrap_or(0);
        }
        if let Some(w) = &raw.weight {
            real.weight = cx
                .int(w, 0, i64::from(RealServerConfig::MAX_WEIGHT), "weight")
                .unwrap_or(1) as u32;
            sp.weight = w.span();
        }
        if let Some(u) = &raw.u_threshold {
            real.u_threshold = cx.u32(u, "threshold").unwrap_or(0);
            sp.thresholds = u.span();
        }
        if let Some(l) = &raw.l_threshold {
            real.l_threshold = cx.u32(l, "threshold").unwrap_or(0);
            sp.thresholds = l.span();
        }
        match (&raw.method, &default_method) {
            (Some(m), _) => {
                sp.method = m.span();
                if let Some(f) = method(cx, m, raw.tunnel.as_ref()) {
                    real.method = f;
                }
            }
            (None, Some((m, span))) => {
                if let Some(t) = &raw.tunnel {
                    cx.error(
                        t.span(),
                        "`tunnel` options without `method = \"tun\"` on this real server",
                        "`method = \"tun\"` next to `tunnel`",
                    );
                }
                sp.method = span.clone();
                if let Some(f) = m {
                    real.method = *f;
                }
            }
            (None, None) => cx.error(
                rs.span().start..rs.span().start,
                "the real server has no forwarding `method`",
                "`method = \"nat\"`, `\"dr\"`, `\"tun\"` or `\"fullnat\"` here or on the service",
            ),
        }
        svc.real_servers.push(real);
        spans.servers.push(sp);
    }
    let sorry_method = default_method.and_then(|(m, _)| m);
    let health = service_health(cx, r, &svc, sorry_method);
    (cx.errors.len() == errors_before).then_some((svc, spans, health, names))
}

/// A real server with `active = false`: its name, address, port and weight; the keys of
/// forwarding and health monitoring are refused (nothing would act on them).
fn inactive_server(cx: &mut Cx<'_>, raw: &RawReal, svc_port: u16) -> Option<InactiveServer> {
    let before = cx.errors.len();
    for (key, span) in [
        ("u_threshold", raw.u_threshold.as_ref().map(Spanned::span)),
        ("l_threshold", raw.l_threshold.as_ref().map(Spanned::span)),
        ("method", raw.method.as_ref().map(Spanned::span)),
        ("tunnel", raw.tunnel.as_ref().map(Spanned::span)),
        ("health", raw.health.as_ref().map(Spanned::span)),
        (
            "check",
            raw.check
                .as_ref()
                .and_then(|c| c.first())
                .map(Spanned::span),
        ),
    ] {
        if let Some(span) = span {
            cx.error(
                span,
                format!("`{key}` on a real server with `active = false`"),
                "only `name`, `address`, `port` and `weight` (the server is not in service)",
            );
        }
    }
    let addr = cx.ip(&raw.address);
    let port = raw.port.as_ref().map_or(Some(svc_port), |p| cx.port(p));
    let weight = raw.weight.as_ref().map_or(Some(1), |w| {
        cx.int(w, 0, i64::from(RealServerConfig::MAX_WEIGHT), "weight")
            .map(|n| n as u32)
    });
    if cx.errors.len() != before {
        return None;
    }
    Some(InactiveServer {
        name: raw.name.as_ref().map(|n| n.get_ref().clone()),
        addr: addr?,
        port: port?,
        weight: weight?,
    })
}

// ---------------------------------------------------------------------------------------
// Health monitoring.

const ON_FAILURE: &[(&str, OnFailure)] = &[
    ("remove", OnFailure::Remove),
    ("quiesce", OnFailure::Quiesce),
];

/// The check types, and the keys each takes besides the common ones (type, timers, target).
const CHECK_TYPES: &[(&str, &[&str])] = &[
    ("tcp", &[]),
    (
        "send-expect",
        &[
            "send",
            "send_hex",
            "expect",
            "expect_hex",
            "expect_regex",
            "expect_any",
            "udp",
        ],
    ),
    ("program", &["command", "expect"]),
    ("http", &["url", "virtualhost", "http_version"]),
    ("https", &["url", "virtualhost", "http_version", "sni"]),
    ("misc", &["command", "user", "dynamic"]),
    (
        "udp",
        &[
            "payload",
            "require_reply",
            "min_reply_length",
            "max_reply_length",
        ],
    ),
    ("dns", &["query_type", "name"]),
    ("ping", &[]),
];

/// A real server's health settings, before they meet its address and checks.
#[derive(Clone)]
struct ServerSettings {
    on_failure: OnFailure,
    alpha: bool,
    rise: u32,
    fall: u32,
    slow_start: Option<core::time::Duration>,
    notify_up: Option<Notify>,
    notify_down: Option<Notify>,
    load_monitor: Option<LoadMonitor>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            on_failure: OnFailure::Remove,
            alpha: false,
            rise: 1,
            fall: 1,
            slow_start: None,
            notify_up: None,
            notify_down: None,
            load_monitor: None,
        }
    }
}

impl Cx<'_> {
    /// Seconds: an integer, or a float with up to microsecond precision.
    fn seconds(&mut self, v: &Secs, what: &str) -> Option<core::time::Duration> {
        let d = match v.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Some(core::time::Duration::from_secs(*n as u64)),
            toml::Value::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e12 => {
                Some(core::time::Duration::from_micros((f * 1e6).round() as u64))
            }
            _ => None,
        };
        if d.is_none() {
            self.error(
                v.span(),
                format!("`{}` is not a time in seconds for {what}", v.get_ref()),
                "seconds, e.g. `5` or `0.5`",
            );
        }
        d
    }

    fn positive_seconds(&mut self, v: &Secs, what: &str) -> Option<core::time::Duration> {
        let d = self.seconds(v, what)?;
        if d.is_zero() {
            self.error(
                v.span(),
                format!("{what} cannot be 0"),
                "a time above 0 seconds",
            );
            return None;
        }
        Some(d)
    }

    fn at_least_one(&mut self, v: &Int, what: &str) -> Option<u32> {
        self.int(v, 1, i64::from(u32::MAX), what).map(|n| n as u32)
    }

    fn hex(&mut self, v: &Str) -> Option<Vec<u8>> {
        match crate::keepalived::hex_bytes(v.get_ref(), false) {
            Ok((b, _)) => Some(b),
            Err(why) => {
                self.error(
                    v.span(),
                    format!("`{}` is not a hex string: {why}", v.get_ref()),
                    "hex digits, e.g. `\"0a1b 2c\"`",
                );
                None
            }
        }
    }

    /// A script key and its `_user` key of one table: the script (and user) given, or
    /// `inherited` when the table names no script; a user without the script is an error.
    fn notify(
        &mut self,
        (command, user): (&Option<Str>, &Option<Str>),
        inherited: Option<Notify>,
        key: &str,
    ) -> Option<Notify> {
        match (command, user) {
            (Some(c), u) => Some(Notify {
                command: c.get_ref().clone(),
                user: u.as_ref().map(|u| u.get_ref().clone()),
            }),
            (None, Some(u)) => {
                self.error(
                    u.span(),
                    format!("`{key}_user` without `{key}` in the same table"),
                    format!("`{key}` with the script, or no `{key}_user`"),
                );
                inherited
            }
            (None, None) => inherited,
        }
    }

    /// Apply a `health` table's settings over `base`.
    #[allow(clippy::too_many_arguments)]
    fn settings(
        &mut self,
        mut base: ServerSettings,
        on_failure: &Option<Str>,
        alpha: Option<bool>,
        rise: &Option<Int>,
        fall: &Option<Int>,
        slow_start: &Option<Secs>,
        notify: [(&Option<Str>, &Option<Str>); 2],
        load_monitor: &Option<Spanned<RawLoadMonitor>>,
    ) -> ServerSettings {
        if let Some(v) = on_failure
            && let Some(o) = self.choice(v, "on_failure", ON_FAILURE)
        {
            base.on_failure = o;
        }
        if let Some(a) = alpha {
            base.alpha = a;
        }
        if let Some(v) = rise {
            base.rise = self.at_least_one(v, "rise").unwrap_or(1);
        }
        if let Some(v) = fall {
            base.fall = self.at_least_one(v, "fall").unwrap_or(1);
        }
        if let Some(v) = slow_start {
            base.slow_start = self.positive_seconds(v, "slow_start");
        }
        base.notify_up = self.notify(notify[0], base.notify_up, "notify_up");
        base.notify_down = self.notify(notify[1], base.notify_down, "notify_down");
        if let Some(l) = load_monitor {
            let r = l.get_ref();
            let mut m = LoadMonitor {
                interval: core::time::Duration::from_secs(20),
                agent: None,
                scale: 4,
            };
            if let Some(v) = &r.interval {
                m.interval = self
                    .positive_seconds(v, "the load monitor's interval")
                    .unwrap_or(m.interval);
            }
            if let Some(v) = &r.scale {
                m.scale = self.at_least_one(v, "scale").unwrap_or(4);
            }
            if let Some(v) = &r.agent {
                let text = v.get_ref();
                let parsed = text
                    .parse::<std::net::SocketAddr>()
                    .map(|a| (a.ip(), a.port()))
                    .or_else(|_| text.parse::<IpAddr>().map(|a| (a, LoadMonitor::AGENT_PORT)));
                match parsed {
                    Ok(a) => m.agent = Some(a),
                    Err(_) => self.error(
                        v.span(),
                        format!("`{text}` is not an address or address:port"),
                        "the agent's `IP` or `IP:PORT` (`[IPv6]:PORT`)",
                    ),
                }
            }
            base.load_monitor = Some(m);
        }
        base
    }
}

/// The health monitoring of a service, if it has any: `[service.health]`, or a real server
/// with `health` or `check`. Every real server of a monitored service is listed: its own
/// settings over the service's, its own checks (even `check = []`) or else the service's.
fn service_health(
    cx: &mut Cx<'_>,
    r: &RawService,
    svc: &VirtualServiceConfig,
    sorry_method: Option<ForwardMethod>,
) -> Option<ServiceHealth> {
    let any_rs = r
        .real_server
        .iter()
        .any(|rs| rs.get_ref().health.is_some() || rs.get_ref().check.is_some());
    let in_service = r.real_server.iter().filter(|rs| active(rs.get_ref()));
    if r.health.is_none() && !any_rs {
        return None;
    }
    let udp = matches!(
        svc.key,
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            ..
        }
    );
    let mut out = ServiceHealth {
        service: svc.key,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        omega: false,
        sorry_server: None,
        real_servers: Vec::new(),
    };
    let mut defaults = ServerSettings::default();
    let mut default_checks = Vec::new();
    if let Some(h) = &r.health {
        let h = h.get_ref();
        if let Some(v) = &h.quorum {
            out.quorum = cx.at_least_one(v, "quorum").unwrap_or(1);
        }
        if let Some(v) = &h.hysteresis {
            out.hysteresis = cx.u32(v, "hysteresis").unwrap_or(0);
        }
        out.quorum_up = cx.notify((&h.quorum_up, &h.quorum_up_user), None, "quorum_up");
        out.quorum_down = cx.notify((&h.quorum_down, &h.quorum_down_user), None, "quorum_down");
        out.omega = h.omega.unwrap_or(false);
        if let Some(sp) = &h.sorry_server {
            out.sorry_server = sorry(cx, sp, svc, sorry_method);
        }
        defaults = cx.settings(
            defaults,
            &h.on_failure,
            h.alpha,
            &h.rise,
            &h.fall,
            &h.slow_start,
            [
                (&h.notify_up, &h.notify_up_user),
                (&h.notify_down, &h.notify_down_user),
            ],
            &h.load_monitor,
        );
        default_checks = h
            .check
            .iter()
            .flatten()
            .filter_map(|c| check(cx, c, udp))
            .collect();
    }
    for (raw, real) in in_service.zip(&svc.real_servers) {
        let raw = raw.get_ref();
        let settings = match &raw.health {
            Some(h) => {
                let h = h.get_ref();
                cx.settings(
                    defaults.clone(),
                    &h.on_failure,
                    h.alpha,
                    &h.rise,
                    &h.fall,
                    &h.slow_start,
                    [
                        (&h.notify_up, &h.notify_up_user),
                        (&h.notify_down, &h.notify_down_user),
                    ],
                    &h.load_monitor,
                )
            }
            None => defaults.clone(),
        };
        let checks = match &raw.check {
            Some(list) => list.iter().filter_map(|c| check(cx, c, udp)).collect(),
            None => default_checks.clone(),
        };
        out.real_servers.push(RealServerHealth {
            addr: real.addr,
            port: real.port,
            on_failure: settings.on_failure,
            alpha: settings.alpha,
            rise: settings.rise,
            fall: settings.fall,
            slow_start: settings.slow_start,
            notify_up: settings.notify_up,
            notify_down: settings.notify_down,
            load_monitor: settings.load_monitor,
            checks,
        });
    }
    Some(out)
}

fn sorry(
    cx: &mut Cx<'_>,
    sp: &Spanned<RawSorry>,
    svc: &VirtualServiceConfig,
    service_method: Option<ForwardMethod>,
) -> Option<SorryServer> {
    let r = sp.get_ref();
    let addr = cx.ip(&r.address);
    let port = match (&r.port, svc.key) {
        (Some(p), _) => cx.port(p),
        (None, ServiceKey::Addr { port, .. }) => Some(port),
        (None, ServiceKey::Fwmark { .. }) => Some(0),
    };
    let m = match (&r.method, service_method) {
        (Some(m), _) => method(cx, m, r.tunnel.as_ref()),
        (None, Some(m)) => {
            if let Some(t) = &r.tunnel {
                cx.error(
                    t.span(),
                    "`tunnel` options without `method = \"tun\"` on the sorry server",
                    "`method = \"tun\"` next to `tunnel`",
                );
            }
            Some(m)
        }
        (None, None) => {
            cx.error(
                sp.span(),
                "the sorry server has no forwarding `method`",
                "`method = \"nat\"`, `\"dr\"`, `\"tun\"` or `\"fullnat\"` here or on the service",
            );
            None
        }
    };
    Some(SorryServer {
        addr: addr?,
        port: port?,
        method: m?,
        inhibit: r.inhibit.unwrap_or(false),
    })
}

impl RawCheck {
    /// Every key set besides `type`, with its span.
    fn keys(&self) -> Vec<(&'static str, Span)> {
        let mut v = Vec::new();
        macro_rules! key {
            ($($f:ident),*) => {$(
                if let Some(x) = &self.$f { v.push((stringify!($f), x.span())); }
            )*};
        }
        key!(
            interval,
            timeout,
            retry,
            delay_before_retry,
            warmup,
            connect_ip,
            connect_port,
            bindto,
            bind_port,
            fwmark,
            via_vip,
            send,
            send_hex,
            expect,
            expect_hex,
            expect_regex,
            expect_any,
            udp,
            command,
            user,
            dynamic,
            url,
            virtualhost,
            http_version,
            sni,
            payload,
            require_reply,
            min_reply_length,
            max_reply_length,
            query_type,
            name
        );
        v
    }
}

/// The keys every check takes.
const COMMON_CHECK_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "retry",
    "delay_before_retry",
    "warmup",
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "fwmark",
    "via_vip",
];

fn check(cx: &mut Cx<'_>, c: &Spanned<RawCheck>, service_udp: bool) -> Option<CheckSpec> {
    let errors_before = cx.errors.len();
    let r = c.get_ref();
    let types: Vec<(&str, &str)> = CHECK_TYPES.iter().map(|(n, _)| (*n, *n)).collect();
    let ty = cx.choice(&r.kind, "check type", &types)?;
    let own = CHECK_TYPES
        .iter()
        .find(|(n, _)| *n == ty)
        .map_or(&[][..], |(_, k)| *k);
    for (key, span) in r.keys() {
        if !COMMON_CHECK_KEYS.contains(&key) && !own.contains(&key) {
            let takers: Vec<String> = CHECK_TYPES
                .iter()
                .filter(|(_, k)| k.contains(&key))
                .map(|(n, _)| format!("`{n}`"))
                .collect();
            cx.error(
                span,
                format!("`{key}` is not a key of a `{ty}` check"),
                format!(
                    "`{key}` only in a check of type {}",
                    match takers.split_last() {
                        Some((last, [])) => last.clone(),
                        Some((last, init)) => format!("{} or {last}", init.join(", ")),
                        None => String::new(),
                    }
                ),
            );
        }
    }
    let d = CheckTimers::default();
    let mut timers = d;
    if let Some(v) = &r.interval {
        timers.interval = cx.positive_seconds(v, "interval").unwrap_or(d.interval);
    }
    let timeout = r
        .timeout
        .as_ref()
        .and_then(|v| cx.positive_seconds(v, "timeout"));
    timers.timeout = timeout.unwrap_or(d.timeout);
    if let Some(v) = &r.retry {
        timers.retry = cx.u32(v, "retry").unwrap_or(d.retry);
    }
    if let Some(v) = &r.delay_before_retry {
        timers.delay_before_retry = cx
            .seconds(v, "delay_before_retry")
            .unwrap_or(d.delay_before_retry);
    }
    if let Some(v) = &r.warmup {
        timers.warmup = cx.seconds(v, "warmup").unwrap_or(d.warmup);
    }
    let target = CheckTarget {
        connect_ip: r.connect_ip.as_ref().and_then(|v| cx.ip(v)),
        connect_port: r.connect_port.as_ref().and_then(|v| cx.port(v)),
        bindto: r.bindto.as_ref().and_then(|v| cx.ip(v)),
        bind_port: r.bind_port.as_ref().and_then(|v| cx.port(v)),
        fwmark: r.fwmark.as_ref().and_then(|v| cx.u32(v, "firewall mark")),
        via_vip: r.via_vip.as_ref().is_some_and(|v| *v.get_ref()),
    };
    let text = |v: &Option<Str>| v.as_ref().map(|s| s.get_ref().clone());
    let kind = match ty {
        "tcp" => CheckKind::Tcp,
        "ping" => CheckKind::Ping,
        "send-expect" => {
            if let (Some(_), Some(h)) = (&r.send, &r.send_hex) {
                cx.error(h.span(), "both `send` and `send_hex`", "one of them");
            }
            let send = match (&r.send, &r.send_hex) {
                (Some(t), _) => t.get_ref().as_bytes().to_vec(),
                (None, Some(h)) => cx.hex(h).unwrap_or_default(),
                (None, None) => Vec::new(),
            };
            let mut expects = Vec::new();
            if let Some(e) = &r.expect {
                expects.push((Expect::Prefix(e.get_ref().as_bytes().to_vec()), e.span()));
            }
            if let Some(e) = &r.expect_hex
                && let Some(b) = cx.hex(e)
            {
                expects.push((Expect::Prefix(b), e.span()));
            }
            if let Some(e) = &r.expect_regex {
                if let Err(why) = regex_syntax_ok(e.get_ref()) {
                    cx.error(
                        e.span(),
                        format!("`{}` is not a regular expression: {why}", e.get_ref()),
                        "a regular expression",
                    );
                }
                expects.push((Expect::Regex(e.get_ref().clone()), e.span()));
            }
            if let Some(e) = &r.expect_any
                && *e.get_ref()
            {
                expects.push((Expect::Any, e.span()));
            }
            if let Some((_, span)) = expects.get(1) {
                cx.error(
                    span.clone(),
                    "a check has one of `expect`, `expect_hex`, `expect_regex` and `expect_any`",
                    "one of them",
                );
            }
            CheckKind::SendExpect {
                send,
                expect: expects.into_iter().next().map(|(e, _)| e),
                udp: r.udp.as_ref().map_or(service_udp, |u| *u.get_ref()),
            }
        }
        "program" => CheckKind::Program {
            command: required(cx, &r.command, c, "command", "program")?,
            expect: text(&r.expect),
        },
        "misc" => {
            // The program is killed after `timeout`, else after the interval (keepalived's
            // MISC_CHECK rule).
            timers.timeout = timeout.unwrap_or(timers.interval);
            CheckKind::Misc {
                path: required(cx, &r.command, c, "command", "misc")?,
                user: r.user.as_ref().map(|u| u.get_ref().clone()),
                timeout,
                dynamic: r.dynamic.as_ref().is_some_and(|v| *v.get_ref()),
            }
        }
        "http" | "https" => {
            let urls: Vec<UrlCheck> = match &r.url {
                Some(list) if !list.get_ref().is_empty() => list
                    .get_ref()
                    .iter()
                    .filter_map(|u| url_check(cx, u))
                    .collect(),
                Some(list) => {
                    cx.error(list.span(), "no `url` to check", "at least one `url`");
                    Vec::new()
                }
                None => {
                    cx.error(
                        r.kind.span(),
                        format!("the `{ty}` check has no `url`"),
                        "`url = [{ path = \"/\" }]` or `[[...check.url]]` tables",
                    );
                    Vec::new()
                }
            };
            let http_1_1 = match &r.http_version {
                None => false,
                Some(v) => cx.choice(v, "HTTP version", &[("1.0", false), ("1.1", true)])?,
            };
            CheckKind::Http {
                tls: ty == "https",
                urls,
                virtualhost: text(&r.virtualhost),
                http_1_1,
                sni: r.sni.as_ref().is_some_and(|v| *v.get_ref()),
            }
        }
        "udp" => {
            let payload = match &r.payload {
                Some(p) => cx.hex(p).unwrap_or_default(),
                None => Vec::new(),
            };
            let require_reply = match &r.require_reply {
                None => None,
                Some(v) if v.get_ref().trim().is_empty() => Some(Vec::new()),
                Some(v) => cx.hex(v),
            };
            let min = r
                .min_reply_length
                .as_ref()
                .and_then(|v| cx.int(v, 0, 65_535, "reply length"))
                .map(|n| n as u32);
            let max = r
                .max_reply_length
                .as_ref()
                .and_then(|v| cx.int(v, 0, 65_535, "reply length"))
                .map(|n| n as u32);
            // A `min_reply_length` above `max_reply_length` is read as written: no reply
            // passes, so the check always fails, as keepalived's does (check_udp.c "will
            // always fail"; the keepalived reader warns, and a converted file reads back).
            CheckKind::Udp {
                payload,
                require_reply,
                min_reply_len: min,
                max_reply_len: max,
            }
        }
        _ => {
            let qtype = match &r.query_type {
                None => DnsType::Soa,
                Some(v) => match DnsType::from_name(v.get_ref()) {
                    Some(t) => t,
                    None => {
                        cx.error(
                            v.span(),
                            format!("unknown DNS query type `{}`", v.get_ref()),
                            "one of A, NS, CNAME, SOA, MX, TXT or AAAA",
                        );
                        DnsType::Soa
                    }
                },
            };
            CheckKind::Dns {
                qtype,
                name: text(&r.name).unwrap_or_else(|| ".".to_string()),
            }
        }
    };
    (cx.errors.len() == errors_before).then_some(CheckSpec {
        kind,
        target,
        timers,
    })
}

/// A key a check type cannot do without.
fn required(
    cx: &mut Cx<'_>,
    v: &Option<Str>,
    c: &Spanned<RawCheck>,
    key: &str,
    ty: &str,
) -> Option<String> {
    match v {
        Some(s) => Some(s.get_ref().clone()),
        None => {
            cx.error(
                c.get_ref().kind.span(),
                format!("the `{ty}` check has no `{key}`"),
                format!("`{key} = \"...\"` in the check"),
            );
            None
        }
    }
}

/// A cheap syntax check of a regular expression: balanced brackets and parentheses, no
/// dangling escape. The checker compiles it for good; this catches typos early.
fn regex_syntax_ok(re: &str) -> Result<(), &'static str> {
    let mut depth = 0i32;
    let mut class = false;
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return Err("it ends with a lone `\\`"),
            '[' if !class => class = true,
            ']' if class => class = false,
            '(' if !class => depth += 1,
            ')' if !class => {
                depth -= 1;
                if depth < 0 {
                    return Err("a `)` closes nothing");
                }
            }
            _ => {}
        }
    }
    if class {
        Err("a `[` is not closed")
    } else if depth > 0 {
        Err("a `(` is not closed")
    } else {
        Ok(())
    }
}

fn url_check(cx: &mut Cx<'_>, u: &Spanned<RawUrl>) -> Option<UrlCheck> {
    let errors_before = cx.errors.len();
    let r = u.get_ref();
    let path = r.path.get_ref().clone();
    if !path.starts_with('/') {
        cx.error(
            r.path.span(),
            format!("`{path}` is not a URL path"),
            "a path starting with `/`",
        );
    }
    let digest = r.digest.as_ref().and_then(|d| {
        let t = d.get_ref();
        if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(t.to_ascii_lowercase())
        } else {
            cx.error(
                d.span(),
                format!("`{t}` is not an MD5 digest"),
                "32 hex digits",
            );
            None
        }
    });
    let mut status_codes = Vec::new();
    for v in r.status.iter().flatten() {
        let range = match v.get_ref() {
            toml::Value::Integer(n) => u16::try_from(*n).ok().map(|c| (c, c)),
            toml::Value::String(s) => parse_range(s),
            _ => None,
        };
        match range {
            Some((a, b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => {
                status_codes.push((a, b))
            }
            _ => cx.error(
                v.span(),
                format!("`{}` is not an HTTP status code or range", v.get_ref()),
                "codes in 100..=599 such as `200`, or ranges such as `\"200-299\"`",
            ),
        }
    }
    (cx.errors.len() == errors_before).then(|| UrlCheck {
        path,
        digest,
        status_codes,
        virtualhost: r.virtualhost.as_ref().map(|v| v.get_ref().clone()),
        regex: r.regex.as_ref().map(|v| v.get_ref().clone()),
        regex_no_match: r.regex_no_match.unwrap_or(false),
    })
}

/// Report `Config::validate`'s errors at the key each blames (see [`locate`]).
fn locate_validate_errors(
    cx: &mut Cx<'_>,
    config: &Config,
    raw: &RawFile,
    spans: &[SvcSpans],
    errs: &[ConfigError],
) {
    for l in locate::locate(config, errs) {
        let mut message = l.message;
        if let ConfigError::DuplicateService(_) = l.error {
            let line = l
                .first
                .map_or(1, |first| line_of(cx.text, place(raw, spans, first).start));
            message = format!("{message} (first on line {line})");
        }
        let expected = match l.error {
            ConfigError::DuplicateService(_) => {
                "one service per protocol, VIP and port (or firewall mark)"
            }
            ConfigError::ThresholdOrder { .. } => "`l_threshold` <= `u_threshold`",
            ConfigError::ZeroPortNonPersistent(_) => {
                "a non-zero `port`, or `persistence = { timeout = SECONDS }`"
            }
            ConfigError::OnePacketTcp(_) => "`protocol = \"udp\"`, or no `one_packet`",
            ConfigError::PersistenceTimeout(_) => "a timeout in 1..=2678400 seconds",
            ConfigError::PersistencePrefix(_) => {
                "a prefix length of the service's address family (32 or 128 at most)"
            }
            ConfigError::MhTableSize(_) => "one of the prime Maglev table sizes",
            ConfigError::FamilyMismatch { .. } => {
                "an address of the service's family (only `method = \"tun\"` may cross)"
            }
            ConfigError::NoLocalPool(_) => {
                "`[fullnat]` with `local_addresses` of this family and `ports`"
            }
            ConfigError::SynProxyMethod { .. } => {
                "`method = \"nat\"` or `\"fullnat\"`, or no `synproxy = true`"
            }
            _ => l.expected,
        };
        cx.error(place(raw, spans, l.target), message, expected);
    }
}

/// The span of a [`Target`]. A firewall mark is the service's key.
fn place(raw: &RawFile, spans: &[SvcSpans], target: Target) -> Span {
    match target {
        Target::Service { svc, part } => spans.get(svc).map_or(0..0, |sp| {
            match part {
                ServicePart::Key | ServicePart::Fwmark => &sp.key,
                ServicePart::Port => &sp.port,
                ServicePart::OnePacket => &sp.one_packet,
                ServicePart::PersistenceTimeout => &sp.persistence_timeout,
                ServicePart::PersistencePrefix => &sp.persistence_prefix,
                ServicePart::MhTableSize => &sp.mh,
            }
            .clone()
        }),
        Target::RealServer { svc, rs, part } => spans
            .get(svc)
            .and_then(|sp| sp.servers.get(rs))
            .map_or(0..0, |sp| {
                match part {
                    RealServerPart::Addr => &sp.address,
                    RealServerPart::Weight => &sp.weight,
                    RealServerPart::Thresholds => &sp.thresholds,
                    RealServerPart::Method => &sp.method,
                }
                .clone()
            }),
        // Every rule made it into the model (validation runs only without earlier errors),
        // so the model's index is the file's.
        Target::FwmarkRule(i) => raw
            .fwmark_rule
            .get(i)
            .map_or(0..0, |r| r.get_ref().mark.span()),
        Target::Unplaced => 0..0,
    }
}

// ---------------------------------------------------------------------------------------
// Writing.

/// A TOML basic string with the escapes TOML needs.
/// A TOML basic string on one line (the toml crate may choose a multi-line form, whose
/// whitespace rules are easy to trip over).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn addr_prefix(addr: IpAddr, len: u8) -> String {
    if len == Family::of(&addr).max_prefix() {
        addr.to_string()
    } else {
        format!("{addr}/{len}")
    }
}

fn write_vip(out: &mut String, v: &Vip) {
    let _ = writeln!(out, "address = {}", quote(&addr_prefix(v.addr, v.prefix)));
    let _ = writeln!(out, "device = {}", quote(&v.device));
    if v.label != v.device {
        let _ = writeln!(out, "label = {}", quote(&v.label));
    }
}

fn method_lines(m: ForwardMethod) -> String {
    match m {
        ForwardMethod::Masq => "method = \"nat\"\n".to_string(),
        ForwardMethod::DirectRoute => "method = \"dr\"\n".to_string(),
        ForwardMethod::FullNat => "method = \"fullnat\"\n".to_string(),
        ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        } => "method = \"tun\"\n".to_string(),
        ForwardMethod::Tunnel { kind, csum } => {
            let mut t = match kind {
                TunnelKind::Ipip => "type = \"ipip\"".to_string(),
                TunnelKind::Gre => "type = \"gre\"".to_string(),
                TunnelKind::Gue { port } => format!("type = \"gue\", port = {port}"),
            };
            match csum {
                TunnelCsum::NoCsum => {}
                TunnelCsum::Csum => t.push_str(", csum = \"csum\""),
                TunnelCsum::RemCsum => t.push_str(", csum = \"remcsum\""),
            }
            format!("method = \"tun\"\ntunnel = {{ {t} }}\n")
        }
    }
}

/// The names under which a service's flags are written: the scheduler's own names for sh
/// and mh, `flag-N` otherwise.
fn flag_names(flags: SchedFlags, scheduler: SchedulerKind) -> Vec<String> {
    let prefix = match scheduler {
        SchedulerKind::Sh => Some("sh"),
        SchedulerKind::Mh => Some("mh"),
        _ => None,
    };
    let mut out = Vec::new();
    for (bit, n, own) in [
        (SchedFlags::FLAG_1, 1, "fallback"),
        (SchedFlags::FLAG_2, 2, "port"),
        (SchedFlags::FLAG_3, 3, ""),
    ] {
        if flags.0 & bit == 0 {
            continue;
        }
        out.push(match prefix {
            Some(p) if !own.is_empty() => format!("{p}-{own}"),
            _ => format!("flag-{n}"),
        });
    }
    out
}

/// Write a native configuration: every setting explicit except optional ones left unset
/// (persistence, flags, thresholds, tunnel options), in a fixed order, so the text is
/// stable and [`parse_native`] gives `conf` back. Scheduler flag bits outside the three
/// kernel flags are not written (the model keeps them in a `u8`, the kernel has three).
pub fn emit_native(conf: &NativeConf) -> String {
    let c = &conf.config;
    let mut out = String::from("# rvs native configuration\n");
    let t = c.timeouts;
    let _ = write!(
        out,
        "\n[timeouts]\ntcp = {}\ntcp_fin = {}\nudp = {}\n",
        t.tcp, t.tcp_fin, t.udp
    );
    let s = c.switches;
    let _ = write!(
        out,
        "\n[switches]\nexpire_nodest_conn = {}\nexpire_quiescent_template = {}\n\
         sloppy_tcp = {}\nconn_reuse_mode = {}\n",
        s.expire_nodest_conn, s.expire_quiescent_template, s.sloppy_tcp, s.conn_reuse_mode
    );
    let when_full = TABLE_FULL
        .iter()
        .find(|(_, p)| *p == c.table_full)
        .map_or("drop-new", |(n, _)| n);
    let d = c.defense;
    if d != Defense::default() {
        let _ = write!(
            out,
            "amemthresh = {}\nam_droprate = {}\ndrop_entry = {}\ndrop_packet = {}\n\
             secure_tcp = {}\n",
            d.amemthresh, d.am_droprate, d.drop_entry, d.drop_packet, d.secure_tcp
        );
    }
    let _ = write!(
        out,
        "\n[conn_table]\nmax = {}\nwhen_full = \"{when_full}\"\n",
        c.conn_table_max
    );
    if c.conn_table_bytes != 0 {
        let _ = writeln!(
            out,
            "memory = \"{}\"",
            crate::format_size(c.conn_table_bytes)
        );
    }
    if c.synproxy.all {
        out.push_str("\n[synproxy]\nall = true\n");
    }
    if c.syn_shed != SynShed::default() {
        let s = &c.syn_shed;
        let _ = write!(
            out,
            "\n[syn_shed]\nenabled = {}\nbudget = {}\nproven = {}\n",
            s.enabled, s.budget, s.proven
        );
    }
    if c.neigh_gc_thresh3 != 0 {
        let _ = write!(out, "\n[neighbors]\ngc_thresh3 = {}\n", c.neigh_gc_thresh3);
    }
    if c.local_pool != LocalPool::default() {
        let addrs: Vec<String> = c
            .local_pool
            .addrs
            .iter()
            .map(|a| quote(&a.to_string()))
            .collect();
        let (lo, hi) = c.local_pool.port_range;
        let _ = write!(
            out,
            "\n[fullnat]\nlocal_addresses = [{}]\nports = \"{lo}-{hi}\"\n",
            addrs.join(", ")
        );
    }
    if let Some(n) = &conf.nat_router {
        out.push_str("\n[nat_router]\n");
        write_vip(&mut out, n);
    }
    // A VRRP instance's addresses are written with the instance, a failover service's with
    // the service, not as `[[vip]]`.
    let from_failover: Vec<Vip> = vrrp_vips(&conf.failover)
        .into_iter()
        .chain(fos_vips(&conf.failover))
        .collect();
    for v in &conf.vips {
        if from_failover.iter().any(|w| w == v) {
            continue;
        }
        out.push_str("\n[[vip]]\n");
        write_vip(&mut out, v);
    }
    failover::write(&mut out, &conf.failover);
    cluster::write(&mut out, conf.failover.cluster.as_ref());
    for r in &c.fwmark_rules {
        let _ = writeln!(out, "\n[[fwmark_rule]]\nmark = {}", r.mark);
        if let Some(p) = r.protocol {
            let _ = writeln!(out, "protocol = \"{}\"", protocol_name(p));
        }
        let _ = writeln!(
            out,
            "destination = {}",
            quote(&addr_prefix(r.dst.addr, r.dst.len))
        );
        if let Some(src) = r.src {
            let _ = writeln!(out, "source = {}", quote(&addr_prefix(src.addr, src.len)));
        }
        match r.ports {
            (0, 65_535) => {}
            (lo, hi) if lo == hi => {
                let _ = writeln!(out, "ports = {lo}");
            }
            (lo, hi) => {
                let _ = writeln!(out, "ports = \"{lo}-{hi}\"");
            }
        }
    }
    for svc in &c.services {
        out.push_str("\n[[service]]\n");
        let names = conf.names.service(&svc.key);
        if let Some(n) = names.and_then(|n| n.name.as_ref()) {
            let _ = writeln!(out, "name = {}", quote(n));
        }
        match svc.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let _ = write!(
                    out,
                    "vip = {}\nprotocol = \"{}\"\nport = {port}\n",
                    quote(&addr.to_string()),
                    protocol_name(protocol)
                );
            }
            ServiceKey::Fwmark { mark, family } => {
                let f = if family == Family::V4 { "ipv4" } else { "ipv6" };
                let _ = write!(out, "fwmark = {mark}\nfamily = \"{f}\"\n");
            }
        }
        let _ = writeln!(out, "scheduler = \"{}\"", svc.scheduler.name());
        let flags = flag_names(svc.flags, svc.scheduler);
        if !flags.is_empty() {
            let q: Vec<String> = flags.iter().map(|f| quote(f)).collect();
            let _ = writeln!(out, "flags = [{}]", q.join(", "));
        }
        if let Some(p) = svc.persistence {
            let _ = writeln!(
                out,
                "persistence = {{ timeout = {}, prefix = {} }}",
                p.timeout, p.prefix
            );
        }
        if svc.one_packet {
            out.push_str("one_packet = true\n");
        }
        if c.synproxy.services.contains(&svc.key) {
            out.push_str("synproxy = true\n");
        }
        if svc.mh_table_size != VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE
            || svc.scheduler == SchedulerKind::Mh
        {
            let _ = writeln!(out, "mh_table_size = {}", svc.mh_table_size);
        }
        let health = conf.health.services.iter().find(|h| h.service == svc.key);
        let udp = matches!(
            svc.key,
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                ..
            }
        );
        // Settings and checks all real servers share are written once for the service.
        let common = health.and_then(|h| {
            let first = h.real_servers.first()?;
            h.real_servers
                .iter()
                .all(|r| same_server_health(r, first))
                .then_some(first)
        });
        if let Some(h) = health {
            out.push_str("\n[service.health]\n");
            write_service_health(&mut out, h);
            if let Some(c) = common {
                for (k, v) in settings_pairs(c) {
                    let _ = writeln!(out, "{k} = {v}");
                }
                for check in &c.checks {
                    out.push_str("\n[[service.health.check]]\n");
                    write_check(&mut out, "service.health.check", check, udp);
                }
            }
        }
        let slots = server_slots(names, svc.real_servers.len());
        let mut servers = svc.real_servers.iter();
        for slot in slots.iter() {
            let (rs, name) = match slot {
                ServerSlot::Inactive(x) => {
                    let mut block = String::from("[[service.real_server]]\n");
                    if let Some(n) = &x.name {
                        let _ = writeln!(block, "name = {}", quote(n));
                    }
                    let _ = write!(
                        block,
                        "active = false\naddress = {}\nport = {}\nweight = {}\n",
                        quote(&x.addr.to_string()),
                        x.port,
                        x.weight
                    );
                    out.push('\n');
                    for line in block.lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                    continue;
                }
                ServerSlot::Active(name) => match servers.next() {
                    Some(rs) => (rs, name),
                    None => break,
                },
            };
            // Indented under its service, as people write it.
            let mut block = String::from("[[service.real_server]]\n");
            if let Some(n) = name {
                let _ = writeln!(block, "name = {}", quote(n));
            }
            let _ = write!(
                block,
                "address = {}\nport = {}\nweight = {}\n",
                quote(&rs.addr.to_string()),
                rs.port,
                rs.weight
            );
            if rs.u_threshold != 0 {
                let _ = writeln!(block, "u_threshold = {}", rs.u_threshold);
            }
            if rs.l_threshold != 0 {
                let _ = writeln!(block, "l_threshold = {}", rs.l_threshold);
            }
            block.push_str(&method_lines(rs.method));
            let own = match (health, common) {
                (Some(h), None) => h
                    .real_servers
                    .iter()
                    .find(|r| r.addr == rs.addr && r.port == rs.port),
                _ => None,
            };
            if let Some(r) = own {
                let pairs = settings_pairs(r);
                if !pairs.is_empty() {
                    let inner: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    let _ = writeln!(block, "health = {{ {} }}", inner.join(", "));
                }
                for check in &r.checks {
                    block.push_str("\n[[service.real_server.check]]\n");
                    write_check(&mut block, "service.real_server.check", check, udp);
                }
            }
            out.push('\n');
            for line in block.lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
    }
    out
}

/// Whether two real servers have the same health settings and checks (their addresses
/// aside).
fn same_server_health(a: &RealServerHealth, b: &RealServerHealth) -> bool {
    RealServerHealth {
        addr: b.addr,
        port: b.port,
        ..a.clone()
    } == *b
}

/// Seconds as the parser reads them: an integer, or a decimal with up to 6 places.
fn secs(d: core::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{}.{:06}", d.as_secs(), d.subsec_micros());
        s.trim_end_matches('0').to_string()
    }
}

/// A method (with its tunnel options) as inline `key = value` pairs.
fn method_pairs(m: ForwardMethod) -> String {
    method_lines(m).lines().collect::<Vec<_>>().join(", ")
}

fn write_service_health(out: &mut String, h: &ServiceHealth) {
    if h.quorum != 1 {
        let _ = writeln!(out, "quorum = {}", h.quorum);
    }
    if h.hysteresis != 0 {
        let _ = writeln!(out, "hysteresis = {}", h.hysteresis);
    }
    for (key, n) in [("quorum_up", &h.quorum_up), ("quorum_down", &h.quorum_down)] {
        if let Some(n) = n {
            let _ = writeln!(out, "{key} = {}", quote(&n.command));
            if let Some(u) = &n.user {
                let _ = writeln!(out, "{key}_user = {}", quote(u));
            }
        }
    }
    if h.omega {
        out.push_str("omega = true\n");
    }
    if let Some(s) = &h.sorry_server {
        let _ = write!(
            out,
            "sorry_server = {{ address = {}, port = {}, {}",
            quote(&s.addr.to_string()),
            s.port,
            method_pairs(s.method)
        );
        if s.inhibit {
            out.push_str(", inhibit = true");
        }
        out.push_str(" }\n");
    }
}

/// A real server's health settings that differ from the defaults, as `key = value` pairs.
fn settings_pairs(r: &RealServerHealth) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if r.on_failure == OnFailure::Quiesce {
        v.push(("on_failure", "\"quiesce\"".to_string()));
    }
    if r.alpha {
        v.push(("alpha", "true".to_string()));
    }
    if r.rise != 1 {
        v.push(("rise", r.rise.to_string()));
    }
    if r.fall != 1 {
        v.push(("fall", r.fall.to_string()));
    }
    if let Some(d) = r.slow_start {
        v.push(("slow_start", secs(d)));
    }
    for (key, user_key, n) in [
        ("notify_up", "notify_up_user", &r.notify_up),
        ("notify_down", "notify_down_user", &r.notify_down),
    ] {
        if let Some(n) = n {
            v.push((key, quote(&n.command)));
            if let Some(u) = &n.user {
                v.push((user_key, quote(u)));
            }
        }
    }
    if let Some(l) = &r.load_monitor {
        let mut parts = vec![
            format!("interval = {}", secs(l.interval)),
            format!("scale = {}", l.scale),
        ];
        if let Some((a, p)) = l.agent {
            parts.push(format!(
                "agent = {}",
                quote(&std::net::SocketAddr::new(a, p).to_string())
            ));
        }
        v.push(("load_monitor", format!("{{ {} }}", parts.join(", "))));
    }
    v
}

/// Bytes as a TOML string when they are UTF-8, else as hex under `hex_key`.
fn text_or_hex(out: &mut String, key: &str, hex_key: &str, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(t) => {
            let _ = writeln!(out, "{key} = {}", quote(t));
        }
        Err(_) => {
            let _ = writeln!(out, "{hex_key} = \"{}\"", hex(b));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One check's keys, after its `[[TABLE]]` header (`table` names the url sub-tables).
fn write_check(out: &mut String, table: &str, c: &CheckSpec, service_udp: bool) {
    let ty = match &c.kind {
        CheckKind::Tcp => "tcp",
        CheckKind::SendExpect { .. } => "send-expect",
        CheckKind::Program { .. } => "program",
        CheckKind::Http { tls: false, .. } => "http",
        CheckKind::Http { tls: true, .. } => "https",
        CheckKind::Misc { .. } => "misc",
        CheckKind::Udp { .. } => "udp",
        CheckKind::Dns { .. } => "dns",
        CheckKind::Ping => "ping",
    };
    let _ = writeln!(out, "type = \"{ty}\"");
    let (t, d) = (c.timers, CheckTimers::default());
    if t.interval != d.interval {
        let _ = writeln!(out, "interval = {}", secs(t.interval));
    }
    // MISC's timeout is its own key's (None: the interval).
    let misc = matches!(c.kind, CheckKind::Misc { .. });
    if !misc && t.timeout != d.timeout {
        let _ = writeln!(out, "timeout = {}", secs(t.timeout));
    }
    if t.retry != d.retry {
        let _ = writeln!(out, "retry = {}", t.retry);
    }
    if t.delay_before_retry != d.delay_before_retry {
        let _ = writeln!(out, "delay_before_retry = {}", secs(t.delay_before_retry));
    }
    if t.warmup != d.warmup {
        let _ = writeln!(out, "warmup = {}", secs(t.warmup));
    }
    let g = &c.target;
    if let Some(a) = g.connect_ip {
        let _ = writeln!(out, "connect_ip = {}", quote(&a.to_string()));
    }
    if let Some(p) = g.connect_port {
        let _ = writeln!(out, "connect_port = {p}");
    }
    if let Some(a) = g.bindto {
        let _ = writeln!(out, "bindto = {}", quote(&a.to_string()));
    }
    if let Some(p) = g.bind_port {
        let _ = writeln!(out, "bind_port = {p}");
    }
    if let Some(m) = g.fwmark {
        let _ = writeln!(out, "fwmark = {m}");
    }
    if g.via_vip {
        out.push_str("via_vip = true\n");
    }
    match &c.kind {
        CheckKind::Tcp | CheckKind::Ping => {}
        CheckKind::SendExpect { send, expect, udp } => {
            if !send.is_empty() {
                text_or_hex(out, "send", "send_hex", send);
            }
            match expect {
                None => {}
                Some(Expect::Any) => out.push_str("expect_any = true\n"),
                Some(Expect::Prefix(p)) => text_or_hex(out, "expect", "expect_hex", p),
                Some(Expect::Regex(r)) => {
                    let _ = writeln!(out, "expect_regex = {}", quote(r));
                }
            }
            if *udp != service_udp {
                let _ = writeln!(out, "udp = {udp}");
            }
        }
        CheckKind::Program { command, expect } => {
            let _ = writeln!(out, "command = {}", quote(command));
            if let Some(e) = expect {
                let _ = writeln!(out, "expect = {}", quote(e));
            }
        }
        CheckKind::Misc {
            path,
            user,
            timeout,
            dynamic,
        } => {
            let _ = writeln!(out, "command = {}", quote(path));
            if let Some(u) = user {
                let _ = writeln!(out, "user = {}", quote(u));
            }
            if let Some(t) = timeout {
                let _ = writeln!(out, "timeout = {}", secs(*t));
            }
            if *dynamic {
                out.push_str("dynamic = true\n");
            }
        }
        CheckKind::Udp {
            payload,
            require_reply,
            min_reply_len,
            max_reply_len,
        } => {
            if !payload.is_empty() {
                let _ = writeln!(out, "payload = \"{}\"", hex(payload));
            }
            if let Some(r) = require_reply {
                let _ = writeln!(out, "require_reply = \"{}\"", hex(r));
            }
            if let Some(n) = min_reply_len {
                let _ = writeln!(out, "min_reply_length = {n}");
            }
            if let Some(n) = max_reply_len {
                let _ = writeln!(out, "max_reply_length = {n}");
            }
        }
        CheckKind::Dns { qtype, name } => {
            let _ = writeln!(
                out,
                "query_type = \"{}\"",
                crate::emit::dns_type_name(*qtype)
            );
            let _ = writeln!(out, "name = {}", quote(name));
        }
        CheckKind::Http {
            urls,
            virtualhost,
            http_1_1,
            sni,
            ..
        } => {
            if let Some(h) = virtualhost {
                let _ = writeln!(out, "virtualhost = {}", quote(h));
            }
            if *http_1_1 {
                out.push_str("http_version = \"1.1\"\n");
            }
            if *sni {
                out.push_str("sni = true\n");
            }
            for u in urls {
                let _ = writeln!(out, "\n[[{table}.url]]");
                let _ = writeln!(out, "path = {}", quote(&u.path));
                if let Some(d) = &u.digest {
                    let _ = writeln!(out, "digest = \"{d}\"");
                }
                if !u.status_codes.is_empty() {
                    let codes: Vec<String> = u
                        .status_codes
                        .iter()
                        .map(|&(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("\"{a}-{b}\"")
                            }
                        })
                        .collect();
                    let _ = writeln!(out, "status = [{}]", codes.join(", "));
                }
                if let Some(h) = &u.virtualhost {
                    let _ = writeln!(out, "virtualhost = {}", quote(h));
                }
                if let Some(r) = &u.regex {
                    let _ = writeln!(out, "regex = {}", quote(r));
                }
                if u.regex_no_match {
                    out.push_str("regex_no_match = true\n");
                }
            }
        }
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("1024-65535"), Some((1024, 65_535)));
        assert_eq!(parse_range("80"), Some((80, 80)));
        assert_eq!(parse_range("90-80"), None);
        assert_eq!(parse_range("x"), None);
    }

    #[test]
    fn flags_use_the_schedulers_names() {
        assert_eq!(
            flag_names(SchedFlags(3), SchedulerKind::Sh),
            ["sh-fallback", "sh-port"]
        );
        assert_eq!(
            flag_names(SchedFlags(5), SchedulerKind::Wlc),
            ["flag-1", "flag-3"]
        );
        for k in SchedulerKind::ALL {
            for bits in 0..8 {
                let names = flag_names(SchedFlags(bits), k);
                let back = names
                    .iter()
                    .map(|n| flag_bit(n, k).unwrap())
                    .fold(0, |a, b| a | b);
                assert_eq!(back, bits);
            }
        }
    }

    #[test]
    fn minimal_file() {
        let c = parse_native(
            "[[service]]\nvip = \"10.0.0.1\"\nport = 80\n[[service.real_server]]\n\
             address = \"10.0.1.1\"\nmethod = \"dr\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.config.services[0].real_servers[0].port, 80);
        assert_eq!(parse_native(&emit_native(&c), "t").unwrap(), c);
    }
}
