//! Firewall marks read from the host's netfilter rules (`rvs_config::netfilter`).
//!
//! The data files are real output of `iptables-save -t mangle`, `ip6tables-save -t mangle`
//! and `nft -j list ruleset` (iptables 1.8.9, nftables 1.0.6 on Debian 12), captured in a
//! network namespace after running the commands listed in `data/netfilter/README`. The
//! warnings (text and place) and the compiled classifier rules are pinned as snapshots, and
//! the compiled rules are checked by classifying packets: what the kernel's MARK rules
//! would give them.

use rvs_config::netfilter::{
    self, Director, Hook, Position, Ruleset, mark_place, parse_iptables_save, parse_nft_json,
};
use rvs_config::render_all;
use rvs_core::director::classify::classify;
use rvs_core::model::{Family, FwmarkRule};
use std::fmt::Write as _;
use std::net::IpAddr;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/netfilter/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The fwmark services of the tests: HTTP+HTTPS (80), FTP (21), a second VIP's ports (90),
/// DNS from one network (53). Mark 7 is used by no service.
const MARKS: &[u32] = &[80, 21, 90, 53];

fn vips() -> Vec<(IpAddr, Option<String>)> {
    vec![
        (ip("10.1.0.100"), Some("eth0".to_string())),
        (ip("10.1.0.101"), Some("eth0".to_string())),
        (ip("2001:db8:1::100"), Some("eth0".to_string())),
    ]
}

fn rules_text(rules: &[FwmarkRule]) -> String {
    let mut s = String::new();
    for r in rules {
        let _ = writeln!(
            s,
            "mark {} <- {} {}/{}{} ports {}-{}",
            r.mark,
            r.protocol.map_or("any".to_string(), |p| p.to_string()),
            r.dst.addr,
            r.dst.len,
            r.src
                .map_or(String::new(), |p| format!(" from {}/{}", p.addr, p.len)),
            r.ports.0,
            r.ports.1
        );
    }
    s
}

fn report(sets: &[&Ruleset]) -> String {
    let (rules, warnings) = netfilter::compile(sets, MARKS);
    let mut all: Vec<_> = sets.iter().flat_map(|s| s.warnings.clone()).collect();
    all.extend(warnings);
    format!("{}\n{}", rules_text(&rules), render_all(&all))
}

#[test]
fn iptables_save_recipes_compile_and_the_rest_is_warned_at_the_rule() {
    let vips = vips();
    let dir = Director {
        marks: MARKS,
        vips: &vips,
    };
    let v4 = parse_iptables_save(
        &read("iptables-save.txt"),
        "iptables-save -t mangle",
        Family::V4,
        &dir,
    );
    let v6 = parse_iptables_save(
        &read("ip6tables-save.txt"),
        "ip6tables-save -t mangle",
        Family::V6,
        &dir,
    );
    insta::assert_snapshot!("iptables_save", report(&[&v4, &v6]));

    // Each skipped rule is warned once, at its own line, naming what rvs cannot express.
    let lines: Vec<(usize, &str)> = v4
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    let at = |n: usize, what: &str| {
        assert!(
            lines.iter().any(|(l, m)| *l == n && m.contains(what)),
            "line {n} should warn about {what}: {lines:?}"
        );
    };
    at(15, "`-m state`");
    at(16, "`--sport`");
    at(17, "`! -s 10.0.0.0/8` (negation)");
    at(18, "a mask");
    at(19, "`-i eth9`");
    at(25, "chain `LVS`");
    assert_eq!(lines.len(), 6, "{lines:?}");

    // What the compiled classifier gives, packet by packet, is what the MARK rules give.
    let (rules, _) = netfilter::compile(&[&v4, &v6], MARKS);
    let client = ip("198.51.100.7");
    let vip = ip("10.1.0.100");
    let tcp = |dst, port| classify(&rules, 6, client, dst, port);
    assert_eq!(tcp(vip, 80), Some(80));
    assert_eq!(tcp(vip, 443), Some(80));
    assert_eq!(tcp(vip, 21), Some(21));
    assert_eq!(tcp(vip, 15_000), Some(21));
    assert_eq!(tcp(vip, 20_001), None);
    assert_eq!(tcp(ip("10.1.0.101"), 9005), Some(90));
    assert_eq!(tcp(ip("10.1.0.101"), 80), None);
    assert_eq!(tcp(vip, 3306), Some(7), "an unused mark still marks");
    assert_eq!(tcp(vip, 22), None, "skipped: -m state");
    assert_eq!(tcp(vip, 8081), None, "skipped: a user chain");
    assert_eq!(classify(&rules, 17, ip("192.0.2.9"), vip, 53), Some(53));
    assert_eq!(
        classify(&rules, 17, client, vip, 53),
        None,
        "-s 192.0.2.0/24"
    );
    assert_eq!(
        classify(&rules, 6, client, ip("2001:db8:1::100"), 443),
        Some(80)
    );
}

#[test]
fn nft_json_rules_compile_and_the_rest_is_warned_at_the_rule() {
    let vips = vips();
    let dir = Director {
        marks: MARKS,
        vips: &vips,
    };
    let nft = parse_nft_json(&read("nft-ruleset.json"), "nft -j list ruleset", &dir);
    insta::assert_snapshot!("nft_json", report(&[&nft]));
    let (rules, _) = netfilter::compile(&[&nft], MARKS);
    let client = ip("198.51.100.7");
    let vip = ip("10.1.0.100");
    let tcp = |dst, port| classify(&rules, 6, client, dst, port);
    assert_eq!(tcp(vip, 80), Some(80));
    assert_eq!(tcp(vip, 443), Some(80));
    assert_eq!(tcp(vip, 21), Some(21));
    assert_eq!(tcp(vip, 10_000), Some(21));
    assert_eq!(tcp(vip, 8080), Some(90), "a chain hooked at input");
    assert_eq!(tcp(vip, 110), None, "skipped: `!=`");
    assert_eq!(tcp(ip("2001:db8:1::100"), 443), Some(80));
    assert_eq!(classify(&rules, 17, ip("192.0.2.9"), vip, 53), Some(53));
    assert_eq!(nft.warnings.len(), 5, "{:?}", nft.warnings);
}

#[test]
fn iptables_nft_tables_are_left_to_iptables_save() {
    // What `nft -j list ruleset` shows for rules iptables-nft made: the MARK target as an
    // opaque `xt` expression. iptables-save reads those; the nft reader must not warn.
    let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "mangle", "handle": 1}}, {"chain": {"family": "ip", "table": "mangle", "name": "PREROUTING", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}}, {"rule": {"family": "ip", "table": "mangle", "chain": "PREROUTING", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.1.0.100"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"counter": {"packets": 0, "bytes": 0}}, {"xt": {"type": "target", "name": "MARK"}}]}}]}"#;
    let vips = vips();
    let dir = Director {
        marks: MARKS,
        vips: &vips,
    };
    let r = parse_nft_json(json, "nft -j list ruleset", &dir);
    assert!(r.markings.is_empty() && r.warnings.is_empty(), "{r:?}");
}

#[test]
fn unreadable_nft_output_is_one_warning() {
    let dir = Director {
        marks: MARKS,
        vips: &[],
    };
    let r = parse_nft_json("Error: syntax error", "nft -j list ruleset", &dir);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0]
            .message
            .starts_with("cannot read the nftables ruleset (not JSON"),
        "{}",
        r.warnings[0].message
    );
}

#[test]
fn the_last_mark_rule_wins_as_in_the_kernel() {
    // MARK does not stop the chain: the later rule decides. Port 80 ends with mark 99 (no
    // service), so FWM 80 must not take it; 443 keeps 80.
    let text = "*mangle\n\
        -A PREROUTING -d 10.1.0.100/32 -p tcp -m multiport --dports 80,443 -j MARK --set-xmark 0x50/0xffffffff\n\
        -A PREROUTING -d 10.1.0.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x63/0xffffffff\n\
        -A PREROUTING -d 10.1.0.100/32 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x0/0xffffffff\n\
        COMMIT\n";
    let vips = vips();
    let dir = Director {
        marks: &[80],
        vips: &vips,
    };
    let r = parse_iptables_save(text, "iptables-save -t mangle", Family::V4, &dir);
    let (rules, warnings) = netfilter::compile(&[&r], &[80]);
    let (c, vip) = (ip("198.51.100.7"), ip("10.1.0.100"));
    assert_eq!(classify(&rules, 6, c, vip, 80), Some(99));
    // Clearing a mark cannot be expressed: warned, and 443 keeps mark 80.
    assert_eq!(classify(&rules, 6, c, vip, 443), Some(80));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 4);
    assert!(warnings[0].message.contains("rvs cannot take a mark away"));
}

#[test]
fn chains_run_by_hook_then_priority() {
    // nft's prerouting chain at priority -200 runs before iptables' mangle (-150): the
    // iptables rule is the later one and decides.
    let ipt = "*mangle\n-A PREROUTING -d 10.1.0.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x50/0xffffffff\nCOMMIT\n";
    let nft = r#"{"nftables": [{"chain": {"family": "ip", "table": "t", "name": "c", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -200, "policy": "accept"}}, {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 81}}]}}]}"#;
    let vips = vips();
    let dir = Director {
        marks: &[80, 81],
        vips: &vips,
    };
    let a = parse_iptables_save(ipt, "iptables-save -t mangle", Family::V4, &dir);
    let b = parse_nft_json(nft, "nft -j list ruleset", &dir);
    assert_eq!(
        b.markings[0].position,
        Position {
            hook: Hook::Prerouting,
            priority: -200
        }
    );
    let (rules, _) = netfilter::compile(&[&a, &b], &[80, 81]);
    let (c, vip) = (ip("198.51.100.7"), ip("10.1.0.100"));
    assert_eq!(classify(&rules, 6, c, vip, 80), Some(80));
    assert_eq!(classify(&rules, 6, c, ip("10.1.0.55"), 80), Some(81));
}

#[test]
fn an_interface_match_narrows_to_the_vips_received_there() {
    // 10.1.0.0/24 holds a VIP on eth0 and one on eth2: `-i eth2` keeps only the latter.
    let text = "*mangle\n-A PREROUTING -d 10.1.0.0/24 -i eth+ -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x50/0xffffffff\n\
                -A PREROUTING -d 10.1.0.0/24 -i eth2 -p tcp -m tcp --dport 81 -j MARK --set-xmark 0x50/0xffffffff\nCOMMIT\n";
    let vips = vec![
        (ip("10.1.0.100"), Some("eth0".to_string())),
        (ip("10.1.0.200"), Some("eth2".to_string())),
    ];
    let dir = Director {
        marks: &[80],
        vips: &vips,
    };
    let r = parse_iptables_save(text, "iptables-save -t mangle", Family::V4, &dir);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let (rules, _) = netfilter::compile(&[&r], &[80]);
    assert_eq!(
        rules_text(&rules),
        "mark 80 <- TCP 10.1.0.200/32 ports 81-81\nmark 80 <- TCP 10.1.0.0/24 ports 80-80\n"
    );
}

#[test]
fn unmarked_services_are_warned_at_their_mark() {
    let text = "virtual web {\n    fwmark = 80\n}\nvirtual six {\n    fwmark = 81\n}\n";
    let at = |mark| mark_place(text, "lvs.cf", mark);
    let services = vec![
        (80, Family::V4, at(80)),
        (81, Family::V4, at(81)),
        (81, Family::V6, at(81)),
    ];
    let rules = [FwmarkRule {
        protocol: None,
        dst: rvs_core::model::Prefix {
            addr: ip("10.1.0.100"),
            len: 32,
        },
        src: None,
        ports: (80, 80),
        mark: 81,
    }];
    let w = netfilter::unmarked(&services, &rules, "iptables or nftables");
    insta::assert_snapshot!("unmarked", render_all(&w));
    assert_eq!(w.iter().map(|d| d.line).collect::<Vec<_>>(), [2, 5]);
}
