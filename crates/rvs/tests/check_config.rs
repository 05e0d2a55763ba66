//! `rvs check-config` on every sample configuration in the tree — the keepalived project's
//! own `doc/samples`, the lvs.cf files in Piranha's style, the ipvsadm rules — with the
//! output (effective configuration in `ipvsadm -S -n` form, or the diagnostics) and the exit
//! status checked in as snapshots. Warnings go to stderr and are snapshotted by the parser
//! tests; here the command's contract is tested: exit 0 with the rules, or exit 1 with
//! `file:line:column` diagnostics.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rvs-config/tests/data")
}

fn check(file: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .arg("check-config")
        .arg(file)
        .current_dir(data())
        .output()
        .expect("rvs runs");
    let shown = file
        .strip_prefix(data())
        .unwrap_or(file)
        .display()
        .to_string();
    let mut s = format!(
        "$ rvs check-config {shown}\nexit {}\n",
        out.status.code().unwrap_or(-1)
    );
    s += &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Diagnostics name the file by the path given: make them relative for the snapshot.
        let err =
            String::from_utf8_lossy(&out.stderr).replace(&format!("{}/", data().display()), "");
        s += &err;
    }
    s
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn keepalived_samples() {
    let dir = data().join("keepalived/samples");
    let all: Vec<String> = files(&dir).iter().map(|f| check(f)).collect();
    assert!(all.len() >= 30, "the upstream samples are all here");
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn lvs_cf_and_ipvsadm_samples() {
    let mut all = Vec::new();
    for f in files(&data())
        .iter()
        .chain(files(&data().join("ipvsadm")).iter())
    {
        all.push(check(f));
    }
    for f in files(&data().join("keepalived")) {
        all.push(check(&f));
    }
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn piranha_style_sample_and_a_file_pulse_refuses() {
    // A file shaped like Piranha's annotated sample (virtual and failover blocks): accepted.
    let out = check(&data().join("piranha/virtual_and_failover.cf"));
    assert!(
        out.starts_with(
            "$ rvs check-config piranha/virtual_and_failover.cf\nexit 0\n-A -f 100 -s wlc -p 60\n"
        ),
        "{out}"
    );
    // No active virtual: pulse exits ("no active lvs services defined"), and so does
    // check-config, before the daemon would.
    let dir = std::env::temp_dir().join(format!("rvs-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("idle.cf");
    std::fs::write(
        &file,
        "serial_no = 2\nvirtual web {\n address = 10.0.0.1 eth0:1\n}\n",
    )
    .unwrap();
    let out = check(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.contains("\nexit 1\n"), "{out}");
    assert!(
        out.contains("idle.cf:2:1: error: no active lvs services defined"),
        "{out}"
    );
}

#[test]
fn broken_files_exit_1_with_locations() {
    for dir in ["broken", "keepalived/broken"] {
        for f in files(&data().join(dir)) {
            let out = check(&f);
            assert!(out.contains("\nexit 1\n"), "{out}");
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                out.contains(&format!("{name}:")),
                "a file:line:column diagnostic for {name}:\n{out}"
            );
        }
    }
}

fn rvs(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .output()
        .expect("rvs runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rvs convert` to each format and back gives the same effective configuration, health
/// checks included; what a format cannot say is refused.
#[test]
fn convert_round_trips_through_every_format() {
    let rules = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("# rvs: read as"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dir = std::env::temp_dir().join(format!("rvs-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Each source through the formats that can say everything it says.
    for (src, targets) in [
        (
            "nat_two_tier.cf",
            &[("toml", "c.toml"), ("lvs.cf", "c.cf")][..],
        ),
        (
            "keepalived/health.conf",
            &[("toml", "k.toml"), ("keepalived", "keepalived.conf")][..],
        ),
    ] {
        let src = data().join(src);
        let src = src.to_str().unwrap();
        let (code, original, _) = rvs(&["check-config", src]);
        assert_eq!(code, 0);
        assert!(original.contains("# rvs: health "), "{original}");
        for (to, name) in targets {
            let (code, text, err) = rvs(&["convert", "--to", to, src]);
            assert_eq!(code, 0, "convert --to {to}: {err}");
            let out = dir.join(name);
            std::fs::write(&out, &text).unwrap();
            let (code, back, err) = rvs(&["check-config", out.to_str().unwrap()]);
            assert_eq!(code, 0, "{to}:\n{text}\n{err}");
            assert_eq!(rules(&back), rules(&original), "{to}:\n{text}");
            // And back again from the converted file: the same text.
            let (code, again, err) = rvs(&["convert", "--to", to, out.to_str().unwrap()]);
            assert_eq!(code, 0, "{err}");
            assert_eq!(again, text, "{to}");
        }
    }
    // nanny's checks are not keepalived's, and keepalived's not nanny's.
    for (src, to, needle) in [
        ("nat_two_tier.cf", "keepalived", "slow start"),
        (
            "keepalived/health.conf",
            "lvs.cf",
            "nanny sends and expects",
        ),
    ] {
        let src = data().join(src);
        let (code, _, err) = rvs(&["convert", "--to", to, src.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("cannot express") && err.contains(needle),
            "{err}"
        );
    }
    // What a format cannot say is refused with the reason.
    let fullnat = dir.join("fullnat.cf");
    std::fs::write(
        &fullnat,
        "network = fullnat\nfullnat_local = 10.2.0.250\n\
         virtual v {\n active = 1\n address = 10.1.0.100 eth0:1\n port = 80\n\
         server a {\n address = 10.2.0.11\n active = 1\n }\n}\n",
    )
    .unwrap();
    let (code, _, err) = rvs(&["convert", "--to", "keepalived", fullnat.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot express") && err.to_lowercase().contains("fullnat"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--strict` turns every warning into an error (exit 1, the warnings rendered as errors and
/// no configuration printed); without it the same file is accepted with its warnings.
#[test]
fn strict_refuses_a_file_that_only_warns() {
    let dir = std::env::temp_dir().join(format!("rvs-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("warns.conf");
    // keepalived: `lb_algo` of a real server's block is not a real-server keyword —
    // keepalived logs it and carries on; rvs warns.
    std::fs::write(
        &file,
        "virtual_server 10.1.0.100 80 {\n    lb_algo rr\n    lb_kind NAT\n    \
         protocol TCP\n    no_such_keyword 1\n    real_server 10.2.0.11 80 {\n        \
         weight 1\n    }\n}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = rvs(&["check-config", "--format", "keepalived", path]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(":5:5: warning: "), "{err}");
    assert!(out.contains("-A -t 10.1.0.100:80 -s rr"), "{out}");
    let (code, out, err) = rvs(&["check-config", "--strict", "--format", "keepalived", path]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(":5:5: error: "), "{err}");
    assert!(err.contains("(a warning; an error with --strict)"), "{err}");
    assert!(!err.contains("warning:"), "{err}");
    // The daemon refuses it too: tests/lab/check_config.rs runs it in a lab namespace.
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file the daemon would refuse before touching the system is refused by check-config:
/// an lvs.cf read as keepalived.conf gives warnings and nothing to run.
#[test]
fn check_config_refuses_what_the_daemon_refuses() {
    let file = data().join("nat_two_tier.cf");
    let path = file.to_str().unwrap();
    let (code, out, err) = rvs(&["check-config", "--format", "keepalived", path]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("error: read as keepalived, the file defines no virtual service address"),
        "{err}"
    );
    // The daemon refuses it too: tests/lab/check_config.rs runs it in a lab namespace.
    // As lvs.cf the same file is fine.
    assert_eq!(rvs(&["check-config", path]).0, 0);
}

/// A rules file saved by `ipvsadm -S` without `-n` holds names: `rvs check-config`
/// resolves them as `ipvsadm -R` does (`localhost` from /etc/hosts, `http` from
/// /etc/services); one no system knows is ipvsadm's refusal, located.
#[test]
fn rules_file_names_resolve_through_the_system() {
    let dir = std::env::temp_dir().join(format!("rvs-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("saved.rules");
    std::fs::write(
        &p,
        "-A -t localhost:http -s wlc\n-a -t localhost:http -r 127.0.0.2:www -m -w 1\n",
    )
    .unwrap();
    let (code, out, err) = rvs(&["check-config", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("-A -t 127.0.0.1:80 -s wlc\n-a -t 127.0.0.1:80 -r 127.0.0.2:80 -m -w 1\n"),
        "{out}"
    );
    std::fs::write(
        &p,
        "-A -t localhost:http -s wlc\n-A -t no-such-host.invalid:http\n",
    )
    .unwrap();
    let (code, _, err) = rvs(&["check-config", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("saved.rules:2:7: error: illegal virtual server address[:port] specified"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--config-id` selects keepalived.conf's `@ID` lines as keepalived's `-i` does.
#[test]
fn config_id_selects_conditional_lines() {
    let f = data().join("keepalived/lenient/parameters.conf");
    let f = f.to_str().unwrap();
    let (code, lb2, _) = rvs(&["check-config", "--config-id", "lb2", f]);
    assert_eq!(code, 0);
    assert!(lb2.contains("-A -t 192.168.10.9:80 -s wlc\n"), "{lb2}");
    assert!(
        lb2.contains("-r 10.0.1.1:80 -m -w 1\n"),
        "`@^lb1` applies: {lb2}"
    );
    let (code, lb1, _) = rvs(&["check-config", "--config-id", "lb1", f]);
    assert_eq!(code, 0);
    assert!(!lb1.contains("192.168.10.9"), "{lb1}");
    assert!(
        lb1.contains("-r 10.0.1.1:80 -m -w 3\n"),
        "`@lb1` applies: {lb1}"
    );
}

/// The original tools read bytes: a comment in another encoding changes nothing (no
/// warning); a value with bytes that are not UTF-8 is warned at its place.
#[test]
fn files_that_are_not_utf8_are_read_as_the_originals_read_bytes() {
    let dir = std::env::temp_dir().join(format!("rvs-latin1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("latin1.conf");
    let mut text = b"! Konfiguration f\xfcr den Director\nvirtual_server 10.1.0.100 80 {\n  \
        lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  real_server 10.2.0.11 80 {\n    \
        weight 1  # Gew\xe4hlt\n  }\n}\n"
        .to_vec();
    std::fs::write(&p, &text).unwrap();
    let path = p.to_str().unwrap();
    let (code, out, err) = rvs(&["check-config", "--format", "keepalived", path]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.contains("-a -t 10.1.0.100:80 -r 10.2.0.11:80 -m -w 1"),
        "{out}"
    );
    // A notify script's path in Latin-1: warned there.
    text.splice(
        text.len() - 4..text.len() - 4,
        b"    notify_up /opt/sk\xe9ma/up\n".to_vec(),
    );
    std::fs::write(&p, &text).unwrap();
    let (code, _, err) = rvs(&["check-config", "--format", "keepalived", path]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(":8:24: warning: bytes that are not UTF-8 are read as U+FFFD here"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rules file as `ipvsadm -R < FILE` runs it: the kernel's refusal of a line (a real
/// server given twice) is printed and the next line runs; rvs warns and skips that line.
/// A line ipvsadm cannot parse still refuses the file.
#[test]
fn rules_file_lines_the_kernel_refuses_are_skipped_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("rvs-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("saved.rules");
    std::fs::write(
        &p,
        "-A -t 10.1.0.100:80 -s rr\n-a -t 10.1.0.100:80 -r 10.2.0.11:80 -m -w 1\n\
         -a -t 10.1.0.100:80 -r 10.2.0.11:80 -m -w 1\n-a -t 10.1.0.100:80 -r 10.2.0.12:80 -m -w 1\n",
    )
    .unwrap();
    let path = p.to_str().unwrap();
    let (code, out, err) = rvs(&["check-config", path]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(":3:24: warning: Destination already exists: `ipvsadm -R` prints this"),
        "{err}"
    );
    assert!(
        out.starts_with(
            "-A -t 10.1.0.100:80 -s rr\n-a -t 10.1.0.100:80 -r 10.2.0.11:80 -m -w 1\n\
             -a -t 10.1.0.100:80 -r 10.2.0.12:80 -m -w 1\n"
        ),
        "{out}"
    );
    std::fs::write(
        &p,
        "-A -t 10.1.0.100:80 -s rr\n-a -t 10.1.0.100:80 -r 10.2.0.11 -w x\n",
    )
    .unwrap();
    let (code, _, err) = rvs(&["check-config", path]);
    assert_eq!(code, 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keywords left without a value (written so, or cut by an unterminated string): rvs
/// carries on where keepalived's handler logs and carries on, and refuses where keepalived
/// exits ("is missing a parameter") or crashes. Each case is one line in an otherwise valid
/// file; where keepalived is installed, `keepalived -t` is asked too (exit 2 or a signal:
/// it does not start).
#[test]
fn keywords_without_a_value_do_what_keepalived_does() {
    // (block the line goes in, the line, whether keepalived starts)
    let cases: &[(&str, &str, bool)] = &[
        ("global", "lvs_timeouts \"tcp 900", true),
        ("global", "lvs_sync_daemon", true),
        ("global", "router_id \"lb1", true),
        ("global", "smtp_server", false),
        ("global", "umask", false),
        ("vs", "virtualhost \"www.example.com", true),
        ("vs", "quorum_up \"/bin/up.sh", true),
        ("vs", "quorum_up", false),
        ("vs", "persistence_engine", false),
        ("rs", "notify_down \"/bin/down.sh", true),
        ("rs", "notify_down", false),
        ("rs", "virtualhost", true),
        ("http", "http_protocol \"1.1", true),
        ("url", "regex", true),
        ("url", "regex \"^OK", false),
        ("tcp", "bind_if", false),
        ("misc", "misc_path", true),
        ("misc", "misc_path \"/bin/check", false),
        ("vrrp", "notify_master \"/bin/master.sh", true),
        ("vrrp", "notify_master", false),
        ("vrrp", "unicast_ttl", false),
    ];
    let dir = std::env::temp_dir().join(format!("rvs-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("k.conf");
    let keepalived = Command::new("keepalived").arg("--version").output().is_ok();
    let mut wrong = Vec::new();
    for (n, &(block, line, starts)) in cases.iter().enumerate() {
        let at = |b: &str| if b == block { line } else { "" };
        let text = format!(
            "global_defs {{\n {}\n}}\n\
             virtual_server 10.1.0.100 80 {{\n protocol TCP\n {}\n\
             real_server 10.2.0.11 80 {{\n weight 1\n {}\n\
             TCP_CHECK {{\n {}\n }}\n\
             HTTP_GET {{\n url {{\n path /\n {}\n }}\n {}\n }}\n\
             MISC_CHECK {{\n misc_path /bin/true\n {}\n }}\n }}\n}}\n\
             vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n \
             virtual_ipaddress {{\n 10.1.0.100\n }}\n {}\n}}\n",
            at("global"),
            at("vs"),
            at("rs"),
            at("tcp"),
            at("url"),
            at("http"),
            at("misc"),
            at("vrrp"),
        );
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["check-config", "--format", "keepalived"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let key = line.split(' ').next().unwrap();
        let rvs_ok = out.status.success();
        let said = err.contains(&format!("`{key}`"));
        if rvs_ok != starts || !said {
            wrong.push(format!(
                "case {n} `{line}`: rvs exit {:?}\n{err}",
                out.status.code()
            ));
        }
        if keepalived {
            let k = Command::new("keepalived")
                .args(["-t", "-n", "-l", "-f"])
                .arg(&file)
                .output()
                .unwrap();
            let k_starts = matches!(k.status.code(), Some(c) if c != 2);
            if k_starts != starts {
                wrong.push(format!(
                    "case {n} `{line}`: keepalived -t exit {:?}",
                    k.status.code()
                ));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
