//! The state of one monitored real server and of each of its checks: where a check round
//! stands (attempt, retries, the next due time), rise/fall progress, and the weight the
//! server gets while it is up (slow start, `misc_dynamic`, load feedback).
//!
//! Nothing here knows about other servers, quorum or the forwarding table; [`super::engine`]
//! combines servers into services.

use core::time::Duration;
use std::net::IpAddr;

use crate::model::RealServerConfig;
use crate::sched::Rng;
use crate::time::Instant;

use super::engine::{CheckId, ServerId};
use super::spec::{CheckKind, CheckSpec, OnFailure, RealServerHealth};

/// The largest weight a real server can have (the kernel's).
const MAX_WEIGHT: u32 = RealServerConfig::MAX_WEIGHT;

/// Where one check stands.
#[derive(Debug, Clone)]
pub(super) struct CheckState {
    /// The check's own verdict after rise/fall: the server is up while all of these are.
    pub(super) up: bool,
    /// Consecutive successful rounds while down (towards `rise`).
    pub(super) rising: u32,
    /// Consecutive failed rounds while up (towards `fall`).
    pub(super) falling: u32,
    /// When the current round's first attempt was (or is) due: the drift-free grid.
    pub(super) round_due: Instant,
    /// When the next attempt is due.
    pub(super) next_due: Instant,
    /// The attempt of the round that is next or in flight (0 = first, then retries).
    pub(super) attempt: u32,
    /// The job in flight, if any (never more than one).
    pub(super) inflight: Option<CheckId>,
    /// The sequence number of this check's live entry in the due-queue, if queued.
    pub(super) queued: Option<u64>,
}

impl CheckState {
    /// A check that has not run yet, starting `up` or down, first due at `due`.
    pub(super) fn new(up: bool, due: Instant) -> CheckState {
        CheckState {
            up,
            rising: 0,
            falling: 0,
            round_due: due,
            next_due: due,
            attempt: 0,
            inflight: None,
            queued: None,
        }
    }

    /// The end of a round (after its retries): count it towards rise or fall and flip the
    /// check's verdict when the count is reached. Returns whether the verdict changed.
    pub(super) fn round_result(&mut self, success: bool, rise: u32, fall: u32) -> bool {
        if success {
            self.falling = 0;
            if self.up {
                return false;
            }
            self.rising += 1;
            if self.rising >= rise.max(1) {
                self.rising = 0;
                self.up = true;
                return true;
            }
        } else {
            self.rising = 0;
            if !self.up {
                return false;
            }
            self.falling += 1;
            if self.falling >= fall.max(1) {
                self.falling = 0;
                self.up = false;
                return true;
            }
        }
        false
    }

    /// Schedule the next round on the drift-free grid: the previous round's due time plus
    /// whole intervals, the first such slot at or after `now` (slots missed while a round
    /// overran are skipped, not caught up in a burst).
    pub(super) fn next_round(&mut self, interval: Duration, now: Instant) {
        let next = next_slot(self.round_due, interval, now, false);
        self.round_due = next;
        self.next_due = next;
        self.attempt = 0;
    }
}

/// The first slot `start + k × interval` (k >= 1) that is at or after `now`, or strictly
/// after it when `strict`. A zero interval counts as one nanosecond.
pub(super) fn next_slot(start: Instant, interval: Duration, now: Instant, strict: bool) -> Instant {
    let iv = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let first = start.0.saturating_add(iv);
    if first > now.0 || (!strict && first == now.0) {
        return Instant(first);
    }
    let behind = now.0 - start.0;
    let mut k = behind.div_ceil(iv);
    if strict && behind.is_multiple_of(iv) {
        k += 1;
    }
    Instant(start.0.saturating_add(k.saturating_mul(iv)))
}

/// nanny's slow start in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ramp {
    /// The weight cap now.
    pub(super) weight: u32,
    /// When it doubles next.
    pub(super) next: Instant,
    /// The sequence number of its live entry in the ramp queue.
    pub(super) queued: u64,
}

/// The slow-start weight on (re-)admission: piranha's nanny starts at `weight >> 5`, at
/// least 1. `None` when there is nothing to ramp (a weight of 0 or 1).
pub(super) fn ramp_start(weight: u32) -> Option<u32> {
    let start = (weight >> 5).max(1);
    (start < weight).then_some(start)
}

/// rvs's reading of nanny's `load_monitor` rule: the weight moves within
/// `[weight, scale × weight]`, inversely to the 1-minute load average:
/// `clamp(round(weight × scale / (1 + load1)), weight, scale × weight)`, at most 65535.
/// An idle server (load 0) gets `scale × weight`; one with a load of `scale − 1` or more
/// gets its configured weight. (nanny reads the load with rup/ruptime/uptime; its exact
/// formula is not part of the documented behaviour, only the range and the weight/4
/// threshold, which [`super::Health::report_load`] applies.)
pub(super) fn load_target(weight: u32, scale: u32, load1: f32) -> u32 {
    let scale = f64::from(scale.max(1));
    let w = f64::from(weight);
    let load = if load1 > 0.0 { f64::from(load1) } else { 0.0 };
    let raw = (w * scale / (1.0 + load)).round();
    let t = raw.clamp(w, w * scale);
    // `as` saturates for floats; the clamp keeps it within u32 before the kernel's cap.
    (t as u64).min(u64::from(MAX_WEIGHT)) as u32
}

/// A monitored real server.
#[derive(Debug, Clone)]
pub(super) struct ServerState {
    /// Its identity over the engine's life.
    pub(super) id: ServerId,
    /// Index of its service in the engine's service list.
    pub(super) service: usize,
    /// Its health configuration (checks included).
    pub(super) spec: RealServerHealth,
    /// The weight the forwarding configuration gives it.
    pub(super) configured: u32,
    /// Up (all checks up) or down.
    pub(super) up: bool,
    /// Whether its state has been announced by an event: true from the start for a server
    /// that starts up, false for an alpha server until its first verdict.
    pub(super) announced: bool,
    /// One per entry of `spec.checks`.
    pub(super) checks: Vec<CheckState>,
    /// Slow start in progress.
    pub(super) ramp: Option<Ramp>,
    /// The last weight a `misc_dynamic` check gave.
    pub(super) dynamic: Option<u32>,
    /// The weight `load_monitor` set (None: not adjusted yet).
    pub(super) load: Option<u32>,
    /// When the load agent is polled next, and its queue entry.
    pub(super) load_next: Option<(Instant, u64)>,
    /// Successful check rounds.
    pub(super) successes: u64,
    /// Failed check rounds.
    pub(super) failures: u64,
    /// The reason of the latest failed attempt.
    pub(super) last_reason: Option<String>,
}

/// A random delay in `[0, warmup]` (keepalived `check_api.c` `register_checkers_thread()`:
/// `warmup * random() / RAND_MAX`), from the engine's seeded generator.
pub(super) fn warmup_delay(rng: &mut Rng, warmup: Duration) -> Duration {
    let w = u64::try_from(warmup.as_nanos()).unwrap_or(u64::MAX);
    if w == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.next_u64() % w.saturating_add(1))
}

impl ServerState {
    /// A server seen for the first time. keepalived `init_service_rs()`: in alpha mode
    /// servers start down ("be pessimistic"), otherwise up, at full weight. A server with no
    /// checks at all is always up.
    ///
    /// A server that starts down is admitted by its first good round, whatever `rise`:
    /// Piranha nanny.c `run()` starts with `isActive = 0; currCount = countThresh`, so the
    /// first successful check brings the server in, and only after a failure
    /// (`currCount = 0`) are `countThresh` (`rise`) good checks in a row needed. keepalived
    /// has no `rise` (always 1), so its alpha is unchanged by this.
    pub(super) fn new(
        id: ServerId,
        service: usize,
        spec: RealServerHealth,
        configured: u32,
        now: Instant,
        rng: &mut Rng,
    ) -> ServerState {
        let up = !spec.alpha || spec.checks.is_empty();
        let rising = if up { 0 } else { spec.rise.max(1) - 1 };
        let checks = spec
            .checks
            .iter()
            .map(|c| CheckState {
                rising,
                ..CheckState::new(up, now + warmup_delay(rng, c.timers.warmup))
            })
            .collect();
        let load_next = spec.load_monitor.map(|_| (now, 0));
        ServerState {
            id,
            service,
            configured: configured.min(MAX_WEIGHT),
            up,
            announced: up,
            checks,
            ramp: None,
            dynamic: None,
            load: None,
            load_next,
            successes: 0,
            failures: 0,
            last_reason: None,
            spec,
        }
    }

    /// The same server in a new configuration (keepalived `clear_diff_rs()` /
    /// `migrate_checkers()`): up/down, counters, slow start and weights are kept. Checks equal
    /// to an old one keep their state (rise/fall progress, schedule, the job in flight); a
    /// new or changed check starts in the server's current state, so a reload by itself
    /// never brings a server down, and first runs after its warmup.
    pub(super) fn migrate(
        mut self,
        service: usize,
        spec: RealServerHealth,
        configured: u32,
        now: Instant,
        rng: &mut Rng,
    ) -> ServerState {
        let configured = configured.min(MAX_WEIGHT);
        if spec.checks != self.spec.checks {
            let mut old: Vec<Option<CheckState>> = core::mem::take(&mut self.checks)
                .into_iter()
                .map(Some)
                .collect();
            let up = self.up;
            self.checks = spec
                .checks
                .iter()
                .map(|c| {
                    let kept = self
                        .spec
                        .checks
                        .iter()
                        .enumerate()
                        .find(|(j, o)| *o == c && old[*j].is_some())
                        .map(|(j, _)| j);
                    match kept {
                        Some(j) => old[j].take().unwrap_or_else(|| CheckState::new(up, now)),
                        None => CheckState::new(up, now + warmup_delay(rng, c.timers.warmup)),
                    }
                })
                .collect();
        }
        if configured != self.configured {
            // The load rule works from the configured weight: start again from it.
            self.load = None;
        }
        if spec.slow_start.is_none_or(|p| p.is_zero()) {
            self.ramp = None;
        }
        match (spec.load_monitor, self.spec.load_monitor) {
            (None, _) => {
                self.load = None;
                self.load_next = None;
            }
            (Some(_), None) => self.load_next = Some((now, 0)),
            (Some(_), Some(_)) => {}
        }
        if !spec.checks.iter().any(is_dynamic) {
            self.dynamic = None;
        }
        self.service = service;
        self.configured = configured;
        self.spec = spec;
        self
    }

    /// Whether every check says up (no checks: always).
    pub(super) fn all_checks_up(&self) -> bool {
        self.checks.iter().all(|c| c.up)
    }

    /// The weight the server asks for while up, before slow start: `misc_dynamic`'s, else the
    /// load monitor's, else the configured one.
    pub(super) fn target_weight(&self) -> u32 {
        self.dynamic
            .or(self.load)
            .unwrap_or(self.configured)
            .min(MAX_WEIGHT)
    }

    /// The weight while up: the target, capped by slow start while it ramps.
    pub(super) fn weight_up(&self) -> u32 {
        let t = self.target_weight();
        match self.ramp {
            Some(r) => t.min(r.weight),
            None => t,
        }
    }

    /// Where the server is in the forwarding table: `None` = not in it, else its weight.
    /// `sorry_in`: the service's sorry server is in, so keepalived's `perform_quorum_state()`
    /// has taken the live servers out (weight 0 under `inhibit_on_failure`, as
    /// `ipvs_cmd(LVS_CMD_DEL_DEST)` turns a removal into weight 0 for inhibited servers).
    pub(super) fn placement(&self, sorry_in: bool) -> Option<u32> {
        let quiesce = self.spec.on_failure == OnFailure::Quiesce;
        if self.up && !sorry_in {
            Some(self.weight_up())
        } else if quiesce {
            Some(0)
        } else {
            None
        }
    }

    /// The period of slow start, when it applies.
    pub(super) fn slow_start(&self) -> Option<Duration> {
        self.spec.slow_start.filter(|p| !p.is_zero())
    }

    /// Progress towards rise: the most consecutive successes among checks that are down.
    pub(super) fn rise_progress(&self) -> u32 {
        self.checks
            .iter()
            .filter(|c| !c.up)
            .map(|c| c.rising)
            .max()
            .unwrap_or(0)
    }

    /// Progress towards fall: the most consecutive failed rounds among checks that are up.
    pub(super) fn fall_progress(&self) -> u32 {
        self.checks
            .iter()
            .filter(|c| c.up)
            .map(|c| c.falling)
            .max()
            .unwrap_or(0)
    }

    /// Where the load agent is (`agent`, else the real server's address on the default port).
    pub(super) fn load_agent(&self) -> Option<(IpAddr, u16)> {
        self.spec.load_monitor.map(|lm| {
            lm.agent
                .unwrap_or((self.spec.addr, super::spec::LoadMonitor::AGENT_PORT))
        })
    }
}

/// A MISC_CHECK with `misc_dynamic`.
fn is_dynamic(c: &CheckSpec) -> bool {
    matches!(c.kind, CheckKind::Misc { dynamic: true, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_count_consecutive_rounds() {
        let mut c = CheckState::new(true, Instant::ZERO);
        // fall 3: two failures, a success resets, then three failures.
        assert!(!c.round_result(false, 2, 3));
        assert!(!c.round_result(false, 2, 3));
        assert!(!c.round_result(true, 2, 3));
        assert_eq!(c.falling, 0);
        assert!(!c.round_result(false, 2, 3));
        assert!(!c.round_result(false, 2, 3));
        assert!(c.round_result(false, 2, 3));
        assert!(!c.up);
        // rise 2: a failure in between starts the count again.
        assert!(!c.round_result(true, 2, 3));
        assert!(!c.round_result(false, 2, 3));
        assert!(!c.round_result(true, 2, 3));
        assert!(c.round_result(true, 2, 3));
        assert!(c.up);
        // 0 counts as 1.
        assert!(c.round_result(false, 0, 0));
        assert!(c.round_result(true, 0, 0));
    }

    #[test]
    fn next_slot_stays_on_the_grid_and_skips_missed_slots() {
        let s = Instant::from_secs(100);
        let iv = Duration::from_secs(10);
        assert_eq!(
            next_slot(s, iv, Instant::from_secs(101), false),
            Instant::from_secs(110)
        );
        assert_eq!(
            next_slot(s, iv, Instant::from_secs(110), false),
            Instant::from_secs(110)
        );
        assert_eq!(
            next_slot(s, iv, Instant::from_secs(110), true),
            Instant::from_secs(120)
        );
        assert_eq!(
            next_slot(s, iv, Instant::from_millis(125_001), false),
            Instant::from_secs(130)
        );
        assert_eq!(
            next_slot(s, iv, Instant::from_secs(130), true),
            Instant::from_secs(140)
        );
        assert_eq!(
            next_slot(s, Duration::ZERO, s, true),
            Instant(s.0 + 1),
            "a zero interval still moves forward"
        );
    }

    #[test]
    fn ramp_starts_at_a_32nd_and_at_least_one() {
        assert_eq!(ramp_start(0), None);
        assert_eq!(ramp_start(1), None);
        assert_eq!(ramp_start(2), Some(1));
        assert_eq!(ramp_start(31), Some(1));
        assert_eq!(ramp_start(64), Some(2));
        assert_eq!(ramp_start(65535), Some(2047));
    }

    #[test]
    fn load_rule_range_and_rounding() {
        // Idle: scale × weight; loaded: never below the weight.
        assert_eq!(load_target(10, 3, 0.0), 30);
        assert_eq!(load_target(10, 3, 2.0), 10);
        assert_eq!(load_target(10, 3, 50.0), 10);
        // 10 × 3 / 1.5 = 20; 10 × 3 / 1.4 = 21.43 → 21; 30 / 1.25 = 24.
        assert_eq!(load_target(10, 3, 0.5), 20);
        assert_eq!(load_target(10, 3, 0.4), 21);
        assert_eq!(load_target(10, 3, 0.25), 24);
        // Negative loads read as idle; infinite as saturated; the kernel's cap holds.
        assert_eq!(load_target(10, 3, -1.0), 30);
        assert_eq!(load_target(10, 3, f32::INFINITY), 10);
        assert_eq!(load_target(40_000, 4, 0.0), 65_535);
        // Scale 0 behaves as 1.
        assert_eq!(load_target(7, 0, 0.0), 7);
    }

    #[test]
    fn warmup_is_within_bounds_and_seeded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let w = Duration::from_secs(5);
        for _ in 0..1000 {
            let d = warmup_delay(&mut a, w);
            assert!(d <= w);
            assert_eq!(d, warmup_delay(&mut b, w));
        }
        assert_eq!(warmup_delay(&mut a, Duration::ZERO), Duration::ZERO);
    }
}
