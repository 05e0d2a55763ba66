//! The connection-sync daemons' I/O (IPVS sync protocol v1, [`rvs_core::sync`]), as the
//! kernel runs them (`net/netfilter/ipvs/ip_vs_sync.c`): a *master* daemon sends the
//! engine's sync records to the group (224.0.0.81:8848 by default, TTL 1) from the sync
//! interface; a *backup* daemon joins the group there and imports what it hears, so its
//! director's connection table is warm when it takes over. Either, both or neither run.
//! They are run by the data-plane worker between batches: the engine and its table are the
//! worker's alone. Their sockets are opened, and closed, off the worker: by the control
//! thread for `rvsadm --start-daemon` / `--stop-daemon`, by the `rvs-sync` thread for
//! configured daemons following the failover role; the worker only puts them in place or
//! takes them out. `-L --daemon` is answered from [`Published`] without the worker.
//!
//! Who starts them: the configuration (`lvs_sync_daemon` in keepalived.conf, `syncdaemon`
//! in lvs.cf) makes them follow the failover role — master while this director owns
//! addresses, backup otherwise (keepalived's `ipvs_syncd_master()` / `ipvs_syncd_backup()`
//! on VRRP transitions); without a failover protocol both run. Otherwise `rvsadm
//! --start-daemon` / `--stop-daemon` start and stop them, and `rvsadm -L --daemon` lists
//! them as ipvsadm does.
//!
//! Records are packed into messages up to `maxlen` bytes and sent as soon as the worker
//! looks (at most about a millisecond after the packet that made them while traffic flows),
//! rather than after the kernel's 2-second flush: a takeover should find every connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use rvs_config::failover::SyncSetup;
use rvs_config::ipvsadm::{DaemonOptions, DaemonState};
use rvs_core::director::{Director, SyncSettings};
use rvs_core::sync::{SyncMessage, SyncMessageBuilder};
use rvs_core::time::Instant;
use socket2::{Domain, Protocol, Socket, Type};

/// The backup's receive buffer when `sync_sock_size` is 0 (asked; the kernel doubles it):
/// about 5,000 full-size messages, half a second of a busy master.
pub const BACKUP_RECV_BUFFER: u32 = 4 << 20;

/// Sync traffic counters (both daemons, since the daemon started).
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncCounts {
    /// Messages sent.
    pub sent_messages: u64,
    /// Records sent.
    pub sent_records: u64,
    /// Messages received and accepted (syncid).
    pub received_messages: u64,
    /// Records imported.
    pub imported: u64,
    /// Records or messages refused.
    pub refused: u64,
    /// Messages the socket would not send.
    pub send_errors: u64,
    /// Messages from this director's own master, skipped (active-active directors run both
    /// daemons on one group).
    pub own_skipped: u64,
}

/// One running sync daemon: its socket and settings.
#[derive(Debug)]
pub struct SyncDaemon {
    state: DaemonState,
    sock: UdpSocket,
    setup: SyncSetup,
    dst: SocketAddr,
    maxlen: usize,
    buf: Vec<u8>,
    /// The sync interface's address: this director's own master sends from it.
    local: Ipv4Addr,
}

impl SyncDaemon {
    /// Open a master (sending) or backup (receiving) socket on `setup.interface`, its
    /// buffer as [`SyncDaemon::open_sized`] sets it with `sync_sock_size` 0.
    pub fn open(state: DaemonState, setup: &SyncSetup) -> io::Result<SyncDaemon> {
        SyncDaemon::open_sized(state, setup, 0)
    }

    /// Open a master (sending) or backup (receiving) socket on `setup.interface`.
    /// `sock_size` is the kernel's `sync_sock_size` sysctl: above 0 it sets the master's
    /// send buffer or the backup's receive buffer (`ip_vs_sync.c` `set_sock_size()`, as
    /// `SO_SNDBUF`/`SO_RCVBUF` would: doubled, capped by `wmem_max`/`rmem_max`). At 0 the
    /// kernel keeps the system's defaults; rvs keeps the master's but gives the backup
    /// [`BACKUP_RECV_BUFFER`]: the kernel's backup is a thread woken for each message,
    /// rvs's is read by the data-plane worker between batches, and with the default
    /// buffer (about 200 KiB) it lost ~3 % of 10,000 messages a second.
    pub fn open_sized(
        state: DaemonState,
        setup: &SyncSetup,
        sock_size: u32,
    ) -> io::Result<SyncDaemon> {
        let IpAddr::V4(group) = setup.group else {
            return Err(io::Error::other(
                "connection sync over IPv6 is not supported yet",
            ));
        };
        if rvs_sys::iface::if_index(&setup.interface).is_err() {
            // The kernel's ENODEV, as ipvsadm prints it (strerror).
            return Err(io::Error::new(io::ErrorKind::NotFound, "No such device"));
        }
        let local = rvs_sys::iface::addresses(&setup.interface)?
            .into_iter()
            .find_map(|(a, _)| match a {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .ok_or_else(|| {
                io::Error::other(format!(
                    "sync interface {} has no IPv4 address",
                    setup.interface
                ))
            })?;
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind_device(Some(setup.interface.as_bytes()))?;
        match state {
            DaemonState::Master => {
                // ip_vs_sync.c make_send_sock(): bound to the interface's address, sending to
                // the group with the configured TTL, no loopback.
                s.bind(&SocketAddr::new(local.into(), 0).into())?;
                s.set_multicast_if_v4(&local)?;
                s.set_multicast_ttl_v4(u32::from(setup.ttl))?;
                s.set_multicast_loop_v4(false)?;
                if sock_size > 0 {
                    s.set_send_buffer_size(sock_size as usize)?;
                }
            }
            DaemonState::Backup => {
                // make_receive_sock(): the port, joined to the group on the interface.
                s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), setup.port).into())?;
                if group.is_multicast() {
                    s.join_multicast_v4(&group, &local)?;
                }
                if sock_size > 0 {
                    s.set_recv_buffer_size(sock_size as usize)?;
                } else if let Err(e) =
                    rvs_sys::sockopt::force_recv_buffer(s.as_fd(), BACKUP_RECV_BUFFER)
                {
                    tracing::warn!(
                        "connection sync: the backup keeps the default receive buffer ({e}); \
                         set --sysctl sync_sock_size=BYTES if messages are lost"
                    );
                }
            }
        }
        s.set_nonblocking(true)?;
        Ok(SyncDaemon {
            state,
            sock: s.into(),
            setup: setup.clone(),
            dst: SocketAddr::new(setup.unicast_peer.unwrap_or(setup.group), setup.port),
            maxlen: usize::from(setup.maxlen.clamp(64, 65_000)),
            buf: vec![0; 65_536],
            local,
        })
    }

    /// The engine's settings for the master role.
    fn settings(&self) -> SyncSettings {
        SyncSettings {
            syncid: self.setup.syncid,
            ..SyncSettings::default()
        }
    }

    /// `ipvsadm -L --daemon`'s line of this daemon.
    pub fn line(&self) -> String {
        describe(self.state, &self.setup)
    }

    /// The daemon's socket (its buffer sizes are what tests look at).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The daemon's role.
    pub fn state(&self) -> DaemonState {
        self.state
    }

    /// Send every record the engine has queued.
    fn send(&mut self, d: &mut Director, counts: &mut SyncCounts, out: &mut [u8]) {
        let mut pending = d.poll_sync();
        while pending.is_some() {
            let Ok(mut b) = SyncMessageBuilder::new(&mut out[..self.maxlen], self.setup.syncid)
            else {
                return;
            };
            let mut n = 0u64;
            while let Some(r) = pending {
                if b.push(&r.to_conn()).is_err() {
                    break;
                }
                n += 1;
                pending = d.poll_sync();
            }
            if n == 0 {
                // A record that cannot fit any message: drop it, count it.
                counts.refused += 1;
                pending = d.poll_sync();
                continue;
            }
            let msg = b.finish();
            match self.sock.send_to(msg, self.dst) {
                Ok(_) => {
                    counts.sent_messages += 1;
                    counts.sent_records += n;
                }
                Err(e) => {
                    // Logged at the 1st, 2nd, 4th, 8th… failure: counted, never per packet.
                    counts.send_errors += 1;
                    if counts.send_errors.is_power_of_two() {
                        let n = counts.send_errors;
                        tracing::warn!(dst = %self.dst, failures = n, "sync: send: {e}");
                    }
                }
            }
        }
    }

    /// Import every message waiting.
    fn receive(&mut self, d: &mut Director, now: Instant, counts: &mut SyncCounts) {
        for _ in 0..256 {
            let n = match self.sock.recv_from(&mut self.buf) {
                // This director's own master: the kernel keeps it from its own backup by
                // turning multicast loopback off on the sending socket (ip_vs_sync.c
                // make_send_sock() → set_mcast_loop(sk, 0)); rvs does too, and also skips
                // by source address, which covers a unicast peer list that names this
                // director and active-active directors that run both daemons at once.
                Ok((_, from)) if from.ip() == IpAddr::V4(self.local) => {
                    counts.own_skipped += 1;
                    continue;
                }
                Ok((n, _)) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("sync: receive: {e}");
                    return;
                }
            };
            let msg = match SyncMessage::parse(&self.buf[..n]) {
                Ok(m) if m.accepted_by(self.setup.syncid) => m,
                Ok(_) => continue,
                Err(_) => {
                    counts.refused += 1;
                    continue;
                }
            };
            counts.received_messages += 1;
            for c in msg.conns() {
                match c {
                    Ok(c) => match d.sync_import(now, &c) {
                        Ok(()) => counts.imported += 1,
                        Err(_) => counts.refused += 1,
                    },
                    Err(e) => {
                        counts.refused += 1;
                        if e.is_fatal() {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// What `ipvsadm -L --daemon` shows: the master's line, the backup's. Kept by whoever
/// starts and stops the daemons off the worker (the control thread for rvsadm's, the
/// sync thread for configured ones); the worker never locks it.
#[derive(Clone, Default)]
pub struct Published {
    lines: Arc<Mutex<[Option<String>; 2]>>,
    /// The configuration runs the daemons (rvsadm may not start or stop them).
    pub configured: bool,
}

impl Published {
    /// The lines, locked (rvsadm holds it from its check to its change).
    pub fn lock(&self) -> MutexGuard<'_, [Option<String>; 2]> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `ipvsadm -L --daemon`: the master's line, then the backup's.
    pub fn listing(&self) -> String {
        self.lock().iter().flatten().map(String::as_str).collect()
    }
}

/// Index of a daemon in [`Published`]'s lines and the worker's slots.
pub fn index(state: DaemonState) -> usize {
    match state {
        DaemonState::Master => 0,
        DaemonState::Backup => 1,
    }
}

/// How long after a failed open a configured daemon is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// What the worker asks of the sync thread (configured daemons).
#[derive(Debug)]
enum Job {
    /// Open this daemon's socket and hand it back.
    Open(DaemonState),
    /// The worker put this daemon in place: log it, publish its line.
    Started(DaemonState),
    /// The worker took this daemon out (or did not use it): log, unpublish, close.
    Retire(Box<SyncDaemon>, bool),
    /// The engine refused the master role: log why, close.
    Refused(Box<SyncDaemon>, String),
}

/// The worker's end of the sync thread.
struct Side {
    jobs: mpsc::Sender<Job>,
    opened: mpsc::Receiver<(DaemonState, io::Result<SyncDaemon>)>,
    /// Per daemon: what the failover role wants, an open asked for, when one last failed.
    want: [bool; 2],
    pending: [bool; 2],
    failed: [Option<std::time::Instant>; 2],
}

/// The sync thread of configured daemons: opens their sockets when the worker asks (so
/// the worker does no socket set-up on a role change), logs, publishes `-L --daemon`'s
/// lines and closes what the worker hands back. Ends when the worker's end is dropped.
fn start_side(setup: SyncSetup, sock_size: u32, published: Published) -> io::Result<Side> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let (tx, opened) = mpsc::channel();
    std::thread::Builder::new()
        .name("rvs-sync".into())
        .spawn(move || {
            for job in rx {
                match job {
                    Job::Open(state) => {
                        let r = SyncDaemon::open_sized(state, &setup, sock_size);
                        if let Err(e) = &r {
                            tracing::error!("connection sync: {e}");
                        }
                        if tx.send((state, r)).is_err() {
                            return;
                        }
                    }
                    Job::Started(state) => {
                        let line = describe(state, &setup);
                        tracing::info!("connection sync: started {}", line.trim_end());
                        published.lock()[index(state)] = Some(line);
                    }
                    Job::Retire(s, was_running) => {
                        if was_running {
                            tracing::info!(interface = %s.setup.interface, "connection sync: stopped {:?} daemon", s.state);
                            published.lock()[index(s.state)] = None;
                        }
                    }
                    Job::Refused(s, why) => {
                        tracing::error!("connection sync: {:?} daemon not started: {why}", s.state);
                    }
                }
            }
        })?;
    Ok(Side {
        jobs,
        opened,
        want: [false; 2],
        pending: [false; 2],
        failed: [None; 2],
    })
}

/// The master and backup daemons of one director, as the worker holds them.
#[derive(Default)]
pub struct SyncDaemons {
    master: Option<SyncDaemon>,
    backup: Option<SyncDaemon>,
    /// The configuration's daemons follow the failover role, opened by the sync thread.
    side: Option<Side>,
    /// What `-L --daemon` shows (never locked by the worker).
    published: Published,
    /// What they have done.
    pub counts: SyncCounts,
    out: Vec<u8>,
}

impl SyncDaemons {
    /// Daemons that follow the configuration's `setup` (see [`SyncDaemons::follow`]), or
    /// none until `rvsadm --start-daemon`. Checks now that the sync interface can be used.
    pub fn new(setup: Option<SyncSetup>) -> io::Result<SyncDaemons> {
        SyncDaemons::new_sized(setup, 0)
    }

    /// [`SyncDaemons::new`] with the `sync_sock_size` sysctl (see [`SyncDaemon::open_sized`]).
    pub fn new_sized(setup: Option<SyncSetup>, sock_size: u32) -> io::Result<SyncDaemons> {
        let published = Published {
            configured: setup.is_some(),
            ..Published::default()
        };
        let side = match setup {
            Some(s) => {
                // Fail at start, not at the first takeover, on a bad interface.
                SyncDaemon::open_sized(DaemonState::Backup, &s, sock_size)?;
                SyncDaemon::open_sized(DaemonState::Master, &s, sock_size)?;
                Some(start_side(s, sock_size, published.clone())?)
            }
            None => None,
        };
        Ok(SyncDaemons {
            side,
            published,
            out: vec![0; 65_536],
            ..SyncDaemons::default()
        })
    }

    /// What `-L --daemon` shows, for the control threads.
    pub fn published(&self) -> Published {
        self.published.clone()
    }

    /// Whether the configuration runs the daemons.
    pub fn configured(&self) -> bool {
        self.side.is_some()
    }

    /// Configured daemons follow the failover role: master while this director owns
    /// addresses, backup while it stands by (keepalived stops one before starting the
    /// other on each VRRP transition); both when no failover protocol decides. A daemon
    /// to stop is taken out at once (its socket closed by the sync thread); one to start
    /// is asked of the sync thread, and put in place when its socket comes back
    /// ([`SyncDaemons::poll`]) if the role still wants it.
    pub fn follow(&mut self, d: &mut Director, owning: bool, always_active: bool) {
        let Some(side) = &mut self.side else {
            return;
        };
        side.want = if always_active {
            [true, true]
        } else {
            [owning, !owning]
        };
        for state in [DaemonState::Master, DaemonState::Backup] {
            let i = index(state);
            let slot = match state {
                DaemonState::Master => &mut self.master,
                DaemonState::Backup => &mut self.backup,
            };
            if side.want[i] && slot.is_none() {
                let may = side.failed[i].is_none_or(|t| t.elapsed() >= RETRY);
                if !side.pending[i] && may {
                    side.pending[i] = true;
                    let _ = side.jobs.send(Job::Open(state));
                }
            } else if !side.want[i]
                && let Some(s) = slot.take()
            {
                if state == DaemonState::Master {
                    let _ = d.set_sync(None);
                }
                let _ = side.jobs.send(Job::Retire(Box::new(s), true));
            }
        }
    }

    /// Put in place the configured daemons whose sockets the sync thread opened.
    fn collect(&mut self, d: &mut Director) {
        let Some(side) = &mut self.side else {
            return;
        };
        while let Ok((state, r)) = side.opened.try_recv() {
            let i = index(state);
            side.pending[i] = false;
            let s = match r {
                Ok(s) => s,
                Err(_) => {
                    side.failed[i] = Some(std::time::Instant::now());
                    continue;
                }
            };
            let slot = match state {
                DaemonState::Master => &mut self.master,
                DaemonState::Backup => &mut self.backup,
            };
            if !side.want[i] || slot.is_some() {
                let _ = side.jobs.send(Job::Retire(Box::new(s), false));
                continue;
            }
            if state == DaemonState::Master
                && let Err(e) = d.set_sync(Some(s.settings()))
            {
                side.failed[i] = Some(std::time::Instant::now());
                let _ = side.jobs.send(Job::Refused(Box::new(s), format!("{e:?}")));
                continue;
            }
            *slot = Some(s);
            let _ = side.jobs.send(Job::Started(state));
        }
    }

    fn slot(&mut self, state: DaemonState) -> &mut Option<SyncDaemon> {
        match state {
            DaemonState::Master => &mut self.master,
            DaemonState::Backup => &mut self.backup,
        }
    }

    /// Put in place a daemon opened beforehand (`rvsadm --start-daemon`: a control
    /// thread opens it, checks, logs and publishes, so the worker does no socket set-up):
    /// refused, with the daemon handed back, when one runs (the kernel's `EEXIST`) or the
    /// engine refuses the master role.
    pub fn put(
        &mut self,
        d: &mut Director,
        state: DaemonState,
        s: Box<SyncDaemon>,
    ) -> Result<(), (StartError, Box<SyncDaemon>)> {
        if self.slot(state).is_some() {
            return Err((StartError::Running, s));
        }
        if state == DaemonState::Master
            && let Err(e) = d.set_sync(Some(s.settings()))
        {
            return Err((StartError::Open(io::Error::other(format!("{e:?}"))), s));
        }
        *self.slot(state) = Some(*s);
        Ok(())
    }

    /// Take the `state` daemon out (`rvsadm --stop-daemon`), for the caller to close off
    /// the worker; None when none runs.
    pub fn take(&mut self, d: &mut Director, state: DaemonState) -> Option<SyncDaemon> {
        let s = self.slot(state).take()?;
        if state == DaemonState::Master {
            let _ = d.set_sync(None);
        }
        Some(s)
    }

    /// The backup's socket, for the worker's poll set.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.backup.as_ref().map(|s| s.sock.as_fd())
    }

    /// Put in place what the sync thread opened, import what the backup daemon heard, send
    /// what the engine queued for the master.
    pub fn poll(&mut self, d: &mut Director, now: Instant) {
        self.collect(d);
        if let Some(b) = self.backup.as_mut() {
            b.receive(d, now, &mut self.counts);
        }
        if let Some(m) = self.master.as_mut() {
            m.send(d, &mut self.counts, &mut self.out);
        }
    }
}

/// `ipvsadm -L --daemon`'s line (ipvsadm 1.31 `list_daemon()`: the kernel reports every
/// field of a running daemon).
pub fn describe(state: DaemonState, setup: &SyncSetup) -> String {
    format!(
        "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})\n",
        match state {
            DaemonState::Master => "master",
            DaemonState::Backup => "backup",
        },
        setup.interface,
        setup.syncid,
        setup.maxlen,
        setup.unicast_peer.unwrap_or(setup.group),
        setup.port,
        setup.ttl
    )
}

/// Why a daemon did not start.
#[derive(Debug)]
pub enum StartError {
    /// One runs already (ipvsadm: "Daemon has already run").
    Running,
    /// Its socket could not be set up.
    Open(io::Error),
}

/// `--start-daemon`'s options as a sync setup (the kernel's defaults where none is given:
/// `start_sync_thread()` — group 224.0.0.81, port 8848, TTL 1, maxlen the interface MTU
/// less 28).
pub fn setup_of(o: &DaemonOptions) -> SyncSetup {
    let mut s = SyncSetup::new(o.mcast_interface.clone(), o.syncid);
    if let Ok(mtu) = rvs_sys::iface::mtu(&o.mcast_interface) {
        s.maxlen = u16::try_from(mtu.saturating_sub(28)).unwrap_or(u16::MAX);
    }
    if let Some(l) = o.sync_maxlen {
        s.maxlen = l;
    }
    if let Some(g) = o.mcast_group {
        s.group = g;
    }
    if let Some(p) = o.mcast_port {
        s.port = p;
    }
    if let Some(t) = o.mcast_ttl {
        s.ttl = t;
    }
    s
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Running => f.write_str("Daemon has already run"),
            StartError::Open(e) => write!(f, "{e}"),
        }
    }
}
