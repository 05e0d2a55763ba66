//! Writers for the other formats `rvs convert` produces: keepalived.conf
//! ([`emit_keepalived`]) and Piranha's lvs.cf ([`emit_lvs_cf`]).
//!
//! Each writer either produces a file that the matching parser ([`crate::parse_keepalived`],
//! [`crate::parse_lvs_cf`]) reads back to the same [`Config`], or refuses with a [`Lossy`]
//! naming everything the format cannot say (FullNAT in keepalived.conf, mixed forwarding
//! methods or scheduler flags in lvs.cf, switches in either). Nothing is dropped silently,
//! and nothing is invented: a service address needs its VIP (device, prefix) from the
//! caller where the format asks for one. VRRP and failover settings are not part of
//! [`Config`] and are not written; the VIPs go into a minimal `vrrp_instance` for
//! keepalived.conf and into each `virtual`'s `address` for lvs.cf. No I/O here.
//!
//! Health monitoring ([`HealthConfig`]) is written too: keepalived.conf carries its checkers,
//! quorum and sorry servers but has no nanny send/expect or program checks, no rise/fall, slow
//! start or load monitor; lvs.cf carries one nanny check per virtual (the same for every real
//! server), its sorry server and nothing of keepalived's. A service without monitoring cannot
//! be written to lvs.cf when it has real servers: nanny checks every one.

use core::fmt;
use core::time::Duration;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, DnsType, Expect, HealthConfig, OnFailure, RealServerHealth,
    ServiceHealth,
};

use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, Protocol, SchedFlags, ServiceKey,
    Switches, TableFullPolicy, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig, mask_v4,
    sock,
};

use crate::failover::{FailoverMode, PulseSetup, SyncSetup, VrrpInstanceSetup, VrrpSetup};
use crate::keepalived::KeepalivedConf;
use crate::lvs::Vip;
use crate::native::{
    GarpValue, Names, NativeConf, ServerSlot, advert_switches, auth_pass, default_version,
    garp_settings, server_slots, tracks_primary,
};

/// A file written in another format, and what it could not say (empty: it means the same
/// as the configuration it was written from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file.
    pub text: String,
    /// What the format cannot express, one sentence each; left out of `text` (or, where
    /// said, replaced by a stand-in).
    pub losses: Vec<String>,
}

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
        if c.neigh_gc_thresh3 != 0 {
            self.push(format!(
                "neighbour table size (gc_thresh3) {}: {what} has no key for it",
                c.neigh_gc_thresh3
            ));
        }
        if c.syn_shed != rvs_core::model::SynShed::default() {
            let s = &c.syn_shed;
            self.push(format!(
                "SYN admission enabled = {}, budget = {}, proven = {}: {what} has no key for it \
                 (`rvs daemon --syn-shed on|off` sets enabled)",
                s.enabled, s.budget, s.proven
            ));
        }
        if c.table_full != TableFullPolicy::default() {
            self.push(format!(
                "table-full policy {:?}: {what} has no key for it",
                c.table_full
            ));
        }
        // The SYN proxy: DPVS's keepalived has `syn_proxy` and DPVS's ipvsadm `-j enable`
        // per virtual server (written there); lvs.cf has nothing.
        if c.synproxy.all {
            self.push(format!(
                "the SYN proxy on for every service: {} has no global key for it{}",
                if self.format == "ipvsadm rules" {
                    self.format
                } else {
                    what
                },
                if self.format == "ipvsadm rules" {
                    " (each TCP virtual service gets DPVS's `-j enable`)"
                } else if what == "keepalived.conf" {
                    " (each TCP virtual server gets DPVS's `syn_proxy`)"
                } else {
                    ""
                }
            ));
        } else if self.format == "lvs.cf" {
            for k in &c.synproxy.services {
                self.push(format!(
                    "{}: the SYN proxy ({} has no key for it)",
                    describe(k),
                    self.format
                ));
            }
        }
        if c.conn_table_bytes != 0 {
            self.push(format!(
                "connection table memory {}: {what} has no key for it",
                crate::format_size(c.conn_table_bytes)
            ));
        }
        if c.defense != rvs_core::model::Defense::default() {
            let d = c.defense;
            self.push(format!(
                "defence sysctls amemthresh = {}, am_droprate = {}, drop_entry = {}, \
                 drop_packet = {}, secure_tcp = {}: {what} has no key for them",
                d.amemthresh, d.am_droprate, d.drop_entry, d.drop_packet, d.secure_tcp
            ));
        }
    }

    fn written(self, text: String) -> Written {
        Written {
            text,
            losses: self.reasons,
        }
    }

    /// What neither keepalived.conf, lvs.cf nor ipvsadm rules can say about names: every
    /// named service or real server, and every inactive real server.
    fn names(&mut self, names: &Names, what: &str) {
        for s in &names.services {
            let svc = describe(&s.service);
            if let Some(n) = &s.name {
                self.push(format!(
                    "{svc} is named `{n}`: {what} has no names for services"
                ));
            }
            for slot in &s.slots {
                match slot {
                    ServerSlot::Active(Some(n)) => self.push(format!(
                        "{svc}: real server `{n}`'s name ({what} has no names for real servers)"
                    )),
                    ServerSlot::Active(None) => {}
                    ServerSlot::Inactive(x) => self.push(format!(
                        "{svc}: inactive real server {}{} ({what} has no inactive real servers)",
                        sock(x.addr, x.port),
                        x.name.as_ref().map_or(String::new(), |n| format!(" `{n}`"))
                    )),
                }
            }
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

/// keepalived's `lvs_method` words for a forwarding method (FullNAT in DPVS's dialect), or
/// None for the tunnel combinations keepalived refuses.
fn keepalived_method(m: ForwardMethod) -> Option<String> {
    Some(match m {
        ForwardMethod::Masq => "NAT".to_string(),
        ForwardMethod::DirectRoute => "DR".to_string(),
        // DPVS's keepalived dialect (check_parser.c svr_forwarding_handler()), which rvs
        // reads: FullNAT with `laddr_group_name` naming a `local_address_group`.
        ForwardMethod::FullNat => "FNAT".to_string(),
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

/// Write `config` as keepalived.conf, with no failover and no names: see
/// [`write_keepalived`]; refused ([`Lossy`]) where it would lose something. The VIPs and
/// the NAT router go into the stand-in `vrrp_instance rvs` without counting as a loss:
/// this writer carries the forwarding model, and VRRP is not part of it.
pub fn emit_keepalived(
    config: &Config,
    health: &HealthConfig,
    vips: &[Vip],
    nat_router: Option<&Vip>,
) -> Result<String, Lossy> {
    let conf = NativeConf {
        config: config.clone(),
        health: health.clone(),
        vips: vips.to_vec(),
        nat_router: nat_router.cloned(),
        ..NativeConf::default()
    };
    let mut w = write_keepalived(&conf);
    w.losses.retain(|l| !l.contains(STAND_IN));
    lossless("keepalived.conf", w)
}

/// The words that name the stand-in `vrrp_instance` among the losses.
const STAND_IN: &str = "they go into a stand-in `vrrp_instance rvs`";

fn lossless(format: &'static str, w: Written) -> Result<String, Lossy> {
    if w.losses.is_empty() {
        Ok(w.text)
    } else {
        Err(Lossy {
            format,
            reasons: w.losses,
        })
    }
}

/// Write a configuration as keepalived.conf: `global_defs` with `lvs_timeouts` when they
/// differ from the kernel's and `lvs_sync_daemon` for connection sync; the VRRP failover
/// (`vrrp_script`, `vrrp_instance` and `vrrp_sync_group` blocks, each key the daemon acts
/// on written so that the file reads back to the same [`crate::FailoverConfig`]); then
/// one `virtual_server` per service with its `real_server`s.
///
/// Health monitoring: quorum, hysteresis, quorum_up/quorum_down, omega and the sorry server
/// in the `virtual_server`; `inhibit_on_failure`, `alpha`, notify scripts and one checker
/// block per check (with all its timers) in each `real_server`.
///
/// Losses (each named in [`Written::losses`]): pulse's heartbeat (keepalived fails over by
/// VRRP); VIPs or a NAT router address outside every `vrrp_instance` (keepalived brings
/// addresses up only through VRRP: without VRRP in the configuration they go into a
/// stand-in `vrrp_instance rvs`, state MASTER, virtual_router_id 51, which adds VRRP);
/// names and inactive real servers; FullNAT real servers and the local pool, classifier
/// rules (keepalived leaves marks to iptables), a non-default mh table size, persistence
/// granularity /0, timeouts of 0 or above 31 days, tunnel checksum options keepalived
/// refuses, IPVS switches, table size and table-full policy, an invalid configuration, and
/// of health monitoring: nanny's send/expect and program checks, checks through the VIP,
/// rise or fall other than 1, slow start, load monitoring, timers keepalived would change
/// (under 1 s, finer than 1 µs).
pub fn write_keepalived(conf: &NativeConf) -> Written {
    let config = &conf.config;
    let health = &conf.health;
    let mut no = Refusals::new("keepalived.conf", config);
    no.director_settings(config);
    no.names(&conf.names, "keepalived.conf");
    // FullNAT in DPVS's dialect: one `local_address_group` holds the pool; DPVS allocates
    // local ports from 1024-65535 and has no other range.
    let pool = &config.local_pool;
    if *pool != LocalPool::default() && pool.port_range != DPVS_LOCAL_PORTS {
        no.push(format!(
            "the FullNAT local port range {}-{}: keepalived.conf (DPVS's dialect) allocates \
             from {}-{} only",
            pool.port_range.0, pool.port_range.1, DPVS_LOCAL_PORTS.0, DPVS_LOCAL_PORTS.1
        ));
    }
    let fullnat = config.services.iter().any(|s| {
        s.real_servers
            .iter()
            .any(|r| r.method == ForwardMethod::FullNat)
    });
    if !pool.addrs.is_empty() && !fullnat {
        no.push("a FullNAT local address pool without FullNAT real servers");
    }
    for h in &health.services {
        // keepalived check_data.c validate_check_config() lowers both.
        let total: u64 = config
            .services
            .iter()
            .find(|s| s.key == h.service)
            .map_or(0, |s| {
                s.real_servers.iter().map(|r| u64::from(r.weight)).sum()
            });
        if u64::from(h.quorum) > total {
            no.push(format!(
                "{}: quorum {} above the real servers' total weight {total} is lowered by keepalived",
                describe(&h.service),
                h.quorum
            ));
        } else if h.hysteresis > 0 && h.hysteresis >= h.quorum {
            no.push(format!(
                "{}: hysteresis {} not below the quorum {} is lowered by keepalived",
                describe(&h.service),
                h.hysteresis,
                h.quorum
            ));
        }
    }
    for svc in &config.services {
        if svc.real_servers.is_empty() {
            // keepalived check_parser.c vs_end_handler(): "has no real servers - ignoring".
            no.push(format!(
                "{}: a virtual server without real servers is dropped by keepalived",
                describe(&svc.key)
            ));
        }
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
    let mut global = String::new();
    let t = config.timeouts;
    if t != Timeouts::default() {
        for (name, v) in [("tcp", t.tcp), ("tcpfin", t.tcp_fin), ("udp", t.udp)] {
            if v == 0 || v > 86_400 * 31 {
                no.push(format!(
                    "{name} timeout {v}: lvs_timeouts takes 1..=2678400 seconds"
                ));
            }
        }
        let _ = writeln!(
            global,
            "    lvs_timeouts tcp {} tcpfin {} udp {}",
            t.tcp, t.tcp_fin, t.udp
        );
    }
    if let Some(s) = &conf.failover.sync {
        keepalived_sync(&mut global, &mut no, s);
    }
    let scripts = &conf.failover.scripts;
    if let Some(u) = &scripts.script_user {
        let words: Vec<String> = u
            .split_whitespace()
            .map(|w| ka_value(&mut no, "global_defs", "script_user", w))
            .collect();
        let _ = writeln!(global, "    script_user {}", words.join(" "));
    }
    if scripts.enable_script_security {
        global.push_str("    enable_script_security\n");
    }
    if !global.is_empty() {
        let _ = write!(out, "\nglobal_defs {{\n{global}}}\n");
    }
    let addrs: Vec<&Vip> = conf.vips.iter().chain(conf.nat_router.as_ref()).collect();
    match &conf.failover.mode {
        FailoverMode::Vrrp(v) => {
            let held = crate::native::vrrp_vips(&conf.failover);
            for a in &addrs {
                if !held.iter().any(|h| h.addr == a.addr) {
                    no.push(format!(
                        "address {}/{} on {} is in no vrrp_instance (keepalived.conf brings \
                         addresses up only through VRRP)",
                        a.addr, a.prefix, a.device
                    ));
                } else if !held.contains(a) {
                    no.push(format!(
                        "address {}/{} on {} label {}: its vrrp_instance says otherwise",
                        a.addr, a.prefix, a.device, a.label
                    ));
                }
            }
            keepalived_vrrp(&mut out, &mut no, v);
        }
        mode => {
            if let FailoverMode::Fos(fos) = mode {
                no.push(fos_refusal(
                    fos,
                    "keepalived.conf",
                    "keepalived moves addresses by VRRP but runs no service's start and stop \
                     commands and checks no partner's service as Piranha's fos does",
                ));
            }
            if let FailoverMode::Pulse(p) = mode {
                no.push(format!(
                    "pulse's heartbeat ({}): keepalived.conf fails over by VRRP",
                    describe_pulse(p)
                ));
            }
            if let Some(first) = addrs.first() {
                let list: Vec<String> = addrs
                    .iter()
                    .map(|a| format!("{}/{} on {}", a.addr, a.prefix, a.device))
                    .collect();
                no.push(format!(
                    "addresses {} without VRRP: keepalived.conf brings addresses up only \
                     through VRRP, so {STAND_IN} (state MASTER, virtual_router_id 51), which \
                     adds VRRP failover",
                    list.join(", ")
                ));
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
        }
    }
    if fullnat && !pool.addrs.is_empty() {
        let _ = write!(out, "\nlocal_address_group {LADDR_GROUP} {{\n");
        for a in &pool.addrs {
            let _ = writeln!(out, "    {a}");
        }
        out.push_str("}\n");
    }
    for svc in &config.services {
        let h = health.services.iter().find(|h| h.service == svc.key);
        let sp = config.synproxy.applies(svc)
            && matches!(
                svc.key,
                ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    ..
                }
            );
        keepalived_service(&mut out, &mut no, svc, h, !pool.addrs.is_empty(), sp);
    }
    no.written(out)
}

/// DPVS's local port range for FullNAT.
const DPVS_LOCAL_PORTS: (u16, u16) = (1024, 65535);
/// The `local_address_group` the keepalived writer puts the FullNAT pool in.
const LADDR_GROUP: &str = "rvs_fullnat";

/// pulse's settings in a few words, for the losses.
fn describe_pulse(p: &PulseSetup) -> String {
    format!(
        "primary {} backup {}",
        p.primary,
        p.backup.map_or("none".to_string(), |b| b.to_string())
    )
}

/// `lvs_sync_daemon IF [INSTANCE] id N ...` in `global_defs`.
fn keepalived_sync(out: &mut String, no: &mut Refusals, s: &SyncSetup) {
    let d = SyncSetup::new(String::new(), 0);
    let what = "connection sync";
    let _ = write!(
        out,
        "    lvs_sync_daemon {}",
        ka_value(no, what, "interface", &s.interface)
    );
    if let Some(i) = &s.vrrp_instance {
        let _ = write!(out, " {}", ka_value(no, what, "instance", i));
    }
    let _ = write!(out, " id {}", s.syncid);
    if s.maxlen != d.maxlen {
        let _ = write!(out, " maxlen {}", s.maxlen);
    }
    if s.port != d.port {
        let _ = write!(out, " port {}", s.port);
    }
    if s.ttl != d.ttl {
        let _ = write!(out, " ttl {}", s.ttl);
    }
    match s.unicast_peer {
        // rvs's extension: a unicast `group` is the peer.
        Some(p) => {
            if s.group != d.group {
                no.push(format!(
                    "connection sync to both the group {} and the peer {p}: `group` is one",
                    s.group
                ));
            }
            let _ = write!(out, " group {p}");
        }
        None if s.group != d.group => {
            let _ = write!(out, " group {}", s.group);
        }
        None => {}
    }
    out.push('\n');
}

/// A keepalived.conf time for `key` of `what`.
fn ka_time(no: &mut Refusals, what: &str, d: Duration) -> String {
    ka_secs(no, what, d)
}

/// The `vrrp_script`, `vrrp_instance` and `vrrp_sync_group` blocks.
fn keepalived_vrrp(out: &mut String, no: &mut Refusals, v: &VrrpSetup) {
    for sc in &v.scripts {
        let what = format!("vrrp_script `{}`", sc.name);
        let _ = writeln!(
            out,
            "\nvrrp_script {} {{\n    script {}",
            ka_value(no, &what, "name", &sc.name),
            ka_value(no, &what, "script", &sc.script)
        );
        let _ = writeln!(out, "    interval {}", ka_time(no, &what, sc.interval));
        if let Some(t) = sc.timeout {
            let _ = writeln!(out, "    timeout {}", ka_time(no, &what, t));
        }
        let _ = writeln!(
            out,
            "    weight {}{}",
            sc.weight,
            if sc.reverse { " reverse" } else { "" }
        );
        let _ = writeln!(out, "    rise {}\n    fall {}", sc.rise, sc.fall);
        if let Some(u) = &sc.user {
            // `user USER [GROUP]`: the words as they were.
            let _ = writeln!(out, "    user {u}");
        }
        if sc.init_fail {
            out.push_str("    init_fail\n");
        }
        out.push_str("}\n");
    }
    for i in &v.instances {
        keepalived_instance(out, no, i);
    }
    for g in &v.sync_groups {
        let what = format!("vrrp_sync_group `{}`", g.name);
        let _ = writeln!(
            out,
            "\nvrrp_sync_group {} {{\n    group {{",
            ka_value(no, &what, "name", &g.name)
        );
        for &m in &g.members {
            if let Some(i) = v.instances.get(m) {
                let _ = writeln!(out, "        {}", ka_value(no, &what, "group", &i.name));
            }
        }
        out.push_str("    }\n");
        for (k, c) in g.notify_scripts() {
            if let Some(c) = c {
                let _ = writeln!(out, "    {k} {}", ka_script(no, &what, k, c));
            }
        }
        out.push_str("}\n");
    }
}

fn ka_address(no: &mut Refusals, what: &str, a: &crate::failover::AddressSetup) -> String {
    let mut s = format!(
        "{}/{} dev {}",
        a.addr,
        a.prefix,
        ka_value(no, what, "dev", &a.device)
    );
    if let Some(l) = &a.label {
        let _ = write!(s, " label {}", ka_value(no, what, "label", l));
    }
    if let Some(sc) = &a.scope {
        let _ = write!(s, " scope {}", ka_value(no, what, "scope", sc));
    }
    s
}

fn keepalived_instance(out: &mut String, no: &mut Refusals, i: &VrrpInstanceSetup) {
    let r = &i.router;
    let what = format!("vrrp_instance `{}`", i.name);
    let w = &what;
    let _ = writeln!(
        out,
        "\nvrrp_instance {} {{",
        ka_value(no, w, "name", &i.name)
    );
    let state = match r.initial_state {
        rvs_core::vrrp::InitialState::Master => "MASTER",
        rvs_core::vrrp::InitialState::Backup => "BACKUP",
    };
    let _ = writeln!(
        out,
        "    state {state}\n    interface {}\n    virtual_router_id {}\n    priority {}",
        ka_value(no, w, "interface", &i.interface),
        r.vrid,
        r.priority
    );
    let _ = writeln!(out, "    advert_int {}", ka_time(no, w, r.advert_int));
    let like = i.addresses.first().map(|a| a.addr).unwrap_or(r.primary_ip);
    if r.version != default_version(like) {
        let _ = writeln!(out, "    version {}", r.version.number());
    }
    match r.preempt {
        rvs_core::vrrp::Preempt::Always => {}
        rvs_core::vrrp::Preempt::Never => out.push_str("    nopreempt\n"),
        rvs_core::vrrp::Preempt::After(d) => {
            let _ = writeln!(out, "    preempt_delay {}", ka_time(no, w, d));
        }
    }
    if !r.accept {
        out.push_str("    no_accept\n");
    }
    if r.version == rvs_core::vrrp::Version::V2 {
        match auth_pass(&r.auth) {
            Some(None) => {}
            Some(Some((word, p))) => {
                let _ = writeln!(
                    out,
                    "    authentication {{\n        auth_type {word}\n        auth_pass {}\n    }}",
                    ka_value(no, w, "auth_pass", &p)
                );
            }
            None => no.push(format!(
                "{what}: a password keepalived.conf cannot carry (zero or non-UTF-8 bytes)"
            )),
        }
    }
    if !i.primary_from_interface {
        let key = if r.unicast_peers.is_empty() {
            "mcast_src_ip"
        } else {
            "unicast_src_ip"
        };
        let _ = writeln!(out, "    {key} {}", r.primary_ip);
    }
    if !r.unicast_peers.is_empty() {
        out.push_str("    unicast_peer {\n");
        for p in &r.unicast_peers {
            let _ = writeln!(out, "        {p}");
        }
        out.push_str("    }\n");
    }
    if r.check_unicast_src {
        out.push_str("    check_unicast_src\n");
    }
    for (key, list) in [
        ("virtual_ipaddress", &i.addresses),
        ("virtual_ipaddress_excluded", &i.excluded_addresses),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    {key} {{");
        for a in list {
            let _ = writeln!(out, "        {}", ka_address(no, w, a));
        }
        out.push_str("    }\n");
    }
    let implicit = tracks_primary(i);
    if !implicit {
        out.push_str("    dont_track_primary\n");
    }
    let n_if = i.track_interfaces.len();
    let track = |t: &rvs_core::vrrp::Track| {
        format!(
            " weight {}{}",
            t.weight,
            if t.reverse { " reverse" } else { "" }
        )
    };
    if n_if > usize::from(implicit) {
        out.push_str("    track_interface {\n");
        for (n, t) in i
            .track_interfaces
            .iter()
            .zip(&r.tracks)
            .skip(usize::from(implicit))
        {
            let _ = writeln!(
                out,
                "        {}{}",
                ka_value(no, w, "track_interface", n),
                track(t)
            );
        }
        out.push_str("    }\n");
    }
    if !i.track_scripts.is_empty() {
        out.push_str("    track_script {\n");
        for (n, t) in i.track_scripts.iter().zip(r.tracks.iter().skip(n_if)) {
            let _ = writeln!(
                out,
                "        {}{}",
                ka_value(no, w, "track_script", n),
                track(t)
            );
        }
        out.push_str("    }\n");
    }
    for (k, c) in i.notify_scripts() {
        if let Some(c) = c {
            let _ = writeln!(out, "    {k} {}", ka_script(no, w, k, c));
        }
    }
    for (k, v) in garp_settings(&r.garp) {
        let _ = match v {
            GarpValue::Time(t) => writeln!(out, "    {k} {}", ka_time(no, w, t)),
            GarpValue::Count(n) => writeln!(out, "    {k} {n}"),
        };
    }
    for k in advert_switches(r) {
        let _ = writeln!(out, "    {k}");
    }
    if i.use_vmac {
        match &i.vmac_name {
            Some(n) => {
                let _ = writeln!(out, "    use_vmac {}", ka_value(no, w, "use_vmac", n));
            }
            None => out.push_str("    use_vmac\n"),
        }
    }
    out.push_str("}\n");
}

fn keepalived_service(
    out: &mut String,
    no: &mut Refusals,
    svc: &VirtualServiceConfig,
    health: Option<&ServiceHealth>,
    pool: bool,
    synproxy: bool,
) {
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
    if synproxy {
        out.push_str("    syn_proxy\n");
    }
    let common = svc.real_servers.first().map(|r| r.method);
    let written = common.and_then(keepalived_method);
    if let Some(m) = &written {
        let _ = writeln!(out, "    lvs_method {m}");
    }
    if pool
        && svc
            .real_servers
            .iter()
            .any(|r| r.method == ForwardMethod::FullNat)
    {
        let _ = writeln!(out, "    laddr_group_name {LADDR_GROUP}");
    }
    // What the parser takes as the virtual server's method.
    let vs_method = match written {
        Some(_) => common.unwrap_or(ForwardMethod::Masq),
        None => ForwardMethod::Masq,
    };
    if let Some(h) = health {
        keepalived_service_health(out, no, &what, h, vs_method);
    }
    for rs in &svc.real_servers {
        let _ = write!(
            out,
            "    real_server {} {} {{\n        weight {}\n",
            rs.addr, rs.port, rs.weight
        );
        if let Some(r) = health.and_then(|h| {
            h.real_servers
                .iter()
                .find(|r| r.addr == rs.addr && r.port == rs.port)
        }) {
            keepalived_server_health(out, no, &what, r);
        }
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
        Protocol::Sctp => "SCTP",
    }
}

/// A keepalived.conf word: as is when it is one plain word, else double-quoted (its `"` and
/// `\` escaped). None when it cannot be written (a line break, or empty).
fn ka_word(s: &str) -> Option<String> {
    if s.is_empty() || s.contains(['\n', '\r']) {
        return None;
    }
    let plain = !s.contains([' ', '\t', '"', '{', '}', '!', '#', '\\']);
    Some(if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

/// A string value for keyword `key`, or a refusal.
/// A notify script: its command, then the user and group it runs as, if any.
fn ka_script(no: &mut Refusals, what: &str, key: &str, s: &crate::script::Script) -> String {
    let mut v = ka_value(no, what, key, &s.command);
    if let Some(u) = &s.user {
        for w in u.split_whitespace() {
            v.push(' ');
            v.push_str(&ka_value(no, what, key, w));
        }
    }
    v
}

fn ka_value(no: &mut Refusals, what: &str, key: &str, s: &str) -> String {
    ka_word(s).unwrap_or_else(|| {
        no.push(format!(
            "{what}: `{key}` {s:?} (keepalived.conf values are one non-empty line)"
        ));
        String::new()
    })
}

/// A checker's notify or quorum script: its command as one value, then its user words
/// (`USER [GROUP]`) when it has one (lib/notify.c `notify_script_init()` reads them).
fn ka_notify(no: &mut Refusals, what: &str, key: &str, n: &rvs_core::health::Notify) -> String {
    let mut s = ka_value(no, what, key, &n.command);
    if let Some(u) = &n.user {
        s.push(' ');
        s.push_str(u);
    }
    s
}

/// Seconds for keepalived's `read_timer` (up to 6 decimals), or a refusal for finer times.
fn ka_secs(no: &mut Refusals, what: &str, d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000) {
        no.push(format!(
            "{what}: time {d:?} (keepalived reads whole microseconds)"
        ));
    }
    if d.subsec_micros() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{}.{:06}", d.as_secs(), d.subsec_micros());
        s.trim_end_matches('0').to_string()
    }
}

fn keepalived_service_health(
    out: &mut String,
    no: &mut Refusals,
    what: &str,
    h: &ServiceHealth,
    vs_method: ForwardMethod,
) {
    // keepalived.conf's parser monitors a virtual server only when it has one of these
    // (see keepalived/health.rs); anything else would not read back.
    let acts = h
        .real_servers
        .iter()
        .any(|r| !r.checks.is_empty() || r.notify_up.is_some() || r.notify_down.is_some())
        || h.sorry_server.is_some()
        || h.quorum_up.is_some()
        || h.quorum_down.is_some();
    if !acts {
        no.push(format!(
            "{what}: health settings with nothing to act on (no check, sorry server, quorum or \
             notify script), which keepalived.conf does not keep"
        ));
    }
    if h.quorum != 1 {
        if h.quorum == 0 {
            no.push(format!("{what}: quorum 0 (keepalived's is at least 1)"));
        }
        let _ = writeln!(out, "    quorum {}", h.quorum);
    }
    if h.hysteresis != 0 {
        let _ = writeln!(out, "    hysteresis {}", h.hysteresis);
    }
    if let Some(c) = &h.quorum_up {
        let _ = writeln!(out, "    quorum_up {}", ka_notify(no, what, "quorum_up", c));
    }
    if let Some(c) = &h.quorum_down {
        let _ = writeln!(
            out,
            "    quorum_down {}",
            ka_notify(no, what, "quorum_down", c)
        );
    }
    if h.omega {
        out.push_str("    omega\n");
    }
    if let Some(s) = &h.sorry_server {
        let _ = writeln!(out, "    sorry_server {} {}", s.addr, s.port);
        if s.inhibit {
            out.push_str("    sorry_server_inhibit\n");
        }
        if s.method != vs_method {
            match keepalived_method(s.method) {
                Some(m) => {
                    let _ = writeln!(out, "    sorry_server_lvs_method {m}");
                }
                None => no.push(format!(
                    "{what}: sorry server forwards by {:?}, which keepalived cannot configure",
                    s.method
                )),
            }
        }
    }
}

fn keepalived_server_health(out: &mut String, no: &mut Refusals, what: &str, r: &RealServerHealth) {
    let who = format!("{what}: real server {}", sock(r.addr, r.port));
    if r.rise != 1 || r.fall != 1 {
        no.push(format!(
            "{who}: rise {} fall {} (keepalived changes state on one check round)",
            r.rise, r.fall
        ));
    }
    if let Some(d) = r.slow_start {
        no.push(format!(
            "{who}: slow start every {} (nanny's; keepalived has none)",
            human_duration(d)
        ));
    }
    if r.load_monitor.is_some() {
        no.push(format!(
            "{who}: load monitoring (nanny's load_monitor; keepalived has none)"
        ));
    }
    if r.on_failure == OnFailure::Quiesce {
        out.push_str("        inhibit_on_failure\n");
    }
    if r.alpha {
        if r.checks.is_empty() {
            no.push(format!(
                "{who}: alpha without checks (keepalived starts such a server up)"
            ));
        }
        out.push_str("        alpha\n");
    }
    if let Some(c) = &r.notify_up {
        let _ = writeln!(
            out,
            "        notify_up {}",
            ka_notify(no, what, "notify_up", c)
        );
    }
    if let Some(c) = &r.notify_down {
        let _ = writeln!(
            out,
            "        notify_down {}",
            ka_notify(no, what, "notify_down", c)
        );
    }
    for c in &r.checks {
        keepalived_checker(out, no, &who, c);
    }
}

fn keepalived_checker(out: &mut String, no: &mut Refusals, who: &str, c: &CheckSpec) {
    const I: &str = "            ";
    let mut body = String::new();
    let misc = matches!(c.kind, CheckKind::Misc { .. });
    let t = &c.timers;
    let keyword = match &c.kind {
        CheckKind::Tcp => "TCP_CHECK",
        CheckKind::Ping => "PING_CHECK",
        CheckKind::SendExpect { .. } => {
            no.push(format!(
                "{who}: nanny's send/expect check (keepalived has no such checker)"
            ));
            return;
        }
        CheckKind::Program { .. } => {
            no.push(format!(
                "{who}: nanny's send_program check, whose output is compared (keepalived's \
                 MISC_CHECK looks at the exit status)"
            ));
            return;
        }
        CheckKind::Http {
            tls,
            urls,
            virtualhost,
            http_1_1,
            sni,
        } => {
            for u in urls {
                let _ = writeln!(body, "{I}url {{");
                let _ = writeln!(body, "{I}    path {}", ka_value(no, who, "path", &u.path));
                if let Some(d) = &u.digest {
                    let _ = writeln!(body, "{I}    digest {d}");
                }
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
                    let _ = writeln!(body, "{I}    status_code {}", codes.join(" "));
                }
                if let Some(h) = &u.virtualhost {
                    let _ = writeln!(
                        body,
                        "{I}    virtualhost {}",
                        ka_value(no, who, "virtualhost", h)
                    );
                }
                if let Some(r) = &u.regex {
                    let _ = writeln!(body, "{I}    regex {}", ka_value(no, who, "regex", r));
                }
                if u.regex_no_match {
                    let _ = writeln!(body, "{I}    regex_no_match");
                }
                let _ = writeln!(body, "{I}}}");
            }
            if urls.is_empty() {
                no.push(format!("{who}: an HTTP check without a URL"));
            }
            if let Some(h) = virtualhost {
                let _ = writeln!(
                    body,
                    "{I}virtualhost {}",
                    ka_value(no, who, "virtualhost", h)
                );
            }
            if *http_1_1 {
                let _ = writeln!(body, "{I}http_protocol 1.1");
            }
            if *sni {
                let _ = writeln!(body, "{I}enable_sni");
            }
            if *tls { "SSL_GET" } else { "HTTP_GET" }
        }
        CheckKind::Misc {
            path,
            user,
            timeout,
            dynamic,
        } => {
            if let Some(u) = user {
                let words: Vec<String> = u
                    .split_whitespace()
                    .map(|w| ka_value(no, who, "user", w))
                    .collect();
                let _ = writeln!(body, "{I}user {}", words.join(" "));
            }
            let _ = writeln!(
                body,
                "{I}misc_path {}",
                ka_value(no, who, "misc_path", path)
            );
            if let Some(d) = timeout {
                let _ = writeln!(body, "{I}misc_timeout {}", ka_secs(no, who, *d));
            }
            if *dynamic {
                let _ = writeln!(body, "{I}misc_dynamic");
            }
            if t.timeout != timeout.unwrap_or(t.interval) {
                no.push(format!(
                    "{who}: MISC_CHECK timeout {} (keepalived's is `misc_timeout`, else \
                     `delay_loop`)",
                    human_duration(t.timeout)
                ));
            }
            if c.target != CheckTarget::default() {
                no.push(format!(
                    "{who}: MISC_CHECK with a connect target (keepalived's has none)"
                ));
            }
            "MISC_CHECK"
        }
        CheckKind::Udp {
            payload,
            require_reply,
            min_reply_len,
            max_reply_len,
        } => {
            if !payload.is_empty() {
                let _ = writeln!(body, "{I}payload {}", hex(payload));
            }
            match require_reply {
                None => {}
                Some(r) if r.is_empty() => {
                    let _ = writeln!(body, "{I}require_reply");
                }
                Some(r) => {
                    let _ = writeln!(body, "{I}require_reply {}", hex(r));
                }
            }
            for (key, v) in [
                ("min_reply_length", min_reply_len),
                ("max_reply_length", max_reply_len),
            ] {
                if let Some(n) = v {
                    if *n > 65_535 {
                        no.push(format!("{who}: {key} {n} (keepalived's are 0..=65535)"));
                    }
                    let _ = writeln!(body, "{I}{key} {n}");
                }
            }
            "UDP_CHECK"
        }
        CheckKind::Dns { qtype, name } => {
            let _ = writeln!(body, "{I}type {}", dns_type_name(*qtype));
            let _ = writeln!(body, "{I}name {}", ka_value(no, who, "name", name));
            "DNS_CHECK"
        }
    };
    let g = &c.target;
    if g.via_vip {
        no.push(format!(
            "{who}: a check through the VIP (rvs's check_via_vip; keepalived has none)"
        ));
    }
    if let Some(a) = g.connect_ip {
        let _ = writeln!(body, "{I}connect_ip {a}");
    }
    if let Some(p) = g.connect_port {
        let _ = writeln!(body, "{I}connect_port {p}");
    }
    if let Some(a) = g.bindto {
        let _ = writeln!(body, "{I}bindto {a}");
    }
    if let Some(p) = g.bind_port {
        let _ = writeln!(body, "{I}bind_port {p}");
    }
    if let Some(m) = g.fwmark {
        let _ = writeln!(body, "{I}fwmark {m}");
    }
    // keepalived raises a delay_loop under 1 s and a connect_timeout of 0 to 1 s.
    if t.interval < Duration::from_secs(1) {
        no.push(format!(
            "{who}: checks every {} (keepalived's delay_loop is at least 1 s)",
            human_duration(t.interval)
        ));
    }
    let _ = writeln!(body, "{I}delay_loop {}", ka_secs(no, who, t.interval));
    if !misc {
        if t.timeout.is_zero() {
            no.push(format!("{who}: timeout 0 (keepalived makes it 1 s)"));
        }
        let _ = writeln!(body, "{I}connect_timeout {}", ka_secs(no, who, t.timeout));
    }
    let _ = writeln!(body, "{I}retry {}", t.retry);
    let _ = writeln!(
        body,
        "{I}delay_before_retry {}",
        ka_secs(no, who, t.delay_before_retry)
    );
    if !t.warmup.is_zero() {
        let _ = writeln!(body, "{I}warmup {}", ka_secs(no, who, t.warmup));
    }
    let _ = write!(out, "        {keyword} {{\n{body}        }}\n");
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
///
/// Health monitoring becomes each virtual's nanny keys (`timeout`, `reentry` = rise ×
/// timeout, `quiesce_server`, `load_monitor = uptime`, `send`/`expect`/`use_regex` or
/// `send_program`/`expect_program`, `check_via_vip`) and `sorry_server`. Refused: a service
/// with real servers and no monitoring, anything but one nanny check per real server with
/// nanny's timers (interval = timeout in whole seconds, no retry, fall 1, slow start every
/// interval) and the same keys for every server of the virtual, servers in service before
/// their first check (nanny's are alpha), notify scripts,
/// quorum settings, a sorry server on another port or method or kept at weight 0, and load
/// monitoring other than nanny's (every 20 s, up to 4 × the weight, the server's own agent).
pub fn emit_lvs_cf(
    config: &Config,
    health: &HealthConfig,
    vips: &[Vip],
    nat_router: Option<&Vip>,
) -> Result<String, Lossy> {
    let conf = NativeConf {
        config: config.clone(),
        health: health.clone(),
        vips: vips.to_vec(),
        nat_router: nat_router.cloned(),
        ..NativeConf::default()
    };
    lossless("lvs.cf", write_lvs_cf(&conf))
}

/// Write a configuration as lvs.cf: what [`emit_lvs_cf`] writes, plus pulse's keys
/// (`primary`, `backup`, `heartbeat = 1`, `heartbeat_port`, `keepalive`, `deadtime`,
/// `backup_active`, the private addresses and commands), the sync daemon's (`syncdaemon`,
/// `syncd_iface`, `syncd_id`), each virtual's and server's name (`vsN` / `rsN`, by position,
/// for unnamed ones, which [`lvs_cf_names`] reads back as unnamed) and the inactive
/// servers (`active = 0`). Losses: VRRP failover, sync settings lvs.cf has no key for, and
/// what [`emit_lvs_cf`] refuses.
pub fn write_lvs_cf(conf: &NativeConf) -> Written {
    let config = &conf.config;
    let health = &conf.health;
    let vips = conf.vips.as_slice();
    let nat_router = conf.nat_router.as_ref();
    let mut no = Refusals::new("lvs.cf", config);
    no.director_settings(config);
    let fos = match &conf.failover.mode {
        FailoverMode::Fos(f) => Some(f),
        _ => None,
    };
    let mut out = format!(
        "# lvs.cf written by rvs\nservice = {}\n",
        if fos.is_some() { "fos" } else { "lvs" }
    );
    lvs_cf_failover(&mut out, &mut no, &conf.failover);
    if let (Some(f), Some(s)) = (fos, config.services.first()) {
        no.push(format!(
            "{} with failover services ({}): lvs.cf's `service = fos` runs no virtual service",
            describe(&s.key),
            f.services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

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
        let names = conf.names.service(&svc.key);
        let vname = match names.and_then(|n| n.name.as_deref()) {
            Some(n) => lvs_cf_name(&mut no, &what, n),
            None => format!("vs{}", i + 1),
        };
        let _ = write!(out, "\nvirtual {vname} {{\n    active = 1\n");
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
                if protocol == Protocol::Sctp {
                    no.push(format!(
                        "{what}: SCTP (Piranha's lvs.cf knows `protocol = tcp | udp`)"
                    ));
                }
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
                            if p == Protocol::Sctp {
                                no.push(format!(
                                    "{what}: SCTP (Piranha's lvs.cf knows `protocol = tcp | udp`)"
                                ));
                            }
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
        let protocol = match svc.key {
            ServiceKey::Addr { protocol, .. } => protocol,
            ServiceKey::Fwmark { .. } => first_protocol(&rules).unwrap_or(Protocol::Tcp),
        };
        lvs_cf_health(
            &mut out,
            &mut no,
            &what,
            svc,
            health.services.iter().find(|h| h.service == svc.key),
            method,
            protocol,
        );
        let slots = server_slots(names, svc.real_servers.len());
        let mut servers = svc.real_servers.iter();
        for (j, slot) in slots.iter().enumerate() {
            let (name, addr, port, weight, active) = match slot {
                ServerSlot::Inactive(x) => (&x.name, x.addr, x.port, x.weight, 0),
                ServerSlot::Active(name) => {
                    let Some(rs) = servers.next() else { break };
                    if rs.u_threshold != 0 || rs.l_threshold != 0 {
                        no.push(format!(
                            "{what}: real server {} thresholds {}/{} (lvs.cf has no key for them)",
                            sock(rs.addr, rs.port),
                            rs.u_threshold,
                            rs.l_threshold
                        ));
                    }
                    (name, rs.addr, rs.port, rs.weight, 1)
                }
            };
            let sname = match name {
                Some(n) => lvs_cf_name(&mut no, &what, n),
                None => format!("rs{}", j + 1),
            };
            let _ = write!(
                out,
                "    server {sname} {{\n        address = {addr}\n        active = {active}\n        \
                 port = {port}\n        weight = {weight}\n    }}\n",
            );
        }
        out.push_str("}\n");
    }
    if let Some(f) = fos {
        // pulse brings up each failover service's address (the first service's device and
        // prefix for an address several share): those are the VIPs.
        let held = f.addresses();
        for (v, used) in vips.iter().zip(used_vips.iter_mut()) {
            *used |= held.contains(v);
        }
        for s in &f.services {
            lvs_cf_fos_service(&mut out, &mut no, s);
        }
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
    no.written(out)
}

/// A `virtual` or `server` block's name, or a loss when lvs.cf cannot carry it.
fn lvs_cf_name(no: &mut Refusals, what: &str, n: &str) -> String {
    let ok = !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if !ok {
        no.push(format!(
            "{what}: the name `{n}` (lvs.cf names are one word of letters, digits, `_-.:`)"
        ));
    }
    n.to_string()
}

/// Why failover services cannot be written in `format`: only lvs.cf (and the native TOML)
/// has them.
pub(crate) fn fos_refusal(fos: &crate::failover::FosSetup, format: &str, why: &str) -> String {
    let names: Vec<&str> = fos.services.iter().map(|s| s.name.as_str()).collect();
    format!(
        "failover services (`service = fos`: {}): {format} cannot carry them ({why})",
        names.join(", ")
    )
}

/// One `failover NAME { ... }` block with the keys fos reads (crate::lvs `fos_block`), or
/// refusals where the service cannot be said in them; what is written is read back the way
/// the parser reads it and compared.
fn lvs_cf_fos_service(out: &mut String, no: &mut Refusals, s: &crate::failover::FosServiceSetup) {
    let what = format!("failover service `{}`", s.name);
    let name = lvs_cf_name(no, &what, &s.name);
    let _ = write!(out, "\nfailover {name} {{\n    active = 1\n");
    let a = &s.address;
    let word_ok = |w: &str| {
        !w.is_empty()
            && !w.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '#' | '{' | '}'))
    };
    if !word_ok(&a.label) || a.device != a.label.split(':').next().unwrap_or(&a.label) {
        no.push(format!(
            "{what}: address {} on device `{}` with label `{}` (lvs.cf derives the device from \
             the label, one word)",
            a.addr, a.device, a.label
        ));
    }
    let _ = writeln!(out, "    address = {} {}", a.addr, a.label);
    match lvs_mask(&a.addr, a.prefix) {
        Some(Some(m)) => {
            let _ = writeln!(out, "    vip_nmask = {m}");
        }
        Some(None) => {}
        None => no.push(format!(
            "{what}: prefix {}/{} (`vip_nmask` is an IPv4 netmask)",
            a.addr, a.prefix
        )),
    }
    let udp = match s.protocol {
        Protocol::Tcp => false,
        Protocol::Udp => true,
        p => {
            no.push(format!(
                "{what}: protocol {p} (fos checks `protocol = tcp | udp`)"
            ));
            false
        }
    };
    let _ = writeln!(
        out,
        "    port = {}\n    protocol = {}",
        s.port,
        if udp { "udp" } else { "tcp" }
    );
    // nanny's keys for the check, then the check they make, compared with the service's.
    let before = no.reasons.len();
    let t = &s.check.timers;
    let every = u32::try_from(t.interval.as_secs())
        .ok()
        .filter(|n| *n >= 1 && t.interval.subsec_nanos() == 0);
    if every.is_none() {
        no.push(format!(
            "{what}: a check every {} (fos's nanny checks every `timeout` whole seconds)",
            human_duration(t.interval)
        ));
    }
    let mut keys = crate::lvs::HealthCheck {
        timeout: every.unwrap_or(10),
        ..Default::default()
    };
    let text_ok = |s: &str| !s.contains(['\n', '\r', '"', '\\']);
    let (mut send, mut expect): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    match &s.check.kind {
        CheckKind::Tcp => {}
        CheckKind::SendExpect {
            send: sb,
            expect: e,
            ..
        } => {
            send = Some(sb.clone());
            match e {
                None => {}
                Some(Expect::Any) => expect = Some(b"*".to_vec()),
                Some(Expect::Prefix(p)) if p.as_slice() != b"*" => expect = Some(p.clone()),
                Some(other) => no.push(format!(
                    "{what}: expect {other:?} (fos's nanny compares a prefix, `*` any reply, \
                     no regular expression)"
                )),
            }
        }
        CheckKind::Program { command, expect: e } => {
            for v in std::iter::once(command).chain(e) {
                if !text_ok(v) || v.is_empty() {
                    no.push(format!(
                        "{what}: send_program/expect {v:?} (lvs.cf strings are one plain line)"
                    ));
                }
            }
            keys.send_program = Some(command.clone());
            keys.expect.clone_from(e);
            expect = e.as_ref().map(|e| e.clone().into_bytes());
        }
        other => no.push(format!(
            "{what}: {} (fos's nanny sends and expects, runs a program, or connects)",
            describe_kind(other)
        )),
    }
    let back = crate::lvs::fos_check(&keys, send.as_deref(), expect.as_deref(), udp, s.port);
    if no.reasons.len() == before && back != s.check {
        no.push(format!(
            "{what}: {} (fos's nanny check from send/expect/send_program on port {}: {})",
            describe_check(&s.check),
            s.port,
            describe_check(&back)
        ));
    }
    let _ = writeln!(out, "    timeout = {}", keys.timeout);
    if let Some(p) = &keys.send_program {
        let _ = writeln!(out, "    send_program = \"{p}\"");
        if let Some(e) = &keys.expect {
            let _ = writeln!(out, "    expect = \"{e}\"");
        }
    } else {
        if let Some(b) = &send {
            let _ = writeln!(out, "    send = {}", c_string(b));
        }
        if let Some(b) = &expect {
            let _ = writeln!(out, "    expect = {}", c_string(b));
        }
    }
    // fos.c parseCommandStr() cuts the command at each space: an argument with a space in
    // it, or a command with no argument, cannot be said.
    for (key, c) in [("start_cmd", &s.start_cmd), ("stop_cmd", &s.stop_cmd)] {
        let Some(argv) = c else { continue };
        let line = argv.join(" ");
        if crate::lvs::fos_argv(&line) != *argv || !text_ok(&line) {
            no.push(format!(
                "{what}: `{key}` {argv:?} (lvs.cf's is one line cut at each space)"
            ));
        }
        let _ = writeln!(out, "    {key} = \"{line}\"");
    }
    out.push_str("}\n");
}

/// pulse's keys.
fn lvs_cf_pulse(out: &mut String, no: &mut Refusals, p: &PulseSetup) {
    let text_ok = |s: &str| !s.contains(['\n', '\r', '"', '\\']) && !s.is_empty();
    let _ = writeln!(out, "primary = {}", p.primary);
    if let Some(a) = p.primary_private {
        let _ = writeln!(out, "primary_private = {a}");
    }
    if let Some(a) = p.backup {
        let _ = writeln!(out, "backup = {a}");
    }
    if let Some(a) = p.backup_private {
        let _ = writeln!(out, "backup_private = {a}");
    }
    let _ = writeln!(
        out,
        "backup_active = {}\nheartbeat = 1\nheartbeat_port = {}",
        u8::from(p.backup_active),
        p.port
    );
    if p.monitor_links {
        out.push_str("monitor_links = 1\n");
    }
    for (key, d) in [("keepalive", p.keepalive), ("deadtime", p.deadtime)] {
        if d.subsec_nanos() != 0 || d.is_zero() {
            no.push(format!(
                "pulse's {key} {} (lvs.cf's is whole seconds)",
                human_duration(d)
            ));
        }
        let _ = writeln!(out, "{key} = {}", d.as_secs().max(1));
    }
    for (key, c) in [
        ("active_cmd", &p.active_cmd),
        ("inactive_cmd", &p.inactive_cmd),
    ] {
        if let Some(c) = c {
            if !text_ok(c) {
                no.push(format!("`{key}` {c:?} (lvs.cf strings are one plain line)"));
            }
            let _ = writeln!(out, "{key} = \"{c}\"");
        }
    }
}

/// pulse's and the sync daemon's keys.
fn lvs_cf_failover(out: &mut String, no: &mut Refusals, f: &crate::FailoverConfig) {
    let text_ok = |s: &str| !s.contains(['\n', '\r', '"', '\\']) && !s.is_empty();
    match &f.mode {
        FailoverMode::None => {}
        FailoverMode::Fos(fos) => {
            if let Some(p) = &fos.pulse {
                lvs_cf_pulse(out, no, p);
            }
        }
        FailoverMode::Vrrp(v) => {
            for i in &v.instances {
                no.push(format!(
                    "vrrp_instance `{}` (virtual_router_id {} on {}): lvs.cf fails over by \
                     pulse's heartbeat",
                    i.name, i.router.vrid, i.interface
                ));
            }
        }
        FailoverMode::Pulse(p) => lvs_cf_pulse(out, no, p),
    }
    if let Some(s) = &f.sync {
        let d = SyncSetup::new(String::new(), 0);
        let mut other = Vec::new();
        if s.group != d.group {
            other.push(format!("group {}", s.group));
        }
        if s.port != d.port {
            other.push(format!("port {}", s.port));
        }
        if s.ttl != d.ttl {
            other.push(format!("ttl {}", s.ttl));
        }
        if s.maxlen != d.maxlen {
            other.push(format!("maxlen {}", s.maxlen));
        }
        if let Some(p) = s.unicast_peer {
            other.push(format!("unicast peer {p}"));
        }
        if let Some(i) = &s.vrrp_instance
            && !matches!(f.mode, FailoverMode::Vrrp(_))
        {
            other.push(format!("following vrrp_instance `{i}`"));
        }
        if !other.is_empty() {
            no.push(format!(
                "connection sync {} (lvs.cf has `syncd_iface` and `syncd_id` only)",
                other.join(", ")
            ));
        }
        if !text_ok(&s.interface) || s.interface.contains([' ', '\t']) {
            no.push(format!("sync interface {:?}", s.interface));
        }
        let _ = writeln!(
            out,
            "syncdaemon = 1\nsyncd_iface = {}\nsyncd_id = {}",
            s.interface, s.syncid
        );
    }
}

/// The names and inactive servers of a parsed lvs.cf, as [`Names`]: each active virtual's
/// name and its servers' (active and inactive, in file order). A name rvs writes for an
/// unnamed block — `vsN` for the N-th virtual, `rsN` for a virtual's N-th server — reads
/// as unnamed, so that a configuration without names goes through lvs.cf unchanged.
pub fn lvs_cf_names(cf: &crate::LvsCf) -> Names {
    let mut names = Names::default();
    let mut seen = Vec::new();
    for (k, v) in cf.virtuals.iter().enumerate() {
        let Some(idx) = v.service.filter(|_| v.active) else {
            continue;
        };
        let Some(svc) = cf.config.services.get(idx) else {
            continue;
        };
        if seen.contains(&idx) {
            continue;
        }
        seen.push(idx);
        let own = |n: &str, prefix: &str, pos: usize| {
            (n != format!("{prefix}{}", pos + 1)).then(|| n.to_string())
        };
        let slots = v
            .servers
            .iter()
            .enumerate()
            .map(|(j, s)| {
                if s.active {
                    ServerSlot::Active(own(&s.name, "rs", j))
                } else {
                    ServerSlot::Inactive(crate::native::InactiveServer {
                        name: own(&s.name, "rs", j),
                        addr: s.addr,
                        port: s.port,
                        weight: s.weight,
                    })
                }
            })
            .collect();
        names.push(crate::native::ServiceNames {
            service: svc.key,
            name: own(&v.name, "vs", k),
            slots,
        });
    }
    names
}

/// A virtual's nanny keys for its health monitoring, or refusals; the keys are checked by
/// reading them back the way the parser does.
fn lvs_cf_health(
    out: &mut String,
    no: &mut Refusals,
    what: &str,
    svc: &VirtualServiceConfig,
    health: Option<&ServiceHealth>,
    method: ForwardMethod,
    protocol: Protocol,
) {
    let Some(h) = health else {
        if !svc.real_servers.is_empty() {
            no.push(format!(
                "{what}: its real servers are not health-checked, and lvs.cf's nanny checks \
                 every real server"
            ));
        }
        return;
    };
    let before = no.reasons.len();
    if h.real_servers.is_empty() && h.sorry_server.is_none() {
        no.push(format!(
            "{what}: health settings with no real server and no sorry server, which lvs.cf \
             does not keep"
        ));
    }
    if h.quorum != 1 || h.hysteresis != 0 {
        no.push(format!(
            "{what}: quorum {} hysteresis {} (lvs.cf's sorry server comes in when no real \
             server is up)",
            h.quorum, h.hysteresis
        ));
    }
    if h.quorum_up.is_some() || h.quorum_down.is_some() || h.omega {
        no.push(format!(
            "{what}: quorum_up/quorum_down/omega scripts (lvs.cf has none)"
        ));
    }
    let fwmark = matches!(svc.key, ServiceKey::Fwmark { .. });
    let first = h.real_servers.first();
    let first_check = first.and_then(|r| r.checks.first());
    // The virtual's `port`: the service's, or for a fwmark service the port checks use.
    let vport = match svc.key {
        ServiceKey::Addr { port, .. } => port,
        ServiceKey::Fwmark { .. } => {
            h.sorry_server
                .map(|s| s.port)
                .unwrap_or_else(|| match (first, first_check) {
                    (Some(r), Some(c)) => c.target.connect_port.unwrap_or(r.port),
                    _ => 80,
                })
        }
    };
    if fwmark && vport != 80 {
        let _ = writeln!(out, "    port = {vport}");
    }
    if let Some(s) = &h.sorry_server {
        if s.port != vport || s.method != method || s.inhibit {
            no.push(format!(
                "{what}: sorry server {} by {:?}{} (lvs.cf's is on the virtual's port {vport}, \
                 by the network's method, removed while real servers are up)",
                sock(s.addr, s.port),
                s.method,
                if s.inhibit { ", kept at weight 0" } else { "" }
            ));
        }
        let _ = writeln!(out, "    sorry_server = {}", s.addr);
    }
    let mut keys = crate::lvs::HealthCheck::default();
    let mut send: Option<Vec<u8>> = None;
    let mut expect: Option<Vec<u8>> = None;
    if let (Some(r), Some(c)) = (first, first_check) {
        let who = format!("{what}: real server {}", sock(r.addr, r.port));
        let t = &c.timers;
        let whole = t.interval.subsec_nanos() == 0 && t.interval.as_secs() >= 1;
        let secs = u32::try_from(t.interval.as_secs()).ok().filter(|_| whole);
        if secs.is_none()
            || t.timeout != t.interval
            || t.retry != 0
            || !t.delay_before_retry.is_zero()
            || !t.warmup.is_zero()
        {
            no.push(format!(
                "{who}: check every {} timeout {} retry {} (nanny checks every `timeout` whole \
                 seconds, allows `timeout`, does not retry)",
                human_duration(t.interval),
                human_duration(t.timeout),
                t.retry
            ));
        }
        let every = secs.unwrap_or(10).max(1);
        keys.timeout = every;
        if r.fall != 1 || !r.alpha || r.notify_up.is_some() || r.notify_down.is_some() {
            no.push(format!(
                "{who}: fall {}, {}notify scripts (nanny has none, and admits a server only \
                 after its first good check)",
                r.fall,
                if r.alpha {
                    ""
                } else {
                    "in service before any check, "
                }
            ));
        }
        if r.slow_start != Some(t.interval) {
            no.push(format!(
                "{who}: slow start {} (nanny's steps every `timeout`)",
                r.slow_start.map_or("none".to_string(), human_duration)
            ));
        }
        match r.rise.checked_mul(every) {
            Some(reentry) if r.rise >= 1 => keys.reentry = reentry,
            _ => no.push(format!(
                "{who}: rise {} (lvs.cf's is reentry / timeout)",
                r.rise
            )),
        }
        keys.quiesce_server = r.on_failure == OnFailure::Quiesce;
        match r.load_monitor {
            None => {}
            Some(l)
                if l.interval == Duration::from_secs(20) && l.scale == 4 && l.agent.is_none() =>
            {
                keys.load_monitor = Some(crate::lvs::LoadMonitor::Uptime)
            }
            Some(l) => no.push(format!(
                "{who}: load monitor every {} scale {} (nanny's reads every 20 s, scale 4, \
                 from the server itself)",
                human_duration(l.interval),
                l.scale
            )),
        }
        keys.check_via_vip = c.target.via_vip;
        if c.target.via_vip
            && !matches!(
                method,
                ForwardMethod::DirectRoute | ForwardMethod::Tunnel { .. }
            )
        {
            no.push(format!(
                "{who}: a check through the VIP with {method:?} (lvs.cf's check_via_vip is for \
                 direct routing and tunnelling)"
            ));
        }
        match &c.kind {
            CheckKind::Tcp => {}
            CheckKind::SendExpect {
                send: s,
                expect: e,
                udp,
            } => {
                if *udp != (protocol == Protocol::Udp) {
                    no.push(format!(
                        "{who}: send/expect over {} on a {protocol} virtual (nanny uses the \
                         virtual's protocol)",
                        if *udp { "UDP" } else { "TCP" }
                    ));
                }
                send = Some(s.clone());
                match e {
                    None => {}
                    Some(Expect::Any) => expect = Some(b"*".to_vec()),
                    Some(Expect::Prefix(p)) if p.as_slice() == b"*" => no.push(format!(
                        "{who}: expect the literal `*` (lvs.cf's `*` means any reply)"
                    )),
                    Some(Expect::Regex(re)) if re == "*" => no.push(format!(
                        "{who}: expect the regular expression `*` (lvs.cf's `*` means any reply)"
                    )),
                    Some(Expect::Prefix(p)) => expect = Some(p.clone()),
                    Some(Expect::Regex(re)) => {
                        expect = Some(re.clone().into_bytes());
                        keys.use_regex = true;
                    }
                }
            }
            CheckKind::Program { command, expect: e } => {
                keys.send_program = Some(command.clone());
                keys.expect_program = e.clone();
            }
            other => no.push(format!(
                "{who}: {} (nanny sends and expects, or runs a program)",
                describe_kind(other)
            )),
        }
    } else if first.is_some() {
        no.push(format!(
            "{what}: real servers without checks (nanny checks every real server)"
        ));
    }
    let text_ok = |s: &str| !s.contains(['\n', '\r', '"', '\\']) && !s.is_empty();
    for (key, v) in [
        ("send_program", &keys.send_program),
        ("expect_program", &keys.expect_program),
    ] {
        if let Some(v) = v
            && !text_ok(v)
        {
            no.push(format!(
                "{what}: `{key}` {v:?} (lvs.cf strings are one plain line)"
            ));
        }
    }
    // Only when nothing else was refused: read the keys back as the parser would, so that
    // what is written is exactly what was asked.
    if no.reasons.len() == before {
        let back = crate::lvs::nanny_health(
            &crate::lvs::NannyVirtual {
                health: &keys,
                send: send.as_deref(),
                expect: expect.as_deref(),
                protocol,
                port: vport,
                sorry_server: h.sorry_server.map(|s| s.addr),
            },
            svc,
            method,
        );
        if back.as_ref() != Some(h) {
            no.push(format!(
                "{what}: its real servers' checks differ from one another or from nanny's \
                 defaults for their ports (lvs.cf has one nanny configuration per virtual)"
            ));
        }
    }
    let _ = writeln!(
        out,
        "    timeout = {}\n    reentry = {}",
        keys.timeout, keys.reentry
    );
    if keys.quiesce_server {
        out.push_str("    quiesce_server = 1\n");
    }
    if keys.load_monitor.is_some() {
        out.push_str("    load_monitor = uptime\n");
    }
    if keys.check_via_vip {
        out.push_str("    check_via_vip = 1\n");
    }
    if let Some(sp) = &keys.send_program {
        let _ = writeln!(out, "    send_program = \"{sp}\"");
        if let Some(e) = &keys.expect_program {
            let _ = writeln!(out, "    expect_program = \"{e}\"");
        }
    }
    if let Some(s) = &send {
        let _ = writeln!(out, "    send = {}", c_string(s));
    }
    if let Some(e) = &expect {
        let _ = writeln!(out, "    expect = {}", c_string(e));
    }
    if keys.use_regex {
        out.push_str("    use_regex = 1\n");
    }
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
// ipvsadm rules

/// Write a configuration as ipvsadm rules (`ipvsadm -R` input) in its own order of
/// services and real servers ([`crate::ipvsadm::save_in_order`]: the order schedulers see).
/// Losses: everything but the virtual services, their real servers, the timeouts and the
/// FullNAT pool — the addresses the director owns (VIPs with their devices, the NAT
/// router), health monitoring, failover and connection sync, names and inactive real
/// servers, classifier rules, IPVS switches, table size and table-full policy.
pub fn write_ipvsadm(conf: &NativeConf) -> Written {
    let config = &conf.config;
    let mut no = Refusals::new("ipvsadm rules", config);
    no.director_settings(config);
    for v in &conf.vips {
        no.push(format!(
            "VIP {}/{} on {}: ipvsadm rules do not bring addresses up (rvs would own it on \
             the link it lies on, with no prefix or label)",
            v.addr, v.prefix, v.label
        ));
    }
    if let Some(n) = &conf.nat_router {
        no.push(format!(
            "the NAT router {}/{} on {}: the real servers' gateway, which ipvsadm rules do \
             not bring up (NAT real servers would lose their route back)",
            n.addr, n.prefix, n.label
        ));
    }
    for line in describe_health(&conf.health) {
        no.push(format!(
            "health monitoring {line} (ipvsadm has no health checks)"
        ));
    }
    match &conf.failover.mode {
        FailoverMode::None => {}
        FailoverMode::Fos(fos) => no.push(fos_refusal(
            fos,
            "ipvsadm rules",
            "they hold the IPVS table only: no failover, address or command",
        )),
        FailoverMode::Pulse(p) => no.push(format!(
            "pulse's heartbeat ({}): ipvsadm rules have no failover",
            describe_pulse(p)
        )),
        FailoverMode::Vrrp(v) => {
            for i in &v.instances {
                no.push(format!(
                    "vrrp_instance `{}` (virtual_router_id {} on {}): ipvsadm rules have no \
                     failover",
                    i.name, i.router.vrid, i.interface
                ));
            }
        }
    }
    if let Some(s) = &conf.failover.sync {
        no.push(format!(
            "connection sync on {} (syncid {}): rvs's ipvsadm rules do not start the sync \
             daemon",
            s.interface, s.syncid
        ));
    }
    no.names(&conf.names, "ipvsadm");
    for r in &config.fwmark_rules {
        no.push(format!(
            "classifier rule for mark {} ({} {}/{} ports {}-{}): ipvsadm leaves marks to \
             iptables",
            r.mark,
            r.protocol.map_or("any".to_string(), |p| p.to_string()),
            r.dst.addr,
            r.dst.len,
            r.ports.0,
            r.ports.1
        ));
    }
    no.written(crate::ipvsadm::save_in_order(config))
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
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr,
            port,
        } => format!("--sctp-service {}", sock(addr, port)),
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
            ..
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

pub(crate) fn describe_check(c: &CheckSpec) -> String {
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
        let _ = write!(s, " notify-up {}", c_string(n.command.as_bytes()));
        describe_user(&mut s, n);
    }
    if let Some(n) = &r.notify_down {
        let _ = write!(s, " notify-down {}", c_string(n.command.as_bytes()));
        describe_user(&mut s, n);
    }
    s
}

/// ` as "USER [GROUP]"` after a script that names its user.
fn describe_user(s: &mut String, n: &rvs_core::health::Notify) {
    if let Some(u) = &n.user {
        let _ = write!(s, " as {}", c_string(u.as_bytes()));
    }
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
            let _ = write!(line, " quorum-up {}", c_string(c.command.as_bytes()));
            describe_user(&mut line, c);
        }
        if let Some(c) = &svc.quorum_down {
            let _ = write!(line, " quorum-down {}", c_string(c.command.as_bytes()));
            describe_user(&mut line, c);
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
