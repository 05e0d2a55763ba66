//! ICMP through the director: echo to the VIPs (the daemon answers for them, the
//! director's kernel holds neither), and path-MTU discovery across the data plane.

use std::net::IpAddr;

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::harness::lab;
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
