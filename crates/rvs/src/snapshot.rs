//! What listings and metrics read of the engine, copied out of it in one pass so that the
//! text is rendered on another thread: the data-plane worker builds a [`DirectorView`]
//! (numbers and plain configuration values, no formatting: one allocation per service for
//! its real servers, the rest copies) and hands
//! it over behind an `Arc`; the control threads format `rvs list`, `rvsadm -L` and the
//! metrics from it ([`crate::listing::list_view`], [`crate::metrics::render`]).
//!
//! It deliberately leaves out the connection table (`-L -c` has the worker copy it in
//! bounded pieces, `daemon/conn_export.rs`)
//! and everything that is not the engine's (health, failover, sync daemons, RX rings: the
//! daemon adds those).

use rvs_core::conn::DefenseState;
use rvs_core::dest::Dest;
use rvs_core::director::{
    DestId, Director, DropCounters, EngineCounters, ServiceId, SyncCounters, neigh::NeighCounters,
};
use rvs_core::model::{Persistence, SchedFlags, SchedulerKind, ServiceKey, Timeouts};
use rvs_core::stats::{Counters, Rates};

/// One real server of a [`ServiceView`].
#[derive(Debug, Clone)]
pub struct DestView {
    /// Its state (weight, thresholds, connection counts, method).
    pub dest: Dest,
    /// Its id.
    pub id: DestId,
    /// Its counters (`--stats`).
    pub stats: Counters,
    /// Its estimated rates (`--rate`).
    pub rates: Rates,
}

/// What listings show of a virtual service's configuration (its real servers are in
/// [`ServiceView::dests`]): plain values, no allocation to copy.
#[derive(Debug, Clone, Copy)]
pub struct ServiceCfg {
    /// `-t|-u|--sctp-service addr:port` or `-f mark`.
    pub key: ServiceKey,
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// The SYN proxy covers it (TCP services only: `-L` shows ` synproxy`).
    pub synproxy: bool,
}

/// One virtual service.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Its id.
    pub id: ServiceId,
    /// Its configuration as running.
    pub cfg: ServiceCfg,
    /// Its counters.
    pub stats: Counters,
    /// Its estimated rates.
    pub rates: Rates,
    /// Its real servers in kernel list order (most recently added first).
    pub dests: Vec<DestView>,
}

/// A connection table's size.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableView {
    /// Entries (templates included).
    pub len: usize,
    /// Slots allocated.
    pub capacity: usize,
    /// Bytes allocated.
    pub memory_bytes: usize,
    /// The memory limit.
    pub limit_bytes: usize,
    /// Hash buckets.
    pub buckets: usize,
}

/// The engine's state as listings and metrics need it, at one instant.
#[derive(Debug, Clone)]
pub struct DirectorView {
    /// Live services in id order.
    pub services: Vec<ServiceView>,
    /// The services' keys in configuration order (`--nosort` lists them so).
    pub order: Vec<ServiceKey>,
    /// The connection timeouts (`-L --timeout`).
    pub timeouts: Timeouts,
    /// Engine-wide counters.
    pub counters: EngineCounters,
    /// Drops by reason.
    pub drops: DropCounters,
    /// Neighbour-table counters.
    pub neigh: NeighCounters,
    /// Neighbour entries per family (IPv4, IPv6).
    pub neigh_len: [usize; 2],
    /// The neighbour table's bound per family.
    pub neigh_capacity: usize,
    /// The connection tables (IPv4, IPv6).
    pub tables: [TableView; 2],
    /// The defence strategies.
    pub defense: DefenseState,
    /// The engine's connection-sync counters.
    pub sync: SyncCounters,
    /// SYN admission under overload: its counters.
    pub shed: rvs_core::director::shed::ShedCounters,
    /// SYN admission: congested now.
    pub shed_congested: bool,
    /// SYN admission: proven sources held (IPv4, IPv6 /64).
    pub shed_proven: [usize; 2],
}

impl DirectorView {
    /// Copy what listings and metrics need out of `d`.
    pub fn of(d: &Director) -> DirectorView {
        DirectorView::of_reusing(d, Vec::new(), Vec::new())
    }

    /// [`DirectorView::of`] written into the vectors of an earlier view (`services`,
    /// `order`): once they are as large as the configuration, a copy allocates nothing per
    /// service (the worker's copies for scrapes, `crate::daemon`'s `published` module).
    pub fn of_reusing(
        d: &Director,
        mut services: Vec<ServiceView>,
        mut order: Vec<ServiceKey>,
    ) -> DirectorView {
        let all = d.services();
        let mut n = 0;
        for (id, s) in all.iter() {
            let cfg = ServiceCfg {
                key: s.cfg.key,
                scheduler: s.cfg.scheduler,
                flags: s.cfg.flags,
                persistence: s.cfg.persistence,
                one_packet: s.cfg.one_packet,
                synproxy: s.synproxy,
            };
            let dests = s.dests.iter().zip(&s.dest_ids).map(|(dest, &id)| DestView {
                dest: dest.clone(),
                id,
                stats: all.dest_stats(id).copied().unwrap_or_default(),
                rates: all
                    .dest_estimator(id)
                    .map(|e| e.rates())
                    .unwrap_or_default(),
            });
            match services.get_mut(n) {
                Some(v) => {
                    (v.id, v.cfg, v.stats, v.rates) = (id, cfg, s.stats, s.est.rates());
                    v.dests.clear();
                    v.dests.extend(dests);
                }
                None => services.push(ServiceView {
                    id,
                    cfg,
                    stats: s.stats,
                    rates: s.est.rates(),
                    dests: dests.collect(),
                }),
            }
            n += 1;
        }
        services.truncate(n);
        order.clear();
        order.extend(d.config().services.iter().map(|s| s.key));
        let table = |len, capacity, memory_bytes, limit_bytes, buckets| TableView {
            len,
            capacity,
            memory_bytes,
            limit_bytes,
            buckets,
        };
        let (t4, t6) = (d.table_v4(), d.table_v6());
        let n = d.neighbors();
        DirectorView {
            services,
            order,
            timeouts: d.config().timeouts,
            counters: d.counters().clone(),
            drops: d.drops().clone(),
            neigh: *n.counters(),
            neigh_len: [n.len(false), n.len(true)],
            neigh_capacity: n.capacity(),
            tables: [
                table(
                    t4.len(),
                    t4.capacity(),
                    t4.memory_bytes(),
                    t4.limit_bytes(),
                    t4.buckets(),
                ),
                table(
                    t6.len(),
                    t6.capacity(),
                    t6.memory_bytes(),
                    t6.limit_bytes(),
                    t6.buckets(),
                ),
            ],
            defense: d.defense().clone(),
            sync: d.sync_counters().clone(),
            shed: d.shed().counters().clone(),
            shed_congested: d.shed().congested(),
            shed_proven: {
                let (v4, v6) = d.shed().proven().len();
                [v4, v6]
            },
        }
    }
}
