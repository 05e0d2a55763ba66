//! The command lines of `rvs` and `rvsadm` as an operator meets them: help on stdout with
//! exit 0 for every command, `--opt=value` and `--opt value`, usage errors on stderr with
//! exit 2, the generated man pages and completions, and `rvsadm -v`'s two lines. None of it
//! needs root or a daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every command `rvs` has, and its nested ones (`rvs realserver dr`, `rvs lab up`, ...).
const COMMANDS: &[&[&str]] = &[
    &["daemon"],
    &["check-config"],
    &["convert"],
    &["reload"],
    &["list"],
    &["realserver"],
    &["realserver", "dr"],
    &["realserver", "tun"],
    &["realserver", "agent"],
    &["demo"],
    &["lab"],
    &["lab", "up"],
    &["lab", "down"],
    &["lab", "exec"],
    &["lab", "show"],
    &["lab", "list"],
    &["httpd"],
    &["console"],
    &["console", "passwd"],
    &["console", "token"],
    &["completions"],
    &["man"],
];

fn rvs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .env("RVS_CONTROL", "/nonexistent/rvs-test.ctl")
        .output()
        .expect("rvs runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rvs-config/tests/data/nat_two_tier.cf")
}

#[test]
fn daemon_help_lists_the_daemon_options_on_stdout() {
    let out = rvs(&["daemon", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(
        help.contains("Usage: rvs daemon [OPTIONS] --config <FILE>"),
        "{help}"
    );
    for opt in [
        "-c, --config <FILE>",
        "--format <FORMAT>",
        "--config-id <ID>",
        "--strict",
        "--control <PATH>",
        "--pid-file <PATH>",
        "--metrics <ADDR:PORT>",
        "--log-format <FORMAT>",
        "--log-level <LEVEL>",
        "--gc-thresh3 <N>",
        "--conn-table-memory <SIZE>",
        "--sysctl <NAME=VALUE>",
        "--rt-priority <N>",
    ] {
        assert!(
            help.contains(opt),
            "`rvs daemon --help` lists {opt}:\n{help}"
        );
    }
    // -h is the short form: the same options, one line each.
    let short = rvs(&["daemon", "-h"]);
    assert_eq!(short.status.code(), Some(0));
    assert!(text(&short.stdout).contains("--rt-priority <N>"));
}

#[test]
fn every_command_has_help_on_stdout() {
    for cmd in COMMANDS {
        for flag in ["--help", "-h"] {
            let args = [*cmd, &[flag]].concat();
            let out = rvs(&args);
            let line = args.join(" ");
            assert_eq!(
                out.status.code(),
                Some(0),
                "rvs {line}: {}",
                text(&out.stderr)
            );
            assert!(out.stderr.is_empty(), "rvs {line}: {}", text(&out.stderr));
            let usage = format!("Usage: rvs {}", cmd.join(" "));
            assert!(
                text(&out.stdout).contains(&usage),
                "rvs {line}:\n{}",
                text(&out.stdout)
            );
        }
    }
    // `rvs help COMMAND` is the same text as `rvs COMMAND --help`.
    let a = rvs(&["help", "convert"]);
    let b = rvs(&["convert", "--help"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let v = rvs(&["--version"]);
    assert_eq!(
        text(&v.stdout),
        format!("rvs {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn options_take_their_value_after_an_equals_sign_or_apart() {
    let file = sample();
    let file = file.to_str().unwrap();
    let joined = rvs(&["check-config", "--format=lvs.cf", "--config-id=x", file]);
    let apart = rvs(&[
        "check-config",
        "--format",
        "lvs.cf",
        "--config-id",
        "x",
        file,
    ]);
    assert_eq!(joined.status.code(), Some(0), "{}", text(&joined.stderr));
    assert!(
        text(&joined.stdout).contains("-A -t "),
        "{}",
        text(&joined.stdout)
    );
    assert_eq!(joined.stdout, apart.stdout);
    // The format's aliases are taken, and its value is checked.
    let alias = rvs(&["check-config", "--format=piranha", file]);
    assert_eq!(alias.stdout, apart.stdout);
    let converted = rvs(&["convert", "--to=toml", "--from=lvs.cf", file]);
    assert_eq!(
        converted.status.code(),
        Some(0),
        "{}",
        text(&converted.stderr)
    );
    let toml = text(&converted.stdout);
    assert!(toml.contains("\n[[service]]\n"), "{toml}");
    // A daemon option with `=`: parsed, then the run fails for the missing file (exit 1, not
    // a usage error).
    let d = rvs(&[
        "daemon",
        "--config=/nonexistent/rvs.cf",
        "--rt-priority=0",
        "--sysctl=drop_entry=1",
        "--conn-table-memory=64M",
    ]);
    assert_eq!(d.status.code(), Some(1), "{}", text(&d.stderr));
    assert!(
        text(&d.stderr).contains("/nonexistent/rvs.cf"),
        "{}",
        text(&d.stderr)
    );
}

#[test]
fn usage_errors_exit_2_with_a_message_on_stderr() {
    for (args, says) in [
        (&["daemon", "-c", "x.cf", "--bogus"][..], "--bogus"),
        (&["daemon"][..], "--config <FILE>"),
        (
            &["daemon", "-c", "x.cf", "--rt-priority=100"][..],
            "--rt-priority",
        ),
        (
            &["daemon", "-c", "x.cf", "--gc-thresh3", "0"][..],
            "1..=4194304",
        ),
        (
            &["daemon", "-c", "x.cf", "--sysctl", "nope=1"][..],
            "drop_entry",
        ),
        (
            &["daemon", "-c", "x.cf", "--metrics", "9100"][..],
            "--metrics",
        ),
        (&["check-config", "--format", "yaml", "x.cf"][..], "yaml"),
        (&["check-config"][..], "<FILE>"),
        (&["convert", "x.cf"][..], "--to <FORMAT>"),
        (&["list", "--stats", "--rate"][..], "cannot be used with"),
        (&["reload", "--bogus"][..], "--bogus"),
        (&["realserver", "dr"][..], "--vip"),
        (&["lab", "frob"][..], "frob"),
        (&["demo", "--method", "ipip"][..], "ipip"),
        (&["frobnicate"][..], "frobnicate"),
        (&[][..], "Usage: rvs <COMMAND>"),
    ] {
        let out = rvs(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "rvs {args:?}: {err}");
        assert!(out.stdout.is_empty(), "rvs {args:?}: {}", text(&out.stdout));
        assert!(err.contains(says), "rvs {args:?} says {says:?}:\n{err}");
    }
}

#[test]
fn the_man_pages_name_every_command() {
    let dir = std::env::temp_dir().join(format!("rvs-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = rvs(&["man", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let top = std::fs::read_to_string(dir.join("rvs.1")).expect("rvs.1");
    assert!(top.starts_with(".ie") || top.contains(".TH rvs 1"), "{top}");
    for cmd in COMMANDS {
        // roff escapes `-` as `\-`.
        let page = format!("rvs-{}", cmd.join("-"));
        let path = dir.join(format!("{page}.1"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains(&format!(".TH {page} 1")), "{page}:\n{text}");
        if cmd.len() == 1 {
            let named = format!("{}(1)", page.replace('-', "\\-"));
            assert!(top.contains(&named), "rvs.1 names {named}:\n{top}");
        }
    }
    let daemon = std::fs::read_to_string(dir.join("rvs-daemon.1")).unwrap();
    for opt in [
        "\\-\\-rt\\-priority",
        "\\-\\-metrics",
        "\\-\\-sysctl",
        "\\-\\-strict",
    ] {
        assert!(daemon.contains(opt), "rvs-daemon.1 has {opt}");
    }
    // Without DIR: rvs(1) on stdout, the same page.
    let stdout = rvs(&["man"]);
    assert_eq!(text(&stdout.stdout), top);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = rvs(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in [
            "daemon",
            "check-config",
            "realserver",
            "rt-priority",
            "keepalived",
        ] {
            assert!(script.contains(word), "{shell} completion has {word}");
        }
    }
    let bad = rvs(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn rvsadm_version_is_ipvsadm_s_line_then_rvs_s() {
    for flag in ["-v", "--version"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
            .arg(flag)
            .env("RVS_CONTROL", "/nonexistent/rvs-test.ctl")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "rvsadm {flag}");
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)"),
            "rvsadm {flag}:\n{stdout}"
        );
        assert_eq!(lines.len(), 2, "rvsadm {flag}:\n{stdout}");
        assert!(
            lines[1].starts_with(&format!("rvs {} ", env!("CARGO_PKG_VERSION"))),
            "{stdout}"
        );
    }
    // -h starts with ipvsadm's version line too (usage_exit() prints version() first).
    let h = Command::new(env!("CARGO_BIN_EXE_rvsadm"))
        .arg("-h")
        .output()
        .unwrap();
    assert!(
        text(&h.stdout)
            .starts_with("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n"),
        "{}",
        text(&h.stdout)
    );
}
