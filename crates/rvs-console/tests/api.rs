//! The console's HTTP API without a browser, against a fake daemon (a [`Control`] that
//! keeps an ipvsadm table and answers rvsadm's listings and edits the way the daemon does):
//! every route refuses an unauthenticated request; state-changing requests need the CSRF
//! token and the console's own Origin; a viewer cannot drain; login is rate-limited; a
//! 10 MB body is refused; actions reach the daemon as rvsadm edits and are audited.
//!
//! The same against a running daemon: crates/rvs/tests/lab/console.rs.

mod common;

use common::*;
use rvs_console::web;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Every route the console has, and a few it has not.
const ROUTES: [&str; 38] = [
    "/",
    "/config/panels",
    "/config/panel",
    "/config/form",
    "/api/config/form",
    "/users",
    "/api/users",
    "/peer",
    "/peer/copy",
    "/api/peer",
    "/api/peer/copy",
    "/service",
    "/api/service",
    "/api/openapi.json",
    "/config",
    "/config/rollback",
    "/api/config",
    "/api/config/validate",
    "/api/config/diff",
    "/api/config/apply",
    "/api/config/versions",
    "/api/config/rollback",
    "/audit",
    "/logout",
    "/action",
    "/events",
    "/api/snapshot",
    "/api/services",
    "/api/stats",
    "/api/stats.csv",
    "/api/health",
    "/api/failover",
    "/api/audit",
    "/api/whoami",
    "/api/action",
    "/api",
    "/nonexistent",
    "/static/../api/services",
];

#[test]
fn every_route_and_method_refuses_an_unauthenticated_request() {
    let c = Console::start();
    for path in ROUTES {
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
            let body = if method == "HEAD" {
                &b""[..]
            } else {
                &b"service=x"[..]
            };
            let r = c.req(method, path, &[("Origin", &c.origin())], body);
            let to_login = r.status == 303 && r.header("location") == Some("/login");
            assert!(
                r.status == 401 || to_login,
                "{method} {path}: {} {:?}",
                r.status,
                r.headers
            );
            assert!(!r.body.contains("10.0.1.1"), "{method} {path}: {}", r.body);
        }
    }
    // A wrong token or a forged cookie is no better.
    for h in [
        ("Authorization", "Bearer rvs_wrong"),
        ("Cookie", "rvs_session=00"),
    ] {
        let r = c.req("GET", "/api/services", &[h], b"");
        assert_eq!(r.status, 401, "{h:?}");
    }
    let forged = format!("rvs_session={}", "ab".repeat(32));
    assert_eq!(
        c.req("GET", "/api/services", &[("Cookie", &forged)], b"")
            .status,
        401
    );
    // Only the login page and the static files are public.
    assert_eq!(c.req("GET", "/login", &[], b"").status, 200);
    let js = c.req("GET", "/static/console.js", &[], b"");
    assert_eq!(js.status, 200);
    assert!(js.body.contains("EventSource"));
    assert_eq!(c.req("POST", "/static/console.js", &[], b"").status, 405);
    assert!(c.fake.edits().is_empty());
}

#[test]
fn every_answer_has_the_security_headers_and_the_cookie_is_strict() {
    let c = Console::start();
    let r = c.form("/login", "user=alice&password=alice-password", None, None);
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap();
    for attr in [
        "rvs_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    for path in ["/login", "/api/services", "/static/console.css"] {
        let r = c.req("GET", path, &[], b"");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
    }
}

#[test]
fn state_changes_need_the_csrf_token_and_the_own_origin() {
    let c = Console::start();
    let s = c.login("alice");
    let drain = format!("service=TCP+{VIP}&server=10.0.1.2%3A80&action=drain");
    // No token, a wrong token, a foreign Origin (with the right token), a foreign Referer.
    let r = c.form("/action", &drain, Some(&s.cookie), None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    let wrong = format!("{drain}&csrf={}", "0".repeat(64));
    assert_eq!(c.form("/action", &wrong, Some(&s.cookie), None).status, 403);
    let with = format!("{drain}&csrf={}", s.csrf);
    let r = c.form(
        "/action",
        &with,
        Some(&s.cookie),
        Some("http://evil.example"),
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("cross-origin"), "{}", r.body);
    let r = c.req(
        "POST",
        "/action",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &s.cookie),
            ("Referer", "http://evil.example/page"),
        ],
        with.as_bytes(),
    );
    assert_eq!(r.status, 403);
    // The JSON API: the token goes in X-CSRF-Token.
    let json = format!(r#"{{"service":"TCP {VIP}","server":"10.0.1.2:80","action":"drain"}}"#);
    let r = c.req(
        "POST",
        "/api/action",
        &[("Content-Type", "application/json"), ("Cookie", &s.cookie)],
        json.as_bytes(),
    );
    assert_eq!(r.status, 403);
    // Logout is a state change too.
    assert_eq!(c.form("/logout", "", Some(&s.cookie), None).status, 403);
    assert!(c.fake.edits().is_empty(), "{:?}", c.fake.edits());
    assert_eq!(c.fake.weight("10.0.1.2:80"), Some(1));

    // With the token and the own Origin it is done: rvsadm's -e with weight 0.
    let r = c.form("/action", &with, Some(&s.cookie), None);
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/")),
        "{}",
        r.body
    );
    assert_eq!(
        c.fake.edits(),
        [format!("-e -t {VIP} -r 10.0.1.2:80 -m -w 0")]
    );
    // The result is shown once on the next page.
    let page = c.req("GET", "/", &[("Cookie", &s.cookie)], b"");
    assert!(page.body.contains("Done: drain TCP"), "{}", page.body);
    let r = c.req(
        "POST",
        "/api/action",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &s.cookie),
            ("X-CSRF-Token", &s.csrf),
        ],
        json.replace("drain", "ready").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        c.fake.weight("10.0.1.2:80"),
        Some(1),
        "ready restores the weight"
    );
}

#[test]
fn a_viewer_cannot_drain() {
    let c = Console::start();
    let s = c.login("vera");
    let drain = format!(
        "service=TCP+{VIP}&server=10.0.1.1%3A80&action=drain&csrf={}",
        s.csrf
    );
    let r = c.form("/action", &drain, Some(&s.cookie), None);
    assert_eq!(r.status, 403, "{}", r.body);
    let json = format!(r#"{{"service":"TCP {VIP}","server":"10.0.1.1:80","action":"drain"}}"#);
    let r = c.req(
        "POST",
        "/api/action",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &s.cookie),
            ("X-CSRF-Token", &s.csrf),
        ],
        json.as_bytes(),
    );
    assert_eq!(r.status, 403);
    let r = c.req(
        "POST",
        "/api/action",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer rvs_viewtoken"),
        ],
        json.as_bytes(),
    );
    assert_eq!(r.status, 403);
    let svc = format!(r#"{{"service":"TCP {VIP}","action":"deactivate"}}"#);
    let r = c.req(
        "POST",
        "/api/service",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &s.cookie),
            ("X-CSRF-Token", &s.csrf),
        ],
        svc.as_bytes(),
    );
    assert_eq!(r.status, 403, "a viewer cannot deactivate either");
    // The viewer reads everything, without the action forms.
    let page = c.req("GET", "/", &[("Cookie", &s.cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("10.0.1.1:80") && !page.body.contains("value=\"drain\""));
    assert!(c.fake.edits().is_empty());
    assert_eq!(c.fake.weight("10.0.1.1:80"), Some(3));
    assert!(
        c.audit().contains("\"result\":\"refused: role\""),
        "{}",
        c.audit()
    );

    // An operator's token may, without CSRF (browsers never send it on their own).
    let r = c.req(
        "POST",
        "/api/action",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer rvs_optoken"),
        ],
        json.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.fake.weight("10.0.1.1:80"), Some(0));
    let line = c.audit().lines().last().unwrap().to_string();
    let rec: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(rec["user"], "token:ops");
    assert_eq!(rec["action"], "drain");
    assert_eq!(rec["object"], format!("TCP {VIP} -> 10.0.1.1:80"));
    assert_eq!(rec["before"], format!("-a -t {VIP} -r 10.0.1.1:80 -m -w 3"));
    assert_eq!(rec["after"], format!("-a -t {VIP} -r 10.0.1.1:80 -m -w 0"));
    assert_eq!(rec["result"], "ok");
    assert!(rec["source"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn login_is_rate_limited() {
    let c = Console::start();
    for i in 0..5 {
        let r = c.form("/login", "user=alice&password=wrong", None, None);
        assert_eq!(r.status, 401, "attempt {i}");
        assert!(r.body.contains("Wrong user or password."));
        assert!(r.header("set-cookie").is_none());
    }
    // The sixth, even with the right password, is refused.
    let r = c.form("/login", "user=alice&password=alice-password", None, None);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(r.header("set-cookie").is_none());
    let audit = c.audit();
    assert_eq!(
        audit.matches("refused: wrong user or password").count(),
        5,
        "{audit}"
    );
    assert!(audit.contains("refused: too many failed logins"), "{audit}");
    // A login from another origin is refused before the password is looked at.
    let d = Console::start();
    let r = d.form(
        "/login",
        "user=alice&password=alice-password",
        None,
        Some("http://evil.example"),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn a_10_mb_body_is_refused() {
    let c = Console::start();
    let s = c.login("alice");
    let big = vec![b'a'; 10 << 20];
    let mut h = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", s.cookie.as_str()),
        ("Origin", ""),
        ("X-CSRF-Token", s.csrf.as_str()),
    ];
    let own = c.origin();
    h[2].1 = &own;
    for path in ["/action", "/api/action", "/login"] {
        let r = c.req("POST", path, &h, &big);
        assert_eq!(r.status, 413, "{path}: {}", r.body);
    }
    // Without a length (chunked): cut at the limit too.
    let mut st = TcpStream::connect(c.addr).unwrap();
    st.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /action HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\r\n",
        c.addr, s.cookie, s.csrf
    );
    st.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..10 {
        if st
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || st.write_all(&chunk).is_err()
            || st.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = st.write_all(b"0\r\n\r\n");
    assert_eq!(read_response(&mut st).status, 413);
    assert!(c.fake.edits().is_empty());
}

#[test]
fn pages_escape_what_the_daemon_says_and_the_api_reads_the_table() {
    let c = Console::start();
    *c.fake.failover.lock().unwrap() = "no failover: <script>alert(1)</script>\n".into();
    let s = c.login("root");
    let page = c.req("GET", "/", &[("Cookie", &s.cookie)], b"");
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(
        page.body
            .contains("no failover: &#60;script&#62;alert(1)&#60;"),
        "{}",
        page.body
    );
    let r = c.req(
        "GET",
        "/api/services",
        &[("Authorization", "Bearer rvs_viewtoken")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v[0]["id"], format!("TCP {VIP}"));
    assert_eq!(v[0]["servers"][0]["address"], "10.0.1.1:80");
    assert_eq!(v[0]["servers"][0]["weight"], 3);
    assert_eq!(v[0]["servers"][0]["active"], 2);
    assert_eq!(v[0]["servers"][0]["stats"]["conns"], 5);
    assert_eq!(v[0]["servers"][0]["state"], "up");
    let csv = c.req("GET", "/api/stats.csv", &[("Cookie", &s.cookie)], b"");
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(csv.body.lines().count(), 3, "{}", csv.body);
    assert!(
        csv.body
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("TCP {VIP},10.0.1.1:80,up,Masq,3,3,2,1,5,"))
    );
}

#[test]
fn maintenance_removes_and_ready_adds_back() {
    let c = Console::start();
    let s = c.login("alice");
    let act = |action: &str| {
        let body = format!(
            r#"{{"service":"TCP {VIP}","server":"10.0.1.1:80","action":"{action}","weight":"7"}}"#
        );
        c.req(
            "POST",
            "/api/action",
            &[
                ("Content-Type", "application/json"),
                ("Cookie", &s.cookie),
                ("X-CSRF-Token", &s.csrf),
                ("Origin", &c.origin()),
            ],
            body.as_bytes(),
        )
    };
    assert_eq!(act("maint").status, 200);
    assert_eq!(c.fake.weight("10.0.1.1:80"), None);
    let snap = c.req("GET", "/api/snapshot", &[("Cookie", &s.cookie)], b"");
    assert!(
        snap.body
            .contains(r#""address":"10.0.1.1:80","state":"maintenance""#),
        "{}",
        snap.body
    );
    assert_eq!(act("ready").status, 200);
    assert_eq!(c.fake.weight("10.0.1.1:80"), Some(3));
    assert_eq!(act("weight").status, 200);
    assert_eq!(c.fake.weight("10.0.1.1:80"), Some(7));
    // Flush: the daemon's `flush` request; the table is unchanged.
    let r = act("flush");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("(flushed 2)"), "{}", r.body);
    assert_eq!(
        *c.fake.flushes.lock().unwrap(),
        [format!("TCP {VIP} 10.0.1.1:80")]
    );
    let r = act("bogus");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        c.fake.edits(),
        [
            format!("-d -t {VIP} -r 10.0.1.1:80"),
            format!("-a -t {VIP} -r 10.0.1.1:80 -m -w 3"),
            format!("-e -t {VIP} -r 10.0.1.1:80 -m -w 7"),
        ]
    );
    // The audit page lists each step, escaped.
    let page = c.req("GET", "/audit", &[("Cookie", &s.cookie)], b"");
    for step in ["maint", "ready", "weight 7", "flush", "login"] {
        assert!(
            page.body.contains(&format!("<td>{step}</td>")),
            "{step}: {}",
            page.body
        );
    }
}

#[test]
fn audit_records_reach_the_daemons_log_and_a_viewer_cannot_flush() {
    let c = Console::start();
    let s = c.login("vera");
    let r = c.post_json(
        &s,
        "/api/action",
        &format!(r#"{{"service":"TCP {VIP}","server":"10.0.1.1:80","action":"flush"}}"#),
    );
    assert_eq!(r.status, 403);
    assert!(c.fake.flushes.lock().unwrap().is_empty());
    // Each record also went to the daemon (`audit JSON`), the same JSON as the file's.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.fake.audited.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "{:?}", c.fake.audited);
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = c.fake.audited.lock().unwrap().clone();
    let file: Vec<String> = c.audit().lines().map(String::from).collect();
    let mut sorted = sent.clone();
    sorted.sort();
    let mut want = file.clone();
    want.sort();
    assert_eq!(sorted, want);
    assert!(
        sent.iter()
            .any(|l| l.contains(r#""action":"flush""#) && l.contains("refused: role")),
        "{sent:?}"
    );
}

#[test]
fn maintenance_survives_a_console_restart() {
    let c = Console::start();
    let s = c.login("alice");
    let act = |c: &Console, s: &Session, action: &str, server: &str| {
        let body = format!(r#"{{"service":"TCP {VIP}","server":"{server}","action":"{action}"}}"#);
        c.post_json(s, "/api/action", &body).status
    };
    assert_eq!(act(&c, &s, "maint", "10.0.1.1:80"), 200);
    assert_eq!(act(&c, &s, "drain", "10.0.1.2:80"), 200);
    let state = std::fs::read_to_string(c.dir.join("console-state.json")).unwrap();
    assert!(
        state.contains("10.0.1.1:80") && state.contains("-w"),
        "{state}"
    );
    // A new console process over the same files: the server is still shown in
    // maintenance, and ready puts its remembered rule back.
    let d = c.restart();
    let s2 = d.login("alice");
    let snap = d.req("GET", "/api/snapshot", &[("Cookie", &s2.cookie)], b"");
    assert!(
        snap.body
            .contains(r#""address":"10.0.1.1:80","state":"maintenance""#),
        "{}",
        snap.body
    );
    assert!(
        snap.body.contains(r#""address":"10.0.1.2:80","state":"drained","forward":"Masq","weight":0,"configured_weight":1"#),
        "{}",
        snap.body
    );
    assert_eq!(act(&d, &s2, "ready", "10.0.1.1:80"), 200);
    assert_eq!(c.fake.weight("10.0.1.1:80"), Some(3));
    // Reconciled at start: what the table no longer bears out is dropped (here the drained
    // server's weight was set back behind the console's back, as a reload would).
    for (server, w) in c.fake.servers.lock().unwrap().iter_mut() {
        if server == "10.0.1.2:80" {
            *w = 1;
        }
    }
    let e = d.restart();
    let state = std::fs::read_to_string(e.dir.join("console-state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(v["maintenance"], serde_json::json!([]), "{state}");
    assert_eq!(v["drained"], serde_json::json!([]), "{state}");
}

#[test]
fn sync_counters_and_the_sorry_server_are_on_the_page() {
    let c = Console::start();
    *c.fake.sorry.lock().unwrap() = format!("TCP  {VIP} 10.0.1.2:80\n");
    let s = c.login("vera");
    let snap = c.req("GET", "/api/snapshot", &[("Cookie", &s.cookie)], b"");
    let v: serde_json::Value = serde_json::from_str(&snap.body).unwrap();
    assert_eq!(v["services"][0]["servers"][1]["state"], "sorry", "{v}");
    assert_eq!(v["services"][0]["servers"][0]["state"], "up", "{v}");
    assert_eq!(
        v["sync"],
        serde_json::json!([{"name": "messages sent", "value": 20}, {"name": "send errors", "value": 0}])
    );
    let page = c.req("GET", "/", &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body.contains(
            r#"<tr data-sync="messages sent"><th scope="row">messages sent</th><td>20</td></tr>"#
        ),
        "{}",
        page.body
    );
}

#[test]
fn sessions_expire_when_idle_and_end_at_logout() {
    let c = Console::start_with(|a| a.idle_timeout = 1);
    let s = c.login("alice");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        c.req("GET", "/api/whoami", &[("Cookie", &s.cookie)], b"")
            .status,
        401
    );
    let d = Console::start();
    let s = d.login("alice");
    let r = d.form(
        "/logout",
        &format!("csrf={}", s.csrf),
        Some(&s.cookie),
        None,
    );
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        d.req("GET", "/api/whoami", &[("Cookie", &s.cookie)], b"")
            .status,
        401
    );
}

#[test]
fn the_console_refuses_to_start_without_a_user_or_beyond_loopback_without_tls() {
    let dir = temp_dir();
    let mut a = args(&dir);
    let e = web::start(&a, Fake::new()).unwrap_err();
    assert!(e.contains("users"), "{e}");
    std::fs::write(dir.join("users"), "# nobody\n").unwrap();
    let e = web::start(&a, Fake::new()).unwrap_err();
    assert!(
        e.contains("no user") && e.contains("rvs console passwd"),
        "{e}"
    );
    users_file(&dir);
    a.listen = "0.0.0.0:0".parse().unwrap();
    let e = web::start(&a, Fake::new()).unwrap_err();
    assert!(e.contains("requires TLS"), "{e}");
}

/// One request over TLS to `addr`, trusting `cert`; the whole answer.
fn tls_req(addr: SocketAddr, cert: &rustls::pki_types::CertificateDer<'static>, raw: &str) -> Resp {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("console.test").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(raw.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    Resp {
        status,
        headers: lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_string(),
    }
}

#[test]
fn under_tls_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent() {
    let key = rcgen::generate_simple_self_signed(vec!["console.test".to_string()]).unwrap();
    let c = Console::start_with(|a| {
        let dir = a.users.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.signing_key.serialize_pem()).unwrap();
        a.cert = Some(dir.join("cert.pem"));
        a.key = Some(dir.join("key.pem"));
    });
    let cert = key.cert.der().clone();
    let host = "console.test";
    let body = "user=alice&password=alice-password";
    let r = tls_req(
        c.addr,
        &cert,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-rvs_session="), "{cookie}");
    for attr in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let session = cookie.split(';').next().unwrap();
    let r = tls_req(
        c.addr,
        &cert,
        &format!(
            "GET /api/whoami HTTP/1.1\r\nHost: {host}\r\nCookie: {session}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"user\":\"alice\""), "{}", r.body);
    // The plain-HTTP cookie name is not accepted under TLS, and http:// is not the origin.
    let plain = session.replace("__Host-rvs_session", "rvs_session");
    let r = tls_req(
        c.addr,
        &cert,
        &format!(
            "GET /api/whoami HTTP/1.1\r\nHost: {host}\r\nCookie: {plain}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(r.status, 401);
    let r = tls_req(
        c.addr,
        &cert,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 403);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut s = TcpStream::connect(c.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn the_openapi_document_names_every_api_route() {
    let c = Console::start();
    let r = c.req(
        "GET",
        "/api/openapi.json",
        &[("Authorization", "Bearer rvs_viewtoken")],
        b"",
    );
    assert_eq!(r.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // Every API route of the router (web.rs) is documented, and nothing else.
    let mut want: Vec<&str> = ROUTES
        .iter()
        .copied()
        .filter(|p| p.starts_with("/api/") || *p == "/events")
        .filter(|p| !p.contains(".."))
        .collect();
    let mut got = paths.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // Each route answers as the document says (GETs; POSTs are tested above).
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_some() && path != "/events" {
            let r = c.req("GET", path, &[("Authorization", "Bearer rvs_optoken")], b"");
            let role = item["get"]["x-rvs-role"].as_str().unwrap();
            let want = if role == "admin" { 403 } else { 200 };
            assert_eq!(r.status, want, "{path}");
        }
    }
}

#[test]
fn a_body_that_never_arrives_is_cut_off() {
    let c = Console::start();
    let mut s = TcpStream::connect(c.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=",
        c.addr
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let r = read_response(&mut s);
    assert_eq!(r.status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// An active-active director's announcement (`list --announce`) is on the page and in the
/// snapshot API; a director in another mode shows no such panel.
#[test]
fn the_page_and_the_api_show_an_active_active_directors_announcement() {
    let c = Console::start();
    let s = c.login("root");
    let page = c.req("GET", "/", &[("Cookie", &s.cookie)], b"");
    assert!(!page.body.contains("Active-active"), "{}", page.body);
    *c.fake.announce.lock().unwrap() = "Active-active: table 29302 dev rvsvip0, convergence \
        delay 5 s, director drained\nVIP                                      Announced  Reason\n\
        10.0.0.1                                 no         director drained\n"
        .into();
    let page = c.req("GET", "/", &[("Cookie", &s.cookie)], b"");
    assert!(
        page.body
            .contains("Director: <strong id=\"announce-director\">drained</strong>"),
        "{}",
        page.body
    );
    let r = c.req(
        "GET",
        "/api/snapshot",
        &[("Authorization", "Bearer rvs_viewtoken")],
        b"",
    );
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["announce"]["director"], "drained");
    assert_eq!(v["announce"]["vips"][0]["vip"], "10.0.0.1");
    assert_eq!(v["announce"]["vips"][0]["announced"], false);
    assert_eq!(v["announce"]["vips"][0]["reason"], "director drained");
}
