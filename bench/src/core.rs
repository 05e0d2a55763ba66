//! Workloads whose instructions `bench/core` counts under callgrind.
//!
//! `rvs-bench-core list-instr` names the workloads (`name:n`); `rvs-bench-core NAME N` runs
//! one with N operations after an identical setup, so `bench/core` can difference the
//! counts of N and 2N and get instructions per operation. `rvs-bench-core report` prints
//! figures that are measured directly (`name value unit`).
#![forbid(unsafe_code)]

use rvs_core::conn::table::{ConnTableV4, ConnTableV6};
use rvs_core::dest::Dest;
use rvs_core::director::{
    Director, DirectorSettings, NetConfig, OwnedAddr, PortConfig, PortId, Verdict,
};
use rvs_core::model::{
    Config, ForwardMethod, Prefix, Protocol, RealServerConfig, SchedulerKind, ServiceKey,
    TableFullPolicy, VirtualServiceConfig,
};
use rvs_core::time::Instant;
use rvs_core::wire::Frame;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

const PUB: PortId = PortId(0);
const PRIV: PortId = PortId(1);
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const DIR_PUB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const HEAD: usize = 64;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// The data-plane lab's director: public 10.1.0.2/16 with VIP 10.1.0.100, private
/// 10.2.0.1/24; `servers` NAT real servers 10.2.0.11.. behind a VIP:80 service.
fn director(scheduler: SchedulerKind, servers: u8, table: usize) -> Director {
    let net = NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: DIR_PUB_MAC,
                addrs: vec![Prefix {
                    addr: v4(10, 1, 0, 2),
                    len: 16,
                }],
            },
            PortConfig {
                id: PRIV,
                mac: [2, 0, 0, 0, 0, 2],
                addrs: vec![Prefix {
                    addr: v4(10, 2, 0, 1),
                    len: 24,
                }],
            },
        ],
        routes: vec![],
        owned: vec![OwnedAddr {
            addr: v4(10, 1, 0, 100),
            port: PUB,
        }],
    };
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(10, 1, 0, 100),
        port: 80,
    });
    svc.scheduler = scheduler;
    for i in 0..servers {
        let mut r = RealServerConfig::new(v4(10, 2, 0, 11 + i), 80);
        r.method = ForwardMethod::Masq;
        r.weight = 1 + u32::from(i % 4);
        svc.real_servers.push(r);
    }
    let cfg = Config {
        services: vec![svc],
        conn_table_max: table,
        ..Config::default()
    };
    let mut d = Director::new(net, &cfg, DirectorSettings::default()).expect("valid config");
    for i in 0..servers {
        d.learn_neighbor(v4(10, 2, 0, 11 + i), [2, 0, 0, 0, 1, i], Instant::ZERO);
    }
    d.learn_neighbor(v4(10, 1, 0, 10), CLIENT_MAC, Instant::ZERO);
    d
}

/// A 64-byte Ethernet + IPv4 + TCP frame with valid checksums.
fn tcp_frame(src: [u8; 4], sport: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&DIR_PUB_MAC);
    f[6..12].copy_from_slice(&CLIENT_MAC);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes()); // 20 + 20 + 10 bytes of data
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&[10, 1, 0, 100]);
    let c = rvs_core::wire::checksum::checksum(ip);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    set_tcp_checksum(&mut f);
    f
}

fn set_tcp_checksum(f: &mut [u8]) {
    use rvs_core::wire::checksum::{fold, pseudo_v4, sum_into};
    f[50..52].fill(0);
    let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let seed = pseudo_v4(src, dst, 6, 30);
    let c = !fold(sum_into(seed, &f[34..64]));
    f[50..52].copy_from_slice(&c.to_be_bytes());
}

fn handle(d: &mut Director, now: Instant, buf: &mut [u8], template: &[u8]) -> Verdict {
    buf[HEAD..HEAD + template.len()].copy_from_slice(template);
    let mut f = Frame::new(buf, HEAD, template.len()).expect("frame fits");
    d.handle(now, PUB, &mut f)
}

/// One established NAT connection; each operation is one client data packet through
/// `handle`, including the 64-byte copy of the frame into the receive buffer.
fn nat_established_packet(n: u64) {
    let mut d = director(SchedulerKind::Wlc, 3, 1024);
    let mut buf = vec![0u8; 256];
    let now = Instant::from_secs(1);
    let syn = tcp_frame([10, 1, 0, 10], 40000, 0x02);
    assert_eq!(handle(&mut d, now, &mut buf, &syn), Verdict::Transmit(PRIV));
    let ack = tcp_frame([10, 1, 0, 10], 40000, 0x10);
    for _ in 0..n {
        let v = handle(&mut d, now, black_box(&mut buf), black_box(&ack));
        black_box(v);
    }
    assert_eq!(d.counters().tx, n + 1, "every packet forwarded");
}

/// A new connection per operation (a SYN from a new client port / address) to a wlc
/// service of 16 real servers: service lookup, scheduling, insert, rewrite.
fn nat_new_connection_wlc16(n: u64) {
    let mut d = director(SchedulerKind::Wlc, 16, 1 << 21);
    let mut buf = vec![0u8; 256];
    let now = Instant::from_secs(1);
    let mut syns = Vec::with_capacity(n as usize);
    for i in 0..n {
        let client = [10, 1, 1 + (i >> 16) as u8, (i >> 8) as u8];
        syns.push(tcp_frame(client, 1024 + (i & 0xff) as u16 * 64, 0x02));
    }
    // The same setup work for every n: the frames are built before counting would differ
    // only in their number, which is part of the per-operation figure (a 64-byte copy).
    for syn in &syns {
        let v = handle(&mut d, now, black_box(&mut buf), black_box(syn));
        black_box(v);
    }
    assert_eq!(
        d.counters().conns_created,
        n,
        "every SYN opened a connection"
    );
}

/// Maglev table build: 1,000 real servers, 65,537 slots.
fn mh_table_build(n: u64) {
    let dests: Vec<Dest> = (0..1000u32)
        .map(|i| {
            let mut r =
                RealServerConfig::new(v4(10, (i >> 16) as u8 + 3, (i >> 8) as u8, i as u8), 80);
            r.weight = 1 + i % 3;
            Dest::new(&r)
        })
        .collect();
    for _ in 0..n {
        let t = rvs_core::sched::mh_build_table(black_box(&dests), 65537);
        black_box(&t);
    }
}

fn report() {
    const M: usize = 1 << 20;
    let t4 = ConnTableV4::new(M, 1, TableFullPolicy::DropNew);
    println!(
        "conn_table_bytes_per_entry_v4_1M {:.1} bytes",
        t4.memory_bytes() as f64 / t4.capacity() as f64
    );
    drop(t4);
    let t6 = ConnTableV6::new(M, 1, TableFullPolicy::DropNew);
    println!(
        "conn_table_bytes_per_entry_v6_1M {:.1} bytes",
        t6.memory_bytes() as f64 / t6.capacity() as f64
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    match (args.first().map(String::as_str), n(1)) {
        (Some("list-instr"), _) => {
            println!("nat_established_packet:2000");
            println!("nat_new_connection_wlc16:2000");
            println!("mh_table_build_65537x1000:2");
        }
        (Some("report"), _) => report(),
        (Some("nat_established_packet"), Some(n)) => nat_established_packet(n),
        (Some("nat_new_connection_wlc16"), Some(n)) => nat_new_connection_wlc16(n),
        (Some("mh_table_build_65537x1000"), Some(n)) => mh_table_build(n),
        _ => {
            eprintln!("usage: rvs-bench-core list-instr | report | WORKLOAD N");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
