//! Waiting for several sockets at once (`poll(2)`), so a data-plane worker or the
//! real-server decapsulator blocks between batches instead of spinning.

use crate::sys::{timeout_ms, with_context};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Most descriptors [`wait_readable`] takes at once.
pub const MAX_WAIT_FDS: usize = 8;

/// Waits with `poll(2)` until one of `fds` is readable (or has an error or hang-up to
/// report), or `timeout` passes (`None` = forever). Sets `ready[i]` for each such `fds[i]`
/// and returns how many there are (0 on timeout). `EINTR` is retried. Allocates nothing.
pub fn wait_readable(
    fds: &[BorrowedFd<'_>],
    ready: &mut [bool],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    if fds.len() > MAX_WAIT_FDS || ready.len() < fds.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "wait_readable: {} descriptors (at most {MAX_WAIT_FDS}), {} ready slots",
                fds.len(),
                ready.len()
            ),
        ));
    }
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_WAIT_FDS];
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = fd.as_raw_fd();
        p.events = libc::POLLIN;
    }
    let nfds = fds.len();
    loop {
        // SAFETY: `pfds[..nfds]` are valid, writable pollfds.
        let rc =
            unsafe { libc::poll(pfds.as_mut_ptr(), nfds as libc::nfds_t, timeout_ms(timeout)) };
        if rc >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(with_context(err, "poll", "sockets"));
        }
    }
    let mut n = 0;
    for (r, p) in ready.iter_mut().zip(&pfds[..nfds]) {
        *r = p.revents != 0;
        n += usize::from(*r);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn wait_readable_refuses_too_many_fds_and_times_out() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fds = [s.as_fd(); MAX_WAIT_FDS + 1];
        let mut ready = [false; MAX_WAIT_FDS + 1];
        assert!(wait_readable(&fds, &mut ready, Some(Duration::ZERO)).is_err());
        assert_eq!(
            wait_readable(&fds[..1], &mut ready, Some(Duration::ZERO)).unwrap(),
            0
        );
        s.send_to(b"x", s.local_addr().unwrap()).unwrap();
        assert_eq!(
            wait_readable(&fds[..1], &mut ready, Some(Duration::from_secs(5))).unwrap(),
            1
        );
        assert!(ready[0]);
    }
}
