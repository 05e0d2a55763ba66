//! The established-connection fast path: a client's packet of a known IPv4 TCP or UDP
//! connection to a NAT or FullNAT real server whose egress is cached, handled straight from
//! the frame's bytes with the entry read in place.
//!
//! It makes the same decisions as the general path (`Core::handle_ip` → `Core::forward` →
//! `Core::rewrite_in` → `Core::emit_to_dest`) and leaves the same frame, table and counters
//! (the differential test in `director/tests.rs` checks it); it only skips work whose result
//! it already knows: the `Parsed` value, address conversions, the entry copy, the real
//! server's lookups (its [`Hop`](super::Hop) holds them), and the separate checksum
//! updates. Anything else — tags, IP options, fragments, partial checksums, replies, new
//! connections, an uncached real server — is left to the general path, before anything has
//! been changed.

use super::{Core, DestId, Verdict};
use crate::conn::state::{Activity, ConnFlags, Direction, TcpFlags, TcpState, Transition};
use crate::conn::table::{ConnTable, Refile};
use crate::time::Instant;
use crate::wire::{self, CsumStatus, Frame};
use std::net::IpAddr;

/// What the fast path did.
pub(super) enum Fast {
    /// Handled: the frame's verdict.
    Done(Verdict),
    /// A frame of the fast path's kind without an established connection by its in key
    /// (so the general path need not look the in key up again), with what its header
    /// checks read (so the general path need not check them again).
    NoInConn(wire::parse::SimpleV4),
    /// Not the fast path's kind: nothing was changed.
    General,
}

impl Core {
    /// See the module documentation.
    #[inline(always)]
    pub(super) fn fast_v4(
        &mut self,
        t: &mut ConnTable<[u8; 4]>,
        now: Instant,
        frame: &mut Frame<'_>,
    ) -> Fast {
        // A partial checksum stays partial only when the I/O layer offloads it; otherwise
        // the general path completes it first.
        let partial = matches!(frame.csum(), CsumStatus::Partial { .. });
        if partial && !self.settings.offload_partial_csum {
            return Fast::General;
        }
        let data = frame.data_mut();
        let len = data.len();
        // One length check; every header read and write below is within these 54 bytes.
        let Some(h) = data.first_chunk_mut::<{ wire::parse::SIMPLE_V4_HEAD }>() else {
            return Fast::General;
        };
        let Some(s) = wire::parse::simple_v4_head(h, len) else {
            return Fast::General;
        };
        // Fixed ranges of the 54-byte head: no bounds check, one load each.
        let addrs = h[26..34].try_into().map_or(0, u64::from_ne_bytes);
        let ports = h[34..38].try_into().map_or(0, u32::from_ne_bytes);
        let Some(mut hit) = t.lookup_in_wire(s.protocol, addrs, ports, now) else {
            return Fast::NoInConn(s);
        };
        // A SYN may start a new connection on a closing entry (`conn_reuse_mode`).
        // (`tcp_flags` is 0 for UDP.)
        if s.tcp_flags & TcpFlags::SYN != 0 {
            return Fast::General;
        }
        // The FTP control channel needs its payload inspected (`director/ftp.rs`); a
        // SYN-proxied connection its sequence numbers translated (`director/synproxy`).
        if hit.vport() == super::ftp::FTP_PORT || hit.proxied() {
            return Fast::General;
        }
        let dest = hit.dest();
        // A valid hop with `nat_v4` implies a live real server forwarding by NAT/FullNAT.
        let Some(hop) = self
            .hops
            .get(dest as usize)
            .filter(|h| h.generation == self.neigh_generation)
        else {
            return Fast::General;
        };
        let Some(rs) = hop.nat_v4 else {
            return Fast::General;
        };
        let out = hop.port;
        let caddr = [h[26], h[27], h[28], h[29]];
        // `Core::rewrite_in` (NAT / FullNAT) and `Core::emit_to_dest`: nothing below
        // falls back to the general path.
        wire::nat::rewrite_v4_head(h, s.protocol, hit.local(), (rs, hit.dport()), partial);
        h[0..12].copy_from_slice(&hop.macs);
        let id = hit.id();
        // `Core::forward`: state and timer, then counters.
        let refile = if s.protocol == 6 {
            if established_data(hit.state(), hit.flags(), s.tcp_flags) {
                // What `tcp_transition` would do: the same state and flags, no activity,
                // the ESTABLISHED timeout from now.
                hit.rearm(now, self.timeouts.established())
            } else {
                match hit.tcp_transition(
                    Direction::Input,
                    TcpFlags(s.tcp_flags),
                    &self.timeouts,
                    now,
                ) {
                    Some((tr, refile)) => {
                        self.transition_side_effects(DestId(dest), &tr, caddr, now);
                        refile
                    }
                    None => Refile::NONE,
                }
            }
        } else {
            hit.touch_secs(now, self.timeouts.udp_secs())
        };
        t.refile_if(id, refile);
        self.services
            .count_packet(DestId(dest), true, u64::from(s.total));
        // Connection sync (`director/sync.rs`): one branch while it is off.
        if self.sync.is_some() {
            self.sync_in(t, id);
        }
        Fast::Done(Verdict::Transmit(out))
    }

    /// What a TCP transition of the fast path changes beside the entry: the real server's
    /// counts and the SYN shedder's proof of a completed handshake.
    #[cold]
    #[inline(never)]
    fn transition_side_effects(
        &mut self,
        dest: DestId,
        tr: &Transition,
        caddr: [u8; 4],
        now: Instant,
    ) {
        if let Some(a) = tr.activity {
            self.activity(dest, a);
        }
        // The client's ACK completed the handshake (`director/shed.rs`).
        if super::shed::completes(tr) {
            self.shed.prove(IpAddr::V4(caddr.into()), now);
        }
    }

    /// Move a connection between its real server's active and inactive counts.
    #[cold]
    #[inline(never)]
    pub(super) fn activity(&mut self, dest: DestId, a: Activity) {
        if let Some(d) = self.services.dest_mut(dest) {
            match a {
                Activity::BecameActive => {
                    d.inact_conns = d.inact_conns.saturating_sub(1);
                    d.active_conns += 1;
                }
                Activity::BecameInactive => {
                    d.active_conns = d.active_conns.saturating_sub(1);
                    d.inact_conns += 1;
                }
            }
        }
    }
}

/// Whether an input segment with TCP flags `tcp` on an entry in `state` with `flags` leaves
/// state and flags as they are ([`crate::conn::state::transition`] returns them unchanged,
/// without activity): an ESTABLISHED entry that does not bypass the director's output
/// (NO_OUTPUT), a segment with ACK and none of SYN, FIN, RST (the table's ACK row keeps
/// ESTABLISHED). The test `established_data_is_an_identity_transition` checks it against the
/// state table.
#[inline(always)]
pub(super) fn established_data(state: u8, flags: ConnFlags, tcp: u8) -> bool {
    const NOT_DATA: u8 = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST;
    state == TcpState::Established as u8
        && !flags.has(ConnFlags::NO_OUTPUT)
        && tcp & (NOT_DATA | TcpFlags::ACK) == TcpFlags::ACK
}

#[cfg(test)]
mod tests {
    use super::established_data;
    use crate::conn::state::{ConnFlags, Direction, TcpFlags, TcpState, transition};

    /// The shortcut holds exactly where the state table leaves state and flags alone.
    #[test]
    fn established_data_is_an_identity_transition() {
        let mut taken = 0;
        for state in TcpState::ALL {
            for flags in 0..=ConnFlags::PUBLIC_MASK {
                for tcp in 0..=u8::MAX {
                    if !established_data(state as u8, ConnFlags(flags), tcp) {
                        continue;
                    }
                    taken += 1;
                    let t = transition(state, ConnFlags(flags), Direction::Input, TcpFlags(tcp));
                    assert_eq!(
                        (t.new, t.flags, t.activity),
                        (state, ConnFlags(flags), None)
                    );
                }
            }
        }
        // ESTABLISHED, 64 flag sets without NO_OUTPUT, 16 flag bytes (ACK; no SYN, FIN, RST).
        assert_eq!(taken, 64 * 16);
    }
}
