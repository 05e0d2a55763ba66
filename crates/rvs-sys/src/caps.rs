//! Capabilities and the daemon's user: read the calling thread's sets (`capget`), keep only
//! some of them (bounding set by `PR_CAPBSET_DROP`, then `capset`), and become another user
//! while keeping them (`PR_SET_KEEPCAPS`, `setresuid`, ambient set).
//!
//! Capabilities are per thread: a thread started afterwards inherits the creating thread's
//! sets, a thread started before keeps its own. Call [`restrict`] and [`become_user`] while
//! the process has one thread.
//!
//! This module does not decide which capabilities a program needs; the daemon does.

use std::fmt;
use std::io;

use crate::sys::last_err;

/// A capability number (`CAP_NET_RAW` is 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cap(pub u8);

impl Cap {
    /// `CAP_KILL`: signal processes of other users (the scripts run as another user).
    pub const KILL: Cap = Cap(5);
    /// `CAP_SETGID`.
    pub const SETGID: Cap = Cap(6);
    /// `CAP_SETUID`.
    pub const SETUID: Cap = Cap(7);
    /// `CAP_SETPCAP`: needed to drop from the bounding set.
    pub const SETPCAP: Cap = Cap(8);
    /// `CAP_NET_BIND_SERVICE`: bind ports below 1024.
    pub const NET_BIND_SERVICE: Cap = Cap(10);
    /// `CAP_NET_ADMIN`: addresses, routes, rules, sysctls of the namespace, `SO_MARK`.
    pub const NET_ADMIN: Cap = Cap(12);
    /// `CAP_NET_RAW`: AF_PACKET and raw IP sockets, `SO_BINDTODEVICE`.
    pub const NET_RAW: Cap = Cap(13);
    /// `CAP_SYS_NICE`: real-time scheduling.
    pub const SYS_NICE: Cap = Cap(23);

    /// The kernel's name, `CAP_NET_RAW`, or `CAP_<n>` for a number this table lacks.
    pub fn name(self) -> String {
        NAMES
            .get(usize::from(self.0))
            .map_or_else(|| format!("CAP_{}", self.0), |n| format!("CAP_{n}"))
    }
}

/// linux/capability.h, in number order.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A set of capabilities, as the kernel's 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct CapSet(pub u64);

impl CapSet {
    /// The empty set.
    pub const EMPTY: CapSet = CapSet(0);

    /// The set of `caps`.
    pub fn of(caps: &[Cap]) -> CapSet {
        CapSet(caps.iter().fold(0, |m, c| m | 1u64 << c.0))
    }

    /// Whether `cap` is in the set.
    pub fn has(self, cap: Cap) -> bool {
        cap.0 < 64 && self.0 & (1 << cap.0) != 0
    }

    /// The capabilities in the set, in number order.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        (0u8..64).map(Cap).filter(move |c| self.has(*c))
    }

    /// Both sets' members.
    pub fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// The members of both.
    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }
}

impl fmt::Display for CapSet {
    /// `CAP_NET_ADMIN,CAP_NET_RAW`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let names: Vec<String> = self.iter().map(Cap::name).collect();
        f.write_str(&names.join(","))
    }
}

/// The calling thread's capability sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Effective.
    pub effective: CapSet,
    /// Permitted.
    pub permitted: CapSet,
    /// Inheritable.
    pub inheritable: CapSet,
    /// Bounding.
    pub bounding: CapSet,
    /// Ambient.
    pub ambient: CapSet,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn capget() -> io::Result<[Data; 2]> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget(2) with a version-3 header reads the header and writes two `Data`
    // records (the `__user_cap_data_struct` layout: three u32), which `data` provides; both
    // live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(last_err("capget", "this thread"));
    }
    Ok(data)
}

fn capset(effective: CapSet, permitted: CapSet, inheritable: CapSet) -> io::Result<()> {
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |s: CapSet| [s.0 as u32, (s.0 >> 32) as u32];
    let (e, p, i) = (split(effective), split(permitted), split(inheritable));
    let data = [
        Data {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        Data {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: capset(2) with a version-3 header reads the header and two `Data` records,
    // both valid and alive for the call; pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) };
    if rc != 0 {
        return Err(last_err("capset", &format!("keep {permitted}")));
    }
    Ok(())
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> libc::c_int {
    // SAFETY: the prctl operations used here (PR_CAPBSET_READ/DROP, PR_SET_KEEPCAPS,
    // PR_CAP_AMBIENT) take integer arguments only; unused ones are passed as 0.
    unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) }
}

/// The calling thread's sets.
pub fn current() -> io::Result<Caps> {
    let d = capget()?;
    let join = |lo: u32, hi: u32| CapSet(u64::from(lo) | u64::from(hi) << 32);
    let mut bounding = 0u64;
    let mut ambient = 0u64;
    for c in 0..=last_cap().min(63) {
        if prctl(libc::PR_CAPBSET_READ, c.into(), 0) == 1 {
            bounding |= 1 << c;
        }
        if prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
            c.into(),
        ) == 1
        {
            ambient |= 1 << c;
        }
    }
    Ok(Caps {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
        bounding: CapSet(bounding),
        ambient: CapSet(ambient),
    })
}

/// Keep only `keep` (those of them the thread has): every other capability leaves the
/// bounding set (so no program run later, even as root, gets it back), the permitted and
/// effective sets; the inheritable and ambient sets are emptied. Needs `CAP_SETPCAP` to
/// shrink the bounding set; without it (an unprivileged run) only the other sets shrink.
pub fn restrict(keep: CapSet) -> io::Result<()> {
    drop_bounding(keep)?;
    let now = current()?;
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    );
    let kept = now.permitted.intersect(keep);
    capset(kept, kept, CapSet::EMPTY)
}

/// Drop every capability but `keep` from the bounding set (the permitted and effective sets
/// are left alone). Nothing is dropped without `CAP_SETPCAP` (an unprivileged run).
pub fn drop_bounding(keep: CapSet) -> io::Result<()> {
    let now = current()?;
    if now.effective.has(Cap::SETPCAP) {
        for c in now.bounding.iter().filter(|c| !keep.has(*c)) {
            if prctl(libc::PR_CAPBSET_DROP, c.0.into(), 0) != 0 {
                return Err(last_err("prctl(PR_CAPBSET_DROP)", &c.name()));
            }
        }
    }
    Ok(())
}

/// Become user `uid` / group `gid` (supplementary groups: `gid` only) keeping `keep` of
/// the permitted capabilities in the permitted and effective sets, and raising `ambient`
/// (a subset of `keep`) into the ambient set so programs the daemon runs as itself keep
/// them. Needs `CAP_SETUID` and `CAP_SETGID` (dropped afterwards unless in `keep`).
pub fn become_user(uid: u32, gid: u32, keep: CapSet, ambient: CapSet) -> io::Result<()> {
    if prctl(libc::PR_SET_KEEPCAPS, 1, 0) != 0 {
        return Err(last_err("prctl(PR_SET_KEEPCAPS)", "1"));
    }
    let gids = [gid as libc::gid_t];
    // SAFETY: setgroups reads one gid_t from `gids`, which lives for the call.
    if unsafe { libc::setgroups(1, gids.as_ptr()) } != 0 {
        return Err(last_err("setgroups", &gid.to_string()));
    }
    // SAFETY: setresgid/setresuid take integers only (glibc applies them to every thread).
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(last_err("setresgid", &gid.to_string()));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(last_err("setresuid", &uid.to_string()));
    }
    prctl(libc::PR_SET_KEEPCAPS, 0, 0);
    // Changing to a non-zero uid emptied the effective set; the permitted set was kept.
    let now = current()?;
    let kept = now.permitted.intersect(keep);
    let ambient = ambient.intersect(kept);
    capset(kept, kept, ambient)?;
    for c in ambient.iter() {
        if prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            c.0.into(),
        ) != 0
        {
            return Err(last_err("prctl(PR_CAP_AMBIENT_RAISE)", &c.name()));
        }
    }
    Ok(())
}

/// The calling process's effective uid and gid.
pub fn ids() -> (u32, u32) {
    // SAFETY: geteuid/getegid take no arguments and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sets() {
        assert_eq!(Cap::NET_RAW.name(), "CAP_NET_RAW");
        assert_eq!(Cap(40).name(), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(Cap(50).name(), "CAP_50");
        let s = CapSet::of(&[Cap::NET_RAW, Cap::NET_ADMIN]);
        assert_eq!(s.to_string(), "CAP_NET_ADMIN,CAP_NET_RAW");
        assert_eq!(s.0, 0x3000);
        assert_eq!(CapSet::EMPTY.to_string(), "none");
        assert!(s.has(Cap::NET_RAW) && !s.has(Cap::KILL));
    }

    #[test]
    fn restrict_in_a_thread_of_its_own() {
        // Capabilities are per thread: this one gives its up, the test's others keep theirs.
        std::thread::spawn(|| {
            let before = current().unwrap();
            let keep = CapSet::of(&[Cap::NET_RAW]);
            restrict(keep).unwrap();
            let after = current().unwrap();
            assert_eq!(after.effective, before.permitted.intersect(keep));
            assert_eq!(after.permitted, after.effective);
            assert_eq!(after.inheritable, CapSet::EMPTY);
            if before.effective.has(Cap::SETPCAP) {
                assert_eq!(after.bounding, before.bounding.intersect(keep));
            }
        })
        .join()
        .unwrap();
    }
}
