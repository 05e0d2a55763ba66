//! SYN admission under overload ("shedding"), an rvs addition (IPVS has nothing like it).
//!
//! When a SYN flood arrives faster than the data plane can handle new connections, the
//! interface's SYN ring overflows and the kernel drops SYNs at random, legitimate ones
//! among them (they come back only with the client's 1 s, 3 s, ... retransmissions). rvs
//! chooses instead: while the worker reports the SYN ring congested, a connection's first
//! SYN from a source that never completed a handshake through this director is dropped
//! before anything is spent on it (no scheduling, no entry, no forwarding, no cookie),
//! except for a small admission budget per second so that clients never seen before still
//! get in on one of their retransmissions. SYNs from *proven* sources, and every segment of
//! existing connections, are handled as always.
//!
//! - [`Proven`]: a bounded set of client sources that completed a handshake — the client's
//!   ACK moved a connection to ESTABLISHED, or (SYN proxy) its ACK carried a valid cookie.
//!   IPv4 by address, IPv6 by /64 (a host picks its interface identifier at will — privacy
//!   addresses — and one subscriber's /64 is one entry). Fixed-size 4-way set-associative
//!   buckets under a seeded hash, the least recently proven of a full bucket replaced:
//!   allocated once, never on the packet path.
//! - [`Congestion`]: the worker says once per round whether the SYN ring had a backlog (a
//!   drain returned a full batch); [`ENTER_ROUNDS`] such rounds in a row enter the congested
//!   state, [`HOLD`] without one leave it (hysteresis: a single late round does not start
//!   shedding, and shedding does not stop the moment it has emptied the ring).
//! - the budget: a token bucket of [`SynShed::budget`] SYNs per second, a tenth of a second's
//!   worth of burst.
//!
//! Limits: the proof is the connection state machine's, which sees flags, not sequence
//! numbers, so a blind attacker that follows each spoofed SYN with an ACK can prove
//! addresses and, at the bound, push older ones out of their buckets; the budget and the
//! rest of the defences still apply. A random-source flood (`hping3 --rand-source`) proves
//! nothing. With the SYN proxy on, proof needs a valid cookie, which a blind attacker cannot
//! forge.

use core::time::Duration;
use std::net::IpAddr;

use crate::conn::state::{TcpState, Transition};
use crate::model::SynShed;
use crate::sched::Rng;
use crate::time::Instant;

/// Rounds in a row with a SYN-ring backlog that enter the congested state.
pub const ENTER_ROUNDS: u32 = 4;
/// How long without a backlog round the congested state lasts.
pub const HOLD: Duration = Duration::from_secs(1);
/// Slots per bucket of [`Proven`].
const WAYS: usize = 4;

/// Whether a client segment's state change completed a handshake (moved the connection to
/// ESTABLISHED), which proves its source.
#[inline]
pub(super) fn completes(tr: &Transition) -> bool {
    tr.new == TcpState::Established && tr.old != TcpState::Established
}

/// Counters of SYN admission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShedCounters {
    /// SYNs dropped while congested (also `DropReason::SynShed`).
    pub shed: u64,
    /// SYNs from unproven sources admitted by the budget while congested.
    pub budget_admitted: u64,
    /// SYNs from proven sources admitted while congested.
    pub proven_admitted: u64,
    /// Times the congested state was entered.
    pub congested_entered: u64,
    /// Sources proven (first time, or again after eviction).
    pub proven_added: u64,
    /// Proven sources pushed out of a full bucket.
    pub proven_evicted: u64,
}

/// One family's proven sources: keys in 4-way buckets, each with the second it was last
/// proven (0: empty slot).
#[derive(Debug)]
struct Ways {
    keys: Vec<u64>,
    stamps: Vec<u32>,
    /// Buckets − 1 (a power of two).
    mask: usize,
    seed: [u64; 2],
    len: usize,
}

/// Folded 64x64→128 multiply (as the connection table's hash).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Ways {
    fn new(cap: usize, rng: &mut Rng) -> Ways {
        let buckets = (cap.max(WAYS) / WAYS).next_power_of_two();
        Ways {
            keys: vec![0; buckets * WAYS],
            stamps: vec![0; buckets * WAYS],
            mask: buckets - 1,
            seed: [rng.next_u64() | 1, rng.next_u64() | 1],
            len: 0,
        }
    }

    #[inline]
    fn bucket(&self, key: u64) -> usize {
        (fold(key ^ self.seed[0], self.seed[1]) as usize & self.mask) * WAYS
    }

    fn contains(&self, key: u64) -> bool {
        let b = self.bucket(key);
        (b..b + WAYS).any(|i| self.stamps[i] != 0 && self.keys[i] == key)
    }

    /// Add or refresh `key`; returns (added, evicted).
    fn prove(&mut self, key: u64, stamp: u32) -> (bool, bool) {
        let b = self.bucket(key);
        let mut victim = b;
        for i in b..b + WAYS {
            if self.stamps[i] != 0 && self.keys[i] == key {
                self.stamps[i] = stamp;
                return (false, false);
            }
            if self.stamps[i] < self.stamps[victim] {
                victim = i;
            }
        }
        let evicted = self.stamps[victim] != 0;
        if !evicted {
            self.len += 1;
        }
        self.keys[victim] = key;
        self.stamps[victim] = stamp;
        (true, evicted)
    }

    fn clear(&mut self) {
        self.stamps.fill(0);
        self.len = 0;
    }
}

/// The bounded set of proven client sources (see the module documentation).
#[derive(Debug)]
pub struct Proven {
    v4: Ways,
    v6: Ways,
}

/// The key of a source: an IPv4 address, or an IPv6 address's /64.
fn key(ip: IpAddr) -> (bool, u64) {
    match ip {
        IpAddr::V4(a) => (false, u64::from(u32::from(a))),
        IpAddr::V6(a) => (true, (u128::from(a) >> 64) as u64),
    }
}

impl Proven {
    /// A set of at most `per_family` sources per family (rounded up to a multiple of the
    /// bucket size and a power of two of buckets), allocated now.
    pub fn new(per_family: usize, seed: u64) -> Proven {
        let mut rng = Rng::new(seed ^ 0x5348_4544_5052_4f56);
        Proven {
            v4: Ways::new(per_family, &mut rng),
            v6: Ways::new(per_family, &mut rng),
        }
    }

    /// Whether `src` (its /64 for IPv6) is proven.
    pub fn contains(&self, src: IpAddr) -> bool {
        match key(src) {
            (false, k) => self.v4.contains(k),
            (true, k) => self.v6.contains(k),
        }
    }

    /// Record a handshake completed by `src` at `now`; returns (added, evicted another).
    pub fn prove(&mut self, src: IpAddr, now: Instant) -> (bool, bool) {
        let stamp = (now.as_secs() as u32).saturating_add(1);
        match key(src) {
            (false, k) => self.v4.prove(k, stamp),
            (true, k) => self.v6.prove(k, stamp),
        }
    }

    /// Proven sources held: IPv4, IPv6.
    pub fn len(&self) -> (usize, usize) {
        (self.v4.len, self.v6.len)
    }

    /// Whether no source is proven.
    pub fn is_empty(&self) -> bool {
        self.v4.len == 0 && self.v6.len == 0
    }

    /// Slots per family (the bound).
    pub fn capacity(&self) -> usize {
        self.v4.keys.len()
    }

    /// Forget every source.
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

/// The congested state with its hysteresis (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Congestion {
    congested: bool,
    streak: u32,
    last_backlog: Instant,
}

impl Congestion {
    /// One worker round: whether the SYN ring had a backlog. Returns true when this call
    /// entered the congested state.
    pub fn observe(&mut self, now: Instant, backlog: bool) -> bool {
        if backlog {
            self.streak = self.streak.saturating_add(1);
            self.last_backlog = now;
            if !self.congested && self.streak >= ENTER_ROUNDS {
                self.congested = true;
                return true;
            }
        } else {
            self.streak = 0;
            if self.congested && now.saturating_since(self.last_backlog) >= HOLD {
                self.congested = false;
            }
        }
        false
    }

    /// Whether SYNs are being shed.
    pub fn congested(&self) -> bool {
        self.congested
    }
}

/// Nanoseconds per second: the token bucket counts SYNs × 10⁹.
const NANOS: u64 = 1_000_000_000;

/// SYN admission: settings, proven sources, congestion, budget and counters.
#[derive(Debug)]
pub struct Shedder {
    settings: SynShed,
    proven: Proven,
    congestion: Congestion,
    /// Budget tokens, in SYNs × 10⁹.
    tokens: u64,
    refilled: Instant,
    counters: ShedCounters,
}

impl Shedder {
    /// A shedder with `settings`, its proven set of `settings.proven` per family allocated.
    pub fn new(settings: &SynShed, seed: u64) -> Shedder {
        Shedder {
            proven: Proven::new(settings.proven, seed),
            settings: settings.clone(),
            congestion: Congestion::default(),
            tokens: 0,
            refilled: Instant::ZERO,
            counters: ShedCounters::default(),
        }
    }

    /// A reload: on/off and the budget take effect; the proven set keeps its size (it is
    /// allocated at start).
    pub fn configure(&mut self, settings: &SynShed) {
        let proven = self.settings.proven;
        self.settings = SynShed {
            proven,
            ..settings.clone()
        };
        if !self.settings.enabled {
            self.congestion = Congestion::default();
        }
    }

    /// Whether admission is on.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The worker's report for one round (see [`Congestion::observe`]).
    pub fn observe(&mut self, now: Instant, backlog: bool) {
        if self.settings.enabled && self.congestion.observe(now, backlog) {
            self.counters.congested_entered += 1;
        }
    }

    /// Whether SYNs from unproven sources are being shed now.
    #[inline]
    pub fn congested(&self) -> bool {
        self.congestion.congested()
    }

    /// A connection's first SYN from `src` while congested: whether to handle it (counted
    /// as proven or budget admission) or drop it (counted as shed).
    pub fn admit(&mut self, now: Instant, src: IpAddr) -> bool {
        if self.proven.contains(src) {
            self.counters.proven_admitted += 1;
            return true;
        }
        let rate = u64::from(self.settings.budget);
        let burst = (rate * NANOS / 10).max(NANOS.min(rate * NANOS));
        let elapsed = now.0.saturating_sub(self.refilled.0);
        self.refilled = now;
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(rate))
            .min(burst);
        if rate > 0 && self.tokens >= NANOS {
            self.tokens -= NANOS;
            self.counters.budget_admitted += 1;
            return true;
        }
        self.counters.shed += 1;
        false
    }

    /// `src` completed a handshake at `now`.
    #[inline]
    pub fn prove(&mut self, src: IpAddr, now: Instant) {
        if !self.settings.enabled {
            return;
        }
        let (added, evicted) = self.proven.prove(src, now);
        self.counters.proven_added += u64::from(added);
        self.counters.proven_evicted += u64::from(evicted);
    }

    /// The proven sources.
    pub fn proven(&self) -> &Proven {
        &self.proven
    }

    /// The settings in force.
    pub fn settings(&self) -> &SynShed {
        &self.settings
    }

    /// The counters.
    pub fn counters(&self) -> &ShedCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::Rng;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn settings(budget: u32) -> SynShed {
        SynShed {
            enabled: true,
            budget,
            proven: 1024,
        }
    }

    fn congested(s: &mut Shedder, now: Instant) {
        for _ in 0..ENTER_ROUNDS {
            s.observe(now, true);
        }
        assert!(s.congested());
    }

    #[test]
    fn congestion_needs_a_streak_and_holds() {
        let mut c = Congestion::default();
        let t = Instant::from_secs(10);
        for _ in 0..ENTER_ROUNDS - 1 {
            assert!(!c.observe(t, true));
        }
        // A quiet round breaks the streak.
        c.observe(t, false);
        for _ in 0..ENTER_ROUNDS - 1 {
            c.observe(t, true);
        }
        assert!(!c.congested());
        assert!(c.observe(t, true));
        assert!(c.congested());
        // Quiet rounds within HOLD keep it; after HOLD it ends.
        c.observe(t + Duration::from_millis(999), false);
        assert!(c.congested());
        c.observe(t + HOLD, false);
        assert!(!c.congested());
    }

    #[test]
    fn disabled_never_congests() {
        let mut s = Shedder::new(
            &SynShed {
                enabled: false,
                ..settings(0)
            },
            1,
        );
        for _ in 0..100 {
            s.observe(Instant::from_secs(1), true);
        }
        assert!(!s.congested());
        s.prove(v4(1), Instant::from_secs(1));
        assert!(s.proven().is_empty());
    }

    #[test]
    fn proven_source_is_admitted_unproven_is_shed_without_budget() {
        let mut s = Shedder::new(&settings(0), 7);
        let t = Instant::from_secs(5);
        s.prove(v4(0x0a00_0001), t);
        congested(&mut s, t);
        assert!(s.admit(t, v4(0x0a00_0001)));
        assert!(!s.admit(t, v4(0x0a00_0002)));
        assert_eq!(s.counters().proven_admitted, 1);
        assert_eq!(s.counters().shed, 1);
    }

    #[test]
    fn ipv6_is_proven_by_its_64() {
        let mut s = Shedder::new(&settings(0), 7);
        let a: Ipv6Addr = "2001:db8:1:2::10".parse().unwrap();
        let same: Ipv6Addr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
        let other: Ipv6Addr = "2001:db8:1:3::10".parse().unwrap();
        s.prove(IpAddr::V6(a), Instant::from_secs(1));
        assert!(s.proven().contains(IpAddr::V6(same)));
        assert!(!s.proven().contains(IpAddr::V6(other)));
        assert_eq!(s.proven().len(), (0, 1));
    }

    #[test]
    fn a_bucket_replaces_its_least_recently_proven() {
        let mut p = Proven::new(4, 3); // one bucket of four
        for (i, t) in [(1, 1), (2, 2), (3, 3), (4, 4)] {
            assert_eq!(p.prove(v4(i), Instant::from_secs(t)), (true, false));
        }
        // Refreshing 1 makes 2 the oldest.
        assert_eq!(p.prove(v4(1), Instant::from_secs(5)), (false, false));
        assert_eq!(p.prove(v4(5), Instant::from_secs(6)), (true, true));
        assert!(p.contains(v4(1)) && !p.contains(v4(2)) && p.contains(v4(5)));
        assert_eq!(p.len(), (4, 0));
    }

    #[test]
    fn set_bound_holds_under_a_million_random_sources() {
        let cap = 65_536;
        let mut p = Proven::new(cap, 0xfeed);
        let mut rng = Rng::new(42);
        let mut last = [0u32; 64];
        for i in 0..1_000_000u64 {
            let a = rng.next_u32();
            p.prove(v4(a), Instant::from_millis(i));
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
            p.prove(IpAddr::V6(Ipv6Addr::from(b)), Instant::from_millis(i));
            last[(i % 64) as usize] = a;
        }
        let (n4, n6) = p.len();
        assert_eq!(p.capacity(), cap);
        assert!(n4 <= cap && n6 <= cap, "{n4} {n6}");
        // Full (a million into 65,536 slots leaves none empty)...
        assert_eq!((n4, n6), (cap, cap));
        // ... and the most recently proven are still there.
        assert!(last.iter().all(|&a| p.contains(v4(a))));
        assert_eq!(p.v4.stamps.iter().filter(|&&s| s != 0).count(), n4);
    }

    proptest! {
        /// Outside the congested state nothing is shed: the packet path asks only while
        /// congested, and the state is entered only after ENTER_ROUNDS backlog rounds in a
        /// row and left after HOLD without one.
        #[test]
        fn congested_only_after_a_streak_and_until_hold(
            rounds in proptest::collection::vec((any::<bool>(), 0u64..400), 1..300),
        ) {
            let mut c = Congestion::default();
            let mut t = 1_000_000_000u64;
            let mut streak = 0u32;
            let mut last: Option<u64> = None;
            let mut model = false;
            for (backlog, dt_ms) in rounds {
                t += dt_ms * 1_000_000;
                c.observe(Instant(t), backlog);
                if backlog {
                    streak += 1;
                    last = Some(t);
                    if streak >= ENTER_ROUNDS { model = true; }
                } else {
                    streak = 0;
                    if model && t - last.unwrap() >= HOLD.as_nanos() as u64 { model = false; }
                }
                prop_assert_eq!(c.congested(), model);
            }
        }

        /// While congested: a proven source is always admitted; unproven ones at most the
        /// budget per second of the time argument (plus a tenth of a second's burst), and
        /// every SYN is counted once as proven, budget or shed.
        #[test]
        fn budget_is_honoured_and_proven_always_admitted(
            budget in 0u32..5000,
            gaps in proptest::collection::vec(0u64..2_000_000, 1..3000),
            proven_every in 1usize..10,
        ) {
            let mut s = Shedder::new(&settings(budget), 11);
            let start = 3_000_000_000u64;
            s.prove(v4(1), Instant(start));
            congested(&mut s, Instant(start));
            let mut t = start;
            let mut admitted = 0u64;
            for (i, g) in gaps.iter().enumerate() {
                t += g;
                if i % proven_every == 0 {
                    prop_assert!(s.admit(Instant(t), v4(1)));
                } else if s.admit(Instant(t), v4(1000 + i as u32)) {
                    admitted += 1;
                }
            }
            let elapsed = t - start;
            let bound = u128::from(budget) * u128::from(elapsed) / 1_000_000_000
                + u128::from(budget / 10)
                + 1;
            prop_assert!(u128::from(admitted) <= bound, "{} > {}", admitted, bound);
            let c = s.counters();
            prop_assert_eq!(c.budget_admitted, admitted);
            prop_assert_eq!(c.proven_admitted + c.budget_admitted + c.shed, gaps.len() as u64);
        }
    }

    #[test]
    fn budget_admits_its_rate_over_seconds() {
        let mut s = Shedder::new(&settings(1000), 5);
        let t0 = Instant::from_secs(10);
        congested(&mut s, t0);
        // 100,000 unproven SYNs a second for 5 s: 1,000 a second get in.
        let mut per_sec = [0u32; 5];
        for i in 0..500_000u64 {
            let now = Instant(t0.0 + i * 10_000);
            if s.admit(now, v4(0x0b00_0000 + i as u32)) {
                per_sec[(i / 100_000) as usize] += 1;
            }
        }
        // The first second also spends the burst (a tenth of a second's worth) that
        // built up before it.
        assert!((1090..=1101).contains(&per_sec[0]), "{per_sec:?}");
        for (sec, n) in per_sec.iter().enumerate().skip(1) {
            assert!((990..=1001).contains(n), "second {sec}: {n}");
        }
    }
}
