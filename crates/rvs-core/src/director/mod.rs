//! The director engine: everything an IPVS director decides about a frame.
//!
//! [`Director::handle`] takes the time, the port a frame arrived on and the frame, rewrites
//! the frame in place and says what to do with it ([`Verdict`]). Timers are driven by
//! [`Director::expire`] / [`Director::poll_timeout`], frames the engine originates (ARP
//! requests, gratuitous ARP, frames released after neighbour resolution) are taken with
//! [`Director::poll_transmit`], and a new configuration snapshot is applied with
//! [`Director::apply`], keeping established connections. Health checks that travel the
//! forwarding path of DR and TUN real servers go out through [`Director::forward_probe`]
//! (`director/probe.rs`). Connection synchronisation between directors — records of this
//! one's connections for its backups, and records from a master applied here — is
//! [`sync`]: [`Director::set_sync`], [`Director::poll_sync`], [`Director::sync_import`].
//!
//! The path of a packet follows the kernel's `ip_vs_in()` / `ip_vs_out()`: a connection
//! lookup first (client → VIP by the in key, real server → client by the out key), then, for
//! a packet that opens a connection, the service lookup, persistence
//! (`ip_vs_sched_persist()`) or the scheduler, and the entry's creation; then the TCP state
//! machine, counters, and the forwarding method's rewrite (`ip_vs_nat_xmit()`,
//! `ip_vs_dr_xmit()`, `ip_vs_tunnel_xmit()`, plus FullNAT's source rewrite).
//!
//! What it deliberately does not do: I/O, clocks, logging, allocation per packet. Drops are
//! counted by [`DropReason`]. GSO super-frames are forwarded as they are (the I/O layer
//! segments them); IP fragments are not reassembled (non-first fragments follow the first).

pub mod classify;
mod defense;
mod diff;
pub use defense::Retired;
pub mod drops;
mod fast;
mod fast_new;
mod flush;
pub mod ftp;
mod nd;
pub mod neigh;
pub mod net;
pub mod offload;
mod probe;
mod rewrite;
pub mod services;
pub mod shed;
pub mod sync;
pub mod synproxy;

pub use drops::{DropCounters, DropReason};
pub use net::{NetConfig, OwnedAddr, PortConfig, PortId, Route};
pub use probe::probe_mtu;
pub use services::{ApplyReport, DestId, Service, ServiceId, Services};

/// A configuration that passed [`Config::validate`]: [`Director::install`] takes it
/// without checking again. Prepared on any thread (a daemon's control thread), so the
/// forwarding thread only installs; prepared [`against`](Prepared::against) the
/// configuration the engine runs, it carries the services that differ, so the install
/// touches only those.
#[derive(Debug, Clone)]
pub struct Prepared {
    config: Config,
    diff: Option<diff::Diff>,
}

impl Prepared {
    /// Validate `config`.
    pub fn new(config: Config) -> Result<Prepared, Vec<ConfigError>> {
        config.validate()?;
        Ok(Prepared { config, diff: None })
    }

    /// Validate `config` and work out how it differs from `running`, the configuration of
    /// an engine at [`Director::generation`] `generation`. Installed in an engine at that
    /// generation, only the services that differ are touched; in any other engine it is
    /// installed whole, as [`Prepared::new`]'s is.
    pub fn against(
        config: Config,
        running: &Config,
        generation: u64,
    ) -> Result<Prepared, Vec<ConfigError>> {
        config.validate()?;
        let diff = Some(diff::Diff::between(running, &config, generation));
        Ok(Prepared { config, diff })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, taken back.
    pub fn into_config(self) -> Config {
        self.config
    }

    /// Services it changes, adds or removes when installed as prepared (None: prepared
    /// without a running configuration, installed whole).
    pub fn services_changed(&self) -> Option<usize> {
        self.diff.as_ref().map(diff::Diff::len)
    }
}
pub use sync::{SyncCounters, SyncRecord, SyncRefused, SyncSettings, SyncSettingsError};
pub use synproxy::SynProxyCounters;

use crate::conn::sctp::{SctpEvent, SctpState};
use crate::conn::state::{ConnFlags, Direction, StateTimeouts, TcpState, UDP_STATE};
use crate::conn::table::{ConnAddr, ConnId, ConnTable, InKey, NewConn, OutKey};
use crate::model::{
    Config, ConfigError, Family, ForwardMethod, ServiceKey, TunnelCsum, TunnelKind, mask_addr,
};
use crate::sched::{Rng, SchedInput};
use crate::time::Instant;
use crate::wire::{self, CsumStatus, Frame, L3Kind, Parsed};
use core::time::Duration;
use neigh::{Heard, NeighAction, Neighbors};
use net::FramePool;
use std::net::IpAddr;
use wire::nat::NatRewrite;

/// The rate estimators' period in seconds (`ip_vs_est.c`: every 2 s).
const ESTIMATOR_PERIOD_SECS: u64 = 2;

/// What to do with a frame after [`Director::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame on this port.
    Transmit(PortId),
    /// Drop it; the reason has been counted.
    Drop(DropReason),
    /// Not the director's: let the host's own stack have it.
    Pass,
    /// The engine took it (learned from it, or parked it until a neighbour resolves);
    /// frames may be waiting in [`Director::poll_transmit`].
    Consumed,
}

/// The connection tables' default memory limit, per address family: 512 MiB, about 5.2
/// million entries of either family (see [`crate::conn::entries_for_bytes`]).
pub const DEFAULT_TABLE_BYTES: usize = 512 << 20;

/// Engine settings that are not part of the forwarding configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorSettings {
    /// Seed for the connection table's hash and the scheduler's random choices: the daemon
    /// passes fresh randomness (hash-flooding defence); tests pass a constant.
    pub seed: u64,
    /// Connection-table entry limit per address family when the config says 0 (by
    /// default none: the memory limit decides).
    pub default_table_size: usize,
    /// Connection-table memory limit per address family, in bytes, when the config says 0.
    pub default_table_bytes: usize,
    /// Hash buckets each connection table starts with (it doubles them as it grows).
    pub initial_buckets: usize,
    /// The I/O layer can transmit frames whose L4 checksum is still partial
    /// (`PACKET_VNET_HDR`): then partial checksums are kept partial. Otherwise the engine
    /// completes them in software before any rewrite.
    pub offload_partial_csum: bool,
    /// Frames that can wait for a neighbour (or sit in the transmit queue) at once.
    pub park_slots: usize,
    /// Largest frame that can be parked.
    pub park_slot_size: usize,
    /// How long a parked frame waits for its neighbour.
    pub park_timeout: Duration,
    /// Entries examined per [`Director::expire`] call.
    pub expire_budget: usize,
    /// The rate estimators are ticked in this many rows, one row every 2 s / `rows`, each
    /// estimator once every 2 s as before (`ip_vs_est.c` since Linux 6.2: the estimation
    /// kthread splits its estimators into `IPVS_EST_NTICKS` (50) rows and ticks one row every
    /// `IPVS_EST_TICK` = 2 s / 50). 1 (the default): every estimator at once, every 2 s. A
    /// daemon with many services uses 50, so no call of [`Director::expire`] walks them all.
    pub estimator_rows: u32,
    /// Services (slots) visited per [`Director::expire`] call by the walks that are not
    /// due at a given moment (the schedulers' garbage collection, the neighbour warm-up of
    /// every real server's next hop): each walk goes on where the last call stopped, so a
    /// call costs at most this many, whatever the number of services.
    pub walk_chunk: usize,
    /// Neighbour-table bound per family (`gc_thresh3`); 0: the configuration's
    /// [`Config::neigh_gc_thresh3`], else [`neigh::GC_THRESH3`]. Allocated at construction.
    pub neigh_gc_thresh3: usize,
}

impl Default for DirectorSettings {
    fn default() -> Self {
        DirectorSettings {
            seed: 0x5eed,
            default_table_size: usize::MAX,
            default_table_bytes: DEFAULT_TABLE_BYTES,
            initial_buckets: 1 << 16,
            offload_partial_csum: false,
            park_slots: 256,
            park_slot_size: 2048,
            park_timeout: Duration::from_secs(3),
            expire_budget: 4096,
            estimator_rows: 1,
            walk_chunk: 256,
            neigh_gc_thresh3: 0,
        }
    }
}

/// Engine-wide counters (beyond per-service and per-real-server ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// Frames handled.
    pub rx: u64,
    /// Frames forwarded or answered.
    pub tx: u64,
    /// Frames passed to the host stack.
    pub passed: u64,
    /// ARP replies and neighbour advertisements sent.
    pub neighbor_replies: u64,
    /// ARP packets or neighbour advertisements from another host claiming an address this
    /// director owns (another master in a split brain, or a misconfigured host).
    pub address_conflicts: u64,
    /// ICMP echo replies sent for VIPs.
    pub echo_replies: u64,
    /// ICMP errors forwarded for tracked connections.
    pub icmp_forwarded: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Connections removed (expired, evicted or flushed).
    pub conns_removed: u64,
    /// Persistence templates created.
    pub templates_created: u64,
    /// Persistence templates removed (expired or invalidated).
    pub templates_removed: u64,
    /// Frames parked for neighbour resolution.
    pub parked: u64,
    /// Segments cut from GSO super-frames (tunnelling).
    pub segmented: u64,
    /// Health-check probes sent (or parked) along a real server's forwarding path
    /// ([`Director::forward_probe`]); refused ones are counted as drops.
    pub probes: u64,
    /// Malformed frames by the parser's reason ([`wire::Malformed::index`]).
    pub malformed: [u64; 16],
    /// The SYN proxy's counters (`director/synproxy`).
    pub synproxy: SynProxyCounters,
}

/// A cached next hop of a real server, valid while `generation` is the engine's
/// `neigh_generation` (bumped by every neighbour change, [`Director::set_net`] and
/// [`Director::apply`], so also by every change of the real server itself).
#[derive(Debug, Clone, Copy, Default)]
struct Hop {
    generation: u32,
    port: PortId,
    /// The next hop's MAC, then the egress port's own: the frame's first 12 bytes.
    macs: [u8; 12],
    /// The real server's IPv4 address when it is live (in its service) and forwards by
    /// NAT or FullNAT: the packet path's fast case ([`Core::fast_nat_in`]).
    nat_v4: Option<[u8; 4]>,
}

impl Hop {
    /// The next hop's MAC.
    fn mac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.macs[..6]);
        m
    }

    /// The egress port's own MAC.
    fn src_mac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.macs[6..]);
        m
    }
}

/// Why a real server's next hop is not at hand: no route, or a route whose neighbour
/// (port, next-hop address) is not resolved yet.
type HopMiss = Option<(PortId, IpAddr)>;

/// Which way a packet goes through a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Client → real server.
    In,
    /// Real server → client (NAT / FullNAT replies).
    Out,
}

/// A connection a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragEntry {
    src: IpAddr,
    dst: IpAddr,
    ident: u32,
    protocol: u8,
    conn: ConnId,
    way: Way,
    seen: Instant,
}

/// Remembers which connection the first fragment of a datagram went to, so the later
/// fragments (which carry no ports) follow it. A small fixed ring: old entries are reused.
#[derive(Debug)]
struct FragCache {
    slots: Vec<Option<FragEntry>>,
    next: usize,
}

impl FragCache {
    fn new(n: usize) -> FragCache {
        FragCache {
            slots: vec![None; n],
            next: 0,
        }
    }

    fn insert(&mut self, e: FragEntry) {
        let n = self.slots.len();
        self.slots[self.next % n] = Some(e);
        self.next = (self.next + 1) % n;
    }

    fn find(&self, p: &Parsed, now: Instant) -> Option<(ConnId, Way)> {
        self.slots
            .iter()
            .flatten()
            .find(|e| {
                e.ident == p.frag.ident
                    && e.protocol == p.protocol
                    && e.src == p.src
                    && e.dst == p.dst
                    && now.saturating_since(e.seen) < Duration::from_secs(30)
            })
            .map(|e| (e.conn, e.way))
    }
}

/// The address families' connection-table keys, converted from packet addresses.
pub trait Af: ConnAddr {
    /// The address as a table key, if it is of this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;

    /// The address as IPv4 octets, if it is IPv4.
    fn as_v4(self) -> Option<[u8; 4]>;
}

impl Af for [u8; 4] {
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        }
    }

    #[inline]
    fn as_v4(self) -> Option<[u8; 4]> {
        Some(self)
    }
}

impl Af for [u8; 16] {
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }

    #[inline]
    fn as_v4(self) -> Option<[u8; 4]> {
        None
    }
}

/// Everything but the connection tables (so a table and the rest can be borrowed apart).
#[derive(Debug)]
struct Core {
    config: Config,
    /// The fwmark rules of `config`, indexed (`director/classify.rs`).
    classifier: classify::Classifier,
    settings: DirectorSettings,
    timeouts: StateTimeouts,
    services: Services,
    net: NetConfig,
    neigh: Neighbors,
    neigh_generation: u32,
    pool: FramePool,
    hops: Vec<Hop>,
    rng: Rng,
    drops: DropCounters,
    counters: EngineCounters,
    /// The defence strategies (`director/defense.rs`).
    defense: defense::Defense,
    frags: FragCache,
    /// The rate estimators' rows ([`DirectorSettings::estimator_rows`]): when the current
    /// period's first row is (was) due, and the next row to tick.
    est_period: Option<Instant>,
    est_row: u32,
    /// Where the schedulers' garbage-collection walk goes on (a service slot).
    sched_cursor: usize,
    /// Where the neighbour warm-up walk goes on (a service slot), while one runs.
    warm_cursor: Option<usize>,
    /// FTP passive-mode data connections expected (`director/ftp.rs`).
    ftp_expect: ftp::Expectations,
    /// FTP control connections whose replies were resized.
    ftp_ctl: ftp::Controls,
    /// Take the established-connection fast paths (off only in the differential tests,
    /// which compare them with the general path).
    fast_path: bool,
    /// The connection-sync master role, when on (`director/sync.rs`).
    sync: Option<sync::SyncMaster>,
    /// `sync_threshold`: what a synced entry's packet count starts from.
    sync_threshold: u32,
    /// Connection-sync counters.
    sync_counters: SyncCounters,
    /// The latest owned address another host claimed, until the daemon takes it.
    conflict: Option<IpAddr>,
    /// The SYN proxy's cookie secrets (from the seed).
    sp_key: synproxy::cookie::CookieKey,
    /// Client segments the SYN proxy holds until their real server answers.
    sp_held: synproxy::Held,
    /// SYN admission under overload (`director/shed.rs`).
    shed: shed::Shedder,
}

/// The director engine. See the module documentation.
#[derive(Debug)]
pub struct Director {
    v4: ConnTable<[u8; 4]>,
    v6: ConnTable<[u8; 16]>,
    core: Core,
}

impl Director {
    /// An engine for `net` with configuration `config`.
    pub fn new(
        net: NetConfig,
        config: &Config,
        settings: DirectorSettings,
    ) -> Result<Director, Vec<ConfigError>> {
        config.validate()?;
        let neigh_max = [settings.neigh_gc_thresh3, config.neigh_gc_thresh3]
            .into_iter()
            .find(|&n| n != 0)
            .unwrap_or(neigh::GC_THRESH3);
        let (size, bytes) = table_limits(config, &settings);
        let mut core = Core {
            config: Config::default(),
            classifier: classify::Classifier::default(),
            timeouts: StateTimeouts::from_model(&config.timeouts),
            services: Services::default(),
            net,
            neigh: Neighbors::new(neigh_max, settings.seed),
            neigh_generation: 1,
            pool: FramePool::new(settings.park_slots, settings.park_slot_size),
            hops: Vec::new(),
            rng: Rng::new(settings.seed ^ 0x9e37_79b9_7f4a_7c15),
            drops: DropCounters::default(),
            counters: EngineCounters::default(),
            defense: defense::Defense::new(&config.defense),
            frags: FragCache::new(64),
            est_period: None,
            est_row: 0,
            sched_cursor: 0,
            warm_cursor: None,
            ftp_expect: ftp::Expectations::new(256),
            ftp_ctl: ftp::Controls::new(256),
            conflict: None,
            fast_path: true,
            sync: None,
            sync_threshold: sync::DEFAULT_THRESHOLD,
            sync_counters: SyncCounters::default(),
            sp_key: synproxy::cookie::CookieKey::from_seed(settings.seed),
            sp_held: synproxy::Held::new(),
            shed: shed::Shedder::new(&config.syn_shed, settings.seed),
            settings,
        };
        core.apply(config.clone(), None);
        let seed = core.settings.seed;
        let buckets = core.settings.initial_buckets;
        Ok(Director {
            v4: ConnTable::growable(size, bytes, buckets, seed, config.table_full),
            v6: ConnTable::growable(
                size,
                bytes,
                buckets,
                seed.rotate_left(17),
                config.table_full,
            ),
            core,
        })
    }

    /// Apply a new configuration snapshot. Validation failure leaves the running
    /// configuration untouched. Established connections are kept; connections of removed
    /// real servers follow `expire_nodest_conn` on their next packet.
    pub fn apply(&mut self, config: &Config) -> Result<ApplyReport, Vec<ConfigError>> {
        config.validate()?;
        Ok(self.apply_valid(config.clone(), None).0)
    }

    /// [`Director::apply`] after its validation; the configuration replaced is returned.
    fn apply_valid(&mut self, config: Config, diff: Option<&diff::Diff>) -> (ApplyReport, Config) {
        let (size, bytes) = table_limits(&config, &self.core.settings);
        self.v4.set_limits(size, bytes);
        self.v6.set_limits(size, bytes);
        self.v4.set_policy(config.table_full);
        self.v6.set_policy(config.table_full);
        self.core.apply(config, diff)
    }

    /// Install a configuration validated beforehand ([`Prepared::new`], on any thread):
    /// what [`Director::apply`] does after its validation, so the caller's thread (a
    /// forwarding loop) only swaps the prepared configuration in.
    /// The configuration it replaces is returned (to be dropped off that thread too).
    ///
    /// Prepared [`against`](Prepared::against) this engine's running configuration (its
    /// [`generation`](Director::generation) unchanged since), only the services that
    /// differ are touched: the cost follows the change, not the configuration's size.
    pub fn install(&mut self, prepared: Prepared) -> (ApplyReport, Config) {
        let diff = prepared
            .diff
            .filter(|d| d.generation == self.core.services.generation());
        self.apply_valid(prepared.config, diff.as_ref())
    }

    /// The running configuration's generation: it moves with every [`Director::apply`] and
    /// [`Director::install`] (see [`Prepared::against`]).
    pub fn generation(&self) -> u64 {
        self.core.services.generation()
    }

    /// The running configuration.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// Virtual services, real servers and their counters.
    pub fn services(&self) -> &Services {
        &self.core.services
    }

    /// `ipvsadm -Z [service]`: zero the counters and rates of one service and its real
    /// servers, or of every service. Returns false (and changes nothing) when `service`
    /// names no running service.
    pub fn zero_counters(&mut self, service: Option<&ServiceKey>) -> bool {
        let svcs = &mut self.core.services;
        let id = match service {
            None => None,
            Some(k) => match svcs.find_key(k) {
                Some(id) => Some(id),
                None => return false,
            },
        };
        svcs.zero(id);
        true
    }

    /// `ipvsadm -Z` of every service in pieces: the services of at most `max` slots from
    /// `from` ([`Services::zero_from`]); where to go on from, or None when all are done.
    pub fn zero_counters_from(&mut self, from: usize, max: usize) -> Option<usize> {
        self.core.services.zero_from(from, max)
    }

    /// Virtual services and their counters, mutable: for tools and tests that set
    /// counters or connection numbers (golden listings). Configuration changes go through
    /// [`Director::apply`].
    pub fn services_mut(&mut self) -> &mut Services {
        &mut self.core.services
    }

    /// The IPv4 connection table.
    pub fn table_v4(&self) -> &ConnTable<[u8; 4]> {
        &self.v4
    }

    /// The IPv6 connection table.
    pub fn table_v6(&self) -> &ConnTable<[u8; 16]> {
        &self.v6
    }

    /// Drops by reason.
    pub fn drops(&self) -> &DropCounters {
        &self.core.drops
    }

    /// The worker's report for one round: whether a drain of a SYN ring returned a full
    /// batch (a backlog). Drives SYN admission's congested state (`director/shed.rs`).
    #[inline]
    pub fn syn_backlog(&mut self, now: Instant, backlog: bool) {
        self.core.shed.observe(now, backlog);
    }

    /// SYN admission under overload: settings, proven sources, state and counters.
    pub fn shed(&self) -> &shed::Shedder {
        &self.core.shed
    }

    /// Engine-wide counters.
    pub fn counters(&self) -> &EngineCounters {
        &self.core.counters
    }

    /// The network view (ports, routes, owned addresses).
    pub fn net(&self) -> &NetConfig {
        &self.core.net
    }

    /// Replace the network view (addresses taken over or released, routes changed).
    pub fn set_net(&mut self, net: NetConfig) {
        self.core.net = net;
        self.core.neigh_generation = self.core.neigh_generation.wrapping_add(1);
    }

    /// Set a permanent neighbour (`ip neigh replace … nud permanent`: never aged, evicted or
    /// switched by frames), e.g. from the daemon or a test.
    pub fn learn_neighbor(&mut self, ip: IpAddr, mac: [u8; 6], now: Instant) {
        let port = self.core.net.route(ip).map(|(p, _)| p).unwrap_or_default();
        if self.core.neigh.set_permanent(ip, mac, port, now) {
            self.core.act(NeighAction::Resolved { ip, mac }, now);
        }
    }

    /// The neighbour table (entries, states, counters).
    pub fn neighbors(&self) -> &Neighbors {
        &self.core.neigh
    }

    /// Queue gratuitous ARP (IPv4) for every owned address: what a director sends when it
    /// takes the VIPs over. Returns how many frames were queued.
    pub fn announce(&mut self, now: Instant) -> usize {
        let owned = self.core.net.owned.clone();
        let mut n = 0;
        for o in owned {
            if let (IpAddr::V4(ip), Some(port)) = (o.addr, self.core.net.port(o.port)) {
                let mac = o.mac.unwrap_or(port.mac);
                let repr = wire::ArpRepr::gratuitous(wire::EthernetAddress(mac), ip);
                let mut buf = [0u8; 64];
                if let Ok(len) = repr.emit_frame(&mut buf)
                    && self.core.pool.push(o.port, None, &buf[..len], now)
                {
                    n += 1;
                }
            } else if let IpAddr::V6(ip) = o.addr
                && let Some(port) = self.core.net.port(o.port)
            {
                let mut buf = [0u8; 96];
                let len = nd::unsolicited_na(&mut buf, o.mac.unwrap_or(port.mac), ip);
                if self.core.pool.push(o.port, None, &buf[..len], now) {
                    n += 1;
                }
            }
        }
        n
    }

    /// The owned address another host last claimed (an ARP packet or neighbour
    /// advertisement with it as sender from another MAC), taken once; see
    /// [`EngineCounters::address_conflicts`]. The daemon may defend it with [`Self::announce`].
    pub fn take_conflict(&mut self) -> Option<IpAddr> {
        self.core.conflict.take()
    }

    /// Take one frame the engine wants sent (ARP/ND requests, announcements, frames released
    /// after resolution) into `out`; returns its port and length.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<(PortId, usize)> {
        let r = self.core.pool.pop_ready(out);
        if r.is_some() {
            self.core.counters.tx += 1;
        }
        r
    }

    /// When [`Director::expire`] next has work (connection expiry, the next estimator tick).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let est = self
            .core
            .est_period
            .map(|p| self.core.est_due(p, self.core.est_row));
        [
            self.v4.next_expiry(),
            self.v6.next_expiry(),
            est,
            self.core.neigh.poll_timeout(),
            self.core.defense.next_tick(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Run the timers: expire connections (unbinding them from their real servers), drop
    /// parked frames that waited too long, run scheduler garbage collection. Returns the
    /// number of table entries removed (connections and persistence templates).
    pub fn expire(&mut self, now: Instant) -> usize {
        let budget = self.core.settings.expire_budget;
        let c = &mut self.core;
        let mut n = self.v4.expire(now, budget, |_, conn| {
            release(&mut c.services, &mut c.counters, conn.dest, conn.flags);
        });
        n += self.v6.expire(now, budget, |_, conn| {
            release(&mut c.services, &mut c.counters, conn.dest, conn.flags);
        });
        c.counters.synproxy.held_dropped += c.sp_held.expire(now) as u64;
        c.neigh_timers(now);
        n += self.defend(now);
        let c = &mut self.core;
        let dropped = c.pool.expire(now, c.settings.park_timeout);
        for _ in 0..dropped {
            c.drops.count(DropReason::NeighborPending);
        }
        // Lblc/lblcr's garbage collection (due once a minute) in chunks of services.
        let chunk = c.settings.walk_chunk.max(1);
        c.sched_cursor = c.services.expire_schedulers(c.sched_cursor, chunk, now);
        c.estimate(now);
        c.services.purge_trash();
        n
    }

    /// Turn the fast paths off or on (the differential tests).
    #[cfg(test)]
    fn set_fast_path(&mut self, on: bool) {
        self.core.fast_path = on;
    }

    /// Handle one frame that arrived on `port` at `now`.
    pub fn handle(&mut self, now: Instant, port: PortId, frame: &mut Frame<'_>) -> Verdict {
        let c = &mut self.core;
        c.counters.rx += 1;
        let fast = if c.fast_path {
            c.fast_v4(&mut self.v4, now, frame)
        } else {
            fast::Fast::General
        };
        let in_missed = match fast {
            fast::Fast::Done(v) => {
                if let Verdict::Transmit(_) = v {
                    c.counters.tx += 1;
                }
                return v;
            }
            fast::Fast::NoInConn(s) => Some(s),
            fast::Fast::General => None,
        };
        self.handle_general(now, port, frame, in_missed)
    }

    /// Everything but the fast path's frames: kept out of line so that [`Director::handle`]
    /// stays small (its values in registers).
    #[cold]
    #[inline(never)]
    fn handle_general(
        &mut self,
        now: Instant,
        port: PortId,
        frame: &mut Frame<'_>,
        in_missed: Option<wire::parse::SimpleV4>,
    ) -> Verdict {
        let c = &mut self.core;
        // A new connection of the common case (`fast_new.rs`).
        if let Some(s) = &in_missed
            && let Some(v) = c.new_conn_v4(&mut self.v4, now, frame, s)
        {
            if let Verdict::Transmit(_) = v {
                c.counters.tx += 1;
            }
            return v;
        }
        // The fast path's header checks passed (`simple_v4_head` is `simple_v4`): only
        // the `Parsed` value is left to build.
        let simple = in_missed.and_then(|s| wire::parse::parsed_simple_v4(frame.data(), &s));
        let parsed = match simple {
            Some(p) => Ok(p),
            None => wire::parse(frame.data()),
        };
        let p = match parsed {
            Ok(p) => p,
            Err(e) => {
                c.counters.malformed[e.index() % 16] += 1;
                return c.drop(DropReason::Malformed);
            }
        };
        let v = match p.l3 {
            L3Kind::Arp => c.handle_arp(now, port, frame),
            L3Kind::Ipv4 => c.handle_ip(&mut self.v4, now, port, frame, &p, simple.is_some()),
            L3Kind::Ipv6 => {
                if p.protocol == 58 && matches!(p.icmp, Some((133..=137, _))) {
                    c.handle_nd(now, port, frame, &p)
                } else {
                    c.handle_ip(&mut self.v6, now, port, frame, &p, false)
                }
            }
            L3Kind::Other => Verdict::Pass,
        };
        match v {
            Verdict::Transmit(_) => c.counters.tx += 1,
            Verdict::Pass => c.counters.passed += 1,
            _ => {}
        }
        v
    }
}

/// Queue a neighbour request for `ip` on `port`: broadcast (ARP) / to the solicited-node
/// group (ND), or a unicast probe to a known MAC (`NUD_PROBE`).
fn solicit(
    net: &NetConfig,
    pool: &mut FramePool,
    port: PortId,
    ip: IpAddr,
    unicast: Option<[u8; 6]>,
    now: Instant,
) {
    let Some(cfg) = net.port(port) else {
        return;
    };
    let mac = cfg.mac;
    let mut buf = [0u8; 96];
    let len = match ip {
        IpAddr::V4(t) => {
            let Some(IpAddr::V4(src)) = net.source_addr(port, Family::V4) else {
                return;
            };
            let repr = wire::ArpRepr::request(wire::EthernetAddress(mac), src, t);
            match repr.emit_frame(&mut buf) {
                Ok(n) => {
                    if let Some(dst) = unicast {
                        buf[..6].copy_from_slice(&dst);
                    }
                    n
                }
                Err(_) => return,
            }
        }
        IpAddr::V6(t) => {
            let Some(IpAddr::V6(src)) = net.source_addr(port, Family::V6) else {
                return;
            };
            nd::solicit(&mut buf, mac, src, t, unicast)
        }
    };
    pool.push(port, None, &buf[..len], now);
}

/// A connection left its real server: lower the count that held it (`ip_vs_unbind_dest()`).
fn unbind(services: &mut Services, dest: u32, flags: ConnFlags) {
    if let Some(d) = services.dest_mut(DestId(dest)) {
        if flags.has(ConnFlags::TEMPLATE) {
            d.persist_conns = d.persist_conns.saturating_sub(1);
        } else if flags.has(ConnFlags::INACTIVE) {
            d.inact_conns = d.inact_conns.saturating_sub(1);
        } else {
            d.active_conns = d.active_conns.saturating_sub(1);
        }
        d.after_unbind();
    }
}

/// An entry left the table: unbind it and count it as a connection or a template.
/// The entry and byte limits of each connection table: the configuration's, or the
/// engine's defaults where it says 0.
fn table_limits(config: &Config, settings: &DirectorSettings) -> (usize, usize) {
    let size = match config.conn_table_max {
        0 => settings.default_table_size,
        n => n,
    };
    let bytes = match config.conn_table_bytes {
        0 => settings.default_table_bytes,
        n => n,
    };
    (size, bytes)
}

fn release(services: &mut Services, counters: &mut EngineCounters, dest: u32, flags: ConnFlags) {
    unbind(services, dest, flags);
    if flags.has(ConnFlags::TEMPLATE) {
        counters.templates_removed += 1;
    } else {
        counters.conns_removed += 1;
    }
}

/// A connection was created on a real server: raise its count (`ip_vs_bind_dest()`).
#[inline(always)]
fn bind(services: &mut Services, dest: DestId, flags: ConnFlags) {
    if let Some(d) = services.dest_mut(dest) {
        if flags.has(ConnFlags::TEMPLATE) {
            d.persist_conns += 1;
        } else if flags.has(ConnFlags::INACTIVE) {
            d.inact_conns += 1;
        } else {
            d.active_conns += 1;
        }
        d.after_bind();
    }
}

/// What a new connection will be created as.
struct Scheduled {
    service: ServiceId,
    dest: DestId,
    template: Option<ConnId>,
}

impl Core {
    /// When row `row` of the estimator period starting at `period` is due.
    fn est_due(&self, period: Instant, row: u32) -> Instant {
        let rows = u64::from(self.settings.estimator_rows.max(1));
        let ns = Duration::from_secs(ESTIMATOR_PERIOD_SECS).as_nanos() as u64;
        period + Duration::from_nanos(ns * u64::from(row) / rows)
    }

    /// Tick the estimator rows that are due: every estimator once every 2 s
    /// (`ip_vs_est.c`), a row every 2 s / [`DirectorSettings::estimator_rows`]. Missed rows
    /// are caught up, at most 64 periods' worth; beyond that whole periods are skipped.
    fn estimate(&mut self, now: Instant) {
        let rows = self.settings.estimator_rows.max(1);
        let period = Duration::from_secs(ESTIMATOR_PERIOD_SECS);
        let mut p = *self.est_period.get_or_insert(now + period);
        let mut done = 0u64;
        while now >= self.est_due(p, self.est_row) {
            if done >= 64 * u64::from(rows) {
                let behind = now.saturating_since(self.est_due(p, self.est_row));
                let k = behind.as_nanos() as u64 / period.as_nanos() as u64 + 1;
                p = p + Duration::from_nanos(k * period.as_nanos() as u64);
                break;
            }
            self.services
                .estimate_row(self.est_row as usize, rows as usize);
            done += 1;
            self.est_row += 1;
            if self.est_row == rows {
                self.est_row = 0;
                p = p + period;
            }
        }
        self.est_period = Some(p);
    }

    fn drop(&mut self, r: DropReason) -> Verdict {
        self.drops.count(r);
        Verdict::Drop(r)
    }

    fn apply(&mut self, config: Config, diff: Option<&diff::Diff>) -> (ApplyReport, Config) {
        let report = match diff {
            Some(d) => self.services.apply_diff(&config, d),
            None => self.services.apply(&config),
        };
        let secure = self.timeouts.secure();
        self.timeouts = StateTimeouts::from_model(&config.timeouts);
        if self.classifier.rules() != config.fwmark_rules.as_slice() {
            self.classifier = classify::Classifier::new(&config.fwmark_rules);
        }
        self.timeouts.set_secure(secure);
        self.defense.configure(&config.defense);
        self.shed.configure(&config.syn_shed);
        let old = std::mem::replace(&mut self.config, config);
        // Room for every real server's id (ids are never reused: the bound of those ever
        // created, without walking the services).
        let n = self.services.dest_id_bound();
        if self.hops.len() < n {
            self.hops.resize(n, Hop::default());
        }
        // Methods or routes may have changed: every cached hop is stale.
        self.neigh_generation = self.neigh_generation.wrapping_add(1);
        (report, old)
    }

    /// Carry out what the neighbour table asks.
    fn act(&mut self, a: NeighAction, now: Instant) {
        match a {
            NeighAction::None => {}
            NeighAction::Resolved { ip, mac } => {
                self.neigh_generation = self.neigh_generation.wrapping_add(1);
                self.pool.resolve(ip, mac);
            }
            NeighAction::Lost => self.neigh_generation = self.neigh_generation.wrapping_add(1),
            NeighAction::Solicit { port, ip, unicast } => {
                solicit(&self.net, &mut self.pool, port, ip, unicast, now);
            }
        }
    }

    /// The neighbour table's NUD timers; entries of real servers' and routes' next hops are
    /// resolved before traffic needs them (as a kernel director's health checks resolve
    /// them: a backup taking over then forwards at once) and kept confirmed.
    fn neigh_timers(&mut self, now: Instant) {
        let (net, services) = (&self.net, &self.services);
        let (pool, generation) = (&mut self.pool, &mut self.neigh_generation);
        let needed = |ip: IpAddr| {
            net.routes.iter().any(|r| r.via == ip)
                || services.iter().any(|(_, s)| {
                    s.dest_ids.iter().any(|&d| {
                        services
                            .dest(d)
                            .and_then(|d| net.route(d.addr))
                            .is_some_and(|(_, hop)| hop == ip)
                    })
                })
        };
        self.neigh.tick(now, needed, |a| match a {
            NeighAction::Solicit { port, ip, unicast } => {
                solicit(net, pool, port, ip, unicast, now)
            }
            NeighAction::Lost | NeighAction::Resolved { .. } => {
                *generation = generation.wrapping_add(1);
            }
            NeighAction::None => {}
        });
        // The warm-up walks the services in chunks ([`DirectorSettings::walk_chunk`]), one
        // chunk per call, then the routes' next hops.
        if self.warm_cursor.is_none() && self.neigh.warm_due(now) {
            self.warm_cursor = Some(0);
        }
        let Some(from) = self.warm_cursor else {
            return;
        };
        let (net, services) = (&self.net, &self.services);
        let (neigh, pool, generation) =
            (&mut self.neigh, &mut self.pool, &mut self.neigh_generation);
        let mut warm = |(port, hop): (PortId, IpAddr)| {
            if neigh.get(hop).is_some() {
                return;
            }
            let (send, lost) = neigh.resolve(hop, port, now);
            if lost {
                *generation = generation.wrapping_add(1);
            }
            if send {
                solicit(net, pool, port, hop, None, now);
            }
        };
        let (chunk, next) = services.chunk(from, self.settings.walk_chunk.max(1));
        chunk
            .flat_map(|(_, s)| s.dest_ids.iter())
            .filter_map(|&d| services.dest(d).and_then(|d| net.route(d.addr)))
            .for_each(&mut warm);
        if next.is_none() {
            net.routes
                .iter()
                .filter_map(|r| net.route(r.via))
                .for_each(&mut warm);
        }
        self.warm_cursor = next;
    }

    /// Whether `addr` is one the director answers for or has on `port`: the senders of
    /// requests for it get a neighbour entry (`arp_process()`, `ndisc_recv_ns()`).
    fn is_mine(&self, addr: IpAddr, port: PortId) -> bool {
        self.net.owns(addr, port)
            || self
                .net
                .port(port)
                .is_some_and(|p| p.addrs.iter().any(|a| a.addr == addr))
    }

    /// ARP: answer who-has for owned addresses; the neighbour table hears the sender (an
    /// entry is created only for a request for one of our addresses, see `neigh.rs`).
    fn handle_arp(&mut self, now: Instant, port: PortId, frame: &mut Frame<'_>) -> Verdict {
        let Some(me) = self.net.port(port).map(|p| p.mac) else {
            return Verdict::Pass;
        };
        let l2 = frame.len().min(14);
        let Ok(arp) = wire::ArpPacket::new_checked(&frame.data()[l2..]) else {
            return self.drop(DropReason::Malformed);
        };
        let req = wire::ArpRepr::parse(&arp);
        let sender = IpAddr::V4(req.sender_ip);
        let target = IpAddr::V4(req.target_ip);
        if let Some(mine) = self.net.owner_mac(sender, port) {
            // Someone else claims our address (RFC 5227 §2.4): count it and let the daemon
            // decide whether to defend it. Never learn it as a neighbour.
            if req.sender_hw.0 != mine && req.sender_hw.0 != me {
                self.counters.address_conflicts += 1;
                self.conflict = Some(sender);
            }
        } else if !req.sender_ip.is_unspecified() {
            // arp_process(): a request for us creates the sender's entry; a reply to our
            // request (never a gratuitous one) resolves it; anything else only refreshes.
            let for_us = sender != target && self.is_mine(target, port);
            let kind = match req.operation {
                wire::ArpOperation::REQUEST if for_us => Heard::RequestForUs,
                wire::ArpOperation::REPLY if for_us => Heard::Reply,
                _ => Heard::Unsolicited,
            };
            let a = self.neigh.heard(sender, req.sender_hw.0, port, kind, now);
            self.act(a, now);
        }
        if req.operation == wire::ArpOperation::REQUEST
            && let Some(mine) = self.net.owner_mac(target, port)
        {
            let reply = wire::ArpRepr::reply(wire::EthernetAddress(mine), &req);
            let data = frame.data_mut();
            if reply.emit(&mut data[l2..]).is_err() {
                return self.drop(DropReason::Malformed);
            }
            rewrite::set_macs(data, req.sender_hw.0, mine);
            self.counters.neighbor_replies += 1;
            return Verdict::Transmit(port);
        }
        // Others' ARP is the host's business too (its own addresses).
        Verdict::Pass
    }

    /// IPv6 neighbour discovery: answer solicitations for owned addresses, learn from
    /// advertisements and solicitations.
    fn handle_nd(
        &mut self,
        now: Instant,
        port: PortId,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let Some(me) = self.net.port(port).map(|p| p.mac) else {
            return Verdict::Pass;
        };
        match nd::inspect(frame.data(), p) {
            Some(nd::Nd::Solicit { target, source_mac }) => {
                if let Some(mac) = source_mac
                    && self.net.owner_mac(p.src, port).is_none()
                {
                    // ndisc_recv_ns(): a solicitation for our address creates the sender's
                    // entry; others' only refresh one.
                    let kind = if self.is_mine(IpAddr::V6(target), port) {
                        Heard::RequestForUs
                    } else {
                        Heard::Unsolicited
                    };
                    let a = self.neigh.heard(p.src, mac, port, kind, now);
                    self.act(a, now);
                }
                if let Some(mine) = self.net.owner_mac(IpAddr::V6(target), port)
                    && nd::advertise_in_place(frame.data_mut(), p, mine, target)
                {
                    self.counters.neighbor_replies += 1;
                    return Verdict::Transmit(port);
                }
                Verdict::Pass
            }
            Some(nd::Nd::Advert {
                target,
                target_mac,
                solicited,
            }) => {
                let t = IpAddr::V6(target);
                match (self.net.owner_mac(t, port), target_mac) {
                    (Some(mine), Some(mac)) if mac != mine && mac != me => {
                        self.counters.address_conflicts += 1;
                        self.conflict = Some(t);
                    }
                    (Some(_), _) => {}
                    (None, Some(mac)) => {
                        // ndisc_recv_na(): a solicited advertisement answers our request;
                        // an unsolicited one only refreshes an entry.
                        let kind = if solicited {
                            Heard::Reply
                        } else {
                            Heard::Unsolicited
                        };
                        let a = self.neigh.heard(t, mac, port, kind, now);
                        self.act(a, now);
                    }
                    (None, None) => {}
                }
                Verdict::Pass
            }
            None => Verdict::Pass,
        }
    }

    /// Send a rewritten frame towards `ip` (the next hop) on `port`: fill in the MACs, or
    /// park the frame and ask for the neighbour.
    fn emit_to(
        &mut self,
        now: Instant,
        port: PortId,
        hop: IpAddr,
        frame: &mut Frame<'_>,
    ) -> Verdict {
        let Some(src) = self.net.port(port).map(|p| p.mac) else {
            return self.drop(DropReason::NoRoute);
        };
        match self.neigh.lookup(hop, now) {
            Some(mac) => {
                rewrite::set_macs(frame.data_mut(), mac, src);
                Verdict::Transmit(port)
            }
            None => self.park(now, port, hop, frame, src),
        }
    }

    fn park(
        &mut self,
        now: Instant,
        port: PortId,
        hop: IpAddr,
        frame: &mut Frame<'_>,
        src: [u8; 6],
    ) -> Verdict {
        rewrite::set_macs(frame.data_mut(), [0; 6], src);
        // A parked frame leaves through poll_transmit, which carries no checksum offload:
        // complete a partial checksum now.
        if matches!(frame.csum(), CsumStatus::Partial { .. }) && frame.finish_checksum().is_err() {
            return self.drop(DropReason::Malformed);
        }
        if !self.pool.push(port, Some(hop), frame.data(), now) {
            return self.drop(DropReason::NeighborPending);
        }
        self.counters.parked += 1;
        // A new resolution broadcasts its first request; the table's timers retransmit.
        let (send, lost) = self.neigh.resolve(hop, port, now);
        if lost {
            self.neigh_generation = self.neigh_generation.wrapping_add(1);
        }
        if send {
            solicit(&self.net, &mut self.pool, port, hop, None, now);
        }
        Verdict::Consumed
    }

    /// Egress port and MAC of a real server, from the per-server cache.
    fn dest_hop(&mut self, dest: DestId, addr: IpAddr) -> Result<(PortId, [u8; 6]), HopMiss> {
        let i = dest.0 as usize;
        if let Some(h) = self.hops.get(i)
            && h.generation == self.neigh_generation
        {
            return Ok((h.port, h.mac()));
        }
        let Some((port, hop)) = self.net.route(addr) else {
            return Err(None);
        };
        match self.neigh.lookup_hop(hop) {
            Some(mac) => {
                if i >= self.hops.len() {
                    self.hops.resize(i + 1, Hop::default());
                }
                let nat_v4 = match self.services.dest(dest) {
                    Some(d)
                        if self.services.dest_is_live(dest)
                            && d.addr == addr
                            && matches!(d.method, ForwardMethod::Masq | ForwardMethod::FullNat) =>
                    {
                        match d.addr {
                            IpAddr::V4(a) => Some(a.octets()),
                            IpAddr::V6(_) => None,
                        }
                    }
                    _ => None,
                };
                let src_mac = self.net.port(port).map(|p| p.mac).unwrap_or_default();
                let mut macs = [0; 12];
                macs[..6].copy_from_slice(&mac);
                macs[6..].copy_from_slice(&src_mac);
                self.hops[i] = Hop {
                    generation: self.neigh_generation,
                    port,
                    macs,
                    nat_v4,
                };
                Ok((port, mac))
            }
            None => Err(Some((port, hop))),
        }
    }

    /// Send a frame to a real server (after its rewrite).
    fn emit_to_dest(
        &mut self,
        now: Instant,
        dest: DestId,
        addr: IpAddr,
        frame: &mut Frame<'_>,
    ) -> Verdict {
        match self.dest_hop(dest, addr) {
            Ok((port, mac)) => {
                let src = self.net.port(port).map(|p| p.mac).unwrap_or_default();
                rewrite::set_macs(frame.data_mut(), mac, src);
                Verdict::Transmit(port)
            }
            Err(Some((port, hop))) => {
                let src = self.net.port(port).map(|p| p.mac).unwrap_or_default();
                self.park(now, port, hop, frame, src)
            }
            Err(None) => self.drop(DropReason::NoRoute),
        }
    }

    /// Whether the L4 checksum stays partial through a rewrite: only when the I/O layer
    /// can transmit partial checksums; otherwise a partial one is completed first (an
    /// incremental update of a pseudo-header sum would not be a checksum).
    fn keep_partial(&mut self, frame: &mut Frame<'_>) -> bool {
        if !matches!(frame.csum(), CsumStatus::Partial { .. }) {
            return false;
        }
        if self.settings.offload_partial_csum {
            return true;
        }
        // A frame the parser accepted always finishes; if not, it goes out as it came.
        let _ = frame.finish_checksum();
        false
    }

    /// NAT-rewrite the IP packet of a frame (addresses, ports, checksums).
    fn nat(
        &mut self,
        frame: &mut Frame<'_>,
        p: &Parsed,
        rw: &NatRewrite,
    ) -> Result<(), DropReason> {
        if p.protocol == wire::ip_proto::SCTP && !p.frag.is_fragment {
            // A CRC32c is never left to an offload that would write an Internet checksum.
            // The rewrite computes it, once, when the frame is checksum-partial or a port
            // changes (`sctp_snat_handler()`: "Only update csum if we really have to").
            let partial = matches!(frame.csum(), CsumStatus::Partial { .. });
            wire::nat::rewrite_parsed(frame.data_mut(), p, partial, rw)
                .map_err(|_| DropReason::Malformed)?;
            if partial {
                frame.set_csum(CsumStatus::Complete);
            }
            return Ok(());
        }
        let partial = if p.protocol == wire::ip_proto::SCTP {
            // A fragment's CRC32c cannot be computed here (it covers the whole packet).
            let _ = frame.finish_checksum();
            false
        } else {
            self.keep_partial(frame)
        };
        wire::nat::rewrite_parsed(frame.data_mut(), p, partial, rw)
            .map_err(|_| DropReason::Malformed)
    }

    /// IPv4 or IPv6, one family's table. `in_missed`: the fast path already looked the
    /// packet's in key up and found no connection.
    fn handle_ip<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        port: PortId,
        frame: &mut Frame<'_>,
        p: &Parsed,
        in_missed: bool,
    ) -> Verdict {
        let icmp = matches!(p.protocol, 1 | 58);
        if icmp {
            return self.handle_icmp(t, now, port, frame, p);
        }
        if p.protocol != 6 && p.protocol != 17 && p.protocol != wire::ip_proto::SCTP {
            return Verdict::Pass;
        }
        if p.frag.is_later() {
            return match self.frags.find(p, now) {
                Some((id, way)) => self.forward(t, now, id, way, frame, p),
                None if self.is_ours(p) => self.drop(DropReason::FragmentUnknown),
                None => Verdict::Pass,
            };
        }
        let (Some(src), Some(dst)) = (A::from_ip(p.src), A::from_ip(p.dst)) else {
            return Verdict::Pass;
        };
        let in_key = InKey {
            protocol: p.protocol,
            caddr: src,
            cport: p.src_port,
            vaddr: dst,
            vport: p.dst_port,
        };
        // `lookup_in` never returns a persistence template.
        let hit = (!in_missed).then(|| t.lookup_in(&in_key, now)).flatten();
        let hit = match hit {
            Some(id) if self.reuse_for_new_connection(t, id, p) => None,
            other => other,
        };
        let (id, way) = if let Some(id) = hit {
            (id, Way::In)
        } else if let Some(id) = t.lookup_out(
            &OutKey {
                protocol: p.protocol,
                saddr: src,
                sport: p.src_port,
                daddr: dst,
                dport: p.dst_port,
            },
            now,
        ) {
            (id, Way::Out)
        } else {
            return self.new_connection(t, now, port, frame, p, &in_key);
        };
        self.remember_fragment(p, id, way, now);
        self.forward(t, now, id, way, frame, p)
    }

    /// `conn_reuse_mode` (`ip_vs_in()`, `is_new_conn_expected()`): a SYN (without ACK) on
    /// an entry in TIME_WAIT or CLOSE that controls nothing and is not controlled starts a
    /// new connection: the old entry is expired now and the SYN scheduled afresh (mode 1);
    /// with bit 2, also on a FIN_WAIT entry of a DR/TUN connection. For SCTP
    /// (`is_new_conn()`, `is_new_conn_expected()`): an INIT on a CLOSED entry. Returns true
    /// when the entry was expired.
    fn reuse_for_new_connection<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        id: ConnId,
        p: &Parsed,
    ) -> bool {
        let mode = self.config.switches.conn_reuse_mode;
        if mode == 0 || p.frag.is_fragment {
            return false;
        }
        let expected = match p.protocol {
            6 => {
                let f = p.tcp_flags;
                if !f.contains(wire::TcpFlags::SYN)
                    || f.contains(wire::TcpFlags::ACK)
                    || f.contains(wire::TcpFlags::RST)
                {
                    return false;
                }
                let Some(c) = t.get(id) else {
                    return false;
                };
                c.control.is_none()
                    && match c.tcp_state() {
                        Some(TcpState::TimeWait | TcpState::Close) => true,
                        Some(TcpState::FinWait) => {
                            mode & 2 != 0 && c.flags.has(ConnFlags::NO_OUTPUT)
                        }
                        _ => false,
                    }
            }
            wire::ip_proto::SCTP => {
                if p.sctp.map(|c| c.kind) != Some(wire::sctp::chunk::INIT) {
                    return false;
                }
                let Some(c) = t.get(id) else {
                    return false;
                };
                c.control.is_none() && c.state == SctpState::Closed as u8
            }
            _ => return false,
        };
        if !expected {
            return false;
        }
        if let Some(old) = t.remove(id) {
            release(&mut self.services, &mut self.counters, old.dest, old.flags);
        }
        true
    }

    /// Whether a packet is addressed to something the director serves (a VIP or an owned
    /// address).
    fn is_ours(&self, p: &Parsed) -> bool {
        self.services.is_vip(p.dst) || self.net.owned.iter().any(|o| o.addr == p.dst)
    }

    /// A packet without a connection: schedule it if a virtual service takes it.
    fn new_connection<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        port: PortId,
        frame: &mut Frame<'_>,
        p: &Parsed,
        in_key: &InKey<A>,
    ) -> Verdict {
        if p.protocol == 6
            && !self.ftp_expect.is_empty()
            && p.tcp_flags.contains(wire::TcpFlags::SYN)
            && let Some(e) = self.ftp_expect.take(p.src, p.dst, p.dst_port, now.0)
        {
            return self.ftp_data_connection(t, now, frame, p, in_key, &e);
        }
        let mut fwmark = None;
        let svc_id = match self.services.find_addr(p.protocol, p.dst, p.dst_port) {
            Some(s) => s,
            None => {
                let family = Family::of(&p.dst);
                let found = self
                    .classifier
                    .classify(p.protocol, p.src, p.dst, p.dst_port)
                    .and_then(|m| {
                        fwmark = Some(m);
                        self.services.find_mark(m, family)
                    });
                match found {
                    Some(s) => s,
                    None => return Verdict::Pass,
                }
            }
        };
        // SYN admission under overload (`director/shed.rs`): before the cookie, scheduling
        // and the entry.
        if p.protocol == 6
            && self.shed.congested()
            && p.tcp_flags.0
                & (wire::TcpFlags::SYN.0 | wire::TcpFlags::ACK.0 | wire::TcpFlags::RST.0)
                == wire::TcpFlags::SYN.0
            && !self.shed.admit(now, p.src)
        {
            return self.drop(DropReason::SynShed);
        }
        // The SYN proxy answers SYNs itself; only a valid cookie ACK goes on.
        let mut opening = None;
        if p.protocol == 6 && self.synproxy_on(svc_id) {
            match self.synproxy_gate(now, port, frame, p) {
                synproxy::Gate::Answered(v) => return v,
                synproxy::Gate::Open(o) => opening = Some(o),
            }
        }
        // `ip_vs_in()`: only a SYN (without RST) opens a TCP connection, unless sloppy_tcp.
        if p.protocol == 6 && opening.is_none() && !self.config.switches.sloppy_tcp {
            let f = p.tcp_flags;
            if !f.contains(wire::TcpFlags::SYN) || f.contains(wire::TcpFlags::RST) {
                return self.drop(DropReason::NotSyn);
            }
        }
        // `sctp_conn_schedule()`: a packet without a chunk header is dropped; only a first
        // chunk INIT opens an SCTP association (rvs has no `sloppy_sctp`). The kernel hands
        // other packets to its own stack; rvs keeps the director's stack out of VIP traffic
        // and drops them, as it does TCP segments without SYN.
        if p.protocol == wire::ip_proto::SCTP && !p.frag.is_later() {
            match p.sctp.map(|c| c.kind) {
                None => return self.drop(DropReason::Malformed),
                Some(wire::sctp::chunk::INIT) => {}
                Some(_) => return self.drop(DropReason::NotInit),
            }
        }
        // `drop_packet`: `ip_vs_todrop()` in `tcp_conn_schedule()` / `udp_conn_schedule()` /
        // `sctp_conn_schedule()`, before scheduling.
        if self.defense.state.todrop() {
            return self.drop(DropReason::DropPacket);
        }
        let sched = match self.schedule(t, now, svc_id, p, fwmark) {
            Ok(s) => s,
            Err(r) => return self.drop(r),
        };
        self.create(t, now, frame, p, in_key, sched, fwmark, opening)
    }

    /// A new connection's entry, its real server's counts and its first packet, once
    /// scheduled ([`Core::new_connection`]'s second half).
    #[allow(clippy::too_many_arguments)]
    fn create<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        frame: &mut Frame<'_>,
        p: &Parsed,
        in_key: &InKey<A>,
        sched: Scheduled,
        fwmark: Option<u32>,
        opening: Option<synproxy::Opening>,
    ) -> Verdict {
        let svc_id = sched.service;
        let Some(svc) = self.services.get(svc_id) else {
            return self.drop(DropReason::NoService);
        };
        let one_packet = svc.cfg.one_packet && (p.protocol == 17 || fwmark.is_some());
        let Some(dest) = self.services.dest(sched.dest) else {
            return self.drop(DropReason::NoRealServer);
        };
        let (daddr_ip, method) = (dest.addr, dest.method);
        let dport = if dest.port != 0 {
            dest.port
        } else {
            p.dst_port
        };
        let mut flags = ConnFlags::new_connection(&method);
        if fwmark.is_some() {
            flags = flags.with(ConnFlags::FWMARK);
        }
        if one_packet {
            flags = flags.with(ConnFlags::ONE_PACKET);
        }
        // Tunnelling may cross families: the table is the client's family, so the real
        // server's address is stored only when it fits; the egress uses the Dest's address.
        let daddr = A::from_ip(daddr_ip).unwrap_or_default();
        let local = if method == ForwardMethod::FullNat {
            match self.alloc_local(t, now, p, daddr_ip, dport) {
                Some(l) => Some(l),
                None => return self.drop(DropReason::NoLocalPort),
            }
        } else {
            None
        };
        let new = NewConn {
            protocol: p.protocol,
            caddr: in_key.caddr,
            cport: in_key.cport,
            vaddr: in_key.vaddr,
            vport: in_key.vport,
            daddr,
            dport,
            local,
            dest: sched.dest.0,
            service: sched.service.0,
            state: match p.protocol {
                6 => TcpState::None as u8,
                wire::ip_proto::SCTP => SctpState::None as u8,
                _ => UDP_STATE,
            },
            flags,
            timeout: match p.protocol {
                6 => self.timeouts.tcp(TcpState::None),
                wire::ip_proto::SCTP => self.timeouts.sctp(SctpState::None),
                _ => self.timeouts.udp(),
            },
            control: sched.template,
        };
        if one_packet {
            // `IP_VS_CONN_F_ONE_PACKET`: scheduled, counted, forwarded, never hashed; its
            // template is synced all the same.
            self.count_new(sched.service, sched.dest);
            self.count_packet(sched.dest, Way::In, p);
            if self.sync.is_some()
                && let Some(tpl) = sched.template
            {
                self.sync_one_packet(t, tpl);
            }
            return self.rewrite_in(now, sched.dest, &new_as_view(&new), frame, p);
        }
        let inserted = match t.insert(new, now) {
            Ok(i) => i,
            Err(_) => return self.drop(DropReason::TableFull),
        };
        if let Some(ev) = inserted.evicted {
            release(&mut self.services, &mut self.counters, ev.dest, ev.flags);
        }
        bind(&mut self.services, sched.dest, flags);
        self.count_new(sched.service, sched.dest);
        if let Some(o) = opening {
            return self.synproxy_open(t, now, inserted.id, frame, p, o);
        }
        self.remember_fragment(p, inserted.id, Way::In, now);
        self.forward(t, now, inserted.id, Way::In, frame, p)
    }

    /// Remember where the first fragment of a datagram went, for the later ones.
    fn remember_fragment(&mut self, p: &Parsed, conn: ConnId, way: Way, now: Instant) {
        if p.frag.is_first() {
            self.frags.insert(FragEntry {
                src: p.src,
                dst: p.dst,
                ident: p.frag.ident,
                protocol: p.protocol,
                conn,
                way,
                seen: now,
            });
        }
    }

    /// Count a packet on its real server and service (`ip_vs_in_stats()` /
    /// `ip_vs_out_stats()`: bytes are the IP packet's length).
    fn count_packet(&mut self, dest: DestId, way: Way, p: &Parsed) {
        self.count_packet_len(dest, way, p.l3_len);
    }

    /// [`Core::count_packet`] of an IP packet of `l3_len` bytes.
    #[inline(always)]
    fn count_packet_len(&mut self, dest: DestId, way: Way, l3_len: u16) {
        self.services
            .count_packet(dest, way == Way::In, u64::from(l3_len));
    }

    #[inline(always)]
    fn count_new(&mut self, svc: ServiceId, dest: DestId) {
        self.counters.conns_created += 1;
        if let Some(d) = self.services.stats_mut(dest).0 {
            d.count_conn();
        }
        if let Some(s) = self.services.get_mut(svc) {
            s.stats.count_conn();
        }
    }

    /// Pick the real server for a new connection: persistence first
    /// (`ip_vs_sched_persist()`), else the service's scheduler (`ip_vs_schedule()`).
    fn schedule<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        svc_id: ServiceId,
        p: &Parsed,
        fwmark: Option<u32>,
    ) -> Result<Scheduled, DropReason> {
        let expire_quiescent = self.config.switches.expire_quiescent_template;
        let Some(svc) = self.services.get_mut(svc_id) else {
            return Err(DropReason::NoService);
        };
        let input = SchedInput {
            caddr: p.src,
            cport: p.src_port,
            daddr: p.dst,
            dport: p.dst_port,
        };
        let Some(persist) = svc.cfg.persistence else {
            let pos = svc
                .sched
                .schedule(&svc.dests, &input, now, &mut self.rng)
                .ok_or(DropReason::NoRealServer)?;
            return Ok(Scheduled {
                service: svc_id,
                dest: svc.dest_ids[pos],
                template: None,
            });
        };
        let svc_port = match svc.cfg.key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        let masked = mask_addr(p.src, persist.prefix);
        let Some(caddr) = A::from_ip(masked) else {
            return Err(DropReason::Malformed);
        };
        let Some(vaddr) = A::from_ip(p.dst) else {
            return Err(DropReason::Malformed);
        };
        // The template key (`ip_vs_sched_persist()`): <proto, caddr/mask, 0, vaddr, vport>
        // with vport 0 for FTP (21) and port-zero services; fwmark services key on
        // <IPPROTO_IP, caddr/mask, 0, mark, 0>.
        let key = if p.dst_port == svc_port {
            InKey {
                protocol: p.protocol,
                caddr,
                cport: 0,
                vaddr,
                vport: if svc_port != 21 { p.dst_port } else { 0 },
            }
        } else if let Some(mark) = fwmark {
            InKey::fwmark_template(caddr, mark)
        } else {
            InKey {
                protocol: p.protocol,
                caddr,
                cport: 0,
                vaddr,
                vport: 0,
            }
        };
        let timeout = Duration::from_secs(u64::from(persist.timeout));
        if let Some(ct) = t.lookup_template(&key, now)
            && let Some(c) = t.get(ct)
        {
            // `ip_vs_check_template()`: reuse while the server is available (and, with
            // expire_quiescent_template, not quiesced).
            let id = DestId(c.dest);
            let ok = self.services.dest_is_live(id)
                && self
                    .services
                    .dest(id)
                    .is_some_and(|d| d.available && !(expire_quiescent && d.weight == 0));
            if ok {
                t.touch(ct, now, timeout);
                return Ok(Scheduled {
                    service: svc_id,
                    dest: id,
                    template: Some(ct),
                });
            }
            // Invalid: expire it now (its counts go with it).
            if let Some(old) = t.remove(ct) {
                release(&mut self.services, &mut self.counters, old.dest, old.flags);
            }
        }
        let svc = self.services.get_mut(svc_id).ok_or(DropReason::NoService)?;
        let pos = svc
            .sched
            .schedule(&svc.dests, &input, now, &mut self.rng)
            .ok_or(DropReason::NoRealServer)?;
        let dest_id = svc.dest_ids[pos];
        let dest = &svc.dests[pos];
        let tdport = if p.dst_port == svc_port { dest.port } else { 0 };
        let new = NewConn {
            protocol: key.protocol,
            caddr: key.caddr,
            cport: 0,
            vaddr: key.vaddr,
            vport: key.vport,
            daddr: A::from_ip(dest.addr).unwrap_or_default(),
            dport: tdport,
            local: None,
            dest: dest_id.0,
            service: svc_id.0,
            state: 0,
            flags: ConnFlags(ConnFlags::TEMPLATE),
            timeout,
            control: None,
        };
        let ins = t.insert(new, now).map_err(|_| DropReason::TableFull)?;
        if let Some(ev) = ins.evicted {
            release(&mut self.services, &mut self.counters, ev.dest, ev.flags);
        }
        bind(&mut self.services, dest_id, ConnFlags(ConnFlags::TEMPLATE));
        self.counters.templates_created += 1;
        Ok(Scheduled {
            service: svc_id,
            dest: dest_id,
            template: Some(ins.id),
        })
    }

    /// FullNAT: a local address of the real server's family and a free port, such that the
    /// reply key <real server, local address:port> is unused.
    fn alloc_local<A: Af>(
        &mut self,
        t: &ConnTable<A>,
        now: Instant,
        p: &Parsed,
        rs: IpAddr,
        rport: u16,
    ) -> Option<(A, u16)> {
        let pool = &self.config.local_pool;
        let (lo, hi) = pool.port_range;
        if lo == 0 || lo > hi {
            return None;
        }
        let rs = A::from_ip(rs)?;
        let span = u32::from(hi - lo) + 1;
        let candidates = pool.addrs.iter().filter_map(|a| A::from_ip(*a));
        let n = candidates.clone().count();
        if n == 0 {
            return None;
        }
        let start = self.rng.next_u32();
        for attempt in 0..32u32 {
            let r = start.wrapping_add(attempt.wrapping_mul(0x9e37_79b9));
            let laddr = candidates.clone().nth((r as usize) % n)?;
            let lport = lo + ((r >> 8) % span) as u16;
            let key = OutKey {
                protocol: p.protocol,
                saddr: rs,
                sport: rport,
                daddr: laddr,
                dport: lport,
            };
            if t.lookup_out(&key, now).is_none() {
                return Some((laddr, lport));
            }
        }
        None
    }

    /// A packet of an existing connection: state, counters, rewrite, egress.
    fn forward<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        id: ConnId,
        way: Way,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let Some(conn) = t.hot(id) else {
            return self.drop(DropReason::NoDest);
        };
        // A SYN-proxied connection: sequence translation, or the handshake with the real
        // server (`director/synproxy`).
        let proxied;
        let p = if conn.proxied && p.protocol == 6 && !p.frag.is_later() {
            match self.synproxy_step(t, now, id, way, frame, p) {
                synproxy::Step::Done(v) => return v,
                synproxy::Step::Go(np) => {
                    proxied = np;
                    &proxied
                }
            }
        } else {
            p
        };
        let dest = DestId(conn.dest);
        // A valid fast hop implies a live real server (see `Hop::nat_v4`).
        let fast = self.fast_hop(dest);
        if fast.is_none() && !self.services.dest_is_live(dest) {
            // The real server was removed (`expire_nodest_conn`).
            if self.config.switches.expire_nodest_conn
                && let Some(old) = t.remove(id)
            {
                release(&mut self.services, &mut self.counters, old.dest, old.flags);
            }
            return self.drop(DropReason::NoDest);
        }
        if !p.frag.is_later() {
            if p.protocol == 6 {
                let dir = if way == Way::In {
                    Direction::Input
                } else {
                    Direction::Output
                };
                let flags = crate::conn::state::TcpFlags(p.tcp_flags.0);
                if let Some(tr) = t.tcp_transition(id, dir, flags, &self.timeouts, now) {
                    if let Some(a) = tr.activity {
                        self.activity(dest, a);
                    }
                    // The client's ACK completed the handshake: its source is proven.
                    if way == Way::In && shed::completes(&tr) {
                        self.shed.prove(p.src, now);
                    }
                }
            } else if p.protocol == wire::ip_proto::SCTP {
                let dir = if way == Way::In {
                    Direction::Input
                } else {
                    Direction::Output
                };
                // `set_sctp_state()`: no chunk header, no change (state and timer kept).
                if let Some(ev) = p.sctp.map(SctpEvent::of_first)
                    && let Some(tr) = t.sctp_transition(id, dir, ev, &self.timeouts, now)
                    && let Some(a) = tr.activity
                {
                    self.activity(dest, a);
                }
            } else {
                t.touch_secs(id, now, self.timeouts.udp_secs());
            }
        }
        self.count_packet(dest, way, p);
        // `ip_vs_in()`: each client datagram counts towards connection sync.
        if self.sync.is_some() && way == Way::In && !p.frag.is_later() {
            self.sync_in(t, id);
        }
        if way == Way::In
            && let Some(hop) = fast
            && let Some(v) = fast_nat_in(self.settings.offload_partial_csum, &hop, &conn, frame, p)
        {
            return v;
        }
        let view = hot_view(&conn);
        let v = match way {
            Way::In => self.rewrite_in(now, dest, &view, frame, p),
            Way::Out => self.rewrite_out(now, &view, frame, p),
        };
        // The FTP helper (`ip_vs_ftp.c`) works on NAT control connections of port 21.
        if conn.vport == ftp::FTP_PORT
            && p.protocol == 6
            && !p.frag.is_fragment
            && matches!(v, Verdict::Transmit(_))
            && self
                .services
                .dest(dest)
                .is_some_and(|d| d.method == ForwardMethod::Masq)
        {
            self.ftp_control(
                t,
                now,
                id,
                &view,
                dest,
                self.services.dest_service(dest).map_or(0, |s| s.0),
                way,
                frame,
                p,
            );
        }
        v
    }

    /// A passive-mode FTP data connection the control channel announced: to the control
    /// connection's real server, whatever the scheduler would say (`IP_VS_CONN_F_NO_CPORT`
    /// entries of `ip_vs_ftp_out()`).
    fn ftp_data_connection<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        frame: &mut Frame<'_>,
        p: &Parsed,
        in_key: &InKey<A>,
        e: &ftp::Expect,
    ) -> Verdict {
        let Some(daddr) = A::from_ip(e.daddr) else {
            return self.drop(DropReason::NoDest);
        };
        let flags = ConnFlags::new_connection(&ForwardMethod::Masq);
        let new = NewConn {
            protocol: 6,
            caddr: in_key.caddr,
            cport: in_key.cport,
            vaddr: in_key.vaddr,
            vport: in_key.vport,
            daddr,
            dport: e.dport,
            local: None,
            dest: e.dest,
            service: e.service,
            state: TcpState::None as u8,
            flags,
            timeout: self.timeouts.tcp(TcpState::None),
            control: None,
        };
        let inserted = match t.insert(new, now) {
            Ok(i) => i,
            Err(_) => return self.drop(DropReason::TableFull),
        };
        if let Some(ev) = inserted.evicted {
            release(&mut self.services, &mut self.counters, ev.dest, ev.flags);
        }
        bind(&mut self.services, DestId(e.dest), flags);
        self.count_new(ServiceId(e.service), DestId(e.dest));
        self.forward(t, now, inserted.id, Way::In, frame, p)
    }

    /// The FTP helper on a NAT control connection (`ip_vs_ftp_in()` / `ip_vs_ftp_out()`),
    /// after the NAT rewrite: client → server segments get their acknowledgement shifted
    /// back and a `PORT`/`EPRT` creates the entry the real server's active data connection
    /// (from port 20) will match; server → client segments get their sequence shifted, a
    /// `227` reply its address rewritten to the VIP, and `227`/`229` an expectation for the
    /// client's passive data connection. Malformed or unexpected text is left alone.
    #[allow(clippy::too_many_arguments)]
    fn ftp_control<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        id: ConnId,
        c: &ConnView,
        dest: DestId,
        service: u32,
        way: Way,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) {
        let l3 = usize::from(p.l3_offset);
        let l4 = usize::from(p.l4_offset);
        let end = l3 + usize::from(p.l3_len);
        let data = frame.data();
        if data.len() < end || end < l4 + 20 {
            return;
        }
        let thl = usize::from(data[l4 + 12] >> 4) * 4;
        if l4 + thl > end {
            return;
        }
        let rd32 =
            |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let seq = rd32(data, l4 + 4);
        let ack = rd32(data, l4 + 8);
        let state = self.ftp_ctl.get(id.index(), c.caddr, c.cport);
        let payload = &data[l4 + thl..end];
        let partial = matches!(frame.csum(), CsumStatus::Partial { .. });
        match way {
            Way::In => {
                if let Some(ftp::Announce::Active(f)) = ftp::inspect_command(payload) {
                    self.ftp_active(t, now, c, dest, service, &f);
                }
                if let Some(st) = state
                    && st.active()
                {
                    set_seq_field(frame, l4, 8, st.in_ack(ack), partial);
                }
            }
            Way::Out => {
                let new_seq = state.map_or(seq, |st| st.out_seq(seq));
                let announce = ftp::inspect_reply(payload);
                let mut diff = 0i32;
                match announce {
                    Some(ftp::Announce::Passive(f)) => {
                        if let (IpAddr::V4(vip), Some(addr)) = (c.vaddr, f.addr) {
                            self.ftp_expect.add(ftp::Expect {
                                caddr: c.caddr,
                                vaddr: c.vaddr,
                                vport: f.port,
                                daddr: addr,
                                dport: f.port,
                                dest: dest.0,
                                service,
                                until: now.0 + ftp::EXPECT_TIMEOUT_SECS * 1_000_000_000,
                            });
                            let mut text = [0u8; 24];
                            let n = ftp::tuple_text(vip, f.port, &mut text);
                            match splice(
                                frame,
                                l3,
                                l4 + thl + f.start,
                                l4 + thl + f.end,
                                &text[..n],
                            ) {
                                Some(d) => diff = d,
                                None => return,
                            }
                        }
                    }
                    Some(ftp::Announce::ExtendedPassive(f)) => {
                        if let Some(addr) = self.services.dest(dest).map(|d| d.addr) {
                            self.ftp_expect.add(ftp::Expect {
                                caddr: c.caddr,
                                vaddr: c.vaddr,
                                vport: f.port,
                                daddr: addr,
                                dport: f.port,
                                dest: dest.0,
                                service,
                                until: now.0 + ftp::EXPECT_TIMEOUT_SECS * 1_000_000_000,
                            });
                        }
                    }
                    _ => {}
                }
                if diff != 0 {
                    let mut st = state.unwrap_or_default();
                    st.record(seq, diff);
                    self.ftp_ctl.set(id.index(), c.caddr, c.cport, st);
                }
                if diff != 0 {
                    // Length and payload changed: write the sequence, recompute the checksums.
                    let d = frame.data_mut();
                    d[l4 + 4..l4 + 8].copy_from_slice(&new_seq.to_be_bytes());
                    let l3_end = (l3 as i64 + i64::from(p.l3_len) + i64::from(diff)) as usize;
                    if let Some(pkt) = d.get_mut(l3..l3_end) {
                        let _ = wire::fill_l4_checksum(pkt);
                    }
                    frame.set_csum(CsumStatus::Complete);
                } else if new_seq != seq {
                    set_seq_field(frame, l4, 4, new_seq, partial);
                }
            }
        }
    }

    /// A `PORT`/`EPRT` command: the real server will connect from its port 20 (the control
    /// port − 1) to the announced address and port; create that connection's entry so its
    /// packets find it by the out key (`ip_vs_ftp_in()`).
    fn ftp_active<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        c: &ConnView,
        dest: DestId,
        service: u32,
        f: &ftp::Found,
    ) {
        let Some(to) = f.addr.and_then(A::from_ip) else {
            return;
        };
        let (Some(vaddr), Some(daddr)) = (
            A::from_ip(c.vaddr),
            self.services.dest(dest).and_then(|d| A::from_ip(d.addr)),
        ) else {
            return;
        };
        let key = InKey {
            protocol: 6,
            caddr: to,
            cport: f.port,
            vaddr,
            vport: c.vport.wrapping_sub(1),
        };
        if t.lookup_in(&key, now).is_some() {
            return;
        }
        let flags = ConnFlags::new_connection(&ForwardMethod::Masq);
        let new = NewConn {
            protocol: 6,
            caddr: to,
            cport: f.port,
            vaddr,
            vport: c.vport.wrapping_sub(1),
            daddr,
            dport: c.dport.wrapping_sub(1),
            local: None,
            dest: dest.0,
            service,
            state: TcpState::None as u8,
            flags,
            timeout: crate::conn::table::NEW_CONN_TIMEOUT,
            control: None,
        };
        match t.insert(new, now) {
            Ok(ins) => {
                if let Some(ev) = ins.evicted {
                    release(&mut self.services, &mut self.counters, ev.dest, ev.flags);
                }
                bind(&mut self.services, dest, flags);
                self.count_new(ServiceId(service), dest);
            }
            Err(_) => {
                self.drops.count(DropReason::TableFull);
            }
        }
    }

    /// The cached hop of a real server if it is valid and the fast case (live, NAT or
    /// FullNAT, IPv4).
    #[inline]
    fn fast_hop(&self, dest: DestId) -> Option<Hop> {
        if !self.fast_path {
            return None;
        }
        self.hops
            .get(dest.0 as usize)
            .filter(|h| h.generation == self.neigh_generation && h.nat_v4.is_some())
            .copied()
    }

    /// Client → real server, by the real server's forwarding method.
    fn rewrite_in(
        &mut self,
        now: Instant,
        dest: DestId,
        c: &ConnView,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let Some((method, rs_addr)) = self.services.dest(dest).map(|d| (d.method, d.addr)) else {
            return self.drop(DropReason::NoDest);
        };
        match method {
            ForwardMethod::DirectRoute => {}
            ForwardMethod::Masq | ForwardMethod::FullNat => {
                let rw = NatRewrite {
                    dst: Some(rs_addr),
                    dst_port: Some(c.dport),
                    src: c.local.map(|l| l.0),
                    src_port: c.local.map(|l| l.1),
                };
                if let Err(r) = self.nat(frame, p, &rw) {
                    return self.drop(r);
                }
            }
            ForwardMethod::Tunnel { kind, csum } => {
                return self.tunnel(now, dest, rs_addr, kind, csum, frame, p);
            }
        }
        self.emit_to_dest(now, dest, rs_addr, frame)
    }

    /// Real server → client (NAT and FullNAT replies): the VIP becomes the source again.
    fn rewrite_out(
        &mut self,
        now: Instant,
        c: &ConnView,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let full = c.local.is_some();
        let rw = NatRewrite {
            src: Some(c.vaddr),
            src_port: Some(c.vport),
            dst: full.then_some(c.caddr),
            dst_port: full.then_some(c.cport),
        };
        if let Err(r) = self.nat(frame, p, &rw) {
            return self.drop(r);
        }
        let Some((port, hop)) = self.net.route(c.caddr) else {
            return self.drop(DropReason::NoRoute);
        };
        self.emit_to(now, port, hop, frame)
    }

    /// Tunnelling: encapsulate the IP packet towards the real server (`ip_vs_tunnel_xmit()`).
    ///
    /// A packet that would exceed the egress MTU with the tunnel headers is refused with
    /// ICMP "fragmentation needed" / "packet too big" naming the MTU left for it, as the
    /// kernel does; a GSO super-frame (which `virtio_net_hdr` cannot describe once
    /// encapsulated) is cut into its segments here and each sent encapsulated.
    #[allow(clippy::too_many_arguments)]
    fn tunnel(
        &mut self,
        now: Instant,
        dest: DestId,
        rs: IpAddr,
        kind: TunnelKind,
        csum: TunnelCsum,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let (_, _, src, room) = match self.tunnel_egress(rs, kind, csum) {
            Ok(e) => e,
            Err(r) => return self.drop(r),
        };
        let gso = usize::from(frame.gso_size());
        let l3 = usize::from(p.l3_offset);
        let l4 = usize::from(p.l4_offset);
        if gso > 0 && p.protocol == 6 {
            let tcp_hl = frame
                .data()
                .get(l4 + 12)
                .map_or(20, |b| usize::from(b >> 4) * 4);
            if l4 - l3 + tcp_hl + gso > room {
                return self.too_big(now, frame, p, room);
            }
            return self.tunnel_segments(now, dest, rs, src, kind, csum, frame, p, gso);
        }
        if usize::from(p.l3_len) > room {
            let df = !p.src.is_ipv4() || frame.data().get(l3 + 6).is_some_and(|b| b & 0x40 != 0);
            if df {
                return self.too_big(now, frame, p, room);
            }
            return self.drop(DropReason::TooBig);
        }
        if let Err(r) = encapsulate_frame(frame, p, src, rs, kind, csum) {
            return self.drop(r);
        }
        self.emit_to_dest(now, dest, rs, frame)
    }

    /// Where tunnelled packets to `rs` leave: the egress port, the next hop, the director's
    /// address on that link (the outer source) and the room the port's MTU leaves for the
    /// inner packet once the tunnel headers are added.
    fn tunnel_egress(
        &self,
        rs: IpAddr,
        kind: TunnelKind,
        csum: TunnelCsum,
    ) -> Result<(PortId, IpAddr, IpAddr, usize), DropReason> {
        let (port, hop) = self.net.route(rs).ok_or(DropReason::NoRoute)?;
        let src = self
            .net
            .source_addr(port, Family::of(&rs))
            .ok_or(DropReason::NoRoute)?;
        let mtu = usize::from(self.net.port(port).map_or(1500, |c| c.mtu));
        Ok((
            port,
            hop,
            src,
            mtu.saturating_sub(tunnel_overhead(rs, kind, csum)),
        ))
    }

    /// Cut a GSO super-frame into `mss`-sized TCP segments, encapsulate each and queue it for
    /// [`Director::poll_transmit`].
    #[allow(clippy::too_many_arguments)]
    fn tunnel_segments(
        &mut self,
        now: Instant,
        dest: DestId,
        rs: IpAddr,
        src: IpAddr,
        kind: TunnelKind,
        csum: TunnelCsum,
        frame: &mut Frame<'_>,
        p: &Parsed,
        mss: usize,
    ) -> Verdict {
        let (port, mac) = match self.dest_hop(dest, rs) {
            Ok(h) => h,
            Err(_) => return self.drop(DropReason::NeighborPending),
        };
        let src_mac = self.net.port(port).map(|c| c.mac).unwrap_or_default();
        let hash = flow_hash(p);
        let Some(ip) = frame.data().get(p.l3_range()) else {
            return self.drop(DropReason::Malformed);
        };
        // One segment at a time: cut into `seg`, then build the encapsulated frame in `buf`.
        let mut seg = [0u8; 2048];
        let mut buf = [0u8; 2048 + 128];
        let pool = &mut self.pool;
        let mut queued = 0u64;
        let mut full = false;
        let r = wire::gso::segment_tcp(ip, mss, &mut seg, |s| {
            let head = 128;
            buf[head..head + s.len()].copy_from_slice(s);
            let Ok(mut f) = Frame::new(&mut buf, head, s.len()) else {
                return false;
            };
            if encapsulate(&mut f, src, rs, kind, csum, hash).is_err() {
                return false;
            }
            rewrite::set_macs(f.data_mut(), mac, src_mac);
            if !pool.push(port, None, f.data(), now) {
                full = true;
                return false;
            }
            queued += 1;
            true
        });
        if r.is_err() {
            return self.drop(DropReason::Malformed);
        }
        if full {
            return self.drop(DropReason::NoRoom);
        }
        self.counters.segmented += queued;
        Verdict::Consumed
    }

    /// Refuse a packet too big for the tunnel: ICMP "fragmentation needed" (IPv4) or "packet
    /// too big" (IPv6) to its sender naming `mtu`, the room left for it
    /// (`__mtu_check_toobig_v6()` / `ensure_mtu_is_adequate()` in `ip_vs_xmit.c`).
    fn too_big(&mut self, now: Instant, frame: &Frame<'_>, p: &Parsed, mtu: usize) -> Verdict {
        let Some((port, hop)) = self.net.route(p.src) else {
            return self.drop(DropReason::TooBig);
        };
        let Some(from) = self.net.source_addr(port, Family::of(&p.src)) else {
            return self.drop(DropReason::TooBig);
        };
        let mut buf = [0u8; 1294];
        let len = icmp_too_big(&mut buf, frame.data(), p, from, mtu);
        if len > 0 {
            let mut f = match Frame::new(&mut buf, 0, len) {
                Ok(f) => f,
                Err(_) => return self.drop(DropReason::TooBig),
            };
            if let Verdict::Transmit(out) = self.emit_to(now, port, hop, &mut f) {
                self.pool.push(out, None, f.data(), now);
            }
        }
        self.drop(DropReason::TooBig)
    }

    /// ICMP: echo replies for VIPs, errors quoting tracked connections forwarded.
    fn handle_icmp<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        port: PortId,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let Some((ty, _code)) = p.icmp else {
            return Verdict::Pass;
        };
        let v6 = p.protocol == 58;
        let echo_request = if v6 { ty == 128 } else { ty == 8 };
        if echo_request {
            if self.services.is_vip(p.dst) || self.net.owns(p.dst, port) {
                if icmp_echo_reply(frame.data_mut(), p) {
                    self.counters.echo_replies += 1;
                    return Verdict::Transmit(port);
                }
                return self.drop(DropReason::Malformed);
            }
            return Verdict::Pass;
        }
        let is_error = if v6 {
            wire::icmp::is_v6_error(ty)
        } else {
            wire::icmp::is_v4_error(ty)
        };
        if !is_error || p.frag.is_fragment {
            return Verdict::Pass;
        }
        self.icmp_error(t, now, frame, p)
    }

    /// An ICMP error quoting a packet of a tracked connection (`ip_vs_in_icmp()` /
    /// `ip_vs_out_icmp()`): from the client side it quotes a reply (VIP → client) and goes to
    /// the real server; from the real-server side it quotes a forwarded packet (client →
    /// real server) and goes to the client, rewritten so the client recognises it.
    fn icmp_error<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        frame: &mut Frame<'_>,
        p: &Parsed,
    ) -> Verdict {
        let l4 = usize::from(p.l4_offset);
        let end = usize::from(p.l3_offset) + usize::from(p.l3_len);
        let q = {
            let data = frame.data();
            let Some(inner) = data.get(l4 + 8..end) else {
                return self.drop(DropReason::Malformed);
            };
            match wire::QuotedPacket::new_checked(inner) {
                Ok(q) => (q.src_addr(), q.dst_addr(), q.protocol(), q.ports()),
                Err(_) => return self.drop(DropReason::Malformed),
            }
        };
        let (qsrc, qdst, qproto, ports) = q;
        let Some((qsport, qdport)) = ports else {
            return Verdict::Pass;
        };
        let (Some(qs), Some(qd)) = (A::from_ip(qsrc), A::from_ip(qdst)) else {
            return Verdict::Pass;
        };
        // Quoted reply VIP:vport → client: the connection's in key is its inverse.
        let in_key = InKey {
            protocol: qproto,
            caddr: qd,
            cport: qdport,
            vaddr: qs,
            vport: qsport,
        };
        if let Some(id) = t.lookup_in(&in_key, now)
            && let Some(c) = t.get(id)
            && !c.is_template()
        {
            let dest = DestId(c.dest);
            let Some((method, rs)) = self.services.dest(dest).map(|d| (d.method, d.addr)) else {
                return self.drop(DropReason::NoDest);
            };
            let view = conn_view(&c);
            if matches!(method, ForwardMethod::Masq | ForwardMethod::FullNat) {
                // The real server sent rs:rport → client (or → local for FullNAT); the error
                // goes to the real server (from the local address for FullNAT).
                let inner_dst = view.local.unwrap_or((view.caddr, view.cport));
                let outer = NatRewrite {
                    dst: Some(rs),
                    src: view.local.map(|l| l.0),
                    ..NatRewrite::default()
                };
                let quoted = NatRewrite {
                    src: Some(rs),
                    src_port: Some(view.dport),
                    dst: Some(inner_dst.0),
                    dst_port: Some(inner_dst.1),
                };
                if !rewrite_icmp(frame, p, &outer, &quoted) {
                    return self.drop(DropReason::Malformed);
                }
            }
            self.counters.icmp_forwarded += 1;
            if let ForwardMethod::Tunnel { kind, csum } = method {
                return self.tunnel(now, dest, rs, kind, csum, frame, p);
            }
            return self.emit_to_dest(now, dest, rs, frame);
        }
        // Quoted forwarded packet (client or local) → rs:rport: the out key is its inverse.
        let out_key = OutKey {
            protocol: qproto,
            saddr: qd,
            sport: qdport,
            daddr: qs,
            dport: qsport,
        };
        if let Some(id) = t.lookup_out(&out_key, now)
            && let Some(c) = t.get(id)
        {
            let view = conn_view(&c);
            // The client sent caddr:cport → VIP:vport; the error goes to the client from the
            // VIP (to the client, not the local address, for FullNAT).
            let outer = NatRewrite {
                src: Some(view.vaddr),
                dst: view.local.map(|_| view.caddr),
                ..NatRewrite::default()
            };
            let quoted = NatRewrite {
                src: Some(view.caddr),
                src_port: Some(view.cport),
                dst: Some(view.vaddr),
                dst_port: Some(view.vport),
            };
            if !rewrite_icmp(frame, p, &outer, &quoted) {
                return self.drop(DropReason::Malformed);
            }
            self.counters.icmp_forwarded += 1;
            let Some((port, hop)) = self.net.route(view.caddr) else {
                return self.drop(DropReason::NoRoute);
            };
            return self.emit_to(now, port, hop, frame);
        }
        if self.is_ours(p) {
            return self.drop(DropReason::IcmpUnrelated);
        }
        Verdict::Pass
    }
}

/// A connection's addresses as plain IP addresses.
#[derive(Debug, Clone, Copy)]
struct ConnView {
    caddr: IpAddr,
    cport: u16,
    vaddr: IpAddr,
    vport: u16,
    dport: u16,
    local: Option<(IpAddr, u16)>,
}

fn conn_view<A: Af>(c: &crate::conn::table::Conn<A>) -> ConnView {
    ConnView {
        caddr: c.caddr.to_ip(),
        cport: c.cport,
        vaddr: c.vaddr.to_ip(),
        vport: c.vport,
        dport: c.dport,
        local: c.local.map(|(a, p)| (a.to_ip(), p)),
    }
}

fn hot_view<A: Af>(c: &crate::conn::table::HotConn<A>) -> ConnView {
    ConnView {
        caddr: c.caddr.to_ip(),
        cport: c.cport,
        vaddr: c.vaddr.to_ip(),
        vport: c.vport,
        dport: c.dport,
        local: c.local.map(|(a, p)| (a.to_ip(), p)),
    }
}

/// [`Core::rewrite_in`] + [`Core::emit_to_dest`] for the common case, with the real
/// server's hop cached (`hop.nat_v4` set): an IPv4 TCP/UDP packet, not a later fragment,
/// with complete checksums, rewritten in one pass. `None` (nothing written) for anything
/// else: the caller takes the general path, which gives the same frame.
#[inline]
fn fast_nat_in<A: Af>(
    offload: bool,
    hop: &Hop,
    c: &crate::conn::table::HotConn<A>,
    frame: &mut Frame<'_>,
    p: &Parsed,
) -> Option<Verdict> {
    let rs = hop.nat_v4?;
    let partial = matches!(frame.csum(), CsumStatus::Partial { .. });
    if p.frag.is_later()
        || !matches!(p.protocol, 6 | 17)
        || (partial && !offload)
        || c.vport == ftp::FTP_PORT
    {
        return None;
    }
    let src = match c.local {
        Some((a, port)) => Some((a.as_v4()?, Some(port))),
        None => None,
    };
    let l4_offset = usize::from(p.l4_offset.checked_sub(p.l3_offset)?);
    let data = frame.data_mut();
    let l3 = data.get_mut(p.l3_range())?;
    let dst = Some((rs, Some(c.dport)));
    if !wire::nat::rewrite_v4_l4(l3, l4_offset, p.protocol, src, dst, partial) {
        return None;
    }
    rewrite::set_macs(data, hop.mac(), hop.src_mac());
    Some(Verdict::Transmit(hop.port))
}

fn new_as_view<A: Af>(c: &NewConn<A>) -> ConnView {
    ConnView {
        caddr: c.caddr.to_ip(),
        cport: c.cport,
        vaddr: c.vaddr.to_ip(),
        vport: c.vport,
        dport: c.dport,
        local: c.local.map(|(a, p)| (a.to_ip(), p)),
    }
}

/// Rewrite an ICMP error for forwarding: its outer header and the packet it quotes.
fn rewrite_icmp(
    frame: &mut Frame<'_>,
    p: &Parsed,
    outer: &NatRewrite,
    quoted: &NatRewrite,
) -> bool {
    frame
        .data_mut()
        .get_mut(p.l3_range())
        .is_some_and(|l3| wire::nat::rewrite_icmp_error(l3, outer, quoted).is_ok())
}

/// Turn an echo request into its reply in place: swap addresses and MACs, type 0 / 129,
/// TTL 64, checksums updated.
fn icmp_echo_reply(buf: &mut [u8], p: &Parsed) -> bool {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let end = l3 + usize::from(p.l3_len);
    if buf.len() < end || end < l4 + 8 {
        return false;
    }
    rewrite::swap_macs(buf);
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf[l3 + 12..l3 + 16].copy_from_slice(&d.octets());
            buf[l3 + 16..l3 + 20].copy_from_slice(&s.octets());
            buf[l3 + 8] = 64;
            buf[l3 + 10..l3 + 12].fill(0);
            let c = wire::checksum::checksum(&buf[l3..l4]);
            buf[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            buf[l4] = 0;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            buf[l3 + 8..l3 + 24].copy_from_slice(&d.octets());
            buf[l3 + 24..l3 + 40].copy_from_slice(&s.octets());
            buf[l3 + 7] = 64;
            buf[l4] = 129;
        }
        _ => return false,
    }
    wire::fill_l4_checksum(&mut buf[l3..end]).is_ok()
}

/// A hash of a packet's flow (for GUE's UDP source port, so paths spread tunnels by flow).
fn flow_hash(p: &Parsed) -> u32 {
    let fold = |a: IpAddr| match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = u128::from(a);
            (o as u32) ^ ((o >> 32) as u32) ^ ((o >> 64) as u32) ^ ((o >> 96) as u32)
        }
    };
    let x = fold(p.src)
        ^ fold(p.dst).rotate_left(16)
        ^ (u32::from(p.src_port) << 16 | u32::from(p.dst_port));
    x.wrapping_mul(0x9e37_79b9) ^ u32::from(p.protocol)
}

#[cfg(test)]
mod tests;

/// Write the TCP sequence (`field` 4) or acknowledgement (`field` 8) number of the TCP
/// header at `l4`, keeping its checksum: RFC 1624 for a complete one; a partial checksum
/// does not cover the header yet, so nothing to update.
fn set_seq_field(frame: &mut Frame<'_>, l4: usize, field: usize, v: u32, partial: bool) {
    let d = frame.data_mut();
    if d.len() < l4 + 18 {
        return;
    }
    let at = l4 + field;
    let old = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
    if !partial {
        let hc = u16::from_be_bytes([d[l4 + 16], d[l4 + 17]]);
        let c = wire::checksum::update32(hc, old, v);
        d[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    }
}

/// Replace `frame[from..to]` with `text`, moving the rest of the IP packet and fixing the
/// IP total length and header checksum. Returns the length change, or None when the frame
/// has no room.
fn splice(frame: &mut Frame<'_>, l3: usize, from: usize, to: usize, text: &[u8]) -> Option<i32> {
    let diff = text.len() as i64 - (to - from) as i64;
    let d = frame.data();
    if d.len() < l3 + 20 || (d[l3] >> 4) != 4 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]));
    let end = l3 + total;
    if end > d.len() || to > end || from > to {
        return None;
    }
    let new_total = u16::try_from(total as i64 + diff).ok()?;
    // Drop Ethernet padding, make room, move the tail.
    frame.truncate(end);
    if diff > 0 {
        frame.extend(diff as usize).ok()?;
    }
    let d = frame.data_mut();
    let new_end = (end as i64 + diff) as usize;
    d.copy_within(to..end, (to as i64 + diff) as usize);
    d[from..from + text.len()].copy_from_slice(text);
    if diff < 0 {
        frame.truncate(new_end);
    }
    let d = frame.data_mut();
    d[l3 + 2..l3 + 4].copy_from_slice(&new_total.to_be_bytes());
    d[l3 + 10..l3 + 12].fill(0);
    let ihl = usize::from(d[l3] & 0x0f) * 4;
    let c = wire::checksum::checksum(&d[l3..l3 + ihl]);
    d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    Some(diff as i32)
}

/// Bytes the tunnel headers add in front of the inner packet.
fn tunnel_overhead(rs: IpAddr, kind: TunnelKind, csum: TunnelCsum) -> usize {
    let outer = if rs.is_ipv4() { 20 } else { 40 };
    outer
        + match kind {
            TunnelKind::Ipip => 0,
            TunnelKind::Gre if csum == TunnelCsum::Csum => 8,
            TunnelKind::Gre => 4,
            TunnelKind::Gue { .. } if csum == TunnelCsum::RemCsum => 8 + 12,
            TunnelKind::Gue { .. } => 8 + 4,
        }
}

/// Replace the Ethernet header of `frame` (parsed as `p`) by the tunnel headers towards `rs`
/// from `src`, and a new Ethernet header (addresses zero: the egress fills them). The inner
/// checksum is completed first unless GUE's remote checksum offload carries it: the real
/// server delivers the inner packet as it is.
fn encapsulate_frame(
    frame: &mut Frame<'_>,
    p: &Parsed,
    src: IpAddr,
    rs: IpAddr,
    kind: TunnelKind,
    csum: TunnelCsum,
) -> Result<(), DropReason> {
    if csum != TunnelCsum::RemCsum
        && matches!(frame.csum(), CsumStatus::Partial { .. })
        && frame.finish_checksum().is_err()
    {
        return Err(DropReason::Malformed);
    }
    frame
        .pull_front(usize::from(p.l2_len))
        .map_err(|_| DropReason::Malformed)?;
    encapsulate(frame, src, rs, kind, csum, flow_hash(p)).map_err(|()| DropReason::NoRoom)
}

/// Encapsulate the IP packet that `frame` holds (no Ethernet header) towards `rs` and put
/// an Ethernet header (addresses zero: the egress fills them) in front.
fn encapsulate(
    frame: &mut Frame<'_>,
    src: IpAddr,
    rs: IpAddr,
    kind: TunnelKind,
    csum: TunnelCsum,
    hash: u32,
) -> Result<(), ()> {
    let outer = match (src, rs) {
        (IpAddr::V4(s), IpAddr::V4(d)) => wire::encap::Outer::V4(wire::encap::OuterV4 {
            src: s,
            dst: d,
            ttl: 64,
            tos: 0,
            dont_frag: false,
            ident: 0,
        }),
        (IpAddr::V6(s), IpAddr::V6(d)) => wire::encap::Outer::V6(wire::encap::OuterV6 {
            src: s,
            dst: d,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }),
        _ => return Err(()),
    };
    let r = match kind {
        TunnelKind::Ipip => wire::encap::encap_ipip(frame, &outer),
        TunnelKind::Gre => wire::encap::encap_gre(frame, &outer, csum == TunnelCsum::Csum),
        TunnelKind::Gue { port } => {
            let opts = wire::encap::GueOptions {
                src_port: wire::encap::gue_src_port(hash),
                dst_port: port,
                csum: csum == TunnelCsum::Csum,
                remcsum: csum == TunnelCsum::RemCsum,
            };
            wire::encap::encap_gue(frame, &outer, &opts)
        }
    };
    r.map_err(|_| ())?;
    let ethertype = if rs.is_ipv4() {
        wire::EtherType::IPV4
    } else {
        wire::EtherType::IPV6
    };
    let zero = wire::EthernetAddress([0; 6]);
    wire::ethernet::push_header(frame, zero, zero, ethertype).map_err(|_| ())
}

/// Build ICMP "fragmentation needed" (IPv4, type 3 code 4, RFC 1191) or "packet too big"
/// (IPv6, type 2, RFC 4443 §3.2) for the packet in `frame` into `buf`, from `from` to the
/// packet's source, quoting as much of the packet as fits (IPv4: its header and 8 bytes;
/// IPv6: up to a 1280-byte message). Returns the frame length (0 if it cannot be built).
/// The Ethernet addresses are left for the egress.
fn icmp_too_big(buf: &mut [u8], frame: &[u8], p: &Parsed, from: IpAddr, mtu: usize) -> usize {
    let l3 = usize::from(p.l3_offset);
    let end = (l3 + usize::from(p.l3_len)).min(frame.len());
    let mtu = mtu.min(usize::from(u16::MAX));
    match (from, p.src) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            let ihl = usize::from(frame.get(l3).map_or(5, |b| b & 0x0f)) * 4;
            let quote = (ihl + 8).min(end.saturating_sub(l3));
            let total = 20 + 8 + quote;
            if buf.len() < 14 + total {
                return 0;
            }
            buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut buf[14..14 + total];
            ip.fill(0);
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            ip[8] = 64;
            ip[9] = 1;
            ip[12..16].copy_from_slice(&from.octets());
            ip[16..20].copy_from_slice(&to.octets());
            let c = wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ip[20] = 3;
            ip[21] = 4;
            ip[26..28].copy_from_slice(&(mtu as u16).to_be_bytes());
            ip[28..28 + quote].copy_from_slice(&frame[l3..l3 + quote]);
            let c = wire::checksum::checksum(&ip[20..]);
            ip[22..24].copy_from_slice(&c.to_be_bytes());
            14 + total
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            let quote = end.saturating_sub(l3).min(1280 - 40 - 8);
            let total = 40 + 8 + quote;
            if buf.len() < 14 + total {
                return 0;
            }
            buf[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            let ip = &mut buf[14..14 + total];
            ip.fill(0);
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&((8 + quote) as u16).to_be_bytes());
            ip[6] = 58;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&from.octets());
            ip[24..40].copy_from_slice(&to.octets());
            ip[40] = 2;
            ip[44..48].copy_from_slice(&(mtu as u32).to_be_bytes());
            ip[48..48 + quote].copy_from_slice(&frame[l3..l3 + quote]);
            if wire::fill_l4_checksum(ip).is_err() {
                return 0;
            }
            14 + total
        }
        _ => 0,
    }
}
