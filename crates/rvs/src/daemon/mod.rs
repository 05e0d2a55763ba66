//! `rvs daemon`: the director on the wire.
//!
//! One data-plane worker owns the engine ([`rvs_core::director::Director`]) and one AF_PACKET
//! socket per interface the configuration names (TPACKET_V3 RX and TX rings, with
//! `PACKET_VNET_HDR` so checksum-partial frames and GSO super-frames pass through unchanged:
//! the kernel completes and segments them on transmit). Both directions of every connection
//! reach this one worker, so its connection table is unshared. The worker blocks in
//! `poll(2)` between batches, never busy-polls.
//!
//! The director's own kernel must stay out of VIP traffic: the VIPs and the NAT router's
//! floating IP are *not* assigned to kernel interfaces (the engine answers ARP/ND for them),
//! and the daemon refuses to start while `ip_forward` is on in its namespace — otherwise the
//! kernel would forward a second copy of every frame the taps see.
//!
//! A Unix control socket answers listing requests (`rvs list ...`) and ipvsadm command
//! lines (`rvsadm ...`, see [`crate::admin`]) on a thread per connection. Listings and
//! metrics are formatted there from a [`crate::snapshot::DirectorView`] the worker copies
//! out between batches (numbers only); health and failover listings never reach the worker.
//! Between batches the worker only installs changes the control threads prepared (touching
//! just the services that differ, `changes`), copies the connection table in bounded pieces
//! for `-L -c` (`conn_export`), zeroes counters a chunk at a time (`zeroing`) and puts sync
//! daemons' sockets in place or takes them out (`sync_control`).
//!
//! The modules, one job each:
//! - `startup`: what [`run`] needs before forwarding (interfaces, routes, rings, checks);
//! - `worker`: the forwarding loop;
//! - `housekeeping`: what the worker does between batches (roles, health changes, probes);
//! - `control`: the control socket, its request parsing and the answers;
//! - `reload`: re-reading the configuration file;
//! - `metrics_server`: the Prometheus endpoint.

mod changes;
mod conn_export;
mod console_ops;
mod control;
mod housekeeping;
mod install_stats;
mod metrics_server;
mod priority;
mod published;
mod reload;
mod startup;
mod sync_control;
mod worker;
mod workers;
mod zeroing;

pub use control::{control_request, read_request_line, request_listing};

use crate::desired::Desired;
use crate::failover::Failover;
use crate::health::MonitorThread;
use crate::load::{self, Plan};
use crate::syncd::SyncDaemons;
use control::{Request, Shared, start_control};
use housekeeping::{ControlPlane, Ownership};
use metrics_server::start_metrics;
use reload::Reloader;
use rvs_config::failover::FailoverConfig;
use rvs_core::director::{Director, DirectorSettings};
use rvs_core::health::{Health, HealthConfig};
use rvs_core::time::Instant;
use rvs_sys::packet::PacketSocket;
use startup::{
    net_config, open_syn_ring, probe_sources, random_seed, socket_config, virtual_macs, with_vmacs,
};
use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use worker::{Pacing, worker};

/// Options of `rvs daemon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The configuration file.
    pub config_path: PathBuf,
    /// Its format (detected when None).
    pub format: Option<load::Format>,
    /// keepalived's configuration id (`--config-id`; None: the host's short name), which
    /// selects keepalived.conf's `@ID` lines, at start and on reload.
    pub config_id: Option<String>,
    /// Where to write the PID, if anywhere.
    pub pid_file: Option<PathBuf>,
    /// The control socket.
    pub control: PathBuf,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`), if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// `--strict`: a file with warnings is refused, at start and on reload.
    pub strict: bool,
    /// `--gc-thresh3`: the neighbour-table bound per family, over the file's
    /// `[neighbors] gc_thresh3` (None: the file's, else 1024).
    pub gc_thresh3: Option<usize>,
    /// `--conn-table-memory`, `--sysctl`: laid over the file's values, at start and on
    /// reload.
    pub tuning: crate::tuning::Tuning,
    /// `--rt-priority N`: the data-plane thread's `SCHED_FIFO` priority (1..=99), or 0
    /// for ordinary scheduling. Default [`DEFAULT_RT_PRIORITY`].
    pub rt_priority: u8,
    /// `--user NAME`: run as this user, keeping the capabilities it needs
    /// ([`crate::privileges`]).
    pub user: Option<String>,
    /// `--script-timeout`: the limit of notify, hook and checker scripts
    /// ([`crate::scripts::notify_limit`]).
    pub script_timeout: std::time::Duration,
    /// `--cpu N`: the data-plane thread bound to CPU N ([`crate::cpu`]).
    pub cpu: Option<usize>,
    /// `--busy-poll USECS`: how long the data plane keeps polling its rings after
    /// traffic before it sleeps (zero: not at all).
    pub busy_poll: std::time::Duration,
    /// `--fast-path`: the XDP fast path ([`crate::fastpath`]), off by default.
    pub fast_path: crate::fastpath::Mode,
    /// `--control-group NAME`: the control socket group NAME's too, mode 0660
    /// (`console_ops::share_socket`).
    pub control_group: Option<String>,
    /// `--workers N`: forwarding workers, each with its own engine and sockets
    /// (`workers`; docs/workers.md).
    pub workers: usize,
}

/// The data plane's default real-time priority: the lowest, above every ordinary process
/// (as the kernel's forwarding in softirq is) and below every other real-time thread.
pub const DEFAULT_RT_PRIORITY: u8 = 1;

/// The control socket used when none is given (see [`crate::locate`]).
pub fn default_control_path(config: &Path) -> PathBuf {
    crate::locate::default_control_path(config)
}

/// Run the director until SIGTERM / SIGINT, with `health` monitoring its real servers and
/// `failover` deciding when it owns its addresses.
pub fn run(
    mut plan: Plan,
    health: HealthConfig,
    failover: FailoverConfig,
    opts: &Options,
) -> io::Result<()> {
    crate::kernel::check_forwarding(&plan.interfaces)?;
    workers::refuse(opts.workers, opts, &plan.config, &failover, &health)?;
    // Loading a BPF program needs privileges the daemon drops next.
    let fast = crate::fastpath::start(opts.fast_path, &plan.interfaces);
    // Before any thread exists: capabilities are per thread.
    crate::privileges::at_start(&failover, &health, opts)?;
    let _forwarding = crate::kernel::ForwardingWatch::start(&plan.interfaces)?;
    if plan.interfaces.is_empty() || plan.interfaces.len() > rvs_sys::poll::MAX_WAIT_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the configuration puts the director on {} interfaces; rvs attaches to 1..={}",
                plan.interfaces.len(),
                rvs_sys::poll::MAX_WAIT_FDS
            ),
        ));
    }
    // Active-active: the VIPs are announced by routing, not owned ([`crate::announce`]).
    crate::announce::strip_owned(&mut plan, &failover);
    let cluster = failover.cluster.clone();
    let net = net_config(&plan)?;
    let settings = DirectorSettings {
        seed: random_seed()?,
        offload_partial_csum: true,
        // Room for a few tunnelled GSO super-frames cut into segments per round.
        park_slots: 1024,
        neigh_gc_thresh3: opts.gc_thresh3.unwrap_or(0),
        // No housekeeping round walks every service ([`published`]).
        ..published::settings()
    };
    // One clock for the data plane and the health monitor.
    let clock = std::time::Instant::now();
    let health_spec = health;
    let health = Health::new(
        health_spec.clone(),
        &plan.config,
        random_seed()?,
        Instant(clock.elapsed().as_nanos() as u64),
    );
    let health = Arc::new(Mutex::new(health));
    let mut desired = Desired::with_health(
        plan.config.clone(),
        Arc::clone(&health),
        health_spec.clone(),
    );
    // With failover, the director starts owning nothing: the protocol decides.
    let owned_addrs: Vec<IpAddr> = plan.owned.iter().map(|(a, _)| *a).collect();
    let sync = SyncDaemons::new_sized(failover.sync.clone(), opts.tuning.sync_sock_size())
        .map_err(|e| {
            let iface = failover.sync.as_ref().map_or("", |s| s.interface.as_str());
            io::Error::new(e.kind(), format!("connection sync on {iface}: {e}"))
        })?;
    let vmacs = virtual_macs(&failover);
    let net = with_vmacs(net, &vmacs);
    let failover = Failover::start(&failover, &owned_addrs, clock)?;
    let ownership = Ownership {
        all: failover.is_none(),
        owning: HashSet::new(),
    };
    let full_net = net.clone();
    let net = ownership.filter(net);
    let engine = || {
        Director::new(net.clone(), &desired.effective(), settings.clone()).map_err(|errs| {
            let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            io::Error::new(io::ErrorKind::InvalidInput, msgs.join("; "))
        })
    };
    let mut director = engine()?;
    let mut sync = sync;
    sync.follow(&mut director, false, ownership.all);
    let mut sockets = Vec::new();
    for name in &plan.interfaces {
        sockets.push(PacketSocket::open(name, &socket_config())?);
    }
    // A second, SYN-only ring per interface while the poll set has room for it.
    let room = rvs_sys::poll::MAX_WAIT_FDS.saturating_sub(3 + sockets.len());
    // Several workers: the interface's fanout group steers by connection instead.
    let room = if opts.workers > 1 { 0 } else { room };
    let mut syn_sockets = Vec::new();
    for s in sockets.iter().take(room) {
        syn_sockets.push(open_syn_ring(s)?);
    }
    // Frames to a virtual MAC must reach the socket without promiscuous mode.
    for o in &full_net.owned {
        if let (Some(mac), Some(sock)) = (o.mac, sockets.get(usize::from(o.port.0))) {
            sock.add_unicast_mac(mac)?;
        }
    }
    let peers = workers::Peers::start(
        opts.workers,
        &sockets,
        &desired.effective(),
        engine,
        (opts.rt_priority, clock),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    // Active-active: a signal withdraws the VIPs first; the announcer stops the worker.
    let term = crate::announce::term_flag(cluster.as_ref(), &stop);
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    let health_arc = Arc::clone(&health);
    let monitor = MonitorThread::start(health, clock)?;
    monitor.monitor().set_probe_sources(probe_sources(&plan));
    let (failover, roles) = match failover {
        Some((f, r)) => (Some(f), Some(r)),
        None => (None, None),
    };
    let reloader = Reloader {
        path: opts.config_path.clone(),
        format: opts.format,
        config_id: opts.config_id.clone(),
        interfaces: plan.interfaces.clone(),
        strict: opts.strict,
        tuning: opts.tuning.clone(),
        script_timeout: opts.script_timeout,
        active_active: cluster.is_some(),
    };
    let (tx, rx) = mpsc::channel::<Request>();
    let mut shared = Shared {
        requests: tx,
        monitor: Arc::clone(monitor.monitor()),
        failover: roles.as_ref().map(|r| r.published()),
        reloader: Arc::new(reloader),
        hup,
        metrics: Arc::default(),
        staging: Arc::new(Mutex::new(changes::Staging {
            planner: crate::desired::Planner::new(
                plan.config.clone(),
                Arc::clone(&health_arc),
                health_spec.clone(),
            ),
            net: full_net.clone(),
            all: ownership.all,
            running: crate::desired::Running::of(&director),
        })),
        announce: None,
        sync: sync.published(),
    };
    let announcer = announcer(cluster, &shared, (&term, &stop))?;
    shared.announce = announcer.as_ref().map(|a| Arc::clone(&a.announcer));
    if let Some(addr) = opts.metrics {
        start_metrics(addr, shared.clone())?;
    }
    let _refresher = changes::start_refresher(shared.clone(), Arc::clone(&stop))?;
    let _control = start_control(&opts.control, shared, Arc::clone(&stop))?;
    console_ops::share_socket(&opts.control, opts.control_group.as_deref())?;
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    tracing::info!(
        services = plan.config.services.len(),
        interfaces = %plan.interfaces.join(","),
        control = %opts.control.display(),
        config = %opts.config_path.display(),
        metrics = %opts.metrics.map_or_else(|| "off".to_string(), |a| format!("http://{a}/metrics")),
        "director started"
    );
    // Under systemd's Type=notify (dist/systemd/rvs.service) `systemctl start` returns once
    // the director forwards; without $NOTIFY_SOCKET this does nothing.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell the service manager the director is ready");
    }
    let mut cp = ControlPlane {
        desired: &mut desired,
        monitor: monitor.monitor(),
        probe: None,
        roles,
        ownership,
        net: full_net,
        vmacs,
        defend_at: None,
        defended: None,
        announced: None,
        sync,
        rings: plan
            .interfaces
            .iter()
            .map(|n| (n.clone(), 0, 0))
            .chain(
                syn_sockets
                    .iter()
                    .flatten()
                    .map(|s| (format!("{}:syn", s.ifname()), 0, 0)),
            )
            .collect(),
        rings_read: Instant(0),
        view: None,
        spare_view: None,
        provisioner: crate::provision::Provisioner::start()?,
        fast,
        exports: conn_export::Exports::default(),
        zeroing: zeroing::Zeroing::default(),
        peers,
    };
    cp.ensure_probe_path(&director);
    // This thread becomes the data plane: bound to its CPU first (`--cpu`).
    let result = crate::cpu::pin_worker(opts.cpu).and_then(|()| {
        worker(
            &mut director,
            (&mut sockets, &mut syn_sockets),
            &stop,
            &rx,
            &mut cp,
            clock,
            Pacing {
                rt_priority: opts.rt_priority,
                busy_poll: opts.busy_poll,
            },
        )
    });
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if let Some(f) = failover {
        f.stop();
    }
    if let Some(a) = announcer {
        stop.store(true, std::sync::atomic::Ordering::Release);
        a.join();
    }
    monitor.stop();
    crate::scripts::drain(crate::scripts::notify_limit());
    let _ = std::fs::remove_file(&opts.control);
    if let Some(p) = &opts.pid_file {
        let _ = std::fs::remove_file(p);
    }
    let c = director.counters();
    tracing::info!(
        frames_in = c.rx,
        frames_out = c.tx,
        connections = c.conns_created,
        dropped = director.drops().total(),
        neigh_unsolicited_ignored = director.neighbors().counters().unsolicited_ignored,
        neigh_spoof_refused = director.neighbors().counters().spoof_refused,
        neigh_evicted = director.neighbors().counters().evicted,
        neigh_table_full = director.neighbors().counters().table_full,
        "director stopped"
    );
    result
}

/// Active-active: start the VIP announcer ([`crate::announce`]), which follows the running
/// configuration's services (reloads, rvsadm edits) and the health monitor's quorums.
fn announcer(
    cluster: Option<rvs_config::ClusterSetup>,
    shared: &Shared,
    (term, stop): (&Arc<AtomicBool>, &Arc<AtomicBool>),
) -> io::Result<Option<crate::announce::AnnouncerThread>> {
    let Some(c) = cluster else {
        return Ok(None);
    };
    let staging = Arc::clone(&shared.staging);
    let services = move || {
        let s = staging.lock().unwrap_or_else(|e| e.into_inner());
        s.planner.base().services.iter().map(|v| v.key).collect()
    };
    crate::announce::AnnouncerThread::start(
        c,
        Arc::clone(&shared.monitor),
        Box::new(services),
        Arc::clone(term),
        Arc::clone(stop),
    )
    .map(Some)
}
