//! Configuration changes prepared on control threads, installed by the worker.
//!
//! A reload (read and checked by [`super::reload::Reloader::stage`]) and an rvsadm edit
//! (`-A -E -D -C -a -e -d --set --local-pool -R`, parsed by [`crate::admin::prepare`]) are
//! worked out here, on the control thread that received them: the new base configuration
//! (ipvsadm's refusals, "No such service" and the like, are answered from here), the
//! addresses rvsadm's new services need, the health monitor's view of it and the validation
//! of its effective form ([`crate::desired::Planner::prepare`]). The worker gets a
//! [`Change`] that only needs swapping in ([`crate::desired::Desired::install_prepared`] and
//! `Director::install`), and hands back what it replaced, which is freed here.
//!
//! Changes are prepared one at a time ([`Staging`] stays locked from preparation until the
//! worker installed it), so concurrent edits and reloads each apply to the result of the
//! one before, as ipvsadm commands to the kernel do.
//!
//! Each change is worked out against the effective configuration the engine runs
//! ([`Running`], with the engine's generation), so the worker's install touches only the
//! services that differ ([`rvs_core::director::Prepared::against`]): a reload that edits
//! one weight among 10,000 services costs the worker one service's work. The health
//! monitor's decisions are prepared the same way, by [`start_refresher`]'s thread, so the
//! worker never builds or walks a configuration.
//!
//! rvsadm's sync-daemon requests are answered by [`super::sync_control`], `-Z` by
//! [`super::zeroing`].

use super::control::{Answer, Ask, Shared, ask_view, ask_worker, list_connections};
use super::housekeeping::ControlPlane;
use crate::admin::{self, Plan, Reply};
use crate::desired::{Planner, PreparedBase, Running};
use crate::listing;
use rvs_config::ipvsadm::ListOptions;
use rvs_core::director::{ApplyReport, Director, NetConfig, OwnedAddr};
use rvs_core::model::{Config, ConfigError};
use rvs_core::time::Instant;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What the control threads know of the running configuration.
pub(super) struct Staging {
    /// The base configuration and the health monitor.
    pub(super) planner: Planner,
    /// The director's network view with every configured address owned, as the worker
    /// holds it (rvsadm's new services' addresses are checked against it).
    pub(super) net: NetConfig,
    /// No failover protocol decides ownership: the director owns every address.
    pub(super) all: bool,
    /// What the engine runs: changes are worked out against it.
    pub(super) running: Running,
}

/// A change ready for the worker to install.
#[derive(Debug)]
pub(super) struct Change {
    prepared: PreparedBase,
    /// Addresses of rvsadm's new services to own.
    own: Vec<OwnedAddr>,
    /// A reload's network view.
    net: Option<NetConfig>,
    /// A check travels the forwarding path: the probe path must be open.
    probe: bool,
    /// Copies for the other forwarding workers ([`super::workers::copies`]).
    copies: Vec<rvs_core::director::Prepared>,
}

impl Change {
    fn new(prepared: PreparedBase, own: Vec<OwnedAddr>, net: Option<NetConfig>) -> Change {
        let probe = super::housekeeping::wants_probe_path(prepared.spec());
        let copies = super::workers::copies(prepared.prepared());
        Change {
            copies,
            prepared,
            own,
            net,
            probe,
        }
    }
}

fn lock(s: &Mutex<Staging>) -> MutexGuard<'_, Staging> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn joined(errs: &[ConfigError], sep: &str) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// Hand `c` to the worker and note what the engine runs now in `running`; what it replaced
/// is dropped here.
fn install(shared: &Shared, running: &mut Running, c: Change) -> Result<ApplyReport, String> {
    // The copy the next change is worked out against, made here rather than on the worker.
    let effective = c.prepared.effective().clone();
    super::workers::refuse_change(&effective)?;
    match ask_worker(&shared.requests, Ask::Install(Box::new(c)))? {
        Answer::Installed(report, generation, replaced) => {
            drop(replaced);
            *running = Running {
                generation,
                effective,
            };
            Ok(report)
        }
        _ => Err("the data-plane worker answered something else".into()),
    }
}

/// An ipvsadm command line parsed by the control thread (listings other than within `-R`
/// are answered before this): the encoded reply.
pub(super) fn ipvsadm(shared: &Shared, p: admin::Prepared) -> String {
    if let Some(r) = p.sync_request() {
        return super::sync_control::ipvsadm(shared, r).encode();
    }
    let mut st = lock(&shared.staging);
    let plan = {
        let planner = &st.planner;
        let mut list = |opts: &ListOptions| {
            if listing::needs_engine(opts) {
                list_connections(shared, &opts.format)
            } else {
                let v = ask_view(&shared.requests)?;
                listing::list_view(&v.engine, opts)
            }
        };
        p.plan(planner.base(), &|| planner.effective(), &mut list)
    };
    match plan {
        Plan::Reply(r) => r.encode(),
        // -Z (the sync requests are answered above).
        Plan::Engine => match p.zero_request() {
            Some(key) => super::zeroing::ipvsadm(shared, &st.running, key).encode(),
            None => Reply::fail(255, "not a command for the engine").encode(),
        },
        Plan::Install { next, reply } => match edit(shared, &mut st, next) {
            Ok(()) => reply.encode(),
            Err(r) => r.encode(),
        },
    }
}

/// Check `next` (a VIP nobody can answer for refuses the change whole, then the engine's
/// validation), prepare it and have the worker install it.
fn edit(shared: &Shared, st: &mut Staging, next: Config) -> Result<(), Reply> {
    let own = admin::addresses_to_own(&st.net, st.all, st.planner.base(), &next)
        .map_err(|why| Reply::fail(255, &why))?;
    let prepared = st
        .planner
        .prepare(&next, None, shared.monitor.now(), Some(&st.running))
        .map_err(|errs| Reply::fail(255, &joined(&errs, "\n")))?;
    install(
        shared,
        &mut st.running,
        Change::new(prepared, own.clone(), None),
    )
    .map_err(|e| Reply::fail(255, &e))?;
    st.planner.committed(next, None);
    st.net.owned.extend(own);
    Ok(())
}

/// Reload the file: read, checked and prepared here, installed by the worker.
pub(super) fn reload(shared: &Shared) -> Result<String, String> {
    let staged = shared.reloader.stage()?;
    let (path, config, health, net) = staged.into_parts();
    let mut st = lock(&shared.staging);
    let prepared = st
        .planner
        .prepare(
            &config,
            Some(health.clone()),
            shared.monitor.now(),
            Some(&st.running),
        )
        .map_err(|errs| format!("{}: {}", path.display(), joined(&errs, "; ")))?;
    let report = install(
        shared,
        &mut st.running,
        Change::new(prepared, Vec::new(), Some(net.clone())),
    )?;
    st.planner.committed(config, Some(health));
    st.net = net;
    Ok(format!(
        "reloaded {}: services +{} -{}, real servers +{} -{} ~{}",
        path.display(),
        report.services_added,
        report.services_removed,
        report.dests_added,
        report.dests_removed,
        report.dests_edited
    ))
}

/// How often the refresher looks for a health decision to install.
const REFRESH_POLL: Duration = Duration::from_millis(5);

/// The thread that installs the health monitor's decisions (a server down or up, a weight
/// changed): it prepares the new effective configuration against what the engine runs and
/// hands the worker only the services that differ. Nothing is sent when the engine runs it
/// already (each reload and edit teaches the monitor first, which counts as a decision).
pub(super) fn start_refresher(
    shared: Shared,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rvs-refresh".into())
        .spawn(move || {
            super::priority::lower("health refresh");
            while !stop.load(Ordering::Relaxed) {
                if shared.monitor.take_changed() {
                    refresh(&shared);
                }
                std::thread::sleep(REFRESH_POLL);
            }
        })
}

/// Install the health monitor's latest decision (see [`start_refresher`]).
fn refresh(shared: &Shared) {
    let mut st = lock(&shared.staging);
    let st = &mut *st;
    match st.planner.refresh(&st.running) {
        Ok(None) => {}
        Ok(Some(prepared)) => {
            if let Err(e) = install(
                shared,
                &mut st.running,
                Change::new(prepared, Vec::new(), None),
            ) {
                tracing::error!("health change not installed: {e}");
            }
        }
        // Cannot happen for a valid base (the overlay only removes, quiesces, re-weights
        // and adds the sorry server); say so loudly if it does.
        Err(errs) => tracing::error!("health change not installed: {}", joined(&errs, "; ")),
    }
}

impl ControlPlane<'_> {
    /// Install a prepared change (on the worker): the engine swaps it in, the health
    /// monitor looks again, the network view and rvsadm's new addresses follow.
    pub(super) fn install_change(&mut self, d: &mut Director, c: Change, now: Instant) -> Answer {
        let (report, replaced) = self.desired.install_prepared(d, c.prepared);
        self.peers.install(c.copies, d.config());
        // New or edited real servers may have checks to schedule.
        self.monitor.wake();
        self.open_probe_path(d, c.probe);
        if let Some(net) = c.net {
            self.install_net(d, net, now);
        }
        self.own_service_addresses(d, c.own, now);
        Answer::Installed(report, d.generation(), Box::new(replaced))
    }
}
