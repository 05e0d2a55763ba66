//! `rvs httpd`: a tiny HTTP/1.1 responder for real servers in the lab and the demo, so
//! they need nothing installed. Every request gets `200 OK` with body `NAME\n` (which real
//! server answered is then visible to the client); `GET /bytes/N` streams N bytes for bulk
//! transfers (with an `X-Real-Server: NAME` header). Keep-alive and pipelining are
//! supported; a thread serves each connection.
//!
//! Bounded on purpose: request heads up to 16 KiB, request bodies (discarded) up to 1 MiB,
//! `/bytes/N` up to 16 GiB, connections idle for 60 s are closed, at most
//! `--max-connections` (512) at once — more get `503` and are closed. It is not a web
//! server: no files, no chunked request bodies (`501`), no TLS. It exits on SIGTERM (the
//! default disposition: it keeps no state worth flushing).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: u64 = 1 << 20;
const MAX_BYTES: u64 = 16 << 30;
const IDLE: Duration = Duration::from_secs(60);

/// `rvs httpd`'s command line.
#[derive(clap::Args, Debug)]
pub struct HttpdArgs {
    /// Where to listen (ADDR:PORT, `[::]:80` for IPv6); repeat for several.
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    pub listen: Vec<SocketAddr>,
    /// The body of every answer (`NAME\n`) and the `X-Real-Server` header of `/bytes/N`.
    #[arg(long, value_name = "TEXT")]
    pub name: String,
    /// Most connections served at once; more get `503` and are closed.
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

/// `rvs httpd ...`: runs until killed; exit 1 when it cannot listen.
pub fn main(args: &HttpdArgs) -> ExitCode {
    let listen = &args.listen;
    let name = &args.name;
    let max_conns = args.max_connections as usize;
    let mut listeners = Vec::new();
    for addr in listen {
        match TcpListener::bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("rvs httpd: bind {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "rvs httpd {name}: listening on {}",
        listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let server = Arc::new(Server {
        body: format!("{name}\n"),
        active: AtomicUsize::new(0),
        max_conns,
    });
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            let server = Arc::clone(&server);
            thread::spawn(move || server.accept_loop(l))
        })
        .collect();
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("rvs httpd: accept: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

struct Server {
    body: String,
    active: AtomicUsize,
    max_conns: usize,
}

impl Server {
    fn accept_loop(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        loop {
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                // Out of descriptors or a connection reset before accept: keep serving.
                Err(e) if is_transient(&e) => {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.active.fetch_add(1, Ordering::AcqRel) >= self.max_conns {
                self.active.fetch_sub(1, Ordering::AcqRel);
                let _ = stream.write_all(&response(503, "busy\n", false));
                continue;
            }
            let server = Arc::clone(&self);
            let spawned = thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let _ = server.serve(stream);
                    server.active.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                self.active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Serves requests on one connection until it closes, errs, idles out or a request
    /// asks to close.
    fn serve(&self, stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IDLE))?;
        stream.set_write_timeout(Some(IDLE))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut out = stream;
        loop {
            let req = match read_head(&mut reader)? {
                Head::Eof => return Ok(()),
                Head::TooLarge => {
                    out.write_all(&response(431, "request head too large\n", false))?;
                    return Ok(());
                }
                Head::Bad => {
                    out.write_all(&response(400, "bad request\n", false))?;
                    return Ok(());
                }
                Head::Request(r) => r,
            };
            if req.chunked {
                out.write_all(&response(
                    501,
                    "chunked request bodies not supported\n",
                    false,
                ))?;
                return Ok(());
            }
            if req.content_length > MAX_BODY {
                out.write_all(&response(413, "request body too large\n", false))?;
                return Ok(());
            }
            let skipped = io::copy(&mut (&mut reader).take(req.content_length), &mut io::sink())?;
            if skipped < req.content_length {
                return Ok(());
            }
            let head_only = req.method == "HEAD";
            let bytes = req
                .target
                .strip_prefix("/bytes/")
                .filter(|_| req.method == "GET" || head_only);
            match bytes.map(str::parse::<u64>) {
                Some(Ok(n)) if n <= MAX_BYTES => {
                    // Bulk responses name the real server in a header (the body is
                    // filler), so a client can tell whose stream it reads.
                    let mut h = head(200, n, req.keep_alive);
                    h.truncate(h.len() - 2);
                    h.extend_from_slice(
                        format!("X-Real-Server: {}\r\n\r\n", self.body.trim_end()).as_bytes(),
                    );
                    out.write_all(&h)?;
                    if !head_only {
                        stream_bytes(&mut out, n)?;
                    }
                }
                Some(_) => {
                    let msg = format!("N must be a number up to {MAX_BYTES}\n");
                    out.write_all(&response(400, &msg, req.keep_alive))?;
                }
                None if head_only => {
                    out.write_all(&head(200, self.body.len() as u64, req.keep_alive))?;
                }
                None => out.write_all(&response(200, &self.body, req.keep_alive))?,
            }
            if !req.keep_alive {
                return Ok(());
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23) // EMFILE, ENFILE
}

fn stream_bytes(out: &mut TcpStream, mut n: u64) -> io::Result<()> {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    while n > 0 {
        let k = n.min(CHUNK.len() as u64) as usize;
        out.write_all(&CHUNK[..k])?;
        n -= k as u64;
    }
    Ok(())
}

struct Request {
    method: String,
    target: String,
    keep_alive: bool,
    content_length: u64,
    chunked: bool,
}

enum Head {
    Eof,
    TooLarge,
    Bad,
    Request(Request),
}

/// Reads one request head (request line and headers, up to the blank line).
fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut total = 0usize;
    let mut line = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    loop {
        line.clear();
        let n = match reader
            .by_ref()
            .take((MAX_HEAD - total + 1) as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            // Idle keep-alive connection, or the peer went away.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Head::Eof);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Head::Eof),
            Err(e) => return Err(e),
        };
        total += n;
        if n == 0 {
            return Ok(if lines.is_empty() {
                Head::Eof
            } else {
                Head::Bad
            });
        }
        if total > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        if !line.ends_with(b"\n") {
            return Ok(Head::Bad);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            // RFC 9112 2.2: ignore empty lines before the request line.
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(text.to_owned());
    }
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(Head::Bad);
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Ok(Head::Bad),
    };
    let mut req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        keep_alive: http11,
        content_length: 0,
        chunked: false,
    };
    for h in &lines[1..] {
        let Some((k, v)) = h.split_once(':') else {
            return Ok(Head::Bad);
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("connection") {
            for token in v.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    req.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    req.keep_alive = true;
                }
            }
        } else if k.eq_ignore_ascii_case("content-length") {
            match v.parse() {
                Ok(n) => req.content_length = n,
                Err(_) => return Ok(Head::Bad),
            }
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            req.chunked = true;
        }
    }
    Ok(Head::Request(req))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn head(status: u16, len: u64, keep_alive: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nServer: rvs-httpd\r\nContent-Type: text/plain\r\n\
         Content-Length: {len}\r\nConnection: {}\r\n\r\n",
        reason(status),
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes()
}

fn response(status: u16, body: &str, keep_alive: bool) -> Vec<u8> {
    let mut r = head(status, body.len() as u64, keep_alive);
    r.extend_from_slice(body.as_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Head {
        read_head(&mut io::Cursor::new(raw.as_bytes())).unwrap()
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let ka = |raw: &str| match parse(raw) {
            Head::Request(r) => r.keep_alive,
            _ => panic!("not a request: {raw:?}"),
        };
        assert!(ka("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nconnection: TE, close\r\n\r\n"));
    }

    #[test]
    fn bad_and_oversized_heads_are_refused() {
        assert!(matches!(parse(""), Head::Eof));
        assert!(matches!(parse("GET /\r\n\r\n"), Head::Bad));
        assert!(matches!(parse("GET / HTTP/2\r\n\r\n"), Head::Bad));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nnocolon\r\n\r\n"),
            Head::Bad
        ));
        assert!(matches!(parse("GET / HTTP/1.1\r\nHost: x"), Head::Bad));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(parse(&big), Head::TooLarge));
    }

    #[test]
    fn content_length_and_chunked_are_seen() {
        match parse("POST / HTTP/1.1\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\n") {
            Head::Request(r) => {
                assert_eq!(r.content_length, 12);
                assert!(r.chunked);
                assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/"));
            }
            _ => panic!("not a request"),
        }
    }

    #[test]
    fn response_has_length_and_connection() {
        let r = String::from_utf8(response(200, "rs1\n", true)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 4\r\n"));
        assert!(r.contains("Connection: keep-alive\r\n"));
        assert!(r.ends_with("\r\n\r\nrs1\n"));
    }
}
