//! The IPVS TCP state machine, per-state timeouts and the active/inactive accounting rule.
//!
//! This is `net/netfilter/ipvs/ip_vs_proto_tcp.c` (`tcp_states[]`, `tcp_timeouts[]`,
//! `tcp_state_idx()`, `set_tcp_state()`, `tcp_state_active()`) and the single-state UDP
//! protocol of `ip_vs_proto_udp.c`, as pure functions over small values. It knows nothing
//! about packets or tables: the caller extracts the TCP flags and the table applies the
//! result. It deliberately does not implement `secure_tcp` (`tcp_states_dos[]`) or the
//! application helpers (FTP); SCTP's machine is [`super::sctp`], its timeouts live here.

use core::fmt;
use core::time::Duration;

use super::sctp::SctpState;
use crate::model::{ForwardMethod, Timeouts};

/// The 11 IPVS TCP connection states (`IP_VS_TCP_S_*` in `include/uapi/linux/ip_vs.h`), in
/// kernel order; the discriminant is the kernel's state number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// `IP_VS_TCP_S_NONE`: just created, no packet classified yet.
    None = 0,
    /// `IP_VS_TCP_S_ESTABLISHED`.
    Established = 1,
    /// `IP_VS_TCP_S_SYN_SENT`: the real server sent a SYN (seen on output).
    SynSent = 2,
    /// `IP_VS_TCP_S_SYN_RECV`: the client sent a SYN.
    SynRecv = 3,
    /// `IP_VS_TCP_S_FIN_WAIT`.
    FinWait = 4,
    /// `IP_VS_TCP_S_TIME_WAIT`.
    TimeWait = 5,
    /// `IP_VS_TCP_S_CLOSE`.
    Close = 6,
    /// `IP_VS_TCP_S_CLOSE_WAIT`.
    CloseWait = 7,
    /// `IP_VS_TCP_S_LAST_ACK`.
    LastAck = 8,
    /// `IP_VS_TCP_S_LISTEN`.
    Listen = 9,
    /// `IP_VS_TCP_S_SYNACK`.
    SynAck = 10,
}

impl TcpState {
    /// Every state, in kernel order (index = state number).
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The kernel's state number.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The state of a kernel state number, if it is one.
    #[inline]
    pub fn from_index(i: u8) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(i)).copied()
    }

    /// The name `ipvsadm -L -c` and `/proc/net/ip_vs_conn` print (`tcp_state_name_table[]`).
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// The kernel's default timeout of the state in seconds (`tcp_timeouts[]`).
    pub const fn default_timeout_secs(self) -> u32 {
        match self {
            TcpState::None => 2,
            TcpState::Established => 15 * 60,
            TcpState::SynSent => 2 * 60,
            TcpState::SynRecv => 60,
            TcpState::FinWait => 2 * 60,
            TcpState::TimeWait => 2 * 60,
            TcpState::Close => 10,
            TcpState::CloseWait => 60,
            TcpState::LastAck => 30,
            TcpState::Listen => 2 * 60,
            TcpState::SynAck => 120,
        }
    }

    /// Whether a connection in this state counts in its real server's `activeconns`
    /// (`tcp_state_active_table[]` / `tcp_state_active()` in `ip_vs_proto_tcp.c`).
    ///
    /// Since 2016 (kernel commit "ipvs: count pre-established TCP states as active") the
    /// pre-established states SYN_SENT, SYN_RECV and SYNACK count as active along with
    /// ESTABLISHED; every other state is inactive.
    #[inline]
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state name `ipvsadm -L -c` shows for a UDP connection (`udp_state_name_table[]`:
/// UDP has the single state `IP_VS_UDP_S_NORMAL`, named "UDP").
pub const UDP_STATE_NAME: &str = "UDP";

/// The state number of a UDP (or any other single-state protocol) connection.
pub const UDP_STATE: u8 = 0;

/// The kernel's default UDP timeout in seconds (`udp_timeouts[IP_VS_UDP_S_NORMAL]`).
pub const UDP_DEFAULT_TIMEOUT_SECS: u32 = 5 * 60;

/// The state name of a persistence template. Templates are never run through a protocol
/// state machine; the kernel names their state from `ip_vs_ctpl_state_name_table[]`, whose
/// state 0 is "NONE" (rvs does not implement the SIP persistence engine's "ASSURED").
pub const TEMPLATE_STATE_NAME: &str = "NONE";

/// The name `ipvsadm -L -c` prints for a connection's state (`ip_vs_state_name()`):
/// the TCP or SCTP state name, "UDP" for UDP, "NONE" for templates and for protocol 0
/// (fwmark templates), "ERR!" for an out-of-range state.
pub fn state_name(protocol: u8, state: u8, template: bool) -> &'static str {
    if template {
        return TEMPLATE_STATE_NAME;
    }
    match protocol {
        6 => TcpState::from_index(state).map_or("ERR!", TcpState::name),
        132 => SctpState::from_index(state).map_or("ERR!", SctpState::name),
        17 if state == UDP_STATE => UDP_STATE_NAME,
        0 => "NONE",
        _ => "ERR!",
    }
}

/// Which way a packet travels, as `IP_VS_DIR_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to real server (`IP_VS_DIR_INPUT`).
    Input,
    /// Real server to client, seen by NAT/FullNAT directors (`IP_VS_DIR_OUTPUT`).
    Output,
    /// Client to real server on a connection whose replies bypass the director (DR, TUN):
    /// `IP_VS_DIR_INPUT_ONLY`. [`transition`] switches Input to this by itself while the
    /// connection carries [`ConnFlags::NO_OUTPUT`].
    InputOnly,
}

impl Direction {
    fn row(self) -> usize {
        match self {
            Direction::Input => 0,
            Direction::Output => 1,
            Direction::InputOnly => 2,
        }
    }
}

/// The flags byte of a TCP header (byte 13), as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH (ignored by the state machine).
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// The row of the transition table this packet selects, with the kernel's priority
    /// rst > syn > fin > ack; `None` when none of the four is set (`tcp_state_idx()`).
    pub const fn kind(self) -> Option<FlagKind> {
        if self.0 & Self::RST != 0 {
            Some(FlagKind::Rst)
        } else if self.0 & Self::SYN != 0 {
            Some(FlagKind::Syn)
        } else if self.0 & Self::FIN != 0 {
            Some(FlagKind::Fin)
        } else if self.0 & Self::ACK != 0 {
            Some(FlagKind::Ack)
        } else {
            None
        }
    }
}

/// The flag class of a TCP segment for the state table (`tcp_state_idx()`: syn 0, fin 1,
/// ack 2, rst 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagKind {
    /// SYN set, RST clear.
    Syn,
    /// FIN set, SYN and RST clear.
    Fin,
    /// ACK only (of the four).
    Ack,
    /// RST set.
    Rst,
}

impl FlagKind {
    /// All four, in table row order.
    pub const ALL: [FlagKind; 4] = [FlagKind::Syn, FlagKind::Fin, FlagKind::Ack, FlagKind::Rst];

    fn row(self) -> usize {
        match self {
            FlagKind::Syn => 0,
            FlagKind::Fin => 1,
            FlagKind::Ack => 2,
            FlagKind::Rst => 3,
        }
    }

    /// A flags byte of this kind (for tests and simulations).
    pub const fn flags(self) -> TcpFlags {
        TcpFlags(match self {
            FlagKind::Syn => TcpFlags::SYN,
            FlagKind::Fin => TcpFlags::FIN | TcpFlags::ACK,
            FlagKind::Ack => TcpFlags::ACK,
            FlagKind::Rst => TcpFlags::RST,
        })
    }
}

// Shorthands for the table, named as in the kernel source (no transition of the
// non-secure table leads to NONE or SYNACK, so sNO and sSA have none).
const ES: TcpState = TcpState::Established;
const SS: TcpState = TcpState::SynSent;
const SR: TcpState = TcpState::SynRecv;
const FW: TcpState = TcpState::FinWait;
const TW: TcpState = TcpState::TimeWait;
const CL: TcpState = TcpState::Close;
const CW: TcpState = TcpState::CloseWait;
const LA: TcpState = TcpState::LastAck;
const LI: TcpState = TcpState::Listen;
const SA: TcpState = TcpState::SynAck;

/// `tcp_states[]` of `net/netfilter/ipvs/ip_vs_proto_tcp.c` (current mainline): indexed
/// `[direction][flag kind][current state]`. Written independently from the kernel's table;
/// the test `kernel_table_cross_check` re-states it in the kernel's own layout.
///
/// Note the `ack` row on NONE: mainline moves NONE to ESTABLISHED on INPUT and INPUT-ONLY
/// (the change came with `sloppy_tcp`, around Linux 3.10); older kernels such as 2.6.28, and
/// rvs's reference notes, have CLOSE there.
#[rustfmt::skip]
const TCP_STATES: [[[TcpState; 11]; 4]; 3] = [
    // INPUT     sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// `tcp_states_dos[]` of `ip_vs_proto_tcp.c`: the table `secure_tcp` switches to
/// (`tcp_timeout_change()`). A client's ACK no longer establishes a connection by itself on
/// INPUT: SYN_RECV stays SYN_RECV until the real server's SYN-ACK (OUTPUT syn → SYNACK) and
/// the client's ACK after it; on INPUT-ONLY (DR, TUN) a SYN enters SYNACK and only an ACK
/// in SYNACK establishes. The `ack` column of NONE follows mainline's `sloppy_tcp` change
/// as [`TCP_STATES`] does.
#[rustfmt::skip]
const TCP_STATES_DOS: [[[TcpState; 11]; 4]; 3] = [
    // INPUT     sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        /* ack */ [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
    // OUTPUT
    [
        /* syn */ [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* syn */ [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// [`next_state`] in the secure table (`tcp_states_dos`).
#[inline]
pub fn next_state_secure(dir: Direction, state: TcpState, flags: TcpFlags) -> TcpState {
    match flags.kind() {
        Some(kind) => TCP_STATES_DOS[dir.row()][kind.row()][state.index()],
        None => TcpState::Close,
    }
}

/// The next state of a connection in `state` on a segment with `flags` travelling `dir`:
/// the table lookup of `set_tcp_state()`. A segment with none of SYN/FIN/ACK/RST moves the
/// connection to CLOSE, as the kernel does (its `new_state` starts as CLOSE and the table
/// lookup is skipped when `tcp_state_idx()` returns -1).
#[inline]
pub fn next_state(dir: Direction, state: TcpState, flags: TcpFlags) -> TcpState {
    match flags.kind() {
        Some(kind) => TCP_STATES[dir.row()][kind.row()][state.index()],
        None => TcpState::Close,
    }
}

/// Per-connection flag bits (a subset of `IP_VS_CONN_F_*`, renumbered to fit a byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnFlags(pub u8);

impl ConnFlags {
    /// A persistence template (`IP_VS_CONN_F_TEMPLATE`).
    pub const TEMPLATE: u8 = 0x01;
    /// Replies bypass the director (DR, TUN): `IP_VS_CONN_F_NOOUTPUT`. Cleared by the
    /// first OUTPUT packet [`transition`] sees.
    pub const NO_OUTPUT: u8 = 0x02;
    /// One-packet scheduling (`IP_VS_CONN_F_ONE_PACKET`). The kernel never hashes such
    /// entries (`ip_vs_conn_hash()` skips them): the director need not insert them at all.
    pub const ONE_PACKET: u8 = 0x04;
    /// Created by a firewall-mark service.
    pub const FWMARK: u8 = 0x08;
    /// Counted in the real server's `inactconns` rather than `activeconns`
    /// (`IP_VS_CONN_F_INACTIVE`).
    pub const INACTIVE: u8 = 0x10;
    /// FullNAT: the entry has a local (source) address and port towards the real server.
    pub const FULLNAT: u8 = 0x20;
    /// Created from a connection-sync record of another director (`IP_VS_CONN_F_SYNC`).
    pub const SYNC: u8 = 0x40;
    /// Bits a caller may set; bit 7 is the table's own.
    pub const PUBLIC_MASK: u8 = 0x7f;

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// These flags with `mask` set.
    pub const fn with(self, mask: u8) -> ConnFlags {
        ConnFlags(self.0 | mask)
    }

    /// These flags with `mask` cleared.
    pub const fn without(self, mask: u8) -> ConnFlags {
        ConnFlags(self.0 & !mask)
    }

    /// The flags the kernel gives a new (non-template) connection to a real server with
    /// `method`: INACTIVE always (`__ip_vs_update_dest()` adds `IP_VS_CONN_F_INACTIVE` to
    /// every real server's `conn_flags`, so a new connection is first counted in
    /// `inactconns` by `ip_vs_bind_dest()`), plus NO_OUTPUT unless replies come back
    /// through the director (NAT, FullNAT).
    pub fn new_connection(method: &ForwardMethod) -> ConnFlags {
        let mut f = ConnFlags(ConnFlags::INACTIVE);
        match method {
            ForwardMethod::Masq => {}
            ForwardMethod::FullNat => f = f.with(ConnFlags::FULLNAT),
            ForwardMethod::DirectRoute | ForwardMethod::Tunnel { .. } => {
                f = f.with(ConnFlags::NO_OUTPUT)
            }
        }
        f
    }
}

/// Which of its real server's counters an entry is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestCounter {
    /// `activeconns`.
    Active,
    /// `inactconns`.
    Inactive,
    /// `persistconns` (templates).
    Persistent,
}

impl ConnFlags {
    /// The counter `ip_vs_bind_dest()` raises for an entry with these flags and
    /// `ip_vs_unbind_dest()` lowers when it goes: persistconns for a template, else
    /// inactconns or activeconns by [`ConnFlags::INACTIVE`].
    pub const fn dest_counter(self) -> DestCounter {
        if self.has(ConnFlags::TEMPLATE) {
            DestCounter::Persistent
        } else if self.has(ConnFlags::INACTIVE) {
            DestCounter::Inactive
        } else {
            DestCounter::Active
        }
    }
}

/// How a state change moved a connection between its real server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// inactconns -= 1, activeconns += 1.
    BecameActive,
    /// activeconns -= 1, inactconns += 1.
    BecameInactive,
}

/// The NO_OUTPUT direction rule shared by `set_tcp_state()` and `set_sctp_state()`:
/// "Update direction to INPUT_ONLY if necessary or delete NO_OUTPUT flag if output packet
/// detected". Returns the flags after the packet and the direction row of the state table
/// to use.
#[inline]
pub(crate) fn table_direction(flags: ConnFlags, dir: Direction) -> (ConnFlags, Direction) {
    if flags.has(ConnFlags::NO_OUTPUT) {
        if dir == Direction::Output {
            (flags.without(ConnFlags::NO_OUTPUT), dir)
        } else {
            (flags, Direction::InputOnly)
        }
    } else {
        (flags, dir)
    }
}

/// The active/inactive bookkeeping of `set_tcp_state()` and `set_sctp_state()`, done only
/// when the state `changed`: a connection leaving an active state gets INACTIVE and moves
/// to inactconns, one entering an active state (`now_active`) loses it and moves back.
#[inline]
pub(crate) fn account_activity(
    flags: ConnFlags,
    changed: bool,
    now_active: bool,
) -> (ConnFlags, Option<Activity>) {
    if !changed {
        return (flags, None);
    }
    let inactive = flags.has(ConnFlags::INACTIVE);
    if !inactive && !now_active {
        (
            flags.with(ConnFlags::INACTIVE),
            Some(Activity::BecameInactive),
        )
    } else if inactive && now_active {
        (
            flags.without(ConnFlags::INACTIVE),
            Some(Activity::BecameActive),
        )
    } else {
        (flags, None)
    }
}

/// The outcome of one TCP segment on a connection ([`transition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// State before the segment.
    pub old: TcpState,
    /// State after it.
    pub new: TcpState,
    /// The connection's flags after it (NO_OUTPUT and INACTIVE may change).
    pub flags: ConnFlags,
    /// Whether the director must move the connection between its real server's
    /// active and inactive counts.
    pub activity: Option<Activity>,
}

/// `set_tcp_state()`: the state change a TCP segment causes, including the NO_OUTPUT
/// direction rewrite and the active/inactive bookkeeping the kernel does on `cp->dest`.
///
/// The counters move only when the state changes, as in the kernel: a connection in an
/// active state whose INACTIVE flag is still set (it was created inactive and the first
/// segment kept it in NONE) is not moved until its next state change.
#[inline]
pub fn transition(state: TcpState, flags: ConnFlags, dir: Direction, tcp: TcpFlags) -> Transition {
    transition_with(false, state, flags, dir, tcp)
}

/// [`transition`] in the normal table, or in `tcp_states_dos` when `secure`.
#[inline(always)]
pub fn transition_with(
    secure: bool,
    state: TcpState,
    flags: ConnFlags,
    dir: Direction,
    tcp: TcpFlags,
) -> Transition {
    let (flags, dir) = table_direction(flags, dir);
    let new = if secure {
        next_state_secure(dir, state, tcp)
    } else {
        next_state(dir, state, tcp)
    };
    let (flags, activity) = account_activity(flags, new != state, new.is_active());
    Transition {
        old: state,
        new,
        flags,
        activity,
    }
}

/// Timeouts per protocol state, in seconds: the kernel's `pd->timeout_table` of TCP, UDP
/// and SCTP.
///
/// Built from [`Timeouts`] (`ipvsadm --set tcp tcpfin udp`): `tcp` sets ESTABLISHED,
/// `tcp_fin` sets FIN_WAIT, `udp` sets the UDP state (`ip_vs_set_timeout()` in
/// `ip_vs_ctl.c`); every other state keeps its default. `--set`'s "0 leaves a value
/// unchanged" is the configuration layer's job: by the time a [`Timeouts`] reaches here
/// every field is the value to use, and a 0 is taken literally (the entry expires at once).
/// `--set` has no SCTP field: SCTP states keep the kernel's `sctp_timeouts[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateTimeouts {
    tcp: [u32; 11],
    udp: u32,
    sctp: [u32; 14],
    /// `secure_tcp` in force: the TCP table is `tcp_states_dos` and `tcp_dos` holds the
    /// timeouts.
    secure: bool,
    tcp_dos: [u32; 11],
    /// The ESTABLISHED re-arm, computed once (the packet path's most frequent one;
    /// `secure_tcp` keeps ESTABLISHED's timeout, [`dos_timeouts`]).
    established: Rearm,
}

/// A timeout of whole seconds as a connection-table re-arm takes it: nanoseconds and
/// milliseconds (saturated at `u32::MAX`), computed once instead of on every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rearm {
    /// The timeout in nanoseconds.
    pub ns: u64,
    /// The timeout in milliseconds, saturated.
    pub ms: u32,
}

impl Rearm {
    /// The re-arm of `secs` seconds.
    pub fn from_secs(secs: u32) -> Rearm {
        Rearm {
            ns: u64::from(secs) * 1_000_000_000,
            ms: u32::try_from(u64::from(secs) * 1000).unwrap_or(u32::MAX),
        }
    }
}

impl Default for StateTimeouts {
    /// The kernel defaults (`tcp_timeouts[]`, `udp_timeouts[]`).
    fn default() -> Self {
        let mut tcp = [0; 11];
        for s in TcpState::ALL {
            tcp[s.index()] = s.default_timeout_secs();
        }
        let mut sctp = [0; 14];
        for s in SctpState::ALL {
            sctp[s.index()] = s.default_timeout_secs();
        }
        StateTimeouts {
            tcp,
            udp: UDP_DEFAULT_TIMEOUT_SECS,
            sctp,
            secure: false,
            tcp_dos: dos_timeouts(tcp),
            established: Rearm::from_secs(tcp[TcpState::Established.index()]),
        }
    }
}

impl StateTimeouts {
    /// The defaults with `--set tcp tcpfin udp` applied.
    pub fn from_model(t: &Timeouts) -> StateTimeouts {
        let mut s = StateTimeouts::default();
        s.tcp[TcpState::Established.index()] = t.tcp;
        s.tcp[TcpState::FinWait.index()] = t.tcp_fin;
        s.udp = t.udp;
        s.tcp_dos = dos_timeouts(s.tcp);
        s.established = Rearm::from_secs(t.tcp);
        s
    }

    /// [`StateTimeouts::tcp_secs`] of ESTABLISHED as a [`Rearm`] (the same with or without
    /// `secure_tcp`).
    #[inline(always)]
    pub fn established(&self) -> Rearm {
        self.established
    }

    /// Switch `secure_tcp`'s table and timeouts on or off (the kernel's
    /// `ip_vs_protocol_timeout_change()`).
    pub fn set_secure(&mut self, on: bool) {
        self.secure = on;
    }

    /// Whether `secure_tcp`'s table and timeouts are in force.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The timeout of a TCP state in seconds (the shorter `secure_tcp` ones while it is
    /// in force).
    #[inline]
    pub fn tcp_secs(&self, state: TcpState) -> u32 {
        if self.secure {
            self.tcp_dos[state.index()]
        } else {
            self.tcp[state.index()]
        }
    }

    /// The timeout of a TCP state.
    pub fn tcp(&self, state: TcpState) -> Duration {
        Duration::from_secs(u64::from(self.tcp_secs(state)))
    }

    /// The timeout of an SCTP state in seconds.
    #[inline]
    pub fn sctp_secs(&self, state: SctpState) -> u32 {
        self.sctp[state.index()]
    }

    /// The timeout of an SCTP state.
    pub fn sctp(&self, state: SctpState) -> Duration {
        Duration::from_secs(u64::from(self.sctp_secs(state)))
    }

    /// The UDP timeout in seconds.
    pub fn udp_secs(&self) -> u32 {
        self.udp
    }

    /// The UDP timeout.
    pub fn udp(&self) -> Duration {
        Duration::from_secs(u64::from(self.udp))
    }

    /// What `ipvsadm -L --timeout` shows: (tcp, tcpfin, udp) in seconds (the configured
    /// ones, whether or not `secure_tcp` is in force).
    pub fn as_model(&self) -> Timeouts {
        Timeouts {
            tcp: self.tcp[TcpState::Established.index()],
            tcp_fin: self.tcp[TcpState::FinWait.index()],
            udp: self.udp,
        }
    }
}

/// The TCP timeouts while `secure_tcp` is in force. Mainline's `tcp_timeout_change()` only
/// swaps the state table; Linux 2.4's `ip_vs_conn.c` also switched to
/// `vs_timeout_table_dos`, whose shorter values rvs applies to the states a flood fills and
/// to the closing ones: SYN_SENT 60 s, SYN_RECV 10 s, FIN_WAIT 60 s, TIME_WAIT 60 s, SYNACK
/// 100 s — each only where shorter than the configured value. ESTABLISHED keeps its
/// configured timeout (`--set tcp`) so established clients are not cut short.
fn dos_timeouts(mut tcp: [u32; 11]) -> [u32; 11] {
    for (s, secs) in [
        (TcpState::SynSent, 60),
        (TcpState::SynRecv, 10),
        (TcpState::FinWait, 60),
        (TcpState::TimeWait, 60),
        (TcpState::SynAck, 100),
    ] {
        let t = &mut tcp[s.index()];
        *t = (*t).min(secs);
    }
    tcp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The precomputed ESTABLISHED re-arm is `tcp_secs(Established)` whatever the
    /// configured timeouts and `secure_tcp`, saturated milliseconds included.
    #[test]
    fn established_rearm_is_the_established_timeout() {
        for tcp in [0, 1, 900, 4_294_967, 4_294_968, u32::MAX] {
            let mut t = StateTimeouts::from_model(&Timeouts {
                tcp,
                tcp_fin: 120,
                udp: 300,
            });
            for secure in [false, true] {
                t.set_secure(secure);
                let secs = t.tcp_secs(TcpState::Established);
                assert_eq!(secs, tcp);
                let r = t.established();
                assert_eq!(r.ns, u64::from(secs) * 1_000_000_000);
                assert_eq!(
                    u64::from(r.ms),
                    (u64::from(secs) * 1000).min(u64::from(u32::MAX))
                );
            }
        }
        let d = StateTimeouts::default();
        assert_eq!(
            d.established(),
            Rearm::from_secs(d.tcp_secs(TcpState::Established))
        );
    }

    /// The kernel's `tcp_states[]` as printed in `ip_vs_proto_tcp.c` (mainline, read from
    /// torvalds/linux), one string per row, states in column order sNO..sSA. Kept as text
    /// so it can be compared with the source by eye.
    const KERNEL: [(&str, &str, &str); 12] = [
        (
            "INPUT",
            "syn",
            "sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR",
        ),
        (
            "INPUT",
            "fin",
            "sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW",
        ),
        (
            "INPUT",
            "ack",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES",
        ),
        (
            "INPUT",
            "rst",
            "sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR",
        ),
        (
            "OUTPUT",
            "syn",
            "sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR",
        ),
        (
            "OUTPUT",
            "fin",
            "sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW",
        ),
        (
            "OUTPUT",
            "ack",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES",
        ),
        (
            "OUTPUT",
            "rst",
            "sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL",
        ),
        (
            "INPUT-ONLY",
            "syn",
            "sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR",
        ),
        (
            "INPUT-ONLY",
            "fin",
            "sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW",
        ),
        (
            "INPUT-ONLY",
            "ack",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES",
        ),
        (
            "INPUT-ONLY",
            "rst",
            "sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL",
        ),
    ];

    fn parse(abbr: &str) -> TcpState {
        match abbr.trim() {
            "sNO" => TcpState::None,
            "sES" => TcpState::Established,
            "sSS" => TcpState::SynSent,
            "sSR" => TcpState::SynRecv,
            "sFW" => TcpState::FinWait,
            "sTW" => TcpState::TimeWait,
            "sCL" => TcpState::Close,
            "sCW" => TcpState::CloseWait,
            "sLA" => TcpState::LastAck,
            "sLI" => TcpState::Listen,
            "sSA" => TcpState::SynAck,
            other => panic!("bad abbreviation {other}"),
        }
    }

    /// Every cell: 3 directions x 4 flag kinds x 11 states = 132 transitions.
    #[test]
    fn kernel_table_cross_check() {
        let mut cells = 0;
        for (dir_name, kind_name, row) in KERNEL {
            let dir = match dir_name {
                "INPUT" => Direction::Input,
                "OUTPUT" => Direction::Output,
                _ => Direction::InputOnly,
            };
            let kind = match kind_name {
                "syn" => FlagKind::Syn,
                "fin" => FlagKind::Fin,
                "ack" => FlagKind::Ack,
                _ => FlagKind::Rst,
            };
            let want: Vec<TcpState> = row.split(',').map(parse).collect();
            assert_eq!(want.len(), 11);
            for (from, want) in TcpState::ALL.into_iter().zip(want) {
                let got = next_state(dir, from, kind.flags());
                assert_eq!(got, want, "{dir_name} {kind_name} from {from}");
                cells += 1;
            }
        }
        assert_eq!(cells, 132);
    }

    #[test]
    fn flag_priority_is_rst_syn_fin_ack() {
        let f = |b| TcpFlags(b).kind();
        use TcpFlags as T;
        assert_eq!(f(T::RST | T::SYN | T::FIN | T::ACK), Some(FlagKind::Rst));
        assert_eq!(f(T::SYN | T::FIN | T::ACK), Some(FlagKind::Syn));
        assert_eq!(f(T::SYN | T::ACK), Some(FlagKind::Syn));
        assert_eq!(f(T::FIN | T::ACK | T::PSH), Some(FlagKind::Fin));
        assert_eq!(f(T::ACK | T::PSH), Some(FlagKind::Ack));
        assert_eq!(f(T::PSH), None);
        assert_eq!(f(0), None);
        // No classifiable flag: CLOSE from any state, in any direction.
        for s in TcpState::ALL {
            assert_eq!(
                next_state(Direction::Input, s, TcpFlags(T::PSH)),
                TcpState::Close
            );
        }
    }

    #[test]
    fn default_timeouts_and_names() {
        let want = [
            (TcpState::None, 2, "NONE"),
            (TcpState::Established, 900, "ESTABLISHED"),
            (TcpState::SynSent, 120, "SYN_SENT"),
            (TcpState::SynRecv, 60, "SYN_RECV"),
            (TcpState::FinWait, 120, "FIN_WAIT"),
            (TcpState::TimeWait, 120, "TIME_WAIT"),
            (TcpState::Close, 10, "CLOSE"),
            (TcpState::CloseWait, 60, "CLOSE_WAIT"),
            (TcpState::LastAck, 30, "LAST_ACK"),
            (TcpState::Listen, 120, "LISTEN"),
            (TcpState::SynAck, 120, "SYNACK"),
        ];
        let t = StateTimeouts::default();
        for (i, (s, secs, name)) in want.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(TcpState::from_index(i as u8), Some(s));
            assert_eq!(t.tcp_secs(s), secs, "{name}");
            assert_eq!(t.tcp(s), Duration::from_secs(u64::from(secs)));
            assert_eq!(s.name(), name);
            assert_eq!(state_name(6, i as u8, false), name);
        }
        assert_eq!(TcpState::from_index(11), None);
        assert_eq!(t.udp_secs(), 300);
        assert_eq!(t.as_model(), Timeouts::default());
        assert_eq!(state_name(6, 11, false), "ERR!");
        assert_eq!(state_name(17, 0, false), "UDP");
        assert_eq!(state_name(6, 1, true), "NONE");
        assert_eq!(state_name(0, 0, false), "NONE");
        assert_eq!(state_name(132, 8, false), "ESTABLISHED");
        assert_eq!(state_name(132, 3, false), "C-SENT");
        assert_eq!(state_name(132, 14, false), "ERR!");
        assert_eq!(t.sctp_secs(SctpState::Established), 900);
        assert_eq!(t.sctp(SctpState::Init1), Duration::from_secs(4));
        assert_eq!(t.sctp_secs(SctpState::CookieEchoed), 61);
    }

    #[test]
    fn set_tcp_tcpfin_udp() {
        let t = StateTimeouts::from_model(&Timeouts {
            tcp: 3600,
            tcp_fin: 30,
            udp: 45,
        });
        for s in TcpState::ALL {
            let want = match s {
                TcpState::Established => 3600,
                TcpState::FinWait => 30,
                other => other.default_timeout_secs(),
            };
            assert_eq!(t.tcp_secs(s), want, "{s}");
        }
        assert_eq!(t.udp(), Duration::from_secs(45));
        assert_eq!(
            t.as_model(),
            Timeouts {
                tcp: 3600,
                tcp_fin: 30,
                udp: 45
            }
        );
    }

    #[test]
    fn active_states_follow_the_kernel() {
        let active: Vec<_> = TcpState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [
                TcpState::Established,
                TcpState::SynSent,
                TcpState::SynRecv,
                TcpState::SynAck
            ]
        );
    }

    #[test]
    fn nat_handshake_and_close_with_activity() {
        use TcpFlags as T;
        let mut f = ConnFlags::new_connection(&ForwardMethod::Masq);
        assert!(f.has(ConnFlags::INACTIVE));
        let mut s = TcpState::None;
        let steps = [
            (
                Direction::Input,
                T::SYN,
                TcpState::SynRecv,
                Some(Activity::BecameActive),
            ),
            (Direction::Output, T::SYN | T::ACK, TcpState::SynRecv, None),
            (Direction::Input, T::ACK, TcpState::Established, None),
            (
                Direction::Input,
                T::FIN | T::ACK,
                TcpState::CloseWait,
                Some(Activity::BecameInactive),
            ),
            (Direction::Output, T::FIN | T::ACK, TcpState::TimeWait, None),
            (Direction::Input, T::ACK, TcpState::TimeWait, None),
        ];
        for (dir, bits, want, act) in steps {
            let t = transition(s, f, dir, TcpFlags(bits));
            assert_eq!(
                (t.new, t.activity),
                (want, act),
                "{dir:?} {bits:#x} from {s}"
            );
            s = t.new;
            f = t.flags;
        }
        assert!(f.has(ConnFlags::INACTIVE));
    }

    #[test]
    fn no_output_uses_input_only_until_a_reply_is_seen() {
        let f = ConnFlags::new_connection(&ForwardMethod::DirectRoute);
        assert!(f.has(ConnFlags::NO_OUTPUT));
        // INPUT FIN on ESTABLISHED: INPUT row says CLOSE_WAIT, INPUT-ONLY says FIN_WAIT.
        let t = transition(
            TcpState::Established,
            f,
            Direction::Input,
            FlagKind::Fin.flags(),
        );
        assert_eq!(t.new, TcpState::FinWait);
        assert!(t.flags.has(ConnFlags::NO_OUTPUT));
        // An OUTPUT packet clears NO_OUTPUT; afterwards INPUT uses the INPUT row.
        let t = transition(
            TcpState::Established,
            f,
            Direction::Output,
            FlagKind::Ack.flags(),
        );
        assert!(!t.flags.has(ConnFlags::NO_OUTPUT));
        let t = transition(
            TcpState::Established,
            t.flags,
            Direction::Input,
            FlagKind::Fin.flags(),
        );
        assert_eq!(t.new, TcpState::CloseWait);
    }

    #[test]
    fn dest_counters() {
        assert_eq!(
            ConnFlags(ConnFlags::TEMPLATE).dest_counter(),
            DestCounter::Persistent
        );
        let tpl = ConnFlags(ConnFlags::TEMPLATE | ConnFlags::INACTIVE);
        assert_eq!(tpl.dest_counter(), DestCounter::Persistent);
        let new = ConnFlags::new_connection(&ForwardMethod::FullNat);
        assert_eq!(new.dest_counter(), DestCounter::Inactive);
        assert_eq!(ConnFlags(0).dest_counter(), DestCounter::Active);
    }

    #[test]
    fn unchanged_state_never_moves_counters() {
        // Created INACTIVE, an ACK in NONE on INPUT goes to ESTABLISHED (changed) -> active;
        // a second ACK keeps ESTABLISHED -> no movement.
        let f = ConnFlags(ConnFlags::INACTIVE);
        let t = transition(TcpState::None, f, Direction::Input, FlagKind::Ack.flags());
        assert_eq!(t.activity, Some(Activity::BecameActive));
        let t2 = transition(t.new, t.flags, Direction::Input, FlagKind::Ack.flags());
        assert_eq!(t2.activity, None);
    }
}

#[cfg(test)]
mod secure_tests {
    use super::*;

    fn walk(secure: bool, flags: ConnFlags, steps: &[(Direction, FlagKind)]) -> Vec<&'static str> {
        let mut s = TcpState::None;
        let mut f = flags;
        let mut out = Vec::new();
        for (dir, k) in steps {
            let t = transition_with(secure, s, f, *dir, k.flags());
            s = t.new;
            f = t.flags;
            out.push(s.name());
        }
        out
    }

    #[test]
    fn secure_table_needs_the_real_servers_answer_before_established() {
        use Direction::{Input, Output};
        use FlagKind::{Ack, Syn};
        let nat = ConnFlags::new_connection(&crate::model::ForwardMethod::Masq);
        // Normal table: the client's ACK after its SYN establishes (NAT).
        assert_eq!(
            walk(false, nat, &[(Input, Syn), (Input, Ack)]),
            ["SYN_RECV", "ESTABLISHED"]
        );
        // tcp_states_dos: it does not; the SYN-ACK moves to SYNACK, the server's ACK
        // establishes.
        assert_eq!(
            walk(
                true,
                nat,
                &[
                    (Input, Syn),
                    (Input, Ack),
                    (Output, Syn),
                    (Input, Ack),
                    (Output, Ack)
                ]
            ),
            ["SYN_RECV", "SYN_RECV", "SYNACK", "SYNACK", "ESTABLISHED"]
        );
        // Direct routing (INPUT-ONLY): SYN enters SYNACK, the client's ACK establishes.
        let dr = ConnFlags::new_connection(&crate::model::ForwardMethod::DirectRoute);
        assert_eq!(
            walk(true, dr, &[(Input, Syn), (Input, Ack)]),
            ["SYNACK", "ESTABLISHED"]
        );
        assert_eq!(
            walk(false, dr, &[(Input, Syn), (Input, Ack)]),
            ["SYN_RECV", "ESTABLISHED"]
        );
    }

    #[test]
    fn secure_table_differs_from_the_normal_one_only_where_the_kernel_s_does() {
        // Cells of tcp_states_dos that differ from tcp_states (ip_vs_proto_tcp.c).
        let mut diffs = Vec::new();
        for (d, dir) in ["INPUT", "OUTPUT", "INPUT-ONLY"].iter().enumerate() {
            for (k, kind) in ["syn", "fin", "ack", "rst"].iter().enumerate() {
                for s in TcpState::ALL {
                    let a = TCP_STATES[d][k][s.index()];
                    let b = TCP_STATES_DOS[d][k][s.index()];
                    if a != b {
                        diffs.push(format!(
                            "{dir} {kind} {}: {} -> {}",
                            s.name(),
                            a.name(),
                            b.name()
                        ));
                    }
                }
            }
        }
        assert_eq!(
            diffs,
            [
                "INPUT syn SYNACK: SYN_RECV -> SYNACK",
                "INPUT fin SYNACK: TIME_WAIT -> SYNACK",
                "INPUT ack SYN_RECV: ESTABLISHED -> SYN_RECV",
                "INPUT ack SYNACK: ESTABLISHED -> SYNACK",
                "INPUT rst SYNACK: SYN_RECV -> CLOSE",
                "OUTPUT syn SYN_RECV: SYN_RECV -> SYNACK",
                "OUTPUT syn SYNACK: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn NONE: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn FIN_WAIT: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn TIME_WAIT: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn CLOSE: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn CLOSE_WAIT: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn LAST_ACK: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn LISTEN: SYN_RECV -> SYNACK",
                "INPUT-ONLY syn SYNACK: SYN_RECV -> SYNACK",
            ]
        );
    }
}
