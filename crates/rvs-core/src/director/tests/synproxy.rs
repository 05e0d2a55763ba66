//! Whole connections through the SYN proxy (`director/synproxy`), NAT and FullNAT: the
//! cookie SYN-ACK, no state for SYNs, the connection on the cookie ACK, the handshake with
//! the real server, the held data, sequence translation both ways (SACK blocks too), a
//! refusing real server, bad and stale cookies. Every frame out is checked by etherparse
//! (`inspect` verifies the checksums).

use super::*;
use crate::model::SynProxyConfig;
use etherparse::{TcpOptionElement, TcpSlice};

const VIP: &str = "10.1.0.100";
const CLIENT: &str = "10.1.0.10";
const RS: &str = "10.2.0.11";

/// A TCP segment as the test sends it.
#[derive(Clone, Copy, Default)]
struct Out<'a> {
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    rst: bool,
    fin: bool,
    window: u16,
    opts: &'a [TcpOptionElement],
    payload: &'a [u8],
}

#[allow(clippy::too_many_arguments)]
fn seg(src: &str, sport: u16, dst: &str, dport: u16, o: Out<'_>) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC);
    let b = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut t = b.tcp(sport, dport, o.seq, o.window);
    if o.syn {
        t = t.syn();
    }
    if let Some(a) = o.ack {
        t = t.ack(a);
    }
    if o.rst {
        t = t.rst();
    }
    if o.fin {
        t = t.fin();
    }
    if !o.opts.is_empty() {
        t = t.options(o.opts).unwrap();
    }
    let mut v = Vec::new();
    t.write(&mut v, o.payload).unwrap();
    v
}

/// A segment of the test connection from the client (`CLIENT`:40000 → `VIP`:80).
fn from_client(o: Out<'_>) -> Vec<u8> {
    seg(CLIENT, 40000, VIP, 80, o)
}

/// The client's ACK of the cookie SYN-ACK: sequence `seq`, acknowledging `cookie` + 1,
/// window 502, carrying `payload`.
fn cookie_ack(seq: u32, cookie: u32, payload: &[u8]) -> Vec<u8> {
    from_client(Out {
        seq,
        ack: Some(cookie.wrapping_add(1)),
        window: 502,
        payload,
        ..Out::default()
    })
}

/// A segment of the test connection from its NAT real server (`RS`:80 → `CLIENT`:40000).
fn from_rs(o: Out<'_>) -> Vec<u8> {
    seg(RS, 80, CLIENT, 40000, o)
}

/// The real server's SYN-ACK: its ISN `seq`, acknowledging `ack`, window 100.
fn rs_synack(seq: u32, ack: u32) -> Vec<u8> {
    from_rs(Out {
        seq,
        ack: Some(ack),
        syn: true,
        window: 100,
        ..Out::default()
    })
}

/// What a frame out carries (checksums verified by `inspect`).
#[derive(Debug)]
struct Got {
    seen: Seen,
    seq: u32,
    ack: u32,
    syn: bool,
    ack_flag: bool,
    rst: bool,
    window: u16,
    mss: Option<u16>,
    sack_perm: bool,
    sack: Vec<(u32, u32)>,
    payload: Vec<u8>,
}

fn got(frame: &[u8]) -> Got {
    let seen = inspect(frame);
    let s = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("not TCP")
    };
    tcp_got(seen, &t)
}

fn tcp_got(seen: Seen, t: &TcpSlice<'_>) -> Got {
    let mut g = Got {
        seen,
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        syn: t.syn(),
        ack_flag: t.ack(),
        rst: t.rst(),
        window: t.window_size(),
        mss: None,
        sack_perm: false,
        sack: Vec::new(),
        payload: t.payload().to_vec(),
    };
    for o in t.options_iterator() {
        match o.unwrap() {
            TcpOptionElement::MaximumSegmentSize(m) => g.mss = Some(m),
            TcpOptionElement::SelectiveAcknowledgementPermitted => g.sack_perm = true,
            TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                g.sack.push(first);
                g.sack.extend(rest.iter().flatten().copied());
            }
            _ => {}
        }
    }
    g
}

/// A configuration with the SYN proxy on for `services` (`all`) or for the `listed` ones,
/// and a FullNAT local address pool: the proxy tests' fixture.
pub(super) fn proxy_config(
    services: Vec<VirtualServiceConfig>,
    all: bool,
    listed: Vec<ServiceKey>,
) -> Config {
    Config {
        services,
        local_pool: LocalPool {
            addrs: vec![ip("10.2.0.250")],
            port_range: (20000, 20999),
        },
        synproxy: SynProxyConfig {
            all,
            services: listed,
        },
        ..Config::default()
    }
}

/// A director whose one service (`VIP`:80 on `rs` by `method`) has the proxy on.
fn proxy_director(method: ForwardMethod, rs: &[&str]) -> Director {
    director_with(proxy_config(
        vec![tcp_svc(VIP, 80, method, rs)],
        true,
        vec![],
    ))
}

fn drain(d: &mut Director) -> Vec<(PortId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some((port, len)) = d.poll_transmit(&mut buf) {
        out.push((port, buf[..len].to_vec()));
    }
    out
}

const MSS_SACK: [TcpOptionElement; 2] = [
    TcpOptionElement::MaximumSegmentSize(1460),
    TcpOptionElement::SelectiveAcknowledgementPermitted,
];

/// The client's SYN and the director's cookie SYN-ACK; returns the cookie.
fn handshake_client(d: &mut Director, now: Instant, cport: u16, isn: u32) -> u32 {
    let syn = seg(
        CLIENT,
        cport,
        VIP,
        80,
        Out {
            seq: isn,
            syn: true,
            window: 64240,
            opts: &MSS_SACK,
            ..Out::default()
        },
    );
    let (v, out) = run(d, now, PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PUB));
    let g = got(&out);
    assert_eq!((g.seen.src, g.seen.sport), (ip(VIP), 80));
    assert_eq!((g.seen.dst, g.seen.dport), (ip(CLIENT), cport));
    assert_eq!((g.seen.dst_mac, g.seen.src_mac), (CLIENT_MAC, DIR_PUB_MAC));
    assert!(g.syn && g.ack_flag && !g.rst);
    assert_eq!(g.ack, isn.wrapping_add(1));
    assert_eq!(
        g.window, 0,
        "zero window: no data before the real server answers"
    );
    assert_eq!((g.mss, g.sack_perm), (Some(1460), true));
    assert!(g.payload.is_empty());
    g.seq
}

/// A whole connection: returns (the real server's view of the client: address, port).
fn whole_connection(method: ForwardMethod, cisn: u32, rs_isn: u32) -> (IpAddr, u16) {
    let mut d = proxy_director(method, &[RS]);
    let (caddr, cport, _) = proxied_connection(&mut d, cisn, rs_isn);
    (caddr, cport)
}

/// [`whole_connection`] in a fresh director `d`: returns the real server's view of the
/// client (address, port) and the cookie.
fn proxied_connection(d: &mut Director, cisn: u32, rs_isn: u32) -> (IpAddr, u16, u32) {
    let d = &mut *d;
    let t0 = t(10);
    let cookie = handshake_client(d, t0, 40000, cisn);
    assert_eq!(d.table_v4().len(), 0, "a SYN creates no state");
    // The client's ACK carries its request already.
    let req = b"GET / HTTP/1.0\r\n\r\n";
    let ack = cookie_ack(cisn.wrapping_add(1), cookie, req);
    let (v, out) = run(d, t0, PUB, &ack);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let syn = got(&out);
    assert_eq!((syn.seen.dst, syn.seen.dport), (ip(RS), 80));
    assert_eq!(syn.seen.dst_mac, rs_mac(1));
    assert!(syn.syn && !syn.ack_flag);
    assert_eq!(syn.seq, cisn, "the client's ISN");
    assert_eq!((syn.mss, syn.sack_perm), (Some(1460), true));
    assert!(syn.payload.is_empty(), "the data is held");
    let (caddr, cport) = (syn.seen.src, syn.seen.sport);
    assert_eq!(d.table_v4().len(), 1);
    assert_eq!(d.counters().synproxy.held, 1);
    // The real server answers.
    let synack = seg(
        RS,
        80,
        &caddr.to_string(),
        cport,
        Out {
            seq: rs_isn,
            ack: Some(cisn.wrapping_add(1)),
            syn: true,
            window: 65160,
            opts: &MSS_SACK,
            ..Out::default()
        },
    );
    let (v, out) = run(d, t0, PRIV, &synack);
    assert_eq!(v, Verdict::Transmit(PUB));
    let upd = got(&out);
    assert_eq!((upd.seen.src, upd.seen.sport), (ip(VIP), 80));
    assert_eq!((upd.seen.dst, upd.seen.dport), (ip(CLIENT), 40000));
    assert!(upd.ack_flag && !upd.syn);
    assert_eq!(upd.seq, cookie.wrapping_add(1));
    assert_eq!(upd.ack, cisn.wrapping_add(1));
    assert_eq!(
        upd.window, 65160,
        "the real server's window opens the client's"
    );
    // Queued: the ACK completing the real server's handshake, then the held request.
    let sent = drain(d);
    assert_eq!(sent.len(), 2);
    let mut acks = sent
        .iter()
        .map(|(p, f)| {
            assert_eq!(*p, PRIV);
            got(f)
        })
        .collect::<Vec<_>>();
    acks.sort_by_key(|g| g.payload.len());
    for g in &acks {
        assert_eq!((g.seen.src, g.seen.sport), (caddr, cport));
        assert_eq!((g.seen.dst, g.seen.dport), (ip(RS), 80));
        assert!(g.ack_flag && !g.syn);
        assert_eq!(g.seq, cisn.wrapping_add(1));
        assert_eq!(g.ack, rs_isn.wrapping_add(1));
    }
    assert!(acks[0].payload.is_empty());
    assert_eq!(acks[1].payload, req);
    // The real server's reply: its sequence becomes the cookie's.
    let reply = seg(
        RS,
        80,
        &caddr.to_string(),
        cport,
        Out {
            seq: rs_isn.wrapping_add(1),
            ack: Some(cisn.wrapping_add(1 + req.len() as u32)),
            window: 500,
            payload: b"HTTP/1.0 200 OK\r\n\r\n",
            ..Out::default()
        },
    );
    let (v, out) = run(d, t(11), PRIV, &reply);
    assert_eq!(v, Verdict::Transmit(PUB));
    let g = got(&out);
    assert_eq!(g.seq, cookie.wrapping_add(1));
    assert_eq!(g.payload, b"HTTP/1.0 200 OK\r\n\r\n");
    // The client acknowledges it, with a SACK block: both move into the server's numbers.
    let sack = [TcpOptionElement::SelectiveAcknowledgement(
        (cookie.wrapping_add(100), cookie.wrapping_add(200)),
        [None, None, None],
    )];
    let cack = from_client(Out {
        seq: cisn.wrapping_add(1 + req.len() as u32),
        ack: Some(cookie.wrapping_add(20)),
        window: 501,
        opts: &sack,
        ..Out::default()
    });
    let (v, out) = run(d, t(11), PUB, &cack);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let g = got(&out);
    assert_eq!(g.ack, rs_isn.wrapping_add(20));
    assert_eq!(
        g.sack,
        vec![(rs_isn.wrapping_add(100), rs_isn.wrapping_add(200))]
    );
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.state_name(), "ESTABLISHED");
    let sp = &d.counters().synproxy;
    assert_eq!(
        (sp.cookies_sent, sp.acks_valid, sp.proxied, sp.rs_refused),
        (1, 1, 1, 0)
    );
    let svc = d.services().iter().next().unwrap().1;
    assert_eq!(svc.stats.conns, 1);
    assert_eq!(svc.dests[0].active_conns, 1);
    (caddr, cport, cookie)
}

#[test]
fn nat_whole_connection_through_the_proxy() {
    let (caddr, cport) = whole_connection(ForwardMethod::Masq, 1000, 777_777);
    assert_eq!((caddr, cport), (ip(CLIENT), 40000));
}

#[test]
fn fullnat_whole_connection_through_the_proxy() {
    let (caddr, cport) = whole_connection(ForwardMethod::FullNat, 123_456, 9);
    assert_eq!(caddr, ip("10.2.0.250"));
    assert!((20000..=20999).contains(&cport));
}

#[test]
fn sequence_numbers_wrap_at_two_to_the_32() {
    whole_connection(ForwardMethod::Masq, u32::MAX - 3, u32::MAX - 1);
    whole_connection(ForwardMethod::FullNat, u32::MAX, 5);
}

#[test]
fn a_spoofed_syn_flood_creates_no_state() {
    let mut d = proxy_director(ForwardMethod::Masq, &[RS]);
    for i in 0..2000u32 {
        let src = format!("10.1.{}.{}", 1 + (i >> 8) % 200, i & 0xff);
        let syn = seg(
            &src,
            (1024 + i) as u16,
            VIP,
            80,
            Out {
                seq: i.wrapping_mul(2_654_435_761),
                syn: true,
                window: 512,
                ..Out::default()
            },
        );
        let (v, _) = run(&mut d, t(5), PUB, &syn);
        assert_eq!(v, Verdict::Transmit(PUB));
    }
    assert_eq!(d.table_v4().len(), 0);
    assert_eq!(d.counters().synproxy.cookies_sent, 2000);
    assert!(
        drain(&mut d).is_empty(),
        "no ARP for spoofed sources: replies go back by MAC"
    );
    // A legitimate client still gets through.
    handshake_client(&mut d, t(5), 50000, 42);
}

#[test]
fn bad_and_stale_cookies_are_dropped() {
    let mut d = proxy_director(ForwardMethod::Masq, &[RS]);
    let cookie = handshake_client(&mut d, t(100), 40000, 1000);
    let ack = |ack: u32| {
        from_client(Out {
            seq: 1001,
            ack: Some(ack),
            window: 502,
            ..Out::default()
        })
    };
    // A guessed cookie, and the right one 3 minutes later.
    let (v, _) = run(&mut d, t(100), PUB, &ack(cookie.wrapping_add(2)));
    assert_eq!(v, Verdict::Drop(DropReason::SynProxy));
    let (v, _) = run(&mut d, t(100 + 180), PUB, &ack(cookie.wrapping_add(1)));
    assert_eq!(v, Verdict::Drop(DropReason::SynProxy));
    assert_eq!(d.table_v4().len(), 0);
    assert_eq!(d.counters().synproxy.acks_invalid, 2);
    // Within the window (up to one counter period later) it opens the connection.
    let (v, _) = run(&mut d, t(130), PUB, &ack(cookie.wrapping_add(1)));
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(d.table_v4().len(), 1);
    // A RST without a connection is dropped as without the proxy.
    let rst = seg(
        "10.1.0.11",
        1,
        VIP,
        80,
        Out {
            seq: 5,
            rst: true,
            ..Out::default()
        },
    );
    assert_eq!(
        run(&mut d, t(130), PUB, &rst).0,
        Verdict::Drop(DropReason::NotSyn)
    );
}

#[test]
fn a_refusing_real_server_resets_the_client() {
    let mut d = proxy_director(ForwardMethod::Masq, &[RS]);
    let cookie = handshake_client(&mut d, t(1), 40000, 1000);
    let ack = cookie_ack(1001, cookie, b"");
    assert_eq!(run(&mut d, t(1), PUB, &ack).0, Verdict::Transmit(PRIV));
    let rst = from_rs(Out {
        seq: 0,
        ack: Some(1001),
        rst: true,
        ..Out::default()
    });
    let (v, out) = run(&mut d, t(1), PRIV, &rst);
    assert_eq!(v, Verdict::Transmit(PUB));
    let g = got(&out);
    assert!(g.rst);
    assert_eq!((g.seen.src, g.seen.dst), (ip(VIP), ip(CLIENT)));
    assert_eq!(
        g.seq,
        cookie.wrapping_add(1),
        "the sequence the client expects"
    );
    assert_eq!(d.counters().synproxy.rs_refused, 1);
    let (_, c) = d.table_v4().iter().next().unwrap();
    assert_eq!(c.state_name(), "CLOSE");
}

#[test]
fn client_segments_before_the_real_server_answers_resend_the_syn() {
    let mut d = proxy_director(ForwardMethod::Masq, &[RS]);
    let cookie = handshake_client(&mut d, t(1), 40000, 1000);
    let ack = cookie_ack(1001, cookie, b"");
    assert_eq!(run(&mut d, t(1), PUB, &ack).0, Verdict::Transmit(PRIV));
    // The SYN was lost; the client's zero-window probe brings it again.
    let (v, out) = run(&mut d, t(2), PUB, &ack);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let g = got(&out);
    assert!(g.syn && !g.ack_flag);
    assert_eq!(g.seq, 1000);
    // A real server's segment that is not the SYN-ACK is refused.
    let stray = from_rs(Out {
        seq: 9,
        ack: Some(77),
        syn: true,
        ..Out::default()
    });
    assert_eq!(
        run(&mut d, t(2), PRIV, &stray).0,
        Verdict::Drop(DropReason::SynProxy)
    );
    // A retransmitted SYN-ACK after the handshake is acknowledged again, not forwarded.
    let synack = rs_synack(5000, 1001);
    assert_eq!(run(&mut d, t(2), PRIV, &synack).0, Verdict::Transmit(PUB));
    assert_eq!(drain(&mut d).len(), 1);
    assert_eq!(run(&mut d, t(2), PRIV, &synack).0, Verdict::Consumed);
    let again = drain(&mut d);
    assert_eq!(again.len(), 1);
    let g = got(&again[0].1);
    assert_eq!((g.seq, g.ack, g.ack_flag, g.syn), (1001, 5001, true, false));
}

#[test]
fn services_without_the_proxy_are_untouched() {
    let mut d = director_with(proxy_config(
        vec![tcp_svc(VIP, 80, ForwardMethod::Masq, &[RS])],
        false,
        vec![ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip(VIP),
            port: 443,
        }],
    ));
    let syn = tcp_frame(CLIENT, 40000, VIP, 80, Seg::Syn, b"");
    let (v, out) = run(&mut d, t(1), PUB, &syn);
    assert_eq!(v, Verdict::Transmit(PRIV));
    assert_eq!(inspect(&out).dst, ip(RS));
    assert_eq!(d.counters().synproxy.cookies_sent, 0);
}

/// `[synproxy] all` covers only services the proxy can serve: a direct-routing, a
/// tunnelled and a mixed (NAT + direct routing) service forward the client's SYN and then
/// its ACK to the real server as without the proxy (before the fix the SYN got a cookie
/// SYN-ACK and the ACK was dropped), while a NAT service beside them still answers with a
/// cookie.
#[test]
fn all_skips_services_whose_replies_bypass_the_director() {
    let tunnel = ForwardMethod::Tunnel {
        kind: crate::model::TunnelKind::Ipip,
        csum: crate::model::TunnelCsum::NoCsum,
    };
    let mut mixed = tcp_svc(VIP, 83, ForwardMethod::Masq, &[RS]);
    mixed.real_servers.push({
        let mut r = RealServerConfig::new(ip("10.2.0.12"), 83);
        r.method = ForwardMethod::DirectRoute;
        r
    });
    let mut d = director_with(proxy_config(
        vec![
            tcp_svc(VIP, 80, ForwardMethod::Masq, &[RS]),
            tcp_svc(VIP, 81, ForwardMethod::DirectRoute, &[RS]),
            tcp_svc(VIP, 82, tunnel, &[RS]),
            mixed,
        ],
        true,
        vec![],
    ));
    for (i, vport) in [81u16, 82, 83].into_iter().enumerate() {
        let cport = 40000 + i as u16;
        let syn = tcp_frame(CLIENT, cport, VIP, vport, Seg::Syn, b"");
        let (v, out) = run(&mut d, t(1), PUB, &syn);
        assert_eq!(v, Verdict::Transmit(PRIV), "port {vport}: SYN forwarded");
        assert_ne!(out, syn, "port {vport}: rewritten for its real server");
        let ack = tcp_frame(CLIENT, cport, VIP, vport, Seg::Ack, b"GET /");
        let (v, _) = run(&mut d, t(1), PUB, &ack);
        assert_eq!(v, Verdict::Transmit(PRIV), "port {vport}: ACK forwarded");
        assert_eq!(d.table_v4().len(), i + 1, "port {vport}: one connection");
    }
    // The direct-routing SYN went to the real server's MAC, addressed to the VIP.
    let syn = tcp_frame(CLIENT, 41000, VIP, 81, Seg::Syn, b"");
    let (_, out) = run(&mut d, t(1), PUB, &syn);
    let seen = inspect(&out);
    assert_eq!((seen.dst, seen.dst_mac), (ip(VIP), rs_mac(1)));
    assert_eq!(d.counters().synproxy.cookies_sent, 0);
    assert_eq!(d.counters().synproxy.acks_invalid, 0);
    let listed: Vec<(u16, bool)> = d
        .services()
        .iter()
        .map(|(_, s)| match s.cfg.key {
            ServiceKey::Addr { port, .. } => (port, s.synproxy),
            ServiceKey::Fwmark { .. } => (0, s.synproxy),
        })
        .collect();
    assert_eq!(
        listed,
        vec![(80, true), (81, false), (82, false), (83, false)]
    );
    handshake_client(&mut d, t(1), 42000, 7);
    assert_eq!(d.counters().synproxy.cookies_sent, 1);
}

/// A service that asks for the proxy itself, with a real server it cannot serve, is
/// refused (as `ipvsadm -j enable` on it is).
#[test]
fn an_explicit_proxy_on_direct_routing_is_refused() {
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(VIP),
        port: 80,
    };
    let cfg = proxy_config(
        vec![tcp_svc(VIP, 80, ForwardMethod::DirectRoute, &[RS])],
        false,
        vec![key],
    );
    let errs = Director::new(net(), &cfg, DirectorSettings::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![ConfigError::SynProxyMethod {
            service: key,
            addr: ip(RS),
            port: 80
        }]
    );
    // Under `all` the same service is skipped, not refused.
    let all = proxy_config(cfg.services.clone(), true, vec![]);
    assert!(all.validate().is_ok());
}

#[test]
fn the_fast_path_leaves_proxied_connections_to_the_general_path() {
    // The same connection with the fast path on and off gives the same frames.
    let run_all = |fast: bool| {
        let mut d = proxy_director(ForwardMethod::Masq, &[RS]);
        d.set_fast_path(fast);
        let cookie = handshake_client(&mut d, t(1), 40000, 1000);
        let mut frames = Vec::new();
        let ack = cookie_ack(1001, cookie, b"");
        frames.push(run(&mut d, t(1), PUB, &ack));
        let synack = rs_synack(5000, 1001);
        frames.push(run(&mut d, t(1), PRIV, &synack));
        drain(&mut d);
        let data = cookie_ack(1001, cookie, b"x");
        let (v, out) = run(&mut d, t(2), PUB, &data);
        assert_eq!(got(&out).ack, 5001);
        frames.push((v, out));
        frames
    };
    assert_eq!(run_all(true), run_all(false));
}

// ---- connection sync: a proxied connection survives a failover ----

/// A master with sync on proxies a connection; its sync record goes through the real codec
/// to a backup (with the proxy on or off there: the record says what to do); the backup
/// then forwards the connection's next segments translated both ways. Returns the record's
/// encoded bytes (without the message header).
fn failover(method: ForwardMethod, backup_proxy: bool, cisn: u32, rs_isn: u32) -> Vec<u8> {
    use crate::director::sync::SyncSettings;
    use crate::sync::{DEFAULT_MAX_LEN, SyncMessage, flags, pack};
    let mut m = proxy_director(method, &[RS]);
    m.set_sync(Some(SyncSettings::default())).unwrap();
    let (caddr, cport, cookie) = proxied_connection(&mut m, cisn, rs_isn);
    let delta = rs_isn.wrapping_sub(cookie);
    // Client ACKs until the connection is synced (ESTABLISHED: packet 3, then every 50).
    let mut recs = Vec::new();
    for _ in 0..60 {
        recs.extend(std::iter::from_fn(|| m.poll_sync()));
        if !recs.is_empty() {
            break;
        }
        let a = from_client(Out {
            seq: cisn.wrapping_add(19),
            ack: Some(cookie.wrapping_add(20)),
            window: 501,
            ..Out::default()
        });
        assert_eq!(run(&mut m, t(12), PUB, &a).0, Verdict::Transmit(PRIV));
    }
    assert_eq!(recs.len(), 1, "one record: {recs:?}");
    let r = recs[0];
    assert_eq!(r.flags & flags::SEQ_MASK, flags::SEQ_MASK);
    let s = r.seq.expect("sequence data");
    assert_eq!(
        (s.out_seq.delta, s.out_seq.previous_delta),
        (delta.wrapping_neg(), delta.wrapping_neg()),
        "out_seq adds -delta to the real server's sequence (vs_fix_seq)"
    );
    assert_eq!((s.in_seq.init_seq, s.in_seq.delta), (cisn, 0));

    // The backup: same services, its own cookie secret.
    let mut b = director_with(proxy_config(
        vec![tcp_svc(VIP, 80, method, &[RS])],
        backup_proxy,
        vec![],
    ));
    let msgs = pack(&[r.to_conn()], 0, DEFAULT_MAX_LEN).unwrap();
    assert_eq!(msgs.len(), 1);
    for c in SyncMessage::parse(&msgs[0]).unwrap().conns() {
        b.sync_import(t(13), &c.unwrap()).unwrap();
    }
    assert_eq!(b.table_v4().len(), 1);

    // The real server's next data reaches the client in the cookie's numbering.
    let reply = seg(
        RS,
        80,
        &caddr.to_string(),
        cport,
        Out {
            seq: rs_isn.wrapping_add(20),
            ack: Some(cisn.wrapping_add(19)),
            window: 500,
            payload: b"more of the reply",
            ..Out::default()
        },
    );
    let (v, out) = run(&mut b, t(14), PRIV, &reply);
    assert_eq!(v, Verdict::Transmit(PUB));
    let g = got(&out);
    assert_eq!((g.seen.src, g.seen.sport), (ip(VIP), 80));
    assert_eq!((g.seen.dst, g.seen.dport), (ip(CLIENT), 40000));
    assert_eq!(g.seq, cookie.wrapping_add(20));
    assert_eq!(g.payload, b"more of the reply");
    // The client's acknowledgement and SACK block reach the real server in its numbering.
    let sack = [TcpOptionElement::SelectiveAcknowledgement(
        (cookie.wrapping_add(100), cookie.wrapping_add(200)),
        [None, None, None],
    )];
    let cack = from_client(Out {
        seq: cisn.wrapping_add(19),
        ack: Some(cookie.wrapping_add(37)),
        window: 501,
        opts: &sack,
        ..Out::default()
    });
    let (v, out) = run(&mut b, t(14), PUB, &cack);
    assert_eq!(v, Verdict::Transmit(PRIV));
    let g = got(&out);
    assert_eq!((g.seen.src, g.seen.sport), (caddr, cport));
    assert_eq!((g.seen.dst, g.seen.dport), (ip(RS), 80));
    assert_eq!(g.ack, rs_isn.wrapping_add(37));
    assert_eq!(
        g.sack,
        vec![(rs_isn.wrapping_add(100), rs_isn.wrapping_add(200))]
    );
    msgs[0][8..].to_vec()
}

#[test]
fn a_nat_proxied_connection_survives_a_failover() {
    failover(ForwardMethod::Masq, true, 1000, 777_777);
    failover(ForwardMethod::Masq, false, u32::MAX - 3, 5);
}

#[test]
fn a_fullnat_proxied_connection_survives_a_failover() {
    failover(ForwardMethod::FullNat, true, 123_456, 9);
    failover(ForwardMethod::FullNat, false, 7, u32::MAX);
}

/// The record of a proxied NAT connection, byte for byte as the kernel lays a version 1
/// record out (net/netfilter/ipvs/ip_vs_sync.c: `struct ip_vs_sync_v4`, then the option
/// `IPVS_OPT_SEQ_DATA` (1), length `sizeof(struct ip_vs_sync_conn_options)` (24), and the
/// two `struct ip_vs_seq` { init_seq, delta, previous_delta } in network order,
/// `hton_seq()`; in_seq first).
#[test]
fn the_proxied_record_has_the_kernels_layout() {
    let (cisn, rs_isn) = (1000u32, 777_777u32);
    let bytes = failover(ForwardMethod::Masq, true, cisn, rs_isn);
    // The cookie is the director's secret: read it back from the delta the record carries.
    let minus_delta = u32::from_be_bytes(bytes[36 + 2 + 16..36 + 2 + 20].try_into().unwrap());
    let cookie = rs_isn.wrapping_add(minus_delta);
    let mut k = Vec::new();
    k.extend_from_slice(&[0, 6]); // type 0 (IPv4), protocol TCP
    k.extend_from_slice(&(36u16 + 2 + 24).to_be_bytes()); // ver 0, size
    k.extend_from_slice(&0x0600u32.to_be_bytes()); // IP_VS_CONN_F_IN_SEQ | OUT_SEQ, MASQ
    k.extend_from_slice(&1u16.to_be_bytes()); // IP_VS_TCP_S_ESTABLISHED
    k.extend_from_slice(&40000u16.to_be_bytes()); // cport
    k.extend_from_slice(&80u16.to_be_bytes()); // vport
    k.extend_from_slice(&80u16.to_be_bytes()); // dport
    k.extend_from_slice(&0u32.to_be_bytes()); // fwmark
    k.extend_from_slice(&900u32.to_be_bytes()); // timeout (ESTABLISHED)
    k.extend_from_slice(&[10, 1, 0, 10, 10, 1, 0, 100, 10, 2, 0, 11]); // caddr vaddr daddr
    k.extend_from_slice(&[1, 24]); // IPVS_OPT_SEQ_DATA, its length
    for w in [
        cisn,
        0,
        0,
        0,
        cookie.wrapping_sub(rs_isn),
        cookie.wrapping_sub(rs_isn),
    ] {
        k.extend_from_slice(&w.to_be_bytes());
    }
    assert_eq!(bytes, k);
}
