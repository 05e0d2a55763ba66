//! Address and port rewrite of a whole IP packet, as NAT, FullNAT and ICMP-error forwarding
//! need it, with the checksums kept right in every case the I/O layer can hand over.
//!
//! [`rewrite`] changes addresses in the IP header and ports in TCP/UDP/SCTP, and carries the
//! change into the IPv4 header checksum and the L4 checksum incrementally (RFC 1624); SCTP's
//! CRC32c, which no incremental update can follow, is recomputed when a port changes. If the frame
//! arrived checksum-partial, the L4 field holds the pseudo-header *sum* rather than a
//! checksum: the address change is then applied to that sum (as the kernel's
//! `inet_proto_csum_replace4` does for `CHECKSUM_PARTIAL`) and port changes leave it alone,
//! so the frame stays partial and can still be offloaded. [`rewrite_icmp_error`] rewrites an
//! ICMP error and the packet it quotes. Nothing here chooses the new addresses.

use super::checksum;
use super::icmp::{Icmpv4Packet, Icmpv6Packet};
use super::{Malformed, ip_proto, rd16, wr16};
use std::net::IpAddr;

/// The new values; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatRewrite {
    /// New source address.
    pub src: Option<IpAddr>,
    /// New destination address.
    pub dst: Option<IpAddr>,
    /// New source port (TCP, UDP, SCTP).
    pub src_port: Option<u16>,
    /// New destination port (TCP, UDP, SCTP).
    pub dst_port: Option<u16>,
}

/// Why a rewrite was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteError {
    /// The packet is malformed (the sender's fault).
    Malformed(Malformed),
    /// A new address of the other family than the packet's (the caller's fault).
    FamilyMismatch,
    /// An ICMP rewrite asked of a packet that is not an ICMP error.
    NotIcmpError,
    /// A port change in a fragment of an SCTP packet: its CRC32c covers the whole packet,
    /// which a fragment does not hold (the kernel reassembles before IPVS sees it).
    SctpFragment,
}

impl From<Malformed> for RewriteError {
    fn from(m: Malformed) -> RewriteError {
        RewriteError::Malformed(m)
    }
}

impl core::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RewriteError::Malformed(m) => write!(f, "malformed packet: {m}"),
            RewriteError::FamilyMismatch => f.write_str("new address of the wrong family"),
            RewriteError::NotIcmpError => f.write_str("not an ICMP error message"),
            RewriteError::SctpFragment => {
                f.write_str("SCTP port change in a fragment (the CRC32c needs the whole packet)")
            }
        }
    }
}

impl std::error::Error for RewriteError {}

/// An address change as (old, new) 128-bit values, for the checksum arithmetic.
#[derive(Clone, Copy)]
enum AddrChange {
    V4(u32, u32),
    V6(u128, u128),
}

impl AddrChange {
    /// Apply to a checksum (`partial`: to a pseudo-header sum).
    fn apply(self, field: u16, partial: bool) -> u16 {
        let upd = |hc: u16| match self {
            AddrChange::V4(o, n) => checksum::update32(hc, o, n),
            AddrChange::V6(o, n) => checksum::update128(hc, o, n),
        };
        if partial { !upd(!field) } else { upd(field) }
    }
}

/// Write `new` over the address at `at`, returning the change.
fn swap_addr(l3: &mut [u8], at: usize, new: IpAddr) -> Result<AddrChange, RewriteError> {
    let v6 = l3[0] >> 4 == 6;
    match new {
        IpAddr::V4(a) if !v6 => {
            let old = super::rd32(l3, at);
            l3[at..at + 4].copy_from_slice(&a.octets());
            Ok(AddrChange::V4(old, u32::from(a)))
        }
        IpAddr::V6(a) if v6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&l3[at..at + 16]);
            l3[at..at + 16].copy_from_slice(&a.octets());
            Ok(AddrChange::V6(u128::from_be_bytes(o), u128::from(a)))
        }
        _ => Err(RewriteError::FamilyMismatch),
    }
}

/// Rewrite addresses and ports of the IP packet `l3` (starting at its IP header). `partial`
/// says the L4 checksum field holds a pseudo-header sum ([`super::CsumStatus::Partial`]).
/// Fragments after the first get their addresses rewritten only (their L4 checksum lives in
/// the first fragment, whose rewrite accounts for the address change).
pub fn rewrite(l3: &mut [u8], partial: bool, rw: &NatRewrite) -> Result<(), RewriteError> {
    let p = super::parse::parse_ip(l3)?;
    rewrite_at(
        l3,
        p.protocol,
        usize::from(p.l4_offset),
        p.frag,
        partial,
        rw,
    )
}

/// [`rewrite`] for a frame the engine has already parsed with [`super::parse()`]: no second
/// parse. `p` must come from these bytes (a `Parsed` of another frame gives an error or a
/// wrong rewrite, never a panic).
pub fn rewrite_parsed(
    frame: &mut [u8],
    p: &super::Parsed,
    partial: bool,
    rw: &NatRewrite,
) -> Result<(), RewriteError> {
    let l3 = frame.get_mut(p.l3_range()).ok_or(Malformed::Truncated)?;
    let l4_offset = usize::from(p.l4_offset)
        .checked_sub(usize::from(p.l3_offset))
        .ok_or(Malformed::Truncated)?;
    rewrite_at(l3, p.protocol, l4_offset, p.frag, partial, rw)
}

fn rewrite_at(
    l3: &mut [u8],
    protocol: u8,
    l4_offset: usize,
    frag: super::FragInfo,
    partial: bool,
    rw: &NatRewrite,
) -> Result<(), RewriteError> {
    let later_fragment = frag.is_later();
    let v6 = match l3.first().map(|v| v >> 4) {
        Some(4) if l3.len() >= 20 => false,
        Some(6) if l3.len() >= 40 => true,
        Some(4 | 6) | None => return Err(Malformed::Truncated.into()),
        Some(_) => return Err(Malformed::BadVersion.into()),
    };
    let (src_at, dst_at) = if v6 { (8, 24) } else { (12, 16) };
    // Check families before writing anything.
    for a in [rw.src, rw.dst].into_iter().flatten() {
        if a.is_ipv6() != v6 {
            return Err(RewriteError::FamilyMismatch);
        }
    }
    let mut changes: [Option<AddrChange>; 2] = [None, None];
    if let Some(a) = rw.src {
        changes[0] = Some(swap_addr(l3, src_at, a)?);
    }
    if let Some(a) = rw.dst {
        changes[1] = Some(swap_addr(l3, dst_at, a)?);
    }
    if !v6 {
        let mut hc = rd16(l3, 10);
        for c in changes.iter().flatten() {
            hc = c.apply(hc, false);
        }
        wr16(l3, 10, hc);
    }
    if later_fragment {
        return Ok(());
    }
    if protocol == ip_proto::SCTP {
        return rewrite_sctp(l3, l4_offset, frag.is_fragment, partial, rw);
    }
    let (csum_at, ports) = match protocol {
        ip_proto::TCP => (Some(16), true),
        ip_proto::UDP => (Some(6), true),
        ip_proto::ICMPV6 => (Some(2), false),
        _ => (None, false),
    };
    let Some(csum_at) = csum_at else {
        return Ok(());
    };
    let l4 = match l3.get_mut(l4_offset..) {
        Some(l4) if l4.len() >= csum_at + 2 => l4,
        _ => return Err(Malformed::Truncated.into()),
    };
    let udp_none = protocol == ip_proto::UDP && !partial && rd16(l4, 6) == 0;
    let mut hc = rd16(l4, csum_at);
    for c in changes.iter().flatten() {
        hc = c.apply(hc, partial);
    }
    if ports {
        for (at, new) in [(0, rw.src_port), (2, rw.dst_port)] {
            if let Some(new) = new {
                let old = rd16(l4, at);
                wr16(l4, at, new);
                if !partial {
                    hc = checksum::update16(hc, old, new);
                }
            }
        }
    }
    if udp_none {
        return Ok(()); // IPv4 UDP without checksum stays without.
    }
    if protocol == ip_proto::UDP && !partial {
        hc = checksum::udp_on_wire(hc);
    }
    wr16(l4, csum_at, hc);
    Ok(())
}

/// The SCTP part of a rewrite: the CRC32c has no pseudo-header, so address changes leave it
/// valid; a port change (or a checksum-partial packet, whose CRC was never computed) needs
/// it recomputed over the whole packet, as `sctp_snat_handler()` / `sctp_dnat_handler()` do
/// ("Only update csum if we really have to").
fn rewrite_sctp(
    l3: &mut [u8],
    l4_offset: usize,
    fragment: bool,
    partial: bool,
    rw: &NatRewrite,
) -> Result<(), RewriteError> {
    let l4 = match l3.get_mut(l4_offset..) {
        Some(l4) if l4.len() >= super::sctp::field::HEADER_LEN => l4,
        _ => return Err(Malformed::Truncated.into()),
    };
    let changes = [(0, rw.src_port), (2, rw.dst_port)]
        .into_iter()
        .any(|(at, new)| new.is_some_and(|n| n != rd16(l4, at)));
    if !changes && !partial {
        return Ok(());
    }
    if fragment {
        return Err(RewriteError::SctpFragment);
    }
    for (at, new) in [(0, rw.src_port), (2, rw.dst_port)] {
        if let Some(new) = new {
            wr16(l4, at, new);
        }
    }
    super::sctp::SctpPacket::new_unchecked(l4).fill_checksum();
    Ok(())
}

/// [`rewrite_parsed`]'s common case in one pass: an IPv4 TCP or UDP packet `l3` (IHL and
/// L4 header already checked by the parser), not a later fragment. All address and port
/// changes are summed into each checksum at once (RFC 1624 eqn. 3 over every changed 16-bit
/// word, which gives the very bytes of applying the changes one at a time: one's-complement
/// addition is associative). With `partial` the L4 field holds the uncomplemented
/// pseudo-header sum (`CHECKSUM_PARTIAL`): only the address changes go into it, as in
/// [`rewrite`]. Returns false, having written nothing, if `l3` is too short for the
/// headers; the caller then takes the general path.
#[inline(always)]
pub fn rewrite_v4_l4(
    l3: &mut [u8],
    l4_offset: usize,
    protocol: u8,
    src: Option<([u8; 4], Option<u16>)>,
    dst: Option<([u8; 4], Option<u16>)>,
    partial: bool,
) -> bool {
    let csum_at = match protocol {
        ip_proto::TCP => 16,
        ip_proto::UDP => 6,
        _ => return false,
    };
    if l4_offset < 20 || l3.len() < l4_offset + csum_at + 2 {
        return false;
    }
    let (ip, l4) = l3.split_at_mut(l4_offset);
    // ~m + m' of each changed 16-bit word (RFC 1624 eqn. 3), summed: at most nine 16-bit
    // terms with the old checksum, well below 2^32.
    let word = |b: &[u8], at: usize| u32::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let mut addr_delta = 0u32;
    if let Some((new, _)) = src {
        addr_delta += (word(ip, 12) ^ 0xffff) + (word(ip, 14) ^ 0xffff);
        ip[12..16].copy_from_slice(&new);
        addr_delta += word(ip, 12) + word(ip, 14);
    }
    if let Some((new, _)) = dst {
        addr_delta += (word(ip, 16) ^ 0xffff) + (word(ip, 18) ^ 0xffff);
        ip[16..20].copy_from_slice(&new);
        addr_delta += word(ip, 16) + word(ip, 18);
    }
    let hc = word(ip, 10) ^ 0xffff;
    wr16(ip, 10, !checksum::fold32(hc + addr_delta));
    let old_csum = word(l4, csum_at);
    if partial {
        // S' = S + the address deltas; ports are summed later, by whoever completes it.
        for (at, new) in [(0, src.and_then(|s| s.1)), (2, dst.and_then(|d| d.1))] {
            if let Some(new) = new {
                wr16(l4, at, new);
            }
        }
        wr16(l4, csum_at, checksum::fold32(old_csum + addr_delta));
        return true;
    }
    let mut acc = (old_csum ^ 0xffff) + addr_delta;
    if let Some(new) = src.and_then(|s| s.1) {
        acc += (word(l4, 0) ^ 0xffff) + u32::from(new);
        wr16(l4, 0, new);
    }
    if let Some(new) = dst.and_then(|d| d.1) {
        acc += (word(l4, 2) ^ 0xffff) + u32::from(new);
        wr16(l4, 2, new);
    }
    if protocol == ip_proto::UDP {
        // IPv4 UDP without checksum stays without; a computed 0 goes out as 0xffff.
        if old_csum != 0 {
            wr16(l4, csum_at, checksum::udp_on_wire(!checksum::fold32(acc)));
        }
    } else {
        wr16(l4, csum_at, !checksum::fold32(acc));
    }
    true
}

/// [`rewrite_v4_l4`] of a client's packet towards a NAT or FullNAT real server, over the
/// frame's first 54 bytes as [`super::parse::simple_v4_head`] accepted them: destination
/// `dst` (address, port), source `src` for FullNAT. The same bytes as `rewrite_v4_l4`
/// (the same 16-bit terms go into each sum), without its length checks.
#[inline(always)]
pub fn rewrite_v4_head(
    h: &mut [u8; super::parse::SIMPLE_V4_HEAD],
    protocol: u8,
    src: Option<([u8; 4], u16)>,
    dst: ([u8; 4], u16),
    partial: bool,
) {
    // One's-complement sums do not depend on byte order (RFC 1071 section 2 (B)) and may be
    // taken over 32-bit words with end-around carry, folded to 16 bits at the end (section
    // 4.1): every word is read and written in the machine's order, the new ports converted
    // once. Each sum is zero only when all its terms are, so every result is the same
    // 16-bit value as `rewrite_v4_l4`'s (the test `head_rewrite_matches_l4_rewrite`).
    let rd32 =
        |h: &[u8; 54], at: usize| u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let rd = |h: &[u8; 54], at: usize| u16::from_ne_bytes([h[at], h[at + 1]]);
    let wr = |h: &mut [u8; 54], at: usize, v: u16| {
        let [a, b] = v.to_ne_bytes();
        h[at] = a;
        h[at + 1] = b;
    };
    let ne = |port: u16| u16::from_ne_bytes(port.to_be_bytes());
    // ~m + m' of each changed word (RFC 1624 eqn. 3).
    let mut addr_delta = add1c(!rd32(h, 30), u32::from_ne_bytes(dst.0));
    h[30..34].copy_from_slice(&dst.0);
    if let Some((new, _)) = src {
        addr_delta = add1c(addr_delta, add1c(!rd32(h, 26), u32::from_ne_bytes(new)));
        h[26..30].copy_from_slice(&new);
    }
    let hc = u32::from(!rd(h, 24));
    wr(h, 24, !fold1c(add1c(hc, addr_delta)));
    let csum_at = if protocol == ip_proto::TCP {
        34 + 16
    } else {
        34 + 6
    };
    let old_csum = rd(h, csum_at);
    let dport = ne(dst.1);
    if partial {
        if let Some((_, port)) = src {
            wr(h, 34, ne(port));
        }
        wr(h, 36, dport);
        wr(h, csum_at, fold1c(add1c(u32::from(old_csum), addr_delta)));
        return;
    }
    // Three 16-bit terms: no carry out of 32 bits.
    let mut ports = u32::from(!old_csum) + u32::from(!rd(h, 36)) + u32::from(dport);
    wr(h, 36, dport);
    if let Some((_, port)) = src {
        let port = ne(port);
        ports += u32::from(!rd(h, 34)) + u32::from(port);
        wr(h, 34, port);
    }
    let acc = add1c(ports, addr_delta);
    if protocol == ip_proto::TCP {
        wr(h, csum_at, !fold1c(acc));
    } else if old_csum != 0 {
        // IPv4 UDP without checksum stays without; a computed 0 goes out as 0xffff (both
        // the same in either byte order).
        wr(h, csum_at, checksum::udp_on_wire(!fold1c(acc)));
    }
}

/// One's-complement sum of two 32-bit words (end-around carry). Zero only when both are.
#[inline(always)]
fn add1c(a: u32, b: u32) -> u32 {
    let (s, c) = a.overflowing_add(b);
    s + u32::from(c)
}

/// A 32-bit one's-complement sum folded to 16 bits: the same value as
/// [`checksum::fold32`].
#[inline(always)]
fn fold1c(a: u32) -> u16 {
    let (s, c) = ((a >> 16) as u16).overflowing_add(a as u16);
    s + u16::from(c)
}

/// Rewrite an ICMP error: the outer header by `outer`, the quoted packet by `quoted` (its
/// IPv4 header checksum and, where quoted, its L4 checksum follow), then recompute the ICMP
/// checksum in full. For NAT the quoted packet is the reply direction: a client's error about
/// a packet from the VIP is rewritten to quote the real server (`quoted.src`,
/// `quoted.src_port`) while `outer.dst` becomes the real server.
pub fn rewrite_icmp_error(
    l3: &mut [u8],
    outer: &NatRewrite,
    quoted: &NatRewrite,
) -> Result<(), RewriteError> {
    let p = super::parse::parse_ip(l3)?;
    if p.frag.is_fragment {
        return Err(RewriteError::NotIcmpError);
    }
    let is_err = match (p.protocol, p.icmp) {
        (ip_proto::ICMP, Some((t, _))) => super::icmp::is_v4_error(t),
        (ip_proto::ICMPV6, Some((t, _))) => super::icmp::is_v6_error(t),
        _ => false,
    };
    if !is_err {
        return Err(RewriteError::NotIcmpError);
    }
    let ports = NatRewrite {
        src: outer.src,
        dst: outer.dst,
        src_port: None,
        dst_port: None,
    };
    rewrite(l3, false, &ports)?;
    let p = super::parse::parse_ip(l3)?;
    let (src, dst) = (p.src, p.dst);
    let l4 = &mut l3[usize::from(p.l4_offset)..usize::from(p.l3_len)];
    {
        let mut q =
            super::icmp::QuotedPacket::new_checked(&mut l4[super::icmp::field::HEADER_LEN..])?;
        for (new, set_src) in [(quoted.src, true), (quoted.dst, false)] {
            if let Some(a) = new {
                let ok = if set_src {
                    q.set_src_addr(a)
                } else {
                    q.set_dst_addr(a)
                };
                if !ok {
                    return Err(RewriteError::FamilyMismatch);
                }
            }
        }
        if let Some(port) = quoted.src_port {
            q.set_src_port(port);
        }
        if let Some(port) = quoted.dst_port {
            q.set_dst_port(port);
        }
    }
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => Icmpv6Packet::new_checked(l4)?.fill_checksum(s, d),
        _ => Icmpv4Packet::new_checked(l4)?.fill_checksum(),
    }
    Ok(())
}
