//! The connection-sync daemons' I/O (IPVS sync protocol v1, [`rvs_core::sync`]), as the
//! kernel runs them (`net/netfilter/ipvs/ip_vs_sync.c`): a *master* daemon sends the
//! engine's sync records to the group (224.0.0.81:8848 by default, TTL 1) from the sync
//! interface; a *backup* daemon joins the group there and imports what it hears, so its
//! director's connection table is warm when it takes over. Either, both or neither run.
//! They are run by the data-plane worker between batches: the engine and its table are the
//! worker's alone.
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

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use rvs_config::failover::SyncSetup;
use rvs_config::ipvsadm::{DaemonOptions, DaemonState};
use rvs_core::director::{Director, SyncSettings};
use rvs_core::sync::{SyncMessage, SyncMessageBuilder};
use rvs_core::time::Instant;
use socket2::{Domain, Protocol, Socket, Type};

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
    /// Open a master (sending) or backup (receiving) socket on `setup.interface`.
    pub fn open(state: DaemonState, setup: &SyncSetup) -> io::Result<SyncDaemon> {
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
            }
            DaemonState::Backup => {
                // make_receive_sock(): the port, joined to the group on the interface.
                s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), setup.port).into())?;
                if group.is_multicast() {
                    s.join_multicast_v4(&group, &local)?;
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

    /// `ipvsadm -L --daemon`'s line (ipvsadm 1.31 `list_daemon()`: the kernel reports every
    /// field of a running daemon).
    fn describe(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
            match self.state {
                DaemonState::Master => "master",
                DaemonState::Backup => "backup",
            },
            self.setup.interface,
            self.setup.syncid,
            self.setup.maxlen,
            self.setup.unicast_peer.unwrap_or(self.setup.group),
            self.setup.port,
            self.setup.ttl
        );
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

/// The master and backup daemons of one director.
#[derive(Default)]
pub struct SyncDaemons {
    master: Option<SyncDaemon>,
    backup: Option<SyncDaemon>,
    /// The configuration's sync setup: the daemons follow the failover role.
    configured: Option<SyncSetup>,
    /// What they have done.
    pub counts: SyncCounts,
    out: Vec<u8>,
}

impl SyncDaemons {
    /// Daemons that follow the configuration's `setup` (see [`SyncDaemons::follow`]), or
    /// none until `rvsadm --start-daemon`. Checks now that the sync interface can be used.
    pub fn new(setup: Option<SyncSetup>) -> io::Result<SyncDaemons> {
        if let Some(s) = &setup {
            // Fail at start, not at the first takeover, on a bad interface.
            SyncDaemon::open(DaemonState::Backup, s)?;
            SyncDaemon::open(DaemonState::Master, s)?;
        }
        Ok(SyncDaemons {
            configured: setup,
            out: vec![0; 65_536],
            ..SyncDaemons::default()
        })
    }

    /// Whether the configuration runs the daemons.
    pub fn configured(&self) -> bool {
        self.configured.is_some()
    }

    /// Configured daemons follow the failover role: master while this director owns
    /// addresses, backup while it stands by (keepalived stops one before starting the
    /// other on each VRRP transition); both when no failover protocol decides.
    pub fn follow(&mut self, d: &mut Director, owning: bool, always_active: bool) {
        let Some(setup) = self.configured.clone() else {
            return;
        };
        let (master, backup) = if always_active {
            (true, true)
        } else {
            (owning, !owning)
        };
        for (state, want) in [(DaemonState::Master, master), (DaemonState::Backup, backup)] {
            let running = self.slot(state).is_some();
            if want && !running {
                if let Err(e) = self.start(d, state, &setup) {
                    tracing::error!("connection sync: {e}");
                }
            } else if !want && running {
                let _ = self.stop(d, state);
            }
        }
    }

    fn slot(&mut self, state: DaemonState) -> &mut Option<SyncDaemon> {
        match state {
            DaemonState::Master => &mut self.master,
            DaemonState::Backup => &mut self.backup,
        }
    }

    /// Start the `state` daemon on `setup`.
    pub fn start(
        &mut self,
        d: &mut Director,
        state: DaemonState,
        setup: &SyncSetup,
    ) -> Result<(), StartError> {
        if self.slot(state).is_some() {
            return Err(StartError::Running);
        }
        self.install(d, state, SyncDaemon::open(state, setup))
    }

    /// Start the `state` daemon with a socket opened beforehand (`rvsadm --start-daemon`:
    /// a control thread opens it, so the worker does no socket set-up). The checks come in
    /// the kernel's order (`start_sync_thread()`: one running is `EEXIST` before the
    /// device is looked up); a socket not used is closed.
    pub fn install(
        &mut self,
        d: &mut Director,
        state: DaemonState,
        opened: io::Result<SyncDaemon>,
    ) -> Result<(), StartError> {
        if self.slot(state).is_some() {
            return Err(StartError::Running);
        }
        let s = opened.map_err(StartError::Open)?;
        if state == DaemonState::Master {
            d.set_sync(Some(s.settings()))
                .map_err(|e| StartError::Open(io::Error::other(format!("{e:?}"))))?;
        }
        let mut line = String::new();
        s.describe(&mut line);
        tracing::info!("connection sync: started {}", line.trim_end());
        *self.slot(state) = Some(s);
        Ok(())
    }

    /// Stop the `state` daemon; false when none runs.
    pub fn stop(&mut self, d: &mut Director, state: DaemonState) -> bool {
        let Some(s) = self.slot(state).take() else {
            return false;
        };
        if state == DaemonState::Master {
            let _ = d.set_sync(None);
        }
        tracing::info!(interface = %s.setup.interface, "connection sync: stopped {state:?} daemon");
        true
    }

    /// The backup's socket, for the worker's poll set.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.backup.as_ref().map(|s| s.sock.as_fd())
    }

    /// Import what the backup daemon heard, send what the engine queued for the master.
    pub fn poll(&mut self, d: &mut Director, now: Instant) {
        if let Some(b) = self.backup.as_mut() {
            b.receive(d, now, &mut self.counts);
        }
        if let Some(m) = self.master.as_mut() {
            m.send(d, &mut self.counts, &mut self.out);
        }
    }

    /// `ipvsadm -L --daemon`: the master's line, then the backup's.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for s in [&self.master, &self.backup].into_iter().flatten() {
            s.describe(&mut out);
        }
        out
    }
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
