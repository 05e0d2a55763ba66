//! `rvs httpd` as a real server: answers with its name, keeps connections alive,
//! pipelines, streams bulk bytes, speaks IPv6; nginx real servers work too.

use std::net::SocketAddr;

use crate::harness::{Http, lab};
use crate::lab::{self, Httpd, LabOptions};

fn rs(i: usize) -> SocketAddr {
    SocketAddr::from((lab::rs_addr(i), 80))
}

#[test]
fn answers_with_its_name_and_keeps_alive() {
    let lab = lab(LabOptions {
        real_servers: 2,
        ..LabOptions::default()
    });
    lab.run("director", || {
        let mut h = Http::connect(rs(1)).unwrap();
        for _ in 0..3 {
            let r = h.get("/").unwrap();
            assert_eq!((r.status, r.text().as_str()), (200, "rs1\n"));
            assert_eq!(r.header("connection"), Some("keep-alive"));
        }
        // Pipelined: two requests in one write, two responses in order.
        h.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(h.read_response().unwrap().text(), "rs1\n");
        let head = h.read_head_response().unwrap();
        assert_eq!(
            (head.status, head.header("content-length")),
            (200, Some("4"))
        );
        assert!(head.body.is_empty());
        h.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = h.read_response().unwrap();
        assert_eq!(r.header("connection"), Some("close"));
        assert!(h.closed(), "the server closes after Connection: close");

        // HTTP/1.0 closes by default.
        let mut h = Http::connect(rs(2)).unwrap();
        h.send("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(h.read_response().unwrap().text(), "rs2\n");
        assert!(h.closed());
    })
    .unwrap();
}

#[test]
fn streams_bytes_and_speaks_ipv6() {
    let lab = lab(LabOptions {
        real_servers: 2,
        ..LabOptions::default()
    });
    lab.run("director", || {
        let mut h = Http::connect(rs(1)).unwrap();
        let r = h.get("/bytes/3000000").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 3_000_000);
        assert!(r.body.iter().all(|&b| b == b'x'));
        assert_eq!(h.get("/bytes/nope").unwrap().status, 400);
        assert_eq!(
            h.get("/").unwrap().text(),
            "rs1\n",
            "still in step after the stream"
        );

        let mut h6 = Http::connect(SocketAddr::from((lab::rs_addr6(2), 80))).unwrap();
        assert_eq!(h6.get("/").unwrap().text(), "rs2\n");
    })
    .unwrap();
}

#[test]
fn nginx_real_servers_answer_with_their_name() {
    let lab = lab(LabOptions {
        real_servers: 1,
        httpd: Httpd::Nginx,
        ..LabOptions::default()
    });
    let body = lab
        .run("director", || {
            Http::connect(rs(1)).and_then(|mut h| h.get("/"))
        })
        .unwrap()
        .unwrap();
    assert_eq!(body.text(), "rs1\n");
}
