//! Full L4 checksum recomputation and software completion of partial checksums.
//!
//! After a NAT rewrite of a frame that arrived [`CsumStatus::Partial`](super::CsumStatus),
//! or whenever incremental updates cannot be trusted, recompute the TCP, UDP, ICMPv4 or
//! ICMPv6 checksum from scratch with [`fill_l4_checksum`]. [`finish_partial`] does what the
//! kernel's `skb_checksum_help` does for a `CHECKSUM_PARTIAL` packet. Fragments are left
//! alone: their checksum covers bytes this packet does not carry.

use super::checksum;
use super::icmp::{Icmpv4Packet, Icmpv6Packet};
use super::tcp::TcpPacket;
use super::udp::UdpPacket;
use super::{Malformed, ip_proto, ipv4, ipv6, rd16, rd32, wr16};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Complete a partial checksum: sum `bytes[start..]` (whose checksum field already holds the
/// pseudo-header sum), complement, and store at `start + offset` (`0` is stored as `0xffff`,
/// which also equals zero, so a UDP checksum never turns into "none"). `bytes` must end where
/// the L4 data ends.
pub fn finish_partial(bytes: &mut [u8], start: usize, offset: usize) -> Result<(), Malformed> {
    let at = start.checked_add(offset).ok_or(Malformed::Truncated)?;
    if at.checked_add(2).is_none_or(|end| end > bytes.len()) {
        return Err(Malformed::Truncated);
    }
    let c = !checksum::sum(&bytes[start..]);
    wr16(bytes, at, checksum::udp_on_wire(c));
    Ok(())
}

/// Recompute the L4 checksum of the IP packet `l3` (starting at its IP header) in full.
/// Returns true if a checksum was written: false for fragments, for UDP over IPv4 that had
/// no checksum (zero stays zero), and for protocols without one here.
pub fn fill_l4_checksum(l3: &mut [u8]) -> Result<bool, Malformed> {
    match l3.first().map(|v| v >> 4) {
        Some(4) => {
            let (hl, total) = ipv4::check(l3)?;
            if rd16(l3, 6) & 0x3fff != 0 {
                return Ok(false);
            }
            let (src, dst, proto) = (
                Ipv4Addr::from(rd32(l3, 12)),
                Ipv4Addr::from(rd32(l3, 16)),
                l3[9],
            );
            let l4 = &mut l3[hl..total];
            fill_v4(l4, src, dst, proto)
        }
        Some(6) => {
            let total = ipv6::check(l3)?;
            let w = ipv6::walk_ext(l3[6], &l3[ipv6::field::HEADER_LEN..total])?;
            if w.fragment.is_some_and(|f| f.offset != 0 || f.more) {
                return Ok(false);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&l3[8..24]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&l3[24..40]);
            let dst = Ipv6Addr::from(a);
            fill_v6(&mut l3[w.l4_offset..total], src, dst, w.protocol)
        }
        Some(_) => Err(Malformed::BadVersion),
        None => Err(Malformed::Truncated),
    }
}

fn fill_v4(l4: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Result<bool, Malformed> {
    match proto {
        ip_proto::TCP => TcpPacket::new_checked(l4)?.fill_checksum_v4(src, dst),
        ip_proto::UDP => {
            let mut u = UdpPacket::new_checked(l4)?;
            if u.checksum() == 0 {
                return Ok(false);
            }
            u.fill_checksum_v4(src, dst);
        }
        ip_proto::ICMP => Icmpv4Packet::new_checked(l4)?.fill_checksum(),
        _ => return Ok(false),
    }
    Ok(true)
}

fn fill_v6(l4: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, proto: u8) -> Result<bool, Malformed> {
    match proto {
        ip_proto::TCP => TcpPacket::new_checked(l4)?.fill_checksum_v6(src, dst),
        ip_proto::UDP => UdpPacket::new_checked(l4)?.fill_checksum_v6(src, dst),
        ip_proto::ICMPV6 => Icmpv6Packet::new_checked(l4)?.fill_checksum(src, dst),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The pseudo-header sum a `CHECKSUM_PARTIAL` sender leaves in the L4 checksum field (folded,
/// not complemented): for building partial packets in tests and for re-partialising after a
/// rewrite.
pub fn partial_seed_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: u16) -> u16 {
    checksum::fold(checksum::pseudo_v4(src, dst, proto, l4_len))
}

/// IPv6 counterpart of [`partial_seed_v4`].
pub fn partial_seed_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4_len: u32) -> u16 {
    checksum::fold(checksum::pseudo_v6(src, dst, proto, l4_len))
}
