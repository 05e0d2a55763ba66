//! keepalived.conf → rvs configuration: the LVS part (`virtual_server`,
//! `virtual_server_group`, `global_defs`' IPVS keys) becomes a validated [`Config`]; the
//! checkers, quorum and sorry server become the health model ([`KeepalivedConf::health`],
//! mapped by the `health` module from the data as written, [`VirtualServerChecks`]); VRRP is
//! parsed into data ([`Vrrp`], [`GlobalDefs::vrrp`], [`GlobalDefs::lvs_sync_daemon`]) that
//! [`crate::failover`] maps to what the daemon runs; everything else is reported.
//!
//! Keywords, legacy aliases and defaults follow keepalived's own parser (`check_parser.c`,
//! `check_api.c`, `vrrp_parser.c`, `global_parser.c`): `lvs_sched`/`lb_algo` [wlc],
//! `lvs_method`/`lb_kind` [NAT] with tunnel options, `persistence_timeout` [360 when given
//! without a value, or when only `persistence_granularity` is set], `weight` [1],
//! `protocol` [UDP, as keepalived 2.x], `delay_loop` [60 s], `connect_timeout` [5 s], `retry`/`nb_get_retry`
//! [1; DNS 3; MISC 0], `delay_before_retry` [3 s for HTTP/SSL, 1 s otherwise].
//!
//! Where keepalived logs a problem and carries on (an unknown keyword, method, scheduler or
//! protocol, `quorum 0`, a value followed by more words, a server address it cannot read,
//! a virtual server without real servers, ...), rvs warns at the place, says what it does
//! instead, and does what keepalived does (docs/operating.md, "keepalived.conf
//! leniencies"); a typo of a known keyword is named in the warning. Blocks nest as
//! keepalived nests them (`structure`). Still refused: a missing required
//! word. Every keyword rvs reads
//! but does not act on (yet) is a warning at its location: one per kept block (a checker
//! rvs does not perform, a `vrrp_instance`) and one per key otherwise.
//!
//! `virtual_server group NAME` is expanded: the model has no groups, so each member of the
//! group (`IP PORT`, each address of an `IP-LAST PORT` range, `fwmark N`) becomes a virtual
//! service of its own with the virtual server's settings and real servers (a real server
//! without a port takes each service's port). Names are never resolved and nothing is
//! read from disk except by [`load_keepalived`] for the file and its includes.

mod check;
mod health;
mod syntax;
mod vrrp;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use rvs_core::model::{
    Config, ConfigError, Family, ForwardMethod, Persistence, Protocol, RealServerConfig,
    SchedFlags, SchedulerKind, ServiceKey, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};

use crate::diag::{Diagnostic, Place, Severity};
use crate::locate::{self, RealServerPart, ServicePart, Target};
use syntax::{Block, Ev, Finding, Loc, Parser, Source, Stmt, Word};

pub use syntax::ParseOptions;

pub(crate) use check::hex_bytes;
pub use check::{
    BfdCheck, CheckKind, CheckTimers, Checker, Connect, DnsCheck, FileCheck, HttpCheck, MiscCheck,
    SmtpCheck, UdpCheck, Url,
};
pub use vrrp::{
    AuthType, Authentication, Tracked, VirtualIp, Vrrp, VrrpInstance, VrrpScript, VrrpState,
    VrrpSyncGroup,
};

/// `lvs_sync_daemon IF [INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`: the
/// connection-synchronisation daemon (what rvs runs: [`crate::failover::SyncSetup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    /// Interface the sync messages use.
    pub interface: String,
    /// The VRRP instance whose state decides master or backup.
    pub vrrp_instance: Option<String>,
    /// `id`: sync id [the instance's virtual_router_id].
    pub sync_id: Option<u8>,
    /// `maxlen`: largest sync message.
    pub maxlen: Option<u16>,
    /// `port`: UDP port [8848].
    pub port: Option<u16>,
    /// `ttl`: multicast TTL [1].
    pub ttl: Option<u8>,
    /// `group`: multicast group [224.0.0.81].
    pub group: Option<IpAddr>,
    /// Where its parts were written: `lvs_sync_daemon` (the keyword), `instance`, `id`.
    pub places: BTreeMap<String, Place>,
}

/// The VRRP defaults of `global_defs`, as written (`None`: keepalived's default), which
/// apply to every `vrrp_instance` that does not set its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VrrpGlobals {
    /// `vrrp_version 2|3` \[2; IPv6 instances always 3\].
    pub version: Option<u8>,
    /// `vrrp_garp_master_delay` \[5 s\].
    pub garp_master_delay: Option<Duration>,
    /// `vrrp_garp_master_repeat` \[5\].
    pub garp_master_repeat: Option<u32>,
    /// `vrrp_garp_master_refresh` \[none; 0 means none\].
    pub garp_master_refresh: Option<Duration>,
    /// `vrrp_garp_master_refresh_repeat` \[1\].
    pub garp_master_refresh_repeat: Option<u32>,
    /// `vrrp_garp_lower_prio_delay` \[`vrrp_garp_master_delay`\].
    pub garp_lower_prio_delay: Option<Duration>,
    /// `vrrp_garp_lower_prio_repeat` \[`vrrp_garp_master_repeat`\].
    pub garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_lower_prio_no_advert [BOOL]` \[false\].
    pub lower_prio_no_advert: Option<bool>,
    /// `vrrp_higher_prio_send_advert [BOOL]` [false].
    pub higher_prio_send_advert: Option<bool>,
    /// `vrrp_check_unicast_src` [false].
    pub check_unicast_src: Option<bool>,
    /// `vrrp_skip_check_adv_addr [BOOL]` [false].
    pub skip_check_adv_addr: Option<bool>,
    /// `vrrp_strict`: rvs acts on one of its rules only — authentication is ignored
    /// (keepalived vrrp.c `vrrp_complete_instance`: "Strict mode does not support
    /// authentication. Ignoring.").
    pub strict: bool,
}

/// The LVS-relevant keys of `global_defs` (the IPVS timeouts go to [`Config::timeouts`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GlobalDefs {
    /// `lvs_sync_daemon`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// The `vrrp_*` defaults for every `vrrp_instance`.
    pub vrrp: VrrpGlobals,
    /// `script_user` and `enable_script_security`.
    pub scripts: crate::script::ScriptPolicy,
}

/// What a `virtual_server` line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtualTarget {
    /// `virtual_server IP PORT`.
    Addr {
        /// The VIP.
        addr: IpAddr,
        /// The port.
        port: u16,
    },
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
}

/// `sorry_server IP [PORT]` with `sorry_server_inhibit` and `sorry_server_lvs_method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    /// Address.
    pub addr: IpAddr,
    /// Port [the service's].
    pub port: Option<u16>,
    /// Forwarding method [the virtual server's].
    pub method: ForwardMethod,
    /// `sorry_server_inhibit`: weight 0 instead of removal.
    pub inhibit: bool,
}

/// A `real_server` block's health-check side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerChecks {
    /// Address.
    pub addr: IpAddr,
    /// Port as written (None: each service's port).
    pub port: Option<u16>,
    /// `inhibit_on_failure` [the virtual server's]: weight 0 instead of removal on failure.
    pub inhibit_on_failure: bool,
    /// `alpha` [the virtual server's]: start as failed until a check succeeds.
    pub alpha: bool,
    /// `notify_up`: script run when the server comes up (and its user).
    pub notify_up: Option<rvs_core::health::Notify>,
    /// `notify_down`: script run when it goes down.
    pub notify_down: Option<rvs_core::health::Notify>,
    /// `virtualhost`: Host header of its HTTP/SSL checkers [the virtual server's].
    pub virtualhost: Option<String>,
    /// Its checkers, timers resolved (checker, then real server, then virtual server, then
    /// keepalived's default).
    pub checkers: Vec<Checker>,
}

/// A `virtual_server` block's health-check, quorum and sorry-server side, as written (what
/// rvs does with it is [`KeepalivedConf::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerChecks {
    /// What the block names.
    pub target: VirtualTarget,
    /// The services it became, as indices into [`KeepalivedConf::config`]`.services` (a
    /// group gives several).
    pub services: Vec<usize>,
    /// `delay_loop` [60 s].
    pub delay_loop: Duration,
    /// `inhibit_on_failure`.
    pub inhibit_on_failure: bool,
    /// `alpha`: real servers start down.
    pub alpha: bool,
    /// `omega`: run `quorum_down` on shutdown.
    pub omega: bool,
    /// `quorum` [1]: the live weight needed for the service to be up.
    pub quorum: u32,
    /// `hysteresis` [0].
    pub hysteresis: u32,
    /// `quorum_up` script (and its user).
    pub quorum_up: Option<rvs_core::health::Notify>,
    /// `quorum_down` script.
    pub quorum_down: Option<rvs_core::health::Notify>,
    /// `virtualhost`: default Host header for HTTP/SSL checks.
    pub virtualhost: Option<String>,
    /// `sorry_server`.
    pub sorry_server: Option<SorryServer>,
    /// The real servers.
    pub real_servers: Vec<RealServerChecks>,
}

/// A parsed keepalived.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedConf {
    /// The virtual services (groups expanded), validated.
    pub config: Config,
    /// `global_defs`' LVS-relevant keys.
    pub global: GlobalDefs,
    /// One per `virtual_server` block, in file order: the health keys as written.
    pub checkers: Vec<VirtualServerChecks>,
    /// What rvs monitors: the checkers it performs, quorum and sorry servers, per virtual
    /// service (groups expanded).
    pub health: rvs_core::health::HealthConfig,
    /// `vrrp_instance`, `vrrp_sync_group`, `vrrp_script`.
    pub vrrp: Vrrp,
    /// Keys rvs does not act on (yet), unknown keys and other non-fatal findings, in file
    /// order (files in the order they were read).
    pub warnings: Vec<Diagnostic>,
    /// Each fwmark virtual service's mark and where it is written: the daemon warns there
    /// when none of the host's MARK rules gives packets that mark.
    pub fwmark_places: Vec<(u32, Place)>,
}

/// What rvs does with a keyword.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Use {
    /// It shapes the [`Config`] (or is structure, like `real_server`).
    Applied,
    /// Kept as data inside a block whose warning already covers it.
    Kept,
    /// Kept as data for a feature rvs does not have yet (named); warned per key.
    Pending(&'static str),
    /// Read and kept, but rvs does not do what it asks (the reason, a sentence); warned per
    /// key.
    NotActed(&'static str),
    /// Read by keepalived, not by rvs; warned per key.
    Ignored,
    /// Read by keepalived for something that changes nothing rvs does (the name in alert
    /// e-mails, process scheduling, an obsolete key keepalived itself ignores): nothing for
    /// the operator to act on, so no warning.
    Silent,
}

/// Why `smtp_alert` does nothing.
pub(crate) const NO_MAIL: &str =
    "rvs sends no e-mail alerts: run a notify script (notify_up, notify_master, ...) instead";

/// Why the gratuitous ARP / NA keys other than `garp_master_*` and `garp_lower_prio_*` do nothing.
pub(crate) const GARP_TIMING: &str = "rvs's VRRP times its gratuitous ARPs and NAs by the garp_master_* and garp_lower_prio_* keys only";

/// What rvs does with `vrrp_strict` and an instance's `strict_mode`.
pub(crate) const STRICT: &str = "rvs's VRRP keeps keepalived's default (non-strict) behaviour, except that VRRP authentication is ignored, as strict mode ignores it";

/// Why the tracked objects other than interfaces and scripts do nothing.
pub(crate) const VRRP_TRACKS: &str = "rvs's VRRP tracks interfaces and scripts only";

/// Why DPVS's address lists do nothing.
const DPVS_ACL: &str = "rvs has no per-service client address lists (a DPVS feature)";
/// Why DPVS's match services do nothing.
const DPVS_MATCH: &str = "rvs has no match (SNAT) services (a DPVS feature)";
/// Why DPVS's rate limits do nothing.
const DPVS_LIMIT: &str = "rvs has no per-service rate limits (a DPVS feature)";

/// Keywords rvs does not act on whose keepalived 2.2.8 handler reads its value without
/// checking that there is one (so keepalived exits on a line without it), by scope; `true`
/// for a script read through lib/parser.c alloc_strvec_quoted_escaped(), which an
/// unterminated string leaves empty and the handler then ignores.
const NEEDS_VALUE: &[((Scope, &str), bool)] = &[
    // global_parser.c: smtp_server_handler(), smtp_connect_timeout_handler(),
    // *_rt_rlimit_handler(), vrrp_mcast_group4/6_handler(), vrrp_garp_interval_handler(),
    // vrrp_gna_interval_handler(), vrrp_startup_delay_handler(), nftables_priority_handler(),
    // *process_name_handler(), random_seed_handler(), umask_handler().
    ((Scope::GlobalDefs, "smtp_server"), false),
    ((Scope::GlobalDefs, "smtp_connect_timeout"), false),
    ((Scope::GlobalDefs, "vrrp_rlimit_rttime"), false),
    ((Scope::GlobalDefs, "checker_rlimit_rttime"), false),
    ((Scope::GlobalDefs, "bfd_rlimit_rttime"), false),
    ((Scope::GlobalDefs, "vrrp_mcast_group4"), false),
    ((Scope::GlobalDefs, "vrrp_mcast_group6"), false),
    ((Scope::GlobalDefs, "vrrp_garp_interval"), false),
    ((Scope::GlobalDefs, "vrrp_gna_interval"), false),
    ((Scope::GlobalDefs, "vrrp_startup_delay"), false),
    ((Scope::GlobalDefs, "nftables_priority"), false),
    ((Scope::GlobalDefs, "process_name"), false),
    ((Scope::GlobalDefs, "vrrp_process_name"), false),
    ((Scope::GlobalDefs, "checker_process_name"), false),
    ((Scope::GlobalDefs, "bfd_process_name"), false),
    ((Scope::GlobalDefs, "random_seed"), false),
    ((Scope::GlobalDefs, "umask"), false),
    // check_parser.c vs_pe_handler().
    ((Scope::VirtualServer, "persistence_engine"), false),
    // vrrp_parser.c vrrp_debug_handler(), vrrp_unicast_ttl_handler(),
    // vrrp_down_timer_adverts_handler(), vrrp_notify_master_rx_lower_pri() (a script).
    ((Scope::VrrpInstance, "debug"), false),
    ((Scope::VrrpInstance, "unicast_ttl"), false),
    ((Scope::VrrpInstance, "down_timer_adverts"), false),
    ((Scope::VrrpInstance, "notify_master_rx_lower_pri"), true),
];

/// Where a keyword is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scope {
    Root,
    GlobalDefs,
    VirtualServer,
    RealServer,
    Checker(check::Kind),
    Url,
    SmtpHost,
    VrrpInstance,
    VrrpSyncGroup,
    VrrpScript,
    Authentication,
}

impl Scope {
    pub(crate) fn name(self) -> String {
        match self {
            Scope::Root => "the top level".to_string(),
            Scope::GlobalDefs => "`global_defs`".to_string(),
            Scope::VirtualServer => "a `virtual_server` block".to_string(),
            Scope::RealServer => "a `real_server` block".to_string(),
            Scope::Checker(k) => format!("a `{}` block", k.keyword()),
            Scope::Url => "a `url` block".to_string(),
            Scope::SmtpHost => "an SMTP_CHECK `host` block".to_string(),
            Scope::VrrpInstance => "a `vrrp_instance` block".to_string(),
            Scope::VrrpSyncGroup => "a `vrrp_sync_group` block".to_string(),
            Scope::VrrpScript => "a `vrrp_script` block".to_string(),
            Scope::Authentication => "an `authentication` block".to_string(),
        }
    }

    pub(crate) fn keys(self) -> Vec<(&'static str, Use)> {
        match self {
            Scope::Root => ROOT_KEYS.to_vec(),
            Scope::GlobalDefs => GLOBAL_KEYS
                .iter()
                .map(|&(k, u)| (k, u))
                .chain(GLOBAL_IGNORED.iter().map(|&k| (k, Use::Ignored)))
                .collect(),
            Scope::VirtualServer => VS_KEYS.to_vec(),
            Scope::RealServer => RS_KEYS.to_vec(),
            Scope::Checker(k) => check::keys(k),
            Scope::Url => check::URL_KEYS.to_vec(),
            // SMTP_CHECK is not performed: its warning covers its `host` blocks.
            Scope::SmtpHost => check::CONNECT_KEYS
                .iter()
                .map(|&(k, _)| (k, Use::Kept))
                .collect(),
            Scope::VrrpInstance => vrrp::instance_keys(),
            Scope::VrrpSyncGroup => vrrp::sync_group_keys(),
            Scope::VrrpScript => vrrp::script_keys(),
            Scope::Authentication => {
                vec![("auth_type", Use::Applied), ("auth_pass", Use::Applied)]
            }
        }
    }

    /// The level a keyword's block is read as (keepalived's `install_sublevel`), for the
    /// blocks rvs reads keyword by keyword; None: a block of values or one rvs does not read.
    fn sub_level(self, key: &str) -> Option<Scope> {
        match (self, key) {
            (Scope::Root, "global_defs") => Some(Scope::GlobalDefs),
            (Scope::Root, "virtual_server") => Some(Scope::VirtualServer),
            (Scope::Root, "vrrp_instance") => Some(Scope::VrrpInstance),
            (Scope::Root, "vrrp_sync_group") => Some(Scope::VrrpSyncGroup),
            (Scope::Root, "vrrp_script") => Some(Scope::VrrpScript),
            (Scope::VirtualServer, "real_server") => Some(Scope::RealServer),
            (Scope::RealServer, k) => check::Kind::of(k).map(Scope::Checker),
            (Scope::Checker(check::Kind::Http | check::Kind::Ssl), "url") => Some(Scope::Url),
            (Scope::Checker(check::Kind::Smtp), "host") => Some(Scope::SmtpHost),
            (Scope::VrrpInstance, "authentication") => Some(Scope::Authentication),
            _ => None,
        }
    }

    const ALL: [Scope; 6] = [
        Scope::Root,
        Scope::GlobalDefs,
        Scope::VirtualServer,
        Scope::RealServer,
        Scope::VrrpInstance,
        Scope::VrrpScript,
    ];
}

const ROOT_KEYS: &[(&str, Use)] = &[
    ("global_defs", Use::Applied),
    ("virtual_server", Use::Applied),
    ("virtual_server_group", Use::Applied),
    ("vrrp_instance", Use::Applied),
    ("vrrp_sync_group", Use::Applied),
    ("vrrp_script", Use::Applied),
    ("vrrp_track_process", Use::NotActed(VRRP_TRACKS)),
    ("vrrp_track_file", Use::NotActed(VRRP_TRACKS)),
    (
        "track_file",
        Use::NotActed("rvs does not perform FILE_CHECK, which reads it"),
    ),
    ("static_ipaddress", Use::Ignored),
    ("static_routes", Use::Ignored),
    ("static_rules", Use::Ignored),
    ("linkbeat_interfaces", Use::Ignored),
    ("linkbeat_use_polling", Use::Ignored),
    (
        "bfd_instance",
        Use::NotActed("rvs has no BFD (and does not perform BFD_CHECK)"),
    ),
    ("garp_group", Use::NotActed(GARP_TIMING)),
    (
        "SSL",
        Use::NotActed("SSL_GET checks present no client certificate and verify no server one"),
    ),
    ("net_namespace", Use::Ignored),
    ("net_namespace_ipvs", Use::Ignored),
    ("local_address_group", Use::Applied),
    ("deny_address_group", Use::NotActed(DPVS_ACL)),
    ("allow_address_group", Use::NotActed(DPVS_ACL)),
    (
        "tunnel_group",
        Use::NotActed("rvs does not create DPVS's tunnel devices"),
    ),
    ("namespace_with_ipsets", Use::Ignored),
    ("instance", Use::Ignored),
    ("use_pid_dir", Use::Ignored),
];

/// Keys of `global_defs` rvs reads.
const GLOBAL_KEYS: &[(&str, Use)] = &[
    ("lvs_timeouts", Use::Applied),
    ("script_user", Use::Applied),
    ("enable_script_security", Use::Applied),
    ("lvs_sync_daemon", Use::Applied),
    // The director's name in alert e-mails (keepalived global_data.c): no e-mail, no use.
    ("router_id", Use::Silent),
    ("lvs_id", Use::Silent),
    // The e-mail settings matter only with `smtp_alert`, which is warned itself.
    ("notification_email", Use::Silent),
    ("notification_email_from", Use::Silent),
    ("smtp_server", Use::Silent),
    ("smtp_helo_name", Use::Silent),
    ("smtp_connect_timeout", Use::Silent),
    ("smtp_alert", Use::NotActed(NO_MAIL)),
    ("smtp_alert_vrrp", Use::NotActed(NO_MAIL)),
    ("smtp_alert_checker", Use::NotActed(NO_MAIL)),
    // Process scheduling of keepalived's own children: nothing in rvs's behaviour.
    ("vrrp_priority", Use::Silent),
    ("checker_priority", Use::Silent),
    ("bfd_priority", Use::Silent),
    ("vrrp_no_swap", Use::Silent),
    ("checker_no_swap", Use::Silent),
    ("bfd_no_swap", Use::Silent),
    ("vrrp_rt_priority", Use::Silent),
    ("checker_rt_priority", Use::Silent),
    ("bfd_rt_priority", Use::Silent),
    ("vrrp_rlimit_rttime", Use::Silent),
    ("checker_rlimit_rttime", Use::Silent),
    ("bfd_rlimit_rttime", Use::Silent),
    (
        "vrrp_mcast_group4",
        Use::NotActed("rvs advertises to VRRP's own group, 224.0.0.18"),
    ),
    (
        "vrrp_mcast_group6",
        Use::NotActed("rvs advertises to VRRP's own group, ff02::12"),
    ),
    ("vrrp_garp_master_delay", Use::Applied),
    ("vrrp_garp_master_repeat", Use::Applied),
    ("vrrp_garp_master_refresh", Use::Applied),
    ("vrrp_garp_master_refresh_repeat", Use::Applied),
    ("vrrp_garp_lower_prio_delay", Use::Applied),
    ("vrrp_garp_lower_prio_repeat", Use::Applied),
    ("vrrp_garp_interval", Use::NotActed(GARP_TIMING)),
    ("vrrp_gna_interval", Use::NotActed(GARP_TIMING)),
    ("vrrp_min_garp", Use::NotActed(GARP_TIMING)),
    ("vrrp_lower_prio_no_advert", Use::Applied),
    ("vrrp_higher_prio_send_advert", Use::Applied),
    ("vrrp_version", Use::Applied),
    ("vrrp_check_unicast_src", Use::Applied),
    ("vrrp_skip_check_adv_addr", Use::Applied),
    ("vrrp_strict", Use::NotActed(STRICT)),
    (
        "vrrp_startup_delay",
        Use::NotActed("rvs does not delay VRRP at start-up"),
    ),
    ("vrrp_garp_extra_if", Use::NotActed(GARP_TIMING)),
];

/// Keys of `global_defs` rvs knows and has no use for.
const GLOBAL_IGNORED: &[&str] = &[
    "no_email_faults",
    "checker_log_all_failures",
    "lvs_flush",
    "lvs_flush_onstop",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_counters",
    "nftables_ifindex",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_keepalived",
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_dbus",
    "dynamic_interfaces",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "default_interface",
    "max_auto_priority",
    "min_auto_priority_delay",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "net_namespace",
    "instance",
    "linkbeat_use_polling",
    "use_pid_dir",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "checker_netlink_cmd_rcv_bufs",
    "checker_netlink_cmd_rcv_bufs_force",
    "checker_netlink_monitor_rcv_bufs",
    "checker_netlink_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "tmp_config_directory",
    "umask",
    "data_use_instance",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "vrrp_owner_ignore_adverts",
    "vrrp_socket_priority",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "vrrp_track_process_config",
    "vrrp_dont_use_vmac_ipv4",
    "fifo_write_vrrp_states_on_reload",
];

const VS_KEYS: &[(&str, Use)] = &[
    ("real_server", Use::Applied),
    ("lvs_sched", Use::Applied),
    ("lb_algo", Use::Applied),
    ("lvs_method", Use::Applied),
    ("lb_kind", Use::Applied),
    ("persistence_timeout", Use::Applied),
    ("persistence_granularity", Use::Applied),
    ("protocol", Use::Applied),
    ("ops", Use::Applied),
    ("flag-1", Use::Applied),
    ("flag-2", Use::Applied),
    ("flag-3", Use::Applied),
    ("sh-port", Use::Applied),
    ("sh-fallback", Use::Applied),
    ("mh-port", Use::Applied),
    ("mh-fallback", Use::Applied),
    ("ip_family", Use::Applied),
    ("delay_loop", Use::Applied),
    ("connect_timeout", Use::Applied),
    ("retry", Use::Applied),
    ("delay_before_retry", Use::Applied),
    ("warmup", Use::Applied),
    ("inhibit_on_failure", Use::Applied),
    ("alpha", Use::Applied),
    ("omega", Use::Applied),
    ("quorum", Use::Applied),
    ("quorum_up", Use::Applied),
    ("quorum_down", Use::Applied),
    ("hysteresis", Use::Applied),
    (
        "ha_suspend",
        Use::NotActed(
            "rvs checks real servers on every director, so a backup knows their state when it \
             takes over",
        ),
    ),
    ("virtualhost", Use::Applied),
    ("sorry_server", Use::Applied),
    ("sorry_server_inhibit", Use::Applied),
    ("sorry_server_lvs_method", Use::Applied),
    (
        "persistence_engine",
        Use::Pending("persistence engines (SIP)"),
    ),
    ("weight", Use::Applied),
    ("laddr_group_name", Use::Applied),
    ("daddr_group_name", Use::NotActed(DPVS_ACL)),
    ("waddr_group_name", Use::NotActed(DPVS_ACL)),
    ("syn_proxy", Use::Applied),
    (
        "expire_quiescent_conn",
        Use::NotActed(
            "rvs has no per-service switch for it (a DPVS feature); connections to a \
             quiescent real server stay until they end",
        ),
    ),
    (
        "establish_timeout",
        Use::NotActed("rvs uses the global `lvs_timeouts` (a DPVS per-service timeout)"),
    ),
    (
        "hash_target",
        Use::NotActed("rvs's sh and mh schedulers hash as IPVS's do (a DPVS option)"),
    ),
    ("src-range", Use::NotActed(DPVS_MATCH)),
    ("dst-range", Use::NotActed(DPVS_MATCH)),
    ("oif", Use::NotActed(DPVS_MATCH)),
    ("iif", Use::NotActed(DPVS_MATCH)),
    (
        "proxy_protocol",
        Use::NotActed("rvs does not insert PROXY protocol headers (a DPVS feature)"),
    ),
    (
        "quic",
        Use::NotActed("rvs does not route QUIC by connection id (a DPVS feature)"),
    ),
    ("bps", Use::NotActed(DPVS_LIMIT)),
    ("limit_proportion", Use::NotActed(DPVS_LIMIT)),
    (
        "vip_bind_dev",
        Use::NotActed("rvs owns the VIP on its link (a DPVS option)"),
    ),
    // keepalived check_parser.c: `nat_mask` and `hashed` are read and never used.
    ("hashed", Use::Silent),
    ("nat_mask", Use::Silent),
    ("smtp_alert", Use::NotActed(NO_MAIL)),
    ("snmp_name", Use::Ignored),
];

const RS_KEYS: &[(&str, Use)] = &[
    ("weight", Use::Applied),
    ("lvs_method", Use::Applied),
    ("uthreshold", Use::Applied),
    ("lthreshold", Use::Applied),
    ("inhibit_on_failure", Use::Applied),
    ("notify_up", Use::Applied),
    ("notify_down", Use::Applied),
    ("alpha", Use::Applied),
    ("retry", Use::Applied),
    ("delay_before_retry", Use::Applied),
    ("warmup", Use::Applied),
    ("connect_timeout", Use::Applied),
    ("delay_loop", Use::Applied),
    ("virtualhost", Use::Applied),
    ("HTTP_GET", Use::Kept),
    ("SSL_GET", Use::Kept),
    ("TCP_CHECK", Use::Kept),
    ("SMTP_CHECK", Use::Kept),
    ("DNS_CHECK", Use::Kept),
    ("MISC_CHECK", Use::Kept),
    ("UDP_CHECK", Use::Kept),
    ("PING_CHECK", Use::Kept),
    ("ICMP_CHECK", Use::Kept),
    ("FILE_CHECK", Use::Kept),
    ("BFD_CHECK", Use::Kept),
    ("smtp_alert", Use::NotActed(NO_MAIL)),
    ("snmp_name", Use::Ignored),
];

/// The shared state of one parse: the files, the findings, and helpers to read values.
pub(crate) struct Ctx {
    pub(crate) sources: Vec<Source>,
    pub(crate) errors: Vec<(Loc, Diagnostic)>,
    pub(crate) warnings: Vec<(Loc, Diagnostic)>,
}

impl Ctx {
    fn diag(&self, loc: &Loc, sev: Severity, msg: String, expected: Option<String>) -> Diagnostic {
        let s = &self.sources[loc.src];
        Diagnostic::new(&s.text, &s.path, loc.span.clone(), sev, msg, expected)
    }

    pub(crate) fn error(
        &mut self,
        loc: &Loc,
        msg: impl Into<String>,
        expected: impl Into<Option<String>>,
    ) {
        let d = self.diag(loc, Severity::Error, msg.into(), expected.into());
        self.errors.push((loc.clone(), d));
    }

    pub(crate) fn warn(&mut self, loc: &Loc, msg: impl Into<String>) {
        let d = self.diag(loc, Severity::Warning, msg.into(), None);
        self.warnings.push((loc.clone(), d));
    }

    /// The [`Place`] of a location, for data checked after parsing.
    pub(crate) fn place(&self, loc: &Loc) -> Place {
        let s = &self.sources[loc.src.min(self.sources.len().saturating_sub(1))];
        Place::new(&s.text, &s.path, loc.span.clone())
    }

    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Classify a statement's keyword in `scope`: its use, or None when it is unknown
    /// (reported: an error for a likely typo, else a warning; its block is skipped).
    pub(crate) fn check_key(&mut self, scope: Scope, s: &Stmt) -> Option<Use> {
        let key = &s.key().text;
        let keys = scope.keys();
        if let Some(&(_, u)) = keys.iter().find(|(k, _)| k == key) {
            // A keyword rvs does not read whose keepalived handler reads a value the line
            // does not have: lib/parser.c null_strvec() logs "Configuration line starting
            // `KEY` is missing a parameter" and keepalived exits. (A script keyword cut by an
            // unterminated string gets nothing from alloc_strvec_quoted_escaped() and is
            // ignored instead.)
            if !matches!(u, Use::Applied | Use::Kept)
                && s.args().is_empty()
                && let Some(&(_, script)) = NEEDS_VALUE
                    .iter()
                    .find(|((sc, k), _)| *sc == scope && *k == key.as_str())
                && !(script && s.key().cut)
            {
                self.error(
                    &s.key().loc.after(),
                    format!(
                        "`{key}` needs a value: keepalived stops at this line (\"is missing a \
                         parameter\")"
                    ),
                    Some("a value".to_string()),
                );
                return Some(u);
            }
            match u {
                Use::Pending(feature) => self.warn(
                    &s.key().loc,
                    format!("`{key}` is kept but not acted on: rvs has no {feature} yet"),
                ),
                Use::NotActed(why) => {
                    self.warn(&s.key().loc, format!("`{key}` is not acted on: {why}"))
                }
                Use::Ignored => self.warn(
                    &s.key().loc,
                    format!("`{key}` is ignored: rvs has no use for it"),
                ),
                Use::Applied | Use::Kept | Use::Silent => {}
            }
            return Some(u);
        }
        if let Some((near, _)) = keys.iter().find(|(k, _)| is_typo(k, key)) {
            // keepalived lib/parser.c process_stream(): "Unknown keyword", line skipped.
            self.warn(
                &s.key().loc,
                format!(
                    "unknown keyword `{key}` in {} (did you mean `{near}`?): line skipped, as \
                     keepalived skips it",
                    scope.name()
                ),
            );
            return None;
        }
        let what = if s.block.is_some() {
            "block"
        } else {
            "keyword"
        };
        if let Some(other) = Scope::ALL
            .iter()
            .find(|o| **o != scope && o.keys().iter().any(|(k, _)| k == key))
        {
            self.warn(
                &s.key().loc,
                format!(
                    "`{key}` belongs in {}; it has no effect in {} (ignored)",
                    other.name(),
                    scope.name()
                ),
            );
            return None;
        }
        self.warn(
            &s.key().loc,
            format!(
                "unknown {what} `{key}` in {}; ignored, as keepalived does",
                scope.name()
            ),
        );
        None
    }

    /// The value of a keyword (an error when missing; words after it are ignored with a
    /// warning, as keepalived's handlers read only the word after the keyword).
    pub(crate) fn one<'s>(&mut self, s: &'s Stmt, what: &str) -> Option<&'s Word> {
        match s.args() {
            [v] => Some(v),
            [] => {
                self.error(
                    &s.key().loc.after(),
                    format!("`{}` needs a value", s.key().text),
                    Some(what.to_string()),
                );
                None
            }
            [v, extra @ ..] => {
                self.warn(
                    &extra[0].loc.to(&extra[extra.len() - 1].loc),
                    format!(
                        "`{}` takes one value: `{}` is used and the words after it are \
                         ignored, as keepalived ignores them",
                        s.key().text,
                        v.text
                    ),
                );
                Some(v)
            }
        }
    }

    /// A block's absence is an error for keywords that need one.
    pub(crate) fn no_block(&mut self, s: &Stmt) {
        if let Some(b) = &s.block {
            self.error(
                &b.open,
                format!("`{}` takes no block", s.key().text),
                Some("the end of the line".to_string()),
            );
        }
    }

    /// All values joined by one space (keepalived's `set_value`).
    /// A keyword without a value (none written, or an unterminated string took it) whose
    /// keepalived handler checks for one, logs and ignores the line: warned and ignored
    /// here too. Whether it had no value.
    pub(crate) fn no_value_ignored(&mut self, s: &Stmt) -> bool {
        if !s.args().is_empty() {
            return false;
        }
        self.warn(
            &s.key().loc,
            format!(
                "`{}` has no value: ignored, as keepalived ignores it",
                s.key().text
            ),
        );
        true
    }

    pub(crate) fn string(&mut self, s: &Stmt, what: &str) -> Option<String> {
        if s.args().is_empty() {
            self.error(
                &s.key().loc.after(),
                format!("`{}` needs a value", s.key().text),
                Some(what.to_string()),
            );
            return None;
        }
        Some(
            s.args()
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    pub(crate) fn uint(&mut self, w: &Word, key: &str, max: u64) -> Option<u64> {
        match w.text.parse::<u64>() {
            Ok(n) if n <= max => Some(n),
            Ok(_) => {
                self.error(
                    &w.loc,
                    format!("`{key}` {} is out of range", w.text),
                    Some(format!("an integer in 0..={max}")),
                );
                None
            }
            Err(_) => {
                self.error(
                    &w.loc,
                    format!("`{}` is not a number", w.text),
                    Some(format!("a non-negative integer for `{key}`")),
                );
                None
            }
        }
    }

    pub(crate) fn u32_of(&mut self, s: &Stmt, max: u32) -> Option<u32> {
        let w = self.one(s, "a number")?;
        self.uint(w, &s.key().text, u64::from(max))
            .map(|n| n as u32)
    }

    pub(crate) fn int_of(&mut self, w: &Word, key: &str, lo: i64, hi: i64) -> Option<i64> {
        match w.text.parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                self.error(
                    &w.loc,
                    format!("`{}` is not a valid `{key}`", w.text),
                    Some(format!("an integer in {lo}..={hi}")),
                );
                None
            }
        }
    }

    pub(crate) fn port(&mut self, w: &Word) -> Option<u16> {
        if !w.text.is_empty() && w.text.bytes().all(|b| b.is_ascii_digit()) {
            match w.text.parse::<u16>() {
                Ok(p) => return Some(p),
                Err(_) => {
                    self.error(
                        &w.loc,
                        format!("port `{}` is out of range", w.text),
                        Some("a port in 0..=65535".to_string()),
                    );
                    return None;
                }
            }
        }
        self.error(
            &w.loc,
            format!("`{}` is not a port number", w.text),
            Some("a port in 0..=65535".to_string()),
        );
        None
    }

    /// A timer in seconds, with up to six decimals (keepalived's `read_timer`).
    pub(crate) fn timer(&mut self, s: &Stmt) -> Option<Duration> {
        let w = self.one(s, "seconds")?;
        let t = parse_seconds(&w.text);
        if t.is_none() {
            self.error(
                &w.loc,
                format!("`{}` is not a time in seconds", w.text),
                Some(format!("seconds for `{}`, e.g. `3` or `0.5`", s.key().text)),
            );
        }
        t
    }

    /// An optional `true|false|yes|no|on|off` after a flag keyword (default true).
    pub(crate) fn flag(&mut self, s: &Stmt) -> bool {
        match s.args() {
            [] => true,
            [w] => match w.text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => true,
                "false" | "no" | "off" => false,
                _ => {
                    self.error(
                        &w.loc,
                        format!("`{}` is not a boolean", w.text),
                        Some("`true` or `false` (or nothing, meaning true)".to_string()),
                    );
                    true
                }
            },
            [_, extra @ ..] => {
                self.error(
                    &extra[0].loc,
                    format!("`{}` takes at most one value", s.key().text),
                    Some("the end of the line".to_string()),
                );
                true
            }
        }
    }

    /// Report a block-only keyword that came without a block.
    pub(crate) fn need_block<'s>(&mut self, s: &'s Stmt) -> Option<&'s [Stmt]> {
        match &s.block {
            Some(b) => Some(&b.body),
            None => {
                self.error(
                    &s.line_loc().after(),
                    format!("`{}` needs a block", s.key().text),
                    Some(format!(
                        "`{} ... {{` followed by its contents",
                        s.key().text
                    )),
                );
                None
            }
        }
    }

    /// Warn that a keyword appears again and its last value wins.
    pub(crate) fn warn_duplicate(&mut self, seen: &mut HashMap<String, Loc>, s: &Stmt) {
        if let Some(first) = seen.insert(s.key().text.clone(), s.key().loc.clone()) {
            let line = self.line_of(&first);
            self.warn(
                &s.key().loc,
                format!(
                    "`{}` is set again (first on line {line}); this value wins",
                    s.key().text
                ),
            );
        }
    }

    pub(crate) fn line_of(&self, loc: &Loc) -> usize {
        let t = &self.sources[loc.src].text;
        t[..loc.span.start.min(t.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }
}

fn parse_seconds(s: &str) -> Option<Duration> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
    {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let micros: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// A typo: within one edit (transpositions count once) for short keywords, two for long
/// ones; case differences count as typos too.
pub(crate) fn is_typo(known: &str, written: &str) -> bool {
    if written.len() < 4 {
        return false;
    }
    let limit = if known.len() <= 6 { 1 } else { 2 };
    known.eq_ignore_ascii_case(written) || osa_distance(known, written) <= limit
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
pub(crate) fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Parse keepalived.conf `text` (named `path` in diagnostics) with default
/// [`ParseOptions`] (no configuration id). `include` is refused here (it needs the file
/// system): use [`load_keepalived`] for files that include others.
///
/// On success the [`KeepalivedConf`] holds a validated [`Config`] and the warnings; on
/// failure every error found (syntax, values, and [`Config::validate`]'s, each located at
/// the keyword or value it blames), in file order.
pub fn parse_keepalived(text: &str, path: &str) -> Result<KeepalivedConf, Vec<Diagnostic>> {
    parse_keepalived_with(text, path, &ParseOptions::default())
}

/// [`parse_keepalived`] with the configuration id and random seed keepalived would take
/// from its environment.
pub fn parse_keepalived_with(
    text: &str,
    path: &str,
    opts: &ParseOptions,
) -> Result<KeepalivedConf, Vec<Diagnostic>> {
    let mut p = Parser::new(None, opts);
    let evs = p.file(path.to_string(), text.to_string(), None);
    build(p.sources, p.findings, evs)
}

/// Read and parse a keepalived.conf file and the files it includes (`include PATTERN`,
/// globs allowed, relative to the including file's directory, at most
/// 8 levels deep, cycles refused), with default [`ParseOptions`]. Diagnostics point into
/// the file they concern.
pub fn load_keepalived(path: &Path) -> Result<KeepalivedConf, Vec<Diagnostic>> {
    load_keepalived_with(path, &ParseOptions::default())
}

/// [`load_keepalived`] with the configuration id and random seed keepalived would take
/// from its environment.
pub fn load_keepalived_with(
    path: &Path,
    opts: &ParseOptions,
) -> Result<KeepalivedConf, Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let (text, canonical) = match read_utf8(path) {
        Ok((t, c)) => (t, c),
        Err((text, at, msg)) => {
            let span = at.map_or(0..0, |a| a..a + 1);
            let expected = at.map(|_| "UTF-8 text".to_string());
            return Err(vec![Diagnostic::new(
                &text,
                &shown,
                span,
                Severity::Error,
                msg,
                expected,
            )]);
        }
    };
    let mut reader = |p: &Path| -> Result<(String, String, std::path::PathBuf), String> {
        match read_utf8(p) {
            Ok((t, c)) => Ok((p.display().to_string(), t, c)),
            Err((_, _, msg)) => Err(msg),
        }
    };
    let mut p = Parser::new(Some(&mut reader), opts);
    let evs = p.file(shown, text, Some(canonical));
    let (sources, findings) = (
        std::mem::take(&mut p.sources),
        std::mem::take(&mut p.findings),
    );
    drop(p);
    build(sources, findings, evs)
}

/// A file's text and canonical path, or (lossy text, bad byte offset, message).
fn read_utf8(path: &Path) -> Result<(String, std::path::PathBuf), (String, Option<usize>, String)> {
    let bytes = std::fs::read(path)
        .map_err(|e| (String::new(), None, format!("cannot read the file: {e}")))?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // keepalived reads bytes (lib/parser.c read_line()): a file in another encoding (a
    // comment in GBK or Latin-1) runs. Bytes that are not UTF-8 are read as U+FFFD; where
    // one lands outside a comment the caller warns (crate::diag::non_utf8).
    Ok((String::from_utf8_lossy(&bytes).into_owned(), canonical))
}

/// Where each service's parts came from, to locate `Config::validate`'s errors.
struct SvcLoc {
    key: Loc,
    ops: Loc,
    persistence: Loc,
    sched: Loc,
    servers: Vec<RsLoc>,
}

#[derive(Clone)]
struct RsLoc {
    addr: Loc,
    weight: Loc,
    thresholds: Loc,
}

/// A `virtual_server_group` as written.
struct Group {
    name: Loc,
    members: Vec<(Member, Loc)>,
    used: bool,
}

#[derive(Clone)]
enum Member {
    Addrs(Vec<IpAddr>, u16),
    Fwmark(u32, Option<Family>),
}

fn build(
    sources: Vec<Source>,
    findings: Vec<Finding>,
    evs: Vec<Ev>,
) -> Result<KeepalivedConf, Vec<Diagnostic>> {
    let mut cx = Ctx {
        sources,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for f in findings {
        let sev = if f.error {
            Severity::Error
        } else {
            Severity::Warning
        };
        let d = cx.diag(&f.loc, sev, f.message, f.expected);
        if f.error {
            cx.errors.push((f.loc, d));
        } else {
            cx.warnings.push((f.loc, d));
        }
    }
    let stmts = structure(&mut cx, &evs);

    let mut global = GlobalDefs::default();
    let mut timeouts = Timeouts::default();
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut group_order: Vec<String> = Vec::new();
    let mut vs_stmts = Vec::new();
    let mut vrrp = Vrrp::default();
    let mut laddr_groups: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for s in &stmts {
        let Some(u) = cx.check_key(Scope::Root, s) else {
            continue;
        };
        match s.key().text.as_str() {
            "global_defs" => {
                if !s.args().is_empty() {
                    cx.error(
                        &s.args()[0].loc,
                        "`global_defs` takes no name",
                        Some("`global_defs {`".to_string()),
                    );
                }
                if let Some(body) = cx.need_block(s) {
                    global_defs(&mut cx, body, &mut global, &mut timeouts);
                }
            }
            "virtual_server_group" => {
                if let Some((name, g)) = vs_group(&mut cx, s) {
                    if let Some(first) = groups.get(&name) {
                        let line = cx.line_of(&first.name);
                        cx.error(
                            &g.name,
                            format!(
                                "virtual_server_group `{name}` is defined twice (first on line {line})"
                            ),
                            Some("a unique name for each group".to_string()),
                        );
                    } else {
                        group_order.push(name.clone());
                        groups.insert(name, g);
                    }
                }
            }
            "virtual_server" => vs_stmts.push(s),
            "vrrp_instance" | "vrrp_sync_group" | "vrrp_script" => {
                vrrp::root(&mut cx, s, &mut vrrp)
            }
            "local_address_group" => {
                if let Some((name, addrs)) = laddr_group(&mut cx, s) {
                    laddr_groups.insert(name, addrs);
                }
            }
            _ => {
                // Kept or ignored root blocks: the key warning was given; nothing to read.
                debug_assert!(u != Use::Applied);
            }
        }
    }

    let mut config = Config {
        timeouts,
        ..Config::default()
    };
    let mut locs: Vec<SvcLoc> = Vec::new();
    let mut checkers = Vec::new();
    for s in vs_stmts {
        if let Some(vs) = virtual_server(&mut cx, s, &mut groups) {
            let VsOut {
                services: all,
                svc_locs: all_locs,
                mut checks,
                laddr_group,
                syn_proxy,
            } = vs;
            // A service already defined (by an earlier virtual_server, or twice by one group):
            // keepalived adds the kernel service once - ipvswrapper.c ipvs_talk takes the
            // kernel's EEXIST ("Service already exists") on the second add as done, and
            // ipvs_group_cmd skips an entry already alive - so the first definition's
            // settings run. keepalived then also adds this block's real servers to that
            // service; rvs does not (one service has one set of health settings), and says
            // so (docs/operating.md).
            let mut services = Vec::new();
            let mut svc_locs = Vec::new();
            for (svc, l) in all.into_iter().zip(all_locs) {
                let first = locs
                    .iter()
                    .zip(&config.services)
                    .chain(svc_locs.iter().zip(&services))
                    .find(|(_, x)| x.key == svc.key)
                    .map(|(fl, _)| cx.line_of(&fl.key));
                if let Some(line) = first {
                    cx.warn(
                        &l.key,
                        format!(
                            "virtual service {} is already defined (line {line}): keepalived \
                             creates it once, with the first definition's settings (the second \
                             add gets \"Service already exists\"), and so does rvs; keepalived \
                             also adds this block's real servers to it, rvs does not - put them \
                             in the first block",
                            locate::describe(&svc.key)
                        ),
                    );
                    continue;
                }
                services.push(svc);
                svc_locs.push(l);
            }
            fullnat_pool(&mut cx, &mut config, &services, laddr_group, &laddr_groups);
            if syn_proxy {
                config
                    .synproxy
                    .services
                    .extend(services.iter().map(|s| s.key));
            }
            checks.services =
                (config.services.len()..config.services.len() + services.len()).collect();
            config.services.extend(services);
            locs.extend(svc_locs);
            checkers.push(checks);
        }
    }
    for name in &group_order {
        let g = &groups[name];
        if !g.used {
            let loc = g.name.clone();
            cx.warn(
                &loc,
                format!("virtual_server_group `{name}` is not used by any virtual_server"),
            );
        }
    }

    if cx.errors.is_empty()
        && let Err(errs) = config.validate()
    {
        locate_validate_errors(&mut cx, &config, &locs, &errs);
    }
    let order = |sources: &[Source], l: &Loc| (l.src.min(sources.len()), l.span.start);
    if !cx.errors.is_empty() {
        let mut errors = cx.errors;
        errors.sort_by_key(|(l, _)| order(&cx.sources, l));
        return Err(errors.into_iter().map(|(_, d)| d).collect());
    }
    let fwmark_places = config
        .services
        .iter()
        .zip(&locs)
        .filter_map(|(svc, l)| match svc.key {
            ServiceKey::Fwmark { mark, .. } => Some((mark, cx.place(&l.key))),
            ServiceKey::Addr { .. } => None,
        })
        .collect();
    let mut warnings = cx.warnings;
    warnings.sort_by_key(|(l, _)| order(&cx.sources, l));
    let health = health::health(&config, &checkers);
    Ok(KeepalivedConf {
        config,
        global,
        health,
        checkers,
        vrrp,
        warnings: warnings.into_iter().map(|(_, d)| d).collect(),
        fwmark_places,
    })
}

/// How deep opaque blocks (those rvs does not read, e.g. `SSL`) may nest.
const MAX_DEPTH: usize = 16;

/// The statements of a configuration, blocks nested as keepalived nests them
/// (`lib/parser.c`, `process_stream`): a keyword opens a block only when it has one in the
/// level it is read at. A block after an unknown keyword is not skipped: keepalived logs
/// "Unexpected '{'", reads its lines at the current level, and its `}` closes the current
/// block. A keyword that opens a level reads the lines after it as its block even without a
/// `{` (keepalived: "Missing '{' at beginning of configuration block"). An extra `}` is
/// ignored ("Extra '}' found"); blocks still open at the end are closed there ("There are N
/// missing '}'s").
fn structure(cx: &mut Ctx, evs: &[Ev]) -> Vec<Stmt> {
    let mut pos = 0;
    level(cx, evs, &mut pos, Some(Scope::Root), None, 0)
}

/// One level's statements, up to its `}` (consumed) or the end. `scope` None: a block rvs
/// does not read (nested as written).
fn level(
    cx: &mut Ctx,
    evs: &[Ev],
    pos: &mut usize,
    scope: Option<Scope>,
    open: Option<(&Loc, &str)>,
    depth: usize,
) -> Vec<Stmt> {
    let mut out = Vec::new();
    let closes = |open: Option<(&Loc, &str)>| match open {
        Some((_, key)) => format!(", and its `}}` closes the `{key}` block"),
        None => String::new(),
    };
    while let Some(ev) = evs.get(*pos) {
        *pos += 1;
        match ev {
            Ev::Line(words) => {
                let key = words[0].text.as_str();
                let next_open = match evs.get(*pos) {
                    Some(Ev::Open(l)) => Some(l.clone()),
                    _ => None,
                };
                let known = scope.is_none_or(|s| s.keys().iter().any(|(k, _)| *k == key));
                let sub = scope.and_then(|s| s.sub_level(key));
                match (next_open, known) {
                    (Some(ol), true) => {
                        *pos += 1;
                        if sub.is_none() && depth + 1 > MAX_DEPTH {
                            cx.error(
                                &ol,
                                format!("blocks nest deeper than {MAX_DEPTH} levels"),
                                Some("fewer nested blocks".to_string()),
                            );
                            skip_block(evs, pos);
                            continue;
                        }
                        let body = level(cx, evs, pos, sub, Some((&ol, key)), depth + 1);
                        out.push(Stmt {
                            words: words.clone(),
                            block: Some(Block { open: ol, body }),
                        });
                    }
                    (Some(ol), false) => {
                        *pos += 1;
                        let here = scope.map_or_else(String::new, |s| s.name());
                        cx.warn(
                            &ol,
                            format!(
                                "the block of unknown `{key}` is not skipped: keepalived ignores \
                                 this `{{` and reads the lines after it as part of {here}{}",
                                closes(open)
                            ),
                        );
                        out.push(Stmt {
                            words: words.clone(),
                            block: None,
                        });
                    }
                    (None, _) => match sub {
                        Some(sub) => {
                            let at = words[words.len() - 1].loc.after();
                            cx.warn(
                                &at,
                                format!(
                                    "`{key}` has no `{{`: keepalived reads the lines that follow \
                                     as its block, up to the next `}}`, and so does rvs"
                                ),
                            );
                            let body = level(cx, evs, pos, Some(sub), Some((&at, key)), depth + 1);
                            out.push(Stmt {
                                words: words.clone(),
                                block: Some(Block { open: at, body }),
                            });
                        }
                        None => out.push(Stmt {
                            words: words.clone(),
                            block: None,
                        }),
                    },
                }
            }
            Ev::Open(l) => {
                let here = scope.map_or_else(|| "this block".to_string(), |s| s.name());
                cx.warn(
                    l,
                    format!(
                        "`{{` without a keyword ignored, as keepalived does: the lines after it \
                         are read as part of {here}{}",
                        closes(open)
                    ),
                );
            }
            Ev::Close(l) => {
                if depth > 0 {
                    return out;
                }
                cx.warn(l, "extra `}` ignored, as keepalived does");
            }
        }
    }
    if let Some((o, key)) = open {
        cx.warn(
            o,
            format!(
                "the `{key}` block has no closing `}}`: it is closed at the end of the \
                 configuration, as keepalived does"
            ),
        );
    }
    out
}

/// Skip to the `}` matching an `{` just read.
fn skip_block(evs: &[Ev], pos: &mut usize) {
    let mut level = 1;
    while let Some(e) = evs.get(*pos) {
        *pos += 1;
        match e {
            Ev::Open(_) => level += 1,
            Ev::Close(_) => {
                level -= 1;
                if level == 0 {
                    return;
                }
            }
            Ev::Line(_) => {}
        }
    }
}

fn global_defs(cx: &mut Ctx, body: &[Stmt], global: &mut GlobalDefs, timeouts: &mut Timeouts) {
    let mut seen = HashMap::new();
    for s in body {
        let Some(u) = cx.check_key(Scope::GlobalDefs, s) else {
            continue;
        };
        // Keys read for nothing (blocks such as `notification_email { }` included); the
        // director's name is only checked for a value.
        let named = matches!(s.key().text.as_str(), "router_id" | "lvs_id");
        if u == Use::Ignored || (u == Use::Silent && !named) {
            continue;
        }
        cx.warn_duplicate(&mut seen, s);
        cx.no_block(s);
        match s.key().text.as_str() {
            "lvs_timeouts" => lvs_timeouts(cx, s, timeouts),
            // keepalived global_parser.c routerid_handler(): "routerid name missing - ignoring"
            // (e.g. when an unterminated string left it without a value).
            "router_id" | "lvs_id" if s.args().is_empty() => cx.warn(
                &s.key().loc,
                format!(
                    "`{}` has no value: ignored, as keepalived ignores it",
                    s.key().text
                ),
            ),
            // The name only goes into keepalived's alert e-mails and SNMP: nothing kept.
            "router_id" | "lvs_id" => {}
            "lvs_sync_daemon" => global.lvs_sync_daemon = lvs_sync_daemon(cx, s),
            "vrrp_version" => {
                if let Some(w) = cx.one(s, "2 or 3") {
                    global.vrrp.version = cx.int_of(w, "vrrp_version", 2, 3).map(|n| n as u8);
                }
            }
            "vrrp_garp_master_delay" => global.vrrp.garp_master_delay = cx.timer(s),
            "vrrp_garp_master_repeat" => {
                global.vrrp.garp_master_repeat = cx.u32_of(s, u32::MAX).map(|n| n.max(1));
            }
            "vrrp_garp_master_refresh" => global.vrrp.garp_master_refresh = cx.timer(s),
            "vrrp_garp_master_refresh_repeat" => {
                global.vrrp.garp_master_refresh_repeat = cx.u32_of(s, u32::MAX).map(|n| n.max(1));
            }
            "vrrp_garp_lower_prio_delay" => global.vrrp.garp_lower_prio_delay = cx.timer(s),
            "vrrp_garp_lower_prio_repeat" => {
                global.vrrp.garp_lower_prio_repeat = cx.u32_of(s, u32::MAX);
            }
            "vrrp_lower_prio_no_advert" => global.vrrp.lower_prio_no_advert = Some(cx.flag(s)),
            "vrrp_higher_prio_send_advert" => {
                global.vrrp.higher_prio_send_advert = Some(cx.flag(s));
            }
            "vrrp_check_unicast_src" => global.vrrp.check_unicast_src = Some(cx.flag(s)),
            "vrrp_skip_check_adv_addr" => global.vrrp.skip_check_adv_addr = Some(cx.flag(s)),
            // keepalived global_parser.c vrrp_strict_handler: no argument.
            "vrrp_strict" => global.vrrp.strict = true,
            // global_parser.c script_user_handler(): "No script username specified" and the
            // line is ignored; USER [GROUP], further words unread.
            "script_user" if s.args().is_empty() => cx.warn(
                &s.key().loc,
                "`script_user` names no user: ignored, as keepalived ignores it",
            ),
            "script_user" => {
                let words: Vec<&str> = s.args().iter().take(2).map(|w| w.text.as_str()).collect();
                global.scripts.script_user = Some(words.join(" "));
            }
            // global_parser.c script_security_handler(): no argument.
            "enable_script_security" => global.scripts.enable_script_security = true,
            _ => {}
        }
    }
}

fn lvs_timeouts(cx: &mut Ctx, s: &Stmt, t: &mut Timeouts) {
    // keepalived global_parser.c lvs_timeouts(): fewer than two words after the keyword is
    // "lvs_timeouts requires at least one option" and the line is ignored; then each of
    // `tcp`, `tcpfin`, `udp` takes the next word ("No value specified for lvs_timeout tcp -
    // ignoring" at the end of the line, "Invalid lvs_timeout tcp (x) - ignoring" for a bad
    // one), and another word is "Unknown option x specified for lvs_timeouts", skipped.
    let args = s.args();
    if args.len() < 2 {
        cx.warn(
            &s.key().loc,
            "`lvs_timeouts` needs at least one timeout and its seconds (`tcp 900`): ignored, \
             as keepalived ignores it",
        );
        return;
    }
    let d = Timeouts::default();
    let mut i = 0;
    while i < args.len() {
        let name = &args[i];
        let slot = match name.text.as_str() {
            "tcp" => (&mut t.tcp, d.tcp),
            "tcpfin" => (&mut t.tcp_fin, d.tcp_fin),
            "udp" => (&mut t.udp, d.udp),
            _ => {
                cx.warn(
                    &name.loc,
                    format!(
                        "unknown timeout `{}` in `lvs_timeouts` (`tcp`, `tcpfin` or `udp`): \
                         skipped, as keepalived skips it",
                        name.text
                    ),
                );
                i += 1;
                continue;
            }
        };
        let Some(v) = args.get(i + 1) else {
            cx.warn(
                &name.loc,
                format!(
                    "`{}` in `lvs_timeouts` has no seconds: ignored, as keepalived ignores it",
                    name.text
                ),
            );
            return;
        };
        // keepalived: up to 86400 * 31 s; 0 leaves the kernel's value.
        match v.text.parse::<u32>() {
            Ok(n) if n <= 86_400 * 31 => *slot.0 = if n == 0 { slot.1 } else { n },
            _ => cx.warn(
                &v.loc,
                format!(
                    "`{} {}` in `lvs_timeouts` is not a number of seconds in 0..={}: ignored, \
                     as keepalived ignores it",
                    name.text,
                    v.text,
                    86_400 * 31
                ),
            ),
        }
        i += 2;
    }
}

fn lvs_sync_daemon(cx: &mut Ctx, s: &Stmt) -> Option<LvsSyncDaemon> {
    let args = s.args();
    // keepalived global_parser.c lvs_syncd_handler(): "lvs_sync_daemon requires interface",
    // and the line is ignored.
    let Some(ifname) = args.first() else {
        cx.no_value_ignored(s);
        return None;
    };
    let mut d = LvsSyncDaemon {
        interface: ifname.text.clone(),
        vrrp_instance: None,
        sync_id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
        places: BTreeMap::new(),
    };
    d.places
        .insert("lvs_sync_daemon".to_string(), cx.place(&s.key().loc));
    // keepalived global_parser.c `lvs_syncd_handler`: each option is read on its own; a
    // missing or invalid value is logged and that option ignored ("Invalid lvs_sync_daemon
    // maxlen (120000) - ignoring"), an unknown word is logged ("Unknown option ...") and the
    // next word is read as an option. The second and third words may also be the old
    // `VRRP_INSTANCE [SYNC_ID]`.
    let mut i = 1;
    while i < args.len() {
        let opt = &args[i];
        let value = args.get(i + 1);
        // (keyword, lowest, highest, what keepalived then does)
        let range = match opt.text.as_str() {
            "id" => Some((0, 255, "the sync id is the instance's virtual_router_id")),
            "maxlen" => Some((1, 65_535 - 20 - 8, "the kernel's default message size")),
            "port" => Some((1, 65_535, "port 8848")),
            "ttl" => Some((1, 255, "TTL 1")),
            _ => None,
        };
        if opt.text == "inst" || opt.text == "group" || range.is_some() {
            let Some(v) = value else {
                let then = range.map_or("ignored", |r| r.2);
                cx.warn(
                    &opt.loc,
                    format!(
                        "`lvs_sync_daemon` option `{}` has no value: keepalived ignores it and \
                         so does rvs ({then})",
                        opt.text
                    ),
                );
                break;
            };
            match (opt.text.as_str(), range) {
                ("inst", _) => {
                    if d.vrrp_instance.is_some() {
                        cx.warn(
                            &v.loc,
                            "`lvs_sync_daemon` names its instance twice: keepalived keeps the \
                             first and so does rvs",
                        );
                    } else {
                        d.vrrp_instance = Some(v.text.clone());
                        d.places.insert("instance".to_string(), cx.place(&v.loc));
                    }
                }
                // A unicast address is rvs's extension (the peer to send to, see
                // crate::failover); keepalived ignores it.
                ("group", _) => match v.text.parse::<IpAddr>() {
                    Ok(g) => d.group = Some(g),
                    Err(_) => cx.warn(
                        &v.loc,
                        format!(
                            "`lvs_sync_daemon` group `{}` is not an IP address: keepalived \
                             ignores it (\"Invalid lvs_sync_daemon group\") and so does rvs \
                             (group 224.0.0.81)",
                            v.text
                        ),
                    ),
                },
                (key, Some((lo, hi, then))) => match v.text.parse::<u64>() {
                    Ok(n) if (lo..=hi).contains(&n) => match key {
                        "id" => {
                            d.sync_id = Some(n as u8);
                            d.places.insert("id".to_string(), cx.place(&v.loc));
                        }
                        "maxlen" => d.maxlen = Some(n as u16),
                        "port" => d.port = Some(n as u16),
                        _ => d.ttl = Some(n as u8),
                    },
                    _ => {
                        let logged = if key == "id" {
                            "Invalid syncid".to_string()
                        } else {
                            format!("Invalid lvs_sync_daemon {key}")
                        };
                        cx.warn(
                            &v.loc,
                            format!(
                                "`lvs_sync_daemon` {key} `{}` is not in {lo}..={hi}: keepalived \
                                 ignores it (\"{logged}\") and so does rvs: {then}",
                                v.text
                            ),
                        )
                    }
                },
                _ => unreachable!("options with a value are listed above"),
            }
            i += 2;
            continue;
        }
        if i == 1 {
            // Old syntax: `lvs_sync_daemon IF VRRP_INSTANCE [SYNC_ID]`.
            d.vrrp_instance = Some(opt.text.clone());
            d.places.insert("instance".to_string(), cx.place(&opt.loc));
        } else if i == 2 {
            match opt.text.parse::<u8>() {
                Ok(n) => {
                    d.sync_id = Some(n);
                    d.places.insert("id".to_string(), cx.place(&opt.loc));
                }
                Err(_) => cx.warn(
                    &opt.loc,
                    format!(
                        "`{}` is not a sync id in 0..=255: keepalived ignores it and so does \
                         rvs (the sync id is the instance's virtual_router_id)",
                        opt.text
                    ),
                ),
            }
        } else {
            cx.warn(
                &opt.loc,
                format!(
                    "unknown `lvs_sync_daemon` option `{}` (keepalived knows `inst`, `id`, \
                     `maxlen`, `port`, `ttl`, `group`): ignored, as keepalived ignores it",
                    opt.text
                ),
            );
        }
        i += 1;
    }
    Some(d)
}

/// DPVS's `local_address_group NAME { IP DEV | IP-LAST DEV ... }` (DPVS keepalived
/// check_data.c alloc_laddr_entry()): the addresses; the device is DPVS's port, which
/// rvs does not need (it sends from the real server's link).
fn laddr_group(cx: &mut Ctx, s: &Stmt) -> Option<(String, Vec<IpAddr>)> {
    let Some(name) = s.args().first() else {
        cx.error(
            &s.key().loc.after(),
            "`local_address_group` needs a name",
            Some("`local_address_group NAME {`".to_string()),
        );
        return None;
    };
    let body = cx.need_block(s)?;
    let mut addrs = Vec::new();
    for e in body {
        if let Some(a) = addr_range(cx, &e.words[0]) {
            addrs.extend(a);
        }
    }
    Some((name.text.clone(), addrs))
}

/// The FullNAT local address pool: rvs has one, shared by every FullNAT service, so the
/// groups the FullNAT virtual servers name are merged into it (warned when they differ).
fn fullnat_pool(
    cx: &mut Ctx,
    config: &mut Config,
    services: &[VirtualServiceConfig],
    group: Option<Word>,
    groups: &HashMap<String, Vec<IpAddr>>,
) {
    let fullnat = services.iter().any(|s| {
        s.real_servers
            .iter()
            .any(|r| r.method == ForwardMethod::FullNat)
    });
    let Some(g) = group else {
        return;
    };
    if !fullnat {
        cx.warn(
            &g.loc,
            "`laddr_group_name` only matters to `lb_kind FNAT` (FullNAT): ignored",
        );
        return;
    }
    let Some(addrs) = groups.get(&g.text) else {
        cx.warn(
            &g.loc,
            format!(
                "no `local_address_group` named `{}`: this virtual server has no local \
                 addresses from it",
                g.text
            ),
        );
        return;
    };
    let pool = &mut config.local_pool;
    if !pool.addrs.is_empty() && addrs.iter().any(|a| !pool.addrs.contains(a)) {
        cx.warn(
            &g.loc,
            format!(
                "rvs has one FullNAT local address pool for all services: the addresses of \
                 `{}` join it",
                g.text
            ),
        );
    }
    for a in addrs {
        if !pool.addrs.contains(a) {
            pool.addrs.push(*a);
        }
    }
    // DPVS allocates local ports from the whole unprivileged range.
    pool.port_range = (1024, 65535);
}

/// `virtual_server_group NAME { IP PORT | IP-LAST PORT | fwmark N [inet|inet6] ... }`.
fn vs_group(cx: &mut Ctx, s: &Stmt) -> Option<(String, Group)> {
    let name = match s.args() {
        [n] => n,
        [] => {
            cx.error(
                &s.key().loc.after(),
                "`virtual_server_group` needs a name",
                Some("`virtual_server_group NAME {`".to_string()),
            );
            return None;
        }
        [_, extra @ ..] => {
            cx.error(
                &extra[0].loc,
                "`virtual_server_group` takes one name",
                Some("`{`".to_string()),
            );
            return None;
        }
    };
    let body = cx.need_block(s)?;
    let mut members = Vec::new();
    for e in body {
        if let Some(b) = &e.block {
            cx.error(
                &b.open,
                "a virtual_server_group entry takes no block",
                Some("`IP PORT`, `IP-LAST PORT` or `fwmark N`".to_string()),
            );
            continue;
        }
        let w = e.words.as_slice();
        let loc = e.line_loc();
        if w[0].text == "fwmark" {
            let Some(m) = w.get(1) else {
                cx.error(
                    &w[0].loc.after(),
                    "`fwmark` needs a mark",
                    Some("a non-zero mark, e.g. `fwmark 1`".to_string()),
                );
                continue;
            };
            let Some(mark) = cx.uint(m, "fwmark", u64::from(u32::MAX)) else {
                continue;
            };
            let family = match w.get(2).map(|x| x.text.as_str()) {
                None => None,
                Some("inet") => Some(Family::V4),
                Some("inet6") => Some(Family::V6),
                Some(_) => {
                    cx.error(
                        &w[2].loc,
                        format!("unknown address family `{}`", w[2].text),
                        Some("`inet` or `inet6`".to_string()),
                    );
                    continue;
                }
            };
            if let Some(x) = w.get(3) {
                cx.error(
                    &x.loc,
                    "unexpected value after the fwmark entry",
                    Some("the end of the line".to_string()),
                );
                continue;
            }
            members.push((Member::Fwmark(mark as u32, family), loc));
            continue;
        }
        let Some(addrs) = addr_range(cx, &w[0]) else {
            continue;
        };
        let Some(pw) = w.get(1) else {
            cx.error(
                &w[0].loc.after(),
                format!("group entry `{}` needs a port", w[0].text),
                Some("`IP PORT`, e.g. `10.0.0.1 80`".to_string()),
            );
            continue;
        };
        let Some(port) = cx.port(pw) else { continue };
        if let Some(x) = w.get(2) {
            cx.error(
                &x.loc,
                "unexpected value after the port",
                Some("the end of the line".to_string()),
            );
            continue;
        }
        members.push((Member::Addrs(addrs, port), loc));
    }
    if members.is_empty() {
        cx.warn(
            &name.loc,
            format!("virtual_server_group `{}` has no entries", name.text),
        );
    }
    Some((
        name.text.clone(),
        Group {
            name: name.loc.clone(),
            members,
            used: false,
        },
    ))
}

/// `IP` or `IP-LAST`: the range varies the last byte of an IPv4 address (decimal) or the
/// last 16-bit group of an IPv6 address (hex), as keepalived does.
fn addr_range(cx: &mut Ctx, w: &Word) -> Option<Vec<IpAddr>> {
    let (a, last) = match w.text.rsplit_once('-') {
        Some((a, l)) => (a, Some(l)),
        None => (w.text.as_str(), None),
    };
    let Ok(addr) = a.parse::<IpAddr>() else {
        cx.error(
            &w.loc,
            format!("`{}` is not an IP address or range", w.text),
            Some("`IP` or `IP-LAST`, e.g. `192.168.0.3-10`".to_string()),
        );
        return None;
    };
    let Some(last) = last else {
        return Some(vec![addr]);
    };
    let bad = |cx: &mut Ctx| {
        cx.error(
            &w.loc,
            format!("`{}` is not a valid address range", w.text),
            Some(
                "a last byte (IPv4, decimal) or group (IPv6, hex) not below the first".to_string(),
            ),
        );
        None
    };
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let Ok(end) = last.parse::<u8>() else {
                return bad(cx);
            };
            if end < o[3] {
                return bad(cx);
            }
            Some(
                (o[3]..=end)
                    .map(|x| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], x)))
                    .collect(),
            )
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            let Ok(end) = u16::from_str_radix(last, 16) else {
                return bad(cx);
            };
            if end < seg[7] || end - seg[7] > 1024 {
                return bad(cx);
            }
            Some(
                (seg[7]..=end)
                    .map(|x| {
                        let mut s = seg;
                        s[7] = x;
                        IpAddr::V6(Ipv6Addr::from(s))
                    })
                    .collect(),
            )
        }
    }
}

struct VsOut {
    services: Vec<VirtualServiceConfig>,
    svc_locs: Vec<SvcLoc>,
    checks: VirtualServerChecks,
    /// DPVS's `laddr_group_name`: the FullNAT local address group.
    laddr_group: Option<Word>,
    /// DPVS's `syn_proxy` (check_parser.c syn_proxy_handler(): `vs->syn_proxy = true`).
    syn_proxy: bool,
}

/// A real server as written, before it is copied into each service.
struct Rs {
    addr: IpAddr,
    port: Option<u16>,
    /// None: the virtual server's `weight` [1].
    weight: Option<u32>,
    u_threshold: u32,
    l_threshold: u32,
    method: Option<ForwardMethod>,
    loc: RsLoc,
}

/// An address and port as keepalived reads them (lib/utils.c `inet_stosockaddr`, called by
/// check_data.c `alloc_vs` / `alloc_rs`): the address is cut at its first `-` or `/`
/// (`10.0.0.1/24`, `10.0.0.1-5`); a port of zeros or none is port 0; a port with trailing
/// garbage (`80x`) is read as its leading number with a warning (`read_unsigned`, which
/// only warns); an address or port that cannot be read at all is None (keepalived skips
/// the server). Words after the port are ignored (keepalived reads two).
fn addr_port(cx: &mut Ctx, what: &str, words: &[Word]) -> Option<(IpAddr, u16)> {
    let a = &words[0];
    let cut = a
        .text
        .find(['-', '/'])
        .map_or(a.text.as_str(), |i| &a.text[..i]);
    let Ok(addr) = cut.parse::<IpAddr>() else {
        cx.warn(
            &a.loc,
            format!(
                "`{}` is not an IP address: this {what} is skipped, as keepalived skips it \
                 (rvs does not resolve host names)",
                a.text
            ),
        );
        return None;
    };
    if cut.len() != a.text.len() {
        cx.warn(
            &a.loc,
            format!(
                "`{}` is read as the address {addr}, as keepalived reads it: the part from `{}` on \
                 is ignored",
                a.text,
                &a.text[cut.len()..cut.len() + 1]
            ),
        );
    }
    let mut port = 0u16;
    if let Some(p) = words.get(1) {
        let digits = p.text.bytes().take_while(u8::is_ascii_digit).count();
        let n = p.text[..digits].parse::<u64>().ok();
        match n {
            _ if p.text.bytes().all(|c| c == b'0') => {}
            Some(n @ 1..=65_535) => {
                port = n as u16;
                if digits != p.text.len() {
                    cx.warn(
                        &p.loc,
                        format!("`{}` is read as port {n}, as keepalived reads it", p.text),
                    );
                }
            }
            _ => {
                cx.warn(
                    &p.loc,
                    format!(
                        "`{}` is not a port in 1..=65535: this {what} is skipped, as keepalived \
                         skips it",
                        p.text
                    ),
                );
                return None;
            }
        }
    }
    if words.len() > 2 {
        cx.warn(
            &words[2].loc.to(&words[words.len() - 1].loc),
            format!(
                "words after the {what}'s address and port are ignored, as keepalived ignores \
                 them"
            ),
        );
    }
    Some((addr, port))
}

/// A `virtual_server` block: its services, or None when it is refused (errors) or skipped
/// as keepalived skips it (warned).
fn virtual_server(cx: &mut Ctx, s: &Stmt, groups: &mut HashMap<String, Group>) -> Option<VsOut> {
    let errors_before = cx.error_count();
    let args = s.args();
    let header_end = s.line_loc();
    // keepalived check_data.c alloc_vs(): `group NAME`, `fwmark N` or `IP [PORT]`; a
    // virtual server it cannot read is skipped with its block.
    let target = match args {
        [] => {
            cx.error(
                &s.key().loc.after(),
                "`virtual_server` needs an address and port, `fwmark N` or `group NAME`",
                Some("`virtual_server IP PORT {`".to_string()),
            );
            None
        }
        [k] if k.text == "fwmark" || k.text == "group" => {
            cx.error(
                &k.loc.after(),
                format!("`{}` needs a value", k.text),
                Some(
                    if k.text == "fwmark" {
                        "a mark"
                    } else {
                        "a group name"
                    }
                    .to_string(),
                ),
            );
            None
        }
        // DPVS's keepalived (tools/keepalived check_parser.c) reads `virtual_server match
        // NAME` as an SNAT service chosen by `src-range`/`dst-range`/`iif`/`oif`; rvs has no
        // such service. Upstream keepalived skips it too ("Invalid virtual server IP
        // address/port match/NAME - skipping").
        [k, ..] if k.text == "match" => {
            cx.warn(
                &k.loc,
                "`virtual_server match` is DPVS's SNAT service (chosen by src-range, dst-range, \
                 iif, oif): rvs does not run it, so this virtual server is skipped (upstream \
                 keepalived skips it too)",
            );
            return None;
        }
        [k, v, rest @ ..] if k.text == "fwmark" || k.text == "group" => {
            if let Some(x) = rest.first() {
                cx.warn(
                    &x.loc.to(&rest[rest.len() - 1].loc),
                    format!(
                        "words after `{} {}` are ignored, as keepalived ignores them",
                        k.text, v.text
                    ),
                );
            }
            if k.text == "group" {
                Some(VirtualTarget::Group(v.text.clone()))
            } else {
                match v.text.parse::<u32>() {
                    Ok(m) => Some(VirtualTarget::Fwmark(m)),
                    Err(_) => {
                        cx.warn(
                            &v.loc,
                            format!(
                                "`{}` is not a firewall mark: this virtual server is skipped, as \
                                 keepalived skips it",
                                v.text
                            ),
                        );
                        return None;
                    }
                }
            }
        }
        words => {
            let (addr, port) = addr_port(cx, "virtual server", words)?;
            Some(VirtualTarget::Addr { addr, port })
        }
    };
    let key_loc = if args.is_empty() {
        s.key().loc.clone()
    } else {
        args[0].loc.to(&args[args.len() - 1].loc)
    };
    let body = cx.need_block(s)?;

    let mut seen = HashMap::new();
    let mut scheduler = (SchedulerKind::Wlc, key_loc.clone());
    let mut method = ForwardMethod::Masq;
    // No `protocol` line: UDP (see below).
    let mut protocol = Protocol::Udp;
    let mut protocol_set = false;
    let mut family: Option<(Family, Loc)> = None;
    let mut timeout: Option<(u32, Loc)> = None;
    let mut granularity: Option<(String, Loc)> = None;
    let mut flags: Vec<(String, Loc)> = Vec::new();
    let mut ops: Option<Loc> = None;
    let mut syn_proxy = false;
    let mut servers: Vec<Rs> = Vec::new();
    let mut checks = VirtualServerChecks {
        target: target.clone().unwrap_or(VirtualTarget::Fwmark(0)),
        services: Vec::new(),
        delay_loop: Duration::from_secs(60),
        inhibit_on_failure: false,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        virtualhost: None,
        sorry_server: None,
        real_servers: Vec::new(),
    };
    let mut vs_timers = check::Timers::default();
    let mut rs_stmts = Vec::new();
    let mut skip: Option<Loc> = None;
    let mut laddr_group: Option<Word> = None;
    let mut vs_weight = 1u32;
    let mut quorum_loc: Option<Loc> = None;
    let mut sorry: Option<(IpAddr, Option<u16>)> = None;
    let mut sorry_method: Option<ForwardMethod> = None;
    let mut sorry_inhibit = false;

    for st in body {
        let Some(_) = cx.check_key(Scope::VirtualServer, st) else {
            continue;
        };
        let key = st.key().text.as_str();
        if key == "real_server" {
            rs_stmts.push(st);
            continue;
        }
        cx.no_block(st);
        if !matches!(key, "real_server") {
            cx.warn_duplicate(&mut seen, st);
        }
        match key {
            "lvs_sched" | "lb_algo" => {
                if let Some(w) = cx.one(st, "a scheduler name") {
                    // keepalived check_parser.c lbalgo_handler(): a name outside its list
                    // ("Invalid lvs_scheduler - ignoring") leaves the default, wlc
                    // (check_data.c validate_check_config()). rvs has every scheduler of that
                    // list; DPVS's keepalived also knows `conhash`, which IPVS and rvs do
                    // not have: the service could not be created, so it is skipped.
                    match SchedulerKind::from_name(&w.text) {
                        Some(k) => scheduler = (k, w.loc.clone()),
                        None if w.text == "conhash" => skip = Some(w.loc.clone()),
                        None => cx.warn(
                            &w.loc,
                            format!(
                                "unknown scheduler `{}` ignored, as keepalived ignores it: this \
                                 virtual server uses {} (one of rr, wrr, lc, wlc, lblc, lblcr, \
                                 dh, sh, sed, nq, fo, ovf, mh, twos)",
                                w.text,
                                scheduler.0.name()
                            ),
                        ),
                    }
                }
            }
            "lvs_method" | "lb_kind" => {
                let keeps = format!("{} (the virtual server's)", method_name(method));
                if let Some(m) = forwarding(cx, st, &keeps) {
                    method = m;
                }
            }
            "protocol" => {
                if let Some(w) = cx.one(st, "TCP, UDP or SCTP") {
                    match w.text.to_ascii_uppercase().as_str() {
                        "TCP" => (protocol, protocol_set) = (Protocol::Tcp, true),
                        "UDP" => (protocol, protocol_set) = (Protocol::Udp, true),
                        // keepalived check_parser.c proto_handler(): strcasecmp "SCTP".
                        "SCTP" => (protocol, protocol_set) = (Protocol::Sctp, true),
                        // keepalived check_parser.c proto_handler(): "Unknown protocol -
                        // ignoring".
                        _ => cx.warn(
                            &w.loc,
                            format!(
                                "unknown protocol `{}` ignored, as keepalived ignores it: this \
                                 virtual server stays {protocol}",
                                w.text
                            ),
                        ),
                    }
                }
            }
            "ip_family" => {
                if let Some(w) = cx.one(st, "inet or inet6") {
                    match w.text.as_str() {
                        "inet" => family = Some((Family::V4, w.loc.clone())),
                        "inet6" => family = Some((Family::V6, w.loc.clone())),
                        _ => cx.error(
                            &w.loc,
                            format!("unknown address family `{}`", w.text),
                            Some("`inet` or `inet6`".to_string()),
                        ),
                    }
                }
            }
            "persistence_timeout" => match st.args() {
                [] => timeout = Some((Persistence::DEFAULT_TIMEOUT, st.key().loc.clone())),
                _ => {
                    // keepalived check_parser.c pto_handler(): 1..=2678400, anything else
                    // "persistence_timeout invalid" and ignored.
                    if let Some(w) = cx.one(st, "seconds") {
                        match w.text.parse::<u32>() {
                            Ok(n) if (1..=Persistence::MAX_TIMEOUT).contains(&n) => {
                                timeout = Some((n, w.loc.clone()))
                            }
                            _ => cx.warn(
                                &w.loc,
                                format!(
                                    "`persistence_timeout {}` is invalid (seconds in 1..=2678400): \
                                     ignored, as keepalived ignores it{}",
                                    w.text,
                                    match &timeout {
                                        Some((n, _)) => format!("; the timeout stays {n}"),
                                        None => " (no persistence from this line)".to_string(),
                                    }
                                ),
                            ),
                        }
                    }
                }
            },
            "persistence_granularity" => {
                if let Some(w) = cx.one(st, "a netmask or prefix length") {
                    granularity = Some((w.text.clone(), w.loc.clone()));
                }
            }
            "ops" => ops = Some(st.key().loc.clone()),
            // DPVS keepalived check_parser.c syn_proxy_handler(): a flag, no value.
            "syn_proxy" => syn_proxy = true,
            "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
            | "mh-fallback" => flags.push((key.to_string(), st.key().loc.clone())),
            "delay_loop" => {
                // keepalived check_parser.c vs_delay_handler(): read_timer(); an unreadable
                // value is logged and the default stays. At least one second.
                if let Some(t) = check::lenient_timer(cx, st) {
                    checks.delay_loop = t.max(Duration::from_secs(1));
                }
            }
            "connect_timeout" | "retry" | "delay_before_retry" | "warmup" => {
                vs_timers.read(cx, st);
            }
            // keepalived check_parser.c vs_inhibit_handler(), vs_alpha_handler(),
            // omega_handler(): on, whatever follows. (`ha_suspend`, hasuspend_handler(), is
            // warned as not acted on by check_key and kept nowhere.)
            "inhibit_on_failure" => checks.inhibit_on_failure = vs_flag(cx, st),
            "alpha" => checks.alpha = vs_flag(cx, st),
            "omega" => checks.omega = vs_flag(cx, st),
            // DPVS's keyword (upstream keepalived does not know it and skips the line).
            "laddr_group_name" if cx.no_value_ignored(st) => {}
            "laddr_group_name" => laddr_group = cx.one(st, "a local_address_group name").cloned(),
            "weight" => {
                // keepalived check_parser.c vs_weight_handler(): the weight of real servers
                // that set none, 1..=65535; anything else is ignored.
                if let Some(w) = cx.one(st, "a weight") {
                    match w.text.parse::<u32>() {
                        Ok(n) if (1..=RealServerConfig::MAX_WEIGHT).contains(&n) => {
                            vs_weight = n;
                        }
                        _ => cx.warn(
                            &w.loc,
                            format!(
                                "virtual server weight `{}` is outside 1..=65535: ignored, as \
                                 keepalived ignores it (real servers default to weight \
                                 {vs_weight})",
                                w.text
                            ),
                        ),
                    }
                }
            }
            "quorum" => {
                // keepalived check_parser.c quorum_handler(): outside 1..=4294967295 it is
                // "Setting to 1".
                if let Some(w) = cx.one(st, "a weight sum") {
                    match w.text.parse::<u32>() {
                        Ok(n) if n >= 1 => {
                            checks.quorum = n;
                            quorum_loc = Some(w.loc.clone());
                        }
                        _ => {
                            cx.warn(
                                &w.loc,
                                format!(
                                    "`quorum {}` is outside 1..=4294967295: set to 1, as \
                                     keepalived sets it",
                                    w.text
                                ),
                            );
                            checks.quorum = 1;
                            quorum_loc = Some(w.loc.clone());
                        }
                    }
                }
            }
            "hysteresis" => {
                if let Some(n) = cx.u32_of(st, u32::MAX) {
                    checks.hysteresis = n;
                }
            }
            "quorum_up" => checks.quorum_up = checker_script(cx, st),
            "quorum_down" => checks.quorum_down = checker_script(cx, st),
            // check_parser.c vs_virtualhost_handler(): "virtual server virtualhost missing".
            "virtualhost" if cx.no_value_ignored(st) => {}
            "virtualhost" => checks.virtualhost = cx.string(st, "a host name"),
            // keepalived check_parser.c ssvr_handler → check_data.c alloc_ssvr: the address
            // and port are read as a real server's (inet_stosockaddr); one it cannot read is
            // logged ("Invalid sorry server IP address ... - skipping") and the line ignored;
            // port 0 (or none) is the service's port.
            "sorry_server" => match st.args() {
                [] => cx.error(
                    &st.key().loc.after(),
                    "`sorry_server` needs an address",
                    Some("`sorry_server IP [PORT]`".to_string()),
                ),
                words => {
                    if let Some((a, p)) = addr_port(cx, "sorry server", words) {
                        sorry = Some((a, (p != 0).then_some(p)));
                    }
                }
            },
            "sorry_server_inhibit" => sorry_inhibit = cx.flag(st),
            // check_parser.c ss_forwarding_handler(): before a `sorry_server` the line is
            // "sorry_server forwarding used without sorry_server" and ignored, value or not;
            // after one a missing method is read anyway and keepalived exits.
            "sorry_server_lvs_method" if sorry.is_none() && cx.no_value_ignored(st) => {}
            "sorry_server_lvs_method" => {
                if let Some(m) = forwarding(cx, st, "the virtual server's method") {
                    sorry_method = Some(m);
                }
            }
            _ => {}
        }
    }

    // Scheduler flags: sh-* only mean something to sh, mh-* to mh (keepalived ignores them
    // otherwise, with an error in its log).
    let mut bits = 0u8;
    for (f, loc) in &flags {
        let (bit, needs) = match f.as_str() {
            "flag-1" => (SchedFlags::FLAG_1, None),
            "flag-2" => (SchedFlags::FLAG_2, None),
            "flag-3" => (SchedFlags::FLAG_3, None),
            "sh-fallback" => (SchedFlags::FLAG_1, Some(SchedulerKind::Sh)),
            "sh-port" => (SchedFlags::FLAG_2, Some(SchedulerKind::Sh)),
            "mh-fallback" => (SchedFlags::FLAG_1, Some(SchedulerKind::Mh)),
            _ => (SchedFlags::FLAG_2, Some(SchedulerKind::Mh)),
        };
        match needs {
            Some(k) if k != scheduler.0 => cx.warn(
                loc,
                format!("`{f}` only applies to the {} scheduler; ignored", k.name()),
            ),
            _ => bits |= bit,
        }
    }

    // The port a real server written without one takes, when the virtual server has one port.
    let vs_port = match &target {
        Some(VirtualTarget::Addr { port, .. }) => Some(*port),
        _ => None,
    };
    for st in rs_stmts {
        if let Some((mut rs, rc)) = real_server(cx, st, &vs_timers, &checks) {
            // keepalived check_data.c validate_check_config(): a real server equal (rs_iseq:
            // address and port) to one earlier in the virtual server is logged "is duplicated
            // - removing second rs" and freed; the first one, its weight and checkers, runs.
            // One written without a port gets the virtual server's port only after that
            // loop, so keepalived adds both and the kernel refuses the second add (EEXIST):
            // the first runs too.
            let same = |a: Option<u16>, b: Option<u16>| a.or(vs_port) == b.or(vs_port);
            if let Some(first) = servers
                .iter()
                .find(|f| f.addr == rs.addr && same(f.port, rs.port))
            {
                let line = cx.line_of(&first.loc.addr);
                cx.warn(
                    &rs.loc.addr,
                    format!(
                        "this real server is already defined in this virtual server (line \
                         {line}): ignored with its block, as keepalived removes the second \
                         one; the first runs"
                    ),
                );
                continue;
            }
            rs.weight = rs.weight.or(Some(vs_weight));
            servers.push(rs);
            checks.real_servers.push(rc);
        }
    }
    if let Some(loc) = skip {
        cx.warn(
            &loc,
            "scheduler `conhash` (DPVS) is not one rvs (or IPVS) has: this virtual server is \
             skipped, as IPVS refuses to create it; the others run",
        );
        return None;
    }
    // keepalived check_parser.c vs_end_handler(): "Virtual server ... has no real servers -
    // ignoring".
    if servers.is_empty() && cx.error_count() == errors_before {
        cx.warn(
            &key_loc,
            "this virtual server has no real servers: it is dropped, as keepalived drops it",
        );
        return None;
    }
    // keepalived check_data.c validate_check_config(): a quorum above the real servers'
    // total weight is lowered to it, and a hysteresis not below the quorum to quorum - 1.
    let weight_sum: u64 = servers
        .iter()
        .map(|r| u64::from(r.weight.unwrap_or(1)))
        .sum();
    if u64::from(checks.quorum) > weight_sum {
        let total = weight_sum as u32;
        cx.warn(
            quorum_loc.as_ref().unwrap_or(&key_loc),
            format!(
                "quorum {} exceeds the real servers' total weight {total}: lowered to {total}, as \
                 keepalived lowers it",
                checks.quorum
            ),
        );
        checks.quorum = total;
    }
    if checks.hysteresis >= checks.quorum && checks.hysteresis > 0 {
        let h = checks.quorum.saturating_sub(1);
        cx.warn(
            quorum_loc.as_ref().unwrap_or(&key_loc),
            format!(
                "hysteresis {} is not below the quorum {}: set to {h}, as keepalived sets it",
                checks.hysteresis, checks.quorum
            ),
        );
        checks.hysteresis = h;
    }
    if let Some((addr, port)) = sorry {
        checks.sorry_server = Some(SorryServer {
            addr,
            port,
            method: sorry_method.unwrap_or(method),
            inhibit: sorry_inhibit,
        });
    } else if sorry_method.is_some() || sorry_inhibit {
        cx.warn(
            &key_loc,
            "sorry server options without `sorry_server`; ignored",
        );
    }

    let target = target?;
    // keepalived check_data.c validate_check_config(): "zero port only valid for persistent
    // services - setting" persistence to 360 s.
    let zero_port = match &target {
        VirtualTarget::Addr { port, .. } => *port == 0,
        VirtualTarget::Group(name) => groups.get(name).is_some_and(|g| {
            g.members
                .iter()
                .any(|(m, _)| matches!(m, Member::Addrs(_, 0)))
        }),
        VirtualTarget::Fwmark(_) => false,
    };
    if zero_port && timeout.is_none() && granularity.is_none() {
        cx.warn(
            &key_loc,
            format!(
                "a virtual server with port 0 (all ports) needs persistence: \
                 `persistence_timeout {}` is set, as keepalived sets it",
                Persistence::DEFAULT_TIMEOUT
            ),
        );
        timeout = Some((Persistence::DEFAULT_TIMEOUT, key_loc.clone()));
    }
    // keepalived check_data.c validate_check_config (2.0.0 to 2.2.8): a virtual server named
    // by address (or by a group with address members) and no protocol "no protocol set -
    // defaulting to UDP" ("If the protocol is 0, the kernel defaults to UDP, so set it
    // explicitly"). A firewall-mark service has no protocol.
    let by_address = match &target {
        VirtualTarget::Addr { .. } => true,
        VirtualTarget::Fwmark(_) => false,
        VirtualTarget::Group(name) => groups.get(name).is_some_and(|g| {
            g.members
                .iter()
                .any(|(m, _)| matches!(m, Member::Addrs(..)))
        }),
    };
    if by_address && !protocol_set {
        cx.warn(
            &key_loc,
            "no `protocol`: keepalived makes this virtual server UDP (\"no protocol set - \
             defaulting to UDP\"), and so does rvs; add `protocol TCP` if you meant TCP",
        );
    }
    // Which family a fwmark service takes: `ip_family`, else its first real server that is
    // not tunnelled, else IPv4 (keepalived's rule).
    let fw_family = family.as_ref().map(|(f, _)| *f).unwrap_or_else(|| {
        servers
            .iter()
            .find(|r| !matches!(r.method.unwrap_or(method), ForwardMethod::Tunnel { .. }))
            .map_or(Family::V4, |r| Family::of(&r.addr))
    });
    let keys: Vec<(ServiceKey, Loc)> = match &target {
        VirtualTarget::Addr { addr, port } => {
            if let Some((f, floc)) = &family
                && *f != Family::of(addr)
            {
                cx.error(
                    floc,
                    "`ip_family` contradicts the virtual server's address",
                    Some("the family of the virtual address".to_string()),
                );
            }
            vec![(
                ServiceKey::Addr {
                    protocol,
                    addr: *addr,
                    port: *port,
                },
                key_loc.clone(),
            )]
        }
        // The marks come from the director's iptables/nftables MARK rules, read by the
        // daemon, which warns when nothing gives a service's mark (`fwmark_places`).
        VirtualTarget::Fwmark(mark) => {
            vec![(
                ServiceKey::Fwmark {
                    mark: *mark,
                    family: fw_family,
                },
                key_loc.clone(),
            )]
        }
        VirtualTarget::Group(name) => match groups.get_mut(name) {
            // keepalived ipwrapper.c link_vsg_to_vs(): "Virtual server group %s specified but
            // not configured - ignoring virtual server %s", and the virtual server is freed.
            None => {
                cx.warn(
                    &args[1].loc,
                    format!(
                        "no virtual_server_group named `{name}`: this virtual server is skipped \
                         with its block, as keepalived skips it; the others run"
                    ),
                );
                return None;
            }
            Some(g) => {
                g.used = true;
                let mut v = Vec::new();
                for (m, mloc) in g.members.clone() {
                    match m {
                        Member::Addrs(addrs, port) => {
                            for addr in addrs {
                                v.push((
                                    ServiceKey::Addr {
                                        protocol,
                                        addr,
                                        port,
                                    },
                                    mloc.clone(),
                                ));
                            }
                        }
                        Member::Fwmark(mark, fam) => v.push((
                            ServiceKey::Fwmark {
                                mark,
                                family: fam.unwrap_or(fw_family),
                            },
                            mloc.clone(),
                        )),
                    }
                }
                v
            }
        },
    };

    if cx.error_count() != errors_before {
        return None;
    }

    let _ = header_end;
    let mut services = Vec::new();
    let mut svc_locs = Vec::new();
    for (key, kloc) in keys {
        let svc_family = key.family();
        let persistence = match (&timeout, &granularity) {
            (None, None) => None,
            (t, g) => {
                let prefix = match g {
                    None => svc_family.max_prefix(),
                    Some((text, gloc)) => granularity_prefix(cx, text, gloc, svc_family)?,
                };
                Some(Persistence {
                    timeout: t.as_ref().map_or(Persistence::DEFAULT_TIMEOUT, |(n, _)| *n),
                    prefix,
                })
            }
        };
        let svc_port = match key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        let mut svc = VirtualServiceConfig::new(key);
        svc.scheduler = scheduler.0;
        svc.flags = SchedFlags(bits);
        svc.persistence = persistence;
        // keepalived check_data.c dump_vs(): "One packet scheduling = enabled (inactive due
        // to not UDP)"; the kernel applies it to UDP packets only (ip_vs_core.c
        // ip_vs_schedule(): `svc->flags & IP_VS_SVC_F_ONEPACKET && iph->protocol ==
        // IPPROTO_UDP`). A TCP or SCTP service with `ops` runs without it.
        svc.one_packet = match (&ops, key) {
            (Some(l), ServiceKey::Addr { protocol, .. }) if protocol != Protocol::Udp => {
                cx.warn(
                    l,
                    format!(
                        "`ops` on a {protocol} virtual server: one-packet scheduling is for UDP \
                         only, so it is inactive here, as keepalived leaves it"
                    ),
                );
                false
            }
            (o, _) => o.is_some(),
        };
        let mut rs_locs = Vec::new();
        for r in &servers {
            svc.real_servers.push(RealServerConfig {
                addr: r.addr,
                port: r.port.unwrap_or(svc_port),
                weight: r.weight.unwrap_or(1),
                u_threshold: r.u_threshold,
                l_threshold: r.l_threshold,
                method: r.method.unwrap_or(method),
            });
            rs_locs.push(r.loc.clone());
        }
        services.push(svc);
        svc_locs.push(SvcLoc {
            key: kloc,
            ops: ops.clone().unwrap_or_else(|| key_loc.clone()),
            persistence: timeout
                .as_ref()
                .map(|(_, l)| l.clone())
                .or_else(|| granularity.as_ref().map(|(_, l)| l.clone()))
                .unwrap_or_else(|| key_loc.clone()),
            sched: scheduler.1.clone(),
            servers: rs_locs,
        });
    }
    Some(VsOut {
        services,
        svc_locs,
        checks,
        laddr_group,
        syn_proxy,
    })
}

/// `persistence_granularity`: a dotted netmask (IPv4) or a prefix length (IPv6).
fn granularity_prefix(cx: &mut Ctx, text: &str, loc: &Loc, family: Family) -> Option<u8> {
    if family == Family::V6 || !text.contains('.') {
        return match text.parse::<u8>() {
            Ok(n) if n >= 1 && n <= family.max_prefix() => Some(n),
            _ => {
                cx.error(
                    loc,
                    format!("`{text}` is not a valid persistence granularity"),
                    Some(format!(
                        "a prefix length in 1..={} (or a dotted netmask for IPv4)",
                        family.max_prefix()
                    )),
                );
                None
            }
        };
    }
    match text.parse::<Ipv4Addr>() {
        Ok(m) => {
            let bits = u32::from(m);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) == 0 {
                Some(len as u8)
            } else {
                cx.error(
                    loc,
                    format!(
                        "`{text}` is not a netmask rvs can use: its one bits are not contiguous"
                    ),
                    Some("a netmask such as `255.255.255.0`".to_string()),
                );
                None
            }
        }
        Err(_) => {
            cx.error(
                loc,
                format!("`{text}` is not a netmask"),
                Some("a dotted netmask such as `255.255.255.0`".to_string()),
            );
            None
        }
    }
}

/// `lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
/// A method as keepalived.conf writes it.
fn method_name(m: ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Masq => "NAT",
        ForwardMethod::DirectRoute => "DR",
        ForwardMethod::Tunnel { .. } => "TUN",
        ForwardMethod::FullNat => "FNAT",
    }
}

/// `lvs_method NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`, and DPVS's
/// `FNAT` (FullNAT). An unknown method is warned and None: keepalived
/// (check_parser.c svr_forwarding_handler(): "unknown [%s] routing method") leaves the
/// method as it was (`keeps`), NAT by default.
pub(crate) fn forwarding(cx: &mut Ctx, s: &Stmt, keeps: &str) -> Option<ForwardMethod> {
    let args = s.args();
    let Some(m) = args.first() else {
        cx.error(
            &s.key().loc.after(),
            format!("`{}` needs a forwarding method", s.key().text),
            Some("`NAT`, `DR` or `TUN`".to_string()),
        );
        return None;
    };
    let base = match m.text.as_str() {
        "NAT" => ForwardMethod::Masq,
        "DR" => ForwardMethod::DirectRoute,
        "TUN" => ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        },
        // DPVS's keepalived (tools/keepalived/keepalived/check/check_parser.c
        // svr_forwarding_handler()): `FNAT` is FullNAT.
        "FNAT" => ForwardMethod::FullNat,
        _ => {
            let upper = m.text.to_ascii_uppercase();
            let hint = if ["NAT", "DR", "TUN", "FNAT"].contains(&upper.as_str()) {
                format!(" (`{upper}` is; methods are upper case)")
            } else {
                String::new()
            };
            cx.warn(
                &m.loc,
                format!(
                    "UNKNOWN FORWARDING METHOD `{}`: not `NAT`, `DR` or `TUN`{hint}; keepalived \
                     ignores it and so does rvs, so this forwards by {keeps} - check that is \
                     what you meant",
                    m.text
                ),
            );
            return None;
        }
    };
    if args.len() == 1 {
        return Some(base);
    }
    if !matches!(base, ForwardMethod::Tunnel { .. }) {
        // keepalived reads the method, then refuses the first word after it ("Invalid
        // tunnel option") and stops: the method stands.
        cx.warn(
            &args[1].loc.to(&args[args.len() - 1].loc),
            format!(
                "`{}` takes no options: the words after it are ignored, as keepalived ignores \
                 them",
                m.text
            ),
        );
        return Some(base);
    }
    // keepalived check_parser.c svr_forwarding_handler(): the method is set to TUN first;
    // at the first bad tunnel option (a missing or unknown type, a missing or bad port, an
    // unknown word, a port without GUE or GUE without one, a checksum option IPIP or GRE
    // cannot have) it logs and returns, so none of the line's tunnel options apply: the
    // tunnel keeps its defaults, IPIP without checksum.
    let plain = ForwardMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    let bad = |cx: &mut Ctx, loc: &Loc, what: String| {
        cx.warn(
            loc,
            format!(
                "{what}: the tunnel options on this line are ignored, as keepalived ignores \
                 them; this is a plain IPIP tunnel"
            ),
        );
        Some(plain)
    };
    let mut kind = (0u8, m.loc.clone()); // 0 ipip, 1 gue, 2 gre
    let mut port: Option<(u16, Loc)> = None;
    let mut csum = (TunnelCsum::NoCsum, m.loc.clone());
    let mut i = 1;
    while i < args.len() {
        let w = &args[i];
        match w.text.as_str() {
            "type" => {
                let Some(t) = args.get(i + 1) else {
                    return bad(
                        cx,
                        &w.loc.after(),
                        "`type` needs a tunnel type (`ipip`, `gue` or `gre`)".to_string(),
                    );
                };
                kind = match t.text.as_str() {
                    "ipip" => (0, t.loc.clone()),
                    "gue" => (1, t.loc.clone()),
                    "gre" => (2, t.loc.clone()),
                    _ => {
                        return bad(
                            cx,
                            &t.loc,
                            format!("unknown tunnel type `{}` (`ipip`, `gue` or `gre`)", t.text),
                        );
                    }
                };
                i += 2;
            }
            "port" => {
                let Some(p) = args.get(i + 1) else {
                    return bad(cx, &w.loc.after(), "`port` needs a GUE port".to_string());
                };
                match p.text.parse::<u16>() {
                    Ok(n) if n != 0 => port = Some((n, p.loc.clone())),
                    _ => {
                        return bad(
                            cx,
                            &p.loc,
                            format!("`{}` is not a GUE port in 1..=65535", p.text),
                        );
                    }
                }
                i += 2;
            }
            "nocsum" => {
                csum = (TunnelCsum::NoCsum, w.loc.clone());
                i += 1;
            }
            "csum" => {
                csum = (TunnelCsum::Csum, w.loc.clone());
                i += 1;
            }
            "remcsum" => {
                csum = (TunnelCsum::RemCsum, w.loc.clone());
                i += 1;
            }
            _ => {
                return bad(
                    cx,
                    &w.loc,
                    format!(
                        "unknown tunnel option `{}` (`type ipip|gue|gre`, `port N`, `nocsum`, \
                         `csum` or `remcsum`)",
                        w.text
                    ),
                );
            }
        }
    }
    let kind = match (kind.0, port) {
        (1, Some((p, _))) => TunnelKind::Gue { port: p },
        (1, None) => {
            return bad(cx, &kind.1, "a GUE tunnel needs a `port`".to_string());
        }
        (_, Some((_, ploc))) => {
            return bad(cx, &ploc, "only GUE tunnels take a port".to_string());
        }
        (0, None) => TunnelKind::Ipip,
        _ => TunnelKind::Gre,
    };
    match (kind, csum.0) {
        (TunnelKind::Ipip, TunnelCsum::Csum | TunnelCsum::RemCsum) => bad(
            cx,
            &csum.1,
            "IPIP tunnels have no checksum option".to_string(),
        ),
        (TunnelKind::Gre, TunnelCsum::RemCsum) => bad(
            cx,
            &csum.1,
            "GRE tunnels do not support remote checksum offload".to_string(),
        ),
        (kind, csum) => Some(ForwardMethod::Tunnel { kind, csum }),
    }
}

/// A notify script (`notify_up`, `notify_down`, `quorum_up`, `quorum_down`, and a VRRP
/// instance's or sync group's `notify*`). keepalived lib/notify.c notify_script_init()
/// re-reads the line with lib/parser.c alloc_strvec_quoted_escaped(): when an unterminated
/// string took the script, that gives nothing ("missing terminating", "Unable to parse
/// notify script") and no script is set — warned and ignored; a line with no script at all
/// makes it read a missing word ("is missing a parameter") and keepalived exits — refused.
pub(crate) fn notify_script(cx: &mut Ctx, st: &Stmt) -> Option<crate::script::Script> {
    if st.args().is_empty() && st.key().cut {
        cx.warn(
            &st.key().loc,
            format!(
                "`{}` has no script: ignored, as keepalived ignores it",
                st.key().text
            ),
        );
        return None;
    }
    if st.args().is_empty() {
        cx.error(
            &st.key().loc.after(),
            format!(
                "`{}` needs a script: keepalived stops at this line (\"is missing a \
                 parameter\")",
                st.key().text
            ),
            Some("a script".to_string()),
        );
        return None;
    }
    // lib/notify.c notify_script_init(): the first word is the script (quote it to give it
    // arguments), the next two the user and group to run it as; further words are unread.
    let args = st.args();
    if let Some(extra) = args.get(3) {
        cx.warn(
            &extra.loc,
            format!(
                "`{}` takes a script, a user and a group: `{}` and what follows are ignored, \
                 as keepalived ignores them (quote the script to give it arguments)",
                st.key().text,
                extra.text
            ),
        );
    }
    let user: Vec<&str> = args
        .iter()
        .skip(1)
        .take(2)
        .map(|w| w.text.as_str())
        .collect();
    Some(crate::script::Script {
        command: args[0].text.clone(),
        user: (!user.is_empty()).then(|| user.join(" ")),
    })
}

/// A checker's notify or quorum script: as [`notify_script`]; a user named after it
/// (`USER [GROUP]`) is the one it runs as, as for a VRRP instance's notify scripts
/// (keepalived check_parser.c reads all of them through lib/notify.c
/// `notify_script_init()`, which takes the user and group words).
fn checker_script(cx: &mut Ctx, st: &Stmt) -> Option<rvs_core::health::Notify> {
    let s = notify_script(cx, st)?;
    Some(rvs_core::health::Notify {
        command: s.command,
        user: s.user,
    })
}

/// A virtual-server flag (`alpha`, `omega`, `inhibit_on_failure`): on,
/// whatever follows; a value is warned, since `alpha 0` does not mean off.
fn vs_flag(cx: &mut Ctx, st: &Stmt) -> bool {
    if let Some(w) = st.args().first() {
        cx.warn(
            &w.loc,
            format!(
                "`{}` takes no value in a virtual server: keepalived turns it on whatever \
                 follows, so `{}` is ignored and it is on",
                st.key().text,
                w.text
            ),
        );
    }
    true
}

/// keepalived lib/parser.c check_true_false(): `true|on|yes`, `false|off|no` (lower case);
/// no value is true; anything else is warned and None (the caller keeps `inherited`).
fn rs_flag(cx: &mut Ctx, st: &Stmt, inherited: bool) -> Option<bool> {
    let Some(w) = st.args().first() else {
        return Some(true);
    };
    match w.text.as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => {
            cx.warn(
                &w.loc,
                format!(
                    "`{}` is not a boolean (`true`, `on`, `yes`, `false`, `off`, `no`): ignored, \
                     as keepalived ignores it; this real server keeps the virtual server's `{}` \
                     ({})",
                    w.text,
                    st.key().text,
                    if inherited { "on" } else { "off" }
                ),
            );
            None
        }
    }
}

fn real_server(
    cx: &mut Ctx,
    s: &Stmt,
    vs_timers: &check::Timers,
    vs: &VirtualServerChecks,
) -> Option<(Rs, RealServerChecks)> {
    let errors_before = cx.error_count();
    let args = s.args();
    // keepalived check_data.c alloc_rs(): `IP [PORT]` read as the virtual server's address
    // is; a real server it cannot read is skipped with its block.
    let (addr, port) = match args {
        [] => {
            cx.error(
                &s.key().loc.after(),
                "`real_server` needs an address",
                Some("`real_server IP [PORT] {`".to_string()),
            );
            (None, None)
        }
        words => {
            let (a, p) = addr_port(cx, "real server", words)?;
            (Some(a), Some((p != 0).then_some(p)))
        }
    };
    let addr_loc = if args.is_empty() {
        s.key().loc.clone()
    } else {
        args[0].loc.to(&args[args.len() - 1].loc)
    };
    let mut rs = Rs {
        addr: addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port: port.flatten(),
        weight: None,
        u_threshold: 0,
        l_threshold: 0,
        method: None,
        loc: RsLoc {
            addr: addr_loc.clone(),
            weight: addr_loc.clone(),
            thresholds: addr_loc.clone(),
        },
    };
    let mut rc = RealServerChecks {
        addr: rs.addr,
        port: rs.port,
        inhibit_on_failure: vs.inhibit_on_failure,
        alpha: vs.alpha,
        notify_up: None,
        notify_down: None,
        virtualhost: None,
        checkers: Vec::new(),
    };
    let mut timers = vs_timers.clone();
    let mut delay_loop = vs.delay_loop;
    let mut checker_stmts = Vec::new();
    let mut seen = HashMap::new();
    let body: &[Stmt] = match &s.block {
        Some(b) => &b.body,
        // keepalived accepts `real_server IP PORT` without a block.
        None => &[],
    };
    for st in body {
        let Some(u) = cx.check_key(Scope::RealServer, st) else {
            continue;
        };
        if u == Use::Kept {
            checker_stmts.push(st);
            continue;
        }
        cx.no_block(st);
        cx.warn_duplicate(&mut seen, st);
        match st.key().text.as_str() {
            "weight" => {
                if let Some(w) = cx.one(st, "a weight") {
                    // keepalived check_parser.c rs_weight_handler(): 0..=INT_MAX
                    // (IPVS_WEIGHT_LIMIT); anything else (not a number, negative, `5x`, above
                    // INT_MAX) is logged "Real server weight ... is outside range" and the
                    // weight stays the default (the virtual server's `weight`, 1).
                    let max = RealServerConfig::MAX_WEIGHT;
                    match w.text.parse::<u64>() {
                        Ok(n) if n <= u64::from(max) => {
                            rs.weight = Some(n as u32);
                            rs.loc.weight = w.loc.clone();
                        }
                        Ok(n) if n <= i32::MAX as u64 => {
                            cx.warn(
                                &w.loc,
                                format!(
                                    "weight {n} is above {max}, the largest rvs (and ipvsadm) \
                                     takes: {max} is used (keepalived passes it to IPVS as is)"
                                ),
                            );
                            rs.weight = Some(max);
                            rs.loc.weight = w.loc.clone();
                        }
                        _ => cx.warn(
                            &w.loc,
                            format!(
                                "weight `{}` is not a number in 0..=2147483647: ignored, as \
                                 keepalived ignores it (the default weight applies)",
                                w.text
                            ),
                        ),
                    }
                }
            }
            "lvs_method" => {
                if let Some(m) = forwarding(cx, st, "the virtual server's method") {
                    rs.method = Some(m);
                }
            }
            "uthreshold" => {
                if let Some(n) = cx.u32_of(st, u32::MAX) {
                    rs.u_threshold = n;
                    rs.loc.thresholds = st.args()[0].loc.clone();
                }
            }
            "lthreshold" => {
                if let Some(n) = cx.u32_of(st, u32::MAX) {
                    rs.l_threshold = n;
                    rs.loc.thresholds = st.args()[0].loc.clone();
                }
            }
            // keepalived check_parser.c rs_inhibit_handler(), rs_alpha_handler(): a value
            // that check_true_false() does not know is logged and the real server keeps
            // the virtual server's setting.
            "inhibit_on_failure" => {
                if let Some(b) = rs_flag(cx, st, vs.inhibit_on_failure) {
                    rc.inhibit_on_failure = b;
                }
            }
            "alpha" => {
                if let Some(b) = rs_flag(cx, st, vs.alpha) {
                    rc.alpha = b;
                }
            }
            "notify_up" => rc.notify_up = checker_script(cx, st),
            "notify_down" => rc.notify_down = checker_script(cx, st),
            // check_parser.c rs_virtualhost_handler(): "real server virtualhost missing".
            "virtualhost" if cx.no_value_ignored(st) => {}
            "virtualhost" => rc.virtualhost = cx.string(st, "a host name"),
            "delay_loop" => {
                // keepalived check_parser.c rs_delay_handler(): as the virtual server's.
                if let Some(t) = check::lenient_timer(cx, st) {
                    delay_loop = t.max(Duration::from_secs(1));
                }
            }
            "connect_timeout" | "retry" | "delay_before_retry" | "warmup" => timers.read(cx, st),
            _ => {}
        }
    }
    for st in checker_stmts {
        if let Some(c) = check::checker(cx, st, &timers, delay_loop, rc.alpha) {
            rc.checkers.push(c);
        }
    }
    if cx.error_count() != errors_before {
        return None;
    }
    Some((rs, rc))
}

/// Report `Config::validate`'s errors at the place each blames (see [`locate`]).
fn locate_validate_errors(cx: &mut Ctx, config: &Config, locs: &[SvcLoc], errs: &[ConfigError]) {
    for l in locate::locate(config, errs) {
        let expected = match l.error {
            ConfigError::DuplicateService(_) => {
                "one virtual_server per protocol, address and port (or firewall mark), groups included"
            }
            ConfigError::DuplicateRealServer { .. } => {
                "each real server address and port once per virtual_server"
            }
            ConfigError::ThresholdOrder { .. } => "`lthreshold` at most `uthreshold`",
            ConfigError::ZeroPortNonPersistent(_) => "a non-zero port, or `persistence_timeout`",
            ConfigError::OnePacketTcp(_) => "`protocol UDP`, or no `ops`",
            ConfigError::PersistencePrefix(_) => "a granularity of the service's address family",
            ConfigError::FamilyMismatch { .. } => {
                "an address of the virtual server's family (only `lvs_method TUN` may cross)"
            }
            ConfigError::NoLocalPool(_) => {
                "`laddr_group_name` naming a `local_address_group` with an address of this \
                 family (DPVS's keepalived)"
            }
            ConfigError::SynProxyMethod { .. } => "`lb_kind NAT` or `FNAT`, or no `syn_proxy`",
            _ => l.expected,
        };
        cx.error(
            &place(locs, l.target),
            l.message,
            Some(expected.to_string()),
        );
    }
}

/// The location of a [`Target`]. A service's port and firewall mark are part of its key, its
/// persistence is one place, and a real server's method blames its address.
fn place(locs: &[SvcLoc], target: Target) -> Loc {
    match target {
        Target::Service { svc, part } => locs.get(svc).map_or_else(Loc::default, |l| {
            match part {
                ServicePart::Key | ServicePart::Fwmark | ServicePart::Port => &l.key,
                ServicePart::OnePacket => &l.ops,
                ServicePart::PersistenceTimeout | ServicePart::PersistencePrefix => &l.persistence,
                ServicePart::MhTableSize => &l.sched,
            }
            .clone()
        }),
        Target::RealServer { svc, rs, part } => locs
            .get(svc)
            .and_then(|l| l.servers.get(rs))
            .map_or_else(Loc::default, |l| {
                match part {
                    RealServerPart::Addr | RealServerPart::Method => &l.addr,
                    RealServerPart::Weight => &l.weight,
                    RealServerPart::Thresholds => &l.thresholds,
                }
                .clone()
            }),
        Target::FwmarkRule(_) | Target::Unplaced => Loc::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_distances() {
        assert_eq!(osa_distance("lb_algo", "lb_alog"), 1);
        assert!(is_typo("lb_algo", "lb_alog"));
        assert!(is_typo("weight", "wieght"));
        assert!(!is_typo("weight", "height2"));
        assert!(!is_typo("ops", "opz"));
        assert!(is_typo("static_routes", "static_route"));
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_seconds("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds(".25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_seconds("1.0000001"), None);
        assert_eq!(parse_seconds("x"), None);
        assert_eq!(parse_seconds("."), None);
    }
}
