//! A firewall-mark virtual service (the documentation's section 7.5): ports 80 and 443 of
//! the VIP carry one mark, and with persistence a client's connections to both ports land
//! on one real server. rvs classifies the mark itself (`fwmark_ports`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::cluster::Director;
use crate::harness::{Http, lab};
use crate::lab::{self, Httpd, LabOptions, Method};

fn lvs_cf() -> String {
    let mut s = String::from(
        "network = nat\nnat_router = 10.2.0.254 eth1:1\n\
         virtual shop {\n    active = 1\n    address = 10.1.0.100 eth0:1\n    fwmark = 80\n\
         \x20   fwmark_ports = 80 443\n    port = 80\n    persistent = 300\n    scheduler = rr\n",
    );
    for i in 1..=3 {
        s += &format!(
            "    server rs{i} {{\n        address = {}\n        port = 0\n        active = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    s + "}\n"
}

#[test]
fn fwmark_service_keeps_a_clients_80_and_443_on_one_real_server() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        httpd: Httpd::Builtin,
        ..LabOptions::default()
    });
    let exe = crate::harness::rvs_exe();
    for i in 1..=3 {
        let node = format!("rs{i}");
        let pid = lab
            .spawn(
                &node,
                &exe,
                [
                    "httpd",
                    "--listen",
                    "0.0.0.0:443",
                    "--name",
                    &format!("rs{i}"),
                ],
            )
            .unwrap();
        lab.wait_listening(&node, pid, 443, Duration::from_secs(10))
            .unwrap();
    }
    let director = Director::start(&lab, "fwmark", &lvs_cf());
    let answers: BTreeSet<String> = lab
        .run("client", || {
            let mut seen = BTreeSet::new();
            for port in [80, 443, 80, 443, 443, 80] {
                let r = Http::connect(SocketAddr::from((lab::VIP, port)))
                    .and_then(|mut h| h.get("/"))
                    .unwrap_or_else(|e| panic!("a request to VIP:{port}: {e}"));
                seen.insert(r.text().trim().to_owned());
            }
            seen
        })
        .unwrap();
    assert_eq!(
        answers.len(),
        1,
        "one real server for both ports: {answers:?}"
    );
    let listing = director.listing(&["--persistent-conn"]);
    assert!(listing.contains("FWM  80 rr persistent 300"), "{listing}");
    // A port outside the mark is not the service's: nothing answers for the VIP there.
    let other = lab
        .run("client", || {
            std::net::TcpStream::connect_timeout(
                &SocketAddr::from((lab::VIP, 8080)),
                Duration::from_millis(500),
            )
            .is_ok()
        })
        .unwrap();
    assert!(!other, "VIP:8080 carries no mark and no service");
}
