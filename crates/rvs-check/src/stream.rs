//! TCP_CHECK and nanny's send/expect.
//!
//! How much of the reply is read before `expect` is decided:
//! - [`Expect::Prefix`]: until the reply holds as many bytes as the prefix, or the server
//!   closes the connection; then the first `len(prefix)` bytes must equal it.
//! - [`Expect::Any`] (`*`): one read; any data, or the server closing the connection (the
//!   empty reply), passes. Only a reset or the timeout fails.
//! - [`Expect::Regex`]: reads until the reply matches, the server closes the connection, or
//!   the budget runs out; at the end the reply must match. A server that says nothing at all
//!   fails with the timeout, one that says something else with `expect: got "..."`.
//!
//! Over UDP one datagram is the reply.

use regex::bytes::Regex;
use rvs_core::health::Expect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Target;
use crate::budget::{Budget, Fail, Res};
use crate::net;

/// The most of a reply that a regex is matched against.
const MAX_REPLY: usize = 64 * 1024;

/// TCP_CHECK: the connection is accepted.
pub(crate) async fn tcp(target: &Target, budget: Budget) -> Res<()> {
    net::tcp_connect(target, budget).await.map(drop)
}

/// nanny's send/expect, over TCP or UDP.
pub(crate) async fn send_expect(
    send: &[u8],
    expect: Option<&Expect>,
    udp: bool,
    target: &Target,
    budget: Budget,
) -> Res<()> {
    let regex = match expect {
        Some(Expect::Regex(re)) => Some(compile(re)?),
        _ => None,
    };
    if udp {
        return udp_send_expect(send, expect, regex.as_ref(), target, budget).await;
    }
    let mut conn = net::tcp_connect(target, budget).await?;
    if !send.is_empty() {
        budget.io("send", conn.write_all(send)).await?;
    }
    match expect {
        None => Ok(()),
        Some(Expect::Any) => {
            let mut buf = [0u8; 512];
            budget.io("read", conn.read(&mut buf)).await.map(drop)
        }
        Some(Expect::Prefix(prefix)) => {
            let reply = read_at_least(&mut conn, prefix.len(), budget).await?;
            check_prefix(prefix, &reply)
        }
        Some(Expect::Regex(_)) => {
            let re = regex
                .as_ref()
                .ok_or_else(|| Fail::new("expect: no regex"))?;
            read_until_match(&mut conn, re, budget).await
        }
    }
}

/// Compiles a `use_regex` expectation.
pub(crate) fn compile(re: &str) -> Res<Regex> {
    Regex::new(re).map_err(|e| Fail::new(format!("bad regex {re:?}: {e}")))
}

/// Reads until `want` bytes are in, or EOF.
async fn read_at_least(conn: &mut TcpStream, want: usize, budget: Budget) -> Res<Vec<u8>> {
    let mut reply = Vec::with_capacity(want.max(64));
    let mut buf = [0u8; 4096];
    while reply.len() < want {
        let n = budget.io("read", conn.read(&mut buf)).await?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    Ok(reply)
}

/// Reads until the reply matches `re`, EOF, or the deadline.
async fn read_until_match(conn: &mut TcpStream, re: &Regex, budget: Budget) -> Res<()> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match budget.within(conn.read(&mut buf)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(Fail::io("read", &e)),
            None if reply.is_empty() => return Err(budget.timeout()),
            None => return Err(mismatch(&reply)),
        };
        if n == 0 {
            return if reply.is_empty() {
                Err(Fail::new("expect: connection closed without a reply"))
            } else {
                Err(mismatch(&reply))
            };
        }
        let room = MAX_REPLY - reply.len();
        reply.extend_from_slice(&buf[..n.min(room)]);
        if re.is_match(&reply) {
            return Ok(());
        }
        if reply.len() >= MAX_REPLY {
            return Err(mismatch(&reply));
        }
    }
}

/// The reply must start with the prefix.
fn check_prefix(prefix: &[u8], reply: &[u8]) -> Res<()> {
    if reply.starts_with(prefix) {
        Ok(())
    } else if reply.is_empty() {
        Err(Fail::new("expect: connection closed without a reply"))
    } else {
        // Show what was compared: as many bytes as the prefix has.
        Err(mismatch(&reply[..reply.len().min(prefix.len().max(1))]))
    }
}

/// `expect: got "<the first line of the reply, at most 60 bytes>"`.
pub(crate) fn mismatch(reply: &[u8]) -> Fail {
    Fail::new(format!("expect: got \"{}\"", quote(reply)))
}

/// The first line of `data`, at most 60 bytes, escaped.
pub(crate) fn quote(data: &[u8]) -> String {
    let line = data
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let cut = &line[..line.len().min(60)];
    let mut s = cut.escape_ascii().to_string();
    if cut.len() < line.len() {
        s.push_str("...");
    }
    s
}

/// Send/expect over UDP: one datagram out, one back.
async fn udp_send_expect(
    send: &[u8],
    expect: Option<&Expect>,
    regex: Option<&Regex>,
    target: &Target,
    budget: Budget,
) -> Res<()> {
    let sock = net::udp_connect(target).await?;
    budget.io("send", sock.send(send)).await?;
    let Some(expect) = expect else {
        return Ok(());
    };
    let mut buf = vec![0u8; 65536];
    let n = match budget.within(sock.recv(&mut buf)).await {
        Some(Ok(n)) => n,
        Some(Err(e)) if net::is_port_unreachable(&e) => {
            return Err(Fail::new("port unreachable"));
        }
        Some(Err(e)) => return Err(Fail::io("recv", &e)),
        None => return Err(budget.timeout()),
    };
    let reply = &buf[..n];
    match expect {
        Expect::Any => Ok(()),
        Expect::Prefix(prefix) => check_prefix(prefix, reply),
        Expect::Regex(_) => match regex {
            Some(re) if re.is_match(reply) => Ok(()),
            _ => Err(mismatch(reply)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_compares_the_start_of_the_reply() {
        assert_eq!(check_prefix(b"HTTP", b"HTTP/1.0 200 OK\r\n"), Ok(()));
        assert_eq!(
            check_prefix(b"HTTP/1.1 200", b"HTTP/1.1 500 Oops\r\n"),
            Err(Fail::new("expect: got \"HTTP/1.1 500\""))
        );
        assert_eq!(
            check_prefix(b"HTTP", b"HT"),
            Err(Fail::new("expect: got \"HT\""))
        );
        assert_eq!(
            check_prefix(b"OK", b""),
            Err(Fail::new("expect: connection closed without a reply"))
        );
    }

    #[test]
    fn quote_shows_the_first_line_escaped_and_cut() {
        assert_eq!(quote(b"+OK ready\r\nmore"), "+OK ready");
        assert_eq!(quote(b"\x00\x01a"), "\\x00\\x01a");
        let long = [b'a'; 100];
        assert_eq!(quote(&long), format!("{}...", "a".repeat(60)));
    }
}
