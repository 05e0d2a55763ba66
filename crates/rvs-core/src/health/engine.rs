//! The health-monitoring engine: [`Health`].
//!
//! The daemon drives it like quinn-proto's `Connection`: [`Health::poll_check`] hands out
//! the checks that are due, the daemon performs them and [`Health::report`]s the outcome;
//! [`Health::poll_load`] / [`Health::report_load`] do the same for `load_monitor`;
//! [`Health::poll_timeout`] says when to come back, [`Health::handle_timeout`] steps slow
//! start; [`Health::poll_event`] yields what to log and which scripts to run; and
//! [`Health::overlay`] turns the forwarding configuration into the effective one.

use core::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;

use crate::model::{Config, RealServerConfig, ServiceKey};
use crate::sched::Rng;
use crate::time::Instant;

use super::quorum::{ServiceState, quorum_initial, quorum_next};
use super::server::{Ramp, ServerState, load_target, next_slot, ramp_start};
use super::spec::{CheckSpec, HealthConfig, LoadReport, Notify, Outcome};

/// A check job handed out by [`Health::poll_check`]; unique over the engine's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckId(u64);

/// A monitored real server of a service; stable across [`Health::reconfigure`] while the
/// server stays in the configuration, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId(u64);

/// A check to start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckJob {
    /// Pass back to [`Health::report`].
    pub id: CheckId,
    /// The server checked.
    pub server: ServerId,
    /// Its virtual service.
    pub service: ServiceKey,
    /// The real server's address (`connect_ip` not yet applied).
    pub addr: IpAddr,
    /// The real server's port (`connect_port` not yet applied).
    pub port: u16,
    /// The service's VIP and port (None for fwmark services).
    pub vip: Option<(IpAddr, u16)>,
    /// The check.
    pub check: CheckSpec,
    /// When it was due (the daemon measures start jitter against it).
    pub due: Instant,
    /// 0 for the first attempt of a round, then the retry number.
    pub attempt: u32,
}

/// A load-agent poll to make now (`load_monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadJob {
    /// Pass back to [`Health::report_load`].
    pub server: ServerId,
    /// The agent's UDP address.
    pub agent: (IpAddr, u16),
    /// When it was due.
    pub due: Instant,
}

/// Why an up server's weight changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightWhy {
    /// A slow-start step.
    SlowStart,
    /// A `misc_dynamic` check gave a new weight.
    Dynamic,
    /// `load_monitor` moved it.
    Load,
}

/// What the daemon must do or log. Scripts (`notify`, `command`) are to be run by the
/// daemon; the forwarding changes are already in [`Health::overlay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A real server came up (or an alpha server passed its first checks).
    ServerUp {
        /// The service.
        service: ServiceKey,
        /// The real server.
        addr: IpAddr,
        /// Its port.
        port: u16,
        /// `notify_up` to run.
        notify: Option<Notify>,
    },
    /// A real server went down, failed its first checks in alpha mode, was removed from the
    /// configuration while up, or the director is shutting down (omega).
    ServerDown {
        /// The service.
        service: ServiceKey,
        /// The real server.
        addr: IpAddr,
        /// Its port.
        port: u16,
        /// The last failed check's reason (or why else).
        reason: String,
        /// `notify_down` to run.
        notify: Option<Notify>,
    },
    /// The service gained its quorum.
    QuorumUp {
        /// The service.
        service: ServiceKey,
        /// `quorum_up` to run.
        command: Option<Notify>,
    },
    /// The service lost its quorum (also at omega shutdown, and when a monitored service
    /// with its quorum up leaves the configuration).
    QuorumDown {
        /// The service.
        service: ServiceKey,
        /// `quorum_down` to run.
        command: Option<Notify>,
    },
    /// The sorry server was put in.
    SorryServerIn {
        /// The service.
        service: ServiceKey,
        /// The sorry server.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
    /// The sorry server was taken out (or set to weight 0 with `sorry_server_inhibit`).
    SorryServerOut {
        /// The service.
        service: ServiceKey,
        /// The sorry server.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
    /// An up server's effective weight changed.
    WeightChanged {
        /// The service.
        service: ServiceKey,
        /// The real server.
        addr: IpAddr,
        /// Its port.
        port: u16,
        /// The new effective weight.
        weight: u32,
        /// Why.
        why: WeightWhy,
    },
}

/// A monitored real server's state, for listings and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// Its identity.
    pub id: ServerId,
    /// The service.
    pub service: ServiceKey,
    /// The real server.
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Up (every check up).
    pub up: bool,
    /// The weight [`Health::overlay`] gives it now (0 when quiesced or not in the table).
    pub weight: u32,
    /// Whether [`Health::overlay`] keeps it in the table (at `weight`).
    pub in_table: bool,
    /// The weight the configuration gives it.
    pub configured_weight: u32,
    /// Successful check rounds.
    pub successes: u64,
    /// Failed check rounds (after their retries).
    pub failures: u64,
    /// The reason of the latest failed attempt.
    pub last_reason: Option<String>,
    /// Number of checks.
    pub checks: usize,
    /// Checks that say up.
    pub checks_up: usize,
    /// Consecutive successful rounds towards `rise` (of the furthest check that is down).
    pub rise_progress: u32,
    /// Consecutive failed rounds towards `fall` (of the furthest check that is up).
    pub fall_progress: u32,
    /// The slow-start cap while it ramps.
    pub slow_start: Option<u32>,
    /// The last `misc_dynamic` weight.
    pub dynamic_weight: Option<u32>,
    /// The weight `load_monitor` set.
    pub load_weight: Option<u32>,
}

/// A monitored virtual service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The service.
    pub service: ServiceKey,
    /// The quorum is up.
    pub quorum_up: bool,
    /// Sum of the configured weights of its up servers (keepalived's live weight).
    pub live_weight: u64,
    /// `quorum`.
    pub quorum: u32,
    /// `hysteresis`.
    pub hysteresis: u32,
    /// The sorry server, while it is in.
    pub sorry_server_in: Option<(IpAddr, u16)>,
}

/// A due-queue entry: when, a sequence number (ties in FIFO order, and the entry's identity
/// for lazy invalidation), the server's slot and (for checks) the check's index.
type Due = Reverse<(Instant, u64, usize, usize)>;

/// The health-monitoring engine of a director: check scheduling, rise/fall, quorum, sorry
/// server and the effective weights.
///
/// The daemon drives it like quinn-proto's `Connection`: [`poll_check`](Health::poll_check)
/// hands out the checks that are due, the daemon performs them and
/// [`report`](Health::report)s each outcome; [`poll_load`](Health::poll_load) /
/// [`report_load`](Health::report_load) do the same for `load_monitor`;
/// [`poll_timeout`](Health::poll_timeout) says when to come back and
/// [`handle_timeout`](Health::handle_timeout) steps slow start;
/// [`poll_event`](Health::poll_event) yields what to log and which scripts to run; and
/// [`overlay`](Health::overlay) turns the forwarding configuration into the effective one,
/// whenever [`generation`](Health::generation) has moved.
///
/// Start-up: [`new`](Health::new) emits no events. keepalived runs `quorum_down` at
/// start-up when a service starts with its quorum lost *and* has a sorry server
/// (`check/ipwrapper.c` `init_service_vs()` → `update_quorum_state(vs, true)`), never
/// `quorum_up` (`set_quorum_states()` sets the state silently), and `notify_up` only with
/// `rs_init_notifies`; rvs leaves start-up to the daemon, which can read the initial state
/// from [`services`](Health::services) and [`servers`](Health::servers) if it wants
/// keepalived's behaviour.
#[derive(Debug)]
pub struct Health {
    rng: Rng,
    next_check_id: u64,
    next_server_id: u64,
    seq: u64,
    services: Vec<ServiceState>,
    by_key: HashMap<ServiceKey, usize>,
    servers: Vec<ServerState>,
    by_id: HashMap<ServerId, usize>,
    inflight: HashMap<CheckId, (usize, usize)>,
    checks_due: BinaryHeap<Due>,
    loads_due: BinaryHeap<Due>,
    ramps_due: BinaryHeap<Due>,
    events: VecDeque<Event>,
    generation: u64,
    stopped: bool,
    /// Due-queue entries examined by `poll_check` (cost accounting for the tests).
    probes: u64,
}

impl Health {
    /// The engine for `spec` over the forwarding configuration `config`, at `now`.
    ///
    /// Entries of `spec` naming a virtual service or real server that `config` does not
    /// have are ignored (rvs-config checks that they match), as are repeated ones. The
    /// weights come from `config`. `seed` drives the warmup delays. Servers start up (at
    /// full weight) or, with `alpha`, down; each service's quorum is computed silently:
    /// no events at start-up (see the module documentation for keepalived's).
    pub fn new(spec: HealthConfig, config: &Config, seed: u64, now: Instant) -> Health {
        let mut h = Health {
            rng: Rng::new(seed),
            next_check_id: 0,
            next_server_id: 0,
            seq: 0,
            services: Vec::new(),
            by_key: HashMap::new(),
            servers: Vec::new(),
            by_id: HashMap::new(),
            inflight: HashMap::new(),
            checks_due: BinaryHeap::new(),
            loads_due: BinaryHeap::new(),
            ramps_due: BinaryHeap::new(),
            events: VecDeque::new(),
            generation: 0,
            stopped: false,
            probes: 0,
        };
        h.install(spec, config, now, true);
        h
    }

    /// Reload: servers (service key + address + port) still present keep their state
    /// (up/down, counters, slow-start step, weights); checks equal to an old one keep their
    /// progress and schedule, new or changed ones start in the server's current state
    /// (keepalived `migrate_checkers()`). New servers start as `alpha` says, silently as at
    /// start-up, and so does the quorum of a new service; removed ones vanish. Jobs in
    /// flight of removed or changed checks are ignored when reported.
    ///
    /// Events: `ServerDown` for a removed server that was up (keepalived
    /// `clear_diff_rs()` → `clear_service_rs()` runs its `notify_down`), `QuorumDown` for a
    /// removed service whose quorum was up, `ServerUp` for a down server whose failing
    /// checks were all removed, and quorum and sorry-server transitions the new settings
    /// cause (keepalived keeps `quorum_state_up` across a reload and re-evaluates it).
    pub fn reconfigure(&mut self, spec: HealthConfig, config: &Config, now: Instant) {
        if self.stopped {
            return;
        }
        self.install(spec, config, now, false);
    }

    fn install(&mut self, spec: HealthConfig, config: &Config, now: Instant, initial: bool) {
        self.generation += 1;
        let cfg_services: HashMap<ServiceKey, HashMap<(IpAddr, u16), &RealServerConfig>> = config
            .services
            .iter()
            .map(|s| {
                let rs = s.real_servers.iter().map(|r| ((r.addr, r.port), r));
                (s.key, rs.collect())
            })
            .collect();

        let old_services = core::mem::take(&mut self.services);
        let mut old_servers: Vec<Option<ServerState>> = core::mem::take(&mut self.servers)
            .into_iter()
            .map(Some)
            .collect();
        let old_by_key = core::mem::take(&mut self.by_key);
        self.by_id.clear();
        self.inflight.clear();

        // Build the new lists, taking over the state of what stays.
        let mut kept: Vec<(usize, bool)> = Vec::new(); // (new slot, was up)
        let mut sorry_before: Vec<Option<Option<(IpAddr, u16)>>> = Vec::new();
        for sh in spec.services {
            let Some(cfg_rs) = cfg_services.get(&sh.service) else {
                continue;
            };
            if self.by_key.contains_key(&sh.service) {
                continue;
            }
            let si = self.services.len();
            let mut svc = ServiceState::new(&sh);
            let old_svc = old_by_key.get(&sh.service).map(|&i| &old_services[i]);
            sorry_before.push(old_svc.map(|o| o.sorry_in().map(|s| (s.addr, s.port))));
            if let Some(o) = old_svc {
                svc.quorum_up = o.quorum_up;
            }
            for rsh in sh.real_servers {
                let Some(rsc) = cfg_rs.get(&(rsh.addr, rsh.port)) else {
                    continue;
                };
                if svc.by_addr.contains_key(&(rsh.addr, rsh.port)) {
                    continue;
                }
                let slot = self.servers.len();
                let old = old_svc
                    .and_then(|o| o.by_addr.get(&(rsh.addr, rsh.port)))
                    .and_then(|&os| old_servers[os].take());
                let state = match old {
                    Some(o) => {
                        kept.push((slot, o.up));
                        o.migrate(si, rsh, rsc.weight, now, &mut self.rng)
                    }
                    None => {
                        let id = ServerId(self.next_server_id);
                        self.next_server_id += 1;
                        ServerState::new(id, si, rsh, rsc.weight, now, &mut self.rng)
                    }
                };
                svc.by_addr.insert((state.spec.addr, state.spec.port), slot);
                svc.servers.push(slot);
                self.by_id.insert(state.id, slot);
                self.servers.push(state);
            }
            self.by_key.insert(svc.key, si);
            self.services.push(svc);
        }

        // What left: removed servers that were up go down (keepalived clear_service_rs()).
        for old_svc in &old_services {
            let gone = !self.by_key.contains_key(&old_svc.key);
            for &os in &old_svc.servers {
                if let Some(s) = old_servers[os].take()
                    && s.up
                    && s.announced
                {
                    self.events.push_back(Event::ServerDown {
                        service: old_svc.key,
                        addr: s.spec.addr,
                        port: s.spec.port,
                        reason: "removed from the configuration".into(),
                        notify: s.spec.notify_down.clone(),
                    });
                }
            }
            if gone {
                if old_svc.quorum_up {
                    self.events.push_back(Event::QuorumDown {
                        service: old_svc.key,
                        command: old_svc.quorum_down_cmd.clone(),
                    });
                }
                if let Some(s) = old_svc.sorry_in() {
                    self.events.push_back(Event::SorryServerOut {
                        service: old_svc.key,
                        addr: s.addr,
                        port: s.port,
                    });
                }
            }
        }

        // Queues: rebuilt from the states (jobs in flight of kept checks stay valid).
        self.checks_due.clear();
        self.loads_due.clear();
        self.ramps_due.clear();
        for slot in 0..self.servers.len() {
            for ci in 0..self.servers[slot].checks.len() {
                match self.servers[slot].checks[ci].inflight {
                    Some(id) => {
                        self.inflight.insert(id, (slot, ci));
                    }
                    None => self.queue_check(slot, ci),
                }
            }
            if let Some((at, _)) = self.servers[slot].load_next {
                self.queue_load(slot, at);
            }
            if let Some(r) = self.servers[slot].ramp {
                self.queue_ramp(slot, r.next);
            }
        }

        // Kept servers whose checks changed may have come up (their failing checks went).
        for (slot, was_up) in kept {
            let up = self.servers[slot].all_checks_up();
            if up != was_up {
                self.set_server_up(slot, up, now, "checks changed by a reload".into());
            }
        }

        // Quorum: computed silently for new services (and at start), re-evaluated with the
        // previous state for kept ones.
        for (si, before) in sorry_before.into_iter().enumerate() {
            match before {
                Some(before) if !initial => self.settle(si, before),
                _ => {
                    let live = self.live_weight(si);
                    let svc = &mut self.services[si];
                    svc.quorum_up = quorum_initial(live, svc.quorum, svc.hysteresis);
                }
            }
        }
    }

    /// The next check due at `now`, if any; call until None. The job is in flight until it
    /// is [`report`](Health::report)ed; a check never has two jobs in flight.
    pub fn poll_check(&mut self, now: Instant) -> Option<CheckJob> {
        if self.stopped {
            return None;
        }
        while let Some(&Reverse((at, seq, slot, ci))) = self.checks_due.peek() {
            if at > now {
                return None;
            }
            self.checks_due.pop();
            self.probes += 1;
            let Some(c) = self
                .servers
                .get_mut(slot)
                .and_then(|s| s.checks.get_mut(ci))
            else {
                continue;
            };
            if c.queued != Some(seq) || c.inflight.is_some() {
                continue;
            }
            c.queued = None;
            let id = CheckId(self.next_check_id);
            self.next_check_id += 1;
            c.inflight = Some(id);
            let (due, attempt) = (c.next_due, c.attempt);
            self.inflight.insert(id, (slot, ci));
            let s = &self.servers[slot];
            let service = self.services[s.service].key;
            return Some(CheckJob {
                id,
                server: s.id,
                service,
                addr: s.spec.addr,
                port: s.spec.port,
                vip: match service {
                    ServiceKey::Addr { addr, port, .. } => Some((addr, port)),
                    ServiceKey::Fwmark { .. } => None,
                },
                check: s.spec.checks[ci].clone(),
                due,
                attempt,
            });
        }
        None
    }

    /// The outcome of a job from [`poll_check`](Health::poll_check). Reports of unknown or
    /// stale jobs (their check was removed or changed by a reload) are ignored.
    ///
    /// A round succeeds on any `Up`; a `Down` with retries left schedules the next attempt
    /// at `now + delay_before_retry`; the round fails when attempt `retry` fails (keepalived
    /// `check_tcp.c` `tcp_epilog()`: "`if (is_success || checker->retry_it >=
    /// checker->retry)`"). After a round the next one is due on the drift-free grid.
    pub fn report(&mut self, now: Instant, id: CheckId, outcome: Outcome) {
        let Some((slot, ci)) = self.inflight.remove(&id) else {
            return;
        };
        let s = &mut self.servers[slot];
        if s.checks[ci].inflight != Some(id) {
            return;
        }
        let timers = s.spec.checks[ci].timers;
        let was_up = s.up;
        let weight_before = s.weight_up();
        let c = &mut s.checks[ci];
        c.inflight = None;
        let (success, reason) = match outcome {
            Outcome::Up => (true, String::new()),
            Outcome::UpWithWeight(w) => {
                // keepalived check_misc.c: `update_svr_wgt(status - 2, ...)` on every
                // successful run with misc_dynamic; a plain success leaves it.
                s.dynamic = Some(w.min(RealServerConfig::MAX_WEIGHT));
                (true, String::new())
            }
            Outcome::Down(reason) => {
                s.last_reason = Some(reason.clone());
                if c.attempt < timers.retry {
                    c.attempt += 1;
                    c.next_due = now + timers.delay_before_retry;
                    self.queue_check(slot, ci);
                    return;
                }
                (false, reason)
            }
        };
        if success {
            s.successes += 1;
        } else {
            s.failures += 1;
        }
        let (rise, fall) = (s.spec.rise, s.spec.fall);
        c.round_result(success, rise, fall);
        c.next_round(timers.interval, now);
        self.queue_check(slot, ci);

        let s = &mut self.servers[slot];
        let up = s.all_checks_up();
        if up != was_up {
            self.set_server_up(slot, up, now, reason);
            let si = self.servers[slot].service;
            let before = self.services[si].sorry_in().map(|x| (x.addr, x.port));
            self.settle(si, before);
        } else if !s.announced && !success {
            // keepalived update_svr_checker_state(): an alpha checker's first run that
            // confirms the down state still calls the notify_down script.
            s.announced = true;
            let ev = Event::ServerDown {
                service: self.services[s.service].key,
                addr: s.spec.addr,
                port: s.spec.port,
                reason,
                notify: s.spec.notify_down.clone(),
            };
            self.events.push_back(ev);
        } else if up && s.weight_up() != weight_before {
            self.weight_changed(slot, WeightWhy::Dynamic);
        }
    }

    /// The next load-agent poll due at `now`, if any; call until None. The next poll of the
    /// same server is due `interval` later on a drift-free grid.
    pub fn poll_load(&mut self, now: Instant) -> Option<LoadJob> {
        if self.stopped {
            return None;
        }
        while let Some(&Reverse((at, seq, slot, _))) = self.loads_due.peek() {
            if at > now {
                return None;
            }
            self.loads_due.pop();
            let Some(s) = self.servers.get(slot) else {
                continue;
            };
            let (Some((_, q)), Some(lm), Some(agent)) =
                (s.load_next, s.spec.load_monitor, s.load_agent())
            else {
                continue;
            };
            if q != seq {
                continue;
            }
            let job = LoadJob {
                server: s.id,
                agent,
                due: at,
            };
            let next = next_slot(at, lm.interval, now, true);
            self.queue_load(slot, next);
            return Some(job);
        }
        None
    }

    /// A load report for `server` (None: the agent was silent, which leaves the weight
    /// alone). rvs's reading of nanny's rule: the target is `clamp(round(weight × scale /
    /// (1 + load1)), weight, scale × weight)` (at most 65535), and the weight moves to it
    /// only when that changes it by at least a quarter of the configured weight (piranha.md:
    /// nanny's `load_monitor` "applied only if the change >= weight/4"). Reports for servers
    /// no longer monitored are ignored.
    pub fn report_load(&mut self, now: Instant, server: ServerId, load: Option<LoadReport>) {
        let _ = now;
        let Some(&slot) = self.by_id.get(&server) else {
            return;
        };
        let s = &mut self.servers[slot];
        let (Some(lm), Some(rep)) = (s.spec.load_monitor, load) else {
            return;
        };
        if rep.load1.is_nan() {
            return;
        }
        let target = load_target(s.configured, lm.scale, rep.load1);
        let current = s.load.unwrap_or(s.configured);
        let change = target.abs_diff(current);
        if change == 0 || change < s.configured / 4 {
            return;
        }
        let before = s.weight_up();
        s.load = Some(target);
        if s.up && s.weight_up() != before {
            self.weight_changed(slot, WeightWhy::Load);
        }
    }

    /// The earliest time something is due: a check or retry, a load poll, a slow-start step.
    /// May be early (then [`handle_timeout`](Health::handle_timeout) and the polls find
    /// nothing to do); None when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        [&self.checks_due, &self.loads_due, &self.ramps_due]
            .into_iter()
            .filter_map(|q| q.peek().map(|Reverse((at, ..))| *at))
            .min()
    }

    /// Step what is due at `now` besides checks: slow start doubles the weight cap of each
    /// ramping server once per period until it reaches the configured weight.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        while let Some(&Reverse((at, seq, slot, _))) = self.ramps_due.peek() {
            if at > now {
                break;
            }
            self.ramps_due.pop();
            let Some(s) = self.servers.get_mut(slot) else {
                continue;
            };
            let (Some(mut r), Some(period)) = (s.ramp, s.slow_start()) else {
                continue;
            };
            if r.queued != seq || !s.up {
                continue;
            }
            let before = s.weight_up();
            // nanny: the weight doubles each adjustment until it reaches the configured one.
            while r.next <= now {
                r.weight = r.weight.saturating_mul(2);
                r.next = r.next + period;
                if r.weight >= s.configured {
                    break;
                }
            }
            if r.weight >= s.configured {
                s.ramp = None;
            } else {
                s.ramp = Some(r);
                self.queue_ramp(slot, r.next);
            }
            if self.servers[slot].weight_up() != before {
                self.weight_changed(slot, WeightWhy::SlowStart);
            }
        }
    }

    /// The next event to act on, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The effective forwarding configuration: `base` (the configuration given to
    /// [`new`](Health::new) / [`reconfigure`](Health::reconfigure)) with each monitored real
    /// server that is down removed or at weight 0 (per `OnFailure`), up ones at their
    /// effective weight (slow start, `misc_dynamic`, load), and the sorry server in while the
    /// quorum is lost. Real servers keep `base`'s order; the sorry server is appended with
    /// weight 1 while in, or 0 under `sorry_server_inhibit` while out (a sorry server that is
    /// also a real server of the service keeps its place, at weight 1 while in). While the
    /// sorry server is in, the monitored real servers are out (weight 0 under
    /// `inhibit_on_failure`) as keepalived's `perform_quorum_state()` does. Unmonitored real
    /// servers and services are untouched. Linear in the size of `base`.
    pub fn overlay(&self, base: &Config) -> Config {
        let mut out = base.clone();
        for vs in &mut out.services {
            let Some(&si) = self.by_key.get(&vs.key) else {
                continue;
            };
            let svc = &self.services[si];
            let sorry_in = svc.sorry_in();
            let sorry_key = svc.sorry.map(|s| (s.addr, s.port));
            let mut sorry_present = false;
            vs.real_servers.retain_mut(|rs| {
                let key = (rs.addr, rs.port);
                if sorry_key == Some(key) {
                    sorry_present = true;
                    if sorry_in.is_some() {
                        rs.weight = 1;
                        return true;
                    }
                }
                let Some(&slot) = svc.by_addr.get(&key) else {
                    return true;
                };
                match self.servers[slot].placement(sorry_in.is_some()) {
                    Some(w) => {
                        rs.weight = w;
                        true
                    }
                    None => false,
                }
            });
            if let Some(ss) = svc.sorry
                && !sorry_present
                && (sorry_in.is_some() || ss.inhibit)
            {
                vs.real_servers.push(RealServerConfig {
                    addr: ss.addr,
                    port: ss.port,
                    weight: u32::from(sorry_in.is_some()),
                    u_threshold: 0,
                    l_threshold: 0,
                    method: ss.method,
                });
            }
        }
        out
    }

    /// Changes whenever [`overlay`](Health::overlay) would give a different answer.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every monitored real server, services in configuration order, then servers in order.
    pub fn servers(&self) -> impl Iterator<Item = ServerStatus> + '_ {
        self.servers.iter().map(|s| self.status(s))
    }

    /// One monitored real server's state.
    pub fn server(&self, id: ServerId) -> Option<ServerStatus> {
        self.by_id
            .get(&id)
            .map(|&slot| self.status(&self.servers[slot]))
    }

    /// Every monitored virtual service, in configuration order.
    pub fn services(&self) -> impl Iterator<Item = ServiceStatus> + '_ {
        self.services
            .iter()
            .enumerate()
            .map(|(si, svc)| ServiceStatus {
                service: svc.key,
                quorum_up: svc.quorum_up,
                live_weight: self.live_weight(si),
                quorum: svc.quorum,
                hysteresis: svc.hysteresis,
                sorry_server_in: svc.sorry_in().map(|s| (s.addr, s.port)),
            })
    }

    /// The director is stopping. With `omega`, keepalived (`clear_services()` →
    /// `clear_service_rs()` and `update_vs_notifies(vs, stopping)`) runs `notify_down` of
    /// every live server and then `quorum_down`, the latter even when the quorum was already
    /// lost; services without `omega` run nothing. Afterwards the engine schedules nothing.
    pub fn shutdown(&mut self) -> Vec<Event> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        let mut out = Vec::new();
        for svc in &self.services {
            if !svc.omega {
                continue;
            }
            for &slot in &svc.servers {
                let s = &self.servers[slot];
                if s.up {
                    out.push(Event::ServerDown {
                        service: svc.key,
                        addr: s.spec.addr,
                        port: s.spec.port,
                        reason: "shutting down".into(),
                        notify: s.spec.notify_down.clone(),
                    });
                }
            }
            out.push(Event::QuorumDown {
                service: svc.key,
                command: svc.quorum_down_cmd.clone(),
            });
        }
        self.checks_due.clear();
        self.loads_due.clear();
        self.ramps_due.clear();
        self.inflight.clear();
        out
    }

    /// Due-queue entries `poll_check` has examined so far (each costs O(log n)); for tests
    /// that hold the scheduler to its complexity.
    #[cfg(test)]
    pub(super) fn probes(&self) -> u64 {
        self.probes
    }

    fn status(&self, s: &ServerState) -> ServerStatus {
        let svc = &self.services[s.service];
        let place = s.placement(svc.sorry_in().is_some());
        ServerStatus {
            id: s.id,
            service: svc.key,
            addr: s.spec.addr,
            port: s.spec.port,
            up: s.up,
            weight: place.unwrap_or(0),
            in_table: place.is_some(),
            configured_weight: s.configured,
            successes: s.successes,
            failures: s.failures,
            last_reason: s.last_reason.clone(),
            checks: s.checks.len(),
            checks_up: s.checks.iter().filter(|c| c.up).count(),
            rise_progress: s.rise_progress(),
            fall_progress: s.fall_progress(),
            slow_start: s.ramp.map(|r| r.weight),
            dynamic_weight: s.dynamic,
            load_weight: s.load,
        }
    }

    /// keepalived `weigh_live_realservers()`, over configured weights.
    fn live_weight(&self, si: usize) -> u64 {
        self.services[si]
            .servers
            .iter()
            .map(|&slot| &self.servers[slot])
            .filter(|s| s.up)
            .map(|s| u64::from(s.configured))
            .sum()
    }

    /// A server goes up or down (keepalived `perform_svr_state()`): slow start on
    /// admission, the event, a new generation. The caller settles the service's quorum.
    fn set_server_up(&mut self, slot: usize, up: bool, now: Instant, reason: String) {
        let s = &mut self.servers[slot];
        s.up = up;
        s.announced = true;
        s.ramp = None;
        let service = self.services[s.service].key;
        let (addr, port) = (s.spec.addr, s.spec.port);
        let ev = if up {
            if let (Some(period), Some(start)) = (s.slow_start(), ramp_start(s.configured)) {
                s.ramp = Some(Ramp {
                    weight: start,
                    next: now + period,
                    queued: 0,
                });
                self.queue_ramp(slot, now + period);
            }
            Event::ServerUp {
                service,
                addr,
                port,
                notify: self.servers[slot].spec.notify_up.clone(),
            }
        } else {
            Event::ServerDown {
                service,
                addr,
                port,
                reason,
                notify: s.spec.notify_down.clone(),
            }
        };
        self.events.push_back(ev);
        self.generation += 1;
    }

    /// Re-evaluate a service's quorum after its live weight may have changed (keepalived
    /// `update_quorum_state()`), and put the sorry server in or out. `sorry_before`: the
    /// sorry server that was in before the change.
    fn settle(&mut self, si: usize, sorry_before: Option<(IpAddr, u16)>) {
        let live = self.live_weight(si);
        let svc = &mut self.services[si];
        let up = quorum_next(svc.quorum_up, live, svc.quorum, svc.hysteresis);
        let quorum_event = (up != svc.quorum_up).then(|| {
            svc.quorum_up = up;
            if up {
                Event::QuorumUp {
                    service: svc.key,
                    command: svc.quorum_up_cmd.clone(),
                }
            } else {
                Event::QuorumDown {
                    service: svc.key,
                    command: svc.quorum_down_cmd.clone(),
                }
            }
        });
        let sorry_after = svc.sorry_in().map(|s| (s.addr, s.port));
        let key = svc.key;
        let changed = quorum_event.is_some() || sorry_after != sorry_before;
        if let Some(ev) = quorum_event {
            self.events.push_back(ev);
        }
        if sorry_after != sorry_before {
            if let Some((addr, port)) = sorry_before {
                self.events.push_back(Event::SorryServerOut {
                    service: key,
                    addr,
                    port,
                });
            }
            if let Some((addr, port)) = sorry_after {
                self.events.push_back(Event::SorryServerIn {
                    service: key,
                    addr,
                    port,
                });
            }
        }
        if changed {
            self.generation += 1;
        }
    }

    fn weight_changed(&mut self, slot: usize, why: WeightWhy) {
        let s = &self.servers[slot];
        self.events.push_back(Event::WeightChanged {
            service: self.services[s.service].key,
            addr: s.spec.addr,
            port: s.spec.port,
            weight: s.weight_up(),
            why,
        });
        self.generation += 1;
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn queue_check(&mut self, slot: usize, ci: usize) {
        let seq = self.next_seq();
        let c = &mut self.servers[slot].checks[ci];
        c.queued = Some(seq);
        self.checks_due.push(Reverse((c.next_due, seq, slot, ci)));
    }

    fn queue_load(&mut self, slot: usize, at: Instant) {
        let seq = self.next_seq();
        self.servers[slot].load_next = Some((at, seq));
        self.loads_due.push(Reverse((at, seq, slot, 0)));
    }

    fn queue_ramp(&mut self, slot: usize, at: Instant) {
        let seq = self.next_seq();
        if let Some(r) = self.servers[slot].ramp.as_mut() {
            r.queued = seq;
            r.next = at;
            self.ramps_due.push(Reverse((at, seq, slot, 0)));
        }
    }
}
