//! rvs's test tooling, kept out of the daemon's modules: the namespace lab ([`lab`], `rvs
//! lab`), the demo ([`demo`], `rvs demo`, `rvs demo --failover`) and the HTTP responder the
//! lab's real servers run ([`httpd`], `rvs httpd`). The `rvs` binary embeds each command
//! line (`LabArgs`, `DemoArgs`, `HttpdArgs`) as a subcommand; the lab tests
//! (`crates/rvs/tests/lab`) and the benchmarks use [`lab::Lab`] directly.
//!
//! The demo drives the daemon only through the `rvs` executable it runs in (`rvs daemon`,
//! `rvs list`) and the network, so this crate does not depend on the daemon's.
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::process::Command;

pub mod demo;
mod demo_console;
mod demo_failover;
pub mod httpd;
pub mod lab;

/// `rvs list --control CONTROL ARGS` run with the executable this process runs (the `rvs`
/// binary): the daemon's listing, or its error.
fn listing(control: &Path, args: &[&str]) -> io::Result<String> {
    let out = Command::new(std::env::current_exe()?)
        .arg("list")
        .arg("--control")
        .arg(control)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        ));
    }
    String::from_utf8(out.stdout).map_err(io::Error::other)
}
