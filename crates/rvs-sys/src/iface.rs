//! Interface look-ups: index ↔ name, MAC address and MTU.
//!
//! Every function answers for the network namespace of the *calling thread* (they use
//! `if_nametoindex` and [`crate::netlink`] dumps, never `/sys/class/net`, whose view
//! follows the sysfs mount rather than the thread's namespace). Nothing here changes an
//! interface; link configuration for the lab lives in [`crate::netns`].

use std::ffi::{CStr, CString};
use std::io;

use crate::netlink;
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

/// The hardware (MAC) address of Ethernet interface `name` (from `RTM_GETLINK`).
pub fn mac_address(name: &str) -> io::Result<[u8; 6]> {
    netlink::link(name)?.mac.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("interface {name} has no Ethernet hardware address"),
        )
    })
}

/// The MTU of interface `name` (from `RTM_GETLINK`).
pub fn mtu(name: &str) -> io::Result<u32> {
    Ok(netlink::link(name)?.mtu)
}

/// Whether interface `name` is up and running (`IFF_UP` and `IFF_RUNNING`, keepalived's
/// test for a tracked interface). An unknown one is an error.
pub fn is_up(name: &str) -> io::Result<bool> {
    Ok(netlink::link(name)?.up)
}

/// The addresses of interface `name` with their prefix lengths, IPv4 and IPv6, in the
/// order the kernel lists them. An interface without addresses gives an empty list; an
/// unknown one an error.
pub fn addresses(name: &str) -> io::Result<Vec<(std::net::IpAddr, u8)>> {
    let index = if_index(name)?;
    Ok(netlink::addresses()?
        .into_iter()
        .filter(|a| a.index == index)
        .map(|a| (a.addr, a.prefix))
        .collect())
}

/// Every address of every interface of the calling thread's namespace:
/// `(interface, address, prefix length)`.
pub fn all_addresses() -> io::Result<Vec<(String, std::net::IpAddr, u8)>> {
    Ok(entries()?
        .into_iter()
        .map(|(name, a, len, _)| (name, a, len))
        .collect())
}

/// Every address of every interface with whether its interface is up with a carrier
/// (`IFF_UP` and `IFF_RUNNING`, as [`is_up`] says): `(interface, address, up)`, from one
/// link dump and one address dump.
pub fn address_links() -> io::Result<Vec<(String, std::net::IpAddr, bool)>> {
    Ok(entries()?
        .into_iter()
        .map(|(name, a, _, up)| (name, a, up))
        .collect())
}

/// The address entries: (interface, address, prefix length, interface up and running).
fn entries() -> io::Result<Vec<(String, std::net::IpAddr, u8, bool)>> {
    let links = netlink::links()?;
    Ok(netlink::addresses()?
        .into_iter()
        .filter_map(|a| {
            let l = links.iter().find(|l| l.index == a.index)?;
            Some((l.name.clone(), a.addr, a.prefix, l.up))
        })
        .collect())
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
    fn address_links_agree_with_the_link_flags() {
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
