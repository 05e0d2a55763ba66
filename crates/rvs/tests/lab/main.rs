//! rvs integration tests in network namespaces: one binary, one module per area (hickory's
//! `bin/tests/integration` layout). Every test builds its own lab with a unique name and
//! removes it again — also when the test panics — and then checks that nothing (namespace,
//! process, state file) is left behind.
//!
//! These tests need root and iproute2: without them they FAIL, with a message saying so;
//! they never skip.
//!
//! The lab itself is `rvs_lab::lab` (crate `crates/rvs-lab`, the test tooling kept out of
//! the daemon's modules); everything else — `rvs httpd`, `rvs lab`, `rvs demo` — is
//! exercised through the built `rvs` binary.

use rvs_lab::lab;

mod active_active;
mod bulk;
mod check_config;
mod cli;
mod cluster;
mod console;
mod console_browser;
mod control_plane;
mod demo;
mod failover;
mod fastpath;
mod fastpath_sync;
mod fastpath_udp;
mod forwarding;
mod fos;
mod ftp;
mod fwmark;
mod harness;
mod health;
mod httpd;
mod icmp;
mod kernel_forwarding;
mod lifecycle;
mod metrics;
mod neighbours;
mod persistence;
mod privileges;
mod reload;
mod rvsadm;
mod sctp;
mod steady;
mod synflood;
mod synproxy;
mod systemd_live;
mod udp;
mod vrrp_ah;
mod vrrp_track;
mod workers;
