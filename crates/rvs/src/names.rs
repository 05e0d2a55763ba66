//! Host and service names from the system, as ipvsadm 1.31 takes them: `/etc/hosts` and
//! the resolver through `gethostbyname()` / `gethostbyaddr()`, `/etc/services` through
//! `getservbyname()` / `getservbyport()` (the C library's own lookups, so
//! `/etc/nsswitch.conf` decides where they look, exactly as for ipvsadm; wrappers in
//! [`rvs_sys::netdb`]).
//!
//! Who resolves: `rvsadm` (its command line, `-R`'s rules, and the names in `-L` / `-S`
//! without `-n`), `rvs check-config` and the daemon when they read an ipvsadm rules file
//! at start and on reload. Never the data-plane workers, and never the daemon's control
//! socket: rvsadm sends numbers.

use rvs_config::ipvsadm::Names;
use std::net::{IpAddr, Ipv4Addr};

/// The system's names (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemNames;

impl Names for SystemNames {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        // An empty host (`-t :80`) is no name; ipvsadm's gethostbyname("") finds none.
        if name.is_empty() {
            return None;
        }
        rvs_sys::netdb::host_v4(name)
    }

    fn service(&self, name: &str, proto: &str) -> Option<u16> {
        if name.is_empty() {
            return None;
        }
        rvs_sys::netdb::service_port(name, proto)
    }

    fn host_name(&self, addr: IpAddr) -> Option<String> {
        rvs_sys::netdb::host_name(addr)
    }

    fn service_name(&self, port: u16, proto: &str) -> Option<String> {
        rvs_sys::netdb::service_name(port, proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_config::ipvsadm::{addrport_name, numeric_args, parse_command_with};

    fn args(line: &str) -> Vec<String> {
        std::iter::once("rvsadm")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect()
    }

    /// The real lookups, with names every system has: `localhost` in /etc/hosts and
    /// `http` (80/tcp) in netbase's /etc/services.
    #[test]
    fn localhost_and_http_resolve_through_the_system() {
        let (r, numeric) = numeric_args(&args("-A -t localhost:http -s rr"), &SystemNames);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(numeric[1..].join(" "), "-A -t 127.0.0.1:80 -s rr");
        let (_, numeric) = numeric_args(&args("-a -t localhost:www -r localhost -m"), &SystemNames);
        assert_eq!(numeric[1..].join(" "), "-a -t 127.0.0.1:80 -r 127.0.0.1 -m");
        assert_eq!(
            addrport_name("127.0.0.1".parse().unwrap(), 80, 6, &SystemNames),
            "localhost:http"
        );
        // A service name that no /etc/services has: ipvsadm's refusal.
        let e = parse_command_with(&args("-A -t localhost:no-such-service-x"), &SystemNames)
            .unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.exit_code),
            ("illegal virtual server address[:port] specified", 2)
        );
        assert_eq!(SystemNames.host_v4(""), None);
    }
}
