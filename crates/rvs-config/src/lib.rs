//! rvs-config: configuration parsers mapping to [`rvs_core::model::Config`], with
//! file:line:column diagnostics.
//!
//! Today: Piranha's `lvs.cf` ([`parse_lvs_cf`], [`load`]), keepalived.conf
//! ([`parse_keepalived`], [`load_keepalived`]) and ipvsadm's command line and rules format
//! ([`ipvsadm`]), and rvs's native TOML ([`parse_native`], [`emit_native`]); writers for
//! keepalived.conf and lvs.cf ([`emit`]) refuse what those formats cannot express. Each
//! format's health monitoring (nanny's keys, keepalived's checkers, the TOML's
//! `[service.health]`) maps to [`rvs_core::health::HealthConfig`]; [`describe_health`] says
//! it in one line per check. What the daemon runs for failover (VRRP, pulse, connection
//! sync) comes from [`failover`]; [`describe_failover`] says it for people. Parsers
//! never touch the network (the host and service names of ipvsadm's formats are looked up
//! through a [`ipvsadm::Names`] the caller gives) and never print: they return values and
//! [`Diagnostic`]s for the caller to show.
#![forbid(unsafe_code)]

pub mod diag;
pub mod emit;
pub mod failover;
pub mod ipvsadm;
pub mod keepalived;
mod locate;
pub mod lvs;
pub mod native;
pub mod netfilter;
pub mod script;
mod syntax;

pub use diag::{Diagnostic, Place, Severity, render_all};
pub use emit::{
    Lossy, Written, describe_health, emit_keepalived, emit_lvs_cf, keepalived_vips, lvs_cf_names,
    write_ipvsadm, write_keepalived, write_lvs_cf,
};
pub use failover::{
    AddressSetup, ClusterSetup, FailoverConfig, FailoverMode, FosServiceSetup, FosSetup,
    PulseSetup, SyncGroupSetup, SyncSetup, TrackScriptSetup, VrrpInstanceSetup, VrrpSetup,
    describe_failover, failover_from_keepalived, failover_from_lvs_cf,
};
pub use ipvsadm::{Command, UsageError, parse_command, parse_rules, save};
pub use keepalived::{
    KeepalivedConf, ParseOptions, load_keepalived, load_keepalived_with, parse_keepalived,
    parse_keepalived_with,
};
pub use lvs::{
    Failover, FailoverService, HealthCheck, LoadMonitor, LvsCf, Network, RealServer, ServiceType,
    Vip, VirtualServer, parse_lvs_cf,
};
pub use native::{
    InactiveServer, Names, NativeConf, ServerSlot, ServiceNames, emit_native, fos_vips,
    load_native, parse_native, vrrp_vips,
};
pub use script::{Script, ScriptPolicy};

use std::path::Path;

/// Read and parse an lvs.cf file. A file that cannot be read or is not UTF-8 gives one
/// diagnostic (for the unreadable file at 1:1, for bad UTF-8 at the first bad byte).
pub fn load(path: &Path) -> Result<LvsCf, Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::new(
            "",
            &shown,
            0..0,
            Severity::Error,
            format!("cannot read the file: {e}"),
            None,
        )]
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse_lvs_cf(&text, &shown),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Err(vec![Diagnostic::new(
                &text,
                &shown,
                at..at + 1,
                Severity::Error,
                "the file is not valid UTF-8",
                Some("UTF-8 text".to_string()),
            )])
        }
    }
}

/// A memory size: bytes, or a number followed by `K`, `M`, `G` or `T` (powers of 1024;
/// a trailing `B` or `iB` is allowed), as the connection table's memory limit is written
/// (`[conn_table] memory`, `rvs daemon --conn-table-memory`). `None` for anything else or
/// an overflow.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    n.checked_mul(1usize.checked_shl(shift)?)
}

/// The shortest exact [`parse_size`] spelling of `bytes` (`512M`, `1536K`, `1000`).
pub fn format_size(bytes: usize) -> String {
    for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1usize << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod size_tests {
    use super::{format_size, parse_size};

    #[test]
    fn sizes_parse_and_print_back() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        for bad in ["", "M", "12X", "-1M", "1.5G", "99999999999999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        for n in [512 << 20, 1536 << 10, 1000, 3 << 40] {
            assert_eq!(parse_size(&format_size(n)), Some(n));
        }
        assert_eq!(format_size(512 << 20), "512M");
    }
}
