//! The Prometheus endpoint.

use super::control::{Ask, Request, ask_worker};
use std::io::{self, BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The Prometheus endpoint: `GET /metrics` over plain HTTP/1.x, one request per
/// connection; anything else gets 404.
pub(super) fn start_metrics(
    addr: std::net::SocketAddr,
    requests: mpsc::Sender<Request>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = serve_metrics(stream, &requests);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    Ok(())
}

pub(super) fn serve_metrics(
    stream: std::net::TcpStream,
    requests: &mpsc::Sender<Request>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut w = &stream;
    let path = first.split_whitespace().nth(1).unwrap_or("");
    if !first.starts_with("GET ") || (path != "/metrics" && !path.starts_with("/metrics?")) {
        return w.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n",
        );
    }
    match ask_worker(requests, Ask::Metrics) {
        Ok(body) => write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Err(e) => write!(
            w,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{e}",
            e.len()
        ),
    }
}
