//! Flushing one real server's connections on an operator's request (the web console's
//! "flush", issue 14). IPVS has no request for it: the kernel flushes a real server's
//! entries only when it is deleted and `expire_nodest_conn` expires them on their next
//! packet (`ip_vs_conn.c: ip_vs_conn_expire_now()` per entry). Here the entries are removed
//! at once, each unbound from the server as an expiry unbinds it, so its active and
//! inactive counts fall to 0; its clients' next packets find no entry and are scheduled
//! anew (a TCP mid-stream packet without SYN is dropped, as after an expiry).

use super::{Director, release};
use crate::model::ServiceKey;
use std::net::IpAddr;

impl Director {
    /// Remove every connection and persistence template bound to real server
    /// `addr:port` of `service` (a linear scan of both tables: control plane only). The
    /// number removed, or None when the service has no such real server.
    pub fn flush_dest(&mut self, service: &ServiceKey, addr: IpAddr, port: u16) -> Option<usize> {
        let c = &mut self.core;
        let (_, svc) = c.services.iter().find(|(_, s)| s.cfg.key == *service)?;
        let pos = svc
            .dests
            .iter()
            .position(|d| d.addr == addr && d.port == port)?;
        let dest = svc.dest_ids[pos].0;
        let mut n = self.v4.remove_dest(dest, |_, conn| {
            release(&mut c.services, &mut c.counters, conn.dest, conn.flags);
        });
        n += self.v6.remove_dest(dest, |_, conn| {
            release(&mut c.services, &mut c.counters, conn.dest, conn.flags);
        });
        Some(n)
    }
}
