//! TCP headers (RFC 9293) with in-place rewrite of ports and sequence numbers.
//!
//! Port, sequence, acknowledgement and flag setters update the checksum incrementally
//! (RFC 1624); address changes in the IP header are carried over with
//! [`TcpPacket::update_addr_v4`] / [`TcpPacket::update_addr_v6`]. The view must span exactly
//! the segment (the IP payload) for the `fill`/`verify` functions. Options are bytes; no TCP
//! state lives here (that is `conn`'s job). None of the incremental updates is right for a
//! checksum-partial packet (see [`crate::wire::CsumStatus::Partial`]).

use super::checksum;
use super::{Malformed, ip_proto, rd16, rd32, wr16, wr32};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Byte ranges of the TCP header.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Range<usize> = 4..8;
    /// Acknowledgement number.
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (high nibble of the first byte), flags (second byte).
    pub const FLAGS: Range<usize> = 12..14;
    /// Window.
    pub const WIN_SIZE: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// The eight TCP flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True if every flag of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | o.0)
    }
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// Check a TCP header; returns its length.
pub(crate) fn check(b: &[u8]) -> Result<usize, Malformed> {
    if b.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    let hl = usize::from(b[12] >> 4) * 4;
    if hl < field::HEADER_LEN {
        return Err(Malformed::BadTcpOffset);
    }
    if b.len() < hl {
        return Err(Malformed::Truncated);
    }
    Ok(hl)
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap without checks.
    pub fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wrap, checking the data offset against the buffer.
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, Malformed> {
        check(buffer.as_ref())?;
        Ok(TcpPacket { buffer })
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
    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        rd32(self.b(), 4)
    }
    /// Acknowledgement number.
    pub fn ack_number(&self) -> u32 {
        rd32(self.b(), 8)
    }
    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[12] >> 4) * 4
    }
    /// Flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.b()[13])
    }
    /// Window.
    pub fn window(&self) -> u16 {
        rd16(self.b(), 14)
    }
    /// Checksum.
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), 16)
    }
    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        rd16(self.b(), 18)
    }
    fn hl_clamped(&self) -> usize {
        self.header_len().clamp(field::HEADER_LEN, self.b().len())
    }
    /// Option bytes.
    pub fn options(&self) -> &[u8] {
        &self.b()[field::HEADER_LEN..self.hl_clamped()]
    }
    /// Payload.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.hl_clamped()..]
    }

    /// True when the checksum is right over IPv4.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.b();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        checksum::fold(checksum::sum_into(
            checksum::pseudo_v4(src, dst, ip_proto::TCP, len),
            b,
        )) == 0xffff
    }

    /// True when the checksum is right over IPv6.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.b();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        checksum::fold(checksum::sum_into(
            checksum::pseudo_v6(src, dst, ip_proto::TCP, len),
            b,
        )) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    fn adjust16(&mut self, at: usize, new: u16) {
        let b = self.bm();
        let old = rd16(b, at);
        let hc = rd16(b, 16);
        wr16(b, at, new);
        wr16(b, 16, checksum::update16(hc, old, new));
    }

    fn adjust32(&mut self, at: usize, new: u32) {
        let b = self.bm();
        let old = rd32(b, at);
        let hc = rd16(b, 16);
        wr32(b, at, new);
        wr16(b, 16, checksum::update32(hc, old, new));
    }

    /// Set the source port (checksum updated incrementally).
    pub fn set_src_port(&mut self, p: u16) {
        self.adjust16(0, p);
    }
    /// Set the destination port (checksum updated incrementally).
    pub fn set_dst_port(&mut self, p: u16) {
        self.adjust16(2, p);
    }
    /// Set the sequence number (checksum updated incrementally).
    pub fn set_seq_number(&mut self, v: u32) {
        self.adjust32(4, v);
    }
    /// Set the acknowledgement number (checksum updated incrementally).
    pub fn set_ack_number(&mut self, v: u32) {
        self.adjust32(8, v);
    }
    /// Set the flags (checksum updated incrementally).
    pub fn set_flags(&mut self, f: TcpFlags) {
        let w = (u16::from(self.b()[12]) << 8) | u16::from(f.0);
        self.adjust16(12, w);
    }
    /// Set the header length in bytes (a multiple of 4; checksum updated incrementally).
    pub fn set_header_len(&mut self, len: usize) {
        let w = (u16::from((len / 4) as u8 & 0x0f) << 12) | u16::from(self.b()[13]);
        self.adjust16(12, w);
    }
    /// Set the window (checksum updated incrementally).
    pub fn set_window(&mut self, w: u16) {
        self.adjust16(14, w);
    }
    /// Set the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        wr16(self.bm(), 16, c);
    }

    /// Carry an IPv4 address change (source or destination) into the checksum.
    pub fn update_addr_v4(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let hc = self.checksum();
        self.set_checksum(checksum::update32(hc, u32::from(old), u32::from(new)));
    }

    /// Carry an IPv6 address change into the checksum.
    pub fn update_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let hc = self.checksum();
        self.set_checksum(checksum::update128(hc, u128::from(old), u128::from(new)));
    }

    /// Recompute the checksum in full over IPv4.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.b();
        let len = b.len() as u16;
        let c = !checksum::fold(checksum::sum_into(
            checksum::pseudo_v4(src, dst, ip_proto::TCP, len),
            b,
        ));
        self.set_checksum(c);
    }

    /// Recompute the checksum in full over IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.b();
        let len = b.len() as u32;
        let c = !checksum::fold(checksum::sum_into(
            checksum::pseudo_v6(src, dst, ip_proto::TCP, len),
            b,
        ));
        self.set_checksum(c);
    }
}
