//! ipvsadm 1.31's listings of a running director, byte for byte: `-L` in every format
//! (`--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `--tun-info`, `--exact`,
//! `--nosort`, one service), `-L -c` (connections), `-L --timeout` and `-L --daemon`.
//!
//! The layouts are ipvsadm's `list_all()` / `list_service()` / `print_title()` /
//! `print_service_entry()` / `print_largenum()` / `list_conn()` / `print_conn()` /
//! `list_timeout()` / `list_daemon()` printf formats, rendered here from the engine's
//! state. Services and real servers are sorted as ipvsadm sorts the kernel's table
//! (libipvs `ipvs_cmp_services()` / `ipvs_cmp_dests()` through glibc `qsort()`, see
//! [`rvs_config::ipvsadm::ipvsadm_order`]).
//!
//! Where rvs differs from a kernel director, and why:
//! - `size=N` in `IP Virtual Server version 1.2.1 (size=N)` is the IPv4 connection
//!   table's current hash bucket count. ipvsadm prints `ipvs_info.size`, which the kernel
//!   fills with `ip_vs_conn_tab_size` (`1 << conn_tab_bits`, fixed at module load); rvs's
//!   tables double their buckets as they grow, so the number can rise while it runs.
//! - The daemon lists numbers only; `rvsadm` without `-n` prints host and service names
//!   into that text on its side ([`name_listing`]), so no lookup ever runs in the
//!   daemon.
//! - FullNAT real servers show Forward `FullNat` (the name the FullNAT ipvsadm forks
//!   print; 7 characters, so the columns stay aligned). `Local` never appears: rvs has no
//!   local node.
//! - `--nosort` lists services in configuration order (the kernel lists its hash
//!   buckets) and real servers most recent first (the kernel's list order).
//! - `--daemon` is answered by the daemon from its sync daemons
//!   ([`crate::syncd::SyncDaemons::listing`]); the engine alone lists none, as ipvsadm
//!   prints nothing when none runs.
//! - `-c` lists IPv4 entries, then IPv6 ones, in table order (the kernel walks its hash);
//!   rvs has no persistence engines, so rows never carry pe columns, but
//!   `--persistent-conn` changes the header as in ipvsadm.

use crate::snapshot::{DirectorView, ServiceView};
use rvs_config::ipvsadm::{ListFormat, ListOptions, ListWhat, Names, addrport_name, ipvsadm_order};
use rvs_core::conn::table::{Conn, ConnAddr};
use rvs_core::director::Director;
use rvs_core::model::{
    Config, Family, ForwardMethod, RealServerConfig, SchedFlags, SchedulerKind, ServiceKey,
    TunnelCsum, TunnelKind, VirtualServiceConfig, mask_v4,
};
use rvs_core::time::Instant;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What to list (the list options of `rvs list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `-L -n`.
    #[default]
    Plain,
    /// `-L -n --stats`.
    Stats,
    /// `-L -n --rate`.
    Rate,
    /// `-L -n --thresholds`.
    Thresholds,
    /// `-L -n --persistent-conn`.
    PersistentConn,
    /// `-L -n -c`.
    Connections,
}

/// glibc `inet_ntop(AF_INET6)`: as Rust's `Display` (longest run of at least two zero
/// groups, first on ties, becomes `::`), except that IPv4-compatible addresses
/// (`::a.b.c.d`) print their tail dotted.
fn ntop6(a: &Ipv6Addr) -> String {
    let s = a.segments();
    if s[..6].iter().all(|&g| g == 0) && s[6] != 0 {
        let o = a.octets();
        return format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
    }
    a.to_string()
}

/// `addrport_to_anyname()` with `FMT_NUMERIC`: `a.b.c.d:port` or `[v6]:port`.
fn addrport(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{}]:{port}", ntop6(&a)),
    }
}

/// `print_largenum()`: 9 columns, K/M/G/T from 10^8 up; `--exact` prints the whole number
/// in at least 9 columns with at least one space before it.
fn largenum(out: &mut String, n: u64, exact: bool) {
    let _ = if exact {
        write!(out, " {n:>8}")
    } else if n < 100_000_000 {
        write!(out, "{n:>9}")
    } else if n < 1_000_000_000 {
        write!(out, "{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        write!(out, "{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        write!(out, "{:>8}G", n / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", n / 1_000_000_000_000)
    };
}

/// `fwd_name()`.
fn forward_name(m: ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Masq => "Masq",
        ForwardMethod::DirectRoute => "Route",
        ForwardMethod::Tunnel { .. } => "Tunnel",
        ForwardMethod::FullNat => "FullNat",
    }
}

/// `fwd_tun_info()`: `ipip`, `gue:PORT:CSUM`, `gre:CSUM`; `n/a` for other methods.
fn tun_info(m: ForwardMethod) -> String {
    let csum = |c: TunnelCsum| match c {
        TunnelCsum::NoCsum => "nocsum",
        TunnelCsum::Csum => "csum",
        TunnelCsum::RemCsum => "remcsum",
    };
    match m {
        ForwardMethod::Tunnel { kind, csum: c } => match kind {
            TunnelKind::Ipip => "ipip".into(),
            TunnelKind::Gue { port } => format!("gue:{port}:{}", csum(c)),
            TunnelKind::Gre => format!("gre:{}", csum(c)),
        },
        _ => "n/a".into(),
    }
}

/// `print_sched_flags()`: sh and mh name their two flags (flag-3 prints nothing for
/// them), other schedulers print flag-N; comma-separated.
fn sched_flags(kind: SchedulerKind, f: SchedFlags) -> String {
    let names: [Option<&str>; 3] = match kind {
        SchedulerKind::Sh => [Some("sh-fallback"), Some("sh-port"), None],
        SchedulerKind::Mh => [Some("mh-fallback"), Some("mh-port"), None],
        _ => [Some("flag-1"), Some("flag-2"), Some("flag-3")],
    };
    let set: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| f.0 & (1 << i) != 0)
        .filter_map(|(_, n)| *n)
        .collect();
    set.join(",")
}

/// `print_title()`.
fn title(out: &mut String, f: &ListFormat) {
    let head = |out: &mut String, cols: String| {
        let _ = write!(
            out,
            "{:<33} {cols}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port"
        );
    };
    if f.stats {
        head(
            out,
            format!(
                "{:>8} {:>8} {:>8} {:>8} {:>8}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            ),
        );
    } else if f.rate {
        head(
            out,
            format!(
                "{:>8} {:>8} {:>8} {:>8} {:>8}",
                "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            ),
        );
    } else if f.thresholds {
        head(
            out,
            format!(
                "{:<10} {:<10} {:<10} {:<10}",
                "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            ),
        );
    } else if f.persistent_conn {
        head(
            out,
            format!(
                "{:<9} {:<11} {:<10} {:<10}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            ),
        );
    } else if f.tun_info {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
    }
}

/// `svc_name` of `print_service_entry()` outside rules: `TCP  addr:port` (cut to 33
/// bytes unless IPv6), `FWM  N`, `FWM  N IPv6`.
pub(crate) fn service_name(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let mut n = format!("{protocol}  {}", addrport(addr, port));
            if addr.is_ipv4() {
                n.truncate(33);
            }
            n
        }
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("FWM  {mark}"),
            Family::V6 => format!("FWM  {mark} IPv6"),
        },
    }
}

/// `print_service_entry()`: the service line, then its real servers (`order`: indices
/// into `svc.dests`).
fn service_entry(out: &mut String, svc: &ServiceView, order: &[usize], f: &ListFormat) {
    let name = service_name(&svc.cfg.key);
    let cfg = &svc.cfg;
    if f.stats {
        let _ = write!(out, "{name:<33}");
        let s = &svc.stats;
        for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
            largenum(out, n, f.exact);
        }
    } else if f.rate {
        let _ = write!(out, "{name:<33}");
        let r = svc.rates;
        for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
            largenum(out, n, f.exact);
        }
    } else {
        let _ = write!(out, "{name} {}", cfg.scheduler.name());
        if cfg.flags.0 & (SchedFlags::FLAG_1 | SchedFlags::FLAG_2 | SchedFlags::FLAG_3) != 0 {
            let _ = write!(out, " ({})", sched_flags(cfg.scheduler, cfg.flags));
        }
        if let Some(p) = cfg.persistence {
            let _ = write!(out, " persistent {}", p.timeout);
            match cfg.key.family() {
                Family::V4 if p.prefix != 32 => {
                    let _ = write!(out, " mask {}", Ipv4Addr::from(mask_v4(p.prefix)));
                }
                Family::V6 if p.prefix != 128 => {
                    let _ = write!(out, " mask {}", p.prefix);
                }
                _ => {}
            }
        }
        if cfg.one_packet {
            out.push_str(" ops");
        }
        // DPVS tools/ipvsadm/ipvsadm.c `print_service_entry()`: `if (se->flags &
        // IP_VS_SVC_F_SYNPROXY) printf(" synproxy");` after ops.
        if cfg.synproxy {
            out.push_str(" synproxy");
        }
    }
    out.push('\n');
    for &i in order {
        let view = &svc.dests[i];
        let dest = &view.dest;
        let mut dname = addrport(dest.addr, dest.port);
        // 1.31: `if (!(format & FMT_RULE) && (e->af != AF_INET6)) dname[28] = '\0';`
        if dest.addr.is_ipv4() {
            dname.truncate(28);
        }
        if f.stats {
            let _ = write!(out, "  -> {dname:<28}");
            let s = view.stats;
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, n, f.exact);
            }
        } else if f.rate {
            let r = view.rates;
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                r.cps, r.inpps, r.outpps
            );
            largenum(out, r.inbps, f.exact);
            largenum(out, r.outbps, f.exact);
        } else if f.thresholds {
            let _ = write!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                dest.u_threshold, dest.l_threshold, dest.active_conns, dest.inact_conns
            );
        } else if f.persistent_conn {
            let _ = write!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                dest.weight, dest.persist_conns, dest.active_conns, dest.inact_conns
            );
        } else if f.tun_info {
            let _ = write!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                forward_name(dest.method),
                tun_info(dest.method),
                dest.weight,
                dest.active_conns,
                dest.inact_conns
            );
        } else {
            let _ = write!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                forward_name(dest.method),
                dest.weight,
                dest.active_conns,
                dest.inact_conns
            );
        }
        out.push('\n');
    }
}

/// The running services in listing order, each with the order of its real servers
/// (indices into `dests`): ipvsadm's sort of the running table, or with `--nosort`
/// configuration order and the kernel's list order (most recently added first).
fn ordered(v: &DirectorView, nosort: bool) -> Vec<(&ServiceView, Vec<usize>)> {
    let by_key: std::collections::HashMap<ServiceKey, &ServiceView> =
        v.services.iter().map(|s| (s.cfg.key, s)).collect();
    let mut out = Vec::new();
    if nosort {
        for k in &v.order {
            if let Some(svc) = by_key.get(k) {
                out.push((*svc, (0..svc.dests.len()).collect()));
            }
        }
    } else {
        // ipvsadm sorts what the kernel lists: the running services and real servers.
        let table = Config {
            services: v
                .services
                .iter()
                .map(|s| {
                    let mut c = VirtualServiceConfig::new(s.cfg.key);
                    c.real_servers = s
                        .dests
                        .iter()
                        .map(|d| RealServerConfig::new(d.dest.addr, d.dest.port))
                        .collect();
                    c
                })
                .collect(),
            ..Config::default()
        };
        for c in &ipvsadm_order(&table).services {
            let Some(svc) = by_key.get(&c.key) else {
                continue;
            };
            let order = c
                .real_servers
                .iter()
                .filter_map(|rs| {
                    svc.dests
                        .iter()
                        .position(|d| d.dest.addr == rs.addr && d.dest.port == rs.port)
                })
                .collect();
            out.push((*svc, order));
        }
    }
    // Services the configuration does not name (none in practice) go last.
    if out.len() < v.services.len() {
        for svc in &v.services {
            if !out.iter().any(|(s, _)| s.cfg.key == svc.cfg.key) {
                out.push((svc, (0..svc.dests.len()).collect()));
            }
        }
    }
    out
}

/// ipvsadm's `-L` with `opts`. An error is what ipvsadm prints on stderr before exiting
/// with status 1 (`-L -t VIP:PORT` of a service that does not exist: "No such service").
pub fn list(d: &Director, opts: &ListOptions, now: Instant) -> Result<String, String> {
    if needs_engine(opts) {
        let mut out = String::new();
        connections(&mut out, d, &opts.format, now);
        return Ok(out);
    }
    list_view(&DirectorView::of(d), opts)
}

/// Whether the listing `opts` asks for needs the engine itself (`-L -c` walks the
/// connection table) rather than a [`DirectorView`].
pub fn needs_engine(opts: &ListOptions) -> bool {
    matches!(opts.what, ListWhat::Connections)
}

/// [`list`] from a view, for every listing but `-L -c` (which lists nothing here; see
/// [`needs_engine`]).
pub fn list_view(v: &DirectorView, opts: &ListOptions) -> Result<String, String> {
    let f = &opts.format;
    let mut out = String::new();
    match opts.what {
        ListWhat::Connections => {}
        ListWhat::Timeout => {
            let t = &v.timeouts;
            let _ = writeln!(
                out,
                "Timeout (tcp tcpfin udp): {} {} {}",
                t.tcp, t.tcp_fin, t.udp
            );
        }
        ListWhat::Daemon => {}
        ListWhat::Service(key) => {
            let (svc, order) = ordered(v, f.nosort)
                .into_iter()
                .find(|(s, _)| s.cfg.key == key)
                .ok_or_else(|| "No such service".to_string())?;
            title(&mut out, f);
            service_entry(&mut out, svc, &order, f);
        }
        ListWhat::All => {
            let _ = writeln!(
                out,
                "IP Virtual Server version 1.2.1 (size={})",
                v.tables[0].buckets
            );
            title(&mut out, f);
            for (svc, order) in ordered(v, f.nosort) {
                service_entry(&mut out, svc, &order, f);
            }
        }
    }
    Ok(out)
}

/// The listing of `d` in format `f` (`exact`: `--exact` numbers): `rvs list`'s formats.
pub fn render(d: &Director, f: Format, exact: bool, now: Instant) -> String {
    let (what, format) = list_options(f, exact);
    list(d, &ListOptions { what, format }, now).unwrap_or_default()
}

/// What `rvs list`'s format `f` asks ipvsadm's listing for.
pub fn list_options(f: Format, exact: bool) -> (ListWhat, ListFormat) {
    let mut format = ListFormat {
        numeric: true,
        exact,
        ..ListFormat::default()
    };
    let mut what = ListWhat::All;
    match f {
        Format::Plain => {}
        Format::Stats => format.stats = true,
        Format::Rate => format.rate = true,
        Format::Thresholds => format.thresholds = true,
        Format::PersistentConn => format.persistent_conn = true,
        Format::Connections => what = ListWhat::Connections,
    }
    (what, format)
}

/// [`render`] from a view: every format but [`Format::Connections`] (None: ask the engine).
pub fn render_view(v: &DirectorView, f: Format, exact: bool) -> Option<String> {
    let (what, format) = list_options(f, exact);
    let opts = ListOptions { what, format };
    (!needs_engine(&opts)).then(|| list_view(v, &opts).unwrap_or_default())
}

/// The listing text `numeric` (what the daemon answers for `opts`, always numeric) as
/// ipvsadm prints it without `-n`: every address:port of the table (`-L`, `-L -t ...`)
/// and of the connection entries (`-L -c`) printed by ipvsadm 1.31's
/// `addrport_to_anyname()` with `names` (host and service names, numbers where there
/// are none), in the same columns: service names cut to 33 bytes and IPv4 real servers
/// to 28 as `print_service_entry()` cuts them, padded as its printf formats pad them.
/// With `-n`, and for `--timeout` and `--daemon`, the text is returned as it is.
pub fn name_listing(numeric: &str, opts: &ListOptions, names: &dyn Names) -> String {
    if opts.format.numeric {
        return numeric.to_string();
    }
    if matches!(opts.what, ListWhat::Timeout | ListWhat::Daemon) {
        return numeric.to_string();
    }
    // The protocol of the service line above: real servers are named by it (FWM
    // services are TCP, as `ipvsadm -f` adds them).
    let mut proto = 6u8;
    let padded = opts.format.stats || opts.format.rate;
    let mut out = String::with_capacity(numeric.len());
    for (i, line) in numeric.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let named = if opts.what == ListWhat::Connections {
            name_conn_row(line, names)
        } else if let Some(rest) = line.strip_prefix("  -> ") {
            name_dest(rest, proto, names)
        } else {
            let first = line.split(' ').next().unwrap_or("");
            match first {
                "FWM" => {
                    proto = 6;
                    None
                }
                "TCP" | "UDP" | "SCTP" => {
                    proto = match first {
                        "TCP" => 6,
                        "UDP" => 17,
                        _ => 132,
                    };
                    name_service(line, first, proto, padded, names)
                }
                _ => None,
            }
        };
        out.push_str(named.as_deref().unwrap_or(line));
    }
    out
}

/// A numeric `a.b.c.d:port` / `[v6]:port` read back.
fn parse_addrport(s: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let addr = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => IpAddr::V6(v6.parse().ok()?),
        None => IpAddr::V4(host.parse().ok()?),
    };
    Some((addr, port))
}

/// Cut to `max` bytes on a character boundary (`name[max] = '\0'`).
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A service line: `svc_name` (`"%-4s %s"`, cut to 33 bytes unless IPv6) renamed, the
/// rest of the line kept; with `--stats` / `--rate` the name is padded to 33 (`%-33s`).
fn name_service(
    line: &str,
    pname: &str,
    proto: u8,
    padded: bool,
    names: &dyn Names,
) -> Option<String> {
    let after = line[pname.len()..].trim_start_matches(' ');
    let start = line.len() - after.len();
    let token = after.split(' ').next()?;
    let (addr, port) = parse_addrport(token)?;
    let old_len = start + token.len();
    let mut name = format!("{pname:<4} {}", addrport_name(addr, port, proto, names));
    if addr.is_ipv4() {
        name = cut(name, 33);
    }
    Some(if padded {
        let tail = line.get(old_len.max(33)..).unwrap_or("");
        format!("{name:<33}{tail}")
    } else {
        format!("{name}{}", &line[old_len..])
    })
}

/// A real-server line after `  -> `: `%-28s` of the name (IPv4 cut to 28 bytes), the
/// columns after it kept.
fn name_dest(rest: &str, proto: u8, names: &dyn Names) -> Option<String> {
    let token = rest.split(' ').next()?;
    let (addr, port) = parse_addrport(token)?;
    let mut dname = addrport_name(addr, port, proto, names);
    if addr.is_ipv4() {
        dname = cut(dname, 28);
    }
    let tail = rest.get(token.len().max(28)..).unwrap_or("");
    Some(format!("  -> {dname:<28}{tail}"))
}

/// A `-c` row (`"%-3s %-6s %-11s %-18s %-18s %s"`) with its three addresses named by the
/// row's protocol (`IP` and others: no service names).
fn name_conn_row(line: &str, names: &dyn Names) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let [pro, expire, state, c, v, d] = w[..] else {
        return None;
    };
    let proto = match pro {
        "TCP" => 6,
        "UDP" => 17,
        "SCTP" => 132,
        _ => 0,
    };
    let name = |s: &str| parse_addrport(s).map(|(a, p)| addrport_name(a, p, proto, names));
    let (c, v, d) = (name(c)?, name(v)?, name(d)?);
    Some(format!(
        "{pro:<3} {expire:<6} {state:<11} {c:<18} {v:<18} {d}"
    ))
}

/// `ip_vs_proto_name()`: the protocol column of `/proc/net/ip_vs_conn`.
fn proto_name(p: u8) -> String {
    match p {
        0 => "IP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => format!("IP_{n}"),
    }
}

/// One `-L -c` entry as listed: copied out of the engine with the seconds it has left
/// (the daemon copies them on the worker in bounded pieces, see
/// [`ConnTable::slots_from`](rvs_core::conn::table::ConnTable::slots_from), and formats
/// them on a control thread with [`connection_rows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRow {
    /// IP protocol number.
    pub protocol: u8,
    /// The state's name (`ESTABLISHED`, `NONE` for a template, ...).
    pub state: &'static str,
    /// Whole seconds left.
    pub secs: u64,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Virtual address and port.
    pub virt: (IpAddr, u16),
    /// Real server address and port.
    pub dest: (IpAddr, u16),
}

impl ConnRow {
    /// The row of a live entry at `now`, or None once it expired.
    pub fn of<A: ConnAddr>(c: &Conn<A>, now: Instant) -> Option<ConnRow>
    where
        IpAddr: From<A>,
    {
        (c.expires > now).then(|| ConnRow {
            protocol: c.protocol,
            state: c.state_name(),
            secs: c.remaining_secs(now),
            client: (c.caddr.into(), c.cport),
            virt: (c.vaddr.into(), c.vport),
            dest: (c.daddr.into(), c.dport),
        })
    }
}

/// One `print_conn()` row (`"%-3s %-6s %-11s %-18s %-18s %s"`, expiry `%02d:%02d` in whole
/// seconds left), with its newline.
fn conn_row(out: &mut String, r: &ConnRow) {
    let expire = format!("{:02}:{:02}", r.secs / 60, r.secs % 60);
    let _ = writeln!(
        out,
        "{:<3} {expire:<6} {:<11} {:<18} {:<18} {}",
        proto_name(r.protocol),
        r.state,
        addrport(r.client.0, r.client.1),
        addrport(r.virt.0, r.virt.1),
        addrport(r.dest.0, r.dest.1),
    );
}

/// `list_conn()`'s title lines.
pub fn connection_title(out: &mut String, f: &ListFormat) {
    out.push_str("IPVS connection entries\n");
    if f.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
}

/// `list_conn()`'s rows, one per entry (templates included).
pub fn connection_rows<'a>(out: &mut String, rows: impl IntoIterator<Item = &'a ConnRow>) {
    for r in rows {
        conn_row(out, r);
    }
}

/// `list_conn()`: the title, then one row per entry, templates included.
fn connections(out: &mut String, d: &Director, f: &ListFormat, now: Instant) {
    connection_title(out, f);
    let v4 = d
        .table_v4()
        .iter()
        .filter_map(|(_, c)| ConnRow::of(&c, now));
    let v6 = d
        .table_v6()
        .iter()
        .filter_map(|(_, c)| ConnRow::of(&c, now));
    for row in v4.chain(v6) {
        conn_row(out, &row);
    }
}

#[cfg(test)]
mod tests;
