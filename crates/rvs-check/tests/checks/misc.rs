//! MISC_CHECK.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rvs_check::run;
use rvs_core::health::{CheckKind, CheckSpec, Outcome};

use crate::{process_gone, reason, spec, target, temp_path};

/// MISC_CHECK running `script` through the shell: keepalived executes `misc_path` without
/// one, so shell syntax needs an explicit `/bin/sh -c '...'`.
fn misc(script: &str, timeout: Option<Duration>, dynamic: bool) -> CheckSpec {
    misc_path(&format!("/bin/sh -c '{script}'"), timeout, dynamic)
}

fn misc_path(path: &str, timeout: Option<Duration>, dynamic: bool) -> CheckSpec {
    spec(
        CheckKind::Misc {
            path: path.to_string(),
            user: None,
            timeout,
            dynamic,
        },
        Duration::from_secs(10),
    )
}

fn rs() -> rvs_check::Target {
    target(SocketAddr::from(([192, 0, 2, 7], 80)))
}

#[tokio::test]
async fn exit_0_is_up_1_is_down() {
    assert_eq!(run(&misc("exit 0", None, false), &rs()).await, Outcome::Up);
    assert_eq!(
        reason(run(&misc("exit 1", None, false), &rs()).await),
        "exit status 1"
    );
    // Without misc_dynamic any other status is a failure too.
    assert_eq!(
        reason(run(&misc("exit 7", None, false), &rs()).await),
        "exit status 7"
    );
}

#[tokio::test]
async fn the_path_is_cut_into_words_and_run_without_a_shell() {
    // keepalived lib/notify.c: quotes group words, no shell sees `;` or `$`.
    let out = temp_path("misc-argv");
    let check = misc_path(
        &format!(
            "/bin/sh -c 'printf \"%s|\" \"$@\" > {}' sh \"a b\" ; $HOME",
            out.display()
        ),
        None,
        false,
    );
    assert_eq!(run(&check, &rs()).await, Outcome::Up);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a b|;|$HOME|");
    let _ = std::fs::remove_file(&out);
    assert!(
        reason(run(&misc_path("exit 0", None, false), &rs()).await)
            .starts_with("Cannot find script exit in path")
    );
}

#[tokio::test]
async fn misc_dynamic_turns_2_to_255_into_a_weight() {
    assert_eq!(
        run(&misc("exit 12", None, true), &rs()).await,
        Outcome::UpWithWeight(10)
    );
    assert_eq!(
        run(&misc("exit 2", None, true), &rs()).await,
        Outcome::UpWithWeight(0)
    );
    assert_eq!(
        run(&misc("exit 255", None, true), &rs()).await,
        Outcome::UpWithWeight(253)
    );
    assert_eq!(run(&misc("exit 0", None, true), &rs()).await, Outcome::Up);
    assert_eq!(
        reason(run(&misc("exit 1", None, true), &rs()).await),
        "exit status 1"
    );
}

#[tokio::test]
async fn death_by_signal_is_down() {
    let got = reason(run(&misc("kill -9 $$", None, false), &rs()).await);
    assert_eq!(got, "killed by signal 9");
}

/// Starts `sleep 30` in the background of the script and records its pid in a file.
fn sleeper(pid_file: &std::path::Path) -> String {
    format!("sleep 30 & echo $! > {}; wait", pid_file.display())
}

fn pid_in(pid_file: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(pid_file).unwrap();
    let _ = std::fs::remove_file(pid_file);
    text.trim().parse().unwrap()
}

#[tokio::test]
async fn the_timeout_kills_the_whole_process_group() {
    let pid_file = temp_path("misc-timeout");
    let check = misc(&sleeper(&pid_file), Some(Duration::from_secs(1)), false);
    let start = Instant::now();
    // misc_timeout, not the check's 10 s connect timeout, bounds it.
    assert_eq!(reason(run(&check, &rs()).await), "timeout after 1s");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    // The shell's child, a grandchild of the check, is gone too.
    assert!(process_gone(pid_in(&pid_file)).await);
}

#[tokio::test]
async fn cancelling_the_check_kills_the_whole_process_group() {
    let pid_file = temp_path("misc-cancel");
    let check = misc(&sleeper(&pid_file), Some(Duration::from_secs(20)), false);
    let start = Instant::now();
    let cancelled = tokio::time::timeout(Duration::from_millis(500), run(&check, &rs())).await;
    assert!(cancelled.is_err());
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(process_gone(pid_in(&pid_file)).await);
}
