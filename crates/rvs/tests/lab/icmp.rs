//! ICMP through the director: echo to the VIPs (the daemon answers for them, the
//! director's kernel holds neither), and path-MTU discovery across the data plane.

use std::net::{IpAddr, SocketAddr};

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

fn ping(lab: &Lab, node: &str, to: IpAddr) -> std::process::Output {
    lab.command(node, "ping")
        .unwrap()
        .args(["-n", "-c", "3", "-i", "0.2", "-W", "2", &to.to_string()])
        .output()
        .unwrap()
}

#[test]
fn ping_to_the_vips_answers() {
    let lab = lab(LabOptions {
        real_servers: 1,
        httpd: lab::Httpd::None,
        ..LabOptions::default()
    });
    let v4 = Virtual::rr(lab::VIP.into(), 80, 1);
    let v6 = Virtual::rr(lab::VIP6.into(), 80, 1);
    let d = Director::start(&lab, "lvs", &lvs_cf(Method::Nat, &[v4, v6]));
    for vip in [IpAddr::from(lab::VIP), IpAddr::from(lab::VIP6)] {
        let out = ping(&lab, "client", vip);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("3 received"),
            "ping {vip}:\n{text}{}\ndaemon:\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
    }
}

/// Path-MTU discovery through a NAT VIP.
///
/// Where the ICMP comes from: the director forwards in userspace and its bridges generate
/// no ICMP, so the test adds a router. The client's namespace becomes one: a host `far`
/// (10.3.0.10) sits behind it on a veth pair whose client end (`far0`) has MTU 1280 while
/// `far`'s end keeps 1500 — so `far` advertises MSS 1460 and the real server, knowing no
/// better, sends full 1500-byte segments (DF set, as Linux TCP always does). The client
/// router cannot forward them into `far0` and answers each with ICMP fragmentation-needed
/// (MTU 1280), addressed to the segment's source: the VIP. The director receives it on the
/// public side and must pass it to the connection's real server, rewriting the outer
/// destination and the quoted header (VIP → real server) as NAT requires. Only then does
/// the real server learn the path MTU, cut its segments to 1240 bytes and retransmit.
///
/// Without ICMP forwarding every full-size segment is dropped at the router for good (MTU
/// probing is off on the real servers, so TCP has no other way out): the download stalls
/// after the first small segments and the read times out.
#[test]
fn frag_needed_reaches_the_real_server_and_a_download_completes() {
    const FAR: &str = "10.3.0.10";
    const BYTES: usize = 2_000_000;
    let mut lab = lab(LabOptions::default());
    lab.add_linked_node("far", "eth0", "client", "far0")
        .unwrap();
    lab.exec("client", "ip", ["link", "set", "far0", "mtu", "1280"])
        .unwrap();
    lab.exec(
        "client",
        "ip",
        ["addr", "add", "10.3.0.1/24", "dev", "far0"],
    )
    .unwrap();
    lab.exec("client", "sysctl", ["-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    lab.exec(
        "far",
        "ip",
        ["addr", "add", &format!("{FAR}/24"), "dev", "eth0"],
    )
    .unwrap();
    lab.exec("far", "ip", ["route", "add", "default", "via", "10.3.0.1"])
        .unwrap();
    // The daemon reads its routes at start: the way to `far` is through the client.
    lab.exec(
        "director",
        "ip",
        [
            "route",
            "add",
            "10.3.0.0/24",
            "via",
            &lab::CLIENT.to_string(),
        ],
    )
    .unwrap();
    for i in 1..=3 {
        lab.exec(
            &format!("rs{i}"),
            "sysctl",
            [
                "-qw",
                "net.ipv4.tcp_mtu_probing=0",
                "net.ipv4.ip_no_pmtu_disc=0",
            ],
        )
        .unwrap();
    }
    let d = Director::start(
        &lab,
        "lvs",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]),
    );
    d.wait_http(lab::VIP.into());

    let got = lab
        .run("far", || {
            let mut h = Http::connect(SocketAddr::from((lab::VIP, 80)))?;
            h.get(&format!("/bytes/{BYTES}"))
        })
        .unwrap();
    let snmp = |node: &str| {
        String::from_utf8_lossy(&lab.exec(node, "cat", ["/proc/net/snmp"]).unwrap().stdout)
            .into_owned()
    };
    let router_icmp = icmp_out_dest_unreachs(&snmp("client"));
    let r = got.unwrap_or_else(|e| {
        panic!(
            "download through a 1280-byte hop stalled ({e}): the frag-needed did not reach \
             the real server; the client router sent {router_icmp:?} destination-unreachable \
             messages\n{}",
            d.log()
        )
    });
    assert_eq!((r.status, r.body.len()), (200, BYTES));
    assert!(r.body.iter().all(|&b| b == b'x'));
    assert!(
        router_icmp.unwrap_or(0) > 0,
        "the router sent no frag-needed: the test did not exercise PMTU discovery"
    );
    // The real server that served learnt the path MTU from the forwarded ICMP.
    let learnt = (1..=3).any(|i| {
        let route = lab
            .exec(&format!("rs{i}"), "ip", ["route", "get", FAR])
            .unwrap();
        String::from_utf8_lossy(&route.stdout).contains("mtu 1280")
    });
    assert!(learnt, "no real server holds a 1280-byte PMTU for {FAR}");
}

/// `Icmp: ... OutDestUnreachs` from `/proc/net/snmp`.
fn icmp_out_dest_unreachs(snmp: &str) -> Option<u64> {
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next()?, icmp.next()?);
    let i = names
        .split_whitespace()
        .position(|n| n == "OutDestUnreachs")?;
    values.split_whitespace().nth(i)?.parse().ok()
}
