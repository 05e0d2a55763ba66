//! Scenario tests: routers exchanging advertisements over a simulated LAN with a simulated
//! clock, and direct tests of one router's inputs and outputs.
//!
//! Times are asserted exactly. With VRRPv2 and a 1 s interval, keepalived's skew is
//! `(256 - priority) * 1_000_000 / 256` µs: 609_375 µs at priority 100 and 414_062 µs at
//! priority 150, so Master_Down_Interval is 3.609375 s and 3.414062 s.

use super::*;
use crate::time::Instant;
use core::time::Duration;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An instant `us` microseconds after the epoch.
fn us(us: u64) -> Instant {
    Instant(us * 1000)
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

const MDI_100: u64 = 3_609_375;
const MDI_150: u64 = 3_414_062;
const SKEW_100: u64 = 609_375;

const VIP: [u8; 4] = [10, 0, 0, 100];

fn cfg(vrid: u8, src: IpAddr, prio: u8) -> RouterConfig {
    let vip = match vrid {
        2 => ip4(10, 1, 0, 100),
        _ => ip4(VIP[0], VIP[1], VIP[2], VIP[3]),
    };
    let mut c = RouterConfig::new(vrid, src, vec![vip]);
    c.priority = prio;
    c
}

/// One simulated director.
struct Node {
    vrrp: Vrrp,
    alive: bool,
    /// Addresses this node receives unicast on.
    addrs: Vec<IpAddr>,
    log: Vec<(Instant, VrrpEvent)>,
    sent: Vec<(Instant, RouterId, Transmit)>,
}

/// A LAN of directors and a clock. Delivery is instantaneous; a partition drops everything.
struct Sim {
    now: Instant,
    nodes: Vec<Node>,
    partitioned: bool,
    /// Drop the adverts of this VRID (a partition of one VLAN only).
    drop_vrid: Option<u8>,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            now: Instant::ZERO,
            nodes: Vec::new(),
            partitioned: false,
            drop_vrid: None,
        }
    }

    /// Add a node with these routers (and sync groups of router indices).
    fn node(&mut self, cfgs: Vec<RouterConfig>, groups: &[&[usize]]) -> usize {
        let mut vrrp = Vrrp::new();
        let mut addrs = Vec::new();
        for c in cfgs {
            addrs.push(c.primary_ip);
            vrrp.add_router(c).unwrap();
        }
        for g in groups {
            let ids: Vec<RouterId> = g.iter().map(|&i| RouterId(i)).collect();
            vrrp.add_sync_group(&ids).unwrap();
        }
        self.nodes.push(Node {
            vrrp,
            alive: true,
            addrs,
            log: Vec::new(),
            sent: Vec::new(),
        });
        self.nodes.len() - 1
    }

    fn start(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].vrrp.start(now);
        self.flush();
    }

    fn shutdown(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].vrrp.shutdown(now);
        self.flush();
        self.nodes[i].alive = false;
    }

    fn set_track(&mut self, i: usize, router: usize, track: usize, up: bool) {
        let now = self.now;
        self.nodes[i]
            .vrrp
            .set_track(now, RouterId(router), track, up);
        self.flush();
    }

    /// Deliver every queued advertisement (and what it provokes) and collect events.
    fn flush(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                if !self.nodes[i].alive {
                    continue;
                }
                while let Some((rid, tx)) = self.nodes[i].vrrp.poll_transmit() {
                    any = true;
                    self.nodes[i].sent.push((self.now, rid, tx.clone()));
                    if self.partitioned {
                        continue;
                    }
                    for j in 0..self.nodes.len() {
                        if j == i || !self.nodes[j].alive {
                            continue;
                        }
                        let n = &mut self.nodes[j];
                        if !tx.dst.is_multicast() && !n.addrs.contains(&tx.dst) {
                            continue;
                        }
                        let vrid = if tx.header_included {
                            ah::peek_vrid(&tx.payload)
                        } else {
                            peek_vrid(&tx.payload)
                        };
                        let Some(vrid) = vrid else {
                            continue;
                        };
                        if self.drop_vrid == Some(vrid) {
                            continue;
                        }
                        if let Some(id) = n.vrrp.find(Family::of(tx.src), vrid) {
                            let _ = if tx.header_included {
                                n.vrrp.handle_ah_packet(self.now, id, &tx.payload)
                            } else {
                                n.vrrp.handle_advert(
                                    self.now,
                                    id,
                                    tx.src,
                                    tx.dst,
                                    tx.ttl,
                                    &tx.payload,
                                )
                            };
                        }
                    }
                }
            }
            for n in &mut self.nodes {
                while let Some(e) = n.vrrp.poll_event() {
                    n.log.push((self.now, e));
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Run every timer up to and including `t`.
    fn run_until(&mut self, t: Instant) {
        self.flush();
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.vrrp.poll_timeout())
                .min();
            match next {
                Some(n) if n <= t => {
                    self.now = self.now.max(n);
                    let now = self.now;
                    for node in self.nodes.iter_mut().filter(|n| n.alive) {
                        if node.vrrp.poll_timeout().is_some_and(|x| x <= now) {
                            node.vrrp.handle_timeout(now);
                        }
                    }
                    self.flush();
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
    }

    fn state(&self, i: usize, r: usize) -> State {
        self.nodes[i].vrrp.router(RouterId(r)).state()
    }

    /// Instants at which router `r` of node `i` produced an event matching `f`.
    fn when(&self, i: usize, r: usize, f: impl Fn(&Event) -> bool) -> Vec<Instant> {
        self.nodes[i]
            .log
            .iter()
            .filter_map(|(t, e)| match e {
                VrrpEvent::Router(id, ev) if id.0 == r && f(ev) => Some(*t),
                _ => None,
            })
            .collect()
    }

    fn became_master(&self, i: usize, r: usize) -> Vec<Instant> {
        self.when(i, r, |e| matches!(e, Event::BecameMaster { .. }))
    }

    fn group_states(&self, i: usize) -> Vec<(Instant, GroupState)> {
        self.nodes[i]
            .log
            .iter()
            .filter_map(|(t, e)| match e {
                VrrpEvent::Group(_, s) => Some((*t, *s)),
                _ => None,
            })
            .collect()
    }
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn a_ip() -> IpAddr {
    ip4(A[0], A[1], A[2], A[3])
}

fn b_ip() -> IpAddr {
    ip4(B[0], B[1], B[2], B[3])
}

/// Two single-router directors with these configurations, both started at 0.
fn pair(a: RouterConfig, b: RouterConfig) -> Sim {
    let mut sim = Sim::new();
    sim.node(vec![a], &[]);
    sim.node(vec![b], &[]);
    sim.start(0);
    sim.start(1);
    sim
}

#[test]
fn election_by_priority() {
    let mut sim = pair(cfg(51, a_ip(), 150), cfg(51, b_ip(), 100));
    sim.run_until(secs(20));
    // A's Master_Down_Timer (3 s + skew at 150) fires first; B hears A and stays backup.
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_150)]);
    assert!(sim.became_master(1, 0).is_empty());
    assert_eq!(sim.state(0, 0), State::Master);
    assert_eq!(sim.state(1, 0), State::Backup);
    assert_eq!(
        sim.nodes[1].vrrp.router(RouterId(0)).master(),
        Some((a_ip(), 150))
    );
    // A advertises every second from the moment it became master, to 224.0.0.18, TTL 255.
    let times: Vec<Instant> = sim.nodes[0].sent.iter().map(|(t, _, _)| *t).collect();
    let expected: Vec<Instant> = (0..17).map(|k| us(MDI_150 + k * 1_000_000)).collect();
    assert_eq!(times, expected);
    for (_, _, tx) in &sim.nodes[0].sent {
        assert_eq!(tx.dst, IpAddr::V4(MCAST_V4));
        assert_eq!(tx.ttl, 255);
        assert_eq!(tx.src, a_ip());
    }
    assert_eq!(
        sim.nodes[1].vrrp.router(RouterId(0)).stats().advert_rcvd,
        17
    );
}

#[test]
fn equal_priority_higher_address_wins() {
    let mut sim = pair(cfg(51, a_ip(), 100), cfg(51, b_ip(), 100));
    sim.run_until(secs(10));
    // Both time out together and both claim Master; A (10.0.0.1) hears B (10.0.0.2), the
    // same priority from a higher address, and steps down at that same instant.
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_100)]);
    assert_eq!(sim.became_master(1, 0), vec![us(MDI_100)]);
    assert_eq!(
        sim.when(0, 0, |e| *e
            == Event::BecameBackup {
                from: State::Master
            }),
        vec![us(MDI_100)]
    );
    assert_eq!(sim.state(0, 0), State::Backup);
    assert_eq!(sim.state(1, 0), State::Master);
}

#[test]
fn master_failure_backup_takes_over_after_master_down_interval() {
    let mut sim = pair(cfg(51, a_ip(), 150), cfg(51, b_ip(), 100));
    sim.run_until(us(10_500_000));
    // A dies silently; its last advertisement left at 10.414062 s.
    sim.nodes[0].alive = false;
    let last = sim.nodes[0].sent.last().unwrap().0;
    assert_eq!(last, us(MDI_150 + 7_000_000));
    sim.run_until(secs(30));
    assert_eq!(
        sim.became_master(1, 0),
        vec![us(MDI_150 + 7_000_000 + MDI_100)]
    );
    // The new master announces at once, and again garp_master_delay (5 s) later.
    let announces = sim.when(1, 0, |e| matches!(e, Event::Announce { repeat: 5, .. }));
    let t = MDI_150 + 7_000_000 + MDI_100;
    assert_eq!(announces, vec![us(t), us(t + 5_000_000)]);
}

#[test]
fn v3_backup_learns_the_master_interval() {
    let mut a = cfg(51, a_ip(), 150);
    a.version = Version::V3;
    a.advert_int = Duration::from_millis(500);
    let mut b = cfg(51, b_ip(), 100);
    b.version = Version::V3;
    let mut sim = pair(a, b);
    // A: 3 × 0.5 s + (256-150) × 50 cs × 625/16 µs = 1.5 s + 207_031 µs.
    let a_master = 1_707_031;
    sim.run_until(secs(5));
    assert_eq!(sim.became_master(0, 0), vec![us(a_master)]);
    let rb = sim.nodes[1].vrrp.router(RouterId(0));
    assert_eq!(rb.master_adver_interval(), Duration::from_millis(500));
    // With the learned 50 cs: 1.5 s + (256-100) × 50 × 625/16 µs = 1.804687 s.
    assert_eq!(rb.master_down_interval(), Duration::from_micros(1_804_687));
    sim.nodes[0].alive = false;
    let last = a_master + 6 * 500_000;
    assert_eq!(sim.nodes[0].sent.last().unwrap().0, us(last));
    sim.run_until(secs(10));
    assert_eq!(sim.became_master(1, 0), vec![us(last + 1_804_687)]);
    // As master, B advertises its own configured interval again.
    let (_, _, tx) = sim.nodes[1].sent.last().unwrap();
    let p = AdvertPacket::new_checked(&tx.payload[..], Family::Ipv4).unwrap();
    assert_eq!(p.interval_cs(), 100);
    assert_eq!(
        sim.nodes[1]
            .vrrp
            .router(RouterId(0))
            .master_adver_interval(),
        Duration::from_secs(1)
    );
}

/// A starts alone at priority 100 and is master from 3.609375 s (adverts at x.609375);
/// B starts at 10 s at priority 150 with `preempt`.
fn late_higher_backup(preempt: Preempt) -> Sim {
    let mut sim = Sim::new();
    sim.node(vec![cfg(51, a_ip(), 100)], &[]);
    let mut b = cfg(51, b_ip(), 150);
    b.preempt = preempt;
    sim.node(vec![b], &[]);
    sim.start(0);
    sim.run_until(secs(10));
    sim.start(1);
    sim
}

#[test]
fn preempt_higher_priority_takes_over_after_its_down_interval() {
    let mut sim = late_higher_backup(Preempt::Always);
    sim.run_until(secs(30));
    // B discards A's lower-priority adverts, so its Master_Down_Timer runs out.
    let t = 10_000_000 + MDI_150;
    assert_eq!(sim.became_master(1, 0), vec![us(t)]);
    assert_eq!(
        sim.when(0, 0, |e| matches!(
            e,
            Event::BecameBackup {
                from: State::Master
            }
        )),
        vec![us(t)]
    );
    assert_eq!(sim.state(0, 0), State::Backup);
}

#[test]
fn nopreempt_leaves_the_lower_master_alone() {
    let mut sim = late_higher_backup(Preempt::Never);
    sim.run_until(secs(60));
    assert!(sim.became_master(1, 0).is_empty());
    assert_eq!(sim.state(0, 0), State::Master);
    assert_eq!(
        sim.nodes[1].vrrp.router(RouterId(0)).master(),
        Some((a_ip(), 100))
    );
}

#[test]
fn preempt_delay_accepts_the_lower_master_for_the_delay() {
    let mut sim = late_higher_backup(Preempt::After(Duration::from_secs(5)));
    // The first advert B hears (10.609375 s) starts the 5 s delay (until 15.609375 s);
    // adverts up to 14.609375 s are accepted, the one at 15.609375 s is not, so B's timer
    // runs out Master_Down_Interval after 14.609375 s.
    sim.run_until(us(18_000_000));
    assert!(sim.became_master(1, 0).is_empty());
    sim.run_until(secs(30));
    assert_eq!(sim.became_master(1, 0), vec![us(14_609_375 + MDI_150)]);
    assert_eq!(sim.state(0, 0), State::Backup);
}

#[test]
fn priority_zero_resignation_takeover_after_skew() {
    let mut sim = pair(cfg(51, a_ip(), 150), cfg(51, b_ip(), 100));
    sim.run_until(us(10_200_000));
    sim.shutdown(0);
    // A's last packet is a priority-0 advertisement.
    let (_, _, tx) = sim.nodes[0].sent.last().unwrap();
    assert_eq!(tx.payload[2], 0);
    assert_eq!(
        sim.nodes[0].vrrp.router(RouterId(0)).stats().pri_zero_sent,
        1
    );
    assert_eq!(
        sim.when(0, 0, |e| matches!(
            e,
            Event::Stopped {
                from: State::Master
            }
        )),
        vec![us(10_200_000)]
    );
    sim.run_until(secs(20));
    // Skew_Time, not Master_Down_Interval.
    assert_eq!(sim.became_master(1, 0), vec![us(10_200_000 + SKEW_100)]);
    assert_eq!(
        sim.nodes[1].vrrp.router(RouterId(0)).stats().pri_zero_rcvd,
        1
    );
}

#[test]
fn split_brain_heals_and_the_legitimate_master_reannounces() {
    let mut sim = pair(cfg(51, a_ip(), 150), cfg(51, b_ip(), 100));
    sim.partitioned = true;
    sim.run_until(us(10_500_000));
    assert_eq!(sim.state(0, 0), State::Master);
    assert_eq!(sim.state(1, 0), State::Master);
    sim.partitioned = false;
    let before = sim.nodes[0].sent.len();
    sim.run_until(secs(20));
    // B's advert at 10.609375 s reaches A: A answers at once with an advert ("forcing new
    // election") and re-announces its addresses, now and garp_lower_prio_delay later; B
    // hears the higher priority and steps down.
    let heal = 10_609_375;
    assert_eq!(sim.nodes[0].sent[before].0, us(heal));
    assert_eq!(
        sim.when(0, 0, |e| matches!(
            e,
            Event::Announce {
                reason: AnnounceReason::LowerPriority | AnnounceReason::LowerPriorityDelay,
                ..
            }
        )),
        vec![us(heal), us(heal + 5_000_000)]
    );
    assert_eq!(
        sim.when(1, 0, |e| matches!(
            e,
            Event::BecameBackup {
                from: State::Master
            }
        )),
        vec![us(heal)]
    );
    assert_eq!(sim.state(0, 0), State::Master);
    assert_eq!(sim.state(1, 0), State::Backup);
}

/// A director with two routers in a sync group: VRID 1 on 10.0.0.0/24, VRID 2 on 10.1.0.0/24.
fn grouped(last: u8, prio: u8, track_vi1: Option<Track>, group: bool) -> (Vec<RouterConfig>, bool) {
    let mut vi1 = cfg(1, ip4(10, 0, 0, last), prio);
    if let Some(t) = track_vi1 {
        vi1.tracks.push(t);
    }
    let vi2 = cfg(2, ip4(10, 1, 0, last), prio);
    (vec![vi1, vi2], group)
}

fn group_sim(a: (Vec<RouterConfig>, bool), b: (Vec<RouterConfig>, bool)) -> Sim {
    let mut sim = Sim::new();
    let g: &[&[usize]] = &[&[0, 1]];
    sim.node(a.0, if a.1 { g } else { &[] });
    sim.node(b.0, if b.1 { g } else { &[] });
    sim.start(0);
    sim.start(1);
    sim
}

#[test]
fn sync_group_fails_over_and_back_together() {
    let fault_track = Track {
        weight: 0,
        reverse: false,
        initially_up: true,
    };
    let mut sim = group_sim(
        grouped(1, 150, Some(fault_track), true),
        grouped(2, 100, None, true),
    );
    sim.run_until(secs(10));
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_150)]);
    assert_eq!(sim.became_master(0, 1), vec![us(MDI_150)]);
    assert_eq!(
        sim.group_states(0).last(),
        Some(&(us(MDI_150), GroupState::Master))
    );
    assert_eq!(
        sim.group_states(1).last().map(|s| s.1),
        Some(GroupState::Backup)
    );

    // VRID 1's tracked interface fails on A: the whole group goes to Fault, both masters
    // resign with priority 0, and B's group takes over Skew_Time later, both together.
    sim.run_until(us(10_200_000));
    sim.set_track(0, 0, 0, false);
    assert_eq!(sim.state(0, 0), State::Fault);
    assert_eq!(sim.state(0, 1), State::Fault);
    let resigned: Vec<u8> = sim.nodes[0]
        .sent
        .iter()
        .filter(|(t, _, _)| *t == us(10_200_000))
        .map(|(_, _, tx)| tx.payload[2])
        .collect();
    assert_eq!(resigned, vec![0, 0]);
    sim.run_until(secs(20));
    let t = 10_200_000 + SKEW_100;
    assert_eq!(sim.became_master(1, 0), vec![us(t)]);
    assert_eq!(sim.became_master(1, 1), vec![us(t)]);
    assert_eq!(
        sim.group_states(0).last(),
        Some(&(us(10_200_000), GroupState::Fault))
    );
    assert_eq!(
        sim.group_states(1).last(),
        Some(&(us(t), GroupState::Master))
    );

    // The interface comes back: A's group returns to Backup, its higher priority preempts
    // after Master_Down_Interval, and B's group follows the member that stepped down.
    sim.set_track(0, 0, 0, true);
    assert_eq!(sim.state(0, 0), State::Backup);
    assert_eq!(sim.state(0, 1), State::Backup);
    sim.run_until(secs(40));
    let back = 20_000_000 + MDI_150;
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_150), us(back)]);
    assert_eq!(sim.became_master(0, 1), vec![us(MDI_150), us(back)]);
    assert_eq!(sim.state(1, 0), State::Backup);
    assert_eq!(sim.state(1, 1), State::Backup);
    assert_eq!(
        sim.group_states(1).last(),
        Some(&(us(back), GroupState::Backup))
    );
}

#[test]
fn sync_group_goes_master_only_when_every_member_can() {
    // VRID 1 on A loses 100 priority points at 10 s (150 -> 50): B's VRID 1 (100) stops
    // accepting A's adverts. Alone, it would take over; in the group, its VRID 2 still
    // hears a healthy master, so the group stays Backup.
    let weight = Track {
        weight: -100,
        reverse: false,
        initially_up: true,
    };
    for group in [false, true] {
        let mut sim = group_sim(
            grouped(1, 150, Some(weight), group),
            grouped(2, 100, None, group),
        );
        sim.run_until(secs(10));
        sim.set_track(0, 0, 0, false);
        assert_eq!(
            sim.nodes[0].vrrp.router(RouterId(0)).effective_priority(),
            50
        );
        sim.run_until(secs(40));
        if group {
            assert!(sim.became_master(1, 0).is_empty());
            assert_eq!(sim.state(1, 0), State::Backup);
            assert_eq!(sim.state(0, 0), State::Master);
            assert!(sim.nodes[1].vrrp.router(RouterId(0)).wants_master);
        } else {
            // The last advert B accepted left at 9.414062 s (A at 150).
            assert_eq!(
                sim.became_master(1, 0),
                vec![us(MDI_150 + 6_000_000 + MDI_100)]
            );
            assert_eq!(sim.state(0, 0), State::Backup);
            assert_eq!(sim.state(0, 1), State::Master);
        }
    }
}

#[test]
fn sync_group_members_reannounce_when_one_heals_a_split_brain() {
    let mut sim = group_sim(grouped(1, 150, None, true), grouped(2, 100, None, true));
    sim.partitioned = true;
    sim.run_until(us(10_500_000));
    assert_eq!(
        sim.group_states(1).last().map(|s| s.1),
        Some(GroupState::Master)
    );
    // Only VRID 1's network heals: A's VRID 1 hears B's lower priority at 10.609375 s;
    // A's VRID 2 hears nothing, but re-announces with it (keepalived sends the lower
    // priority gratuitous ARPs for every member of the sync group).
    sim.partitioned = false;
    sim.drop_vrid = Some(2);
    sim.run_until(us(11_000_000));
    let lower = |e: &Event| {
        matches!(
            e,
            Event::Announce {
                reason: AnnounceReason::LowerPriority,
                ..
            }
        )
    };
    assert_eq!(sim.when(0, 0, lower), vec![us(10_609_375)]);
    assert_eq!(sim.when(0, 1, lower), vec![us(10_609_375)]);
    // B's VRID 1 steps down and pulls its VRID 2 with it.
    assert_eq!(sim.state(1, 0), State::Backup);
    assert_eq!(sim.state(1, 1), State::Backup);
}

#[test]
fn v2_password_must_match() {
    for (pa, pb, b_takes_over) in [("secret", "secret", false), ("secret", "other", true)] {
        let mut a = cfg(51, a_ip(), 150);
        a.auth = Auth::pass(pa);
        let mut b = cfg(51, b_ip(), 100);
        b.auth = Auth::pass(pb);
        let mut sim = pair(a, b);
        sim.run_until(secs(10));
        let rb = sim.nodes[1].vrrp.router(RouterId(0));
        assert_eq!(!sim.became_master(1, 0).is_empty(), b_takes_over);
        assert_eq!(rb.stats().error(AdvertError::AuthFailure) > 0, b_takes_over);
    }
}

#[test]
fn different_address_lists_are_dropped_and_counted() {
    let a = cfg(51, a_ip(), 150);
    let mut b = cfg(51, b_ip(), 100);
    b.addresses.push(ip4(10, 0, 0, 101));
    let mut sim = pair(a, b);
    sim.run_until(secs(10));
    assert_eq!(sim.became_master(1, 0), vec![us(MDI_100)]);
    let rb = sim.nodes[1].vrrp.router(RouterId(0));
    assert!(rb.stats().error(AdvertError::AddressCount) > 0);
    assert_eq!(rb.stats().advert_rcvd, 0);
    // Same count, different address.
    let mut b2 = cfg(51, b_ip(), 100);
    b2.addresses = vec![ip4(10, 0, 0, 99)];
    let mut sim = pair(cfg(51, a_ip(), 150), b2);
    sim.run_until(secs(10));
    let rb = sim.nodes[1].vrrp.router(RouterId(0));
    assert!(rb.stats().error(AdvertError::AddressList) > 0);
}

// ---- one router, inputs and outputs ----

fn advert(
    version: Version,
    vrid: u8,
    prio: u8,
    interval_cs: u16,
    src: IpAddr,
    dst: IpAddr,
) -> Vec<u8> {
    let addrs = [ip4(VIP[0], VIP[1], VIP[2], VIP[3])];
    let repr = AdvertRepr {
        version,
        family: Family::Ipv4,
        vrid,
        priority: prio,
        interval_cs,
        auth: Auth::None,
        addresses: &addrs,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf, src, dst).unwrap();
    buf
}

fn mcast() -> IpAddr {
    IpAddr::V4(MCAST_V4)
}

fn backup(c: RouterConfig) -> VirtualRouter {
    let mut r = VirtualRouter::new(c).unwrap();
    r.start(Instant::ZERO);
    assert_eq!(
        r.poll_event(),
        Some(Event::BecameBackup {
            from: State::Initialize
        })
    );
    r
}

#[test]
fn ttl_is_checked_for_multicast_only() {
    let mut r = backup(cfg(51, b_ip(), 100));
    let adv = advert(Version::V2, 51, 150, 100, a_ip(), mcast());
    assert_eq!(
        r.handle_advert(us(1), a_ip(), mcast(), 64, &adv),
        Err(AdvertError::BadTtl)
    );
    assert_eq!(r.stats().error(AdvertError::BadTtl), 1);
    assert_eq!(r.handle_advert(us(2), a_ip(), mcast(), 255, &adv), Ok(()));
    // Unicast: keepalived does not check the TTL (routed peers), but refuses multicast.
    let mut c = cfg(51, b_ip(), 100);
    c.unicast_peers = vec![a_ip()];
    let mut u = backup(c);
    let uni = advert(Version::V2, 51, 150, 100, a_ip(), b_ip());
    assert_eq!(u.handle_advert(us(1), a_ip(), b_ip(), 60, &uni), Ok(()));
    assert_eq!(
        u.handle_advert(us(2), a_ip(), mcast(), 255, &adv),
        Err(AdvertError::UnexpectedCast)
    );
}

#[test]
fn receive_checks_and_their_counters() {
    let mut r = backup(cfg(51, b_ip(), 100));
    let t = us(10);
    // Interval mismatch (v2 must match exactly).
    let adv = advert(Version::V2, 51, 150, 200, a_ip(), mcast());
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &adv),
        Err(AdvertError::IntervalMismatch)
    );
    // Wrong version, wrong VRID.
    let v3 = advert(Version::V3, 51, 150, 100, a_ip(), mcast());
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &v3),
        Err(AdvertError::WrongVersion)
    );
    let other = advert(Version::V2, 52, 150, 100, a_ip(), mcast());
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &other),
        Err(AdvertError::WrongVrid)
    );
    // A corrupted byte.
    let mut bad = advert(Version::V2, 51, 150, 100, a_ip(), mcast());
    bad[9] ^= 1;
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &bad),
        Err(AdvertError::BadChecksum)
    );
    // Auth type mismatch: B expects none, the advert carries PASS.
    let addrs = [ip4(VIP[0], VIP[1], VIP[2], VIP[3])];
    let pass = AdvertRepr {
        version: Version::V2,
        family: Family::Ipv4,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        auth: Auth::pass("x"),
        addresses: &addrs,
    };
    let mut buf = vec![0u8; pass.buffer_len()];
    pass.emit(&mut buf, a_ip(), mcast()).unwrap();
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &buf),
        Err(AdvertError::AuthTypeMismatch)
    );
    buf[4] = 7;
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &buf),
        Err(AdvertError::BadAuthType)
    );
    assert_eq!(
        r.handle_advert(t, "::1".parse().unwrap(), mcast(), 255, &adv),
        Err(AdvertError::WrongFamily)
    );
    let s = r.stats();
    for e in [
        AdvertError::IntervalMismatch,
        AdvertError::WrongVersion,
        AdvertError::WrongVrid,
        AdvertError::BadChecksum,
        AdvertError::AuthTypeMismatch,
        AdvertError::BadAuthType,
        AdvertError::WrongFamily,
    ] {
        assert_eq!(s.error(e), 1, "{e}");
    }
    assert_eq!(s.advert_rcvd, 0);
    // Nothing of it touched the timer.
    assert_eq!(r.poll_timeout(), Some(us(MDI_100)));
}

#[test]
fn unicast_peers_each_get_their_own_checksum() {
    let mut c = cfg(51, a_ip(), 255);
    c.version = Version::V3;
    c.unicast_peers = vec![b_ip(), ip4(10, 0, 0, 3)];
    let mut r = VirtualRouter::new(c).unwrap();
    r.start(Instant::ZERO);
    assert_eq!(r.state(), State::Master);
    let txs: Vec<Transmit> = std::iter::from_fn(|| r.poll_transmit()).collect();
    assert_eq!(txs.len(), 2);
    for (tx, peer) in txs.iter().zip([b_ip(), ip4(10, 0, 0, 3)]) {
        assert_eq!(tx.dst, peer);
        let p = AdvertPacket::new_checked(&tx.payload[..], Family::Ipv4).unwrap();
        assert!(p.verify_checksum(a_ip(), peer));
        assert!(!p.verify_checksum(a_ip(), mcast()));
        assert_eq!(p.priority(), 255);
    }
    // A v3 unicast receiver also accepts keepalived's old multicast pseudo-header.
    let mut rc = cfg(51, b_ip(), 100);
    rc.version = Version::V3;
    rc.unicast_peers = vec![a_ip()];
    let mut b = backup(rc);
    let old = advert(Version::V3, 51, 200, 100, a_ip(), mcast());
    assert_eq!(b.handle_advert(us(5), a_ip(), b_ip(), 255, &old), Ok(()));
    assert_eq!(b.master(), Some((a_ip(), 200)));
}

#[test]
fn owner_starts_master_and_schedules_its_announcements() {
    let mut r = VirtualRouter::new(cfg(51, a_ip(), 255)).unwrap();
    r.start(Instant::ZERO);
    assert_eq!(r.state(), State::Master);
    assert!(r.poll_transmit().is_some());
    assert_eq!(
        r.poll_event(),
        Some(Event::BecameMaster {
            from: State::Initialize
        })
    );
    assert_eq!(
        r.poll_event(),
        Some(Event::Announce {
            repeat: 5,
            reason: AnnounceReason::BecameMaster
        })
    );
    assert_eq!(r.poll_event(), None);
    assert_eq!(r.poll_timeout(), Some(secs(1)));
    for s in 1..=5 {
        r.handle_timeout(secs(s));
        assert!(r.poll_transmit().is_some());
    }
    assert_eq!(
        r.poll_event(),
        Some(Event::Announce {
            repeat: 5,
            reason: AnnounceReason::MasterDelay
        })
    );
    assert_eq!(r.poll_event(), None);
}

#[test]
fn leaving_master_cancels_pending_announcements_and_refresh_repeats() {
    let mut c = cfg(51, a_ip(), 100);
    c.garp.master_refresh = Some(Duration::from_secs(2));
    c.garp.master_refresh_repeat = 2;
    let mut r = backup(c);
    r.handle_timeout(us(MDI_100));
    assert_eq!(r.state(), State::Master);
    while r.poll_event().is_some() {}
    let t0 = MDI_100;
    let mut announces = Vec::new();
    let mut now = t0;
    while now < t0 + 4_500_000 {
        now += 500_000;
        r.handle_timeout(us(now));
        while let Some(e) = r.poll_event() {
            if let Event::Announce { repeat, reason } = e {
                announces.push((now - t0, repeat, reason));
            }
        }
    }
    assert_eq!(
        announces,
        vec![
            (2_000_000, 2, AnnounceReason::Refresh),
            (4_000_000, 2, AnnounceReason::Refresh)
        ]
    );
    // A higher priority arrives before garp_master_delay: the delayed burst never happens.
    let adv = advert(Version::V2, 51, 200, 100, b_ip(), mcast());
    r.handle_advert(us(now), b_ip(), mcast(), 255, &adv)
        .unwrap();
    assert_eq!(r.state(), State::Backup);
    r.handle_timeout(us(t0 + 6_000_000));
    while let Some(e) = r.poll_event() {
        assert!(!matches!(e, Event::Announce { .. }), "{e:?}");
    }
}

#[test]
fn tracking_weights_change_the_priority() {
    let mut c = cfg(51, a_ip(), 100);
    c.tracks = vec![
        Track {
            weight: 20,
            reverse: false,
            initially_up: true,
        },
        Track {
            weight: -50,
            reverse: false,
            initially_up: true,
        },
        Track {
            weight: -200,
            reverse: true,
            initially_up: false,
        },
    ];
    let mut r = VirtualRouter::new(c.clone()).unwrap();
    assert_eq!(r.effective_priority(), 120);
    r.set_track(Instant::ZERO, 1, false);
    assert_eq!(r.effective_priority(), 70);
    r.set_track(Instant::ZERO, 0, false);
    assert_eq!(r.effective_priority(), 50);
    // The reversed track is unhealthy when up: clamped at 1.
    r.set_track(Instant::ZERO, 2, true);
    assert_eq!(r.effective_priority(), 1);
    // Clamped at 254 on the way up.
    let mut hi = c.clone();
    hi.priority = 250;
    assert_eq!(VirtualRouter::new(hi).unwrap().effective_priority(), 254);
    // The owner's priority never moves.
    let mut owner = c;
    owner.priority = 255;
    let mut o = VirtualRouter::new(owner).unwrap();
    o.set_track(Instant::ZERO, 1, false);
    assert_eq!(o.effective_priority(), 255);
    // A backup whose priority rises moves its timer earlier by the change in skew.
    let mut c = cfg(51, a_ip(), 100);
    c.tracks = vec![Track {
        weight: 50,
        reverse: false,
        initially_up: false,
    }];
    let mut b = backup(c);
    assert_eq!(b.poll_timeout(), Some(us(MDI_100)));
    b.set_track(secs(1), 0, true);
    assert_eq!(b.effective_priority(), 150);
    assert_eq!(b.poll_timeout(), Some(us(MDI_150)));
}

#[test]
fn fault_from_master_resigns_and_recovers_as_backup() {
    let mut c = cfg(51, a_ip(), 100);
    c.tracks = vec![Track {
        weight: 0,
        reverse: false,
        initially_up: true,
    }];
    let mut r = backup(c);
    r.handle_timeout(us(MDI_100));
    while r.poll_transmit().is_some() {}
    while r.poll_event().is_some() {}
    r.set_track(secs(5), 0, false);
    assert_eq!(r.state(), State::Fault);
    let tx = r.poll_transmit().unwrap();
    assert_eq!(tx.payload[2], 0);
    assert_eq!(
        r.poll_event(),
        Some(Event::BecameFault {
            from: State::Master
        })
    );
    assert_eq!(r.poll_timeout(), None);
    // Adverts are checked and counted in Fault, but change nothing.
    let adv = advert(Version::V2, 51, 50, 100, b_ip(), mcast());
    assert_eq!(r.handle_advert(secs(6), b_ip(), mcast(), 255, &adv), Ok(()));
    assert_eq!(r.state(), State::Fault);
    r.set_track(secs(7), 0, true);
    assert_eq!(
        r.poll_event(),
        Some(Event::BecameBackup { from: State::Fault })
    );
    assert_eq!(
        r.poll_timeout(),
        Some(secs(7) + Duration::from_micros(MDI_100))
    );
    // Starting with the track down starts in Fault.
    let mut c = cfg(51, a_ip(), 100);
    c.tracks = vec![Track {
        weight: 0,
        reverse: false,
        initially_up: false,
    }];
    let mut f = VirtualRouter::new(c).unwrap();
    f.start(Instant::ZERO);
    assert_eq!(f.state(), State::Fault);
}

#[test]
fn two_owners_lower_the_local_priority() {
    let mut r = VirtualRouter::new(cfg(51, a_ip(), 255)).unwrap();
    r.start(Instant::ZERO);
    let adv = advert(Version::V2, 51, 255, 100, b_ip(), mcast());
    r.handle_advert(us(1), b_ip(), mcast(), 255, &adv).unwrap();
    assert_eq!(r.effective_priority(), 254);
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn master_answers_a_resigning_peer_at_once() {
    let mut r = VirtualRouter::new(cfg(51, a_ip(), 255)).unwrap();
    r.start(Instant::ZERO);
    while r.poll_transmit().is_some() {}
    let adv = advert(Version::V2, 51, 0, 100, b_ip(), mcast());
    r.handle_advert(us(300_000), b_ip(), mcast(), 255, &adv)
        .unwrap();
    assert!(r.poll_transmit().is_some());
    // And resets its Adver_Timer.
    assert_eq!(r.poll_timeout(), Some(us(1_300_000)));
}

#[test]
fn state_master_waits_one_interval_and_the_minimum_skew() {
    let mut c = cfg(51, a_ip(), 100);
    c.initial_state = InitialState::Master;
    c.preempt = Preempt::Never;
    let r = backup(c);
    // keepalived vrrp_init_state: master_adver_int + VRRP_TIMER_SKEW_MIN (1 s / 256).
    assert_eq!(r.poll_timeout(), Some(us(1_003_906)));
    // And `state MASTER` clears nopreempt, as keepalived does.
    assert_eq!(r.config().preempt, Preempt::Always);
}

#[test]
fn config_errors() {
    let ok = cfg(51, a_ip(), 100);
    let mut c = ok.clone();
    c.vrid = 0;
    assert_eq!(VirtualRouter::new(c).err(), Some(ConfigError::BadVrid));
    let mut c = ok.clone();
    c.priority = 0;
    assert_eq!(VirtualRouter::new(c).err(), Some(ConfigError::BadPriority));
    let mut c = ok.clone();
    c.advert_int = Duration::from_millis(1500);
    assert_eq!(
        VirtualRouter::new(c).err(),
        Some(ConfigError::BadAdvertInterval)
    );
    let mut c = ok.clone();
    c.version = Version::V3;
    c.advert_int = Duration::from_millis(1505);
    assert_eq!(
        VirtualRouter::new(c).err(),
        Some(ConfigError::BadAdvertInterval)
    );
    let mut c = ok.clone();
    c.addresses.push("fe80::1".parse().unwrap());
    assert_eq!(
        VirtualRouter::new(c).err(),
        Some(ConfigError::FamilyMismatch)
    );
    let mut c = RouterConfig::new(1, "fe80::1".parse().unwrap(), vec![]);
    c.version = Version::V2;
    assert_eq!(VirtualRouter::new(c).err(), Some(ConfigError::V2OverIpv6));
    let mut c = ok;
    c.tracks.push(Track {
        weight: 254,
        reverse: false,
        initially_up: true,
    });
    assert_eq!(
        VirtualRouter::new(c).err(),
        Some(ConfigError::BadTrackWeight)
    );
    let mut v = Vrrp::new();
    let a = v.add_router(cfg(1, a_ip(), 100)).unwrap();
    assert_eq!(
        v.add_sync_group(&[a, RouterId(9)]),
        Err(GroupError::UnknownRouter(RouterId(9)))
    );
    assert_eq!(
        v.add_sync_group(&[a, a]),
        Err(GroupError::AlreadyGrouped(a))
    );
}

#[test]
fn ipv6_v3_pair_elects_over_ff02_12() {
    let a6: IpAddr = "fe80::1".parse().unwrap();
    let b6: IpAddr = "fe80::2".parse().unwrap();
    let vip: IpAddr = "2001:db8::100".parse().unwrap();
    let mut a = RouterConfig::new(7, a6, vec!["fe80::100".parse().unwrap(), vip]);
    a.priority = 150;
    let b = RouterConfig::new(7, b6, a.addresses.clone());
    let mut sim = pair(a, b);
    sim.run_until(secs(10));
    // v3, 100 cs: skew at 150 = 106 × 100 × 625 / 16 µs = 414_062 µs.
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_150)]);
    assert_eq!(sim.state(1, 0), State::Backup);
    let (_, _, tx) = &sim.nodes[0].sent[0];
    assert_eq!(tx.dst, IpAddr::V6(MCAST_V6));
    assert_eq!(tx.payload[0], 0x31);
}

proptest! {
    #[test]
    fn handle_advert_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120),
                                  ttl in any::<u8>(), master in any::<bool>()) {
        let mut r = VirtualRouter::new(cfg(51, b_ip(), if master { 255 } else { 100 })).unwrap();
        r.start(Instant::ZERO);
        let _ = r.handle_advert(us(1), a_ip(), mcast(), ttl, &bytes);
        // Also with a valid header so the state machine sees arbitrary priorities.
        if bytes.len() >= 2 {
            let adv = advert(Version::V2, 51, bytes[0], 100, a_ip(), mcast());
            let _ = r.handle_advert(us(2), a_ip(), mcast(), 255, &adv);
            r.handle_timeout(secs(100));
        }
    }
}

// ---- auth_type AH (keepalived vrrp.c vrrp_update_pkt, vrrp_in_chk_ipsecah) ----

/// An AH-authenticated advertisement from `src` to the group, as keepalived sends it.
fn ah_advert(key: &str, prio: u8, src: Ipv4Addr, seq: u32) -> Vec<u8> {
    let addrs = [ip4(VIP[0], VIP[1], VIP[2], VIP[3])];
    let repr = AdvertRepr {
        version: Version::V2,
        family: Family::Ipv4,
        vrid: 51,
        priority: prio,
        interval_cs: 100,
        auth: Auth::ah(key),
        addresses: &addrs,
    };
    let mut vrrp = vec![0u8; repr.buffer_len()];
    repr.emit(&mut vrrp, src.into(), mcast()).unwrap();
    let h = ah::AhHeader {
        src,
        dst: MCAST_V4,
        ttl: 255,
        ident: 7,
        seq,
        unicast: false,
    };
    let mut buf = vec![0u8; ah::packet_len(vrrp.len())];
    ah::emit_ipv4(&mut buf, &h, &ah::key(key), &vrrp).unwrap();
    buf
}

/// The AH sequence numbers of what node `i` sent.
fn ah_seqs(sim: &Sim, i: usize) -> Vec<u32> {
    sim.nodes[i]
        .sent
        .iter()
        .map(|(_, _, tx)| {
            assert!(tx.header_included);
            ah::AhPacket::parse(&tx.payload).unwrap().seq()
        })
        .collect()
}

#[test]
fn ah_pair_elects_fails_over_and_carries_the_sequence_on() {
    let mut a = cfg(51, a_ip(), 150);
    a.auth = Auth::ah("secret");
    let mut b = cfg(51, b_ip(), 100);
    b.auth = Auth::ah("secret");
    let mut sim = pair(a, b);
    sim.run_until(us(10_500_000));
    // The same election as without authentication.
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_150)]);
    assert!(sim.became_master(1, 0).is_empty());
    let rb = sim.nodes[1].vrrp.router(RouterId(0));
    assert_eq!(rb.stats().advert_rcvd, 8);
    assert_eq!(rb.stats().errors.iter().sum::<u64>(), 0);
    // Whole IPv4 packets: protocol 51, TOS 0xc0, TTL 255, SPI = source, sequence 1, 2, ...
    assert_eq!(ah_seqs(&sim, 0), (1..=8).collect::<Vec<u32>>());
    for (_, _, tx) in &sim.nodes[0].sent {
        let p = ah::AhPacket::parse(&tx.payload).unwrap();
        assert_eq!(
            (tx.payload[1], tx.payload[8], tx.payload[9]),
            (0xc0, 255, 51)
        );
        assert_eq!(IpAddr::V4(p.spi()), a_ip());
        assert!(p.verify_icv(&ah::key("secret"), false));
        let v = AdvertPacket::new_checked(p.vrrp(), Family::Ipv4).unwrap();
        assert_eq!(
            (v.auth_type(), v.auth_data()),
            (Some(2), Some(&[0u8; 8][..]))
        );
    }
    // A dies; B takes over and continues from the last sequence number it accepted.
    sim.nodes[0].alive = false;
    sim.run_until(secs(20));
    assert_eq!(sim.became_master(1, 0).len(), 1);
    assert_eq!(ah_seqs(&sim, 1)[..3], [9, 10, 11]);
}

#[test]
fn ah_wrong_key_is_refused_and_counted_so_both_become_master() {
    let mut a = cfg(51, a_ip(), 150);
    a.auth = Auth::ah("secret");
    let mut b = cfg(51, b_ip(), 100);
    b.auth = Auth::ah("other");
    let mut sim = pair(a, b);
    sim.run_until(secs(10));
    assert_eq!(sim.became_master(0, 0), vec![us(MDI_150)]);
    assert_eq!(sim.became_master(1, 0), vec![us(MDI_100)]);
    for i in 0..2 {
        let r = sim.nodes[i].vrrp.router(RouterId(0));
        assert!(r.stats().error(AdvertError::AuthFailure) > 3, "node {i}");
        assert_eq!(r.stats().advert_rcvd, 0);
    }
    // A password only differing after its 8th byte is the same key.
    let mut a = cfg(51, a_ip(), 150);
    a.auth = Auth::ah("12345678-a");
    let mut b = cfg(51, b_ip(), 100);
    b.auth = Auth::ah("12345678-b");
    let mut sim = pair(a, b);
    sim.run_until(secs(10));
    assert!(sim.became_master(1, 0).is_empty());
}

#[test]
fn ah_checks_icv_spi_and_sequence_in_order() {
    let mut c = cfg(51, b_ip(), 100);
    c.auth = Auth::ah("secret");
    let mut r = backup(c);
    let a4 = Ipv4Addr::new(A[0], A[1], A[2], A[3]);
    let t = secs(1);
    assert_eq!(
        r.handle_ah_packet(t, &ah_advert("secret", 150, a4, 5)),
        Ok(())
    );
    // Replayed, or older: refused.
    for seq in [5, 4, 1] {
        assert_eq!(
            r.handle_ah_packet(t, &ah_advert("secret", 150, a4, seq)),
            Err(AdvertError::AuthFailure)
        );
    }
    assert_eq!(
        r.handle_ah_packet(t, &ah_advert("secret", 150, a4, 6)),
        Ok(())
    );
    // A sequence number skipped ahead is fine (strictly greater is all that is asked).
    assert_eq!(
        r.handle_ah_packet(t, &ah_advert("secret", 150, a4, 100)),
        Ok(())
    );
    // Wrong key.
    assert_eq!(
        r.handle_ah_packet(t, &ah_advert("Secret", 150, a4, 101)),
        Err(AdvertError::AuthFailure)
    );
    // An SPI other than the source, with a valid ICV over it.
    let mut spi = ah_advert("secret", 150, a4, 102);
    spi[24..28].copy_from_slice(&[10, 0, 0, 9]);
    let (ip, rest) = spi.split_at(20);
    let (h, v) = rest.split_at(24);
    let icv = ah::icv(&ah::key("secret"), ip, h, v, false);
    spi[32..44].copy_from_slice(&icv);
    assert!(
        ah::AhPacket::parse(&spi)
            .unwrap()
            .verify_icv(&ah::key("secret"), false)
    );
    assert_eq!(r.handle_ah_packet(t, &spi), Err(AdvertError::AuthFailure));
    // A refused packet did not move the counter: 101 is still new.
    assert_eq!(
        r.handle_ah_packet(t, &ah_advert("secret", 150, a4, 101)),
        Ok(())
    );
    // A tampered priority breaks the ICV.
    let mut tampered = ah_advert("secret", 150, a4, 200);
    tampered[44 + 2] = 250;
    assert_eq!(
        r.handle_ah_packet(t, &tampered),
        Err(AdvertError::AuthFailure)
    );
    assert_eq!(r.stats().error(AdvertError::AuthFailure), 6);
    assert_eq!(r.stats().advert_rcvd, 4);
    // Without an AH header, or AH towards a router without it: type mismatch.
    let plain = advert(Version::V2, 51, 150, 100, a_ip(), mcast());
    assert_eq!(
        r.handle_advert(t, a_ip(), mcast(), 255, &plain),
        Err(AdvertError::AuthTypeMismatch)
    );
    let mut p = backup(cfg(51, b_ip(), 100));
    assert_eq!(
        p.handle_ah_packet(t, &ah_advert("secret", 150, a4, 1)),
        Err(AdvertError::AuthTypeMismatch)
    );
    // AH carrying something else is ignored, uncounted (keepalived VRRP_PACKET_DROP).
    let mut other = ah_advert("secret", 150, a4, 300);
    other[20] = 6;
    assert_eq!(r.handle_ah_packet(t, &other), Ok(()));
    assert_eq!(r.stats().advert_rcvd, 4);
    assert_eq!(r.stats().error(AdvertError::AuthTypeMismatch), 1);
}

#[test]
fn ah_master_hearing_a_lower_priority_resyncs_its_sequence() {
    let mut c = cfg(51, a_ip(), 150);
    c.auth = Auth::ah("secret");
    let mut r = backup(c);
    r.handle_timeout(us(MDI_150));
    assert_eq!(r.state(), State::Master);
    let first = r.poll_transmit().unwrap();
    assert_eq!(ah::AhPacket::parse(&first.payload).unwrap().seq(), 1);
    let b4 = Ipv4Addr::new(B[0], B[1], B[2], B[3]);
    r.handle_ah_packet(secs(4), &ah_advert("secret", 100, b4, 1000))
        .unwrap();
    // keepalived: counter = the advert's sequence + 1, then the re-advertisement adds one.
    let again = r.poll_transmit().unwrap();
    assert_eq!(ah::AhPacket::parse(&again.payload).unwrap().seq(), 1002);
    assert_eq!(r.state(), State::Master);
}

#[test]
fn ah_unicast_peers_share_the_sequence_and_leave_the_ttl_out() {
    let mut c = cfg(51, a_ip(), 150);
    c.auth = Auth::ah("secret");
    c.unicast_peers = vec![b_ip(), ip4(10, 0, 0, 3)];
    let mut r = backup(c);
    r.handle_timeout(us(MDI_150));
    let t1 = r.poll_transmit().unwrap();
    let t2 = r.poll_transmit().unwrap();
    assert_eq!((t1.dst, t2.dst), (b_ip(), ip4(10, 0, 0, 3)));
    for t in [&t1, &t2] {
        let p = ah::AhPacket::parse(&t.payload).unwrap();
        assert_eq!(IpAddr::V4(p.dst()), t.dst);
        assert_eq!(p.seq(), 1);
        assert!(p.verify_icv(&ah::key("secret"), true));
        assert!(!p.verify_icv(&ah::key("secret"), false));
    }
    // The same identification for both: one advertisement.
    assert_eq!(t1.payload[4..6], t2.payload[4..6]);
}

#[test]
fn ah_counter_stops_at_the_top_and_restarts_on_the_next_mastership() {
    let mut c = cfg(51, b_ip(), 100);
    c.auth = Auth::ah("secret");
    c.tracks = vec![Track {
        weight: 0,
        reverse: false,
        initially_up: true,
    }];
    let mut r = backup(c);
    let a4 = Ipv4Addr::new(A[0], A[1], A[2], A[3]);
    r.handle_ah_packet(secs(1), &ah_advert("secret", 150, a4, 0xFFFF_FFFC))
        .unwrap();
    // The master goes silent; this backup takes over and counts on, then stops: above
    // 0xFFFFFFFD keepalived no longer increments (and its peers refuse the repeats).
    r.handle_timeout(secs(10));
    assert_eq!(r.state(), State::Master);
    let seq = |t: Transmit| ah::AhPacket::parse(&t.payload).unwrap().seq();
    let mut sent = Vec::new();
    for k in 0..4 {
        r.handle_timeout(secs(10 + k));
        while let Some(t) = r.poll_transmit() {
            sent.push(seq(t));
        }
    }
    assert_eq!(sent, [0xFFFF_FFFD, 0xFFFF_FFFE, 0xFFFF_FFFE, 0xFFFF_FFFE]);
    // Through Fault back to Backup and Master: "we reset the anti-replay".
    r.set_track(secs(12), 0, false);
    r.set_track(secs(13), 0, true);
    while r.poll_transmit().is_some() {}
    r.handle_timeout(secs(20));
    assert_eq!(r.state(), State::Master);
    assert_eq!(seq(r.poll_transmit().unwrap()), 1);
}
