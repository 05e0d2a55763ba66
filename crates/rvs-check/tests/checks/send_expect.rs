//! nanny's send/expect over TCP and UDP.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_check::run;
use rvs_core::health::{CheckKind, Expect, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::{closed_udp_port, reason, spec, target, v4};

const T: Duration = Duration::from_secs(2);

/// What the scripted server does after the connection is accepted.
#[derive(Clone, Copy)]
enum Step {
    /// Read what the client sent (one read, recorded).
    Read,
    Write(&'static [u8]),
    Sleep(u64),
    /// Keep the connection open for 10 s.
    Hold,
}

/// A TCP server on 127.0.0.1 that plays `steps` on every connection, then closes; returns
/// its address and what the clients sent.
async fn server(steps: &'static [Step]) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = l.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                for step in steps {
                    match *step {
                        Step::Read => {
                            let mut buf = [0u8; 1024];
                            let n = conn.read(&mut buf).await.unwrap_or(0);
                            record.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        Step::Write(data) => {
                            let _ = conn.write_all(data).await;
                        }
                        Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        Step::Hold => tokio::time::sleep(Duration::from_secs(10)).await,
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn tcp(send: &[u8], expect: Option<Expect>) -> CheckKind {
    CheckKind::SendExpect {
        send: send.to_vec(),
        expect,
        udp: false,
    }
}

fn prefix(p: &[u8]) -> Option<Expect> {
    Some(Expect::Prefix(p.to_vec()))
}

#[tokio::test]
async fn send_reaches_the_server_and_the_prefix_matches() {
    static STEPS: &[Step] = &[
        Step::Read,
        Step::Write(b"HTTP/1.0 200 OK\r\n\r\nhi"),
        Step::Hold,
    ];
    let (addr, seen) = server(STEPS).await;
    let check = spec(tcp(b"GET / HTTP/1.0\r\n\r\n", prefix(b"HTTP")), T);
    assert_eq!(run(&check, &target(addr)).await, Outcome::Up);
    assert_eq!(seen.lock().unwrap().as_slice(), b"GET / HTTP/1.0\r\n\r\n");
}

#[tokio::test]
async fn a_different_reply_is_down_showing_what_came() {
    static STEPS: &[Step] = &[
        Step::Read,
        Step::Write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
    ];
    let (addr, _) = server(STEPS).await;
    let check = spec(tcp(b"GET / HTTP/1.1\r\n\r\n", prefix(b"HTTP/1.1 200")), T);
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "expect: got \"HTTP/1.1 500\""
    );
}

#[tokio::test]
async fn a_prefix_split_over_several_segments_is_read_whole() {
    static STEPS: &[Step] = &[
        Step::Write(b"+O"),
        Step::Sleep(50),
        Step::Write(b"K POP3 ready\r\n"),
        Step::Hold,
    ];
    let (addr, _) = server(STEPS).await;
    // Empty send: connect, then read the greeting.
    let check = spec(tcp(b"", prefix(b"+OK POP3")), T);
    assert_eq!(run(&check, &target(addr)).await, Outcome::Up);
}

#[tokio::test]
async fn a_server_closing_early_fails_a_prefix() {
    static STEPS: &[Step] = &[Step::Write(b"+O")];
    let (addr, _) = server(STEPS).await;
    let check = spec(tcp(b"", prefix(b"+OK")), T);
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "expect: got \"+O\""
    );
}

#[tokio::test]
async fn star_takes_any_reply_even_the_empty_one() {
    static SAYS: &[Step] = &[Step::Write(b"whatever\n"), Step::Hold];
    let (addr, _) = server(SAYS).await;
    assert_eq!(
        run(&spec(tcp(b"", Some(Expect::Any)), T), &target(addr)).await,
        Outcome::Up
    );
    static CLOSES: &[Step] = &[];
    let (addr, _) = server(CLOSES).await;
    assert_eq!(
        run(&spec(tcp(b"", Some(Expect::Any)), T), &target(addr)).await,
        Outcome::Up
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    static STEPS: &[Step] = &[Step::Hold];
    let (addr, _) = server(STEPS).await;
    let start = Instant::now();
    let check = spec(
        tcp(b"PING\r\n", prefix(b"+PONG")),
        Duration::from_millis(300),
    );
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "timeout after 300ms"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[tokio::test]
async fn no_expect_only_needs_the_connection() {
    static STEPS: &[Step] = &[Step::Hold];
    let (addr, _) = server(STEPS).await;
    assert_eq!(
        run(&spec(tcp(b"hello", None), T), &target(addr)).await,
        Outcome::Up
    );
}

#[tokio::test]
async fn regex_matches_across_segments_and_reports_mismatches() {
    static OK: &[Step] = &[
        Step::Read,
        Step::Write(b"HTTP/1.1 2"),
        Step::Sleep(50),
        Step::Write(b"04 No Content\r\n\r\n"),
        Step::Hold,
    ];
    let (addr, _) = server(OK).await;
    let re = Some(Expect::Regex(String::from(r"^HTTP/1\.[01] 2[0-9]{2} ")));
    assert_eq!(
        run(&spec(tcp(b"GET /\r\n\r\n", re.clone()), T), &target(addr)).await,
        Outcome::Up
    );

    static BAD: &[Step] = &[Step::Read, Step::Write(b"HTTP/1.1 503 Busy\r\n\r\n")];
    let (addr, _) = server(BAD).await;
    let got = reason(run(&spec(tcp(b"GET /\r\n\r\n", re), T), &target(addr)).await);
    assert_eq!(got, "expect: got \"HTTP/1.1 503 Busy\"");

    // A reply that does not match and a connection kept open: decided at the deadline.
    static HOLD: &[Step] = &[Step::Write(b"nope"), Step::Hold];
    let (addr, _) = server(HOLD).await;
    let check = spec(
        tcp(b"", Some(Expect::Regex(String::from("yes")))),
        Duration::from_millis(300),
    );
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "expect: got \"nope\""
    );
}

#[tokio::test]
async fn a_bad_regex_is_down_with_the_configuration_error() {
    let check = spec(tcp(b"", Some(Expect::Regex(String::from("(")))), T);
    let got = reason(run(&check, &target(closed_udp_port(v4()))).await);
    assert!(got.starts_with("bad regex \"(\""), "{got}");
}

async fn udp_server(reply: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            record.lock().unwrap().extend_from_slice(&buf[..n]);
            let _ = s.send_to(reply, peer).await;
        }
    });
    (addr, seen)
}

fn udp(send: &[u8], expect: Option<Expect>) -> CheckKind {
    CheckKind::SendExpect {
        send: send.to_vec(),
        expect,
        udp: true,
    }
}

#[tokio::test]
async fn udp_send_expect_uses_one_datagram_each_way() {
    let (addr, seen) = udp_server(b"PONG 1\n").await;
    assert_eq!(
        run(&spec(udp(b"PING", prefix(b"PONG")), T), &target(addr)).await,
        Outcome::Up
    );
    assert_eq!(seen.lock().unwrap().as_slice(), b"PING");
    let got = reason(run(&spec(udp(b"PING", prefix(b"PANG")), T), &target(addr)).await);
    assert_eq!(got, "expect: got \"PONG\"");
}

#[tokio::test]
async fn udp_send_expect_to_a_closed_port_is_port_unreachable() {
    let addr = closed_udp_port(v4());
    let got = reason(run(&spec(udp(b"PING", prefix(b"PONG")), T), &target(addr)).await);
    assert_eq!(got, "port unreachable");
}
