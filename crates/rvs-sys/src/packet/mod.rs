//! An AF_PACKET socket bound to one interface (`ETH_P_ALL`) with memory-mapped rings:
//! a TPACKET_V3 RX ring read block by block without copying ([`RxRing`]) and a TX ring
//! of fixed-size frames written in place and sent in batches ([`TxRing`]); plus the
//! socket options the data plane needs (`PACKET_VNET_HDR`, `PACKET_QDISC_BYPASS`,
//! `PACKET_IGNORE_OUTGOING`, `PACKET_FANOUT`, promiscuous membership).
//!
//! Kernel facts this module relies on (checked on 6.18, see the crate's tests):
//! - One `PACKET_VERSION` applies to both rings ([`RingVersion`]: V3 by default; V2 for
//!   per-frame RX hand-over, its TX slots start with a `tpacket2_hdr` and the data at
//!   32 bytes). V3 transmit is frame-based: `tp_retire_blk_tov`, `tp_sizeof_priv` and
//!   `tp_feature_req_word` must be 0 for it, each frame carries a `tpacket3_hdr` with
//!   `tp_next_offset == 0`, and the data starts at `TPACKET3_HDRLEN - sizeof(sockaddr_ll)`
//!   (48 bytes) into the frame.
//! - `PACKET_VERSION` and `PACKET_VNET_HDR` must be set before the rings (`EBUSY` after).
//!   With `PACKET_VNET_HDR` each RX frame is preceded by a `virtio_net_hdr` (just before
//!   `tp_mac`) and each TX frame must start with one; this works with TPACKET_V3 rings.
//! - Without `PACKET_VNET_HDR` the kernel refuses TX frames longer than MTU + 4; with it,
//!   a frame up to the TX frame size is accepted when its header describes it as GSO.
//! - `PACKET_LOSS` is set, so a malformed TX frame is skipped (its slot becomes
//!   available again) instead of wedging the ring with `TP_STATUS_WRONG_FORMAT`.
//!
//! Observed on veth (6.18; asserted by `tests/integration`):
//! - UDP/TCP from a socket in the peer namespace arrives checksum-partial:
//!   `TP_STATUS_CSUMNOTREADY` (status 0x9 with `TP_STATUS_USER`), the checksum field
//!   holding only the pseudo-header sum; with vnet headers `F_NEEDS_CSUM`, `csum_start`
//!   = L4 offset, `csum_offset` 6 (UDP) / 16 (TCP). `TP_STATUS_CSUM_VALID` was not seen.
//! - A TCP bulk transfer arrives as GSO super-frames up to ~64 KiB with `GSO_TCPV4`,
//!   `gso_size` = MSS (1448), `hdr_len` 66. The TX ring with vnet headers sends such a
//!   frame whole and the peer receives the same metadata.
//! - An 802.1Q tag is stripped on receive and reported (`TP_STATUS_VLAN_VALID`,
//!   `TP_STATUS_VLAN_TPID_VALID`); `tp_len` excludes it.
//! - With `PACKET_QDISC_BYPASS` a sender's frames skip the outgoing taps: no other packet
//!   socket on the interface sees them.
//! - `poll(2)` says "writable" whenever the send buffer has room, not when a TX slot is
//!   free (see [`TxRing::wait_writable`]).
//!
//! This module moves frames; it does not parse them, finish checksums or segment: those
//! are decisions for the engine, which gets the kernel's checksum and GSO metadata.

mod rx;
pub mod steer;
mod tx;
pub mod vnet;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub use rx::{PacketType, RxBlock, RxFrame, RxFrames, RxMeta, RxRing};
pub use tx::{TxRing, TxSlot};
pub use vnet::VirtioNetHdr;

use crate::sys::{self, Mmap, last_err};

/// Which `PACKET_VERSION` a socket's rings use (one for both rings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingVersion {
    /// TPACKET_V2: RX in fixed-size frame slots, each handed to userspace (and the reader
    /// woken) as soon as it is written. Lowest latency; every slot must hold the largest
    /// frame (`frame_size` ≥ 64 KiB + headers for GRO/GSO super-frames).
    V2,
    /// TPACKET_V3: RX in blocks of packed frames, handed over when full or after
    /// `retire_blk_tov_ms`. Densest, fewest wake-ups under load, but up to
    /// `retire_blk_tov_ms` of delay per frame on request/response traffic.
    #[default]
    V3,
}

/// Geometry of the RX ring (see [`RingVersion`] for how V2 and V3 use it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxRingConfig {
    /// Bytes per block: a multiple of the page size. A frame larger than a block (minus
    /// its headers) is truncated, so keep it ≥ 128 KiB when GRO super-frames (64 KiB) matter.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// V3: nominal frame size (V3 packs frames of any size; this only sets
    /// `tp_frame_nr`). V2: the slot size, headers included; longer frames are truncated.
    pub frame_size: u32,
    /// Milliseconds after which the kernel hands over a partly filled block
    /// (`tp_retire_blk_tov`); bounds the latency of a quiet link. Each retirement uses
    /// up a whole block, so on a trickle of traffic an undrained ring is full (frozen,
    /// dropping: see [`RxStats`]) after about `block_count × retire_blk_tov_ms`:
    /// drain continuously, or raise it. 0 lets the kernel pick from the link speed.
    /// Unused by V2.
    pub retire_blk_tov_ms: u32,
    /// `PACKET_RESERVE`: extra bytes of headroom the kernel leaves in front of every
    /// received frame (see [`RxFrame::into_buf`]), e.g. to encapsulate in place.
    pub reserve: u32,
}

impl Default for RxRingConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 18,
            block_count: 16,
            frame_size: 2048,
            retire_blk_tov_ms: 2,
            reserve: 0,
        }
    }
}

/// Geometry of the TX ring: fixed-size frame slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRingConfig {
    /// Bytes per slot, including the 48-byte frame header (and the 10-byte vnet header
    /// when enabled): a multiple of 16. Use ≥ 64 KiB + 64 to forward GSO super-frames.
    pub frame_size: u32,
    /// Number of slots.
    pub frame_count: u32,
}

impl Default for TxRingConfig {
    fn default() -> Self {
        Self {
            frame_size: 2048,
            frame_count: 512,
        }
    }
}

/// How a packet socket is set up by [`PacketSocket::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketConfig {
    /// The rings' layout version.
    pub version: RingVersion,
    /// RX ring, or none for a transmit-only socket.
    pub rx: Option<RxRingConfig>,
    /// TX ring, or none for a receive-only socket.
    pub tx: Option<TxRingConfig>,
    /// `PACKET_VNET_HDR`: a `virtio_net_hdr` before every RX and TX frame.
    pub vnet_hdr: bool,
    /// `PACKET_QDISC_BYPASS`: transmit straight to the driver, skipping the qdisc layer.
    pub qdisc_bypass: bool,
    /// `PACKET_IGNORE_OUTGOING`: do not see frames sent on the interface (own or not).
    pub ignore_outgoing: bool,
    /// `PACKET_ADD_MEMBERSHIP` with `PACKET_MR_PROMISC` (dropped when the socket closes).
    pub promiscuous: bool,
}

impl Default for PacketConfig {
    fn default() -> Self {
        Self {
            version: RingVersion::V3,
            rx: Some(RxRingConfig::default()),
            tx: Some(TxRingConfig::default()),
            vnet_hdr: false,
            qdisc_bypass: false,
            ignore_outgoing: true,
            promiscuous: false,
        }
    }
}

/// How a fanout group spreads frames over its sockets.
#[derive(Clone, Copy, Debug)]
pub enum FanoutMode<'a> {
    /// `PACKET_FANOUT_HASH`: by the flow hash (both directions of a flow are not
    /// guaranteed to land on one socket).
    Hash,
    /// `PACKET_FANOUT_LB`: round robin.
    RoundRobin,
    /// `PACKET_FANOUT_CPU`: by the CPU that received the frame.
    Cpu,
    /// `PACKET_FANOUT_QM`: by the recorded RX queue.
    QueueMapping,
    /// `PACKET_FANOUT_CBPF`: the classic BPF program returns the member index.
    Cbpf(&'a [libc::sock_filter]),
}

/// A fanout group to join with [`PacketSocket::join_fanout`].
#[derive(Clone, Copy, Debug)]
pub struct Fanout<'a> {
    /// Group id, shared by the sockets of one group (per network namespace).
    pub group: u16,
    /// The spreading mode; all members must use the same one.
    pub mode: FanoutMode<'a>,
    /// `PACKET_FANOUT_FLAG_ROLLOVER`: move a frame to another member when the chosen
    /// one's ring is full.
    pub rollover: bool,
    /// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING`: the group does not see frames sent on the
    /// interface. A member's own `PACKET_IGNORE_OUTGOING` no longer applies once it joined:
    /// the group's hook receives for all members.
    pub ignore_outgoing: bool,
    /// `PACKET_FANOUT_FLAG_UNIQUEID`: the kernel picks an unused group id (`group` must be
    /// 0); read it with [`PacketSocket::fanout_group`] and have the other members join it.
    pub unique_id: bool,
}

/// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING` (linux/if_packet.h, Linux 6.9).
const FANOUT_FLAG_IGNORE_OUTGOING: u32 = 0x4000;
/// `PACKET_FANOUT_FLAG_UNIQUEID` (linux/if_packet.h, Linux 4.3).
const FANOUT_FLAG_UNIQUEID: u32 = 0x2000;

const fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// A `PACKET_FANOUT_CBPF` program for two members: 1 for a TCP segment with SYN set and
/// ACK, RST and FIN clear (a connection's first segment) in IPv4 without options and not
/// a non-first fragment, or IPv6 with TCP as the first next header; 0 for every other
/// frame. The program sees the frame from its network header; the ethertype is
/// `skb->protocol` (a VLAN-tagged frame the driver did not untag goes to member 0).
///
/// A director splits its RX path with it: a SYN flood fills member 1's ring only, and
/// the frames of known connections (member 0) never wait behind it or overflow with it.
pub static SYN_SPLIT: [libc::sock_filter; 18] = {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_JA, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD,
        BPF_RET,
    };
    const LDH: u32 = BPF_LD | BPF_H | BPF_ABS;
    const LDB: u32 = BPF_LD | BPF_B | BPF_ABS;
    const JEQ: u32 = BPF_JMP | BPF_JEQ | BPF_K;
    let protocol = (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32;
    // Jump offsets count from the next instruction: MAIN (ret #0) is 16, SYN (ret #1) 17.
    [
        /* 0 */ insn(LDH, 0, 0, protocol),
        /* 1 */ insn(JEQ, 0, 8, 0x0800), // IPv4, else 10
        /* 2 */ insn(LDB, 0, 0, 0),
        /* 3 */ insn(JEQ, 0, 12, 0x45), // version 4, no options
        /* 4 */ insn(LDB, 0, 0, 9),
        /* 5 */ insn(JEQ, 0, 10, 6), // TCP
        /* 6 */ insn(LDH, 0, 0, 6),
        /* 7 */ insn(BPF_JMP | BPF_JSET | BPF_K, 8, 0, 0x1fff), // a non-first fragment
        /* 8 */ insn(LDB, 0, 0, 20 + 13), // TCP flags
        /* 9 */ insn(BPF_JMP | BPF_JA, 0, 0, 4), // to 14
        /* 10 */ insn(JEQ, 0, 5, 0x86dd), // IPv6
        /* 11 */ insn(LDB, 0, 0, 6),
        /* 12 */ insn(JEQ, 0, 3, 6), // TCP right after the fixed header
        /* 13 */ insn(LDB, 0, 0, 40 + 13), // TCP flags
        /* 14 */ insn(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0x17), // FIN SYN RST ACK
        /* 15 */ insn(JEQ, 1, 0, 0x02), // SYN alone
        /* 16 */ insn(BPF_RET | BPF_K, 0, 0, 0),
        /* 17 */ insn(BPF_RET | BPF_K, 0, 0, 1),
    ]
};

/// Counters of `PACKET_STATISTICS`; reading them resets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames seen by the socket since the last read (including dropped ones).
    pub packets: u32,
    /// Frames dropped because the ring was full.
    pub drops: u32,
    /// Times the ring was frozen (all blocks owned by userspace).
    pub freeze_q_cnt: u32,
}

/// An AF_PACKET socket bound to one interface, with its rings.
///
/// The fd is exposed ([`AsRawFd`], [`AsFd`]) so a daemon can wait on it in epoll
/// (readable: an RX block is ready; writable: a TX slot is free).
#[derive(Debug)]
pub struct PacketSocket {
    // Field order matters: the rings point into `map`, which must be unmapped after
    // them, and the mapping must go before the fd is closed.
    rx: Option<RxRing>,
    tx: Option<TxRing>,
    _map: Option<Mmap>,
    fd: OwnedFd,
    ifindex: u32,
    ifname: String,
    vnet_hdr: bool,
}

// SAFETY: the raw pointers inside the rings point into the socket's own mapping, which
// moves with it; nothing is thread-local to the creating thread (a packet socket keeps
// its network namespace wherever it is used).
unsafe impl Send for PacketSocket {}

const PAGE: u32 = 4096;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl PacketSocket {
    /// Opens a packet socket on interface `ifname` (in the calling thread's network
    /// namespace), sets it up as `cfg` says, and binds it with `ETH_P_ALL`.
    pub fn open(ifname: &str, cfg: &PacketConfig) -> io::Result<Self> {
        let ifindex = crate::iface::if_index(ifname)?;
        Self::open_inner(ifindex, ifname.to_owned(), cfg)
    }

    /// Like [`PacketSocket::open`], by interface index.
    pub fn open_index(ifindex: u32, cfg: &PacketConfig) -> io::Result<Self> {
        let ifname = crate::iface::if_name(ifindex)?;
        Self::open_inner(ifindex, ifname, cfg)
    }

    fn open_inner(ifindex: u32, ifname: String, cfg: &PacketConfig) -> io::Result<Self> {
        let ctx = ifname.as_str();
        // Protocol 0: receive nothing until bind() names the interface, so no frame of
        // another interface slips into the ring.
        // SAFETY: plain socket(2); the result is checked before being owned.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_err("socket(AF_PACKET, SOCK_RAW)", ctx));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let f = fd.as_raw_fd();
        let sol = libc::SOL_PACKET;

        let v2 = cfg.version == RingVersion::V2;
        let version = if v2 {
            libc::tpacket_versions::TPACKET_V2
        } else {
            libc::tpacket_versions::TPACKET_V3
        } as libc::c_int;
        sys::setsockopt(
            f,
            sol,
            libc::PACKET_VERSION,
            &version,
            "setsockopt(PACKET_VERSION)",
            ctx,
        )?;
        if cfg.vnet_hdr {
            sys::setsockopt(
                f,
                sol,
                libc::PACKET_VNET_HDR,
                &1 as &libc::c_int,
                "setsockopt(PACKET_VNET_HDR)",
                ctx,
            )?;
        }
        sys::setsockopt(
            f,
            sol,
            libc::PACKET_LOSS,
            &1 as &libc::c_int,
            "setsockopt(PACKET_LOSS)",
            ctx,
        )?;

        let mut rx_len = 0usize;
        if let Some(rc) = cfg.rx {
            if rc.block_size == 0 || rc.block_size % PAGE != 0 || rc.block_count == 0 {
                return Err(invalid(format!(
                    "RX ring on {ctx}: block size {} must be a non-zero multiple of {PAGE} and block count {} non-zero",
                    rc.block_size, rc.block_count
                )));
            }
            if rc.frame_size < 128
                || rc.frame_size % 16 != 0
                || (!v2 && rc.block_size % rc.frame_size != 0)
                || rc.frame_size > rc.block_size
            {
                return Err(invalid(format!(
                    "RX ring on {ctx}: frame size {} must be a multiple of 16, at least 128, dividing the block size",
                    rc.frame_size
                )));
            }
            if rc.reserve > 0 {
                sys::setsockopt(
                    f,
                    sol,
                    libc::PACKET_RESERVE,
                    &(rc.reserve as libc::c_uint),
                    "setsockopt(PACKET_RESERVE)",
                    ctx,
                )?;
            }
            let frames = (rc.block_size / rc.frame_size) * rc.block_count;
            if v2 {
                let req = libc::tpacket_req {
                    tp_block_size: rc.block_size,
                    tp_block_nr: rc.block_count,
                    tp_frame_size: rc.frame_size,
                    tp_frame_nr: frames,
                };
                sys::setsockopt(
                    f,
                    sol,
                    libc::PACKET_RX_RING,
                    &req,
                    "setsockopt(PACKET_RX_RING, V2)",
                    ctx,
                )?;
            } else {
                let req = libc::tpacket_req3 {
                    tp_block_size: rc.block_size,
                    tp_block_nr: rc.block_count,
                    tp_frame_size: rc.frame_size,
                    tp_frame_nr: frames,
                    tp_retire_blk_tov: rc.retire_blk_tov_ms,
                    tp_sizeof_priv: 0,
                    tp_feature_req_word: libc::TP_FT_REQ_FILL_RXHASH,
                };
                sys::setsockopt(
                    f,
                    sol,
                    libc::PACKET_RX_RING,
                    &req,
                    "setsockopt(PACKET_RX_RING)",
                    ctx,
                )?;
            }
            rx_len = rc.block_size as usize * rc.block_count as usize;
        }
        let mut tx_geom = None;
        if let Some(tc) = cfg.tx {
            let min = 48 + if cfg.vnet_hdr { vnet::VNET_HDR_LEN } else { 0 } + 14;
            if (tc.frame_size as usize) < min || tc.frame_size % 16 != 0 || tc.frame_count == 0 {
                return Err(invalid(format!(
                    "TX ring on {ctx}: frame size {} must be a multiple of 16 and at least {min}, frame count {} non-zero",
                    tc.frame_size, tc.frame_count
                )));
            }
            // One block holds a whole number of frames and is a page multiple: the
            // smallest such block is lcm(frame_size, page).
            let block = lcm(tc.frame_size, PAGE);
            let per_block = block / tc.frame_size;
            let blocks = tc.frame_count.div_ceil(per_block);
            // tpacket_req is the first four fields of tpacket_req3; the kernel reads only
            // those for V2 (and needs the V3 extras zero for a V3 TX ring).
            let req = libc::tpacket_req3 {
                tp_block_size: block,
                tp_block_nr: blocks,
                tp_frame_size: tc.frame_size,
                tp_frame_nr: blocks * per_block,
                tp_retire_blk_tov: 0,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            sys::setsockopt(
                f,
                sol,
                libc::PACKET_TX_RING,
                &req,
                "setsockopt(PACKET_TX_RING)",
                ctx,
            )?;
            tx_geom = Some((
                tc.frame_size as usize,
                (blocks * per_block) as usize,
                block as usize * blocks as usize,
            ));
        }

        let total = rx_len + tx_geom.map_or(0, |g| g.2);
        let map = if total > 0 {
            Some(Mmap::new(f, total, ctx)?)
        } else {
            None
        };
        let (rx, tx) = match &map {
            None => (None, None),
            Some(m) => {
                let rx = cfg.rx.map(|rc| {
                    if v2 {
                        RxRing::new_v2(
                            f,
                            m.ptr,
                            rc.block_size as usize,
                            rc.block_count as usize,
                            rc.frame_size as usize,
                            cfg.vnet_hdr,
                            ctx,
                        )
                    } else {
                        RxRing::new(
                            f,
                            m.ptr,
                            rc.block_size as usize,
                            rc.block_count as usize,
                            cfg.vnet_hdr,
                            ctx,
                        )
                    }
                });
                let tx = tx_geom.map(|(fsize, fcount, _)| {
                    // SAFETY: the TX ring is mapped right after the RX ring; `rx_len` is
                    // the RX ring's size, so the pointer stays inside the mapping.
                    let base = unsafe { m.ptr.add(rx_len) };
                    TxRing::new(f, base, fsize, fcount, cfg.vnet_hdr, v2, ctx)
                });
                (rx, tx)
            }
        };

        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                f,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(last_err("bind(AF_PACKET, ETH_P_ALL)", ctx));
        }

        let sock = Self {
            rx,
            tx,
            _map: map,
            fd,
            ifindex,
            ifname,
            vnet_hdr: cfg.vnet_hdr,
        };
        if cfg.qdisc_bypass {
            sock.set_qdisc_bypass(true)?;
        }
        if cfg.ignore_outgoing {
            sock.set_ignore_outgoing(true)?;
        }
        if cfg.promiscuous {
            sock.set_promiscuous(true)?;
        }
        Ok(sock)
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface name the socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Whether frames carry a `virtio_net_hdr` (`PACKET_VNET_HDR`).
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// The RX ring, if configured.
    pub fn rx(&mut self) -> Option<&mut RxRing> {
        self.rx.as_mut()
    }

    /// The TX ring, if configured.
    pub fn tx(&mut self) -> Option<&mut TxRing> {
        self.tx.as_mut()
    }

    /// Both rings at once, e.g. to write TX frames while an RX block is held.
    pub fn rings(&mut self) -> (Option<&mut RxRing>, Option<&mut TxRing>) {
        (self.rx.as_mut(), self.tx.as_mut())
    }

    fn set_int(&self, name: libc::c_int, val: libc::c_int, what: &str) -> io::Result<()> {
        sys::setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            &val,
            what,
            &self.ifname,
        )
    }

    /// `PACKET_QDISC_BYPASS`: send straight to the driver's queue (no qdisc, no
    /// `tc` egress, no outgoing copy to other taps).
    pub fn set_qdisc_bypass(&self, on: bool) -> io::Result<()> {
        self.set_int(
            libc::PACKET_QDISC_BYPASS,
            on.into(),
            "setsockopt(PACKET_QDISC_BYPASS)",
        )
    }

    /// `PACKET_IGNORE_OUTGOING`: do not deliver frames leaving through the interface
    /// (`PACKET_OUTGOING`) to this socket, so its own transmissions never come back.
    pub fn set_ignore_outgoing(&self, on: bool) -> io::Result<()> {
        self.set_int(
            libc::PACKET_IGNORE_OUTGOING,
            on.into(),
            "setsockopt(PACKET_IGNORE_OUTGOING)",
        )
    }

    /// Promiscuous mode via `PACKET_ADD_MEMBERSHIP`/`PACKET_DROP_MEMBERSHIP` with
    /// `PACKET_MR_PROMISC` (reference-counted by the kernel, dropped on close).
    pub fn set_promiscuous(&self, on: bool) -> io::Result<()> {
        // SAFETY: packet_mreq is plain data; all-zero is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = self.ifindex as libc::c_int;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        let (opt, what) = if on {
            (
                libc::PACKET_ADD_MEMBERSHIP,
                "setsockopt(PACKET_ADD_MEMBERSHIP, PROMISC)",
            )
        } else {
            (
                libc::PACKET_DROP_MEMBERSHIP,
                "setsockopt(PACKET_DROP_MEMBERSHIP, PROMISC)",
            )
        };
        sys::setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            &mreq,
            what,
            &self.ifname,
        )
    }

    /// Adds `mac` to the interface's unicast address filter (`PACKET_ADD_MEMBERSHIP` with
    /// `PACKET_MR_UNICAST`; dropped when the socket closes), so the NIC delivers frames sent
    /// to it — VRRP's virtual MAC — without promiscuous mode.
    pub fn add_unicast_mac(&self, mac: [u8; 6]) -> io::Result<()> {
        // SAFETY: packet_mreq is plain data; all-zero is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = self.ifindex as libc::c_int;
        mreq.mr_type = libc::PACKET_MR_UNICAST as u16;
        mreq.mr_alen = 6;
        mreq.mr_address[..6].copy_from_slice(&mac);
        sys::setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
            "setsockopt(PACKET_ADD_MEMBERSHIP, UNICAST)",
            &self.ifname,
        )
    }

    /// Joins fanout group `fanout.group` (`PACKET_FANOUT`), then for
    /// [`FanoutMode::Cbpf`] installs the program (`PACKET_FANOUT_DATA`). All members of a
    /// group must be bound to the same interface and protocol and use the same mode.
    pub fn join_fanout(&self, fanout: &Fanout<'_>) -> io::Result<()> {
        let mode = match fanout.mode {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
            FanoutMode::RoundRobin => libc::PACKET_FANOUT_LB,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::QueueMapping => libc::PACKET_FANOUT_QM,
            FanoutMode::Cbpf(_) => libc::PACKET_FANOUT_CBPF,
        };
        let mut flags = if fanout.rollover {
            libc::PACKET_FANOUT_FLAG_ROLLOVER
        } else {
            0
        };
        if fanout.ignore_outgoing {
            flags |= FANOUT_FLAG_IGNORE_OUTGOING;
        }
        if fanout.unique_id {
            flags |= FANOUT_FLAG_UNIQUEID;
        }
        let arg = libc::c_int::from(fanout.group) | ((mode | flags) << 16) as libc::c_int;
        let what = format!("setsockopt(PACKET_FANOUT, group {})", fanout.group);
        self.set_int(libc::PACKET_FANOUT, arg, &what)?;
        if let FanoutMode::Cbpf(prog) = fanout.mode {
            let len = u16::try_from(prog.len()).map_err(|_| {
                invalid(format!(
                    "fanout CBPF program of {} instructions",
                    prog.len()
                ))
            })?;
            let fprog = libc::sock_fprog {
                len,
                filter: prog.as_ptr().cast_mut(),
            };
            // The kernel copies the program during the call; `prog` outlives it.
            sys::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT_DATA,
                &fprog,
                "setsockopt(PACKET_FANOUT_DATA)",
                &self.ifname,
            )?;
        }
        Ok(())
    }

    /// The id of the fanout group this socket is in (`getsockopt(PACKET_FANOUT)`), e.g.
    /// the one the kernel picked for [`Fanout::unique_id`].
    pub fn fanout_group(&self) -> io::Result<u16> {
        let v: libc::c_int = sys::getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            "getsockopt(PACKET_FANOUT)",
            &self.ifname,
        )?;
        Ok((v & 0xffff) as u16)
    }

    /// Reads and resets the RX counters (`PACKET_STATISTICS`).
    pub fn stats(&self) -> io::Result<RxStats> {
        read_stats(self.fd.as_raw_fd(), &self.ifname)
    }

    /// Waits until an RX block is ready or the socket is writable, or `timeout` passes
    /// (`None` = no limit). Returns `(rx_ready, writable)` as `poll(2)` reported them.
    /// Note: the kernel reports a packet socket writable whenever its send buffer has
    /// room, not only when a TX slot is free; use [`TxRing::writable`] for the ring.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<(bool, bool)> {
        let ev = sys::poll_fd(
            self.fd.as_raw_fd(),
            libc::POLLIN | libc::POLLOUT,
            sys::timeout_ms(timeout),
            &self.ifname,
        )?;
        Ok((ev & libc::POLLIN != 0, ev & libc::POLLOUT != 0))
    }
}

/// `struct tpacket_stats_v3` as three u32 (libc's type has no `Default`).
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct V3Stats([u32; 3]);

/// `PACKET_STATISTICS` of `fd` (read and reset). A TPACKET_V2 socket fills only the first
/// two words (`struct tpacket_stats`); `freeze_q_cnt` is then 0.
pub(crate) fn read_stats(fd: RawFd, ifname: &str) -> io::Result<RxStats> {
    let s: V3Stats = sys::getsockopt(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_STATISTICS,
        "getsockopt(PACKET_STATISTICS)",
        ifname,
    )?;
    Ok(RxStats {
        packets: s.0[0],
        drops: s.0[1],
        freeze_q_cnt: s.0[2],
    })
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u32, b: u32) -> u32 {
    a / gcd(a, b) * b
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn stats_layout_matches_libc() {
        assert_eq!(size_of::<V3Stats>(), size_of::<libc::tpacket_stats_v3>());
        assert_eq!(offset_of!(libc::tpacket_stats_v3, tp_drops), 4);
        assert_eq!(offset_of!(libc::tpacket_stats_v3, tp_freeze_q_cnt), 8);
    }

    #[test]
    fn kernel_header_sizes_the_rings_rely_on() {
        // TPACKET3_HDRLEN = TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll).
        assert_eq!(size_of::<libc::tpacket3_hdr>(), 48);
        assert_eq!(size_of::<libc::sockaddr_ll>(), 20);
        assert_eq!(libc::TPACKET3_HDRLEN, 68);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_status), 20);
        assert_eq!(offset_of!(libc::tpacket_block_desc, hdr), 8);
        assert_eq!(offset_of!(libc::tpacket_hdr_v1, num_pkts), 4);
    }

    #[test]
    fn tx_block_geometry() {
        assert_eq!(lcm(2048, PAGE), 4096);
        assert_eq!(lcm(69_632, PAGE), 69_632);
        assert_eq!(lcm(1520, PAGE), 95 * 4096);
    }

    #[test]
    fn opening_a_missing_interface_names_it() {
        let err = PacketSocket::open("rvs-missing0", &PacketConfig::default()).unwrap_err();
        assert!(err.to_string().contains("rvs-missing0"), "{err}");
    }
}
