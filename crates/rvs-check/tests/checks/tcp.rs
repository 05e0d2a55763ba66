//! TCP_CHECK.

use std::net::SocketAddr;
use std::time::Duration;

use rvs_check::{Target, run};
use rvs_core::health::{CheckKind, CheckTarget, Outcome};
use tokio::net::TcpListener;

use crate::{closed_tcp_port, reason, spec, target, v4, v6};

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn accepted_connection_is_up_on_v4_and_v6() {
    for ip in [v4(), v6()] {
        let l = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        let accept = tokio::spawn(async move { l.accept().await.map(|(_, peer)| peer) });
        assert_eq!(
            run(&spec(CheckKind::Tcp, T), &target(addr)).await,
            Outcome::Up
        );
        // The server really saw the check connect.
        assert!(accept.await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn refused_connection_is_down_with_the_reason() {
    for ip in [v4(), v6()] {
        let addr = closed_tcp_port(ip);
        let got = reason(run(&spec(CheckKind::Tcp, T), &target(addr)).await);
        assert_eq!(got, "connect: connection refused");
    }
}

#[tokio::test]
async fn bindto_bind_port_and_fwmark_apply_to_the_socket() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let free_port = closed_tcp_port("127.0.0.2".parse().unwrap()).port();
    let options = CheckTarget {
        bindto: Some("127.0.0.2".parse().unwrap()),
        bind_port: Some(free_port),
        fwmark: Some(0x2a),
        ..CheckTarget::default()
    };
    let t = Target::resolve(&options, addr.ip(), addr.port());
    let accept = tokio::spawn(async move { l.accept().await.map(|(_, peer)| peer) });
    assert_eq!(run(&spec(CheckKind::Tcp, T), &t).await, Outcome::Up);
    let peer = accept.await.unwrap().unwrap();
    assert_eq!(
        peer,
        SocketAddr::new("127.0.0.2".parse().unwrap(), free_port)
    );

    // Lingering 0 s leaves no TIME_WAIT: the same source port works again at once.
    let l = TcpListener::bind(addr).await.unwrap();
    let accept = tokio::spawn(async move { l.accept().await.map(|(_, peer)| peer) });
    assert_eq!(run(&spec(CheckKind::Tcp, T), &t).await, Outcome::Up);
    assert_eq!(accept.await.unwrap().unwrap().port(), free_port);
}

#[tokio::test]
async fn connect_ip_and_connect_port_override_the_real_server() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let options = CheckTarget {
        connect_ip: Some(addr.ip()),
        connect_port: Some(addr.port()),
        ..CheckTarget::default()
    };
    // The real server's own address has nothing listening; the override does.
    let rs = closed_tcp_port(v4());
    let t = Target::resolve(&options, rs.ip(), rs.port());
    assert_eq!(run(&spec(CheckKind::Tcp, T), &t).await, Outcome::Up);
    drop(l);
}

#[tokio::test]
async fn bind_of_the_other_family_is_down() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let options = CheckTarget {
        bindto: Some(v6()),
        ..CheckTarget::default()
    };
    let t = Target::resolve(&options, addr.ip(), addr.port());
    let got = reason(run(&spec(CheckKind::Tcp, T), &t).await);
    assert!(got.starts_with("bind: "), "{got}");
}
