//! Two namespaces `a` and `b` joined by veth `veth-a` (10.99.0.1/24) ↔ `veth-b`
//! (10.99.0.2/24), torn down on drop; plus frame builders shared by the tests.

use std::time::{Duration, Instant};

use rvs_sys::netns::{Netns, veth_pair};
use rvs_sys::packet::{PacketConfig, PacketSocket};

pub(crate) const A_IF: &str = "veth-a";
pub(crate) const B_IF: &str = "veth-b";
pub(crate) const A_IP: [u8; 4] = [10, 99, 0, 1];
pub(crate) const B_IP: [u8; 4] = [10, 99, 0, 2];
/// IEEE 802 local experimental EtherType: no stack reacts to it.
pub(crate) const TEST_ETHERTYPE: u16 = 0x88b5;

pub(crate) struct Lab {
    // Field order: namespaces are dropped (deleted) after anything else in a test.
    pub(crate) a: Netns,
    pub(crate) b: Netns,
    pub(crate) a_mac: [u8; 6],
    pub(crate) b_mac: [u8; 6],
}

impl Lab {
    pub(crate) fn new() -> Lab {
        let a = Netns::new("rvs-sys-a").expect("create namespace a (are we root?)");
        let b = Netns::new("rvs-sys-b").expect("create namespace b");
        veth_pair(&a, A_IF, &b, B_IF).expect("create veth pair");
        a.add_addr(A_IF, "10.99.0.1/24").expect("address a");
        b.add_addr(B_IF, "10.99.0.2/24").expect("address b");
        let a_mac = a
            .run(|| rvs_sys::iface::mac_address(A_IF))
            .unwrap()
            .unwrap();
        let b_mac = b
            .run(|| rvs_sys::iface::mac_address(B_IF))
            .unwrap()
            .unwrap();
        // Static neighbours: no test depends on ARP timing.
        let (am, bm) = (mac_str(a_mac), mac_str(b_mac));
        a.ip([
            "neigh",
            "replace",
            "10.99.0.2",
            "lladdr",
            &bm,
            "dev",
            A_IF,
            "nud",
            "permanent",
        ])
        .expect("neighbour in a");
        b.ip([
            "neigh",
            "replace",
            "10.99.0.1",
            "lladdr",
            &am,
            "dev",
            B_IF,
            "nud",
            "permanent",
        ])
        .expect("neighbour in b");
        Lab { a, b, a_mac, b_mac }
    }

    pub(crate) fn open_a(&self, cfg: PacketConfig) -> PacketSocket {
        self.a
            .run(move || PacketSocket::open(A_IF, &cfg))
            .expect("enter a")
            .expect("packet socket on veth-a")
    }

    pub(crate) fn open_b(&self, cfg: PacketConfig) -> PacketSocket {
        self.b
            .run(move || PacketSocket::open(B_IF, &cfg))
            .expect("enter b")
            .expect("packet socket on veth-b")
    }
}

/// A test frame `seq` from `src` to `dst`: EtherType 0x88b5, then seq (BE u32) and a
/// pattern derived from it; length varies with seq between 60 and 1514 bytes.
pub(crate) fn test_frame(src: [u8; 6], dst: [u8; 6], seq: u32) -> Vec<u8> {
    let len = 60 + (seq as usize * 37) % (1514 - 60);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((seq as usize + f.len()) as u8);
    }
    f
}

/// The seq of a test frame, or None for any other frame.
pub(crate) fn test_seq(frame: &[u8]) -> Option<u32> {
    if frame.len() >= 18 && frame[12..14] == TEST_ETHERTYPE.to_be_bytes() {
        Some(u32::from_be_bytes(frame[14..18].try_into().unwrap()))
    } else {
        None
    }
}

/// A deadline helper: panics with `what` once `limit` has passed.
pub(crate) struct Deadline {
    end: Instant,
    what: &'static str,
}

impl Deadline {
    pub(crate) fn new(limit: Duration, what: &'static str) -> Deadline {
        Deadline {
            end: Instant::now() + limit,
            what,
        }
    }

    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.end
    }

    pub(crate) fn check(&self) {
        assert!(Instant::now() < self.end, "timed out: {}", self.what);
    }
}

/// For an Ethernet/IPv4 frame: (IP header offset 14, IHL bytes, protocol, L4 offset).
pub(crate) fn ipv4_l4(frame: &[u8]) -> Option<(u8, usize)> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    Some((frame[23], 14 + ihl))
}

/// Folded (not complemented) one's-complement sum of the IPv4 pseudo-header of the
/// frame's L4 segment: what a checksum-partial packet holds in its checksum field.
pub(crate) fn pseudo_header_sum(frame: &[u8]) -> u16 {
    let (proto, l4) = ipv4_l4(frame).unwrap();
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let l4_len = (total - (l4 - 14)) as u32;
    let mut sum: u32 = 0;
    for i in (26..34).step_by(2) {
        sum += u32::from(u16::from_be_bytes([frame[i], frame[i + 1]]));
    }
    sum += u32::from(proto) + l4_len;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
