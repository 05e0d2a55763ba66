//! The health monitor: the daemon's half of [`rvs_core::health`].
//!
//! One thread runs a single-threaded tokio runtime. It asks the engine ([`Health`]) which
//! checks are due, runs each as a task ([`rvs_check::run`]), reports the outcomes back, runs
//! the notify and quorum scripts the engine asks for, and logs every transition. When the
//! engine's view of the effective configuration changes, it raises a flag the data-plane
//! worker polls between batches ([`Monitor::take_changed`]); the worker then installs the new
//! effective configuration ([`crate::desired::Desired::refresh`]). The data plane never
//! waits for a check.
//!
//! Checks of DR and TUN services with `via_vip` go to the VIP through the forwarding path:
//! their sockets carry [`PROBE_MARK`], a policy-routing rule sends marked packets into the
//! daemon's probe TUN device, and the worker forwards them to the real server the source port
//! names ([`Probes`]).
//!
//! Scripts (`notify_up`, `notify_down`, `quorum_up`, `quorum_down`) run through
//! [`crate::scripts`] as keepalived runs them, without waiting: a script that hangs delays
//! nothing but itself (it is killed after [`crate::scripts::notify_limit`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rvs_core::health::{
    CheckId, Event, Health, LoadJob, LoadReport, Outcome, ServerId, ServerStatus,
};
use rvs_core::model::ServiceKey;
use rvs_core::time::Instant;

use crate::desired::lock;

/// How long a load agent has to answer.
const LOAD_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest the monitor sleeps without looking at the stop flag.
const TICK: Duration = Duration::from_millis(200);
/// SO_MARK of checks that travel the forwarding path (`via_vip`).
pub const PROBE_MARK: u32 = 0x7276_7301;
/// Source ports of `via_vip` checks: the worker maps them to real servers.
pub const PROBE_PORTS: std::ops::Range<u16> = 40_000..60_000;

/// How late checks start: the lag from when a round was due to when it started.
#[derive(Debug, Default)]
pub struct CheckLag {
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl CheckLag {
    fn record(&self, lag: Duration) {
        let us = lag.as_micros().min(u128::from(u64::MAX)) as u64;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Rounds started, total lag, largest lag.
    pub fn read(&self) -> (u64, Duration, Duration) {
        (
            self.count.load(Ordering::Relaxed),
            Duration::from_micros(self.sum_us.load(Ordering::Relaxed)),
            Duration::from_micros(self.max_us.load(Ordering::Relaxed)),
        )
    }
}

/// Source ports of in-flight `via_vip` checks and the real server each is for.
#[derive(Debug, Default)]
pub struct Probes {
    next: u16,
    by_port: HashMap<u16, (ServiceKey, IpAddr, u16)>,
}

impl Probes {
    /// Reserve a source port for a check of `rs` in `service`.
    fn reserve(&mut self, service: ServiceKey, rs: (IpAddr, u16)) -> Option<u16> {
        let span = PROBE_PORTS.end - PROBE_PORTS.start;
        for _ in 0..span {
            let port = PROBE_PORTS.start + self.next % span;
            self.next = self.next.wrapping_add(1) % span;
            if let std::collections::hash_map::Entry::Vacant(e) = self.by_port.entry(port) {
                e.insert((service, rs.0, rs.1));
                return Some(port);
            }
        }
        None
    }

    fn release(&mut self, port: u16) {
        self.by_port.remove(&port);
    }

    /// The real server a probe from source port `port` is for.
    pub fn lookup(&self, port: u16) -> Option<&(ServiceKey, IpAddr, u16)> {
        self.by_port.get(&port)
    }
}

/// What the worker and the control socket share with the monitor thread.
pub struct Monitor {
    /// The engine, shared with the worker (which computes the overlay and answers listings).
    pub health: Arc<Mutex<Health>>,
    /// Check start lag.
    pub lag: CheckLag,
    /// `via_vip` probes in flight.
    pub probes: Mutex<Probes>,
    /// The director's own address per VIP family for `via_vip` checks (their source).
    probe_sources: Mutex<Vec<IpAddr>>,
    changed: AtomicBool,
    stop: AtomicBool,
    wake: tokio::sync::Notify,
    clock: std::time::Instant,
    checks_ok: AtomicU64,
    checks_failed: AtomicU64,
}

impl Monitor {
    /// The engine's clock (shared with the data-plane worker).
    pub fn now(&self) -> Instant {
        Instant(self.clock.elapsed().as_nanos() as u64)
    }

    /// Whether the effective configuration changed since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// Look at the engine again now (after a reconfiguration).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Checks that passed and failed since start.
    pub fn check_counts(&self) -> (u64, u64) {
        (
            self.checks_ok.load(Ordering::Relaxed),
            self.checks_failed.load(Ordering::Relaxed),
        )
    }

    /// Set the source addresses `via_vip` checks use (one per family; the director's own
    /// address on the real servers' link).
    pub fn set_probe_sources(&self, sources: Vec<IpAddr>) {
        *self.probe_sources.lock().unwrap_or_else(|e| e.into_inner()) = sources;
    }

    fn probe_source(&self, family_of: IpAddr) -> Option<IpAddr> {
        self.probe_sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == family_of.is_ipv4())
    }
}

/// The running monitor thread.
pub struct MonitorThread {
    monitor: Arc<Monitor>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MonitorThread {
    /// Start the monitor for `health`, on the clock whose epoch is `clock`.
    pub fn start(health: Arc<Mutex<Health>>, clock: std::time::Instant) -> io::Result<Self> {
        let monitor = Arc::new(Monitor {
            health,
            lag: CheckLag::default(),
            probes: Mutex::new(Probes::default()),
            probe_sources: Mutex::new(Vec::new()),
            changed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            clock,
            checks_ok: AtomicU64::new(0),
            checks_failed: AtomicU64::new(0),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let m = Arc::clone(&monitor);
        let thread = std::thread::Builder::new()
            .name("rvs-health".into())
            .spawn(move || rt.block_on(run(m)))?;
        Ok(MonitorThread {
            monitor,
            thread: Some(thread),
        })
    }

    /// The shared state.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// Stop: omega's scripts run (bounded by [`crate::scripts::notify_limit`]), then the
    /// thread ends.
    pub fn stop(mut self) {
        self.monitor.stop.store(true, Ordering::Release);
        self.monitor.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A finished check or load query.
enum Done {
    Check(CheckId, Outcome, Option<u16>),
    Load(ServerId, Option<LoadReport>),
}

async fn run(m: Arc<Monitor>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let mut last_generation = lock(&m.health).generation();
    let mut pending: Vec<Done> = Vec::new();
    loop {
        let now = m.now();
        let mut scripts = Vec::new();
        let next = {
            let mut h = lock(&m.health);
            while let Ok(d) = rx.try_recv() {
                pending.push(d);
            }
            for d in pending.drain(..) {
                match d {
                    Done::Check(id, outcome, probe_port) => {
                        if let Some(p) = probe_port {
                            m.probes
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .release(p);
                        }
                        let counter = if matches!(outcome, Outcome::Down(_)) {
                            &m.checks_failed
                        } else {
                            &m.checks_ok
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        h.report(now, id, outcome);
                    }
                    Done::Load(server, load) => h.report_load(now, server, load),
                }
            }
            h.handle_timeout(now);
            while let Some(job) = h.poll_check(now) {
                if job.attempt == 0 {
                    m.lag.record(now.saturating_since(job.due));
                }
                let mut target = rvs_check::Target::resolve(&job.check.target, job.addr, job.port);
                let mut probe_port = None;
                if job.check.target.via_vip {
                    match probe_target(&m, &job) {
                        Ok((t, port)) => {
                            target = t;
                            probe_port = Some(port);
                        }
                        Err(why) => {
                            let _ = tx.send(Done::Check(job.id, Outcome::Down(why), None));
                            continue;
                        }
                    }
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    let outcome = rvs_check::run(&job.check, &target).await;
                    let _ = tx.send(Done::Check(job.id, outcome, probe_port));
                });
            }
            while let Some(job) = h.poll_load(now) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let load = query_load(&job).await;
                    let _ = tx.send(Done::Load(job.server, load));
                });
            }
            while let Some(ev) = h.poll_event() {
                scripts.extend(log_event(&ev));
            }
            let g = h.generation();
            if g != last_generation {
                last_generation = g;
                m.changed.store(true, Ordering::Release);
            }
            h.poll_timeout()
        };
        for s in scripts {
            tokio::spawn(crate::scripts::run(s));
        }
        if m.stop.load(Ordering::Acquire) {
            let events = lock(&m.health).shutdown();
            let mut waits = Vec::new();
            for ev in &events {
                if let Some(s) = log_event(ev) {
                    waits.push(tokio::spawn(crate::scripts::run(s)));
                }
            }
            for w in waits {
                let _ = w.await;
            }
            return;
        }
        let now = m.now();
        let wait = next
            .map(|at| at.saturating_since(now))
            .unwrap_or(TICK)
            .min(TICK);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(d) = rx.recv() => pending.push(d),
            _ = m.wake.notified() => {}
        }
    }
}

/// The target of a `via_vip` check: the VIP:port, from the director's own address and a
/// reserved source port, with the probe mark.
fn probe_target(
    m: &Monitor,
    job: &rvs_core::health::CheckJob,
) -> Result<(rvs_check::Target, u16), String> {
    let Some((vip, vport)) = job.vip else {
        return Err("via_vip: the service has no VIP (fwmark service)".into());
    };
    let Some(src) = m.probe_source(vip) else {
        return Err("via_vip: no director address of the VIP's family to check from".into());
    };
    let port = m
        .probes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .reserve(job.service, (job.addr, job.port))
        .ok_or_else(|| "via_vip: no free probe source port".to_string())?;
    let vport = job.check.target.connect_port.unwrap_or(vport);
    Ok((
        rvs_check::Target {
            addr: vip,
            port: vport,
            bind: Some(SocketAddr::new(src, port)),
            fwmark: Some(PROBE_MARK),
        },
        port,
    ))
}

/// Ask a real server's load agent for its load average.
async fn query_load(job: &LoadJob) -> Option<LoadReport> {
    let (addr, port) = job.agent;
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
    sock.connect((addr, port)).await.ok()?;
    sock.send(crate::loadagent::REQUEST).await.ok()?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(LOAD_TIMEOUT, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    crate::loadagent::parse_reply(&buf[..n])
}

fn service_name(s: &ServiceKey) -> String {
    crate::metrics::service_label(s)
}

/// Log an engine event; return the script it asks for, if any.
fn log_event(ev: &Event) -> Option<crate::scripts::Job> {
    match ev {
        Event::ServerUp {
            service,
            addr,
            port,
            notify,
        } => {
            tracing::info!(service = %service_name(service), server = %sock(*addr, *port), "real server up");
            notify.as_ref().map(|c| job("notify_up", c))
        }
        Event::ServerDown {
            service,
            addr,
            port,
            reason,
            notify,
        } => {
            tracing::warn!(service = %service_name(service), server = %sock(*addr, *port), reason = %reason, "real server down");
            notify.as_ref().map(|c| job("notify_down", c))
        }
        Event::QuorumUp { service, command } => {
            tracing::info!(service = %service_name(service), "quorum gained");
            command.as_ref().map(|c| job("quorum_up", c))
        }
        Event::QuorumDown { service, command } => {
            tracing::warn!(service = %service_name(service), "quorum lost");
            command.as_ref().map(|c| job("quorum_down", c))
        }
        Event::SorryServerIn {
            service,
            addr,
            port,
        } => {
            tracing::warn!(service = %service_name(service), server = %sock(*addr, *port), "sorry server in");
            None
        }
        Event::SorryServerOut {
            service,
            addr,
            port,
        } => {
            tracing::info!(service = %service_name(service), server = %sock(*addr, *port), "sorry server out");
            None
        }
        Event::WeightChanged {
            service,
            addr,
            port,
            weight,
            why,
        } => {
            tracing::info!(service = %service_name(service), server = %sock(*addr, *port), weight, why = ?why, "weight changed");
            None
        }
    }
}

/// A checker's script, run as keepalived runs it: as its own user when it names one, else
/// as the default script user.
fn job(what: &'static str, n: &rvs_core::health::Notify) -> crate::scripts::Job {
    crate::scripts::Job::keepalived(what, &crate::scripts::notify_script(n), &[])
}

fn sock(addr: IpAddr, port: u16) -> String {
    rvs_core::model::sock(addr, port)
}

/// `rvs list --health`: one line per monitored real server.
pub fn render_status(servers: &[ServerStatus]) -> String {
    let mut out = String::from(
        "Prot LocalAddress:Port            Server                         State Weight Conf   Ok/Failed       Last failure\n",
    );
    for s in servers {
        out.push_str(&format!(
            "{:<33} {:<30} {:<5} {:<6} {:<6} {:<15} {}\n",
            crate::listing::service_name(&s.service),
            sock(s.addr, s.port),
            if s.up { "up" } else { "down" },
            s.weight,
            s.configured_weight,
            format!("{}/{}", s.successes, s.failures),
            s.last_reason.as_deref().unwrap_or("-"),
        ));
    }
    out
}
