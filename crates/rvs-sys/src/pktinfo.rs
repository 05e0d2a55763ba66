//! Datagrams with their addressing ancillary data (`IP_PKTINFO`, `IPV6_PKTINFO`,
//! `IPV6_HOPLIMIT`): what a raw VRRP socket needs that `sendto`/`recvfrom` cannot give.
//!
//! - Sending: the source address is chosen by the caller, not by the kernel's source
//!   selection — VRRP's checksum covers a pseudo-header with the source (RFC 5798 §5.2.8),
//!   and IPv6 adverts must come from the link-local address (§5.1.2.1) even while a global
//!   one would be preferred or the link-local one is still tentative.
//! - Receiving over IPv6: a raw socket gives no IP header, so the destination (group or
//!   unicast) and the hop limit (which must be 255) come as control messages.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::sys::{last_err, setsockopt};

/// Control-message space for what these calls send or expect back.
const CMSG_SPACE: usize = 128;

/// 8-byte aligned control buffer (`cmsghdr` alignment on 64-bit Linux).
#[repr(C, align(8))]
struct Control([u8; CMSG_SPACE]);

/// Ask the kernel to deliver `IPV6_PKTINFO` (destination, interface) and `IPV6_HOPLIMIT`
/// with each datagram received on `fd`, an IPv6 socket.
pub fn recv_info_v6(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    let raw = fd.as_raw_fd();
    setsockopt(
        raw,
        libc::IPPROTO_IPV6,
        libc::IPV6_RECVPKTINFO,
        &on,
        "setsockopt",
        "IPV6_RECVPKTINFO",
    )?;
    setsockopt(
        raw,
        libc::IPPROTO_IPV6,
        libc::IPV6_RECVHOPLIMIT,
        &on,
        "setsockopt",
        "IPV6_RECVHOPLIMIT",
    )
}

/// Let `fd` (IPv6) send from an address the interface does not (yet) use: a tentative
/// link-local address during duplicate address detection (`IPV6_FREEBIND`).
pub fn freebind_v6(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(
        fd.as_raw_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_FREEBIND,
        &on,
        "setsockopt",
        "IPV6_FREEBIND",
    )
}

/// A datagram received on an IPv6 socket with [`recv_info_v6`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvV6 {
    /// Bytes received.
    pub len: usize,
    /// The sender.
    pub src: SocketAddrV6,
    /// The destination address (`IPV6_PKTINFO`), if the kernel gave it.
    pub dst: Option<Ipv6Addr>,
    /// The hop limit it arrived with (`IPV6_HOPLIMIT`), if the kernel gave it.
    pub hop_limit: Option<u8>,
}

/// `recvmsg` one datagram into `buf` (non-blocking sockets return `WouldBlock`).
pub fn recv_v6(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvV6> {
    // SAFETY: all-zero is a valid sockaddr_in6 (plain data).
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut control = Control([0; CMSG_SPACE]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut from).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_SPACE as _;
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length (`from`,
    // `iov` over `buf`, `control`), all outliving the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut dst = None;
    let mut hop_limit = None;
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR walk its control buffer
    // within msg_controllen, and each header's data is read with read_unaligned at the
    // offset CMSG_DATA gives, for the size the header type defines.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::IPPROTO_IPV6 {
                if h.cmsg_type == libc::IPV6_PKTINFO
                    && h.cmsg_len as usize
                        >= libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize
                {
                    let info: libc::in6_pktinfo =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                } else if h.cmsg_type == libc::IPV6_HOPLIMIT
                    && h.cmsg_len as usize
                        >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
                {
                    let v: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    hop_limit = u8::try_from(v).ok();
                }
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    let src = SocketAddrV6::new(
        Ipv6Addr::from(from.sin6_addr.s6_addr),
        u16::from_be(from.sin6_port),
        from.sin6_flowinfo,
        from.sin6_scope_id,
    );
    Ok(RecvV6 {
        len: n as usize,
        src,
        dst,
        hop_limit,
    })
}

/// `sendmsg` `payload` to `dst` from source `src` out of interface `ifindex`
/// (`IPV6_PKTINFO`). Raw sockets take port 0 (or their protocol) in `dst`.
pub fn send_v6_from(
    fd: BorrowedFd<'_>,
    payload: &[u8],
    dst: SocketAddrV6,
    src: Ipv6Addr,
    ifindex: u32,
) -> io::Result<usize> {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    to.sin6_addr.s6_addr = dst.ip().octets();
    to.sin6_port = dst.port().to_be();
    to.sin6_scope_id = if dst.ip().is_unicast_link_local() || dst.ip().is_multicast() {
        ifindex
    } else {
        0
    };
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: ifindex,
    };
    send_with(
        fd,
        payload,
        (&raw const to).cast(),
        size_of::<libc::sockaddr_in6>(),
        libc::IPPROTO_IPV6,
        libc::IPV6_PKTINFO,
        &info,
    )
}

/// `sendmsg` `payload` to `dst` with source address `src` (`IP_PKTINFO`'s
/// `ipi_spec_dst`) out of interface `ifindex` (0: by route).
pub fn send_v4_from(
    fd: BorrowedFd<'_>,
    payload: &[u8],
    dst: SocketAddrV4,
    src: Ipv4Addr,
    ifindex: u32,
) -> io::Result<usize> {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    to.sin_family = libc::AF_INET as libc::sa_family_t;
    to.sin_addr.s_addr = u32::from_ne_bytes(dst.ip().octets());
    to.sin_port = dst.port().to_be();
    let info = libc::in_pktinfo {
        ipi_ifindex: ifindex as libc::c_int,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from_ne_bytes(src.octets()),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    send_with(
        fd,
        payload,
        (&raw const to).cast(),
        size_of::<libc::sockaddr_in>(),
        libc::IPPROTO_IP,
        libc::IP_PKTINFO,
        &info,
    )
}

/// `sendmsg` with one control message of type `T`.
fn send_with<T>(
    fd: BorrowedFd<'_>,
    payload: &[u8],
    to: *const libc::sockaddr,
    to_len: usize,
    level: libc::c_int,
    kind: libc::c_int,
    data: &T,
) -> io::Result<usize> {
    let mut control = Control([0; CMSG_SPACE]);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = to.cast_mut().cast();
    msg.msg_namelen = to_len as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation on a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<T>() as u32) } as usize;
    assert!(space <= CMSG_SPACE, "control message too large");
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer is aligned and `space` bytes long, enough for one header
    // and a `T` (checked above); CMSG_FIRSTHDR is then non-null and CMSG_DATA points inside
    // it; `data` is written unaligned-safe. sendmsg only reads the buffers in `msg`, which
    // (`to`, `payload` via `iov`, `control`) all outlive the call; the kernel does not
    // write through `iov_base`.
    let n = unsafe {
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<T>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<T>(), std::ptr::read(data));
        libc::sendmsg(fd.as_raw_fd(), &raw const msg, 0)
    };
    if n < 0 {
        return Err(last_err("sendmsg", "pktinfo"));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsFd;

    /// Over loopback: the source given is the one the receiver sees, and the receiver gets
    /// the destination and hop limit as control messages.
    #[test]
    fn v6_source_destination_and_hop_limit() {
        let rx = UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
        recv_info_v6(rx.as_fd()).unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let SocketAddr::V6(to) = rx.local_addr().unwrap() else {
            unreachable!("bound to an IPv6 address")
        };
        let lo = crate::iface::if_index("lo").unwrap();
        let sent = send_v6_from(tx.as_fd(), b"vrrp?", to, Ipv6Addr::LOCALHOST, lo).unwrap();
        assert_eq!(sent, 5);
        let mut buf = [0u8; 64];
        let got = recv_v6(rx.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"vrrp?");
        assert_eq!(*got.src.ip(), Ipv6Addr::LOCALHOST);
        assert_eq!(got.src.port(), tx.local_addr().unwrap().port());
        assert_eq!(got.dst, Some(Ipv6Addr::LOCALHOST));
        assert_eq!(
            got.hop_limit,
            Some(64),
            "loopback's default unicast hop limit"
        );
    }

    /// IPv4: the receiver sees the source address chosen (127.0.0.2, not the socket's
    /// 127.0.0.1 route source).
    #[test]
    fn v4_source_is_the_one_given() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("0.0.0.0:0").unwrap();
        let SocketAddr::V4(to) = rx.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let src = Ipv4Addr::new(127, 0, 0, 2);
        send_v4_from(tx.as_fd(), b"advert", to, src, 0).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"advert");
        assert_eq!(from.ip(), std::net::IpAddr::V4(src));
    }
}
