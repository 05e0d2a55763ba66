//! The failover side's background work on one thread: hook scripts (VRRP notify scripts,
//! pulse's `active_cmd` / `inactive_cmd`) and the checks of `service = fos` run as tasks
//! of one tokio current-thread runtime, started on first use, instead of a thread (and a
//! runtime) per run.
//!
//! Hook scripts run through `/bin/sh -c` as keepalived's notify scripts and Piranha
//! pulse's commands do (a command line with its arguments; pulse hands `active_cmd` to the
//! shell, `system()`-style), each the leader of its own process group, stdin on
//! `/dev/null`. At most [`MAX_RUNNING`] run at once; up to [`MAX_WAITING`] more wait their
//! turn, and beyond that a script is not run (logged). A script given a limit is killed
//! with its whole process group when the limit passes (logged); this module does not
//! decide which scripts get one.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

/// Hook scripts running at once; the others wait.
pub const MAX_RUNNING: usize = 8;

/// Hook scripts waiting for a turn; more are refused (logged), so a flapping instance with
/// a hanging script cannot pile up processes without end.
pub const MAX_WAITING: usize = 64;

/// The limit of pulse's `active_cmd` / `inactive_cmd`: killed with their process group
/// after this (pulse waits without limit; a hanging one would hold a place for ever).
pub const HOOK_LIMIT: Duration = Duration::from_secs(60);

static RUNTIME: OnceLock<Option<Handle>> = OnceLock::new();
static RUNNING: Semaphore = Semaphore::const_new(MAX_RUNNING);
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// The background runtime, started on first use; `None` (logged once) when its thread
/// cannot be started.
fn handle() -> Option<&'static Handle> {
    RUNTIME
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let started = std::thread::Builder::new()
                .name("rvs-background".into())
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(rt.handle().clone()));
                    // Drives the spawned tasks for the daemon's lifetime.
                    rt.block_on(std::future::pending::<()>());
                });
            let got = match started {
                Ok(_) => rx
                    .recv()
                    .unwrap_or_else(|_| Err(std::io::Error::other("exited"))),
                Err(e) => Err(e),
            };
            match got {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!(
                        "cannot start the background thread for scripts and checks: {e}"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Run `fut` on the background runtime; false when there is none.
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> bool {
    match handle() {
        Some(h) => {
            h.spawn(fut);
            true
        }
        None => false,
    }
}

/// Run `command` with `args` appended (joined with spaces) through `/bin/sh -c`, without
/// waiting for it; with `limit`, killed with its process group after that long.
pub fn run_script(command: &str, args: &[&str], limit: Option<Duration>) {
    let mut line = command.to_string();
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    if WAITING.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING + MAX_RUNNING {
        WAITING.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(script = %line, "script not run: {MAX_WAITING} scripts already wait for one of {MAX_RUNNING} places");
        return;
    }
    let queued = line.clone();
    if !spawn(run(line, limit)) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(script = %queued, "script not run: no background thread");
    }
}

/// One script: wait for a place, run it, reap it (or kill its group at `limit`).
async fn run(line: String, limit: Option<Duration>) {
    let permit = RUNNING.acquire().await;
    let _permit = permit; // the semaphore is never closed
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            WAITING.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(script = %line, "cannot run script: {e}");
            return;
        }
    };
    let waited = match limit {
        Some(limit) => tokio::time::timeout(limit, child.wait()).await,
        None => Ok(child.wait().await),
    };
    match waited {
        Ok(Ok(s)) if s.success() => tracing::debug!(script = %line, "script done"),
        Ok(Ok(s)) => tracing::warn!(script = %line, status = %s, "script failed"),
        Ok(Err(e)) => tracing::warn!(script = %line, "script: {e}"),
        Err(_) => {
            if let Some(pid) = child.id()
                && let Err(e) = rvs_sys::process::kill_group(pid)
            {
                tracing::warn!(script = %line, "cannot kill the script: {e}");
            }
            let _ = child.wait().await;
            tracing::warn!(
                script = %line,
                "script still running after {} s: killed with its process group",
                limit.map_or(0, |l| l.as_secs())
            );
        }
    }
    WAITING.fetch_sub(1, Ordering::AcqRel);
}

/// Scripts waiting or running now.
pub fn scripts_in_flight() -> usize {
    WAITING.load(Ordering::Acquire)
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

    #[test]
    fn scripts_run_through_the_shell_bounded_in_time_and_number() {
        let dir = std::env::temp_dir().join(format!("rvs-bg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Through the shell: redirection and `;` work, the arguments follow the command.
        let out = dir.join("out");
        run_script(
            &format!("echo \"$0\" > {}; echo", out.display()),
            &["x"],
            Some(Duration::from_secs(5)),
        );
        wait_until("the script ran", || {
            std::fs::read_to_string(&out).is_ok_and(|s| s == "/bin/sh\n")
        });
        // A hanging script and the child it started are killed at the limit.
        let pidfile = dir.join("pid");
        run_script(
            &format!("sleep 60 & echo $! > {}; wait", pidfile.display()),
            &[],
            Some(Duration::from_millis(300)),
        );
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
        let count = dir.join("count");
        let _ = std::fs::remove_file(&count);
        for _ in 0..MAX_RUNNING + 4 {
            run_script(
                &format!("echo . >> {}; sleep 0.3", count.display()),
                &[],
                Some(Duration::from_secs(10)),
            );
        }
        std::thread::sleep(Duration::from_millis(150));
        let started = std::fs::read_to_string(&count)
            .unwrap_or_default()
            .lines()
            .count();
        assert!(started <= MAX_RUNNING, "{started} started at once");
        wait_until("all ran", || {
            std::fs::read_to_string(&count)
                .unwrap_or_default()
                .lines()
                .count()
                == MAX_RUNNING + 4
        });
        wait_until("all reaped", || scripts_in_flight() == 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
