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
//!
//! [conn_table]
//! max = 0                           # entries, 0 = the engine's default
//! when_full = "drop-new"            # drop-new | evict-embryonic
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
//! protocol = "tcp"                  # tcp | udp [any]
//! destination = "10.1.0.100"        # address or prefix
//! ports = "8000-8100"               # a port or "LO-HI" [any]
//!
//! [[service]]
//! vip = "10.1.0.100"                # either vip (+ protocol, port) ...
//! protocol = "tcp"                  # tcp | udp [tcp]
//! port = 80                         # 0 = all ports (persistent services only)
//! # fwmark = 1                      # ... or fwmark (+ family = "ipv4" | "ipv6" [ipv4])
//! scheduler = "wlc"                 # the 14 kernel schedulers [wlc]
//! flags = ["sh-port"]               # flag-1..3, sh-/mh-fallback, sh-/mh-port [none]
//! persistence = { timeout = 360, prefix = 24 }   # [none]; timeout [360], prefix [/32, /128]
//! one_packet = false                # UDP and fwmark services only
//! mh_table_size = 4093              # a prime of MH_TABLE_SIZES
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
//! Every table refuses unknown keys. Errors — TOML syntax, unknown keys, values of the wrong
//! type or out of range, and [`Config::validate`]'s findings — come back as
//! [`Diagnostic`]s located at the key or value they blame. This module does no I/O.

use core::ops::Range;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use rvs_core::model::{
    Config, ConfigError, Family, ForwardMethod, FwmarkRule, LocalPool, Persistence, Prefix,
    Protocol, RealServerConfig, SchedFlags, SchedulerKind, ServiceKey, Switches, TableFullPolicy,
    Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Diagnostic, Severity};
use crate::locate::{self, RealServerPart, ServicePart, Target};
use crate::lvs::Vip;

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
}

// ---------------------------------------------------------------------------------------
// The serde side: the file as written, every value with its span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    timeouts: Option<RawTimeouts>,
    switches: Option<RawSwitches>,
    conn_table: Option<RawConnTable>,
    fullnat: Option<RawFullNat>,
    nat_router: Option<Spanned<RawVip>>,
    #[serde(default)]
    vip: Vec<Spanned<RawVip>>,
    #[serde(default)]
    fwmark_rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnTable {
    max: Option<Int>,
    when_full: Option<Str>,
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
    ports: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    vip: Option<Str>,
    protocol: Option<Str>,
    port: Option<Int>,
    fwmark: Option<Int>,
    family: Option<Str>,
    scheduler: Option<Str>,
    flags: Option<Vec<Str>>,
    persistence: Option<Spanned<RawPersistence>>,
    one_packet: Option<Spanned<bool>>,
    mh_table_size: Option<Int>,
    method: Option<Str>,
    tunnel: Option<Spanned<RawTunnel>>,
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
    address: Str,
    port: Option<Int>,
    weight: Option<Int>,
    u_threshold: Option<Int>,
    l_threshold: Option<Int>,
    method: Option<Str>,
    tunnel: Option<Spanned<RawTunnel>>,
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

const PROTOCOLS: &[(&str, Protocol)] = &[("tcp", Protocol::Tcp), ("udp", Protocol::Udp)];
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
    if let Some(c) = &raw.conn_table {
        if let Some(v) = &c.max {
            config.conn_table_max = cx.int(v, 0, i64::MAX, "table size").unwrap_or(0) as usize;
        }
        if let Some(v) = &c.when_full {
            config.table_full = cx
                .choice(v, "table-full policy", TABLE_FULL)
                .unwrap_or_default();
        }
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
    let nat_router = raw.nat_router.as_ref().and_then(|v| vip(&mut cx, v));
    let mut vips: Vec<Vip> = Vec::new();
    let mut vip_lines: HashMap<IpAddr, Span> = HashMap::new();
    for v in &raw.vip {
        if let Some(x) = vip(&mut cx, v) {
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
    for s in &raw.service {
        if let Some((svc, sp)) = service(&mut cx, s) {
            config.services.push(svc);
            spans.push(sp);
        }
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
    Ok(NativeConf {
        config,
        vips,
        nat_router,
    })
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

fn vip(cx: &mut Cx<'_>, v: &Spanned<RawVip>) -> Option<Vip> {
    let r = v.get_ref();
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
    let (addr, len) = dst?;
    Some(FwmarkRule {
        protocol: protocol?,
        dst: Prefix { addr, len },
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

fn service(cx: &mut Cx<'_>, s: &Spanned<RawService>) -> Option<(VirtualServiceConfig, SvcSpans)> {
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
        servers: Vec::new(),
    };
    if let Some(v) = &r.scheduler {
        svc.scheduler = cx
            .choice(v, "scheduler", &SchedulerKind::ALL.map(|k| (k.name(), k)))
            .unwrap_or_default();
        spans.mh = v.span();
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
    for rs in &r.real_server {
        let raw = rs.get_ref();
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
    (cx.errors.len() == errors_before).then_some((svc, spans))
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
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
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
    let _ = write!(
        out,
        "\n[conn_table]\nmax = {}\nwhen_full = \"{when_full}\"\n",
        c.conn_table_max
    );
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
    for v in &conf.vips {
        out.push_str("\n[[vip]]\n");
        write_vip(&mut out, v);
    }
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
        if svc.mh_table_size != VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE
            || svc.scheduler == SchedulerKind::Mh
        {
            let _ = writeln!(out, "mh_table_size = {}", svc.mh_table_size);
        }
        for rs in &svc.real_servers {
            // Indented under its service, as people write it.
            let mut block = format!(
                "[[service.real_server]]\naddress = {}\nport = {}\nweight = {}\n",
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
            out.push('\n');
            for line in block.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
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
