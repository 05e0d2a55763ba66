//! rvs-core: the Linux Virtual Server director engine, pure and kernel-exact.
//!
//! Everything an IPVS director decides about a packet lives here, and nothing else:
//! no syscalls, no clock, no randomness of its own, no `unsafe`. Time and packets are
//! arguments; decisions are return values (the sans-IO shape of quinn-proto and smoltcp).
//! The daemon in the `rvs` crate owns sockets and clocks and drives this engine.
//!
//! - [`wire`]: zero-copy packet views and in-place rewrite, RFC 1071/1624 checksums.
//! - [`model`]: the configuration model every config format maps to.
//! - [`dest`]: run-time state of real servers (weights, connection counts, overload).
//! - [`sched`]: the 14 IPVS schedulers, kernel-exact.
//! - [`conn`]: the connection table, the IPVS TCP state machine, persistence templates.
//! - [`stats`]: counters and IPVS-style rate estimators.
//! - [`director`]: the engine: `handle(now, port, frame) -> Verdict`.
//! - [`health`]: health monitoring: check scheduling, rise/fall, quorum, effective weights.
//! - [`vrrp`]: VRRP v2/v3 advertisements, the virtual-router state machine, sync groups.
//! - [`pulse`]: Piranha's pulse heartbeat between the primary and backup directors.
//! - [`fos`]: Piranha's failover services (`service = fos`): services started, stopped and
//!   monitored around pulse.
//! - [`sync`]: the IPVS connection synchronisation message codec (protocol v1, v0 read).
#![forbid(unsafe_code)]

pub mod conn;
pub mod dest;
pub mod director;
pub mod fos;
pub mod health;
pub mod model;
pub mod pulse;
pub mod sched;
pub mod stats;
pub mod sync;
pub mod time;
pub mod vrrp;
pub mod wire;
