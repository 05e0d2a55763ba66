//! rvs's XDP fast path (docs/xdp.md): the BPF program `bpf/fastpath.bpf.c`, built from
//! source by `build.rs` with clang, and the loader that attaches it to the director's
//! interfaces and manages its flow map.
//!
//! The program executes rewrites userspace wrote; it decides nothing. A frame whose
//! addresses, ports and protocol are in a flow map (an established IPv4 or IPv6 TCP flow,
//! ACK without SYN/FIN/RST, or a UDP flow; no IP options or IPv6 extension headers, not a
//! fragment, a complete checksum) is rewritten (addresses, ports, incremental checksums,
//! MACs; or, for TUN, encapsulated in IPIP) and sent (`XDP_TX` or `bpf_redirect`); every
//! other frame passes to the kernel stack, where rvs's AF_PACKET path sees it as without
//! the program.
//!
//! This module holds the `unsafe` the loader needs (the [`aya::Pod`] impls of the map
//! structs, one `clock_gettime` and the `bpf(2)` call of `BPF_MAP_LOOKUP_BATCH`, which aya
//! 0.14 lacks), each with a `// SAFETY:` line. It does not choose
//! which flows to offload: that is the engine's (`rvs_core::director::offload`).

use aya::maps::{HashMap, IterableMap, MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, include_bytes_aligned};
use std::io;

/// The object clang built from `bpf/fastpath.bpf.c` (see `build.rs`).
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fastpath.bpf.o"));

/// The flow map's capacity (`max_entries` of `rvs_flows` in the C source): flows beyond
/// it stay on the userspace path.
pub const MAX_FLOWS: usize = 65536;

/// `XDP_PASS`: on to the kernel stack (and rvs's AF_PACKET path).
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`: out of the interface it came in by.
pub const XDP_TX: u32 = 3;
/// `XDP_REDIRECT`: out of another interface.
pub const XDP_REDIRECT: u32 = 4;

/// Per-CPU statistics indexes (`enum` in `bpf/fastpath.h`).
const STAT_FAST_FRAMES: u32 = 0;
const STAT_FAST_BYTES: u32 = 1;
const STAT_PARTIAL_CSUM: u32 = 2;

/// A TCP segment's or UDP datagram's addresses and ports as it arrives, each in network
/// byte order, and its protocol: `struct flow_key` (IPv4, `N` = 4: [`FlowKey`]) or
/// `struct flow_key6` (IPv6, `N` = 16: [`FlowKey6`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKeyOf<const N: usize> {
    /// Source address.
    pub saddr: [u8; N],
    /// Destination address.
    pub daddr: [u8; N],
    /// Source port (network order bytes).
    pub sport: [u8; 2],
    /// Destination port (network order bytes).
    pub dport: [u8; 2],
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// The IPv4 flow map's key.
pub type FlowKey = FlowKeyOf<4>;
/// The IPv6 flow map's key.
pub type FlowKey6 = FlowKeyOf<16>;

impl<const N: usize> FlowKeyOf<N> {
    /// The key of a `proto` segment from `src` to `dst`.
    pub fn new(proto: u8, saddr: [u8; N], sport: u16, daddr: [u8; N], dport: u16) -> Self {
        FlowKeyOf {
            saddr,
            daddr,
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            proto,
            pad: [0; 3],
        }
    }
}

impl<const N: usize> Default for FlowKeyOf<N> {
    fn default() -> Self {
        FlowKeyOf::new(0, [0; N], 0, [0; N], 0)
    }
}

/// `struct flow_val6`: the rewrite and the program's counters for IPv6.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FlowVal6 {
    saddr: [u8; 16],
    daddr: [u8; 16],
    sport: [u8; 2],
    dport: [u8; 2],
    l4_delta: u16,
    dmac: [u8; 6],
    smac: [u8; 6],
    pad: u16,
    ifindex: u32,
    packets: u64,
    bytes: u64,
    last_seen: u64,
}

/// `struct flow_val`: the rewrite and the program's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FlowVal {
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    ip_delta: u16,
    l4_delta: u16,
    dmac: [u8; 6],
    smac: [u8; 6],
    ifindex: u32,
    tun_saddr: [u8; 4],
    tun_daddr: [u8; 4],
    packets: u64,
    bytes: u64,
    last_seen: u64,
    tun_room: u16,
    tun_sum: u16,
    pad: u32,
}

// SAFETY: FlowKey is repr(C), made of byte arrays only (no padding: the layout test pins
// its size to the sum of its fields), so every bit pattern is valid and it is Copy.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: FlowVal is repr(C) with explicit padding (`pad`; the layout test pins every
// offset against `struct flow_val`), integers and byte arrays only: every bit pattern is
// valid.
unsafe impl aya::Pod for FlowVal {}
// SAFETY: FlowKey6 is repr(C), byte arrays only (no padding: the layout test pins its
// size), so every bit pattern is valid.
unsafe impl aya::Pod for FlowKey6 {}
// SAFETY: FlowVal6 is repr(C) with explicit padding (`pad`; the layout test pins every
// offset against `struct flow_val6`), integers and byte arrays only.
unsafe impl aya::Pod for FlowVal6 {}

/// The per-flow counters both value layouts end with.
macro_rules! flow_counters {
    ($($t:ty),*) => {$(
        impl $t {
            fn counters(&self) -> FlowCounters {
                FlowCounters {
                    packets: self.packets,
                    bytes: self.bytes,
                    last_seen_ns: self.last_seen,
                }
            }
        }
    )*};
}
flow_counters!(FlowVal, FlowVal6);

/// What the program does with a segment of a flow: the segment's new addresses and ports,
/// its new MACs and the interface it leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite<A = [u8; 4]> {
    /// New source address.
    pub saddr: A,
    /// New source port.
    pub sport: u16,
    /// New destination address.
    pub daddr: A,
    /// New destination port.
    pub dport: u16,
    /// Destination MAC (the next hop's).
    pub dmac: [u8; 6],
    /// Source MAC (the egress interface's).
    pub smac: [u8; 6],
    /// Egress interface index.
    pub ifindex: u32,
    /// IPIP encapsulation (TUN, IPv4 only): the segment, rewritten as above, goes inside
    /// an outer IPv4 header.
    pub tunnel: Option<Tunnel>,
}

/// The outer header of an IPIP-encapsulated flow (TUN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// Outer source: the director's address on the egress link.
    pub src: [u8; 4],
    /// Outer destination: the real server.
    pub dst: [u8; 4],
    /// The largest inner packet the egress MTU leaves room for.
    pub room: u16,
}

/// A flow's counters as the program left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowCounters {
    /// Segments rewritten.
    pub packets: u64,
    /// Their IP total lengths summed.
    pub bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of the last one (0: none yet).
    pub last_seen_ns: u64,
}

/// The program's totals over all CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Frames the program rewrote and sent.
    pub frames: u64,
    /// Their IP bytes.
    pub bytes: u64,
    /// Hits passed to userspace because their checksum was partial.
    pub partial_csum: u64,
}

/// The one's-complement sum of a byte string's native-order 16-bit words (the program
/// reads the header fields natively; RFC 1071 section 2 (B): the order does not matter as
/// long as it is the same throughout).
fn words(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|w| u32::from(u16::from_ne_bytes([w[0], w[1]])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// ~m + m' over the changed words (RFC 1624 eqn. 3), for `key`'s segment rewritten by
/// `rw`: (IP header delta, TCP delta). The TCP checksum covers the pseudo-header's
/// addresses and the ports.
fn deltas(key: &FlowKey, rw: &Rewrite) -> (u16, u16) {
    deltas_of(
        (&key.saddr, &key.daddr, key.sport, key.dport),
        (&rw.saddr, &rw.daddr, rw.sport, rw.dport),
    )
}

/// [`deltas`] for IPv6: the TCP delta only (IPv6 has no header checksum; the pseudo-header
/// holds the addresses, RFC 8200 section 8.1).
fn delta6(key: &FlowKey6, rw: &Rewrite<[u8; 16]>) -> u16 {
    deltas_of(
        (&key.saddr, &key.daddr, key.sport, key.dport),
        (&rw.saddr, &rw.daddr, rw.sport, rw.dport),
    )
    .1
}

/// [`deltas`] over addresses of any length: (old source, old destination, old source port
/// bytes, old destination port bytes) → (new addresses, new ports).
fn deltas_of(
    (ks, kd, ksp, kdp): (&[u8], &[u8], [u8; 2], [u8; 2]),
    (ns, nd, nsp, ndp): (&[u8], &[u8], u16, u16),
) -> (u16, u16) {
    let not = |b: &[u8]| 0xffff * (b.len() as u32 / 2) - words(b);
    let ip = not(ks) + words(ns) + not(kd) + words(nd);
    let ports = not(&ksp) + words(&nsp.to_be_bytes()) + not(&kdp) + words(&ndp.to_be_bytes());
    // Nothing changed (direct routing): add +0, not -0, so that the checksums are left
    // exactly as they came (both are zero in one's complement; -0 would turn a 0xffff
    // into 0x0000).
    let plus_zero = |d: u16| if d == 0xffff { 0 } else { d };
    (
        plus_zero(fold(ip)),
        plus_zero(fold(u32::from(fold(ip)) + ports)),
    )
}

/// A map removal's result, with a key that was not there counted as removed.
fn absent_is_fine(r: Result<(), aya::maps::MapError>, what: &str) -> io::Result<()> {
    match r {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        Err(e) => Err(err(what, e)),
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The loaded program, attached to the director's interfaces (detached when dropped), and
/// its maps.
pub struct FastPath {
    /// Holds the program and its links (closing them detaches it).
    ebpf: Ebpf,
    flows: HashMap<MapData, FlowKey, FlowVal>,
    flows6: HashMap<MapData, FlowKey6, FlowVal6>,
    stats: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath").finish_non_exhaustive()
    }
}

impl FastPath {
    /// Load the program and attach it in native (driver) mode to each of `ifaces`. Fails
    /// (detaching what was attached) when the kernel or a driver refuses.
    pub fn attach(ifaces: &[String]) -> io::Result<FastPath> {
        let mut fp = FastPath::load()?;
        let prog = fp.program()?;
        for name in ifaces {
            prog.attach(name, XdpMode::Driver)
                .map_err(|e| err(&format!("attaching XDP (native) to {name}"), e))?;
        }
        Ok(fp)
    }

    /// Load the program (through the verifier) without attaching it: for
    /// [`FastPath::run`].
    pub fn load() -> io::Result<FastPath> {
        if let Some(why) = option_env!("RVS_XDP_MISSING") {
            return Err(err("this rvs was built without its XDP program", why));
        }
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| err("loading the XDP object", e))?;
        let prog: &mut Xdp = ebpf
            .program_mut("rvs_fastpath")
            .ok_or_else(|| err("XDP object", "no program rvs_fastpath"))?
            .try_into()
            .map_err(|e| err("rvs_fastpath", e))?;
        prog.load()
            .map_err(|e| err("loading rvs_fastpath (verifier)", e))?;
        let flows = ebpf
            .take_map("rvs_flows")
            .ok_or_else(|| err("XDP object", "no map rvs_flows"))?;
        let flows = HashMap::try_from(flows).map_err(|e| err("rvs_flows", e))?;
        let flows6 = ebpf
            .take_map("rvs_flows6")
            .ok_or_else(|| err("XDP object", "no map rvs_flows6"))?;
        let flows6 = HashMap::try_from(flows6).map_err(|e| err("rvs_flows6", e))?;
        let stats = ebpf
            .take_map("rvs_stats")
            .ok_or_else(|| err("XDP object", "no map rvs_stats"))?;
        let stats = PerCpuArray::try_from(stats).map_err(|e| err("rvs_stats", e))?;
        Ok(FastPath {
            ebpf,
            flows,
            flows6,
            stats,
        })
    }

    fn program(&mut self) -> io::Result<&mut Xdp> {
        self.ebpf
            .program_mut("rvs_fastpath")
            .ok_or_else(|| err("XDP object", "no program rvs_fastpath"))?
            .try_into()
            .map_err(|e| err("rvs_fastpath", e))
    }

    /// Run the program once on `frame` (`BPF_PROG_TEST_RUN`, nothing is sent): its action
    /// ([`XDP_PASS`], [`XDP_TX`], [`XDP_REDIRECT`], ...) and the frame as it left it. The
    /// differential tests compare it with the engine's own output.
    pub fn run(&mut self, frame: &[u8]) -> io::Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; frame.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        };
        let r = self
            .program()?
            .test_run(opts)
            .map_err(|e| err("BPF_PROG_TEST_RUN", e))?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out))
    }

    /// Run the program `repeat` times on `frame` in the kernel (`BPF_PROG_TEST_RUN` with
    /// `repeat`): the mean time per run the kernel measured, and the action.
    pub fn time_run(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> io::Result<(u32, std::time::Duration)> {
        let mut out = vec![0u8; frame.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::new()
        };
        let r = self
            .program()?
            .test_run(opts)
            .map_err(|e| err("BPF_PROG_TEST_RUN", e))?;
        Ok((r.return_value, r.duration))
    }

    /// Write `key`'s rewrite (its counters start at zero).
    pub fn insert(&mut self, key: &FlowKey, rw: &Rewrite) -> io::Result<()> {
        let (ip_delta, l4_delta) = deltas(key, rw);
        let v = FlowVal {
            saddr: rw.saddr,
            daddr: rw.daddr,
            sport: rw.sport.to_be_bytes(),
            dport: rw.dport.to_be_bytes(),
            ip_delta,
            l4_delta,
            dmac: rw.dmac,
            smac: rw.smac,
            ifindex: rw.ifindex,
            tun_saddr: rw.tunnel.map_or([0; 4], |t| t.src),
            tun_daddr: rw.tunnel.map_or([0; 4], |t| t.dst),
            tun_room: rw.tunnel.map_or(0, |t| t.room),
            tun_sum: rw.tunnel.map_or(0, |t| {
                // The outer header's fixed words (`ipip()` in the program): version and
                // IHL, TOS 0, ID 0, no flags, TTL 64, protocol 4, the addresses.
                fold(words(&[0x45, 0, 0, 0, 0, 0, 64, 4]) + words(&t.src) + words(&t.dst))
            }),
            ..FlowVal::default()
        };
        self.flows
            .insert(key, v, 0)
            .map_err(|e| err("rvs_flows insert", e))
    }

    /// `key`'s counters, None when it is not in the map.
    pub fn counters(&self, key: &FlowKey) -> io::Result<Option<FlowCounters>> {
        match self.flows.get(key, 0) {
            Ok(v) => Ok(Some(v.counters())),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err("rvs_flows lookup", e)),
        }
    }

    /// Remove `key` (absent is fine).
    pub fn remove(&mut self, key: &FlowKey) -> io::Result<()> {
        absent_is_fine(self.flows.remove(key), "rvs_flows remove")
    }

    /// [`FastPath::insert`] for an IPv6 segment.
    pub fn insert6(&mut self, key: &FlowKey6, rw: &Rewrite<[u8; 16]>) -> io::Result<()> {
        let v = FlowVal6 {
            saddr: rw.saddr,
            daddr: rw.daddr,
            sport: rw.sport.to_be_bytes(),
            dport: rw.dport.to_be_bytes(),
            l4_delta: delta6(key, rw),
            dmac: rw.dmac,
            smac: rw.smac,
            ifindex: rw.ifindex,
            ..FlowVal6::default()
        };
        self.flows6
            .insert(key, v, 0)
            .map_err(|e| err("rvs_flows6 insert", e))
    }

    /// [`FastPath::counters`] of an IPv6 key.
    pub fn counters6(&self, key: &FlowKey6) -> io::Result<Option<FlowCounters>> {
        match self.flows6.get(key, 0) {
            Ok(v) => Ok(Some(v.counters())),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err("rvs_flows6 lookup", e)),
        }
    }

    /// [`FastPath::remove`] of an IPv6 key.
    pub fn remove6(&mut self, key: &FlowKey6) -> io::Result<()> {
        absent_is_fine(self.flows6.remove(key), "rvs_flows6 remove")
    }

    /// Every IPv4 entry's counters, read with `BPF_MAP_LOOKUP_BATCH` (a few `bpf(2)` calls
    /// for the whole map instead of one per entry): `f` gets each key and its counters.
    /// `scratch` holds the batches (reused between calls; it grows to [`BATCH`] entries
    /// once).
    pub fn each_counters(
        &self,
        scratch: &mut BatchBuf<FlowKey>,
        mut f: impl FnMut(&FlowKey, FlowCounters),
    ) -> io::Result<()> {
        let mut vals = std::mem::take(&mut scratch.vals4);
        let r = lookup_batch(
            self.flows.map(),
            &mut scratch.keys,
            &mut vals,
            |k, v: &FlowVal| f(k, v.counters()),
        );
        scratch.vals4 = vals;
        r.map_err(|e| err("rvs_flows batch lookup", e))
    }

    /// [`FastPath::each_counters`] of the IPv6 map.
    pub fn each_counters6(
        &self,
        scratch: &mut BatchBuf<FlowKey6>,
        mut f: impl FnMut(&FlowKey6, FlowCounters),
    ) -> io::Result<()> {
        let mut vals = std::mem::take(&mut scratch.vals6);
        let r = lookup_batch(
            self.flows6.map(),
            &mut scratch.keys,
            &mut vals,
            |k, v: &FlowVal6| f(k, v.counters()),
        );
        scratch.vals6 = vals;
        r.map_err(|e| err("rvs_flows6 batch lookup", e))
    }

    /// The program's counters summed over all CPUs.
    pub fn totals(&self) -> io::Result<Totals> {
        let sum = |i: u32| -> io::Result<u64> {
            let v = self
                .stats
                .get(&i, 0)
                .map_err(|e| err("rvs_stats lookup", e))?;
            Ok(v.iter().copied().fold(0u64, u64::wrapping_add))
        };
        Ok(Totals {
            frames: sum(STAT_FAST_FRAMES)?,
            bytes: sum(STAT_FAST_BYTES)?,
            partial_csum: sum(STAT_PARTIAL_CSUM)?,
        })
    }
}

/// Entries read per `BPF_MAP_LOOKUP_BATCH` call.
pub const BATCH: usize = 4096;

/// The buffers of [`FastPath::each_counters`] (keys of type `K`), kept between folds.
#[derive(Debug, Default)]
pub struct BatchBuf<K> {
    keys: Vec<K>,
    vals4: Vec<FlowVal>,
    vals6: Vec<FlowVal6>,
}

/// `BPF_MAP_LOOKUP_BATCH` (`enum bpf_cmd` in linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `union bpf_attr`'s `batch` member (linux/bpf.h, "struct used by BPF_MAP_*_BATCH
/// commands").
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every entry of the hash map `map`, `BATCH` at a time: `f` gets each key and value. A
/// hash map's batch position is its bucket index (`htab_map_lookup_batch()`: a `u32`);
/// the last batch ends with ENOENT; a batch whose bucket holds more entries than `BATCH`
/// would fail with ENOSPC (not with 4,096: a bucket holds a handful).
fn lookup_batch<K: aya::Pod + Default, V: aya::Pod + Default>(
    map: &MapData,
    keys: &mut Vec<K>,
    vals: &mut Vec<V>,
    mut f: impl FnMut(&K, &V),
) -> io::Result<()> {
    use std::os::fd::{AsFd, AsRawFd};
    keys.clear();
    keys.resize(BATCH, K::default());
    vals.clear();
    vals.resize(BATCH, V::default());
    let fd = map.fd().as_fd().as_raw_fd();
    let (mut pos, mut next) = (0u64, 0u64);
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &pos as *const u64 as u64 },
            out_batch: &mut next as *mut u64 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: vals.as_mut_ptr() as u64,
            count: BATCH as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is a valid `batch` member of `union bpf_attr` (repr(C), the
        // kernel's layout; the size passed is its own, the kernel zero-extends the rest);
        // `keys` and `vals` hold `count` elements of the map's key and value types (Pod,
        // their sizes pinned by the layout test), `pos` and `next` are 8 bytes (the hash
        // map's batch token is 4); all outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>() as libc::c_uint,
            )
        };
        let end = if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            true
        } else {
            false
        };
        let n = (attr.count as usize).min(BATCH);
        for (k, v) in keys[..n].iter().zip(&vals[..n]) {
            f(k, v);
        }
        if end {
            return Ok(());
        }
        pos = next;
        first = false;
    }
}

/// `CLOCK_MONOTONIC` now in nanoseconds: the clock of the program's `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The layouts of `struct flow_key` and `struct flow_val` (bpf/fastpath.h).
    #[test]
    fn layouts_match_the_c_structs() {
        assert_eq!(size_of::<FlowKey>(), 16);
        assert_eq!(size_of::<FlowVal>(), 72);
        assert_eq!(offset_of!(FlowVal, ip_delta), 12);
        assert_eq!(offset_of!(FlowVal, l4_delta), 14);
        assert_eq!(offset_of!(FlowVal, dmac), 16);
        assert_eq!(offset_of!(FlowVal, smac), 22);
        assert_eq!(offset_of!(FlowVal, ifindex), 28);
        assert_eq!(offset_of!(FlowVal, tun_saddr), 32);
        assert_eq!(offset_of!(FlowVal, tun_daddr), 36);
        assert_eq!(offset_of!(FlowVal, packets), 40);
        assert_eq!(offset_of!(FlowVal, bytes), 48);
        assert_eq!(offset_of!(FlowVal, last_seen), 56);
        assert_eq!(offset_of!(FlowVal, tun_room), 64);
        assert_eq!(offset_of!(FlowVal, tun_sum), 66);
        assert_eq!(size_of::<FlowKey6>(), 40);
        assert_eq!(size_of::<FlowVal6>(), 80);
        assert_eq!(offset_of!(FlowVal6, sport), 32);
        assert_eq!(offset_of!(FlowVal6, l4_delta), 36);
        assert_eq!(offset_of!(FlowVal6, dmac), 38);
        assert_eq!(offset_of!(FlowVal6, smac), 44);
        assert_eq!(offset_of!(FlowVal6, ifindex), 52);
        assert_eq!(offset_of!(FlowVal6, packets), 56);
        assert_eq!(offset_of!(FlowVal6, bytes), 64);
        assert_eq!(offset_of!(FlowVal6, last_seen), 72);
    }

    /// The kernel's verifier accepts both programs (needs root, as the lab tests do).
    #[test]
    fn programs_pass_the_verifier() {
        let mut ebpf = Ebpf::load(OBJECT).expect("object");
        for name in ["rvs_fastpath", "rvs_pass"] {
            let p: &mut Xdp = ebpf.program_mut(name).unwrap().try_into().unwrap();
            p.load().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    /// The program's `csum_update` (RFC 1624 eqn. 3), in Rust over native-order words.
    fn update(hc: [u8; 2], delta: u16) -> [u8; 2] {
        let hc = u16::from_ne_bytes(hc);
        (!fold(u32::from(!hc) + u32::from(delta))).to_ne_bytes()
    }

    /// A TCP segment rewritten with the precomputed deltas has the checksums a full
    /// computation gives, for NAT (destination) and FullNAT (both) rewrites.
    #[test]
    fn deltas_give_the_full_checksums() {
        let payload = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let build = |s: [u8; 4], sp: u16, d: [u8; 4], dp: u16| {
            let b = etherparse::PacketBuilder::ipv4(s, d, 64)
                .tcp(sp, dp, 12345, 64240)
                .ack(777);
            let mut v = Vec::new();
            b.write(&mut v, payload).unwrap();
            v
        };
        let cases = [
            // NAT in: client → VIP becomes client → real server.
            (
                ([10, 1, 0, 10], 40000),
                ([10, 1, 0, 100], 80),
                ([10, 1, 0, 10], 40000),
                ([10, 2, 0, 11], 8080),
            ),
            // NAT out: real server → client becomes VIP → client.
            (
                ([10, 2, 0, 11], 8080),
                ([10, 1, 0, 10], 40000),
                ([10, 1, 0, 100], 80),
                ([10, 1, 0, 10], 40000),
            ),
            // FullNAT in: both rewritten.
            (
                ([10, 1, 0, 10], 40000),
                ([10, 1, 0, 100], 80),
                ([10, 2, 0, 250], 1025),
                ([10, 2, 0, 11], 80),
            ),
            // Direct routing: nothing changes.
            (
                ([10, 1, 0, 10], 40000),
                ([10, 1, 0, 100], 80),
                ([10, 1, 0, 10], 40000),
                ([10, 1, 0, 100], 80),
            ),
            // Nothing changes but a port.
            (
                ([192, 0, 2, 1], 65535),
                ([192, 0, 2, 2], 1),
                ([192, 0, 2, 1], 65535),
                ([192, 0, 2, 2], 0),
            ),
        ];
        for ((s, sp), (d, dp), (ns, nsp), (nd, ndp)) in cases {
            let mut pkt = build(s, sp, d, dp);
            let want = build(ns, nsp, nd, ndp);
            let key = FlowKey::new(6, s, sp, d, dp);
            let rw = Rewrite {
                saddr: ns,
                sport: nsp,
                daddr: nd,
                dport: ndp,
                dmac: [0; 6],
                smac: [0; 6],
                ifindex: 0,
                tunnel: None,
            };
            let (ipd, l4d) = deltas(&key, &rw);
            pkt[12..16].copy_from_slice(&ns);
            pkt[16..20].copy_from_slice(&nd);
            let c = update([pkt[10], pkt[11]], ipd);
            pkt[10..12].copy_from_slice(&c);
            pkt[20..22].copy_from_slice(&nsp.to_be_bytes());
            pkt[22..24].copy_from_slice(&ndp.to_be_bytes());
            let c = update([pkt[36], pkt[37]], l4d);
            pkt[36..38].copy_from_slice(&c);
            let norm = |c: [u8; 2]| if c == [0xff, 0xff] { [0, 0] } else { c };
            assert_eq!(
                norm([pkt[10], pkt[11]]),
                norm([want[10], want[11]]),
                "IP checksum"
            );
            assert_eq!(
                norm([pkt[36], pkt[37]]),
                norm([want[36], want[37]]),
                "TCP checksum"
            );
            assert_eq!(pkt, want);
        }
    }
}

#[cfg(test)]
mod tests6 {
    use super::*;

    /// An IPv6 TCP segment rewritten with the precomputed delta has the checksum a full
    /// computation gives (NAT both ways, FullNAT, direct routing's no change).
    #[test]
    fn delta6_gives_the_full_checksum() {
        let payload = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let build = |s: [u8; 16], sp: u16, d: [u8; 16], dp: u16| {
            let b = etherparse::PacketBuilder::ipv6(s, d, 64)
                .tcp(sp, dp, 12345, 64240)
                .ack(777);
            let mut v = Vec::new();
            b.write(&mut v, payload).unwrap();
            v
        };
        let a = |last: u8, net: u8| {
            let mut x = [0u8; 16];
            x[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            x[7] = net;
            x[15] = last;
            x
        };
        let (client, vip, rs, local) = (a(10, 1), a(100, 1), a(11, 2), a(250, 2));
        let cases = [
            ((client, 40000), (vip, 80), (client, 40000), (rs, 8080)),
            ((rs, 8080), (client, 40000), (vip, 80), (client, 40000)),
            ((client, 40000), (vip, 80), (local, 1025), (rs, 80)),
            ((client, 40000), (vip, 80), (client, 40000), (vip, 80)),
        ];
        for ((s, sp), (d, dp), (ns, nsp), (nd, ndp)) in cases {
            let mut pkt = build(s, sp, d, dp);
            let want = build(ns, nsp, nd, ndp);
            let key = FlowKey6::new(6, s, sp, d, dp);
            let rw = Rewrite {
                saddr: ns,
                sport: nsp,
                daddr: nd,
                dport: ndp,
                dmac: [0; 6],
                smac: [0; 6],
                ifindex: 0,
                tunnel: None,
            };
            let delta = delta6(&key, &rw);
            pkt[8..24].copy_from_slice(&ns);
            pkt[24..40].copy_from_slice(&nd);
            pkt[40..42].copy_from_slice(&nsp.to_be_bytes());
            pkt[42..44].copy_from_slice(&ndp.to_be_bytes());
            let hc = u16::from_ne_bytes([pkt[56], pkt[57]]);
            let c = (!fold(u32::from(!hc) + u32::from(delta))).to_ne_bytes();
            pkt[56..58].copy_from_slice(&c);
            assert_eq!(pkt, want);
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use std::time::Instant;

    fn fill(fp: &mut FastPath, n: usize) -> Vec<FlowKey> {
        let rw = Rewrite {
            saddr: [10, 2, 0, 250],
            sport: 1025,
            daddr: [10, 2, 0, 11],
            dport: 80,
            dmac: [2, 0, 0, 0, 1, 1],
            smac: [2, 0, 0, 0, 0, 2],
            ifindex: 1,
            tunnel: None,
        };
        (0..n)
            .map(|i| {
                let c = [10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
                let k = FlowKey::new(6, c, 40000, [10, 1, 0, 100], 80);
                fp.insert(&k, &rw).unwrap();
                k
            })
            .collect()
    }

    /// The batched read returns every entry with the counters one lookup per entry
    /// returns (some entries hit by the program, so not all zero), and costs a fraction of
    /// the per-entry lookups: the figures for docs/xdp.md ("Batched folds"), printed.
    #[test]
    fn batched_read_matches_per_entry_lookups() {
        for n in [10_000usize, MAX_FLOWS] {
            let mut fp = FastPath::load().expect("loading the XDP program (needs root)");
            let keys = fill(&mut fp, n);
            // Hit three entries through the program (BPF_PROG_TEST_RUN updates the map).
            for k in keys.iter().step_by(n / 3).take(3) {
                let mut frame = Vec::new();
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 1])
                    .ipv4(k.saddr, k.daddr, 64)
                    .tcp(40000, 80, 1, 64240)
                    .ack(1)
                    .write(&mut frame, b"hit")
                    .unwrap();
                let (action, _) = fp.run(&frame).unwrap();
                assert_ne!(action, XDP_PASS, "the program took the flow's segment");
            }
            let t = Instant::now();
            let mut one: Vec<(FlowKey, FlowCounters)> = keys
                .iter()
                .map(|k| (*k, fp.counters(k).unwrap().expect("in the map")))
                .collect();
            let per_entry = t.elapsed();
            let mut scratch = BatchBuf::default();
            let mut batched = Vec::with_capacity(n);
            let t = Instant::now();
            fp.each_counters(&mut scratch, |k, c| batched.push((*k, c)))
                .unwrap();
            let batch = t.elapsed();
            one.sort_by_key(|(k, _)| (k.saddr, k.sport));
            batched.sort_by_key(|(k, _)| (k.saddr, k.sport));
            assert_eq!(batched.len(), n, "every entry read");
            assert_eq!(batched, one, "the same counters");
            assert_eq!(
                batched.iter().filter(|(_, c)| c.packets == 1).count(),
                3,
                "the three hits"
            );
            if n == MAX_FLOWS {
                // The program's own cost per frame, in a full map: a hit (rewritten: the
                // identity rewrite of direct routing, so that every repeated run on the same
                // buffer hits again), a miss (passed).
                let k = keys[n / 2];
                let same = Rewrite {
                    saddr: k.saddr,
                    sport: 40000,
                    daddr: k.daddr,
                    dport: 80,
                    dmac: [2, 0, 0, 0, 0, 1],
                    smac: [2, 0, 0, 0, 0, 0x10],
                    ifindex: 1,
                    tunnel: None,
                };
                fp.insert(&k, &same).unwrap();
                let mut frame = Vec::new();
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 1])
                    .ipv4(k.saddr, k.daddr, 64)
                    .tcp(40000, 80, 1, 64240)
                    .ack(1)
                    .write(&mut frame, &[b'x'; 1400])
                    .unwrap();
                let (hit_action, hit) = fp.time_run(&frame, 100_000).unwrap();
                frame[26] = 192; // a source address not in the map
                frame[24..26].copy_from_slice(&[0, 0]);
                let (miss_action, miss) = fp.time_run(&frame, 100_000).unwrap();
                assert_ne!(hit_action, XDP_PASS);
                assert_eq!(miss_action, XDP_PASS);
                eprintln!(
                    "program per frame (kernel's mean of 100,000 runs): hit {hit:?}, miss {miss:?}"
                );
            }
            eprintln!(
                "{n} entries: one lookup each {per_entry:?} ({:.0} ns/entry), batched {batch:?} \
                 ({:.0} ns/entry, {} calls)",
                per_entry.as_nanos() as f64 / n as f64,
                batch.as_nanos() as f64 / n as f64,
                n.div_ceil(BATCH) + 1
            );
        }
    }
}
