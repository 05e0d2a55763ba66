//! A director in a lab: writes an `lvs.cf`, runs `rvs daemon` in the director's namespace
//! (as `rvs demo` does), waits until it serves, and reads its `ipvsadm -L -n` listings
//! through the control socket. The daemon is a tracked process of the lab, so the lab's
//! guard ends it whatever happens to the test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::Http;
use crate::lab::{self, Lab, Method};

/// How long the daemon may take to serve after it starts.
const READY_LIMIT: Duration = Duration::from_secs(15);

/// One `virtual` block of the `lvs.cf`.
#[derive(Clone, Debug)]
pub(crate) struct Virtual {
    pub(crate) vip: IpAddr,
    pub(crate) port: u16,
    /// `tcp` or `udp`.
    pub(crate) protocol: &'static str,
    pub(crate) scheduler: &'static str,
    /// `persistent = N`, if any.
    pub(crate) persistent: Option<u32>,
    /// `pmask = MASK`, if any.
    pub(crate) pmask: Option<&'static str>,
    pub(crate) servers: Vec<IpAddr>,
}

impl Virtual {
    /// `vip:port/tcp`, rr over real servers `1..=n` of the lab (IPv4 or IPv6 addresses
    /// following the VIP's family), no persistence.
    pub(crate) fn rr(vip: IpAddr, port: u16, n: usize) -> Self {
        let servers = (1..=n)
            .map(|i| match vip {
                IpAddr::V4(_) => IpAddr::V4(lab::rs_addr(i)),
                IpAddr::V6(_) => IpAddr::V6(lab::rs_addr6(i)),
            })
            .collect();
        Self {
            vip,
            port,
            protocol: "tcp",
            scheduler: "rr",
            persistent: None,
            pmask: None,
            servers,
        }
    }
}

/// The `lvs.cf` for `method` with these virtual services. NAT's router is the lab's
/// floating address of the first service's family.
pub(crate) fn lvs_cf(method: Method, services: &[Virtual]) -> String {
    let network = match method {
        Method::Nat => "nat",
        Method::Dr => "direct",
        Method::Tun => "tunnel",
        Method::FullNat => "fullnat",
    };
    let mut s = format!(
        "serial_no = 1\nprimary = {}\nservice = lvs\nnetwork = {network}\n",
        lab::DIRECTOR_PUB
    );
    match method {
        Method::Nat => {
            let router: IpAddr = match services.first().map(|v| v.vip) {
                Some(IpAddr::V6(_)) => lab::NAT_ROUTER6.into(),
                _ => lab::NAT_ROUTER.into(),
            };
            let _ = writeln!(s, "nat_router = {router} eth1:1");
        }
        Method::FullNat => {
            let _ = writeln!(
                s,
                "fullnat_local = {}\nfullnat_ports = 20000-60000",
                lab::FULLNAT_LOCAL
            );
        }
        Method::Dr | Method::Tun => {}
    }
    for (n, v) in services.iter().enumerate() {
        let _ = write!(
            s,
            "virtual svc{n} {{\n    address = {} eth0:1\n    active = 1\n    port = {}\n    \
             protocol = {}\n    scheduler = {}\n",
            v.vip, v.port, v.protocol, v.scheduler
        );
        if let Some(p) = v.persistent {
            let _ = writeln!(s, "    persistent = {p}");
        }
        if let Some(m) = v.pmask {
            let _ = writeln!(s, "    pmask = {m}");
        }
        for (i, a) in v.servers.iter().enumerate() {
            let _ = write!(
                s,
                "    server rs{} {{\n        address = {a}\n        active = 1\n        \
                 weight = 1\n    }}\n",
                i + 1
            );
        }
        s.push_str("}\n");
    }
    s
}

/// A running `rvs daemon` in a lab's director namespace.
pub(crate) struct Director<'a> {
    lab: &'a Lab,
    pid: u32,
    control: PathBuf,
}

impl<'a> Director<'a> {
    /// Writes `config` as `NAME.cf`, starts the daemon on it and waits until its control
    /// socket answers (its packet sockets are open by then). Panics with the daemon's
    /// output if it exits or does not come up.
    pub(crate) fn start(lab: &'a Lab, name: &str, config: &str) -> Self {
        Self::start_in(lab, "director", name, config)
    }

    /// [`Director::start`] in lab node `node` (`director` or `director2`).
    pub(crate) fn start_in(lab: &'a Lab, node: &str, name: &str, config: &str) -> Self {
        Self::start_with(lab, node, name, config, &[])
    }

    /// [`Director::start_in`] with more `rvs daemon` options (`--format toml`, ...).
    pub(crate) fn start_with(
        lab: &'a Lab,
        node: &str,
        name: &str,
        config: &str,
        extra: &[&str],
    ) -> Self {
        let wd = lab.info().workdir();
        let cf = wd.join(format!("{name}.cf"));
        std::fs::write(&cf, config).unwrap();
        let control = wd.join(format!("{name}.ctl"));
        let pid_file = wd.join(format!("{name}.pid"));
        let exe = crate::harness::rvs_exe();
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "daemon".as_ref(),
            "-c".as_ref(),
            cf.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            "--control".as_ref(),
            control.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        let pid = lab.spawn(node, &exe, args).unwrap();
        let d = Director { lab, pid, control };
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if let Some(status) = lab.try_wait(pid).unwrap() {
                panic!(
                    "rvs daemon exited ({status}) on\n{config}\n{}",
                    lab.log_tail(pid)
                );
            }
            if rvs::daemon::request_listing(&d.control, &[]).is_ok() {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "rvs daemon did not answer on its control socket within {READY_LIMIT:?}:\n{}",
                lab.log_tail(pid)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) until `GET /` on `vip:80` from the client is answered; returns the
    /// real server's name. Panics with the daemon's output otherwise.
    pub(crate) fn wait_http(&self, vip: IpAddr) -> String {
        let addr = SocketAddr::new(vip, 80);
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let got = self
                .lab
                .run("client", move || get_name(addr, Duration::from_millis(500)))
                .unwrap();
            match got {
                Ok(name) => return name,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "{addr} did not answer within {READY_LIMIT:?} ({e}); daemon output:\n{}",
                    self.log()
                ),
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The daemon's control socket.
    pub(crate) fn control(&self) -> &std::path::Path {
        &self.control
    }

    /// The daemon's last lines of output.
    pub(crate) fn log(&self) -> String {
        self.lab.log_tail(self.pid)
    }

    /// `rvs list ARGS` (ipvsadm -L -n ARGS) from the daemon.
    pub(crate) fn listing(&self, args: &[&str]) -> String {
        rvs::daemon::request_listing(&self.control, args)
            .unwrap_or_else(|e| panic!("listing {args:?}: {e}\n{}", self.log()))
    }

    /// Connections per real server (`--stats`' Conns column), keyed `addr:port`
    /// (`[v6]:port`), summed over services.
    pub(crate) fn conns(&self) -> BTreeMap<String, u64> {
        let text = self.listing(&["--stats", "--exact"]);
        let mut by_rs = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("-> ") else {
                continue;
            };
            let mut w = rest.split_whitespace();
            let (Some(rs), Some(n)) = (w.next(), w.next().and_then(|n| n.parse::<u64>().ok()))
            else {
                continue;
            };
            *by_rs.entry(rs.to_owned()).or_insert(0) += n;
        }
        by_rs
    }

    /// Stops the daemon (SIGTERM) and returns its output.
    pub(crate) fn stop(self) -> String {
        let log = self.log();
        let _ = self.lab.stop(self.pid);
        log
    }
}

/// One `GET /` on a new connection; the body, trimmed (the real server's name).
pub(crate) fn get_name(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut h = Http::connect_timeout(addr, timeout)?;
    let r = h.get("/")?;
    if r.status != 200 {
        return Err(io::Error::other(format!("status {}", r.status)));
    }
    Ok(r.text().trim().to_owned())
}

/// `n` requests from the client to `vip:80`, each on its own connection; answers per
/// real server. Panics on the first failure.
pub(crate) fn spread(lab: &Lab, vip: IpAddr, n: usize) -> BTreeMap<String, usize> {
    let addr = SocketAddr::new(vip, 80);
    lab.run("client", move || {
        let mut by_rs = BTreeMap::new();
        for i in 0..n {
            let name = get_name(addr, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("request {i} of {n} to {addr}: {e}"));
            *by_rs.entry(name).or_insert(0) += 1;
        }
        by_rs
    })
    .unwrap()
}

/// `{rs1: n, rs2: n, ..}` for `k` real servers.
pub(crate) fn even(k: usize, n: usize) -> BTreeMap<String, usize> {
    (1..=k).map(|i| (format!("rs{i}"), n)).collect()
}

/// `after - before` per key.
pub(crate) fn diff(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}
