//! Writers for the other formats `rvs convert` produces: keepalived.conf
//! ([`emit_keepalived`]) and Piranha's lvs.cf ([`emit_lvs_cf`]).
//!
//! Each writer either produces a file that the matching parser ([`crate::parse_keepalived`],
//! [`crate::parse_lvs_cf`]) reads back to the same [`Config`], or refuses with a [`Lossy`]
//! naming everything the format cannot say (FullNAT in keepalived.conf, mixed forwarding
//! methods or scheduler flags in lvs.cf, switches in either). Nothing is dropped silently,
//! and nothing is invented: a service address needs its VIP (device, prefix) from the
//! caller where the format asks for one. Health checks, VRRP and failover settings are not
//! part of [`Config`] and are not written; the VIPs go into a minimal `vrrp_instance` for
//! keepalived.conf and into each `virtual`'s `address` for lvs.cf. No I/O here.

use core::fmt;
use core::time::Duration;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use rvs_core::health::{
    CheckKind, CheckSpec, DnsType, Expect, HealthConfig, OnFailure, RealServerHealth,
};

use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, Protocol, SchedFlags, ServiceKey,
    Switches, TableFullPolicy, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig, mask_v4,
    sock,
};

use crate::keepalived::KeepalivedConf;
use crate::lvs::Vip;

/// A configuration that a format cannot express without losing something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lossy {
    /// The format that was asked for: `keepalived.conf` or `lvs.cf`.
    pub format: &'static str,
    /// What cannot be expressed, one sentence each, in configuration order.
    pub reasons: Vec<String>,
}

impl fmt::Display for Lossy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cannot express this configuration:", self.format)?;
        for r in &self.reasons {
            write!(f, "\n  - {r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Lossy {}

struct Refusals {
    format: &'static str,
    reasons: Vec<String>,
}

impl Refusals {
    fn new(format: &'static str, config: &Config) -> Refusals {
        let mut r = Refusals {
            format,
            reasons: Vec::new(),
        };
        if let Err(errs) = config.validate() {
            for e in errs {
                r.push(format!("the configuration is invalid: {e}"));
            }
        }
        r
    }

    fn push(&mut self, s: impl Into<String>) {
        self.reasons.push(s.into());
    }

    /// The settings neither keepalived.conf nor lvs.cf has a key for.
    fn director_settings(&mut self, c: &Config) {
        let what = if self.format == "lvs.cf" {
            "lvs.cf"
        } else {
            "keepalived.conf"
        };
        let (s, d) = (c.switches, Switches::default());
        let mut changed = Vec::new();
        for (name, v, dv) in [
            (
                "expire_nodest_conn",
                s.expire_nodest_conn,
                d.expire_nodest_conn,
            ),
            (
                "expire_quiescent_template",
                s.expire_quiescent_template,
                d.expire_quiescent_template,
            ),
            ("sloppy_tcp", s.sloppy_tcp, d.sloppy_tcp),
        ] {
            if v != dv {
                changed.push(format!("{name} = {v}"));
            }
        }
        if s.conn_reuse_mode != d.conn_reuse_mode {
            changed.push(format!("conn_reuse_mode = {}", s.conn_reuse_mode));
        }
        if !changed.is_empty() {
            self.push(format!(
                "IPVS switches {}: {what} has no key for them (only the kernel's defaults can be \
                 written)",
                changed.join(", ")
            ));
        }
        if c.conn_table_max != 0 {
            self.push(format!(
                "connection table size {}: {what} has no key for it",
                c.conn_table_max
            ));
        }
        if c.table_full != TableFullPolicy::default() {
            self.push(format!(
                "table-full policy {:?}: {what} has no key for it",
                c.table_full
            ));
        }
    }

    fn finish(self, text: String) -> Result<String, Lossy> {
        if self.reasons.is_empty() {
            Ok(text)
        } else {
            Err(Lossy {
                format: self.format,
                reasons: self.reasons,
            })
        }
    }
}

fn describe(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("service {protocol} {}", sock(*addr, *port)),
        ServiceKey::Fwmark { mark, family } => format!("service FWM {mark} ({family:?})"),
    }
}

fn dotted(len: u8) -> Ipv4Addr {
    Ipv4Addr::from(mask_v4(len))
}

// ---------------------------------------------------------------------------------------
// keepalived.conf

/// keepalived's `lvs_method` words for a forwarding method, or None for FullNAT and the
/// tunnel combinations keepalived refuses.
fn keepalived_method(m: ForwardMethod) -> Option<String> {
    Some(match m {
        ForwardMethod::Masq => "NAT".to_string(),
        ForwardMethod::DirectRoute => "DR".to_string(),
        ForwardMethod::FullNat => return None,
        ForwardMethod::Tunnel { kind, csum } => {
            let mut s = "TUN".to_string();
            match kind {
                TunnelKind::Ipip => {}
                TunnelKind::Gue { port } => {
                    let _ = write!(s, " type gue port {port}");
                }
                TunnelKind::Gre => s.push_str(" type gre"),
            }
            match (kind, csum) {
                (_, TunnelCsum::NoCsum) => {}
                (TunnelKind::Ipip, _) | (TunnelKind::Gre, TunnelCsum::RemCsum) => return None,
                (_, TunnelCsum::Csum) => s.push_str(" csum"),
                (_, TunnelCsum::RemCsum) => s.push_str(" remcsum"),
            }
            s
        }
    })
}

/// Write `config` as keepalived.conf: `global_defs` with `lvs_timeouts` when they differ
/// from the kernel's, one `vrrp_instance rvs` holding the VIPs and the NAT router's address
/// in `virtual_ipaddress` (state MASTER, `virtual_router_id 51`, interface of the first
/// VIP: placeholders for the failover settings [`Config`] does not have), then one
/// `virtual_server` per service with its `real_server`s.
///
/// Refused ([`Lossy`]): FullNAT real servers and the local pool, classifier rules (keepalived
/// leaves marks to iptables), a non-default mh table size, persistence granularity /0,
/// timeouts of 0 or above 31 days, tunnel checksum options keepalived refuses, IPVS switches,
/// table size and table-full policy, and an invalid configuration.
pub fn emit_keepalived(
    config: &Config,
    vips: &[Vip],
    nat_router: Option<&Vip>,
) -> Result<String, Lossy> {
    let mut no = Refusals::new("keepalived.conf", config);
    no.director_settings(config);
    if config.local_pool != LocalPool::default() {
        no.push("the FullNAT local address pool: keepalived has no FullNAT");
    }
    for r in &config.fwmark_rules {
        no.push(format!(
            "classifier rule for mark {} ({} {}/{} ports {}-{}): keepalived.conf cannot say \
             which packets get a mark",
            r.mark,
            r.protocol.map_or("any".to_string(), |p| p.to_string()),
            r.dst.addr,
            r.dst.len,
            r.ports.0,
            r.ports.1
        ));
    }
    let mut out = String::from("# keepalived.conf written by rvs\n");
    let t = config.timeouts;
    if t != Timeouts::default() {
        for (name, v) in [("tcp", t.tcp), ("tcpfin", t.tcp_fin), ("udp", t.udp)] {
            if v == 0 || v > 86_400 * 31 {
                no.push(format!(
                    "{name} timeout {v}: lvs_timeouts takes 1..=2678400 seconds"
                ));
            }
        }
        let _ = write!(
            out,
            "\nglobal_defs {{\n    lvs_timeouts tcp {} tcpfin {} udp {}\n}}\n",
            t.tcp, t.tcp_fin, t.udp
        );
    }
    let addrs: Vec<&Vip> = vips.iter().chain(nat_router).collect();
    if let Some(first) = addrs.first() {
        let _ = write!(
            out,
            "\nvrrp_instance rvs {{\n    state MASTER\n    interface {}\n    \
             virtual_router_id 51\n    priority 100\n    virtual_ipaddress {{\n",
            first.device
        );
        for v in &addrs {
            let _ = write!(out, "        {}/{} dev {}", v.addr, v.prefix, v.device);
            if v.label != v.device {
                let _ = write!(out, " label {}", v.label);
            }
            out.push('\n');
        }
        out.push_str("    }\n}\n");
    }
    for svc in &config.services {
        keepalived_service(&mut out, &mut no, svc);
    }
    no.finish(out)
}

fn keepalived_service(out: &mut String, no: &mut Refusals, svc: &VirtualServiceConfig) {
    let what = describe(&svc.key);
    match svc.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let _ = write!(
                out,
                "\nvirtual_server {addr} {port} {{\n    protocol {}\n",
                protocol_word(protocol)
            );
        }
        ServiceKey::Fwmark { mark, family } => {
            let f = match family {
                Family::V4 => "inet",
                Family::V6 => "inet6",
            };
            let _ = write!(
                out,
                "\nvirtual_server fwmark {mark} {{\n    ip_family {f}\n"
            );
        }
    }
    let _ = writeln!(out, "    lvs_sched {}", svc.scheduler.name());
    for (bit, name) in [
        (SchedFlags::FLAG_1, "flag-1"),
        (SchedFlags::FLAG_2, "flag-2"),
        (SchedFlags::FLAG_3, "flag-3"),
    ] {
        if svc.flags.0 & bit != 0 {
            let _ = writeln!(out, "    {name}");
        }
    }
    if svc.flags.0 & !7 != 0 {
        no.push(format!(
            "{what}: scheduler flag bits {:#x} beyond flag-1..3",
            svc.flags.0 & !7
        ));
    }
    if svc.mh_table_size != VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE {
        no.push(format!(
            "{what}: mh table size {} (keepalived uses the kernel's default)",
            svc.mh_table_size
        ));
    }
    let family = svc.key.family();
    if let Some(p) = svc.persistence {
        let _ = writeln!(out, "    persistence_timeout {}", p.timeout);
        if p.prefix == 0 {
            no.push(format!(
                "{what}: persistence granularity /0 (keepalived takes 1..={})",
                family.max_prefix()
            ));
        } else if p.prefix != family.max_prefix() {
            match family {
                Family::V4 => {
                    let _ = writeln!(out, "    persistence_granularity {}", dotted(p.prefix));
                }
                Family::V6 => {
                    let _ = writeln!(out, "    persistence_granularity {}", p.prefix);
                }
            }
        }
    }
    if svc.one_packet {
        out.push_str("    ops\n");
    }
    let common = svc.real_servers.first().map(|r| r.method);
    if let Some(m) = common.and_then(keepalived_method) {
        let _ = writeln!(out, "    lvs_method {m}");
    }
    for rs in &svc.real_servers {
        let _ = write!(
            out,
            "    real_server {} {} {{\n        weight {}\n",
            rs.addr, rs.port, rs.weight
        );
        if rs.u_threshold != 0 {
            let _ = writeln!(out, "        uthreshold {}", rs.u_threshold);
        }
        if rs.l_threshold != 0 {
            let _ = writeln!(out, "        lthreshold {}", rs.l_threshold);
        }
        match keepalived_method(rs.method) {
            None => no.push(format!(
                "{what}: real server {} forwards by {:?}, which keepalived cannot configure",
                sock(rs.addr, rs.port),
                rs.method
            )),
            Some(m) if Some(rs.method) != common => {
                let _ = writeln!(out, "        lvs_method {m}");
            }
            Some(_) => {}
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n");
}

fn protocol_word(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

// ---------------------------------------------------------------------------------------
// lvs.cf

/// A dotted netmask for an lvs.cf `*_nmask`/`pmask` key, or None when the prefix cannot be
/// written as one (IPv6 other than /128).
fn lvs_mask(addr: &IpAddr, len: u8) -> Option<Option<Ipv4Addr>> {
    match Family::of(addr) {
        _ if len == Family::of(addr).max_prefix() => Some(None),
        Family::V4 if len != 0 => Some(Some(dotted(len))),
        _ => None,
    }
}

fn port_ranges(rules: &[FwmarkRule]) -> String {
    rules
        .iter()
        .map(|r| match r.ports {
            (lo, hi) if lo == hi => lo.to_string(),
            (lo, hi) => format!("{lo}-{hi}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write `config` as Piranha's lvs.cf: the global keys (`service = lvs`, one `network` for
/// every real server, `nat_router`/`nat_nmask`, the three timeouts, `fullnat_local` and
/// `fullnat_ports` for rvs's `network = fullnat`), then one active `virtual` per service
/// (named `vs1`, `vs2`, ...) with `address = IP LABEL` from its VIP and one active `server`
/// per real server (`rs1`, ...). A firewall-mark service takes its address, protocol and
/// `fwmark_ports` from its classifier rules (rvs's extension), or the first VIP of its
/// family when it has none.
///
/// Refused ([`Lossy`]): mixed forwarding methods, tunnels other than plain IPIP, scheduler
/// flags, one-packet scheduling, a non-default mh table size, thresholds, persistence /0 or
/// an IPv6 persistence prefix other than /128, classifier rules lvs.cf cannot attach to a
/// fwmark virtual (any protocol, a destination prefix, out of service order), a service
/// address with no VIP in `vips`, VIPs no service uses, IPv6 VIP prefixes, a local pool
/// without FullNAT, timeouts of 0 (lvs.cf's "leave the kernel's value"), IPVS switches,
/// table size and table-full policy, and an invalid configuration.
pub fn emit_lvs_cf(
    config: &Config,
    vips: &[Vip],
    nat_router: Option<&Vip>,
) -> Result<String, Lossy> {
    let mut no = Refusals::new("lvs.cf", config);
    no.director_settings(config);
    let mut out = String::from("# lvs.cf written by rvs\nservice = lvs\n");

    // One network for all.
    let methods: Vec<ForwardMethod> = config
        .services
        .iter()
        .flat_map(|s| s.real_servers.iter().map(|r| r.method))
        .collect();
    let method = methods.first().copied().unwrap_or(ForwardMethod::Masq);
    if let Some(other) = methods.iter().find(|m| **m != method) {
        no.push(format!(
            "mixed forwarding methods ({method:?} and {other:?}): lvs.cf has one `network` for \
             all real servers"
        ));
    }
    let network = match method {
        ForwardMethod::Masq => "nat",
        ForwardMethod::DirectRoute => "direct",
        ForwardMethod::FullNat => "fullnat",
        ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        } => "tunnel",
        ForwardMethod::Tunnel { .. } => {
            no.push(format!(
                "tunnel {method:?}: lvs.cf's `network = tunnel` is plain IPIP"
            ));
            "tunnel"
        }
    };
    let _ = writeln!(out, "network = {network}");
    if let Some(n) = nat_router {
        let _ = writeln!(out, "nat_router = {} {}", n.addr, n.label);
        match lvs_mask(&n.addr, n.prefix) {
            Some(Some(m)) => {
                let _ = writeln!(out, "nat_nmask = {m}");
            }
            Some(None) => {}
            None => no.push(format!(
                "NAT router prefix {}/{}: `nat_nmask` is an IPv4 netmask",
                n.addr, n.prefix
            )),
        }
        if n.device != n.label.split(':').next().unwrap_or(&n.label) {
            no.push(format!(
                "NAT router device `{}` with label `{}`: lvs.cf derives the device from the label",
                n.device, n.label
            ));
        }
    }
    let t = config.timeouts;
    for (key, v) in [
        ("tcp_timeout", t.tcp),
        ("tcpfin_timeout", t.tcp_fin),
        ("udp_timeout", t.udp),
    ] {
        if v == 0 {
            no.push(format!(
                "`{key}` 0: lvs.cf reads 0 as \"the kernel's default\""
            ));
        }
        let _ = writeln!(out, "{key} = {v}");
    }
    let pool = &config.local_pool;
    if network == "fullnat" {
        let addrs: Vec<String> = pool.addrs.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(out, "fullnat_local = {}", addrs.join(" "));
        let _ = writeln!(
            out,
            "fullnat_ports = {}-{}",
            pool.port_range.0, pool.port_range.1
        );
    } else if *pool != LocalPool::default() && !methods.contains(&ForwardMethod::FullNat) {
        no.push("a FullNAT local address pool without FullNAT real servers");
    }

    // Classifier rules: lvs.cf attaches them to fwmark virtuals, so they must come as one
    // run per fwmark service, in service order, each run of one protocol and one host.
    let mut expected_rules: Vec<FwmarkRule> = Vec::new();
    let mut used_vips = vec![false; vips.len()];
    for (i, svc) in config.services.iter().enumerate() {
        let what = describe(&svc.key);
        let family = svc.key.family();
        let _ = write!(out, "\nvirtual vs{} {{\n    active = 1\n", i + 1);
        let (addr, rules) = match svc.key {
            ServiceKey::Addr { addr, .. } => (Some(addr), Vec::new()),
            ServiceKey::Fwmark { mark, family } => {
                let rules: Vec<FwmarkRule> = config
                    .fwmark_rules
                    .iter()
                    .filter(|r| r.mark == mark && Family::of(&r.dst.addr) == family)
                    .copied()
                    .collect();
                let addr = rules.first().map(|r| r.dst.addr).or_else(|| {
                    vips.iter()
                        .find(|v| Family::of(&v.addr) == family)
                        .map(|v| v.addr)
                });
                (addr, rules)
            }
        };
        let Some(addr) = addr else {
            no.push(format!(
                "{what}: no classifier rule or VIP of its family to give the virtual an address"
            ));
            continue;
        };
        match vips.iter().position(|v| v.addr == addr) {
            Some(j) => {
                used_vips[j] = true;
                let v = &vips[j];
                let _ = writeln!(out, "    address = {} {}", v.addr, v.label);
                if v.device != v.label.split(':').next().unwrap_or(&v.label) {
                    no.push(format!(
                        "VIP {} on device `{}` with label `{}`: lvs.cf derives the device from \
                         the label",
                        v.addr, v.device, v.label
                    ));
                }
                match lvs_mask(&v.addr, v.prefix) {
                    Some(Some(m)) => {
                        let _ = writeln!(out, "    vip_nmask = {m}");
                    }
                    Some(None) => {}
                    None => no.push(format!(
                        "VIP prefix {}/{}: `vip_nmask` is an IPv4 netmask",
                        v.addr, v.prefix
                    )),
                }
            }
            None => no.push(format!(
                "{what}: no VIP for {addr}; lvs.cf's `address` needs its device"
            )),
        }
        match svc.key {
            ServiceKey::Addr { protocol, port, .. } => {
                let _ = writeln!(
                    out,
                    "    protocol = {}\n    port = {port}",
                    protocol_word(protocol).to_ascii_lowercase()
                );
            }
            ServiceKey::Fwmark { mark, .. } => {
                let _ = writeln!(out, "    fwmark = {mark}");
                if let Some(first) = rules.first() {
                    match first.protocol {
                        Some(p) => {
                            let _ = writeln!(
                                out,
                                "    protocol = {}",
                                protocol_word(p).to_ascii_lowercase()
                            );
                        }
                        None => no.push(format!(
                            "{what}: a classifier rule for any protocol (lvs.cf's rules take \
                             the virtual's protocol)"
                        )),
                    }
                    let _ = writeln!(out, "    fwmark_ports = {}", port_ranges(&rules));
                }
                for r in &rules {
                    if r.protocol != first_protocol(&rules)
                        || r.dst.addr != addr
                        || r.dst.len != family.max_prefix()
                    {
                        no.push(format!(
                            "{what}: classifier rule for {} {}/{}: lvs.cf's rules are the \
                             virtual's protocol and address",
                            r.protocol
                                .map_or("any protocol".to_string(), |p| p.to_string()),
                            r.dst.addr,
                            r.dst.len
                        ));
                    }
                }
                expected_rules.extend(rules.iter().copied());
            }
        }
        let _ = writeln!(out, "    scheduler = {}", svc.scheduler.name());
        if let Some(p) = svc.persistence {
            let _ = writeln!(out, "    persistent = {}", p.timeout);
            match lvs_mask(&addr, p.prefix) {
                Some(Some(m)) => {
                    let _ = writeln!(out, "    pmask = {m}");
                }
                Some(None) => {}
                None => no.push(format!(
                    "{what}: persistence prefix /{} (lvs.cf's `pmask` is an IPv4 netmask, and \
                     0.0.0.0 means one client)",
                    p.prefix
                )),
            }
        }
        if svc.flags != SchedFlags::default() {
            no.push(format!(
                "{what}: scheduler flags {:#x} (lvs.cf has no key for them)",
                svc.flags.0
            ));
        }
        if svc.one_packet {
            no.push(format!(
                "{what}: one-packet scheduling (lvs.cf has no key for it)"
            ));
        }
        if svc.mh_table_size != VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE {
            no.push(format!(
                "{what}: mh table size {} (lvs.cf has no key for it)",
                svc.mh_table_size
            ));
        }
        for (j, rs) in svc.real_servers.iter().enumerate() {
            let _ = write!(
                out,
                "    server rs{} {{\n        address = {}\n        active = 1\n        \
                 port = {}\n        weight = {}\n    }}\n",
                j + 1,
                rs.addr,
                rs.port,
                rs.weight
            );
            if rs.u_threshold != 0 || rs.l_threshold != 0 {
                no.push(format!(
                    "{what}: real server {} thresholds {}/{} (lvs.cf has no key for them)",
                    sock(rs.addr, rs.port),
                    rs.u_threshold,
                    rs.l_threshold
                ));
            }
        }
        out.push_str("}\n");
    }
    if expected_rules != config.fwmark_rules {
        no.push(
            "classifier rules that are not, in order, the rules of the fwmark services \
             (lvs.cf writes each fwmark virtual's rules as its `fwmark_ports`)",
        );
    }
    for (v, used) in vips.iter().zip(used_vips) {
        if !used && !vips.iter().any(|w| w.addr == v.addr && !std::ptr::eq(w, v)) {
            no.push(format!(
                "VIP {} is used by no service: lvs.cf brings up only its virtuals' addresses",
                v.addr
            ));
        } else if !used {
            no.push(format!(
                "VIP {} is declared twice: lvs.cf has one device per virtual address",
                v.addr
            ));
        }
    }
    no.finish(out)
}

fn first_protocol(rules: &[FwmarkRule]) -> Option<Protocol> {
    rules.first().and_then(|r| r.protocol)
}

/// The VIPs of a parsed keepalived.conf, for writing it in another format: every
/// `virtual_ipaddress` of every `vrrp_instance`, in file order, on its `dev` (else the
/// instance's `interface`; addresses with neither are left out) and with its `label` (else
/// the device). The inverse of what [`emit_keepalived`] writes (there the NAT router is
/// the last address).
pub fn keepalived_vips(conf: &KeepalivedConf) -> Vec<Vip> {
    let mut out = Vec::new();
    for i in &conf.vrrp.instances {
        for v in &i.virtual_ipaddresses {
            let Some(device) = v.dev.clone().or_else(|| i.interface.clone()) else {
                continue;
            };
            out.push(Vip {
                addr: v.addr,
                prefix: v.prefix,
                label: v.label.clone().unwrap_or_else(|| device.clone()),
                device,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// A compact description of the health monitoring, for people (`rvs check-config`).

/// A duration as people write it: `10s`, `500ms`, `1.5s`.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.subsec_millis())
    } else {
        let s = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
        format!("{}s", s.trim_end_matches('0'))
    }
}

/// Bytes as a double-quoted C-style string: printable ASCII as is, `\r \n \t \\ \"`, and
/// `\xHH` for the rest.
pub(crate) fn c_string(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for &c in b {
        match c {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(c)),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// keepalived's name of a DNS query type.
pub(crate) fn dns_type_name(t: DnsType) -> &'static str {
    match t {
        DnsType::A => "A",
        DnsType::Ns => "NS",
        DnsType::Cname => "CNAME",
        DnsType::Soa => "SOA",
        DnsType::Mx => "MX",
        DnsType::Txt => "TXT",
        DnsType::Aaaa => "AAAA",
    }
}

/// A service as ipvsadm names it: `-t 10.1.0.100:80`, `-u [2001:db8::1]:53`, `-f 1`.
fn ipvsadm_service(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr,
            port,
        } => format!("-t {}", sock(addr, port)),
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr,
            port,
        } => format!("-u {}", sock(addr, port)),
        ServiceKey::Fwmark { mark, .. } => format!("-f {mark}"),
    }
}

fn describe_kind(kind: &CheckKind) -> String {
    match kind {
        CheckKind::Tcp => "tcp-connect".to_string(),
        CheckKind::SendExpect { send, expect, udp } => {
            let mut s = format!("{}send {}", if *udp { "udp " } else { "" }, c_string(send));
            match expect {
                None => s.push_str(" expect nothing"),
                Some(Expect::Any) => s.push_str(" expect any"),
                Some(Expect::Prefix(p)) => {
                    let _ = write!(s, " expect {}", c_string(p));
                }
                Some(Expect::Regex(r)) => {
                    let _ = write!(s, " expect regex {}", c_string(r.as_bytes()));
                }
            }
            s
        }
        CheckKind::Program { command, expect } => {
            let mut s = format!("program {}", c_string(command.as_bytes()));
            if let Some(e) = expect {
                let _ = write!(s, " expect {}", c_string(e.as_bytes()));
            }
            s
        }
        CheckKind::Http {
            tls,
            urls,
            virtualhost,
            http_1_1,
            sni,
        } => {
            let mut s = if *tls { "https" } else { "http" }.to_string();
            for u in urls {
                let _ = write!(s, " GET {}", u.path);
                if !u.status_codes.is_empty() {
                    let codes: Vec<String> = u
                        .status_codes
                        .iter()
                        .map(|&(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("{a}-{b}")
                            }
                        })
                        .collect();
                    let _ = write!(s, " status {}", codes.join(","));
                }
                if let Some(d) = &u.digest {
                    let _ = write!(s, " digest {d}");
                }
                if let Some(r) = &u.regex {
                    let not = if u.regex_no_match { "!" } else { "" };
                    let _ = write!(s, " {not}regex {}", c_string(r.as_bytes()));
                }
                if let Some(h) = &u.virtualhost {
                    let _ = write!(s, " host {h}");
                }
            }
            if let Some(h) = virtualhost {
                let _ = write!(s, " host {h}");
            }
            if *http_1_1 {
                s.push_str(" http/1.1");
            }
            if *sni {
                s.push_str(" sni");
            }
            s
        }
        CheckKind::Misc {
            path,
            timeout,
            dynamic,
        } => {
            let mut s = format!("misc {}", c_string(path.as_bytes()));
            if *dynamic {
                s.push_str(" dynamic");
            }
            if let Some(t) = timeout {
                let _ = write!(s, " misc-timeout {}", human_duration(*t));
            }
            s
        }
        CheckKind::Udp {
            payload,
            require_reply,
            min_reply_len,
            max_reply_len,
        } => {
            let mut s = "udp-check".to_string();
            if !payload.is_empty() {
                let _ = write!(s, " payload {}", hex(payload));
            }
            match require_reply {
                None => {}
                Some(r) if r.is_empty() => s.push_str(" require-reply"),
                Some(r) => {
                    let _ = write!(s, " require-reply {}", hex(r));
                }
            }
            if min_reply_len.is_some() || max_reply_len.is_some() {
                let _ = write!(
                    s,
                    " reply-length {}-{}",
                    min_reply_len.map_or(String::new(), |n| n.to_string()),
                    max_reply_len.map_or(String::new(), |n| n.to_string())
                );
            }
            s
        }
        CheckKind::Dns { qtype, name } => format!("dns {} {name}", dns_type_name(*qtype)),
        CheckKind::Ping => "ping".to_string(),
    }
}

fn describe_check(c: &CheckSpec) -> String {
    let mut s = describe_kind(&c.kind);
    let t = &c.target;
    match (t.connect_ip, t.connect_port) {
        (Some(a), Some(p)) => {
            let _ = write!(s, " connect {}", sock(a, p));
        }
        (Some(a), None) => {
            let _ = write!(s, " connect {a}");
        }
        (None, Some(p)) => {
            let _ = write!(s, " connect-port {p}");
        }
        (None, None) => {}
    }
    match (t.bindto, t.bind_port) {
        (Some(a), Some(p)) => {
            let _ = write!(s, " bind {}", sock(a, p));
        }
        (Some(a), None) => {
            let _ = write!(s, " bind {a}");
        }
        (None, Some(p)) => {
            let _ = write!(s, " bind-port {p}");
        }
        (None, None) => {}
    }
    if let Some(m) = t.fwmark {
        let _ = write!(s, " mark {m}");
    }
    if t.via_vip {
        s.push_str(" via-vip");
    }
    let tm = &c.timers;
    let _ = write!(
        s,
        " every {} timeout {} retry {}",
        human_duration(tm.interval),
        human_duration(tm.timeout),
        tm.retry
    );
    if tm.retry > 0 {
        let _ = write!(s, " delay {}", human_duration(tm.delay_before_retry));
    }
    if !tm.warmup.is_zero() {
        let _ = write!(s, " warmup {}", human_duration(tm.warmup));
    }
    s
}

/// What [`describe_health`] says about a real server besides its checks.
fn describe_server(r: &RealServerHealth) -> String {
    let mut s = String::new();
    if r.rise != 1 || r.fall != 1 {
        let _ = write!(s, " rise {} fall {}", r.rise, r.fall);
    }
    if r.on_failure == OnFailure::Quiesce {
        s.push_str(" quiesce");
    }
    if r.alpha {
        s.push_str(" alpha");
    }
    if let Some(d) = r.slow_start {
        let _ = write!(s, " slow-start {}", human_duration(d));
    }
    if let Some(l) = &r.load_monitor {
        let _ = write!(
            s,
            " load-monitor every {} scale {}",
            human_duration(l.interval),
            l.scale
        );
        if let Some((a, p)) = l.agent {
            let _ = write!(s, " agent {}", sock(a, p));
        }
    }
    if let Some(n) = &r.notify_up {
        let _ = write!(s, " notify-up {}", c_string(n.as_bytes()));
    }
    if let Some(n) = &r.notify_down {
        let _ = write!(s, " notify-down {}", c_string(n.as_bytes()));
    }
    s
}

/// One line per real-server check (and one per monitored real server without checks, and
/// one per service with a sorry server or quorum settings), in the `-t VIP:PORT -r RIP:PORT`
/// style of `ipvsadm -S`: what rvs will check, how often, and what it does with the answer.
pub fn describe_health(h: &HealthConfig) -> Vec<String> {
    let mut out = Vec::new();
    for svc in &h.services {
        let key = ipvsadm_service(&svc.service);
        let mut line = String::new();
        if svc.quorum != 1 || svc.hysteresis != 0 {
            let _ = write!(line, " quorum {} hysteresis {}", svc.quorum, svc.hysteresis);
        }
        if let Some(s) = &svc.sorry_server {
            let _ = write!(line, " sorry-server {}", sock(s.addr, s.port));
            match keepalived_method(s.method) {
                Some(m) => {
                    let _ = write!(line, " {}", m.to_ascii_lowercase());
                }
                None => line.push_str(" fullnat"),
            }
            if s.inhibit {
                line.push_str(" inhibit");
            }
        }
        if let Some(c) = &svc.quorum_up {
            let _ = write!(line, " quorum-up {}", c_string(c.as_bytes()));
        }
        if let Some(c) = &svc.quorum_down {
            let _ = write!(line, " quorum-down {}", c_string(c.as_bytes()));
        }
        if svc.omega {
            line.push_str(" omega");
        }
        if !line.is_empty() {
            out.push(format!("{key}{line}"));
        }
        for r in &svc.real_servers {
            let who = format!("{key} -r {}", sock(r.addr, r.port));
            let server = describe_server(r);
            if r.checks.is_empty() {
                out.push(format!("{who} no checks (always up){server}"));
            }
            for c in &r.checks {
                out.push(format!("{who} {}{server}", describe_check(c)));
            }
        }
    }
    out
}
