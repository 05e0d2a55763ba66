//! The one-pass flow parse the engine runs on every received frame.
//!
//! [`parse`] reads Ethernet (with VLAN tags), then ARP, IPv4 or IPv6 (extension headers
//! walked), then the first bytes of TCP, UDP or ICMP, and returns everything the connection
//! lookup needs in one `Copy` struct. It validates lengths, not checksums (verify those where
//! it matters with the views), and it never allocates: a refusal is a [`Malformed`] reason
//! to count.

use super::ethernet::{self, EtherType};
use super::tcp::TcpFlags;
use super::{Malformed, ip_proto, ipv4, ipv6, rd16, rd32, tcp, udp};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network-layer protocol of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3Kind {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP (Ethernet/IPv4).
    Arp,
    /// Anything else: not the director's business (pass to the kernel or drop).
    Other,
}

/// Fragment facts of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragInfo {
    /// The packet is a fragment (MF set or offset non-zero; an IPv6 fragment header saying
    /// neither is an atomic fragment, which is not one, though its ident is reported).
    pub is_fragment: bool,
    /// Offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification (IPv4's 16 bits widened, or IPv6's 32).
    pub ident: u32,
}

impl FragInfo {
    /// True for a fragment with offset 0: the one that carries the L4 header.
    pub fn is_first(&self) -> bool {
        self.is_fragment && self.offset == 0
    }

    /// True for a fragment without the L4 header: hash it on addresses only.
    pub fn is_later(&self) -> bool {
        self.is_fragment && self.offset != 0
    }
}

/// What the engine needs from a frame. Offsets and lengths count from the frame start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Ethernet header length, tags included (also the L3 offset).
    pub l2_len: u16,
    /// VLAN id of the innermost tag.
    pub vlan: Option<u16>,
    /// EtherType behind the tags.
    pub ethertype: EtherType,
    /// Network-layer kind.
    pub l3: L3Kind,
    /// Offset of the L3 header (= `l2_len`).
    pub l3_offset: u16,
    /// Length of the L3 packet: IPv4 total length, IPv6 40 + payload length, 28 for ARP,
    /// the rest of the frame for other kinds. Bytes after it are padding.
    pub l3_len: u16,
    /// Source address (unspecified IPv4 for ARP and other kinds).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (0 for ARP and other kinds).
    pub protocol: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Offset of the L4 header.
    pub l4_offset: u16,
    /// TCP/UDP/SCTP source port, or the ICMP echo identifier; 0 when absent.
    pub src_port: u16,
    /// TCP/UDP/SCTP destination port; 0 when absent.
    pub dst_port: u16,
    /// TCP flags (empty for other protocols).
    pub tcp_flags: TcpFlags,
    /// Fragment facts.
    pub frag: FragInfo,
    /// ICMP (or ICMPv6) type and code.
    pub icmp: Option<(u8, u8)>,
    /// SCTP: the first chunk, read once here for the scheduling check and the state
    /// machine; `None` for other protocols, later fragments and packets without a whole
    /// chunk header.
    pub sctp: Option<super::sctp::FirstChunk>,
}

impl Parsed {
    fn empty(
        l2_len: u16,
        vlan: Option<u16>,
        ethertype: EtherType,
        l3: L3Kind,
        l3_len: u16,
    ) -> Parsed {
        Parsed {
            l2_len,
            vlan,
            ethertype,
            l3,
            l3_offset: l2_len,
            l3_len,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            protocol: 0,
            ttl: 0,
            l4_offset: l2_len,
            src_port: 0,
            dst_port: 0,
            tcp_flags: TcpFlags(0),
            frag: FragInfo::default(),
            icmp: None,
            sctp: None,
        }
    }

    /// The L3 packet's byte range in the frame.
    pub fn l3_range(&self) -> core::ops::Range<usize> {
        usize::from(self.l3_offset)..usize::from(self.l3_offset) + usize::from(self.l3_len)
    }

    /// The L4 bytes' range in the frame (to the end of the L3 packet).
    pub fn l4_range(&self) -> core::ops::Range<usize> {
        usize::from(self.l4_offset)..usize::from(self.l3_offset) + usize::from(self.l3_len)
    }
}

/// Parse an Ethernet frame in one pass.
#[inline]
pub fn parse(frame: &[u8]) -> Result<Parsed, Malformed> {
    match parse_simple_v4(frame) {
        Some(p) => Ok(p),
        None => parse_general(frame),
    }
}

/// The common case of [`parse`] in straight-line code: an untagged IPv4 frame without
/// options, not a fragment, carrying a well-formed TCP or UDP header. `None` for anything
/// else (the general parse decides). When `Some`, the result is exactly what
/// [`parse_general`] returns (see the differential test in `wire/tests.rs`).
#[inline]
pub fn parse_simple_v4(frame: &[u8]) -> Option<Parsed> {
    let s = simple_v4(frame)?;
    parsed_simple_v4(frame, &s)
}

/// [`parse_simple_v4`] of a frame whose checks [`simple_v4`] (or [`simple_v4_head`]) has
/// already passed with result `s`: the [`Parsed`] value without checking again. `None` only
/// for a frame shorter than 34 bytes (which `simple_v4` never accepts).
#[inline]
pub fn parsed_simple_v4(frame: &[u8], s: &SimpleV4) -> Option<Parsed> {
    let h = frame.get(..34)?;
    Some(Parsed {
        l2_len: 14,
        vlan: None,
        ethertype: EtherType::IPV4,
        l3: L3Kind::Ipv4,
        l3_offset: 14,
        l3_len: s.total,
        src: IpAddr::V4(Ipv4Addr::new(h[26], h[27], h[28], h[29])),
        dst: IpAddr::V4(Ipv4Addr::new(h[30], h[31], h[32], h[33])),
        protocol: s.protocol,
        ttl: h[22],
        l4_offset: 34,
        src_port: s.src_port,
        dst_port: s.dst_port,
        tcp_flags: TcpFlags(s.tcp_flags),
        frag: FragInfo {
            is_fragment: false,
            offset: 0,
            more: false,
            ident: u32::from(u16::from_be_bytes([h[18], h[19]])),
        },
        icmp: None,
        sctp: None,
    })
}

/// What [`simple_v4`] reads of a frame of the common case: the IPv4 header is at 14, the L4
/// header at 34, addresses at 26 and 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleV4 {
    /// IPv4 total length.
    pub total: u16,
    /// TCP or UDP.
    pub protocol: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
}

/// The checks and reads of [`parse_simple_v4`] without building a [`Parsed`]: the engine's
/// established-connection path reads the rest straight from the frame.
#[inline(always)]
pub fn simple_v4(frame: &[u8]) -> Option<SimpleV4> {
    let h: &[u8; 34] = frame.get(..34)?.try_into().ok()?;
    // EtherType IPv4 (no tag), version 4 with IHL 5, flags/offset without MF or an offset.
    if u32::from_be_bytes([h[12], h[13], h[14], h[20]]) & 0xffff_ff3f != 0x0800_4500 || h[21] != 0 {
        return None;
    }
    let total = u16::from_be_bytes([h[16], h[17]]);
    let protocol = h[23];
    let l4 = frame.get(34..14 + usize::from(total))?;
    let (src_port, dst_port, tcp_flags) = match protocol {
        ip_proto::TCP => {
            let b: &[u8; 20] = l4.get(..20)?.try_into().ok()?;
            let hl = usize::from(b[12] >> 4) * 4;
            if hl < 20 || l4.len() < hl {
                return None;
            }
            (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
                b[13],
            )
        }
        ip_proto::UDP => {
            let b: &[u8; 8] = l4.get(..8)?.try_into().ok()?;
            let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
            if len < 8 || len > l4.len() {
                return None;
            }
            (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
                0,
            )
        }
        _ => return None,
    };
    Some(SimpleV4 {
        total,
        protocol,
        src_port,
        dst_port,
        tcp_flags,
    })
}

/// The first 54 bytes of a frame: Ethernet, an IPv4 header without options and the first
/// 20 bytes of its L4 header, when [`simple_v4`] accepts the frame.
pub const SIMPLE_V4_HEAD: usize = 54;

/// [`simple_v4`] over a frame's first [`SIMPLE_V4_HEAD`] bytes `h` (the frame is `len` bytes
/// long): the same checks and the same result, with one length check instead of one per
/// field. Frames shorter than 54 bytes (a bare UDP header) are left to `simple_v4`'s callers'
/// general path.
#[inline(always)]
pub fn simple_v4_head(h: &[u8; SIMPLE_V4_HEAD], len: usize) -> Option<SimpleV4> {
    // EtherType IPv4 (no tag), version 4 with IHL 5 (any TOS); no MF, no offset (DF may be
    // set): two loads instead of four.
    if u32::from_be_bytes([h[12], h[13], h[14], h[15]]) & 0xffff_ff00 != 0x0800_4500
        || u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0
    {
        return None;
    }
    let total = u16::from_be_bytes([h[16], h[17]]);
    let end = 14 + usize::from(total);
    // `frame.get(34..end)`: the L4 bytes exist. A total below the 20-byte header leaves a
    // negative `l4_len`, which fails the header checks below as `simple_v4` refuses it
    // (until 2026-12-07 it wrapped to a huge unsigned length and passed them; the test
    // `head_checks_match_simple_v4` holds the two equal).
    if end > len {
        return None;
    }
    let l4_len = i32::from(total) - 20;
    let protocol = h[23];
    let tcp_flags = match protocol {
        ip_proto::TCP => {
            let hl = i32::from(h[46] >> 4) * 4;
            if hl < 20 || l4_len < hl {
                return None;
            }
            h[47]
        }
        ip_proto::UDP => {
            let ulen = i32::from(u16::from_be_bytes([h[38], h[39]]));
            if ulen < 8 || ulen > l4_len {
                return None;
            }
            0
        }
        _ => return None,
    };
    Some(SimpleV4 {
        total,
        protocol,
        src_port: u16::from_be_bytes([h[34], h[35]]),
        dst_port: u16::from_be_bytes([h[36], h[37]]),
        tcp_flags,
    })
}

/// [`parse`] without its IPv4 fast path: every kind of frame.
#[inline(never)]
pub fn parse_general(frame: &[u8]) -> Result<Parsed, Malformed> {
    let tags = ethernet::count_tags(frame)?;
    let l2 = ethernet::field::HEADER_LEN + ethernet::field::TAG_LEN * tags;
    let vlan = (tags > 0).then(|| rd16(frame, 14 + 4 * (tags - 1)) & 0x0fff);
    parse_l3(frame, l2, vlan, EtherType(rd16(frame, l2 - 2)))
}

/// Parse a bare IP packet (a TUN frame, a decapsulated inner packet): as [`parse`] with
/// `l2_len` 0, the kind taken from the version nibble.
pub fn parse_ip(packet: &[u8]) -> Result<Parsed, Malformed> {
    let et = match packet.first().map(|v| v >> 4) {
        Some(4) => EtherType::IPV4,
        Some(6) => EtherType::IPV6,
        Some(_) => return Err(Malformed::BadVersion),
        None => return Err(Malformed::Truncated),
    };
    parse_l3(packet, 0, None, et)
}

fn clamp16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn parse_l3(
    frame: &[u8],
    l2: usize,
    vlan: Option<u16>,
    et: EtherType,
) -> Result<Parsed, Malformed> {
    let l2_16 = clamp16(l2);
    let l3 = &frame[l2..];
    match et {
        EtherType::IPV4 => {
            let (hl, total) = ipv4::check(l3)?;
            let mut p = Parsed::empty(l2_16, vlan, et, L3Kind::Ipv4, clamp16(total));
            p.src = IpAddr::V4(Ipv4Addr::from(rd32(l3, 12)));
            p.dst = IpAddr::V4(Ipv4Addr::from(rd32(l3, 16)));
            p.protocol = l3[9];
            p.ttl = l3[8];
            let fo = rd16(l3, 6);
            p.frag = FragInfo {
                is_fragment: fo & 0x3fff != 0,
                offset: (fo & 0x1fff) << 3,
                more: fo & ipv4::FLAG_MF != 0,
                ident: u32::from(rd16(l3, 4)),
            };
            p.l4_offset = clamp16(l2 + hl);
            parse_l4(&mut p, &l3[hl..total])?;
            Ok(p)
        }
        EtherType::IPV6 => {
            let total = ipv6::check(l3)?;
            let mut p = Parsed::empty(l2_16, vlan, et, L3Kind::Ipv6, clamp16(total));
            let mut a = [0u8; 16];
            a.copy_from_slice(&l3[8..24]);
            p.src = IpAddr::V6(Ipv6Addr::from(a));
            a.copy_from_slice(&l3[24..40]);
            p.dst = IpAddr::V6(Ipv6Addr::from(a));
            p.ttl = l3[7];
            let w = ipv6::walk_ext(l3[6], &l3[ipv6::field::HEADER_LEN..total])?;
            p.protocol = w.protocol;
            if let Some(f) = w.fragment {
                // An atomic fragment (offset 0, no more fragments; RFC 6946) is a whole packet.
                p.frag = FragInfo {
                    is_fragment: f.offset != 0 || f.more,
                    offset: f.offset,
                    more: f.more,
                    ident: f.ident,
                };
            }
            p.l4_offset = clamp16(l2 + w.l4_offset);
            parse_l4(&mut p, &l3[w.l4_offset..total])?;
            Ok(p)
        }
        EtherType::ARP => {
            super::arp::ArpPacket::new_checked(l3)?;
            let mut p = Parsed::empty(l2_16, vlan, et, L3Kind::Arp, super::arp::field::LEN as u16);
            p.src = IpAddr::V4(Ipv4Addr::from(rd32(l3, 14)));
            p.dst = IpAddr::V4(Ipv4Addr::from(rd32(l3, 24)));
            Ok(p)
        }
        _ => Ok(Parsed::empty(
            l2_16,
            vlan,
            et,
            L3Kind::Other,
            clamp16(l3.len()),
        )),
    }
}

fn parse_l4(p: &mut Parsed, l4: &[u8]) -> Result<(), Malformed> {
    if p.frag.is_later() {
        return Ok(());
    }
    match p.protocol {
        ip_proto::TCP => {
            tcp::check(l4)?;
            p.src_port = rd16(l4, 0);
            p.dst_port = rd16(l4, 2);
            p.tcp_flags = TcpFlags(l4[13]);
        }
        ip_proto::UDP => {
            if p.frag.is_fragment {
                // The length field covers the reassembled datagram.
                if l4.len() < udp::field::HEADER_LEN {
                    return Err(Malformed::Truncated);
                }
            } else {
                udp::check(l4)?;
            }
            p.src_port = rd16(l4, 0);
            p.dst_port = rd16(l4, 2);
        }
        ip_proto::SCTP => {
            if l4.len() < 12 {
                return Err(Malformed::Truncated);
            }
            p.src_port = rd16(l4, 0);
            p.dst_port = rd16(l4, 2);
            p.sctp = super::sctp::FirstChunk::of(l4);
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            if l4.len() < super::icmp::field::HEADER_LEN {
                return Err(Malformed::Truncated);
            }
            p.icmp = Some((l4[0], l4[1]));
            let echo = matches!(
                (p.protocol, l4[0]),
                (ip_proto::ICMP, 0 | 8) | (ip_proto::ICMPV6, 128 | 129)
            );
            if echo {
                p.src_port = rd16(l4, 4);
            }
        }
        _ => {}
    }
    Ok(())
}
