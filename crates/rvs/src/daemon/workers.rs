//! `rvs daemon --workers N`: N forwarding workers, each with its own engine
//! ([`Director`]: connection table, schedulers' state, counters) and its own packet
//! sockets, one per interface, joined in one `PACKET_FANOUT` group per interface.
//!
//! Worker 0 is the thread that ran start-up: it keeps the control plane's work (roles,
//! health changes, probes, control requests) and is the group's first member. The others
//! ([`Peers`]) only forward; every change the control plane makes to worker 0's engine —
//! an install (reload, rvsadm edit, health change, weight), a network view (ownership,
//! reload), `-Z` — reaches each of them as the same prepared change, in the same order,
//! through a job queue they drain between batches. Listings, stats, rates and metrics are
//! the sums over the workers ([`Peers::merged`]); `-L -c` lists every worker's table.
//!
//! Steering ([`rvs_sys::packet::steer`]): a classic BPF fanout program hashes the client's
//! address and port (the source of a frame to a VIP, the destination of every other), so
//! both directions of a NAT connection, and every frame of a DR/TUN one, land on one worker.
//! Frames the program cannot place (ARP, IPv6, ICMP, non-first fragments) go to worker 0;
//! each other worker also has an ARP-only socket outside the group, so every worker learns
//! the neighbours it asked for (a worker's ARP request is answered to the director's MAC,
//! and the answer reaches every worker).
//!
//! What this slice does not do with more than one worker is refused at start
//! ([`refuse`]) and, for a later reload or edit, refused too ([`refuse_change`]):
//! connection sync, the SYN proxy, the FTP helper, the XDP fast path, FullNAT (the local
//! ports are not yet partitioned per worker), firewall-mark services, persistence (a
//! client's connections may land on different workers, each with its own templates),
//! connection thresholds (each worker would count its own connections only), checks
//! through the forwarding path, active-active.

use super::control::Ask;
use super::worker::{BATCH, HOUSEKEEPING, forward};
use crate::snapshot::DirectorView;
use rvs_core::director::{Director, NetConfig, PortId, Prepared};
use rvs_core::model::{Config, ForwardMethod, Protocol, ServiceKey};
use rvs_core::stats::Rates;
use rvs_core::time::Instant;
use rvs_sys::packet::steer::{ARP_ONLY, attach_filter, set_fanout_program, steering_program};
use rvs_sys::packet::vnet::VirtioNetHdr;
use rvs_sys::packet::{Fanout, FanoutMode, PacketConfig, PacketSocket, RxRing, TxRing};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// The most workers `--workers` accepts.
pub(super) const MAX_WORKERS: usize = 64;

/// Frames each worker received (`rvs_worker_frames_total{worker}`), stored by each worker
/// from its engine's counter.
static FRAMES: [AtomicU64; MAX_WORKERS] = [const { AtomicU64::new(0) }; MAX_WORKERS];

/// How many workers run (1 until [`Peers::start`] starts more).
static RUNNING: AtomicUsize = AtomicUsize::new(1);

/// Something for a peer's engine.
type EngineWork = Box<dyn FnOnce(&mut Director, Instant) + Send>;

/// Work for a peer, done between its batches.
enum Job {
    /// Something for its engine.
    Run(EngineWork),
    /// `-L -c`: copy its table to this channel in pieces.
    Export(mpsc::SyncSender<Vec<crate::listing::ConnRow>>),
}

/// How long worker 0 waits for a peer's view.
const VIEW_WAIT: Duration = Duration::from_secs(2);

/// The longest a peer sleeps in `poll(2)` (its timers and stop flag are looked at then).
const PEER_WAIT: Duration = Duration::from_millis(50);

/// Why `config` cannot run on several workers in this slice, if it cannot.
pub(super) fn unsupported(config: &Config) -> Option<String> {
    if config.synproxy.all || !config.synproxy.services.is_empty() {
        return Some("the SYN proxy".into());
    }
    if !config.fwmark_rules.is_empty() {
        return Some("firewall-mark rules".into());
    }
    let vips = vips(config);
    if vips.len() > rvs_sys::packet::steer::MAX_STEERED_VIPS {
        return Some(format!(
            "{} IPv4 VIPs (at most {})",
            vips.len(),
            rvs_sys::packet::steer::MAX_STEERED_VIPS
        ));
    }
    for s in &config.services {
        let what = match s.key {
            ServiceKey::Fwmark { .. } => Some("firewall-mark services"),
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                port: rvs_core::director::ftp::FTP_PORT,
                ..
            } => Some("the FTP helper (a TCP service on port 21)"),
            _ if s.persistence.is_some() => Some("persistent services"),
            _ if s
                .real_servers
                .iter()
                .any(|r| r.method == ForwardMethod::FullNat) =>
            {
                Some("FullNAT")
            }
            // Each worker would hold a server to the threshold on its own connections only.
            _ if s
                .real_servers
                .iter()
                .any(|r| r.u_threshold > 0 || r.l_threshold > 0) =>
            {
                Some("connection thresholds")
            }
            _ => None,
        };
        if let Some(w) = what {
            return Some(format!(
                "{w} (service {})",
                crate::listing::service_name(&s.key)
            ));
        }
    }
    None
}

/// Refuse at start what this slice cannot do with `n` workers (see the module's doc).
pub(super) fn refuse(
    n: usize,
    opts: &super::Options,
    config: &Config,
    failover: &rvs_config::failover::FailoverConfig,
    health: &rvs_core::health::HealthConfig,
) -> io::Result<()> {
    if n <= 1 {
        return Ok(());
    }
    let no = |what: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--workers {n}: {what} does not work with more than one worker yet"),
        ))
    };
    if n > MAX_WORKERS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--workers {n}: at most {MAX_WORKERS}"),
        ));
    }
    if opts.fast_path != crate::fastpath::Mode::Off {
        return no("the XDP fast path (--fast-path)");
    }
    if failover.sync.is_some() {
        return no("connection sync");
    }
    if failover.cluster.is_some() {
        return no("active-active (cluster)");
    }
    if super::housekeeping::wants_probe_path(health) {
        return no("a check through the forwarding path (via VIP)");
    }
    if let Some(what) = unsupported(config) {
        return no(&what);
    }
    Ok(())
}

/// The IPv4 VIPs of `config` (the steering program's list), each once.
fn vips(config: &Config) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = config
        .services
        .iter()
        .filter_map(|s| match s.key {
            ServiceKey::Addr {
                addr: IpAddr::V4(a),
                ..
            } => Some(a),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One other worker: its job queue and the socket that wakes it.
struct Peer {
    jobs: mpsc::Sender<Job>,
    wake: UnixDatagram,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The workers beyond worker 0 (none with `--workers 1`), held by worker 0.
#[derive(Default)]
pub(super) struct Peers {
    peers: Vec<Peer>,
    /// Per interface, a member of its fanout group (to replace the steering program).
    groups: Vec<OwnedFd>,
    /// The VIPs the steering program compares.
    vips: Vec<Ipv4Addr>,
    stop: Arc<AtomicBool>,
}

impl Peers {
    /// With `n` > 1: put worker 0's `sockets` in a fanout group per interface and start
    /// `n - 1` more workers, each with an engine from `engine` and sockets of its own.
    pub(super) fn start(
        n: usize,
        sockets: &[PacketSocket],
        config: &Config,
        engine: impl Fn() -> io::Result<Director>,
        (rt_priority, clock): (u8, std::time::Instant),
    ) -> io::Result<Peers> {
        if n <= 1 {
            return Ok(Peers::default());
        }
        let vips = vips(config);
        let prog = steering_program(&vips)?;
        let fanout = |group, unique_id| Fanout {
            group,
            mode: FanoutMode::Cbpf(&prog),
            rollover: false,
            ignore_outgoing: true,
            unique_id,
        };
        let mut groups = Vec::new();
        let mut ids = Vec::new();
        for s in sockets {
            s.join_fanout(&fanout(0, true))?;
            ids.push(s.fanout_group()?);
            groups.push(s.as_fd().try_clone_to_owned()?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut peers = Vec::new();
        for k in 1..n {
            let mut mine = Vec::new();
            let mut arps = Vec::new();
            for (s, g) in sockets.iter().zip(&ids) {
                let m = PacketSocket::open(s.ifname(), &super::startup::socket_config())?;
                m.join_fanout(&fanout(*g, false))?;
                mine.push(m);
                let a = PacketSocket::open(s.ifname(), &arp_config())?;
                attach_filter(a.as_fd(), &ARP_ONLY)?;
                arps.push(a);
            }
            let d = engine()?;
            let (tx, rx) = mpsc::channel();
            let (wake, woken) = UnixDatagram::pair()?;
            wake.set_nonblocking(true)?;
            woken.set_nonblocking(true)?;
            let stop = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name(format!("rvs-worker-{k}"))
                .spawn(move || {
                    let mut w = PeerWorker {
                        index: k,
                        d,
                        sockets: mine,
                        arps,
                        jobs: rx,
                        woken,
                        exports: super::conn_export::Exports::default(),
                    };
                    if let Err(e) = w.run(&stop, rt_priority, clock) {
                        tracing::error!(worker = k, "forwarding worker stopped: {e}");
                    }
                })?;
            peers.push(Peer {
                jobs: tx,
                wake,
                thread: Some(thread),
            });
        }
        RUNNING.store(n, Ordering::Relaxed);
        tracing::info!(
            workers = n,
            vips = vips.len(),
            "forwarding workers started (PACKET_FANOUT_CBPF steering by client address and port)"
        );
        Ok(Peers {
            peers,
            groups,
            vips,
            stop,
        })
    }

    /// Whether other workers run.
    pub(super) fn any(&self) -> bool {
        !self.peers.is_empty()
    }

    fn send_each(&self, mut job: impl FnMut(usize) -> Job) {
        for (i, p) in self.peers.iter().enumerate() {
            if p.jobs.send(job(i)).is_ok() {
                let _ = p.wake.send(&[1]);
            }
        }
    }

    /// Worker 0's engine and every other worker's get `net`.
    pub(super) fn set_net(&self, d: &mut Director, net: NetConfig) {
        self.send_each(|_| {
            let net = net.clone();
            Job::Run(Box::new(move |d: &mut Director, _| d.set_net(net)))
        });
        d.set_net(net);
    }

    /// The other workers install `copies` (one each, made on the control thread by
    /// [`copies`]) after worker 0 installed the same change; a steering program
    /// comparing the new VIPs replaces the old.
    pub(super) fn install(&mut self, copies: Vec<Prepared>, config: &Config) {
        if !self.any() {
            return;
        }
        if let Some(what) = unsupported(config) {
            tracing::error!(
                "the running configuration uses {what}, which does not work with more than \
                 one forwarding worker yet: its connections may be forwarded wrongly; \
                 restart with --workers 1"
            );
        }
        let mut copies = copies.into_iter();
        self.send_each(|_| {
            let p = copies.next();
            Job::Run(Box::new(move |d: &mut Director, _| {
                if let Some(p) = p {
                    d.install(p);
                }
            }))
        });
        let vips = vips(config);
        if vips != self.vips {
            match steering_program(&vips) {
                Ok(prog) => {
                    for g in &self.groups {
                        if let Err(e) = set_fanout_program(g.as_fd(), &prog) {
                            tracing::error!("the workers' steering program not replaced: {e}");
                        }
                    }
                    self.vips = vips;
                }
                Err(e) => tracing::error!("the workers' steering program not replaced: {e}"),
            }
        }
    }

    /// `-Z`: the other workers zero `key` (or every service) at once.
    pub(super) fn zero(&self, key: Option<&ServiceKey>) {
        let key = key.copied();
        self.send_each(|_| {
            Job::Run(Box::new(move |d: &mut Director, _| {
                d.zero_counters(key.as_ref());
            }))
        });
    }

    /// `-L -c`: the other workers copy their tables to `tx` too (the listing ends when
    /// every worker dropped its sender).
    pub(super) fn export(&self, tx: &mpsc::SyncSender<Vec<crate::listing::ConnRow>>) {
        self.send_each(|_| Job::Export(tx.clone()));
    }

    /// A request worker 0 cannot pass on to the other workers: refused while they run.
    pub(super) fn refuse_engine_job(&self, ask: &Ask) -> Option<String> {
        match ask {
            Ask::Engine(_) if self.any() => {
                Some("not available with more than one forwarding worker yet".into())
            }
            _ => None,
        }
    }

    /// Worker 0's view with every other worker's added (connection counts, counters,
    /// rates, table sizes); per-worker frames counted for `rvs_worker_frames_total`.
    pub(super) fn merged(&self, mut v: DirectorView) -> DirectorView {
        FRAMES[0].store(v.counters.rx, Ordering::Relaxed);
        if !self.any() {
            return v;
        }
        let (tx, rx) = mpsc::channel();
        self.send_each(|_| {
            let tx = tx.clone();
            Job::Run(Box::new(move |d: &mut Director, _| {
                let _ = tx.send(DirectorView::of(d));
            }))
        });
        drop(tx);
        let deadline = std::time::Instant::now() + VIEW_WAIT;
        for _ in 0..self.peers.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(o) => add_view(&mut v, &o),
                Err(_) => {
                    tracing::warn!("a forwarding worker did not answer; its numbers are missing");
                    break;
                }
            }
        }
        v
    }
}

/// A reload or edit that would bring in what [`unsupported`] names, refused while more
/// than one worker runs (the running configuration stays), as `--workers` refuses it at
/// start.
pub(super) fn refuse_change(config: &Config) -> Result<(), String> {
    let n = RUNNING.load(Ordering::Relaxed);
    match unsupported(config) {
        Some(what) if n > 1 => Err(format!(
            "--workers {n}: {what} does not work with more than one worker yet"
        )),
        _ => Ok(()),
    }
}

/// The copies of `p` the other workers install (none with one worker), made on the
/// control thread that prepared it.
pub(super) fn copies(p: &Prepared) -> Vec<Prepared> {
    (1..RUNNING.load(Ordering::Relaxed))
        .map(|_| p.clone())
        .collect()
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for p in &mut self.peers {
            let _ = p.wake.send(&[1]);
            if let Some(t) = p.thread.take() {
                let _ = t.join();
            }
        }
        RUNNING.store(1, Ordering::Relaxed);
    }
}

/// An ARP socket: a small RX ring, no TX ring (the worker sends through its main socket).
fn arp_config() -> PacketConfig {
    let mut c = super::startup::syn_socket_config();
    if let Some(rx) = c.rx.as_mut() {
        rx.block_count = 1;
    }
    c.tx = None;
    c
}

fn add_rates(a: &mut Rates, b: &Rates) {
    a.cps += b.cps;
    a.inpps += b.inpps;
    a.outpps += b.outpps;
    a.inbps += b.inbps;
    a.outbps += b.outbps;
}

/// Add `o` (another worker's view) into `v`: per service and real server (matched by
/// key and address), the connection counts, counters and rates; the engine's counters
/// and drops; the connection tables' sizes. Neighbour and SYN-admission figures stay
/// worker 0's.
pub(super) fn add_view(v: &mut DirectorView, o: &DirectorView) {
    for (i, os) in o.services.iter().enumerate() {
        let s = match v.services.get_mut(i) {
            Some(s) if s.cfg.key == os.cfg.key => Some(s),
            _ => v.services.iter_mut().find(|s| s.cfg.key == os.cfg.key),
        };
        let Some(s) = s else { continue };
        s.stats.add(&os.stats);
        add_rates(&mut s.rates, &os.rates);
        for od in &os.dests {
            if let Some(dv) = s
                .dests
                .iter_mut()
                .find(|d| d.dest.addr == od.dest.addr && d.dest.port == od.dest.port)
            {
                dv.dest.active_conns += od.dest.active_conns;
                dv.dest.inact_conns += od.dest.inact_conns;
                dv.dest.persist_conns += od.dest.persist_conns;
                dv.stats.add(&od.stats);
                add_rates(&mut dv.rates, &od.rates);
            }
        }
    }
    let (c, oc) = (&mut v.counters, &o.counters);
    for (a, b) in [
        (&mut c.rx, oc.rx),
        (&mut c.tx, oc.tx),
        (&mut c.passed, oc.passed),
        (&mut c.neighbor_replies, oc.neighbor_replies),
        (&mut c.address_conflicts, oc.address_conflicts),
        (&mut c.echo_replies, oc.echo_replies),
        (&mut c.icmp_forwarded, oc.icmp_forwarded),
        (&mut c.conns_created, oc.conns_created),
        (&mut c.conns_removed, oc.conns_removed),
        (&mut c.templates_created, oc.templates_created),
        (&mut c.templates_removed, oc.templates_removed),
        (&mut c.parked, oc.parked),
        (&mut c.segmented, oc.segmented),
        (&mut c.probes, oc.probes),
    ] {
        *a = a.wrapping_add(b);
    }
    for (a, b) in c.malformed.iter_mut().zip(oc.malformed) {
        *a = a.wrapping_add(b);
    }
    v.drops.add(&o.drops);
    for (t, ot) in v.tables.iter_mut().zip(&o.tables) {
        t.len += ot.len;
        t.capacity += ot.capacity;
        t.memory_bytes += ot.memory_bytes;
        t.limit_bytes += ot.limit_bytes;
        t.buckets += ot.buckets;
    }
}

/// `rvs_worker_frames_total`: frames each worker received, appended to `out`.
pub(super) fn render_metrics(out: &mut String) {
    use std::fmt::Write;
    let n = RUNNING.load(Ordering::Relaxed);
    out.push_str(
        "# HELP rvs_worker_frames_total Frames each forwarding worker received (--workers).\n\
         # TYPE rvs_worker_frames_total counter\n",
    );
    for (i, f) in FRAMES.iter().enumerate().take(n) {
        let _ = writeln!(
            out,
            "rvs_worker_frames_total{{worker=\"{i}\"}} {}",
            f.load(Ordering::Relaxed)
        );
    }
}

/// A worker other than worker 0: forwards, runs its timers and its jobs.
struct PeerWorker {
    index: usize,
    d: Director,
    sockets: Vec<PacketSocket>,
    arps: Vec<PacketSocket>,
    jobs: mpsc::Receiver<Job>,
    woken: UnixDatagram,
    /// `-L -c` listings being copied in pieces.
    exports: super::conn_export::Exports,
}

impl PeerWorker {
    fn run(
        &mut self,
        stop: &AtomicBool,
        rt_priority: u8,
        clock: std::time::Instant,
    ) -> io::Result<()> {
        let now = || Instant(clock.elapsed().as_nanos() as u64);
        if rt_priority > 0
            && let Err(e) = rvs_sys::sched::set_fifo(i32::from(rt_priority))
        {
            tracing::warn!(worker = self.index, "SCHED_FIFO {rt_priority} refused: {e}");
        }
        let d = &mut self.d;
        let nports = self.sockets.len();
        let max = rvs_sys::poll::MAX_WAIT_FDS;
        let mut rxs: Vec<Option<&mut RxRing>> = Vec::with_capacity(2 * nports);
        let mut txs: Vec<Option<&mut TxRing>> = Vec::with_capacity(nports);
        for s in &mut self.sockets {
            let (r, t) = s.rings();
            rxs.push(r);
            txs.push(t);
        }
        for a in &mut self.arps {
            rxs.push(a.rx());
        }
        // Every ring's fd and the wake-up socket must fit one poll set.
        if rxs.len() + 1 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{nports} interfaces: a worker's poll set holds {} rings at most",
                    max - 1
                ),
            ));
        }
        let mut out = vec![0u8; 2048];
        let mut none: Option<crate::fastpath::FastPath> = None;
        let mut housekept = now();
        let frames = &FRAMES[self.index];
        while !stop.load(Ordering::Relaxed) {
            let t = now();
            let mut got = 0;
            for (i, r) in rxs.iter_mut().enumerate() {
                let Some(r) = r.as_mut() else { continue };
                let port = PortId((i % nports) as u8);
                got += r.drain_max(BATCH, |f| forward(d, t, port, f, &mut txs, &mut none));
            }
            while let Some((p, len)) = d.poll_transmit(&mut out) {
                if let Some(Some(tx)) = txs.get_mut(usize::from(p.0)) {
                    let _ = tx.send(&out[..len], Some(&VirtioNetHdr::default()));
                }
            }
            for tx in txs.iter_mut().flatten() {
                let _ = tx.flush();
            }
            let due = d.poll_timeout().is_some_and(|at| at <= t);
            if got == 0 || due || t.0.saturating_sub(housekept.0) >= HOUSEKEEPING.as_nanos() as u64
            {
                d.expire(t);
                let mut buf = [0u8; 64];
                while self.woken.recv(&mut buf).is_ok() {}
                while let Ok(job) = self.jobs.try_recv() {
                    match job {
                        Job::Run(f) => f(d, t),
                        Job::Export(tx) => self.exports.start(tx),
                    }
                }
                self.exports.step(d, t, super::conn_export::CHUNK_SLOTS);
                frames.store(d.counters().rx, Ordering::Relaxed);
                housekept = t;
            }
            if got > 0 {
                continue;
            }
            let mut wait = d
                .poll_timeout()
                .map(|at| Duration::from_nanos(at.0.saturating_sub(t.0)))
                .unwrap_or(PEER_WAIT)
                .min(PEER_WAIT);
            if self.exports.busy() {
                wait = wait.min(super::conn_export::Exports::WAIT);
            }
            let mut fds: [Option<BorrowedFd<'_>>; rvs_sys::poll::MAX_WAIT_FDS] =
                [None; rvs_sys::poll::MAX_WAIT_FDS];
            let mut n = 0;
            for r in rxs.iter().flatten() {
                fds[n] = Some(r.as_fd());
                n += 1;
            }
            fds[n] = Some(self.woken.as_fd());
            n += 1;
            let fds: [BorrowedFd<'_>; rvs_sys::poll::MAX_WAIT_FDS] =
                std::array::from_fn(|i| fds[i.min(n - 1)].expect("a ring or the wake-up socket"));
            let mut ready = [false; rvs_sys::poll::MAX_WAIT_FDS];
            rvs_sys::poll::wait_readable(&fds[..n], &mut ready, Some(wait))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::DirectorSettings;
    use rvs_core::model::{RealServerConfig, VirtualServiceConfig};
    use rvs_core::stats::Counters;

    fn config() -> Config {
        let mut c = Config::default();
        for port in [80u16, 443] {
            let mut s = VirtualServiceConfig::new(ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: "10.1.0.100".parse().unwrap(),
                port,
            });
            for a in ["10.2.0.11", "10.2.0.12"] {
                let mut r = RealServerConfig::new(a.parse().unwrap(), port);
                r.method = ForwardMethod::Masq;
                s.real_servers.push(r);
            }
            c.services.push(s);
        }
        c
    }

    /// A worker's engine with `k` connections (active, inactive) and `k` packets counted
    /// on each real server.
    fn worker(k: u32) -> Director {
        let mut d =
            Director::new(NetConfig::default(), &config(), DirectorSettings::default()).unwrap();
        let services = d.services_mut();
        let ids: Vec<_> = services.iter().map(|(id, _)| id).collect();
        for id in ids {
            let s = services.get_mut(id).unwrap();
            s.stats.add(&Counters {
                conns: u64::from(k),
                ..Counters::default()
            });
            for x in &mut s.dests {
                (x.active_conns, x.inact_conns) = (k, 2 * k);
            }
            let dests = s.dest_ids.clone();
            for dest in dests {
                *services.stats_mut(dest).0.unwrap() = Counters {
                    inpkts: u64::from(k),
                    ..Counters::default()
                };
            }
        }
        d
    }

    #[test]
    fn the_listing_is_the_sum_over_the_workers() {
        let mut v = DirectorView::of(&worker(3));
        add_view(&mut v, &DirectorView::of(&worker(4)));
        for s in &v.services {
            assert_eq!(s.stats.conns, 7, "{:?}", s.cfg.key);
            for d in &s.dests {
                assert_eq!((d.dest.active_conns, d.dest.inact_conns), (7, 14));
                assert_eq!(d.stats.inpkts, 7);
            }
        }
        // Another worker's services in another order still meet their own.
        let mut other = DirectorView::of(&worker(1));
        other.services.reverse();
        add_view(&mut v, &other);
        assert!(v.services.iter().all(|s| s.stats.conns == 8));
    }

    #[test]
    fn what_several_workers_cannot_do_is_named() {
        let mut c = config();
        assert_eq!(unsupported(&c), None);
        c.services[1].real_servers[0].u_threshold = 10;
        let why = unsupported(&c).unwrap();
        assert!(
            why.starts_with("connection thresholds (service TCP"),
            "{why}"
        );
        let mut c = config();
        c.services[0].real_servers[1].method = ForwardMethod::FullNat;
        assert!(unsupported(&c).unwrap().starts_with("FullNAT"));
        let mut c = config();
        c.synproxy.all = true;
        assert_eq!(unsupported(&c).as_deref(), Some("the SYN proxy"));
        assert_eq!(vips(&config()), ["10.1.0.100".parse::<Ipv4Addr>().unwrap()]);
    }
}
