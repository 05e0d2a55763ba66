//! A monitored virtual service: its quorum (with hysteresis) and its sorry server.
//!
//! keepalived `check/ipwrapper.c`: the live weight is the sum of the weights of the alive
//! real servers (`weigh_live_realservers()`); `update_quorum_state()` gains the quorum at
//! `quorum + hysteresis` and loses it below `quorum − hysteresis` (or when nothing is
//! alive). While the quorum is lost the sorry server, if any, is in and the alive real
//! servers are out (`perform_quorum_state()`).
//!
//! One deliberate difference: keepalived sums `effective_weight` (which `misc_dynamic`
//! moves); rvs sums the *configured* weights of the up servers, so slow start, dynamic
//! and load-driven weights never move a service's quorum.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::ServiceKey;

use super::spec::{Notify, ServiceHealth, SorryServer};

/// The quorum verdict of a service after a change of its live weight.
///
/// keepalived `update_quorum_state()`: the threshold is `quorum + hysteresis` while the
/// quorum is down and `quorum − hysteresis` while it is up ("`threshold = vs->quorum +
/// (vs->quorum_state_up ? -1 : 1) * vs->hysteresis`"); it is lost when "`!weight_sum ||
/// weight_sum < threshold`". rvs saturates `quorum − hysteresis` at 0 and also refuses to
/// gain the quorum with no live weight at all (keepalived would gain it and lose it on the
/// next evaluation when `quorum + hysteresis` is 0).
pub(super) fn quorum_next(up: bool, live: u64, quorum: u32, hysteresis: u32) -> bool {
    if up {
        !(live == 0 || live < u64::from(quorum.saturating_sub(hysteresis)))
    } else {
        live > 0 && live >= u64::from(quorum) + u64::from(hysteresis)
    }
}

/// The quorum at start-up (keepalived `set_quorum_states()` then `init_service_vs()`):
/// up when the live weight reaches `quorum + hysteresis`, with something alive.
pub(super) fn quorum_initial(live: u64, quorum: u32, hysteresis: u32) -> bool {
    quorum_next(false, live, quorum, hysteresis)
}

/// A monitored virtual service.
#[derive(Debug, Clone)]
pub(super) struct ServiceState {
    /// The service.
    pub(super) key: ServiceKey,
    /// `quorum`.
    pub(super) quorum: u32,
    /// `hysteresis`.
    pub(super) hysteresis: u32,
    /// `quorum_up` command.
    pub(super) quorum_up_cmd: Option<Notify>,
    /// `quorum_down` command.
    pub(super) quorum_down_cmd: Option<Notify>,
    /// `omega`.
    pub(super) omega: bool,
    /// The sorry server.
    pub(super) sorry: Option<SorryServer>,
    /// Slots of its monitored real servers in the engine, in configuration order.
    pub(super) servers: Vec<usize>,
    /// Slot of each monitored real server by address and port.
    pub(super) by_addr: HashMap<(IpAddr, u16), usize>,
    /// The quorum is up.
    pub(super) quorum_up: bool,
}

impl ServiceState {
    /// A service with no servers yet and the quorum down.
    pub(super) fn new(spec: &ServiceHealth) -> ServiceState {
        ServiceState {
            key: spec.service,
            quorum: spec.quorum,
            hysteresis: spec.hysteresis,
            quorum_up_cmd: spec.quorum_up.clone(),
            quorum_down_cmd: spec.quorum_down.clone(),
            omega: spec.omega,
            sorry: spec.sorry_server,
            servers: Vec::new(),
            by_addr: HashMap::new(),
            quorum_up: false,
        }
    }

    /// The sorry server, while it is in (the quorum is lost).
    pub(super) fn sorry_in(&self) -> Option<SorryServer> {
        self.sorry.filter(|_| !self.quorum_up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_band() {
        // quorum 10, hysteresis 3: up at >= 13, down below 7.
        assert!(!quorum_initial(12, 10, 3));
        assert!(quorum_initial(13, 10, 3));
        assert!(quorum_next(false, 13, 10, 3));
        assert!(!quorum_next(false, 12, 10, 3));
        assert!(quorum_next(true, 7, 10, 3));
        assert!(!quorum_next(true, 6, 10, 3));
        // Saturating: hysteresis above the quorum keeps it up down to 1.
        assert!(quorum_next(true, 1, 2, 5));
        assert!(!quorum_next(true, 0, 2, 5));
        // Nothing alive: never up, even with quorum 0.
        assert!(!quorum_initial(0, 0, 0));
        assert!(!quorum_next(true, 0, 0, 0));
        assert!(quorum_initial(1, 0, 0));
    }
}
