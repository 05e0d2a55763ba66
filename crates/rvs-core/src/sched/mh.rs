//! Maglev hashing (mh): a prime-sized lookup table filled from per-server permutations,
//! indexed by a hash of the client address (and port with mh-port).
//!
//! The arithmetic is the kernel's (`ip_vs_mh.c`), hash included: `hsiphash()` with the
//! module's fixed keys, which on 64-bit kernels is SipHash-1-3 truncated to 32 bits
//! (`lib/siphash.c`). One deliberate difference: the kernel fills the table in its list
//! order, so the same servers added in another order give another table; rvs fills it in
//! (address, port) order so that every director builds the same table. Lookups still
//! return indexes into the caller's list.

use super::addr_fold;
use crate::dest::Dest;
use crate::model::{MH_TABLE_SIZES, SchedFlags};
use std::net::IpAddr;

/// An empty slot.
const NONE: u32 = u32::MAX;

/// The kernel's default table size (`CONFIG_IP_VS_MH_TAB_INDEX` 12 → primes[4]).
const DEFAULT_TABLE_SIZE: u32 = 4093;

/// `ip_vs_mh.c: generate_hash_secret()`: hash1 keys.
const HASH1: [u64; 2] = [2_654_435_761, 2_654_435_761];
/// `ip_vs_mh.c: generate_hash_secret()`: hash2 keys.
const HASH2: [u64; 2] = [2_654_446_892, 2_654_446_892];

/// `lib/siphash.c`: `hsiphash()` of 4 bytes on a 64-bit kernel (SipHash-1-3, `HPREAMBLE`,
/// one `HSIPROUND` per message word, `HPOSTAMBLE`), the 4 bytes being `v` in host
/// (little-endian) order.
pub(crate) fn hsiphash_u32(v: u32, key: &[u64; 2]) -> u32 {
    let mut v0 = 0x736f_6d65_7073_6575u64 ^ key[0];
    let mut v1 = 0x646f_7261_6e64_6f6du64 ^ key[1];
    let mut v2 = 0x6c79_6765_6e65_7261u64 ^ key[0];
    let mut v3 = 0x7465_6462_7974_6573u64 ^ key[1];
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13);
        *v1 ^= *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16);
        *v3 ^= *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21);
        *v3 ^= *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17);
        *v1 ^= *v2;
        *v2 = v2.rotate_left(32);
    };
    // len = 4 < 8: no full words; the tail goes into b with the length in the top byte.
    let b = (4u64 << 56) | u64::from(v);
    v3 ^= b;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= b;
    v2 ^= 0xff;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    ((v0 ^ v1) ^ (v2 ^ v3)) as u32
}

/// `ip_vs_mh.c: ip_vs_mh_hashkey()`: `hsiphash(offset + ntohs(port) + ntohl(addr_fold))`.
pub(crate) fn mh_hashkey(addr: IpAddr, port: u16, key: &[u64; 2], offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    hsiphash_u32(v, key)
}

/// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2` for the index that selects this
/// table size (primes[index - 8]); 65537, not a kernel size, is given 65521's.
pub(crate) fn tab_bits(m: u32) -> u32 {
    let index = match m {
        251 => 8,
        509 => 9,
        1021 => 10,
        2039 => 11,
        4093 => 12,
        8191 => 13,
        16381 => 14,
        32749 => 15,
        65521 | 65537 => 16,
        131071 => 17,
        _ => 12,
    };
    index / 2
}

/// `fls()`: the 1-based position of the highest set bit, 0 for 0.
fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// Build a Maglev lookup table of `table_size` slots for `dests` (each slot an index into
/// `dests`, `u32::MAX` when every server has last weight 0), filling in (address, port)
/// order from each server's `last_weight` (`ip_vs_mh.c: ip_vs_mh_permutate()` and
/// `ip_vs_mh_populate()`). An unknown `table_size` means the kernel default 4093. More
/// servers than slots (the kernel's `-EINVAL`) gives an empty table.
pub fn mh_build_table(dests: &[Dest], table_size: u32) -> Vec<u32> {
    let m = if MH_TABLE_SIZES.contains(&table_size) {
        table_size
    } else {
        DEFAULT_TABLE_SIZE
    };
    let mut table = vec![NONE; m as usize];
    populate(dests, m, &mut table);
    table
}

/// Per-server permutation state (`struct ip_vs_mh_dest_setup`).
#[derive(Debug, Clone, Copy)]
struct DestSetup {
    index: u32,
    skip: u32,
    perm: u32,
    turns: u32,
}

/// Fill `table` (of size `m`) as the kernel does, in (address, port) order.
fn populate(dests: &[Dest], m: u32, table: &mut [u32]) {
    table.fill(NONE);
    if dests.len() > m as usize {
        return;
    }
    // ip_vs_mh.c: ip_vs_mh_gcd_weight(): gcd of the positive last weights.
    let g = dests
        .iter()
        .map(|d| d.last_weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { super::gcd(w, g) } else { w });
    if g < 1 {
        // ip_vs_mh.c: ip_vs_mh_populate(): all last weights 0 → reset the table.
        return;
    }
    // ip_vs_mh.c: ip_vs_mh_shift_weight(): shift = fls(max / gcd) - IP_VS_MH_TAB_BITS.
    let mw = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
    let rshift = fls(mw).saturating_sub(tab_bits(m));

    let mut order: Vec<usize> = (0..dests.len()).collect();
    order.sort_by(|&a, &b| (dests[a].addr, dests[a].port).cmp(&(dests[b].addr, dests[b].port)));
    // ip_vs_mh.c: ip_vs_mh_permutate().
    let mut setup: Vec<DestSetup> = order
        .iter()
        .map(|&i| {
            let d = &dests[i];
            let offset = mh_hashkey(d.addr, d.port, &HASH1, 0) % m;
            let skip = mh_hashkey(d.addr, d.port, &HASH2, 0) % (m - 1) + 1;
            let lw = d.last_weight;
            let t = (lw / g) >> rshift;
            DestSetup {
                index: i as u32,
                skip,
                perm: offset,
                turns: if t != 0 { t } else { u32::from(lw != 0) },
            }
        })
        .collect();

    // ip_vs_mh.c: ip_vs_mh_populate(): round robin over the servers, each claiming `turns`
    // of its next free preferred slots per round.
    let mut taken = vec![0u64; (m as usize).div_ceil(64)];
    let mut n = 0u32;
    let mut dt_count = 0u32;
    'outer: while n < m {
        let mut k = 0;
        while k < setup.len() {
            let ds = &mut setup[k];
            if ds.turns < 1 {
                k += 1;
                continue;
            }
            let mut c = ds.perm;
            while taken[c as usize / 64] & (1 << (c % 64)) != 0 {
                ds.perm += ds.skip;
                if ds.perm >= m {
                    ds.perm -= m;
                }
                c = ds.perm;
            }
            taken[c as usize / 64] |= 1 << (c % 64);
            table[c as usize] = ds.index;
            n += 1;
            if n == m {
                break 'outer;
            }
            dt_count += 1;
            if dt_count >= ds.turns {
                dt_count = 0;
                k += 1;
            }
        }
    }
}

/// Maglev-hashing state: the lookup table and the mh-fallback / mh-port flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mh {
    table: Vec<u32>,
    flags: SchedFlags,
}

impl Mh {
    /// `ip_vs_mh.c: ip_vs_mh_init_svc()` with a table of `table_size` slots (one of
    /// [`MH_TABLE_SIZES`], else the kernel default 4093).
    pub fn new(flags: SchedFlags, table_size: u32, dests: &[Dest]) -> Mh {
        Mh {
            table: mh_build_table(dests, table_size),
            flags,
        }
    }

    /// The lookup table: slot → index into the dests list (`u32::MAX` = empty).
    pub fn table(&self) -> &[u32] {
        &self.table
    }

    /// `ip_vs_mh.c: ip_vs_mh_dest_changed()`: add, delete and update all rebuild.
    pub(crate) fn on_change(&mut self, dests: &[Dest]) {
        let m = self.table.len() as u32;
        populate(dests, m, &mut self.table);
    }

    /// `ip_vs_mh.c: is_unavailable()`.
    fn unavailable(d: &Dest) -> bool {
        d.weight == 0 || d.overloaded
    }

    /// `ip_vs_mh.c: ip_vs_mh_schedule()` with `ip_vs_mh_get()` or, with mh-fallback,
    /// `ip_vs_mh_get_fallback()`.
    pub(crate) fn schedule(&self, dests: &[Dest], caddr: IpAddr, cport: u16) -> Option<usize> {
        let m = self.table.len() as u32;
        let port = if self.flags.port() { cport } else { 0 };
        let ihash = mh_hashkey(caddr, port, &HASH1, 0) % m;
        let i = self.table[ihash as usize];
        let d = dests.get(i as usize)?;
        if !Self::unavailable(d) {
            return Some(i as usize);
        }
        if !self.flags.fallback() {
            return None;
        }
        // Loop around the table starting from ihash.
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let hash = mh_hashkey(caddr, port, &HASH1, roffset) % m;
            let i = self.table[hash as usize];
            let d = dests.get(i as usize)?;
            if !Self::unavailable(d) {
                return Some(i as usize);
            }
        }
        None
    }
}
