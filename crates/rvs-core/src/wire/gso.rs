//! Software TCP segmentation of a GSO super-frame: what the kernel's `tcp_gso_segment()` /
//! `inet_gso_segment()` do when a device cannot, for the cases the I/O layer cannot hand to
//! the kernel — a tunnelled super-frame, whose encapsulation `virtio_net_hdr` cannot
//! describe.
//!
//! [`segment_tcp`] cuts one IPv4 or IPv6 TCP packet (as a TSO sender built it: one header,
//! a payload of many MSS) into packets of at most `mss` payload bytes, each with its own
//! IP length, IPv4 identification (+1 per segment) and header checksum, TCP sequence
//! number, flags (FIN and PSH only on the last segment, CWR only on the first) and a
//! complete TCP checksum. Nothing is allocated: each segment is built in the caller's
//! buffer and handed to a callback.

use super::checksum;
use super::{Malformed, ipv4, ipv6, rd16, rd32, wr16, wr32};
use std::net::{Ipv4Addr, Ipv6Addr};

const TCP: u8 = 6;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const CWR: u8 = 0x80;

/// Cut the TCP packet `ip` (starting at its IP header, no extension headers for IPv6)
/// into segments of at most `mss` payload bytes. Each segment is written into `out` and
/// passed to `emit` with its length; `emit` returning false stops the cutting. Returns the
/// number of segments emitted. A packet whose payload already fits is emitted as it is (its
/// checksum completed).
pub fn segment_tcp(
    ip: &[u8],
    mss: usize,
    out: &mut [u8],
    mut emit: impl FnMut(&[u8]) -> bool,
) -> Result<usize, Malformed> {
    if mss == 0 {
        return Err(Malformed::Truncated);
    }
    let (v6, ip_hl, total) = match ip.first().map(|v| v >> 4) {
        Some(4) => {
            let (hl, total) = ipv4::check(ip)?;
            if ip[9] != TCP || rd16(ip, 6) & 0x3fff != 0 {
                return Err(Malformed::Truncated);
            }
            (false, hl, total)
        }
        Some(6) => {
            let total = ipv6::check(ip)?;
            if ip[6] != TCP {
                return Err(Malformed::Truncated);
            }
            (true, 40, total)
        }
        _ => return Err(Malformed::BadVersion),
    };
    if total < ip_hl + 20 {
        return Err(Malformed::Truncated);
    }
    let tcp_hl = usize::from(ip[ip_hl + 12] >> 4) * 4;
    if tcp_hl < 20 || ip_hl + tcp_hl > total {
        return Err(Malformed::BadTcpOffset);
    }
    let hdr = ip_hl + tcp_hl;
    if out.len() < hdr + mss.min(total - hdr) {
        return Err(Malformed::Truncated);
    }
    let payload = &ip[hdr..total];
    let seq0 = rd32(ip, ip_hl + 4);
    let flags = ip[ip_hl + 13];
    let ident0 = if v6 { 0 } else { rd16(ip, 4) };
    let chunks = payload.len().div_ceil(mss).max(1);
    let mut n = 0;
    for (k, chunk) in payload
        .chunks(mss)
        .chain(payload.is_empty().then_some(&[][..]))
        .enumerate()
    {
        let seg_len = hdr + chunk.len();
        out[..hdr].copy_from_slice(&ip[..hdr]);
        out[hdr..seg_len].copy_from_slice(chunk);
        let last = k + 1 == chunks;
        let mut f = flags;
        if !last {
            f &= !(FIN | PSH);
        }
        if k > 0 {
            f &= !CWR;
        }
        out[ip_hl + 13] = f;
        wr32(out, ip_hl + 4, seq0.wrapping_add((k * mss) as u32));
        let l4_len = seg_len - ip_hl;
        let seed = if v6 {
            wr16(out, 4, l4_len as u16);
            let src = Ipv6Addr::from(
                <[u8; 16]>::try_from(&out[8..24]).map_err(|_| Malformed::Truncated)?,
            );
            let dst = Ipv6Addr::from(
                <[u8; 16]>::try_from(&out[24..40]).map_err(|_| Malformed::Truncated)?,
            );
            checksum::pseudo_v6(src, dst, TCP, l4_len as u32)
        } else {
            wr16(out, 2, seg_len as u16);
            wr16(out, 4, ident0.wrapping_add(k as u16));
            wr16(out, 10, 0);
            let c = checksum::checksum(&out[..ip_hl]);
            wr16(out, 10, c);
            checksum::pseudo_v4(
                Ipv4Addr::from(rd32(out, 12)),
                Ipv4Addr::from(rd32(out, 16)),
                TCP,
                l4_len as u16,
            )
        };
        wr16(out, ip_hl + 16, 0);
        let c = !checksum::fold(checksum::sum_into(seed, &out[ip_hl..seg_len]));
        wr16(out, ip_hl + 16, c);
        n += 1;
        if !emit(&out[..seg_len]) {
            break;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

    fn big(v6: bool, payload: &[u8]) -> Vec<u8> {
        let b = if v6 {
            PacketBuilder::ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
                [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11],
                64,
            )
        } else {
            PacketBuilder::ipv4([10, 1, 0, 10], [10, 2, 0, 11], 64)
        };
        let mut v = Vec::new();
        b.tcp(40000, 80, 1000, 64240)
            .ack(77)
            .psh()
            .fin()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    #[test]
    fn cuts_into_mss_segments_with_valid_headers_and_checksums() {
        for v6 in [false, true] {
            let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
            let ip = big(v6, &payload);
            let mut out = [0u8; 2048];
            let mut segs = Vec::new();
            let n = segment_tcp(&ip, 1400, &mut out, |s| {
                segs.push(s.to_vec());
                true
            })
            .unwrap();
            assert_eq!(n, 4);
            let mut joined = Vec::new();
            for (k, s) in segs.iter().enumerate() {
                let p = SlicedPacket::from_ip(s).unwrap();
                let Some(TransportSlice::Tcp(t)) = &p.transport else {
                    panic!("not TCP")
                };
                let h = t.to_header();
                assert_eq!(h.sequence_number, 1000 + 1400 * k as u32);
                assert_eq!(h.fin, k == 3, "FIN only on the last");
                assert_eq!(h.psh, k == 3, "PSH only on the last");
                assert!(h.ack);
                let want = match p.net.as_ref().unwrap() {
                    NetSlice::Ipv4(v4) => {
                        let ih = v4.header().to_header();
                        assert_eq!(ih.header_checksum, ih.calc_header_checksum());
                        assert_eq!(ih.identification, k as u16);
                        h.calc_checksum_ipv4(&ih, t.payload()).unwrap()
                    }
                    NetSlice::Ipv6(x) => h
                        .calc_checksum_ipv6(&x.header().to_header(), t.payload())
                        .unwrap(),
                    _ => unreachable!(),
                };
                assert_eq!(h.checksum, want);
                joined.extend_from_slice(t.payload());
            }
            assert_eq!(joined, payload, "v6={v6}");
        }
    }

    #[test]
    fn a_small_packet_passes_as_one_segment_and_bad_input_is_refused() {
        let ip = big(false, b"hi");
        let mut out = [0u8; 2048];
        assert_eq!(segment_tcp(&ip, 1400, &mut out, |_| true), Ok(1));
        assert!(segment_tcp(&ip[..30], 1400, &mut out, |_| true).is_err());
        assert!(segment_tcp(&ip, 0, &mut out, |_| true).is_err());
    }
}
