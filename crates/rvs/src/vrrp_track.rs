//! VRRP tracking at run time: `track_interface` and `track_script` (keepalived's
//! `vrrp_track.c`, `vrrp_scheduler.c`). The VRRP thread owns a [`Tracker`]: it reads each
//! tracked interface's flags (`IFF_UP` and `IFF_RUNNING`, by `SIOCGIFFLAGS`) every
//! [`IF_POLL`], and takes the results of the tracking scripts, which run on threads of their
//! own every `interval` ([`crate::scripts`]: as keepalived runs them, without a shell, as
//! their `user`; killed with their process group after `timeout`; exit status 0 is success).
//! Each object's up/down changes are reported to the VRRP engine with `set_track` at the
//! object's index in its instance's track list (interfaces first, then scripts); a script
//! tracked by several instances runs once and feeds them all.
//!
//! Script results go through keepalived's rise/fall counter ([`RiseFall`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rvs_config::failover::{TrackScriptSetup, VrrpSetup};
use rvs_core::time::Instant;
use rvs_core::vrrp::group::{RouterId, Vrrp};

/// How often tracked interfaces are looked at.
pub const IF_POLL: Duration = Duration::from_millis(100);

/// keepalived's rise/fall counter of a tracking script (`vrrp_script` `rise`, `fall`):
/// `result` runs from 0 to `rise + fall - 1`; the script is good from `rise` up. From good,
/// `fall` failures in a row make it bad; from bad, `rise` successes make it good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    result: u32,
    rise: u32,
    fall: u32,
}

impl RiseFall {
    /// A counter starting good, or bad with `init_fail`.
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> RiseFall {
        let (rise, fall) = (rise.max(1), fall.max(1));
        RiseFall {
            result: if init_fail { 0 } else { rise + fall - 1 },
            rise,
            fall,
        }
    }

    /// Whether the script counts as good.
    pub fn good(&self) -> bool {
        self.result >= self.rise
    }

    /// Count one run's outcome; the state after it.
    pub fn record(&mut self, success: bool) -> bool {
        // vrrp_track.c process_script_update_priority(): success counts up towards
        // rise, then jumps to the top; failure counts down towards rise, then drops to 0.
        let top = self.rise + self.fall - 1;
        if success {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else {
                self.result = top;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            self.result = 0;
        }
        self.good()
    }
}

/// A tracked object's users: (instance, index in its track list).
type Users = Vec<(RouterId, usize)>;

struct TrackedIf {
    name: String,
    up: Option<bool>,
    users: Users,
}

struct TrackedScript {
    setup: TrackScriptSetup,
    counter: RiseFall,
    users: Users,
}

/// The tracked objects of every VRRP instance.
pub struct Tracker {
    interfaces: Vec<TrackedIf>,
    scripts: Vec<TrackedScript>,
    results: mpsc::Receiver<(usize, bool)>,
    tx: mpsc::Sender<(usize, bool)>,
    polled: Option<Instant>,
}

impl Tracker {
    /// The objects `setup`'s instances track (instance `i` is router `RouterId(i)`), but
    /// not the scripts named in `disabled` ([`disabled_scripts`]).
    pub fn new(setup: &VrrpSetup, disabled: &[String]) -> Tracker {
        let mut interfaces: Vec<TrackedIf> = Vec::new();
        let mut scripts: Vec<TrackedScript> = Vec::new();
        for (i, inst) in setup.instances.iter().enumerate() {
            let id = RouterId(i);
            for (k, name) in inst.track_interfaces.iter().enumerate() {
                match interfaces.iter_mut().find(|t| &t.name == name) {
                    Some(t) => t.users.push((id, k)),
                    None => interfaces.push(TrackedIf {
                        name: name.clone(),
                        up: None,
                        users: vec![(id, k)],
                    }),
                }
            }
            let base = inst.track_interfaces.len();
            for (k, name) in inst.track_scripts.iter().enumerate() {
                let Some(sc) = setup.script(name) else {
                    continue;
                };
                if disabled.contains(name) {
                    continue;
                }
                match scripts.iter_mut().find(|t| &t.setup.name == name) {
                    Some(t) => t.users.push((id, base + k)),
                    None => scripts.push(TrackedScript {
                        counter: RiseFall::new(sc.rise, sc.fall, sc.init_fail),
                        setup: sc.clone(),
                        users: vec![(id, base + k)],
                    }),
                }
            }
        }
        let (tx, results) = mpsc::channel();
        Tracker {
            interfaces,
            scripts,
            results,
            tx,
            polled: None,
        }
    }

    /// Run every tracking script on its own thread of `scope` until `stop`.
    pub fn spawn_scripts<'s>(&self, scope: &'s std::thread::Scope<'s, '_>, stop: &'s AtomicBool) {
        for (k, s) in self.scripts.iter().enumerate() {
            let setup = s.setup.clone();
            let tx = self.tx.clone();
            scope.spawn(move || script_loop(k, &setup, &tx, stop));
        }
    }

    /// Look at the interfaces (every [`IF_POLL`]) and take the scripts' results; report
    /// changes to `vrrp`.
    pub fn poll(&mut self, now: Instant, vrrp: &mut Vrrp) {
        if self
            .polled
            .is_none_or(|at| now.saturating_since(at) >= IF_POLL)
        {
            self.polled = Some(now);
            for t in &mut self.interfaces {
                let up = rvs_sys::iface::is_up(&t.name).unwrap_or(false);
                if t.up != Some(up) {
                    if t.up.is_some() || !up {
                        tracing::info!(interface = %t.name, up, "vrrp: track_interface");
                    }
                    t.up = Some(up);
                    for &(id, k) in &t.users {
                        vrrp.set_track(now, id, k, up);
                    }
                }
            }
        }
        while let Ok((k, success)) = self.results.try_recv() {
            let Some(s) = self.scripts.get_mut(k) else {
                continue;
            };
            let was = s.counter.good();
            let good = s.counter.record(success);
            if good != was {
                tracing::info!(script = %s.setup.name, up = good, "vrrp: track_script");
            }
            for &(id, i) in &s.users {
                vrrp.set_track(now, id, i, good);
            }
        }
    }

    /// The longest the VRRP thread should sleep so that tracking stays timely.
    pub fn wait_limit(&self) -> Option<Duration> {
        (!self.interfaces.is_empty() || !self.scripts.is_empty()).then_some(IF_POLL)
    }
}

/// Run script `k` every `interval` until `stop`, sending each outcome.
fn script_loop(
    k: usize,
    s: &TrackScriptSetup,
    tx: &mpsc::Sender<(usize, bool)>,
    stop: &AtomicBool,
) {
    let interval = s.interval.max(Duration::from_millis(10));
    let timeout = s.timeout.unwrap_or(interval);
    while !stop.load(Ordering::Acquire) {
        let started = std::time::Instant::now();
        let ok = crate::scripts::run_blocking(&job(s), timeout, stop);
        if tx.send((k, ok)).is_err() {
            return;
        }
        while started.elapsed() < interval {
            if stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep((interval - started.elapsed().min(interval)).min(IF_POLL));
        }
    }
}

/// The tracked scripts that cannot run (a user that does not exist, not found, not
/// executable, unsafe with `enable_script_security`): keepalived vrrp_daemon.c
/// `check_vrrp_script_security()` disables them ("Disabling track script NAME ...") and
/// removes them from every instance's track list, so they neither fail nor count.
pub fn disabled_scripts(setup: &VrrpSetup) -> Vec<String> {
    let mut out = Vec::new();
    for s in &setup.scripts {
        let tracked = setup
            .instances
            .iter()
            .any(|i| i.track_scripts.contains(&s.name));
        if tracked && job(s).prepare().is_none() {
            tracing::warn!(script = %s.name, "Disabling track script {}: it cannot run (see above)", s.name);
            out.push(s.name.clone());
        }
    }
    out
}

/// A `vrrp_script` as a script to run.
fn job(s: &TrackScriptSetup) -> crate::scripts::Job {
    crate::scripts::Job {
        what: "vrrp_script",
        command: s.script.clone(),
        user: s.user.clone(),
        args: Vec::new(),
        style: rvs_check::script::Style::Keepalived,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_count_as_keepalived() {
        // rise 2, fall 3, starting good.
        let mut c = RiseFall::new(2, 3, false);
        assert!(c.good());
        assert!(
            c.record(false) && c.record(false),
            "two failures are not enough"
        );
        assert!(!c.record(false), "the third one is");
        assert!(!c.record(true), "one success is not enough");
        assert!(c.record(true), "the second one is");
        // A failure after recovering counts from the top again.
        assert!(c.record(false) && c.record(false));
        assert!(c.record(true), "a success in between resets the fall count");
        assert!(c.record(false) && c.record(false));
        assert!(!c.record(false));
    }

    #[test]
    fn init_fail_starts_bad_and_rise_one_recovers_at_once() {
        let mut c = RiseFall::new(1, 1, true);
        assert!(!c.good());
        assert!(c.record(true));
        assert!(!c.record(false));
    }

    #[test]
    fn scripts_that_cannot_run_are_disabled_as_keepalived_disables_them() {
        let text = "vrrp_script ok {\n  script \"/bin/true\"\n}\n\
                    vrrp_script gone {\n  script \"/nonexistent/rvs-check\"\n}\n\
                    vrrp_script nouser {\n  script \"/bin/true\"\n  user no-such-user-rvs\n}\n\
                    vrrp_script unused {\n  script \"/nonexistent/x\"\n}\n\
                    vrrp_instance V {\n  interface lo\n  virtual_router_id 9\n  \
                    virtual_ipaddress {\n    10.9.9.9\n  }\n  track_script {\n    ok\n    \
                    gone\n    nouser\n  }\n}\n";
        let kc = rvs_config::parse_keepalived(text, "k.conf").unwrap();
        let f = rvs_config::failover_from_keepalived(&kc).unwrap();
        let rvs_config::FailoverMode::Vrrp(v) = &f.mode else {
            panic!("{:?}", f.mode)
        };
        // Only tracked scripts are looked at; the two that cannot run are disabled.
        assert_eq!(disabled_scripts(v), ["gone", "nouser"]);
        let t = Tracker::new(v, &disabled_scripts(v));
        let names: Vec<&str> = t.scripts.iter().map(|s| s.setup.name.as_str()).collect();
        assert_eq!(names, ["ok"]);
    }
}
