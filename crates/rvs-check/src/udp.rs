//! UDP_CHECK, as keepalived's `check_udp.c` and `udp_socket_state()` (keepalived/core/layer4.c):
//! send the payload on a connected UDP socket, then wait for the timeout.
//! - An ICMP port unreachable (ECONNREFUSED on the connected socket) fails it.
//! - Without `require_reply`: a reply, or the timeout passing quietly, passes it.
//! - With `require_reply`: a reply must come; its length must be within
//!   `min_reply_length` [0] ..= `max_reply_length` [255], and it must agree with the
//!   expected bytes over the shorter of the two (keepalived's `check_udp_reply`: "We only
//!   check lesser of len and udp_check->reply_len octets"). keepalived checks the length
//!   only when reply bytes are given; rvs checks it whenever a reply is required.

use crate::Target;
use crate::budget::{Budget, Fail, Res};
use crate::net;
use crate::stream::quote;

/// keepalived's default `max_reply_length` (`UINT8_MAX`).
const DEFAULT_MAX_REPLY: u32 = 255;

/// What the reply must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply<'a> {
    /// `require_reply` and its bytes (empty: any reply).
    pub(crate) required: Option<&'a [u8]>,
    /// `min_reply_length` [0].
    pub(crate) min_len: Option<u32>,
    /// `max_reply_length` [255].
    pub(crate) max_len: Option<u32>,
}

/// UDP_CHECK.
pub(crate) async fn check(
    payload: &[u8],
    reply: &Reply<'_>,
    target: &Target,
    budget: Budget,
) -> Res<()> {
    let sock = net::udp_connect(target).await?;
    budget.io("send", sock.send(payload)).await?;
    // Room for any datagram, so that an oversized reply shows its real length.
    let mut buf = vec![0u8; 65536];
    match budget.within(sock.recv(&mut buf)).await {
        Some(Ok(n)) => match reply.required {
            None => Ok(()),
            Some(expected) => check_reply(&buf[..n], expected, reply),
        },
        Some(Err(e)) if net::is_port_unreachable(&e) => Err(Fail::new("port unreachable")),
        Some(Err(e)) => Err(Fail::io("recv", &e)),
        // keepalived: "Handle Read timeout, we consider it success unless require_reply is set"
        None if reply.required.is_none() => Ok(()),
        None => Err(Fail::new(format!("no reply: {}", budget.timeout_reason()))),
    }
}

/// keepalived's `check_udp_reply`: length bounds, then the bytes both have.
fn check_reply(got: &[u8], expected: &[u8], reply: &Reply<'_>) -> Res<()> {
    let min = reply.min_len.unwrap_or(0) as usize;
    let max = reply.max_len.unwrap_or(DEFAULT_MAX_REPLY) as usize;
    if got.len() < min || got.len() > max {
        return Err(Fail::new(format!(
            "reply length {} not within {min}..={max}",
            got.len()
        )));
    }
    let n = got.len().min(expected.len());
    if got[..n] == expected[..n] {
        Ok(())
    } else {
        Err(Fail::new(format!("reply mismatch: got \"{}\"", quote(got))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(required: &[u8], min: Option<u32>, max: Option<u32>) -> Reply<'_> {
        Reply {
            required: Some(required),
            min_len: min,
            max_len: max,
        }
    }

    #[test]
    fn reply_must_agree_over_the_shorter_length() {
        let r = want(b"PONG", None, None);
        assert_eq!(check_reply(b"PONG and more", b"PONG", &r), Ok(()));
        // keepalived compares min(len, reply_len) octets: a shorter agreeing reply passes.
        assert_eq!(check_reply(b"PO", b"PONG", &r), Ok(()));
        assert_eq!(
            check_reply(b"PANG", b"PONG", &r),
            Err(Fail::new("reply mismatch: got \"PANG\""))
        );
    }

    #[test]
    fn length_bounds_are_inclusive_with_keepalived_defaults() {
        let r = want(b"", Some(2), Some(4));
        assert!(check_reply(b"ab", b"", &r).is_ok());
        assert!(check_reply(b"abcd", b"", &r).is_ok());
        assert_eq!(
            check_reply(b"a", b"", &r),
            Err(Fail::new("reply length 1 not within 2..=4"))
        );
        assert!(check_reply(b"abcde", b"", &r).is_err());
        let defaults = want(b"", None, None);
        assert!(check_reply(&[0u8; 255], b"", &defaults).is_ok());
        assert!(check_reply(&[0u8; 256], b"", &defaults).is_err());
    }
}
