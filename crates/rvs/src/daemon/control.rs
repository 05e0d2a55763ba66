//! The control socket: one request per connection, parsed here and answered by the worker.

use super::housekeeping::ControlPlane;
use crate::admin::{self, Reply, SyncRequest};
use crate::desired::lock;
use crate::failover::RoleChanges;
use crate::listing::{self, Format};
use crate::metrics;
use crate::syncd::{self};
use rvs_core::director::Director;
use rvs_core::time::Instant;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// What the control socket or the metrics endpoint asks of the worker.
#[derive(Debug)]
pub(super) enum Ask {
    /// A listing.
    List { format: Format, exact: bool },
    /// Reload the configuration file.
    Reload,
    /// The Prometheus metrics text.
    Metrics,
    /// The health monitor's view of each monitored real server (`list --health`).
    Health,
    /// The failover thread's view (`list --failover`).
    Failover,
    /// An ipvsadm command line, parsed by the control thread (see [`crate::admin`]); the
    /// answer is the encoded [`crate::admin::Reply`].
    Ipvsadm(Box<admin::Prepared>),
}

/// A request from a control thread, answered by the worker between batches.
pub(super) struct Request {
    pub(super) ask: Ask,
    /// The answer: the text, or an error message.
    pub(super) reply: mpsc::Sender<Result<String, String>>,
}

/// The control socket: one request line per connection (`list [--stats|--rate|...]`),
/// answered with the listing text. Root-only permissions.
pub(super) fn start_control(
    path: &Path,
    requests: mpsc::Sender<Request>,
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
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = serve(stream, &requests);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }))
}

/// One control request per connection: `list [options]`, `reload`, `metrics`, or an
/// ipvsadm command line (`ipvsadm ARGC STDIN_LEN` and its length-prefixed arguments, see
/// [`crate::admin`]); the answer is the text (for ipvsadm: exit status, stdout and
/// stderr), or a line starting `error: `.
pub(super) fn serve(stream: UnixStream, requests: &mpsc::Sender<Request>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    reader.read_line(&mut line)?;
    let mut w = &stream;
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
    } else {
        match parse_request(&line) {
            Ok(a) => a,
            Err(e) => return writeln!(w, "error: {e}"),
        }
    };
    match ask_worker(requests, ask) {
        Ok(text) => w.write_all(text.as_bytes()),
        Err(e) => writeln!(w, "error: {e}"),
    }
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
pub(super) fn ask_worker(requests: &mpsc::Sender<Request>, ask: Ask) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    requests
        .send(Request { ask, reply: tx })
        .map_err(|_| "the data-plane worker is gone".to_string())?;
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the data-plane worker did not answer".to_string())?
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
    /// `rvsadm --start-daemon`, `--stop-daemon` and `-L --daemon`, with ipvsadm's
    /// messages (libipvs `ipvs_strerror()`) and exit status 255.
    pub(super) fn sync_request(&mut self, d: &mut Director, r: SyncRequest<'_>) -> Reply {
        let configured = "the connection sync daemons follow the configuration \
                          (lvs_sync_daemon / syncdaemon): change them there";
        match r {
            SyncRequest::List => Reply::ok(self.sync.listing()),
            _ if self.sync.configured() => Reply::fail(255, configured),
            SyncRequest::Start(o) => match self.sync.start(d, o.state, &syncd::setup_of(o)) {
                Ok(()) => Reply::ok(String::new()),
                Err(syncd::StartError::Running) => Reply::fail(255, "Daemon has already run"),
                Err(syncd::StartError::Open(e)) => Reply::fail(255, &e.to_string()),
            },
            SyncRequest::Stop(state) => {
                if self.sync.stop(d, state) {
                    Reply::ok(String::new())
                } else {
                    Reply::fail(255, "No daemon is running")
                }
            }
        }
    }

    /// Answer a control request.
    pub(super) fn answer(
        &mut self,
        d: &mut Director,
        ask: Ask,
        now: Instant,
    ) -> Result<String, String> {
        match ask {
            Ask::List { format, exact } => Ok(listing::render(d, format, exact, now)),
            Ask::Health => {
                let servers: Vec<_> = lock(&self.monitor.health).servers().collect();
                Ok(crate::health::render_status(&servers))
            }
            Ask::Failover => Ok(crate::failover_status::render(
                self.roles.as_ref().map(RoleChanges::status).as_ref(),
            )),
            Ask::Metrics => {
                let mut text = metrics::render(d);
                metrics::render_health(&mut text, self.monitor);
                if let Some(r) = &self.roles {
                    crate::failover_status::render_metrics(&mut text, &r.status());
                }
                metrics::render_sync(&mut text, &self.sync.counts, d);
                metrics::render_rings(&mut text, &self.rings);
                Ok(text)
            }
            Ask::Ipvsadm(cmd) => Ok(match cmd.sync_request() {
                Some(r) => self.sync_request(d, r).encode(),
                None => {
                    let before = self.desired.base().clone();
                    // A VIP nobody can answer for refuses the change whole, before anything
                    // is installed (engine, health monitor, owned addresses).
                    let (net, all) = (&self.net, self.ownership.all);
                    let mut check = |next: &rvs_core::model::Config| {
                        admin::addresses_to_own(net, all, &before, next).map(drop)
                    };
                    let mut reply = cmd.run_checked(d, self.desired, now, &mut check);
                    match admin::addresses_to_own(&self.net, all, &before, self.desired.base()) {
                        Ok(addrs) => self.own_service_addresses(d, addrs, now),
                        Err(why) => {
                            // Checked before the install: not reached.
                            tracing::error!("rvsadm: an unownable address was installed: {why}");
                            if let Err(errs) = self.desired.install(d, before, now) {
                                tracing::error!(?errs, "rvsadm: undoing it failed");
                            }
                            reply = Reply::fail(255, &why);
                        }
                    }
                    // New or edited real servers may have checks to schedule.
                    self.monitor.wake();
                    reply.encode()
                }
            }),
            Ask::Reload => {
                let r =
                    self.reloader
                        .reload_logged(d, self.desired, self.monitor, "control socket");
                self.ensure_probe_path(d);
                r.map(|(msg, net)| {
                    self.install_net(d, net, now);
                    msg
                })
            }
        }
    }
}
