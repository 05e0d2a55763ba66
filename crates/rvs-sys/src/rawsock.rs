//! Sockets that receive tunnelled packets whole, for userspace decapsulation on a real
//! server: raw IPv4 sockets of one IP protocol (4 = IPIP, 41 = IPv6-in-IPv4, 47 = GRE),
//! which deliver every matching local packet *with its outer IPv4 header*, and a UDP
//! socket on the GUE/FOU port, which delivers the UDP payload with its source and its
//! local destination address (`IP_PKTINFO`). Also a raw sender for whole IPv4 packets
//! (`IPPROTO_RAW`, header included), a `poll(2)` over several descriptors, and
//! [`TermSignals`], a `signalfd` for SIGTERM/SIGINT that can be polled with the sockets.
//!
//! A raw socket of protocol 4 receives IPIP even when the kernel has no `ipip` module
//! (observed on kernel 6.18), and the kernel then sends no ICMP "protocol unreachable"
//! since a raw socket took the packet. IPv6 raw sockets do not deliver the IPv6 header,
//! so only IPv4 outer headers are handled here. All descriptors are non-blocking and
//! close-on-exec; receive calls return `Ok(None)` when nothing is queued. Nothing here
//! parses packets: that is `rvs_core::wire::encap::decap`'s job. `TermSignals` would sit
//! better in a `signal` module of its own; it lives here because the decapsulation loop
//! is its only user so far.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys::{last_err, setsockopt, timeout_ms, with_context};

fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    proto: libc::c_int,
    ctx: &str,
) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before being owned.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        return Err(last_err("socket", ctx));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr_v4(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// `Ok(None)` for `EAGAIN`, the error with context otherwise.
fn would_block(n: isize, what: &str, ctx: &str) -> io::Result<Option<usize>> {
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock => Ok(None),
        _ => Err(with_context(err, what, ctx)),
    }
}

/// A raw IPv4 socket (`socket(AF_INET, SOCK_RAW, protocol)`), non-blocking.
#[derive(Debug)]
pub struct RawIpSocket {
    fd: OwnedFd,
    protocol: u8,
    ctx: String,
}

impl RawIpSocket {
    /// Opens a raw socket that receives every IPv4 packet of IP protocol `protocol`
    /// addressed to this host (in the calling thread's network namespace), outer header
    /// included. Protocol 255 (`IPPROTO_RAW`) makes a send-only socket; see
    /// [`RawIpSocket::sender`].
    pub fn open_v4(protocol: u8) -> io::Result<RawIpSocket> {
        let ctx = format!("AF_INET raw, protocol {protocol}");
        let fd = socket(
            libc::AF_INET,
            libc::SOCK_RAW,
            libc::c_int::from(protocol),
            &ctx,
        )?;
        Ok(RawIpSocket { fd, protocol, ctx })
    }

    /// Opens a send-only raw socket (`IPPROTO_RAW`, which implies `IP_HDRINCL`): each
    /// [`RawIpSocket::send_to`] sends a whole IPv4 packet as given (the kernel fills in the
    /// header checksum and total length, and the source and identification when zero).
    pub fn sender() -> io::Result<RawIpSocket> {
        Self::open_v4(libc::IPPROTO_RAW as u8)
    }

    /// The IP protocol this socket was opened for.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Receives one packet, from its IPv4 header on, into `buf`. Returns the packet's
    /// full length, which exceeds `buf.len()` when it was cut (`MSG_TRUNC`); `Ok(None)`
    /// when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is writable for exactly the length passed; no address wanted.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        would_block(n, "recv", &self.ctx)
    }

    /// Like [`RawIpSocket::recv`], but waits up to `timeout` (`None` = forever).
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<Option<usize>> {
        let revents = crate::sys::poll_fd(
            self.fd.as_raw_fd(),
            libc::POLLIN,
            timeout_ms(timeout),
            &self.ctx,
        )?;
        if revents == 0 {
            return Ok(None);
        }
        self.recv(buf)
    }

    /// Sends `packet` to `dst`: the payload behind an IPv4 header the kernel builds, or,
    /// on a [`RawIpSocket::sender`], the whole packet including its header.
    pub fn send_to(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let sa = sockaddr_v4(SocketAddrV4::new(dst, 0));
        // SAFETY: `packet` is readable for its length; `sa` is a valid sockaddr_in of the
        // size passed; both outlive the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(last_err("sendto", &format!("{} to {dst}", self.ctx)));
        }
        Ok(())
    }
}

impl AsFd for RawIpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for RawIpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One datagram received on a [`UdpTunnelSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram {
    /// Payload length; larger than the buffer when the datagram was cut.
    pub len: usize,
    /// The sender (outer source address and UDP source port).
    pub src: SocketAddrV4,
    /// The local address it was sent to (outer destination), from `IP_PKTINFO`.
    pub dst: Ipv4Addr,
}

/// A UDP socket bound to `0.0.0.0:port` that reports each datagram's local destination
/// address, for GUE and FOU. The kernel verifies the UDP checksum before delivery.
#[derive(Debug)]
pub struct UdpTunnelSocket {
    fd: OwnedFd,
    port: u16,
    ctx: String,
}

impl UdpTunnelSocket {
    /// Binds `0.0.0.0:port` (port 0 picks a free one) with `IP_PKTINFO` on.
    pub fn bind_v4(port: u16) -> io::Result<UdpTunnelSocket> {
        let mut ctx = format!("UDP tunnel socket on port {port}");
        let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0, &ctx)?;
        let one: libc::c_int = 1;
        setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            &one,
            "setsockopt(IP_PKTINFO)",
            &ctx,
        )?;
        let sa = sockaddr_v4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        // SAFETY: `sa` is a valid sockaddr_in of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(last_err("bind", &ctx));
        }
        let mut got: libc::sockaddr_in = sockaddr_v4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `got` is a writable sockaddr_in and `len` its size.
        let rc = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut got).cast(), &mut len) };
        if rc < 0 {
            return Err(last_err("getsockname", &ctx));
        }
        let port = u16::from_be(got.sin_port);
        ctx = format!("UDP tunnel socket on port {port}");
        Ok(UdpTunnelSocket { fd, port, ctx })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Receives one datagram's payload into `buf`; `Ok(None)` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<UdpDatagram>> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut from = sockaddr_v4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        // u64 elements: cmsg buffers must be aligned like `cmsghdr`.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is valid and every pointer is set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>() as _;
        // SAFETY: `msg` points at `iov` (→ `buf`), `from` and `control`, all writable for
        // the lengths given and alive for the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        let Some(len) = would_block(n, "recvmsg", &self.ctx)? else {
            return Ok(None);
        };
        let mut dst = Ipv4Addr::UNSPECIFIED;
        // SAFETY: `msg` was filled by recvmsg; the CMSG_* macros walk the control buffer
        // within `msg_controllen`, and an IP_PKTINFO payload is an `in_pktinfo`, read
        // unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                    let info: libc::in_pktinfo =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    dst = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some(UdpDatagram {
            len,
            src: SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)),
                u16::from_be(from.sin_port),
            ),
            dst,
        }))
    }
}

impl AsFd for UdpTunnelSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for UdpTunnelSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// SIGTERM and SIGINT as a pollable descriptor (`signalfd`). Creating it blocks both
/// signals in the calling thread — create it on the main thread *before* starting any
/// other, so that every thread inherits the mask and the signals queue on the descriptor
/// instead of killing the process. Dropping it restores the previous mask.
#[derive(Debug)]
pub struct TermSignals {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

impl TermSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread and opens a signalfd for them.
    pub fn new() -> io::Result<TermSignals> {
        // SAFETY: sigemptyset/sigaddset initialise the local sigset_t we pass; an
        // all-zero sigset_t is a valid value to start from.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above, on our own local sigset.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
        }
        // SAFETY: `set` is initialised and `old_mask` writable; only this thread's mask
        // changes.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask) };
        if rc != 0 {
            return Err(with_context(
                io::Error::from_raw_os_error(rc),
                "pthread_sigmask(SIG_BLOCK)",
                "SIGTERM, SIGINT",
            ));
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor; checked below.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let err = last_err("signalfd", "SIGTERM, SIGINT");
            // SAFETY: restores the mask saved above for this thread.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
            return Err(err);
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(TermSignals { fd, old_mask })
    }

    /// The signal number of one queued SIGTERM/SIGINT, `Ok(None)` if none is queued.
    pub fn take(&self) -> io::Result<Option<i32>> {
        // SAFETY: signalfd_siginfo is plain data; all-zero is valid.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is writable for exactly the size passed.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&raw mut info).cast(),
                size_of::<libc::signalfd_siginfo>(),
            )
        };
        Ok(would_block(n, "read", "signalfd")?.map(|_| info.ssi_signo as i32))
    }
}

impl Drop for TermSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new` for this thread (a no-op elsewhere).
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut());
        }
    }
}

impl AsFd for TermSignals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::wait_readable;

    #[test]
    fn udp_tunnel_socket_reports_source_and_local_destination() {
        let s = UdpTunnelSocket::bind_v4(0).unwrap();
        assert_ne!(s.port(), 0);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"gue?", ("127.0.0.1", s.port())).unwrap();
        let mut ready = [false];
        wait_readable(&[s.as_fd()], &mut ready, Some(Duration::from_secs(5))).unwrap();
        assert!(ready[0]);
        let mut buf = [0u8; 64];
        let d = s.recv(&mut buf).unwrap().expect("a datagram");
        assert_eq!(&buf[..d.len], b"gue?");
        assert_eq!(d.src, tx.local_addr().unwrap().to_string().parse().unwrap());
        assert_eq!(d.dst, Ipv4Addr::LOCALHOST);
        assert!(s.recv(&mut buf).unwrap().is_none());
    }
}
