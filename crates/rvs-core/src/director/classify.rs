//! The firewall-mark classifier: what `iptables -t mangle -A PREROUTING ... -j MARK` does for
//! kernel LVS, done in the data plane. Rules are tried in order; the first match gives the
//! packet's mark, which then selects a fwmark virtual service.
//!
//! [`Classifier`] indexes the rules when a configuration is applied, so a packet that
//! misses the connection table costs two ordered-map lookups plus the rules whose
//! destination is a network rather than one address, not a scan of every rule: rules for
//! one destination address and one port are found by (address, port), rules for one address
//! and a port range by address, and the rest sit in a short list. The candidates of the
//! three are merged in rule order, so the first match is iptables' first match.
//! [`classify`] is the plain scan, kept as the reference the index is tested against.
//! No hashing with random keys here: the core has no randomness of its own.

use crate::model::FwmarkRule;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Whether rule `r` matches the packet (the `iptables -p ... -s ... -d ... --dport ...`
/// test of one rule).
#[inline]
fn matches(r: &FwmarkRule, protocol: u8, src: IpAddr, dst: IpAddr, dport: u16) -> bool {
    r.protocol.is_none_or(|p| p.number() == protocol)
        && r.dst.contains(dst)
        && (r.ports.0..=r.ports.1).contains(&dport)
        && r.src.is_none_or(|s| s.contains(src))
}

/// Classify a packet by protocol, source address, destination address and destination
/// port with a scan of `rules`. Returns the mark of the first matching rule.
pub fn classify(
    rules: &[FwmarkRule],
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    dport: u16,
) -> Option<u32> {
    rules
        .iter()
        .find(|r| matches(r, protocol, src, dst, dport))
        .map(|r| r.mark)
}

/// The rules of a configuration, indexed for [`Classifier::classify`]. Built once per
/// applied configuration; lookups do not allocate.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    rules: Vec<FwmarkRule>,
    /// Rules for one destination address and one port, by (address, port); each list in
    /// rule order.
    by_dst_port: BTreeMap<(IpAddr, u16), Vec<u32>>,
    /// Rules for one destination address and a port range, by address.
    by_dst: BTreeMap<IpAddr, Vec<u32>>,
    /// Rules whose destination is a network: tried for every packet.
    wide: Vec<u32>,
}

impl Classifier {
    /// Index `rules` (in their order).
    pub fn new(rules: &[FwmarkRule]) -> Classifier {
        let mut c = Classifier {
            rules: rules.to_vec(),
            ..Classifier::default()
        };
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            let host = match r.dst.addr {
                IpAddr::V4(_) => r.dst.len >= 32,
                IpAddr::V6(_) => r.dst.len >= 128,
            };
            if !host {
                c.wide.push(i);
            } else if r.ports.0 == r.ports.1 {
                c.by_dst_port
                    .entry((r.dst.addr, r.ports.0))
                    .or_default()
                    .push(i);
            } else {
                c.by_dst.entry(r.dst.addr).or_default().push(i);
            }
        }
        c
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[FwmarkRule] {
        &self.rules
    }

    /// [`classify`] through the index: the same answer for every packet.
    pub fn classify(&self, protocol: u8, src: IpAddr, dst: IpAddr, dport: u16) -> Option<u32> {
        if self.rules.is_empty() {
            return None;
        }
        let lists: [&[u32]; 3] = [
            self.by_dst_port
                .get(&(dst, dport))
                .map_or(&[][..], Vec::as_slice),
            self.by_dst.get(&dst).map_or(&[][..], Vec::as_slice),
            &self.wide,
        ];
        // Merge the three ascending lists: the lowest-numbered matching rule wins.
        let mut at = [0usize; 3];
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (k, l) in lists.iter().enumerate() {
                if let Some(&i) = l.get(at[k])
                    && best.is_none_or(|(_, b)| i < b)
                {
                    best = Some((k, i));
                }
            }
            let (k, i) = best?;
            at[k] += 1;
            let r = &self.rules[i as usize];
            if matches(r, protocol, src, dst, dport) {
                return Some(r.mark);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Prefix, Protocol};
    use proptest::prelude::*;

    /// The scan's answer, checked equal to the index's.
    fn classify(
        rules: &[FwmarkRule],
        protocol: u8,
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
    ) -> Option<u32> {
        let scan = super::classify(rules, protocol, src, dst, dport);
        let indexed = Classifier::new(rules).classify(protocol, src, dst, dport);
        assert_eq!(scan, indexed, "index and scan differ");
        scan
    }

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

    // Small pools, so that rules and packets collide on addresses, ports and prefixes.
    const ADDRS: [&str; 6] = [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.1.1",
        "192.168.0.100",
        "2001:db8::1",
        "2001:db8::2",
    ];
    const PORTS: [u16; 5] = [0, 80, 443, 1024, 65535];

    fn addr(i: usize) -> IpAddr {
        ADDRS[i % ADDRS.len()].parse().unwrap()
    }

    fn prefix() -> impl Strategy<Value = Prefix> {
        (
            0..ADDRS.len(),
            prop::sample::select(vec![0u8, 8, 16, 24, 31, 32, 64, 127, 128]),
        )
            .prop_map(|(a, len)| Prefix { addr: addr(a), len })
    }

    fn a_rule() -> impl Strategy<Value = FwmarkRule> {
        let proto = prop::sample::select(vec![
            None,
            Some(Protocol::Tcp),
            Some(Protocol::Udp),
            Some(Protocol::Sctp),
        ]);
        let ports = prop_oneof![
            (0..PORTS.len()).prop_map(|i| (PORTS[i], PORTS[i])),
            (0..PORTS.len(), 0..PORTS.len()).prop_map(|(a, b)| (PORTS[a], PORTS[b])),
            Just((0, 65535)),
        ];
        (proto, prefix(), prop::option::of(prefix()), ports, 1..20u32).prop_map(
            |(protocol, dst, src, ports, mark)| FwmarkRule {
                protocol,
                dst,
                src,
                ports,
                mark,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The index gives the scan's first match (iptables' rule order) for every packet.
        #[test]
        fn the_index_answers_as_the_scan(
            rules in prop::collection::vec(a_rule(), 0..24),
            packets in prop::collection::vec(
                (prop::sample::select(vec![6u8, 17, 132, 1]), 0..ADDRS.len(), 0..ADDRS.len(),
                 prop_oneof![(0..PORTS.len()).prop_map(|i| PORTS[i]), any::<u16>()]),
                32,
            ),
        ) {
            let c = Classifier::new(&rules);
            for (proto, s, d, port) in packets {
                let (src, dst) = (addr(s), addr(d));
                prop_assert_eq!(
                    c.classify(proto, src, dst, port),
                    super::classify(&rules, proto, src, dst, port),
                    "{} {} {} {}", proto, src, dst, port
                );
            }
        }
    }
}
