//! SCTP associations through the engine, crafted chunk by chunk: scheduling on INIT only,
//! the kernel's state table and timers at each step, the active/inactive counts, the
//! CRC32c after NAT and FullNAT rewrites (checked with the bit-by-bit CRC of
//! `wire::sctp::testing`, not the crate the engine uses), DR forwarding unchanged, and ICMP
//! errors quoting SCTP.

use super::*;
use crate::wire::sctp::chunk;
use crate::wire::sctp::testing::{crc32c_bitwise, packet as sctp_packet};

const VPORT: u16 = 2905;
const RPORT: u16 = 3868;
const CPORT: u16 = 40000;

/// The CRC an SCTP packet must carry: over the packet with the checksum field zeroed,
/// stored least significant byte first (RFC 9260 appendix A).
fn sctp_crc_ok(sctp: &[u8]) -> bool {
    let mut z = sctp.to_vec();
    z[8..12].fill(0);
    sctp[8..12] == crc32c_bitwise(&z).to_le_bytes()
}

fn sctp_frame(src_mac: [u8; 6], dst_mac: [u8; 6], src: &str, dst: &str, sctp: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let b = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut v = Vec::new();
    b.write(&mut v, etherparse::IpNumber(132), sctp).unwrap();
    v
}

/// Addresses, ports and MACs of an SCTP frame, its IPv4 header checksum and its CRC32c
/// verified independently of the engine.
#[derive(Debug, PartialEq, Eq)]
struct SeenSctp {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

fn inspect_sctp(frame: &[u8]) -> (SeenSctp, Vec<u8>) {
    let s = SlicedPacket::from_ethernet(frame).expect("etherparse parses the output");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = s.link else {
        panic!("not ethernet")
    };
    let (src, dst, payload) = match s.net.as_ref().expect("has IP") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
            assert_eq!(h.protocol.0, 132);
            (
                IpAddr::V4(h.source.into()),
                IpAddr::V4(h.destination.into()),
                v4.payload().payload.to_vec(),
            )
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header().to_header();
            (
                IpAddr::V6(h.source.into()),
                IpAddr::V6(h.destination.into()),
                v6.payload().payload.to_vec(),
            )
        }
        other => panic!("unexpected {other:?}"),
    };
    assert!(sctp_crc_ok(&payload), "SCTP CRC32c after the rewrite");
    let seen = SeenSctp {
        dst_mac: eth.destination(),
        src_mac: eth.source(),
        src,
        dst,
        sport: u16::from_be_bytes([payload[0], payload[1]]),
        dport: u16::from_be_bytes([payload[2], payload[3]]),
    };
    (seen, payload)
}

fn sctp_svc(method: ForwardMethod, rs: &[&str], rport: u16) -> VirtualServiceConfig {
    let mut s = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: ip("10.1.0.100"),
        port: VPORT,
    });
    s.scheduler = SchedulerKind::Rr;
    for a in rs {
        let mut r = RealServerConfig::new(ip(a), rport);
        r.method = method;
        s.real_servers.push(r);
    }
    s
}

// Chunk values (only what the director looks at matters; the rest is plausible).
const INIT_V: &[u8] = &[0x11, 0x22, 0x33, 0x44, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1];
const INIT_ACK_V: &[u8] = &[
    0x55, 0x66, 0x77, 0x88, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1, 0, 7, 0, 8, 0xc0, 0x0c, 0x1e,
    0x00,
];
const COOKIE_V: &[u8] = &[0xc0, 0x0c, 0x1e, 0x00];
const DATA_V: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'p', b'i', b'n', b'g'];
const SACK_V: &[u8] = &[0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
const TSN_V: &[u8] = &[0, 0, 0, 1];

/// The one connection of the IPv4 table: (state name, seconds left, flags).
fn the_conn(d: &Director, now: Instant) -> (&'static str, u64, ConnFlags) {
    let mut it = d.table_v4().iter().filter(|(_, c)| !c.is_template());
    let (_, c) = it.next().expect("a connection");
    assert!(it.next().is_none(), "one connection");
    (c.state_name(), c.remaining_secs(now), c.flags)
}

/// (activeconns, inactconns) of each real server of the one service.
fn counts(d: &Director) -> Vec<(u32, u32)> {
    let svc = d.services().iter().next().unwrap().1;
    svc.dests
        .iter()
        .map(|r| (r.active_conns, r.inact_conns))
        .collect()
}

/// Which way a crafted packet goes.
#[derive(Clone, Copy, Debug)]
enum From {
    Client,
    Server,
}

/// One step of an association: the packet, the state, timer and counts it leads to.
struct Step {
    from: From,
    chunks: &'static [(u8, u8, &'static [u8])],
    state: &'static str,
    secs: u64,
    counts: (u32, u32),
}

const fn step(
    from: From,
    chunks: &'static [(u8, u8, &'static [u8])],
    state: &'static str,
    secs: u64,
    counts: (u32, u32),
) -> Step {
    Step {
        from,
        chunks,
        state,
        secs,
        counts,
    }
}

const C: From = From::Client;
const S: From = From::Server;

/// The whole client-initiated association, client-initiated shutdown (NAT states).
const NAT_CLIENT_SHUTDOWN: &[Step] = &[
    step(C, &[(chunk::INIT, 0, INIT_V)], "INIT1", 4, (0, 1)),
    step(S, &[(chunk::INIT_ACK, 0, INIT_ACK_V)], "C-SENT", 61, (0, 1)),
    step(
        C,
        &[(chunk::COOKIE_ECHO, 0, COOKIE_V)],
        "C-REPLIED",
        61,
        (0, 1),
    ),
    step(
        S,
        &[(chunk::COOKIE_ACK, 0, &[])],
        "ESTABLISHED",
        900,
        (1, 0),
    ),
    step(C, &[(chunk::DATA, 3, DATA_V)], "ESTABLISHED", 900, (1, 0)),
    step(
        S,
        &[(chunk::SACK, 0, SACK_V), (chunk::DATA, 3, DATA_V)],
        "ESTABLISHED",
        900,
        (1, 0),
    ),
    step(C, &[(chunk::SACK, 0, SACK_V)], "ESTABLISHED", 900, (1, 0)),
    step(C, &[(chunk::SHUTDOWN, 0, TSN_V)], "S-RECEIVED", 61, (0, 1)),
    step(
        S,
        &[(chunk::SHUTDOWN_ACK, 0, &[])],
        "S-ACK-SENT",
        61,
        (0, 1),
    ),
    step(
        C,
        &[(chunk::SHUTDOWN_COMPLETE, 0, &[])],
        "CLOSED",
        61,
        (0, 1),
    ),
];

/// The server shuts the association down.
const NAT_SERVER_SHUTDOWN: &[Step] = &[
    step(C, &[(chunk::INIT, 0, INIT_V)], "INIT1", 4, (0, 1)),
    step(S, &[(chunk::INIT_ACK, 0, INIT_ACK_V)], "C-SENT", 61, (0, 1)),
    // The client bundles DATA after its COOKIE-ECHO: the first chunk decides.
    step(
        C,
        &[(chunk::COOKIE_ECHO, 0, COOKIE_V), (chunk::DATA, 3, DATA_V)],
        "C-REPLIED",
        61,
        (0, 1),
    ),
    step(
        S,
        &[(chunk::COOKIE_ACK, 0, &[]), (chunk::SACK, 0, SACK_V)],
        "ESTABLISHED",
        900,
        (1, 0),
    ),
    step(S, &[(chunk::SHUTDOWN, 0, TSN_V)], "S-SENT", 61, (0, 1)),
    step(C, &[(chunk::SHUTDOWN_ACK, 0, &[])], "CLOSED", 61, (0, 1)),
    step(
        S,
        &[(chunk::SHUTDOWN_COMPLETE, 0, &[])],
        "CLOSED",
        61,
        (0, 1),
    ),
];

/// Run an association through a NAT or FullNAT director with one real server at
/// 10.2.0.11:`RPORT`; every forwarded frame is checked on the wire. Returns the director.
fn run_nat(method: ForwardMethod, steps: &[Step], start: u64) -> Director {
    let mut d = director(vec![sctp_svc(method, &["10.2.0.11"], RPORT)]);
    // Where the real server sees the client: the client itself (NAT) or a local address.
    let mut rs_peer: Option<(IpAddr, u16)> = None;
    for (i, s) in steps.iter().enumerate() {
        let now = t(start + i as u64);
        let vtag = 0x1234_5678;
        let (port, frame) = match s.from {
            From::Client => {
                let p = sctp_packet(CPORT, VPORT, vtag, s.chunks);
                (
                    PUB,
                    sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p),
                )
            }
            From::Server => {
                let (peer, pport) = rs_peer.expect("the client spoke first");
                let p = sctp_packet(RPORT, pport, vtag, s.chunks);
                (
                    PRIV,
                    sctp_frame(rs_mac(1), DIR_PRIV_MAC, "10.2.0.11", &peer.to_string(), &p),
                )
            }
        };
        let (v, out) = run(&mut d, now, port, &frame);
        let (seen, payload) = inspect_sctp(&out);
        match s.from {
            From::Client => {
                assert_eq!(v, Verdict::Transmit(PRIV), "step {i}");
                assert_eq!((seen.dst, seen.dport), (ip("10.2.0.11"), RPORT), "step {i}");
                assert_eq!((seen.dst_mac, seen.src_mac), (rs_mac(1), DIR_PRIV_MAC));
                if method == ForwardMethod::FullNat {
                    assert_eq!(seen.src, ip("10.2.0.250"));
                    assert!((20000..=20999).contains(&seen.sport));
                } else {
                    assert_eq!((seen.src, seen.sport), (ip("10.1.0.10"), CPORT));
                }
                rs_peer = Some((seen.src, seen.sport));
            }
            From::Server => {
                assert_eq!(v, Verdict::Transmit(PUB), "step {i}");
                assert_eq!(
                    (seen.src, seen.sport),
                    (ip("10.1.0.100"), VPORT),
                    "step {i}"
                );
                assert_eq!((seen.dst, seen.dport), (ip("10.1.0.10"), CPORT), "step {i}");
                assert_eq!((seen.dst_mac, seen.src_mac), (CLIENT_MAC, DIR_PUB_MAC));
            }
        }
        // The chunks pass untouched: only the ports (and the CRC) changed.
        let sent = match s.from {
            From::Client => sctp_packet(CPORT, VPORT, vtag, s.chunks),
            From::Server => sctp_packet(RPORT, rs_peer.unwrap().1, vtag, s.chunks),
        };
        assert_eq!(payload[4..8], sent[4..8], "verification tag");
        assert_eq!(payload[12..], sent[12..], "chunks");
        let (state, secs, _) = the_conn(&d, now);
        assert_eq!((state, secs), (s.state, s.secs), "step {i}: {:?}", s.from);
        assert_eq!(counts(&d), [s.counts], "step {i}: counts");
    }
    d
}

#[test]
fn nat_association_client_shutdown() {
    let d = run_nat(ForwardMethod::Masq, NAT_CLIENT_SHUTDOWN, 1);
    let svc = d.services().iter().next().unwrap().1;
    assert_eq!(svc.stats.conns, 1);
    assert_eq!((svc.stats.inpkts, svc.stats.outpkts), (6, 4));
}

#[test]
fn nat_association_server_shutdown() {
    run_nat(ForwardMethod::Masq, NAT_SERVER_SHUTDOWN, 1);
}

#[test]
fn fullnat_association_both_shutdowns() {
    run_nat(ForwardMethod::FullNat, NAT_CLIENT_SHUTDOWN, 1);
    run_nat(ForwardMethod::FullNat, NAT_SERVER_SHUTDOWN, 1);
}

#[test]
fn closed_association_expires_on_its_timer_and_init_starts_afresh() {
    let mut d = run_nat(ForwardMethod::Masq, NAT_CLIENT_SHUTDOWN, 1);
    // The last step (CLOSED, 61 s) was at t=10.
    let now = t(10 + 60);
    d.expire(now);
    assert_eq!(the_conn(&d, now).0, "CLOSED");
    d.expire(t(10 + 62));
    assert!(d.table_v4().is_empty());
    assert_eq!(counts(&d), [(0, 0)]);

    // Conn reuse (`is_new_conn_expected()`): an INIT on a CLOSED entry is scheduled anew.
    let mut d = director(vec![sctp_svc(
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
        RPORT,
    )]);
    let init = sctp_packet(CPORT, VPORT, 0, &[(chunk::INIT, 0, INIT_V)]);
    let init = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &init);
    let (_, out) = run(&mut d, t(1), PUB, &init);
    let first = inspect_sctp(&out).0.dst;
    let abort = sctp_packet(CPORT, VPORT, 1, &[(chunk::ABORT, 0, &[])]);
    let abort = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &abort);
    assert_eq!(run(&mut d, t(2), PUB, &abort).0, Verdict::Transmit(PRIV));
    assert_eq!(the_conn(&d, t(2)).0, "CLOSED");
    // Round robin moves on: the new association goes to the other real server.
    let (_, out) = run(&mut d, t(3), PUB, &init);
    let second = inspect_sctp(&out).0.dst;
    assert_ne!(first, second);
    assert_eq!(the_conn(&d, t(3)).0, "INIT1");
    let mut c = counts(&d);
    c.sort();
    assert_eq!(c, [(0, 0), (0, 1)]);
}

#[test]
fn only_init_opens_an_association() {
    let mut d = director(vec![sctp_svc(ForwardMethod::Masq, &["10.2.0.11"], RPORT)]);
    let send = |d: &mut Director, chunks: &[(u8, u8, &[u8])]| {
        let p = sctp_packet(CPORT, VPORT, 7, chunks);
        let f = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p);
        run(d, t(1), PUB, &f).0
    };
    for kind in [
        chunk::DATA,
        chunk::COOKIE_ECHO,
        chunk::ABORT,
        chunk::SHUTDOWN,
        chunk::HEARTBEAT,
    ] {
        assert_eq!(
            send(&mut d, &[(kind, 0, TSN_V)]),
            Verdict::Drop(DropReason::NotInit),
            "chunk {kind}"
        );
    }
    // INIT anywhere but first does not count either (the kernel reads the first chunk).
    assert_eq!(
        send(
            &mut d,
            &[(chunk::DATA, 3, DATA_V), (chunk::INIT, 0, INIT_V)]
        ),
        Verdict::Drop(DropReason::NotInit)
    );
    assert!(d.table_v4().is_empty());
    assert_eq!(d.drops().get(DropReason::NotInit), 6);
    // A packet with no chunk header at all is dropped as malformed (`NF_DROP`).
    assert_eq!(send(&mut d, &[]), Verdict::Drop(DropReason::Malformed));
    // SCTP to a port with no service is not the director's.
    let p = sctp_packet(CPORT, 9, 7, &[(chunk::INIT, 0, INIT_V)]);
    let f = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p);
    assert_eq!(run(&mut d, t(1), PUB, &f).0, Verdict::Pass);
    // And INIT does.
    assert_eq!(
        send(&mut d, &[(chunk::INIT, 0, INIT_V)]),
        Verdict::Transmit(PRIV)
    );
    assert_eq!(the_conn(&d, t(1)).0, "INIT1");
}

#[test]
fn init_rejected_with_abort_and_cookie_bundled_with_abort() {
    let mut d = director(vec![sctp_svc(ForwardMethod::Masq, &["10.2.0.11"], RPORT)]);
    let client = |chunks: &[(u8, u8, &[u8])]| {
        let p = sctp_packet(CPORT, VPORT, 7, chunks);
        sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p)
    };
    let server = |chunks: &[(u8, u8, &[u8])]| {
        let p = sctp_packet(RPORT, CPORT, 7, chunks);
        sctp_frame(rs_mac(1), DIR_PRIV_MAC, "10.2.0.11", "10.1.0.10", &p)
    };
    run(&mut d, t(1), PUB, &client(&[(chunk::INIT, 0, INIT_V)]));
    // The server refuses: OUTPUT ABORT on INIT1 is REJECTED, 4 s.
    run(&mut d, t(2), PRIV, &server(&[(chunk::ABORT, 0, &[])]));
    let (state, secs, _) = the_conn(&d, t(2));
    assert_eq!((state, secs), ("REJECTED", 4));
    // A new INIT on REJECTED: INPUT INIT goes to INIT.
    run(&mut d, t(3), PUB, &client(&[(chunk::INIT, 0, INIT_V)]));
    assert_eq!(the_conn(&d, t(3)).0, "INIT");
    run(
        &mut d,
        t(4),
        PRIV,
        &server(&[(chunk::INIT_ACK, 0, INIT_ACK_V)]),
    );
    assert_eq!(the_conn(&d, t(4)).0, "C-SENT");
    // COOKIE-ECHO followed by ABORT is an ABORT (`set_sctp_state()`): CLOSED.
    run(
        &mut d,
        t(5),
        PUB,
        &client(&[(chunk::COOKIE_ECHO, 0, COOKIE_V), (chunk::ABORT, 0, &[])]),
    );
    assert_eq!(the_conn(&d, t(5)).0, "CLOSED");
}

#[test]
fn direct_routing_forwards_unchanged_and_tracks_input_only() {
    let mut d = director(vec![sctp_svc(
        ForwardMethod::DirectRoute,
        &["10.2.0.11"],
        VPORT,
    )]);
    type Chunks = &'static [(u8, u8, &'static [u8])];
    let steps: [(Chunks, &str, u64, (u32, u32)); 6] = [
        (&[(chunk::INIT, 0, INIT_V)], "INIT1", 4, (0, 1)),
        (
            &[(chunk::COOKIE_ECHO, 0, COOKIE_V)],
            "ESTABLISHED",
            900,
            (1, 0),
        ),
        (&[(chunk::DATA, 3, DATA_V)], "ESTABLISHED", 900, (1, 0)),
        (&[(chunk::SACK, 0, SACK_V)], "ESTABLISHED", 900, (1, 0)),
        (&[(chunk::SHUTDOWN, 0, TSN_V)], "S-RECEIVED", 61, (0, 1)),
        (&[(chunk::SHUTDOWN_COMPLETE, 0, &[])], "CLOSED", 61, (0, 1)),
    ];
    for (i, (chunks, state, secs, cnt)) in steps.into_iter().enumerate() {
        let now = t(1 + i as u64);
        let p = sctp_packet(CPORT, VPORT, 9, chunks);
        let f = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p);
        let (v, out) = run(&mut d, now, PUB, &f);
        assert_eq!(v, Verdict::Transmit(PRIV), "step {i}");
        // Only the MACs change: the IP packet is the client's, byte for byte.
        assert_eq!(out[..6], rs_mac(1));
        assert_eq!(out[6..12], DIR_PRIV_MAC);
        assert_eq!(out[12..], f[12..], "step {i}");
        let (st, left, flags) = the_conn(&d, now);
        assert_eq!((st, left), (state, secs), "step {i}");
        assert!(flags.has(ConnFlags::NO_OUTPUT));
        assert_eq!(counts(&d), [cnt], "step {i}");
    }
}

#[test]
fn icmp_errors_quoting_sctp_follow_the_association() {
    let mut d = director(vec![sctp_svc(ForwardMethod::Masq, &["10.2.0.11"], RPORT)]);
    let init = sctp_packet(CPORT, VPORT, 0, &[(chunk::INIT, 0, INIT_V)]);
    let init = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &init);
    let (_, fwd) = run(&mut d, t(1), PUB, &init);
    // A router on the private side quotes the forwarded packet (client → real server).
    let quoted = &fwd[14..14 + 28];
    let mut icmp = Vec::new();
    PacketBuilder::ethernet2(rs_mac(9), DIR_PRIV_MAC)
        .ipv4([10, 2, 0, 9], [10, 1, 0, 10], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut icmp, quoted)
        .unwrap();
    let (v, out) = run(&mut d, t(1), PRIV, &icmp);
    assert_eq!(v, Verdict::Transmit(PUB));
    let s = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!("not ICMP")
    };
    assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));
    // The quoted packet now reads client:40000 → VIP:2905, as the client sent it.
    let q = etherparse::Ipv4HeaderSlice::from_slice(i.payload()).unwrap();
    assert_eq!(q.source_addr(), Ipv4Addr::new(10, 1, 0, 10));
    assert_eq!(q.destination_addr(), Ipv4Addr::new(10, 1, 0, 100));
    assert_eq!(q.protocol().0, 132);
    let ports = &i.payload()[20..24];
    assert_eq!(ports, [0x9c, 0x40, 0x0b, 0x59]);
    assert_eq!(d.counters().icmp_forwarded, 1);
}

#[test]
fn checksum_partial_sctp_gets_its_crc_computed() {
    let mut d = director(vec![sctp_svc(ForwardMethod::Masq, &["10.2.0.11"], VPORT)]);
    // A CRC-offloaded INIT from a local stack: the CRC field was never filled in.
    let mut p = sctp_packet(CPORT, VPORT, 0, &[(chunk::INIT, 0, INIT_V)]);
    p[8..12].fill(0);
    let f = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p);
    let partial = CsumStatus::Partial {
        start: (14 + 20) as u16,
        offset: 8,
    };
    let (v, out) = run_csum(&mut d, t(1), PUB, &f, partial);
    assert_eq!(v, Verdict::Transmit(PRIV));
    inspect_sctp(&out); // asserts the CRC32c
}

#[test]
fn checksum_partial_sctp_with_a_port_change_computes_its_crc_once() {
    use crate::wire::sctp::testing::crc_runs;
    let mut d = director(vec![sctp_svc(ForwardMethod::Masq, &["10.2.0.11"], RPORT)]);
    // A CRC-offloaded INIT whose CRC field holds garbage, to a real server on another port:
    // the rewrite must compute the CRC32c itself, once (not finish it and then redo it).
    let mut p = sctp_packet(CPORT, VPORT, 0, &[(chunk::INIT, 0, INIT_V)]);
    p[8..12].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let f = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p);
    let partial = CsumStatus::Partial {
        start: (14 + 20) as u16,
        offset: 8,
    };
    let before = crc_runs();
    let (v, out) = run_csum(&mut d, t(1), PUB, &f, partial);
    assert_eq!(
        crc_runs() - before,
        1,
        "CRC32c computations for one partial frame"
    );
    assert_eq!(v, Verdict::Transmit(PRIV));
    let (seen, _) = inspect_sctp(&out); // asserts the CRC32c
    assert_eq!(seen.dport, RPORT);
    // A complete frame of the same association: one computation too (the port changes).
    let p = sctp_packet(
        CPORT,
        VPORT,
        0x1122_3344,
        &[(chunk::COOKIE_ECHO, 0, COOKIE_V)],
    );
    let f = sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p);
    let before = crc_runs();
    let (v, out) = run(&mut d, t(2), PUB, &f);
    assert_eq!(crc_runs() - before, 1);
    assert_eq!(v, Verdict::Transmit(PRIV));
    inspect_sctp(&out);
}

#[test]
fn associations_are_synced_with_their_sctp_state_and_survive_a_takeover() {
    use crate::director::sync::SyncSettings;
    use crate::sync::{DEFAULT_MAX_LEN, SyncMessage, pack};
    let cfg = || {
        vec![sctp_svc(
            ForwardMethod::Masq,
            &["10.2.0.11", "10.2.0.12"],
            RPORT,
        )]
    };
    let mut master = director(cfg());
    master.set_sync(Some(SyncSettings::default())).unwrap();
    let client = |chunks: &[(u8, u8, &[u8])]| {
        let p = sctp_packet(CPORT, VPORT, 7, chunks);
        sctp_frame(CLIENT_MAC, DIR_PUB_MAC, "10.1.0.10", "10.1.0.100", &p)
    };
    let (_, out) = run(&mut master, t(1), PUB, &client(&[(chunk::INIT, 0, INIT_V)]));
    let rs = inspect_sctp(&out).0.dst;
    let server = |chunks: &[(u8, u8, &[u8])]| {
        let p = sctp_packet(RPORT, CPORT, 7, chunks);
        sctp_frame(rs_mac(1), DIR_PRIV_MAC, &rs.to_string(), "10.1.0.10", &p)
    };
    run(
        &mut master,
        t(1),
        PRIV,
        &server(&[(chunk::INIT_ACK, 0, INIT_ACK_V)]),
    );
    run(
        &mut master,
        t(1),
        PUB,
        &client(&[(chunk::COOKIE_ECHO, 0, COOKIE_V)]),
    );
    run(
        &mut master,
        t(1),
        PRIV,
        &server(&[(chunk::COOKIE_ACK, 0, &[])]),
    );
    // `ip_vs_sync_conn_needed()`: not before ESTABLISHED, then at the threshold (3).
    assert!(master.poll_sync().is_none());
    run(&mut master, t(2), PUB, &client(&[(chunk::DATA, 3, DATA_V)]));
    let rec = master
        .poll_sync()
        .expect("synced at the third client packet");
    assert!(master.poll_sync().is_none());
    assert_eq!(
        (rec.protocol, rec.state),
        (132, SctpState::Established as u16)
    );
    assert_eq!((rec.timeout, rec.daddr, rec.dport), (900, rs, RPORT));
    // Entering a SHUTDOWN state is synced at once.
    run(
        &mut master,
        t(3),
        PUB,
        &client(&[(chunk::SHUTDOWN, 0, TSN_V)]),
    );
    let shut = master.poll_sync().expect("a closing state syncs at once");
    assert_eq!(shut.state, SctpState::ShutdownReceived as u16);

    // The backup takes the ESTABLISHED record through the codec.
    let mut backup = director(cfg());
    let conns = [rec.to_conn()];
    for m in pack(&conns, 0, DEFAULT_MAX_LEN).unwrap() {
        let msg = SyncMessage::parse(&m).unwrap();
        for c in msg.conns() {
            backup.sync_import(t(4), &c.unwrap()).unwrap();
        }
    }
    let (state, secs, _) = the_conn(&backup, t(4));
    assert_eq!((state, secs), ("ESTABLISHED", 900));
    let mut c = counts(&backup);
    c.sort();
    assert_eq!(c, [(0, 0), (1, 0)]);
    // After the takeover the client's next DATA goes where the master sent it.
    let (v, out) = run(&mut backup, t(5), PUB, &client(&[(chunk::DATA, 3, DATA_V)]));
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect_sctp(&out).0;
    assert_eq!((seen.dst, seen.dport), (rs, RPORT));
}
