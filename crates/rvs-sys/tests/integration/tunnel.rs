//! TUN devices and the raw/UDP tunnel sockets against the real kernel: a raw socket of
//! protocol 4 (47) in namespace `b` receives, outer header included, the IPIP (GRE)
//! packet a raw sender in `a` built with `rvs_core::wire::encap`; a TUN device hands the
//! stack what is written to it and gives back what the stack routes to it.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::time::Duration;

use etherparse::PacketBuilder;
use rvs_core::wire::encap::{Outer, Tunnel, decap, encap_gre, encap_ipip};
use rvs_core::wire::frame::Frame;
use rvs_sys::netns::Netns;
use rvs_sys::rawsock::RawIpSocket;
use rvs_sys::tun::Tun;

use crate::lab::{A_IP, B_IP, Deadline, Lab};

fn udp_packet(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, dst, 64).udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

/// `inner` behind tunnel headers built by `encap` (outer A_IP → B_IP).
fn encapsulated(inner: &[u8], encap: impl Fn(&mut Frame<'_>, &Outer)) -> Vec<u8> {
    let mut buf = vec![0u8; 128 + inner.len()];
    buf[128..].copy_from_slice(inner);
    let mut frame = Frame::new(&mut buf, 128, inner.len()).unwrap();
    let outer = Outer::for_inner(inner, A_IP.into(), B_IP.into(), 7, true).unwrap();
    encap(&mut frame, &outer);
    frame.data().to_vec()
}

fn receive_tunnelled(protocol: u8, packet: Vec<u8>) -> Vec<u8> {
    let lab = Lab::new();
    let rx = lab
        .b
        .run(move || RawIpSocket::open_v4(protocol))
        .unwrap()
        .expect("raw socket in b");
    assert_eq!(rx.protocol(), protocol);
    let tx = lab
        .a
        .run(RawIpSocket::sender)
        .unwrap()
        .expect("raw sender in a");
    tx.send_to(&packet, B_IP.into()).expect("send");
    let mut buf = [0u8; 2048];
    let n = rx
        .recv_timeout(&mut buf, Some(Duration::from_secs(5)))
        .expect("recv")
        .expect("a tunnelled packet within 5 s");
    assert!(n <= buf.len());
    buf[..n].to_vec()
}

#[test]
fn raw_socket_receives_ipip_with_its_outer_header() {
    let inner = udp_packet(A_IP, [192, 0, 2, 10], 4000, 80, b"inner");
    let sent = encapsulated(&inner, |f, o| encap_ipip(f, o).unwrap());
    let got = receive_tunnelled(4, sent);
    assert_eq!(got[0] >> 4, 4, "starts with the outer IPv4 header");
    assert_eq!(got[9], 4, "outer protocol IPIP");
    let d = decap(&got, None).unwrap().expect("IPIP recognised");
    assert_eq!(d.tunnel, Tunnel::Ipip);
    assert_eq!(d.outer_src, IpAddr::from(A_IP));
    assert_eq!(d.outer_dst, IpAddr::from(B_IP));
    assert_eq!(&got[d.inner], &inner[..]);
}

#[test]
fn raw_socket_receives_gre_with_its_outer_header() {
    let inner = udp_packet(A_IP, [192, 0, 2, 10], 4000, 80, b"inner over gre");
    let sent = encapsulated(&inner, |f, o| encap_gre(f, o, true).unwrap());
    let got = receive_tunnelled(47, sent);
    assert_eq!(got[9], 47, "outer protocol GRE");
    let d = decap(&got, None).unwrap().expect("GRE recognised");
    assert_eq!(
        d.tunnel,
        Tunnel::Gre {
            checksum_ok: Some(true)
        }
    );
    assert_eq!(&got[d.inner], &inner[..]);
}

#[test]
fn tun_device_reads_routed_packets_and_injects_written_ones() {
    let ns = Netns::new("rvs-sys-tun").expect("create namespace (are we root?)");
    let tun = ns
        .run(|| -> std::io::Result<Tun> {
            let t = Tun::create("rvststun0")?;
            t.set_up()?;
            Ok(t)
        })
        .unwrap()
        .expect("TUN device in the namespace");
    assert_eq!(tun.name(), "rvststun0");
    ns.add_addr("rvststun0", "10.97.0.1/24").unwrap();

    // The stack routes 10.97.0.0/24 to the TUN device: the packet comes out of the fd.
    ns.run(|| {
        let s = UdpSocket::bind("10.97.0.1:0").unwrap();
        s.send_to(b"to the tun", "10.97.0.2:9").unwrap();
    })
    .unwrap();
    let deadline = Deadline::new(Duration::from_secs(5), "routed UDP packet on the TUN fd");
    let mut buf = [0u8; 2048];
    loop {
        deadline.check();
        let Some(n) = tun
            .read_timeout(&mut buf, Some(Duration::from_millis(200)))
            .unwrap()
        else {
            continue;
        };
        // Skip what else the stack sends a fresh link (IPv6 router solicitations, MLD).
        let Ok(p) = etherparse::SlicedPacket::from_ip(&buf[..n]) else {
            continue;
        };
        if let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Udp(udp))) =
            (&p.net, &p.transport)
        {
            assert_eq!(ip.header().destination(), [10, 97, 0, 2]);
            assert_eq!(udp.destination_port(), 9);
            assert_eq!(udp.payload(), b"to the tun");
            break;
        }
    }

    // A packet written to the fd is received by the stack on the TUN interface.
    let rx = ns
        .run(|| UdpSocket::bind("10.97.0.1:5555"))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tun.write(&udp_packet(
        [10, 97, 0, 2],
        [10, 97, 0, 1],
        7,
        5555,
        b"from the tun",
    ))
    .unwrap();
    let mut got = [0u8; 64];
    let (n, from) = rx.recv_from(&mut got).expect("injected datagram");
    assert_eq!(&got[..n], b"from the tun");
    assert_eq!(from, (Ipv4Addr::new(10, 97, 0, 2), 7).into());
    drop(tun);
    assert!(
        ns.ip(["link", "show", "rvststun0"]).is_err(),
        "a non-persistent TUN device goes away with its fd"
    );
}
