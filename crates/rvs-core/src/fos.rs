//! Piranha's failover services (`service = fos`), sans-IO: what a director runs instead of
//! virtual services when lvs.cf says `service = fos`.
//!
//! Piranha splits this over three programs; [`FosNode`] is all three for one director:
//! - `pulse` decides which node is active by the heartbeat ([`Pulse`] with
//!   [`PulseConfig::fos`](crate::pulse::PulseConfig::fos)). Active, it brings up each
//!   service's floating address and announces it (`activateFosServices()`: five gratuitous
//!   ARPs per address, one second apart) and runs `fos --active`; inactive, it takes the
//!   addresses down and runs `fos --monitor` (`activateFosMonitors()`). A primary without
//!   a backup is active from the start ("FOS backup node not defined -- skipping checks").
//! - `fos --active` (fos.c `run()`) runs each active service's `stop_cmd`, then its
//!   `start_cmd`; stopped (SIGTERM, when pulse goes inactive or ends) it runs each
//!   `stop_cmd` (`shutdownIPservices()`).
//! - `fos --monitor` runs each `stop_cmd` ("Stopping local services (if any)"), then one
//!   `nanny --fos` per service, which checks the service at its floating address — held by
//!   the partner — every `timeout` seconds with nanny's check (fos.c 1.13: "swapped virt and
//!   real calls that caused fos to check the real IP as opposed to the VIP"). nanny.c
//!   `run()` with `SERV_FOS` (`reentry` = `timeout`, so one good check makes the service
//!   "available"): a failed check after a good one exits ("Exiting due to connection
//!   failure of %s:%d"); before any good check, the second failure exits ("Timeout waiting
//!   for remote service -- triggering failover!"). fos exits when a monitor does, and pulse
//!   takes over ([`Pulse::take_over`]).
//!
//! The daemon runs the commands ([`FosEvent::Stop`], [`FosEvent::Start`]) and the checks
//! ([`FosEvent::Check`], answered with [`FosNode::check_done`]), and owns or releases the
//! addresses on [`FosEvent::Pulse`]. No gateway is pinged: Piranha 0.8's fos and nanny
//! check only the service (nanny's ICMP echo before connecting is sent but its reply is
//! awaited only when built with `USE_PING`).

use core::time::Duration;
use std::collections::VecDeque;
use std::net::IpAddr;

use crate::pulse::{HeartbeatError, HeartbeatTransmit, Pulse, PulseEvent, Reason};
use crate::time::Instant;

/// What the daemon must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FosEvent {
    /// pulse's part: own the floating addresses ([`PulseEvent::Activate`]), release them
    /// ([`PulseEvent::Deactivate`]), announce them ([`PulseEvent::Announce`]).
    Pulse(PulseEvent),
    /// Run service `n`'s `stop_cmd` (and wait for it).
    Stop(usize),
    /// Run service `n`'s `start_cmd` (and wait for it).
    Start(usize),
    /// Check service `n` at its floating address now; answer with
    /// [`FosNode::check_done`]. The check's own time limit is the service's interval.
    Check(usize),
    /// Service `n` answered its monitor for the first time ("Remote service %s:%d is
    /// available").
    Available(usize),
    /// Service `n`'s monitor failed: after a good check (`after_available`, "Exiting due
    /// to connection failure"), or twice before any ("Timeout waiting for remote service
    /// -- triggering failover!"). pulse takes over next.
    Failed {
        /// The service.
        service: usize,
        /// Whether it had answered before.
        after_available: bool,
    },
}

/// What fos is running now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FosMode {
    /// Nothing (before the first decision, after [`FosNode::shutdown`], or between a
    /// monitor's failure and the takeover).
    Idle,
    /// `fos --monitor`: the services are stopped here and checked at the partner.
    Monitoring,
    /// `fos --active`: the services run here.
    Serving,
}

/// One service's monitor (one `nanny --fos`).
#[derive(Debug, Clone, Copy)]
struct Monitor {
    interval: Duration,
    /// When the next check is due (None while one runs).
    next_at: Option<Instant>,
    /// nanny's `isActive`: a check has succeeded.
    available: bool,
    /// Failures before any success (nanny's `fos_counter`).
    failures: u32,
}

/// The failover services of one director: pulse's heartbeat (if any) and fos.
#[derive(Debug, Clone)]
pub struct FosNode {
    pulse: Option<Pulse>,
    monitors: Vec<Monitor>,
    mode: FosMode,
    stopped: bool,
    events: VecDeque<FosEvent>,
}

impl FosNode {
    /// Start at `now` with `intervals[n]` = service `n`'s `timeout` (time between checks,
    /// and each check's limit). `pulse` None (no heartbeat configured): the services run
    /// here from the start. Else as pulse starts: active at once when the pulse engine is
    /// (`force_active`), otherwise monitoring.
    pub fn new(pulse: Option<Pulse>, intervals: &[Duration], now: Instant) -> FosNode {
        let monitors = intervals
            .iter()
            .map(|&interval| Monitor {
                interval: interval.max(Duration::from_secs(1)),
                next_at: None,
                available: false,
                failures: 0,
            })
            .collect();
        let mut n = FosNode {
            pulse,
            monitors,
            mode: FosMode::Idle,
            stopped: false,
            events: VecDeque::new(),
        };
        match &n.pulse {
            None => n.serve(),
            // pulse.c run(): "Forced active on startup: activating fos" comes out of the
            // engine as Activate(Forced).
            Some(p) if p.is_active() => {}
            // "Starting Failover Service Monitors".
            Some(_) => n.monitor(now),
        }
        n.pump(now);
        n
    }

    /// The heartbeat engine (None without one).
    pub fn pulse(&self) -> Option<&Pulse> {
        self.pulse.as_ref()
    }

    /// What fos runs now.
    pub fn mode(&self) -> FosMode {
        self.mode
    }

    /// True while this node runs the services and holds their addresses.
    pub fn is_active(&self) -> bool {
        self.mode == FosMode::Serving
    }

    /// fos --active: (pulse killed the monitors) each service's stop_cmd, then start_cmd.
    fn serve(&mut self) {
        if self.mode == FosMode::Serving {
            return;
        }
        for m in &mut self.monitors {
            m.next_at = None;
        }
        for n in 0..self.monitors.len() {
            self.events.push_back(FosEvent::Stop(n));
            self.events.push_back(FosEvent::Start(n));
        }
        self.mode = FosMode::Serving;
    }

    /// pulse killed fos --active: its shutdown runs each stop_cmd.
    fn unserve(&mut self) {
        if self.mode == FosMode::Serving {
            for n in 0..self.monitors.len() {
                self.events.push_back(FosEvent::Stop(n));
            }
            self.mode = FosMode::Idle;
        }
    }

    /// fos --monitor: each stop_cmd, then one monitor per service, checking at once.
    fn monitor(&mut self, now: Instant) {
        for (n, m) in self.monitors.iter_mut().enumerate() {
            self.events.push_back(FosEvent::Stop(n));
            m.next_at = Some(now);
            m.available = false;
            m.failures = 0;
        }
        self.mode = FosMode::Monitoring;
    }

    /// Follow pulse's decisions in pulse's order: activating, the addresses come up (and
    /// are announced) before fos --active runs its commands; deactivating, fos --active's
    /// shutdown (the stop_cmds) runs before the addresses go down and fos --monitor starts
    /// (pulse.c `activateFosMonitors()`: `deactivateFos()`, then `disableInterface()`).
    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.pulse.as_mut().and_then(Pulse::poll_event) {
            match ev {
                PulseEvent::Activate(_) => {
                    self.events.push_back(FosEvent::Pulse(ev));
                    self.serve();
                }
                PulseEvent::Deactivate(why) => {
                    self.unserve();
                    self.events.push_back(FosEvent::Pulse(ev));
                    if why != Reason::Shutdown && !self.stopped {
                        self.monitor(now);
                    }
                }
                PulseEvent::Announce => self.events.push_back(FosEvent::Pulse(ev)),
            }
        }
    }

    /// The result of the check [`FosEvent::Check`] asked for: `up` when the service
    /// answered as expected. Ignored unless that monitor is waiting for it.
    pub fn check_done(&mut self, now: Instant, service: usize, up: bool) {
        if self.mode != FosMode::Monitoring {
            return;
        }
        let Some(m) = self.monitors.get_mut(service) else {
            return;
        };
        if m.next_at.is_some() {
            return;
        }
        m.next_at = Some(now + m.interval);
        let failed = if up {
            if !m.available {
                m.available = true;
                self.events.push_back(FosEvent::Available(service));
            }
            None
        } else if m.available {
            Some(true)
        } else {
            m.failures += 1;
            (m.failures >= 2).then_some(false)
        };
        let Some(after_available) = failed else {
            return;
        };
        self.events.push_back(FosEvent::Failed {
            service,
            after_available,
        });
        // The monitor exits; fos shuts the other monitors down and exits; pulse takes over.
        self.mode = FosMode::Idle;
        for m in &mut self.monitors {
            m.next_at = None;
        }
        let took = self.pulse.as_mut().is_some_and(|p| p.take_over(now));
        self.pump(now);
        if !took && !self.stopped && self.mode == FosMode::Idle {
            // pulse could not take over (`monitor_links` holds it down): monitor again.
            self.monitor(now);
        }
    }

    /// Handle a datagram received on the heartbeat port from `src`.
    pub fn handle_heartbeat(
        &mut self,
        now: Instant,
        src: IpAddr,
        bytes: &[u8],
    ) -> Result<(), HeartbeatError> {
        let r = match self.pulse.as_mut() {
            Some(p) => p.handle_heartbeat(now, src, bytes),
            None => Ok(()),
        };
        self.pump(now);
        r
    }

    /// pulse's `monitor_links` report ([`Pulse::set_links_up`]).
    pub fn set_links_up(&mut self, now: Instant, up: bool) -> bool {
        let changed = self.pulse.as_mut().is_some_and(|p| p.set_links_up(now, up));
        self.pump(now);
        changed
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let checks = self.monitors.iter().filter_map(|m| m.next_at).min();
        let beat = self.pulse.as_ref().and_then(Pulse::poll_timeout);
        match (checks, beat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handle the timers due at `now`: heartbeats, and the checks that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if let Some(p) = self.pulse.as_mut() {
            p.handle_timeout(now);
        }
        self.pump(now);
        if self.mode == FosMode::Monitoring {
            for (n, m) in self.monitors.iter_mut().enumerate() {
                if m.next_at.is_some_and(|t| t <= now) {
                    m.next_at = None;
                    self.events.push_back(FosEvent::Check(n));
                }
            }
        }
    }

    /// The next heartbeat to send.
    pub fn poll_transmit(&mut self) -> Option<HeartbeatTransmit> {
        self.pulse.as_mut()?.poll_transmit()
    }

    /// The next thing the daemon must do.
    pub fn poll_event(&mut self) -> Option<FosEvent> {
        self.events.pop_front()
    }

    /// Stop: pulse resigns (one STOPPED heartbeat) and, if the services run here, each
    /// `stop_cmd` runs (pulse's `deactivateFos()` on SIGTERM; fos --active's shutdown).
    pub fn shutdown(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(p) = self.pulse.as_mut() {
            p.shutdown(now);
        }
        self.pump(now);
        if self.pulse.is_none() && self.mode == FosMode::Serving {
            self.unserve();
            self.events
                .push_back(FosEvent::Pulse(PulseEvent::Deactivate(Reason::Shutdown)));
        }
        self.mode = FosMode::Idle;
        for m in &mut self.monitors {
            m.next_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulse::{Heartbeat, PulseConfig, Role};
    use std::net::Ipv4Addr;

    const P: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2));

    fn ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn cfg(role: Role) -> PulseConfig {
        let partner = if role == Role::Primary { B } else { P };
        PulseConfig {
            fos: true,
            ..PulseConfig::new(role, partner)
        }
    }

    /// Two fos directors with one service each (checks every 3 s), heartbeats delivered at
    /// once; the service "runs" where it was last started and not stopped (a start repairs
    /// a broken one), and a check
    /// succeeds when it runs on the other node (the holder of the floating address) and is
    /// not broken there.
    struct Pair {
        now: Instant,
        nodes: [FosNode; 2],
        running: [bool; 2],
        broken: [bool; 2],
        owns: [bool; 2],
        log: Vec<(Instant, usize, FosEvent)>,
    }

    impl Pair {
        fn new() -> Pair {
            let iv = [Duration::from_secs(3)];
            let nodes = [
                FosNode::new(
                    Some(Pulse::new(cfg(Role::Primary), Instant::ZERO).unwrap()),
                    &iv,
                    Instant::ZERO,
                ),
                FosNode::new(
                    Some(Pulse::new(cfg(Role::Backup), Instant::ZERO).unwrap()),
                    &iv,
                    Instant::ZERO,
                ),
            ];
            let mut p = Pair {
                now: Instant::ZERO,
                nodes,
                running: [false; 2],
                broken: [false; 2],
                owns: [false; 2],
                log: Vec::new(),
            };
            p.flush();
            p
        }

        fn flush(&mut self) {
            loop {
                let mut any = false;
                for i in 0..2 {
                    while let Some(tx) = self.nodes[i].poll_transmit() {
                        any = true;
                        let src = if i == 0 { P } else { B };
                        self.nodes[1 - i]
                            .handle_heartbeat(self.now, src, &tx.payload)
                            .unwrap();
                    }
                    while let Some(e) = self.nodes[i].poll_event() {
                        any = true;
                        self.log.push((self.now, i, e));
                        match e {
                            FosEvent::Stop(0) => self.running[i] = false,
                            FosEvent::Start(0) => {
                                // A restarted service works again.
                                self.running[i] = true;
                                self.broken[i] = false;
                            }
                            FosEvent::Pulse(PulseEvent::Activate(_)) => self.owns[i] = true,
                            FosEvent::Pulse(PulseEvent::Deactivate(_)) => self.owns[i] = false,
                            FosEvent::Check(0) => {
                                let j = 1 - i;
                                let up = self.owns[j] && self.running[j] && !self.broken[j];
                                let now = self.now;
                                self.nodes[i].check_done(now, 0, up);
                            }
                            _ => {}
                        }
                    }
                }
                if !any {
                    break;
                }
            }
        }

        fn run_until(&mut self, t: Instant) {
            while let Some(n) = (0..2).filter_map(|i| self.nodes[i].poll_timeout()).min() {
                if n > t {
                    break;
                }
                self.now = self.now.max(n);
                let now = self.now;
                for i in 0..2 {
                    if self.nodes[i].poll_timeout().is_some_and(|x| x <= now) {
                        self.nodes[i].handle_timeout(now);
                    }
                }
                self.flush();
            }
            self.now = t;
        }

        fn events(&self, i: usize, f: impl Fn(&FosEvent) -> bool) -> Vec<Instant> {
            self.log
                .iter()
                .filter(|(_, n, e)| *n == i && f(e))
                .map(|(t, _, _)| *t)
                .collect()
        }
    }

    #[test]
    fn fos_magics_and_stopme() {
        assert_eq!(Heartbeat::Running.magic_in(true), 0xbeef_babe);
        assert_eq!(Heartbeat::Stopped.magic_in(true), 0xdead_beef);
        assert_eq!(Heartbeat::StopMe.magic_in(true), 0xdead_dada);
        assert_eq!(
            Heartbeat::parse_in(&0xdead_dadau32.to_be_bytes(), true),
            Ok(Heartbeat::StopMe)
        );
        // Each mode refuses the other's: "Incompatible heartbeat received".
        assert_eq!(
            Heartbeat::parse_in(&Heartbeat::Running.to_bytes(), true),
            Err(HeartbeatError::Incompatible)
        );
        assert_eq!(
            Heartbeat::parse_in(&Heartbeat::Running.to_bytes_in(true), false),
            Err(HeartbeatError::Incompatible)
        );
    }

    /// Start: both stop their services and monitor; the primary activates on the backup's
    /// first STOPPED (2 s) and runs stop then start; the backup's monitor then finds the
    /// service available.
    #[test]
    fn the_primary_serves_and_the_backup_monitors() {
        let mut p = Pair::new();
        assert_eq!(p.events(0, |e| *e == FosEvent::Stop(0)), vec![ms(0)]);
        assert_eq!(p.events(1, |e| *e == FosEvent::Stop(0)), vec![ms(0)]);
        p.run_until(ms(10_000));
        assert!(p.nodes[0].is_active() && !p.nodes[1].is_active());
        let order: Vec<FosEvent> = p
            .log
            .iter()
            .filter(|(t, n, _)| *n == 0 && *t == ms(2000))
            .map(|(_, _, e)| *e)
            .filter(|e| !matches!(e, FosEvent::Pulse(PulseEvent::Announce)))
            .collect();
        assert_eq!(
            order,
            vec![
                FosEvent::Pulse(PulseEvent::Activate(Reason::PartnerStopped)),
                FosEvent::Stop(0),
                FosEvent::Start(0),
            ]
        );
        // The backup checked at 0 s (nothing there: one failure, not two) and 3 s.
        assert_eq!(
            p.events(1, |e| *e == FosEvent::Available(0)),
            vec![ms(3000)]
        );
        assert!(
            p.events(1, |e| matches!(e, FosEvent::Failed { .. }))
                .is_empty()
        );
        assert_eq!(
            p.events(1, |e| *e == FosEvent::Check(0)),
            vec![ms(0), ms(3000), ms(6000), ms(9000)]
        );
    }

    /// The service breaks on the active primary: the backup's next check fails, it takes
    /// over (stop, start, address), tells the primary STOPME, and the primary goes inactive
    /// (its stop_cmd runs twice: fos --active's shutdown, then fos --monitor's start) and
    /// monitors the backup's service.
    #[test]
    fn a_failed_service_moves_to_the_backup() {
        let mut p = Pair::new();
        p.run_until(ms(9_500));
        p.broken[0] = true;
        p.run_until(ms(20_000));
        // Checks at 9 s (good) and 12 s (failed).
        assert_eq!(
            p.events(1, |e| *e
                == FosEvent::Failed {
                    service: 0,
                    after_available: true
                }),
            vec![ms(12_000)]
        );
        assert_eq!(
            p.events(1, |e| *e
                == FosEvent::Pulse(PulseEvent::Activate(Reason::ServiceFailed))),
            vec![ms(12_000)]
        );
        assert_eq!(p.events(1, |e| *e == FosEvent::Start(0)), vec![ms(12_000)]);
        // The backup's next heartbeat (14 s) is STOPME: the primary goes inactive.
        assert_eq!(
            p.events(0, |e| *e
                == FosEvent::Pulse(PulseEvent::Deactivate(
                    Reason::PartnerTookOver
                ))),
            vec![ms(14_000)]
        );
        assert_eq!(
            p.events(0, |e| *e == FosEvent::Stop(0))
                .into_iter()
                .filter(|t| *t == ms(14_000))
                .count(),
            2
        );
        assert!(p.nodes[1].is_active() && !p.nodes[0].is_active());
        assert!(p.running[1] && !p.running[0]);
        // The primary's STOPPED (16 s) cleared the backup's STOPME; the primary monitors
        // the backup's service.
        assert!(!p.nodes[1].pulse().unwrap().failing_partner());
        assert_eq!(
            p.events(0, |e| *e == FosEvent::Available(0)),
            vec![ms(14_000)]
        );
        // And back: the service breaks on the backup; the primary's check at 23 s fails,
        // it takes over, and its RUNNING (24 s) makes the backup step down.
        p.run_until(ms(20_500));
        p.broken[1] = true;
        p.run_until(ms(30_000));
        assert!(p.nodes[0].is_active() && !p.nodes[1].is_active());
        assert_eq!(
            p.events(0, |e| *e
                == FosEvent::Pulse(PulseEvent::Activate(Reason::ServiceFailed))),
            vec![ms(23_000)]
        );
        assert_eq!(
            p.events(1, |e| *e
                == FosEvent::Pulse(PulseEvent::Deactivate(Reason::PartnerActive))),
            vec![ms(24_000)]
        );
    }

    /// nanny --fos before the service ever answered: one failure is tolerated, the second
    /// triggers the failover.
    #[test]
    fn never_available_fails_on_the_second_failure() {
        let mut node = FosNode::new(
            Some(Pulse::new(cfg(Role::Backup), Instant::ZERO).unwrap()),
            &[Duration::from_secs(3)],
            Instant::ZERO,
        );
        let mut evs = Vec::new();
        let mut drain = |n: &mut FosNode| {
            let mut v = Vec::new();
            while let Some(e) = n.poll_event() {
                v.push(e);
            }
            evs.extend(v.iter().copied());
            v
        };
        assert_eq!(drain(&mut node), vec![FosEvent::Stop(0)]);
        node.handle_timeout(ms(0));
        assert_eq!(drain(&mut node), vec![FosEvent::Check(0)]);
        node.check_done(ms(100), 0, false);
        assert!(drain(&mut node).is_empty());
        assert_eq!(
            node.poll_timeout(),
            Some(ms(2000)),
            "the heartbeat is first"
        );
        node.handle_timeout(ms(3100));
        assert!(drain(&mut node).contains(&FosEvent::Check(0)));
        // A result nobody asked for is ignored.
        node.check_done(ms(3150), 1, false);
        node.check_done(ms(3200), 0, false);
        let v = drain(&mut node);
        assert_eq!(
            v,
            [
                FosEvent::Failed {
                    service: 0,
                    after_available: false
                },
                FosEvent::Pulse(PulseEvent::Activate(Reason::ServiceFailed)),
                FosEvent::Stop(0),
                FosEvent::Start(0),
                FosEvent::Pulse(PulseEvent::Announce),
            ]
        );
        assert!(node.is_active());
        assert!(node.pulse().unwrap().failing_partner());
        // Active: a late result changes nothing; shutdown stops the service.
        node.check_done(ms(3300), 0, true);
        assert!(drain(&mut node).is_empty());
        node.shutdown(ms(4000));
        assert_eq!(
            drain(&mut node),
            vec![
                FosEvent::Stop(0),
                FosEvent::Pulse(PulseEvent::Deactivate(Reason::Shutdown))
            ]
        );
        assert_eq!(node.poll_timeout(), None);
        assert!(node.poll_transmit().is_some(), "one STOPPED heartbeat");
    }

    /// Without a heartbeat (or a primary without backup, forced active): the services run
    /// at once, nothing is checked.
    #[test]
    fn alone_the_services_run_at_once() {
        let mut node = FosNode::new(None, &[Duration::from_secs(10); 2], Instant::ZERO);
        let mut v = Vec::new();
        while let Some(e) = node.poll_event() {
            v.push(e);
        }
        assert_eq!(
            v,
            vec![
                FosEvent::Stop(0),
                FosEvent::Start(0),
                FosEvent::Stop(1),
                FosEvent::Start(1)
            ]
        );
        assert_eq!(node.poll_timeout(), None);
        let mut c = cfg(Role::Primary);
        c.backup_active = false;
        c.force_active = true;
        let mut node = FosNode::new(
            Some(Pulse::new(c, Instant::ZERO).unwrap()),
            &[Duration::from_secs(10)],
            Instant::ZERO,
        );
        let mut v = Vec::new();
        while let Some(e) = node.poll_event() {
            v.push(e);
        }
        assert_eq!(
            v,
            vec![
                FosEvent::Pulse(PulseEvent::Activate(Reason::Forced)),
                FosEvent::Stop(0),
                FosEvent::Start(0),
                FosEvent::Pulse(PulseEvent::Announce),
            ]
        );
    }

    /// `monitor_links` holds an inactive node down: its failed monitor cannot take over,
    /// so it monitors again.
    #[test]
    fn a_link_failure_blocks_the_takeover() {
        let mut c = cfg(Role::Backup);
        c.monitor_links = true;
        let mut node = FosNode::new(
            Some(Pulse::new(c, Instant::ZERO).unwrap()),
            &[Duration::from_secs(2)],
            Instant::ZERO,
        );
        assert!(node.set_links_up(ms(0), false));
        while node.poll_event().is_some() {}
        node.handle_timeout(ms(0));
        node.check_done(ms(0), 0, true);
        node.handle_timeout(ms(2000));
        while node.poll_event().is_some() {}
        node.check_done(ms(2000), 0, false);
        let mut v = Vec::new();
        while let Some(e) = node.poll_event() {
            v.push(e);
        }
        assert_eq!(
            v,
            vec![
                FosEvent::Failed {
                    service: 0,
                    after_available: true
                },
                FosEvent::Stop(0)
            ]
        );
        assert_eq!(node.mode(), FosMode::Monitoring);
        assert!(!node.is_active());
    }
}
