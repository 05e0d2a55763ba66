//! Cross-checks of the wire views against etherparse (an independent parser and checksum
//! implementation), and property tests that no parser panics on arbitrary bytes.

use super::checksum;
use super::ethernet::EthernetFrame;
use super::icmp::{Icmpv4Packet, Icmpv6Packet, QuotedPacket};
use super::nat::{NatRewrite, RewriteError};
use super::*;
use etherparse::{
    IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv4HeaderSlice, NetHeaders, PacketBuilder,
    PacketHeaders, TransportHeader, VlanId,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

fn v4(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

fn v6(a: [u8; 16]) -> Ipv6Addr {
    Ipv6Addr::from(a)
}

fn ep(b: &[u8]) -> PacketHeaders<'_> {
    PacketHeaders::from_ethernet_slice(b).expect("etherparse parses it")
}

fn ep_ip(b: &[u8]) -> PacketHeaders<'_> {
    PacketHeaders::from_ip_slice(b).expect("etherparse parses it")
}

/// Ethernet + VLAN 100 + IPv4 with 4 option bytes + TCP with flags and payload.
fn tcp_v4_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 61, IpNumber::TCP, src, dst).unwrap();
    ip.options = [1u8, 1, 1, 0].into(); // NOP NOP NOP EOL
    ip.identification = 0xbeef;
    ip.dont_fragment = true;
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ip(IpHeaders::Ipv4(ip, Ipv4Extensions::default()))
        .tcp(sport, dport, 0x1122_3344, 29200)
        .syn()
        .ack(0x5566_7788)
        .psh();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp_v6_frame(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, dst, 33)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp_v4_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, dst, 20)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// etherparse's verdict on the IPv4 header checksum and the L4 checksum of a frame.
fn ep_checksums_ok(frame: &[u8], l2: bool) -> (bool, bool) {
    let h = if l2 { ep(frame) } else { ep_ip(frame) };
    let payload = h.payload.slice();
    match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), t) => {
            let ip_ok = ip.header_checksum == ip.calc_header_checksum();
            let l4_ok = match t {
                Some(TransportHeader::Tcp(t)) => {
                    checksum::same(t.checksum, t.calc_checksum_ipv4(ip, payload).unwrap())
                }
                Some(TransportHeader::Udp(u)) => {
                    u.checksum == 0
                        || checksum::same(u.checksum, u.calc_checksum_ipv4(ip, payload).unwrap())
                }
                Some(TransportHeader::Icmpv4(i)) => {
                    checksum::same(i.checksum, i.icmp_type.calc_checksum(payload))
                }
                _ => true,
            };
            (ip_ok, l4_ok)
        }
        (Some(NetHeaders::Ipv6(ip, _)), t) => {
            let l4_ok = match t {
                Some(TransportHeader::Tcp(t)) => {
                    checksum::same(t.checksum, t.calc_checksum_ipv6(ip, payload).unwrap())
                }
                Some(TransportHeader::Udp(u)) => {
                    checksum::same(u.checksum, u.calc_checksum_ipv6(ip, payload).unwrap())
                }
                Some(TransportHeader::Icmpv6(i)) => checksum::same(
                    i.checksum,
                    i.icmp_type
                        .calc_checksum(ip.source, ip.destination, payload)
                        .unwrap(),
                ),
                _ => true,
            };
            (true, l4_ok)
        }
        _ => panic!("not IP"),
    }
}

#[test]
fn tcp_v4_fields_match_etherparse() {
    let payload = b"GET / HTTP/1.0\r\n\r\n!";
    let f = tcp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 40000, 80, payload);
    let p = parse(&f).unwrap();
    let h = ep(&f);
    let Some(NetHeaders::Ipv4(eip, _)) = &h.net else {
        panic!()
    };
    let Some(TransportHeader::Tcp(et)) = &h.transport else {
        panic!()
    };
    assert_eq!(p.l2_len, 18);
    assert_eq!(p.vlan, Some(100));
    assert_eq!(h.vlan_ids()[0].value(), 100);
    assert_eq!(p.ethertype, EtherType::IPV4);
    assert_eq!(p.l3, L3Kind::Ipv4);
    assert_eq!(p.src, IpAddr::V4(v4(eip.source)));
    assert_eq!(p.dst, IpAddr::V4(v4(eip.destination)));
    assert_eq!(usize::from(p.l3_len), usize::from(eip.total_len));
    assert_eq!(p.l4_offset, 18 + 24);
    assert_eq!(
        (p.src_port, p.dst_port),
        (et.source_port, et.destination_port)
    );
    assert!(
        p.tcp_flags
            .contains(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::PSH)
    );
    assert!(!p.tcp_flags.contains(TcpFlags::FIN));
    assert!(!p.frag.is_fragment);

    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!(e.src_addr().0, MAC_A);
    assert_eq!(e.dst_addr().0, MAC_B);
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert_eq!(ip.header_len(), 24);
    assert_eq!(ip.options(), eip.options.as_slice());
    assert_eq!(ip.dscp(), eip.dscp.value());
    assert_eq!(ip.ecn(), eip.ecn.value());
    assert_eq!(ip.total_len(), eip.total_len);
    assert_eq!(ip.ident(), eip.identification);
    assert_eq!(ip.dont_frag(), eip.dont_fragment);
    assert_eq!(ip.more_frags(), eip.more_fragments);
    assert_eq!(ip.frag_offset(), eip.fragment_offset.value() * 8);
    assert_eq!(ip.ttl(), eip.time_to_live);
    assert_eq!(ip.protocol(), eip.protocol.0);
    assert_eq!(ip.checksum(), eip.header_checksum);
    assert!(ip.verify_checksum());
    let t = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(t.seq_number(), et.sequence_number);
    assert_eq!(t.ack_number(), et.acknowledgment_number);
    assert_eq!(t.header_len(), et.header_len());
    assert_eq!(t.window(), et.window_size);
    assert_eq!(t.checksum(), et.checksum);
    assert_eq!(t.urgent(), et.urgent_pointer);
    assert_eq!(t.options(), et.options.as_slice());
    assert_eq!(t.payload(), payload);
    assert!(t.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
}

/// The NAT rewrite the director does on a TCP packet: addresses and ports, incrementally.
fn nat_rewrite_v4(f: &mut [u8], new_src: Ipv4Addr, new_dst: Ipv4Addr, sport: u16, dport: u16) {
    let p = parse(f).unwrap();
    let l3 = &mut f[p.l3_range()];
    let mut ip = Ipv4Packet::new_checked(&mut *l3).unwrap();
    let (os, od) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(new_src);
    ip.set_dst_addr(new_dst);
    ip.decrement_ttl();
    let proto = ip.protocol();
    let l4 = ip.payload_mut();
    match proto {
        ip_proto::TCP => {
            let mut t = TcpPacket::new_checked(l4).unwrap();
            t.update_addr_v4(os, new_src);
            t.update_addr_v4(od, new_dst);
            t.set_src_port(sport);
            t.set_dst_port(dport);
        }
        ip_proto::UDP => {
            let mut u = UdpPacket::new_checked(l4).unwrap();
            u.update_addr_v4(os, new_src);
            u.update_addr_v4(od, new_dst);
            u.set_src_port(sport);
            u.set_dst_port(dport);
        }
        _ => unreachable!(),
    }
}

#[test]
fn tcp_v4_nat_rewrite_checked_by_etherparse() {
    let mut f = tcp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 40000, 80, b"odd-length");
    nat_rewrite_v4(&mut f, v4([10, 0, 0, 1]), v4([10, 0, 0, 20]), 1025, 8080);
    let h = ep(&f);
    let Some(NetHeaders::Ipv4(eip, _)) = &h.net else {
        panic!()
    };
    assert_eq!(eip.destination, [10, 0, 0, 20]);
    assert_eq!(eip.time_to_live, 60);
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    // Sequence and ack rewrites (FullNAT sequence offsets) keep the checksum too.
    let p = parse(&f).unwrap();
    let mut t = TcpPacket::new_checked(&mut f[p.l4_range()]).unwrap();
    t.set_seq_number(0xffff_fff0);
    t.set_ack_number(7);
    t.set_flags(TcpFlags::ACK | TcpFlags::FIN);
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    assert!(parse(&f).unwrap().tcp_flags.contains(TcpFlags::FIN));
}

#[test]
fn udp_v4_zero_checksum_stays_zero() {
    let mut f = udp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 5353, 53, b"q");
    let p = parse(&f).unwrap();
    UdpPacket::new_checked(&mut f[p.l4_range()])
        .unwrap()
        .set_checksum(0);
    nat_rewrite_v4(&mut f, v4([10, 0, 0, 1]), v4([10, 0, 0, 20]), 1, 2);
    let p = parse(&f).unwrap();
    let u = UdpPacket::new_checked(&f[p.l4_range()]).unwrap();
    assert_eq!(u.checksum(), 0);
    assert_eq!((u.src_port(), u.dst_port()), (1, 2));
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
}

#[test]
fn udp_v6_rewrite_checked_by_etherparse() {
    let src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
    let mut f = udp_v6_frame(src, dst, 5000, 53, b"abc");
    let p = parse(&f).unwrap();
    assert_eq!(p.l3, L3Kind::Ipv6);
    assert_eq!(
        (p.protocol, p.src_port, p.dst_port, p.ttl),
        (ip_proto::UDP, 5000, 53, 33)
    );
    assert_eq!(p.l4_offset, 14 + 40);
    let new_dst = "2001:db8::10:1".parse::<Ipv6Addr>().unwrap();
    let h = ep(&f);
    let Some(NetHeaders::Ipv6(eip, _)) = &h.net else {
        panic!()
    };
    let ip_ro = Ipv6Packet::new_checked(&f[p.l3_range()]).unwrap();
    assert_eq!(ip_ro.payload_len(), eip.payload_length);
    assert_eq!(ip_ro.flow_label(), eip.flow_label.value());
    assert_eq!(ip_ro.traffic_class(), eip.traffic_class);
    assert_eq!(ip_ro.next_header(), eip.next_header.0);
    drop(h);
    let mut ip = Ipv6Packet::new_checked(&mut f[p.l3_range()]).unwrap();
    let old = ip.dst_addr();
    ip.set_dst_addr(new_dst);
    ip.decrement_hop_limit();
    let mut u = UdpPacket::new_checked(ip.payload_mut()).unwrap();
    u.update_addr_v6(old, new_dst);
    u.set_dst_port(5353);
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    let h = ep(&f);
    let Some(TransportHeader::Udp(eu)) = &h.transport else {
        panic!()
    };
    assert_eq!(eu.destination_port, 5353);
}

#[test]
fn icmpv6_echo_rewrite_checked_by_etherparse() {
    let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, dst, 64)
        .icmpv6_echo_request(0x77, 3);
    let mut f = Vec::new();
    b.write(&mut f, b"ping!").unwrap();
    let p = parse(&f).unwrap();
    assert_eq!(p.icmp, Some((128, 0)));
    assert_eq!(p.src_port, 0x77);
    let (l3s, l4s) = (p.l3_range(), p.l4_range());
    let mut ip = Ipv6Packet::new_checked(&mut f[l3s.clone()]).unwrap();
    let new_dst = "2001:db8::99".parse::<Ipv6Addr>().unwrap();
    let old = ip.dst_addr();
    ip.set_dst_addr(new_dst);
    let mut icmp = Icmpv6Packet::new_checked(&mut f[l4s.clone()]).unwrap();
    assert!(icmp.verify_checksum(v6(src), old));
    icmp.update_addr_v6(old, new_dst);
    icmp.set_echo_ident(0x1234);
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    let mut icmp = Icmpv6Packet::new_checked(&mut f[l4s]).unwrap();
    icmp.set_checksum(0xdead);
    icmp.fill_checksum(v6(src), new_dst);
    assert_eq!(icmp.echo_ident(), 0x1234);
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
}

/// An ICMPv4 fragmentation-needed message quoting the first 8 bytes of a TCP segment the
/// client sent to the VIP; the director rewrites it for the real server.
#[test]
fn icmpv4_frag_needed_quoted_tcp_rewrite() {
    let client = [203, 0, 113, 5];
    let vip = [198, 51, 100, 10];
    let rs = Ipv4Addr::new(10, 0, 0, 20);
    let inner = tcp_v4_frame(vip, client, 80, 40000, b"response data");
    let inner_ip = &inner[18..];
    let quote = &inner_ip[..24 + 8]; // IP header with options + 8 bytes of TCP
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([192, 0, 2, 254], vip, 64)
        .icmpv4_raw(3, 4, [0, 0, 0x05, 0xdc]);
    let mut f = Vec::new();
    b.write(&mut f, quote).unwrap();

    let p = parse(&f).unwrap();
    assert_eq!(p.icmp, Some((3, 4)));
    let mut ip = Ipv4Packet::new_checked(&mut f[p.l3_range()]).unwrap();
    ip.set_dst_addr(rs);
    let mut icmp = Icmpv4Packet::new_checked(ip.payload_mut()).unwrap();
    assert!(icmp.is_error());
    assert_eq!(icmp.next_hop_mtu(), Some(1500));
    let q = icmp.quoted().unwrap();
    assert_eq!(q.src_addr(), IpAddr::V4(v4(vip)));
    assert_eq!(q.dst_addr(), IpAddr::V4(v4(client)));
    assert_eq!(q.protocol(), ip_proto::TCP);
    assert_eq!(q.ports(), Some((80, 40000)));
    let mut q = icmp.quoted_mut().unwrap();
    assert!(q.set_src_addr(IpAddr::V4(rs)));
    assert!(q.set_src_port(8080));
    assert!(!q.set_src_addr(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    icmp.fill_checksum();
    assert!(icmp.verify_checksum());

    // etherparse: outer header and ICMP checksums, and the quoted IPv4 header checksum.
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    let h = ep(&f);
    let quoted = h.payload.slice();
    let qh = Ipv4HeaderSlice::from_slice(quoted).unwrap().to_header();
    assert_eq!(qh.source, rs.octets());
    assert_eq!(qh.destination, client);
    assert_eq!(qh.header_checksum, qh.calc_header_checksum());
    assert_eq!(&quoted[24..26], &8080u16.to_be_bytes());
}

/// The same with the full quoted TCP header (Linux quotes as much as fits): the quoted TCP
/// checksum is kept right as well, and ICMPv6 packet-too-big over IPv6.
#[test]
fn icmpv6_packet_too_big_quoted_tcp_rewrite() {
    let vip: [u8; 16] = "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets();
    let client: [u8; 16] = "2001:db8:1::5".parse::<Ipv6Addr>().unwrap().octets();
    let rs: Ipv6Addr = "fd00::20".parse().unwrap();
    let b = PacketBuilder::ipv6(vip, client, 64)
        .tcp(443, 50000, 1, 1000)
        .ack(9);
    let mut inner = Vec::new();
    b.write(&mut inner, b"0123456789").unwrap();
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            vip,
            64,
        )
        .icmpv6_raw(2, 0, [0, 0, 0x05, 0x00]);
    let mut f = Vec::new();
    b.write(&mut f, &inner).unwrap();
    let p = parse(&f).unwrap();
    assert_eq!(p.icmp, Some((2, 0)));
    let (l3r, l4r) = (p.l3_range(), p.l4_range());
    let mut ip = Ipv6Packet::new_checked(&mut f[l3r]).unwrap();
    let (src, old_dst) = (ip.src_addr(), ip.dst_addr());
    ip.set_dst_addr(rs);
    let mut icmp = Icmpv6Packet::new_checked(&mut f[l4r]).unwrap();
    assert_eq!(icmp.mtu(), Some(1280));
    assert!(icmp.verify_checksum(src, old_dst));
    let mut q = icmp.quoted_mut().unwrap();
    assert_eq!(q.ports(), Some((443, 50000)));
    assert!(q.set_src_addr(IpAddr::V6(rs)));
    assert!(q.set_src_port(8443));
    icmp.fill_checksum(src, rs);
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    // The quoted TCP segment is complete here, so etherparse can check its checksum too.
    let h = ep(&f);
    let quoted = h.payload.slice();
    assert_eq!(ep_checksums_ok(quoted, false), (true, true));
    let qh = ep_ip(quoted);
    let Some(TransportHeader::Tcp(qt)) = &qh.transport else {
        panic!()
    };
    assert_eq!(qt.source_port, 8443);
}

#[test]
fn partial_checksum_finished_and_refilled() {
    let mut f = tcp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 40000, 80, b"partial!!");
    let good = f.clone();
    let p = parse(&f).unwrap();
    let l4 = p.l4_range();
    let seg_len = (l4.end - l4.start) as u16;
    let seed = l4::partial_seed_v4(
        v4([192, 0, 2, 1]),
        v4([198, 51, 100, 10]),
        ip_proto::TCP,
        seg_len,
    );
    f[l4.start + 16..l4.start + 18].copy_from_slice(&seed.to_be_bytes());
    f.extend_from_slice(&[0; 6]); // Ethernet padding must not be summed
    let mut partial = f.clone();
    // Finishing in software gives the sender's checksum.
    let mut buf = vec![0u8; 64 + f.len()];
    buf[64..].copy_from_slice(&f);
    let mut fr = Frame::new(&mut buf, 64, f.len()).unwrap();
    fr.set_csum(CsumStatus::Partial {
        start: l4.start as u16,
        offset: 16,
    });
    fr.finish_checksum().unwrap();
    assert_eq!(fr.csum(), CsumStatus::Complete);
    assert_eq!(&fr.data()[..good.len()], &good[..]);
    // After a NAT rewrite of a partial packet, a full refill makes it right.
    nat_rewrite_v4(
        &mut partial,
        v4([10, 0, 0, 1]),
        v4([10, 0, 0, 20]),
        1025,
        8080,
    );
    let p = parse(&partial).unwrap();
    assert!(fill_l4_checksum(&mut partial[p.l3_range()]).unwrap());
    assert_eq!(ep_checksums_ok(&partial, true), (true, true));
}

#[test]
fn arp_against_etherparse() {
    let me = EthernetAddress([2, 0, 0, 0, 1, 1]);
    let g = ArpRepr::gratuitous(me, Ipv4Addr::new(198, 51, 100, 10));
    let mut buf = [0u8; 64];
    let n = g.emit_frame(&mut buf).unwrap();
    let h = ep(&buf[..n]);
    let Some(NetHeaders::Arp(a)) = &h.net else {
        panic!()
    };
    let a = a.try_eth_ipv4().unwrap();
    assert_eq!(a.operation.0, 1);
    assert_eq!(a.sender_mac, me.0);
    assert_eq!(a.sender_ipv4, [198, 51, 100, 10]);
    assert_eq!(a.target_ipv4, [198, 51, 100, 10]);
    let p = parse(&buf[..n]).unwrap();
    assert_eq!(p.l3, L3Kind::Arp);
    assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)));
    let rep = ArpRepr::reply(
        me,
        &ArpRepr::request(
            EthernetAddress(MAC_A),
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
        ),
    );
    let n = rep.emit_frame(&mut buf).unwrap();
    let h = ep(&buf[..n]);
    let Some(NetHeaders::Arp(a)) = &h.net else {
        panic!()
    };
    let a = a.try_eth_ipv4().unwrap();
    assert_eq!(
        (a.operation.0, a.target_mac, a.sender_ipv4),
        (2, MAC_A, [10, 0, 0, 1])
    );
}

fn outer_v4() -> Outer {
    Outer::V4(OuterV4 {
        src: Ipv4Addr::new(192, 0, 2, 100),
        dst: Ipv4Addr::new(10, 0, 0, 20),
        ttl: 64,
        tos: 0,
        dont_frag: true,
        ident: 7,
    })
}

fn outer_v6() -> Outer {
    Outer::V6(OuterV6 {
        src: "fd00::1".parse().unwrap(),
        dst: "fd00::20".parse().unwrap(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x12345,
    })
}

/// Run `f` on a frame holding `inner` (a bare IP packet) with 128 bytes of headroom and
/// return the resulting bytes.
fn with_frame(inner: &[u8], csum: CsumStatus, f: impl FnOnce(&mut Frame<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 128 + inner.len()];
    buf[128..].copy_from_slice(inner);
    let mut fr = Frame::new(&mut buf, 128, inner.len()).unwrap();
    fr.set_csum(csum);
    f(&mut fr);
    fr.data().to_vec()
}

fn inner_v4() -> Vec<u8> {
    tcp_v4_frame([203, 0, 113, 5], [198, 51, 100, 10], 40000, 80, b"hello")[18..].to_vec()
}

fn inner_v6() -> Vec<u8> {
    udp_v6_frame(
        "2001:db8:1::5".parse::<Ipv6Addr>().unwrap().octets(),
        "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets(),
        5000,
        53,
        b"query",
    )[14..]
        .to_vec()
}

#[test]
fn ipip_checked_by_etherparse() {
    for (inner, proto) in [(inner_v4(), ip_proto::IPIP), (inner_v6(), ip_proto::IPV6)] {
        let out = with_frame(&inner, CsumStatus::Complete, |fr| {
            encap_ipip(fr, &outer_v4()).unwrap()
        });
        let h = ep_ip(&out);
        let Some(NetHeaders::Ipv4(o, _)) = &h.net else {
            panic!()
        };
        assert_eq!(o.header_checksum, o.calc_header_checksum());
        assert_eq!(o.protocol.0, proto);
        assert_eq!(
            (o.source, o.destination),
            ([192, 0, 2, 100], [10, 0, 0, 20])
        );
        assert!(o.dont_fragment);
        assert_eq!(usize::from(o.total_len), out.len());
        assert_eq!(&out[20..], &inner[..]);
        assert_eq!(ep_checksums_ok(&out[20..], false), (true, true));
        let d = decap(&out, None).unwrap().unwrap();
        assert_eq!(&out[d.inner], &inner[..]);
        assert_eq!(d.outer_src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)));
    }
    // IPv6 in IPv6.
    let inner = inner_v6();
    let out = with_frame(&inner, CsumStatus::Complete, |fr| {
        encap_ipip(fr, &outer_v6()).unwrap()
    });
    let h = ep_ip(&out);
    let Some(NetHeaders::Ipv6(o, _)) = &h.net else {
        panic!()
    };
    assert_eq!(o.next_header.0, ip_proto::IPV6);
    assert_eq!(usize::from(o.payload_length), inner.len());
    assert_eq!(o.flow_label.value(), 0x12345);
    assert_eq!(&out[40..], &inner[..]);
    assert_eq!(decap(&out, None).unwrap().unwrap().tunnel, Tunnel::Ip6);
    // Not enough headroom.
    let mut buf = vec![0u8; 10 + inner.len()];
    buf[10..].copy_from_slice(&inner);
    let mut fr = Frame::new(&mut buf, 10, inner.len()).unwrap();
    assert_eq!(
        encap_ipip(&mut fr, &outer_v4()),
        Err(EncapError::NoHeadroom)
    );
}

#[test]
fn gre_checked_by_etherparse() {
    for csum in [false, true] {
        let inner = inner_v4();
        let out = with_frame(&inner, CsumStatus::Complete, |fr| {
            encap_gre(fr, &outer_v4(), csum).unwrap()
        });
        let h = ep_ip(&out);
        let Some(NetHeaders::Ipv4(o, _)) = &h.net else {
            panic!()
        };
        assert_eq!(o.header_checksum, o.calc_header_checksum());
        assert_eq!(o.protocol.0, ip_proto::GRE);
        let gre = h.payload.slice();
        let gl = if csum { 8 } else { 4 };
        assert_eq!(&gre[2..4], &[0x08, 0x00]);
        assert_eq!(gre[0] & 0x80 != 0, csum);
        if csum {
            assert_eq!(checksum::sum(gre), 0xffff);
        }
        assert_eq!(&gre[gl..], &inner[..]);
        assert_eq!(ep_checksums_ok(&gre[gl..], false), (true, true));
        let d = decap(&out, None).unwrap().unwrap();
        assert_eq!(
            d.tunnel,
            Tunnel::Gre {
                checksum_ok: csum.then_some(true)
            }
        );
        assert_eq!(&out[d.inner], &inner[..]);
    }
}

#[test]
fn gue_checked_by_etherparse() {
    for (csum, remcsum, partial) in [
        (false, false, false),
        (true, false, false),
        (true, false, true),
        (false, true, true),
        (true, true, false),
    ] {
        let mut inner = inner_v4();
        let good = inner.clone();
        let mut status = CsumStatus::Complete;
        if partial {
            let seg_len = (inner.len() - 24) as u16;
            let seed = l4::partial_seed_v4(
                v4([203, 0, 113, 5]),
                v4([198, 51, 100, 10]),
                ip_proto::TCP,
                seg_len,
            );
            inner[24 + 16..24 + 18].copy_from_slice(&seed.to_be_bytes());
            status = CsumStatus::Partial {
                start: 24,
                offset: 16,
            };
        }
        let opts = GueOptions {
            src_port: encap::gue_src_port(0xdead_beef),
            dst_port: 6080,
            csum,
            remcsum,
        };
        let mut after = CsumStatus::Valid;
        let out = with_frame(&inner, status, |fr| {
            encap_gue(fr, &outer_v4(), &opts).unwrap();
            after = fr.csum();
        });
        let h = ep_ip(&out);
        let Some(NetHeaders::Ipv4(o, _)) = &h.net else {
            panic!()
        };
        let Some(TransportHeader::Udp(u)) = &h.transport else {
            panic!()
        };
        assert_eq!(o.header_checksum, o.calc_header_checksum());
        assert_eq!(u.destination_port, 6080);
        assert!((32768..60999).contains(&u.source_port));
        let payload = h.payload.slice();
        if csum || remcsum {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv4(o, payload).unwrap(),
                "csum {csum} remcsum {remcsum}"
            );
        } else {
            assert_eq!(u.checksum, 0);
        }
        let with_opt = remcsum && partial;
        let gl = if with_opt { 12 } else { 4 };
        assert_eq!(payload[0], if with_opt { 2 } else { 0 });
        assert_eq!(payload[1], ip_proto::IPIP);
        let d = decap(&out, Some(6080)).unwrap().unwrap();
        assert_eq!(&out[d.inner.clone()], &payload[gl..]);
        if with_opt {
            // The receiver finishes the inner checksum from the option.
            assert_eq!(
                d.tunnel,
                Tunnel::Gue {
                    remcsum: Some((24, 40))
                }
            );
            assert_eq!(after, CsumStatus::Complete);
            let mut inner_out = out[d.inner].to_vec();
            finish_partial(&mut inner_out, 24, 16).unwrap();
            assert_eq!(inner_out, good);
        } else {
            assert_eq!(d.tunnel, Tunnel::Gue { remcsum: None });
            if partial && !csum {
                assert!(
                    matches!(after, CsumStatus::Partial { start, .. } if usize::from(start) == 24 + 20 + 8 + 4)
                );
            } else {
                assert_eq!(&payload[gl..], &good[..]);
                assert_eq!(ep_checksums_ok(&payload[gl..], false), (true, true));
            }
        }
    }
    // GUE variant 1 (direct IP after UDP, Linux fou) decapsulates too.
    let inner = inner_v6();
    let b = PacketBuilder::ipv4([192, 0, 2, 1], [10, 0, 0, 20], 64).udp(1234, 5555);
    let mut out = Vec::new();
    b.write(&mut out, &inner).unwrap();
    // An IPv6 packet starts with 0110: variant 1.
    let d = decap(&out, Some(5555)).unwrap().unwrap();
    assert_eq!(d.tunnel, Tunnel::GueDirect);
    assert_eq!(&out[d.inner], &inner[..]);
    assert_eq!(decap(&out, Some(6080)).unwrap(), None);
}

#[test]
fn fragments_described() {
    let mut f = udp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 5000, 53, &[7; 40]);
    // First fragment: MF set, offset 0; the UDP length covers more than this fragment.
    let mut ip = Ipv4Packet::new_checked(&mut f[14..]).unwrap();
    ip.set_frag(false, true, 0);
    ip.fill_checksum();
    let p = parse(&f).unwrap();
    assert!(p.frag.is_first() && p.frag.more);
    assert_eq!((p.src_port, p.dst_port), (5000, 53));
    let mut ip = Ipv4Packet::new_checked(&mut f[14..]).unwrap();
    ip.set_frag(false, false, 1480);
    let p = parse(&f).unwrap();
    assert!(p.frag.is_later());
    assert_eq!(
        (p.frag.offset, p.src_port, p.protocol),
        (1480, 0, ip_proto::UDP)
    );
}

#[test]
fn malformed_reasons() {
    let f = tcp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 1, 2, b"");
    assert_eq!(parse(&f[..10]), Err(Malformed::Truncated));
    let mut g = f.clone();
    g[18] = 0x45 + 0x10; // version 5
    assert_eq!(parse(&g), Err(Malformed::BadVersion));
    let mut g = f.clone();
    g[18 + 24 + 12] = 0x30; // TCP data offset 3
    assert_eq!(parse(&g), Err(Malformed::BadTcpOffset));
    for (i, m) in Malformed::ALL.iter().enumerate() {
        assert_eq!(m.index(), i);
    }
}

/// Call every accessor of every view on `data`; views that accept it must not panic.
fn exercise_all(data: &[u8]) {
    if let Ok(p) = parse(data) {
        assert!(usize::from(p.l3_offset) <= data.len());
        assert!(p.l3_range().end <= data.len());
        assert!(p.l4_range().start <= p.l4_range().end);
        assert!(p.l4_range().end <= data.len());
    }
    if let Ok(p) = parse::parse_ip(data) {
        assert!(p.l3_range().end <= data.len());
        assert!(p.l4_range().start <= p.l4_range().end);
    }
    let _ = decap(data, Some(6080));
    if let Ok(e) = EthernetFrame::new_checked(data) {
        let _ = (
            e.dst_addr(),
            e.src_addr(),
            e.ethertype(),
            e.vlan_id(),
            e.outer_vlan_id(),
            e.payload(),
            e.header_len(),
        );
    }
    if let Ok(a) = ArpPacket::new_checked(data) {
        let _ = ArpRepr::parse(&a);
    }
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.dscp(),
            ip.ecn(),
            ip.total_len(),
            ip.ident(),
            ip.dont_frag(),
        );
        let _ = (
            ip.more_frags(),
            ip.frag_offset(),
            ip.ttl(),
            ip.protocol(),
            ip.checksum(),
            ip.src_addr(),
        );
        let _ = (
            ip.dst_addr(),
            ip.options(),
            ip.verify_checksum(),
            ip.payload(),
            ip.is_fragment(),
        );
        let mut v = data.to_vec();
        let mut ip = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        ip.set_src_addr(Ipv4Addr::BROADCAST);
        ip.decrement_ttl();
        ip.fill_checksum();
        let _ = ip.payload_mut();
        let mut v = data.to_vec();
        let _ = fill_l4_checksum(&mut v);
    }
    if let Ok(ip) = Ipv6Packet::new_checked(data) {
        let _ = (
            ip.traffic_class(),
            ip.flow_label(),
            ip.payload_len(),
            ip.next_header(),
            ip.hop_limit(),
        );
        let _ = (ip.src_addr(), ip.dst_addr(), ip.payload(), ip.walk());
        let mut v = data.to_vec();
        let _ = fill_l4_checksum(&mut v);
    }
    if let Ok(t) = TcpPacket::new_checked(data) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
            t.flags(),
        );
        let _ = (
            t.window(),
            t.checksum(),
            t.urgent(),
            t.options(),
            t.payload(),
        );
        let _ = t.verify_checksum_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
        let mut v = data.to_vec();
        let mut t = TcpPacket::new_checked(&mut v[..]).unwrap();
        t.set_src_port(1);
        t.set_seq_number(2);
        t.set_flags(TcpFlags::RST);
        t.fill_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
    }
    if let Ok(u) = UdpPacket::new_checked(data) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum(),
            u.payload(),
        );
        let _ = u.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        let mut v = data.to_vec();
        let mut u = UdpPacket::new_checked(&mut v[..]).unwrap();
        u.set_dst_port(3);
        u.fill_checksum_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
        let _ = u.payload_mut();
    }
    if let Ok(i) = Icmpv4Packet::new_checked(data) {
        let _ = (
            i.msg_type(),
            i.msg_code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
            i.rest_of_header(),
        );
        let _ = (
            i.is_error(),
            i.next_hop_mtu(),
            i.verify_checksum(),
            i.payload(),
        );
        if let Ok(q) = i.quoted() {
            let _ = (
                q.src_addr(),
                q.dst_addr(),
                q.protocol(),
                q.ports(),
                q.echo_ident(),
                q.l4(),
                q.is_v6(),
            );
        }
        let mut v = data.to_vec();
        let mut i = Icmpv4Packet::new_checked(&mut v[..]).unwrap();
        if let Ok(mut q) = i.quoted_mut() {
            q.set_src_addr(IpAddr::V4(Ipv4Addr::LOCALHOST));
            q.set_dst_addr(IpAddr::V6(Ipv6Addr::LOCALHOST));
            q.set_src_port(1);
            q.set_dst_port(2);
        }
        i.fill_checksum();
    }
    if let Ok(i) = Icmpv6Packet::new_checked(data) {
        let _ = (
            i.mtu(),
            i.is_error(),
            i.verify_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST),
        );
    }
    if let Ok(q) = QuotedPacket::new_checked(data) {
        let _ = (q.src_addr(), q.dst_addr(), q.ports(), q.l4_offset());
    }
    // Rewrites and encapsulation refuse or succeed, never panic.
    let rw4 = NatRewrite {
        src: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        dst: Some(IpAddr::V4(Ipv4Addr::BROADCAST)),
        src_port: Some(1),
        dst_port: Some(2),
    };
    let rw6 = NatRewrite {
        src: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        dst: Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        src_port: Some(1),
        dst_port: None,
    };
    let wrong = parse(&tcp_v4_frame([1; 4], [2; 4], 3, 4, b""));
    for (rw, partial) in [(rw4, false), (rw6, true), (rw4, true), (rw6, false)] {
        let mut v = data.to_vec();
        let _ = nat::rewrite(&mut v, partial, &rw);
        if let Ok(p) = parse(data) {
            let _ = nat::rewrite_parsed(&mut v, &p, partial, &rw);
        }
        let _ = nat::rewrite_parsed(&mut v, wrong.as_ref().unwrap(), partial, &rw);
        let _ = nat::rewrite_icmp_error(&mut v, &rw, &rw);
    }
    for outer in [outer_v4(), outer_v6()] {
        let opts = GueOptions {
            src_port: 1,
            dst_port: 2,
            csum: true,
            remcsum: true,
        };
        let st = CsumStatus::Partial {
            start: 20,
            offset: 16,
        };
        let _ = with_frame(data, st, |fr| {
            let _ = encap_ipip(fr, &outer);
        });
        let _ = with_frame(data, st, |fr| {
            let _ = encap_gre(fr, &outer, true);
        });
        let _ = with_frame(data, st, |fr| {
            let _ = encap_gue(fr, &outer, &opts);
        });
        let _ = with_frame(data, st, |fr| {
            let _ = fr.finish_checksum_ip();
        });
        let _ = with_frame(data, st, |fr| {
            let _ = fr.finish_checksum();
        });
    }
}

/// A valid frame of some kind, to be mutated.
fn seed_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(tcp_v4_frame(
            [192, 0, 2, 1],
            [198, 51, 100, 10],
            1,
            2,
            b"xyz"
        )),
        Just(udp_v6_frame([1; 16], [2; 16], 3, 4, b"hello")),
        Just(udp_v4_frame([1; 4], [2; 4], 3, 4, b"")),
        Just({
            let mut v = vec![0u8; 14];
            v[12..14].copy_from_slice(&[0x86, 0xdd]);
            v.extend_from_slice(&with_frame(&inner_v4(), CsumStatus::Complete, |fr| {
                encap_gue(
                    fr,
                    &outer_v6(),
                    &GueOptions {
                        src_port: 1,
                        dst_port: 6080,
                        csum: true,
                        remcsum: false,
                    },
                )
                .unwrap()
            }));
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
    ))]

    #[test]
    fn no_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise_all(&data);
        if data.len() > 14 {
            exercise_all(&data[14..]);
        }
    }

    #[test]
    fn no_panic_on_mutated_packets(seed in seed_frame(), flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6), cut in any::<proptest::sample::Index>()) {
        let mut f = seed;
        for (i, b) in flips {
            let i = i.index(f.len());
            f[i] = b;
        }
        let cut = cut.index(f.len() + 1);
        exercise_all(&f[..cut]);
        exercise_all(&f);
        if f.len() > 14 {
            exercise_all(&f[14..]);
        }
    }

    #[test]
    fn nat_rewrite_matches_etherparse_v4(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ns in any::<[u8; 4]>(), nd in any::<[u8; 4]>(),
            sp in any::<u16>(), dp in any::<u16>(), nsp in any::<u16>(), ndp in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64), udp in any::<bool>()) {
        let mut f = if udp { udp_v4_frame(src, dst, sp, dp, &payload) } else { tcp_v4_frame(src, dst, sp, dp, &payload) };
        nat_rewrite_v4(&mut f, v4(ns), v4(nd), nsp, ndp);
        prop_assert_eq!(ep_checksums_ok(&f, true), (true, true));
        let p = parse(&f).unwrap();
        prop_assert_eq!((p.src, p.dst, p.src_port, p.dst_port), (IpAddr::V4(v4(ns)), IpAddr::V4(v4(nd)), nsp, ndp));
        if udp {
            let u = UdpPacket::new_checked(&f[p.l4_range()]).unwrap();
            prop_assert_ne!(u.checksum(), 0);
        }
    }

    #[test]
    fn nat_rewrite_matches_etherparse_v6(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), nd in any::<[u8; 16]>(),
            ndp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut f = udp_v6_frame(src, dst, 1000, 53, &payload);
        let p = parse(&f).unwrap();
        let mut ip = Ipv6Packet::new_checked(&mut f[p.l3_range()]).unwrap();
        let old = ip.dst_addr();
        ip.set_dst_addr(v6(nd));
        let mut u = UdpPacket::new_checked(ip.payload_mut()).unwrap();
        u.update_addr_v6(old, v6(nd));
        u.set_dst_port(ndp);
        prop_assert_eq!(ep_checksums_ok(&f, true), (true, true));
        // A full refill agrees with the incremental result.
        let before = f.clone();
        prop_assert!(fill_l4_checksum(&mut f[p.l3_range()]).unwrap());
        let (a, b) = (UdpPacket::new_checked(&before[p.l4_range()]).unwrap().checksum(), UdpPacket::new_checked(&f[p.l4_range()]).unwrap().checksum());
        prop_assert!(checksum::same(a, b));
    }
}

/// Make the L4 checksum of `frame` partial (the pseudo-header sum only), as a sender with
/// checksum offload leaves it; returns the status the I/O layer would report.
fn make_partial(frame: &mut [u8]) -> CsumStatus {
    let p = parse(frame).unwrap();
    let l4 = p.l4_range();
    let (at, len) = (
        if p.protocol == ip_proto::TCP { 16 } else { 6 },
        l4.end - l4.start,
    );
    let seed = match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => l4::partial_seed_v4(s, d, p.protocol, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => l4::partial_seed_v6(s, d, p.protocol, len as u32),
        _ => unreachable!(),
    };
    frame[l4.start + at..l4.start + at + 2].copy_from_slice(&seed.to_be_bytes());
    CsumStatus::Partial {
        start: l4.start as u16,
        offset: at as u16,
    }
}

/// Rewrite with [`nat::rewrite`] the way the engine would, finishing a partial checksum at
/// the end (as the transmit path without offload would), and return the frame.
fn engine_nat(mut f: Vec<u8>, partial: bool, rw: &NatRewrite) -> Vec<u8> {
    let status = if partial {
        make_partial(&mut f)
    } else {
        CsumStatus::Complete
    };
    let p = parse(&f).unwrap();
    if rw.src_port.is_some() {
        nat::rewrite(&mut f[p.l3_range()], partial, rw).unwrap();
    } else {
        nat::rewrite_parsed(&mut f, &p, partial, rw).unwrap();
    }
    let len = f.len();
    let mut fr = Frame::new(&mut f, 0, len).unwrap();
    fr.set_csum(status);
    fr.finish_checksum().unwrap();
    f
}

#[test]
fn nat_rewrite_refuses_family_mismatch_and_non_errors() {
    let mut f = tcp_v4_frame([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, b"");
    let orig = f.clone();
    let p = parse(&f).unwrap();
    let rw = NatRewrite {
        dst: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ..NatRewrite::default()
    };
    assert_eq!(
        nat::rewrite(&mut f[p.l3_range()], false, &rw),
        Err(RewriteError::FamilyMismatch)
    );
    assert_eq!(f, orig);
    assert_eq!(
        nat::rewrite_icmp_error(
            &mut f[p.l3_range()],
            &NatRewrite::default(),
            &NatRewrite::default()
        ),
        Err(RewriteError::NotIcmpError)
    );
}

#[test]
fn nat_icmp_error_helper_checked_by_etherparse() {
    let (client, vip, rs) = (
        [203, 0, 113, 5],
        [198, 51, 100, 10],
        Ipv4Addr::new(10, 0, 0, 20),
    );
    let inner = tcp_v4_frame(vip, client, 80, 40000, b"response data");
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([192, 0, 2, 254], vip, 64)
        .icmpv4_raw(11, 0, [0; 4]);
    let mut f = Vec::new();
    b.write(&mut f, &inner[18..18 + 24 + 8]).unwrap();
    let p = parse(&f).unwrap();
    let outer = NatRewrite {
        dst: Some(IpAddr::V4(rs)),
        ..NatRewrite::default()
    };
    let quoted = NatRewrite {
        src: Some(IpAddr::V4(rs)),
        src_port: Some(8080),
        ..NatRewrite::default()
    };
    nat::rewrite_icmp_error(&mut f[p.l3_range()], &outer, &quoted).unwrap();
    assert_eq!(ep_checksums_ok(&f, true), (true, true));
    let h = ep(&f);
    let qh = Ipv4HeaderSlice::from_slice(h.payload.slice())
        .unwrap()
        .to_header();
    assert_eq!(
        (qh.source, qh.header_checksum),
        (rs.octets(), qh.calc_header_checksum())
    );
    let q = QuotedPacket::new_checked(h.payload.slice()).unwrap();
    assert_eq!(q.ports(), Some((8080, 40000)));
}

proptest! {
    #[test]
    fn nat_helper_keeps_checksums(v6_ in any::<bool>(), udp in any::<bool>(), partial in any::<bool>(),
            a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), c in any::<[u8; 16]>(), d in any::<[u8; 16]>(),
            ports in any::<[u16; 4]>(), which in 0u8..16, payload in proptest::collection::vec(any::<u8>(), 0..48)) {
        let f = match (v6_, udp) {
            (false, false) => tcp_v4_frame(a[..4].try_into().unwrap(), b[..4].try_into().unwrap(), ports[0], ports[1], &payload),
            (false, true) => udp_v4_frame(a[..4].try_into().unwrap(), b[..4].try_into().unwrap(), ports[0], ports[1], &payload),
            (true, _) => udp_v6_frame(a, b, ports[0], ports[1], &payload),
        };
        let addr = |x: [u8; 16]| if v6_ { IpAddr::V6(v6(x)) } else { IpAddr::V4(v4(x[..4].try_into().unwrap())) };
        let rw = NatRewrite {
            src: (which & 1 != 0).then(|| addr(c)),
            dst: (which & 2 != 0).then(|| addr(d)),
            src_port: (which & 4 != 0).then_some(ports[2]),
            dst_port: (which & 8 != 0).then_some(ports[3]),
        };
        let out = engine_nat(f, partial, &rw);
        prop_assert_eq!(ep_checksums_ok(&out, true), (true, true));
        let p = parse(&out).unwrap();
        if let Some(s) = rw.src { prop_assert_eq!(p.src, s); }
        if let Some(s) = rw.dst { prop_assert_eq!(p.dst, s); }
        if let Some(s) = rw.src_port { prop_assert_eq!(p.src_port, s); }
        if let Some(s) = rw.dst_port { prop_assert_eq!(p.dst_port, s); }
    }
}

#[test]
fn outer_like_kernel_and_full_frame() {
    let mut inner = inner_v4();
    let mut ip = Ipv4Packet::new_checked(&mut inner[..]).unwrap();
    ip.set_tos(0xb8 | 3); // EF with CE
    ip.fill_checksum();
    let o = Outer::for_inner(
        &inner,
        "192.0.2.100".parse().unwrap(),
        "10.0.0.20".parse().unwrap(),
        9,
        true,
    )
    .unwrap();
    let Outer::V4(o4) = o else { panic!() };
    assert_eq!(
        (o4.ttl, o4.tos, o4.dont_frag, o4.ident),
        (61, 0xb8 | 2, true, 9)
    );
    assert_eq!(encap::ecn_encapsulate(0x01), 0x01);
    assert_eq!(
        Outer::for_inner(
            &inner,
            "192.0.2.100".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            0,
            true
        ),
        Err(EncapError::FamilyMismatch)
    );
    // Ethernet frame in, pull L2, encapsulate, push L2: the engine's tunnel path.
    let mut buf = vec![0u8; 64];
    let frame_bytes: Vec<u8> = {
        let mut v = vec![0u8; 14];
        super::ethernet::emit_header(
            &mut v,
            EthernetAddress(MAC_B),
            EthernetAddress(MAC_A),
            EtherType::IPV4,
        )
        .unwrap();
        v.extend_from_slice(&inner);
        v
    };
    buf.extend_from_slice(&frame_bytes);
    let n = frame_bytes.len();
    let mut fr = Frame::new(&mut buf, 64, n).unwrap();
    fr.pull_front(14).unwrap();
    encap_ipip(&mut fr, &o).unwrap();
    super::ethernet::push_header(
        &mut fr,
        EthernetAddress(MAC_B),
        EthernetAddress(MAC_A),
        EtherType::IPV4,
    )
    .unwrap();
    let h = ep(fr.data());
    let Some(NetHeaders::Ipv4(oh, _)) = &h.net else {
        panic!()
    };
    assert_eq!(oh.protocol.0, ip_proto::IPIP);
    assert_eq!(oh.header_checksum, oh.calc_header_checksum());
    assert_eq!(&fr.data()[34..], &inner[..]);
}

#[test]
fn fou_checked_by_etherparse() {
    for (inner, csum) in [(inner_v4(), true), (inner_v6(), false)] {
        let out = with_frame(&inner, CsumStatus::Complete, |fr| {
            encap::encap_fou(fr, &outer_v4(), 40000, 5555, csum).unwrap()
        });
        let h = ep_ip(&out);
        let Some(NetHeaders::Ipv4(o, _)) = &h.net else {
            panic!()
        };
        let Some(TransportHeader::Udp(u)) = &h.transport else {
            panic!()
        };
        assert_eq!(o.header_checksum, o.calc_header_checksum());
        if csum {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv4(o, h.payload.slice()).unwrap()
            );
        } else {
            assert_eq!(u.checksum, 0);
        }
        assert_eq!(h.payload.slice(), &inner[..]);
        let d = decap(&out, Some(5555)).unwrap().unwrap();
        assert_eq!((d.tunnel, &out[d.inner]), (Tunnel::GueDirect, &inner[..]));
    }
}

#[test]
fn ipv6_extension_chain_against_etherparse() {
    use etherparse::{
        IpAuthHeader, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
    };
    let src: Ipv6Addr = "2001:db8:1::5".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::10".parse().unwrap();
    for more in [false, true] {
        let hdr = Ipv6Header {
            hop_limit: 9,
            source: src.octets(),
            destination: dst.octets(),
            ..Default::default()
        };
        let exts = Ipv6Extensions {
            hop_by_hop_options: Some(
                Ipv6RawExtHeader::new_raw(IpNumber(0), &[1, 4, 0, 0, 0, 0]).unwrap(),
            ),
            destination_options: Some(
                Ipv6RawExtHeader::new_raw(
                    IpNumber(0),
                    &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                )
                .unwrap(),
            ),
            routing: None,
            fragment: Some(Ipv6FragmentHeader::new(
                IpNumber(0),
                Default::default(),
                more,
                0xabcd_0123,
            )),
            auth: Some(IpAuthHeader::new(IpNumber(0), 0x100, 7, &[0xaa; 4]).unwrap()),
        };
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ip(IpHeaders::Ipv6(hdr, exts))
            .tcp(40000, 443, 5, 100)
            .syn();
        let mut f = Vec::new();
        b.write(&mut f, b"x").unwrap();
        let p = parse(&f).unwrap();
        let h = ep(&f);
        let Some(NetHeaders::Ipv6(_, eexts)) = &h.net else {
            panic!()
        };
        let ext_len = eexts.header_len();
        assert_eq!(usize::from(p.l4_offset), 14 + 40 + ext_len);
        assert_eq!(p.protocol, ip_proto::TCP);
        assert_eq!(p.frag.ident, 0xabcd_0123);
        assert_eq!((p.frag.is_fragment, p.frag.more), (more, more));
        assert_eq!(p.ttl, 9);
        assert_eq!((p.src, p.dst), (IpAddr::V6(src), IpAddr::V6(dst)));
        assert_eq!((p.src_port, p.dst_port), (40000, 443));
        let ip = Ipv6Packet::new_checked(&f[p.l3_range()]).unwrap();
        let w = ip.walk().unwrap();
        assert_eq!(w.l4_offset, 40 + ext_len);
        if !more {
            // A NAT rewrite through the chain, checked by etherparse.
            let rs: Ipv6Addr = "fd00::20".parse().unwrap();
            let rw = NatRewrite {
                dst: Some(IpAddr::V6(rs)),
                dst_port: Some(8443),
                ..NatRewrite::default()
            };
            nat::rewrite(&mut f[p.l3_range()], false, &rw).unwrap();
            assert_eq!(ep_checksums_ok(&f, true), (true, true));
        }
    }
}

#[test]
fn udp_v4_and_icmpv4_echo_fields_match_etherparse() {
    let f = udp_v4_frame([192, 0, 2, 1], [198, 51, 100, 10], 5353, 53, b"odd");
    let h = ep(&f);
    let Some(TransportHeader::Udp(eu)) = &h.transport else {
        panic!()
    };
    let p = parse(&f).unwrap();
    let u = UdpPacket::new_checked(&f[p.l4_range()]).unwrap();
    assert_eq!(
        (u.src_port(), u.dst_port(), u.len(), u.checksum()),
        (eu.source_port, eu.destination_port, eu.length, eu.checksum)
    );
    assert_eq!(u.payload(), b"odd");
    assert!(u.verify_checksum_v4(v4([192, 0, 2, 1]), v4([198, 51, 100, 10])));

    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([192, 0, 2, 1], [198, 51, 100, 10], 64)
        .icmpv4_echo_request(0x4242, 17);
    let mut f = Vec::new();
    b.write(&mut f, b"ping").unwrap();
    let p = parse(&f).unwrap();
    assert_eq!((p.icmp, p.src_port), (Some((8, 0)), 0x4242));
    let h = ep(&f);
    let Some(TransportHeader::Icmpv4(ei)) = &h.transport else {
        panic!()
    };
    let i = Icmpv4Packet::new_checked(&f[p.l4_range()]).unwrap();
    assert_eq!(
        (i.msg_type(), i.echo_ident(), i.echo_seq_no(), i.checksum()),
        (8, 0x4242, 17, ei.checksum)
    );
    assert!(i.verify_checksum() && !i.is_error());
    let mut f2 = f.clone();
    let mut i = Icmpv4Packet::new_checked(&mut f2[p.l4_range()]).unwrap();
    i.set_echo_seq_no(18);
    i.set_echo_ident(1);
    assert_eq!(ep_checksums_ok(&f2, true), (true, true));
}

/// `parse`'s IPv4 fast case gives exactly what the general parse gives, and `rewrite_v4_l4`
/// exactly what `rewrite_parsed` gives, on random frames (valid and corrupted).
mod fast_paths {
    use crate::wire::nat::{NatRewrite, rewrite_parsed, rewrite_v4_l4};
    use crate::wire::parse::{parse_general, parse_simple_v4};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn v4_frame() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::option::weighted(0.3, (0usize..80, any::<u8>())),
            prop::option::weighted(0.1, 0usize..80),
        )
            .prop_map(|(s, d, sp, dp, udp, payload, corrupt, cut)| {
                let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4(s, d, 64);
                let mut v = Vec::new();
                if udp {
                    b.udp(sp, dp).write(&mut v, &payload).unwrap();
                } else {
                    b.tcp(sp, dp, 7, 1000)
                        .ack(9)
                        .write(&mut v, &payload)
                        .unwrap();
                }
                if let Some((at, x)) = corrupt {
                    let at = at % v.len();
                    v[at] ^= x;
                }
                if let Some(n) = cut {
                    v.truncate(n.min(v.len()));
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn simple_v4_parse_agrees_with_the_general_parse(f in v4_frame()) {
            if let Some(p) = parse_simple_v4(&f) {
                prop_assert_eq!(Ok(p), parse_general(&f));
            }
        }

        #[test]
        fn one_pass_rewrite_agrees_with_the_general_rewrite(
            f in v4_frame(),
            src in prop::option::of((any::<[u8; 4]>(), prop::option::of(any::<u16>()))),
            dst in prop::option::of((any::<[u8; 4]>(), prop::option::of(any::<u16>()))),
            partial in any::<bool>(),
        ) {
            let Some(p) = parse_simple_v4(&f) else { return Ok(()) };
            let mut a = f.clone();
            let mut b = f.clone();
            let rw = NatRewrite {
                src: src.map(|s| IpAddr::V4(Ipv4Addr::from(s.0))),
                src_port: src.and_then(|s| s.1),
                dst: dst.map(|d| IpAddr::V4(Ipv4Addr::from(d.0))),
                dst_port: dst.and_then(|d| d.1),
            };
            let ok = rewrite_v4_l4(&mut a[p.l3_range()], 20, p.protocol, src, dst, partial);
            prop_assert!(ok);
            prop_assert!(rewrite_parsed(&mut b, &p, partial, &rw).is_ok());
            prop_assert_eq!(a, b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The fast path's header rewrite writes the same bytes as the general one, checksum
    /// edge values (0, 0xffff, addresses of all ones and zeros) included.
    #[test]
    fn head_rewrite_matches_l4_rewrite(
        mut head in proptest::collection::vec(any::<u8>(), 54),
        udp in any::<bool>(), partial in any::<bool>(), fullnat in any::<bool>(),
        edge in 0u8..8, dst in any::<[u8; 4]>(), src in any::<[u8; 4]>(),
        dport in any::<u16>(), sport in any::<u16>(),
    ) {
        let protocol = if udp { 17 } else { 6 };
        head[23] = protocol;
        let csum_at = 34 + if udp { 6 } else { 16 };
        let edge16 = |v: u16, at: usize, h: &mut Vec<u8>| h[at..at + 2].copy_from_slice(&v.to_be_bytes());
        match edge {
            0 => edge16(0, csum_at, &mut head),
            1 => edge16(0xffff, csum_at, &mut head),
            2 => edge16(0, 24, &mut head),
            3 => edge16(0xffff, 24, &mut head),
            4 => head[30..34].copy_from_slice(&[0xff; 4]),
            5 => head[30..34].copy_from_slice(&[0; 4]),
            _ => {}
        }
        let (dst, src) = if edge == 6 { ([0; 4], [0; 4]) } else if edge == 7 { ([0xff; 4], [0xff; 4]) } else { (dst, src) };
        let mut a: [u8; 54] = head.clone().try_into().unwrap();
        let local = fullnat.then_some((src, sport));
        super::nat::rewrite_v4_head(&mut a, protocol, local, (dst, dport), partial);
        let mut b = head.clone();
        prop_assert!(super::nat::rewrite_v4_l4(
            &mut b[14..], 20, protocol, local.map(|(a, p)| (a, Some(p))), Some((dst, Some(dport))), partial,
        ));
        prop_assert_eq!(&a[..], &b[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The fast path's header checks over the first 54 bytes accept exactly the frames of
    /// at least 54 bytes that `simple_v4` accepts, with the same result (the general path
    /// builds its `Parsed` from the fast path's result without checking again).
    #[test]
    fn head_checks_match_simple_v4(
        udp in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..40),
        flips in proptest::collection::vec((12usize..54, any::<u8>()), 0..4),
        total_delta in -30i32..30, extra in 0usize..8,
    ) {
        let mut f = if udp {
            udp_v4_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, &payload)
        } else {
            tcp_v4_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, &payload)
        };
        f.extend(std::iter::repeat_n(0u8, extra));
        if f.len() < 54 {
            f.resize(54, 0);
        }
        for (at, v) in flips {
            f[at] = v;
        }
        let total = i32::from(u16::from_be_bytes([f[16], f[17]])) + total_delta;
        f[16..18].copy_from_slice(&(total.clamp(0, 0xffff) as u16).to_be_bytes());
        let len = f.len();
        let head: &[u8; 54] = f[..54].try_into().unwrap();
        prop_assert_eq!(parse::simple_v4_head(head, len), parse::simple_v4(&f));
    }
}
