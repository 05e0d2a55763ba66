//! Connection tracking: the IPVS TCP state machine and the connection table.
//!
//! - [`state`]: TCP states, the kernel's transition table, per-state timeouts and the
//!   active/inactive rule (`ip_vs_proto_tcp.c`, `ip_vs_proto_udp.c`).
//! - [`sctp`]: the SCTP states, events and transition table (`ip_vs_proto_sctp.c`).
//! - [`table`]: the bounded, preallocated connection table with in/out lookups,
//!   persistence templates and incremental expiry (`ip_vs_conn.c`).
//!
//! This module decides nothing about scheduling or forwarding: the director looks entries
//! up, creates them after scheduling, feeds packets' TCP flags through
//! [`ConnTable::tcp_transition`] and adjusts its real servers' counts from what the table
//! reports. There are no timers and no clock here: time is an argument.

pub mod sctp;
pub mod state;
pub mod table;

pub use sctp::{SctpEvent, SctpState, SctpTransition};
pub use state::{
    Activity, ConnFlags, DestCounter, Direction, FlagKind, StateTimeouts, TcpFlags, TcpState,
    Transition, next_state, state_name, transition,
};
pub use table::{
    Conn, ConnAddr, ConnId, ConnTable, ConnTableV4, ConnTableV6, InKey, Inserted, NewConn, OutKey,
    SyncMeta, TableFull,
};
