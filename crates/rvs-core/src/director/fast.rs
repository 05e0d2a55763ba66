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

use super::{Core, DestId, Hop, Verdict, Way, rewrite};
use crate::conn::state::{Activity, Direction, TcpFlags};
use crate::conn::table::{ConnTable, InKey};
use crate::time::Instant;
use crate::wire::{self, CsumStatus, Frame};

/// What the fast path did.
pub(super) enum Fast {
    /// Handled: the frame's verdict.
    Done(Verdict),
    /// A frame of the fast path's kind without an established connection by its in key
    /// (so the general path need not look the in key up again).
    NoInConn,
    /// Not the fast path's kind: nothing was changed.
    General,
}

impl Core {
    /// See the module documentation.
    #[inline]
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
        let Some(s) = wire::parse::simple_v4(data) else {
            return Fast::General;
        };
        let addr = |at: usize| [data[at], data[at + 1], data[at + 2], data[at + 3]];
        let key = InKey {
            protocol: s.protocol,
            caddr: addr(26),
            cport: s.src_port,
            vaddr: addr(30),
            vport: s.dst_port,
        };
        let Some(id) = t.lookup_in(&key, now) else {
            return Fast::NoInConn;
        };
        let Some(conn) = t.hot(id) else {
            return Fast::General;
        };
        // A SYN may start a new connection on a closing entry (`conn_reuse_mode`).
        if s.protocol == 6 && s.tcp_flags & 0x02 != 0 {
            return Fast::General;
        }
        // The FTP control channel needs its payload inspected (`director/ftp.rs`).
        if conn.vport == super::ftp::FTP_PORT {
            return Fast::General;
        }
        let dest = DestId(conn.dest);
        // A valid hop with `nat_v4` implies a live real server forwarding by NAT/FullNAT.
        let Some(hop) = self.fast_hop(dest) else {
            return Fast::General;
        };
        let Some(rs) = hop.nat_v4 else {
            return Fast::General;
        };
        // `Core::forward`: state and timer, then counters.
        if s.protocol == 6 {
            let flags = TcpFlags(s.tcp_flags);
            if let Some(tr) = t.tcp_transition(id, Direction::Input, flags, &self.timeouts, now)
                && let Some(a) = tr.activity
            {
                self.activity(dest, a);
            }
        } else {
            t.touch_secs(id, now, self.timeouts.udp_secs());
        }
        self.count_packet_len(dest, Way::In, s.total);
        // `Core::rewrite_in` (NAT / FullNAT) and `Core::emit_to_dest`.
        let src = conn.local.map(|(a, p)| (a, Some(p)));
        let l3 = &mut data[14..14 + usize::from(s.total)];
        if !wire::nat::rewrite_v4_l4(
            l3,
            20,
            s.protocol,
            src,
            Some((rs, Some(conn.dport))),
            partial,
        ) {
            // Not reached: the header lengths were checked above.
            return Fast::Done(self.drop(super::DropReason::Malformed));
        }
        emit(data, &hop)
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

#[inline(always)]
fn emit(data: &mut [u8], hop: &Hop) -> Fast {
    rewrite::set_macs(data, hop.mac, hop.src_mac);
    Fast::Done(Verdict::Transmit(hop.port))
}
