//! What the operator asked for, and what the engine runs.
//!
//! The operator's configuration (the file, then `rvsadm` changes) is the *base*. The health
//! monitor, when there is one, turns it into the *effective* configuration the engine runs:
//! failed real servers removed or quiesced, slow-start and dynamic weights, the sorry server
//! in or out ([`rvs_core::health::Health::overlay`]). `ipvsadm -S` and the listings show the
//! effective configuration, as ipvsadm shows the kernel's table under keepalived; `rvsadm`
//! changes edit the base, so a health decision never overwrites an operator's change and an
//! operator's change never resurrects a failed server.
//!
//! Every new base reaches the health monitor before the engine ([`Health::reconfigure`] with
//! the running health configuration): a real server's weight in the base is the weight the
//! monitor works from, so `rvsadm -e -w 5` takes effect at once (as `ipvsadm -e` does under
//! nanny or keepalived, which do not touch a weight they did not set), and slow start,
//! `load_monitor` and `misc_dynamic` then work from it. A server the operator deletes leaves
//! the monitor; one the operator adds back starts afresh (as the health configuration says a
//! new server starts), and a failed server the operator edits stays out until its checks pass.

use std::sync::{Arc, Mutex};

use rvs_core::director::{ApplyReport, Director};
use rvs_core::health::{Health, HealthConfig};
use rvs_core::model::{Config, ConfigError};
use rvs_core::time::Instant;

/// The base configuration and the health monitor that shapes it.
pub struct Desired {
    base: Config,
    health: Option<Monitored>,
}

/// The health monitor and the health configuration it runs.
struct Monitored {
    health: Arc<Mutex<Health>>,
    spec: HealthConfig,
}

impl Desired {
    /// A base configuration with no health monitoring.
    pub fn new(base: Config) -> Desired {
        Desired { base, health: None }
    }

    /// A base configuration shaped by `health`, which runs `spec`.
    pub fn with_health(base: Config, health: Arc<Mutex<Health>>, spec: HealthConfig) -> Desired {
        Desired {
            base,
            health: Some(Monitored { health, spec }),
        }
    }

    /// The operator's configuration.
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// The health monitor, if any.
    pub fn health(&self) -> Option<&Arc<Mutex<Health>>> {
        self.health.as_ref().map(|m| &m.health)
    }

    /// The health configuration running, if any.
    pub fn health_spec(&self) -> Option<&HealthConfig> {
        self.health.as_ref().map(|m| &m.spec)
    }

    /// The configuration the engine should run.
    pub fn effective(&self) -> Config {
        match &self.health {
            Some(m) => lock(&m.health).overlay(&self.base),
            None => self.base.clone(),
        }
    }

    /// Make `next` the base and install its effective form in the engine, atomically:
    /// refused (base, health monitor and engine unchanged) when it does not validate. The
    /// health monitor learns `next` first (with the health configuration it runs), so the
    /// operator's weights are the ones it works from.
    pub fn install(
        &mut self,
        d: &mut Director,
        next: Config,
        now: Instant,
    ) -> Result<ApplyReport, Vec<ConfigError>> {
        self.install_with(d, next, None, now)
    }

    /// [`install`](Desired::install), with a new health configuration as well (a reload).
    pub fn install_with(
        &mut self,
        d: &mut Director,
        next: Config,
        spec: Option<HealthConfig>,
        now: Instant,
    ) -> Result<ApplyReport, Vec<ConfigError>> {
        let Some(m) = &mut self.health else {
            let report = d.apply(&next)?;
            self.base = next;
            return Ok(report);
        };
        let spec_next = spec.unwrap_or_else(|| m.spec.clone());
        let effective = {
            let mut h = lock(&m.health);
            h.reconfigure(spec_next.clone(), &next, now);
            h.overlay(&next)
        };
        match d.apply(&effective) {
            Ok(report) => {
                self.base = next;
                m.spec = spec_next;
                Ok(report)
            }
            Err(errs) => {
                // Back to what runs: the monitor's servers follow the base again.
                lock(&m.health).reconfigure(m.spec.clone(), &self.base, now);
                Err(errs)
            }
        }
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
