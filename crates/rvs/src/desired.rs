//! What the operator asked for, and what the engine runs.
//!
//! The operator's configuration (the file, then `rvsadm` changes) is the *base*. The health
//! monitor, when there is one, turns it into the *effective* configuration the engine runs:
//! failed real servers removed or quiesced, slow-start and dynamic weights, the sorry server
//! in or out ([`rvs_core::health::Health::overlay`]). `ipvsadm -S` and the listings show the
//! effective configuration, as ipvsadm shows the kernel's table under keepalived; `rvsadm`
//! changes edit the base, so a health decision never overwrites an operator's change and an
//! operator's change never resurrects a failed server.

use std::sync::{Arc, Mutex};

use rvs_core::director::{ApplyReport, Director};
use rvs_core::health::Health;
use rvs_core::model::{Config, ConfigError};

/// The base configuration and the health monitor that shapes it.
pub struct Desired {
    base: Config,
    health: Option<Arc<Mutex<Health>>>,
}

impl Desired {
    /// A base configuration with no health monitoring.
    pub fn new(base: Config) -> Desired {
        Desired { base, health: None }
    }

    /// A base configuration shaped by `health`.
    pub fn with_health(base: Config, health: Arc<Mutex<Health>>) -> Desired {
        Desired {
            base,
            health: Some(health),
        }
    }

    /// The operator's configuration.
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// The health monitor, if any.
    pub fn health(&self) -> Option<&Arc<Mutex<Health>>> {
        self.health.as_ref()
    }

    /// The configuration the engine should run.
    pub fn effective(&self) -> Config {
        match &self.health {
            Some(h) => lock(h).overlay(&self.base),
            None => self.base.clone(),
        }
    }

    /// Make `next` the base and install its effective form in the engine, atomically:
    /// refused (base and engine unchanged) when it does not validate.
    pub fn install(
        &mut self,
        d: &mut Director,
        next: Config,
    ) -> Result<ApplyReport, Vec<ConfigError>> {
        let effective = match &self.health {
            Some(h) => lock(h).overlay(&next),
            None => next.clone(),
        };
        let report = d.apply(&effective)?;
        self.base = next;
        Ok(report)
    }

    /// Install the effective configuration again (after the health monitor changed its mind).
    pub fn refresh(&self, d: &mut Director) -> Result<ApplyReport, Vec<ConfigError>> {
        d.apply(&self.effective())
    }
}

/// The health monitor's lock. A panic while holding it (a bug) must not take the data plane
/// down with it: the state is still consistent enough to read.
pub fn lock(h: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}
