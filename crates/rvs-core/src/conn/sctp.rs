//! The IPVS SCTP state machine: states, events, the transition table, timeouts and the
//! active/inactive rule.
//!
//! This is `net/netfilter/ipvs/ip_vs_proto_sctp.c` of mainline Linux (the table rewritten
//! for 3.14 by Julian Anastasov, "ipvs: fix SCTP state machine"): `sctp_states[dir][event]
//! [state]`, `sctp_timeouts[]`, `sctp_state_name_table[]`, the event taken from the first
//! chunk (`sctp_events[]`, with the COOKIE-ECHO/COOKIE-ACK + ABORT rule of
//! `set_sctp_state()`), and the accounting of `set_sctp_state()`: only ESTABLISHED counts
//! as active. Pure functions over small values; the packet walk is [`crate::wire::sctp`].

use core::fmt;

use super::state::{Activity, ConnFlags, Direction, account_activity, table_direction};
use crate::wire::sctp::{FirstChunk, chunk};

/// The 14 IPVS SCTP states (`IP_VS_SCTP_S_*` in `include/uapi/linux/ip_vs.h`), in kernel
/// order; the discriminant is the kernel's state number (the one sync messages carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SctpState {
    /// `IP_VS_SCTP_S_NONE`: just created.
    None = 0,
    /// `IP_VS_SCTP_S_INIT1`: first client INIT sent, waiting for the server's INIT-ACK.
    Init1 = 1,
    /// `IP_VS_SCTP_S_INIT`: a further client INIT sent.
    Init = 2,
    /// `IP_VS_SCTP_S_COOKIE_SENT`: the server sent INIT-ACK, waiting for COOKIE-ECHO.
    CookieSent = 3,
    /// `IP_VS_SCTP_S_COOKIE_REPLIED`: the client sent COOKIE-ECHO, waiting for COOKIE-ACK.
    CookieReplied = 4,
    /// `IP_VS_SCTP_S_COOKIE_WAIT`: the server sent INIT (association set up by the server).
    CookieWait = 5,
    /// `IP_VS_SCTP_S_COOKIE`: the client answered the server's INIT with INIT-ACK.
    Cookie = 6,
    /// `IP_VS_SCTP_S_COOKIE_ECHOED`: the server sent COOKIE-ECHO.
    CookieEchoed = 7,
    /// `IP_VS_SCTP_S_ESTABLISHED`.
    Established = 8,
    /// `IP_VS_SCTP_S_SHUTDOWN_SENT`: the server sent SHUTDOWN.
    ShutdownSent = 9,
    /// `IP_VS_SCTP_S_SHUTDOWN_RECEIVED`: the client sent SHUTDOWN.
    ShutdownReceived = 10,
    /// `IP_VS_SCTP_S_SHUTDOWN_ACK_SENT`: the server sent SHUTDOWN-ACK.
    ShutdownAckSent = 11,
    /// `IP_VS_SCTP_S_REJECTED`: the server answered INIT with ABORT.
    Rejected = 12,
    /// `IP_VS_SCTP_S_CLOSED`.
    Closed = 13,
}

impl SctpState {
    /// Every state, in kernel order (index = state number).
    pub const ALL: [SctpState; 14] = [
        SctpState::None,
        SctpState::Init1,
        SctpState::Init,
        SctpState::CookieSent,
        SctpState::CookieReplied,
        SctpState::CookieWait,
        SctpState::Cookie,
        SctpState::CookieEchoed,
        SctpState::Established,
        SctpState::ShutdownSent,
        SctpState::ShutdownReceived,
        SctpState::ShutdownAckSent,
        SctpState::Rejected,
        SctpState::Closed,
    ];

    /// The kernel's state number.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The state of a kernel state number, if it is one.
    pub fn from_index(i: u8) -> Option<SctpState> {
        SctpState::ALL.get(usize::from(i)).copied()
    }

    /// The name `ipvsadm -L -c` and `/proc/net/ip_vs_conn` print (`sctp_state_name_table[]`).
    pub const fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init1 => "INIT1",
            SctpState::Init => "INIT",
            SctpState::CookieSent => "C-SENT",
            SctpState::CookieReplied => "C-REPLIED",
            SctpState::CookieWait => "C-WAIT",
            SctpState::Cookie => "COOKIE",
            SctpState::CookieEchoed => "C-ECHOED",
            SctpState::Established => "ESTABLISHED",
            SctpState::ShutdownSent => "S-SENT",
            SctpState::ShutdownReceived => "S-RECEIVED",
            SctpState::ShutdownAckSent => "S-ACK-SENT",
            SctpState::Rejected => "REJECTED",
            SctpState::Closed => "CLOSED",
        }
    }

    /// The kernel's default timeout of the state in seconds (`sctp_timeouts[]`:
    /// `IP_VS_SCTP_MAX_RTO` is `(60 + 1) * HZ`, INIT1 and REJECTED `(0 + 3 + 1) * HZ`).
    pub const fn default_timeout_secs(self) -> u32 {
        match self {
            SctpState::None => 2,
            SctpState::Init1 | SctpState::Rejected => 4,
            SctpState::Established => 15 * 60,
            _ => 61,
        }
    }

    /// Whether a connection in this state counts in its real server's `activeconns`:
    /// `set_sctp_state()` moves it to active on entering ESTABLISHED and to inactive on
    /// entering any other state.
    pub const fn is_active(self) -> bool {
        matches!(self, SctpState::Established)
    }
}

impl fmt::Display for SctpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The events of the table (`enum ipvs_sctp_event_t`), in row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SctpEvent {
    /// DATA, SACK, HEARTBEAT, HEARTBEAT-ACK, ECNE, CWR and any unknown chunk type.
    Data,
    /// INIT.
    Init,
    /// INIT-ACK.
    InitAck,
    /// COOKIE-ECHO.
    CookieEcho,
    /// COOKIE-ACK.
    CookieAck,
    /// SHUTDOWN.
    Shutdown,
    /// SHUTDOWN-ACK.
    ShutdownAck,
    /// SHUTDOWN-COMPLETE.
    ShutdownComplete,
    /// ERROR.
    Error,
    /// ABORT.
    Abort,
}

impl SctpEvent {
    /// All ten, in table row order.
    pub const ALL: [SctpEvent; 10] = [
        SctpEvent::Data,
        SctpEvent::Init,
        SctpEvent::InitAck,
        SctpEvent::CookieEcho,
        SctpEvent::CookieAck,
        SctpEvent::Shutdown,
        SctpEvent::ShutdownAck,
        SctpEvent::ShutdownComplete,
        SctpEvent::Error,
        SctpEvent::Abort,
    ];

    fn row(self) -> usize {
        self as usize
    }

    /// The event of a chunk type (`sctp_events[]`: types beyond SHUTDOWN-COMPLETE are DATA).
    pub const fn of_chunk(kind: u8) -> SctpEvent {
        match kind {
            chunk::INIT => SctpEvent::Init,
            chunk::INIT_ACK => SctpEvent::InitAck,
            chunk::ABORT => SctpEvent::Abort,
            chunk::SHUTDOWN => SctpEvent::Shutdown,
            chunk::SHUTDOWN_ACK => SctpEvent::ShutdownAck,
            chunk::ERROR => SctpEvent::Error,
            chunk::COOKIE_ECHO => SctpEvent::CookieEcho,
            chunk::COOKIE_ACK => SctpEvent::CookieAck,
            chunk::SHUTDOWN_COMPLETE => SctpEvent::ShutdownComplete,
            _ => SctpEvent::Data,
        }
    }

    /// The event of an SCTP packet (`sctp` = the bytes from the common header on), as
    /// `set_sctp_state()` picks it: the first chunk's, except that a COOKIE-ECHO or
    /// COOKIE-ACK followed by an ABORT is an ABORT ("Control chunks ... MAY be bundled with
    /// an ABORT, but they MUST be placed before the ABORT"). `None` when there is no whole
    /// first chunk header: the kernel then leaves the state and the timer alone.
    pub fn of_packet(sctp: &[u8]) -> Option<SctpEvent> {
        FirstChunk::of(sctp).map(SctpEvent::of_first)
    }

    /// The event of a packet whose first chunk the parser recorded ([`FirstChunk`]).
    pub fn of_first(first: FirstChunk) -> SctpEvent {
        if first.abort_follows {
            SctpEvent::Abort
        } else {
            SctpEvent::of_chunk(first.kind)
        }
    }
}

// Shorthands for the table, named as in the kernel source.
const I1: SctpState = SctpState::Init1;
const IN: SctpState = SctpState::Init;
const CS: SctpState = SctpState::CookieSent;
const CR: SctpState = SctpState::CookieReplied;
const CW: SctpState = SctpState::CookieWait;
const CO: SctpState = SctpState::Cookie;
const CE: SctpState = SctpState::CookieEchoed;
const ES: SctpState = SctpState::Established;
const SS: SctpState = SctpState::ShutdownSent;
const SR: SctpState = SctpState::ShutdownReceived;
const SA: SctpState = SctpState::ShutdownAckSent;
const RJ: SctpState = SctpState::Rejected;
const CL: SctpState = SctpState::Closed;

/// `sctp_states[IP_VS_DIR_LAST][IP_VS_SCTP_EVENT_LAST][IP_VS_SCTP_S_LAST]` of
/// `net/netfilter/ipvs/ip_vs_proto_sctp.c` (mainline since 3.14), written out
/// independently; `kernel_table_cross_check` re-states it in the kernel's text layout.
/// No transition leads to NONE, so it has no shorthand.
#[rustfmt::skip]
const SCTP_STATES: [[[SctpState; 14]; 10]; 3] = [
    // INPUT        sNO sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
    [
        /* d   */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* i   */ [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
        /* i_a */ [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_e */ [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_a */ [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
        /* s   */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        /* s_a */ [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
        /* s_c */ [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
        /* err */ [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
        /* ab  */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT
    [
        /* d   */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* i   */ [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        /* i_a */ [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_e */ [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        /* c_a */ [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        /* s   */ [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        /* s_a */ [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        /* s_c */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* err */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ab  */ [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* d   */ [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* i   */ [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        /* i_a */ [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_e */ [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_a */ [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        /* s   */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        /* s_a */ [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        /* s_c */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        /* err */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ab  */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

fn dir_row(dir: Direction) -> usize {
    match dir {
        Direction::Input => 0,
        Direction::Output => 1,
        Direction::InputOnly => 2,
    }
}

/// The next state of a connection in `state` on a packet of `event` travelling `dir`: the
/// table lookup of `set_sctp_state()`.
#[inline]
pub fn next_state(dir: Direction, state: SctpState, event: SctpEvent) -> SctpState {
    SCTP_STATES[dir_row(dir)][event.row()][state.index()]
}

/// The outcome of one SCTP packet on a connection ([`transition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SctpTransition {
    /// State before the packet.
    pub old: SctpState,
    /// State after it.
    pub new: SctpState,
    /// The connection's flags after it (NO_OUTPUT and INACTIVE may change).
    pub flags: ConnFlags,
    /// Whether the director must move the connection between its real server's active and
    /// inactive counts.
    pub activity: Option<Activity>,
}

/// `set_sctp_state()`: the state change a packet causes, with the NO_OUTPUT direction
/// rewrite ("Update direction to INPUT_ONLY if necessary or delete NO_OUTPUT flag if output
/// packet detected") and the active/inactive bookkeeping, done only when the state changes.
#[inline]
pub fn transition(
    state: SctpState,
    flags: ConnFlags,
    dir: Direction,
    event: SctpEvent,
) -> SctpTransition {
    let (flags, dir) = table_direction(flags, dir);
    let new = next_state(dir, state, event);
    let (flags, activity) = account_activity(flags, new != state, new.is_active());
    SctpTransition {
        old: state,
        new,
        flags,
        activity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ForwardMethod;

    /// The kernel's `sctp_states[]` as printed in `ip_vs_proto_sctp.c` (mainline, read from
    /// torvalds/linux), one string per row, states in column order sNO..sCL.
    const KERNEL: [&str; 30] = [
        // INPUT
        "sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sI1, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN",
        "sCW, sCW, sCW, sCS, sCR, sCO, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCR, sIN, sIN, sCR, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sES, sI1, sIN, sCS, sCR, sCW, sCO, sES, sES, sSS, sSR, sSA, sRJ, sCL",
        "sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL",
        "sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sCL, sSR, sCL, sRJ, sCL",
        "sCL, sCL, sCL, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sCL, sRJ, sCL",
        "sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCL, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL",
        // OUTPUT
        "sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCW, sCW, sCW, sCW, sCW, sCW, sCW, sCW, sES, sCW, sCW, sCW, sCW, sCW",
        "sCS, sCS, sCS, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCE, sCE, sCE, sCE, sCE, sCE, sCE, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sES, sES, sES, sES, sES, sES, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL",
        "sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSR, sSA, sRJ, sCL",
        "sSA, sSA, sSA, sSA, sSA, sCW, sCO, sCE, sES, sSA, sSA, sSA, sRJ, sCL",
        "sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL",
        // INPUT-ONLY
        "sES, sI1, sIN, sCS, sCR, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sI1, sIN, sIN, sIN, sIN, sIN, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN",
        "sCE, sCE, sCE, sCE, sCE, sCE, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sES, sES, sES, sES, sES, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sES, sI1, sIN, sES, sES, sCW, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL",
        "sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL",
        "sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sCL, sCL, sSR, sCL, sRJ, sCL",
        "sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sCL, sCL, sRJ, sCL",
        "sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL",
        "sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL",
    ];

    fn parse(abbr: &str) -> SctpState {
        const ABBR: [&str; 14] = [
            "sNO", "sI1", "sIN", "sCS", "sCR", "sCW", "sCO", "sCE", "sES", "sSS", "sSR", "sSA",
            "sRJ", "sCL",
        ];
        let i = ABBR.iter().position(|a| *a == abbr.trim()).unwrap();
        SctpState::ALL[i]
    }

    /// Every cell: 3 directions x 10 events x 14 states = 420 transitions.
    #[test]
    fn kernel_table_cross_check() {
        let dirs = [Direction::Input, Direction::Output, Direction::InputOnly];
        let mut cells = 0;
        for (r, row) in KERNEL.iter().enumerate() {
            let dir = dirs[r / 10];
            let ev = SctpEvent::ALL[r % 10];
            let want: Vec<SctpState> = row.split(',').map(parse).collect();
            assert_eq!(want.len(), 14);
            for (from, want) in SctpState::ALL.into_iter().zip(want) {
                assert_eq!(
                    next_state(dir, from, ev),
                    want,
                    "{dir:?} {ev:?} from {from}"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, 420);
    }

    #[test]
    fn names_timeouts_and_numbers() {
        let want = [
            ("NONE", 2),
            ("INIT1", 4),
            ("INIT", 61),
            ("C-SENT", 61),
            ("C-REPLIED", 61),
            ("C-WAIT", 61),
            ("COOKIE", 61),
            ("C-ECHOED", 61),
            ("ESTABLISHED", 900),
            ("S-SENT", 61),
            ("S-RECEIVED", 61),
            ("S-ACK-SENT", 61),
            ("REJECTED", 4),
            ("CLOSED", 61),
        ];
        for (i, (name, secs)) in want.into_iter().enumerate() {
            let s = SctpState::from_index(i as u8).unwrap();
            assert_eq!(s.index(), i);
            assert_eq!(s.name(), name);
            assert_eq!(s.default_timeout_secs(), secs, "{name}");
            assert_eq!(s.is_active(), name == "ESTABLISHED");
        }
        assert_eq!(SctpState::from_index(14), None);
    }

    #[test]
    fn events_of_chunks() {
        let ev = |k| SctpEvent::of_chunk(k);
        assert_eq!(ev(chunk::DATA), SctpEvent::Data);
        assert_eq!(ev(chunk::SACK), SctpEvent::Data);
        assert_eq!(ev(chunk::HEARTBEAT), SctpEvent::Data);
        assert_eq!(ev(chunk::HEARTBEAT_ACK), SctpEvent::Data);
        assert_eq!(ev(chunk::ECNE), SctpEvent::Data);
        assert_eq!(ev(chunk::CWR), SctpEvent::Data);
        assert_eq!(ev(0x80), SctpEvent::Data); // ASCONF-ACK and other extensions
        assert_eq!(ev(chunk::SHUTDOWN_COMPLETE), SctpEvent::ShutdownComplete);
        let hdr = [0u8, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
        let pkt = |chunks: &[u8]| [&hdr[..], chunks].concat();
        // COOKIE-ECHO (length 5, padded to 8) then ABORT: ABORT.
        let p = pkt(&[10, 0, 0, 5, 7, 0, 0, 0, 6, 0, 0, 4]);
        assert_eq!(SctpEvent::of_packet(&p), Some(SctpEvent::Abort));
        // COOKIE-ACK then DATA: COOKIE-ACK.
        let p = pkt(&[11, 0, 0, 4, 0, 0, 0, 4]);
        assert_eq!(SctpEvent::of_packet(&p), Some(SctpEvent::CookieAck));
        // DATA then ABORT: only the cookie chunks look further.
        let p = pkt(&[0, 0, 0, 4, 6, 0, 0, 4]);
        assert_eq!(SctpEvent::of_packet(&p), Some(SctpEvent::Data));
        // No chunk header: no event.
        assert_eq!(SctpEvent::of_packet(&hdr), None);
        assert_eq!(SctpEvent::of_packet(&pkt(&[1, 0, 0])), None);
    }

    #[test]
    fn nat_association_with_activity() {
        use SctpEvent as E;
        let mut f = ConnFlags::new_connection(&ForwardMethod::Masq);
        let mut s = SctpState::None;
        let (i, o) = (Direction::Input, Direction::Output);
        let steps = [
            (i, E::Init, SctpState::Init1, None),
            (o, E::InitAck, SctpState::CookieSent, None),
            (i, E::CookieEcho, SctpState::CookieReplied, None),
            (
                o,
                E::CookieAck,
                SctpState::Established,
                Some(Activity::BecameActive),
            ),
            (i, E::Data, SctpState::Established, None),
            (o, E::Data, SctpState::Established, None),
            (
                i,
                E::Shutdown,
                SctpState::ShutdownReceived,
                Some(Activity::BecameInactive),
            ),
            (o, E::ShutdownAck, SctpState::ShutdownAckSent, None),
            (i, E::ShutdownComplete, SctpState::Closed, None),
        ];
        for (dir, ev, want, act) in steps {
            let t = transition(s, f, dir, ev);
            assert_eq!((t.new, t.activity), (want, act), "{dir:?} {ev:?} from {s}");
            s = t.new;
            f = t.flags;
        }
        assert!(f.has(ConnFlags::INACTIVE));
    }

    #[test]
    fn direct_routing_uses_input_only() {
        use SctpEvent as E;
        let mut f = ConnFlags::new_connection(&ForwardMethod::DirectRoute);
        let mut s = SctpState::None;
        for (ev, want) in [
            (E::Init, SctpState::Init1),
            (E::CookieEcho, SctpState::Established),
            (E::Data, SctpState::Established),
            (E::Shutdown, SctpState::ShutdownReceived),
            (E::ShutdownComplete, SctpState::Closed),
        ] {
            let t = transition(s, f, Direction::Input, ev);
            assert_eq!(t.new, want, "{ev:?} from {s}");
            assert!(t.flags.has(ConnFlags::NO_OUTPUT));
            s = t.new;
            f = t.flags;
        }
    }
}
