//! `rvs console` in a real browser against a lab director with traffic flowing (issue 14):
//! headless Chromium (Debian `chromium`, driven through `chromedriver` from
//! `chromium-driver`, both installed by scripts/test; the test FAILS without them) in the
//! client's namespace, the console as its own process there, the daemon in the director's.
//!
//! Log in; the live table follows the traffic over Server-Sent Events (no reload); drain a
//! real server that holds connections, close them, and see its active connections fall to
//! 0 while the others carry the traffic; flush its remaining entries with the button; add a
//! real server through the REAL SERVER panel and find it in `rvsadm -L -n` and the
//! rewritten lvs.cf (which `rvs check-config` accepts); an invalid edit refused with the
//! parser's file:line:column in the page; roll back; the audit page lists each step.
//! A second test runs the director on a keepalived.conf and adds a real server (with a
//! TCP_CHECK) through the console's real_server form.
//! Screenshots go to `target/console-screenshots/lab-*.png`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::Client;

#[path = "../../../rvs-console/tests/common/webdriver.rs"]
mod webdriver;
use webdriver::{cell_of, click, fill, session, wait_cell_by, wait_path, wait_text};

use crate::cluster::{Director, Virtual, lvs_cf, spread};
use crate::harness::{lab, rvs_exe};
use crate::lab::{self, LabOptions, Method};
use crate::rvsadm::ok;

use crate::console::CONSOLE;
const DRIVER_PORT: u16 = 9515;

/// Fails loudly (never skips) when the browser or its driver is missing.
fn require_browser() {
    for (prog, arg, pkg) in [
        ("chromedriver", "--version", "chromium-driver"),
        ("/usr/bin/chromium", "--version", "chromium"),
    ] {
        let o = Command::new(prog).arg(arg).output();
        assert!(
            o.as_ref().is_ok_and(|o| o.status.success()),
            "{prog} (Debian {pkg}, which scripts/test installs) is needed by the console's browser test: {o:?}"
        );
    }
}

async fn shot(c: &Client, name: &str) {
    webdriver::shot(c, &format!("lab-{name}")).await;
}

async fn cell(c: &Client, key: &str, field: &str) -> String {
    cell_of(c, key, field).await
}

/// Wait (bounded) until the cell's number passes `ok`: that number.
async fn wait_num(c: &Client, key: &str, field: &str, what: &str, ok: impl Fn(u64) -> bool) -> u64 {
    wait_cell_by(c, key, field, what, |t| t.parse().is_ok_and(&ok))
        .await
        .parse()
        .expect("a number")
}

/// A connection to the VIP that asked for `/` and stays open (keep-alive): the real
/// server's name and the connection.
fn held(vip: SocketAddr) -> (String, TcpStream) {
    let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the real server closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return (body.trim().to_string(), s);
            }
        }
    }
}

/// ActiveConn and InActConn of `server` in `rvsadm -L -n`.
fn conns(listing: &str, server: &str) -> Option<(u64, u64)> {
    listing.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() != Some(&"->") || w.get(1) != Some(&server) {
            return None;
        }
        Some((w.get(4)?.parse().ok()?, w.get(5)?.parse().ok()?))
    })
}

#[test]
fn console_in_a_browser_against_a_lab_director() {
    require_browser();
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 4,
        ..LabOptions::default()
    });
    let d = Director::start(
        &lab,
        "webcon",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]),
    );
    d.wait_http(lab::VIP.into());
    let wd = lab.info().workdir();
    let cf = wd.join("webcon.cf");
    let users = wd.join("console.users");
    crate::console::passwd(&users, "ada", "admin", "ada-password");
    let console = crate::console::start_console(
        &lab,
        &d,
        &users,
        &[
            "--config".as_ref(),
            cf.as_os_str(),
            "--config-versions".as_ref(),
            wd.join("versions").as_os_str(),
            "--interval".as_ref(),
            "1".as_ref(),
        ],
    );
    let driver = lab
        .spawn("client", "chromedriver", [format!("--port={DRIVER_PORT}")])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab
        .run("client", || {
            TcpStream::connect(("127.0.0.1", DRIVER_PORT)).is_ok()
        })
        .unwrap()
        .eq(&false)
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver:\n{}",
            lab.log_tail(driver)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let vip = lab::VIP;
    let service = format!("TCP {vip}:80");
    let rs = |i| format!("{}:80", lab::rs_addr(i));
    let key = |i| format!("{service}|{}", rs(i));
    let vip_addr = SocketAddr::new(vip.into(), 80);
    let control = d.control().to_path_buf();

    lab.run("client", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = session(DRIVER_PORT).await;
            let base = format!("http://{CONSOLE}");

            // Log in.
            c.goto(&format!("{base}/")).await.unwrap();
            wait_path(&c, "/login").await;
            shot(&c, "login").await;
            fill(&c, "#user", "ada").await;
            fill(&c, "#password", "ada-password").await;
            click(&c, "form.login button").await;
            wait_path(&c, "/").await;
            wait_text(&c, "#live-status", |t| t == "live").await;
            c.execute("window.rvsMarker = 7; return 0;", vec![]).await.unwrap();

            // Traffic flows: the Conns column follows it without a reload.
            let before: u64 = cell(&c, &key(1), "conns").await.parse().unwrap();
            let by_rs = spread(&lab, vip.into(), 6);
            assert_eq!(by_rs.values().sum::<usize>(), 6, "{by_rs:?}");
            wait_num(&c, &key(1), "conns", "grown", |n| n > before).await;
            // Six held connections: two on each real server (rr), active in the table.
            let mut conns_by: BTreeMap<String, Vec<TcpStream>> = BTreeMap::new();
            for _ in 0..6 {
                let (name, s) = held(vip_addr);
                conns_by.entry(name).or_default().push(s);
            }
            assert_eq!(
                conns_by.values().map(Vec::len).collect::<Vec<_>>(),
                [2, 2, 2],
                "{:?}",
                conns_by.keys()
            );
            for i in 1..=3 {
                wait_num(&c, &key(i), "active", ">= 2", |n| n >= 2).await;
            }
            let marker = c.execute("return window.rvsMarker;", vec![]).await.unwrap();
            assert_eq!(marker, serde_json::json!(7), "the page was reloaded");
            shot(&c, "monitoring").await;

            // Drain rs2 with its button: weight 0, its connections still there.
            click(&c, &format!("tr[data-key=\"{}\"] button[value=\"drain\"]", key(2))).await;
            wait_text(&c, ".flash", |t| t.starts_with("Done: drain")).await;
            assert_eq!(cell(&c, &key(2), "state").await, "drained");
            assert_eq!(cell(&c, &key(2), "weight").await, "0");
            let listing = ok(&control, "-L -n");
            assert!(conns(&listing, &rs(2)).is_some_and(|(a, _)| a >= 2), "{listing}");
            // Its clients finish: its active connections fall to 0 on the page, while the
            // others carry the new traffic and keep theirs.
            drop(conns_by.remove("rs2"));
            wait_num(&c, &key(2), "active", "0", |n| n == 0).await;
            let inactive = wait_num(&c, &key(2), "inactive", "> 0", |n| n > 0).await;
            let by_rs = spread(&lab, vip.into(), 6);
            assert_eq!(by_rs.get("rs2"), None, "{by_rs:?}");
            assert_eq!(by_rs.values().sum::<usize>(), 6, "{by_rs:?}");
            for i in [1, 3] {
                wait_num(&c, &key(i), "active", ">= 2", |n| n >= 2).await;
            }
            shot(&c, "drained").await;

            // Flush rs2's remaining (closing) entries with the button: 0 inactive too.
            click(&c, &format!("tr[data-key=\"{}\"] button[value=\"flush\"]", key(2))).await;
            let flash = wait_text(&c, ".flash", |t| t.starts_with("Done: flush")).await;
            let flushed: u64 = flash
                .rsplit_once("(flushed ")
                .and_then(|(_, n)| n.split(')').next()?.parse().ok())
                .unwrap_or_else(|| panic!("{flash}"));
            assert!(flushed >= 1 && inactive >= 1, "{flash}");
            wait_num(&c, &key(2), "inactive", "0", |n| n == 0).await;
            let listing = ok(&control, "-L -n");
            assert_eq!(conns(&listing, &rs(2)), Some((0, 0)), "{listing}");
            assert!(conns(&listing, &rs(1)).is_some_and(|(a, _)| a >= 2), "{listing}");
            shot(&c, "flushed").await;
            drop(conns_by);

            // Add rs4 through the REAL SERVER panel.
            c.goto(&format!("{base}/config/panels")).await.unwrap();
            click(&c, "tr[data-virtual=\"svc0\"] a[href*=\"new=1\"]").await;
            wait_path(&c, "/config/panel").await;
            fill(&c, "#name", "rs4").await;
            fill(&c, "#f-active", "1").await;
            fill(&c, "#f-address", &lab::rs_addr(4).to_string()).await;
            fill(&c, "#f-weight", "1").await;
            shot(&c, "panel-server").await;
            click(&c, "button[value=\"apply\"]").await;
            let flash = wait_text(&c, ".flash", |t| t.starts_with("Applied")).await;
            assert!(flash.contains("config add server svc0/rs4"), "{flash}");
            let listing = ok(&control, "-L -n");
            assert!(listing.contains(&format!("-> {}", rs(4))), "{listing}");
            let written = std::fs::read_to_string(&cf).unwrap();
            assert!(written.starts_with("serial_no = 2\n"), "{written}");
            assert!(
                written.contains(&format!(
                    "    server rs4 {{\n        active = 1\n        address = {}\n        weight = 1\n    }}\n}}\n",
                    lab::rs_addr(4)
                )),
                "{written}"
            );
            let check = Command::new(rvs_exe()).arg("check-config").arg(&cf).output().unwrap();
            assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
            let by_rs = spread(&lab, vip.into(), 8);
            assert!(by_rs.contains_key("rs4"), "{by_rs:?}");

            // An invalid edit through the VIRTUAL SERVER panel: refused with the parser's
            // file:line:column in the page, nothing written.
            c.goto(&format!("{base}/config/panel?panel=virtual&virtual=svc0")).await.unwrap();
            fill(&c, "#f-scheduler", "bogus").await;
            click(&c, "button[value=\"apply\"]").await;
            let line = written.lines().position(|l| l.contains("scheduler = rr")).unwrap() + 1;
            let want = format!("{}:{line}:17: error: unknown scheduler `bogus`", cf.display());
            let errors = wait_text(&c, "#errors", |t| t.contains("bogus")).await;
            assert!(errors.contains(&want), "{errors}\nnot: {want}");
            assert_eq!(std::fs::read_to_string(&cf).unwrap(), written);
            shot(&c, "config-refused").await;

            // Roll back to the file before rs4.
            c.goto(&format!("{base}/config")).await.unwrap();
            click(&c, ".versions button").await;
            let flash = wait_text(&c, ".flash", |t| t.starts_with("Rolled back")).await;
            assert!(flash.starts_with("Rolled back to"), "{flash}");
            let back = std::fs::read_to_string(&cf).unwrap();
            assert!(!back.contains("rs4") && back.starts_with("serial_no = 3\n"), "{back}");
            let listing = ok(&control, "-L -n");
            assert!(!listing.contains(&rs(4)), "{listing}");
            shot(&c, "rolled-back").await;

            // The audit page lists each step.
            c.goto(&format!("{base}/audit")).await.unwrap();
            let table = wait_text(&c, "main table", |t| t.contains("rollback")).await;
            for step in [
                "login",
                "drain",
                "flush",
                "config add server svc0/rs4",
                "config panel virtual svc0",
                "refused: invalid",
                "config rollback to",
            ] {
                assert!(table.contains(step), "{step}: {table}");
            }
            shot(&c, "audit").await;
            c.close().await.unwrap();
        });
    })
    .unwrap();
    // The daemon's log has the console's audit records too.
    let log = d.log();
    assert!(
        log.contains("console audit") && log.contains("config add server svc0/rs4"),
        "{log}"
    );
    let _ = lab.stop(driver);
    let _ = lab.stop(console);
}

/// A keepalived.conf director: the console's real_server form (in Chromium) adds rs3 with a
/// TCP_CHECK; the daemon reloads it (bounded wait until `rvsadm -L -n` lists it), the file
/// is the old one plus exactly that block (comments kept), `rvs check-config` accepts it,
/// and rs3 takes requests.
#[test]
fn console_in_a_browser_adds_a_keepalived_real_server_on_a_lab_director() {
    require_browser();
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        ..LabOptions::default()
    });
    let vip = lab::VIP;
    let mut conf = format!(
        "# the lab director\nvrrp_instance lab {{\n    state MASTER\n    interface eth0\n    \
         virtual_router_id 51\n    priority 100\n    virtual_ipaddress {{\n        {vip}/24 dev eth0\n        \
         {}/24 dev eth1\n    }}\n}}\n\n# the web tier\nvirtual_server {vip} 80 {{\n    lvs_sched rr   # round robin\n    \
         lvs_method NAT\n    protocol TCP\n",
        lab::NAT_ROUTER
    );
    for i in 1..=2 {
        conf += &format!(
            "    real_server {} 80 {{\n        weight 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    conf += "}\n";
    let d = Director::start(&lab, "keepalived-webcon", &conf);
    d.wait_http(vip.into());
    let wd = lab.info().workdir();
    let file = wd.join("keepalived-webcon.cf");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), conf);
    let users = wd.join("console.users");
    crate::console::passwd(&users, "ada", "admin", "ada-password");
    let console = crate::console::start_console(
        &lab,
        &d,
        &users,
        &[
            "--config".as_ref(),
            file.as_os_str(),
            "--config-versions".as_ref(),
            wd.join("versions").as_os_str(),
        ],
    );
    let driver = lab
        .spawn("client", "chromedriver", [format!("--port={DRIVER_PORT}")])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab
        .run("client", || {
            TcpStream::connect(("127.0.0.1", DRIVER_PORT)).is_ok()
        })
        .unwrap()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver:\n{}",
            lab.log_tail(driver)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let control = d.control().to_path_buf();
    let rs3 = format!("{}:80", lab::rs_addr(3));
    let flash = lab
        .run("client", || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = session(DRIVER_PORT).await;
                let base = format!("http://{CONSOLE}");
                c.goto(&format!("{base}/login")).await.unwrap();
                fill(&c, "#user", "ada").await;
                fill(&c, "#password", "ada-password").await;
                click(&c, "form.login button").await;
                wait_path(&c, "/").await;
                c.goto(&format!("{base}/config/panels")).await.unwrap();
                wait_text(&c, "#virtuals tbody tr", |t| {
                    t.contains(&format!("{vip} 80"))
                })
                .await;
                click(
                    &c,
                    "#virtuals a[href=\"/config/form?form=ka-real&vs=0&new=1\"]",
                )
                .await;
                wait_path(&c, "/config/form").await;
                fill(&c, "#f-address", &lab::rs_addr(3).to_string()).await;
                fill(&c, "#f-port", "80").await;
                fill(&c, "#f-weight", "1").await;
                c.find(fantoccini::Locator::Css("#f-check"))
                    .await
                    .unwrap()
                    .select_by_value("TCP_CHECK")
                    .await
                    .unwrap();
                fill(&c, "#f-connect_timeout", "2").await;
                shot(&c, "keepalived-form").await;
                click(&c, "button[value=\"apply\"]").await;
                let flash = wait_text(&c, ".flash", |t| t.starts_with("Applied")).await;
                c.close().await.unwrap();
                flash
            })
        })
        .unwrap();
    assert!(
        flash.starts_with(&format!(
            "Applied config form add real_server {} 80",
            lab::rs_addr(3)
        )),
        "{flash}"
    );
    // The file: the old one with the new block at the end of the virtual server (the
    // file's last block), comments and everything else as they were.
    let block = format!(
        "    real_server {} 80 {{\n        weight 1\n        TCP_CHECK {{\n            \
         connect_timeout 2\n        }}\n    }}\n",
        lab::rs_addr(3)
    );
    let want = format!("{}{block}}}\n", conf.strip_suffix("}\n").unwrap());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), want);
    let check = Command::new(rvs_exe())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The daemon reloaded it: rs3 in the table (bounded wait: health admission), then it
    // takes requests.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listing = ok(&control, "-L -n");
        if listing.contains(&format!("-> {rs3}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rs3 not listed:\n{listing}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let by_rs = spread(&lab, vip.into(), 9);
    assert!(by_rs.contains_key("rs3"), "{by_rs:?}");
    assert_eq!(by_rs.values().sum::<usize>(), 9, "{by_rs:?}");
    let _ = lab.stop(driver);
    let _ = lab.stop(console);
}
