//! VRRPv2 `auth_type AH` against keepalived 2.2 (Debian's package) in the failover lab:
//! rvs and keepalived authenticate each other's protocol-51 advertisements (HMAC-MD5-96
//! over the IP header, AH header and VRRP message, anti-replay sequence numbers), each
//! becomes master in turn, and a peer with another key is refused and counted.
//!
//! Who is master is read as in `failover`: the VIP served through rvs answers HTTP;
//! keepalived (`-P`, VRRP only) holds it on its own kernel, which refuses port 80.

use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::Director;
use crate::failover::{
    Seen, crash_keepalived, drop_multicast, keepalived, pair_lab, poll_until, rvs_conf, seen,
    wait_log_count, wait_seen,
};
use crate::lab::{self, Lab};

/// How long a wait for something the daemons do within a few seconds may take on a loaded
/// 2-core machine before the test gives up (the waits poll and end as soon as it is seen).
const LONG: Duration = Duration::from_secs(15);

/// Wait until rvs has accepted at least `n` adverts (`vrrp_adverts_received`).
fn wait_adverts_in(control: &std::path::Path, n: u64) {
    poll_until(LONG, || {
        let got = metric(control, ADVERTS_IN);
        if got >= n {
            Ok(())
        } else {
            Err(format!("rvs accepted {got} adverts, not {n}"))
        }
    });
}

/// The `authentication` block with AH and `key`.
fn ah(key: &str) -> String {
    format!("  authentication {{\n    auth_type AH\n    auth_pass {key}\n  }}\n")
}

/// An rvs metric line's value (0 when absent).
fn metric(control: &std::path::Path, line_start: &str) -> u64 {
    let text = rvs::daemon::control_request(control, "metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .map_or(0, |v| v.trim().parse().unwrap())
}

const ADVERTS_IN: &str = "rvs_vrrp_adverts_total{instance=\"VI_1\",direction=\"in\"}";
const AUTH_FAILURES: &str =
    "rvs_vrrp_adverts_refused_total{instance=\"VI_1\",reason=\"auth_failure\"}";

/// What keepalived logs when an AH advert fails one of its checks (vrrp.c
/// `vrrp_in_chk_ipsecah`).
const KA_REFUSALS: [&str; 3] = [
    "IPSEC-AH : invalid IPSEC HMAC-MD5 value",
    "IPSEC AH : invalid IPSEC SPI value",
    "already processed. Packet dropped",
];

fn ka_refusals(lab: &Lab, pid: u32) -> usize {
    let text = lab.log_text(pid);
    KA_REFUSALS.iter().map(|n| text.matches(n).count()).sum()
}

/// rvs and keepalived with the same AH key, each master in turn. keepalived (150) is
/// master and rvs (100) hears its adverts and stays backup; keepalived crashes, rvs takes
/// over after Master_Down_Interval carrying the sequence numbers on; keepalived back, it
/// learns rvs's sequence number, preempts, and rvs accepts the next one and steps down.
/// Reversed: rvs (200) master, keepalived (100) backup hearing it without a single
/// refusal; rvs killed, keepalived takes over; rvs back (its counter at 0 again) learns
/// keepalived's sequence number as backup and preempts.
#[test]
fn rvs_and_keepalived_with_ah_each_master_in_turn() {
    let lab = pair_lab();
    let key = ah("ah-key-1");
    let kd = keepalived(&lab, "ah-a", 150, &key);
    wait_log_count(&lab, kd, "Entering MASTER STATE", 1, LONG);
    let rvs = Director::start(&lab, "keepalived-rvs-ah-a", &rvs_conf(100, &key));
    wait_adverts_in(rvs.control(), 3);
    assert_eq!(seen(&lab), Seen::Keepalived, "{}", rvs.log());
    assert!(
        !lab.log_text(rvs.pid()).contains("state=MASTER"),
        "rvs hears keepalived's AH adverts: {}\nkeepalived: {}",
        rvs.log(),
        lab.log_text(kd)
    );
    let heard = metric(rvs.control(), ADVERTS_IN);
    assert!(heard >= 3, "AH adverts accepted from keepalived: {heard}");
    assert_eq!(metric(rvs.control(), AUTH_FAILURES), 0);

    // keepalived dies without resigning: rvs takes over after 3 × 1 s + (256 − 100)/256 s.
    let killed = Instant::now();
    crash_keepalived(&lab, "ah-a", kd);
    wait_seen(&lab, Seen::Rvs, LONG, "rvs takes over");
    let took = killed.elapsed();
    eprintln!("AH failover: keepalived killed, rvs serving after {took:?}");
    // Not before Master_Down_Interval; after it, with room for a loaded machine to notice.
    assert!(
        took >= Duration::from_millis(3_000) && took <= Duration::from_millis(7_000),
        "takeover after Master_Down_Interval (3.61 s), not {took:?}"
    );

    // keepalived returns (its counter at 0), accepts rvs's adverts, preempts with the
    // next sequence number, which rvs accepts: rvs steps down.
    let kd = keepalived(&lab, "ah-b", 150, &key);
    wait_seen(&lab, Seen::Keepalived, LONG, "keepalived preempts");
    wait_log_count(&lab, rvs.pid(), "state=BACKUP", 2, LONG);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(seen(&lab), Seen::Keepalived, "{}", rvs.log());
    assert_eq!(
        ka_refusals(&lab, kd),
        0,
        "keepalived accepted every rvs advert: {}",
        lab.log_text(kd)
    );
    // rvs keeps hearing keepalived as backup.
    wait_adverts_in(rvs.control(), metric(rvs.control(), ADVERTS_IN) + 1);
    rvs.stop();
    lab.stop(kd).unwrap();

    // Roles reversed: rvs 200 master, keepalived 100 backup.
    let rvs = Director::start(&lab, "keepalived-rvs-ah-c", &rvs_conf(200, &key));
    wait_seen(&lab, Seen::Rvs, LONG, "rvs (200) is master");
    let kd = keepalived(&lab, "ah-c", 100, &key);
    thread::sleep(Duration::from_secs(5));
    let ka_log = lab.log_text(kd);
    assert!(
        !ka_log.contains("Entering MASTER STATE"),
        "keepalived (100) hears rvs's AH adverts and stays backup: {ka_log}"
    );
    assert_eq!(ka_refusals(&lab, kd), 0, "{ka_log}");
    lab.kill(rvs.pid()).unwrap();
    wait_log_count(&lab, kd, "Entering MASTER STATE", 1, LONG);
    wait_seen(&lab, Seen::Keepalived, LONG, "keepalived took over");

    // rvs returns with its counter at 0: as backup it takes keepalived's sequence number,
    // then preempts with the next one, which keepalived accepts.
    let rvs = Director::start(&lab, "keepalived-rvs-ah-d", &rvs_conf(200, &key));
    wait_seen(&lab, Seen::Rvs, LONG, "rvs preempts");
    wait_log_count(&lab, kd, "Entering BACKUP STATE", 1, LONG);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(seen(&lab), Seen::Rvs, "{}", lab.log_text(kd));
    assert_eq!(metric(rvs.control(), AUTH_FAILURES), 0, "{}", rvs.log());
}

/// Another key on each side: every advert is refused (keepalived logs the bad ICV, rvs
/// counts `auth_failure`), so there is no election — both become master and stay so.
///
/// keepalived's master restarts its advert timer on every packet it reads for its VRID,
/// valid or not (vrrp_scheduler.c `vrrp_dispatcher_read`: "If we have sent an advert,
/// reset the timer"), so once rvs advertises at the same interval keepalived may fall
/// silent: rvs's count is of the adverts it heard before and while they came.
#[test]
fn ah_with_another_key_is_refused_and_counted() {
    let lab = pair_lab();
    let kd = keepalived(&lab, "ah-key", 150, &ah("ah-key-1"));
    wait_log_count(&lab, kd, "Entering MASTER STATE", 1, LONG);
    let rvs = Director::start(
        &lab,
        "keepalived-rvs-ah-key",
        &rvs_conf(100, &ah("ah-key-2")),
    );
    // keepalived's adverts (150) refused: rvs (100) becomes master after
    // Master_Down_Interval, having refused the three or four adverts heard meanwhile.
    wait_log_count(&lab, rvs.pid(), "state=MASTER", 1, LONG);
    let refused = metric(rvs.control(), AUTH_FAILURES);
    assert!(refused >= 3, "rvs refused keepalived's adverts: {refused}");
    assert_eq!(metric(rvs.control(), ADVERTS_IN), 0);
    // keepalived refuses rvs's, one per advert, and stays master.
    poll_until(LONG, || {
        let n = lab.log_text(kd).matches(KA_REFUSALS[0]).count();
        if n >= 3 {
            Ok(())
        } else {
            Err(format!(
                "keepalived refused {n} of rvs's adverts: {}",
                lab.log_text(kd)
            ))
        }
    });
    let ka_log = lab.log_text(kd);
    // Neither stepped down: keepalived entered BACKUP only at start, rvs likewise.
    assert_eq!(
        ka_log.matches("Entering BACKUP STATE").count(),
        1,
        "{ka_log}"
    );
    assert_eq!(
        ka_log.matches("Entering MASTER STATE").count(),
        1,
        "{ka_log}"
    );
    assert_eq!(lab.log_text(rvs.pid()).matches("state=BACKUP").count(), 1);
    assert_eq!(metric(rvs.control(), ADVERTS_IN), 0);
    // `rvs list --failover` shows the refusals.
    let view = rvs::daemon::request_listing(rvs.control(), &["--failover"]).unwrap();
    let row = view
        .lines()
        .find(|l| l.starts_with("VI_1"))
        .unwrap_or_else(|| panic!("{view}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[4], "MASTER", "{view}");
    assert_eq!(
        cols[8].parse::<u64>().unwrap(),
        metric(rvs.control(), AUTH_FAILURES),
        "{view}"
    );
}

/// AH over unicast peers (multicast VRRP dropped on both directors): the TTL is then outside
/// the ICV. keepalived (150) master, rvs (100) hears it; keepalived crashes, rvs takes over;
/// keepalived back accepts rvs's unicast AH adverts, preempts, and rvs steps down.
#[test]
fn ah_over_unicast_peers_with_keepalived() {
    let lab = pair_lab();
    drop_multicast(&lab, "224.0.0.18");
    let unicast = |me: std::net::Ipv4Addr, peer: std::net::Ipv4Addr| {
        format!(
            "  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n{}",
            ah("uc-key")
        )
    };
    let ka_conf = unicast(lab::DIRECTOR2_PUB, lab::DIRECTOR_PUB);
    let kd = keepalived(&lab, "ah-uc-a", 150, &ka_conf);
    wait_log_count(&lab, kd, "Entering MASTER STATE", 1, LONG);
    let rvs = Director::start(
        &lab,
        "keepalived-rvs-ah-uc",
        &rvs_conf(100, &unicast(lab::DIRECTOR_PUB, lab::DIRECTOR2_PUB)),
    );
    wait_adverts_in(rvs.control(), 3);
    assert!(
        !lab.log_text(rvs.pid()).contains("state=MASTER"),
        "rvs hears keepalived's unicast AH adverts: {}",
        rvs.log()
    );
    assert_eq!(metric(rvs.control(), AUTH_FAILURES), 0);
    crash_keepalived(&lab, "ah-uc-a", kd);
    wait_seen(&lab, Seen::Rvs, LONG, "rvs takes over");
    let kd = keepalived(&lab, "ah-uc-b", 150, &ka_conf);
    wait_seen(&lab, Seen::Keepalived, LONG, "keepalived preempts");
    wait_log_count(&lab, rvs.pid(), "state=BACKUP", 2, LONG);
    assert_eq!(
        ka_refusals(&lab, kd),
        0,
        "keepalived accepted rvs's unicast AH adverts: {}",
        lab.log_text(kd)
    );
    // keepalived restarted with its counter at 0: rvs accepts its adverts only because
    // keepalived took the sequence number from rvs's (authenticated) unicast adverts.
    assert_eq!(metric(rvs.control(), AUTH_FAILURES), 0, "{}", rvs.log());
}
