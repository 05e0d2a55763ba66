//! The native TOML format end to end: a realistic file maps to the whole expected
//! [`NativeConf`], broken files give located diagnostics (insta snapshots under
//! `tests/snapshots`), and every valid configuration survives emit → parse unchanged, with
//! emitted text that is stable.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;
use rvs_config::{NativeConf, Vip, emit_native, parse_native, render_all};
use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, MH_TABLE_SIZES, Persistence, Prefix,
    Protocol, RealServerConfig, SchedFlags, SchedulerKind, ServiceKey, Switches, TableFullPolicy,
    Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};

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
        ports,
        mark,
    };
    let expected = NativeConf {
        config: Config {
            services: vec![web, ftp, dns, api, v6mark],
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
fn empty_file_is_the_default_configuration() {
    let c = parse_native("", "empty.toml").unwrap();
    assert_eq!(c, NativeConf::default());
}

// ---------------------------------------------------------------------------------------
// Round trip over generated valid configurations.

fn arb_addr(family: Family) -> BoxedStrategy<IpAddr> {
    match family {
        Family::V4 => (1u8..4, 0u8..8)
            .prop_map(|(a, b)| IpAddr::from([10, a, 0, b]))
            .boxed(),
        Family::V6 => (1u16..4, 0u16..8)
            .prop_map(|(a, b)| IpAddr::from([0xfd00, a, 0, 0, 0, 0, 0, b]))
            .boxed(),
    }
}

fn arb_family() -> impl Strategy<Value = Family> {
    prop_oneof![3 => Just(Family::V4), 1 => Just(Family::V6)]
}

fn arb_method() -> impl Strategy<Value = ForwardMethod> {
    prop_oneof![
        Just(ForwardMethod::Masq),
        Just(ForwardMethod::DirectRoute),
        Just(ForwardMethod::FullNat),
        Just(ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum
        }),
        (
            1u16..,
            prop_oneof![
                Just(TunnelCsum::NoCsum),
                Just(TunnelCsum::Csum),
                Just(TunnelCsum::RemCsum)
            ]
        )
            .prop_map(|(port, csum)| ForwardMethod::Tunnel {
                kind: TunnelKind::Gue { port },
                csum
            }),
        prop_oneof![Just(TunnelCsum::NoCsum), Just(TunnelCsum::Csum)].prop_map(|csum| {
            ForwardMethod::Tunnel {
                kind: TunnelKind::Gre,
                csum,
            }
        }),
    ]
}

fn arb_real(family: Family) -> impl Strategy<Value = RealServerConfig> {
    (
        arb_method(),
        arb_family(),
        any::<u16>(),
        0u32..=65_535,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_flat_map(move |(method, f, port, weight, a, b)| {
            let tunnel = matches!(method, ForwardMethod::Tunnel { .. });
            let fam = if tunnel { f } else { family };
            arb_addr(fam).prop_map(move |addr| RealServerConfig {
                addr,
                port,
                weight,
                u_threshold: a.max(b),
                l_threshold: a.min(b),
                method,
            })
        })
}

fn arb_service() -> impl Strategy<Value = VirtualServiceConfig> {
    let key = prop_oneof![
        (
            prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
            arb_family(),
            0u16..4
        )
            .prop_flat_map(|(protocol, f, port)| arb_addr(f).prop_map(move |addr| {
                ServiceKey::Addr {
                    protocol,
                    addr,
                    port: port * 40,
                }
            })),
        (1u32..5, arb_family()).prop_map(|(mark, family)| ServiceKey::Fwmark { mark, family }),
    ];
    (
        key,
        proptest::sample::select(SchedulerKind::ALL.to_vec()),
        0u8..8,
        proptest::option::of((1u32..=Persistence::MAX_TIMEOUT, any::<u8>())),
        any::<bool>(),
        proptest::sample::select(MH_TABLE_SIZES.to_vec()),
    )
        .prop_flat_map(|(key, scheduler, flags, pers, one_packet, mh)| {
            let family = key.family();
            let udp_or_mark = !matches!(
                key,
                ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    ..
                }
            );
            let persistence = match (pers, key) {
                (Some((timeout, p)), _) => Some(Persistence {
                    timeout,
                    prefix: p % (family.max_prefix() + 1),
                }),
                (None, ServiceKey::Addr { port: 0, .. }) => Some(Persistence {
                    timeout: 360,
                    prefix: family.max_prefix(),
                }),
                (None, _) => None,
            };
            proptest::collection::vec(arb_real(family), 0..4).prop_map(move |mut reals| {
                let mut seen = std::collections::HashSet::new();
                reals.retain(|r| seen.insert((r.addr, r.port)));
                VirtualServiceConfig {
                    key,
                    scheduler,
                    flags: SchedFlags(flags),
                    persistence,
                    one_packet: one_packet && udp_or_mark,
                    mh_table_size: mh,
                    real_servers: reals,
                }
            })
        })
}

fn arb_rule() -> impl Strategy<Value = FwmarkRule> {
    (
        proptest::option::of(prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)]),
        arb_family(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        1u32..6,
    )
        .prop_flat_map(|(protocol, f, len, a, b, mark)| {
            arb_addr(f).prop_map(move |addr| FwmarkRule {
                protocol,
                dst: Prefix {
                    addr,
                    len: len % (f.max_prefix() + 1),
                },
                ports: (a.min(b), a.max(b)),
                mark,
            })
        })
}

fn arb_vip() -> impl Strategy<Value = Vip> {
    (
        arb_family(),
        any::<u8>(),
        "[a-z][a-z0-9]{0,5}",
        proptest::option::of("[a-z0-9]{1,3}"),
    )
        .prop_flat_map(|(f, p, device, alias)| {
            arb_addr(f).prop_map(move |addr| Vip {
                addr,
                prefix: p % (f.max_prefix() + 1),
                label: alias
                    .as_ref()
                    .map_or(device.clone(), |a| format!("{device}:{a}")),
                device: device.clone(),
            })
        })
}

prop_compose! {
    fn arb_native()(
        services in proptest::collection::vec(arb_service(), 0..5),
        rules in proptest::collection::vec(arb_rule(), 0..4),
        t in (any::<u32>(), any::<u32>(), any::<u32>()),
        sw in (any::<bool>(), any::<bool>(), any::<bool>(), 0u8..4),
        conn_table_max in prop_oneof![Just(0usize), 1usize..10_000_000],
        evict in any::<bool>(),
        pool in proptest::option::of((
            proptest::collection::vec(arb_family().prop_flat_map(arb_addr), 0..3),
            1u16..,
            any::<u16>(),
        )),
        vips in proptest::collection::vec(arb_vip(), 0..4),
        nat_router in proptest::option::of(arb_vip()),
    ) -> NativeConf {
        let mut keys = std::collections::HashSet::new();
        let services: Vec<_> = services.into_iter().filter(|s| keys.insert(s.key)).collect();
        let mut local_pool = match pool {
            Some((addrs, lo, hi)) => LocalPool { addrs, port_range: (lo, lo.max(hi)) },
            None => LocalPool::default(),
        };
        // FullNAT needs a pool of each family it uses.
        if services.iter().flat_map(|s| &s.real_servers).any(|r| r.method == ForwardMethod::FullNat) {
            local_pool.addrs.extend([IpAddr::from([10, 9, 0, 1]), IpAddr::from([0xfd00, 9, 0, 0, 0, 0, 0, 1])]);
            if local_pool.port_range.0 == 0 {
                local_pool.port_range = (1024, 65_535);
            }
        }
        let mut seen = std::collections::HashSet::new();
        let vips = vips.into_iter().filter(|v| seen.insert(v.addr)).collect();
        NativeConf {
            config: Config {
                services,
                fwmark_rules: rules,
                timeouts: Timeouts { tcp: t.0, tcp_fin: t.1, udp: t.2 },
                switches: Switches {
                    expire_nodest_conn: sw.0,
                    expire_quiescent_template: sw.1,
                    sloppy_tcp: sw.2,
                    conn_reuse_mode: sw.3,
                },
                conn_table_max,
                table_full: if evict { TableFullPolicy::EvictEmbryonic } else { TableFullPolicy::DropNew },
                local_pool,
            },
            vips,
            nat_router,
        }
    }
}

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

    #[test]
    fn arbitrary_text_never_panics(text in "([a-z_\\[\\]=\"{}.,0-9 \n]|service|real_server|vip|port|method){0,200}") {
        let _ = parse_native(&text, "x.toml");
    }
}
