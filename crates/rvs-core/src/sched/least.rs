//! The stateless schedulers: lc, wlc, sed, nq, fo, ovf and twos.
//!
//! Each is one pass (two for twos) over the list in kernel order, so ties go to the
//! earlier server, the most recently added one. Products are computed at the width the
//! kernel uses (64-bit since "ipvs: fix overflow on dest weight multiply"; twos in `int`).

use super::Rng;
use crate::dest::Dest;

/// `ip_vs_dest_conn_overhead()` as the kernel's `int`.
#[inline(always)]
fn overhead(d: &Dest) -> i64 {
    i64::from(d.conn_overhead() as i32)
}

/// `ip_vs_sed.c` / `ip_vs_nq.c`: `ip_vs_sed_dest_overhead()`, activeconns + 1.
fn expected_overhead(d: &Dest) -> i64 {
    i64::from(d.active_conns) + 1
}

/// `ip_vs_lc.c: ip_vs_lc_schedule()`: the least overhead among servers with weight > 0 and
/// not overloaded; strict `<`, so the earlier server wins a tie.
pub(crate) fn lc(dests: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = d.conn_overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

/// The weighted-least rule shared by wlc, sed, and lblc/lblcr's fallback
/// (`ip_vs_wlc.c: ip_vs_wlc_schedule()`, `ip_vs_sed.c: ip_vs_sed_schedule()`,
/// `ip_vs_lblc.c: __ip_vs_lblc_schedule()`, `ip_vs_lblcr.c: __ip_vs_lblcr_schedule()`):
/// start from the first server with weight > 0 and not overloaded, then switch to any later
/// non-overloaded `d` with `loh * w(d) > doh * w(least)`. A weight-0 server never wins
/// (the left side is then 0).
#[inline(always)]
fn weighted_least(dests: &[Dest], oh: impl Fn(&Dest) -> i64) -> Option<usize> {
    let first = dests.iter().position(|d| !d.overloaded && d.weight > 0)?;
    let mut least = first;
    let mut loh = oh(&dests[first]);
    let mut lw = i64::from(dests[first].weight);
    // Branch-free body (the choice becomes conditional moves): an overloaded server is
    // never better.
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        let doh = oh(d);
        let w = i64::from(d.weight);
        if (loh * w > doh * lw) & !d.overloaded {
            least = i;
            loh = doh;
            lw = w;
        }
    }
    Some(least)
}

/// `ip_vs_wlc.c: ip_vs_wlc_schedule()`.
pub(crate) fn wlc(dests: &[Dest]) -> Option<usize> {
    weighted_least(dests, overhead)
}

/// `ip_vs_lblc.c: __ip_vs_lblc_schedule()` and `ip_vs_lblcr.c: __ip_vs_lblcr_schedule()`:
/// the same arithmetic as wlc.
pub(crate) fn lblc_wlc(dests: &[Dest]) -> Option<usize> {
    weighted_least(dests, overhead)
}

/// `ip_vs_sed.c: ip_vs_sed_schedule()`: wlc with overhead = activeconns + 1.
pub(crate) fn sed(dests: &[Dest]) -> Option<usize> {
    weighted_least(dests, expected_overhead)
}

/// `ip_vs_nq.c: ip_vs_nq_schedule()`: the first idle server (activeconns == 0) at once,
/// else the sed rule; weight-0 and overloaded servers skipped.
pub(crate) fn nq(dests: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = d.active_conns as u64 + 1;
        if d.active_conns == 0 {
            return Some(i);
        }
        let better = match least {
            None => true,
            Some((l, loh)) => loh * u64::from(d.weight) > doh * u64::from(dests[l].weight),
        };
        if better {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

/// `ip_vs_fo.c: ip_vs_fo_schedule()`: the highest weight among non-overloaded servers
/// (strict `>` starting from 0, so weight 0 never wins and the earlier server wins ties).
pub(crate) fn fo(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0u32;
    for (i, d) in dests.iter().enumerate() {
        if !d.overloaded && d.weight > hw {
            best = Some(i);
            hw = d.weight;
        }
    }
    best
}

/// `ip_vs_ovf.c: ip_vs_ovf_schedule()`: the highest weight among servers with weight > 0,
/// not overloaded and with activeconns <= weight (strict `>`; earlier wins ties).
pub(crate) fn ovf(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0u32;
    for (i, d) in dests.iter().enumerate() {
        let w = d.weight;
        if d.overloaded || d.active_conns > w || w == 0 {
            continue;
        }
        if best.is_none() || w > hw {
            best = Some(i);
            hw = w;
        }
    }
    best
}

/// `ip_vs_twos.c: ip_vs_twos_schedule()`: two weighted random picks, keep the one with the
/// lower overhead per weight (choice 2 only if strictly better).
pub(crate) fn twos(dests: &[Dest], rng: &mut Rng) -> Option<usize> {
    // total = sum of eligible weights; choice1 defaults to the *last* eligible server.
    let mut total: i32 = 0;
    let mut choice1: Option<usize> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.overloaded && d.weight > 0 {
            total = total.wrapping_add(d.weight as i32);
            choice1 = Some(i);
        }
    }
    let mut choice1 = choice1?;
    // "Add 1 to total_weight so that the random weights are inclusive from 0 to total".
    let total = total.wrapping_add(1);
    let mut r1 = (rng.next_u32() % total as u32) as i32;
    let mut r2 = (rng.next_u32() % total as u32) as i32;
    let (mut w1, mut w2, mut oh1, mut oh2) = (-1i32, -1i32, 0i32, 0i32);
    let mut choice2: Option<usize> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let w = d.weight as i32;
        r1 = r1.wrapping_sub(w);
        r2 = r2.wrapping_sub(w);
        if r1 <= 0 && w1 == -1 {
            choice1 = i;
            w1 = w;
            oh1 = d.conn_overhead() as i32;
        }
        if r2 <= 0 && w2 == -1 {
            choice2 = Some(i);
            w2 = w;
            oh2 = d.conn_overhead() as i32;
        }
        if w1 != -1 && w2 != -1 {
            break;
        }
    }
    // The kernel compares in `int` (wrapping, -fno-strict-overflow).
    if let Some(c2) = choice2
        && w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2)
    {
        choice1 = c2;
    }
    Some(choice1)
}
