//! The rate estimators ticked in rows ([`DirectorSettings::estimator_rows`], as the kernel's
//! estimation kthread does since Linux 6.2): every estimator still ticks once every 2 s with
//! the old arithmetic, on its own counters as they are at its row's moment; the housekeeping
//! walks go in chunks ([`DirectorSettings::walk_chunk`]).

use super::*;
use crate::stats::{Counters, Estimator};

/// A small deterministic generator (xorshift) for the traffic.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `rows` rows, `nsvc` services: random SYNs to random services at millisecond steps for
/// `secs` seconds, `expire` every step. Each service's and real server's estimator must equal
/// a reference [`Estimator`] (the old arithmetic) ticked with that object's counters at its
/// row's moments: period start 2 s after the first `expire`, row `id % rows` at
/// `2 s * row / rows` (in nanoseconds) into each period, every 2 s after.
fn rows_match_reference(rows: u32, nsvc: u16, secs: u64, seed: u64) {
    let services = (0..nsvc)
        .map(|i| {
            tcp_svc(
                "10.1.0.100",
                80 + i,
                ForwardMethod::Masq,
                &["10.2.0.11", "10.2.0.12"],
            )
        })
        .collect();
    let settings = DirectorSettings {
        estimator_rows: rows,
        walk_chunk: 3,
        ..DirectorSettings::default()
    };
    let mut d = director_settings(services, settings);
    let ms = Instant::from_millis;
    d.expire(ms(0));
    // In nanoseconds.
    let period = 2_000_000_000u64;
    let offset = |id: u32| period + period * u64::from(id % rows) / u64::from(rows);
    // Per service and per real server: its reference, the next sampling moment (ms).
    let svc_ids: Vec<(ServiceId, Vec<DestId>)> = d
        .services()
        .iter()
        .map(|(id, s)| (id, s.dest_ids.clone()))
        .collect();
    let mut svc_ref: Vec<(Estimator, u64)> = svc_ids
        .iter()
        .map(|(id, _)| (Estimator::new(&Counters::default()), offset(id.0)))
        .collect();
    let mut dest_ref: Vec<(DestId, Estimator, u64)> = svc_ids
        .iter()
        .flat_map(|(_, ds)| ds.iter())
        .map(|&id| (id, Estimator::new(&Counters::default()), offset(id.0)))
        .collect();
    let mut g = Gen(seed | 1);
    let mut cport = 1024u16;
    for now in 1..secs * 1000 {
        for _ in 0..g.next() % 3 {
            let svc = (g.next() % u64::from(nsvc)) as u16;
            let syn = tcp_frame("10.1.0.10", cport, "10.1.0.100", 80 + svc, Seg::Syn, b"");
            cport = cport.wrapping_add(1).max(1024);
            assert_eq!(run(&mut d, ms(now), PUB, &syn).0, Verdict::Transmit(PRIV));
        }
        d.expire(ms(now));
        let all = d.services();
        for ((id, _), (e, next)) in svc_ids.iter().zip(svc_ref.iter_mut()) {
            let s = all.get(*id).expect("a live service");
            while *next <= now * 1_000_000 {
                e.tick(&s.stats);
                *next += period;
            }
            assert_eq!(s.est.scaled(), e.scaled(), "service {id:?} at {now} ms");
        }
        for (id, e, next) in dest_ref.iter_mut() {
            while *next <= now * 1_000_000 {
                e.tick(all.dest_stats(*id).expect("a real server"));
                *next += period;
            }
            let got = all.dest_estimator(*id).expect("an estimator").scaled();
            assert_eq!(got, e.scaled(), "real server {id:?} at {now} ms");
        }
    }
    let moved = svc_ref.iter().filter(|(e, _)| e.rates().cps > 0).count();
    assert_eq!(
        moved,
        usize::from(nsvc),
        "every service saw traffic and a rate"
    );
}

#[test]
fn one_row_is_the_old_estimator() {
    rows_match_reference(1, 5, 9, 7);
}

#[test]
fn fifty_rows_tick_each_estimator_every_two_seconds_with_the_old_arithmetic() {
    for seed in [1, 2, 3] {
        rows_match_reference(50, 12, 9, seed);
    }
}

#[test]
fn rows_more_than_objects_and_uneven_rows_agree_too() {
    rows_match_reference(7, 4, 7, 11);
}

/// A late call catches up (at most 64 periods' worth, as before) and the rows stay 2 s
/// apart afterwards.
#[test]
fn a_late_call_catches_up_whole_periods() {
    let settings = DirectorSettings {
        estimator_rows: 50,
        ..DirectorSettings::default()
    };
    let mk = |s| {
        director_settings(
            vec![tcp_svc(
                "10.1.0.100",
                80,
                ForwardMethod::Masq,
                &["10.2.0.11"],
            )],
            s,
        )
    };
    let (mut a, mut b) = (mk(settings), mk(DirectorSettings::default()));
    for d in [&mut a, &mut b] {
        d.expire(t(0));
        for i in 0..50u16 {
            let syn = tcp_frame("10.1.0.10", 2000 + i, "10.1.0.100", 80, Seg::Syn, b"");
            assert_eq!(run(d, t(1), PUB, &syn).0, Verdict::Transmit(PRIV));
        }
        // Slot 0 and real server 0 are in row 0: due with the old estimator's tick.
        d.expire(t(11));
    }
    let est = |d: &Director| d.services().iter().next().unwrap().1.est;
    assert_eq!(est(&a).scaled(), est(&b).scaled());
    assert!(est(&a).rates().cps > 0);
    // Both tick next at 12 s.
    for d in [&mut a, &mut b] {
        for i in 0..30u16 {
            let syn = tcp_frame("10.1.0.10", 3000 + i, "10.1.0.100", 80, Seg::Syn, b"");
            assert_eq!(run(d, t(11), PUB, &syn).0, Verdict::Transmit(PRIV));
        }
        d.expire(Instant::from_millis(11_999));
    }
    assert_eq!(est(&a).scaled(), est(&b).scaled());
    let before = est(&a).scaled();
    a.expire(t(12));
    b.expire(t(12));
    assert_ne!(est(&a).scaled(), before);
    assert_eq!(est(&a).scaled(), est(&b).scaled());
}
