//! A firewall-mark virtual service (the documentation's section 7.5): ports 80 and 443 of
//! the VIP carry one mark, and with persistence a client's connections to both ports land
//! on one real server.
//!
//! The mark comes either from rvs's own classifier (`fwmark_ports`), or — the seed
//! documents' way, with no rvs-specific key in the file — from the director's netfilter
//! MARK rules, which rvs reads at start and on reload: `iptables -t mangle -A PREROUTING -p
//! tcp -d VIP/32 --dport 80 -j MARK --set-mark 80` (and 443), or the nftables equivalent.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::cluster::Director;
use crate::harness::{Http, lab};
use crate::lab::{self, Httpd, Lab, LabOptions, Method};

/// The seeds' lvs.cf for the HTTP+HTTPS service: one `virtual` with `fwmark = 80` and
/// persistence; `extra` adds keys to the virtual.
fn lvs_cf(extra: &str) -> String {
    let mut s = format!(
        "network = nat\nnat_router = 10.2.0.254 eth1:1\n\
         virtual shop {{\n    active = 1\n    address = 10.1.0.100 eth0:1\n    fwmark = 80\n\
         {extra}    port = 80\n    persistent = 300\n    scheduler = rr\n",
    );
    for i in 1..=3 {
        s += &format!(
            "    server rs{i} {{\n        address = {}\n        port = 0\n        active = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    s + "}\n"
}

/// A NAT lab with three real servers answering HTTP on ports 80 and 443.
fn web_lab() -> Lab {
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
    lab
}

/// Requests from the client to VIP:80 and VIP:443, interleaved, each on a new connection;
/// the real servers that answered.
fn answers(lab: &Lab, director: &Director<'_>) -> BTreeSet<String> {
    lab.run("client", || {
        let mut seen = BTreeSet::new();
        for port in [80, 443, 80, 443, 443, 80] {
            let r = Http::connect(SocketAddr::from((lab::VIP, port)))
                .and_then(|mut h| h.get("/"))
                .unwrap_or_else(|e| panic!("a request to VIP:{port}: {e}\n{}", director.log()));
            seen.insert(r.text().trim().to_owned());
        }
        seen
    })
    .unwrap()
}

/// Whether a TCP connection to VIP:`port` from the client succeeds (bounded).
fn connects(lab: &Lab, port: u16) -> bool {
    lab.run("client", || {
        std::net::TcpStream::connect_timeout(
            &SocketAddr::from((lab::VIP, port)),
            Duration::from_millis(500),
        )
        .is_ok()
    })
    .unwrap()
}

/// Both ports on one real server, listed as one persistent fwmark service; a port no rule
/// marks is nobody's.
fn assert_one_sticky_service(lab: &Lab, director: &Director<'_>) {
    let seen = answers(lab, director);
    assert_eq!(seen.len(), 1, "one real server for both ports: {seen:?}");
    let listing = director.listing(&["--persistent-conn"]);
    assert!(listing.contains("FWM  80 rr persistent 300"), "{listing}");
    assert!(
        !connects(lab, 8080),
        "VIP:8080 carries no mark and no service"
    );
}

#[test]
fn fwmark_service_keeps_a_clients_80_and_443_on_one_real_server() {
    let lab = web_lab();
    let director = Director::start(&lab, "fwmark", &lvs_cf("    fwmark_ports = 80 443\n"));
    assert_one_sticky_service(&lab, &director);
}

#[test]
fn iptables_mark_rules_of_the_seeds_recipe_make_the_service() {
    let lab = web_lab();
    let vip = format!("{}/32", lab::VIP);
    // Red Hat's recipe, run on the director; plus a rule rvs cannot express.
    for port in ["80", "443"] {
        lab.exec(
            "director",
            "iptables",
            [
                "-t",
                "mangle",
                "-A",
                "PREROUTING",
                "-p",
                "tcp",
                "-d",
                &vip,
                "--dport",
                port,
                "-j",
                "MARK",
                "--set-mark",
                "80",
            ],
        )
        .unwrap();
    }
    lab.exec(
        "director",
        "iptables",
        [
            "-t",
            "mangle",
            "-A",
            "PREROUTING",
            "-p",
            "tcp",
            "-d",
            &vip,
            "-m",
            "state",
            "--state",
            "NEW",
            "--dport",
            "8443",
            "-j",
            "MARK",
            "--set-mark",
            "80",
        ],
    )
    .unwrap();
    let cf = lvs_cf("");
    assert!(!cf.contains("fwmark_ports"));
    let director = Director::start(&lab, "iptmark", &cf);
    assert_one_sticky_service(&lab, &director);
    // The rule it cannot express is warned, naming the match, at its line of the output.
    let log = lab.log_text(director.pid());
    assert!(
        log.contains(
            "iptables-save -t mangle:10:39: warning: this rule gives mark 80, but rvs cannot \
             express `-m state`: rule skipped"
        ),
        "{log}"
    );
    assert!(!connects(&lab, 8443), "the skipped rule marks nothing");
    assert!(!log.contains("no packet gets firewall mark"), "{log}");
}

#[test]
fn nftables_mark_rules_make_the_service_and_a_reload_reads_new_ones() {
    let lab = web_lab();
    let wd = lab.info().workdir();
    let rules = wd.join("marks.nft");
    std::fs::write(
        &rules,
        format!(
            "table inet lvs {{\n  chain prerouting {{\n    type filter hook prerouting \
             priority mangle; policy accept;\n    ip daddr {} tcp dport 80 meta mark set 80\n  \
             }}\n}}\n",
            lab::VIP
        ),
    )
    .unwrap();
    lab.exec("director", "nft", ["-f".as_ref(), rules.as_os_str()])
        .unwrap();
    let director = Director::start(&lab, "nftmark", &lvs_cf(""));
    assert!(!connects(&lab, 443), "443 has no mark yet");
    // Port 443 joins the mark; a reload reads it.
    lab.exec(
        "director",
        "nft",
        [
            "add",
            "rule",
            "inet",
            "lvs",
            "prerouting",
            "ip",
            "daddr",
            &lab::VIP.to_string(),
            "tcp",
            "dport",
            "443",
            "meta",
            "mark",
            "set",
            "80",
        ],
    )
    .unwrap();
    let reply = rvs::daemon::control_request(director.control(), "reload").unwrap();
    assert!(reply.contains("reloaded"), "{reply}\n{}", director.log());
    assert_one_sticky_service(&lab, &director);
}

#[test]
fn a_fwmark_service_no_rule_marks_is_warned_at_its_mark() {
    let lab = web_lab();
    let director = Director::start(&lab, "nomark", &lvs_cf(""));
    let log = lab.log_text(director.pid());
    assert!(
        log.contains(
            "nomark.cf:6:14: warning: no packet gets firewall mark 80, so none reaches this \
             service: no classifier rule in this file and no iptables or nftables MARK rule \
             for it on this host"
        ),
        "{log}"
    );
    assert!(!connects(&lab, 80));
}
