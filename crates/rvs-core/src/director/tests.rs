//! Round trips through the engine, checked by an independent parser (etherparse): every
//! forwarding method, IPv4 and IPv6, checksums verified on the way out.

use super::*;
use crate::model::{
    FwmarkRule, LocalPool, Persistence, Prefix, Protocol, RealServerConfig, SchedulerKind,
    Switches, VirtualServiceConfig,
};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, Ipv6Addr};

const PUB: PortId = PortId(0);
const PRIV: PortId = PortId(1);
const DIR_PUB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DIR_PRIV_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const HEAD: usize = 128;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rs_mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, i]
}

fn prefix(s: &str, len: u8) -> Prefix {
    Prefix { addr: ip(s), len }
}

fn net() -> NetConfig {
    NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: DIR_PUB_MAC,
                addrs: vec![prefix("10.1.0.2", 16), prefix("2001:db8:1::2", 64)],
                mtu: 1500,
            },
            PortConfig {
                id: PRIV,
                mac: DIR_PRIV_MAC,
                addrs: vec![prefix("10.2.0.1", 24), prefix("2001:db8:2::1", 64)],
                mtu: 1500,
            },
        ],
        routes: vec![],
        owned: vec![
            OwnedAddr {
                addr: ip("10.1.0.100"),
                port: PUB,
                mac: None,
            },
            OwnedAddr {
                addr: ip("10.2.0.254"),
                port: PRIV,
                mac: None,
            },
            OwnedAddr {
                addr: ip("2001:db8:1::100"),
                port: PUB,
                mac: None,
            },
        ],
    }
}

fn tcp_svc(vip: &str, port: u16, method: ForwardMethod, rs: &[&str]) -> VirtualServiceConfig {
    let mut s = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(vip),
        port,
    });
    s.scheduler = SchedulerKind::Rr;
    for a in rs {
        let mut r = RealServerConfig::new(ip(a), port);
        r.method = method;
        s.real_servers.push(r);
    }
    s
}

fn director(services: Vec<VirtualServiceConfig>) -> Director {
    director_settings(services, DirectorSettings::default())
}

fn director_with(cfg: Config) -> Director {
    director_cfg_settings(cfg, DirectorSettings::default())
}

fn director_settings(services: Vec<VirtualServiceConfig>, settings: DirectorSettings) -> Director {
    director_cfg_settings(
        Config {
            services,
            local_pool: LocalPool {
                addrs: vec![ip("10.2.0.250"), ip("2001:db8:2::250")],
                port_range: (20000, 20999),
            },
            ..Config::default()
        },
        settings,
    )
}

fn director_cfg_settings(cfg: Config, settings: DirectorSettings) -> Director {
    let mut d = Director::new(net(), &cfg, settings).expect("valid config");
    let t = Instant::ZERO;
    d.learn_neighbor(ip("10.1.0.10"), CLIENT_MAC, t);
    d.learn_neighbor(ip("2001:db8:1::10"), CLIENT_MAC, t);
    for i in 1..=3u8 {
        d.learn_neighbor(ip(&format!("10.2.0.1{i}")), rs_mac(i), t);
        d.learn_neighbor(ip(&format!("2001:db8:2::1{i}")), rs_mac(i), t);
    }
    d
}

/// TCP segment flags for the builder.
#[derive(Clone, Copy)]
enum Seg {
    Syn,
    SynAck,
    Ack,
}

fn tcp_frame(src: &str, sport: u16, dst: &str, dport: u16, seg: Seg, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC);
    let b = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut t = b.tcp(sport, dport, 1000, 64240);
    t = match seg {
        Seg::Syn => t.syn(),
        Seg::SynAck => t.syn().ack(1),
        Seg::Ack => t.ack(1),
    };
    let mut v = Vec::new();
    t.write(&mut v, payload).unwrap();
    v
}

fn udp_frame(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC);
    let b = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut v = Vec::new();
    b.udp(sport, dport).write(&mut v, payload).unwrap();
    v
}

/// Run one frame through the director; returns the verdict and the frame as sent.
fn run(d: &mut Director, now: Instant, port: PortId, bytes: &[u8]) -> (Verdict, Vec<u8>) {
    run_csum(d, now, port, bytes, CsumStatus::Complete)
}

fn run_csum(
    d: &mut Director,
    now: Instant,
    port: PortId,
    bytes: &[u8],
    csum: CsumStatus,
) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; HEAD + bytes.len() + 64];
    buf[HEAD..HEAD + bytes.len()].copy_from_slice(bytes);
    let mut f = Frame::new(&mut buf, HEAD, bytes.len()).unwrap();
    f.set_csum(csum);
    let v = d.handle(now, port, &mut f);
    (v, f.data().to_vec())
}

/// What etherparse sees in a frame, with every checksum verified.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

fn inspect(frame: &[u8]) -> Seen {
    let s = SlicedPacket::from_ethernet(frame).expect("etherparse parses the output");
    let eth = match s.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e,
        other => panic!("not ethernet: {other:?}"),
    };
    let (src, dst, ph) = match s.net.as_ref().expect("has IP") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                IpAddr::V4(h.source.into()),
                IpAddr::V4(h.destination.into()),
                Some(h),
            )
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header().to_header();
            (
                IpAddr::V6(h.source.into()),
                IpAddr::V6(h.destination.into()),
                None,
            )
        }
        other => panic!("unexpected {other:?}"),
    };
    let (sport, dport) = match s.transport.as_ref().expect("has L4") {
        TransportSlice::Tcp(t) => {
            let h = t.to_header();
            let want = match (&ph, s.net.as_ref().unwrap()) {
                (Some(v4), _) => h.calc_checksum_ipv4(v4, t.payload()).unwrap(),
                (None, NetSlice::Ipv6(v6)) => h
                    .calc_checksum_ipv6(&v6.header().to_header(), t.payload())
                    .unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(h.checksum, want, "TCP checksum");
            (h.source_port, h.destination_port)
        }
        TransportSlice::Udp(u) => {
            let h = u.to_header();
            let want = match (&ph, s.net.as_ref().unwrap()) {
                (Some(v4), _) => h.calc_checksum_ipv4(v4, u.payload()).unwrap(),
                (None, NetSlice::Ipv6(v6)) => h
                    .calc_checksum_ipv6(&v6.header().to_header(), u.payload())
                    .unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(h.checksum, want, "UDP checksum");
            (h.source_port, h.destination_port)
        }
        TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_) => (0, 0),
        #[allow(unreachable_patterns)]
        other => panic!("unexpected {other:?}"),
    };
    Seen {
        dst_mac: eth.destination(),
        src_mac: eth.source(),
        src,
        dst,
        sport,
        dport,
    }
}

fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}

#[test]
fn nat_round_trip_v4_rewrites_both_ways_with_valid_checksums() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    let (v, out) = run(&mut d, t(1), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect(&out);
    assert_eq!(
        seen,
        Seen {
            dst_mac: rs_mac(1),
            src_mac: DIR_PRIV_MAC,
            src: ip("10.1.0.10"),
            dst: ip("10.2.0.11"),
            sport: 40000,
            dport: 80,
        }
    );
    // The real server answers the client through its gateway, the director.
    let synack = tcp_frame("10.2.0.11", 80, "10.1.0.10", 40000, Seg::SynAck, b"");
    let (v, out) = run(&mut d, t(1), PRIV, &synack);
    assert_eq!(v, Verdict::Transmit(PUB));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip("10.1.0.100"), 80));
    assert_eq!((seen.dst, seen.dport), (ip("10.1.0.10"), 40000));
    assert_eq!((seen.dst_mac, seen.src_mac), (CLIENT_MAC, DIR_PUB_MAC));
    // Data from the client establishes the connection: the server counts it active.
    let data = tcp_frame(
        "10.1.0.10",
        40000,
        "10.1.0.100",
        80,
        Seg::Ack,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let (v, out) = run(&mut d, t(2), PUB, &data);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(inspect(&out).dst, ip("10.2.0.11"));
    let svc = d.services().iter().next().unwrap().1;
    assert_eq!(
        (svc.dests[0].active_conns, svc.dests[0].inact_conns),
        (1, 0)
    );
    assert_eq!(svc.stats.conns, 1);
    assert_eq!((svc.stats.inpkts, svc.stats.outpkts), (2, 1));
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.state_name(), "ESTABLISHED");
}

#[test]
fn nat_round_trip_v6() {
    let mut d = director(vec![tcp_svc(
        "2001:db8:1::100",
        443,
        ForwardMethod::Masq,
        &["2001:db8:2::12"],
    )]);
    let syn = tcp_frame(
        "2001:db8:1::10",
        5555,
        "2001:db8:1::100",
        443,
        Seg::Syn,
        b"",
    );
    let (v, out) = run(&mut d, t(1), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect(&out);
    assert_eq!(
        (seen.dst, seen.dport, seen.dst_mac),
        (ip("2001:db8:2::12"), 443, rs_mac(2))
    );
    let reply = tcp_frame(
        "2001:db8:2::12",
        443,
        "2001:db8:1::10",
        5555,
        Seg::SynAck,
        b"hi",
    );
    let (v, out) = run(&mut d, t(1), PRIV, &reply);
    assert_eq!(v, Verdict::Transmit(PUB));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip("2001:db8:1::100"), 443));
}

#[test]
fn nat_port_remap_rewrites_ports() {
    let mut svc = tcp_svc("10.1.0.100", 80, ForwardMethod::Masq, &[]);
    let mut r = RealServerConfig::new(ip("10.2.0.13"), 8080);
    r.method = ForwardMethod::Masq;
    svc.real_servers.push(r);
    let mut d = director(vec![svc]);
    let syn = tcp_frame("10.1.0.10", 40001, "10.1.0.100", 80, Seg::Syn, b"");
    let (_, out) = run(&mut d, t(1), PUB, &syn);
    assert_eq!(inspect(&out).dport, 8080);
    let reply = tcp_frame("10.2.0.13", 8080, "10.1.0.10", 40001, Seg::SynAck, b"");
    let (_, out) = run(&mut d, t(1), PRIV, &reply);
    assert_eq!(inspect(&out).sport, 80);
}

#[test]
fn direct_routing_rewrites_only_the_mac() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::DirectRoute,
        &["10.2.0.11"],
    )]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"x");
    let (v, out) = run(&mut d, t(1), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(out[12..], syn[12..], "IP packet untouched");
    assert_eq!(
        (&out[..6], &out[6..12]),
        (&rs_mac(1)[..], &DIR_PRIV_MAC[..])
    );
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert!(c.flags.has(ConnFlags::NO_OUTPUT));
    // DR sees only the client's half: the INPUT-ONLY table moves it to ESTABLISHED on ACK.
    let ack = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, b"");
    run(&mut d, t(1), PUB, &ack);
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.state_name(), "ESTABLISHED");
}

#[test]
fn tunnelling_encapsulates_ipip_and_gre_around_the_intact_packet() {
    for (kind, proto) in [(TunnelKind::Ipip, 4u8), (TunnelKind::Gre, 47)] {
        let method = ForwardMethod::Tunnel {
            kind,
            csum: TunnelCsum::NoCsum,
        };
        let mut d = director(vec![tcp_svc("10.1.0.100", 80, method, &["10.2.0.12"])]);
        let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"abc");
        let (v, out) = run(&mut d, t(1), PUB, &syn);
        assert_eq!(v, Verdict::Transmit(PRIV));
        assert_eq!(&out[..6], &rs_mac(2));
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&out[14..]).unwrap();
        assert_eq!(outer.protocol().0, proto);
        assert_eq!(outer.source_addr(), Ipv4Addr::new(10, 2, 0, 1));
        assert_eq!(outer.destination_addr(), Ipv4Addr::new(10, 2, 0, 12));
        let h = outer.to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let inner_at = 14 + 20 + if proto == 47 { 4 } else { 0 };
        assert_eq!(out[inner_at..], syn[14..], "inner packet intact");
    }
}

#[test]
fn fullnat_rewrites_the_source_to_the_local_pool_and_back() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::FullNat,
        &["10.2.0.11"],
    )]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    let (v, out) = run(&mut d, t(1), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect(&out);
    assert_eq!(seen.src, ip("10.2.0.250"));
    assert!((20000..=20999).contains(&seen.sport));
    assert_eq!((seen.dst, seen.dport), (ip("10.2.0.11"), 80));
    let reply = tcp_frame("10.2.0.11", 80, "10.2.0.250", seen.sport, Seg::SynAck, b"");
    let (v, out) = run(&mut d, t(1), PRIV, &reply);
    assert_eq!(v, Verdict::Transmit(PUB));
    let back = inspect(&out);
    assert_eq!((back.src, back.sport), (ip("10.1.0.100"), 80));
    assert_eq!((back.dst, back.dport), (ip("10.1.0.10"), 40000));
}

#[test]
fn partial_checksums_are_completed_before_nat() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    // What a process in another namespace sends over veth: the checksum field holds only
    // the pseudo-header sum.
    let mut syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"payload");
    let l4 = 14 + 20;
    let seed = wire::l4::partial_seed_v4(
        Ipv4Addr::new(10, 1, 0, 10),
        Ipv4Addr::new(10, 1, 0, 100),
        6,
        (syn.len() - l4) as u16,
    );
    syn[l4 + 16..l4 + 18].copy_from_slice(&seed.to_be_bytes());
    let partial = CsumStatus::Partial {
        start: l4 as u16,
        offset: 16,
    };
    let (v, out) = run_csum(&mut d, t(1), PUB, &syn, partial);
    assert_eq!(v, Verdict::Transmit(PRIV));
    inspect(&out); // asserts the TCP checksum is now complete and right
}

#[test]
fn arp_for_owned_addresses_is_answered_and_others_pass() {
    let mut d = director(vec![]);
    let req = wire::ArpRepr::request(
        wire::EthernetAddress(CLIENT_MAC),
        Ipv4Addr::new(10, 1, 0, 10),
        Ipv4Addr::new(10, 1, 0, 100),
    );
    let mut buf = [0u8; 64];
    let n = req.emit_frame(&mut buf).unwrap();
    let (v, out) = run(&mut d, t(1), PUB, &buf[..n]);
    assert_eq!(v, Verdict::Transmit(PUB));
    let arp = etherparse::ArpPacketSlice::from_slice(&out[14..]).unwrap();
    assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
    assert_eq!(arp.sender_hw_addr(), DIR_PUB_MAC);
    assert_eq!(arp.sender_protocol_addr(), [10, 1, 0, 100]);
    assert_eq!(&out[..6], &CLIENT_MAC);
    // The floating IP belongs to the private side only; an unknown address is the host's.
    let req = wire::ArpRepr::request(
        wire::EthernetAddress(CLIENT_MAC),
        Ipv4Addr::new(10, 1, 0, 10),
        Ipv4Addr::new(10, 2, 0, 254),
    );
    let n = req.emit_frame(&mut buf).unwrap();
    assert_eq!(run(&mut d, t(1), PUB, &buf[..n]).0, Verdict::Pass);
}

/// The director with the VIP (10.1.0.100) and the IPv6 VIP answered with VRRP's virtual
/// MAC of VRID 51.
fn vmac_director() -> (Director, [u8; 6], [u8; 6]) {
    let v4 = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];
    let v6 = [0x00, 0x00, 0x5e, 0x00, 0x02, 51];
    let mut d = director(vec![]);
    let mut n = net();
    for o in &mut n.owned {
        if o.addr == ip("10.1.0.100") {
            o.mac = Some(v4);
        } else if o.addr == ip("2001:db8:1::100") {
            o.mac = Some(v6);
        }
    }
    d.set_net(n);
    (d, v4, v6)
}

#[test]
fn a_virtual_mac_answers_and_announces_its_address() {
    let (mut d, vmac4, vmac6) = vmac_director();
    let req = wire::ArpRepr::request(
        wire::EthernetAddress(CLIENT_MAC),
        Ipv4Addr::new(10, 1, 0, 10),
        Ipv4Addr::new(10, 1, 0, 100),
    );
    let mut buf = [0u8; 64];
    let n = req.emit_frame(&mut buf).unwrap();
    let (v, out) = run(&mut d, t(1), PUB, &buf[..n]);
    assert_eq!(v, Verdict::Transmit(PUB));
    let arp = etherparse::ArpPacketSlice::from_slice(&out[14..]).unwrap();
    assert_eq!(arp.sender_hw_addr(), vmac4);
    assert_eq!(&out[6..12], &vmac4, "Ethernet source");
    // Announcements: the VIP from its virtual MAC, the floating IP from the port's.
    assert_eq!(d.announce(t(2)), 3);
    let mut frame = [0u8; 128];
    let mut seen = Vec::new();
    while let Some((port, n)) = d.poll_transmit(&mut frame) {
        seen.push((port, frame[6..12].to_vec(), n));
    }
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].0, seen[0].1.as_slice()), (PUB, &vmac4[..]));
    assert_eq!((seen[1].0, seen[1].1.as_slice()), (PRIV, &DIR_PRIV_MAC[..]));
    assert_eq!((seen[2].0, seen[2].1.as_slice()), (PUB, &vmac6[..]));
}

#[test]
fn another_host_claiming_an_owned_address_is_a_conflict() {
    let mut d = director(vec![]);
    let other = [2, 0, 0, 0, 0, 0x99];
    // A gratuitous ARP for the VIP from another MAC (a second master).
    let garp =
        wire::ArpRepr::gratuitous(wire::EthernetAddress(other), Ipv4Addr::new(10, 1, 0, 100));
    let mut buf = [0u8; 64];
    let n = garp.emit_frame(&mut buf).unwrap();
    assert_eq!(d.take_conflict(), None);
    run(&mut d, t(1), PUB, &buf[..n]);
    assert_eq!(d.take_conflict(), Some(ip("10.1.0.100")));
    assert_eq!(d.take_conflict(), None, "taken once");
    assert_eq!(d.counters().address_conflicts, 1);
    // Its MAC is not learned for our own address; ordinary neighbours are.
    let mut out = [0u8; 128];
    let req = wire::ArpRepr::request(
        wire::EthernetAddress(CLIENT_MAC),
        Ipv4Addr::new(10, 1, 0, 10),
        Ipv4Addr::new(10, 1, 0, 200),
    );
    let n = req.emit_frame(&mut buf).unwrap();
    run(&mut d, t(1), PUB, &buf[..n]);
    assert_eq!(d.take_conflict(), None, "a client's request is no conflict");
    assert!(d.poll_transmit(&mut out).is_none());
    // Our own MAC (a looped-back announcement) is no conflict either.
    let own = wire::ArpRepr::gratuitous(
        wire::EthernetAddress(DIR_PUB_MAC),
        Ipv4Addr::new(10, 1, 0, 100),
    );
    let n = own.emit_frame(&mut buf).unwrap();
    run(&mut d, t(1), PUB, &buf[..n]);
    assert_eq!(d.take_conflict(), None);
}

#[test]
fn neighbour_solicitation_for_an_owned_v6_address_is_answered() {
    let mut d = director(vec![]);
    let mut buf = [0u8; 96];
    let n = nd::solicit(
        &mut buf,
        CLIENT_MAC,
        "2001:db8:1::10".parse().unwrap(),
        "2001:db8:1::100".parse().unwrap(),
        None,
    );
    let (v, out) = run(&mut d, t(1), PUB, &buf[..n]);
    assert_eq!(v, Verdict::Transmit(PUB));
    let s = SlicedPacket::from_ethernet(&out).unwrap();
    match s.transport {
        Some(TransportSlice::Icmpv6(i)) => {
            assert_eq!(i.type_u8(), 136);
            let NetSlice::Ipv6(v6) = s.net.unwrap() else {
                panic!()
            };
            let h = v6.header().to_header();
            assert_eq!(
                i.checksum(),
                i.icmp_type()
                    .calc_checksum(h.source, h.destination, i.payload())
                    .unwrap()
            );
            assert_eq!(
                Ipv6Addr::from(h.source),
                "2001:db8:1::100".parse::<Ipv6Addr>().unwrap()
            );
        }
        other => panic!("not ICMPv6: {other:?}"),
    }
}

#[test]
fn ping_to_a_vip_is_answered() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC)
        .ipv4([10, 1, 0, 10], [10, 1, 0, 100], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut v, b"ping")
        .unwrap();
    let (verdict, out) = run(&mut d, t(1), PUB, &v);
    assert_eq!(verdict, Verdict::Transmit(PUB));
    let s = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(TransportSlice::Icmpv4(i)) = s.transport else {
        panic!("not ICMP")
    };
    assert_eq!(i.type_u8(), 0);
    assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));
    assert_eq!(inspect(&out).src, ip("10.1.0.100"));
}

#[test]
fn unresolved_real_server_parks_the_frame_and_asks() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.77"],
    )]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(1), PUB, &syn).0, Verdict::Consumed);
    let mut out = [0u8; 2048];
    let (port, n) = d.poll_transmit(&mut out).expect("an ARP request");
    assert_eq!(port, PRIV);
    let arp = etherparse::ArpPacketSlice::from_slice(&out[14..n]).unwrap();
    assert_eq!(arp.operation(), etherparse::ArpOperation::REQUEST);
    assert_eq!(arp.target_protocol_addr(), [10, 2, 0, 77]);
    assert_eq!(arp.sender_protocol_addr(), [10, 2, 0, 1]);
    assert!(d.poll_transmit(&mut out).is_none(), "the SYN waits");
    // The answer releases the SYN with the learned MAC.
    let reply = wire::ArpRepr {
        operation: wire::ArpOperation::REPLY,
        sender_hw: wire::EthernetAddress(rs_mac(77)),
        sender_ip: Ipv4Addr::new(10, 2, 0, 77),
        target_hw: wire::EthernetAddress(DIR_PRIV_MAC),
        target_ip: Ipv4Addr::new(10, 2, 0, 1),
    };
    let mut buf = [0u8; 64];
    let m = reply.emit_frame(&mut buf).unwrap();
    run(&mut d, t(1), PRIV, &buf[..m]);
    let (port, n) = d.poll_transmit(&mut out).expect("the parked SYN");
    assert_eq!(port, PRIV);
    let seen = inspect(&out[..n]);
    assert_eq!((seen.dst, seen.dst_mac), (ip("10.2.0.77"), rs_mac(77)));
}

#[test]
fn only_a_syn_opens_a_tcp_connection() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let ack = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, b"");
    assert_eq!(
        run(&mut d, t(1), PUB, &ack).0,
        Verdict::Drop(DropReason::NotSyn)
    );
    assert_eq!(d.drops().get(DropReason::NotSyn), 1);
    assert!(d.table_v4().is_empty());
    // Not a VIP at all: the host's traffic.
    let other = tcp_frame("10.1.0.10", 40000, "10.1.0.2", 22, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(1), PUB, &other).0, Verdict::Pass);
}

#[test]
fn persistence_keeps_a_client_netmask_on_one_server() {
    let mut svc = tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12", "10.2.0.13"],
    );
    svc.persistence = Some(Persistence {
        timeout: 360,
        prefix: 24,
    });
    let mut d = director(vec![svc]);
    let mut servers = Vec::new();
    for (i, client) in ["10.1.0.10", "10.1.0.11", "10.1.0.200", "10.1.0.10"]
        .iter()
        .enumerate()
    {
        d.learn_neighbor(ip(client), CLIENT_MAC, t(0));
        let syn = tcp_frame(client, 41000 + i as u16, "10.1.0.100", 80, Seg::Syn, b"");
        let (_, out) = run(&mut d, t(1), PUB, &syn);
        servers.push(inspect(&out).dst);
    }
    assert!(servers.iter().all(|s| *s == servers[0]), "{servers:?}");
    // A client of another /24 is scheduled afresh (rr moves on).
    d.learn_neighbor(ip("10.1.1.10"), CLIENT_MAC, t(0));
    let syn = tcp_frame("10.1.1.10", 42000, "10.1.0.100", 80, Seg::Syn, b"");
    let (_, out) = run(&mut d, t(1), PUB, &syn);
    assert_ne!(inspect(&out).dst, servers[0]);
    assert_eq!(d.table_v4().templates(), 2);
    let persist: u32 = d
        .services()
        .iter()
        .flat_map(|(_, s)| s.dests.iter())
        .map(|d| d.persist_conns)
        .sum();
    assert_eq!(persist, 2);
}

#[test]
fn fwmark_service_keeps_ports_80_and_443_on_one_server() {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Fwmark {
        mark: 80,
        family: Family::V4,
    });
    svc.scheduler = SchedulerKind::Rr;
    svc.persistence = Some(Persistence {
        timeout: 60,
        prefix: 32,
    });
    for a in ["10.2.0.11", "10.2.0.12"] {
        let mut r = RealServerConfig::new(ip(a), 0);
        r.method = ForwardMethod::Masq;
        svc.real_servers.push(r);
    }
    let rule = |port| FwmarkRule {
        protocol: Some(Protocol::Tcp),
        dst: prefix("10.1.0.100", 32),
        src: None,
        ports: (port, port),
        mark: 80,
    };
    let mut d = director_with(Config {
        services: vec![svc],
        fwmark_rules: vec![rule(80), rule(443)],
        ..Config::default()
    });
    let a = run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b""),
    )
    .1;
    let b = run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame("10.1.0.10", 40001, "10.1.0.100", 443, Seg::Syn, b""),
    )
    .1;
    let (a, b) = (inspect(&a), inspect(&b));
    assert_eq!(a.dst, b.dst);
    assert_eq!(
        (a.dport, b.dport),
        (80, 443),
        "port-0 real servers keep the packet's port"
    );
}

#[test]
fn udp_service_and_one_packet_scheduling() {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("10.1.0.100"),
        port: 53,
    });
    svc.scheduler = SchedulerKind::Rr;
    svc.one_packet = true;
    for a in ["10.2.0.11", "10.2.0.12"] {
        let mut r = RealServerConfig::new(ip(a), 53);
        r.method = ForwardMethod::Masq;
        svc.real_servers.push(r);
    }
    let mut d = director(vec![svc]);
    let mut dsts = Vec::new();
    for _ in 0..4 {
        let q = udp_frame("10.1.0.10", 5353, "10.1.0.100", 53, b"query");
        let (v, out) = run(&mut d, t(1), PUB, &q);
        assert_eq!(v, Verdict::Transmit(PRIV));
        dsts.push(inspect(&out).dst);
    }
    // One-packet scheduling: every datagram scheduled anew, nothing kept.
    assert_eq!(dsts[0], dsts[2]);
    assert_ne!(dsts[0], dsts[1]);
    assert!(d.table_v4().is_empty());
    assert_eq!(d.services().iter().next().unwrap().1.stats.conns, 4);
}

#[test]
fn connections_expire_and_unbind_their_real_server() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b""),
    );
    let dest = |d: &Director| {
        let s = d.services().iter().next().unwrap().1;
        (s.dests[0].active_conns, s.dests[0].inact_conns)
    };
    // SYN_RECV counts as active in current kernels (tcp_state_active_table).
    assert_eq!(dest(&d), (1, 0));
    // SYN_RECV times out after 60 s.
    d.expire(t(60));
    assert_eq!(d.table_v4().len(), 1);
    d.expire(t(62));
    assert!(d.table_v4().is_empty());
    assert_eq!(dest(&d), (0, 0));
    assert_eq!(d.counters().conns_removed, 1);
}

#[test]
fn apply_keeps_connections_and_removed_servers_follow_expire_nodest_conn() {
    let svc = tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
    );
    let mut d = director(vec![svc.clone()]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    let first = inspect(&run(&mut d, t(1), PUB, &syn).1).dst;
    // Reload with the same config plus a third server: the connection carries on.
    let mut more = svc.clone();
    let mut r = RealServerConfig::new(ip("10.2.0.13"), 80);
    r.method = ForwardMethod::Masq;
    more.real_servers.push(r);
    let report = d
        .apply(&Config {
            services: vec![more.clone()],
            local_pool: d.config().local_pool.clone(),
            ..Config::default()
        })
        .unwrap();
    assert_eq!(report.dests_added, 1);
    let ack = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, b"data");
    let (v, out) = run(&mut d, t(2), PUB, &ack);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(inspect(&out).dst, first);
    // Remove that server with expire_nodest_conn: the next packet expires the entry.
    let mut fewer = more.clone();
    fewer.real_servers.retain(|r| r.addr != first);
    let cfg = Config {
        services: vec![fewer],
        switches: Switches {
            expire_nodest_conn: true,
            ..Switches::default()
        },
        ..Config::default()
    };
    d.apply(&cfg).unwrap();
    assert_eq!(
        run(&mut d, t(3), PUB, &ack).0,
        Verdict::Drop(DropReason::NoDest)
    );
    assert!(d.table_v4().is_empty());
    // An invalid config is refused and the running one stays.
    let mut bad = cfg.clone();
    bad.services[0].real_servers[0].weight = 70_000;
    assert!(d.apply(&bad).is_err());
    assert_eq!(d.config(), &cfg);
}

#[test]
fn frag_needed_from_the_real_server_side_reaches_the_client_rewritten() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    let (_, fwd) = run(&mut d, t(1), PUB, &syn);
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
    // The quoted packet now reads client → VIP:80, as the client sent it.
    let q = etherparse::Ipv4HeaderSlice::from_slice(i.payload()).unwrap();
    assert_eq!(q.source_addr(), Ipv4Addr::new(10, 1, 0, 10));
    assert_eq!(q.destination_addr(), Ipv4Addr::new(10, 1, 0, 100));
    let h = q.to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let ports = &i.payload()[20..24];
    assert_eq!(ports, [0x9c, 0x40, 0, 80]);
    assert_eq!(d.counters().icmp_forwarded, 1);
}

#[test]
fn later_fragments_follow_the_first() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b""),
    );
    // A later fragment with no ports: offset 8 (in 8-byte units 1), ident 77.
    let mut frag = Vec::new();
    let mut ip4 = etherparse::Ipv4Header::new(
        16,
        64,
        etherparse::IpNumber::TCP,
        [10, 1, 0, 10],
        [10, 1, 0, 100],
    )
    .unwrap();
    ip4.identification = 77;
    ip4.fragment_offset = etherparse::IpFragOffset::try_new(1).unwrap();
    ip4.header_checksum = ip4.calc_header_checksum();
    etherparse::Ethernet2Header {
        source: CLIENT_MAC,
        destination: DIR_PUB_MAC,
        ether_type: etherparse::EtherType::IPV4,
    }
    .write(&mut frag)
    .unwrap();
    ip4.write(&mut frag).unwrap();
    frag.extend_from_slice(&[0xab; 16]);
    assert_eq!(
        run(&mut d, t(1), PUB, &frag).0,
        Verdict::Drop(DropReason::FragmentUnknown),
        "no first fragment seen for ident 77"
    );
    // First fragment (MF) with the ports, ident 77, on the established connection.
    let mut first = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, &[0xcd; 8]);
    first[14 + 4..14 + 6].copy_from_slice(&77u16.to_be_bytes());
    first[14 + 6] = 0x20; // MF
    first[14 + 10..14 + 12].fill(0);
    let c = wire::checksum::checksum(&first[14..34]);
    first[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(run(&mut d, t(1), PUB, &first).0, Verdict::Transmit(PRIV));
    let (v, out) = run(&mut d, t(1), PUB, &frag);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let h = etherparse::Ipv4HeaderSlice::from_slice(&out[14..]).unwrap();
    assert_eq!(h.destination_addr(), Ipv4Addr::new(10, 2, 0, 11));
    let h = h.to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    let mut d = director(vec![]);
    let mut f = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    f[14] = 0x4f; // IHL 15: longer than the packet
    assert_eq!(
        run(&mut d, t(1), PUB, &f).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(
        run(&mut d, t(1), PUB, &f[..10]).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(d.drops().get(DropReason::Malformed), 2);
}

#[test]
fn rate_estimators_tick_every_two_seconds() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    d.expire(t(0));
    // 100 new connections in each 2-second period.
    for period in 0..4u64 {
        for i in 0..100u16 {
            let port = 10000 + (period as u16) * 100 + i;
            let syn = tcp_frame("10.1.0.10", port, "10.1.0.100", 80, Seg::Syn, b"");
            assert_eq!(
                run(&mut d, t(period * 2 + 1), PUB, &syn).0,
                Verdict::Transmit(PRIV)
            );
        }
        d.expire(t(period * 2 + 2));
    }
    let svc = d.services().iter().next().unwrap().1;
    // 50 conn/s fed four times into avg += (rate - avg) >> 2 (scaled by 2^10): 12.5, 21.9,
    // 28.9, 34.2 → (avg + 0x1ff) >> 10 = 34 as ipvsadm --rate shows it.
    assert_eq!(svc.est.rates().cps, 34);
    let dest = svc.dest_ids[0];
    assert_eq!(d.services().dest_estimator(dest).unwrap().rates().cps, 34);
}

#[test]
fn templates_are_counted_apart_from_connections() {
    let mut svc = tcp_svc("10.1.0.100", 80, ForwardMethod::Masq, &["10.2.0.11"]);
    svc.persistence = Some(Persistence {
        timeout: 30,
        prefix: 32,
    });
    let mut d = director(vec![svc]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(1), PUB, &syn).0, Verdict::Transmit(PRIV));
    // SYN_RECV lasts 60 s; the template is kept while it controls the connection, then
    // goes 60 s after (ip_vs_conn_expire's re-arm).
    for s in 2..=200 {
        d.expire(t(s));
    }
    assert!(d.table_v4().is_empty());
    let c = d.counters();
    assert_eq!((c.conns_created, c.conns_removed), (1, 1));
    assert_eq!((c.templates_created, c.templates_removed), (1, 1));
    let dest = &d.services().iter().next().unwrap().1.dests[0];
    assert_eq!(
        (dest.active_conns, dest.inact_conns, dest.persist_conns),
        (0, 0, 0)
    );
}

#[test]
fn a_parked_partial_checksum_frame_is_released_complete() {
    let cfg = Config {
        services: vec![tcp_svc(
            "10.1.0.100",
            80,
            ForwardMethod::Masq,
            &["10.2.0.77"],
        )],
        ..Config::default()
    };
    let settings = DirectorSettings {
        offload_partial_csum: true,
        ..DirectorSettings::default()
    };
    let mut d = Director::new(net(), &cfg, settings).unwrap();
    d.learn_neighbor(ip("10.1.0.10"), CLIENT_MAC, t(0));
    let mut syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"data");
    let l4 = 14 + 20;
    let seed = wire::l4::partial_seed_v4(
        Ipv4Addr::new(10, 1, 0, 10),
        Ipv4Addr::new(10, 1, 0, 100),
        6,
        (syn.len() - l4) as u16,
    );
    syn[l4 + 16..l4 + 18].copy_from_slice(&seed.to_be_bytes());
    let partial = CsumStatus::Partial {
        start: l4 as u16,
        offset: 16,
    };
    assert_eq!(
        run_csum(&mut d, t(1), PUB, &syn, partial).0,
        Verdict::Consumed
    );
    let mut out = [0u8; 2048];
    d.poll_transmit(&mut out).expect("the ARP request");
    d.learn_neighbor(ip("10.2.0.77"), rs_mac(77), t(1));
    let (_, n) = d.poll_transmit(&mut out).expect("the released SYN");
    let seen = inspect(&out[..n]); // asserts the TCP checksum is complete and right
    assert_eq!(seen.dst, ip("10.2.0.77"));
}

/// The fast paths (`director/fast.rs`, `Core::fast_nat_in`, `wire::parse::parse_simple_v4`,
/// `wire::nat::rewrite_v4_l4`) against the general path: two directors, one with the fast
/// paths off, fed the same random traffic — clients' TCP segments with any flags and UDP
/// datagrams (with and without checksum) to NAT, FullNAT and DR services, real servers'
/// replies, partial checksums, corrupted and truncated frames, time passing and expiry —
/// must send byte-identical frames with the same verdicts and keep the same table, counters
/// and real-server counts.
mod differential {
    use super::*;
    use proptest::prelude::*;

    fn services() -> Vec<VirtualServiceConfig> {
        let rs = ["10.2.0.11", "10.2.0.12", "10.2.0.13"];
        let mut udp = tcp_svc("10.1.0.100", 53, ForwardMethod::Masq, &rs);
        udp.key = ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip("10.1.0.100"),
            port: 53,
        };
        vec![
            tcp_svc("10.1.0.100", 80, ForwardMethod::Masq, &rs),
            tcp_svc("10.1.0.100", 443, ForwardMethod::FullNat, &rs),
            tcp_svc("10.1.0.100", 22, ForwardMethod::DirectRoute, &rs),
            udp,
        ]
    }

    #[derive(Debug, Clone)]
    struct Step {
        /// 0..3: client → VIP; 3: real server → client; 4: real server → local (FullNAT).
        who: u8,
        client: u8,
        sport: u16,
        vport: u16,
        udp: bool,
        udp_csum: bool,
        flags: u8,
        payload: u8,
        partial: bool,
        /// Byte to corrupt (index, xor) or a length to cut to.
        corrupt: Option<(u8, u8)>,
        cut: Option<u8>,
        advance_ms: u32,
        expire: bool,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            (
                0u8..5,
                0u8..3,
                0u16..4,
                prop::sample::select(vec![80u16, 443, 22, 53, 81]),
            ),
            (
                any::<bool>(),
                prop::bool::weighted(0.8),
                // ACK-only data (0x10, 0x18 PSH, 0x30 URG, 0x50 ECE) takes the fast path's
                // ESTABLISHED shortcut; the rest (no ACK, FIN, RST, SYN) the state table.
                prop::sample::select(vec![
                    0x02u8, 0x10, 0x18, 0x11, 0x04, 0x12, 0x00, 0xff, 0x30, 0x08, 0x50, 0x19,
                ]),
                0u8..40,
                prop::bool::weighted(0.1),
            ),
            (
                prop::option::weighted(0.1, (0u8..60, 1u8..=255)),
                prop::option::weighted(0.05, 0u8..70),
                0u32..3000,
                prop::bool::weighted(0.1),
            ),
        )
            .prop_map(
                |(
                    (who, client, sport, vport),
                    (udp, udp_csum, flags, payload, partial),
                    (corrupt, cut, advance_ms, expire),
                )| Step {
                    who,
                    client,
                    sport,
                    vport,
                    udp,
                    udp_csum,
                    flags,
                    payload,
                    partial,
                    corrupt,
                    cut,
                    advance_ms,
                    expire,
                },
            )
    }

    fn frame(s: &Step) -> (PortId, Vec<u8>, CsumStatus) {
        let client = [10, 1, 0, 10 + s.client];
        let cport = 40000 + s.sport;
        let rs = [10, 2, 0, 11 + s.client];
        let (port, smac, dmac, src, sp, dst, dp) = match s.who {
            0..=2 => (
                PUB,
                CLIENT_MAC,
                DIR_PUB_MAC,
                client,
                cport,
                [10, 1, 0, 100],
                s.vport,
            ),
            3 => (PRIV, rs_mac(1), DIR_PRIV_MAC, rs, s.vport, client, cport),
            _ => (
                PRIV,
                rs_mac(1),
                DIR_PRIV_MAC,
                rs,
                s.vport,
                [10, 2, 0, 250],
                20000 + s.sport,
            ),
        };
        let payload = vec![0xa5u8; usize::from(s.payload)];
        let b = PacketBuilder::ethernet2(smac, dmac).ipv4(src, dst, 64);
        let mut v = Vec::new();
        if s.udp {
            b.udp(sp, dp).write(&mut v, &payload).unwrap();
            if !s.udp_csum {
                v[40] = 0;
                v[41] = 0;
            }
        } else {
            let mut t = b.tcp(sp, dp, 1000, 64240);
            t = t.ack(5000);
            t.write(&mut v, &payload).unwrap();
            // Any flags byte; the checksum follows (the flags share a 16-bit word with the
            // data offset).
            let old = u16::from_be_bytes([v[46], v[47]]);
            v[47] = s.flags;
            let new = u16::from_be_bytes([v[46], v[47]]);
            let c = u16::from_be_bytes([v[50], v[51]]);
            let c = wire::checksum::update16(c, old, new);
            v[50..52].copy_from_slice(&c.to_be_bytes());
        }
        if let Some((at, x)) = s.corrupt {
            let at = usize::from(at) % v.len();
            v[at] ^= x;
        }
        if let Some(n) = s.cut {
            v.truncate(usize::from(n).min(v.len()));
        }
        let csum = if s.partial && v.len() >= 54 {
            // A partial checksum: the field holds the pseudo-header sum.
            let l4 = 34u16;
            let off = if s.udp { 6 } else { 16 };
            CsumStatus::Partial {
                start: l4,
                offset: off,
            }
        } else {
            CsumStatus::Complete
        };
        (port, v, csum)
    }

    fn state(d: &Director) -> String {
        let mut out = format!("{:?}\n{:?}\n", d.counters(), d.drops());
        for (id, c) in d.table_v4().iter() {
            out += &format!("{id:?} {c:?} {:?}\n", d.table_v4().sync_meta(id));
        }
        out += &format!("{:?}\n", d.sync_counters());
        for (id, s) in d.services().iter() {
            out += &format!("{id:?} {:?} {:?}\n", s.stats, s.dests);
            for did in &s.dest_ids {
                out += &format!("  {did:?} {:?}\n", d.services().dest_stats(*did));
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn fast_and_general_paths_agree(
            steps in prop::collection::vec(step(), 1..60),
            offload in any::<bool>(),
        ) {
            let settings = DirectorSettings {
                offload_partial_csum: offload,
                ..DirectorSettings::default()
            };
            let mut fast = director_settings(services(), settings.clone());
            let mut general = director_settings(services(), settings);
            general.set_fast_path(false);
            let mut now = Instant::from_secs(1);
            for s in &steps {
                now = now + Duration::from_millis(u64::from(s.advance_ms));
                if s.expire {
                    prop_assert_eq!(fast.expire(now), general.expire(now));
                }
                let (port, bytes, csum) = frame(s);
                let a = run_csum(&mut fast, now, port, &bytes, csum);
                let b = run_csum(&mut general, now, port, &bytes, csum);
                prop_assert_eq!(&a, &b, "step {:?}", s);
                prop_assert_eq!(state(&fast), state(&general));
                let mut x = [0u8; 256];
                let mut y = [0u8; 256];
                prop_assert_eq!(fast.poll_transmit(&mut x), general.poll_transmit(&mut y));
                prop_assert_eq!(x, y);
            }
        }
    }

    /// A few flows, so that connections get through the handshake and the fast path's
    /// ESTABLISHED shortcut meets data, FIN, RST and SYN segments on established entries.
    fn few_flows_step() -> impl Strategy<Value = Step> {
        (step(), 0u8..2, prop::sample::select(vec![80u16, 443, 53])).prop_map(
            |(mut s, client, vport)| {
                s.client = client;
                s.sport = 0;
                s.vport = vport;
                s.udp = vport == 53;
                // Mostly client segments, mostly intact.
                s.who = if s.who == 4 { 0 } else { s.who };
                if s.flags == 0xff {
                    s.flags = 0x10;
                }
                s.corrupt = None;
                s.cut = None;
                s
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn fast_and_general_paths_agree_on_established_flows(
            steps in prop::collection::vec(few_flows_step(), 1..60),
            offload in any::<bool>(),
        ) {
            let settings = DirectorSettings {
                offload_partial_csum: offload,
                ..DirectorSettings::default()
            };
            let mut fast = director_settings(services(), settings.clone());
            let mut general = director_settings(services(), settings);
            general.set_fast_path(false);
            // With connection sync on: the same records from both paths.
            let sync = SyncSettings { threshold: 1, period: 4, ..SyncSettings::default() };
            fast.set_sync(Some(sync)).unwrap();
            general.set_sync(Some(sync)).unwrap();
            let mut now = Instant::from_secs(1);
            for s in &steps {
                now = now + Duration::from_millis(u64::from(s.advance_ms));
                if s.expire {
                    prop_assert_eq!(fast.expire(now), general.expire(now));
                }
                let (port, bytes, csum) = frame(s);
                let a = run_csum(&mut fast, now, port, &bytes, csum);
                let b = run_csum(&mut general, now, port, &bytes, csum);
                prop_assert_eq!(&a, &b, "step {:?}", s);
                prop_assert_eq!(state(&fast), state(&general));
                let x: Vec<_> = std::iter::from_fn(|| fast.poll_sync()).collect();
                let y: Vec<_> = std::iter::from_fn(|| general.poll_sync()).collect();
                prop_assert_eq!(x, y);
            }
        }
    }

    /// The fast path is taken: an established NAT connection's data segment is handled
    /// without the general parse (its in-lookup is the only one).
    #[test]
    fn established_nat_segment_takes_the_fast_path() {
        let mut d = director(services());
        let now = Instant::from_secs(1);
        let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, &[]);
        assert_eq!(run(&mut d, now, PUB, &syn).0, Verdict::Transmit(PRIV));
        let ack = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, b"data");
        let mut buf = ack.clone();
        let len = buf.len();
        let mut f = Frame::new(&mut buf, 0, len).unwrap();
        assert!(matches!(
            d.core.fast_v4(&mut d.v4, now, &mut f),
            fast::Fast::Done(Verdict::Transmit(PRIV))
        ));
    }
}

/// A TCP segment with explicit sequence and acknowledgement numbers (flags: PSH ACK, or SYN).
#[allow(clippy::too_many_arguments)]
fn tcp_seg(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    seq: u32,
    ack: u32,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (ip(src), ip(dst)) else {
        panic!("IPv4 only")
    };
    let mut t = PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(sport, dport, seq, 64240);
    t = if syn { t.syn() } else { t.psh().ack(ack) };
    let mut v = Vec::new();
    t.write(&mut v, payload).unwrap();
    v
}

fn tcp_fields(frame: &[u8]) -> (u32, u32, Vec<u8>) {
    let s = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("not TCP")
    };
    (
        t.sequence_number(),
        t.acknowledgment_number(),
        t.payload().to_vec(),
    )
}

#[test]
fn ftp_passive_mode_rewrites_227_shifts_sequences_and_follows_the_data_connection() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        21,
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
    )]);
    let syn = tcp_seg("10.1.0.10", 40000, "10.1.0.100", 21, 100, 0, true, b"");
    let (_, out) = run(&mut d, t(1), PUB, &syn);
    let rs = inspect(&out).dst;
    let rs_s = rs.to_string();
    let reply = format!(
        "227 Entering Passive Mode ({},195,80).\r\n",
        rs_s.replace('.', ",")
    );
    let r = tcp_seg(
        &rs_s,
        21,
        "10.1.0.10",
        40000,
        5000,
        101,
        false,
        reply.as_bytes(),
    );
    let (v, out) = run(&mut d, t(1), PRIV, &r);
    assert_eq!(v, Verdict::Transmit(PUB));
    let seen = inspect(&out); // checksums verified
    assert_eq!((seen.src, seen.sport), (ip("10.1.0.100"), 21));
    let (seq, _, payload) = tcp_fields(&out);
    assert_eq!(
        seq, 5000,
        "the rewritten segment keeps its own sequence number"
    );
    assert_eq!(
        payload,
        b"227 Entering Passive Mode (10,1,0,100,195,80).\r\n"
    );
    let diff = payload.len() as u32 - reply.len() as u32;
    // The next reply is shifted by the growth; the client's ack is shifted back.
    let next = tcp_seg(
        &rs_s,
        21,
        "10.1.0.10",
        40000,
        5000 + reply.len() as u32,
        101,
        false,
        b"150 ok\r\n",
    );
    let (_, out) = run(&mut d, t(1), PRIV, &next);
    inspect(&out);
    assert_eq!(tcp_fields(&out).0, 5000 + reply.len() as u32 + diff);
    let ack = tcp_seg(
        "10.1.0.10",
        40000,
        "10.1.0.100",
        21,
        101,
        5000 + payload.len() as u32,
        false,
        b"",
    );
    let (_, out) = run(&mut d, t(1), PUB, &ack);
    inspect(&out);
    assert_eq!(tcp_fields(&out).1, 5000 + reply.len() as u32);
    // The client's data connection to VIP:50000 goes to the same real server and port.
    let data_syn = tcp_seg(
        "10.1.0.10",
        40001,
        "10.1.0.100",
        195 * 256 + 80,
        7,
        0,
        true,
        b"",
    );
    let (v, out) = run(&mut d, t(2), PUB, &data_syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect(&out);
    assert_eq!((seen.dst, seen.dport), (rs, 50000));
    // Expectations are used once.
    let again = tcp_seg("10.1.0.10", 40002, "10.1.0.100", 50000, 7, 0, true, b"");
    assert_eq!(run(&mut d, t(2), PUB, &again).0, Verdict::Pass);
}

#[test]
fn ftp_active_mode_lets_the_real_servers_port_20_connection_through() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        21,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let syn = tcp_seg("10.1.0.10", 40000, "10.1.0.100", 21, 100, 0, true, b"");
    run(&mut d, t(1), PUB, &syn);
    let port = tcp_seg(
        "10.1.0.10",
        40000,
        "10.1.0.100",
        21,
        101,
        1,
        false,
        b"PORT 10,1,0,10,156,65\r\n",
    );
    let (_, out) = run(&mut d, t(1), PUB, &port);
    let (_, _, payload) = tcp_fields(&out);
    assert_eq!(
        payload, b"PORT 10,1,0,10,156,65\r\n",
        "the client's own address stays"
    );
    // The real server connects from port 20 to the client's announced port (40001).
    let data = tcp_seg("10.2.0.11", 20, "10.1.0.10", 40001, 9000, 0, true, b"");
    let (v, out) = run(&mut d, t(1), PRIV, &data);
    assert_eq!(v, Verdict::Transmit(PUB));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip("10.1.0.100"), 20));
    assert_eq!((seen.dst, seen.dport), (ip("10.1.0.10"), 40001));
    // The client's answer reaches the real server's port 20.
    let back = tcp_seg("10.1.0.10", 40001, "10.1.0.100", 20, 1, 9001, false, b"");
    let (v, out) = run(&mut d, t(1), PUB, &back);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(inspect(&out).dport, 20);
}

#[test]
fn tunnelled_gso_super_frames_are_cut_and_each_segment_encapsulated() {
    let method = ForwardMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    let mut d = director(vec![tcp_svc("10.1.0.100", 80, method, &["10.2.0.11"])]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(1), PUB, &syn).0, Verdict::Transmit(PRIV));
    // A 5000-byte TSO frame with MSS 1400 (what a veth peer hands over).
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let big = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, &payload);
    let mut buf = vec![0u8; HEAD + big.len() + 64];
    buf[HEAD..HEAD + big.len()].copy_from_slice(&big);
    let mut f = Frame::new(&mut buf, HEAD, big.len()).unwrap();
    f.set_gso_size(1400);
    assert_eq!(d.handle(t(1), PUB, &mut f), Verdict::Consumed);
    let mut out = [0u8; 2048];
    let mut joined = Vec::new();
    let mut n = 0;
    while let Some((port, len)) = d.poll_transmit(&mut out) {
        assert_eq!(port, PRIV);
        assert!(len - 14 <= 1500, "segment {n} fits the MTU: {len}");
        assert_eq!(&out[..6], &rs_mac(1));
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&out[14..len]).unwrap();
        assert_eq!(outer.protocol().0, 4);
        let inner = SlicedPacket::from_ip(&out[34..len]).unwrap();
        let Some(TransportSlice::Tcp(t)) = inner.transport else {
            panic!("inner TCP")
        };
        let Some(NetSlice::Ipv4(v4)) = inner.net else {
            panic!("inner IPv4")
        };
        let h = t.to_header();
        let ih = v4.header().to_header();
        assert_eq!(h.checksum, h.calc_checksum_ipv4(&ih, t.payload()).unwrap());
        joined.extend_from_slice(t.payload());
        n += 1;
    }
    assert_eq!(n, 4);
    assert_eq!(joined, payload);
    assert_eq!(d.counters().segmented, 4);
}

#[test]
fn a_df_packet_too_big_for_the_tunnel_gets_frag_needed() {
    let method = ForwardMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    let mut d = director(vec![tcp_svc("10.1.0.100", 80, method, &["10.2.0.11"])]);
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    run(&mut d, t(1), PUB, &syn);
    // 1500 bytes of IP with DF (etherparse sets DF): 20 more do not fit a 1500 MTU.
    let big = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, &[0u8; 1460]);
    assert_eq!(big.len() - 14, 1500);
    assert_eq!(
        run(&mut d, t(1), PUB, &big).0,
        Verdict::Drop(DropReason::TooBig)
    );
    let mut out = [0u8; 2048];
    let (port, len) = d
        .poll_transmit(&mut out)
        .expect("an ICMP error to the client");
    assert_eq!(port, PUB);
    let s = SlicedPacket::from_ethernet(&out[..len]).unwrap();
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!("not ICMP")
    };
    assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));
    match i.icmp_type() {
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
        ) => assert_eq!(next_hop_mtu, 1480),
        other => panic!("{other:?}"),
    }
    assert_eq!(inspect(&out[..len]).dst, ip("10.1.0.10"));
}

#[test]
fn a_new_syn_on_a_time_wait_entry_is_scheduled_afresh_with_conn_reuse_mode() {
    for mode in [1u8, 0] {
        let mut d = director_with(Config {
            services: vec![tcp_svc(
                "10.1.0.100",
                80,
                ForwardMethod::Masq,
                &["10.2.0.11", "10.2.0.12"],
            )],
            switches: Switches {
                conn_reuse_mode: mode,
                ..Switches::default()
            },
            ..Config::default()
        });
        let c = |seq, ack, syn, payload: &[u8]| {
            tcp_seg("10.1.0.10", 40000, "10.1.0.100", 80, seq, ack, syn, payload)
        };
        let (_, out) = run(&mut d, t(1), PUB, &c(1, 0, true, b""));
        let first = inspect(&out).dst;
        let rs = first.to_string();
        let s = |seq, ack, syn| tcp_seg(&rs, 80, "10.1.0.10", 40000, seq, ack, syn, b"");
        run(&mut d, t(1), PRIV, &s(9, 2, true));
        run(&mut d, t(1), PUB, &c(2, 10, false, b"x"));
        // Client FIN (ES → CLOSE_WAIT), server FIN (CLOSE_WAIT → TIME_WAIT).
        run(
            &mut d,
            t(1),
            PUB,
            &with_tcp_flags(c(3, 10, false, b""), 0x11),
        );
        run(&mut d, t(1), PRIV, &with_tcp_flags(s(10, 4, false), 0x11));
        let (_, c0) = d.table_v4().iter().next().unwrap();
        assert_eq!(c0.state_name(), "TIME_WAIT");
        // The same client port opens a new connection.
        let (_, out) = run(&mut d, t(2), PUB, &c(100, 0, true, b""));
        let second = inspect(&out).dst;
        if mode == 1 {
            assert_ne!(second, first, "rescheduled (rr moves on)");
            assert_eq!(d.counters().conns_created, 2);
        } else {
            assert_eq!(second, first, "mode 0 reuses the entry and its real server");
            assert_eq!(d.counters().conns_created, 1);
        }
        assert_eq!(d.table_v4().len(), 1);
    }
}

/// An Ethernet/IPv4/TCP frame with its TCP flags byte replaced (checksum kept right).
fn with_tcp_flags(mut v: Vec<u8>, flags: u8) -> Vec<u8> {
    let old = u16::from_be_bytes([v[46], v[47]]);
    v[47] = flags;
    let new = u16::from_be_bytes([v[46], v[47]]);
    let c = wire::checksum::update16(u16::from_be_bytes([v[50], v[51]]), old, new);
    v[50..52].copy_from_slice(&c.to_be_bytes());
    v
}

mod estimator_rows;
mod neighbours;
mod new_conn;
mod offload;
mod sctp;
mod shed;
mod sync;
mod synproxy;

/// Issue 12: a spoofed SYN flood fills a small table; with `evict-embryonic`, `drop_entry`
/// and `secure_tcp` on, an established client keeps working, a new client still gets
/// through, the defences switch on as the table's room runs out, and `drop_entry` removes
/// flood entries while the real server counts follow.
#[test]
fn a_syn_flood_on_a_full_table_leaves_clients_working_and_turns_the_defences_on() {
    let mut cfg = Config {
        services: vec![tcp_svc(
            "10.1.0.100",
            80,
            ForwardMethod::Masq,
            &["10.2.0.11"],
        )],
        conn_table_max: 2_000,
        table_full: crate::model::TableFullPolicy::EvictEmbryonic,
        ..Config::default()
    };
    cfg.defense.drop_entry = 1;
    cfg.defense.secure_tcp = 1;
    // Room is counted in 4 KiB pages: 2,000 IPv4 entries are about 40 pages; defend once
    // fewer than 20 pages' room is left.
    cfg.defense.amemthresh = 20;
    let mut d = director_cfg_settings(cfg, DirectorSettings::default());
    // An established client.
    let est = |seg, p: &[u8]| tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, seg, p);
    run(&mut d, t(1), PUB, &est(Seg::Syn, b""));
    let synack = tcp_frame("10.2.0.11", 80, "10.1.0.10", 40000, Seg::SynAck, b"");
    run(&mut d, t(1), PRIV, &synack);
    assert_eq!(
        run(&mut d, t(1), PUB, &est(Seg::Ack, b"GET /")).0,
        Verdict::Transmit(PRIV)
    );
    d.expire(t(1));
    assert_eq!(d.defense().level(), 0, "plenty of room");
    // 5,000 spoofed SYNs: the table stays at its limit, each evicting an embryonic entry.
    for i in 0..5_000u32 {
        let b = i.to_be_bytes();
        let src = format!("198.{}.{}.{}", b[1], b[2], b[3]);
        let syn = tcp_frame(
            &src,
            1024 + (i % 50_000) as u16,
            "10.1.0.100",
            80,
            Seg::Syn,
            b"",
        );
        assert_eq!(run(&mut d, t(2), PUB, &syn).0, Verdict::Transmit(PRIV));
    }
    assert_eq!(d.table_v4().len(), 2_000);
    assert_eq!(d.drops().get(DropReason::TableFull), 0);
    // The established client still works, and a new one gets through.
    assert_eq!(
        run(&mut d, t(2), PUB, &est(Seg::Ack, b"more")).0,
        Verdict::Transmit(PRIV)
    );
    let new = tcp_frame("10.1.0.11", 40001, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(run(&mut d, t(2), PUB, &new).0, Verdict::Transmit(PRIV));
    // The defence timer: no room left, drop_entry and secure_tcp switch on (modes 1 -> 2).
    let before = d.table_v4().len();
    d.expire(t(3));
    assert!(d.defense().drop_entry_active() && d.defense().secure_active());
    assert_eq!(
        (
            d.defense().modes().drop_entry,
            d.defense().modes().secure_tcp
        ),
        (2, 2)
    );
    assert!(d.defense().counters.entries_dropped > 0);
    assert_eq!(
        d.table_v4().len() as u64,
        before as u64 - d.defense().counters.entries_dropped
    );
    // The real server's counts follow the table.
    let s = d.services().iter().next().unwrap().1;
    assert_eq!(
        (s.dests[0].active_conns + s.dests[0].inact_conns) as usize,
        d.table_v4().len()
    );
    // A new flood SYN now gets secure_tcp's 10 s SYN_RECV.
    let late = tcp_frame("203.0.113.9", 5555, "10.1.0.100", 80, Seg::Syn, b"");
    run(&mut d, t(3), PUB, &late);
    let c = d
        .table_v4()
        .iter()
        .find(|(_, c)| c.cport == 5555)
        .map(|(_, c)| c)
        .unwrap();
    assert_eq!((c.state_name(), c.timeout.as_secs()), ("SYN_RECV", 10));
}

#[test]
fn flush_dest_removes_one_real_servers_connections() {
    let svc = tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
    );
    let key = svc.key;
    let mut d = director(vec![svc]);
    let mut to = Vec::new();
    for port in [40000, 40001, 40002, 40003] {
        let syn = tcp_frame("10.1.0.10", port, "10.1.0.100", 80, Seg::Syn, b"");
        to.push(inspect(&run(&mut d, t(1), PUB, &syn).1).dst);
    }
    let first = to[0];
    let on_first = to.iter().filter(|a| **a == first).count();
    assert_eq!(d.table_v4().len(), 4);
    assert_eq!(d.flush_dest(&key, first, 80), Some(on_first));
    assert_eq!(d.table_v4().len(), 4 - on_first);
    let (_, s) = d.services().iter().next().unwrap();
    for dest in &s.dests {
        let want = if dest.addr == first { 0 } else { 4 - on_first };
        assert_eq!(
            dest.active_conns + dest.inact_conns,
            want as u32,
            "{dest:?}"
        );
    }
    // A server the service does not have, or a service the director does not run.
    assert_eq!(d.flush_dest(&key, ip("10.2.0.99"), 80), None);
    let other = ServiceKey::Fwmark {
        mark: 9,
        family: crate::model::Family::V4,
    };
    assert_eq!(d.flush_dest(&other, first, 80), None);
}
