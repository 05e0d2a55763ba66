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

use rvs_core::director::offload::{Offload, OffloadCount, OffloadWay, Tuple4};
use rvs_core::director::{Director, PortId};
use rvs_core::time::Instant;
use rvs_sys::xdp::{FlowCounters, FlowKey, Rewrite};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// `--fast-path`: off (the default) or XDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every frame through the AF_PACKET rings.
    #[default]
    Off,
    /// Established NAT, FullNAT and direct-routing IPv4 TCP flows through the XDP program.
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

/// Connections the map holds (two entries each, NAT and FullNAT).
const MAX_CONNS: usize = rvs_sys::xdp::MAX_FLOWS / 2;

/// Connection-table slots the takeover walk looks at per housekeeping round.
const SWEEP_SLOTS: usize = 4096;

/// How often, at most, the counters are folded while traffic keeps the worker busy (and
/// before every control answer).
const FOLD_EVERY_NS: u64 = 250_000_000;

/// One offloaded connection: its rewrite and the counters already folded.
#[derive(Debug, Clone, Copy)]
struct Installed {
    offload: Offload,
    inward: FlowCounters,
    outward: FlowCounters,
}

/// The attached program and the connections written to its map.
#[derive(Debug)]
pub struct FastPath {
    xdp: rvs_sys::xdp::FastPath,
    /// Interface index per port.
    ifindex: Vec<u32>,
    /// By the inward key (client → VIP).
    flows: HashMap<Tuple4, Installed>,
    /// Outward key → inward key.
    outward: HashMap<Tuple4, Tuple4>,
    /// Established connections not offloaded yet: the client's segments seen so far.
    pending: HashMap<Tuple4, u16>,
    folded: Instant,
    /// A map error was logged (once until the next success).
    failing: bool,
    /// Addresses the engine owned at the last look: more means a takeover (or a reload
    /// that added one), which starts a [`FastPath::sweep`].
    owned: usize,
    /// The takeover walk's next slot, while one runs.
    sweep: Option<u32>,
    /// Connections the walk installed so far.
    swept: usize,
    /// The walk's candidates (allocated at start, [`SWEEP_SLOTS`] at most).
    candidates: Vec<Tuple4>,
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

/// The IPv4 TCP segment of a frame with its flags, before the engine rewrites it: only
/// plain ones (no IP options, not a fragment) can be the fast path's.
pub fn peek(frame: &[u8]) -> Option<(Tuple4, u8)> {
    let h = frame.get(..54)?;
    if h[12..14] != [0x08, 0x00] || h[14] != 0x45 || h[23] != 6 || h[20] & 0x3f != 0 || h[21] != 0 {
        return None;
    }
    let a = |i: usize| [h[i], h[i + 1], h[i + 2], h[i + 3]];
    let p = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    Some(((a(26), p(34), a(30), p(36)), h[47]))
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn key((s, sp, d, dp): Tuple4) -> FlowKey {
    FlowKey::new(s, sp, d, dp)
}

impl FastPath {
    /// The daemon's side of a loaded program; `ifindex[p]` is port `p`'s interface.
    fn new(xdp: rvs_sys::xdp::FastPath, ifindex: Vec<u32>) -> FastPath {
        FastPath {
            xdp,
            ifindex,
            flows: HashMap::with_capacity(MAX_CONNS),
            outward: HashMap::with_capacity(MAX_CONNS),
            pending: HashMap::with_capacity(MAX_CONNS),
            folded: Instant(0),
            failing: false,
            owned: 0,
            sweep: None,
            swept: 0,
            candidates: Vec::with_capacity(SWEEP_SLOTS),
        }
    }

    /// The engine forwarded segment `seg` with TCP flags `flags` (the worker's hook).
    pub fn forwarded(&mut self, d: &mut Director, now: Instant, seg: Tuple4, flags: u8) {
        let inward = self.outward.get(&seg).copied().unwrap_or(seg);
        let known = self.flows.contains_key(&inward);
        if flags & (SYN | FIN | RST) != 0 {
            if known {
                self.uninstall(d, now, inward);
            } else {
                self.pending.remove(&seg);
            }
        } else if flags & ACK != 0
            && !known
            && self.flows.len() < MAX_CONNS
            && let Some(o) = d.offload_v4(now, seg)
        {
            // Counted on the client's segments only (their key is the one the engine
            // names first).
            if o.inward.from != seg {
                return;
            }
            let room = self.pending.len() < MAX_CONNS;
            let n = match self.pending.get_mut(&seg) {
                Some(n) => {
                    *n += 1;
                    *n
                }
                None if room => {
                    self.pending.insert(seg, 1);
                    1
                }
                None => return,
            };
            // A connection a master synced here carried its first segments there: after a
            // takeover it goes to the map with its first segment here.
            if n >= OFFLOAD_AFTER || o.synced {
                self.pending.remove(&seg);
                let _ = self.install(o);
            }
        }
    }

    /// Fold the counters (at most every 250 ms unless `force`): see the module
    /// documentation. Also publishes the program's totals for the metrics.
    pub fn fold(&mut self, d: &mut Director, now: Instant, force: bool) {
        self.sweep(d, now);
        if !force && now.0.saturating_sub(self.folded.0) < FOLD_EVERY_NS {
            return;
        }
        self.folded = now;
        let mono = rvs_sys::xdp::monotonic_ns();
        let keys: Vec<Tuple4> = self.flows.keys().copied().collect();
        for k in keys {
            let Some(f) = self.flows.get(&k).copied() else {
                continue;
            };
            let i = self.read(&f.offload.inward.from);
            let o = match f.offload.outward {
                Some(w) => self.read(&w.from),
                None => Some(FlowCounters::default()),
            };
            let (Some(i), Some(o)) = (i, o) else {
                self.uninstall(d, now, k);
                continue;
            };
            let seen = i.last_seen_ns.max(o.last_seen_ns);
            let last_seen =
                (seen > 0).then(|| Instant(now.0.saturating_sub(mono.saturating_sub(seen))));
            let delta = |c: FlowCounters, was: FlowCounters| OffloadCount {
                packets: c.packets.saturating_sub(was.packets),
                bytes: c.bytes.saturating_sub(was.bytes),
            };
            let now_offload = d.offload_fold(
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
                    self.remove_entries(k);
                    let _ = self.install(n);
                }
                None => self.remove_entries(k),
            }
        }
        // Connections that ended before they were offloaded (a server's FIN, expiry).
        self.pending.retain(|k, _| d.offload_v4(now, *k).is_some());
        FLOWS.store(self.flows.len() as u64, Ordering::Relaxed);
        match self.xdp.totals() {
            Ok(t) => {
                FRAMES.store(t.frames, Ordering::Relaxed);
                BYTES.store(t.bytes, Ordering::Relaxed);
                PARTIAL.store(t.partial_csum, Ordering::Relaxed);
            }
            Err(e) => self.failed(&e),
        }
    }

    /// After a takeover (the engine owns more addresses than at the last look): walk the
    /// connection table in pieces of [`SWEEP_SLOTS`] slots, one per housekeeping round,
    /// and install the connections the old master synced here that are ESTABLISHED and
    /// offloadable now (both next hops' MACs known). The others go to the map with their
    /// first client segment here ([`FastPath::forwarded`]).
    fn sweep(&mut self, d: &mut Director, now: Instant) {
        let owned = d.net().owned.len();
        if owned > self.owned {
            self.sweep = Some(0);
        }
        self.owned = owned;
        let Some(from) = self.sweep else {
            return;
        };
        let mut found = std::mem::take(&mut self.candidates);
        found.clear();
        self.sweep = d.synced_established_v4(from, SWEEP_SLOTS, |k| found.push(k));
        for k in found.drain(..) {
            if self.flows.len() >= MAX_CONNS {
                break;
            }
            if self.flows.contains_key(&k) {
                continue;
            }
            if let Some(o) = d.offload_v4(now, k) {
                self.pending.remove(&k);
                if self.install(o) {
                    self.swept += 1;
                }
            }
        }
        self.candidates = found;
        if self.sweep.is_none() && self.swept > 0 {
            tracing::info!(
                installed = self.swept,
                "XDP fast path took over the connections the old master synced (installed after the takeover)"
            );
            self.swept = 0;
        }
    }

    fn read(&mut self, from: &Tuple4) -> Option<FlowCounters> {
        match self.xdp.counters(&key(*from)) {
            Ok(c) => c,
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    fn rewrite(&self, w: &OffloadWay) -> Option<Rewrite> {
        let (saddr, sport, daddr, dport) = w.to;
        Some(Rewrite {
            saddr,
            sport,
            daddr,
            dport,
            dmac: w.dmac,
            smac: w.smac,
            ifindex: *self.ifindex.get(usize::from(w.port.0))?,
        })
    }

    /// Write both entries of `o`; whether they are in the map.
    fn install(&mut self, o: Offload) -> bool {
        let Some(ri) = self.rewrite(&o.inward) else {
            return false;
        };
        // The reply's entry first: the client's segments reach the program only once both
        // ways are in place.
        if let Some(w) = o.outward {
            let done = match self.rewrite(&w) {
                Some(ro) => self.xdp.insert(&key(w.from), &ro),
                None => return false,
            };
            if let Err(e) = done {
                self.failed(&e);
                return false;
            }
        }
        if let Err(e) = self.xdp.insert(&key(o.inward.from), &ri) {
            if let Some(w) = o.outward {
                let _ = self.xdp.remove(&key(w.from));
            }
            self.failed(&e);
            return false;
        }
        self.failing = false;
        self.flows.insert(
            o.inward.from,
            Installed {
                offload: o,
                inward: FlowCounters::default(),
                outward: FlowCounters::default(),
            },
        );
        if let Some(w) = o.outward {
            self.outward.insert(w.from, o.inward.from);
        }
        true
    }

    /// Fold `inward`'s last counts, then remove its entries.
    fn uninstall(&mut self, d: &mut Director, now: Instant, inward: Tuple4) {
        let Some(f) = self.flows.get(&inward).copied() else {
            return;
        };
        let i = self.read(&f.offload.inward.from).unwrap_or(f.inward);
        let o = match f.offload.outward {
            Some(w) => self.read(&w.from).unwrap_or(f.outward),
            None => f.outward,
        };
        let delta = |c: FlowCounters, was: FlowCounters| OffloadCount {
            packets: c.packets.saturating_sub(was.packets),
            bytes: c.bytes.saturating_sub(was.bytes),
        };
        // The timer is the state machine's now (the segment that closes went through it).
        d.offload_fold(
            now,
            &f.offload,
            delta(i, f.inward),
            delta(o, f.outward),
            None,
        );
        self.remove_entries(inward);
    }

    fn remove_entries(&mut self, inward: Tuple4) {
        let Some(f) = self.flows.remove(&inward) else {
            return;
        };
        let out = f.offload.outward.map(|w| w.from);
        if let Some(k) = out {
            self.outward.remove(&k);
        }
        for k in std::iter::once(f.offload.inward.from).chain(out) {
            if let Err(e) = self.xdp.remove(&key(k)) {
                self.failed(&e);
            }
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        if !self.failing {
            tracing::warn!("XDP fast path: {e}; the flow stays on the userspace path");
            self.failing = true;
        }
    }

    /// The port an interface index belongs to (tests and diagnostics).
    pub fn port_of(&self, ifindex: u32) -> Option<PortId> {
        let i = self.ifindex.iter().position(|x| *x == ifindex)?;
        Some(PortId(i as u8))
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
            Some((([10, 1, 0, 10], 40000, [10, 1, 0, 100], 80), ACK))
        );
        let mut g = f.clone();
        g[14] = 0x46; // IP options
        assert_eq!(peek(&g), None);
        let mut g = f.clone();
        g[20] = 0x20; // more fragments
        assert_eq!(peek(&g), None);
        let mut g = f.clone();
        g[23] = 17;
        assert_eq!(peek(&g), None);
        assert_eq!(peek(&f[..53]), None);
        assert_eq!(parse_mode("xdp"), Ok(Mode::Xdp));
        assert!(parse_mode("on").is_err());
    }
}
