//! Destination hashing (dh) and source hashing (sh): a 256-bucket table of real servers,
//! rebuilt on every list change, indexed by a hash of the packet's destination / source.
//!
//! Both hash with the kernel's `hash_32()` (Fibonacci hashing, top 8 bits of
//! `x * 0x61C88647`); kernels before 4.7 used `(x * 2654435761) & 255` instead.

use super::{DestChange, addr_fold, hash_32};
use crate::dest::Dest;
use crate::model::SchedFlags;
use std::net::IpAddr;

/// `IP_VS_SH_TAB_BITS` / `IP_VS_DH_TAB_BITS` (`CONFIG_IP_VS_SH_TAB_BITS`, default 8).
pub(crate) const TAB_BITS: u32 = 8;
/// Buckets per table.
pub(crate) const TAB_SIZE: usize = 1 << TAB_BITS;
/// An empty bucket.
const NONE: u32 = u32::MAX;

/// `ip_vs_dh.c: ip_vs_dh_hashkey()`: `hash_32(ntohl(addr_fold), 8)`.
pub(crate) fn dh_hashkey(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), TAB_BITS) as usize
}

/// `ip_vs_sh.c: ip_vs_sh_hashkey()`:
/// `(offset + hash_32(ntohs(port) + ntohl(addr_fold), 8)) & 255`.
pub(crate) fn sh_hashkey(addr: IpAddr, port: u16, offset: u32) -> usize {
    let h = hash_32(u32::from(port).wrapping_add(addr_fold(addr)), TAB_BITS);
    (offset.wrapping_add(h) as usize) & (TAB_SIZE - 1)
}

/// Destination-hashing state: the bucket table (`struct ip_vs_dh_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dh {
    buckets: Box<[u32; TAB_SIZE]>,
}

impl Dh {
    /// `ip_vs_dh.c: ip_vs_dh_init_svc()`.
    pub fn new(dests: &[Dest]) -> Dh {
        let mut s = Dh {
            buckets: Box::new([NONE; TAB_SIZE]),
        };
        s.reassign(dests);
        s
    }

    /// The table: bucket → index into the dests list (`None` = empty list).
    pub fn buckets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NONE).then_some(b as usize))
    }

    /// `add_dest` / `del_dest` rebuild the table; dh registers no `upd_dest` (its table
    /// does not depend on weights).
    pub(crate) fn on_change(&mut self, dests: &[Dest], change: DestChange) {
        if !matches!(change, DestChange::Edited(_)) {
            self.reassign(dests);
        }
    }

    /// `ip_vs_dh.c: ip_vs_dh_reassign()`: one server per bucket, cycling through the list.
    fn reassign(&mut self, dests: &[Dest]) {
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if dests.is_empty() {
                NONE
            } else {
                (i % dests.len()) as u32
            };
        }
    }

    /// `ip_vs_dh.c: ip_vs_dh_schedule()`: no fallback.
    pub(crate) fn schedule(&self, dests: &[Dest], daddr: IpAddr) -> Option<usize> {
        let i = self.buckets[dh_hashkey(daddr)];
        let d = dests.get(i as usize)?;
        (d.available && d.weight > 0 && !d.overloaded).then_some(i as usize)
    }
}

/// Source-hashing state: the bucket table and the sh-fallback / sh-port flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sh {
    buckets: Box<[u32; TAB_SIZE]>,
    flags: SchedFlags,
}

impl Sh {
    /// `ip_vs_sh.c: ip_vs_sh_init_svc()`.
    pub fn new(flags: SchedFlags, dests: &[Dest]) -> Sh {
        let mut s = Sh {
            buckets: Box::new([NONE; TAB_SIZE]),
            flags,
        };
        s.reassign(dests);
        s
    }

    /// The table: bucket → index into the dests list (`None` = empty list).
    pub fn buckets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NONE).then_some(b as usize))
    }

    /// `ip_vs_sh.c: ip_vs_sh_dest_changed()`: add, delete and update all rebuild.
    pub(crate) fn on_change(&mut self, dests: &[Dest]) {
        self.reassign(dests);
    }

    /// `ip_vs_sh.c: ip_vs_sh_reassign()`: each server fills `weight` consecutive buckets
    /// (at least one: the count test is `++d_count >= weight`), cycling through the list.
    fn reassign(&mut self, dests: &[Dest]) {
        let mut p = 0usize;
        let mut d_count = 0u32;
        for b in self.buckets.iter_mut() {
            if dests.is_empty() {
                *b = NONE;
                continue;
            }
            *b = p as u32;
            d_count += 1;
            if d_count >= dests[p].weight {
                p = (p + 1) % dests.len();
                d_count = 0;
            }
        }
    }

    /// `ip_vs_sh.c: is_unavailable()`.
    fn unavailable(d: &Dest) -> bool {
        d.weight == 0 || d.overloaded
    }

    /// `ip_vs_sh.c: ip_vs_sh_schedule()` with `ip_vs_sh_get()` or, with sh-fallback,
    /// `ip_vs_sh_get_fallback()`. The port is hashed only with sh-port.
    pub(crate) fn schedule(&self, dests: &[Dest], caddr: IpAddr, cport: u16) -> Option<usize> {
        let port = if self.flags.port() { cport } else { 0 };
        let ihash = sh_hashkey(caddr, port, 0);
        let i = self.buckets[ihash];
        let d = dests.get(i as usize)?;
        if !Self::unavailable(d) {
            return Some(i as usize);
        }
        if !self.flags.fallback() {
            return None;
        }
        // Loop around the table starting from the original hash value.
        for offset in 0..TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % TAB_SIZE as u32;
            let i = self.buckets[sh_hashkey(caddr, port, roffset)];
            let d = dests.get(i as usize)?;
            if !Self::unavailable(d) {
                return Some(i as usize);
            }
        }
        None
    }
}
