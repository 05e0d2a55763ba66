//! The mutable frame buffer the engine rewrites in place, with headroom for encapsulation.
//!
//! A [`Frame`] borrows a receive buffer (a ring slot, a UMEM chunk, a test vector) and marks
//! the live bytes inside it; tunnel headers grow into the headroom in front of them with
//! [`Frame::push_front`], decapsulation drops them with [`Frame::pull_front`]. The I/O layer
//! records how far the checksums in the packet can be trusted in [`CsumStatus`]. A frame
//! never reallocates: if the headroom is too small the push fails.

/// How far the L4 checksum of a received frame can be trusted; filled by the I/O layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsumStatus {
    /// The checksums in the packet are final but nobody verified them.
    #[default]
    Complete,
    /// The kernel verified the checksums (`TP_STATUS_CSUM_VALID`).
    Valid,
    /// `CHECKSUM_PARTIAL` (`TP_STATUS_CSUMNOTREADY`): the L4 checksum field holds only the
    /// (uncomplemented) pseudo-header sum. The sum over `start..` of the frame is to be
    /// complemented and stored at `start + offset`; offsets count from the frame's first byte.
    /// An incremental (RFC 1624) update of such a field is garbage: finish it first
    /// ([`Frame::finish_checksum`]) or recompute it in full after a rewrite.
    Partial {
        /// Where the checksummed range starts, from the start of the frame.
        start: u16,
        /// Where the checksum field is, from `start`.
        offset: u16,
    },
}

/// A misuse of a [`Frame`]'s buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// `push_front` asked for more bytes than the headroom holds.
    NoHeadroom,
    /// Asked for more bytes than the frame holds, or the live range is outside the buffer.
    OutOfRange,
    /// `pull_front` would remove the start of a partial checksum range.
    CutsPartialChecksum,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::NoHeadroom => "no headroom left in the frame buffer",
            FrameError::OutOfRange => "range outside the frame",
            FrameError::CutsPartialChecksum => "pull would cut a partial checksum range",
        })
    }
}

impl std::error::Error for FrameError {}

/// A frame inside a borrowed buffer: `buf[head..head + len]` is live, `buf[..head]` is
/// headroom.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
    csum: CsumStatus,
    gso_size: u16,
}

impl<'a> Frame<'a> {
    /// A frame whose live bytes are `buf[head..head + len]`.
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Result<Frame<'a>, FrameError> {
        match head.checked_add(len) {
            Some(end) if end <= buf.len() => Ok(Frame {
                buf,
                head,
                len,
                csum: CsumStatus::Complete,
                gso_size: 0,
            }),
            _ => Err(FrameError::OutOfRange),
        }
    }

    /// The live bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    /// The live bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    /// Number of live bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no byte is live.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first live byte in the buffer.
    #[inline]
    pub fn head(&self) -> usize {
        self.head
    }

    /// Bytes available in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes available after the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// The checksum status the I/O layer recorded.
    #[inline]
    pub fn csum(&self) -> CsumStatus {
        self.csum
    }

    /// Record the checksum status (the I/O layer on receive; rewrites that finish a checksum).
    #[inline]
    pub fn set_csum(&mut self, csum: CsumStatus) {
        self.csum = csum;
    }

    /// Grow the frame by `n` bytes at the front, into the headroom, and return them (their
    /// content is whatever the buffer held). A partial checksum range moves with the data.
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], FrameError> {
        if n > self.head {
            return Err(FrameError::NoHeadroom);
        }
        if let CsumStatus::Partial { start, offset } = self.csum {
            let start = usize::from(start) + n;
            let start = u16::try_from(start).map_err(|_| FrameError::OutOfRange)?;
            self.csum = CsumStatus::Partial { start, offset };
        }
        self.head -= n;
        self.len += n;
        Ok(&mut self.buf[self.head..self.head + n])
    }

    /// Drop `n` bytes from the front (they become headroom).
    pub fn pull_front(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.len {
            return Err(FrameError::OutOfRange);
        }
        if let CsumStatus::Partial { start, offset } = self.csum {
            let start = usize::from(start)
                .checked_sub(n)
                .ok_or(FrameError::CutsPartialChecksum)?;
            // start < 2^16 and n <= start, so this fits.
            self.csum = CsumStatus::Partial {
                start: start as u16,
                offset,
            };
        }
        self.head += n;
        self.len -= n;
        Ok(())
    }

    /// The segment size of a GSO super-frame (the MSS it is to be cut to), 0 for an ordinary
    /// frame. The I/O layer records it from `virtio_net_hdr.gso_size`.
    #[inline]
    pub fn gso_size(&self) -> u16 {
        self.gso_size
    }

    /// Record that the frame is a GSO super-frame to be cut into `size`-byte segments.
    #[inline]
    pub fn set_gso_size(&mut self, size: u16) {
        self.gso_size = size;
    }

    /// Grow the frame by `n` bytes at the end, into the tailroom (their content is whatever
    /// the buffer held): for payload rewrites that lengthen a packet.
    pub fn extend(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.tailroom() {
            return Err(FrameError::OutOfRange);
        }
        self.len += n;
        Ok(())
    }

    /// Shorten the frame to `len` bytes (no-op if it is already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Complete a [`CsumStatus::Partial`] checksum in software and mark the frame
    /// [`CsumStatus::Complete`]; other statuses are left alone. The checksummed range ends
    /// where the IP packet ends (Ethernet padding is not summed).
    /// The frame must start with an Ethernet header; see [`Frame::finish_checksum_ip`] for
    /// frames that start with the IP header (TUN, or after encapsulation).
    pub fn finish_checksum(&mut self) -> Result<(), crate::wire::Malformed> {
        self.finish_with(crate::wire::parse)
    }

    /// [`Frame::finish_checksum`] for a frame that starts with its IP header.
    pub fn finish_checksum_ip(&mut self) -> Result<(), crate::wire::Malformed> {
        self.finish_with(crate::wire::parse_ip)
    }

    fn finish_with(
        &mut self,
        parse: fn(&[u8]) -> Result<crate::wire::Parsed, crate::wire::Malformed>,
    ) -> Result<(), crate::wire::Malformed> {
        if let CsumStatus::Partial { start, offset } = self.csum {
            let p = parse(self.data())?;
            let end = (usize::from(p.l3_offset) + usize::from(p.l3_len)).min(self.len);
            let data = self.data_mut();
            if p.protocol == crate::wire::ip_proto::SCTP && !p.frag.is_fragment {
                // SCTP's offloaded checksum is a CRC32c (`skb->csum_not_inet`), not a sum.
                let l4 = data
                    .get_mut(usize::from(p.l4_offset)..end)
                    .ok_or(crate::wire::Malformed::Truncated)?;
                crate::wire::SctpPacket::new_checked(l4)?.fill_checksum();
                self.csum = CsumStatus::Complete;
                return Ok(());
            }
            crate::wire::l4::finish_partial(
                &mut data[..end],
                usize::from(start),
                usize::from(offset),
            )?;
            self.csum = CsumStatus::Complete;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_grows_into_the_tailroom_only() {
        let mut buf = [0u8; 32];
        let mut f = Frame::new(&mut buf, 8, 16).unwrap();
        assert_eq!(f.tailroom(), 8);
        f.extend(8).unwrap();
        assert_eq!(f.len(), 24);
        assert_eq!(f.extend(1), Err(FrameError::OutOfRange));
        assert_eq!(f.len(), 24);
    }

    #[test]
    fn push_pull_truncate() {
        let mut buf = [0u8; 64];
        let mut f = Frame::new(&mut buf, 16, 40).unwrap();
        f.set_csum(CsumStatus::Partial {
            start: 34,
            offset: 16,
        });
        assert_eq!(f.headroom(), 16);
        assert_eq!(f.tailroom(), 8);
        f.push_front(14).unwrap().fill(0xaa);
        assert_eq!(f.len(), 54);
        assert_eq!(f.data()[0], 0xaa);
        assert_eq!(
            f.csum(),
            CsumStatus::Partial {
                start: 48,
                offset: 16
            }
        );
        assert_eq!(f.push_front(3), Err(FrameError::NoHeadroom));
        f.pull_front(14).unwrap();
        assert_eq!(
            f.csum(),
            CsumStatus::Partial {
                start: 34,
                offset: 16
            }
        );
        assert_eq!(f.pull_front(35), Err(FrameError::CutsPartialChecksum));
        f.truncate(10);
        assert_eq!(f.len(), 10);
        assert_eq!(f.pull_front(11), Err(FrameError::OutOfRange));
        assert!(Frame::new(&mut [0u8; 4], 3, 2).is_err());
    }
}
