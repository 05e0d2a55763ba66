//! `rvs-bench-core`: the workloads `bench/core` counts with callgrind.
//!
//! `rvs-bench-core list-instr` prints one `name:n` per workload; `rvs-bench-core NAME N`
//! runs workload NAME N times after a setup that does not depend on N, so that
//! (I(2N) − I(N)) / N is the cost of one operation; `rvs-bench-core report` prints other
//! figures as `name value unit` lines. Every operation's result goes through
//! [`black_box`], so the optimiser cannot skip the work.
//!
//! Lab topology (as the data-plane benchmark): port 0 public (director 10.1.0.2/16, VIP
//! 10.1.0.100), port 1 private (director 10.2.0.1/24, NAT floating IP 10.2.0.254), real
//! servers 10.2.0.11.., clients 10.1.x.y, neighbours pre-learned so nothing parks.

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use rvs_core::conn::table::{CHUNK_ENTRIES, ConnAddr, ConnTable, Need, NewConn, Provision};
use rvs_core::conn::{ConnFlags, TcpState};
use rvs_core::dest::Dest;
use rvs_core::director::{
    Director, DirectorSettings, NetConfig, OwnedAddr, PortConfig, PortId, Verdict,
};
use rvs_core::model::{
    Config, ForwardMethod, Prefix, Protocol, RealServerConfig, SchedulerKind, ServiceKey,
    TableFullPolicy, VirtualServiceConfig,
};
use rvs_core::sched::mh_build_table;
use rvs_core::time::Instant;
use rvs_core::wire::Frame;
use rvs_core::wire::checksum::{same, update16, update32};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

const PUB: PortId = PortId(0);
const PRIV: PortId = PortId(1);
const PUB_MAC: [u8; 6] = [0x02, 0xd1, 0, 0, 0, 0x01];
const PRIV_MAC: [u8; 6] = [0x02, 0xd1, 0, 0, 0, 0x02];
const VIP: [u8; 4] = [10, 1, 0, 100];
const CLIENT: [u8; 4] = [10, 1, 7, 9];
const CLIENT_PORT: u16 = 40_000;
/// A 64-byte frame: Ethernet 14 + IPv4 20 + TCP 20 + 10 bytes of data.
const PAYLOAD: [u8; 10] = *b"GET / HTTP";
/// Connection-table capacity of `nat_new_connection_wlc16`: above 2N + margin for its n.
const NEW_CONN_TABLE: usize = 1 << 16;

/// The workloads and their n (the script also runs 2n).
const WORKLOADS: [(&str, u64); 3] = [
    ("nat_established_packet", 50_000),
    ("nat_new_connection_wlc16", 20_000),
    ("mh_table_build_65537x1000", 2),
];

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn host_mac(a: [u8; 4]) -> [u8; 6] {
    [0x02, 0x42, a[0], a[1], a[2], a[3]]
}

fn rs_addr(i: u8) -> [u8; 4] {
    [10, 2, 0, 11 + i]
}

fn net() -> NetConfig {
    let pfx = |a: [u8; 4], len| Prefix { addr: ip(a), len };
    NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: PUB_MAC,
                addrs: vec![pfx([10, 1, 0, 2], 16)],
                mtu: 1500,
            },
            PortConfig {
                id: PRIV,
                mac: PRIV_MAC,
                addrs: vec![pfx([10, 2, 0, 1], 24)],
                mtu: 1500,
            },
        ],
        routes: vec![],
        owned: vec![
            OwnedAddr {
                addr: ip(VIP),
                port: PUB,
                mac: None,
            },
            OwnedAddr {
                addr: ip([10, 2, 0, 254]),
                port: PRIV,
                mac: None,
            },
        ],
    }
}

/// A director with one NAT service, TCP VIP:80 → real servers 10.2.0.11.. port 8080.
fn director(scheduler: SchedulerKind, real_servers: u8, table: usize) -> Director {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(VIP),
        port: 80,
    });
    svc.scheduler = scheduler;
    svc.real_servers = (0..real_servers)
        .map(|i| RealServerConfig {
            weight: u32::from(i % 4) + 1,
            method: ForwardMethod::Masq,
            ..RealServerConfig::new(ip(rs_addr(i)), 8080)
        })
        .collect();
    let config = Config {
        services: vec![svc],
        conn_table_max: table,
        ..Config::default()
    };
    let mut d = Director::new(net(), &config, DirectorSettings::default()).expect("config");
    for i in 0..real_servers {
        d.learn_neighbor(ip(rs_addr(i)), host_mac(rs_addr(i)), Instant::ZERO);
    }
    d.learn_neighbor(ip(CLIENT), host_mac(CLIENT), Instant::ZERO);
    d
}

/// A TCP frame with valid checksums.
fn tcp_frame(
    (smac, dmac): ([u8; 6], [u8; 6]),
    (src, sport): ([u8; 4], u16),
    (dst, dport): ([u8; 4], u16),
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(5000).psh() };
    let mut v = Vec::with_capacity(64);
    b.write(&mut v, payload).expect("frame");
    v
}

fn handle(d: &mut Director, now: Instant, port: PortId, bytes: &mut [u8]) -> Verdict {
    let len = bytes.len();
    let mut f = Frame::new(bytes, 0, len).expect("frame");
    d.handle(now, port, &mut f)
}

/// One established NAT connection (client 10.1.7.9:40000 → VIP:80 on 10.2.0.11:8080) and
/// the client's 64-byte data frame of it.
fn established() -> (Director, Vec<u8>, Instant) {
    let now = Instant::from_secs(1);
    let mut d = director(SchedulerKind::Wlc, 1, 1024);
    let client = (CLIENT, CLIENT_PORT);
    let rs = (rs_addr(0), 8080);
    let to_dir = (host_mac(CLIENT), PUB_MAC);
    let mut syn = tcp_frame(to_dir, client, (VIP, 80), true, &[]);
    assert_eq!(handle(&mut d, now, PUB, &mut syn), Verdict::Transmit(PRIV));
    let b = PacketBuilder::ethernet2(host_mac(rs.0), PRIV_MAC)
        .ipv4(rs.0, CLIENT, 64)
        .tcp(rs.1, CLIENT_PORT, 5000, 64240)
        .syn()
        .ack(1001);
    let mut synack = Vec::new();
    b.write(&mut synack, &[]).expect("frame");
    assert_eq!(
        handle(&mut d, now, PRIV, &mut synack),
        Verdict::Transmit(PUB)
    );
    let mut ack = tcp_frame(to_dir, client, (VIP, 80), false, &[]);
    assert_eq!(handle(&mut d, now, PUB, &mut ack), Verdict::Transmit(PRIV));
    let data = tcp_frame(to_dir, client, (VIP, 80), false, &PAYLOAD);
    assert_eq!(data.len(), 64);
    (d, data, now)
}

/// `nat_established_packet`: each iteration copies the 64-byte template into the buffer
/// (the rewrite turned the previous one into a client → real server frame, which would no
/// longer match the connection) and hands it to `handle`.
fn nat_established_packet(n: u64) {
    let (mut d, template, now) = established();
    let mut buf = [0u8; 64];
    let mut last = Verdict::Pass;
    for _ in 0..n {
        buf.copy_from_slice(black_box(&template));
        let mut f = Frame::new(&mut buf, 0, 64).expect("frame");
        last = black_box(d.handle(now, PUB, black_box(&mut f)));
    }
    assert_eq!(last, Verdict::Transmit(PRIV));
}

/// The SYN template of `nat_new_connection_wlc16` and a writer of iteration `i`'s client
/// (address 10.128.0.0 + i, port 1024 + i mod 32768) into a copy of it, with both checksums
/// updated incrementally.
fn syn_template() -> Vec<u8> {
    tcp_frame(
        (host_mac(CLIENT), PUB_MAC),
        ([10, 128, 0, 0], 1024),
        (VIP, 80),
        true,
        &PAYLOAD,
    )
}

fn write_client(buf: &mut [u8; 64], template: &[u8], i: u32) {
    buf.copy_from_slice(template);
    let old_addr = u32::from_be_bytes([buf[26], buf[27], buf[28], buf[29]]);
    let old_port = u16::from_be_bytes([buf[34], buf[35]]);
    let addr = 0x0a80_0000 + i;
    let port = 1024 + (i & 0x7fff) as u16;
    buf[26..30].copy_from_slice(&addr.to_be_bytes());
    buf[34..36].copy_from_slice(&port.to_be_bytes());
    let ipc = u16::from_be_bytes([buf[24], buf[25]]);
    buf[24..26].copy_from_slice(&update32(ipc, old_addr, addr).to_be_bytes());
    let tc = u16::from_be_bytes([buf[50], buf[51]]);
    let tc = update16(update32(tc, old_addr, addr), old_port, port);
    buf[50..52].copy_from_slice(&tc.to_be_bytes());
}

/// Link slab chunks into the director's IPv4 table until it has `slots` slots, as the
/// daemon's table-growth helper does off the packet path: the table starts with one chunk
/// (16,384 entries) and the measured loop must neither grow it nor find it full. Its hash
/// heads (65,536 buckets from the start) need no growth for this many entries.
fn grow_v4(d: &mut Director, slots: usize) {
    while d.table_v4().capacity() < slots {
        let before = d.table_v4().capacity();
        assert!(
            d.provide_v4(Provision::build(Need::Chunk(CHUNK_ENTRIES)))
                .is_none(),
            "chunk refused"
        );
        assert!(d.table_v4().capacity() > before);
    }
    assert!(d.table_v4().buckets() >= slots, "hash heads would grow");
}

/// `nat_new_connection_wlc16`: a SYN from a new client each iteration to a wlc service of
/// 16 real servers (weights 1..4): service lookup, wlc over 16, insert, rewrite, egress.
/// The table (65,536 entries) never fills and nothing expires (the clock stands still).
fn nat_new_connection_wlc16(n: u64) {
    let now = Instant::from_secs(1);
    let mut d = director(SchedulerKind::Wlc, 16, NEW_CONN_TABLE);
    assert!(
        n as usize + 1024 <= NEW_CONN_TABLE,
        "n too large for the table"
    );
    grow_v4(&mut d, NEW_CONN_TABLE);
    let template = syn_template();
    let mut buf = [0u8; 64];
    let mut last = Verdict::Pass;
    for i in 0..n as u32 {
        write_client(&mut buf, black_box(&template), i);
        let mut f = Frame::new(&mut buf, 0, 64).expect("frame");
        last = black_box(d.handle(now, PUB, black_box(&mut f)));
    }
    assert_eq!(last, Verdict::Transmit(PRIV));
    assert_eq!(d.table_v4().len() as u64, n);
}

fn mh_dests() -> Vec<Dest> {
    (0..1000u32)
        .map(|i| {
            let a = Ipv4Addr::from(0x0a02_0000 + i + 1);
            Dest::new(&RealServerConfig {
                weight: i % 4 + 1,
                ..RealServerConfig::new(IpAddr::V4(a), 8080)
            })
        })
        .collect()
}

/// `mh_table_build_65537x1000`: a Maglev lookup table of M = 65537 over 1,000 real servers.
fn mh_table_build(n: u64) {
    let dests = mh_dests();
    for _ in 0..n {
        black_box(mh_build_table(black_box(&dests), 65537));
    }
}

/// An IPv4 address and a port.
type Endpoint = ([u8; 4], u16);

/// What etherparse sees in a forwarded frame: (destination, source) addresses and ports, and
/// whether the IPv4 and TCP checksums are right.
fn forwarded(frame: &[u8]) -> Option<(Endpoint, Endpoint, bool)> {
    let h = PacketHeaders::from_ethernet_slice(frame).ok()?;
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        return None;
    };
    let Some(TransportHeader::Tcp(t)) = &h.transport else {
        return None;
    };
    let ok = ip.header_checksum == ip.calc_header_checksum()
        && same(
            t.calc_checksum_ipv4(ip, h.payload.slice()).ok()?,
            t.checksum,
        );
    Some((
        (ip.destination, t.destination_port),
        (ip.source, t.source_port),
        ok,
    ))
}

/// Bytes per entry of a growing table of family `A` filled with `n` connections from
/// distinct clients to one VIP over 16 real servers, every need provided as the daemon's
/// growth helper does: slab chunks, hash heads and (IPv6) the arena of 16 interned
/// bindings, all counted.
fn bytes_per_entry<A: ConnAddr>(n: u32, addr: impl Fn(u32) -> A) -> f64 {
    let mut t = ConnTable::<A>::growable(n as usize, usize::MAX, 0, 1, TableFullPolicy::DropNew);
    for i in 0..n {
        while let Some(need) = t.need() {
            drop(t.provide(Provision::build(need)));
        }
        drop(t.take_retired());
        let new = NewConn {
            protocol: 6,
            caddr: addr(0x0100_0000 + i),
            cport: 1024 + (i % 50_000) as u16,
            vaddr: addr(0x0200_0001),
            vport: 80,
            daddr: addr(0x0300_0000 + i % 16),
            dport: 8080,
            local: None,
            dest: i % 16,
            service: 0,
            state: TcpState::None as u8,
            flags: ConnFlags::new_connection(&ForwardMethod::Masq),
            timeout: Duration::from_secs(900),
            control: None,
        };
        t.insert(new, Instant::ZERO).expect("room");
    }
    while t.migrating() {
        t.expire(Instant::ZERO, 0, |_, _| {});
    }
    drop(t.take_retired());
    assert_eq!(t.len(), n as usize);
    t.memory_bytes() as f64 / f64::from(n)
}

fn report() {
    let v4 = bytes_per_entry(1 << 20, |i| i.to_be_bytes());
    let v6 = bytes_per_entry(1 << 20, |i| {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[12..].copy_from_slice(&i.to_be_bytes());
        a
    });
    println!("conn_table_bytes_per_entry_v4_1M {v4:.1} bytes");
    println!("conn_table_bytes_per_entry_v6_1M {v6:.1} bytes");
    // The counted workloads take the forwarding path and produce correct frames: the same
    // frames, checked by an independent parser.
    let (mut d, template, now) = established();
    let mut buf = template.clone();
    let v = handle(&mut d, now, PUB, &mut buf);
    let ok = v == Verdict::Transmit(PRIV)
        && forwarded(&buf) == Some(((rs_addr(0), 8080), (CLIENT, CLIENT_PORT), true));
    println!("nat_established_packet_check {} ok", u8::from(ok));
    let mut d = director(SchedulerKind::Wlc, 16, NEW_CONN_TABLE);
    grow_v4(&mut d, NEW_CONN_TABLE);
    let template = syn_template();
    let mut good = 0;
    for i in 0..64u32 {
        let mut b = [0u8; 64];
        write_client(&mut b, &template, i);
        let v = handle(&mut d, now, PUB, &mut b);
        let client = ((0x0a80_0000 + i).to_be_bytes(), 1024 + i as u16);
        if let (Verdict::Transmit(PRIV), Some(((rs, 8080), c, true))) = (v, forwarded(&b))
            && rs[..3] == [10, 2, 0]
            && c == client
        {
            good += 1;
        }
    }
    println!("nat_new_connection_wlc16_check {} ok", u8::from(good == 64));
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["list-instr"] => {
            for (name, n) in WORKLOADS {
                println!("{name}:{n}");
            }
        }
        ["report"] => report(),
        [name, n] => {
            let Ok(n) = n.parse::<u64>() else {
                eprintln!("rvs-bench-core: not a count: {n}");
                return ExitCode::from(2);
            };
            match name {
                "nat_established_packet" => nat_established_packet(n),
                "nat_new_connection_wlc16" => nat_new_connection_wlc16(n),
                "mh_table_build_65537x1000" => mh_table_build(n),
                _ => {
                    eprintln!("rvs-bench-core: unknown workload {name}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => {
            eprintln!("usage: rvs-bench-core list-instr | report | WORKLOAD N");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
