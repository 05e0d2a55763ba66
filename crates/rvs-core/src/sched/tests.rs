//! Scheduler tests: hand-derived kernel sequences, one group per scheduler, and a property
//! test over random real-server lists.

use super::*;
use crate::model::{RealServerConfig, SchedFlags, SchedulerKind};
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Real server 10.0.0.`n`:80 with a weight.
fn rs(n: u8, weight: u32) -> Dest {
    let mut c = RealServerConfig::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 80);
    c.weight = weight;
    Dest::new(&c)
}

/// The name of a test server: 'a' for 10.0.0.1, 'b' for .2, ...
fn name(d: &Dest) -> char {
    match d.addr {
        IpAddr::V4(a) => (b'a' + a.octets()[3] - 1) as char,
        IpAddr::V6(_) => '?',
    }
}

fn input(c: [u8; 4], d: [u8; 4]) -> SchedInput {
    SchedInput {
        caddr: IpAddr::V4(Ipv4Addr::from(c)),
        cport: 40000,
        daddr: IpAddr::V4(Ipv4Addr::from(d)),
        dport: 80,
    }
}

const IN: SchedInput = SchedInput {
    caddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    cport: 40000,
    daddr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
    dport: 80,
};

/// A service built as the kernel sees it: created empty, then each server added at the head
/// of the list with an `add_dest` call.
struct Svc {
    dests: Vec<Dest>,
    sched: Scheduler,
    rng: Rng,
    now: Instant,
}

impl Svc {
    fn new(kind: SchedulerKind, flags: u8, adds: &[(u8, u32)]) -> Svc {
        let mut s = Svc {
            dests: Vec::new(),
            sched: Scheduler::new(kind, SchedFlags(flags), 4093, &[]),
            rng: Rng::new(1),
            now: Instant::ZERO,
        };
        for &(n, w) in adds {
            s.add(n, w);
        }
        s
    }

    fn add(&mut self, n: u8, w: u32) {
        self.dests.insert(0, rs(n, w));
        self.sched.on_change(&self.dests, DestChange::Added(0));
    }

    fn remove(&mut self, n: u8) {
        let index = self.idx(n);
        self.dests.remove(index);
        self.sched
            .on_change(&self.dests, DestChange::Removed { index });
    }

    fn set_weight(&mut self, n: u8, w: u32) {
        let i = self.idx(n);
        let mut c = RealServerConfig::new(self.dests[i].addr, 80);
        c.weight = w;
        self.dests[i].edit(&c);
        self.sched.on_change(&self.dests, DestChange::Edited(i));
    }

    fn idx(&self, n: u8) -> usize {
        self.dests
            .iter()
            .position(|d| name(d) == (b'a' + n - 1) as char)
            .unwrap()
    }

    fn get(&mut self, n: u8) -> &mut Dest {
        let i = self.idx(n);
        &mut self.dests[i]
    }

    fn pick_with(&mut self, inp: &SchedInput) -> Option<char> {
        self.sched
            .schedule(&self.dests, inp, self.now, &mut self.rng)
            .map(|i| name(&self.dests[i]))
    }

    fn pick(&mut self) -> Option<char> {
        self.pick_with(&IN)
    }

    /// `n` picks as a string, '-' for none.
    fn seq(&mut self, n: usize) -> String {
        (0..n).map(|_| self.pick().unwrap_or('-')).collect()
    }
}

// ---------------------------------------------------------------- rr

#[test]
fn rr_starts_at_most_recently_added_and_cycles() {
    // Added a, b, c: the kernel list is c b a; rr starts at the head.
    let mut s = Svc::new(SchedulerKind::Rr, 0, &[(1, 1), (2, 1), (3, 1)]);
    assert_eq!(s.seq(7), "cbacbac");
}

#[test]
fn rr_skips_quiesced_and_overloaded() {
    let mut s = Svc::new(SchedulerKind::Rr, 0, &[(1, 1), (2, 1), (3, 1)]);
    s.set_weight(2, 0);
    assert_eq!(s.seq(4), "caca");
    s.get(3).overloaded = true;
    assert_eq!(s.seq(3), "aaa");
    s.get(1).overloaded = true;
    assert_eq!(s.seq(2), "--");
}

#[test]
fn rr_position_survives_list_changes() {
    let mut s = Svc::new(SchedulerKind::Rr, 0, &[(1, 1), (2, 1), (3, 1)]);
    assert_eq!(s.seq(2), "cb"); // position on b (index 1)
    // A server added at the head shifts b to index 2; rr continues after b.
    s.add(4, 1); // list d c b a
    assert_eq!(s.seq(3), "adc");
    // Removing the current server (c): ip_vs_rr_del_dest() moves back to d, so b is next.
    s.remove(3); // list d b a
    assert_eq!(s.seq(3), "bad");
    // Removing the head while positioned on it: back to the list head.
    s.remove(4); // list b a; position was d (index 0)
    assert_eq!(s.seq(3), "bab");
}

// ---------------------------------------------------------------- wrr

#[test]
fn wrr_kernel_sequence_after_incremental_adds() {
    // List a(4) b(3) c(2) (added c, b, a). Adds: c → di 2, mw 1, cw 0 → 1; b → di 1, mw 3,
    // cw 1 kept; a → di 1, mw 4, cw 1 kept. So the first round runs at cw 1: a b c; the
    // wrap takes cw to 0 → mw 4, then the classic cycle: cw4 a | cw3 a b | cw2 a b c |
    // cw1 a b c.
    let mut s = Svc::new(SchedulerKind::Wrr, 0, &[(3, 2), (2, 3), (1, 4)]);
    let Scheduler::Wrr(w) = &s.sched else {
        panic!()
    };
    assert_eq!(w.state(), (None, 1, 4, 1));
    assert_eq!(s.seq(3 + 9 + 9), concat!("abc", "aababcabc", "aababcabc"));
}

#[test]
fn wrr_service_built_with_servers_starts_at_mw() {
    // init_service with a(4) b(3) c(2) already present: cw = mw = 4.
    let dests = vec![rs(1, 4), rs(2, 3), rs(3, 2)];
    let mut s = Svc {
        sched: Scheduler::new(SchedulerKind::Wrr, SchedFlags(0), 0, &dests),
        dests,
        rng: Rng::new(1),
        now: Instant::ZERO,
    };
    assert_eq!(s.seq(9), "aababcabc");
}

#[test]
fn wrr_weight_change_mid_stream_applies_cw_rule() {
    // List a(4) b(2) (added b, a). Adds: b → di 2, mw 1, cw 1; a → di 2, mw 3,
    // cw = (1/2)*2+1 = 1. Picks: cw1 a b | wrap cw -1 → 3: a | b? no, wrap cw 1,
    // last_pass, stop at a: a b | cw3 a ...
    let mut s = Svc::new(SchedulerKind::Wrr, 0, &[(2, 2), (1, 4)]);
    let Scheduler::Wrr(w) = &s.sched else {
        panic!()
    };
    assert_eq!(w.state(), (None, 1, 3, 2));
    assert_eq!(s.seq(6), "abaaba");
    let Scheduler::Wrr(w) = &s.sched else {
        panic!()
    };
    assert_eq!(w.state(), (Some(0), 3, 3, 2));
    // Edit b to weight 4: di 4, mw 4-3 = 1; cw 3 > mw → cw = 1; cl back to the head.
    s.set_weight(2, 4);
    let Scheduler::Wrr(w) = &s.sched else {
        panic!()
    };
    assert_eq!(w.state(), (None, 1, 1, 4));
    assert_eq!(s.seq(6), "ababab");
    // Edit b to 6 (a 4): di 2, mw 5; cw 1 not > 5, not 0, di > 1 → cw = (1/2)*2+1 = 1.
    s.set_weight(2, 6);
    let Scheduler::Wrr(w) = &s.sched else {
        panic!()
    };
    assert_eq!(w.state(), (None, 1, 5, 2));
    // cw1: a b | cw -1 → 5: b(6) | cw 3: a b | cw 1: a b | cw 5: b ...
    assert_eq!(s.seq(8), "abbababb");
}

#[test]
fn wrr_quiesce_and_overload() {
    let mut s = Svc::new(SchedulerKind::Wrr, 0, &[(1, 2), (2, 2)]);
    s.set_weight(1, 0);
    assert_eq!(s.seq(3), "bbb");
    s.get(2).overloaded = true;
    assert_eq!(s.seq(2), "--");
    s.set_weight(2, 0);
    let Scheduler::Wrr(w) = &s.sched else {
        panic!()
    };
    assert_eq!(w.state().2, 0, "mw 0: no server");
    assert_eq!(s.seq(1), "-");
}

// ---------------------------------------------------------------- lc / wlc / sed / nq / fo / ovf

fn conns(s: &mut Svc, n: u8, active: u32, inact: u32) {
    let d = s.get(n);
    d.active_conns = active;
    d.inact_conns = inact;
}

#[test]
fn lc_least_overhead_ties_to_list_order() {
    // List d c b a. Overheads: a 256, b 300, c (weight 0) 0, d 256 → d (earlier than a).
    let mut s = Svc::new(SchedulerKind::Lc, 0, &[(1, 1), (2, 1), (3, 0), (4, 1)]);
    conns(&mut s, 1, 1, 0);
    conns(&mut s, 2, 0, 300);
    conns(&mut s, 4, 1, 0);
    assert_eq!(s.pick(), Some('d'));
    s.get(4).overloaded = true;
    assert_eq!(s.pick(), Some('a'));
}

#[test]
fn wlc_compares_cross_products() {
    // List a b c d (added d, c, b, a).
    // a: w1 oh 256; b: w3 oh 512: 256*3 = 768 > 512*1 → b.
    // c: w2 oh 256+85 = 341: 512*2 = 1024 > 341*3 = 1023 → c.
    // d: w0 oh 0: 341*0 > 0 is false → c.
    let mut s = Svc::new(SchedulerKind::Wlc, 0, &[(4, 0), (3, 2), (2, 3), (1, 1)]);
    conns(&mut s, 1, 1, 0);
    conns(&mut s, 2, 2, 0);
    conns(&mut s, 3, 1, 85);
    assert_eq!(s.pick(), Some('c'));
    conns(&mut s, 3, 1, 86); // 1024 > 342*3 = 1026 is false → b
    assert_eq!(s.pick(), Some('b'));
}

#[test]
fn sed_uses_active_plus_one() {
    // List a b c. a: w1 act0 → 1; b: w3 act2 → 3: 1*3 > 3*1 false; c: w5 act3 → 4:
    // 1*5 > 4*1 → c.
    let mut s = Svc::new(SchedulerKind::Sed, 0, &[(3, 5), (2, 3), (1, 1)]);
    conns(&mut s, 2, 2, 1000);
    conns(&mut s, 3, 3, 0);
    assert_eq!(s.pick(), Some('c'));
    conns(&mut s, 3, 4, 0); // 1*5 > 5*1 false → a
    assert_eq!(s.pick(), Some('a'));
}

#[test]
fn nq_prefers_first_idle_server() {
    // List a b c. a: w1 act2; b: w0 idle (skipped); c: w2 idle → c at once.
    let mut s = Svc::new(SchedulerKind::Nq, 0, &[(3, 2), (2, 0), (1, 1)]);
    conns(&mut s, 1, 2, 0);
    assert_eq!(s.pick(), Some('c'));
    // No idle server: sed rule. a: 3, c: w2 act1 → 2: 3*2 > 2*1 → c.
    conns(&mut s, 3, 1, 0);
    assert_eq!(s.pick(), Some('c'));
    conns(&mut s, 3, 5, 0); // c: 6: 3*2 > 6*1 false → a
    assert_eq!(s.pick(), Some('a'));
}

#[test]
fn fo_highest_weight_first_in_list() {
    // List a b c d: a2, b5 overloaded, c5, d5 → c.
    let mut s = Svc::new(SchedulerKind::Fo, 0, &[(4, 5), (3, 5), (2, 5), (1, 2)]);
    s.get(2).overloaded = true;
    assert_eq!(s.pick(), Some('c'));
    s.set_weight(3, 0);
    s.set_weight(4, 0);
    assert_eq!(s.pick(), Some('a'));
}

#[test]
fn ovf_overflows_past_full_servers() {
    // List a b c d: a w3 act4 (full), b w2 act2, c w2 act0, d w0 → b (tie with c, earlier).
    let mut s = Svc::new(SchedulerKind::Ovf, 0, &[(4, 0), (3, 2), (2, 2), (1, 3)]);
    conns(&mut s, 1, 4, 0);
    conns(&mut s, 2, 2, 0);
    assert_eq!(s.pick(), Some('b'));
    conns(&mut s, 1, 3, 0); // a no longer over its weight
    assert_eq!(s.pick(), Some('a'));
    conns(&mut s, 1, 9, 0);
    conns(&mut s, 2, 9, 0);
    conns(&mut s, 3, 9, 0);
    assert_eq!(s.pick(), None);
}

#[test]
fn twos_with_fixed_rng() {
    // List a(1) b(2) c(3): total 6 + 1 = 7; r in 0..=6 walks a if r <= 1, b if r <= 3,
    // else c. Choice 2 wins only if w2 * oh1 > w1 * oh2.
    let mut s = Svc::new(SchedulerKind::Twos, 0, &[(3, 3), (2, 2), (1, 1)]);
    conns(&mut s, 1, 0, 5); // oh 5
    conns(&mut s, 2, 1, 0); // oh 256
    conns(&mut s, 3, 0, 9); // oh 9
    let walk = |r: u32| match r {
        0 | 1 => ('a', 1i64, 5i64),
        2 | 3 => ('b', 2, 256),
        _ => ('c', 3, 9),
    };
    s.rng = Rng::new(42);
    let mut shadow = Rng::new(42);
    for _ in 0..200 {
        let c1 = walk(shadow.next_u32() % 7);
        let c2 = walk(shadow.next_u32() % 7);
        let want = if c2.1 * c1.2 > c1.1 * c2.2 {
            c2.0
        } else {
            c1.0
        };
        assert_eq!(s.pick(), Some(want));
    }
    s.get(1).overloaded = true;
    s.get(2).overloaded = true;
    s.set_weight(3, 0);
    assert_eq!(s.pick(), None);
}

// ---------------------------------------------------------------- dh / sh

/// `hash_32(x, 8)` computed by hand: the top 8 bits of the 32-bit product with 0x61C88647.
fn hand_hash8(x: u32) -> usize {
    (((x as u64 * 0x61C8_8647) & 0xFFFF_FFFF) >> 24) as usize
}

#[test]
fn dh_buckets_round_robin_and_hash() {
    // List c b a: bucket i holds list[i % 3].
    let s = Svc::new(SchedulerKind::Dh, 0, &[(1, 1), (2, 1), (3, 1)]);
    let Scheduler::Dh(dh) = &s.sched else {
        panic!()
    };
    let names: String = dh.buckets().map(|b| name(&s.dests[b.unwrap()])).collect();
    assert_eq!(&names[..7], "cbacbac");
    // 203.0.113.7 = 0xCB007107; 0xCB007107 * 0x61C88647 mod 2^32 = 0x7CC102F1 → bucket
    // 0x7C = 124; 124 % 3 = 1 → b.
    assert_eq!(hand_hash8(0xCB00_7107), 124);
    let mut s = s;
    let inp = input([192, 0, 2, 9], [203, 0, 113, 7]);
    assert_eq!(s.pick_with(&inp), Some('b'));
    // The pre-4.7 hash, (x * 2654435761) & 255 = 0xD7 = 215, would pick another bucket.
    assert_eq!((0xCB00_7107u64 * 2_654_435_761) & 255, 0xD7);
    // The hashed server quiesced: none (dh has no fallback).
    let i = 1;
    s.dests[i].weight = 0;
    assert_eq!(s.pick_with(&inp), None);
}

#[test]
fn sh_buckets_follow_weights() {
    // List c(3) b(1) a(2) (added a, b, c): c c c b a a, repeated.
    let s = Svc::new(SchedulerKind::Sh, 0, &[(1, 2), (2, 1), (3, 3)]);
    let Scheduler::Sh(sh) = &s.sched else {
        panic!()
    };
    let names: String = sh.buckets().map(|b| name(&s.dests[b.unwrap()])).collect();
    assert_eq!(&names[..14], "cccbaacccbaacc");
    // A weight-0 server still gets one bucket.
    let s0 = Svc::new(SchedulerKind::Sh, 0, &[(1, 2), (2, 0)]);
    let Scheduler::Sh(sh) = &s0.sched else {
        panic!()
    };
    let names: String = sh.buckets().map(|b| name(&s0.dests[b.unwrap()])).collect();
    assert_eq!(&names[..6], "baabaa");
}

#[test]
fn sh_hash_port_and_fallback() {
    // List c b a, weight 1: bucket k holds list[k % 3].
    let adds = [(1, 1), (2, 1), (3, 1)];
    let mut s = Svc::new(SchedulerKind::Sh, 0, &adds);
    // Client 192.0.2.1 = 0xC0000201: 0xC0000201 * 0x61C88647 mod 2^32 = 0x32D51447,
    // top byte 0x32 = bucket 50; 50 % 3 = 2 → a.
    assert_eq!(hand_hash8(0xC000_0201), 50);
    assert_eq!(s.pick(), Some('a'));
    // Without sh-port the client port is ignored.
    let mut other = IN;
    other.cport = 1;
    assert_eq!(s.pick_with(&other), Some('a'));
    // sh-port: 0xC0000201 + 40000 = 0xC0009E41, * 0x61C88647 = 0xD6C9EA07 → bucket 214,
    // 214 % 3 = 1 → b.
    assert_eq!(hand_hash8(0xC000_0201 + 40000), 214);
    let mut sp = Svc::new(SchedulerKind::Sh, SchedFlags::FLAG_2, &adds);
    assert_eq!(sp.pick(), Some('b'));

    // Quiesce a: plain sh fails.
    s.set_weight(1, 0);
    assert_eq!(s.pick(), None);
    // sh-fallback: offset 0 → roffset = ihash = 50, bucket (50 + 50) & 255 = 100,
    // 100 % 3 = 1 → b.
    let mut sf = Svc::new(SchedulerKind::Sh, SchedFlags::FLAG_1, &adds);
    sf.set_weight(1, 0);
    assert_eq!(sf.pick(), Some('b'));
    // b overloaded too: offset 1 → roffset 51, bucket 101 → 101 % 3 = 2 → a (quiesced);
    // offset 2 → bucket 102 → 0 → c.
    sf.get(2).overloaded = true;
    assert_eq!(sf.pick(), Some('c'));
}

#[test]
fn sh_folds_ipv6_addresses() {
    let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    // XOR of the words 0x20010db8, 0, 0, 1 = 0x20010db9.
    assert_eq!(addr_fold(a), 0x2001_0db9);
    assert_eq!(hash::sh_hashkey(a, 0, 0), hand_hash8(0x2001_0db9));
}

// ---------------------------------------------------------------- mh

#[test]
fn hsiphash_matches_kernel_test_vector() {
    // lib/test_siphash.c, 64-bit: hsiphash of bytes 00 01 02 03 with key 00..0f.
    let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
    assert_eq!(mh::hsiphash_u32(0x0302_0100, &key), 0x88d3_8328);
}

#[test]
fn mh_tab_bits_follow_table_index() {
    assert_eq!(mh::tab_bits(4093), 6);
    assert_eq!(mh::tab_bits(251), 4);
    assert_eq!(mh::tab_bits(65521), 8);
    assert_eq!(mh::tab_bits(131071), 8);
}

fn servers(n: usize, weight: impl Fn(usize) -> u32) -> Vec<Dest> {
    (0..n)
        .map(|i| {
            let mut c = RealServerConfig::new(
                IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1)),
                8080,
            );
            c.weight = weight(i);
            Dest::new(&c)
        })
        .collect()
}

/// Table as server identities, for comparisons across list orders.
fn keyed(table: &[u32], dests: &[Dest]) -> Vec<Option<DestKey>> {
    table
        .iter()
        .map(|&i| dests.get(i as usize).map(dest_key))
        .collect()
}

#[test]
fn mh_same_table_whatever_the_add_order() {
    let a = servers(20, |i| 1 + (i % 3) as u32);
    let mut b = a.clone();
    b.reverse();
    b.swap(3, 11);
    let ta = mh_build_table(&a, 4093);
    let tb = mh_build_table(&b, 4093);
    assert_eq!(keyed(&ta, &a), keyed(&tb, &b));
    assert!(ta.iter().all(|&i| (i as usize) < a.len()));
}

#[test]
fn mh_distribution_follows_weights() {
    let m = 65537usize;
    let dests = servers(100, |i| 1 + (i % 4) as u32);
    let table = mh_build_table(&dests, m as u32);
    let total_w: u32 = dests.iter().map(|d| d.weight).sum();
    let mut count = vec![0usize; dests.len()];
    for &i in &table {
        count[i as usize] += 1;
    }
    for (i, d) in dests.iter().enumerate() {
        let want = m as f64 * f64::from(d.weight) / f64::from(total_w);
        let err = (count[i] as f64 - want).abs() / want;
        assert!(err < 0.03, "server {i}: {} slots, want {want:.0}", count[i]);
    }
}

#[test]
fn mh_minimal_disruption() {
    let m = 65537usize;
    let dests = servers(100, |_| 1);
    let before = keyed(&mh_build_table(&dests, m as u32), &dests);
    // One server leaves: its slots move; the others' hardly move.
    let gone = dest_key(&dests[37]);
    let mut fewer = dests.clone();
    fewer.remove(37);
    let after = keyed(&mh_build_table(&fewer, m as u32), &fewer);
    let own = before.iter().filter(|k| **k == Some(gone)).count();
    let moved_other = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| **b != Some(gone) && b != a)
        .count();
    assert!(own > 600 && own < 720, "{own}");
    assert!(
        moved_other < m / 100,
        "{moved_other} slots of staying servers moved"
    );
    // One server joins: about M/N slots move, mostly to it.
    let mut more = dests.clone();
    let mut c = RealServerConfig::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 8080);
    c.weight = 1;
    more.insert(0, Dest::new(&c));
    let grown = keyed(&mh_build_table(&more, m as u32), &more);
    let newcomer = dest_key(&more[0]);
    let taken = grown.iter().filter(|k| **k == Some(newcomer)).count();
    let moved = before.iter().zip(&grown).filter(|(b, a)| b != a).count();
    let expect = m / 101;
    eprintln!("leave: own {own}, others moved {moved_other}; join: taken {taken}, moved {moved}");
    assert!(
        taken.abs_diff(expect) < expect / 10,
        "{taken} taken, M/N = {expect}"
    );
    // Maglev is not perfectly minimal: some slots also shuffle between staying servers.
    assert!(moved < expect * 2, "{moved} moved, M/N = {expect}");
}

#[test]
fn mh_quiesced_server_keeps_slots() {
    let mut s = Svc::new(SchedulerKind::Mh, 0, &[(1, 1), (2, 1), (3, 1)]);
    let table_before = match &s.sched {
        Scheduler::Mh(mh) => keyed(mh.table(), &s.dests),
        _ => panic!(),
    };
    // Find a client that hashes to b.
    let mut client = None;
    for x in 0..=255u8 {
        let inp = input([192, 0, 2, x], [198, 51, 100, 1]);
        if s.pick_with(&inp) == Some('b') {
            client = Some(inp);
            break;
        }
    }
    let client = client.unwrap();
    s.set_weight(2, 0);
    let table_after = match &s.sched {
        Scheduler::Mh(mh) => keyed(mh.table(), &s.dests),
        _ => panic!(),
    };
    assert_eq!(table_before, table_after, "built from last_weight");
    assert_eq!(s.pick_with(&client), None);
    s.get(2).weight = 1;
    s.get(2).overloaded = true;
    assert_eq!(s.pick_with(&client), None);
    // mh-fallback re-probes to another server.
    let mut f = Svc::new(
        SchedulerKind::Mh,
        SchedFlags::FLAG_1,
        &[(1, 1), (2, 1), (3, 1)],
    );
    f.set_weight(2, 0);
    let got = f.pick_with(&client);
    assert!(matches!(got, Some('a') | Some('c')), "{got:?}");
}

#[test]
fn mh_port_flag_hashes_client_port() {
    let s = Svc::new(
        SchedulerKind::Mh,
        SchedFlags::FLAG_2,
        &[(1, 1), (2, 1), (3, 1)],
    );
    let mut s = s;
    let mut seen = std::collections::BTreeSet::new();
    for p in 0..64u16 {
        let mut inp = IN;
        inp.cport = 1000 + p;
        seen.insert(s.pick_with(&inp).unwrap());
    }
    assert_eq!(seen.len(), 3, "one client spreads over servers by port");
}

// ---------------------------------------------------------------- lblc / lblcr

fn at(s: &mut Svc, secs: u64) {
    s.now = Instant::from_secs(secs);
}

#[test]
fn lblc_cache_hit_miss_and_overload() {
    // List a b (added b, a), both weight 1, idle.
    let mut s = Svc::new(SchedulerKind::Lblc, 0, &[(2, 1), (1, 1)]);
    let x = input([192, 0, 2, 1], [198, 51, 100, 1]);
    let y = input([192, 0, 2, 1], [198, 51, 100, 2]);
    assert_eq!(s.pick_with(&x), Some('a')); // miss: wlc → a (first)
    conns(&mut s, 1, 0, 1000);
    assert_eq!(s.pick_with(&x), Some('a')); // hit, whatever wlc says
    assert_eq!(s.pick_with(&y), Some('b')); // miss: wlc → b
    // The threshold overload flag is not checked on a hit (kernel behaviour).
    s.get(1).overloaded = true;
    assert_eq!(s.pick_with(&x), Some('a'));
    s.get(1).overloaded = false;
    // lblc-overloaded: active 2 > weight 1 and b has 0*2 < 1 → re-pick by wlc → b.
    conns(&mut s, 1, 2, 0);
    assert_eq!(s.pick_with(&x), Some('b'));
    let Scheduler::Lblc(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.cached(x.daddr), Some(dest_key(&s.dests[s.idx(2)])));
    // ... but not when no server is below half its weight.
    conns(&mut s, 1, 0, 0);
    conns(&mut s, 2, 3, 0);
    // a: 0 → wlc picks a for a new address; b stays cached for x though over weight,
    // since a has 0*2 < 1? yes: b is lblc-overloaded → re-pick a.
    assert_eq!(s.pick_with(&x), Some('a'));
    conns(&mut s, 1, 5, 0); // now no server has active*2 < weight
    assert_eq!(s.pick_with(&x), Some('a'));
    // Quiesced cached server: re-pick.
    s.set_weight(1, 0);
    assert_eq!(s.pick_with(&x), Some('b'));
    // Cached server removed from the service: re-pick.
    s.set_weight(1, 1);
    conns(&mut s, 1, 0, 0);
    s.remove(2);
    assert_eq!(s.pick_with(&x), Some('a'));
}

#[test]
fn lblc_expiry_full_check_every_30_minutes() {
    let mut s = Svc::new(SchedulerKind::Lblc, 0, &[(1, 1)]);
    let x = IN;
    assert_eq!(s.pick_with(&x), Some('a')); // t = 0 arms the 60 s timer
    // Full checks run at ticks 30, 60, ... (counter starts at 1): t = 1800 s, 3600 s, ...
    s.sched.expire(Instant::from_secs(84_600)); // tick 1410: 23.5 h idle < 24 h
    let Scheduler::Lblc(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.len(), 1);
    s.sched.expire(Instant::from_secs(86_399)); // no full check due
    let Scheduler::Lblc(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.len(), 1);
    s.sched.expire(Instant::from_secs(86_400)); // tick 1440, full check: 24 h idle → gone
    let Scheduler::Lblc(l) = &s.sched else {
        panic!()
    };
    assert!(l.is_empty());
}

#[test]
fn lblc_expiry_partial_gc_over_max_size() {
    let mut s = Svc::new(SchedulerKind::Lblc, 0, &[(1, 1)]);
    let n = 16 * 1024 + 300;
    for i in 0..n {
        let d = Ipv4Addr::from(0x0A80_0000u32 + i as u32).octets();
        s.pick_with(&input([192, 0, 2, 1], d));
    }
    let len = |s: &Svc| match &s.sched {
        Scheduler::Lblc(l) => l.len(),
        _ => unreachable!(),
    };
    assert_eq!(len(&s), n);
    // Ticks at 60..300 s: entries idle < 6 min are kept although over max_size.
    s.sched.expire(Instant::from_secs(300));
    assert_eq!(len(&s), n);
    // Tick at 360 s: goal = 300 * 4 / 3 = 400, removed bucket by bucket.
    s.sched.expire(Instant::from_secs(360));
    let left = len(&s);
    assert!(left <= n - 400 && left > n - 500, "{left}");
}

#[test]
fn lblcr_sets_grow_and_shrink() {
    let mut s = Svc::new(SchedulerKind::Lblcr, 0, &[(2, 1), (1, 1)]); // list a b
    let x = IN;
    let key = |s: &Svc, n: u8| dest_key(&s.dests[s.idx(n)]);
    assert_eq!(s.pick_with(&x), Some('a')); // new entry {a}
    conns(&mut s, 1, 1, 0);
    assert_eq!(s.pick_with(&x), Some('a')); // set min a, not lblc-overloaded (1 > 1 false)
    conns(&mut s, 1, 2, 0); // 2 > 1 and b idle → add wlc pick b: set {b, a}
    assert_eq!(s.pick_with(&x), Some('b'));
    let Scheduler::Lblcr(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.cached(x.daddr), Some(vec![key(&s, 2), key(&s, 1)]));
    // Set min over b, a: b (oh 0).
    assert_eq!(s.pick_with(&x), Some('b'));
    // Unchanged for lblcr_expiration with > 1 member: the most loaded (a) leaves.
    if let Scheduler::Lblcr(l) = &mut s.sched {
        l.set_expiration(Duration::from_secs(100));
    }
    at(&mut s, 100);
    assert_eq!(s.pick_with(&x), Some('b')); // 100 > 0 + 100 is false: kept
    at(&mut s, 101);
    assert_eq!(s.pick_with(&x), Some('b'));
    let Scheduler::Lblcr(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.cached(x.daddr), Some(vec![key(&s, 2)]));
    // Overloaded (threshold) set members are skipped by the set min: fall back to wlc.
    conns(&mut s, 1, 0, 0);
    s.get(2).overloaded = true;
    assert_eq!(s.pick_with(&x), Some('a'));
    let Scheduler::Lblcr(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.cached(x.daddr), Some(vec![key(&s, 1), key(&s, 2)]));
}

#[test]
fn lblcr_entries_expire() {
    let mut s = Svc::new(SchedulerKind::Lblcr, 0, &[(1, 1)]);
    s.pick();
    if let Scheduler::Lblcr(l) = &mut s.sched {
        l.set_expiration(Duration::from_secs(1000));
    }
    s.sched.expire(Instant::from_secs(1799));
    let Scheduler::Lblcr(l) = &s.sched else {
        panic!()
    };
    assert_eq!(l.len(), 1);
    s.sched.expire(Instant::from_secs(1800)); // tick 30: full check, 1800 >= 0 + 1000
    let Scheduler::Lblcr(l) = &s.sched else {
        panic!()
    };
    assert!(l.is_empty());
}

// ---------------------------------------------------------------- all schedulers

#[test]
fn every_scheduler_handles_an_empty_service() {
    for kind in SchedulerKind::ALL {
        let mut s = Svc::new(kind, 0, &[]);
        assert_eq!(s.pick(), None, "{kind:?}");
        assert_eq!(s.sched.kind(), kind);
        s.sched.expire(Instant::from_secs(10_000));
    }
}

mod property {
    use super::super::hash::{dh_hashkey, sh_hashkey};
    use super::super::mh::mh_hashkey;
    use super::{
        Dest, DestChange, Instant, Ipv4Addr, RealServerConfig, Rng, SchedFlags, SchedInput,
        Scheduler, SchedulerKind, input, rs,
    };
    use proptest::prelude::*;
    use std::net::IpAddr;

    /// What the kernel's table lookup gives for dh, sh (no fallback) and mh (no fallback):
    /// the hashed server if schedulable, else none.
    fn hashed(s: &Scheduler, dests: &[Dest], inp: &SchedInput, flags: u8) -> Option<Option<usize>> {
        let slot = match s {
            Scheduler::Dh(dh) => dh.buckets().nth(dh_hashkey(inp.daddr))?,
            Scheduler::Sh(sh) if flags & SchedFlags::FLAG_1 == 0 => {
                let port = if flags & SchedFlags::FLAG_2 != 0 {
                    inp.cport
                } else {
                    0
                };
                sh.buckets().nth(sh_hashkey(inp.caddr, port, 0))?
            }
            Scheduler::Mh(mh) if flags & SchedFlags::FLAG_1 == 0 => {
                let port = if flags & SchedFlags::FLAG_2 != 0 {
                    inp.cport
                } else {
                    0
                };
                // Key of ip_vs_mh.c: generate_hash_secret(), hash1.
                let key = [2_654_435_761, 2_654_435_761];
                let h = mh_hashkey(inp.caddr, port, &key, 0) as usize % mh.table().len();
                let i = mh.table()[h];
                (i != u32::MAX).then_some(i as usize)
            }
            _ => return None,
        };
        Some(slot.filter(|&i| dests[i].schedulable() && dests[i].available))
    }

    /// Check one pick against the kernel's rules.
    fn check(
        kind: SchedulerKind,
        flags: u8,
        sched: &Scheduler,
        dests: &[Dest],
        inp: &SchedInput,
        got: Option<usize>,
    ) -> Result<(), TestCaseError> {
        if let Some(i) = got {
            let d = &dests[i];
            match kind {
                // A cached lblc server is not checked for the overload flag.
                SchedulerKind::Lblc => prop_assert!(d.weight > 0),
                SchedulerKind::Ovf => {
                    prop_assert!(d.schedulable() && d.active_conns <= d.weight)
                }
                _ => prop_assert!(d.schedulable(), "{:?} picked {:?}", kind, d),
            }
        }
        if let Some(want) = hashed(sched, dests, inp, flags) {
            prop_assert_eq!(got, want, "{:?}", kind);
            return Ok(());
        }
        let any_ok = dests.iter().any(|d| d.schedulable());
        match kind {
            // mh-fallback re-probes hashed slots, which need not reach every server.
            SchedulerKind::Mh => prop_assert!(got.is_none() || any_ok),
            SchedulerKind::Ovf => prop_assert_eq!(
                got.is_some(),
                dests
                    .iter()
                    .any(|d| d.schedulable() && d.active_conns <= d.weight)
            ),
            // A cached lblc server may be over its threshold (then the only one usable).
            SchedulerKind::Lblc => prop_assert!(got.is_some() || !any_ok),
            _ => prop_assert_eq!(got.is_some(), any_ok, "{:?}", kind),
        }
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u32),
        Remove(usize),
        Edit(usize, u32),
        Overload(usize, bool),
        Conns(usize, u32, u32),
        Schedule([u8; 4], u16),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0u32..=5).prop_map(Op::Add),
            1 => any::<usize>().prop_map(Op::Remove),
            1 => (any::<usize>(), 0u32..=5).prop_map(|(i, w)| Op::Edit(i, w)),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(i, o)| Op::Overload(i, o)),
            1 => (any::<usize>(), 0u32..8, 0u32..600).prop_map(|(i, a, n)| Op::Conns(i, a, n)),
            4 => (any::<[u8; 4]>(), any::<u16>()).prop_map(|(c, p)| Op::Schedule(c, p)),
            1 => (1u64..4000).prop_map(Op::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn list_changes_keep_picks_valid(
            ops in prop::collection::vec(op(), 1..60),
            flags in 0u8..4,
            seed in any::<u64>(),
        ) {
            let mut dests: Vec<Dest> = Vec::new();
            let mut scheds: Vec<Scheduler> = SchedulerKind::ALL
                .iter()
                .map(|&k| Scheduler::new(k, SchedFlags(flags), 251, &dests))
                .collect();
            let mut rng = Rng::new(seed);
            let mut now = Instant::ZERO;
            let mut next_addr = 0u32;
            for op in ops {
                let change = match op {
                    Op::Add(w) => {
                        next_addr += 1;
                        let mut c = RealServerConfig::new(
                            IpAddr::V4(Ipv4Addr::from(0x0A02_0000 + next_addr)),
                            80,
                        );
                        c.weight = w;
                        dests.insert(0, Dest::new(&c));
                        Some(DestChange::Added(0))
                    }
                    Op::Remove(i) if !dests.is_empty() => {
                        let index = i % dests.len();
                        dests.remove(index);
                        Some(DestChange::Removed { index })
                    }
                    Op::Edit(i, w) if !dests.is_empty() => {
                        let i = i % dests.len();
                        let mut c = RealServerConfig::new(dests[i].addr, dests[i].port);
                        c.weight = w;
                        dests[i].edit(&c);
                        Some(DestChange::Edited(i))
                    }
                    Op::Overload(i, o) if !dests.is_empty() => {
                        let n = dests.len();
                        dests[i % n].overloaded = o;
                        None
                    }
                    Op::Conns(i, a, n) if !dests.is_empty() => {
                        let len = dests.len();
                        dests[i % len].active_conns = a;
                        dests[i % len].inact_conns = n;
                        None
                    }
                    Op::Schedule(c, port) => {
                        let mut inp = input(c, [c[3], 7, 1, 1]);
                        inp.cport = port;
                        for (k, s) in SchedulerKind::ALL.iter().zip(scheds.iter_mut()) {
                            let got = s.schedule(&dests, &inp, now, &mut rng);
                            check(*k, flags, s, &dests, &inp, got)?;
                        }
                        None
                    }
                    Op::Tick(secs) => {
                        now = now + core::time::Duration::from_secs(secs);
                        for s in scheds.iter_mut() {
                            s.expire(now);
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(change) = change {
                    for s in scheds.iter_mut() {
                        s.on_change(&dests, change);
                    }
                }
            }
        }
    }

    fn dest_strategy() -> impl Strategy<Value = (u32, bool, u32, u32)> {
        (0u32..=5, prop::bool::weighted(0.2), 0u32..6, 0u32..600)
    }

    fn build(spec: &[(u32, bool, u32, u32)]) -> Vec<Dest> {
        spec.iter()
            .enumerate()
            .map(|(i, &(w, over, act, inact))| {
                let mut d = rs(i as u8 + 1, w);
                d.overloaded = over;
                d.active_conns = act;
                d.inact_conns = inact;
                d
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn picks_only_schedulable_servers(
            spec in prop::collection::vec(dest_strategy(), 0..8),
            flags in 0u8..4,
            seed in any::<u64>(),
            clients in prop::collection::vec(any::<[u8; 4]>(), 1..6),
        ) {
            let dests = build(&spec);
            let any_ok = dests.iter().any(|d| d.schedulable());
            for kind in SchedulerKind::ALL {
                let mut sched = Scheduler::new(kind, SchedFlags(flags), 251, &dests);
                let mut rng = Rng::new(seed);
                for (n, c) in clients.iter().enumerate() {
                    let inp = input(*c, [c[3], c[2], 1, 1]);
                    let now = Instant::from_secs(n as u64);
                    let got = sched.schedule(&dests, &inp, now, &mut rng);
                    if let Some(i) = got {
                        let d = &dests[i];
                        match kind {
                            // A cached lblc server is not checked for the overload flag.
                            SchedulerKind::Lblc => prop_assert!(d.weight > 0),
                            SchedulerKind::Ovf => prop_assert!(
                                d.schedulable() && d.active_conns <= d.weight
                            ),
                            _ => prop_assert!(d.schedulable(), "{kind:?} picked {d:?}"),
                        }
                    }
                    match kind {
                        // Hashing schedulers may fail while other servers are up.
                        SchedulerKind::Dh | SchedulerKind::Mh => {}
                        SchedulerKind::Sh if flags & SchedFlags::FLAG_1 == 0 => {}
                        SchedulerKind::Ovf => prop_assert_eq!(
                            got.is_some(),
                            dests.iter().any(|d| d.schedulable() && d.active_conns <= d.weight)
                        ),
                        _ => prop_assert_eq!(got.is_some(), any_ok, "{:?}", kind),
                    }
                }
            }
        }
    }
}
