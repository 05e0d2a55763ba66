//! The neighbour table (IP → MAC), kept as the kernel keeps its own: entries are created only
//! for addresses the director resolves itself or for hosts that ask for one of its addresses,
//! they age through the NUD states, and the table has a bound per family with
//! least-recently-used eviction.
//!
//! Linux's model (include/net/neighbour.h, net/core/neighbour.c, net/ipv4/arp.c
//! `arp_process()`, net/ipv6/ndisc.c `ndisc_recv_ns()` / `ndisc_recv_na()`):
//!
//! * an entry is created by `neigh_event_ns()` for the sender of a request that targets one
//!   of the host's addresses, or by the host itself resolving a next hop (`INCOMPLETE`,
//!   `mcast_solicit` = 3 broadcasts `retrans_time` = 1 s apart, then `FAILED`);
//! * a reply makes it `REACHABLE` for `reachable_time`, a random value in
//!   ½..1½ × `base_reachable_time` (30 s, `neigh_rand_reach_time()`); then `STALE`;
//! * a `STALE` entry that is used goes `DELAY` (`delay_first_probe_time` = 5 s) then `PROBE`:
//!   `ucast_probes` = 3 unicast requests to the known MAC, 1 s apart; silence makes it
//!   `FAILED` (`neigh_timer_handler()`);
//! * `neigh_periodic_work()` removes entries unused for `gc_stale_time` (60 s);
//! * `gc_thresh3` (1024) bounds the table; `neigh_forced_gc()` frees room when it is full.
//!
//! rvs differs on purpose in one point: an unsolicited frame (gratuitous ARP, someone else's
//! request, an unsolicited NA) never switches an entry's MAC. The kernel lets any ARP
//! override an entry after `locktime` (1 s), which lets a forged ARP move a real server's
//! traffic. Here a different MAC makes the entry `PROBE` its known MAC; if the known host
//! answers, the entry keeps its MAC (counted in [`NeighCounters::spoof_refused`]); if it stays
//! silent for the probe time, the entry re-resolves by broadcast and the reply sets the MAC.
//!
//! Storage is fixed at construction: a slab of entries per family with an open-addressing
//! index (seeded hash, linear probing, backward-shift deletion) and intrusive LRU lists, so
//! nothing allocates on the packet path. Time is an argument; randomness comes from a seed.

use crate::director::net::PortId;
use crate::sched::Rng;
use crate::time::Instant;
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `base_reachable_time` (include/net/neighbour.h defaults, net/ipv4/arp.c `arp_tbl`).
pub const BASE_REACHABLE_TIME: Duration = Duration::from_secs(30);
/// `retrans_time`: between two requests of one resolution or probe.
pub const RETRANS_TIME: Duration = Duration::from_secs(1);
/// `delay_first_probe_time`: from the first use of a stale entry to its first probe.
pub const DELAY_FIRST_PROBE_TIME: Duration = Duration::from_secs(5);
/// `gc_stale_time`: an unused stale entry is removed after this long.
pub const GC_STALE_TIME: Duration = Duration::from_secs(60);
/// `mcast_solicit`: broadcast requests before a resolution fails.
pub const MCAST_SOLICIT: u8 = 3;
/// `ucast_probes`: unicast probes before a probed entry fails.
pub const UCAST_PROBES: u8 = 3;
/// `gc_thresh3`: the default bound per family.
pub const GC_THRESH3: usize = 1024;
/// How often the configured next hops (real servers, gateways) missing from the table are
/// resolved: a dead one costs `mcast_solicit` requests per interval.
pub const WARM_INTERVAL: Duration = Duration::from_secs(5);
/// The least interval between two aging passes over the table (the kernel's periodic work
/// runs every `base_reachable_time / 2`; the NUD timers here have a 100 ms resolution).
const SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// A neighbour entry's state (`NUD_*`, include/uapi/linux/neighbour.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NudState {
    /// Being resolved: requests broadcast, no MAC yet.
    Incomplete,
    /// Confirmed recently.
    Reachable,
    /// Not confirmed recently; still used for sending.
    Stale,
    /// Used while stale: probed when the delay is over.
    Delay,
    /// Being confirmed by unicast requests to the known MAC.
    Probe,
    /// Set by the operator or the daemon (`nud permanent`): never aged, never switched.
    Permanent,
}

impl NudState {
    /// The kernel's name (`ip neigh` prints these).
    pub fn name(self) -> &'static str {
        match self {
            NudState::Incomplete => "INCOMPLETE",
            NudState::Reachable => "REACHABLE",
            NudState::Stale => "STALE",
            NudState::Delay => "DELAY",
            NudState::Probe => "PROBE",
            NudState::Permanent => "PERMANENT",
        }
    }

    fn has_mac(self) -> bool {
        !matches!(self, NudState::Incomplete)
    }
}

/// What kind of frame told us about a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A request (ARP who-has / NS) from the neighbour for an address the director owns or
    /// has: creates the entry (`neigh_event_ns()`).
    RequestForUs,
    /// A reply (ARP reply / solicited NA) to one of our requests: sets the MAC of an entry
    /// being resolved or probed.
    Reply,
    /// Anything else (gratuitous ARP, others' requests, unsolicited NA): refreshes an entry
    /// with the same MAC only.
    Unsolicited,
}

/// What the caller must do after [`Neighbors::heard`] or during [`Neighbors::tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighAction {
    /// Nothing.
    None,
    /// The MAC of `ip` is now known (or changed): release frames parked for it and drop
    /// cached next hops.
    Resolved {
        /// The neighbour.
        ip: IpAddr,
        /// Its MAC.
        mac: [u8; 6],
    },
    /// Send a request for `ip` on `port`: broadcast (`unicast` None) or to a known MAC.
    Solicit {
        /// The port.
        port: PortId,
        /// The neighbour.
        ip: IpAddr,
        /// The destination MAC of a probe.
        unicast: Option<[u8; 6]>,
    },
    /// An entry that had a MAC lost it (failed or removed): drop cached next hops.
    Lost,
}

/// Neighbour-table counters: every refusal and eviction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighCounters {
    /// Entries created.
    pub created: u64,
    /// Unsolicited frames that created nothing (no entry for the sender) or were ignored
    /// (a reply nobody asked for, a second different MAC while a probe runs).
    pub unsolicited_ignored: u64,
    /// Entries probed because an unsolicited frame claimed another MAC for them.
    pub spoof_probes: u64,
    /// Claimed MAC changes refused: the known host answered the probe.
    pub spoof_refused: u64,
    /// Entries evicted (least recently used) to make room.
    pub evicted: u64,
    /// Entries not created because the table was full of entries that may not be evicted.
    pub table_full: u64,
    /// Resolutions and probes that got no answer.
    pub failed: u64,
    /// Unused stale entries removed (`gc_stale_time`).
    pub gc: u64,
}

impl NeighCounters {
    /// Every counter with its metric name.
    pub fn iter(&self) -> [(&'static str, u64); 8] {
        [
            ("created", self.created),
            ("unsolicited_ignored", self.unsolicited_ignored),
            ("spoof_probes", self.spoof_probes),
            ("spoof_refused", self.spoof_refused),
            ("evicted", self.evicted),
            ("table_full", self.table_full),
            ("failed", self.failed),
            ("gc", self.gc),
        ]
    }
}

/// Which LRU list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Created for a host that asked for our address: evicted first.
    Passive = 0,
    /// Resolved by the director itself or used as a real server's next hop: evicted only to
    /// make room for another such entry.
    Resolved = 1,
    /// Permanent: on no list, never evicted.
    Static = 2,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u128,
    mac: [u8; 6],
    port: PortId,
    state: NudState,
    class: Class,
    /// Requests sent in this resolution / probe.
    tries: u8,
    /// A different MAC was claimed: the probe decides.
    challenged: bool,
    /// The state's timer (reachable until, next retransmission, delay end).
    deadline: Instant,
    /// Last confirmation or state change.
    updated: Instant,
    /// Last use for sending.
    used: Instant,
    prev: u32,
    next: u32,
    live: bool,
}

impl Entry {
    /// Send the next request of a resolution or probe (`neigh_timer_handler()`'s
    /// `neigh_probe()`): the entry in `state` with `tries` requests sent, its timer
    /// `retrans_time` from now, the request broadcast or, with `unicast`, to its known MAC
    /// (`NUD_PROBE`).
    fn resolicit(
        &mut self,
        state: NudState,
        tries: u8,
        unicast: bool,
        now: Instant,
        ip: IpAddr,
        act: &mut impl FnMut(NeighAction),
    ) {
        self.state = state;
        self.tries = tries;
        self.deadline = now + RETRANS_TIME;
        act(NeighAction::Solicit {
            port: self.port,
            ip,
            unicast: unicast.then_some(self.mac),
        });
    }
}

const EMPTY: Entry = Entry {
    key: 0,
    mac: [0; 6],
    port: PortId(0),
    state: NudState::Stale,
    class: Class::Passive,
    tries: 0,
    challenged: false,
    deadline: Instant::ZERO,
    updated: Instant::ZERO,
    used: Instant::ZERO,
    prev: NIL,
    next: NIL,
    live: false,
};

/// One family's table: a slab of `cap` entries, an index of `2 × cap` rounded up to a power
/// of two, and two LRU lists (head = most recent).
#[derive(Debug)]
struct Table {
    v6: bool,
    entries: Vec<Entry>,
    index: Vec<u32>,
    mask: usize,
    free: u32,
    len: usize,
    heads: [u32; 2],
    tails: [u32; 2],
    seed: [u64; 2],
}

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Table {
    fn new(cap: usize, v6: bool, seed: u64) -> Table {
        let cap = cap.max(1);
        let slots = (cap * 2).next_power_of_two();
        let mut entries = vec![EMPTY; cap];
        for (i, e) in entries.iter_mut().enumerate() {
            e.next = if i + 1 < cap { i as u32 + 1 } else { NIL };
        }
        let mut r = Rng::new(seed);
        Table {
            v6,
            entries,
            index: vec![NIL; slots],
            mask: slots - 1,
            free: 0,
            len: 0,
            heads: [NIL; 2],
            tails: [NIL; 2],
            seed: [r.next_u64() | 1, r.next_u64() | 1],
        }
    }

    fn home(&self, key: u128) -> usize {
        let h = fold(
            (key as u64) ^ self.seed[0],
            ((key >> 64) as u64) ^ self.seed[1],
        );
        (h as usize) & self.mask
    }

    fn ip(&self, key: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(key))
        } else {
            IpAddr::V4(Ipv4Addr::from(key as u32))
        }
    }

    /// (index slot, entry) of a key.
    fn find(&self, key: u128) -> Option<(usize, u32)> {
        let mut s = self.home(key);
        loop {
            let e = self.index[s];
            if e == NIL {
                return None;
            }
            if self.entries[e as usize].key == key {
                return Some((s, e));
            }
            s = (s + 1) & self.mask;
        }
    }

    fn unlink(&mut self, i: u32) {
        let e = self.entries[i as usize];
        if e.class == Class::Static {
            return;
        }
        let c = e.class as usize;
        match e.prev {
            NIL => self.heads[c] = e.next,
            p => self.entries[p as usize].next = e.next,
        }
        match e.next {
            NIL => self.tails[c] = e.prev,
            n => self.entries[n as usize].prev = e.prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let class = self.entries[i as usize].class;
        if class == Class::Static {
            return;
        }
        let c = class as usize;
        let head = self.heads[c];
        let e = &mut self.entries[i as usize];
        e.prev = NIL;
        e.next = head;
        match head {
            NIL => self.tails[c] = i,
            h => self.entries[h as usize].prev = i,
        }
        self.heads[c] = i;
    }

    /// Most recently used now.
    fn touch(&mut self, i: u32) {
        let class = self.entries[i as usize].class;
        if class != Class::Static && self.heads[class as usize] != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn set_class(&mut self, i: u32, class: Class) {
        if self.entries[i as usize].class != class {
            self.unlink(i);
            self.entries[i as usize].class = class;
            self.push_front(i);
        }
    }

    /// Remove entry `i` (found at index slot `s`), backward-shifting the probe chain.
    fn remove_at(&mut self, mut s: usize, i: u32) {
        self.unlink(i);
        self.entries[i as usize] = Entry {
            next: self.free,
            ..EMPTY
        };
        self.free = i;
        self.len -= 1;
        self.index[s] = NIL;
        let mut t = (s + 1) & self.mask;
        while self.index[t] != NIL {
            let e = self.index[t];
            let h = self.home(self.entries[e as usize].key);
            // Move e back to the hole if its home is not cyclically within (s, t].
            let within = if s <= t {
                s < h && h <= t
            } else {
                s < h || h <= t
            };
            if !within {
                self.index[s] = e;
                self.index[t] = NIL;
                s = t;
            }
            t = (t + 1) & self.mask;
        }
    }

    fn remove(&mut self, i: u32) {
        if let Some((s, _)) = self.find(self.entries[i as usize].key) {
            self.remove_at(s, i);
        }
    }

    /// Insert a new key (absent); evicts by class when full (the bool: the victim had a
    /// MAC a cached next hop may hold). None when refused.
    fn insert(&mut self, key: u128, class: Class, c: &mut NeighCounters) -> Option<(u32, bool)> {
        let mut lost = false;
        if self.free == NIL {
            // neigh_forced_gc(): passive entries go first; a resolved entry only makes room
            // for another resolved (or permanent) one.
            let victim = match (self.tails[0], self.tails[1], class) {
                (t, _, _) if t != NIL => t,
                (_, t, Class::Resolved | Class::Static) if t != NIL => t,
                _ => {
                    c.table_full += 1;
                    return None;
                }
            };
            let v = self.entries[victim as usize];
            lost = v.class == Class::Resolved && v.state.has_mac();
            self.remove(victim);
            c.evicted += 1;
        }
        let i = self.free;
        self.free = self.entries[i as usize].next;
        self.entries[i as usize] = Entry {
            key,
            class,
            live: true,
            ..EMPTY
        };
        let mut s = self.home(key);
        while self.index[s] != NIL {
            s = (s + 1) & self.mask;
        }
        self.index[s] = i;
        self.len += 1;
        self.push_front(i);
        c.created += 1;
        Some((i, lost))
    }
}

fn key_of(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// A neighbour as listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// Link-layer address (zero while incomplete).
    pub mac: [u8; 6],
    /// The port it was heard or resolved on.
    pub port: PortId,
    /// Its NUD state.
    pub state: NudState,
    /// Last confirmation or state change.
    pub updated: Instant,
}

/// The neighbour table: one bounded table per family. See the module documentation.
#[derive(Debug)]
pub struct Neighbors {
    v4: Table,
    v6: Table,
    rng: Rng,
    counters: NeighCounters,
    /// The latest time any method was given (for the hop path, which carries none).
    clock: Instant,
    next_scan: Instant,
    /// When [`Self::warm_due`] next says yes.
    next_warm: Instant,
}

impl Neighbors {
    /// A table with room for `per_family` entries of each family, allocated now.
    pub fn new(per_family: usize, seed: u64) -> Neighbors {
        Neighbors {
            v4: Table::new(per_family, false, seed ^ 0x4e45_4947_4834),
            v6: Table::new(per_family, true, seed ^ 0x4e45_4947_4836),
            rng: Rng::new(seed ^ 0x6e75_6400),
            counters: NeighCounters::default(),
            clock: Instant::ZERO,
            next_scan: Instant::ZERO,
            next_warm: Instant::ZERO,
        }
    }

    fn table(&mut self, v6: bool) -> &mut Table {
        if v6 { &mut self.v6 } else { &mut self.v4 }
    }

    /// `neigh_rand_reach_time()`: ½..1½ × base_reachable_time.
    fn reachable_time(&mut self) -> Duration {
        let base = BASE_REACHABLE_TIME.as_millis() as u64;
        Duration::from_millis(base / 2 + u64::from(self.rng.next_u32()) % base)
    }

    /// Counters.
    pub fn counters(&self) -> &NeighCounters {
        &self.counters
    }

    /// Entries of a family (IPv4 when `v6` is false).
    pub fn len(&self, v6: bool) -> usize {
        if v6 { self.v6.len } else { self.v4.len }
    }

    /// Whether both tables are empty.
    pub fn is_empty(&self) -> bool {
        self.v4.len == 0 && self.v6.len == 0
    }

    /// The bound per family.
    pub fn capacity(&self) -> usize {
        self.v4.entries.len()
    }

    /// One entry.
    pub fn get(&self, ip: IpAddr) -> Option<Neighbor> {
        let (v6, key) = key_of(ip);
        let t = if v6 { &self.v6 } else { &self.v4 };
        let (_, i) = t.find(key)?;
        let e = &t.entries[i as usize];
        Some(Neighbor {
            mac: e.mac,
            port: e.port,
            state: e.state,
            updated: e.updated,
        })
    }

    /// The MAC to send to `ip` with, if known; a use of the entry (a stale one is probed
    /// after `delay_first_probe_time`, `neigh_event_send()`).
    pub fn lookup(&mut self, ip: IpAddr, now: Instant) -> Option<[u8; 6]> {
        self.clock = self.clock.max(now);
        self.use_entry(ip, None)
    }

    /// As [`Self::lookup`], for a real server's next hop: the entry is kept among the
    /// resolved ones (evicted last).
    pub fn lookup_hop(&mut self, ip: IpAddr) -> Option<[u8; 6]> {
        self.use_entry(ip, Some(Class::Resolved))
    }

    fn use_entry(&mut self, ip: IpAddr, class: Option<Class>) -> Option<[u8; 6]> {
        let now = self.clock;
        let (v6, key) = key_of(ip);
        let t = if v6 { &mut self.v6 } else { &mut self.v4 };
        let (_, i) = t.find(key)?;
        if !t.entries[i as usize].state.has_mac() {
            return None;
        }
        if let Some(c) = class
            && t.entries[i as usize].class == Class::Passive
        {
            t.set_class(i, c);
        }
        t.touch(i);
        let e = &mut t.entries[i as usize];
        e.used = now;
        if e.state == NudState::Stale {
            e.state = NudState::Delay;
            e.deadline = now + DELAY_FIRST_PROBE_TIME;
            self.next_scan = self.next_scan.min(now + DELAY_FIRST_PROBE_TIME);
        }
        Some(e.mac)
    }

    /// Set a permanent entry (the daemon's or an operator's; `ip neigh replace … nud
    /// permanent`). Returns whether the MAC is new or changed.
    pub fn set_permanent(&mut self, ip: IpAddr, mac: [u8; 6], port: PortId, now: Instant) -> bool {
        self.clock = self.clock.max(now);
        let (v6, key) = key_of(ip);
        let mut counters = self.counters;
        let t = if v6 { &mut self.v6 } else { &mut self.v4 };
        let (i, changed) = match t.find(key) {
            Some((_, i)) => {
                let e = t.entries[i as usize];
                t.set_class(i, Class::Static);
                (i, !e.state.has_mac() || e.mac != mac)
            }
            None => match t.insert(key, Class::Static, &mut counters) {
                Some((i, _)) => (i, true),
                None => {
                    self.counters = counters;
                    return false;
                }
            },
        };
        let e = &mut t.entries[i as usize];
        e.mac = mac;
        e.port = port;
        e.state = NudState::Permanent;
        e.updated = now;
        self.counters = counters;
        changed
    }

    /// The director needs `ip` resolved on `port` (a frame is parked for it): create an
    /// `INCOMPLETE` entry. Returns whether a broadcast request should go out now (a new
    /// resolution; not when one is already under way or the table refused the entry), and
    /// whether making room evicted an entry a cached next hop may hold.
    pub fn resolve(&mut self, ip: IpAddr, port: PortId, now: Instant) -> (bool, bool) {
        self.clock = self.clock.max(now);
        let (v6, key) = key_of(ip);
        let mut counters = self.counters;
        let t = if v6 { &mut self.v6 } else { &mut self.v4 };
        if t.find(key).is_some() {
            return (false, false);
        }
        let Some((i, lost)) = t.insert(key, Class::Resolved, &mut counters) else {
            self.counters = counters;
            return (false, false);
        };
        let e = &mut t.entries[i as usize];
        e.state = NudState::Incomplete;
        e.port = port;
        e.tries = 1;
        e.updated = now;
        e.used = now;
        e.deadline = now + RETRANS_TIME;
        self.counters = counters;
        self.next_scan = self.next_scan.min(now + RETRANS_TIME);
        (true, lost)
    }

    /// A frame said `ip` is at `mac` on `port`. See [`Heard`] for what each kind may do.
    pub fn heard(
        &mut self,
        ip: IpAddr,
        mac: [u8; 6],
        port: PortId,
        kind: Heard,
        now: Instant,
    ) -> NeighAction {
        self.clock = self.clock.max(now);
        let reach = self.reachable_time();
        let (v6, key) = key_of(ip);
        let mut counters = self.counters;
        let t = if v6 { &mut self.v6 } else { &mut self.v4 };
        let found = t.find(key).map(|(_, i)| i);
        let action = match (found, kind) {
            (None, Heard::RequestForUs) => {
                // neigh_event_ns(): a new entry, STALE (no reachability confirmed). No
                // frame waits for it and no cached hop holds it: nothing to release.
                match t.insert(key, Class::Passive, &mut counters) {
                    Some((i, lost)) => {
                        let e = &mut t.entries[i as usize];
                        e.mac = mac;
                        e.port = port;
                        e.state = NudState::Stale;
                        e.updated = now;
                        e.used = now;
                        if lost {
                            NeighAction::Lost
                        } else {
                            NeighAction::None
                        }
                    }
                    None => NeighAction::None,
                }
            }
            (None, _) => {
                counters.unsolicited_ignored += 1;
                NeighAction::None
            }
            (Some(i), kind) => {
                let e = t.entries[i as usize];
                let waiting = matches!(e.state, NudState::Incomplete | NudState::Probe);
                if e.state == NudState::Permanent {
                    if e.mac != mac {
                        counters.spoof_refused += 1;
                    }
                    NeighAction::None
                } else if kind != Heard::Unsolicited && e.state == NudState::Incomplete {
                    // The answer to our broadcast (or the host's own request for us, as
                    // neigh_event_ns() takes it): whoever answers first sets the MAC.
                    let e = &mut t.entries[i as usize];
                    e.mac = mac;
                    e.port = port;
                    e.tries = 0;
                    e.challenged = false;
                    e.updated = now;
                    if kind == Heard::Reply {
                        e.state = NudState::Reachable;
                        e.deadline = now + reach;
                    } else {
                        e.state = NudState::Stale;
                    }
                    t.touch(i);
                    NeighAction::Resolved { ip, mac }
                } else if e.state == NudState::Incomplete {
                    // Being resolved: only an answer sets the MAC.
                    counters.unsolicited_ignored += 1;
                    NeighAction::None
                } else if e.mac == mac {
                    // The known host. A reply confirms it (NUD_REACHABLE); so does any frame
                    // from it while another MAC's claim is being probed. Anything else from
                    // it only refreshes the entry.
                    let confirm = kind == Heard::Reply || (waiting && e.challenged);
                    let e = &mut t.entries[i as usize];
                    if confirm {
                        if e.challenged {
                            counters.spoof_refused += 1;
                        }
                        e.state = NudState::Reachable;
                        e.deadline = now + reach;
                        e.tries = 0;
                        e.challenged = false;
                    }
                    e.updated = now;
                    t.touch(i);
                    NeighAction::None
                } else if e.state == NudState::Probe || e.challenged {
                    // A probe is already deciding between the known MAC and another one.
                    counters.unsolicited_ignored += 1;
                    NeighAction::None
                } else {
                    // Another MAC for a known neighbour: never switched on hearsay; ask the
                    // known MAC (NUD_PROBE) and let its silence decide.
                    counters.spoof_probes += 1;
                    let e = &mut t.entries[i as usize];
                    e.state = NudState::Probe;
                    e.challenged = true;
                    e.tries = 1;
                    e.deadline = now + RETRANS_TIME;
                    self.next_scan = self.next_scan.min(now + RETRANS_TIME);
                    NeighAction::Solicit {
                        port: e.port,
                        ip,
                        unicast: Some(e.mac),
                    }
                }
            }
        };
        self.counters = counters;
        action
    }

    /// Whether it is time (every [`WARM_INTERVAL`]) to resolve the configured next hops the
    /// table does not hold yet.
    pub fn warm_due(&mut self, now: Instant) -> bool {
        if now < self.next_warm {
            return false;
        }
        self.next_warm = now + WARM_INTERVAL;
        true
    }

    /// When [`Self::tick`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_empty() {
            None
        } else {
            Some(self.next_scan)
        }
    }

    /// Run the NUD timers (`neigh_timer_handler()`, `neigh_periodic_work()`): `needed` says
    /// whether an address is a next hop the configuration uses (a real server's or a
    /// route's), whose entry is kept confirmed; `act` is given the requests to send and the
    /// entries lost. At most once per 100 ms.
    pub fn tick(
        &mut self,
        now: Instant,
        mut needed: impl FnMut(IpAddr) -> bool,
        mut act: impl FnMut(NeighAction),
    ) {
        self.clock = self.clock.max(now);
        if now < self.next_scan {
            return;
        }
        let mut next = now + GC_STALE_TIME;
        for v6 in [false, true] {
            for i in 0..self.table(v6).entries.len() as u32 {
                let mut counters = self.counters;
                let t = if v6 { &mut self.v6 } else { &mut self.v4 };
                let e = t.entries[i as usize];
                if !e.live || e.state == NudState::Permanent {
                    continue;
                }
                let ip = t.ip(e.key);
                let due = now >= e.deadline;
                let en = &mut t.entries[i as usize];
                match e.state {
                    NudState::Incomplete if due => {
                        if e.tries < MCAST_SOLICIT {
                            en.resolicit(
                                NudState::Incomplete,
                                e.tries + 1,
                                false,
                                now,
                                ip,
                                &mut act,
                            );
                        } else {
                            counters.failed += 1;
                            t.remove(i);
                        }
                    }
                    NudState::Reachable if due => {
                        if e.used > e.updated {
                            // Used while reachable: confirm it before long (NUD_DELAY).
                            en.state = NudState::Delay;
                            en.deadline = now + DELAY_FIRST_PROBE_TIME;
                        } else if e.class == Class::Resolved && needed(ip) {
                            en.resolicit(NudState::Probe, 1, true, now, ip, &mut act);
                        } else {
                            en.state = NudState::Stale;
                            en.updated = now;
                            en.deadline = now + GC_STALE_TIME;
                        }
                    }
                    NudState::Delay if due => {
                        en.resolicit(NudState::Probe, 1, true, now, ip, &mut act);
                    }
                    NudState::Probe if due => {
                        if e.tries < UCAST_PROBES {
                            en.resolicit(NudState::Probe, e.tries + 1, true, now, ip, &mut act);
                        } else {
                            // The known MAC is silent: resolve afresh by broadcast (the
                            // kernel's FAILED, then INCOMPLETE on the next use).
                            counters.failed += 1;
                            en.mac = [0; 6];
                            en.challenged = false;
                            en.updated = now;
                            act(NeighAction::Lost);
                            en.resolicit(NudState::Incomplete, 1, false, now, ip, &mut act);
                            if en.class == Class::Passive {
                                t.set_class(i, Class::Resolved);
                            }
                        }
                    }
                    NudState::Stale => {
                        // Only entries the director resolved or uses as a next hop can be
                        // needed (the others are not asked, which keeps a scan cheap).
                        if e.class == Class::Resolved && needed(ip) {
                            en.state = NudState::Delay;
                            en.deadline = now;
                        } else if now.saturating_since(e.used.max(e.updated)) >= GC_STALE_TIME {
                            counters.gc += 1;
                            let had_hop = e.class == Class::Resolved;
                            t.remove(i);
                            if had_hop {
                                act(NeighAction::Lost);
                            }
                        } else {
                            en.deadline = e.used.max(e.updated) + GC_STALE_TIME;
                        }
                    }
                    _ => {}
                }
                let t = if v6 { &mut self.v6 } else { &mut self.v4 };
                let e = &t.entries[i as usize];
                if e.live && e.state != NudState::Permanent {
                    next = next.min(e.deadline);
                }
                self.counters = counters;
            }
        }
        self.next_scan = next.max(now + SCAN_INTERVAL);
    }

    /// Every entry (for listings).
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Neighbor)> + '_ {
        [&self.v4, &self.v6].into_iter().flat_map(|t| {
            t.entries.iter().filter(|e| e.live).map(|e| {
                (
                    t.ip(e.key),
                    Neighbor {
                        mac: e.mac,
                        port: e.port,
                        state: e.state,
                        updated: e.updated,
                    },
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const P: PortId = PortId(1);

    /// Run the timers at `now`, returning what they asked for.
    fn tick(n: &mut Neighbors, now: Instant, needed: &[IpAddr]) -> Vec<NeighAction> {
        let mut out = Vec::new();
        n.tick(now, |a| needed.contains(&a), |a| out.push(a));
        out
    }

    fn state(n: &Neighbors, a: &str) -> Option<NudState> {
        n.get(ip(a)).map(|e| e.state)
    }

    #[test]
    fn unsolicited_frames_create_nothing_and_requests_for_us_do() {
        let mut n = Neighbors::new(8, 1);
        for kind in [Heard::Unsolicited, Heard::Reply] {
            assert_eq!(n.heard(ip("10.0.0.5"), A, P, kind, t(0)), NeighAction::None);
        }
        assert!(n.is_empty());
        assert_eq!(n.counters().unsolicited_ignored, 2);
        n.heard(ip("10.0.0.5"), A, P, Heard::RequestForUs, t(0));
        assert_eq!(state(&n, "10.0.0.5"), Some(NudState::Stale));
        assert_eq!(n.lookup(ip("10.0.0.5"), t(1)), Some(A));
        assert_eq!(n.counters().created, 1);
        // The same for IPv6, in its own table.
        n.heard(ip("2001:db8::5"), A, P, Heard::Unsolicited, t(0));
        assert_eq!(n.len(true), 0);
        n.heard(ip("2001:db8::5"), A, P, Heard::RequestForUs, t(0));
        assert_eq!((n.len(false), n.len(true)), (1, 1));
    }

    #[test]
    fn resolution_reply_sets_the_mac_and_silence_fails_after_three_requests() {
        let mut n = Neighbors::new(8, 1);
        assert!(n.resolve(ip("10.0.0.7"), P, t(0)).0);
        assert!(
            !n.resolve(ip("10.0.0.7"), P, t(10)).0,
            "one resolution at a time"
        );
        assert_eq!(n.lookup(ip("10.0.0.7"), t(10)), None);
        // Retransmissions 1 s apart (retrans_time), three in all (mcast_solicit).
        let bcast = NeighAction::Solicit {
            port: P,
            ip: ip("10.0.0.7"),
            unicast: None,
        };
        assert_eq!(tick(&mut n, t(1000), &[]), vec![bcast]);
        assert_eq!(tick(&mut n, t(2000), &[]), vec![bcast]);
        assert_eq!(tick(&mut n, t(3000), &[]), vec![]);
        assert_eq!(state(&n, "10.0.0.7"), None);
        assert_eq!(n.counters().failed, 1);
        // A reply to a fresh resolution sets the MAC: REACHABLE.
        assert!(n.resolve(ip("10.0.0.7"), P, t(4000)).0);
        assert_eq!(
            n.heard(ip("10.0.0.7"), B, P, Heard::Reply, t(4100)),
            NeighAction::Resolved {
                ip: ip("10.0.0.7"),
                mac: B
            }
        );
        assert_eq!(state(&n, "10.0.0.7"), Some(NudState::Reachable));
    }

    #[test]
    fn aging_goes_reachable_stale_delay_probe_and_gc() {
        let mut n = Neighbors::new(8, 7);
        n.resolve(ip("10.0.0.1"), P, t(0));
        n.heard(ip("10.0.0.1"), A, P, Heard::Reply, t(0));
        // reachable_time is random in 15..45 s (neigh_rand_reach_time()).
        assert!(tick(&mut n, t(14_900), &[]).is_empty());
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Reachable));
        tick(&mut n, t(45_000), &[]);
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Stale));
        // A stale entry is still used to send; its use starts the delay, then the probe.
        assert_eq!(n.lookup(ip("10.0.0.1"), t(46_000)), Some(A));
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Delay));
        assert!(tick(&mut n, t(50_000), &[]).is_empty());
        let probe = NeighAction::Solicit {
            port: P,
            ip: ip("10.0.0.1"),
            unicast: Some(A),
        };
        assert_eq!(tick(&mut n, t(51_000), &[]), vec![probe]);
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Probe));
        // The answer makes it reachable again, with its MAC.
        n.heard(ip("10.0.0.1"), A, P, Heard::Reply, t(51_100));
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Reachable));
        // Unused: stale at most 45 s later, removed gc_stale_time (60 s) after that.
        tick(&mut n, t(97_000), &[]);
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Stale));
        tick(&mut n, t(150_000), &[]);
        assert_eq!(state(&n, "10.0.0.1"), Some(NudState::Stale));
        tick(&mut n, t(157_100), &[]);
        assert_eq!(state(&n, "10.0.0.1"), None);
        assert_eq!(n.counters().gc, 1);
        assert_eq!(n.poll_timeout(), None, "an empty table has no timers");
    }

    #[test]
    fn a_needed_next_hop_is_probed_when_its_reachable_time_ends_and_failed_when_silent() {
        let mut n = Neighbors::new(8, 3);
        let rs = ip("10.2.0.11");
        n.resolve(rs, P, t(0));
        n.heard(rs, A, P, Heard::Reply, t(0));
        let probe = NeighAction::Solicit {
            port: P,
            ip: rs,
            unicast: Some(A),
        };
        assert_eq!(tick(&mut n, t(45_000), &[rs]), vec![probe]);
        assert_eq!(n.lookup(rs, t(45_000)), Some(A), "usable while probed");
        assert_eq!(tick(&mut n, t(46_000), &[rs]), vec![probe]);
        assert_eq!(tick(&mut n, t(47_000), &[rs]), vec![probe]);
        // Three unicast probes unanswered (ucast_probes): resolve afresh by broadcast.
        assert_eq!(
            tick(&mut n, t(48_000), &[rs]),
            vec![
                NeighAction::Lost,
                NeighAction::Solicit {
                    port: P,
                    ip: rs,
                    unicast: None
                }
            ]
        );
        assert_eq!(n.lookup(rs, t(48_000)), None);
        assert_eq!(n.counters().failed, 1);
    }

    #[test]
    fn another_mac_probes_the_known_one_and_is_refused_when_it_answers() {
        let mut n = Neighbors::new(8, 1);
        let rs = ip("10.2.0.11");
        n.resolve(rs, P, t(0));
        n.heard(rs, A, P, Heard::Reply, t(0));
        for kind in [Heard::Unsolicited, Heard::RequestForUs, Heard::Reply] {
            let mut n2 = Neighbors::new(8, 1);
            n2.resolve(rs, P, t(0));
            n2.heard(rs, A, P, Heard::Reply, t(0));
            assert_eq!(
                n2.heard(rs, B, P, kind, t(100)),
                NeighAction::Solicit {
                    port: P,
                    ip: rs,
                    unicast: Some(A)
                },
                "{kind:?}"
            );
        }
        n.heard(rs, B, P, Heard::Unsolicited, t(100));
        assert_eq!(state(&n, "10.2.0.11"), Some(NudState::Probe));
        assert_eq!(n.lookup(rs, t(200)), Some(A), "the MAC is not switched");
        // More claims while the probe runs change nothing.
        assert_eq!(n.heard(rs, B, P, Heard::Reply, t(300)), NeighAction::None);
        // The known host answers: the claim is refused.
        assert_eq!(n.heard(rs, A, P, Heard::Reply, t(500)), NeighAction::None);
        assert_eq!(n.get(rs).unwrap().mac, A);
        assert_eq!(state(&n, "10.2.0.11"), Some(NudState::Reachable));
        let c = n.counters();
        assert_eq!((c.spoof_probes, c.spoof_refused), (1, 1));
        assert_eq!(c.unsolicited_ignored, 1);
    }

    #[test]
    fn another_mac_takes_over_only_after_the_known_one_stays_silent() {
        let mut n = Neighbors::new(8, 1);
        let rs = ip("10.2.0.11");
        n.resolve(rs, P, t(0));
        n.heard(rs, A, P, Heard::Reply, t(0));
        n.heard(rs, B, P, Heard::Unsolicited, t(1000));
        for s in 2..=3 {
            tick(&mut n, t(s * 1000), &[]);
            assert_eq!(n.lookup(rs, t(s * 1000)), Some(A));
        }
        // Silent for the probe time: the entry re-resolves by broadcast...
        let acts = tick(&mut n, t(4000), &[]);
        assert_eq!(acts[0], NeighAction::Lost);
        assert_eq!(
            acts[1],
            NeighAction::Solicit {
                port: P,
                ip: rs,
                unicast: None
            }
        );
        // ...and an unsolicited frame still does not set it; the reply does.
        n.heard(rs, B, P, Heard::Unsolicited, t(4100));
        assert_eq!(n.lookup(rs, t(4100)), None);
        n.heard(rs, B, P, Heard::Reply, t(4200));
        assert_eq!(n.lookup(rs, t(4200)), Some(B));
        assert_eq!(n.counters().spoof_refused, 0);
    }

    #[test]
    fn same_mac_refreshes_and_permanent_entries_never_move() {
        let mut n = Neighbors::new(8, 1);
        let c = ip("10.0.0.9");
        n.heard(c, A, P, Heard::RequestForUs, t(0));
        // An unsolicited frame with the same MAC refreshes it: no gc at 60 s from creation.
        n.heard(c, A, P, Heard::Unsolicited, t(30_000));
        tick(&mut n, t(61_000), &[]);
        assert_eq!(state(&n, "10.0.0.9"), Some(NudState::Stale));
        tick(&mut n, t(90_100), &[]);
        assert_eq!(state(&n, "10.0.0.9"), None);
        let g = ip("10.0.0.1");
        assert!(n.set_permanent(g, A, P, t(0)));
        assert_eq!(n.heard(g, B, P, Heard::Reply, t(1)), NeighAction::None);
        assert_eq!(
            n.heard(g, B, P, Heard::Unsolicited, t(1)),
            NeighAction::None
        );
        tick(&mut n, t(1_000_000), &[]);
        assert_eq!(
            n.get(g).map(|e| (e.mac, e.state)),
            Some((A, NudState::Permanent))
        );
        assert_eq!(n.counters().spoof_refused, 2);
    }

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn the_bound_evicts_the_least_recently_used_passive_entry_first() {
        let mut n = Neighbors::new(4, 9);
        // Two resolved next hops, two passive entries: full.
        for i in [1, 2] {
            n.resolve(v4(i), P, t(0));
            n.heard(v4(i), A, P, Heard::Reply, t(0));
        }
        n.heard(v4(10), A, P, Heard::RequestForUs, t(1));
        n.heard(v4(11), A, P, Heard::RequestForUs, t(2));
        assert_eq!(n.len(false), 4);
        // 10 was used since 11 came: 11 is the least recently used passive entry.
        n.lookup(v4(10), t(3));
        n.heard(v4(12), A, P, Heard::RequestForUs, t(4));
        assert!(n.get(v4(11)).is_none() && n.get(v4(10)).is_some());
        // A flood of passive entries never evicts the resolved ones.
        for i in 100..10_100 {
            n.heard(v4(i), B, P, Heard::RequestForUs, t(5));
        }
        assert_eq!(n.len(false), 4);
        assert_eq!(n.lookup(v4(1), t(6)), Some(A));
        assert_eq!(n.lookup(v4(2), t(6)), Some(A));
        assert_eq!(n.counters().evicted, 10_001);
        // A new resolution evicts a passive entry; with none left, the LRU resolved one.
        assert_eq!(n.resolve(v4(3), P, t(7)), (true, false));
        assert!(n.resolve(v4(4), P, t(7)).0);
        assert_eq!(n.len(false), 4);
        assert_eq!(
            n.resolve(v4(5), P, t(8)),
            (true, true),
            "a next hop with a MAC went"
        );
        assert!(n.get(v4(1)).is_none(), "least recently used resolved entry");
        // Passive entries cannot push resolved ones out: refused and counted.
        n.heard(v4(20_000), B, P, Heard::RequestForUs, t(9));
        assert!(n.get(v4(20_000)).is_none());
        assert_eq!(n.counters().table_full, 1);
        // Permanent entries are never evicted: a table full of them refuses everything.
        let mut p = Neighbors::new(2, 1);
        p.set_permanent(v4(1), A, P, t(0));
        p.set_permanent(v4(2), A, P, t(0));
        assert!(!p.resolve(v4(3), P, t(0)).0);
        assert_eq!(p.counters().table_full, 1);
    }

    #[test]
    fn removals_keep_every_other_key_findable() {
        // Backward-shift deletion under heavy collisions (a tiny index).
        let mut n = Neighbors::new(64, 5);
        for i in 0..64 {
            n.heard(v4(i), A, P, Heard::RequestForUs, t(0));
        }
        for i in (0..64).step_by(3) {
            let (_, key) = key_of(v4(i));
            let (s, e) = n.v4.find(key).unwrap();
            n.v4.remove_at(s, e);
        }
        for i in 0..64 {
            assert_eq!(n.get(v4(i)).is_some(), i % 3 != 0, "{i}");
        }
        assert_eq!(n.len(false), 64 - 22);
        assert_eq!(n.iter().count(), 42);
    }
}
