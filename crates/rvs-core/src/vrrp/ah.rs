//! keepalived's VRRPv2 `auth_type AH`: the advertisement travels in IPv4 protocol 51 behind
//! an IPsec Authentication Header (RFC 2402 layout) whose ICV is HMAC-MD5-96 keyed with the
//! `auth_pass`. There is no IPsec security association: keepalived builds and checks the
//! header itself, and so does rvs, byte for byte.
//!
//! ```text
//!  IPv4 header (20 bytes, protocol 51, TOS 0xc0, TTL 255)
//!  | Next Header = 112 | Payload Len = 4 | Reserved = 0             |
//!  | SPI = the sender's IPv4 address                                |
//!  | Sequence Number                                                |
//!  | ICV (12 bytes)                                                 |
//!  VRRPv2 advertisement, auth type 2, eight zero authentication bytes
//! ```
//!
//! The ICV (keepalived vrrp/vrrp.c `vrrp_update_pkt` when sending, `vrrp_in_chk_ipsecah`
//! when receiving; vrrp/vrrp_ipsecah.c `hmac_md5`) is the first 12 bytes of HMAC-MD5 with
//! the 8-byte `auth_pass` (keepalived's `auth_data[8]`: cut to 8 bytes, zero padded) as key,
//! over the IP header with TOS, fragment offset and header checksum zeroed (and the TTL too
//! when the instance uses unicast peers), then the AH header with the ICV zeroed, then the
//! VRRP message. Verified against advertisements captured from keepalived 2.2.7 (the
//! `testdata` captures, multicast and unicast).
//!
//! Only the wire format lives here; the sequence-number rules (anti-replay, the master's
//! resynchronisation on a lower-priority advertisement) are the router's.

use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use md5::Md5;

use super::packet::{AdvertError, EmitError, IP_PROTO_VRRP};
use crate::wire::checksum;

/// IP protocol number of the Authentication Header.
pub const IP_PROTO_AH: u8 = 51;

/// Length of keepalived's AH header (keepalived include/vrrp_ipsecah.h `ipsec_ah_t`).
pub const AH_LEN: usize = 24;

/// Length of the ICV: HMAC-MD5 truncated to 96 bits (`HMAC_MD5_TRUNC`).
pub const ICV_LEN: usize = 12;

/// The AH Payload Length field: the header's length in 32-bit words minus 2
/// (`IPSEC_AH_PLEN`).
pub const PAYLOAD_LEN: u8 = 4;

/// Length of the key: keepalived's `auth_data[8]`.
pub const KEY_LEN: usize = 8;

/// Length of the IPv4 header rvs sends (no options).
pub const IPV4_HEADER_LEN: usize = 20;

/// The TOS of an advertisement (keepalived `vrrp_build_ip4`: "internet network control").
pub const TOS: u8 = 0xc0;

/// Byte positions in the AH header.
mod field {
    use core::ops::Range;
    pub(super) const NEXT_HEADER: usize = 0;
    pub(super) const PAYLOAD_LEN: usize = 1;
    pub(super) const SPI: Range<usize> = 4..8;
    pub(super) const SEQ: Range<usize> = 8..12;
    pub(super) const ICV: Range<usize> = 12..24;
}

/// An `auth_pass` keyed into HMAC-MD5 once: the inner and outer pads are hashed when the
/// key is configured ([`AhKey::new`]), and each advertisement sent or checked starts from a
/// copy of that state instead of keying HMAC again.
#[derive(Clone)]
pub struct AhKey {
    keyed: Hmac<Md5>,
}

impl core::fmt::Debug for AhKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AhKey(..)") // the key stays out of logs
    }
}

impl AhKey {
    /// Key HMAC-MD5 with `key` (see [`key`]).
    pub fn new(key: &[u8; KEY_LEN]) -> AhKey {
        // An 8-byte key never needs hashing first (HMAC keys longer than the 64-byte block
        // do), and HMAC takes keys of any length.
        let keyed = match Hmac::<Md5>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        AhKey { keyed }
    }

    /// The ICV of an AH-authenticated advertisement: `ip_header` (20 to 60 bytes, any
    /// checksum and ICV in place: the mutable fields are zeroed here), `ah` (the 24-byte
    /// header) and `vrrp` (the VRRP message). `unicast`: the instance has unicast peers, so
    /// the TTL is zeroed too (keepalived zeroes it only then).
    pub fn icv(&self, ip_header: &[u8], ah: &[u8], vrrp: &[u8], unicast: bool) -> [u8; ICV_LEN] {
        let mac = self.mac_over(ip_header, ah, vrrp, unicast);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; ICV_LEN];
        out.copy_from_slice(&full[..ICV_LEN]);
        out
    }

    fn mac_over(&self, ip_header: &[u8], ah: &[u8], vrrp: &[u8], unicast: bool) -> Hmac<Md5> {
        // keepalived vrrp_in_chk_ipsecah: "zero the ip mutable fields" on a copy.
        let mut hdr = [0u8; 60];
        let n = ip_header.len().min(hdr.len());
        hdr[..n].copy_from_slice(&ip_header[..n]);
        hdr[1] = 0; // tos
        hdr[6] = 0; // frag_off
        hdr[7] = 0;
        hdr[10] = 0; // check
        hdr[11] = 0;
        if unicast {
            hdr[8] = 0; // ttl
        }
        let mut a = [0u8; AH_LEN];
        let m = ah.len().min(AH_LEN);
        a[..m].copy_from_slice(&ah[..m]);
        a[field::ICV].fill(0);
        let mut mac = self.keyed.clone();
        mac.update(&hdr[..n]);
        mac.update(&a);
        mac.update(vrrp);
        mac
    }
}

/// [`AhKey::icv`] with a key keyed for this one call.
pub fn icv(
    key: &[u8; KEY_LEN],
    ip_header: &[u8],
    ah: &[u8],
    vrrp: &[u8],
    unicast: bool,
) -> [u8; ICV_LEN] {
    AhKey::new(key).icv(ip_header, ah, vrrp, unicast)
}

/// The key for an `auth_pass`: its first 8 bytes, zero padded (keepalived
/// `vrrp_auth_pass_handler`).
pub fn key(password: &str) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    let b = password.as_bytes();
    let n = b.len().min(KEY_LEN);
    k[..n].copy_from_slice(&b[..n]);
    k
}

/// What [`emit_ipv4`] writes besides the VRRP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhHeader {
    /// The source (also the SPI).
    pub src: Ipv4Addr,
    /// The destination: the group or a unicast peer.
    pub dst: Ipv4Addr,
    /// The TTL (255).
    pub ttl: u8,
    /// The IP identification (keepalived numbers its adverts itself, skipping 0, since the
    /// ICV covers it).
    pub ident: u16,
    /// The AH sequence number.
    pub seq: u32,
    /// Whether the instance uses unicast peers (the TTL is then outside the ICV).
    pub unicast: bool,
}

/// The length of the IPv4 packet carrying `vrrp_len` bytes of VRRP behind AH.
pub fn packet_len(vrrp_len: usize) -> usize {
    IPV4_HEADER_LEN + AH_LEN + vrrp_len
}

/// Write the whole IPv4 packet into `buf` — header (TOS 0xc0, no fragment flags, protocol
/// 51, header checksum filled), AH header with its ICV, then `vrrp` — as keepalived's
/// `vrrp_build_ip4`, `vrrp_build_ipsecah` and `vrrp_update_pkt` do. Returns its length.
pub fn emit_ipv4(
    buf: &mut [u8],
    h: &AhHeader,
    key: &[u8; KEY_LEN],
    vrrp: &[u8],
) -> Result<usize, EmitError> {
    emit_ipv4_keyed(buf, h, &AhKey::new(key), vrrp)
}

/// [`emit_ipv4`] with a key keyed once ([`AhKey`]): what the router sends each advert with.
pub fn emit_ipv4_keyed(
    buf: &mut [u8],
    h: &AhHeader,
    key: &AhKey,
    vrrp: &[u8],
) -> Result<usize, EmitError> {
    let len = packet_len(vrrp.len());
    if len > usize::from(u16::MAX) {
        return Err(EmitError::TooManyAddresses);
    }
    let Some(out) = buf.get_mut(..len) else {
        return Err(EmitError::BufferTooSmall);
    };
    let (ip, rest) = out.split_at_mut(IPV4_HEADER_LEN);
    let (ah, payload) = rest.split_at_mut(AH_LEN);
    ip[0] = 0x45;
    ip[1] = TOS;
    ip[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&h.ident.to_be_bytes());
    ip[6..8].fill(0);
    ip[8] = h.ttl;
    ip[9] = IP_PROTO_AH;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&h.src.octets());
    ip[16..20].copy_from_slice(&h.dst.octets());
    ah[field::NEXT_HEADER] = IP_PROTO_VRRP;
    ah[field::PAYLOAD_LEN] = PAYLOAD_LEN;
    ah[2..4].fill(0);
    ah[field::SPI].copy_from_slice(&h.src.octets());
    ah[field::SEQ].copy_from_slice(&h.seq.to_be_bytes());
    ah[field::ICV].fill(0);
    payload.copy_from_slice(vrrp);
    let tag = key.icv(ip, ah, payload, h.unicast);
    ah[field::ICV].copy_from_slice(&tag);
    // The kernel recomputes it (IP_HDRINCL); filled so the packet is complete on its own.
    let ck = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    Ok(len)
}

/// A received IPv4 packet carrying AH: its IP header, AH header and VRRP message. After
/// [`AhPacket::parse`] no accessor can panic.
#[derive(Debug, Clone, Copy)]
pub struct AhPacket<'a> {
    ip: &'a [u8],
    ah: &'a [u8],
    vrrp: &'a [u8],
}

impl<'a> AhPacket<'a> {
    /// Split a whole IPv4 packet (as a raw socket delivers it). Refused: shorter than an
    /// IPv4 header, the AH header and a VRRP fixed header ([`AdvertError::Truncated`]);
    /// not IPv4 ([`AdvertError::BadVersion`]); a total length other than the packet's
    /// ([`AdvertError::BadLength`], keepalived's "ip_tot_len mismatch"); a protocol other
    /// than AH ([`AdvertError::AuthTypeMismatch`], keepalived's "No AH header but auth type
    /// is AH").
    pub fn parse(packet: &'a [u8]) -> Result<AhPacket<'a>, AdvertError> {
        if packet.len() < IPV4_HEADER_LEN {
            return Err(AdvertError::Truncated);
        }
        if packet[0] >> 4 != 4 {
            return Err(AdvertError::BadVersion);
        }
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        if ihl < IPV4_HEADER_LEN {
            return Err(AdvertError::BadLength);
        }
        if packet[9] != IP_PROTO_AH {
            return Err(AdvertError::AuthTypeMismatch);
        }
        // keepalived vrrp_get_header: "IPv4 VRRP packet with AH too short".
        if packet.len() < ihl + AH_LEN + super::packet::HEADER_LEN {
            return Err(AdvertError::Truncated);
        }
        if usize::from(u16::from_be_bytes([packet[2], packet[3]])) != packet.len() {
            return Err(AdvertError::BadLength);
        }
        Ok(AhPacket {
            ip: &packet[..ihl],
            ah: &packet[ihl..ihl + AH_LEN],
            vrrp: &packet[ihl + AH_LEN..],
        })
    }

    /// The IPv4 source.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.ip[12], self.ip[13], self.ip[14], self.ip[15])
    }

    /// The IPv4 destination.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.ip[16], self.ip[17], self.ip[18], self.ip[19])
    }

    /// The TTL.
    pub fn ttl(&self) -> u8 {
        self.ip[8]
    }

    /// The AH next header (112 for VRRP).
    pub fn next_header(&self) -> u8 {
        self.ah[field::NEXT_HEADER]
    }

    /// The SPI as an address (keepalived puts its source address there).
    pub fn spi(&self) -> Ipv4Addr {
        let s = &self.ah[field::SPI];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }

    /// The sequence number.
    pub fn seq(&self) -> u32 {
        let s = &self.ah[field::SEQ];
        u32::from_be_bytes([s[0], s[1], s[2], s[3]])
    }

    /// The VRRP message behind the AH header.
    pub fn vrrp(&self) -> &'a [u8] {
        self.vrrp
    }

    /// Whether the ICV verifies with `key` (in constant time, as keepalived's
    /// `memcmp_constant_time`).
    pub fn verify_icv(&self, key: &[u8; KEY_LEN], unicast: bool) -> bool {
        self.verify_icv_keyed(&AhKey::new(key), unicast)
    }

    /// [`AhPacket::verify_icv`] with a key keyed once ([`AhKey`]).
    pub fn verify_icv_keyed(&self, key: &AhKey, unicast: bool) -> bool {
        let mac = key.mac_over(self.ip, self.ah, self.vrrp, unicast);
        mac.verify_truncated_left(&self.ah[field::ICV]).is_ok()
    }
}

/// The VRID of an AH-carried VRRP packet, read without validation, for demultiplexing:
/// `None` when it is not IPv4 AH carrying VRRP (keepalived drops AH for another protocol
/// without counting it).
pub fn peek_vrid(packet: &[u8]) -> Option<u8> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if *packet.get(9)? != IP_PROTO_AH || *packet.get(ihl)? != IP_PROTO_VRRP {
        return None;
    }
    super::packet::peek_vrid(packet.get(ihl + AH_LEN..)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::packet::{AdvertPacket, Family};

    /// The IPv4 packets of a classic pcap file (Ethernet link type).
    fn pcap_packets(file: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
        assert_eq!(
            u32::from_le_bytes(file[20..24].try_into().unwrap()),
            1,
            "Ethernet"
        );
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= file.len() {
            let incl = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &file[at + 16..at + 16 + incl];
            assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4 ethertype");
            out.push(frame[14..].to_vec());
            at += 16 + incl;
        }
        out
    }

    /// Captured with tcpdump from keepalived 2.2.7 (Debian 12) in a namespace pair:
    /// `testdata/keepalived-ah-multicast.conf` (auth_pass `secret99`, 10.99.0.1 → group)
    /// and `testdata/keepalived-ah-unicast.conf` (auth_pass `ab`, unicast to 10.99.0.2).
    const MULTICAST: &[u8] = include_bytes!("testdata/keepalived-2.2.7-ah-multicast.pcap");
    const UNICAST: &[u8] = include_bytes!("testdata/keepalived-2.2.7-ah-unicast.pcap");

    #[test]
    fn keepalived_multicast_capture_verifies_and_is_rebuilt_byte_for_byte() {
        let pkts = pcap_packets(MULTICAST);
        assert_eq!(pkts.len(), 3);
        let k = key("secret99");
        for (n, raw) in pkts.iter().enumerate() {
            let p = AhPacket::parse(raw).unwrap();
            assert_eq!(p.src(), Ipv4Addr::new(10, 99, 0, 1));
            assert_eq!(p.dst(), Ipv4Addr::new(224, 0, 0, 18));
            assert_eq!(p.spi(), p.src(), "SPI = source address");
            assert_eq!(p.seq(), n as u32 + 1, "keepalived's first advert carries 1");
            assert_eq!(p.next_header(), IP_PROTO_VRRP);
            assert_eq!(p.ttl(), 255);
            assert!(p.verify_icv(&k, false));
            // Multicast: the TTL is inside the ICV, so the unicast rule fails.
            assert!(!p.verify_icv(&k, true));
            assert!(!p.verify_icv(&key("secret98"), false));
            // The VRRP message: auth type 2, eight zero bytes, a valid v2 checksum.
            let v = AdvertPacket::new_checked(p.vrrp(), Family::Ipv4).unwrap();
            assert_eq!(v.auth_type(), Some(2));
            assert_eq!(v.auth_data(), Some(&[0u8; 8][..]));
            assert_eq!((v.vrid(), v.priority()), (51, 150));
            assert!(v.verify_checksum(p.src().into(), p.dst().into()));
            // rvs builds the same bytes from the same inputs.
            let mut buf = [0u8; 128];
            let h = AhHeader {
                src: p.src(),
                dst: p.dst(),
                ttl: 255,
                ident: u16::from_be_bytes([raw[4], raw[5]]),
                seq: p.seq(),
                unicast: false,
            };
            let len = emit_ipv4(&mut buf, &h, &k, p.vrrp()).unwrap();
            assert_eq!(&buf[..len], &raw[..], "packet {n}");
        }
    }

    #[test]
    fn one_keyed_state_serves_every_advert_of_the_captures() {
        // The router keys HMAC once and reuses that state: every captured advert, sent or
        // checked in turn with the one AhKey, gives keepalived's bytes (the state a
        // previous advert used is not carried into the next).
        for (file, pass, unicast) in [(MULTICAST, "secret99", false), (UNICAST, "ab", true)] {
            let k = AhKey::new(&key(pass));
            for _round in 0..2 {
                for raw in pcap_packets(file) {
                    let p = AhPacket::parse(&raw).unwrap();
                    assert!(p.verify_icv_keyed(&k, unicast));
                    let mut buf = [0u8; 128];
                    let h = AhHeader {
                        src: p.src(),
                        dst: p.dst(),
                        ttl: raw[8],
                        ident: u16::from_be_bytes([raw[4], raw[5]]),
                        seq: p.seq(),
                        unicast,
                    };
                    let len = emit_ipv4_keyed(&mut buf, &h, &k, p.vrrp()).unwrap();
                    assert_eq!(&buf[..len], &raw[..]);
                }
            }
            assert!(
                !AhPacket::parse(&pcap_packets(file)[0])
                    .unwrap()
                    .verify_icv_keyed(&AhKey::new(&key("other")), unicast)
            );
        }
    }

    #[test]
    fn keepalived_unicast_capture_zeroes_the_ttl_and_pads_a_short_key() {
        let pkts = pcap_packets(UNICAST);
        assert_eq!(pkts.len(), 2);
        for (n, raw) in pkts.iter().enumerate() {
            let p = AhPacket::parse(raw).unwrap();
            assert_eq!(p.dst(), Ipv4Addr::new(10, 99, 0, 2));
            assert!(p.verify_icv(&key("ab"), true));
            assert!(!p.verify_icv(&key("ab"), false));
            // The TTL is outside a unicast ICV: a router on the way may lower it.
            let mut hop = raw.clone();
            hop[8] = 64;
            assert!(AhPacket::parse(&hop).unwrap().verify_icv(&key("ab"), true));
            let mut buf = [0u8; 128];
            let h = AhHeader {
                src: p.src(),
                dst: p.dst(),
                ttl: 255,
                ident: n as u16 + 1,
                seq: n as u32 + 1,
                unicast: true,
            };
            let len = emit_ipv4(&mut buf, &h, &key("ab"), p.vrrp()).unwrap();
            assert_eq!(&buf[..len], &raw[..]);
        }
    }

    #[test]
    fn mutable_fields_are_outside_the_icv_and_the_rest_inside() {
        let raw = &pcap_packets(MULTICAST)[0];
        let k = key("secret99");
        for (at, mutable) in [
            (1, true),   // tos
            (6, true),   // frag_off
            (7, true),   //
            (10, true),  // check
            (11, true),  //
            (4, false),  // id
            (8, false),  // ttl (multicast)
            (15, false), // source
            (27, false), // SPI
            (31, false), // sequence
            (45, false), // VRRP priority
            (60, false), // VRRP auth data
        ] {
            let mut m = raw.clone();
            m[at] ^= 0x01;
            assert_eq!(
                AhPacket::parse(&m).unwrap().verify_icv(&k, false),
                mutable,
                "byte {at}"
            );
        }
        // The ICV itself.
        let mut m = raw.clone();
        m[32] ^= 0x80;
        assert!(!AhPacket::parse(&m).unwrap().verify_icv(&k, false));
    }

    #[test]
    fn key_is_cut_to_eight_bytes_and_zero_padded() {
        assert_eq!(key("secret99-and-more"), *b"secret99");
        assert_eq!(key("ab"), [b'a', b'b', 0, 0, 0, 0, 0, 0]);
        // A password longer than 8 bytes authenticates as its first 8.
        let raw = &pcap_packets(MULTICAST)[1];
        assert!(
            AhPacket::parse(raw)
                .unwrap()
                .verify_icv(&key("secret99XYZ"), false)
        );
    }

    #[test]
    fn parse_errors_and_peek() {
        let raw = pcap_packets(MULTICAST)[0].clone();
        assert_eq!(peek_vrid(&raw), Some(51));
        assert_eq!(
            AhPacket::parse(&raw[..19]).err(),
            Some(AdvertError::Truncated)
        );
        assert_eq!(
            AhPacket::parse(&raw[..51]).err(),
            Some(AdvertError::Truncated)
        );
        // Shorter than the IP total length says.
        assert_eq!(
            AhPacket::parse(&raw[..60]).err(),
            Some(AdvertError::BadLength)
        );
        let mut v = raw.clone();
        v[0] = 0x65;
        assert_eq!(AhPacket::parse(&v).err(), Some(AdvertError::BadVersion));
        let mut p = raw.clone();
        p[9] = IP_PROTO_VRRP;
        assert_eq!(
            AhPacket::parse(&p).err(),
            Some(AdvertError::AuthTypeMismatch)
        );
        assert_eq!(peek_vrid(&p), None);
        // AH for another protocol is not VRRP's.
        let mut n = raw.clone();
        n[20] = 6;
        assert_eq!(peek_vrid(&n), None);
        assert_eq!(peek_vrid(&raw[..40]), None);
    }

    #[test]
    fn emit_errors() {
        let h = AhHeader {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(224, 0, 0, 18),
            ttl: 255,
            ident: 1,
            seq: 1,
            unicast: false,
        };
        let mut buf = [0u8; 63];
        assert_eq!(
            emit_ipv4(&mut buf, &h, &key("x"), &[0u8; 20]),
            Err(EmitError::BufferTooSmall)
        );
        let mut buf = [0u8; 64];
        assert_eq!(emit_ipv4(&mut buf, &h, &key("x"), &[0u8; 20]), Ok(64));
        // The header checksum is valid.
        assert_eq!(checksum::checksum(&buf[..20]), 0);
    }

    proptest::proptest! {
        #[test]
        fn parse_and_verify_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                        unicast in proptest::prelude::any::<bool>()) {
            let _ = peek_vrid(&bytes);
            if let Ok(p) = AhPacket::parse(&bytes) {
                let _ = (p.src(), p.dst(), p.ttl(), p.spi(), p.seq(), p.next_header(), p.vrrp());
                let _ = p.verify_icv(&key("k"), unicast);
            }
        }

        #[test]
        fn emitted_packets_verify_and_any_covered_bit_flip_breaks_them(
            vrrp in proptest::collection::vec(proptest::prelude::any::<u8>(), 8..80),
            src in proptest::prelude::any::<[u8; 4]>(), dst in proptest::prelude::any::<[u8; 4]>(),
            seq in proptest::prelude::any::<u32>(), ident in proptest::prelude::any::<u16>(),
            pass in "[ -~]{1,12}", unicast in proptest::prelude::any::<bool>(),
            flip in proptest::prelude::any::<usize>(),
        ) {
            let h = AhHeader { src: src.into(), dst: dst.into(), ttl: 255, ident, seq, unicast };
            let k = key(&pass);
            let mut buf = vec![0u8; packet_len(vrrp.len())];
            let n = emit_ipv4(&mut buf, &h, &k, &vrrp).unwrap();
            proptest::prop_assert_eq!(n, buf.len());
            let p = AhPacket::parse(&buf).unwrap();
            proptest::prop_assert!(p.verify_icv(&k, unicast));
            proptest::prop_assert_eq!((p.seq(), p.spi(), p.vrrp()), (seq, h.src, &vrrp[..]));
            // Flip a bit outside the mutable fields, the length and the ICV: refused.
            let at = flip % buf.len();
            let mutable = [1, 6, 7, 10, 11].contains(&at) || (unicast && at == 8);
            if !mutable && !(2..4).contains(&at) && !(32..44).contains(&at) {
                let mut m = buf.clone();
                m[at] ^= 0x04;
                if let Ok(q) = AhPacket::parse(&m) {
                    proptest::prop_assert!(!q.verify_icv(&k, unicast), "byte {}", at);
                }
            }
        }
    }
}
