//! `rvs-bench-ecmp`: what happens to established flows in an active-active cluster (issue 16,
//! item 5) when the routers' ECMP rehashes or the real servers change, simulated with rvs-core's
//! own Maglev scheduler.
//!
//! The model (docs/operating.md "Active-active: how many flows break"):
//! - N directors serve one VIP; a router spreads flows over them by an L4 hash. Three router
//!   behaviours: `modulo` (hash mod N, older hardware), `threshold` (hash-threshold, RFC 2992,
//!   Linux's default for multipath routes: the hash space cut into N equal ranges) and
//!   `resilient` (a bucket table, Linux's resilient nexthop groups: when a next hop goes, only
//!   its buckets move; when one comes, it takes just its share).
//! - Each flow was scheduled by the director that received its SYN; afterwards that director
//!   holds its connection entry. With `sync`, every director also holds the others' entries
//!   (connection sync between all of them, as IPVS's master and backup sync daemons together
//!   give; ideal: no sync lag). A director added after the flows started has none of them.
//! - A flow survives an event if, afterwards, the director that now receives it sends it to the
//!   same real server: it holds the flow's entry (it is the old director, or sync gave it), or
//!   it schedules the flow afresh (`sloppy_tcp`: mid-flow packets create a connection) and picks
//!   the same server. With `mh` the fresh choice is the Maglev table (the same on every
//!   director built from the same configuration); without it, a scheduler whose choice depends
//!   on the director's own state (rr, wlc, …), modelled as an independent uniform pick.
//! - Flows whose real server was removed break whatever the mode ("lost with the server").
//!
//! `rvs-bench-ecmp [FLOWS]` prints the tables in Markdown (deterministic: fixed seeds).

use rvs_core::dest::Dest;
use rvs_core::model::{RealServerConfig, SchedFlags, SchedulerKind};
use rvs_core::sched::{Rng, SchedInput, Scheduler};
use rvs_core::time::Instant;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

/// The Maglev table size of the simulated services (`mh_table_size`; the Maglev paper's
/// smaller size).
const TABLE: u32 = 65_537;
/// Buckets per director of the `resilient` router model.
const BUCKETS_PER_DIRECTOR: usize = 64;
/// Real servers behind the VIP in the cluster simulation.
const REAL_SERVERS: u32 = 100;
/// Draws per point of the Maglev disruption table.
const DISRUPTION_REPS: u32 = 50;
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80));

/// splitmix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One client connection to the VIP.
#[derive(Debug, Clone, Copy)]
struct Flow {
    caddr: Ipv4Addr,
    cport: u16,
}

impl Flow {
    /// The router's L4 hash of the flow (source, destination, ports, protocol).
    fn ecmp_hash(self) -> u32 {
        (mix((u64::from(u32::from(self.caddr)) << 16 | u64::from(self.cport)) ^ 0x5eed) >> 32)
            as u32
    }

    fn key(self) -> u64 {
        u64::from(u32::from(self.caddr)) << 16 | u64::from(self.cport)
    }
}

fn flows(n: usize) -> Vec<Flow> {
    let mut rng = Rng::new(0xf10);
    (0..n)
        .map(|_| Flow {
            caddr: Ipv4Addr::from(rng.next_u32() | 1),
            cport: 1024 + (rng.next_u32() % 64_512) as u16,
        })
        .collect()
}

/// How the router maps a flow to one of the live directors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Router {
    Modulo,
    Threshold,
    Resilient,
}

impl Router {
    const ALL: [Router; 3] = [Router::Modulo, Router::Threshold, Router::Resilient];

    fn name(self) -> &'static str {
        match self {
            Router::Modulo => "modulo",
            Router::Threshold => "threshold",
            Router::Resilient => "resilient",
        }
    }
}

/// The router's next-hop state: the live directors (ids, sorted) and, for `resilient`, the
/// bucket table.
#[derive(Debug, Clone)]
struct Ecmp {
    router: Router,
    directors: Vec<u32>,
    buckets: Vec<u32>,
}

impl Ecmp {
    fn new(router: Router, n: u32) -> Ecmp {
        let directors: Vec<u32> = (0..n).collect();
        let buckets = (0..n as usize * BUCKETS_PER_DIRECTOR)
            .map(|b| directors[b % directors.len()])
            .collect();
        Ecmp {
            router,
            directors,
            buckets,
        }
    }

    fn director(&self, flow: Flow) -> u32 {
        let h = flow.ecmp_hash();
        let n = self.directors.len();
        match self.router {
            Router::Modulo => self.directors[h as usize % n],
            Router::Threshold => self.directors[((u64::from(h) * n as u64) >> 32) as usize],
            Router::Resilient => self.buckets[h as usize % self.buckets.len()],
        }
    }

    fn load(&self, d: u32) -> usize {
        self.buckets.iter().filter(|&&b| b == d).count()
    }

    /// A director is withdrawn: its buckets go, one by one, to the least-loaded survivor.
    fn remove(&mut self, d: u32) {
        self.directors.retain(|&x| x != d);
        for b in 0..self.buckets.len() {
            if self.buckets[b] == d {
                let least = *self
                    .directors
                    .iter()
                    .min_by_key(|&&x| (self.load(x), x))
                    .expect("a director is left");
                self.buckets[b] = least;
            }
        }
    }

    /// A director is announced: it takes buckets from the most-loaded ones until it has its
    /// share.
    fn add(&mut self, d: u32) {
        self.directors.push(d);
        self.directors.sort_unstable();
        let share = self.buckets.len() / self.directors.len();
        while self.load(d) < share {
            let most = *self
                .directors
                .iter()
                .max_by_key(|&&x| (self.load(x), std::cmp::Reverse(x)))
                .expect("directors");
            let b = self
                .buckets
                .iter()
                .position(|&x| x == most)
                .expect("it has buckets");
            self.buckets[b] = d;
        }
    }
}

/// The virtual service's real servers and its Maglev scheduler (rvs-core's, as every director
/// builds it from the configuration).
struct Pool {
    dests: Vec<Dest>,
    mh: Scheduler,
}

fn rs_addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a02_0000 + i))
}

impl Pool {
    fn new(ids: impl IntoIterator<Item = u32>, table: u32) -> Pool {
        let dests: Vec<Dest> = ids
            .into_iter()
            .map(|i| Dest::new(&RealServerConfig::new(rs_addr(i), 80)))
            .collect();
        // mh-port: flows from one client spread over the servers.
        let mh = Scheduler::new(
            SchedulerKind::Mh,
            SchedFlags(SchedFlags::FLAG_2),
            table,
            &dests,
        );
        Pool { dests, mh }
    }

    fn without(&self, addr: IpAddr) -> Pool {
        Pool::new(self.ids().filter(|&i| rs_addr(i) != addr), self.table())
    }

    fn with(&self, id: u32) -> Pool {
        Pool::new(self.ids().chain([id]), self.table())
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.dests.iter().map(|d| match d.addr {
            IpAddr::V4(a) => u32::from(a) - 0x0a02_0000,
            IpAddr::V6(_) => unreachable!("IPv4 pool"),
        })
    }

    fn table(&self) -> u32 {
        match &self.mh {
            Scheduler::Mh(m) => m.table().len() as u32,
            _ => unreachable!("an mh pool"),
        }
    }

    /// The Maglev choice for a flow (the same on every director).
    fn maglev(&mut self, flow: Flow) -> IpAddr {
        let input = SchedInput {
            caddr: IpAddr::V4(flow.caddr),
            cport: flow.cport,
            daddr: VIP,
            dport: 80,
        };
        let i = self
            .mh
            .schedule(&self.dests, &input, Instant(0), &mut Rng::new(0))
            .expect("a server");
        self.dests[i].addr
    }

    /// A scheduler that depends on the director's own state: independent per director.
    fn local(&self, flow: Flow, director: u32) -> IpAddr {
        let h = mix(flow.key() ^ (u64::from(director) << 48) ^ 0x10ca1);
        self.dests[(h % self.dests.len() as u64) as usize].addr
    }
}

/// The four ways a cluster can be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Neither,
    MhOnly,
    SyncOnly,
    Both,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Neither, Mode::MhOnly, Mode::SyncOnly, Mode::Both];

    fn mh(self) -> bool {
        matches!(self, Mode::MhOnly | Mode::Both)
    }

    fn sync(self) -> bool {
        matches!(self, Mode::SyncOnly | Mode::Both)
    }
}

/// What changes, in order, after the flows were established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    DirectorRemoved,
    DirectorAdded,
    ServerRemoved,
    ServerAdded,
    /// A real server added, then (the flows still running) a director removed.
    ServerAddedThenDirectorRemoved,
    /// A real server added, then a director added.
    ServerAddedThenDirectorAdded,
}

impl Event {
    const ALL: [Event; 6] = [
        Event::DirectorRemoved,
        Event::DirectorAdded,
        Event::ServerRemoved,
        Event::ServerAdded,
        Event::ServerAddedThenDirectorRemoved,
        Event::ServerAddedThenDirectorAdded,
    ];

    fn name(self) -> &'static str {
        match self {
            Event::DirectorRemoved => "director removed",
            Event::DirectorAdded => "director added",
            Event::ServerRemoved => "real server removed",
            Event::ServerAdded => "real server added",
            Event::ServerAddedThenDirectorRemoved => "server added, then director removed",
            Event::ServerAddedThenDirectorAdded => "server added, then director added",
        }
    }
}

/// The outcome of one event for one router model: fractions of all flows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Outcome {
    /// Flows whose director changed.
    moved: f64,
    /// Flows whose real server was removed (lost in every mode).
    lost_with_server: f64,
    /// Flows broken, per mode (excluding `lost_with_server`), in [`Mode::ALL`] order.
    broken: [f64; 4],
}

fn simulate(flows: &[Flow], directors: u32, router: Router, event: Event) -> Outcome {
    let mut pool = Pool::new(0..REAL_SERVERS, TABLE);
    let before = Ecmp::new(router, directors);
    // Established: each flow's director and the real server it chose, per mode.
    let start: Vec<(u32, [IpAddr; 4])> = flows
        .iter()
        .map(|&f| {
            let d = before.director(f);
            let local = pool.local(f, d);
            let maglev = pool.maglev(f);
            (d, Mode::ALL.map(|m| if m.mh() { maglev } else { local }))
        })
        .collect();

    let mut after = before.clone();
    let mut new_directors = HashSet::new();
    // The victim of a removal is chosen by a fixed seed, not always the first.
    let victim = mix(u64::from(directors) ^ 0xdead) as u32 % directors;
    let mut removed_server = None;
    match event {
        Event::DirectorRemoved => after.remove(victim),
        Event::DirectorAdded => {
            after.add(directors);
            new_directors.insert(directors);
        }
        Event::ServerRemoved => {
            let gone = rs_addr(mix(0x5e7) as u32 % REAL_SERVERS);
            pool = pool.without(gone);
            removed_server = Some(gone);
        }
        Event::ServerAdded => pool = pool.with(REAL_SERVERS),
        Event::ServerAddedThenDirectorRemoved => {
            pool = pool.with(REAL_SERVERS);
            after.remove(victim);
        }
        Event::ServerAddedThenDirectorAdded => {
            pool = pool.with(REAL_SERVERS);
            after.add(directors);
            new_directors.insert(directors);
        }
    }

    let (mut moved, mut lost) = (0usize, 0usize);
    let mut broken = [0usize; 4];
    for (&f, (d0, chosen)) in flows.iter().zip(&start) {
        let d1 = after.director(f);
        if d1 != *d0 {
            moved += 1;
        }
        let maglev = pool.maglev(f);
        let local = pool.local(f, d1);
        for (k, mode) in Mode::ALL.iter().enumerate() {
            let server = chosen[k];
            if Some(server) == removed_server {
                continue;
            }
            let holds_entry = d1 == *d0 || (mode.sync() && !new_directors.contains(&d1));
            let again = if mode.mh() { maglev } else { local };
            if !holds_entry && again != server {
                broken[k] += 1;
            }
        }
        // Lost with the server, counted by the mh choice (its share is 1/R in every mode).
        if Some(chosen[1]) == removed_server {
            lost += 1;
        }
    }
    let n = flows.len() as f64;
    Outcome {
        moved: moved as f64 / n,
        lost_with_server: lost as f64 / n,
        broken: broken.map(|b| b as f64 / n),
    }
}

/// Maglev's own disruption, the paper's experiment (§5.3, Figure 12): 1,000 equal backends,
/// k % of them removed at random, the table rebuilt; the share of table entries that changed,
/// and of those that had to (the removed backends' own), averaged over `reps` draws (the paper
/// averages 200).
fn maglev_disruption(table: u32, backends: u32, removed_pct: u32, reps: u32) -> (f64, f64) {
    let before = Pool::new(0..backends, table);
    let Scheduler::Mh(b) = &before.mh else {
        unreachable!("an mh pool")
    };
    let remove = (backends * removed_pct / 100).max(1);
    let mut rng = Rng::new(0x3a91e5 ^ u64::from(removed_pct));
    let (mut changed, mut forced) = (0usize, 0usize);
    for _ in 0..reps {
        let mut gone = HashSet::new();
        while gone.len() < remove as usize {
            gone.insert(rng.next_u32() % backends);
        }
        let after = Pool::new((0..backends).filter(|i| !gone.contains(i)), table);
        let Scheduler::Mh(a) = &after.mh else {
            unreachable!("an mh pool")
        };
        for (&x, &y) in b.table().iter().zip(a.table()) {
            let was = before.dests[x as usize].addr;
            if was != after.dests[y as usize].addr {
                changed += 1;
            }
            if gone.contains(&x) {
                forced += 1;
            }
        }
    }
    let all = b.table().len() as f64 * f64::from(reps);
    (changed as f64 / all, forced as f64 / all)
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn main() -> ExitCode {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: rvs-bench-ecmp [FLOWS]");
            return ExitCode::from(2);
        }
    };
    let flows = flows(n);
    println!(
        "Flows broken by one event, as a share of all {n} flows ({REAL_SERVERS} real servers, \
         mh table {TABLE}, ideal sync; `lost` = flows whose real server was removed, lost in \
         every mode and not counted in the four columns)\n"
    );
    for directors in [16u32, 64] {
        println!("N = {directors} directors\n");
        println!("| event | router | moved | lost | neither | mh only | sync only | mh + sync |");
        println!("|---|---|---|---|---|---|---|---|");
        for event in Event::ALL {
            for router in Router::ALL {
                let o = simulate(&flows, directors, router, event);
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    event.name(),
                    router.name(),
                    pct(o.moved),
                    pct(o.lost_with_server),
                    pct(o.broken[0]),
                    pct(o.broken[1]),
                    pct(o.broken[2]),
                    pct(o.broken[3]),
                );
            }
        }
        println!();
    }
    println!(
        "Maglev table disruption (the paper's experiment, §5.3: 1,000 equal backends, k % \
         removed at once, mean of {DISRUPTION_REPS} draws): table entries that changed / that \
         had to change\n"
    );
    println!("| removed | 65,537 slots | 131,071 slots |");
    println!("|---|---|---|");
    for k in [1u32, 2, 5, 10, 15] {
        let (c1, f1) = maglev_disruption(65_537, 1000, k, DISRUPTION_REPS);
        let (c2, f2) = maglev_disruption(131_071, 1000, k, DISRUPTION_REPS);
        println!(
            "| {k} % | {} / {} | {} / {} |",
            pct(c1),
            pct(f1),
            pct(c2),
            pct(f2)
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOWS: usize = 20_000;

    fn run(directors: u32, router: Router, event: Event) -> Outcome {
        simulate(&flows(FLOWS), directors, router, event)
    }

    #[test]
    fn mh_and_sync_together_lose_nothing_to_a_single_change() {
        for event in [
            Event::DirectorRemoved,
            Event::DirectorAdded,
            Event::ServerRemoved,
            Event::ServerAdded,
            Event::ServerAddedThenDirectorRemoved,
        ] {
            for router in Router::ALL {
                let o = run(16, router, event);
                assert_eq!(o.broken[3], 0.0, "{event:?} {router:?}: {o:?}");
            }
        }
    }

    #[test]
    fn a_resilient_router_moves_only_the_withdrawn_directors_share() {
        let o = run(16, Router::Resilient, Event::DirectorRemoved);
        assert!((o.moved - 1.0 / 16.0).abs() < 0.01, "{o:?}");
        // Without mh or sync, a moved flow keeps its server only by chance (1 in 100).
        assert!((o.broken[0] - o.moved * 0.99).abs() < 0.005, "{o:?}");
        // mh alone: the survivors build the same table, so every moved flow lands right.
        assert_eq!(o.broken[1], 0.0);
        assert_eq!(o.broken[2], 0.0);
    }

    #[test]
    fn modulo_hashing_moves_nearly_every_flow() {
        let o = run(16, Router::Modulo, Event::DirectorAdded);
        assert!(o.moved > 0.9, "{o:?}");
        // Sync alone cannot help the flows sent to the new director, which has no entries.
        assert!((o.broken[2] - 1.0 / 17.0).abs() < 0.01, "{o:?}");
        assert_eq!(o.broken[1], 0.0);
    }

    #[test]
    fn a_server_change_then_a_director_change_breaks_mh_alone() {
        let o = run(16, Router::Threshold, Event::ServerAddedThenDirectorRemoved);
        // Moved flows whose table slot went to the new server: about moved / 101 or more.
        assert!(o.broken[1] >= o.moved / 101.0 * 0.8, "{o:?}");
        assert!(o.broken[1] < o.moved * 0.05, "{o:?}");
        assert_eq!(o.broken[3], 0.0);
    }

    #[test]
    fn a_removed_server_loses_its_share_in_every_mode() {
        let o = run(16, Router::Resilient, Event::ServerRemoved);
        assert_eq!(o.moved, 0.0);
        assert!((o.lost_with_server - 0.01).abs() < 0.003, "{o:?}");
        assert_eq!(o.broken, [0.0; 4]);
    }

    #[test]
    fn maglev_changes_more_entries_than_it_must_and_fewer_with_a_larger_table() {
        let (small, forced) = maglev_disruption(65_537, 1000, 5, 2);
        let (large, _) = maglev_disruption(131_071, 1000, 5, 2);
        assert!((forced - 0.05).abs() < 0.005, "{forced}");
        assert!(small > forced && small < 3.0 * forced, "{small}");
        assert!(large < small, "{large} {small}");
    }
}
