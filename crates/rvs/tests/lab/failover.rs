//! Director failover on a live lab (issue 6): two directors on the same LANs, one active,
//! one standing by — rvs beside keepalived (Debian's package, VRRP only) as VRRP peers, two
//! rvs directors with connection sync, and Piranha's pulse heartbeat.
//!
//! Who is master is read from the wire, as a client sees it: the VIP served through rvs
//! answers HTTP from a real server; keepalived (with `-P`, VRRP only) puts the VIP on its
//! own kernel, which refuses port 80.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{Director, get_name};
use crate::harness::lab;
use crate::lab::{self, Httpd, Lab, LabOptions, Method};

/// The lab: NAT, three real servers with `rvs httpd`, and a second director.
fn pair_lab() -> Lab {
    lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        backup_director: true,
        httpd: Httpd::Builtin,
        ..LabOptions::default()
    })
}

/// A `vrrp_instance` owning the VIP and the NAT router's floating address.
fn vrrp_instance(priority: u8, extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  advert_int 1\n{extra}  virtual_ipaddress {{\n    {}/24 dev eth0\n    \
         {}/24 dev eth1\n  }}\n}}\n",
        lab::VIP,
        lab::NAT_ROUTER
    )
}

/// rvs's keepalived.conf: the VRRP instance and a NAT virtual server over the three real
/// servers.
fn rvs_conf(priority: u8, extra: &str) -> String {
    let mut s = vrrp_instance(priority, extra);
    s += &format!(
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

/// What a client on the public LAN sees at VIP:80.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A real server answered: rvs forwards.
    Rvs,
    /// Refused: keepalived's kernel holds the VIP.
    Keepalived,
    /// Nothing answered.
    Nobody,
}

fn seen(lab: &Lab) -> Seen {
    let addr = SocketAddr::new(lab::VIP.into(), 80);
    let got = lab
        .run("client", move || get_name(addr, Duration::from_millis(300)))
        .unwrap();
    match got {
        Ok(_) => Seen::Rvs,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Seen::Keepalived,
        Err(_) => Seen::Nobody,
    }
}

/// Polls what the client sees until it is `want` (bounded); how long it took.
fn wait_seen(lab: &Lab, want: Seen, limit: Duration, why: &str) -> Duration {
    let start = Instant::now();
    loop {
        let s = seen(lab);
        if s == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{why}: the client still sees {s:?} after {limit:?}, not {want:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// keepalived, VRRP only, in `director2`; its pid.
fn keepalived(lab: &Lab, tag: &str, priority: u8, extra: &str) -> u32 {
    let wd = lab.info().workdir();
    let conf = wd.join(format!("keepalived-{tag}.conf"));
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n  router_id kd-{tag}\n}}\n{}",
            vrrp_instance(priority, extra)
        ),
    )
    .unwrap();
    let pid_file = wd.join(format!("keepalived-{tag}.pid"));
    let vrrp_pid = wd.join(format!("keepalived-{tag}-vrrp.pid"));
    lab.spawn(
        "director2",
        "keepalived",
        [
            "-P".as_ref(),
            "-n".as_ref(),
            "-l".as_ref(),
            "-D".as_ref(),
            "-f".as_ref(),
            conf.as_os_str(),
            "-p".as_ref(),
            pid_file.as_os_str(),
            "-r".as_ref(),
            vrrp_pid.as_os_str(),
        ],
    )
    .unwrap()
}

/// Kills keepalived `tag` as a crash would: its VRRP child first (SIGKILL, so it cannot
/// resign with priority 0 as it does when its parent dies), then the parent.
fn crash_keepalived(lab: &Lab, tag: &str, pid: u32) {
    let vrrp_pid = lab
        .info()
        .workdir()
        .join(format!("keepalived-{tag}-vrrp.pid"));
    let child = std::fs::read_to_string(&vrrp_pid).unwrap();
    let st = std::process::Command::new("kill")
        .args(["-9", child.trim()])
        .status()
        .unwrap();
    assert!(st.success());
    lab.kill(pid).unwrap();
    // A crashed keepalived leaves its addresses on the kernel; a dead host would not answer
    // for them any more. Remove them, as the host's death would.
    for (a, dev) in [(lab::VIP, "eth0"), (lab::NAT_ROUTER, "eth1")] {
        let _ = lab.exec(
            "director2",
            "ip",
            ["addr", "del", &format!("{a}/24"), "dev", dev],
        );
    }
}

/// Waits until `pid`'s output holds `needle` `count` times (bounded).
fn wait_log_count(lab: &Lab, pid: u32, needle: &str, count: usize, limit: Duration) {
    let start = Instant::now();
    loop {
        let text = lab.log_text(pid);
        if text.matches(needle).count() >= count {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "no {count}× {needle:?} within {limit:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// rvs and keepalived as VRRP peers, each master in turn: keepalived (150) wins the
/// election and rvs (100) stands by; keepalived killed with SIGKILL, rvs takes over after
/// Master_Down_Interval (3 × 1 s + skew); keepalived back, it preempts and rvs steps down.
/// Then rvs (200) is master and keepalived (100) backup; rvs killed, keepalived takes over;
/// rvs back with `nopreempt` stays backup, without it preempts.
#[test]
fn rvs_and_keepalived_elect_take_over_and_preempt() {
    let lab = pair_lab();
    let kd = keepalived(&lab, "a", 150, "");
    wait_log_count(
        &lab,
        kd,
        "Entering MASTER STATE",
        1,
        Duration::from_secs(10),
    );
    let rvs = Director::start(&lab, "keepalived-rvs-a", &rvs_conf(100, ""));
    // rvs hears the higher priority and stays backup: the VIP stays on keepalived's kernel.
    thread::sleep(Duration::from_secs(4));
    assert_eq!(seen(&lab), Seen::Keepalived, "{}", rvs.log());
    assert!(
        !lab.log_text(rvs.pid()).contains("state=MASTER"),
        "no split brain: {}\nkeepalived: {}",
        lab.log_text(rvs.pid()),
        lab.log_text(kd)
    );
    assert!(lab.log_text(rvs.pid()).contains("state=BACKUP"));

    // keepalived dies without resigning: rvs takes over after 3 × 1 s + (256 − 100)/256 s.
    let killed = Instant::now();
    crash_keepalived(&lab, "a", kd);
    wait_seen(&lab, Seen::Rvs, Duration::from_secs(6), "rvs takes over");
    let took = killed.elapsed();
    eprintln!("failover: keepalived killed, rvs serving after {took:?}");
    assert!(
        took >= Duration::from_millis(3_000) && took <= Duration::from_millis(4_500),
        "takeover after Master_Down_Interval (3.61 s), not {took:?}"
    );

    // keepalived returns with the higher priority and preempts; rvs steps down.
    let kd = keepalived(&lab, "b", 150, "");
    wait_seen(
        &lab,
        Seen::Keepalived,
        Duration::from_secs(6),
        "keepalived preempts",
    );
    wait_log_count(&lab, rvs.pid(), "state=BACKUP", 2, Duration::from_secs(3));
    rvs.stop();
    lab.stop(kd).unwrap();

    // Roles reversed: rvs 200 master, keepalived 100 backup.
    let rvs = Director::start(&lab, "keepalived-rvs-c", &rvs_conf(200, ""));
    let kd = keepalived(&lab, "c", 100, "");
    wait_seen(
        &lab,
        Seen::Rvs,
        Duration::from_secs(6),
        "rvs (200) is master",
    );
    thread::sleep(Duration::from_millis(1500));
    assert!(
        !lab.log_text(kd).contains("Entering MASTER STATE"),
        "keepalived (100) stays backup: {}",
        lab.log_text(kd)
    );
    let rvs_pid = rvs.pid();
    lab.kill(rvs_pid).unwrap();
    wait_log_count(&lab, kd, "Entering MASTER STATE", 1, Duration::from_secs(6));
    wait_seen(
        &lab,
        Seen::Keepalived,
        Duration::from_secs(3),
        "keepalived took over",
    );

    // rvs returns with nopreempt: it stays backup under a lower-priority master.
    let rvs = Director::start(&lab, "keepalived-rvs-d", &rvs_conf(200, "  nopreempt\n"));
    thread::sleep(Duration::from_secs(5));
    assert_eq!(seen(&lab), Seen::Keepalived, "nopreempt: {}", rvs.log());
    rvs.stop();
    // And without nopreempt it takes the VIP back.
    let _rvs = Director::start(&lab, "keepalived-rvs-e", &rvs_conf(200, ""));
    wait_seen(&lab, Seen::Rvs, Duration::from_secs(6), "rvs preempts");
    wait_log_count(&lab, kd, "Entering BACKUP STATE", 1, Duration::from_secs(3));
}

/// Piranha's pulse: two rvs directors run one lvs.cf; the primary is active, the backup
/// hears its heartbeats; the primary killed, the backup goes active after `deadtime` and
/// serves the VIP; the primary back, it hears the active backup and stays inactive.
#[test]
fn pulse_pair_fails_over_on_deadtime() {
    let lab = pair_lab();
    let mut cf = format!(
        "serial_no = 1\nprimary = {}\nbackup = {}\nbackup_active = 1\nheartbeat = 1\n\
         heartbeat_port = 539\nkeepalive = 1\ndeadtime = 3\nservice = lvs\nnetwork = nat\n\
         nat_router = {} eth1:1\n\
         virtual web {{\n    address = {} eth0:1\n    active = 1\n    port = 80\n    \
         protocol = tcp\n    scheduler = rr\n",
        lab::DIRECTOR_PUB,
        lab::DIRECTOR2_PUB,
        lab::NAT_ROUTER,
        lab::VIP
    );
    for i in 1..=3 {
        cf += &format!(
            "    server rs{i} {{\n        address = {}\n        active = 1\n        weight = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    cf += "}\n";
    let primary = Director::start_in(&lab, "director", "pulse-primary", &cf);
    let backup = Director::start_in(&lab, "director2", "pulse-backup", &cf);
    wait_seen(
        &lab,
        Seen::Rvs,
        Duration::from_secs(8),
        "the primary serves",
    );
    thread::sleep(Duration::from_secs(2));
    assert!(
        lab.log_text(primary.pid()).contains("pulse: active"),
        "{}",
        primary.log()
    );
    assert!(
        !lab.log_text(backup.pid()).contains("pulse: active"),
        "the backup stays inactive while it hears heartbeats: {}",
        backup.log()
    );
    let killed = Instant::now();
    lab.kill(primary.pid()).unwrap();
    let start = Instant::now();
    loop {
        if lab.log_text(backup.pid()).contains("pulse: active") && seen(&lab) == Seen::Rvs {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(8), "{}", backup.log());
        thread::sleep(Duration::from_millis(20));
    }
    let took = killed.elapsed();
    eprintln!("failover: pulse primary killed, backup active and serving after {took:?}");
    assert!(
        took >= Duration::from_secs(3) && took <= Duration::from_millis(5_500),
        "the backup activates after deadtime (3 s), not {took:?}"
    );
    // The primary returns and hears the backup RUNNING (active): as pulse, it stays
    // inactive — no failback, no split brain — and the backup keeps serving.
    let primary = Director::start_in(&lab, "director", "pulse-primary2", &cf);
    thread::sleep(Duration::from_secs(5));
    assert!(
        !lab.log_text(primary.pid()).contains("pulse: active"),
        "{}",
        primary.log()
    );
    assert!(!lab.log_text(backup.pid()).contains("pulse: inactive"));
    assert_eq!(seen(&lab), Seen::Rvs);
}
