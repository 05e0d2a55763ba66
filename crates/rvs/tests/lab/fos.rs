//! Piranha's failover services (lvs.cf `service = fos`) on a live lab: two directors run
//! one service — `rvs httpd` on the floating address 10.1.0.100:80, started and stopped by
//! shell scripts the test writes and lvs.cf names as `start_cmd` / `stop_cmd` (run without
//! a shell, as fos runs them). The client reads which director serves from the answer (the
//! httpd's name is the director's node name). Also pulse's `monitor_links` acted on in a
//! pulse pair (issue 11's lvs.cf scope, with the failover services).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::{Director, get_name};
use crate::failover::{pair_lab, poll_until, wait_log_count};
use crate::lab::{self, Lab};

/// The httpds the scripts start run outside the lab's tracking: killed by pid (from the
/// scripts' pid files) when the test ends, also on a panic.
struct Responders {
    files: Vec<PathBuf>,
}

impl Drop for Responders {
    fn drop(&mut self) {
        for f in &self.files {
            if let Ok(pid) = std::fs::read_to_string(f) {
                let pid = pid.trim();
                if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                    let _ = std::process::Command::new("kill").arg(pid).status();
                }
            }
        }
    }
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Which director's httpd answers on the service address, as the client sees it.
fn served_by(lab: &Lab) -> Option<String> {
    let addr = SocketAddr::new(lab::VIP.into(), 80);
    lab.run("client", move || get_name(addr, Duration::from_millis(400)))
        .unwrap()
        .ok()
}

fn wait_served_by(lab: &Lab, want: &str, limit: Duration, logs: &dyn Fn() -> String) {
    poll_until(limit, || match served_by(lab) {
        Some(n) if n == want => Ok(()),
        other => Err(format!(
            "the client sees {other:?} at the service address, not {want}\n{}",
            logs()
        )),
    });
}

/// A fos pair: the primary runs the service (stop_cmd then start_cmd, the address up and
/// announced); the backup monitors it at the floating address with nanny's check. The
/// primary's httpd is killed: the backup's next check fails, it takes over (its start_cmd,
/// the address), tells the primary STOPME, and the primary goes inactive (stop_cmd). Then
/// the same the other way round. A stopped daemon runs its stop_cmd.
#[test]
fn fos_pair_moves_a_failed_service_to_the_partner() {
    let lab = pair_lab();
    let wd = lab.info().workdir();
    let rvs = crate::harness::rvs_exe();
    let start = wd.join("fos-start.sh");
    let stop = wd.join("fos-stop.sh");
    let calls = wd.join("fos-calls.log");
    let pidfile = |node: &str| wd.join(format!("fos-httpd-{node}.pid"));
    let _responders = Responders {
        files: vec![pidfile("director"), pidfile("director2")],
    };
    // start_cmd = "fos-start.sh NODE": a daemon in the background, its pid in a file.
    script(
        &start,
        &format!(
            "echo \"start $1\" >> {calls}\n\
             {rvs} httpd --listen {vip}:80 --name \"$1\" </dev/null >/dev/null 2>&1 &\n\
             echo $! > {wd}/fos-httpd-$1.pid\n",
            calls = calls.display(),
            rvs = rvs.display(),
            vip = lab::VIP,
            wd = wd.display()
        ),
    );
    // stop_cmd = "fos-stop.sh NODE": kill that pid, if any.
    script(
        &stop,
        &format!(
            "echo \"stop $1\" >> {calls}\n\
             f={wd}/fos-httpd-$1.pid\n\
             if [ -s \"$f\" ]; then kill \"$(cat \"$f\")\" 2>/dev/null; rm -f \"$f\"; fi\n\
             exit 0\n",
            calls = calls.display(),
            wd = wd.display()
        ),
    );
    let calls_of = |node: &str| -> Vec<String> {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with(&format!(" {node}")))
            .map(|l| l.split(' ').next().unwrap_or("").to_string())
            .collect()
    };
    let cf = |node: &str| {
        format!(
            "serial_no = 1\nprimary = {}\nbackup = {}\nbackup_active = 1\nheartbeat = 1\n\
             heartbeat_port = 539\nkeepalive = 1\ndeadtime = 3\nservice = fos\n\
             failover web {{\n    address = {} eth0:1\n    active = 1\n    port = 80\n    \
             timeout = 2\n    send = \"GET / HTTP/1.0\\r\\n\\r\\n\"\n    expect = \"HTTP/1.\"\n    \
             start_cmd = \"{} {node}\"\n    stop_cmd = \"{} {node}\"\n}}\n",
            lab::DIRECTOR_PUB,
            lab::DIRECTOR2_PUB,
            lab::VIP,
            start.display(),
            stop.display()
        )
    };
    let primary = Director::start_in(&lab, "director", "fos-primary", &cf("director"));
    let backup = Director::start_in(&lab, "director2", "fos-backup", &cf("director2"));
    let logs = || format!("primary:\n{}\nbackup:\n{}", primary.log(), backup.log());
    // The primary goes active on the backup's first STOPPED heartbeat and starts the service.
    wait_served_by(&lab, "director", Duration::from_secs(10), &logs);
    // The backup stopped its (absent) service at start and monitors the primary's.
    wait_log_count(
        &lab,
        backup.pid(),
        "Remote service 10.1.0.100:80 is available",
        1,
        Duration::from_secs(6),
    );
    // Both start monitoring (fos --monitor: stop_cmd); the primary then serves (fos
    // --active: stop_cmd, start_cmd).
    assert_eq!(
        calls_of("director"),
        ["stop", "stop", "start"],
        "{}",
        logs()
    );
    assert_eq!(calls_of("director2"), ["stop"], "{}", logs());
    let view = rvs::daemon::request_listing(primary.control(), &["--failover"]).unwrap();
    assert!(view.starts_with("pulse: active (primary)"), "{view}");
    let view = rvs::daemon::request_listing(backup.control(), &["--failover"]).unwrap();
    assert!(view.starts_with("pulse: inactive (backup)"), "{view}");

    // The service dies on the primary (not through fos): the backup's check fails within
    // one `timeout` (2 s), it runs its start_cmd and announces the address.
    let pid = std::fs::read_to_string(pidfile("director")).unwrap();
    let killed = std::process::Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap();
    assert!(killed.success());
    wait_served_by(&lab, "director2", Duration::from_secs(10), &logs);
    wait_log_count(
        &lab,
        backup.pid(),
        "Exiting due to connection failure of 10.1.0.100:80",
        1,
        Duration::from_secs(2),
    );
    // STOPME: the primary goes inactive, runs its stop_cmd (fos --active's shutdown, then
    // fos --monitor's start) and monitors the backup's service.
    wait_log_count(
        &lab,
        primary.pid(),
        "Remote service 10.1.0.100:80 is available",
        1,
        Duration::from_secs(8),
    );
    assert!(
        primary.log().contains("PartnerTookOver"),
        "{}",
        primary.log()
    );
    assert_eq!(
        calls_of("director"),
        ["stop", "stop", "start", "stop", "stop"],
        "{}",
        logs()
    );
    assert_eq!(
        calls_of("director2"),
        ["stop", "stop", "start"],
        "{}",
        logs()
    );
    let view = rvs::daemon::request_listing(primary.control(), &["--failover"]).unwrap();
    assert!(view.starts_with("pulse: inactive (primary)"), "{view}");
    // Stable: still the backup a few checks later.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(served_by(&lab).as_deref(), Some("director2"), "{}", logs());

    // And back: the backup's httpd dies, the primary takes over; its RUNNING makes the
    // backup step down.
    let pid = std::fs::read_to_string(pidfile("director2")).unwrap();
    assert!(
        std::process::Command::new("kill")
            .arg(pid.trim())
            .status()
            .unwrap()
            .success()
    );
    wait_served_by(&lab, "director", Duration::from_secs(10), &logs);
    wait_log_count(
        &lab,
        backup.pid(),
        "PartnerActive",
        1,
        Duration::from_secs(5),
    );

    // A stopped daemon stops its service (pulse's deactivateFos() on SIGTERM).
    let before = calls_of("director").len();
    let log = primary.stop();
    poll_until(Duration::from_secs(5), || {
        let c = calls_of("director");
        // The stop script logs "stop" before it kills the service and removes its pid
        // file: wait for both.
        if c.len() > before
            && c.last().map(String::as_str) == Some("stop")
            && !pidfile("director").exists()
        {
            Ok(())
        } else {
            Err(format!("no stop_cmd at shutdown: {c:?}\n{log}"))
        }
    });
    drop(backup);
}

/// pulse's `monitor_links` (`service = lvs`, a pulse pair with `backup_active`): the active
/// primary's public link (eth0, holding `primary`) goes down. The primary logs "Local NIC
/// link failure" and releases (without `monitor_links` it would stay active on a dead
/// link); the backup, hearing nothing more, takes over after `deadtime` and serves. The
/// link back, the primary is enabled again but stays inactive (the backup is active: no
/// failback).
///
/// The lab has a second shared link (the private LAN, eth1 on both directors), but rvs's
/// pulse sends its heartbeats to the partner's public address only (`primary_private` /
/// `backup_private` are not used for heartbeats yet), so the backup learns of the release
/// from the silence, not from a STOPPED heartbeat.
#[test]
fn monitor_links_releases_the_primary_when_its_link_goes_down() {
    let lab = pair_lab();
    let mut cf = format!(
        "serial_no = 1\nprimary = {}\nbackup = {}\nbackup_active = 1\nheartbeat = 1\n\
         keepalive = 1\ndeadtime = 3\nmonitor_links = 1\nservice = lvs\nnetwork = nat\n\
         nat_router = {} eth1:1\n\
         virtual web {{\n    address = {} eth0:1\n    active = 1\n    port = 80\n    \
         scheduler = rr\n",
        lab::DIRECTOR_PUB,
        lab::DIRECTOR2_PUB,
        lab::NAT_ROUTER,
        lab::VIP,
    );
    for i in 1..=3 {
        cf += &format!(
            "    server rs{i} {{\n        address = {}\n        active = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    cf += "}\n";
    let primary = Director::start_in(&lab, "director", "links-primary", &cf);
    let backup = Director::start_in(&lab, "director2", "links-backup", &cf);
    let logs = || format!("primary:\n{}\nbackup:\n{}", primary.log(), backup.log());
    // Each wait polls until its deadline, wide enough for a loaded 2-core machine.
    let long = Duration::from_secs(15);
    wait_log_count(&lab, primary.pid(), "pulse: active", 1, long);
    let link = |state: &str| {
        let out = lab
            .exec("director", "ip", ["link", "set", "eth0", state])
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    link("down");
    wait_log_count(&lab, primary.pid(), "Local NIC link failure", 1, long);
    wait_log_count(&lab, primary.pid(), "LinkFailure", 1, long);
    poll_until(long, || {
        let view = rvs::daemon::request_listing(primary.control(), &["--failover"])
            .map_err(|e| e.to_string())?;
        if view.starts_with("pulse: inactive (primary)") {
            Ok(())
        } else {
            Err(view)
        }
    });
    // The backup takes over after deadtime and serves the VIP.
    wait_log_count(
        &lab,
        backup.pid(),
        "pulse: active",
        1,
        Duration::from_secs(20),
    );
    let name = backup.wait_http(lab::VIP.into());
    assert!(name.starts_with("rs"), "{name}");
    // The link back: enabled again, and inactive while the backup is active.
    link("up");
    wait_log_count(&lab, primary.pid(), "Local NIC link(s) restored", 1, long);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        lab.log_text(primary.pid()).matches("pulse: active").count(),
        1,
        "{}",
        logs()
    );
    poll_until(long, || {
        let view = rvs::daemon::request_listing(backup.control(), &["--failover"])
            .map_err(|e| e.to_string())?;
        if view.starts_with("pulse: active (backup)") {
            Ok(())
        } else {
            Err(view)
        }
    });
}
