//! `rvs demo` end to end: it serves every request through the VIP, spreads them over the
//! three real servers, prints the daemon's listing, and leaves nothing behind.

use rvs_sys::netns;

use crate::harness::{require_root_lab, rvs_exe};

/// Runs `rvs ARGS` (a demo) to its end; its standard output. Asserts it succeeded and left
/// no namespace behind.
fn run_demo(args: &[&str]) -> String {
    require_root_lab();
    let child = std::process::Command::new(rvs_exe())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo ran:\n{stdout}\n{stderr}");
    let tag = format!("-{pid}-");
    let left: Vec<_> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("demo") && n.contains(&tag))
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
    stdout
}

#[test]
fn demo_spreads_requests_and_cleans_up() {
    let stdout = run_demo(&["demo", "--requests", "30"]);
    // "rs1: 10, rs2: 10, rs3: 10": wlc over sequential requests spreads them evenly.
    let spread = stdout
        .lines()
        .find(|l| l.starts_with("rs1: "))
        .unwrap_or_else(|| panic!("a spread line:\n{stdout}"));
    let counts: Vec<u32> = spread
        .split(", ")
        .map(|kv| kv.split(": ").nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts, [10, 10, 10], "{spread}");
    assert!(
        stdout.contains("TCP  10.1.0.100:80 wlc") && stdout.contains("  -> 10.2.0.13:80"),
        "the daemon's listing:\n{stdout}"
    );
    assert!(stdout.contains("network = nat"), "{stdout}");
}

/// `rvs demo --failover`: the backup holds every keep-alive connection before the kill,
/// takes over within the VRRP budget (3 × 100 ms + skew + 100 ms), every keep-alive
/// connection goes on with its real server, and nothing is left behind.
#[test]
fn demo_failover_takes_over_under_traffic_and_cleans_up() {
    let stdout = run_demo(&["demo", "--failover"]);
    assert!(
        stdout.contains("director2 holds 10 of 10 keep-alive connections"),
        "{stdout}"
    );
    let ms: u64 = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("director2 took over: the client's first new connection went through ")?
                .split(" ms")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("a takeover line:\n{stdout}"));
    assert!(ms <= 500, "takeover after {ms} ms:\n{stdout}");
    assert!(
        stdout.contains("keep-alive connections: 10 of 10 still answering"),
        "{stdout}"
    );
    // The backup's listing, with the keep-alive connections active on it.
    let active: u64 = stdout
        .lines()
        .filter(|l| l.contains("Masq"))
        .filter_map(|l| l.split_whitespace().nth(4)?.parse::<u64>().ok())
        .sum();
    assert_eq!(active, 10, "{stdout}");
}
