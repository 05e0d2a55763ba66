//! Director failover: the daemon's half of [`rvs_core::vrrp`] and [`rvs_core::pulse`].
//!
//! One thread owns the protocol engine and its sockets — VRRP's raw IP sockets (protocol
//! 112, the multicast group joined on each instance's interface, TTL 255; protocol 51 with
//! `IP_HDRINCL` for `auth_type AH` instances), or pulse's UDP
//! heartbeat socket — and tells the data-plane worker which addresses this director owns
//! ([`RoleChange`]) through a channel, waking it through a socket pair in its poll set so a
//! takeover never waits for the worker's idle timeout. The worker answers ARP/ND only for
//! owned addresses and sends the gratuitous ARPs / unsolicited NAs the engine asks for
//! ([`RoleChange::Announce`]). Notify scripts (`notify_master`, `notify_backup`,
//! `notify_fault`, `notify_stop`, `notify`, pulse's `active_cmd` / `inactive_cmd`) run
//! without being waited for through [`crate::scripts`] (keepalived's without a shell, as
//! their user; pulse's through the shell).
//!
//! On SIGTERM the engine resigns (VRRP priority 0, pulse STOPPED) so a backup takes over at
//! once; `kill -9` leaves the backup to notice the silence (Master_Down_Interval, deadtime).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rvs_config::failover::{FailoverConfig, FailoverMode, PulseSetup, VrrpSetup};
use rvs_core::pulse::{HeartbeatError, HeartbeatTransmit, Pulse, PulseConfig, PulseEvent};
use rvs_core::time::Instant;
use rvs_core::vrrp::ah::{self, IP_PROTO_AH};
use rvs_core::vrrp::group::{GroupState, RouterId, Vrrp, VrrpEvent};
use rvs_core::vrrp::packet::{Auth, Family, IP_PROTO_VRRP, MCAST_V4, MCAST_V6, TTL, peek_vrid};
use rvs_core::vrrp::router::{Event, State};

use crate::failover_status::{FailoverStatus, InstanceStatus, Published, PulseStatus};
use crate::vrrp_track::Tracker;
use socket2::{Domain, Protocol, Socket, Type};

/// What the failover thread tells the data-plane worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    /// Own these addresses (answer ARP/ND, forward for them).
    Own(Vec<IpAddr>),
    /// Stop owning these addresses.
    Disown(Vec<IpAddr>),
    /// Announce these addresses `repeat` times (gratuitous ARP / unsolicited NA).
    Announce {
        /// The addresses.
        addrs: Vec<IpAddr>,
        /// Announcements per address.
        repeat: u32,
    },
}

/// The worker's end: role changes and the wake-up socket for its poll set.
pub struct RoleChanges {
    rx: mpsc::Receiver<RoleChange>,
    wake: UnixDatagram,
    status: Published,
}

impl RoleChanges {
    /// The failover thread's latest snapshot (`rvs list --failover`, metrics).
    pub fn status(&self) -> FailoverStatus {
        self.status.get()
    }

    /// The shared snapshot itself, for readers on other threads (the control threads).
    pub fn published(&self) -> Published {
        self.status.clone()
    }

    /// The socket that becomes readable when a change is waiting.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// The changes waiting, in order.
    pub fn drain(&self) -> Vec<RoleChange> {
        let mut buf = [0u8; 64];
        while self.wake.recv(&mut buf).is_ok() {}
        self.rx.try_iter().collect()
    }
}

/// The failover thread's end.
pub(crate) struct Notifier {
    tx: mpsc::Sender<RoleChange>,
    wake: UnixDatagram,
    pub(crate) status: Published,
}

impl Notifier {
    pub(crate) fn send(&self, c: RoleChange) {
        if self.tx.send(c).is_ok() {
            let _ = self.wake.send(&[1]);
        }
    }
}

/// The running failover thread.
pub struct Failover {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Failover {
    /// Start failover as `cfg` says; `None` when the configuration has none (the director
    /// then owns its addresses from the start). `clock` is the daemon's clock epoch.
    pub fn start(
        cfg: &FailoverConfig,
        owned: &[IpAddr],
        clock: std::time::Instant,
    ) -> io::Result<Option<(Failover, RoleChanges)>> {
        let (tx, rx) = mpsc::channel();
        let (a, b) = UnixDatagram::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        let status = Published::default();
        let notifier = Notifier {
            tx,
            wake: b,
            status: status.clone(),
        };
        let changes = RoleChanges {
            rx,
            wake: a,
            status,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = match &cfg.mode {
            FailoverMode::None => return Ok(None),
            FailoverMode::Vrrp(setup) => {
                let runner = VrrpRunner::new(setup, clock, notifier)?;
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("rvs-vrrp".into())
                    .spawn(move || runner.run(&stop))?
            }
            FailoverMode::Pulse(setup) => {
                let runner = PulseRunner::new(setup, owned.to_vec(), clock, notifier)?;
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("rvs-pulse".into())
                    .spawn(move || runner.run(&stop))?
            }
            FailoverMode::Fos(setup) => {
                let runner = crate::fos::FosRunner::new(setup, clock, notifier)?;
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("rvs-fos".into())
                    .spawn(move || runner.run(&stop))?
            }
        };
        Ok(Some((
            Failover {
                stop,
                thread: Some(thread),
            },
            changes,
        )))
    }

    /// Resign (priority-0 adverts, a STOPPED heartbeat) and end the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn now(clock: std::time::Instant) -> Instant {
    Instant(clock.elapsed().as_nanos() as u64)
}

/// Run pulse's `active_cmd` / `inactive_cmd` through the shell, as pulse's `system()`,
/// without waiting for it ([`crate::scripts::spawn`]).
pub(crate) fn run_hook(what: &'static str, command: &str) {
    crate::scripts::spawn(crate::scripts::Job::shell(what, command));
}

/// Run a keepalived notify script (with `args` appended) without waiting for it.
fn notify(what: &'static str, script: &rvs_config::Script, args: &[&str]) {
    crate::scripts::spawn(crate::scripts::Job::keepalived(what, script, args));
}

/// The longest a failover thread sleeps without looking at its stop flag.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// A received advertisement: source, destination, TTL, the VRRP bytes.
type Received<'b> = (IpAddr, IpAddr, u8, &'b [u8]);

/// A raw VRRP socket on one interface. Set up through socket2; IPv4 adverts are read with
/// `recvfrom` (the IP header comes with them), IPv6 ones with `recvmsg` and their
/// destination and hop limit as control messages; both are sent with `sendmsg` from the
/// instance's primary address ([`rvs_sys::pktinfo`]) — VRRP's checksum covers it, and IPv6
/// adverts must leave from the link-local address whatever the kernel would pick.
///
/// Instances with `auth_type AH` get their own socket per interface, as keepalived opens
/// one per protocol: raw IPv4 protocol 51 (AH), joined to the group like the other, whose
/// received packets go whole to the engine (the ICV covers the IP header) and which sends
/// the engine's whole packets with `IP_HDRINCL`.
struct VrrpSocket {
    sock: UdpSocket,
    family: Family,
    ifindex: u32,
    ah: bool,
}

impl VrrpSocket {
    fn open(interface: &str, family: Family, src: IpAddr, ah: bool) -> io::Result<VrrpSocket> {
        let proto = Protocol::from(i32::from(if ah { IP_PROTO_AH } else { IP_PROTO_VRRP }));
        let ifindex = rvs_sys::iface::if_index(interface)?;
        let sock = match family {
            Family::Ipv4 => {
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(proto))?;
                s.bind_device(Some(interface.as_bytes()))?;
                if ah {
                    // keepalived builds the whole IPv4 packet too (vrrp_build_ip4).
                    s.set_header_included_v4(true)?;
                }
                let IpAddr::V4(src4) = src else {
                    return Err(io::Error::other("IPv4 instance with an IPv6 source"));
                };
                // Not bound to the source address: a raw socket bound to an address only
                // receives packets sent to it, and adverts go to the group. IP_MULTICAST_IF
                // makes the interface's address the source.
                s.join_multicast_v4(&MCAST_V4, &src4)?;
                s.set_multicast_if_v4(&src4)?;
                s.set_multicast_ttl_v4(u32::from(TTL))?;
                s.set_ttl_v4(u32::from(TTL))?;
                s.set_multicast_loop_v4(false)?;
                s
            }
            Family::Ipv6 => {
                let s = Socket::new(Domain::IPV6, Type::RAW, Some(proto))?;
                s.bind_device(Some(interface.as_bytes()))?;
                rvs_sys::pktinfo::recv_info_v6(s.as_fd())?;
                // The link-local source may still be tentative (DAD) right after the link
                // comes up; adverts must leave from it all the same.
                rvs_sys::pktinfo::freebind_v6(s.as_fd())?;
                s.join_multicast_v6(&MCAST_V6, ifindex)?;
                s.set_multicast_if_v6(ifindex)?;
                s.set_multicast_hops_v6(u32::from(TTL))?;
                s.set_unicast_hops_v6(u32::from(TTL))?;
                s.set_multicast_loop_v6(false)?;
                s
            }
        };
        sock.set_nonblocking(true)?;
        Ok(VrrpSocket {
            sock: UdpSocket::from(sock),
            family,
            ifindex,
            ah,
        })
    }

    /// AH: one received IPv4 packet, whole, or None when nothing is waiting.
    fn recv_whole<'b>(&self, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        match self.sock.recv_from(buf) {
            Ok((n, _)) => Ok(Some(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// AH: send a whole IPv4 packet (its header says source and destination).
    fn send_whole(&self, dst: IpAddr, packet: &[u8]) -> io::Result<()> {
        let IpAddr::V4(d) = dst else {
            return Err(io::Error::other("AH advert to an IPv6 destination"));
        };
        self.sock.send_to(packet, SocketAddrV4::new(d, 0)).map(drop)
    }

    /// One received advertisement: (source, destination, TTL, VRRP bytes), or None when
    /// nothing is waiting. IPv4 raw sockets deliver the IP header; IPv6 ones give the
    /// destination and hop limit as control messages (a datagram without them is refused
    /// by the engine: destination unspecified, hop limit 0).
    fn recv<'b>(&self, buf: &'b mut [u8]) -> io::Result<Option<Received<'b>>> {
        if self.family == Family::Ipv6 {
            let got = match rvs_sys::pktinfo::recv_v6(self.sock.as_fd(), buf) {
                Ok(g) => g,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            };
            return Ok(Some((
                IpAddr::V6(*got.src.ip()),
                IpAddr::V6(got.dst.unwrap_or(std::net::Ipv6Addr::UNSPECIFIED)),
                got.hop_limit.unwrap_or(0),
                &buf[..got.len],
            )));
        }
        let (n, _) = match self.sock.recv_from(buf) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        let data = &buf[..n];
        match self.family {
            Family::Ipv4 => {
                if n < 20 {
                    return Ok(Some((
                        Ipv4Addr::UNSPECIFIED.into(),
                        Ipv4Addr::UNSPECIFIED.into(),
                        0,
                        &[],
                    )));
                }
                let ihl = usize::from(data[0] & 0x0f) * 4;
                let ttl = data[8];
                let src = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
                let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
                Ok(Some((
                    src.into(),
                    dst.into(),
                    ttl,
                    data.get(ihl..).unwrap_or(&[]),
                )))
            }
            Family::Ipv6 => unreachable!("read above"),
        }
    }

    /// Send `payload` to `dst` from `src` (the instance's primary address).
    fn send(&self, dst: IpAddr, src: IpAddr, payload: &[u8]) -> io::Result<()> {
        use rvs_sys::pktinfo::{send_v4_from, send_v6_from};
        let fd = self.sock.as_fd();
        match (dst, src) {
            (IpAddr::V4(d), IpAddr::V4(s)) => {
                send_v4_from(fd, payload, SocketAddrV4::new(d, 0), s, self.ifindex)
            }
            (IpAddr::V6(d), IpAddr::V6(s)) => {
                send_v6_from(fd, payload, SocketAddrV6::new(d, 0, 0, 0), s, self.ifindex)
            }
            _ => Err(io::Error::other("advert and source of different families")),
        }
        .map(drop)
    }
}

/// The VRRP side: every instance of the configuration in one engine.
struct VrrpRunner {
    vrrp: Vrrp,
    clock: std::time::Instant,
    notifier: Notifier,
    /// Per router: its socket (index into `sockets`), name, addresses, scripts.
    routers: Vec<RouterIo>,
    sockets: Vec<VrrpSocket>,
    groups: Vec<GroupIo>,
    /// `track_interface` and `track_script` objects.
    tracker: Tracker,
}

struct RouterIo {
    socket: usize,
    interface: String,
    name: String,
    addresses: Vec<IpAddr>,
    notify_master: Option<rvs_config::Script>,
    notify_backup: Option<rvs_config::Script>,
    notify_fault: Option<rvs_config::Script>,
    notify_stop: Option<rvs_config::Script>,
    notify: Option<rvs_config::Script>,
}

struct GroupIo {
    name: String,
    notify_master: Option<rvs_config::Script>,
    notify_backup: Option<rvs_config::Script>,
    notify_fault: Option<rvs_config::Script>,
    notify_stop: Option<rvs_config::Script>,
    notify: Option<rvs_config::Script>,
}

impl VrrpRunner {
    fn new(setup: &VrrpSetup, clock: std::time::Instant, notifier: Notifier) -> io::Result<Self> {
        let mut vrrp = Vrrp::new();
        let mut sockets: Vec<VrrpSocket> = Vec::new();
        let mut by_iface: HashMap<(String, Family, bool), usize> = HashMap::new();
        let mut routers = Vec::new();
        let disabled = crate::vrrp_track::disabled_scripts(setup);
        for inst in &setup.instances {
            let mut cfg = inst.router.clone();
            // A disabled script leaves the track list: as a track that is always up with
            // weight 0, it neither faults the instance nor moves its priority.
            for (k, name) in inst.track_scripts.iter().enumerate() {
                if disabled.contains(name)
                    && let Some(t) = cfg.tracks.get_mut(inst.track_interfaces.len() + k)
                {
                    *t = rvs_core::vrrp::Track {
                        weight: 0,
                        reverse: false,
                        initially_up: true,
                    };
                }
            }
            let family = if cfg.primary_ip.is_ipv4() {
                Family::Ipv4
            } else {
                Family::Ipv6
            };
            if inst.primary_from_interface {
                cfg.primary_ip = primary_address(&inst.interface, family)?;
            }
            let ah = matches!(cfg.auth, Auth::Ah(_));
            let key = (inst.interface.clone(), family, ah);
            let socket = match by_iface.get(&key) {
                Some(i) => *i,
                None => {
                    let s = VrrpSocket::open(&inst.interface, family, cfg.primary_ip, ah).map_err(
                        |e| {
                            io::Error::new(
                                e.kind(),
                                format!("vrrp_instance {}: {}: {e}", inst.name, inst.interface),
                            )
                        },
                    )?;
                    sockets.push(s);
                    by_iface.insert(key, sockets.len() - 1);
                    sockets.len() - 1
                }
            };
            let addresses = inst.addresses.iter().map(|a| a.addr).collect();
            vrrp.add_router(cfg).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("vrrp_instance {}: {e}", inst.name),
                )
            })?;
            routers.push(RouterIo {
                socket,
                interface: inst.interface.clone(),
                name: inst.name.clone(),
                addresses,
                notify_master: inst.notify_master.clone(),
                notify_backup: inst.notify_backup.clone(),
                notify_fault: inst.notify_fault.clone(),
                notify_stop: inst.notify_stop.clone(),
                notify: inst.notify.clone(),
            });
        }
        let mut groups = Vec::new();
        for g in &setup.sync_groups {
            let members: Vec<RouterId> = g.members.iter().map(|i| RouterId(*i)).collect();
            vrrp.add_sync_group(&members).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("vrrp_sync_group {}: {e}", g.name),
                )
            })?;
            groups.push(GroupIo {
                name: g.name.clone(),
                notify_master: g.notify_master.clone(),
                notify_backup: g.notify_backup.clone(),
                notify_fault: g.notify_fault.clone(),
                notify_stop: g.notify_stop.clone(),
                notify: g.notify.clone(),
            });
        }
        Ok(VrrpRunner {
            vrrp,
            clock,
            notifier,
            routers,
            sockets,
            groups,
            tracker: Tracker::new(setup, &disabled),
        })
    }

    fn run(mut self, stop: &AtomicBool) {
        std::thread::scope(|scope| {
            self.tracker.spawn_scripts(scope, stop);
            self.run_loop(stop);
        });
    }

    fn run_loop(&mut self, stop: &AtomicBool) {
        // The tracked interfaces' first state before the first election.
        self.tracker.poll(now(self.clock), &mut self.vrrp);
        self.vrrp.start(now(self.clock));
        let mut buf = vec![0u8; 2048];
        loop {
            let t = now(self.clock);
            if stop.load(Ordering::Acquire) {
                self.vrrp.shutdown(t);
                self.flush(t);
                self.groups_stopped();
                return;
            }
            self.tracker.poll(t, &mut self.vrrp);
            self.vrrp.handle_timeout(t);
            self.flush(t);
            let wait = self
                .vrrp
                .poll_timeout()
                .map(|at| at.saturating_since(now(self.clock)))
                .unwrap_or(TICK)
                .min(TICK);
            let fds: Vec<BorrowedFd<'_>> = self.sockets.iter().map(|s| s.sock.as_fd()).collect();
            let mut ready = vec![false; fds.len()];
            if let Err(e) = rvs_sys::poll::wait_readable(&fds, &mut ready, Some(wait)) {
                tracing::warn!("vrrp: poll: {e}");
                std::thread::sleep(TICK);
                continue;
            }
            drop(fds);
            for (i, _) in ready.iter().enumerate().filter(|(_, r)| **r) {
                if self.sockets[i].ah {
                    self.receive_ah(i, &mut buf);
                    continue;
                }
                for _ in 0..64 {
                    let got = match self.sockets[i].recv(&mut buf) {
                        Ok(Some((src, dst, ttl, bytes))) => Some((src, dst, ttl, bytes.to_vec())),
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!("vrrp: receive: {e}");
                            None
                        }
                    };
                    let Some((src, dst, ttl, bytes)) = got else {
                        break;
                    };
                    let family = self.sockets[i].family;
                    let Some(id) = peek_vrid(&bytes).and_then(|v| self.vrrp.find(family, v)) else {
                        continue;
                    };
                    if let Err(e) =
                        self.vrrp
                            .handle_advert(now(self.clock), id, src, dst, ttl, &bytes)
                    {
                        tracing::debug!(instance = %self.routers[id.0].name, %src, "advert refused: {}", e.as_str());
                    }
                }
            }
            let t = now(self.clock);
            self.flush(t);
        }
    }

    /// Read what an AH socket has waiting (at most 64 packets) into the engine.
    fn receive_ah(&mut self, i: usize, buf: &mut [u8]) {
        for _ in 0..64 {
            let packet = match self.sockets[i].recv_whole(buf) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("vrrp: receive: {e}");
                    break;
                }
            };
            // AH for another protocol, or for a VRID nobody here runs: not ours.
            let Some(id) = ah::peek_vrid(packet).and_then(|v| self.vrrp.find(Family::Ipv4, v))
            else {
                continue;
            };
            if let Err(e) = self.vrrp.handle_ah_packet(now(self.clock), id, packet) {
                tracing::debug!(instance = %self.routers[id.0].name, "AH advert refused: {}", e.as_str());
            }
        }
    }

    /// Publish each instance's state and counters for `rvs list --failover` and metrics.
    fn publish(&self) {
        let instances = self
            .vrrp
            .routers()
            .zip(&self.routers)
            .map(|((_, r), io)| InstanceStatus {
                name: io.name.clone(),
                interface: io.interface.clone(),
                vrid: r.config().vrid,
                ipv6: r.config().primary_ip.is_ipv6(),
                state: r.state(),
                priority: r.effective_priority(),
                stats: r.stats().clone(),
            })
            .collect();
        self.notifier.status.set(FailoverStatus {
            instances,
            pulse: None,
        });
    }

    /// Send what the engine wants sent, then act on its events (the master's advert leaves
    /// before its gratuitous ARPs, as keepalived orders them); publish the result.
    fn flush(&mut self, _now: Instant) {
        while let Some((id, t)) = self.vrrp.poll_transmit() {
            let r = &self.routers[id.0];
            let src = self.vrrp.router(id).config().primary_ip;
            let sock = &self.sockets[r.socket];
            let sent = if t.header_included {
                sock.send_whole(t.dst, &t.payload)
            } else {
                sock.send(t.dst, src, &t.payload)
            };
            if let Err(e) = sent {
                tracing::warn!(instance = %r.name, dst = %t.dst, "vrrp: send: {e}");
            }
        }
        while let Some(ev) = self.vrrp.poll_event() {
            match ev {
                VrrpEvent::Router(id, ev) => self.router_event(id, ev),
                VrrpEvent::Group(id, state) => {
                    let g = &self.groups[id.0];
                    let (name, script) = match state {
                        GroupState::Master => ("MASTER", &g.notify_master),
                        GroupState::Backup => ("BACKUP", &g.notify_backup),
                        GroupState::Fault => ("FAULT", &g.notify_fault),
                    };
                    tracing::info!(group = %g.name, state = %name, "vrrp sync group");
                    let what = match state {
                        GroupState::Master => "notify_master",
                        GroupState::Backup => "notify_backup",
                        GroupState::Fault => "notify_fault",
                    };
                    if let Some(s) = script {
                        notify(what, s, &[]);
                    }
                    if let Some(s) = &g.notify {
                        notify("notify", s, &["GROUP", &g.name, name]);
                    }
                }
            }
        }
        self.publish();
    }

    fn router_event(&mut self, id: RouterId, ev: Event) {
        let prio = self.vrrp.router(id).effective_priority().to_string();
        let r = &self.routers[id.0];
        let (state, script) = match ev {
            Event::BecameMaster { .. } => {
                self.notifier.send(RoleChange::Own(r.addresses.clone()));
                ("MASTER", &r.notify_master)
            }
            Event::BecameBackup { from }
            | Event::BecameFault { from }
            | Event::Stopped { from } => {
                if from == State::Master {
                    self.notifier.send(RoleChange::Disown(r.addresses.clone()));
                }
                match ev {
                    Event::BecameBackup { .. } => ("BACKUP", &r.notify_backup),
                    Event::BecameFault { .. } => ("FAULT", &r.notify_fault),
                    _ => ("STOP", &r.notify_stop),
                }
            }
            Event::Announce { repeat, .. } => {
                self.notifier.send(RoleChange::Announce {
                    addrs: r.addresses.clone(),
                    repeat,
                });
                return;
            }
        };
        tracing::info!(instance = %r.name, state = %state, priority = %prio, "vrrp");
        let what = match state {
            "MASTER" => "notify_master",
            "BACKUP" => "notify_backup",
            "FAULT" => "notify_fault",
            _ => "notify_stop",
        };
        if let Some(s) = script {
            notify(what, s, &[]);
        }
        if let Some(s) = &r.notify {
            notify("notify", s, &["INSTANCE", &r.name, state, &prio]);
        }
    }

    /// At shutdown, after the instances stopped: each sync group's `notify_stop` and its
    /// `notify` with STOP (keepalived vrrp_notify.c `notify_group_exec()` for
    /// VRRP_STATE_STOP).
    fn groups_stopped(&self) {
        for g in &self.groups {
            tracing::info!(group = %g.name, state = "STOP", "vrrp sync group");
            if let Some(s) = &g.notify_stop {
                notify("notify_stop", s, &[]);
            }
            if let Some(s) = &g.notify {
                notify("notify", s, &["GROUP", &g.name, "STOP"]);
            }
        }
    }
}

/// The interface's primary address of `family` (IPv6: its link-local address, as VRRPv3
/// requires).
fn primary_address(interface: &str, family: Family) -> io::Result<IpAddr> {
    let addrs = rvs_sys::iface::addresses(interface)?;
    addrs
        .iter()
        .map(|(a, _)| *a)
        .find(|a| match (family, a) {
            (Family::Ipv4, IpAddr::V4(_)) => true,
            (Family::Ipv6, IpAddr::V6(v6)) => v6.segments()[0] & 0xffc0 == 0xfe80,
            _ => false,
        })
        .ok_or_else(|| {
            io::Error::other(format!(
                "{interface} has no {} address to send VRRP advertisements from",
                if family == Family::Ipv4 {
                    "IPv4"
                } else {
                    "IPv6 link-local"
                }
            ))
        })
}

/// Piranha's pulse: heartbeats to the partner over UDP.
struct PulseRunner {
    pulse: Pulse,
    sock: UdpSocket,
    clock: std::time::Instant,
    notifier: Notifier,
    addresses: Vec<IpAddr>,
    active_cmd: Option<String>,
    inactive_cmd: Option<String>,
    /// `monitor_links`: this node's own addresses, whose links are watched.
    links: LinkWatch,
}

/// Whether the links carrying `addrs` are up (pulse's linkstate.c `ip_check_link()`: the
/// interface holding the address must be up with its carrier; an address on no interface
/// counts as up, as there). The names of those that are down. One netlink link dump and
/// one address dump give the addresses and their interfaces' flags together.
pub(crate) fn links_down(addrs: &[IpAddr]) -> Vec<String> {
    let Ok(all) = rvs_sys::iface::address_links() else {
        return Vec::new();
    };
    let mut down = Vec::new();
    for a in addrs {
        if let Some((name, _, up)) = all.iter().find(|(_, x, _)| x == a)
            && !up
            && !down.contains(name)
        {
            down.push(name.clone());
        }
    }
    down
}

/// How often `monitor_links` reads the links' state. pulse.c `run()` calls `check_links()`
/// on each pass of its loop, which wakes about once per `keepalive`; the failover threads
/// here wake every [`TICK`] and on every heartbeat, so the state is read at most this often
/// rather than on each wake-up.
pub(crate) const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// `monitor_links`: the addresses whose links are watched, read at most once per
/// [`LINK_CHECK_INTERVAL`].
pub(crate) struct LinkWatch {
    links: Vec<IpAddr>,
    next: Option<std::time::Instant>,
}

impl LinkWatch {
    /// Watch the links of `links` (none: nothing is ever read).
    pub(crate) fn new(links: Vec<IpAddr>) -> LinkWatch {
        LinkWatch { links, next: None }
    }

    /// [`check_links`] when the interval has passed since the last reading.
    pub(crate) fn check(&mut self, set_links_up: impl FnOnce(bool) -> bool) {
        if self.links.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        if self.next.is_some_and(|at| now < at) {
            return;
        }
        self.next = Some(now + LINK_CHECK_INTERVAL);
        check_links(&self.links, set_links_up);
    }
}

/// pulse.c `run()`: `check_links()`. Tells the engine whether the `monitor_links` links are
/// all up (`set_links_up`, true when that enabled or disabled the node) and logs the
/// change; nothing when no links are watched.
pub(crate) fn check_links(links: &[IpAddr], set_links_up: impl FnOnce(bool) -> bool) {
    if links.is_empty() {
        return;
    }
    let down = links_down(links);
    if set_links_up(down.is_empty()) {
        if down.is_empty() {
            tracing::warn!("pulse: Local NIC link(s) restored: pulse enabled");
        } else {
            tracing::warn!(
                links = %down.join(","),
                "pulse: Local NIC link failure: pulse disabled"
            );
        }
    }
}

/// pulse's engine configuration for this host: `config_for` applied to the addresses on
/// its interfaces; an error when none of them is the lvs.cf `primary` or `backup`.
pub(crate) fn pulse_config(
    config_for: impl FnOnce(&[IpAddr]) -> Option<PulseConfig>,
) -> io::Result<PulseConfig> {
    let mine: Vec<IpAddr> = rvs_sys::iface::all_addresses()?
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    config_for(&mine).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "pulse: none of this host's addresses is the lvs.cf `primary` or `backup`",
        )
    })
}

/// pulse's heartbeat for `cfg`: the UDP socket bound to the heartbeat port (non-blocking),
/// the engine started at `t`, and the addresses whose links `monitor_links` watches (only
/// with a backup).
pub(crate) fn open_pulse(
    setup: &PulseSetup,
    cfg: PulseConfig,
    t: Instant,
) -> io::Result<(Pulse, UdpSocket, Vec<IpAddr>)> {
    let bind: SocketAddr = match cfg.partner {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), cfg.port),
        IpAddr::V6(_) => SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), cfg.port),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.set_nonblocking(true)?;
    let pulse = Pulse::new(cfg, t)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("pulse: {e}")))?;
    let links = if cfg.monitor_links && cfg.backup_active {
        setup.own_addresses(cfg.role)
    } else {
        Vec::new()
    };
    Ok((pulse, sock, links))
}

/// Wait up to `wait` for heartbeats on `sock`, then hand each waiting datagram and its
/// source to `handle` (a refused one is logged at debug level).
pub(crate) fn recv_heartbeats(
    sock: &UdpSocket,
    buf: &mut [u8],
    wait: Duration,
    mut handle: impl FnMut(IpAddr, &[u8]) -> Result<(), HeartbeatError>,
) {
    let mut ready = [false];
    if rvs_sys::poll::wait_readable(&[sock.as_fd()], &mut ready, Some(wait)).is_err() {
        std::thread::sleep(TICK);
    }
    while let Ok((n, from)) = sock.recv_from(buf) {
        if let Err(e) = handle(from.ip(), &buf[..n]) {
            tracing::debug!(%from, "heartbeat refused: {e:?}");
        }
    }
}

/// Send one heartbeat (a failure is logged; pulse sends the next one anyway).
pub(crate) fn send_heartbeat(sock: &UdpSocket, t: &HeartbeatTransmit) {
    if let Err(e) = sock.send_to(&t.payload, t.dst) {
        tracing::warn!(dst = %t.dst, "pulse: send: {e}");
    }
}

/// What the status socket shows for pulse: this node's role, whether it is active, and the
/// heartbeats counted by `pulse` (none without one).
pub(crate) fn pulse_status(primary: bool, active: bool, pulse: Option<&Pulse>) -> FailoverStatus {
    FailoverStatus {
        instances: Vec::new(),
        pulse: Some(PulseStatus {
            primary,
            active,
            sent: pulse.map_or(0, Pulse::sent),
            received: pulse.map_or(0, Pulse::received),
        }),
    }
}

impl PulseRunner {
    fn new(
        setup: &PulseSetup,
        addresses: Vec<IpAddr>,
        clock: std::time::Instant,
        notifier: Notifier,
    ) -> io::Result<Self> {
        let cfg = pulse_config(|mine| setup.config_for(mine))?;
        let (pulse, sock, links) = open_pulse(setup, cfg, now(clock))?;
        Ok(PulseRunner {
            links: LinkWatch::new(links),
            pulse,
            sock,
            clock,
            notifier,
            addresses,
            active_cmd: setup.active_cmd.clone(),
            inactive_cmd: setup.inactive_cmd.clone(),
        })
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut buf = [0u8; 64];
        loop {
            let t = now(self.clock);
            if stop.load(Ordering::Acquire) {
                self.pulse.shutdown(t);
                self.flush();
                return;
            }
            self.links.check(|up| self.pulse.set_links_up(t, up));
            self.pulse.handle_timeout(t);
            self.flush();
            let wait = self
                .pulse
                .poll_timeout()
                .map(|at| at.saturating_since(now(self.clock)))
                .unwrap_or(TICK)
                .min(TICK);
            recv_heartbeats(&self.sock, &mut buf, wait, |from, bytes| {
                self.pulse.handle_heartbeat(now(self.clock), from, bytes)
            });
            self.flush();
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.pulse.poll_transmit() {
            send_heartbeat(&self.sock, &t);
        }
        while let Some(ev) = self.pulse.poll_event() {
            match ev {
                PulseEvent::Activate(why) => {
                    tracing::info!(reason = ?why, "pulse: active");
                    self.notifier.send(RoleChange::Own(self.addresses.clone()));
                    if let Some(c) = &self.active_cmd {
                        run_hook("active_cmd", c);
                    }
                }
                PulseEvent::Deactivate(why) => {
                    tracing::info!(reason = ?why, "pulse: inactive");
                    self.notifier
                        .send(RoleChange::Disown(self.addresses.clone()));
                    if let Some(c) = &self.inactive_cmd {
                        run_hook("inactive_cmd", c);
                    }
                }
                PulseEvent::Announce => self.notifier.send(RoleChange::Announce {
                    addrs: self.addresses.clone(),
                    repeat: 1,
                }),
            }
        }
        self.notifier.status.set(pulse_status(
            self.pulse.config().role == rvs_core::pulse::Role::Primary,
            self.pulse.is_active(),
            Some(&self.pulse),
        ));
    }
}
