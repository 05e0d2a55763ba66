//! Virtual services at run time: lookup by key, each service's real servers in kernel list
//! order with their scheduler, and the application of a new configuration snapshot.
//!
//! A snapshot is applied as the equivalent ipvsadm commands would be: services are created
//! empty and real servers added one at a time in configuration order (each at the head of
//! the list, `ip_vs_add_dest()`), so list order and scheduler state match the kernel's.
//! Removed real servers that still carry connections move to a trash list (the kernel's
//! `ipvs->dest_trash`) and come back from it, counts intact, if re-added.
//!
//! Real servers and services have ids that are never reused within one engine, so a
//! connection entry that outlives its server can always tell.

use crate::dest::Dest;
use crate::model::{Config, Family, RealServerConfig, ServiceKey, VirtualServiceConfig};
use crate::sched::{DestChange, Scheduler};
use crate::stats::{Counters, Estimator};
use crate::time::Instant;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

/// The hasher of the service maps: a multiply-rotate hash (as rustc's FxHash), much cheaper
/// than SipHash on the new-connection path. Flooding is no concern here: only the
/// configuration inserts keys, so a packet's lookup can at worst walk the configured
/// services that collide with it.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHash;

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// See [`KeyHash`].
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A real server's id: stable for the life of the engine, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u32);

/// A virtual service's id: stable for the life of the engine, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);

/// One virtual service.
#[derive(Debug)]
pub struct Service {
    /// Its configuration (real servers in configuration order).
    pub cfg: VirtualServiceConfig,
    /// Real servers in kernel list order (index 0 = most recently added).
    pub dests: Vec<Dest>,
    /// The id of each entry of `dests`.
    pub dest_ids: Vec<DestId>,
    /// The scheduler and its state.
    pub sched: Scheduler,
    /// Counters (`ipvsadm --stats`).
    pub stats: Counters,
    /// Rate estimator over `stats` (`ipvsadm --rate`).
    pub est: Estimator,
    /// The SYN proxy runs for it ([`crate::model::SynProxyConfig::applies`]), as of the
    /// last [`Services::apply`].
    pub synproxy: bool,
}

impl Service {
    fn position(&self, addr: IpAddr, port: u16) -> Option<usize> {
        self.dests
            .iter()
            .position(|d| d.addr == addr && d.port == port)
    }
}

/// Where a real server lives now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DestLoc {
    /// In service `svc` at list position `pos`.
    Live { svc: u32, pos: u32 },
    /// Removed from its service, kept while connections refer to it.
    Trash { idx: u32 },
    /// Gone.
    Freed,
}

/// A removed real server kept for its connections.
#[derive(Debug)]
struct Trashed {
    id: DestId,
    svc: ServiceId,
    dest: Dest,
}

/// What an apply changed, for logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// Services created.
    pub services_added: usize,
    /// Services removed.
    pub services_removed: usize,
    /// Real servers added (including ones revived from the trash).
    pub dests_added: usize,
    /// Real servers removed.
    pub dests_removed: usize,
    /// Real servers whose weight, thresholds or method changed.
    pub dests_edited: usize,
}

/// A real server's counters and the service it belongs (or belonged) to.
#[derive(Debug)]
struct DestStats {
    svc: ServiceId,
    stats: Counters,
}

/// All virtual services of a director.
#[derive(Debug, Default)]
pub struct Services {
    slots: Vec<Option<Service>>,
    by_addr: HashMap<(u8, IpAddr, u16), u32, KeyHash>,
    by_mark: HashMap<(u32, Family), u32, KeyHash>,
    dest_loc: Vec<DestLoc>,
    /// By real-server id: its service and its counters (one bounds check on the packet
    /// path for both).
    dest_stats: Vec<DestStats>,
    dest_est: Vec<Estimator>,
    trash: Vec<Trashed>,
    /// Moves with every apply ([`Services::generation`]).
    generation: u64,
}

impl Services {
    /// The service for a protocol, destination address and port: the exact service first,
    /// then a port-0 service of that address (`__ip_vs_service_find()` tries port 0 for
    /// persistent port-zero services).
    #[inline]
    pub fn find_addr(&self, protocol: u8, addr: IpAddr, port: u16) -> Option<ServiceId> {
        self.by_addr
            .get(&(protocol, addr, port))
            .or_else(|| self.by_addr.get(&(protocol, addr, 0)))
            .map(|&i| ServiceId(i))
    }

    /// The service for exactly this protocol, destination address and port (no port-0
    /// fallback).
    pub fn find_addr_exact(&self, protocol: u8, addr: IpAddr, port: u16) -> Option<ServiceId> {
        self.by_addr
            .get(&(protocol, addr, port))
            .map(|&i| ServiceId(i))
    }

    /// The fwmark service for a mark.
    pub fn find_mark(&self, mark: u32, family: Family) -> Option<ServiceId> {
        self.by_mark.get(&(mark, family)).map(|&i| ServiceId(i))
    }

    /// Whether any address-based service uses `addr` as its VIP.
    pub fn is_vip(&self, addr: IpAddr) -> bool {
        self.by_addr.keys().any(|(_, a, _)| *a == addr)
    }

    /// A service by id (None once removed).
    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// A service by id, mutable.
    pub fn get_mut(&mut self, id: ServiceId) -> Option<&mut Service> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Live services with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ServiceId, &Service)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (ServiceId(i as u32), s)))
    }

    /// Live services with their ids, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ServiceId, &mut Service)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|s| (ServiceId(i as u32), s)))
    }

    /// A real server by id, live or trashed.
    #[inline]
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        match *self.dest_loc.get(id.0 as usize)? {
            DestLoc::Live { svc, pos } => self.slots[svc as usize]
                .as_ref()
                .map(|s| &s.dests[pos as usize]),
            DestLoc::Trash { idx } => Some(&self.trash[idx as usize].dest),
            DestLoc::Freed => None,
        }
    }

    /// A real server by id, mutable.
    #[inline]
    pub fn dest_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        match *self.dest_loc.get(id.0 as usize)? {
            DestLoc::Live { svc, pos } => self.slots[svc as usize]
                .as_mut()
                .map(|s| &mut s.dests[pos as usize]),
            DestLoc::Trash { idx } => Some(&mut self.trash[idx as usize].dest),
            DestLoc::Freed => None,
        }
    }

    /// Whether a real server is still in its service (not removed).
    pub fn dest_is_live(&self, id: DestId) -> bool {
        matches!(self.dest_loc.get(id.0 as usize), Some(DestLoc::Live { .. }))
    }

    /// The service a real server belongs (or belonged) to.
    pub fn dest_service(&self, id: DestId) -> Option<ServiceId> {
        self.dest_stats.get(id.0 as usize).map(|d| d.svc)
    }

    /// A real server's counters.
    pub fn dest_stats(&self, id: DestId) -> Option<&Counters> {
        self.dest_stats.get(id.0 as usize).map(|d| &d.stats)
    }

    /// A real server's rate estimator.
    pub fn dest_estimator(&self, id: DestId) -> Option<&Estimator> {
        self.dest_est.get(id.0 as usize)
    }

    /// Feed every estimator its counters: the kernel's 2-second estimation tick
    /// (`ip_vs_est.c`).
    pub fn estimate(&mut self) {
        self.estimate_row(0, 1);
    }

    /// One row of [`Services::estimate`]: the services whose slot and the real servers
    /// whose id is `row` modulo `rows` (`ip_vs_est.c` since Linux 6.2 ticks its estimators
    /// in rows, one row per `IPVS_EST_TICK`); ticking rows `0..rows` once each is one
    /// [`Services::estimate`].
    pub fn estimate_row(&mut self, row: usize, rows: usize) {
        let rows = rows.max(1);
        for s in self.slots.iter_mut().skip(row).step_by(rows).flatten() {
            s.est.tick(&s.stats);
        }
        for (e, c) in self
            .dest_est
            .iter_mut()
            .zip(self.dest_stats.iter().map(|d| &d.stats))
            .skip(row)
            .step_by(rows)
        {
            e.tick(c);
        }
    }

    /// [`crate::sched::Scheduler::expire`] (lblc/lblcr's garbage collection) of the live
    /// services in slots `from..from + max`; returns the slot the next call starts from (0
    /// after the last), so repeated calls walk every service in bounded pieces.
    pub fn expire_schedulers(&mut self, from: usize, max: usize, now: Instant) -> usize {
        let from = if from >= self.slots.len() { 0 } else { from };
        let end = from.saturating_add(max).min(self.slots.len());
        for s in self.slots[from..end].iter_mut().flatten() {
            s.sched.expire(now);
        }
        if end >= self.slots.len() { 0 } else { end }
    }

    /// The live services in slots `from..from + max` with their ids, and the slot after
    /// them (`None` after the last): a walk of every service in bounded pieces.
    pub fn chunk(
        &self,
        from: usize,
        max: usize,
    ) -> (impl Iterator<Item = (ServiceId, &Service)>, Option<usize>) {
        let from = from.min(self.slots.len());
        let end = from.saturating_add(max).min(self.slots.len());
        let next = (end < self.slots.len()).then_some(end);
        let it = self.slots[from..end]
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| s.as_ref().map(|s| (ServiceId((from + i) as u32), s)));
        (it, next)
    }

    /// `ipvsadm -Z`: zero the counters of one service (and of its real servers) or of all
    /// services, restarting their rate estimators (`ip_vs_zero_service()`,
    /// `ip_vs_zero_all()`). Real servers already removed keep their counters.
    pub fn zero(&mut self, only: Option<ServiceId>) {
        match only {
            Some(id) => self.zero_slot(id.0 as usize),
            None => {
                let _ = self.zero_from(0, usize::MAX);
            }
        }
    }

    /// [`Services::zero`] of every service in `max` slots from `from` (ids `from..`), so
    /// that zeroing them all can be spread over several calls; where to go on from, or
    /// None when every slot has been zeroed.
    pub fn zero_from(&mut self, from: usize, max: usize) -> Option<usize> {
        let end = from.saturating_add(max).min(self.slots.len());
        for i in from..end {
            self.zero_slot(i);
        }
        (end < self.slots.len()).then_some(end)
    }

    fn zero_slot(&mut self, i: usize) {
        let Some(Some(s)) = self.slots.get_mut(i) else {
            return;
        };
        s.stats = Counters::default();
        s.est.zero(&s.stats);
        for id in &s.dest_ids {
            let j = id.0 as usize;
            if let (Some(c), Some(e)) = (self.dest_stats.get_mut(j), self.dest_est.get_mut(j)) {
                c.stats = Counters::default();
                e.zero(&c.stats);
            }
        }
    }

    /// The service of a configuration key.
    pub fn find_key(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.index_of(key).map(|i| ServiceId(i as u32))
    }

    /// Counters of a real server and of its service, together, for the packet path.
    pub fn stats_mut(&mut self, id: DestId) -> (Option<&mut Counters>, Option<&mut Counters>) {
        let Some(d) = self.dest_stats.get_mut(id.0 as usize) else {
            return (None, None);
        };
        let s = self
            .slots
            .get_mut(d.svc.0 as usize)
            .and_then(Option::as_mut)
            .map(|s| &mut s.stats);
        (Some(&mut d.stats), s)
    }

    /// Count a packet of `bytes` bytes from a client (`inward`) or to one in the counters of
    /// real server `id` and of its service (`ip_vs_in_stats()`, `ip_vs_out_stats()`).
    #[inline(always)]
    pub fn count_packet(&mut self, id: DestId, inward: bool, bytes: u64) {
        let Some(d) = self.dest_stats.get_mut(id.0 as usize) else {
            return;
        };
        let s = self
            .slots
            .get_mut(d.svc.0 as usize)
            .and_then(Option::as_mut);
        if inward {
            d.stats.count_in(bytes);
            if let Some(s) = s {
                s.stats.count_in(bytes);
            }
        } else {
            d.stats.count_out(bytes);
            if let Some(s) = s {
                s.stats.count_out(bytes);
            }
        }
    }

    /// `packets` packets of `bytes` bytes in all, one way: [`Services::count_packet`] in
    /// bulk (a fast path's counts, `director/offload.rs`).
    pub fn count_packets(&mut self, id: DestId, inward: bool, packets: u64, bytes: u64) {
        if packets == 0 {
            return;
        }
        let Some(d) = self.dest_stats.get_mut(id.0 as usize) else {
            return;
        };
        let s = self
            .slots
            .get_mut(d.svc.0 as usize)
            .and_then(Option::as_mut);
        d.stats.count_many(inward, packets, bytes);
        if let Some(s) = s {
            s.stats.count_many(inward, packets, bytes);
        }
    }

    /// Drop trashed real servers no connection refers to any more
    /// (`ip_vs_dest_trash_expire()`).
    pub fn purge_trash(&mut self) {
        let mut i = 0;
        while i < self.trash.len() {
            let d = &self.trash[i].dest;
            if d.active_conns + d.inact_conns + d.persist_conns == 0 {
                let gone = self.trash.swap_remove(i);
                self.dest_loc[gone.id.0 as usize] = DestLoc::Freed;
                if let Some(moved) = self.trash.get(i) {
                    self.dest_loc[moved.id.0 as usize] = DestLoc::Trash { idx: i as u32 };
                }
            } else {
                i += 1;
            }
        }
    }

    /// Apply a configuration snapshot (assumed validated): services and real servers are
    /// added, edited and removed as the equivalent ipvsadm commands would, in order.
    pub fn apply(&mut self, cfg: &Config) -> ApplyReport {
        let mut report = ApplyReport::default();
        // Removed services first (`ipvsadm -D`), so their VIPs free up.
        let keep: std::collections::HashSet<ServiceKey> =
            cfg.services.iter().map(|s| s.key).collect();
        for i in 0..self.slots.len() {
            let gone = self.slots[i]
                .as_ref()
                .is_some_and(|s| !keep.contains(&s.cfg.key));
            if gone {
                self.remove_service(i);
                report.services_removed += 1;
            }
        }
        for svc_cfg in &cfg.services {
            self.apply_service(cfg, svc_cfg, &mut report);
        }
        self.purge_trash();
        self.generation += 1;
        report
    }

    /// [`Services::apply`] of `cfg` when these services run the configuration `diff` was
    /// worked out against (`director/diff.rs`): only the services it names are touched, in
    /// the order `apply` would touch them, so the outcome is `apply`'s.
    pub(super) fn apply_diff(&mut self, cfg: &Config, diff: &super::diff::Diff) -> ApplyReport {
        let mut report = ApplyReport::default();
        for key in &diff.removed {
            if let Some(i) = self.index_of(key) {
                self.remove_service(i);
                report.services_removed += 1;
            }
        }
        for &i in &diff.changed {
            if let Some(svc_cfg) = cfg.services.get(i) {
                self.apply_service(cfg, svc_cfg, &mut report);
            }
        }
        self.purge_trash();
        self.generation += 1;
        report
    }

    /// Add or edit one service of `cfg` and its real servers.
    fn apply_service(
        &mut self,
        cfg: &Config,
        svc_cfg: &VirtualServiceConfig,
        report: &mut ApplyReport,
    ) {
        let idx = match self.index_of(&svc_cfg.key) {
            Some(i) => {
                self.edit_service(i, svc_cfg);
                i
            }
            None => {
                report.services_added += 1;
                self.add_service(svc_cfg)
            }
        };
        self.sync_dests(idx, &svc_cfg.real_servers, report);
        if let Some(s) = self.slots[idx].as_mut() {
            s.cfg = svc_cfg.clone();
            s.synproxy = cfg.synproxy.applies(svc_cfg);
        }
    }

    /// How many configuration snapshots were applied.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// One more than the largest real-server id ever given (ids are never reused).
    pub fn dest_id_bound(&self) -> usize {
        self.dest_loc.len()
    }

    fn index_of(&self, key: &ServiceKey) -> Option<usize> {
        match *key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => self.by_addr.get(&(protocol.number(), addr, port)),
            ServiceKey::Fwmark { mark, family } => self.by_mark.get(&(mark, family)),
        }
        .map(|&i| i as usize)
    }

    fn add_service(&mut self, cfg: &VirtualServiceConfig) -> usize {
        let idx = self.slots.len();
        let mut empty = cfg.clone();
        empty.real_servers.clear();
        self.slots.push(Some(Service {
            sched: Scheduler::new(cfg.scheduler, cfg.flags, cfg.mh_table_size, &[]),
            cfg: empty,
            dests: Vec::new(),
            dest_ids: Vec::new(),
            stats: Counters::default(),
            est: Estimator::new(&Counters::default()),
            synproxy: false,
        }));
        match cfg.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => self
                .by_addr
                .insert((protocol.number(), addr, port), idx as u32),
            ServiceKey::Fwmark { mark, family } => self.by_mark.insert((mark, family), idx as u32),
        };
        idx
    }

    /// `ipvsadm -E`: a new scheduler (or new flags or table size) starts from the current
    /// real servers, as `ip_vs_edit_service()` binds the new scheduler to the list.
    fn edit_service(&mut self, idx: usize, cfg: &VirtualServiceConfig) {
        let Some(s) = self.slots[idx].as_mut() else {
            return;
        };
        if s.cfg.scheduler != cfg.scheduler
            || s.cfg.flags != cfg.flags
            || s.cfg.mh_table_size != cfg.mh_table_size
        {
            s.sched = Scheduler::new(cfg.scheduler, cfg.flags, cfg.mh_table_size, &s.dests);
        }
    }

    fn remove_service(&mut self, idx: usize) {
        let Some(s) = self.slots[idx].take() else {
            return;
        };
        match s.cfg.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => self.by_addr.remove(&(protocol.number(), addr, port)),
            ServiceKey::Fwmark { mark, family } => self.by_mark.remove(&(mark, family)),
        };
        for (dest, id) in s.dests.into_iter().zip(s.dest_ids) {
            self.trash_dest(id, ServiceId(idx as u32), dest);
        }
    }

    fn trash_dest(&mut self, id: DestId, svc: ServiceId, mut dest: Dest) {
        dest.available = false;
        self.dest_loc[id.0 as usize] = DestLoc::Trash {
            idx: self.trash.len() as u32,
        };
        self.trash.push(Trashed { id, svc, dest });
    }

    fn sync_dests(&mut self, idx: usize, want: &[RealServerConfig], report: &mut ApplyReport) {
        let svc_id = ServiceId(idx as u32);
        // Removals (`ipvsadm -d`), in list order.
        loop {
            let s = self.slots[idx].as_mut().expect("service exists");
            let Some(pos) = s
                .dests
                .iter()
                .position(|d| !want.iter().any(|w| w.addr == d.addr && w.port == d.port))
            else {
                break;
            };
            let dest = s.dests.remove(pos);
            let id = s.dest_ids.remove(pos);
            s.sched
                .on_change(&s.dests, DestChange::Removed { index: pos });
            self.trash_dest(id, svc_id, dest);
            report.dests_removed += 1;
        }
        // Edits (`ipvsadm -e`) and additions (`ipvsadm -a`), in configuration order.
        for rs in want {
            let s = self.slots[idx].as_mut().expect("service exists");
            if let Some(pos) = s.position(rs.addr, rs.port) {
                let d = &mut s.dests[pos];
                let changed = d.weight != rs.weight
                    || d.u_threshold != rs.u_threshold
                    || d.l_threshold != rs.l_threshold
                    || d.method != rs.method;
                if changed {
                    d.edit(rs);
                    s.sched.on_change(&s.dests, DestChange::Edited(pos));
                    report.dests_edited += 1;
                }
                continue;
            }
            // `ip_vs_trash_get_dest()`: a removed server of this service comes back with its
            // connections and counters.
            let revived = self
                .trash
                .iter()
                .position(|t| t.svc == svc_id && t.dest.addr == rs.addr && t.dest.port == rs.port);
            let (id, dest) = match revived {
                Some(ti) => {
                    let t = self.trash.swap_remove(ti);
                    if let Some(moved) = self.trash.get(ti) {
                        self.dest_loc[moved.id.0 as usize] = DestLoc::Trash { idx: ti as u32 };
                    }
                    let mut d = t.dest;
                    d.edit(rs);
                    (t.id, d)
                }
                None => {
                    let id = DestId(self.dest_loc.len() as u32);
                    self.dest_loc.push(DestLoc::Freed);
                    self.dest_stats.push(DestStats {
                        svc: svc_id,
                        stats: Counters::default(),
                    });
                    self.dest_est.push(Estimator::new(&Counters::default()));
                    (id, Dest::new(rs))
                }
            };
            let s = self.slots[idx].as_mut().expect("service exists");
            s.dests.insert(0, dest);
            s.dest_ids.insert(0, id);
            s.sched.on_change(&s.dests, DestChange::Added(0));
            report.dests_added += 1;
        }
        // Positions shifted: re-point every live real server of this service.
        let s = self.slots[idx].as_ref().expect("service exists");
        for (pos, id) in s.dest_ids.iter().enumerate() {
            self.dest_loc[id.0 as usize] = DestLoc::Live {
                svc: idx as u32,
                pos: pos as u32,
            };
        }
    }
}
