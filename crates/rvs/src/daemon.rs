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
//! lines (`rvsadm ...`, see [`crate::admin`]); the control thread parses them and passes
//! them to the worker, which answers between batches.

use crate::admin::{self, Reply, SyncRequest};
use crate::desired::{Desired, lock};
use crate::failover::{Failover, RoleChange, RoleChanges};
use crate::health::{Monitor, MonitorThread};
use crate::listing::{self, Format};
use crate::load::{self, Plan};
use crate::metrics;
use crate::probe::ProbePath;
use crate::syncd::{self, SyncDaemons};
use rvs_config::failover::FailoverConfig;
use rvs_core::director::{
    Director, DirectorSettings, NetConfig, OwnedAddr, PortConfig, PortId, Route, Verdict,
};
use rvs_core::health::{Health, HealthConfig};
use rvs_core::model::Prefix;
use rvs_core::time::Instant;
use rvs_core::wire::{CsumStatus, Frame};
use rvs_sys::packet::vnet::{F_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, VirtioNetHdr};
use rvs_sys::packet::{
    Fanout, FanoutMode, PacketConfig, PacketSocket, RingVersion, RxFrame, RxRing, RxRingConfig,
    TxRing, TxRingConfig,
};
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Room in front of a frame for tunnel headers (outer IPv6 + UDP + GUE with options),
/// reserved in every RX slot (`PACKET_RESERVE`) so frames are rewritten in place.
const HEADROOM: u32 = 128;
/// An RX slot: a GSO super-frame (64 KiB of IP + Ethernet) after the slot header, the
/// headroom and the vnet header; 17 pages.
const RX_SLOT: u32 = 17 * 4096;

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
}

/// The data plane's default real-time priority: the lowest, above every ordinary process
/// (as the kernel's forwarding in softirq is) and below every other real-time thread.
pub const DEFAULT_RT_PRIORITY: u8 = 1;

/// The control socket used when none is given (see [`crate::locate`]).
pub fn default_control_path(config: &Path) -> PathBuf {
    crate::locate::default_control_path(config)
}

/// What the control socket or the metrics endpoint asks of the worker.
#[derive(Debug)]
enum Ask {
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
struct Request {
    ask: Ask,
    /// The answer: the text, or an error message.
    reply: mpsc::Sender<Result<String, String>>,
}

/// Build the engine's view of the links from the kernel's interfaces and routes.
fn net_config(plan: &Plan) -> io::Result<NetConfig> {
    let mut ports = Vec::new();
    for (i, name) in plan.interfaces.iter().enumerate() {
        let mac = rvs_sys::iface::mac_address(name)?;
        let addrs = rvs_sys::iface::addresses(name)?
            .into_iter()
            .filter(|(a, _)| !is_link_local(a))
            .map(|(addr, len)| Prefix { addr, len })
            .collect();
        ports.push(PortConfig {
            id: PortId(i as u8),
            mac,
            addrs,
            mtu: u16::try_from(rvs_sys::iface::mtu(name)?).unwrap_or(u16::MAX),
        });
    }
    let mut owned = Vec::new();
    for (addr, dev) in &plan.owned {
        let Some(i) = plan.interfaces.iter().position(|n| n == dev) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address {addr} is on {dev}, which the daemon does not attach to"),
            ));
        };
        owned.push(OwnedAddr {
            addr: *addr,
            port: PortId(i as u8),
            mac: None,
        });
    }
    Ok(NetConfig {
        ports,
        routes: kernel_routes()?,
        owned,
    })
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Gateway routes from `/proc/net/route` and `/proc/net/ipv6_route` (the daemon's
/// namespace): the engine routes replies to clients that are not on a link.
pub(crate) fn kernel_routes() -> io::Result<Vec<Route>> {
    let mut routes = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/route") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
            let (Some(dst), Some(gw), Some(mask)) = (hex(f[1]), hex(f[2]), hex(f[7])) else {
                continue;
            };
            if gw == 0 {
                continue;
            }
            routes.push(Route {
                dst: Prefix {
                    addr: IpAddr::V4(dst.into()),
                    len: mask.count_ones() as u8,
                },
                via: IpAddr::V4(gw.into()),
            });
        }
    }
    if let Ok(text) = std::fs::read_to_string("/proc/net/ipv6_route") {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let v6 = |s: &str| u128::from_str_radix(s, 16).ok();
            let (Some(dst), Some(len), Some(gw)) =
                (v6(f[0]), u8::from_str_radix(f[1], 16).ok(), v6(f[4]))
            else {
                continue;
            };
            if gw == 0 {
                continue;
            }
            routes.push(Route {
                dst: Prefix {
                    addr: IpAddr::V6(dst.into()),
                    len,
                },
                via: IpAddr::V6(gw.into()),
            });
        }
    }
    Ok(routes)
}

/// Refuse to run while the kernel forwards: it would forward a copy of every frame.
fn check_forwarding() -> io::Result<()> {
    let on = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim() == "1")
            .unwrap_or(false)
    };
    if on("/proc/sys/net/ipv4/ip_forward") {
        return Err(io::Error::other(
            "net.ipv4.ip_forward is 1 in this namespace: the kernel would forward a second \
             copy of the traffic rvs forwards; set it to 0 (sysctl -w net.ipv4.ip_forward=0)",
        ));
    }
    Ok(())
}

/// TPACKET_V2 rings: every frame is handed over as soon as the kernel wrote it. With V3,
/// a frame waited in an unretired block for up to `retire_blk_tov` (≥ 1 ms) per hop, which
/// capped keep-alive request/response traffic (2 hops per round trip) at a fraction of
/// the kernel's NAT.
fn socket_config() -> PacketConfig {
    PacketConfig {
        version: RingVersion::V2,
        rx: Some(RxRingConfig {
            // 15 slots of RX_SLOT per 1 MiB block, 480 slots.
            block_size: 1 << 20,
            block_count: 32,
            frame_size: RX_SLOT,
            retire_blk_tov_ms: 0,
            reserve: HEADROOM,
        }),
        tx: Some(TxRingConfig {
            frame_size: 1 << 17,
            frame_count: 128,
        }),
        vnet_hdr: true,
        qdisc_bypass: true,
        ignore_outgoing: true,
        promiscuous: false,
    }
}

/// The SYN ring: connections' first segments (TCP SYN without ACK) only, in small slots
/// (a SYN is under 2 KiB; 8,192 of them, 16 MiB), so a SYN flood fills this ring rather
/// than the main one, and a worker that fell behind still finds the frames of known
/// connections (ACKs completing SYN-proxy handshakes, requests, replies) on time.
fn syn_socket_config() -> PacketConfig {
    PacketConfig {
        version: RingVersion::V2,
        rx: Some(RxRingConfig {
            block_size: 1 << 20,
            block_count: 16,
            frame_size: 2048,
            retire_blk_tov_ms: 0,
            reserve: HEADROOM,
        }),
        tx: None,
        vnet_hdr: true,
        qdisc_bypass: false,
        ignore_outgoing: true,
        promiscuous: false,
    }
}

/// Splits `main`'s interface into two rings: `main` keeps every frame but connections'
/// first segments, which go to a new SYN-only socket (a `PACKET_FANOUT_CBPF` group of the
/// two, [`rvs_sys::packet::SYN_SPLIT`]). None, with a warning, where the kernel refuses
/// the group (`PACKET_FANOUT_FLAG_IGNORE_OUTGOING` needs Linux 6.9): `main` then receives
/// everything, as before.
fn open_syn_ring(main: &PacketSocket) -> io::Result<Option<PacketSocket>> {
    let syn = PacketSocket::open(main.ifname(), &syn_socket_config())?;
    let fanout = |group, unique_id| Fanout {
        group,
        mode: FanoutMode::Cbpf(&rvs_sys::packet::SYN_SPLIT),
        rollover: false,
        ignore_outgoing: true,
        unique_id,
    };
    // Member 0 (the program's "other frames") is the first to join: `main`.
    let joined = main
        .join_fanout(&fanout(0, true))
        .and_then(|()| main.fanout_group())
        .and_then(|g| syn.join_fanout(&fanout(g, false)));
    match joined {
        Ok(()) => Ok(Some(syn)),
        Err(e) => {
            tracing::warn!(
                interface = main.ifname(),
                "no separate SYN ring ({e}); SYNs share the interface's ring"
            );
            Ok(None)
        }
    }
}

/// Fresh randomness for the connection table's hash seed (hash-flooding defence), from
/// `getrandom(2)`. A seed an attacker could guess (the PID, the time) would let them aim
/// flows at one hash bucket, so start-up fails instead of falling back.
fn random_seed() -> io::Result<u64> {
    rvs_sys::random::u64().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read randomness for the connection table's hash seed (getrandom): {e}"),
        )
    })
}

/// Run the director until SIGTERM / SIGINT, with `health` monitoring its real servers and
/// `failover` deciding when it owns its addresses.
pub fn run(
    plan: Plan,
    health: HealthConfig,
    failover: FailoverConfig,
    opts: &Options,
) -> io::Result<()> {
    check_forwarding()?;
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
    let net = net_config(&plan)?;
    let settings = DirectorSettings {
        seed: random_seed()?,
        offload_partial_csum: true,
        // Room for a few tunnelled GSO super-frames cut into segments per round.
        park_slots: 1024,
        neigh_gc_thresh3: opts.gc_thresh3.unwrap_or(0),
        ..DirectorSettings::default()
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
    let sync = SyncDaemons::new(failover.sync.clone()).map_err(|e| {
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
    let mut director = Director::new(net, &desired.effective(), settings).map_err(|errs| {
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        io::Error::new(io::ErrorKind::InvalidInput, msgs.join("; "))
    })?;
    let mut sync = sync;
    sync.follow(&mut director, false, ownership.all);
    let mut sockets = Vec::new();
    for name in &plan.interfaces {
        sockets.push(PacketSocket::open(name, &socket_config())?);
    }
    // A second, SYN-only ring per interface while the poll set has room for it.
    let room = rvs_sys::poll::MAX_WAIT_FDS.saturating_sub(3 + sockets.len());
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
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    let (tx, rx) = mpsc::channel::<Request>();
    if let Some(addr) = opts.metrics {
        start_metrics(addr, tx.clone(), Arc::clone(&stop))?;
    }
    let _control = start_control(&opts.control, tx, Arc::clone(&stop))?;
    let monitor = MonitorThread::start(health, clock)?;
    monitor.monitor().set_probe_sources(probe_sources(&plan));
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    tracing::info!(
        services = plan.config.services.len(),
        interfaces = %plan.interfaces.join(","),
        control = %opts.control.display(),
        config = %opts.config_path.display(),
        "director started"
    );
    let mut reloader = Reloader {
        path: opts.config_path.clone(),
        format: opts.format,
        config_id: opts.config_id.clone(),
        interfaces: plan.interfaces.clone(),
        strict: opts.strict,
        tuning: opts.tuning.clone(),
        hup,
    };
    let (failover, roles) = match failover {
        Some((f, r)) => (Some(f), Some(r)),
        None => (None, None),
    };
    let mut cp = ControlPlane {
        desired: &mut desired,
        monitor: monitor.monitor(),
        reloader: &mut reloader,
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
        provisioner: crate::provision::Provisioner::start()?,
    };
    cp.ensure_probe_path(&director);
    let result = worker(
        &mut director,
        (&mut sockets, &mut syn_sockets),
        &stop,
        &rx,
        &mut cp,
        clock,
        opts.rt_priority,
    );
    if let Some(f) = failover {
        f.stop();
    }
    monitor.stop();
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

/// Frames taken from one RX ring before the others get a turn (and before the TX rings
/// are flushed).
const BATCH: usize = 64;
/// How often, at most, the worker runs the engine's timers and answers control requests
/// while traffic keeps it busy (it always does before it sleeps).
const HOUSEKEEPING: Duration = Duration::from_millis(1);
/// How often the worker reads the RX rings' drop counters (and before each answer).
const RING_STATS_EVERY: Duration = Duration::from_millis(100);

/// Forward one received frame: rewritten in place in its RX slot (with the slot's
/// headroom for encapsulation), then copied once into the egress port's TX ring.
fn forward(
    d: &mut Director,
    now: Instant,
    port: PortId,
    frame: RxFrame<'_>,
    txs: &mut [Option<&mut TxRing>],
) {
    let n = frame.data.len();
    let vnet = frame.meta.vnet.unwrap_or_default();
    let csum_valid = frame.meta.csum_valid();
    let (buf, head) = frame.into_buf();
    let Ok(mut f) = Frame::new(buf, head, n) else {
        return;
    };
    if vnet.needs_csum() {
        f.set_csum(CsumStatus::Partial {
            start: vnet.csum_start,
            offset: vnet.csum_offset,
        });
    } else if csum_valid || vnet.data_valid() {
        f.set_csum(CsumStatus::Valid);
    }
    if matches!(vnet.gso_type & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6) {
        // A TSO/GRO super-frame: the engine cuts it itself where the kernel cannot (tunnels).
        f.set_gso_size(vnet.gso_size);
    }
    if let Verdict::Transmit(p) = d.handle(now, port, &mut f) {
        let mut h = vnet;
        match f.csum() {
            CsumStatus::Partial { start, offset } => {
                h.flags = F_NEEDS_CSUM;
                h.csum_start = start;
                h.csum_offset = offset;
            }
            _ => {
                h.flags = 0;
                h.csum_start = 0;
                h.csum_offset = 0;
            }
        }
        if f.len() != n {
            // Encapsulated: the GSO type no longer describes the frame.
            h.gso_type = 0;
            h.gso_size = 0;
            h.hdr_len = 0;
        }
        if let Some(Some(t)) = txs.get_mut(usize::from(p.0)) {
            let _ = t.send(f.data(), Some(&h));
        }
    }
}

/// The data-plane loop: drain the RX rings (frame rings: each frame is available as soon
/// as the kernel wrote it), the main rings before the SYN rings, forward, flush the TX rings
/// (after the main rings and once per round), and sleep in `poll(2)` only when a round
/// found nothing.
fn worker(
    d: &mut Director,
    (sockets, syn_sockets): (&mut [PacketSocket], &mut [Option<PacketSocket>]),
    stop: &AtomicBool,
    requests: &mpsc::Receiver<Request>,
    cp: &mut ControlPlane<'_>,
    clock: std::time::Instant,
    rt_priority: u8,
) -> io::Result<()> {
    let now = || Instant(clock.elapsed().as_nanos() as u64);
    let mut out = vec![0u8; 2048];
    let nports = sockets.len();
    let mut rxs: [Option<&mut RxRing>; rvs_sys::poll::MAX_WAIT_FDS] = Default::default();
    let mut txs: [Option<&mut TxRing>; rvs_sys::poll::MAX_WAIT_FDS] = Default::default();
    let mut syn_port: [usize; rvs_sys::poll::MAX_WAIT_FDS] = std::array::from_fn(|i| i);
    for (i, s) in sockets.iter_mut().enumerate() {
        (rxs[i], txs[i]) = s.rings();
    }
    // SYN rings after the main ones, each for the port of the same index.
    let mut nrings = nports;
    for (i, s) in syn_sockets.iter_mut().enumerate() {
        if let Some(s) = s
            && nrings < rxs.len()
        {
            rxs[nrings] = s.rx();
            syn_port[nrings] = i;
            nrings += 1;
        }
    }
    let txs = &mut txs[..nports];
    d.announce(now());
    // Forward ahead of ordinary processes, as the kernel's NAT does in softirq: under CPU
    // contention an ordinary thread's wake-up waits for the running task's slice (up to
    // milliseconds), so a server's FIN sent microseconds after its response could reach
    // the client long after the data. A client that reads the response and closes before
    // the FIN arrives closes first and keeps a TIME_WAIT socket for 60 s; a single busy
    // client then runs out of ephemeral ports (28k / 60 s ≈ 470 conn/s).
    if rt_priority > 0 {
        match rvs_sys::sched::set_fifo(i32::from(rt_priority)) {
            Ok(()) => tracing::info!("data plane scheduled SCHED_FIFO priority {rt_priority}"),
            Err(e) => tracing::warn!(
                "data plane stays under ordinary scheduling (SCHED_FIFO {rt_priority} refused: \
                 {e}); under CPU contention its forwarding waits for other processes"
            ),
        }
    }
    let mut housekept = now();
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        let mut got = 0;
        // A SYN ring that still had a full batch waiting: its backlog (SYN admission).
        let mut syn_backlog = false;
        // Known connections' frames first, then new connections' SYNs: under a SYN flood
        // the SYN rings fill (and drop) while the main rings are served every round.
        for (i, rxr) in rxs[..nrings].iter_mut().enumerate() {
            let Some(rxr) = rxr.as_mut() else { continue };
            if i == nports {
                // Their output leaves before the SYN-ACKs' (each transmission runs the
                // receiving side's stack in this thread on veth).
                for tx in txs.iter_mut().flatten() {
                    let _ = tx.flush();
                }
            }
            let port = PortId(syn_port[i] as u8);
            let n = rxr.drain_max(BATCH, |frame| forward(d, t, port, frame, txs));
            syn_backlog |= i >= nports && n == BATCH;
            got += n;
        }
        d.syn_backlog(t, syn_backlog);
        // Frames the engine originated (ARP/ND, released parked frames).
        while let Some((p, len)) = d.poll_transmit(&mut out) {
            if let Some(Some(tx)) = txs.get_mut(usize::from(p.0)) {
                let _ = tx.send(&out[..len], Some(&VirtioNetHdr::default()));
            }
        }
        for tx in txs.iter_mut().flatten() {
            let _ = tx.flush();
        }
        let due = d.poll_timeout().is_some_and(|at| at <= t);
        if got == 0 || due || t.0.saturating_sub(housekept.0) >= HOUSEKEEPING.as_nanos() as u64 {
            d.expire(t);
            cp.housekeeping(d, t);
            cp.forward_probes(d, t, txs);
            cp.read_rings(&rxs[..nrings], t, false);
            while let Ok(req) = requests.try_recv() {
                cp.read_rings(&rxs[..nrings], t, true);
                let answer = cp.answer(d, req.ask, t);
                let _ = req.reply.send(answer);
            }
            housekept = t;
        }
        if got > 0 {
            continue;
        }
        // Nothing arrived this round: sleep until traffic, a timer or the next stop check.
        let wait = d
            .poll_timeout()
            .map(|at| Duration::from_nanos(at.0.saturating_sub(t.0)))
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        let mut fds: [Option<BorrowedFd<'_>>; rvs_sys::poll::MAX_WAIT_FDS] = [None; 8];
        let mut n = 0;
        for r in rxs[..nrings].iter().flatten() {
            fds[n] = Some(r.as_fd());
            n += 1;
        }
        if let Some(p) = &cp.probe
            && n < fds.len()
        {
            fds[n] = Some(p.device().as_fd());
            n += 1;
        }
        if let Some(r) = &cp.roles
            && n < fds.len()
        {
            fds[n] = Some(r.wake_fd());
            n += 1;
        }
        if let Some(fd) = cp.sync.fd()
            && n < fds.len()
        {
            fds[n] = Some(fd);
            n += 1;
        }
        let fds: [BorrowedFd<'_>; rvs_sys::poll::MAX_WAIT_FDS] =
            std::array::from_fn(|i| fds[i.min(n.saturating_sub(1))].expect("an RX ring"));
        let mut ready = [false; rvs_sys::poll::MAX_WAIT_FDS];
        rvs_sys::poll::wait_readable(&fds[..n], &mut ready, Some(wait))?;
    }
    Ok(())
}

/// How long after another host's claim the owned addresses are re-announced.
const DEFEND_DELAY: Duration = Duration::from_millis(200);

/// The least time between two such re-announcements.
const DEFEND_INTERVAL: Duration = Duration::from_secs(1);

/// How long after its own protocol-driven announcement a director does not defend.
const DEFEND_HOLD: Duration = Duration::from_secs(2);

/// The virtual MAC of each address of a VRRP instance with `use_vmac` (RFC 5798 §7.3:
/// 00-00-5E-00-01-VRID for IPv4, 00-00-5E-00-02-VRID for IPv6). rvs answers and announces
/// the address with it; no macvlan interface is needed (`use_vmac NAME` is logged and the
/// name unused).
fn virtual_macs(f: &FailoverConfig) -> Vec<(IpAddr, [u8; 6])> {
    let rvs_config::failover::FailoverMode::Vrrp(v) = &f.mode else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in v.instances.iter().filter(|i| i.use_vmac) {
        if let Some(name) = &i.vmac_name {
            tracing::info!(instance = %i.name, "use_vmac {name}: rvs needs no macvlan interface; the name is not used");
        }
        for a in i.addresses.iter().chain(&i.excluded_addresses) {
            let family = rvs_core::vrrp::packet::Family::of(a.addr);
            let mac = rvs_core::vrrp::packet::virtual_mac(family, i.router.vrid).0;
            out.push((a.addr, mac));
        }
    }
    out
}

/// `net` with each owned address of `vmacs` answered with its virtual MAC.
fn with_vmacs(mut net: NetConfig, vmacs: &[(IpAddr, [u8; 6])]) -> NetConfig {
    for o in &mut net.owned {
        if let Some((_, mac)) = vmacs.iter().find(|(a, _)| *a == o.addr) {
            o.mac = Some(*mac);
        }
    }
    net
}

/// The control socket: one request line per connection (`list [--stats|--rate|...]`),
/// answered with the listing text. Root-only permissions.
fn start_control(
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
fn serve(stream: UnixStream, requests: &mpsc::Sender<Request>) -> io::Result<()> {
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
fn parse_request(line: &str) -> Result<Ask, String> {
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
fn ask_worker(requests: &mpsc::Sender<Request>, ask: Ask) -> Result<String, String> {
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

/// What the worker does between batches besides forwarding: health changes, reloads,
/// control requests.
struct ControlPlane<'a> {
    desired: &'a mut Desired,
    monitor: &'a Monitor,
    reloader: &'a mut Reloader,
    /// The probe path, once a check needs it.
    probe: Option<ProbePath>,
    /// Role changes from the failover thread, if there is one.
    roles: Option<RoleChanges>,
    /// Which addresses the director owns now.
    ownership: Ownership,
    /// The network with every configured address owned (the engine gets it filtered).
    net: NetConfig,
    /// The connection-sync daemons (configured, or started by rvsadm).
    sync: SyncDaemons,
    /// VRRP virtual MACs (`use_vmac`) of owned addresses.
    vmacs: Vec<(IpAddr, [u8; 6])>,
    /// When to re-announce the owned addresses because another host claimed one.
    defend_at: Option<Instant>,
    /// When they were last re-announced for that.
    defended: Option<Instant>,
    /// When the failover protocol last had them announced (takeover, refresh).
    announced: Option<Instant>,
    /// Per interface: name, frames its RX ring saw, frames the kernel dropped because
    /// the ring was full (`PACKET_STATISTICS`, summed by [`ControlPlane::read_rings`]).
    rings: Vec<(String, u64, u64)>,
    /// When the ring counters were last read.
    rings_read: Instant,
    /// Builds the connection tables' memory off the packet path.
    provisioner: crate::provision::Provisioner,
}

impl ControlPlane<'_> {
    /// Act on the failover thread's decisions: own or disown addresses, announce them.
    fn apply_roles(&mut self, d: &mut Director, now: Instant) {
        let Some(roles) = &self.roles else {
            return;
        };
        for change in roles.drain() {
            match change {
                RoleChange::Own(addrs) => {
                    self.ownership.owning.extend(addrs);
                    d.set_net(self.ownership.filter(self.net.clone()));
                }
                RoleChange::Disown(addrs) => {
                    for a in addrs {
                        self.ownership.owning.remove(&a);
                    }
                    d.set_net(self.ownership.filter(self.net.clone()));
                }
                RoleChange::Announce { repeat, .. } => {
                    for _ in 0..repeat.max(1) {
                        d.announce(now);
                    }
                    self.announced = Some(now);
                }
            }
        }
        // The director that owns addresses runs the master sync daemon, the others the
        // backup (keepalived's lvs_sync_daemon on VRRP transitions).
        let owning = !self.ownership.owning.is_empty();
        self.sync.follow(d, owning, self.ownership.all);
    }

    /// Own `addrs` (from [`service_addresses_to_own`], for a change already installed):
    /// ARP / ND answered and announced at once. They stay owned until the next reload,
    /// which owns what the file says.
    fn own_service_addresses(
        &mut self,
        d: &mut Director,
        addrs: Vec<rvs_core::director::OwnedAddr>,
        now: Instant,
    ) {
        if addrs.is_empty() {
            return;
        }
        for o in addrs {
            tracing::info!(addr = %o.addr, "rvsadm: owning the new virtual service's address");
            self.net.owned.push(o);
        }
        d.set_net(self.ownership.filter(self.net.clone()));
        d.announce(now);
    }

    /// A reloaded network view: kept whole, given to the engine filtered by ownership, the
    /// owned addresses announced again.
    fn install_net(&mut self, d: &mut Director, net: NetConfig, now: Instant) {
        self.net = with_vmacs(net, &self.vmacs);
        d.set_net(self.ownership.filter(self.net.clone()));
        d.announce(now);
    }

    /// Open the probe path if a check travels the forwarding path and it is not open yet.
    /// Without it those checks fail (and say why); the daemon keeps running.
    fn ensure_probe_path(&mut self, d: &Director) {
        let Some(spec) = self.desired.health_spec() else {
            return;
        };
        let wanted = spec.services.iter().any(|s| {
            s.real_servers
                .iter()
                .any(|r| r.checks.iter().any(|c| c.target.via_vip))
        });
        if wanted && self.probe.is_none() {
            match ProbePath::open(d.probe_mtu()) {
                Ok(p) => self.probe = Some(p),
                Err(e) => tracing::error!(
                    "checks through the forwarding path (check_via_vip) cannot run: {e}"
                ),
            }
        }
    }

    /// Forward the `via_vip` checks' packets waiting on the probe device.
    fn forward_probes(&mut self, d: &mut Director, now: Instant, txs: &mut [Option<&mut TxRing>]) {
        let Some(p) = self.probe.as_mut() else {
            return;
        };
        let (monitor, base) = (self.monitor, self.desired.base());
        let who = |sport: u16| {
            let probes = monitor.probes.lock().unwrap_or_else(|e| e.into_inner());
            let &(service, addr, port) = probes.lookup(sport)?;
            let method = base
                .services
                .iter()
                .find(|s| s.key == service)?
                .real_servers
                .iter()
                .find(|r| r.addr == addr && r.port == port)?
                .method;
            Some((service, addr, port, method))
        };
        let send = |port: PortId, data: &[u8]| {
            if let Some(Some(t)) = txs.get_mut(usize::from(port.0)) {
                let _ = t.send(data, Some(&VirtioNetHdr::default()));
            }
        };
        if let Err(e) = p.drain(d, now, who, send) {
            tracing::warn!("probe device: {e}");
        }
    }

    /// Defend the owned addresses against another host's claim (RFC 5227 §2.4 (b)): with a
    /// failover protocol running, a claim — another master's gratuitous ARP in a split
    /// brain — is answered by re-announcing, [`DEFEND_DELAY`] later and only if this
    /// director still owns addresses then (a director that is stepping down has let them go
    /// by then), at most once per [`DEFEND_INTERVAL`]. A director that has itself just
    /// announced for its protocol (within [`DEFEND_HOLD`]: it is the one taking over) does
    /// not answer the other's defence, so the incumbent keeps its neighbours instead of the
    /// two re-announcing in turn. So neighbours end on the survivor whichever director hears
    /// the other first when the split heals.
    fn defend(&mut self, d: &mut Director, now: Instant) {
        if let Some(addr) = d.take_conflict()
            && self.roles.is_some()
            && self.defend_at.is_none()
            && self
                .announced
                .is_none_or(|t| now.saturating_since(t) >= DEFEND_HOLD)
            && self
                .defended
                .is_none_or(|t| now.saturating_since(t) >= DEFEND_INTERVAL)
        {
            tracing::info!(%addr, "another host claims an owned address; re-announcing");
            self.defend_at = Some(now + DEFEND_DELAY);
        }
        if let Some(at) = self.defend_at
            && now >= at
        {
            self.defend_at = None;
            if !self.ownership.owning.is_empty() {
                d.announce(now);
                self.defended = Some(now);
            }
        }
    }

    /// Install what the health monitor decided; reload on SIGHUP.
    fn housekeeping(&mut self, d: &mut Director, now: Instant) {
        self.provisioner.service(d);
        self.apply_roles(d, now);
        self.defend(d, now);
        self.sync.poll(d, now);
        if self.monitor.take_changed()
            && let Err(errs) = self.desired.refresh(d)
        {
            // Cannot happen for a valid base (the overlay only removes, quiesces, re-weights
            // and adds the sorry server); say so loudly if it does.
            let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            tracing::error!("health change not installed: {}", msgs.join("; "));
        }
        if self.reloader.hup.swap(false, Ordering::Relaxed) {
            // SIGHUP: the outcome goes to the log only.
            if let Ok((_, net)) =
                self.reloader
                    .reload_logged(d, self.desired, self.monitor, "SIGHUP")
            {
                self.install_net(d, net, now);
            }
            self.ensure_probe_path(d);
        }
    }

    /// `rvsadm --start-daemon`, `--stop-daemon` and `-L --daemon`, with ipvsadm's
    /// messages (libipvs `ipvs_strerror()`) and exit status 255.
    fn sync_request(&mut self, d: &mut Director, r: SyncRequest<'_>) -> Reply {
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

    /// Adds the RX rings' kernel counters (read and reset) to `rings`, at most every
    /// [`RING_STATS_EVERY`] (one `getsockopt` per interface).
    fn read_rings(&mut self, rxs: &[Option<&mut RxRing>], now: Instant, force: bool) {
        if !force && now.0.saturating_sub(self.rings_read.0) < RING_STATS_EVERY.as_nanos() as u64 {
            return;
        }
        self.rings_read = now;
        for (r, c) in rxs.iter().zip(self.rings.iter_mut()) {
            if let Some(Ok(s)) = r.as_ref().map(|r| r.stats()) {
                c.1 += u64::from(s.packets);
                c.2 += u64::from(s.drops);
            }
        }
    }

    /// Answer a control request.
    fn answer(&mut self, d: &mut Director, ask: Ask, now: Instant) -> Result<String, String> {
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

/// The director's own kernel addresses that `via_vip` health checks use as their source: per
/// family, the first address of the interface that owns a VIP of that family.
fn probe_sources(plan: &Plan) -> Vec<IpAddr> {
    let Ok(links) = rvs_sys::iface::all_addresses() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for (vip, dev) in &plan.owned {
        if out.iter().any(|a| a.is_ipv4() == vip.is_ipv4()) {
            continue;
        }
        if let Some((_, a, _)) = links
            .iter()
            .find(|(n, a, _)| n == dev && a.is_ipv4() == vip.is_ipv4() && !is_link_local(a))
        {
            out.push(*a);
        }
    }
    out
}

/// Which of the configured addresses (VIPs, the NAT router's floating IP) the director owns
/// now: all of them without failover, else those of the VRRP instances it is master of (or
/// all while pulse says it is active).
struct Ownership {
    all: bool,
    owning: HashSet<IpAddr>,
}

impl Ownership {
    fn filter(&self, mut net: NetConfig) -> NetConfig {
        if !self.all {
            net.owned.retain(|o| self.owning.contains(&o.addr));
        }
        net
    }
}

/// What a reload needs: the file, and the interfaces the running daemon is attached to.
struct Reloader {
    path: PathBuf,
    format: Option<load::Format>,
    config_id: Option<String>,
    interfaces: Vec<String>,
    /// `--strict`: refuse a file with warnings.
    strict: bool,
    /// The command line's overrides.
    tuning: crate::tuning::Tuning,
    /// Set by SIGHUP.
    hup: Arc<AtomicBool>,
}

impl Reloader {
    /// [`Reloader::reload`], with the outcome logged.
    fn reload_logged(
        &mut self,
        d: &mut Director,
        desired: &mut Desired,
        monitor: &Monitor,
        by: &str,
    ) -> Result<(String, NetConfig), String> {
        let r = self.reload(d, desired, monitor);
        match &r {
            Ok((msg, _)) => tracing::info!(by, "{msg}"),
            Err(e) => tracing::warn!(by, "reload refused, the running configuration stays: {e}"),
        }
        r
    }

    /// Read the file again and apply it atomically: established connections stay; a file
    /// that does not parse or validate is refused with its diagnostics and the running
    /// configuration keeps serving. Interfaces cannot change without a restart.
    fn reload(
        &mut self,
        d: &mut Director,
        desired: &mut Desired,
        monitor: &Monitor,
    ) -> Result<(String, NetConfig), String> {
        let (loaded, marks) = load::admit(
            &self.path,
            self.format,
            self.config_id.as_deref(),
            self.strict,
        )?;
        if !marks.read.is_empty() {
            tracing::info!("{marks}");
        }
        for w in &loaded.warnings {
            tracing::warn!(file = %w.path, line = w.line, column = w.column, "{}", w.message);
        }
        let mut plan = load::plan(&loaded).map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.tuning.apply(&mut plan.config);
        if plan.interfaces != self.interfaces {
            return Err(format!(
                "{}: the new configuration needs interfaces {:?}, the daemon runs on {:?}; \
                 restart it to change interfaces",
                self.path.display(),
                plan.interfaces,
                self.interfaces
            ));
        }
        let net = net_config(&plan).map_err(|e| e.to_string())?;
        // The health monitor learns the new checks first (servers that stay keep their
        // state), so the engine gets the new configuration already shaped by it.
        let report = match desired.install_with(
            d,
            plan.config.clone(),
            Some(loaded.health.clone()),
            monitor.now(),
        ) {
            Ok(r) => r,
            Err(errs) => {
                let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
                return Err(format!("{}: {}", self.path.display(), msgs.join("; ")));
            }
        };
        monitor.wake();
        Ok((
            format!(
                "reloaded {}: services +{} -{}, real servers +{} -{} ~{}",
                self.path.display(),
                report.services_added,
                report.services_removed,
                report.dests_added,
                report.dests_removed,
                report.dests_edited
            ),
            net,
        ))
    }
}

/// The Prometheus endpoint: `GET /metrics` over plain HTTP/1.x, one request per
/// connection; anything else gets 404.
fn start_metrics(
    addr: std::net::SocketAddr,
    requests: mpsc::Sender<Request>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = serve_metrics(stream, &requests);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    Ok(())
}

fn serve_metrics(stream: std::net::TcpStream, requests: &mpsc::Sender<Request>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut w = &stream;
    let path = first.split_whitespace().nth(1).unwrap_or("");
    if !first.starts_with("GET ") || (path != "/metrics" && !path.starts_with("/metrics?")) {
        return w.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n",
        );
    }
    match ask_worker(requests, Ask::Metrics) {
        Ok(body) => write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Err(e) => write!(
            w,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{e}",
            e.len()
        ),
    }
}
