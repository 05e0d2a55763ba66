//! Engine tests: each drives [`Health`] with explicit times and outcomes and checks the
//! jobs, events and overlay it produces.

use core::time::Duration;
use std::collections::HashSet;
use std::net::IpAddr;

use super::*;
use crate::model::{
    Config, ForwardMethod, Protocol, RealServerConfig, ServiceKey, VirtualServiceConfig,
};
use crate::sched::Rng;
use crate::time::Instant;

const T0: Instant = Instant::from_secs(1000);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("192.0.2.1"),
        port,
    }
}

fn rs_addr(i: usize) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(
        10,
        0,
        (i / 250) as u8,
        (i % 250 + 1) as u8,
    ))
}

fn tcp_check(interval: u64, retry: u32, delay: u64) -> CheckSpec {
    CheckSpec {
        kind: CheckKind::Tcp,
        target: CheckTarget::default(),
        timers: CheckTimers {
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(3),
            retry,
            delay_before_retry: Duration::from_secs(delay),
            warmup: Duration::ZERO,
        },
    }
}

fn rsh(i: usize, checks: Vec<CheckSpec>) -> RealServerHealth {
    RealServerHealth {
        addr: rs_addr(i),
        port: 80,
        on_failure: OnFailure::Remove,
        alpha: false,
        rise: 1,
        fall: 1,
        slow_start: None,
        notify_up: Some(format!("up {i}").into()),
        notify_down: Some(format!("down {i}").into()),
        load_monitor: None,
        checks,
    }
}

fn svc_health(port: u16, servers: Vec<RealServerHealth>) -> ServiceHealth {
    ServiceHealth {
        service: key(port),
        quorum: 1,
        hysteresis: 0,
        quorum_up: Some("qup".into()),
        quorum_down: Some("qdown".into()),
        omega: false,
        sorry_server: None,
        real_servers: servers,
    }
}

/// A config with one TCP service on `port` per entry, each with real servers `0..n` at
/// the given weights.
fn config(services: &[(u16, Vec<u32>)]) -> Config {
    Config {
        services: services
            .iter()
            .map(|(port, weights)| {
                let mut vs = VirtualServiceConfig::new(key(*port));
                vs.real_servers = weights
                    .iter()
                    .enumerate()
                    .map(|(i, &w)| {
                        let mut rs = RealServerConfig::new(rs_addr(i), 80);
                        rs.weight = w;
                        rs.method = ForwardMethod::Masq;
                        rs
                    })
                    .collect();
                vs
            })
            .collect(),
        ..Config::default()
    }
}

fn spec(services: Vec<ServiceHealth>) -> HealthConfig {
    HealthConfig { services }
}

fn jobs(h: &mut Health, now: Instant) -> Vec<CheckJob> {
    core::iter::from_fn(|| h.poll_check(now)).collect()
}

fn events(h: &mut Health) -> Vec<Event> {
    core::iter::from_fn(|| h.poll_event()).collect()
}

/// (addr, weight) of the service's real servers in the overlay, in order.
fn table(h: &Health, base: &Config, port: u16) -> Vec<(IpAddr, u32)> {
    let o = h.overlay(base);
    let vs = o.services.iter().find(|s| s.key == key(port)).unwrap();
    vs.real_servers.iter().map(|r| (r.addr, r.weight)).collect()
}

fn down(r: &str) -> Outcome {
    Outcome::Down(r.into())
}

/// Run one round of every due check at `now`, answering each with `f(server index)`.
fn round(h: &mut Health, now: Instant, f: impl Fn(usize) -> Outcome) -> usize {
    let js = jobs(h, now);
    let n = js.len();
    for j in js {
        let i = (0..4000).find(|&i| rs_addr(i) == j.addr).unwrap();
        h.report(now, j.id, f(i));
    }
    n
}

#[test]
fn rise_and_fall_drive_the_server_and_its_events() {
    let base = config(&[(80, vec![5, 5])]);
    let mut s = rsh(0, vec![tcp_check(10, 0, 1)]);
    s.rise = 2;
    s.fall = 3;
    let mut h = Health::new(
        spec(vec![svc_health(80, vec![s, rsh(1, vec![])])]),
        &base,
        1,
        T0,
    );
    assert!(events(&mut h).is_empty(), "no events at start-up");
    let a = rs_addr(0);
    let b = rs_addr(1);
    assert_eq!(table(&h, &base, 80), vec![(a, 5), (b, 5)]);

    let mut t = T0;
    for n in 1..=3 {
        let js = jobs(&mut h, t);
        assert_eq!(js.len(), 1);
        h.report(t, js[0].id, down(&format!("refused {n}")));
        let st = h.servers().next().unwrap();
        if n < 3 {
            assert!(st.up, "still up after {n} failed rounds of fall 3");
            assert_eq!(st.fall_progress, n);
            assert!(events(&mut h).is_empty());
        } else {
            assert!(!st.up);
            assert_eq!(
                events(&mut h),
                vec![Event::ServerDown {
                    service: key(80),
                    addr: a,
                    port: 80,
                    reason: "refused 3".into(),
                    notify: Some("down 0".into()),
                }]
            );
        }
        t = t + Duration::from_secs(10);
    }
    assert_eq!(table(&h, &base, 80), vec![(b, 5)]);

    // rise 2: success, failure, success, success.
    for (ok, up) in [(true, false), (false, false), (true, false), (true, true)] {
        let js = jobs(&mut h, t);
        h.report(t, js[0].id, if ok { Outcome::Up } else { down("x") });
        assert_eq!(h.servers().next().unwrap().up, up);
        t = t + Duration::from_secs(10);
    }
    assert_eq!(
        events(&mut h),
        vec![Event::ServerUp {
            service: key(80),
            addr: a,
            port: 80,
            notify: Some("up 0".into()),
        }]
    );
    assert_eq!(table(&h, &base, 80), vec![(a, 5), (b, 5)]);
    let st = h.servers().next().unwrap();
    assert_eq!((st.successes, st.failures), (3, 4));
    assert_eq!(st.last_reason.as_deref(), Some("x"));
}

#[test]
fn retries_are_spaced_by_delay_before_retry_and_end_the_round() {
    let base = config(&[(80, vec![1])]);
    let mut h = Health::new(
        spec(vec![svc_health(
            80,
            vec![rsh(0, vec![tcp_check(10, 2, 1)])],
        )]),
        &base,
        1,
        T0,
    );
    let ms = |m: u64| T0 + Duration::from_millis(m);

    // Round 1: attempts at 0, 1.5 s, 3 s (each fails 0.5 s after it started) → down.
    let mut at = T0;
    for attempt in 0..3 {
        assert_eq!(h.poll_timeout(), Some(at));
        assert!(h.poll_check(at - Duration::from_nanos(1)).is_none());
        let js = jobs(&mut h, at);
        assert_eq!(js.len(), 1);
        assert_eq!((js[0].due, js[0].attempt), (at, attempt));
        let done = at + Duration::from_millis(500);
        h.report(done, js[0].id, down("timeout"));
        assert_eq!(
            h.servers().next().unwrap().up,
            attempt < 2,
            "down only after the last retry"
        );
        at = done + Duration::from_secs(1);
    }
    // The next round is on the grid, not 10 s after the last attempt.
    assert_eq!(h.poll_timeout(), Some(ms(10_000)));
    // Round 2: a retry succeeds → the round succeeds.
    let js = jobs(&mut h, ms(10_000));
    h.report(ms(10_200), js[0].id, down("reset"));
    let js = jobs(&mut h, ms(11_200));
    assert_eq!((js[0].due, js[0].attempt), (ms(11_200), 1));
    h.report(ms(11_300), js[0].id, Outcome::Up);
    assert!(h.servers().next().unwrap().up);
    assert_eq!(h.poll_timeout(), Some(ms(20_000)));
    let js = jobs(&mut h, ms(20_000));
    assert_eq!(js[0].attempt, 0);
}

#[test]
fn schedule_is_drift_free_over_10000_rounds_and_never_bursts() {
    let base = config(&[(80, vec![1])]);
    let mut h = Health::new(
        spec(vec![svc_health(80, vec![rsh(0, vec![tcp_check(7, 0, 1)])])]),
        &base,
        1,
        T0,
    );
    let iv = Duration::from_secs(7);
    let mut rng = Rng::new(42);
    let mut slot = 0u64;
    let mut now = T0;
    for _ in 0..10_000 {
        let due = T0 + iv * slot as u32;
        assert_eq!(h.poll_timeout(), Some(due));
        now = now.max(due);
        let js = jobs(&mut h, now);
        assert_eq!(js.len(), 1);
        assert_eq!(js[0].due, due, "round {slot} drifted");
        // The check itself takes up to 3 s; nothing else is handed out meanwhile.
        let took = Duration::from_millis(rng.next_u64() % 3000);
        assert!(h.poll_check(now + took).is_none(), "two attempts in flight");
        now = now + took;
        let outcome = if rng.next_u64().is_multiple_of(5) {
            down("x")
        } else {
            Outcome::Up
        };
        h.report(now, js[0].id, outcome);
        slot += 1;
    }
    // An overrun (a hung check reported 2.5 intervals late) skips the missed slots.
    let due = T0 + iv * slot as u32;
    let js = jobs(&mut h, due);
    let late = due + iv * 2 + iv / 2;
    assert!(h.poll_check(late).is_none());
    h.report(late, js[0].id, Outcome::Up);
    let js = jobs(&mut h, late + iv * 10);
    assert_eq!(js.len(), 1, "no burst of missed rounds");
    assert_eq!(js[0].due, due + iv * 3);
}

#[test]
fn warmup_spreads_first_rounds_by_seed() {
    let weights = vec![1; 50];
    let base = config(&[(80, weights)]);
    let mk = |seed| {
        let mut c = tcp_check(60, 0, 1);
        c.timers.warmup = Duration::from_secs(30);
        let servers = (0..50).map(|i| rsh(i, vec![c.clone()])).collect();
        Health::new(spec(vec![svc_health(80, servers)]), &base, seed, T0)
    };
    let dues = |h: &mut Health| -> Vec<Instant> {
        let mut v: Vec<_> = jobs(h, T0 + Duration::from_secs(30))
            .into_iter()
            .map(|j| j.due)
            .collect();
        v.sort();
        v
    };
    let (a, b, c) = (dues(&mut mk(1)), dues(&mut mk(1)), dues(&mut mk(2)));
    assert_eq!(a.len(), 50);
    assert!(
        a.iter()
            .all(|&d| d >= T0 && d <= T0 + Duration::from_secs(30))
    );
    assert_eq!(a, b, "same seed, same schedule");
    assert_ne!(a, c, "another seed, another schedule");
    assert!(a.iter().collect::<HashSet<_>>().len() > 40, "spread out");
}

#[test]
fn a_server_is_up_only_while_all_its_checks_are() {
    let base = config(&[(80, vec![3])]);
    let mut http = tcp_check(10, 0, 1);
    http.kind = CheckKind::Ping;
    let mut h = Health::new(
        spec(vec![svc_health(
            80,
            vec![rsh(0, vec![tcp_check(10, 0, 1), http])],
        )]),
        &base,
        1,
        T0,
    );
    let t = |s| T0 + Duration::from_secs(s);
    let answer = |h: &mut Health, now, tcp: bool, ping: bool| {
        for j in jobs(h, now) {
            let ok = if j.check.kind == CheckKind::Tcp {
                tcp
            } else {
                ping
            };
            h.report(now, j.id, if ok { Outcome::Up } else { down("no") });
        }
        h.servers().next().unwrap()
    };
    assert!(answer(&mut h, t(0), true, true).up);
    let st = answer(&mut h, t(10), true, false);
    assert!(!st.up);
    assert_eq!((st.checks, st.checks_up), (2, 1));
    let st = answer(&mut h, t(20), false, true);
    assert!(!st.up, "the other check failing keeps it down");
    assert!(!answer(&mut h, t(30), false, false).up);
    assert!(!answer(&mut h, t(40), true, false).up);
    assert!(answer(&mut h, t(50), true, true).up);
    let evs: Vec<_> = events(&mut h)
        .into_iter()
        .filter(|e| matches!(e, Event::ServerUp { .. } | Event::ServerDown { .. }))
        .collect();
    assert!(
        matches!(&evs[..], [Event::ServerDown { .. }, Event::ServerUp { .. }]),
        "one down, one up: {evs:?}"
    );
}

#[test]
fn quiesce_keeps_a_failed_server_at_weight_0_and_remove_takes_it_out() {
    let base = config(&[(80, vec![4, 5, 6])]);
    let mut q = rsh(0, vec![tcp_check(10, 0, 1)]);
    q.on_failure = OnFailure::Quiesce;
    let r = rsh(1, vec![tcp_check(10, 0, 1)]);
    let mut h = Health::new(spec(vec![svc_health(80, vec![q, r])]), &base, 1, T0);
    let g0 = h.generation();
    round(
        &mut h,
        T0,
        |i| if i < 2 { down("dead") } else { Outcome::Up },
    );
    assert_ne!(h.generation(), g0);
    // Base order kept; the unmonitored third server untouched.
    assert_eq!(table(&h, &base, 80), vec![(rs_addr(0), 0), (rs_addr(2), 6)]);
    let st: Vec<_> = h.servers().collect();
    assert_eq!((st[0].weight, st[0].in_table), (0, true));
    assert_eq!((st[1].weight, st[1].in_table), (0, false));
    round(&mut h, T0 + Duration::from_secs(10), |_| Outcome::Up);
    assert_eq!(h.overlay(&base), base);
}

#[test]
fn slow_start_doubles_from_a_32nd_each_period() {
    let base = config(&[(80, vec![100])]);
    let mut s = rsh(0, vec![tcp_check(10, 0, 1)]);
    s.slow_start = Some(Duration::from_secs(5));
    let mut h = Health::new(spec(vec![svc_health(80, vec![s])]), &base, 1, T0);
    assert_eq!(table(&h, &base, 80)[0].1, 100, "no slow start at start-up");
    round(&mut h, T0, |_| down("x"));
    let up_at = T0 + Duration::from_secs(10);
    round(&mut h, up_at, |_| Outcome::Up);
    events(&mut h);
    assert_eq!(table(&h, &base, 80)[0].1, 3, "100 >> 5");
    assert_eq!(h.servers().next().unwrap().slow_start, Some(3));
    assert_eq!(h.poll_timeout(), Some(up_at + Duration::from_secs(5)));
    let mut seen = vec![];
    for k in 1..=6u32 {
        let at = up_at + Duration::from_secs(5) * k;
        h.handle_timeout(at - Duration::from_nanos(1));
        assert_eq!(table(&h, &base, 80)[0].1, seen.last().copied().unwrap_or(3));
        h.handle_timeout(at);
        seen.push(table(&h, &base, 80)[0].1);
    }
    assert_eq!(seen, vec![6, 12, 24, 48, 96, 100]);
    let ev = events(&mut h);
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| matches!(
        e,
        Event::WeightChanged {
            why: WeightWhy::SlowStart,
            ..
        }
    )));
    assert_eq!(h.servers().next().unwrap().slow_start, None);

    // Going down mid-ramp ends the ramp; a late daemon catches up in one step.
    round(&mut h, up_at + Duration::from_secs(40), |_| down("x"));
    round(&mut h, up_at + Duration::from_secs(50), |_| Outcome::Up);
    round(&mut h, up_at + Duration::from_secs(60), |_| down("x"));
    events(&mut h);
    h.handle_timeout(up_at + Duration::from_secs(65));
    assert!(events(&mut h).is_empty(), "a down server does not ramp");
    round(&mut h, up_at + Duration::from_secs(70), |_| Outcome::Up);
    h.handle_timeout(up_at + Duration::from_secs(86));
    assert_eq!(
        table(&h, &base, 80)[0].1,
        24,
        "three periods passed: 3 → 24"
    );
}

#[test]
fn misc_dynamic_sets_the_weight_and_plain_success_keeps_it() {
    let base = config(&[(80, vec![10])]);
    let mut c = tcp_check(10, 0, 1);
    c.kind = CheckKind::Misc {
        path: "/bin/check".into(),
        user: None,
        timeout: None,
        dynamic: true,
    };
    let mut h = Health::new(
        spec(vec![svc_health(80, vec![rsh(0, vec![c])])]),
        &base,
        1,
        T0,
    );
    let t = |s| T0 + Duration::from_secs(s);
    round(&mut h, t(0), |_| Outcome::UpWithWeight(7));
    assert_eq!(table(&h, &base, 80)[0].1, 7);
    assert_eq!(
        events(&mut h),
        vec![Event::WeightChanged {
            service: key(80),
            addr: rs_addr(0),
            port: 80,
            weight: 7,
            why: WeightWhy::Dynamic
        }]
    );
    round(&mut h, t(10), |_| Outcome::Up);
    assert_eq!(table(&h, &base, 80)[0].1, 7);
    assert!(events(&mut h).is_empty());
    round(&mut h, t(20), |_| Outcome::UpWithWeight(100_000));
    assert_eq!(table(&h, &base, 80)[0].1, 65_535);
    // Weight 0 from the script: up, but no new connections.
    round(&mut h, t(30), |_| Outcome::UpWithWeight(0));
    let st = h.servers().next().unwrap();
    assert!(st.up);
    assert_eq!(
        (st.weight, st.in_table, st.dynamic_weight),
        (0, true, Some(0))
    );
}

#[test]
fn load_monitor_moves_the_weight_by_at_least_a_quarter() {
    let base = config(&[(80, vec![20])]);
    let mut s = rsh(0, vec![]);
    s.load_monitor = Some(LoadMonitor {
        interval: Duration::from_secs(20),
        agent: None,
        scale: 4,
    });
    let mut h = Health::new(spec(vec![svc_health(80, vec![s])]), &base, 1, T0);
    let job = h.poll_load(T0).unwrap();
    assert_eq!(job.agent, (rs_addr(0), LoadMonitor::AGENT_PORT));
    assert_eq!(job.due, T0);
    assert!(h.poll_load(T0 + Duration::from_secs(19)).is_none());
    assert_eq!(h.poll_timeout(), Some(T0 + Duration::from_secs(20)));
    let weight = |h: &Health| table(h, &base, 80)[0].1;
    let rep = |l| Some(LoadReport { load1: l });

    h.report_load(T0, job.server, rep(0.0)); // 20 × 4 = 80
    assert_eq!(weight(&h), 80);
    assert_eq!(
        events(&mut h),
        vec![Event::WeightChanged {
            service: key(80),
            addr: rs_addr(0),
            port: 80,
            weight: 80,
            why: WeightWhy::Load
        }]
    );
    h.report_load(T0, job.server, rep(0.05)); // 80 / 1.05 = 76: change 4 < 20/4
    assert_eq!(weight(&h), 80);
    h.report_load(T0, job.server, rep(0.07)); // 80 / 1.07 = 74.8 → 75: change 5
    assert_eq!(weight(&h), 75);
    h.report_load(T0, job.server, None); // silent agent
    assert_eq!(weight(&h), 75);
    h.report_load(T0, job.server, rep(f32::NAN));
    assert_eq!(weight(&h), 75);
    h.report_load(T0, job.server, rep(9.0)); // 8 → floor at the configured weight
    assert_eq!(weight(&h), 20);
    assert_eq!(h.servers().next().unwrap().load_weight, Some(20));

    // Polls stay on the 20 s grid and skip missed ones.
    let late = T0 + Duration::from_secs(65);
    let j = h.poll_load(late).unwrap();
    assert_eq!(j.due, T0 + Duration::from_secs(20));
    assert!(h.poll_load(late).is_none(), "missed polls are skipped");
    assert_eq!(
        h.poll_load(T0 + Duration::from_secs(80)).unwrap().due,
        T0 + Duration::from_secs(80)
    );
}

fn quorum_setup(on_failure: OnFailure, inhibit: bool) -> (Config, Health) {
    let base = config(&[(80, vec![1, 1, 1, 1])]);
    let servers = (0..4)
        .map(|i| {
            let mut s = rsh(i, vec![tcp_check(10, 0, 1)]);
            s.on_failure = on_failure;
            s
        })
        .collect();
    let mut sh = svc_health(80, servers);
    sh.quorum = 3;
    sh.hysteresis = 1;
    sh.sorry_server = Some(SorryServer {
        addr: ip("10.9.9.9"),
        port: 8080,
        method: ForwardMethod::Masq,
        inhibit,
    });
    let h = Health::new(spec(vec![sh]), &base, 1, T0);
    (base, h)
}

#[test]
fn quorum_hysteresis_brings_the_sorry_server_in_and_takes_alive_servers_out() {
    let (base, mut h) = quorum_setup(OnFailure::Remove, false);
    let sorry = ip("10.9.9.9");
    let st = h.services().next().unwrap();
    assert!(st.quorum_up);
    assert_eq!(st.live_weight, 4);
    let t = |s| T0 + Duration::from_secs(s);
    // quorum 3 ± 1: lost below 2.
    round(
        &mut h,
        t(0),
        |i| if i == 0 { down("x") } else { Outcome::Up },
    );
    round(
        &mut h,
        t(10),
        |i| if i <= 1 { down("x") } else { Outcome::Up },
    );
    assert!(
        h.services().next().unwrap().quorum_up,
        "live 2 is not below 3 - 1"
    );
    events(&mut h);
    round(
        &mut h,
        t(20),
        |i| if i <= 2 { down("x") } else { Outcome::Up },
    );
    let ev = events(&mut h);
    assert_eq!(
        ev[1..],
        [
            Event::QuorumDown {
                service: key(80),
                command: Some("qdown".into())
            },
            Event::SorryServerIn {
                service: key(80),
                addr: sorry,
                port: 8080
            },
        ]
    );
    // keepalived perform_quorum_state(): the alive server goes out too.
    assert_eq!(table(&h, &base, 80), vec![(sorry, 1)]);
    let o = h.overlay(&base);
    assert_eq!(o.services[0].real_servers[0].method, ForwardMethod::Masq);
    // Regained only at 3 + 1.
    round(
        &mut h,
        t(30),
        |i| if i <= 1 { down("x") } else { Outcome::Up },
    );
    round(
        &mut h,
        t(40),
        |i| if i == 0 { down("x") } else { Outcome::Up },
    );
    assert_eq!(table(&h, &base, 80), vec![(sorry, 1)], "live 3 < 4");
    events(&mut h);
    let g = h.generation();
    round(&mut h, t(50), |_| Outcome::Up);
    assert_ne!(h.generation(), g);
    let ev = events(&mut h);
    assert_eq!(
        ev[1..],
        [
            Event::QuorumUp {
                service: key(80),
                command: Some("qup".into())
            },
            Event::SorryServerOut {
                service: key(80),
                addr: sorry,
                port: 8080
            },
        ]
    );
    assert_eq!(h.overlay(&base), base);
}

#[test]
fn inhibited_servers_and_sorry_server_stay_at_weight_0() {
    let (base, mut h) = quorum_setup(OnFailure::Quiesce, true);
    let sorry = ip("10.9.9.9");
    let all = |w: [u32; 4]| (0..4).map(|i| (rs_addr(i), w[i])).collect::<Vec<_>>();
    let mut expect = all([1, 1, 1, 1]);
    expect.push((sorry, 0));
    assert_eq!(
        table(&h, &base, 80),
        expect,
        "sorry_server_inhibit: in at 0"
    );
    round(&mut h, T0, |i| if i <= 2 { down("x") } else { Outcome::Up });
    let mut expect = all([0, 0, 0, 0]);
    expect.push((sorry, 1));
    assert_eq!(table(&h, &base, 80), expect, "the alive one quiesced too");
    round(&mut h, T0 + Duration::from_secs(10), |_| Outcome::Up);
    let mut expect = all([1, 1, 1, 1]);
    expect.push((sorry, 0));
    assert_eq!(table(&h, &base, 80), expect);
}

#[test]
fn a_sorry_server_that_is_also_a_real_server_keeps_its_place() {
    let base = config(&[(80, vec![1, 1])]);
    let mut sh = svc_health(80, vec![rsh(0, vec![tcp_check(10, 0, 1)])]);
    sh.sorry_server = Some(SorryServer {
        addr: rs_addr(1),
        port: 80,
        method: ForwardMethod::Masq,
        inhibit: false,
    });
    let mut h = Health::new(spec(vec![sh]), &base, 1, T0);
    round(&mut h, T0, |_| down("x"));
    assert_eq!(table(&h, &base, 80), vec![(rs_addr(1), 1)]);
}

#[test]
fn alpha_servers_start_down_and_announce_their_first_verdict() {
    let base = config(&[(80, vec![2, 2])]);
    let servers = (0..2)
        .map(|i| {
            let mut s = rsh(i, vec![tcp_check(10, 0, 1)]);
            s.alpha = true;
            s.slow_start = Some(Duration::from_secs(5));
            s
        })
        .collect();
    let mut sh = svc_health(80, servers);
    sh.sorry_server = Some(SorryServer {
        addr: ip("10.9.9.9"),
        port: 80,
        method: ForwardMethod::DirectRoute,
        inhibit: false,
    });
    let mut h = Health::new(spec(vec![sh]), &base, 1, T0);
    assert!(events(&mut h).is_empty());
    assert!(
        !h.services().next().unwrap().quorum_up,
        "computed silently at start"
    );
    assert_eq!(table(&h, &base, 80), vec![(ip("10.9.9.9"), 1)]);
    round(&mut h, T0, |i| {
        if i == 0 {
            Outcome::Up
        } else {
            down("no route")
        }
    });
    let ev = events(&mut h);
    assert!(
        matches!(&ev[0], Event::ServerUp { addr, notify: Some(n), .. } if *addr == rs_addr(0) && n.command == "up 0")
    );
    assert!(matches!(&ev[1], Event::QuorumUp { .. }));
    assert!(matches!(&ev[2], Event::SorryServerOut { .. }));
    assert!(
        matches!(&ev[3], Event::ServerDown { addr, reason, .. } if *addr == rs_addr(1) && reason == "no route"),
        "keepalived notifies the first failure of an alpha checker: {ev:?}"
    );
    assert_eq!(ev.len(), 4);
    assert_eq!(
        table(&h, &base, 80),
        vec![(rs_addr(0), 1)],
        "admitted with slow start"
    );
    round(&mut h, T0 + Duration::from_secs(10), |i| {
        if i == 0 { Outcome::Up } else { down("x") }
    });
    assert!(
        events(&mut h).is_empty(),
        "the down state is announced once"
    );
}

#[test]
fn omega_notifies_live_servers_and_quorum_down_at_shutdown() {
    let base = config(&[(80, vec![1, 1]), (81, vec![1])]);
    let mut a = svc_health(
        80,
        vec![
            rsh(0, vec![tcp_check(10, 0, 1)]),
            rsh(1, vec![tcp_check(10, 0, 1)]),
        ],
    );
    a.omega = true;
    let b = svc_health(81, vec![rsh(0, vec![tcp_check(10, 0, 1)])]);
    let mut h = Health::new(spec(vec![a, b]), &base, 1, T0);
    round(&mut h, T0, |i| if i == 1 { down("x") } else { Outcome::Up });
    events(&mut h);
    let ev = h.shutdown();
    assert_eq!(
        ev,
        vec![
            Event::ServerDown {
                service: key(80),
                addr: rs_addr(0),
                port: 80,
                reason: "shutting down".into(),
                notify: Some("down 0".into()),
            },
            Event::QuorumDown {
                service: key(80),
                command: Some("qdown".into())
            },
        ]
    );
    assert_eq!(h.poll_timeout(), None);
    assert!(h.poll_check(T0 + Duration::from_secs(100)).is_none());
    assert!(h.shutdown().is_empty());
}

#[test]
fn reconfigure_keeps_state_of_servers_that_stay() {
    let base = config(&[(80, vec![1, 1, 1])]);
    let c = tcp_check(10, 0, 1);
    let mut s0 = rsh(0, vec![c.clone()]);
    s0.rise = 2;
    let first = spec(vec![svc_health(
        80,
        vec![s0.clone(), rsh(1, vec![c.clone()])],
    )]);
    let mut h = Health::new(first, &base, 1, T0);
    round(&mut h, T0, |i| if i == 0 { down("x") } else { Outcome::Up });
    let t = T0 + Duration::from_secs(10);
    round(&mut h, t, |_| Outcome::Up); // server 0: 1 of rise 2
    let js = jobs(&mut h, T0 + Duration::from_secs(20)); // in flight across the reload
    events(&mut h);
    let id0 = h.servers().next().unwrap().id;

    // Reload: server 1 removed (it was up), server 2 added, server 0 unchanged.
    let second = spec(vec![svc_health(
        80,
        vec![s0.clone(), rsh(2, vec![c.clone()])],
    )]);
    let g = h.generation();
    h.reconfigure(second, &base, t);
    assert_ne!(h.generation(), g);
    assert_eq!(
        events(&mut h),
        vec![Event::ServerDown {
            service: key(80),
            addr: rs_addr(1),
            port: 80,
            reason: "removed from the configuration".into(),
            notify: Some("down 1".into()),
        }]
    );
    let st: Vec<_> = h.servers().collect();
    assert_eq!(st.len(), 2);
    assert_eq!(st[0].id, id0, "identity kept");
    assert!(!st[0].up);
    assert_eq!(
        (st[0].rise_progress, st[0].successes, st[0].failures),
        (1, 1, 1)
    );
    assert!(st[1].up, "new non-alpha server starts up");
    // The job of server 0 still counts (its check is unchanged) and completes rise; the one
    // of the removed server is ignored.
    let later = T0 + Duration::from_secs(21);
    for j in js {
        h.report(later, j.id, Outcome::Up);
    }
    assert!(h.server(id0).unwrap().up);
    assert!(matches!(&events(&mut h)[..], [Event::ServerUp { addr, .. }] if *addr == rs_addr(0)));
    // Only the new server's first check is due now; server 0 is on its old grid.
    let js = jobs(&mut h, later);
    assert_eq!(js.len(), 1);
    assert_eq!(js[0].addr, rs_addr(2));
    assert_eq!(h.poll_timeout(), Some(T0 + Duration::from_secs(30)));
}

#[test]
fn reconfigure_with_a_changed_check_ignores_the_old_job() {
    let base = config(&[(80, vec![1])]);
    let mut h = Health::new(
        spec(vec![svc_health(
            80,
            vec![rsh(0, vec![tcp_check(10, 0, 1)])],
        )]),
        &base,
        1,
        T0,
    );
    round(&mut h, T0, |_| down("x"));
    let old = jobs(&mut h, T0 + Duration::from_secs(10));
    events(&mut h);
    h.reconfigure(
        spec(vec![svc_health(80, vec![rsh(0, vec![tcp_check(5, 0, 1)])])]),
        &base,
        T0 + Duration::from_secs(11),
    );
    assert!(
        events(&mut h).is_empty(),
        "a changed check starts in the server's state"
    );
    assert!(!h.servers().next().unwrap().up);
    h.report(T0 + Duration::from_secs(12), old[0].id, Outcome::Up);
    assert!(!h.servers().next().unwrap().up, "stale report ignored");
    let js = jobs(&mut h, T0 + Duration::from_secs(11));
    assert_eq!(js[0].check.timers.interval, Duration::from_secs(5));
    h.report(T0 + Duration::from_secs(12), js[0].id, Outcome::Up);
    assert!(h.servers().next().unwrap().up);

    // Removing a failing check brings the server up.
    round(&mut h, T0 + Duration::from_secs(16), |_| down("x"));
    events(&mut h);
    h.reconfigure(
        spec(vec![svc_health(80, vec![rsh(0, vec![])])]),
        &base,
        T0 + Duration::from_secs(17),
    );
    assert!(matches!(
        &events(&mut h)[..],
        [Event::ServerUp { .. }, Event::QuorumUp { .. }]
    ));
}

#[test]
fn reconfigure_reevaluates_quorum_and_drops_removed_services() {
    let base = config(&[(80, vec![1, 1])]);
    let servers = || {
        (0..2)
            .map(|i| rsh(i, vec![tcp_check(10, 0, 1)]))
            .collect::<Vec<_>>()
    };
    let mut h = Health::new(spec(vec![svc_health(80, servers())]), &base, 1, T0);
    assert!(h.services().next().unwrap().quorum_up);
    let mut sh = svc_health(80, servers());
    sh.quorum = 5;
    h.reconfigure(spec(vec![sh]), &base, T0);
    assert_eq!(
        events(&mut h),
        vec![Event::QuorumDown {
            service: key(80),
            command: Some("qdown".into())
        }]
    );
    h.reconfigure(spec(vec![]), &base, T0);
    assert_eq!(events(&mut h).len(), 2, "both live servers removed");
    assert_eq!(h.overlay(&base), base);
    assert!(h.poll_check(T0 + Duration::from_secs(100)).is_none());
}

#[test]
fn stale_and_repeated_reports_are_ignored() {
    let base = config(&[(80, vec![1])]);
    let mut h = Health::new(
        spec(vec![svc_health(
            80,
            vec![rsh(0, vec![tcp_check(10, 0, 1)])],
        )]),
        &base,
        1,
        T0,
    );
    let js = jobs(&mut h, T0);
    h.report(T0, js[0].id, down("x"));
    h.report(T0, js[0].id, down("x"));
    h.report(T0, js[0].id, Outcome::Up);
    let st = h.servers().next().unwrap();
    assert_eq!((st.up, st.failures, st.successes), (false, 1, 0));
    assert!(matches!(
        &events(&mut h)[..],
        [Event::ServerDown { .. }, Event::QuorumDown { .. }]
    ));
}

#[test]
fn unknown_services_and_servers_in_the_spec_are_ignored() {
    let base = config(&[(80, vec![1])]);
    let mut h = Health::new(
        spec(vec![
            svc_health(80, vec![rsh(0, vec![]), rsh(7, vec![]), rsh(0, vec![])]),
            svc_health(99, vec![rsh(0, vec![])]),
        ]),
        &base,
        1,
        T0,
    );
    assert_eq!(h.servers().count(), 1);
    assert_eq!(h.services().count(), 1);
    assert!(jobs(&mut h, T0).is_empty());
}

#[test]
fn thousand_servers_poll_and_overlay_stay_cheap() {
    let ports: Vec<(u16, Vec<u32>)> = (0..10).map(|p| (8000 + p, vec![3; 100])).collect();
    let base = config(&ports);
    let services = ports
        .iter()
        .map(|(p, _)| {
            let mut c = tcp_check(10, 1, 1);
            c.timers.warmup = Duration::from_secs(10);
            svc_health(*p, (0..100).map(|i| rsh(i, vec![c.clone()])).collect())
        })
        .collect();
    let mut h = Health::new(spec(services), &base, 9, T0);
    let started = std::time::Instant::now();
    let mut handed = 0;
    let mut rng = Rng::new(3);
    for sec in 0..100u64 {
        let now = T0 + Duration::from_secs(sec);
        for j in jobs(&mut h, now) {
            handed += 1;
            let o = if rng.next_u64().is_multiple_of(10) {
                down("x")
            } else {
                Outcome::Up
            };
            h.report(now, j.id, o);
        }
        let o = h.overlay(&base);
        assert_eq!(o.services.len(), 10);
    }
    // Every probe of the due-queue handed out a job: no scans.
    assert_eq!(h.probes(), handed);
    assert!(handed >= 10_000, "{handed}");
    // 100 overlays and 10,000 checks of 1,000 servers: milliseconds in release, well under
    // a second unoptimised; quadratic work would take far longer.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A seeded simulation: random outcomes, latencies, reloads and load reports; after every
/// step the overlay agrees with `servers()` and `services()`, a change of the overlay
/// always comes with a new generation, and no check ever has two jobs in flight.
#[test]
fn seeded_simulation_keeps_the_invariants() {
    for seed in 0..20u64 {
        let mut rng = Rng::new(seed);
        let base = config(&[(80, vec![1, 2, 3, 4, 5, 6]), (81, vec![10, 0, 7])]);
        let mk = |rng: &mut Rng| {
            let mk_rs = |i: usize, rng: &mut Rng| {
                let mut s = rsh(
                    i,
                    (0..1 + rng.next_u64() % 2)
                        .map(|k| tcp_check(5 + k, (rng.next_u64() % 3) as u32, 1))
                        .collect(),
                );
                s.rise = 1 + (rng.next_u64() % 3) as u32;
                s.fall = 1 + (rng.next_u64() % 3) as u32;
                s.alpha = rng.next_u64().is_multiple_of(3);
                s.on_failure = if rng.next_u64().is_multiple_of(2) {
                    OnFailure::Quiesce
                } else {
                    OnFailure::Remove
                };
                s.slow_start = rng
                    .next_u64()
                    .is_multiple_of(2)
                    .then_some(Duration::from_secs(3));
                s.load_monitor = rng.next_u64().is_multiple_of(3).then_some(LoadMonitor {
                    interval: Duration::from_secs(4),
                    agent: None,
                    scale: 3,
                });
                s
            };
            let mut kept = Vec::new();
            for i in 0..6 {
                if !rng.next_u64().is_multiple_of(5) {
                    kept.push(mk_rs(i, rng));
                }
            }
            let mut a = svc_health(80, kept);
            a.quorum = (rng.next_u64() % 12) as u32;
            a.hysteresis = (rng.next_u64() % 3) as u32;
            a.sorry_server = rng.next_u64().is_multiple_of(2).then_some(SorryServer {
                addr: ip("10.9.9.9"),
                port: 80,
                method: ForwardMethod::Masq,
                inhibit: rng.next_u64().is_multiple_of(2),
            });
            let b = svc_health(81, (0..3).map(|i| mk_rs(i, rng)).collect());
            spec(vec![a, b])
        };
        let mut h = Health::new(mk(&mut rng), &base, seed, T0);
        let mut now = T0;
        let mut inflight: Vec<(Instant, CheckJob)> = Vec::new();
        let mut last = (h.generation(), h.overlay(&base));
        for step in 0..2000 {
            now = now + Duration::from_millis(rng.next_u64() % 700);
            h.handle_timeout(now);
            while let Some(j) = h.poll_check(now) {
                assert!(j.due <= now);
                assert!(
                    !inflight
                        .iter()
                        .any(|(_, o)| o.server == j.server && o.check == j.check),
                    "two jobs of one check in flight"
                );
                inflight.push((now + Duration::from_millis(rng.next_u64() % 2500), j));
            }
            while let Some(l) = h.poll_load(now) {
                let load = (!rng.next_u64().is_multiple_of(4)).then(|| LoadReport {
                    load1: (rng.next_u64() % 400) as f32 / 100.0,
                });
                h.report_load(now, l.server, load);
            }
            let (done, pending): (Vec<_>, Vec<_>) =
                inflight.drain(..).partition(|(at, _)| *at <= now);
            inflight = pending;
            for (_, j) in done {
                let o = match rng.next_u64() % 6 {
                    0 | 1 => down("x"),
                    2 => Outcome::UpWithWeight((rng.next_u64() % 20) as u32),
                    _ => Outcome::Up,
                };
                h.report(now, j.id, o);
            }
            if step % 400 == 399 {
                h.reconfigure(mk(&mut rng), &base, now);
                // Jobs of changed checks may now be duplicated by their replacements.
                inflight.clear();
            }
            while h.poll_event().is_some() {}
            if let Some(t) = h.poll_timeout() {
                assert!(t >= T0);
            }
            let o = h.overlay(&base);
            if o != last.1 {
                assert_ne!(
                    h.generation(),
                    last.0,
                    "seed {seed} step {step}: overlay changed silently"
                );
            }
            // The overlay agrees with the listings.
            for st in h.servers() {
                let vs = o.services.iter().find(|s| s.key == st.service).unwrap();
                let found = vs
                    .real_servers
                    .iter()
                    .find(|r| (r.addr, r.port) == (st.addr, st.port));
                let svc = h.services().find(|s| s.service == st.service).unwrap();
                if svc.sorry_server_in == Some((st.addr, st.port)) {
                    continue;
                }
                assert_eq!(
                    found.is_some(),
                    st.in_table,
                    "seed {seed} step {step}: {st:?}"
                );
                if let Some(r) = found {
                    assert_eq!(r.weight, st.weight);
                }
                if st.up && svc.sorry_server_in.is_none() {
                    assert!(st.in_table);
                }
            }
            for svc in h.services() {
                let vs = o.services.iter().find(|s| s.key == svc.service).unwrap();
                if let Some(s) = svc.sorry_server_in {
                    assert!(
                        vs.real_servers
                            .iter()
                            .any(|r| (r.addr, r.port) == s && r.weight == 1)
                    );
                }
                let live: u64 = h
                    .servers()
                    .filter(|s| s.service == svc.service && s.up)
                    .map(|s| u64::from(s.configured_weight))
                    .sum();
                assert_eq!(live, svc.live_weight);
            }
            last = (h.generation(), o);
        }
    }
}

/// nanny's admission (Piranha nanny.c `run()`: `isActive = 0; currCount = countThresh`): an
/// lvs.cf server (alpha) is out of the table until its first good check, which admits it
/// at `weight >> 5` even with rise 18; after a failure it needs rise good checks in a row.
/// A server a reload adds is admitted the same way.
#[test]
fn nanny_admission_first_good_check_admits_then_rise_counts() {
    let base = config(&[(80, vec![64])]);
    let nanny = |i: usize| {
        let mut s = rsh(i, vec![tcp_check(10, 0, 1)]);
        s.alpha = true;
        s.rise = 18;
        s.slow_start = Some(Duration::from_secs(10));
        s
    };
    let mut h = Health::new(spec(vec![svc_health(80, vec![nanny(0)])]), &base, 1, T0);
    assert_eq!(table(&h, &base, 80), vec![], "out until checked");
    round(&mut h, T0, |_| Outcome::Up);
    assert_eq!(table(&h, &base, 80), vec![(rs_addr(0), 2)], "in at 64 >> 5");
    let mut t = T0;
    t = t + Duration::from_secs(10);
    round(&mut h, t, |_| down("refused"));
    assert_eq!(table(&h, &base, 80), vec![]);
    for k in 1..18 {
        t = t + Duration::from_secs(10);
        round(&mut h, t, |_| Outcome::Up);
        assert_eq!(
            table(&h, &base, 80),
            vec![],
            "still out after {k} good checks"
        );
    }
    t = t + Duration::from_secs(10);
    round(&mut h, t, |_| Outcome::Up);
    assert_eq!(table(&h, &base, 80), vec![(rs_addr(0), 2)], "back after 18");

    // A reload adds server 1: out until its own first good check, server 0 unchanged.
    let base2 = config(&[(80, vec![64, 64])]);
    h.reconfigure(
        spec(vec![svc_health(80, vec![nanny(0), nanny(1)])]),
        &base2,
        t,
    );
    assert_eq!(table(&h, &base2, 80), vec![(rs_addr(0), 2)]);
    let n = round(&mut h, t, |_| down("not listening"));
    assert_eq!(n, 1, "only the new server's first check is due");
    assert_eq!(
        table(&h, &base2, 80),
        vec![(rs_addr(0), 2)],
        "a silent server stays out"
    );
    t = t + Duration::from_secs(10);
    round(&mut h, t, |_| Outcome::Up);
    let tb = table(&h, &base2, 80);
    assert_eq!(
        tb.len(),
        1,
        "after a failure the new server needs rise: {tb:?}"
    );
}
