//! The neighbour table through the engine: which ARP / ND frames create, refresh or
//! challenge an entry, and that a forged claim for a real server's address does not move
//! its traffic (`director/neigh.rs`).

use super::*;

const EVIL: [u8; 6] = [2, 0, 0, 0, 0, 0xee];

/// A DR director with one real server (IPv4 and IPv6) and no neighbour known yet.
fn bare(bound: usize) -> Director {
    let mut v6 = tcp_svc(
        "2001:db8:1::100",
        80,
        ForwardMethod::DirectRoute,
        &["2001:db8:2::11"],
    );
    v6.scheduler = SchedulerKind::Rr;
    let cfg = Config {
        services: vec![
            tcp_svc("10.1.0.100", 80, ForwardMethod::DirectRoute, &["10.2.0.11"]),
            v6,
        ],
        ..Config::default()
    };
    let settings = DirectorSettings {
        neigh_gc_thresh3: bound,
        ..DirectorSettings::default()
    };
    Director::new(net(), &cfg, settings).expect("valid config")
}

fn arp(op: wire::ArpOperation, mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let r = wire::ArpRepr {
        operation: op,
        sender_hw: wire::EthernetAddress(mac),
        sender_ip: Ipv4Addr::from(sender),
        target_hw: wire::EthernetAddress(if op == wire::ArpOperation::REPLY {
            DIR_PRIV_MAC
        } else {
            [0; 6]
        }),
        target_ip: Ipv4Addr::from(target),
    };
    let mut b = vec![0u8; 60];
    let n = r.emit_frame(&mut b).unwrap();
    b.truncate(n);
    b
}

fn request(mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    arp(wire::ArpOperation::REQUEST, mac, sender, target)
}

fn reply(mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    arp(wire::ArpOperation::REPLY, mac, sender, target)
}

/// Every frame the engine queued: (port, frame).
fn sent(d: &mut Director) -> Vec<(PortId, Vec<u8>)> {
    let mut out = [0u8; 2048];
    std::iter::from_fn(|| {
        d.poll_transmit(&mut out)
            .map(|(p, n)| (p, out[..n].to_vec()))
    })
    .collect()
}

/// The IPv4 frames the engine queued (the IPv6 real server's solicitations left out).
fn sent_arp(d: &mut Director) -> Vec<(PortId, Vec<u8>)> {
    sent(d)
        .into_iter()
        .filter(|(_, f)| f[12..14] != [0x86, 0xdd])
        .collect()
}

/// A client's SYN through the DR service: the MAC it leaves with (None: parked).
fn syn_mac(d: &mut Director, now: Instant, sport: u16) -> Option<[u8; 6]> {
    let syn = tcp_frame("10.1.0.10", sport, "10.1.0.100", 80, Seg::Syn, b"");
    match run(d, now, PUB, &syn) {
        (Verdict::Transmit(PRIV), out) => Some(out[..6].try_into().unwrap()),
        (Verdict::Consumed, _) => None,
        other => panic!("{other:?}"),
    }
}

/// A director (neighbour bound `bound`) whose real server 10.2.0.11 was resolved: a SYN at
/// 0 ms asked for it, its reply came at 10 ms. What it sent stays queued.
fn resolved(bound: usize) -> Director {
    let mut d = bare(bound);
    syn_mac(&mut d, ms(0), 40000);
    resolve_rs(&mut d);
    d
}

/// The real server's ARP reply to the director's request, at 10 ms.
fn resolve_rs(d: &mut Director) {
    run(
        d,
        ms(10),
        PRIV,
        &reply(rs_mac(1), [10, 2, 0, 11], [10, 2, 0, 1]),
    );
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

#[test]
fn a_forged_arp_for_a_real_server_is_probed_and_refused_when_the_server_answers() {
    let mut d = bare(64);
    // The first SYN parks and the director asks for the real server by broadcast.
    assert_eq!(syn_mac(&mut d, ms(0), 40000), None);
    let q = sent_arp(&mut d);
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].0, &q[0].1[..6]), (PRIV, &[0xff; 6][..]));
    // Its reply resolves the entry and releases the SYN to its MAC.
    resolve_rs(&mut d);
    let q = sent_arp(&mut d);
    assert_eq!(q.len(), 1);
    assert_eq!(&q[0].1[..6], &rs_mac(1));
    // A forged reply and a forged gratuitous ARP claim its address with another MAC.
    for forged in [
        reply(EVIL, [10, 2, 0, 11], [10, 2, 0, 1]),
        request(EVIL, [10, 2, 0, 11], [10, 2, 0, 11]),
    ] {
        run(&mut d, ms(100), PRIV, &forged);
        // Traffic stays with the real server.
        assert_eq!(syn_mac(&mut d, ms(110), 40001), Some(rs_mac(1)));
    }
    // The claim made the director probe the known MAC (unicast, once).
    let q = sent_arp(&mut d);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!((q[0].0, &q[0].1[..6]), (PRIV, &rs_mac(1)[..]));
    let probe = etherparse::ArpPacketSlice::from_slice(&q[0].1[14..]).unwrap();
    assert_eq!(probe.target_protocol_addr(), &[10, 2, 0, 11]);
    // The real server answers: the claim is refused.
    run(
        &mut d,
        ms(300),
        PRIV,
        &reply(rs_mac(1), [10, 2, 0, 11], [10, 2, 0, 1]),
    );
    let c = *d.neighbors().counters();
    assert_eq!((c.spoof_probes, c.spoof_refused), (1, 1));
    d.expire(ms(5000));
    assert!(sent_arp(&mut d).is_empty(), "no further probes");
    assert_eq!(syn_mac(&mut d, ms(5000), 40002), Some(rs_mac(1)));
}

#[test]
fn a_silent_real_server_is_resolved_afresh_and_only_a_reply_moves_it() {
    let mut d = resolved(64);
    sent_arp(&mut d);
    run(
        &mut d,
        ms(1000),
        PRIV,
        &request(EVIL, [10, 2, 0, 11], [10, 2, 0, 11]),
    );
    for s in 2..=4 {
        assert_eq!(
            syn_mac(&mut d, ms(s * 1000 - 10), 40000 + s as u16),
            Some(rs_mac(1))
        );
        d.expire(ms(s * 1000));
    }
    // Three unicast probes unanswered; then one broadcast request.
    let q = sent_arp(&mut d);
    let dsts: Vec<&[u8]> = q.iter().map(|(_, f)| &f[..6]).collect();
    assert_eq!(
        dsts,
        vec![
            &rs_mac(1)[..],
            &rs_mac(1)[..],
            &rs_mac(1)[..],
            &[0xff; 6][..]
        ]
    );
    // Traffic waits; gratuitous ARPs from the other MAC still do not set the entry.
    assert_eq!(syn_mac(&mut d, ms(4100), 40010), None);
    run(
        &mut d,
        ms(4200),
        PRIV,
        &request(EVIL, [10, 2, 0, 11], [10, 2, 0, 11]),
    );
    assert!(sent_arp(&mut d).is_empty());
    // The answer to the broadcast does, and releases the parked SYN.
    run(
        &mut d,
        ms(4300),
        PRIV,
        &reply(EVIL, [10, 2, 0, 11], [10, 2, 0, 1]),
    );
    let q = sent_arp(&mut d);
    assert_eq!(q.len(), 1);
    assert_eq!(&q[0].1[..6], &EVIL);
}

#[test]
fn only_requests_for_our_addresses_create_entries_and_the_table_stays_bounded() {
    let mut d = resolved(64);
    sent(&mut d);
    for i in 0..5000u32 {
        let src = (0x0a01_0000 | (i + 300)).to_be_bytes();
        let mac = [2, 1, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1];
        // Gratuitous ARPs, requests for other hosts, unsolicited replies: nothing.
        run(&mut d, ms(20), PUB, &request(mac, src, src));
        run(&mut d, ms(20), PUB, &request(mac, src, [10, 1, 0, 77]));
        run(&mut d, ms(20), PUB, &reply(mac, src, [10, 1, 0, 2]));
    }
    assert_eq!(d.neighbors().len(false), 1);
    // Two replies looked for us, but nobody asked: also ignored (counted with the rest).
    assert_eq!(d.neighbors().counters().unsolicited_ignored, 15_000);
    // Requests for the VIP create entries, up to the bound, evicting the oldest.
    for i in 0..5000u32 {
        let src = (0x0a01_0000 | (i + 300)).to_be_bytes();
        let mac = [2, 1, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1];
        let (v, _) = run(&mut d, ms(30), PUB, &request(mac, src, [10, 1, 0, 100]));
        assert_eq!(v, Verdict::Transmit(PUB), "answered");
    }
    let n = d.neighbors();
    assert_eq!(n.len(false), 64);
    assert_eq!(n.counters().evicted, 5000 - 63);
    // The real server's entry was never evicted: its traffic still leaves at once.
    assert_eq!(syn_mac(&mut d, ms(40), 40001), Some(rs_mac(1)));
    // Unused entries go after gc_stale_time; the real server's is kept confirmed.
    for s in 1..=200 {
        d.expire(ms(40 + s * 1000));
        for (_, f) in sent(&mut d) {
            if f[..6] == rs_mac(1) {
                run(
                    &mut d,
                    ms(40 + s * 1000 + 5),
                    PRIV,
                    &reply(rs_mac(1), [10, 2, 0, 11], [10, 2, 0, 1]),
                );
            }
        }
    }
    assert_eq!(d.neighbors().len(false), 1);
    assert_eq!(
        d.neighbors().get(ip("10.2.0.11")).map(|e| e.mac),
        Some(rs_mac(1))
    );
    assert_eq!(d.neighbors().counters().gc, 63);
}

/// A neighbour solicitation for `target` from `src` at `mac` (multicast).
fn ns(mac: [u8; 6], src: &str, target: &str) -> Vec<u8> {
    let mut b = vec![0u8; 96];
    let n = nd::solicit(
        &mut b,
        mac,
        src.parse().unwrap(),
        target.parse().unwrap(),
        None,
    );
    b.truncate(n);
    b
}

/// A neighbour advertisement of `target` at `mac`, solicited or not.
fn na(mac: [u8; 6], target: &str, solicited: bool) -> Vec<u8> {
    let mut b = vec![0u8; 96];
    let n = nd::unsolicited_na(&mut b, mac, target.parse().unwrap());
    if solicited {
        b[54 + 4] |= 0x40;
        let _ = wire::fill_l4_checksum(&mut b[14..n]);
    }
    b.truncate(n);
    b
}

#[test]
fn nd_follows_the_same_rules() {
    let mut d = bare(16);
    let syn = tcp_frame(
        "2001:db8:1::10",
        40000,
        "2001:db8:1::100",
        80,
        Seg::Syn,
        b"",
    );
    assert_eq!(run(&mut d, ms(0), PUB, &syn).0, Verdict::Consumed);
    let q = sent(&mut d);
    assert_eq!(
        &q[0].1[..6],
        &[0x33, 0x33, 0xff, 0, 0, 0x11],
        "solicited-node group"
    );
    // An unsolicited NA does not answer it; a solicited one does.
    run(&mut d, ms(5), PRIV, &na(EVIL, "2001:db8:2::11", false));
    assert!(sent(&mut d).is_empty());
    run(&mut d, ms(10), PRIV, &na(rs_mac(1), "2001:db8:2::11", true));
    let q = sent(&mut d);
    assert_eq!(&q[0].1[..6], &rs_mac(1));
    // Solicitations from random sources: for other hosts nothing, for the VIP bounded.
    for i in 0..1000u32 {
        let src = format!("2001:db8:1::1:{i:x}");
        let mac = [2, 2, 0, (i >> 8) as u8, i as u8, 1];
        run(&mut d, ms(20), PUB, &ns(mac, &src, "2001:db8:1::77"));
    }
    assert_eq!(d.neighbors().len(true), 1);
    for i in 0..1000u32 {
        let src = format!("2001:db8:1::1:{i:x}");
        let mac = [2, 2, 0, (i >> 8) as u8, i as u8, 1];
        let (v, _) = run(&mut d, ms(30), PUB, &ns(mac, &src, "2001:db8:1::100"));
        assert_eq!(v, Verdict::Transmit(PUB));
    }
    assert_eq!(d.neighbors().len(true), 16);
    // An unsolicited NA with another MAC for the real server: a unicast NS probe to the
    // known MAC and the real server itself; its answer refuses the claim.
    run(&mut d, ms(40), PRIV, &na(EVIL, "2001:db8:2::11", false));
    let q = sent(&mut d);
    assert_eq!(q.len(), 1);
    assert_eq!(&q[0].1[..6], &rs_mac(1));
    assert_eq!(
        &q[0].1[38..54],
        &"2001:db8:2::11".parse::<Ipv6Addr>().unwrap().octets()
    );
    let syn = tcp_frame(
        "2001:db8:1::10",
        40001,
        "2001:db8:1::100",
        80,
        Seg::Syn,
        b"",
    );
    let (v, out) = run(&mut d, ms(50), PUB, &syn);
    assert_eq!((v, &out[..6]), (Verdict::Transmit(PRIV), &rs_mac(1)[..]));
    run(&mut d, ms(60), PRIV, &na(rs_mac(1), "2001:db8:2::11", true));
    assert_eq!(d.neighbors().counters().spoof_refused, 1);
}

#[test]
fn configured_next_hops_are_resolved_before_traffic_needs_them() {
    let mut d = bare(64);
    d.expire(ms(0));
    let q = sent(&mut d);
    // The IPv4 and IPv6 real servers, asked at once (as a kernel director's health checks
    // would have them resolved): a backup taking over then forwards its first packet.
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(&q[0].1[..6], &[0xff; 6]);
    run(
        &mut d,
        ms(10),
        PRIV,
        &reply(rs_mac(1), [10, 2, 0, 11], [10, 2, 0, 1]),
    );
    assert_eq!(syn_mac(&mut d, ms(20), 40000), Some(rs_mac(1)));
    // Not asked again while resolving or known; a silent one is asked again later.
    d.expire(ms(1000));
    d.expire(ms(2000));
    let q = sent(&mut d);
    assert!(q.iter().all(|(_, f)| f[12..14] == [0x86, 0xdd]), "{q:?}");
    assert_eq!(q.len(), 2, "the IPv6 real server's retransmissions");
    d.expire(ms(5000));
    let q = sent(&mut d);
    assert_eq!(q.len(), 1, "the IPv6 real server asked afresh: {q:?}");
}
