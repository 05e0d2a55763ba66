//! Run-time state of real servers ("destinations" in the kernel, `struct ip_vs_dest`).
//!
//! A [`Dest`] is what schedulers read: the current weight, the active / inactive connection
//! counts the connection table maintains, and the overload flag derived from the thresholds.
//! A service's dests are kept in *kernel list order*: the kernel adds each new real server at
//! the head of the service's list (`list_add_rcu(&dest->n_list, &svc->destinations)` in
//! `ip_vs_ctl.c`), so index 0 is the most recently added server. Tie-breaking in every
//! scheduler follows that order, so it matters for kernel-exact sequences.

use crate::model::{ForwardMethod, RealServerConfig};
use std::net::IpAddr;

/// One real server's run-time state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Current weight (0 = quiesced).
    pub weight: u32,
    /// The last non-zero weight (mh builds its table from it so quiesced servers keep slots).
    pub last_weight: u32,
    /// Upper connection threshold, 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold, 0 = none.
    pub l_threshold: u32,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// Connections in TCP ESTABLISHED.
    pub active_conns: u32,
    /// Every other connection (TCP in other states, UDP, ICMP).
    pub inact_conns: u32,
    /// Persistence templates pointing at this server.
    pub persist_conns: u32,
    /// `IP_VS_DEST_F_OVERLOAD`: set by the thresholds, skipped by every scheduler.
    pub overloaded: bool,
    /// `IP_VS_DEST_F_AVAILABLE`: false once the server is removed from its service (it may
    /// linger while connections still point at it).
    pub available: bool,
}

impl Dest {
    /// A fresh destination from its configuration, with no connections.
    pub fn new(cfg: &RealServerConfig) -> Dest {
        Dest {
            addr: cfg.addr,
            port: cfg.port,
            weight: cfg.weight,
            last_weight: cfg.weight,
            u_threshold: cfg.u_threshold,
            l_threshold: cfg.l_threshold,
            method: cfg.method,
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            overloaded: false,
            available: true,
        }
    }

    /// Apply an edit (`-e`): weight, thresholds, method. Connection counts are kept.
    pub fn edit(&mut self, cfg: &RealServerConfig) {
        self.weight = cfg.weight;
        if cfg.weight > 0 {
            self.last_weight = cfg.weight;
        }
        // __ip_vs_update_dest(): a raised or removed upper threshold clears the flag.
        if cfg.u_threshold == 0 || cfg.u_threshold > self.u_threshold {
            self.overloaded = false;
        }
        self.u_threshold = cfg.u_threshold;
        self.l_threshold = cfg.l_threshold;
        self.method = cfg.method;
        self.available = true;
    }

    /// The connection "overhead" of lc, wlc and twos: `(activeconns << 8) + inactconns`
    /// (`ip_vs_dest_conn_overhead()` in `include/net/ip_vs.h`).
    pub fn conn_overhead(&self) -> u32 {
        (self.active_conns << 8).wrapping_add(self.inact_conns)
    }

    /// Total connections the thresholds count (`ip_vs_dest_totalconns()`).
    pub fn total_conns(&self) -> u32 {
        self.active_conns + self.inact_conns
    }

    /// A connection was bound to this server (its count already raised): set the overload
    /// flag at the upper threshold (`ip_vs_bind_dest()` in `ip_vs_conn.c`).
    pub fn after_bind(&mut self) {
        if self.u_threshold != 0 && self.total_conns() >= self.u_threshold {
            self.overloaded = true;
        }
    }

    /// A connection left this server (its count already lowered): clear the overload flag
    /// below the lower threshold, or without one below three quarters of the upper
    /// (`ip_vs_unbind_dest()` in `ip_vs_conn.c`).
    pub fn after_unbind(&mut self) {
        let total = u64::from(self.total_conns());
        let clear = if self.l_threshold != 0 {
            total < u64::from(self.l_threshold)
        } else if self.u_threshold != 0 {
            total * 4 < u64::from(self.u_threshold) * 3
        } else {
            true
        };
        if clear {
            self.overloaded = false;
        }
    }

    /// Whether a scheduler may pick this server at all: weight > 0 and not overloaded.
    pub fn schedulable(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn dest(u: u32, l: u32) -> Dest {
        let mut c = RealServerConfig::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        c.u_threshold = u;
        c.l_threshold = l;
        Dest::new(&c)
    }

    #[test]
    fn overload_sets_at_upper_and_clears_at_three_quarters() {
        let mut d = dest(8, 0);
        for n in 1..=8 {
            d.inact_conns = n;
            d.after_bind();
            assert_eq!(d.overloaded, n >= 8, "total {n}");
        }
        // Cleared only once total * 4 < 8 * 3, i.e. total <= 5.
        for (n, want) in [(7, true), (6, true), (5, false)] {
            d.inact_conns = n;
            d.after_unbind();
            assert_eq!(d.overloaded, want, "total {n}");
        }
    }

    #[test]
    fn overload_clears_below_lower_threshold() {
        let mut d = dest(10, 4);
        d.active_conns = 10;
        d.after_bind();
        assert!(d.overloaded);
        d.active_conns = 4;
        d.after_unbind();
        assert!(d.overloaded, "4 is not below the lower threshold 4");
        d.active_conns = 3;
        d.after_unbind();
        assert!(!d.overloaded);
    }

    #[test]
    fn overhead_weights_active_by_256() {
        let mut d = dest(0, 0);
        d.active_conns = 2;
        d.inact_conns = 7;
        assert_eq!(d.conn_overhead(), 2 * 256 + 7);
    }
}
