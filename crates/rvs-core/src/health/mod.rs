//! Health monitoring (nanny and keepalived's checkers), sans-IO: which check is due when,
//! what a run of outcomes means for a real server (rise/fall, retries), the weight it gets
//! (quiesce or removal, slow start, `misc_dynamic`, load feedback), and what a virtual
//! service does about it (quorum with hysteresis, sorry server). The daemon performs the
//! checks and runs the scripts; this module only decides.

pub mod spec;

pub use spec::*;
