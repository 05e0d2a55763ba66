//! Generators of valid configurations shared by the round-trip tests.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use rvs_config::{NativeConf, Vip};
use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, DnsType, Expect, HealthConfig, LoadMonitor,
    OnFailure, RealServerHealth, ServiceHealth, SorryServer, UrlCheck,
};
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
        proptest::option::of(any::<u8>()),
    )
        .prop_flat_map(|(protocol, f, len, a, b, mark, src_len)| {
            (arb_addr(f), arb_addr(f)).prop_map(move |(addr, src)| FwmarkRule {
                protocol,
                dst: Prefix {
                    addr,
                    len: len % (f.max_prefix() + 1),
                },
                // A source prefix (netfilter's `-s`) on some rules.
                src: src_len.map(|l| Prefix {
                    addr: src,
                    len: l % (f.max_prefix() + 1),
                }),
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
        conn_table_bytes in prop_oneof![Just(0usize), 1usize..(1 << 40)],
        defense in (any::<u32>(), any::<u32>(), 0u8..4, 0u8..4, 0u8..4),
        evict in any::<bool>(),
        pool in proptest::option::of((
            proptest::collection::vec(arb_family().prop_flat_map(arb_addr), 0..3),
            1u16..,
            any::<u16>(),
        )),
        vips in proptest::collection::vec(arb_vip(), 0..4),
        nat_router in proptest::option::of(arb_vip()),
        seeds in proptest::collection::vec(arb_health_seed(), 5),
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
        let health = health_from_seeds(&services, &seeds);
        NativeConf {
            config: Config {
                services,
                synproxy: Default::default(),
                syn_shed: Default::default(),
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
                neigh_gc_thresh3: conn_table_max % 3000,
                conn_table_bytes,
                defense: rvs_core::model::Defense {
                    amemthresh: defense.0,
                    am_droprate: defense.1,
                    drop_entry: defense.2,
                    drop_packet: defense.3,
                    secure_tcp: defense.4,
                },
                local_pool,
            },
            vips,
            nat_router,
            health,
            failover: Default::default(),
            names: Default::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Health monitoring.

/// A duration in whole milliseconds (what every format can carry), at least `min_ms`.
pub fn arb_ms(min_ms: u64, max_ms: u64) -> impl Strategy<Value = Duration> {
    (min_ms..=max_ms).prop_map(Duration::from_millis)
}

pub fn arb_timers() -> impl Strategy<Value = CheckTimers> {
    (
        prop_oneof![arb_ms(1, 5_000), (1u64..100).prop_map(Duration::from_secs)],
        arb_ms(1, 20_000),
        0u32..5,
        arb_ms(0, 5_000),
        arb_ms(0, 3_000),
    )
        .prop_map(|(interval, timeout, retry, dbr, warmup)| CheckTimers {
            interval,
            timeout,
            retry,
            delay_before_retry: dbr,
            warmup,
        })
}

pub fn arb_target() -> impl Strategy<Value = CheckTarget> {
    (
        proptest::option::of(arb_family().prop_flat_map(arb_addr)),
        proptest::option::of(any::<u16>()),
        proptest::option::of(arb_family().prop_flat_map(arb_addr)),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
    )
        .prop_map(
            |(connect_ip, connect_port, bindto, bind_port, fwmark, via_vip)| CheckTarget {
                connect_ip,
                connect_port,
                bindto,
                bind_port,
                fwmark,
                via_vip,
            },
        )
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/._%\\-]{1,12}( [a-z\"\\\\]{1,4}){0,2}"
}

pub fn arb_url() -> impl Strategy<Value = UrlCheck> {
    (
        "/[a-z0-9/._-]{0,10}",
        proptest::option::of("[0-9a-f]{32}"),
        proptest::collection::vec((100u16..600, 0u16..50), 0..3),
        proptest::option::of("[a-z.]{1,10}"),
        proptest::option::of("[a-z|^$]{1,8}"),
        any::<bool>(),
    )
        .prop_map(|(path, digest, codes, virtualhost, regex, no)| UrlCheck {
            path,
            digest,
            status_codes: codes
                .into_iter()
                .map(|(a, w)| (a, (a + w).min(599)))
                .collect(),
            virtualhost,
            regex_no_match: no && regex.is_some(),
            regex,
        })
}

pub fn arb_check_kind() -> impl Strategy<Value = CheckKind> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..6);
    prop_oneof![
        Just(CheckKind::Tcp),
        Just(CheckKind::Ping),
        (
            bytes(),
            prop_oneof![
                Just(None),
                Just(Some(Expect::Any)),
                bytes().prop_map(|b| Some(Expect::Prefix(b))),
                "[a-z^.*]{1,6}".prop_map(|r| Some(Expect::Regex(r))),
            ],
            any::<bool>()
        )
            .prop_map(|(send, expect, udp)| CheckKind::SendExpect { send, expect, udp }),
        (arb_text(), proptest::option::of(arb_text()))
            .prop_map(|(command, expect)| CheckKind::Program { command, expect }),
        (
            any::<bool>(),
            proptest::collection::vec(arb_url(), 1..3),
            proptest::option::of("[a-z.]{1,10}"),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(tls, urls, virtualhost, http_1_1, sni)| CheckKind::Http {
                tls,
                urls,
                virtualhost,
                http_1_1,
                sni: sni && tls,
            }),
        (
            arb_text(),
            proptest::option::of(arb_ms(1, 9_000)),
            any::<bool>()
        )
            .prop_map(|(path, timeout, dynamic)| CheckKind::Misc {
                path,
                user: None,
                timeout,
                dynamic
            }),
        (
            bytes(),
            proptest::option::of(bytes()),
            proptest::option::of(0u32..100),
            proptest::option::of(100u32..=65_535)
        )
            .prop_map(|(payload, require_reply, min, max)| CheckKind::Udp {
                payload,
                require_reply,
                min_reply_len: min,
                max_reply_len: max,
            }),
        (
            proptest::sample::select(vec![
                DnsType::A,
                DnsType::Ns,
                DnsType::Cname,
                DnsType::Soa,
                DnsType::Mx,
                DnsType::Txt,
                DnsType::Aaaa
            ]),
            "[a-z.]{1,12}"
        )
            .prop_map(|(qtype, name)| CheckKind::Dns { qtype, name }),
    ]
}

pub fn arb_check() -> impl Strategy<Value = CheckSpec> {
    (arb_check_kind(), arb_target(), arb_timers()).prop_map(|(kind, target, mut timers)| {
        // The invariant every format keeps: MISC's timeout is its own, else the interval.
        if let CheckKind::Misc { timeout, .. } = &kind {
            timers.timeout = timeout.unwrap_or(timers.interval);
        }
        CheckSpec {
            kind,
            target,
            timers,
        }
    })
}

/// A real server's health, its address aside.
#[derive(Debug, Clone)]
pub struct ServerSeed {
    pub on_failure: OnFailure,
    pub alpha: bool,
    pub rise: u32,
    pub fall: u32,
    pub slow_start: Option<Duration>,
    pub notify: (Option<String>, Option<String>),
    pub load_monitor: Option<LoadMonitor>,
    pub checks: Vec<CheckSpec>,
}

pub fn arb_server_seed() -> impl Strategy<Value = ServerSeed> {
    (
        any::<bool>(),
        any::<bool>(),
        1u32..6,
        1u32..4,
        proptest::option::of(arb_ms(1, 30_000)),
        (
            proptest::option::of(arb_text()),
            proptest::option::of(arb_text()),
        ),
        proptest::option::of((
            arb_ms(1, 60_000),
            proptest::option::of((arb_family().prop_flat_map(arb_addr), any::<u16>())),
            1u32..8,
        )),
        proptest::collection::vec(arb_check(), 0..3),
    )
        .prop_map(
            |(quiesce, alpha, rise, fall, slow_start, notify, load, checks)| ServerSeed {
                on_failure: if quiesce {
                    OnFailure::Quiesce
                } else {
                    OnFailure::Remove
                },
                alpha,
                rise,
                fall,
                slow_start,
                notify,
                load_monitor: load.map(|(interval, agent, scale)| LoadMonitor {
                    interval,
                    agent,
                    scale,
                }),
                checks,
            },
        )
}

impl ServerSeed {
    pub fn at(&self, addr: IpAddr, port: u16) -> RealServerHealth {
        RealServerHealth {
            addr,
            port,
            on_failure: self.on_failure,
            alpha: self.alpha,
            rise: self.rise,
            fall: self.fall,
            slow_start: self.slow_start,
            notify_up: self.notify.0.clone().map(Into::into),
            notify_down: self.notify.1.clone().map(Into::into),
            load_monitor: self.load_monitor,
            checks: self.checks.clone(),
        }
    }
}

/// How one service is monitored, its real servers aside.
#[derive(Debug, Clone)]
pub struct HealthSeed {
    pub monitored: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub commands: (Option<String>, Option<String>),
    pub omega: bool,
    pub sorry: Option<(IpAddr, Option<u16>, ForwardMethod, bool)>,
    /// Per real server (by index, wrapping); all alike when `same`.
    pub servers: Vec<ServerSeed>,
    pub same: bool,
}

pub fn arb_health_seed() -> impl Strategy<Value = HealthSeed> {
    (
        any::<bool>(),
        1u32..10,
        0u32..3,
        (
            proptest::option::of(arb_text()),
            proptest::option::of(arb_text()),
        ),
        any::<bool>(),
        proptest::option::of((
            arb_family().prop_flat_map(arb_addr),
            proptest::option::of(any::<u16>()),
            arb_method(),
            any::<bool>(),
        )),
        proptest::collection::vec(arb_server_seed(), 1..4),
        any::<bool>(),
    )
        .prop_map(
            |(monitored, quorum, hysteresis, commands, omega, sorry, servers, same)| HealthSeed {
                monitored,
                quorum,
                hysteresis,
                commands,
                omega,
                sorry,
                servers,
                same,
            },
        )
}

/// The canonical health of `services` from `seeds`: a monitored service lists every real
/// server, in order.
pub fn health_from_seeds(services: &[VirtualServiceConfig], seeds: &[HealthSeed]) -> HealthConfig {
    let mut out = HealthConfig::default();
    for (svc, seed) in services.iter().zip(seeds.iter().cycle()) {
        if !seed.monitored {
            continue;
        }
        let svc_port = match svc.key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        out.services.push(ServiceHealth {
            service: svc.key,
            quorum: seed.quorum,
            hysteresis: seed.hysteresis,
            quorum_up: seed.commands.0.clone().map(Into::into),
            quorum_down: seed.commands.1.clone().map(Into::into),
            omega: seed.omega,
            sorry_server: seed.sorry.map(|(addr, port, method, inhibit)| SorryServer {
                addr,
                port: port.unwrap_or(svc_port),
                method,
                inhibit,
            }),
            real_servers: svc
                .real_servers
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let k = if seed.same { 0 } else { i % seed.servers.len() };
                    seed.servers[k].at(r.addr, r.port)
                })
                .collect(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Failover services (lvs.cf `service = fos`).

/// pulse's heartbeat between two IPv4 directors, every key set or not.
pub fn arb_pulse() -> impl Strategy<Value = rvs_config::PulseSetup> {
    (
        arb_addr(Family::V4),
        proptest::option::of(arb_addr(Family::V4)),
        proptest::option::of(arb_addr(Family::V4)),
        1u16..,
        (1u64..30, 1u64..90),
        any::<bool>(),
        proptest::option::of(arb_text()),
        any::<bool>(),
    )
        .prop_map(
            |(primary, backup, private, port, (ka, dt), active, cmd, links)| {
                rvs_config::PulseSetup {
                    primary,
                    backup,
                    primary_private: private,
                    backup_private: None,
                    port,
                    keepalive: Duration::from_secs(ka),
                    deadtime: Duration::from_secs(dt),
                    backup_active: active && backup.is_some(),
                    active_cmd: cmd.clone(),
                    inactive_cmd: cmd,
                    monitor_links: links,
                }
            },
        )
}

/// One failover service: any address, port, TCP or UDP, any check, commands of any words.
pub fn arb_fos_service() -> impl Strategy<Value = rvs_config::FosServiceSetup> {
    let argv = proptest::option::of(proptest::collection::vec("[a-z/ \"-]{0,8}", 1..4));
    (
        "[a-z][a-z0-9_]{0,6}",
        arb_vip(),
        any::<u16>(),
        any::<bool>(),
        arb_check(),
        argv.clone(),
        argv,
    )
        .prop_map(|(name, address, port, udp, check, start_cmd, stop_cmd)| {
            rvs_config::FosServiceSetup {
                name,
                address,
                port,
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                check,
                start_cmd,
                stop_cmd,
            }
        })
}

/// A fos configuration as the native TOML reads it: no virtual service, the services'
/// addresses as the VIPs.
pub fn arb_fos_native() -> impl Strategy<Value = NativeConf> {
    (
        proptest::option::of(arb_pulse()),
        proptest::collection::vec(arb_fos_service(), 1..4),
    )
        .prop_map(|(pulse, services)| {
            let fos = rvs_config::FosSetup { pulse, services };
            NativeConf {
                vips: fos.addresses(),
                failover: rvs_config::FailoverConfig {
                    mode: rvs_config::FailoverMode::Fos(fos),
                    ..Default::default()
                },
                ..Default::default()
            }
        })
}
