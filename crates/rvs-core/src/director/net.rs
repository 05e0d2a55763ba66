//! The director's view of its links: ports (interfaces) with their MAC and addresses, routes
//! and the frames parked while a neighbour is resolved (the neighbour table itself is
//! `director/neigh.rs`).
//!
//! The engine answers ARP / neighbour solicitations for the addresses it owns (VIPs, the NAT
//! router's floating IP). Routing is a longest
//! prefix match over the ports' on-link prefixes and the configured routes — a handful of
//! entries, scanned linearly. Nothing here allocates after construction on the packet path:
//! parked frames live in a fixed pool of fixed-size slots.

use crate::model::{Family, Prefix};
use crate::time::Instant;
use std::net::IpAddr;

/// An interface of the director, as the I/O layer numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortId(pub u8);

/// One port's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The port.
    pub id: PortId,
    /// Its MAC address (source of every frame the director sends on it).
    pub mac: [u8; 6],
    /// The director's own addresses on this link with their on-link prefixes. The first of a
    /// family is the source of the director's own packets there (tunnel outer headers, ARP
    /// requests, ICMP it originates).
    pub addrs: Vec<Prefix>,
    /// The link's MTU (IP bytes per frame): tunnelled packets that would exceed it are cut
    /// (GSO) or refused with ICMP "fragmentation needed" / "packet too big".
    pub mtu: u16,
}

/// A route: packets to `dst` go via the gateway `via` (which must be on-link somewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (`0.0.0.0/0` / `::/0` for a default route).
    pub dst: Prefix,
    /// Next hop.
    pub via: IpAddr,
}

/// An address the director answers ARP / ND for on a port (a VIP or a floating IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedAddr {
    /// The address.
    pub addr: IpAddr,
    /// The port it is announced on.
    pub port: PortId,
    /// The MAC address it is answered and announced with, when not the port's: VRRP's
    /// virtual MAC (`use_vmac`, RFC 5798 §7.3), which moves with the address on takeover.
    pub mac: Option<[u8; 6]>,
}

/// The director's network: ports, routes, owned addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetConfig {
    /// Ports.
    pub ports: Vec<PortConfig>,
    /// Routes beyond the on-link prefixes.
    pub routes: Vec<Route>,
    /// Addresses answered for (VIPs and the NAT router's floating IP).
    pub owned: Vec<OwnedAddr>,
}

impl NetConfig {
    /// The port and next hop for a destination: on-link prefixes and routes, longest match.
    pub fn route(&self, dst: IpAddr) -> Option<(PortId, IpAddr)> {
        let mut best: Option<(u8, PortId, IpAddr)> = None;
        for p in &self.ports {
            for a in &p.addrs {
                if a.contains(dst) && best.is_none_or(|b| a.len > b.0) {
                    best = Some((a.len, p.id, dst));
                }
            }
        }
        for r in &self.routes {
            if r.dst.contains(dst) && best.is_none_or(|b| r.dst.len > b.0) {
                let Some(port) = self.on_link_port(r.via) else {
                    continue;
                };
                best = Some((r.dst.len, port, r.via));
            }
        }
        best.map(|(_, port, hop)| (port, hop))
    }

    fn on_link_port(&self, addr: IpAddr) -> Option<PortId> {
        self.ports
            .iter()
            .find(|p| p.addrs.iter().any(|a| a.contains(addr)))
            .map(|p| p.id)
    }

    /// A port's configuration.
    pub fn port(&self, id: PortId) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.id == id)
    }

    /// The director's own source address of `family` on a port.
    pub fn source_addr(&self, id: PortId, family: Family) -> Option<IpAddr> {
        self.port(id)?
            .addrs
            .iter()
            .find(|a| Family::of(&a.addr) == family)
            .map(|a| a.addr)
    }

    /// Whether the director answers ARP / ND for `addr` on `port`.
    pub fn owns(&self, addr: IpAddr, port: PortId) -> bool {
        self.owned.iter().any(|o| o.addr == addr && o.port == port)
    }

    /// The MAC address `addr` is answered with on `port`, if the director owns it there.
    pub fn owner_mac(&self, addr: IpAddr, port: PortId) -> Option<[u8; 6]> {
        let o = self
            .owned
            .iter()
            .find(|o| o.addr == addr && o.port == port)?;
        o.mac.or_else(|| self.port(port).map(|p| p.mac))
    }
}

/// A frame waiting to be sent: parked for a neighbour, or queued by the engine itself
/// (gratuitous ARP, released parked frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    port: PortId,
    /// Neighbour the frame waits for; `None` once it is ready to go.
    waiting_for: Option<IpAddr>,
    len: u16,
    parked_at: Instant,
}

/// A fixed pool of frame slots: frames parked until their neighbour resolves, and frames
/// ready for [`crate::director::Director::poll_transmit`]. Frames larger than a slot are not
/// parked (the caller counts the drop).
#[derive(Debug)]
pub struct FramePool {
    slot_size: usize,
    bytes: Vec<u8>,
    slots: Vec<Option<Slot>>,
}

impl FramePool {
    /// A pool of `count` slots of `slot_size` bytes each.
    pub fn new(count: usize, slot_size: usize) -> FramePool {
        FramePool {
            slot_size,
            bytes: vec![0; count * slot_size],
            slots: vec![None; count],
        }
    }

    /// Store a frame; `waiting_for` = the neighbour it needs, or None if ready to send.
    /// Returns false (frame not stored) when it is too big or the pool is full.
    pub fn push(
        &mut self,
        port: PortId,
        waiting_for: Option<IpAddr>,
        frame: &[u8],
        now: Instant,
    ) -> bool {
        if frame.len() > self.slot_size {
            return false;
        }
        let Some(i) = self.slots.iter().position(Option::is_none) else {
            return false;
        };
        let at = i * self.slot_size;
        self.bytes[at..at + frame.len()].copy_from_slice(frame);
        self.slots[i] = Some(Slot {
            port,
            waiting_for,
            len: frame.len() as u16,
            parked_at: now,
        });
        true
    }

    /// Whether a frame already waits for `ip` (then a new ARP request is not needed).
    pub fn waiting_for(&self, ip: IpAddr) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|s| s.waiting_for == Some(ip))
    }

    /// Mark every frame waiting for `ip` ready, writing `mac` as its destination MAC.
    /// Returns how many were released.
    pub fn resolve(&mut self, ip: IpAddr, mac: [u8; 6]) -> usize {
        let mut n = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(s) = slot
                && s.waiting_for == Some(ip)
            {
                s.waiting_for = None;
                let at = i * self.slot_size;
                self.bytes[at..at + 6].copy_from_slice(&mac);
                n += 1;
            }
        }
        n
    }

    /// Drop frames that waited longer than `max_wait`; returns how many.
    pub fn expire(&mut self, now: Instant, max_wait: core::time::Duration) -> usize {
        let mut n = 0;
        for slot in &mut self.slots {
            if let Some(s) = slot
                && s.waiting_for.is_some()
                && now.saturating_since(s.parked_at) > max_wait
            {
                *slot = None;
                n += 1;
            }
        }
        n
    }

    /// Take one ready frame into `out`: returns its port and length. A frame longer than
    /// `out` is dropped (returned as length 0 is never done: such frames are skipped).
    pub fn pop_ready(&mut self, out: &mut [u8]) -> Option<(PortId, usize)> {
        let i = self.slots.iter().position(|s| {
            s.is_some_and(|s| s.waiting_for.is_none() && s.len as usize <= out.len())
        })?;
        let s = self.slots[i].take()?;
        let at = i * self.slot_size;
        let len = s.len as usize;
        out[..len].copy_from_slice(&self.bytes[at..at + len]);
        Some((s.port, len))
    }

    /// Whether any frame is ready to send.
    pub fn has_ready(&self) -> bool {
        self.slots.iter().flatten().any(|s| s.waiting_for.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net() -> NetConfig {
        NetConfig {
            ports: vec![
                PortConfig {
                    id: PortId(0),
                    mac: [2, 0, 0, 0, 0, 1],
                    addrs: vec![Prefix {
                        addr: ip("10.1.0.2"),
                        len: 24,
                    }],
                    mtu: 1500,
                },
                PortConfig {
                    id: PortId(1),
                    mac: [2, 0, 0, 0, 0, 2],
                    addrs: vec![Prefix {
                        addr: ip("10.2.0.1"),
                        len: 24,
                    }],
                    mtu: 1500,
                },
            ],
            routes: vec![Route {
                dst: Prefix {
                    addr: ip("0.0.0.0"),
                    len: 0,
                },
                via: ip("10.1.0.1"),
            }],
            owned: vec![],
        }
    }

    #[test]
    fn route_prefers_on_link_then_longest_route() {
        let n = net();
        assert_eq!(n.route(ip("10.2.0.11")), Some((PortId(1), ip("10.2.0.11"))));
        assert_eq!(n.route(ip("10.1.0.10")), Some((PortId(0), ip("10.1.0.10"))));
        assert_eq!(n.route(ip("8.8.8.8")), Some((PortId(0), ip("10.1.0.1"))));
        assert_eq!(n.route(ip("2001:db8::1")), None);
        assert_eq!(n.source_addr(PortId(1), Family::V4), Some(ip("10.2.0.1")));
    }

    #[test]
    fn pool_parks_until_resolved_then_releases_with_the_mac() {
        let mut p = FramePool::new(2, 64);
        let t = Instant::ZERO;
        assert!(p.push(PortId(1), Some(ip("10.2.0.11")), &[0u8; 60], t));
        assert!(p.push(PortId(1), Some(ip("10.2.0.12")), &[0u8; 60], t));
        assert!(!p.push(PortId(1), None, &[0u8; 60], t), "pool full");
        assert!(!p.has_ready());
        assert_eq!(p.resolve(ip("10.2.0.11"), [9; 6]), 1);
        let mut out = [0u8; 128];
        assert_eq!(p.pop_ready(&mut out), Some((PortId(1), 60)));
        assert_eq!(out[..6], [9; 6]);
        assert_eq!(p.pop_ready(&mut out), None);
        let later = Instant::from_secs(5);
        assert_eq!(p.expire(later, core::time::Duration::from_secs(3)), 1);
        assert!(!p.waiting_for(ip("10.2.0.12")));
    }
}
