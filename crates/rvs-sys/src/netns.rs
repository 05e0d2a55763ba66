//! Network namespaces for tests and the lab: create a uniquely named namespace, put veth
//! pairs across namespaces, configure links and addresses, run code on a thread that has
//! entered a namespace, and remove everything again when the guard is dropped — also
//! when a test panics.
//!
//! Configuration goes through the `ip` program (iproute2), which keeps this module small
//! and its failures readable; entering a namespace is a direct `setns(2)` on a dedicated
//! thread (namespace membership is per thread). This is lab plumbing: it is not meant for
//! the daemon's own interface management (that is netlink's job) and it does not try to
//! be fast.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use crate::sys::{last_err, with_context};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS...`; an error carries the command line and its standard error.
pub fn ip<I, S>(args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_checked(Command::new("ip").args(args))
}

fn run_checked(cmd: &mut Command) -> io::Result<Output> {
    let line = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| with_context(e, "spawn", &line))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{line} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// The names of the network namespaces `ip netns list` knows.
pub fn list() -> io::Result<Vec<String>> {
    let out = ip(["netns", "list"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// A named network namespace (`/run/netns/NAME`) that is deleted, together with the
/// processes running in it, when this guard is dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
}

impl Netns {
    /// Creates a namespace named `PREFIX-PID-N` (unique per process and call) with its
    /// loopback up. Fails — never silently skips — when namespaces cannot be made.
    pub fn new(prefix: &str) -> io::Result<Self> {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(["netns", "add", &name])?;
        let ns = Self {
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...` (a command inside this namespace).
    pub fn ip<I, S>(&self, args: I) -> io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_checked(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Sets link `ifname` up.
    pub fn link_up(&self, ifname: &str) -> io::Result<()> {
        self.ip(["link", "set", "dev", ifname, "up"]).map(drop)
    }

    /// Adds address `cidr` (e.g. `10.0.0.1/24`) to `ifname`.
    pub fn add_addr(&self, ifname: &str, cidr: &str) -> io::Result<()> {
        self.ip(["addr", "add", cidr, "dev", ifname]).map(drop)
    }

    /// Runs `program args...` inside the namespace and waits for it (`ip netns exec`).
    pub fn exec<I, S>(&self, program: &str, args: I) -> io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_checked(
            Command::new("ip")
                .args(["netns", "exec", &self.name, program])
                .args(args),
        )
    }

    /// Starts `program args...` inside the namespace without waiting; the process is
    /// killed when the guard is dropped. Returns its pid.
    pub fn spawn_process<I, S>(&self, program: &str, args: I) -> io::Result<u32>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| with_context(e, "spawn", &format!("{cmd:?}")))?;
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        Ok(pid)
    }

    /// Moves the calling thread into this namespace (`setns(CLONE_NEWNET)`). Only for a
    /// thread made for it: the thread stays there. Prefer [`Netns::run`] / [`Netns::spawn`].
    pub fn enter_current_thread(&self) -> io::Result<()> {
        let path = format!("/run/netns/{}", self.name);
        let f = File::open(&path).map_err(|e| with_context(e, "open", &path))?;
        // SAFETY: `f` is an open namespace file that lives for the call; setns only changes
        // the calling thread's network namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc < 0 {
            return Err(last_err("setns(CLONE_NEWNET)", &path));
        }
        Ok(())
    }

    /// Runs `f` on a new thread that has entered this namespace and returns its result.
    /// Sockets created in `f` stay in this namespace wherever they are used afterwards.
    /// A panic in `f` is propagated to the caller.
    pub fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        thread::scope(|s| {
            let h = s.spawn(|| {
                self.enter_current_thread()?;
                Ok(f())
            });
            match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a new thread inside this namespace; join the handle for its result
    /// (`Err` if entering the namespace failed).
    pub fn spawn<T, F>(&self, f: F) -> thread::JoinHandle<io::Result<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let name = self.name.clone();
        thread::spawn(move || {
            let path = format!("/run/netns/{name}");
            let file = File::open(&path).map_err(|e| with_context(e, "open", &path))?;
            // SAFETY: as in `enter_current_thread`: a valid namespace fd, per-thread effect.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc < 0 {
                return Err(last_err("setns(CLONE_NEWNET)", &path));
            }
            Ok(f())
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let children = self.children.get_mut().unwrap_or_else(|e| e.into_inner());
        for child in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything else still running in the namespace was started for it (the name is
        // unique to this guard): end it so the namespace really goes away.
        if let Ok(out) = ip(["netns", "pids", &self.name]) {
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<libc::pid_t>().ok())
            {
                // SAFETY: kill(2) on a pid listed as a member of our own namespace.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        if let Err(e) = ip(["netns", "del", &self.name]) {
            eprintln!("rvs-sys: could not delete network namespace: {e}");
        }
    }
}

/// Creates a veth pair: `a_if` inside `a` and `b_if` inside `b`, both set up.
pub fn veth_pair(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> io::Result<()> {
    a.ip([
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ])?;
    a.link_up(a_if)?;
    b.link_up(b_if)
}
