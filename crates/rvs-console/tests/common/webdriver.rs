//! What the browser tests share (this crate's tests/browser.rs and the lab's
//! crates/rvs/tests/lab/console_browser.rs, which includes this file by path): a WebDriver
//! session with headless Chromium, screenshots under `target/console-screenshots/`, and
//! bounded waits for what a page shows (a click's navigation may still be under way).
#![allow(dead_code, unreachable_pub)]

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A session of headless Chromium (Debian's `/usr/bin/chromium`, as root `--no-sandbox`)
/// through the chromedriver listening on `port`.
pub async fn session(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// Save a screenshot as `target/console-screenshots/NAME.png`.
pub async fn shot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The text of the `field` cell of the live table's row `key` (`SERVICE|SERVER`); empty
/// while the row is not there (a navigation under way).
pub async fn cell_of(c: &Client, key: &str, field: &str) -> String {
    let css = format!("tr[data-key=\"{key}\"] td[data-f=\"{field}\"]");
    match c.find(Locator::Css(&css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Wait (bounded) until the cell's text passes `ok`: that text.
pub async fn wait_cell_by(
    c: &Client,
    key: &str,
    field: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = cell_of(c, key, field).await;
        if ok(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{key} {field}: {got:?}, not {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (bounded) until the element `css` exists with a text `ok` accepts: that text.
pub async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if ok(&t) {
                return t;
            }
            last = t;
        }
        assert!(Instant::now() < deadline, "{css}: {last:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (bounded) until the browser is at `path`.
pub async fn wait_path(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.current_url().await.unwrap().path() != path {
        assert!(Instant::now() < deadline, "not at {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Find the element `css` and click it.
pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Replace the text of the input `css`.
pub async fn fill(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}
