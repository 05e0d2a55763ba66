//! Live reload: 50 long-lived TCP connections keep streaming through the VIP while the
//! daemon's configuration file is changed and reloaded 20 times — real servers added,
//! removed and re-weighted, one invalid file among them (refused, with its location; the
//! running configuration keeps serving). No connection may be reset or lose a byte.
//!
//! The long-lived connections are on rs1 and rs2, which every configuration keeps; rs3
//! comes and goes. (A removed real server's connections are dropped, as the kernel does with
//! `expire_nodest_conn = 0`; operators drain with weight 0 first.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::cluster::Director;
use crate::harness::lab;
use crate::lab::{self, Httpd, LabOptions, Method};

const PORT: u16 = 7000;
const CONNS: usize = 50;
const RELOADS: usize = 20;

/// An echo server on PORT in a real server's namespace (a thread per connection; it ends
/// with the namespace).
pub(crate) fn echo_server(lab: &crate::lab::Lab, node: &str) {
    let ns = lab.netns(node).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let _ = ns.spawn(move || {
        let l = TcpListener::bind(("0.0.0.0", PORT)).expect("bind the echo port");
        ready_tx.send(()).unwrap();
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the echo server listens");
}

/// The configuration of round `k`: rs1 and rs2 always (weights vary), rs3 in odd rounds;
/// round `bad` is invalid (a weight out of range).
fn config(k: usize, bad: usize) -> String {
    let mut s = String::from(
        "network = nat\nnat_router = 10.2.0.254 eth1:1\n\
         virtual echo {\n    active = 1\n    address = 10.1.0.100 eth0:1\n    port = 7000\n\
         \x20   protocol = tcp\n    scheduler = wlc\n",
    );
    let mut servers = vec![(1, 1 + k % 3), (2, 1)];
    if k % 2 == 1 {
        servers.push((3, 2));
    }
    for (i, w) in servers {
        let w = if k == bad && i == 2 { 70_000 } else { w };
        s += &format!(
            "    server rs{i} {{\n        address = {}\n        active = 1\n        weight = {w}\n    }}\n",
            lab::rs_addr(i)
        );
    }
    s + "}\n"
}

#[test]
fn fifty_streams_survive_twenty_reloads_and_an_invalid_file() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    for i in 1..=3 {
        echo_server(&lab, &format!("rs{i}"));
    }
    let bad = 7;
    let director = Director::start(&lab, "reload", &config(0, bad));
    let cf = lab.info().workdir().join("reload.cf");
    let control = director.control().to_path_buf();
    let outcome = lab
        .run("client", || {
            let mut conns: Vec<TcpStream> = (0..CONNS)
                .map(|_| {
                    let s = TcpStream::connect_timeout(
                        &SocketAddr::from((lab::VIP, PORT)),
                        Duration::from_secs(5),
                    )
                    .expect("a connection through the VIP");
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    s
                })
                .collect();
            let mut results = Vec::new();
            let mut sent = 0u64;
            for k in 1..=RELOADS {
                std::fs::write(&cf, config(k, bad)).unwrap();
                results.push(rvs::daemon::control_request(&control, "reload"));
                // Every connection streams a chunk and gets it back intact.
                for (c, s) in conns.iter_mut().enumerate() {
                    let chunk: Vec<u8> = (0..1024).map(|b| (b + c + k) as u8).collect();
                    s.write_all(&chunk)
                        .unwrap_or_else(|e| panic!("round {k}, connection {c}: write: {e}"));
                    let mut back = vec![0u8; chunk.len()];
                    s.read_exact(&mut back)
                        .unwrap_or_else(|e| panic!("round {k}, connection {c}: read: {e}"));
                    assert_eq!(back, chunk, "round {k}, connection {c}");
                    sent += chunk.len() as u64;
                }
            }
            // Still open, every one: count them in the daemon's table before closing.
            let table = rvs::daemon::request_listing(&control, &["-c"]).unwrap();
            (results, sent, table)
        })
        .unwrap();
    let (results, sent, table) = outcome;
    let established = table.lines().filter(|l| l.contains("ESTABLISHED")).count();
    assert_eq!(established, CONNS, "{table}");
    assert_eq!(sent, (CONNS * RELOADS * 1024) as u64);
    for (k, r) in results.iter().enumerate() {
        let round = k + 1;
        if round == bad {
            let e = r
                .as_ref()
                .expect_err("the invalid file is refused")
                .to_string();
            assert!(e.contains("reload.cf:") && e.contains("weight"), "{e}");
        } else {
            let msg = r.as_ref().unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(msg.starts_with("reloaded "), "{msg}");
        }
    }
    // The last file (round 20: rs1, rs2) is what runs now.
    let listing = director.listing(&[]);
    assert!(
        !listing.contains(&format!("{}:7000", lab::rs_addr(3))),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("{}:7000", lab::rs_addr(1))),
        "{listing}"
    );
}

/// SIGHUP reloads the file (read on a control thread, installed by the worker) and logs
/// the outcome; a file that does not validate is refused and the running one stays.
#[test]
fn sighup_reloads_the_file_and_logs_the_outcome() {
    use crate::cluster::{Virtual, lvs_cf};
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        ..LabOptions::default()
    });
    let d = Director::start(
        &lab,
        "hup",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 2)]),
    );
    let servers = |d: &Director| d.listing(&[]).matches("  -> ").count() - 1;
    assert_eq!(servers(&d), 2, "{}", d.listing(&[]));
    let cf = lab.info().workdir().join("hup.cf");
    let hup = |pid: u32| {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP {pid}");
    };
    std::fs::write(
        &cf,
        lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]),
    )
    .unwrap();
    hup(d.pid());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while servers(&d) != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "not reloaded on SIGHUP:\n{}\n{}",
            d.listing(&[]),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains("SIGHUP") && l.contains("reloaded")),
        "{}",
        d.log()
    );
    // An invalid file: refused, logged, the three real servers stay.
    std::fs::write(&cf, "virtual broken {\n").unwrap();
    hup(d.pid());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !d.log().contains("reload refused") {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(servers(&d), 3, "{}", d.listing(&[]));
}
