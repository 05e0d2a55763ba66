//! SSL_GET against a local tokio-rustls server with a self-signed certificate.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rvs_check::{md5_hex, run};
use rvs_core::health::{CheckKind, Outcome, UrlCheck};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::http::{always, serve, url};
use crate::{reason, spec, target, v4, v6};

const T: Duration = Duration::from_secs(3);

/// A TLS acceptor with a fresh self-signed certificate for `rvs.test`.
fn acceptor() -> TlsAcceptor {
    let key = rcgen::generate_simple_self_signed(vec![String::from("rvs.test")]).unwrap();
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn ssl_get(urls: Vec<UrlCheck>, virtualhost: Option<&str>, http_1_1: bool, sni: bool) -> CheckKind {
    CheckKind::Http {
        tls: true,
        urls,
        virtualhost: virtualhost.map(String::from),
        http_1_1,
        sni,
    }
}

#[tokio::test]
async fn ssl_get_with_sni_sends_the_virtualhost_as_server_name_and_host() {
    let body = b"secure hello";
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n".to_vec();
    reply.extend_from_slice(body);
    let server = serve(v4(), Some(acceptor()), true, always(&reply)).await;
    let u = UrlCheck {
        digest: Some(md5_hex(body)),
        ..url("/tls")
    };
    let check = spec(ssl_get(vec![u], Some("rvs.test"), true, true), T);
    assert_eq!(run(&check, &target(server.addr)).await, Outcome::Up);
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen[0].sni.as_deref(), Some("rvs.test"));
    assert!(seen[0].request.starts_with("GET /tls HTTP/1.1\r\n"));
    assert!(seen[0].request.contains("\r\nHost: rvs.test\r\n"));
}

#[tokio::test]
async fn ssl_get_without_sni_sends_no_server_name() {
    // Close-delimited body and no close_notify from the server: still a complete answer.
    let server = serve(
        v6(),
        Some(acceptor()),
        false,
        always(b"HTTP/1.0 200 OK\r\n\r\nbody"),
    )
    .await;
    let u = UrlCheck {
        digest: Some(md5_hex(b"body")),
        ..url("/")
    };
    let check = spec(ssl_get(vec![u], Some("rvs.test"), false, false), T);
    assert_eq!(run(&check, &target(server.addr)).await, Outcome::Up);
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen[0].sni, None);
    assert!(seen[0].request.contains("\r\nHost: rvs.test\r\n"));
}

#[tokio::test]
async fn ssl_get_judges_status_like_http_get() {
    let server = serve(
        v4(),
        Some(acceptor()),
        false,
        always(b"HTTP/1.0 503 Unavailable\r\n\r\n"),
    )
    .await;
    let check = spec(ssl_get(vec![url("/")], None, false, false), T);
    assert_eq!(
        reason(run(&check, &target(server.addr)).await),
        "HTTP status 503"
    );
}

#[tokio::test]
async fn ssl_get_to_a_plain_http_server_fails_the_handshake() {
    // A plain server that answers at once, before any request: a TLS client reads it as
    // a broken record.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = l.accept().await {
            let _ = conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let check = spec(ssl_get(vec![url("/")], None, false, false), T);
    let got = reason(run(&check, &target(addr)).await);
    assert!(got.starts_with("tls: "), "{got}");
}
