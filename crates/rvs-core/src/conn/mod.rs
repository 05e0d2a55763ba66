//! Connection tracking: the IPVS TCP state machine and the connection table.
//!
//! - [`state`]: TCP states, the kernel's transition table, per-state timeouts and the
//!   active/inactive rule (`ip_vs_proto_tcp.c`, `ip_vs_proto_udp.c`).
//! - [`sctp`]: the SCTP states, events and transition table (`ip_vs_proto_sctp.c`).
//! - [`defense`]: the defence strategies `drop_entry`, `drop_packet`, `secure_tcp`
//!   (`update_defense_level()` in `ip_vs_ctl.c`).
//! - [`table`]: the bounded, preallocated connection table with in/out lookups,
//!   persistence templates and incremental expiry (`ip_vs_conn.c`).
//!
//! This module decides nothing about scheduling or forwarding: the director looks entries
//! up, creates them after scheduling, feeds packets' TCP flags through
//! [`ConnTable::tcp_transition`] and adjusts its real servers' counts from what the table
//! reports. There are no timers and no clock here: time is an argument.

pub mod defense;
pub mod sctp;
pub mod state;
pub mod table;

pub use defense::{DefenseCounters, DefenseState};
pub use sctp::{SctpEvent, SctpState, SctpTransition};
pub use state::{
    Activity, ConnFlags, DestCounter, Direction, FlagKind, StateTimeouts, TcpFlags, TcpState,
    Transition, next_state, next_state_secure, state_name, transition, transition_with,
};
pub use table::{
    CHUNK_ENTRIES, Conn, ConnAddr, ConnId, ConnTable, ConnTableV4, ConnTableV6, InKey, Inserted,
    Need, NewConn, OutKey, Provision, SyncMeta, TableFull, entries_for_bytes,
};
