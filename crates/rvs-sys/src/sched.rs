//! Scheduling of the calling thread: the data-plane worker asks for the lowest real-time
//! priority so that a frame's arrival wakes it ahead of ordinary processes, as the
//! kernel's own forwarding runs (in softirq) ahead of them; and may be bound to one CPU
//! ([`set_affinity`]).

use std::io;

/// Puts the calling thread (only it: Linux schedules threads) under `SCHED_FIFO` at
/// `priority` (1..=99) with `SCHED_RESET_ON_FORK`, so threads and processes it starts
/// later are ordinary again. Fails with `EPERM` without `CAP_SYS_NICE` (or an RT budget,
/// in a cgroup that has none).
pub fn set_fifo(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 names the calling thread; `param` is a valid sched_param that the
    // kernel only reads during the call.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread (only it) under `SCHED_BATCH` with nice value `nice`
/// (`setpriority(PRIO_PROCESS, gettid(), nice)`: Linux keeps a nice value per thread), for
/// work that must not compete with forwarding or the host's own processes: the kernel
/// gives it the CPU after ordinary threads of lower nice values and does not let its
/// wake-ups preempt them. Lowering one's own priority needs no privilege.
pub fn set_background(nice: i32) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread; `param` is a valid sched_param that the
    // kernel only reads during the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain integers; PRIO_PROCESS with a thread id sets that thread's nice value.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's nice value.
pub fn nice() -> io::Result<i32> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    // getpriority can return -1 legitimately: errno tells.
    // SAFETY: errno is this thread's; clearing it before the call is how getpriority's
    // errors are told apart.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: plain integers.
    let rc = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    let err = io::Error::last_os_error();
    if rc == -1 && err.raw_os_error().unwrap_or(0) != 0 {
        return Err(err);
    }
    Ok(rc)
}

/// The calling thread's scheduling policy (`SCHED_*`, without `SCHED_RESET_ON_FORK`).
pub fn policy() -> io::Result<i32> {
    // SAFETY: pid 0 names the calling thread; no memory is passed.
    let rc = unsafe { libc::sched_getscheduler(0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc & !libc::SCHED_RESET_ON_FORK)
    }
}

/// Binds the calling thread (only it) to CPU `cpu`: `sched_setaffinity(2)` with a
/// one-CPU mask. Threads and processes it starts later inherit the mask. Fails with
/// `EINVAL` for a CPU that is not online (or beyond `CPU_SETSIZE`), `EPERM` when a
/// cpuset forbids it.
pub fn set_affinity(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is a plain bit array; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE, inside `set`'s bits.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 names the calling thread; `set` is a valid cpu_set_t of the size
    // passed, only read during the call.
    let rc = unsafe { libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs the calling thread may run on, in increasing order.
pub fn affinity() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: pid 0 names the calling thread; the kernel writes at most the size passed
    // into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, inside `set`'s bits.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_lowers_only_the_calling_thread() {
        let before = (policy().unwrap(), nice().unwrap());
        let (pol, n) = std::thread::spawn(|| {
            set_background(10).unwrap();
            (policy().unwrap(), nice().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(pol, libc::SCHED_BATCH);
        assert_eq!(n, 10);
        assert_eq!((policy().unwrap(), nice().unwrap()), before);
    }

    #[test]
    fn fifo_applies_to_the_calling_thread_only() {
        let before = policy().expect("policy");
        std::thread::spawn(|| {
            match set_fifo(1) {
                Ok(()) => assert_eq!(policy().expect("policy"), libc::SCHED_FIFO),
                // Without CAP_SYS_NICE the request is refused, and nothing changes.
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
                    assert_eq!(policy().expect("policy"), libc::SCHED_OTHER);
                }
            }
            // Threads it starts are ordinary again (SCHED_RESET_ON_FORK).
            let child = std::thread::spawn(|| policy().expect("policy")).join();
            assert_eq!(child.expect("child"), libc::SCHED_OTHER);
        })
        .join()
        .expect("thread");
        assert_eq!(policy().expect("policy"), before);
    }

    #[test]
    fn affinity_binds_the_calling_thread_only() {
        let before = affinity().expect("affinity");
        let last = *before.last().expect("a CPU");
        std::thread::spawn(move || {
            set_affinity(last).expect("pin to an allowed CPU");
            assert_eq!(affinity().expect("affinity"), vec![last]);
            // Threads it starts inherit the mask.
            let child = std::thread::spawn(|| affinity().expect("affinity")).join();
            assert_eq!(child.expect("child"), vec![last]);
        })
        .join()
        .expect("thread");
        assert_eq!(
            affinity().expect("affinity"),
            before,
            "the caller is untouched"
        );
        let e = set_affinity(libc::CPU_SETSIZE as usize).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        // A CPU that is not there (the mask names none that is online).
        let absent = libc::CPU_SETSIZE as usize - 1;
        std::thread::spawn(move || {
            assert_eq!(
                set_affinity(absent).unwrap_err().raw_os_error(),
                Some(libc::EINVAL)
            );
        })
        .join()
        .expect("thread");
    }
}
