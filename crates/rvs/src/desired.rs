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

use rvs_core::director::{ApplyReport, Director, Prepared};
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

    /// Install a change prepared off this thread ([`Planner::prepare`]): the engine only
    /// swaps it in. What it replaced is handed back so that the caller can drop it
    /// elsewhere (freeing a large configuration takes a while too).
    pub fn install_prepared(
        &mut self,
        d: &mut Director,
        p: PreparedBase,
    ) -> (ApplyReport, Replaced) {
        let (report, old_effective) = d.install(p.effective);
        let old = std::mem::replace(&mut self.base, p.base);
        let old_spec = self
            .health
            .as_mut()
            .map(|m| std::mem::replace(&mut m.spec, p.spec));
        (report, Replaced(old, old_effective, old_spec))
    }

    /// Install the effective configuration again (after the health monitor changed its mind).
    pub fn refresh(&self, d: &mut Director) -> Result<ApplyReport, Vec<ConfigError>> {
        d.apply(&self.effective())
    }
}

/// A new base configuration prepared off the engine's thread ([`Planner::prepare`]): the
/// health monitor has learnt it, and its effective form passed validation, so the engine's
/// thread only installs it ([`Desired::install_prepared`]).
#[derive(Debug)]
pub struct PreparedBase {
    base: Config,
    spec: HealthConfig,
    effective: Prepared,
}

impl PreparedBase {
    /// The effective configuration the engine will run.
    pub fn effective(&self) -> &Config {
        self.effective.config()
    }

    /// The engine's prepared form (other forwarding workers install copies of it).
    pub fn prepared(&self) -> &Prepared {
        &self.effective
    }

    /// The health configuration it comes with.
    pub fn spec(&self) -> &HealthConfig {
        &self.spec
    }
}

/// The effective configuration an engine runs and the engine's
/// [`generation`](Director::generation) since: what the control threads work a change out
/// against ([`rvs_core::director::Prepared::against`]), so the engine's thread touches
/// only the services that differ.
#[derive(Debug, Clone)]
pub struct Running {
    /// The engine's generation.
    pub generation: u64,
    /// Its effective configuration.
    pub effective: Config,
}

impl Running {
    /// What `d` runs now.
    pub fn of(d: &Director) -> Running {
        Running {
            generation: d.generation(),
            effective: d.config().clone(),
        }
    }
}

/// The base and effective configurations (and health configuration) a change replaced
/// ([`Desired::install_prepared`]).
#[derive(Debug)]
pub struct Replaced(
    #[expect(dead_code, reason = "held only to be freed on another thread")] Config,
    #[expect(dead_code, reason = "held only to be freed on another thread")] Config,
    #[expect(dead_code, reason = "held only to be freed on another thread")] Option<HealthConfig>,
);

/// What the control threads know of [`Desired`]: the base the engine runs (updated once
/// the engine installed a change, [`Planner::committed`]), the health configuration, and
/// the health monitor. Changes are prepared here, one at a time (the caller holds it
/// locked from [`Planner::prepare`] to [`Planner::committed`]), so edits and reloads
/// arriving together are applied in turn, each to the result of the one before.
pub struct Planner {
    base: Config,
    health: Arc<Mutex<Health>>,
    spec: HealthConfig,
}

impl Planner {
    /// The control side of a daemon whose engine starts with `base` shaped by `health`.
    pub fn new(base: Config, health: Arc<Mutex<Health>>, spec: HealthConfig) -> Planner {
        Planner { base, health, spec }
    }

    /// The operator's configuration, as the engine runs it.
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// The effective configuration the engine runs (or will run once it installs the
    /// health monitor's latest decision, in its next round).
    pub fn effective(&self) -> Config {
        lock(&self.health).overlay(&self.base)
    }

    /// Prepare `next` (and for a reload `spec`) as [`Desired::install_with`] would install
    /// it, without the engine: the health monitor learns it first, then its effective form
    /// is validated (and worked out against what the engine runs, when `running` says);
    /// refused, the monitor goes back to the running base.
    pub fn prepare(
        &self,
        next: &Config,
        spec: Option<HealthConfig>,
        now: Instant,
        running: Option<&Running>,
    ) -> Result<PreparedBase, Vec<ConfigError>> {
        let spec = spec.unwrap_or_else(|| self.spec.clone());
        let effective = {
            let mut h = lock(&self.health);
            h.reconfigure(spec.clone(), next, now);
            h.overlay(next)
        };
        let prepared = match running {
            Some(r) => Prepared::against(effective, &r.effective, r.generation),
            None => Prepared::new(effective),
        };
        match prepared {
            Ok(effective) => Ok(PreparedBase {
                base: next.clone(),
                spec,
                effective,
            }),
            Err(errs) => {
                lock(&self.health).reconfigure(self.spec.clone(), &self.base, now);
                Err(errs)
            }
        }
    }

    /// The health monitor's latest decision about the base, prepared against what the
    /// engine runs (as [`Desired::refresh`] installs it, without the engine): None when the
    /// engine runs it already (after a reload or edit the monitor learnt first).
    pub fn refresh(&self, running: &Running) -> Result<Option<PreparedBase>, Vec<ConfigError>> {
        let effective = self.effective();
        if effective == running.effective {
            return Ok(None);
        }
        Ok(Some(PreparedBase {
            base: self.base.clone(),
            spec: self.spec.clone(),
            effective: Prepared::against(effective, &running.effective, running.generation)?,
        }))
    }

    /// The engine installed `next` (prepared with `spec`): it is the base now.
    pub fn committed(&mut self, next: Config, spec: Option<HealthConfig>) {
        self.base = next;
        if let Some(s) = spec {
            self.spec = s;
        }
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

    /// A change prepared off the engine's thread installs what `install` installs, and a
    /// refused one leaves the monitor on the running base.
    #[test]
    fn a_prepared_change_installs_as_install_does() {
        let (mut d, mut desired, health) = setup();
        let spec = desired.health_spec().unwrap().clone();
        let mut planner = Planner::new(desired.base().clone(), Arc::clone(&health), spec);
        fail(&health, "10.0.0.3");
        desired.refresh(&mut d).unwrap();
        // -e -w 5 on .2 and -e -w 7 on the failed .3: .3 stays out.
        let mut next = edit(&desired, "10.0.0.2", Some(5));
        next.services[0].real_servers[1].weight = 7;
        let p = planner.prepare(&next, None, Instant::ZERO, None).unwrap();
        assert_eq!(weight(&d, "10.0.0.2"), Some(3), "nothing installed yet");
        let (report, _replaced) = desired.install_prepared(&mut d, p);
        planner.committed(next.clone(), None);
        assert_eq!(report.dests_edited, 1);
        assert_eq!(weight(&d, "10.0.0.2"), Some(5));
        assert_eq!(weight(&d, "10.0.0.3"), None);
        assert_eq!(desired.base(), &next);
        assert_eq!(planner.effective(), desired.effective());
        // A configuration the engine refuses (a service twice, with another weight):
        // refused here, the monitor back on the running base.
        let mut bad = next.clone();
        let mut twice = bad.services[0].clone();
        twice.real_servers[0].weight = 9;
        bad.services.push(twice);
        let errs = planner
            .prepare(&bad, None, Instant::ZERO, None)
            .unwrap_err();
        assert!(!errs.is_empty());
        let s = lock(&health)
            .servers()
            .find(|s| s.addr.to_string() == "10.0.0.2")
            .unwrap();
        assert_eq!(s.weight, 5, "the monitor works from the running weight");
        assert_eq!(weight(&d, "10.0.0.2"), Some(5));
    }

    /// A health decision is prepared off the engine's thread against what the engine runs:
    /// installed, the engine runs what `refresh` would have installed; with nothing new to
    /// install (the engine already runs the monitor's view) there is nothing to send.
    #[test]
    fn a_health_decision_is_prepared_against_the_running_engine() {
        let (mut d, mut desired, health) = setup();
        let spec = desired.health_spec().unwrap().clone();
        let planner = Planner::new(desired.base().clone(), Arc::clone(&health), spec);
        assert!(planner.refresh(&Running::of(&d)).unwrap().is_none());
        fail(&health, "10.0.0.3");
        let p = planner
            .refresh(&Running::of(&d))
            .unwrap()
            .expect("a change");
        assert_eq!(p.effective.services_changed(), Some(1));
        let g = d.generation();
        let (report, _) = desired.install_prepared(&mut d, p);
        assert_ne!(d.generation(), g);
        assert_eq!(report.dests_removed, 1);
        assert_eq!(weight(&d, "10.0.0.3"), None);
        assert_eq!(d.config(), &desired.effective());
        assert!(planner.refresh(&Running::of(&d)).unwrap().is_none());
    }
}
