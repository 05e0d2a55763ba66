//! A UDP virtual service (`protocol = udp`) in NAT mode: a tiny echo server on each real
//! server (a `UdpSocket` made in the real server's namespace) answers the client through
//! the VIP; the reply comes back from the VIP (the client's connected socket would drop it
//! otherwise), and rr spreads the client's flows (one per source port) over the servers.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{Director, Virtual, diff, even, lvs_cf};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

const PORT: u16 = 5353;
const FLOWS: usize = 9;

/// Echoes `NAME:payload` until `stop` (bounded by the socket's read timeout).
fn echo(sock: UdpSocket, name: String, stop: &AtomicBool) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = sock.send_to(&reply, from);
        }
    }
}

#[test]
fn nat_udp_service_answers_through_the_vip() {
    let lab = lab(LabOptions {
        httpd: lab::Httpd::None,
        ..LabOptions::default()
    });
    let mut svc = Virtual::rr(lab::VIP.into(), PORT, 3);
    svc.protocol = "udp";
    let d = Director::start(&lab, "lvs", &lvs_cf(Method::Nat, &[svc]));
    let sockets: Vec<(String, UdpSocket)> = (1..=3)
        .map(|i| {
            let node = format!("rs{i}");
            let s = lab
                .run(&node, || UdpSocket::bind(("0.0.0.0", PORT)))
                .unwrap()
                .unwrap();
            (node, s)
        })
        .collect();
    let stop = AtomicBool::new(false);
    let before = d.conns();
    let got = thread::scope(|scope| {
        for (name, sock) in sockets {
            let stop = &stop;
            scope.spawn(move || echo(sock, name, stop));
        }
        let vip = SocketAddr::from((lab::VIP, PORT));
        let got = lab.run("client", move || {
            let mut by_rs = BTreeMap::new();
            for flow in 0..FLOWS {
                // A new socket (source port) per flow; each retries a few times while the
                // director resolves the real server's address.
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                s.connect(vip).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let msg = format!("flow{flow}");
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut buf = [0u8; 2048];
                let reply = loop {
                    s.send(msg.as_bytes()).unwrap();
                    if let Ok(n) = s.recv(&mut buf) {
                        break String::from_utf8_lossy(&buf[..n]).into_owned();
                    }
                    assert!(Instant::now() < deadline, "no UDP answer for {msg}");
                };
                let (rs, echoed) = reply.split_once(':').expect("NAME:payload");
                assert_eq!(echoed, msg, "the payload comes back intact");
                *by_rs.entry(rs.to_owned()).or_insert(0) += 1;
            }
            by_rs
        });
        stop.store(true, Ordering::Relaxed);
        got
    });
    let got = got.unwrap();
    assert_eq!(got, even(3, FLOWS / 3), "rr over the client's UDP flows");
    let counted = diff(&d.conns(), &before);
    let want: BTreeMap<String, u64> = (1..=3)
        .map(|i| (format!("{}:{PORT}", lab::rs_addr(i)), (FLOWS / 3) as u64))
        .collect();
    assert_eq!(counted, want, "{}", d.listing(&["--stats"]));
    let conns = d.listing(&["-c"]);
    assert!(conns.contains("UDP"), "UDP entries in the table:\n{conns}");
}
