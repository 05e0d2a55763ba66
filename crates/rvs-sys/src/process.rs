//! Processes: signal a whole process group (a hook script and everything it started).
//!
//! Only what the daemon needs to bound the scripts it runs; spawning and reaping stay with
//! `std::process` / `tokio::process`.

use std::io;

/// Send SIGKILL to every process of group `pgid` (`kill(-pgid, SIGKILL)`): for a child
/// started as the leader of its own group (`process_group(0)`), the child and whatever it
/// started. A group that is already gone is not an error.
pub fn kill_group(pgid: u32) -> io::Result<()> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "process group id out of range",
        ));
    };
    if pgid <= 1 {
        // -1 would signal every process we may signal, -0 our own group.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a child's process group",
        ));
    }
    // SAFETY: kill() takes no pointers; a negative pid names a process group, and pgid > 1
    // so neither "all processes" (-1) nor the caller's own group (0) is signalled.
    let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(crate::sys::with_context(
        e,
        "kill",
        &format!("process group {pgid}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn kills_the_child_and_what_it_started() {
        // The shell starts a sleeper in the background and waits for it: killing only the
        // shell would leave the sleeper.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & echo $! ; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleeper: u32 = line.trim().parse().unwrap();
        kill_group(child.id()).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        // The sleeper is gone too (reaped by init or a zombie of the killed shell; either
        // way no longer running).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            if matches!(state, None | Some('Z') | Some('X')) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sleeper still {state:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(kill_group(1).is_err());
        assert!(
            kill_group(child.id()).is_ok(),
            "a gone group is not an error"
        );
    }
}
