//! `rvs daemon --cpu N`: the data-plane thread bound to one CPU (`sched_setaffinity(2)`),
//! so that it never runs where the real servers or other busy processes of a shared
//! machine run, nor migrates between CPUs. Only that thread: the control plane's threads
//! started before it keep every CPU; threads and processes it starts itself later (the
//! background runtime for notify scripts on first use) inherit its CPU.
//!
//! Kernel IPVS has no such setting (it forwards in softirq on the CPU that received the
//! frame; RPS/RSS decide which); DPVS pins each worker lcore by its `cpu_id`.

use std::io;

/// Bind the calling thread (the data plane) to `cpu`, when one is given. A CPU that is
/// not online or not allowed is an error: the daemon stops rather than run elsewhere.
pub fn pin_worker(cpu: Option<usize>) -> io::Result<()> {
    let Some(cpu) = cpu else {
        return Ok(());
    };
    rvs_sys::sched::set_affinity(cpu).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--cpu {cpu}: cannot bind the data plane to that CPU: {e}"),
        )
    })?;
    tracing::info!("data plane bound to CPU {cpu}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_the_calling_thread_or_says_why_not() {
        let cpus = rvs_sys::sched::affinity().expect("affinity");
        let first = cpus[0];
        std::thread::spawn(move || {
            pin_worker(None).unwrap();
            assert_eq!(rvs_sys::sched::affinity().unwrap(), cpus);
            pin_worker(Some(first)).unwrap();
            assert_eq!(rvs_sys::sched::affinity().unwrap(), vec![first]);
            let e = pin_worker(Some(1023)).unwrap_err();
            assert!(e.to_string().starts_with("--cpu 1023: cannot bind"), "{e}");
        })
        .join()
        .unwrap();
    }
}
