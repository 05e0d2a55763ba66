//! The rules format: `ipvsadm -S -n` output and `ipvsadm -R` input.
//!
//! [`save`] follows ipvsadm 1.31 `print_service_entry()` with `FMT_RULE | FMT_NUMERIC`
//! and `print_tunnel_rule()`, in the order `list_all()` prints: services sorted by
//! libipvs `ipvs_cmp_services()`, each service's real servers by `ipvs_cmp_dests()`,
//! both through glibc's `qsort()`. [`parse_rules`] splits lines as `config_stream_read()`
//! does and runs each through the command-line parser, then applies it to the
//! configuration as the kernel would.

use core::ops::Range;
use std::net::IpAddr;

use rvs_core::model::{
    Config, ConfigError, Family, ForwardMethod, LocalPool, Protocol, RealServerConfig, SchedFlags,
    SchedulerKind, ServiceKey, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig, mask_v4,
};

use super::Command;
use super::cli;
use super::libc::{glibc_qsort, inet_ntop6};
use super::names::{Names, NoNames, addrport_name};
use crate::diag::{Diagnostic, Severity};

/// `addrport_to_anyname()` with `FMT_NUMERIC`: `a.b.c.d:port` or `[v6]:port`.
fn addrport(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{}]:{port}", inet_ntop6(&a)),
    }
}

fn addr_text(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => inet_ntop6(&a),
    }
}

/// The service part of both `-A` and `-a` lines (`svc_name` in `print_service_entry()`).
fn svc_name(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("-f {mark}"),
            Family::V6 => format!("-f {mark} -6"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            // option_from_protocol()
            let opt = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{opt} {}", addrport(addr, port))
        }
    }
}

/// `print_sched_flags()`: sh and mh name their flags, other schedulers print flag-N.
/// rvs adds `flag-3` for sh and mh, which ipvsadm silently omits.
fn sched_flags(sched: SchedulerKind, flags: SchedFlags) -> String {
    let mut names: Vec<&str> = Vec::new();
    let f = flags.0;
    match sched {
        SchedulerKind::Sh | SchedulerKind::Mh => {
            let (fb, port) = if sched == SchedulerKind::Sh {
                ("sh-fallback", "sh-port")
            } else {
                ("mh-fallback", "mh-port")
            };
            if f & SchedFlags::FLAG_1 != 0 {
                names.push(fb);
            }
            if f & SchedFlags::FLAG_2 != 0 {
                names.push(port);
            }
            if f & SchedFlags::FLAG_3 != 0 {
                names.push("flag-3");
            }
        }
        _ => {
            for (bit, n) in [
                (SchedFlags::FLAG_1, "flag-1"),
                (SchedFlags::FLAG_2, "flag-2"),
                (SchedFlags::FLAG_3, "flag-3"),
            ] {
                if f & bit != 0 {
                    names.push(n);
                }
            }
        }
    }
    names.join(",")
}

/// `tun_flags_opts[]`.
fn csum_opt(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::NoCsum => "--tun-nocsum",
        TunnelCsum::Csum => "--tun-csum",
        TunnelCsum::RemCsum => "--tun-remcsum",
    }
}

fn service_line(out: &mut String, svc: &VirtualServiceConfig, synproxy: bool) {
    let name = svc_name(&svc.key);
    out.push_str(&format!("-A {name} -s {}", svc.scheduler.name()));
    if let Some(p) = svc.persistence {
        out.push_str(&format!(" -p {}", p.timeout));
        match svc.key.family() {
            Family::V4 if p.prefix != 32 => {
                let mask = std::net::Ipv4Addr::from(mask_v4(p.prefix));
                out.push_str(&format!(" -M {mask}"));
            }
            Family::V6 if p.prefix != 128 => out.push_str(&format!(" -M {}", p.prefix)),
            _ => {}
        }
    }
    // (` --pe NAME` would come here: the model has no persistence engine.)
    if svc.one_packet {
        out.push_str(" -o");
    }
    // DPVS's switch as its parser reads it (`-j enable`); DPVS's own `-S` leaves it out
    // (`print_service_entry()` writes `synproxy` only in listings), which loses it on
    // restore: rvs writes it.
    if synproxy {
        out.push_str(" -j enable");
    }
    if svc.flags.0 & (SchedFlags::FLAG_1 | SchedFlags::FLAG_2 | SchedFlags::FLAG_3) != 0 {
        out.push_str(" -b ");
        out.push_str(&sched_flags(svc.scheduler, svc.flags));
    }
    out.push('\n');
}

fn server_line(out: &mut String, name: &str, rs: &RealServerConfig) {
    let d = addrport(rs.addr, rs.port);
    let w = rs.weight;
    match rs.method {
        ForwardMethod::Masq => out.push_str(&format!("-a {name} -r {d} -m -w {w}")),
        ForwardMethod::DirectRoute => out.push_str(&format!("-a {name} -r {d} -g -w {w}")),
        ForwardMethod::FullNat => out.push_str(&format!("-a {name} -r {d} --fullnat -w {w}")),
        ForwardMethod::Tunnel { kind, csum } => match kind {
            TunnelKind::Ipip => {
                out.push_str(&format!("-a {name} -r {d} -i -w {w} --tun-type ipip"));
            }
            TunnelKind::Gue { port } => out.push_str(&format!(
                "-a {name} -r {d} -i -w {w} --tun-type gue --tun-port {port} {}",
                csum_opt(csum)
            )),
            TunnelKind::Gre => out.push_str(&format!(
                "-a {name} -r {d} -i -w {w} --tun-type gre {}",
                csum_opt(csum)
            )),
        },
    }
    if rs.u_threshold != 0 {
        out.push_str(&format!(" -x {}", rs.u_threshold));
    }
    if rs.l_threshold != 0 {
        out.push_str(&format!(" -y {}", rs.l_threshold));
    }
    out.push('\n');
}

/// The address as libipvs compares it: four host-order words (IPv4 in the first).
fn words(addr: IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            core::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// `ntohl(a) - ntohl(b)` as libipvs computes it: unsigned subtraction read as `int`.
fn addr_cmp(a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if a.is_ipv6() {
        for i in 0..4 {
            let r = wa[i].wrapping_sub(wb[i]) as i32;
            if r != 0 {
                return r;
            }
        }
        0
    } else {
        wa[0].wrapping_sub(wb[0]) as i32
    }
}

/// libipvs `ipvs_cmp_services()`: fwmark, family (`AF_INET` 2 < `AF_INET6` 10),
/// protocol (fwmark services carry TCP, as `-f` sets), address, port — each a wrapping
/// difference, so 200.0.0.1 sorts before 10.0.0.1 (the difference overflows `int`).
fn cmp_services(a: &VirtualServiceConfig, b: &VirtualServiceConfig) -> i32 {
    fn fields(k: &ServiceKey) -> (u32, i32, i32, IpAddr, i32) {
        let af = |f: Family| if f == Family::V4 { 2 } else { 10 };
        match *k {
            ServiceKey::Fwmark { mark, family } => {
                let zero = if family == Family::V4 {
                    IpAddr::from([0u8; 4])
                } else {
                    IpAddr::from([0u8; 16])
                };
                (mark, af(family), 6, zero, 0)
            }
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (
                0,
                af(Family::of(&addr)),
                i32::from(protocol.number()),
                addr,
                i32::from(port),
            ),
        }
    }
    let (fa, aa, pa, ad_a, po_a) = fields(&a.key);
    let (fb, ab, pb, ad_b, po_b) = fields(&b.key);
    let r = fa.wrapping_sub(fb) as i32;
    if r != 0 {
        return r;
    }
    if aa != ab {
        return aa - ab;
    }
    if pa != pb {
        return pa - pb;
    }
    let r = addr_cmp(ad_a, ad_b);
    if r != 0 {
        return r;
    }
    po_a - po_b
}

/// libipvs `ipvs_cmp_dests()`: address (by the first server's family), then port.
fn cmp_dests(a: &RealServerConfig, b: &RealServerConfig) -> i32 {
    let r = addr_cmp(a.addr, b.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// The configuration with services and real servers in the order `ipvsadm -L` and
/// `ipvsadm -S` print them (what `parse_rules(&save(c), ..)` gives back).
pub fn ipvsadm_order(config: &Config) -> Config {
    let mut c = config.clone();
    glibc_qsort(&mut c.services, &cmp_services);
    for s in &mut c.services {
        glibc_qsort(&mut s.real_servers, &cmp_dests);
    }
    c
}

/// `ipvsadm -S -n`, byte for byte, for the configuration as the kernel would hold it
/// (see the module documentation for rvs's extensions).
pub fn save(config: &Config) -> String {
    save_in_order(&ipvsadm_order(config))
}

/// Like [`save`] but in the configuration's own order of services and real servers, so
/// that [`parse_rules`] gives the same configuration back (real-server order matters to
/// schedulers; ipvsadm -S does not keep it).
pub fn save_in_order(config: &Config) -> String {
    let mut out = String::new();
    if config.local_pool != LocalPool::default() {
        let p = &config.local_pool;
        out.push_str(&format!(
            "--local-pool {}-{}",
            p.port_range.0, p.port_range.1
        ));
        for a in &p.addrs {
            out.push(' ');
            out.push_str(&addr_text(*a));
        }
        out.push('\n');
    }
    if config.timeouts != Timeouts::default() {
        let t = config.timeouts;
        out.push_str(&format!("--set {} {} {}\n", t.tcp, t.tcp_fin, t.udp));
    }
    for svc in &config.services {
        service_line(&mut out, svc, synproxy_on(config, svc));
        let name = svc_name(&svc.key);
        for rs in &svc.real_servers {
            server_line(&mut out, &name, rs);
        }
    }
    out
}

/// The refusal of a direct-routing or tunnelling real server in a SYN-proxied service
/// (rvs: the proxy translates the real server's sequence numbers in its replies, which
/// these methods send past the director; docs/synproxy.md).
const SYNPROXY_METHOD: &str =
    "SYN proxy needs masquerading or FullNAT real servers (-m or --fullnat)";

/// Whether the SYN proxy can carry a real server of this method.
fn proxy_can_forward(m: ForwardMethod) -> bool {
    m.carries_synproxy()
}

/// Whether `-S` writes `-j enable` for a service: the proxy runs for it (a TCP or
/// firewall-mark service whose real servers it can serve; `[synproxy] all` from another
/// format skips the others, and writing `-j enable` for them would be refused on restore).
fn synproxy_on(config: &Config, svc: &VirtualServiceConfig) -> bool {
    config.synproxy.applies(svc)
}

/// Put a service in the SYN proxy's list, or take it out.
fn set_synproxy(config: &mut Config, key: &ServiceKey, on: bool) {
    let list = &mut config.synproxy.services;
    list.retain(|k| k != key);
    if on {
        list.push(*key);
    }
}

/// Apply one command as the kernel would (see [`super::apply`]).
pub(crate) fn apply(config: &mut Config, command: &Command) -> Result<(), String> {
    let find = |config: &Config, k: &ServiceKey| config.services.iter().position(|s| s.key == *k);
    match command {
        Command::AddService {
            service,
            pe,
            synproxy,
        } => {
            if pe.is_some() {
                return Err("persistence engines (--pe) are not supported by rvs".into());
            }
            if find(config, &service.key).is_some() {
                return Err("Service already exists".into());
            }
            config.services.push(service.clone());
            set_synproxy(config, &service.key, *synproxy);
        }
        Command::EditService {
            service,
            pe,
            synproxy,
        } => {
            if pe.is_some() {
                return Err("persistence engines (--pe) are not supported by rvs".into());
            }
            let i = find(config, &service.key).ok_or("No such service")?;
            if *synproxy
                && config.services[i]
                    .real_servers
                    .iter()
                    .any(|r| !proxy_can_forward(r.method))
            {
                return Err(SYNPROXY_METHOD.into());
            }
            let s = &mut config.services[i];
            s.scheduler = service.scheduler;
            s.flags = service.flags;
            s.persistence = service.persistence;
            s.one_packet = service.one_packet;
            set_synproxy(config, &service.key, *synproxy);
        }
        Command::DeleteService(k) => {
            let i = find(config, k).ok_or("No such service")?;
            config.services.remove(i);
            set_synproxy(config, k, false);
        }
        Command::Clear => {
            config.services.clear();
            config.synproxy.services.clear();
        }
        Command::Zero(k) => {
            if let Some(k) = k {
                find(config, k).ok_or("No such service")?;
            }
        }
        Command::SetTimeouts(t) => {
            // ipvs_set_timeout(): 0 leaves a value unchanged.
            let c = &mut config.timeouts;
            for (dst, src) in [
                (&mut c.tcp, t.tcp),
                (&mut c.tcp_fin, t.tcp_fin),
                (&mut c.udp, t.udp),
            ] {
                if src != 0 {
                    *dst = src;
                }
            }
        }
        Command::LocalPool(p) => config.local_pool = p.clone(),
        Command::AddServer { service, server } => {
            let i = find(config, service).ok_or("Service not defined")?;
            if config.synproxy.services.contains(service) && !proxy_can_forward(server.method) {
                return Err(SYNPROXY_METHOD.into());
            }
            let rss = &mut config.services[i].real_servers;
            if rss
                .iter()
                .any(|r| r.addr == server.addr && r.port == server.port)
            {
                return Err("Destination already exists".into());
            }
            rss.push(*server);
        }
        Command::EditServer { service, server } => {
            let i = find(config, service).ok_or("Service not defined")?;
            if config.synproxy.services.contains(service) && !proxy_can_forward(server.method) {
                return Err(SYNPROXY_METHOD.into());
            }
            let rs = config.services[i]
                .real_servers
                .iter_mut()
                .find(|r| r.addr == server.addr && r.port == server.port)
                .ok_or("No such destination")?;
            *rs = *server;
        }
        Command::DeleteServer {
            service,
            addr,
            port,
        } => {
            let i = find(config, service).ok_or("Service not defined")?;
            let rss = &mut config.services[i].real_servers;
            let j = rss
                .iter()
                .position(|r| r.addr == *addr && r.port == *port)
                .ok_or("No such destination")?;
            rss.remove(j);
        }
        Command::Restore
        | Command::Save { .. }
        | Command::List(_)
        | Command::StartDaemon(_)
        | Command::StopDaemon { .. }
        | Command::Help
        | Command::Version => {
            return Err("not a configuration command: a rules file holds -A -E -D -C -a -e -d -Z --set and --local-pool".into());
        }
    }
    Ok(())
}

/// The words of one line, as `config_stream_read()` splits them: separated by space,
/// tab and CR; the word `ipvsadm` is dropped wherever it stands; rvs ends the line at a
/// word starting with `#`.
fn split_words(line: &str, base: usize) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b' ' | b'\t' | b'\r') {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r') {
            i += 1;
        }
        let w = &line[start..i];
        if w.starts_with('#') {
            break;
        }
        if w != "ipvsadm" {
            out.push((w.to_string(), base + start..base + i));
        }
    }
    out
}

/// The command lines of `ipvsadm -R` input, as `config_stream_read()` splits them (see
/// [`split_words`]); blank and comment-only lines give none. For callers that run each
/// line as ipvsadm's `restore_table()` does.
pub fn restore_lines(text: &str) -> Vec<Vec<String>> {
    text.split('\n')
        .map(|l| {
            split_words(l, 0)
                .into_iter()
                .map(|(w, _)| w)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Read `ipvsadm -R` input: one command per line, each parsed as ipvsadm's command line
/// and applied in order (services and real servers added in file order). Every problem
/// is reported, located at the word ipvsadm blames; then the result is validated.
/// Numbers only: a host or service name is refused ([`parse_rules_with`] resolves them).
pub fn parse_rules(text: &str, path: &str) -> Result<Config, Vec<Diagnostic>> {
    parse_rules_with(text, path, &NoNames)
}

/// [`parse_rules`] with host and service names looked up in `names`, as `ipvsadm -R`
/// looks them up (rule files saved by `ipvsadm -S` without `-n` hold names).
pub fn parse_rules_with(
    text: &str,
    path: &str,
    names: &dyn Names,
) -> Result<Config, Vec<Diagnostic>> {
    rules(text, path, names, false).map(|(c, _)| c)
}

/// What the kernel answers a command it refuses (libipvs `ipvs_strerror()`), as opposed to
/// a command rvs cannot run at all.
const KERNEL_REFUSALS: &[&str] = &[
    "Service already exists",
    "No such service",
    "Service not defined",
    "Destination already exists",
    "No such destination",
];

/// A rules file as `ipvsadm -R < FILE` runs it (the daemon's and `check-config`'s reading):
/// ipvsadm 1.31 `restore_table()` prints the kernel's refusal of a line ("Destination
/// already exists", ...) and goes on with the next, so such a line is a warning here and
/// is skipped; a line ipvsadm cannot parse (`fail(2, ...)`) is an error. The warnings come
/// with the configuration.
pub fn read_rules(
    text: &str,
    path: &str,
    names: &dyn Names,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    rules(text, path, names, true)
}

fn rules(
    text: &str,
    path: &str,
    names: &dyn Names,
    lenient: bool,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut warnings = Vec::new();
    let mut config = Config::default();
    let mut diags = Vec::new();
    let mut svc_spans: Vec<(ServiceKey, Range<usize>)> = Vec::new();
    let mut rs_spans: Vec<(ServiceKey, IpAddr, u16, Range<usize>)> = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        let base = offset;
        offset += line.len() + 1;
        let words = split_words(line, base);
        if words.is_empty() {
            continue;
        }
        let mut args = vec!["ipvsadm".to_string()];
        args.extend(words.iter().map(|(w, _)| w.clone()));
        let whole = words[0].1.start..words[words.len() - 1].1.end;
        let span_of = |i: Option<usize>| match i {
            Some(i) if i >= 1 && i <= words.len() => words[i - 1].1.clone(),
            _ => whole.clone(),
        };
        let err = |span: Range<usize>, msg: &str| {
            Diagnostic::new(text, path, span, Severity::Error, msg.trim_end(), None)
        };
        match cli::parse(&args, names, &mut Vec::new()) {
            Err(e) => diags.push(err(span_of(e.arg_index), &e.message)),
            Ok((cmd, w)) => {
                let server_cmd = matches!(
                    &cmd,
                    Command::AddServer { .. }
                        | Command::EditServer { .. }
                        | Command::DeleteServer { .. }
                );
                let on_server = span_of(w.server.or(w.service).or(Some(w.command)));
                let on_service = span_of(w.service.or(Some(w.command)));
                let blame = if server_cmd {
                    on_server
                } else {
                    on_service.clone()
                };
                match apply(&mut config, &cmd) {
                    Err(m) => {
                        // Service errors point at the service, the others at the server.
                        let at = if m == "Service not defined" {
                            on_service
                        } else {
                            blame
                        };
                        if lenient && KERNEL_REFUSALS.contains(&m.as_str()) {
                            warnings.push(Diagnostic::new(
                                text,
                                path,
                                at,
                                Severity::Warning,
                                format!(
                                    "{m}: `ipvsadm -R` prints this and goes on with the next \
                                     line; rvs skips this line too"
                                ),
                                None,
                            ));
                        } else {
                            diags.push(err(at, &m));
                        }
                    }
                    Ok(()) => match &cmd {
                        Command::AddService { service, .. } => {
                            svc_spans.push((service.key, blame));
                        }
                        Command::AddServer { service, server } => {
                            rs_spans.push((*service, server.addr, server.port, blame));
                        }
                        _ => {}
                    },
                }
            }
        }
    }
    if diags.is_empty()
        && let Err(errs) = config.validate()
    {
        for e in errs {
            let svc_span = |k: &ServiceKey| {
                svc_spans
                    .iter()
                    .rev()
                    .find(|(s, _)| s == k)
                    .map(|(_, r)| r.clone())
            };
            let span = match &e {
                ConfigError::NoLocalPool(a) | ConfigError::FamilyMismatch { addr: a, .. } => {
                    rs_spans
                        .iter()
                        .rev()
                        .find(|r| r.1 == *a)
                        .map(|r| r.3.clone())
                }
                ConfigError::ThresholdOrder { upper, lower } => config
                    .services
                    .iter()
                    .flat_map(|s| s.real_servers.iter().map(move |r| (s.key, r)))
                    .find(|(_, r)| r.u_threshold == *upper && r.l_threshold == *lower)
                    .and_then(|(k, r)| {
                        rs_spans
                            .iter()
                            .rev()
                            .find(|x| x.0 == k && x.1 == r.addr && x.2 == r.port)
                            .map(|x| x.3.clone())
                    }),
                ConfigError::DuplicateService(k)
                | ConfigError::ZeroPortNonPersistent(k)
                | ConfigError::OnePacketTcp(k) => svc_span(k),
                _ => None,
            };
            diags.push(Diagnostic::new(
                text,
                path,
                span.unwrap_or(0..0),
                Severity::Error,
                e.to_string(),
                None,
            ));
        }
    }
    if diags.is_empty() {
        Ok((config, warnings))
    } else {
        Err(diags)
    }
}

/// `-R` input with every host and service name that `names` resolves replaced by its
/// number, word by word; everything else (spacing, comments, lines that do not parse)
/// is kept byte for byte, so that a numeric reader ([`parse_rules`]) then reads what
/// `ipvsadm -R` would have read. Lines are refused by the reader, not here.
pub fn numeric_rules(text: &str, names: &dyn Names) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let words = split_words(line, 0);
        let mut args = vec!["ipvsadm".to_string()];
        args.extend(words.iter().map(|(w, _)| w.clone()));
        let mut rewrites = Vec::new();
        let _ = cli::parse(&args, names, &mut rewrites);
        rewrites.sort_by_key(|r| r.0);
        let mut at = 0;
        for (w, new) in rewrites {
            let span = &words[w - 1].1;
            out.push_str(&line[at..span.start]);
            out.push_str(&new);
            at = span.end;
        }
        out.push_str(&line[at..]);
    }
    out
}

/// `ipvsadm -S` without `-n`, from the text of `ipvsadm -S -n` (what [`save`] writes):
/// each virtual service address (`-t`, `-u`, `--sctp-service`) and real server (`-r`)
/// printed by `addrport_to_anyname()` with `names` (`host:service`, numbers where there
/// is no name; real servers take the service's protocol, TCP for fwmark services as the
/// kernel stores them). Everything else is kept.
pub fn name_save(text: &str, names: &dyn Names) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let words: Vec<&str> = line.split(' ').collect();
        let mut proto = 6u8;
        let mut named: Vec<String> = Vec::with_capacity(words.len());
        for (j, w) in words.iter().enumerate() {
            let prev = if j > 0 { words[j - 1] } else { "" };
            let renamed = match prev {
                "-t" | "-u" | "--sctp-service" => {
                    proto = match prev {
                        "-t" => 6,
                        "-u" => 17,
                        _ => 132,
                    };
                    numeric_addrport(w).map(|(a, p)| addrport_name(a, p, proto, names))
                }
                "-r" => numeric_addrport(w).map(|(a, p)| addrport_name(a, p, proto, names)),
                _ => None,
            };
            named.push(renamed.unwrap_or_else(|| w.to_string()));
        }
        out.push_str(&named.join(" "));
    }
    out
}

/// An `addrport_to_anyname()` with `FMT_NUMERIC` text read back: `a.b.c.d:port` or
/// `[v6]:port`.
pub(crate) fn numeric_addrport(s: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let addr = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => IpAddr::V6(v6.parse().ok()?),
        None => IpAddr::V4(host.parse().ok()?),
    };
    Some((addr, port))
}
