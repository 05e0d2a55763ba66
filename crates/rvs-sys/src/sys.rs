//! Small syscall helpers shared by the modules of this crate: errno → `io::Error` with
//! context, `setsockopt`/`getsockopt` over typed values, and an owned `mmap` region.
//!
//! Deliberately crate-private and minimal; it does not try to be a general libc wrapper.

use std::io;
use std::os::fd::RawFd;

/// The last OS error, with the syscall (`what`) and the interface or object it was about.
pub(crate) fn last_err(what: &str, ctx: &str) -> io::Error {
    with_context(io::Error::last_os_error(), what, ctx)
}

/// Wraps `err` so its message says which call failed and on what; the kind is kept.
pub(crate) fn with_context(err: io::Error, what: &str, ctx: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{what} ({ctx}): {err}"))
}

/// `setsockopt(fd, level, name, &val, size_of::<T>())`.
pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
    what: &str,
    ctx: &str,
) -> io::Result<()> {
    // SAFETY: `val` is a valid, initialised `T` that lives for the whole call and the
    // length passed is exactly its size; the kernel only reads from it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(last_err(what, ctx));
    }
    Ok(())
}

/// `getsockopt(fd, level, name, &mut val, size_of::<T>())` for a plain-data `T`.
pub(crate) fn getsockopt<T: Copy + Default>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    what: &str,
    ctx: &str,
) -> io::Result<T> {
    let mut val = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a writable `T` of `len` bytes that outlives the call; `T` is plain
    // data (`Copy`), so any bytes the kernel writes form a valid value.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut val).cast(), &mut len) };
    if rc < 0 {
        return Err(last_err(what, ctx));
    }
    Ok(val)
}

/// Waits with `poll(2)` until `fd` reports one of `events` or `timeout_ms` passes
/// (`-1` = forever). Retries on `EINTR`. Returns the `revents` (0 on timeout).
pub(crate) fn poll_fd(
    fd: RawFd,
    events: libc::c_short,
    timeout_ms: libc::c_int,
    ctx: &str,
) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid, writable pollfd and we pass nfds = 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc >= 0 {
            return Ok(pfd.revents);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(with_context(err, "poll", ctx));
        }
    }
}

/// Converts an optional timeout to poll's milliseconds, rounding up so a short non-zero
/// timeout does not become a busy poll.
pub(crate) fn timeout_ms(timeout: Option<std::time::Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// A shared `mmap` of a packet socket's rings, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl Mmap {
    /// Maps `len` bytes of `fd` read-write and shared (`MAP_LOCKED` is not requested).
    pub(crate) fn new(fd: RawFd, len: usize, ctx: &str) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (addr = NULL) aliases no Rust
        // object; the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_err("mmap of the packet rings", ctx));
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and nothing borrows the
        // region any more: the rings that point into it are owned by the same socket
        // and are dropped before it (field order in `PacketSocket`).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(250))), 250);
    }
}
