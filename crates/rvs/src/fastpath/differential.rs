//! The XDP program against the engine, byte for byte: an established NAT or FullNAT
//! connection's segments, each way (direct routing: the client's way), leave the program (`BPF_PROG_TEST_RUN`, with the
//! entries [`FastPath`] wrote from the engine's offload) exactly as they leave the engine's
//! userspace path; and the segments the program must not take (SYN, FIN, RST, IP options,
//! a fragment, a checksum-partial segment, an unknown flow) pass unchanged. Needs root
//! (loading a BPF program), as the lab tests do.

use super::*;
use etherparse::PacketBuilder;
use rvs_core::director::{DirectorSettings, NetConfig, OwnedAddr, PortConfig, Verdict};
use rvs_core::model::{
    Config, ForwardMethod, LocalPool, Prefix, Protocol, RealServerConfig, SchedulerKind,
    ServiceKey, VirtualServiceConfig,
};
use rvs_core::wire::{CsumStatus, Frame};
use std::net::IpAddr;

const PUB: PortId = PortId(0);
const PRIV: PortId = PortId(1);
const PUB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PRIV_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const CLIENT: [u8; 4] = [10, 1, 0, 10];
const VIP: [u8; 4] = [10, 1, 0, 100];
const RS: [u8; 4] = [10, 2, 0, 11];

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

fn director(method: ForwardMethod) -> Director {
    director_for(method, Protocol::Tcp)
}

/// [`director`] with a `protocol` service.
fn director_for(method: ForwardMethod, protocol: Protocol) -> Director {
    let prefix = |a: [u8; 4], len| Prefix { addr: ip(a), len };
    let net = NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: PUB_MAC,
                addrs: vec![prefix([10, 1, 0, 2], 24)],
                mtu: 1500,
            },
            PortConfig {
                id: PRIV,
                mac: PRIV_MAC,
                addrs: vec![prefix([10, 2, 0, 1], 24)],
                mtu: 1500,
            },
        ],
        routes: vec![],
        owned: vec![
            OwnedAddr {
                addr: ip(VIP),
                port: PUB,
                mac: None,
            },
            OwnedAddr {
                addr: ip([10, 2, 0, 254]),
                port: PRIV,
                mac: None,
            },
        ],
    };
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol,
        addr: ip(VIP),
        port: 80,
    });
    svc.scheduler = SchedulerKind::Rr;
    // NAT remaps the port; direct routing and tunnels cannot.
    let port = if matches!(
        method,
        ForwardMethod::DirectRoute | ForwardMethod::Tunnel { .. }
    ) {
        80
    } else {
        8080
    };
    let mut r = RealServerConfig::new(ip(RS), port);
    r.method = method;
    svc.real_servers.push(r);
    let cfg = Config {
        services: vec![svc],
        local_pool: LocalPool {
            addrs: vec![ip([10, 2, 0, 250])],
            port_range: (20000, 20999),
        },
        ..Config::default()
    };
    let mut d = Director::new(net, &cfg, DirectorSettings::default()).expect("valid config");
    d.learn_neighbor(ip(CLIENT), CLIENT_MAC, Instant(0));
    d.learn_neighbor(ip(RS), RS_MAC, Instant(0));
    d
}

/// TCP flags of [`segment`].
#[derive(Clone, Copy)]
enum F {
    Syn,
    SynAck,
    Ack,
    Fin,
    Rst,
}

fn segment(
    mac: [u8; 6],
    (s, sp): ([u8; 4], u16),
    (d, dp): ([u8; 4], u16),
    f: F,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(mac, [0xff; 6])
        .ipv4(s, d, 64)
        .tcp(sp, dp, 1000, 64240);
    let b = match f {
        F::Syn => b.syn(),
        F::SynAck => b.syn().ack(1),
        F::Ack => b.ack(1),
        F::Fin => b.ack(1).fin(),
        F::Rst => b.ack(1).rst(),
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// The engine's output for `frame`.
fn engine(d: &mut Director, now: Instant, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let head = 128;
    let mut buf = vec![0u8; head + frame.len() + 64];
    buf[head..head + frame.len()].copy_from_slice(frame);
    let mut f = Frame::new(&mut buf, head, frame.len()).unwrap();
    f.set_csum(CsumStatus::Complete);
    let v = d.handle(now, port, &mut f);
    (v, f.data().to_vec())
}

fn fast_path() -> FastPath {
    FastPath::new(
        rvs_sys::xdp::FastPath::load().expect("loading the XDP program (needs root)"),
        vec![101, 102],
    )
}

fn differential(method: ForwardMethod) {
    let mut d = director(method);
    let mut fp = fast_path();
    let now = Instant(1_000_000_000);
    let c = (CLIENT, 40000);
    let v = (VIP, 80);
    // The handshake and first request through the engine, as the worker would, with the
    // hook seeing each forwarded segment.
    let through = |d: &mut Director, fp: &mut FastPath, port, frame: Vec<u8>| {
        let seg = peek(&frame);
        let (verdict, out) = engine(d, now, port, &frame);
        if let (Verdict::Transmit(_), Some((seg, flags))) = (verdict, seg) {
            fp.forwarded(d, now, seg, flags);
        }
        (verdict, out)
    };
    let (_, out) = through(&mut d, &mut fp, PUB, segment(CLIENT_MAC, c, v, F::Syn, b""));
    // The real server's side of the connection: its address and port as it sees them.
    let local = (
        [out[26], out[27], out[28], out[29]],
        u16::from_be_bytes([out[34], out[35]]),
    );
    // Direct routing's and tunnels' replies do not cross the director.
    let dr = matches!(
        method,
        ForwardMethod::DirectRoute | ForwardMethod::Tunnel { .. }
    );
    let rs = (RS, if dr { 80 } else { 8080 });
    if !dr {
        through(
            &mut d,
            &mut fp,
            PRIV,
            segment(RS_MAC, rs, local, F::SynAck, b""),
        );
    }
    assert!(fp.v4.flows.is_empty(), "not offloaded before ESTABLISHED");
    for i in 0..OFFLOAD_AFTER {
        assert!(
            fp.v4.flows.is_empty(),
            "not offloaded after {i} client segments"
        );
        through(
            &mut d,
            &mut fp,
            PUB,
            segment(CLIENT_MAC, c, v, F::Ack, b"GET / HTTP/1.1\r\n\r\n"),
        );
    }
    assert_eq!(
        fp.v4.flows.len(),
        1,
        "offloaded after OFFLOAD_AFTER client segments"
    );
    assert!(fp.v4.pending.is_empty());

    // The same segments through the program and through the engine, byte for byte.
    let cases = [
        (
            PUB,
            segment(CLIENT_MAC, c, v, F::Ack, b"GET /again HTTP/1.1\r\n\r\n"),
            102,
        ),
        (PRIV, segment(RS_MAC, rs, local, F::Ack, &[b'x'; 1400]), 101),
        (PUB, segment(CLIENT_MAC, c, v, F::Ack, b""), 102),
        (
            PRIV,
            segment(RS_MAC, rs, local, F::Ack, b"HTTP/1.1 200 OK\r\n\r\n"),
            101,
        ),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(port, _, _)| !dr || *port == PUB)
        .collect();
    for (i, (port, frame, ifindex)) in cases.iter().cloned().enumerate() {
        let (action, fast) = fp.shared.xdp.run(&frame).unwrap();
        assert_eq!(
            action,
            rvs_sys::xdp::XDP_REDIRECT,
            "case {i}: redirected to ifindex {ifindex}"
        );
        let (verdict, slow) = engine(&mut d, now, port, &frame);
        let out_port = if ifindex == 101 { PUB } else { PRIV };
        assert_eq!(verdict, Verdict::Transmit(out_port), "case {i}");
        assert_eq!(
            fast, slow,
            "case {i}: the program's frame differs from the engine's"
        );
    }

    // What the program must leave to the engine passes unchanged.
    let mut options = segment(CLIENT_MAC, c, v, F::Ack, b"x");
    options[14] = 0x46; // a 24-byte IP header: the segment is not parsed as the flow's
    let mut fragment = segment(CLIENT_MAC, c, v, F::Ack, b"x");
    fragment[20] |= 0x20; // more fragments
    let mut partial = segment(CLIENT_MAC, c, v, F::Ack, b"partial");
    // A local sender's offloaded checksum: the pseudo-header sum only.
    let len = (partial.len() - 34) as u32;
    let w = |b: &[u8], at: usize| u32::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let mut sum = w(&partial, 26) + w(&partial, 28) + w(&partial, 30) + w(&partial, 32) + 6 + len;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    partial[50..52].copy_from_slice(&(sum as u16).to_be_bytes());
    let pass = [
        ("SYN", segment(CLIENT_MAC, c, v, F::Syn, b"")),
        ("FIN", segment(CLIENT_MAC, c, v, F::Fin, b"")),
        ("RST", segment(RS_MAC, rs, local, F::Rst, b"")),
        ("IP options", options),
        ("fragment", fragment),
        ("partial checksum", partial),
        (
            "unknown flow",
            segment(CLIENT_MAC, (CLIENT, 40001), v, F::Ack, b"x"),
        ),
    ];
    for (what, frame) in pass {
        let (action, out) = fp.shared.xdp.run(&frame).unwrap();
        assert_eq!(action, rvs_sys::xdp::XDP_PASS, "{what}");
        assert_eq!(out, frame, "{what}: passed unchanged");
    }
    let totals = fp.shared.xdp.totals().unwrap();
    assert_eq!(
        (totals.frames, totals.partial_csum),
        (cases.len() as u64, 1)
    );

    // The client's FIN through the engine removes both entries.
    through(&mut d, &mut fp, PUB, segment(CLIENT_MAC, c, v, F::Fin, b""));
    assert!(fp.v4.flows.is_empty() && fp.v4.outward.is_empty());
    let (action, _) = fp
        .shared
        .xdp
        .run(&segment(RS_MAC, rs, local, F::Ack, b"late"))
        .unwrap();
    assert_eq!(action, rvs_sys::xdp::XDP_PASS, "no entry after the FIN");
}

#[test]
fn nat_program_output_is_the_engines() {
    differential(ForwardMethod::Masq);
}

#[test]
fn fullnat_program_output_is_the_engines() {
    differential(ForwardMethod::FullNat);
}

#[test]
fn direct_routing_program_output_is_the_engines() {
    differential(ForwardMethod::DirectRoute);
}

/// TUN over IPIP: the program grows the frame (`bpf_xdp_adjust_head`) and writes the outer
/// IPv4 header the engine writes, byte for byte. Tested differentially only: this kernel
/// has no ipip module, so no real server here could decapsulate (docs/xdp.md).
#[test]
fn ipip_tunnel_program_output_is_the_engines() {
    differential(ForwardMethod::Tunnel {
        kind: rvs_core::model::TunnelKind::Ipip,
        csum: rvs_core::model::TunnelCsum::NoCsum,
    });
}

/// A tunnelled segment too big for the egress MTU once encapsulated passes to the engine
/// (which answers "fragmentation needed" for DF, as `ip_vs_tunnel_xmit()`).
#[test]
fn ipip_tunnel_too_big_passes() {
    let mut d = director(ForwardMethod::Tunnel {
        kind: rvs_core::model::TunnelKind::Ipip,
        csum: rvs_core::model::TunnelCsum::NoCsum,
    });
    let mut fp = fast_path();
    let now = Instant(1_000_000_000);
    let c = (CLIENT, 40000);
    let v = (VIP, 80);
    for f in std::iter::once(F::Syn).chain(std::iter::repeat_n(F::Ack, OFFLOAD_AFTER.into())) {
        let frame = segment(CLIENT_MAC, c, v, f, b"x");
        let seg = peek(&frame);
        let (verdict, _) = engine(&mut d, now, PUB, &frame);
        if let (Verdict::Transmit(_), Some((seg, flags))) = (verdict, seg) {
            fp.forwarded(&mut d, now, seg, flags);
        }
    }
    assert_eq!(fp.v4.flows.len(), 1, "offloaded");
    // 1,480 bytes of IP fit (1,500 with the outer header); 1,481 do not.
    let fits = segment(CLIENT_MAC, c, v, F::Ack, &[b'y'; 1480 - 40]);
    let big = segment(CLIENT_MAC, c, v, F::Ack, &[b'y'; 1481 - 40]);
    let (action, fast) = fp.shared.xdp.run(&fits).unwrap();
    assert_eq!(action, rvs_sys::xdp::XDP_REDIRECT);
    assert_eq!(fast.len(), fits.len() + 20);
    let (action, out) = fp.shared.xdp.run(&big).unwrap();
    assert_eq!(action, rvs_sys::xdp::XDP_PASS, "too big: the engine's");
    assert_eq!(out, big);
}

/// After a takeover (the engine owns addresses it did not at the last look), the walk
/// installs a connection the old master synced, and the program then rewrites its
/// segments as the engine does; one created here is left to the 8-segment rule.
#[test]
fn a_synced_connection_is_installed_after_a_takeover() {
    use rvs_core::sync::{SyncConn, flags};
    let mut d = director(ForwardMethod::Masq);
    let mut fp = fast_path();
    let now = Instant(1_000_000_000);
    let rec = SyncConn {
        protocol: 6,
        flags: flags::MASQ,
        state: rvs_core::conn::state::TcpState::Established as u16,
        cport: 40002,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: ip(CLIENT),
        vaddr: ip(VIP),
        daddr: ip(RS),
        seq: None,
        pe_data: None,
        pe_name: None,
        local: None,
    };
    d.sync_import(now, &rec)
        .expect("the backup takes the record");
    // The first look sees the owned addresses appear: the walk runs.
    fp.fold(&mut d, now, true);
    assert_eq!(fp.v4.flows.len(), 1, "installed by the walk");
    let c = (CLIENT, 40002);
    let v = (VIP, 80);
    let frame = segment(CLIENT_MAC, c, v, F::Ack, b"after the takeover");
    let (action, fast) = fp.shared.xdp.run(&frame).unwrap();
    assert_eq!(action, rvs_sys::xdp::XDP_REDIRECT);
    let (verdict, slow) = engine(&mut d, now, PUB, &frame);
    assert_eq!(verdict, Verdict::Transmit(PRIV));
    assert_eq!(fast, slow, "the program's frame differs from the engine's");
    let reply = segment(RS_MAC, (RS, 8080), c, F::Ack, b"reply");
    let (action, fast) = fp.shared.xdp.run(&reply).unwrap();
    assert_eq!(action, rvs_sys::xdp::XDP_REDIRECT);
    let (_, slow) = engine(&mut d, now, PRIV, &reply);
    assert_eq!(
        fast, slow,
        "reply: the program's frame differs from the engine's"
    );
    // Nothing new owned: no walk, and a synced connection imported now goes to the map
    // with its first client segment through the engine (no 8-segment delay).
    d.sync_import(
        now,
        &SyncConn {
            cport: 40003,
            ..rec
        },
    )
    .unwrap();
    fp.fold(&mut d, now, true);
    assert_eq!(fp.v4.flows.len(), 1, "no walk without a takeover");
    let first = segment(CLIENT_MAC, (CLIENT, 40003), v, F::Ack, b"x");
    let seg = peek(&first);
    let (verdict, _) = engine(&mut d, now, PUB, &first);
    assert_eq!(verdict, Verdict::Transmit(PRIV));
    let (seg, fl) = seg.unwrap();
    fp.forwarded(&mut d, now, seg, fl);
    assert_eq!(fp.v4.flows.len(), 2, "installed with its first segment");
}

const CLIENT6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const VIP6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const RS6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];

fn ip6(last: u16, net: u16) -> IpAddr {
    IpAddr::from([0x2001, 0xdb8, net, 0, 0, 0, 0, last])
}

/// [`director`] over IPv6 (the same layout: 2001:db8:1::/64 public, 2001:db8:2::/64
/// private).
fn director6(method: ForwardMethod) -> Director {
    let prefix = |a: IpAddr| Prefix { addr: a, len: 64 };
    let net = NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: PUB_MAC,
                addrs: vec![prefix(ip6(2, 1))],
                mtu: 1500,
            },
            PortConfig {
                id: PRIV,
                mac: PRIV_MAC,
                addrs: vec![prefix(ip6(1, 2))],
                mtu: 1500,
            },
        ],
        routes: vec![],
        owned: vec![
            OwnedAddr {
                addr: IpAddr::from(VIP6),
                port: PUB,
                mac: None,
            },
            OwnedAddr {
                addr: ip6(0x254, 2),
                port: PRIV,
                mac: None,
            },
        ],
    };
    let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::from(VIP6),
        port: 80,
    });
    svc.scheduler = SchedulerKind::Rr;
    let port = if method == ForwardMethod::DirectRoute {
        80
    } else {
        8080
    };
    let mut r = RealServerConfig::new(IpAddr::from(RS6), port);
    r.method = method;
    svc.real_servers.push(r);
    let cfg = Config {
        services: vec![svc],
        local_pool: LocalPool {
            addrs: vec![ip6(0x250, 2)],
            port_range: (20000, 20999),
        },
        ..Config::default()
    };
    let mut d = Director::new(net, &cfg, DirectorSettings::default()).expect("valid config");
    d.learn_neighbor(IpAddr::from(CLIENT6), CLIENT_MAC, Instant(0));
    d.learn_neighbor(IpAddr::from(RS6), RS_MAC, Instant(0));
    d
}

fn segment6(
    mac: [u8; 6],
    (s, sp): ([u8; 16], u16),
    (d, dp): ([u8; 16], u16),
    f: F,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(mac, [0xff; 6])
        .ipv6(s, d, 64)
        .tcp(sp, dp, 1000, 64240);
    let b = match f {
        F::Syn => b.syn(),
        F::SynAck => b.syn().ack(1),
        F::Ack => b.ack(1),
        F::Fin => b.ack(1).fin(),
        F::Rst => b.ack(1).rst(),
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// [`differential`] over IPv6: the same connection through the engine until it is
/// offloaded, then the same segments through the program and the engine, byte for byte;
/// what the program must leave to the engine passes unchanged.
fn differential6(method: ForwardMethod) {
    let mut d = director6(method);
    let mut fp = fast_path();
    let now = Instant(1_000_000_000);
    let c = (CLIENT6, 40000);
    let v = (VIP6, 80);
    let through = |d: &mut Director, fp: &mut FastPath, port, frame: Vec<u8>| {
        let seg = peek(&frame);
        assert!(
            matches!(seg, Some((Seg::V6(6, _), _))),
            "peeked as IPv6 TCP"
        );
        let (verdict, out) = engine(d, now, port, &frame);
        if let (Verdict::Transmit(_), Some((seg, flags))) = (verdict, seg) {
            fp.forwarded(d, now, seg, flags);
        }
        (verdict, out)
    };
    let (verdict, out) = through(
        &mut d,
        &mut fp,
        PUB,
        segment6(CLIENT_MAC, c, v, F::Syn, b""),
    );
    assert_eq!(verdict, Verdict::Transmit(PRIV), "the SYN is forwarded");
    let local: ([u8; 16], u16) = (
        out[22..38].try_into().unwrap(),
        u16::from_be_bytes([out[54], out[55]]),
    );
    let dr = method == ForwardMethod::DirectRoute;
    let rs = (RS6, if dr { 80 } else { 8080 });
    if !dr {
        through(
            &mut d,
            &mut fp,
            PRIV,
            segment6(RS_MAC, rs, local, F::SynAck, b""),
        );
    }
    for _ in 0..OFFLOAD_AFTER {
        assert!(fp.v6.flows.is_empty());
        through(
            &mut d,
            &mut fp,
            PUB,
            segment6(CLIENT_MAC, c, v, F::Ack, b"GET / HTTP/1.1\r\n\r\n"),
        );
    }
    assert_eq!(
        fp.v6.flows.len(),
        1,
        "offloaded after OFFLOAD_AFTER segments"
    );
    assert!(fp.v4.flows.is_empty());
    let cases = [
        (
            PUB,
            segment6(CLIENT_MAC, c, v, F::Ack, b"GET /again HTTP/1.1\r\n\r\n"),
        ),
        (PRIV, segment6(RS_MAC, rs, local, F::Ack, &[b'x'; 1400])),
        (PUB, segment6(CLIENT_MAC, c, v, F::Ack, b"")),
        (
            PRIV,
            segment6(RS_MAC, rs, local, F::Ack, b"HTTP/1.1 200 OK\r\n\r\n"),
        ),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(port, _)| !dr || *port == PUB)
        .collect();
    for (i, (port, frame)) in cases.iter().cloned().enumerate() {
        let (action, fast) = fp.shared.xdp.run(&frame).unwrap();
        assert_eq!(action, rvs_sys::xdp::XDP_REDIRECT, "case {i}");
        let (verdict, slow) = engine(&mut d, now, port, &frame);
        let out_port = if port == PUB { PRIV } else { PUB };
        assert_eq!(verdict, Verdict::Transmit(out_port), "case {i}");
        assert_eq!(
            fast, slow,
            "case {i}: the program's frame differs from the engine's"
        );
    }
    // An extension header (hop-by-hop options) before TCP: passed, as is a fragment
    // header, a checksum-partial segment, SYN/FIN/RST and an unknown flow.
    let with_ext = |nh: u8| {
        let base = segment6(CLIENT_MAC, c, v, F::Ack, b"ext");
        let mut f = base[..54].to_vec();
        f[20] = nh;
        let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
        f[18..20].copy_from_slice(&plen.to_be_bytes());
        f.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&base[54..]);
        f
    };
    let mut partial = segment6(CLIENT_MAC, c, v, F::Ack, b"partial");
    let len = (partial.len() - 54) as u32;
    let w = |b: &[u8], at: usize| u32::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let mut sum = (22..54).step_by(2).map(|i| w(&partial, i)).sum::<u32>() + 6 + len;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    partial[70..72].copy_from_slice(&(sum as u16).to_be_bytes());
    let pass = [
        ("SYN", segment6(CLIENT_MAC, c, v, F::Syn, b"")),
        ("FIN", segment6(CLIENT_MAC, c, v, F::Fin, b"")),
        ("RST", segment6(CLIENT_MAC, c, v, F::Rst, b"")),
        ("hop-by-hop options", with_ext(0)),
        ("fragment header", with_ext(44)),
        ("partial checksum", partial),
        (
            "unknown flow",
            segment6(CLIENT_MAC, (CLIENT6, 40001), v, F::Ack, b"x"),
        ),
    ];
    for (what, frame) in pass {
        let (action, out) = fp.shared.xdp.run(&frame).unwrap();
        assert_eq!(action, rvs_sys::xdp::XDP_PASS, "{what}");
        assert_eq!(out, frame, "{what}: passed unchanged");
    }
    let totals = fp.shared.xdp.totals().unwrap();
    assert_eq!(
        (totals.frames, totals.partial_csum),
        (cases.len() as u64, 1)
    );
    // The folded counts reach the listing: IP bytes as the engine counts them.
    let svc_before = d.services().iter().next().unwrap().1.stats.inbytes;
    fp.fold(&mut d, now, true);
    let svc_after = d.services().iter().next().unwrap().1.stats.inbytes;
    let fast_in: u64 = cases
        .iter()
        .filter(|(p, _)| *p == PUB)
        .map(|(_, f)| (f.len() - 14) as u64)
        .sum();
    assert_eq!(
        svc_after - svc_before,
        fast_in,
        "the program's inward bytes folded"
    );
    // The client's FIN through the engine removes the entries.
    through(
        &mut d,
        &mut fp,
        PUB,
        segment6(CLIENT_MAC, c, v, F::Fin, b""),
    );
    assert!(fp.v6.flows.is_empty() && fp.v6.outward.is_empty());
    let (action, _) = fp
        .shared
        .xdp
        .run(&segment6(CLIENT_MAC, c, v, F::Ack, b"late"))
        .unwrap();
    assert_eq!(action, rvs_sys::xdp::XDP_PASS, "no entry after the FIN");
}

#[test]
fn ipv6_nat_program_output_is_the_engines() {
    differential6(ForwardMethod::Masq);
}

#[test]
fn ipv6_fullnat_program_output_is_the_engines() {
    differential6(ForwardMethod::FullNat);
}

#[test]
fn ipv6_direct_routing_program_output_is_the_engines() {
    differential6(ForwardMethod::DirectRoute);
}

/// A UDP datagram (checksum computed; `zero`: no checksum, IPv4's 0).
fn datagram(
    mac: [u8; 6],
    (s, sp): ([u8; 4], u16),
    (d, dp): ([u8; 4], u16),
    payload: &[u8],
    zero: bool,
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(mac, [0xff; 6])
        .ipv4(s, d, 64)
        .udp(sp, dp)
        .write(&mut v, payload)
        .unwrap();
    if zero {
        v[40..42].copy_from_slice(&[0, 0]);
    }
    v
}

/// UDP over IPv4: a NAT or FullNAT connection is offloaded once it carried
/// `OFFLOAD_AFTER` client datagrams and a reply (direct routing: the client's datagrams
/// alone); then the program leaves each datagram as the engine does, byte for byte, a
/// checksum-less one (0) included; fragments, checksum-partial datagrams and unknown flows
/// pass.
fn differential_udp(method: ForwardMethod) {
    let mut d = director_for(method, Protocol::Udp);
    let mut fp = fast_path();
    let now = Instant(1_000_000_000);
    let c = (CLIENT, 40000);
    let v = (VIP, 80);
    let through = |d: &mut Director, fp: &mut FastPath, port, frame: Vec<u8>| {
        let seg = peek(&frame);
        assert!(matches!(seg, Some((Seg::V4(17, _), 0))), "peeked as UDP");
        let (verdict, out) = engine(d, now, port, &frame);
        if let (Verdict::Transmit(_), Some((seg, flags))) = (verdict, seg) {
            fp.forwarded(d, now, seg, flags);
        }
        (verdict, out)
    };
    let dr = method == ForwardMethod::DirectRoute;
    let rs = (RS, if dr { 80 } else { 8080 });
    let mut local = None;
    for i in 0..OFFLOAD_AFTER {
        assert!(fp.v4.flows.is_empty(), "not offloaded after {i} datagrams");
        let (verdict, out) = through(
            &mut d,
            &mut fp,
            PUB,
            datagram(CLIENT_MAC, c, v, b"q", false),
        );
        assert_eq!(verdict, Verdict::Transmit(PRIV));
        local = Some((
            [out[26], out[27], out[28], out[29]],
            u16::from_be_bytes([out[34], out[35]]),
        ));
    }
    let local = local.unwrap();
    if dr {
        assert_eq!(
            fp.v4.flows.len(),
            1,
            "direct routing: the client's datagrams suffice"
        );
    } else {
        assert!(fp.v4.flows.is_empty(), "NAT: not before a reply");
        through(
            &mut d,
            &mut fp,
            PRIV,
            datagram(RS_MAC, rs, local, b"a", false),
        );
        assert_eq!(fp.v4.flows.len(), 1, "offloaded once both ways were seen");
    }
    let cases = [
        (PUB, datagram(CLIENT_MAC, c, v, b"query again", false)),
        (PRIV, datagram(RS_MAC, rs, local, &[b'x'; 1400], false)),
        (PUB, datagram(CLIENT_MAC, c, v, b"no checksum", true)),
        (
            PRIV,
            datagram(RS_MAC, rs, local, b"no checksum either", true),
        ),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(port, _)| !dr || *port == PUB)
        .collect();
    for (i, (port, frame)) in cases.iter().cloned().enumerate() {
        let (action, fast) = fp.shared.xdp.run(&frame).unwrap();
        assert_eq!(action, rvs_sys::xdp::XDP_REDIRECT, "case {i}");
        let (verdict, slow) = engine(&mut d, now, port, &frame);
        let out_port = if port == PUB { PRIV } else { PUB };
        assert_eq!(verdict, Verdict::Transmit(out_port), "case {i}");
        assert_eq!(
            fast, slow,
            "case {i}: the program's frame differs from the engine's"
        );
    }
    let mut fragment = datagram(CLIENT_MAC, c, v, b"x", false);
    fragment[20] |= 0x20;
    let mut partial = datagram(CLIENT_MAC, c, v, b"partial", false);
    let len = (partial.len() - 34) as u32;
    let w = |b: &[u8], at: usize| u32::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let mut sum = w(&partial, 26) + w(&partial, 28) + w(&partial, 30) + w(&partial, 32) + 17 + len;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    partial[40..42].copy_from_slice(&(sum as u16).to_be_bytes());
    let pass = [
        ("fragment", fragment),
        ("partial checksum", partial),
        (
            "unknown flow",
            datagram(CLIENT_MAC, (CLIENT, 40001), v, b"x", false),
        ),
        // The same ports over TCP: another protocol's key.
        ("TCP", segment(CLIENT_MAC, c, v, F::Ack, b"x")),
    ];
    for (what, frame) in pass {
        let (action, out) = fp.shared.xdp.run(&frame).unwrap();
        assert_eq!(action, rvs_sys::xdp::XDP_PASS, "{what}");
        assert_eq!(out, frame, "{what}: passed unchanged");
    }
    // The fold counts the program's datagrams and keeps the connection.
    let before = d.services().iter().next().unwrap().1.stats.inpkts;
    fp.fold(&mut d, Instant(2_000_000_000), true);
    let after = d.services().iter().next().unwrap().1.stats.inpkts;
    let fast_in = cases.iter().filter(|(p, _)| *p == PUB).count() as u64;
    assert_eq!(after - before, fast_in);
    assert_eq!(fp.v4.flows.len(), 1, "still offloaded");
}

#[test]
fn udp_nat_program_output_is_the_engines() {
    differential_udp(ForwardMethod::Masq);
}

#[test]
fn udp_fullnat_program_output_is_the_engines() {
    differential_udp(ForwardMethod::FullNat);
}

#[test]
fn udp_direct_routing_program_output_is_the_engines() {
    differential_udp(ForwardMethod::DirectRoute);
}

/// The fold's cost with many offloaded connections (printed for docs/xdp.md, "Batched
/// folds"): `n` established NAT connections imported as a backup would (sync records),
/// installed by the takeover walk, then folded with the batched read and with one lookup
/// per entry; both keep every connection and fold the same counts.
#[test]
fn fold_cost_with_many_offloaded_connections() {
    use rvs_core::sync::{SyncConn, flags};
    for n in [10_000usize, 30_000] {
        let mut d = director(ForwardMethod::Masq);
        let mut fp = fast_path();
        let now = Instant(1_000_000_000);
        for i in 0..n {
            let rec = SyncConn {
                protocol: 6,
                flags: flags::MASQ,
                state: rvs_core::conn::state::TcpState::Established as u16,
                cport: 10_000 + i as u16,
                vport: 80,
                dport: 8080,
                fwmark: 0,
                timeout: 900,
                caddr: ip(CLIENT),
                vaddr: ip(VIP),
                daddr: ip(RS),
                seq: None,
                pe_data: None,
                pe_name: None,
                local: None,
            };
            // The table grows with memory the daemon's provisioner would build.
            let mut tries = 0;
            while let Err(e) = d.sync_import(now, &rec) {
                tries += 1;
                assert!(tries < 1000, "imported: {e:?}");
                match d.table_needs().0 {
                    Some(need) => {
                        let _ = d.provide_v4(rvs_core::conn::table::Provision::build(need));
                    }
                    None => {
                        d.expire(now);
                    }
                }
            }
        }
        // The walk installs them, SWEEP_SLOTS table slots per round.
        for _ in 0..(n / SWEEP_SLOTS + 4) {
            fp.fold(&mut d, now, false);
        }
        assert_eq!(fp.v4.flows.len(), n, "every connection installed");
        let mut times = Vec::new();
        for per_entry in [false, true, false] {
            fp.v4.no_batch = per_entry;
            let t = std::time::Instant::now();
            fp.fold(&mut d, Instant(2_000_000_000), true);
            times.push((per_entry, t.elapsed()));
            assert_eq!(fp.v4.flows.len(), n, "the fold keeps them");
        }
        let inpkts = d.services().iter().next().unwrap().1.stats.inpkts;
        assert_eq!(inpkts, 0, "nothing hit the program: nothing folded");
        eprintln!(
            "fold of {n} offloaded connections ({} map entries): {}",
            2 * n,
            times
                .iter()
                .map(|(p, t)| format!("{} {t:?}", if *p { "one lookup each" } else { "batched" }))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
