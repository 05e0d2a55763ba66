//! Each forwarding method serves HTTP through the VIP, from the client's namespace to the
//! real servers' kernels and back: NAT, direct routing, IP tunnelling (the real servers
//! decapsulate with `rvs realserver tun`) and FullNAT, over IPv4; NAT over IPv6 too.
//! `rr` is deterministic, so N requests on N connections land exactly N/3 on each of three
//! real servers, and the daemon's `--stats` listing counts the same.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::cluster::{Director, Virtual, diff, even, lvs_cf, spread};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

const REQUESTS: usize = 30;

/// Builds a lab for `method`, runs the daemon with one rr service over three real servers
/// at `vip:80`, sends [`REQUESTS`] requests and checks the spread on both ends.
fn serves_http_round_robin(method: Method, vip: IpAddr) {
    let lab = lab(LabOptions {
        method,
        ..LabOptions::default()
    });
    let svc = Virtual::rr(vip, 80, 3);
    let config = lvs_cf(method, std::slice::from_ref(&svc));
    let d = Director::start(&lab, "lvs", &config);
    d.wait_http(vip);

    let before = d.conns();
    let got = spread(&lab, vip, REQUESTS);
    assert_eq!(
        got,
        even(3, REQUESTS / 3),
        "rr over 3 real servers ({method:?})"
    );
    let counted = diff(&d.conns(), &before);
    let want: BTreeMap<String, u64> = svc
        .servers
        .iter()
        .map(|a| (rs_key(*a, 80), (REQUESTS / 3) as u64))
        .collect();
    assert_eq!(
        counted,
        want,
        "the daemon's --stats Conns per real server ({method:?}):\n{}",
        d.listing(&["--stats"])
    );
    let forward = match method {
        Method::Nat => "Masq",
        Method::Dr => "Route",
        Method::Tun => "Tunnel",
        Method::FullNat => "FullNat",
    };
    let listing = d.listing(&[]);
    assert_eq!(
        listing.matches(&format!(" {forward} ")).count(),
        3,
        "three real servers forwarded by {forward}:\n{listing}"
    );
    if method == Method::Tun {
        // Every request crossed a real server's userspace decapsulator.
        let pids = lab.pids();
        let mut decapsulated = 0;
        for pid in pids {
            if lab
                .log_tail(pid)
                .contains("rvs realserver tun: decapsulating")
            {
                lab.stop(pid).unwrap();
            }
        }
        for e in std::fs::read_dir(lab.info().workdir()).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
            if let Some(n) = text
                .split("rvs realserver tun: decapsulated ")
                .nth(1)
                .and_then(|t| t.split(';').next())
                .and_then(|n| n.trim().parse::<u64>().ok())
            {
                assert!(n > 0, "a decapsulator that saw nothing:\n{text}");
                decapsulated += 1;
            }
        }
        assert_eq!(
            decapsulated, 3,
            "three decapsulators reported their counters"
        );
    }
    if method.direct_return() {
        // The replies went from the real servers straight to the client: the director's
        // kernel never held the VIP.
        let addrs =
            String::from_utf8_lossy(&lab.exec("director", "ip", ["-br", "addr"]).unwrap().stdout)
                .into_owned();
        assert!(!addrs.contains(&vip.to_string()), "{addrs}");
    }
    d.stop();
}

/// `addr:port` as the listing writes it.
fn rs_key(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

#[test]
fn nat_serves_http_round_robin() {
    serves_http_round_robin(Method::Nat, lab::VIP.into());
}

#[test]
fn dr_serves_http_round_robin() {
    serves_http_round_robin(Method::Dr, lab::VIP.into());
}

#[test]
fn tun_serves_http_round_robin_through_userspace_decapsulation() {
    serves_http_round_robin(Method::Tun, lab::VIP.into());
}

#[test]
fn fullnat_serves_http_round_robin() {
    serves_http_round_robin(Method::FullNat, lab::VIP.into());
}

#[test]
fn nat_serves_http_on_an_ipv6_vip() {
    serves_http_round_robin(Method::Nat, lab::VIP6.into());
}
