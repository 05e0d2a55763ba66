//! PING_CHECK to the loopback addresses (needs root or CAP_NET_RAW, or a ping_group_range
//! that includes our group).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rvs_check::{Target, run};
use rvs_core::health::{CheckKind, CheckTarget, Outcome};

use crate::{reason, spec, v4, v6};

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn loopback_answers_echo_on_v4_and_v6() {
    for ip in [v4(), v6()] {
        let t = Target::resolve(&CheckTarget::default(), ip, 0);
        let start = Instant::now();
        assert_eq!(
            run(&spec(CheckKind::Ping, T), &t).await,
            Outcome::Up,
            "{ip}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test]
async fn many_pings_at_once_each_find_their_own_reply() {
    let t = Target::resolve(&CheckTarget::default(), v4(), 0);
    let check = spec(CheckKind::Ping, T);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let check = check.clone();
        set.spawn(async move { run(&check, &t).await });
    }
    while let Some(outcome) = set.join_next().await {
        assert_eq!(outcome.unwrap(), Outcome::Up);
    }
}

#[tokio::test]
async fn bindto_and_fwmark_apply() {
    let options = CheckTarget {
        bindto: Some("127.0.0.1".parse().unwrap()),
        fwmark: Some(1),
        ..CheckTarget::default()
    };
    let t = Target::resolve(&options, v4(), 0);
    assert_eq!(run(&spec(CheckKind::Ping, T), &t).await, Outcome::Up);
    let wrong_family = Target {
        bind: Some(SocketAddr::new(v6(), 0)),
        ..t
    };
    let got = reason(run(&spec(CheckKind::Ping, T), &wrong_family).await);
    assert!(got.starts_with("bind: "), "{got}");
}
