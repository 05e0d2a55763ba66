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

/// Whether interface `name` is up and running (`SIOCGIFFLAGS`: `IFF_UP` and
/// `IFF_RUNNING`, keepalived's test for a tracked interface). An unknown one is an error.
pub fn is_up(name: &str) -> io::Result<bool> {
    let req = ioctl_ifreq(name, libc::SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)")?;
    // SAFETY: after SIOCGIFFLAGS the union holds `ifru_flags`.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    Ok(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
}

/// The addresses of interface `name` with their prefix lengths (`getifaddrs`), IPv4 and
/// IPv6, in the order the kernel lists them. An interface without addresses gives an empty
/// list; an unknown one an error.
pub fn addresses(name: &str) -> io::Result<Vec<(std::net::IpAddr, u8)>> {
    if_index(name)?;
    Ok(all_addresses()?
        .into_iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, a, l)| (a, l))
        .collect())
}

/// Every address of every interface of the calling thread's namespace:
/// `(interface, address, prefix length)` (`getifaddrs`).
pub fn all_addresses() -> io::Result<Vec<(String, std::net::IpAddr, u8)>> {
    Ok(entries()?
        .into_iter()
        .map(|(name, a, len, _)| (name, a, len))
        .collect())
}

/// Every address of every interface with whether its interface is up with a carrier
/// (`IFF_UP` and `IFF_RUNNING`, as [`is_up`] says): `(interface, address, up)`, from one
/// `getifaddrs` call (its `ifa_flags` are the interface's flags), no `ioctl` per interface.
pub fn address_links() -> io::Result<Vec<(String, std::net::IpAddr, bool)>> {
    let up = (libc::IFF_UP | libc::IFF_RUNNING) as u32;
    Ok(entries()?
        .into_iter()
        .map(|(name, a, _, flags)| (name, a, flags & up == up))
        .collect())
}

/// `getifaddrs`' address entries: (interface, address, prefix length, interface flags).
fn entries() -> io::Result<Vec<(String, std::net::IpAddr, u8, u32)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(last_err("getifaddrs", "all interfaces"));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the family it names;
        // ifa_netmask, when non-null, at one of the same family.
        let (addr, mask) = unsafe {
            (
                sockaddr_ip(ifa.ifa_addr),
                if ifa.ifa_netmask.is_null() {
                    None
                } else {
                    sockaddr_ip(ifa.ifa_netmask)
                },
            )
        };
        if let Some(a) = addr {
            let len = match mask {
                Some(std::net::IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
                Some(std::net::IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
                None if a.is_ipv4() => 32,
                None => 128,
            };
            out.push((name, a, len, ifa.ifa_flags));
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The IP address in a `sockaddr_in` / `sockaddr_in6`.
///
/// # Safety
/// `sa` must point at a valid sockaddr whose `sa_family` tells its real size.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<std::net::IpAddr> {
    // SAFETY: the caller guarantees `sa` is valid; the family decides the cast.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    u32::from_be(sin.sin_addr.s_addr),
                )))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                    sin6.sin6_addr.s6_addr,
                )))
            }
            _ => None,
        }
    }
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
        assert!(is_up("lo").unwrap());
        assert!(is_up("no-such-if0").is_err());
    }

    #[test]
    fn loopback_addresses() {
        let a = addresses("lo").expect("lo has addresses");
        assert!(a.contains(&("127.0.0.1".parse().unwrap(), 8)), "{a:?}");
        assert!(addresses("no-such-if0").is_err());
    }

    #[test]
    fn address_links_agree_with_the_ioctl() {
        let links = address_links().unwrap();
        assert!(
            links
                .iter()
                .any(|(n, a, up)| n == "lo" && a.is_loopback() && *up)
        );
        for (name, _, up) in &links {
            assert_eq!(*up, is_up(name).unwrap(), "{name}");
        }
    }

    #[test]
    fn bad_names_are_errors_with_context() {
        let err = if_index("no-such-if0").unwrap_err();
        assert!(err.to_string().contains("no-such-if0"), "{err}");
        assert!(if_index("").is_err());
        assert!(if_index("a-name-much-too-long").is_err());
    }
}
