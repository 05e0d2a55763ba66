//! Offloading established flows to a kernel fast path (the daemon's XDP program,
//! docs/xdp.md): which connections may be offloaded and with what rewrite, and folding the
//! fast path's counters back into the engine.
//!
//! The engine stays the one place that decides: [`Director::offload_v4`] (and
//! [`Director::offload_v6`]) answers, for a segment the engine has just forwarded, whether
//! its connection is an established TCP (or a UDP) NAT, FullNAT or direct-routing connection whose frames the fast path may rewrite on
//! its own, and how (NAT and FullNAT both directions: addresses, ports, MACs, egress port;
//! direct routing the client's direction, MACs only). Everything else — handshakes,
//! FIN/RST (the fast path passes them here, and the state machine runs as before),
//! tunnels, SCTP, FTP control connections, SYN-proxied connections — is never offloaded.
//! [`Director::offload_fold`] adds the fast path's packet and byte counts to the real
//! server's and service's statistics, re-arms the connection's timer from the fast path's
//! last-seen time, and — with the connection-sync master role on — counts the client's
//! packets towards `sync_threshold` and queues the sync record the kernel's
//! `ip_vs_in()` → `ip_vs_sync_conn()` would have, as the packets would have had they come
//! here. [`Director::synced_established_v4`] lists the synced ESTABLISHED connections a
//! director that takes over may offload at once.
//!
//! It does not talk to the kernel: the daemon (`crates/rvs/src/fastpath.rs`) writes and
//! reads the map.

use super::{Af, Core, DestId, Director, PortId, ftp};
use crate::conn::state::{ConnFlags, TcpState};
use crate::conn::table::{ConnId, ConnTable, InKey, OutKey};
use crate::model::{ForwardMethod, TunnelCsum, TunnelKind};
use crate::time::Instant;

/// A TCP segment's addresses and ports: source, source port, destination, destination
/// port (`A`: `[u8; 4]` or `[u8; 16]`).
pub type Tuple<A> = (A, u16, A, u16);

/// An IPv4 TCP segment's addresses and ports.
pub type Tuple4 = Tuple<[u8; 4]>;

/// An IPv6 TCP segment's addresses and ports.
pub type Tuple6 = Tuple<[u8; 16]>;

/// One direction of an offloaded connection: a segment arriving as `from` leaves as `to`,
/// with these MACs, by `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadWay<A = [u8; 4]> {
    /// The segment as it arrives.
    pub from: Tuple<A>,
    /// The segment as it leaves.
    pub to: Tuple<A>,
    /// The next hop's MAC.
    pub dmac: [u8; 6],
    /// The egress port's MAC.
    pub smac: [u8; 6],
    /// The egress port.
    pub port: PortId,
}

/// Both directions of an offloadable connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offload<A = [u8; 4]> {
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// TUN over IPIP: the client's segments go out inside this outer IPv4 header (the
    /// inward way's `to` is its `from`, as for direct routing).
    pub tunnel: Option<OffloadTunnel>,
    /// Client → real server.
    pub inward: OffloadWay<A>,
    /// Real server → client (NAT and FullNAT; None for direct routing, whose replies do
    /// not cross the director).
    pub outward: Option<OffloadWay<A>>,
    /// The connection came from a sync record ([`crate::conn::state::ConnFlags::SYNC`]): a
    /// director that took over from the master that synced it may offload it at once (it
    /// carried `sync_threshold` client packets there already).
    pub synced: bool,
}

/// The outer header of an IPIP-tunnelled connection's segments (`ip_vs_tunnel_xmit()`, as
/// the engine's `encapsulate()` builds it: TTL 64, TOS 0, no DF, ID 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadTunnel {
    /// The director's address on the egress link.
    pub src: [u8; 4],
    /// The real server.
    pub dst: [u8; 4],
    /// The largest inner packet the egress MTU leaves room for: a bigger one goes to the
    /// engine (which answers "fragmentation needed" or drops it).
    pub room: u16,
}

/// What a fast path counted for one direction since the last fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffloadCount {
    /// Packets.
    pub packets: u64,
    /// IP bytes (total lengths).
    pub bytes: u64,
}

impl Director {
    /// The offload of the IPv4 connection a TCP segment or UDP datagram `seg` of
    /// `protocol` (as it arrived, either direction) belongs to, if the fast path may take
    /// it: see the module documentation.
    pub fn offload_v4(&mut self, now: Instant, protocol: u8, seg: Tuple4) -> Option<Offload> {
        let id = find(&self.v4, now, protocol, seg)?;
        offload_of(&mut self.core, &self.v4, now, id)
    }

    /// [`Director::offload_v4`] for an IPv6 segment.
    pub fn offload_v6(
        &mut self,
        now: Instant,
        protocol: u8,
        seg: Tuple6,
    ) -> Option<Offload<[u8; 16]>> {
        let id = find(&self.v6, now, protocol, seg)?;
        offload_of(&mut self.core, &self.v6, now, id)
    }

    /// Fold a fast path's counts for `o` (each direction since the last fold) into the
    /// real server's and service's statistics, and re-arm the connection's ESTABLISHED
    /// timer from `last_seen` (the fast path's last hit) when that is later than the
    /// timer's own start. Returns the connection's offload now (it may have changed, e.g.
    /// a new MAC), or None when the connection is gone or no longer offloadable.
    pub fn offload_fold(
        &mut self,
        now: Instant,
        o: &Offload,
        inward: OffloadCount,
        outward: OffloadCount,
        last_seen: Option<Instant>,
    ) -> Option<Offload> {
        fold(
            &mut self.core,
            &mut self.v4,
            now,
            o,
            [inward, outward],
            last_seen,
        )
    }

    /// [`Director::offload_fold`] for an IPv6 connection.
    pub fn offload_fold_v6(
        &mut self,
        now: Instant,
        o: &Offload<[u8; 16]>,
        inward: OffloadCount,
        outward: OffloadCount,
        last_seen: Option<Instant>,
    ) -> Option<Offload<[u8; 16]>> {
        fold(
            &mut self.core,
            &mut self.v6,
            now,
            o,
            [inward, outward],
            last_seen,
        )
    }

    /// At most `max` slots of the IPv4 connection table from slot `from` on: `f` gets the
    /// protocol and client → virtual tuple of each ESTABLISHED TCP connection (and each UDP
    /// one) created by a sync record
    /// (the candidates [`Director::offload_v4`] may offload at once after a takeover).
    /// Returns the slot to continue from, None at the end (as
    /// [`ConnTable::slots_from`], whose bounded walk it is).
    pub fn synced_established_v4(
        &self,
        from: u32,
        max: usize,
        f: impl FnMut(u8, Tuple4),
    ) -> Option<u32> {
        synced_established(&self.v4, from, max, f)
    }

    /// [`Director::synced_established_v4`] in the IPv6 table.
    pub fn synced_established_v6(
        &self,
        from: u32,
        max: usize,
        f: impl FnMut(u8, Tuple6),
    ) -> Option<u32> {
        synced_established(&self.v6, from, max, f)
    }
}

fn synced_established<A: Af>(
    t: &ConnTable<A>,
    from: u32,
    max: usize,
    mut f: impl FnMut(u8, Tuple<A>),
) -> Option<u32> {
    t.slots_from(from, max, |c| {
        if (c.protocol == 6 && c.state == TcpState::Established as u8 || c.protocol == 17)
            && c.flags.has(ConnFlags::SYNC)
            && !c.is_template()
        {
            f(c.protocol, (c.caddr, c.cport, c.vaddr, c.vport));
        }
    })
}

fn fold<A: Af>(
    c: &mut Core,
    t: &mut ConnTable<A>,
    now: Instant,
    o: &Offload<A>,
    [inward, outward]: [OffloadCount; 2],
    last_seen: Option<Instant>,
) -> Option<Offload<A>> {
    let id = find(t, now, o.protocol, o.inward.from)?;
    let conn = t.hot(id)?;
    let dest = DestId(conn.dest);
    c.services
        .count_packets(dest, true, inward.packets, inward.bytes);
    c.services
        .count_packets(dest, false, outward.packets, outward.bytes);
    // `ip_vs_in()`: each client packet counts in `in_pkts` towards connection sync (the
    // counts arrive a fold at a time; see `Core::sync_offloaded`).
    if c.sync.is_some() && inward.packets > 0 {
        c.sync_offloaded(t, id, inward.packets);
    }
    let timeout = match conn.protocol {
        6 if conn.state == TcpState::Established as u8 => {
            Some(c.timeouts.tcp_secs(TcpState::Established))
        }
        // UDP's one state: each datagram re-arms its timeout (`ip_vs_set_state()` →
        // `udp_state_transition()`).
        17 => Some(u32::try_from(c.timeouts.udp().as_secs()).unwrap_or(u32::MAX)),
        _ => None,
    };
    if let Some(seen) = last_seen
        && let Some(secs) = timeout
        && let Some(e) = t.get(id)
    {
        // The timer as the engine last armed it started at `expires - timeout`.
        let started = e.expires.0.saturating_sub(e.timeout.as_nanos() as u64);
        if seen.0 > started {
            t.touch_secs(id, seen.min(now), secs);
        }
    }
    offload_of(c, t, now, id)
}

fn offload_of<A: Af>(
    c: &mut Core,
    t: &ConnTable<A>,
    now: Instant,
    id: ConnId,
) -> Option<Offload<A>> {
    let conn = t.hot(id)?;
    let synced = conn.flags.has(ConnFlags::SYNC);
    // An ACK keeps ESTABLISHED as it is in the INPUT and the INPUT_ONLY rows alike (the
    // test `an_ack_keeps_established_in_both_input_rows` checks it), so the state machine
    // loses nothing while the fast path takes those segments. UDP has one state; its
    // datagrams change nothing but the timer, which the fold re-arms.
    let tcp = conn.protocol == 6
        && conn.state == TcpState::Established as u8
        && !conn.proxied
        && conn.vport != ftp::FTP_PORT;
    if !(tcp || conn.protocol == 17) {
        return None;
    }
    let protocol = conn.protocol;
    let dest = DestId(conn.dest);
    let d = c.services.dest(dest)?;
    let nat = matches!(d.method, ForwardMethod::Masq | ForwardMethod::FullNat);
    let ipip = matches!(
        d.method,
        ForwardMethod::Tunnel {
            kind: TunnelKind::Ipip,
            ..
        }
    );
    if !(nat || ipip || d.method == ForwardMethod::DirectRoute) || !c.services.dest_is_live(dest) {
        return None;
    }
    let rs_ip = d.addr;
    // A real server of the other family (a tunnel's heterogeneous pool) is not ours.
    let rs = A::from_ip(rs_ip)?;
    let (in_port, in_mac) = c.dest_hop(dest, rs_ip).ok()?;
    let src_mac = |p: PortId| c.net.port(p).map(|p| p.mac);
    let tunnel = if ipip {
        // IPv4 in IPv4 only (the program builds an IPv4 outer header for an IPv4 packet).
        let (Some(_), std::net::IpAddr::V4(dst)) = (conn.caddr.as_v4(), rs_ip) else {
            return None;
        };
        let (port, _, src, room) = c
            .tunnel_egress(rs_ip, TunnelKind::Ipip, TunnelCsum::NoCsum)
            .ok()?;
        let std::net::IpAddr::V4(src) = src else {
            return None;
        };
        if port != in_port {
            return None;
        }
        Some(OffloadTunnel {
            src: src.octets(),
            dst: dst.octets(),
            room: u16::try_from(room).ok()?,
        })
    } else {
        None
    };
    if !nat {
        // Direct routing (`ip_vs_dr_xmit()`): only the MACs change; a tunnel
        // (`ip_vs_tunnel_xmit()`) puts the segment as it is inside an outer header.
        let from = (conn.caddr, conn.cport, conn.vaddr, conn.vport);
        return Some(Offload {
            inward: OffloadWay {
                from,
                to: from,
                dmac: in_mac,
                smac: src_mac(in_port)?,
                port: in_port,
            },
            outward: None,
            synced,
            protocol,
            tunnel,
        });
    }
    let (out_port, hop) = c.net.route(conn.caddr.to_ip())?;
    let out_mac = c.neigh.lookup(hop, now)?;
    let src_mac = |p: PortId| c.net.port(p).map(|p| p.mac);
    // FullNAT: the real server talks to the local address and port.
    let (laddr, lport) = conn.local.unwrap_or((conn.caddr, conn.cport));
    Some(Offload {
        inward: OffloadWay {
            from: (conn.caddr, conn.cport, conn.vaddr, conn.vport),
            to: (laddr, lport, rs, conn.dport),
            dmac: in_mac,
            smac: src_mac(in_port)?,
            port: in_port,
        },
        outward: Some(OffloadWay {
            from: (rs, conn.dport, laddr, lport),
            to: (conn.vaddr, conn.vport, conn.caddr, conn.cport),
            dmac: out_mac,
            smac: src_mac(out_port)?,
            port: out_port,
        }),
        synced,
        protocol,
        tunnel: None,
    })
}

/// The connection of a segment, by its in key (client → VIP) or its out key (real server
/// → client or local address).
fn find<A: Af>(
    t: &ConnTable<A>,
    now: Instant,
    protocol: u8,
    (s, sp, d, dp): Tuple<A>,
) -> Option<ConnId> {
    let k = InKey {
        protocol,
        caddr: s,
        cport: sp,
        vaddr: d,
        vport: dp,
    };
    t.lookup_in(&k, now).or_else(|| {
        t.lookup_out(
            &OutKey {
                protocol,
                saddr: s,
                sport: sp,
                daddr: d,
                dport: dp,
            },
            now,
        )
    })
}
