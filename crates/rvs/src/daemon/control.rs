//! The control socket: one request per connection, parsed and answered here on a thread
//! per connection (at most [`MAX_CLIENTS`] at once), and the metrics text.
//!
//! What the worker still does for a request is small: copy the engine's numbers into a
//! [`WorkerView`] (listings and metrics are formatted here from it), copy the connection
//! table in bounded pieces for `list -c` / `rvsadm -L -c` ([`super::conn_export`]), swap in
//! a reload or an ipvsadm edit prepared here ([`super::changes`]), zero counters, and put a
//! sync daemon's socket in place or take it away. Health and failover listings never reach
//! it.

use super::housekeeping::ControlPlane;
use super::reload::Reloader;
use crate::admin::{self, Reply};
use crate::desired::lock;
use crate::failover_status;
use crate::health::Monitor;
use crate::listing::{self, Format};
use crate::metrics;
use crate::snapshot::DirectorView;
use crate::syncd::SyncCounts;
use rvs_core::director::Director;
use rvs_core::time::Instant;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// What the control socket or the metrics endpoint asks of the worker.
#[derive(Debug)]
pub(super) enum Ask {
    /// A listing.
    List { format: Format, exact: bool },
    /// Reload the configuration file (read and checked by the control thread).
    Reload,
    /// Install a change prepared by a control thread (a reload, an rvsadm edit; see
    /// [`super::changes`]).
    Install(Box<super::changes::Change>),
    /// `rvsadm --start-daemon`: put in place the daemon the control thread opened
    /// ([`super::sync_control`]).
    SyncPut(
        rvs_config::ipvsadm::DaemonState,
        Box<crate::syncd::SyncDaemon>,
    ),
    /// `rvsadm --stop-daemon`: take the daemon out, for the control thread to close.
    SyncTake(rvs_config::ipvsadm::DaemonState),
    /// `rvsadm -Z`: zero one service, or start zeroing all ([`super::zeroing`]); done is
    /// sent when the last is zeroed.
    Zero(
        Option<rvs_core::model::ServiceKey>,
        std::sync::mpsc::SyncSender<()>,
    ),
    /// The Prometheus metrics text.
    Metrics,
    /// A [`WorkerView`] of the engine, for a listing or metrics formatted by the asker.
    View,
    /// The health monitor's view of each monitored real server (`list --health`).
    Health,
    /// The failover thread's view (`list --failover`).
    Failover,
    /// Copy the connection tables in pieces to this channel (`-L -c`, see
    /// [`super::conn_export`]); answered at once, the pieces follow.
    ExportConns(std::sync::mpsc::SyncSender<Vec<listing::ConnRow>>),
    /// An ipvsadm command line, parsed by the control thread (see [`crate::admin`]); the
    /// answer is the encoded [`crate::admin::Reply`].
    Ipvsadm(Box<admin::Prepared>),
    /// The web console's work on the engine (`flush`, see [`super::console_ops`]).
    Engine(super::console_ops::EngineJob),
}

/// A request from a control thread, answered by the worker between batches.
pub(super) struct Request {
    pub(super) ask: Ask,
    /// The answer, or an error message.
    pub(super) reply: mpsc::Sender<Result<Answer, String>>,
}

/// The worker's answer to a [`Request`].
pub(super) enum Answer {
    /// The text to send back.
    Text(String),
    /// The engine's numbers ([`Ask::View`]).
    View(Arc<WorkerView>),
    /// A change installed ([`Ask::Install`]): what the engine reported, its generation
    /// now, and what it replaced (freed by the control thread).
    Installed(
        rvs_core::director::ApplyReport,
        u64,
        Box<crate::desired::Replaced>,
    ),
    /// [`Ask::SyncPut`]: in place, or refused with the daemon handed back.
    SyncPut(Result<(), (crate::syncd::StartError, Box<crate::syncd::SyncDaemon>)>),
    /// [`Ask::SyncTake`]: the daemon taken out, if one ran.
    SyncTaken(Option<Box<crate::syncd::SyncDaemon>>),
    /// [`Ask::Zero`]: false when the service is not running.
    Zeroed(bool),
}

/// What the worker copies out for listings and metrics: the engine's view, and its own
/// sync and RX-ring counters.
pub(super) struct WorkerView {
    pub(super) engine: DirectorView,
    pub(super) sync: SyncCounts,
    /// Per RX ring: interface, frames seen, frames dropped.
    pub(super) rings: Vec<(String, u64, u64)>,
}

/// What the control threads share: the way to the worker, and what they read directly
/// (the health monitor, the failover thread's published status).
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) requests: mpsc::Sender<Request>,
    pub(super) monitor: Arc<Monitor>,
    pub(super) failover: Option<failover_status::Published>,
    /// The file to reload and how.
    pub(super) reloader: Arc<Reloader>,
    /// Set by SIGHUP.
    pub(super) hup: Arc<AtomicBool>,
    /// Metrics renders, one at a time.
    pub(super) metrics: Arc<MetricsRenders>,
    /// The running configuration as the control threads prepare changes to it.
    pub(super) staging: Arc<std::sync::Mutex<super::changes::Staging>>,
    /// Active-active: the VIP announcer ([`crate::announce`]).
    pub(super) announce: Option<Arc<crate::announce::Announcer>>,
    /// The sync daemons' `-L --daemon` lines ([`super::sync_control`]).
    pub(super) sync: crate::syncd::Published,
}

/// Control connections served at once; more wait in the listen backlog.
pub(super) const MAX_CLIENTS: usize = 16;

/// The control socket: one request line per connection (`list [--stats|--rate|...]`),
/// answered with the listing text. Root-only permissions.
pub(super) fn start_control(
    path: &Path,
    shared: Shared,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "control socket {} is in use by a running daemon",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("rvs-ctl-accept".into())
        .spawn(move || {
            // The connection threads this one starts inherit it.
            super::priority::lower("control socket");
            while !stop.load(Ordering::Relaxed) {
                if shared.hup.swap(false, Ordering::Relaxed) {
                    // SIGHUP: the outcome goes to the log only.
                    let _ = reload(&shared, "SIGHUP");
                }
                if busy.load(Ordering::Acquire) >= MAX_CLIENTS {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        busy.fetch_add(1, Ordering::AcqRel);
                        let (shared, done) = (shared.clone(), Arc::clone(&busy));
                        let spawned = std::thread::Builder::new()
                            .name("rvs-control".into())
                            .spawn(move || {
                                let _ = serve(stream, &shared);
                                done.fetch_sub(1, Ordering::AcqRel);
                            });
                        if spawned.is_err() {
                            busy.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
}

/// One control request per connection: `list [options]`, `reload`, `metrics`, or an
/// ipvsadm command line (`ipvsadm ARGC STDIN_LEN` and its length-prefixed arguments, see
/// [`crate::admin`]); the answer is the text (for ipvsadm: exit status, stdout and
/// stderr), or a line starting `error: `.
pub(super) fn serve(stream: UnixStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    reader.read_line(&mut line)?;
    let mut w = &stream;
    if let Some(text) = crate::announce::control_line(&line, shared.announce.as_deref()) {
        return w.write_all(text.as_bytes());
    }
    let ask = if line.starts_with("ipvsadm ") {
        let (args, stdin) = match admin::read_request(&line, &mut reader) {
            Ok(r) => r,
            Err(e) => return writeln!(w, "error: {e}"),
        };
        match admin::prepare(&args, &stdin) {
            Ok(p) => Ask::Ipvsadm(Box::new(p)),
            // Usage errors and bad rules need no worker.
            Err(reply) => return w.write_all(reply.encode().as_bytes()),
        }
    } else if let Some(r) = super::console_ops::answer(&line, shared) {
        return match r {
            Ok(text) => w.write_all(text.as_bytes()),
            Err(e) => writeln!(w, "error: {e}"),
        };
    } else {
        match parse_request(&line) {
            Ok(a) => a,
            Err(e) => return writeln!(w, "error: {e}"),
        }
    };
    match answer(shared, ask) {
        Ok(text) => w.write_all(text.as_bytes()),
        Err(e) => writeln!(w, "error: {e}"),
    }
}

/// Answer `ask`: here from what is shared, or from a view of the engine, or (connection
/// listings, edits, reloads) by the worker.
fn answer(shared: &Shared, ask: Ask) -> Result<String, String> {
    match ask {
        Ask::Metrics => render_metrics(shared).map(|t| String::from_utf8_lossy(&t).into_owned()),
        Ask::Health => {
            let servers: Vec<_> = lock(&shared.monitor.health).servers().collect();
            Ok(crate::health::render_status(&servers))
        }
        Ask::Failover => Ok(failover_status::render(
            shared.failover.as_ref().map(|p| p.get()).as_ref(),
        )),
        Ask::List {
            format: Format::Connections,
            exact,
        } => list_connections(shared, &listing::list_options(Format::Connections, exact).1),
        Ask::List { format, exact } => {
            let v = ask_view(&shared.requests)?;
            Ok(listing::render_view(&v.engine, format, exact).unwrap_or_default())
        }
        Ask::Ipvsadm(p) if p.list_options().is_some_and(listing::needs_engine) => {
            let opts = p.list_options().expect("a listing");
            Ok(match list_connections(shared, &opts.format) {
                Ok(text) => Reply::ok(text),
                Err(e) => Reply::fail(1, &e),
            }
            .encode())
        }
        Ask::Ipvsadm(p) if p.list_options().is_some() => {
            let v = ask_view(&shared.requests)?;
            let opts = p.list_options().expect("a listing");
            Ok(match listing::list_view(&v.engine, opts) {
                Ok(text) => Reply::ok(text),
                Err(e) => Reply::fail(1, &e),
            }
            .encode())
        }
        Ask::Reload => reload(shared, "control socket"),
        Ask::Ipvsadm(p) => Ok(super::changes::ipvsadm(shared, *p)),
        ask => ask_text(&shared.requests, ask),
    }
}

/// `-L -c`: the worker copies the tables in bounded pieces, formatted here.
pub(super) fn list_connections(
    shared: &Shared,
    f: &rvs_config::ipvsadm::ListFormat,
) -> Result<String, String> {
    let (tx, rx) = super::conn_export::channel();
    ask_text(&shared.requests, Ask::ExportConns(tx))?;
    super::conn_export::render(&rx, f, Duration::from_secs(5))
}

/// Reload the file: read and checked here, installed by the worker; the outcome logged.
fn reload(shared: &Shared, by: &str) -> Result<String, String> {
    let r = super::changes::reload(shared);
    match &r {
        Ok(msg) => tracing::info!(by, "{msg}"),
        Err(e) => tracing::warn!(by, "reload refused, the running configuration stays: {e}"),
    }
    r
}

/// The Prometheus text, one render at a time: askers who arrive while a render runs wait
/// for it and share the next finished text (a render of 10,000 services is ~16 MB and
/// takes a noticeable fraction of a second; concurrent scrapes must not multiply that).
/// An asker that did not wait gets a fresh render.
pub(super) fn render_metrics(shared: &Shared) -> Result<axum::body::Bytes, String> {
    let seen = shared.metrics.done.load(Ordering::Acquire);
    let mut last = shared
        .metrics
        .last
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((n, text)) = &*last
        && *n > seen
    {
        return Ok(text.clone());
    }
    let text = axum::body::Bytes::from(render_now(shared)?);
    let n = shared.metrics.done.fetch_add(1, Ordering::AcqRel) + 1;
    *last = Some((n, text.clone()));
    Ok(text)
}

/// The last metrics render, shared by the askers that waited for it.
#[derive(Default)]
pub(super) struct MetricsRenders {
    /// Renders finished.
    done: std::sync::atomic::AtomicU64,
    /// The latest: its number and text (held while rendering).
    last: std::sync::Mutex<Option<(u64, axum::body::Bytes)>>,
    /// Label texts kept between renders (locked only under `last`).
    labels: std::sync::Mutex<metrics::LabelCache>,
    /// How long the previous render took, in nanoseconds (`rvs_metrics_render_seconds`).
    took_ns: std::sync::atomic::AtomicU64,
}

/// The Prometheus text: the engine's metrics from a fresh view, then the health monitor's,
/// the failover thread's, the sync daemons' and the RX rings'.
fn render_now(shared: &Shared) -> Result<String, String> {
    let start = std::time::Instant::now();
    let v = ask_view(&shared.requests)?;
    let viewed = start.elapsed();
    let r = &shared.metrics;
    let mut labels = r.labels.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = metrics::render_cached(&v.engine, &mut labels);
    metrics::render_health_cached(&mut text, &shared.monitor, &mut labels);
    drop(labels);
    metrics::render_self(&mut text, r.took_ns.load(Ordering::Relaxed) as f64 / 1e9);
    if let Some(f) = &shared.failover {
        failover_status::render_metrics(&mut text, &f.get());
    }
    metrics::render_sync(&mut text, &v.sync, &v.engine.sync);
    super::install_stats::render(&mut text);
    metrics::render_rings(&mut text, &v.rings);
    metrics::render_forwarding(&mut text);
    super::workers::render_metrics(&mut text);
    crate::fastpath::render_metrics(&mut text);
    if let Some(a) = &shared.announce {
        a.render_metrics(&mut text);
    }
    let took = start.elapsed();
    r.took_ns.store(took.as_nanos() as u64, Ordering::Relaxed);
    tracing::debug!(
        bytes = text.len(),
        view_us = viewed.as_micros() as u64,
        render_us = (took - viewed).as_micros() as u64,
        "metrics rendered"
    );
    Ok(text)
}

/// What a control request line asks, as the control thread reads it (public for the fuzz
/// target `control_line`): `Some((format, exact))` for a listing, `None` for another
/// request (`reload`, `metrics`), or the refusal's message.
pub fn read_request_line(line: &str) -> Result<Option<(Format, bool)>, String> {
    Ok(match parse_request(line)? {
        Ask::List { format, exact } => Some((format, exact)),
        _ => None,
    })
}

/// A control request line.
pub(super) fn parse_request(line: &str) -> Result<Ask, String> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("reload") => Ok(Ask::Reload),
        Some("metrics") => Ok(Ask::Metrics),
        Some("list") => {
            let mut format = Format::Plain;
            let mut exact = false;
            for word in words {
                match word {
                    "--stats" => format = Format::Stats,
                    "--rate" => format = Format::Rate,
                    "--thresholds" => format = Format::Thresholds,
                    "--persistent-conn" => format = Format::PersistentConn,
                    "-c" | "--connection" => format = Format::Connections,
                    "--exact" => exact = true,
                    "--health" => return Ok(Ask::Health),
                    "--failover" => return Ok(Ask::Failover),
                    other => return Err(format!("unknown list option {other}")),
                }
            }
            Ok(Ask::List { format, exact })
        }
        _ => Err(format!("unknown request {:?}", line.trim())),
    }
}

/// Hand a request to the worker and wait for its answer.
pub(super) fn ask_worker(requests: &mpsc::Sender<Request>, ask: Ask) -> Result<Answer, String> {
    let (tx, rx) = mpsc::channel();
    requests
        .send(Request { ask, reply: tx })
        .map_err(|_| "the data-plane worker is gone".to_string())?;
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the data-plane worker did not answer".to_string())?
}

/// [`ask_worker`] for a text answer.
pub(super) fn ask_text(requests: &mpsc::Sender<Request>, ask: Ask) -> Result<String, String> {
    match ask_worker(requests, ask)? {
        Answer::Text(t) => Ok(t),
        _ => Err("the data-plane worker answered with no text".into()),
    }
}

/// A view of the engine taken after this call (so it shows everything done before it).
pub(super) fn ask_view(requests: &mpsc::Sender<Request>) -> Result<Arc<WorkerView>, String> {
    match ask_worker(requests, Ask::View)? {
        Answer::View(v) => Ok(v),
        _ => Err("the data-plane worker answered with no view".into()),
    }
}

/// Send one control request line and read the answer (`error: ...` becomes an error).
pub fn control_request(control: &Path, line: &str) -> io::Result<String> {
    let mut s = UnixStream::connect(control)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(s, "{line}")?;
    let mut text = String::new();
    io::Read::read_to_string(&mut s, &mut text)?;
    if let Some(e) = text.strip_prefix("error: ") {
        return Err(io::Error::other(e.trim_end().to_string()));
    }
    Ok(text)
}

/// Ask a running daemon for a listing (`rvsadm -L -n ...`).
pub fn request_listing(control: &Path, args: &[&str]) -> io::Result<String> {
    control_request(control, &format!("list {}", args.join(" ")))
}

impl ControlPlane<'_> {
    /// Answer a control request (on the worker, between batches).
    pub(super) fn answer(
        &mut self,
        d: &mut Director,
        ask: Ask,
        now: Instant,
    ) -> Result<Answer, String> {
        if let Some(e) = self.peers.refuse_engine_job(&ask) {
            return Err(e);
        }
        if !matches!(ask, Ask::View) {
            // Whatever else it does may change what a view shows.
            self.view = None;
        }
        match ask {
            // One copy serves every view asked for in the same round (concurrent scrapes).
            Ask::View => {
                let v = self.view.get_or_insert_with(|| {
                    let peers = &self.peers;
                    super::published::view(
                        &mut self.spare_view,
                        d,
                        self.sync.counts,
                        &self.rings,
                        |v| peers.merged(v),
                    )
                });
                Ok(Answer::View(Arc::clone(v)))
            }
            Ask::ExportConns(tx) => {
                self.peers.export(&tx);
                self.exports.start(tx);
                Ok(Answer::Text(String::new()))
            }
            // Formatted by the control thread (from a view, or from pieces of the table).
            Ask::List { .. } => Err("answered by the control thread, not the worker".into()),
            Ask::Health | Ask::Failover | Ask::Metrics => {
                Err("answered by the control thread, not the worker".into())
            }
            Ask::Ipvsadm(_) => Err("answered by the control thread, not the worker".into()),
            // Cheap changes worked out by the control thread.
            Ask::SyncPut(_, s) if self.peers.any() => Ok(Answer::SyncPut(Err((
                crate::syncd::StartError::Open(io::Error::other(
                    "connection sync does not work with more than one forwarding worker yet",
                )),
                s,
            )))),
            Ask::SyncPut(state, s) => Ok(Answer::SyncPut(self.sync.put(d, state, s))),
            Ask::SyncTake(state) => Ok(Answer::SyncTaken(self.sync.take(d, state).map(Box::new))),
            Ask::Zero(key, done) => {
                self.peers.zero(key.as_ref());
                Ok(Answer::Zeroed(self.zeroing.ask(d, key.as_ref(), done)))
            }
            Ask::Reload => Err("read by the control thread, not the worker".into()),
            Ask::Install(change) => Ok(super::install_stats::timed(|| {
                self.install_change(d, *change, now)
            })),
            Ask::Engine(job) => Ok(Answer::Text((job.0)(d))),
        }
    }
}
