//! PING_CHECK: one ICMP (ICMPv6) echo request must get its echo reply within the budget.
//!
//! keepalived's `check_ping.c` uses unprivileged ping sockets (`SOCK_DGRAM`,
//! `IPPROTO_ICMP`) and widens `net.ipv4.ping_group_range` so that it may. rvs changes no
//! sysctl: it opens a ping socket when the range allows it, and otherwise a raw ICMP socket
//! (root or CAP_NET_RAW). Either is connected to the target, so only its packets come in.
//! A reply is ours when it is an echo reply (code 0) with our sequence number, our
//! identifier (on a raw socket; a ping socket's kernel rewrites and filters the identifier
//! itself) and our random 8-byte token at the start of the data. Anything else — our own
//! request looped back, other processes' replies — is skipped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::UdpSocket;

use crate::Target;
use crate::budget::{Budget, Fail, Res};
use crate::net;

/// Bytes of data after the ICMP header (as ping's default 56): the token, then a pattern.
const DATA_LEN: usize = 56;
/// The random token at the start of the data.
const TOKEN_LEN: usize = 8;

/// Which kind of ICMP socket is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A ping socket (`SOCK_DGRAM`): no IP header on receive, identifier owned by the kernel.
    Dgram,
    /// A raw socket: IPv4 packets arrive with their IP header; every ICMP packet from the
    /// target arrives.
    Raw,
}

/// Sequence numbers: one per attempt in this process.
static SEQUENCE: AtomicU16 = AtomicU16::new(0);

/// PING_CHECK.
pub(crate) async fn check(target: &Target, budget: Budget) -> Res<()> {
    let v4 = target.addr.is_ipv4();
    let (sock, mode) = open(v4)?;
    net::set_mark(SockRef::from(&sock), target)?;
    if let Some(bind) = target.bind {
        if bind.is_ipv4() != v4 {
            return Err(Fail::new("bind: address family differs from the target's"));
        }
        let local = SockAddr::from(SocketAddr::new(bind.ip(), 0));
        sock.bind(&local).map_err(|e| Fail::io("bind", &e))?;
    }
    let remote = SockAddr::from(SocketAddr::new(target.addr, 0));
    sock.connect(&remote).map_err(|e| Fail::io("connect", &e))?;
    // tokio's UdpSocket drives any datagram socket: send(2) and recv(2) are all it calls on
    // the descriptor, and they are what an ICMP socket takes. (AsyncFd would do too, but
    // registering a descriptor with it is `unsafe` now.)
    let sock = UdpSocket::from_std(std::net::UdpSocket::from(sock))
        .map_err(|e| Fail::io("icmp socket", &e))?;

    let mut random = [0u8; 2 + TOKEN_LEN];
    rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Fail::io("getrandom", &e.into()))?;
    let id = u16::from_be_bytes([random[0], random[1]]);
    let token: [u8; TOKEN_LEN] = random[2..].try_into().unwrap_or_default();
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = echo_request(v4, id, seq, &token);

    budget.io("send", sock.send(&request)).await?;

    let mut buf = [0u8; 2048];
    loop {
        let n = budget.io("recv", sock.recv(&mut buf)).await?;
        if is_our_reply(v4, mode, &buf[..n], id, seq, &token) {
            return Ok(());
        }
    }
}

/// A ping socket if the kernel lets us have one, else a raw socket.
fn open(v4: bool) -> Res<(Socket, Mode)> {
    let (domain, proto) = if v4 {
        (Domain::IPV4, Protocol::ICMPV4)
    } else {
        (Domain::IPV6, Protocol::ICMPV6)
    };
    let (sock, mode) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, Mode::Dgram),
        Err(_) => Socket::new(domain, Type::RAW, Some(proto))
            .map(|s| (s, Mode::Raw))
            .map_err(|e| Fail::io("icmp socket", &e))?,
    };
    sock.set_nonblocking(true)
        .map_err(|e| Fail::io("icmp socket", &e))?;
    Ok((sock, mode))
}

/// An echo request: type, code 0, checksum, identifier, sequence number, data.
fn echo_request(v4: bool, id: u16, seq: u16, token: &[u8; TOKEN_LEN]) -> Vec<u8> {
    //= https://www.rfc-editor.org/rfc/rfc792
    //# Type
    //#
    //#    8 for echo message;
    //#
    //#    0 for echo reply message.
    //= https://www.rfc-editor.org/rfc/rfc4443#section-4.1
    //# Type           128
    let mut pkt = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(token);
    pkt.extend((0..DATA_LEN - TOKEN_LEN).map(|i| 0x10 + i as u8));
    if v4 {
        let sum = checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    //= https://www.rfc-editor.org/rfc/rfc3542#section-3.1
    //# The kernel will calculate and insert the ICMPv6 checksum for ICMPv6
    //# raw sockets, since this checksum is mandatory.
    pkt
}

/// The Internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `pkt` (as read from the socket) is the reply to our request.
fn is_our_reply(v4: bool, mode: Mode, pkt: &[u8], id: u16, seq: u16, token: &[u8]) -> bool {
    let icmp = if v4 && mode == Mode::Raw {
        // A raw IPv4 socket hands over the IP header too.
        let Some(&first) = pkt.first() else {
            return false;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 || pkt.len() < ihl || pkt[9] != 1 {
            return false;
        }
        &pkt[ihl..]
    } else {
        pkt
    };
    if icmp.len() < 8 + token.len() {
        return false;
    }
    let reply_type = if v4 { 0 } else { 129 };
    let same_id = mode == Mode::Dgram || icmp[4..6] == id.to_be_bytes();
    icmp[0] == reply_type
        && icmp[1] == 0
        && same_id
        && icmp[6..8] == seq.to_be_bytes()
        && icmp[8..].starts_with(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: [u8; TOKEN_LEN] = *b"rvs-tokn";

    fn as_reply(mut req: Vec<u8>, v4: bool) -> Vec<u8> {
        req[0] = if v4 { 0 } else { 129 };
        req
    }

    fn ipv4_header(payload_len: usize) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        let total = (20 + payload_len) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h
    }

    #[test]
    fn echo_request_layout_and_checksum() {
        let req = echo_request(true, 0x1234, 7, &TOKEN);
        assert_eq!(req.len(), 8 + DATA_LEN);
        assert_eq!(&req[..2], &[8, 0]);
        assert_eq!(&req[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&req[8..16], &TOKEN);
        // A correct checksum makes the whole message sum to zero.
        assert_eq!(checksum(&req), 0);
        let req6 = echo_request(false, 1, 2, &TOKEN);
        assert_eq!(&req6[..4], &[128, 0, 0, 0]);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the one's complement sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn raw_v4_replies_are_matched_past_the_ip_header() {
        let reply = as_reply(echo_request(true, 0x1234, 7, &TOKEN), true);
        let mut pkt = ipv4_header(reply.len());
        pkt.extend_from_slice(&reply);
        assert!(is_our_reply(true, Mode::Raw, &pkt, 0x1234, 7, &TOKEN));
        assert!(!is_our_reply(true, Mode::Raw, &pkt, 0x1235, 7, &TOKEN));
        assert!(!is_our_reply(true, Mode::Raw, &pkt, 0x1234, 8, &TOKEN));
        assert!(!is_our_reply(true, Mode::Raw, &pkt, 0x1234, 7, b"other-tk"));
        // Our own request, looped back on a raw socket, is not a reply.
        let mut looped = ipv4_header(reply.len());
        looped.extend_from_slice(&echo_request(true, 0x1234, 7, &TOKEN));
        assert!(!is_our_reply(true, Mode::Raw, &looped, 0x1234, 7, &TOKEN));
        assert!(!is_our_reply(
            true,
            Mode::Raw,
            &pkt[..30],
            0x1234,
            7,
            &TOKEN
        ));
    }

    #[test]
    fn ping_socket_replies_ignore_the_kernel_owned_identifier() {
        let reply = as_reply(echo_request(true, 0x9999, 3, &TOKEN), true);
        assert!(is_our_reply(true, Mode::Dgram, &reply, 0x1234, 3, &TOKEN));
        let reply6 = as_reply(echo_request(false, 5, 3, &TOKEN), false);
        assert!(is_our_reply(false, Mode::Raw, &reply6, 5, 3, &TOKEN));
        assert!(!is_our_reply(false, Mode::Raw, &reply6, 6, 3, &TOKEN));
        assert!(!is_our_reply(
            false,
            Mode::Raw,
            &echo_request(false, 5, 3, &TOKEN),
            5,
            3,
            &TOKEN
        ));
    }
}
