//! Labs come up wired as documented and go away completely.

use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

use rvs_sys::netns;

use crate::harness::{Http, alive, assert_gone, lab, require_root_lab, rvs_exe, state_dir};
use crate::lab::{self, Httpd, Lab, LabOptions, Method};

fn stdout(o: std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn up_and_down_leave_nothing_behind() {
    let lab = lab(LabOptions::default());
    let info = lab.info().clone();
    let pids = lab.pids();
    assert_eq!(
        info.namespaces.len(),
        6,
        "switch, client, director, rs1..rs3"
    );
    assert_eq!(pids.len(), 3, "one httpd per real server");
    let present = netns::list().unwrap();
    for (_, ns) in &info.namespaces {
        assert!(present.contains(ns), "{ns} missing while the lab is up");
    }
    assert!(pids.iter().all(|&p| alive(p)));
    assert!(info.state_file().exists());
    lab.down();
    assert_gone(&info, &pids);
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let seen = Mutex::new(None);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let lab = lab(LabOptions {
            real_servers: 2,
            ..LabOptions::default()
        });
        *seen.lock().unwrap() = Some((lab.info().clone(), lab.pids()));
        panic!("deliberate panic inside a lab test");
    }));
    assert!(result.is_err());
    let (info, pids) = seen.into_inner().unwrap().expect("the lab was built");
    assert_gone(&info, &pids);
}

#[test]
fn a_failed_build_removes_what_it_built() {
    require_root_lab();
    let name = format!("tfail{}", std::process::id());
    let err = Lab::up(LabOptions {
        name: Some(name.clone()),
        rvs_exe: Some("/nonexistent/rvs".into()),
        state_dir: state_dir(),
        ..LabOptions::default()
    })
    .err()
    .expect("an httpd that cannot start fails the build");
    assert!(
        err.to_string().contains("rs1"),
        "the error names the node: {err}"
    );
    let prefix = format!("{name}-");
    let left: Vec<_> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!state_dir().join(&name).exists());
}

#[test]
fn director_kernel_stays_out_of_vip_traffic() {
    let lab = lab(LabOptions {
        real_servers: 1,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    let out = stdout(
        lab.exec(
            "director",
            "sysctl",
            ["-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
        )
        .unwrap(),
    );
    assert_eq!(out, "0\n0\n");
    let addrs = stdout(lab.exec("director", "ip", ["-br", "addr"]).unwrap());
    assert!(
        !addrs.contains("10.1.0.100"),
        "VIP in the director's kernel: {addrs}"
    );
    assert!(
        !addrs.contains("10.2.0.254"),
        "NAT router in the kernel: {addrs}"
    );
}

#[test]
fn nat_and_fullnat_real_server_routes() {
    let nat = lab(LabOptions {
        real_servers: 1,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    let r4 = stdout(nat.exec("rs1", "ip", ["route", "show", "default"]).unwrap());
    let r6 = stdout(
        nat.exec("rs1", "ip", ["-6", "route", "show", "default"])
            .unwrap(),
    );
    assert!(r4.contains("via 10.2.0.254"), "{r4}");
    assert!(r6.contains("via 2001:db8:2::254"), "{r6}");
    drop(nat);

    let full = lab(LabOptions {
        method: Method::FullNat,
        real_servers: 1,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    let r4 = stdout(
        full.exec("rs1", "ip", ["route", "show", "default"])
            .unwrap(),
    );
    assert_eq!(r4, "", "FullNAT real servers need no route back");
}

#[test]
fn dr_real_servers_reply_directly_and_keep_quiet_about_the_vip() {
    let lab = lab(LabOptions {
        method: Method::Dr,
        real_servers: 2,
        ..LabOptions::default()
    });
    // The reply path: the client reaches each real server on the public LAN.
    let names = lab
        .run("client", || {
            [
                SocketAddr::from((lab::rs_pub_addr(1), 80)),
                SocketAddr::from((lab::rs_pub_addr6(2), 80)),
            ]
            .map(|a| {
                Http::connect(a)
                    .and_then(|mut h| h.get("/"))
                    .map(|r| r.text())
            })
        })
        .unwrap();
    assert_eq!(names[0].as_ref().unwrap(), "rs1\n");
    assert_eq!(names[1].as_ref().unwrap(), "rs2\n");

    let lo = stdout(
        lab.exec("rs1", "ip", ["-br", "addr", "show", "dev", "lo"])
            .unwrap(),
    );
    assert!(
        lo.contains("10.1.0.100/32") && lo.contains("2001:db8:1::100/128"),
        "{lo}"
    );
    let arp = stdout(
        lab.exec(
            "rs2",
            "sysctl",
            [
                "-n",
                "net.ipv4.conf.all.arp_ignore",
                "net.ipv4.conf.all.arp_announce",
            ],
        )
        .unwrap(),
    );
    assert_eq!(arp, "1\n2\n");

    // No director yet, and the real servers must not answer ARP for the VIP: unreachable.
    let vip = lab
        .run("client", || {
            TcpStream::connect_timeout(
                &SocketAddr::from((lab::VIP, 80)),
                Duration::from_millis(1500),
            )
        })
        .unwrap();
    assert!(vip.is_err(), "a real server answered for the VIP");
    let neigh = stdout(
        lab.exec("client", "ip", ["neigh", "show", "10.1.0.100"])
            .unwrap(),
    );
    assert!(
        !neigh.contains("lladdr"),
        "someone answered ARP for the VIP: {neigh}"
    );
}

#[test]
fn spawned_processes_are_tracked_and_stopped() {
    let lab = lab(LabOptions {
        real_servers: 1,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    let exe = rvs_exe();
    let pid = lab
        .spawn(
            "client",
            &exe,
            ["httpd", "--listen", "127.0.0.1:8080", "--name", "c"],
        )
        .unwrap();
    lab.wait_listening("client", pid, 8080, Duration::from_secs(5))
        .unwrap();
    assert_eq!(lab.try_wait(pid).unwrap(), None);
    let status = lab.stop(pid).unwrap().expect("reaped");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(15),
        "rvs httpd ends on SIGTERM: {status}"
    );
    assert!(!alive(pid));
}

#[test]
fn labs_of_killed_processes_are_swept() {
    let lab = lab(LabOptions {
        real_servers: 1,
        ..LabOptions::default()
    });
    let info = lab.info().clone();
    let pids = lab.pids();
    assert_eq!(info.owner, Some(std::process::id()));
    // Pretend the owner was SIGKILLed: a pid above any pid_max, and no guard runs.
    let state = std::fs::read_to_string(info.state_file()).unwrap();
    let state = state.replace(
        &format!("owner {}\n", std::process::id()),
        "owner 4194305\n",
    );
    std::fs::write(info.state_file(), state).unwrap();
    std::mem::forget(lab);
    let swept = lab::sweep_orphans(&state_dir()).unwrap();
    assert!(swept.contains(&info.name), "swept {swept:?}");
    assert_gone(&info, &pids);
}
