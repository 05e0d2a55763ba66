//! Connection synchronisation in the engine: which connections an active director (the
//! *master*) tells its backups about and when, and what a *backup* does with what it is
//! told, so that after a takeover the backup forwards established connections to the same
//! real server with the same NAT / FullNAT mapping. This is the connection half of the
//! kernel's `net/netfilter/ipvs/ip_vs_sync.c`: `ip_vs_sync_conn_needed()` and
//! `ip_vs_sync_conn()` on the master, `ip_vs_proc_conn()` on the backup.
//!
//! Master: while [`Director::set_sync`] has settings, each client packet of a connection
//! (the input direction, as the kernel's `ip_vs_in()`) counts in the entry's `in_pkts`, and
//! when the kernel's rule says so a [`SyncRecord`] of the connection — and then of the
//! persistence template controlling it — goes into a bounded queue. The daemon takes them
//! with [`Director::poll_sync`], packs them with [`crate::sync::SyncMessageBuilder`]
//! ([`SyncRecord::to_conn`]) and multicasts the messages. Nothing on the packet path
//! allocates: the queue is allocated by `set_sync`. With sync off the packet path pays one
//! branch per packet and `in_pkts` is not counted.
//!
//! Backup: [`Director::sync_import`] applies one received record: it creates the entry
//! (bound to the real server, so its active/inactive count moves as the kernel's
//! `ip_vs_bind_dest()` does) or updates the one there (state, activity, timeout). Both
//! roles can be on at once, as in the kernel. A SYN-proxied connection's sequence delta
//! travels in the kernel's sequence-adjustment option (`IPVS_OPT_SEQ_DATA`, mapping in
//! [`synproxy::to_sync_seq`]), so the backup translates its segments after a takeover.
//!
//! Not here: the sockets, the message syncid filter ([`crate::sync::SyncMessage::accepted_by`]),
//! version 0 sending, `sync_refresh_period` / `sync_retries` (rvs implements the kernel's
//! default, 0: sync by packet count and state change only), `sync_persist_mode`, the SIP
//! persistence engine, and linking a synced connection to its synced template (the kernel
//! does not either: each is refreshed by its own records).

use super::{Core, DestId, Director, ServiceId, bind, release};
use crate::conn::sctp::SctpState;
use crate::conn::state::{Activity, ConnFlags, TcpState, UDP_STATE};
use crate::conn::table::{Conn, ConnId, ConnTable, InKey, NewConn, OutKey, SeqProxy, SyncMeta};
use crate::director::Af;
use crate::director::ftp::{self, SeqAdjust};
use crate::director::synproxy;
use crate::model::{ForwardMethod, ServiceKey};
use crate::sync::{Seq, SeqData, SyncConn, flags};
use crate::time::Instant;
use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::IpAddr;

/// The kernel's default `sync_threshold` (`DEFAULT_SYNC_THRESHOLD`).
pub const DEFAULT_THRESHOLD: u32 = 3;

/// The kernel's default `sync_period` (`DEFAULT_SYNC_PERIOD`).
pub const DEFAULT_PERIOD: u32 = 50;

/// Records held for the daemon by default.
pub const DEFAULT_QUEUE_LEN: usize = 8192;

/// The timeout of a synced template whose record has none (version 0): `cp->timeout =
/// 3*60*HZ` in `ip_vs_proc_conn()`.
const TEMPLATE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(3 * 60);

/// States of the kernel's template state table (`IP_VS_CTPL_S_LAST`: NONE, ASSURED).
const CTPL_STATES: u16 = 2;

/// The master role's settings (`ipvsadm --start-daemon master --syncid N` and the
/// `net.ipv4.vs.sync_threshold` sysctl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncSettings {
    /// The sync id written in every message (a backup with a non-zero id ignores others).
    pub syncid: u8,
    /// `sync_threshold[0]`: a connection is synced when its input packet count modulo
    /// [`SyncSettings::period`] equals this.
    pub threshold: u32,
    /// `sync_threshold[1]`: 0 syncs a connection once, at the threshold, and on state
    /// changes.
    pub period: u32,
    /// Records held until [`Director::poll_sync`] takes them; when full the oldest is
    /// dropped ([`SyncCounters::dropped`]).
    pub queue_len: usize,
}

impl Default for SyncSettings {
    /// syncid 0, the kernel's "3 50", [`DEFAULT_QUEUE_LEN`] records.
    fn default() -> Self {
        SyncSettings {
            syncid: 0,
            threshold: DEFAULT_THRESHOLD,
            period: DEFAULT_PERIOD,
            queue_len: DEFAULT_QUEUE_LEN,
        }
    }
}

/// Settings [`Director::set_sync`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncSettingsError {
    /// The threshold is not below a non-zero period (the kernel's `proc_do_sync_threshold()`
    /// refuses `val[0] >= val[1] && val[1]` with EINVAL).
    ThresholdNotBelowPeriod,
    /// A queue of no record.
    EmptyQueue,
}

impl fmt::Display for SyncSettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncSettingsError::ThresholdNotBelowPeriod => {
                "sync threshold must be below a non-zero sync period"
            }
            SyncSettingsError::EmptyQueue => "sync queue length must be at least 1",
        })
    }
}

impl std::error::Error for SyncSettingsError {}

/// One connection or persistence template to send to the backups: the fields of a
/// version 1 record, owned. See [`SyncRecord::to_conn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncRecord {
    /// IP protocol (0 for a firewall-mark template).
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` flags ([`crate::sync::flags`]).
    pub flags: u32,
    /// Protocol state (`IP_VS_TCP_S_*`; 0 for UDP and templates).
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real-server port.
    pub dport: u16,
    /// The firewall mark of a firewall-mark service's entries, else 0.
    pub fwmark: u32,
    /// Timeout in seconds.
    pub timeout: u32,
    /// Client address (masked for templates).
    pub caddr: IpAddr,
    /// Virtual address (the mark for firewall-mark templates).
    pub vaddr: IpAddr,
    /// Real-server address.
    pub daddr: IpAddr,
    /// FullNAT local address and port (the rvs extension option).
    pub local: Option<(IpAddr, u16)>,
    /// The sequence adjustment: an FTP control connection's for resized replies, or a
    /// SYN-proxied connection's delta ([`synproxy::to_sync_seq`]).
    pub seq: Option<SeqData>,
}

impl SyncRecord {
    /// The record for [`crate::sync::SyncMessageBuilder::push`].
    pub fn to_conn(&self) -> SyncConn<'static> {
        SyncConn {
            protocol: self.protocol,
            flags: self.flags,
            state: self.state,
            cport: self.cport,
            vport: self.vport,
            dport: self.dport,
            fwmark: self.fwmark,
            timeout: self.timeout,
            caddr: self.caddr,
            vaddr: self.vaddr,
            daddr: self.daddr,
            seq: self.seq,
            pe_data: None,
            pe_name: None,
            local: self.local,
        }
    }
}

/// Why [`Director::sync_import`] did not apply a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncRefused {
    /// Client, virtual and real-server (and local) addresses of different families.
    MixedFamilies,
    /// A connection of a protocol rvs does not forward (kernel: "Unsupported protocol").
    UnsupportedProtocol,
    /// A state number out of the protocol's range (kernel: "Invalid ... state").
    InvalidState,
    /// Persistence-engine data (SIP): rvs has no persistence engine (kernel: "no ...
    /// engine found/loaded").
    PersistenceEngine,
    /// An FTP entry waiting for its client port (`IP_VS_CONN_F_NO_CPORT`): rvs keeps
    /// expected data connections apart from the table.
    NoClientPort,
    /// No virtual service for it here.
    NoService,
    /// The service has no such real server here. The kernel keeps such an entry unbound;
    /// rvs refuses it, see [`Director::sync_import`].
    NoRealServer,
    /// The real server forwards by FullNAT here but the record has no local address, or
    /// one that is not in this director's local pool.
    NoLocalAddress,
    /// An inactive record about a connection this director has since bound to another
    /// real server or mapping (kernel: "the expiration message for the connection that
    /// was already replaced, so we just ignore it").
    Superseded,
    /// The connection table is full.
    TableFull,
}

impl SyncRefused {
    /// Number of reasons.
    pub const COUNT: usize = 10;

    /// Every reason, in [`SyncRefused::index`] order.
    pub const ALL: [SyncRefused; SyncRefused::COUNT] = [
        SyncRefused::MixedFamilies,
        SyncRefused::UnsupportedProtocol,
        SyncRefused::InvalidState,
        SyncRefused::PersistenceEngine,
        SyncRefused::NoClientPort,
        SyncRefused::NoService,
        SyncRefused::NoRealServer,
        SyncRefused::NoLocalAddress,
        SyncRefused::Superseded,
        SyncRefused::TableFull,
    ];

    /// A dense index for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRefused::MixedFamilies => "mixed_families",
            SyncRefused::UnsupportedProtocol => "unsupported_protocol",
            SyncRefused::InvalidState => "invalid_state",
            SyncRefused::PersistenceEngine => "persistence_engine",
            SyncRefused::NoClientPort => "no_client_port",
            SyncRefused::NoService => "no_service",
            SyncRefused::NoRealServer => "no_real_server",
            SyncRefused::NoLocalAddress => "no_local_address",
            SyncRefused::Superseded => "superseded",
            SyncRefused::TableFull => "table_full",
        }
    }
}

impl fmt::Display for SyncRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for SyncRefused {}

/// Connection-sync counters, both roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Master: records queued.
    pub queued: u64,
    /// Master: records dropped because the queue was full (the oldest goes).
    pub dropped: u64,
    /// Backup: entries created from records.
    pub created: u64,
    /// Backup: entries updated from records.
    pub updated: u64,
    /// Backup: records refused, by [`SyncRefused::index`].
    pub refused: [u64; SyncRefused::COUNT],
}

/// The master role: its settings and the records waiting for the daemon.
#[derive(Debug)]
pub(super) struct SyncMaster {
    settings: SyncSettings,
    queue: VecDeque<SyncRecord>,
}

/// What an import did.
enum Imported {
    Created,
    Updated,
}

/// `ip_vs_sync_conn_needed()` with `sync_refresh_period` 0 (the default): whether an entry
/// whose input packet count is now `pkts` is synced. The caller records `state` as the
/// entry's `old_state` when it is (the kernel's `set:` label, reached only then).
///
/// TCP connections are synced only in ESTABLISHED and the closing states, SCTP ones in
/// ESTABLISHED, the three SHUTDOWN states and CLOSED; a change into a closing state is
/// synced at once, anything else (ESTABLISHED included) when
/// `pkts % period == threshold` — or, with period 0, when `pkts == threshold`. UDP follows
/// the packet rule alone. Templates skip the packet rule when the period is non-zero: they
/// are synced every time a connection they control passes through here.
pub fn sync_needed(
    settings: &SyncSettings,
    protocol: u8,
    template: bool,
    state: u8,
    old_state: u8,
    pkts: u32,
) -> bool {
    // Check if we sync in current state.
    if !template && protocol == 6 {
        const SYNCED: u32 = (1 << TcpState::Established as u32)
            | (1 << TcpState::FinWait as u32)
            | (1 << TcpState::Close as u32)
            | (1 << TcpState::CloseWait as u32)
            | (1 << TcpState::TimeWait as u32);
        if state >= 32 || (1u32 << state) & SYNCED == 0 {
            return false;
        }
        let force = state != old_state;
        if force && state != TcpState::Established as u8 {
            return true;
        }
    } else if !template && protocol == 132 {
        const SYNCED: u32 = (1 << SctpState::Established as u32)
            | (1 << SctpState::ShutdownSent as u32)
            | (1 << SctpState::ShutdownReceived as u32)
            | (1 << SctpState::ShutdownAckSent as u32)
            | (1 << SctpState::Closed as u32);
        if state >= 32 || (1u32 << state) & SYNCED == 0 {
            return false;
        }
        let force = state != old_state;
        if force && state != SctpState::Established as u8 {
            return true;
        }
    }
    // "A connection will be synchronized, every time the number of its incoming packets
    // modulus sync_period equals the threshold." (Documentation/networking/ipvs-sysctl.rst)
    if settings.period > 0 {
        template || pkts % settings.period == settings.threshold
    } else {
        pkts == settings.threshold
    }
}

/// Whether one of the counts `from + 1 ..= from + n` meets the packet rule of
/// [`sync_needed`] (`count % period == threshold`, or with period 0 `count == threshold`).
fn crosses(s: &SyncSettings, from: u32, n: u64) -> bool {
    let (from, th) = (u64::from(from), u64::from(s.threshold));
    if s.period == 0 {
        return from < th && th <= from + n;
    }
    let p = u64::from(s.period);
    if n >= p {
        return true;
    }
    // The first count above `from` with `count % p == th`.
    let mut k = from - from % p + th;
    if k <= from {
        k += p;
    }
    k <= from + n
}

/// The `IP_VS_CONN_F_FWD_MASK` bits of a forwarding method. FullNAT has none of its own:
/// it goes as masquerading, its local address in the rvs option.
fn fwd_flags(method: &ForwardMethod) -> u32 {
    match method {
        ForwardMethod::Masq | ForwardMethod::FullNat => flags::MASQ,
        ForwardMethod::DirectRoute => flags::DROUTE,
        ForwardMethod::Tunnel { .. } => flags::TUNNEL,
    }
}

impl Director {
    /// Turn the master role on (with its settings) or off. Turning it on allocates the
    /// record queue; changing the settings keeps the records queued (the oldest dropped if
    /// the queue shrank); turning it off discards them.
    pub fn set_sync(&mut self, settings: Option<SyncSettings>) -> Result<(), SyncSettingsError> {
        let c = &mut self.core;
        let Some(s) = settings else {
            c.sync = None;
            return Ok(());
        };
        if s.period > 0 && s.threshold >= s.period {
            return Err(SyncSettingsError::ThresholdNotBelowPeriod);
        }
        if s.queue_len == 0 {
            return Err(SyncSettingsError::EmptyQueue);
        }
        c.sync_threshold = s.threshold;
        let mut queue = match c.sync.take() {
            Some(m) => m.queue,
            None => VecDeque::new(),
        };
        while queue.len() > s.queue_len {
            queue.pop_front();
            c.sync_counters.dropped += 1;
        }
        queue.reserve_exact(s.queue_len - queue.len());
        c.sync = Some(SyncMaster { settings: s, queue });
        Ok(())
    }

    /// The master role's settings, when it is on.
    pub fn sync_settings(&self) -> Option<&SyncSettings> {
        self.core.sync.as_ref().map(|m| &m.settings)
    }

    /// Take the oldest queued record.
    pub fn poll_sync(&mut self) -> Option<SyncRecord> {
        self.core.sync.as_mut()?.queue.pop_front()
    }

    /// Records waiting in the queue.
    pub fn sync_pending(&self) -> usize {
        self.core.sync.as_ref().map_or(0, |m| m.queue.len())
    }

    /// Connection-sync counters.
    pub fn sync_counters(&self) -> &SyncCounters {
        &self.core.sync_counters
    }

    /// Apply one record received from a master (`ip_vs_proc_conn()`, after the checks of
    /// `ip_vs_proc_sync_conn()`); each refusal is counted by reason.
    ///
    /// A connection record finds its entry by the client → virtual key, a template by the
    /// template key. An entry there with another real server (or FullNAT mapping) is
    /// replaced when the record says the connection is active, else the record is
    /// [`SyncRefused::Superseded`]. An entry there is updated: its state, the activity flag
    /// (moving it between its real server's active and inactive counts), the sequence
    /// adjustment, and its timeout from now. Otherwise the entry is created, flagged
    /// [`ConnFlags::SYNC`], for the virtual service and real server found as the kernel's
    /// `ip_vs_find_dest()` finds them (firewall mark first, then protocol, address and port,
    /// then an FTP service for a data port, then a port-0 service; the real server by
    /// address and port, then by address and the other of port / 0), forwarding by this
    /// director's method for that real server, with the record's activity and timeout
    /// (the protocol's default for a record without one). A FullNAT connection takes the
    /// record's local address and port, which are then in use in this director's pool.
    /// A created entry counts in [`super::EngineCounters`] (`conns_created`,
    /// `templates_created`) but not in the service's and real server's connection
    /// statistics: the kernel counts those (`ip_vs_conn_stats()`) only when it schedules.
    ///
    /// Differences from the kernel, on purpose:
    /// - A record whose service or real server is not here is refused
    ///   ([`SyncRefused::NoService`], [`SyncRefused::NoRealServer`]). The kernel keeps such
    ///   an entry unbound: it forwards it by the record's method to the record's address,
    ///   counted on no real server and out of reach of health checks and configuration. An
    ///   rvs entry forwards through a configured real server (its method, tunnel type,
    ///   egress), and the backup's configuration is meant to be the master's; records come
    ///   again while a connection lives (every `sync_period` packets, each state change),
    ///   so once the real server is configured here the next one creates the entry.
    /// - An FTP data connection found through its FTP service (the kernel's lookup for a
    ///   data port) takes the real server of that address when none has its port: rvs's
    ///   FTP helper binds data connections to the control connection's real server, whose
    ///   port is 21, and so does a kernel master.
    /// - An update that changes the activity moves the connection from one count to the
    ///   other (as a state change on the packet path does); the kernel's `ip_vs_proc_conn()`
    ///   adjusts `activeconns` only, which lets `inactconns` drift.
    /// - A template record of port 0 also finds an FTP service (port 21): the templates of
    ///   FTP services have virtual port 0, which the kernel finds no service for.
    pub fn sync_import(&mut self, now: Instant, conn: &SyncConn<'_>) -> Result<(), SyncRefused> {
        let r = match (conn.caddr, conn.vaddr, conn.daddr) {
            (IpAddr::V4(_), IpAddr::V4(_), IpAddr::V4(_)) => {
                self.core.sync_import(&mut self.v4, now, conn)
            }
            (IpAddr::V6(_), IpAddr::V6(_), IpAddr::V6(_)) => {
                self.core.sync_import(&mut self.v6, now, conn)
            }
            _ => Err(SyncRefused::MixedFamilies),
        };
        let counters = &mut self.core.sync_counters;
        match r {
            Ok(Imported::Created) => {
                counters.created += 1;
                Ok(())
            }
            Ok(Imported::Updated) => {
                counters.updated += 1;
                Ok(())
            }
            Err(e) => {
                counters.refused[e.index()] += 1;
                Err(e)
            }
        }
    }
}

impl Core {
    /// An input packet of connection `id` while the master role is on (`ip_vs_in()`:
    /// `pkts = atomic_inc_return(&cp->in_pkts)` then `ip_vs_sync_conn()`).
    #[cold]
    #[inline(never)]
    pub(super) fn sync_in<A: Af>(&mut self, t: &mut ConnTable<A>, id: ConnId) {
        if let Some(pkts) = t.count_in_pkt(id) {
            self.sync_conn(t, id, pkts);
        }
    }

    /// A one-packet connection (never in the table) controlled by template `tpl`: the
    /// kernel does not sync the connection but goes on to its controller
    /// (`ip_vs_sync_conn()`: "Do not sync ONE PACKET", `goto control`).
    #[cold]
    #[inline(never)]
    pub(super) fn sync_one_packet<A: Af>(&mut self, t: &mut ConnTable<A>, tpl: ConnId) {
        if let Some(pkts) = t.count_in_pkt(tpl) {
            self.sync_conn(t, tpl, pkts);
        }
    }

    /// `n` input packets of connection `id` that a kernel fast path forwarded since the
    /// last fold (`Director::offload_fold`): `ip_vs_in()`'s count and `ip_vs_sync_conn()`
    /// for them, a fold at a time. The entry's `in_pkts` (and its template's) rises by
    /// `n`; the entry is synced once when one of the counts it passed meets the packet
    /// rule ([`sync_needed`]; an offloaded connection stays ESTABLISHED, so no state change
    /// forces a record), its template once (a template is synced on every packet of a
    /// connection it controls, when the period is non-zero), a non-template controller (an
    /// FTP data connection's control connection) once as at the threshold. The kernel
    /// would queue one identical record per matching packet; one per fold carries the
    /// same state and timeout.
    pub(super) fn sync_offloaded<A: Af>(&mut self, t: &mut ConnTable<A>, id: ConnId, n: u64) {
        let Some(settings) = self.sync.as_ref().map(|m| m.settings) else {
            return;
        };
        let mut cur = id;
        for _ in 0..2 {
            let Some(c) = t.get(cur) else {
                return;
            };
            let meta = t.sync_meta(cur).unwrap_or_default();
            let to = meta.in_pkts.wrapping_add(n as u32);
            // A count in (in_pkts, in_pkts + n] that meets the rule syncs as that one would;
            // the threshold itself meets it.
            let pkts = if crosses(&settings, meta.in_pkts, n) {
                settings.threshold
            } else {
                to
            };
            let mut next = SyncMeta {
                in_pkts: to,
                ..meta
            };
            if !c.flags.has(ConnFlags::ONE_PACKET)
                && sync_needed(
                    &settings,
                    c.protocol,
                    c.is_template(),
                    c.state,
                    meta.old_state,
                    pkts,
                )
            {
                next.old_state = c.state;
                t.set_sync_meta(cur, next);
                if let Some(r) = self.sync_record(cur, &c, t.seq_proxy(cur)) {
                    self.sync_queue(r);
                }
            } else {
                t.set_sync_meta(cur, next);
            }
            let Some(ctl) = c.control else {
                return;
            };
            if !t.get(ctl).is_some_and(|x| x.is_template()) {
                self.sync_conn(t, ctl, settings.threshold);
                return;
            }
            cur = ctl;
        }
    }

    /// `ip_vs_sync_conn()`: sync the entry if needed, then its controller — a template
    /// with its own count raised, anything else as at the threshold.
    fn sync_conn<A: Af>(&mut self, t: &mut ConnTable<A>, id: ConnId, pkts: u32) {
        let Some(settings) = self.sync.as_ref().map(|m| m.settings) else {
            return;
        };
        let (mut cur, mut pkts) = (id, pkts);
        // A connection, then its template (templates have no controller).
        for _ in 0..2 {
            let Some(c) = t.get(cur) else {
                return;
            };
            let meta = t.sync_meta(cur).unwrap_or_default();
            if !c.flags.has(ConnFlags::ONE_PACKET)
                && sync_needed(
                    &settings,
                    c.protocol,
                    c.is_template(),
                    c.state,
                    meta.old_state,
                    pkts,
                )
            {
                t.set_sync_meta(
                    cur,
                    SyncMeta {
                        old_state: c.state,
                        ..meta
                    },
                );
                if let Some(r) = self.sync_record(cur, &c, t.seq_proxy(cur)) {
                    self.sync_queue(r);
                }
            }
            let Some(ctl) = c.control else {
                return;
            };
            pkts = if t.get(ctl).is_some_and(|x| x.is_template()) {
                match t.count_in_pkt(ctl) {
                    Some(p) => p,
                    None => return,
                }
            } else {
                settings.threshold
            };
            cur = ctl;
        }
    }

    /// Queue a record, dropping the oldest when full.
    ///
    /// The kernel drops the *newest* (`sb_queue_tail()` frees a message that finds the
    /// queue at `sync_qlen_max`). rvs drops the oldest: a record is the latest word on its
    /// connection, an older one of the same connection is stale by then, and a live
    /// connection whose old record was lost is synced again within `sync_period` packets,
    /// while a lost newest record may be a close nothing repeats.
    fn sync_queue(&mut self, r: SyncRecord) {
        let Some(m) = self.sync.as_mut() else {
            return;
        };
        if m.queue.len() >= m.settings.queue_len {
            m.queue.pop_front();
            self.sync_counters.dropped += 1;
        }
        // Within the capacity reserved by `set_sync`: no allocation.
        m.queue.push_back(r);
        self.sync_counters.queued += 1;
    }

    /// The record of an entry (`ip_vs_sync_conn()`'s copy of `cp`), or `None` when it
    /// cannot be synced: its real server is gone, or lives in the other address family
    /// (a tunnel; the kernel does not sync heterogeneous pools either).
    fn sync_record<A: Af>(
        &self,
        id: ConnId,
        c: &Conn<A>,
        proxy: Option<SeqProxy>,
    ) -> Option<SyncRecord> {
        let dest = self.services.dest(DestId(c.dest))?;
        A::from_ip(dest.addr)?;
        let fwd = fwd_flags(&dest.method);
        let template = c.is_template();
        let mut fl = fwd;
        if template {
            // A template carries its real server's connection flags (`ip_vs_bind_dest()`:
            // `flags |= conn_flags`, INACTIVE and, but for NAT, NOOUTPUT included).
            fl |= flags::TEMPLATE | flags::INACTIVE;
            if fwd != flags::MASQ {
                fl |= flags::NOOUTPUT;
            }
        } else {
            if c.flags.has(ConnFlags::NO_OUTPUT) {
                fl |= flags::NOOUTPUT;
            }
            if c.flags.has(ConnFlags::INACTIVE) {
                fl |= flags::INACTIVE;
            }
        }
        if c.flags.has(ConnFlags::SYNC) {
            fl |= flags::SYNC;
        }
        let fwmark = match self.services.get(ServiceId(c.service)).map(|s| s.cfg.key) {
            Some(ServiceKey::Fwmark { mark, .. }) => mark,
            _ => 0,
        };
        let caddr = c.caddr.to_ip();
        // The FTP helper's sequence adjustment of a NAT control connection
        // (`IP_VS_CONN_F_OUT_SEQ` and `cp->out_seq`).
        let mut seq = None;
        // A SYN-proxied connection: its sequence delta, in the same option
        // (`synproxy::to_sync_seq` documents the mapping).
        if !template
            && c.protocol == 6
            && let Some(s) = proxy.and_then(synproxy::to_sync_seq)
        {
            fl |= synproxy::SYNC_SEQ_FLAGS;
            seq = Some(s);
        } else if !template
            && c.protocol == 6
            && c.vport == ftp::FTP_PORT
            && let Some(s) = self.ftp_ctl.get(id.index(), caddr, c.cport)
            && s.set
        {
            fl |= flags::OUT_SEQ;
            seq = Some(SeqData {
                in_seq: Seq::default(),
                out_seq: Seq {
                    init_seq: s.init_seq,
                    delta: s.delta as u32,
                    previous_delta: s.previous_delta as u32,
                },
            });
        }
        Some(SyncRecord {
            protocol: c.protocol,
            flags: fl,
            state: u16::from(c.state),
            cport: c.cport,
            vport: c.vport,
            dport: c.dport,
            fwmark,
            // `htonl(cp->timeout / HZ)`.
            timeout: u32::try_from(c.timeout.as_secs()).unwrap_or(u32::MAX),
            caddr,
            vaddr: c.vaddr.to_ip(),
            daddr: c.daddr.to_ip(),
            local: c.local.map(|(a, p)| (a.to_ip(), p)),
            seq,
        })
    }

    /// [`Director::sync_import`] in one family's table.
    fn sync_import<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        r: &SyncConn<'_>,
    ) -> Result<Imported, SyncRefused> {
        let (Some(caddr), Some(vaddr), Some(daddr)) = (
            A::from_ip(r.caddr),
            A::from_ip(r.vaddr),
            A::from_ip(r.daddr),
        ) else {
            return Err(SyncRefused::MixedFamilies);
        };
        // `ip_vs_proc_sync_conn()`: "Get flags and Mask off unsupported".
        let rflags = (r.flags & flags::BACKUP_MASK) | flags::SYNC;
        let template = rflags & flags::TEMPLATE != 0;
        let active = rflags & flags::INACTIVE == 0;
        if !template {
            let states = match r.protocol {
                6 => TcpState::ALL.len() as u16,
                17 => u16::from(UDP_STATE) + 1,
                132 => SctpState::ALL.len() as u16,
                _ => return Err(SyncRefused::UnsupportedProtocol),
            };
            if r.state >= states {
                return Err(SyncRefused::InvalidState);
            }
        } else if r.state >= CTPL_STATES {
            return Err(SyncRefused::InvalidState);
        }
        // `ip_vs_conn_fill_param_sync()`: persistence-engine data needs the engine.
        if r.pe_data.is_some() {
            return Err(SyncRefused::PersistenceEngine);
        }
        if !template && rflags & flags::NO_CPORT != 0 {
            return Err(SyncRefused::NoClientPort);
        }
        let local = match r.local {
            Some((a, p)) => Some((A::from_ip(a).ok_or(SyncRefused::MixedFamilies)?, p)),
            None => None,
        };
        let state = r.state as u8;
        let key = InKey {
            protocol: r.protocol,
            caddr,
            cport: r.cport,
            vaddr,
            vport: r.vport,
        };
        let timeout = if r.timeout > 0 {
            Duration::from_secs(u64::from(r.timeout))
        } else if template {
            TEMPLATE_DEFAULT_TIMEOUT
        } else if r.protocol == 6 {
            self.timeouts
                .tcp(TcpState::from_index(state).unwrap_or(TcpState::None))
        } else if r.protocol == 132 {
            self.timeouts
                .sctp(SctpState::from_index(state).unwrap_or(SctpState::None))
        } else {
            self.timeouts.udp()
        };
        // The sequence data: a SYN-proxied connection's delta, or else the FTP helper's
        // adjustment of resized replies (`IP_VS_CONN_F_OUT_SEQ` alone).
        let proxy = (!template && r.protocol == 6)
            .then_some(r.seq)
            .flatten()
            .and_then(|s| synproxy::from_sync_seq(rflags, &s));
        let seq = (!template && proxy.is_none() && rflags & flags::OUT_SEQ != 0)
            .then_some(r.seq)
            .flatten()
            .map(|s| SeqAdjust {
                init_seq: s.out_seq.init_seq,
                delta: s.out_seq.delta as i32,
                previous_delta: s.out_seq.previous_delta as i32,
                set: true,
            });

        // The entry there, if any (`ip_vs_conn_in_get()` / `ip_vs_ct_in_get()`).
        let mut replace = None;
        if template {
            if let Some(id) = t.lookup_template(&key, now) {
                self.sync_update(t, now, id, true, active, state, timeout, seq, None);
                return Ok(Imported::Updated);
            }
        } else if let Some(id) = t.lookup_in(&key, now)
            && let Some(c) = t.get(id)
        {
            let moved = c.dport != r.dport
                || c.daddr != daddr
                || (c.local.is_some() && local.is_some() && c.local != local);
            if !moved {
                self.sync_update(t, now, id, false, active, state, timeout, seq, proxy);
                return Ok(Imported::Updated);
            }
            // Bound elsewhere: an active record replaces it, an inactive one is an old
            // connection's last word.
            if !active {
                return Err(SyncRefused::Superseded);
            }
            replace = Some(id);
        }

        // A new entry: its service and real server (`ip_vs_find_dest()`).
        let family = crate::model::Family::of(&r.vaddr);
        let (svc_id, via_ftp) = match (r.fwmark != 0)
            .then(|| self.services.find_mark(r.fwmark, family))
            .flatten()
        {
            Some(id) => (id, false),
            None => self
                .find_sync_service(r.protocol, r.vaddr, r.vport, template)
                .ok_or(SyncRefused::NoService)?,
        };
        let svc = self.services.get(svc_id).ok_or(SyncRefused::NoService)?;
        let port = if r.fwmark != 0 && rflags & flags::FWD_MASK != flags::MASQ {
            0
        } else {
            r.dport
        };
        let pos = [port, port ^ r.dport]
            .into_iter()
            .find_map(|p| {
                svc.dests
                    .iter()
                    .position(|d| d.addr == r.daddr && d.port == p)
            })
            .or_else(|| {
                (via_ftp && !template)
                    .then(|| svc.dests.iter().position(|d| d.addr == r.daddr))
                    .flatten()
            })
            .ok_or(SyncRefused::NoRealServer)?;
        let dest_id = svc.dest_ids[pos];
        let method = svc.dests[pos].method;
        let fwmark_svc = matches!(svc.cfg.key, ServiceKey::Fwmark { .. });
        // `ip_vs_bind_dest()` on a synced entry: the forwarding method (and NOOUTPUT) from
        // this director's real server, the activity from the record.
        let mut cflags = if template {
            ConnFlags(ConnFlags::TEMPLATE)
        } else {
            let mut f = ConnFlags::new_connection(&method).without(ConnFlags::INACTIVE);
            if !active {
                f = f.with(ConnFlags::INACTIVE);
            }
            if fwmark_svc {
                f = f.with(ConnFlags::FWMARK);
            }
            f
        };
        cflags = cflags.with(ConnFlags::SYNC);
        let local = if !template && method == ForwardMethod::FullNat {
            let Some((la, lp)) = local else {
                return Err(SyncRefused::NoLocalAddress);
            };
            if !self.config.local_pool.addrs.contains(&la.to_ip()) {
                return Err(SyncRefused::NoLocalAddress);
            }
            // Another connection holding this mapping (its reply key) gives way to an
            // active record, as one holding the client's key does.
            let out = OutKey {
                protocol: r.protocol,
                saddr: daddr,
                sport: r.dport,
                daddr: la,
                dport: lp,
            };
            if let Some(other) = t.lookup_out(&out, now)
                && Some(other) != replace
            {
                if !active {
                    return Err(SyncRefused::Superseded);
                }
                if let Some(old) = t.remove(other) {
                    release(&mut self.services, &mut self.counters, old.dest, old.flags);
                }
            }
            Some((la, lp))
        } else {
            None
        };
        if let Some(old) = replace.and_then(|id| t.remove(id)) {
            // `ip_vs_conn_expire_now()`.
            release(&mut self.services, &mut self.counters, old.dest, old.flags);
        }
        let new = NewConn {
            protocol: r.protocol,
            caddr,
            cport: r.cport,
            vaddr,
            vport: r.vport,
            daddr,
            dport: r.dport,
            local,
            dest: dest_id.0,
            service: svc_id.0,
            state,
            flags: cflags,
            timeout,
            control: None,
        };
        let ins = t.insert(new, now).map_err(|_| SyncRefused::TableFull)?;
        if let Some(ev) = ins.evicted {
            release(&mut self.services, &mut self.counters, ev.dest, ev.flags);
        }
        bind(&mut self.services, dest_id, cflags);
        if template {
            self.counters.templates_created += 1;
        } else {
            self.counters.conns_created += 1;
        }
        // `atomic_set(&cp->in_pkts, sysctl_sync_threshold(ipvs))`, `cp->old_state = state`.
        t.set_sync_meta(
            ins.id,
            SyncMeta {
                in_pkts: self.sync_threshold,
                old_state: state,
            },
        );
        if let Some(s) = seq {
            self.ftp_ctl.set(ins.id.index(), r.caddr, r.cport, s);
        }
        if let Some(p) = proxy {
            t.set_seq_proxy(ins.id, p);
        }
        Ok(Imported::Created)
    }

    /// `ip_vs_proc_conn()` on an entry that is there: the activity (`flags &=
    /// IP_VS_CONN_F_BACKUP_UPD_MASK`), the state, the sync bookkeeping and the timeout.
    #[allow(clippy::too_many_arguments)]
    fn sync_update<A: Af>(
        &mut self,
        t: &mut ConnTable<A>,
        now: Instant,
        id: ConnId,
        template: bool,
        active: bool,
        state: u8,
        timeout: Duration,
        seq: Option<SeqAdjust>,
        proxy: Option<SeqProxy>,
    ) {
        let Some(c) = t.get(id) else {
            return;
        };
        if !template && c.flags.has(ConnFlags::INACTIVE) == active {
            let a = if active {
                Activity::BecameActive
            } else {
                Activity::BecameInactive
            };
            self.activity(DestId(c.dest), a);
            let f = if active {
                c.flags.without(ConnFlags::INACTIVE)
            } else {
                c.flags.with(ConnFlags::INACTIVE)
            };
            t.set_flags(id, f);
        }
        t.set_state(id, state);
        t.set_sync_meta(
            id,
            SyncMeta {
                in_pkts: self.sync_threshold,
                old_state: state,
            },
        );
        t.touch(id, now, timeout);
        if let Some(s) = seq {
            self.ftp_ctl.set(id.index(), c.caddr.to_ip(), c.cport, s);
        }
        if let Some(p) = proxy {
            t.set_seq_proxy(id, p);
        }
    }

    /// `ip_vs_service_find()` by address: the exact service; for TCP to the FTP data port
    /// or an unprivileged port, an FTP service (port 21) of the address; then a port-0
    /// service. A template of port 0 also finds an FTP service (see
    /// [`Director::sync_import`]). True when found through the FTP rule.
    fn find_sync_service(
        &self,
        protocol: u8,
        vaddr: IpAddr,
        vport: u16,
        template: bool,
    ) -> Option<(ServiceId, bool)> {
        let s = &self.services;
        if let Some(id) = s.find_addr_exact(protocol, vaddr, vport) {
            return Some((id, false));
        }
        let data_port = vport == ftp::FTP_PORT - 1 || vport >= 1024;
        if protocol == 6
            && (data_port || (template && vport == 0))
            && let Some(id) = s.find_addr_exact(protocol, vaddr, ftp::FTP_PORT)
        {
            return Some((id, true));
        }
        s.find_addr_exact(protocol, vaddr, 0).map(|id| (id, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: SyncSettings = SyncSettings {
        syncid: 0,
        threshold: DEFAULT_THRESHOLD,
        period: DEFAULT_PERIOD,
        queue_len: 1,
    };

    fn synced_at(protocol: u8, template: bool, state: u8, old: u8, s: &SyncSettings) -> Vec<u32> {
        (0..=210)
            .filter(|&p| sync_needed(s, protocol, template, state, old, p))
            .collect()
    }

    /// `crosses` is the packet rule over a range of counts, checked one count at a time.
    #[test]
    fn crosses_is_the_rule_over_the_range() {
        for (threshold, period) in [(3, 50), (0, 10), (9, 10), (7, 0), (0, 0), (1, 2)] {
            let s = SyncSettings {
                threshold,
                period,
                ..S
            };
            for from in 0..130u32 {
                for n in 0..120u64 {
                    let brute = (1..=n).any(|i| {
                        let k = from + i as u32;
                        if period > 0 {
                            k % period == threshold
                        } else {
                            k == threshold
                        }
                    });
                    assert_eq!(crosses(&s, from, n), brute, "{s:?} from {from} n {n}");
                }
            }
        }
    }

    #[test]
    fn tcp_states_outside_established_and_closing_are_never_synced() {
        use TcpState::*;
        for state in [None, SynSent, SynRecv, LastAck, Listen, SynAck] {
            for old in TcpState::ALL {
                assert!(
                    synced_at(6, false, state as u8, old as u8, &S).is_empty(),
                    "{state} after {old}"
                );
            }
        }
        assert!(synced_at(6, false, 11, 0, &S).is_empty(), "not a state");
        assert!(synced_at(6, false, 200, 0, &S).is_empty(), "not a state");
    }

    #[test]
    fn a_change_into_a_closing_state_is_synced_whatever_the_count() {
        use TcpState::*;
        for state in [FinWait, Close, CloseWait, TimeWait] {
            for old in TcpState::ALL {
                let at = synced_at(6, false, state as u8, old as u8, &S);
                if old == state {
                    assert_eq!(at, [3, 53, 103, 153, 203], "{state} kept");
                } else {
                    assert_eq!(at.len(), 211, "{state} after {old}");
                }
            }
        }
    }

    #[test]
    fn established_is_synced_by_the_count_alone() {
        for old in TcpState::ALL {
            let at = synced_at(6, false, TcpState::Established as u8, old as u8, &S);
            assert_eq!(at, [3, 53, 103, 153, 203], "after {old}");
        }
    }

    #[test]
    fn udp_by_the_count_and_templates_always() {
        assert_eq!(synced_at(17, false, 0, 0, &S), [3, 53, 103, 153, 203]);
        // Templates are not held to the count while there is a period, whatever their
        // protocol (0 for firewall-mark templates).
        for p in [0, 6, 17] {
            assert_eq!(synced_at(p, true, 0, 0, &S).len(), 211);
        }
    }

    #[test]
    fn without_a_period_once_at_the_threshold_templates_too() {
        let s = SyncSettings {
            threshold: 7,
            period: 0,
            ..S
        };
        assert_eq!(synced_at(17, false, 0, 0, &s), [7]);
        assert_eq!(synced_at(0, true, 0, 0, &s), [7]);
        assert_eq!(synced_at(6, false, TcpState::Established as u8, 3, &s), [7]);
        // State changes into closing states still go at once.
        assert_eq!(
            synced_at(6, false, TcpState::TimeWait as u8, 1, &s).len(),
            211
        );
    }

    #[test]
    fn other_thresholds_and_periods() {
        let s = SyncSettings {
            threshold: 0,
            period: 10,
            ..S
        };
        assert_eq!(
            synced_at(17, false, 0, 0, &s),
            (0..=210).step_by(10).collect::<Vec<u32>>()
        );
    }

    #[test]
    fn a_record_becomes_a_codec_record() {
        let r = SyncRecord {
            protocol: 6,
            flags: flags::DROUTE | flags::NOOUTPUT,
            state: 1,
            cport: 1,
            vport: 2,
            dport: 3,
            fwmark: 4,
            timeout: 5,
            caddr: "10.0.0.1".parse().unwrap(),
            vaddr: "10.0.0.2".parse().unwrap(),
            daddr: "10.0.0.3".parse().unwrap(),
            local: Some(("10.0.0.4".parse().unwrap(), 6)),
            seq: Some(SeqData::default()),
        };
        let c = r.to_conn();
        assert_eq!(
            (
                c.protocol, c.flags, c.state, c.cport, c.vport, c.dport, c.fwmark, c.timeout
            ),
            (6, r.flags, 1, 1, 2, 3, 4, 5)
        );
        assert_eq!((c.caddr, c.vaddr, c.daddr), (r.caddr, r.vaddr, r.daddr));
        assert_eq!(
            (c.local, c.seq, c.pe_data, c.pe_name),
            (r.local, r.seq, None, None)
        );
    }

    #[test]
    fn refusal_names_are_distinct_and_indexed() {
        for (i, r) in SyncRefused::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<&str> = SyncRefused::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SyncRefused::COUNT);
    }
}
