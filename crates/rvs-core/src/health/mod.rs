//! Health monitoring (nanny and keepalived's checkers), sans-IO: which check is due when,
//! what a run of outcomes means for a real server (rise/fall, retries), the weight it gets
//! (quiesce or removal, slow start, `misc_dynamic`, load feedback), and what a virtual
//! service does about it (quorum with hysteresis, sorry server). The daemon performs the
//! checks and runs the scripts; this module only decides.
//!
//! - [`spec`]: the configuration model every format maps to.
//! - [`Health`]: the engine, driven with `poll_check` / `report`, `poll_load` /
//!   `report_load`, `poll_timeout` / `handle_timeout`, `poll_event`; [`Health::overlay`]
//!   gives the effective forwarding configuration.
//!
//! What it deliberately does not do: connect, run programs, read clocks or draw randomness
//! of its own (the warmup delays come from the seed given to [`Health::new`]).

mod engine;
mod quorum;
mod server;
pub mod spec;

#[cfg(test)]
mod tests;

pub use engine::{
    CheckId, CheckJob, Event, Health, LoadJob, ServerId, ServerStatus, ServiceStatus, WeightWhy,
};
pub use spec::*;
