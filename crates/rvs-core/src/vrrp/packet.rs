//! VRRP advertisements on the wire: version 2 (RFC 3768, IPv4 only) and version 3
//! (RFC 5798, IPv4 and IPv6), as a view over the IP payload and an emitter.
//!
//! ```text
//!  v2:  | Ver=2 | Type=1 | VRID | Priority | Count IPv4 Addrs |
//!       | Auth Type      | Adver Int (s)   | Checksum          |
//!       | IPv4 address(es) ...  | Authentication data (8 bytes)|
//!  v3:  | Ver=3 | Type=1 | VRID | Priority | Count IPvX Addrs |
//!       | rsvd(4) | Max Adver Int (12 bits, cs) | Checksum     |
//!       | IPvX address(es) ...                                 |
//! ```
//!
//! The address family is not in the VRRP header: it comes from the IP layer, so the view is
//! built with the [`Family`] of the packet that carried it. Checksums: v2 covers the VRRP
//! message (authentication data included); v3 adds the IP pseudo-header of the carrying
//! packet, for IPv6 (RFC 8200 section 8.1) and, as keepalived computes and requires, for
//! IPv4 too (RFC 793 style: source, destination, zero, protocol 112, length).
//!
//! VRRPv2 over IPv6 (a keepalived extension outside any RFC) is not supported. VRRPv2 with
//! keepalived's AH authentication wraps this message in an IPv4 AH packet: [`super::ah`].

use core::ops::Range;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::EthernetAddress;
use crate::wire::checksum;

/// IP protocol number of VRRP.
pub const IP_PROTO_VRRP: u8 = 112;

/// The IPv4 multicast group of VRRP, 224.0.0.18.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// The IPv6 multicast group of VRRP, ff02::12.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

//= https://www.rfc-editor.org/rfc/rfc5798#section-5.1.1.3
//# The TTL MUST be set to 255.  A VRRP router receiving a packet with
//# the TTL not equal to 255 MUST discard the packet.
/// The IPv4 TTL / IPv6 hop limit of every advertisement.
pub const TTL: u8 = 255;

/// Length of the fixed header (up to and including the checksum).
pub const HEADER_LEN: usize = 8;

/// Length of the VRRPv2 authentication data.
pub const AUTH_LEN: usize = 8;

/// The only VRRP packet type: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;

/// VRRPv2 authentication types (RFC 2338 section 5.3.6; RFC 3768 keeps only 0).
pub mod auth_type {
    /// No authentication.
    pub const NONE: u8 = 0;
    /// Simple text password (keepalived `auth_type PASS`).
    pub const PASS: u8 = 1;
    /// IP Authentication Header (keepalived `auth_type AH`, see [`super::ah`]).
    pub const AH: u8 = 2;
}

/// Byte positions of the VRRP header.
pub mod field {
    use core::ops::Range;
    /// Version (high nibble) and type (low nibble).
    pub const VERS_TYPE: usize = 0;
    /// Virtual router identifier.
    pub const VRID: usize = 1;
    /// Priority.
    pub const PRIORITY: usize = 2;
    /// Count of addresses.
    pub const COUNT: usize = 3;
    /// v2: authentication type.
    pub const AUTH_TYPE: usize = 4;
    /// v2: advertisement interval in seconds.
    pub const ADVER_INT_V2: usize = 5;
    /// v3: 4 reserved bits and the 12-bit maximum advertisement interval (centiseconds).
    pub const MAX_ADVER_INT: Range<usize> = 4..6;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 6..8;
    /// First address.
    pub const ADDRESSES: usize = 8;
}

/// The VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, interval in whole seconds, optional password.
    V2,
    /// VRRPv3, RFC 5798: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The version number on the wire.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// The address family of a virtual router (from the IP layer, not the VRRP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (protocol 112 in IPv4, multicast 224.0.0.18).
    Ipv4,
    /// IPv6 (next header 112, multicast ff02::12).
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Bytes per address.
    pub fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// The VRRP multicast group of this family.
    pub fn multicast_group(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(MCAST_V4),
            Family::Ipv6 => IpAddr::V6(MCAST_V6),
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc5798#section-7.3
//# The virtual router MAC address associated with a virtual router is an
//# IEEE 802 MAC Address in the following format:
//#
//# IPv4 case: 00-00-5E-00-01-{VRID} (in hex, in Internet-standard bit-order)
//#
//# IPv6 case: 00-00-5E-00-02-{VRID} (in hex, in Internet-standard bit-order)
/// The virtual router MAC address of `vrid` in `family`.
pub fn virtual_mac(family: Family, vrid: u8) -> EthernetAddress {
    let f = match family {
        Family::Ipv4 => 1,
        Family::Ipv6 => 2,
    };
    EthernetAddress([0x00, 0x00, 0x5e, 0x00, f, vrid])
}

/// The VRID of an advertisement, read without validation: for demultiplexing a received
/// packet to its virtual router before [`AdvertPacket::new_checked`] runs.
pub fn peek_vrid(payload: &[u8]) -> Option<u8> {
    payload.get(field::VRID).copied()
}

/// Why an advertisement was refused. Small and `Copy`, counted per reason by the router
/// (keepalived's per-instance statistics: `packet_len_err`, `ip_ttl_err`,
/// `invalid_type_rcvd`, `addr_list_err`, `invalid_authtype`, `authtype_mismatch`,
/// `auth_failure`, `advert_interval_err`, and the RFC 6527 MIB's checksum, version and
/// VRID errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdvertError {
    /// Shorter than the fixed header, or than the address count says.
    Truncated,
    /// Longer than the address count says (keepalived requires the exact length).
    BadLength,
    /// Version nibble other than 2 or 3, or v2 over IPv6.
    BadVersion,
    /// Type other than ADVERTISEMENT.
    BadType,
    /// The checksum does not verify.
    BadChecksum,
    /// TTL / hop limit other than 255 (multicast only, as keepalived).
    BadTtl,
    /// A valid version that is not the configured one.
    WrongVersion,
    /// A VRID other than the router's.
    WrongVrid,
    /// The source or destination address is not of the router's family.
    WrongFamily,
    /// v2: an authentication type other than none, PASS or AH.
    BadAuthType,
    /// v2: an authentication type other than the configured one.
    AuthTypeMismatch,
    /// v2: the password does not match.
    AuthFailure,
    /// v2: an advertisement interval other than the configured one.
    IntervalMismatch,
    /// v3: an advertisement interval of zero.
    ZeroInterval,
    /// The address count differs from the configured addresses.
    AddressCount,
    /// A configured address is missing from the advertisement.
    AddressList,
    /// Multicast received while configured for unicast peers, or unicast while multicast.
    UnexpectedCast,
    /// A unicast advertisement from an address that is not a configured peer.
    NotUnicastPeer,
}

impl AdvertError {
    /// Number of reasons (the length of a counter array).
    pub const COUNT: usize = 18;

    /// Every reason, in [`AdvertError::index`] order.
    pub const ALL: [AdvertError; AdvertError::COUNT] = [
        AdvertError::Truncated,
        AdvertError::BadLength,
        AdvertError::BadVersion,
        AdvertError::BadType,
        AdvertError::BadChecksum,
        AdvertError::BadTtl,
        AdvertError::WrongVersion,
        AdvertError::WrongVrid,
        AdvertError::WrongFamily,
        AdvertError::BadAuthType,
        AdvertError::AuthTypeMismatch,
        AdvertError::AuthFailure,
        AdvertError::IntervalMismatch,
        AdvertError::ZeroInterval,
        AdvertError::AddressCount,
        AdvertError::AddressList,
        AdvertError::UnexpectedCast,
        AdvertError::NotUnicastPeer,
    ];

    /// A dense index for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AdvertError::Truncated => "truncated",
            AdvertError::BadLength => "bad_length",
            AdvertError::BadVersion => "bad_version",
            AdvertError::BadType => "bad_type",
            AdvertError::BadChecksum => "bad_checksum",
            AdvertError::BadTtl => "bad_ttl",
            AdvertError::WrongVersion => "wrong_version",
            AdvertError::WrongVrid => "wrong_vrid",
            AdvertError::WrongFamily => "wrong_family",
            AdvertError::BadAuthType => "bad_auth_type",
            AdvertError::AuthTypeMismatch => "auth_type_mismatch",
            AdvertError::AuthFailure => "auth_failure",
            AdvertError::IntervalMismatch => "interval_mismatch",
            AdvertError::ZeroInterval => "zero_interval",
            AdvertError::AddressCount => "address_count",
            AdvertError::AddressList => "address_list",
            AdvertError::UnexpectedCast => "unexpected_cast",
            AdvertError::NotUnicastPeer => "not_unicast_peer",
        }
    }
}

impl core::fmt::Display for AdvertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for AdvertError {}

/// Why an advertisement could not be emitted (a caller mistake, never a peer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmitError {
    /// The buffer is shorter than [`AdvertRepr::buffer_len`].
    BufferTooSmall,
    /// An address, the source or the destination is not of the representation's family.
    FamilyMismatch,
    /// More than 255 addresses.
    TooManyAddresses,
    /// v2: an interval that is not a whole number of seconds in 1..=255; v3: outside
    /// 1..=4095 centiseconds.
    BadInterval,
    /// v2 over IPv6.
    V2OverIpv6,
}

impl core::fmt::Display for EmitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EmitError::BufferTooSmall => "buffer too small",
            EmitError::FamilyMismatch => "address family mismatch",
            EmitError::TooManyAddresses => "more than 255 addresses",
            EmitError::BadInterval => "advertisement interval out of range",
            EmitError::V2OverIpv6 => "VRRPv2 over IPv6",
        })
    }
}

impl std::error::Error for EmitError {}

/// VRRPv2 authentication as configured (keepalived `authentication { auth_type PASS|AH;
/// auth_pass ... }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Auth {
    /// No authentication (type 0, eight zero bytes of authentication data).
    #[default]
    None,
    /// Simple text password (type 1): up to 8 bytes, zero padded.
    Pass([u8; AUTH_LEN]),
    /// keepalived's IPsec AH (type 2): the advertisement carries eight zero bytes and
    /// travels behind an AH header whose HMAC-MD5-96 ICV is keyed with this (the password's
    /// first 8 bytes, zero padded); see [`super::ah`].
    Ah([u8; AUTH_LEN]),
}

impl Auth {
    /// A PASS authentication from a password; like keepalived, only the first 8 bytes are
    /// used and shorter passwords are padded with zeros.
    pub fn pass(password: &str) -> Auth {
        let mut data = [0u8; AUTH_LEN];
        let b = password.as_bytes();
        let n = b.len().min(AUTH_LEN);
        data[..n].copy_from_slice(&b[..n]);
        Auth::Pass(data)
    }

    /// An AH authentication keyed with `password` (its first 8 bytes, zero padded, as
    /// keepalived's `auth_pass`).
    pub fn ah(password: &str) -> Auth {
        Auth::Ah(super::ah::key(password))
    }

    /// The authentication type on the wire.
    pub fn auth_type(&self) -> u8 {
        match self {
            Auth::None => auth_type::NONE,
            Auth::Pass(_) => auth_type::PASS,
            Auth::Ah(_) => auth_type::AH,
        }
    }

    /// The authentication data on the wire (AH: zeros; keepalived `vrrp_build_vrrp_v2`
    /// copies the password only for PASS).
    pub fn data(&self) -> [u8; AUTH_LEN] {
        match self {
            Auth::None | Auth::Ah(_) => [0; AUTH_LEN],
            Auth::Pass(d) => *d,
        }
    }
}

fn read_addr(b: &[u8], family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        Family::Ipv6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[..16]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

/// The unfolded sum of the pseudo-header a v3 checksum covers.
fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u64> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(checksum::pseudo_v4(s, d, IP_PROTO_VRRP, len as u16))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Some(checksum::pseudo_v6(s, d, IP_PROTO_VRRP, len as u32))
        }
        _ => None,
    }
}

/// A read-only view of a VRRP advertisement (the IP payload). After
/// [`new_checked`](AdvertPacket::new_checked) no accessor can panic.
#[derive(Debug, Clone)]
pub struct AdvertPacket<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> AdvertPacket<T> {
    //= https://www.rfc-editor.org/rfc/rfc5798#section-7.1
    //# - MUST verify that the VRRP version is 3.
    //#
    //# - MUST verify that the received packet contains the complete VRRP
    //#   packet (including fixed fields, and IPvX address(es)).
    /// Wrap `buffer`, carried by an IP packet of `family`: checks the version (2 or 3), the
    /// type (ADVERTISEMENT) and that the length is exactly what the address count says.
    pub fn new_checked(buffer: T, family: Family) -> Result<AdvertPacket<T>, AdvertError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(AdvertError::Truncated);
        }
        let version = match b[field::VERS_TYPE] >> 4 {
            2 if family == Family::Ipv4 => Version::V2,
            3 => Version::V3,
            _ => return Err(AdvertError::BadVersion),
        };
        if b[field::VERS_TYPE] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(AdvertError::BadType);
        }
        let expected = Self::expected_len(version, family, b[field::COUNT]);
        if b.len() < expected {
            return Err(AdvertError::Truncated);
        }
        if b.len() > expected {
            return Err(AdvertError::BadLength);
        }
        Ok(AdvertPacket { buffer, family })
    }

    fn expected_len(version: Version, family: Family, count: u8) -> usize {
        let auth = if version == Version::V2 { AUTH_LEN } else { 0 };
        HEADER_LEN + usize::from(count) * family.addr_len() + auth
    }

    /// The wrapped bytes.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The address family the view was built for.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        if self.buffer.as_ref()[field::VERS_TYPE] >> 4 == 2 {
            Version::V2
        } else {
            Version::V3
        }
    }

    /// The virtual router identifier.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority (0: the master is resigning).
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The number of addresses.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2: the authentication type; `None` for v3.
    pub fn auth_type(&self) -> Option<u8> {
        match self.version() {
            Version::V2 => Some(self.buffer.as_ref()[field::AUTH_TYPE]),
            Version::V3 => None,
        }
    }

    /// v2: the eight bytes of authentication data; `None` for v3.
    pub fn auth_data(&self) -> Option<&[u8]> {
        match self.version() {
            Version::V2 => {
                let b = self.buffer.as_ref();
                Some(&b[b.len() - AUTH_LEN..])
            }
            Version::V3 => None,
        }
    }

    /// The advertisement interval in centiseconds: v3's 12-bit Max Adver Int (the 4
    /// reserved bits ignored, as RFC 5798 section 5.2.6 requires), v2's seconds × 100.
    pub fn interval_cs(&self) -> u16 {
        let b = self.buffer.as_ref();
        match self.version() {
            Version::V2 => u16::from(b[field::ADVER_INT_V2]) * 100,
            Version::V3 => u16::from_be_bytes([b[4], b[5]]) & 0x0fff,
        }
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::CHECKSUM.start], b[field::CHECKSUM.start + 1]])
    }

    /// The addresses.
    pub fn addresses(&self) -> impl ExactSizeIterator<Item = IpAddr> + '_ {
        let family = self.family;
        let n = usize::from(self.count());
        let len = family.addr_len();
        self.buffer.as_ref()[field::ADDRESSES..field::ADDRESSES + n * len]
            .chunks_exact(len)
            .map(move |c| read_addr(c, family))
    }

    /// True when `addr` is one of the advertised addresses.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.addresses().any(|a| a == addr)
    }

    //= https://www.rfc-editor.org/rfc/rfc5798#section-5.2.8
    //# The checksum is the 16-bit one's complement of the one's complement
    //# sum of the entire VRRP message starting with the version field and a
    //# "pseudo-header" as defined in Section 8.1 of [RFC2460].  The next
    //# header field in the "pseudo-header" should be set to 112 (decimal)
    //# for VRRP.  For computing the checksum, the checksum field is set to
    //# zero.
    /// True when the checksum verifies for a packet from `src` to `dst`: v2 over the
    /// message alone (authentication data included, RFC 3768 section 5.3.8); v3 over the
    /// pseudo-header and the message, for IPv4 as keepalived's `vrrp_in_chk` computes it.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let acc = match self.version() {
            Version::V2 => 0,
            Version::V3 => match pseudo_sum(src, dst, b.len()) {
                Some(acc) => acc,
                None => return false,
            },
        };
        checksum::fold(checksum::sum_into(acc, b)) == 0xffff
    }
}

/// The fields of an advertisement to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertRepr<'a> {
    /// Protocol version.
    pub version: Version,
    /// Address family (decides the address size and the pseudo-header).
    pub family: Family,
    /// Virtual router identifier.
    pub vrid: u8,
    /// Priority (0 to resign).
    pub priority: u8,
    /// Interval in centiseconds: v2 needs a whole number of seconds (a multiple of 100).
    pub interval_cs: u16,
    /// v2 authentication (ignored for v3).
    pub auth: Auth,
    /// The virtual addresses.
    pub addresses: &'a [IpAddr],
}

impl AdvertRepr<'_> {
    /// The length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        let auth = if self.version == Version::V2 {
            AUTH_LEN
        } else {
            0
        };
        HEADER_LEN + self.addresses.len() * self.family.addr_len() + auth
    }

    /// Write the advertisement into `buf` with its checksum for a packet from `src` to `dst`;
    /// returns the length written.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize, EmitError> {
        if self.version == Version::V2 && self.family == Family::Ipv6 {
            return Err(EmitError::V2OverIpv6);
        }
        if self.addresses.len() > 255 {
            return Err(EmitError::TooManyAddresses);
        }
        if Family::of(src) != self.family
            || Family::of(dst) != self.family
            || self.addresses.iter().any(|a| Family::of(*a) != self.family)
        {
            return Err(EmitError::FamilyMismatch);
        }
        let interval: [u8; 2] = match self.version {
            Version::V2 => {
                let s = self.interval_cs / 100;
                if !self.interval_cs.is_multiple_of(100) || s == 0 || s > 255 {
                    return Err(EmitError::BadInterval);
                }
                [self.auth.auth_type(), s as u8]
            }
            Version::V3 => {
                if self.interval_cs == 0 || self.interval_cs > 0x0fff {
                    return Err(EmitError::BadInterval);
                }
                self.interval_cs.to_be_bytes()
            }
        };
        let len = self.buffer_len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(EmitError::BufferTooSmall);
        };
        out[field::VERS_TYPE] = (self.version.number() << 4) | TYPE_ADVERTISEMENT;
        out[field::VRID] = self.vrid;
        out[field::PRIORITY] = self.priority;
        out[field::COUNT] = self.addresses.len() as u8;
        out[4..6].copy_from_slice(&interval);
        out[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let mut at = field::ADDRESSES;
        for a in self.addresses {
            match a {
                IpAddr::V4(v4) => out[at..at + 4].copy_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out[at..at + 16].copy_from_slice(&v6.octets()),
            }
            at += self.family.addr_len();
        }
        if self.version == Version::V2 {
            out[at..at + AUTH_LEN].copy_from_slice(&self.auth.data());
        }
        let acc = match self.version {
            Version::V2 => 0,
            Version::V3 => pseudo_sum(src, dst, len).ok_or(EmitError::FamilyMismatch)?,
        };
        let ck = !checksum::fold(checksum::sum_into(acc, out));
        out[field::CHECKSUM].copy_from_slice(&ck.to_be_bytes());
        Ok(len)
    }
}

/// The byte range of the checksum (for tests and tools that patch a packet).
pub const CHECKSUM_RANGE: Range<usize> = field::CHECKSUM;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    /// RFC 1071 byte by byte, deliberately plain: the independent reference.
    fn ref_checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let w = (u32::from(pair[0]) << 8) | u32::from(*pair.get(1).unwrap_or(&0));
            sum += w;
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
        }
        !(sum as u16)
    }

    #[test]
    fn v2_vector_hand_computed() {
        // vrid 51, priority 100, one address 192.168.1.100, no authentication, 1 s.
        // Words: 2133 + 6401 + 0001 + c0a8 + 0164 (+ zeros) = 0x4742 after the end-around
        // carry of 0x145dd; checksum = !0x4742 = 0xb8bd.
        let addrs = [v4([192, 168, 1, 100])];
        let repr = AdvertRepr {
            version: Version::V2,
            family: Family::Ipv4,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            auth: Auth::None,
            addresses: &addrs,
        };
        let mut buf = [0u8; 64];
        let n = repr
            .emit(&mut buf, v4([192, 168, 1, 10]), IpAddr::V4(MCAST_V4))
            .unwrap();
        let expected: [u8; 20] = [
            0x21, 0x33, 0x64, 0x01, 0x00, 0x01, 0xb8, 0xbd, 0xc0, 0xa8, 0x01, 0x64, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        assert_eq!(&buf[..n], &expected);
        let p = AdvertPacket::new_checked(&buf[..n], Family::Ipv4).unwrap();
        assert!(p.verify_checksum(v4([192, 168, 1, 10]), IpAddr::V4(MCAST_V4)));
        // v2 has no pseudo-header: any addresses verify.
        assert!(p.verify_checksum(v4([1, 2, 3, 4]), v4([5, 6, 7, 8])));
        assert_eq!(p.auth_type(), Some(auth_type::NONE));
        assert_eq!(p.interval_cs(), 100);
        assert_eq!(p.addresses().collect::<Vec<_>>(), addrs);
    }

    #[test]
    fn v2_pass_vector_hand_computed() {
        // As above with auth_type PASS and auth_pass "1111" (keepalived's sample config):
        // type byte 01 adds 0x0100 to word 3 (0x0101) and "11" "11" add 0x3131 twice:
        // 0x4742 + 0x0100 + 0x3131 + 0x3131 = 0xaaa4; checksum = !0xaaa4 = 0x555b.
        let addrs = [v4([192, 168, 1, 100])];
        let repr = AdvertRepr {
            version: Version::V2,
            family: Family::Ipv4,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            auth: Auth::pass("1111"),
            addresses: &addrs,
        };
        let mut buf = [0u8; 20];
        repr.emit(&mut buf, v4([192, 168, 1, 10]), IpAddr::V4(MCAST_V4))
            .unwrap();
        let expected: [u8; 20] = [
            0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0x55, 0x5b, 0xc0, 0xa8, 0x01, 0x64, b'1', b'1',
            b'1', b'1', 0, 0, 0, 0,
        ];
        assert_eq!(buf, expected);
        assert_eq!(ref_checksum(&buf), 0);
        let p = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        assert_eq!(p.auth_data(), Some(&b"1111\0\0\0\0"[..]));
    }

    #[test]
    fn v3_ipv4_vector_with_pseudo_header() {
        // 192.168.1.10 -> 224.0.0.18, vrid 51, priority 100, 100 cs, 192.168.1.100.
        // Pseudo-header c0a8 010a e000 0012 0070 000c sums to 0xa241; the message
        // 3133 6401 0064 c0a8 0164 to 0x57a5; 0xa241 + 0x57a5 = 0xf9e6 -> checksum 0x0619.
        let src = v4([192, 168, 1, 10]);
        let dst = IpAddr::V4(MCAST_V4);
        let addrs = [v4([192, 168, 1, 100])];
        let repr = AdvertRepr {
            version: Version::V3,
            family: Family::Ipv4,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            auth: Auth::pass("ignored"),
            addresses: &addrs,
        };
        let mut buf = [0u8; 12];
        assert_eq!(repr.emit(&mut buf, src, dst), Ok(12));
        assert_eq!(
            buf,
            [
                0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x06, 0x19, 0xc0, 0xa8, 0x01, 0x64
            ]
        );
        let p = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        assert!(p.verify_checksum(src, dst));
        // The pseudo-header matters: another destination (a unicast peer) fails.
        assert!(!p.verify_checksum(src, v4([192, 168, 1, 11])));
        // Independent check: the plain RFC 1071 sum over pseudo-header + message is zero.
        let mut whole = vec![192, 168, 1, 10, 224, 0, 0, 18, 0, 112, 0, 12];
        whole.extend_from_slice(&buf);
        assert_eq!(ref_checksum(&whole), 0);
    }

    #[test]
    fn v3_ipv6_vector_with_pseudo_header() {
        // fe80::1 -> ff02::12, vrid 1, priority 200, 100 cs, fe80::100 (24 bytes).
        // Pseudo-header: fe80 + 0001 + ff02 + 0012 + 0018 (length) + 0070 (next header)
        //   = 0x1fe1d -> 0xfe1e.
        let src: IpAddr = "fe80::1".parse().unwrap();
        let dst = IpAddr::V6(MCAST_V6);
        let addrs: [IpAddr; 1] = ["fe80::100".parse().unwrap()];
        let repr = AdvertRepr {
            version: Version::V3,
            family: Family::Ipv6,
            vrid: 1,
            priority: 200,
            interval_cs: 100,
            auth: Auth::None,
            addresses: &addrs,
        };
        let mut buf = [0u8; 24];
        assert_eq!(repr.emit(&mut buf, src, dst), Ok(24));
        // Message: 3101 + c801 + 0064 + fe80 + 0100 = 0x1f8e6 -> 0xf8e7;
        // total 0xfe1e + 0xf8e7 = 0x1f705 -> 0xf706; checksum = !0xf706 = 0x08f9.
        assert_eq!(&buf[..8], &[0x31, 0x01, 0xc8, 0x01, 0x00, 0x64, 0x08, 0xf9]);
        let mut whole = Vec::new();
        whole.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        whole.extend_from_slice(&MCAST_V6.octets());
        whole.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, 112]);
        whole.extend_from_slice(&buf);
        assert_eq!(ref_checksum(&whole), 0);
        let p = AdvertPacket::new_checked(&buf[..], Family::Ipv6).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!(p.addresses().next(), Some(addrs[0]));
        assert_eq!(p.auth_type(), None);
    }

    #[test]
    fn structural_errors() {
        let ok = [
            0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x06, 0x19, 0xc0, 0xa8, 0x01, 0x64,
        ];
        assert!(AdvertPacket::new_checked(&ok[..], Family::Ipv4).is_ok());
        assert_eq!(
            AdvertPacket::new_checked(&ok[..7], Family::Ipv4).err(),
            Some(AdvertError::Truncated)
        );
        assert_eq!(
            AdvertPacket::new_checked(&ok[..11], Family::Ipv4).err(),
            Some(AdvertError::Truncated)
        );
        let mut long = ok.to_vec();
        long.push(0);
        assert_eq!(
            AdvertPacket::new_checked(&long[..], Family::Ipv4).err(),
            Some(AdvertError::BadLength)
        );
        let mut bad = ok;
        bad[0] = 0x41;
        assert_eq!(
            AdvertPacket::new_checked(&bad[..], Family::Ipv4).err(),
            Some(AdvertError::BadVersion)
        );
        bad[0] = 0x32;
        assert_eq!(
            AdvertPacket::new_checked(&bad[..], Family::Ipv4).err(),
            Some(AdvertError::BadType)
        );
        // The same bytes as IPv6 would need 16-byte addresses.
        assert_eq!(
            AdvertPacket::new_checked(&ok[..], Family::Ipv6).err(),
            Some(AdvertError::Truncated)
        );
        // v2 over IPv6 is refused.
        let v2 = [0x21, 1, 100, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            AdvertPacket::new_checked(&v2[..], Family::Ipv6).err(),
            Some(AdvertError::BadVersion)
        );
        // Reserved bits of v3 are ignored on receive.
        let mut rsvd = ok;
        rsvd[4] = 0xf0;
        let p = AdvertPacket::new_checked(&rsvd[..], Family::Ipv4).unwrap();
        assert_eq!(p.interval_cs(), 100);
    }

    #[test]
    fn emit_errors() {
        let addrs = [v4([10, 0, 0, 1])];
        let base = AdvertRepr {
            version: Version::V2,
            family: Family::Ipv4,
            vrid: 1,
            priority: 100,
            interval_cs: 150,
            auth: Auth::None,
            addresses: &addrs,
        };
        let src = v4([10, 0, 0, 2]);
        let dst = IpAddr::V4(MCAST_V4);
        let mut buf = [0u8; 64];
        assert_eq!(base.emit(&mut buf, src, dst), Err(EmitError::BadInterval));
        let v3 = AdvertRepr {
            version: Version::V3,
            interval_cs: 4096,
            ..base
        };
        assert_eq!(v3.emit(&mut buf, src, dst), Err(EmitError::BadInterval));
        let ok = AdvertRepr {
            interval_cs: 100,
            ..base
        };
        assert_eq!(
            ok.emit(&mut buf[..19], src, dst),
            Err(EmitError::BufferTooSmall)
        );
        assert_eq!(
            ok.emit(&mut buf, "::1".parse().unwrap(), dst),
            Err(EmitError::FamilyMismatch)
        );
        let v6 = AdvertRepr {
            family: Family::Ipv6,
            addresses: &[],
            ..ok
        };
        assert_eq!(
            v6.emit(&mut buf, "::1".parse().unwrap(), IpAddr::V6(MCAST_V6)),
            Err(EmitError::V2OverIpv6)
        );
    }

    #[test]
    fn virtual_macs() {
        assert_eq!(
            virtual_mac(Family::Ipv4, 51).0,
            [0x00, 0x00, 0x5e, 0x00, 0x01, 51]
        );
        assert_eq!(
            virtual_mac(Family::Ipv6, 7).0,
            [0x00, 0x00, 0x5e, 0x00, 0x02, 7]
        );
    }

    fn arb_v4() -> impl Strategy<Value = IpAddr> {
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
    }

    fn arb_v6() -> impl Strategy<Value = IpAddr> {
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                              v6 in any::<bool>(), src in arb_v4(), dst in arb_v4()) {
            let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
            if let Ok(p) = AdvertPacket::new_checked(&bytes[..], family) {
                let _ = (p.vrid(), p.priority(), p.interval_cs(), p.checksum(), p.auth_data());
                prop_assert_eq!(p.addresses().count(), usize::from(p.count()));
                let _ = p.verify_checksum(src, dst);
            }
        }

        #[test]
        fn v4_round_trip(v3 in any::<bool>(), vrid in any::<u8>(), prio in any::<u8>(),
                         secs in 1u16..=255, cs in 1u16..=4095,
                         addrs in proptest::collection::vec(arb_v4(), 0..20),
                         pass in "[a-z0-9]{0,10}", src in arb_v4(), dst in arb_v4()) {
            let repr = AdvertRepr {
                version: if v3 { Version::V3 } else { Version::V2 },
                family: Family::Ipv4,
                vrid,
                priority: prio,
                interval_cs: if v3 { cs } else { secs * 100 },
                auth: Auth::pass(&pass),
                addresses: &addrs,
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut buf, src, dst).unwrap();
            prop_assert_eq!(n, buf.len());
            let p = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
            prop_assert_eq!(p.version(), repr.version);
            prop_assert_eq!(p.vrid(), vrid);
            prop_assert_eq!(p.priority(), prio);
            prop_assert_eq!(p.interval_cs(), repr.interval_cs);
            prop_assert_eq!(p.addresses().collect::<Vec<_>>(), addrs.clone());
            prop_assert!(p.verify_checksum(src, dst));
            if !v3 {
                prop_assert_eq!(p.auth_data().unwrap(), &Auth::pass(&pass).data()[..]);
                prop_assert_eq!(ref_checksum(&buf), 0);
            }
            // Any single bit flip breaks the checksum.
            let mut flipped = buf.clone();
            flipped[usize::from(vrid) % buf.len()] ^= 0x10;
            if let Ok(q) = AdvertPacket::new_checked(&flipped[..], Family::Ipv4) {
                prop_assert!(!q.verify_checksum(src, dst));
            }
        }

        #[test]
        fn v6_round_trip(vrid in any::<u8>(), prio in any::<u8>(), cs in 1u16..=4095,
                         addrs in proptest::collection::vec(arb_v6(), 0..10),
                         src in arb_v6(), dst in arb_v6()) {
            let repr = AdvertRepr {
                version: Version::V3,
                family: Family::Ipv6,
                vrid,
                priority: prio,
                interval_cs: cs,
                auth: Auth::None,
                addresses: &addrs,
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut buf, src, dst).unwrap();
            let p = AdvertPacket::new_checked(&buf[..], Family::Ipv6).unwrap();
            prop_assert_eq!(p.addresses().collect::<Vec<_>>(), addrs.clone());
            prop_assert!(p.verify_checksum(src, dst));
        }
    }
}
