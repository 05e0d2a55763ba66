//! Locating [`Config::validate`]'s errors, shared by the parsers that build a [`Config`].
//!
//! `validate` reports errors in model terms (a service key, a weight, a timeout) with no
//! source position. [`locate`] maps each error to the part of the model it blames — a
//! service's key or port, a real server's address or weight, a firewall-mark rule — by one
//! rule: the n-th error of a kind blames the n-th matching place, in configuration order.
//! Each parser then maps a [`Target`] to its own span and words `expected` for its format.

use std::collections::HashMap;

use rvs_core::model::{Config, ConfigError, ForwardMethod, SchedulerKind, ServiceKey};

/// The part of a virtual service an error blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServicePart {
    /// The service's key (a repeated definition).
    Key,
    /// The firewall mark of a fwmark service.
    Fwmark,
    /// The port of an address service.
    Port,
    /// One-packet scheduling.
    OnePacket,
    /// The persistence timeout.
    PersistenceTimeout,
    /// The persistence prefix (netmask, granularity).
    PersistencePrefix,
    /// The mh table size (or the scheduler where the format has no such setting).
    MhTableSize,
}

/// The part of a real server an error blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RealServerPart {
    /// Its address.
    Addr,
    /// Its weight.
    Weight,
    /// Its connection thresholds.
    Thresholds,
    /// Its forwarding method.
    Method,
}

/// Where in the model an error comes from. Indices are into `Config::services`,
/// `VirtualServiceConfig::real_servers` and `Config::fwmark_rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A part of `services[svc]`.
    Service { svc: usize, part: ServicePart },
    /// A part of `services[svc].real_servers[rs]`.
    RealServer {
        svc: usize,
        rs: usize,
        part: RealServerPart,
    },
    /// `fwmark_rules[i]`.
    FwmarkRule(usize),
    /// No matching place was found.
    Unplaced,
}

/// One located error.
pub(crate) struct Located<'a> {
    /// The error as `validate` gave it.
    pub(crate) error: &'a ConfigError,
    /// The place it blames.
    pub(crate) target: Target,
    /// For a repeated service or real server: its first definition.
    pub(crate) first: Option<Target>,
    /// The message to show.
    pub(crate) message: String,
    /// What would be accepted, in format-neutral words; a parser may word it its own way.
    pub(crate) expected: &'static str,
}

/// Map each of `validate`'s errors (`errs`, for `config`) to the place it blames: the n-th
/// error of a kind blames the n-th matching place, in configuration order (or the first
/// such place when there are fewer places than errors).
pub(crate) fn locate<'a>(config: &Config, errs: &'a [ConfigError]) -> Vec<Located<'a>> {
    use RealServerPart as R;
    use ServicePart as S;
    let svcs = || config.services.iter().enumerate();
    let servers = || {
        svcs().flat_map(|(i, s)| {
            s.real_servers
                .iter()
                .enumerate()
                .map(move |(j, r)| (i, s, j, r))
        })
    };
    let service = |part| move |(svc, _)| Target::Service { svc, part };
    let server = |part| move |(svc, _, rs, _)| Target::RealServer { svc, rs, part };
    // The places of one real server (a service's key, an address and port), blaming `part`.
    let server_at = |key: &ServiceKey, addr: &std::net::IpAddr, port: u16, part| {
        servers()
            .filter(|(_, s, _, r)| s.key == *key && r.addr == *addr && r.port == port)
            .map(server(part))
            .collect::<Vec<_>>()
    };
    // `ConfigError` is not `Hash`; its `Debug` text identifies it as well.
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(errs.len());
    for e in errs {
        let n = count.entry(format!("{e:?}")).or_insert(0);
        let nth = *n;
        *n += 1;
        let mut message = e.to_string();
        let (places, expected): (Vec<Target>, &str) = match e {
            ConfigError::DuplicateService(k) => {
                message = format!("virtual service {} is defined twice", describe(k));
                (
                    svcs()
                        .filter(|(_, s)| s.key == *k)
                        .map(service(S::Key))
                        .collect(),
                    "one service per protocol, address and port (or firewall mark)",
                )
            }
            ConfigError::DuplicateRealServer {
                service: key,
                addr,
                port,
            } => (
                server_at(key, addr, *port, R::Addr),
                "each real server address and port once per service",
            ),
            ConfigError::WeightOutOfRange(w) => (
                servers()
                    .filter(|(_, _, _, r)| r.weight == *w)
                    .map(server(R::Weight))
                    .collect(),
                "a weight in 0..=65535",
            ),
            ConfigError::ThresholdOrder { upper, lower } => (
                servers()
                    .filter(|(_, _, _, r)| r.u_threshold == *upper && r.l_threshold == *lower)
                    .map(server(R::Thresholds))
                    .collect(),
                "ordered thresholds",
            ),
            ConfigError::ZeroPortNonPersistent(k) => {
                message = "port 0 (all ports) needs a persistent service".to_string();
                (
                    svcs()
                        .filter(|(_, s)| s.key == *k)
                        .map(service(S::Port))
                        .collect(),
                    "a non-zero port, or persistence",
                )
            }
            ConfigError::OnePacketTcp(k) => (
                svcs()
                    .filter(|(_, s)| s.key == *k)
                    .map(service(S::OnePacket))
                    .collect(),
                "a UDP service, or no one-packet scheduling",
            ),
            ConfigError::PersistenceTimeout(t) => (
                svcs()
                    .filter(|(_, s)| s.persistence.is_some_and(|p| p.timeout == *t))
                    .map(service(S::PersistenceTimeout))
                    .collect(),
                "seconds in 1..=2678400",
            ),
            ConfigError::PersistencePrefix(p) => (
                svcs()
                    .filter(|(_, s)| s.persistence.is_some_and(|x| x.prefix == *p))
                    .map(service(S::PersistencePrefix))
                    .collect(),
                "a prefix length of the service's address family",
            ),
            ConfigError::ZeroFwmark => (
                svcs()
                    .filter(|(_, s)| matches!(s.key, ServiceKey::Fwmark { mark: 0, .. }))
                    .map(service(S::Fwmark))
                    .chain(
                        config
                            .fwmark_rules
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| r.mark == 0)
                            .map(|(i, _)| Target::FwmarkRule(i)),
                    )
                    .collect(),
                "a non-zero firewall mark",
            ),
            ConfigError::MhTableSize(m) => (
                svcs()
                    .filter(|(_, s)| s.scheduler == SchedulerKind::Mh && s.mh_table_size == *m)
                    .map(service(S::MhTableSize))
                    .collect(),
                "a prime table size",
            ),
            ConfigError::FamilyMismatch { service: key, addr } => (
                servers()
                    .filter(|(_, s, _, r)| s.key == *key && r.addr == *addr)
                    .map(server(R::Addr))
                    .collect(),
                "an address of the service's family (only tunnelling may cross)",
            ),
            ConfigError::NoLocalPool(addr) => (
                servers()
                    .filter(|(_, _, _, r)| r.addr == *addr && r.method == ForwardMethod::FullNat)
                    .map(server(R::Method))
                    .collect(),
                "a FullNAT local address pool of the real server's family",
            ),
            ConfigError::SynProxyMethod {
                service: key,
                addr,
                port,
            } => (
                server_at(key, addr, *port, R::Method),
                "NAT or FullNAT real servers, or no SYN proxy on this service",
            ),
        };
        // A duplicate blames its repeats, not the first definition.
        let (first, places) = match e {
            ConfigError::DuplicateService(_) | ConfigError::DuplicateRealServer { .. } => {
                (places.first().copied(), places.get(1..).unwrap_or_default())
            }
            _ => (None, &places[..]),
        };
        let target = places
            .get(nth)
            .or(places.first())
            .copied()
            .unwrap_or(Target::Unplaced);
        out.push(Located {
            error: e,
            target,
            first,
            message,
            expected,
        });
    }
    out
}

/// A service key as messages show it: `TCP 10.0.0.1:80`, `FWM 5`.
pub(crate) fn describe(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{protocol} {}", rvs_core::model::sock(*addr, *port)),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

#[cfg(test)]
mod tests {
    use rvs_core::model::{Family, FwmarkRule, Prefix, Protocol, VirtualServiceConfig};

    use super::*;

    #[test]
    fn nth_error_blames_nth_place() {
        let web = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let zero = ServiceKey::Fwmark {
            mark: 0,
            family: Family::V4,
        };
        let config = Config {
            services: [web, zero, web, web]
                .map(VirtualServiceConfig::new)
                .to_vec(),
            fwmark_rules: vec![FwmarkRule {
                protocol: None,
                dst: Prefix {
                    addr: "10.0.0.0".parse().unwrap(),
                    len: 8,
                },
                src: None,
                ports: (0, 65_535),
                mark: 0,
            }],
            ..Config::default()
        };
        let errs = config.validate().unwrap_err();
        let got: Vec<_> = locate(&config, &errs)
            .into_iter()
            .map(|l| (l.target, l.first))
            .collect();
        let key = |svc| Target::Service {
            svc,
            part: ServicePart::Key,
        };
        let fwmark = Target::Service {
            svc: 1,
            part: ServicePart::Fwmark,
        };
        assert_eq!(
            got,
            [
                (fwmark, None),
                (key(2), Some(key(0))),
                (key(3), Some(key(0))),
                (Target::FwmarkRule(0), None),
            ]
        );
    }
}
