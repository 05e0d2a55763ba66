//! `[cluster]` (active-active directors), a service's `consistent = true`, and the warning
//! for an active-active service that schedules by local state without `[sync]`.

use std::time::Duration;

use rvs_config::{ClusterSetup, emit_native, parse_native, render_all};
use rvs_core::model::SchedulerKind;

const SERVICES: &str = r#"
[[service]]
vip = "10.1.0.100"
port = 80
consistent = true
mh_table_size = 65521
method = "dr"

[[service.real_server]]
address = "10.2.0.11"

[[service]]
vip = "10.1.0.100"
port = 443
scheduler = "wlc"
method = "dr"

[[service.real_server]]
address = "10.2.0.11"

[[service]]
vip = "10.1.0.100"
port = 8080
method = "dr"

[[service.real_server]]
address = "10.2.0.11"
"#;

#[test]
fn active_active_with_its_settings_and_defaults() {
    let text = "[cluster]\nmode = \"active-active\"\nroute_table = 100\nconvergence_delay = 2.5\n";
    let c = parse_native(text, "t.toml").expect("valid");
    assert_eq!(
        c.failover.cluster,
        Some(ClusterSetup {
            route_table: 100,
            route_device: "rvsvip0".into(),
            convergence_delay: Duration::from_millis(2500),
        })
    );
    let d = parse_native("[cluster]\nmode = \"active-active\"\n", "t.toml").expect("valid");
    assert_eq!(d.failover.cluster, Some(ClusterSetup::default()));
    assert_eq!(ClusterSetup::default().route_table, 29_302);
    // The default mode is the usual active/backup one.
    let b = parse_native("[cluster]\nroute_table = 100\n", "t.toml").expect("valid");
    assert_eq!(b.failover.cluster, None);
}

#[test]
fn cluster_round_trips_through_emit() {
    let text = format!(
        "[cluster]\nmode = \"active-active\"\nroute_table = 7\nroute_device = \"vips\"\n\
         convergence_delay = 0.25\n\n[sync]\ninterface = \"eth0\"\n{SERVICES}"
    );
    let c = parse_native(&text, "t.toml").expect("valid");
    let again = parse_native(&emit_native(&c), "e.toml").expect("emitted file is valid");
    assert_eq!(again, c);
}

#[test]
fn bad_cluster_values_are_refused_where_they_are() {
    let errs = parse_native(
        "[cluster]\nmode = \"both\"\nroute_table = 254\nroute_device = \"a/b\"\n",
        "t.toml",
    )
    .expect_err("invalid");
    let text = render_all(&errs);
    assert!(text.contains("t.toml:2:8"), "{text}");
    assert!(text.contains("unknown cluster mode `both`"), "{text}");
    assert!(text.contains("t.toml:3:15"), "{text}");
    assert!(
        text.contains("route_table 254 is a table the kernel reserves"),
        "{text}"
    );
    assert!(text.contains("t.toml:4:16"), "{text}");
}

#[test]
fn active_active_refuses_a_failover_protocol() {
    let text = "[cluster]\nmode = \"active-active\"\n\n[pulse]\nprimary = \"10.0.0.1\"\nbackup = \"10.0.0.2\"\n";
    let errs = parse_native(text, "t.toml").expect_err("refused");
    let text = render_all(&errs);
    assert!(text.contains("with `[pulse]`"), "{text}");
    assert!(text.contains("there is no master to elect"), "{text}");
}

#[test]
fn consistent_means_maglev() {
    let c = parse_native(SERVICES, "t.toml").expect("valid");
    let s = &c.config.services;
    assert_eq!(s[0].scheduler, SchedulerKind::Mh);
    assert_eq!(s[0].mh_table_size, 65_521);
    assert_eq!(s[1].scheduler, SchedulerKind::Wlc);
    // Without [cluster] nothing is said about local state.
    assert!(c.failover.warnings.is_empty(), "{:?}", c.failover.warnings);
    let bad =
        "[[service]]\nvip = \"10.1.0.100\"\nport = 80\nscheduler = \"rr\"\nconsistent = true\n";
    let errs = parse_native(bad, "t.toml").expect_err("refused");
    assert_eq!(
        render_all(&errs).lines().next().unwrap_or_default(),
        "t.toml:4:13: error: `consistent = true` with `scheduler = \"rr\"`: a consistent \
         service is scheduled by Maglev hashing"
    );
    let explicit = "[[service]]\nvip = \"10.1.0.100\"\nport = 80\nscheduler = \"mh\"\nconsistent = true\nmethod = \"dr\"\n\n[[service.real_server]]\naddress = \"10.2.0.11\"\n";
    let ok = parse_native(explicit, "t.toml").expect("mh and consistent agree");
    assert_eq!(ok.config.services[0].scheduler, SchedulerKind::Mh);
}

#[test]
fn local_state_schedulers_warn_in_active_active_without_sync() {
    let text = format!("[cluster]\nmode = \"active-active\"\n{SERVICES}");
    let c = parse_native(&text, "t.toml").expect("valid, with warnings");
    let shown = render_all(&c.failover.warnings);
    let lines: Vec<&str> = shown.lines().filter(|l| l.starts_with("t.toml:")).collect();
    assert_eq!(
        lines,
        [
            "t.toml:17:13: warning: virtual service TCP 10.1.0.100:443: scheduler `wlc` chooses \
             by this director's own state, and with `[cluster] mode = \"active-active\"` and no \
             `[sync]` a flow that the routers move to another director is scheduled afresh \
             there and may reach another real server; rvs runs it as written (`consistent = \
             true` schedules by Maglev hashing, the same on every director; `[sync]` shares \
             connections)",
            "t.toml:24:7: warning: virtual service TCP 10.1.0.100:8080: scheduler `wlc` chooses \
             by this director's own state, and with `[cluster] mode = \"active-active\"` and no \
             `[sync]` a flow that the routers move to another director is scheduled afresh \
             there and may reach another real server; rvs runs it as written (`consistent = \
             true` schedules by Maglev hashing, the same on every director; `[sync]` shares \
             connections)",
        ]
    );
    // The file runs as written.
    assert_eq!(c.config.services[1].scheduler, SchedulerKind::Wlc);
    // With [sync], connections are shared: no warning.
    let synced =
        format!("[cluster]\nmode = \"active-active\"\n\n[sync]\ninterface = \"eth0\"\n{SERVICES}");
    let c = parse_native(&synced, "t.toml").expect("valid");
    assert!(c.failover.warnings.is_empty(), "{:?}", c.failover.warnings);
}

#[test]
fn check_config_describes_the_cluster() {
    let c = parse_native(
        "[cluster]\nmode = \"active-active\"\nconvergence_delay = 2\n",
        "t.toml",
    )
    .expect("valid");
    assert_eq!(
        rvs_config::describe_failover(&c.failover),
        ["active-active: VIP routes in table 29302 dev rvsvip0, convergence delay 2s"]
    );
}
