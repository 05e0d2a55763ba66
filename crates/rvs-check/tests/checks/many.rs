//! Many checks at once on one thread.

use std::time::Duration;

use rvs_check::run;
use rvs_core::health::{CheckKind, Outcome};
use tokio::net::TcpListener;

use crate::{spec, target};

#[tokio::test(flavor = "current_thread")]
async fn a_thousand_tcp_checks_run_concurrently_on_a_current_thread_runtime() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            drop(conn);
        }
    });
    let check = spec(CheckKind::Tcp, Duration::from_secs(10));
    let t = target(addr);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let check = check.clone();
        set.spawn(async move { run(&check, &t).await });
    }
    let mut up = 0;
    while let Some(outcome) = set.join_next().await {
        assert_eq!(outcome.unwrap(), Outcome::Up);
        up += 1;
    }
    assert_eq!(up, 1000);
}
