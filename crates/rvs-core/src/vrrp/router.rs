//! One virtual router: the RFC 5798 section 6.4 state machine (Initialize, Backup, Master)
//! plus keepalived's Fault state, with keepalived's interoperability choices.
//!
//! Driven sans-IO: [`VirtualRouter::handle_advert`] for every received advertisement,
//! [`VirtualRouter::handle_timeout`] when [`VirtualRouter::poll_timeout`] is reached,
//! [`VirtualRouter::set_track`] when a tracked interface or script changes; the daemon then
//! drains [`VirtualRouter::poll_transmit`] (advertisements to send, already checksummed)
//! *before* [`VirtualRouter::poll_event`] (state changes and timed "announce" actions), so
//! that, as keepalived does, the new master's first advertisement leaves before its
//! gratuitous ARPs.
//!
//! Times: Skew_Time and Master_Down_Interval are computed in microseconds exactly as
//! keepalived's `VRRP_TIMER_SKEW` does (v3: `(256 - priority) * Master_Adver_Interval[cs] *
//! 625 / 16` µs; v2: `(256 - priority) * 1 s / 256`, RFC 3768's Skew_Time, which does not
//! depend on the interval).

use core::cmp::Ordering;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::IpAddr;

use super::ah::{self, AhHeader, AhPacket};
use super::packet::{AdvertError, AdvertPacket, AdvertRepr, Auth, Family, TTL, Version, auth_type};
use crate::time::Instant;

/// Preemption (RFC 5798 Preempt_Mode, keepalived `nopreempt` and `preempt_delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preempt {
    /// A higher-priority backup takes over from a lower-priority master (the RFC default).
    #[default]
    Always,
    /// keepalived `nopreempt`: a backup never takes over from a live master.
    Never,
    /// keepalived `preempt_delay`: a backup that first hears a lower-priority master keeps
    /// accepting its advertisements for this long, then preempts.
    After(Duration),
}

/// The state the router starts towards (keepalived `state MASTER|BACKUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// Start as backup and wait Master_Down_Interval (RFC 5798 section 6.4.1).
    #[default]
    Backup,
    /// keepalived `state MASTER` below priority 255: start as backup but wait only one
    /// advertisement interval plus the minimum skew before taking over.
    Master,
}

/// Gratuitous ARP / unsolicited NA timing (keepalived's `garp_*` keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_delay` \[5 s\]: a second burst this long after becoming master (0: none).
    pub master_delay: Duration,
    /// `garp_master_repeat` \[5\]: announcements per address in each burst.
    pub master_repeat: u32,
    /// `garp_master_refresh` \[none\]: periodic bursts while master.
    pub master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat` \[1\]: announcements per address in a refresh.
    pub master_refresh_repeat: u32,
    /// `garp_lower_prio_delay` \[5 s\]: a second burst this long after a master heard a
    /// lower-priority advertisement (0: none).
    pub lower_prio_delay: Duration,
    /// `garp_lower_prio_repeat` \[5\]: announcements per address when a master hears a
    /// lower-priority advertisement (0: none).
    pub lower_prio_repeat: u32,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
        }
    }
}

/// A tracked object (keepalived `track_interface` / `track_script` entry).
///
/// The object is *healthy* when its reported state (`up`) differs from `reverse`. Weight 0:
/// an unhealthy object puts the router in the Fault state. Positive weight: added to the
/// priority while healthy. Negative weight: added (so subtracted) while unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// Priority change, -253..=253; 0 means "Fault when unhealthy".
    pub weight: i32,
    /// keepalived `reverse`: healthy when down.
    pub reverse: bool,
    /// The state before the first report (keepalived starts scripts as failed only with
    /// `init_fail`).
    pub initially_up: bool,
}

/// The configuration of one virtual router (keepalived `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// `version` \[2 for IPv4, 3 for IPv6\].
    pub version: Version,
    /// `priority` \[100\], 1..=255; 255 is the address owner.
    pub priority: u8,
    /// `advert_int` \[1 s\]: v2 whole seconds 1..=255; v3 centiseconds 1..=4095.
    pub advert_int: Duration,
    /// This router's primary address: the advertisements' source and the tie-breaker
    /// (IPv6: a link-local address).
    pub primary_ip: IpAddr,
    /// `virtual_ipaddress`: the addresses advertised (and taken over as master).
    pub addresses: Vec<IpAddr>,
    /// Preemption.
    pub preempt: Preempt,
    /// `accept`: whether the daemon lets the master accept packets for the VIPs when it is
    /// not the owner. The engine only carries it; the daemon installs the drop rule.
    pub accept: bool,
    /// v2 `authentication` (ignored for v3, as keepalived does).
    pub auth: Auth,
    /// `unicast_peer`: empty for multicast; else advertisements go to each peer.
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived `check_unicast_src`: refuse unicast adverts from non-peers.
    pub check_unicast_src: bool,
    /// `state`.
    pub initial_state: InitialState,
    /// Gratuitous ARP / NA timing.
    pub garp: GarpConfig,
    /// keepalived `lower_prio_no_advert`: a master hearing a lower priority does not
    /// re-advertise at once.
    pub lower_prio_no_advert: bool,
    /// keepalived `higher_prio_send_advert`: a master hearing a higher priority advertises
    /// once more before stepping down.
    pub higher_prio_send_advert: bool,
    /// keepalived `skip_check_adv_addr`: a backup does not re-check the address list of
    /// adverts from the master it already follows.
    pub skip_check_adv_addr: bool,
    /// Tracked objects, addressed by index in [`VirtualRouter::set_track`].
    pub tracks: Vec<Track>,
}

impl RouterConfig {
    /// A configuration with keepalived's defaults: priority 100, 1 s interval, version 2
    /// for IPv4 and 3 for IPv6, preemption on, accept mode on (keepalived's non-strict
    /// default), no authentication, multicast, start as backup.
    pub fn new(vrid: u8, primary_ip: IpAddr, addresses: Vec<IpAddr>) -> RouterConfig {
        RouterConfig {
            vrid,
            version: match primary_ip {
                IpAddr::V4(_) => Version::V2,
                IpAddr::V6(_) => Version::V3,
            },
            priority: 100,
            advert_int: Duration::from_secs(1),
            primary_ip,
            addresses,
            preempt: Preempt::Always,
            accept: true,
            auth: Auth::None,
            unicast_peers: Vec::new(),
            check_unicast_src: false,
            initial_state: InitialState::Backup,
            garp: GarpConfig::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            skip_check_adv_addr: false,
            tracks: Vec::new(),
        }
    }
}

/// Why a [`RouterConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigError {
    /// VRID 0.
    BadVrid,
    /// Priority 0 (reserved for resigning).
    BadPriority,
    /// An interval the version cannot carry (v2: whole seconds 1..=255; v3: whole
    /// centiseconds 1..=4095).
    BadAdvertInterval,
    /// Addresses or peers of another family than the primary address.
    FamilyMismatch,
    /// VRRPv2 over IPv6.
    V2OverIpv6,
    /// More than 255 virtual addresses.
    TooManyAddresses,
    /// A track weight outside -253..=253.
    BadTrackWeight,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::BadVrid => "virtual_router_id must be 1..=255",
            ConfigError::BadPriority => "priority must be 1..=255",
            ConfigError::BadAdvertInterval => "advert_int cannot be carried by this version",
            ConfigError::FamilyMismatch => "addresses of different families",
            ConfigError::V2OverIpv6 => "VRRPv2 does not carry IPv6",
            ConfigError::TooManyAddresses => "more than 255 virtual addresses",
            ConfigError::BadTrackWeight => "track weight must be -253..=253",
        })
    }
}

impl std::error::Error for ConfigError {}

/// The protocol state of a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running (before `start`, after `shutdown`).
    Initialize,
    /// Monitoring the master.
    Backup,
    /// Owning the virtual addresses and advertising.
    Master,
    /// keepalived's FAULT: a tracked object failed; silent, owns nothing.
    Fault,
}

/// Why the daemon should announce (gratuitous ARP for IPv4, unsolicited neighbour
/// advertisement for IPv6) the virtual addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceReason {
    /// Just became master.
    BecameMaster,
    /// `garp_master_delay` after becoming master.
    MasterDelay,
    /// `garp_master_refresh` period.
    Refresh,
    /// A master heard a lower-priority advertisement (split brain healing).
    LowerPriority,
    /// `garp_lower_prio_delay` after that.
    LowerPriorityDelay,
}

/// What the daemon must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Became master: add the virtual addresses (and the virtual MAC), start answering ARP
    /// / ND for them, run `notify_master`. [`Event::Announce`] follows.
    BecameMaster {
        /// The previous state.
        from: State,
    },
    /// Became backup: if `from` is Master, remove the virtual addresses.
    BecameBackup {
        /// The previous state.
        from: State,
    },
    /// Entered Fault: if `from` is Master, remove the virtual addresses.
    BecameFault {
        /// The previous state.
        from: State,
    },
    /// Stopped by `shutdown`: if `from` is Master, remove the virtual addresses.
    Stopped {
        /// The previous state.
        from: State,
    },
    /// Send `repeat` gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6)
    /// for every virtual address, from the virtual MAC, now.
    Announce {
        /// Announcements per address.
        repeat: u32,
        /// Why.
        reason: AnnounceReason,
    },
}

/// An advertisement to send: an IP packet with protocol 112 and TOS 0xc0 (keepalived's
/// "internetwork control"), this source, destination and TTL, and this payload — or, with
/// AH authentication, the whole IPv4 packet ([`Transmit::header_included`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Source address (the primary address).
    pub src: IpAddr,
    /// Destination: the multicast group, or one unicast peer.
    pub dst: IpAddr,
    /// TTL / hop limit (255).
    pub ttl: u8,
    /// The VRRP message, checksummed for this source and destination; with
    /// `header_included`, the whole IPv4 packet.
    pub payload: Vec<u8>,
    /// `auth_type AH`: `payload` is the complete IPv4 packet (header, AH header, VRRP), to
    /// be sent as it is (a raw socket with `IP_HDRINCL`), because the AH ICV covers the IP
    /// header (see [`super::ah`]).
    pub header_included: bool,
}

/// Per-router counters (keepalived's `vrrp_stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterStats {
    /// Valid advertisements received.
    pub advert_rcvd: u64,
    /// Advertisements sent (one per destination).
    pub advert_sent: u64,
    /// Transitions to Master.
    pub become_master: u64,
    /// Transitions out of Master.
    pub release_master: u64,
    /// Valid priority-0 advertisements received.
    pub pri_zero_rcvd: u64,
    /// Priority-0 advertisements sent.
    pub pri_zero_sent: u64,
    /// Refused advertisements by reason, indexed by [`AdvertError::index`].
    pub errors: [u64; AdvertError::COUNT],
}

impl Default for RouterStats {
    fn default() -> Self {
        RouterStats {
            advert_rcvd: 0,
            advert_sent: 0,
            become_master: 0,
            release_master: 0,
            pri_zero_rcvd: 0,
            pri_zero_sent: 0,
            errors: [0; AdvertError::COUNT],
        }
    }
}

impl RouterStats {
    /// Refused advertisements of one reason.
    pub fn error(&self, e: AdvertError) -> u64 {
        self.errors[e.index()]
    }
}

const PRIO_OWNER: u8 = 255;

/// Compare two addresses as unsigned integers in network byte order (RFC 5798 "the
/// primary IPvX Address of the sender is greater than the local primary IPvX Address").
fn addr_cmp(a: IpAddr, b: IpAddr) -> Ordering {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets().cmp(&b.octets()),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets().cmp(&b.octets()),
        _ => Ordering::Equal,
    }
}

/// A pending timed announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    at: Instant,
    repeat: u32,
    reason: AnnounceReason,
}

/// One VRRP virtual router (keepalived `vrrp_instance`).
#[derive(Debug, Clone)]
pub struct VirtualRouter {
    cfg: RouterConfig,
    family: Family,
    state: State,
    /// Configured priority (lowered to 254 on an owner conflict, as keepalived).
    base_priority: u8,
    effective_priority: u8,
    tracks_up: Vec<bool>,
    /// Advertisement interval in centiseconds (v2: seconds × 100).
    adver_cs: u32,
    /// Master_Adver_Interval in centiseconds.
    master_adver_cs: u32,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    preempt_time: Option<Instant>,
    pending: Vec<Pending>,
    refresh_at: Option<Instant>,
    /// The master followed as backup: source and priority of its last advertisement.
    master: Option<(IpAddr, u8)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: RouterStats,
    // Sync-group coordination (see `super::group`).
    pub(super) in_group: bool,
    pub(super) wants_master: bool,
    pub(super) stepped_down: bool,
    pub(super) lower_prio_heard: bool,
    /// keepalived `ipsecah_counter.seq_number`: one counter per instance, advanced by each
    /// advertisement sent and set by each one accepted (`auth_type AH`).
    ah_seq: u32,
    /// The AH key keyed into HMAC-MD5 once, when `auth_type AH` is configured.
    ah_key: Option<ah::AhKey>,
    /// keepalived `ipsecah_counter.cycle`: the counter passed 0xFFFFFFFD.
    ah_cycle: bool,
    /// keepalived `vrrp->ip_id`: the IP identification of AH adverts (inside the ICV).
    ip_id: u16,
}

impl VirtualRouter {
    /// Validate `config` and build a router in the Initialize state.
    ///
    /// Like keepalived's `vrrp_complete_instance`, some combinations are normalised rather
    /// than refused: the address owner (255) and `state MASTER` always preempt (nopreempt
    /// and preempt_delay are cleared), and v3 ignores authentication.
    pub fn new(config: RouterConfig) -> Result<VirtualRouter, ConfigError> {
        let mut cfg = config;
        if cfg.vrid == 0 {
            return Err(ConfigError::BadVrid);
        }
        if cfg.priority == 0 {
            return Err(ConfigError::BadPriority);
        }
        let family = Family::of(cfg.primary_ip);
        if cfg.version == Version::V2 && family == Family::Ipv6 {
            return Err(ConfigError::V2OverIpv6);
        }
        if cfg
            .addresses
            .iter()
            .chain(cfg.unicast_peers.iter())
            .any(|a| Family::of(*a) != family)
        {
            return Err(ConfigError::FamilyMismatch);
        }
        if cfg.addresses.len() > 255 {
            return Err(ConfigError::TooManyAddresses);
        }
        if cfg.tracks.iter().any(|t| !(-253..=253).contains(&t.weight)) {
            return Err(ConfigError::BadTrackWeight);
        }
        let nanos = cfg.advert_int.as_nanos();
        let adver_cs = match cfg.version {
            Version::V2 => {
                if !nanos.is_multiple_of(1_000_000_000)
                    || !(1..=255).contains(&(nanos / 1_000_000_000))
                {
                    return Err(ConfigError::BadAdvertInterval);
                }
                (nanos / 10_000_000) as u32
            }
            Version::V3 => {
                if !nanos.is_multiple_of(10_000_000) || !(1..=4095).contains(&(nanos / 10_000_000))
                {
                    return Err(ConfigError::BadAdvertInterval);
                }
                (nanos / 10_000_000) as u32
            }
        };
        if cfg.priority == PRIO_OWNER || cfg.initial_state == InitialState::Master {
            cfg.preempt = Preempt::Always;
        }
        if cfg.version == Version::V3 {
            cfg.auth = Auth::None;
        }
        let tracks_up = cfg.tracks.iter().map(|t| t.initially_up).collect();
        let mut r = VirtualRouter {
            family,
            state: State::Initialize,
            base_priority: cfg.priority,
            effective_priority: cfg.priority,
            tracks_up,
            adver_cs,
            master_adver_cs: adver_cs,
            adver_timer: None,
            master_down_timer: None,
            preempt_time: None,
            pending: Vec::new(),
            refresh_at: None,
            master: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: RouterStats::default(),
            in_group: false,
            wants_master: false,
            stepped_down: false,
            lower_prio_heard: false,
            ah_seq: 0,
            ah_key: match cfg.auth {
                Auth::Ah(key) => Some(ah::AhKey::new(&key)),
                _ => None,
            },
            ah_cycle: false,
            ip_id: 0,
            cfg,
        };
        r.effective_priority = r.compute_priority();
        Ok(r)
    }

    /// The configuration (after normalisation).
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The priority advertised now (base priority plus track weights, clamped to 1..=254;
    /// the owner's 255 never changes).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Master_Adver_Interval: the interval learned from the master (v3), else our own.
    pub fn master_adver_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.master_adver_cs) * 10)
    }

    /// The master followed as backup (source and priority of its last advertisement).
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// Counters.
    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    /// True while a tracked object with weight 0 is unhealthy.
    pub fn own_fault(&self) -> bool {
        self.cfg
            .tracks
            .iter()
            .zip(&self.tracks_up)
            .any(|(t, up)| t.weight == 0 && *up == t.reverse)
    }

    //= https://www.rfc-editor.org/rfc/rfc5798#section-6.1
    //# Skew_Time                 Time to skew Master_Down_Interval in
    //#                           centiseconds.  Calculated as
    //#                           (((256 - priority) * Master_Adver_Interval) / 256).
    /// Skew_Time for the current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        self.skew_for(256 - u64::from(self.effective_priority))
    }

    // keepalived vrrp.h VRRP_TIMER_SKEW_CALC: computed in microseconds.
    fn skew_for(&self, p: u64) -> Duration {
        match self.cfg.version {
            Version::V3 => Duration::from_micros(p * u64::from(self.master_adver_cs) * 625 / 16),
            Version::V2 => Duration::from_micros(p * 1_000_000 / 256),
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5798#section-6.1
    //# Master_Down_Interval      Time interval for Backup to declare Master
    //#                           down (centiseconds).  Calculated as (3 *
    //#                           Master_Adver_Interval) + Skew_time.
    /// Master_Down_Interval for the current priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval() * 3 + self.skew_time()
    }

    fn adver_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.adver_cs) * 10)
    }

    fn compute_priority(&self) -> u8 {
        if self.base_priority == PRIO_OWNER {
            return PRIO_OWNER;
        }
        let mut total = i32::from(self.base_priority);
        for (t, up) in self.cfg.tracks.iter().zip(&self.tracks_up) {
            let healthy = *up != t.reverse;
            if (t.weight > 0 && healthy) || (t.weight < 0 && !healthy) {
                total += t.weight;
            }
        }
        total.clamp(1, i32::from(PRIO_OWNER) - 1) as u8
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.adver_timer,
            self.master_down_timer,
            self.refresh_at,
            self.pending.iter().map(|p| p.at).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next advertisement to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the daemon must do.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.1
    //# - If the Priority = 255 (i.e., the router owns the IPvX address
    //#   associated with the virtual router), then:
    //#
    //#    + Send an ADVERTISEMENT
    //# ...
    //#    + Transition to the {Master} state
    //#
    //# - else // rtr does not own virt addr
    //#
    //#    + Set Master_Adver_Interval to Advertisement_Interval
    //#
    //#    + Set the Master_Down_Timer to Master_Down_Interval
    //#
    //#    + Transition to the {Backup} state
    /// Start (the Startup event): owner → Master at once; otherwise Backup, waiting
    /// Master_Down_Interval, or for keepalived's `state MASTER` one interval plus the
    /// minimum skew (keepalived `vrrp_init_state`). A router with a failed weight-0 track
    /// starts in Fault.
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_cs = self.adver_cs;
        if self.own_fault() {
            self.state = State::Fault;
            self.events.push_back(Event::BecameFault {
                from: State::Initialize,
            });
            return;
        }
        self.state = State::Backup;
        if self.base_priority == PRIO_OWNER {
            if self.in_group {
                // keepalived goes through Backup with a 1 µs down timer; in a sync group
                // the group decides.
                self.master_down_timer = Some(now);
                self.events.push_back(Event::BecameBackup {
                    from: State::Initialize,
                });
            } else {
                self.state = State::Initialize;
                self.become_master(now);
            }
            return;
        }
        let wait = match self.cfg.initial_state {
            InitialState::Master => self.master_adver_interval() + self.skew_for(1),
            InitialState::Backup => self.master_down_interval(),
        };
        self.master_down_timer = Some(now + wait);
        self.events.push_back(Event::BecameBackup {
            from: State::Initialize,
        });
    }

    //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.3
    //# - If a Shutdown event is received, then:
    //#
    //#    + Cancel the Adver_Timer
    //#
    //#    + Send an ADVERTISEMENT with Priority = 0
    //#
    //#    + Transition to the {Initialize} state
    /// Stop: a master resigns with a priority-0 advertisement (backups then take over after
    /// Skew_Time instead of Master_Down_Interval); every state goes to Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        let from = self.state;
        if from == State::Initialize {
            return;
        }
        if from == State::Master {
            self.leave_master(now, State::Initialize, true);
        } else {
            self.state = State::Initialize;
        }
        self.clear_timers();
        self.wants_master = false;
        self.events.push_back(Event::Stopped { from });
    }

    fn clear_timers(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.preempt_time = None;
        self.pending.clear();
        self.refresh_at = None;
    }

    /// Report the state of tracked object `index` (an index into
    /// [`RouterConfig::tracks`]; others are ignored). Recomputes the priority and enters or
    /// leaves Fault.
    pub fn set_track(&mut self, now: Instant, index: usize, up: bool) {
        let Some(slot) = self.tracks_up.get_mut(index) else {
            return;
        };
        if *slot == up {
            return;
        }
        *slot = up;
        self.update_priority(now);
        if self.in_group {
            // The sync group decides on Fault (see `Vrrp::reconcile`).
            return;
        }
        let fault = self.own_fault();
        match self.state {
            State::Backup | State::Master if fault => self.enter_fault(now),
            State::Fault if !fault => self.leave_fault(now),
            _ => {}
        }
    }

    // keepalived vrrp_track.c vrrp_set_effective_priority: a backup whose priority rises
    // moves its down timer earlier by the change in Master_Down_Interval.
    fn update_priority(&mut self, _now: Instant) {
        let new = self.compute_priority();
        if new == self.effective_priority {
            return;
        }
        let old_mdi = self.master_down_interval();
        let increasing = new > self.effective_priority;
        self.effective_priority = new;
        if self.state == State::Backup && increasing {
            let new_mdi = self.master_down_interval();
            if let Some(t) = self.master_down_timer.as_mut() {
                *t = *t - (old_mdi - new_mdi);
            }
        }
    }

    pub(super) fn enter_fault(&mut self, now: Instant) {
        let from = self.state;
        match from {
            State::Master => self.leave_master(now, State::Fault, true),
            State::Backup => {
                self.state = State::Fault;
                self.clear_timers();
            }
            State::Fault | State::Initialize => return,
        }
        self.wants_master = false;
        self.events.push_back(Event::BecameFault { from });
    }

    /// keepalived `vrrp_state_leave_fault`: back to Backup with a full Master_Down_Interval
    /// (the owner goes straight to Master).
    pub(super) fn leave_fault(&mut self, now: Instant) {
        if self.state != State::Fault {
            return;
        }
        self.master_adver_cs = self.adver_cs;
        if self.base_priority == PRIO_OWNER && !self.in_group {
            self.become_master(now);
            return;
        }
        self.state = State::Backup;
        self.master_down_timer = Some(now + self.master_down_interval());
        self.events
            .push_back(Event::BecameBackup { from: State::Fault });
    }

    /// Handle every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.master_down_timer
            && t <= now
            && self.state == State::Backup
        {
            self.master_down_timer = None;
            self.master_down_fired(now);
        }
        if let Some(t) = self.adver_timer
            && t <= now
            && self.state == State::Master
        {
            //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.3
            //# - If the Adver_Timer fires, then:
            //#
            //#    + Send an ADVERTISEMENT
            //#
            //#    + Reset the Adver_Timer to Advertisement_Interval
            self.send_advert(self.effective_priority);
            self.adver_timer = Some(now + self.adver_interval());
        }
        if let Some(t) = self.refresh_at
            && t <= now
            && self.state == State::Master
            && let Some(period) = self.cfg.garp.master_refresh
        {
            self.events.push_back(Event::Announce {
                repeat: self.cfg.garp.master_refresh_repeat,
                reason: AnnounceReason::Refresh,
            });
            self.refresh_at = Some(now + period);
        }
        let mut due: Vec<Pending> = Vec::new();
        self.pending.retain(|p| {
            if p.at <= now {
                due.push(*p);
                false
            } else {
                true
            }
        });
        due.sort_by_key(|p| p.at);
        for p in due {
            self.events.push_back(Event::Announce {
                repeat: p.repeat,
                reason: p.reason,
            });
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.2
    //# - If the Master_Down_Timer fires, then:
    //#
    //#    + Send an ADVERTISEMENT
    //# ...
    //#    + Set the Adver_Timer to Advertisement_Interval
    //#
    //#    + Transition to the {Master} state
    fn master_down_fired(&mut self, now: Instant) {
        if self.in_group {
            // keepalived vrrp_state_goto_master / vrrp_sync_can_goto_master: want Master,
            // and re-arm; the group moves when every member wants it.
            self.wants_master = true;
            self.master_down_timer = Some(now + self.master_down_interval());
            return;
        }
        self.become_master(now);
    }

    /// keepalived `vrrp_state_master_tx` + `vrrp_state_become_master`: the advertisement
    /// first (so the old master drops the addresses before our gratuitous ARPs), then the
    /// state change and the announcements.
    pub(super) fn become_master(&mut self, now: Instant) {
        let from = self.state;
        if from == State::Master {
            return;
        }
        // keepalived vrrp_state_goto_master: "If becoming MASTER in IPSEC AH AUTH, we reset
        // the anti-replay" once the counter has cycled.
        if self.ah_cycle {
            self.ah_cycle = false;
            self.ah_seq = 0;
        }
        self.state = State::Master;
        self.master_adver_cs = self.adver_cs;
        self.master_down_timer = None;
        self.preempt_time = None;
        self.wants_master = false;
        self.master = None;
        self.send_advert(self.effective_priority);
        self.adver_timer = Some(now + self.adver_interval());
        self.stats.become_master += 1;
        self.events.push_back(Event::BecameMaster { from });
        let g = self.cfg.garp;
        if g.master_repeat > 0 {
            self.events.push_back(Event::Announce {
                repeat: g.master_repeat,
                reason: AnnounceReason::BecameMaster,
            });
            if !g.master_delay.is_zero() {
                self.pending.push(Pending {
                    at: now + g.master_delay,
                    repeat: g.master_repeat,
                    reason: AnnounceReason::MasterDelay,
                });
            }
        }
        self.refresh_at = g.master_refresh.map(|p| now + p);
    }

    /// keepalived `vrrp_state_leave_master`: optionally resign with priority 0, forget the
    /// pending announcements, go to `to`.
    fn leave_master(&mut self, now: Instant, to: State, send_prio0: bool) {
        if send_prio0 {
            self.send_advert(0);
        }
        self.adver_timer = None;
        self.pending.clear();
        self.refresh_at = None;
        self.stats.release_master += 1;
        self.state = to;
        if to == State::Backup {
            self.master_down_timer = Some(now + self.master_down_interval());
        }
    }

    /// Leave Master for Backup without resigning (a sync-group peer stepped down;
    /// keepalived `vrrp_sync_backup`).
    pub(super) fn force_backup(&mut self, now: Instant) {
        if self.state != State::Master {
            return;
        }
        self.master_adver_cs = self.adver_cs;
        self.leave_master(now, State::Backup, false);
        self.events.push_back(Event::BecameBackup {
            from: State::Master,
        });
    }

    /// Announce for a sync-group peer that heard a lower priority (keepalived
    /// `vrrp_state_master_rx`, "send GARP messages for any other member of the group").
    pub(super) fn announce_lower_prio(&mut self, now: Instant) {
        if self.state != State::Master || self.cfg.garp.lower_prio_repeat == 0 {
            return;
        }
        self.schedule_lower_prio(now);
    }

    fn schedule_lower_prio(&mut self, now: Instant) {
        let g = self.cfg.garp;
        self.events.push_back(Event::Announce {
            repeat: g.lower_prio_repeat,
            reason: AnnounceReason::LowerPriority,
        });
        if !g.lower_prio_delay.is_zero() {
            self.pending.push(Pending {
                at: now + g.lower_prio_delay,
                repeat: g.lower_prio_repeat,
                reason: AnnounceReason::LowerPriorityDelay,
            });
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let repr = AdvertRepr {
            version: self.cfg.version,
            family: self.family,
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.adver_cs as u16,
            auth: self.cfg.auth,
            addresses: &self.cfg.addresses,
        };
        let src = self.cfg.primary_ip;
        let dsts: Vec<IpAddr> = if self.cfg.unicast_peers.is_empty() {
            vec![self.family.multicast_group()]
        } else {
            self.cfg.unicast_peers.clone()
        };
        if let Some(key) = &self.ah_key {
            // keepalived vrrp_update_pkt, once per advertisement (every unicast peer gets
            // the same identification and sequence number): the IP identification skips 0
            // (the kernel would fill in its own), and the sequence number stops above
            // 0xFFFFFFFD ("cycle"; reset when this router next becomes master).
            self.ip_id = self.ip_id.wrapping_add(1);
            if self.ip_id == 0 {
                self.ip_id = 1;
            }
            if self.ah_seq > 0xFFFF_FFFD {
                self.ah_cycle = true;
            } else {
                self.ah_seq += 1;
            }
            let mut vrrp = vec![0u8; repr.buffer_len()];
            let (IpAddr::V4(src4), Ok(_)) = (src, repr.emit(&mut vrrp, src, src)) else {
                return;
            };
            for dst in dsts {
                let IpAddr::V4(dst4) = dst else { continue };
                let h = AhHeader {
                    src: src4,
                    dst: dst4,
                    ttl: TTL,
                    ident: self.ip_id,
                    seq: self.ah_seq,
                    unicast: !self.cfg.unicast_peers.is_empty(),
                };
                let mut payload = vec![0u8; ah::packet_len(vrrp.len())];
                if ah::emit_ipv4_keyed(&mut payload, &h, key, &vrrp).is_err() {
                    continue;
                }
                self.transmits.push_back(Transmit {
                    src,
                    dst,
                    ttl: TTL,
                    payload,
                    header_included: true,
                });
                self.stats.advert_sent += 1;
                if priority == 0 {
                    self.stats.pri_zero_sent += 1;
                }
            }
            return;
        }
        for dst in dsts {
            let mut payload = vec![0u8; repr.buffer_len()];
            // The configuration was validated: emit cannot fail.
            if repr.emit(&mut payload, src, dst).is_err() {
                continue;
            }
            self.transmits.push_back(Transmit {
                src,
                dst,
                ttl: TTL,
                payload,
                header_included: false,
            });
            self.stats.advert_sent += 1;
            if priority == 0 {
                self.stats.pri_zero_sent += 1;
            }
        }
    }

    /// Handle an advertisement received from `src` to `dst` with IP TTL / hop limit `ttl`
    /// (`bytes` is the IP payload). Refused advertisements are counted by reason in
    /// [`stats`](Self::stats) and returned as the error; they change nothing else.
    ///
    /// Checks, in order (keepalived `vrrp_check_packet`, with the checksum moved before the
    /// content checks so that corruption is reported as such): family; version, type and
    /// length; TTL 255 (multicast only — keepalived does not check unicast TTLs); version
    /// and VRID match; v2 authentication type, password and interval; v3 non-zero
    /// interval; checksum (v3 over IPv4 unicast also accepts keepalived's old
    /// multicast-group pseudo-header, `unicast_chksum_compat`); multicast vs unicast;
    /// address count and list — **dropped** on mismatch, as keepalived does, except that a
    /// backup with `skip_check_adv_addr` skips them for its current master; unicast source.
    ///
    /// A router with `auth_type AH` refuses these (they came without an AH header:
    /// [`AdvertError::AuthTypeMismatch`]); it takes [`handle_ah_packet`](Self::handle_ah_packet).
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<(), AdvertError> {
        self.receive(now, src, dst, ttl, bytes, None)
    }

    /// Handle a whole received IPv4 packet of protocol 51 (AH) for a router with
    /// `auth_type AH` (`packet` from its IP header on, as a raw socket delivers it).
    ///
    /// The checks of [`handle_advert`](Self::handle_advert), with keepalived's AH checks
    /// (vrrp.c `vrrp_check_packet` and `vrrp_in_chk_ipsecah`) in place of the password's:
    /// the ICV ([`super::ah`]), then the SPI equal to the source address, then the sequence
    /// number strictly greater than the last one accepted (or sent), which it then becomes —
    /// each refused as [`AdvertError::AuthFailure`], keepalived's `auth_failure`. AH
    /// carrying another protocol than VRRP is ignored without being counted, as keepalived
    /// drops it.
    pub fn handle_ah_packet(&mut self, now: Instant, packet: &[u8]) -> Result<(), AdvertError> {
        if self.state == State::Initialize {
            return Ok(());
        }
        let p = match AhPacket::parse(packet) {
            Ok(p) => p,
            Err(e) => {
                self.stats.errors[e.index()] += 1;
                return Err(e);
            }
        };
        if p.next_header() != super::packet::IP_PROTO_VRRP {
            return Ok(());
        }
        self.receive(
            now,
            p.src().into(),
            p.dst().into(),
            p.ttl(),
            p.vrrp(),
            Some(&p),
        )
    }

    fn receive(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
        ah: Option<&AhPacket<'_>>,
    ) -> Result<(), AdvertError> {
        if self.state == State::Initialize {
            return Ok(());
        }
        let check_addresses = !(self.state == State::Backup
            && self.cfg.skip_check_adv_addr
            && self.master.map(|(m, _)| m) == Some(src));
        let (priority, interval_cs, ah_seq) =
            match self.check(src, dst, ttl, bytes, check_addresses, ah) {
                Ok(v) => v,
                Err(e) => {
                    self.stats.errors[e.index()] += 1;
                    return Err(e);
                }
            };
        self.stats.advert_rcvd += 1;
        if priority == 0 {
            self.stats.pri_zero_rcvd += 1;
        }
        match self.state {
            State::Backup => {
                // keepalived vrrp_check_packet: a backup that accepts a sequence number at
                // least its own clears the cycle flag.
                if ah_seq.is_some() {
                    self.ah_cycle = false;
                }
                self.backup_rx(now, src, priority, interval_cs)
            }
            State::Master => self.master_rx(now, src, priority, interval_cs, ah_seq),
            State::Fault | State::Initialize => {}
        }
        Ok(())
    }

    /// The checks; on success the priority, the interval and (AH) the sequence number.
    fn check(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
        check_addresses: bool,
        ah: Option<&AhPacket<'_>>,
    ) -> Result<(u8, u16, Option<u32>), AdvertError> {
        if Family::of(src) != self.family || Family::of(dst) != self.family {
            return Err(AdvertError::WrongFamily);
        }
        // keepalived vrrp_check_packet: "Check we have an AH header if expect AH, and
        // don't have it if not" (authtype_mismatch).
        if ah.is_some() != matches!(self.cfg.auth, Auth::Ah(_)) {
            return Err(AdvertError::AuthTypeMismatch);
        }
        let mut ah_seq = None;
        let p = AdvertPacket::new_checked(bytes, self.family)?;
        let unicast = !self.cfg.unicast_peers.is_empty();
        //= https://www.rfc-editor.org/rfc/rfc5798#section-7.1
        //# - MUST verify that the IPv4 TTL or IPv6 Hop Limit is 255.
        if !unicast && ttl != TTL {
            return Err(AdvertError::BadTtl);
        }
        if p.version() != self.cfg.version {
            return Err(AdvertError::WrongVersion);
        }
        //= https://www.rfc-editor.org/rfc/rfc5798#section-7.1
        //# - MUST verify that the VRID is configured on the receiving interface
        //#   and the local router is not the IPvX address owner (Priority = 255
        //#   (decimal)).
        // The owner half is not enforced: keepalived processes such adverts too (that is
        // how it detects two owners), and RFC 9568 lowers it to a log.
        if p.vrid() != self.cfg.vrid {
            return Err(AdvertError::WrongVrid);
        }
        if self.cfg.version == Version::V2 {
            // keepalived vrrp_check_packet: invalid type, type mismatch, password,
            // interval, in this order.
            let at = p.auth_type().unwrap_or(auth_type::NONE);
            if !matches!(at, auth_type::NONE | auth_type::PASS | auth_type::AH) {
                return Err(AdvertError::BadAuthType);
            }
            if at != self.cfg.auth.auth_type() {
                return Err(AdvertError::AuthTypeMismatch);
            }
            if let Auth::Pass(pw) = self.cfg.auth {
                let got = p.auth_data().unwrap_or(&[]);
                // Constant time, as keepalived's memcmp_constant_time.
                let diff = got
                    .iter()
                    .zip(pw.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b));
                if diff != 0 || got.len() != pw.len() {
                    return Err(AdvertError::AuthFailure);
                }
            }
            if let (Some(key), Some(a)) = (&self.ah_key, ah) {
                // keepalived vrrp_in_chk_ipsecah: the ICV first ("If they don't match, we
                // can't consider any fields in the received packet to be valid"; the TTL
                // is outside it for an instance with unicast peers), then the SPI, then
                // the sequence number against replay; an accepted one becomes the
                // counter, even if a later check refuses the advertisement.
                if !a.verify_icv_keyed(key, unicast) || a.spi() != a.src() || a.seq() <= self.ah_seq
                {
                    return Err(AdvertError::AuthFailure);
                }
                self.ah_seq = a.seq();
                ah_seq = Some(a.seq());
            }
            //= https://www.rfc-editor.org/rfc/rfc3768#section-7.1
            //# -  MUST verify that the Adver Interval in the packet is the same as
            //#    the locally configured for this virtual router
            if u32::from(p.interval_cs()) != self.adver_cs {
                return Err(AdvertError::IntervalMismatch);
            }
        } else if p.interval_cs() == 0 {
            return Err(AdvertError::ZeroInterval);
        }
        if !p.verify_checksum(src, dst) {
            let compat = self.cfg.version == Version::V3
                && unicast
                && self.family == Family::Ipv4
                && p.verify_checksum(src, self.family.multicast_group());
            if !compat {
                return Err(AdvertError::BadChecksum);
            }
        }
        if dst.is_multicast() == unicast {
            return Err(AdvertError::UnexpectedCast);
        }
        if check_addresses {
            //= https://www.rfc-editor.org/rfc/rfc5798#section-7.1
            //# - MAY verify that "Count IPvX Addrs" and the list of IPvX
            //#   address(es) match the IPvX Address(es) configured for the VRID.
            if usize::from(p.count()) != self.cfg.addresses.len() {
                return Err(AdvertError::AddressCount);
            }
            if self.cfg.addresses.iter().any(|a| !p.contains(*a)) {
                return Err(AdvertError::AddressList);
            }
            if unicast && self.cfg.check_unicast_src && !self.cfg.unicast_peers.contains(&src) {
                return Err(AdvertError::NotUnicastPeer);
            }
        }
        Ok((p.priority(), p.interval_cs(), ah_seq))
    }

    // keepalived vrrp.c vrrp_state_backup.
    fn backup_rx(&mut self, now: Instant, src: IpAddr, priority: u8, interval_cs: u16) {
        let eff = self.effective_priority;
        if priority == 0 {
            //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.2
            //# + If the Priority in the ADVERTISEMENT is zero, then:
            //#
            //#    * Set the Master_Down_Timer to Skew_Time
            self.master_down_timer = Some(now + self.skew_time());
            return;
        }
        let delay_pending = match self.cfg.preempt {
            Preempt::After(_) => self.preempt_time.is_none_or(|t| t > now),
            _ => false,
        };
        //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.2
        //# * If Preempt_Mode is False, or if the Priority in the
        //#   ADVERTISEMENT is greater than or equal to the local
        //#   Priority, then:
        //#
        //#    @ Set Master_Adver_Interval to Adver Interval contained
        //#      in the ADVERTISEMENT
        //#
        //#    @ Recompute the Master_Down_Interval
        //#
        //#    @ Reset the Master_Down_Timer to Master_Down_Interval
        //#
        //# * else // preempt was true or priority was less
        //#
        //#    @ Discard the ADVERTISEMENT
        if self.cfg.preempt == Preempt::Never || priority >= eff || delay_pending {
            if self.cfg.version == Version::V3 {
                self.master_adver_cs = u32::from(interval_cs);
            }
            self.master_down_timer = Some(now + self.master_down_interval());
            self.master = Some((src, priority));
            if let Preempt::After(d) = self.cfg.preempt {
                if priority >= eff {
                    self.preempt_time = None;
                } else if self.preempt_time.is_none() {
                    self.preempt_time = Some(now + d);
                }
            }
            // keepalived: a backup held by its sync group wants Backup again.
            self.wants_master = false;
        } else {
            // Lower priority and free to preempt: discard; the down timer runs on.
            self.master = Some((src, priority));
        }
    }

    // keepalived vrrp.c vrrp_state_master_rx.
    fn master_rx(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        interval_cs: u16,
        ah_seq: Option<u32>,
    ) {
        let mut eff = self.effective_priority;
        let cmp = addr_cmp(src, self.cfg.primary_ip);
        let higher = priority > eff || (priority == eff && cmp == Ordering::Greater);
        if priority == 0 || (self.cfg.higher_prio_send_advert && higher) {
            //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.3
            //# -+ If the Priority in the ADVERTISEMENT is zero, then:
            //#
            //#  -* Send an ADVERTISEMENT
            //#
            //#  -* Reset the Adver_Timer to Advertisement_Interval
            self.send_advert(eff);
            if priority == 0 {
                self.adver_timer = Some(now + self.adver_interval());
                return;
            }
        }
        if priority == eff && cmp != Ordering::Equal && eff == PRIO_OWNER {
            // keepalived: "local instance and a remote instance are both configured as
            // address owner, please fix - reducing local priority".
            self.base_priority = PRIO_OWNER - 1;
            self.effective_priority = self.compute_priority();
            eff = self.effective_priority;
        }
        if priority < eff || (priority == eff && cmp == Ordering::Less) {
            // Split brain healing (keepalived): the legitimate master re-advertises at once
            // ("forcing new election") and re-announces its addresses, so that switches and
            // neighbours that followed the other master come back.
            if let Some(seq) = ah_seq {
                // keepalived: "IPSEC-AH : Syncing seq_num - Increment seq".
                self.ah_seq = seq.wrapping_add(1);
                self.ah_cycle = false;
            }
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(eff);
            }
            if self.cfg.garp.lower_prio_repeat > 0 {
                self.schedule_lower_prio(now);
            }
            self.lower_prio_heard = true;
            return;
        }
        if priority > eff || (priority == eff && cmp == Ordering::Greater) {
            //= https://www.rfc-editor.org/rfc/rfc5798#section-6.4.3
            //# -* If the Priority in the ADVERTISEMENT is greater than the
            //#    local Priority,
            //#    or
            //#    If the Priority in the ADVERTISEMENT is equal to
            //#    the local Priority and the primary IPvX Address of the
            //#    sender is greater than the local primary IPvX Address, then:
            //#
            //#  -@ Cancel Adver_Timer
            //#
            //#  -@ Set Master_Adver_Interval to Adver Interval contained
            //#     in the ADVERTISEMENT
            //#
            //#  -@ Recompute the Skew_Time
            //#
            //#   @ Recompute the Master_Down_Interval
            //#
            //#   @ Set Master_Down_Timer to Master_Down_Interval
            //#
            //#   @ Transition to the {Backup} state
            if self.cfg.version == Version::V3 {
                self.master_adver_cs = u32::from(interval_cs);
            }
            if ah_seq.is_some() {
                self.ah_cycle = false;
            }
            self.leave_master(now, State::Backup, false);
            self.master = Some((src, priority));
            self.stepped_down = true;
            self.events.push_back(Event::BecameBackup {
                from: State::Master,
            });
        }
        // Equal priority from our own address: keepalived warns and ignores it.
    }
}
