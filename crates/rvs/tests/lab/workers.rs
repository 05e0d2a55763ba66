//! `rvs daemon --workers 2`: two forwarding workers behind one fanout group per interface.
//! NAT connections from many client ports all succeed and both workers forward some of
//! them (`rvs_worker_frames_total`), the listing's connection counts are the sums over the
//! workers (equal to the rows of `-L -c`, which lists both tables), a reload that quiesces
//! a real server reaches both workers, DR works, and what the slice cannot do yet is
//! refused at start.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cluster::{Virtual, lvs_cf};
use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

const METRICS: ([u8; 4], u16) = ([127, 0, 0, 1], 9100);

fn scrape(lab: &Lab) -> String {
    lab.run("director", || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::from(METRICS), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    })
    .unwrap()
    .expect("a metrics scrape")
}

/// `rvs_worker_frames_total` of workers 0 and 1.
fn worker_frames(lab: &Lab) -> [u64; 2] {
    let text = scrape(lab);
    let get = |w: usize| {
        let name = format!("rvs_worker_frames_total{{worker=\"{w}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(name.as_str()))
            .unwrap_or_else(|| panic!("{name} in the metrics:\n{text}"))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    [get(0), get(1)]
}

/// Per real server of the listing: (address, weight, active, inactive).
fn servers(control: &Path) -> Vec<(String, u32, u64, u64)> {
    rvs::daemon::request_listing(control, &[])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 6 && w[0] == "->" && w[1].starts_with("10.2.0.")).then(|| {
                (
                    w[1].to_string(),
                    w[3].parse().unwrap(),
                    w[4].parse().unwrap(),
                    w[5].parse().unwrap(),
                )
            })
        })
        .collect()
}

/// Start `rvs daemon --workers 2` on `cf` with metrics; wait (bounded) until the listing
/// shows `weights` for the real servers in order.
fn daemon(lab: &Lab, cf: &Path, weights: &[u32]) -> (u32, PathBuf) {
    let control = lab.info().workdir().join("workers.ctl");
    let pid = lab
        .spawn(
            "director",
            crate::harness::rvs_exe(),
            [
                "daemon".as_ref(),
                "-c".as_ref(),
                cf.as_os_str(),
                "--control".as_ref(),
                control.as_os_str(),
                "--metrics".as_ref(),
                "127.0.0.1:9100".as_ref(),
                "--workers".as_ref(),
                "2".as_ref(),
            ],
        )
        .unwrap();
    wait_weights(lab, pid, &control, weights);
    (pid, control)
}

fn wait_weights(lab: &Lab, pid: u32, control: &Path, weights: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = servers(control);
        if s.iter().map(|s| s.1).collect::<Vec<_>>() == weights {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "weights {weights:?} in the listing: {s:?}\n{}",
            lab.log_tail(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` requests through the VIP, each on a new connection (a new client port).
fn requests(lab: &Lab, n: usize) {
    lab.run("client", || {
        for i in 0..n {
            let r = Http::connect_timeout(SocketAddr::from((lab::VIP, 80)), Duration::from_secs(3))
                .and_then(|mut h| h.get("/"));
            let r = r.unwrap_or_else(|e| panic!("request {i} through the VIP: {e}"));
            assert_eq!(r.status, 200, "request {i}");
        }
    })
    .unwrap();
}

fn with_weight(cf: &str, server: &str, weight: u32) -> String {
    let at = cf.find(&format!("server {server} {{")).expect("the server");
    let (head, tail) = cf.split_at(at);
    format!(
        "{head}{}",
        tail.replacen("weight = 1", &format!("weight = {weight}"), 1)
    )
}

#[test]
fn nat_spreads_over_two_workers_and_the_listing_sums_them() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        ..LabOptions::default()
    });
    let cf = lab.info().workdir().join("workers.cf");
    let text = lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]);
    std::fs::write(&cf, &text).unwrap();
    let (pid, control) = daemon(&lab, &cf, &[1, 1, 1]);

    let before = worker_frames(&lab);
    requests(&lab, 60);
    let after = worker_frames(&lab);
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "both workers forwarded frames: before {before:?}, after {after:?}"
    );
    // The listing's counts are the sums over both workers' tables: the same as the rows of
    // `-L -c` (both tables), and more than one worker's share of the 60.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed: u64 = servers(&control).iter().map(|s| s.2 + s.3).sum();
        let rows = rvs::daemon::request_listing(&control, &["-c"])
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("TCP"))
            .count() as u64;
        if listed == rows && listed >= 45 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listing {listed} connections, -L -c {rows} rows (60 made)\n{}",
            lab.log_tail(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A reload that quiesces rs3 reaches both workers: no new connection goes to it.
    std::fs::write(&cf, with_weight(&text, "rs3", 0)).unwrap();
    rvs::daemon::control_request(&control, "reload").unwrap();
    wait_weights(&lab, pid, &control, &[1, 1, 0]);
    let base: Vec<u64> = servers(&control).iter().map(|s| s.2 + s.3).collect();
    let frames = worker_frames(&lab);
    requests(&lab, 40);
    let now: Vec<u64> = servers(&control).iter().map(|s| s.2 + s.3).collect();
    let after = worker_frames(&lab);
    assert!(
        after[0] > frames[0] && after[1] > frames[1],
        "both workers forwarded after the reload: {frames:?} → {after:?}"
    );
    assert!(
        now[2] <= base[2],
        "rs3 quiesced on both workers: {base:?} → {now:?}"
    );
    assert!(
        now[0] > base[0] && now[1] > base[1],
        "rs1 and rs2 took the new connections: {base:?} → {now:?}"
    );

    // A reload that brings in what the slice cannot do yet is refused, loudly, and the
    // running table stays.
    let mut v = Virtual::rr(lab::VIP.into(), 8080, 2);
    v.persistent = Some(300);
    let listing = rvs::daemon::request_listing(&control, &[]).unwrap();
    std::fs::write(
        &cf,
        lvs_cf(
            Method::Nat,
            &[Virtual::rr(lab::VIP.into(), 80, 3), v.clone()],
        ),
    )
    .unwrap();
    let e = rvs::daemon::control_request(&control, "reload")
        .expect_err("a persistent service reloaded under --workers 2");
    assert!(
        e.to_string().contains("--workers 2: persistent services"),
        "{e}"
    );
    assert_eq!(
        rvs::daemon::request_listing(&control, &[]).unwrap(),
        listing,
        "the running table stays"
    );

    // What the slice cannot do yet is refused at start, loudly.
    let persistent = lab.info().workdir().join("persistent.cf");
    std::fs::write(&persistent, lvs_cf(Method::Nat, &[v])).unwrap();
    let refused = lab.exec(
        "director",
        "timeout",
        [
            "20",
            crate::harness::rvs_exe().to_str().unwrap(),
            "daemon",
            "-c",
            persistent.to_str().unwrap(),
            "--control",
            lab.info().workdir().join("refused.ctl").to_str().unwrap(),
            "--workers",
            "2",
        ],
    );
    // `exec` fails on a non-zero exit, with the stderr in its message.
    let err = match refused {
        Ok(out) => panic!(
            "a persistent service with --workers 2 was accepted: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("--workers 2: persistent services (service TCP")
            && err.contains("10.1.0.100:8080)")
            && err.contains("does not work with more than one worker yet"),
        "{err}"
    );
}

#[test]
fn dr_spreads_over_two_workers() {
    let lab = lab(LabOptions {
        method: Method::Dr,
        ipv6: false,
        ..LabOptions::default()
    });
    let cf = lab.info().workdir().join("workers.cf");
    std::fs::write(
        &cf,
        lvs_cf(Method::Dr, &[Virtual::rr(lab::VIP.into(), 80, 3)]),
    )
    .unwrap();
    let (pid, control) = daemon(&lab, &cf, &[1, 1, 1]);
    let before = worker_frames(&lab);
    requests(&lab, 40);
    let after = worker_frames(&lab);
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "both workers forwarded frames: before {before:?}, after {after:?}\n{}",
        lab.log_tail(pid)
    );
    let listed: u64 = servers(&control).iter().map(|s| s.2 + s.3).sum();
    assert!(listed >= 30, "connections listed: {listed}");
}
