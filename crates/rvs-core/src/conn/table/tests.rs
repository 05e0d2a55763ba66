//! Tests of the connection table: lookups, templates, expiry, capacity, memory, and a
//! model-based property test.

use super::*;
use crate::conn::state::{Activity, FlagKind, UDP_STATE};
use crate::model::ForwardMethod;
use std::collections::HashMap;

const T0: Instant = Instant::from_secs(1_000);

fn v4(a: u8, b: u8, c: u8, d: u8) -> [u8; 4] {
    [a, b, c, d]
}

fn tcp_conn(client: [u8; 4], cport: u16, rs: [u8; 4], dest: u32) -> NewConn<[u8; 4]> {
    NewConn {
        protocol: 6,
        caddr: client,
        cport,
        vaddr: v4(192, 168, 0, 100),
        vport: 80,
        daddr: rs,
        dport: 8080,
        local: None,
        dest,
        service: 1,
        state: TcpState::None as u8,
        flags: ConnFlags::new_connection(&ForwardMethod::Masq),
        timeout: Duration::from_secs(2),
        control: None,
    }
}

fn in_key(c: &NewConn<[u8; 4]>) -> InKey<[u8; 4]> {
    InKey {
        protocol: c.protocol,
        caddr: c.caddr,
        cport: c.cport,
        vaddr: c.vaddr,
        vport: c.vport,
    }
}

fn out_key(c: &NewConn<[u8; 4]>) -> OutKey<[u8; 4]> {
    let (daddr, dport) = c.local.unwrap_or((c.caddr, c.cport));
    OutKey {
        protocol: c.protocol,
        saddr: c.daddr,
        sport: c.dport,
        daddr,
        dport,
    }
}

/// An IPv6 connection from client number `i` to 2001:db8::100 port 80, on real server
/// `dest` (fd00::`dest`).
fn v6_conn(i: u32, dest: u32) -> NewConn<[u8; 16]> {
    let mut caddr: [u8; 16] = "2001:db8:1::".parse::<Ipv6Addr>().unwrap().octets();
    caddr[12..].copy_from_slice(&i.to_be_bytes());
    let mut daddr: [u8; 16] = "fd00::".parse::<Ipv6Addr>().unwrap().octets();
    daddr[12..].copy_from_slice(&dest.to_be_bytes());
    NewConn {
        protocol: 6,
        caddr,
        cport: 1024 + (i % 50_000) as u16,
        vaddr: "2001:db8::100".parse::<Ipv6Addr>().unwrap().octets(),
        vport: 80,
        daddr,
        dport: 8080,
        local: None,
        dest,
        service: 1,
        state: TcpState::None as u8,
        flags: ConnFlags::new_connection(&ForwardMethod::Masq),
        timeout: Duration::from_secs(900),
        control: None,
    }
}

fn table(cap: usize) -> ConnTableV4 {
    ConnTable::new(cap, 0x5eed, TableFullPolicy::DropNew)
}

#[test]
fn insert_and_lookup_in_and_out_v4() {
    let mut t = table(16);
    let c = tcp_conn(v4(172, 16, 5, 9), 51234, v4(10, 0, 0, 2), 7);
    let id = t.insert(c, T0).unwrap().id;
    assert_eq!(t.lookup_in(&in_key(&c), T0), Some(id));
    assert_eq!(t.lookup_out(&out_key(&c), T0), Some(id));
    // Not a template: the template lookup does not see it.
    assert_eq!(t.lookup_template(&in_key(&c), T0), None);
    // Other ports, other protocol: no match.
    let mut k = in_key(&c);
    k.cport += 1;
    assert_eq!(t.lookup_in(&k, T0), None);
    let mut k = in_key(&c);
    k.protocol = 17;
    assert_eq!(t.lookup_in(&k, T0), None);
    let mut o = out_key(&c);
    o.sport = 80;
    assert_eq!(t.lookup_out(&o, T0), None);
    let got = t.get(id).unwrap();
    assert_eq!(got.dest, 7);
    assert_eq!(got.state_name(), "NONE");
    assert_eq!(got.remaining_secs(T0), 2);
    assert_eq!(got.caddr.to_vec(), vec![172, 16, 5, 9]);
    assert_eq!(t.len(), 1);
}

#[test]
fn fullnat_out_key_uses_the_local_address() {
    let mut t = table(16);
    let mut c = tcp_conn(v4(172, 16, 5, 9), 51234, v4(10, 0, 0, 2), 7);
    c.local = Some((v4(10, 0, 0, 250), 40001));
    let id = t.insert(c, T0).unwrap().id;
    assert!(t.get(id).unwrap().flags.has(ConnFlags::FULLNAT));
    assert_eq!(t.lookup_out(&out_key(&c), T0), Some(id));
    // The NAT-shaped out key (to the client) does not match a FullNAT entry.
    let nat = OutKey {
        protocol: 6,
        saddr: c.daddr,
        sport: c.dport,
        daddr: c.caddr,
        dport: c.cport,
    };
    assert_eq!(t.lookup_out(&nat, T0), None);
    assert_eq!(t.lookup_in(&in_key(&c), T0), Some(id));
}

#[test]
fn insert_and_lookup_v6() {
    let mut t: ConnTableV6 = ConnTable::new(8, 1, TableFullPolicy::DropNew);
    let client: [u8; 16] = "2001:db8::5".parse::<Ipv6Addr>().unwrap().octets();
    let vip: [u8; 16] = "2001:db8::100".parse::<Ipv6Addr>().unwrap().octets();
    let rs: [u8; 16] = "fd00::2".parse::<Ipv6Addr>().unwrap().octets();
    let c = NewConn {
        protocol: 17,
        caddr: client,
        cport: 5353,
        vaddr: vip,
        vport: 53,
        daddr: rs,
        dport: 53,
        local: None,
        dest: 3,
        service: 9,
        state: UDP_STATE,
        flags: ConnFlags::new_connection(&ForwardMethod::Masq),
        timeout: Duration::from_secs(300),
        control: None,
    };
    let id = t.insert(c, T0).unwrap().id;
    let k = InKey {
        protocol: 17,
        caddr: client,
        cport: 5353,
        vaddr: vip,
        vport: 53,
    };
    assert_eq!(t.lookup_in(&k, T0), Some(id));
    let o = OutKey {
        protocol: 17,
        saddr: rs,
        sport: 53,
        daddr: client,
        dport: 5353,
    };
    assert_eq!(t.lookup_out(&o, T0), Some(id));
    let got = t.get(id).unwrap();
    assert_eq!(got.state_name(), "UDP");
    assert_eq!(got.caddr.to_ip(), "2001:db8::5".parse::<IpAddr>().unwrap());
    assert_eq!(<[u8; 16]>::FAMILY, Family::V6);
}

#[test]
fn fwmark_template_keys() {
    assert_eq!(<[u8; 4]>::from_fwmark(100), [0, 0, 0, 100]);
    let m6 = <[u8; 16]>::from_fwmark(0x0102_0304);
    assert_eq!(&m6[..4], &[1, 2, 3, 4]);
    assert!(m6[4..].iter().all(|&b| b == 0));
    let k = InKey::fwmark_template(v4(172, 16, 5, 0), 100);
    assert_eq!(
        (k.protocol, k.cport, k.vport, k.vaddr),
        (0, 0, 0, [0, 0, 0, 100])
    );

    let mut t = table(8);
    let tpl = NewConn {
        protocol: 0,
        caddr: k.caddr,
        cport: 0,
        vaddr: k.vaddr,
        vport: 0,
        daddr: v4(10, 0, 0, 5),
        dport: 0,
        local: None,
        dest: 1,
        service: 2,
        state: 0,
        flags: ConnFlags(ConnFlags::TEMPLATE | ConnFlags::FWMARK),
        timeout: Duration::from_secs(360),
        control: None,
    };
    let id = t.insert(tpl, T0).unwrap().id;
    assert_eq!(t.lookup_template(&k, T0), Some(id));
    assert_eq!(t.lookup_in(&k, T0), None);
    assert_eq!(t.get(id).unwrap().state_name(), "NONE");
    assert_eq!(t.templates(), 1);
}

fn template_for(c: &NewConn<[u8; 4]>, timeout: u64) -> NewConn<[u8; 4]> {
    NewConn {
        cport: 0,
        caddr: [c.caddr[0], c.caddr[1], c.caddr[2], 0],
        state: 0,
        flags: ConnFlags(ConnFlags::TEMPLATE),
        timeout: Duration::from_secs(timeout),
        control: None,
        ..*c
    }
}

#[test]
fn template_does_not_expire_while_controlling() {
    let mut t = table(16);
    let c = tcp_conn(v4(172, 16, 5, 9), 51234, v4(10, 0, 0, 2), 7);
    let tpl = template_for(&c, 360);
    let tk = in_key(&tpl);
    let tid = t.insert(tpl, T0).unwrap().id;
    let mut conn = c;
    conn.control = Some(tid);
    conn.timeout = Duration::from_secs(900);
    let cid = t.insert(conn, T0).unwrap().id;
    assert_eq!(t.get(tid).unwrap().n_control, 1);
    assert_eq!(t.get(cid).unwrap().control, Some(tid));

    // Past the template's own 360 s: still found, and expire() re-arms it for 60 s.
    let t1 = T0 + Duration::from_secs(400);
    assert_eq!(t.lookup_template(&tk, t1), Some(tid));
    let mut gone = Vec::new();
    t.expire(t1, usize::MAX, |id, _| gone.push(id));
    assert!(gone.is_empty());
    let tc = t.get(tid).unwrap();
    assert_eq!(tc.timeout, TEMPLATE_REARM);
    assert_eq!(tc.expires, t1 + TEMPLATE_REARM);

    // The connection expires at 900 s; it releases the template...
    let t2 = T0 + Duration::from_secs(901);
    let mut removed = Vec::new();
    t.expire(t2, usize::MAX, |id, c| removed.push((id, c.is_template())));
    assert_eq!(removed, vec![(cid, false)]);
    assert_eq!(t.get(cid), None);
    assert_eq!(t.get(tid).unwrap().n_control, 0);
    // ...which then expires at its last re-arm (it was re-armed again at ~460, 520, ...).
    let t3 = t2 + Duration::from_secs(61);
    assert_eq!(t.lookup_template(&tk, t3), None);
    let n = t.expire(t3, usize::MAX, |_, _| {});
    assert_eq!(n, 1);
    assert!(t.is_empty());
    assert_eq!(t.templates(), 0);
}

#[test]
fn removing_a_controlled_connection_releases_its_template() {
    let mut t = table(16);
    let c = tcp_conn(v4(172, 16, 5, 9), 1000, v4(10, 0, 0, 2), 7);
    let tid = t.insert(template_for(&c, 360), T0).unwrap().id;
    let mut ids = Vec::new();
    for p in 0..3 {
        let mut n = c;
        n.cport = 1000 + p;
        n.control = Some(tid);
        ids.push(t.insert(n, T0).unwrap().id);
    }
    assert_eq!(t.get(tid).unwrap().n_control, 3);
    t.remove(ids[1]).unwrap();
    assert_eq!(t.get(tid).unwrap().n_control, 2);
    // Removing the template detaches the rest.
    t.remove(tid).unwrap();
    assert_eq!(t.get(ids[0]).unwrap().control, None);
    assert_eq!(t.get(ids[2]).unwrap().control, None);
    t.remove(ids[0]).unwrap();
    assert_eq!(t.len(), 1);
    // A control id that is not a template is ignored.
    let mut n = c;
    n.cport = 2000;
    n.control = Some(ids[2]);
    let id = t.insert(n, T0).unwrap().id;
    assert_eq!(t.get(id).unwrap().control, None);
}

#[test]
fn entries_expire_exactly_at_their_timeout() {
    let mut t = table(16);
    let c = tcp_conn(v4(1, 2, 3, 4), 5, v4(10, 0, 0, 2), 7);
    let id = t.insert(c, T0).unwrap().id;
    let exp = T0 + Duration::from_secs(2);
    assert_eq!(t.get(id).unwrap().expires, exp);
    let just_before = Instant(exp.0 - 1);
    assert_eq!(t.lookup_in(&in_key(&c), just_before), Some(id));
    assert_eq!(t.lookup_out(&out_key(&c), just_before), Some(id));
    assert_eq!(t.expire(just_before, usize::MAX, |_, _| {}), 0);
    assert!(t.is_live(id, just_before));
    // At the expiry instant lookups stop finding it.
    assert_eq!(t.lookup_in(&in_key(&c), exp), None);
    assert_eq!(t.lookup_out(&out_key(&c), exp), None);
    assert!(!t.is_live(id, exp));
    // It is removed within one tick, and reported.
    let hint = t.next_expiry().unwrap();
    assert!(hint > exp && hint <= exp + TICK, "{hint:?}");
    let mut removed = Vec::new();
    assert_eq!(
        t.expire(hint, usize::MAX, |id, c| removed.push((id, c.dest))),
        1
    );
    assert_eq!(removed, vec![(id, 7)]);
    assert!(t.is_empty());
    assert_eq!(t.next_expiry(), None);
}

#[test]
fn touch_rearms_later_and_earlier() {
    let mut t = table(16);
    let c = tcp_conn(v4(1, 2, 3, 4), 5, v4(10, 0, 0, 2), 7);
    let id = t.insert(c, T0).unwrap().id;
    // Re-armed for 900 s one second later: survives the original 2 s.
    let t1 = T0 + Duration::from_secs(1);
    assert!(t.touch(id, t1, Duration::from_secs(900)));
    let t2 = T0 + Duration::from_secs(10);
    assert_eq!(t.expire(t2, usize::MAX, |_, _| {}), 0);
    assert_eq!(t.lookup_in(&in_key(&c), t2), Some(id));
    assert_eq!(t.get(id).unwrap().remaining_secs(t2), 891);
    // Re-armed for 10 s (as CLOSE would): expires 10 s later, not at 900.
    assert!(t.touch(id, t2, Duration::from_secs(10)));
    let t3 = t2 + Duration::from_secs(10) + TICK;
    assert_eq!(t.expire(t3, usize::MAX, |_, _| {}), 1);
    // Unknown ids are refused without panicking.
    assert!(!t.touch(id, t3, Duration::from_secs(1)));
    assert!(!t.touch(ConnId(12345), t3, Duration::from_secs(1)));
    assert_eq!(t.remove(ConnId(u32::MAX)), None);
    assert_eq!(t.get(ConnId(3)), None);
}

#[test]
fn long_timeouts_survive_wheel_turns() {
    let mut t = table(4);
    let c = tcp_conn(v4(1, 2, 3, 4), 5, v4(10, 0, 0, 2), 7);
    let mut tpl = template_for(&c, 2_678_400);
    tpl.timeout = Duration::from_secs(2_678_400);
    let id = t.insert(tpl, T0).unwrap().id;
    let mut now = T0;
    for _ in 0..100 {
        now = now + Duration::from_secs(26_000);
        assert_eq!(t.expire(now, usize::MAX, |_, _| {}), 0);
    }
    assert_eq!(
        t.get(id).unwrap().remaining_secs(now),
        2_678_400 - 2_600_000
    );
    now = T0 + Duration::from_secs(2_678_400) + TICK;
    assert_eq!(t.expire(now, usize::MAX, |_, _| {}), 1);
}

#[test]
fn expire_respects_its_budget() {
    let mut t = table(100);
    for p in 0..100 {
        t.insert(tcp_conn(v4(1, 2, 3, 4), p, v4(10, 0, 0, 2), 7), T0)
            .unwrap();
    }
    let later = T0 + Duration::from_secs(5);
    let mut total = 0;
    let mut calls = 0;
    while !t.is_empty() {
        let n = t.expire(later, 8, |_, _| {});
        assert!(n <= 8);
        total += n;
        calls += 1;
    }
    assert_eq!((total, calls), (100, 13));
}

#[test]
fn tcp_transitions_through_the_table() {
    let mut t = table(16);
    let timeouts = StateTimeouts::default();
    let c = tcp_conn(v4(1, 2, 3, 4), 5, v4(10, 0, 0, 2), 7);
    let id = t.insert(c, T0).unwrap().id;
    let tr = t
        .tcp_transition(id, Direction::Input, FlagKind::Syn.flags(), &timeouts, T0)
        .unwrap();
    assert_eq!(
        (tr.new, tr.activity),
        (TcpState::SynRecv, Some(Activity::BecameActive))
    );
    let got = t.get(id).unwrap();
    assert_eq!(got.state_name(), "SYN_RECV");
    assert_eq!(got.timeout, Duration::from_secs(60));
    assert!(!got.flags.has(ConnFlags::INACTIVE));
    let t1 = T0 + Duration::from_secs(1);
    t.tcp_transition(
        id,
        Direction::Output,
        TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
        &timeouts,
        t1,
    );
    let tr = t
        .tcp_transition(id, Direction::Input, FlagKind::Ack.flags(), &timeouts, t1)
        .unwrap();
    assert_eq!(tr.new, TcpState::Established);
    assert_eq!(t.get(id).unwrap().expires, t1 + Duration::from_secs(900));
    assert_eq!(t.activity_counts(t1), (1, 0));
    let tr = t
        .tcp_transition(id, Direction::Input, FlagKind::Rst.flags(), &timeouts, t1)
        .unwrap();
    assert_eq!(
        (tr.new, tr.activity),
        (TcpState::Close, Some(Activity::BecameInactive))
    );
    assert_eq!(t.get(id).unwrap().expires, t1 + Duration::from_secs(10));
    assert_eq!(t.activity_counts(t1), (0, 1));
    // Non-TCP entries and templates have no TCP transitions.
    let mut u = tcp_conn(v4(1, 2, 3, 4), 6, v4(10, 0, 0, 2), 7);
    u.protocol = 17;
    let uid = t.insert(u, T0).unwrap().id;
    assert!(
        t.tcp_transition(uid, Direction::Input, FlagKind::Syn.flags(), &timeouts, T0)
            .is_none()
    );
}

#[test]
fn full_table_drop_new() {
    let mut t = table(4);
    for p in 0..4 {
        t.insert(tcp_conn(v4(1, 2, 3, 4), p, v4(10, 0, 0, 2), 7), T0)
            .unwrap();
    }
    let extra = tcp_conn(v4(1, 2, 3, 4), 99, v4(10, 0, 0, 2), 7);
    assert_eq!(t.insert(extra, T0), Err(TableFull));
    // Once an entry has expired (but is not swept), its slot is reclaimed and reported.
    let later = T0 + Duration::from_secs(3);
    let ins = t.insert(extra, later).unwrap();
    assert!(ins.evicted.is_some());
    assert_eq!(t.len(), 4);
    assert_eq!(t.lookup_in(&in_key(&extra), later), Some(ins.id));
    // Zero capacity: always full, never panics.
    let mut z = table(0);
    assert_eq!(z.insert(extra, T0), Err(TableFull));
}

#[test]
fn full_table_evict_embryonic() {
    let mut t: ConnTableV4 = ConnTable::new(3, 9, TableFullPolicy::EvictEmbryonic);
    let timeouts = StateTimeouts::default();
    let mut ids = Vec::new();
    for p in 0..3u16 {
        let c = tcp_conn(v4(1, 2, 3, 4), p, v4(10, 0, 0, 2), 7);
        let id = t.insert(c, T0).unwrap().id;
        ids.push(id);
    }
    // 0: ESTABLISHED (900 s). 1: SYN_RECV at T0 (60 s). 2: SYN_RECV a second later.
    let flow = [FlagKind::Syn, FlagKind::Ack];
    for k in flow {
        t.tcp_transition(ids[0], Direction::Input, k.flags(), &timeouts, T0);
    }
    t.tcp_transition(
        ids[1],
        Direction::Input,
        FlagKind::Syn.flags(),
        &timeouts,
        T0,
    );
    let t1 = T0 + Duration::from_secs(1);
    t.tcp_transition(
        ids[2],
        Direction::Input,
        FlagKind::Syn.flags(),
        &timeouts,
        t1,
    );
    let extra = tcp_conn(v4(9, 9, 9, 9), 1, v4(10, 0, 0, 2), 7);
    let ins = t.insert(extra, t1).unwrap();
    let ev = ins.evicted.unwrap();
    assert_eq!(
        (ev.cport, ev.state_name()),
        (1, "SYN_RECV"),
        "closest to expiry"
    );
    // Make everything established: nothing to evict.
    for &id in [ins.id, ids[2]].iter() {
        for k in flow {
            t.tcp_transition(id, Direction::Input, k.flags(), &timeouts, t1);
        }
    }
    let extra2 = tcp_conn(v4(9, 9, 9, 9), 2, v4(10, 0, 0, 2), 7);
    assert_eq!(t.insert(extra2, t1), Err(TableFull));
}

#[test]
fn remove_by_real_server() {
    let mut t = table(32);
    let c = tcp_conn(v4(1, 2, 3, 4), 1, v4(10, 0, 0, 2), 7);
    let tid = t.insert(template_for(&c, 360), T0).unwrap().id;
    for p in 0..5u16 {
        let mut n = tcp_conn(v4(1, 2, 3, 4), 10 + p, v4(10, 0, 0, 2), 7);
        n.control = Some(tid);
        t.insert(n, T0).unwrap();
        t.insert(tcp_conn(v4(1, 2, 3, 4), 20 + p, v4(10, 0, 0, 3), 8), T0)
            .unwrap();
    }
    let mut seen = Vec::new();
    let n = t.remove_dest(7, |_, c| seen.push(c.is_template()));
    assert_eq!(n, 6);
    assert_eq!(seen.last(), Some(&true), "template after its connections");
    assert_eq!(t.len(), 5);
    assert!(t.iter().all(|(_, c)| c.dest == 8));
    assert_eq!(t.templates(), 0);
}

#[test]
fn listing_shows_state_and_expiry() {
    let mut t = table(8);
    let c = tcp_conn(v4(172, 16, 5, 9), 51234, v4(10, 0, 0, 2), 7);
    let id = t.insert(c, T0).unwrap().id;
    t.tcp_transition(
        id,
        Direction::Input,
        FlagKind::Syn.flags(),
        &StateTimeouts::default(),
        T0,
    );
    let rows: Vec<String> = t
        .iter()
        .map(|(_, c)| {
            let s = c.remaining_secs(T0 + Duration::from_millis(1500));
            format!(
                "{} {:02}:{:02} {} {}:{}",
                c.protocol,
                s / 60,
                s % 60,
                c.state_name(),
                c.caddr.to_ip(),
                c.cport
            )
        })
        .collect();
    assert_eq!(rows, vec!["6 00:58 SYN_RECV 172.16.5.9:51234"]);
}

/// Bytes per entry at 1 M entries, index and wheel included.
#[test]
fn memory_per_entry_at_one_million() {
    const N: usize = 1_000_000;
    let mut t = ConnTableV4::new(N, 42, TableFullPolicy::DropNew);
    let before = t.memory_bytes();
    for i in 0..N as u32 {
        let b = i.to_be_bytes();
        let c = tcp_conn(
            [10, b[1], b[2], b[3]],
            1024 + (i % 50_000) as u16,
            v4(10, 0, 0, 2),
            7,
        );
        t.insert(c, T0).unwrap();
    }
    assert_eq!(t.len(), N);
    // Filling never grew an allocation.
    assert_eq!(t.memory_bytes(), before);
    let v4_per = t.memory_bytes() as f64 / N as f64;
    // IPv6: a growing table filled to N connections to one VIP over 16 real servers (16
    // interned bindings), every need provided as the daemon does.
    let mut v6 = ConnTableV6::growable(N, usize::MAX, 0, 42, TableFullPolicy::DropNew);
    for i in 0..N as u32 {
        while let Some(need) = v6.need() {
            drop(v6.provide(Provision::build(need)));
        }
        drop(v6.take_retired());
        v6.insert(v6_conn(i, i % 16), T0).unwrap();
    }
    while v6.migrating() {
        v6.expire(T0, 0, |_, _| {});
    }
    drop(v6.take_retired());
    assert_eq!(v6.len(), N);
    assert_eq!(v6.bindings(), 16);
    let v6_per = v6.memory_bytes() as f64 / N as f64;
    eprintln!(
        "conn table at 1M: IPv4 {v4_per:.1} B/entry (entry {} B), IPv6 {v6_per:.1} B/entry (entry {} B)",
        size_of::<Entry<[u8; 4]>>(),
        size_of::<Entry<[u8; 16]>>()
    );
    assert!(v4_per <= 104.0, "IPv4 {v4_per} bytes per entry");
    assert_eq!(size_of::<Entry<[u8; 4]>>(), 88);
    assert_eq!(size_of::<Entry<[u8; 16]>>(), 88);
    assert!(v6_per <= 104.0, "IPv6 {v6_per} bytes per entry");
    // Lookups still work at full load.
    let c = tcp_conn([10, 0, 0, 5], 1029, v4(10, 0, 0, 2), 7);
    assert!(t.lookup_in(&in_key(&c), T0).is_some());
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert { key: u8, timeout_ms: u32 },
        Touch { pick: u8, timeout_ms: u32 },
        Remove { pick: u8 },
        Advance { ms: u32 },
        Expire { budget: u8 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..24, 0u32..5_000).prop_map(|(key, timeout_ms)| Op::Insert { key, timeout_ms }),
            3 => (any::<u8>(), 0u32..5_000).prop_map(|(pick, timeout_ms)| Op::Touch { pick, timeout_ms }),
            1 => any::<u8>().prop_map(|pick| Op::Remove { pick }),
            3 => (0u32..1_500).prop_map(|ms| Op::Advance { ms }),
            2 => any::<u8>().prop_map(|budget| Op::Expire { budget }),
        ]
    }

    fn conn_for(key: u8) -> NewConn<[u8; 4]> {
        tcp_conn(
            v4(1, 2, 3, key % 6),
            1000 + u16::from(key),
            v4(10, 0, 0, 2),
            u32::from(key),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn table_matches_a_hashmap_model(ops in proptest::collection::vec(op(), 1..120)) {
            let mut t = ConnTableV4::new(16, 7, TableFullPolicy::DropNew);
            // id -> (key, expires)
            let mut m: HashMap<ConnId, (u8, u64)> = HashMap::new();
            let mut now = T0;
            for op in ops {
                match op {
                    Op::Insert { key, timeout_ms } => {
                        let c = conn_for(key);
                        // The director inserts only when no live entry has the key.
                        if t.lookup_in(&in_key(&c), now).is_some() {
                            continue;
                        }
                        let mut c = c;
                        c.timeout = Duration::from_millis(u64::from(timeout_ms));
                        match t.insert(c, now) {
                            Ok(ins) => {
                                if let Some(ev) = ins.evicted {
                                    // DropNew reclaims only dead entries.
                                    prop_assert!(ev.expires <= now);
                                    let victim = m.iter()
                                        .find(|(_, (k, e))| u32::from(*k) == ev.dest && *e == ev.expires.0)
                                        .map(|(id, _)| *id);
                                    prop_assert!(victim.is_some());
                                    m.remove(&victim.unwrap());
                                }
                                prop_assert!(!m.contains_key(&ins.id));
                                m.insert(ins.id, (key, now.0 + u64::from(timeout_ms) * 1_000_000));
                            }
                            Err(TableFull) => {
                                prop_assert_eq!(m.len(), 16);
                            }
                        }
                    }
                    Op::Touch { pick, timeout_ms } => {
                        // The director touches what its lookups return: live entries.
                        let mut ids: Vec<_> = m.iter().filter(|(_, (_, e))| *e > now.0).map(|(id, _)| *id).collect();
                        ids.sort();
                        if ids.is_empty() { continue; }
                        let id = ids[usize::from(pick) % ids.len()];
                        prop_assert!(t.touch(id, now, Duration::from_millis(u64::from(timeout_ms))));
                        m.get_mut(&id).unwrap().1 = now.0 + u64::from(timeout_ms) * 1_000_000;
                    }
                    Op::Remove { pick } => {
                        let mut ids: Vec<_> = m.keys().copied().collect();
                        ids.sort();
                        if ids.is_empty() { continue; }
                        let id = ids[usize::from(pick) % ids.len()];
                        let c = t.remove(id).unwrap();
                        let (key, _) = m.remove(&id).unwrap();
                        prop_assert_eq!(c.dest, u32::from(key));
                    }
                    Op::Advance { ms } => now = now + Duration::from_millis(u64::from(ms)),
                    Op::Expire { budget } => {
                        let budget = usize::from(budget);
                        let mut removed = Vec::new();
                        t.expire(now, budget, |id, c| removed.push((id, *c)));
                        for (id, c) in &removed {
                            let (key, exp) = m.remove(id).unwrap();
                            prop_assert_eq!(c.dest, u32::from(key));
                            prop_assert_eq!(c.expires.0, exp);
                            // Never early: removed only once a whole tick has passed.
                            prop_assert!((exp >> TICK_SHIFT) < (now.0 >> TICK_SHIFT));
                        }
                        if budget >= 64 {
                            // With enough budget, nothing due remains.
                            prop_assert!(m.values().all(|(_, e)| (e >> TICK_SHIFT) >= (now.0 >> TICK_SHIFT)));
                        }
                    }
                }
                // Same contents at every step.
                prop_assert_eq!(t.len(), m.len());
                for (id, (key, exp)) in &m {
                    let c = t.get(*id).unwrap();
                    prop_assert_eq!(c.dest, u32::from(*key));
                    prop_assert_eq!(c.expires.0, *exp);
                }
                for key in 0..24u8 {
                    let c = conn_for(key);
                    let live: Vec<_> = m.iter().filter(|(_, (k, e))| *k == key && *e > now.0).map(|(id, _)| *id).collect();
                    prop_assert!(live.len() <= 1);
                    prop_assert_eq!(t.lookup_in(&in_key(&c), now), live.first().copied());
                    prop_assert_eq!(t.lookup_out(&out_key(&c), now), live.first().copied());
                }
                if let Some(h) = t.next_expiry() {
                    let first = m.values().map(|(_, e)| *e).min().unwrap();
                    prop_assert!(h.0 <= ((first >> TICK_SHIFT) + 1) << TICK_SHIFT);
                } else {
                    prop_assert!(m.is_empty());
                }
            }
        }
    }
}

#[test]
fn sync_bookkeeping_starts_at_zero_and_the_initial_state() {
    let mut t = ConnTableV4::new(8, 1, TableFullPolicy::DropNew);
    let mut c = tcp_conn([10, 0, 0, 5], 1029, v4(10, 0, 0, 2), 7);
    c.state = TcpState::SynRecv as u8;
    let id = t.insert(c, T0).unwrap().id;
    assert_eq!(
        t.sync_meta(id),
        Some(SyncMeta {
            in_pkts: 0,
            old_state: TcpState::SynRecv as u8
        })
    );
    assert_eq!(t.count_in_pkt(id), Some(1));
    assert_eq!(t.count_in_pkt(id), Some(2));
    assert!(t.set_sync_meta(
        id,
        SyncMeta {
            in_pkts: u32::MAX,
            old_state: 1
        }
    ));
    assert_eq!(t.count_in_pkt(id), Some(0), "wraps");
    assert_eq!(t.sync_meta(id).unwrap().old_state, 1);
    // The state as given, nothing else touched.
    assert!(t.set_state(id, TcpState::TimeWait as u8));
    let e = t.get(id).unwrap();
    assert_eq!(e.state_name(), "TIME_WAIT");
    assert_eq!(e.flags, c.flags);
    // The SYNC flag is the caller's to set and keep.
    assert!(t.set_flags(id, e.flags.with(ConnFlags::SYNC)));
    assert!(t.get(id).unwrap().flags.has(ConnFlags::SYNC));
    let tr = t
        .tcp_transition(
            id,
            Direction::Input,
            TcpFlags(TcpFlags::ACK),
            &StateTimeouts::default(),
            T0,
        )
        .unwrap();
    assert!(
        tr.flags.has(ConnFlags::SYNC),
        "kept through the state machine"
    );
    // Unknown ids.
    t.remove(id);
    assert_eq!(t.sync_meta(id), None);
    assert_eq!(t.count_in_pkt(id), None);
    assert!(!t.set_state(id, 1));
    assert!(!t.set_sync_meta(id, SyncMeta::default()));
}

/// What the daemon's provisioner does between batches: build what the table needs and
/// hand it over; drop what it retires.
fn provision(t: &mut ConnTableV4) {
    if let Some(need) = t.need() {
        let before = t.capacity();
        // Handed back: nothing, or the short chunk a longer one replaced.
        let back = t.provide(Provision::build(need));
        assert!(back.is_none() || t.capacity() > before, "{need:?} refused");
    }
    drop(t.take_retired());
}

fn distinct(i: u32) -> NewConn<[u8; 4]> {
    let b = i.to_be_bytes();
    let mut c = tcp_conn(
        [10, b[1], b[2], b[3]],
        1024 + (i % 7) as u16,
        v4(10, 0, 0, 2),
        i,
    );
    c.timeout = Duration::from_secs(900);
    c
}

#[test]
fn grows_under_inserts_up_to_the_entry_limit_and_not_beyond() {
    const MAX: usize = 3 * CHUNK_ENTRIES + 1000;
    let mut t = ConnTableV4::growable(MAX, usize::MAX, 0, 11, TableFullPolicy::DropNew);
    assert_eq!(t.capacity(), CHUNK_ENTRIES, "starts with one chunk");
    assert_eq!(t.max_entries(), MAX);
    let mut refused = 0;
    let mut buckets_seen = vec![t.buckets()];
    for i in 0..(MAX as u32 + 500) {
        match t.insert(distinct(i), T0) {
            Ok(_) => {}
            Err(TableFull) => refused += 1,
        }
        provision(&mut t);
        if *buckets_seen.last().unwrap() != t.buckets() {
            buckets_seen.push(t.buckets());
        }
        assert!(t.capacity() <= MAX);
    }
    assert_eq!(t.len(), MAX);
    assert_eq!(refused, 500);
    assert_eq!(t.capacity(), MAX);
    assert_eq!(t.need(), None, "nothing more to ask for at the limit");
    assert_eq!(
        buckets_seen,
        vec![16_384, 32_768, 65_536],
        "heads doubled twice"
    );
    // Every entry is found by both keys after growth and migration.
    for i in 0..MAX as u32 {
        let c = distinct(i);
        let id = t.lookup_in(&in_key(&c), T0).unwrap();
        assert_eq!(t.lookup_out(&out_key(&c), T0), Some(id));
        assert_eq!(t.get(id).unwrap().dest, i);
    }
}

#[test]
fn growth_honours_the_byte_limit() {
    const LIMIT: usize = 3 << 20;
    let mut t = ConnTableV4::growable(usize::MAX, LIMIT, 0, 3, TableFullPolicy::DropNew);
    let max = t.max_entries();
    assert_eq!(max, entries_for_bytes::<[u8; 4]>(LIMIT));
    assert!(max > CHUNK_ENTRIES && max < 3 * CHUNK_ENTRIES, "{max}");
    let mut ok = 0;
    for i in 0..(max as u32 + 100) {
        if t.insert(distinct(i), T0).is_ok() {
            ok += 1;
        }
        provision(&mut t);
        assert!(t.memory_bytes() <= LIMIT, "{} > {LIMIT}", t.memory_bytes());
    }
    assert_eq!(ok, max);
    // A provision that would break the limit is handed back, not linked in.
    let back = t.provide(Provision::build(Need::Chunk(CHUNK_ENTRIES)));
    assert!(back.is_some());
    assert!(t.memory_bytes() <= LIMIT);
    // The room left: free slots only (nothing more may be allocated that holds entries).
    assert!(t.room_bytes() < CHUNK_ENTRIES * 80);
}

#[test]
fn without_provisions_the_table_never_allocates_and_fills_at_its_chunk() {
    let mut t = ConnTableV4::growable(1 << 20, usize::MAX, 0, 5, TableFullPolicy::DropNew);
    let before = t.memory_bytes();
    for i in 0..CHUNK_ENTRIES as u32 {
        t.insert(distinct(i), T0).unwrap();
    }
    assert_eq!(t.insert(distinct(1 << 30), T0), Err(TableFull));
    assert_eq!(t.memory_bytes(), before);
    assert!(matches!(t.need(), Some(Need::Chunk(CHUNK_ENTRIES))));
    provision(&mut t);
    t.insert(distinct(1 << 30), T0).unwrap();
}

#[test]
fn expiry_still_works_after_growth() {
    let mut t = ConnTableV4::growable(1 << 20, usize::MAX, 0, 8, TableFullPolicy::DropNew);
    let n = 2 * CHUNK_ENTRIES as u32 + 77;
    for i in 0..n {
        let mut c = distinct(i);
        // Half short-lived, half long-lived.
        c.timeout = Duration::from_secs(if i % 2 == 0 { 5 } else { 500 });
        t.insert(c, T0).unwrap();
        provision(&mut t);
    }
    assert!(t.capacity() > 2 * CHUNK_ENTRIES);
    let later = T0 + Duration::from_secs(6);
    let mut removed = 0;
    while t.expire(later, 4096, |_, c| assert!(c.dest % 2 == 0)) > 0 {
        removed += 1;
    }
    assert!(removed > 0);
    assert_eq!(t.len(), (n / 2) as usize);
    assert!(!t.migrating());
    for i in 0..n {
        let c = distinct(i);
        assert_eq!(t.lookup_in(&in_key(&c), later).is_some(), i % 2 == 1, "{i}");
    }
    // Freed slots are reused before fresh ones.
    let cap = t.capacity();
    for i in n..n + n / 2 {
        t.insert(distinct(i), later).unwrap();
    }
    assert_eq!(t.capacity(), cap);
}

mod migration_model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert { key: u16 },
        Remove { key: u16 },
        Grow,
        Migrate { buckets: u16 },
        Expire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u16..400).prop_map(|key| Op::Insert { key }),
            2 => (0u16..400).prop_map(|key| Op::Remove { key }),
            1 => Just(Op::Grow),
            2 => (0u16..6000).prop_map(|buckets| Op::Migrate { buckets }),
            1 => Just(Op::Expire),
        ]
    }

    fn conn(key: u16) -> NewConn<[u8; 4]> {
        let mut c = tcp_conn(
            [172, 16, (key >> 8) as u8, key as u8],
            2000 + key,
            v4(10, 0, 0, 3),
            u32::from(key),
        );
        c.timeout = Duration::from_secs(900);
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Lookups by both keys match a HashMap model at every step while the hash heads
        /// are migrated a few buckets at a time, across several doublings.
        #[test]
        fn every_lookup_is_right_mid_migration(ops in proptest::collection::vec(op(), 1..300)) {
            let mut t = ConnTableV4::growable(1 << 20, usize::MAX, 0, 99, TableFullPolicy::DropNew);
            let mut m: HashMap<u16, ConnId> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert { key } => {
                        if m.contains_key(&key) { continue; }
                        let id = t.insert(conn(key), T0).unwrap().id;
                        m.insert(key, id);
                    }
                    Op::Remove { key } => {
                        if let Some(id) = m.remove(&key) {
                            prop_assert_eq!(t.remove(id).unwrap().dest, u32::from(key));
                        }
                    }
                    Op::Grow => {
                        if !t.migrating() {
                            let n = t.buckets() * 2;
                            prop_assert!(t.provide(Provision::build(Need::Heads(n))).is_none());
                            prop_assert!(t.migrating());
                            prop_assert_eq!(t.buckets(), n);
                        }
                    }
                    Op::Migrate { buckets } => t.migrate(usize::from(buckets)),
                    Op::Expire => { t.expire(T0, 16, |_, _| {}); }
                }
                prop_assert_eq!(t.len(), m.len());
                for key in 0..400u16 {
                    let c = conn(key);
                    let want = m.get(&key).copied();
                    prop_assert_eq!(t.lookup_in(&in_key(&c), T0), want);
                    prop_assert_eq!(t.lookup_out(&out_key(&c), T0), want);
                }
            }
            // Finishing the migration keeps everything and retires the old heads.
            t.migrate(usize::MAX);
            prop_assert!(!t.migrating());
            for (key, id) in &m {
                prop_assert_eq!(t.lookup_in(&in_key(&conn(*key)), T0), Some(*id));
            }
        }
    }
}

/// Drive one connection to `states` by feeding segments through the normal table.
fn drive(
    t: &mut ConnTableV4,
    id: ConnId,
    steps: &[(Direction, FlagKind)],
    timeouts: &StateTimeouts,
    now: Instant,
) {
    for (dir, k) in steps {
        t.tcp_transition(id, *dir, k.flags(), timeouts, now);
    }
}

#[test]
fn drop_entry_removes_only_the_kinds_the_kernel_does() {
    let timeouts = StateTimeouts::default();
    let mut t = ConnTableV4::new(64, 21, TableFullPolicy::DropNew);
    let mut ids = HashMap::new();
    let mut add = |t: &mut ConnTableV4, name: &'static str, port: u16, proto: u8| {
        let mut c = tcp_conn(v4(10, 9, 0, 1), port, v4(10, 0, 0, 2), u32::from(port));
        c.protocol = proto;
        if proto == 17 {
            c.state = UDP_STATE;
            c.timeout = Duration::from_secs(300);
        }
        let id = t.insert(c, T0).unwrap().id;
        ids.insert(name, id);
        id
    };
    use Direction::{Input, Output};
    use FlagKind::{Ack, Fin, Syn};
    let sr = add(&mut t, "syn_recv", 1, 6);
    drive(&mut t, sr, &[(Input, Syn)], &timeouts, T0);
    let sa = add(&mut t, "synack", 2, 6);
    // Secure table: the real server's SYN-ACK moves SYN_RECV to SYNACK.
    let mut secure = timeouts;
    secure.set_secure(true);
    drive(&mut t, sa, &[(Input, Syn), (Output, Syn)], &secure, T0);
    let es_busy = add(&mut t, "established_fresh", 3, 6);
    drive(
        &mut t,
        es_busy,
        &[(Input, Syn), (Output, Syn), (Input, Ack)],
        &timeouts,
        T0,
    );
    let es_idle = add(&mut t, "established_idle_1pkt", 4, 6);
    drive(
        &mut t,
        es_idle,
        &[(Input, Syn), (Output, Syn), (Input, Ack)],
        &timeouts,
        T0,
    );
    t.set_sync_meta(
        es_idle,
        SyncMeta {
            in_pkts: 1,
            old_state: 0,
        },
    );
    let es_many = add(&mut t, "established_idle_9pkts", 5, 6);
    drive(
        &mut t,
        es_many,
        &[(Input, Syn), (Output, Syn), (Input, Ack)],
        &timeouts,
        T0,
    );
    t.set_sync_meta(
        es_many,
        SyncMeta {
            in_pkts: 9,
            old_state: 0,
        },
    );
    let fw = add(&mut t, "close_wait", 6, 6);
    drive(
        &mut t,
        fw,
        &[(Input, Syn), (Output, Syn), (Input, Ack), (Input, Fin)],
        &timeouts,
        T0,
    );
    let udp_idle = add(&mut t, "udp_idle_1pkt", 7, 17);
    t.set_sync_meta(
        udp_idle,
        SyncMeta {
            in_pkts: 1,
            old_state: 0,
        },
    );
    let udp_zero = add(&mut t, "udp_idle_0pkts", 8, 17);
    let _ = udp_zero;
    assert_eq!(t.get(sa).unwrap().state_name(), "SYNACK");
    assert_eq!(t.get(fw).unwrap().state_name(), "CLOSE_WAIT");

    // 61 s later nothing has expired that matters (ESTABLISHED 900 s, UDP 300 s; the
    // SYN_RECV's 60 s has passed but it is not swept). The idle rule is "touched 60 s ago".
    let later = T0 + Duration::from_secs(61);
    let fresh = later;
    t.touch_secs(es_busy, fresh, 900);
    t.set_sync_meta(
        es_busy,
        SyncMeta {
            in_pkts: 1,
            old_state: 0,
        },
    );
    let mut counters = [0i8; 8];
    let mut gone = Vec::new();
    // Every bucket once (the table has 64 buckets).
    let n = drop_every_bucket(&mut t, later, &mut counters, |c| gone.push(c.cport));
    gone.sort();
    // SYN_RECV and SYNACK always; idle ESTABLISHED/UDP with 1 input packet (one in one);
    // not: fresh ESTABLISHED, 9 packets, 0 packets, CLOSE_WAIT.
    assert_eq!(gone, vec![1, 2, 4, 7]);
    assert_eq!(n, 4);
    for name in [
        "established_fresh",
        "established_idle_9pkts",
        "close_wait",
        "udp_idle_0pkts",
    ] {
        assert!(t.get(ids[name]).is_some(), "{name} kept");
    }
}

/// `random_drop` over every bucket once, in order (a counter instead of the random
/// start), handing each removed entry to `on`.
fn drop_every_bucket(
    t: &mut ConnTableV4,
    now: Instant,
    counters: &mut [i8; 8],
    mut on: impl FnMut(&Conn<[u8; 4]>),
) -> usize {
    let mut b = 0u64;
    let buckets = t.buckets();
    t.random_drop(
        now,
        buckets,
        || {
            b += 1;
            b - 1
        },
        counters,
        |_, c| on(c),
    )
}

#[test]
fn drop_entry_drops_one_in_n_of_entries_with_n_packets() {
    let timeouts = StateTimeouts::default();
    let mut t = ConnTableV4::new(256, 22, TableFullPolicy::DropNew);
    for p in 0..60u16 {
        let id = t
            .insert(tcp_conn(v4(10, 9, 1, 1), p, v4(10, 0, 0, 2), 1), T0)
            .unwrap()
            .id;
        drive(
            &mut t,
            id,
            &[
                (Direction::Input, FlagKind::Syn),
                (Direction::Output, FlagKind::Syn),
                (Direction::Input, FlagKind::Ack),
            ],
            &timeouts,
            T0,
        );
        t.set_sync_meta(
            id,
            SyncMeta {
                in_pkts: 3,
                old_state: 0,
            },
        );
    }
    let later = T0 + Duration::from_secs(70);
    let mut counters = [0i8; 8];
    let n = drop_every_bucket(&mut t, later, &mut counters, |_| {});
    assert_eq!(n, 20, "one in three");
}

#[test]
fn secure_tcp_shortens_syn_recv_and_a_flood_entry_is_swept_in_ten_seconds() {
    let mut secure = StateTimeouts::default();
    secure.set_secure(true);
    assert_eq!(secure.tcp_secs(TcpState::SynRecv), 10);
    assert_eq!(secure.tcp_secs(TcpState::SynAck), 100);
    assert_eq!(secure.tcp_secs(TcpState::Established), 900, "kept");
    assert_eq!(StateTimeouts::default().tcp_secs(TcpState::SynRecv), 60);
    let mut t = table(8);
    let id = t
        .insert(tcp_conn(v4(6, 6, 6, 6), 1, v4(10, 0, 0, 2), 1), T0)
        .unwrap()
        .id;
    t.tcp_transition(id, Direction::Input, FlagKind::Syn.flags(), &secure, T0);
    assert_eq!(t.get(id).unwrap().state_name(), "SYN_RECV");
    let mut gone = 0;
    t.expire(T0 + Duration::from_secs(11), 64, |_, _| gone += 1);
    assert_eq!(gone, 1);
}

/// A table whose limit was below one chunk when it was built holds a short chunk; a reload
/// that raises the limit (`set_limits`) must let it grow: the short chunk is replaced by a
/// full one (entries kept at their indices, both keys still finding them), then growth
/// goes on chunk by chunk. Also for a short *last* chunk after full ones, and for a raised
/// byte limit.
#[test]
fn a_raised_limit_grows_a_table_below_one_chunk() {
    let entry = size_of::<Entry<[u8; 4]>>();
    let mut t = ConnTableV4::growable(1000, usize::MAX, 0, 13, TableFullPolicy::DropNew);
    assert_eq!(t.capacity(), 1000);
    for i in 0..1000 {
        t.insert(distinct(i), T0).unwrap();
    }
    assert_eq!(t.insert(distinct(5000), T0), Err(TableFull));
    assert_eq!(t.need(), None, "at its limit");
    t.set_limits(3 * CHUNK_ENTRIES, usize::MAX);
    let need = t.need();
    assert_eq!(need, Some(Need::Chunk(CHUNK_ENTRIES)));
    let back = t
        .provide(Provision::build(need.unwrap()))
        .expect("the short chunk back");
    assert_eq!(back.bytes(), 1000 * entry);
    assert_eq!(t.capacity(), CHUNK_ENTRIES);
    for i in 0..1000 {
        let c = distinct(i);
        let id = t.lookup_in(&in_key(&c), T0).unwrap();
        assert_eq!(t.lookup_out(&out_key(&c), T0), Some(id));
        assert_eq!(t.get(id).unwrap().dest, i);
    }
    for i in 1000..(3 * CHUNK_ENTRIES as u32 + 10) {
        let _ = t.insert(distinct(i), T0);
        provision(&mut t);
    }
    assert_eq!(
        (t.len(), t.capacity()),
        (3 * CHUNK_ENTRIES, 3 * CHUNK_ENTRIES)
    );

    // A short last chunk after a full one.
    let mut t = ConnTableV4::growable(
        CHUNK_ENTRIES + 7,
        usize::MAX,
        0,
        17,
        TableFullPolicy::DropNew,
    );
    for i in 0..(CHUNK_ENTRIES as u32 + 7) {
        t.insert(distinct(i), T0).unwrap();
        provision(&mut t);
    }
    assert_eq!(t.capacity(), CHUNK_ENTRIES + 7);
    t.set_limits(2 * CHUNK_ENTRIES + 1, usize::MAX);
    assert_eq!(t.need(), Some(Need::Chunk(CHUNK_ENTRIES)));
    provision(&mut t);
    assert_eq!(t.capacity(), 2 * CHUNK_ENTRIES);
    for i in (CHUNK_ENTRIES as u32 + 7)..(2 * CHUNK_ENTRIES as u32 + 5) {
        let _ = t.insert(distinct(i), T0);
        provision(&mut t);
    }
    assert_eq!(
        (t.len(), t.capacity()),
        (2 * CHUNK_ENTRIES + 1, 2 * CHUNK_ENTRIES + 1)
    );
    for i in 0..(CHUNK_ENTRIES as u32 + 7) {
        assert!(t.lookup_in(&in_key(&distinct(i)), T0).is_some(), "{i}");
    }

    // The byte limit: built under a limit allowing 500 entries, raised to 4 MiB.
    let small = fixed_bytes::<[u8; 4]>() + 500 * (entry + 16);
    let mut t = ConnTableV4::growable(usize::MAX, small, 0, 19, TableFullPolicy::DropNew);
    assert_eq!(t.capacity(), 500);
    for i in 0..500 {
        t.insert(distinct(i), T0).unwrap();
    }
    t.set_limits(usize::MAX, 4 << 20);
    for i in 500..20_000 {
        provision(&mut t);
        t.insert(distinct(i), T0).unwrap();
        assert!(t.memory_bytes() <= 4 << 20);
    }
    assert_eq!(t.len(), 20_000);
}

/// The IPv6 binding arena (`table/bind.rs`) under random inserts (NAT, FullNAT and
/// templates, over a few virtual addresses, real servers and local addresses), removals,
/// expiry, evictions and real-server flushes, on a small growing table fed every need: each
/// binding's count is the number of entries holding it, counts return to zero when every
/// entry is gone, a flushed real server leaves no binding behind, and the table's memory is
/// the sum of its parts, the arena included.
mod arena {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            client: u16,
            v: u8,
            d: u8,
            l: u8,
            kind: u8,
            timeout_s: u8,
        },
        Remove {
            pick: u16,
        },
        Advance {
            s: u8,
        },
        Expire {
            budget: u8,
        },
        Flush {
            d: u8,
        },
        Provide,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u16>(), 0u8..12, 0u8..6, 0u8..3, 0u8..4, 1u8..20).prop_map(
                |(client, v, d, l, kind, timeout_s)| Op::Insert { client, v, d, l, kind, timeout_s }),
            2 => any::<u16>().prop_map(|pick| Op::Remove { pick }),
            2 => (0u8..10).prop_map(|s| Op::Advance { s }),
            2 => any::<u8>().prop_map(|budget| Op::Expire { budget }),
            1 => (0u8..6).prop_map(|d| Op::Flush { d }),
            2 => Just(Op::Provide),
        ]
    }

    fn addr(prefix: u8, n: u32) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = prefix;
        a[12..].copy_from_slice(&n.to_be_bytes());
        a
    }

    /// Every binding's count equals the entries holding it, and the table's memory is the
    /// sum of its parts.
    fn check(t: &ConnTableV6) -> Result<(), TestCaseError> {
        let mut held: HashMap<Binding<[u8; 16]>, u32> = HashMap::new();
        for (_, e) in t.slab.iter().filter(|(_, e)| e.occupied()) {
            *held.entry(*t.binds.get(e.bind)).or_default() += 1;
            let c = e.snapshot(&t.binds);
            // The entry reads back its own binding.
            prop_assert_eq!(t.binds.get(e.bind).dest, c.dest);
        }
        let refs: HashMap<_, _> = t.binds.refs().map(|(_, b, n)| (b, n)).collect();
        prop_assert_eq!(&refs, &held);
        prop_assert_eq!(t.bindings(), held.len());
        let parts = fixed_bytes::<[u8; 16]>()
            + t.capacity() * size_of::<Entry<[u8; 16]>>()
            + t.in_idx.bytes()
            + t.out_idx.bytes()
            + t.binds.bytes();
        prop_assert_eq!(t.memory_bytes(), parts);
        prop_assert!(t.memory_bytes() <= t.limit_bytes());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn binding_counts_follow_the_entries(ops in proptest::collection::vec(op(), 1..300)) {
            // Small limits: the arena (128 slots to start) must grow to hold up to
            // 12 x 6 x 3 x 2 bindings, and the entry limit makes inserts evict.
            let limit = fixed_bytes::<[u8; 16]>() + 600 * 120;
            let mut t = ConnTableV6::growable(500, limit, 0, 3, TableFullPolicy::EvictEmbryonic);
            let mut now = T0;
            for op in ops {
                match op {
                    Op::Insert { client, v, d, l, kind, timeout_s } => {
                        let template = kind == 3;
                        let c = NewConn {
                            protocol: if template { 0 } else { 6 },
                            caddr: addr(1, u32::from(client)),
                            cport: if template { 0 } else { client },
                            vaddr: addr(2, u32::from(v)),
                            vport: 80,
                            daddr: addr(3, u32::from(d)),
                            dport: 8080,
                            local: (kind == 1).then_some((addr(4, u32::from(l)), client)),
                            dest: u32::from(d),
                            service: u32::from(v % 2),
                            state: TcpState::None as u8,
                            flags: if template {
                                ConnFlags(ConnFlags::TEMPLATE)
                            } else {
                                ConnFlags::new_connection(&ForwardMethod::Masq)
                            },
                            timeout: Duration::from_secs(u64::from(timeout_s)),
                            control: None,
                        };
                        let k = InKey { protocol: c.protocol, caddr: c.caddr, cport: c.cport, vaddr: c.vaddr, vport: c.vport };
                        if t.lookup_in(&k, now).is_some() || t.lookup_template(&k, now).is_some() {
                            continue;
                        }
                        if let Ok(ins) = t.insert(c, now) {
                            let got = t.get(ins.id).unwrap();
                            prop_assert_eq!((got.vaddr, got.daddr, got.dest, got.service), (c.vaddr, c.daddr, c.dest, c.service));
                            prop_assert_eq!(got.local, c.local);
                            prop_assert_eq!(t.lookup_out(&OutKey {
                                protocol: c.protocol, saddr: c.daddr, sport: c.dport,
                                daddr: c.local.map_or(c.caddr, |l| l.0), dport: c.local.map_or(c.cport, |l| l.1),
                            }, now).is_some(), !template);
                        }
                    }
                    Op::Remove { pick } => {
                        let ids: Vec<_> = t.iter().map(|(id, _)| id).collect();
                        if !ids.is_empty() {
                            t.remove(ids[usize::from(pick) % ids.len()]);
                        }
                    }
                    Op::Advance { s } => now = now + Duration::from_secs(u64::from(s)),
                    Op::Expire { budget } => {
                        t.expire(now, usize::from(budget), |_, _| {});
                    }
                    Op::Flush { d } => {
                        // A reload that removes real server `d`: its entries go, and so do
                        // its bindings.
                        t.remove_dest(u32::from(d), |_, _| {});
                        prop_assert!(t.binds.refs().all(|(_, b, _)| b.dest != u32::from(d)));
                    }
                    Op::Provide => {
                        if let Some(need) = t.need() {
                            drop(t.provide(Provision::build(need)));
                        }
                        drop(t.take_retired());
                    }
                }
                check(&t)?;
            }
            // Everything removed: every count is back to zero, every slot free.
            let ids: Vec<_> = t.iter().map(|(id, _)| id).collect();
            for id in ids {
                t.remove(id);
                check(&t)?;
            }
            prop_assert_eq!(t.len(), 0);
            prop_assert_eq!(t.bindings(), 0);
            prop_assert_eq!(t.binds.refs().count(), 0);
        }
    }

    /// A grown arena keeps every binding at its index: entries inserted before the growth
    /// are found by both keys after it, and the arena asks for no more than the entry
    /// limit allows.
    #[test]
    fn growth_keeps_bindings_in_place() {
        let mut t = ConnTableV6::growable(2000, usize::MAX, 0, 5, TableFullPolicy::DropNew);
        assert_eq!(t.binds.capacity(), FIRST_BINDINGS);
        let mut grown = 0;
        for i in 0..1500u32 {
            // A binding per entry (a firewall-mark service over a prefix of VIPs).
            let mut c = v6_conn(i, i % 16);
            c.vaddr = addr(2, i);
            t.insert(c, T0).unwrap();
            if let Some(need @ Need::Bindings(n)) = t.need() {
                let before = t.binds.capacity();
                let back = t
                    .provide(Provision::build(need))
                    .expect("the old arena handed back");
                assert_eq!(back.bytes(), Bindings::<[u8; 16]>::bytes_for(before));
                assert_eq!(t.binds.capacity(), n);
                grown += 1;
            }
        }
        assert!(grown >= 4, "grew {grown} times");
        assert_eq!(t.bindings(), 1500);
        assert!(t.binds.capacity() <= 2001);
        for i in 0..1500u32 {
            let mut c = v6_conn(i, i % 16);
            c.vaddr = addr(2, i);
            let k = InKey {
                protocol: 6,
                caddr: c.caddr,
                cport: c.cport,
                vaddr: c.vaddr,
                vport: 80,
            };
            let id = t.lookup_in(&k, T0).expect("in");
            assert_eq!(t.get(id).unwrap().daddr, c.daddr);
            let o = OutKey {
                protocol: 6,
                saddr: c.daddr,
                sport: 8080,
                daddr: c.caddr,
                dport: c.cport,
            };
            assert_eq!(t.lookup_out(&o, T0), Some(id));
        }
    }

    /// A full arena refuses a new binding as a full table does, with nothing changed; a
    /// known binding is still taken.
    #[test]
    fn a_full_arena_refuses_new_bindings_only() {
        let mut t = ConnTableV6::growable(10_000, usize::MAX, 0, 5, TableFullPolicy::DropNew);
        for i in 0..FIRST_BINDINGS as u32 {
            let mut c = v6_conn(i, 0);
            c.vaddr = addr(2, i);
            t.insert(c, T0).unwrap();
        }
        let (len, mem) = (t.len(), t.memory_bytes());
        let mut c = v6_conn(9999, 0);
        c.vaddr = addr(2, 9999);
        assert_eq!(t.insert(c, T0), Err(TableFull));
        assert_eq!(
            (t.len(), t.memory_bytes(), t.bindings()),
            (len, mem, FIRST_BINDINGS)
        );
        let mut c = v6_conn(9999, 0);
        c.vaddr = addr(2, 7);
        assert!(t.insert(c, T0).is_ok());
        assert_eq!(t.bindings(), FIRST_BINDINGS);
    }
}
