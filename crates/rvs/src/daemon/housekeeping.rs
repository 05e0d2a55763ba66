//! What the worker does between batches besides forwarding: roles, health changes, probes,
//! ring counters.

use super::startup::with_vmacs;
use super::worker::RING_STATS_EVERY;
use crate::desired::Desired;
use crate::failover::{RoleChange, RoleChanges};
use crate::health::Monitor;
use crate::probe::ProbePath;
use crate::syncd::SyncDaemons;
use rvs_core::director::{Director, NetConfig, PortId};
use rvs_core::time::Instant;
use rvs_sys::packet::vnet::VirtioNetHdr;
use rvs_sys::packet::{RxRing, TxRing};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

/// How long after another host's claim the owned addresses are re-announced.
pub(super) const DEFEND_DELAY: Duration = Duration::from_millis(200);

/// The least time between two such re-announcements.
pub(super) const DEFEND_INTERVAL: Duration = Duration::from_secs(1);

/// How long after its own protocol-driven announcement a director does not defend.
pub(super) const DEFEND_HOLD: Duration = Duration::from_secs(2);

/// What the worker does between batches besides forwarding: health changes, reloads,
/// control requests.
pub(super) struct ControlPlane<'a> {
    pub(super) desired: &'a mut Desired,
    pub(super) monitor: &'a Monitor,
    /// The probe path, once a check needs it.
    pub(super) probe: Option<ProbePath>,
    /// Role changes from the failover thread, if there is one.
    pub(super) roles: Option<RoleChanges>,
    /// Which addresses the director owns now.
    pub(super) ownership: Ownership,
    /// The network with every configured address owned (the engine gets it filtered).
    pub(super) net: NetConfig,
    /// The connection-sync daemons (configured, or started by rvsadm).
    pub(super) sync: SyncDaemons,
    /// VRRP virtual MACs (`use_vmac`) of owned addresses.
    pub(super) vmacs: Vec<(IpAddr, [u8; 6])>,
    /// When to re-announce the owned addresses because another host claimed one.
    pub(super) defend_at: Option<Instant>,
    /// When they were last re-announced for that.
    pub(super) defended: Option<Instant>,
    /// When the failover protocol last had them announced (takeover, refresh).
    pub(super) announced: Option<Instant>,
    /// Per interface: name, frames its RX ring saw, frames the kernel dropped because
    /// the ring was full (`PACKET_STATISTICS`, summed by [`ControlPlane::read_rings`]).
    pub(super) rings: Vec<(String, u64, u64)>,
    /// When the ring counters were last read.
    pub(super) rings_read: Instant,
    /// The view handed out in this round of control requests (see [`ControlPlane::answer`]).
    pub(super) view: Option<std::sync::Arc<super::control::WorkerView>>,
    /// The last view made, whose vectors the next one reuses once nobody else holds it
    /// ([`super::published::view`]).
    pub(super) spare_view: Option<std::sync::Arc<super::control::WorkerView>>,
    /// Builds the connection tables' memory off the packet path.
    pub(super) provisioner: crate::provision::Provisioner,
    /// `--fast-path xdp`: the XDP program's flows ([`crate::fastpath`]).
    pub(super) fast: Option<crate::fastpath::FastPath>,
    /// `-L -c` listings being copied in pieces ([`super::conn_export`]).
    pub(super) exports: super::conn_export::Exports,
    /// `-Z` of every service being done in pieces ([`super::zeroing`]).
    pub(super) zeroing: super::zeroing::Zeroing,
    /// The other forwarding workers (`--workers`, [`super::workers`]).
    pub(super) peers: super::workers::Peers,
}

/// Which of the configured addresses (VIPs, the NAT router's floating IP) the director owns
/// now: all of them without failover, else those of the VRRP instances it is master of (or
/// all while pulse says it is active).
pub(super) struct Ownership {
    pub(super) all: bool,
    pub(super) owning: HashSet<IpAddr>,
}

impl Ownership {
    pub(super) fn filter(&self, mut net: NetConfig) -> NetConfig {
        if !self.all {
            net.owned.retain(|o| self.owning.contains(&o.addr));
        }
        net
    }
}

impl ControlPlane<'_> {
    /// Act on the failover thread's decisions: own or disown addresses, announce them.
    pub(super) fn apply_roles(&mut self, d: &mut Director, now: Instant) {
        let Some(roles) = &self.roles else {
            return;
        };
        for change in roles.drain() {
            match change {
                RoleChange::Own(addrs) => {
                    self.ownership.owning.extend(addrs);
                    self.peers
                        .set_net(d, self.ownership.filter(self.net.clone()));
                }
                RoleChange::Disown(addrs) => {
                    for a in addrs {
                        self.ownership.owning.remove(&a);
                    }
                    self.peers
                        .set_net(d, self.ownership.filter(self.net.clone()));
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
    pub(super) fn own_service_addresses(
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
        self.peers
            .set_net(d, self.ownership.filter(self.net.clone()));
        d.announce(now);
    }

    /// A reloaded network view: kept whole, given to the engine filtered by ownership, the
    /// owned addresses announced again.
    pub(super) fn install_net(&mut self, d: &mut Director, net: NetConfig, now: Instant) {
        self.net = with_vmacs(net, &self.vmacs);
        self.peers
            .set_net(d, self.ownership.filter(self.net.clone()));
        d.announce(now);
    }

    /// Open the probe path if a check travels the forwarding path and it is not open yet.
    /// Without it those checks fail (and say why); the daemon keeps running.
    pub(super) fn ensure_probe_path(&mut self, d: &Director) {
        let wanted = self.desired.health_spec().is_some_and(wants_probe_path);
        self.open_probe_path(d, wanted);
    }

    /// [`ControlPlane::ensure_probe_path`] with whether a check needs it worked out
    /// beforehand ([`wants_probe_path`], on a control thread).
    pub(super) fn open_probe_path(&mut self, d: &Director, wanted: bool) {
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
    pub(super) fn forward_probes(
        &mut self,
        d: &mut Director,
        now: Instant,
        txs: &mut [Option<&mut TxRing>],
    ) {
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
    pub(super) fn defend(&mut self, d: &mut Director, now: Instant) {
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

    /// Install what the health monitor decided.
    pub(super) fn housekeeping(&mut self, d: &mut Director, now: Instant) {
        self.provisioner.service(d);
        self.apply_roles(d, now);
        self.defend(d, now);
        self.sync.poll(d, now);
        // The health monitor's decisions are prepared and installed by the control side
        // ([`super::changes::start_refresher`]).
    }

    /// Adds the RX rings' kernel counters (read and reset) to `rings`, at most every
    /// [`RING_STATS_EVERY`] (one `getsockopt` per interface).
    pub(super) fn read_rings(&mut self, rxs: &[Option<&mut RxRing>], now: Instant, force: bool) {
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
}

/// Whether a check of `spec` travels the forwarding path (`via_vip`): the probe path must be
/// open.
pub(super) fn wants_probe_path(spec: &rvs_core::health::HealthConfig) -> bool {
    spec.services.iter().any(|s| {
        s.real_servers
            .iter()
            .any(|r| r.checks.iter().any(|c| c.target.via_vip))
    })
}
