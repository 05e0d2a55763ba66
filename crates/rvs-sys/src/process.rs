//! Processes: the scripts the daemon runs (started as another user, in a process group of
//! their own, without the daemon's ambient capabilities) and signalling a whole process
//! group (a hook script and everything it started); user and group names looked up.
//!
//! Only the pieces that need the C library or a syscall; what to run and when stays with
//! the daemon, spawning and reaping with `std::process` / `tokio::process`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::process::CommandExt;

/// Who a script runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id (also its only supplementary group, as keepalived sets it).
    pub gid: u32,
}

/// A command for a script: `program` with `args`, standard input from /dev/null, the leader
/// of a new process group, and in the child before `exec` (keepalived lib/notify.c
/// `set_script_env()` / `system_call_script()`): with `run_as`, the supplementary groups set
/// to its group alone, then its group and user ids set (real, effective and saved); the
/// ambient capabilities cleared, so a script never inherits the daemon's; and SIGTERM asked
/// for should the thread that started it end (`PR_SET_PDEATHSIG`, as keepalived asks).
pub fn script_command(
    program: &std::ffi::OsStr,
    args: &[String],
    run_as: Option<RunAs>,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe syscalls (setgroups, setresgid, setresuid, prctl) with integer
    // arguments or a pointer to the stack array `gids`; it allocates nothing and takes no
    // lock.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(r) = run_as {
                let gids = [r.gid as libc::gid_t];
                if libc::setgroups(1, gids.as_ptr()) != 0
                    || libc::setresgid(r.gid, r.gid, r.gid) != 0
                    || libc::setresuid(r.uid, r.uid, r.uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            // After the id change, which clears it.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            Ok(())
        });
    }
    cmd
}

/// A buffer size for the `get*_r` calls.
fn buf_len(which: libc::c_int) -> usize {
    // SAFETY: sysconf takes an integer.
    let n = unsafe { libc::sysconf(which) };
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1024)
        .max(1024)
}

/// The user `name`: its uid and primary gid, or None when there is no such user.
pub fn user_by_name(name: &str) -> io::Result<Option<RunAs>> {
    lookup_by_name(
        name,
        "user",
        libc::_SC_GETPW_R_SIZE_MAX,
        |cname, pwd: &mut libc::passwd, buf, out| {
            // SAFETY: every pointer is valid for the call: the NUL-terminated name, `pwd`,
            // `buf` with its true length, and `out`, which is set to &pwd or null.
            unsafe { libc::getpwnam_r(cname, pwd, buf.as_mut_ptr(), buf.len(), out) }
        },
        |pwd| RunAs {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        },
    )
}

/// The group `name`'s gid, or None when there is no such group.
pub fn group_by_name(name: &str) -> io::Result<Option<u32>> {
    lookup_by_name(
        name,
        "group",
        libc::_SC_GETGR_R_SIZE_MAX,
        |cname, grp: &mut libc::group, buf, out| {
            // SAFETY: as in user_by_name: all pointers valid for the call, `buf`'s true
            // length.
            unsafe { libc::getgrnam_r(cname, grp, buf.as_mut_ptr(), buf.len(), out) }
        },
        |grp| grp.gr_gid,
    )
}

/// A `getpwnam_r(3)` / `getgrnam_r(3)` lookup of `name` (`call`), its buffer grown on
/// `ERANGE` (up to 1 MiB); `pick` takes what is wanted from the entry while its buffer is
/// alive. None when there is no such entry.
fn lookup_by_name<T, R>(
    name: &str,
    what: &str,
    size_key: libc::c_int,
    call: impl Fn(*const libc::c_char, &mut T, &mut [libc::c_char], &mut *mut T) -> libc::c_int,
    pick: impl Fn(&T) -> R,
) -> io::Result<Option<R>> {
    let cname = CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("NUL in a {what} name"))
    })?;
    let mut len = buf_len(size_key);
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: T is libc's passwd or group (the only callers), plain C data for which
        // all-zero bytes are a valid value; the call overwrites it.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut out: *mut T = std::ptr::null_mut();
        let rc = call(cname.as_ptr(), &mut entry, &mut buf, &mut out);
        if rc == libc::ERANGE && len < 1 << 20 {
            len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        return Ok((!out.is_null()).then(|| pick(&entry)));
    }
}

/// The user name of `uid`, for logs (None when unknown).
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; buf_len(libc::_SC_GETPW_R_SIZE_MAX).max(16 * 1024)];
    // SAFETY: as in user_by_name.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers valid for the call, `buf`'s true length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    Some(
        unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

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

    #[test]
    fn users_and_groups_by_name() {
        assert_eq!(
            user_by_name("root").unwrap(),
            Some(RunAs { uid: 0, gid: 0 })
        );
        assert_eq!(user_by_name("no-such-user-rvs").unwrap(), None);
        assert_eq!(group_by_name("root").unwrap(), Some(0));
        assert_eq!(group_by_name("no-such-group-rvs").unwrap(), None);
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn scripts_run_as_the_user_asked_for() {
        let Some(nobody) = user_by_name("nobody").unwrap() else {
            panic!("no user nobody on this machine");
        };
        let out = script_command("/usr/bin/id".as_ref(), &["-u".into()], Some(nobody))
            .output()
            .unwrap();
        if crate::caps::ids().0 == 0 {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                nobody.uid.to_string()
            );
            let out = script_command("/usr/bin/id".as_ref(), &["-G".into()], Some(nobody))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                nobody.gid.to_string(),
                "the group alone"
            );
        } else {
            assert!(!out.status.success() || out.stdout.is_empty());
        }
    }

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
