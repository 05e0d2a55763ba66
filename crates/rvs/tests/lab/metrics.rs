//! The Prometheus endpoint of a running daemon (`--metrics ADDR:PORT`): served from the
//! director's namespace, counting the requests that went through the VIP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::cluster::{Virtual, lvs_cf};
use crate::harness::{Http, lab};
use crate::lab::{self, LabOptions, Method};

fn get(path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], 9100)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

#[test]
fn metrics_endpoint_counts_connections_per_real_server() {
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
        page.contains("Content-Type: text/plain; version=0.0.4"),
        "{page}"
    );
    for i in 1..=3 {
        let line = format!(
            "rvs_real_server_connections_total{{service=\"TCP 10.1.0.100:80\",real_server=\"{}:80\"}} 3\n",
            lab::rs_addr(i)
        );
        assert!(page.contains(&line), "{line} in\n{page}");
    }
    assert!(page.contains("rvs_service_connections_total{service=\"TCP 10.1.0.100:80\"} 9\n"));
    let missing = lab.run("director", || get("/other")).unwrap().unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
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
