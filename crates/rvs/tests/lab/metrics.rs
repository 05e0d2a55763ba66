//! The Prometheus endpoint of a running daemon (`--metrics ADDR:PORT`): served from the
//! director's namespace, counting the requests that went through the VIP, and the
//! endpoint's limits (request head size, connections, time, methods).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cluster::{Virtual, lvs_cf};
use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

const METRICS: ([u8; 4], u16) = ([127, 0, 0, 1], 9100);

/// One request (`METHOD PATH`, `Connection: close`) and the whole answer, waiting up to
/// `wait` for it.
fn request(method: &str, path: &str, wait: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from(METRICS), Duration::from_secs(2))?;
    s.set_read_timeout(Some(wait))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

fn get(path: &str) -> std::io::Result<String> {
    request("GET", path, Duration::from_secs(5))
}

/// A NAT lab with one 3-server service and a daemon serving metrics on 127.0.0.1:9100 in
/// the director's namespace, ready (a scrape answered). Returns the lab and the daemon's pid.
fn daemon_with_metrics() -> (Lab, u32, PathBuf) {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        ..LabOptions::default()
    });
    let wd = lab.info().workdir();
    let cf = wd.join("metrics.cf");
    std::fs::write(
        &cf,
        lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]),
    )
    .unwrap();
    let control = wd.join("metrics.ctl");
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
                "--log-format".as_ref(),
                "json".as_ref(),
            ],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.run("director", || get("/metrics")).unwrap().is_err() {
        assert!(
            Instant::now() < deadline,
            "metrics endpoint:\n{}",
            lab.log_tail(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // nanny admits each real server after its first good check: wait until all three are
    // in the table, so that rr spreads what follows evenly (a CI run saw 4/4/1 when rs3's
    // first check came after most of the requests).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listing = rvs::daemon::request_listing(&control, &[]).unwrap_or_default();
        let servers = listing
            .lines()
            .filter(|l| l.trim_start().starts_with("-> 10.2.0."))
            .filter(|l| l.split_whitespace().nth(3) == Some("1"))
            .count();
        if servers == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "three real servers in the table:\n{listing}\n{}",
            lab.log_tail(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (lab, pid, control)
}

/// `n` requests through the VIP from the client, each answered within a second.
fn requests_through_vip(lab: &Lab, n: usize) {
    lab.run("client", || {
        for _ in 0..n {
            let t = Instant::now();
            Http::connect(SocketAddr::from((lab::VIP, 80)))
                .and_then(|mut h| h.get("/"))
                .expect("a request through the VIP");
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "a request through the VIP took {:?}",
                t.elapsed()
            );
        }
    })
    .unwrap();
}

/// What `promtool check metrics` (Debian package `prometheus`) says about `text`: its
/// output, empty when the text passes with no warnings.
fn promtool_check_metrics(text: &str) -> String {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said
    } else {
        format!("exit {}: {said}", out.status)
    }
}

#[test]
fn metrics_endpoint_counts_connections_per_real_server() {
    let (lab, pid, _) = daemon_with_metrics();
    lab.run("client", || {
        for _ in 0..9 {
            Http::connect(SocketAddr::from((lab::VIP, 80)))
                .and_then(|mut h| h.get("/"))
                .expect("a request through the VIP");
        }
    })
    .unwrap();
    let page = lab.run("director", || get("/metrics")).unwrap().unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("\r\ncontent-type: text/plain; version=0.0.4"),
        "{page}"
    );
    for i in 1..=3 {
        let line = format!(
            "rvs_real_server_connections_total{{protocol=\"tcp\",address=\"10.1.0.100\",port=\"80\",real_server=\"{}:80\"}} 3\n",
            lab::rs_addr(i)
        );
        assert!(page.contains(&line), "{line} in\n{page}");
    }
    assert!(page.contains(
        "rvs_service_connections_total{protocol=\"tcp\",address=\"10.1.0.100\",port=\"80\"} 9\n"
    ));
    assert!(
        page.contains(&format!(
            "rvs_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{page}"
    );
    // Prometheus's own linter finds nothing to say about a real scrape.
    let body = &page[page.find("\r\n\r\n").expect("a head") + 4..];
    let lint = promtool_check_metrics(body);
    assert!(lint.is_empty(), "promtool check metrics:\n{lint}");
    let missing = lab.run("director", || get("/other")).unwrap().unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // GET and HEAD only.
    let head = lab
        .run("director", || {
            request("HEAD", "/metrics", Duration::from_secs(5))
        })
        .unwrap()
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body after HEAD: {head}");
    for method in ["POST", "PUT", "DELETE"] {
        let refused = lab
            .run("director", || {
                request(method, "/metrics", Duration::from_secs(5))
            })
            .unwrap()
            .unwrap();
        assert!(refused.starts_with("HTTP/1.1 405"), "{method}: {refused}");
        assert!(
            refused.to_ascii_lowercase().contains("allow: get,head"),
            "{method}: {refused}"
        );
    }
    // Structured logs on request: one JSON object per line.
    let log = lab.log_tail(pid);
    let started = log
        .lines()
        .find(|l| l.contains("director started"))
        .unwrap_or_else(|| panic!("a start line in\n{log}"));
    assert!(
        started.starts_with('{')
            && started.contains("\"message\":\"director started\"")
            && started.contains("\"services\":1")
            && started.contains("\"metrics\":\"http://127.0.0.1:9100/metrics\"")
            && started.contains("\"level\":\"INFO\""),
        "{started}"
    );
}

/// A request head of 10 MB (one header line) is refused after the endpoint's 16 KiB
/// limit, while scrapes and forwarding carry on.
#[test]
fn a_ten_megabyte_header_line_is_refused_without_stalling_anything() {
    let (lab, pid, _) = daemon_with_metrics();
    let mut big = lab
        .run("director", || {
            TcpStream::connect_timeout(&SocketAddr::from(METRICS), Duration::from_secs(2))
        })
        .unwrap()
        .unwrap();
    big.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sender = std::thread::spawn(move || {
        let t = Instant::now();
        let mut head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        head.resize(head.len() + 10 * 1024 * 1024, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        let mut sent = 0;
        let mut write_error = None;
        for chunk in head.chunks(64 * 1024) {
            match big.write_all(chunk) {
                Ok(()) => sent += chunk.len(),
                Err(e) => {
                    write_error = Some(e);
                    break;
                }
            }
        }
        let mut answer = Vec::new();
        let _ = big.read_to_end(&mut answer);
        (
            sent,
            head.len(),
            write_error,
            String::from_utf8_lossy(&answer).into_owned(),
            t.elapsed(),
        )
    });
    // Meanwhile: scrapes answer and connections through the VIP are forwarded.
    for _ in 0..5 {
        let t = Instant::now();
        let page = lab.run("director", || get("/metrics")).unwrap().unwrap();
        assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        requests_through_vip(&lab, 3);
    }
    let (sent, total, write_error, answer, took) = sender.join().unwrap();
    // Refused: a 431 answer, or the connection closed before the head was taken whole.
    assert!(
        answer.starts_with("HTTP/1.1 431") || (write_error.is_some() && sent < total),
        "sent {sent} of {total} bytes ({write_error:?}) in {took:?}, answer {answer:?}\n{}",
        lab.log_tail(pid)
    );
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
}

/// 100 connections that send nothing do not hold up a scrape; the endpoint closes them
/// when no request head arrived in its 5 s.
#[test]
fn idle_connections_do_not_block_a_scrape_and_are_closed() {
    let (lab, pid, _) = daemon_with_metrics();
    let idle: Vec<TcpStream> = lab
        .run("director", || {
            (0..100)
                .map(|_| {
                    TcpStream::connect_timeout(&SocketAddr::from(METRICS), Duration::from_secs(2))
                })
                .collect::<std::io::Result<_>>()
        })
        .unwrap()
        .unwrap();
    let opened = Instant::now();
    let t = Instant::now();
    let page = lab.run("director", || get("/metrics")).unwrap().unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "a scrape behind 100 idle connections took {:?}",
        t.elapsed()
    );
    requests_through_vip(&lab, 3);
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 512];
        // Closed by the endpoint: end of stream (hyper may first answer 408).
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "an idle connection still open after {:?}: {e}\n{}",
                    opened.elapsed(),
                    lab.log_tail(pid)
                ),
            }
        }
    }
    let closed = opened.elapsed();
    assert!(
        closed >= Duration::from_secs(4) && closed < Duration::from_secs(15),
        "idle connections closed after {closed:?}"
    );
}

/// At most 256 connections are served at once: with 300 idle ones open, a scrape waits in
/// the listen backlog until the head timeout (5 s) frees slots, and is answered then.
#[test]
fn connections_beyond_the_bound_wait_for_a_slot() {
    let (lab, _pid, _) = daemon_with_metrics();
    // The head timeout runs from each connection's accept, so slots free 5 s after the
    // first idle connection opened, however long opening the 300 took.
    let first_opened = Instant::now();
    let idle: Vec<TcpStream> = lab
        .run("director", || {
            (0..300)
                .map(|_| {
                    TcpStream::connect_timeout(&SocketAddr::from(METRICS), Duration::from_secs(2))
                })
                .collect::<std::io::Result<_>>()
        })
        .unwrap()
        .unwrap();
    let t = Instant::now();
    let page = lab
        .run("director", || {
            request("GET", "/metrics", Duration::from_secs(15))
        })
        .unwrap()
        .unwrap();
    let waited = t.elapsed();
    let since_first = first_opened.elapsed();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        since_first >= Duration::from_millis(4500) && waited < Duration::from_secs(12),
        "a scrape behind 300 idle connections answered after {waited:?} \
         ({since_first:?} after the first idle connection opened)"
    );
    // Forwarding never waited.
    requests_through_vip(&lab, 3);
    drop(idle);
}

/// Per thread of `pid`: thread id, name, scheduling policy and nice value
/// (/proc/PID/task/TID/stat fields 41 and 19).
fn thread_scheduling(pid: u32) -> Vec<(u32, String, u32, i32)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = t.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the parenthesised name, from field 3 (state) on.
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        out.push((
            dir.file_name().unwrap().to_str().unwrap().parse().unwrap(),
            comm.trim().to_string(),
            rest[41 - 3].parse().unwrap(),
            rest[19 - 3].parse().unwrap(),
        ));
    }
    out
}

/// The metrics endpoint's threads (its own and the blocking threads that render) and the
/// control socket's run SCHED_BATCH with a nice value 10 above the daemon's; the
/// forwarding worker (the main thread) does not. The scrape reports what its render took.
#[test]
fn control_and_metrics_threads_run_behind_forwarding() {
    let (lab, pid, _) = daemon_with_metrics();
    let page = lab.run("director", || get("/metrics")).unwrap().unwrap();
    let took = page
        .lines()
        .find_map(|l| l.strip_prefix("rvs_metrics_render_seconds "))
        .unwrap_or_else(|| panic!("rvs_metrics_render_seconds in\n{page}"));
    let took: f64 = took.parse().unwrap();
    assert!(took > 0.0 && took < 5.0, "{took}");
    const SCHED_BATCH: u32 = 3;
    let threads = thread_scheduling(pid);
    let main = threads
        .iter()
        .find(|t| t.0 == pid)
        .unwrap_or_else(|| panic!("the main thread in {threads:?}"));
    assert_ne!(main.2, SCHED_BATCH, "{threads:?}");
    let want_nice = (main.3 + 10).min(19);
    let lowered: Vec<_> = threads
        .iter()
        .filter(|t| {
            [
                "rvs-metrics",
                "rvs-metrics-blk",
                "rvs-ctl-accept",
                "rvs-refresh",
            ]
            .contains(&t.1.as_str())
        })
        .collect();
    for name in [
        "rvs-metrics",
        "rvs-metrics-blk",
        "rvs-ctl-accept",
        "rvs-refresh",
    ] {
        assert!(lowered.iter().any(|t| t.1 == name), "{name} in {threads:?}");
    }
    for t in &lowered {
        assert_eq!((t.2, t.3), (SCHED_BATCH, want_nice), "{t:?} in {threads:?}");
    }
    // Nothing else is lowered: the worker, the health monitor, the failover thread keep
    // the daemon's scheduling.
    for t in threads.iter().filter(|t| !lowered.contains(t)) {
        assert_ne!(t.2, SCHED_BATCH, "{t:?} in {threads:?}");
    }
}
