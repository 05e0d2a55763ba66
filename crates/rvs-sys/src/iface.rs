//! Interface look-ups: index ↔ name, MAC address and MTU.
//!
//! Every function answers for the network namespace of the *calling thread* (they use
//! `if_nametoindex` and ioctls on a throw-away socket, never `/sys/class/net`, whose view
//! follows the sysfs mount rather than the thread's namespace). Nothing here changes an
//! interface; link configuration for the lab lives in [`crate::netns`].

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::last_err;

fn c_name(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "interface name {name:?} must be 1..{} bytes",
                libc::IFNAMSIZ
            ),
        ));
    }
    CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} contains NUL"),
        )
    })
}

/// The index of interface `name` (`if_nametoindex`).
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = c_name(name)?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(last_err("if_nametoindex", name));
    }
    Ok(idx)
}

/// The name of the interface with index `index` (`if_indextoname`).
pub fn if_name(index: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IFNAMSIZ];
    // SAFETY: `buf` has the IFNAMSIZ bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(last_err("if_indextoname", &format!("ifindex {index}")));
    }
    // SAFETY: on success the kernel/libc wrote a NUL-terminated name into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let c = c_name(name)?;
    // SAFETY: ifreq is plain old data (a name array and a union of integers/sockaddrs);
    // all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(c.as_bytes_with_nul()) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn ioctl_socket(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before being owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_err("socket(AF_INET) for an interface ioctl", name));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl_ifreq(name: &str, request: libc::Ioctl, what: &str) -> io::Result<libc::ifreq> {
    let sock = ioctl_socket(name)?;
    let mut req = ifreq_for(name)?;
    // SAFETY: SIOCGIF* requests read the name and write into the union of the valid,
    // writable ifreq we pass; it outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut req) };
    if rc < 0 {
        return Err(last_err(what, name));
    }
    Ok(req)
}

/// The hardware (MAC) address of Ethernet interface `name` (`SIOCGIFHWADDR`).
pub fn mac_address(name: &str) -> io::Result<[u8; 6]> {
    let req = ioctl_ifreq(name, libc::SIOCGIFHWADDR, "ioctl(SIOCGIFHWADDR)")?;
    // SAFETY: after SIOCGIFHWADDR the union holds `ifru_hwaddr`.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    if sa.sa_family != libc::ARPHRD_ETHER {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "interface {name} has hardware type {} (not Ethernet)",
                sa.sa_family
            ),
        ));
    }
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// The MTU of interface `name` (`SIOCGIFMTU`).
pub fn mtu(name: &str) -> io::Result<u32> {
    let req = ioctl_ifreq(name, libc::SIOCGIFMTU, "ioctl(SIOCGIFMTU)")?;
    // SAFETY: after SIOCGIFMTU the union holds `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(mtu as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_lookups() {
        let idx = if_index("lo").expect("lo exists");
        assert_eq!(if_name(idx).unwrap(), "lo");
        assert_eq!(mtu("lo").unwrap(), 65536);
        // lo is ARPHRD_LOOPBACK, not Ethernet.
        assert!(mac_address("lo").is_err());
    }

    #[test]
    fn bad_names_are_errors_with_context() {
        let err = if_index("no-such-if0").unwrap_err();
        assert!(err.to_string().contains("no-such-if0"), "{err}");
        assert!(if_index("").is_err());
        assert!(if_index("a-name-much-too-long").is_err());
    }
}
