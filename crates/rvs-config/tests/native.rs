//! The native TOML format end to end: a realistic file maps to the whole expected
//! [`NativeConf`], broken files give located diagnostics (insta snapshots under
//! `tests/snapshots`), and every valid configuration survives emit → parse unchanged, with
//! emitted text that is stable.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

mod common;
use common::{arb_fos_native, arb_native};
use rvs_config::{NativeConf, Vip, emit_native, parse_native, render_all};
use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, DnsType, Expect, HealthConfig, LoadMonitor,
    OnFailure, RealServerHealth, ServiceHealth, SorryServer, UrlCheck,
};
use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, Persistence, Prefix, Protocol,
    RealServerConfig, SchedFlags, SchedulerKind, ServiceKey, Switches, TableFullPolicy, Timeouts,
    TunnelCsum, TunnelKind, VirtualServiceConfig,
};
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/native")
            .join(name),
    )
    .unwrap()
}

fn rs(addr: &str, port: u16, weight: u32, method: ForwardMethod) -> RealServerConfig {
    RealServerConfig {
        weight,
        method,
        ..RealServerConfig::new(ip(addr), port)
    }
}

fn vip(addr: &str, prefix: u8, device: &str, label: &str) -> Vip {
    Vip {
        addr: ip(addr),
        prefix,
        device: device.into(),
        label: label.into(),
    }
}

#[test]
fn full_file_is_the_whole_expected_struct() {
    let text = data("full.toml");
    let got = match parse_native(&text, "full.toml") {
        Ok(c) => c,
        Err(d) => panic!("{}", render_all(&d)),
    };
    let web = VirtualServiceConfig {
        persistence: Some(Persistence {
            timeout: 600,
            prefix: 24,
        }),
        real_servers: vec![
            rs("10.2.0.11", 80, 3, ForwardMethod::Masq),
            RealServerConfig {
                u_threshold: 500,
                l_threshold: 400,
                ..rs("10.2.0.12", 8080, 0, ForwardMethod::Masq)
            },
        ],
        ..VirtualServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("192.168.26.10"),
            port: 80,
        })
    };
    let ftp = VirtualServiceConfig {
        scheduler: SchedulerKind::Sh,
        flags: SchedFlags(3),
        persistence: Some(Persistence {
            timeout: 360,
            prefix: 32,
        }),
        real_servers: vec![rs("192.168.26.21", 0, 1, ForwardMethod::DirectRoute)],
        ..VirtualServiceConfig::new(ServiceKey::Fwmark {
            mark: 21,
            family: Family::V4,
        })
    };
    let dns = VirtualServiceConfig {
        scheduler: SchedulerKind::Rr,
        one_packet: true,
        real_servers: vec![
            rs("10.2.0.53", 53, 1, ForwardMethod::FullNat),
            rs("10.2.0.54", 53, 1, ForwardMethod::Masq),
        ],
        ..VirtualServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip("192.168.26.10"),
            port: 53,
        })
    };
    let api = VirtualServiceConfig {
        scheduler: SchedulerKind::Mh,
        mh_table_size: 65_521,
        flags: SchedFlags(SchedFlags::FLAG_2),
        real_servers: vec![
            rs(
                "fd00:2::11",
                443,
                1,
                ForwardMethod::Tunnel {
                    kind: TunnelKind::Gue { port: 6080 },
                    csum: TunnelCsum::RemCsum,
                },
            ),
            rs(
                "10.2.0.12",
                443,
                2,
                ForwardMethod::Tunnel {
                    kind: TunnelKind::Gre,
                    csum: TunnelCsum::Csum,
                },
            ),
        ],
        ..VirtualServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("2001:db8::10"),
            port: 443,
        })
    };
    let v6mark = VirtualServiceConfig {
        scheduler: SchedulerKind::Twos,
        real_servers: vec![rs("fd00:2::21", 0, 1, ForwardMethod::FullNat)],
        ..VirtualServiceConfig::new(ServiceKey::Fwmark {
            mark: 7,
            family: Family::V6,
        })
    };
    let rule = |ports, protocol, dst: &str, len, mark| FwmarkRule {
        protocol,
        dst: Prefix { addr: ip(dst), len },
        src: None,
        ports,
        mark,
    };
    let expected = NativeConf {
        config: Config {
            services: vec![web, ftp, dns, api, v6mark],
            synproxy: Default::default(),
            syn_shed: Default::default(),
            fwmark_rules: vec![
                rule((20, 21), Some(Protocol::Tcp), "192.168.26.10", 32, 21),
                rule(
                    (10_000, 20_000),
                    Some(Protocol::Tcp),
                    "192.168.26.10",
                    32,
                    21,
                ),
                rule((0, 65_535), None, "2001:db8::", 64, 7),
            ],
            timeouts: Timeouts {
                tcp: 3600,
                tcp_fin: 60,
                udp: 120,
            },
            switches: Switches {
                expire_nodest_conn: true,
                expire_quiescent_template: true,
                sloppy_tcp: false,
                conn_reuse_mode: 2,
            },
            conn_table_max: 1_048_576,
            table_full: TableFullPolicy::EvictEmbryonic,
            neigh_gc_thresh3: 4096,
            conn_table_bytes: 0,
            defense: Default::default(),
            local_pool: LocalPool {
                addrs: vec![ip("10.2.0.250"), ip("10.2.0.251"), ip("fd00:2::250")],
                port_range: (20_000, 60_999),
            },
        },
        vips: vec![
            vip("192.168.26.10", 24, "eth0", "eth0:1"),
            vip("2001:db8::10", 64, "eth0", "eth0"),
        ],
        nat_router: Some(vip("10.2.0.254", 24, "eth1", "eth1:1")),
        health: HealthConfig::default(),
        failover: Default::default(),
        names: Default::default(),
    };
    assert_eq!(got, expected);
    // And the canonical form of it reads back the same.
    let again = emit_native(&got);
    assert_eq!(parse_native(&again, "again.toml").unwrap(), expected);
    insta::assert_snapshot!("native_full_emitted", again);
}

#[test]
fn broken_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/native/broken");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 12);
    for name in names {
        let rel = format!("broken/{name}");
        let errs = match parse_native(&data(&rel), &rel) {
            Ok(c) => panic!("{name} parsed: {c:?}"),
            Err(e) => e,
        };
        assert!(errs.iter().all(|d| d.line >= 1 && d.column >= 1));
        insta::assert_snapshot!(
            format!("native_broken_{}", name.trim_end_matches(".toml")),
            render_all(&errs)
        );
    }
}

#[test]
fn load_reads_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/native/full.toml");
    assert_eq!(
        rvs_config::load_native(&path).unwrap(),
        parse_native(&data("full.toml"), "x").unwrap()
    );
    let err = rvs_config::load_native(Path::new("/nonexistent/rvs.toml")).unwrap_err();
    assert!(err[0].message.starts_with("cannot read the file"));
}

#[test]
fn empty_file_is_the_default_configuration() {
    let c = parse_native("", "empty.toml").unwrap();
    assert_eq!(c, NativeConf::default());
}

// ---------------------------------------------------------------------------------------
// Round trip over generated valid configurations.

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn emit_then_parse_is_identity(c in arb_native()) {
        prop_assert_eq!(c.config.validate(), Ok(()));
        let text = emit_native(&c);
        let back = match parse_native(&text, "gen.toml") {
            Ok(b) => b,
            Err(d) => return Err(TestCaseError::fail(format!("{}\n{text}", render_all(&d)))),
        };
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(emit_native(&back), text);
    }

    /// Failover services (lvs.cf `service = fos`): every field of every service, and the
    /// heartbeat with them, survive emit → parse.
    #[test]
    fn failover_services_emit_then_parse_is_identity(c in arb_fos_native()) {
        let text = emit_native(&c);
        let back = match parse_native(&text, "gen.toml") {
            Ok(b) => b,
            Err(d) => return Err(TestCaseError::fail(format!("{}\n{text}", render_all(&d)))),
        };
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(emit_native(&back), text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "([a-z_\\[\\]=\"{}.,0-9 \n]|service|real_server|vip|port|method){0,200}") {
        let _ = parse_native(&text, "x.toml");
    }
}

// ---------------------------------------------------------------------------------------
// Health monitoring.

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn health_file_is_the_whole_expected_health() {
    let text = data("health.toml");
    let got = match parse_native(&text, "health.toml") {
        Ok(c) => c,
        Err(d) => panic!("{}", render_all(&d)),
    };
    let web_http = CheckSpec {
        kind: CheckKind::Http {
            tls: false,
            urls: vec![
                UrlCheck {
                    path: "/health".into(),
                    digest: None,
                    status_codes: vec![(200, 200), (300, 302)],
                    virtualhost: None,
                    regex: Some("ok|fine".into()),
                    regex_no_match: true,
                },
                UrlCheck {
                    path: "/".into(),
                    digest: Some("640205b7b0fc66c1ea91c463fac6334d".into()),
                    status_codes: vec![],
                    virtualhost: Some("root.example.com".into()),
                    regex: None,
                    regex_no_match: false,
                },
            ],
            virtualhost: Some("www.example.com".into()),
            http_1_1: true,
            sni: false,
        },
        target: CheckTarget::default(),
        timers: CheckTimers {
            interval: ms(5000),
            timeout: ms(2500),
            retry: 3,
            delay_before_retry: ms(1500),
            warmup: Duration::ZERO,
        },
    };
    let d = CheckTimers::default();
    let defaults = RealServerHealth {
        addr: ip("10.2.0.11"),
        port: 80,
        on_failure: OnFailure::Quiesce,
        alpha: false,
        rise: 3,
        fall: 2,
        slow_start: Some(ms(10_000)),
        notify_up: None,
        notify_down: None,
        load_monitor: Some(LoadMonitor {
            interval: ms(30_000),
            agent: Some((ip("10.2.0.11"), 5391)),
            scale: 2,
        }),
        checks: vec![web_http],
    };
    let web = ServiceHealth {
        service: ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip("10.1.0.100"),
            port: 80,
        },
        quorum: 2,
        hysteresis: 1,
        quorum_up: Some("/usr/local/bin/up web".into()),
        quorum_down: Some("/usr/local/bin/down web".into()),
        omega: true,
        sorry_server: Some(SorryServer {
            addr: ip("10.2.0.99"),
            port: 8080,
            method: ForwardMethod::Masq,
            inhibit: true,
        }),
        real_servers: vec![
            defaults.clone(),
            RealServerHealth {
                addr: ip("10.2.0.12"),
                on_failure: OnFailure::Remove,
                alpha: true,
                notify_up: Some("/bin/up 12".into()),
                notify_down: Some("/bin/down 12".into()),
                checks: vec![
                    CheckSpec {
                        kind: CheckKind::Http {
                            tls: true,
                            urls: vec![UrlCheck {
                                path: "/s".into(),
                                digest: None,
                                status_codes: vec![],
                                virtualhost: None,
                                regex: None,
                                regex_no_match: false,
                            }],
                            virtualhost: None,
                            http_1_1: false,
                            sni: true,
                        },
                        target: CheckTarget {
                            connect_ip: None,
                            connect_port: Some(8443),
                            bindto: Some(ip("10.2.0.1")),
                            bind_port: Some(4000),
                            fwmark: Some(9),
                            via_vip: true,
                        },
                        timers: CheckTimers {
                            warmup: ms(2000),
                            ..d
                        },
                    },
                    CheckSpec {
                        kind: CheckKind::Tcp,
                        target: CheckTarget {
                            connect_ip: Some(ip("10.2.0.13")),
                            connect_port: Some(22),
                            ..CheckTarget::default()
                        },
                        timers: d,
                    },
                ],
                ..defaults.clone()
            },
            RealServerHealth {
                addr: ip("10.2.0.13"),
                checks: vec![],
                ..defaults.clone()
            },
        ],
    };
    let plain = |kind| CheckSpec {
        kind,
        target: CheckTarget::default(),
        timers: d,
    };
    let dns_checks = vec![
        plain(CheckKind::Dns {
            qtype: DnsType::Aaaa,
            name: "example.org".into(),
        }),
        plain(CheckKind::Udp {
            payload: vec![0x0a, 0x1b, 0x2c],
            require_reply: Some(vec![0x00, 0xff]),
            min_reply_len: Some(2),
            max_reply_len: Some(512),
        }),
        plain(CheckKind::Udp {
            payload: vec![],
            require_reply: Some(vec![]),
            min_reply_len: None,
            max_reply_len: None,
        }),
        // A UDP service's send/expect is UDP unless it says otherwise.
        plain(CheckKind::SendExpect {
            send: b"ping\r\n".to_vec(),
            expect: Some(Expect::Prefix(b"pong".to_vec())),
            udp: true,
        }),
        plain(CheckKind::SendExpect {
            send: vec![0xff, 0x00],
            expect: Some(Expect::Prefix(vec![0xfe])),
            udp: false,
        }),
        plain(CheckKind::SendExpect {
            send: vec![],
            expect: Some(Expect::Regex("^2[0-9]{2} ".into())),
            udp: true,
        }),
        plain(CheckKind::SendExpect {
            send: vec![],
            expect: Some(Expect::Any),
            udp: true,
        }),
        plain(CheckKind::Program {
            command: "/bin/chk %h %p".into(),
            expect: Some("OK".into()),
        }),
        // MISC: killed after its timeout, else after the interval.
        CheckSpec {
            timers: CheckTimers {
                interval: ms(7000),
                timeout: ms(7000),
                ..d
            },
            ..plain(CheckKind::Misc {
                path: "/bin/misc -x".into(),
                user: None,
                timeout: None,
                dynamic: true,
            })
        },
        CheckSpec {
            timers: CheckTimers {
                timeout: ms(3000),
                ..d
            },
            ..plain(CheckKind::Misc {
                path: "/bin/misc2".into(),
                user: None,
                timeout: Some(ms(3000)),
                dynamic: false,
            })
        },
        CheckSpec {
            timers: CheckTimers {
                interval: ms(250),
                ..d
            },
            ..plain(CheckKind::Ping)
        },
    ];
    let dns = ServiceHealth {
        service: ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip("10.1.0.100"),
            port: 53,
        },
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        omega: false,
        sorry_server: None,
        real_servers: vec![RealServerHealth {
            addr: ip("10.2.0.21"),
            port: 53,
            on_failure: OnFailure::Remove,
            alpha: false,
            rise: 1,
            fall: 1,
            slow_start: None,
            notify_up: None,
            notify_down: None,
            load_monitor: None,
            checks: dns_checks,
        }],
    };
    // The third service says nothing about health: not monitored.
    assert_eq!(got.health.services.len(), 2);
    assert_eq!(got.health.services[0], web);
    assert_eq!(got.health.services[1], dns);
    let again = emit_native(&got);
    assert_eq!(parse_native(&again, "again.toml").unwrap(), got);
    insta::assert_snapshot!("native_health_emitted", again);
}

#[test]
fn sctp_services_read_and_write() {
    let text = "[[service]]\nvip = \"10.1.0.100\"\nprotocol = \"sctp\"\nport = 2905\n\
                scheduler = \"rr\"\n\n[[service.real_server]]\naddress = \"10.2.0.11\"\n\
                port = 3868\nmethod = \"nat\"\n";
    let c = parse_native(text, "s.toml").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(
        c.config.services[0].key,
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: ip("10.1.0.100"),
            port: 2905
        }
    );
    let again = emit_native(&c);
    assert!(again.contains("protocol = \"sctp\""), "{again}");
    assert_eq!(parse_native(&again, "again.toml").unwrap(), c);
}

/// `[synproxy] all` and a service's `synproxy = true` reach the model and survive emit →
/// parse.
#[test]
fn synproxy_keys_read_and_round_trip() {
    let text = "[synproxy]\nall = false\n\n[[service]]\nvip = \"10.1.0.100\"\nport = 80\n\
        synproxy = true\n\n[[service.real_server]]\naddress = \"10.2.0.11\"\nmethod = \"nat\"\n\n\
        [[service]]\nvip = \"10.1.0.100\"\nport = 81\n\n[[service.real_server]]\n\
        address = \"10.2.0.11\"\nmethod = \"nat\"\n";
    let c = parse_native(text, "s.toml").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("10.1.0.100"),
        port: 80,
    };
    assert!(!c.config.synproxy.all);
    assert_eq!(c.config.synproxy.services, vec![key]);
    let out = emit_native(&c);
    assert!(out.contains("synproxy = true"), "{out}");
    assert_eq!(parse_native(&out, "again.toml").unwrap(), c);
    let all = parse_native("[synproxy]\nall = true\n", "a.toml").unwrap();
    assert!(all.config.synproxy.all);
    assert_eq!(parse_native(&emit_native(&all), "b.toml").unwrap(), all);
}

/// keepalived's script settings in the TOML: `[scripts]`, a notify script with its user as
/// a table, a misc check's `user`; they reach the model and survive emit → parse.
#[test]
fn script_users_and_security_read_and_round_trip() {
    let text = "[scripts]\nscript_user = \"nobody nogroup\"\nenable_script_security = true\n\n\
        [[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\n\
        virtual_ipaddress = [\"10.1.0.100/24\"]\n\
        notify_master = { script = \"/etc/rvs/master.sh 'a b'\", user = \"www-data\" }\n\
        notify_stop = \"/etc/rvs/stop.sh\"\n\n\
        [[service]]\nvip = \"10.1.0.100\"\nport = 80\n\n\
        [[service.real_server]]\naddress = \"10.2.0.11\"\nmethod = \"nat\"\n\n\
        [[service.real_server.check]]\ntype = \"misc\"\ncommand = \"/bin/chk\"\nuser = \"nobody\"\n";
    let c = parse_native(text, "s.toml").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(
        c.failover.scripts.script_user.as_deref(),
        Some("nobody nogroup")
    );
    assert!(c.failover.scripts.enable_script_security);
    let rvs_config::FailoverMode::Vrrp(v) = &c.failover.mode else {
        panic!("{:?}", c.failover.mode)
    };
    let m = v.instances[0].notify_master.as_ref().unwrap();
    assert_eq!(m.command, "/etc/rvs/master.sh 'a b'");
    assert_eq!(m.user.as_deref(), Some("www-data"));
    assert_eq!(v.instances[0].notify_stop.as_ref().unwrap().user, None);
    let CheckKind::Misc { user, .. } = &c.health.services[0].real_servers[0].checks[0].kind else {
        panic!()
    };
    assert_eq!(user.as_deref(), Some("nobody"));
    let out = emit_native(&c);
    assert!(out.contains("[scripts]"), "{out}");
    assert_eq!(parse_native(&out, "again.toml").unwrap(), c);
    // keepalived.conf says the same: global_defs, the words after the script, `user`.
    let k = rvs_config::write_keepalived(&c);
    for line in [
        "    script_user nobody nogroup\n",
        "    enable_script_security\n",
        "    notify_master \"/etc/rvs/master.sh 'a b'\" www-data\n",
        "user nobody\n",
    ] {
        assert!(k.text.contains(line), "{line:?} in\n{}", k.text);
    }
    let bad =
        parse_native(&text.replace("user = \"www-data\"", "user = 3"), "bad.toml").unwrap_err();
    assert!(
        render_all(&bad)
            .contains("`notify_master` is a command line, or a table with `script` and `user`"),
        "{}",
        render_all(&bad)
    );
}

/// `[syn_shed]`: defaults when absent (on, 2000/s, 65,536), the keys reach the model,
/// survive emit → parse, and out-of-range values are refused where they are written.
#[test]
fn syn_shed_keys_read_and_round_trip() {
    let none = parse_native("", "n.toml").unwrap();
    assert_eq!(
        none.config.syn_shed,
        rvs_core::model::SynShed {
            enabled: true,
            budget: 2000,
            proven: 65_536
        }
    );
    assert!(!emit_native(&none).contains("syn_shed"));
    let text = "[syn_shed]\nenabled = false\nbudget = 500\nproven = 1024\n";
    let c = parse_native(text, "s.toml").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let s = &c.config.syn_shed;
    assert_eq!((s.enabled, s.budget, s.proven), (false, 500, 1024));
    let out = emit_native(&c);
    assert!(
        out.contains("[syn_shed]\nenabled = false\nbudget = 500\nproven = 1024\n"),
        "{out}"
    );
    assert_eq!(parse_native(&out, "again.toml").unwrap(), c);
    let err = parse_native("[syn_shed]\nproven = 0\nbudget = -1\n", "e.toml").unwrap_err();
    let text = render_all(&err);
    assert!(
        text.contains("e.toml:2:10: error: proven-source bound 0 is out of range"),
        "{text}"
    );
    assert!(
        text.contains("e.toml:3:10: error: SYN admission budget -1 is out of range"),
        "{text}"
    );
}

/// `[synproxy] all` skips a TCP service with a direct-routing real server (its replies
/// bypass the director, so the proxy could not translate them) with a warning at the
/// service, and proxies the NAT one; a direct-routing service that asks for the proxy
/// itself (`synproxy = true`) is refused at its real server's method.
#[test]
fn synproxy_all_skips_direct_routing_and_an_explicit_one_is_refused() {
    let dr = "[[service]]\nvip = \"10.1.0.100\"\nport = 80\n\n[[service.real_server]]\n\
        address = \"10.2.0.11\"\nmethod = \"dr\"\n\n";
    let nat = "[[service]]\nvip = \"10.1.0.100\"\nport = 81\n\n[[service.real_server]]\n\
        address = \"10.2.0.11\"\nmethod = \"nat\"\n";
    let text = format!("[synproxy]\nall = true\n\n{dr}{nat}");
    let c = parse_native(&text, "s.toml").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    assert_eq!(
        render_all(&c.failover.warnings),
        "s.toml:5:7: warning: `[synproxy] all` skips virtual service TCP 10.1.0.100:80: its \
         real server 10.2.0.11:80 is forwarded by direct routing, whose replies bypass the \
         director, so the proxy could not translate their sequence numbers; the service \
         forwards SYNs to its real servers as without the proxy\n  |\n5 | vip = \"10.1.0.100\"\n  \
         |       ^^^^^^^^^^^^\n"
    );
    let on: Vec<bool> = c
        .config
        .services
        .iter()
        .map(|s| c.config.synproxy.applies(s))
        .collect();
    assert_eq!(on, vec![false, true]);
    // The emitted file keeps `all` and reads back with the same warning.
    let again = parse_native(&emit_native(&c), "again.toml").unwrap();
    assert_eq!(again.config, c.config);
    assert_eq!(again.failover.warnings.len(), 1);
    let explicit = dr.replace("port = 80\n", "port = 80\nsynproxy = true\n");
    let errs = parse_native(&format!("{explicit}{nat}"), "e.toml").unwrap_err();
    assert_eq!(
        render_all(&errs),
        "e.toml:8:10: error: real server 10.2.0.11:80 of a SYN-proxied service is forwarded by \
         direct routing or tunnelling: its replies bypass the director, which must translate \
         their sequence numbers (the SYN proxy needs NAT or FullNAT real servers)\n  |\n8 | \
         method = \"dr\"\n  |          ^^^^ expected `method = \"nat\"` or `\"fullnat\"`, or no \
         `synproxy = true`\n"
    );
}
