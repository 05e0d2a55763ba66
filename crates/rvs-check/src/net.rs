//! Sockets of the checks: a TCP connection and a connected UDP socket to the target, with
//! the check's `bindto`/`bind_port` and `fwmark` applied.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::Target;
use crate::budget::{Budget, Fail, Res};

/// The local address to bind: the check's, after making sure its family matches.
fn local(target: &Target) -> Res<Option<SocketAddr>> {
    match target.bind {
        Some(b) if b.is_ipv4() != target.addr.is_ipv4() => Err(Fail::new(format!(
            "bind: {} and target {} are of different address families",
            b.ip(),
            target.addr
        ))),
        b => Ok(b),
    }
}

/// Sets the check's SO_MARK on a socket.
pub(crate) fn set_mark(sock: SockRef<'_>, target: &Target) -> Res<()> {
    if let Some(mark) = target.fwmark {
        sock.set_mark(mark).map_err(|e| Fail::io("fwmark", &e))?;
    }
    Ok(())
}

/// Opens a TCP connection to the target within the budget.
///
/// Like keepalived's `tcp_bind_connect` (keepalived/core/layer4.c), the socket lingers 0 s
/// on close: the check's connections end with a reset and leave no TIME_WAIT behind, so a
/// fixed `bind_port` can be reused by the next attempt.
pub(crate) async fn tcp_connect(target: &Target, budget: Budget) -> Res<TcpStream> {
    let sock = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| Fail::io("socket", &e))?;
    set_mark(SockRef::from(&sock), target)?;
    SockRef::from(&sock)
        .set_linger(Some(Duration::ZERO))
        .map_err(|e| Fail::io("socket", &e))?;
    if let Some(addr) = local(target)? {
        if addr.port() != 0 {
            sock.set_reuseaddr(true).map_err(|e| Fail::io("bind", &e))?;
        }
        sock.bind(addr).map_err(|e| Fail::io("bind", &e))?;
    }
    budget
        .io("connect", sock.connect(target.socket_addr()))
        .await
}

/// A UDP socket connected to the target, so that an ICMP port unreachable comes back as
/// ECONNREFUSED on the next receive.
pub(crate) async fn udp_connect(target: &Target) -> Res<UdpSocket> {
    let any = if target.addr.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    };
    let sock = UdpSocket::bind(local(target)?.unwrap_or(any))
        .await
        .map_err(|e| Fail::io("bind", &e))?;
    set_mark(SockRef::from(&sock), target)?;
    sock.connect(target.socket_addr())
        .await
        .map_err(|e| Fail::io("connect", &e))?;
    Ok(sock)
}

/// Whether an error is the ICMP port unreachable of a connected UDP socket.
pub(crate) fn is_port_unreachable(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::ConnectionRefused
}
