//! The shipped `rvs.service` under a live systemd: `systemd-nspawn` boots this machine's
//! own systemd (volatile root, the host's /usr read-only) inside the lab director's network
//! namespace, with the unit file bound verbatim into /etc/systemd/system and the built
//! binary at /usr/local/bin, where the unit looks for it. The operator's whole life cycle
//! runs through `systemctl`: start (Type=notify: it returns once the director forwards),
//! traffic through the VIP, the sandbox's capabilities, reload, a refused reload that keeps
//! the running configuration, a crash restarted by `Restart=on-failure`, and stop.
//!
//! Needs `systemd-nspawn` (Debian's systemd-container, which scripts/test installs): without
//! it the test fails, it never skips.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{Virtual, even, get_name, lvs_cf, spread};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

/// A booted container; dropping it kills its init (and with it every process of its PID
/// namespace) and waits for `systemd-nspawn` to exit.
struct Container {
    nspawn: Child,
    init: u32,
}

/// What the unit's sandbox may leave the daemon: CAP_KILL (5), CAP_SETGID (6),
/// CAP_SETUID (7), CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_SYS_NICE (23) — the unit's
/// `CapabilityBoundingSet`, as docs/operating.md lists it.
const ALLOWED_CAPS: u64 = 1 << 5 | 1 << 6 | 1 << 7 | 1 << 12 | 1 << 13 | 1 << 23;

/// Host services kept from starting in the container.
const MASKED: [&str; 5] = [
    "nftables.service",
    "systemd-firstboot.service",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-networkd-wait-online.service",
];

const BOOT_LIMIT: Duration = Duration::from_secs(120);

/// One container at a time: with `--keep-unit` each runs in the cgroup of the test process,
/// which two booting systemds would both take over.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Container {
    /// Boots systemd in `netns` (a path under /run/netns) with `binds` (`--bind`/`--bind-ro`
    /// arguments) and its console in `log`, to basic.target only: the host's own services (nftables, web servers) are
    /// not the subject and must not touch the lab's namespace.
    fn boot(machine: &str, netns: &Path, binds: &[String], log: &Path) -> Container {
        let out = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args(["-D", "/", "--volatile=yes", "-M", machine, "-b"])
            .args(["--register=no", "--keep-unit", "--console=pipe"])
            // nspawn keeps CAP_NET_ADMIN only with a network of its own making; the lab's
            // namespace is the container's network, so grant it as a host would have it.
            .arg("--capability=CAP_NET_ADMIN")
            .arg(format!("--network-namespace-path={}", netns.display()))
            .args(binds)
            // Masked (a unit file that is /dev/null): the host's nftables service would
            // load its ruleset into the lab's namespace, networkd would manage the lab's links
            // and its wait-online (which the units' network-online.target pulls in) would
            // wait 2 minutes for them.
            .args(
                MASKED
                    .iter()
                    .map(|u| format!("--bind-ro=/dev/null:/etc/systemd/system/{u}")),
            )
            .args(["--", "systemd.unit=basic.target"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let nspawn = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-nspawn ({e}): install Debian's systemd-container \
                 (scripts/test does)"
            )
        });
        let pid = nspawn.id();
        let mut c = Container { nspawn, init: 0 };
        let deadline = Instant::now() + BOOT_LIMIT;
        let boot_log = || std::fs::read_to_string(log).unwrap_or_default();
        // The container's init is the child of systemd-nspawn that is PID 1 of a PID
        // namespace of its own (`NSpid: N 1`); nspawn's first child is a short-lived
        // helper that forks it.
        while c.init == 0 {
            if let Some(status) = c.nspawn.try_wait().unwrap() {
                panic!("systemd-nspawn exited ({status}):\n{}", boot_log());
            }
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            c.init = children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/status"))
                        .unwrap_or_default()
                        .lines()
                        .find_map(|l| l.strip_prefix("NSpid:"))
                        .is_some_and(|ids| ids.split_whitespace().last() == Some("1"))
                })
                .unwrap_or(0);
            assert!(Instant::now() < deadline, "no init:\n{}", boot_log());
            thread::sleep(Duration::from_millis(50));
        }
        loop {
            let out = c.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout);
            if matches!(state.trim(), "running" | "degraded") {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not finish booting within {BOOT_LIMIT:?} ({state}{}):\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                c.text(&["systemctl", "list-jobs", "--no-pager"]),
                boot_log()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ARGS` run inside the container (all of its namespaces).
    fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-a"])
            .args(args)
            .output()
            .expect("running nsenter")
    }

    /// `ARGS`' stdout inside the container.
    fn text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).stdout).into_owned()
    }

    /// `systemctl ARGS`, which must succeed.
    fn systemctl(&self, args: &[&str]) {
        let out = self.run(&[&["systemctl"][..], args].concat());
        assert!(
            out.status.success(),
            "systemctl {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.text(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                "-u",
                args[args.len() - 1]
            ])
        );
    }

    fn show(&self, property: &str) -> String {
        self.text(&["systemctl", "show", "-p", property, "--value", "rvs"])
            .trim()
            .to_owned()
    }

    fn journal(&self) -> String {
        self.text(&["journalctl", "-u", "rvs", "--no-pager", "-o", "cat"])
    }

    /// `rvs list` through the unit's control socket.
    fn listing(&self) -> String {
        let out = self.run(&[
            "/usr/local/bin/rvs",
            "list",
            "--control",
            "/run/rvs/rvs.ctl",
        ]);
        assert!(
            out.status.success(),
            "rvs list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.init != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.init.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.nspawn.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.nspawn.kill();
                let _ = self.nspawn.wait();
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        remove_container_cgroups();
    }
}

/// `systemd-nspawn --keep-unit` makes `payload/` (the container's systemd and its units) and
/// `supervisor/` (nspawn itself) cgroups inside the caller's own, in the named systemd
/// hierarchy and the unified one; once the container is gone they are empty, and they go
/// too, so that nothing of the test is left behind.
fn remove_container_cgroups() {
    fn rmdir_tree(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rmdir_tree(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next(), f.next(), f.next().unwrap_or("/"));
        let root = match controllers {
            Some("name=systemd") => "/sys/fs/cgroup/systemd",
            Some("") => "/sys/fs/cgroup/unified",
            _ => continue,
        };
        for leaf in ["payload", "supervisor"] {
            rmdir_tree(
                &Path::new(root)
                    .join(path.trim_start_matches('/'))
                    .join(leaf),
            );
        }
    }
}

/// The weights of `listing`'s real servers, in order.
fn weights(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.trim_start().starts_with("-> 10."))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

/// Requests through the VIP until every real server answered (bounded).
fn reaches_all(lab: &crate::lab::Lab, vip: IpAddr, limit: Duration) -> usize {
    let addr = SocketAddr::new(vip, 80);
    lab.run("client", move || {
        let deadline = Instant::now() + limit;
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 3 && Instant::now() < deadline {
            if let Ok(name) = get_name(addr, Duration::from_millis(500)) {
                seen.insert(name);
            } else {
                thread::sleep(Duration::from_millis(100));
            }
        }
        seen.len()
    })
    .unwrap()
}

#[test]
fn rvs_service_starts_reloads_restarts_and_stops_under_a_live_systemd() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        ..LabOptions::default()
    });
    let vip: IpAddr = lab::VIP.into();
    let config = lvs_cf(Method::Nat, &[Virtual::rr(vip, 80, 3)]);
    let etc = lab.info().workdir().join("etc-rvs");
    std::fs::create_dir_all(&etc).unwrap();
    let cf = etc.join("lvs.cf");
    std::fs::write(&cf, &config).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let unit = repo.join("dist/systemd/rvs.service");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rvs"));
    let netns = Path::new("/run/netns").join(lab.info().namespace("director").unwrap());
    let binds = [
        format!(
            "--bind-ro={}:/usr/local/bin",
            bin.parent().unwrap().display()
        ),
        format!("--bind={}:/etc/rvs", etc.display()),
        format!(
            "--bind-ro={}:/etc/systemd/system/rvs.service",
            unit.display()
        ),
    ];
    let c = Container::boot(
        &format!("rvs-{}", lab.name()),
        &netns,
        &binds,
        &lab.info().workdir().join("boot.log"),
    );

    // Start: Type=notify, so the VIP answers as soon as `systemctl start` returns.
    c.systemctl(&["start", "rvs"]);
    assert_eq!(c.show("ActiveState"), "active");
    let addr = SocketAddr::new(vip, 80);
    assert_eq!(
        lab.run("client", move || get_name(addr, Duration::from_secs(2))
            .map(|_| ())
            .map_err(|e| e.to_string()))
            .unwrap(),
        Ok(()),
        "the VIP answers once start returned:\n{}",
        c.journal()
    );
    assert_eq!(reaches_all(&lab, vip, Duration::from_secs(15)), 3);
    assert_eq!(spread(&lab, vip, 30), even(3, 10));

    // The sandbox: only the documented capabilities, no new privileges, a seccomp filter.
    let pid = c.show("MainPID");
    let status = c.text(&["cat", &format!("/proc/{pid}/status")]);
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name} in\n{status}"))
            .to_owned()
    };
    let eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    assert_eq!(eff & !ALLOWED_CAPS, 0, "CapEff {eff:#x}");
    assert_ne!(eff & 1 << 13, 0, "CAP_NET_RAW kept: {eff:#x}");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");

    // Reload: the new weights are live.
    std::fs::write(&cf, config.replace("weight = 1", "weight = 3")).unwrap();
    c.systemctl(&["reload", "rvs"]);
    assert_eq!(weights(&c.listing()), ["3", "3", "3"]);

    // A broken file: `systemctl reload` fails with the parser's position in the journal,
    // the daemon keeps running on the previous configuration.
    std::fs::write(&cf, format!("{config}bogus {{\n")).unwrap();
    let out = c.run(&["systemctl", "reload", "rvs"]);
    assert!(!out.status.success(), "a broken reload succeeded");
    let journal = c.journal();
    let line = config.lines().count() + 1;
    assert!(
        journal.contains(&format!("lvs.cf:{line}:")),
        "the refusal names lvs.cf:{line}:\n{journal}"
    );
    assert_eq!(c.show("ActiveState"), "active");
    assert_eq!(c.show("MainPID"), pid, "the daemon kept running");
    assert_eq!(weights(&c.listing()), ["3", "3", "3"]);
    assert_eq!(spread(&lab, vip, 30), even(3, 10));

    // A crash: Restart=on-failure brings a new daemon (RestartSec=2) that forwards again.
    std::fs::write(&cf, &config).unwrap();
    assert!(c.run(&["kill", "-KILL", &pid]).status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = c.show("MainPID");
        if now != pid && now != "0" && c.show("ActiveState") == "active" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not restarted ({now}):\n{}",
            c.journal()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(reaches_all(&lab, vip, Duration::from_secs(15)), 3);
    assert_eq!(weights(&c.listing()), ["1", "1", "1"]);

    // Stop: SIGTERM to the daemon, which ends cleanly (not killed at TimeoutStopSec).
    c.systemctl(&["stop", "rvs"]);
    assert_eq!(c.show("ActiveState"), "inactive");
    assert_eq!(c.show("Result"), "success");
    assert!(c.journal().contains("director stopped"), "{}", c.journal());
    drop(c);
}

/// The real-server units in a real server's namespace: `rvs-realserver-dr.service` puts the
/// VIP on `lo` with the ARP sysctls and takes them away at stop; `rvs-realserver.service`
/// (a dynamic user, no capabilities) answers the director's load query.
#[test]
fn real_server_units_set_up_dr_and_answer_load_under_a_live_systemd() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // NAT lab: its real servers have no VIP of their own, so what appears is the unit's.
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        ..LabOptions::default()
    });
    let etc = lab.info().workdir().join("etc-rvs");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("realserver.env"),
        format!(
            "RVS_REALSERVER_ARGS=--vip {}\nRVS_AGENT_LISTEN=0.0.0.0:5391\n",
            lab::VIP
        ),
    )
    .unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rvs"));
    let netns = Path::new("/run/netns").join(lab.info().namespace("rs1").unwrap());
    let mut binds = vec![
        format!(
            "--bind-ro={}:/usr/local/bin",
            bin.parent().unwrap().display()
        ),
        format!("--bind={}:/etc/rvs", etc.display()),
    ];
    for unit in ["rvs-realserver.service", "rvs-realserver-dr.service"] {
        binds.push(format!(
            "--bind-ro={}:/etc/systemd/system/{unit}",
            repo.join("dist/systemd").join(unit).display()
        ));
    }
    let c = Container::boot(
        &format!("rvs-{}", lab.name()),
        &netns,
        &binds,
        &lab.info().workdir().join("boot.log"),
    );
    let lo = || {
        String::from_utf8_lossy(
            &lab.exec("rs1", "ip", ["-4", "addr", "show", "dev", "lo"])
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let sysctl = |name: &str| {
        String::from_utf8_lossy(&lab.exec("rs1", "sysctl", ["-n", name]).unwrap().stdout)
            .trim()
            .to_owned()
    };
    let vip = format!("{}/32", lab::VIP);
    assert!(!lo().contains(&vip));

    c.systemctl(&["start", "rvs-realserver-dr"]);
    assert!(lo().contains(&vip), "the VIP on lo:\n{}", lo());
    assert_eq!(sysctl("net.ipv4.conf.all.arp_ignore"), "1");
    assert_eq!(sysctl("net.ipv4.conf.all.arp_announce"), "2");
    c.systemctl(&["stop", "rvs-realserver-dr"]);
    assert!(!lo().contains(&vip), "the VIP left on lo:\n{}", lo());

    c.systemctl(&["start", "rvs-realserver"]);
    let rs1 = SocketAddr::new(lab::rs_addr(1).into(), 5391);
    let reply = lab
        .run("director", move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 128];
            // The unit may still be binding its socket: a few bounded tries.
            for _ in 0..20 {
                s.send_to(rvs::loadagent::REQUEST, rs1).unwrap();
                if let Ok(n) = s.recv(&mut buf) {
                    return rvs::loadagent::parse_reply(&buf[..n]);
                }
            }
            None
        })
        .unwrap();
    assert!(
        reply.is_some(),
        "the agent answered the load query:\n{}",
        c.text(&["journalctl", "-u", "rvs-realserver", "--no-pager"])
    );
    let pid = c
        .text(&[
            "systemctl",
            "show",
            "-p",
            "MainPID",
            "--value",
            "rvs-realserver",
        ])
        .trim()
        .to_owned();
    let status = c.text(&["cat", &format!("/proc/{pid}/status")]);
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap());
    assert_eq!(eff, Some(0), "the agent holds no capability:\n{status}");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(str::to_owned));
    assert_ne!(
        uid.as_deref(),
        Some("0"),
        "the agent runs as a dynamic user"
    );
    c.systemctl(&["stop", "rvs-realserver"]);
    drop(c);
}
