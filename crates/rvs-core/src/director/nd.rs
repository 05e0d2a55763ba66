//! IPv6 neighbour discovery, the part a director needs (RFC 4861): read solicitations and
//! advertisements, answer a solicitation for an owned address in place, and build
//! solicitations and unsolicited advertisements.
//!
//! Not here: router discovery, redirects, duplicate address detection. The NUD state
//! machine is the neighbour table's (`director/neigh.rs`).

use crate::wire::{self, Parsed};
use std::net::Ipv6Addr;

/// ICMPv6 type of a neighbour solicitation.
const NS: u8 = 135;
/// ICMPv6 type of a neighbour advertisement.
const NA: u8 = 136;
/// Option: source link-layer address.
const OPT_SLLA: u8 = 1;
/// Option: target link-layer address.
const OPT_TLLA: u8 = 2;
/// ICMPv6 length of an NS / NA with one link-layer option.
const ND_LEN: usize = 32;

/// A neighbour-discovery message of interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nd {
    /// Who has `target`?
    Solicit {
        target: Ipv6Addr,
        source_mac: Option<[u8; 6]>,
    },
    /// `target` is at `target_mac`; `solicited`: the S flag (an answer to a solicitation).
    Advert {
        target: Ipv6Addr,
        target_mac: Option<[u8; 6]>,
        solicited: bool,
    },
}

fn addr_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let a: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(a))
}

/// The link-layer address option of `kind` in the options from `at` to `end`.
fn lla_option(b: &[u8], mut at: usize, end: usize, kind: u8) -> Option<[u8; 6]> {
    while at + 8 <= end {
        let (ty, len) = (*b.get(at)?, usize::from(*b.get(at + 1)?) * 8);
        if len == 0 {
            return None;
        }
        if ty == kind && len >= 8 {
            return b.get(at + 2..at + 8)?.try_into().ok();
        }
        at += len;
    }
    None
}

/// Read an NS or NA (RFC 4861 §4.3, §4.4). Hop limit must be 255 (§7.1.1).
pub(crate) fn inspect(b: &[u8], p: &Parsed) -> Option<Nd> {
    if p.ttl != 255 {
        return None;
    }
    let l4 = usize::from(p.l4_offset);
    let end = (usize::from(p.l3_offset) + usize::from(p.l3_len)).min(b.len());
    let target = addr_at(b, l4 + 8)?;
    match p.icmp?.0 {
        NS => Some(Nd::Solicit {
            target,
            source_mac: lla_option(b, l4 + 24, end, OPT_SLLA),
        }),
        NA => Some(Nd::Advert {
            target,
            target_mac: lla_option(b, l4 + 24, end, OPT_TLLA),
            solicited: b.get(l4 + 4).is_some_and(|f| f & 0x40 != 0),
        }),
        _ => None,
    }
}

/// Write an NA body (ICMPv6 from `l4`) for `target` at `mac` with `flags` (R S O bits).
fn write_na(b: &mut [u8], l4: usize, flags: u8, target: Ipv6Addr, mac: [u8; 6]) {
    b[l4] = NA;
    b[l4 + 1] = 0;
    b[l4 + 2..l4 + 4].fill(0);
    b[l4 + 4] = flags;
    b[l4 + 5..l4 + 8].fill(0);
    b[l4 + 8..l4 + 24].copy_from_slice(&target.octets());
    b[l4 + 24] = OPT_TLLA;
    b[l4 + 25] = 1;
    b[l4 + 26..l4 + 32].copy_from_slice(&mac);
}

/// Write the Ethernet and IPv6 headers of an ND message with a 32-byte ICMPv6 body.
fn write_headers(b: &mut [u8], dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr) {
    b[0..6].copy_from_slice(&dst_mac);
    b[6..12].copy_from_slice(&src_mac);
    b[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    b[14..18].copy_from_slice(&[0x60, 0, 0, 0]);
    b[18..20].copy_from_slice(&(ND_LEN as u16).to_be_bytes());
    b[20] = 58;
    b[21] = 255;
    b[22..38].copy_from_slice(&src.octets());
    b[38..54].copy_from_slice(&dst.octets());
}

fn fill_checksum(b: &mut [u8], l3: usize) {
    let _ = wire::fill_l4_checksum(&mut b[l3..l3 + 40 + ND_LEN]);
}

/// Turn a solicitation for `target` into our advertisement, in place (RFC 4861 §7.2.4):
/// to the solicitation's source (all-nodes if it was unspecified), Solicited + Override.
/// Returns false if the frame is too short to hold the answer (then nothing was changed).
pub(crate) fn advertise_in_place(b: &mut [u8], p: &Parsed, me: [u8; 6], target: Ipv6Addr) -> bool {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    // Only a frame without extension headers, long enough for the answer.
    if l4 != l3 + 40 || b.len() < l4 + ND_LEN || l3 != 14 {
        return false;
    }
    let std::net::IpAddr::V6(src) = p.src else {
        return false;
    };
    let (dst, dst_mac, flags) = if src.is_unspecified() {
        (
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            [0x33, 0x33, 0, 0, 0, 1],
            0x20,
        )
    } else {
        let mut m = [0u8; 6];
        m.copy_from_slice(&b[6..12]);
        (src, m, 0x60)
    };
    write_headers(b, dst_mac, me, target, dst);
    write_na(b, l4, flags, target, me);
    fill_checksum(b, l3);
    true
}

/// Build a neighbour solicitation for `target` into `b` (at least 86 bytes): to its
/// solicited-node group, or (`unicast`, a NUD probe, RFC 4861 §7.3.3) to the target itself
/// at its known MAC. Returns the frame length.
pub(crate) fn solicit(
    b: &mut [u8],
    mac: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
    unicast: Option<[u8; 6]>,
) -> usize {
    let t = target.octets();
    // Solicited-node multicast ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
    let dst = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    match unicast {
        Some(to) => write_headers(b, to, mac, src, target),
        None => write_headers(b, [0x33, 0x33, 0xff, t[13], t[14], t[15]], mac, src, dst),
    }
    let l4 = 54;
    b[l4] = NS;
    b[l4 + 1..l4 + 8].fill(0);
    b[l4 + 8..l4 + 24].copy_from_slice(&t);
    b[l4 + 24] = OPT_SLLA;
    b[l4 + 25] = 1;
    b[l4 + 26..l4 + 32].copy_from_slice(&mac);
    fill_checksum(b, 14);
    l4 + ND_LEN
}

/// Build an unsolicited advertisement of `ip` at `mac` to all nodes (Override set), what a
/// director sends when it takes an IPv6 VIP over; returns the frame length.
pub(crate) fn unsolicited_na(b: &mut [u8], mac: [u8; 6], ip: Ipv6Addr) -> usize {
    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    write_headers(b, [0x33, 0x33, 0, 0, 0, 1], mac, ip, all);
    write_na(b, 54, 0x20, ip, mac);
    fill_checksum(b, 14);
    54 + ND_LEN
}
