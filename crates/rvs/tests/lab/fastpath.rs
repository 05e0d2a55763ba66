//! `--fast-path xdp` (docs/xdp.md): keep-alive HTTP through a director (NAT, FullNAT,
//! direct routing) whose XDP program rewrites the established connections' segments
//! itself. The responses are
//! right, most forwarded frames took the fast path (its counter against the userspace
//! path's), the `--stats` listing still counts every packet and byte, and closing the
//! connections (FIN through the userspace path) removes their flows.
//!
//! The lab's veths need two settings for it (docs/xdp.md): the director's peers (in the
//! switch) get GRO on, which turns on the NAPI a veth needs to take redirected frames; the
//! senders (client, real servers) get TX checksum offload off, since XDP cannot see a
//! checksum-partial frame's flag (such frames take the userspace path, correctly but not
//! fast).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

/// Keep-alive connections, and requests on each.
const CONNS: usize = 6;
const REQUESTS: usize = 100;
/// Bytes of each response body (`GET /bytes/N` of `rvs httpd`).
const BODY: usize = 3000;

/// The veth settings the fast path needs in the lab (see the module documentation).
fn prepare_veths(lab: &Lab) {
    prepare_veths_of(lab, &["director"]);
}

/// [`prepare_veths`] for the directors named (`director`, `director2`).
pub(crate) fn prepare_veths_of(lab: &Lab, directors: &[&str]) {
    let peers = directors
        .iter()
        .flat_map(|d| [format!("{d}-eth0"), format!("{d}-eth1")]);
    for peer in peers {
        let peer = peer.as_str();
        let out = lab
            .exec("switch", "ethtool", ["-K", peer, "gro", "on"])
            .expect("ethtool (Debian package ethtool)");
        assert!(out.status.success(), "ethtool -K {peer} gro on: {out:?}");
    }
    for node in ["client", "rs1", "rs2", "rs3"] {
        let out = lab
            .exec(node, "ethtool", ["-K", "eth0", "tx", "off"])
            .unwrap();
        assert!(
            out.status.success(),
            "{node}: ethtool -K eth0 tx off: {out:?}"
        );
    }
}

/// One sample of the daemon's metrics (`name` with its labels as written).
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

pub(crate) fn metrics(d: &Director) -> String {
    rvs::daemon::control_request(d.control(), "metrics").unwrap()
}

/// Summed over the real servers of `--stats --exact`: Conns, InPkts, OutPkts, InBytes,
/// OutBytes.
fn stats(d: &Director) -> [u64; 5] {
    let text = d.listing(&["--stats", "--exact"]);
    let mut sum = [0u64; 5];
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("-> ") else {
            continue;
        };
        let cols: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .filter_map(|w| w.parse().ok())
            .collect();
        for (s, c) in sum.iter_mut().zip(cols) {
            *s += c;
        }
    }
    sum
}

/// `CONNS` keep-alive connections, `REQUESTS` requests each; the answers per real server.
/// The connections stay open until the caller drops them.
fn keep_alive(lab: &Lab, vip: IpAddr) -> (BTreeMap<String, usize>, Vec<Http>) {
    let (by_rs, _, conns) = keep_alive_bodies(lab, vip);
    (by_rs, conns)
}

/// [`keep_alive`], with every response body in order.
fn keep_alive_bodies(lab: &Lab, vip: IpAddr) -> (BTreeMap<String, usize>, Vec<Vec<u8>>, Vec<Http>) {
    let addr = SocketAddr::new(vip, 80);
    lab.run("client", move || {
        let mut by_rs = BTreeMap::new();
        let mut bodies = Vec::new();
        let mut conns = Vec::new();
        for c in 0..CONNS {
            let mut h = Http::connect_timeout(addr, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connection {c}: {e}"));
            let first = h.get("/").unwrap();
            assert_eq!(first.status, 200);
            let name = first.text().trim().to_owned();
            for i in 0..REQUESTS {
                let r = h
                    .get(&format!("/bytes/{BODY}"))
                    .unwrap_or_else(|e| panic!("connection {c}, request {i}: {e}"));
                assert_eq!(r.status, 200, "connection {c}, request {i}");
                assert_eq!(r.body.len(), BODY, "connection {c}, request {i}");
                bodies.push(r.body);
            }
            bodies.push(first.body);
            *by_rs.entry(name).or_insert(0) += 1;
            conns.push(h);
        }
        (by_rs, bodies, conns)
    })
    .unwrap()
}

#[test]
fn nat_keep_alive_takes_the_xdp_fast_path() {
    takes_the_fast_path(Method::Nat);
}

#[test]
fn fullnat_keep_alive_takes_the_xdp_fast_path() {
    takes_the_fast_path(Method::FullNat);
}

/// Direct routing: the client's direction only (the replies go from the real servers to
/// the client on the public LAN).
#[test]
fn dr_keep_alive_takes_the_xdp_fast_path() {
    takes_the_fast_path(Method::Dr);
}

/// IPv6: NAT (both directions through the program's IPv6 map).
#[test]
fn ipv6_nat_keep_alive_takes_the_xdp_fast_path() {
    takes_the_fast_path_at(Method::Nat, lab::VIP6.into());
}

/// IPv6 direct routing: the client's direction.
#[test]
fn ipv6_dr_keep_alive_takes_the_xdp_fast_path() {
    takes_the_fast_path_at(Method::Dr, lab::VIP6.into());
}

fn takes_the_fast_path(method: Method) {
    takes_the_fast_path_at(method, lab::VIP.into());
}

fn takes_the_fast_path_at(method: Method, vip: IpAddr) {
    let lab = lab(LabOptions {
        method,
        ipv6: vip.is_ipv6(),
        ..LabOptions::default()
    });
    prepare_veths(&lab);
    let svc = Virtual::rr(vip, 80, 3);
    let config = lvs_cf(method, std::slice::from_ref(&svc));
    let d = Director::start_with(&lab, "director", "fp", &config, &["--fast-path", "xdp"]);
    d.wait_http(vip);
    assert!(
        d.log().contains("XDP fast path attached"),
        "the daemon attached its program:\n{}",
        d.log()
    );
    let m0 = metrics(&d);
    assert_eq!(metric(&m0, "rvs_fast_path_enabled"), 1);
    let s0 = stats(&d);
    let tx0 = metric(&m0, "rvs_frames_total{kind=\"tx\"}");

    let (by_rs, conns) = keep_alive(&lab, vip);
    assert_eq!(by_rs.values().sum::<usize>(), CONNS);
    assert_eq!(by_rs.len(), 3, "rr spreads the connections: {by_rs:?}");

    let m1 = metrics(&d);
    let fast = metric(&m1, "rvs_fast_path_frames_total");
    let fast_bytes = metric(&m1, "rvs_fast_path_bytes_total");
    let slow = metric(&m1, "rvs_frames_total{kind=\"tx\"}") - tx0;
    assert_eq!(
        metric(&m1, "rvs_fast_path_flows"),
        CONNS as u64,
        "each open connection is in the map\n{m1}"
    );
    // Each connection's handshake, first request and the segments in flight while its
    // entries were written take the userspace path; everything after, the fast path.
    let share = fast as f64 / (fast + slow) as f64;
    eprintln!("fast path: {fast} frames ({fast_bytes} bytes), userspace: {slow}, share {share:.3}");
    assert!(
        share >= 0.8,
        "fast path share {share:.3}: {fast} fast, {slow} through userspace\n{m1}\n{}",
        d.log()
    );
    // The listing counts the fast path's packets and bytes too (folded before answering).
    let s1 = stats(&d);
    let pkts = (s1[1] - s0[1]) + (s1[2] - s0[2]);
    let bytes = (s1[3] - s0[3]) + (s1[4] - s0[4]);
    assert_eq!(s1[0] - s0[0], CONNS as u64, "connections counted");
    assert!(
        pkts >= fast + slow - 64 && pkts <= fast + slow + 64,
        "listed packets {pkts} vs forwarded {fast} + {slow} (a few ARP/probe frames aside)"
    );
    assert!(
        bytes >= fast_bytes,
        "listed bytes {bytes} < fast path bytes {fast_bytes}"
    );
    if method.direct_return() {
        assert_eq!(s1[2] - s0[2], 0, "no replies cross a DR director");
    } else {
        // Every response body crossed the director: at least that many bytes out.
        let body_bytes = (CONNS * REQUESTS * BODY) as u64;
        assert!(
            s1[4] - s0[4] >= body_bytes,
            "OutBytes {} < {body_bytes}",
            s1[4] - s0[4]
        );
    }

    // Closing: the FINs go through the userspace path, which removes the flows; the
    // connections then close as without the fast path.
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = metrics(&d);
        if metric(&m, "rvs_fast_path_flows") == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flows left after the close:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let conns_listing = d.listing(&["-c"]);
    assert!(
        !conns_listing.contains("ESTABLISHED"),
        "closed connections left the ESTABLISHED state:\n{conns_listing}"
    );
    // And the director still serves new connections.
    let (again, rest) = keep_alive(&lab, vip);
    assert_eq!(again.values().sum::<usize>(), CONNS);
    drop(rest);
    // A connection of one request ends before it is offloaded (docs/xdp.md, "The cost
    // when on"): no map updates, and its FIN does not trail data sent ahead by XDP.
    let before = metric(&metrics(&d), "rvs_fast_path_frames_total");
    let got = crate::cluster::spread(&lab, vip, 30);
    assert_eq!(got.values().sum::<usize>(), 30);
    let m = metrics(&d);
    assert_eq!(
        metric(&m, "rvs_fast_path_frames_total"),
        before,
        "one-request connections stay on the userspace path\n{m}"
    );
    let log = d.stop();
    assert!(!log.contains("XDP fast path:"), "no map errors:\n{log}");
}

/// What one run of the same traffic leaves: the bodies, the listing with the connections
/// open, the connection listing's states, the Conns per real server, and the listing after
/// the close.
struct Run {
    bodies: Vec<Vec<u8>>,
    listing: String,
    states: BTreeMap<String, usize>,
    conns: BTreeMap<String, u64>,
    closed: String,
    fast: u64,
}

fn run_traffic(fast_path: &str) -> Run {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        ..LabOptions::default()
    });
    prepare_veths(&lab);
    let vip: IpAddr = lab::VIP.into();
    let svc = Virtual::rr(vip, 80, 3);
    let config = lvs_cf(Method::Nat, std::slice::from_ref(&svc));
    let d = Director::start_with(&lab, "director", "fp", &config, &["--fast-path", fast_path]);
    d.wait_http(vip);
    let base = d.conns();
    let (_, mut bodies, open) = keep_alive_bodies(&lab, vip);
    // Which real server answers which connection depends on where rr stood after the
    // director's readiness probes (`wait_http` retries until the VIP answers): compare the
    // bodies as a set, the spread through the listings below.
    bodies.sort();
    let listing = d.listing(&[]);
    let mut states = BTreeMap::new();
    for line in d.listing(&["-c"]).lines().skip(1) {
        if let Some(state) = line.split_whitespace().nth(2) {
            *states.entry(state.to_owned()).or_insert(0) += 1;
        }
    }
    let fast = metric(&metrics(&d), "rvs_fast_path_frames_total");
    drop(open);
    // The closes settle (FIN, ACK each way) before the listing is compared.
    let deadline = Instant::now() + Duration::from_secs(5);
    let closed = loop {
        let l = d.listing(&[]);
        if !l
            .lines()
            .filter(|x| x.trim_start().starts_with("-> 10."))
            .any(|x| x.split_whitespace().nth(4) != Some("0"))
        {
            break l;
        }
        assert!(Instant::now() < deadline, "connections still active:\n{l}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let conns = crate::cluster::diff(&d.conns(), &base);
    d.stop();
    Run {
        bodies,
        listing,
        states,
        conns,
        closed,
        fast,
    }
}

/// A listing with its real-server lines split into the addresses and the multiset of their
/// (forward, weight, active, inactive) columns. Which real server holds the readiness
/// probes' inactive connection depends on where rr stood when `wait_http` got its answer,
/// so two runs compare by the spread, not by which address holds which count.
fn spread_of(listing: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut other, mut addrs, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for line in listing.lines() {
        match line.trim_start().strip_prefix("-> ") {
            Some(rest) if !rest.starts_with("RemoteAddress") => {
                let mut w = rest.split_whitespace();
                addrs.push(w.next().unwrap_or_default().to_owned());
                counts.push(w.collect::<Vec<_>>().join(" "));
            }
            _ => other.push(line.to_owned()),
        }
    }
    addrs.sort();
    counts.sort();
    (other, addrs, counts)
}

/// The same traffic with the fast path off and on: the same bodies, the same listings
/// (connections per real server, active and inactive counts with the connections open and
/// after they closed) and the same connection states.
#[test]
fn the_same_traffic_lists_the_same_with_the_fast_path_off_and_on() {
    let off = run_traffic("off");
    let on = run_traffic("xdp");
    assert_eq!(off.fast, 0);
    assert!(
        on.fast > (CONNS * REQUESTS) as u64,
        "the fast path took the traffic: {}",
        on.fast
    );
    assert!(off.bodies == on.bodies, "response bodies differ");
    let same_spread = |a: &str, b: &str, when: &str| {
        assert_eq!(spread_of(a), spread_of(b), "listing {when}:\n{a}\n{b}");
    };
    same_spread(&off.listing, &on.listing, "with the connections open");
    assert_eq!(off.states, on.states, "connection states");
    assert_eq!(
        on.states.get("ESTABLISHED"),
        Some(&CONNS),
        "{:?}",
        on.states
    );
    assert_eq!(off.conns, on.conns, "connections per real server");
    same_spread(&off.closed, &on.closed, "after the close");
}
