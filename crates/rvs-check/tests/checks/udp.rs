//! UDP_CHECK.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_check::run;
use rvs_core::health::{CheckKind, Outcome};
use tokio::net::UdpSocket;

use crate::{closed_udp_port, reason, spec, target, v4, v6};

const QUICK: Duration = Duration::from_millis(300);

/// A UDP server that records what it gets and answers with `reply` (or stays silent).
async fn server(
    ip: std::net::IpAddr,
    reply: Option<&'static [u8]>,
) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = s.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            record.lock().unwrap().push(buf[..n].to_vec());
            if let Some(reply) = reply {
                let _ = s.send_to(reply, peer).await;
            }
        }
    });
    (addr, seen)
}

fn udp_check(
    payload: &[u8],
    require_reply: Option<&[u8]>,
    min: Option<u32>,
    max: Option<u32>,
) -> CheckKind {
    CheckKind::Udp {
        payload: payload.to_vec(),
        require_reply: require_reply.map(<[u8]>::to_vec),
        min_reply_len: min,
        max_reply_len: max,
    }
}

#[tokio::test]
async fn a_required_reply_must_start_with_the_expected_bytes() {
    for ip in [v4(), v6()] {
        let (addr, seen) = server(ip, Some(b"\x01\x02PONG")).await;
        let check = spec(
            udp_check(b"\xffPING", Some(b"\x01\x02PO"), None, None),
            QUICK,
        );
        assert_eq!(run(&check, &target(addr)).await, Outcome::Up);
        assert_eq!(seen.lock().unwrap()[0], b"\xffPING");
        let check = spec(udp_check(b"\xffPING", Some(b"\x01\x03"), None, None), QUICK);
        assert_eq!(
            reason(run(&check, &target(addr)).await),
            "reply mismatch: got \"\\x01\\x02PONG\""
        );
    }
}

#[tokio::test]
async fn reply_length_bounds_apply() {
    let (addr, _) = server(v4(), Some(b"0123456789")).await;
    let too_long = spec(udp_check(b"x", Some(b""), None, Some(5)), QUICK);
    assert_eq!(
        reason(run(&too_long, &target(addr)).await),
        "reply length 10 not within 0..=5"
    );
    let too_short = spec(udp_check(b"x", Some(b"0"), Some(11), None), QUICK);
    assert_eq!(
        reason(run(&too_short, &target(addr)).await),
        "reply length 10 not within 11..=255"
    );
    let fits = spec(udp_check(b"x", Some(b"0"), Some(10), Some(10)), QUICK);
    assert_eq!(run(&fits, &target(addr)).await, Outcome::Up);
}

#[tokio::test]
async fn port_unreachable_fails_at_once() {
    for ip in [v4(), v6()] {
        let start = Instant::now();
        let check = spec(
            udp_check(b"hello", None, None, None),
            Duration::from_secs(3),
        );
        assert_eq!(
            reason(run(&check, &target(closed_udp_port(ip))).await),
            "port unreachable"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
}

#[tokio::test]
async fn a_silent_server_passes_unless_a_reply_is_required() {
    let (addr, seen) = server(v4(), None).await;
    let start = Instant::now();
    let quiet_ok = spec(udp_check(b"hello", None, None, None), QUICK);
    assert_eq!(run(&quiet_ok, &target(addr)).await, Outcome::Up);
    // keepalived's rule: the timeout passing without an ICMP error is success.
    assert!(start.elapsed() >= QUICK);
    assert_eq!(seen.lock().unwrap()[0], b"hello");
    let needs_reply = spec(udp_check(b"hello", Some(b""), None, None), QUICK);
    assert_eq!(
        reason(run(&needs_reply, &target(addr)).await),
        "no reply: timeout after 300ms"
    );
}
