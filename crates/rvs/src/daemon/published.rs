//! What keeps the forwarding thread's housekeeping independent of the number of services
//! (issues 13 and 15 item 5): the engine's periodic walks are spread out.
//!
//! - The rate estimators tick in [`ESTIMATOR_ROWS`] rows, one row every 2 s / 50, each
//!   estimator once every 2 s with the same arithmetic (the kernel's estimation kthread does
//!   the same since Linux 6.2: `net/netfilter/ipvs/ip_vs_est.c`, `IPVS_EST_NTICKS` rows,
//!   one per `IPVS_EST_TICK`). `ipvsadm --rate` and `--stats` show what they showed.
//! - The schedulers' garbage collection (lblc/lblcr, due once a minute) and the neighbour
//!   warm-up of every real server's next hop (every 5 s) walk [`WALK_CHUNK`] services per
//!   housekeeping round, going on where the last round stopped.

use super::control::WorkerView;
use crate::snapshot::DirectorView;
use crate::syncd::SyncCounts;
use rvs_core::director::{Director, DirectorSettings};
use std::sync::Arc;

/// Rows of rate estimators (`IPVS_EST_NTICKS` in `include/net/ip_vs.h`).
pub(super) const ESTIMATOR_ROWS: u32 = 50;

/// Services visited per housekeeping round by the walks that are not due at a moment.
pub(super) const WALK_CHUNK: usize = 256;

/// The engine's settings for spread-out housekeeping (the rest default).
pub(super) fn settings() -> DirectorSettings {
    DirectorSettings {
        estimator_rows: ESTIMATOR_ROWS,
        walk_chunk: WALK_CHUNK,
        ..DirectorSettings::default()
    }
}

/// The view of the engine for a round of control requests (scrapes, listings), written into
/// the vectors of the last one when the control threads no longer hold it: a copy of a
/// large configuration then allocates nothing per service on the worker (and frees nothing:
/// a view still held is freed by its last holder, on a control thread).
pub(super) fn view(
    spare: &mut Option<Arc<WorkerView>>,
    d: &Director,
    sync: SyncCounts,
    rings: &[(String, u64, u64)],
    merge: impl FnOnce(DirectorView) -> DirectorView,
) -> Arc<WorkerView> {
    let (services, order) = match spare.take().map(Arc::try_unwrap) {
        Some(Ok(old)) => (old.engine.services, old.engine.order),
        _ => (Vec::new(), Vec::new()),
    };
    let v = Arc::new(WorkerView {
        engine: merge(DirectorView::of_reusing(d, services, order)),
        sync,
        rings: rings.to_vec(),
    });
    *spare = Some(Arc::clone(&v));
    v
}
