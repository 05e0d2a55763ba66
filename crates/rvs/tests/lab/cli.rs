//! `rvs lab up|exec|show|down` from the command line, across processes.

use crate::harness::{alive, assert_gone, require_root_lab, rvs, state_dir};
use crate::lab;

/// Runs `rvs lab down` for a lab made through the CLI when the test ends, however it ends.
struct CliLab(String);

impl Drop for CliLab {
    fn drop(&mut self) {
        let dir = state_dir();
        let _ = rvs(&[
            "lab",
            "down",
            "--name",
            &self.0,
            "--state-dir",
            dir.to_str().unwrap(),
        ]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn up_exec_down_round_trip() {
    require_root_lab();
    let name = format!("tcli{}", std::process::id());
    let dir = state_dir();
    let dir = dir.to_str().unwrap();
    let base = ["--name", name.as_str(), "--state-dir", dir];

    let up = rvs(&[&["lab", "up", "--real-servers", "2"][..], &base].concat());
    let _guard = CliLab(name.clone());
    assert!(up.status.success(), "lab up: {}", text(&up.stderr));
    let info = lab::load(&state_dir(), &name).unwrap();
    let out = text(&up.stdout);
    for (node, ns) in &info.namespaces {
        assert!(
            out.contains(ns),
            "`lab up` shows {node}'s namespace {ns}:\n{out}"
        );
    }
    assert!(out.contains("10.2.0.12/24"));
    assert_eq!(info.pids.len(), 2);
    assert_eq!(
        info.owner, None,
        "a lab left running by `lab up` has no owner"
    );
    assert!(
        info.pids.iter().all(|&p| alive(p)),
        "httpd runs after `lab up` exits"
    );

    let got = rvs(&[
        &["lab", "exec"][..],
        &base,
        &[
            "director",
            "--",
            "curl",
            "-s",
            "-m",
            "3",
            "http://10.2.0.12/",
        ],
    ]
    .concat());
    assert_eq!(text(&got.stdout), "rs2\n", "{}", text(&got.stderr));
    let code = rvs(&[
        &["lab", "exec"][..],
        &base,
        &["client", "--", "sh", "-c", "exit 7"],
    ]
    .concat());
    assert_eq!(
        code.status.code(),
        Some(7),
        "exec passes the exit status on"
    );
    let bad = rvs(&[&["lab", "exec"][..], &base, &["rs9", "--", "true"]].concat());
    assert!(!bad.status.success() && text(&bad.stderr).contains("rs9"));

    // `--opt=value` as well as `--opt value`.
    let show = rvs(&[
        "lab",
        "show",
        &format!("--name={name}"),
        &format!("--state-dir={dir}"),
    ]);
    assert!(
        text(&show.stdout).contains(&info.namespaces[1].1),
        "{}",
        text(&show.stderr)
    );

    let again = rvs(&[&["lab", "up"][..], &base].concat());
    assert!(!again.status.success(), "a taken name is refused");
    assert!(text(&again.stderr).contains("exists already"));

    let down = rvs(&[&["lab", "down"][..], &base].concat());
    assert!(down.status.success(), "lab down: {}", text(&down.stderr));
    assert_gone(&info, &info.pids);
    let twice = rvs(&[&["lab", "down"][..], &base].concat());
    assert!(!twice.status.success() && text(&twice.stderr).contains("no lab"));
}
