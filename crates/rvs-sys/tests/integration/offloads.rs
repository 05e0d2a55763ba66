//! What this kernel does with checksum status, `PACKET_VNET_HDR` and GSO on veth,
//! observed through the RX ring and asserted:
//! - a UDP datagram sent by a socket in the peer namespace arrives checksum-partial:
//!   `TP_STATUS_CSUMNOTREADY` without vnet headers, `VIRTIO_NET_HDR_F_NEEDS_CSUM` with
//!   csum_start = L4 offset and csum_offset = 6 with them; the field holds only the
//!   pseudo-header sum;
//! - a TCP bulk transfer arrives as GSO super-frames larger than the MTU, described by
//!   the vnet header (GSO_TCPV4, gso_size = MSS, NEEDS_CSUM at offset 16);
//! - the TX ring with vnet headers accepts such a super-frame and the peer receives it
//!   whole with the GSO metadata intact.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use rvs_sys::packet::vnet::{self, VirtioNetHdr};
use rvs_sys::packet::{PacketConfig, RxRingConfig, TxRingConfig};

use crate::lab::{A_IP, B_IP, Deadline, Lab, ipv4_l4, pseudo_header_sum};

fn big_rx() -> Option<RxRingConfig> {
    Some(RxRingConfig {
        block_size: 1 << 20,
        block_count: 8,
        ..RxRingConfig::default()
    })
}

#[test]
fn udp_from_a_socket_arrives_checksum_partial() {
    let lab = Lab::new();
    let mut plain = lab.open_b(PacketConfig {
        rx: big_rx(),
        tx: None,
        ..PacketConfig::default()
    });
    let mut with_vnet = lab.open_b(PacketConfig {
        rx: big_rx(),
        tx: None,
        vnet_hdr: true,
        ..PacketConfig::default()
    });
    lab.a
        .run(|| {
            let s = UdpSocket::bind(SocketAddr::from((A_IP, 0))).unwrap();
            s.send_to(b"rvs checksum probe", SocketAddr::from((B_IP, 9999)))
                .unwrap();
        })
        .unwrap();

    let is_probe = |f: &[u8]| matches!(ipv4_l4(f), Some((17, l4)) if f.len() >= l4 + 8 && f[l4 + 2..l4 + 4] == 9999u16.to_be_bytes());
    let deadline = Deadline::new(Duration::from_secs(5), "UDP probe on the plain ring");
    let mut got = None;
    while got.is_none() {
        deadline.check();
        plain
            .rx()
            .unwrap()
            .recv(Some(Duration::from_millis(50)), |f| {
                if is_probe(f.data) {
                    got = Some((f.meta, f.data.to_vec()));
                }
            })
            .unwrap();
    }
    let (meta, frame) = got.unwrap();
    eprintln!("UDP without vnet: status {:#x}", meta.status);
    assert!(
        meta.csum_not_ready(),
        "expected TP_STATUS_CSUMNOTREADY: {meta:?}"
    );
    assert!(!meta.csum_valid());
    assert_eq!(meta.vnet, None);
    let (_, l4) = ipv4_l4(&frame).unwrap();
    let field = u16::from_be_bytes([frame[l4 + 6], frame[l4 + 7]]);
    assert_eq!(
        field,
        pseudo_header_sum(&frame),
        "partial checksum = pseudo-header sum"
    );

    let deadline = Deadline::new(Duration::from_secs(5), "UDP probe on the vnet ring");
    let mut got = None;
    while got.is_none() {
        deadline.check();
        with_vnet
            .rx()
            .unwrap()
            .recv(Some(Duration::from_millis(50)), |f| {
                if is_probe(f.data) {
                    got = Some((f.meta, f.data.to_vec()));
                }
            })
            .unwrap();
    }
    let (meta, frame) = got.unwrap();
    let h = meta.vnet.expect("vnet header present");
    eprintln!("UDP with vnet: status {:#x}, {h:?}", meta.status);
    assert!(h.needs_csum(), "{h:?}");
    assert_eq!(h.gso_type, vnet::GSO_NONE);
    assert_eq!(usize::from(h.csum_start), ipv4_l4(&frame).unwrap().1);
    assert_eq!(h.csum_offset, 6, "UDP checksum is 6 bytes into the header");
    assert!(meta.csum_not_ready());
}

#[test]
fn tcp_bulk_arrives_as_gso_super_frames() {
    const BYTES: usize = 8 << 20;
    let lab = Lab::new();
    let mtu = lab
        .b
        .run(|| rvs_sys::iface::mtu(crate::lab::B_IF))
        .unwrap()
        .unwrap() as usize;
    let mut rx_b = lab.open_b(PacketConfig {
        rx: big_rx(),
        tx: None,
        vnet_hdr: true,
        ..PacketConfig::default()
    });
    let listener = lab
        .b
        .run(|| TcpListener::bind(SocketAddr::from((B_IP, 5001))).unwrap())
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break total;
            }
            total += n;
        }
    });
    let client = lab.a.spawn(|| {
        let mut s = TcpStream::connect(SocketAddr::from((B_IP, 5001))).unwrap();
        let chunk = vec![0x5au8; 1 << 16];
        for _ in 0..BYTES / chunk.len() {
            s.write_all(&chunk).unwrap();
        }
    });

    let deadline = Deadline::new(Duration::from_secs(20), "TCP bulk transfer");
    let (mut frames, mut supers, mut largest) = (0usize, 0usize, 0usize);
    let mut sample = None;
    while !(client.is_finished() && server.is_finished()) {
        deadline.check();
        rx_b.rx()
            .unwrap()
            .recv(Some(Duration::from_millis(20)), |f| {
                let Some((6, l4)) = ipv4_l4(f.data) else {
                    return;
                };
                if f.data[l4 + 2..l4 + 4] != 5001u16.to_be_bytes() {
                    return;
                }
                frames += 1;
                largest = largest.max(f.data.len());
                if f.data.len() > 14 + mtu {
                    supers += 1;
                    let h = f.meta.vnet.unwrap();
                    assert_eq!(h.gso_type & !vnet::GSO_ECN, vnet::GSO_TCPV4, "{h:?}");
                    assert!(
                        h.gso_size > 0 && usize::from(h.gso_size) <= mtu - 40,
                        "{h:?}"
                    );
                    assert!(h.needs_csum(), "{h:?}");
                    assert_eq!(usize::from(h.csum_start), l4);
                    assert_eq!(
                        h.csum_offset, 16,
                        "TCP checksum is 16 bytes into the header"
                    );
                    assert_eq!(f.meta.len as usize, f.data.len(), "not truncated");
                    sample.get_or_insert(h);
                }
            })
            .unwrap();
    }
    client.join().unwrap().unwrap();
    assert_eq!(server.join().unwrap(), BYTES);
    eprintln!(
        "TCP bulk {BYTES} B over MTU {mtu}: {frames} data frames seen, {supers} super-frames, \
         largest {largest} B, e.g. {sample:?}"
    );
    assert!(
        supers > 0,
        "no GSO super-frame seen (largest frame {largest})"
    );
    assert!(largest > 14 + mtu);
}

/// Builds an Ethernet/IPv4/TCP frame with `payload` bytes whose TCP checksum field holds
/// the pseudo-header sum (checksum-partial, as the kernel's own TSO frames do).
fn tcp_super_frame(src: [u8; 6], dst: [u8; 6], payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + payload) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&A_IP);
    ip[16..20].copy_from_slice(&B_IP);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5002u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH|ACK
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    f.extend_from_slice(&tcp);
    f.extend((0..payload).map(|i| i as u8));
    let p = pseudo_header_sum(&f);
    f[34 + 16..34 + 18].copy_from_slice(&p.to_be_bytes());
    f
}

#[test]
fn tx_ring_with_vnet_sends_a_gso_super_frame_whole() {
    const PAYLOAD: usize = 4 * 1400;
    let lab = Lab::new();
    let mut rx_b = lab.open_b(PacketConfig {
        rx: big_rx(),
        tx: None,
        vnet_hdr: true,
        ..PacketConfig::default()
    });
    let mut tx_a = lab.open_a(PacketConfig {
        rx: None,
        tx: Some(TxRingConfig {
            frame_size: 65536 + 4096,
            frame_count: 4,
        }),
        vnet_hdr: true,
        ..PacketConfig::default()
    });
    let frame = tcp_super_frame(lab.a_mac, lab.b_mac, PAYLOAD);
    let h = VirtioNetHdr {
        flags: vnet::F_NEEDS_CSUM,
        gso_type: vnet::GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1400,
        csum_start: 34,
        csum_offset: 16,
    };
    let tx = tx_a.tx().unwrap();
    assert!(tx.capacity() >= 65536);
    assert!(tx.send(&frame, Some(&h)).unwrap());
    assert!(tx.flush().unwrap());

    let deadline = Deadline::new(Duration::from_secs(5), "super-frame at the peer");
    let mut got = None;
    while got.is_none() {
        deadline.check();
        rx_b.rx()
            .unwrap()
            .recv(Some(Duration::from_millis(50)), |f| {
                if matches!(ipv4_l4(f.data), Some((6, l4)) if f.data[l4 + 2..l4 + 4] == 5002u16.to_be_bytes())
                {
                    got = Some((f.meta, f.data.to_vec()));
                }
            })
            .unwrap();
    }
    let (meta, data) = got.unwrap();
    eprintln!("super-frame received: {} B, {:?}", data.len(), meta.vnet);
    assert_eq!(data, frame, "delivered whole and unchanged");
    let rh = meta.vnet.unwrap();
    assert_eq!(rh.gso_type, vnet::GSO_TCPV4);
    assert_eq!(rh.gso_size, 1400);
    assert!(rh.needs_csum());
    assert_eq!((rh.csum_start, rh.csum_offset), (34, 16));
}

#[test]
fn tx_ring_without_vnet_refuses_frames_over_the_mtu() {
    let lab = Lab::new();
    let mut rx_b = lab.open_b(PacketConfig {
        rx: big_rx(),
        tx: None,
        ..PacketConfig::default()
    });
    let mut tx_a = lab.open_a(PacketConfig {
        rx: None,
        tx: Some(TxRingConfig {
            frame_size: 16384,
            frame_count: 4,
        }),
        ..PacketConfig::default()
    });
    let frame = tcp_super_frame(lab.a_mac, lab.b_mac, 4 * 1400);
    let tx = tx_a.tx().unwrap();
    assert!(tx.send(&frame, None).unwrap());
    // With PACKET_LOSS the kernel skips the malformed frame and frees its slot; the
    // flush itself reports success.
    let r = tx.flush();
    eprintln!("flush of an over-MTU frame without vnet: {r:?}");
    assert!(r.unwrap());
    // The ring keeps working: every slot comes back and MTU-sized frames go through.
    let deadline = Deadline::new(Duration::from_secs(2), "slots freed");
    for _ in 0..4 {
        while !tx.wait_writable(Duration::from_millis(50)).unwrap() {
            deadline.check();
        }
        assert!(tx.send(&frame[..1514], None).unwrap());
    }
    assert!(tx.flush().unwrap());
    let deadline = Deadline::new(Duration::from_secs(5), "MTU-sized frames at the peer");
    let (mut small, mut big) = (0, 0);
    while small < 4 {
        deadline.check();
        rx_b.rx()
            .unwrap()
            .recv(Some(Duration::from_millis(50)), |f| {
                if matches!(ipv4_l4(f.data), Some((6, l4)) if f.data[l4 + 2..l4 + 4] == 5002u16.to_be_bytes())
                {
                    if f.data.len() == 1514 { small += 1 } else { big += 1 }
                }
            })
            .unwrap();
    }
    assert_eq!(big, 0, "an over-MTU frame without a vnet header was sent");
}
