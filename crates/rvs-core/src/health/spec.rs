//! The health-monitoring configuration model: what to check on each real server, how often,
//! and what to do with the answers. Every format maps to it: lvs.cf's nanny keys (`send`,
//! `expect`, `send_program`, `timeout`, `reentry`, `quiesce_server`, `load_monitor`),
//! keepalived's checkers and `virtual_server` keys (quorum, sorry server, alpha/omega,
//! `inhibit_on_failure`), and the native TOML.
//!
//! This is data only; the state machines that act on it are in [`crate::health`], the
//! checkers that perform the I/O are in the daemon.

use core::time::Duration;
use std::net::IpAddr;

use crate::model::{ForwardMethod, ServiceKey};

/// Health monitoring of every virtual service that has any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthConfig {
    /// One entry per monitored virtual service; services without one are not monitored
    /// (their real servers keep their configured weights).
    pub services: Vec<ServiceHealth>,
}

/// Health monitoring of one virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    /// The virtual service (must be in the forwarding configuration).
    pub service: ServiceKey,
    /// keepalived `quorum` [1]: the sum of the weights of the live real servers needed for
    /// the service to be up. While it is down, the sorry server (if any) is in.
    pub quorum: u32,
    /// keepalived `hysteresis` [0]: quorum goes up at `>= quorum + hysteresis`, down at
    /// `< quorum - hysteresis`.
    pub hysteresis: u32,
    /// `quorum_up`: command run when the quorum is gained.
    pub quorum_up: Option<Notify>,
    /// `quorum_down`: command run when the quorum is lost.
    pub quorum_down: Option<Notify>,
    /// `omega`: run `quorum_down` (and `notify_down` of live servers) at shutdown.
    pub omega: bool,
    /// The sorry server: put in while no real server is up (lvs.cf `sorry_server`,
    /// keepalived `sorry_server`).
    pub sorry_server: Option<SorryServer>,
    /// The monitored real servers.
    pub real_servers: Vec<RealServerHealth>,
}

/// A checker's notify or quorum script (`notify_up`, `notify_down`, `quorum_up`,
/// `quorum_down`): its command line, and the user it runs as when one is named
/// (keepalived `notify_up "CMD" USER [GROUP]`, check_parser.c via `set_script_params_array()`;
/// without one, the default script user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The command line, as written.
    pub command: String,
    /// `USER [GROUP]`, if given.
    pub user: Option<String>,
}

impl From<&str> for Notify {
    fn from(command: &str) -> Notify {
        Notify {
            command: command.to_string(),
            user: None,
        }
    }
}

impl From<String> for Notify {
    fn from(command: String) -> Notify {
        Notify {
            command,
            user: None,
        }
    }
}

/// A sorry server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SorryServer {
    /// Address.
    pub addr: IpAddr,
    /// Port (the service's when the format gives none; 0 for fwmark services).
    pub port: u16,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// `sorry_server_inhibit`: keep it in the table at weight 0 while real servers are up,
    /// instead of removing it.
    pub inhibit: bool,
}

/// What happens to a real server that fails its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Removed from the service (keepalived's default; nanny without `quiesce_server`).
    /// Its connections follow `expire_nodest_conn`.
    #[default]
    Remove,
    /// Quiesced: weight 0, so no new connections, established ones finish
    /// (`inhibit_on_failure`, `quiesce_server`).
    Quiesce,
}

/// Health monitoring of one real server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerHealth {
    /// The real server's address (with `port`, the key of its `RealServerConfig`).
    pub addr: IpAddr,
    /// The real server's port.
    pub port: u16,
    /// Remove or quiesce on failure.
    pub on_failure: OnFailure,
    /// `alpha`: starts down until a check succeeds (otherwise it starts up). The first good
    /// round admits it; `rise` counts only after a failure (nanny's admission; keepalived
    /// has no `rise`). lvs.cf servers are always alpha, as nanny adds a server to the table
    /// only after its first successful check.
    pub alpha: bool,
    /// Consecutive successful check rounds needed to come back up [1]. nanny: `reentry /
    /// timeout`.
    pub rise: u32,
    /// Consecutive failed check rounds (each with its retries) needed to go down [1].
    pub fall: u32,
    /// nanny's slow start on (re-)admission: the weight starts at `weight >> 5` (at least 1)
    /// and doubles every `slow_start` period until it reaches the configured weight. `None`:
    /// admitted at full weight.
    pub slow_start: Option<Duration>,
    /// `notify_up`: command run when the server comes up.
    pub notify_up: Option<Notify>,
    /// `notify_down`: command run when it goes down.
    pub notify_down: Option<Notify>,
    /// nanny's `load_monitor`: weight follows the real server's load.
    pub load_monitor: Option<LoadMonitor>,
    /// The checks; the server is up while every one of them is up. None at all: always up.
    pub checks: Vec<CheckSpec>,
}

/// Weight feedback from the real server's load average (nanny's `load_monitor`; rvs reads
/// the load from `rvs realserver agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadMonitor {
    /// How often to read the load [20 s].
    pub interval: Duration,
    /// Where the agent listens (UDP) on the real server [the real server's address].
    pub agent: Option<(IpAddr, u16)>,
    /// The weight may rise to `scale × weight` on an idle server.
    pub scale: u32,
}

impl LoadMonitor {
    /// The agent's default UDP port.
    pub const AGENT_PORT: u16 = 5391;
}

/// Where a check connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckTarget {
    /// `connect_ip` [the real server's address].
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` [the real server's port; for fwmark services the virtual's port].
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port.
    pub bind_port: Option<u16>,
    /// `fwmark`: SO_MARK of the check's socket.
    pub fwmark: Option<u32>,
    /// rvs: for DR and TUN services, send the check to the VIP through the forwarding path
    /// to this real server (proving it answers for the VIP), not to its own address.
    pub via_vip: bool,
}

/// Timers of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckTimers {
    /// Time between check rounds (keepalived `delay_loop`, nanny `timeout`).
    pub interval: Duration,
    /// Time allowed for the connection and the whole exchange (`connect_timeout`).
    pub timeout: Duration,
    /// Retries within a round before the round fails (`retry`; nanny 0).
    pub retry: u32,
    /// Time between retries (`delay_before_retry`).
    pub delay_before_retry: Duration,
    /// `warmup`: the first check waits a random time up to this.
    pub warmup: Duration,
}

impl Default for CheckTimers {
    fn default() -> Self {
        CheckTimers {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            warmup: Duration::ZERO,
        }
    }
}

/// One check of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// What it does.
    pub kind: CheckKind,
    /// Where it connects.
    pub target: CheckTarget,
    /// When.
    pub timers: CheckTimers,
}

/// What a reply must look like (nanny's `expect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `*`: any reply, even an empty one, as long as the connection succeeded.
    Any,
    /// The reply starts with these bytes.
    Prefix(Vec<u8>),
    /// `use_regex = 1`: the reply matches this regular expression (POSIX extended in nanny;
    /// rvs uses the `regex` crate's syntax, which agrees on the common subset).
    Regex(String),
}

/// An HTTP_GET / SSL_GET `url` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlCheck {
    /// `path`.
    pub path: String,
    /// `digest`: MD5 of the body, lower-case hex.
    pub digest: Option<String>,
    /// `status_code`: inclusive ranges; [200-299] when empty.
    pub status_codes: Vec<(u16, u16)>,
    /// `virtualhost` for this URL (overrides the checker's).
    pub virtualhost: Option<String>,
    /// `regex`: the body must match (or, with `regex_no_match`, must not).
    pub regex: Option<String>,
    /// `regex_no_match`.
    pub regex_no_match: bool,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP_CHECK: the connection is accepted.
    Tcp,
    /// nanny's send/expect over TCP (or UDP for UDP services): send `send` (may be empty:
    /// connect, then read), read one reply, compare with `expect` (None: connecting is
    /// enough).
    SendExpect {
        /// Bytes to send, escapes resolved.
        send: Vec<u8>,
        /// What the reply must be.
        expect: Option<Expect>,
        /// Use UDP rather than TCP.
        udp: bool,
    },
    /// nanny's `send_program`: run it (`%h` → address, `%p` → port) through `/bin/sh -c`;
    /// the output must equal `expect` (trailing newline ignored), or with no `expect` the
    /// exit status must be 0.
    Program {
        /// The command line, with `%h` and `%p` still in it.
        command: String,
        /// The expected output.
        expect: Option<String>,
    },
    /// HTTP_GET (`tls: false`) or SSL_GET (`tls: true`).
    Http {
        /// SSL_GET.
        tls: bool,
        /// The URLs; all must pass.
        urls: Vec<UrlCheck>,
        /// `virtualhost`: the Host header (and SNI name) [the target address].
        virtualhost: Option<String>,
        /// `http_protocol 1.1` (otherwise HTTP/1.0; keepalived's default 1.0).
        http_1_1: bool,
        /// `enable_sni` (SSL_GET).
        sni: bool,
    },
    /// MISC_CHECK: run `path` (cut into words, without a shell, as keepalived runs it); exit
    /// 0 = up, 1 = down; with `dynamic`, 2..=255 = up with weight `exit - 2`.
    Misc {
        /// The command line.
        path: String,
        /// `user USER [GROUP]` to run it as \[keepalived's `script_user`\].
        user: Option<String>,
        /// `misc_timeout` [the check's timeout]: the program is killed after it.
        timeout: Option<Duration>,
        /// `misc_dynamic`.
        dynamic: bool,
    },
    /// UDP_CHECK: send `payload`; with `require_reply`, a reply starting with those bytes (and
    /// within the length bounds) must come back; without, an ICMP port unreachable fails it.
    Udp {
        /// Payload [empty].
        payload: Vec<u8>,
        /// The reply's expected prefix.
        require_reply: Option<Vec<u8>>,
        /// Reply length bounds.
        min_reply_len: Option<u32>,
        /// Reply length bounds.
        max_reply_len: Option<u32>,
    },
    /// DNS_CHECK: a query over UDP must get an answer with RCODE NOERROR and the same id.
    Dns {
        /// Query type [SOA].
        qtype: DnsType,
        /// Query name ["."].
        name: String,
    },
    /// PING_CHECK: an ICMP(v6) echo request must get its reply.
    Ping,
}

/// DNS_CHECK query types (keepalived's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsType {
    /// A.
    A,
    /// NS.
    Ns,
    /// CNAME.
    Cname,
    /// SOA (keepalived's default).
    Soa,
    /// MX.
    Mx,
    /// TXT.
    Txt,
    /// AAAA.
    Aaaa,
}

impl DnsType {
    /// The type's number on the wire (RFC 1035, RFC 3596).
    pub fn number(self) -> u16 {
        match self {
            DnsType::A => 1,
            DnsType::Ns => 2,
            DnsType::Cname => 5,
            DnsType::Soa => 6,
            DnsType::Mx => 15,
            DnsType::Txt => 16,
            DnsType::Aaaa => 28,
        }
    }

    /// From keepalived's `type` keyword (case-insensitive).
    pub fn from_name(s: &str) -> Option<DnsType> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => DnsType::A,
            "NS" => DnsType::Ns,
            "CNAME" => DnsType::Cname,
            "SOA" => DnsType::Soa,
            "MX" => DnsType::Mx,
            "TXT" => DnsType::Txt,
            "AAAA" => DnsType::Aaaa,
            _ => return None,
        })
    }
}

/// The result of one check attempt, as the daemon's checkers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Up,
    /// The check passed and says which weight the server should have (MISC_CHECK with
    /// `misc_dynamic`: exit status − 2).
    UpWithWeight(u32),
    /// The check failed; the reason is for the log.
    Down(String),
}

/// A load report for `load_monitor`: the real server's 1-minute load average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadReport {
    /// The 1-minute load average.
    pub load1: f32,
}
