//! TUN devices: a layer-3 virtual interface whose "wire" is a file descriptor. A packet
//! written to the descriptor is received by the stack as if it had arrived on the
//! interface; a packet the stack routes to the interface can be read from it.
//!
//! The real-server companion uses one to hand decapsulated tunnel packets to the local
//! stack (the kernel here has no `ipip` module). Devices are opened with
//! `IFF_TUN | IFF_NO_PI` (no packet-information prefix: the kernel tells IPv4 from IPv6 by
//! the version nibble) and are not persistent: the interface disappears when the [`Tun`]
//! is dropped. Everything happens in the network namespace of the *calling thread*.
//! Addresses, routes and sysctls are not this module's business; bringing the link up is,
//! because a TUN device is useless down.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{last_err, poll_fd, timeout_ms};

/// An open, non-persistent TUN device (`IFF_TUN | IFF_NO_PI`), non-blocking.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
}

fn ifreq_named(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['\0', '/', ' ']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "interface name {name:?} must be 1..{} bytes without NUL, '/' or spaces",
                libc::IFNAMSIZ
            ),
        ));
    }
    // SAFETY: ifreq is plain old data (a name array and a union of integers/sockaddrs);
    // all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

impl Tun {
    /// Creates TUN device `name` (or attaches to an existing non-persistent one of that
    /// name owned by nobody) in the calling thread's network namespace. The link is
    /// created down; see [`Tun::set_up`].
    pub fn create(name: &str) -> io::Result<Tun> {
        let mut req = ifreq_named(name)?;
        // SAFETY: the path is a NUL-terminated literal; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            return Err(last_err("open", "/dev/net/tun"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads the name and flags of the valid ifreq we pass and writes
        // the chosen name back into it; `req` outlives the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(last_err("ioctl(TUNSETIFF)", name));
        }
        // SAFETY: on success the kernel wrote a NUL-terminated name (< IFNAMSIZ) into
        // `ifr_name`.
        let got = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) };
        Ok(Tun {
            fd,
            name: got.to_string_lossy().into_owned(),
        })
    }

    /// The interface name the kernel gave the device.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the link up (`RTM_NEWLINK` with `IFF_UP`).
    pub fn set_up(&self) -> io::Result<()> {
        set_link_up(&self.name)
    }

    /// Writes one IP packet (no prefix) to the device: the stack receives it on this
    /// interface. Returns `WouldBlock` if the device's queue is full.
    pub fn write(&self, packet: &[u8]) -> io::Result<()> {
        // SAFETY: `packet` is a readable slice of exactly the length passed.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            return Err(last_err("write to TUN device", &self.name));
        }
        if n as usize != packet.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short write to TUN device {}: {n} of {}",
                    self.name,
                    packet.len()
                ),
            ));
        }
        Ok(())
    }

    /// Reads one packet the stack sent out of this interface into `buf`; `Ok(None)` when
    /// none is queued. A packet longer than `buf` is cut to `buf.len()`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is a writable slice of exactly the length passed.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(crate::sys::with_context(
                err,
                "read from TUN device",
                &self.name,
            ));
        }
        Ok(Some(n as usize))
    }

    /// Like [`Tun::read`], but waits up to `timeout` (`None` = forever) for a packet.
    pub fn read_timeout(
        &self,
        buf: &mut [u8],
        timeout: Option<std::time::Duration>,
    ) -> io::Result<Option<usize>> {
        let revents = poll_fd(
            self.fd.as_raw_fd(),
            libc::POLLIN,
            timeout_ms(timeout),
            &self.name,
        )?;
        if revents == 0 {
            return Ok(None);
        }
        self.read(buf)
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sets interface `name` up in the calling thread's network namespace (over netlink, see
/// [`crate::netlink::set_link_up`]). Doing it for a link already up is harmless.
pub fn set_link_up(name: &str) -> io::Result<()> {
    crate::netlink::set_link_up(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        assert!(Tun::create("").is_err());
        assert!(Tun::create("much-too-long-name0").is_err());
        assert!(Tun::create("a/b").is_err());
    }
}
