//! Active-active directors: which VIPs this director announces (docs/operating.md
//! "Active-active directors behind ECMP").
//!
//! Every director serves the VIPs at once; the routers spread flows over them by ECMP and a
//! BGP daemon (BIRD) tells them which directors can take a VIP. rvs decides *whether* a VIP
//! is announced from here and says so as a host route `VIP/32 dev rvsvip0 proto static` in
//! a routing table of its own ([`ClusterSetup::route_table`], default 29302), written over
//! netlink; BIRD's `kernel` protocol on that table (`learn`) imports the routes and its BGP
//! protocol exports them. No rule points at the table: the director's own kernel never
//! forwards by it.
//!
//! A VIP is announced while the daemon runs, the director is not drained (`rvs
//! drain-director`), it is not stopping, and every service on the VIP has its quorum (a
//! service without health checks always has it). A VIP goes to the routers whole, so a
//! director that cannot serve one of the VIP's ports withdraws the VIP rather than take a
//! share of that port's flows it would drop.
//!
//! The routes point at a TUN device the daemon holds open ([`ClusterSetup::route_device`]):
//! the kernel removes the device, and every route through it, when the daemon exits however
//! it exits — after `kill -9` too — and BIRD, which follows the table's changes over
//! netlink, withdraws them at once. Withdrawals that the daemon chooses (drain, SIGTERM)
//! wait [`ClusterSetup::convergence_delay`] before they are reported done or forwarding
//! stops, so that flows the routers still send here meanwhile are served.
//!
//! The VIPs are not owned in the ARP/ND sense ([`strip_owned`]): the routers reach each
//! director by its own address, and no director answers for a VIP on a shared segment.
//! Connection sync runs as master and backup at once ([`crate::syncd`], as IPVS runs both
//! sync threads when both are started, `ip_vs_sync.c` `start_sync_thread()` for each
//! state), so connections made on one director are known to the others.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_config::{ClusterSetup, FailoverConfig, FailoverMode};
use rvs_core::model::ServiceKey;

use crate::health::Monitor;
use crate::load::Plan;

/// How often the announcer looks at quorum and drain state.
pub const TICK: Duration = Duration::from_millis(200);

/// The longest a `drain-director` request waits for the routes to be withdrawn (besides the
/// convergence delay).
const WITHDRAW_WAIT: Duration = Duration::from_secs(5);

/// `rvs daemon --active-active`: active-active with the default settings unless the file
/// says `[cluster]` already. A failover protocol in the file is refused: there is no master
/// to elect.
pub fn force_active_active(f: &mut FailoverConfig) -> Result<(), String> {
    let other = match &f.mode {
        FailoverMode::None => None,
        FailoverMode::Vrrp(_) => Some("VRRP instances"),
        FailoverMode::Pulse(_) => Some("pulse"),
        FailoverMode::Fos(_) => Some("failover services"),
    };
    if let Some(o) = other {
        return Err(format!(
            "--active-active: the configuration runs {o}; active-active directors all serve \
             at once and the routers choose among them, so there is no master to elect"
        ));
    }
    if f.cluster.is_none() {
        f.cluster = Some(ClusterSetup::default());
    }
    Ok(())
}

/// The flag SIGTERM and SIGINT set: `stop` itself, or for active-active a flag of its own
/// that the announcer turns into `stop` after withdrawing the VIPs and waiting for the
/// routers ([`AnnouncerThread`]).
pub fn term_flag(cluster: Option<&ClusterSetup>, stop: &Arc<AtomicBool>) -> Arc<AtomicBool> {
    if cluster.is_some() {
        Arc::new(AtomicBool::new(false))
    } else {
        Arc::clone(stop)
    }
}

/// Send `line` (`drain-director`, `undrain-director`) to the daemon's control socket and
/// read the answer, waiting up to `limit` (a drain waits for the routers).
pub fn request(control: &std::path::Path, line: &str, limit: Duration) -> io::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(control)?;
    s.set_read_timeout(Some(limit))?;
    writeln!(s, "{line}")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    if let Some(e) = text.strip_prefix("error: ") {
        return Err(io::Error::other(e.trim_end().to_string()));
    }
    Ok(text)
}

/// `rvs drain-director` / `rvs undrain-director`: the request, its answer on stdout.
pub fn cli(control: Option<std::path::PathBuf>, line: &str) -> std::process::ExitCode {
    let control = match crate::locate::control_socket(control) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs {line}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // A drain waits for the routes to go and for the routers: bounded well above both.
    match request(&control, line, Duration::from_secs(600)) {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvs {line}: {}: {e}", control.display());
            std::process::ExitCode::FAILURE
        }
    }
}

/// Active-active: the engine owns (answers ARP/ND for, announces) none of the VIPs or
/// floating addresses, only the FullNAT local addresses, which are each director's own.
/// The interfaces stay attached: VIP traffic arrives on them, routed to this director's own
/// address.
pub fn strip_owned(plan: &mut Plan, f: &FailoverConfig) {
    strip_owned_if(plan, f.cluster.is_some());
}

/// [`strip_owned`] for a director that is active-active (`active`), also on reload, where
/// `rvs daemon --active-active` is not in the file.
pub fn strip_owned_if(plan: &mut Plan, active: bool) {
    if !active {
        return;
    }
    let local = &plan.config.local_pool.addrs;
    plan.owned.retain(|(a, _)| local.contains(a));
}

/// The VIPs of `services` with their services, in address order (fwmark services have no
/// VIP of their own and are not announced).
pub fn vips_of(services: &[ServiceKey]) -> BTreeMap<IpAddr, Vec<ServiceKey>> {
    let mut out: BTreeMap<IpAddr, Vec<ServiceKey>> = BTreeMap::new();
    for k in services {
        if let ServiceKey::Addr { addr, .. } = k {
            out.entry(*addr).or_default().push(*k);
        }
    }
    out
}

/// Why a VIP is not announced, or None when it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// `rvs drain-director`.
    Drained,
    /// The daemon is stopping.
    Stopping,
    /// These services lack their quorum.
    NoQuorum(Vec<ServiceKey>),
}

/// The decision for each VIP: None (announce) or why not. `quorum_up` says, for a
/// monitored service, whether it has its quorum; a service it does not know has it.
pub fn decide(
    vips: &BTreeMap<IpAddr, Vec<ServiceKey>>,
    quorum_up: impl Fn(&ServiceKey) -> Option<bool>,
    drained: bool,
    stopping: bool,
) -> BTreeMap<IpAddr, Option<Withheld>> {
    vips.iter()
        .map(|(vip, services)| {
            let why = if stopping {
                Some(Withheld::Stopping)
            } else if drained {
                Some(Withheld::Drained)
            } else {
                let lost: Vec<ServiceKey> = services
                    .iter()
                    .filter(|k| quorum_up(k) == Some(false))
                    .copied()
                    .collect();
                (!lost.is_empty()).then_some(Withheld::NoQuorum(lost))
            };
            (*vip, why)
        })
        .collect()
}

/// Where the routes go: the kernel over netlink, or (tests) a record.
pub trait Routes: Send {
    /// Announce `vip`.
    fn add(&mut self, vip: IpAddr) -> io::Result<()>;
    /// Withdraw `vip`.
    fn remove(&mut self, vip: IpAddr) -> io::Result<()>;
}

/// The kernel table, through the TUN device the daemon holds.
pub struct KernelRoutes {
    tun: rvs_sys::tun::Tun,
    table: u32,
}

impl KernelRoutes {
    /// Create the device (up) and empty the table of what a previous run left.
    pub fn open(setup: &ClusterSetup) -> io::Result<KernelRoutes> {
        let tun = rvs_sys::tun::Tun::create(&setup.route_device).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("active-active route device {}: {e}", setup.route_device),
            )
        })?;
        tun.set_up()?;
        // What a previous run left (its device is gone, but routes of another device may
        // remain). IPv6 may be off in the namespace: its table then holds nothing.
        rvs_sys::netlink::flush_table(rvs_sys::netlink::Family::V4, setup.route_table)?;
        if let Err(e) =
            rvs_sys::netlink::flush_table(rvs_sys::netlink::Family::V6, setup.route_table)
        {
            tracing::debug!("active-active: IPv6 table {}: {e}", setup.route_table);
        }
        Ok(KernelRoutes {
            tun,
            table: setup.route_table,
        })
    }
}

impl Routes for KernelRoutes {
    fn add(&mut self, vip: IpAddr) -> io::Result<()> {
        rvs_sys::netlink::replace_host_route(vip, self.tun.name(), self.table)
    }
    fn remove(&mut self, vip: IpAddr) -> io::Result<()> {
        rvs_sys::netlink::delete_host_route(vip, self.table).map(|_| ())
    }
}

/// What the announcer decided last, for listings and metrics.
#[derive(Debug, Clone, Default)]
struct State {
    /// Per VIP: whether its route is in the table, and why it is withheld.
    vips: BTreeMap<IpAddr, (bool, Option<Withheld>)>,
    /// When a route was last withdrawn.
    withdrawn: Option<Instant>,
}

/// The announcer: its settings, the operator's drain, and the last decision. Shared by the
/// announcer thread and the control threads.
pub struct Announcer {
    setup: ClusterSetup,
    drained: AtomicBool,
    state: Mutex<State>,
}

impl Announcer {
    /// An announcer for `setup`, not drained, nothing announced yet.
    pub fn new(setup: ClusterSetup) -> Announcer {
        Announcer {
            setup,
            drained: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the operator drained the director.
    pub fn drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    /// The VIPs whose routes are in the table.
    pub fn announced(&self) -> Vec<IpAddr> {
        self.state()
            .vips
            .iter()
            .filter(|(_, (on, _))| *on)
            .map(|(a, _)| *a)
            .collect()
    }

    /// One round: decide, then add and remove routes to match. A route that cannot be
    /// written is tried again next round (logged once per change of outcome).
    pub fn reconcile(
        &self,
        routes: &mut dyn Routes,
        vips: &BTreeMap<IpAddr, Vec<ServiceKey>>,
        quorum_up: impl Fn(&ServiceKey) -> Option<bool>,
        stopping: bool,
    ) {
        let decided = decide(vips, quorum_up, self.drained(), stopping);
        let mut st = self.state();
        let old = std::mem::take(&mut st.vips);
        // VIPs no longer configured: withdraw.
        for (vip, (on, _)) in &old {
            if *on && !decided.contains_key(vip) {
                match routes.remove(*vip) {
                    Ok(()) => {
                        tracing::info!(%vip, "active-active: VIP withdrawn (no longer configured)");
                        st.withdrawn = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(%vip, "active-active: cannot withdraw the VIP: {e}");
                        st.vips.insert(*vip, (true, None));
                    }
                }
            }
        }
        for (vip, why) in decided {
            let was = old.get(&vip).is_some_and(|(on, _)| *on);
            let want = why.is_none();
            let on = if want && !was {
                match routes.add(vip) {
                    Ok(()) => {
                        tracing::info!(%vip, "active-active: VIP announced");
                        true
                    }
                    Err(e) => {
                        tracing::warn!(%vip, "active-active: cannot announce the VIP: {e}");
                        false
                    }
                }
            } else if !want && was {
                match routes.remove(vip) {
                    Ok(()) => {
                        tracing::info!(%vip, why = %describe(why.as_ref()), "active-active: VIP withdrawn");
                        st.withdrawn = Some(Instant::now());
                        false
                    }
                    Err(e) => {
                        tracing::warn!(%vip, "active-active: cannot withdraw the VIP: {e}");
                        true
                    }
                }
            } else {
                was
            };
            st.vips.insert(vip, (on, why));
        }
    }

    /// `rvs drain-director`: withdraw every VIP, wait for the routes to leave the table
    /// (bounded) and then the convergence delay, and say so.
    pub fn drain(&self) -> String {
        self.drained.store(true, Ordering::Release);
        let start = Instant::now();
        while !self.announced().is_empty() && start.elapsed() < WITHDRAW_WAIT {
            std::thread::sleep(TICK / 4);
        }
        let left = self.announced();
        if !left.is_empty() {
            return format!(
                "error: the routes of {} are still in table {} after {} s\n",
                join(&left),
                self.setup.route_table,
                WITHDRAW_WAIT.as_secs()
            );
        }
        // The routers converge from the last withdrawal on.
        let since = self
            .state()
            .withdrawn
            .map_or(self.setup.convergence_delay, |t| t.elapsed());
        let wait = self.setup.convergence_delay.saturating_sub(since);
        std::thread::sleep(wait);
        format!(
            "director drained: no VIP announced (table {}); waited {:.1} s for the routers\n",
            self.setup.route_table,
            start.elapsed().as_secs_f64()
        )
    }

    /// `rvs undrain-director`: announce again what may be announced.
    pub fn undrain(&self) -> String {
        let was = self.drained.swap(false, Ordering::AcqRel);
        if was {
            "director undrained: VIPs with their quorum are announced again\n".to_string()
        } else {
            "director was not drained\n".to_string()
        }
    }

    /// `rvs list --announce`.
    pub fn render(&self) -> String {
        let st = self.state();
        let mut out = format!(
            "Active-active: table {} dev {}, convergence delay {} s, director {}\n",
            self.setup.route_table,
            self.setup.route_device,
            self.setup.convergence_delay.as_secs_f64(),
            if self.drained() {
                "drained"
            } else {
                "in service"
            }
        );
        let _ = writeln!(out, "{:<40} {:<10} Reason", "VIP", "Announced");
        for (vip, (on, why)) in &st.vips {
            let _ = writeln!(
                out,
                "{:<40} {:<10} {}",
                vip.to_string(),
                if *on { "yes" } else { "no" },
                describe(why.as_ref())
            );
        }
        out
    }

    /// `rvs_director_drained` and `rvs_vip_announced{vip}`.
    pub fn render_metrics(&self, out: &mut String) {
        out.push_str(
            "# HELP rvs_director_drained Whether the operator drained this active-active director (rvs drain-director).\n\
             # TYPE rvs_director_drained gauge\n",
        );
        let _ = writeln!(out, "rvs_director_drained {}", u8::from(self.drained()));
        out.push_str(
            "# HELP rvs_vip_announced Whether this director announces the VIP (its route is in the active-active table).\n\
             # TYPE rvs_vip_announced gauge\n",
        );
        for (vip, (on, _)) in &self.state().vips {
            let _ = writeln!(out, "rvs_vip_announced{{vip=\"{vip}\"}} {}", u8::from(*on));
        }
    }
}

fn join(a: &[IpAddr]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(why: Option<&Withheld>) -> String {
    match why {
        None => String::new(),
        Some(Withheld::Drained) => "director drained".into(),
        Some(Withheld::Stopping) => "director stopping".into(),
        Some(Withheld::NoQuorum(s)) => format!(
            "quorum lost: {}",
            s.iter()
                .map(crate::metrics::service_label)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A control-socket line for the announcer: `drain-director`, `undrain-director`, `list
/// --announce`; None for other requests. Without active-active, these are refused.
pub fn control_line(line: &str, a: Option<&Announcer>) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let known = matches!(
        words.as_slice(),
        ["drain-director"] | ["undrain-director"] | ["list", "--announce"]
    );
    if !known {
        return None;
    }
    let Some(a) = a else {
        return Some(
            "error: this director is not active-active (`[cluster] mode = \"active-active\"` \
             or `rvs daemon --active-active`)\n"
                .to_string(),
        );
    };
    Some(match words[0] {
        "drain-director" => a.drain(),
        "undrain-director" => a.undrain(),
        _ => a.render(),
    })
}

/// The announcer thread: every [`TICK`], match the table to the decision; once `term` is
/// set (SIGTERM, SIGINT), withdraw everything, wait the convergence delay, then set `stop`
/// (the data plane stops).
pub struct AnnouncerThread {
    /// The shared state (control requests, metrics).
    pub announcer: Arc<Announcer>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AnnouncerThread {
    /// Start it. `services` gives the running configuration's services (it follows reloads
    /// and rvsadm edits).
    pub fn start(
        setup: ClusterSetup,
        monitor: Arc<Monitor>,
        services: Box<dyn Fn() -> Vec<ServiceKey> + Send>,
        term: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<AnnouncerThread> {
        let mut routes = KernelRoutes::open(&setup)?;
        let announcer = Arc::new(Announcer::new(setup));
        let a = Arc::clone(&announcer);
        let thread = std::thread::Builder::new()
            .name("rvs-announce".into())
            .spawn(move || {
                let _guard = StopOnPanic(Arc::clone(&stop));
                let quorum = |m: &Monitor| {
                    let h = crate::desired::lock(&m.health);
                    h.services()
                        .map(|s| (s.service, s.quorum_up))
                        .collect::<Vec<_>>()
                };
                loop {
                    let stopping = term.load(Ordering::Acquire);
                    let vips = vips_of(&services());
                    let q = quorum(&monitor);
                    let up = |k: &ServiceKey| q.iter().find(|(s, _)| s == k).map(|(_, u)| *u);
                    a.reconcile(&mut routes, &vips, up, stopping);
                    if stopping {
                        let delay = a.setup.convergence_delay;
                        tracing::info!(
                            "active-active: VIPs withdrawn; forwarding for {:.1} s while the routers converge",
                            delay.as_secs_f64()
                        );
                        std::thread::sleep(delay);
                        stop.store(true, Ordering::Release);
                        break;
                    }
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    std::thread::sleep(TICK);
                }
                drop(routes);
            })?;
        Ok(AnnouncerThread {
            announcer,
            thread: Some(thread),
        })
    }

    /// Wait for the thread (after `stop`).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stops the daemon if the announcer thread panics: its routes are gone with it (the TUN
/// device closes), and SIGTERM, which only the announcer turns into a stop, would no
/// longer stop the daemon.
struct StopOnPanic(Arc<AtomicBool>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("active-active: the announcer failed; the director stops");
            self.0.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::model::Protocol;

    #[derive(Default)]
    struct Record {
        table: Vec<IpAddr>,
        fail: bool,
    }

    impl Routes for Record {
        fn add(&mut self, vip: IpAddr) -> io::Result<()> {
            if self.fail {
                return Err(io::Error::other("refused"));
            }
            self.table.push(vip);
            Ok(())
        }
        fn remove(&mut self, vip: IpAddr) -> io::Result<()> {
            self.table.retain(|a| *a != vip);
            Ok(())
        }
    }

    fn key(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    fn quick() -> ClusterSetup {
        ClusterSetup {
            convergence_delay: Duration::from_millis(50),
            ..ClusterSetup::default()
        }
    }

    #[test]
    fn a_vip_is_announced_while_every_service_on_it_has_its_quorum() {
        let web = key("10.1.0.100", 80);
        let tls = key("10.1.0.100", 443);
        let other = key("10.1.0.101", 80);
        let vips = vips_of(&[web, tls, other]);
        let a = Announcer::new(quick());
        let mut r = Record::default();
        // 443 unmonitored (None): it has its quorum.
        a.reconcile(&mut r, &vips, |k| (*k == web).then_some(true), false);
        assert_eq!(
            r.table,
            ["10.1.0.100", "10.1.0.101"].map(|s| s.parse::<IpAddr>().unwrap())
        );
        // 80 loses its quorum: the whole VIP goes, the other stays.
        a.reconcile(&mut r, &vips, |k| (*k == web).then_some(false), false);
        assert_eq!(r.table, ["10.1.0.101".parse::<IpAddr>().unwrap()]);
        assert!(
            a.render().contains("quorum lost: TCP 10.1.0.100:80"),
            "{}",
            a.render()
        );
        let mut m = String::new();
        a.render_metrics(&mut m);
        assert!(
            m.contains("rvs_vip_announced{vip=\"10.1.0.100\"} 0\n"),
            "{m}"
        );
        assert!(
            m.contains("rvs_vip_announced{vip=\"10.1.0.101\"} 1\n"),
            "{m}"
        );
        assert!(m.contains("rvs_director_drained 0\n"), "{m}");
        // Back.
        a.reconcile(&mut r, &vips, |_| Some(true), false);
        assert_eq!(r.table.len(), 2);
        // A VIP no longer configured is withdrawn.
        a.reconcile(&mut r, &vips_of(&[other]), |_| Some(true), false);
        assert_eq!(r.table, ["10.1.0.101".parse::<IpAddr>().unwrap()]);
        // Stopping withdraws everything.
        a.reconcile(&mut r, &vips_of(&[other]), |_| Some(true), true);
        assert!(r.table.is_empty());
    }

    #[test]
    fn a_route_that_cannot_be_written_is_tried_again() {
        let vips = vips_of(&[key("10.1.0.100", 80)]);
        let a = Announcer::new(quick());
        let mut r = Record {
            fail: true,
            ..Record::default()
        };
        a.reconcile(&mut r, &vips, |_| None, false);
        assert!(a.announced().is_empty());
        r.fail = false;
        a.reconcile(&mut r, &vips, |_| None, false);
        assert_eq!(a.announced(), ["10.1.0.100".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn drain_withdraws_waits_and_undrain_announces_again() {
        let vips = vips_of(&[key("10.1.0.100", 80)]);
        let a = Arc::new(Announcer::new(quick()));
        let r = Arc::new(Mutex::new(Record::default()));
        a.reconcile(&mut *r.lock().unwrap(), &vips, |_| None, false);
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (a, r, stop, vips) = (
                Arc::clone(&a),
                Arc::clone(&r),
                Arc::clone(&stop),
                vips.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..200 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    a.reconcile(&mut *r.lock().unwrap(), &vips, |_| None, false);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let t = Instant::now();
        let said = control_line("drain-director", Some(&a)).expect("ours");
        assert!(said.starts_with("director drained"), "{said}");
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "waited the convergence delay"
        );
        assert!(r.lock().unwrap().table.is_empty());
        assert!(a.render().contains("director drained"));
        let said = control_line("undrain-director", Some(&a)).expect("ours");
        assert!(said.starts_with("director undrained"), "{said}");
        for _ in 0..100 {
            if !r.lock().unwrap().table.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(r.lock().unwrap().table.len(), 1);
        stop.store(true, Ordering::Release);
        ticker.join().unwrap();
    }

    #[test]
    fn control_lines_without_active_active_are_refused_and_others_pass() {
        assert!(
            control_line("drain-director", None)
                .unwrap()
                .starts_with("error: ")
        );
        assert!(control_line("list", None).is_none());
        assert!(control_line("list --health", None).is_none());
    }

    #[test]
    fn active_active_owns_only_the_fullnat_local_addresses() {
        let mut config = rvs_core::model::Config::default();
        config.local_pool.addrs = vec!["10.2.0.250".parse().unwrap()];
        let mut plan = Plan {
            config,
            interfaces: vec!["eth0".into()],
            owned: vec![
                ("10.1.0.100".parse().unwrap(), "eth0".into()),
                ("10.2.0.250".parse().unwrap(), "eth0".into()),
            ],
        };
        let mut f = FailoverConfig::default();
        strip_owned(&mut plan, &f);
        assert_eq!(plan.owned.len(), 2, "untouched without active-active");
        force_active_active(&mut f).unwrap();
        strip_owned(&mut plan, &f);
        assert_eq!(
            plan.owned,
            [("10.2.0.250".parse().unwrap(), "eth0".to_string())]
        );
        assert_eq!(plan.interfaces, ["eth0"]);
    }
}
