//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages, and the IP packet quoted in errors.
//!
//! The director forwards ICMP errors that quote a tracked connection to its real server
//! (fragmentation-needed / packet-too-big for PMTU discovery!) and, for NAT, rewrites the
//! quoted header as well. [`QuotedPacket`] reads and rewrites a quoted packet that is
//! usually truncated: an IP header and as little as 8 bytes of L4, so it never requires the
//! lengths the quoted header claims. ICMPv4's checksum covers the message only, ICMPv6's
//! the IPv6 pseudo-header too. Nothing here generates ICMP errors or rate-limits them.

use super::checksum;
use super::{Malformed, ip_proto, ipv4, ipv6, rd16, rd32, wr16};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Byte ranges of the ICMP header (the same for both versions).
pub mod field {
    use core::ops::Range;
    /// Type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// ICMPv4 frag-needed next-hop MTU.
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// ICMPv6 packet-too-big MTU.
    pub const MTU: Range<usize> = 4..8;
    /// ICMPv4 redirect gateway.
    pub const GATEWAY: Range<usize> = 4..8;
    /// ICMPv4 parameter-problem pointer (one byte).
    pub const POINTER: usize = 4;
    /// Header length; the quoted packet of an error starts here.
    pub const HEADER_LEN: usize = 8;
}

/// ICMPv4 message types the director cares about.
pub mod v4_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (code 4: fragmentation needed, with next-hop MTU).
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated, still quoted).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Destination unreachable code: fragmentation needed and DF set.
    pub const CODE_FRAG_NEEDED: u8 = 4;
}

/// ICMPv6 message types the director cares about.
pub mod v6_type {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big (with MTU).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
}

/// True for ICMPv4 error types that quote the offending packet.
pub fn is_v4_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// True for ICMPv6 error types that quote the offending packet.
pub fn is_v6_error(ty: u8) -> bool {
    matches!(ty, 1..=4)
}

macro_rules! icmp_common {
    ($name:ident) => {
        impl<T: AsRef<[u8]>> $name<T> {
            /// Wrap without checks.
            pub fn new_unchecked(buffer: T) -> $name<T> {
                $name { buffer }
            }

            /// Wrap, checking that the 8-byte header is present. The view spans the whole
            /// message (the IP payload) for checksums.
            pub fn new_checked(buffer: T) -> Result<$name<T>, Malformed> {
                if buffer.as_ref().len() < field::HEADER_LEN {
                    return Err(Malformed::Truncated);
                }
                Ok($name { buffer })
            }

            /// The underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// Message type.
            pub fn msg_type(&self) -> u8 {
                self.buffer.as_ref()[field::TYPE]
            }
            /// Message code.
            pub fn msg_code(&self) -> u8 {
                self.buffer.as_ref()[field::CODE]
            }
            /// Checksum.
            pub fn checksum(&self) -> u16 {
                rd16(self.buffer.as_ref(), 2)
            }
            /// Echo identifier (meaningful for echo messages).
            pub fn echo_ident(&self) -> u16 {
                rd16(self.buffer.as_ref(), 4)
            }
            /// Echo sequence number (meaningful for echo messages).
            pub fn echo_seq_no(&self) -> u16 {
                rd16(self.buffer.as_ref(), 6)
            }
            /// The four bytes after the checksum.
            pub fn rest_of_header(&self) -> u32 {
                rd32(self.buffer.as_ref(), 4)
            }
            /// Everything after the 8-byte header (the quoted packet of an error).
            pub fn payload(&self) -> &[u8] {
                &self.buffer.as_ref()[field::HEADER_LEN..]
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// Set the type; raw.
            pub fn set_msg_type(&mut self, v: u8) {
                self.buffer.as_mut()[field::TYPE] = v;
            }
            /// Set the code; raw.
            pub fn set_msg_code(&mut self, v: u8) {
                self.buffer.as_mut()[field::CODE] = v;
            }
            /// Set the checksum field.
            pub fn set_checksum(&mut self, v: u16) {
                wr16(self.buffer.as_mut(), 2, v);
            }
            /// Set the echo identifier (checksum updated incrementally).
            pub fn set_echo_ident(&mut self, v: u16) {
                let b = self.buffer.as_mut();
                let (old, hc) = (rd16(b, 4), rd16(b, 2));
                wr16(b, 4, v);
                wr16(b, 2, checksum::update16(hc, old, v));
            }
            /// Set the echo sequence number (checksum updated incrementally).
            pub fn set_echo_seq_no(&mut self, v: u16) {
                let b = self.buffer.as_mut();
                let (old, hc) = (rd16(b, 6), rd16(b, 2));
                wr16(b, 6, v);
                wr16(b, 2, checksum::update16(hc, old, v));
            }
            /// Everything after the header, writable (then refill the checksum).
            pub fn payload_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[field::HEADER_LEN..]
            }
            /// The quoted packet of an error as a view to read and rewrite (then refill
            /// this message's checksum).
            pub fn quoted_mut(&mut self) -> Result<QuotedPacket<&mut [u8]>, Malformed> {
                QuotedPacket::new_checked(self.payload_mut())
            }
        }
    };
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

icmp_common!(Icmpv4Packet);

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// True for an error message (3, 4, 5, 11, 12) that quotes a packet.
    pub fn is_error(&self) -> bool {
        is_v4_error(self.msg_type())
    }

    /// The next-hop MTU of a fragmentation-needed message (type 3 code 4).
    pub fn next_hop_mtu(&self) -> Option<u16> {
        (self.msg_type() == v4_type::DEST_UNREACHABLE
            && self.msg_code() == v4_type::CODE_FRAG_NEEDED)
            .then(|| rd16(self.buffer.as_ref(), 6))
    }

    /// The quoted packet of an error message.
    pub fn quoted(&self) -> Result<QuotedPacket<&[u8]>, Malformed> {
        QuotedPacket::new_checked(self.payload())
    }

    /// True when the checksum (over the message only) is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Recompute the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

icmp_common!(Icmpv6Packet);

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// True for an error message (1 to 4) that quotes a packet.
    pub fn is_error(&self) -> bool {
        is_v6_error(self.msg_type())
    }

    /// The MTU of a packet-too-big message.
    pub fn mtu(&self) -> Option<u32> {
        (self.msg_type() == v6_type::PACKET_TOO_BIG).then(|| rd32(self.buffer.as_ref(), 4))
    }

    /// The quoted packet of an error message.
    pub fn quoted(&self) -> Result<QuotedPacket<&[u8]>, Malformed> {
        QuotedPacket::new_checked(self.payload())
    }

    /// True when the checksum (pseudo-header included) is right.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        checksum::fold(checksum::sum_into(
            checksum::pseudo_v6(src, dst, ip_proto::ICMPV6, len),
            b,
        )) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Recompute the checksum over the pseudo-header and the whole message.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let len = b.len() as u32;
        let c = !checksum::fold(checksum::sum_into(
            checksum::pseudo_v6(src, dst, ip_proto::ICMPV6, len),
            b,
        ));
        self.set_checksum(c);
    }

    /// Carry an IPv6 address change of the enclosing header into the checksum.
    pub fn update_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let hc = self.checksum();
        self.set_checksum(checksum::update128(hc, u128::from(old), u128::from(new)));
    }
}

/// An IP packet quoted inside an ICMP error: a full IP header (and IPv6 extension headers)
/// followed by at least 0 bytes of L4. Ports are read only if the first 4 L4 bytes are
/// there, the L4 checksum is updated only if its field is there.
#[derive(Debug, Clone)]
pub struct QuotedPacket<T: AsRef<[u8]>> {
    buffer: T,
    l4_offset: usize,
    protocol: u8,
    first_fragment: bool,
}

impl<T: AsRef<[u8]>> QuotedPacket<T> {
    /// Parse a quoted packet, tolerating truncation after the IP header(s).
    pub fn new_checked(buffer: T) -> Result<QuotedPacket<T>, Malformed> {
        let b = buffer.as_ref();
        let (l4_offset, protocol, first_fragment) = match b.first().map(|v| v >> 4) {
            Some(4) => {
                if b.len() < ipv4::field::HEADER_LEN {
                    return Err(Malformed::Truncated);
                }
                let hl = usize::from(b[0] & 0x0f) * 4;
                if hl < 20 {
                    return Err(Malformed::BadIhl);
                }
                if b.len() < hl {
                    return Err(Malformed::Truncated);
                }
                (hl, b[9], rd16(b, 6) & 0x1fff == 0)
            }
            Some(6) => {
                if b.len() < ipv6::field::HEADER_LEN {
                    return Err(Malformed::Truncated);
                }
                let w = ipv6::walk_ext(b[6], &b[ipv6::field::HEADER_LEN..])?;
                (
                    w.l4_offset,
                    w.protocol,
                    w.fragment.is_none_or(|f| f.offset == 0),
                )
            }
            Some(_) => return Err(Malformed::BadVersion),
            None => return Err(Malformed::Truncated),
        };
        Ok(QuotedPacket {
            buffer,
            l4_offset,
            protocol,
            first_fragment,
        })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// True if the quoted packet is IPv6.
    pub fn is_v6(&self) -> bool {
        self.b()[0] >> 4 == 6
    }

    /// Source address of the quoted packet (the original sender's own address).
    pub fn src_addr(&self) -> IpAddr {
        let b = self.b();
        if self.is_v6() {
            IpAddr::V6(Ipv6Addr::from(u128::from_be_bytes(
                b[8..24].try_into().unwrap_or([0; 16]),
            )))
        } else {
            IpAddr::V4(Ipv4Addr::from(rd32(b, 12)))
        }
    }

    /// Destination address of the quoted packet.
    pub fn dst_addr(&self) -> IpAddr {
        let b = self.b();
        if self.is_v6() {
            IpAddr::V6(Ipv6Addr::from(u128::from_be_bytes(
                b[24..40].try_into().unwrap_or([0; 16]),
            )))
        } else {
            IpAddr::V4(Ipv4Addr::from(rd32(b, 16)))
        }
    }

    /// Upper-layer protocol of the quoted packet.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Offset of the quoted L4 header.
    pub fn l4_offset(&self) -> usize {
        self.l4_offset
    }

    /// The quoted L4 bytes (often just 8).
    pub fn l4(&self) -> &[u8] {
        &self.b()[self.l4_offset..]
    }

    fn has_ports(&self) -> bool {
        self.first_fragment
            && matches!(
                self.protocol,
                ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP
            )
            && self.b().len() >= self.l4_offset + 4
    }

    /// Quoted (source, destination) ports of TCP, UDP or SCTP, if present.
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.has_ports().then(|| {
            (
                rd16(self.b(), self.l4_offset),
                rd16(self.b(), self.l4_offset + 2),
            )
        })
    }

    /// Quoted ICMP echo identifier, if the quoted packet is an echo and it is present.
    pub fn echo_ident(&self) -> Option<u16> {
        let echo = matches!(self.protocol, ip_proto::ICMP | ip_proto::ICMPV6);
        (echo && self.first_fragment && self.b().len() >= self.l4_offset + 6)
            .then(|| rd16(self.b(), self.l4_offset + 4))
    }

    /// Position of the quoted L4 checksum field, if it was quoted (TCP: 16, UDP: 6).
    fn l4_csum_at(&self) -> Option<usize> {
        let at = match self.protocol {
            ip_proto::TCP => self.l4_offset + 16,
            ip_proto::UDP => self.l4_offset + 6,
            _ => return None,
        };
        (self.first_fragment && self.b().len() >= at + 2).then_some(at)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> QuotedPacket<T> {
    fn fix_l4(&mut self, f: impl Fn(u16) -> u16) {
        if let Some(at) = self.l4_csum_at() {
            let udp = self.protocol == ip_proto::UDP;
            let b = self.buffer.as_mut();
            let hc = rd16(b, at);
            let new = if udp {
                checksum::udp_update(hc, f)
            } else {
                f(hc)
            };
            wr16(b, at, new);
        }
    }

    fn set_addr(&mut self, v4_at: usize, v6_at: usize, a: IpAddr) -> bool {
        match (self.is_v6(), a) {
            (false, IpAddr::V4(a)) => {
                let b = self.buffer.as_mut();
                let (old, new) = (rd32(b, v4_at), u32::from(a));
                let hc = rd16(b, 10);
                b[v4_at..v4_at + 4].copy_from_slice(&a.octets());
                wr16(b, 10, checksum::update32(hc, old, new));
                self.fix_l4(|hc| checksum::update32(hc, old, new));
                true
            }
            (true, IpAddr::V6(a)) => {
                let b = self.buffer.as_mut();
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[v6_at..v6_at + 16]);
                b[v6_at..v6_at + 16].copy_from_slice(&a.octets());
                let (old, new) = (u128::from_be_bytes(o), u128::from(a));
                self.fix_l4(|hc| checksum::update128(hc, old, new));
                true
            }
            _ => false,
        }
    }

    /// Rewrite the quoted source address; the quoted IPv4 header checksum and, if quoted,
    /// the L4 checksum follow incrementally. False (and nothing written) on a family mismatch.
    pub fn set_src_addr(&mut self, a: IpAddr) -> bool {
        self.set_addr(12, 8, a)
    }

    /// Rewrite the quoted destination address (see [`QuotedPacket::set_src_addr`]).
    pub fn set_dst_addr(&mut self, a: IpAddr) -> bool {
        self.set_addr(16, 24, a)
    }

    fn set_port(&mut self, rel: usize, p: u16) -> bool {
        if !self.has_ports() {
            return false;
        }
        let at = self.l4_offset + rel;
        let b = self.buffer.as_mut();
        let old = rd16(b, at);
        wr16(b, at, p);
        self.fix_l4(|hc| checksum::update16(hc, old, p));
        true
    }

    /// Rewrite the quoted source port; false if no ports were quoted.
    pub fn set_src_port(&mut self, p: u16) -> bool {
        self.set_port(0, p)
    }

    /// Rewrite the quoted destination port; false if no ports were quoted.
    pub fn set_dst_port(&mut self, p: u16) -> bool {
        self.set_port(2, p)
    }
}
