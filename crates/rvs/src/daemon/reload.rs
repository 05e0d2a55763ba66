//! Reloading the configuration file (control socket `reload`, SIGHUP) in two steps: a
//! control thread reads, parses and checks the file and reads the links ([`Reloader::stage`]),
//! then the worker installs the result between batches ([`Staged::install`]: the health
//! monitor's new checks, the engine's atomic `apply`, the network view).

use super::startup::net_config;
use crate::desired::Desired;
use crate::health::Monitor;
use crate::load::{self};
use rvs_core::director::{Director, NetConfig};
use rvs_core::health::HealthConfig;
use rvs_core::model::Config;
use std::path::PathBuf;

/// What a reload needs: the file, and the interfaces the running daemon is attached to.
#[derive(Debug, Clone)]
pub(super) struct Reloader {
    pub(super) path: PathBuf,
    pub(super) format: Option<load::Format>,
    pub(super) config_id: Option<String>,
    pub(super) interfaces: Vec<String>,
    /// `--strict`: refuse a file with warnings.
    pub(super) strict: bool,
    /// The command line's overrides.
    pub(super) tuning: crate::tuning::Tuning,
    /// `--script-timeout`.
    pub(super) script_timeout: std::time::Duration,
}

/// A file read and checked, ready for the worker to install.
#[derive(Debug)]
pub(super) struct Staged {
    path: PathBuf,
    config: Config,
    health: HealthConfig,
    net: NetConfig,
}

impl Reloader {
    /// Read the file again and check it (on a control thread): a file that does not parse
    /// or validate is refused with its diagnostics. Interfaces cannot change without a
    /// restart.
    pub(super) fn stage(&self) -> Result<Staged, String> {
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
        crate::privileges::reloaded(&loaded.failover, &loaded.health, self.script_timeout);
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
        Ok(Staged {
            path: self.path.clone(),
            config: plan.config,
            health: loaded.health,
            net,
        })
    }
}

impl Staged {
    /// Apply it atomically (on the worker): established connections stay; a configuration
    /// the engine refuses leaves the running one serving.
    pub(super) fn install(
        self,
        d: &mut Director,
        desired: &mut Desired,
        monitor: &Monitor,
    ) -> Result<(String, NetConfig), String> {
        // The health monitor learns the new checks first (servers that stay keep their
        // state), so the engine gets the new configuration already shaped by it.
        let report = match desired.install_with(d, self.config, Some(self.health), monitor.now()) {
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
            self.net,
        ))
    }
}
