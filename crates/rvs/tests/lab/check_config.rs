//! What `rvs check-config` refuses, `rvs daemon` refuses too, before it touches the system.
//! The daemon runs in a lab director's namespace (never on the test host's network), and is
//! stopped (failing the test) if it does start. The check-config side of each case is in
//! `tests/check_config.rs`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{lab, rvs_exe};
use crate::lab::LabOptions;

/// `rvs daemon ARGS` in the lab's director: its exit status and stderr. A daemon still
/// running after 20 s is killed and the test fails: these files must be refused at start.
fn daemon_in_lab(args: &[&str]) -> (i32, String) {
    let lab = lab(LabOptions {
        real_servers: 1,
        ipv6: false,
        ..LabOptions::default()
    });
    let mut child = lab
        .command("director", rvs_exe())
        .unwrap()
        .arg("daemon")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rvs daemon {args:?} started instead of refusing the file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    (status.code().unwrap_or(-1), err)
}

fn data() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rvs-config/tests/data"
    ))
}

/// `--strict` turns the daemon's warnings into errors, as check-config's: a keepalived.conf
/// keepalived runs with a warning (an unknown keyword) is refused, located.
#[test]
fn strict_daemon_refuses_a_file_that_only_warns() {
    let dir = std::env::temp_dir().join(format!("rvs-lab-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("warns.conf");
    std::fs::write(
        &file,
        "virtual_server 10.1.0.100 80 {\n    lb_algo rr\n    lb_kind NAT\n    \
         protocol TCP\n    no_such_keyword 1\n    real_server 10.2.0.11 80 {\n        \
         weight 1\n    }\n}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, err) = daemon_in_lab(&["--strict", "-c", path, "--format", "keepalived"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(":5:5: error: "), "{err}");
    assert!(err.contains("(a warning; an error with --strict)"), "{err}");
}

/// An lvs.cf read as keepalived.conf gives nothing to run: the daemon refuses it (it would
/// attach to no interface), as check-config does.
#[test]
fn daemon_refuses_what_check_config_refuses() {
    let file = data().join("nat_two_tier.cf");
    let (code, err) = daemon_in_lab(&["--format", "keepalived", "-c", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the daemon would attach to no interface"),
        "{err}"
    );
}
