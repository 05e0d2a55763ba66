//! ipvsadm 1.31's command line: `parse_options()` and `process_options()` up to the
//! point where ipvsadm would call the kernel, with every `fail()` message and exit status.
//!
//! The checks run in ipvsadm's order, so a line with several problems reports the one
//! ipvsadm reports: popt errors while reading options, `--set`'s values, leftover words,
//! `-b` flags, `generic_opt_check()` against `commands_v_options`, the service checks of
//! `-A`/`-E`, the real-server and tunnel checks of `-a`/`-e`, the list conflicts. Only
//! then are the values mapped to the model; what the model cannot hold (an unknown
//! scheduler, a non-contiguous IPv4 persistence mask) is refused there.

use core::ops::Range;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_core::model::{
    ForwardMethod, LocalPool, Persistence, Protocol, RealServerConfig, SchedFlags, SchedulerKind,
    ServiceKey, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};

use super::libc::{atoi, inet_aton, string_to_number, strtol};
use super::names::{Names, service_proto};
use super::popt::{Popt, Tag};
use super::{Command, DaemonOptions, DaemonState, ListFormat, ListOptions, ListWhat, UsageError};

/// `MAX_TIMEOUT` (31 days): the largest persistence and `--set` timeout.
const MAX_TIMEOUT: i64 = 86400 * 31;
/// libipvs `IPVS_SVC_PERSISTENT_TIMEOUT`: `-p` without a value.
const DEF_PERSISTENT_TIMEOUT: u32 = 360;
/// `IP_VS_SCHEDNAME_MAXLEN - 1`: `strncpy()` keeps this many bytes of `-s`.
const SCHEDNAME_MAX: usize = 15;
/// `IP_VS_IFNAME_MAXLEN - 1`: bytes kept of `--mcast-interface`.
const IFNAME_MAX: usize = 15;
/// `IP_VS_PENAME_MAXLEN`: bytes kept of `--pe`.
const PENAME_MAX: usize = 16;

const PROTO_TCP: u16 = 6;
const PROTO_UDP: u16 = 17;
const PROTO_SCTP: u16 = 132;

/// ipvsadm's commands, in `CMD_*` order (the row of `commands_v_options`), plus rvs's
/// `--local-pool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    LocalPool,
}

impl Cmd {
    /// `cmdnames[]`.
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::LocalPool => "local-pool",
        }
    }

    /// This command's row of `commands_v_options` (ipvsadm.c 1.31): per option in `OPTC_*`
    /// order, `+` compulsory, `x` illegal, `1` exclusive, ` ` optional.
    fn row(self) -> &'static [u8; NUMBER_OF_OPT] {
        // The last column is DPVS's `synproxy` (its `commands_v_options`: optional for ADD
        // and EDIT, illegal elsewhere).
        //         -n -c svc -s -p -M -r fwd -w -x -y mc tot dmn st rt thr pc srt sid ex ops pe -b grp port ttl size tinf type tprt nocs csum remc syn
        match self {
            Cmd::Add | Cmd::Edit => b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx ",
            Cmd::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b" 11xxxxxxxxx11       xxxxxxx xxxxxx",
            Cmd::AddDest | Cmd::EditDest => b"xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
            Cmd::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx",
            Cmd::Save => b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Timeout | Cmd::Restore | Cmd::LocalPool => {
                b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            }
        }
    }
}

const NUMBER_OF_OPT: usize = 35;

/// `OPTC_*`: option indices, the columns of `commands_v_options`.
mod optc {
    pub(super) const NUMERIC: usize = 0;
    pub(super) const CONNECTION: usize = 1;
    pub(super) const SERVICE: usize = 2;
    pub(super) const SCHEDULER: usize = 3;
    pub(super) const PERSISTENT: usize = 4;
    pub(super) const NETMASK: usize = 5;
    pub(super) const SERVER: usize = 6;
    pub(super) const FORWARD: usize = 7;
    pub(super) const WEIGHT: usize = 8;
    pub(super) const UTHRESHOLD: usize = 9;
    pub(super) const LTHRESHOLD: usize = 10;
    pub(super) const MCAST: usize = 11;
    pub(super) const TIMEOUT: usize = 12;
    pub(super) const DAEMON: usize = 13;
    pub(super) const STATS: usize = 14;
    pub(super) const RATE: usize = 15;
    pub(super) const THRESHOLDS: usize = 16;
    pub(super) const PERSISTENTCONN: usize = 17;
    pub(super) const NOSORT: usize = 18;
    pub(super) const SYNCID: usize = 19;
    pub(super) const EXACT: usize = 20;
    pub(super) const ONEPACKET: usize = 21;
    pub(super) const PE: usize = 22;
    pub(super) const SCHED_FLAGS: usize = 23;
    pub(super) const MCAST_GROUP: usize = 24;
    pub(super) const MCAST_PORT: usize = 25;
    pub(super) const MCAST_TTL: usize = 26;
    pub(super) const SYNC_MAXLEN: usize = 27;
    pub(super) const TUN_INFO: usize = 28;
    pub(super) const TUN_TYPE: usize = 29;
    pub(super) const TUN_PORT: usize = 30;
    pub(super) const TUN_NOCSUM: usize = 31;
    pub(super) const TUN_CSUM: usize = 32;
    pub(super) const TUN_REMCSUM: usize = 33;
    /// DPVS's `OPT_SYNPROXY`.
    pub(super) const SYNPROXY: usize = 34;
}

/// `optnames[]`.
const OPTNAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "synproxy",
];

/// `tunnames[]` and `tunnel_types_v_options` (tun-port, nocsum, csum, remcsum) of 1.31.
const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUNOPTS: [usize; 4] = [
    optc::TUN_PORT,
    optc::TUN_NOCSUM,
    optc::TUN_CSUM,
    optc::TUN_REMCSUM,
];
const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fwd {
    Masq,
    Route,
    Tunnel,
    FullNat,
}

/// ipvsadm's `struct ipvs_command_entry` plus the option bits, as `process_options()`
/// initialises them.
struct Entry {
    cmd: Option<Cmd>,
    cmd_word: usize,
    options: u64,
    opt_word: [usize; NUMBER_OF_OPT],
    // ce.svc
    af6: Option<bool>,
    protocol: u16,
    addr: IpAddr,
    port: u16,
    fwmark: u32,
    sched_name: String,
    persistent: bool,
    timeout: u32,
    netmask: u32,
    one_packet: bool,
    /// DPVS's `IP_VS_SVC_F_SYNPROXY`.
    synproxy: bool,
    pe_name: Option<String>,
    sched_flags: u8,
    // ce.dest
    dest_af6: Option<bool>,
    dest_addr: Option<IpAddr>,
    dest_port: u16,
    fwd: Fwd,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: usize,
    tun_port: u16,
    tun_flags: u8,
    // ce.daemon / ce.timeout
    daemon_state: DaemonState,
    mcast_ifn: String,
    syncid: u8,
    sync_maxlen: Option<u16>,
    mcast_group: Option<IpAddr>,
    mcast_port: Option<u16>,
    mcast_ttl: Option<u8>,
    timeouts: Timeouts,
    local_pool: LocalPool,
    format: ListFormat,
    /// The words holding the service and real-server values, for diagnostics.
    service_word: usize,
    server_word: usize,
}

impl Entry {
    fn new() -> Self {
        Entry {
            cmd: None,
            cmd_word: 0,
            options: 0,
            opt_word: [0; NUMBER_OF_OPT],
            af6: None,
            protocol: 0,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            sched_name: String::new(),
            persistent: false,
            timeout: 0,
            // "Set the default persistent granularity to /32 mask"
            netmask: 0xffff_ffff,
            one_packet: false,
            synproxy: false,
            pe_name: None,
            sched_flags: 0,
            dest_af6: None,
            dest_addr: None,
            dest_port: 0,
            // "Set direct routing as default forwarding method"
            fwd: Fwd::Route,
            // "Set the default weight 1"
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
            daemon_state: DaemonState::Master,
            mcast_ifn: String::new(),
            syncid: 0,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
            timeouts: Timeouts {
                tcp: 0,
                tcp_fin: 0,
                udp: 0,
            },
            local_pool: LocalPool::default(),
            format: ListFormat::default(),
            service_word: 0,
            server_word: 0,
        }
    }

    fn has(&self, o: usize) -> bool {
        self.options & (1 << o) != 0
    }

    /// `set_option()`.
    fn set_option(&mut self, o: usize, word: usize) -> Result<(), UsageError> {
        if self.has(o) {
            return Err(fail_at(
                format!("multiple '{}' options specified", OPTNAMES[o]),
                word,
            ));
        }
        self.options |= 1 << o;
        self.opt_word[o] = word;
        Ok(())
    }
}

fn fail_at(message: impl Into<String>, word: usize) -> UsageError {
    UsageError {
        message: message.into(),
        exit_code: 2,
        arg_index: Some(word),
    }
}

/// `tryhelp_exit(argv[0], -1)`: exit status 255.
fn tryhelp(program: &str, word: Option<usize>) -> UsageError {
    UsageError {
        message: format!("Try `{program} -h' or '{program} --help' for more information."),
        exit_code: 255,
        arg_index: word,
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// What `parse_service()` found: `SERVICE_ADDR`, `SERVICE_PORT`, and the argument with
/// each name it resolved replaced by its number (`None` when it held no name).
struct Parsed {
    addr: IpAddr,
    port: Option<u16>,
    numeric: Option<String>,
}

/// ipvsadm's `parse_service()`: `host[:port]`, `[v6]:port` (brackets need the port), a
/// bare IPv6 address (no port); the host an IPv6 address, else `inet_aton()`, else
/// `host_to_addr()` (`gethostbyname()`: its first IPv4 address); the port a number, else
/// `service_to_port()` (`getservbyname()` for the service's protocol, `proto` 6, 17 or
/// 132; none for another).
fn parse_service(buf: &str, proto: u16, names: &dyn Names) -> Option<Parsed> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        // str_is_digit() is also true of the empty string.
        return None;
    }
    // Byte ranges of the host and port within `buf`.
    let (host, mut portp): (Range<usize>, Option<Range<usize>>) =
        if let Some(rest) = buf.strip_prefix('[') {
            let close = rest.find(']')?;
            let after = &rest[close + 1..];
            after.strip_prefix(':')?;
            (1..1 + close, Some(close + 3..buf.len()))
        } else {
            (0..buf.len(), None)
        };
    let mut numeric: Vec<(Range<usize>, String)> = Vec::new();
    let addr = if let Ok(a) = buf[host.clone()].parse::<Ipv6Addr>() {
        IpAddr::V6(a)
    } else {
        // The IPv4 branch looks for the port again, within the host part only: a port
        // after `[1.2.3.4]` is lost, as in ipvsadm.
        let (h, p) = match buf[host.clone()].rfind(':') {
            Some(i) => (
                host.start..host.start + i,
                Some(host.start + i + 1..host.end),
            ),
            None => (host.clone(), None),
        };
        portp = p;
        IpAddr::V4(match inet_aton(&buf[h.clone()]) {
            Some(a) => a,
            None => {
                let a = names.host_v4(&buf[h.clone()])?;
                numeric.push((h, a.to_string()));
                a
            }
        })
    };
    let port = match portp {
        None => None,
        Some(p) => Some(match string_to_number(&buf[p.clone()], 0, 65535) {
            Some(n) => n as u16,
            None => {
                let n = u8::try_from(proto)
                    .ok()
                    .and_then(service_proto)
                    .and_then(|pr| names.service(&buf[p.clone()], pr))?;
                numeric.push((p, n.to_string()));
                n
            }
        }),
    };
    let numeric = (!numeric.is_empty()).then(|| {
        let mut s = String::new();
        let mut at = 0;
        for (r, n) in numeric {
            s.push_str(&buf[at..r.start]);
            s.push_str(&n);
            at = r.end;
        }
        s.push_str(&buf[at..]);
        s
    });
    Some(Parsed {
        addr,
        port,
        numeric,
    })
}

/// Record that the argument `arg` in word `word` of `args` resolved to `numeric`: the
/// word with its argument (always a suffix of the word: `-tX`, `--opt=X` or the whole
/// word) replaced.
fn rewrite(
    rewrites: &mut Vec<(usize, String)>,
    args: &[String],
    word: usize,
    arg: &str,
    numeric: &str,
) {
    if let Some(w) = args.get(word)
        && let Some(head) = w.strip_suffix(arg)
    {
        rewrites.push((word, format!("{head}{numeric}")));
    }
}

/// `parse_fwmark()`.
fn parse_fwmark(buf: &str, word: usize) -> Result<u32, UsageError> {
    let (l, end, erange) = strtol(buf);
    if end != buf.len() || end == 0 || erange || l <= 0 || l > i64::from(u32::MAX) {
        return Err(fail_at(
            format!("invalid fwmark value `{buf}' specified"),
            word,
        ));
    }
    Ok(l as u32)
}

/// `parse_timeout()`: no value means the persistence default.
fn parse_timeout(buf: Option<&str>, min: i64, max: i64, word: usize) -> Result<u32, UsageError> {
    match buf {
        None => Ok(DEF_PERSISTENT_TIMEOUT),
        Some(b) => string_to_number(b, min, max)
            .map(|v| v as u32)
            .ok_or_else(|| fail_at(format!("invalid timeout value `{b}' specified"), word)),
    }
}

/// `parse_sched_flags()`: comma-separated names; `sh-*` need scheduler sh, `mh-*` mh.
fn parse_sched_flags(sched: &str, arg: &str, word: usize) -> Result<u8, UsageError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        let (bit, needs) = match flag {
            "flag-1" => (SchedFlags::FLAG_1, None),
            "flag-2" => (SchedFlags::FLAG_2, None),
            "flag-3" => (SchedFlags::FLAG_3, None),
            "sh-fallback" => (SchedFlags::FLAG_1, Some("sh")),
            "sh-port" => (SchedFlags::FLAG_2, Some("sh")),
            "mh-fallback" => (SchedFlags::FLAG_1, Some("mh")),
            "mh-port" => (SchedFlags::FLAG_2, Some("mh")),
            _ => {
                return Err(fail_at(format!("invalid scheduler flag `{flag}'"), word));
            }
        };
        flags |= bit;
        if needs.is_some_and(|s| s != sched) {
            return Err(fail_at(
                format!("incompatible scheduler flag `{flag}'"),
                word,
            ));
        }
    }
    Ok(flags)
}

/// ipvsadm's command line (`argv[0]` is the program name, used in "Try `...' messages).
/// See [`super::parse_command`]. Names are looked up in `names`; each word holding a
/// name that resolved is pushed to `rewrites` as (index, the word with numbers), also
/// when the line is refused later.
pub(crate) fn parse(
    args: &[String],
    names: &dyn Names,
    rewrites: &mut Vec<(usize, String)>,
) -> Result<(Command, Words), UsageError> {
    let program = args.first().map_or("ipvsadm", String::as_str);
    if args.len() <= 1 {
        // main(): "list the table if there is no other argument"
        return Ok((Command::List(ListOptions::default()), Words::default()));
    }
    let mut ce = Entry::new();
    let mut popt = Popt::new(args);
    let mut sched_flags_arg: Option<(String, usize)> = None;

    // parse_options(): the first option must be a command.
    let first = match popt.next_opt() {
        Ok(Some(g)) => g,
        Ok(None) => return Err(tryhelp(program, None)),
        Err((_, w)) => return Err(tryhelp(program, Some(w))),
    };
    ce.cmd_word = first.word;
    let daemon_state = |arg: &Option<String>| match arg.as_deref() {
        Some("master") => Some(DaemonState::Master),
        Some("backup") => Some(DaemonState::Backup),
        _ => None,
    };
    ce.cmd = Some(match first.tag {
        Tag::AddService => Cmd::Add,
        Tag::EditService => Cmd::Edit,
        Tag::DeleteService => Cmd::Del,
        Tag::AddServer => Cmd::AddDest,
        Tag::EditServer => Cmd::EditDest,
        Tag::DeleteServer => Cmd::DelDest,
        Tag::Clear => Cmd::Flush,
        Tag::List => Cmd::List,
        Tag::Zero => Cmd::Zero,
        Tag::Set => Cmd::Timeout,
        Tag::Restore => Cmd::Restore,
        Tag::Save => Cmd::Save,
        Tag::LocalPool => Cmd::LocalPool,
        Tag::StartDaemon => {
            ce.daemon_state = daemon_state(&first.arg)
                .ok_or_else(|| fail_at("illegal start-daemon parameter specified", first.word))?;
            Cmd::StartDaemon
        }
        Tag::StopDaemon => {
            // sic: ipvsadm's message for --stop-daemon names start_daemon.
            ce.daemon_state = daemon_state(&first.arg)
                .ok_or_else(|| fail_at("illegal start_daemon specified", first.word))?;
            Cmd::StopDaemon
        }
        Tag::Help | Tag::Version => {
            let words = Words {
                command: first.word,
                ..Words::default()
            };
            let c = if first.tag == Tag::Help {
                Command::Help
            } else {
                Command::Version
            };
            return Ok((c, words));
        }
        _ => return Err(tryhelp(program, Some(first.word))),
    });

    loop {
        let g = match popt.next_opt() {
            Ok(Some(g)) => g,
            Ok(None) => break,
            Err((e, w)) => {
                // "an error occurred during option processing": parse_options returns -1.
                return Err(UsageError {
                    message: format!("{}: {}", args[w], e.text()),
                    exit_code: 255,
                    arg_index: Some(w),
                });
            }
        };
        let w = g.word;
        let aw = g.arg_word;
        let arg = g.arg.as_deref().unwrap_or("");
        match g.tag {
            Tag::Tcp | Tag::Udp | Tag::Sctp => {
                ce.set_option(optc::SERVICE, w)?;
                ce.service_word = aw;
                ce.protocol = match g.tag {
                    Tag::Tcp => PROTO_TCP,
                    Tag::Udp => PROTO_UDP,
                    _ => PROTO_SCTP,
                };
                let p = parse_service(arg, ce.protocol, names).ok_or_else(|| {
                    fail_at("illegal virtual server address[:port] specified", aw)
                })?;
                if let Some(n) = &p.numeric {
                    rewrite(rewrites, args, aw, arg, n);
                }
                ce.addr = p.addr;
                ce.af6 = Some(p.addr.is_ipv6());
                if p.addr.is_ipv6() {
                    ce.netmask = 128;
                }
                if let Some(port) = p.port {
                    ce.port = port;
                }
            }
            Tag::Fwmark => {
                ce.set_option(optc::SERVICE, w)?;
                ce.service_word = aw;
                // "Set protocol to a sane values, even though it is not used"
                ce.af6 = Some(false);
                ce.protocol = PROTO_TCP;
                ce.fwmark = parse_fwmark(arg, aw)?;
            }
            Tag::Scheduler => {
                ce.set_option(optc::SCHEDULER, w)?;
                ce.sched_name = truncate(arg, SCHEDNAME_MAX);
            }
            Tag::Persistent => {
                ce.set_option(optc::PERSISTENT, w)?;
                ce.persistent = true;
                ce.timeout = parse_timeout(g.arg.as_deref(), 1, MAX_TIMEOUT, aw)?;
            }
            Tag::Netmask => {
                ce.set_option(optc::NETMASK, w)?;
                if ce.af6 != Some(true) {
                    // parse_netmask(): inet_aton(), then host_to_addr().
                    let mask = match inet_aton(arg) {
                        Some(m) => m,
                        None => {
                            let m = names.host_v4(arg).ok_or_else(|| {
                                fail_at("illegal virtual server persistent mask specified", aw)
                            })?;
                            rewrite(rewrites, args, aw, arg, &m.to_string());
                            m
                        }
                    };
                    ce.netmask = u32::from(mask);
                } else {
                    let m = atoi(arg);
                    if !(1..=128).contains(&m) {
                        return Err(fail_at("illegal ipv6 netmask specified", aw));
                    }
                    ce.netmask = m as u32;
                }
            }
            Tag::RealServer => {
                ce.set_option(optc::SERVER, w)?;
                ce.server_word = aw;
                let p = parse_service(arg, ce.protocol, names)
                    .ok_or_else(|| fail_at("illegal real server address[:port] specified", aw))?;
                if let Some(n) = &p.numeric {
                    rewrite(rewrites, args, aw, arg, n);
                }
                ce.dest_addr = Some(p.addr);
                ce.dest_af6 = Some(p.addr.is_ipv6());
                // "copy vport to dport if not specified"
                ce.dest_port = p.port.unwrap_or(ce.port);
            }
            Tag::Ipip | Tag::Gatewaying | Tag::Masq | Tag::FullNat => {
                ce.set_option(optc::FORWARD, w)?;
                ce.fwd = match g.tag {
                    Tag::Ipip => Fwd::Tunnel,
                    Tag::Gatewaying => Fwd::Route,
                    Tag::Masq => Fwd::Masq,
                    _ => Fwd::FullNat,
                };
            }
            Tag::Weight => {
                ce.set_option(optc::WEIGHT, w)?;
                ce.weight = string_to_number(arg, 0, 65535)
                    .ok_or_else(|| fail_at("illegal weight specified", aw))?
                    as u32;
            }
            Tag::UThreshold => {
                ce.set_option(optc::UTHRESHOLD, w)?;
                ce.u_threshold = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail_at("illegal u_threshold specified", aw))?
                    as u32;
            }
            Tag::LThreshold => {
                ce.set_option(optc::LTHRESHOLD, w)?;
                ce.l_threshold = string_to_number(arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail_at("illegal l_threshold specified", aw))?
                    as u32;
            }
            Tag::Connection => ce.set_option(optc::CONNECTION, w)?,
            Tag::Numeric => {
                ce.set_option(optc::NUMERIC, w)?;
                ce.format.numeric = true;
            }
            Tag::McastInterface => {
                ce.set_option(optc::MCAST, w)?;
                ce.mcast_ifn = truncate(arg, IFNAME_MAX);
            }
            Tag::Syncid => {
                ce.set_option(optc::SYNCID, w)?;
                ce.syncid = string_to_number(arg, 0, 255)
                    .ok_or_else(|| fail_at("illegal syncid specified", aw))?
                    as u8;
            }
            Tag::Timeout => ce.set_option(optc::TIMEOUT, w)?,
            Tag::Daemon => ce.set_option(optc::DAEMON, w)?,
            Tag::Stats => {
                ce.set_option(optc::STATS, w)?;
                ce.format.stats = true;
            }
            Tag::Rate => {
                ce.set_option(optc::RATE, w)?;
                ce.format.rate = true;
            }
            Tag::Thresholds => {
                ce.set_option(optc::THRESHOLDS, w)?;
                ce.format.thresholds = true;
            }
            Tag::PersistentConn => {
                ce.set_option(optc::PERSISTENTCONN, w)?;
                ce.format.persistent_conn = true;
            }
            Tag::NoSort => {
                ce.set_option(optc::NOSORT, w)?;
                ce.format.nosort = true;
            }
            // "Sort is the default, this is a no-op for compatibility"
            Tag::Sort => {}
            Tag::Exact => {
                ce.set_option(optc::EXACT, w)?;
                ce.format.exact = true;
            }
            Tag::Ipv6 => {
                if ce.fwmark != 0 {
                    ce.af6 = Some(true);
                    ce.netmask = 128;
                } else {
                    // fail(2, "-6 used before -f\n"): the message has its own newline.
                    return Err(fail_at("-6 used before -f\n", aw));
                }
            }
            Tag::Ops => {
                ce.set_option(optc::ONEPACKET, w)?;
                ce.one_packet = true;
            }
            Tag::SynProxy => {
                // DPVS ipvsadm.c `case 'j'`: `memcmp(optarg, "enable", strlen("enable"))`,
                // so a word starting with `enable` / `disable` counts.
                ce.set_option(optc::SYNPROXY, w)?;
                ce.synproxy = if arg.starts_with("enable") {
                    true
                } else if arg.starts_with("disable") {
                    false
                } else {
                    // fail(2, "synproxy switch must be enable or disable\n"): the message
                    // has its own newline.
                    return Err(fail_at("synproxy switch must be enable or disable\n", aw));
                };
            }
            Tag::Pe => {
                ce.set_option(optc::PE, w)?;
                ce.pe_name = Some(truncate(arg, PENAME_MAX));
            }
            Tag::SchedFlags => {
                ce.set_option(optc::SCHED_FLAGS, w)?;
                sched_flags_arg = Some((truncate(arg, 127), aw));
            }
            Tag::McastGroup => {
                ce.set_option(optc::MCAST_GROUP, w)?;
                if arg.contains(':') {
                    match arg.parse::<Ipv6Addr>() {
                        Ok(a) if a.is_multicast() => ce.mcast_group = Some(IpAddr::V6(a)),
                        _ => {
                            return Err(fail_at(format!("invalid IPv6 mcast-group `{arg}'"), aw));
                        }
                    }
                } else {
                    match arg.parse::<Ipv4Addr>() {
                        Ok(a) if a.is_multicast() => ce.mcast_group = Some(IpAddr::V4(a)),
                        _ => {
                            return Err(fail_at(format!("invalid IPv4 mcast-group `{arg}'"), aw));
                        }
                    }
                }
            }
            Tag::McastPort => {
                ce.set_option(optc::MCAST_PORT, w)?;
                ce.mcast_port = Some(
                    string_to_number(arg, 1, 65535)
                        .ok_or_else(|| fail_at("illegal mcast-port specified", aw))?
                        as u16,
                );
            }
            Tag::McastTtl => {
                ce.set_option(optc::MCAST_TTL, w)?;
                ce.mcast_ttl = Some(
                    string_to_number(arg, 1, 255)
                        .ok_or_else(|| fail_at("illegal mcast-ttl specified", aw))?
                        as u8,
                );
            }
            Tag::SyncMaxlen => {
                ce.set_option(optc::SYNC_MAXLEN, w)?;
                ce.sync_maxlen = Some(
                    string_to_number(arg, 1, 65535 - 20 - 8)
                        .ok_or_else(|| fail_at("illegal sync-maxlen specified", aw))?
                        as u16,
                );
            }
            Tag::TunInfo => {
                ce.set_option(optc::TUN_INFO, w)?;
                ce.format.tun_info = true;
            }
            Tag::TunType => {
                ce.set_option(optc::TUN_TYPE, w)?;
                ce.tun_type = TUNNAMES
                    .iter()
                    .position(|n| *n == arg)
                    .ok_or_else(|| fail_at("illegal tunnel type specified", aw))?;
            }
            Tag::TunPort => {
                ce.set_option(optc::TUN_PORT, w)?;
                ce.tun_port = string_to_number(arg, 1, 65535)
                    .ok_or_else(|| fail_at("illegal tunnel port specified", aw))?
                    as u16;
            }
            Tag::TunNoCsum => ce.set_option(optc::TUN_NOCSUM, w)?,
            Tag::TunCsum => {
                ce.set_option(optc::TUN_CSUM, w)?;
                ce.tun_flags |= 1;
            }
            Tag::TunRemCsum => {
                ce.set_option(optc::TUN_REMCSUM, w)?;
                ce.tun_flags |= 2;
            }
            // A command after the first: not in the loop's switch.
            _ => {
                return Err(fail_at(format!("invalid option `{}'", args[w]), w));
            }
        }
    }

    let cmd = ce.cmd.unwrap_or(Cmd::List);
    let mut leftovers = std::mem::take(&mut popt.leftovers).into_iter();
    if cmd == Cmd::Timeout {
        let vals: Vec<(String, usize)> = leftovers.by_ref().take(3).collect();
        if vals.len() < 3 {
            return Err(fail_at(
                "--set option requires 3 timeout values",
                ce.cmd_word,
            ));
        }
        ce.timeouts = Timeouts {
            tcp: parse_timeout(Some(&vals[0].0), 0, MAX_TIMEOUT, vals[0].1)?,
            tcp_fin: parse_timeout(Some(&vals[1].0), 0, MAX_TIMEOUT, vals[1].1)?,
            udp: parse_timeout(Some(&vals[2].0), 0, MAX_TIMEOUT, vals[2].1)?,
        };
    }
    if cmd == Cmd::LocalPool {
        ce.local_pool = parse_local_pool(&mut leftovers, ce.cmd_word)?;
    }
    if let Some((a, w)) = leftovers.next() {
        return Err(fail_at(format!("unexpected argument {a}"), w));
    }
    if let Some((flags, w)) = sched_flags_arg
        && !flags.is_empty()
    {
        ce.sched_flags = parse_sched_flags(&ce.sched_name, &flags, w)?;
    }

    generic_opt_check(&ce, cmd)?;

    if matches!(cmd, Cmd::Add | Cmd::Edit) {
        // "Make sure that port zero service is persistent"
        if ce.fwmark == 0 && ce.port == 0 && !ce.persistent {
            return Err(fail_at(
                "Zero port specified for non-persistent service",
                ce.service_word,
            ));
        }
        if ce.one_packet && ce.fwmark == 0 && ce.protocol != PROTO_UDP {
            return Err(fail_at(
                "One-Packet Scheduling is only for UDP virtual services",
                ce.opt_word[optc::ONEPACKET],
            ));
        }
        // rvs: the proxy answers TCP handshakes only (DPVS accepts the flag on any service
        // and its data plane never proxies other protocols).
        if ce.synproxy && ce.fwmark == 0 && ce.protocol != PROTO_TCP {
            return Err(fail_at(
                "SYN proxy is only for TCP virtual services",
                ce.opt_word[optc::SYNPROXY],
            ));
        }
        // "Set the default scheduling algorithm if not specified"
        if ce.sched_name.is_empty() {
            ce.sched_name = "wlc".to_string();
        }
    }
    if cmd == Cmd::StartDaemon && ce.mcast_ifn.is_empty() {
        ce.mcast_ifn = "eth0".to_string();
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        // "The destination port must be equal to the service port if the
        // IP_VS_CONN_F_TUNNEL or IP_VS_CONN_F_DROUTE is set."
        if ce.fwmark == 0 && matches!(ce.fwd, Fwd::Tunnel | Fwd::Route) {
            ce.dest_port = ce.port;
        }
        if ce.dest_af6 != ce.af6 && ce.fwd != Fwd::Tunnel {
            return Err(fail_at(
                "Different address family is allowed only for tunneling servers",
                ce.server_word,
            ));
        }
        let tun_opts = [
            optc::TUN_TYPE,
            optc::TUN_PORT,
            optc::TUN_NOCSUM,
            optc::TUN_CSUM,
            optc::TUN_REMCSUM,
        ];
        if let Some(&o) = tun_opts.iter().find(|&&o| ce.has(o))
            && ce.fwd != Fwd::Tunnel
        {
            return Err(fail_at(
                "Tunnel options conflict with forward method",
                ce.opt_word[o],
            ));
        }
        tunnel_opt_check(&ce)?;
    }
    if cmd == Cmd::List {
        let any = |os: &[usize]| os.iter().any(|&o| ce.has(o));
        if (any(&[optc::CONNECTION, optc::TIMEOUT, optc::DAEMON])
            && any(&[optc::STATS, optc::RATE, optc::THRESHOLDS]))
            || (any(&[optc::TIMEOUT, optc::DAEMON]) && ce.has(optc::PERSISTENTCONN))
        {
            return Err(fail_at(
                "options conflicts in the list command",
                ce.cmd_word,
            ));
        }
    }
    build(ce, cmd)
}

/// rvs extension `--local-pool LO-HI [ADDR...]`: the FullNAT local address pool.
fn parse_local_pool(
    words: &mut impl Iterator<Item = (String, usize)>,
    cmd_word: usize,
) -> Result<LocalPool, UsageError> {
    let Some((range, w)) = words.next() else {
        return Err(fail_at(
            "--local-pool option requires a port range LO-HI",
            cmd_word,
        ));
    };
    let bad = || fail_at(format!("illegal local port range `{range}' specified"), w);
    let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
    let lo = string_to_number(lo, 0, 65535).ok_or_else(bad)? as u16;
    let hi = string_to_number(hi, 0, 65535).ok_or_else(bad)? as u16;
    let mut addrs = Vec::new();
    for (a, w) in words {
        let addr = a
            .parse::<IpAddr>()
            .map_err(|_| fail_at(format!("illegal local address `{a}' specified"), w))?;
        addrs.push(addr);
    }
    Ok(LocalPool {
        addrs,
        port_range: (lo, hi),
    })
}

/// `generic_opt_check()`: walk the options in `OPTC_*` order against the command's row.
fn generic_opt_check(ce: &Entry, cmd: Cmd) -> Result<(), UsageError> {
    let row = cmd.row();
    let mut last = None;
    for (j, &rule) in row.iter().enumerate() {
        if !ce.has(j) {
            if rule == b'+' {
                return Err(fail_at(
                    format!(
                        "You need to supply the '{}' option for the '{}' command",
                        OPTNAMES[j],
                        cmd.name()
                    ),
                    ce.cmd_word,
                ));
            }
        } else {
            if rule == b'x' {
                return Err(fail_at(
                    format!(
                        "Illegal '{}' option with the '{}' command",
                        OPTNAMES[j],
                        cmd.name()
                    ),
                    ce.opt_word[j],
                ));
            }
            if rule == b'1' {
                match last {
                    None => last = Some(j),
                    Some(l) => {
                        return Err(fail_at(
                            format!(
                                "The option '{}' conflicts with the '{}' option in the '{}' command",
                                OPTNAMES[j],
                                OPTNAMES[l],
                                cmd.name()
                            ),
                            ce.opt_word[j],
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `tunnel_opt_check()` against `tunnel_types_v_options`.
fn tunnel_opt_check(ce: &Entry) -> Result<(), UsageError> {
    let i = ce.tun_type;
    let mut last = None;
    for (j, &k) in TUNOPTS.iter().enumerate() {
        let rule = TUNNEL_TYPES_V_OPTIONS[i][j];
        if !ce.has(k) {
            if rule == b'+' {
                return Err(fail_at(
                    format!(
                        "You need to supply the '{}' option for the '{}' tunnel type",
                        OPTNAMES[k], TUNNAMES[i]
                    ),
                    ce.opt_word[optc::TUN_TYPE],
                ));
            }
        } else {
            if rule == b'x' {
                return Err(fail_at(
                    format!(
                        "Illegal '{}' option with the '{}' tunnel type",
                        OPTNAMES[k], TUNNAMES[i]
                    ),
                    ce.opt_word[k],
                ));
            }
            if rule == b'1' {
                match last {
                    None => last = Some(k),
                    Some(l) => {
                        return Err(fail_at(
                            format!(
                                "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                                OPTNAMES[k], OPTNAMES[l], TUNNAMES[i]
                            ),
                            ce.opt_word[k],
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Where the service and real-server words were, for diagnostics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Words {
    pub(crate) command: usize,
    pub(crate) service: Option<usize>,
    pub(crate) server: Option<usize>,
}

/// Map the checked entry to the model: the step where rvs, not ipvsadm, may refuse.
fn build(ce: Entry, cmd: Cmd) -> Result<(Command, Words), UsageError> {
    let words = Words {
        command: ce.cmd_word,
        service: ce.has(optc::SERVICE).then_some(ce.service_word),
        server: ce.has(optc::SERVER).then_some(ce.server_word),
    };
    let key = if ce.has(optc::SERVICE) {
        Some(service_key(&ce)?)
    } else {
        None
    };
    let command = match cmd {
        Cmd::Add | Cmd::Edit => {
            let key = key.expect("generic_opt_check requires a service");
            let scheduler = SchedulerKind::from_name(&ce.sched_name).ok_or_else(|| UsageError {
                // ipvs_strerror(ENOENT) for ipvs_add_service / ipvs_update_service; the
                // kernel refuses it, ipvsadm returns -1 from main().
                message: "Scheduler or persistence engine not found".to_string(),
                exit_code: 255,
                arg_index: Some(ce.opt_word[optc::SCHEDULER]).filter(|_| ce.has(optc::SCHEDULER)),
            })?;
            if let Some(pe) = &ce.pe_name
                && pe != "sip"
            {
                return Err(UsageError {
                    message: "Scheduler or persistence engine not found".to_string(),
                    exit_code: 255,
                    arg_index: Some(ce.opt_word[optc::PE]),
                });
            }
            let persistence = if ce.persistent {
                Some(Persistence {
                    timeout: ce.timeout,
                    prefix: persistence_prefix(&ce)?,
                })
            } else {
                None
            };
            let service = VirtualServiceConfig {
                scheduler,
                flags: SchedFlags(ce.sched_flags),
                persistence,
                one_packet: ce.one_packet,
                ..VirtualServiceConfig::new(key)
            };
            if cmd == Cmd::Add {
                Command::AddService {
                    service,
                    pe: ce.pe_name,
                    synproxy: ce.synproxy,
                }
            } else {
                Command::EditService {
                    service,
                    pe: ce.pe_name,
                    synproxy: ce.synproxy,
                }
            }
        }
        Cmd::Del => Command::DeleteService(key.expect("service required")),
        Cmd::Flush => Command::Clear,
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            numeric: ce.format.numeric,
        },
        Cmd::Zero => Command::Zero(key),
        Cmd::Timeout => Command::SetTimeouts(ce.timeouts),
        Cmd::LocalPool => Command::LocalPool(ce.local_pool),
        Cmd::List => {
            let what = if ce.has(optc::CONNECTION) {
                ListWhat::Connections
            } else if let Some(k) = key {
                ListWhat::Service(k)
            } else if ce.has(optc::TIMEOUT) {
                ListWhat::Timeout
            } else if ce.has(optc::DAEMON) {
                ListWhat::Daemon
            } else {
                ListWhat::All
            };
            Command::List(ListOptions {
                what,
                format: ce.format,
            })
        }
        Cmd::StartDaemon => Command::StartDaemon(DaemonOptions {
            state: ce.daemon_state,
            mcast_interface: ce.mcast_ifn,
            syncid: ce.syncid,
            sync_maxlen: ce.sync_maxlen,
            mcast_group: ce.mcast_group,
            mcast_port: ce.mcast_port,
            mcast_ttl: ce.mcast_ttl,
        }),
        Cmd::StopDaemon => Command::StopDaemon {
            state: ce.daemon_state,
            syncid: ce.syncid,
        },
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let service = key.expect("service required");
            let addr = ce.dest_addr.expect("real server required");
            if cmd == Cmd::DelDest {
                Command::DeleteServer {
                    service,
                    addr,
                    port: ce.dest_port,
                }
            } else {
                let method = match ce.fwd {
                    Fwd::Masq => ForwardMethod::Masq,
                    Fwd::Route => ForwardMethod::DirectRoute,
                    Fwd::FullNat => ForwardMethod::FullNat,
                    Fwd::Tunnel => ForwardMethod::Tunnel {
                        kind: match ce.tun_type {
                            1 => TunnelKind::Gue { port: ce.tun_port },
                            2 => TunnelKind::Gre,
                            _ => TunnelKind::Ipip,
                        },
                        csum: match ce.tun_flags {
                            1 => TunnelCsum::Csum,
                            2 => TunnelCsum::RemCsum,
                            _ => TunnelCsum::NoCsum,
                        },
                    },
                };
                let server = RealServerConfig {
                    addr,
                    port: ce.dest_port,
                    weight: ce.weight,
                    u_threshold: ce.u_threshold,
                    l_threshold: ce.l_threshold,
                    method,
                };
                if cmd == Cmd::AddDest {
                    Command::AddServer { service, server }
                } else {
                    Command::EditServer { service, server }
                }
            }
        }
    };
    Ok((command, words))
}

fn service_key(ce: &Entry) -> Result<ServiceKey, UsageError> {
    let w = ce.service_word;
    if ce.fwmark != 0 {
        return Ok(ServiceKey::Fwmark {
            mark: ce.fwmark,
            family: if ce.af6 == Some(true) {
                rvs_core::model::Family::V6
            } else {
                rvs_core::model::Family::V4
            },
        });
    }
    let protocol = match ce.protocol {
        PROTO_TCP => Protocol::Tcp,
        PROTO_UDP => Protocol::Udp,
        PROTO_SCTP => Protocol::Sctp,
        _ => return Err(fail_at("illegal virtual server address", w)),
    };
    Ok(ServiceKey::Addr {
        protocol,
        addr: ce.addr,
        port: ce.port,
    })
}

/// The persistence prefix: IPv6 services carry a length, IPv4 ones a mask that rvs can
/// only hold when it is contiguous (ipvsadm passes any mask to the kernel).
fn persistence_prefix(ce: &Entry) -> Result<u8, UsageError> {
    if ce.af6 == Some(true) {
        return Ok(ce.netmask.min(128) as u8);
    }
    let m = ce.netmask;
    let len = m.leading_ones();
    if m.checked_shl(len).unwrap_or(0) != 0 {
        return Err(UsageError {
            message: "illegal virtual server persistent mask specified".to_string(),
            exit_code: 2,
            arg_index: Some(ce.opt_word[optc::NETMASK]).filter(|_| ce.has(optc::NETMASK)),
        });
    }
    Ok(len as u8)
}

#[cfg(test)]
mod tests {
    use super::super::names::{FixedNames, NoNames};
    use super::*;

    #[test]
    fn rows_are_34_wide_and_match_the_table() {
        assert_eq!(Cmd::List.row()[optc::CONNECTION], b'1');
        assert_eq!(Cmd::List.row()[optc::TUN_INFO], b' ');
        assert_eq!(Cmd::AddDest.row()[optc::TUN_REMCSUM], b' ');
        assert_eq!(Cmd::StartDaemon.row()[optc::SYNC_MAXLEN], b' ');
        assert_eq!(Cmd::Add.row()[optc::SCHED_FLAGS], b' ');
        assert_eq!(Cmd::Add.row()[optc::MCAST_GROUP], b'x');
    }

    #[test]
    fn parse_service_forms() {
        let p =
            |s: &str| parse_service(s, PROTO_TCP, &NoNames).map(|p| (p.addr.to_string(), p.port));
        assert_eq!(p("10.0.0.1:80"), Some(("10.0.0.1".into(), Some(80))));
        assert_eq!(p("10.0.0.1"), Some(("10.0.0.1".into(), None)));
        assert_eq!(
            p("[2001:db8::1]:443"),
            Some(("2001:db8::1".into(), Some(443)))
        );
        assert_eq!(p("2001:db8::1"), Some(("2001:db8::1".into(), None)));
        assert_eq!(p("[2001:db8::1]"), None);
        assert_eq!(p("[1.2.3.4]:80"), Some(("1.2.3.4".into(), None)));
        assert_eq!(p("80"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("10.0.0.1:"), None);
        assert_eq!(p("10.0.0.1:65536"), None);
        // Without names, a name is refused.
        assert_eq!(p("10.0.0.1:http"), None);
        assert_eq!(p("host.example:80"), None);
    }

    #[test]
    fn parse_service_resolves_names_and_says_the_numbers() {
        let names = FixedNames::new(
            &[("web01", "10.0.0.1"), ("web6", "2001:db8::1")],
            &[
                ("http", 80, "tcp"),
                ("domain", 53, "udp"),
                ("hkp", 11371, "sctp"),
            ],
        );
        let p = |s: &str, proto: u16| {
            parse_service(s, proto, &names).map(|p| (p.addr.to_string(), p.port, p.numeric))
        };
        let some = |a: &str, port: Option<u16>, n: Option<&str>| {
            Some((a.to_string(), port, n.map(String::from)))
        };
        assert_eq!(
            p("web01:http", PROTO_TCP),
            some("10.0.0.1", Some(80), Some("10.0.0.1:80"))
        );
        assert_eq!(
            p("web01", PROTO_TCP),
            some("10.0.0.1", None, Some("10.0.0.1"))
        );
        assert_eq!(
            p("10.0.0.9:http", PROTO_TCP),
            some("10.0.0.9", Some(80), Some("10.0.0.9:80"))
        );
        assert_eq!(
            p("10.0.0.9:80", PROTO_TCP),
            some("10.0.0.9", Some(80), None)
        );
        // Services by the service's protocol: http is tcp only here, domain udp only.
        assert_eq!(p("web01:http", PROTO_UDP), None);
        assert_eq!(
            p("web01:domain", PROTO_UDP),
            some("10.0.0.1", Some(53), Some("10.0.0.1:53"))
        );
        assert_eq!(p("web01:domain", PROTO_TCP), None);
        assert_eq!(
            p("web01:hkp", PROTO_SCTP),
            some("10.0.0.1", Some(11371), Some("10.0.0.1:11371"))
        );
        // No protocol yet (-r before -t): no service names at all.
        assert_eq!(p("web01:http", 0), None);
        // gethostbyname() answers IPv4 only: a name never gives an IPv6 service.
        assert_eq!(p("web6:http", PROTO_TCP), None);
        // Brackets around a name: not IPv6, so the IPv4 branch looks for a port inside
        // the brackets only, finds none, and the port is lost (as in ipvsadm).
        assert_eq!(
            p("[web01]:http", PROTO_TCP),
            some("10.0.0.1", None, Some("[10.0.0.1]:http"))
        );
        assert_eq!(p("nosuch:80", PROTO_TCP), None);
        assert_eq!(p("web01:nosuch", PROTO_TCP), None);
    }
}
