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

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::{DirectorSettings, NetConfig};
    use rvs_core::health::{Outcome, ServerId};

    const CONF: &str = "\
virtual_server 192.168.0.100 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.0.0.3 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
";

    fn setup() -> (Director, Desired, Arc<Mutex<Health>>) {
        let k = rvs_config::parse_keepalived(CONF, "test.conf").expect("valid");
        let health = Health::new(k.health.clone(), &k.config, 1, Instant::ZERO);
        let health = Arc::new(Mutex::new(health));
        let desired = Desired::with_health(k.config.clone(), Arc::clone(&health), k.health);
        let d = Director::new(
            NetConfig::default(),
            &desired.effective(),
            DirectorSettings::default(),
        )
        .expect("a director");
        (d, desired, health)
    }

    /// The engine's weight of real server `addr` (None: not in the table).
    fn weight(d: &Director, addr: &str) -> Option<u32> {
        let addr: std::net::IpAddr = addr.parse().unwrap();
        d.config().services[0]
            .real_servers
            .iter()
            .find(|r| r.addr == addr)
            .map(|r| r.weight)
    }

    fn edit(desired: &Desired, addr: &str, weight: Option<u32>) -> Config {
        let addr: std::net::IpAddr = addr.parse().unwrap();
        let mut next = desired.base().clone();
        let rss = &mut next.services[0].real_servers;
        match weight {
            Some(w) => match rss.iter_mut().find(|r| r.addr == addr) {
                Some(r) => r.weight = w,
                None => {
                    let mut r = rss[0];
                    r.addr = addr;
                    r.weight = w;
                    rss.push(r);
                }
            },
            None => rss.retain(|r| r.addr != addr),
        }
        next
    }

    /// Fail the checks of the server at `addr` (and pass the others') until it is out,
    /// stepping time by a second.
    fn fail(health: &Arc<Mutex<Health>>, addr: &str) {
        let addr: std::net::IpAddr = addr.parse().unwrap();
        let mut h = lock(health);
        let id: ServerId = h.servers().find(|s| s.addr == addr).unwrap().id;
        for t in 0..600u64 {
            let now = Instant::ZERO + core::time::Duration::from_secs(t);
            h.handle_timeout(now);
            while let Some(j) = h.poll_check(now) {
                let outcome = if j.server == id {
                    Outcome::Down("refused".into())
                } else {
                    Outcome::Up
                };
                h.report(now, j.id, outcome);
            }
            if !h.server(id).unwrap().up {
                return;
            }
        }
        panic!("the server never went down");
    }

    #[test]
    fn operator_weights_take_effect_with_checks_running() {
        let (mut d, mut desired, _health) = setup();
        assert_eq!(weight(&d, "10.0.0.2"), Some(3));
        // rvsadm -e -w 5: the engine runs weight 5 at once, and the monitor works from it.
        let next = edit(&desired, "10.0.0.2", Some(5));
        desired.install(&mut d, next, Instant::ZERO).unwrap();
        assert_eq!(weight(&d, "10.0.0.2"), Some(5));
        assert_eq!(desired.effective().services[0].real_servers[0].weight, 5);
        // -d then -a -w 4: back with the operator's weight, not the file's 3.
        let next = edit(&desired, "10.0.0.2", None);
        desired.install(&mut d, next, Instant::ZERO).unwrap();
        assert_eq!(weight(&d, "10.0.0.2"), None);
        let next = edit(&desired, "10.0.0.2", Some(4));
        desired.install(&mut d, next, Instant::ZERO).unwrap();
        assert_eq!(weight(&d, "10.0.0.2"), Some(4));
        assert_eq!(desired.base().services[0].real_servers[1].weight, 4);
    }

    #[test]
    fn a_failed_server_the_operator_edits_stays_out() {
        let (mut d, mut desired, health) = setup();
        fail(&health, "10.0.0.3");
        desired.refresh(&mut d).unwrap();
        assert_eq!(weight(&d, "10.0.0.3"), None);
        let next = edit(&desired, "10.0.0.3", Some(7));
        desired.install(&mut d, next, Instant::ZERO).unwrap();
        assert_eq!(
            weight(&d, "10.0.0.3"),
            None,
            "still failed: out until its checks pass"
        );
        assert_eq!(weight(&d, "10.0.0.2"), Some(3));
    }
}
