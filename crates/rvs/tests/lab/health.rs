//! Health monitoring on a live lab (issue 5): checks drive the weights the engine forwards
//! with, under load, against real servers that fail in the ways operators see — a stopped
//! nginx, a server answering the wrong text, a changed page, a dynamic weight, every server
//! down (sorry server and quorum scripts), a real server that no longer answers for the VIP
//! (DR checks through the forwarding path), and 1,000 real servers checked every second.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{Director, get_name, spread};
use crate::harness::{lab, rvs_exe};
use crate::lab::{self, Httpd, Lab, LabOptions, Method};

/// One row of `rvs list --health`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    up: bool,
    weight: u32,
    configured: u32,
    last: String,
}

/// `rvs list --health`, keyed by real server (`addr:port`).
fn health(d: &Director<'_>) -> BTreeMap<String, Row> {
    let text = d.listing(&["--health"]);
    let mut rows = BTreeMap::new();
    for line in text.lines().skip(1) {
        // "TCP  10.1.0.100:80   10.2.0.12:80   up   1   1   5/0   -"
        let w: Vec<&str> = line.split_whitespace().collect();
        let at = 2;
        if w.len() < at + 5 {
            continue;
        }
        rows.insert(
            w[at].to_string(),
            Row {
                up: w[at + 1] == "up",
                weight: w[at + 2].parse().unwrap_or(u32::MAX),
                configured: w[at + 3].parse().unwrap_or(u32::MAX),
                last: w[at + 5..].join(" "),
            },
        );
    }
    rows
}

/// Polls until `pred` holds for the health rows (bounded); returns how long it took.
fn wait_health(
    d: &Director<'_>,
    limit: Duration,
    what: &str,
    pred: impl Fn(&BTreeMap<String, Row>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let rows = health(d);
        if pred(&rows) {
            // `list --health` is the monitor's view, read without the data plane; the
            // worker installs a decision in its next round (at most ~50 ms when idle). A
            // listing is answered by the worker after that round's housekeeping, so once it
            // returns the engine forwards as the health listing said.
            d.listing(&[]);
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; health now {rows:#?}\n{}",
            d.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn rs(i: usize, port: u16) -> String {
    format!("{}:{port}", lab::rs_addr(i))
}

/// Real-server lines of `rvs list` (ipvsadm -L -n): `addr:port` → weight.
fn weights(d: &Director<'_>) -> BTreeMap<String, u32> {
    d.listing(&[])
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("-> ")?;
            let w: Vec<&str> = rest.split_whitespace().collect();
            Some((w[0].to_string(), w.get(2)?.parse().ok()?))
        })
        .collect()
}

/// An nginx answering `NAME\n` on port 80 in `node`; its pid.
fn nginx(lab: &Lab, node: &str) -> u32 {
    nginx_on(lab, node, 80)
}

/// An nginx answering `NAME\n` on `port` in `node`; its pid.
fn nginx_on(lab: &Lab, node: &str, port: u16) -> u32 {
    let wd = lab.info().workdir();
    let conf = wd.join(format!("{node}-health-nginx-{port}.conf"));
    let w = wd.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes 1; pid {w}/{node}-health-nginx-{port}.pid;\n\
             error_log {w}/{node}-health-nginx-{port}.err;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off;\n\
             server {{ listen {port} backlog=4096;\n\
             location / {{ return 200 \"{node}\\n\"; }} }} }}\n"
        ),
    )
    .unwrap();
    let pid = lab
        .spawn(
            node,
            "nginx",
            [std::ffi::OsStr::new("-c"), conf.as_os_str()],
        )
        .unwrap();
    lab.wait_listening(node, pid, port, Duration::from_secs(10))
        .unwrap();
    pid
}

/// `rvs httpd` answering `NAME\n` on `port` in `node`; its pid.
fn httpd(lab: &Lab, node: &str, port: u16, name: &str) -> u32 {
    let listen = format!("0.0.0.0:{port}");
    let pid = lab
        .spawn(
            node,
            rvs_exe(),
            ["httpd", "--listen", listen.as_str(), "--name", name],
        )
        .unwrap();
    lab.wait_listening(node, pid, port, Duration::from_secs(10))
        .unwrap();
    pid
}

/// A TCP server in `node` on `port` answering every connection with whatever `page` holds
/// at that moment (as an HTTP/1.0 response when `http`), then closing. Ends with the lab.
fn page_server(lab: &Lab, node: &str, port: u16, page: Arc<Mutex<String>>, http: bool) {
    let ns = lab.netns(node).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let _ = ns.spawn(move || {
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind the page port");
        ready_tx.send(()).unwrap();
        for s in l.incoming().flatten() {
            let page = Arc::clone(&page);
            thread::spawn(move || {
                let mut s = s;
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let body = page.lock().unwrap().clone();
                let reply = if http {
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    body
                };
                let _ = s.write_all(reply.as_bytes());
            });
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the page server listens");
}

fn nat_lab(real_servers: usize) -> Lab {
    lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers,
        httpd: Httpd::None,
        ..LabOptions::default()
    })
}

/// lvs.cf for one NAT virtual on port 80 with `servers` (index, weight) and `extra` keys.
fn nat_cf(servers: &[(usize, u32)], extra: &str) -> String {
    let mut s = format!(
        "network = nat\nnat_router = {} eth1:1\n\
         virtual web {{\n    active = 1\n    address = {} eth0:1\n    port = 80\n\
         \x20   protocol = tcp\n    scheduler = rr\n{extra}",
        lab::NAT_ROUTER,
        lab::VIP
    );
    for (i, w) in servers {
        s += &format!(
            "    server rs{i} {{\n        address = {}\n        active = 1\n        weight = {w}\n    }}\n",
            lab::rs_addr(*i)
        );
    }
    s + "}\n"
}

/// wrk's counts: (requests completed, failed requests: socket errors + non-2xx).
pub(crate) fn wrk_counts(out: &str) -> (u64, u64) {
    let mut done = 0;
    let mut failed = 0;
    for l in out.lines() {
        let l = l.trim();
        if let Some(n) = l
            .split(" requests in ")
            .next()
            .filter(|_| l.contains(" requests in "))
        {
            done = n.trim().parse().unwrap_or(0);
        }
        if let Some(rest) = l.strip_prefix("Socket errors:") {
            failed += rest
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        if let Some(rest) = l.strip_prefix("Non-2xx or 3xx responses:") {
            failed += rest.trim().parse::<u64>().unwrap_or(0);
        }
    }
    (done, failed)
}

/// Stop nginx on rs2 while wrk runs through the VIP: rs2 is removed within interval × fall
/// (plus one check timeout), then gets no request; restarted, it is re-admitted after `rise`
/// good checks with its weight ramping up (nanny's slow start). The failed requests of the
/// window are counted and reported.
#[test]
fn stopped_nginx_is_removed_under_load_and_readmitted_with_slow_start() {
    let lab = nat_lab(3);
    nginx(&lab, "rs1");
    let rs2_pid = nginx(&lab, "rs2");
    nginx(&lab, "rs3");
    // nanny: checks every `timeout` = 1 s, re-admission after reentry / timeout = 2 good ones.
    let cf = nat_cf(
        &[(1, 1), (2, 64), (3, 1)],
        "    timeout = 1\n    reentry = 2\n",
    );
    let d = Director::start(&lab, "health-nginx", &cf);
    d.wait_http(lab::VIP.into());
    wait_health(&d, Duration::from_secs(5), "all up", |r| {
        r.len() == 3 && r.values().all(|x| x.up)
    });

    let url = format!("http://{}/", lab::VIP);
    let (detect, text) = thread::scope(|sc| {
        let wrk = sc.spawn(|| {
            lab.exec(
                "client",
                "wrk",
                ["-t1", "-c8", "-d8s", "--timeout", "2s", url.as_str()],
            )
        });
        thread::sleep(Duration::from_secs(2));
        let killed = Instant::now();
        lab.stop(rs2_pid).unwrap();
        wait_health(&d, Duration::from_secs(5), "rs2 down", |r| {
            r.get(&rs(2, 80)).is_some_and(|x| !x.up)
        });
        let detect = killed.elapsed();
        assert!(
            !weights(&d).contains_key(&rs(2, 80)),
            "a failed server is removed (no quiesce_server): {}",
            d.listing(&[])
        );
        let out = wrk.join().unwrap().unwrap();
        (detect, String::from_utf8_lossy(&out.stdout).into_owned())
    });
    // interval × fall = 1 s, plus the check's own timeout (1 s) in the worst case.
    assert!(
        detect <= Duration::from_millis(2_300),
        "rs2 was marked down {detect:?} after nginx stopped"
    );
    let (done, failed) = wrk_counts(&text);
    eprintln!(
        "health: nginx stopped under wrk: rs2 down after {detect:?}; {failed} of {done} \
         requests failed in the window\n{text}"
    );
    assert!(done > 1000, "wrk ran: {text}");
    // After the removal no request reaches rs2 and none fails.
    let after = spread(&lab, lab::VIP.into(), 60);
    assert_eq!(after.get("rs2"), None, "{after:?}");
    assert_eq!(after.values().sum::<usize>(), 60);

    // Restart: re-admitted after 2 good checks, weight 64 >> 5 = 2, doubling each second.
    nginx(&lab, "rs2");
    let mut seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Some(w) = weights(&d).get(&rs(2, 80)).copied()
            && seen.last() != Some(&w)
        {
            seen.push(w);
        }
        if seen.last() == Some(&64) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        seen,
        vec![2, 4, 8, 16, 32, 64],
        "slow start ramps rs2's weight up from 64 >> 5\n{}",
        d.log()
    );
    let back = spread(&lab, lab::VIP.into(), 30);
    assert!(back.get("rs2").is_some_and(|n| *n > 0), "{back:?}");
}

/// With `quiesce_server`, a failing server keeps its connections: a long download from it
/// finishes, intact, while it sits at weight 0 (visible in `ipvsadm -L -n`) and new
/// connections go elsewhere. The check is nanny's `send_program` with an exact expected
/// output, so the server fails its check without failing its clients.
#[test]
fn quiesced_server_finishes_open_connections() {
    let lab = nat_lab(3);
    for i in 1..=3 {
        httpd(&lab, &format!("rs{i}"), 80, &format!("rs{i}"));
    }
    let state = lab.info().workdir().join("health-state");
    std::fs::create_dir_all(&state).unwrap();
    for i in 1..=3 {
        std::fs::write(state.join(lab::rs_addr(i).to_string()), "ready\n").unwrap();
    }
    let extra = format!(
        "    timeout = 1\n    reentry = 1\n    quiesce_server = 1\n    send_program = \"cat {}/%h\"\n    expect = \"ready\"\n",
        state.display()
    );
    let d = Director::start(
        &lab,
        "health-quiesce",
        &nat_cf(&[(1, 1), (2, 1), (3, 1)], &extra),
    );
    d.wait_http(lab::VIP.into());
    wait_health(&d, Duration::from_secs(5), "all up", |r| {
        r.len() == 3 && r.values().all(|x| x.up)
    });

    // A slow 6 MB download; find one that landed on rs2 (rr: one of three in a row).
    let vip = SocketAddr::new(lab::VIP.into(), 80);
    const SIZE: usize = 6_000_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let (head, got) = thread::scope(|sc| {
        let reader = sc.spawn(|| {
            lab.run("client", move || -> Result<(String, usize), String> {
                for _ in 0..3 {
                    let mut s = std::net::TcpStream::connect_timeout(&vip, Duration::from_secs(2))
                        .map_err(|e| e.to_string())?;
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    write!(s, "GET /bytes/{SIZE} HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        s.read_exact(&mut b).map_err(|e| e.to_string())?;
                        head.push(b[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    if !head.contains("X-Real-Server: rs2") {
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink);
                        continue;
                    }
                    tx.send(()).unwrap();
                    let mut got = 0;
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) => return Err(format!("after {got} bytes: {e}")),
                        }
                        // About 1.5 MB/s: the download outlives the quiesce below.
                        thread::sleep(Duration::from_millis(10));
                    }
                    return Ok((head, got));
                }
                Err("no download landed on rs2".into())
            })
            .unwrap()
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a download from rs2 started");
        std::fs::write(state.join(lab::rs_addr(2).to_string()), "maintenance\n").unwrap();
        wait_health(&d, Duration::from_secs(4), "rs2 quiesced", |r| {
            r.get(&rs(2, 80)).is_some_and(|x| !x.up && x.weight == 0)
        });
        assert_eq!(weights(&d).get(&rs(2, 80)), Some(&0), "{}", d.listing(&[]));
        let during = spread(&lab, lab::VIP.into(), 30);
        assert_eq!(
            during.get("rs2"),
            None,
            "no new connection to a quiesced server"
        );
        reader.join().unwrap().unwrap()
    });
    assert_eq!(got, SIZE, "the open download finished intact ({head})");
    let row = &health(&d)[&rs(2, 80)];
    assert!(row.last.contains("maintenance"), "{row:?}");
    // The same in the metrics and the log.
    let text = rvs::daemon::control_request(d.control(), "metrics").unwrap();
    let key = format!(
        "rvs_health_real_server_up{{protocol=\"tcp\",address=\"{}\",port=\"80\",real_server=\"{}\"}} 0",
        lab::VIP,
        rs(2, 80)
    );
    assert!(text.contains(&key), "{key} in\n{text}");
    assert!(d.log().contains("real server down"), "{}", d.log());
    // Back in service.
    std::fs::write(state.join(lab::rs_addr(2).to_string()), "ready\n").unwrap();
    wait_health(&d, Duration::from_secs(5), "rs2 back", |r| {
        r.get(&rs(2, 80)).is_some_and(|x| x.up && x.weight == 1)
    });
}

/// A keepalived.conf with every server down brings the sorry server in and runs quorum_down
/// (as the user named after it, nobody, as keepalived's notify_script_init() reads it);
/// servers coming back run quorum_up and take the traffic again.
#[test]
fn all_down_sorry_server_answers_and_quorum_scripts_run() {
    let lab = nat_lab(3);
    let p1 = httpd(&lab, "rs1", 80, "rs1");
    let p2 = httpd(&lab, "rs2", 80, "rs2");
    httpd(&lab, "rs3", 80, "sorry");
    let wd = lab.info().workdir();
    // nobody appends to the log.
    std::fs::set_permissions(&wd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let log = wd.join("quorum.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let nobody = rvs_sys::process::user_by_name("nobody")
        .unwrap()
        .unwrap()
        .uid;
    let conf = format!(
        "{vrrp}virtual_server {vip} 80 {{\n  delay_loop 1\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n\
         \x20 quorum 2\n  hysteresis 0\n\
         \x20 quorum_up \"/bin/sh -c 'echo up >> {log}'\"\n\
         \x20 quorum_down \"/bin/sh -c 'echo down $(id -u) >> {log}'\" nobody\n\
         \x20 sorry_server {rs3} 80\n\
         \x20 real_server {rs1} 80 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n      retry 0\n    }}\n  }}\n\
         \x20 real_server {rs2} 80 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n      retry 0\n    }}\n  }}\n\
         }}\n",
        vrrp = keepalived_addresses(),
        vip = lab::VIP,
        log = log.display(),
        rs1 = lab::rs_addr(1),
        rs2 = lab::rs_addr(2),
        rs3 = lab::rs_addr(3),
    );
    let d = Director::start(&lab, "keepalived-sorry", &conf);
    d.wait_http(lab::VIP.into());
    let first = spread(&lab, lab::VIP.into(), 20);
    assert_eq!(first.get("sorry"), None, "{first:?}");
    lab.stop(p1).unwrap();
    // Quorum 2 with weights 1 + 1: one down already loses it, the sorry server comes in and
    // keepalived removes the remaining live server.
    wait_for(Duration::from_secs(5), "quorum_down ran", || {
        std::fs::read_to_string(&log).unwrap_or_default() == format!("down {nobody}\n")
    });
    wait_for(Duration::from_secs(3), "only the sorry server", || {
        weights(&d).keys().collect::<Vec<_>>() == vec![&rs(3, 80)]
    });
    let sorry = spread(&lab, lab::VIP.into(), 10);
    assert_eq!(sorry.get("sorry"), Some(&10), "{sorry:?}");
    // The control socket's `sorry` (the console's sorry state) names it.
    assert_eq!(
        rvs::daemon::control_request(d.control(), "sorry").unwrap(),
        format!("TCP  {}:80 {}\n", lab::VIP, rs(3, 80))
    );
    lab.stop(p2).unwrap();
    thread::sleep(Duration::from_millis(1500));
    let sorry = spread(&lab, lab::VIP.into(), 10);
    assert_eq!(
        sorry.get("sorry"),
        Some(&10),
        "still the sorry server: {sorry:?}"
    );
    // Both back: quorum_up once, the sorry server leaves.
    httpd(&lab, "rs1", 80, "rs1");
    httpd(&lab, "rs2", 80, "rs2");
    wait_for(Duration::from_secs(5), "quorum_up ran", || {
        std::fs::read_to_string(&log).unwrap_or_default() == format!("down {nobody}\nup\n")
    });
    wait_for(Duration::from_secs(3), "real servers back", || {
        let w = weights(&d);
        w.contains_key(&rs(1, 80)) && w.contains_key(&rs(2, 80)) && !w.contains_key(&rs(3, 80))
    });
    let back = spread(&lab, lab::VIP.into(), 20);
    assert_eq!(back.get("sorry"), None, "{back:?}");
    assert_eq!(
        rvs::daemon::control_request(d.control(), "sorry").unwrap(),
        ""
    );
    assert_eq!(back.get("rs1"), Some(&10), "{back:?}");
}

/// The VIP and the NAT router's floating address, as keepalived says which addresses a
/// director owns (a VRRP instance's virtual_ipaddress).
fn keepalived_addresses() -> String {
    format!(
        "vrrp_instance lab {{\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  \
         priority 100\n  virtual_ipaddress {{\n    {}/24 dev eth0\n    {}/24 dev eth1\n  }}\n}}\n",
        lab::VIP,
        lab::NAT_ROUTER
    )
}

fn wait_for(limit: Duration, what: &str, mut pred: impl FnMut() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// nanny's send/expect marks a server answering the wrong text down; keepalived's HTTP_GET
/// digest catches a changed page; MISC_CHECK with misc_dynamic sets the weight from the
/// program's exit status.
#[test]
fn send_expect_digest_and_misc_dynamic_decide() {
    let lab = nat_lab(3);
    // Port 7000: a line protocol; rs2 answers the wrong banner.
    let banners: Vec<Arc<Mutex<String>>> = ["+OK rs1\r\n", "-ERR busy\r\n", "+OK rs3\r\n"]
        .iter()
        .map(|b| Arc::new(Mutex::new(b.to_string())))
        .collect();
    for (i, b) in banners.iter().enumerate() {
        page_server(&lab, &format!("rs{}", i + 1), 7000, Arc::clone(b), false);
    }
    let cf = format!(
        "network = nat\nnat_router = {} eth1:1\n\
         virtual line {{\n    active = 1\n    address = {} eth0:1\n    port = 7000\n\
         \x20   protocol = tcp\n    scheduler = rr\n    timeout = 1\n    reentry = 1\n\
         \x20   send = \"PING\\r\\n\"\n    expect = \"+OK\"\n{}}}\n",
        lab::NAT_ROUTER,
        lab::VIP,
        (1..=3)
            .map(|i| format!(
                "    server rs{i} {{\n        address = {}\n        active = 1\n    }}\n",
                lab::rs_addr(i)
            ))
            .collect::<String>()
    );
    let d = Director::start(&lab, "health-expect", &cf);
    wait_health(&d, Duration::from_secs(5), "rs2 down, others up", |r| {
        r.get(&rs(1, 7000)).is_some_and(|x| x.up)
            && r.get(&rs(3, 7000)).is_some_and(|x| x.up)
            && r.get(&rs(2, 7000)).is_some_and(|x| !x.up)
    });
    let row = &health(&d)[&rs(2, 7000)];
    assert!(
        row.last.contains("expect") && row.last.contains("-ER"),
        "the reason quotes the reply: {row:?}"
    );
    assert!(!weights(&d).contains_key(&rs(2, 7000)));
    *banners[1].lock().unwrap() = "+OK rs2\r\n".into();
    wait_health(&d, Duration::from_secs(4), "rs2 up", |r| {
        r.get(&rs(2, 7000)).is_some_and(|x| x.up)
    });
    d.stop();

    // keepalived: HTTP_GET with a digest, and MISC_CHECK with misc_dynamic.
    let pages: Vec<Arc<Mutex<String>>> = (1..=2)
        .map(|i| Arc::new(Mutex::new(format!("page of rs{i}\n"))))
        .collect();
    for (i, p) in pages.iter().enumerate() {
        page_server(&lab, &format!("rs{}", i + 1), 8080, Arc::clone(p), true);
    }
    let exit_file = lab.info().workdir().join("misc-exit");
    std::fs::write(&exit_file, "12\n").unwrap();
    let digest = |s: &str| rvs_check::md5_hex(s.as_bytes());
    let conf = format!(
        "{vrrp}virtual_server {vip} 8080 {{\n  delay_loop 1\n  lvs_sched wrr\n  lvs_method NAT\n  protocol TCP\n\
         \x20 real_server {rs1} 8080 {{\n    weight 5\n    HTTP_GET {{\n      url {{\n        path /\n        digest {d1}\n      }}\n      connect_timeout 1\n      retry 0\n    }}\n  }}\n\
         \x20 real_server {rs2} 8080 {{\n    weight 5\n    HTTP_GET {{\n      url {{\n        path /\n        digest {d2}\n      }}\n      connect_timeout 1\n      retry 0\n    }}\n  }}\n\
         \x20 real_server {rs3} 8080 {{\n    weight 5\n    MISC_CHECK {{ misc_path \"/bin/sh -c 'exit $(cat {exit})'\"\n      misc_timeout 2\n      misc_dynamic\n    }}\n  }}\n\
         }}\n",
        vrrp = keepalived_addresses(),
        vip = lab::VIP,
        rs1 = lab::rs_addr(1),
        rs2 = lab::rs_addr(2),
        rs3 = lab::rs_addr(3),
        d1 = digest("page of rs1\n"),
        d2 = digest("page of rs2\n"),
        exit = exit_file.display(),
    );
    let d = Director::start(&lab, "keepalived-digest", &conf);
    wait_for(Duration::from_secs(5), "misc_dynamic weight 10", || {
        weights(&d).get(&rs(3, 8080)) == Some(&10)
    });
    assert_eq!(weights(&d).get(&rs(1, 8080)), Some(&5));
    assert_eq!(weights(&d).get(&rs(2, 8080)), Some(&5));
    // rs2's page changes: its digest check fails and it is removed.
    *pages[1].lock().unwrap() = "defaced\n".into();
    wait_for(
        Duration::from_secs(4),
        "rs2 removed on a digest mismatch",
        || !weights(&d).contains_key(&rs(2, 8080)),
    );
    let row = &health(&d)[&rs(2, 8080)];
    assert!(row.last.contains("digest"), "{row:?}");
    // Exit 1: rs3 down; exit 2: up at weight 0.
    std::fs::write(&exit_file, "1\n").unwrap();
    wait_for(Duration::from_secs(4), "misc exit 1 removes rs3", || {
        !weights(&d).contains_key(&rs(3, 8080))
    });
    std::fs::write(&exit_file, "2\n").unwrap();
    wait_for(Duration::from_secs(4), "misc exit 2 gives weight 0", || {
        weights(&d).get(&rs(3, 8080)) == Some(&0)
    });
}

/// DR checks through the forwarding path: a real server that lost the VIP from its loopback
/// still answers on its own address, but not for the VIP: `check_via_vip` catches it.
#[test]
fn dr_check_via_vip_catches_a_server_without_the_vip() {
    let lab = lab(LabOptions {
        method: Method::Dr,
        ipv6: false,
        real_servers: 3,
        httpd: Httpd::Builtin,
        ..LabOptions::default()
    });
    let cf = format!(
        "network = direct\n\
         virtual web {{\n    active = 1\n    address = {} eth0:1\n    port = 80\n\
         \x20   protocol = tcp\n    scheduler = rr\n    timeout = 1\n    reentry = 1\n\
         \x20   check_via_vip = 1\n{}}}\n",
        lab::VIP,
        (1..=3)
            .map(|i| format!(
                "    server rs{i} {{\n        address = {}\n        active = 1\n    }}\n",
                lab::rs_pub_addr(i)
            ))
            .collect::<String>()
    );
    let d = Director::start(&lab, "health-via-vip", &cf);
    d.wait_http(lab::VIP.into());
    let pub_rs = |i: usize| format!("{}:80", lab::rs_pub_addr(i));
    wait_health(&d, Duration::from_secs(5), "all up through the VIP", |r| {
        r.len() == 3 && r.values().all(|x| x.up)
    });
    // rs2 loses the VIP: it still serves on its own address, not for the VIP.
    let out = lab
        .exec(
            "rs2",
            "ip",
            ["addr", "del", &format!("{}/32", lab::VIP), "dev", "lo"],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let own = lab
        .run("director", || {
            get_name(
                SocketAddr::new(lab::rs_pub_addr(2).into(), 80),
                Duration::from_secs(1),
            )
        })
        .unwrap();
    assert_eq!(own.unwrap(), "rs2", "rs2 still answers on its own address");
    wait_health(
        &d,
        Duration::from_secs(5),
        "rs2 down through the VIP",
        |r| r.get(&pub_rs(2)).is_some_and(|x| !x.up) && r.get(&pub_rs(1)).is_some_and(|x| x.up),
    );
    let after = spread(&lab, lab::VIP.into(), 30);
    assert_eq!(after.get("rs2"), None, "{after:?}");
    assert_eq!(after.values().sum::<usize>(), 30);
    // The checks went through the engine, not around it.
    let text = rvs::daemon::control_request(d.control(), "metrics").unwrap();
    let probes: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("rvs_frames_total{kind=\"probe\"} ")?
                .parse()
                .ok()
        })
        .unwrap();
    assert!(probes >= 3, "probe frames forwarded: {probes}");
}

/// CPU time (user + system) of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the command.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The daemon's metric `name` (unlabelled).
fn metric(d: &Director<'_>, name: &str) -> u64 {
    let text = rvs::daemon::control_request(d.control(), "metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// A fractional metric's value (seconds).
fn metric_f64(d: &Director<'_>, name: &str) -> f64 {
    let text = rvs::daemon::control_request(d.control(), "metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// 1,000 real servers (addresses on one host) checked every second: the check rounds keep
/// their period (no drift: 1,000 rounds a second, each started close to when it was due) and
/// the director's CPU stays well under one core. Figures are printed for the record.
#[test]
fn a_thousand_servers_checked_every_second_without_drift() {
    let lab = nat_lab(1);
    // 10.2.4.0 .. 10.2.7.231 on rs1, reached through it.
    let addrs: Vec<Ipv4Addr> = (0..1000u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 2, 4, 0)) + i + 1))
        .collect();
    let batch: String = addrs
        .iter()
        .map(|a| format!("address add {a}/32 dev eth0\n"))
        .collect();
    let file = lab.info().workdir().join("addrs.batch");
    std::fs::write(&file, batch).unwrap();
    let out = lab
        .exec("rs1", "ip", ["-batch", file.to_str().unwrap()])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = lab
        .exec(
            "director",
            "ip",
            [
                "route",
                "add",
                "10.2.4.0/22",
                "via",
                &lab::rs_addr(1).to_string(),
            ],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // nginx with a deep accept queue: all 1,000 checks of a round arrive at once (keepalived
    // starts every checker at start-up unless told to warm up), and they all reach this one
    // host; resolve its address first so the first round's SYNs do not wait for ARP.
    nginx_on(&lab, "rs1", 9000);
    let out = lab
        .exec(
            "director",
            "ping",
            ["-c1", "-W2", &lab::rs_addr(1).to_string()],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut cf = format!(
        "network = nat\nnat_router = {} eth1:1\n\
         virtual many {{\n    active = 1\n    address = {} eth0:1\n    port = 9000\n\
         \x20   protocol = tcp\n    scheduler = wlc\n    timeout = 1\n    reentry = 1\n",
        lab::NAT_ROUTER,
        lab::VIP
    );
    for (i, a) in addrs.iter().enumerate() {
        cf += &format!("    server s{i} {{\n        address = {a}\n        active = 1\n    }}\n");
    }
    cf += "}\n";
    let d = Director::start(&lab, "health-thousand", &cf);
    wait_health(&d, Duration::from_secs(10), "1,000 servers up", |r| {
        r.len() == 1000 && r.values().all(|x| x.up)
    });
    let pid = pid_of(&d, &lab);
    let (c0, cpu0, t0) = (
        metric(&d, "rvs_health_check_lag_seconds_count"),
        cpu_time(pid),
        Instant::now(),
    );
    let lag0 = metric_f64(&d, "rvs_health_check_lag_seconds_sum");
    thread::sleep(Duration::from_secs(10));
    let (c1, cpu1, t1) = (
        metric(&d, "rvs_health_check_lag_seconds_count"),
        cpu_time(pid),
        Instant::now(),
    );
    let lag1 = metric_f64(&d, "rvs_health_check_lag_seconds_sum");
    let max_lag = metric_f64(&d, "rvs_health_check_lag_max_seconds");
    let rows = d.listing(&["--health"]);
    let failures: u64 = rows
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_whitespace()
                .nth(6)?
                .split('/')
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let wall = (t1 - t0).as_secs_f64();
    let rounds = (c1 - c0) as f64;
    let per_sec = rounds / wall;
    let cpu = (cpu1 - cpu0).as_secs_f64() / wall;
    let mean_lag_ms = (lag1 - lag0) / rounds * 1000.0;
    eprintln!(
        "health: 1,000 servers at 1 s: {per_sec:.0} check rounds/s, director CPU {:.1}% of a \
         core, start lag mean {mean_lag_ms:.2} ms, max {:.1} ms",
        cpu * 100.0,
        max_lag * 1000.0
    );
    // Every round of a second starts in one burst, so a window holds whole bursts: within
    // one burst (and 2 %) of 1,000 per second of the window.
    let expected = wall * 1000.0;
    assert!(
        (rounds - expected).abs() <= 1000.0 + 0.02 * expected,
        "1,000 servers at 1 s give 1,000 rounds a second, not {per_sec:.0}"
    );
    assert_eq!(failures, 0, "no check failed or timed out:\n{rows}");
    assert!(
        mean_lag_ms < 20.0,
        "rounds start on time: mean lag {mean_lag_ms:.2} ms"
    );
    assert!(cpu < 0.5, "the director used {:.0}% of a core", cpu * 100.0);
    assert!(health(&d).values().all(|x| x.up));
}

/// The daemon's pid from its pid file.
fn pid_of(_d: &Director<'_>, lab: &Lab) -> u32 {
    let p = lab.info().workdir().join("health-thousand.pid");
    std::fs::read_to_string(Path::new(&p))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// nanny's `load_monitor`: each real server's agent (`rvs realserver agent`) reports its load
/// and the director scales the weight within [weight, 4 × weight]: an idle server gets
/// 4 × weight, a loaded one keeps its weight, a server without an agent is left alone.
#[test]
fn load_monitor_weights_follow_the_agents() {
    let lab = nat_lab(3);
    for i in 1..=3 {
        httpd(&lab, &format!("rs{i}"), 80, &format!("rs{i}"));
    }
    let wd = lab.info().workdir();
    for (i, load) in [
        (1, "0.00 0.00 0.00 1/100 1\n"),
        (2, "3.00 2.00 1.00 2/100 1\n"),
    ] {
        let f = wd.join(format!("rs{i}.loadavg"));
        std::fs::write(&f, load).unwrap();
        let node = format!("rs{i}");
        let pid = lab
            .spawn(
                &node,
                rvs_exe(),
                [
                    "realserver".as_ref(),
                    "agent".as_ref(),
                    "--listen".as_ref(),
                    "0.0.0.0:5391".as_ref(),
                    "--load-file".as_ref(),
                    f.as_os_str(),
                ],
            )
            .unwrap();
        lab.wait_log(&node, pid, "5391", Duration::from_secs(5))
            .unwrap();
    }
    let cf = nat_cf(
        &[(1, 4), (2, 4), (3, 4)],
        "    scheduler = wrr\n    load_monitor = uptime\n    timeout = 1\n",
    )
    .replace("    scheduler = rr\n", "");
    let d = Director::start(&lab, "health-load", &cf);
    d.wait_http(lab::VIP.into());
    // nanny admits each server at 4 >> 5 = 1 after its first check and doubles it every
    // `timeout` (1 s) up to 4; the load rule then takes rs1 to 16.
    wait_for(Duration::from_secs(8), "rs1 idle: weight 16", || {
        weights(&d).get(&rs(1, 80)) == Some(&16)
    });
    let w = weights(&d);
    assert_eq!(w.get(&rs(2, 80)), Some(&4), "load 3: 16 / 4 = 4, unchanged");
    assert_eq!(w.get(&rs(3, 80)), Some(&4), "no agent: left alone");
    let got = spread(&lab, lab::VIP.into(), 48);
    assert_eq!(got.get("rs1"), Some(&32), "wrr 16:4:4 over 48: {got:?}");
    assert!(d.log().contains("weight changed"), "{}", d.log());
}

/// nanny's admission (Piranha nanny.c `run()`: `isActive = 0; currCount = countThresh`): a
/// real server that a reload adds enters service only after its first successful check.
/// rs3, added with nothing listening, never takes a client connection: a bounded stream of
/// new connections during and after the reload all succeed, on rs1. rs2, added answering,
/// takes traffic after its first check, at weight 64 >> 5 = 2, then slow start.
#[test]
fn reload_admits_new_servers_only_after_their_first_good_check() {
    let lab = nat_lab(3);
    httpd(&lab, "rs1", 80, "rs1");
    let checks = "    timeout = 1\n    reentry = 3\n";
    let d = Director::start(&lab, "nanny-admit", &nat_cf(&[(1, 1)], checks));
    d.wait_http(lab::VIP.into());
    let cf = lab.info().workdir().join("nanny-admit.cf");
    let addr = SocketAddr::from((lab::VIP, 80));

    // New connections from the client for up to 8 s (at most 2,000), while the reload
    // adds the silent rs3.
    let (answers, reload) = thread::scope(|sc| {
        let client = sc.spawn(|| {
            lab.run("client", move || {
                let start = Instant::now();
                let mut answers: BTreeMap<String, usize> = BTreeMap::new();
                let mut failures = Vec::new();
                for i in 0..2_000 {
                    if start.elapsed() > Duration::from_secs(8) {
                        break;
                    }
                    match get_name(addr, Duration::from_secs(2)) {
                        Ok(n) => *answers.entry(n).or_insert(0) += 1,
                        Err(e) => failures.push(format!("request {i}: {e}")),
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                (answers, failures)
            })
            .unwrap()
        });
        thread::sleep(Duration::from_secs(2));
        std::fs::write(&cf, nat_cf(&[(1, 1), (3, 1)], checks)).unwrap();
        let reload = rvs::daemon::control_request(d.control(), "reload");
        (client.join().unwrap(), reload)
    });
    let msg = reload.unwrap();
    assert!(msg.starts_with("reloaded "), "{msg}");
    let (answers, failures) = answers;
    assert!(failures.is_empty(), "{failures:?}\n{}", d.log());
    assert_eq!(answers.keys().collect::<Vec<_>>(), ["rs1"], "{answers:?}");
    assert!(answers["rs1"] > 100, "the client loop ran: {answers:?}");
    let rows = health(&d);
    assert!(rows.get(&rs(3, 80)).is_some_and(|r| !r.up), "{rows:#?}");
    assert!(
        !weights(&d).contains_key(&rs(3, 80)),
        "never checked good, never in the table: {}",
        d.listing(&[])
    );

    // rs2 answers: added by a reload, first seen in the table at 64 >> 5 after its check.
    httpd(&lab, "rs2", 80, "rs2");
    std::fs::write(&cf, nat_cf(&[(1, 1), (2, 64), (3, 1)], checks)).unwrap();
    let msg = rvs::daemon::control_request(d.control(), "reload").unwrap();
    assert!(msg.starts_with("reloaded "), "{msg}");
    let mut seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && seen.last() != Some(&64) {
        if let Some(w) = weights(&d).get(&rs(2, 80)).copied()
            && seen.last() != Some(&w)
        {
            seen.push(w);
        }
        thread::sleep(Duration::from_millis(20));
    }
    // The daemon logs each slow-start step: 4, 8, 16, 32, 64 means it was admitted at 2.
    // (The listing poll above can miss the first step when the control thread, at nice
    // +10, waits for CPU on a loaded machine; the log cannot.)
    let log = d.log();
    let steps: Vec<u32> = log
        .lines()
        .filter(|l| l.contains("weight changed") && l.contains(&format!("server={}", rs(2, 80))))
        .filter_map(|l| {
            l.split("weight=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        steps,
        [4, 8, 16, 32, 64],
        "admitted at 64 >> 5 = 2, then doubled (seen in the listing: {seen:?}):\n{log}"
    );
    assert!(
        seen.first().is_some_and(|&w| w <= 4),
        "in the table from its first weights: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&64), "{seen:?}");
    let back = spread(&lab, lab::VIP.into(), 40);
    assert!(back.get("rs2").is_some_and(|n| *n > 0), "{back:?}");
    assert_eq!(back.get("rs3"), None, "{back:?}");
}
