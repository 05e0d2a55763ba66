//! Locality-based least connection, without (lblc) and with (lblcr) replication: a cache
//! from packet destination address to real server (lblc) or server set (lblcr), with the
//! kernel's periodic garbage collection.
//!
//! The cache is the kernel's 1024-bucket table (`hash_32(addr_fold, 10)`); each bucket is a
//! small vector that grows, amortised, when a new destination address is first seen (where
//! the kernel calls `kmalloc(GFP_ATOMIC)`), and keeps its capacity after entries expire.
//! Like the kernel, the number of entries is bounded only by garbage collection. Cached
//! servers are named by (address, port), so entries survive index shifts; a server no
//! longer in the list counts as the kernel's unavailable (trashed) dest.

use super::{DestKey, addr_fold, dest_key, find_dest, hash_32, least};
use crate::dest::Dest;
use crate::time::Instant;
use core::time::Duration;
use std::net::IpAddr;

/// `IP_VS_LBLC_TAB_BITS` / `IP_VS_LBLCR_TAB_BITS` (default 10).
const TAB_BITS: u32 = 10;
/// Buckets in the cache.
const TAB_SIZE: usize = 1 << TAB_BITS;
/// `CHECK_EXPIRE_INTERVAL`: the garbage-collection timer period.
pub(crate) const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT`: idle time after which an entry may go when the table is over full.
pub(crate) const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `DEFAULT_EXPIRATION`: the default `lblc_expiration` / `lblcr_expiration` sysctl.
pub(crate) const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
/// `COUNT_FOR_FULL_EXPIRATION`: timer runs between full expiration checks.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// `tbl->max_size = IP_VS_LBLC_TAB_SIZE * 16`.
const MAX_SIZE: usize = TAB_SIZE * 16;

/// `ip_vs_lblc.c: ip_vs_lblc_hashkey()`: `hash_32(ntohl(addr_fold), 10)`.
fn hashkey(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), TAB_BITS) as usize
}

/// `ip_vs_lblc.c: is_overloaded()` (and lblcr's): the server has more active connections
/// than its weight and some server of the service has fewer than half its weight.
fn lblc_overloaded(d: &Dest, dests: &[Dest]) -> bool {
    d.active_conns > d.weight
        && dests
            .iter()
            .any(|o| u64::from(o.active_conns) * 2 < u64::from(o.weight))
}

/// One cache entry (`struct ip_vs_lblc_entry` / `struct ip_vs_lblcr_entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry<V> {
    addr: IpAddr,
    lastuse: Instant,
    value: V,
}

/// The cache and its garbage-collection state (`struct ip_vs_lblc_table`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table<V> {
    buckets: Vec<Vec<Entry<V>>>,
    entries: usize,
    rover: usize,
    counter: u32,
    /// When the periodic timer next fires; armed by the first call that sees a time.
    next_check: Option<Instant>,
    expiration: Duration,
}

impl<V> Table<V> {
    fn new() -> Self {
        Table {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
            expiration: DEFAULT_EXPIRATION,
        }
    }

    fn arm(&mut self, now: Instant) {
        if self.next_check.is_none() {
            self.next_check = Some(now + CHECK_EXPIRE_INTERVAL);
        }
    }

    fn get_mut(&mut self, addr: IpAddr) -> Option<&mut Entry<V>> {
        self.buckets[hashkey(addr)]
            .iter_mut()
            .find(|e| e.addr == addr)
    }

    fn insert(&mut self, addr: IpAddr, now: Instant, value: V) {
        self.buckets[hashkey(addr)].push(Entry {
            addr,
            lastuse: now,
            value,
        });
        self.entries += 1;
    }

    /// Run every timer expiry due by `now` (`ip_vs_lblc_check_expire()`), each at its own
    /// tick time.
    fn expire(&mut self, now: Instant) {
        let Some(mut tick) = self.next_check else {
            self.arm(now);
            return;
        };
        while tick <= now {
            self.check_expire(tick);
            tick = tick + CHECK_EXPIRE_INTERVAL;
        }
        self.next_check = Some(tick);
    }

    /// `ip_vs_lblc.c: ip_vs_lblc_check_expire()` / `ip_vs_lblcr.c: ip_vs_lblcr_check_expire()`.
    fn check_expire(&mut self, now: Instant) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            // ip_vs_lblc_full_check(): drop every entry unused for `expiration`.
            let exp = self.expiration;
            let mut j = self.rover;
            for _ in 0..TAB_SIZE {
                j = (j + 1) & (TAB_SIZE - 1);
                let b = &mut self.buckets[j];
                let before = b.len();
                b.retain(|e| now < e.lastuse + exp);
                self.entries -= before - b.len();
            }
            self.rover = j;
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let mut goal = ((self.entries - MAX_SIZE) * 4 / 3) as i64;
        if goal > (MAX_SIZE / 2) as i64 {
            goal = (MAX_SIZE / 2) as i64;
        }
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & (TAB_SIZE - 1);
            let b = &mut self.buckets[j];
            let before = b.len();
            b.retain(|e| now < e.lastuse + ENTRY_TIMEOUT);
            let removed = before - b.len();
            self.entries -= removed;
            goal -= removed as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }
}

/// lblc state: destination address → real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lblc {
    table: Table<DestKey>,
}

impl Default for Lblc {
    fn default() -> Self {
        Self::new()
    }
}

impl Lblc {
    /// `ip_vs_lblc.c: ip_vs_lblc_init_svc()`: an empty cache.
    pub fn new() -> Lblc {
        Lblc {
            table: Table::new(),
        }
    }

    /// Set the `lblc_expiration` sysctl (default 24 h).
    pub fn set_expiration(&mut self, expiration: Duration) {
        self.table.expiration = expiration;
    }

    /// Number of cache entries.
    pub fn len(&self) -> usize {
        self.table.entries
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.table.entries == 0
    }

    /// The cached server (address, port) for a destination address, if any.
    pub fn cached(&self, daddr: IpAddr) -> Option<(IpAddr, u16)> {
        self.table.buckets[hashkey(daddr)]
            .iter()
            .find(|e| e.addr == daddr)
            .map(|e| e.value)
    }

    /// `ip_vs_lblc.c: ip_vs_lblc_schedule()`.
    pub(crate) fn schedule(
        &mut self,
        dests: &[Dest],
        daddr: IpAddr,
        now: Instant,
    ) -> Option<usize> {
        self.table.arm(now);
        if let Some(en) = self.table.get_mut(daddr) {
            en.lastuse = now;
            // The cached server is used if available, weight > 0 and not lblc-overloaded;
            // the kernel does not test the threshold overload flag here.
            if let Some(i) = find_dest(dests, en.value) {
                let d = &dests[i];
                if d.available && d.weight > 0 && !lblc_overloaded(d, dests) {
                    return Some(i);
                }
            }
        }
        let i = least::lblc_wlc(dests)?;
        // ip_vs_lblc.c: ip_vs_lblc_new(): keep an entry already pointing there, else
        // replace it (fresh lastuse) or create one.
        let key = dest_key(&dests[i]);
        match self.table.get_mut(daddr) {
            Some(en) if en.value == key => {}
            Some(en) => {
                en.value = key;
                en.lastuse = now;
            }
            None => self.table.insert(daddr, now, key),
        }
        Some(i)
    }

    /// Run due garbage collection.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.table.expire(now);
    }
}

/// An lblcr server set (`struct ip_vs_dest_set`): members in insertion order (the kernel
/// adds at the head, so iteration runs newest first) and the last modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DestSet {
    members: Vec<DestKey>,
    lastmod: Instant,
}

impl DestSet {
    /// Members in the kernel's list order (most recently inserted first).
    fn iter(&self) -> impl Iterator<Item = DestKey> + '_ {
        self.members.iter().rev().copied()
    }

    /// `ip_vs_lblcr.c: ip_vs_dest_set_insert()` with `check`.
    fn insert(&mut self, key: DestKey, now: Instant) {
        if self.members.contains(&key) {
            return;
        }
        self.members.push(key);
        self.lastmod = now;
    }

    /// `ip_vs_lblcr.c: ip_vs_dest_set_erase()`.
    fn erase(&mut self, key: DestKey, now: Instant) {
        if let Some(p) = self.members.iter().position(|&k| k == key) {
            self.members.remove(p);
            self.lastmod = now;
        }
    }

    /// `ip_vs_lblcr.c: ip_vs_dest_set_min()`: the weighted least-connection member that is
    /// available, weight > 0 and not overloaded.
    fn min(&self, dests: &[Dest]) -> Option<usize> {
        let mut least: Option<(usize, i64)> = None;
        for key in self.iter() {
            let Some(i) = find_dest(dests, key) else {
                continue; // not in the list: the kernel's unavailable dest
            };
            let d = &dests[i];
            if d.overloaded {
                continue;
            }
            let doh = i64::from(d.conn_overhead() as i32);
            match least {
                None => {
                    if d.weight > 0 && d.available {
                        least = Some((i, doh));
                    }
                }
                Some((l, loh)) => {
                    if loh * i64::from(d.weight) > doh * i64::from(dests[l].weight) && d.available {
                        least = Some((i, doh));
                    }
                }
            }
        }
        least.map(|(i, _)| i)
    }

    /// `ip_vs_lblcr.c: ip_vs_dest_set_max()`: the weighted most-connection member with
    /// weight > 0. Members no longer in the list are skipped (the kernel could still
    /// pick a trashed dest here by its last weight).
    fn max(&self, dests: &[Dest]) -> Option<DestKey> {
        let mut most: Option<(usize, i64)> = None;
        for key in self.iter() {
            let Some(i) = find_dest(dests, key) else {
                continue;
            };
            let d = &dests[i];
            let doh = i64::from(d.conn_overhead() as i32);
            match most {
                None => {
                    if d.weight > 0 {
                        most = Some((i, doh));
                    }
                }
                Some((m, moh)) => {
                    if moh * i64::from(d.weight) < doh * i64::from(dests[m].weight) && d.weight > 0
                    {
                        most = Some((i, doh));
                    }
                }
            }
        }
        most.map(|(i, _)| dest_key(&dests[i]))
    }
}

/// lblcr state: destination address → set of real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lblcr {
    table: Table<DestSet>,
}

impl Default for Lblcr {
    fn default() -> Self {
        Self::new()
    }
}

impl Lblcr {
    /// `ip_vs_lblcr.c: ip_vs_lblcr_init_svc()`: an empty cache.
    pub fn new() -> Lblcr {
        Lblcr {
            table: Table::new(),
        }
    }

    /// Set the `lblcr_expiration` sysctl (default 24 h).
    pub fn set_expiration(&mut self, expiration: Duration) {
        self.table.expiration = expiration;
    }

    /// Number of cache entries.
    pub fn len(&self) -> usize {
        self.table.entries
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.table.entries == 0
    }

    /// The cached server set for a destination address, most recently added first.
    pub fn cached(&self, daddr: IpAddr) -> Option<Vec<(IpAddr, u16)>> {
        self.table.buckets[hashkey(daddr)]
            .iter()
            .find(|e| e.addr == daddr)
            .map(|e| e.value.iter().collect())
    }

    /// `ip_vs_lblcr.c: ip_vs_lblcr_schedule()`.
    pub(crate) fn schedule(
        &mut self,
        dests: &[Dest],
        daddr: IpAddr,
        now: Instant,
    ) -> Option<usize> {
        self.table.arm(now);
        let expiration = self.table.expiration;
        if let Some(en) = self.table.get_mut(daddr) {
            en.lastuse = now;
            let dest = en.value.min(dests);
            // More than one member and unchanged for `expiration`: drop the most loaded.
            if en.value.members.len() > 1
                && now > en.value.lastmod + expiration
                && let Some(m) = en.value.max(dests)
            {
                en.value.erase(m, now);
            }
            if let Some(i) = dest
                && !lblc_overloaded(&dests[i], dests)
            {
                return Some(i);
            }
            let i = least::lblc_wlc(dests)?;
            en.value.insert(dest_key(&dests[i]), now);
            return Some(i);
        }
        let i = least::lblc_wlc(dests)?;
        // ip_vs_lblcr.c: ip_vs_lblcr_new().
        let set = DestSet {
            members: vec![dest_key(&dests[i])],
            lastmod: now,
        };
        self.table.insert(daddr, now, set);
        Some(i)
    }

    /// Run due garbage collection.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.table.expire(now);
    }
}
