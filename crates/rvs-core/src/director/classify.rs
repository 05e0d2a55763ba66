//! The firewall-mark classifier: what `iptables -t mangle -A PREROUTING ... -j MARK` does for
//! kernel LVS, done in the data plane. Rules are tried in order; the first match gives the
//! packet's mark, which then selects a fwmark virtual service.
//!
//! Rules are few (a handful per fwmark service), so a linear scan is the fastest structure;
//! it runs only for packets that start a connection, never on the established path.

use crate::model::FwmarkRule;
use std::net::IpAddr;

/// Classify a packet by protocol, source address, destination address and destination
/// port. Returns the mark of the first matching rule.
pub fn classify(
    rules: &[FwmarkRule],
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    dport: u16,
) -> Option<u32> {
    rules
        .iter()
        .find(|r| {
            r.protocol.is_none_or(|p| p.number() == protocol)
                && r.dst.contains(dst)
                && (r.ports.0..=r.ports.1).contains(&dport)
                && r.src.is_none_or(|s| s.contains(src))
        })
        .map(|r| r.mark)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Prefix, Protocol};

    fn rule(
        protocol: Option<Protocol>,
        dst: &str,
        len: u8,
        ports: (u16, u16),
        mark: u32,
    ) -> FwmarkRule {
        FwmarkRule {
            protocol,
            dst: Prefix {
                addr: dst.parse().unwrap(),
                len,
            },
            src: None,
            ports,
            mark,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        // The seeds' example: ports 80 and 443 of one VIP share mark 80.
        let rules = [
            rule(Some(Protocol::Tcp), "192.168.0.100", 32, (80, 80), 80),
            rule(Some(Protocol::Tcp), "192.168.0.100", 32, (443, 443), 80),
            rule(None, "192.168.0.0", 24, (0, 65535), 7),
        ];
        let vip: IpAddr = "192.168.0.100".parse().unwrap();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(classify(&rules, 6, client, vip, 80), Some(80));
        assert_eq!(classify(&rules, 6, client, vip, 443), Some(80));
        assert_eq!(
            classify(&rules, 17, client, vip, 443),
            Some(7),
            "UDP falls to the catch-all"
        );
        assert_eq!(classify(&rules, 6, client, vip, 8080), Some(7));
        assert_eq!(
            classify(&rules, 6, client, "10.0.0.1".parse().unwrap(), 80),
            None
        );
    }

    #[test]
    fn port_ranges_are_inclusive() {
        let rules = [rule(Some(Protocol::Tcp), "10.0.0.1", 32, (1024, 2048), 3)];
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(classify(&rules, 6, client, a, 1023), None);
        assert_eq!(classify(&rules, 6, client, a, 1024), Some(3));
        assert_eq!(classify(&rules, 6, client, a, 2048), Some(3));
        assert_eq!(classify(&rules, 6, client, a, 2049), None);
    }

    #[test]
    fn a_source_prefix_limits_the_rule_to_those_clients() {
        // iptables `-s 198.51.100.0/24 -d 10.0.0.1 --dport 80 -j MARK --set-mark 5`.
        let mut r = rule(Some(Protocol::Tcp), "10.0.0.1", 32, (80, 80), 5);
        r.src = Some(Prefix {
            addr: "198.51.100.0".parse().unwrap(),
            len: 24,
        });
        let rules = [r, rule(Some(Protocol::Tcp), "10.0.0.1", 32, (80, 80), 6)];
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let inside: IpAddr = "198.51.100.200".parse().unwrap();
        let outside: IpAddr = "198.51.101.1".parse().unwrap();
        assert_eq!(classify(&rules, 6, inside, a, 80), Some(5));
        assert_eq!(classify(&rules, 6, outside, a, 80), Some(6));
    }
}
