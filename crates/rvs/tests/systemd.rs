//! The shipped systemd units (`dist/systemd/*.service`) pass `systemd-analyze verify`, and
//! their `systemd-analyze security` exposure is the figure docs/operating.md states.
//!
//! The units name `/usr/local/bin/rvs` (where `cargo install --path crates/rvs --root
//! /usr/local` puts it); verify checks that the program exists, so the test verifies
//! copies that name the binary cargo built instead — nothing else is changed. Without
//! `systemd-analyze` (Debian package `systemd`, which scripts/test installs) the test
//! fails; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 4] = [
    "rvs.service",
    "rvs-realserver.service",
    "rvs-realserver-dr.service",
    "rvs-realserver-tun.service",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The units, copied into a fresh directory (one per test) with the built binary's path.
fn staged(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rvs-units-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for unit in UNITS {
        let text = std::fs::read_to_string(repo().join("dist/systemd").join(unit))
            .unwrap_or_else(|e| panic!("dist/systemd/{unit}: {e}"));
        assert!(
            text.contains("/usr/local/bin/rvs "),
            "{unit} runs /usr/local/bin/rvs"
        );
        let text = text.replace(
            "/usr/local/bin/rvs ",
            &format!("{} ", env!("CARGO_BIN_EXE_rvs")),
        );
        std::fs::write(dir.join(unit), text).unwrap();
    }
    dir
}

fn analyze(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): install Debian's systemd package (scripts/test does)")
        })
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = staged("verify");
    let out = analyze(&dir, &[&["verify"][..], &UNITS[..]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    // Warnings (unknown keys, bad values) go to stderr with a zero exit status.
    assert_eq!(stderr.trim(), "", "systemd-analyze verify warned");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exposure_scores_are_the_documented_ones() {
    let dir = staged("security");
    let docs = std::fs::read_to_string(repo().join("docs/operating.md")).unwrap();
    for unit in UNITS {
        let out = analyze(&dir, &["security", "--offline=yes", "--no-pager", unit]);
        let text = String::from_utf8_lossy(&out.stdout);
        let score = text
            .lines()
            .find_map(|l| {
                l.split(&format!("Overall exposure level for {unit}: "))
                    .nth(1)
            })
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no exposure level for {unit}:\n{text}"));
        let row = format!("| `{unit}` | {score} |");
        assert!(
            docs.contains(&row),
            "docs/operating.md should state {unit}'s exposure as the row {row:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every unit starts without its environment file (nothing creates `/etc/rvs/*.env`):
/// each `EnvironmentFile=` is optional (`-`), and the commented template the units name
/// exists and mentions every variable they read.
#[test]
fn environment_files_are_optional_and_templated() {
    let template = std::fs::read_to_string(repo().join("dist/systemd/realserver.env"))
        .expect("dist/systemd/realserver.env");
    for unit in UNITS {
        let text = std::fs::read_to_string(repo().join("dist/systemd").join(unit)).unwrap();
        for line in text.lines() {
            if let Some(file) = line.strip_prefix("EnvironmentFile=") {
                assert!(file.starts_with('-'), "{unit}: {line} is not optional");
            }
        }
        if text.contains("/etc/rvs/realserver.env") {
            for var in ["RVS_AGENT_LISTEN", "RVS_REALSERVER_ARGS"] {
                if text.contains(&format!("${var}")) || text.contains(&format!("${{{var}}}")) {
                    assert!(
                        template.contains(&format!("#{var}=")),
                        "the template should show {var}"
                    );
                }
            }
        }
    }
}
