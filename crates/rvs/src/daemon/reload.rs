//! Reloading the configuration file (control socket `reload`, SIGHUP).

use super::startup::net_config;
use crate::desired::Desired;
use crate::health::Monitor;
use crate::load::{self};
use rvs_core::director::{Director, NetConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What a reload needs: the file, and the interfaces the running daemon is attached to.
pub(super) struct Reloader {
    pub(super) path: PathBuf,
    pub(super) format: Option<load::Format>,
    pub(super) config_id: Option<String>,
    pub(super) interfaces: Vec<String>,
    /// `--strict`: refuse a file with warnings.
    pub(super) strict: bool,
    /// The command line's overrides.
    pub(super) tuning: crate::tuning::Tuning,
    /// Set by SIGHUP.
    pub(super) hup: Arc<AtomicBool>,
}

impl Reloader {
    /// [`Reloader::reload`], with the outcome logged.
    pub(super) fn reload_logged(
        &mut self,
        d: &mut Director,
        desired: &mut Desired,
        monitor: &Monitor,
        by: &str,
    ) -> Result<(String, NetConfig), String> {
        let r = self.reload(d, desired, monitor);
        match &r {
            Ok((msg, _)) => tracing::info!(by, "{msg}"),
            Err(e) => tracing::warn!(by, "reload refused, the running configuration stays: {e}"),
        }
        r
    }

    /// Read the file again and apply it atomically: established connections stay; a file
    /// that does not parse or validate is refused with its diagnostics and the running
    /// configuration keeps serving. Interfaces cannot change without a restart.
    pub(super) fn reload(
        &mut self,
        d: &mut Director,
        desired: &mut Desired,
        monitor: &Monitor,
    ) -> Result<(String, NetConfig), String> {
        let (loaded, marks) = load::admit(
            &self.path,
            self.format,
            self.config_id.as_deref(),
            self.strict,
        )?;
        if !marks.read.is_empty() {
            tracing::info!("{marks}");
        }
        for w in &loaded.warnings {
            tracing::warn!(file = %w.path, line = w.line, column = w.column, "{}", w.message);
        }
        let mut plan = load::plan(&loaded).map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.tuning.apply(&mut plan.config);
        if plan.interfaces != self.interfaces {
            return Err(format!(
                "{}: the new configuration needs interfaces {:?}, the daemon runs on {:?}; \
                 restart it to change interfaces",
                self.path.display(),
                plan.interfaces,
                self.interfaces
            ));
        }
        let net = net_config(&plan).map_err(|e| e.to_string())?;
        // The health monitor learns the new checks first (servers that stay keep their
        // state), so the engine gets the new configuration already shaped by it.
        let report = match desired.install_with(
            d,
            plan.config.clone(),
            Some(loaded.health.clone()),
            monitor.now(),
        ) {
            Ok(r) => r,
            Err(errs) => {
                let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
                return Err(format!("{}: {}", self.path.display(), msgs.join("; ")));
            }
        };
        monitor.wake();
        Ok((
            format!(
                "reloaded {}: services +{} -{}, real servers +{} -{} ~{}",
                self.path.display(),
                report.services_added,
                report.services_removed,
                report.dests_added,
                report.dests_removed,
                report.dests_edited
            ),
            net,
        ))
    }
}
