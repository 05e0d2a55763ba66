//! The new-connection path of the common case (`director/fast_new.rs`) against the general
//! path: two directors, one with the fast paths off, fed the same SYNs (and other first
//! segments) from many clients to services the fast new path takes (NAT without
//! persistence, wlc and rr) and to services and real servers it must hand over (persistence,
//! DR, FullNAT, port 21, a real server whose neighbour is unknown, a full table,
//! `drop_packet`, SYN admission, connection sync on), must send the same frames with the
//! same verdicts and keep the same table, counters, real-server counts and sync records.

use super::*;
use crate::model::{Defense, Persistence};
use proptest::prelude::*;

fn services() -> Vec<VirtualServiceConfig> {
    // 10.2.0.77's neighbour is never learned: its SYNs park.
    let rs = ["10.2.0.11", "10.2.0.12", "10.2.0.13", "10.2.0.77"];
    let mut wlc = tcp_svc("10.1.0.100", 80, ForwardMethod::Masq, &rs);
    wlc.scheduler = SchedulerKind::Wlc;
    for (i, r) in wlc.real_servers.iter_mut().enumerate() {
        r.weight = i as u32 + 1;
        r.port = 8080;
    }
    let mut persist = tcp_svc("10.1.0.100", 8000, ForwardMethod::Masq, &rs[..3]);
    persist.persistence = Some(Persistence {
        timeout: 30,
        prefix: 32,
    });
    // Real servers without a port: the connection's port is the virtual one.
    let mut port0 = tcp_svc("10.1.0.101", 80, ForwardMethod::Masq, &rs[..2]);
    for r in &mut port0.real_servers {
        r.port = 0;
    }
    vec![
        wlc,
        tcp_svc("10.1.0.100", 443, ForwardMethod::FullNat, &rs[..3]),
        tcp_svc("10.1.0.100", 22, ForwardMethod::DirectRoute, &rs[..3]),
        tcp_svc("10.1.0.100", 21, ForwardMethod::Masq, &rs[..3]),
        tcp_svc("10.1.0.100", 81, ForwardMethod::Masq, &rs[..3]),
        persist,
        port0,
    ]
}

#[derive(Debug, Clone)]
struct Step {
    client: u8,
    sport: u16,
    vip: u8,
    vport: u16,
    flags: u8,
    reply: bool,
    advance_ms: u32,
    expire: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        (0u8..40, 0u16..6, prop::bool::weighted(0.9)),
        prop::sample::select(vec![80u16, 80, 80, 81, 443, 22, 21, 8000, 9999]),
        // Bare SYNs mostly; SYN with PSH, ECE or CWR; SYN+FIN, SYN+ACK, SYN+RST; an ACK.
        prop::sample::select(vec![
            0x02u8, 0x02, 0x02, 0x0a, 0x42, 0x82, 0x03, 0x12, 0x06, 0x10,
        ]),
        (
            prop::bool::weighted(0.1),
            0u32..2000,
            prop::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |((client, sport, vip100), vport, flags, (reply, advance_ms, expire))| Step {
                client,
                sport,
                vip: if vip100 { 100 } else { 101 },
                vport,
                flags,
                reply,
                advance_ms,
                expire,
            },
        )
}

fn frame(s: &Step) -> (PortId, Vec<u8>) {
    let client = [10, 1, 1, s.client];
    let cport = 40000 + s.sport;
    let vip = [10, 1, 0, s.vip];
    let (port, smac, dmac, src, sp, dst, dp) = if s.reply {
        // A real server's segment to the client (a reply, or nothing known).
        (
            PRIV,
            rs_mac(1),
            DIR_PRIV_MAC,
            [10, 2, 0, 11],
            8080,
            client,
            cport,
        )
    } else {
        (PUB, CLIENT_MAC, DIR_PUB_MAC, client, cport, vip, s.vport)
    };
    let mut v = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv4(src, dst, 64)
        .tcp(sp, dp, 1000, 64240)
        .write(&mut v, b"x")
        .unwrap();
    let old = u16::from_be_bytes([v[46], v[47]]);
    v[47] = s.flags;
    let new = u16::from_be_bytes([v[46], v[47]]);
    let c = u16::from_be_bytes([v[50], v[51]]);
    v[50..52].copy_from_slice(&wire::checksum::update16(c, old, new).to_be_bytes());
    (port, v)
}

fn state(d: &Director) -> String {
    let mut out = format!("{:?}\n{:?}\n{:?}\n", d.counters(), d.drops(), d.defense());
    for (id, c) in d.table_v4().iter() {
        out += &format!("{id:?} {c:?} {:?}\n", d.table_v4().sync_meta(id));
    }
    out += &format!("{:?}\n", d.sync_counters());
    for (id, s) in d.services().iter() {
        out += &format!("{id:?} {:?} {:?} {:?}\n", s.stats, s.dests, s.sched);
    }
    out
}

fn pair(table: usize, drop_packet: u8) -> (Director, Director) {
    let cfg = Config {
        services: services(),
        local_pool: LocalPool {
            addrs: vec![ip("10.2.0.250")],
            port_range: (20000, 20999),
        },
        conn_table_max: table,
        defense: Defense {
            drop_packet,
            am_droprate: 3,
            ..Defense::default()
        },
        ..Config::default()
    };
    let fast = director_with(cfg.clone());
    let mut general = director_with(cfg);
    general.set_fast_path(false);
    (fast, general)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn fast_and_general_new_connections_agree(
        steps in prop::collection::vec(step(), 1..80),
        small in any::<bool>(),
        drop_packet in prop::sample::select(vec![0u8, 3]),
        sync in any::<bool>(),
    ) {
        let (mut fast, mut general) = pair(if small { 8 } else { 0 }, drop_packet);
        if sync {
            let s = SyncSettings { threshold: 1, period: 4, ..SyncSettings::default() };
            fast.set_sync(Some(s)).unwrap();
            general.set_sync(Some(s)).unwrap();
        }
        let mut now = Instant::from_secs(1);
        prop_assert_eq!(fast.expire(now), general.expire(now));
        for s in &steps {
            now = now + Duration::from_millis(u64::from(s.advance_ms));
            if s.expire {
                prop_assert_eq!(fast.expire(now), general.expire(now));
            }
            let (port, bytes) = frame(s);
            let a = run(&mut fast, now, port, &bytes);
            let b = run(&mut general, now, port, &bytes);
            prop_assert_eq!(&a, &b, "step {:?}", s);
            prop_assert_eq!(state(&fast), state(&general));
            let mut x = [0u8; 256];
            let mut y = [0u8; 256];
            prop_assert_eq!(fast.poll_transmit(&mut x), general.poll_transmit(&mut y));
            prop_assert_eq!(x, y);
            let x: Vec<_> = std::iter::from_fn(|| fast.poll_sync()).collect();
            let y: Vec<_> = std::iter::from_fn(|| general.poll_sync()).collect();
            prop_assert_eq!(x, y);
        }
    }
}

/// The fast new path takes a bare SYN to a NAT service and creates the entry; it hands a
/// SYN to a persistent service, to port 21 and to no service to the general path with
/// nothing changed, and a SYN scheduled onto a DR real server or one without a known
/// neighbour to the general second half.
#[test]
fn bare_syn_to_nat_takes_the_fast_new_path() {
    let (mut d, _) = pair(0, 0);
    let now = Instant::from_secs(1);
    let attempt = |d: &mut Director, vport: u16, client: u8| {
        let (_, bytes) = frame(&Step {
            client,
            sport: 0,
            vip: 100,
            vport,
            flags: 0x02,
            reply: false,
            advance_ms: 0,
            expire: false,
        });
        let mut buf = bytes.clone();
        let len = buf.len();
        let mut f = Frame::new(&mut buf, 0, len).unwrap();
        let s = match d.core.fast_v4(&mut d.v4, now, &mut f) {
            fast::Fast::NoInConn(s) => s,
            _ => panic!("the fast path's miss"),
        };
        d.core.new_conn_v4(&mut d.v4, now, &mut f, &s)
    };
    // rr over three real servers with known neighbours, twice round.
    for client in 0..6 {
        let before = d.table_v4().len();
        assert_eq!(attempt(&mut d, 81, client), Some(Verdict::Transmit(PRIV)));
        assert_eq!(d.table_v4().len(), before + 1);
    }
    for vport in [8000, 21, 9999] {
        let len = d.table_v4().len();
        assert_eq!(attempt(&mut d, vport, 2), None, "port {vport}");
        assert_eq!(d.table_v4().len(), len, "nothing changed for port {vport}");
    }
    // DR: scheduled here, then the general second half (no NAT hop to rewrite with).
    let len = d.table_v4().len();
    assert_eq!(attempt(&mut d, 22, 2), Some(Verdict::Transmit(PRIV)));
    assert_eq!(d.table_v4().len(), len + 1);
    // wlc sends SYNs to the heaviest weight, 10.2.0.77, whose neighbour is not known:
    // scheduled here, handed to the general second half, parked.
    let mut parked = 0;
    for client in 10..30 {
        if attempt(&mut d, 80, client) == Some(Verdict::Consumed) {
            parked += 1;
        }
    }
    assert!(parked > 0, "a SYN for 10.2.0.77 parked");
}
