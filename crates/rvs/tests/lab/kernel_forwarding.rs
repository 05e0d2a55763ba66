//! The director's kernel must not forward what rvs forwards: `rvs daemon` refuses to start
//! while IPv4 or IPv6 forwarding is on for its interfaces, saying which switch and how to
//! turn it off, and a switch turned on under a running daemon is logged and shown as
//! `rvs_kernel_forwarding{family=...} 1`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::cluster::{Virtual, lvs_cf};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

const METRICS_PORT: u16 = 9107;

fn metrics() -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], METRICS_PORT)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

fn gauge(page: &str, family: &str) -> Option<u64> {
    let key = format!("rvs_kernel_forwarding{{family=\"{family}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn start_is_refused_with_ipv6_forwarding_on_and_a_change_while_running_is_reported() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        real_servers: 1,
        ..LabOptions::default()
    });
    let wd = lab.info().workdir();
    let cf = wd.join("fwd.cf");
    std::fs::write(
        &cf,
        lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 1)]),
    )
    .unwrap();
    let control = wd.join("fwd.ctl");
    let exe = crate::harness::rvs_exe();
    let daemon = |extra: &[&str]| {
        let mut args = vec![
            "daemon".to_string(),
            "-c".into(),
            cf.display().to_string(),
            "--control".into(),
            control.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // Bounded: a daemon that wrongly starts is killed after 20 s (and the test fails).
    let refused = |args: &[String]| {
        let mut v = vec!["20".to_string(), exe.display().to_string()];
        v.extend(args.iter().cloned());
        v
    };
    let sysctl = |kv: &str| {
        lab.exec("director", "sysctl", ["-qw", kv]).unwrap();
    };

    // The all-interfaces IPv6 switch: refused, the switch named, the fix given.
    sysctl("net.ipv6.conf.all.forwarding=1");
    let err = lab
        .exec("director", "timeout", refused(&daemon(&[])))
        .expect_err("the daemon must refuse to start")
        .to_string();
    assert!(
        err.contains(
            "kernel forwarding is on in this namespace (net.ipv6.conf.all.forwarding, \
             net.ipv6.conf.eth0.forwarding, net.ipv6.conf.eth1.forwarding = 1): the kernel \
             would forward a second copy of the traffic rvs forwards; set it to 0 (sysctl -w \
             net.ipv6.conf.all.forwarding=0 net.ipv6.conf.eth0.forwarding=0 \
             net.ipv6.conf.eth1.forwarding=0, and in /etc/sysctl.d/ to keep it after a reboot)"
        ),
        "{err}"
    );
    sysctl("net.ipv6.conf.all.forwarding=0");
    // One director interface's own switch is enough.
    sysctl("net.ipv6.conf.eth1.forwarding=1");
    let err = lab
        .exec("director", "timeout", refused(&daemon(&[])))
        .expect_err("the daemon must refuse to start")
        .to_string();
    assert!(
        err.contains("(net.ipv6.conf.eth1.forwarding = 1)")
            && err.contains("sysctl -w net.ipv6.conf.eth1.forwarding=0,"),
        "{err}"
    );
    sysctl("net.ipv6.conf.eth1.forwarding=0");
    // And IPv4's, as before.
    sysctl("net.ipv4.ip_forward=1");
    let err = lab
        .exec("director", "timeout", refused(&daemon(&[])))
        .expect_err("the daemon must refuse to start")
        .to_string();
    assert!(err.contains("(net.ipv4.ip_forward, "), "{err}");
    sysctl("net.ipv4.ip_forward=0");

    // All off: it starts; turning IPv6 forwarding on under it is logged and measured.
    let port = format!("127.0.0.1:{METRICS_PORT}");
    let pid = lab
        .spawn("director", &exe, daemon(&["--metrics", &port]))
        .unwrap();
    let read = |family: &str| {
        lab.run("director", metrics)
            .unwrap()
            .ok()
            .and_then(|p| gauge(&p, family))
    };
    let wait_for = |family: &str, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if read(family) == Some(want) {
                return;
            }
            assert!(
                lab.try_wait(pid).unwrap().is_none() && Instant::now() < deadline,
                "rvs_kernel_forwarding{{family={family:?}}} never became {want}:\n{}",
                lab.log_tail(pid)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("ipv4", 0);
    wait_for("ipv6", 0);
    sysctl("net.ipv6.conf.all.forwarding=1");
    wait_for("ipv6", 1);
    assert_eq!(read("ipv4"), Some(0));
    let log = lab.log_tail(pid);
    assert!(
        log.contains("kernel forwarding turned on under the running director")
            && log.contains("net.ipv6.conf.all.forwarding"),
        "{log}"
    );
    sysctl("net.ipv6.conf.all.forwarding=0");
    wait_for("ipv6", 0);
    assert!(lab.log_tail(pid).contains("kernel forwarding is off again"));
    lab.stop(pid).unwrap();
}
