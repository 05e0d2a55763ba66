//! `rvs console` against a running lab daemon (issue 14): its own process in the client's
//! namespace, reaching the daemon only through the control socket. A login, the live
//! table over the JSON API and Server-Sent Events, a drain through the API that shows in
//! `rvsadm -L -n` while the other real servers carry the traffic, ready again through the
//! plain form POST, and the audit log of each step. The console's security tests without
//! a daemon are in crates/rvs-console/tests/api.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Director, Virtual, even, lvs_cf, spread};
use crate::harness::{lab, rvs_exe};
use crate::lab::{self, LabOptions, Method};
use crate::rvsadm::ok;

pub(crate) const CONSOLE: &str = "127.0.0.1:3636";

/// One request on its own connection (`Connection: close`): status, head, body.
fn http(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(CONSOLE)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {CONSOLE}\r\nOrigin: http://{CONSOLE}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// The first `snapshot` event of `/events`.
fn first_event(cookie: &str) -> String {
    let mut s = TcpStream::connect(CONSOLE).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: {CONSOLE}\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(i) = text.find("event: snapshot\ndata: ")
            && let Some(end) = text[i..].find("\n\n")
        {
            return text[i + 22..i + end].to_string();
        }
    }
    panic!("no snapshot event: {}", String::from_utf8_lossy(&got));
}

/// The Weight column of `rvsadm -L -n`, per real server.
fn weights(listing: &str) -> Vec<&str> {
    listing
        .lines()
        .filter(|l| l.starts_with("  -> ") && !l.contains("RemoteAddress"))
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect()
}

pub(crate) fn passwd(users: &std::path::Path, user: &str, role: &str, password: &str) {
    let mut c = Command::new(rvs_exe())
        .args(["console", "passwd", user, "--role", role, "--users"])
        .arg(users)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `rvs console` on [`CONSOLE`] in the client's namespace over director `d`: users file
/// `users`, audit log `audit.log` in the lab's work directory, and `extra` options. Waits
/// until it answers; its pid.
pub(crate) fn start_console(
    lab: &crate::lab::Lab,
    d: &Director,
    users: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> u32 {
    let audit = lab.info().workdir().join("audit.log");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "console".as_ref(),
        "--listen".as_ref(),
        CONSOLE.as_ref(),
        "--users".as_ref(),
        users.as_os_str(),
        "--audit".as_ref(),
        audit.as_os_str(),
        "--control".as_ref(),
        d.control().as_os_str(),
    ];
    args.extend(extra);
    let pid = lab.spawn("client", rvs_exe(), args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while lab
        .run("client", || http("GET", "/login", &[], ""))
        .unwrap()
        .is_err()
    {
        assert!(Instant::now() < deadline, "console:\n{}", lab.log_tail(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    pid
}

#[test]
fn console_drain_shows_in_rvsadm_and_traffic_moves() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        ..LabOptions::default()
    });
    let d = Director::start(
        &lab,
        "console",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]),
    );
    d.wait_http(lab::VIP.into());
    let wd = lab.info().workdir();
    let users = wd.join("console.users");
    let audit = wd.join("audit.log");
    // Without a user the console refuses to start.
    let o = Command::new(rvs_exe())
        .args(["console", "--users"])
        .arg(&users)
        .arg("--control")
        .arg(d.control())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("console.users"),
        "{o:?}"
    );
    passwd(&users, "opal", "operator", "opal-password");
    passwd(&users, "vic", "viewer", "vic-password");

    let pid = start_console(&lab, &d, &users, &["--interval".as_ref(), "1".as_ref()]);
    let vip = lab::VIP;
    let rs = |i| format!("{}:80", lab::rs_addr(i));

    let (cookie, csrf) = lab
        .run("client", || {
            assert_eq!(http("GET", "/api/services", &[], "").unwrap().0, 401);
            let form = [("Content-Type", "application/x-www-form-urlencoded")];
            let (status, head, _) =
                http("POST", "/login", &form, "user=opal&password=opal-password").unwrap();
            assert_eq!(status, 303, "{head}");
            let cookie = head
                .lines()
                .find_map(|l| l.strip_prefix("set-cookie: "))
                .and_then(|c| c.split(';').next())
                .unwrap()
                .to_string();
            let (_, _, who) = http("GET", "/api/whoami", &[("Cookie", &cookie)], "").unwrap();
            let who: serde_json::Value = serde_json::from_str(&who).unwrap();
            (cookie, who["csrf"].as_str().unwrap().to_string())
        })
        .unwrap();
    let services = |c: &str| -> serde_json::Value {
        let (status, _, body) = http("GET", "/api/services", &[("Cookie", c)], "").unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let cookie2 = cookie.clone();
    let before = lab.run("client", move || services(&cookie2)).unwrap();
    assert_eq!(before[0]["id"], format!("TCP {vip}:80"));
    let servers = before[0]["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{before}");
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(s["address"], rs(i + 1));
        assert_eq!(
            (s["state"].as_str(), s["weight"].as_i64()),
            (Some("up"), Some(1)),
            "{s}"
        );
    }
    // The live stream's first event is the same table.
    let cookie2 = cookie.clone();
    let event = lab.run("client", move || first_event(&cookie2)).unwrap();
    let event: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["services"][0]["servers"][1]["address"], rs(2));

    // Drain rs2 through the JSON API: weight 0 in rvsadm's listing, traffic on rs1 and rs3.
    let (c2, t2, rs2) = (cookie.clone(), csrf.clone(), rs(2));
    let (status, _, body) = lab
        .run("client", move || {
            let json = format!(r#"{{"service":"TCP {vip}:80","server":"{rs2}","action":"drain"}}"#);
            http(
                "POST",
                "/api/action",
                &[
                    ("Content-Type", "application/json"),
                    ("Cookie", &c2),
                    ("X-CSRF-Token", &t2),
                ],
                &json,
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(status, 200, "{body}\n{}", lab.log_tail(pid));
    let listing = ok(d.control(), "-L -n");
    assert_eq!(weights(&listing), ["1", "0", "1"], "{listing}");
    let mut others = even(3, 3);
    others.remove("rs2");
    assert_eq!(spread(&lab, vip.into(), 6), others, "{}", d.log());
    let cookie2 = cookie.clone();
    let after = lab.run("client", move || services(&cookie2)).unwrap();
    assert_eq!(after[0]["servers"][1]["state"], "drained", "{after}");
    assert_eq!(after[0]["servers"][1]["configured_weight"], 1, "{after}");

    // Ready through the plain form POST (no JavaScript): weight 1 again.
    let (c2, t2, rs2) = (cookie.clone(), csrf.clone(), rs(2));
    let (status, head, _) = lab
        .run("client", move || {
            let body = format!(
                "csrf={t2}&service=TCP+{vip}%3A80&server={}&action=ready",
                rs2.replace(':', "%3A")
            );
            http(
                "POST",
                "/action",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Cookie", &c2),
                ],
                &body,
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(status, 303, "{head}");
    let listing = ok(d.control(), "-L -n");
    assert_eq!(weights(&listing), ["1", "1", "1"], "{listing}");
    assert_eq!(spread(&lab, vip.into(), 6), even(3, 2), "{}", d.log());

    // A viewer cannot drain.
    let (status, _, _) = lab
        .run("client", move || {
            let form = [("Content-Type", "application/x-www-form-urlencoded")];
            let (_, head, _) =
                http("POST", "/login", &form, "user=vic&password=vic-password").unwrap();
            let c = head
                .lines()
                .find_map(|l| l.strip_prefix("set-cookie: "))
                .and_then(|c| c.split(';').next())
                .unwrap()
                .to_string();
            let (_, _, who) = http("GET", "/api/whoami", &[("Cookie", &c)], "").unwrap();
            let who: serde_json::Value = serde_json::from_str(&who).unwrap();
            let t = who["csrf"].as_str().unwrap();
            let json = format!(
                r#"{{"service":"TCP {vip}:80","server":"{}:80","action":"drain"}}"#,
                lab::rs_addr(1)
            );
            http(
                "POST",
                "/api/action",
                &[
                    ("Content-Type", "application/json"),
                    ("Cookie", &c),
                    ("X-CSRF-Token", t),
                ],
                &json,
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(status, 403);
    let listing = ok(d.control(), "-L -n");
    assert_eq!(
        weights(&listing),
        ["1", "1", "1"],
        "nothing drained: {listing}"
    );

    // The audit log: each step with its before and after.
    let log = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("opal", "login", "ok"),
            ("opal", "drain", "ok"),
            ("opal", "ready", "ok"),
            ("vic", "login", "ok"),
            ("vic", "drain", "refused: role"),
        ],
        "{log}"
    );
    assert_eq!(
        records[1]["before"],
        format!("-a -t {vip}:80 -r {} -m -w 1", rs(2))
    );
    assert_eq!(
        records[1]["after"],
        format!("-a -t {vip}:80 -r {} -m -w 0", rs(2))
    );
    assert_eq!(
        records[2]["after"],
        format!("-a -t {vip}:80 -r {} -m -w 1", rs(2))
    );
    // Deactivate the service (Piranha's VIRTUAL SERVERS panel): gone from rvsadm's table,
    // shown inactive; activate: back with its three real servers, serving.
    let (c2, t2) = (cookie.clone(), csrf.clone());
    let act = move |action: &str| {
        let json = format!(r#"{{"service":"TCP {vip}:80","action":"{action}"}}"#);
        http(
            "POST",
            "/api/service",
            &[
                ("Content-Type", "application/json"),
                ("Cookie", &c2),
                ("X-CSRF-Token", &t2),
            ],
            &json,
        )
        .unwrap()
    };
    let a2 = act.clone();
    let (status, _, body) = lab.run("client", move || a2("deactivate")).unwrap();
    assert_eq!(status, 200, "{body}");
    let listing = ok(d.control(), "-L -n");
    assert!(!listing.contains("TCP "), "{listing}");
    let cookie2 = cookie.clone();
    let off = lab.run("client", move || services(&cookie2)).unwrap();
    assert_eq!(off[0]["state"], "inactive", "{off}");
    assert_eq!(off[0]["servers"].as_array().unwrap().len(), 3, "{off}");
    let (status, _, body) = lab.run("client", move || act("activate")).unwrap();
    assert_eq!(status, 200, "{body}");
    // The re-added real servers come back as the daemon admits them (a clean-clone CI run
    // listed two of three right after the answer): bounded wait for all three.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut listing = ok(d.control(), "-L -n");
    while weights(&listing).len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        listing = ok(d.control(), "-L -n");
    }
    assert_eq!(weights(&listing), ["1", "1", "1"], "{listing}");
    d.wait_http(vip.into());
    assert_eq!(spread(&lab, vip.into(), 3), even(3, 1), "{}", d.log());
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains("\"action\":\"deactivate\"") && log.contains("\"action\":\"activate\""),
        "{log}"
    );
    let _ = lab.stop(pid);
}

/// `POST path` with a JSON body, as the admin session `(cookie, csrf)`.
fn post_json(
    path: &str,
    s: &(String, String),
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let (status, _, text) = http(
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &s.0),
            ("X-CSRF-Token", &s.1),
        ],
        &body.to_string(),
    )
    .unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Log in as `user`: the cookie and the CSRF token.
fn login(user: &str, password: &str) -> (String, String) {
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = http(
        "POST",
        "/login",
        &form,
        &format!("user={user}&password={password}"),
    )
    .unwrap();
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let (_, _, who) = http("GET", "/api/whoami", &[("Cookie", &cookie)], "").unwrap();
    let who: serde_json::Value = serde_json::from_str(&who).unwrap();
    (cookie, who["csrf"].as_str().unwrap().to_string())
}

#[test]
fn console_edits_the_configuration_and_rolls_back() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        ..LabOptions::default()
    });
    let two = lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 2)]);
    let d = Director::start(&lab, "consolecf", &two);
    d.wait_http(lab::VIP.into());
    let wd = lab.info().workdir();
    let cf = wd.join("consolecf.cf");
    let users = wd.join("console.users");
    passwd(&users, "ada", "admin", "ada-password");
    let pid = start_console(
        &lab,
        &d,
        &users,
        &[
            "--config".as_ref(),
            cf.as_os_str(),
            "--config-versions".as_ref(),
            wd.join("versions").as_os_str(),
        ],
    );
    let s = lab.run("client", || login("ada", "ada-password")).unwrap();
    let s2 = s.clone();
    let (text, v1) = lab
        .run("client", move || {
            let (_, _, body) = http("GET", "/api/config", &[("Cookie", &s2.0)], "").unwrap();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            (
                v["text"].as_str().unwrap().to_string(),
                v["version"].as_str().unwrap().to_string(),
            )
        })
        .unwrap();
    assert_eq!(text, two);

    // An invalid edit is refused with rvs's parser message at file:line:column.
    let bad = two.replace("scheduler = rr", "scheduler = bogus");
    let line = bad.lines().position(|l| l.contains("bogus")).unwrap() + 1;
    let (s2, b) = (s.clone(), bad.clone());
    let (status, body) = lab
        .run("client", move || {
            post_json(
                "/api/config/apply",
                &s2,
                &serde_json::json!({"text": b, "version": v1}),
            )
        })
        .unwrap();
    assert_eq!(status, 422, "{body}");
    let want = format!(
        "{}:{line}:17: error: unknown scheduler `bogus`",
        cf.display()
    );
    assert!(body["error"].as_str().unwrap().contains(&want), "{body}");
    assert_eq!(std::fs::read_to_string(&cf).unwrap(), two);

    // Add rs3 by editing the file: written (serial_no 2), reloaded, in rvsadm -L -n, and
    // the rewritten file passes `rvs check-config`.
    let three = lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]);
    let (s2, t, v) = (s.clone(), three.clone(), version_of(&two));
    let (status, body) = lab
        .run("client", move || {
            post_json(
                "/api/config/apply",
                &s2,
                &serde_json::json!({"text": t, "version": v}),
            )
        })
        .unwrap();
    assert_eq!(status, 200, "{body}\n{}", lab.log_tail(pid));
    let written = std::fs::read_to_string(&cf).unwrap();
    assert_eq!(written, three.replace("serial_no = 1", "serial_no = 2"));
    assert!(
        body["applied"]["diff"]
            .as_str()
            .unwrap()
            .contains(&format!("+        address = {}\n", lab::rs_addr(3))),
        "{body}"
    );
    let listing = ok(d.control(), "-L -n");
    assert_eq!(weights(&listing), ["1", "1", "1"], "{listing}");
    assert!(
        listing.contains(&format!("-> {}:80", lab::rs_addr(3))),
        "{listing}"
    );
    let check = Command::new(rvs_exe())
        .arg("check-config")
        .arg(&cf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(spread(&lab, lab::VIP.into(), 6), even(3, 2), "{}", d.log());

    // Roll back to the kept two-server file.
    let s2 = s.clone();
    let versions: Vec<String> = lab
        .run("client", move || {
            let (_, _, body) =
                http("GET", "/api/config/versions", &[("Cookie", &s2.0)], "").unwrap();
            serde_json::from_str(&body).unwrap()
        })
        .unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    let (s2, name, v) = (s.clone(), versions[0].clone(), version_of(&written));
    let (status, body) = lab
        .run("client", move || {
            post_json(
                "/api/config/rollback",
                &s2,
                &serde_json::json!({"name": name, "version": v}),
            )
        })
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(&cf).unwrap(),
        two.replace("serial_no = 1", "serial_no = 3")
    );
    let listing = ok(d.control(), "-L -n");
    assert_eq!(weights(&listing), ["1", "1"], "{listing}");
    assert_eq!(spread(&lab, lab::VIP.into(), 4), even(2, 2), "{}", d.log());
    let audit = std::fs::read_to_string(wd.join("audit.log")).unwrap();
    let actions: Vec<String> = audit
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                r["action"].as_str().unwrap(),
                r["result"].as_str().unwrap().split(':').next().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "login ok".to_string(),
            "config apply refused".into(),
            "config apply ok".into(),
            format!("config rollback to {} ok", versions[0]),
        ],
        "{audit}"
    );
    let _ = lab.stop(pid);
}

fn version_of(text: &str) -> String {
    rvs_console::config::version_of(text)
}

/// `rvs demo --console`: the console comes up on 127.0.0.1:3636 with the printed one-time
/// password, shows the demo's service with requests still flowing, and Ctrl-C (SIGINT)
/// ends it all, leaving no namespace behind.
#[test]
fn demo_console_serves_until_interrupted() {
    use std::io::BufRead;
    crate::harness::require_root_lab();
    let mut child = Command::new(rvs_exe())
        .args(["demo", "--console", "--requests", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("one-time password ") {
                let _ = tx.send(line[i + 18..].trim().to_string());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    let password = rx.recv_timeout(Duration::from_secs(90));
    let interrupt = || {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    };
    let Ok(password) = password else {
        interrupt();
        let _ = child.wait();
        panic!("no console line:\n{}", reader.join().unwrap());
    };
    let (cookie, _) = login("admin", &password);
    let total = || -> u64 {
        let (_, _, body) = http("GET", "/api/services", &[("Cookie", &cookie)], "").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["id"], format!("TCP {}:80", lab::VIP), "{v}");
        v[0]["stats"]["conns"].as_u64().unwrap()
    };
    let first = total();
    assert!(first >= 6, "the demo's requests: {first}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while total() == first {
        assert!(Instant::now() < deadline, "no requests after the demo's");
        std::thread::sleep(Duration::from_millis(200));
    }
    interrupt();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the demo did not end on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "{status}\n{out}");
    assert!(
        out.contains("console stopped") && out.contains("lab removed"),
        "{out}"
    );
    let tag = format!("-{pid}-");
    let left: Vec<_> = rvs_sys::netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("demo") && n.contains(&tag))
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
    assert!(TcpStream::connect(CONSOLE).is_err(), "the console is gone");
}

/// `rvsadm -L -n` as user nobody with group `gid` only (setpriv), against `control`.
fn rvsadm_as_nobody(control: &std::path::Path, gid: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            &format!("--regid={gid}"),
            "--clear-groups",
        ])
        .arg(env!("CARGO_BIN_EXE_rvsadm"))
        .args(["-L", "-n"])
        .env("RVS_CONTROL", control)
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn control_group_lets_an_unprivileged_console_user_reach_the_socket() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 1,
        ..LabOptions::default()
    });
    let d = Director::start_with(
        &lab,
        "director",
        "ctlgroup",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 1)]),
        &["--control-group", "nogroup"],
    );
    let m = std::fs::metadata(d.control()).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    assert_eq!(m.gid(), 65534, "nogroup's gid");
    assert!(
        d.log().contains("control socket shared with the group"),
        "{}",
        d.log()
    );
    // The socket's directories must let the user through (the lab's work directory is
    // root's): what an operator sets up as well, documented beside the option.
    let mut dir = d.control().parent();
    while let Some(p) = dir {
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o001)).unwrap();
        }
        dir = p.parent();
    }
    // nobody in nogroup reads the table; nobody in another group is refused.
    let o = rvsadm_as_nobody(d.control(), "nogroup");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("TCP  {}:80 rr", lab::VIP)),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = rvsadm_as_nobody(d.control(), "1");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ermission denied"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A group that does not exist: the daemon refuses to start.
    let cf = lab.info().workdir().join("nogrp.cf");
    std::fs::write(
        &cf,
        lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 81, 1)]),
    )
    .unwrap();
    let o = lab
        .command("director", rvs_exe())
        .unwrap()
        .args(["daemon", "-c"])
        .arg(&cf)
        .args(["--control-group", "no-such-group-rvs", "--control"])
        .arg(lab.info().workdir().join("nogrp.ctl"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--control-group no-such-group-rvs: no such group"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
