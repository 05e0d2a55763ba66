//! The console in a real browser: headless Chromium driven through WebDriver (Debian's
//! `chromium` and `chromium-driver`, installed by scripts/test; `--headless=new
//! --no-sandbox` as root). Logs in through the form, sees the live table, sees a count
//! change arrive over Server-Sent Events without a reload, drains a real server with the
//! form's button, finds each step on the audit page, and edits the configuration (an
//! invalid edit refused with the parser's message in the page, the diff, apply, rollback) — with the page's own CSP in
//! force (its script must run, so nothing it needs is inline). Screenshots of each page go
//! to `target/console-screenshots/`.
//!
//! A second test edits a keepalived.conf virtual_server through its form and adds a user
//! and a token on the Users page.
//!
//! Against the fake daemon of tests/common; no root or lab needed.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::*;
use fantoccini::{Client, Locator};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use webdriver::*;

/// chromedriver, ended when dropped (it is this test's own child).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver (Debian chromium-driver, installed by scripts/test): {e}")
        });
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, port)
}

/// The text of the `field` cell of the row of `server`.
async fn cell(c: &Client, server: &str, field: &str) -> String {
    cell_of(c, &format!("TCP {VIP}|{server}"), field).await
}

/// Wait (bounded) until `cell` reads `want`.
async fn wait_cell(c: &Client, server: &str, field: &str, want: &str) {
    wait_cell_by(c, &format!("TCP {VIP}|{server}"), field, want, |t| {
        t == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_sees_the_live_table_and_drains() {
    let console = Console::start_with(|a| {
        let dir = a.users.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("lvs.cf"), "serial_no = 1\nprimary = 10.0.0.1\n").unwrap();
        a.config = Some(dir.join("lvs.cf"));
        a.config_versions = dir.join("versions");
    });
    let base = console.origin();
    let (_driver, port) = start_driver();
    let c = session(port).await;

    // Not logged in: the page sends the browser to the login form.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    shot(&c, "login").await;
    c.find(Locator::Css("#user"))
        .await
        .unwrap()
        .send_keys("root")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("root-password")
        .await
        .unwrap();
    click(&c, "form.login button").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.current_url().await.unwrap().path() != "/" {
        assert!(Instant::now() < deadline, "not logged in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The live table, its script running under the CSP (it says "live" once connected).
    assert_eq!(cell(&c, "10.0.1.1:80", "active").await, "2");
    assert_eq!(cell(&c, "10.0.1.1:80", "weight").await, "3");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = c
            .find(Locator::Css("#live-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if s == "live" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page's script did not connect: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A change in the daemon arrives without a reload (the marker survives).
    c.execute("window.rvsMarker = 42; return 0;", vec![])
        .await
        .unwrap();
    console.fake.active.store(9, Ordering::Relaxed);
    wait_cell(&c, "10.0.1.1:80", "active", "9").await;
    wait_cell(&c, "10.0.1.2:80", "active", "9").await;
    let marker = c.execute("return window.rvsMarker;", vec![]).await.unwrap();
    assert_eq!(marker, serde_json::json!(42), "the page was reloaded");
    shot(&c, "monitoring").await;

    // Drain 10.0.1.2 with its button: the plain form POST, then the page again.
    let drain = format!("tr[data-key=\"TCP {VIP}|10.0.1.2:80\"] button[value=\"drain\"]");
    click(&c, &drain).await;
    wait_cell(&c, "10.0.1.2:80", "state", "drained").await;
    let flash = wait_text(&c, ".flash", |t| t.starts_with("Done: drain")).await;
    assert!(flash.starts_with("Done: drain TCP"), "{flash}");
    assert_eq!(
        console.fake.edits(),
        [format!("-e -t {VIP} -r 10.0.1.2:80 -m -w 0")]
    );
    assert_eq!(cell(&c, "10.0.1.2:80", "weight").await, "0");
    assert_eq!(cell(&c, "10.0.1.2:80", "configured_weight").await, "1");
    shot(&c, "drained").await;

    // The audit page lists the login and the drain.
    click(&c, "nav a[href=\"/audit\"]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.current_url().await.unwrap().path() != "/audit" {
        assert!(Instant::now() < deadline, "no audit page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = c
        .find(Locator::Css("main table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(table.contains("root") && table.contains("login"), "{table}");
    assert!(
        table.contains(&format!("TCP {VIP} -> 10.0.1.2:80")),
        "{table}"
    );
    assert!(
        table.contains("-a -t 192.168.0.100:80 -r 10.0.1.2:80 -m -w 0"),
        "{table}"
    );
    shot(&c, "audit").await;

    // The configuration: an invalid edit is refused with the parser's message in the
    // page; a valid one is applied; then rolled back.
    click(&c, "nav a[href=\"/config\"]").await;
    wait_path(&c, "/config").await;
    let area = c.find(Locator::Css("#text")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys("serial_no = 1\nbogus = yes\nprimary = 10.0.0.1\n")
        .await
        .unwrap();
    click(&c, "button[value=\"apply\"]").await;
    let errors = wait_text(&c, "#errors", |t| t.contains("bogus")).await;
    assert!(
        errors.ends_with("lvs.cf:2:1: error: unknown keyword \"bogus\""),
        "{errors}"
    );
    shot(&c, "config-refused").await;
    let area = c.find(Locator::Css("#text")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys("serial_no = 1\nprimary = 10.0.0.2\n")
        .await
        .unwrap();
    click(&c, "button[value=\"diff\"]").await;
    let diff = wait_text(&c, "#diff", |t| t.contains("+primary")).await;
    assert!(
        diff.contains("-primary = 10.0.0.1\n+primary = 10.0.0.2"),
        "{diff}"
    );
    shot(&c, "config-diff").await;
    click(&c, "button[value=\"apply\"]").await;
    let flash = wait_text(&c, ".flash", |t| t.starts_with("Applied")).await;
    assert!(flash.starts_with("Applied"), "{flash}");
    let file = console.dir.join("lvs.cf");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "serial_no = 2\nprimary = 10.0.0.2\n"
    );
    click(&c, ".versions button").await;
    let flash = wait_text(&c, ".flash", |t| t.starts_with("Rolled back")).await;
    assert!(flash.starts_with("Rolled back to"), "{flash}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "serial_no = 3\nprimary = 10.0.0.1\n"
    );
    assert_eq!(console.fake.reloads.load(Ordering::Relaxed), 2);

    // Log out: back to the login page, and / sends there again.
    click(&c, "nav form button").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.current_url().await.unwrap().path() != "/login" {
        assert!(Instant::now() < deadline, "not logged out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    c.close().await.unwrap();
}

/// A keepalived.conf object form and the Users page in the browser: the virtual_server
/// form's scheduler select and a field, applied (the exact file after it, comments kept,
/// rvs's parser accepting it); a value rvs's parser refuses shown with its
/// file:line:column in the page; a user added and a token created on the Users page (its
/// secret shown once). Screenshots `ka-form`, `ka-refused`, `users`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_edits_a_keepalived_virtual_server_and_manages_users() {
    const KA: &str = "# the director\nvirtual_server 10.0.0.100 80 {\n    lb_algo rr   # for now\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.1.1 80 {\n        weight 1\n    }\n}\n";
    let console = console_on("keepalived.conf", KA);
    let file = console.dir.join("keepalived.conf");
    let base = console.origin();
    let (_driver, port) = start_driver();
    let c = session(port).await;
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(&c, "#user", "root").await;
    fill(&c, "#password", "root-password").await;
    click(&c, "form.login button").await;
    wait_path(&c, "/").await;

    // The list of objects, then the virtual server's form.
    click(&c, "nav a[href=\"/config/panels\"]").await;
    wait_path(&c, "/config/panels").await;
    let row = wait_text(&c, "#virtuals tbody tr", |t| t.contains("10.0.0.100 80")).await;
    assert!(row.contains("rr NAT TCP"), "{row}");
    click(
        &c,
        "#virtuals a[href=\"/config/form?form=ka-virtual&vs=0\"]",
    )
    .await;
    wait_path(&c, "/config/form").await;
    c.find(Locator::Css("#f-lb_algo"))
        .await
        .unwrap()
        .select_by_value("wlc")
        .await
        .unwrap();
    fill(&c, "#f-persistence_timeout", "300").await;
    shot(&c, "ka-form").await;
    click(&c, "button[value=\"apply\"]").await;
    let flash = wait_text(&c, ".flash", |t| t.starts_with("Applied")).await;
    assert!(
        flash.starts_with("Applied config form edit virtual_server 10.0.0.100 80"),
        "{flash}"
    );
    let want = KA
        .replace("lb_algo rr   # for now", "lb_algo wlc   # for now")
        .replace(
            "protocol TCP\n",
            "protocol TCP\n    persistence_timeout 300\n",
        );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), want);
    assert_eq!(parse(&file), Ok("ok\n".into()));
    assert_eq!(console.fake.reloads.load(Ordering::Relaxed), 1);

    // FullNAT with a local address group that is not there: rvs's parser refuses, its
    // message in the page.
    click(
        &c,
        "#virtuals a[href=\"/config/form?form=ka-virtual&vs=0\"]",
    )
    .await;
    wait_path(&c, "/config/form").await;
    c.find(Locator::Css("#f-lb_kind"))
        .await
        .unwrap()
        .select_by_value("FNAT")
        .await
        .unwrap();
    fill(&c, "#f-laddr_group_name", "nosuchgroup").await;
    click(&c, "button[value=\"apply\"]").await;
    let errors = wait_text(&c, "#errors", |t| t.contains("error:")).await;
    assert!(
        errors.starts_with(&format!(
            "{}:8:17: error: FullNAT real server 10.0.1.1 needs a local address pool",
            file.display()
        )),
        "{errors}"
    );
    shot(&c, "ka-refused").await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), want);

    // The Users page: add an operator, create a token (shown once).
    click(&c, "nav a[href=\"/users\"]").await;
    wait_path(&c, "/users").await;
    fill(&c, "#new-name", "olga").await;
    fill(&c, "#new-password", "olga-password").await;
    c.find(Locator::Css("#new-role"))
        .await
        .unwrap()
        .select_by_value("operator")
        .await
        .unwrap();
    click(&c, "#add-user button").await;
    wait_text(&c, "#message", |t| t == "user olga (operator) added").await;
    let row = wait_text(&c, "tr[data-user=\"olga\"]", |t| t.contains("operator")).await;
    assert!(row.starts_with("olga"), "{row}");
    fill(&c, "#token-name", "ci").await;
    click(&c, "#add-token button").await;
    let shown = wait_text(&c, "#message", |t| t.contains("shown only now")).await;
    let secret = shown.rsplit(' ').next().unwrap().to_string();
    assert!(secret.starts_with("rvs_") && secret.len() == 68, "{shown}");
    shot(&c, "users").await;
    let users = rvs_console::users::Users::load(&console.dir.join("users")).unwrap();
    assert_eq!(
        users.verify_token(&secret),
        Some(("ci".into(), rvs_console::users::Role::Viewer))
    );
    assert!(users.verify_password("olga", "olga-password").is_some());
    c.close().await.unwrap();
}
