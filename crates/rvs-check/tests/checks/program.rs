//! nanny's send_program.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rvs_check::run;
use rvs_core::health::{CheckKind, Outcome};

use crate::{reason, spec, target};

const T: Duration = Duration::from_secs(5);

fn program(command: &str, expect: Option<&str>) -> CheckKind {
    CheckKind::Program {
        command: command.to_string(),
        expect: expect.map(String::from),
    }
}

fn rs() -> rvs_check::Target {
    target(SocketAddr::from(([192, 0, 2, 7], 8080)))
}

#[tokio::test]
async fn host_and_port_are_substituted_and_the_output_must_match() {
    let check = spec(program("echo %h:%p", Some("192.0.2.7:8080")), T);
    assert_eq!(run(&check, &rs()).await, Outcome::Up);
    let check = spec(program("echo %h:%p", Some("192.0.2.7:80")), T);
    assert_eq!(
        reason(run(&check, &rs()).await),
        "expect: got \"192.0.2.7:8080\""
    );
}

#[tokio::test]
async fn the_output_must_match_exactly_not_as_a_prefix() {
    let check = spec(program("printf 'up and more'", Some("up")), T);
    assert_eq!(
        reason(run(&check, &rs()).await),
        "expect: got \"up and more\""
    );
    let check = spec(program("printf 'up\\n'", Some("up\n")), T);
    assert_eq!(run(&check, &rs()).await, Outcome::Up);
}

#[tokio::test]
async fn without_expect_the_exit_status_decides() {
    assert_eq!(
        run(&spec(program("true", None), T), &rs()).await,
        Outcome::Up
    );
    let got = reason(run(&spec(program("exit 3", None), T), &rs()).await);
    assert_eq!(got, "exit status 3");
}

#[tokio::test]
async fn a_program_that_hangs_is_killed_at_the_timeout() {
    let start = Instant::now();
    let check = spec(
        program("sleep 30; echo late", Some("late")),
        Duration::from_millis(500),
    );
    assert_eq!(reason(run(&check, &rs()).await), "timeout after 500ms");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
