//! Until `rvs daemon` exists, a kernel stand-in director (nftables, as in
//! `../shared/bench/peers.sh`) proves that the lab's wiring carries NAT and FullNAT
//! traffic: the real servers' route back through the NAT router's floating address, and
//! FullNAT working with no route back at all. The stand-in breaks the lab's rule that the
//! director's kernel holds neither the VIP nor the floating addresses — only here.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

fn stand_in(lab: &Lab, fullnat: bool) {
    let d = "director";
    lab.exec(d, "sysctl", ["-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    lab.exec(d, "ip", ["addr", "add", "10.1.0.100/32", "dev", "eth0"])
        .unwrap();
    let (router, post) = if fullnat {
        (
            lab::FULLNAT_LOCAL,
            "chain post { type nat hook postrouting priority srcnat; policy accept; \
             oifname \"eth1\" snat to 10.2.0.250; }",
        )
    } else {
        (lab::NAT_ROUTER, "")
    };
    lab.exec(
        d,
        "ip",
        ["addr", "add", &format!("{router}/24"), "dev", "eth1"],
    )
    .unwrap();
    let rules = format!(
        "table ip standin {{\n\
         chain pre {{ type nat hook prerouting priority dstnat; policy accept;\n\
         ip daddr 10.1.0.100 tcp dport 80 dnat to numgen inc mod 3 map \
         {{ 0 : 10.2.0.11, 1 : 10.2.0.12, 2 : 10.2.0.13 }}; }}\n{post}\n}}\n"
    );
    let file = lab.info().workdir().join("standin.nft");
    std::fs::write(&file, rules).unwrap();
    lab.exec(d, "nft", ["-f", file.to_str().unwrap()]).unwrap();
}

fn spread(lab: &Lab, n: usize) -> BTreeMap<String, usize> {
    lab.run("client", || {
        let mut by_rs = BTreeMap::new();
        for _ in 0..n {
            let r = Http::connect(SocketAddr::from((lab::VIP, 80)))
                .and_then(|mut h| h.get("/"))
                .expect("a request through the stand-in director");
            *by_rs.entry(r.text().trim().to_owned()).or_insert(0) += 1;
        }
        by_rs
    })
    .unwrap()
}

fn even(n: usize) -> BTreeMap<String, usize> {
    (1..=3).map(|i| (format!("rs{i}"), n)).collect()
}

#[test]
fn nat_wiring_carries_traffic_through_a_kernel_stand_in() {
    let lab = lab(LabOptions::default());
    stand_in(&lab, false);
    assert_eq!(spread(&lab, 6), even(2));
}

#[test]
fn fullnat_wiring_needs_no_route_back() {
    let lab = lab(LabOptions {
        method: Method::FullNat,
        ..LabOptions::default()
    });
    stand_in(&lab, true);
    assert_eq!(spread(&lab, 6), even(2));
}
