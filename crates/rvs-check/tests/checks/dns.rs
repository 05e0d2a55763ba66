//! DNS_CHECK against a tiny UDP responder written here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rvs_check::run;
use rvs_core::health::{CheckKind, DnsType, Outcome};
use tokio::net::UdpSocket;

use crate::{closed_udp_port, reason, spec, target, v4, v6};

const T: Duration = Duration::from_secs(2);

/// How the responder answers.
#[derive(Clone, Copy)]
enum Answer {
    /// The query's id, QR set, this RCODE.
    Rcode(u8),
    /// First a response with another id, then a copy of the query itself (QR clear),
    /// then the right response.
    StrayThenRight,
    Silent,
}

/// The responder; returns its address and the queries it received.
async fn responder(ip: std::net::IpAddr, answer: Answer) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = s.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            let query = buf[..n].to_vec();
            record.lock().unwrap().push(query.clone());
            let response = |id: [u8; 2], rcode: u8| {
                let mut r = query.clone();
                r[..2].copy_from_slice(&id);
                r[2] = 0x81; // QR, RD
                r[3] = 0x80 | rcode; // RA, RCODE
                r
            };
            let id = [query[0], query[1]];
            match answer {
                Answer::Rcode(rcode) => {
                    let _ = s.send_to(&response(id, rcode), peer).await;
                }
                Answer::StrayThenRight => {
                    let other = [id[0] ^ 0xff, id[1]];
                    let _ = s.send_to(&response(other, 0), peer).await;
                    let _ = s.send_to(&query, peer).await;
                    let _ = s.send_to(&response(id, 0), peer).await;
                }
                Answer::Silent => {}
            }
        }
    });
    (addr, seen)
}

fn dns(qtype: DnsType, name: &str) -> CheckKind {
    CheckKind::Dns {
        qtype,
        name: name.to_string(),
    }
}

#[tokio::test]
async fn noerror_answer_is_up_and_the_query_is_what_was_configured() {
    for ip in [v4(), v6()] {
        let (addr, seen) = responder(ip, Answer::Rcode(0)).await;
        let check = spec(dns(DnsType::Aaaa, "www.example.test"), T);
        assert_eq!(run(&check, &target(addr)).await, Outcome::Up);
        let q = seen.lock().unwrap()[0].clone();
        assert_eq!(&q[2..4], &[0x01, 0x00], "RD set, nothing else");
        assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 0], "one question");
        assert_eq!(&q[12..], b"\x03www\x07example\x04test\x00\x00\x1c\x00\x01");
    }
}

#[tokio::test]
async fn ids_are_random() {
    let (addr, seen) = responder(v4(), Answer::Rcode(0)).await;
    let check = spec(dns(DnsType::Soa, "."), T);
    for _ in 0..4 {
        assert_eq!(run(&check, &target(addr)).await, Outcome::Up);
    }
    let ids: std::collections::HashSet<[u8; 2]> =
        seen.lock().unwrap().iter().map(|q| [q[0], q[1]]).collect();
    // Four equal random 16-bit ids in a row would be a 1 in 2^48 event.
    assert!(ids.len() > 1);
}

#[tokio::test]
async fn error_rcode_is_down() {
    let (addr, _) = responder(v4(), Answer::Rcode(3)).await;
    let check = spec(dns(DnsType::A, "missing.example.test"), T);
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "dns: rcode 3 (NXDOMAIN)"
    );
    let (addr, _) = responder(v4(), Answer::Rcode(5)).await;
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "dns: rcode 5 (REFUSED)"
    );
}

#[tokio::test]
async fn other_ids_and_queries_are_ignored_until_the_answer() {
    let (addr, _) = responder(v4(), Answer::StrayThenRight).await;
    assert_eq!(
        run(&spec(dns(DnsType::Soa, "."), T), &target(addr)).await,
        Outcome::Up
    );
}

#[tokio::test]
async fn no_server_and_a_silent_server_are_down() {
    let check = spec(dns(DnsType::Soa, "."), Duration::from_millis(300));
    assert_eq!(
        reason(run(&check, &target(closed_udp_port(v4()))).await),
        "port unreachable"
    );
    let (addr, _) = responder(v4(), Answer::Silent).await;
    assert_eq!(
        reason(run(&check, &target(addr)).await),
        "timeout after 300ms"
    );
}
