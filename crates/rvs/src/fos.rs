//! Failover services (lvs.cf `service = fos`): the daemon's half of [`rvs_core::fos`].
//!
//! One thread owns the engine ([`FosNode`]) and pulse's UDP heartbeat socket (when
//! `heartbeat = 1`). What the engine decides is done here:
//! - the floating addresses: while active they are on the kernel's interfaces (over
//!   netlink, as `ip addr add IP/LEN dev DEV label LABEL`; pulse's `ifconfig eth0:1 IP
//!   up`), since the services started by `start_cmd` listen on them, and the data plane
//!   owns and announces them (gratuitous ARP / unsolicited NA, [`RoleChange`]); inactive,
//!   both are dropped;
//! - `stop_cmd` / `start_cmd`: run one after the other on a thread of their own (so
//!   heartbeats go on), as fos runs them (fos.c `runCommand()`): the argv cut at spaces,
//!   `execv` without a shell, waited for — here for at most [`COMMAND_LIMIT`], then killed
//!   with its process group ([`crate::scripts`]); each logged with its exit status;
//! - the monitor's checks: nanny's check ([`rvs_check::run`]) of the service at its floating
//!   address, a task on the one background thread ([`crate::background`]), its result
//!   back to the engine.

use std::io;
use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rvs_config::failover::{FosServiceSetup, FosSetup};
use rvs_config::lvs::Vip;
use rvs_core::fos::{FosEvent, FosNode};
use rvs_core::health::Outcome;
use rvs_core::pulse::{PulseEvent, Role};

use crate::failover::{
    LinkWatch, Notifier, RoleChange, TICK, now, open_pulse, pulse_config, pulse_status,
    recv_heartbeats, run_hook, send_heartbeat,
};

/// The longest a `start_cmd` or `stop_cmd` may run before it is killed (fos waits without
/// limit; a command that never returns would stall every later one).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Work for the command thread, done in order.
enum Job {
    /// Run a service's command.
    Run {
        argv: Vec<String>,
        /// What is being done, for the log ("Starting local service 10.1.0.50:80").
        what: String,
    },
    /// Bring the floating addresses up on the kernel's interfaces.
    AddrUp(Vec<Vip>),
    /// Take them down.
    AddrDown(Vec<Vip>),
}

/// The failover services' thread.
pub(crate) struct FosRunner {
    node: FosNode,
    sock: Option<UdpSocket>,
    clock: std::time::Instant,
    notifier: Notifier,
    services: Vec<FosServiceSetup>,
    addresses: Vec<Vip>,
    active_cmd: Option<String>,
    inactive_cmd: Option<String>,
    links: LinkWatch,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<std::thread::JoinHandle<()>>,
    checks_tx: mpsc::Sender<(usize, Outcome)>,
    checks_rx: mpsc::Receiver<(usize, Outcome)>,
    primary: bool,
}

impl FosRunner {
    pub(crate) fn new(
        setup: &FosSetup,
        clock: std::time::Instant,
        notifier: Notifier,
    ) -> io::Result<FosRunner> {
        let t = now(clock);
        let (pulse, sock, links, primary) = match &setup.pulse {
            None => (None, None, Vec::new(), true),
            Some(p) => {
                let cfg = pulse_config(|mine| setup.pulse_config_for(mine))?;
                if cfg.force_active && !cfg.backup_active {
                    tracing::warn!("fos: FOS backup node not defined -- skipping checks");
                }
                let (engine, sock, links) = open_pulse(p, cfg, t)?;
                (Some(engine), Some(sock), links, cfg.role == Role::Primary)
            }
        };
        let (active_cmd, inactive_cmd) = setup.pulse.as_ref().map_or((None, None), |p| {
            (p.active_cmd.clone(), p.inactive_cmd.clone())
        });
        let intervals: Vec<Duration> = setup
            .services
            .iter()
            .map(|s| s.check.timers.interval)
            .collect();
        let (jobs, rx) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("rvs-fos-cmd".into())
            .spawn(move || {
                for job in rx {
                    do_job(job);
                }
            })?;
        let (checks_tx, checks_rx) = mpsc::channel();
        let node = FosNode::new(pulse, &intervals, t);
        Ok(FosRunner {
            node,
            sock,
            clock,
            notifier,
            services: setup.services.clone(),
            addresses: setup.addresses(),
            active_cmd,
            inactive_cmd,
            links: LinkWatch::new(links),
            jobs: Some(jobs),
            worker: Some(worker),
            checks_tx,
            checks_rx,
            primary,
        })
    }

    pub(crate) fn run(mut self, stop: &AtomicBool) {
        let mut buf = [0u8; 64];
        self.flush();
        loop {
            let t = now(self.clock);
            if stop.load(Ordering::Acquire) {
                self.node.shutdown(t);
                self.flush();
                // The stop_cmds and the address removal finish before the daemon ends.
                drop(self.jobs.take());
                if let Some(w) = self.worker.take() {
                    let _ = w.join();
                }
                return;
            }
            self.links.check(|up| self.node.set_links_up(t, up));
            while let Ok((n, outcome)) = self.checks_rx.try_recv() {
                let up = matches!(outcome, Outcome::Up | Outcome::UpWithWeight(_));
                if let (false, Outcome::Down(why), Some(s)) = (up, &outcome, self.services.get(n)) {
                    tracing::info!(
                        service = %s.name,
                        "fos: remote service {}:{} check failed: {why}",
                        s.address.addr,
                        s.port
                    );
                }
                self.node.check_done(now(self.clock), n, up);
            }
            self.node.handle_timeout(now(self.clock));
            self.flush();
            let wait = self
                .node
                .poll_timeout()
                .map(|at| at.saturating_since(now(self.clock)))
                .unwrap_or(TICK)
                .min(TICK);
            match &self.sock {
                Some(sock) => recv_heartbeats(sock, &mut buf, wait, |from, bytes| {
                    self.node.handle_heartbeat(now(self.clock), from, bytes)
                }),
                None => std::thread::sleep(wait),
            }
            self.flush();
        }
    }

    fn job(&self, j: Job) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(j);
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if let Some(sock) = &self.sock {
                send_heartbeat(sock, &t);
            }
        }
        let owned: Vec<IpAddr> = self.addresses.iter().map(|v| v.addr).collect();
        while let Some(ev) = self.node.poll_event() {
            match ev {
                FosEvent::Pulse(PulseEvent::Activate(why)) => {
                    tracing::info!(reason = ?why, "pulse: active: activating failover services");
                    self.job(Job::AddrUp(self.addresses.clone()));
                    self.notifier.send(RoleChange::Own(owned.clone()));
                    if let Some(c) = &self.active_cmd {
                        run_hook("active_cmd", c);
                    }
                }
                FosEvent::Pulse(PulseEvent::Deactivate(why)) => {
                    tracing::info!(reason = ?why, "pulse: inactive: monitoring the partner's failover services");
                    self.notifier.send(RoleChange::Disown(owned.clone()));
                    self.job(Job::AddrDown(self.addresses.clone()));
                    if let Some(c) = &self.inactive_cmd {
                        run_hook("inactive_cmd", c);
                    }
                }
                FosEvent::Pulse(PulseEvent::Announce) => self.notifier.send(RoleChange::Announce {
                    addrs: owned.clone(),
                    repeat: 1,
                }),
                FosEvent::Stop(n) => {
                    let s = &self.services[n];
                    if let Some(argv) = &s.stop_cmd {
                        self.job(Job::Run {
                            argv: argv.clone(),
                            what: format!(
                                "Shutting down local service {}:{}",
                                s.address.addr, s.port
                            ),
                        });
                    }
                }
                FosEvent::Start(n) => {
                    let s = &self.services[n];
                    if let Some(argv) = &s.start_cmd {
                        self.job(Job::Run {
                            argv: argv.clone(),
                            what: format!("Starting local service {}:{}", s.address.addr, s.port),
                        });
                    }
                }
                FosEvent::Check(n) => self.check(n),
                FosEvent::Available(n) => {
                    let s = &self.services[n];
                    tracing::info!(
                        service = %s.name,
                        "fos: Remote service {}:{} is available",
                        s.address.addr,
                        s.port
                    );
                }
                FosEvent::Failed {
                    service,
                    after_available,
                } => {
                    let s = &self.services[service];
                    if after_available {
                        tracing::warn!(
                            service = %s.name,
                            "fos: Exiting due to connection failure of {}:{}: performing service failover",
                            s.address.addr,
                            s.port
                        );
                    } else {
                        tracing::warn!(
                            service = %s.name,
                            "fos: Timeout waiting for remote service {}:{} -- triggering failover",
                            s.address.addr,
                            s.port
                        );
                    }
                }
            }
        }
        self.notifier.status.set(pulse_status(
            self.primary,
            self.node.is_active(),
            self.node.pulse(),
        ));
    }

    /// nanny's check of service `n` at its floating address, a task on the background
    /// thread ([`crate::background`]: one thread and runtime for every check).
    fn check(&self, n: usize) {
        let s = &self.services[n];
        let check = s.check.clone();
        let target = rvs_check::Target {
            addr: s.address.addr,
            port: s.port,
            bind: None,
            fwmark: None,
        };
        let tx = self.checks_tx.clone();
        let started = crate::background::spawn(async move {
            let outcome = rvs_check::run(&check, &target).await;
            let _ = tx.send((n, outcome));
        });
        if !started {
            let _ = self.checks_tx.send((
                n,
                Outcome::Down("no background thread for the check".into()),
            ));
        }
    }
}

fn do_job(job: Job) {
    match job {
        Job::Run { argv, what } => {
            tracing::info!(command = %argv.join(" "), "fos: {what}");
            match run_command(&argv, COMMAND_LIMIT) {
                Ok(()) => {}
                Err(e) => tracing::warn!(command = %argv.join(" "), "fos: {what}: {e}"),
            }
        }
        Job::AddrUp(vips) => {
            for v in vips {
                // `ip addr replace IP/LEN dev DEV [label LABEL]`, over netlink.
                let label = (v.label != v.device && v.label.starts_with(&format!("{}:", v.device)))
                    .then_some(v.label.as_str());
                if let Err(e) =
                    rvs_sys::netlink::replace_address(&v.device, v.addr, v.prefix, label)
                {
                    tracing::warn!("fos: cannot bring up {} on {}: {e}", v.addr, v.label);
                }
            }
        }
        Job::AddrDown(vips) => {
            for v in vips {
                // Already gone (never brought up here): nothing to say.
                let _ = rvs_sys::netlink::delete_address(&v.device, v.addr, v.prefix);
            }
        }
    }
}

/// Run `argv` as fos.c `runCommand()` runs a service command: `execv(argv[0], argv)`, no
/// shell, no `PATH` search beyond what `argv[0]` says, as the daemon's user, waited for;
/// killed with its process group after `limit` ([`crate::scripts`]).
fn run_command(argv: &[String], limit: Duration) -> Result<(), String> {
    if argv.is_empty() {
        return Err("empty command".to_string());
    }
    let ids = rvs_sys::caps::ids();
    let p = rvs_check::script::Prepared {
        argv: argv.to_vec(),
        run_as: None,
        ids: rvs_check::script::RunAs {
            uid: ids.0,
            gid: ids.1,
        },
        insecure: false,
        notes: Vec::new(),
    };
    let never = AtomicBool::new(false);
    match crate::scripts::run_prepared_blocking("fos", &p, limit, &never)? {
        s if s.success() => Ok(()),
        s => Err(format!("returned error ({s})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_without_a_shell_and_are_bounded() {
        assert_eq!(
            run_command(&["/bin/true".into()], Duration::from_secs(5)),
            Ok(())
        );
        assert!(
            run_command(&["/bin/false".into()], Duration::from_secs(5))
                .unwrap_err()
                .starts_with("returned error")
        );
        // No shell: `;` is an argument, not a separator (echo's output goes nowhere).
        assert_eq!(
            run_command(
                &["/bin/echo".into(), "a;".into(), "exit".into(), "1".into()],
                Duration::from_secs(5)
            ),
            Ok(())
        );
        let t = std::time::Instant::now();
        let e = run_command(
            &["/bin/sleep".into(), "10".into()],
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(run_command(&["/nonexistent/cmd".into()], Duration::from_secs(1)).is_err());
        assert!(run_command(&[], Duration::from_secs(1)).is_err());
    }
}
