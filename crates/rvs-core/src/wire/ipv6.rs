//! IPv6 headers (RFC 8200) and a bounded walk over the extension header chain.
//!
//! The walk steps over hop-by-hop (0), routing (43), fragment (44), destination options
//! (60) and AH (51, whose length counts 4-byte units minus 2, RFC 4302); it stops at ESP
//! (50), no-next-header (59) and anything else, which it reports as the upper-layer protocol.
//! It does not interpret options or routing types, and does not reassemble fragments.

use super::{Malformed, ip_proto, rd16, rd32, wr16};
use std::net::Ipv6Addr;

/// Byte ranges of the IPv6 header.
pub mod field {
    use core::ops::Range;
    /// Version, traffic class, flow label.
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    /// Payload length.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 8..24;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 24..40;
    /// Header length.
    pub const HEADER_LEN: usize = 40;
}

/// The most extension headers [`walk_ext`] steps over before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// What a fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv6Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// The result of walking the extension header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Walk {
    /// The upper-layer protocol (or 50 / 59 where the walk stopped).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub l4_offset: usize,
    /// The fragment header, if one was crossed.
    pub fragment: Option<Ipv6Fragment>,
}

/// Walk the extension headers in `payload` (the bytes after the fixed header), starting from
/// the fixed header's next-header value. Offsets in the result count from the fixed header.
pub fn walk_ext(first: u8, payload: &[u8]) -> Result<Ipv6Walk, Malformed> {
    let mut nh = first;
    let mut off = 0usize;
    let mut fragment = None;
    for _ in 0..=MAX_EXT_HEADERS {
        let len = match nh {
            ip_proto::HOPOPT | ip_proto::IPV6_ROUTE | ip_proto::IPV6_OPTS => {
                let l = payload.get(off + 1).ok_or(Malformed::Truncated)?;
                (usize::from(*l) + 1) * 8
            }
            ip_proto::AH => {
                let l = payload.get(off + 1).ok_or(Malformed::Truncated)?;
                (usize::from(*l) + 2) * 4
            }
            ip_proto::IPV6_FRAG => {
                let h = payload.get(off..off + 8).ok_or(Malformed::Truncated)?;
                let w = rd16(h, 2);
                fragment = Some(Ipv6Fragment {
                    offset: w & 0xfff8,
                    more: w & 1 != 0,
                    ident: rd32(h, 4),
                });
                8
            }
            _ => {
                return Ok(Ipv6Walk {
                    protocol: nh,
                    l4_offset: field::HEADER_LEN + off,
                    fragment,
                });
            }
        };
        if payload.len() < off + len {
            return Err(Malformed::Truncated);
        }
        nh = payload[off];
        off += len;
    }
    Err(Malformed::TooManyExtHeaders)
}

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// Check an IPv6 header: returns the packet length (header plus payload length).
pub(crate) fn check(b: &[u8]) -> Result<usize, Malformed> {
    if b.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    if b[0] >> 4 != 6 {
        return Err(Malformed::BadVersion);
    }
    let total = field::HEADER_LEN + usize::from(rd16(b, 4));
    if total > b.len() {
        return Err(Malformed::Truncated);
    }
    Ok(total)
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap without checks.
    pub fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wrap, checking version and payload length against the buffer (which may be longer).
    /// Jumbograms (payload length 0 with a jumbo option) are seen as empty payloads.
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, Malformed> {
        check(buffer.as_ref())?;
        Ok(Ipv6Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version (6 after `new_checked`).
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        ((rd16(self.b(), 0) >> 4) & 0xff) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        rd32(self.b(), 0) & 0x000f_ffff
    }

    /// Payload length.
    pub fn payload_len(&self) -> u16 {
        rd16(self.b(), 4)
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.b()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.b()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The payload (extension headers included), bounded by the payload length.
    pub fn payload(&self) -> &[u8] {
        let b = self.b();
        let end = (field::HEADER_LEN + usize::from(self.payload_len())).min(b.len());
        &b[field::HEADER_LEN.min(end)..end]
    }

    /// Walk the extension headers: upper-layer protocol, its offset, fragment header.
    pub fn walk(&self) -> Result<Ipv6Walk, Malformed> {
        walk_ext(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set version, traffic class and flow label.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.bm()[0..4].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        wr16(self.bm(), 4, len);
    }

    /// Set the next header of the fixed header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.bm()[field::NEXT_HEADER] = nh;
    }

    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, h: u8) {
        self.bm()[field::HOP_LIMIT] = h;
    }

    /// Decrement the hop limit (saturating), returning the new value.
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(h);
        h
    }

    /// Set the source address (IPv6 has no header checksum; fix the L4 pseudo-header sum).
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.bm()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Set the destination address (fix the L4 pseudo-header sum too).
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.bm()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.b().len();
        let end = (field::HEADER_LEN + usize::from(self.payload_len())).min(len);
        &mut self.bm()[field::HEADER_LEN.min(end)..end]
    }
}

/// Write a 40-byte IPv6 header.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    payload_len: usize,
    hop_limit: u8,
    traffic_class: u8,
    flow_label: u32,
) -> Result<(), Malformed> {
    let pl = u16::try_from(payload_len).map_err(|_| Malformed::BadTotalLen)?;
    if buf.len() < field::HEADER_LEN {
        return Err(Malformed::Truncated);
    }
    let mut p = Ipv6Packet::new_unchecked(&mut buf[..field::HEADER_LEN]);
    p.set_version_tc_flow(traffic_class, flow_label);
    p.set_payload_len(pl);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_chain() {
        // hop-by-hop (8) -> AH (len 1: 12 bytes) -> fragment -> TCP
        let mut p = vec![0u8; 40 + 8 + 12 + 8 + 20];
        emit_header(
            &mut p,
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::LOCALHOST,
            0,
            48,
            64,
            0,
            0,
        )
        .unwrap();
        p[40] = ip_proto::AH;
        p[48] = ip_proto::IPV6_FRAG;
        p[49] = 1;
        p[60] = ip_proto::TCP;
        p[62..64].copy_from_slice(&((185u16 * 8) | 1).to_be_bytes());
        p[64..68].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        let w = v.walk().unwrap();
        assert_eq!(w.protocol, ip_proto::TCP);
        assert_eq!(w.l4_offset, 68);
        assert_eq!(
            w.fragment,
            Some(Ipv6Fragment {
                offset: 1480,
                more: true,
                ident: 0xdeadbeef
            })
        );
        // ESP stops the walk.
        let w = walk_ext(ip_proto::ESP, &[]).unwrap();
        assert_eq!((w.protocol, w.l4_offset), (ip_proto::ESP, 40));
        // A chain of destination options longer than the bound.
        let chain = [ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_EXT_HEADERS + 2);
        assert_eq!(
            walk_ext(ip_proto::IPV6_OPTS, &chain).unwrap_err(),
            Malformed::TooManyExtHeaders
        );
        assert_eq!(
            walk_ext(ip_proto::HOPOPT, &[6, 1, 0]).unwrap_err(),
            Malformed::Truncated
        );
    }
}
