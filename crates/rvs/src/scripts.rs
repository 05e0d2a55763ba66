//! Every script the daemon runs, run one way: VRRP notify scripts (`notify_master`,
//! `notify_backup`, `notify_fault`, `notify_stop`, `notify`, of instances and sync groups),
//! `vrrp_script` track scripts, the checkers' `notify_up` / `notify_down` / `quorum_up` /
//! `quorum_down`, Piranha's `active_cmd` / `inactive_cmd` and FOS `start_cmd` / `stop_cmd`.
//! (MISC_CHECK and `send_program` run inside `rvs_check`, prepared the same way.)
//!
//! Each is made ready by [`rvs_check::script::prepare`] (keepalived's: argument vector
//! without a shell, its user or `script_user`, `enable_script_security`; Piranha's: through
//! `/bin/sh -c` as the daemon's user), started as the leader of its own process group with
//! stdin on /dev/null, and killed with its whole group when its time limit passes:
//! - notify, hook and checker scripts: [`notify_limit`] (default [`DEFAULT_NOTIFY_LIMIT`],
//!   `rvs daemon --script-timeout`). keepalived waits for none of them and bounds none; an
//!   rvs addition, so that a hanging script cannot hold a place for ever.
//! - `vrrp_script`: its `timeout` (else its interval), as keepalived.
//!
//! At most [`MAX_RUNNING`] notify / hook / checker scripts run at once; [`MAX_WAITING`] more
//! wait their turn and beyond that one is not run (logged). Track scripts and checks are
//! bounded by their own number (one run of each at a time).
//!
//! What keepalived logs about a script (path search, unsafe permissions, a refusal) is logged
//! once per script and message, not at every run.

use std::collections::HashSet;
use std::future::Future;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rvs_check::script::{Policy, Prepared, RunAs, Style, prepare};
use tokio::sync::Semaphore;

/// Notify, hook and checker scripts running at once; the others wait.
pub const MAX_RUNNING: usize = 8;

/// Such scripts waiting for a turn; more are refused (logged), so a flapping instance with
/// a hanging script cannot pile up processes without end.
pub const MAX_WAITING: usize = 64;

/// How long a notify, hook or checker script may run before it is killed with its process
/// group, unless `--script-timeout` says otherwise.
pub const DEFAULT_NOTIFY_LIMIT: Duration = Duration::from_secs(60);

static RUNNING: Semaphore = Semaphore::const_new(MAX_RUNNING);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static LIMIT_MS: AtomicU64 = AtomicU64::new(60_000);
static LOGGED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The limit of notify, hook and checker scripts.
pub fn notify_limit() -> Duration {
    Duration::from_millis(LIMIT_MS.load(Ordering::Relaxed))
}

/// Set the policy (`script_user`, `enable_script_security`) and the notify limit: at start
/// and on each reload.
/// `daemon`: who the daemon runs as (None: its ids now).
pub fn configure(policy: &rvs_config::ScriptPolicy, limit: Duration, daemon: Option<RunAs>) {
    let (script_user, security) = (policy.script_user.as_deref(), policy.enable_script_security);
    let p = match daemon {
        Some(d) => Policy::for_daemon(script_user, security, d),
        None => Policy::new(script_user, security),
    };
    if let Err(e) = &p.default_user {
        once(&format!("default script user: {e}"), || {
            tracing::error!("{e}: scripts that name no user of their own are not run")
        });
    }
    rvs_check::script::set_policy(p);
    LIMIT_MS.store(
        u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1),
        Ordering::Relaxed,
    );
}

/// Run `f` the first time `key` is seen.
fn once(key: &str, f: impl FnOnce()) {
    let mut g = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if g.get_or_insert_with(HashSet::new).insert(key.to_string()) {
        drop(g);
        f();
    }
}

/// A script to run: what it is for (the keyword, for logs), its command line, the user
/// it names (`USER [GROUP]`), the arguments appended, and how it is run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The keyword, e.g. `notify_master`.
    pub what: &'static str,
    /// The command line as configured.
    pub command: String,
    /// Its own `USER [GROUP]`.
    pub user: Option<String>,
    /// Arguments appended (the generic `notify`'s TYPE NAME STATE PRIORITY).
    pub args: Vec<String>,
    /// keepalived's way or Piranha's.
    pub style: Style,
}

impl Job {
    /// A keepalived-style script.
    pub fn keepalived(what: &'static str, script: &rvs_config::Script, args: &[&str]) -> Job {
        Job {
            what,
            command: script.command.clone(),
            user: script.user.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            style: Style::Keepalived,
        }
    }

    /// A Piranha command, through the shell.
    pub fn shell(what: &'static str, command: &str) -> Job {
        Job {
            what,
            command: command.to_string(),
            user: None,
            args: Vec::new(),
            style: Style::Shell,
        }
    }

    /// Ready to start, with keepalived's remarks logged once; None (logged once) when it is
    /// not to run.
    pub fn prepare(&self) -> Option<Prepared> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        match prepare(&self.command, self.user.as_deref(), &args, self.style) {
            Ok(p) => {
                for n in &p.notes {
                    once(
                        n,
                        || tracing::warn!(script = %self.command, "{}: {n}", self.what),
                    );
                }
                Some(p)
            }
            Err(e) => {
                once(
                    &e,
                    || tracing::warn!(script = %self.command, "{}: {e}", self.what),
                );
                None
            }
        }
    }
}

/// Run `job` without waiting for it, on the background thread; bounded in number and by
/// [`notify_limit`].
pub fn spawn(job: Job) {
    if !admit(&job) {
        return;
    }
    let what = job.what;
    if !crate::background::spawn(async move {
        run_admitted(job).await;
    }) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("{what}: script not run: no background thread");
    }
}

/// Run `job` on the calling task's runtime and wait for it; bounded as [`spawn`]. The exit
/// status, or None when it did not run or was killed.
pub fn run(job: Job) -> impl Future<Output = Option<ExitStatus>> + Send {
    let admitted = admit(&job);
    async move {
        if admitted {
            run_admitted(job).await
        } else {
            None
        }
    }
}

fn admit(job: &Job) -> bool {
    if IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING + MAX_RUNNING {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(script = %job.command, "{}: script not run: {MAX_WAITING} scripts already wait for one of {MAX_RUNNING} places", job.what);
        return false;
    }
    true
}

async fn run_admitted(job: Job) -> Option<ExitStatus> {
    let _permit = RUNNING.acquire().await; // the semaphore is never closed
    let status = match job.prepare() {
        Some(p) => run_prepared(job.what, &p, notify_limit()).await,
        None => None,
    };
    IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    status
}

async fn run_prepared(what: &str, p: &Prepared, limit: Duration) -> Option<ExitStatus> {
    let line = p.line();
    let mut child = match tokio::process::Command::from(p.command()).spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(script = %line, uid = p.ids.uid, "{what}: cannot run script: {e}");
            return None;
        }
    };
    tracing::debug!(script = %line, uid = p.ids.uid, "{what}: started");
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(s)) if s.success() => {
            tracing::debug!(script = %line, "{what}: script done");
            Some(s)
        }
        Ok(Ok(s)) => {
            tracing::warn!(script = %line, status = %s, "{what}: script failed");
            Some(s)
        }
        Ok(Err(e)) => {
            tracing::warn!(script = %line, "{what}: script: {e}");
            None
        }
        Err(_) => {
            kill(&mut child.id(), &line);
            let _ = child.wait().await;
            tracing::warn!(
                script = %line,
                "{what}: script still running after {:?}: killed with its process group",
                limit
            );
            None
        }
    }
}

fn kill(pid: &mut Option<u32>, line: &str) {
    if let Some(pid) = pid.take()
        && let Err(e) = rvs_sys::process::kill_group(pid)
    {
        tracing::warn!(script = %line, "cannot kill the script: {e}");
    }
}

/// Scripts waiting or running now (notify, hook and checker scripts).
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Acquire)
}

/// Wait (at most `max`) until no notify, hook or checker script is waiting or running: at
/// shutdown, so that `notify_stop` and the like finish before the daemon exits. True when
/// none is left.
pub fn drain(max: Duration) -> bool {
    let deadline = std::time::Instant::now() + max;
    while in_flight() > 0 {
        if std::time::Instant::now() >= deadline {
            tracing::warn!(
                scripts = in_flight(),
                "scripts still running at exit: left to their process groups"
            );
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Run `job` now on the calling thread and wait (a `vrrp_script` run, a FOS command): true
/// when it exited with status 0 within `limit`; a script still running then, or once `stop`
/// is set, is killed with its process group and has failed.
pub fn run_blocking(job: &Job, limit: Duration, stop: &AtomicBool) -> bool {
    let Some(p) = job.prepare() else {
        return false;
    };
    run_prepared_blocking(job.what, &p, limit, stop).is_ok_and(|s| s.success())
}

/// [`run_blocking`] for a prepared script: its status, or why it has none.
pub fn run_prepared_blocking(
    what: &str,
    p: &Prepared,
    limit: Duration,
    stop: &AtomicBool,
) -> Result<ExitStatus, String> {
    let line = p.line();
    let mut cmd = p.command();
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().map_err(|e| {
        tracing::warn!(script = %line, "{what}: cannot run script: {e}");
        format!("cannot run {}: {e}", p.argv[0])
    })?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() >= limit || stop.load(Ordering::Acquire) => {
                kill(&mut Some(child.id()), &line);
                let _ = child.wait();
                tracing::warn!(script = %line, "{what}: still running after {limit:?}: killed with its process group");
                return Err(format!(
                    "still running after {} s: killed",
                    limit.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

/// A checker's notify or quorum script as the script runner takes it (with its user).
pub fn notify_script(n: &rvs_core::health::Notify) -> rvs_config::Script {
    rvs_config::Script {
        command: n.command.clone(),
        user: n.user.clone(),
    }
}

/// Every script the configuration names, prepared now (not run): keepalived's remarks about
/// each logged once, and keepalived's "SECURITY VIOLATION" line when some run as root with
/// unsafe permissions while `enable_script_security` is off. The users they run as.
pub fn audit(
    failover: &rvs_config::FailoverConfig,
    health: &rvs_core::health::HealthConfig,
) -> Vec<RunAs> {
    let mut jobs: Vec<Job> = Vec::new();
    if let rvs_config::failover::FailoverMode::Vrrp(v) = &failover.mode {
        for i in &v.instances {
            for (k, s) in i.notify_scripts() {
                if let Some(s) = s {
                    jobs.push(Job::keepalived(k, s, &[]));
                }
            }
        }
        for g in &v.sync_groups {
            for (k, s) in g.notify_scripts() {
                if let Some(s) = s {
                    jobs.push(Job::keepalived(k, s, &[]));
                }
            }
        }
        for s in &v.scripts {
            jobs.push(Job {
                what: "vrrp_script",
                command: s.script.clone(),
                user: s.user.clone(),
                args: Vec::new(),
                style: Style::Keepalived,
            });
        }
    }
    for svc in &health.services {
        for (k, s) in [
            ("quorum_up", &svc.quorum_up),
            ("quorum_down", &svc.quorum_down),
        ] {
            if let Some(s) = s {
                jobs.push(Job::keepalived(k, &notify_script(s), &[]));
            }
        }
        for rs in &svc.real_servers {
            for (k, s) in [
                ("notify_up", &rs.notify_up),
                ("notify_down", &rs.notify_down),
            ] {
                if let Some(s) = s {
                    jobs.push(Job::keepalived(k, &notify_script(s), &[]));
                }
            }
            for c in &rs.checks {
                if let rvs_core::health::CheckKind::Misc { path, user, .. } = &c.kind {
                    jobs.push(Job {
                        what: "MISC_CHECK",
                        command: path.clone(),
                        user: user.clone(),
                        args: Vec::new(),
                        style: Style::Keepalived,
                    });
                }
            }
        }
    }
    let mut users = Vec::new();
    let mut insecure = false;
    for j in &jobs {
        if let Some(p) = j.prepare() {
            insecure |= p.insecure;
            if !users.contains(&p.ids) {
                users.push(p.ids);
            }
        }
    }
    // vrrp_daemon.c check_vrrp_script_security(): said whenever scripts are configured
    // without enable_script_security.
    if !jobs.is_empty() && !failover.scripts.enable_script_security {
        let more = if insecure {
            " There are insecure scripts."
        } else {
            ""
        };
        once(&format!("SECURITY VIOLATION{more}"), || {
            tracing::warn!(
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled.{more}"
            )
        });
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sh(script: &str) -> Job {
        Job::shell("test", script)
    }

    #[test]
    fn scripts_are_bounded_in_time_and_number() {
        let dir = std::env::temp_dir().join(format!("rvs-scripts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        configure(
            &rvs_config::ScriptPolicy::default(),
            Duration::from_millis(400),
            None,
        );
        // keepalived's way: words, no shell — `;` and `$0` reach the program as they are.
        let out = dir.join("out");
        let script = dir.join("args.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$*\" > {}\n", out.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        spawn(Job::keepalived(
            "notify",
            &rvs_config::Script::new(format!("{} 'a  b' ; $0", script.display())),
            &["INSTANCE", "VI_1", "MASTER", "100"],
        ));
        wait_until("the script ran", || {
            std::fs::read_to_string(&out).is_ok_and(|s| s == "a  b ; $0 INSTANCE VI_1 MASTER 100\n")
        });
        // A hanging script and the child it started are killed at the limit.
        let pidfile = dir.join("pid");
        spawn(sh(&format!(
            "sleep 60 & echo $! > {}; wait",
            pidfile.display()
        )));
        wait_until("the pid file", || {
            std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
        });
        let sleeper: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_until("the sleeper killed with its group", || {
            let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
            matches!(
                stat.rsplit(") ").next().and_then(|s| s.chars().next()),
                None | Some('Z' | 'X')
            )
        });
        // No more than MAX_RUNNING at once: the others wait, then run.
        configure(
            &rvs_config::ScriptPolicy::default(),
            Duration::from_secs(10),
            None,
        );
        let count = dir.join("count");
        let _ = std::fs::remove_file(&count);
        for _ in 0..MAX_RUNNING + 4 {
            spawn(sh(&format!("echo . >> {}; sleep 0.3", count.display())));
        }
        std::thread::sleep(Duration::from_millis(150));
        let started = std::fs::read_to_string(&count)
            .unwrap_or_default()
            .lines()
            .count();
        assert!(started <= MAX_RUNNING, "{started} started at once");
        assert!(drain(Duration::from_secs(10)), "all ran and were reaped");
        assert_eq!(
            std::fs::read_to_string(&count)
                .unwrap_or_default()
                .lines()
                .count(),
            MAX_RUNNING + 4
        );
        // Blocking runs: status, limit.
        let stop = AtomicBool::new(false);
        assert!(run_blocking(&sh("exit 0"), Duration::from_secs(5), &stop));
        assert!(!run_blocking(&sh("exit 3"), Duration::from_secs(5), &stop));
        let t = std::time::Instant::now();
        assert!(!run_blocking(
            &sh("sleep 5"),
            Duration::from_millis(100),
            &stop
        ));
        assert!(t.elapsed() < Duration::from_secs(2), "killed at the limit");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
