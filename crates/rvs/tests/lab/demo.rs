//! `rvs demo` end to end. Until `rvs daemon` exists the demo must fail cleanly (saying
//! the daemon exited) and leave nothing behind; once it exists, it must show the spread.

use rvs_sys::netns;

use crate::harness::{require_root_lab, rvs_exe};

#[test]
fn demo_spreads_requests_or_fails_cleanly() {
    require_root_lab();
    let child = std::process::Command::new(rvs_exe())
        .args(["demo", "--requests", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        for rs in ["rs1: ", "rs2: ", "rs3: "] {
            assert!(stdout.contains(rs), "{rs} in the spread:\n{stdout}");
        }
    } else {
        assert!(
            stderr.contains("rvs daemon exited") || stderr.contains("did not answer"),
            "the demo says why it failed:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("network = nat"), "{stdout}");
    let tag = format!("-{pid}-");
    let left: Vec<_> = netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("demo") && n.contains(&tag))
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}
