//! All the virtual routers of one daemon, and keepalived's sync groups
//! (`vrrp_sync_group`): instances that change state together, e.g. the public VIP and the
//! NAT router's private floating IP, so that a director is never master on one side and
//! backup on the other.
//!
//! Group rules (keepalived `vrrp_sync.c`):
//! - a member goes Master only when every member wants to (its Master_Down_Timer fired, or
//!   it already is Master) — "prefer backup state to avoid thrashing"; until then it stays
//!   Backup and re-arms its timer;
//! - a member that steps down from Master (it heard a higher priority) pulls every other
//!   Master member to Backup, without resigning (`vrrp_sync_backup`);
//! - a member whose own tracking faults puts the whole group in Fault (masters resign with
//!   priority 0, `vrrp_sync_fault`); the group leaves Fault when no member has a fault;
//! - a master member that heard a lower priority makes every master member re-announce.

use std::net::IpAddr;

use super::packet::{AdvertError, Family};
use super::router::{ConfigError, Event, RouterConfig, State, Transmit, VirtualRouter};
use crate::time::Instant;

/// Index of a router in a [`Vrrp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterId(pub usize);

/// Index of a sync group in a [`Vrrp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyncGroupId(pub usize);

/// The state of a sync group as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// Every member is Master.
    Master,
    /// Some member is neither Master nor in Fault.
    Backup,
    /// Some member is in Fault.
    Fault,
}

/// What the daemon must do, tagged with its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpEvent {
    /// An event of one router.
    Router(RouterId, Event),
    /// A sync group changed state (keepalived's group `notify_master` / `notify_backup` /
    /// `notify_fault`).
    Group(SyncGroupId, GroupState),
}

/// Why a sync group was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupError {
    /// A member id that is not a router of this [`Vrrp`].
    UnknownRouter(RouterId),
    /// A router already in a group (keepalived: "cannot exist in more than one sync group").
    AlreadyGrouped(RouterId),
    /// No members.
    Empty,
    /// Groups must be added before `start`.
    AlreadyStarted,
}

impl core::fmt::Display for GroupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GroupError::UnknownRouter(id) => write!(f, "no router {}", id.0),
            GroupError::AlreadyGrouped(id) => write!(f, "router {} is already in a group", id.0),
            GroupError::Empty => f.write_str("a sync group needs members"),
            GroupError::AlreadyStarted => f.write_str("groups must be added before start"),
        }
    }
}

impl std::error::Error for GroupError {}

#[derive(Debug, Clone)]
struct Group {
    members: Vec<usize>,
    state: Option<GroupState>,
}

/// The virtual routers of a daemon and their sync groups; the same sans-IO shape as
/// [`VirtualRouter`], with router ids on inputs and outputs.
#[derive(Debug, Clone, Default)]
pub struct Vrrp {
    routers: Vec<VirtualRouter>,
    groups: Vec<Group>,
    started: bool,
    next_tx: usize,
    next_ev: usize,
    group_events: std::collections::VecDeque<VrrpEvent>,
}

impl Vrrp {
    /// An empty set.
    pub fn new() -> Vrrp {
        Vrrp::default()
    }

    /// Add a router.
    pub fn add_router(&mut self, config: RouterConfig) -> Result<RouterId, ConfigError> {
        let r = VirtualRouter::new(config)?;
        self.routers.push(r);
        Ok(RouterId(self.routers.len() - 1))
    }

    /// Add a sync group. A group of one member behaves like no group (keepalived removes
    /// such groups).
    pub fn add_sync_group(&mut self, members: &[RouterId]) -> Result<SyncGroupId, GroupError> {
        if self.started {
            return Err(GroupError::AlreadyStarted);
        }
        if members.is_empty() {
            return Err(GroupError::Empty);
        }
        let mut seen = Vec::new();
        for &id in members {
            let r = self
                .routers
                .get(id.0)
                .ok_or(GroupError::UnknownRouter(id))?;
            if r.in_group || seen.contains(&id.0) {
                return Err(GroupError::AlreadyGrouped(id));
            }
            seen.push(id.0);
        }
        if seen.len() > 1 {
            for &i in &seen {
                self.routers[i].in_group = true;
            }
        }
        self.groups.push(Group {
            members: seen,
            state: None,
        });
        Ok(SyncGroupId(self.groups.len() - 1))
    }

    /// The router `id`.
    pub fn router(&self, id: RouterId) -> &VirtualRouter {
        &self.routers[id.0]
    }

    /// Every router with its id.
    pub fn routers(&self) -> impl Iterator<Item = (RouterId, &VirtualRouter)> {
        self.routers
            .iter()
            .enumerate()
            .map(|(i, r)| (RouterId(i), r))
    }

    /// The first router of `family` with `vrid`, for demultiplexing received adverts (a
    /// daemon with the same VRID on several interfaces keeps its own map).
    pub fn find(&self, family: Family, vrid: u8) -> Option<RouterId> {
        self.routers
            .iter()
            .position(|r| r.family() == family && r.config().vrid == vrid)
            .map(RouterId)
    }

    /// The state of sync group `id`.
    pub fn group_state(&self, id: SyncGroupId) -> Option<GroupState> {
        self.groups.get(id.0).map(|g| self.compute_group_state(g))
    }

    /// Start every router.
    pub fn start(&mut self, now: Instant) {
        self.started = true;
        for r in &mut self.routers {
            r.start(now);
        }
        self.reconcile(now);
    }

    /// Stop every router (masters resign with priority 0).
    pub fn shutdown(&mut self, now: Instant) {
        for r in &mut self.routers {
            r.shutdown(now);
        }
    }

    /// Handle an advertisement for router `id` (see [`VirtualRouter::handle_advert`]).
    pub fn handle_advert(
        &mut self,
        now: Instant,
        id: RouterId,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<(), AdvertError> {
        let r = self.routers.get_mut(id.0).ok_or(AdvertError::WrongVrid)?;
        let res = r.handle_advert(now, src, dst, ttl, bytes);
        self.reconcile(now);
        res
    }

    /// Handle a whole IPv4 AH packet for router `id` (see
    /// [`VirtualRouter::handle_ah_packet`]; demultiplex with [`super::ah::peek_vrid`]).
    pub fn handle_ah_packet(
        &mut self,
        now: Instant,
        id: RouterId,
        packet: &[u8],
    ) -> Result<(), AdvertError> {
        let r = self.routers.get_mut(id.0).ok_or(AdvertError::WrongVrid)?;
        let res = r.handle_ah_packet(now, packet);
        self.reconcile(now);
        res
    }

    /// Report a tracked object of router `id` (see [`VirtualRouter::set_track`]).
    pub fn set_track(&mut self, now: Instant, id: RouterId, index: usize, up: bool) {
        if let Some(r) = self.routers.get_mut(id.0) {
            r.set_track(now, index, up);
        }
        self.reconcile(now);
    }

    /// Handle every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for r in &mut self.routers {
            r.handle_timeout(now);
        }
        self.reconcile(now);
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.routers.iter().filter_map(|r| r.poll_timeout()).min()
    }

    /// The next advertisement to send, with the router that sends it.
    pub fn poll_transmit(&mut self) -> Option<(RouterId, Transmit)> {
        let n = self.routers.len();
        for k in 0..n {
            let i = (self.next_tx + k) % n;
            if let Some(t) = self.routers[i].poll_transmit() {
                self.next_tx = i;
                return Some((RouterId(i), t));
            }
        }
        None
    }

    /// The next event: router events in the order each router produced them (routers
    /// visited in turn), then group changes.
    pub fn poll_event(&mut self) -> Option<VrrpEvent> {
        let n = self.routers.len();
        for k in 0..n {
            let i = (self.next_ev + k) % n;
            if let Some(e) = self.routers[i].poll_event() {
                self.next_ev = i;
                return Some(VrrpEvent::Router(RouterId(i), e));
            }
        }
        self.group_events.pop_front()
    }

    fn compute_group_state(&self, g: &Group) -> GroupState {
        let states = g.members.iter().map(|&i| self.routers[i].state());
        if states.clone().any(|s| s == State::Fault) {
            GroupState::Fault
        } else if states.clone().all(|s| s == State::Master) {
            GroupState::Master
        } else {
            GroupState::Backup
        }
    }

    /// Apply the group rules until nothing changes.
    fn reconcile(&mut self, now: Instant) {
        for gi in 0..self.groups.len() {
            let members = self.groups[gi].members.clone();
            if members.len() < 2 {
                continue;
            }
            // Bounded: each pass moves members monotonically towards one state.
            for _ in 0..4 {
                let mut changed = false;
                let running = members
                    .iter()
                    .any(|&i| self.routers[i].state() != State::Initialize);
                if !running {
                    break;
                }
                if members.iter().any(|&i| self.routers[i].own_fault()) {
                    for &i in &members {
                        let r = &mut self.routers[i];
                        if matches!(r.state(), State::Backup | State::Master) {
                            r.enter_fault(now);
                            changed = true;
                        }
                    }
                } else {
                    for &i in &members {
                        let r = &mut self.routers[i];
                        if r.state() == State::Fault {
                            r.leave_fault(now);
                            changed = true;
                        }
                    }
                    if members.iter().any(|&i| self.routers[i].stepped_down) {
                        for &i in &members {
                            let r = &mut self.routers[i];
                            r.stepped_down = false;
                            if r.state() == State::Master {
                                r.force_backup(now);
                                changed = true;
                            }
                        }
                    }
                    let all_want = members.iter().all(|&i| {
                        let r = &self.routers[i];
                        r.state() == State::Master || (r.state() == State::Backup && r.wants_master)
                    });
                    if all_want {
                        for &i in &members {
                            let r = &mut self.routers[i];
                            if r.state() != State::Master {
                                r.become_master(now);
                                changed = true;
                            }
                        }
                    }
                    if members.iter().any(|&i| self.routers[i].lower_prio_heard) {
                        for &i in &members {
                            let r = &mut self.routers[i];
                            if r.lower_prio_heard {
                                r.lower_prio_heard = false;
                            } else {
                                r.announce_lower_prio(now);
                            }
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            let st = self.compute_group_state(&self.groups[gi]);
            if self.groups[gi].state != Some(st) {
                self.groups[gi].state = Some(st);
                self.group_events
                    .push_back(VrrpEvent::Group(SyncGroupId(gi), st));
            }
        }
        // Outside groups the flags mean nothing; keep them from accumulating.
        for r in &mut self.routers {
            if !r.in_group {
                r.stepped_down = false;
                r.lower_prio_heard = false;
            }
        }
    }
}
