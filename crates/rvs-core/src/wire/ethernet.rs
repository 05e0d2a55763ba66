//! Ethernet II frames with an optional 802.1Q tag (and a QinQ 802.1ad outer tag tolerated).
//!
//! The view finds the payload EtherType behind at most two tags. It does not handle 802.3
//! length frames, LLC/SNAP, or more than two tags: those are not traffic a director forwards.

use super::{Malformed, rd16, wr16};

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// `00:00:00:00:00:00` (the unknown target of an ARP request).
    pub const ZERO: EthernetAddress = EthernetAddress([0; 6]);

    /// True for group (multicast and broadcast) addresses.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl core::fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// An EtherType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IPv6.
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// 802.1Q VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// 802.1ad service tag (QinQ outer tag).
    pub const QINQ: EtherType = EtherType(0x88a8);
}

/// Byte ranges of the Ethernet header.
pub mod field {
    use core::ops::Range;
    /// Destination MAC.
    pub const DESTINATION: Range<usize> = 0..6;
    /// Source MAC.
    pub const SOURCE: Range<usize> = 6..12;
    /// EtherType or tag protocol identifier.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Untagged header length.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag.
    pub const TAG_LEN: usize = 4;
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

/// Number of tags in front of the payload EtherType (0, 1 or 2), or an error.
pub(crate) fn count_tags(b: &[u8]) -> Result<usize, Malformed> {
    if b.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    let t0 = rd16(b, 12);
    if t0 != EtherType::VLAN.0 && t0 != EtherType::QINQ.0 {
        return Ok(0);
    }
    if b.len() < 18 {
        return Err(Malformed::Truncated);
    }
    let t1 = rd16(b, 16);
    if t1 != EtherType::VLAN.0 && t1 != EtherType::QINQ.0 {
        return Ok(1);
    }
    if b.len() < 22 {
        return Err(Malformed::Truncated);
    }
    let t2 = rd16(b, 20);
    if t2 == EtherType::VLAN.0 || t2 == EtherType::QINQ.0 {
        return Err(Malformed::BadVlan);
    }
    Ok(2)
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wrap a buffer without checks (accessors may panic on short buffers).
    pub fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wrap a buffer, checking that the header and its tags are present.
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, Malformed> {
        count_tags(buffer.as_ref())?;
        Ok(EthernetFrame { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn tags(&self) -> usize {
        count_tags(self.buffer.as_ref()).unwrap_or(0)
    }

    /// Header length including tags: 14, 18 or 22.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + field::TAG_LEN * self.tags()
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    /// Source MAC.
    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// The EtherType of the payload, behind any tags.
    pub fn ethertype(&self) -> EtherType {
        EtherType(rd16(
            self.buffer.as_ref(),
            12 + field::TAG_LEN * self.tags(),
        ))
    }

    /// VLAN id (12 bits) of the innermost tag, if tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        match self.tags() {
            0 => None,
            n => Some(rd16(self.buffer.as_ref(), 14 + 4 * (n - 1)) & 0x0fff),
        }
    }

    /// VLAN id of the outer (service) tag of a double-tagged frame.
    pub fn outer_vlan_id(&self) -> Option<u16> {
        match self.tags() {
            2 => Some(rd16(self.buffer.as_ref(), 14) & 0x0fff),
            _ => None,
        }
    }

    /// The payload after the header and tags.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len().min(b.len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the destination MAC.
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    /// Set the source MAC.
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Set the payload EtherType (behind any tags). Writing a tag protocol id here is a
    /// misuse: the header would then claim a tag that is not there.
    pub fn set_ethertype(&mut self, t: EtherType) {
        let at = 12 + field::TAG_LEN * self.tags();
        wr16(self.buffer.as_mut(), at, t.0);
    }

    /// Set the VLAN id of the innermost tag, keeping its priority bits; false if untagged.
    pub fn set_vlan_id(&mut self, vid: u16) -> bool {
        match self.tags() {
            0 => false,
            n => {
                let at = 14 + 4 * (n - 1);
                let b = self.buffer.as_mut();
                let tci = (rd16(b, at) & 0xf000) | (vid & 0x0fff);
                wr16(b, at, tci);
                true
            }
        }
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        let hl = hl.min(b.len());
        &mut b[hl..]
    }
}

/// Write an untagged 14-byte Ethernet header at the start of `buf`.
pub fn emit_header(
    buf: &mut [u8],
    dst: EthernetAddress,
    src: EthernetAddress,
    ethertype: EtherType,
) -> Result<(), Malformed> {
    if buf.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    buf[field::DESTINATION].copy_from_slice(&dst.0);
    buf[field::SOURCE].copy_from_slice(&src.0);
    wr16(buf, 12, ethertype.0);
    Ok(())
}

/// Prepend an untagged Ethernet header to a frame (after encapsulation, or to put a
/// decapsulated packet back on a link).
pub fn push_header(
    frame: &mut super::Frame<'_>,
    dst: EthernetAddress,
    src: EthernetAddress,
    ethertype: EtherType,
) -> Result<(), super::FrameError> {
    let h = frame.push_front(field::HEADER_LEN)?;
    h[field::DESTINATION].copy_from_slice(&dst.0);
    h[field::SOURCE].copy_from_slice(&src.0);
    wr16(h, 12, ethertype.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        let mut f = [0u8; 30];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(
            (e.header_len(), e.vlan_id(), e.ethertype()),
            (14, None, EtherType::IPV4)
        );
        f[12..18].copy_from_slice(&[0x81, 0x00, 0x20, 0x64, 0x86, 0xdd]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(
            (e.header_len(), e.vlan_id(), e.ethertype()),
            (18, Some(100), EtherType::IPV6)
        );
        f[12..22].copy_from_slice(&[0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x64, 0x08, 0x06]);
        let mut e = EthernetFrame::new_checked(&mut f[..]).unwrap();
        assert_eq!(e.header_len(), 22);
        assert_eq!(
            (e.outer_vlan_id(), e.vlan_id(), e.ethertype()),
            (Some(7), Some(100), EtherType::ARP)
        );
        assert!(e.set_vlan_id(200));
        assert_eq!(e.vlan_id(), Some(200));
        assert!(EthernetFrame::new_checked(&f[..20]).is_err());
        f[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..]).unwrap_err(),
            Malformed::BadVlan
        );
    }
}
