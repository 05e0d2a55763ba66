//! The SYN proxy (DPVS `src/ipvs/ip_vs_synproxy.c`), for TCP virtual services forwarded by
//! NAT or FullNAT: the director answers a client's SYN itself with a SYN cookie
//! ([`cookie`]) and creates no state; only an ACK whose cookie validates creates the
//! connection entry (scheduling, FullNAT local port). Then:
//!
//! 1. the client's ACK becomes the SYN to the chosen real server (the client's ISN, the MSS
//!    and SACK-permitted from the cookie); data the client already sent is held
//!    ([`Held`]), and any later client segment re-sends that SYN (the client's
//!    retransmissions and zero-window probes drive the SYN's retransmission);
//! 2. the real server's SYN-ACK gives the sequence delta (its ISN − the cookie); the
//!    director acknowledges it towards the real server, sends the held data, and turns the
//!    SYN-ACK into a window update for the client (DPVS's `syn_proxy_send_window_update()`:
//!    the cookie SYN-ACK advertised a zero window, so the client waits for it);
//! 3. from then on every segment is translated: real server → client `seq − delta`,
//!    client → real server `ack + delta` and the SACK blocks' edges `+ delta`
//!    ([`to_client_seq`], [`to_rs_ack`], [`translate_sack`]), with RFC 1624 checksum
//!    updates;
//! 4. a real server that refuses (RST to the SYN) gets its RST forwarded to the client with
//!    the sequence the client expects (DPVS `dp_vs_synproxy_synack_rcv()`).
//!
//! Window scaling and timestamps are not offered in the cookie SYN-ACK (see
//! `docs/synproxy.md` for the throughput consequence); SACK-permitted is, as DPVS does by
//! default. What it deliberately does not do: proxy IPv4 fragments, or DR or tunnelled real
//! servers (their replies bypass the director, so nothing could translate them).
//!
//! Connection sync carries the delta of an established proxied connection in the
//! kernel's sequence-adjustment option ([`to_sync_seq`], [`from_sync_seq`]), so a backup
//! director goes on translating after a failover.

pub mod cookie;

use super::{Af, Core, DropReason, Verdict, Way, rewrite};
use crate::conn::state::{Direction, TcpFlags as StateFlags};
use crate::conn::table::{ConnId, ConnTable, SeqProxy};
use crate::model::ForwardMethod;
use crate::time::Instant;
use crate::wire::{self, CsumStatus, Frame, Parsed, TcpFlags};
use cookie::{CookieData, Tuple};

/// SYN-proxy counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynProxyCounters {
    /// SYN-ACKs with a cookie sent (one per client SYN).
    pub cookies_sent: u64,
    /// ACKs whose cookie validated (each created a connection).
    pub acks_valid: u64,
    /// ACKs to a proxied service with no connection and a cookie that did not validate.
    pub acks_invalid: u64,
    /// Connections whose real server answered the SYN (handshakes completed).
    pub proxied: u64,
    /// Real servers that refused the SYN (RST; the client got the RST).
    pub rs_refused: u64,
    /// Client segments held until the real server's handshake completed.
    pub held: u64,
    /// Client segments that could not be held (no free slot, too big), dropped: the
    /// client retransmits them.
    pub held_dropped: u64,
}

/// How long a held segment waits for its real server's SYN-ACK.
const HOLD_NS: u64 = 3_000_000_000;

/// Held segments: 64 slots of 2 KiB, allocated once.
const HOLD_SLOTS: usize = 64;
const HOLD_SLOT_SIZE: usize = 2048;

#[derive(Debug, Clone, Copy)]
struct HeldMeta {
    conn: u32,
    /// The client's ISN: tells a reused connection id apart.
    tag: u32,
    len: u16,
    at: u64,
}

/// Client segments of connections whose real server has not answered yet, in a fixed pool
/// (DPVS keeps up to `syn_proxy_max_ack_saved` = 3 per connection in mbufs).
#[derive(Debug)]
pub(super) struct Held {
    meta: Vec<Option<HeldMeta>>,
    bytes: Vec<u8>,
}

impl Held {
    pub(super) fn new() -> Held {
        Held {
            meta: vec![None; HOLD_SLOTS],
            bytes: vec![0; HOLD_SLOTS * HOLD_SLOT_SIZE],
        }
    }

    fn push(&mut self, conn: ConnId, tag: u32, frame: &[u8], now: Instant) -> bool {
        if frame.len() > HOLD_SLOT_SIZE {
            return false;
        }
        let Some(i) = self.meta.iter().position(Option::is_none) else {
            return false;
        };
        self.bytes[i * HOLD_SLOT_SIZE..i * HOLD_SLOT_SIZE + frame.len()].copy_from_slice(frame);
        self.meta[i] = Some(HeldMeta {
            conn: conn.index(),
            tag,
            len: frame.len() as u16,
            at: now.0,
        });
        true
    }

    /// Take the oldest held segment of a connection into `out`; its length.
    fn take(&mut self, conn: ConnId, tag: u32, out: &mut [u8]) -> Option<usize> {
        let i = self
            .meta
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (i, m)))
            .filter(|(_, m)| m.conn == conn.index() && m.tag == tag)
            .min_by_key(|(_, m)| m.at)
            .map(|(i, _)| i)?;
        let m = self.meta[i].take()?;
        let len = usize::from(m.len);
        let dst = out.get_mut(..len)?;
        dst.copy_from_slice(&self.bytes[i * HOLD_SLOT_SIZE..i * HOLD_SLOT_SIZE + len]);
        Some(len)
    }

    fn forget(&mut self, conn: ConnId, tag: u32) {
        for m in &mut self.meta {
            if m.is_some_and(|m| m.conn == conn.index() && m.tag == tag) {
                *m = None;
            }
        }
    }

    /// Drop segments held longer than their real server may take; how many.
    pub(super) fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for m in &mut self.meta {
            if m.is_some_and(|m| now.0.saturating_sub(m.at) > HOLD_NS) {
                *m = None;
                n += 1;
            }
        }
        n
    }
}

/// The phase in [`SeqProxy::phase`]: the SYN went to the real server, its SYN-ACK has not
/// come (`a` = the cookie, `b` = the client's ISN; bits 2–4 the cookie data).
const AWAIT_RS: u8 = 1;
/// The handshake is complete: `a` = the sequence delta (real server's ISN − cookie).
const ESTABLISHED: u8 = 2;
const PHASE_MASK: u8 = 3;

/// The sequence-adjustment data (`IPVS_OPT_SEQ_DATA`, `struct ip_vs_sync_conn_options`)
/// that tells a backup director about a proxied connection: `None` until the real
/// server's SYN-ACK has given the delta (such a connection is not in a synced TCP state
/// yet either). The record's flags are [`SYNC_SEQ_FLAGS`].
///
/// The mapping, in the kernel's own terms (net/netfilter/ipvs/ip_vs_app.c: `vs_fix_seq()`
/// adds `delta` to the sequence of a packet, `vs_fix_ack_seq()` subtracts it from the
/// acknowledgement; `app_tcp_pkt_out()` applies `out_seq` to the real server's sequence
/// and `app_tcp_pkt_in()` to the client's acknowledgement):
///
/// - `out_seq` = { `init_seq`: 0, `delta`: −D, `previous_delta`: −D }, D = the real
///   server's ISN − the cookie: real server → client `seq + (−D)`, client → real server
///   `ack − (−D)`, which is exactly [`to_client_seq`] and [`to_rs_ack`]. `delta` and
///   `previous_delta` are equal, so the kernel's `after(seq, init_seq)` test picks the
///   same value on either side and `init_seq` carries nothing.
/// - `in_seq` = { `init_seq`: the client's ISN, `delta`: 0, `previous_delta`: 0 }: no
///   adjustment of the client's sequence (the kernel skips an `ip_vs_seq` whose deltas
///   are both 0); `init_seq` keeps the client's ISN for the entry's bookkeeping.
/// - Flags `IP_VS_CONN_F_OUT_SEQ | IP_VS_CONN_F_IN_SEQ`. The FTP helper, the only other
///   user of the option (kernel and rvs), sets `OUT_SEQ` alone (`ip_vs_ftp_in()` never
///   resizes), so a record with both flags, zero `in_seq` deltas and equal `out_seq`
///   deltas is a proxied connection ([`from_sync_seq`]).
///
/// Not translated by a kernel backup: it keeps the option (`ip_vs_proc_conn()`:
/// `cp->in_seq = opt->in_seq; cp->out_seq = opt->out_seq`) but applies it only through
/// an application helper bound to the connection, and none is for a proxied service.
/// DPVS's session sync (`src/ipvs/ip_vs_sync.c`, `dp_vs_sync_conn_enqueue()`) copies
/// `fnat_seq` but not `syn_proxy_seq`, so its proxied connections do not survive a
/// failover either.
pub fn to_sync_seq(sp: SeqProxy) -> Option<crate::sync::SeqData> {
    if sp.phase & PHASE_MASK != ESTABLISHED {
        return None;
    }
    let minus = sp.a.wrapping_neg();
    Some(crate::sync::SeqData {
        in_seq: crate::sync::Seq {
            init_seq: sp.b,
            delta: 0,
            previous_delta: 0,
        },
        out_seq: crate::sync::Seq {
            init_seq: 0,
            delta: minus,
            previous_delta: minus,
        },
    })
}

/// The connection flags of a record carrying [`to_sync_seq`]'s data.
pub const SYNC_SEQ_FLAGS: u32 = crate::sync::flags::IN_SEQ | crate::sync::flags::OUT_SEQ;

/// The proxy's bookkeeping from a synced record's flags and sequence data, when they are
/// [`to_sync_seq`]'s shape; `None` for anything else (the FTP helper's adjustment).
pub fn from_sync_seq(flags: u32, s: &crate::sync::SeqData) -> Option<SeqProxy> {
    let shape = flags & SYNC_SEQ_FLAGS == SYNC_SEQ_FLAGS
        && s.in_seq.delta == 0
        && s.in_seq.previous_delta == 0
        && s.out_seq.delta == s.out_seq.previous_delta;
    shape.then_some(SeqProxy {
        phase: ESTABLISHED,
        a: s.out_seq.delta.wrapping_neg(),
        b: s.in_seq.init_seq,
    })
}

/// Client → real server: the acknowledgement number the real server expects.
#[inline]
pub fn to_rs_ack(ack: u32, delta: u32) -> u32 {
    ack.wrapping_add(delta)
}

/// Real server → client: the sequence number the client expects.
#[inline]
pub fn to_client_seq(seq: u32, delta: u32) -> u32 {
    seq.wrapping_sub(delta)
}

/// Real server → client, undone: what [`to_rs_ack`] gives for the client's view.
#[inline]
pub fn to_rs_seq(seq: u32, delta: u32) -> u32 {
    seq.wrapping_add(delta)
}

/// Add `delta` to both edges of every SACK block (RFC 2018 option 5) among the TCP options
/// `opts` (client → real server: the blocks acknowledge the real server's data, which the
/// client numbers from the cookie). Returns the TCP checksum `hc` updated (RFC 1624).
/// Malformed options are left where they stop being readable (DPVS
/// `syn_proxy_filter_opt_outin()` stops there too).
pub fn translate_sack(opts: &mut [u8], delta: u32, mut hc: u16) -> u16 {
    let mut i = 0;
    while let Some((kind, at, len)) = next_option(opts, i) {
        if kind == 5 && len >= 10 && (len - 2) % 8 == 0 {
            for edge in (at + 2..at + len).step_by(4) {
                let old = u32::from_be_bytes([
                    opts[edge],
                    opts[edge + 1],
                    opts[edge + 2],
                    opts[edge + 3],
                ]);
                let new = old.wrapping_add(delta);
                opts[edge..edge + 4].copy_from_slice(&new.to_be_bytes());
                hc = wire::checksum::update32(hc, old, new);
            }
        }
        i = at + len;
    }
    hc
}

/// The MSS (option 2) and SACK-permitted (option 4) of a SYN's options.
pub fn syn_options(opts: &[u8]) -> (Option<u16>, bool) {
    let (mut mss, mut sack) = (None, false);
    let mut i = 0;
    while let Some((kind, at, len)) = next_option(opts, i) {
        match (kind, len) {
            (2, 4) => mss = Some(u16::from_be_bytes([opts[at + 2], opts[at + 3]])),
            (4, 2) => sack = true,
            _ => {}
        }
        i = at + len;
    }
    (mss, sack)
}

/// The TCP option at `i`: its kind, offset and length (a NOP is 1 byte). None at the end
/// of the list (EOL, or the end of `opts`) and where the options stop being readable (a
/// length below 2 or past the end).
fn next_option(opts: &[u8], i: usize) -> Option<(u8, usize, usize)> {
    match *opts.get(i)? {
        0 => None,
        1 => Some((1, i, 1)),
        kind => {
            let len = usize::from(*opts.get(i + 1)?);
            (len >= 2 && i + len <= opts.len()).then_some((kind, i, len))
        }
    }
}

/// A TCP header the proxy writes over a frame's.
struct Shape {
    /// Swap the addresses, ports and MACs (an answer to the frame's sender).
    swap: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    /// MSS and SACK-permitted options, or none.
    opts: Option<CookieData>,
}

/// The TCP fields of a parsed frame: (seq, ack, header length, payload length, window).
fn tcp_fields(frame: &Frame<'_>, p: &Parsed) -> Option<(u32, u32, usize, usize, u16)> {
    let d = frame.data();
    let l4 = usize::from(p.l4_offset);
    let end = usize::from(p.l3_offset) + usize::from(p.l3_len);
    let h = d.get(l4..l4 + 20)?;
    let thl = usize::from(h[12] >> 4) * 4;
    if thl < 20 || l4 + thl > end || end > d.len() {
        return None;
    }
    let rd = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    Some((
        rd(4),
        rd(8),
        thl,
        end - l4 - thl,
        u16::from_be_bytes([h[14], h[15]]),
    ))
}

/// Rewrite the TCP segment of `frame` (parsed as `p`) to `s`: the payload is dropped, the
/// IP length, TTL (64 when answering) and both checksums are computed afresh. Returns the
/// new parse.
fn reshape(frame: &mut Frame<'_>, p: &Parsed, s: &Shape) -> Result<Parsed, DropReason> {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let opts_len = match s.opts {
        None => 0,
        Some(d) if d.sack => 8,
        Some(_) => 4,
    };
    let thl = 20 + opts_len;
    let end = l4 + thl;
    let len = frame.len();
    if end > len {
        frame.extend(end - len).map_err(|_| DropReason::NoRoom)?;
    } else {
        frame.truncate(end);
    }
    let v4 = p.src.is_ipv4();
    let d = frame.data_mut();
    if s.swap {
        rewrite::swap_macs(d);
        let (a, b, w) = if v4 {
            (l3 + 12, l3 + 16, 4)
        } else {
            (l3 + 8, l3 + 24, 16)
        };
        for i in 0..w {
            d.swap(a + i, b + i);
        }
        d.swap(l4, l4 + 2);
        d.swap(l4 + 1, l4 + 3);
        if v4 {
            d[l3 + 8] = 64;
        } else {
            d[l3 + 7] = 64;
        }
    }
    let h = &mut d[l4..end];
    h[4..8].copy_from_slice(&s.seq.to_be_bytes());
    h[8..12].copy_from_slice(&s.ack.to_be_bytes());
    h[12] = ((thl / 4) as u8) << 4;
    h[13] = s.flags;
    h[14..16].copy_from_slice(&s.window.to_be_bytes());
    h[16..20].fill(0);
    if let Some(c) = s.opts {
        h[20..24].copy_from_slice(&[2, 4, (c.mss >> 8) as u8, c.mss as u8]);
        if c.sack {
            h[24..28].copy_from_slice(&[1, 1, 4, 2]);
        }
    }
    if v4 {
        let total = (end - l3) as u16;
        d[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        let ihl = usize::from(d[l3] & 0x0f) * 4;
        d[l3 + 10..l3 + 12].fill(0);
        let c = wire::checksum::checksum(&d[l3..l3 + ihl]);
        d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    } else {
        let payload = (end - l3 - 40) as u16;
        d[l3 + 4..l3 + 6].copy_from_slice(&payload.to_be_bytes());
    }
    wire::fill_l4_checksum(&mut d[l3..end]).map_err(|_| DropReason::Malformed)?;
    frame.set_csum(CsumStatus::Complete);
    wire::parse(frame.data()).map_err(|_| DropReason::Malformed)
}

/// Write a TCP header's 32-bit field at `at` (4: sequence, 8: acknowledgement), updating its
/// checksum (complete: the proxy completes partial checksums first).
fn set_u32(frame: &mut Frame<'_>, l4: usize, at: usize, v: u32) {
    super::set_seq_field(frame, l4, at, v, false);
}

/// What the proxy decided about a packet of a proxied connection.
pub(super) enum Step {
    /// Done: the verdict.
    Done(Verdict),
    /// Forward the (translated or rebuilt) frame, parsed anew, as any other packet.
    Go(Parsed),
}

/// What a validated cookie ACK carries into the connection's creation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Opening {
    data: CookieData,
    cookie: u32,
    cisn: u32,
}

/// The answer to a TCP packet without a connection for a proxied service.
pub(super) enum Gate {
    /// Answered (SYN-ACK with a cookie) or dropped.
    Answered(Verdict),
    /// A valid cookie: create the connection.
    Open(Opening),
}

impl Core {
    /// Whether a virtual service has the SYN proxy on: asked for and able to serve it
    /// (`SynProxyConfig::applies`: NAT and FullNAT real servers only; `[synproxy] all`
    /// skips the others, whose replies bypass the director, so a cookie SYN-ACK would
    /// lead to a connection nothing could translate).
    pub(super) fn synproxy_on(&self, svc: super::ServiceId) -> bool {
        self.services.get(svc).is_some_and(|s| s.synproxy)
    }

    /// A TCP packet without a connection to a proxied service: a SYN gets a SYN-ACK with
    /// a cookie (DPVS `dp_vs_synproxy_syn_rcv()`), an ACK is checked
    /// (`dp_vs_synproxy_ack_rcv()`), anything else is dropped as without the proxy.
    pub(super) fn synproxy_gate(
        &mut self,
        now: Instant,
        port: super::PortId,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Gate {
        let f = p.tcp_flags;
        if p.frag.is_fragment {
            return Gate::Answered(self.drop(DropReason::SynProxy));
        }
        let Some((seq, ack, thl, _, _)) = tcp_fields(frame, p) else {
            return Gate::Answered(self.drop(DropReason::Malformed));
        };
        let tuple = Tuple {
            saddr: p.src,
            daddr: p.dst,
            sport: p.src_port,
            dport: p.dst_port,
        };
        let count = cookie::counter(now.0);
        let no = TcpFlags::ACK.0 | TcpFlags::RST.0 | TcpFlags::FIN.0;
        if f.contains(TcpFlags::SYN) && f.0 & no == 0 {
            let l4 = usize::from(p.l4_offset);
            let (mss, sack) = syn_options(&frame.data()[l4 + 20..l4 + thl]);
            let data = CookieData::for_client(mss.unwrap_or(536), sack);
            let c = self.sp_key.make(&tuple, seq, count, data);
            let shape = Shape {
                swap: true,
                seq: c,
                ack: seq.wrapping_add(1),
                flags: TcpFlags::SYN.0 | TcpFlags::ACK.0,
                // DPVS `syn_proxy_reuse_mbuf()`: a zero window, so the client sends no data
                // before the real server has answered.
                window: 0,
                opts: Some(data),
            };
            return Gate::Answered(match reshape(frame, p, &shape) {
                Ok(_) => {
                    self.counters.synproxy.cookies_sent += 1;
                    Verdict::Transmit(port)
                }
                Err(r) => self.drop(r),
            });
        }
        if f.contains(TcpFlags::ACK) && !f.contains(TcpFlags::SYN) && !f.contains(TcpFlags::RST) {
            let (cookie, cisn) = (ack.wrapping_sub(1), seq.wrapping_sub(1));
            return match self.sp_key.check(&tuple, cisn, count, cookie) {
                Some(data) => {
                    self.counters.synproxy.acks_valid += 1;
                    // A valid cookie proves the source (`director/shed.rs`).
                    self.shed.prove(p.src, now);
                    Gate::Open(Opening { data, cookie, cisn })
                }
                None => {
                    self.counters.synproxy.acks_invalid += 1;
                    Gate::Answered(self.drop(DropReason::SynProxy))
                }
            };
        }
        Gate::Answered(self.drop(DropReason::NotSyn))
    }

    /// A connection was created from a valid cookie ACK: hold its data, send the SYN to the
    /// real server (`syn_proxy_send_rs_syn()`), and mark the entry.
    pub(super) fn synproxy_open<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        id: ConnId,
        frame: &mut Frame<'_>,
        p: &Parsed,
        o: Opening,
    ) -> Verdict {
        let nat = self
            .services
            .dest(super::DestId(t.hot(id).map_or(u32::MAX, |c| c.dest)))
            .is_some_and(|d| matches!(d.method, ForwardMethod::Masq | ForwardMethod::FullNat));
        if !nat {
            // Only NAT and FullNAT see the real server's replies; refuse the rest.
            if let Some(old) = t.remove(id) {
                super::release(&mut self.services, &mut self.counters, old.dest, old.flags);
            }
            return self.drop(DropReason::SynProxy);
        }
        self.hold(id, o.cisn, frame, p, now);
        let window = tcp_fields(frame, p).map_or(0xffff, |f| f.4);
        let shape = Shape {
            swap: false,
            seq: o.cisn,
            ack: 0,
            flags: TcpFlags::SYN.0,
            window,
            opts: Some(o.data),
        };
        let p2 = match reshape(frame, p, &shape) {
            Ok(p2) => p2,
            Err(r) => return self.drop(r),
        };
        let v = self.forward(t, now, id, Way::In, frame, &p2);
        let data = ((o.data.sack as u8) << 4)
            | ((cookie::MSS_TABLE
                .iter()
                .position(|&m| m == o.data.mss)
                .unwrap_or(0) as u8)
                << 2);
        t.set_seq_proxy(
            id,
            SeqProxy {
                phase: AWAIT_RS | data,
                a: o.cookie,
                b: o.cisn,
            },
        );
        v
    }

    /// Keep a copy of a client segment that carries data (or FIN) until the real server
    /// has answered.
    fn hold(&mut self, id: ConnId, cisn: u32, frame: &Frame<'_>, p: &Parsed, now: Instant) {
        let Some((_, _, _, payload, _)) = tcp_fields(frame, p) else {
            return;
        };
        if payload == 0 && !p.tcp_flags.contains(TcpFlags::FIN) {
            return;
        }
        let end = usize::from(p.l3_offset) + usize::from(p.l3_len);
        if self.sp_held.push(id, cisn, &frame.data()[..end], now) {
            self.counters.synproxy.held += 1;
        } else {
            self.counters.synproxy.held_dropped += 1;
        }
    }

    /// A packet of a proxied connection (see the module documentation).
    pub(super) fn synproxy_step<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        id: ConnId,
        way: Way,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Step {
        let Some(sp) = t.seq_proxy(id) else {
            return Step::Go(*p);
        };
        if matches!(frame.csum(), CsumStatus::Partial { .. }) && frame.finish_checksum().is_err() {
            return Step::Done(self.drop(DropReason::Malformed));
        }
        let Some((seq, ack, thl, _, window)) = tcp_fields(frame, p) else {
            return Step::Done(self.drop(DropReason::Malformed));
        };
        let l4 = usize::from(p.l4_offset);
        let f = p.tcp_flags;
        match (sp.phase & PHASE_MASK, way) {
            (AWAIT_RS, Way::In) => {
                if f.contains(TcpFlags::RST) {
                    return Step::Go(*p);
                }
                self.hold(id, sp.b, frame, p, now);
                let data = CookieData {
                    mss: cookie::MSS_TABLE[usize::from((sp.phase >> 2) & 3)],
                    sack: sp.phase & 0x10 != 0,
                };
                let shape = Shape {
                    swap: false,
                    seq: sp.b,
                    ack: 0,
                    flags: TcpFlags::SYN.0,
                    window,
                    opts: Some(data),
                };
                match reshape(frame, p, &shape) {
                    Ok(p2) => Step::Go(p2),
                    Err(r) => Step::Done(self.drop(r)),
                }
            }
            (AWAIT_RS, Way::Out) => {
                if f.contains(TcpFlags::RST) {
                    // `dp_vs_synproxy_synack_rcv()`: the real server refused; the client
                    // gets the RST at the sequence it expects (the cookie + 1).
                    self.counters.synproxy.rs_refused += 1;
                    set_u32(frame, l4, 4, sp.a.wrapping_add(1));
                    self.sp_held.forget(id, sp.b);
                    t.set_seq_proxy(
                        id,
                        SeqProxy {
                            phase: ESTABLISHED,
                            a: seq.wrapping_sub(sp.a),
                            b: sp.b,
                        },
                    );
                    return Step::Go(*p);
                }
                let synack = TcpFlags::SYN.0 | TcpFlags::ACK.0;
                if f.0 & (synack | TcpFlags::FIN.0) != synack || ack != sp.b.wrapping_add(1) {
                    return Step::Done(self.drop(DropReason::SynProxy));
                }
                let delta = seq.wrapping_sub(sp.a);
                t.set_seq_proxy(
                    id,
                    SeqProxy {
                        phase: ESTABLISHED,
                        a: delta,
                        b: sp.b,
                    },
                );
                self.counters.synproxy.proxied += 1;
                if let Some(tr) = t.tcp_transition(
                    id,
                    Direction::Output,
                    StateFlags(synack),
                    &self.timeouts,
                    now,
                ) && let Some(a) = tr.activity
                {
                    self.activity(super::DestId(tr_dest(t, id)), a);
                }
                self.ack_rs(t, now, id, frame, p, seq, ack, thl);
                self.release_held(t, now, id, sp.b);
                // The SYN-ACK becomes the window update the client waits for.
                let shape = Shape {
                    swap: false,
                    seq: sp.a.wrapping_add(1),
                    ack,
                    flags: TcpFlags::ACK.0,
                    window,
                    opts: None,
                };
                match reshape(frame, p, &shape) {
                    Ok(p2) => Step::Go(p2),
                    Err(r) => Step::Done(self.drop(r)),
                }
            }
            (_, Way::In) => {
                let delta = sp.a;
                if f.contains(TcpFlags::ACK) {
                    set_u32(frame, l4, 8, to_rs_ack(ack, delta));
                }
                if thl > 20 {
                    let d = frame.data_mut();
                    let hc = u16::from_be_bytes([d[l4 + 16], d[l4 + 17]]);
                    let hc = translate_sack(&mut d[l4 + 20..l4 + thl], delta, hc);
                    d[l4 + 16..l4 + 18].copy_from_slice(&hc.to_be_bytes());
                }
                Step::Go(*p)
            }
            (_, Way::Out) => {
                if f.contains(TcpFlags::SYN) {
                    // A retransmitted SYN-ACK: our ACK was lost; acknowledge again.
                    self.ack_rs(t, now, id, frame, p, seq, ack, thl);
                    return Step::Done(Verdict::Consumed);
                }
                set_u32(frame, l4, 4, to_client_seq(seq, sp.a));
                Step::Go(*p)
            }
        }
    }

    /// Acknowledge a real server's SYN-ACK (`seq`, `ack`) on the client's behalf: built from
    /// the SYN-ACK's headers, queued for [`super::Director::poll_transmit`].
    #[allow(clippy::too_many_arguments)]
    fn ack_rs<A: Af>(
        &mut self,
        t: &ConnTable<A>,
        now: Instant,
        id: ConnId,
        frame: &Frame<'_>,
        p: &Parsed,
        seq: u32,
        ack: u32,
        thl: usize,
    ) {
        let Some(dest) = t.hot(id).map(|c| super::DestId(c.dest)) else {
            return;
        };
        let Some(rs) = self.services.dest(dest).map(|d| d.addr) else {
            return;
        };
        let head = usize::from(p.l4_offset) + thl;
        let mut buf = [0u8; 256];
        let Some(src) = frame.data().get(..head) else {
            return;
        };
        if head + 16 > buf.len() {
            return;
        }
        buf[..head].copy_from_slice(src);
        let Ok(mut f) = Frame::new(&mut buf, 0, head) else {
            return;
        };
        let shape = Shape {
            swap: true,
            seq: ack,
            ack: seq.wrapping_add(1),
            flags: TcpFlags::ACK.0,
            // The client's window is not known here (no state was kept before its ACK);
            // its next segment tells the real server.
            window: 0xffff,
            opts: None,
        };
        if reshape(&mut f, p, &shape).is_err() {
            return;
        }
        if let Verdict::Transmit(port) = self.emit_to_dest(now, dest, rs, &mut f) {
            self.pool.push(port, None, f.data(), now);
        }
    }

    /// Send the held client segments of a connection whose handshake just completed.
    fn release_held<A: Af>(&mut self, t: &mut ConnTable<A>, now: Instant, id: ConnId, tag: u32) {
        const HEAD: usize = 64;
        let mut buf = [0u8; HEAD + HOLD_SLOT_SIZE + 64];
        while let Some(len) = self.sp_held.take(id, tag, &mut buf[HEAD..]) {
            let Ok(mut f) = Frame::new(&mut buf, HEAD, len) else {
                continue;
            };
            let Ok(p) = wire::parse(f.data()) else {
                continue;
            };
            if let Verdict::Transmit(port) = self.forward(t, now, id, Way::In, &mut f, &p) {
                self.pool.push(port, None, f.data(), now);
            }
        }
    }
}

fn tr_dest<A: Af>(t: &ConnTable<A>, id: ConnId) -> u32 {
    t.hot(id).map_or(u32::MAX, |c| c.dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sack_opts(blocks: &[(u32, u32)]) -> Vec<u8> {
        let mut v = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
        for (l, r) in blocks {
            v.extend_from_slice(&l.to_be_bytes());
            v.extend_from_slice(&r.to_be_bytes());
        }
        v
    }

    proptest! {
        #[test]
        fn translation_client_rs_client_is_the_identity(
            seq in any::<u32>(), delta in any::<u32>(),
        ) {
            // The real server's sequence seen by the client, acknowledged back.
            let client = to_client_seq(seq, delta);
            prop_assert_eq!(to_rs_ack(client, delta), seq);
            prop_assert_eq!(to_rs_seq(client, delta), seq);
            prop_assert_eq!(to_client_seq(to_rs_ack(seq, delta), delta), seq);
        }

        #[test]
        fn sack_blocks_move_by_delta_and_keep_the_checksum(
            blocks in proptest::collection::vec((any::<u32>(), any::<u32>()), 1..4),
            delta in any::<u32>(),
        ) {
            let mut opts = sack_opts(&blocks);
            let before = wire::checksum::checksum(&opts);
            let hc = translate_sack(&mut opts, delta, before);
            prop_assert!(wire::checksum::same(hc, wire::checksum::checksum(&opts)));
            let want: Vec<(u32, u32)> = blocks
                .iter()
                .map(|(l, r)| (l.wrapping_add(delta), r.wrapping_add(delta)))
                .collect();
            prop_assert_eq!(opts, sack_opts(&want));
            // And back: the identity.
            let mut back = sack_opts(&want);
            translate_sack(&mut back, delta.wrapping_neg(), 0);
            prop_assert_eq!(back, sack_opts(&blocks));
        }
    }

    #[test]
    fn translation_wraps_at_two_to_the_32() {
        assert_eq!(to_client_seq(5, 10), u32::MAX - 4);
        assert_eq!(to_rs_ack(u32::MAX - 4, 10), 5);
        assert_eq!(to_rs_ack(u32::MAX, 1), 0);
    }

    #[test]
    fn malformed_options_stop_the_sack_walk() {
        // A SACK option claiming more bytes than there are is left alone.
        let mut opts = vec![5, 18, 0, 0, 0, 1, 0, 0, 0, 2];
        translate_sack(&mut opts, 7, 0);
        assert_eq!(opts, vec![5, 18, 0, 0, 0, 1, 0, 0, 0, 2]);
        // Options parse around NOPs and end at EOL.
        assert_eq!(
            syn_options(&[1, 2, 4, 5, 0xb4, 1, 1, 4, 2]),
            (Some(1460), true)
        );
        assert_eq!(syn_options(&[0, 2, 4, 5, 0xb4]), (None, false));
        assert_eq!(syn_options(&[2, 1]), (None, false));
    }
}
