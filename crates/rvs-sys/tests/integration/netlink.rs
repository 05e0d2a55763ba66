//! `rvs_sys::netlink` against the kernel in a fresh namespace, each change checked with
//! `ip`'s own view of it (an independent reader).

use rvs_sys::netlink::{self, Family};
use rvs_sys::netns::Netns;

fn ip_text(ns: &Netns, args: &[&str]) -> String {
    String::from_utf8_lossy(&ns.ip(args).expect("ip").stdout).into_owned()
}

#[test]
fn links_addresses_routes_and_rules_round_trip_through_the_kernel() {
    let ns = Netns::new("rvs-nl").expect("namespace");
    // veth pairs (this kernel has no dummy links); the peers up so the links get a carrier.
    ns.ip(["link", "add", "nl0", "type", "veth", "peer", "name", "nl0p"])
        .unwrap();
    ns.ip(["link", "add", "nl1", "type", "veth", "peer", "name", "nl1p"])
        .unwrap();
    ns.link_up("nl0p").unwrap();
    ns.link_up("nl1p").unwrap();
    ns.ip(["link", "set", "nl1", "address", "02:00:00:00:00:01"])
        .unwrap();
    ns.add_addr("nl1", "10.9.0.2/24").unwrap();
    ns.ip(["link", "set", "nl1", "up"]).unwrap();
    ns.ip(["route", "add", "192.0.2.0/24", "via", "10.9.0.1"])
        .unwrap();
    ns.ip(["route", "add", "default", "via", "10.9.0.254"])
        .unwrap();

    ns.run(|| {
        // Links: veth links are Ethernet-typed; nl0 starts down.
        let nl1 = netlink::link("nl1").unwrap();
        assert_eq!(nl1.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(nl1.up, "{nl1:?}");
        assert!(!netlink::link("nl0").unwrap().up);
        netlink::set_link_mtu("nl0", 1400).unwrap();
        netlink::set_link_up("nl0").unwrap();
        let nl0 = netlink::link("nl0").unwrap();
        assert_eq!(nl0.mtu, 1400);
        assert!(nl0.up, "{nl0:?}");
        let err = netlink::link("no-such0").unwrap_err().to_string();
        assert!(err.contains("no-such0"), "{err}");
        assert_eq!(netlink::links().unwrap().len(), 5, "lo and two pairs");

        // Addresses: replace is idempotent, the label is kept, delete says if it was there.
        let vip = "10.9.0.100".parse().unwrap();
        netlink::replace_address("nl1", vip, 32, Some("nl1:vip")).unwrap();
        netlink::replace_address("nl1", vip, 32, Some("nl1:vip")).unwrap();
        let v6 = "2001:db8::5".parse().unwrap();
        netlink::replace_address("nl1", v6, 128, None).unwrap();
        let all = netlink::addresses().unwrap();
        let mine: Vec<_> = all.iter().filter(|a| a.addr == vip).collect();
        assert_eq!(mine.len(), 1, "{all:?}");
        assert_eq!(mine[0].label.as_deref(), Some("nl1:vip"));
        assert_eq!(mine[0].prefix, 32);
        assert!(
            all.iter().any(|a| a.addr == v6 && a.prefix == 128),
            "{all:?}"
        );

        // Gateway routes of the main table only (the local and connected ones have none).
        let mut gw = netlink::gateway_routes().unwrap();
        gw.sort_by_key(|r| r.len);
        assert_eq!(gw.len(), 2, "{gw:?}");
        assert_eq!(
            (gw[0].dst, gw[0].len, gw[0].via),
            ("0.0.0.0".parse().unwrap(), 0, "10.9.0.254".parse().unwrap())
        );
        assert_eq!(
            (gw[1].dst, gw[1].len, gw[1].via),
            (
                "192.0.2.0".parse().unwrap(),
                24,
                "10.9.0.1".parse().unwrap()
            )
        );

        // A table of our own and an fwmark rule for it.
        for fam in [Family::V4, Family::V6] {
            netlink::add_fwmark_rule(fam, 0x2f, 4242, 4242).unwrap();
            netlink::replace_default_route(fam, "nl0", 4242).unwrap();
            netlink::replace_default_route(fam, "nl0", 4242).unwrap();
        }
    })
    .unwrap();
    let rules = ip_text(&ns, &["rule", "show"]);
    assert!(
        rules.contains("4242:\tfrom all fwmark 0x2f lookup 4242"),
        "{rules}"
    );
    let rules6 = ip_text(&ns, &["-6", "rule", "show"]);
    assert!(rules6.contains("fwmark 0x2f lookup 4242"), "{rules6}");
    let table = ip_text(&ns, &["route", "show", "table", "4242"]);
    assert_eq!(table.trim(), "default dev nl0 scope link", "{table}");
    let addrs = ip_text(&ns, &["-o", "addr", "show", "dev", "nl1"]);
    assert!(
        addrs.contains("inet 10.9.0.100/32 scope global nl1:vip"),
        "{addrs}"
    );

    ns.run(|| {
        for fam in [Family::V4, Family::V6] {
            assert_eq!(netlink::delete_fwmark_rules(fam, 0x2f, 4242).unwrap(), 1);
            assert_eq!(netlink::delete_fwmark_rules(fam, 0x2f, 4242).unwrap(), 0);
            netlink::flush_table(fam, 4242).unwrap();
        }
        let vip = "10.9.0.100".parse().unwrap();
        assert!(netlink::delete_address("nl1", vip, 32).unwrap());
        assert!(!netlink::delete_address("nl1", vip, 32).unwrap());
    })
    .unwrap();
    assert!(!ip_text(&ns, &["rule", "show"]).contains("fwmark"));
    assert!(!ip_text(&ns, &["-6", "rule", "show"]).contains("fwmark"));
    assert_eq!(ip_text(&ns, &["route", "show", "table", "4242"]).trim(), "");
    assert_eq!(
        ip_text(&ns, &["-6", "route", "show", "table", "4242"]).trim(),
        ""
    );
    assert!(!ip_text(&ns, &["addr", "show", "dev", "nl1"]).contains("10.9.0.100"));
}

#[test]
fn calls_from_inside_a_tokio_runtime_answer_for_the_callers_namespace() {
    let ns = Netns::new("rvs-nlrt").expect("namespace");
    ns.ip(["link", "add", "rt0", "type", "veth", "peer", "name", "rt1"])
        .unwrap();
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let names: Vec<String> = netlink::links()
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect();
            assert_eq!(names, ["lo", "rt1", "rt0"]);
        });
    })
    .unwrap();
}
