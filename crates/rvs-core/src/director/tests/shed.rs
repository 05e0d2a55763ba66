//! SYN admission under overload through the engine (`director/shed.rs`): a handshake
//! proves its client (the fast path's and the general path's, IPv4 and IPv6, and a valid
//! SYN-proxy cookie); while the worker reports the SYN ring congested, unproven SYNs are
//! dropped before scheduling (no entry) but for the budget, proven ones and existing
//! connections go on; outside congestion nothing is shed.

use super::*;
use crate::director::shed::ENTER_ROUNDS;
use crate::model::SynShed;

/// A cookie SYN-ACK's sequence number (the cookie) from the director's answer to a SYN.
fn cookie_of(d: &mut Director, now: Instant, client: &str, cport: u16) -> u32 {
    let syn = tcp_frame(client, cport, "10.1.0.100", 80, Seg::Syn, b"");
    let (v, out) = run(d, now, PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PUB), "a cookie SYN-ACK");
    let s = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("not TCP")
    };
    assert!(t.syn() && t.ack());
    t.sequence_number()
}

/// The client's ACK of a cookie (`tcp_frame`'s SYN has sequence number 1000).
fn cookie_ack(client: &str, cport: u16, cookie: u32) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC);
    let c: Ipv4Addr = client.parse().unwrap();
    let b = eth.ipv4(c.octets(), [10, 1, 0, 100], 64);
    let mut v = Vec::new();
    b.tcp(cport, 80, 1001, 502)
        .ack(cookie.wrapping_add(1))
        .write(&mut v, b"")
        .unwrap();
    v
}

fn nat(budget: u32, enabled: bool) -> Director {
    director_with(Config {
        services: vec![
            tcp_svc("10.1.0.100", 80, ForwardMethod::Masq, &["10.2.0.11"]),
            tcp_svc(
                "2001:db8:1::100",
                80,
                ForwardMethod::Masq,
                &["2001:db8:2::11"],
            ),
        ],
        syn_shed: SynShed {
            enabled,
            budget,
            proven: 1024,
        },
        ..Config::default()
    })
}

fn congest(d: &mut Director, now: Instant) {
    for _ in 0..ENTER_ROUNDS {
        d.syn_backlog(now, true);
    }
    assert!(d.shed().congested());
}

/// SYN, the real server's SYN-ACK, the client's ACK: a whole handshake.
fn handshake(d: &mut Director, now: Instant, client: &str, vip: &str, rs: &str, cport: u16) {
    let syn = tcp_frame(client, cport, vip, 80, Seg::Syn, b"");
    assert_eq!(run(d, now, PUB, &syn).0, Verdict::Transmit(PRIV));
    let synack = tcp_frame(rs, 80, client, cport, Seg::SynAck, b"");
    assert_eq!(run(d, now, PRIV, &synack).0, Verdict::Transmit(PUB));
    let ack = tcp_frame(client, cport, vip, 80, Seg::Ack, b"");
    assert_eq!(run(d, now, PUB, &ack).0, Verdict::Transmit(PRIV));
}

#[test]
fn a_completed_handshake_proves_its_client_and_only_unproven_syns_are_shed() {
    let mut d = nat(0, true);
    d.learn_neighbor(ip("10.1.0.11"), CLIENT_MAC, t(0));
    // IPv4 clients' ACKs take the fast path (NAT, the hop cached by the SYN); IPv6 ones
    // the general path.
    handshake(&mut d, t(1), "10.1.0.10", "10.1.0.100", "10.2.0.11", 40000);
    handshake(&mut d, t(1), "10.1.0.11", "10.1.0.100", "10.2.0.11", 40001);
    handshake(
        &mut d,
        t(1),
        "2001:db8:1::10",
        "2001:db8:1::100",
        "2001:db8:2::11",
        40000,
    );
    assert_eq!(d.shed().proven().len(), (2, 1));
    assert_eq!(d.shed().counters().proven_added, 3);
    // A SYN that only reached SYN_RECV proves nothing.
    let half = tcp_frame("198.51.100.7", 1234, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(1), PUB, &half).0, Verdict::Transmit(PRIV));
    assert!(!d.shed().proven().contains(ip("198.51.100.7")));
    // Not congested: nothing is shed.
    let spoof = |i: u16| tcp_frame("198.51.100.9", 2000 + i, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(2), PUB, &spoof(0)).0, Verdict::Transmit(PRIV));
    congest(&mut d, t(2));
    let entries = d.table_v4().len();
    for i in 1..100 {
        assert_eq!(
            run(&mut d, t(2), PUB, &spoof(i)).0,
            Verdict::Drop(DropReason::SynShed)
        );
    }
    assert_eq!(d.table_v4().len(), entries, "a shed SYN creates no entry");
    assert_eq!(d.drops().get(DropReason::SynShed), 99);
    assert_eq!(d.shed().counters().shed, 99);
    // Proven clients open new connections; an IPv6 client by its /64.
    let again = tcp_frame("10.1.0.10", 40100, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(2), PUB, &again).0, Verdict::Transmit(PRIV));
    let v6 = tcp_frame(
        "2001:db8:1::beef",
        40100,
        "2001:db8:1::100",
        80,
        Seg::Syn,
        b"",
    );
    assert_eq!(run(&mut d, t(2), PUB, &v6).0, Verdict::Transmit(PRIV));
    let v6_other = tcp_frame(
        "2001:db8:1:1::10",
        40100,
        "2001:db8:1::100",
        80,
        Seg::Syn,
        b"",
    );
    assert_eq!(
        run(&mut d, t(2), PUB, &v6_other).0,
        Verdict::Drop(DropReason::SynShed)
    );
    // Segments of existing connections (even an unproven client's) go on.
    let data = tcp_frame("198.51.100.7", 1234, "10.1.0.100", 80, Seg::Ack, b"x");
    assert_eq!(run(&mut d, t(2), PUB, &data).0, Verdict::Transmit(PRIV));
    assert_eq!(d.shed().counters().proven_admitted, 2);
    // A second without a backlog round ends it.
    d.syn_backlog(t(3), false);
    assert!(!d.shed().congested());
    assert_eq!(
        run(&mut d, t(3), PUB, &spoof(500)).0,
        Verdict::Transmit(PRIV)
    );
}

#[test]
fn the_budget_admits_unproven_clients_at_its_rate() {
    let mut d = nat(100, true);
    congest(&mut d, t(10));
    let mut admitted = 0;
    // 10,000 spoofed SYNs over 2 s: 100 a second (and the 10 of burst) get in.
    for i in 0..10_000u32 {
        let b = i.to_be_bytes();
        let src = format!("198.{}.{}.{}", b[1], b[2], b[3]);
        let now = Instant(t(10).0 + u64::from(i) * 200_000);
        d.syn_backlog(now, true);
        let syn = tcp_frame(
            &src,
            1024 + (i % 50_000) as u16,
            "10.1.0.100",
            80,
            Seg::Syn,
            b"",
        );
        if run(&mut d, now, PUB, &syn).0 == Verdict::Transmit(PRIV) {
            admitted += 1;
        }
    }
    assert!((209..=211).contains(&admitted), "{admitted}");
    assert_eq!(d.shed().counters().budget_admitted, admitted);
    assert_eq!(d.table_v4().len() as u64, admitted);
}

#[test]
fn switched_off_it_neither_proves_nor_sheds() {
    let mut d = nat(0, false);
    handshake(&mut d, t(1), "10.1.0.10", "10.1.0.100", "10.2.0.11", 40000);
    for _ in 0..10 {
        d.syn_backlog(t(2), true);
    }
    assert!(!d.shed().congested());
    assert!(d.shed().proven().is_empty());
    let syn = tcp_frame("198.51.100.9", 2000, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(2), PUB, &syn).0, Verdict::Transmit(PRIV));
    // A reload switches it on; the proven set keeps the size it was allocated with.
    let mut cfg = d.config().clone();
    cfg.syn_shed.enabled = true;
    cfg.syn_shed.proven = 1 << 20;
    d.apply(&cfg).unwrap();
    assert!(d.shed().enabled());
    assert_eq!(d.shed().proven().capacity(), 1024);
    handshake(&mut d, t(3), "10.1.0.10", "10.1.0.100", "10.2.0.11", 40001);
    assert!(d.shed().proven().contains(ip("10.1.0.10")));
}

#[test]
fn a_valid_cookie_proves_the_client_and_shed_syns_get_no_cookie() {
    let mut d = director_with(super::synproxy::proxy_config(
        vec![tcp_svc(
            "10.1.0.100",
            80,
            ForwardMethod::Masq,
            &["10.2.0.11"],
        )],
        true,
        vec![],
    ));
    let cookie = cookie_of(&mut d, t(5), "10.1.0.10", 50000);
    assert!(
        !d.shed().proven().contains(ip("10.1.0.10")),
        "a SYN proves nothing"
    );
    let bad = cookie_ack("10.1.0.10", 50000, cookie ^ 0x0100_0000);
    assert_eq!(
        run(&mut d, t(5), PUB, &bad).0,
        Verdict::Drop(DropReason::SynProxy)
    );
    assert!(
        !d.shed().proven().contains(ip("10.1.0.10")),
        "nor a bad cookie"
    );
    let ack = cookie_ack("10.1.0.10", 50000, cookie);
    assert_eq!(run(&mut d, t(5), PUB, &ack).0, Verdict::Transmit(PRIV));
    assert!(d.shed().proven().contains(ip("10.1.0.10")));
    congest(&mut d, t(5));
    let cookies = d.counters().synproxy.cookies_sent;
    // Budget 2,000/s with 200 of burst: the 201st unproven SYN at one instant is shed.
    let mut shed = 0;
    for i in 0..300u32 {
        let syn = tcp_frame(
            "198.51.100.9",
            1024 + i as u16,
            "10.1.0.100",
            80,
            Seg::Syn,
            b"",
        );
        if run(&mut d, t(5), PUB, &syn).0 == Verdict::Drop(DropReason::SynShed) {
            shed += 1;
        }
    }
    assert_eq!(shed, 100);
    assert_eq!(d.counters().synproxy.cookies_sent, cookies + 200);
    // The proven client still gets its cookie.
    cookie_of(&mut d, t(5), "10.1.0.10", 50001);
}
