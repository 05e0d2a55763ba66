//! Zero-copy packet views, in-place rewrite, checksums and tunnel encapsulation.
//!
//! The views follow smoltcp's `wire`: a `Packet<T: AsRef<[u8]>>` over borrowed bytes whose
//! fields are byte ranges in a `mod field`; `new_checked` validates lengths once, after which
//! no accessor can panic; setters need `T: AsMut<[u8]>` and rewrite in place. Setters of
//! fields covered by a checksum update that checksum incrementally (RFC 1624); `fill_*`
//! recomputes it in full. [`parse()`] is the one-pass flow parse the engine runs on every
//! frame, and [`Frame`] the mutable buffer with headroom it runs on.
//!
//! The engine's paths: `parse(frame.data())` → connection lookup on the [`Parsed`] tuple →
//! NAT / FullNAT: [`rewrite`] (or [`rewrite_icmp_error`] for an ICMP error quoting a tracked
//! connection), which keeps checksum-partial frames partial; DR: rewrite the MACs with
//! [`EthernetFrame`]; tunnelling: `pull_front(l2_len)`, [`encap_ipip`] / [`encap_gre`] /
//! [`encap_gue`], [`ethernet::push_header`]. Before a frame leaves without checksum offload,
//! [`Frame::finish_checksum`] completes a partial checksum.
//!
//! Nothing here allocates, reads a clock or does I/O; nothing here decides what to do with a
//! packet (that is the director's job), and IP fragments are described, never reassembled.

pub mod arp;
pub mod checksum;
pub mod encap;
pub mod ethernet;
pub mod frame;
pub mod gso;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod nat;
pub mod parse;
pub mod sctp;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod tests;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use encap::{
    Decap, EncapError, GueOptions, Outer, OuterV4, OuterV6, Tunnel, decap, encap_fou, encap_gre,
    encap_gue, encap_ipip,
};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame};
pub use frame::{CsumStatus, Frame, FrameError};
pub use icmp::{Icmpv4Packet, Icmpv6Packet, QuotedPacket};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Fragment, Ipv6Packet, Ipv6Walk};
pub use l4::{fill_l4_checksum, finish_partial};
pub use nat::{NatRewrite, RewriteError, rewrite, rewrite_icmp_error, rewrite_parsed};
pub use parse::{FragInfo, L3Kind, Parsed, parse, parse_ip};
pub use sctp::SctpPacket;
pub use tcp::{TcpFlags, TcpPacket};
pub use udp::UdpPacket;

/// IP protocol numbers the views know.
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulation (IPIP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation (also IPv6 in IPv4, "6in4").
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
    /// Encapsulating security payload (opaque: the walk stops here).
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 no next header.
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
    /// SCTP (ports in the same place as TCP and UDP).
    pub const SCTP: u8 = 132;
}

/// Why a packet was refused: small and `Copy`, so the engine can count drops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// Shorter than a header, or than a length field says.
    Truncated,
    /// A VLAN tag sequence the director does not accept.
    BadVlan,
    /// ARP that is not Ethernet/IPv4, or has odd address lengths.
    BadArp,
    /// IP version nibble does not match the EtherType or the context.
    BadVersion,
    /// IPv4 IHL below 5.
    BadIhl,
    /// IPv4 total length below the header length, or longer than the frame.
    BadTotalLen,
    /// An IPv6 extension header chain longer than the walk's bound.
    TooManyExtHeaders,
    /// TCP data offset below 5.
    BadTcpOffset,
    /// UDP length field below 8 or beyond the IP payload.
    BadUdpLen,
    /// A GRE header with flags or a version the decapsulator does not handle.
    BadGre,
    /// A GUE header with an unknown variant or a header length beyond the payload.
    BadGue,
}

impl Malformed {
    /// Every reason, in [`Malformed::index`] order: for arrays of drop counters.
    pub const ALL: [Malformed; 11] = [
        Malformed::Truncated,
        Malformed::BadVlan,
        Malformed::BadArp,
        Malformed::BadVersion,
        Malformed::BadIhl,
        Malformed::BadTotalLen,
        Malformed::TooManyExtHeaders,
        Malformed::BadTcpOffset,
        Malformed::BadUdpLen,
        Malformed::BadGre,
        Malformed::BadGue,
    ];

    /// A dense index for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::BadVlan => "bad_vlan",
            Malformed::BadArp => "bad_arp",
            Malformed::BadVersion => "bad_version",
            Malformed::BadIhl => "bad_ihl",
            Malformed::BadTotalLen => "bad_total_len",
            Malformed::TooManyExtHeaders => "too_many_ext_headers",
            Malformed::BadTcpOffset => "bad_tcp_offset",
            Malformed::BadUdpLen => "bad_udp_len",
            Malformed::BadGre => "bad_gre",
            Malformed::BadGue => "bad_gue",
        }
    }
}

impl core::fmt::Display for Malformed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Malformed {}

/// Read a big-endian `u16` at `at` (callers have checked the length).
#[inline(always)]
pub(crate) fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Read a big-endian `u32` at `at` (callers have checked the length).
#[inline(always)]
pub(crate) fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Write a big-endian `u16` at `at`.
#[inline(always)]
pub(crate) fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Write a big-endian `u32` at `at`.
#[inline(always)]
pub(crate) fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
