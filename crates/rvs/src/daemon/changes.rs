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
//! `rvsadm --start-daemon` opens its socket here too; the worker only puts it in place.

use super::control::{Answer, Ask, Shared, ask_text, ask_view, ask_worker, list_connections};
use super::housekeeping::ControlPlane;
use crate::admin::{self, Plan, Reply, SyncRequest};
use crate::desired::{Planner, PreparedBase};
use crate::listing;
use crate::syncd::{self, SyncDaemon};
use rvs_config::ipvsadm::{DaemonState, ListOptions};
use rvs_core::director::{ApplyReport, Director, NetConfig, OwnedAddr};
use rvs_core::model::{Config, ConfigError};
use rvs_core::time::Instant;
use std::sync::{Mutex, MutexGuard};

/// What the control threads know of the running configuration.
pub(super) struct Staging {
    /// The base configuration and the health monitor.
    pub(super) planner: Planner,
    /// The director's network view with every configured address owned, as the worker
    /// holds it (rvsadm's new services' addresses are checked against it).
    pub(super) net: NetConfig,
    /// No failover protocol decides ownership: the director owns every address.
    pub(super) all: bool,
}

/// A change ready for the worker to install.
#[derive(Debug)]
pub(super) struct Change {
    prepared: PreparedBase,
    /// Addresses of rvsadm's new services to own.
    own: Vec<OwnedAddr>,
    /// A reload's network view.
    net: Option<NetConfig>,
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

/// Hand `c` to the worker; what it replaced is dropped here.
fn install(shared: &Shared, c: Change) -> Result<ApplyReport, String> {
    match ask_worker(&shared.requests, Ask::Install(Box::new(c)))? {
        Answer::Installed(report, replaced) => {
            drop(replaced);
            Ok(report)
        }
        _ => Err("the data-plane worker answered something else".into()),
    }
}

/// An ipvsadm command line parsed by the control thread (listings other than within `-R`
/// are answered before this): the encoded reply.
pub(super) fn ipvsadm(shared: &Shared, p: admin::Prepared) -> String {
    if let Some(SyncRequest::Start(o)) = p.sync_request() {
        let opened = SyncDaemon::open(o.state, &syncd::setup_of(o));
        return ask_text(
            &shared.requests,
            Ask::SyncStart(Box::new((o.state, opened))),
        )
        .unwrap_or_else(|e| Reply::fail(255, &e).encode());
    }
    if p.sync_request().is_some() {
        // `-L --daemon` and `--stop-daemon`: the worker holds the daemons.
        return ask_text(&shared.requests, Ask::Ipvsadm(Box::new(p)))
            .unwrap_or_else(|e| Reply::fail(255, &e).encode());
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
        // -Z.
        Plan::Engine => ask_text(&shared.requests, Ask::Ipvsadm(Box::new(p)))
            .unwrap_or_else(|e| Reply::fail(255, &e).encode()),
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
        .prepare(&next, None, shared.monitor.now())
        .map_err(|errs| Reply::fail(255, &joined(&errs, "\n")))?;
    install(
        shared,
        Change {
            prepared,
            own: own.clone(),
            net: None,
        },
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
        .prepare(&config, Some(health.clone()), shared.monitor.now())
        .map_err(|errs| format!("{}: {}", path.display(), joined(&errs, "; ")))?;
    let report = install(
        shared,
        Change {
            prepared,
            own: Vec::new(),
            net: Some(net.clone()),
        },
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

impl ControlPlane<'_> {
    /// Install a prepared change (on the worker): the engine swaps it in, the health
    /// monitor looks again, the network view and rvsadm's new addresses follow.
    pub(super) fn install_change(&mut self, d: &mut Director, c: Change, now: Instant) -> Answer {
        let (report, replaced) = self.desired.install_prepared(d, c.prepared);
        // New or edited real servers may have checks to schedule.
        self.monitor.wake();
        self.ensure_probe_path(d);
        if let Some(net) = c.net {
            self.install_net(d, net, now);
        }
        self.own_service_addresses(d, c.own, now);
        Answer::Installed(report, Box::new(replaced))
    }

    /// `rvsadm --start-daemon` with the socket the control thread opened, with ipvsadm's
    /// messages (libipvs `ipvs_strerror()`) and exit status 255.
    pub(super) fn start_sync(
        &mut self,
        d: &mut Director,
        state: DaemonState,
        opened: std::io::Result<SyncDaemon>,
    ) -> Reply {
        if self.sync.configured() {
            return Reply::fail(
                255,
                "the connection sync daemons follow the configuration \
                 (lvs_sync_daemon / syncdaemon): change them there",
            );
        }
        match self.sync.install(d, state, opened) {
            Ok(()) => Reply::ok(String::new()),
            Err(syncd::StartError::Running) => Reply::fail(255, "Daemon has already run"),
            Err(syncd::StartError::Open(e)) => Reply::fail(255, &e.to_string()),
        }
    }
}
