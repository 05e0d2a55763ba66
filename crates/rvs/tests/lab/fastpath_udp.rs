//! `--fast-path xdp` with a UDP virtual service (docs/xdp.md, "UDP"): NAT over IPv4 and
//! IPv6. A UDP echo server on each real server answers the client's flows through the VIP;
//! once a flow has carried 8 client datagrams and a reply through the userspace path, the
//! program forwards its datagrams both ways; every echo comes back intact, most frames take
//! the fast path, and the `--stats` listing counts every packet.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::fastpath::{metric, metrics, prepare_veths_of};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

const PORT: u16 = 5353;
/// UDP flows (one client socket each) and datagrams each.
const FLOWS: usize = 3;
const DATAGRAMS: usize = 100;

/// Echoes every datagram back until `stop` (bounded by the socket's read timeout).
fn echo(sock: UdpSocket, stop: &AtomicBool) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    }
}

/// Packets (in + out) summed over the real servers of `--stats --exact`.
fn listed_packets(d: &Director) -> u64 {
    d.listing(&["--stats", "--exact"])
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("-> "))
        .map(|rest| {
            let cols: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .filter_map(|w| w.parse().ok())
                .collect();
            cols.get(1).copied().unwrap_or(0) + cols.get(2).copied().unwrap_or(0)
        })
        .sum()
}

fn udp_takes_the_fast_path(vip: IpAddr) {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: vip.is_ipv6(),
        httpd: lab::Httpd::None,
        ..LabOptions::default()
    });
    prepare_veths_of(&lab, &["director"]);
    let mut svc = Virtual::rr(vip, PORT, 3);
    svc.protocol = "udp";
    let d = Director::start_with(
        &lab,
        "director",
        "fpu",
        &lvs_cf(Method::Nat, &[svc]),
        &["--fast-path", "xdp"],
    );
    let any: IpAddr = if vip.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let sockets: Vec<UdpSocket> = (1..=3)
        .map(|i| {
            lab.run(&format!("rs{i}"), move || UdpSocket::bind((any, PORT)))
                .unwrap()
                .unwrap()
        })
        .collect();
    let stop = AtomicBool::new(false);
    let m0 = metrics(&d);
    let (fast0, slow0) = (
        metric(&m0, "rvs_fast_path_frames_total"),
        metric(&m0, "rvs_frames_total{kind=\"tx\"}"),
    );
    let listed0 = listed_packets(&d);
    let vip_port = SocketAddr::new(vip, PORT);
    let flows_seen = thread::scope(|scope| {
        for sock in sockets {
            let stop = &stop;
            scope.spawn(move || echo(sock, stop));
        }
        let flows_seen = lab.run("client", || {
            let socks: Vec<UdpSocket> = (0..FLOWS)
                .map(|_| {
                    let s = UdpSocket::bind((any, 0)).unwrap();
                    s.connect(vip_port).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(300)))
                        .unwrap();
                    s
                })
                .collect();
            let mut buf = [0u8; 2048];
            let mut flows_seen = 0;
            for k in 0..DATAGRAMS {
                for (f, s) in socks.iter().enumerate() {
                    let msg = format!("flow {f} datagram {k} {}", "x".repeat(200));
                    // The first datagrams may wait for the director's neighbour
                    // resolution: retried, bounded.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    loop {
                        s.send(msg.as_bytes()).unwrap();
                        if let Ok(n) = s.recv(&mut buf) {
                            assert_eq!(&buf[..n], msg.as_bytes(), "the echo comes back intact");
                            break;
                        }
                        assert!(Instant::now() < deadline, "no echo for {msg}");
                    }
                }
                if k == DATAGRAMS / 2 {
                    flows_seen = metric(&metrics(&d), "rvs_fast_path_flows");
                }
            }
            flows_seen
        });
        stop.store(true, Ordering::Relaxed);
        flows_seen.unwrap()
    });
    assert_eq!(
        flows_seen, FLOWS as u64,
        "each UDP flow is in the map halfway through"
    );
    let m1 = metrics(&d);
    let fast = metric(&m1, "rvs_fast_path_frames_total") - fast0;
    let slow = metric(&m1, "rvs_frames_total{kind=\"tx\"}") - slow0;
    let share = fast as f64 / (fast + slow) as f64;
    eprintln!("UDP over {vip}: fast path {fast} frames, userspace {slow}, share {share:.3}");
    assert!(
        share >= 0.8,
        "fast path share {share:.3}: {fast} fast, {slow} slow\n{m1}"
    );
    // Every datagram both ways is counted in the listing (the program's folded in).
    let listed = listed_packets(&d) - listed0;
    let sent = (2 * FLOWS * DATAGRAMS) as u64;
    assert!(
        listed >= sent && listed <= sent + 64,
        "listed packets {listed} vs {sent} datagrams (retries and probes aside)"
    );
    let conns = d.listing(&["-c"]);
    assert!(conns.contains("UDP"), "UDP entries in the table:\n{conns}");
    let log = d.stop();
    assert!(!log.contains("XDP fast path:"), "no map errors:\n{log}");
}

#[test]
fn nat_udp_flows_take_the_xdp_fast_path() {
    udp_takes_the_fast_path(lab::VIP.into());
}

#[test]
fn ipv6_nat_udp_flows_take_the_xdp_fast_path() {
    udp_takes_the_fast_path(lab::VIP6.into());
}
