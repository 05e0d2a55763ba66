//! The new-connection path of the common case: an IPv4 TCP SYN that the fast path
//! (`fast.rs`) found no connection for, to a NAT service without persistence, scheduled
//! onto a real server whose hop is cached. It does what the general path
//! ([`Core::new_connection`], [`Core::create`], [`Core::forward`]) does for such a frame,
//! in the same order and with the same effects, from the fast path's header checks
//! ([`SimpleV4`]) and the frame's bytes, without building a [`wire::Parsed`], without
//! looking the service, the real server and the new entry up again, and with the fast
//! path's header rewrite. Anything else goes to the general path before anything has
//! changed; a real server without a cached NAT hop, once scheduled, goes on through
//! [`Core::create`] as the general path does.

use super::{Core, DropReason, ForwardMethod, Scheduled, Verdict, bind, ftp, release, shed, wire};
use crate::conn::state::{ConnFlags, Direction, TcpFlags, TcpState};
use crate::conn::table::{ConnTable, InKey, NewConn, OutKey};
use crate::sched::SchedInput;
use crate::time::Instant;
use crate::wire::parse::{SIMPLE_V4_HEAD, SimpleV4, parsed_simple_v4};
use crate::wire::{CsumStatus, Frame};
use std::net::{IpAddr, Ipv4Addr};

impl Core {
    /// A new IPv4 TCP connection of the common case (see the module documentation):
    /// `None`, with nothing changed, for a frame the general path must take.
    #[inline(always)]
    pub(super) fn new_conn_v4(
        &mut self,
        t: &mut ConnTable<[u8; 4]>,
        now: Instant,
        frame: &mut Frame<'_>,
        s: &SimpleV4,
    ) -> Option<Verdict> {
        const OPEN: u8 = TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN;
        // A bare SYN (`ip_vs_in()`'s opening segment), not to the FTP helper's port, and no
        // FTP data connection expected.
        if s.protocol != 6
            || s.tcp_flags & OPEN != TcpFlags::SYN
            || s.dst_port == ftp::FTP_PORT
            || !self.ftp_expect.is_empty()
        {
            return None;
        }
        let h: &[u8; 34] = frame.data().first_chunk()?;
        let src = [h[26], h[27], h[28], h[29]];
        let dst = [h[30], h[31], h[32], h[33]];
        // The general path's order: a reply of a known connection first
        // (`Core::handle_ip`), then the service.
        let reply = OutKey {
            protocol: 6,
            saddr: src,
            sport: s.src_port,
            daddr: dst,
            dport: s.dst_port,
        };
        if t.lookup_out(&reply, now).is_some() {
            return None;
        }
        let (caddr, vaddr) = (
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
        );
        let svc_id = self.services.find_addr(6, vaddr, s.dst_port)?;
        if self.shed.congested()
            || self.services.get(svc_id)?.cfg.persistence.is_some()
            || self.synproxy_on(svc_id)
        {
            return None;
        }
        // From here on as `Core::new_connection`: `drop_packet`, then scheduling.
        if self.defense.state.todrop() {
            return Some(self.drop(DropReason::DropPacket));
        }
        let Some(svc) = self.services.get_mut(svc_id) else {
            return Some(self.drop(DropReason::NoService));
        };
        let input = SchedInput {
            caddr,
            cport: s.src_port,
            daddr: vaddr,
            dport: s.dst_port,
        };
        let picked = svc
            .sched
            .schedule(&svc.dests, &input, now, &mut self.rng)
            .and_then(|pos| Some((*svc.dest_ids.get(pos)?, svc.dests.get(pos)?)));
        let Some((dest, d)) = picked else {
            return Some(self.drop(DropReason::NoRealServer));
        };
        let (method, dport) = (d.method, if d.port != 0 { d.port } else { s.dst_port });
        let sched = Scheduled {
            service: svc_id,
            dest,
            template: None,
        };
        let hop = self
            .hops
            .get(dest.0 as usize)
            .filter(|h| h.generation == self.neigh_generation && method == ForwardMethod::Masq)
            .and_then(|h| Some((h.nat_v4?, h.port, h.macs)));
        let Some((rs, out, macs)) = hop else {
            // Not the fast case after all: the general path's second half.
            let Some(p) = parsed_simple_v4(frame.data(), s) else {
                return Some(self.drop(DropReason::Malformed));
            };
            let in_key = InKey {
                protocol: 6,
                caddr: src,
                cport: s.src_port,
                vaddr: dst,
                vport: s.dst_port,
            };
            return Some(self.create(t, now, frame, &p, &in_key, sched, None, None));
        };
        // `Core::create`: the entry, the real server's counts.
        let flags = ConnFlags::new_connection(&ForwardMethod::Masq);
        let new = NewConn {
            protocol: 6,
            caddr: src,
            cport: s.src_port,
            vaddr: dst,
            vport: s.dst_port,
            // The hop's `nat_v4` is the real server's address (`Core::dest_hop`).
            daddr: rs,
            dport,
            local: None,
            dest: dest.0,
            service: svc_id.0,
            state: TcpState::None as u8,
            flags,
            timeout: self.timeouts.tcp(TcpState::None),
            control: None,
        };
        let (services, counters) = (&mut self.services, &mut self.counters);
        let Ok(id) = t.insert_with(new, now, |ev| {
            release(services, counters, ev.dest, ev.flags)
        }) else {
            return Some(self.drop(DropReason::TableFull));
        };
        bind(&mut self.services, dest, flags);
        self.count_new(svc_id, dest);
        // `Core::forward` of its first packet: the transition, the counters, sync, the
        // rewrite (`fast_nat_in`'s bytes).
        if let Some(tr) = t.tcp_transition(
            id,
            Direction::Input,
            TcpFlags(s.tcp_flags),
            &self.timeouts,
            now,
        ) {
            if let Some(a) = tr.activity {
                self.activity(dest, a);
            }
            if shed::completes(&tr) {
                self.shed.prove(caddr, now);
            }
        }
        self.services.count_packet(dest, true, u64::from(s.total));
        if self.sync.is_some() {
            self.sync_in(t, id);
        }
        let partial = matches!(frame.csum(), CsumStatus::Partial { .. });
        let Some(h) = frame.data_mut().first_chunk_mut::<SIMPLE_V4_HEAD>() else {
            return Some(self.drop(DropReason::Malformed));
        };
        wire::nat::rewrite_v4_head(h, 6, None, (rs, dport), partial);
        h[0..12].copy_from_slice(&macs);
        Some(Verdict::Transmit(out))
    }
}
