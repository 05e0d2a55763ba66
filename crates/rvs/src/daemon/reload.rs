//! Reloading the configuration file (control socket `reload`, SIGHUP): a control thread
//! reads, parses and checks the file and reads the links ([`Reloader::stage`]), prepares
//! the result ([`super::changes::reload`]: the health monitor's new checks, the engine's
//! validation), and the worker only installs it between batches.

use super::startup::net_config;
use crate::load::{self};
use rvs_core::director::NetConfig;
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
    /// Active-active: the reloaded VIPs stay unowned ([`crate::announce`]).
    pub(super) active_active: bool,
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
        crate::announce::strip_owned_if(&mut plan, self.active_active);
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
    /// The file, its configuration, health configuration and network view (prepared for
    /// the worker by [`super::changes::reload`]).
    pub(super) fn into_parts(self) -> (PathBuf, Config, HealthConfig, NetConfig) {
        (self.path, self.config, self.health, self.net)
    }
}
