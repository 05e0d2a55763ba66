//! The `rvs` binary's library: the daemon, listings, and the commands `main.rs` dispatches.
#![forbid(unsafe_code)]

pub mod admin;
pub mod announce;
pub mod background;
pub mod console;
pub mod cpu;
pub mod daemon;
pub mod desired;
pub mod failover;
pub mod failover_status;
pub mod fastpath;
pub mod fos;
pub mod health;
pub mod kernel;
pub mod listing;
pub mod load;
pub mod loadagent;
pub mod locate;
pub mod logging;
pub mod marks;
pub mod metrics;
pub mod names;
pub mod privileges;
pub mod probe;
pub mod provision;
pub mod realserver;
pub mod scripts;
pub mod snapshot;
pub mod syncd;
pub mod tuning;
pub mod vrrp_track;
