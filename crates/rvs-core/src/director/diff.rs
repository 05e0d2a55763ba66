//! A configuration change worked out before it is installed ([`super::Prepared::against`]).
//!
//! Installing a snapshot whole ([`super::Services::apply`]) walks every service and every
//! real server; a daemon's forwarding thread would stall for the whole walk on every reload
//! of a large configuration, even one that changes a single weight. The walk that finds what
//! differs needs only the two configurations, so it runs where the change is prepared (a
//! control thread); the engine then touches only the services named here
//! ([`super::Services::apply_diff`]), with the outcome of a whole apply — provided it still
//! runs the configuration the diff was worked out against, which the generation checks.

use crate::model::{Config, ServiceKey, VirtualServiceConfig};
use std::collections::{HashMap, HashSet};

/// What differs between a running configuration and the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Diff {
    /// The generation ([`super::Director::generation`]) of the engine that runs the
    /// configuration this was worked out against.
    pub(super) generation: u64,
    /// Services of the running configuration that the next one does not have.
    pub(super) removed: Vec<ServiceKey>,
    /// Indices into the next configuration's services of those that are new or differ (or
    /// all of them when the SYN proxy's settings, which every service's flag follows,
    /// change), in configuration order.
    pub(super) changed: Vec<usize>,
}

impl Diff {
    /// What `next` changes of `running` (at `generation`).
    pub(super) fn between(running: &Config, next: &Config, generation: u64) -> Diff {
        let every = running.synproxy != next.synproxy;
        let old: HashMap<ServiceKey, &VirtualServiceConfig> =
            running.services.iter().map(|s| (s.key, s)).collect();
        let keep: HashSet<ServiceKey> = next.services.iter().map(|s| s.key).collect();
        Diff {
            generation,
            removed: running
                .services
                .iter()
                .filter(|s| !keep.contains(&s.key))
                .map(|s| s.key)
                .collect(),
            changed: next
                .services
                .iter()
                .enumerate()
                .filter(|(_, s)| every || old.get(&s.key).is_none_or(|o| *o != *s))
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// Services removed, added or changed.
    pub(super) fn len(&self) -> usize {
        self.removed.len() + self.changed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Director, DirectorSettings, NetConfig, Prepared};
    use crate::model::{
        Config, ForwardMethod, Protocol, RealServerConfig, SchedulerKind, ServiceKey,
        VirtualServiceConfig,
    };
    use std::net::IpAddr;

    /// A small deterministic generator (xorshift).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.1.0.100".parse().unwrap(),
            port,
        }
    }

    /// A random service on `port`: some of 5 real servers in a random order, random
    /// weights and scheduler.
    fn random_service(g: &mut Gen, port: u16) -> VirtualServiceConfig {
        let mut s = VirtualServiceConfig::new(key(port));
        s.scheduler =
            [SchedulerKind::Rr, SchedulerKind::Wrr, SchedulerKind::Wlc][g.next(3) as usize];
        let mut rss: Vec<u8> = (11..16).filter(|_| g.next(3) != 0).collect();
        if g.next(2) == 0 {
            rss.reverse();
        }
        for a in rss {
            let addr: IpAddr = format!("10.2.0.{a}").parse().unwrap();
            let mut r = RealServerConfig::new(addr, port);
            r.method = ForwardMethod::Masq;
            r.weight = g.next(3) as u32;
            s.real_servers.push(r);
        }
        s
    }

    /// `c` with a few changes: services of 8 ports dropped, added, replaced or given
    /// another weight, the SYN proxy switched now and then; most services stay as they are.
    fn random_change(g: &mut Gen, c: &Config) -> Config {
        let mut next = Config::default();
        for port in 80..88u16 {
            let old = c.services.iter().find(|s| s.key == key(port));
            match (old, g.next(8)) {
                (Some(_), 0) | (None, 1..) => {}
                (Some(s), 1) if !s.real_servers.is_empty() => {
                    let mut s = s.clone();
                    let i = g.next(s.real_servers.len() as u64) as usize;
                    s.real_servers[i].weight = g.next(3) as u32;
                    next.services.push(s);
                }
                (_, 2) | (None, 0) => next.services.push(random_service(g, port)),
                (Some(s), _) => next.services.push(s.clone()),
            }
        }
        // Now and then in another order.
        if g.next(6) == 0 {
            next.services.reverse();
        }
        next.synproxy.all = c.synproxy.all != (g.next(8) == 0);
        next
    }

    fn director(c: &Config) -> Director {
        Director::new(NetConfig::default(), c, DirectorSettings::default()).unwrap()
    }

    /// Everything the engine keeps of its services that a listing, the scheduler or a
    /// connection can see: each service by id with its real servers, ids and scheduler,
    /// every real-server id's place, and the lookups.
    fn state(d: &Director) -> Vec<String> {
        let svcs = d.services();
        let mut out: Vec<String> = svcs
            .iter()
            .map(|(id, s)| {
                format!(
                    "{id:?} {:?} {:?} {:?} {:?} {}",
                    s.cfg, s.dests, s.dest_ids, s.sched, s.synproxy
                )
            })
            .collect();
        for i in 0..svcs.dest_id_bound() {
            let id = super::super::DestId(i as u32);
            out.push(format!(
                "{i} {:?} {} {:?}",
                svcs.dest(id),
                svcs.dest_is_live(id),
                svcs.dest_service(id)
            ));
        }
        for port in 80..88u16 {
            out.push(format!(
                "{port} {:?}",
                svcs.find_addr_exact(6, "10.1.0.100".parse().unwrap(), port)
            ));
        }
        out
    }

    /// Installing a change prepared against the running configuration leaves the engine as
    /// a whole apply does, over many random changes; the diff names only what changed.
    #[test]
    fn a_diff_install_is_a_whole_apply() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let first = random_change(&mut g, &Config::default());
        let (mut whole, mut diffed) = (director(&first), director(&first));
        let mut running = first;
        let mut touched = 0;
        for round in 0..1000 {
            let next = random_change(&mut g, &running);
            let report = whole.apply(&next).unwrap();
            let p = Prepared::against(next.clone(), &running, diffed.generation()).unwrap();
            touched += p.services_changed().unwrap();
            let (report2, old) = diffed.install(p);
            assert_eq!(old, running, "round {round}: the configuration replaced");
            assert_eq!(report, report2, "round {round}");
            assert_eq!(state(&whole), state(&diffed), "round {round}");
            running = next;
        }
        assert!(touched > 0);
    }

    /// One weight changed among many services: the diff names that service alone; a diff
    /// worked out against another generation is not trusted (the change is installed whole,
    /// and right).
    #[test]
    fn a_diff_names_only_the_change_and_a_stale_one_installs_whole() {
        let mut c = Config::default();
        for port in 1000..1100u16 {
            let mut s = VirtualServiceConfig::new(key(port));
            let mut r = RealServerConfig::new("10.2.0.11".parse().unwrap(), port);
            r.method = ForwardMethod::Masq;
            s.real_servers.push(r);
            c.services.push(s);
        }
        let mut d = director(&c);
        let mut next = c.clone();
        next.services[42].real_servers[0].weight = 7;
        let p = Prepared::against(next.clone(), &c, d.generation()).unwrap();
        assert_eq!(p.services_changed(), Some(1));
        let g = d.generation();
        let (report, _) = d.install(p);
        assert_eq!((report.dests_edited, report.services_added), (1, 0));
        assert_ne!(d.generation(), g);
        // Against the first configuration again, but the engine moved on: a third edit
        // prepared with the old generation installs whole and right.
        let mut third = c.clone();
        third.services[7].real_servers[0].weight = 3;
        let stale = Prepared::against(third.clone(), &c, g).unwrap();
        let (report, _) = d.install(stale);
        assert_eq!(
            report.dests_edited, 2,
            "service 42 back to 1, service 7 to 3"
        );
        let whole = director(&third);
        assert_eq!(d.config(), whole.config());
        let w = |d: &Director, i: usize| {
            let id = d
                .services()
                .find_addr_exact(6, "10.1.0.100".parse().unwrap(), 1000 + i as u16)
                .unwrap();
            d.services().get(id).unwrap().dests[0].weight
        };
        assert_eq!((w(&d, 7), w(&d, 42)), (3, 1));
    }

    /// Counters of every service and real server: (service conns, in packets) and per real
    /// server (in packets, out bytes).
    fn counts(d: &Director) -> Vec<(u64, u64)> {
        let svcs = d.services();
        let mut out = Vec::new();
        for (_, s) in svcs.iter() {
            out.push((s.stats.conns, s.stats.inpkts));
            for &id in &s.dest_ids {
                let c = svcs.dest_stats(id).unwrap();
                out.push((c.inpkts, c.outbytes));
            }
        }
        out
    }

    /// `-Z` spread over pieces (the daemon's worker zeroes a few services per round) ends
    /// where zeroing all at once does, and counting goes on after it.
    #[test]
    fn zeroing_in_pieces_is_zeroing_all() {
        let mut g = Gen(7);
        let mut c = random_change(&mut g, &Config::default());
        for _ in 0..5 {
            c = random_change(&mut g, &c);
        }
        let count_all = |d: &mut Director| {
            let ids: Vec<_> = d
                .services()
                .iter()
                .flat_map(|(_, s)| s.dest_ids.clone())
                .collect();
            for (n, id) in ids.into_iter().enumerate() {
                d.services_mut().count_packets(id, true, 3 + n as u64, 100);
                d.services_mut().count_packets(id, false, 2, 50 + n as u64);
            }
        };
        let (mut whole, mut pieces) = (director(&c), director(&c));
        count_all(&mut whole);
        count_all(&mut pieces);
        assert!(counts(&whole).iter().any(|&(a, b)| a + b > 0));
        assert!(whole.zero_counters(None));
        let mut at = Some(0);
        let mut calls = 0;
        while let Some(from) = at {
            at = pieces.zero_counters_from(from, 2);
            calls += 1;
        }
        assert!(calls > 1, "zeroed in {calls} pieces");
        assert_eq!(counts(&whole), counts(&pieces));
        assert!(counts(&pieces).iter().all(|&(a, b)| a + b == 0));
        count_all(&mut pieces);
        assert!(counts(&pieces).iter().any(|&(a, b)| a + b > 0));
    }
}
