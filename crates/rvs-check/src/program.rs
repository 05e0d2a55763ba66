//! The checks that run a program: nanny's `send_program` and keepalived's MISC_CHECK.
//!
//! Both are made ready by [`crate::script::prepare`]: `send_program` through `/bin/sh -c`
//! as nanny's `popen()` runs it, MISC_CHECK cut into words and executed without a shell as
//! its `user` (else the default script user), after keepalived's security check, as
//! keepalived runs it. Each runs in a process group of its own, with standard input from
//! /dev/null. When the budget runs out the whole group is killed
//! (SIGKILL to `-pgid`), the shell is reaped, and the check fails with the timeout; the same
//! happens when the attempt is cancelled. keepalived's `misc_check_child_thread` sends
//! SIGTERM first and SIGKILL 2 s later; rvs kills at once, so an attempt never outlives its
//! budget.
//!
//! - `send_program`: `%h` becomes the target's address and `%p` its port. The program's
//!   standard output (read to its end, at most 64 KiB kept) must equal `expect`, one trailing
//!   newline on either side ignored; without `expect`, its exit status must be 0.
//! - MISC_CHECK (keepalived's `misc_check_child_thread`): exit 0 is up, 1 down; with
//!   `misc_dynamic`, 2..=255 is up with weight `status − 2` ("Effective range is 0..253"),
//!   and without it any status but 0 is down. Death by a signal is down. Its output goes to
//!   /dev/null.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal, kill_process_group};
use rvs_core::health::Outcome;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::Target;
use crate::budget::{Budget, Fail, Res};
use crate::script::{Prepared, Style, prepare};
use crate::stream::quote;

/// The most of a program's output that is kept for comparison.
const MAX_OUTPUT: usize = 64 * 1024;

/// nanny's `send_program`.
pub(crate) async fn send_program(
    command: &str,
    expect: Option<&str>,
    target: &Target,
    budget: Budget,
) -> Res<()> {
    let line = substitute(command, target);
    let prepared = prepare(&line, None, &[], Style::Shell).map_err(Fail::new)?;
    let (status, output) = Running::spawn(&prepared, true)?.finish(budget).await?;
    match expect {
        Some(expect) => {
            if trim_newline(&output) == trim_newline(expect.as_bytes()) {
                Ok(())
            } else {
                Err(Fail::new(format!("expect: got \"{}\"", quote(&output))))
            }
        }
        None if status.success() => Ok(()),
        None => Err(Fail::new(exit_reason(status))),
    }
}

/// keepalived's MISC_CHECK.
pub(crate) async fn misc(
    path: &str,
    user: Option<&str>,
    dynamic: bool,
    budget: Budget,
) -> Res<Outcome> {
    let prepared = prepare(path, user, &[], Style::Keepalived).map_err(Fail::new)?;
    let (status, _) = Running::spawn(&prepared, false)?.finish(budget).await?;
    //= keepalived/check/check_misc.c misc_check_child_thread()
    //# The actual weight set when using misc_dynamic is two less than
    //# the exit status returned.  Effective range is 0..253.
    //# Catch legacy case of status being 0 but misc_dynamic being set.
    match status.code() {
        Some(0) => Ok(Outcome::Up),
        Some(code @ 2..=255) if dynamic => Ok(Outcome::UpWithWeight(code as u32 - 2)),
        _ => Err(Fail::new(exit_reason(status))),
    }
}

/// `"exit status 1"` or `"killed by signal 9"`.
fn exit_reason(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("ended: {status}"),
    }
}

/// Replaces nanny's `%h` (address) and `%p` (port); any other `%` stays.
fn substitute(command: &str, target: &Target) -> String {
    let mut out = String::with_capacity(command.len() + 40);
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('h')) => {
                out.push_str(&target.addr.to_string());
                chars.next();
            }
            ('%', Some('p')) => {
                out.push_str(&target.port.to_string());
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// The output without one trailing newline (`\n` or `\r\n`).
fn trim_newline(s: &[u8]) -> &[u8] {
    match s.strip_suffix(b"\n") {
        Some(s) => s.strip_suffix(b"\r").unwrap_or(s),
        None => s,
    }
}

/// A program running in its own process group; the group is killed if this is dropped
/// before the program ended.
struct Running {
    child: Child,
    /// The process group, while it may still have to be killed.
    group: Option<Pid>,
}

impl Running {
    fn spawn(prepared: &Prepared, capture: bool) -> Res<Running> {
        let mut cmd = Command::from(prepared.command());
        cmd.stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| Fail::io(&format!("run {}", prepared.argv[0]), &e))?;
        // The program leads its own group, so the group's id is its pid. Never pid 1 or 0,
        // whose "groups" would be every process.
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|&id| id > 1)
            .and_then(Pid::from_raw);
        Ok(Running { child, group })
    }

    /// Waits for the program (and reads its output) within the budget; kills its group
    /// when the budget runs out.
    async fn finish(mut self, budget: Budget) -> Res<(ExitStatus, Vec<u8>)> {
        let stdout = self.child.stdout.take();
        let child = &mut self.child;
        let work = async move {
            let mut output = Vec::new();
            if let Some(mut stdout) = stdout {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stdout
                        .read(&mut buf)
                        .await
                        .map_err(|e| Fail::io("read output", &e))?;
                    if n == 0 {
                        break;
                    }
                    let keep = n.min(MAX_OUTPUT - output.len());
                    output.extend_from_slice(&buf[..keep]);
                }
            }
            let status = child.wait().await.map_err(|e| Fail::io("wait", &e))?;
            Ok::<_, Fail>((status, output))
        };
        match budget.within(work).await {
            Some(Ok(done)) => {
                // Ended by itself: what it left running in its group is its own business,
                // as with keepalived.
                self.group = None;
                Ok(done)
            }
            Some(Err(fail)) => Err(fail),
            None => {
                self.kill_group();
                // Reap the shell now rather than leave it to tokio's orphan queue.
                let _ = self.child.wait().await;
                Err(budget.timeout())
            }
        }
    }

    fn kill_group(&mut self) {
        if let Some(group) = self.group.take() {
            // ESRCH (already gone) is fine; nothing else can be done about the others.
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_address_and_port_only() {
        let t = Target {
            addr: "2001:db8::1".parse().unwrap(),
            port: 8080,
            bind: None,
            fwmark: None,
        };
        assert_eq!(
            substitute("check -H %h -p %p -x 100% %q", &t),
            "check -H 2001:db8::1 -p 8080 -x 100% %q"
        );
        assert_eq!(substitute("%%h%", &t), "%2001:db8::1%");
    }

    #[test]
    fn one_trailing_newline_is_ignored() {
        assert_eq!(trim_newline(b"OK\n"), b"OK");
        assert_eq!(trim_newline(b"OK\r\n"), b"OK");
        assert_eq!(trim_newline(b"OK\n\n"), b"OK\n");
        assert_eq!(trim_newline(b"OK"), b"OK");
    }
}
