//! lvs.cf end to end: realistic files map to the expected configuration, broken files give
//! located diagnostics (insta snapshots under `tests/snapshots`), and no input panics.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use rvs_config::{LvsCf, Network, Vip, load, parse_lvs_cf, render_all};
use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, Expect, HealthConfig, LoadMonitor, OnFailure,
    RealServerHealth, SorryServer,
};
use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, Persistence, Prefix, Protocol,
    RealServerConfig, SchedulerKind, ServiceKey, Timeouts, TunnelCsum, TunnelKind,
    VirtualServiceConfig,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn parse_ok(name: &str) -> LvsCf {
    match parse_lvs_cf(&data(name), name) {
        Ok(c) => c,
        Err(d) => panic!("{}", render_all(&d)),
    }
}

fn rs(addr: &str, port: u16, weight: u32, method: ForwardMethod) -> RealServerConfig {
    RealServerConfig {
        weight,
        method,
        ..RealServerConfig::new(ip(addr), port)
    }
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

fn warned_keys(c: &LvsCf, text: &str) -> Vec<String> {
    c.warnings
        .iter()
        .map(|w| text[w.span.clone()].to_string())
        .collect()
}

#[test]
fn nat_two_tier() {
    let c = parse_ok("nat_two_tier.cf");
    let m = ForwardMethod::Masq;
    let expected = Config {
        services: vec![
            VirtualServiceConfig {
                real_servers: vec![rs("10.11.12.1", 80, 1, m), rs("10.11.12.2", 80, 2, m)],
                ..VirtualServiceConfig::new(tcp("192.168.26.10", 80))
            },
            VirtualServiceConfig {
                scheduler: SchedulerKind::Rr,
                persistence: Some(Persistence {
                    timeout: 300,
                    prefix: 32,
                }),
                real_servers: vec![
                    rs("10.11.12.4", 21, 1, m),
                    rs("10.11.12.5", 2121, 1, m),
                    rs("10.11.12.6", 21, 3, m),
                ],
                ..VirtualServiceConfig::new(tcp("192.168.26.10", 21))
            },
        ],
        timeouts: Timeouts {
            tcp: 900,
            tcp_fin: 60,
            udp: 300,
        },
        ..Config::default()
    };
    assert_eq!(c.config, expected);
    assert_eq!(c.network, Network::Nat);
    let public = Vip {
        addr: ip("192.168.26.10"),
        prefix: 24,
        device: "eth0".into(),
        label: "eth0:1".into(),
    };
    assert_eq!(c.vips, vec![public]);
    assert_eq!(
        c.nat_router,
        Some(Vip {
            addr: ip("10.11.12.10"),
            prefix: 24,
            device: "eth1".into(),
            label: "eth1:1".into(),
        })
    );
    // Failover keys are kept with Piranha's defaults filled in.
    assert_eq!(c.failover.primary, Some(ip("192.168.26.9")));
    assert_eq!(c.failover.backup, Some(ip("192.168.26.8")));
    assert!(c.failover.backup_active && c.failover.heartbeat);
    assert_eq!(
        (
            c.failover.heartbeat_port,
            c.failover.keepalive,
            c.failover.deadtime
        ),
        (539, 6, 18)
    );
    assert_eq!(c.failover.syncd_iface, "eth0");
    // Every virtual and server is recorded, inactive ones too.
    assert_eq!(c.virtuals.len(), 2);
    let http = &c.virtuals[0];
    assert_eq!(http.service, Some(0));
    assert_eq!(http.servers.len(), 3);
    assert!(!http.servers[2].active);
    assert_eq!(http.health.send.as_deref(), Some("GET / HTTP/1.0\r\n\r\n"));
    assert_eq!(http.health.expect.as_deref(), Some("HTTP"));
    assert_eq!((http.health.timeout, http.health.reentry), (6, 15));
    assert_eq!(c.virtuals[1].health.timeout, 10, "Piranha's default");
    // Keys that need no action are accepted without a word: `serial_no` (only numbers the
    // file's versions), `debug_level` (read by lvsconfig.c, used by no daemon).
    let text = data("nat_two_tier.cf");
    let keys = warned_keys(&c, &text);
    for k in [
        "serial_no",
        "debug_level",
        "send",
        "expect",
        "timeout",
        "reentry",
        "quiesce_server",
        "network",
        "nat_router",
        "address",
        "weight",
        "scheduler",
        "port",
        // Pulse's keys: rvs runs pulse from them (rvs_config::failover).
        "primary",
        "backup",
        "backup_active",
        "heartbeat",
        "heartbeat_port",
        "keepalive",
        "deadtime",
    ] {
        assert!(!keys.iter().any(|w| w == k), "warning for applied key {k}");
    }
}

#[test]
fn direct_routing() {
    let c = parse_ok("direct.cf");
    let m = ForwardMethod::DirectRoute;
    let expected = Config {
        services: vec![
            VirtualServiceConfig {
                scheduler: SchedulerKind::Wrr,
                real_servers: vec![rs("172.16.0.5", 80, 10, m), rs("172.16.0.6", 80, 20, m)],
                ..VirtualServiceConfig::new(tcp("172.16.0.1", 80))
            },
            VirtualServiceConfig {
                scheduler: SchedulerKind::Sh,
                real_servers: vec![rs("172.16.0.5", 53, 1, m)],
                ..VirtualServiceConfig::new(ServiceKey::Addr {
                    protocol: Protocol::Udp,
                    addr: ip("172.16.0.1"),
                    port: 53,
                })
            },
        ],
        timeouts: Timeouts {
            tcp: 600,
            ..Timeouts::default()
        },
        ..Config::default()
    };
    assert_eq!(c.config, expected);
    assert_eq!(c.network, Network::Direct);
    // The inactive virtual is recorded but neither configured nor given a VIP.
    assert_eq!(c.virtuals.len(), 3);
    assert!(!c.virtuals[2].active && c.virtuals[2].service.is_none());
    assert_eq!(c.vips.len(), 1);
    assert_eq!(c.vips[0].prefix, 32, "no vip_nmask: one address");
    assert_eq!(c.nat_router, None);
}

#[test]
fn fwmark_persistent_tunnel() {
    let c = parse_ok("fwmark_persistent.cf");
    let m = ForwardMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    let expected = Config {
        services: vec![VirtualServiceConfig {
            scheduler: SchedulerKind::Lblc,
            persistence: Some(Persistence {
                timeout: 1800,
                prefix: 24,
            }),
            real_servers: vec![rs("10.0.1.1", 80, 1, m), rs("10.0.2.1", 80, 5, m)],
            ..VirtualServiceConfig::new(ServiceKey::Fwmark {
                mark: 80,
                family: Family::V4,
            })
        }],
        fwmark_rules: [(80, 80), (443, 443), (8000, 8100)]
            .into_iter()
            .map(|ports| FwmarkRule {
                protocol: Some(Protocol::Tcp),
                dst: Prefix {
                    addr: ip("192.168.26.20"),
                    len: 32,
                },
                src: None,
                ports,
                mark: 80,
            })
            .collect(),
        ..Config::default()
    };
    assert_eq!(c.config, expected);
    assert_eq!(c.vips[0].label, "eth0:2");
    assert_eq!(c.virtuals[0].port, 80);
}

#[test]
fn fullnat_extension() {
    let text = "network = fullnat\nfullnat_local = 10.0.0.250 10.0.0.251\nfullnat_ports = 2000-3000\n\
                virtual v {\n active = 1\n address = 192.168.1.1 eth0:1\n server a {\n  address = 10.0.1.1\n  active = 1\n }\n}\n";
    let c = parse_lvs_cf(text, "f.cf").unwrap();
    assert_eq!(c.network, Network::FullNat);
    assert_eq!(
        c.config.local_pool,
        LocalPool {
            addrs: vec![ip("10.0.0.250"), ip("10.0.0.251")],
            port_range: (2000, 3000),
        }
    );
    assert_eq!(
        c.config.services[0].real_servers[0].method,
        ForwardMethod::FullNat
    );
    // Without fullnat_ports the whole unprivileged range is used.
    let c = parse_lvs_cf(&text.replace("fullnat_ports = 2000-3000\n", ""), "f.cf").unwrap();
    assert_eq!(c.config.local_pool.port_range, (1024, 65535));
}

#[test]
fn piranha_defaults() {
    // No `active`: Piranha's parser leaves a virtual (and a server) inactive.
    let c = parse_lvs_cf("virtual v {\n address = 1.2.3.4 eth0:1\n}\n", "d.cf").unwrap();
    assert!(c.config.services.is_empty());
    assert!(!c.virtuals[0].active);
    assert_eq!(
        c.virtuals[0].key,
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("1.2.3.4"),
            port: 80
        }
    );
    // A server's port is the virtual's port as set when the server block starts.
    let c = parse_lvs_cf(
        "virtual v {\n active = 1\n address = 1.2.3.4 eth0:1\n server a {\n  address = 10.0.0.1\n  active = 1\n }\n port = 8080\n}\n",
        "d.cf",
    )
    .unwrap();
    assert_eq!(c.config.services[0].real_servers[0].port, 80);
}

#[test]
fn broken_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 12);
    for name in names {
        let path = format!("broken/{name}");
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        let rendered = match parse_lvs_cf(&text, &path) {
            Ok(c) => panic!("{name} parsed: {:?}", c.config),
            Err(d) => render_all(&d),
        };
        insta::assert_snapshot!(name.trim_end_matches(".cf").to_string(), rendered);
    }
}

#[test]
fn load_reports_unreadable_and_non_utf8_files() {
    let err = load(Path::new("/nonexistent/lvs.cf")).unwrap_err();
    assert!(err[0].message.starts_with("cannot read the file"));
    let tmp = std::env::temp_dir().join(format!("rvs-config-{}.cf", std::process::id()));
    std::fs::write(&tmp, b"network = nat\nprimary = \xff\n").unwrap();
    let err = load(&tmp).unwrap_err();
    std::fs::remove_file(&tmp).unwrap();
    assert_eq!((err[0].line, err[0].column), (2, 11));
    let ok = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/direct.cf")).unwrap();
    assert_eq!(ok.config.services.len(), 2);
}

fn corpus() -> Vec<String> {
    ["nat_two_tier.cf", "direct.cf", "fwmark_persistent.cf"]
        .iter()
        .map(|n| data(n))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_text(text in "(?s).{0,400}") {
        let _ = parse_lvs_cf(&text, "p.cf").map_err(|d| render_all(&d));
    }

    #[test]
    fn never_panics_on_lvs_cf_shaped_text(
        text in r#"([a-z_ ]{0,12}(=|\{|\}|"|\\|#| |\n|[0-9.:]{0,16}|eth0:1|virtual|server){0,3}\n?){0,40}"#
    ) {
        let _ = parse_lvs_cf(&text, "p.cf").map_err(|d| render_all(&d));
    }

    #[test]
    fn never_panics_on_mutated_valid_files(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..8),
    ) {
        let mut text: Vec<char> = corpus()[which].chars().collect();
        for (at, op, c) in edits {
            if text.is_empty() { break; }
            let i = at.index(text.len());
            match op {
                0 => { text.remove(i); }
                1 => text.insert(i, c),
                2 => text[i] = c,
                _ => { let j = at.index(text.len().min(i + 40)).max(i); text.drain(i..j); }
            }
        }
        let text: String = text.into_iter().collect();
        match parse_lvs_cf(&text, "m.cf") {
            Ok(c) => prop_assert!(c.config.validate().is_ok()),
            Err(d) => {
                prop_assert!(d.iter().all(|d| d.line >= 1 && d.column >= 1 && d.span.end <= text.len()));
                let _ = render_all(&d);
            }
        }
    }
}

#[test]
fn warnings_for_keys_rvs_does_not_act_on() {
    let text = "network = direct\nrsh_command = ssh\nfrobnicate = 1\nweight = 3\n\
                virtual v {\n active = 1\n address = 1.2.3.4 eth0:1\n port = 80\n port = 81\n \
                pmask = 255.255.255.0\n sorry_server = 10.0.0.9\n}\nfailover f {\n start_cmd = \"/bin/true\"\n}\n";
    // `virtual` and `failover` blocks may share a file (lvsconfig.c); with `service = lvs`
    // (the default) the failover blocks are read and not used, without a word.
    let c = parse_lvs_cf(text, "w.cf").unwrap();
    assert_eq!(c.failover_services.len(), 1);
    assert_eq!(c.virtuals[0].port, 81);
    assert_eq!(c.virtuals[0].sorry_server, Some(ip("10.0.0.9")));
    insta::assert_snapshot!("warnings", render_all(&c.warnings));
}

#[test]
fn fwmark_without_ports_is_placed_for_the_daemon_and_bad_ranges_refused() {
    let text = "virtual v {\n active = 1\n address = 10.0.0.1 eth0:1\n fwmark = 7\n \
                server a {\n address = 10.0.1.1\n active = 1\n }\n}\n";
    let c = parse_lvs_cf(text, "w.cf").expect("valid");
    assert!(c.config.fwmark_rules.is_empty());
    // No warning from the parser: the marks may come from the host's MARK rules, which the
    // daemon reads; it warns at the recorded place when nothing gives the mark.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let places: Vec<(u32, usize, usize)> = c
        .fwmark_places
        .iter()
        .map(|(m, p)| (*m, p.line, p.column))
        .collect();
    assert_eq!(places, [(7, 4, 11)]);
    let bad = text.replace(" fwmark = 7\n", " fwmark = 7\n fwmark_ports = 90-80\n");
    let errs = parse_lvs_cf(&bad, "b.cf").unwrap_err();
    assert_eq!((errs[0].line, errs[0].column), (5, 17));
    assert!(
        errs[0]
            .message
            .contains("`90-80` is not a port or a port range")
    );
}

// ---------------------------------------------------------------------------------------
// Health monitoring: nanny's keys mapped to the health model.

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One virtual in `network`, with `keys` in its block and `servers` (`NAME PORT` pairs, the
/// port optional) behind it.
fn one_virtual(network: &str, keys: &str, servers: &[(&str, Option<u16>)]) -> String {
    let mut s = format!(
        "network = {network}\nvirtual v {{\n active = 1\n address = 10.0.0.1 eth0:1\n{keys}\n"
    );
    for (i, (addr, port)) in servers.iter().enumerate() {
        s += &format!(" server s{i} {{\n address = {addr}\n active = 1\n");
        if let Some(p) = port {
            s += &format!(" port = {p}\n");
        }
        s += " }\n";
    }
    s + "}\n"
}

fn health_of(text: &str) -> HealthConfig {
    match parse_lvs_cf(text, "h.cf") {
        Ok(c) => c.health,
        Err(d) => panic!("{}\n{text}", render_all(&d)),
    }
}

fn only_check(h: &HealthConfig) -> &CheckSpec {
    let rs = &h.services[0].real_servers[0];
    assert_eq!(rs.checks.len(), 1, "nanny runs one check per server");
    &rs.checks[0]
}

#[test]
fn nanny_keys_of_the_two_tier_sample() {
    let c = parse_ok("nat_two_tier.cf");
    assert_eq!(c.health.services.len(), 2);
    let http = &c.health.services[0];
    assert_eq!(http.service, tcp("192.168.26.10", 80));
    assert_eq!((http.quorum, http.hysteresis), (1, 0));
    assert_eq!(http.sorry_server, None);
    let nanny = |timeout: u64| CheckTimers {
        interval: secs(timeout),
        timeout: secs(timeout),
        retry: 0,
        delay_before_retry: Duration::ZERO,
        warmup: Duration::ZERO,
    };
    let get = CheckKind::SendExpect {
        send: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        expect: Some(Expect::Prefix(b"HTTP".to_vec())),
        udp: false,
    };
    let web = |addr: &str| RealServerHealth {
        addr: ip(addr),
        port: 80,
        on_failure: OnFailure::Remove,
        alpha: true,
        // reentry 15 / timeout 6.
        rise: 2,
        fall: 1,
        slow_start: Some(secs(6)),
        notify_up: None,
        notify_down: None,
        load_monitor: None,
        checks: vec![CheckSpec {
            kind: get.clone(),
            target: CheckTarget::default(),
            timers: nanny(6),
        }],
    };
    // The inactive web3 is not monitored.
    assert_eq!(
        http.real_servers,
        vec![web("10.11.12.1"), web("10.11.12.2")]
    );
    // ftp: nothing set, not port 80: connect only, Piranha's timeout 10 and reentry 180.
    let ftp = &c.health.services[1];
    let ports: Vec<u16> = ftp.real_servers.iter().map(|r| r.port).collect();
    assert_eq!(ports, [21, 2121, 21]);
    for r in &ftp.real_servers {
        assert_eq!(r.rise, 18);
        assert_eq!(r.slow_start, Some(secs(10)));
        assert_eq!(r.checks[0].kind, CheckKind::Tcp);
        assert_eq!(r.checks[0].timers, nanny(10));
    }
}

#[test]
fn nanny_default_check_depends_on_the_port_and_protocol() {
    // Port 80 with nothing set: nanny's HTTP request; the server's own port decides.
    let h = health_of(&one_virtual(
        "nat",
        " port = 8080",
        &[("10.0.1.1", Some(80)), ("10.0.1.2", None)],
    ));
    let kinds: Vec<&CheckKind> = h.services[0]
        .real_servers
        .iter()
        .map(|r| &r.checks[0].kind)
        .collect();
    assert!(matches!(kinds[0], CheckKind::SendExpect { send, .. } if send.starts_with(b"GET / ")));
    assert_eq!(kinds[1], &CheckKind::Tcp);
    // UDP: send nothing, any reply or none.
    let h = health_of(&one_virtual(
        "nat",
        " port = 53\n protocol = udp",
        &[("10.0.1.1", None)],
    ));
    assert_eq!(
        only_check(&h).kind,
        CheckKind::SendExpect {
            send: vec![],
            expect: None,
            udp: true
        }
    );
}

#[test]
fn send_expect_regex_any_and_bytes() {
    let check = |keys: &str| {
        only_check(&health_of(&one_virtual(
            "nat",
            &format!(" port = 25\n{keys}"),
            &[("10.0.1.1", None)],
        )))
        .kind
        .clone()
    };
    assert_eq!(
        check(" send = \"HELO x\\r\\n\"\n expect = \"250\""),
        CheckKind::SendExpect {
            send: b"HELO x\r\n".to_vec(),
            expect: Some(Expect::Prefix(b"250".to_vec())),
            udp: false
        }
    );
    // Escapes are bytes, as nanny's C reads them, not UTF-8 characters.
    assert_eq!(
        check(" send = \"\\xff\\001A\"\n expect = \"*\""),
        CheckKind::SendExpect {
            send: vec![0xff, 0x01, b'A'],
            expect: Some(Expect::Any),
            udp: false
        }
    );
    assert_eq!(
        check(" expect = \"^220 .*ESMTP\"\n use_regex = 1"),
        CheckKind::SendExpect {
            send: vec![],
            expect: Some(Expect::Regex("^220 .*ESMTP".into())),
            udp: false
        }
    );
    // send_program wins over send/expect; its output is compared with expect_program, else
    // with expect.
    assert_eq!(
        check(" send = \"x\"\n send_program = \"/bin/chk %h %p\"\n expect = \"OK\""),
        CheckKind::Program {
            command: "/bin/chk %h %p".into(),
            expect: Some("OK".into())
        }
    );
    assert_eq!(
        check(" send_program = \"/bin/chk %h\"\n expect = \"a\"\n expect_program = \"b\""),
        CheckKind::Program {
            command: "/bin/chk %h".into(),
            expect: Some("b".into())
        }
    );
}

#[test]
fn rise_from_reentry_quiesce_and_load_monitor() {
    let server = |keys: &str| {
        health_of(&one_virtual("nat", keys, &[("10.0.1.1", None)])).services[0].real_servers[0]
            .clone()
    };
    let r = server(" timeout = 10\n reentry = 30\n quiesce_server = 1\n load_monitor = ruptime");
    assert_eq!(r.rise, 3);
    assert_eq!(r.on_failure, OnFailure::Quiesce);
    assert_eq!(
        r.load_monitor,
        Some(LoadMonitor {
            interval: secs(20),
            agent: None,
            scale: 4
        })
    );
    assert_eq!(r.checks[0].timers.interval, secs(10));
    // reentry shorter than timeout: re-admitted after one good check.
    let r = server(" timeout = 10\n reentry = 5\n load_monitor = none");
    assert_eq!(
        (r.rise, r.on_failure, r.load_monitor),
        (1, OnFailure::Remove, None)
    );
}

#[test]
fn sorry_server_takes_the_virtuals_port_and_the_networks_method() {
    let h = health_of(&one_virtual(
        "direct",
        " port = 443\n sorry_server = 10.0.9.9",
        &[("10.0.1.1", None)],
    ));
    assert_eq!(
        h.services[0].sorry_server,
        Some(SorryServer {
            addr: ip("10.0.9.9"),
            port: 443,
            method: ForwardMethod::DirectRoute,
            inhibit: false
        })
    );
    assert_eq!((h.services[0].quorum, h.services[0].hysteresis), (1, 0));
    // A virtual with no server but a sorry server is monitored (the sorry server is in);
    // one with neither is not.
    let h = health_of(&one_virtual("nat", " sorry_server = 10.0.9.9", &[]));
    assert!(h.services[0].real_servers.is_empty());
    assert!(h.services[0].sorry_server.is_some());
    assert!(health_of(&one_virtual("nat", "", &[])).services.is_empty());
    // Inactive virtuals are not monitored.
    let text = one_virtual("nat", "", &[("10.0.1.1", None)])
        .replace("active = 1\n address", "active = 0\n address");
    assert!(health_of(&text).services.is_empty());
}

#[test]
fn fwmark_virtuals_check_on_the_virtuals_port() {
    let h = health_of(&one_virtual(
        "direct",
        " fwmark = 3\n fwmark_ports = 80 443\n port = 443",
        &[("10.0.1.1", Some(0)), ("10.0.1.2", None)],
    ));
    let rs = &h.services[0].real_servers;
    assert_eq!(rs[0].checks[0].target.connect_port, Some(443));
    // The second server took the virtual's port: no override needed.
    assert_eq!(
        (rs[1].port, rs[1].checks[0].target.connect_port),
        (443, None)
    );
}

#[test]
fn check_via_vip_is_for_direct_routing_and_tunnels() {
    for network in ["direct", "tunnel"] {
        let h = health_of(&one_virtual(
            network,
            " check_via_vip = 1",
            &[("10.0.1.1", None)],
        ));
        assert!(only_check(&h).target.via_vip);
    }
    let text = one_virtual("nat", " check_via_vip = 1", &[("10.0.1.1", None)]);
    let errs = parse_lvs_cf(&text, "v.cf").unwrap_err();
    assert_eq!(
        (errs[0].line, errs[0].column),
        (5, 2),
        "{}",
        render_all(&errs)
    );
    assert!(
        errs[0]
            .message
            .contains("`check_via_vip` needs direct routing")
    );
}

#[test]
fn nanny_keys_are_no_longer_pending_and_bad_values_are_located() {
    let text = one_virtual(
        "nat",
        " send = \"x\"\n expect = \"y\"\n timeout = 3\n reentry = 9\n quiesce_server = 1\n \
         sorry_server = 10.0.9.9\n client_monitor = /usr/sbin/nanny",
        &[("10.0.1.1", None)],
    );
    let c = parse_lvs_cf(&text, "k.cf").unwrap();
    // nanny is what rvs does itself: nothing to say. Another program is not run: a word.
    assert!(c.warnings.is_empty(), "{}", render_all(&c.warnings));
    let text = text.replace("/usr/sbin/nanny", "/usr/local/bin/mycheck");
    let c = parse_lvs_cf(&text, "k.cf").unwrap();
    assert_eq!(warned_keys(&c, &text), ["/usr/local/bin/mycheck"]);
    assert_eq!(
        c.warnings[0].message,
        "`client_monitor` is not run: rvs performs nanny's checks itself \
         (`/usr/local/bin/mycheck` is not nanny)"
    );
    let errs = parse_lvs_cf(&one_virtual("nat", " timeout = 0", &[]), "z.cf").unwrap_err();
    assert_eq!((errs[0].line, errs[0].column), (5, 12));
    assert!(errs[0].message.contains("`timeout = 0`"));
}

/// Piranha's lvs.cf knows `protocol = tcp | udp` only (reference/piranha.md): SCTP stays
/// an error there, as it is for lvsd.
#[test]
fn sctp_is_not_a_piranha_protocol() {
    let text = "network = direct\nvirtual v {\n active = 1\n address = 192.168.1.1 eth0:1\n \
                protocol = sctp\n server a {\n  address = 10.0.1.1\n  active = 1\n }\n}\n";
    let errs = parse_lvs_cf(text, "s.cf").unwrap_err();
    let all = render_all(&errs);
    assert!(all.contains("unknown protocol `sctp`"), "{all}");
}

// ---------------------------------------------------------------------------------------
// lvs.cf as Piranha reads it: what lvsconfig.c accepts, lvsd skips or merges, pulse refuses.

#[test]
fn inactive_and_incomplete_virtuals_are_skipped_as_lvsd_skips_them() {
    let text = "virtual off {\n address = 10.0.0.1 eth0:1\n active = 0\n}\n\
                virtual unset {\n address = 10.0.0.3 eth0:1\n}\n\
                virtual new {\n active = 0\n}\n\
                virtual half {\n active = 1\n port = 443\n}\n\
                virtual web {\n active = 1\n address = 10.0.0.2 eth0:1\n}\n";
    let c = parse_lvs_cf(text, "i.cf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let keys: Vec<ServiceKey> = c.config.services.iter().map(|s| s.key).collect();
    assert_eq!(keys, [tcp("10.0.0.2", 80)]);
    let names: Vec<&str> = c.virtuals.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        ["off", "unset", "web"],
        "virtuals with an address are kept"
    );
    assert_eq!(c.vips.len(), 1);
    insta::assert_snapshot!("skipped_virtuals", render_all(&c.warnings));
    assert!(rvs_config::failover_from_lvs_cf(&c).is_ok());
}

#[test]
fn no_active_virtual_is_refused_as_pulse_refuses() {
    // lvsconfig.c accepts the file; pulse.c main() then exits: "no active lvs services
    // defined". The parse succeeds (convert can still read it); the run refuses.
    let text = "serial_no = 3\nvirtual web {\n address = 10.0.0.2 eth0:1\n}\n";
    let c = parse_lvs_cf(text, "n.cf").unwrap();
    let err = rvs_config::failover_from_lvs_cf(&c).unwrap_err();
    insta::assert_snapshot!("no_active_virtual", render_all(&err));
    // No virtual at all: blamed on the file's start.
    let c = parse_lvs_cf("serial_no = 3\nnetwork = direct\n", "n.cf").unwrap();
    let err = rvs_config::failover_from_lvs_cf(&c).unwrap_err();
    assert_eq!((err[0].line, err[0].column), (1, 1));
    assert!(err[0].message.starts_with("no active lvs services defined"));
    // An active virtual without an address does not count: nothing can run.
    let c = parse_lvs_cf("virtual v {\n active = 1\n}\n", "n.cf").unwrap();
    assert!(rvs_config::failover_from_lvs_cf(&c).is_err());
    // service = fos counts active failover blocks: "no active fos services defined".
    let text = "service = fos\nfailover f {\n active = 0\n address = 10.0.0.5 eth0:1\n}\n";
    let c = parse_lvs_cf(text, "n.cf").unwrap();
    let err = rvs_config::failover_from_lvs_cf(&c).unwrap_err();
    assert_eq!((err[0].line, err[0].column), (2, 1));
    assert!(err[0].message.starts_with("no active fos services defined"));
}

#[test]
fn lvsconfig_defaults_of_a_virtual() {
    // lvsconfig.c lvsInitVirtualServer(): protocol tcp, port 80, wlc, timeout 10,
    // reentry 180; active 0 (the structure is zeroed).
    let c = parse_lvs_cf(
        "virtual v {\n address = 10.0.0.1 eth0:1\n active = 1\n server s {\n address = 10.0.1.1\n active = 1\n }\n}\n",
        "d.cf",
    )
    .unwrap();
    let v = &c.virtuals[0];
    assert_eq!((v.protocol, v.port), (Protocol::Tcp, 80));
    assert_eq!((v.health.timeout, v.health.reentry), (10, 180));
    assert_eq!(c.config.services[0].scheduler, SchedulerKind::Wlc);
    assert_eq!(c.config.services[0].persistence, None);
    // reentry / timeout = 18 good checks in a row to come back after a failure.
    assert_eq!(c.health.services[0].real_servers[0].rise, 18);
}

#[test]
fn piranha_sample_cf_with_virtual_and_failover_blocks() {
    // A file in the shape of Piranha's annotated sample (tests/data/piranha).
    let c = parse_ok("piranha/virtual_and_failover.cf");
    let m = ForwardMethod::Masq;
    let key = ServiceKey::Fwmark {
        mark: 100,
        family: Family::V4,
    };
    assert_eq!(
        c.config.services,
        [VirtualServiceConfig {
            persistence: Some(Persistence {
                timeout: 60,
                prefix: 32
            }),
            real_servers: vec![rs("192.168.50.2", 80, 1, m), rs("192.168.50.3", 80, 1, m)],
            ..VirtualServiceConfig::new(key)
        }]
    );
    // `files` is inactive; both failover blocks are read, unused with `service = lvs`.
    assert_eq!(c.virtuals.len(), 2);
    assert!(!c.virtuals[1].active);
    let fos: Vec<&str> = c
        .failover_services
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(fos, ["portal", "ftp"]);
    assert_eq!(
        c.nat_router.as_ref().map(|v| (v.addr, v.label.as_str())),
        Some((ip("192.168.50.100"), "eth1:1"))
    );
    // `serial_no`-like keys (primary_shared, rsh_command, debug_level,
    // reservation_conflict_action) and the repeated `backup_active = 1` say nothing.
    insta::assert_snapshot!("piranha_sample_warnings", render_all(&c.warnings));
    let f = rvs_config::failover_from_lvs_cf(&c).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(
        rvs_config::describe_failover(&f),
        ["pulse primary 203.0.113.10 backup 203.0.113.11 port 1050 keepalive 6s deadtime 18s"]
    );
}

/// Red Hat's multi-port recipe: HTTP and HTTPS under firewall mark 80, one `virtual` per
/// port with the same servers.
const MULTI_PORT: &str = "network = direct\n\
virtual http {\n active = 1\n address = 10.0.0.10 eth0:1\n fwmark = 80\n fwmark_ports = 80\n port = 80\n persistent = 300\n \
send = \"GET / HTTP/1.0\\r\\n\\r\\n\"\n expect = \"HTTP\"\n\
 server a {\n address = 10.0.1.1\n active = 1\n weight = 2\n }\n\
 server b {\n address = 10.0.1.2\n active = 1\n }\n}\n\
virtual https {\n active = 1\n address = 10.0.0.10 eth0:1\n fwmark = 80\n fwmark_ports = 443\n port = 443\n persistent = 300\n\
 server a {\n address = 10.0.1.1\n active = 1\n weight = 2\n }\n\
 server b {\n address = 10.0.1.2\n active = 1\n }\n}\n";

#[test]
fn virtuals_with_one_fwmark_make_one_service_with_each_ports_check() {
    let c = parse_lvs_cf(MULTI_PORT, "m.cf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert!(c.warnings.is_empty(), "{}", render_all(&c.warnings));
    let key = ServiceKey::Fwmark {
        mark: 80,
        family: Family::V4,
    };
    let dr = ForwardMethod::DirectRoute;
    assert_eq!(
        c.config.services,
        [VirtualServiceConfig {
            persistence: Some(Persistence {
                timeout: 300,
                prefix: 32
            }),
            real_servers: vec![rs("10.0.1.1", 80, 2, dr), rs("10.0.1.2", 80, 1, dr)],
            ..VirtualServiceConfig::new(key)
        }]
    );
    // Both virtuals name the one service; each one's classifier rule gives the mark.
    assert_eq!(
        c.virtuals.iter().map(|v| v.service).collect::<Vec<_>>(),
        [Some(0), Some(0)]
    );
    let ports: Vec<(u16, u16)> = c.config.fwmark_rules.iter().map(|r| r.ports).collect();
    assert_eq!(ports, [(80, 80), (443, 443)]);
    assert_eq!(c.vips.len(), 1);
    // Each server: the http virtual's send/expect on port 80, then the https virtual's
    // nanny default (connect only) on port 443.
    assert_eq!(c.health.services.len(), 1);
    for r in &c.health.services[0].real_servers {
        let checks: Vec<(&CheckKind, Option<u16>)> = r
            .checks
            .iter()
            .map(|c| (&c.kind, c.target.connect_port))
            .collect();
        assert_eq!(
            checks,
            [
                (
                    &CheckKind::SendExpect {
                        send: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
                        expect: Some(Expect::Prefix(b"HTTP".to_vec())),
                        udp: false
                    },
                    None
                ),
                (&CheckKind::Tcp, Some(443)),
            ]
        );
    }
    assert!(rvs_config::failover_from_lvs_cf(&c).is_ok());
}

#[test]
fn a_later_virtual_of_a_service_keeps_the_first_ones_settings() {
    // lvsd's `ipvsadm -A` for the second virtual fails ("Service already exists"): the
    // scheduler and persistence stay the first one's; its nannies never start, so a server
    // the first virtual lacks never enters the service.
    let text = MULTI_PORT
        .replacen(
            " persistent = 300\n",
            " persistent = 300\n scheduler = rr\n",
            2,
        )
        .replacen(
            " persistent = 300\n scheduler = rr\n",
            " persistent = 300\n",
            1,
        )
        .replacen(" weight = 2\n", " weight = 5\n", 2)
        .replacen(" weight = 5\n", " weight = 2\n", 1)
        .replace("network = direct", "network = nat");
    // A server only the second virtual has.
    let text = format!(
        "{} server c {{\n address = 10.0.1.3\n active = 1\n }}\n}}\n",
        text.strip_suffix("}\n").unwrap()
    );
    let c = parse_lvs_cf(&text, "m.cf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let svc = &c.config.services[0];
    assert_eq!(svc.scheduler, SchedulerKind::Wlc);
    let servers: Vec<(IpAddr, u32)> = svc
        .real_servers
        .iter()
        .map(|r| (r.addr, r.weight))
        .collect();
    assert_eq!(servers, [(ip("10.0.1.1"), 2), (ip("10.0.1.2"), 1)]);
    insta::assert_snapshot!("fwmark_later_virtual", render_all(&c.warnings));
    // Two address virtuals with one VIP and port join the same way.
    let text = "virtual a {\n active = 1\n address = 10.0.0.1 eth0:1\n server s {\n address = 10.0.1.1\n active = 1\n }\n}\n\
                virtual b {\n active = 1\n address = 10.0.0.1 eth0:1\n scheduler = rr\n server s {\n address = 10.0.1.1\n active = 1\n }\n}\n";
    let c = parse_lvs_cf(text, "a.cf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(c.config.services.len(), 1);
    assert_eq!(c.config.services[0].scheduler, SchedulerKind::Wlc);
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0]
            .message
            .starts_with("virtual `b` joins the TCP 10.0.0.1:80 service of virtual `a` (line 1)")
    );
    // Different checks of one server on one port are both kept.
    assert_eq!(
        c.health.services[0].real_servers[0].checks.len(),
        1,
        "equal checks once"
    );
}

#[test]
fn names_used_twice_change_nothing() {
    // lvsconfig.c appends blocks whatever their names; lvsd tells them apart by address.
    let c = parse_ok("dup_names.cf");
    assert!(c.warnings.is_empty(), "{}", render_all(&c.warnings));
    assert_eq!(c.config.services.len(), 3);
}

/// `service = fos`: each active `failover` block with an address becomes a service as fos
/// runs it, with lvsconfig.c's defaults; pulse's keys become its heartbeat with the FOS
/// magics.
#[test]
fn failover_services_as_fos_runs_them() {
    let text = "\
service = fos
primary = 10.0.0.1
backup = 10.0.0.2
backup_active = 1
heartbeat = 1
keepalive = 1
deadtime = 3
failover web {
 active = 1
 address = 10.0.0.50 eth0:1
 vip_nmask = 255.255.255.0
 start_cmd = \"/usr/local/bin/web start\"
 stop_cmd = \"/usr/local/bin/web  stop\"
}
failover dns {
 active = 1
 address = 10.0.0.51 eth0:2
 port = 53
 protocol = udp
 timeout = 4
 send = \"ping\"
 expect = \"pong\"
 scheduler = rr
 start_cmd = /bin/true
}
failover spare {
 active = 0
 address = 10.0.0.52 eth0:3
}
failover empty {
 active = 1
}
";
    let c = parse_lvs_cf(text, "fos.cf").unwrap();
    let warnings: Vec<(usize, &str)> = c
        .warnings
        .iter()
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                15,
                "failover `dns` has no `stop_cmd`: nothing is run there (fos would run an undefined command)"
            ),
            (
                23,
                "`scheduler` belongs in a `virtual` block; it has no effect in a `failover` block"
            ),
            (
                27,
                "failover `spare` is not active (`active = 1` turns it on): skipped, as fos skips it"
            ),
            (
                30,
                "failover `empty` is active but has no `address`: skipped (fos would monitor and bring up 0.0.0.0)"
            ),
        ]
    );
    let f = rvs_config::failover_from_lvs_cf(&c).unwrap();
    let rvs_config::FailoverMode::Fos(fos) = &f.mode else {
        panic!("{:?}", f.mode)
    };
    let names: Vec<&str> = fos.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "dns"]);
    let web = &fos.services[0];
    assert_eq!(
        (
            web.address.addr,
            web.address.prefix,
            web.address.device.as_str(),
            web.address.label.as_str()
        ),
        (ip("10.0.0.50"), 24, "eth0", "eth0:1")
    );
    assert_eq!((web.port, web.protocol), (80, Protocol::Tcp));
    // fos.c parseCommandStr(): cut at each space, quotes stripped; two spaces, an empty word.
    assert_eq!(
        web.start_cmd.as_deref(),
        Some(&["/usr/local/bin/web".to_string(), "start".to_string()][..])
    );
    assert_eq!(
        web.stop_cmd.as_deref(),
        Some(
            &[
                "/usr/local/bin/web".to_string(),
                String::new(),
                "stop".to_string()
            ][..]
        )
    );
    // nanny's default on port 80, every `timeout` [10] seconds.
    assert_eq!(
        web.check.kind,
        CheckKind::SendExpect {
            send: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            expect: Some(Expect::Prefix(b"HTTP".to_vec())),
            udp: false
        }
    );
    assert_eq!(web.check.timers.interval, Duration::from_secs(10));
    assert_eq!(web.check.timers.timeout, Duration::from_secs(10));
    let dns = &fos.services[1];
    assert_eq!((dns.port, dns.protocol), (53, Protocol::Udp));
    assert_eq!(
        dns.check.kind,
        CheckKind::SendExpect {
            send: b"ping".to_vec(),
            expect: Some(Expect::Prefix(b"pong".to_vec())),
            udp: true
        }
    );
    assert_eq!(dns.check.timers.interval, Duration::from_secs(4));
    assert_eq!(dns.stop_cmd, None);
    // The heartbeat: FOS magics, the role by address; alone, a primary starts active.
    let pc = fos.pulse_config_for(&[ip("10.0.0.2")]).unwrap();
    assert!(pc.fos && !pc.force_active);
    assert_eq!(pc.partner, ip("10.0.0.1"));
    assert_eq!(pc.deadtime, Duration::from_secs(3));
    let alone = parse_lvs_cf(
        "service = fos\nprimary = 10.0.0.1\nheartbeat = 1\nfailover w {\n active = 1\n address = 10.0.0.50 eth0:1\n}\n",
        "alone.cf",
    )
    .unwrap();
    let f = rvs_config::failover_from_lvs_cf(&alone).unwrap();
    let rvs_config::FailoverMode::Fos(fos) = &f.mode else {
        panic!()
    };
    let pc = fos.pulse_config_for(&[ip("10.0.0.1")]).unwrap();
    assert!(pc.fos && pc.force_active && !pc.backup_active);
    // Without a heartbeat: no pulse; the services run where the daemon runs.
    let c = parse_lvs_cf(
        "service = fos\nfailover w {\n active = 1\n address = 10.0.0.50 eth0:1\n}\n",
        "nohb.cf",
    )
    .unwrap();
    let f = rvs_config::failover_from_lvs_cf(&c).unwrap();
    assert!(matches!(&f.mode, rvs_config::FailoverMode::Fos(x) if x.pulse.is_none()));
    // Active blocks, none with an address: refused (nothing could run).
    let c = parse_lvs_cf("service = fos\nfailover w {\n active = 1\n}\n", "e.cf").unwrap();
    let err = rvs_config::failover_from_lvs_cf(&c).unwrap_err();
    assert_eq!((err[0].line, err[0].column), (2, 1));
    assert_eq!(
        err[0].message,
        "no active fos service has an address: fos would bring up and monitor 0.0.0.0"
    );
}

/// `serial_no` (the Piranha tool's save counter) and `hard_shutdown` (whether lvsd stops
/// when a nanny process dies; rvs has no nanny processes) need no action: accepted without
/// a word, whatever their value, and the file means what it means without them.
#[test]
fn serial_no_and_hard_shutdown_need_no_action() {
    let base = "network = direct\nvirtual web {\n active = 1\n address = 10.0.0.2 eth0:1\n \
                server a {\n  address = 10.0.1.1\n  active = 1\n }\n}\n";
    let a = parse_lvs_cf(base, "a.cf").unwrap();
    for extra in [
        "serial_no = 42\nhard_shutdown = 0\n",
        "serial_no = 7b\nhard_shutdown = 1\n",
    ] {
        let text = format!("{extra}{base}");
        let b = parse_lvs_cf(&text, "b.cf").unwrap();
        assert_eq!(render_all(&b.warnings), "", "{extra}");
        assert_eq!(b.config, a.config);
        assert_eq!(b.health, a.health);
        assert_eq!(
            rvs_config::failover_from_lvs_cf(&b).unwrap(),
            rvs_config::failover_from_lvs_cf(&a).unwrap()
        );
    }
}
