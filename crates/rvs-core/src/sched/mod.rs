//! The 14 IPVS schedulers, kernel-exact: which real server gets a new connection.
//!
//! Each scheduler reproduces the arithmetic of its kernel module
//! (`net/netfilter/ipvs/ip_vs_<name>.c`), including tie-breaking in kernel list order
//! (index 0 of the dests slice = the most recently added real server, see [`crate::dest`]).
//! A [`Scheduler`] is driven like the kernel's `struct ip_vs_scheduler`: [`Scheduler::new`]
//! is `init_service`, [`Scheduler::on_change`] is `add_dest` / `del_dest` / `upd_dest`,
//! [`Scheduler::schedule`] is `schedule`, [`Scheduler::expire`] is lblc/lblcr's periodic timer.
//!
//! What this module does not do: it never reads a clock or a random source (time and an
//! [`Rng`] are arguments), never touches connection counts or overload flags (the connection
//! table maintains them in [`Dest`]), and never allocates on the scheduling path except when
//! lblc/lblcr insert a new cache entry (amortised growth of a bucket, as the kernel's
//! `kmalloc(GFP_ATOMIC)` there). Table rebuilds (sh, dh, mh) happen in `new` / `on_change`.

use crate::dest::Dest;
use crate::model::{SchedFlags, SchedulerKind};
use crate::time::Instant;
use std::net::IpAddr;

mod hash;
mod least;
mod locality;
mod mh;
mod rr;

#[cfg(test)]
mod tests;

pub use hash::{Dh, Sh};
pub use locality::{Lblc, Lblcr};
pub use mh::{Mh, mh_build_table};
pub use rr::{Rr, Wrr};

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchedInput {
    /// Client (source) address: hashed by sh and mh.
    pub caddr: IpAddr,
    /// Client (source) port: hashed by sh/mh with the port flag. Pass 0 for protocols
    /// without ports (the kernel's `ip_vs_sh_get_port()` returns 0 for them).
    pub cport: u16,
    /// Packet destination (the VIP): hashed by dh, the cache key of lblc/lblcr.
    pub daddr: IpAddr,
    /// Packet destination port.
    pub dport: u16,
}

/// A small deterministic pseudo-random generator (splitmix64), seeded by the caller.
///
/// The core has no randomness of its own; twos draws from this where the kernel calls
/// `get_random_u32()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// A generator with the given seed.
    pub const fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half of [`Rng::next_u64`]).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// A change to a service's real-server list, reported after it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestChange {
    /// A real server was added; its index in the *new* list (0 in the kernel's order).
    Added(usize),
    /// A real server was removed; its index in the *old* list.
    Removed {
        /// Index in the list before the removal.
        index: usize,
    },
    /// A real server was edited (weight, thresholds, method); its index in the list.
    Edited(usize),
}

/// A virtual service's scheduler and its state (enum dispatch, one variant per kernel module).
#[derive(Debug, Clone)]
pub enum Scheduler {
    /// Round robin (`ip_vs_rr.c`).
    Rr(Rr),
    /// Weighted round robin (`ip_vs_wrr.c`).
    Wrr(Wrr),
    /// Least connection (`ip_vs_lc.c`).
    Lc,
    /// Weighted least connection (`ip_vs_wlc.c`).
    Wlc,
    /// Locality-based least connection (`ip_vs_lblc.c`).
    Lblc(Lblc),
    /// Locality-based least connection with replication (`ip_vs_lblcr.c`).
    Lblcr(Lblcr),
    /// Destination hashing (`ip_vs_dh.c`).
    Dh(Dh),
    /// Source hashing (`ip_vs_sh.c`).
    Sh(Sh),
    /// Shortest expected delay (`ip_vs_sed.c`).
    Sed,
    /// Never queue (`ip_vs_nq.c`).
    Nq,
    /// Weighted failover (`ip_vs_fo.c`).
    Fo,
    /// Weighted overflow (`ip_vs_ovf.c`).
    Ovf,
    /// Maglev hashing (`ip_vs_mh.c`).
    Mh(Mh),
    /// Weighted random twos choice (`ip_vs_twos.c`).
    Twos,
}

impl Scheduler {
    /// The scheduler of a new virtual service whose real servers are `dests`
    /// (`init_service`). `mh_table_size` is only read by mh (see
    /// [`crate::model::MH_TABLE_SIZES`]; other values fall back to the kernel default 4093).
    pub fn new(
        kind: SchedulerKind,
        flags: SchedFlags,
        mh_table_size: u32,
        dests: &[Dest],
    ) -> Scheduler {
        match kind {
            SchedulerKind::Rr => Scheduler::Rr(Rr::new()),
            SchedulerKind::Wrr => Scheduler::Wrr(Wrr::new(dests)),
            SchedulerKind::Lc => Scheduler::Lc,
            SchedulerKind::Wlc => Scheduler::Wlc,
            SchedulerKind::Lblc => Scheduler::Lblc(Lblc::new()),
            SchedulerKind::Lblcr => Scheduler::Lblcr(Lblcr::new()),
            SchedulerKind::Dh => Scheduler::Dh(Dh::new(dests)),
            SchedulerKind::Sh => Scheduler::Sh(Sh::new(flags, dests)),
            SchedulerKind::Sed => Scheduler::Sed,
            SchedulerKind::Nq => Scheduler::Nq,
            SchedulerKind::Fo => Scheduler::Fo,
            SchedulerKind::Ovf => Scheduler::Ovf,
            SchedulerKind::Mh => Scheduler::Mh(Mh::new(flags, mh_table_size, dests)),
            SchedulerKind::Twos => Scheduler::Twos,
        }
    }

    /// Which scheduler this is.
    pub fn kind(&self) -> SchedulerKind {
        match self {
            Scheduler::Rr(_) => SchedulerKind::Rr,
            Scheduler::Wrr(_) => SchedulerKind::Wrr,
            Scheduler::Lc => SchedulerKind::Lc,
            Scheduler::Wlc => SchedulerKind::Wlc,
            Scheduler::Lblc(_) => SchedulerKind::Lblc,
            Scheduler::Lblcr(_) => SchedulerKind::Lblcr,
            Scheduler::Dh(_) => SchedulerKind::Dh,
            Scheduler::Sh(_) => SchedulerKind::Sh,
            Scheduler::Sed => SchedulerKind::Sed,
            Scheduler::Nq => SchedulerKind::Nq,
            Scheduler::Fo => SchedulerKind::Fo,
            Scheduler::Ovf => SchedulerKind::Ovf,
            Scheduler::Mh(_) => SchedulerKind::Mh,
            Scheduler::Twos => SchedulerKind::Twos,
        }
    }

    /// The service's real-server list changed (`add_dest` / `del_dest` / `upd_dest`);
    /// `dests` is the list after the change.
    pub fn on_change(&mut self, dests: &[Dest], change: DestChange) {
        match self {
            Scheduler::Rr(s) => s.on_change(change),
            Scheduler::Wrr(s) => s.on_change(dests),
            Scheduler::Dh(s) => s.on_change(dests, change),
            Scheduler::Sh(s) => s.on_change(dests),
            Scheduler::Mh(s) => s.on_change(dests),
            // lblc/lblcr register no add/del/upd hooks: their caches keep pointing at the
            // server (by address and port) until garbage collection.
            Scheduler::Lblc(_) | Scheduler::Lblcr(_) => {}
            Scheduler::Lc
            | Scheduler::Wlc
            | Scheduler::Sed
            | Scheduler::Nq
            | Scheduler::Fo
            | Scheduler::Ovf
            | Scheduler::Twos => {}
        }
    }

    /// Pick a real server for a new connection: an index into `dests`, or `None` when the
    /// kernel would fail with `ip_vs_scheduler_err(svc, "no destination available")`.
    pub fn schedule(
        &mut self,
        dests: &[Dest],
        input: &SchedInput,
        now: Instant,
        rng: &mut Rng,
    ) -> Option<usize> {
        match self {
            Scheduler::Rr(s) => s.schedule(dests),
            Scheduler::Wrr(s) => s.schedule(dests),
            Scheduler::Lc => least::lc(dests),
            Scheduler::Wlc => least::wlc(dests),
            Scheduler::Lblc(s) => s.schedule(dests, input.daddr, now),
            Scheduler::Lblcr(s) => s.schedule(dests, input.daddr, now),
            Scheduler::Dh(s) => s.schedule(dests, input.daddr),
            Scheduler::Sh(s) => s.schedule(dests, input.caddr, input.cport),
            Scheduler::Sed => least::sed(dests),
            Scheduler::Nq => least::nq(dests),
            Scheduler::Fo => least::fo(dests),
            Scheduler::Ovf => least::ovf(dests),
            Scheduler::Mh(s) => s.schedule(dests, input.caddr, input.cport),
            Scheduler::Twos => least::twos(dests, rng),
        }
    }

    /// Run due garbage collection (lblc/lblcr's `periodic_timer`, every 60 s); a no-op for
    /// the other schedulers. Call it at least once a minute.
    pub fn expire(&mut self, now: Instant) {
        match self {
            Scheduler::Lblc(s) => s.expire(now),
            Scheduler::Lblcr(s) => s.expire(now),
            _ => {}
        }
    }
}

/// A real server's identity across list changes (indexes shift when one is added).
pub(crate) type DestKey = (IpAddr, u16);

/// The identity of `d`.
pub(crate) fn dest_key(d: &Dest) -> DestKey {
    (d.addr, d.port)
}

/// The index of the dest with identity `key`, if it is still in the list.
pub(crate) fn find_dest(dests: &[Dest], key: DestKey) -> Option<usize> {
    dests
        .iter()
        .position(|d| d.addr == key.0 && d.port == key.1)
}

/// The 32-bit fold the kernel hashes for an address: the IPv4 address in host order, or the
/// XOR of an IPv6 address's four 32-bit words (`addr_fold` in `ip_vs_sh_hashkey()` and its
/// siblings; `ntohl` of an XOR of big-endian words = XOR of the host-order words).
pub(crate) fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let x = u128::from(a);
            (x >> 96) as u32 ^ (x >> 64) as u32 ^ (x >> 32) as u32 ^ x as u32
        }
    }
}

/// `hash_32(val, bits)` of `include/linux/hash.h`: `(val * GOLDEN_RATIO_32) >> (32 - bits)`.
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    const GOLDEN_RATIO_32: u32 = 0x61C8_8647;
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// Greatest common divisor (`lib/math/gcd.c`, for positive arguments).
pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
