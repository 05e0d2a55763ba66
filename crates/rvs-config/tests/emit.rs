//! The keepalived.conf and lvs.cf writers: every file they write parses back, with the
//! existing parsers, to the same `Config`, health monitoring and VIPs; what a format cannot
//! say is refused with a `Lossy` naming it, never dropped.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;
use rvs_config::{
    Lossy, NativeConf, Vip, emit_keepalived, emit_lvs_cf, emit_native, keepalived_vips,
    parse_keepalived, parse_lvs_cf, parse_native, render_all,
};
use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, Expect, HealthConfig, LoadMonitor, OnFailure,
    RealServerHealth, ServiceHealth, SorryServer,
};
use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, Prefix, Protocol, SchedFlags,
    SchedulerKind, ServiceKey, Switches, TableFullPolicy, TunnelCsum, TunnelKind,
    VirtualServiceConfig,
};
use std::time::Duration;

mod common;
use common::arb_native;

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn ok<T>(r: Result<T, Vec<rvs_config::Diagnostic>>, text: &str) -> T {
    match r {
        Ok(t) => t,
        Err(d) => panic!("{}\n--- in ---\n{text}", render_all(&d)),
    }
}

fn emitted(r: Result<String, Lossy>) -> String {
    r.unwrap_or_else(|l| panic!("{l}"))
}

/// lvs.cf → lvs.cf again: the same Config, health and VIPs. → keepalived.conf: refused
/// for nanny's checks (keepalived has no send/expect, slow start or rise); without the
/// health monitoring, the same Config.
#[test]
fn lvs_cf_files_convert_both_ways() {
    let none = HealthConfig::default();
    for name in ["direct.cf", "fwmark_persistent.cf", "nat_two_tier.cf"] {
        let text = data(name);
        let cf = ok(parse_lvs_cf(&text, name), &text);
        assert!(!cf.health.services.is_empty());
        let refused = emit_keepalived(&cf.config, &cf.health, &cf.vips, None).unwrap_err();
        assert!(
            refused.reasons.iter().any(|r| r.contains("slow start")),
            "{refused}"
        );

        // keepalived.conf cannot carry classifier rules: compare the rest.
        let mut without_rules = cf.config.clone();
        without_rules.fwmark_rules.clear();
        if cf.config.fwmark_rules.is_empty() {
            let k = emitted(emit_keepalived(
                &cf.config,
                &none,
                &cf.vips,
                cf.nat_router.as_ref(),
            ));
            let kc = ok(parse_keepalived(&k, "out.conf"), &k);
            assert_eq!(kc.config, cf.config, "{name} via keepalived.conf:\n{k}");
            let mut vips = cf.vips.clone();
            vips.extend(cf.nat_router.clone());
            assert_eq!(keepalived_vips(&kc), vips);
        } else {
            let l = emit_keepalived(&cf.config, &none, &cf.vips, None).unwrap_err();
            assert!(l.reasons.iter().any(|r| r.contains("classifier rule")));
            let k = emitted(emit_keepalived(&without_rules, &none, &cf.vips, None));
            let kc = ok(parse_keepalived(&k, "out.conf"), &k);
            assert_eq!(kc.config, without_rules, "{name} via keepalived.conf:\n{k}");
        }

        let l = emitted(emit_lvs_cf(
            &cf.config,
            &cf.health,
            &cf.vips,
            cf.nat_router.as_ref(),
        ));
        let lc = ok(parse_lvs_cf(&l, "out.cf"), &l);
        assert_eq!(lc.config, cf.config, "{name} via lvs.cf:\n{l}");
        assert_eq!(lc.health, cf.health, "{name} via lvs.cf:\n{l}");
        assert_eq!(lc.vips, cf.vips);
        assert_eq!(lc.nat_router, cf.nat_router);
        assert_eq!(lc.network, cf.network);
    }
}

/// keepalived.conf → keepalived.conf (and → lvs.cf when it fits; → native always).
#[test]
fn keepalived_files_convert() {
    for name in [
        "keepalived/nat_http.conf",
        "keepalived/dr_fwmark.conf",
        "keepalived/group.conf",
        "keepalived/samples/keepalived.conf.IPv6",
        "keepalived/samples/keepalived.conf.sample",
        "keepalived/samples/keepalived.conf.fwmark",
        "keepalived/samples/keepalived.conf.virtual_server_group",
        "keepalived/samples/keepalived.conf.vrrp",
        "keepalived/samples/keepalived.conf.inhibit",
        "keepalived/samples/keepalived.conf.quorum",
        "keepalived/samples/keepalived.conf.misc_check_arg",
        "keepalived/samples/keepalived.conf.UDP_CHECK",
        "keepalived/samples/keepalived.conf.PING_CHECK",
        "keepalived/samples/keepalived.conf.SSL_GET",
        "keepalived/samples/keepalived.conf.virtualhost",
        "keepalived/health.conf",
    ] {
        let text = data(name);
        let kc = ok(parse_keepalived(&text, name), &text);
        let vips = keepalived_vips(&kc);
        let k = emitted(emit_keepalived(&kc.config, &kc.health, &vips, None));
        let back = ok(parse_keepalived(&k, "out.conf"), &k);
        assert_eq!(back.config, kc.config, "{name}:\n{k}");
        assert_eq!(back.health, kc.health, "{name}:\n{k}");
        assert_eq!(keepalived_vips(&back), vips, "{name}");

        // keepalived → native → keepalived: the checks come back the same.
        let native = NativeConf {
            config: kc.config.clone(),
            vips: vips.clone(),
            nat_router: None,
            health: kc.health.clone(),
            failover: Default::default(),
            names: Default::default(),
        };
        let n = emit_native(&native);
        let nc = ok(parse_native(&n, "out.toml"), &n);
        assert_eq!(nc, native, "{name}");
        let k2 = emitted(emit_keepalived(&nc.config, &nc.health, &nc.vips, None));
        assert_eq!(k2, k, "{name}");

        // These samples all use something lvs.cf lacks (thresholds, VRRP addresses no
        // service uses, services without a VIP, mixed methods, keepalived's checkers); when
        // it fits, it is exact.
        if let Ok(l) = emit_lvs_cf(&kc.config, &kc.health, &vips, None) {
            let lc = ok(parse_lvs_cf(&l, "out.cf"), &l);
            assert_eq!(lc.config, kc.config, "{name} via lvs.cf:\n{l}");
            assert_eq!(lc.health, kc.health, "{name} via lvs.cf:\n{l}");
        }
    }
}

/// A keepalived.conf that lvs.cf can hold: to lvs.cf and back, and the written files.
#[test]
fn keepalived_to_lvs_cf_and_back() {
    let text = "\
global_defs {
    lvs_timeouts tcp 7200 tcpfin 30 udp 60
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.200.100/24 dev eth0 label eth0:1
        2001:db8::100/128 dev eth0
    }
}
virtual_server 192.168.200.100 80 {
    protocol TCP
    lb_algo wrr
    lb_kind DR
    persistence_timeout 600
    persistence_granularity 255.255.255.0
    real_server 192.168.200.11 80 {
        weight 3
        HTTP_GET {
            url {
                path /
                status_code 200
            }
        }
    }
    real_server 192.168.200.12 80 {
        weight 1
    }
}
virtual_server 2001:db8::100 443 {
    protocol TCP
    lvs_sched sh
    lvs_method DR
    real_server 2001:db8::11 443 {
    }
}
";
    let kc = ok(parse_keepalived(text, "in.conf"), text);
    let vips = keepalived_vips(&kc);
    // keepalived's HTTP_GET is not nanny's, and nanny checks every server.
    let r = emit_lvs_cf(&kc.config, &kc.health, &vips, None)
        .unwrap_err()
        .reasons
        .join("\n");
    assert!(
        r.contains("nanny sends and expects, or runs a program"),
        "{r}"
    );
    // With nanny's default checks, it fits.
    let nanny = nanny_defaults(&kc.config);
    let l = emitted(emit_lvs_cf(&kc.config, &nanny, &vips, None));
    let lc = ok(parse_lvs_cf(&l, "out.cf"), &l);
    assert_eq!(lc.config, kc.config);
    assert_eq!(lc.health, nanny);
    assert_eq!(lc.vips, vips);
    insta::assert_snapshot!("emit_keepalived_to_lvs_cf", l);
    let none = HealthConfig::default();
    let k = emitted(emit_keepalived(&lc.config, &none, &lc.vips, None));
    assert_eq!(ok(parse_keepalived(&k, "back.conf"), &k).config, kc.config);
    insta::assert_snapshot!("emit_lvs_cf_to_keepalived", k);
}

/// nanny's checks of every service as lvs.cf's parser gives them with no nanny key set
/// (an independent statement of the rule, to test the writer against).
fn nanny_defaults(config: &Config) -> HealthConfig {
    nanny_health(config, |_| None)
}

/// What a virtual's nanny keys say, for [`nanny_health`].
#[derive(Clone, Default)]
struct Nanny {
    timeout: u64,
    rise: u32,
    quiesce: bool,
    load: bool,
    via_vip: bool,
    /// `send`/`expect` (as the check kind, `udp` from the protocol) or `send_program`.
    kind: Option<CheckKind>,
    sorry: Option<IpAddr>,
}

/// The health lvs.cf's parser makes of each service and its nanny keys (None: Piranha's
/// defaults); fwmark services use port 80.
fn nanny_health(config: &Config, keys: impl Fn(usize) -> Option<Nanny>) -> HealthConfig {
    let mut out = HealthConfig::default();
    for (i, svc) in config.services.iter().enumerate() {
        let n = keys(i).unwrap_or(Nanny {
            timeout: 10,
            rise: 18,
            ..Nanny::default()
        });
        if svc.real_servers.is_empty() && n.sorry.is_none() {
            continue;
        }
        let (udp, vport, fwmark) = match svc.key {
            ServiceKey::Addr { protocol, port, .. } => (protocol == Protocol::Udp, port, false),
            // A fwmark virtual's protocol is its classifier rules'.
            ServiceKey::Fwmark { mark, family } => (
                config
                    .fwmark_rules
                    .iter()
                    .find(|r| r.mark == mark && Family::of(&r.dst.addr) == family)
                    .and_then(|r| r.protocol)
                    == Some(Protocol::Udp),
                80,
                true,
            ),
        };
        let every = Duration::from_secs(n.timeout);
        // lvs.cf's one `network` for all.
        let method = config
            .services
            .iter()
            .flat_map(|s| &s.real_servers)
            .next()
            .map_or(ForwardMethod::Masq, |r| r.method);
        out.services.push(ServiceHealth {
            service: svc.key,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            omega: false,
            sorry_server: n.sorry.map(|addr| SorryServer {
                addr,
                port: vport,
                method,
                inhibit: false,
            }),
            real_servers: svc
                .real_servers
                .iter()
                .map(|r| {
                    let connect_port = (fwmark && r.port != vport).then_some(vport);
                    let port = connect_port.unwrap_or(r.port);
                    let kind = match (&n.kind, port, udp) {
                        (Some(CheckKind::SendExpect { send, expect, .. }), _, _) => {
                            CheckKind::SendExpect {
                                send: send.clone(),
                                expect: expect.clone(),
                                udp,
                            }
                        }
                        (Some(k), _, _) => k.clone(),
                        (None, 80, _) => CheckKind::SendExpect {
                            send: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
                            expect: Some(Expect::Prefix(b"HTTP".to_vec())),
                            udp,
                        },
                        (None, _, true) => CheckKind::SendExpect {
                            send: vec![],
                            expect: None,
                            udp,
                        },
                        (None, _, false) => CheckKind::Tcp,
                    };
                    RealServerHealth {
                        addr: r.addr,
                        port: r.port,
                        on_failure: if n.quiesce {
                            OnFailure::Quiesce
                        } else {
                            OnFailure::Remove
                        },
                        alpha: true,
                        rise: n.rise,
                        fall: 1,
                        slow_start: Some(every),
                        notify_up: None,
                        notify_down: None,
                        load_monitor: n.load.then_some(LoadMonitor {
                            interval: Duration::from_secs(20),
                            agent: None,
                            scale: 4,
                        }),
                        checks: vec![CheckSpec {
                            kind,
                            target: CheckTarget {
                                connect_port,
                                via_vip: n.via_vip,
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
                .collect(),
        });
    }
    out
}

/// The realistic native file uses everything, so both formats refuse it, naming each loss.
#[test]
fn full_native_file_is_refused_with_reasons() {
    let text = data("native/full.toml");
    let n = ok(parse_native(&text, "full.toml"), &text);
    let k = emit_keepalived(&n.config, &n.health, &n.vips, n.nat_router.as_ref()).unwrap_err();
    let l = emit_lvs_cf(&n.config, &n.health, &n.vips, n.nat_router.as_ref()).unwrap_err();
    insta::assert_snapshot!("emit_full_keepalived_lossy", k.to_string());
    insta::assert_snapshot!("emit_full_lvs_cf_lossy", l.to_string());
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn one_service(method: ForwardMethod) -> NativeConf {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.1.0.100"),
        port: 80,
    });
    let mut rs = rvs_core::model::RealServerConfig::new(ip("10.2.0.11"), 80);
    rs.method = method;
    svc.real_servers.push(rs);
    let mut c = NativeConf::default();
    c.config.services.push(svc);
    c.config.local_pool = LocalPool {
        addrs: vec![ip("10.2.0.250")],
        port_range: (1024, 65_535),
    };
    if method != ForwardMethod::FullNat {
        c.config.local_pool = LocalPool::default();
    }
    c.vips.push(Vip {
        addr: ip("10.1.0.100"),
        prefix: 24,
        device: "eth0".into(),
        label: "eth0:1".into(),
    });
    c.health = nanny_defaults(&c.config);
    c
}

#[test]
fn each_loss_is_named() {
    let reasons = |r: Result<String, Lossy>| r.unwrap_err().reasons.join("\n");

    // FullNAT in keepalived.conf: DPVS's dialect (`lvs_method FNAT`, `laddr_group_name`),
    // but only with DPVS's local port range.
    let c = one_service(ForwardMethod::FullNat);
    let mut ranged = c.config.clone();
    ranged.local_pool.port_range = (20000, 60999);
    let r = reasons(emit_keepalived(
        &ranged,
        &HealthConfig::default(),
        &c.vips,
        None,
    ));
    assert!(
        r.contains("the FullNAT local port range 20000-60999: keepalived.conf (DPVS's dialect) allocates from 1024-65535 only"),
        "{r}"
    );
    assert!(
        !r.contains("FullNat, which keepalived cannot configure"),
        "{r}"
    );
    let mut dpvs = c.config.clone();
    dpvs.local_pool.port_range = (1024, 65535);
    let text = emitted(emit_keepalived(
        &dpvs,
        &HealthConfig::default(),
        &c.vips,
        None,
    ));
    assert!(text.contains("lvs_method FNAT"), "{text}");
    assert!(text.contains("laddr_group_name rvs_fullnat"), "{text}");
    let back = rvs_config::parse_keepalived(&text, "k.conf").unwrap();
    assert_eq!(back.config.local_pool, dpvs.local_pool);
    assert_eq!(back.config.services, dpvs.services);
    // ... which lvs.cf (rvs's `network = fullnat`) can say.
    let l = emitted(emit_lvs_cf(&c.config, &c.health, &c.vips, None));
    assert_eq!(parse_lvs_cf(&l, "f.cf").unwrap().config, c.config);
    assert_eq!(parse_lvs_cf(&l, "f.cf").unwrap().health, c.health);

    // Mixed methods in lvs.cf.
    let mut c = one_service(ForwardMethod::Masq);
    let mut dr = c.config.services[0].real_servers[0];
    dr.addr = ip("10.2.0.12");
    dr.method = ForwardMethod::DirectRoute;
    c.config.services[0].real_servers.push(dr);
    let r = reasons(emit_lvs_cf(&c.config, &c.health, &c.vips, None));
    assert!(r.contains("mixed forwarding methods"), "{r}");
    assert!(emit_keepalived(&c.config, &HealthConfig::default(), &c.vips, None).is_ok());

    // mh flags, table size, one-packet, thresholds in lvs.cf; GUE tunnels in lvs.cf.
    let mut c = one_service(ForwardMethod::Tunnel {
        kind: TunnelKind::Gue { port: 6080 },
        csum: TunnelCsum::Csum,
    });
    let svc = &mut c.config.services[0];
    svc.scheduler = SchedulerKind::Mh;
    svc.flags = SchedFlags(SchedFlags::FLAG_1 | SchedFlags::FLAG_2);
    svc.mh_table_size = 65_521;
    svc.real_servers[0].u_threshold = 10;
    let r = reasons(emit_lvs_cf(&c.config, &c.health, &c.vips, None));
    for needle in [
        "scheduler flags 0x3",
        "mh table size 65521",
        "thresholds 10/0",
        "plain IPIP",
    ] {
        assert!(r.contains(needle), "{needle}: {r}");
    }
    let r = reasons(emit_keepalived(
        &c.config,
        &HealthConfig::default(),
        &c.vips,
        None,
    ));
    assert!(r.contains("mh table size 65521"), "{r}");
    c.config.services[0].mh_table_size = VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE;
    let k = emitted(emit_keepalived(
        &c.config,
        &HealthConfig::default(),
        &c.vips,
        None,
    ));
    assert_eq!(parse_keepalived(&k, "k").unwrap().config, c.config, "{k}");

    // Director settings in both; a service without a VIP and an unused VIP in lvs.cf.
    let mut c = one_service(ForwardMethod::DirectRoute);
    c.config.switches = Switches {
        sloppy_tcp: true,
        ..Switches::default()
    };
    c.config.conn_table_max = 10;
    c.config.neigh_gc_thresh3 = 2048;
    c.config.table_full = TableFullPolicy::EvictEmbryonic;
    c.config.conn_table_bytes = 64 << 20;
    c.config.defense.drop_entry = 1;
    c.config.syn_shed.enabled = false;
    c.vips[0].addr = ip("10.1.0.101");
    for r in [
        reasons(emit_keepalived(
            &c.config,
            &HealthConfig::default(),
            &c.vips,
            None,
        )),
        reasons(emit_lvs_cf(&c.config, &c.health, &c.vips, None)),
    ] {
        for needle in [
            "IPVS switches",
            "table size 10",
            "table-full policy",
            "gc_thresh3) 2048",
            "SYN admission enabled = false, budget = 2000, proven = 65536: ",
            "connection table memory 64M: ",
            "defence sysctls amemthresh = 1024, am_droprate = 10, drop_entry = 1, drop_packet = 0, secure_tcp = 0: ",
        ] {
            assert!(r.contains(needle), "{needle}: {r}");
        }
    }
    let r = reasons(emit_lvs_cf(&c.config, &c.health, &c.vips, None));
    assert!(r.contains("no VIP for 10.1.0.100"), "{r}");
    assert!(r.contains("VIP 10.1.0.101 is used by no service"), "{r}");
}

// ---------------------------------------------------------------------------------------
// Generated configurations, shaped to fit each format.

/// Remove what keepalived.conf cannot say.
fn keepalived_shaped(mut c: NativeConf) -> NativeConf {
    let cfg = &mut c.config;
    cfg.switches = Switches::default();
    cfg.conn_table_max = 0;
    cfg.neigh_gc_thresh3 = 0;
    cfg.table_full = TableFullPolicy::default();
    cfg.conn_table_bytes = 0;
    cfg.defense = Default::default();
    cfg.local_pool = LocalPool::default();
    cfg.fwmark_rules.clear();
    for t in [
        &mut cfg.timeouts.tcp,
        &mut cfg.timeouts.tcp_fin,
        &mut cfg.timeouts.udp,
    ] {
        *t = *t % 2_678_400 + 1;
    }
    // keepalived drops a virtual server without real servers.
    cfg.services.retain(|s| !s.real_servers.is_empty());
    c.health
        .services
        .retain(|h| cfg.services.iter().any(|s| s.key == h.service));
    // keepalived lowers a quorum above the total weight, and a hysteresis not below it.
    for h in &mut c.health.services {
        let total: u32 = cfg
            .services
            .iter()
            .find(|s| s.key == h.service)
            .map_or(0, |s| s.real_servers.iter().map(|r| r.weight).sum());
        h.quorum = h.quorum.min(total);
        if h.hysteresis >= h.quorum {
            h.hysteresis = h.quorum.saturating_sub(1);
        }
    }
    for s in &mut cfg.services {
        s.mh_table_size = VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE;
        if let Some(p) = &mut s.persistence
            && p.prefix == 0
        {
            p.prefix = 1;
        }
        for r in &mut s.real_servers {
            if r.method == ForwardMethod::FullNat {
                r.method = ForwardMethod::Masq;
            }
        }
    }
    keepalived_health(&mut c);
    c
}

/// Remove what lvs.cf cannot say, and give every service address its VIP.
fn lvs_cf_shaped(mut c: NativeConf) -> NativeConf {
    let cfg = &mut c.config;
    cfg.switches = Switches::default();
    cfg.conn_table_max = 0;
    cfg.neigh_gc_thresh3 = 0;
    cfg.table_full = TableFullPolicy::default();
    cfg.conn_table_bytes = 0;
    cfg.defense = Default::default();
    for t in [
        &mut cfg.timeouts.tcp,
        &mut cfg.timeouts.tcp_fin,
        &mut cfg.timeouts.udp,
    ] {
        *t = (*t).max(1);
    }
    let method = cfg
        .services
        .iter()
        .flat_map(|s| &s.real_servers)
        .map(|r| match r.method {
            ForwardMethod::Tunnel { .. } => ForwardMethod::Tunnel {
                kind: TunnelKind::Ipip,
                csum: TunnelCsum::NoCsum,
            },
            m => m,
        })
        .next();
    let rules = std::mem::take(&mut cfg.fwmark_rules);
    let mut vips: Vec<Vip> = Vec::new();
    let add_vip = |addr: IpAddr, vips: &mut Vec<Vip>| {
        if !vips.iter().any(|v| v.addr == addr) {
            let n = vips.len();
            vips.push(Vip {
                addr,
                prefix: match addr {
                    IpAddr::V4(_) => 16 + n as u8,
                    IpAddr::V6(_) => 128,
                },
                device: "eth0".into(),
                label: format!("eth0:{n}"),
            });
        }
    };
    for s in &mut cfg.services {
        let family = s.key.family();
        s.flags = SchedFlags::default();
        s.one_packet = false;
        s.mh_table_size = VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE;
        if let Some(p) = &mut s.persistence
            && (p.prefix == 0 || family == Family::V6)
        {
            p.prefix = family.max_prefix();
        }
        let tunnel = matches!(method, Some(ForwardMethod::Tunnel { .. }));
        s.real_servers
            .retain(|r| tunnel || Family::of(&r.addr) == family);
        for r in &mut s.real_servers {
            r.method = method.unwrap();
            r.u_threshold = 0;
            r.l_threshold = 0;
        }
        match s.key {
            ServiceKey::Addr { addr, .. } => add_vip(addr, &mut vips),
            ServiceKey::Fwmark { mark, family } => {
                // The generated rules of this mark, moved onto one host of its family.
                let host = match family {
                    Family::V4 => IpAddr::from([10, 200, 0, mark as u8]),
                    Family::V6 => IpAddr::from([0xfd00, 200, 0, 0, 0, 0, 0, mark as u16]),
                };
                let mine: Vec<FwmarkRule> = rules
                    .iter()
                    .filter(|r| r.mark == mark)
                    .map(|r| FwmarkRule {
                        protocol: Some(rules[0].protocol.unwrap_or(Protocol::Tcp)),
                        dst: Prefix {
                            addr: host,
                            len: family.max_prefix(),
                        },
                        src: None,
                        ..*r
                    })
                    .collect();
                if mine.is_empty() && !vips.iter().any(|v| Family::of(&v.addr) == family) {
                    add_vip(host, &mut vips);
                }
                if let Some(r) = mine.first() {
                    add_vip(r.dst.addr, &mut vips);
                }
                cfg.fwmark_rules.extend(mine);
            }
        }
    }
    let any_rs = cfg.services.iter().any(|s| !s.real_servers.is_empty());
    if any_rs && method == Some(ForwardMethod::FullNat) {
        cfg.local_pool = LocalPool {
            addrs: vec![ip("10.9.0.1"), ip("fd00:9::1")],
            port_range: (1024, 65_535),
        };
    } else {
        cfg.local_pool = LocalPool::default();
    }
    c.vips = vips;
    if let Some(n) = &mut c.nat_router {
        n.prefix = match n.addr {
            IpAddr::V4(_) if n.prefix == 0 => 32,
            IpAddr::V4(_) => n.prefix,
            IpAddr::V6(_) => 128,
        };
    }
    lvs_cf_health(&mut c);
    c
}

/// Shape generated health to what keepalived.conf can say: no nanny checks, rise and fall
/// 1, no slow start or load monitor, no check through the VIP, timers keepalived keeps, MISC
/// without a target; and only services that have something for keepalived to act on.
fn keepalived_health(c: &mut NativeConf) {
    c.health.services.retain_mut(|h| {
        if let Some(s) = &mut h.sorry_server
            && s.method == ForwardMethod::FullNat
        {
            s.method = ForwardMethod::Masq;
        }
        for r in &mut h.real_servers {
            r.rise = 1;
            r.fall = 1;
            r.slow_start = None;
            r.load_monitor = None;
            r.checks.retain(|k| {
                !matches!(
                    k.kind,
                    CheckKind::SendExpect { .. } | CheckKind::Program { .. }
                )
            });
            for k in &mut r.checks {
                k.target.via_vip = false;
                k.timers.interval = k.timers.interval.max(Duration::from_secs(1));
                if let CheckKind::Misc { timeout, .. } = k.kind {
                    k.target = CheckTarget::default();
                    k.timers.timeout = timeout.unwrap_or(k.timers.interval);
                }
            }
            r.alpha &= !r.checks.is_empty();
        }
        h.real_servers
            .iter()
            .any(|r| !r.checks.is_empty() || r.notify_up.is_some() || r.notify_down.is_some())
            || h.sorry_server.is_some()
            || h.quorum_up.is_some()
            || h.quorum_down.is_some()
    });
}

/// Nanny-shaped health for every service lvs.cf writes, its keys taken from the generated
/// health where there is some (so the shapes vary).
fn lvs_cf_health(c: &mut NativeConf) {
    let generated = std::mem::take(&mut c.health);
    let config = &c.config;
    c.health = nanny_health(config, |i| {
        let svc = &config.services[i];
        let h = generated.services.iter().find(|h| h.service == svc.key)?;
        let method = svc.real_servers.first().map(|r| r.method);
        let first = h.real_servers.first();
        let check = first.and_then(|r| r.checks.first());
        let plain = |t: &str| !t.contains(['"', '\\', '\n', '\r']);
        let kind = match check.map(|k| &k.kind) {
            Some(CheckKind::SendExpect { send, expect, .. }) => Some(CheckKind::SendExpect {
                send: send.clone(),
                expect: match expect {
                    Some(Expect::Prefix(p)) if p.as_slice() == b"*" => Some(Expect::Any),
                    Some(Expect::Regex(r)) if r == "*" => Some(Expect::Any),
                    e => e.clone(),
                },
                udp: false,
            }),
            Some(CheckKind::Program { command, expect })
                if plain(command) && expect.as_deref().is_none_or(plain) =>
            {
                Some(CheckKind::Program {
                    command: command.clone(),
                    expect: expect.clone(),
                })
            }
            _ => None,
        };
        Some(Nanny {
            timeout: check.map_or(10, |k| k.timers.interval.as_secs().clamp(1, 60)),
            rise: first.map_or(1, |r| r.rise),
            quiesce: first.is_some_and(|r| r.on_failure == OnFailure::Quiesce),
            load: first.is_some_and(|r| r.load_monitor.is_some()),
            via_vip: check.is_some_and(|k| k.target.via_vip)
                && matches!(
                    method,
                    Some(ForwardMethod::DirectRoute | ForwardMethod::Tunnel { .. })
                ),
            kind,
            sorry: h.sorry_server.map(|s| s.addr),
        })
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn keepalived_round_trip(c in arb_native().prop_map(keepalived_shaped)) {
        prop_assert_eq!(c.config.validate(), Ok(()));
        let text = emit_keepalived(&c.config, &c.health, &c.vips, c.nat_router.as_ref())
            .map_err(|l| TestCaseError::fail(l.to_string()))?;
        let back = parse_keepalived(&text, "gen.conf")
            .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
        prop_assert_eq!(&back.config, &c.config, "{}", text);
        prop_assert_eq!(&back.health, &c.health, "{}", text);
        let mut vips = c.vips.clone();
        vips.extend(c.nat_router.clone());
        prop_assert_eq!(keepalived_vips(&back), vips);
        // And through the native format, the same keepalived.conf again.
        let n = emit_native(&NativeConf { nat_router: None, ..c.clone() });
        let nc = parse_native(&n, "gen.toml")
            .map_err(|d| TestCaseError::fail(format!("{}\n{n}", render_all(&d))))?;
        let again = emit_keepalived(&nc.config, &nc.health, &nc.vips, c.nat_router.as_ref())
            .map_err(|l| TestCaseError::fail(l.to_string()))?;
        prop_assert_eq!(again, text);
    }

    #[test]
    fn lvs_cf_round_trip(c in arb_native().prop_map(lvs_cf_shaped)) {
        prop_assert_eq!(c.config.validate(), Ok(()));
        let text = emit_lvs_cf(&c.config, &c.health, &c.vips, c.nat_router.as_ref())
            .map_err(|l| TestCaseError::fail(l.to_string()))?;
        let back = parse_lvs_cf(&text, "gen.cf")
            .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
        prop_assert_eq!(&back.config, &c.config, "{}", text);
        prop_assert_eq!(&back.health, &c.health, "{}", text);
        prop_assert_eq!(&back.vips, &c.vips);
        prop_assert_eq!(&back.nat_router, &c.nat_router);
    }

    /// Whatever the configuration, a writer that does not refuse is exact.
    #[test]
    fn accepted_means_exact(c in arb_native()) {
        if let Ok(text) = emit_keepalived(&c.config, &c.health, &c.vips, None) {
            let back = parse_keepalived(&text, "k")
                .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
            prop_assert_eq!(&back.config, &c.config);
            prop_assert_eq!(&back.health, &c.health, "{}", text);
        }
        if let Ok(text) = emit_lvs_cf(&c.config, &c.health, &c.vips, c.nat_router.as_ref()) {
            let back = parse_lvs_cf(&text, "l")
                .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
            prop_assert_eq!(&back.config, &c.config);
            prop_assert_eq!(&back.health, &c.health, "{}", text);
        }
    }
}

/// An SCTP service goes to keepalived.conf (`protocol SCTP`) and back unchanged; lvs.cf
/// cannot say it and the conversion names the loss.
#[test]
fn sctp_converts_to_keepalived_and_is_refused_for_lvs_cf() {
    let mut c = one_service(ForwardMethod::Masq);
    c.config.services[0].key = ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: ip("10.1.0.100"),
        port: 2905,
    };
    c.health = nanny_defaults(&c.config);
    let k = emit_keepalived(&c.config, &HealthConfig::default(), &c.vips, None).unwrap();
    assert!(k.contains("protocol SCTP"), "{k}");
    let back = parse_keepalived(&k, "k.conf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(back.config.services, c.config.services);
    let r = emit_lvs_cf(&c.config, &c.health, &c.vips, None)
        .unwrap_err()
        .reasons
        .join("\n");
    assert!(
        r.contains("SCTP (Piranha's lvs.cf knows `protocol = tcp | udp`)"),
        "{r}"
    );
}

// ---------------------------------------------------------------------------------------
// Failover services (lvs.cf `service = fos`).

/// What rvs runs of an lvs.cf, as the writers take it (crates/rvs load.rs does the same):
/// with `service = fos` the VIPs are the failover services' addresses.
fn lvs_cf_conf(name: &str, text: &str) -> NativeConf {
    let cf = ok(parse_lvs_cf(text, name), text);
    let failover = ok(rvs_config::failover_from_lvs_cf(&cf), text);
    let vips = match &failover.mode {
        rvs_config::FailoverMode::Fos(f) => f.addresses(),
        _ => cf.vips.clone(),
    };
    NativeConf {
        config: cf.config.clone(),
        vips,
        nat_router: cf.nat_router.clone(),
        health: cf.health.clone(),
        failover: rvs_config::FailoverConfig {
            warnings: Vec::new(),
            ..failover
        },
        names: rvs_config::lvs_cf_names(&cf),
    }
}

/// Piranha's fos sample shape (piranha/fos.cf): lvs.cf → lvs.cf and lvs.cf → TOML →
/// lvs.cf keep every failover service, its check and commands, and the heartbeat; the
/// written files are pinned. keepalived.conf and ipvsadm rules refuse, saying why.
#[test]
fn fos_sample_round_trips_through_lvs_cf_and_toml() {
    let text = data("piranha/fos.cf");
    let a = lvs_cf_conf("fos.cf", &text);
    let rvs_config::FailoverMode::Fos(fos) = &a.failover.mode else {
        panic!("{:?}", a.failover.mode)
    };
    assert_eq!(fos.services.len(), 2);

    let cf = rvs_config::write_lvs_cf(&a);
    assert_eq!(cf.losses, Vec::<String>::new());
    let b = lvs_cf_conf("out.cf", &cf.text);
    assert_eq!(b, a, "{}", cf.text);
    insta::assert_snapshot!("fos_sample_as_lvs_cf", cf.text);

    let toml = emit_native(&a);
    let t = ok(parse_native(&toml, "fos.toml"), &toml);
    assert_eq!(t, a, "{toml}");
    insta::assert_snapshot!("fos_sample_as_toml", toml);
    let cf2 = rvs_config::write_lvs_cf(&t);
    assert_eq!(cf2.losses, Vec::<String>::new());
    assert_eq!(cf2.text, cf.text);

    let k = rvs_config::write_keepalived(&a);
    assert!(
        k.losses.iter().any(|l| l.starts_with(
            "failover services (`service = fos`: web1, dns): keepalived.conf cannot carry them \
             (keepalived moves addresses by VRRP but runs no service's start and stop commands"
        )),
        "{:?}",
        k.losses
    );
    let i = rvs_config::write_ipvsadm(&a);
    assert!(
        i.losses.iter().any(|l| l.starts_with(
            "failover services (`service = fos`: web1, dns): ipvsadm rules cannot carry them"
        )),
        "{:?}",
        i.losses
    );
}

/// A failover service lvs.cf cannot say is refused by the lvs.cf writer, naming it: a check
/// nanny does not run, timers it does not have, a regular expression, an argument with a
/// space, an IPv6 prefix, a device that is not the label's, and virtual services beside.
#[test]
fn fos_the_lvs_cf_writer_cannot_say_is_named() {
    let text =
        "service = fos\nfailover w {\n active = 1\n address = 10.0.0.5 eth0:1\n port = 81\n}\n";
    let base = lvs_cf_conf("w.cf", text);
    let with = |f: &dyn Fn(&mut rvs_config::FosServiceSetup)| {
        let mut c = base.clone();
        let rvs_config::FailoverMode::Fos(fos) = &mut c.failover.mode else {
            unreachable!()
        };
        f(&mut fos.services[0]);
        c.vips = fos.addresses();
        rvs_config::write_lvs_cf(&c).losses
    };
    assert_eq!(with(&|_| {}), Vec::<String>::new());
    type Change<'a> = &'a dyn Fn(&mut rvs_config::FosServiceSetup);
    let cases: [(Change<'_>, &str); 7] = [
        (
            &|s| s.check.kind = CheckKind::Ping,
            "failover service `w`: ping (fos's nanny sends and expects",
        ),
        (
            &|s| s.check.timers.interval = Duration::from_millis(1500),
            "failover service `w`: a check every 1.5s",
        ),
        (
            &|s| s.check.timers.retry = 2,
            "failover service `w`: tcp-connect every 10s timeout 10s retry 2",
        ),
        (
            &|s| {
                s.check.kind = CheckKind::SendExpect {
                    send: b"x".to_vec(),
                    expect: Some(Expect::Regex("^OK".into())),
                    udp: false,
                }
            },
            "failover service `w`: expect Regex(\"^OK\") (fos's nanny compares a prefix",
        ),
        (
            &|s| s.start_cmd = Some(vec!["/bin/sh".into(), "-c".into(), "a b".into()]),
            "failover service `w`: `start_cmd` [\"/bin/sh\", \"-c\", \"a b\"] (lvs.cf's is one line",
        ),
        (
            &|s| {
                s.address.addr = "fd00::5".parse().unwrap();
                s.address.prefix = 64;
            },
            "failover service `w`: prefix fd00::5/64 (`vip_nmask` is an IPv4 netmask)",
        ),
        (
            &|s| s.address.device = "eth1".into(),
            "failover service `w`: address 10.0.0.5 on device `eth1` with label `eth0:1`",
        ),
    ];
    for (change, want) in cases {
        let losses = with(change);
        assert!(
            losses.iter().any(|l| l.starts_with(want)),
            "{want}\n{losses:?}"
        );
    }
    let mut c = base.clone();
    let one = one_service(ForwardMethod::DirectRoute);
    c.config = one.config;
    c.vips.extend(one.vips);
    let losses = rvs_config::write_lvs_cf(&c).losses;
    assert!(
        losses.iter().any(|l| l.contains(
            "with failover services (w): lvs.cf's `service = fos` runs no virtual service"
        )),
        "{losses:?}"
    );
}

/// The SYN proxy: keepalived.conf gets DPVS's `syn_proxy` in the virtual server and reads
/// it back; lvs.cf has no key for it and says so; "all services" is named as a loss in
/// keepalived.conf (written per virtual server).
#[test]
fn synproxy_is_written_for_dpvs_keepalived_and_named_elsewhere() {
    let c = one_service(ForwardMethod::Masq);
    let mut cfg = c.config.clone();
    let key = cfg.services[0].key;
    cfg.synproxy.services.push(key);
    let text = emitted(emit_keepalived(
        &cfg,
        &HealthConfig::default(),
        &c.vips,
        None,
    ));
    assert!(text.contains("    syn_proxy\n"), "{text}");
    let back = rvs_config::parse_keepalived(&text, "k.conf").unwrap();
    assert_eq!(back.config.synproxy, cfg.synproxy);
    let r = emit_lvs_cf(&cfg, &HealthConfig::default(), &c.vips, None)
        .unwrap_err()
        .reasons
        .join("\n");
    assert!(
        r.contains("TCP 10.1.0.100:80: the SYN proxy (lvs.cf has no key for it)"),
        "{r}"
    );
    let mut all = c.config.clone();
    all.synproxy.all = true;
    let r = emit_keepalived(&all, &HealthConfig::default(), &c.vips, None)
        .unwrap_err()
        .reasons
        .join("\n");
    assert!(r.contains("the SYN proxy on for every service"), "{r}");
}
