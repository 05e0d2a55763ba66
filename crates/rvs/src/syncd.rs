//! The connection-sync daemon's I/O (IPVS sync protocol v1, [`rvs_core::sync`]): the
//! active director sends the engine's sync records to the group (224.0.0.81:8848 by
//! default, TTL 1) on the sync interface; every director imports what it hears, so a backup's
//! connection table is warm when it takes over. Run by the data-plane worker between
//! batches: the engine and its table are the worker's alone.
//!
//! Records are packed into messages up to `maxlen` bytes and sent as soon as the worker
//! looks (at most about a millisecond after the packet that made them while traffic flows),
//! rather than after the kernel's 2-second flush: a takeover should find every connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use rvs_config::failover::SyncSetup;
use rvs_core::director::{Director, SyncSettings};
use rvs_core::sync::{SyncMessage, SyncMessageBuilder};
use rvs_core::time::Instant;
use socket2::{Domain, Protocol, Socket, Type};

/// The sync socket and what it has done.
pub struct SyncDaemon {
    sock: UdpSocket,
    dst: SocketAddr,
    syncid: u8,
    maxlen: usize,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Messages and records sent, messages and records received, records refused.
    pub counts: SyncCounts,
}

/// Sync traffic counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncCounts {
    /// Messages sent.
    pub sent_messages: u64,
    /// Records sent.
    pub sent_records: u64,
    /// Messages received and accepted (syncid).
    pub received_messages: u64,
    /// Records imported.
    pub imported: u64,
    /// Records or messages refused.
    pub refused: u64,
    /// Messages the socket would not send.
    pub send_errors: u64,
}

impl SyncDaemon {
    /// Open the sync socket on `setup.interface` (IPv4 multicast group or unicast peer).
    pub fn open(setup: &SyncSetup) -> io::Result<SyncDaemon> {
        let IpAddr::V4(group) = setup.group else {
            return Err(io::Error::other(
                "connection sync over IPv6 is not supported yet",
            ));
        };
        let local = rvs_sys::iface::addresses(&setup.interface)?
            .into_iter()
            .find_map(|(a, _)| match a {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .ok_or_else(|| {
                io::Error::other(format!(
                    "sync interface {} has no IPv4 address",
                    setup.interface
                ))
            })?;
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind_device(Some(setup.interface.as_bytes()))?;
        s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), setup.port).into())?;
        s.join_multicast_v4(&group, &local)?;
        s.set_multicast_if_v4(&local)?;
        s.set_multicast_ttl_v4(u32::from(setup.ttl))?;
        s.set_multicast_loop_v4(false)?;
        s.set_nonblocking(true)?;
        let dst = SocketAddr::new(setup.unicast_peer.unwrap_or(setup.group), setup.port);
        Ok(SyncDaemon {
            sock: s.into(),
            dst,
            syncid: setup.syncid,
            maxlen: usize::from(setup.maxlen.clamp(64, 65_000)),
            buf: vec![0; 65_536],
            out: vec![0; 65_536],
            counts: SyncCounts::default(),
        })
    }

    /// The socket, for the worker's poll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The engine's settings for the master role.
    pub fn settings(&self) -> SyncSettings {
        SyncSettings {
            syncid: self.syncid,
            ..SyncSettings::default()
        }
    }

    /// Send every record the engine has queued.
    pub fn send(&mut self, d: &mut Director) {
        let mut pending = d.poll_sync();
        while pending.is_some() {
            let Ok(mut b) = SyncMessageBuilder::new(&mut self.out[..self.maxlen], self.syncid)
            else {
                return;
            };
            let mut n = 0u64;
            while let Some(r) = pending {
                if b.push(&r.to_conn()).is_err() {
                    break;
                }
                n += 1;
                pending = d.poll_sync();
            }
            if n == 0 {
                // A record that cannot fit any message: drop it, count it.
                self.counts.refused += 1;
                pending = d.poll_sync();
                continue;
            }
            let msg = b.finish();
            match self.sock.send_to(msg, self.dst) {
                Ok(_) => {
                    self.counts.sent_messages += 1;
                    self.counts.sent_records += n;
                }
                Err(e) => {
                    // Logged at the 1st, 2nd, 4th, 8th… failure: counted, never per packet.
                    self.counts.send_errors += 1;
                    if self.counts.send_errors.is_power_of_two() {
                        let n = self.counts.send_errors;
                        tracing::warn!(dst = %self.dst, failures = n, "sync: send: {e}");
                    }
                }
            }
        }
    }

    /// Import every message waiting.
    pub fn receive(&mut self, d: &mut Director, now: Instant) {
        for _ in 0..256 {
            let n = match self.sock.recv_from(&mut self.buf) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("sync: receive: {e}");
                    return;
                }
            };
            let msg = match SyncMessage::parse(&self.buf[..n]) {
                Ok(m) if m.accepted_by(self.syncid) => m,
                Ok(_) => continue,
                Err(_) => {
                    self.counts.refused += 1;
                    continue;
                }
            };
            self.counts.received_messages += 1;
            for c in msg.conns() {
                match c {
                    Ok(c) => match d.sync_import(now, &c) {
                        Ok(()) => self.counts.imported += 1,
                        Err(_) => self.counts.refused += 1,
                    },
                    Err(e) => {
                        self.counts.refused += 1;
                        if e.is_fatal() {
                            break;
                        }
                    }
                }
            }
        }
    }
}
