//! Round robin (rr) and weighted round robin (wrr): the schedulers that keep a position in
//! the real-server list between connections.
//!
//! The kernel keeps a pointer into its circular list (the list head or a dest); here it is
//! `None` (the head) or an index, adjusted when the list changes.

use super::DestChange;
use crate::dest::Dest;

/// Round-robin state: the last picked position (`svc->sched_data` in `ip_vs_rr.c`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rr {
    /// `None` = the list head (nothing picked yet); else the index of the last pick.
    pos: Option<usize>,
}

impl Rr {
    /// `ip_vs_rr.c: ip_vs_rr_init_svc()`: start at the list head.
    pub fn new() -> Rr {
        Rr { pos: None }
    }

    /// Keep the position on the same server when indexes shift.
    pub(crate) fn on_change(&mut self, change: DestChange) {
        let Some(p) = self.pos else { return };
        match change {
            DestChange::Added(i) => {
                if p >= i {
                    self.pos = Some(p + 1);
                }
            }
            DestChange::Removed { index } => {
                if p == index {
                    // ip_vs_rr.c: ip_vs_rr_del_dest(): the position moves to the entry
                    // before the removed one (`p->next->prev`), the head if it was first.
                    self.pos = index.checked_sub(1);
                } else if p > index {
                    self.pos = Some(p - 1);
                }
            }
            DestChange::Edited(_) => {}
        }
    }

    /// `ip_vs_rr.c: ip_vs_rr_schedule()`.
    pub(crate) fn schedule(&mut self, dests: &[Dest]) -> Option<usize> {
        let n = dests.len();
        let last = self.pos.filter(|&p| p < n);
        let start = last.map_or(0, |p| p + 1);
        // First pass: from after `last` to the end of the list. Second pass (only when
        // `last` is a server, not the head): from the head up to and including `last`.
        let second = last.map_or(0..0, |p| 0..p + 1);
        for i in (start..n).chain(second) {
            let d = &dests[i];
            if !d.overloaded && d.weight > 0 {
                self.pos = Some(i);
                return Some(i);
            }
        }
        None
    }
}

/// Weighted round-robin state (`struct ip_vs_wrr_mark` in `ip_vs_wrr.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrr {
    /// Current list position: `None` = the list head.
    cl: Option<usize>,
    /// Current weight.
    cw: i64,
    /// Maximum weight, less `di - 1`.
    mw: i64,
    /// Decrement: the gcd of the positive weights.
    di: i64,
}

impl Wrr {
    /// `ip_vs_wrr.c: ip_vs_wrr_init_svc()`.
    pub fn new(dests: &[Dest]) -> Wrr {
        let di = wrr_gcd_weight(dests);
        let mw = wrr_max_weight(dests) - (di - 1);
        Wrr {
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    /// (cl, cw, mw, di), for tests.
    #[cfg(test)]
    pub(crate) fn state(&self) -> (Option<usize>, i64, i64, i64) {
        (self.cl, self.cw, self.mw, self.di)
    }

    /// `ip_vs_wrr.c: ip_vs_wrr_dest_changed()` (add, delete and update alike).
    pub(crate) fn on_change(&mut self, dests: &[Dest]) {
        self.cl = None;
        self.di = wrr_gcd_weight(dests);
        self.mw = wrr_max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// `ip_vs_wrr.c: ip_vs_wrr_schedule()`.
    pub(crate) fn schedule(&mut self, dests: &[Dest]) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl.filter(|&p| p < n);
        let mut pos = last;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            for (i, d) in dests.iter().enumerate().skip(pos.map_or(0, |p| p + 1)) {
                if !d.overloaded && i64::from(d.weight) >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            // The walk reached the list head.
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Stop if the last pass already covered every server (or started at the head).
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first traversal (for weight >= 1) only covered the servers after
                // `last`: go on up to `last`.
                stop = last;
            }
        }
    }
}

/// `ip_vs_wrr.c: ip_vs_wrr_gcd_weight()`: gcd of the positive weights, 1 if none.
fn wrr_gcd_weight(dests: &[Dest]) -> i64 {
    let g = dests.iter().filter(|d| d.weight > 0).fold(0, |g, d| {
        if g > 0 {
            super::gcd(d.weight, g)
        } else {
            d.weight
        }
    });
    if g == 0 { 1 } else { i64::from(g) }
}

/// `ip_vs_wrr.c: ip_vs_wrr_max_weight()`: the largest weight (0 if none).
fn wrr_max_weight(dests: &[Dest]) -> i64 {
    dests.iter().map(|d| i64::from(d.weight)).max().unwrap_or(0)
}
