//! Piranha's `pulse`: the heartbeat between the primary and the backup director of the
//! seed documents' LVS cluster, sans-IO.
//!
//! Each side sends a 4-byte magic over UDP to the partner's `heartbeat_port` every
//! `keepalive` seconds: RUNNING (0xbdaddbda) while active, STOPPED (0xadbddabd) while not.
//! pulse writes the magic in host byte order; [`Heartbeat::to_bytes`] does the same
//! (native order) and [`Heartbeat::parse`] accepts either order, as Wireshark's pulse
//! dissector does. The rules (piranha `pulse.c`, `run()`):
//! - silence for `deadtime` seconds: an inactive node goes active ("partner dead");
//! - RUNNING heard while both are active: the backup steps down ("partner active:
//!   deactivating lvs") and the primary re-sends its gratuitous ARPs ("partner active:
//!   resending arps");
//! - STOPPED heard by an inactive primary: it goes active at once ("partner inactive");
//! - `backup_active = 0`: no backup is configured; the primary sends no heartbeats (and so
//!   goes active after `deadtime`), and a backup refuses to run ("backup is marked
//!   inactive -- exiting pulse").
//!
//! Two rvs extensions, both off the wire format: [`Pulse::shutdown`] sends one STOPPED
//! heartbeat (pulse just went silent), and a backup that hears STOPPED from a primary it
//! last heard RUNNING — a primary that resigned — takes over at once instead of waiting for
//! `deadtime`. At start-up (a primary never heard RUNNING) a backup keeps pulse's rule and
//! leaves activation to the primary, so two starting nodes never both go active.
//!
//! `monitor_links` (pulse.c `check_links()`, only with `backup_active`): the daemon reports
//! whether the links carrying this node's own addresses are up ([`Pulse::set_links_up`],
//! each loop, as pulse checks them each loop). A link down is "Local NIC link failure:
//! Pulse disabled": an active node deactivates, and the node does not activate (partner
//! dead or stopped) until the link is back ("Local NIC link(s) restored: Pulse enabled").
//! Heartbeats go on (STOPPED), so a backup that heard the primary RUNNING takes over at
//! once.
//!
//! Activation means: bring up each VIP (and the NAT router address), announce them, start
//! forwarding, run `active_cmd`. The announcements are timed [`PulseEvent::Announce`]
//! events: pulse's `sendArps` sends 5 gratuitous ARPs per address, one second apart.
//!
//! Failover services (`service = fos`, [`PulseConfig::fos`]): pulse.c `run()` swaps in
//! the FOS magics (RUNNING 0xbeefbabe, STOPPED 0xdeadbeef: "incompatible heartbeats will
//! ensure the user doesn't mix systems") and knows one more, STOPME (0xdeaddada). When the
//! inactive node's service monitor fails, pulse takes over ([`Pulse::take_over`],
//! `processChildTerm()`: "fos process exited -- performing service failover"); a backup
//! that takes over this way sends STOPME instead of RUNNING ("Notifying partner WE are
//! taking control!") until the partner reports STOPPED or falls silent, and stays active
//! when it hears the partner RUNNING ("partner active: we want control!"). An active
//! primary that hears STOPME goes inactive ("PARTNER HAS TOLD US TO GO INACTIVE!"). With
//! FOS the primary does not re-announce when both are active ("partner active"). What the
//! node runs around this is [`crate::fos`].

use core::time::Duration;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use crate::time::Instant;

/// The RUNNING magic (`HEARTBEAT_RUNNING_MAGIC`).
pub const RUNNING_MAGIC: u32 = 0xbdad_dbda;
/// The STOPPED magic (`HEARTBEAT_STOPPED_MAGIC`).
pub const STOPPED_MAGIC: u32 = 0xadbd_dabd;
/// The failover services' RUNNING magic (`FOS_HEARTBEAT_RUNNING_MAGIC`).
pub const FOS_RUNNING_MAGIC: u32 = 0xbeef_babe;
/// The failover services' STOPPED magic (`FOS_HEARTBEAT_STOPPED_MAGIC`).
pub const FOS_STOPPED_MAGIC: u32 = 0xdead_beef;
/// STOPME (`FOS_HEARTBEAT_STOPME_MAGIC`): a backup that took over from a failed service
/// tells the active primary to go inactive.
pub const FOS_STOPME_MAGIC: u32 = 0xdead_dada;
/// Magics pulse knows but rvs does not act on in a given mode: HOLD, HELD, and the other
/// mode's RUNNING and STOPPED (the three FOS magics with `service = lvs`, the two LVS ones
/// with `service = fos`).
pub const OTHER_PULSE_MAGICS: [u32; 7] = [
    0xdeaf_babe,
    0xdeaf_dada,
    FOS_RUNNING_MAGIC,
    FOS_STOPPED_MAGIC,
    FOS_STOPME_MAGIC,
    RUNNING_MAGIC,
    STOPPED_MAGIC,
];
/// The default heartbeat port (`heartbeat_port`).
pub const DEFAULT_PORT: u16 = 539;

/// A heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Heartbeat {
    /// The sender is active.
    Running,
    /// The sender is inactive.
    Stopped,
    /// Failover services only: the sender, a backup that took over when the service it
    /// monitored failed, tells an active primary to go inactive.
    StopMe,
}

/// Why a heartbeat was refused (counted per reason by [`Pulse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeartbeatError {
    /// Not exactly 4 bytes ("bad heartbeat packet").
    BadLength,
    /// From an address other than the partner's ("Unexpected heartbeat").
    NotPartner,
    /// A magic of another pulse mode (failover services, hold) — "Incompatible heartbeat
    /// received -- other system not using identical services".
    Incompatible,
    /// Not a pulse magic at all.
    BadMagic,
}

impl HeartbeatError {
    /// Number of reasons.
    pub const COUNT: usize = 4;

    /// A dense index for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatError::BadLength => "bad_length",
            HeartbeatError::NotPartner => "not_partner",
            HeartbeatError::Incompatible => "incompatible",
            HeartbeatError::BadMagic => "bad_magic",
        }
    }
}

impl core::fmt::Display for HeartbeatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for HeartbeatError {}

impl Heartbeat {
    /// The magic with `service = lvs` (STOPME has one magic in both modes).
    pub fn magic(self) -> u32 {
        self.magic_in(false)
    }

    /// The magic with `service = fos` when `fos`, else with `service = lvs`.
    pub fn magic_in(self, fos: bool) -> u32 {
        match (self, fos) {
            (Heartbeat::Running, false) => RUNNING_MAGIC,
            (Heartbeat::Stopped, false) => STOPPED_MAGIC,
            (Heartbeat::Running, true) => FOS_RUNNING_MAGIC,
            (Heartbeat::Stopped, true) => FOS_STOPPED_MAGIC,
            (Heartbeat::StopMe, _) => FOS_STOPME_MAGIC,
        }
    }

    /// The 4 bytes on the wire with `service = lvs`, in host order as pulse sends them.
    pub fn to_bytes(self) -> [u8; 4] {
        self.magic().to_ne_bytes()
    }

    /// The 4 bytes on the wire in the mode `fos` says, in host order.
    pub fn to_bytes_in(self, fos: bool) -> [u8; 4] {
        self.magic_in(fos).to_ne_bytes()
    }

    /// Parse a received datagram with `service = lvs`, in either byte order.
    pub fn parse(bytes: &[u8]) -> Result<Heartbeat, HeartbeatError> {
        Heartbeat::parse_in(bytes, false)
    }

    /// Parse a received datagram in the mode `fos` says, in either byte order: the other
    /// mode's magics are [`HeartbeatError::Incompatible`] (and so is STOPME with
    /// `service = lvs`, which only fos sends).
    pub fn parse_in(bytes: &[u8], fos: bool) -> Result<Heartbeat, HeartbeatError> {
        let b: [u8; 4] = bytes.try_into().map_err(|_| HeartbeatError::BadLength)?;
        let known: &[Heartbeat] = if fos {
            &[Heartbeat::Running, Heartbeat::Stopped, Heartbeat::StopMe]
        } else {
            &[Heartbeat::Running, Heartbeat::Stopped]
        };
        for m in [u32::from_le_bytes(b), u32::from_be_bytes(b)] {
            if let Some(h) = known.iter().find(|h| h.magic_in(fos) == m) {
                return Ok(*h);
            }
        }
        let le = u32::from_le_bytes(b);
        let be = u32::from_be_bytes(b);
        if OTHER_PULSE_MAGICS.contains(&le) || OTHER_PULSE_MAGICS.contains(&be) {
            Err(HeartbeatError::Incompatible)
        } else {
            Err(HeartbeatError::BadMagic)
        }
    }
}

/// Which node this is (pulse decides by finding `primary`'s address on a local interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The `primary` node: wins ties, activates when both are inactive.
    Primary,
    /// The `backup` node.
    Backup,
}

/// The heartbeat configuration (lvs.cf's redundancy keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulseConfig {
    /// This node's role.
    pub role: Role,
    /// The partner's address (`backup` on the primary, `primary` on the backup; the private
    /// addresses when heartbeats use the private network).
    pub partner: IpAddr,
    /// `heartbeat_port` \[539\].
    pub port: u16,
    /// `keepalive` \[2 s\]: time between heartbeats.
    pub keepalive: Duration,
    /// `deadtime` \[5 s\]: silence before the partner is declared dead.
    pub deadtime: Duration,
    /// `backup_active` \[0\]: whether a backup node is configured.
    pub backup_active: bool,
    /// pulse `--forceactive`: start active.
    pub force_active: bool,
    /// Gratuitous ARPs per address on activation and re-announcement (pulse: 5).
    pub arp_count: u32,
    /// Time between them (pulse: 1 s).
    pub arp_interval: Duration,
    /// `monitor_links` \[0\]: a link of this node's own addresses going down disables it
    /// (only with `backup_active`, as pulse.c `check_links()`).
    pub monitor_links: bool,
    /// `service = fos`: the FOS magics, STOPME, and [`Pulse::take_over`].
    pub fos: bool,
}

impl PulseConfig {
    /// Piranha's defaults for `role` with `partner`.
    pub fn new(role: Role, partner: IpAddr) -> PulseConfig {
        PulseConfig {
            role,
            partner,
            port: DEFAULT_PORT,
            keepalive: Duration::from_secs(2),
            deadtime: Duration::from_secs(5),
            backup_active: true,
            force_active: false,
            arp_count: 5,
            arp_interval: Duration::from_secs(1),
            monitor_links: false,
            fos: false,
        }
    }
}

/// Why a [`PulseConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PulseConfigError {
    /// This is the backup node but `backup_active` is 0 (pulse exits).
    BackupInactive,
    /// `keepalive` or `deadtime` is zero.
    ZeroInterval,
}

impl core::fmt::Display for PulseConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PulseConfigError::BackupInactive => "backup node while backup_active = 0",
            PulseConfigError::ZeroInterval => "keepalive and deadtime must be non-zero",
        })
    }
}

impl std::error::Error for PulseConfigError {}

/// Why the node went active or inactive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `--forceactive` at start.
    Forced,
    /// No heartbeat for `deadtime`.
    PartnerDead,
    /// The partner reported STOPPED.
    PartnerStopped,
    /// The partner reported RUNNING while this backup was active.
    PartnerActive,
    /// [`Pulse::shutdown`].
    Shutdown,
    /// `monitor_links`: a link of this node's addresses went down.
    LinkFailure,
    /// Failover services: this inactive node's monitor of the partner's service failed.
    ServiceFailed,
    /// Failover services: the partner sent STOPME (it took over from a failed service).
    PartnerTookOver,
}

/// What the daemon must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PulseEvent {
    /// Go active: bring up the VIPs and the NAT router address, start forwarding, run
    /// `active_cmd`. [`PulseEvent::Announce`] events follow.
    Activate(Reason),
    /// Go inactive: remove the addresses, stop forwarding, run `inactive_cmd`.
    Deactivate(Reason),
    /// Send one gratuitous ARP for every VIP and the NAT router address, now.
    Announce,
}

/// A heartbeat to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatTransmit {
    /// The partner's address and heartbeat port.
    pub dst: SocketAddr,
    /// The 4 bytes.
    pub payload: [u8; 4],
}

/// The heartbeat state machine of one node.
#[derive(Debug, Clone)]
pub struct Pulse {
    cfg: PulseConfig,
    active: bool,
    stopped: bool,
    send_at: Instant,
    need_at: Instant,
    /// The partner's last heartbeat was RUNNING.
    partner_running: bool,
    /// `monitor_links`: a local link is down (pulse's `PULSE_FLAG_LINKFAIL`).
    link_fail: bool,
    /// Failover services: this backup took over from a failed service and tells the
    /// partner to stop (pulse's `PULSE_FLAG_FAILPARTNER`).
    fail_partner: bool,
    announces: VecDeque<Instant>,
    transmits: VecDeque<HeartbeatTransmit>,
    events: VecDeque<PulseEvent>,
    errors: [u64; HeartbeatError::COUNT],
    received: u64,
    sent: u64,
}

impl Pulse {
    /// Start at `now`: inactive (or active with `force_active`), first heartbeat after
    /// `keepalive`, partner declared dead after `deadtime` of silence.
    pub fn new(cfg: PulseConfig, now: Instant) -> Result<Pulse, PulseConfigError> {
        if cfg.role == Role::Backup && !cfg.backup_active {
            return Err(PulseConfigError::BackupInactive);
        }
        if cfg.keepalive.is_zero() || cfg.deadtime.is_zero() {
            return Err(PulseConfigError::ZeroInterval);
        }
        let mut p = Pulse {
            cfg,
            active: false,
            stopped: false,
            send_at: now + cfg.keepalive,
            need_at: now + cfg.deadtime,
            partner_running: false,
            link_fail: false,
            fail_partner: false,
            announces: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            errors: [0; HeartbeatError::COUNT],
            received: 0,
            sent: 0,
        };
        if cfg.force_active {
            p.activate(now, Reason::Forced);
        }
        Ok(p)
    }

    /// The configuration.
    pub fn config(&self) -> &PulseConfig {
        &self.cfg
    }

    /// True while active (owning the VIPs).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// True while `monitor_links` holds the node inactive for a local link failure.
    pub fn link_failed(&self) -> bool {
        self.link_fail
    }

    /// Whether the links carrying this node's own addresses are up, checked by the daemon
    /// each loop (pulse.c `run()` → `check_links()`). Acted on only with `monitor_links`
    /// and `backup_active` ("us being quasi-up is better than nothing up at all"). Returns
    /// true when the link state changed: down → "Local NIC link failure: Pulse disabled"
    /// (an active node deactivates), up → "Local NIC link(s) restored: Pulse enabled".
    pub fn set_links_up(&mut self, now: Instant, up: bool) -> bool {
        if !self.cfg.monitor_links || !self.cfg.backup_active || self.stopped {
            return false;
        }
        match (up, self.link_fail) {
            (false, false) => {
                self.link_fail = true;
                if self.active {
                    self.deactivate(Reason::LinkFailure);
                }
                true
            }
            (true, true) => {
                self.link_fail = false;
                // The partner has the floor: wait a full deadtime before judging it dead.
                self.need_at = now + self.cfg.deadtime;
                true
            }
            _ => false,
        }
    }

    /// Refused heartbeats of one reason.
    pub fn errors(&self, e: HeartbeatError) -> u64 {
        self.errors[e.index()]
    }

    /// Valid heartbeats received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Heartbeats sent.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    fn activate(&mut self, now: Instant, why: Reason) {
        self.active = true;
        self.events.push_back(PulseEvent::Activate(why));
        self.schedule_announces(now);
    }

    fn deactivate(&mut self, why: Reason) {
        self.active = false;
        self.announces.clear();
        self.events.push_back(PulseEvent::Deactivate(why));
    }

    fn schedule_announces(&mut self, now: Instant) {
        self.announces.clear();
        for k in 0..self.cfg.arp_count {
            self.announces.push_back(now + self.cfg.arp_interval * k);
        }
        // The first burst is due now.
        self.flush_announces(now);
    }

    fn flush_announces(&mut self, now: Instant) {
        while self.announces.front().is_some_and(|t| *t <= now) {
            self.announces.pop_front();
            self.events.push_back(PulseEvent::Announce);
        }
    }

    /// Handle a datagram received on the heartbeat port from `src`.
    pub fn handle_heartbeat(
        &mut self,
        now: Instant,
        src: IpAddr,
        bytes: &[u8],
    ) -> Result<(), HeartbeatError> {
        if self.stopped {
            return Ok(());
        }
        let hb = if src != self.cfg.partner {
            Err(HeartbeatError::NotPartner)
        } else {
            Heartbeat::parse_in(bytes, self.cfg.fos)
        };
        let hb = match hb {
            Ok(h) => h,
            Err(e) => {
                self.errors[e.index()] += 1;
                return Err(e);
            }
        };
        self.received += 1;
        let primary = self.cfg.role == Role::Primary;
        let hb = if hb == Heartbeat::StopMe {
            if self.active && primary {
                // pulse.c: "PARTNER HAS TOLD US TO GO INACTIVE!" (then read as RUNNING).
                self.deactivate(Reason::PartnerTookOver);
            }
            Heartbeat::Running
        } else {
            hb
        };
        match hb {
            Heartbeat::Running | Heartbeat::StopMe => {
                if self.active && !primary {
                    if !self.fail_partner {
                        // pulse.c: "partner active: deactivating lvs" (fos: "...
                        // deactivating services"); with FAILPARTNER: "partner active: we
                        // want control!", and STOPME goes on.
                        self.deactivate(Reason::PartnerActive);
                    }
                } else if self.active && primary && !self.cfg.fos {
                    // pulse.c: "partner active: resending arps" (fos: only "partner
                    // active").
                    self.schedule_announces(now);
                }
                self.partner_running = true;
            }
            Heartbeat::Stopped => {
                // pulse.c: "Don't tell partner to go inactive if he has".
                self.fail_partner = false;
                let resigned = !primary && self.partner_running;
                if !self.active && !self.link_fail && (primary || resigned) {
                    // pulse.c: "partner inactive: activating lvs" (primary); rvs: a
                    // resigning primary hands over at once.
                    self.activate(now, Reason::PartnerStopped);
                }
                self.partner_running = false;
            }
        }
        self.need_at = now + self.cfg.deadtime;
        Ok(())
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let t = self.send_at.min(self.need_at);
        Some(self.announces.front().map_or(t, |a| t.min(*a)))
    }

    /// Handle the timers due at `now`. Like pulse's loop, the earlier of the send and the
    /// dead timers runs first, the send timer on a tie.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        self.flush_announces(now);
        loop {
            let send_first = self.send_at <= self.need_at;
            let next = if send_first {
                self.send_at
            } else {
                self.need_at
            };
            if next > now {
                break;
            }
            if send_first {
                if self.cfg.backup_active {
                    self.send(if self.fail_partner {
                        // pulse.c: "Notifying partner WE are taking control!"
                        Heartbeat::StopMe
                    } else if self.active {
                        Heartbeat::Running
                    } else {
                        Heartbeat::Stopped
                    });
                }
                self.send_at = now + self.cfg.keepalive;
            } else {
                if !self.active && !self.link_fail {
                    // pulse.c: "partner dead: activating lvs".
                    self.partner_running = false;
                    self.activate(now, Reason::PartnerDead);
                }
                // pulse.c: FAILPARTNER is cleared once the partner is dead.
                self.fail_partner = false;
                self.need_at = now + self.cfg.deadtime;
            }
        }
    }

    /// Failover services: the monitor of the partner's service failed (pulse.c
    /// `processChildTerm()`: "fos process exited -- performing service failover"). An
    /// inactive node goes active; a backup then tells the partner to stop (STOPME) until it
    /// reports STOPPED or falls silent ("In a tie, master wins. But in this failure case,
    /// we want to win the tie this time!"). Nothing happens while active, stopped, or while
    /// `monitor_links` holds the node down. True when the node went active.
    pub fn take_over(&mut self, now: Instant) -> bool {
        if !self.cfg.fos || self.active || self.stopped || self.link_fail {
            return false;
        }
        self.activate(now, Reason::ServiceFailed);
        if self.cfg.role == Role::Backup {
            self.fail_partner = true;
        }
        true
    }

    /// True while this backup tells its partner to stop (STOPME).
    pub fn failing_partner(&self) -> bool {
        self.fail_partner
    }

    fn send(&mut self, hb: Heartbeat) {
        self.transmits.push_back(HeartbeatTransmit {
            dst: SocketAddr::new(self.cfg.partner, self.cfg.port),
            payload: hb.to_bytes_in(self.cfg.fos),
        });
        self.sent += 1;
    }

    /// The next heartbeat to send.
    pub fn poll_transmit(&mut self) -> Option<HeartbeatTransmit> {
        self.transmits.pop_front()
    }

    /// The next thing the daemon must do.
    pub fn poll_event(&mut self) -> Option<PulseEvent> {
        self.events.pop_front()
    }

    /// Stop: go inactive and tell the partner with one STOPPED heartbeat (an rvs extension:
    /// the partner, if it is the backup and last saw us RUNNING, takes over at once).
    pub fn shutdown(&mut self, _now: Instant) {
        if self.stopped {
            return;
        }
        if self.active {
            self.deactivate(Reason::Shutdown);
        }
        if self.cfg.backup_active {
            self.send(Heartbeat::Stopped);
        }
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const P: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2));

    fn ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn magic_bytes_both_orders() {
        assert_eq!(Heartbeat::Running.to_bytes(), 0xbdaddbdau32.to_ne_bytes());
        assert_eq!(
            Heartbeat::parse(&[0xda, 0xdb, 0xad, 0xbd]),
            Ok(Heartbeat::Running)
        );
        assert_eq!(
            Heartbeat::parse(&[0xbd, 0xad, 0xdb, 0xda]),
            Ok(Heartbeat::Running)
        );
        assert_eq!(
            Heartbeat::parse(&[0xbd, 0xda, 0xbd, 0xad]),
            Ok(Heartbeat::Stopped)
        );
        assert_eq!(
            Heartbeat::parse(&Heartbeat::Stopped.to_bytes()),
            Ok(Heartbeat::Stopped)
        );
        assert_eq!(Heartbeat::parse(&[1, 2, 3]), Err(HeartbeatError::BadLength));
        assert_eq!(Heartbeat::parse(&[0; 5]), Err(HeartbeatError::BadLength));
        assert_eq!(
            Heartbeat::parse(&0xdeadbeefu32.to_be_bytes()),
            Err(HeartbeatError::Incompatible)
        );
        assert_eq!(Heartbeat::parse(&[0; 4]), Err(HeartbeatError::BadMagic));
    }

    /// Two nodes exchanging heartbeats with instantaneous delivery.
    struct Pair {
        now: Instant,
        nodes: [Pulse; 2],
        alive: [bool; 2],
        /// A partition: both run, nothing is delivered.
        cut: bool,
        log: Vec<(Instant, usize, PulseEvent)>,
    }

    impl Pair {
        fn new() -> Pair {
            Pair::with(
                PulseConfig::new(Role::Primary, B),
                PulseConfig::new(Role::Backup, P),
            )
        }

        fn with(p: PulseConfig, b: PulseConfig) -> Pair {
            let mut pair = Pair {
                now: Instant::ZERO,
                nodes: [
                    Pulse::new(p, Instant::ZERO).unwrap(),
                    Pulse::new(b, Instant::ZERO).unwrap(),
                ],
                alive: [true, true],
                cut: false,
                log: Vec::new(),
            };
            pair.flush();
            pair
        }

        fn flush(&mut self) {
            loop {
                let mut any = false;
                for i in 0..2 {
                    while let Some(tx) = self.nodes[i].poll_transmit() {
                        any = true;
                        let j = 1 - i;
                        if self.alive[i] && self.alive[j] && !self.cut {
                            let src = self.nodes[j].cfg.partner;
                            assert_eq!(tx.dst.port(), 539);
                            self.nodes[j]
                                .handle_heartbeat(self.now, src, &tx.payload)
                                .unwrap();
                        }
                    }
                    while let Some(e) = self.nodes[i].poll_event() {
                        self.log.push((self.now, i, e));
                    }
                }
                if !any {
                    break;
                }
            }
        }

        fn run_until(&mut self, t: Instant) {
            loop {
                let next = (0..2)
                    .filter(|&i| self.alive[i])
                    .filter_map(|i| self.nodes[i].poll_timeout())
                    .min();
                match next {
                    Some(n) if n <= t => {
                        self.now = self.now.max(n);
                        let now = self.now;
                        for i in 0..2 {
                            if self.alive[i]
                                && self.nodes[i].poll_timeout().is_some_and(|x| x <= now)
                            {
                                self.nodes[i].handle_timeout(now);
                            }
                        }
                        self.flush();
                    }
                    _ => break,
                }
            }
            self.now = t;
        }

        fn events(&self, i: usize, f: impl Fn(&PulseEvent) -> bool) -> Vec<Instant> {
            self.log
                .iter()
                .filter(|(_, n, e)| *n == i && f(e))
                .map(|(t, _, _)| *t)
                .collect()
        }
    }

    /// pulse.c `check_links()` with `monitor_links` and `backup_active`: the active
    /// primary's link goes down → "Local NIC link failure", it deactivates, its STOPPED
    /// heartbeat hands over to the backup; it does not activate while the link is down,
    /// even with the backup gone; with the link back it is enabled again.
    #[test]
    fn link_failure_releases_and_blocks_activation_until_the_link_is_back() {
        let mut pc = PulseConfig::new(Role::Primary, B);
        pc.monitor_links = true;
        let mut bc = PulseConfig::new(Role::Backup, P);
        bc.monitor_links = true;
        let mut p = Pair::with(pc, bc);
        p.run_until(ms(9_000));
        assert!(p.nodes[0].is_active());
        assert!(
            !p.nodes[0].set_links_up(ms(9_000), true),
            "up and up: no change"
        );
        p.now = ms(9_500);
        assert!(p.nodes[0].set_links_up(p.now, false));
        assert!(!p.nodes[0].set_links_up(p.now, false), "reported once");
        assert!(p.nodes[0].link_failed());
        p.flush();
        assert_eq!(
            p.events(0, |e| *e == PulseEvent::Deactivate(Reason::LinkFailure)),
            vec![ms(9_500)]
        );
        // Its next heartbeat (10 s) is STOPPED: the backup, which heard RUNNING, takes over.
        p.run_until(ms(10_500));
        assert_eq!(
            p.events(1, |e| *e == PulseEvent::Activate(Reason::PartnerStopped)),
            vec![ms(10_000)]
        );
        // The backup dies; the primary's link is still down: it stays inactive.
        p.alive[1] = false;
        p.run_until(ms(30_000));
        assert!(!p.nodes[0].is_active());
        assert_eq!(
            p.events(0, |e| matches!(e, PulseEvent::Activate(_))).len(),
            1
        );
        // Link back: enabled again; after a deadtime of silence it activates.
        assert!(p.nodes[0].set_links_up(ms(30_000), true));
        assert!(!p.nodes[0].link_failed());
        p.run_until(ms(40_000));
        assert_eq!(
            p.events(0, |e| *e == PulseEvent::Activate(Reason::PartnerDead)),
            vec![ms(35_000)]
        );
    }

    #[test]
    fn links_are_watched_only_with_monitor_links_and_backup_active() {
        // No monitor_links: a link report changes nothing.
        let mut p = Pair::new();
        p.run_until(ms(9_000));
        assert!(!p.nodes[0].set_links_up(ms(9_000), false));
        assert!(p.nodes[0].is_active() && !p.nodes[0].link_failed());
        // monitor_links without a backup: pulse.c ignores it (quasi-up beats nothing up).
        let mut cfg = PulseConfig::new(Role::Primary, B);
        cfg.monitor_links = true;
        cfg.backup_active = false;
        let mut alone = Pulse::new(cfg, Instant::ZERO).unwrap();
        alone.handle_timeout(ms(5_000));
        assert!(alone.is_active());
        assert!(!alone.set_links_up(ms(5_000), false));
        assert!(alone.is_active());
    }

    #[test]
    fn both_inactive_the_primary_activates_on_the_first_stopped_heartbeat() {
        let mut p = Pair::new();
        p.run_until(ms(30_000));
        // Both send STOPPED at 2 s; the primary hears it and activates, the backup does not.
        assert_eq!(
            p.events(0, |e| matches!(e, PulseEvent::Activate(_))),
            vec![ms(2000)]
        );
        assert!(
            p.events(1, |e| matches!(e, PulseEvent::Activate(_)))
                .is_empty()
        );
        assert!(p.nodes[0].is_active());
        assert!(!p.nodes[1].is_active());
        // Five announcements one second apart.
        assert_eq!(
            p.events(0, |e| *e == PulseEvent::Announce),
            vec![ms(2000), ms(3000), ms(4000), ms(5000), ms(6000)]
        );
    }

    #[test]
    fn primary_dies_backup_activates_after_deadtime() {
        let mut p = Pair::new();
        p.run_until(ms(9_000));
        // The primary's last heartbeat left at 8 s (every 2 s).
        p.alive[0] = false;
        p.run_until(ms(30_000));
        assert_eq!(
            p.events(1, |e| *e == PulseEvent::Activate(Reason::PartnerDead)),
            vec![ms(13_000)]
        );
    }

    #[test]
    fn both_active_the_backup_steps_down_and_the_primary_reannounces() {
        let mut p = Pair::new();
        p.run_until(ms(9_000));
        // A partition: the backup hears nothing and activates 5 s after the last heartbeat
        // (8 s); the primary stays active.
        p.cut = true;
        p.run_until(ms(13_500));
        assert_eq!(
            p.events(1, |e| *e == PulseEvent::Activate(Reason::PartnerDead)),
            vec![ms(13_000)]
        );
        assert!(p.nodes[0].is_active());
        p.cut = false;
        // Both send RUNNING at 14 s: the backup hears the primary and steps down; the
        // primary hears the backup and re-sends its gratuitous ARPs.
        p.run_until(ms(20_000));
        assert_eq!(
            p.events(1, |e| *e == PulseEvent::Deactivate(Reason::PartnerActive)),
            vec![ms(14_000)]
        );
        assert!(!p.nodes[1].is_active());
        assert!(p.nodes[0].is_active());
        assert_eq!(
            p.events(0, |e| *e == PulseEvent::Announce)
                .into_iter()
                .filter(|t| *t >= ms(14_000))
                .collect::<Vec<_>>(),
            vec![ms(14_000), ms(15_000), ms(16_000), ms(17_000), ms(18_000)]
        );
    }

    #[test]
    fn resigning_primary_hands_over_at_once() {
        let mut p = Pair::new();
        p.run_until(ms(9_500));
        let now = p.now;
        p.nodes[0].shutdown(now);
        p.flush();
        p.alive[0] = false;
        assert_eq!(
            p.events(0, |e| *e == PulseEvent::Deactivate(Reason::Shutdown)),
            vec![ms(9_500)]
        );
        assert_eq!(
            p.events(1, |e| *e == PulseEvent::Activate(Reason::PartnerStopped)),
            vec![ms(9_500)]
        );
    }

    #[test]
    fn no_backup_configured() {
        let mut cfg = PulseConfig::new(Role::Primary, B);
        cfg.backup_active = false;
        let mut n = Pulse::new(cfg, Instant::ZERO).unwrap();
        n.handle_timeout(ms(4_000));
        assert!(n.poll_transmit().is_none());
        assert!(!n.is_active());
        n.handle_timeout(ms(5_000));
        assert_eq!(
            n.poll_event(),
            Some(PulseEvent::Activate(Reason::PartnerDead))
        );
        assert!(n.poll_transmit().is_none());
        let mut b = PulseConfig::new(Role::Backup, P);
        b.backup_active = false;
        assert_eq!(
            Pulse::new(b, Instant::ZERO).err(),
            Some(PulseConfigError::BackupInactive)
        );
    }

    #[test]
    fn forced_active_and_refused_heartbeats() {
        let mut cfg = PulseConfig::new(Role::Backup, P);
        cfg.force_active = true;
        let mut n = Pulse::new(cfg, Instant::ZERO).unwrap();
        assert_eq!(n.poll_event(), Some(PulseEvent::Activate(Reason::Forced)));
        assert_eq!(n.poll_event(), Some(PulseEvent::Announce));
        assert_eq!(
            n.handle_heartbeat(ms(1), B, &Heartbeat::Running.to_bytes()),
            Err(HeartbeatError::NotPartner)
        );
        assert_eq!(
            n.handle_heartbeat(ms(1), P, &[0, 0]),
            Err(HeartbeatError::BadLength)
        );
        assert_eq!(n.errors(HeartbeatError::NotPartner), 1);
        assert_eq!(n.errors(HeartbeatError::BadLength), 1);
        assert!(n.is_active());
        // Refused datagrams do not push the dead timer: the node stays as it is, and a
        // good RUNNING makes this active backup step down.
        n.handle_heartbeat(ms(2), P, &Heartbeat::Running.to_bytes())
            .unwrap();
        assert!(!n.is_active());
        assert_eq!(n.received(), 1);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8),
                        from_partner in any::<bool>(), primary in any::<bool>(),
                        t in 0u64..20_000) {
            let role = if primary { Role::Primary } else { Role::Backup };
            let mut n = Pulse::new(PulseConfig::new(role, P), Instant::ZERO).unwrap();
            let src = if from_partner { P } else { B };
            let _ = n.handle_heartbeat(ms(t), src, &bytes);
            n.handle_timeout(ms(t + 1));
            prop_assert!(n.poll_timeout().is_some_and(|x| x > ms(t + 1)));
        }
    }
}
