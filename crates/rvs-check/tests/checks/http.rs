//! HTTP_GET, and the HTTP server that SSL_GET's tests share.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rvs_check::{md5_hex, run};
use rvs_core::health::{CheckKind, Outcome, UrlCheck};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{reason, spec, target, v4, v6};

const T: Duration = Duration::from_secs(3);

/// How the server answers a request (given the request head).
pub(crate) type Respond = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) request: String,
    /// The TLS server name indication, for TLS connections.
    pub(crate) sni: Option<String>,
}

/// A test HTTP server: reads each request head, answers with `respond`, then closes the
/// connection, or holds it open for 10 s with `hold_open` (to prove the client stops at
/// the end of the body by itself).
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
}

pub(crate) async fn serve(
    ip: IpAddr,
    tls: Option<TlsAcceptor>,
    hold_open: bool,
    respond: Respond,
) -> Server {
    let l = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (record, respond, tls) = (record.clone(), respond.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => answer(tcp, None, hold_open, &respond, &record).await,
                    Some(acceptor) => {
                        let Ok(conn) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let sni = conn.get_ref().1.server_name().map(String::from);
                        answer(conn, sni, hold_open, &respond, &record).await;
                    }
                }
            });
        }
    });
    Server { addr, seen }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    sni: Option<String>,
    hold_open: bool,
    respond: &Respond,
    record: &Mutex<Vec<Seen>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let request = String::from_utf8_lossy(&head).into_owned();
    let reply = respond(&request);
    record.lock().unwrap().push(Seen { request, sni });
    let _ = conn.write_all(&reply).await;
    let _ = conn.flush().await;
    if hold_open {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    // Dropped without a TLS close_notify: servers do that, the checker must cope.
}

/// A canned response, the same for every request.
pub(crate) fn always(reply: &[u8]) -> Respond {
    let reply = reply.to_vec();
    Arc::new(move |_| reply.clone())
}

pub(crate) fn url(path: &str) -> UrlCheck {
    UrlCheck {
        path: path.to_string(),
        digest: None,
        status_codes: Vec::new(),
        virtualhost: None,
        regex: None,
        regex_no_match: false,
    }
}

pub(crate) fn http_get(
    urls: Vec<UrlCheck>,
    virtualhost: Option<&str>,
    http_1_1: bool,
) -> CheckKind {
    CheckKind::Http {
        tls: false,
        urls,
        virtualhost: virtualhost.map(String::from),
        http_1_1,
        sni: false,
    }
}

#[tokio::test]
async fn http_1_0_sends_keepalived_request_and_reads_to_close() {
    let body = b"<html>hello</html>";
    let mut reply = b"HTTP/1.0 200 OK\r\nServer: test\r\n\r\n".to_vec();
    reply.extend_from_slice(body);
    let server = serve(v4(), None, false, always(&reply)).await;
    let check = spec(
        http_get(
            vec![UrlCheck {
                digest: Some(md5_hex(body)),
                ..url("/health")
            }],
            None,
            false,
        ),
        T,
    );
    assert_eq!(run(&check, &target(server.addr)).await, Outcome::Up);
    let seen = server.seen.lock().unwrap();
    assert_eq!(
        seen[0].request,
        format!(
            "GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:{}\r\n\r\n",
            server.addr.port()
        )
    );
}

#[tokio::test]
async fn http_1_1_decodes_chunked_and_stops_at_the_last_chunk() {
    let body = "first part, second part";
    let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        C\r\nfirst part, \r\nB;x=y\r\nsecond part\r\n0\r\nX-Trailer: 1\r\n\r\n";
    // The server keeps the connection open: only the chunked framing can end the body.
    let server = serve(v4(), None, true, always(reply)).await;
    let check = spec(
        http_get(
            vec![UrlCheck {
                digest: Some(md5_hex(body.as_bytes())),
                regex: Some(String::from("second p[a-z]+t$")),
                ..url("/")
            }],
            Some("www.example.test"),
            true,
        ),
        T,
    );
    let start = Instant::now();
    assert_eq!(run(&check, &target(server.addr)).await, Outcome::Up);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let seen = server.seen.lock().unwrap();
    assert_eq!(
        seen[0].request,
        "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.test\r\n\r\n"
    );
}

#[tokio::test]
async fn content_length_ends_the_body_on_an_open_connection() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let server = serve(v4(), None, true, always(reply)).await;
    let check = spec(
        http_get(
            vec![UrlCheck {
                digest: Some(md5_hex(b"hello")),
                ..url("/")
            }],
            None,
            true,
        ),
        T,
    );
    let start = Instant::now();
    assert_eq!(run(&check, &target(server.addr)).await, Outcome::Up);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn status_codes_default_to_2xx_and_follow_configured_ranges() {
    let server = serve(
        v4(),
        None,
        false,
        always(b"HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n"),
    )
    .await;
    let default = spec(http_get(vec![url("/")], None, false), T);
    assert_eq!(
        reason(run(&default, &target(server.addr)).await),
        "HTTP status 302"
    );
    let redirects_ok = spec(
        http_get(
            vec![UrlCheck {
                status_codes: vec![(200, 200), (300, 399)],
                ..url("/")
            }],
            None,
            false,
        ),
        T,
    );
    assert_eq!(run(&redirects_ok, &target(server.addr)).await, Outcome::Up);
    let only_200 = spec(
        http_get(
            vec![UrlCheck {
                status_codes: vec![(200, 200)],
                ..url("/")
            }],
            None,
            false,
        ),
        T,
    );
    assert_eq!(
        reason(run(&only_200, &target(server.addr)).await),
        "HTTP status 302"
    );
}

#[tokio::test]
async fn digest_mismatch_and_regex_failures_are_down() {
    let server = serve(
        v4(),
        None,
        false,
        always(b"HTTP/1.0 200 OK\r\n\r\nstatus: degraded"),
    )
    .await;
    let t = target(server.addr);
    let wrong_digest = spec(
        http_get(
            vec![UrlCheck {
                digest: Some(md5_hex(b"status: ok")),
                ..url("/")
            }],
            None,
            false,
        ),
        T,
    );
    let got = reason(run(&wrong_digest, &t).await);
    assert_eq!(
        got,
        format!("digest mismatch: got {}", md5_hex(b"status: degraded"))
    );

    let regex = |re: &str, no_match: bool| {
        spec(
            http_get(
                vec![UrlCheck {
                    regex: Some(re.to_string()),
                    regex_no_match: no_match,
                    ..url("/")
                }],
                None,
                false,
            ),
            T,
        )
    };
    assert_eq!(
        run(&regex("status: (ok|degraded)", false), &t).await,
        Outcome::Up
    );
    assert_eq!(
        reason(run(&regex("status: ok", false), &t).await),
        "regex: body does not match"
    );
    assert_eq!(run(&regex("error", true), &t).await, Outcome::Up);
    assert_eq!(
        reason(run(&regex("degraded", true), &t).await),
        "regex_no_match: body matches"
    );
}

#[tokio::test]
async fn every_url_must_pass_and_the_url_virtualhost_wins() {
    let respond: Respond = Arc::new(|req: &str| {
        if req.starts_with("GET /a ") {
            b"HTTP/1.0 200 OK\r\n\r\na".to_vec()
        } else {
            b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec()
        }
    });
    let server = serve(v4(), None, false, respond).await;
    let t = target(server.addr);
    let a = UrlCheck {
        virtualhost: Some(String::from("a.example.test")),
        ..url("/a")
    };
    let both = spec(
        http_get(vec![a.clone(), url("/b")], Some("site.example.test"), false),
        T,
    );
    assert_eq!(reason(run(&both, &t).await), "url /b: HTTP status 404");
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one connection per URL");
    assert!(
        seen[0].request.contains("\r\nHost: a.example.test\r\n"),
        "{}",
        seen[0].request
    );
    assert!(
        seen[1].request.contains("\r\nHost: site.example.test\r\n"),
        "{}",
        seen[1].request
    );
    assert_eq!(
        run(&spec(http_get(vec![a], None, false), T), &t).await,
        Outcome::Up
    );
}

#[tokio::test]
async fn ipv6_host_header_has_brackets() {
    let server = serve(v6(), None, false, always(b"HTTP/1.0 200 OK\r\n\r\n")).await;
    let check = spec(http_get(vec![url("/")], None, false), T);
    assert_eq!(run(&check, &target(server.addr)).await, Outcome::Up);
    let seen = server.seen.lock().unwrap();
    assert!(
        seen[0]
            .request
            .contains(&format!("\r\nHost: [::1]:{}\r\n", server.addr.port())),
        "{}",
        seen[0].request
    );
}

#[tokio::test]
async fn no_response_and_garbage_are_down() {
    let silent_close = serve(v4(), None, false, always(b"")).await;
    let check = spec(http_get(vec![url("/")], None, false), T);
    assert_eq!(
        reason(run(&check, &target(silent_close.addr)).await),
        "no response"
    );
    let ssh = serve(v4(), None, false, always(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")).await;
    let got = reason(run(&check, &target(ssh.addr)).await);
    assert_eq!(got, "bad response: status line \"SSH-2.0-OpenSSH_9.6\"");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = serve(
        v4(),
        None,
        true,
        always(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
    )
    .await;
    let check = spec(
        http_get(vec![url("/")], None, true),
        Duration::from_millis(300),
    );
    assert_eq!(
        reason(run(&check, &target(server.addr)).await),
        "timeout after 300ms"
    );
}

#[tokio::test]
async fn no_url_at_all_is_up_without_connecting() {
    let check = spec(http_get(Vec::new(), None, false), T);
    let nowhere = target(crate::closed_tcp_port(v4()));
    assert_eq!(run(&check, &nowhere).await, Outcome::Up);
}

#[tokio::test]
async fn genhash_reports_status_and_digest_of_the_decoded_body() {
    let reply =
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let server = serve(v4(), None, true, always(reply)).await;
    let got = rvs_check::genhash(&target(server.addr), false, "/x", Some("h.test"), T)
        .await
        .unwrap();
    assert_eq!(
        got,
        rvs_check::Genhash {
            status: 404,
            digest: md5_hex(b"abc"),
        }
    );
    let request = server.seen.lock().unwrap()[0].request.clone();
    assert_eq!(
        request,
        "GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: h.test\r\n\r\n"
    );
    let closed = target(crate::closed_tcp_port(v4()));
    let err = rvs_check::genhash(&closed, false, "/", None, T)
        .await
        .unwrap_err();
    assert_eq!(err, "connect: connection refused");
}
