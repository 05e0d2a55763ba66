//! A seeded simulation of many clients through the director (in the manner of smoltcp's
//! `tests/netsim.rs`): tens of thousands of TCP connections to NAT virtual services, a UDP
//! service and a persistent service, driven by a simulated clock, with `expire` run as time
//! passes. Every forwarded frame is re-parsed by etherparse (an independent parser) and its
//! IPv4 and L4 checksums verified; the run is summarised as text and compared with a
//! committed insta snapshot, and the invariants that must hold whatever the numbers are
//! asserted directly.
//!
//! Lab topology (as the data-plane benchmark): port 0 public (director 10.1.0.2/16, VIP
//! 10.1.0.100), port 1 private (director 10.2.0.1/24, NAT floating IP 10.2.0.254), real
//! servers 10.2.0.x, clients 10.1.x.y, every neighbour pre-learned so nothing parks.

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use rvs_core::director::{
    Director, DirectorSettings, DropReason, NetConfig, OwnedAddr, PortConfig, PortId, Verdict,
};
use rvs_core::model::{
    Config, ForwardMethod, Persistence, Prefix, Protocol, RealServerConfig, SchedulerKind,
    ServiceKey, VirtualServiceConfig,
};
use rvs_core::time::Instant;
use rvs_core::wire::Frame;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

// ---- topology ----

const PUB: PortId = PortId(0);
const PRIV: PortId = PortId(1);
const PUB_MAC: [u8; 6] = [0x02, 0xd1, 0, 0, 0, 0x01];
const PRIV_MAC: [u8; 6] = [0x02, 0xd1, 0, 0, 0, 0x02];
const VIP: [u8; 4] = [10, 1, 0, 100];

/// The MAC of a host, derived from its address (clients and real servers alike).
fn host_mac(a: [u8; 4]) -> [u8; 6] {
    [0x02, 0x42, a[0], a[1], a[2], a[3]]
}

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn net() -> NetConfig {
    let pfx = |a: [u8; 4], len| Prefix { addr: ip(a), len };
    NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: PUB_MAC,
                addrs: vec![pfx([10, 1, 0, 2], 16)],
                mtu: 1500,
            },
            PortConfig {
                id: PRIV,
                mac: PRIV_MAC,
                addrs: vec![pfx([10, 2, 0, 1], 24)],
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
    }
}

/// The four virtual services of the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Svc {
    /// TCP VIP:80, wlc, 8 NAT real servers with weights 1..4, port 80 → 8080.
    Web,
    /// TCP VIP:443, wrr, 4 NAT real servers with weights 1, 2, 3, 4.
    Shop,
    /// UDP VIP:53, rr, 3 NAT real servers.
    Dns,
    /// TCP VIP:8000, wlc with persistence 600 s over /24, 4 NAT real servers.
    App,
}

impl Svc {
    fn proto(self) -> Protocol {
        if self == Svc::Dns {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }

    fn vport(self) -> u16 {
        match self {
            Svc::Web => 80,
            Svc::Shop => 443,
            Svc::Dns => 53,
            Svc::App => 8000,
        }
    }

    /// (address, port, weight) of each real server.
    fn real_servers(self) -> Vec<([u8; 4], u16, u32)> {
        match self {
            Svc::Web => (0..8u8)
                .map(|i| ([10, 2, 0, 11 + i], 8080, u32::from(i % 4) + 1))
                .collect(),
            Svc::Shop => (0..4u8)
                .map(|i| ([10, 2, 0, 21 + i], 443, u32::from(i) + 1))
                .collect(),
            Svc::Dns => (0..3u8).map(|i| ([10, 2, 0, 31 + i], 53, 1)).collect(),
            Svc::App => (0..4u8).map(|i| ([10, 2, 0, 41 + i], 8000, 1)).collect(),
        }
    }

    fn config(self) -> VirtualServiceConfig {
        let mut s = VirtualServiceConfig::new(ServiceKey::Addr {
            protocol: self.proto(),
            addr: ip(VIP),
            port: self.vport(),
        });
        s.scheduler = match self {
            Svc::Web | Svc::App => SchedulerKind::Wlc,
            Svc::Shop => SchedulerKind::Wrr,
            Svc::Dns => SchedulerKind::Rr,
        };
        if self == Svc::App {
            s.persistence = Some(Persistence {
                timeout: 600,
                prefix: 24,
            });
        }
        s.real_servers = self
            .real_servers()
            .into_iter()
            .map(|(a, port, weight)| RealServerConfig {
                weight,
                method: ForwardMethod::Masq,
                ..RealServerConfig::new(ip(a), port)
            })
            .collect();
        s
    }
}

const SERVICES: [Svc; 4] = [Svc::Web, Svc::Shop, Svc::Dns, Svc::App];

// ---- the seeded PRNG ----

/// splitmix64: small, seedable, good enough to draw a workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `pct` percent.
    fn pct(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

// ---- the workload ----

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;

/// Seconds → milliseconds of simulated time.
const S: u64 = 1000;
/// The simulation ends here.
const T_END: u64 = 1800 * S;
/// Clients arrive during the first 300 s.
const ARRIVALS: u64 = 300 * S;

/// What a flow does in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    /// Client closes (FIN first): TIME_WAIT on the director.
    ClientClose,
    /// Real server closes first: TIME_WAIT too.
    ServerClose,
    /// Client resets: CLOSE.
    Reset,
    /// Client vanishes mid-connection: ESTABLISHED until its 900 s timeout.
    Abandoned,
    /// SYN never answered: SYN_RECV until its 60 s timeout.
    Unanswered,
    /// Keeps the connection open with data every few minutes until the end.
    LongLived,
    /// UDP exchanges.
    Datagrams,
    /// A stray non-SYN segment to the VIP that opens nothing (a deliberate not_syn drop).
    Probe,
}

/// One client flow (one client address and port).
struct Flow {
    svc: Svc,
    fate: Fate,
    caddr: [u8; 4],
    cport: u16,
    cseq: u32,
    sseq: u32,
    /// The real server (address, port) the director picked for the current connection.
    rs: Option<([u8; 4], u16)>,
}

/// Who sends a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    Client,
    Server,
}

/// What the director must do with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Forward,
    /// Dropped as not_syn (no connection, not a SYN).
    NotSyn,
    /// Forwarded as the first packet of a new connection (UDP after its entry expired):
    /// the real server may change.
    NewSession,
}

/// One segment of a flow at a point in simulated time.
#[derive(Debug, Clone, Copy)]
struct Event {
    at: u64,
    flow: u32,
    step: u16,
    from: From,
    flags: u8,
    len: u16,
    expect: Expect,
}

/// Plans a flow's segments at absolute times.
struct Plan<'a> {
    events: &'a mut Vec<Event>,
    flow: u32,
    step: u16,
    at: u64,
}

impl Plan<'_> {
    fn push(&mut self, gap: u64, from: From, flags: u8, len: u16, expect: Expect) {
        self.at += gap.max(1);
        self.events.push(Event {
            at: self.at,
            flow: self.flow,
            step: self.step,
            from,
            flags,
            len,
            expect,
        });
        self.step += 1;
    }

    fn c(&mut self, gap: u64, flags: u8, len: u16) {
        self.push(gap, From::Client, flags, len, Expect::Forward);
    }

    fn s(&mut self, gap: u64, flags: u8, len: u16) {
        self.push(gap, From::Server, flags, len, Expect::Forward);
    }
}

/// Counts of clients per service.
const WEB_CLIENTS: u32 = 20_000;
const SHOP_CLIENTS: u32 = 2_000;
const DNS_CLIENTS: u32 = 2_000;
const APP_CLIENTS: u32 = 1_600;
const PROBES: u32 = 200;

fn plan_tcp(rng: &mut Rng, p: &mut Plan<'_>, fate: Fate, late_acks: &mut u32) {
    let rtt = rng.range(1, 40);
    p.c(0, SYN, 0);
    if fate == Fate::Unanswered {
        return;
    }
    p.s(rtt, SYN | ACK, 0);
    p.c(rtt, ACK, 0);
    let exchanges = rng.range(0, 3);
    for _ in 0..exchanges {
        p.c(rng.range(1, 5 * S), PSH | ACK, rng.range(40, 600) as u16);
        p.s(rng.range(1, 200), PSH | ACK, rng.range(100, 1400) as u16);
        p.c(rtt, ACK, 0);
    }
    match fate {
        Fate::ClientClose => {
            p.c(rng.range(1, 2 * S), FIN | ACK, 0);
            p.s(rtt, ACK, 0);
            p.s(rng.range(1, 50), FIN | ACK, 0);
            p.c(rtt, ACK, 0);
            // Some retransmit their last ACK while the director still holds TIME_WAIT (it is
            // forwarded), and some again long after the entry timed out (not_syn).
            if rng.pct(5) {
                p.c(rng.range(10 * S, 60 * S), ACK, 0);
                if rng.pct(50) {
                    p.push(200 * S, From::Client, ACK, 0, Expect::NotSyn);
                    *late_acks += 1;
                }
            }
        }
        Fate::ServerClose => {
            p.s(rng.range(1, 2 * S), FIN | ACK, 0);
            p.c(rtt, ACK, 0);
            p.c(rng.range(1, 50), FIN | ACK, 0);
            p.s(rtt, ACK, 0);
        }
        Fate::Reset => p.c(rng.range(1, 2 * S), RST | ACK, 0),
        Fate::Abandoned => {}
        Fate::LongLived => {
            while p.at + 400 * S < T_END {
                p.c(
                    rng.range(100 * S, 240 * S),
                    PSH | ACK,
                    rng.range(20, 200) as u16,
                );
                p.s(rtt, ACK, 0);
            }
        }
        Fate::Unanswered | Fate::Datagrams | Fate::Probe => unreachable!(),
    }
}

fn pick_fate(rng: &mut Rng) -> Fate {
    match rng.range(0, 99) {
        0..=64 => Fate::ClientClose,
        65..=74 => Fate::ServerClose,
        75..=82 => Fate::Reset,
        83..=88 => Fate::Abandoned,
        89..=90 => Fate::Unanswered,
        _ => Fate::LongLived,
    }
}

struct Workload {
    flows: Vec<Flow>,
    events: Vec<Event>,
    not_syn_expected: u32,
}

fn workload(seed: u64) -> Workload {
    let mut rng = Rng(seed);
    let mut flows = Vec::new();
    let mut events = Vec::new();
    let mut late_acks = 0;
    let mut add = |rng: &mut Rng, svc: Svc, caddr: [u8; 4], fate: Fate, events: &mut Vec<_>| {
        let flow = flows.len() as u32;
        flows.push(Flow {
            svc,
            fate,
            caddr,
            cport: rng.range(1024, 65535) as u16,
            cseq: rng.next() as u32,
            sseq: rng.next() as u32,
            rs: None,
        });
        let at = rng.range(0, ARRIVALS);
        let mut p = Plan {
            events,
            flow,
            step: 0,
            at,
        };
        match fate {
            Fate::Probe => p.push(0, From::Client, ACK, 0, Expect::NotSyn),
            Fate::Datagrams => {
                for _ in 0..rng.range(1, 3) {
                    p.c(rng.range(1, 3 * S), 0, rng.range(30, 80) as u16);
                    p.s(rng.range(1, 20), 0, rng.range(60, 500) as u16);
                }
                // Some come back after the 300 s UDP timeout: a new connection.
                if rng.pct(20) {
                    let gap = rng.range(400 * S, 500 * S);
                    p.push(gap, From::Client, 0, 40, Expect::NewSession);
                    p.s(rng.range(1, 20), 0, 200);
                }
            }
            _ => plan_tcp(rng, &mut p, fate, &mut late_acks),
        }
    };
    // Clients 10.1.1.1 .. : 250 per /24.
    let addr = |i: u32, base: u32| {
        let n = base + i;
        [10, 1, (n / 250) as u8, (n % 250 + 1) as u8]
    };
    for i in 0..WEB_CLIENTS {
        let fate = pick_fate(&mut rng);
        add(&mut rng, Svc::Web, addr(i, 250), fate, &mut events);
    }
    for i in 0..SHOP_CLIENTS {
        let fate = pick_fate(&mut rng);
        add(&mut rng, Svc::Shop, addr(i, 250 * 90), fate, &mut events);
    }
    for i in 0..DNS_CLIENTS {
        add(
            &mut rng,
            Svc::Dns,
            addr(i, 250 * 110),
            Fate::Datagrams,
            &mut events,
        );
    }
    // Persistent clients: 32 /24s (10.1.140.0/24 .. 10.1.171.0/24), 50 clients in each.
    for i in 0..APP_CLIENTS {
        let fate = pick_fate(&mut rng);
        let caddr = [10, 1, 140 + (i % 32) as u8, (i / 32 + 1) as u8];
        add(&mut rng, Svc::App, caddr, fate, &mut events);
    }
    for i in 0..PROBES {
        let caddr = [10, 1, 250, (i + 1) as u8];
        add(&mut rng, Svc::Web, caddr, Fate::Probe, &mut events);
    }
    events.sort_by_key(|e| (e.at, e.flow, e.step));
    Workload {
        flows,
        events,
        not_syn_expected: late_acks + PROBES,
    }
}

// ---- frames ----

static PAYLOAD: [u8; 1500] = {
    let mut p = [0u8; 1500];
    let mut i = 0;
    while i < p.len() {
        p[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    p
};

#[allow(clippy::too_many_arguments)]
fn build(
    buf: &mut Vec<u8>,
    (smac, dmac): ([u8; 6], [u8; 6]),
    (src, sport): ([u8; 4], u16),
    (dst, dport): ([u8; 4], u16),
    proto: Protocol,
    seq: u32,
    ack: u32,
    flags: u8,
    len: u16,
) {
    buf.clear();
    let payload = &PAYLOAD[..usize::from(len)];
    let ipb = PacketBuilder::ethernet2(smac, dmac).ipv4(src, dst, 64);
    match proto {
        Protocol::Udp => ipb.udp(sport, dport).write(buf, payload).unwrap(),
        Protocol::Sctp => unreachable!("the simulation generates TCP and UDP only"),
        Protocol::Tcp => {
            let mut b = ipb.tcp(sport, dport, seq, 64240);
            if flags & SYN != 0 {
                b = b.syn();
            }
            if flags & ACK != 0 {
                b = b.ack(ack);
            }
            if flags & FIN != 0 {
                b = b.fin();
            }
            if flags & RST != 0 {
                b = b.rst();
            }
            if flags & PSH != 0 {
                b = b.psh();
            }
            b.write(buf, payload).unwrap()
        }
    }
}

/// What a forwarded frame says, after etherparse checked it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    smac: [u8; 6],
    dmac: [u8; 6],
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    flags: u8,
    payload: usize,
}

/// Ones' complement: 0x0000 and 0xffff are the same checksum (an incremental update may
/// produce either).
fn same_csum(a: u16, b: u16) -> bool {
    a == b || (a | b == 0xffff && (a == 0 || b == 0))
}

/// Parse a forwarded frame with etherparse and check its IPv4 header and L4 checksums.
fn inspect(frame: &[u8]) -> Seen {
    let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse parses the frame");
    let eth = h
        .link
        .clone()
        .and_then(|l| l.ethernet2())
        .expect("Ethernet II");
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let payload = h.payload.slice();
    let (sport, dport, flags) = match &h.transport {
        Some(TransportHeader::Tcp(t)) => {
            assert!(
                same_csum(t.checksum, t.calc_checksum_ipv4(ip, payload).unwrap()),
                "TCP checksum"
            );
            let f = u8::from(t.fin)
                | u8::from(t.syn) << 1
                | u8::from(t.rst) << 2
                | u8::from(t.psh) << 3
                | u8::from(t.ack) << 4;
            (t.source_port, t.destination_port, f)
        }
        Some(TransportHeader::Udp(u)) => {
            assert!(
                u.checksum == 0
                    || same_csum(u.checksum, u.calc_checksum_ipv4(ip, payload).unwrap()),
                "UDP checksum"
            );
            (u.source_port, u.destination_port, 0)
        }
        t => panic!("unexpected transport {t:?}"),
    };
    Seen {
        smac: eth.source,
        dmac: eth.destination,
        src: (ip.source, sport),
        dst: (ip.destination, dport),
        flags,
        payload: payload.len(),
    }
}

// ---- the run ----

/// Table and real-server figures at one instant.
struct Checkpoint {
    at: u64,
    entries: usize,
    templates: usize,
    states: BTreeMap<&'static str, usize>,
    active: u32,
    inactive: u32,
}

struct Sim {
    d: Director,
    w: Workload,
    buf: Vec<u8>,
    frames_checked: u64,
    /// Connections scheduled per real server, as seen on the wire.
    conns: BTreeMap<[u8; 4], u64>,
    /// The real server each persistent /24 went to.
    persist: BTreeMap<[u8; 3], [u8; 4]>,
    not_syn_seen: u32,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let config = Config {
            services: SERVICES.iter().map(|s| s.config()).collect(),
            ..Config::default()
        };
        // Every client is seeded as a permanent neighbour: room for all of them.
        let settings = DirectorSettings {
            neigh_gc_thresh3: 1 << 15,
            ..DirectorSettings::default()
        };
        let mut d = Director::new(net(), &config, settings).expect("config");
        let w = workload(seed);
        for s in SERVICES {
            for (a, _, _) in s.real_servers() {
                d.learn_neighbor(ip(a), host_mac(a), Instant::ZERO);
            }
        }
        for f in &w.flows {
            d.learn_neighbor(ip(f.caddr), host_mac(f.caddr), Instant::ZERO);
        }
        Sim {
            d,
            w,
            buf: Vec::with_capacity(2048),
            frames_checked: 0,
            conns: BTreeMap::new(),
            persist: BTreeMap::new(),
            not_syn_seen: 0,
        }
    }

    fn step(&mut self, ev: Event) {
        let now = Instant::from_millis(ev.at);
        let f = &mut self.w.flows[ev.flow as usize];
        let proto = f.svc.proto();
        let vip = (VIP, f.svc.vport());
        let client = (f.caddr, f.cport);
        if ev.expect == Expect::NewSession {
            f.rs = None;
        }
        let (port, macs, src, dst, seq, ack) = match ev.from {
            From::Client => (
                PUB,
                (host_mac(f.caddr), PUB_MAC),
                client,
                vip,
                f.cseq,
                f.sseq,
            ),
            From::Server => {
                let rs = f.rs.expect("the server answers a forwarded connection");
                (PRIV, (host_mac(rs.0), PRIV_MAC), rs, client, f.sseq, f.cseq)
            }
        };
        build(
            &mut self.buf,
            macs,
            src,
            dst,
            proto,
            seq,
            ack,
            ev.flags,
            ev.len,
        );
        let advance = u32::from(ev.len) + u32::from(ev.flags & (SYN | FIN) != 0);
        match ev.from {
            From::Client => f.cseq = f.cseq.wrapping_add(advance),
            From::Server => f.sseq = f.sseq.wrapping_add(advance),
        }
        let len = self.buf.len();
        let mut frame = Frame::new(&mut self.buf, 0, len).unwrap();
        let v = self.d.handle(now, port, &mut frame);
        if ev.expect == Expect::NotSyn {
            assert_eq!(v, Verdict::Drop(DropReason::NotSyn), "{ev:?}");
            self.not_syn_seen += 1;
            return;
        }
        let seen = inspect(&self.buf);
        self.frames_checked += 1;
        assert_eq!(seen.flags, ev.flags, "flags kept");
        assert_eq!(seen.payload, usize::from(ev.len), "payload kept");
        match ev.from {
            From::Client => {
                assert_eq!(v, Verdict::Transmit(PRIV), "{ev:?} of {:?}", f.fate);
                assert_eq!(seen.src, client, "NAT keeps the client's source");
                assert_eq!((seen.smac, seen.dmac), (PRIV_MAC, host_mac(seen.dst.0)));
                match f.rs {
                    Some(rs) => assert_eq!(seen.dst, rs, "a connection stays on its server"),
                    None => {
                        let rs = seen.dst;
                        assert!(
                            f.svc.real_servers().iter().any(|r| (r.0, r.1) == rs),
                            "{rs:?} is a real server of {:?}",
                            f.svc
                        );
                        f.rs = Some(rs);
                        *self.conns.entry(rs.0).or_default() += 1;
                        if f.svc == Svc::App {
                            let net = [f.caddr[0], f.caddr[1], f.caddr[2]];
                            let first = *self.persist.entry(net).or_insert(rs.0);
                            assert_eq!(first, rs.0, "persistence keeps {net:?}/24 on one server");
                        }
                    }
                }
            }
            From::Server => {
                assert_eq!(v, Verdict::Transmit(PUB), "{ev:?} of {:?}", f.fate);
                assert_eq!(seen.src, vip, "replies are rewritten to the VIP");
                assert_eq!(seen.dst, client);
                assert_eq!((seen.smac, seen.dmac), (PUB_MAC, host_mac(f.caddr)));
            }
        }
    }

    /// Run the timers up to `now` (until nothing due is left).
    fn expire(&mut self, now: Instant) {
        while self.d.poll_timeout().is_some_and(|t| t <= now) {
            if self.d.expire(now) == 0 {
                break;
            }
        }
    }

    fn checkpoint(&self, at: u64) -> Checkpoint {
        let t = self.d.table_v4();
        let mut states = BTreeMap::new();
        let mut per_dest: HashMap<u32, (u32, u32, u32)> = HashMap::new();
        for (_, c) in t.iter() {
            *states.entry(c.state_name()).or_insert(0) += 1;
            let e = per_dest.entry(c.dest).or_default();
            if c.is_template() {
                e.2 += 1;
            } else if c.tcp_state().is_some_and(|s| s.is_active()) {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let (mut active, mut inactive, mut persist) = (0, 0, 0);
        for (_, s) in self.d.services().iter() {
            for (id, d) in s.dest_ids.iter().zip(&s.dests) {
                let want = per_dest.get(&id.0).copied().unwrap_or_default();
                assert_eq!(
                    (d.active_conns, d.inact_conns, d.persist_conns),
                    want,
                    "at {at} ms: {}'s counts match its entries (active by TCP state)",
                    d.addr
                );
                active += d.active_conns;
                inactive += d.inact_conns;
                persist += d.persist_conns;
            }
        }
        assert_eq!(
            (active + inactive) as usize,
            t.len() - t.templates(),
            "active + inactive = live non-template entries"
        );
        assert_eq!(persist as usize, t.templates());
        Checkpoint {
            at,
            entries: t.len(),
            templates: t.templates(),
            states,
            active,
            inactive,
        }
    }
}

const CHECKPOINTS: [u64; 11] = [30, 60, 120, 200, 300, 360, 450, 600, 900, 1250, 1800];

fn run(seed: u64) -> (Sim, Vec<Checkpoint>) {
    let mut sim = Sim::new(seed);
    let events = std::mem::take(&mut sim.w.events);
    let mut cps = Vec::new();
    let mut next_cp = CHECKPOINTS.iter().map(|s| s * S).peekable();
    let mut next_tick = 0;
    for ev in events.iter().copied().chain(std::iter::once(Event {
        at: T_END,
        flow: u32::MAX,
        step: 0,
        from: From::Client,
        flags: 0,
        len: 0,
        expect: Expect::Forward,
    })) {
        // Timers every simulated second, checkpoints at their time.
        while next_tick <= ev.at {
            while let Some(&cp) = next_cp.peek() {
                if cp > next_tick {
                    break;
                }
                sim.expire(Instant::from_millis(cp));
                cps.push(sim.checkpoint(cp));
                next_cp.next();
            }
            sim.expire(Instant::from_millis(next_tick));
            next_tick += S;
        }
        if ev.flow != u32::MAX {
            sim.step(ev);
        }
    }
    sim.w.events = events;
    (sim, cps)
}

fn summary(sim: &Sim, cps: &[Checkpoint]) -> String {
    let mut o = String::new();
    let w = &sim.w;
    let mut fates: BTreeMap<(Svc, Fate), u32> = BTreeMap::new();
    for f in &w.flows {
        *fates.entry((f.svc, f.fate)).or_default() += 1;
    }
    writeln!(
        o,
        "workload: {} flows, {} segments",
        w.flows.len(),
        w.events.len()
    )
    .unwrap();
    for ((s, f), n) in &fates {
        writeln!(o, "  {s:?} {f:?}: {n}").unwrap();
    }
    writeln!(
        o,
        "real servers (conns on the wire / director counts at the end)"
    )
    .unwrap();
    for (_, s) in sim.d.services().iter() {
        let ServiceKey::Addr { protocol, port, .. } = s.cfg.key else {
            unreachable!()
        };
        writeln!(o, "  {protocol} VIP:{port} {}", s.cfg.scheduler.name()).unwrap();
        let mut rows: Vec<_> = s.dest_ids.iter().zip(&s.dests).collect();
        rows.sort_by_key(|(_, d)| d.addr);
        for (id, d) in rows {
            let IpAddr::V4(a) = d.addr else {
                unreachable!()
            };
            let st = sim.d.services().dest_stats(*id).unwrap();
            let wire = sim.conns.get(&a.octets()).copied().unwrap_or(0);
            assert_eq!(st.conns, wire, "{a}: conns counted = conns seen");
            writeln!(
                o,
                "    {a}:{} w{} conns {} inpkts {} outpkts {} active {} inactive {} persist {}",
                d.port,
                d.weight,
                st.conns,
                st.inpkts,
                st.outpkts,
                d.active_conns,
                d.inact_conns,
                d.persist_conns
            )
            .unwrap();
        }
    }
    writeln!(o, "table over time").unwrap();
    for c in cps {
        let states: Vec<String> = c.states.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(
            o,
            "  t={:>4}s entries {:>5} templates {:>2} active {:>5} inactive {:>5} | {}",
            c.at / S,
            c.entries,
            c.templates,
            c.active,
            c.inactive,
            states.join(" ")
        )
        .unwrap();
    }
    let mut per_server: BTreeMap<[u8; 4], u32> = BTreeMap::new();
    for rs in sim.persist.values() {
        *per_server.entry(*rs).or_default() += 1;
    }
    let spread: Vec<String> = per_server
        .iter()
        .map(|(a, n)| format!("{}={n}", Ipv4Addr::from(*a)))
        .collect();
    writeln!(
        o,
        "persistence: {} /24s, each on one server; /24s per server: {}",
        sim.persist.len(),
        spread.join(" ")
    )
    .unwrap();
    let drops: Vec<String> = sim
        .d
        .drops()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.name()))
        .collect();
    writeln!(o, "drops: {}", drops.join(" ")).unwrap();
    let c = sim.d.counters();
    writeln!(
        o,
        "engine: rx {} tx {} passed {} conns_created {} conns_removed {} parked {}",
        c.rx, c.tx, c.passed, c.conns_created, c.conns_removed, c.parked
    )
    .unwrap();
    writeln!(
        o,
        "frames checked by etherparse (IPv4 + L4 checksums): {}",
        sim.frames_checked
    )
    .unwrap();
    o
}

#[test]
fn twenty_thousand_clients_through_nat() {
    let (sim, cps) = run(0x5eed_0001);

    // Deliberate drops only: stray ACKs and ACKs after TIME_WAIT expired.
    assert_eq!(sim.not_syn_seen, sim.w.not_syn_expected);
    for (r, n) in sim.d.drops().iter() {
        let want = if r == DropReason::NotSyn {
            u64::from(sim.w.not_syn_expected)
        } else {
            0
        };
        assert_eq!(n, want, "drops of {}", r.name());
    }
    assert_eq!(sim.d.counters().parked, 0, "every neighbour was known");
    assert_eq!(sim.d.counters().passed, 0);

    // wrr hands out connections exactly by weight (1:2:3:4 over 2,000).
    let shop: u64 = SHOP_CLIENTS.into();
    for (a, _, w) in Svc::Shop.real_servers() {
        assert_eq!(
            sim.conns[&a] * 10,
            shop * u64::from(w),
            "wrr share of {a:?}"
        );
    }
    // wlc follows the weights loosely (within 20% of the weight's share).
    let web: u64 = WEB_CLIENTS.into();
    let total_w: u64 = Svc::Web.real_servers().iter().map(|r| u64::from(r.2)).sum();
    for (a, _, w) in Svc::Web.real_servers() {
        let want = web * u64::from(w) / total_w;
        let got = sim.conns[&a];
        assert!(
            got.abs_diff(want) * 5 <= want,
            "wlc share of {a:?}: {got} vs {want}"
        );
    }
    // rr spreads UDP evenly (each new connection, including returns after the timeout).
    let dns: Vec<u64> = Svc::Dns
        .real_servers()
        .iter()
        .map(|r| sim.conns[&r.0])
        .collect();
    assert!(
        dns.iter().max().unwrap() - dns.iter().min().unwrap() <= 1,
        "{dns:?}"
    );

    // The table grew, then drained to exactly the long-lived connections and the templates
    // of the /24s that still have one.
    let peak = cps.iter().map(|c| c.entries).max().unwrap();
    let last = cps.last().unwrap();
    let long_lived: Vec<&Flow> = sim
        .w
        .flows
        .iter()
        .filter(|f| f.fate == Fate::LongLived)
        .collect();
    let live_nets: std::collections::BTreeSet<_> = long_lived
        .iter()
        .filter(|f| f.svc == Svc::App)
        .map(|f| [f.caddr[0], f.caddr[1], f.caddr[2]])
        .collect();
    assert!(peak > 10_000, "peak {peak}");
    assert_eq!(last.entries, long_lived.len() + live_nets.len());
    assert_eq!(last.templates, live_nets.len());
    assert_eq!(last.active as usize, long_lived.len());
    assert_eq!(last.inactive, 0);
    assert_eq!(
        last.states.get("ESTABLISHED").copied(),
        Some(long_lived.len())
    );

    insta::assert_snapshot!(summary(&sim, &cps));
}
