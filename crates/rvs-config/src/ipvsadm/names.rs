//! Host and service names, as ipvsadm 1.31 takes and prints them.
//!
//! ipvsadm reads `host[:port]` numeric first, then through the C library
//! (`ipvsadm.c` `parse_service()`: `inet_pton(AF_INET6)`, `inet_aton()`, then
//! `host_to_addr()` = `gethostbyname()`, IPv4 only, the first address; the port
//! `string_to_number()`, then `service_to_port()` = `getservbyname(name, "tcp" | "udp" |
//! "sctp")` by the service's protocol). Without `-n` it prints names the same way back
//! (`addrport_to_anyname()`: `addr_to_host()` = `gethostbyaddr()`'s `h_name`, else the
//! number; `port_to_service()` = `getservbyport()`'s `s_name`, else the number).
//!
//! The parsers here never touch the system: they ask a [`Names`], which the caller gives.
//! [`NoNames`] knows no name at all (everything stays numeric); the `rvs` crate has the
//! implementation that asks the system (`/etc/hosts`, the resolver, `/etc/services`).
//! ipvsadm never resolves a name to an IPv6 address (`gethostbyname()` answers IPv4 and
//! `host_to_addr()` refuses anything else), so there is no IPv6 lookup here either.

use std::net::{IpAddr, Ipv4Addr};

use super::libc::inet_ntop6;

/// The name lookups ipvsadm makes. `proto` is `"tcp"`, `"udp"` or `"sctp"`: ipvsadm looks
/// services up only for those protocols ([`service_proto`]).
pub trait Names {
    /// `gethostbyname(name)` as `host_to_addr()` takes it: the first IPv4 address.
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// `getservbyname(name, proto)`: the port.
    fn service(&self, name: &str, proto: &str) -> Option<u16>;
    /// `gethostbyaddr(addr)`: the host's official name (`h_name`).
    fn host_name(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyport(port, proto)`: the service's official name (`s_name`).
    fn service_name(&self, port: u16, proto: &str) -> Option<String>;
}

/// No names at all: what `-n` prints, and what contexts that must stay numeric take
/// (the daemon reading a command line its client already resolved).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl Names for NoNames {
    fn host_v4(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn service(&self, _: &str, _: &str) -> Option<u16> {
        None
    }
    fn host_name(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service_name(&self, _: u16, _: &str) -> Option<String> {
        None
    }
}

/// The protocol name `service_to_port()` / `port_to_service()` pass for an IP protocol
/// number: `tcp`, `udp`, `sctp`; other protocols have no service names.
pub fn service_proto(proto: u8) -> Option<&'static str> {
    match proto {
        6 => Some("tcp"),
        17 => Some("udp"),
        132 => Some("sctp"),
        _ => None,
    }
}

/// `addrport_to_anyname()` without `FMT_NUMERIC`: `host:service`, `[host]:service` for
/// IPv6, each the number when `names` has no name for it (with [`NoNames`] this is the
/// `-n` form). Like ipvsadm's 60-byte buffer, the result is cut to 59 bytes.
pub fn addrport_name(addr: IpAddr, port: u16, proto: u8, names: &dyn Names) -> String {
    // addr_to_anyname(): the name, else inet_ntop().
    let host = names.host_name(addr).unwrap_or_else(|| match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => inet_ntop6(&a),
    });
    // port_to_anyname(): the name, else "%u".
    let serv = service_proto(proto)
        .and_then(|p| names.service_name(port, p))
        .unwrap_or_else(|| port.to_string());
    let mut s = match addr {
        IpAddr::V4(_) => format!("{host}:{serv}"),
        IpAddr::V6(_) => format!("[{host}]:{serv}"),
    };
    cut(&mut s, 59);
    s
}

/// Truncate to at most `max` bytes (on a character boundary: names are ASCII in
/// practice, and a cut never splits a character).
pub(crate) fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A test double: fixed tables of host and service names (for this crate's tests and
/// callers' tests; the first host with an address is the one `gethostbyaddr()` finds).
#[derive(Debug, Clone, Default)]
pub struct FixedNames {
    /// `(name, address)`: forward lookups take IPv4 addresses, reverse lookups any.
    pub hosts: Vec<(String, IpAddr)>,
    /// `(name, port, proto)`.
    pub services: Vec<(String, u16, String)>,
}

impl FixedNames {
    /// Tables from string pairs: `hosts` as `("web01", "10.0.0.1")`, `services` as
    /// `("http", 80, "tcp")`. Panics on an address that does not parse (a test's typo).
    pub fn new(hosts: &[(&str, &str)], services: &[(&str, u16, &str)]) -> Self {
        FixedNames {
            hosts: hosts
                .iter()
                .map(|(n, a)| (n.to_string(), a.parse().expect("an IP address")))
                .collect(),
            services: services
                .iter()
                .map(|(n, p, pr)| (n.to_string(), *p, pr.to_string()))
                .collect(),
        }
    }
}

impl Names for FixedNames {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|(n, a)| match a {
            IpAddr::V4(a) if n == name => Some(*a),
            _ => None,
        })
    }
    fn service(&self, name: &str, proto: &str) -> Option<u16> {
        self.services
            .iter()
            .find(|(n, _, p)| n == name && p == proto)
            .map(|s| s.1)
    }
    fn host_name(&self, addr: IpAddr) -> Option<String> {
        self.hosts
            .iter()
            .find(|(_, a)| *a == addr)
            .map(|(n, _)| n.clone())
    }
    fn service_name(&self, port: u16, proto: &str) -> Option<String> {
        self.services
            .iter()
            .find(|(_, p, pr)| *p == port && pr == proto)
            .map(|s| s.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addrport_names_fall_back_to_numbers() {
        let n = FixedNames::new(
            &[("web01", "10.0.0.1"), ("web6", "2001:db8::1")],
            &[("http", 80, "tcp"), ("domain", 53, "udp")],
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(addrport_name(ip("10.0.0.1"), 80, 6, &n), "web01:http");
        // By protocol: no udp entry for 80, no tcp entry for 53.
        assert_eq!(addrport_name(ip("10.0.0.1"), 80, 17, &n), "web01:80");
        assert_eq!(addrport_name(ip("10.0.0.2"), 53, 17, &n), "10.0.0.2:domain");
        assert_eq!(addrport_name(ip("2001:db8::1"), 80, 6, &n), "[web6]:http");
        assert_eq!(addrport_name(ip("::1.2.3.4"), 9, 6, &n), "[::1.2.3.4]:9");
        // Protocol 0 (an `IP` connection entry): no service names.
        assert_eq!(addrport_name(ip("10.0.0.1"), 80, 0, &n), "web01:80");
        assert_eq!(
            addrport_name(ip("10.0.0.1"), 80, 6, &NoNames),
            "10.0.0.1:80"
        );
    }

    #[test]
    fn addrport_is_cut_to_59_bytes_as_ipvsadm_buffer() {
        let long = "a".repeat(70);
        let n = FixedNames::new(&[(&long, "10.0.0.1")], &[]);
        let s = addrport_name("10.0.0.1".parse().unwrap(), 80, 6, &n);
        assert_eq!(s, "a".repeat(59));
    }
}
