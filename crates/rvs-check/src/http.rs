//! HTTP_GET and SSL_GET, as keepalived's `check_http.c`: one connection per `url`, every
//! URL must pass, in order.
//!
//! The request is keepalived's `request_template`, byte for byte:
//! `GET <path> HTTP/1.x\r\nUser-Agent: KeepAliveClient\r\n[Connection: close\r\n]Host: <host>\r\n\r\n`,
//! `Connection: close` for HTTP/1.1 only. `<host>` is the URL's `virtualhost`, else the
//! checker's, as given; without one it is the target's `address:port` (`[v6]:port`).
//!
//! The response passes when, in keepalived's order (`http_handle_response`): it has a
//! status line and a complete header; its status is in one of the URL's `status_code`
//! ranges [200-299]; the MD5 of its body equals `digest` (when given); and the body matches
//! `regex` (or, with `regex_no_match`, does not).
//!
//! The body ends at `Content-Length`, at the last chunk of a `Transfer-Encoding: chunked`
//! body (decoded: the digest and the regex see the entity, not the chunk framing), or when
//! the server closes the connection; it is empty for 1xx, 204 and 304. A body cut short
//! by the server closing the connection is judged as it is, as keepalived does. Interim
//! 1xx responses before the final one are skipped. The regex sees the first 1 MiB of the
//! body; the digest all of it.

use md5::{Digest, Md5};
use regex::bytes::Regex;
use rvs_core::health::UrlCheck;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Target;
use crate::budget::{Budget, Fail, Res};
use crate::{net, stream, tls};

/// The longest response header accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How much of the body a regex is matched against.
const MAX_REGEX_BODY: usize = 1024 * 1024;

/// The MD5 of `body` as keepalived's `digest` keyword and `genhash` write it: 32 lower-case
/// hex digits.
pub fn md5_hex(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// What [`genhash`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genhash {
    /// The response's status code.
    pub status: u16,
    /// The MD5 of the (decoded) body, as [`md5_hex`] writes it.
    pub digest: String,
}

/// keepalived's `genhash`: fetches `path` the way HTTP_GET (SSL_GET with `tls`) would —
/// the same request, HTTP/1.0, `virtualhost` as the Host header and, over TLS, as the SNI
/// name — and returns the status and the body's digest, for writing a `digest` into a
/// configuration or checking one in a test. Bounded by `timeout`; the error is the reason a
/// check would give.
pub async fn genhash(
    target: &Target,
    tls: bool,
    path: &str,
    virtualhost: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Genhash, String> {
    let budget = Budget::new(timeout);
    let request = request(path, virtualhost, false, target);
    let fetch = async {
        let tcp = net::tcp_connect(target, budget).await?;
        if tls {
            let conn =
                tls::connect(tcp, virtualhost.is_some(), virtualhost, target.addr, budget).await?;
            exchange(conn, &request, false, budget).await
        } else {
            exchange(tcp, &request, false, budget).await
        }
    };
    let response = fetch.await.map_err(Fail::into_reason)?;
    Ok(Genhash {
        status: response.status,
        digest: hex(&response.digest),
    })
}

/// The checker-level options of HTTP_GET / SSL_GET.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options<'a> {
    /// SSL_GET.
    pub(crate) tls: bool,
    /// The checker's `virtualhost`.
    pub(crate) virtualhost: Option<&'a str>,
    /// `http_protocol 1.1`.
    pub(crate) http_1_1: bool,
    /// `enable_sni`.
    pub(crate) sni: bool,
}

/// HTTP_GET / SSL_GET: every URL must pass. With no URL at all the check passes, as
/// keepalived's `http_connect_thread` ("if there are no URLs in list, enable server w/o
/// checking").
pub(crate) async fn check(
    urls: &[UrlCheck],
    opts: &Options<'_>,
    target: &Target,
    budget: Budget,
) -> Res<()> {
    for url in urls {
        check_url(url, opts, target, budget).await.map_err(|fail| {
            if urls.len() > 1 {
                Fail::new(format!("url {}: {}", url.path, fail.into_reason()))
            } else {
                fail
            }
        })?;
    }
    Ok(())
}

async fn check_url(url: &UrlCheck, opts: &Options<'_>, target: &Target, budget: Budget) -> Res<()> {
    // Compile first: a bad regex is the configuration's fault, not the server's.
    let regex = match &url.regex {
        Some(re) => Some(stream::compile(re)?),
        None => None,
    };
    let vhost = url.virtualhost.as_deref().or(opts.virtualhost);
    let request = request(&url.path, vhost, opts.http_1_1, target);
    let keep_body = regex.is_some();
    let tcp = net::tcp_connect(target, budget).await?;
    let response = if opts.tls {
        let conn = tls::connect(tcp, opts.sni, vhost, target.addr, budget).await?;
        exchange(conn, &request, keep_body, budget).await?
    } else {
        exchange(tcp, &request, keep_body, budget).await?
    };
    judge(url, regex.as_ref(), &response)
}

/// keepalived's `request_template` / `request_template_ipv6`.
fn request(path: &str, vhost: Option<&str>, http_1_1: bool, target: &Target) -> Vec<u8> {
    let host = match (vhost, target.addr) {
        (Some(v), _) => v.to_string(),
        (None, std::net::IpAddr::V4(a)) => format!("{a}:{}", target.port),
        (None, std::net::IpAddr::V6(a)) => format!("[{a}]:{}", target.port),
    };
    let (minor, connection) = if http_1_1 {
        (1, "Connection: close\r\n")
    } else {
        (0, "")
    };
    format!(
        "GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{connection}Host: {host}\r\n\r\n"
    )
    .into_bytes()
}

/// The parts of a response the checks look at.
#[derive(Debug)]
struct Response {
    status: u16,
    digest: [u8; 16],
    /// The first [`MAX_REGEX_BODY`] bytes of the body, when a regex wants them.
    body: Vec<u8>,
}

fn judge(url: &UrlCheck, regex: Option<&Regex>, r: &Response) -> Res<()> {
    let in_range = |&(lo, hi): &(u16, u16)| (lo..=hi).contains(&r.status);
    let ok = if url.status_codes.is_empty() {
        (200..=299).contains(&r.status)
    } else {
        url.status_codes.iter().any(in_range)
    };
    if !ok {
        return Err(Fail::new(format!("HTTP status {}", r.status)));
    }
    if let Some(want) = &url.digest {
        let got = hex(&r.digest);
        if !want.trim().eq_ignore_ascii_case(&got) {
            return Err(Fail::new(format!("digest mismatch: got {got}")));
        }
    }
    if let Some(re) = regex {
        let matched = re.is_match(&r.body);
        if matched && url.regex_no_match {
            return Err(Fail::new("regex_no_match: body matches"));
        }
        if !matched && !url.regex_no_match {
            return Err(Fail::new("regex: body does not match"));
        }
    }
    Ok(())
}

/// Sends the request and reads the response.
async fn exchange<S>(mut conn: S, request: &[u8], keep_body: bool, budget: Budget) -> Res<Response>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    budget.io("send", conn.write_all(request)).await?;
    budget.io("send", conn.flush()).await?;

    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    let (head, body_at) = loop {
        if let Some(found) = parse_head(&buf).map_err(bad)? {
            break found;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("header longer than 64 KiB"));
        }
        let n = read_some(&mut conn, &mut chunk, budget).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                Fail::new("no response")
            } else {
                bad("connection closed within the header")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };

    let mut sink = Sink {
        md5: Md5::new(),
        body: Vec::new(),
        keep: keep_body,
    };
    let mut body = Body::new(head.framing);
    body.feed(&buf[body_at..], &mut |d| sink.take(d))
        .map_err(bad)?;
    while !body.done() {
        let n = read_some(&mut conn, &mut chunk, budget).await?;
        if n == 0 {
            break;
        }
        body.feed(&chunk[..n], &mut |d| sink.take(d)).map_err(bad)?;
    }
    Ok(Response {
        status: head.status,
        digest: sink.md5.finalize().into(),
        body: sink.body,
    })
}

fn bad(why: impl std::fmt::Display) -> Fail {
    Fail::new(format!("bad response: {why}"))
}

/// One read within the budget; 0 at the end of the stream. A TLS peer that closes the TCP
/// connection without a close_notify alert (common, and what keepalived tolerates) also
/// ends the stream.
async fn read_some<S: AsyncRead + Unpin>(
    conn: &mut S,
    buf: &mut [u8],
    budget: Budget,
) -> Res<usize> {
    match budget.within(conn.read(buf)).await {
        Some(Ok(n)) => Ok(n),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Some(Err(e)) => Err(Fail::io("read", &e)),
        None => Err(budget.timeout()),
    }
}

/// Where the body's bytes go: the digest, and the start of the body for a regex.
struct Sink {
    md5: Md5,
    body: Vec<u8>,
    keep: bool,
}

impl Sink {
    fn take(&mut self, data: &[u8]) {
        self.md5.update(data);
        if self.keep && self.body.len() < MAX_REGEX_BODY {
            let room = MAX_REGEX_BODY - self.body.len();
            self.body.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
}

/// A response's status and how its body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
}

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// Parses the head of the final response in `buf`: `None` while it is incomplete,
/// otherwise the head and where the body starts. Interim 1xx responses are skipped.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut at = 0;
    loop {
        let Some((head, len)) = parse_one_head(&buf[at..])? else {
            return Ok(None);
        };
        at += len;
        // 101 Switching Protocols is final; the other 1xx are interim.
        if (100..200).contains(&head.status) && head.status != 101 {
            continue;
        }
        return Ok(Some((head, at)));
    }
}

/// One response head: the status line and the header fields, up to the empty line.
fn parse_one_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let end = loop {
        let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = &buf[start..start + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        start += nl + 1;
        if line.is_empty() {
            break start;
        }
        lines.push(line);
    };
    let Some((status_line, fields)) = lines.split_first() else {
        return Err(String::from("empty header"));
    };
    let status = status_code(status_line)
        .ok_or_else(|| format!("status line \"{}\"", stream::quote(status_line)))?;

    let mut length = None;
    let mut chunked = false;
    for field in fields {
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = field[..colon].trim_ascii();
        let value = field[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("Content-Length \"{}\"", stream::quote(value)))?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            //= https://www.rfc-editor.org/rfc/rfc9112#section-6.3
            //# If a Transfer-Encoding header field is present and the chunked
            //# transfer coding (Section 7.1) is the final encoding, the message
            //# body length is determined by reading and decoding the chunked data
            //# until the transfer coding indicates the data is complete.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    //= https://www.rfc-editor.org/rfc/rfc9112#section-6.3
    //# Any response to a HEAD request and any response with a 1xx
    //# (Informational), 204 (No Content), or 304 (Not Modified) status
    //# code is always terminated by the first empty line after the header
    //# fields, regardless of the header fields present in the message, and
    //# thus cannot contain a message body or trailer section.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some((Head { status, framing }, end)))
}

/// The status code of `HTTP/1.x NNN reason`.
fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let code = rest[sp + 1..].trim_ascii_start();
    let digits = code.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || code.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The body reader: hands the body's bytes to a sink and says when it is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// `remaining` bytes of a `Content-Length` body to go.
    Length { remaining: u64 },
    /// A chunked body.
    Chunked(Chunked),
    /// Everything until the connection closes.
    Close,
    /// Complete.
    Done,
}

impl Body {
    fn new(framing: Framing) -> Body {
        match framing {
            Framing::Empty | Framing::Length(0) => Body::Done,
            Framing::Length(n) => Body::Length { remaining: n },
            Framing::Chunked => Body::Chunked(Chunked::Size { size: 0, digits: 0 }),
            Framing::Close => Body::Close,
        }
    }

    fn done(&self) -> bool {
        matches!(self, Body::Done | Body::Chunked(Chunked::Done))
    }

    fn feed(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        match self {
            Body::Length { remaining } => {
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                sink(&input[..n]);
                *remaining -= n as u64;
                if *remaining == 0 {
                    *self = Body::Done;
                }
                Ok(())
            }
            Body::Chunked(state) => state.feed(input, sink),
            Body::Close => {
                sink(input);
                Ok(())
            }
            Body::Done => Ok(()),
        }
    }
}

/// The chunked transfer coding's decoder (RFC 9112 section 7.1), fed any slicing of the
/// input. Bare LF is accepted where CRLF is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// In the hex digits of a chunk size.
    Size { size: u64, digits: u32 },
    /// After the size: whitespace, extensions, up to the end of the line.
    SizeLine { size: u64 },
    /// In a chunk's data.
    Data { remaining: u64 },
    /// The CRLF after a chunk's data (`cr`: the CR is in).
    DataEnd { cr: bool },
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// In a trailer field line.
    Trailer,
    /// The final empty line's CR is in.
    FinalLf,
    /// The body is complete.
    Done,
}

impl Chunked {
    //= https://www.rfc-editor.org/rfc/rfc9112#section-7.1
    //# chunked-body   = *chunk
    //#                  last-chunk
    //#                  trailer-section
    //#                  CRLF
    //#
    //# chunk          = chunk-size [ chunk-ext ] CRLF
    //#                  chunk-data CRLF
    //# chunk-size     = 1*HEXDIG
    //# last-chunk     = 1*("0") [ chunk-ext ] CRLF
    fn feed(&mut self, mut input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        while let Some(&b) = input.first() {
            if let Chunked::Data { remaining } = *self {
                let n = input
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                sink(&input[..n]);
                input = &input[n..];
                let left = remaining - n as u64;
                *self = if left == 0 {
                    Chunked::DataEnd { cr: false }
                } else {
                    Chunked::Data { remaining: left }
                };
                continue;
            }
            input = &input[1..];
            *self = match (*self, b) {
                (Chunked::Size { size, digits }, _) if b.is_ascii_hexdigit() => {
                    if digits >= 16 {
                        return Err(String::from("chunk size too large"));
                    }
                    let d = u64::from(char::from(b).to_digit(16).unwrap_or(0));
                    Chunked::Size {
                        size: size << 4 | d,
                        digits: digits + 1,
                    }
                }
                (Chunked::Size { digits: 0, .. }, _) => {
                    return Err(format!("chunk size starts with {:?}", char::from(b)));
                }
                (Chunked::Size { size, .. }, b';' | b' ' | b'\t' | b'\r') => {
                    Chunked::SizeLine { size }
                }
                (Chunked::Size { size, .. } | Chunked::SizeLine { size }, b'\n') => {
                    if size == 0 {
                        Chunked::TrailerStart
                    } else {
                        Chunked::Data { remaining: size }
                    }
                }
                (Chunked::Size { .. }, _) => {
                    return Err(format!("bad chunk size digit {:?}", char::from(b)));
                }
                (Chunked::SizeLine { size }, _) => Chunked::SizeLine { size },
                (Chunked::DataEnd { cr: false }, b'\r') => Chunked::DataEnd { cr: true },
                (Chunked::DataEnd { .. }, b'\n') => Chunked::Size { size: 0, digits: 0 },
                (Chunked::DataEnd { .. }, _) => {
                    return Err(String::from("chunk data longer than its size"));
                }
                (Chunked::TrailerStart, b'\r') => Chunked::FinalLf,
                (Chunked::TrailerStart, b'\n') | (Chunked::FinalLf, b'\n') => Chunked::Done,
                (Chunked::FinalLf, _) => return Err(String::from("bad end of chunked body")),
                (Chunked::Trailer, b'\n') => Chunked::TrailerStart,
                (Chunked::TrailerStart | Chunked::Trailer, _) => Chunked::Trailer,
                (Chunked::Done, _) => return Ok(()),
                (Chunked::Data { .. }, _) => unreachable!("handled above"),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str, port: u16) -> Target {
        Target {
            addr: addr.parse().unwrap(),
            port,
            bind: None,
            fwmark: None,
        }
    }

    #[test]
    fn md5_hex_is_lower_case_hex() {
        // RFC 1321 appendix A.5 test suite.
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn request_matches_keepalived_template() {
        let t4 = target("192.0.2.1", 8080);
        assert_eq!(
            request("/health", None, false, &t4),
            b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:8080\r\n\r\n"
        );
        assert_eq!(
            request("/", Some("www.example.com"), true, &t4),
            b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"
        );
        let t6 = target("2001:db8::1", 80);
        assert_eq!(
            request("/", None, false, &t6),
            b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [2001:db8::1]:80\r\n\r\n"
        );
    }

    #[test]
    fn head_parsing_finds_status_and_framing() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
        let (head, at) = parse_head(resp).unwrap().unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                framing: Framing::Length(5)
            }
        );
        assert_eq!(&resp[at..], b"hello");
        let chunked = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: gzip, Chunked\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(
            parse_head(chunked).unwrap().unwrap().0.framing,
            Framing::Chunked
        );
        let close = b"HTTP/1.0 500 Oops\n\n";
        assert_eq!(
            parse_head(close).unwrap().unwrap().0,
            Head {
                status: 500,
                framing: Framing::Close
            }
        );
        let no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(
            parse_head(no_content).unwrap().unwrap().0.framing,
            Framing::Empty
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn interim_responses_are_skipped() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        let (head, at) = parse_head(buf).unwrap().unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(at, buf.len());
        assert_eq!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap(), None);
    }

    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, bool), String> {
        let mut body = Body::new(Framing::Chunked);
        let mut out = Vec::new();
        for part in wire.chunks(piece) {
            body.feed(part, &mut |d| out.extend_from_slice(d))?;
        }
        Ok((out, body.done()))
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
        for piece in 1..=wire.len() {
            let (out, done) = decode_in_pieces(wire, piece).unwrap();
            assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.", "piece {piece}");
            assert!(done);
        }
        let (out, done) = decode_in_pieces(b"3\nabc\n0\n\n", 2).unwrap();
        assert_eq!((out.as_slice(), done), (&b"abc"[..], true));
        let (out, done) = decode_in_pieces(b"A\r\n0123", 100).unwrap();
        assert_eq!((out.as_slice(), done), (&b"0123"[..], false));
    }

    #[test]
    fn chunked_errors_are_reported() {
        assert!(decode_in_pieces(b"zz\r\n", 1).is_err());
        assert!(decode_in_pieces(b"\r\n", 1).is_err());
        assert!(decode_in_pieces(b"2\r\nabc\r\n", 1).is_err());
        assert!(decode_in_pieces(b"11111111111111111\r\n", 4).is_err());
    }

    #[test]
    fn length_bodies_stop_at_content_length() {
        let mut body = Body::new(Framing::Length(3));
        let mut out = Vec::new();
        body.feed(b"abcdef", &mut |d| out.extend_from_slice(d))
            .unwrap();
        assert_eq!(out, b"abc");
        assert!(body.done());
        assert!(Body::new(Framing::Length(0)).done());
        assert!(Body::new(Framing::Empty).done());
        assert!(!Body::new(Framing::Close).done());
    }

    fn url() -> UrlCheck {
        UrlCheck {
            path: String::from("/"),
            digest: None,
            status_codes: Vec::new(),
            virtualhost: None,
            regex: None,
            regex_no_match: false,
        }
    }

    fn response(status: u16, body: &[u8]) -> Response {
        Response {
            status,
            digest: Md5::digest(body).into(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn status_codes_default_to_2xx_and_take_lists_of_ranges() {
        let u = url();
        assert!(judge(&u, None, &response(200, b"")).is_ok());
        assert!(judge(&u, None, &response(299, b"")).is_ok());
        assert_eq!(
            judge(&u, None, &response(301, b"")),
            Err(Fail::new("HTTP status 301"))
        );
        let listed = UrlCheck {
            status_codes: vec![(200, 200), (300, 399)],
            ..url()
        };
        assert!(judge(&listed, None, &response(302, b"")).is_ok());
        assert!(judge(&listed, None, &response(201, b"")).is_err());
    }

    #[test]
    fn digest_and_regex_judge_the_body() {
        let with_digest = UrlCheck {
            digest: Some(md5_hex(b"hello").to_uppercase()),
            ..url()
        };
        assert!(judge(&with_digest, None, &response(200, b"hello")).is_ok());
        let err = judge(&with_digest, None, &response(200, b"hullo")).unwrap_err();
        assert!(err.into_reason().starts_with("digest mismatch"));

        let re = Regex::new("status: (ok|fine)").unwrap();
        assert!(judge(&url(), Some(&re), &response(200, b"x status: ok")).is_ok());
        assert_eq!(
            judge(&url(), Some(&re), &response(200, b"status: bad")),
            Err(Fail::new("regex: body does not match"))
        );
        let no_match = UrlCheck {
            regex_no_match: true,
            ..url()
        };
        assert!(judge(&no_match, Some(&re), &response(200, b"status: bad")).is_ok());
        assert!(judge(&no_match, Some(&re), &response(200, b"status: fine")).is_err());
    }
}
