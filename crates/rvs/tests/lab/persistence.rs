//! Persistence (`persistent = 300`): one client stays on one real server across many
//! connections although `rr` would rotate them; with `pmask = 255.255.255.0` a second
//! client address in the same /24 shares the first one's template, while without it
//! (the default mask is /32) the second address is scheduled afresh and lands elsewhere.

use std::collections::BTreeMap;

use crate::cluster::{Director, Virtual, lvs_cf};
use crate::harness::lab;
use crate::lab::{self, Lab, LabOptions, Method};

const SECOND_CLIENT: &str = "10.1.0.20";
const REQUESTS: usize = 12;

/// `GET /` from `source` with curl, `n` times (a new connection each); answers per real
/// server.
fn curl_from(lab: &Lab, source: &str, n: usize) -> BTreeMap<String, usize> {
    let mut by_rs = BTreeMap::new();
    let url = format!("http://{}/", lab::VIP);
    for _ in 0..n {
        let out = lab
            .exec(
                "client",
                "curl",
                ["-sS", "-m", "3", "--interface", source, &url],
            )
            .unwrap_or_else(|e| panic!("curl --interface {source} {url}: {e}"));
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        *by_rs.entry(name).or_insert(0) += 1;
    }
    by_rs
}

/// The only real server in `spread`, or a panic saying what happened.
fn one(spread: &BTreeMap<String, usize>, what: &str) -> String {
    assert_eq!(
        spread.len(),
        1,
        "{what} stays on one real server: {spread:?}"
    );
    spread.keys().next().unwrap().clone()
}

fn persistent_service(pmask: Option<&'static str>) -> Virtual {
    let mut v = Virtual::rr(lab::VIP.into(), 80, 3);
    v.persistent = Some(300);
    v.pmask = pmask;
    v
}

#[test]
fn persistence_keeps_a_client_and_its_netmask_on_one_real_server() {
    let lab = lab(LabOptions::default());
    lab.exec(
        "client",
        "ip",
        ["addr", "add", &format!("{SECOND_CLIENT}/24"), "dev", "eth0"],
    )
    .unwrap();
    let client = lab::CLIENT.to_string();

    // pmask /24: both client addresses share one template.
    let cf = lvs_cf(Method::Nat, &[persistent_service(Some("255.255.255.0"))]);
    let d = Director::start(&lab, "pmask24", &cf);
    let first = d.wait_http(lab::VIP.into());
    let rs = one(&curl_from(&lab, &client, REQUESTS), "the client");
    assert_eq!(rs, first);
    let rs2 = one(
        &curl_from(&lab, SECOND_CLIENT, REQUESTS),
        "the second address",
    );
    assert_eq!(
        rs2,
        rs,
        "{SECOND_CLIENT} is in the /24 of {client}: the same template\n{}",
        d.listing(&["-c"])
    );
    let templates = d.listing(&["-c"]);
    assert!(
        templates.contains("10.1.0.0:0"),
        "one persistence template for the /24:\n{templates}"
    );
    d.stop();

    // The default pmask (/32): the second address gets a template of its own, and rr
    // moves on to the next real server.
    let cf = lvs_cf(Method::Nat, &[persistent_service(None)]);
    let d = Director::start(&lab, "pmask32", &cf);
    d.wait_http(lab::VIP.into());
    let a = one(&curl_from(&lab, &client, REQUESTS), "the client");
    let b = one(
        &curl_from(&lab, SECOND_CLIENT, REQUESTS),
        "the second address",
    );
    assert_ne!(
        a,
        b,
        "without pmask the second address is scheduled afresh\n{}",
        d.listing(&["-c"])
    );
    d.stop();
}
