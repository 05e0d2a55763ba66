//! The daemon's control-socket request as it arrives on the socket: the first line, then
//! the rest of the stream. As `serve` in `crates/rvs/src/daemon/control.rs` does, a first line
//! starting `ipvsadm ` is an ipvsadm request (`rvs::admin::read_request`: argument count,
//! stdin length, length-prefixed arguments) run on a director with connections
//! (`rvs::admin::execute`, what the worker does after `admin::prepare`); any other line is a
//! text request (`rvs::daemon::read_request_line`: `list [options]`, `reload`, `metrics`), and a
//! listing it asks for is rendered.
//!
//! Checked: nothing panics; `read_request_line` accepts only lines whose first word is `list`,
//! `reload` or `metrics`, and refuses with a message; an ipvsadm request that reads is
//! answered with a reply that encodes and decodes to itself.
//!
//! Input: the bytes a client sends (`rvs::admin::encode_request` writes ipvsadm requests).

use rvs::daemon::read_request_line;
use rvs_core::model::Config;
use rvs_core::time::Instant;
use std::io::BufRead;
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let mut reader = data;
    let mut first = Vec::new();
    // `BufRead::read_line` into a String, as `serve` does: invalid UTF-8 is an error there.
    if reader.read_until(b'\n', &mut first).is_err() {
        return;
    }
    let Ok(line) = String::from_utf8(first) else {
        return;
    };
    let config = CONFIG.get_or_init(crate::config);
    let mut d = crate::director(config);
    let now = Instant::ZERO;
    if line.starts_with("ipvsadm ") {
        let Ok((args, stdin)) = rvs::admin::read_request(&line, &mut reader) else {
            return;
        };
        let reply = rvs::admin::execute(&mut d, &args, &stdin, now);
        let text = reply.encode();
        let back = rvs::admin::Reply::decode(&text).expect("an encoded reply decodes");
        assert_eq!(
            back.encode(),
            text,
            "a reply encodes to the same text twice"
        );
        return;
    }
    match read_request_line(&line) {
        Ok(list) => {
            let first = line.split_whitespace().next();
            assert!(
                matches!(first, Some("list" | "reload" | "metrics")),
                "accepted {line:?}"
            );
            if let Some((format, exact)) = list {
                let _ = rvs::listing::render(&d, format, exact, now);
            }
        }
        Err(e) => assert!(!e.is_empty(), "a refusal without a message"),
    }
}
