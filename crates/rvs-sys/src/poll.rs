//! Waiting for several packet sockets at once (`poll(2)`), so a data-plane worker blocks
//! between batches instead of spinning.

use crate::packet::PacketSocket;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Block until one of `sockets` has frames to read, or `timeout` passes (or a signal
/// arrives). Returns which sockets are readable.
pub fn wait_readable(sockets: &[PacketSocket], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that outlives the call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; sockets.len()]);
        }
        return Err(io::Error::new(e.kind(), format!("poll: {e}")));
    }
    Ok(fds.iter().map(|f| f.revents & libc::POLLIN != 0).collect())
}
