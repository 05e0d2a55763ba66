//! Offloading established connections to a kernel fast path (`director/offload.rs`): the
//! rewrite handed out for each direction is exactly what the engine itself does to the
//! next segment (addresses, ports, MACs, egress port), for NAT and FullNAT; only an
//! established IPv4 TCP NAT/FullNAT connection is offered; folding counts the fast path's
//! packets and bytes and re-arms the timer from its last-seen time.

use super::*;
use crate::director::offload::{Offload, OffloadCount, OffloadWay, Tuple4};

fn v4(s: &str) -> [u8; 4] {
    match ip(s) {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("not IPv4"),
    }
}

/// A FIN+ACK segment.
fn fin_frame(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (ip(src), ip(dst)) else {
        panic!("IPv4 only")
    };
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(sport, dport, 2000, 64240)
        .ack(1)
        .fin()
        .write(&mut v, b"")
        .unwrap();
    v
}

/// What a segment `from` looks like after the engine forwarded it, as an [`OffloadWay`].
fn forwarded(
    d: &mut Director,
    now: Instant,
    port: PortId,
    frame: &[u8],
    from: Tuple4,
) -> OffloadWay {
    let (v, out) = run(d, now, port, frame);
    let Verdict::Transmit(p) = v else {
        panic!("not forwarded: {v:?}")
    };
    let s = inspect(&out);
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (s.src, s.dst) else {
        panic!("not IPv4")
    };
    OffloadWay {
        from,
        to: (src.octets(), s.sport, dst.octets(), s.dport),
        dmac: s.dst_mac,
        smac: s.src_mac,
        port: p,
    }
}

/// Handshake and first data through the engine; the offload then, and what the engine
/// does to the next segment each way.
fn established(method: ForwardMethod) -> (Director, Offload, OffloadWay, OffloadWay) {
    let mut d = director(vec![tcp_svc("10.1.0.100", 80, method, &["10.2.0.11"])]);
    let c = ("10.1.0.10", 40000, "10.1.0.100", 80);
    let syn = tcp_frame(c.0, c.1, c.2, c.3, Seg::Syn, b"");
    let (_, out) = run(&mut d, t(1), PUB, &syn);
    let toward = inspect(&out);
    let IpAddr::V4(back_to) = toward.src else {
        panic!()
    };
    let back_to = back_to.to_string();
    let rs_from: Tuple4 = (v4("10.2.0.11"), 80, v4(&back_to), toward.sport);
    let client_from: Tuple4 = (v4(c.0), c.1, v4(c.2), c.3);
    assert_eq!(
        d.offload_v4(t(1), 6, client_from),
        None,
        "a SYN_RECV connection is not offloaded"
    );
    let synack = tcp_frame("10.2.0.11", 80, &back_to, toward.sport, Seg::SynAck, b"");
    run(&mut d, t(1), PRIV, &synack);
    let data = tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"GET / HTTP/1.0\r\n\r\n");
    run(&mut d, t(2), PUB, &data);
    let o = d
        .offload_v4(t(2), 6, client_from)
        .expect("established: offloaded");
    assert_eq!(
        d.offload_v4(t(2), 6, rs_from),
        Some(o),
        "found by the reply too"
    );
    let data = tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"more");
    let inward = forwarded(&mut d, t(3), PUB, &data, client_from);
    let reply = tcp_frame("10.2.0.11", 80, &back_to, toward.sport, Seg::Ack, b"200 OK");
    let outward = forwarded(&mut d, t(3), PRIV, &reply, rs_from);
    (d, o, inward, outward)
}

#[test]
fn nat_offload_is_what_the_engine_does() {
    let (_, o, inward, outward) = established(ForwardMethod::Masq);
    assert_eq!(o.inward, inward);
    assert_eq!(o.outward, Some(outward));
    assert_eq!(o.inward.to, (v4("10.1.0.10"), 40000, v4("10.2.0.11"), 80));
    assert_eq!((outward.dmac, outward.port), (CLIENT_MAC, PUB));
}

#[test]
fn fullnat_offload_is_what_the_engine_does() {
    let (_, o, inward, outward) = established(ForwardMethod::FullNat);
    assert_eq!(o.inward, inward);
    assert_eq!(o.outward, Some(outward));
    assert_eq!(o.inward.to.0, v4("10.2.0.250"));
}

/// Direct routing: the client's direction only, the MACs only, as the engine does.
#[test]
fn direct_routing_offload_is_the_mac_rewrite() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::DirectRoute,
        &["10.2.0.11"],
    )]);
    let c = ("10.1.0.10", 40000, "10.1.0.100", 80);
    let from: Tuple4 = (v4(c.0), c.1, v4(c.2), c.3);
    run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame(c.0, c.1, c.2, c.3, Seg::Syn, b""),
    );
    assert_eq!(d.offload_v4(t(1), 6, from), None, "SYN_RECV");
    run(
        &mut d,
        t(2),
        PUB,
        &tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"x"),
    );
    let o = d
        .offload_v4(t(2), 6, from)
        .expect("established (input only)");
    assert_eq!(o.outward, None);
    let data = tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"more");
    assert_eq!(o.inward, forwarded(&mut d, t(3), PUB, &data, from));
    assert_eq!((o.inward.to, o.inward.dmac), (from, rs_mac(1)));
}

/// GRE and GUE tunnels are not offered (the program encapsulates IPIP only).
#[test]
fn gre_tunnels_are_not_offloaded() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Tunnel {
            kind: crate::model::TunnelKind::Gre,
            csum: crate::model::TunnelCsum::NoCsum,
        },
        &["10.2.0.11"],
    )]);
    let c = ("10.1.0.10", 40000, "10.1.0.100", 80);
    run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame(c.0, c.1, c.2, c.3, Seg::Syn, b""),
    );
    run(
        &mut d,
        t(2),
        PUB,
        &tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"x"),
    );
    assert_eq!(d.offload_v4(t(2), 6, (v4(c.0), c.1, v4(c.2), c.3)), None);
}

/// What the fast path takes (ACK without SYN, FIN, RST) leaves an ESTABLISHED entry as it
/// is, with or without NO_OUTPUT (the INPUT and the INPUT_ONLY rows), in the normal and the
/// secure_tcp tables: skipping those segments loses no transition.
#[test]
fn an_ack_keeps_established_in_both_input_rows() {
    use crate::conn::state::{ConnFlags, Direction, TcpFlags, TcpState, transition_with};
    for secure in [false, true] {
        for flags in 0..=ConnFlags::PUBLIC_MASK {
            for tcp in 0..=u8::MAX {
                let not_data = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST;
                if tcp & (not_data | TcpFlags::ACK) != TcpFlags::ACK {
                    continue;
                }
                let f = ConnFlags(flags);
                let tr = transition_with(
                    secure,
                    TcpState::Established,
                    f,
                    Direction::Input,
                    TcpFlags(tcp),
                );
                assert_eq!(
                    (tr.new, tr.flags, tr.activity),
                    (TcpState::Established, f, None),
                    "secure {secure}, flags {flags:#x}, tcp {tcp:#x}"
                );
            }
        }
    }
}

#[test]
fn fold_counts_and_rearms_and_a_fin_ends_the_offload() {
    let (mut d, o, _, _) = established(ForwardMethod::Masq);
    let svc = d.services().iter().next().unwrap().1;
    let before = (
        svc.stats.inpkts,
        svc.stats.outpkts,
        svc.stats.inbytes,
        svc.stats.outbytes,
    );
    let (id, c) = d.table_v4().iter().next().unwrap();
    let expires = c.expires;
    let inward = OffloadCount {
        packets: 10,
        bytes: 1000,
    };
    let outward = OffloadCount {
        packets: 7,
        bytes: 7000,
    };
    let again = d.offload_fold(t(100), &o, inward, outward, Some(t(90)));
    assert_eq!(again, Some(o));
    let svc = d.services().iter().next().unwrap().1;
    assert_eq!(
        (
            svc.stats.inpkts,
            svc.stats.outpkts,
            svc.stats.inbytes,
            svc.stats.outbytes
        ),
        (
            before.0 + 10,
            before.1 + 7,
            before.2 + 1000,
            before.3 + 7000
        )
    );
    let (_, c) = d.table_v4().iter().next().unwrap();
    let ds = d.services().dest_stats(DestId(c.dest)).unwrap();
    assert_eq!((ds.inpkts, ds.outpkts), (before.0 + 10, before.1 + 7));
    // ESTABLISHED's timeout (900 s) from the fast path's last hit at 90 s.
    let c = d.table_v4().get(id).unwrap();
    assert!(c.expires > expires);
    assert_eq!(c.expires, t(90) + c.timeout);
    // An older last-seen does not shorten the timer.
    d.offload_fold(
        t(101),
        &o,
        OffloadCount::default(),
        OffloadCount::default(),
        Some(t(50)),
    );
    assert_eq!(d.table_v4().get(id).unwrap().expires, t(90) + c.timeout);
    // The client's FIN (which the fast path passes up) leaves ESTABLISHED: no offload.
    let fin = fin_frame("10.1.0.10", 40000, "10.1.0.100", 80);
    run(&mut d, t(102), PUB, &fin);
    assert_eq!(d.offload_v4(t(102), 6, o.inward.from), None);
    assert_eq!(
        d.offload_fold(
            t(102),
            &o,
            OffloadCount::default(),
            OffloadCount::default(),
            None
        ),
        None
    );
}

/// With the connection-sync master role on, established connections are still offered, and
/// the fast path's client packets, folded back, count towards `sync_threshold` as the
/// kernel's `ip_vs_in()` counts them: a record goes out when the folded counts pass
/// 3 + k × 50 (the default "3 50"), once per fold, and not otherwise.
#[test]
fn folded_client_packets_drive_connection_sync() {
    use crate::director::sync::SyncSettings;
    let (mut d, o, _, _) = established(ForwardMethod::Masq);
    d.set_sync(Some(SyncSettings::default())).unwrap();
    while d.poll_sync().is_some() {}
    assert_eq!(
        d.offload_v4(t(3), 6, o.inward.from),
        Some(o),
        "offered with sync on"
    );
    assert!(!o.synced, "created here, not by a sync record");
    let (id, _) = d.table_v4().iter().next().unwrap();
    let in_pkts = |d: &Director| d.table_v4().sync_meta(id).unwrap().in_pkts;
    // The engine counted nothing before the role was on: the count starts at 0 here.
    let base = in_pkts(&d);
    let fold = |d: &mut Director, n: u64, at: u64| {
        d.offload_fold(
            t(at),
            &o,
            OffloadCount {
                packets: n,
                bytes: n * 100,
            },
            OffloadCount {
                packets: n,
                bytes: n * 1000,
            },
            Some(t(at)),
        );
        std::iter::from_fn(|| d.poll_sync()).collect::<Vec<_>>()
    };
    // Up to the count below the next 3 + k × 50: nothing.
    let next = (base / 50) * 50 + 3;
    let next = if next <= base { next + 50 } else { next };
    let short = u64::from(next - base - 1);
    assert!(fold(&mut d, short, 10).is_empty(), "before the threshold");
    assert_eq!(in_pkts(&d), next - 1);
    // One more passes it: one record, of this connection, ESTABLISHED.
    let recs = fold(&mut d, 1, 11);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].state, TcpState::Established as u16);
    assert_eq!(
        (recs[0].cport, recs[0].vport),
        (o.inward.from.1, o.inward.from.3)
    );
    // 49 more reach 3 + 50k - 1 + 49 ... nothing; then 120 at once pass two points: one record.
    assert!(fold(&mut d, 49, 12).is_empty());
    assert_eq!(fold(&mut d, 120, 13).len(), 1);
    // The reply direction does not count (`ip_vs_in()` counts the client's packets).
    let before = in_pkts(&d);
    d.offload_fold(
        t(14),
        &o,
        OffloadCount::default(),
        OffloadCount {
            packets: 500,
            bytes: 5000,
        },
        Some(t(14)),
    );
    assert_eq!(in_pkts(&d), before);
    assert_eq!(d.poll_sync(), None);
}

/// A backup's connection created from a sync record is offered as synced (a director that
/// took over installs it at once), and found by the takeover walk; one scheduled here is
/// not listed by the walk.
#[test]
fn synced_connections_are_offered_and_listed_for_a_takeover() {
    use crate::sync::{SyncConn, flags};
    let (mut d, o, _, _) = established(ForwardMethod::Masq);
    let mut listed = Vec::new();
    assert_eq!(
        d.synced_established_v4(0, 1 << 20, |_, k| listed.push(k)),
        None
    );
    assert!(listed.is_empty(), "scheduled here: {listed:?}");
    let rec = SyncConn {
        protocol: 6,
        flags: flags::MASQ,
        state: TcpState::Established as u16,
        cport: 40001,
        vport: 80,
        dport: 80,
        fwmark: 0,
        timeout: 900,
        caddr: ip("10.1.0.10"),
        vaddr: ip("10.1.0.100"),
        daddr: ip("10.2.0.11"),
        seq: None,
        pe_data: None,
        pe_name: None,
        local: None,
    };
    d.sync_import(t(5), &rec).unwrap();
    let from: Tuple4 = (v4("10.1.0.10"), 40001, v4("10.1.0.100"), 80);
    assert_eq!(
        d.synced_established_v4(0, 1 << 20, |_, k| listed.push(k)),
        None
    );
    assert_eq!(listed, [from]);
    let s = d
        .offload_v4(t(6), 6, from)
        .expect("a synced established NAT connection");
    assert!(s.synced);
    assert_eq!(s.inward.to, (v4("10.1.0.10"), 40001, v4("10.2.0.11"), 80));
    assert_eq!(
        s.outward.map(|w| w.to),
        Some((v4("10.1.0.100"), 80, v4("10.1.0.10"), 40001))
    );
    assert_ne!(s.inward.from, o.inward.from);
    // A walk in pieces of one slot reaches it too.
    let mut pieces = Vec::new();
    let mut at = Some(0);
    while let Some(from) = at {
        at = d.synced_established_v4(from, 1, |_, k| pieces.push(k));
    }
    assert_eq!(pieces, [from]);
}

/// An IPIP tunnel is offered as direct routing is (the client's way, the segment as it is)
/// with the outer header the engine writes: the director's address on the real server's
/// link, the real server, and the room the MTU leaves.
#[test]
fn ipip_offload_is_the_engines_outer_header() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Tunnel {
            kind: crate::model::TunnelKind::Ipip,
            csum: crate::model::TunnelCsum::NoCsum,
        },
        &["10.2.0.11"],
    )]);
    let c = ("10.1.0.10", 40000, "10.1.0.100", 80);
    let from: Tuple4 = (v4(c.0), c.1, v4(c.2), c.3);
    run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame(c.0, c.1, c.2, c.3, Seg::Syn, b""),
    );
    run(
        &mut d,
        t(2),
        PUB,
        &tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"x"),
    );
    let o = d.offload_v4(t(2), 6, from).expect("established IPIP");
    assert_eq!((o.inward.to, o.outward), (from, None));
    let data = tcp_frame(c.0, c.1, c.2, c.3, Seg::Ack, b"more");
    let (v, out) = run(&mut d, t(3), PUB, &data);
    assert_eq!(v, Verdict::Transmit(o.inward.port));
    let tun = o.tunnel.expect("the outer header");
    // The engine's frame: Ethernet, outer IPv4 (protocol 4) from `src` to `dst`.
    assert_eq!(out[23], 4, "IPIP");
    assert_eq!(&out[26..30], &tun.src);
    assert_eq!(&out[30..34], &tun.dst);
    assert_eq!(tun.dst, v4("10.2.0.11"));
    assert_eq!(&out[0..6], &o.inward.dmac);
    assert_eq!(usize::from(tun.room), 1500 - 20);
}
