//! The director engine: `handle(now, port, frame) -> Verdict` (being built).

pub mod net;
