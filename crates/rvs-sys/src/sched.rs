//! Scheduling of the calling thread: the data-plane worker asks for the lowest real-time
//! priority so that a frame's arrival wakes it ahead of ordinary processes, as the
//! kernel's own forwarding runs (in softirq) ahead of them.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
