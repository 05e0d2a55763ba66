//! Health checks that travel the forwarding path of direct-routing and tunnelling real
//! servers, proving that a real server answers for the VIP and not only on its own address.
//!
//! The daemon's check socket connects to VIP:port in the director's own kernel; policy
//! routing sends those packets into a TUN device the daemon reads; the daemon knows from the
//! check's source port which (virtual service, real server) a packet is for and hands it to
//! [`Director::forward_probe`], which sends it the way the real server's forwarding method
//! sends client packets: direct routing rewrites the Ethernet header to the real server's MAC
//! on the port of its link (resolving the neighbour and parking the frame meanwhile), and
//! tunnelling encapsulates it as the real server's tunnel kind says (IPIP, GRE or GUE), from
//! the director's address on that link. The real server answers from the VIP straight to the
//! director's address, as DR and TUN replies go straight to clients, so the kernel's socket
//! gets its reply without the engine.
//!
//! The same pieces as forwarded traffic do the work (`Core::emit_to` and its parking,
//! `Core::tunnel_egress`, `encapsulate_frame`); what differs is deliberate: no connection
//! entry is created, nothing is scheduled, the service and real-server counters are left
//! alone (a check is not client traffic: `ipvsadm --stats` must not move with it), and a
//! packet too big for the tunnel is dropped without ICMP "fragmentation needed", which would
//! be addressed to the director itself (give the TUN device [`probe_mtu`] instead).
//!
//! Checksums: a TUN device opened without `IFF_VNET_HDR` and without `TUNSETOFFLOAD` does not
//! offer checksum offload to the stack (the kernel's `tun_net_fix_features()` masks it until
//! `TUNSETOFFLOAD`), so the kernel completes every checksum in software before the daemon reads
//! the packet: the daemon passes frames as [`CsumStatus::Complete`](crate::wire::CsumStatus),
//! the default of a new [`Frame`]. A frame marked partial anyway is handled as forwarded
//! traffic is: completed before it is parked or tunnelled (GUE's remote checksum offload
//! excepted), kept partial for direct routing only when the I/O layer offloads it.

use super::{
    Core, Director, DropReason, Verdict, encapsulate_frame, net::NetConfig, tunnel_overhead,
};
use crate::model::{Config, Family, ForwardMethod, ServiceKey};
use crate::time::Instant;
use crate::wire::{self, Frame, L3Kind, Parsed};
use std::net::IpAddr;

impl Director {
    /// Send a locally generated packet to real server `rs` (address, port) of `service` by
    /// that real server's forwarding method: direct routing (the Ethernet header rewritten to
    /// the real server's MAC on the port whose link it is on, the neighbour resolved and the
    /// frame parked meanwhile, as for forwarded traffic) or tunnelling (encapsulated as the
    /// real server's tunnel kind says, the outer source being the director's address on that
    /// link). `frame` holds an Ethernet header (contents unspecified, ethertype set) followed
    /// by the IP packet, with headroom for encapsulation; its checksums are taken to be
    /// complete unless its [`CsumStatus`](crate::wire::CsumStatus) says otherwise.
    ///
    /// Refused, counted by reason: a service that is not running ([`DropReason::NoService`]),
    /// a real server not in it ([`DropReason::NoDest`]; a real server the health checker took
    /// out of the configuration is probed with [`Director::forward_probe_with`]), a NAT or
    /// FullNAT real server ([`DropReason::ProbeMethod`]), and a packet the service would not
    /// take (another VIP, protocol or port, or for a fwmark service a packet the fwmark rules
    /// do not give its mark: [`DropReason::NoService`]). No connection entry is created and
    /// nothing is scheduled.
    ///
    /// Returns [`Verdict::Transmit`] (send the frame on that port), [`Verdict::Consumed`]
    /// (parked until the neighbour answers: see [`Director::poll_transmit`]) or
    /// [`Verdict::Drop`].
    pub fn forward_probe(
        &mut self,
        now: Instant,
        service: &ServiceKey,
        rs: (IpAddr, u16),
        frame: &mut Frame<'_>,
    ) -> Verdict {
        let c = &mut self.core;
        match c.probe_method(service, rs) {
            Ok(method) => c.send_probe(now, service, rs.0, method, frame),
            Err(r) => c.drop(r),
        }
    }

    /// [`Director::forward_probe`] for a real server given with its forwarding method rather
    /// than looked up in the running configuration: for real servers the health checker has
    /// removed from the configuration (keepalived's default on failure), which must still be
    /// probed to come back. `service` is only used to check that the packet is one the
    /// service would take; it need not be running.
    pub fn forward_probe_with(
        &mut self,
        now: Instant,
        service: &ServiceKey,
        rs: IpAddr,
        method: ForwardMethod,
        frame: &mut Frame<'_>,
    ) -> Verdict {
        self.core.send_probe(now, service, rs, method, frame)
    }

    /// [`probe_mtu`] for the running network view and configuration.
    pub fn probe_mtu(&self) -> Option<u16> {
        probe_mtu(&self.core.net, &self.core.config)
    }
}

/// The largest IP packet a probe can carry to any real server of `config`: the smallest MTU
/// of the director's ports, less the largest tunnel overhead among the tunnelling real
/// servers. The daemon gives its probe TUN device this MTU, so the kernel's check sockets
/// never build a packet the engine has to refuse (a probe that does not fit is dropped as
/// [`DropReason::TooBig`], without ICMP). Pass the configuration before the health checker
/// removed anything. `None` when the director has no port.
pub fn probe_mtu(net: &NetConfig, config: &Config) -> Option<u16> {
    let link = net.ports.iter().map(|p| p.mtu).min()?;
    let overhead = config
        .services
        .iter()
        .flat_map(|s| &s.real_servers)
        .filter_map(|r| match r.method {
            ForwardMethod::Tunnel { kind, csum } => Some(tunnel_overhead(r.addr, kind, csum)),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    Some(link.saturating_sub(u16::try_from(overhead).unwrap_or(u16::MAX)))
}

impl Core {
    /// The forwarding method of real server `rs` of the running service `service`.
    fn probe_method(
        &self,
        service: &ServiceKey,
        rs: (IpAddr, u16),
    ) -> Result<ForwardMethod, DropReason> {
        let id = match *service {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => self.services.find_addr(protocol.number(), addr, port),
            ServiceKey::Fwmark { mark, family } => self.services.find_mark(mark, family),
        };
        // `find_addr` falls back to the port-0 service of the address: not the one asked for.
        let svc = id
            .and_then(|id| self.services.get(id))
            .filter(|s| s.cfg.key == *service)
            .ok_or(DropReason::NoService)?;
        svc.dests
            .iter()
            .find(|d| d.addr == rs.0 && d.port == rs.1)
            .map(|d| d.method)
            .ok_or(DropReason::NoDest)
    }

    /// See [`Director::forward_probe_with`].
    fn send_probe(
        &mut self,
        now: Instant,
        service: &ServiceKey,
        rs: IpAddr,
        method: ForwardMethod,
        frame: &mut Frame<'_>,
    ) -> Verdict {
        let p = match wire::parse(frame.data()) {
            Ok(p) if matches!(p.l3, L3Kind::Ipv4 | L3Kind::Ipv6) => p,
            Ok(_) => return self.drop(DropReason::Malformed),
            Err(e) => {
                self.counters.malformed[e.index() % 16] += 1;
                return self.drop(DropReason::Malformed);
            }
        };
        if !self.service_takes(service, &p) {
            return self.drop(DropReason::NoService);
        }
        let v = match method {
            ForwardMethod::Masq | ForwardMethod::FullNat => {
                return self.drop(DropReason::ProbeMethod);
            }
            ForwardMethod::DirectRoute => {
                // As `ip_vs_dr_xmit()` (`ip_vs_xmit.c`): the IP packet unchanged, to the
                // real server's link address.
                self.keep_partial(frame);
                let Some((port, hop)) = self.net.route(rs) else {
                    return self.drop(DropReason::NoRoute);
                };
                self.emit_to(now, port, hop, frame)
            }
            ForwardMethod::Tunnel { kind, csum } => {
                let (port, hop, src, room) = match self.tunnel_egress(rs, kind, csum) {
                    Ok(e) => e,
                    Err(r) => return self.drop(r),
                };
                if usize::from(p.l3_len) > room {
                    return self.drop(DropReason::TooBig);
                }
                if let Err(r) = encapsulate_frame(frame, &p, src, rs, kind, csum) {
                    return self.drop(r);
                }
                self.emit_to(now, port, hop, frame)
            }
        };
        match v {
            Verdict::Transmit(_) => {
                self.counters.tx += 1;
                self.counters.probes += 1;
            }
            Verdict::Consumed => self.counters.probes += 1,
            Verdict::Drop(_) | Verdict::Pass => {}
        }
        v
    }

    /// Whether `service` would take the packet `p`: its VIP, protocol and (unless a port-0
    /// service, or a later fragment without ports) port; for a fwmark service, a packet of its
    /// family that the fwmark rules give its mark.
    fn service_takes(&self, service: &ServiceKey, p: &Parsed) -> bool {
        match *service {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                p.dst == addr
                    && p.protocol == protocol.number()
                    && (port == 0 || p.frag.is_later() || p.dst_port == port)
            }
            ServiceKey::Fwmark { mark, family } => {
                Family::of(&p.dst) == family
                    && self
                        .classifier
                        .classify(p.protocol, p.src, p.dst, p.dst_port)
                        == Some(mark)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::{DirectorSettings, OwnedAddr, PortConfig, PortId};
    use crate::model::{
        FwmarkRule, LocalPool, Persistence, Prefix, Protocol, RealServerConfig, SchedulerKind,
        TunnelCsum, TunnelKind, VirtualServiceConfig,
    };
    use crate::wire::CsumStatus;
    use crate::wire::encap::{Tunnel, decap};
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use std::net::Ipv4Addr;

    const PUB: PortId = PortId(0);
    const PRIV: PortId = PortId(1);
    const PUB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PRIV_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const RS_MAC: [u8; 6] = [2, 0, 0, 0, 1, 11];
    const HEAD: usize = 128;
    /// The director's own address on the real servers' link: the check socket's source.
    const DIR: &str = "10.2.0.1";
    const VIP: &str = "10.1.0.100";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net() -> NetConfig {
        let port = |id, mac, addr: &str, len| PortConfig {
            id,
            mac,
            addrs: vec![Prefix {
                addr: ip(addr),
                len,
            }],
            mtu: 1500,
        };
        NetConfig {
            ports: vec![
                port(PUB, PUB_MAC, "10.1.0.2", 16),
                port(PRIV, PRIV_MAC, DIR, 24),
            ],
            routes: vec![],
            owned: vec![OwnedAddr {
                addr: ip(VIP),
                port: PUB,
                mac: None,
            }],
        }
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip(VIP),
            port,
        }
    }

    fn service(key: ServiceKey, method: ForwardMethod, rs: &[&str]) -> VirtualServiceConfig {
        let mut s = VirtualServiceConfig::new(key);
        s.scheduler = SchedulerKind::Rr;
        for a in rs {
            let mut r = RealServerConfig::new(ip(a), 80);
            r.method = method;
            s.real_servers.push(r);
        }
        s
    }

    fn director_cfg(cfg: Config) -> Director {
        let mut d = Director::new(net(), &cfg, DirectorSettings::default()).unwrap();
        d.learn_neighbor(ip("10.2.0.11"), RS_MAC, Instant::ZERO);
        d
    }

    fn director(method: ForwardMethod) -> Director {
        director_cfg(Config {
            services: vec![service(key(80), method, &["10.2.0.11", "10.2.0.77"])],
            local_pool: LocalPool {
                addrs: vec![ip("10.2.0.250")],
                port_range: (20000, 20999),
            },
            ..Config::default()
        })
    }

    /// What the daemon reads from its TUN device, behind an Ethernet header that is zero but
    /// for its ethertype: a check's SYN from the director's address to VIP:80.
    fn probe_frame(dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (ip(DIR), ip(dst)) else {
            panic!("IPv4 only");
        };
        let b = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(s.octets(), d.octets(), 64)
            .tcp(43210, dport, 7, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn send(d: &mut Director, svc: &ServiceKey, rs: &str, bytes: &[u8]) -> (Verdict, Vec<u8>) {
        send_csum(d, svc, rs, bytes, CsumStatus::Complete)
    }

    fn send_csum(
        d: &mut Director,
        svc: &ServiceKey,
        rs: &str,
        bytes: &[u8],
        csum: CsumStatus,
    ) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; HEAD + bytes.len()];
        buf[HEAD..].copy_from_slice(bytes);
        let mut f = Frame::new(&mut buf, HEAD, bytes.len()).unwrap();
        f.set_csum(csum);
        let v = d.forward_probe(Instant::from_secs(1), svc, (ip(rs), 80), &mut f);
        (v, f.data().to_vec())
    }

    /// Nothing of a client connection happened: no entry, no scheduling, no counters.
    fn assert_no_connection(d: &Director) {
        assert_eq!(d.table_v4().iter().count(), 0);
        assert_eq!(d.counters().conns_created, 0);
        for (_, s) in d.services().iter() {
            assert_eq!(
                s.stats.conns + s.stats.inpkts,
                0,
                "service counters untouched"
            );
        }
    }

    /// The TCP checksum of an IPv4 packet, verified by etherparse.
    fn assert_tcp_checksum_ok(ip_packet: &[u8]) {
        let s = SlicedPacket::from_ip(ip_packet).unwrap();
        let Some(etherparse::NetSlice::Ipv4(v4)) = &s.net else {
            panic!("not IPv4");
        };
        let Some(TransportSlice::Tcp(t)) = &s.transport else {
            panic!("not TCP");
        };
        let h = t.to_header();
        let want = h
            .calc_checksum_ipv4(&v4.header().to_header(), t.payload())
            .unwrap();
        assert_eq!(h.checksum, want, "inner TCP checksum");
    }

    #[test]
    fn dr_probe_gets_the_real_servers_mac_on_its_port_and_leaves_the_packet_alone() {
        let mut d = director(ForwardMethod::DirectRoute);
        let probe = probe_frame(VIP, 80, b"");
        let (v, out) = send(&mut d, &key(80), "10.2.0.11", &probe);
        assert_eq!(v, Verdict::Transmit(PRIV));
        assert_eq!((&out[..6], &out[6..12]), (&RS_MAC[..], &PRIV_MAC[..]));
        assert_eq!(out[12..], probe[12..], "ethertype and IP packet untouched");
        assert_no_connection(&d);
        assert_eq!(d.counters().probes, 1);
        assert_eq!(d.counters().tx, 1);
        assert_eq!(d.drops().total(), 0);
    }

    #[test]
    fn dr_probe_to_an_unknown_neighbour_parks_and_leaves_after_learn_neighbor() {
        let mut d = director(ForwardMethod::DirectRoute);
        let probe = probe_frame(VIP, 80, b"GET / HTTP/1.0\r\n\r\n");
        let (v, _) = send(&mut d, &key(80), "10.2.0.77", &probe);
        assert_eq!(v, Verdict::Consumed);
        let mut out = [0u8; 2048];
        let (port, n) = d.poll_transmit(&mut out).expect("an ARP request");
        assert_eq!(port, PRIV);
        let arp = etherparse::ArpPacketSlice::from_slice(&out[14..n]).unwrap();
        assert_eq!(arp.operation(), etherparse::ArpOperation::REQUEST);
        assert_eq!(arp.target_protocol_addr(), [10, 2, 0, 77]);
        assert_eq!(arp.sender_protocol_addr(), [10, 2, 0, 1]);
        assert!(d.poll_transmit(&mut out).is_none(), "the probe waits");
        // A second probe to the same neighbour waits too, without a second request.
        assert_eq!(
            send(&mut d, &key(80), "10.2.0.77", &probe).0,
            Verdict::Consumed
        );
        assert!(d.poll_transmit(&mut out).is_none());

        let mac = [2, 0, 0, 0, 1, 77];
        d.learn_neighbor(ip("10.2.0.77"), mac, Instant::from_secs(1));
        for _ in 0..2 {
            let (port, n) = d.poll_transmit(&mut out).expect("a released probe");
            assert_eq!(port, PRIV);
            assert_eq!((&out[..6], &out[6..12]), (&mac[..], &PRIV_MAC[..]));
            assert_eq!(out[12..n], probe[12..]);
        }
        assert!(d.poll_transmit(&mut out).is_none());
        assert_eq!(d.counters().probes, 2);
        assert_no_connection(&d);
    }

    #[test]
    fn tun_probe_is_encapsulated_from_the_directors_address_on_that_link() {
        let kinds = [
            (TunnelKind::Ipip, TunnelCsum::NoCsum),
            (TunnelKind::Gue { port: 6080 }, TunnelCsum::Csum),
        ];
        for (kind, csum) in kinds {
            let mut d = director(ForwardMethod::Tunnel { kind, csum });
            let probe = probe_frame(VIP, 80, b"HEAD / HTTP/1.0\r\n\r\n");
            let (v, out) = send(&mut d, &key(80), "10.2.0.11", &probe);
            assert_eq!(v, Verdict::Transmit(PRIV), "{kind:?}");
            assert_eq!((&out[..6], &out[6..12]), (&RS_MAC[..], &PRIV_MAC[..]));
            assert_eq!(out[12..14], [0x08, 0x00]);
            let outer = etherparse::Ipv4HeaderSlice::from_slice(&out[14..]).unwrap();
            assert_eq!(outer.source_addr(), Ipv4Addr::new(10, 2, 0, 1), "{kind:?}");
            assert_eq!(outer.destination_addr(), Ipv4Addr::new(10, 2, 0, 11));
            let h = outer.to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            let (want_tunnel, want_proto) = match kind {
                TunnelKind::Ipip => (Tunnel::Ipip, 4),
                _ => (Tunnel::Gue { remcsum: None }, 17),
            };
            assert_eq!(outer.protocol().0, want_proto);
            if let TunnelKind::Gue { port } = kind {
                // The outer UDP datagram to the GUE port, its checksum right.
                let s = SlicedPacket::from_ethernet(&out).unwrap();
                let Some(TransportSlice::Udp(u)) = &s.transport else {
                    panic!("GUE rides on UDP");
                };
                assert_eq!(u.destination_port(), port);
                let uh = u.to_header();
                assert_eq!(
                    uh.checksum,
                    uh.calc_checksum_ipv4(&h, u.payload()).unwrap(),
                    "outer UDP checksum (csum)"
                );
            }
            let found = decap(&out[14..], Some(6080))
                .unwrap()
                .expect("a tunnel packet");
            assert_eq!(found.tunnel, want_tunnel);
            assert_eq!(out[14..][found.inner], probe[14..], "inner packet intact");
            assert_no_connection(&d);
            assert_eq!(d.counters().probes, 1);
        }
    }

    #[test]
    fn a_partial_checksum_is_finished_before_tunnelling() {
        let method = ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        };
        let mut d = director(method);
        let mut probe = probe_frame(VIP, 80, b"data");
        let l4 = 14 + 20;
        let seed = wire::l4::partial_seed_v4(
            Ipv4Addr::new(10, 2, 0, 1),
            Ipv4Addr::new(10, 1, 0, 100),
            6,
            (probe.len() - l4) as u16,
        );
        probe[l4 + 16..l4 + 18].copy_from_slice(&seed.to_be_bytes());
        let partial = CsumStatus::Partial {
            start: l4 as u16,
            offset: 16,
        };
        let (v, out) = send_csum(&mut d, &key(80), "10.2.0.11", &probe, partial);
        assert_eq!(v, Verdict::Transmit(PRIV));
        assert_tcp_checksum_ok(&out[14 + 20..]);
    }

    #[test]
    fn nat_fullnat_unknown_services_and_real_servers_are_refused_and_counted() {
        for method in [ForwardMethod::Masq, ForwardMethod::FullNat] {
            let mut d = director(method);
            let (v, _) = send(&mut d, &key(80), "10.2.0.11", &probe_frame(VIP, 80, b""));
            assert_eq!(v, Verdict::Drop(DropReason::ProbeMethod), "{method:?}");
            assert_eq!(d.drops().get(DropReason::ProbeMethod), 1);
            assert_eq!(d.counters().probes, 0);
        }
        let mut d = director(ForwardMethod::DirectRoute);
        let probe = probe_frame(VIP, 80, b"");
        let refused = [
            (key(81), "10.2.0.11", DropReason::NoService), // no such service
            (key(80), "10.2.0.99", DropReason::NoDest),    // no such real server
        ];
        for (svc, rs, why) in refused {
            assert_eq!(send(&mut d, &svc, rs, &probe).0, Verdict::Drop(why));
        }
        // A packet the service would not take: another port, another VIP.
        for other in [
            probe_frame(VIP, 8080, b""),
            probe_frame("10.1.0.101", 80, b""),
        ] {
            let v = send(&mut d, &key(80), "10.2.0.11", &other).0;
            assert_eq!(v, Verdict::Drop(DropReason::NoService));
        }
        // Not an IP packet.
        let mut arp = probe.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(matches!(
            send(&mut d, &key(80), "10.2.0.11", &arp).0,
            Verdict::Drop(DropReason::Malformed)
        ));
        assert_eq!(d.drops().get(DropReason::NoService), 3);
        assert_eq!(d.drops().get(DropReason::NoDest), 1);
        assert_eq!(d.counters().probes, 0);
        assert_eq!(d.counters().tx, 0);
        assert_no_connection(&d);
    }

    #[test]
    fn a_port_zero_service_takes_any_port_and_is_not_a_fallback_for_others() {
        let mut any_port = service(key(0), ForwardMethod::DirectRoute, &["10.2.0.11"]);
        any_port.persistence = Some(Persistence {
            timeout: Persistence::DEFAULT_TIMEOUT,
            prefix: 32,
        });
        let mut d = director_cfg(Config {
            services: vec![any_port],
            ..Config::default()
        });
        // The real server of a port-0 service is configured with port 80 here.
        let (v, _) = send(&mut d, &key(0), "10.2.0.11", &probe_frame(VIP, 443, b""));
        assert_eq!(v, Verdict::Transmit(PRIV));
        let (v, _) = send(&mut d, &key(443), "10.2.0.11", &probe_frame(VIP, 443, b""));
        assert_eq!(v, Verdict::Drop(DropReason::NoService));
    }

    #[test]
    fn a_fwmark_service_takes_the_packets_its_rules_mark() {
        let mark = ServiceKey::Fwmark {
            mark: 7,
            family: Family::V4,
        };
        let rule = FwmarkRule {
            protocol: Some(Protocol::Tcp),
            dst: Prefix {
                addr: ip(VIP),
                len: 32,
            },
            src: None,
            ports: (80, 80),
            mark: 7,
        };
        let mut d = director_cfg(Config {
            services: vec![service(mark, ForwardMethod::DirectRoute, &["10.2.0.11"])],
            fwmark_rules: vec![rule],
            ..Config::default()
        });
        let (v, _) = send(&mut d, &mark, "10.2.0.11", &probe_frame(VIP, 80, b""));
        assert_eq!(v, Verdict::Transmit(PRIV));
        let (v, _) = send(&mut d, &mark, "10.2.0.11", &probe_frame(VIP, 443, b""));
        assert_eq!(v, Verdict::Drop(DropReason::NoService), "not marked 7");
    }

    #[test]
    fn a_removed_real_server_is_probed_with_its_method_given() {
        let method = ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        };
        // The health checker took 10.2.0.11 out: only 10.2.0.77 is configured.
        let mut d = director_cfg(Config {
            services: vec![service(key(80), method, &["10.2.0.77"])],
            ..Config::default()
        });
        let probe = probe_frame(VIP, 80, b"");
        assert_eq!(
            send(&mut d, &key(80), "10.2.0.11", &probe).0,
            Verdict::Drop(DropReason::NoDest)
        );
        let mut with = |method| {
            let mut buf = vec![0u8; HEAD + probe.len()];
            buf[HEAD..].copy_from_slice(&probe);
            let mut f = Frame::new(&mut buf, HEAD, probe.len()).unwrap();
            let rs = ip("10.2.0.11");
            let v = d.forward_probe_with(Instant::from_secs(1), &key(80), rs, method, &mut f);
            (v, f.data().to_vec())
        };
        let (v, out) = with(method);
        assert_eq!(v, Verdict::Transmit(PRIV));
        assert_eq!(out[14 + 9], 4, "IPIP");
        assert_eq!(out[14 + 16..14 + 20], [10, 2, 0, 11]);
        assert_eq!(out[14 + 20..], probe[14..]);
        let (nat, _) = with(ForwardMethod::Masq);
        assert_eq!(nat, Verdict::Drop(DropReason::ProbeMethod));
    }

    #[test]
    fn a_probe_too_big_for_the_tunnel_is_dropped_without_icmp_to_ourselves() {
        let method = ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            csum: TunnelCsum::NoCsum,
        };
        let mut d = director(method);
        assert_eq!(d.probe_mtu(), Some(1480));
        let fits = probe_frame(VIP, 80, &[0; 1480 - 40]);
        assert_eq!(
            send(&mut d, &key(80), "10.2.0.11", &fits).0,
            Verdict::Transmit(PRIV)
        );
        let big = probe_frame(VIP, 80, &[0; 1480 - 40 + 1]);
        assert_eq!(
            send(&mut d, &key(80), "10.2.0.11", &big).0,
            Verdict::Drop(DropReason::TooBig)
        );
        let mut out = [0u8; 2048];
        assert!(d.poll_transmit(&mut out).is_none(), "no ICMP queued");
    }

    #[test]
    fn probe_mtu_leaves_room_for_the_largest_tunnel() {
        let cfg = |method| Config {
            services: vec![service(key(80), method, &["10.2.0.11"])],
            ..Config::default()
        };
        let gue = ForwardMethod::Tunnel {
            kind: TunnelKind::Gue { port: 6080 },
            csum: TunnelCsum::RemCsum,
        };
        assert_eq!(
            probe_mtu(&net(), &cfg(ForwardMethod::DirectRoute)),
            Some(1500)
        );
        assert_eq!(probe_mtu(&net(), &cfg(gue)), Some(1500 - 20 - 8 - 12));
        let mut small = net();
        small.ports[0].mtu = 1400;
        assert_eq!(
            probe_mtu(&small, &cfg(ForwardMethod::DirectRoute)),
            Some(1400)
        );
        assert_eq!(probe_mtu(&NetConfig::default(), &cfg(gue)), None);
    }
}
