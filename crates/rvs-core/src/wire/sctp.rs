//! SCTP packets (RFC 9260, formerly RFC 4960): the common header, the chunk walk and the
//! CRC32c checksum.
//!
//! The checksum of SCTP is not a ones'-complement sum: it is a CRC32c over the whole SCTP
//! packet (common header with the checksum field taken as zero, then every chunk), with no
//! pseudo-header. So an address change leaves it valid, and a port change cannot be carried
//! into it incrementally: NAT recomputes it over the whole packet ([`SctpPacket::fill_checksum`]),
//! as the kernel's `sctp_nat_csum()` does (`net/netfilter/ipvs/ip_vs_proto_sctp.c`).
//!
//! This module reads and rewrites; it does not decide which chunk drives the IPVS state
//! machine (that is [`crate::conn::sctp::SctpEvent::of_packet`]).

use super::{Malformed, rd16, rd32, wr16};

/// Byte ranges of the SCTP common header and of a chunk header.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Verification tag.
    pub const VTAG: Range<usize> = 4..8;
    /// CRC32c checksum (stored least significant byte first, RFC 9260 appendix A).
    pub const CHECKSUM: Range<usize> = 8..12;
    /// Common header length.
    pub const HEADER_LEN: usize = 12;
    /// Chunk header length (type, flags, length).
    pub const CHUNK_HEADER_LEN: usize = 4;
}

/// Chunk types (RFC 9260 section 3.2; `SCTP_CID_*` in `include/linux/sctp.h`).
pub mod chunk {
    /// Payload data.
    pub const DATA: u8 = 0;
    /// Initiation.
    pub const INIT: u8 = 1;
    /// Initiation acknowledgement.
    pub const INIT_ACK: u8 = 2;
    /// Selective acknowledgement.
    pub const SACK: u8 = 3;
    /// Heartbeat request.
    pub const HEARTBEAT: u8 = 4;
    /// Heartbeat acknowledgement.
    pub const HEARTBEAT_ACK: u8 = 5;
    /// Abort.
    pub const ABORT: u8 = 6;
    /// Shutdown.
    pub const SHUTDOWN: u8 = 7;
    /// Shutdown acknowledgement.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// Operation error.
    pub const ERROR: u8 = 9;
    /// State cookie.
    pub const COOKIE_ECHO: u8 = 10;
    /// Cookie acknowledgement.
    pub const COOKIE_ACK: u8 = 11;
    /// Explicit congestion notification echo.
    pub const ECNE: u8 = 12;
    /// Congestion window reduced.
    pub const CWR: u8 = 13;
    /// Shutdown complete.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// One chunk of a packet, as the walk found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Chunk type.
    pub kind: u8,
    /// Chunk flags.
    pub flags: u8,
    /// The length field (header included, padding excluded).
    pub length: u16,
    /// The chunk's value: the bytes after its header, bounded by the length field.
    pub value: &'a [u8],
}

/// The chunks of a packet, in order. The walk stops at the end of the packet, at a chunk
/// whose length field is below 4, and at a chunk that runs past the packet (that one is
/// still returned, its value cut at the end), so it never loops and never panics.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        let b = self.rest;
        if b.len() < field::CHUNK_HEADER_LEN {
            return None;
        }
        let length = rd16(b, 2);
        let len = usize::from(length);
        if len < field::CHUNK_HEADER_LEN {
            self.rest = &[];
            return None;
        }
        let value = &b[field::CHUNK_HEADER_LEN..len.min(b.len())];
        // Chunks are padded to a multiple of 4 bytes (RFC 9260 section 3.2).
        let next = len.next_multiple_of(4);
        self.rest = b.get(next..).unwrap_or(&[]);
        Some(Chunk {
            kind: b[0],
            flags: b[1],
            length,
            value,
        })
    }
}

/// What the parser records of an SCTP packet's first chunk ([`super::Parsed::sctp`]), so
/// that the engine reads the chunk walk once per packet: the scheduling check
/// (`sctp_conn_schedule()`: INIT only) and the state machine (`set_sctp_state()`) both
/// take it from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstChunk {
    /// The first chunk's type.
    pub kind: u8,
    /// The first chunk's flags.
    pub flags: u8,
    /// The first chunk is COOKIE-ECHO or COOKIE-ACK and the second one is ABORT (the case
    /// `set_sctp_state()` turns into an ABORT event); false for any other first chunk.
    pub abort_follows: bool,
}

impl FirstChunk {
    /// The first chunk of the SCTP packet `sctp` (common header onwards), if the packet
    /// holds a whole chunk header after its common header.
    pub fn of(sctp: &[u8]) -> Option<FirstChunk> {
        let p = SctpPacket::new_checked(sctp).ok()?;
        let kind = p.first_chunk_type()?;
        let flags = sctp[field::HEADER_LEN + 1];
        let mut abort_follows = false;
        if kind == chunk::COOKIE_ECHO || kind == chunk::COOKIE_ACK {
            // ip_vs_proto_sctp.c set_sctp_state(): "...if the second chunk is ABORT".
            let mut it = p.chunks();
            abort_follows =
                it.next().is_some() && it.next().is_some_and(|c| c.kind == chunk::ABORT);
        }
        Some(FirstChunk {
            kind,
            flags,
            abort_follows,
        })
    }
}

/// A read/write view of an SCTP packet: the bytes from the common header to the end of the
/// IP payload.
#[derive(Debug, Clone)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Wrap without checks.
    pub fn new_unchecked(buffer: T) -> SctpPacket<T> {
        SctpPacket { buffer }
    }

    /// Wrap, checking that the common header is there.
    pub fn new_checked(buffer: T) -> Result<SctpPacket<T>, Malformed> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(SctpPacket { buffer })
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

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        rd32(self.b(), 4)
    }

    /// The checksum field as the CRC value it holds (the wire bytes read least significant
    /// first).
    pub fn checksum(&self) -> u32 {
        let b = self.b();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }

    /// The chunks.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks {
            rest: &self.b()[field::HEADER_LEN..],
        }
    }

    /// The type of the first chunk, if there is a whole chunk header.
    pub fn first_chunk_type(&self) -> Option<u8> {
        self.b()
            .get(field::HEADER_LEN)
            .copied()
            .filter(|_| self.b().len() >= field::HEADER_LEN + field::CHUNK_HEADER_LEN)
    }

    /// The CRC32c the packet should carry (computed with the checksum field as zero).
    pub fn compute_checksum(&self) -> u32 {
        crc32c_of(self.b())
    }

    /// True when the checksum field holds the packet's CRC32c.
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == self.compute_checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the source port (the checksum is left as it is: see [`Self::fill_checksum`]).
    pub fn set_src_port(&mut self, port: u16) {
        wr16(self.bm(), 0, port);
    }

    /// Set the destination port (the checksum is left as it is).
    pub fn set_dst_port(&mut self, port: u16) {
        wr16(self.bm(), 2, port);
    }

    /// Set the verification tag (the checksum is left as it is).
    pub fn set_verification_tag(&mut self, tag: u32) {
        self.bm()[field::VTAG].copy_from_slice(&tag.to_be_bytes());
    }

    /// Recompute the CRC32c over the whole packet and store it (`sctp_nat_csum()`).
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.bm()[field::CHECKSUM].copy_from_slice(&c.to_le_bytes());
    }
}

/// The CRC32c of an SCTP packet (RFC 9260 appendix A): the common header with its checksum
/// field taken as zero, then the rest. `packet` must hold at least the common header;
/// shorter input is summed as it is.
pub fn crc32c_of(packet: &[u8]) -> u32 {
    #[cfg(test)]
    testing::CRC_RUNS.with(|n| n.set(n.get() + 1));
    let Some(rest) = packet.get(field::HEADER_LEN..) else {
        return crc32c::crc32c(packet);
    };
    let head = crc32c::crc32c(&packet[..8]);
    let head = crc32c::crc32c_append(head, &[0; 4]);
    crc32c::crc32c_append(head, rest)
}

/// Test helpers for this module's and the director's tests: a CRC32c written bit by bit,
/// independent of the `crc32c` crate the engine uses, and an SCTP packet builder.
#[cfg(test)]
pub(crate) mod testing {
    std::thread_local! {
        /// How many times this thread computed a packet's CRC32c ([`super::crc32c_of`]):
        /// lets tests assert that a rewrite computes it once.
        pub(crate) static CRC_RUNS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    }

    /// The number of CRC32c computations on this thread so far.
    pub(crate) fn crc_runs() -> u32 {
        CRC_RUNS.with(|n| n.get())
    }

    /// CRC32c bit by bit (reflected polynomial 0x82f63b78).
    pub(crate) fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// An SCTP packet with its chunks (kind, flags, value; each padded to 4 bytes) and a
    /// right CRC32c, stored least significant byte first (RFC 9260 appendix A).
    pub(crate) fn packet(sport: u16, dport: u16, vtag: u32, chunks: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&vtag.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
        for (kind, flags, value) in chunks {
            p.push(*kind);
            p.push(*flags);
            p.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
            p.extend_from_slice(value);
            while p.len() % 4 != 0 {
                p.push(0);
            }
        }
        let c = crc32c_bitwise(&p);
        p[8..12].copy_from_slice(&c.to_le_bytes());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::testing::crc32c_bitwise;
    use super::*;

    fn init_packet() -> Vec<u8> {
        let mut p = vec![
            0x9c, 0x40, 0x0b, 0x59, // ports 40000 -> 2905
            0, 0, 0, 0, // vtag 0 (INIT)
            0, 0, 0, 0, // checksum
            1, 0, 0, 20, // INIT, length 20
            0x11, 0x22, 0x33, 0x44, // initiate tag
            0, 1, 0, 0, // a_rwnd
            0, 10, 0, 10, // streams
            0xde, 0xad, 0xbe, 0xef, // initial TSN
        ];
        SctpPacket::new_unchecked(&mut p[..]).fill_checksum();
        p
    }

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value of "123456789" (RFC 3720 B.4's polynomial).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_bitwise(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn checksum_is_crc_with_zero_field_stored_little_endian() {
        let p = init_packet();
        let mut zeroed = p.clone();
        zeroed[8..12].fill(0);
        let want = crc32c_bitwise(&zeroed);
        assert_eq!(&p[8..12], &want.to_le_bytes());
        let v = SctpPacket::new_checked(&p[..]).unwrap();
        assert!(v.verify_checksum());
        assert_eq!(v.src_port(), 40000);
        assert_eq!(v.dst_port(), 2905);
        assert_eq!(v.first_chunk_type(), Some(chunk::INIT));
    }

    #[test]
    fn the_parser_records_the_first_chunk_once() {
        use super::testing::packet;
        // An IPv4 frame around an SCTP packet; the parser's record equals the chunk walk's.
        let frame = |sctp: &[u8]| {
            let mut f = vec![0u8; 14];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            let total = (20 + sctp.len()) as u16;
            f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0, 0, 64, 132, 0, 0, 10, 0, 0, 1]);
            f[16..18].copy_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&[10, 0, 0, 2]);
            f.extend_from_slice(sctp);
            f
        };
        type ChunkList<'a> = &'a [(u8, u8, &'a [u8])];
        let cases: [(ChunkList, Option<FirstChunk>); 4] = [
            (
                &[(chunk::INIT, 0, &[1, 2, 3, 4])],
                Some(FirstChunk {
                    kind: chunk::INIT,
                    flags: 0,
                    abort_follows: false,
                }),
            ),
            (
                &[(chunk::COOKIE_ECHO, 0, &[9; 4]), (chunk::ABORT, 1, &[])],
                Some(FirstChunk {
                    kind: chunk::COOKIE_ECHO,
                    flags: 0,
                    abort_follows: true,
                }),
            ),
            (
                &[(chunk::DATA, 3, &[7; 5]), (chunk::ABORT, 0, &[])],
                Some(FirstChunk {
                    kind: chunk::DATA,
                    flags: 3,
                    abort_follows: false,
                }),
            ),
            (&[], None),
        ];
        for (chunks, want) in cases {
            let p = packet(1, 2, 3, chunks);
            assert_eq!(FirstChunk::of(&p), want, "{chunks:?}");
            let parsed = crate::wire::parse(&frame(&p)).unwrap();
            assert_eq!(parsed.sctp, want, "{chunks:?}");
        }
    }

    #[test]
    fn port_change_needs_a_new_crc() {
        let mut p = init_packet();
        let mut v = SctpPacket::new_checked(&mut p[..]).unwrap();
        v.set_dst_port(80);
        assert!(!v.verify_checksum());
        v.fill_checksum();
        assert!(v.verify_checksum());
        let mut z = p.clone();
        z[8..12].fill(0);
        assert_eq!(&p[8..12], &crc32c_bitwise(&z).to_le_bytes());
    }

    #[test]
    fn chunk_walk_pads_and_stops_on_bad_lengths() {
        let p = [
            0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, // header
            10, 0, 0, 7, 1, 2, 3, 0, // COOKIE_ECHO len 7, padded to 8
            6, 0, 0, 4, // ABORT
            0, 0, 0, 2, // length 2: the walk stops
            3, 0, 0, 4,
        ];
        let v = SctpPacket::new_checked(&p[..]).unwrap();
        let kinds: Vec<(u8, usize)> = v.chunks().map(|c| (c.kind, c.value.len())).collect();
        assert_eq!(kinds, [(chunk::COOKIE_ECHO, 3), (chunk::ABORT, 0)]);
        // A chunk running past the end is returned cut, then the walk ends.
        let q = [0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 200, 9, 9];
        let v = SctpPacket::new_checked(&q[..]).unwrap();
        let c: Vec<_> = v.chunks().collect();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].value, &[9, 9]);
        assert!(SctpPacket::new_checked(&q[..11]).is_err());
        assert_eq!(
            SctpPacket::new_checked(&q[..13])
                .unwrap()
                .first_chunk_type(),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_crc_matches_bitwise(b in proptest::collection::vec(0u8.., 12..200)) {
            let v = SctpPacket::new_checked(&b[..]).unwrap();
            let _ = v.chunks().count();
            let _ = v.first_chunk_type();
            let mut z = b.clone();
            z[8..12].fill(0);
            proptest::prop_assert_eq!(v.compute_checksum(), crc32c_bitwise(&z));
        }
    }
}
