//! Tunnel encapsulation for the IP-tunnelling forwarding method: IPIP, GRE and GUE.
//!
//! The builders prepend outer headers into a [`Frame`]'s headroom around an inner IP packet
//! (the frame's data must start at the inner IP header: pull the Ethernet header first and
//! push a new one after). What they emit follows the kernel's IPVS tunnel transmitter
//! (`ip_vs_tunnel_xmit` / `ipvs_gue_encap` / `ipvs_gre_encap` in
//! `net/netfilter/ipvs/ip_vs_xmit.c`): protocol 4 (IPIP) or 41 (IPv6) for the inner family,
//! GRE (RFC 2784) with the optional checksum and protocol type 0x0800 / 0x86DD, and GUE
//! (draft-ietf-intarea-gue) variant 0 over UDP with the remote-checksum-offload private option
//! when the inner checksum is partial and `remcsum` is asked for. The outer UDP checksum is
//! computed when `csum` or `remcsum` is set and left zero otherwise, as the kernel does.
//! [`decap`] finds the inner packet of these tunnels (and of GUE variant 1, the direct-IP
//! form Linux `fou` uses). Route, MTU and DF policy are the caller's: nothing here fragments.

use super::checksum;
use super::frame::{CsumStatus, Frame};
use super::{Malformed, ip_proto, ipv4, ipv6, rd16, rd32, wr16, wr32};
use core::ops::Range;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// GRE flag: checksum present.
pub const GRE_FLAG_CSUM: u16 = 0x8000;
/// GRE flag: routing present (RFC 1701; refused).
pub const GRE_FLAG_ROUTING: u16 = 0x4000;
/// GRE flag: key present (RFC 2890).
pub const GRE_FLAG_KEY: u16 = 0x2000;
/// GRE flag: sequence number present (RFC 2890).
pub const GRE_FLAG_SEQ: u16 = 0x1000;
/// GUE standard flag `P`: private data present (Linux `GUE_FLAG_PRIV`).
pub const GUE_FLAG_PRIV: u16 = 0x0001;
/// GUE private flag: remote checksum offload (Linux `GUE_PFLAG_REMCSUM`).
pub const GUE_PFLAG_REMCSUM: u32 = 0x8000_0000;

/// An outer IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterV4 {
    /// Source (the director's address).
    pub src: Ipv4Addr,
    /// Destination (the real server).
    pub dst: Ipv4Addr,
    /// TTL (the kernel copies the inner TTL).
    pub ttl: u8,
    /// TOS (the kernel copies the inner DSCP with ECN encapsulated, RFC 6040).
    pub tos: u8,
    /// DF (the kernel copies the inner DF, or sets it per `pmtu_disc`).
    pub dont_frag: bool,
    /// Identification.
    pub ident: u16,
}

/// An outer IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterV6 {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label.
    pub flow_label: u32,
}

/// The outer IP header of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    /// IPv4 outer header.
    V4(OuterV4),
    /// IPv6 outer header.
    V6(OuterV6),
}

/// RFC 6040 / the kernel's `INET_ECN_encapsulate`: the outer TOS keeps the inner DSCP and
/// copies the inner ECN, except that CE becomes ECT(0).
pub fn ecn_encapsulate(inner_tos: u8) -> u8 {
    if inner_tos & 3 == 3 {
        (inner_tos & !3) | 2
    } else {
        inner_tos
    }
}

impl Outer {
    /// The outer header `ip_vs_tunnel_xmit` builds for `inner` (an IP packet): TTL / hop
    /// limit copied from the inner header, TOS / traffic class with ECN encapsulated, and for
    /// an IPv4 outer header DF copied from an IPv4 inner header when `pmtu_disc` is on (the
    /// `pmtu_disc` sysctl, default on) and clear for an IPv6 inner packet. The family of the
    /// outer header is that of `src` and `dst`.
    pub fn for_inner(
        inner: &[u8],
        src: IpAddr,
        dst: IpAddr,
        ident: u16,
        pmtu_disc: bool,
    ) -> Result<Outer, EncapError> {
        let (ttl, tos, df) = match inner.first().map(|v| v >> 4) {
            Some(4) => {
                ipv4::check(inner).map_err(EncapError::Inner)?;
                (inner[8], inner[1], rd16(inner, 6) & ipv4::FLAG_DF != 0)
            }
            Some(6) => {
                ipv6::check(inner).map_err(EncapError::Inner)?;
                (inner[7], ((rd16(inner, 0) >> 4) & 0xff) as u8, false)
            }
            Some(_) => return Err(EncapError::Inner(Malformed::BadVersion)),
            None => return Err(EncapError::Inner(Malformed::Truncated)),
        };
        let tos = ecn_encapsulate(tos);
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Ok(Outer::V4(OuterV4 {
                src,
                dst,
                ttl,
                tos,
                dont_frag: df && pmtu_disc,
                ident,
            })),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Ok(Outer::V6(OuterV6 {
                src,
                dst,
                hop_limit: ttl,
                traffic_class: tos,
                flow_label: 0,
            })),
            _ => Err(EncapError::FamilyMismatch),
        }
    }

    /// Outer IP header length.
    pub fn header_len(&self) -> usize {
        match self {
            Outer::V4(_) => ipv4::field::HEADER_LEN,
            Outer::V6(_) => ipv6::field::HEADER_LEN,
        }
    }
}

/// Why an encapsulation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapError {
    /// Not enough headroom in the frame buffer.
    NoHeadroom,
    /// The frame does not start with a valid inner IP packet.
    Inner(Malformed),
    /// The encapsulated packet would exceed 65535 bytes.
    TooLong,
    /// Outer source and destination of different families.
    FamilyMismatch,
}

impl core::fmt::Display for EncapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncapError::NoHeadroom => f.write_str("no headroom for the tunnel headers"),
            EncapError::Inner(m) => write!(f, "inner packet malformed: {m}"),
            EncapError::TooLong => f.write_str("encapsulated packet too long"),
            EncapError::FamilyMismatch => f.write_str("outer addresses of different families"),
        }
    }
}

impl std::error::Error for EncapError {}

impl From<super::frame::FrameError> for EncapError {
    fn from(_: super::frame::FrameError) -> EncapError {
        EncapError::NoHeadroom
    }
}

/// Validate the inner packet, cut padding, return its tunnel protocol number (4 or 41).
fn prepare_inner(frame: &mut Frame<'_>) -> Result<u8, EncapError> {
    let d = frame.data();
    let (proto, len) = match d.first().map(|v| v >> 4) {
        Some(4) => (ip_proto::IPIP, ipv4::check(d).map_err(EncapError::Inner)?.1),
        Some(6) => (ip_proto::IPV6, ipv6::check(d).map_err(EncapError::Inner)?),
        Some(_) => return Err(EncapError::Inner(Malformed::BadVersion)),
        None => return Err(EncapError::Inner(Malformed::Truncated)),
    };
    frame.truncate(len);
    Ok(proto)
}

fn push_outer(frame: &mut Frame<'_>, outer: &Outer, protocol: u8) -> Result<(), EncapError> {
    let payload_len = frame.len();
    if payload_len + outer.header_len() > usize::from(u16::MAX) {
        return Err(EncapError::TooLong);
    }
    let h = frame.push_front(outer.header_len())?;
    let r = match outer {
        Outer::V4(o) => ipv4::emit_header(
            h,
            o.src,
            o.dst,
            protocol,
            payload_len,
            o.ttl,
            o.tos,
            o.dont_frag,
            o.ident,
        ),
        Outer::V6(o) => ipv6::emit_header(
            h,
            o.src,
            o.dst,
            protocol,
            payload_len,
            o.hop_limit,
            o.traffic_class,
            o.flow_label,
        ),
    };
    r.map_err(|_| EncapError::TooLong)
}

fn finish_if_partial(frame: &mut Frame<'_>) -> Result<(), EncapError> {
    if let CsumStatus::Partial { start, offset } = frame.csum() {
        super::l4::finish_partial(frame.data_mut(), usize::from(start), usize::from(offset))
            .map_err(EncapError::Inner)?;
        frame.set_csum(CsumStatus::Complete);
    }
    Ok(())
}

/// IP-in-IP: prepend an outer IP header with protocol 4 (IPv4 inner) or 41 (IPv6 inner). A
/// partial inner checksum stays partial (its start moves with the data).
pub fn encap_ipip(frame: &mut Frame<'_>, outer: &Outer) -> Result<(), EncapError> {
    let proto = prepare_inner(frame)?;
    if frame.headroom() < outer.header_len() {
        return Err(EncapError::NoHeadroom);
    }
    push_outer(frame, outer, proto)
}

/// GRE (RFC 2784): prepend a GRE header (8 bytes with `checksum`, else 4) and an outer IP
/// header with protocol 47. With `checksum`, a partial inner checksum is finished first
/// (the GRE checksum covers it).
pub fn encap_gre(frame: &mut Frame<'_>, outer: &Outer, checksum: bool) -> Result<(), EncapError> {
    let proto = prepare_inner(frame)?;
    let gre_len = if checksum { 8 } else { 4 };
    if frame.headroom() < outer.header_len() + gre_len {
        return Err(EncapError::NoHeadroom);
    }
    if checksum {
        finish_if_partial(frame)?;
    }
    let ptype = if proto == ip_proto::IPIP {
        0x0800
    } else {
        0x86dd
    };
    let g = frame.push_front(gre_len)?;
    wr16(g, 0, if checksum { GRE_FLAG_CSUM } else { 0 });
    wr16(g, 2, ptype);
    if checksum {
        wr32(g, 4, 0);
        let c = checksum::checksum(frame.data());
        wr16(frame.data_mut(), 4, c);
    }
    push_outer(frame, outer, ip_proto::GRE)
}

/// Options of a GUE encapsulation (the kernel's `tun_port`, `tun_flags` and the flow's UDP
/// source port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GueOptions {
    /// UDP source port: a hash of the inner flow ([`gue_src_port`]).
    pub src_port: u16,
    /// UDP destination port (the real server's GUE port).
    pub dst_port: u16,
    /// Compute the outer UDP checksum (`gue` `csum`; else `nocsum`: zero).
    pub csum: bool,
    /// Remote checksum offload (`remcsum`): if the inner checksum is partial, leave it for the
    /// receiver and describe it in the GUE private option.
    pub remcsum: bool,
}

/// The kernel's `udp_flow_src_port` with the default `ip_local_port_range` (32768 60999):
/// map a flow hash into the range so that ECMP and RSS on the path spread tunnels by inner
/// flow. Like the kernel, the result never reaches `max` itself.
pub fn gue_src_port(hash: u32) -> u16 {
    let (min, max) = (32768u64, 60999u64);
    let h = hash ^ (hash << 16);
    (((u64::from(h) * (max - min)) >> 32) + min) as u16
}

/// GUE variant 0 over UDP: prepend the GUE header (4 bytes, 12 with the remote checksum
/// option), UDP and the outer IP header, as `ipvs_gue_encap` does.
pub fn encap_gue(
    frame: &mut Frame<'_>,
    outer: &Outer,
    opts: &GueOptions,
) -> Result<(), EncapError> {
    let proto = prepare_inner(frame)?;
    let partial = match frame.csum() {
        CsumStatus::Partial { start, offset } => Some((start, offset)),
        _ => None,
    };
    let remcsum = if opts.remcsum { partial } else { None };
    let gue_len = if remcsum.is_some() { 12 } else { 4 };
    if frame.headroom() < outer.header_len() + 8 + gue_len {
        return Err(EncapError::NoHeadroom);
    }
    if opts.csum && remcsum.is_none() {
        finish_if_partial(frame)?;
    }
    let g = frame.push_front(gue_len)?;
    // Ver 0, C 0, Hlen in 4-byte words of optional fields.
    g[0] = ((gue_len - 4) / 4) as u8;
    g[1] = proto;
    if let Some((start, offset)) = remcsum {
        wr16(g, 2, GUE_FLAG_PRIV);
        wr32(g, 4, GUE_PFLAG_REMCSUM);
        //= ipvs_gue_encap: pd[0] = csum_start (from the inner packet), pd[1] = pd[0] + csum_offset
        wr16(g, 8, start);
        wr16(g, 10, start.wrapping_add(offset));
    } else {
        wr16(g, 2, 0);
    }
    if remcsum.is_some() {
        // The receiver completes the inner checksum; this frame's own checksums are final.
        frame.set_csum(CsumStatus::Complete);
    }
    push_udp(
        frame,
        outer,
        opts.src_port,
        opts.dst_port,
        opts.csum || opts.remcsum,
    )?;
    push_outer(frame, outer, ip_proto::UDP)
}

/// Foo-over-UDP (Linux `fou` with `ipproto 4` / `ipproto 41`, the same bytes as GUE variant
/// 1): UDP directly followed by the inner IP packet. Not something the kernel's IPVS emits,
/// but what a real server with a plain `fou` receiver expects. With `csum`, a partial inner
/// checksum is finished first and the UDP checksum computed; otherwise it is zero.
pub fn encap_fou(
    frame: &mut Frame<'_>,
    outer: &Outer,
    src_port: u16,
    dst_port: u16,
    csum: bool,
) -> Result<(), EncapError> {
    prepare_inner(frame)?;
    if frame.headroom() < outer.header_len() + 8 {
        return Err(EncapError::NoHeadroom);
    }
    if csum {
        finish_if_partial(frame)?;
    }
    push_udp(frame, outer, src_port, dst_port, csum)?;
    push_outer(frame, outer, ip_proto::UDP)
}

fn push_udp(
    frame: &mut Frame<'_>,
    outer: &Outer,
    src_port: u16,
    dst_port: u16,
    csum: bool,
) -> Result<(), EncapError> {
    let udp_len = u16::try_from(frame.len() + 8).map_err(|_| EncapError::TooLong)?;
    let u = frame.push_front(8)?;
    wr16(u, 0, src_port);
    wr16(u, 2, dst_port);
    wr16(u, 4, udp_len);
    wr16(u, 6, 0);
    if csum {
        let seed = match outer {
            Outer::V4(o) => checksum::pseudo_v4(o.src, o.dst, ip_proto::UDP, udp_len),
            Outer::V6(o) => checksum::pseudo_v6(o.src, o.dst, ip_proto::UDP, u32::from(udp_len)),
        };
        let c = checksum::udp_on_wire(!checksum::fold(checksum::sum_into(seed, frame.data())));
        wr16(frame.data_mut(), 6, c);
    }
    Ok(())
}

/// The kind of tunnel [`decap`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    /// IPv4 in IP (protocol 4).
    Ipip,
    /// IPv6 in IP (protocol 41).
    Ip6,
    /// GRE; `checksum_ok` is `None` without a checksum field.
    Gre {
        /// The GRE checksum verified, if present.
        checksum_ok: Option<bool>,
    },
    /// GUE variant 0; `remcsum` gives (start, field position) from the inner packet start:
    /// finish with `finish_partial(inner, start, field - start)`.
    Gue {
        /// Remote checksum offload option.
        remcsum: Option<(u16, u16)>,
    },
    /// GUE variant 1: IP directly after UDP.
    GueDirect,
}

/// A decapsulated packet: where the inner IP packet is in the outer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decap {
    /// Tunnel kind.
    pub tunnel: Tunnel,
    /// Outer source.
    pub outer_src: IpAddr,
    /// Outer destination.
    pub outer_dst: IpAddr,
    /// Inner packet range in the `l3` slice given to [`decap`].
    pub inner: Range<usize>,
}

/// Find the inner packet of an IPIP/IPv6-in-IP, GRE or (on UDP destination port
/// `gue_port`) GUE tunnel packet. `l3` starts at the outer IP header. `Ok(None)`: not a
/// tunnel packet this knows (or a GUE control message).
pub fn decap(l3: &[u8], gue_port: Option<u16>) -> Result<Option<Decap>, Malformed> {
    let p = super::parse::parse_ip(l3)?;
    if p.frag.is_fragment {
        return Ok(None);
    }
    let l4 = usize::from(p.l4_offset);
    let end = usize::from(p.l3_len);
    let body = &l3[l4..end];
    let found = |tunnel, inner: Range<usize>| {
        Some(Decap {
            tunnel,
            outer_src: p.src,
            outer_dst: p.dst,
            inner: l4 + inner.start..l4 + inner.end,
        })
    };
    let inner_version = |b: &[u8], want: u8| match b.first() {
        Some(v) if v >> 4 == want => Ok(()),
        Some(_) => Err(Malformed::BadVersion),
        None => Err(Malformed::Truncated),
    };
    match p.protocol {
        ip_proto::IPIP => {
            inner_version(body, 4)?;
            Ok(found(Tunnel::Ipip, 0..body.len()))
        }
        ip_proto::IPV6 => {
            inner_version(body, 6)?;
            Ok(found(Tunnel::Ip6, 0..body.len()))
        }
        ip_proto::GRE => {
            if body.len() < 4 {
                return Err(Malformed::Truncated);
            }
            let flags = rd16(body, 0);
            if flags & 0x0007 != 0 || flags & GRE_FLAG_ROUTING != 0 {
                return Err(Malformed::BadGre);
            }
            let mut hl = 4;
            for f in [GRE_FLAG_CSUM, GRE_FLAG_KEY, GRE_FLAG_SEQ] {
                if flags & f != 0 {
                    hl += 4;
                }
            }
            if body.len() < hl {
                return Err(Malformed::Truncated);
            }
            let want = match rd16(body, 2) {
                0x0800 => 4,
                0x86dd => 6,
                _ => return Ok(None),
            };
            inner_version(&body[hl..], want)?;
            let checksum_ok = (flags & GRE_FLAG_CSUM != 0).then(|| checksum::sum(body) == 0xffff);
            Ok(found(Tunnel::Gre { checksum_ok }, hl..body.len()))
        }
        ip_proto::UDP if gue_port.is_some_and(|g| g == p.dst_port) => {
            let ulen = usize::from(rd16(body, 4)).min(body.len());
            let gue = &body[8..ulen];
            let b0 = *gue.first().ok_or(Malformed::Truncated)?;
            match b0 >> 6 {
                0 => {
                    if gue.len() < 4 {
                        return Err(Malformed::Truncated);
                    }
                    if b0 & 0x20 != 0 {
                        return Ok(None); // control message
                    }
                    let hl = 4 + usize::from(b0 & 0x1f) * 4;
                    if gue.len() < hl {
                        return Err(Malformed::BadGue);
                    }
                    let want = match gue[1] {
                        ip_proto::IPIP => 4,
                        ip_proto::IPV6 => 6,
                        _ => return Ok(None),
                    };
                    let mut remcsum = None;
                    if rd16(gue, 2) & GUE_FLAG_PRIV != 0
                        && hl >= 8
                        && rd32(gue, 4) & GUE_PFLAG_REMCSUM != 0
                    {
                        if hl < 12 {
                            return Err(Malformed::BadGue);
                        }
                        remcsum = Some((rd16(gue, 8), rd16(gue, 10)));
                    }
                    inner_version(&gue[hl..], want)?;
                    Ok(found(Tunnel::Gue { remcsum }, 8 + hl..ulen))
                }
                1 => {
                    inner_version(gue, b0 >> 4)?;
                    Ok(found(Tunnel::GueDirect, 8..ulen))
                }
                _ => Err(Malformed::BadGue),
            }
        }
        _ => Ok(None),
    }
}

/// Length of the headers [`encap_gue`] adds in front of the inner packet (outer IP, UDP,
/// GUE), for MTU accounting.
pub fn gue_overhead(outer: &Outer, remcsum: bool) -> usize {
    outer.header_len() + 8 + if remcsum { 12 } else { 4 }
}
