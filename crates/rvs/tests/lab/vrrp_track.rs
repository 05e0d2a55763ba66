//! VRRP tracking on a live lab: a `track_script` with a weight moves the master's
//! priority below the backup's and back (the backup preempts, then the master does), and a
//! tracked interface going down puts a sync group in FAULT, so both its addresses — the VIP
//! and the NAT router's — move to the other director together and traffic keeps flowing.

use std::time::Duration;

use crate::cluster::Director;
use crate::failover::{Seen, pair_lab, wait_log_count, wait_seen};
use crate::lab::{self, Lab};

/// The web service over the three real servers (NAT).
fn web_service() -> String {
    let mut s = format!(
        "virtual_server {} 80 {{\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n",
        lab::VIP
    );
    for i in 1..=3 {
        s += &format!(
            "  real_server {} 80 {{\n    weight 1\n  }}\n",
            lab::rs_addr(i)
        );
    }
    s + "}\n"
}

/// One instance owning both addresses (VRRPv3, 100 ms adverts), `extra` inside it.
fn single(priority: u8, extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  version 3\n  advert_int 0.1\n{extra}  virtual_ipaddress {{\n    \
         {}/24 dev eth0\n    {}/24 dev eth1\n  }}\n}}\n{}",
        lab::VIP,
        lab::NAT_ROUTER,
        web_service()
    )
}

/// Two instances in a sync group: the VIP on eth0, the NAT router's address on eth1;
/// `extra` inside the eth1 one.
fn grouped(priority: u8, extra: &str) -> String {
    format!(
        "vrrp_sync_group G {{\n  group {{\n    VI_PUB\n    VI_PRIV\n  }}\n}}\n\
         vrrp_instance VI_PUB {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  version 3\n  advert_int 0.1\n  virtual_ipaddress {{\n    \
         {}/24 dev eth0\n  }}\n}}\n\
         vrrp_instance VI_PRIV {{\n  state BACKUP\n  interface eth1\n  virtual_router_id 52\n  \
         priority {priority}\n  version 3\n  advert_int 0.1\n{extra}  virtual_ipaddress {{\n    \
         {}/24 dev eth1\n  }}\n}}\n{}",
        lab::VIP,
        lab::NAT_ROUTER,
        web_service()
    )
}

fn ip(lab: &Lab, node: &str, args: &[&str]) {
    let out = lab.exec(node, "ip", args).unwrap();
    assert!(
        out.status.success(),
        "ip {args:?} in {node}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `track_script` with `weight -60`: the master's script failing drops it from 150 to 90,
/// below the backup's 100, which takes over; the script succeeding again brings it back to
/// 150 and it preempts. `rvs list --failover` shows the effective priority.
#[test]
fn track_script_weight_moves_the_master() {
    let lab = pair_lab();
    let flag = lab.info().workdir().join("fail-check");
    let script = format!(
        "vrrp_script chk_flag {{\n  script \"test ! -e {}\"\n  interval 0.2\n  weight -60\n  \
         rise 1\n  fall 1\n}}\n",
        flag.display()
    );
    let track = "  track_script {\n    chk_flag\n  }\n";
    let a = Director::start_in(
        &lab,
        "director",
        "keepalived-trk-a",
        &format!("{script}{}", single(150, track)),
    );
    let b = Director::start_in(&lab, "director2", "keepalived-trk-b", &single(100, ""));
    wait_log_count(&lab, a.pid(), "state=MASTER", 1, Duration::from_secs(5));
    wait_log_count(&lab, b.pid(), "state=BACKUP", 1, Duration::from_secs(5));
    wait_seen(&lab, Seen::Rvs, Duration::from_secs(5), "the master serves");

    std::fs::write(&flag, "").unwrap();
    wait_log_count(&lab, a.pid(), "track_script", 1, Duration::from_secs(3));
    wait_log_count(&lab, b.pid(), "state=MASTER", 1, Duration::from_secs(3));
    wait_log_count(&lab, a.pid(), "state=BACKUP", 2, Duration::from_secs(3));
    let view = rvs::daemon::request_listing(a.control(), &["--failover"]).unwrap();
    let row: Vec<&str> = view
        .lines()
        .find(|l| l.starts_with("VI_1 "))
        .unwrap_or_else(|| panic!("{view}"))
        .split_whitespace()
        .collect();
    assert_eq!(&row[4..6], ["BACKUP", "90"], "{view}");
    wait_seen(&lab, Seen::Rvs, Duration::from_secs(5), "the backup serves");

    std::fs::remove_file(&flag).unwrap();
    wait_log_count(&lab, a.pid(), "state=MASTER", 2, Duration::from_secs(3));
    wait_log_count(&lab, b.pid(), "state=BACKUP", 2, Duration::from_secs(3));
    wait_seen(
        &lab,
        Seen::Rvs,
        Duration::from_secs(5),
        "the master serves again",
    );
}

/// `track_interface` in a sync group: the tracked interface of the master's eth1 instance
/// goes down, that instance enters FAULT and takes its group along, so the other director
/// takes the VIP and the NAT router's address together — requests through the VIP (whose
/// replies come back through the NAT router's address) are answered. Up again, the master
/// takes both back.
#[test]
fn tracked_interface_down_moves_the_whole_sync_group() {
    let lab = pair_lab();
    // A veth pair inside the director (this kernel has no dummy module): trk0 is up and
    // running while both ends are up.
    ip(
        &lab,
        "director",
        &[
            "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
        ],
    );
    ip(&lab, "director", &["link", "set", "trk1", "up"]);
    ip(&lab, "director", &["link", "set", "trk0", "up"]);
    let track = "  track_interface {\n    trk0\n  }\n";
    let a = Director::start_in(&lab, "director", "keepalived-grp-a", &grouped(150, track));
    let b = Director::start_in(&lab, "director2", "keepalived-grp-b", &grouped(100, ""));
    wait_log_count(&lab, a.pid(), "state=MASTER", 2, Duration::from_secs(5));
    wait_log_count(&lab, b.pid(), "state=BACKUP", 2, Duration::from_secs(5));
    wait_seen(&lab, Seen::Rvs, Duration::from_secs(5), "the master serves");

    ip(&lab, "director", &["link", "set", "trk0", "down"]);
    wait_log_count(&lab, a.pid(), "state=FAULT", 1, Duration::from_secs(3));
    wait_log_count(&lab, b.pid(), "state=MASTER", 2, Duration::from_secs(3));
    let log_b = lab.log_text(b.pid());
    assert!(
        log_b.contains("instance=VI_PUB state=MASTER")
            && log_b.contains("instance=VI_PRIV state=MASTER"),
        "both instances moved: {log_b}"
    );
    wait_seen(
        &lab,
        Seen::Rvs,
        Duration::from_secs(5),
        "the other director serves (VIP and NAT router moved together)",
    );

    ip(&lab, "director", &["link", "set", "trk0", "up"]);
    wait_log_count(&lab, a.pid(), "state=MASTER", 4, Duration::from_secs(4));
    wait_log_count(&lab, b.pid(), "state=BACKUP", 4, Duration::from_secs(4));
    wait_seen(
        &lab,
        Seen::Rvs,
        Duration::from_secs(5),
        "the master serves again",
    );
}
