//! Bulk transfers through the VIP in both directions, NAT and direct routing: iperf3 (2 s
//! each way, bounded) and an HTTP download whose bytes are checked. Bulk TCP between
//! namespaces travels as GRO/GSO super-frames of up to 64 KiB with partial checksums; these
//! only arrive intact, and fast, if the daemon passes the segmentation and checksum-offload
//! metadata on (or does the work itself). A frame forwarded larger than the MTU, or with a
//! wrong checksum, is dropped by the receiver: the transfer would stall or crawl.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

const IPERF_PORT: u16 = 5201;
/// Less than this is a data plane in trouble (the lab moves several Gbit/s).
const MIN_BITS_PER_SECOND: f64 = 10e6;
const DOWNLOAD: usize = 20_000_000;

/// The number after `"key":` at the first occurrence following `section` in iperf3's
/// JSON output.
fn json_number(json: &str, section: &str, key: &str) -> Option<f64> {
    let rest = &json[json.find(section)?..];
    let rest = &rest[rest.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// One iperf3 run from the client to the VIP (`-R`: the real server sends); returns
/// (bytes received, bits per second received).
fn iperf(lab: &Lab, reverse: bool) -> (f64, f64) {
    let port = IPERF_PORT.to_string();
    let vip = lab::VIP.to_string();
    let mut args = vec![
        "15",
        "iperf3",
        "-c",
        &vip,
        "-p",
        &port,
        "-t",
        "2",
        "-J",
        "--connect-timeout",
        "3000",
    ];
    if reverse {
        args.push("-R");
    }
    let out = lab
        .command("client", "timeout")
        .unwrap()
        .args(&args)
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !json.contains("\"error\""),
        "iperf3 {args:?} failed ({}):\n{json}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = json_number(&json, "\"sum_received\"", "bytes").expect("sum_received.bytes");
    let bps = json_number(&json, "\"sum_received\"", "bits_per_second")
        .expect("sum_received.bits_per_second");
    (bytes, bps)
}

fn bulk_both_ways(method: Method) {
    let lab = lab(LabOptions {
        method,
        ..LabOptions::default()
    });
    let mut servers = Vec::new();
    for i in 1..=3 {
        let node = format!("rs{i}");
        let pid = lab
            .spawn(&node, "iperf3", ["-s", "-p", &IPERF_PORT.to_string()])
            .unwrap();
        servers.push((node, pid));
    }
    for (node, pid) in &servers {
        lab.wait_listening(node, *pid, IPERF_PORT, Duration::from_secs(5))
            .unwrap();
    }
    // iperf3's control and data connections must reach the same server: persistence.
    let mut bulk = Virtual::rr(lab::VIP.into(), IPERF_PORT, 3);
    bulk.persistent = Some(60);
    let http = Virtual::rr(lab::VIP.into(), 80, 3);
    let d = Director::start(&lab, "lvs", &lvs_cf(method, &[bulk, http]));
    d.wait_http(lab::VIP.into());

    for reverse in [false, true] {
        let (bytes, bps) = iperf(&lab, reverse);
        let dir = if reverse {
            "real server -> client"
        } else {
            "client -> real server"
        };
        eprintln!(
            "{method:?} {dir}: {:.0} MB, {:.0} Mbit/s",
            bytes / 1e6,
            bps / 1e6
        );
        assert!(
            bps > MIN_BITS_PER_SECOND && bytes > MIN_BITS_PER_SECOND / 8.0,
            "{method:?} {dir}: {bytes} bytes at {bps} bit/s\n{}",
            d.listing(&["--stats"])
        );
    }

    // The bytes themselves: a download through the VIP, every byte checked.
    let body = lab
        .run("client", || {
            let mut h = Http::connect(SocketAddr::from((lab::VIP, 80)))?;
            h.get(&format!("/bytes/{DOWNLOAD}"))
        })
        .unwrap()
        .unwrap_or_else(|e| panic!("{method:?} download: {e}\n{}", d.log()));
    assert_eq!(body.status, 200);
    assert_eq!(body.body.len(), DOWNLOAD);
    assert!(body.body.iter().all(|&b| b == b'x'), "corrupted bytes");
    d.stop();
}

#[test]
fn nat_bulk_transfers_both_ways() {
    bulk_both_ways(Method::Nat);
}

#[test]
fn dr_bulk_transfers_both_ways() {
    bulk_both_ways(Method::Dr);
}

#[test]
fn fullnat_bulk_transfers_both_ways() {
    bulk_both_ways(Method::FullNat);
}

/// Tunnelling: the client's TSO super-frames are cut into segments by the director before
/// encapsulation (no virtio GSO type describes IPIP), each segment fitting the MTU.
#[test]
fn tun_bulk_transfers_both_ways() {
    bulk_both_ways(Method::Tun);
}
