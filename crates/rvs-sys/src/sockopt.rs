//! Socket options the `socket2` crate does not offer.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::sys::{getsockopt, setsockopt};

/// `SO_RCVBUFFORCE`: a receive buffer of `bytes` (the kernel doubles it for its own
/// bookkeeping, as for `SO_RCVBUF`) even above `net.core.rmem_max`. Needs `CAP_NET_ADMIN`.
pub fn force_recv_buffer(fd: BorrowedFd<'_>, bytes: u32) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &v,
        "setsockopt",
        "SO_RCVBUFFORCE",
    )
}

/// The socket's receive buffer as the kernel holds it (`SO_RCVBUF`: twice what was asked).
pub fn recv_buffer(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let v: libc::c_int = getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        "getsockopt",
        "SO_RCVBUF",
    )?;
    Ok(u32::try_from(v).unwrap_or(0))
}
