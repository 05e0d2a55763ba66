//! The native TOML format end to end: a realistic file maps to the whole expected
//! [`NativeConf`], broken files give located diagnostics (insta snapshots under
//! `tests/snapshots`), and every valid configuration survives emit → parse unchanged, with
//! emitted text that is stable.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

mod common;
use common::arb_native;
use rvs_config::{NativeConf, Vip, emit_native, parse_native, render_all};
use rvs_core::model::{
    Config, Family, ForwardMethod, FwmarkRule, LocalPool, Persistence, Prefix, Protocol,
    RealServerConfig, SchedFlags, SchedulerKind, ServiceKey, Switches, TableFullPolicy, Timeouts,
    TunnelCsum, TunnelKind, VirtualServiceConfig,
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

    #[test]
    fn arbitrary_text_never_panics(text in "([a-z_\\[\\]=\"{}.,0-9 \n]|service|real_server|vip|port|method){0,200}") {
        let _ = parse_native(&text, "x.toml");
    }
}
