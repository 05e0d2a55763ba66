//! The Internet checksum: RFC 1071 sums, pseudo-headers, RFC 1624 incremental updates.
//!
//! Everything here works on the *one's-complement sum* (a `u16`, not complemented) or on the
//! *checksum* as it sits in a header (the complement of the sum). The bulk sum reads eight
//! bytes at a time into a `u64` with end-around carry, which RFC 1071 section 2(B) allows
//! ("byte order independence" and "parallel summation"). This module deliberately knows
//! nothing of packet layouts: the views in [`crate::wire`] decide which bytes are summed.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Fold a 64-bit end-around-carry accumulator into a 16-bit one's-complement sum.
///
/// The result is never `0` unless the accumulator is `0` (one's-complement "+0").
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// [`fold`] of an accumulator below 2^32 (a few 16-bit words): the same result in two
/// steps (after the first the value is at most 0x1fffe, after the second at most 0xffff,
/// and `fold`'s remaining steps leave such values alone).
#[inline(always)]
pub fn fold32(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    ((acc & 0xffff) + (acc >> 16)) as u16
}

/// Add one 64-bit word to an accumulator with end-around carry.
#[inline(always)]
fn add64(acc: u64, w: u64) -> u64 {
    let (s, c) = acc.overflowing_add(w);
    s + u64::from(c)
}

/// Unfolded one's-complement sum of `data` (big-endian 16-bit words, an odd trailing byte
/// padded with a zero byte), added to `acc`.
///
/// Feed the result to [`fold`]. Only the *final* chunk of a message may have odd length:
/// summing two odd-length pieces separately misaligns the second one.
#[inline]
pub fn sum_into(acc: u64, data: &[u8]) -> u64 {
    let mut acc = acc;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc = add64(acc, w);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc = add64(
            acc,
            u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]])),
        );
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc = add64(acc, u64::from(u16::from_be_bytes([rest[0], rest[1]])));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        acc = add64(acc, u64::from(b) << 8);
    }
    acc
}

/// The folded one's-complement sum of `data` (RFC 1071), not complemented.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(sum_into(0, data))
}

/// The Internet checksum of `data`: the complement of its one's-complement sum.
///
/// Zero the checksum field before calling this to fill it; over a header that already holds
/// a correct checksum the result is `0`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// One's-complement addition of two folded sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// Unfolded sum of the IPv4 pseudo-header (RFC 793 section 3.1, RFC 768):
/// source, destination, zero, protocol, L4 length.
#[inline]
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    u64::from(u32::from_be_bytes(src.octets()))
        + u64::from(u32::from_be_bytes(dst.octets()))
        + u64::from(proto)
        + u64::from(len)
}

/// Unfolded sum of the IPv6 pseudo-header (RFC 8200 section 8.1):
/// source, destination, 32-bit upper-layer length, three zero bytes, next header.
#[inline]
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u64 {
    let mut acc = sum_into(0, &src.octets());
    acc = sum_into(acc, &dst.octets());
    add64(acc, u64::from(len) + u64::from(proto))
}

//= https://www.rfc-editor.org/rfc/rfc1624#section-3
//# HC' = ~(~HC + ~m + m')
/// RFC 1624 eqn. 3: the checksum `hc` after a 16-bit word changes from `old` to `new`.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address, a TCP sequence number).
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!hc)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

/// RFC 1624 eqn. 3 for a 128-bit field (an IPv6 address).
#[inline]
pub fn update128(hc: u16, old: u128, new: u128) -> u16 {
    let mut acc = u64::from(!hc);
    for i in 0..8 {
        let sh = 112 - 16 * i;
        acc += u64::from(!((old >> sh) as u16));
        acc += u64::from((new >> sh) as u16);
    }
    !fold(acc)
}

/// RFC 1624 eqn. 3 for an arbitrary byte field at an even offset (equal lengths; an odd
/// length is padded with a zero byte on both sides, which is only right for a field that
/// ends the checksummed data).
#[inline]
pub fn update_bytes(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    let acc = u64::from(!hc) + u64::from(!sum(old)) + u64::from(sum(new));
    !fold(acc)
}

//= https://www.rfc-editor.org/rfc/rfc768
//# If the computed  checksum  is zero,  it is transmitted  as all ones (the
//# equivalent  in one's complement  arithmetic).   An all zero  transmitted
//# checksum  value means that the transmitter  generated  no checksum
/// The UDP rule: a computed checksum of `0` goes on the wire as `0xffff`.
#[inline]
pub fn udp_on_wire(computed: u16) -> u16 {
    if computed == 0 { 0xffff } else { computed }
}

/// An incremental update of a UDP checksum: `0` ("no checksum", IPv4 only) stays `0`, and a
/// result of `0` is sent as `0xffff`.
#[inline]
pub fn udp_update(hc: u16, update: impl FnOnce(u16) -> u16) -> u16 {
    if hc == 0 { 0 } else { udp_on_wire(update(hc)) }
}

/// True when two checksums are the same one's-complement value (`0x0000` and `0xffff` are
/// both zero; receivers accept either).
#[inline]
pub fn same(a: u16, b: u16) -> bool {
    a == b || (a | b == 0xffff && (a == 0 || b == 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 section 4.1, byte by byte, deliberately plain.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            sum += (u32::from(data[i]) << 8) | u32::from(data[i + 1]);
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            i += 2;
        }
        if i < data.len() {
            sum += u32::from(data[i]) << 8;
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
        }
        sum as u16
    }

    fn reference_checksum(data: &[u8]) -> u16 {
        !reference_sum(data)
    }

    fn reference_pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.push(0);
        v.push(proto);
        v.extend_from_slice(&len.to_be_bytes());
        v
    }

    fn reference_pseudo_v6(src: [u8; 16], dst: [u8; 16], proto: u8, len: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, proto]);
        v
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&d), 0xddf2);
        assert_eq!(reference_sum(&d), 0xddf2);
    }

    #[test]
    fn zero_and_ones() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xff; 64]), 0xffff);
        assert_eq!(sum(&[0xff; 3]), reference_sum(&[0xff; 3]));
        assert_eq!(udp_on_wire(0), 0xffff);
        assert!(same(0, 0xffff));
        assert!(!same(1, 0xffff));
    }

    proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
            prop_assert_eq!(checksum(&data), reference_checksum(&data));
        }

        #[test]
        fn sum_matches_reference_odd(data in proptest::collection::vec(any::<u8>(), 0..300)
                .prop_filter("odd", |d| d.len() % 2 == 1)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        #[test]
        fn pseudo_v4_matches_reference(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
                proto in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let len = payload.len() as u16;
            let mut r = reference_pseudo_v4(src, dst, proto, len);
            r.extend_from_slice(&payload);
            let fast = !fold(sum_into(pseudo_v4(src.into(), dst.into(), proto, len), &payload));
            prop_assert_eq!(fast, reference_checksum(&r));
        }

        #[test]
        fn pseudo_v6_matches_reference(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
                proto in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let len = payload.len() as u32;
            let mut r = reference_pseudo_v6(src, dst, proto, len);
            r.extend_from_slice(&payload);
            let fast = !fold(sum_into(pseudo_v6(src.into(), dst.into(), proto, len), &payload));
            prop_assert_eq!(fast, reference_checksum(&r));
        }

        #[test]
        fn incremental16_equals_recompute(mut data in proptest::collection::vec(any::<u8>(), 2..400),
                idx in any::<proptest::sample::Index>(), new in any::<u16>()) {
            let words = data.len() / 2;
            let i = idx.index(words) * 2;
            let hc = reference_checksum(&data);
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let full = reference_checksum(&data);
            let inc = update16(hc, old, new);
            prop_assert!(same(inc, full), "inc {:04x} full {:04x}", inc, full);
        }

        #[test]
        fn incremental32_equals_recompute(mut data in proptest::collection::vec(any::<u8>(), 4..400),
                idx in any::<proptest::sample::Index>(), new in any::<u32>()) {
            let i = idx.index(data.len() / 2 - 1) * 2;
            let hc = reference_checksum(&data);
            let old = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            data[i..i + 4].copy_from_slice(&new.to_be_bytes());
            let full = reference_checksum(&data);
            let inc = update32(hc, old, new);
            prop_assert!(same(inc, full), "inc {:04x} full {:04x}", inc, full);
        }

        #[test]
        fn incremental128_equals_recompute(mut data in proptest::collection::vec(any::<u8>(), 16..400),
                idx in any::<proptest::sample::Index>(), new in any::<u128>()) {
            let i = idx.index(data.len() / 2 - 7) * 2;
            let hc = reference_checksum(&data);
            let mut o = [0u8; 16];
            o.copy_from_slice(&data[i..i + 16]);
            let old = u128::from_be_bytes(o);
            data[i..i + 16].copy_from_slice(&new.to_be_bytes());
            let full = reference_checksum(&data);
            let inc = update128(hc, old, new);
            prop_assert!(same(inc, full), "inc {:04x} full {:04x}", inc, full);
            let inc2 = update_bytes(hc, &o, &new.to_be_bytes());
            prop_assert!(same(inc2, full));
        }

        #[test]
        fn udp_incremental_keeps_rule(mut data in proptest::collection::vec(any::<u8>(), 2..64),
                idx in any::<proptest::sample::Index>(), new in any::<u16>()) {
            let i = idx.index(data.len() / 2) * 2;
            let hc = udp_on_wire(reference_checksum(&data));
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let full = udp_on_wire(reference_checksum(&data));
            let inc = udp_update(hc, |hc| update16(hc, old, new));
            prop_assert_ne!(inc, 0);
            prop_assert!(same(inc, full));
            prop_assert_eq!(udp_update(0, |hc| update16(hc, old, new)), 0);
        }
    }
}
