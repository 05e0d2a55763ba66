//! The director engine: `handle(now, port, frame) -> Verdict` (being built).

pub mod classify;
pub mod drops;
pub mod net;
