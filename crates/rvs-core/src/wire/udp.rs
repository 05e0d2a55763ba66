//! UDP headers (RFC 768) with in-place rewrite of ports.
//!
//! Every checksum update keeps the UDP rule: a zero checksum means "none" (IPv4) and stays
//! zero; a computed zero goes on the wire as `0xffff`. The `fill`/`verify` functions sum the
//! bytes the length field covers. None of the incremental updates is right for a
//! checksum-partial packet.

use super::checksum;
use super::{Malformed, ip_proto, rd16, wr16};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Byte ranges of the UDP header.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length (header and payload).
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 6..8;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// Check a UDP header; returns the length field.
pub(crate) fn check(b: &[u8]) -> Result<usize, Malformed> {
    if b.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    let len = usize::from(rd16(b, 4));
    if len < field::HEADER_LEN || len > b.len() {
        return Err(Malformed::BadUdpLen);
    }
    Ok(len)
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap without checks.
    pub fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wrap, checking the length field against the buffer.
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, Malformed> {
        check(buffer.as_ref())?;
        Ok(UdpPacket { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        rd16(self.b(), 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        rd16(self.b(), 2)
    }
    /// Length field.
    pub fn len(&self) -> u16 {
        rd16(self.b(), 4)
    }
    /// True when the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        self.len() <= 8
    }
    /// Checksum (0: none).
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), 6)
    }
    fn datagram(&self) -> &[u8] {
        let b = self.b();
        &b[..usize::from(self.len()).clamp(field::HEADER_LEN, b.len())]
    }
    /// Payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[field::HEADER_LEN..]
    }

    /// True when the checksum is right over IPv4 (or absent).
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        checksum::fold(checksum::sum_into(
            checksum::pseudo_v4(src, dst, ip_proto::UDP, d.len() as u16),
            d,
        )) == 0xffff
    }

    /// True when the checksum is right over IPv6 (where it is mandatory).
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let d = self.datagram();
        self.checksum() != 0
            && checksum::fold(checksum::sum_into(
                checksum::pseudo_v6(src, dst, ip_proto::UDP, d.len() as u32),
                d,
            )) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn adjust16(&mut self, at: usize, new: u16) {
        let b = self.bm();
        let old = rd16(b, at);
        let hc = rd16(b, 6);
        wr16(b, at, new);
        wr16(
            b,
            6,
            checksum::udp_update(hc, |hc| checksum::update16(hc, old, new)),
        );
    }

    /// Set the source port (checksum updated incrementally, zero kept).
    pub fn set_src_port(&mut self, p: u16) {
        self.adjust16(0, p);
    }
    /// Set the destination port (checksum updated incrementally, zero kept).
    pub fn set_dst_port(&mut self, p: u16) {
        self.adjust16(2, p);
    }
    /// Set the length field; raw.
    pub fn set_len(&mut self, len: u16) {
        wr16(self.bm(), 4, len);
    }
    /// Set the checksum field; raw.
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.bm(), 6, c);
    }

    /// Carry an IPv4 address change into the checksum (zero kept).
    pub fn update_addr_v4(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let hc = self.checksum();
        self.set_checksum(checksum::udp_update(hc, |hc| {
            checksum::update32(hc, u32::from(old), u32::from(new))
        }));
    }

    /// Carry an IPv6 address change into the checksum (zero kept).
    pub fn update_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let hc = self.checksum();
        self.set_checksum(checksum::udp_update(hc, |hc| {
            checksum::update128(hc, u128::from(old), u128::from(new))
        }));
    }

    /// Recompute the checksum in full over IPv4 (a computed zero becomes `0xffff`).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let d = self.datagram();
        let c = !checksum::fold(checksum::sum_into(
            checksum::pseudo_v4(src, dst, ip_proto::UDP, d.len() as u16),
            d,
        ));
        self.set_checksum(checksum::udp_on_wire(c));
    }

    /// Recompute the checksum in full over IPv6 (a computed zero becomes `0xffff`).
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let d = self.datagram();
        let c = !checksum::fold(checksum::sum_into(
            checksum::pseudo_v6(src, dst, ip_proto::UDP, d.len() as u32),
            d,
        ));
        self.set_checksum(checksum::udp_on_wire(c));
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len()).clamp(field::HEADER_LEN, self.b().len());
        &mut self.bm()[field::HEADER_LEN..end]
    }
}
