//! The keepalived.conf and lvs.cf writers: every file they write parses back, with the
//! existing parsers, to the same `Config` (and VIPs); what a format cannot say is refused
//! with a `Lossy` naming it, never dropped.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;
use rvs_config::{
    Lossy, NativeConf, Vip, emit_keepalived, emit_lvs_cf, emit_native, keepalived_vips,
    parse_keepalived, parse_lvs_cf, parse_native, render_all,
};
use rvs_core::model::{
    Family, ForwardMethod, FwmarkRule, LocalPool, Prefix, Protocol, SchedFlags, SchedulerKind,
    ServiceKey, Switches, TableFullPolicy, TunnelCsum, TunnelKind, VirtualServiceConfig,
};

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

/// lvs.cf → keepalived.conf and → lvs.cf again: the same Config (and VIPs) each time.
#[test]
fn lvs_cf_files_convert_both_ways() {
    for name in ["direct.cf", "fwmark_persistent.cf", "nat_two_tier.cf"] {
        let text = data(name);
        let cf = ok(parse_lvs_cf(&text, name), &text);

        // keepalived.conf cannot carry classifier rules: compare the rest.
        let mut without_rules = cf.config.clone();
        without_rules.fwmark_rules.clear();
        if cf.config.fwmark_rules.is_empty() {
            let k = emitted(emit_keepalived(
                &cf.config,
                &cf.vips,
                cf.nat_router.as_ref(),
            ));
            let kc = ok(parse_keepalived(&k, "out.conf"), &k);
            assert_eq!(kc.config, cf.config, "{name} via keepalived.conf:\n{k}");
            let mut vips = cf.vips.clone();
            vips.extend(cf.nat_router.clone());
            assert_eq!(keepalived_vips(&kc), vips);
        } else {
            let l = emit_keepalived(&cf.config, &cf.vips, None).unwrap_err();
            assert!(l.reasons.iter().any(|r| r.contains("classifier rule")));
            let k = emitted(emit_keepalived(&without_rules, &cf.vips, None));
            let kc = ok(parse_keepalived(&k, "out.conf"), &k);
            assert_eq!(kc.config, without_rules, "{name} via keepalived.conf:\n{k}");
        }

        let l = emitted(emit_lvs_cf(&cf.config, &cf.vips, cf.nat_router.as_ref()));
        let lc = ok(parse_lvs_cf(&l, "out.cf"), &l);
        assert_eq!(lc.config, cf.config, "{name} via lvs.cf:\n{l}");
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
    ] {
        let text = data(name);
        let kc = ok(parse_keepalived(&text, name), &text);
        let vips = keepalived_vips(&kc);
        let k = emitted(emit_keepalived(&kc.config, &vips, None));
        let back = ok(parse_keepalived(&k, "out.conf"), &k);
        assert_eq!(back.config, kc.config, "{name}:\n{k}");
        assert_eq!(keepalived_vips(&back), vips, "{name}");

        let native = NativeConf {
            config: kc.config.clone(),
            vips: vips.clone(),
            nat_router: None,
        };
        let n = emit_native(&native);
        assert_eq!(ok(parse_native(&n, "out.toml"), &n), native, "{name}");

        // These samples all use something lvs.cf lacks (thresholds, VRRP addresses no
        // service uses, services without a VIP, mixed methods); when it fits, it is exact.
        if let Ok(l) = emit_lvs_cf(&kc.config, &vips, None) {
            let lc = ok(parse_lvs_cf(&l, "out.cf"), &l);
            assert_eq!(lc.config, kc.config, "{name} via lvs.cf:\n{l}");
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
    lvs_sched sh
    lvs_method DR
    real_server 2001:db8::11 443 {
    }
}
";
    let kc = ok(parse_keepalived(text, "in.conf"), text);
    let vips = keepalived_vips(&kc);
    let l = emitted(emit_lvs_cf(&kc.config, &vips, None));
    let lc = ok(parse_lvs_cf(&l, "out.cf"), &l);
    assert_eq!(lc.config, kc.config);
    assert_eq!(lc.vips, vips);
    insta::assert_snapshot!("emit_keepalived_to_lvs_cf", l);
    let k = emitted(emit_keepalived(&lc.config, &lc.vips, None));
    assert_eq!(ok(parse_keepalived(&k, "back.conf"), &k).config, kc.config);
    insta::assert_snapshot!("emit_lvs_cf_to_keepalived", k);
}

/// The realistic native file uses everything, so both formats refuse it, naming each loss.
#[test]
fn full_native_file_is_refused_with_reasons() {
    let text = data("native/full.toml");
    let n = ok(parse_native(&text, "full.toml"), &text);
    let k = emit_keepalived(&n.config, &n.vips, n.nat_router.as_ref()).unwrap_err();
    let l = emit_lvs_cf(&n.config, &n.vips, n.nat_router.as_ref()).unwrap_err();
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
    c
}

#[test]
fn each_loss_is_named() {
    let reasons = |r: Result<String, Lossy>| r.unwrap_err().reasons.join("\n");

    // FullNAT in keepalived.
    let c = one_service(ForwardMethod::FullNat);
    let r = reasons(emit_keepalived(&c.config, &c.vips, None));
    assert!(r.contains("keepalived has no FullNAT"), "{r}");
    assert!(
        r.contains("FullNat, which keepalived cannot configure"),
        "{r}"
    );
    // ... which lvs.cf (rvs's `network = fullnat`) can say.
    let l = emitted(emit_lvs_cf(&c.config, &c.vips, None));
    assert_eq!(parse_lvs_cf(&l, "f.cf").unwrap().config, c.config);

    // Mixed methods in lvs.cf.
    let mut c = one_service(ForwardMethod::Masq);
    let mut dr = c.config.services[0].real_servers[0];
    dr.addr = ip("10.2.0.12");
    dr.method = ForwardMethod::DirectRoute;
    c.config.services[0].real_servers.push(dr);
    let r = reasons(emit_lvs_cf(&c.config, &c.vips, None));
    assert!(r.contains("mixed forwarding methods"), "{r}");
    assert!(emit_keepalived(&c.config, &c.vips, None).is_ok());

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
    let r = reasons(emit_lvs_cf(&c.config, &c.vips, None));
    for needle in [
        "scheduler flags 0x3",
        "mh table size 65521",
        "thresholds 10/0",
        "plain IPIP",
    ] {
        assert!(r.contains(needle), "{needle}: {r}");
    }
    let r = reasons(emit_keepalived(&c.config, &c.vips, None));
    assert!(r.contains("mh table size 65521"), "{r}");
    c.config.services[0].mh_table_size = VirtualServiceConfig::DEFAULT_MH_TABLE_SIZE;
    let k = emitted(emit_keepalived(&c.config, &c.vips, None));
    assert_eq!(parse_keepalived(&k, "k").unwrap().config, c.config, "{k}");

    // Director settings in both; a service without a VIP and an unused VIP in lvs.cf.
    let mut c = one_service(ForwardMethod::DirectRoute);
    c.config.switches = Switches {
        sloppy_tcp: true,
        ..Switches::default()
    };
    c.config.conn_table_max = 10;
    c.config.table_full = TableFullPolicy::EvictEmbryonic;
    c.vips[0].addr = ip("10.1.0.101");
    for r in [
        reasons(emit_keepalived(&c.config, &c.vips, None)),
        reasons(emit_lvs_cf(&c.config, &c.vips, None)),
    ] {
        for needle in ["IPVS switches", "table size 10", "table-full policy"] {
            assert!(r.contains(needle), "{needle}: {r}");
        }
    }
    let r = reasons(emit_lvs_cf(&c.config, &c.vips, None));
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
    cfg.table_full = TableFullPolicy::default();
    cfg.local_pool = LocalPool::default();
    cfg.fwmark_rules.clear();
    for t in [
        &mut cfg.timeouts.tcp,
        &mut cfg.timeouts.tcp_fin,
        &mut cfg.timeouts.udp,
    ] {
        *t = *t % 2_678_400 + 1;
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
    c
}

/// Remove what lvs.cf cannot say, and give every service address its VIP.
fn lvs_cf_shaped(mut c: NativeConf) -> NativeConf {
    let cfg = &mut c.config;
    cfg.switches = Switches::default();
    cfg.conn_table_max = 0;
    cfg.table_full = TableFullPolicy::default();
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
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn keepalived_round_trip(c in arb_native().prop_map(keepalived_shaped)) {
        prop_assert_eq!(c.config.validate(), Ok(()));
        let text = emit_keepalived(&c.config, &c.vips, c.nat_router.as_ref())
            .map_err(|l| TestCaseError::fail(l.to_string()))?;
        let back = parse_keepalived(&text, "gen.conf")
            .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
        prop_assert_eq!(&back.config, &c.config, "{}", text);
        let mut vips = c.vips.clone();
        vips.extend(c.nat_router.clone());
        prop_assert_eq!(keepalived_vips(&back), vips);
    }

    #[test]
    fn lvs_cf_round_trip(c in arb_native().prop_map(lvs_cf_shaped)) {
        prop_assert_eq!(c.config.validate(), Ok(()));
        let text = emit_lvs_cf(&c.config, &c.vips, c.nat_router.as_ref())
            .map_err(|l| TestCaseError::fail(l.to_string()))?;
        let back = parse_lvs_cf(&text, "gen.cf")
            .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
        prop_assert_eq!(&back.config, &c.config, "{}", text);
        prop_assert_eq!(&back.vips, &c.vips);
        prop_assert_eq!(&back.nat_router, &c.nat_router);
    }

    /// Whatever the configuration, a writer that does not refuse is exact.
    #[test]
    fn accepted_means_exact(c in arb_native()) {
        if let Ok(text) = emit_keepalived(&c.config, &c.vips, None) {
            let back = parse_keepalived(&text, "k")
                .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
            prop_assert_eq!(&back.config, &c.config);
        }
        if let Ok(text) = emit_lvs_cf(&c.config, &c.vips, c.nat_router.as_ref()) {
            let back = parse_lvs_cf(&text, "l")
                .map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
            prop_assert_eq!(&back.config, &c.config);
        }
    }
}
