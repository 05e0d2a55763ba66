//! Generators of valid configurations shared by the round-trip tests.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use proptest::prelude::*;
use rvs_config::{NativeConf, Vip};
use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, MH_TABLE_SIZES, Persistence, Prefix,
    Protocol, RealServerConfig, SchedFlags, SchedulerKind, ServiceKey, Switches, TableFullPolicy,
    Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};

pub fn arb_addr(family: Family) -> BoxedStrategy<IpAddr> {
    match family {
        Family::V4 => (1u8..4, 0u8..8)
            .prop_map(|(a, b)| IpAddr::from([10, a, 0, b]))
            .boxed(),
        Family::V6 => (1u16..4, 0u16..8)
            .prop_map(|(a, b)| IpAddr::from([0xfd00, a, 0, 0, 0, 0, 0, b]))
            .boxed(),
    }
}

pub fn arb_family() -> impl Strategy<Value = Family> {
    prop_oneof![3 => Just(Family::V4), 1 => Just(Family::V6)]
}

pub fn arb_method() -> impl Strategy<Value = ForwardMethod> {
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

pub fn arb_real(family: Family) -> impl Strategy<Value = RealServerConfig> {
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

pub fn arb_service() -> impl Strategy<Value = VirtualServiceConfig> {
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

pub fn arb_rule() -> impl Strategy<Value = FwmarkRule> {
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

pub fn arb_vip() -> impl Strategy<Value = Vip> {
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
    pub fn arb_native()(
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
