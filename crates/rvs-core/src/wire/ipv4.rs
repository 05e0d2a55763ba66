//! IPv4 headers (RFC 791), options included, with in-place rewrite.
//!
//! Address setters and the TTL decrement keep the header checksum right incrementally
//! (RFC 1624); other setters leave it to [`Ipv4Packet::fill_checksum`]. Options are exposed
//! as bytes, not interpreted; fragments are described, not reassembled.

use super::checksum;
use super::{Malformed, rd16, rd32, wr16};
use std::net::Ipv4Addr;

/// Byte ranges of the IPv4 header.
pub mod field {
    use core::ops::Range;
    /// Version (high nibble) and IHL (low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits).
    pub const DSCP_ECN: usize = 1;
    /// Total length.
    pub const LENGTH: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (reserved, DF, MF) and fragment offset in 8-byte units.
    pub const FLG_OFF: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 12..16;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 16..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// Don't-fragment flag in the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag in the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// Check an IPv4 header: returns (header length, total length).
pub(crate) fn check(b: &[u8]) -> Result<(usize, usize), Malformed> {
    if b.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    if b[0] >> 4 != 4 {
        return Err(Malformed::BadVersion);
    }
    let hl = usize::from(b[0] & 0x0f) * 4;
    if hl < field::HEADER_LEN {
        return Err(Malformed::BadIhl);
    }
    if b.len() < hl {
        return Err(Malformed::Truncated);
    }
    let total = usize::from(rd16(b, 2));
    if total < hl {
        return Err(Malformed::BadTotalLen);
    }
    if total > b.len() {
        return Err(Malformed::Truncated);
    }
    Ok((hl, total))
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap without checks.
    pub fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wrap, checking version, IHL and total length against the buffer (which may be longer:
    /// Ethernet padding).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, Malformed> {
        check(buffer.as_ref())?;
        Ok(Ipv4Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version (4 after `new_checked`).
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[0] & 0x0f) * 4
    }

    /// DSCP.
    pub fn dscp(&self) -> u8 {
        self.b()[field::DSCP_ECN] >> 2
    }

    /// ECN.
    pub fn ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN] & 3
    }

    /// The whole TOS byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }

    /// Total length.
    pub fn total_len(&self) -> u16 {
        rd16(self.b(), 2)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        rd16(self.b(), 4)
    }

    /// Don't fragment.
    pub fn dont_frag(&self) -> bool {
        rd16(self.b(), 6) & FLAG_DF != 0
    }

    /// More fragments.
    pub fn more_frags(&self) -> bool {
        rd16(self.b(), 6) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (rd16(self.b(), 6) & 0x1fff) << 3
    }

    /// True for any fragment (MF set or offset non-zero).
    pub fn is_fragment(&self) -> bool {
        rd16(self.b(), 6) & 0x3fff != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    /// Header checksum.
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), 10)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(rd32(self.b(), 12))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(rd32(self.b(), 16))
    }

    fn hl_clamped(&self) -> usize {
        self.header_len().clamp(field::HEADER_LEN, self.b().len())
    }

    /// The header (options included).
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.hl_clamped()]
    }

    /// Option bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.b()[field::HEADER_LEN..self.hl_clamped()]
    }

    /// True when the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.header()) == 0xffff
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        let b = self.b();
        let end = usize::from(self.total_len()).min(b.len());
        &b[self.hl_clamped().min(end)..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn adjust16(&mut self, at: usize, new: u16) {
        let b = self.bm();
        let old = rd16(b, at);
        let hc = rd16(b, 10);
        wr16(b, at, new);
        wr16(b, 10, checksum::update16(hc, old, new));
    }

    /// Set version and IHL (header length in bytes, a multiple of 4). Raw: refill the
    /// checksum afterwards.
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.bm()[0] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Set the TOS byte (DSCP and ECN); raw.
    pub fn set_tos(&mut self, tos: u8) {
        self.bm()[field::DSCP_ECN] = tos;
    }

    /// Set the total length; raw.
    pub fn set_total_len(&mut self, len: u16) {
        wr16(self.bm(), 2, len);
    }

    /// Set the identification; raw.
    pub fn set_ident(&mut self, id: u16) {
        wr16(self.bm(), 4, id);
    }

    /// Set flags and fragment offset (offset in bytes, a multiple of 8); raw.
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let v = (if dont_frag { FLAG_DF } else { 0 })
            | (if more_frags { FLAG_MF } else { 0 })
            | ((offset >> 3) & 0x1fff);
        wr16(self.bm(), 6, v);
    }

    /// Set the TTL; raw.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.bm()[field::TTL] = ttl;
    }

    /// Set the protocol; raw.
    pub fn set_protocol(&mut self, p: u8) {
        self.bm()[field::PROTOCOL] = p;
    }

    /// Set the header checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.bm(), 10, c);
    }

    /// Decrement the TTL (saturating at 0), updating the checksum incrementally; returns the
    /// new TTL.
    pub fn decrement_ttl(&mut self) -> u8 {
        let b = self.b();
        let ttl = b[field::TTL].saturating_sub(1);
        let word = (u16::from(ttl) << 8) | u16::from(b[field::PROTOCOL]);
        self.adjust16(8, word);
        ttl
    }

    /// Set the source address, updating the header checksum incrementally.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.set_addr(12, a);
    }

    /// Set the destination address, updating the header checksum incrementally.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.set_addr(16, a);
    }

    fn set_addr(&mut self, at: usize, a: Ipv4Addr) {
        let b = self.bm();
        let old = rd32(b, at);
        let new = u32::from(a);
        let hc = rd16(b, 10);
        b[at..at + 4].copy_from_slice(&a.octets());
        wr16(b, 10, checksum::update32(hc, old, new));
    }

    /// Recompute the header checksum in full.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The option bytes, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.hl_clamped();
        &mut self.bm()[field::HEADER_LEN..hl]
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.total_len()).min(self.b().len());
        let start = self.hl_clamped().min(end);
        &mut self.bm()[start..end]
    }
}

/// Write a 20-byte IPv4 header (no options) with a filled checksum.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
    ttl: u8,
    tos: u8,
    dont_frag: bool,
    ident: u16,
) -> Result<(), Malformed> {
    let total =
        u16::try_from(payload_len + field::HEADER_LEN).map_err(|_| Malformed::BadTotalLen)?;
    if buf.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..field::HEADER_LEN]);
    p.set_version_and_header_len(field::HEADER_LEN);
    p.set_tos(tos);
    p.set_total_len(total);
    p.set_ident(ident);
    p.set_frag(dont_frag, false, 0);
    p.set_ttl(ttl);
    p.set_protocol(protocol);
    p.bm()[field::SRC_ADDR].copy_from_slice(&src.octets());
    p.bm()[field::DST_ADDR].copy_from_slice(&dst.octets());
    p.fill_checksum();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = vec![0u8; 28];
        emit_header(
            &mut v,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 7),
            17,
            8,
            64,
            0,
            true,
            0x1234,
        )
        .unwrap();
        v
    }

    #[test]
    fn fields_and_rewrite() {
        let mut v = sample();
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.header_len(), p.total_len(), p.ttl(), p.protocol()),
            (20, 28, 64, 17)
        );
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        p.set_dst_addr(Ipv4Addr::new(10, 1, 2, 3));
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn refusals() {
        let v = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&v[..19]).unwrap_err(),
            Malformed::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&v[..27]).unwrap_err(),
            Malformed::Truncated
        );
        let mut w = v.clone();
        w[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&w[..]).unwrap_err(),
            Malformed::BadIhl
        );
        w[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&w[..]).unwrap_err(),
            Malformed::BadVersion
        );
        let mut w = v.clone();
        w[3] = 10;
        assert_eq!(
            Ipv4Packet::new_checked(&w[..]).unwrap_err(),
            Malformed::BadTotalLen
        );
    }
}
