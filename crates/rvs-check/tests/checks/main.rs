//! The checkers against real servers started by each test on 127.0.0.1 / ::1: one
//! integration-test binary, one module per checker.

mod dns;
mod http;
mod many;
mod misc;
mod ping;
mod program;
mod send_expect;
mod ssl;
mod tcp;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rvs_check::Target;
use rvs_core::health::{CheckKind, CheckSpec, CheckTarget, CheckTimers, Outcome};

/// A check of `kind` with this timeout and no connect options.
pub(crate) fn spec(kind: CheckKind, timeout: Duration) -> CheckSpec {
    CheckSpec {
        kind,
        target: CheckTarget::default(),
        timers: CheckTimers {
            timeout,
            ..CheckTimers::default()
        },
    }
}

/// The target for a server listening on `addr`.
pub(crate) fn target(addr: SocketAddr) -> Target {
    Target::resolve(&CheckTarget::default(), addr.ip(), addr.port())
}

/// The reason of a `Down`, or a panic naming what came instead.
#[track_caller]
pub(crate) fn reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Down(reason) => reason,
        other => panic!("expected Down, got {other:?}"),
    }
}

pub(crate) fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

pub(crate) fn v6() -> IpAddr {
    "::1".parse().unwrap()
}

/// A TCP port on `ip` that nothing listens on (bound, then closed).
pub(crate) fn closed_tcp_port(ip: IpAddr) -> SocketAddr {
    let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    l.local_addr().unwrap()
}

/// A UDP port on `ip` that nothing listens on (bound, then closed).
pub(crate) fn closed_udp_port(ip: IpAddr) -> SocketAddr {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    s.local_addr().unwrap()
}

/// A fresh path in the temporary directory, unique to this test run.
pub(crate) fn temp_path(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("rvs-check-{}-{n}-{what}", std::process::id()))
}

/// Whether process `pid` is gone: no such process, or a zombie nobody has reaped yet
/// (a reparented orphan in a container whose init does not reap). Waits up to 2 s.
pub(crate) async fn process_gone(pid: u32) -> bool {
    for _ in 0..40 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                // The state follows the parenthesised command name.
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                if state.starts_with('Z') || state.starts_with('X') {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
