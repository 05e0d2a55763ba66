//! Failover configuration end to end: keepalived's VRRP blocks and lvs.cf's pulse keys map
//! to what the daemon runs, with keepalived's and Piranha's defaults; refusals are located
//! at file:line:column; every upstream keepalived sample with VRRP maps (or is refused for
//! a documented reason); the result is accepted by the rvs-core engines; and no mutated
//! input panics.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use rvs_config::{
    Diagnostic, FailoverConfig, FailoverMode, PulseSetup, Severity, SyncSetup, VrrpInstanceSetup,
    VrrpSetup, describe_failover, failover_from_keepalived, failover_from_lvs_cf, parse_keepalived,
    parse_lvs_cf, render_all,
};
use rvs_core::pulse::{Pulse, Role};
use rvs_core::time::Instant;
use rvs_core::vrrp::{
    Auth, GarpConfig, InitialState, Preempt, RouterId, Track, Version, VirtualRouter, Vrrp,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Map a keepalived.conf text; panics with the diagnostics when refused.
fn ka(text: &str) -> FailoverConfig {
    let kc = parse_keepalived(text, "k.conf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    failover_from_keepalived(&kc).unwrap_or_else(|d| panic!("{}", render_all(&d)))
}

/// The refusal of a keepalived.conf text by the failover mapping (the parser accepts it).
fn ka_err(text: &str) -> Vec<Diagnostic> {
    let kc = parse_keepalived(text, "k.conf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    match failover_from_keepalived(&kc) {
        Ok(f) => panic!("accepted: {f:?}"),
        Err(d) => {
            assert!(d.iter().all(Diagnostic::is_error));
            d
        }
    }
}

fn vrrp(f: &FailoverConfig) -> &VrrpSetup {
    match &f.mode {
        FailoverMode::Vrrp(v) => v,
        m => panic!("not VRRP: {m:?}"),
    }
}

fn only(f: &FailoverConfig) -> &VrrpInstanceSetup {
    let v = vrrp(f);
    assert_eq!(v.instances.len(), 1);
    &v.instances[0]
}

/// An instance block with `body` inside.
fn inst(name: &str, body: &str) -> String {
    format!("vrrp_instance {name} {{\n{body}}}\n")
}

const BASIC: &str =
    " interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.100/24\n }\n";

/// Where a diagnostic points: (line, column, message).
fn at(d: &Diagnostic) -> (usize, usize, &str) {
    (d.line, d.column, d.message.as_str())
}

#[test]
fn a_minimal_instance_gets_keepalived_defaults() {
    let f = ka(&inst("VI_1", BASIC));
    assert!(f.warnings.is_empty(), "{}", render_all(&f.warnings));
    assert_eq!(f.sync, None);
    let i = only(&f);
    assert_eq!(i.name, "VI_1");
    assert_eq!(i.interface, "eth0");
    let r = &i.router;
    assert_eq!(r.vrid, 51);
    assert_eq!(r.priority, 100);
    assert_eq!(r.version, Version::V2);
    assert_eq!(r.advert_int, secs(1));
    assert_eq!(r.preempt, Preempt::Always);
    assert_eq!(r.initial_state, InitialState::Backup);
    assert!(r.accept, "keepalived's non-strict default");
    assert_eq!(r.auth, Auth::None);
    assert!(r.unicast_peers.is_empty());
    assert_eq!(r.addresses, vec![ip("10.0.0.100")]);
    assert_eq!(r.garp, GarpConfig::default());
    assert!(!r.lower_prio_no_advert && !r.higher_prio_send_advert);
    assert!(!r.check_unicast_src && !r.skip_check_adv_addr);
    // The primary address comes from the interface at start.
    assert_eq!(r.primary_ip, ip("0.0.0.0"));
    assert!(i.primary_from_interface);
    // keepalived tracks the instance's own interface: down means FAULT.
    assert_eq!(i.track_interfaces, ["eth0"]);
    assert_eq!(
        r.tracks,
        vec![Track {
            weight: 0,
            reverse: false,
            initially_up: true
        }]
    );
    assert!(i.track_scripts.is_empty());
    let a = &i.addresses[0];
    assert_eq!(
        (a.addr, a.prefix, a.device.as_str()),
        (ip("10.0.0.100"), 24, "eth0")
    );
    assert_eq!((a.label.as_deref(), a.scope.as_deref()), (None, None));
    assert!(!i.use_vmac && i.vmac_name.is_none());
    assert!(VirtualRouter::new(r.clone()).is_ok());
}

#[test]
fn state_master_without_priority_is_the_address_owner() {
    let f = ka(&inst("V", &format!(" state MASTER\n{BASIC}")));
    let r = &only(&f).router;
    assert_eq!(r.priority, 255);
    assert_eq!(r.initial_state, InitialState::Master);

    let f = ka(&inst(
        "V",
        &format!(" state MASTER\n priority 150\n{BASIC}"),
    ));
    let r = &only(&f).router;
    assert_eq!((r.priority, r.initial_state), (150, InitialState::Master));

    let f = ka(&inst("V", &format!(" state BACKUP\n{BASIC}")));
    let r = &only(&f).router;
    assert_eq!((r.priority, r.initial_state), (100, InitialState::Backup));

    // Priority 255 acts as state MASTER, unless nopreempt.
    let f = ka(&inst("V", &format!(" priority 255\n{BASIC}")));
    assert_eq!(only(&f).router.initial_state, InitialState::Master);
    let f = ka(&inst("V", &format!(" priority 255\n nopreempt\n{BASIC}")));
    let r = &only(&f).router;
    assert_eq!(
        (r.initial_state, r.preempt),
        (InitialState::Backup, Preempt::Never)
    );
}

#[test]
fn preemption() {
    let f = ka(&inst("V", &format!(" nopreempt\n{BASIC}")));
    assert_eq!(only(&f).router.preempt, Preempt::Never);
    let f = ka(&inst("V", &format!(" preempt_delay 30\n{BASIC}")));
    assert_eq!(only(&f).router.preempt, Preempt::After(secs(30)));
    let f = ka(&inst("V", &format!(" preempt_delay 0.5\n{BASIC}")));
    assert_eq!(only(&f).router.preempt, Preempt::After(ms(500)));
    // keepalived resets preempt_delay under nopreempt, with a log line.
    let f = ka(&inst(
        "V",
        &format!(" nopreempt\n preempt_delay 30\n{BASIC}"),
    ));
    assert_eq!(only(&f).router.preempt, Preempt::Never);
    assert_eq!(f.warnings.len(), 1);
    assert_eq!(
        (f.warnings[0].line, f.warnings[0].column),
        (3, 16),
        "{}",
        render_all(&f.warnings)
    );
}

#[test]
fn advert_int_is_rounded_per_version_and_checked() {
    let adv = |version: &str, v: &str| {
        ka(&inst(
            "V",
            &format!(" version {version}\n advert_int {v}\n{BASIC}"),
        ))
    };
    let f = adv("2", "3");
    assert_eq!(only(&f).router.advert_int, secs(3));
    assert!(f.warnings.is_empty());
    // v2 carries whole seconds: keepalived rounds to the nearest.
    let f = adv("2", "1.4");
    assert_eq!(only(&f).router.advert_int, secs(1));
    assert_eq!(
        at(&f.warnings[0]),
        (
            3,
            13,
            "advert_int 1.4s rounded to 1s: VRRP version 2 carries whole seconds"
        )
    );
    assert_eq!(only(&adv("2", "1.5")).router.advert_int, secs(2));
    assert_eq!(only(&adv("2", "255")).router.advert_int, secs(255));
    // v3 carries centiseconds.
    let f = adv("3", "0.25");
    assert_eq!(only(&f).router.advert_int, ms(250));
    assert!(f.warnings.is_empty());
    let f = adv("3", "0.005");
    assert_eq!(only(&f).router.advert_int, ms(10));
    assert_eq!(f.warnings.len(), 1);
    assert_eq!(only(&adv("3", "40.95")).router.advert_int, ms(40_950));

    let err = |version: &str, v: &str| {
        ka_err(&inst(
            "V",
            &format!(" version {version}\n advert_int {v}\n{BASIC}"),
        ))
    };
    for (version, v, shown, expected) in [
        (
            "2",
            "256",
            "256s",
            "an interval in 1..=255 s (whole seconds)",
        ),
        (
            "2",
            "0.4",
            "400ms",
            "an interval in 1..=255 s (whole seconds)",
        ),
        (
            "3",
            "40.96",
            "40.96s",
            "an interval in 0.01..=40.95 s (centiseconds)",
        ),
        (
            "3",
            "0.004",
            "4ms",
            "an interval in 0.01..=40.95 s (centiseconds)",
        ),
    ] {
        let d = err(version, v);
        assert_eq!(d.len(), 1, "{}", render_all(&d));
        let msg = format!("advert_int {shown} is out of range for VRRP version {version}");
        assert_eq!(at(&d[0]), (3, 13, msg.as_str()));
        assert_eq!(d[0].expected.as_deref(), Some(expected));
    }
}

#[test]
fn versions_follow_the_family_and_the_global_default() {
    let f = ka(&inst("V", BASIC));
    assert_eq!(only(&f).router.version, Version::V2);
    let f = ka(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        inst("V", BASIC)
    ));
    assert_eq!(only(&f).router.version, Version::V3);
    // An explicit version beats the global one.
    let f = ka(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        inst("V", &format!(" version 2\n{BASIC}"))
    ));
    assert_eq!(only(&f).router.version, Version::V2);

    let v6 = " interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  fe80::7\n  2001:db8::7/64\n }\n";
    let f = ka(&format!(
        "global_defs {{\n vrrp_version 2\n}}\n{}",
        inst("V6", v6)
    ));
    let i = only(&f);
    assert_eq!(i.router.version, Version::V3, "IPv6 instances are VRRPv3");
    assert_eq!(i.router.primary_ip, ip("::"));
    assert_eq!(i.addresses[1].prefix, 64);
    assert_eq!(i.addresses[0].prefix, 128);
    assert!(VirtualRouter::new(i.router.clone()).is_ok());

    let d = ka_err(&inst("V6", &format!(" version 2\n{v6}")));
    assert_eq!(
        at(&d[0]),
        (
            2,
            10,
            "vrrp_instance `V6` is IPv6, which VRRP version 2 cannot carry"
        )
    );
}

#[test]
fn authentication() {
    let auth = |version: &str, body: &str| {
        inst(
            "V",
            &format!(" version {version}\n authentication {{\n{body} }}\n{BASIC}"),
        )
    };
    let f = ka(&auth("2", "  auth_type PASS\n  auth_pass secret\n"));
    assert_eq!(only(&f).router.auth, Auth::Pass(*b"secret\0\0"));
    assert_eq!(only(&f).router.auth, Auth::pass("secret"));
    // keepalived uses the first 8 characters (the parser warns).
    let kc = parse_keepalived(
        &auth("2", "  auth_type PASS\n  auth_pass 0123456789\n"),
        "k",
    )
    .unwrap();
    let f = failover_from_keepalived(&kc).unwrap();
    assert_eq!(only(&f).router.auth, Auth::Pass(*b"01234567"));
    // VRRPv3 has no authentication: ignored, with a warning at the auth_type.
    let f = ka(&auth("3", "  auth_type PASS\n  auth_pass secret\n"));
    assert_eq!(only(&f).router.auth, Auth::None);
    assert_eq!(
        at(&f.warnings[0]),
        (
            4,
            13,
            "VRRP version 3 has no authentication: ignored, as keepalived does"
        )
    );
    // PASS without a password is ignored, as keepalived does.
    let f = ka(&auth("2", "  auth_type PASS\n"));
    assert_eq!(only(&f).router.auth, Auth::None);
    assert_eq!(f.warnings.len(), 1);
    assert_eq!(
        at(&f.warnings[0]),
        (
            4,
            13,
            "`auth_type PASS` without `auth_pass`: ignored, as keepalived does"
        )
    );
    // AH, keyed with the password's first 8 bytes, as keepalived.
    let f = ka(&auth("2", "  auth_type AH\n  auth_pass secret\n"));
    assert!(f.warnings.is_empty(), "{}", render_all(&f.warnings));
    assert_eq!(only(&f).router.auth, Auth::Ah(*b"secret\0\0"));
    assert_eq!(only(&f).router.initial_state, InitialState::Backup);
    let f = ka(&auth("2", "  auth_type AH\n  auth_pass 0123456789\n"));
    assert_eq!(only(&f).router.auth, Auth::Ah(*b"01234567"));
    // AH without a password: ignored, as keepalived does.
    let f = ka(&auth("2", "  auth_type AH\n"));
    assert_eq!(only(&f).router.auth, Auth::None);
    assert_eq!(
        at(&f.warnings[0]),
        (
            4,
            13,
            "`auth_type AH` without `auth_pass`: ignored, as keepalived does"
        )
    );
    // AH with VRRPv3 (and so with IPv6, always VRRPv3): ignored.
    let f = ka(&auth("3", "  auth_type AH\n  auth_pass secret\n"));
    assert_eq!(only(&f).router.auth, Auth::None);
    assert_eq!(f.warnings.len(), 1);
    assert!(f.warnings[0].message.starts_with("VRRP version 3"));
}

#[test]
fn ah_with_state_master_starts_as_backup() {
    // keepalived vrrp_complete_instance: "Initial state master is incompatible with AH
    // authentication - clearing" (a router must hear the sequence number first).
    let text = inst(
        "V",
        &format!(
            " state MASTER\n priority 150\n authentication {{\n  auth_type AH\n  auth_pass k\n }}\n{BASIC}"
        ),
    );
    let f = ka(&text);
    assert_eq!(only(&f).router.initial_state, InitialState::Backup);
    assert_eq!(
        at(&f.warnings[0]),
        (
            2,
            8,
            "`state MASTER` is incompatible with AH authentication (a router must hear the \
             master's sequence number before taking over): starts as BACKUP, as keepalived does"
        )
    );
    assert_eq!(f.warnings.len(), 1);
    // The address owner (255) starts as master all the same, without a warning.
    let f = ka(&text.replace("priority 150", "priority 255"));
    assert_eq!(only(&f).router.initial_state, InitialState::Master);
    assert!(f.warnings.is_empty(), "{}", render_all(&f.warnings));
    // PASS keeps state MASTER.
    let f = ka(&text.replace("auth_type AH", "auth_type PASS"));
    assert_eq!(only(&f).router.initial_state, InitialState::Master);
}

#[test]
fn strict_mode_ignores_authentication() {
    // keepalived vrrp_complete_instance: "Strict mode does not support authentication.
    // Ignoring." — for PASS and AH, from the global `vrrp_strict` or the instance's
    // `strict_mode`, which overrides it.
    let body = |auth: &str, extra: &str| {
        inst(
            "V",
            &format!(
                "{extra} authentication {{\n  auth_type {auth}\n  auth_pass secret\n }}\n{BASIC}"
            ),
        )
    };
    for t in ["PASS", "AH"] {
        let f = ka(&format!(
            "global_defs {{\n vrrp_strict\n}}\n{}",
            body(t, "")
        ));
        assert_eq!(only(&f).router.auth, Auth::None, "{t}");
        assert_eq!(
            at(&f.warnings[0]),
            (
                6,
                13,
                "strict mode (`vrrp_strict` or `strict_mode`) does not support authentication: \
                 ignored, as keepalived does"
            )
        );
        let f = ka(&body(t, " strict_mode\n"));
        assert_eq!(only(&f).router.auth, Auth::None, "{t}");
        let f = ka(&format!(
            "global_defs {{\n vrrp_strict\n}}\n{}",
            body(t, " strict_mode off\n")
        ));
        assert!(f.warnings.is_empty(), "{}", render_all(&f.warnings));
        assert_ne!(only(&f).router.auth, Auth::None, "{t}");
    }
    // The parser says what rvs does with the keys.
    let kc = parse_keepalived(&body("AH", " strict_mode\n"), "k.conf").unwrap();
    assert_eq!(kc.warnings.len(), 1);
    assert_eq!(
        at(&kc.warnings[0]),
        (
            2,
            2,
            "`strict_mode` is not acted on: rvs's VRRP keeps keepalived's default (non-strict) \
             behaviour, except that VRRP authentication is ignored, as strict mode ignores it"
        )
    );
}

#[test]
fn unicast_source_and_peers() {
    let f = ka(&inst(
        "V",
        &format!(
            " unicast_src_ip 10.0.0.1\n unicast_peer {{\n  10.0.0.2\n  10.0.0.3\n }}\n{BASIC}"
        ),
    ));
    let i = only(&f);
    assert_eq!(i.router.primary_ip, ip("10.0.0.1"));
    assert!(!i.primary_from_interface);
    assert_eq!(i.router.unicast_peers, vec![ip("10.0.0.2"), ip("10.0.0.3")]);
    // mcast_src_ip is keepalived's other name for the source address.
    let f = ka(&inst("V", &format!(" mcast_src_ip 10.0.0.9\n{BASIC}")));
    assert_eq!(only(&f).router.primary_ip, ip("10.0.0.9"));

    let d = ka_err(&inst(
        "V",
        &format!(" unicast_peer {{\n  10.0.0.2\n  2001:db8::2\n }}\n{BASIC}"),
    ));
    assert_eq!(
        at(&d[0]),
        (
            4,
            3,
            "unicast peer 2001:db8::2 is IPv6 but vrrp_instance `V` is IPv4"
        )
    );
    let d = ka_err(&inst("V", &format!(" unicast_src_ip 2001:db8::1\n{BASIC}")));
    assert_eq!(
        at(&d[0]),
        (
            2,
            17,
            "`unicast_src_ip` 2001:db8::1 is IPv6 but vrrp_instance `V` is IPv4"
        )
    );
}

#[test]
fn addresses_keep_device_label_and_scope() {
    let f = ka(&inst(
        "V",
        " interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1/24 dev eth1 label eth1:1\n  10.0.0.2 scope link\n }\n virtual_ipaddress_excluded {\n  2001:db8::1/64 dev eth2\n }\n",
    ));
    let i = only(&f);
    let a = &i.addresses;
    assert_eq!(
        (
            a[0].addr,
            a[0].prefix,
            a[0].device.as_str(),
            a[0].label.as_deref()
        ),
        (ip("10.0.0.1"), 24, "eth1", Some("eth1:1"))
    );
    assert_eq!(
        (a[1].prefix, a[1].device.as_str(), a[1].scope.as_deref()),
        (32, "eth0", Some("link"))
    );
    // Excluded addresses are not advertised and may be of either family.
    assert_eq!(i.router.addresses, vec![ip("10.0.0.1"), ip("10.0.0.2")]);
    let x = &i.excluded_addresses[0];
    assert_eq!(
        (x.addr, x.prefix, x.device.as_str()),
        (ip("2001:db8::1"), 64, "eth2")
    );
}

#[test]
fn mixing_families_is_refused_at_the_odd_address() {
    let d = ka_err(&inst(
        "V",
        " interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n  2001:db8::1\n }\n",
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(
        at(&d[0]),
        (
            6,
            3,
            "vrrp_instance `V` mixes address families: 2001:db8::1 is IPv6 but its first virtual address 10.0.0.1 is IPv4"
        )
    );
}

#[test]
fn missing_interface_and_missing_addresses() {
    let d = ka_err(&inst(
        "V",
        " virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n",
    ));
    assert_eq!(at(&d[0]), (1, 15, "vrrp_instance `V` has no `interface`"));
    // VRRPv2 without addresses is allowed (keepalived logs it); v3 is refused.
    let f = ka(&inst("V", " interface eth0\n virtual_router_id 1\n"));
    assert!(only(&f).router.addresses.is_empty());
    let d = ka_err(&inst(
        "V",
        " interface eth0\n virtual_router_id 1\n version 3\n",
    ));
    assert_eq!(
        at(&d[0]),
        (
            1,
            15,
            "vrrp_instance `V` has no virtual address: VRRPv3 needs at least one"
        )
    );
}

#[test]
fn tracked_interfaces_and_scripts() {
    let text = format!(
        "vrrp_script chk_a {{\n script \"/bin/a arg\"\n interval 2\n timeout 3\n weight -4\n rise 2\n fall 3\n user nobody\n}}\n\
         vrrp_script chk_b {{\n script /bin/b\n weight 10 reverse\n init_fail\n}}\n\
         vrrp_script unused {{\n script /bin/c\n}}\nvrrp_script chk_c {{\n script /bin/d\n}}\n{}",
        inst(
            "V",
            &format!(
                " track_interface {{\n  eth1 weight 2\n  eth2 weight -2 reverse\n  eth3\n }}\n track_script {{\n  chk_a\n  chk_b weight 5\n  chk_c weight -254\n }}\n{BASIC}"
            )
        )
    );
    let f = ka(&text);
    let v = vrrp(&f);
    let i = &v.instances[0];
    assert_eq!(i.track_interfaces, ["eth0", "eth1", "eth2", "eth3"]);
    assert_eq!(i.track_scripts, ["chk_a", "chk_b", "chk_c"]);
    let t = |weight, reverse, initially_up| Track {
        weight,
        reverse,
        initially_up,
    };
    assert_eq!(
        i.router.tracks,
        vec![
            t(0, false, true),
            t(2, false, true),
            t(-2, true, true),
            t(0, false, true),
            t(-4, false, true),
            // The entry's weight overrides the script's, and its missing `reverse` too.
            t(5, false, false),
            t(-253, false, true),
        ]
    );
    // Only the tracked scripts run.
    let names: Vec<&str> = v.scripts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chk_a", "chk_b", "chk_c"]);
    let a = v.script("chk_a").unwrap();
    assert_eq!(a.script, "/bin/a arg");
    assert_eq!((a.interval, a.timeout), (secs(2), Some(secs(3))));
    assert_eq!((a.weight, a.rise, a.fall), (-4, 2, 3));
    assert_eq!(a.user.as_deref(), Some("nobody"));
    let b = v.script("chk_b").unwrap();
    assert_eq!(
        (b.weight, b.reverse, b.init_fail, b.timeout),
        (10, true, true, None)
    );
    let msgs: Vec<(usize, usize, &str)> = f.warnings.iter().map(at).collect();
    assert_eq!(
        msgs,
        [
            (
                15,
                13,
                "vrrp_script `unused` is not tracked by any vrrp_instance: not run, as keepalived does"
            ),
            (
                30,
                3,
                "track weight -254 acts as -253: a priority moves within 1..=254"
            ),
        ]
    );
    assert!(VirtualRouter::new(i.router.clone()).is_ok());
}

#[test]
fn dont_track_primary_and_an_explicit_primary_weight() {
    let f = ka(&inst("V", &format!(" dont_track_primary\n{BASIC}")));
    let i = only(&f);
    assert!(i.track_interfaces.is_empty() && i.router.tracks.is_empty());
    // The instance's interface listed with a weight is tracked once, with that weight.
    let f = ka(&inst(
        "V",
        &format!(" track_interface {{\n  eth0 weight 10\n }}\n{BASIC}"),
    ));
    let i = only(&f);
    assert_eq!(i.track_interfaces, ["eth0"]);
    assert_eq!(i.router.tracks[0].weight, 10);
}

#[test]
fn an_unknown_or_repeated_track_script_entry_is_dropped_with_a_warning() {
    // keepalived vrrp_track.c alloc_track_script: a script not defined before the instance
    // ("track script NAME not found, ignoring...") or tracked twice is ignored; the
    // instance runs with the other entries.
    let text = format!(
        "vrrp_script chk {{\n script /bin/true\n}}\n{}vrrp_script later {{\n script /bin/true\n}}\n",
        inst(
            "V",
            &format!(
                " track_script {{\n  chk\n  chx weight 2\n  later\n  chk weight 3\n }}\n{BASIC}"
            )
        )
    );
    let kc = parse_keepalived(&text, "k.conf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let said: Vec<(usize, usize, &str)> = kc.warnings.iter().map(at).collect();
    assert_eq!(
        said,
        [
            (
                7,
                3,
                "vrrp_instance `V` tracks `chx`, which names no vrrp_script defined before it: \
                 keepalived ignores this entry (\"track script chx not found\") and so does rvs \
                 - the instance runs without it"
            ),
            (
                8,
                3,
                "vrrp_instance `V` tracks `later`, which names no vrrp_script defined before it: \
                 keepalived ignores this entry (\"track script later not found\") and so does \
                 rvs - the instance runs without it"
            ),
            (
                9,
                3,
                "vrrp_instance `V` tracks `chk` twice: keepalived ignores the second entry and \
                 so does rvs"
            ),
        ]
    );
    let f = failover_from_keepalived(&kc).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let i = only(&f);
    assert_eq!(i.track_scripts, ["chk"]);
    // The interface, then `chk` with the script's weight (0: failure means FAULT).
    assert_eq!(i.router.tracks.len(), 2);
    assert_eq!(i.router.tracks[1].weight, 0);
}

#[test]
fn notify_scripts_and_vmac() {
    let f = ka(&inst(
        "V",
        &format!(
            " notify_master \"/bin/m a\"\n notify_backup /bin/b nobody nogroup\n notify_fault /bin/f\n notify_stop /bin/s\n notify /bin/n\n use_vmac vrrp51\n no_accept\n{BASIC}"
        ),
    ));
    let i = only(&f);
    assert_eq!(cmd(&i.notify_master), Some("/bin/m a"));
    assert_eq!(cmd(&i.notify_backup), Some("/bin/b"));
    assert_eq!(cmd(&i.notify_fault), Some("/bin/f"));
    assert_eq!(cmd(&i.notify_stop), Some("/bin/s"));
    // lib/notify.c notify_script_init(): the words after the script are its user and group.
    assert_eq!(i.notify_master.as_ref().unwrap().user, None);
    assert_eq!(
        i.notify_backup.as_ref().unwrap().user.as_deref(),
        Some("nobody nogroup")
    );
    assert_eq!(cmd(&i.notify), Some("/bin/n"));
    assert!(i.use_vmac);
    assert_eq!(i.vmac_name.as_deref(), Some("vrrp51"));
    assert!(!i.router.accept);
    let f = ka(&inst("V", &format!(" use_vmac\n{BASIC}")));
    assert!(only(&f).use_vmac && only(&f).vmac_name.is_none());
}

#[test]
fn garp_and_advert_switches_take_global_defaults() {
    let globals = "global_defs {\n vrrp_garp_master_delay 10\n vrrp_garp_master_repeat 3\n vrrp_garp_master_refresh 60\n vrrp_garp_master_refresh_repeat 2\n vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert true\n vrrp_check_unicast_src\n vrrp_skip_check_adv_addr\n}\n";
    let f = ka(&format!("{globals}{}", inst("V", BASIC)));
    let r = &only(&f).router;
    assert_eq!(
        r.garp,
        GarpConfig {
            master_delay: secs(10),
            master_repeat: 3,
            master_refresh: Some(secs(60)),
            master_refresh_repeat: 2,
            // The lower-priority burst follows the global master one (vrrp_complete_init).
            lower_prio_delay: secs(10),
            lower_prio_repeat: 3,
        }
    );
    assert!(r.lower_prio_no_advert && r.higher_prio_send_advert);
    assert!(r.check_unicast_src && r.skip_check_adv_addr);

    // The instance's own values win; a refresh of 0 means none.
    let own = " garp_master_delay 1\n garp_master_repeat 2\n garp_master_refresh 0\n garp_lower_prio_delay 4\n garp_lower_prio_repeat 0\n lower_prio_no_advert false\n skip_check_adv_addr off\n";
    let f = ka(&format!("{globals}{}", inst("V", &format!("{own}{BASIC}"))));
    let r = &only(&f).router;
    assert_eq!(
        r.garp,
        GarpConfig {
            master_delay: secs(1),
            master_repeat: 2,
            master_refresh: None,
            master_refresh_repeat: 2,
            lower_prio_delay: secs(4),
            lower_prio_repeat: 0,
        }
    );
    assert!(!r.lower_prio_no_advert && !r.skip_check_adv_addr);
    assert!(r.higher_prio_send_advert && r.check_unicast_src);
    // Order in the file does not matter: global_defs may come last.
    let f = ka(&format!("{}{globals}", inst("V", BASIC)));
    assert_eq!(only(&f).router.garp.master_delay, secs(10));
}

#[test]
fn duplicate_vrids_on_one_interface_and_family_are_refused() {
    let v4 = |name: &str, vrid: u8, ifname: &str, addr: &str| {
        inst(
            name,
            &format!(
                " interface {ifname}\n virtual_router_id {vrid}\n virtual_ipaddress {{\n  {addr}\n }}\n"
            ),
        )
    };
    let d = ka_err(&format!(
        "{}{}",
        v4("A", 5, "eth0", "10.0.0.1"),
        v4("B", 5, "eth0", "10.0.0.2")
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(
        at(&d[0]),
        (
            10,
            20,
            "virtual_router_id 5 is already used on eth0 for IPv4 by vrrp_instance `A` (line 1)"
        )
    );
    // Another interface, or another family, may reuse the VRID.
    ka(&format!(
        "{}{}{}",
        v4("A", 5, "eth0", "10.0.0.1"),
        v4("B", 5, "eth1", "10.0.0.2"),
        v4("C", 5, "eth0", "2001:db8::1")
    ));
}

#[test]
fn sync_groups() {
    let two = format!(
        "{}{}{}",
        inst("A", BASIC),
        inst(
            "B",
            " interface eth1\n virtual_router_id 52\n virtual_ipaddress {\n  10.1.0.1\n }\n"
        ),
        inst(
            "C",
            " interface eth1\n virtual_router_id 53\n virtual_ipaddress {\n  10.1.0.2\n }\n"
        ),
    );
    let f = ka(&format!(
        "vrrp_sync_group G {{\n group {{\n  B\n  A\n }}\n notify_master /bin/m\n notify /bin/n\n}}\n{two}"
    ));
    let v = vrrp(&f);
    assert_eq!(v.sync_groups.len(), 1);
    let g = &v.sync_groups[0];
    assert_eq!(g.name, "G");
    assert_eq!(g.members, vec![1, 0]);
    assert_eq!(cmd(&g.notify_master), Some("/bin/m"));
    assert_eq!(cmd(&g.notify), Some("/bin/n"));
    assert_eq!(v.instance("B"), Some(1));

    // The engine takes the group as mapped.
    let mut engine = Vrrp::new();
    for i in &v.instances {
        let mut r = i.router.clone();
        r.primary_ip = ip("10.0.0.254");
        engine.add_router(r).unwrap();
    }
    let ids: Vec<RouterId> = g.members.iter().map(|&m| RouterId(m)).collect();
    assert!(engine.add_sync_group(&ids).is_ok());

    // A group of one is removed, as keepalived does.
    let f = ka(&format!(
        "vrrp_sync_group G {{\n group {{\n  A\n }}\n}}\n{two}"
    ));
    assert!(vrrp(&f).sync_groups.is_empty());
    assert_eq!(
        at(&f.warnings[0]),
        (
            1,
            17,
            "vrrp_sync_group `G` has only one instance: removed, as keepalived does"
        )
    );

    let d = ka_err(&format!(
        "vrrp_sync_group G {{\n group {{\n  A\n  X\n }}\n}}\n{two}"
    ));
    assert_eq!(
        at(&d[0]),
        (
            4,
            3,
            "vrrp_sync_group `G` names an unknown vrrp_instance `X`"
        )
    );
    let d = ka_err(&format!(
        "vrrp_sync_group G {{\n group {{\n  A B\n }}\n}}\nvrrp_sync_group H {{\n group {{\n  C A\n }}\n}}\n{two}"
    ));
    assert_eq!(
        at(&d[0]),
        (8, 5, "vrrp_instance `A` is already in vrrp_sync_group `G`")
    );
}

#[test]
fn lvs_sync_daemon() {
    let two = format!(
        "{}{}",
        inst("A", BASIC),
        inst(
            "B",
            " interface eth1\n virtual_router_id 52\n virtual_ipaddress {\n  10.1.0.1\n }\n"
        )
    );
    let f = ka(&format!(
        "global_defs {{\n lvs_sync_daemon eth2 B\n}}\n{two}"
    ));
    let s = f.sync.unwrap();
    assert_eq!(
        s,
        SyncSetup {
            vrrp_instance: Some("B".to_string()),
            // The sync id defaults to the instance's VRID.
            ..SyncSetup::new("eth2".to_string(), 52)
        }
    );
    assert_eq!(
        (s.group, s.port, s.ttl, s.maxlen),
        (ip("224.0.0.81"), 8848, 1, 1472)
    );
    let f = ka(&format!(
        "global_defs {{\n lvs_sync_daemon eth2 A id 9 maxlen 1400 port 9000 ttl 2 group 239.1.1.1\n}}\n{two}"
    ));
    let s = f.sync.unwrap();
    assert_eq!(
        (s.syncid, s.maxlen, s.port, s.ttl, s.group),
        (9, 1400, 9000, 2, ip("239.1.1.1"))
    );
    assert_eq!(s.unicast_peer, None);
    // keepalived lvs_syncd_handler: an invalid value is logged and that option ignored
    // (the default stays), an unknown word is logged and skipped.
    let text = format!(
        "global_defs {{\n lvs_sync_daemon eth2 A id 300 maxlen 120000 port 0 ttl 2 tos 4 group x\n}}\n{two}"
    );
    let kc = parse_keepalived(&text, "k.conf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let said: Vec<(usize, usize, &str)> = kc.warnings.iter().map(at).collect();
    assert_eq!(
        said,
        [
            (
                2,
                28,
                "`lvs_sync_daemon` id `300` is not in 0..=255: keepalived ignores it (\"Invalid \
                 syncid\") and so does rvs: the sync id is the instance's \
                 virtual_router_id"
            ),
            (
                2,
                39,
                "`lvs_sync_daemon` maxlen `120000` is not in 1..=65507: keepalived ignores it \
                 (\"Invalid lvs_sync_daemon maxlen\") and so does rvs: the kernel's default \
                 message size"
            ),
            (
                2,
                51,
                "`lvs_sync_daemon` port `0` is not in 1..=65535: keepalived ignores it \
                 (\"Invalid lvs_sync_daemon port\") and so does rvs: port 8848"
            ),
            (
                2,
                59,
                "unknown `lvs_sync_daemon` option `tos` (keepalived knows `inst`, `id`, \
                 `maxlen`, `port`, `ttl`, `group`): ignored, as keepalived ignores it"
            ),
            (
                2,
                63,
                "unknown `lvs_sync_daemon` option `4` (keepalived knows `inst`, `id`, \
                 `maxlen`, `port`, `ttl`, `group`): ignored, as keepalived ignores it"
            ),
            (
                2,
                71,
                "`lvs_sync_daemon` group `x` is not an IP address: keepalived ignores it \
                 (\"Invalid lvs_sync_daemon group\") and so does rvs (group 224.0.0.81)"
            ),
        ]
    );
    let s = failover_from_keepalived(&kc).unwrap().sync.unwrap();
    assert_eq!(
        (s.syncid, s.maxlen, s.port, s.ttl, s.group),
        (51, 1472, 8848, 2, ip("224.0.0.81"))
    );
    // `inst NAME` names the instance too.
    let f = ka(&format!(
        "global_defs {{\n lvs_sync_daemon eth2 inst B id 3\n}}\n{two}"
    ));
    let s = f.sync.unwrap();
    assert_eq!((s.vrrp_instance.as_deref(), s.syncid), (Some("B"), 3));
    // The rvs extension: a unicast group is the peer to send to; the group stays default.
    let f = ka(&format!(
        "global_defs {{\n lvs_sync_daemon eth2 A group 10.9.9.2\n}}\n{two}"
    ));
    let s = f.sync.unwrap();
    assert_eq!(
        (s.unicast_peer, s.group),
        (Some(ip("10.9.9.2")), ip("224.0.0.81"))
    );
    // The deprecated per-instance form.
    let f = ka(&inst(
        "A",
        &format!(" lvs_sync_daemon_interface eth1\n{BASIC}"),
    ));
    let s = f.sync.unwrap();
    assert_eq!(
        (s.interface.as_str(), s.syncid, s.vrrp_instance.as_deref()),
        ("eth1", 51, Some("A"))
    );

    let d = ka_err(&format!(
        "global_defs {{\n lvs_sync_daemon eth2 Z\n}}\n{two}"
    ));
    assert_eq!(
        at(&d[0]),
        (2, 23, "lvs_sync_daemon names an unknown vrrp_instance `Z`")
    );
}

#[test]
fn mapped_keys_are_not_warned_and_the_others_still_are() {
    let text = format!(
        "global_defs {{\n vrrp_version 2\n vrrp_garp_master_delay 3\n lvs_sync_daemon eth1 V\n \
         vrrp_strict\n vrrp_mcast_group4 224.0.0.19\n}}\n\
         vrrp_script s {{\n script /bin/true\n interval 2\n}}\n\
         vrrp_sync_group G {{\n group {{\n  V\n  W\n }}\n notify /bin/n\n}}\n{}{}",
        inst(
            "V",
            &format!(
                " state MASTER\n priority 150\n advert_int 1\n nopreempt\n authentication {{\n  auth_type PASS\n  auth_pass x\n }}\n \
                 track_script {{\n  s\n }}\n garp_master_repeat 2\n use_vmac\n vmac_xmit_base\n{BASIC}"
            )
        ),
        inst("W", &BASIC.replace("51", "52"))
    );
    let kc = parse_keepalived(&text, "k.conf").unwrap();
    let warned: Vec<&str> = kc
        .warnings
        .iter()
        .map(|w| &w.source_line[w.column - 1..])
        .collect();
    assert_eq!(
        warned,
        [
            "vrrp_strict",
            "vrrp_mcast_group4 224.0.0.19",
            "vmac_xmit_base"
        ],
        "{}",
        render_all(&kc.warnings)
    );
    assert!(kc.warnings[0].message.contains("non-strict"));
    let f = failover_from_keepalived(&kc).unwrap();
    // The one rule of vrrp_strict rvs applies: V's authentication is ignored.
    assert_eq!(f.warnings.len(), 1, "{}", render_all(&f.warnings));
    assert!(f.warnings[0].message.starts_with("strict mode"));
    assert_eq!(f.sync.unwrap().syncid, 51);
}

#[test]
fn no_vrrp_means_no_failover() {
    let f = ka("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.1.0.1 80 {\n }\n}\n");
    assert_eq!(f, FailoverConfig::default());
    assert_eq!(f.mode, FailoverMode::None);
}

/// Refusals of keepalived's own samples, each with its reason.
const REFUSED: &[(&str, &str)] = &[];

/// A compact listing of a failover configuration.
fn summary(f: &FailoverConfig) -> String {
    let mut out = String::new();
    match &f.mode {
        FailoverMode::None => out.push_str("no failover\n"),
        FailoverMode::Pulse(p) => writeln!(out, "{p:?}").unwrap(),
        FailoverMode::Fos(f) => writeln!(out, "{f:?}").unwrap(),
        FailoverMode::Vrrp(v) => {
            for i in &v.instances {
                let r = &i.router;
                writeln!(
                    out,
                    "{} on {} vrid {} prio {} {:?} {:?} advert {:?} {:?} {:?} auth {} peers {:?} addrs {:?}",
                    i.name,
                    i.interface,
                    r.vrid,
                    r.priority,
                    r.version,
                    r.initial_state,
                    r.advert_int,
                    r.preempt,
                    r.primary_ip,
                    r.auth != Auth::None,
                    r.unicast_peers,
                    i.addresses
                        .iter()
                        .map(|a| format!("{}/{} {}", a.addr, a.prefix, a.device))
                        .collect::<Vec<_>>(),
                )
                .unwrap();
                writeln!(
                    out,
                    "  tracks {:?} {:?} weights {:?} garp {:?}/{}",
                    i.track_interfaces,
                    i.track_scripts,
                    r.tracks.iter().map(|t| t.weight).collect::<Vec<_>>(),
                    r.garp.master_delay,
                    r.garp.master_repeat
                )
                .unwrap();
            }
            for g in &v.sync_groups {
                writeln!(out, "group {} {:?}", g.name, g.members).unwrap();
            }
            for s in &v.scripts {
                writeln!(
                    out,
                    "script {} {:?} every {:?} weight {}",
                    s.name, s.script, s.interval, s.weight
                )
                .unwrap();
            }
        }
    }
    if let Some(s) = &f.sync {
        writeln!(out, "{s:?}").unwrap();
    }
    writeln!(out, "--- {} warnings", f.warnings.len()).unwrap();
    out.push_str(&render_all(&f.warnings));
    out
}

#[test]
fn keepalived_samples_with_vrrp_map() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keepalived/samples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut all = String::new();
    let mut with_vrrp = 0;
    for name in &names {
        let rel = format!("samples/{name}");
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let kc = parse_keepalived(&text, &rel).unwrap_or_else(|d| panic!("{}", render_all(&d)));
        if kc.vrrp.instances.is_empty() {
            continue;
        }
        with_vrrp += 1;
        let refused = REFUSED.iter().find(|(n, _)| n == name);
        writeln!(all, "=== {name}").unwrap();
        match (failover_from_keepalived(&kc), refused) {
            (Ok(f), None) => {
                let v = vrrp(&f);
                for i in &v.instances {
                    let mut r = i.router.clone();
                    if i.primary_from_interface {
                        r.primary_ip = if r.primary_ip.is_ipv4() {
                            ip("192.0.2.1")
                        } else {
                            ip("fe80::1")
                        };
                    }
                    assert!(VirtualRouter::new(r).is_ok(), "{name} {}", i.name);
                }
                all += &summary(&f);
            }
            (Err(d), Some((_, why))) => {
                assert!(
                    d.iter()
                        .all(|d| d.severity == Severity::Error && d.line > 0)
                );
                writeln!(all, "REFUSED: {why}\n{}", render_all(&d)).unwrap();
            }
            (Ok(_), Some(_)) => panic!("{name} is listed as refused but maps"),
            (Err(d), None) => panic!("{name} refused:\n{}", render_all(&d)),
        }
    }
    assert_eq!(with_vrrp, 14, "the samples with a vrrp_instance");
    insta::assert_snapshot!("keepalived_samples", all);
}

// ---------------------------------------------------------------------------------------
// lvs.cf: pulse and the sync daemon.

/// An active virtual after `text`'s global keys: pulse refuses to start without one.
fn with_virtual(text: &str) -> String {
    format!("{text}virtual v {{\n active = 1\n address = 10.0.0.100 eth0:1\n}}\n")
}

fn cf(text: &str) -> FailoverConfig {
    let c =
        parse_lvs_cf(&with_virtual(text), "l.cf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    failover_from_lvs_cf(&c).unwrap_or_else(|d| panic!("{}", render_all(&d)))
}

fn cf_err(text: &str) -> Vec<Diagnostic> {
    let c =
        parse_lvs_cf(&with_virtual(text), "l.cf").unwrap_or_else(|d| panic!("{}", render_all(&d)));
    failover_from_lvs_cf(&c).unwrap_err()
}

fn pulse(f: &FailoverConfig) -> &PulseSetup {
    match &f.mode {
        FailoverMode::Pulse(p) => p,
        m => panic!("not pulse: {m:?}"),
    }
}

#[test]
fn the_two_tier_sample_runs_pulse() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nat_two_tier.cf"),
    )
    .unwrap();
    let c = parse_lvs_cf(&text, "nat_two_tier.cf").unwrap();
    let f = failover_from_lvs_cf(&c).unwrap();
    let p = pulse(&f);
    assert_eq!(
        *p,
        PulseSetup {
            primary: ip("192.168.26.9"),
            backup: Some(ip("192.168.26.8")),
            primary_private: None,
            backup_private: None,
            port: 539,
            keepalive: secs(6),
            deadtime: secs(18),
            backup_active: true,
            active_cmd: None,
            inactive_cmd: None,
            monitor_links: false,
        }
    );
    assert_eq!(f.sync, None);
    // The primary's host.
    let me = [ip("127.0.0.1"), ip("192.168.26.9")];
    let pc = p.config_for(&me).unwrap();
    assert_eq!((pc.role, pc.partner), (Role::Primary, ip("192.168.26.8")));
    assert_eq!(
        (pc.keepalive, pc.deadtime, pc.port),
        (secs(6), secs(18), 539)
    );
    assert!(pc.backup_active);
    // The backup's host.
    let pc = p.config_for(&[ip("192.168.26.8")]).unwrap();
    assert_eq!((pc.role, pc.partner), (Role::Backup, ip("192.168.26.9")));
    assert!(Pulse::new(pc, Instant::ZERO).is_ok());
    // A host that is neither.
    assert_eq!(p.config_for(&[ip("192.168.26.7")]), None);
}

#[test]
fn pulse_defaults_private_addresses_and_commands() {
    let f = cf(
        "primary = 10.0.0.1\nbackup = 10.0.0.2\nprimary_private = 10.9.0.1\nbackup_private = 10.9.0.2\n\
         backup_active = 1\nheartbeat = 1\nactive_cmd = /bin/up now\ninactive_cmd = \"/bin/down\"\n",
    );
    let p = pulse(&f);
    assert_eq!((p.port, p.keepalive, p.deadtime), (539, secs(2), secs(5)));
    assert_eq!(p.active_cmd.as_deref(), Some("/bin/up now"));
    assert_eq!(p.inactive_cmd.as_deref(), Some("/bin/down"));
    // The private addresses identify a node too, and are the second heartbeat path.
    assert_eq!(p.role_for(&[ip("10.9.0.2")]), Some(Role::Backup));
    assert_eq!(p.private_partner(Role::Backup), Some(ip("10.9.0.1")));
    assert_eq!(p.private_partner(Role::Primary), Some(ip("10.9.0.2")));
    assert_eq!(
        p.role_for(&[ip("10.9.0.1"), ip("10.0.0.2")]),
        Some(Role::Primary)
    );
}

#[test]
fn no_heartbeat_means_no_failover() {
    let f = cf("primary = 10.0.0.1\nbackup = 10.0.0.2\nbackup_active = 1\n");
    assert_eq!(f.mode, FailoverMode::None);
    let f = cf("heartbeat = 0\nprimary = 10.0.0.1\n");
    assert_eq!(f.mode, FailoverMode::None);
}

#[test]
fn a_primary_without_backup_runs_alone() {
    // What the Piranha tool writes without a backup router.
    let f = cf("primary = 10.0.0.1\nbackup_active = 0\nbackup = 0.0.0.0\nheartbeat = 1\n");
    let p = pulse(&f);
    assert_eq!(p.backup, None);
    let pc = p.config_for(&[ip("10.0.0.1")]).unwrap();
    assert_eq!(
        (pc.role, pc.partner, pc.backup_active),
        (Role::Primary, ip("0.0.0.0"), false)
    );
    assert!(Pulse::new(pc, Instant::ZERO).is_ok());
}

#[test]
fn pulse_refusals_are_located() {
    let d = cf_err("backup = 10.0.0.2\nbackup_active = 1\nheartbeat = 1\n");
    assert_eq!(
        at(&d[0]),
        (
            3,
            13,
            "`heartbeat = 1` needs `primary`: pulse finds its role by that address"
        )
    );
    // pulse clears `backup_active` when there is no backup address, and runs alone.
    let c = parse_lvs_cf(
        &with_virtual("primary = 10.0.0.1\nbackup_active = 1\nheartbeat = 1\n"),
        "l.cf",
    )
    .unwrap();
    let f = failover_from_lvs_cf(&c).unwrap();
    assert_eq!(
        at(&f.warnings[0]),
        (
            2,
            17,
            "`backup_active = 1` without a `backup` address: cleared, as pulse clears it; \
             the primary runs alone"
        )
    );
    assert!(!pulse(&f).backup_active);
    assert_eq!(pulse(&f).backup, None);
    let d = cf_err("primary = 10.0.0.1\nbackup = 2001:db8::2\nbackup_active = 1\nheartbeat = 1\n");
    assert_eq!(
        at(&d[0]),
        (2, 10, "`backup` 2001:db8::2 is IPv6 but `primary` is IPv4")
    );
    let d = cf_err(
        "primary = 10.0.0.1\nbackup = 10.0.0.2\nbackup_active = 1\nheartbeat = 1\nkeepalive = 0\n",
    );
    assert_eq!(
        at(&d[0]),
        (5, 13, "`keepalive = 0`: pulse needs a time in seconds")
    );
    let d = cf_err("syncdaemon = 1\nsyncd_id = 300\n");
    assert_eq!(at(&d[0]), (2, 12, "`syncd_id` 300 is out of range"));
}

#[test]
fn a_deadtime_not_above_keepalive_is_warned() {
    let f = cf(
        "primary = 10.0.0.1\nbackup = 10.0.0.2\nbackup_active = 1\nheartbeat = 1\nkeepalive = 5\ndeadtime = 5\n",
    );
    assert_eq!((f.warnings[0].line, f.warnings[0].column), (6, 12));
}

#[test]
fn the_sync_daemon_of_lvs_cf() {
    let f = cf("syncdaemon = 1\n");
    assert_eq!(f.sync, Some(SyncSetup::new("eth0".to_string(), 0)));
    let f = cf("syncdaemon = 1\nsyncd_iface = eth1\nsyncd_id = 7\n");
    let s = f.sync.unwrap();
    assert_eq!(
        (s.interface.as_str(), s.syncid, s.vrrp_instance),
        ("eth1", 7, None)
    );
    let f = cf("syncdaemon = 0\nsyncd_iface = eth1\n");
    assert_eq!(f.sync, None);
}

#[test]
fn descriptions_for_people() {
    let f = cf(
        "primary = 10.0.0.1\nbackup = 10.0.0.2\nbackup_active = 1\nheartbeat = 1\n\
               keepalive = 6\ndeadtime = 18\nsyncdaemon = 1\n",
    );
    assert_eq!(
        describe_failover(&f),
        [
            "pulse primary 10.0.0.1 backup 10.0.0.2 port 539 keepalive 6s deadtime 18s",
            "connection sync on eth0 syncid 0 to 224.0.0.81:8848"
        ]
    );
    let f = ka(&format!(
        "vrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n}}\n{}{}",
        inst(
            "A",
            &format!(
                " unicast_src_ip 10.0.0.1\n unicast_peer {{\n  10.0.0.2\n }}\n preempt_delay 0.5\n track_interface {{\n  eth1 weight -20\n }}\n{BASIC}"
            )
        ),
        inst(
            "B",
            &format!(
                " nopreempt\n dont_track_primary\n version 3\n advert_int 0.5\n{}",
                BASIC.replace("51", "52")
            )
        )
    ));
    assert_eq!(
        describe_failover(&f),
        [
            "vrrp A on eth0 vrid 51 v2 priority 100 advert 1s from 10.0.0.1 preempt_delay 500ms unicast to 10.0.0.2: 10.0.0.100/24 on eth0",
            "vrrp A tracks eth0 (fault), eth1 (-20)",
            "vrrp B on eth0 vrid 52 v3 priority 100 advert 500ms from eth0's address nopreempt: 10.0.0.100/24 on eth0",
            "vrrp sync group G: A B",
        ]
    );
    assert!(describe_failover(&FailoverConfig::default()).is_empty());
}

// ---------------------------------------------------------------------------------------
// No panics on mutated input.

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keepalived/samples");
    [
        "keepalived.conf.vrrp",
        "keepalived.conf.vrrp.localcheck",
        "keepalived.conf.vrrp.sync",
        "keepalived.conf.vrrp.scripts",
    ]
    .iter()
    .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mapping_never_panics_on_mutated_samples(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[0-9a-zA-Z_ {}\n.:/]"), 1..8),
    ) {
        let mut text = corpus()[which].clone();
        for (at, op, s) in edits {
            if text.is_empty() { break; }
            let mut i = at.index(text.len());
            while !text.is_char_boundary(i) { i -= 1; }
            match op {
                0 => { text.insert_str(i, &s); }
                1 => { let j = (i + s.len()).min(text.len()); if text.is_char_boundary(j) { text.replace_range(i..j, &s); } }
                _ => { let j = (i + 8).min(text.len()); if text.is_char_boundary(j) { text.replace_range(i..j, ""); } }
            }
        }
        if let Ok(kc) = parse_keepalived(&text, "m.conf") {
            match failover_from_keepalived(&kc) {
                Ok(f) => {
                    if let FailoverMode::Vrrp(v) = &f.mode {
                        for g in &v.sync_groups {
                            prop_assert!(g.members.iter().all(|&m| m < v.instances.len()));
                        }
                    }
                }
                Err(d) => {
                    prop_assert!(!d.is_empty());
                    prop_assert!(d.iter().all(|d| d.is_error() && d.line >= 1 && d.column >= 1));
                }
            }
        }
    }

    #[test]
    fn lvs_cf_mapping_never_panics(
        hb in 0u8..2, ba in 0u8..2, ka in 0u32..4, dt in 0u32..4,
        primary in prop::option::of(0u8..3), backup in prop::option::of(0u8..3),
        me in 0u8..3,
    ) {
        let mut text = format!("heartbeat = {hb}\nbackup_active = {ba}\nkeepalive = {ka}\ndeadtime = {dt}\n");
        if let Some(p) = primary { let _ = writeln!(text, "primary = 10.0.0.{p}"); }
        if let Some(b) = backup { let _ = writeln!(text, "backup = 10.0.0.{b}"); }
        let c = parse_lvs_cf(&text, "p.cf").unwrap();
        if let Ok(f) = failover_from_lvs_cf(&c)
            && let FailoverMode::Pulse(p) = &f.mode
            && let Some(pc) = p.config_for(&[format!("10.0.0.{me}").parse().unwrap()])
        {
            prop_assert!(!pc.keepalive.is_zero() && !pc.deadtime.is_zero());
            if pc.role == Role::Backup {
                prop_assert!(pc.backup_active || Pulse::new(pc, Instant::ZERO).is_err());
            }
        }
    }
}

#[test]
fn monitor_links_runs_with_a_backup_and_is_warned_without_one() {
    let f = cf(
        "primary = 10.0.0.1\nprimary_private = 10.9.0.1\nbackup = 10.0.0.2\n\
                backup_active = 1\nheartbeat = 1\nmonitor_links = 1\n",
    );
    assert!(f.warnings.is_empty(), "{}", render_all(&f.warnings));
    let p = pulse(&f);
    assert!(p.monitor_links);
    assert!(p.config_for(&[ip("10.0.0.1")]).unwrap().monitor_links);
    assert_eq!(
        p.own_addresses(Role::Primary),
        [ip("10.0.0.1"), ip("10.9.0.1")]
    );
    assert_eq!(p.own_addresses(Role::Backup), [ip("10.0.0.2")]);
    // pulse.c check_links(): no backup, no link monitoring.
    let f = cf("primary = 10.0.0.1\nheartbeat = 1\nmonitor_links = 1\n");
    assert_eq!(
        at(&f.warnings[0]),
        (
            3,
            17,
            "`monitor_links` has no effect without a backup (`backup_active = 1` and \
             `backup`): a director running alone stays up, as pulse does"
        )
    );
}

/// A notify script's command.
fn cmd(s: &Option<rvs_config::Script>) -> Option<&str> {
    s.as_ref().map(|s| s.command.as_str())
}

#[test]
fn script_user_and_security_reach_the_failover_config() {
    let f = ka(&format!(
        "global_defs {{\n script_user nobody nogroup\n enable_script_security\n}}\n{}",
        inst("V", BASIC)
    ));
    assert_eq!(f.scripts.script_user.as_deref(), Some("nobody nogroup"));
    assert!(f.scripts.enable_script_security);
    let f = ka(&inst("V", BASIC));
    assert_eq!(f.scripts, rvs_config::ScriptPolicy::default());
}
