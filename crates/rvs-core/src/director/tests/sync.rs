//! Connection synchronisation through the engine: the master's rules (which packets queue
//! a record), the backup's import, and failover — a connection exported by one director,
//! packed and parsed with the sync codec, imported into a second, whose packet path then
//! carries the connection's next packets to the same real server with the same mapping.

use super::*;
use crate::conn::table::SyncMeta;
use crate::director::sync::{SyncCounters, SyncRecord, SyncRefused, SyncSettings};
use crate::sync::{DEFAULT_MAX_LEN, SyncConn, SyncMessage, flags, pack};

fn master(services: Vec<VirtualServiceConfig>) -> Director {
    let mut d = director(services);
    d.set_sync(Some(SyncSettings::default())).unwrap();
    d
}

fn drain(d: &mut Director) -> Vec<SyncRecord> {
    std::iter::from_fn(|| d.poll_sync()).collect()
}

/// Send what `from` queued to `to` through the real codec (pack, parse), importing every
/// record; returns the records.
fn ship(from: &mut Director, to: &mut Director, now: Instant) -> Vec<SyncRecord> {
    let recs = drain(from);
    let conns: Vec<SyncConn<'_>> = recs.iter().map(SyncRecord::to_conn).collect();
    let syncid = from.sync_settings().map_or(0, |s| s.syncid);
    for m in pack(&conns, syncid, DEFAULT_MAX_LEN).unwrap() {
        let msg = SyncMessage::parse(&m).unwrap();
        assert!(msg.accepted_by(0));
        for c in msg.conns() {
            let c = c.unwrap();
            to.sync_import(now, &c)
                .unwrap_or_else(|e| panic!("{c:?} refused: {e}"));
        }
    }
    recs
}

/// A client's SYN, ACK and one data segment: the third input packet of an ESTABLISHED
/// connection, which the default settings sync. Returns the IP destination of the
/// forwarded SYN: the real server for NAT, FullNAT and tunnels (the outer header), the
/// VIP for direct routing.
fn open_tcp(
    d: &mut Director,
    now: Instant,
    client: &str,
    cport: u16,
    vip: &str,
    vport: u16,
) -> IpAddr {
    let syn = tcp_frame(client, cport, vip, vport, Seg::Syn, b"");
    let (v, out) = run(d, now, PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV), "SYN forwarded");
    let rs = inspect_dst(&out);
    for payload in [&b""[..], b"GET / HTTP/1.0\r\n\r\n"] {
        let seg = tcp_frame(client, cport, vip, vport, Seg::Ack, payload);
        assert_eq!(run(d, now, PUB, &seg).0, Verdict::Transmit(PRIV));
    }
    rs
}

/// The IP destination of a frame (the outer one for tunnels).
fn inspect_dst(frame: &[u8]) -> IpAddr {
    match frame[12..14] {
        [0x08, 0x00] => IpAddr::V4(Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33])),
        _ => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&frame[38..54]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

fn data(client: &str, cport: u16, vip: &str, vport: u16) -> Vec<u8> {
    tcp_frame(client, cport, vip, vport, Seg::Ack, b"more")
}

fn dest_counts(d: &Director, rs: IpAddr) -> (u32, u32, u32) {
    d.services()
        .iter()
        .flat_map(|(_, s)| s.dests.iter())
        .filter(|x| x.addr == rs)
        .fold((0, 0, 0), |a, x| {
            (
                a.0 + x.active_conns,
                a.1 + x.inact_conns,
                a.2 + x.persist_conns,
            )
        })
}

fn other(rs: IpAddr, a: &str, b: &str) -> IpAddr {
    if rs == ip(a) { ip(b) } else { ip(a) }
}

// ---- the master's rules ----

#[test]
fn tcp_is_synced_at_the_threshold_then_every_period() {
    let mut d = master(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let mut synced_at = Vec::new();
    // SYN (1), ACK (2), data (3), then data up to packet 120 (the fast path's).
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    run(&mut d, t(1), PUB, &syn);
    for n in 2..=120u32 {
        let seg = data("10.1.0.10", 40000, "10.1.0.100", 80);
        assert_eq!(run(&mut d, t(1), PUB, &seg).0, Verdict::Transmit(PRIV));
        for r in drain(&mut d) {
            synced_at.push((n, r));
        }
    }
    let at: Vec<u32> = synced_at.iter().map(|(n, _)| *n).collect();
    assert_eq!(at, [3, 53, 103]);
    let r = synced_at[0].1;
    assert_eq!(r.state, TcpState::Established as u16);
    assert_eq!(r.timeout, 900);
    assert_eq!(r.flags, flags::MASQ, "active, NAT");
    assert_eq!(
        (r.caddr, r.cport, r.vaddr, r.vport, r.daddr, r.dport),
        (
            ip("10.1.0.10"),
            40000,
            ip("10.1.0.100"),
            80,
            ip("10.2.0.11"),
            80
        )
    );
    assert_eq!((r.fwmark, r.local, r.seq), (0, None, None));
    assert_eq!(d.sync_counters().queued, 3);
}

#[test]
fn entering_established_waits_for_the_packet_rule_and_closing_syncs_at_once() {
    let mut d = master(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    // ESTABLISHED at packet 2 is not synced (ip_vs_sync_conn_needed() syncs ESTABLISHED
    // by the packet count only), packet 3 is.
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    run(&mut d, t(1), PUB, &syn);
    assert!(drain(&mut d).is_empty(), "SYN_RECV is never synced");
    run(
        &mut d,
        t(1),
        PUB,
        &data("10.1.0.10", 40000, "10.1.0.100", 80),
    );
    assert!(drain(&mut d).is_empty());
    run(
        &mut d,
        t(1),
        PUB,
        &data("10.1.0.10", 40000, "10.1.0.100", 80),
    );
    assert_eq!(drain(&mut d).len(), 1);
    // The client's FIN moves it to CLOSE_WAIT: synced at once (packet 4).
    let fin = with_tcp_flags(data("10.1.0.10", 40000, "10.1.0.100", 80), 0x11);
    run(&mut d, t(2), PUB, &fin);
    let r = drain(&mut d);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].state, TcpState::CloseWait as u16);
    assert_eq!(r[0].timeout, 60);
    assert_eq!(r[0].flags, flags::MASQ | flags::INACTIVE);
    // Staying in CLOSE_WAIT is not a change.
    run(
        &mut d,
        t(2),
        PUB,
        &data("10.1.0.10", 40000, "10.1.0.100", 80),
    );
    assert!(drain(&mut d).is_empty());
    // The reply direction never syncs (ip_vs_out()), whatever the state change.
    let fin_back = with_tcp_flags(
        tcp_frame("10.2.0.11", 80, "10.1.0.10", 40000, Seg::Ack, b""),
        0x11,
    );
    assert_eq!(run(&mut d, t(2), PRIV, &fin_back).0, Verdict::Transmit(PUB));
    assert!(drain(&mut d).is_empty());
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.state_name(), "TIME_WAIT");
    // The client's next packet finds the state changed since the last sync: synced then.
    run(
        &mut d,
        t(2),
        PUB,
        &data("10.1.0.10", 40000, "10.1.0.100", 80),
    );
    let r = drain(&mut d);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].state, r[0].timeout), (TcpState::TimeWait as u16, 120));
    run(
        &mut d,
        t(2),
        PUB,
        &data("10.1.0.10", 40000, "10.1.0.100", 80),
    );
    assert!(drain(&mut d).is_empty());
}

#[test]
fn udp_is_synced_at_the_threshold_and_every_period() {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("10.1.0.100"),
        port: 53,
    });
    let mut r = RealServerConfig::new(ip("10.2.0.13"), 53);
    r.method = ForwardMethod::Masq;
    svc.real_servers.push(r);
    let mut d = master(vec![svc]);
    let mut at = Vec::new();
    for n in 1..=60u32 {
        let q = udp_frame("10.1.0.10", 5353, "10.1.0.100", 53, b"q");
        assert_eq!(run(&mut d, t(1), PUB, &q).0, Verdict::Transmit(PRIV));
        for r in drain(&mut d) {
            assert_eq!((r.protocol, r.state, r.timeout), (17, 0, 300));
            at.push(n);
        }
    }
    assert_eq!(at, [3, 53]);
}

#[test]
fn period_zero_syncs_once_at_the_threshold() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    d.set_sync(Some(SyncSettings {
        threshold: 2,
        period: 0,
        ..SyncSettings::default()
    }))
    .unwrap();
    run(
        &mut d,
        t(1),
        PUB,
        &tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b""),
    );
    let mut at = Vec::new();
    for n in 2..=200u32 {
        run(
            &mut d,
            t(1),
            PUB,
            &data("10.1.0.10", 40000, "10.1.0.100", 80),
        );
        at.extend(drain(&mut d).iter().map(|_| n));
    }
    assert_eq!(at, [2]);
}

fn persistent(method: ForwardMethod, rs: &[&str]) -> VirtualServiceConfig {
    let mut svc = tcp_svc("10.1.0.100", 80, method, rs);
    svc.persistence = Some(Persistence {
        timeout: 360,
        prefix: 24,
    });
    svc
}

#[test]
fn the_template_goes_with_its_connection() {
    let mut d = master(vec![persistent(ForwardMethod::Masq, &["10.2.0.11"])]);
    let mut seen = Vec::new();
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    run(&mut d, t(1), PUB, &syn);
    seen.push(drain(&mut d));
    for _ in 0..3 {
        run(
            &mut d,
            t(1),
            PUB,
            &data("10.1.0.10", 40000, "10.1.0.100", 80),
        );
        seen.push(drain(&mut d));
    }
    let kinds: Vec<Vec<bool>> = seen
        .iter()
        .map(|rs| rs.iter().map(|r| r.flags & flags::TEMPLATE != 0).collect())
        .collect();
    // With a sync period, a template skips the packet rule: it is synced with every packet
    // of a connection it controls, after the connection when that is synced (packet 3).
    assert_eq!(
        kinds,
        [vec![true], vec![true], vec![false, true], vec![true]]
    );
    let tpl = seen[2][1];
    assert_eq!(
        (tpl.protocol, tpl.caddr, tpl.cport, tpl.vaddr, tpl.vport),
        (6, ip("10.1.0.0"), 0, ip("10.1.0.100"), 80)
    );
    assert_eq!(
        (tpl.daddr, tpl.dport, tpl.timeout, tpl.state),
        (ip("10.2.0.11"), 80, 360, 0)
    );
    assert_eq!(tpl.flags, flags::TEMPLATE | flags::MASQ | flags::INACTIVE);
}

#[test]
fn one_packet_connections_are_not_synced_but_their_template_is() {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip("10.1.0.100"),
        port: 53,
    });
    svc.one_packet = true;
    let mut r = RealServerConfig::new(ip("10.2.0.13"), 53);
    r.method = ForwardMethod::Masq;
    svc.real_servers.push(r);
    let mut d = master(vec![svc.clone()]);
    for _ in 0..60 {
        let q = udp_frame("10.1.0.10", 5353, "10.1.0.100", 53, b"q");
        assert_eq!(run(&mut d, t(1), PUB, &q).0, Verdict::Transmit(PRIV));
    }
    assert!(drain(&mut d).is_empty());
    svc.persistence = Some(Persistence {
        timeout: 60,
        prefix: 32,
    });
    let mut d = master(vec![svc]);
    for _ in 0..3 {
        let q = udp_frame("10.1.0.10", 5353, "10.1.0.100", 53, b"q");
        run(&mut d, t(1), PUB, &q);
    }
    let recs = drain(&mut d);
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.flags & flags::TEMPLATE != 0));
}

#[test]
fn with_sync_off_nothing_is_queued_or_counted() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    open_tcp(&mut d, t(1), "10.1.0.10", 40000, "10.1.0.100", 80);
    for _ in 0..60 {
        run(
            &mut d,
            t(1),
            PUB,
            &data("10.1.0.10", 40000, "10.1.0.100", 80),
        );
    }
    assert_eq!(d.poll_sync(), None);
    assert_eq!(d.sync_pending(), 0);
    assert_eq!(*d.sync_counters(), SyncCounters::default());
    let (id, _) = d.table_v4().iter().next().unwrap();
    assert_eq!(d.table_v4().sync_meta(id).unwrap().in_pkts, 0);
    // Turned on, it counts from there; turned off, the queue goes.
    d.set_sync(Some(SyncSettings::default())).unwrap();
    for _ in 0..3 {
        run(
            &mut d,
            t(1),
            PUB,
            &data("10.1.0.10", 40000, "10.1.0.100", 80),
        );
    }
    assert_eq!(d.sync_pending(), 1);
    d.set_sync(None).unwrap();
    assert_eq!(d.poll_sync(), None);
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_it() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    d.set_sync(Some(SyncSettings {
        queue_len: 2,
        ..SyncSettings::default()
    }))
    .unwrap();
    for cport in [40001, 40002, 40003] {
        open_tcp(&mut d, t(1), "10.1.0.10", cport, "10.1.0.100", 80);
    }
    let c = d.sync_counters();
    assert_eq!((c.queued, c.dropped), (3, 1));
    let ports: Vec<u16> = drain(&mut d).iter().map(|r| r.cport).collect();
    assert_eq!(ports, [40002, 40003]);
    // Shrinking the queue drops the oldest too.
    for cport in [40004, 40005] {
        open_tcp(&mut d, t(1), "10.1.0.10", cport, "10.1.0.100", 80);
    }
    d.set_sync(Some(SyncSettings {
        queue_len: 1,
        ..SyncSettings::default()
    }))
    .unwrap();
    assert_eq!(d.sync_counters().dropped, 2);
    assert_eq!(d.poll_sync().map(|r| r.cport), Some(40005));
}

#[test]
fn settings_are_checked_as_the_sysctl_checks_them() {
    let mut d = director(vec![]);
    let bad = SyncSettings {
        threshold: 50,
        period: 50,
        ..SyncSettings::default()
    };
    assert_eq!(
        d.set_sync(Some(bad)),
        Err(SyncSettingsError::ThresholdNotBelowPeriod)
    );
    let zero = SyncSettings {
        queue_len: 0,
        ..SyncSettings::default()
    };
    assert_eq!(d.set_sync(Some(zero)), Err(SyncSettingsError::EmptyQueue));
    assert_eq!(d.sync_settings(), None);
    let ok = SyncSettings {
        threshold: 80,
        period: 0,
        syncid: 9,
        ..SyncSettings::default()
    };
    d.set_sync(Some(ok)).unwrap();
    assert_eq!(d.sync_settings(), Some(&ok));
}

// ---- the backup's import ----

fn record(
    caddr: &str,
    cport: u16,
    vaddr: &str,
    vport: u16,
    daddr: &str,
    dport: u16,
) -> SyncConn<'static> {
    SyncConn {
        protocol: 6,
        flags: flags::MASQ,
        state: TcpState::Established as u16,
        cport,
        vport,
        dport,
        fwmark: 0,
        timeout: 900,
        caddr: ip(caddr),
        vaddr: ip(vaddr),
        daddr: ip(daddr),
        seq: None,
        pe_data: None,
        pe_name: None,
        local: None,
    }
}

#[test]
fn import_creates_an_entry_then_updates_it() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
    )]);
    let r = record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.12", 80);
    d.sync_import(t(10), &r).unwrap();
    let (id, c) = d.table_v4().iter().next().unwrap();
    assert!(c.flags.has(ConnFlags::SYNC));
    assert!(!c.flags.has(ConnFlags::INACTIVE));
    assert_eq!(c.state_name(), "ESTABLISHED");
    assert_eq!(c.remaining_secs(t(10)), 900);
    assert_eq!(
        d.table_v4().sync_meta(id),
        Some(SyncMeta {
            in_pkts: 3,
            old_state: TcpState::Established as u8
        })
    );
    assert_eq!(dest_counts(&d, ip("10.2.0.12")), (1, 0, 0));
    assert_eq!(dest_counts(&d, ip("10.2.0.11")), (0, 0, 0));
    // Synced entries are not counted as the service's connections (no scheduling here).
    assert_eq!(d.services().iter().next().unwrap().1.stats.conns, 0);
    // The closing record: inactive, FIN_WAIT, its own timeout.
    let mut fin = r;
    fin.flags |= flags::INACTIVE;
    fin.state = TcpState::FinWait as u16;
    fin.timeout = 120;
    d.sync_import(t(20), &fin).unwrap();
    assert_eq!(d.table_v4().len(), 1);
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.state_name(), "FIN_WAIT");
    assert!(c.flags.has(ConnFlags::INACTIVE));
    assert_eq!(c.remaining_secs(t(20)), 120);
    assert_eq!(dest_counts(&d, ip("10.2.0.12")), (0, 1, 0));
    // Back to active (a record can say so), and the default timeout of a record without
    // one (version 0): the state's.
    let mut again = r;
    again.timeout = 0;
    d.sync_import(t(30), &again).unwrap();
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.remaining_secs(t(30)), 900);
    assert_eq!(dest_counts(&d, ip("10.2.0.12")), (1, 0, 0));
    let s = d.sync_counters();
    assert_eq!((s.created, s.updated), (1, 2));
    // It expires as any entry does, unbinding its real server.
    d.expire(t(30 + 901));
    assert!(d.table_v4().is_empty());
    assert_eq!(dest_counts(&d, ip("10.2.0.12")), (0, 0, 0));
}

#[test]
fn refused_records_are_counted_by_reason() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11"],
    )]);
    let good = record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.11", 80);
    let cases: Vec<(SyncConn<'static>, SyncRefused)> = vec![
        (
            record("10.1.0.10", 40000, "10.1.0.101", 80, "10.2.0.11", 80),
            SyncRefused::NoService,
        ),
        (
            record("10.1.0.10", 40000, "10.1.0.100", 81, "10.2.0.11", 80),
            SyncRefused::NoService,
        ),
        (
            record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.12", 80),
            SyncRefused::NoRealServer,
        ),
        (
            record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.11", 8080),
            SyncRefused::NoRealServer,
        ),
        (
            SyncConn {
                protocol: 47,
                ..good
            },
            SyncRefused::UnsupportedProtocol,
        ),
        (
            SyncConn {
                protocol: 132,
                state: 14,
                ..good
            },
            SyncRefused::InvalidState,
        ),
        (SyncConn { state: 11, ..good }, SyncRefused::InvalidState),
        (
            SyncConn {
                protocol: 17,
                state: 1,
                ..good
            },
            SyncRefused::InvalidState,
        ),
        (
            SyncConn {
                flags: flags::TEMPLATE,
                state: 2,
                ..good
            },
            SyncRefused::InvalidState,
        ),
        (
            SyncConn {
                pe_data: Some(b"call-id"),
                pe_name: Some(b"sip"),
                ..good
            },
            SyncRefused::PersistenceEngine,
        ),
        (
            SyncConn {
                flags: flags::MASQ | flags::NO_CPORT,
                cport: 0,
                ..good
            },
            SyncRefused::NoClientPort,
        ),
        (
            SyncConn {
                daddr: ip("fd00::11"),
                ..good
            },
            SyncRefused::MixedFamilies,
        ),
    ];
    for (r, why) in &cases {
        assert_eq!(d.sync_import(t(1), r), Err(*why), "{r:?}");
    }
    assert!(d.table_v4().is_empty());
    let refused = d.sync_counters().refused;
    for why in SyncRefused::ALL {
        let n = cases.iter().filter(|(_, w)| *w == why).count() as u64;
        assert_eq!(refused[why.index()], n, "{why}");
    }
    // A service of the address on port 0 takes what no exact service does.
    let mut all = tcp_svc("10.1.0.101", 0, ForwardMethod::Masq, &["10.2.0.11"]);
    all.persistence = Some(Persistence {
        timeout: 60,
        prefix: 32,
    });
    all.real_servers[0].port = 0;
    let mut d = director(vec![all]);
    let r = record("10.1.0.10", 40000, "10.1.0.101", 8443, "10.2.0.11", 8443);
    d.sync_import(t(1), &r).unwrap();
    assert_eq!(dest_counts(&d, ip("10.2.0.11")), (1, 0, 0));
}

#[test]
fn an_inactive_record_of_a_replaced_connection_is_ignored_an_active_one_replaces() {
    let mut d = director(vec![tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
    )]);
    let on_11 = record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.11", 80);
    d.sync_import(t(1), &on_11).unwrap();
    let mut old_on_12 = record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.12", 80);
    old_on_12.flags |= flags::INACTIVE;
    old_on_12.state = TcpState::TimeWait as u16;
    assert_eq!(
        d.sync_import(t(2), &old_on_12),
        Err(SyncRefused::Superseded)
    );
    assert_eq!(dest_counts(&d, ip("10.2.0.11")), (1, 0, 0));
    let on_12 = record("10.1.0.10", 40000, "10.1.0.100", 80, "10.2.0.12", 80);
    d.sync_import(t(3), &on_12).unwrap();
    assert_eq!(d.table_v4().iter().count(), 1);
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.daddr, [10, 2, 0, 12]);
    assert_eq!(dest_counts(&d, ip("10.2.0.11")), (0, 0, 0));
    assert_eq!(dest_counts(&d, ip("10.2.0.12")), (1, 0, 0));
}

// ---- failover: export from one director, import into another ----

/// The NAT round trip of a connection the backup learned from the master.
fn nat_failover(vip: &str, clients: [&str; 2], rs: [&str; 2]) {
    let svc = tcp_svc(vip, 80, ForwardMethod::Masq, &rs);
    let mut m = master(vec![svc.clone()]);
    let mut b = director(vec![svc]);
    for c in clients {
        m.learn_neighbor(ip(c), CLIENT_MAC, t(0));
        b.learn_neighbor(ip(c), CLIENT_MAC, t(0));
    }
    // Another client first, so that ours is not on the server a fresh scheduler picks.
    let first = open_tcp(&mut m, t(1), clients[1], 1000, vip, 80);
    let mine = open_tcp(&mut m, t(1), clients[0], 40000, vip, 80);
    assert_ne!(first, mine);
    // The real server answers through the master.
    let reply = tcp_frame(&mine.to_string(), 80, clients[0], 40000, Seg::Ack, b"200");
    assert_eq!(run(&mut m, t(1), PRIV, &reply).0, Verdict::Transmit(PUB));
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(
        recs.len(),
        2,
        "both connections, synced at their third packet"
    );
    assert_eq!(b.sync_counters().created, 2);

    // Takeover: the client's next packet reaches the same real server, NAT'ed.
    let (v, out) = run(&mut b, t(3), PUB, &data(clients[0], 40000, vip, 80));
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip(clients[0]), 40000));
    assert_eq!((seen.dst, seen.dport), (mine, 80));
    // Its reply goes back to the client from the VIP.
    let (v, out) = run(&mut b, t(3), PRIV, &reply);
    assert_eq!(v, Verdict::Transmit(PUB));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip(vip), 80));
    assert_eq!((seen.dst, seen.dport), (ip(clients[0]), 40000));
    assert_eq!(seen.dst_mac, CLIENT_MAC);
    // Each real server counts its (active) connection.
    assert_eq!(dest_counts(&b, mine), (1, 0, 0));
    assert_eq!(dest_counts(&b, first), (1, 0, 0));
    // A packet of no synced connection is not taken for one.
    let (v, _) = run(&mut b, t(3), PUB, &data(clients[0], 40001, vip, 80));
    assert_eq!(v, Verdict::Drop(DropReason::NotSyn));

    // The backup, master in turn, goes on counting from the threshold: its first record
    // of the connection is at packet 53, 50 packets after the master's.
    b.set_sync(Some(SyncSettings::default())).unwrap();
    for n in 4..=53u32 {
        run(&mut b, t(4), PUB, &data(clients[0], 40000, vip, 80));
        assert_eq!(b.sync_pending(), usize::from(n == 53), "packet {n}");
    }
}

#[test]
fn failover_keeps_a_nat_connection_v4() {
    nat_failover(
        "10.1.0.100",
        ["10.1.0.10", "10.1.0.11"],
        ["10.2.0.11", "10.2.0.12"],
    );
}

#[test]
fn failover_keeps_a_nat_connection_v6() {
    nat_failover(
        "2001:db8:1::100",
        ["2001:db8:1::10", "2001:db8:1::11"],
        ["2001:db8:2::11", "2001:db8:2::12"],
    );
}

#[test]
fn failover_keeps_a_direct_routing_connection() {
    let svc = tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::DirectRoute,
        &["10.2.0.11", "10.2.0.12"],
    );
    let mut m = master(vec![svc.clone()]);
    let mut b = director(vec![svc]);
    m.learn_neighbor(ip("10.1.0.11"), CLIENT_MAC, t(0));
    let syn = tcp_frame("10.1.0.11", 1000, "10.1.0.100", 80, Seg::Syn, b"");
    let (_, first) = run(&mut m, t(1), PUB, &syn);
    // Ours, on the other server: DR leaves the IP packet alone, the MAC names the server.
    for (i, seg) in [Seg::Syn, Seg::Ack, Seg::Ack].into_iter().enumerate() {
        let f = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, seg, &b"x"[..i.min(1)]);
        let (v, out) = run(&mut m, t(1), PUB, &f);
        assert_eq!(v, Verdict::Transmit(PRIV));
        assert_ne!(out[..6], first[..6]);
    }
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].flags, flags::DROUTE | flags::NOOUTPUT);
    let mine = recs[0].daddr;
    let i = if mine == ip("10.2.0.11") { 1 } else { 2 };
    let f = data("10.1.0.10", 40000, "10.1.0.100", 80);
    let (v, out) = run(&mut b, t(3), PUB, &f);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(out[12..], f[12..], "IP packet untouched");
    assert_eq!(
        (&out[..6], &out[6..12]),
        (&rs_mac(i)[..], &DIR_PRIV_MAC[..])
    );
    let (_, c) = b.table_v4().iter().next().unwrap();
    assert!(
        c.flags.has(ConnFlags::NO_OUTPUT),
        "the backup's own method's flags"
    );
    assert_eq!(c.state_name(), "ESTABLISHED");
    assert_eq!(dest_counts(&b, mine), (1, 0, 0));
}

#[test]
fn failover_keeps_a_tunnelled_connection() {
    let method = ForwardMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    let svc = tcp_svc("10.1.0.100", 80, method, &["10.2.0.12", "10.2.0.13"]);
    let mut m = master(vec![svc.clone()]);
    let mut b = director(vec![svc]);
    m.learn_neighbor(ip("10.1.0.11"), CLIENT_MAC, t(0));
    let first = open_tcp(&mut m, t(1), "10.1.0.11", 1000, "10.1.0.100", 80);
    let mine = open_tcp(&mut m, t(1), "10.1.0.10", 40000, "10.1.0.100", 80);
    assert_ne!(first, mine);
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter()
            .all(|r| r.flags == flags::TUNNEL | flags::NOOUTPUT)
    );
    let f = data("10.1.0.10", 40000, "10.1.0.100", 80);
    let (v, out) = run(&mut b, t(3), PUB, &f);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&out[14..]).unwrap();
    assert_eq!(outer.protocol().0, 4);
    assert_eq!(IpAddr::V4(outer.destination_addr()), mine);
    assert_eq!(out[14 + 20..], f[14..], "inner packet intact");
}

#[test]
fn failover_keeps_a_fullnat_connection_and_its_local_port() {
    let svc = tcp_svc(
        "10.1.0.100",
        80,
        ForwardMethod::FullNat,
        &["10.2.0.11", "10.2.0.12"],
    );
    let mut m = master(vec![svc.clone()]);
    let mut b = director(vec![svc]);
    // The master's mapping, from its first packet.
    let syn = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Syn, b"");
    let (_, out) = run(&mut m, t(1), PUB, &syn);
    let to_rs = inspect(&out);
    assert_eq!(to_rs.src, ip("10.2.0.250"));
    let lport = to_rs.sport;
    let reply = tcp_frame(
        &to_rs.dst.to_string(),
        80,
        "10.2.0.250",
        lport,
        Seg::SynAck,
        b"",
    );
    assert_eq!(run(&mut m, t(1), PRIV, &reply).0, Verdict::Transmit(PUB));
    for payload in [&b""[..], b"GET /"] {
        let f = tcp_frame("10.1.0.10", 40000, "10.1.0.100", 80, Seg::Ack, payload);
        run(&mut m, t(1), PUB, &f);
    }
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].local, Some((ip("10.2.0.250"), lport)));
    assert_eq!(
        recs[0].flags,
        flags::MASQ,
        "FullNAT goes as NAT for kernels"
    );

    // Client → real server: the same source mapping.
    let (v, out) = run(
        &mut b,
        t(3),
        PUB,
        &data("10.1.0.10", 40000, "10.1.0.100", 80),
    );
    assert_eq!(v, Verdict::Transmit(PRIV));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip("10.2.0.250"), lport));
    assert_eq!((seen.dst, seen.dport), (to_rs.dst, 80));
    // Real server → local address: back to the client from the VIP.
    let ack = tcp_frame(
        &to_rs.dst.to_string(),
        80,
        "10.2.0.250",
        lport,
        Seg::Ack,
        b"ok",
    );
    let (v, out) = run(&mut b, t(3), PRIV, &ack);
    assert_eq!(v, Verdict::Transmit(PUB));
    let seen = inspect(&out);
    assert_eq!((seen.src, seen.sport), (ip("10.1.0.100"), 80));
    assert_eq!((seen.dst, seen.dport), (ip("10.1.0.10"), 40000));
}

#[test]
fn a_synced_fullnat_local_port_is_not_handed_out_again() {
    let svc = tcp_svc("10.1.0.100", 80, ForwardMethod::FullNat, &["10.2.0.11"]);
    let cfg = Config {
        services: vec![svc],
        local_pool: LocalPool {
            addrs: vec![ip("10.2.0.250")],
            port_range: (20500, 20500),
        },
        ..Config::default()
    };
    let mut m = director_with(cfg.clone());
    m.set_sync(Some(SyncSettings::default())).unwrap();
    let mut b = director_with(cfg.clone());
    let mut fresh = director_with(cfg);
    open_tcp(&mut m, t(1), "10.1.0.10", 40000, "10.1.0.100", 80);
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(recs[0].local, Some((ip("10.2.0.250"), 20500)));
    // The pool's only port towards this real server is the synced connection's: a new
    // connection on the backup finds none, where a director without it gets that port.
    let syn = tcp_frame("10.1.0.11", 1000, "10.1.0.100", 80, Seg::Syn, b"");
    assert_eq!(
        run(&mut b, t(3), PUB, &syn).0,
        Verdict::Drop(DropReason::NoLocalPort)
    );
    let (v, out) = run(&mut fresh, t(3), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(inspect(&out).sport, 20500);
    // A FullNAT record without a mapping, or with an address not in the pool, is refused.
    let mut r = recs[0].to_conn();
    r.cport = 40001;
    r.local = None;
    assert_eq!(b.sync_import(t(3), &r), Err(SyncRefused::NoLocalAddress));
    r.local = Some((ip("10.2.0.251"), 20500));
    assert_eq!(b.sync_import(t(3), &r), Err(SyncRefused::NoLocalAddress));
    // The same mapping for another client: an active record takes it over, an inactive
    // one is stale.
    r.local = Some((ip("10.2.0.250"), 20500));
    r.flags |= flags::INACTIVE;
    assert_eq!(b.sync_import(t(3), &r), Err(SyncRefused::Superseded));
    r.flags &= !flags::INACTIVE;
    b.sync_import(t(3), &r).unwrap();
    assert_eq!(b.table_v4().iter().count(), 1);
    assert_eq!(b.table_v4().iter().next().unwrap().1.cport, 40001);
    assert_eq!(dest_counts(&b, ip("10.2.0.11")), (1, 0, 0));
}

#[test]
fn a_persistence_template_survives_failover() {
    let svc = persistent(ForwardMethod::Masq, &["10.2.0.11", "10.2.0.12"]);
    let mut m = master(vec![svc.clone()]);
    let mut b = director(vec![svc]);
    for c in ["10.1.1.10", "10.1.0.10", "10.1.0.20"] {
        m.learn_neighbor(ip(c), CLIENT_MAC, t(0));
        b.learn_neighbor(ip(c), CLIENT_MAC, t(0));
    }
    // A client of another /24 first: ours gets the other server.
    let first = open_tcp(&mut m, t(1), "10.1.1.10", 1000, "10.1.0.100", 80);
    let mine = open_tcp(&mut m, t(1), "10.1.0.10", 40000, "10.1.0.100", 80);
    assert_ne!(first, mine);
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(
        recs.iter()
            .filter(|r| r.flags & flags::TEMPLATE != 0)
            .count(),
        6,
        "each client's template with each of its 3 packets"
    );
    assert_eq!(b.table_v4().templates(), 2);
    assert_eq!(dest_counts(&b, mine), (1, 0, 1));
    // After the takeover a new connection from the same /24 goes to the same server,
    // though the backup's scheduler, fresh, would pick the other one first.
    let syn = tcp_frame("10.1.0.20", 50000, "10.1.0.100", 80, Seg::Syn, b"");
    let (v, out) = run(&mut b, t(10), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(inspect(&out).dst, mine);
    // SYN_RECV counts as active.
    assert_eq!(dest_counts(&b, mine), (2, 0, 1));
    let mut fresh = director(vec![persistent(
        ForwardMethod::Masq,
        &["10.2.0.11", "10.2.0.12"],
    )]);
    fresh.learn_neighbor(ip("10.1.0.20"), CLIENT_MAC, t(0));
    let (_, out) = run(&mut fresh, t(10), PUB, &syn);
    assert_eq!(inspect(&out).dst, other(mine, "10.2.0.11", "10.2.0.12"));
}

#[test]
fn a_firewall_mark_template_survives_failover() {
    let mut svc = VirtualServiceConfig::new(ServiceKey::Fwmark {
        mark: 80,
        family: Family::V4,
    });
    svc.scheduler = SchedulerKind::Rr;
    svc.persistence = Some(Persistence {
        timeout: 60,
        prefix: 32,
    });
    for a in ["10.2.0.11", "10.2.0.12"] {
        let mut r = RealServerConfig::new(ip(a), 0);
        r.method = ForwardMethod::DirectRoute;
        svc.real_servers.push(r);
    }
    let rule = |port| FwmarkRule {
        protocol: Some(Protocol::Tcp),
        dst: prefix("10.1.0.100", 32),
        src: None,
        ports: (port, port),
        mark: 80,
    };
    let cfg = Config {
        services: vec![svc],
        fwmark_rules: vec![rule(80), rule(443)],
        ..Config::default()
    };
    let mut m = director_with(cfg.clone());
    m.set_sync(Some(SyncSettings::default())).unwrap();
    let mut b = director_with(cfg.clone());
    m.learn_neighbor(ip("10.1.0.11"), CLIENT_MAC, t(0));
    open_tcp(&mut m, t(1), "10.1.0.11", 1000, "10.1.0.100", 80);
    open_tcp(&mut m, t(1), "10.1.0.10", 40000, "10.1.0.100", 80);
    let recs = ship(&mut m, &mut b, t(2));
    let tpl = recs
        .iter()
        .rfind(|r| r.flags & flags::TEMPLATE != 0 && r.caddr == ip("10.1.0.10"))
        .copied()
        .unwrap();
    // The kernel's firewall-mark template: protocol 0, the mark as virtual address.
    assert_eq!(
        (tpl.protocol, tpl.vaddr, tpl.vport, tpl.fwmark),
        (0, ip("0.0.0.80"), 0, 80)
    );
    assert_eq!(
        tpl.flags,
        flags::TEMPLATE | flags::DROUTE | flags::INACTIVE | flags::NOOUTPUT
    );
    assert!(
        recs.iter()
            .filter(|r| r.flags & flags::TEMPLATE == 0)
            .all(|r| r.fwmark == 80)
    );
    let (_, c) = b
        .table_v4()
        .iter()
        .find(|(_, c)| !c.is_template() && c.cport == 40000)
        .unwrap();
    assert!(c.flags.has(ConnFlags::FWMARK | ConnFlags::SYNC));
    // Port 443 from the same client: the template's server, on the backup.
    let mine = tpl.daddr;
    let i = if mine == ip("10.2.0.11") { 1 } else { 2 };
    let syn = tcp_frame("10.1.0.10", 40001, "10.1.0.100", 443, Seg::Syn, b"");
    let (v, out) = run(&mut b, t(3), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(&out[..6], &rs_mac(i)[..]);
}

#[test]
fn an_ftp_control_connection_keeps_its_sequence_adjustment() {
    let svc = tcp_svc("10.1.0.100", 21, ForwardMethod::Masq, &["10.2.0.11"]);
    let mut m = master(vec![svc.clone()]);
    let mut b = director(vec![svc]);
    let syn = tcp_seg("10.1.0.10", 40000, "10.1.0.100", 21, 100, 0, true, b"");
    run(&mut m, t(1), PUB, &syn);
    let reply = "227 Entering Passive Mode (10,2,0,11,195,80).\r\n";
    let r = tcp_seg(
        "10.2.0.11",
        21,
        "10.1.0.10",
        40000,
        5000,
        101,
        false,
        reply.as_bytes(),
    );
    let (_, out) = run(&mut m, t(1), PRIV, &r);
    let grown = tcp_fields(&out).2.len() as u32 - reply.len() as u32;
    assert!(grown > 0);
    for _ in 0..2 {
        let ack = tcp_seg("10.1.0.10", 40000, "10.1.0.100", 21, 101, 5000, false, b"");
        run(&mut m, t(1), PUB, &ack);
    }
    let recs = ship(&mut m, &mut b, t(2));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].flags, flags::MASQ | flags::OUT_SEQ);
    assert_eq!(
        recs[0].seq.map(|s| (s.out_seq.init_seq, s.out_seq.delta)),
        Some((5000, grown))
    );
    // The server's next reply through the backup is shifted as the master would.
    let next = tcp_seg(
        "10.2.0.11",
        21,
        "10.1.0.10",
        40000,
        5000 + reply.len() as u32,
        101,
        false,
        b"150 ok\r\n",
    );
    let (v, out) = run(&mut b, t(3), PRIV, &next);
    assert_eq!(v, Verdict::Transmit(PUB));
    inspect(&out);
    assert_eq!(tcp_fields(&out).0, 5000 + reply.len() as u32 + grown);
}
