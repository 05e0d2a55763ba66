//! The control plane's threads run behind forwarding and the host's own work: the control
//! socket's threads (listings, rvsadm, reload parsing and preparation) and the metrics
//! endpoint's (scrape rendering) put themselves under `SCHED_BATCH` with a nice value
//! [`NICE_STEP`] above the daemon's (at most 19). Threads they start inherit it. The
//! data-plane worker (`SCHED_FIFO` when allowed), the health monitor and the failover
//! thread keep their scheduling, so checks and VRRP adverts stay on time.

/// How much lower than the daemon a control thread runs (nice value added).
pub(super) const NICE_STEP: i32 = 10;

/// Lower the calling thread (`what` names it in the log if that is refused).
pub(super) fn lower(what: &str) {
    let target = rvs_sys::sched::nice()
        .unwrap_or(0)
        .saturating_add(NICE_STEP)
        .min(19);
    match rvs_sys::sched::set_background(target) {
        Ok(()) => tracing::debug!("{what} threads run SCHED_BATCH, nice {target}"),
        Err(e) => tracing::warn!(
            "{what} threads keep ordinary scheduling (SCHED_BATCH, nice {target} refused: {e})"
        ),
    }
}
