//! In-place header rewrites on a parsed frame, with the checksum bookkeeping each needs.
//!
//! Addresses are part of the L4 pseudo-header, ports are not, and a frame whose L4 checksum
//! is `CHECKSUM_PARTIAL` holds only the pseudo-header sum in its checksum field. So:
//! - [`L4Csum::Full`]: the checksum is final; every change is an RFC 1624 update.
//! - [`L4Csum::Partial`]: the field holds the uncomplemented pseudo-header sum S; an address
//!   change updates S (S' = S - m + m', i.e. `!update(!S, m, m')`), a port change needs
//!   nothing (the sum over the segment is taken later, by the kernel or NIC).
//! - [`L4Csum::None`]: no L4 checksum to keep (a non-first fragment, UDP over IPv4 with
//!   checksum 0, or a caller that recomputes it in full afterwards).
//!
//! Offsets come from [`crate::wire::Parsed`]; the parse already proved them in bounds, and
//! every write here is bounds-checked again (a bad offset leaves the frame untouched rather
//! than panicking).

use crate::wire::Parsed;
use crate::wire::checksum::{update16, update32, update128};
use std::net::IpAddr;

/// How the L4 checksum of the frame being rewritten is to be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4Csum {
    /// Final checksum: incremental updates.
    Full,
    /// Partial (pseudo-header sum only): address updates only.
    Partial,
    /// Nothing to maintain.
    None,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;

/// Where the L4 checksum field of `p` lives, if its protocol covers the pseudo-header.
fn l4_csum_at(p: &Parsed) -> Option<usize> {
    let l4 = usize::from(p.l4_offset);
    match p.protocol {
        TCP => Some(l4 + 16),
        UDP => Some(l4 + 6),
        ICMPV6 => Some(l4 + 2),
        _ => None,
    }
}

fn rd16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn wr16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Which address of the IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Src,
    Dst,
}

/// Rewrite the source or destination address (same family as the packet), keeping the IPv4
/// header checksum and the L4 checksum right.
pub(crate) fn set_addr(buf: &mut [u8], p: &Parsed, which: Field, new: IpAddr, csum: L4Csum) {
    let l3 = usize::from(p.l3_offset);
    let l4_at = match csum {
        L4Csum::None => None,
        _ => l4_csum_at(p),
    };
    match new {
        IpAddr::V4(n) => {
            let at = l3 + if which == Field::Src { 12 } else { 16 };
            let Some(old) = buf
                .get(at..at + 4)
                .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
            else {
                return;
            };
            let new = u32::from(n);
            if let Some(s) = buf.get_mut(at..at + 4) {
                s.copy_from_slice(&new.to_be_bytes());
            }
            if let Some(hc) = rd16(buf, l3 + 10) {
                wr16(buf, l3 + 10, update32(hc, old, new));
            }
            if let Some(ca) = l4_at {
                update_l4_v4(buf, p, ca, old, new, csum);
            }
        }
        IpAddr::V6(n) => {
            let at = l3 + if which == Field::Src { 8 } else { 24 };
            let Some(old) = buf
                .get(at..at + 16)
                .and_then(|s| <[u8; 16]>::try_from(s).ok())
            else {
                return;
            };
            let (old, new) = (u128::from_be_bytes(old), u128::from(n));
            if let Some(s) = buf.get_mut(at..at + 16) {
                s.copy_from_slice(&new.to_be_bytes());
            }
            if let Some(ca) = l4_at
                && let Some(hc) = rd16(buf, ca)
            {
                let v = match csum {
                    L4Csum::Partial => !update128(!hc, old, new),
                    _ => update128(hc, old, new),
                };
                wr16(buf, ca, v);
            }
        }
    }
}

fn update_l4_v4(buf: &mut [u8], p: &Parsed, at: usize, old: u32, new: u32, csum: L4Csum) {
    let Some(hc) = rd16(buf, at) else {
        return;
    };
    let v = match csum {
        L4Csum::Partial => !update32(!hc, old, new),
        // UDP over IPv4 with checksum 0 carries none (RFC 768); a computed 0 goes out as
        // 0xffff so it does not turn into "none".
        _ if p.protocol == UDP && hc == 0 => return,
        _ => match update32(hc, old, new) {
            0 if p.protocol == UDP => 0xffff,
            v => v,
        },
    };
    wr16(buf, at, v);
}

/// Rewrite the source or destination port of a TCP or UDP packet.
pub(crate) fn set_port(buf: &mut [u8], p: &Parsed, which: Field, new: u16, csum: L4Csum) {
    let at = usize::from(p.l4_offset) + if which == Field::Src { 0 } else { 2 };
    let Some(old) = rd16(buf, at) else {
        return;
    };
    wr16(buf, at, new);
    if csum != L4Csum::Full {
        return;
    }
    let Some(ca) = l4_csum_at(p) else {
        return;
    };
    let Some(hc) = rd16(buf, ca) else {
        return;
    };
    if p.protocol == UDP && hc == 0 && p.src.is_ipv4() {
        return;
    }
    let v = match update16(hc, old, new) {
        0 if p.protocol == UDP => 0xffff,
        v => v,
    };
    wr16(buf, ca, v);
}

/// Set the Ethernet destination and source addresses.
pub(crate) fn set_macs(buf: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if let Some(s) = buf.get_mut(0..12) {
        s[..6].copy_from_slice(&dst);
        s[6..].copy_from_slice(&src);
    }
}

/// Swap the Ethernet addresses (for replies sent back where the frame came from).
pub(crate) fn swap_macs(buf: &mut [u8]) {
    if let Some(s) = buf.get_mut(0..12) {
        let (a, b) = s.split_at_mut(6);
        a.swap_with_slice(b);
    }
}
