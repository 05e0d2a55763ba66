//! Why the director dropped a packet. The packet path never allocates an error: it counts
//! drops by reason in a fixed array, which metrics and `rvs` listings read.

/// A reason for dropping a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// The frame could not be parsed (truncated, bad header fields).
    Malformed,
    /// An IPv4 header checksum was wrong.
    BadIpChecksum,
    /// A packet to a VIP that matched no virtual service (the kernel would answer with its
    /// own stack; the director does not own such traffic).
    NoService,
    /// A TCP packet to a service that was not a SYN and matched no connection.
    NotSyn,
    /// The scheduler found no available real server.
    NoRealServer,
    /// The connection table is full.
    TableFull,
    /// The connection's real server was removed and `expire_nodest_conn` is 0.
    NoDest,
    /// No route to the destination.
    NoRoute,
    /// Neighbour unresolved and the parking pool is full (or the frame too big to park).
    NeighborPending,
    /// A non-first fragment whose first fragment was not seen.
    FragmentUnknown,
    /// The frame would exceed the buffer's headroom or size after encapsulation.
    NoRoom,
    /// FullNAT found no free local port.
    NoLocalPort,
    /// An ICMP error that quotes no known connection.
    IcmpUnrelated,
    /// TTL / hop limit would reach zero.
    TtlExceeded,
    /// Too big for the egress link with the tunnel headers (the sender got ICMP
    /// "fragmentation needed" / "packet too big" when it set DF or is IPv6).
    TooBig,
    /// A health-check probe for a real server whose forwarding method cannot carry it
    /// ([`crate::director::Director::forward_probe`]): NAT and FullNAT real servers answer
    /// from their own address, so a probe through them would prove nothing about the VIP.
    ProbeMethod,
    /// An SCTP packet to a service whose first chunk was not INIT and that matched no
    /// connection (`sctp_conn_schedule()` schedules only on INIT).
    NotInit,
    /// A TCP segment the SYN proxy refused (`director/synproxy.rs`): an ACK whose cookie
    /// does not validate, or a real server's segment out of step with the handshake.
    SynProxy,
    /// A new connection's packet dropped by the `drop_packet` defence (`ip_vs_todrop()`).
    DropPacket,
    /// A new connection's SYN from an unproven source dropped while the SYN ring was
    /// congested (`director/shed.rs`).
    SynShed,
}

impl DropReason {
    /// How many reasons there are.
    pub const COUNT: usize = 20;

    /// Every reason, in order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::BadIpChecksum,
        DropReason::NoService,
        DropReason::NotSyn,
        DropReason::NoRealServer,
        DropReason::TableFull,
        DropReason::NoDest,
        DropReason::NoRoute,
        DropReason::NeighborPending,
        DropReason::FragmentUnknown,
        DropReason::NoRoom,
        DropReason::NoLocalPort,
        DropReason::IcmpUnrelated,
        DropReason::TtlExceeded,
        DropReason::TooBig,
        DropReason::ProbeMethod,
        DropReason::NotInit,
        DropReason::SynProxy,
        DropReason::DropPacket,
        DropReason::SynShed,
    ];

    /// A short snake_case name for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::NoService => "no_service",
            DropReason::NotSyn => "not_syn",
            DropReason::NoRealServer => "no_real_server",
            DropReason::TableFull => "table_full",
            DropReason::NoDest => "no_dest",
            DropReason::NoRoute => "no_route",
            DropReason::NeighborPending => "neighbor_pending",
            DropReason::FragmentUnknown => "fragment_unknown",
            DropReason::NoRoom => "no_room",
            DropReason::NoLocalPort => "no_local_port",
            DropReason::IcmpUnrelated => "icmp_unrelated",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::TooBig => "too_big",
            DropReason::ProbeMethod => "probe_method",
            DropReason::NotInit => "not_init",
            DropReason::SynProxy => "synproxy",
            DropReason::DropPacket => "drop_packet",
            DropReason::SynShed => "syn_shed",
        }
    }
}

/// Drop counters, one per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::COUNT]);

impl DropCounters {
    /// Count one drop.
    #[inline]
    pub fn count(&mut self, r: DropReason) {
        self.0[r as usize] += 1;
    }

    /// The count for a reason.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r as usize]
    }

    /// Every reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().map(|r| (r, self.0[r as usize]))
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Add another engine's drops (another forwarding worker's), reason by reason.
    pub fn add(&mut self, o: &DropCounters) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.wrapping_add(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_each_reason_at_its_index() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut c = DropCounters::default();
        c.count(DropReason::TableFull);
        c.count(DropReason::TableFull);
        assert_eq!(c.get(DropReason::TableFull), 2);
        assert_eq!(c.total(), 2);
    }
}
