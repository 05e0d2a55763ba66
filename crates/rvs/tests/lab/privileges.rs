//! Least privilege and scripts on a live director: every thread of the running daemon holds
//! only the documented capabilities (in the effective, permitted and bounding sets) and still
//! reloads and forwards; a `vrrp_script` with `user nobody` runs as nobody with no
//! capabilities; a notify script that hangs is killed with its process group at
//! `--script-timeout`; `notify_stop` and `notify ... STOP` run at shutdown.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::failover::{poll_until, wait_log_count};
use crate::harness::{alive, lab};
use crate::lab::{self, Httpd, LabOptions, Method};

const NET_ADMIN: u64 = 1 << 12;
const NET_RAW: u64 = 1 << 13;
const KILL: u64 = 1 << 5;
const SETGID: u64 = 1 << 6;
const SETUID: u64 = 1 << 7;
const SYS_NICE: u64 = 1 << 23;

fn one_director() -> lab::Lab {
    lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 2,
        backup_director: false,
        httpd: Httpd::Builtin,
        ..LabOptions::default()
    })
}

/// The NAT web service over the two real servers.
fn web_service() -> String {
    let mut s = format!(
        "virtual_server {} 80 {{\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n",
        lab::VIP
    );
    for i in 1..=2 {
        s += &format!(
            "  real_server {} 80 {{\n    weight {i}\n  }}\n",
            lab::rs_addr(i)
        );
    }
    s + "}\n"
}

/// `Cap*` lines of /proc/PID/task/TID/status for every thread of `pid`: (tid, name, mask).
fn thread_caps(pid: u32) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap();
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some((k, v)) = line.split_once(':')
                && k.starts_with("Cap")
            {
                let mask = u64::from_str_radix(v.trim(), 16).unwrap();
                out.push((
                    t.file_name().to_string_lossy().into_owned(),
                    k.to_string(),
                    mask,
                ));
            }
        }
    }
    out
}

/// Every thread's effective, permitted and bounding sets are `want`; nothing inheritable
/// or ambient.
fn assert_caps(pid: u32, want: u64, log: &str) {
    let caps = thread_caps(pid);
    assert!(caps.len() >= 5 * 2, "several threads: {caps:?}");
    for (tid, k, mask) in &caps {
        let expect = match k.as_str() {
            "CapEff" | "CapPrm" | "CapBnd" => want,
            _ => 0,
        };
        assert_eq!(
            *mask, expect,
            "thread {tid} {k} = {mask:#x}, want {expect:#x}\n{log}"
        );
    }
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A plain NAT director (no scripts, `--rt-priority 0`) keeps CAP_NET_ADMIN and
/// CAP_NET_RAW only, in every thread; with the default real-time priority CAP_SYS_NICE too.
/// It still forwards, and reloads a changed file, after the drop.
#[test]
fn the_running_daemon_holds_only_the_documented_capabilities() {
    let lab = one_director();
    let cf = lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 2)]);
    let d = Director::start_with(&lab, "director", "caps", &cf, &["--rt-priority", "0"]);
    d.wait_http(lab::VIP.into());
    assert_caps(d.pid(), NET_ADMIN | NET_RAW, &d.log());
    assert!(
        d.log().contains("privileges dropped")
            && d.log().contains("effective=CAP_NET_ADMIN,CAP_NET_RAW"),
        "the held capabilities are logged:\n{}",
        d.log()
    );
    // A reload re-reads the file (as root without CAP_DAC_OVERRIDE) and applies it.
    let wd = lab.info().workdir();
    std::fs::write(wd.join("caps.cf"), cf.replace("weight = 1", "weight = 5")).unwrap();
    let reply = rvs::daemon::control_request(d.control(), "reload").unwrap();
    assert!(reply.contains("reloaded"), "{reply}\n{}", d.log());
    let listing = d.listing(&[]);
    let weight = listing
        .lines()
        .find(|l| l.contains(&format!("{}:80", lab::rs_addr(2))))
        .and_then(|l| l.split_whitespace().nth(3));
    assert_eq!(weight, Some("5"), "the reloaded weight:\n{listing}");
    d.wait_http(lab::VIP.into());
    assert_caps(d.pid(), NET_ADMIN | NET_RAW, &d.log());
    d.stop();
    let d = Director::start_with(&lab, "director", "caps-rt", &cf, &[]);
    assert_caps(d.pid(), NET_ADMIN | NET_RAW | SYS_NICE, &d.log());
}

/// keepalived's scripts as keepalived runs them: a `vrrp_script` with `user nobody` runs
/// as nobody (and with no capability at all); a `notify_master` that hangs is killed with
/// the child it started at `--script-timeout`; at shutdown `notify_stop` and `notify`
/// (with STOP) run before the daemon exits. The daemon keeps CAP_SETUID, CAP_SETGID and
/// CAP_KILL for the script of another user, and only those besides its own.
#[test]
fn scripts_run_as_their_user_hang_bounded_and_stop_at_shutdown() {
    let lab = one_director();
    let wd = lab.info().workdir();
    // nobody must reach its script.
    std::fs::set_permissions(&wd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = wd.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let check = wd.join("check.sh");
    executable(
        &check,
        &format!(
            "#!/bin/sh\nid -u > {0}/uid.tmp && mv {0}/uid.tmp {0}/uid\n\
             grep CapEff /proc/self/status > {0}/caps\n",
            out.display()
        ),
    );
    let hang = wd.join("hang.sh");
    executable(
        &hang,
        &format!(
            "#!/bin/sh\nsleep 600 &\necho $$ $! > {}/hang.pids\nwait\n",
            out.display()
        ),
    );
    let notes = out.join("notify.log");
    let note = wd.join("note.sh");
    executable(
        &note,
        &format!("#!/bin/sh\necho \"$*\" >> {}\n", notes.display()),
    );
    let cf = format!(
        "vrrp_script chk {{\n  script \"{check} arg\"\n  interval 0.2\n  user nobody\n}}\n\
         vrrp_instance VI_1 {{\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  \
         priority 150\n  version 3\n  advert_int 0.1\n  track_script {{\n    chk\n  }}\n  \
         notify_master {hang}\n  notify_stop \"{note} stop-only\"\n  notify {note}\n  \
         virtual_ipaddress {{\n    {}/24 dev eth0\n    {}/24 dev eth1\n  }}\n}}\n{}",
        lab::VIP,
        lab::NAT_ROUTER,
        web_service(),
        check = check.display(),
        hang = hang.display(),
        note = note.display(),
    );
    let d = Director::start_with(
        &lab,
        "director",
        "scripts",
        &cf,
        &[
            "--format",
            "keepalived",
            "--script-timeout",
            "1.5",
            "--rt-priority",
            "0",
        ],
    );
    assert_caps(
        d.pid(),
        NET_ADMIN | NET_RAW | SETUID | SETGID | KILL,
        &d.log(),
    );
    // The track script runs as nobody, with nothing in its effective set.
    let nobody = rvs_sys::process::user_by_name("nobody").unwrap().unwrap();
    poll_until(Duration::from_secs(5), || {
        match std::fs::read_to_string(out.join("uid")) {
            Ok(u) if u.trim() == nobody.uid.to_string() => Ok(()),
            other => Err(format!("uid file: {other:?}\n{}", d.log())),
        }
    });
    let caps = std::fs::read_to_string(out.join("caps")).unwrap();
    assert_eq!(
        caps.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{caps}"
    );
    // Master: the hanging notify_master starts, then is killed with its child at 1.5 s.
    wait_log_count(&lab, d.pid(), "state=MASTER", 1, Duration::from_secs(5));
    let mut pids = Vec::new();
    poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(out.join("hang.pids")).unwrap_or_default();
        pids = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.len() == 2 {
            Ok(())
        } else {
            Err(format!("hang.pids: {text:?}"))
        }
    });
    assert!(
        pids.iter().all(|p| alive(*p)),
        "the script and its child run"
    );
    let took = poll_until(Duration::from_secs(5), || {
        if pids.iter().any(|p| alive(*p)) {
            Err(format!("{pids:?} still alive\n{}", d.log()))
        } else {
            Ok(())
        }
    });
    assert!(
        took < Duration::from_secs(4),
        "killed at the limit, not later: {took:?}"
    );
    wait_log_count(
        &lab,
        d.pid(),
        "notify_master: script still running after 1.5s: killed with its process group",
        1,
        Duration::from_secs(2),
    );
    let before = std::fs::read_to_string(&notes).unwrap_or_default();
    assert_eq!(
        before, "INSTANCE VI_1 BACKUP 150\nINSTANCE VI_1 MASTER 150\n",
        "keepalived's way into MASTER"
    );
    // Shutdown: notify_stop (with its own argument) and notify with STOP, both finished
    // before the daemon exited.
    let log = d.stop();
    let after = std::fs::read_to_string(&notes).unwrap_or_default();
    let mut calls: Vec<&str> = after.lines().skip(2).collect();
    calls.sort_unstable();
    assert_eq!(
        calls,
        ["INSTANCE VI_1 STOP 150", "stop-only"],
        "{after}\n{log}"
    );
}

/// `--user nobody`: the daemon runs as nobody (uid, gid, no other groups) with the same
/// capabilities, raised into the ambient set too, and forwards.
#[test]
fn user_option_runs_the_daemon_as_that_user() {
    let lab = one_director();
    let wd = lab.info().workdir();
    // nobody creates its control socket and PID file here.
    std::fs::set_permissions(&wd, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let cf = lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 2)]);
    let d = Director::start_with(
        &lab,
        "director",
        "as-nobody",
        &cf,
        &["--rt-priority", "0", "--user", "nobody"],
    );
    d.wait_http(lab::VIP.into());
    let nobody = rvs_sys::process::user_by_name("nobody").unwrap().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let (u, g) = (nobody.uid, nobody.gid);
    assert_eq!(field("Uid:"), format!("{u} {u} {u} {u}"), "{status}");
    assert_eq!(field("Gid:"), format!("{g} {g} {g} {g}"), "{status}");
    assert_eq!(field("Groups:"), format!("{g}"), "{status}");
    for (tid, k, mask) in thread_caps(d.pid()) {
        let want = match k.as_str() {
            "CapInh" | "CapEff" | "CapPrm" | "CapBnd" | "CapAmb" => NET_ADMIN | NET_RAW,
            _ => 0,
        };
        assert_eq!(mask, want, "thread {tid} {k}\n{}", d.log());
    }
}
