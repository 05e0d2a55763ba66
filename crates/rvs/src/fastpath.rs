//! `--fast-path xdp`: the daemon's side of the XDP fast path (docs/xdp.md).
//!
//! The worker hands every TCP segment it forwarded here ([`FastPath::forwarded`]): an
//! ACK of a connection the engine says may be offloaded
//! ([`rvs_core::director::offload`]) gets its directions (NAT and FullNAT both, direct
//! routing the client's) written to the program's flow map, after which its segments no longer reach the AF_PACKET rings; a SYN, FIN or RST
//! (which the program always passes up) removes the connection's entries, and the engine's
//! state machine goes on as without the fast path. Between batches ([`FastPath::fold`]) the
//! program's per-flow counters are added to the engine's statistics, the connections'
//! timers re-armed from the flows' last-seen times, and entries whose connection expired
//! or changed (a new MAC, a removed real server) removed or rewritten. With the sync master
//! role on, the folded client packets count towards `sync_threshold` in the engine; after
//! a takeover the connections the old master synced here are installed
//! ([`FastPath::fold`]'s walk, or with their first segment here).
//!
//! It does not decide which flows to offload (the engine does) and does not touch frames.
//! With `--fast-path off` (the default) nothing here exists and rvs runs as before.

use rvs_core::director::offload::{
    Offload, OffloadCount, OffloadTunnel, OffloadWay, Tuple, Tuple4, Tuple6,
};
use rvs_core::director::{Director, PortId};
use rvs_core::time::Instant;
use rvs_sys::xdp::{BatchBuf, FlowCounters, FlowKey, FlowKey6, Rewrite};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// `--fast-path`: off (the default) or XDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every frame through the AF_PACKET rings.
    #[default]
    Off,
    /// Established NAT, FullNAT, direct-routing and IPIP TCP and UDP flows through the XDP
    /// program.
    Xdp,
}

/// `--fast-path xdp|off`.
pub fn parse_mode(v: &str) -> Result<Mode, String> {
    match v {
        "xdp" => Ok(Mode::Xdp),
        "off" => Ok(Mode::Off),
        _ => Err(format!("xdp or off, not {v:?}")),
    }
}

/// The program's totals for the metrics (read by the worker when it folds).
static FRAMES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static PARTIAL: AtomicU64 = AtomicU64::new(0);
static FLOWS: AtomicU64 = AtomicU64::new(0);
static ON: AtomicU64 = AtomicU64::new(0);

/// The client's segments an established connection carries through the userspace path
/// before it is offloaded: a short connection (one request, then close) ends before that
/// and costs no map updates, and its data cannot overtake its FIN (which always takes the
/// userspace path) by more than the userspace path's own delay.
const OFFLOAD_AFTER: u16 = 8;

/// The flag in a pending UDP connection's count: a reply went through.
const REPLIED: u16 = 0x8000;

/// A flow's key in the daemon's tables: IP protocol, addresses and ports as it arrives.
type Key<A> = (u8, Tuple<A>);

/// Connections the map holds (two entries each, NAT and FullNAT).
const MAX_CONNS: usize = rvs_sys::xdp::MAX_FLOWS / 2;

/// Connection-table slots the takeover walk looks at per housekeeping round.
const SWEEP_SLOTS: usize = 4096;

/// How often, at most, the counters are folded while traffic keeps the worker busy (and
/// before every control answer).
const FOLD_EVERY_NS: u64 = 250_000_000;

/// One offloaded connection: its rewrite and the counters already folded.
#[derive(Debug, Clone, Copy)]
struct Installed<A> {
    offload: Offload<A>,
    inward: FlowCounters,
    outward: FlowCounters,
}

/// One address family's connections in the map, and those on their way there.
#[derive(Debug)]
struct Flows<A: Family> {
    /// By the inward key (client → VIP).
    flows: HashMap<Key<A>, Installed<A>>,
    /// Outward key → inward key.
    outward: HashMap<Key<A>, Key<A>>,
    /// Established connections not offloaded yet: the client's segments seen so far
    /// (and, for UDP, [`REPLIED`] once a reply went through).
    pending: HashMap<Key<A>, u16>,
    /// The takeover walk's next slot, while one runs.
    sweep: Option<u32>,
    /// The walk's candidates (allocated at start, [`SWEEP_SLOTS`] at most).
    candidates: Vec<Key<A>>,
    /// The fold's batched read of the map: its buffers and the counters by key (both
    /// allocated once).
    batch: BatchBuf<A::MapKey>,
    snapshot: HashMap<Key<A>, FlowCounters>,
    /// The kernel refused the batched read (before 5.6): one lookup per entry.
    no_batch: bool,
}

impl<A: Family> Flows<A> {
    fn new() -> Flows<A> {
        Flows {
            flows: HashMap::with_capacity(MAX_CONNS),
            outward: HashMap::with_capacity(MAX_CONNS),
            pending: HashMap::with_capacity(MAX_CONNS),
            sweep: None,
            candidates: Vec::with_capacity(SWEEP_SLOTS),
            batch: BatchBuf::default(),
            snapshot: HashMap::with_capacity(rvs_sys::xdp::MAX_FLOWS),
            no_batch: false,
        }
    }
}

/// What the families share: the program's maps, the ports' interfaces, the error state.
#[derive(Debug)]
struct Shared {
    xdp: rvs_sys::xdp::FastPath,
    /// Interface index per port.
    ifindex: Vec<u32>,
    /// A map error was logged (once until the next success).
    failing: bool,
}

impl Shared {
    fn failed(&mut self, e: &std::io::Error) {
        if !self.failing {
            tracing::warn!("XDP fast path: {e}; the flow stays on the userspace path");
            self.failing = true;
        }
    }

    fn rewrite<A: Copy>(
        &self,
        w: &OffloadWay<A>,
        tunnel: Option<OffloadTunnel>,
    ) -> Option<Rewrite<A>> {
        let (saddr, sport, daddr, dport) = w.to;
        Some(Rewrite {
            tunnel: tunnel.map(|t| rvs_sys::xdp::Tunnel {
                src: t.src,
                dst: t.dst,
                room: t.room,
            }),
            saddr,
            sport,
            daddr,
            dport,
            dmac: w.dmac,
            smac: w.smac,
            ifindex: *self.ifindex.get(usize::from(w.port.0))?,
        })
    }
}

/// An address family the fast path offloads: the engine's calls and the program's map
/// for it.
trait Family: Copy + Eq + std::hash::Hash + std::fmt::Debug {
    /// The map's key type.
    type MapKey: std::fmt::Debug + Default;
    /// Every entry's counters, batched ([`rvs_sys::xdp::FastPath::each_counters`]).
    fn each(
        x: &rvs_sys::xdp::FastPath,
        buf: &mut BatchBuf<Self::MapKey>,
        f: impl FnMut(Key<Self>, FlowCounters),
    ) -> std::io::Result<()>;
    fn offload(d: &mut Director, now: Instant, seg: Key<Self>) -> Option<Offload<Self>>;
    fn fold(
        d: &mut Director,
        now: Instant,
        o: &Offload<Self>,
        inward: OffloadCount,
        outward: OffloadCount,
        last_seen: Option<Instant>,
    ) -> Option<Offload<Self>>;
    fn synced(d: &Director, from: u32, max: usize, f: impl FnMut(u8, Tuple<Self>)) -> Option<u32>;
    fn insert(
        x: &mut rvs_sys::xdp::FastPath,
        k: Key<Self>,
        rw: &Rewrite<Self>,
    ) -> std::io::Result<()>;
    fn counters(x: &rvs_sys::xdp::FastPath, k: Key<Self>) -> std::io::Result<Option<FlowCounters>>;
    fn remove(x: &mut rvs_sys::xdp::FastPath, k: Key<Self>) -> std::io::Result<()>;
}

impl Family for [u8; 4] {
    type MapKey = FlowKey;
    fn each(
        x: &rvs_sys::xdp::FastPath,
        buf: &mut BatchBuf<FlowKey>,
        mut f: impl FnMut(Key<[u8; 4]>, FlowCounters),
    ) -> std::io::Result<()> {
        x.each_counters(buf, |k, c| {
            let p = u16::from_be_bytes;
            f((k.proto, (k.saddr, p(k.sport), k.daddr, p(k.dport))), c)
        })
    }
    fn offload(d: &mut Director, now: Instant, (p, seg): Key<[u8; 4]>) -> Option<Offload> {
        d.offload_v4(now, p, seg)
    }
    fn fold(
        d: &mut Director,
        now: Instant,
        o: &Offload,
        i: OffloadCount,
        w: OffloadCount,
        seen: Option<Instant>,
    ) -> Option<Offload> {
        d.offload_fold(now, o, i, w, seen)
    }
    fn synced(d: &Director, from: u32, max: usize, f: impl FnMut(u8, Tuple4)) -> Option<u32> {
        d.synced_established_v4(from, max, f)
    }
    fn insert(
        x: &mut rvs_sys::xdp::FastPath,
        k: Key<[u8; 4]>,
        rw: &Rewrite,
    ) -> std::io::Result<()> {
        x.insert(&key(k), rw)
    }
    fn counters(
        x: &rvs_sys::xdp::FastPath,
        k: Key<[u8; 4]>,
    ) -> std::io::Result<Option<FlowCounters>> {
        x.counters(&key(k))
    }
    fn remove(x: &mut rvs_sys::xdp::FastPath, k: Key<[u8; 4]>) -> std::io::Result<()> {
        x.remove(&key(k))
    }
}

impl Family for [u8; 16] {
    type MapKey = FlowKey6;
    fn each(
        x: &rvs_sys::xdp::FastPath,
        buf: &mut BatchBuf<FlowKey6>,
        mut f: impl FnMut(Key<[u8; 16]>, FlowCounters),
    ) -> std::io::Result<()> {
        x.each_counters6(buf, |k, c| {
            let p = u16::from_be_bytes;
            f((k.proto, (k.saddr, p(k.sport), k.daddr, p(k.dport))), c)
        })
    }
    fn offload(
        d: &mut Director,
        now: Instant,
        (p, seg): Key<[u8; 16]>,
    ) -> Option<Offload<[u8; 16]>> {
        d.offload_v6(now, p, seg)
    }
    fn fold(
        d: &mut Director,
        now: Instant,
        o: &Offload<[u8; 16]>,
        i: OffloadCount,
        w: OffloadCount,
        seen: Option<Instant>,
    ) -> Option<Offload<[u8; 16]>> {
        d.offload_fold_v6(now, o, i, w, seen)
    }
    fn synced(d: &Director, from: u32, max: usize, f: impl FnMut(u8, Tuple6)) -> Option<u32> {
        d.synced_established_v6(from, max, f)
    }
    fn insert(
        x: &mut rvs_sys::xdp::FastPath,
        (p, (s, sp, d, dp)): Key<[u8; 16]>,
        rw: &Rewrite<[u8; 16]>,
    ) -> std::io::Result<()> {
        x.insert6(&FlowKey6::new(p, s, sp, d, dp), rw)
    }
    fn counters(
        x: &rvs_sys::xdp::FastPath,
        (p, (s, sp, d, dp)): Key<[u8; 16]>,
    ) -> std::io::Result<Option<FlowCounters>> {
        x.counters6(&FlowKey6::new(p, s, sp, d, dp))
    }
    fn remove(
        x: &mut rvs_sys::xdp::FastPath,
        (p, (s, sp, d, dp)): Key<[u8; 16]>,
    ) -> std::io::Result<()> {
        x.remove6(&FlowKey6::new(p, s, sp, d, dp))
    }
}

/// The attached program and the connections written to its maps.
#[derive(Debug)]
pub struct FastPath {
    shared: Shared,
    v4: Flows<[u8; 4]>,
    v6: Flows<[u8; 16]>,
    folded: Instant,
    /// Addresses the engine owned at the last look: more means a takeover (or a reload
    /// that added one), which starts the walk of [`Flows::sweep`].
    owned: usize,
}

/// Attach the program to the director's interfaces when `mode` asks for it. Run before
/// the daemon drops privileges (loading a program needs CAP_BPF and CAP_NET_ADMIN).
/// When the kernel or a driver refuses, the daemon warns and runs without the fast path,
/// as with `--fast-path off`.
pub fn start(mode: Mode, interfaces: &[String]) -> Option<FastPath> {
    if mode == Mode::Off {
        return None;
    }
    let ifindex: Result<Vec<u32>, _> = interfaces
        .iter()
        .map(|n| rvs_sys::iface::if_index(n))
        .collect();
    let attached = ifindex.and_then(|ix| Ok((ix, rvs_sys::xdp::FastPath::attach(interfaces)?)));
    match attached {
        Ok((ifindex, xdp)) => {
            tracing::info!(
                interfaces = %interfaces.join(","),
                "XDP fast path attached (native mode): established NAT/FullNAT/DR flows bypass the rings"
            );
            for (name, ix) in interfaces.iter().zip(&ifindex) {
                if stacked(name, *ix) {
                    tracing::info!(
                        "{name} is a veth (or another stacked link): frames the fast path \
                         sends out of it reach its peer only while the peer has an XDP \
                         program or GRO on (ethtool -K PEER gro on), and a local sender's \
                         checksum-partial frames take the userspace path (docs/xdp.md)"
                    );
                }
            }
            ON.store(1, Ordering::Relaxed);
            Some(FastPath::new(xdp, ifindex))
        }
        Err(e) => {
            tracing::warn!(
                "--fast-path xdp: {e}; every frame takes the userspace path (as --fast-path off)"
            );
            None
        }
    }
}

/// Whether interface `name` (index `ix`) sits on another link (a veth's peer, a VLAN's
/// parent): `iflink` differs from `ifindex` in sysfs.
fn stacked(name: &str, ix: u32) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/iflink"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .is_some_and(|l| l != ix)
}

/// A segment's addresses and ports, by family (what [`peek`] saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// IPv4: protocol, addresses and ports.
    V4(u8, Tuple4),
    /// IPv6: protocol, addresses and ports.
    V6(u8, Tuple6),
}

/// The TCP segment (with its flags) or UDP datagram (flags 0) of a frame, before the
/// engine rewrites it: only plain ones (IPv4 without options, not a fragment; IPv6 with
/// TCP or UDP as the first next header) can be the fast path's.
pub fn peek(frame: &[u8]) -> Option<(Seg, u8)> {
    let p = |h: &[u8], i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    match frame.get(12..14)? {
        [0x08, 0x00] => {
            let h = frame.get(..42)?;
            if h[14] != 0x45 || h[20] & 0x3f != 0 || h[21] != 0 {
                return None;
            }
            let flags = match h[23] {
                6 => frame.get(..54)?[47],
                17 => 0,
                _ => return None,
            };
            let a = |i: usize| [h[i], h[i + 1], h[i + 2], h[i + 3]];
            Some((Seg::V4(h[23], (a(26), p(h, 34), a(30), p(h, 36))), flags))
        }
        [0x86, 0xdd] => {
            let h = frame.get(..62)?;
            if h[14] >> 4 != 6 {
                return None;
            }
            let flags = match h[20] {
                6 => frame.get(..74)?[67],
                17 => 0,
                _ => return None,
            };
            let a = |i: usize| -> [u8; 16] { h[i..i + 16].try_into().unwrap_or([0; 16]) };
            Some((Seg::V6(h[20], (a(22), p(h, 54), a(38), p(h, 56))), flags))
        }
        _ => None,
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn key((p, (s, sp, d, dp)): Key<[u8; 4]>) -> FlowKey {
    FlowKey::new(p, s, sp, d, dp)
}

impl FastPath {
    /// The daemon's side of a loaded program; `ifindex[p]` is port `p`'s interface.
    fn new(xdp: rvs_sys::xdp::FastPath, ifindex: Vec<u32>) -> FastPath {
        FastPath {
            shared: Shared {
                xdp,
                ifindex,
                failing: false,
            },
            v4: Flows::new(),
            v6: Flows::new(),
            folded: Instant(0),
            owned: 0,
        }
    }

    /// The engine forwarded segment `seg` with TCP flags `flags` (the worker's hook).
    pub fn forwarded(&mut self, d: &mut Director, now: Instant, seg: Seg, flags: u8) {
        match seg {
            Seg::V4(p, t) => self.v4.forwarded(&mut self.shared, d, now, (p, t), flags),
            Seg::V6(p, t) => self.v6.forwarded(&mut self.shared, d, now, (p, t), flags),
        }
    }

    /// Fold the counters (at most every 250 ms unless `force`): see the module
    /// documentation. Also publishes the program's totals for the metrics, and runs a
    /// piece of the takeover walk ([`Flows::sweep`]) while one is due.
    pub fn fold(&mut self, d: &mut Director, now: Instant, force: bool) {
        let owned = d.net().owned.len();
        if owned > self.owned {
            self.v4.sweep = Some(0);
            self.v6.sweep = Some(0);
        }
        self.owned = owned;
        self.v4.sweep(&mut self.shared, d, now);
        self.v6.sweep(&mut self.shared, d, now);
        if !force && now.0.saturating_sub(self.folded.0) < FOLD_EVERY_NS {
            return;
        }
        self.folded = now;
        let mono = rvs_sys::xdp::monotonic_ns();
        self.v4.fold(&mut self.shared, d, now, mono);
        self.v6.fold(&mut self.shared, d, now, mono);
        FLOWS.store(
            (self.v4.flows.len() + self.v6.flows.len()) as u64,
            Ordering::Relaxed,
        );
        match self.shared.xdp.totals() {
            Ok(t) => {
                FRAMES.store(t.frames, Ordering::Relaxed);
                BYTES.store(t.bytes, Ordering::Relaxed);
                PARTIAL.store(t.partial_csum, Ordering::Relaxed);
            }
            Err(e) => self.shared.failed(&e),
        }
    }

    /// The port an interface index belongs to (tests and diagnostics).
    pub fn port_of(&self, ifindex: u32) -> Option<PortId> {
        let i = self.shared.ifindex.iter().position(|x| *x == ifindex)?;
        Some(PortId(i as u8))
    }
}

fn delta(c: FlowCounters, was: FlowCounters) -> OffloadCount {
    OffloadCount {
        packets: c.packets.saturating_sub(was.packets),
        bytes: c.bytes.saturating_sub(was.bytes),
    }
}

impl<A: Family> Flows<A> {
    fn total(&self) -> usize {
        self.flows.len()
    }

    /// [`FastPath::forwarded`] in this family.
    fn forwarded(
        &mut self,
        x: &mut Shared,
        d: &mut Director,
        now: Instant,
        seg: Key<A>,
        flags: u8,
    ) {
        let inward = self.outward.get(&seg).copied().unwrap_or(seg);
        let known = self.flows.contains_key(&inward);
        let tcp = seg.0 == 6;
        if tcp && flags & (SYN | FIN | RST) != 0 {
            if known {
                self.uninstall(x, d, now, inward);
            } else {
                self.pending.remove(&seg);
            }
        } else if (!tcp || flags & ACK != 0)
            && !known
            && self.total() < MAX_CONNS
            && let Some(o) = A::offload(d, now, seg)
        {
            let client = (o.protocol, o.inward.from);
            // A UDP reply (the real server's datagram): the connection has seen both ways.
            // TCP counts the client's segments only (their key is the one the engine names
            // first); ESTABLISHED has seen both ways already.
            let reply = u16::from(client != seg);
            if reply == 1 && tcp {
                return;
            }
            let room = self.pending.len() < MAX_CONNS;
            let n = match self.pending.get_mut(&client) {
                Some(n) => {
                    *n = if reply == 1 {
                        *n | REPLIED
                    } else {
                        (*n & REPLIED) | ((*n & !REPLIED) + 1).min(OFFLOAD_AFTER)
                    };
                    *n
                }
                None if room => {
                    let n = if reply == 1 { REPLIED } else { 1 };
                    self.pending.insert(client, n);
                    n
                }
                None => return,
            };
            // UDP: both ways seen (a direct-routing connection's replies never cross the
            // director).
            let both = tcp || n & REPLIED != 0 || o.outward.is_none();
            // A connection a master synced here carried its first segments there: after a
            // takeover it goes to the map with its first segment here.
            if (n & !REPLIED >= OFFLOAD_AFTER && both) || o.synced {
                self.pending.remove(&client);
                let _ = self.install(x, o);
            }
        }
    }

    /// After a takeover (the engine owns more addresses than at the last look): walk the
    /// connection table in pieces of [`SWEEP_SLOTS`] slots, one per housekeeping round,
    /// and install the connections the old master synced here that are ESTABLISHED and
    /// offloadable now (both next hops' MACs known). The others go to the map with their
    /// first client segment here ([`FastPath::forwarded`]).
    fn sweep(&mut self, x: &mut Shared, d: &mut Director, now: Instant) {
        let Some(from) = self.sweep else {
            return;
        };
        let mut found = std::mem::take(&mut self.candidates);
        found.clear();
        self.sweep = A::synced(d, from, SWEEP_SLOTS, |p, k| found.push((p, k)));
        let mut installed = 0usize;
        for k in found.drain(..) {
            if self.total() >= MAX_CONNS {
                break;
            }
            if self.flows.contains_key(&k) {
                continue;
            }
            if let Some(o) = A::offload(d, now, k) {
                self.pending.remove(&k);
                installed += usize::from(self.install(x, o));
            }
        }
        self.candidates = found;
        if installed > 0 {
            tracing::info!(
                installed,
                "XDP fast path took over connections the old master synced (installed after the takeover)"
            );
        }
    }

    /// Fold every connection's counters (see the module documentation).
    fn fold(&mut self, x: &mut Shared, d: &mut Director, now: Instant, mono: u64) {
        // The map's counters in a few `bpf(2)` calls (BPF_MAP_LOOKUP_BATCH), not one per
        // entry (docs/xdp.md, "Batched folds").
        self.snapshot.clear();
        if !self.flows.is_empty() && !self.no_batch {
            let snap = &mut self.snapshot;
            if let Err(e) = A::each(&x.xdp, &mut self.batch, |k, c| {
                snap.insert(k, c);
            }) {
                tracing::info!("XDP fast path: {e}; the fold reads one entry at a time");
                self.no_batch = true;
                self.snapshot.clear();
            }
        }
        let batched = !self.no_batch;
        let keys: Vec<Key<A>> = self.flows.keys().copied().collect();
        for k in keys {
            let Some(f) = self.flows.get(&k).copied() else {
                continue;
            };
            let get = |x: &mut Shared, k: Key<A>| {
                if batched {
                    self.snapshot.get(&k).copied()
                } else {
                    read::<A>(x, k)
                }
            };
            let i = get(x, (f.offload.protocol, f.offload.inward.from));
            let o = match f.offload.outward {
                Some(w) => get(x, (f.offload.protocol, w.from)),
                None => Some(FlowCounters::default()),
            };
            let (Some(i), Some(o)) = (i, o) else {
                self.uninstall(x, d, now, k);
                continue;
            };
            let seen = i.last_seen_ns.max(o.last_seen_ns);
            let last_seen =
                (seen > 0).then(|| Instant(now.0.saturating_sub(mono.saturating_sub(seen))));
            let now_offload = A::fold(
                d,
                now,
                &f.offload,
                delta(i, f.inward),
                delta(o, f.outward),
                last_seen,
            );
            match now_offload {
                Some(n) if n == f.offload => {
                    self.flows.insert(
                        k,
                        Installed {
                            inward: i,
                            outward: o,
                            ..f
                        },
                    );
                }
                Some(n) => {
                    // A new MAC or egress: rewrite both entries (counters start again).
                    self.remove_entries(x, k);
                    let _ = self.install(x, n);
                }
                None => self.remove_entries(x, k),
            }
        }
        // Connections that ended before they were offloaded (a server's FIN, expiry).
        self.pending.retain(|k, _| A::offload(d, now, *k).is_some());
    }

    /// Write both entries of `o`; whether they are in the map.
    fn install(&mut self, x: &mut Shared, o: Offload<A>) -> bool {
        let Some(ri) = x.rewrite(&o.inward, o.tunnel) else {
            return false;
        };
        // The reply's entry first: the client's segments reach the program only once both
        // ways are in place.
        if let Some(w) = o.outward {
            let done = match x.rewrite(&w, None) {
                Some(ro) => A::insert(&mut x.xdp, (o.protocol, w.from), &ro),
                None => return false,
            };
            if let Err(e) = done {
                x.failed(&e);
                return false;
            }
        }
        if let Err(e) = A::insert(&mut x.xdp, (o.protocol, o.inward.from), &ri) {
            if let Some(w) = o.outward {
                let _ = A::remove(&mut x.xdp, (o.protocol, w.from));
            }
            x.failed(&e);
            return false;
        }
        x.failing = false;
        self.flows.insert(
            (o.protocol, o.inward.from),
            Installed {
                offload: o,
                inward: FlowCounters::default(),
                outward: FlowCounters::default(),
            },
        );
        if let Some(w) = o.outward {
            self.outward
                .insert((o.protocol, w.from), (o.protocol, o.inward.from));
        }
        true
    }

    /// Fold `inward`'s last counts, then remove its entries.
    fn uninstall(&mut self, x: &mut Shared, d: &mut Director, now: Instant, inward: Key<A>) {
        let Some(f) = self.flows.get(&inward).copied() else {
            return;
        };
        let i = read::<A>(x, (f.offload.protocol, f.offload.inward.from)).unwrap_or(f.inward);
        let o = match f.offload.outward {
            Some(w) => read::<A>(x, (f.offload.protocol, w.from)).unwrap_or(f.outward),
            None => f.outward,
        };
        // The timer is the state machine's now (the segment that closes went through it).
        A::fold(
            d,
            now,
            &f.offload,
            delta(i, f.inward),
            delta(o, f.outward),
            None,
        );
        self.remove_entries(x, inward);
    }

    fn remove_entries(&mut self, x: &mut Shared, inward: Key<A>) {
        let Some(f) = self.flows.remove(&inward) else {
            return;
        };
        let p = f.offload.protocol;
        let out = f.offload.outward.map(|w| (p, w.from));
        if let Some(k) = out {
            self.outward.remove(&k);
        }
        for k in std::iter::once((p, f.offload.inward.from)).chain(out) {
            if let Err(e) = A::remove(&mut x.xdp, k) {
                x.failed(&e);
            }
        }
    }
}

/// A flow's counters, None when it is gone from the map (or the lookup failed, logged).
fn read<A: Family>(x: &mut Shared, from: Key<A>) -> Option<FlowCounters> {
    match A::counters(&x.xdp, from) {
        Ok(c) => c,
        Err(e) => {
            x.failed(&e);
            None
        }
    }
}

/// The fast path's metrics, appended to `out` (zeros while it is off).
pub fn render_metrics(out: &mut String) {
    use std::fmt::Write as _;
    let frames = FRAMES.load(Ordering::Relaxed);
    let bytes = BYTES.load(Ordering::Relaxed);
    let partial = PARTIAL.load(Ordering::Relaxed);
    let _ = write!(
        out,
        "# HELP rvs_fast_path_enabled 1 while the XDP fast path is attached (--fast-path xdp).\n\
         # TYPE rvs_fast_path_enabled gauge\n\
         rvs_fast_path_enabled {}\n\
         # HELP rvs_fast_path_frames_total Frames the XDP fast path rewrote and sent without the userspace path.\n\
         # TYPE rvs_fast_path_frames_total counter\n\
         rvs_fast_path_frames_total {frames}\n\
         # HELP rvs_fast_path_bytes_total IP bytes of those frames.\n\
         # TYPE rvs_fast_path_bytes_total counter\n\
         rvs_fast_path_bytes_total {bytes}\n\
         # HELP rvs_fast_path_partial_csum_total Offloaded flows' frames passed to the userspace path because their checksum was partial (a local sender on veth).\n\
         # TYPE rvs_fast_path_partial_csum_total counter\n\
         rvs_fast_path_partial_csum_total {partial}\n\
         # HELP rvs_fast_path_flows Connections whose two directions are in the fast path's map.\n\
         # TYPE rvs_fast_path_flows gauge\n\
         rvs_fast_path_flows {}\n",
        ON.load(Ordering::Relaxed),
        FLOWS.load(Ordering::Relaxed),
    );
}

#[cfg(test)]
mod differential;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_takes_plain_ipv4_tcp_only() {
        let mut f = vec![0u8; 54];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 1, 0, 10]);
        f[30..34].copy_from_slice(&[10, 1, 0, 100]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[47] = ACK;
        assert_eq!(
            peek(&f),
            Some((
                Seg::V4(6, ([10, 1, 0, 10], 40000, [10, 1, 0, 100], 80)),
                ACK
            ))
        );
        let mut g = f.clone();
        g[14] = 0x46; // IP options
        assert_eq!(peek(&g), None);
        let mut g = f.clone();
        g[20] = 0x20; // more fragments
        assert_eq!(peek(&g), None);
        let mut g = f.clone();
        g[23] = 17;
        assert_eq!(
            peek(&g),
            Some((Seg::V4(17, ([10, 1, 0, 10], 40000, [10, 1, 0, 100], 80)), 0)),
            "UDP, no flags"
        );
        let mut g = f.clone();
        g[23] = 1;
        assert_eq!(peek(&g), None, "ICMP");
        assert_eq!(peek(&f[..53]), None);
        assert_eq!(parse_mode("xdp"), Ok(Mode::Xdp));
        assert!(parse_mode("on").is_err());
    }
}
