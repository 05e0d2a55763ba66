//! The connection table: IPVS's `ip_vs_conn_tab`, growing with load up to a memory limit.
//!
//! One table holds one address family ([`ConnTable<[u8; 4]>`](ConnTableV4) or
//! [`ConnTable<[u8; 16]>`](ConnTableV6)): the director owns one of each, which keeps an IPv4
//! entry from paying for 16-byte addresses; an IPv6 entry holds its virtual, real-server and
//! local addresses and ids as an index into an arena of interned, refcounted bindings
//! ([`Binding`], growing like the slab), so that entries of both families are 88 bytes. Entries live in a slab of
//! fixed-size chunks ([`CHUNK_ENTRIES`]); two chained hash indexes (heads arrays + a `u32`
//! link in each entry) find them by the *in* key (client → virtual) and by the *out* key
//! (real server → client, or → local address for FullNAT); a coarse timing wheel (doubly
//! linked through the entries) expires them incrementally.
//!
//! **Growth without allocating on the packet path.** The table never allocates after
//! construction. It says what it wants ([`ConnTable::need`]: a chunk when fewer than a
//! quarter chunk of free slots is left, hash heads twice as large once there are more slots
//! than buckets); the caller builds that off the packet path ([`Provision::build`], on a
//! helper thread in the daemon) and hands it in ([`ConnTable::provide`]): a chunk is linked
//! in O(1); new heads start an incremental rehash that moves a bounded number of old
//! buckets per insert and per [`ConnTable::expire`], lookups consulting the old heads for
//! the buckets not moved yet. Growth honours an entry limit and a byte limit
//! ([`ConnTable::growable`]); [`ConnTable::new`] builds a fixed table with everything
//! allocated up front. No operation panics, none takes a lock: a table belongs to one
//! worker.
//!
//! Semantics follow `net/netfilter/ipvs/ip_vs_conn.c`: lookups (`ip_vs_conn_in_get()`,
//! `ip_vs_conn_out_get()`, `ip_vs_ct_in_get()` for templates), control links between a
//! persistence template and the connections it controls (`ip_vs_control_add()` /
//! `ip_vs_control_del()`), and `ip_vs_conn_expire()`'s rule that a template still
//! controlling connections is re-armed for 60 s instead of expiring.
//!
//! Deliberately not here: scheduling, real-server counts (the table *reports* what the
//! director must change: [`Activity`](super::Activity) on state changes, removed entries from
//! [`ConnTable::expire`]), forwarding, connection sync, the FTP helper's NO_CPORT entries.
//!
//! ## Time
//! An entry expires at `expires = last touch + timeout` exactly: from that instant on,
//! lookups do not return it (unless it is a template controlling connections) even though
//! it may still occupy its slot. [`ConnTable::expire`] removes such entries at most one wheel
//! tick ([`TICK`], about 134 ms) later, in bounded batches; [`ConnTable::next_expiry`] says
//! when the next batch is due. Insert does not check for an existing entry with the same
//! key (neither does `ip_vs_conn_new()`): the director looks up first. A dead entry with the
//! same key may linger until swept; lookups skip it.

use core::fmt;
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sctp::{self, SctpEvent, SctpState, SctpTransition};
use super::state::{
    ConnFlags, Direction, Rearm, StateTimeouts, TcpFlags, TcpState, Transition, state_name,
    transition_with,
};
use crate::model::{Family, TableFullPolicy};
use crate::time::Instant;

mod bind;
#[doc(hidden)]
pub use bind::{Binding, Bindings};

const NIL: u32 = u32::MAX;
/// Internal flag bit: the slot holds an entry.
const OCCUPIED: u8 = 0x80;
const TCP: u8 = 6;
const SCTP: u8 = 132;

/// log2 of the wheel tick in nanoseconds.
const TICK_SHIFT: u32 = 27;
/// Wheel slots (a power of two). Horizon = `WHEEL_SLOTS` ticks, about 1100 s: longer
/// timeouts are filed at the horizon and re-filed when it comes round.
const WHEEL_SLOTS: usize = 8192;
const WHEEL_MASK: u64 = WHEEL_SLOTS as u64 - 1;
/// Entries examined when looking for one to reclaim on a full table.
const EVICT_SCAN: usize = 32;

/// The expiry wheel's granularity: [`ConnTable::expire`] removes an entry at most this long
/// after it expired (2^27 ns, about 134 ms).
pub const TICK: Duration = Duration::from_nanos(1 << TICK_SHIFT);

/// How long a template that still controls connections lives on when it expires
/// (`cp->timeout = 60*HZ` at `expire_later` in `ip_vs_conn_expire()`).
pub const TEMPLATE_REARM: Duration = Duration::from_secs(60);

/// The timeout of a connection just created, before its first state transition sets the
/// state's own (`cp->timeout = 3*HZ` in `ip_vs_conn_new()`).
pub const NEW_CONN_TIMEOUT: Duration = Duration::from_secs(3);

mod sealed {
    pub trait Sealed {}
    impl Sealed for [u8; 4] {}
    impl Sealed for [u8; 16] {}
}

/// An address as stored in a connection table: `[u8; 4]` (IPv4) or `[u8; 16]` (IPv6),
/// in network byte order as found in the packet.
pub trait ConnAddr:
    Copy + Eq + Default + fmt::Debug + Send + Sync + 'static + sealed::Sealed
{
    /// The address family.
    const FAMILY: Family;

    /// The pseudo virtual address of a firewall-mark template: the mark in network byte
    /// order in the first four bytes, the rest zero (the kernel's
    /// `union nf_inet_addr fwmark = { .ip = htonl(svc->fwmark) }` in `ip_vs_sched_persist()`).
    fn from_fwmark(mark: u32) -> Self;

    /// As a standard library address (for listings).
    fn to_ip(self) -> IpAddr;

    /// Seeded hash of two addresses and 64 more bits of key.
    #[doc(hidden)]
    fn hash2(seed: &Seed, a: &Self, b: &Self, tail: u64) -> u64;

    /// What an entry holds of its [`Binding`]: the binding itself (IPv4) or its index in
    /// the table's arena of interned bindings (IPv6, see `conn/table/bind.rs`).
    #[doc(hidden)]
    type Bind: Copy + Default + fmt::Debug + Send + Sync + 'static;

    /// Whether entries intern their binding in the arena.
    #[doc(hidden)]
    const INTERNED: bool;

    /// The binding an entry holds.
    #[doc(hidden)]
    fn binding<'a>(b: &'a Self::Bind, arena: &'a Bindings<Self>) -> &'a Binding<Self>;

    /// One more entry holds `b`; `None` when the arena is full.
    #[doc(hidden)]
    fn bind(arena: &mut Bindings<Self>, seed: &Seed, b: Binding<Self>) -> Option<Self::Bind>;

    /// An entry holding `b` is gone.
    #[doc(hidden)]
    fn unbind(arena: &mut Bindings<Self>, seed: &Seed, b: Self::Bind);
}

impl ConnAddr for [u8; 4] {
    const FAMILY: Family = Family::V4;

    fn from_fwmark(mark: u32) -> Self {
        mark.to_be_bytes()
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }

    #[inline]
    fn hash2(seed: &Seed, a: &Self, b: &Self, tail: u64) -> u64 {
        hash_v4_wire(seed, u64::from_ne_bytes(concat8(a, b)), tail)
    }

    type Bind = Binding<[u8; 4]>;
    const INTERNED: bool = false;

    #[inline(always)]
    fn binding<'a>(b: &'a Self::Bind, _: &'a Bindings<Self>) -> &'a Binding<Self> {
        b
    }

    #[inline(always)]
    fn bind(_: &mut Bindings<Self>, _: &Seed, b: Binding<Self>) -> Option<Self::Bind> {
        Some(b)
    }

    #[inline(always)]
    fn unbind(_: &mut Bindings<Self>, _: &Seed, _: Self::Bind) {}
}

impl ConnAddr for [u8; 16] {
    const FAMILY: Family = Family::V6;

    fn from_fwmark(mark: u32) -> Self {
        let mut a = [0; 16];
        a[..4].copy_from_slice(&mark.to_be_bytes());
        a
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }

    fn hash2(seed: &Seed, a: &Self, b: &Self, tail: u64) -> u64 {
        let x = u128::from_ne_bytes(*a);
        let y = u128::from_ne_bytes(*b);
        let h = fold((x as u64) ^ seed.0[0], ((x >> 64) as u64) ^ seed.0[1]);
        let h = fold(h ^ (y as u64) ^ seed.0[2], ((y >> 64) as u64) ^ seed.0[3]);
        fold(h ^ tail ^ seed.0[0], seed.0[3])
    }

    type Bind = u32;
    const INTERNED: bool = true;

    #[inline]
    fn binding<'a>(b: &'a Self::Bind, arena: &'a Bindings<Self>) -> &'a Binding<Self> {
        arena.get(*b)
    }

    fn bind(arena: &mut Bindings<Self>, seed: &Seed, b: Binding<Self>) -> Option<Self::Bind> {
        arena.acquire(seed, b)
    }

    fn unbind(arena: &mut Bindings<Self>, seed: &Seed, b: Self::Bind) {
        arena.release(seed, b);
    }
}

/// Folded 64x64→128 multiply (the mixing step of foldhash and wyhash).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The table's hash secrets, expanded from the caller's seed. The seed must come from the
/// daemon's randomness so that a client cannot aim many flows at one bucket (hash flooding);
/// the hash is a foldhash-style folded multiply, fast but not cryptographic.
#[derive(Clone, Copy)]
#[doc(hidden)]
pub struct Seed([u64; 4]);

impl Seed {
    fn new(seed: u64) -> Seed {
        // splitmix64 expansion; the `| 1` keeps every multiplier odd and non-zero.
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) | 1
        };
        Seed([next(), next(), next(), next()])
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// The ports and protocol of a key as hashed: the two ports as they are on the wire (the
/// four bytes `p1`, `p2` in network order, read in the machine's order), then the protocol.
/// A frame's port bytes hash without conversion ([`ConnTable::lookup_in_wire`]).
#[inline]
fn ports_tail(protocol: u8, p1: u16, p2: u16) -> u64 {
    wire_tail(protocol, wire_ports(p1, p2))
}

/// Two ports as on the wire: their four bytes in network order, read in the machine's
/// order.
#[inline(always)]
fn wire_ports(p1: u16, p2: u16) -> u32 {
    let [a, b] = p1.to_be_bytes();
    let [c, d] = p2.to_be_bytes();
    u32::from_ne_bytes([a, b, c, d])
}

/// An [`InKey`] with its ports as on the wire ([`wire_ports`]), as entries hold them.
struct WireKey<A> {
    protocol: u8,
    caddr: A,
    vaddr: A,
    ports: u32,
}

impl<A: ConnAddr> WireKey<A> {
    #[inline(always)]
    fn of(k: &InKey<A>) -> WireKey<A> {
        WireKey {
            protocol: k.protocol,
            caddr: k.caddr,
            vaddr: k.vaddr,
            ports: wire_ports(k.cport, k.vport),
        }
    }
}

/// [`ports_tail`] of ports as read from a frame in the machine's order.
#[inline(always)]
fn wire_tail(protocol: u8, ports: u32) -> u64 {
    (u64::from(ports) << 8) | u64::from(protocol)
}

/// The IPv4 hash of two addresses read as one word from a frame (the eight bytes of the
/// two addresses in the machine's order) and a tail.
#[inline(always)]
fn hash_v4_wire(seed: &Seed, addrs: u64, tail: u64) -> u64 {
    fold(addrs ^ seed.0[0], tail ^ seed.0[1])
}

#[inline(always)]
fn concat8(a: &[u8; 4], b: &[u8; 4]) -> [u8; 8] {
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

/// The out index's hash. Different argument order from the in hash so that an entry whose
/// in and out keys coincide does not land in the same bucket twice by construction.
#[inline]
fn out_hash<A: ConnAddr>(
    seed: &Seed,
    protocol: u8,
    saddr: &A,
    sport: u16,
    daddr: &A,
    dport: u16,
) -> u64 {
    A::hash2(seed, daddr, saddr, ports_tail(protocol, dport, sport) << 8)
}

/// The handle of an entry. Valid until the entry is removed; afterwards the slot may be
/// reused, so the director must not keep ids across packets (templates' links to the
/// connections they control are kept by the table itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u32);

impl ConnId {
    /// The slot index.
    pub fn index(self) -> u32 {
        self.0
    }
}

/// The key a client→virtual packet is looked up by (`ip_vs_conn_in_get()`): protocol,
/// client address and port, virtual address and port.
///
/// Persistence templates use the same shape with the director's own values
/// (`ip_vs_sched_persist()`): client address masked by the persistence netmask, client
/// port 0, virtual port 0 for port-0 and FTP services; firewall-mark templates use
/// protocol 0 (`IPPROTO_IP`) and [`InKey::fwmark_template`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InKey<A> {
    /// IP protocol number.
    pub protocol: u8,
    /// Client address.
    pub caddr: A,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: A,
    /// Virtual port.
    pub vport: u16,
}

impl<A: ConnAddr> InKey<A> {
    /// The key of a firewall-mark persistence template: protocol 0, the masked client
    /// address, port 0, and the mark in the virtual address ([`ConnAddr::from_fwmark`]).
    pub fn fwmark_template(masked_caddr: A, mark: u32) -> InKey<A> {
        InKey {
            protocol: 0,
            caddr: masked_caddr,
            cport: 0,
            vaddr: A::from_fwmark(mark),
            vport: 0,
        }
    }
}

/// The key a reply (real server → client) is looked up by (`ip_vs_conn_out_get()`): the
/// reply's own source and destination. For NAT the destination is the client; for FullNAT
/// it is the director's local address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutKey<A> {
    /// IP protocol number.
    pub protocol: u8,
    /// Real-server address (the reply's source).
    pub saddr: A,
    /// Real-server port.
    pub sport: u16,
    /// The reply's destination: client address, or local address for FullNAT.
    pub daddr: A,
    /// The reply's destination port.
    pub dport: u16,
}

/// A connection (or persistence template) to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn<A> {
    /// IP protocol number (0 for firewall-mark templates).
    pub protocol: u8,
    /// Client address (masked for templates).
    pub caddr: A,
    /// Client port (0 for templates).
    pub cport: u16,
    /// Virtual address (the mark for firewall-mark templates).
    pub vaddr: A,
    /// Virtual port.
    pub vport: u16,
    /// Real-server address.
    pub daddr: A,
    /// Real-server port.
    pub dport: u16,
    /// FullNAT local (source) address and port towards the real server; `Some` sets
    /// [`ConnFlags::FULLNAT`] and makes the out key use it instead of the client.
    pub local: Option<(A, u16)>,
    /// The real server, as the director numbers them (opaque here).
    pub dest: u32,
    /// The virtual service, as the director numbers them (opaque here).
    pub service: u32,
    /// Initial protocol state: [`TcpState::None`] / [`SctpState::None`] as `u8` for TCP and
    /// SCTP (the kernel creates connections in state 0), [`crate::conn::state::UDP_STATE`]
    /// otherwise.
    pub state: u8,
    /// Flags; see [`ConnFlags::new_connection`] for a new connection's.
    pub flags: ConnFlags,
    /// Time to live from `now` until the next touch.
    pub timeout: Duration,
    /// The persistence template controlling this connection, if any. An id that is not a
    /// live template is ignored.
    pub control: Option<ConnId>,
}

/// An entry as the table reports it (listings, removals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn<A> {
    /// IP protocol number.
    pub protocol: u8,
    /// Client address.
    pub caddr: A,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: A,
    /// Virtual port.
    pub vport: u16,
    /// Real-server address.
    pub daddr: A,
    /// Real-server port.
    pub dport: u16,
    /// FullNAT local address and port.
    pub local: Option<(A, u16)>,
    /// Real-server id.
    pub dest: u32,
    /// Service id.
    pub service: u32,
    /// Protocol state number.
    pub state: u8,
    /// Flags.
    pub flags: ConnFlags,
    /// Current timeout (re-armed on each touch).
    pub timeout: Duration,
    /// When the entry expires.
    pub expires: Instant,
    /// The template controlling this connection.
    pub control: Option<ConnId>,
    /// For a template: how many connections it controls.
    pub n_control: u32,
}

impl<A: ConnAddr> Conn<A> {
    /// Whether this is a persistence template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.flags.has(ConnFlags::TEMPLATE)
    }

    /// The state name `ipvsadm -L -c` shows.
    pub fn state_name(&self) -> &'static str {
        state_name(self.protocol, self.state, self.is_template())
    }

    /// The TCP state, for TCP connections.
    pub fn tcp_state(&self) -> Option<TcpState> {
        if self.protocol == TCP && !self.is_template() {
            TcpState::from_index(self.state)
        } else {
            None
        }
    }

    /// Time left until expiry (zero once expired).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires.saturating_since(now)
    }

    /// Whole seconds left, as `/proc/net/ip_vs_conn` prints them.
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        self.remaining(now).as_secs()
    }

    /// The entry's in key.
    pub fn in_key(&self) -> InKey<A> {
        InKey {
            protocol: self.protocol,
            caddr: self.caddr,
            cport: self.cport,
            vaddr: self.vaddr,
            vport: self.vport,
        }
    }
}

/// The fields of an entry the packet path needs, read without building a [`Conn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotConn<A> {
    /// Client address.
    pub caddr: A,
    /// Virtual address.
    pub vaddr: A,
    /// FullNAT local address and port.
    pub local: Option<(A, u16)>,
    /// Real-server id.
    pub dest: u32,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real-server port.
    pub dport: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Flags.
    pub flags: ConnFlags,
    /// Protocol state ([`TcpState`] index for TCP).
    pub state: u8,
    /// The SYN proxy translates this connection's sequence numbers ([`SeqProxy`]).
    pub proxied: bool,
}

/// A connection found by [`ConnTable::lookup_in_mut`], borrowed in place: its fields read
/// and its timer re-armed without finding it again. A re-arm returns a [`Refile`] for
/// [`ConnTable::refile_if`] once the borrow ends.
pub struct InHit<'a, A: ConnAddr> {
    id: ConnId,
    e: &'a mut Entry<A>,
    bs: &'a Bindings<A>,
    cursor: u64,
}

/// Whether a re-arm through [`InHit`] moved the entry's expiry before the wheel slot it is
/// filed in (rare: a shorter timeout than before); hand it to [`ConnTable::refile_if`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refile(bool);

impl Refile {
    /// Nothing to move (the entry was not re-armed).
    pub const NONE: Refile = Refile(false);
}

impl<A: ConnAddr> InHit<'_, A> {
    /// The entry's id.
    #[inline(always)]
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// Real-server id.
    #[inline(always)]
    pub fn dest(&self) -> u32 {
        self.e.b(self.bs).dest
    }
    /// Virtual port.
    #[inline(always)]
    pub fn vport(&self) -> u16 {
        self.e.vport()
    }
    /// Real-server port.
    #[inline(always)]
    pub fn dport(&self) -> u16 {
        self.e.dport
    }
    /// FullNAT local address and port.
    #[inline(always)]
    pub fn local(&self) -> Option<(A, u16)> {
        self.e
            .fullnat()
            .then_some((self.e.b(self.bs).laddr, self.e.lport))
    }
    /// Protocol state ([`TcpState`] index for TCP).
    #[inline(always)]
    pub fn state(&self) -> u8 {
        self.e.state
    }
    /// Flags.
    #[inline(always)]
    pub fn flags(&self) -> ConnFlags {
        ConnFlags(self.e.flags & ConnFlags::PUBLIC_MASK)
    }
    /// The SYN proxy translates this connection's sequence numbers.
    #[inline(always)]
    pub fn proxied(&self) -> bool {
        self.e.proxy_phase != 0
    }

    /// [`ConnTable::touch_secs`] on the held entry.
    #[inline(always)]
    pub fn touch_secs(&mut self, now: Instant, secs: u32) -> Refile {
        self.e.expires = secs_deadline(now, secs);
        self.e.timeout_ms = secs_ms(secs);
        Refile(filed_too_late(self.e, self.cursor))
    }

    /// [`InHit::touch_secs`] with the timeout computed beforehand.
    #[inline(always)]
    pub fn rearm(&mut self, now: Instant, r: Rearm) -> Refile {
        self.e.expires = now.0.saturating_add(r.ns);
        self.e.timeout_ms = r.ms;
        Refile(filed_too_late(self.e, self.cursor))
    }

    /// [`ConnTable::tcp_transition`] on the held entry (a connection, not a template).
    /// `None` for a non-TCP entry or an unknown state.
    #[inline]
    pub fn tcp_transition(
        &mut self,
        dir: Direction,
        flags: TcpFlags,
        timeouts: &StateTimeouts,
        now: Instant,
    ) -> Option<(Transition, Refile)> {
        let e = &mut *self.e;
        if e.protocol != TCP {
            return None;
        }
        let t = tcp_step(e, dir, flags, timeouts, now)?;
        Some((t, Refile(filed_too_late(e, self.cursor))))
    }
}

/// A SYN-proxied connection's sequence bookkeeping (`director/synproxy.rs`): what the
/// director needs between the client's cookie ACK and the real server's SYN-ACK, then the
/// sequence delta. Phase 0 means the connection is not proxied; the meaning of `a` and
/// `b` in the other phases is the director's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqProxy {
    /// 0: not proxied; otherwise the director's phase and flags.
    pub phase: u8,
    /// First word.
    pub a: u32,
    /// Second word.
    pub b: u32,
}

/// An entry's connection-sync bookkeeping: the kernel's `cp->in_pkts` (input packets, for
/// `sync_threshold` / `sync_period`) and `cp->old_state` (the state when it was last
/// synced). Zero and the initial state for a new entry; the director keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncMeta {
    /// Input packets counted.
    pub in_pkts: u32,
    /// The protocol state when the entry was last synced.
    pub old_state: u8,
}

/// The table is full and no entry could be reclaimed (see [`TableFullPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection table full")
    }
}

impl std::error::Error for TableFull {}

/// The result of a successful insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted<A> {
    /// The new entry.
    pub id: ConnId,
    /// An entry removed to make room (the table was full): the director must unbind it
    /// from its real server exactly as for an expired entry.
    pub evicted: Option<Conn<A>>,
}

/// One slot. 88 bytes for IPv4 and for IPv6 (see the memory test): the virtual, real-server
/// and local addresses and the two ids are the [`Binding`], inline for IPv4, interned for
/// IPv6.
#[derive(Clone, Copy, Default)]
struct Entry<A: ConnAddr> {
    expires: u64,
    caddr: A,
    bind: A::Bind,
    timeout_ms: u32,
    control: u32,
    n_control: u32,
    next_in: u32,
    next_out: u32,
    wheel_prev: u32,
    wheel_next: u32,
    /// Connection sync: input packets counted (`cp->in_pkts`).
    in_pkts: u32,
    /// Client and virtual ports as on the wire: their four bytes in network order, read
    /// in the machine's order ([`wire_ports`]); a frame's port bytes compare as they are.
    ports: u32,
    dport: u16,
    lport: u16,
    wheel_idx: u16,
    protocol: u8,
    state: u8,
    flags: u8,
    /// Connection sync: the state last synced (`cp->old_state`).
    old_state: u8,
    /// SYN proxy (`director/synproxy.rs`): see [`SeqProxy`]; phase 0 = not proxied.
    proxy_phase: u8,
    proxy_a: u32,
    proxy_b: u32,
}

impl<A: ConnAddr> Entry<A> {
    /// The entry's binding.
    #[inline(always)]
    fn b<'a>(&'a self, bs: &'a Bindings<A>) -> &'a Binding<A> {
        A::binding(&self.bind, bs)
    }
    #[inline]
    fn occupied(&self) -> bool {
        self.flags & OCCUPIED != 0
    }
    #[inline]
    fn is_template(&self) -> bool {
        self.flags & ConnFlags::TEMPLATE != 0
    }
    fn fullnat(&self) -> bool {
        self.flags & ConnFlags::FULLNAT != 0
    }
    /// Whether lookups may return it at `now`.
    #[inline]
    fn live(&self, now: u64) -> bool {
        self.expires > now || (self.is_template() && self.n_control > 0)
    }
    /// Client port.
    #[inline(always)]
    fn cport(&self) -> u16 {
        let [a, b, _, _] = self.ports.to_ne_bytes();
        u16::from_be_bytes([a, b])
    }
    /// Virtual port.
    #[inline(always)]
    fn vport(&self) -> u16 {
        let [_, _, a, b] = self.ports.to_ne_bytes();
        u16::from_be_bytes([a, b])
    }
    #[inline(always)]
    fn matches_in(&self, k: &WireKey<A>, bs: &Bindings<A>) -> bool {
        self.protocol == k.protocol
            && self.ports == k.ports
            && self.caddr == k.caddr
            && self.b(bs).vaddr == k.vaddr
    }
    fn out_pair(&self, bs: &Bindings<A>) -> (A, u16) {
        if self.fullnat() {
            (self.b(bs).laddr, self.lport)
        } else {
            (self.caddr, self.cport())
        }
    }
    fn matches_out(&self, k: &OutKey<A>, bs: &Bindings<A>) -> bool {
        let (a, p) = self.out_pair(bs);
        self.protocol == k.protocol
            && self.dport == k.sport
            && p == k.dport
            && self.b(bs).daddr == k.saddr
            && a == k.daddr
    }
    #[inline]
    fn in_hash(&self, seed: &Seed, bs: &Bindings<A>) -> u64 {
        A::hash2(
            seed,
            &self.caddr,
            &self.b(bs).vaddr,
            wire_tail(self.protocol, self.ports),
        )
    }
    fn out_hash(&self, seed: &Seed, bs: &Bindings<A>) -> u64 {
        let (a, p) = self.out_pair(bs);
        out_hash(seed, self.protocol, &self.b(bs).daddr, self.dport, &a, p)
    }
    fn snapshot(&self, bs: &Bindings<A>) -> Conn<A> {
        let b = self.b(bs);
        Conn {
            protocol: self.protocol,
            caddr: self.caddr,
            cport: self.cport(),
            vaddr: b.vaddr,
            vport: self.vport(),
            daddr: b.daddr,
            dport: self.dport,
            local: self.fullnat().then_some((b.laddr, self.lport)),
            dest: b.dest,
            service: b.service,
            state: self.state,
            flags: ConnFlags(self.flags & ConnFlags::PUBLIC_MASK),
            timeout: Duration::from_millis(u64::from(self.timeout_ms)),
            expires: Instant(self.expires),
            control: (self.control != NIL).then_some(ConnId(self.control)),
            n_control: self.n_control,
        }
    }
}

/// One TCP segment through the state machine on entry `e` (`set_tcp_state()`): the new
/// state, the NO_OUTPUT and INACTIVE flags and the new state's timeout; the caller re-files
/// the entry when its timer moved. `None` for an unknown state.
#[inline(always)]
fn tcp_step<A: ConnAddr>(
    e: &mut Entry<A>,
    dir: Direction,
    flags: TcpFlags,
    timeouts: &StateTimeouts,
    now: Instant,
) -> Option<Transition> {
    let state = TcpState::from_index(e.state)?;
    let t = transition_with(
        timeouts.secure(),
        state,
        ConnFlags(e.flags & ConnFlags::PUBLIC_MASK),
        dir,
        flags,
    );
    e.state = t.new as u8;
    e.flags = (e.flags & !ConnFlags::PUBLIC_MASK) | (t.flags.0 & ConnFlags::PUBLIC_MASK);
    let secs = timeouts.tcp_secs(t.new);
    e.expires = secs_deadline(now, secs);
    e.timeout_ms = secs_ms(secs);
    Some(t)
}

/// Whether an entry's expiry now comes before the wheel slot it is filed in (with the
/// wheel's cursor at `cursor`): entries may sit in a slot earlier than their expiry, never
/// later, so such an entry must move (`ConnTable::refile`).
#[inline(always)]
fn filed_too_late<A: ConnAddr>(e: &Entry<A>, cursor: u64) -> bool {
    let filed = cursor + (u64::from(e.wheel_idx).wrapping_sub(cursor) & WHEEL_MASK);
    e.expires >> TICK_SHIFT < filed
}

/// [`duration_ms`] of a whole number of seconds, without the `u128` arithmetic.
#[inline]
fn secs_ms(secs: u32) -> u32 {
    u32::try_from(u64::from(secs) * 1000).unwrap_or(u32::MAX)
}

/// [`deadline`] of a whole number of seconds, without the `u128` arithmetic.
#[inline]
fn secs_deadline(now: Instant, secs: u32) -> u64 {
    now.0.saturating_add(u64::from(secs) * 1_000_000_000)
}

fn duration_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn deadline(now: Instant, timeout: Duration) -> u64 {
    now.0
        .saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX))
}

/// log2 of the entries in a full slab chunk.
const CHUNK_SHIFT: u32 = 14;
/// Entries in a full slab chunk: 16,384 (1.25 MiB for IPv4, 2 MiB for IPv6), small enough
/// that building one (allocating and touching its pages) off the packet path is quick.
pub const CHUNK_ENTRIES: usize = 1 << CHUNK_SHIFT;
const CHUNK_MASK: u32 = (1 << CHUNK_SHIFT) - 1;
/// Old hash buckets moved to the new heads per insert while the index grows.
const MIGRATE_ON_INSERT: usize = 8;
/// Old hash buckets moved per [`ConnTable::expire`] call while the index grows.
const MIGRATE_ON_EXPIRE: usize = 1024;
/// Fresh slots left below which the table asks for its next chunk.
const LOW_WATER: u32 = (CHUNK_ENTRIES / 4) as u32;

/// The slab: entries in fixed-size chunks. Slot `i` lives in chunk `i >> CHUNK_SHIFT` at
/// `i & CHUNK_MASK`; every chunk but the last one allowed by the limit is full size, so
/// slots are handed out in order (`used`) and recycled through the free list.
struct Slab<A: ConnAddr> {
    /// Capacity reserved at construction for every chunk the limit allows: pushing a chunk
    /// never reallocates this vector.
    chunks: Vec<Box<[Entry<A>]>>,
    /// Slots in all chunks.
    slots: u32,
    /// Slots handed out at least once (the bump pointer).
    used: u32,
}

impl<A: ConnAddr> Slab<A> {
    #[inline(always)]
    fn get(&self, i: u32) -> Option<&Entry<A>> {
        self.chunks
            .get((i >> CHUNK_SHIFT) as usize)?
            .get((i & CHUNK_MASK) as usize)
    }

    #[inline(always)]
    fn get_mut(&mut self, i: u32) -> Option<&mut Entry<A>> {
        self.chunks
            .get_mut((i >> CHUNK_SHIFT) as usize)?
            .get_mut((i & CHUNK_MASK) as usize)
    }

    /// Every slot handed out so far, with its index.
    fn iter(&self) -> impl Iterator<Item = (u32, &Entry<A>)> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .take(self.used as usize)
            .enumerate()
            .map(|(i, e)| (i as u32, e))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry<A>> + '_ {
        self.chunks
            .iter_mut()
            .flat_map(|c| c.iter_mut())
            .take(self.used as usize)
    }
}

/// One hash index (in or out): bucket heads, and while it grows the old heads being
/// migrated. An old bucket below `migrated` has been moved: its keys are found in the new
/// heads; the others are still in the old heads (`ip_vs_conn_tab` has a fixed size; this
/// incremental rehash is rvs's, so that growing never stalls forwarding).
struct Index {
    heads: Box<[u32]>,
    mask: u64,
    old: Box<[u32]>,
    old_mask: u64,
    migrated: usize,
}

impl Index {
    fn new(buckets: usize) -> Index {
        Index {
            heads: vec![NIL; buckets].into_boxed_slice(),
            mask: buckets as u64 - 1,
            old: Box::new([]),
            old_mask: 0,
            migrated: 0,
        }
    }

    fn migrating(&self) -> bool {
        !self.old.is_empty()
    }

    /// The head a hash's chain starts at.
    #[inline(always)]
    fn head(&self, h: u64) -> u32 {
        if self.migrating() {
            let ob = (h & self.old_mask) as usize;
            if ob >= self.migrated {
                return self.old.get(ob).copied().unwrap_or(NIL);
            }
        }
        self.heads
            .get((h & self.mask) as usize)
            .copied()
            .unwrap_or(NIL)
    }

    #[inline(always)]
    fn head_mut(&mut self, h: u64) -> Option<&mut u32> {
        if self.migrating() {
            let ob = (h & self.old_mask) as usize;
            if ob >= self.migrated {
                return self.old.get_mut(ob);
            }
        }
        self.heads.get_mut((h & self.mask) as usize)
    }

    /// Start migrating to `heads` (all NIL, a power of two longer than the current).
    fn start(&mut self, heads: Box<[u32]>) -> Option<Box<[u32]>> {
        if self.migrating() || heads.len() <= self.heads.len() || !heads.len().is_power_of_two() {
            return Some(heads);
        }
        self.old_mask = self.mask;
        self.mask = heads.len() as u64 - 1;
        self.old = core::mem::replace(&mut self.heads, heads);
        self.migrated = 0;
        None
    }

    fn buckets(&self) -> usize {
        self.heads.len()
    }

    fn bytes(&self) -> usize {
        (self.heads.len() + self.old.len()) * size_of::<u32>()
    }
}

/// What a growing table asks for ([`ConnTable::need`]), to be built off the packet path
/// with [`Provision::build`] and handed back with [`ConnTable::provide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A slab chunk of this many entries.
    Chunk(usize),
    /// New in and out hash heads of this many buckets each.
    Heads(usize),
    /// An arena of this many interned bindings (IPv6; see [`Binding`]).
    Bindings(usize),
}

/// Memory for a table, built where allocating is allowed (a helper thread, or between
/// batches); also what the table hands back when it retires memory
/// ([`ConnTable::provide`]'s return), to be dropped off the packet path.
pub struct Provision<A: ConnAddr>(ProvisionKind<A>);

enum ProvisionKind<A: ConnAddr> {
    Chunk(Box<[Entry<A>]>),
    Heads(Box<[u32]>, Box<[u32]>),
    Bindings(Bindings<A>),
}

impl<A: ConnAddr> Provision<A> {
    /// Allocate what `need` asks for and write every page of it, so the worker that links
    /// it in never takes a page fault on first touch.
    pub fn build(need: Need) -> Provision<A> {
        match need {
            Need::Chunk(n) => Provision(ProvisionKind::Chunk(
                vec![Entry::default(); n.min(CHUNK_ENTRIES)].into_boxed_slice(),
            )),
            Need::Heads(n) => {
                let n = n.max(1).next_power_of_two();
                Provision(ProvisionKind::Heads(
                    vec![NIL; n].into_boxed_slice(),
                    vec![NIL; n].into_boxed_slice(),
                ))
            }
            Need::Bindings(n) => Provision(ProvisionKind::Bindings(Bindings::with_capacity(n))),
        }
    }

    /// Bytes this provision holds.
    pub fn bytes(&self) -> usize {
        match &self.0 {
            ProvisionKind::Chunk(c) => c.len() * size_of::<Entry<A>>(),
            ProvisionKind::Heads(a, b) => (a.len() + b.len()) * size_of::<u32>(),
            ProvisionKind::Bindings(b) => b.bytes(),
        }
    }
}

impl<A: ConnAddr> fmt::Debug for Provision<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ProvisionKind::Chunk(c) => write!(f, "Provision::Chunk({})", c.len()),
            ProvisionKind::Heads(a, _) => write!(f, "Provision::Heads({})", a.len()),
            ProvisionKind::Bindings(b) => write!(f, "Provision::Bindings({})", b.capacity()),
        }
    }
}

/// Bytes of a table's fixed part (header and expiry wheel), whatever its size.
fn fixed_bytes<A: ConnAddr>() -> usize {
    size_of::<ConnTable<A>>() + WHEEL_SLOTS * size_of::<u32>() + WHEEL_SLOTS / 64 * size_of::<u64>()
}

/// How many entries a memory limit of `bytes` allows a table of family `A`: the fixed part
/// and, per entry, the entry and its share of the two hash indexes at the worst load the
/// table allows while growing (two buckets per entry and direction while the old heads are
/// still being migrated).
pub fn entries_for_bytes<A: ConnAddr>(bytes: usize) -> usize {
    let per = size_of::<Entry<A>>() + 4 * size_of::<u32>();
    bytes.saturating_sub(fixed_bytes::<A>() + first_bindings_bytes::<A>()) / per
}

/// Slots of a growing IPv6 table's first binding arena (8 KiB; a fixed table's holds a
/// binding per entry and one more).
const FIRST_BINDINGS: usize = 128;

/// Bytes of a growing table's first binding arena (none for IPv4).
fn first_bindings_bytes<A: ConnAddr>() -> usize {
    if A::INTERNED {
        Bindings::<A>::bytes_for(FIRST_BINDINGS)
    } else {
        0
    }
}

impl ConnTable<[u8; 4]> {
    /// [`ConnTable::lookup_in_mut`] of an IPv4 frame's key as it is on the wire: `addrs`
    /// the eight address bytes (source, destination) and `ports` the four port bytes
    /// (source, destination), each read in the machine's order. Hashes without
    /// converting them (the same hash as the [`InKey`]).
    #[inline(always)]
    pub fn lookup_in_wire(
        &mut self,
        protocol: u8,
        addrs: u64,
        ports: u32,
        now: Instant,
    ) -> Option<InHit<'_, [u8; 4]>> {
        let h = hash_v4_wire(&self.seed, addrs, wire_tail(protocol, ports));
        let [a0, a1, a2, a3, b0, b1, b2, b3] = addrs.to_ne_bytes();
        let key = WireKey {
            protocol,
            caddr: [a0, a1, a2, a3],
            vaddr: [b0, b1, b2, b3],
            ports,
        };
        self.find_in_mut(h, &key, now)
    }
}

/// An IPv4 connection table.
pub type ConnTableV4 = ConnTable<[u8; 4]>;
/// An IPv6 connection table.
pub type ConnTableV6 = ConnTable<[u8; 16]>;

/// A connection table for one address family, growing in chunks up to its limit. See the
/// module documentation.
pub struct ConnTable<A: ConnAddr> {
    slab: Slab<A>,
    /// The interned bindings (IPv6; empty for IPv4).
    binds: Bindings<A>,
    /// Most entries the table may hold (the entry limit, and what the byte limit allows).
    max_entries: u32,
    /// Most bytes the table may allocate ([`ConnTable::memory_bytes`] never exceeds it
    /// through growth).
    limit_bytes: usize,
    free: u32,
    len: u32,
    templates: u32,
    in_idx: Index,
    out_idx: Index,
    /// Memory retired by the table (old hash heads), for the caller to drop off the
    /// packet path.
    retired: Option<Provision<A>>,
    wheel: Vec<u32>,
    wheel_bits: Vec<u64>,
    cursor: u64,
    seed: Seed,
    policy: TableFullPolicy,
}

impl<A: ConnAddr> fmt::Debug for ConnTable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnTable")
            .field("family", &A::FAMILY)
            .field("len", &self.len)
            .field("capacity", &self.slab.slots)
            .field("max_entries", &self.max_entries)
            .field("buckets", &self.in_idx.buckets())
            .field("templates", &self.templates)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<A: ConnAddr> ConnTable<A> {
    /// A table for at most `capacity` entries (templates included; clamped to 2^32 − 2),
    /// hashing with secrets derived from `seed`, applying `policy` when full, with every
    /// chunk and a bucket per entry allocated here: it never grows and needs no
    /// [`ConnTable::provide`]. An IPv6 table's arena of interned bindings gets a slot per
    /// entry (and one more), the worst case of every entry's binding its own: 68 bytes per
    /// entry more than [`ConnTable::growable`] needs for a few bindings.
    pub fn new(capacity: usize, seed: u64, policy: TableFullPolicy) -> Self {
        let mut t = Self::growable(capacity, usize::MAX, capacity, seed, policy);
        t.grow_now(capacity);
        if A::INTERNED {
            // Every entry may hold a binding of its own; one more slot so that the arena
            // never refuses what the full table's eviction makes room for.
            let n = t.max_entries as usize + 1;
            if n > t.binds.capacity() {
                let mut b = Bindings::with_capacity(n);
                if b.take_over(&t.seed, &t.binds) {
                    t.binds = b;
                }
            }
        }
        t
    }

    /// Construction-time growth: chunks up to `target` slots, then heads with at least a
    /// bucket per slot, migrated at once (the table is empty).
    fn grow_now(&mut self, target: usize) {
        let target = target.min(self.max_entries as usize);
        while (self.slab.slots as usize) < target {
            let n = CHUNK_ENTRIES.min(target - self.slab.slots as usize);
            if self.provide(Provision::build(Need::Chunk(n))).is_some() {
                break;
            }
        }
        while self.in_idx.buckets() < self.slab.slots as usize {
            let grow = self.in_idx.buckets() * 2;
            if self.provide(Provision::build(Need::Heads(grow))).is_some() {
                break;
            }
            self.migrate(usize::MAX);
        }
        self.retired = None;
    }

    /// A table that starts with one chunk and at least `buckets` hash buckets (a power of
    /// two) and grows, when the caller hands it memory ([`ConnTable::need`],
    /// [`ConnTable::provide`]), up to `max_entries` entries and `limit_bytes` bytes of
    /// [`ConnTable::memory_bytes`], whichever comes first.
    pub fn growable(
        max_entries: usize,
        limit_bytes: usize,
        buckets: usize,
        seed: u64,
        policy: TableFullPolicy,
    ) -> Self {
        let max_entries = max_entries
            .min(NIL as usize - 1)
            .min(entries_for_bytes::<A>(limit_bytes));
        let max_chunks = max_entries.div_ceil(CHUNK_ENTRIES);
        // Chunks are the unit of growth: the first is full size too (or the whole table
        // when the limit is below a chunk), so that every later one starts on a chunk
        // boundary.
        let first = max_entries.min(CHUNK_ENTRIES);
        let buckets = buckets
            .min(max_entries.max(1).next_power_of_two())
            .max(first)
            .max(1)
            .next_power_of_two();
        let mut chunks = Vec::with_capacity(max_chunks);
        if first > 0 {
            chunks.push(vec![Entry::default(); first].into_boxed_slice());
        }
        let binds = if A::INTERNED {
            Bindings::with_capacity(FIRST_BINDINGS.min(max_entries + 1))
        } else {
            Bindings::with_capacity(0)
        };
        ConnTable {
            slab: Slab {
                chunks,
                slots: first as u32,
                used: 0,
            },
            binds,
            max_entries: max_entries as u32,
            limit_bytes,
            free: NIL,
            len: 0,
            templates: 0,
            in_idx: Index::new(buckets),
            out_idx: Index::new(buckets),
            retired: None,
            wheel: vec![NIL; WHEEL_SLOTS],
            wheel_bits: vec![0; WHEEL_SLOTS / 64],
            cursor: 0,
            seed: Seed::new(seed),
            policy,
        }
    }

    /// Change the limits (a reload): growth stops at the new ones; nothing already
    /// allocated is released. May allocate (control plane only).
    pub fn set_limits(&mut self, max_entries: usize, limit_bytes: usize) {
        let max = max_entries
            .min(NIL as usize - 1)
            .min(entries_for_bytes::<A>(limit_bytes));
        self.max_entries = max as u32;
        self.limit_bytes = limit_bytes;
        let chunks = max.div_ceil(CHUNK_ENTRIES);
        if chunks > self.slab.chunks.capacity() {
            self.slab
                .chunks
                .reserve_exact(chunks - self.slab.chunks.len());
        }
    }

    /// Entries the slab has room for now (grows up to [`ConnTable::max_entries`]).
    pub fn capacity(&self) -> usize {
        self.slab.slots as usize
    }

    /// The most entries the table may hold: its entry limit, lowered to what its byte
    /// limit allows.
    pub fn max_entries(&self) -> usize {
        self.max_entries as usize
    }

    /// The byte limit growth honours (`usize::MAX` for none).
    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// Hash buckets of each index (the size `ipvsadm -L` reports as `size=`, as the kernel
    /// reports `ip_vs_conn_tab_size`).
    pub fn buckets(&self) -> usize {
        self.in_idx.buckets()
    }

    /// Entries in the table, templates and not-yet-swept expired ones included.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Persistence templates among [`ConnTable::len`].
    pub fn templates(&self) -> usize {
        self.templates as usize
    }

    /// The policy applied when full.
    pub fn policy(&self) -> TableFullPolicy {
        self.policy
    }

    /// Change the policy applied when full.
    pub fn set_policy(&mut self, policy: TableFullPolicy) {
        self.policy = policy;
    }

    /// Bytes the table has allocated: its header, the expiry wheel, every slab chunk, the
    /// hash heads (old ones too while they are migrated) and the arena of interned bindings.
    pub fn memory_bytes(&self) -> usize {
        fixed_bytes::<A>()
            + self.slab.slots as usize * size_of::<Entry<A>>()
            + self.in_idx.bytes()
            + self.out_idx.bytes()
            + self.binds.bytes()
    }

    /// Interned bindings in use (IPv6; always 0 for IPv4, whose entries hold theirs).
    pub fn bindings(&self) -> usize {
        self.binds.live()
    }

    /// The room left under the memory limit, in bytes: what is not allocated yet plus the
    /// free slots of the chunks that are. The defence strategies' "available memory".
    pub fn room_bytes(&self) -> usize {
        let limit = self
            .limit_bytes
            .min(fixed_bytes::<A>() + self.max_entries as usize * (size_of::<Entry<A>>() + 16));
        let unallocated = limit.saturating_sub(self.memory_bytes());
        let free_slots = (self.slab.slots - self.len) as usize * size_of::<Entry<A>>();
        unallocated + free_slots
    }

    /// What the table wants built to keep growing, if anything: new hash heads once there
    /// are more slots than buckets (and no migration is running), else a chunk once fewer
    /// than a quarter chunk of free slots is left. `None` at the limit.
    pub fn need(&self) -> Option<Need> {
        let slots = self.slab.slots as usize;
        let buckets = self.in_idx.buckets();
        if !self.in_idx.migrating() && !self.out_idx.migrating() && buckets < slots {
            let grow = buckets * 2;
            if self.memory_bytes() + 2 * grow * size_of::<u32>() <= self.limit_bytes {
                return Some(Need::Heads(grow));
            }
        }
        if A::INTERNED && self.binds.low() {
            let cap = self.binds.capacity();
            let n = (cap * 2).min(self.max_entries as usize + 1);
            if n > cap && self.memory_bytes() + Bindings::<A>::bytes_for(n) <= self.limit_bytes {
                return Some(Need::Bindings(n));
            }
        }
        if self.slab.slots - self.len >= LOW_WATER.min(self.max_entries)
            || slots >= self.max_entries as usize
        {
            return None;
        }
        let room = self.limit_bytes.saturating_sub(self.memory_bytes()) / size_of::<Entry<A>>();
        // A last chunk shorter than a full one (the limit was below it when it was built,
        // and a reload has raised the limit since) is replaced by a longer one: the next
        // chunk must start on a chunk boundary.
        let partial = slots % CHUNK_ENTRIES;
        let n = CHUNK_ENTRIES
            .min(self.max_entries as usize - (slots - partial))
            .min(room + partial);
        (n > partial).then_some(Need::Chunk(n))
    }

    /// Link in memory built for [`ConnTable::need`]: a chunk is appended in O(1), new heads
    /// start an incremental migration (a bounded number of buckets moves on each insert
    /// and each [`ConnTable::expire`]); a chunk for a table whose last chunk is short (its
    /// limit was raised since) replaces that chunk, entries copied at their indices.
    /// Returns what the table does not use (a provision that no longer fits, or the short
    /// chunk just replaced), to be dropped off the packet path.
    pub fn provide(&mut self, p: Provision<A>) -> Option<Provision<A>> {
        match p.0 {
            ProvisionKind::Chunk(c) => {
                let slots = self.slab.slots as usize;
                let partial = slots % CHUNK_ENTRIES;
                if partial != 0 {
                    return self.replace_last_chunk(c, partial);
                }
                let fits = slots.is_multiple_of(CHUNK_ENTRIES)
                    && slots + c.len() <= self.max_entries as usize
                    && self.memory_bytes() + c.len() * size_of::<Entry<A>>() <= self.limit_bytes
                    && self.slab.chunks.len() < self.slab.chunks.capacity()
                    && !c.is_empty();
                if !fits {
                    return Some(Provision(ProvisionKind::Chunk(c)));
                }
                self.slab.slots += c.len() as u32;
                self.slab.chunks.push(c);
                None
            }
            ProvisionKind::Heads(a, b) => {
                let fits = !self.in_idx.migrating()
                    && !self.out_idx.migrating()
                    && a.len() == b.len()
                    && a.len() > self.in_idx.buckets()
                    && a.iter().all(|&h| h == NIL)
                    && b.iter().all(|&h| h == NIL)
                    && self.memory_bytes() + (a.len() + b.len()) * size_of::<u32>()
                        <= self.limit_bytes;
                if !fits {
                    return Some(Provision(ProvisionKind::Heads(a, b)));
                }
                let ra = self.in_idx.start(a);
                let rb = self.out_idx.start(b);
                match (ra, rb) {
                    (None, None) => None,
                    (Some(a), Some(b)) => Some(Provision(ProvisionKind::Heads(a, b))),
                    // Lengths were checked equal and neither index was migrating.
                    _ => None,
                }
            }
            ProvisionKind::Bindings(mut b) => {
                // The old arena is handed back, the new one holds the same bindings at the
                // same indices.
                let fits = A::INTERNED
                    && b.capacity() > self.binds.capacity()
                    && self.memory_bytes() - self.binds.bytes() + b.bytes() <= self.limit_bytes;
                if !fits || !b.take_over(&self.seed, &self.binds) {
                    return Some(Provision(ProvisionKind::Bindings(b)));
                }
                let old = core::mem::replace(&mut self.binds, b);
                Some(Provision(ProvisionKind::Bindings(old)))
            }
        }
    }

    /// [`ConnTable::provide`] of a chunk while the last chunk holds `partial` slots, fewer
    /// than a full chunk: the entries move into the longer chunk `c` at the same offsets
    /// (so every slot keeps its index and every link stays valid) and the short chunk is
    /// handed back to be dropped off the packet path. A copy of at most one chunk, once
    /// per raised limit.
    fn replace_last_chunk(
        &mut self,
        mut c: Box<[Entry<A>]>,
        partial: usize,
    ) -> Option<Provision<A>> {
        let base = self.slab.slots as usize - partial;
        let fits = c.len() > partial
            && c.len() <= CHUNK_ENTRIES
            && base + c.len() <= self.max_entries as usize
            && self.memory_bytes() + (c.len() - partial) * size_of::<Entry<A>>()
                <= self.limit_bytes;
        let Some(last) = self.slab.chunks.last_mut().filter(|l| l.len() == partial) else {
            return Some(Provision(ProvisionKind::Chunk(c)));
        };
        if !fits {
            return Some(Provision(ProvisionKind::Chunk(c)));
        }
        c[..partial].copy_from_slice(last);
        let old = core::mem::replace(last, c);
        self.slab.slots = (base + self.slab.chunks.last().map_or(0, |l| l.len())) as u32;
        Some(Provision(ProvisionKind::Chunk(old)))
    }

    /// Memory the table no longer uses (hash heads left behind by a finished migration),
    /// for the caller to drop off the packet path.
    pub fn take_retired(&mut self) -> Option<Provision<A>> {
        self.retired.take()
    }

    /// Whether a hash-index migration is running.
    pub fn migrating(&self) -> bool {
        self.in_idx.migrating() || self.out_idx.migrating()
    }

    /// Move up to `buckets` old buckets of each index into the new heads.
    fn migrate(&mut self, buckets: usize) {
        let seed = self.seed;
        for inward in [true, false] {
            let idx = if inward {
                &mut self.in_idx
            } else {
                &mut self.out_idx
            };
            if !idx.migrating() {
                continue;
            }
            let end = idx.migrated.saturating_add(buckets).min(idx.old.len());
            for b in idx.migrated..end {
                let mut i = core::mem::replace(&mut idx.old[b], NIL);
                while let Some(e) = self.slab.get_mut(i) {
                    let next = if inward { e.next_in } else { e.next_out };
                    let h = if inward {
                        e.in_hash(&seed, &self.binds)
                    } else {
                        e.out_hash(&seed, &self.binds)
                    };
                    let Some(head) = idx.heads.get_mut((h & idx.mask) as usize) else {
                        break;
                    };
                    if inward {
                        e.next_in = *head;
                    } else {
                        e.next_out = *head;
                    }
                    *head = i;
                    i = next;
                }
            }
            idx.migrated = end;
            if end >= idx.old.len() {
                let old = core::mem::take(&mut idx.old);
                idx.migrated = 0;
                self.retired = match self.retired.take() {
                    None => Some(Provision(ProvisionKind::Heads(old, Box::new([])))),
                    Some(Provision(ProvisionKind::Heads(a, _))) => {
                        Some(Provision(ProvisionKind::Heads(a, old)))
                    }
                    Some(other) => Some(other),
                };
            }
        }
    }

    #[inline]
    fn in_hash(&self, protocol: u8, caddr: &A, cport: u16, vaddr: &A, vport: u16) -> u64 {
        A::hash2(&self.seed, caddr, vaddr, ports_tail(protocol, cport, vport))
    }

    fn out_hash(&self, protocol: u8, saddr: &A, sport: u16, daddr: &A, dport: u16) -> u64 {
        out_hash(&self.seed, protocol, saddr, sport, daddr, dport)
    }

    fn entry(&self, id: ConnId) -> Option<&Entry<A>> {
        self.slab.get(id.0).filter(|e| e.occupied())
    }

    #[inline]
    fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry<A>> {
        self.slab.get_mut(id.0).filter(|e| e.occupied())
    }

    /// The live (non-template) connection with this in key (`ip_vs_conn_in_get()`).
    #[inline]
    pub fn lookup_in(&self, key: &InKey<A>, now: Instant) -> Option<ConnId> {
        self.find_in(key, now, false)
    }

    /// The live persistence template with this key (`ip_vs_ct_in_get()`). A template
    /// that still controls connections is live even past its expiry.
    pub fn lookup_template(&self, key: &InKey<A>, now: Instant) -> Option<ConnId> {
        self.find_in(key, now, true)
    }

    #[inline]
    fn find_in(&self, key: &InKey<A>, now: Instant, template: bool) -> Option<ConnId> {
        let h = self.in_hash(key.protocol, &key.caddr, key.cport, &key.vaddr, key.vport);
        let key = WireKey::of(key);
        let mut i = self.in_idx.head(h);
        while let Some(e) = self.slab.get(i) {
            if e.is_template() == template && e.matches_in(&key, &self.binds) && e.live(now.0) {
                return Some(ConnId(i));
            }
            i = e.next_in;
        }
        None
    }

    /// The live connection a reply belongs to (`ip_vs_conn_out_get()`). Templates are not
    /// in the out index.
    #[inline]
    pub fn lookup_out(&self, key: &OutKey<A>, now: Instant) -> Option<ConnId> {
        let h = self.out_hash(key.protocol, &key.saddr, key.sport, &key.daddr, key.dport);
        let mut i = self.out_idx.head(h);
        while let Some(e) = self.slab.get(i) {
            if e.matches_out(key, &self.binds) && e.live(now.0) {
                return Some(ConnId(i));
            }
            i = e.next_out;
        }
        None
    }

    /// The fields the packet path needs of an entry, live or not yet swept.
    #[inline]
    pub fn hot(&self, id: ConnId) -> Option<HotConn<A>> {
        let e = self.entry(id)?;
        let b = e.b(&self.binds);
        Some(HotConn {
            caddr: e.caddr,
            vaddr: b.vaddr,
            local: e.fullnat().then_some((b.laddr, e.lport)),
            dest: b.dest,
            cport: e.cport(),
            vport: e.vport(),
            dport: e.dport,
            protocol: e.protocol,
            flags: ConnFlags(e.flags & ConnFlags::PUBLIC_MASK),
            state: e.state,
            proxied: e.proxy_phase != 0,
        })
    }

    /// The live (non-template) connection with this in key, held for reading and
    /// re-arming in place (the packet path's one probe: [`InHit`]). The same entry as
    /// [`ConnTable::lookup_in`].
    #[inline(always)]
    pub fn lookup_in_mut(&mut self, key: &InKey<A>, now: Instant) -> Option<InHit<'_, A>> {
        let h = self.in_hash(key.protocol, &key.caddr, key.cport, &key.vaddr, key.vport);
        self.find_in_mut(h, &WireKey::of(key), now)
    }

    /// [`ConnTable::lookup_in_mut`] with the key's hash at hand.
    #[inline(always)]
    fn find_in_mut(&mut self, h: u64, key: &WireKey<A>, now: Instant) -> Option<InHit<'_, A>> {
        let mut i = self.in_idx.head(h);
        let cursor = self.cursor;
        // Found by index first, borrowed mutably once (the chain walk reads only).
        loop {
            let e = self.slab.get(i)?;
            if !e.is_template() && e.matches_in(key, &self.binds) && e.expires > now.0 {
                break;
            }
            i = e.next_in;
        }
        let e = self.slab.get_mut(i)?;
        Some(InHit {
            id: ConnId(i),
            e,
            bs: &self.binds,
            cursor,
        })
    }

    /// Move an entry a re-arm through [`InHit`] left filed after its expiry (see
    /// [`Refile`]).
    #[inline(always)]
    pub fn refile_if(&mut self, id: ConnId, r: Refile) {
        if r.0 {
            self.refile(id.0);
        }
    }

    /// A copy of the entry, live or not yet swept.
    pub fn get(&self, id: ConnId) -> Option<Conn<A>> {
        self.entry(id).map(|e| e.snapshot(&self.binds))
    }

    /// Whether the entry exists and lookups would return it at `now`.
    pub fn is_live(&self, id: ConnId, now: Instant) -> bool {
        self.entry(id).is_some_and(|e| e.live(now.0))
    }

    /// Add an entry expiring at `now + timeout`. On a full table, first tries to reclaim
    /// an entry from the head of the expiry wheel (see [`TableFullPolicy`]):
    /// - `DropNew`: only an already-expired entry (not a template controlling connections)
    ///   may be reclaimed; otherwise `Err(TableFull)`.
    /// - `EvictEmbryonic`: as `DropNew`, or else the TCP connection closest to expiry that
    ///   is not ESTABLISHED (and not a template) among the first 32 entries of the wheel,
    ///   which holds entries roughly in expiry order; `Err(TableFull)` if there is none.
    pub fn insert(&mut self, new: NewConn<A>, now: Instant) -> Result<Inserted<A>, TableFull> {
        let mut evicted = None;
        let id = self.insert_with(new, now, |c| evicted = Some(c))?;
        Ok(Inserted { id, evicted })
    }

    /// [`ConnTable::insert`] handing an entry removed to make room to `on_evicted` (at
    /// once) instead of returning it: the new connection path's form, without copying a
    /// [`Conn`] out when nothing was evicted.
    pub fn insert_with(
        &mut self,
        new: NewConn<A>,
        now: Instant,
        on_evicted: impl FnOnce(Conn<A>),
    ) -> Result<ConnId, TableFull> {
        if self.len == 0 {
            // Nothing filed: let the wheel start at the present.
            self.cursor = self.cursor.max(now.0 >> TICK_SHIFT);
        }
        if self.migrating() {
            self.migrate(MIGRATE_ON_INSERT);
        }
        // A full binding arena refuses as a full table does, before anything changed
        // (an eviction below only ever frees bindings).
        if A::INTERNED && !self.binds.has_room(&self.seed, &Binding::of(&new)) {
            return Err(TableFull);
        }
        let i = match self.alloc() {
            Some(i) => i,
            None => {
                let victim = self.find_victim(now).ok_or(TableFull)?;
                if let Some(c) = self.remove(ConnId(victim)) {
                    on_evicted(c);
                }
                self.alloc().ok_or(TableFull)?
            }
        };
        let control = match new.control {
            Some(t) if self.entry(t).is_some_and(|e| e.is_template()) => t.0,
            _ => NIL,
        };
        let lport = new.local.map_or(0, |l| l.1);
        let mut flags = (new.flags.0 & ConnFlags::PUBLIC_MASK) | OCCUPIED;
        if new.local.is_some() {
            flags |= ConnFlags::FULLNAT;
        } else {
            flags &= !ConnFlags::FULLNAT;
        }
        // Hashes from the new connection's fields (what `Entry::in_hash` / `out_hash`
        // compute from the entry), the entry written once in its slot, and the wheel
        // filing (`file`) done on it there: one slab access for the new entry.
        let expires = deadline(now, new.timeout);
        let template = flags & ConnFlags::TEMPLATE != 0;
        let h_in = self.in_hash(new.protocol, &new.caddr, new.cport, &new.vaddr, new.vport);
        let (oaddr, oport) = new.local.unwrap_or((new.caddr, new.cport));
        let h_out = self.out_hash(new.protocol, &new.daddr, new.dport, &oaddr, oport);
        let cursor = self.cursor;
        let widx =
            ((expires >> TICK_SHIFT).clamp(cursor, cursor + WHEEL_MASK) & WHEEL_MASK) as usize;
        let whead = self.wheel[widx];
        let Some(bind) = A::bind(&mut self.binds, &self.seed, Binding::of(&new)) else {
            // Not reached: room was checked above.
            return Err(TableFull);
        };
        let Some(slot) = self.slab.get_mut(i) else {
            A::unbind(&mut self.binds, &self.seed, bind);
            return Err(TableFull);
        };
        // Linked at the bucket heads (newest first, as `hlist_add_head_rcu()`).
        let next_in = self
            .in_idx
            .head_mut(h_in)
            .map_or(NIL, |head| core::mem::replace(head, i));
        let next_out = if template {
            NIL
        } else {
            self.out_idx
                .head_mut(h_out)
                .map_or(NIL, |head| core::mem::replace(head, i))
        };
        *slot = Entry {
            expires,
            caddr: new.caddr,
            bind,
            timeout_ms: duration_ms(new.timeout),
            control,
            n_control: 0,
            next_in,
            next_out,
            wheel_prev: NIL,
            wheel_next: whead,
            in_pkts: 0,
            ports: wire_ports(new.cport, new.vport),
            dport: new.dport,
            lport,
            wheel_idx: widx as u16,
            protocol: new.protocol,
            state: new.state,
            flags,
            old_state: new.state,
            proxy_phase: 0,
            proxy_a: 0,
            proxy_b: 0,
        };
        if let Some(h) = self.slab.get_mut(whead) {
            h.wheel_prev = i;
        }
        self.wheel[widx] = i;
        self.wheel_bits[widx / 64] |= 1 << (widx % 64);
        // NIL indexes past the slab: no template.
        if let Some(t) = self.slab.get_mut(control) {
            t.n_control = t.n_control.saturating_add(1);
        }
        self.len += 1;
        if template {
            self.templates += 1;
        }
        Ok(ConnId(i))
    }

    fn alloc(&mut self) -> Option<u32> {
        if self.free != NIL {
            let i = self.free;
            self.free = self.slab.get(i).map_or(NIL, |e| e.next_in);
            return Some(i);
        }
        if self.slab.used < self.slab.slots {
            // A fresh slot of a chunk already linked in: never allocates.
            self.slab.used += 1;
            return Some(self.slab.used - 1);
        }
        None
    }

    fn find_victim(&self, now: Instant) -> Option<u32> {
        let evict = self.policy == TableFullPolicy::EvictEmbryonic;
        let mut best: Option<(bool, u64, u32)> = None; // (not dead, expires, id)
        let mut seen = 0;
        let mut tick = self.cursor;
        while seen < EVICT_SCAN {
            let Some(t) = self.next_filed_tick(tick) else {
                break;
            };
            if t >= self.cursor + WHEEL_SLOTS as u64 {
                break;
            }
            let mut i = self.wheel[(t & WHEEL_MASK) as usize];
            while let Some(e) = self.slab.get(i) {
                if seen >= EVICT_SCAN {
                    break;
                }
                seen += 1;
                let dead = !e.live(now.0);
                // Not yet established (`ip_vs_random_dropentry()` picks TCP and SCTP ones).
                let embryonic = !e.is_template()
                    && ((e.protocol == TCP && e.state != TcpState::Established as u8)
                        || (e.protocol == SCTP && e.state != SctpState::Established as u8));
                if dead || (evict && embryonic) {
                    let cand = (!dead, e.expires, i);
                    if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                        best = Some(cand);
                    }
                }
                i = e.wheel_next;
            }
            tick = t + 1;
        }
        best.map(|b| b.2)
    }

    /// Re-arm an entry: it now expires at `now + timeout` (what `ip_vs_conn_put()` does
    /// with `cp->timeout` after each packet). Returns false for an unknown id. Touching an
    /// expired entry that has not been swept yet revives it.
    pub fn touch(&mut self, id: ConnId, now: Instant, timeout: Duration) -> bool {
        let cursor = self.cursor;
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        e.expires = deadline(now, timeout);
        e.timeout_ms = duration_ms(timeout);
        if filed_too_late(e, cursor) {
            self.refile(id.0);
        }
        true
    }

    /// [`ConnTable::touch`] with a timeout of whole seconds (the packet path's: state
    /// timeouts are seconds), the same result without `u128` arithmetic.
    #[inline(always)]
    pub fn touch_secs(&mut self, id: ConnId, now: Instant, secs: u32) -> bool {
        let cursor = self.cursor;
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        e.expires = secs_deadline(now, secs);
        e.timeout_ms = secs_ms(secs);
        // Refiled only when the new expiry is before its slot; checked with the entry at
        // hand (one slab access, not two).
        if filed_too_late(e, cursor) {
            self.refile(id.0);
        }
        true
    }

    /// Feed one TCP segment through the state machine (`set_tcp_state()`): updates the
    /// state, the NO_OUTPUT and INACTIVE flags, sets the timeout of the new state and
    /// re-arms the entry. The returned [`Transition::activity`] tells the director to move
    /// the connection between its real server's active and inactive counts. `None` for an
    /// unknown id, a template or a non-TCP entry.
    #[inline(always)]
    pub fn tcp_transition(
        &mut self,
        id: ConnId,
        dir: Direction,
        flags: TcpFlags,
        timeouts: &StateTimeouts,
        now: Instant,
    ) -> Option<Transition> {
        let cursor = self.cursor;
        let e = self.entry_mut(id)?;
        if e.protocol != TCP || e.is_template() {
            return None;
        }
        let t = tcp_step(e, dir, flags, timeouts, now)?;
        if filed_too_late(e, cursor) {
            self.refile(id.0);
        }
        Some(t)
    }

    /// Feed one SCTP packet's event through the state machine (`set_sctp_state()`): as
    /// [`ConnTable::tcp_transition`], for SCTP entries. `None` for an unknown id, a
    /// template or a non-SCTP entry.
    #[inline]
    pub fn sctp_transition(
        &mut self,
        id: ConnId,
        dir: Direction,
        event: SctpEvent,
        timeouts: &StateTimeouts,
        now: Instant,
    ) -> Option<SctpTransition> {
        let cursor = self.cursor;
        let e = self.entry_mut(id)?;
        if e.protocol != SCTP || e.is_template() {
            return None;
        }
        let state = SctpState::from_index(e.state)?;
        let t = sctp::transition(
            state,
            ConnFlags(e.flags & ConnFlags::PUBLIC_MASK),
            dir,
            event,
        );
        e.state = t.new as u8;
        e.flags = (e.flags & !ConnFlags::PUBLIC_MASK) | (t.flags.0 & ConnFlags::PUBLIC_MASK);
        let secs = timeouts.sctp_secs(t.new);
        e.expires = secs_deadline(now, secs);
        e.timeout_ms = secs_ms(secs);
        if filed_too_late(e, cursor) {
            self.refile(id.0);
        }
        Some(t)
    }

    /// Set an entry's protocol state as it is, without the state machine (a backup taking
    /// the state a sync record carries). Returns false for an unknown id.
    pub fn set_state(&mut self, id: ConnId, state: u8) -> bool {
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        e.state = state;
        true
    }

    /// An entry's connection-sync bookkeeping.
    pub fn sync_meta(&self, id: ConnId) -> Option<SyncMeta> {
        self.entry(id).map(|e| SyncMeta {
            in_pkts: e.in_pkts,
            old_state: e.old_state,
        })
    }

    /// Replace an entry's connection-sync bookkeeping. Returns false for an unknown id.
    pub fn set_sync_meta(&mut self, id: ConnId, meta: SyncMeta) -> bool {
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        e.in_pkts = meta.in_pkts;
        e.old_state = meta.old_state;
        true
    }

    /// An entry's SYN-proxy bookkeeping (phase 0 when it is not proxied).
    #[inline]
    pub fn seq_proxy(&self, id: ConnId) -> Option<SeqProxy> {
        self.entry(id).map(|e| SeqProxy {
            phase: e.proxy_phase,
            a: e.proxy_a,
            b: e.proxy_b,
        })
    }

    /// Replace an entry's SYN-proxy bookkeeping. Returns false for an unknown id.
    pub fn set_seq_proxy(&mut self, id: ConnId, p: SeqProxy) -> bool {
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        e.proxy_phase = p.phase;
        e.proxy_a = p.a;
        e.proxy_b = p.b;
        true
    }

    /// Count one input packet of an entry and return the new count
    /// (`atomic_inc_return(&cp->in_pkts)`, wrapping).
    #[inline]
    pub fn count_in_pkt(&mut self, id: ConnId) -> Option<u32> {
        let e = self.entry_mut(id)?;
        e.in_pkts = e.in_pkts.wrapping_add(1);
        Some(e.in_pkts)
    }

    /// Replace an entry's flags (the bits of [`ConnFlags::PUBLIC_MASK`] except FULLNAT,
    /// which follows the entry's local address). Returns false for an unknown id.
    pub fn set_flags(&mut self, id: ConnId, flags: ConnFlags) -> bool {
        let Some(e) = self.entry_mut(id) else {
            return false;
        };
        let keep = e.flags & (OCCUPIED | ConnFlags::FULLNAT | ConnFlags::TEMPLATE);
        let set = flags.0 & ConnFlags::PUBLIC_MASK & !(ConnFlags::FULLNAT | ConnFlags::TEMPLATE);
        e.flags = keep | set;
        true
    }

    /// Remove an entry now, whatever its expiry; returns it. Removing a controlled
    /// connection releases its template (`ip_vs_control_del()`); removing a template that
    /// still controls connections detaches them (a linear scan: control-plane use only).
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<A>> {
        let e = *self.entry(id)?;
        let i = id.0;
        let h_in = e.in_hash(&self.seed, &self.binds);
        Self::unlink_chain(self.in_idx.head_mut(h_in), &mut self.slab, i, true);
        if !e.is_template() {
            let h_out = e.out_hash(&self.seed, &self.binds);
            Self::unlink_chain(self.out_idx.head_mut(h_out), &mut self.slab, i, false);
        }
        self.unfile(i);
        if let Some(t) = self.slab.get_mut(e.control) {
            t.n_control = t.n_control.saturating_sub(1);
        }
        if e.is_template() {
            self.templates -= 1;
            if e.n_control > 0 {
                for c in self.slab.iter_mut() {
                    if c.occupied() && c.control == i {
                        c.control = NIL;
                    }
                }
            }
        }
        let conn = e.snapshot(&self.binds);
        A::unbind(&mut self.binds, &self.seed, e.bind);
        if let Some(slot) = self.slab.get_mut(i) {
            slot.flags = 0;
            slot.next_in = self.free;
            self.free = i;
        }
        self.len -= 1;
        Some(conn)
    }

    fn unlink_chain(head: Option<&mut u32>, slab: &mut Slab<A>, i: u32, inward: bool) {
        let link = |e: &Entry<A>| if inward { e.next_in } else { e.next_out };
        let Some(head) = head else {
            return;
        };
        let Some(next_of_i) = slab.get(i).map(link) else {
            return;
        };
        if *head == i {
            *head = next_of_i;
            return;
        }
        let mut p = *head;
        while let Some(e) = slab.get_mut(p) {
            let n = if inward { e.next_in } else { e.next_out };
            if n == i {
                if inward {
                    e.next_in = next_of_i;
                } else {
                    e.next_out = next_of_i;
                }
                return;
            }
            p = n;
        }
    }

    // ---- the expiry wheel ----

    #[inline]
    fn tick_of(expires: u64) -> u64 {
        expires >> TICK_SHIFT
    }

    fn file(&mut self, i: u32) {
        let Some(e) = self.slab.get(i) else {
            return;
        };
        let t = Self::tick_of(e.expires).clamp(self.cursor, self.cursor + WHEEL_MASK);
        let idx = (t & WHEEL_MASK) as usize;
        let head = self.wheel[idx];
        if let Some(h) = self.slab.get_mut(head) {
            h.wheel_prev = i;
        }
        if let Some(e) = self.slab.get_mut(i) {
            e.wheel_prev = NIL;
            e.wheel_next = head;
            e.wheel_idx = idx as u16;
        }
        self.wheel[idx] = i;
        self.wheel_bits[idx / 64] |= 1 << (idx % 64);
    }

    fn unfile(&mut self, i: u32) {
        let Some(e) = self.slab.get(i) else {
            return;
        };
        let (prev, next, idx) = (e.wheel_prev, e.wheel_next, usize::from(e.wheel_idx));
        if let Some(p) = self.slab.get_mut(prev) {
            p.wheel_next = next;
        } else if self.wheel.get(idx) == Some(&i) {
            self.wheel[idx] = next;
            if next == NIL {
                self.wheel_bits[idx / 64] &= !(1 << (idx % 64));
            }
        }
        if let Some(n) = self.slab.get_mut(next) {
            n.wheel_prev = prev;
        }
        if let Some(e) = self.slab.get_mut(i) {
            e.wheel_prev = NIL;
            e.wheel_next = NIL;
        }
    }

    /// Move an entry to the slot of its (earlier) expiry: the rare case of a re-arm.
    #[cold]
    #[inline(never)]
    fn refile(&mut self, i: u32) {
        self.unfile(i);
        self.file(i);
    }

    /// The first tick at or after `from` (within one turn of the cursor) whose slot is
    /// non-empty.
    fn next_filed_tick(&self, from: u64) -> Option<u64> {
        let start = from.max(self.cursor);
        let end = self.cursor + WHEEL_SLOTS as u64;
        let mut t = start;
        while t < end {
            let idx = (t & WHEEL_MASK) as usize;
            let word = self.wheel_bits[idx / 64] >> (idx % 64);
            if word != 0 {
                let found = t + u64::from(word.trailing_zeros());
                return (found < end).then_some(found);
            }
            t += 64 - (idx % 64) as u64;
        }
        None
    }

    /// When [`ConnTable::expire`] next has work: the end of the earliest non-empty wheel
    /// slot. No entry is removed before this instant; `None` when the table is empty.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.next_filed_tick(self.cursor)
            .map(|t| Instant((t + 1) << TICK_SHIFT))
    }

    /// Remove entries that expired before `now`, examining at most `budget` entries
    /// (removed or re-filed; empty slots are skipped for free), and hand each removed
    /// entry to `on_removed` so the director can unbind it from its real server (and count
    /// it out of its service). A template whose expiry comes while it still controls
    /// connections is re-armed for [`TEMPLATE_REARM`] instead (`ip_vs_conn_expire()`);
    /// connections it controlled release it as they go. Returns the number removed.
    ///
    /// Call it regularly (each poll loop, with a small budget) and at
    /// [`ConnTable::next_expiry`]; an entry is removed within one [`TICK`] after its
    /// expiry once `expire` has been called with enough budget.
    pub fn expire(
        &mut self,
        now: Instant,
        budget: usize,
        mut on_removed: impl FnMut(ConnId, &Conn<A>),
    ) -> usize {
        if self.migrating() {
            self.migrate(MIGRATE_ON_EXPIRE);
        }
        let now_tick = now.0 >> TICK_SHIFT;
        let mut examined = 0;
        let mut removed = 0;
        while examined < budget && self.cursor < now_tick {
            let idx = (self.cursor & WHEEL_MASK) as usize;
            let head = self.wheel[idx];
            if head == NIL {
                match self.next_filed_tick(self.cursor) {
                    Some(t) if t < now_tick => self.cursor = t,
                    _ => self.cursor = now_tick,
                }
                continue;
            }
            examined += 1;
            self.unfile(head);
            let Some(e) = self.slab.get_mut(head) else {
                continue;
            };
            if Self::tick_of(e.expires) > self.cursor {
                // Touched since it was filed: not due yet.
                self.file(head);
            } else if e.is_template() && e.n_control > 0 {
                e.timeout_ms = duration_ms(TEMPLATE_REARM);
                e.expires = deadline(now, TEMPLATE_REARM);
                self.file(head);
            } else {
                if let Some(c) = self.remove(ConnId(head)) {
                    removed += 1;
                    on_removed(ConnId(head), &c);
                }
            }
        }
        removed
    }

    /// `ip_vs_random_dropentry()` over `buckets` hash buckets picked by `rand`: drop the
    /// entries the kernel drops under `drop_entry` (see [`crate::conn::defense`]), handing
    /// each to `on_removed`. `counters` are the kernel's `dropentry_counters` (one in *n*
    /// entries with *n* input packets is dropped). A connection's template is expired at
    /// once when it no longer controls anything (`ip_vs_conn_expire_now(cp->control)`).
    /// Returns the number of entries dropped.
    pub fn random_drop(
        &mut self,
        now: Instant,
        buckets: usize,
        mut rand: impl FnMut() -> u64,
        counters: &mut [i8; 8],
        mut on_removed: impl FnMut(ConnId, &Conn<A>),
    ) -> usize {
        let mut dropped = 0;
        for _ in 0..buckets {
            let mut i = self.in_idx.head(rand());
            while let Some(e) = self.slab.get(i) {
                let next = e.next_in;
                if Self::todrop(e, now, counters) {
                    let control = e.control;
                    if let Some(c) = self.remove(ConnId(i)) {
                        dropped += 1;
                        on_removed(ConnId(i), &c);
                    }
                    if let Some(t) = self.slab.get(control)
                        && t.occupied()
                        && t.is_template()
                        && t.n_control == 0
                    {
                        self.touch(ConnId(control), now, Duration::ZERO);
                    }
                }
                i = next;
            }
        }
        dropped
    }

    /// The kind test of `ip_vs_random_dropentry()` and `todrop_entry()`.
    fn todrop(e: &Entry<A>, now: Instant, counters: &mut [i8; 8]) -> bool {
        if !e.occupied() {
            return false;
        }
        // `todrop_entry()`: only entries idle for 60 s, with 1..=8 input packets, one in n.
        let mut rate_limited = || {
            let idle = now.0.saturating_add(u64::from(e.timeout_ms) * 1_000_000)
                >= e.expires.saturating_add(60_000_000_000);
            if !idle || !(1..=8).contains(&e.in_pkts) {
                return false;
            }
            let k = (e.in_pkts - 1) as usize;
            counters[k] -= 1;
            if counters[k] > 0 {
                return false;
            }
            counters[k] = (k + 1) as i8;
            true
        };
        if e.is_template() {
            // Templates only when they control nothing and serve a one-packet service.
            return e.n_control == 0 && e.flags & ConnFlags::ONE_PACKET != 0 && rate_limited();
        }
        match e.protocol {
            TCP => match TcpState::from_index(e.state) {
                Some(TcpState::SynRecv | TcpState::SynAck) => true,
                Some(TcpState::Established) => rate_limited(),
                _ => false,
            },
            SCTP => match SctpState::from_index(e.state) {
                Some(SctpState::Init1 | SctpState::Init) => true,
                Some(SctpState::Established) => rate_limited(),
                _ => false,
            },
            _ => rate_limited(),
        }
    }

    /// Remove every entry bound to real server `dest` (templates after the connections
    /// they control), handing each to `on_removed`: the flush of a deleted real server or
    /// `expire_nodest_conn`. A linear scan: control-plane only. Returns the number removed.
    pub fn remove_dest(
        &mut self,
        dest: u32,
        mut on_removed: impl FnMut(ConnId, &Conn<A>),
    ) -> usize {
        let mut removed = 0;
        for want_template in [false, true] {
            for i in 0..self.slab.used {
                let Some(e) = self.slab.get(i) else {
                    continue;
                };
                if e.occupied() && e.b(&self.binds).dest == dest && e.is_template() == want_template
                {
                    let id = ConnId(i);
                    if let Some(c) = self.remove(id) {
                        removed += 1;
                        on_removed(id, &c);
                    }
                }
            }
        }
        removed
    }

    /// Every entry, in slot order, for listings (`ipvsadm -L -c`): use
    /// [`Conn::state_name`] and [`Conn::remaining_secs`]. Expired entries not yet swept
    /// are included; filter with `expires > now` to hide them.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, Conn<A>)> + '_ {
        self.slab
            .iter()
            .filter(|(_, e)| e.occupied())
            .map(|(i, e)| (ConnId(i), e.snapshot(&self.binds)))
    }

    /// At most `max` slots from slot `from` on, in slot order: `f` gets each occupied
    /// one's entry (expired ones not yet swept included, as in [`ConnTable::iter`]). Returns
    /// the slot to continue from, or None when the walk reached the end. For listings taken
    /// in bounded pieces between packet batches (the daemon's `-L -c`): the work per call
    /// is bounded by `max` whatever the table holds; entries added or removed between calls
    /// may be listed or not, as the kernel's `/proc/net/ip_vs_conn` walk
    /// (`ip_vs_conn_seq_next()`) lists a table that changes under it.
    pub fn slots_from(&self, from: u32, max: usize, mut f: impl FnMut(Conn<A>)) -> Option<u32> {
        let end = from.saturating_add(max.min(u32::MAX as usize) as u32);
        let end = end.min(self.slab.used);
        for i in from..end {
            if let Some(e) = self.slab.get(i)
                && e.occupied()
            {
                f(e.snapshot(&self.binds));
            }
        }
        (end < self.slab.used).then_some(end)
    }

    /// Count of live non-template connections by whether their real server counts them as
    /// active: `(active, inactive)` by the INACTIVE flag (for checks and statistics).
    pub fn activity_counts(&self, now: Instant) -> (usize, usize) {
        let mut c = (0, 0);
        for (_, e) in self
            .slab
            .iter()
            .filter(|(_, e)| e.occupied() && !e.is_template())
        {
            if !e.live(now.0) {
                continue;
            }
            if e.flags & ConnFlags::INACTIVE != 0 {
                c.1 += 1;
            } else {
                c.0 += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests;
