//! The connection tables' memory: growth (the tables ask, the daemon builds memory off the
//! packet path and hands it in) and IPVS's defence strategies, run from
//! [`Director::expire`] (see [`crate::conn::defense`] for what each strategy does and how
//! "available memory" maps to the tables' room).

use core::time::Duration;

use super::{Director, release};
use crate::conn::defense::{DefenseState, PAGE_BYTES};
use crate::conn::{Need, Provision};
use crate::model;
use crate::time::Instant;

/// `DEFENSE_TIMER_PERIOD`: how often `update_defense_level()` runs.
const PERIOD: Duration = Duration::from_secs(1);
/// Hash buckets `drop_entry` examines per [`Director::expire`] call (the kernel looks at a
/// 32nd of its table at once each second; rvs spreads that over the second's calls so no
/// call stalls forwarding).
const DROP_SLICE: usize = 2048;

/// Memory the IPv4 and IPv6 tables retired ([`Director::take_retired`]).
pub type Retired = (Option<Provision<[u8; 4]>>, Option<Provision<[u8; 16]>>);

/// The defence state and its timer.
#[derive(Debug)]
pub(super) struct Defense {
    pub(super) state: DefenseState,
    /// When the next `update_defense_level()` is due (`None`: now).
    next: Option<Instant>,
    /// Buckets `drop_entry` still has to examine this second: IPv4, IPv6.
    quota: (usize, usize),
}

impl Defense {
    pub(super) fn new(modes: &model::Defense) -> Defense {
        Defense {
            state: DefenseState::new(modes),
            next: None,
            quota: (0, 0),
        }
    }

    /// A reload: new sysctls, acted on at the next call.
    pub(super) fn configure(&mut self, modes: &model::Defense) {
        self.state.configure(modes);
        self.next = None;
    }

    /// When the defence timer next wants [`Director::expire`]: never while every strategy
    /// is off and nothing is in force.
    pub(super) fn next_tick(&self) -> Option<Instant> {
        let m = self.state.modes();
        let idle = m.drop_entry == 0 && m.drop_packet == 0 && m.secure_tcp == 0;
        if idle && self.state.level() == 0 {
            return None;
        }
        Some(self.next.unwrap_or(Instant(0)))
    }
}

impl Director {
    /// The defence timer and `drop_entry`'s slice of work; returns the entries dropped.
    pub(super) fn defend(&mut self, now: Instant) -> usize {
        let c = &mut self.core;
        if c.defense.next_tick().is_none() {
            return 0;
        }
        if c.defense.next.is_none_or(|at| now >= at) {
            c.defense.next = Some(now + PERIOD);
            let room = self.v4.room_bytes().min(self.v6.room_bytes());
            let pages = (room / PAGE_BYTES) as u64;
            if let Some(on) = c.defense.state.update(pages) {
                c.timeouts.set_secure(on);
            }
            // `ip_vs_random_dropentry()`: a 32nd of the buckets each second.
            c.defense.quota = if c.defense.state.drop_entry_active() {
                (self.v4.buckets() >> 5, self.v6.buckets() >> 5)
            } else {
                (0, 0)
            };
        }
        let (q4, q6) = c.defense.quota;
        let (n4, n6) = (q4.min(DROP_SLICE), q6.min(DROP_SLICE));
        c.defense.quota = (q4 - n4, q6 - n6);
        if n4 + n6 == 0 {
            return 0;
        }
        let super::Core {
            rng,
            defense,
            services,
            counters,
            ..
        } = c;
        let mut dropped = self.v4.random_drop(
            now,
            n4,
            || rng.next_u64(),
            &mut defense.state.dropentry_counters,
            |_, conn| release(services, counters, conn.dest, conn.flags),
        );
        dropped += self.v6.random_drop(
            now,
            n6,
            || rng.next_u64(),
            &mut defense.state.dropentry_counters,
            |_, conn| release(services, counters, conn.dest, conn.flags),
        );
        defense.state.counters.entries_dropped += dropped as u64;
        dropped
    }

    /// The defence strategies' state and counters.
    pub fn defense(&self) -> &DefenseState {
        &self.core.defense.state
    }

    /// What the connection tables want built to keep growing: IPv4, IPv6
    /// ([`crate::conn::ConnTable::need`]).
    pub fn table_needs(&self) -> (Option<Need>, Option<Need>) {
        (self.v4.need(), self.v6.need())
    }

    /// Hand the IPv4 table memory built for its need; returns what it does not take.
    pub fn provide_v4(&mut self, p: Provision<[u8; 4]>) -> Option<Provision<[u8; 4]>> {
        self.v4.provide(p)
    }

    /// Hand the IPv6 table memory built for its need; returns what it does not take.
    pub fn provide_v6(&mut self, p: Provision<[u8; 16]>) -> Option<Provision<[u8; 16]>> {
        self.v6.provide(p)
    }

    /// Memory the tables retired (old hash heads), to drop off the packet path.
    pub fn take_retired(&mut self) -> Retired {
        (self.v4.take_retired(), self.v6.take_retired())
    }
}
