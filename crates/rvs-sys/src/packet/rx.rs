//! The RX ring, in one of two layouts:
//! - TPACKET_V3 (blocks): the kernel fills blocks of variable-size frames; userspace
//!   takes a whole block, reads (or rewrites in place) its frames without copying, and
//!   hands the block back when done. A block is handed over when full or when
//!   `tp_retire_blk_tov` (≥ 1 ms) expires: on request/response traffic every frame can
//!   wait up to that long, and the wake-up comes only then.
//! - TPACKET_V2 (frames): fixed-size frame slots, each handed over (and the reader woken)
//!   as soon as the kernel has written it: no retirement delay. What a latency-bound
//!   forwarder wants; it costs a slot of the largest frame size per frame.
//!
//! Iteration validates every offset the kernel wrote against the block size before
//! making a slice, so a corrupt block ends the iteration instead of reading out of
//! bounds. It does not reassemble truncated frames or re-insert stripped VLAN tags: it
//! reports them (`len > snaplen`, [`RxMeta::vlan_tci`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::vnet::{VNET_HDR_LEN, VirtioNetHdr};
use crate::sys;

/// Where a received frame was going (`sll_pkttype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `PACKET_HOST`: addressed to this interface.
    Host,
    /// `PACKET_BROADCAST`.
    Broadcast,
    /// `PACKET_MULTICAST`.
    Multicast,
    /// `PACKET_OTHERHOST`: for another host (seen in promiscuous mode).
    OtherHost,
    /// `PACKET_OUTGOING`: sent through this interface (by anyone on this host).
    Outgoing,
    /// Any other value (loopback, user, kernel).
    Other(u8),
}

impl PacketType {
    fn from_raw(v: u8) -> Self {
        match v {
            0 => Self::Host,
            1 => Self::Broadcast,
            2 => Self::Multicast,
            3 => Self::OtherHost,
            4 => Self::Outgoing,
            v => Self::Other(v),
        }
    }
}

/// What the kernel says about one received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    /// Length of the frame on the wire (`tp_len`); more than the data when truncated.
    pub len: u32,
    /// `tp_status` bits (`TP_STATUS_*`).
    pub status: u32,
    /// Direction / addressing of the frame.
    pub pkt_type: PacketType,
    /// VLAN TCI the driver stripped (`TP_STATUS_VLAN_VALID`): the tag is *not* in the
    /// data; re-insert it before forwarding if it matters.
    pub vlan_tci: Option<u16>,
    /// VLAN TPID of the stripped tag (`TP_STATUS_VLAN_TPID_VALID`).
    pub vlan_tpid: Option<u16>,
    /// The flow hash the kernel computed (`TP_FT_REQ_FILL_RXHASH`).
    pub rxhash: u32,
    /// The `virtio_net_hdr` preceding the frame (with `PACKET_VNET_HDR` only).
    pub vnet: Option<VirtioNetHdr>,
    /// Kernel timestamp: seconds and nanoseconds.
    pub timestamp: (u32, u32),
}

impl RxMeta {
    /// True when the data is shorter than the frame was (`snaplen < len`).
    pub fn truncated(&self, data_len: usize) -> bool {
        (data_len as u64) < u64::from(self.len)
    }

    /// `TP_STATUS_CSUMNOTREADY`: the L4 checksum is partial (only the pseudo-header sum
    /// is in the field). An incremental update of it is wrong; finish it or forward it
    /// with a vnet header asking the kernel to.
    pub fn csum_not_ready(&self) -> bool {
        self.status & libc::TP_STATUS_CSUMNOTREADY != 0
    }

    /// `TP_STATUS_CSUM_VALID`: the kernel (or the device) already verified the checksum.
    pub fn csum_valid(&self) -> bool {
        self.status & libc::TP_STATUS_CSUM_VALID != 0
    }

    /// True when the GSO info says this is a super-frame to be segmented on output.
    pub fn is_gso(&self) -> bool {
        self.vnet.is_some_and(|v| v.is_gso())
    }
}

/// One received frame: the Ethernet frame in the ring (writable, for in-place rewrite)
/// and its metadata.
#[derive(Debug)]
pub struct RxFrame<'a> {
    /// The frame from the Ethernet header on, `snaplen` bytes.
    pub data: &'a mut [u8],
    /// Kernel metadata.
    pub meta: RxMeta,
    /// Writable bytes in front of `data` inside the ring (after the kernel's frame header
    /// and `sockaddr_ll`; they include the vnet header, already copied into `meta`).
    /// `PACKET_RESERVE` ([`super::RxRingConfig::reserve`]) enlarges it.
    headroom: usize,
    /// Writable bytes after `data` inside the ring frame (V2 slots; 0 in V3 blocks).
    tailroom: usize,
}

impl<'a> RxFrame<'a> {
    /// Bytes available in front of the frame for prepending headers in place.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// Bytes available after the frame inside its ring slot (frame rings only).
    pub fn tailroom(&self) -> usize {
        self.tailroom
    }

    /// The frame with its headroom and tailroom: a buffer whose
    /// `[headroom..headroom + data.len()]` is `data`, so the frame can be rewritten in
    /// place and grow at either end (encapsulation, payload rewrites) without a copy.
    pub fn into_buf(self) -> (&'a mut [u8], usize) {
        let len = self.headroom + self.data.len() + self.tailroom;
        // SAFETY: the `headroom` bytes in front of `data` and the `tailroom` bytes after it
        // lie in the same ring frame, owned by userspace for 'a like `data` (checked when
        // the frame was parsed), and belong to no other frame; consuming `self` leaves
        // this the only reference.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(self.data.as_mut_ptr().sub(self.headroom), len)
        };
        (buf, self.headroom)
    }
}

/// How the ring's memory is laid out.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// TPACKET_V3: `block_count` blocks of packed frames.
    Blocks,
    /// TPACKET_V2: `count` slots of `frame_size`, `per_block` in each block.
    Frames {
        frame_size: usize,
        per_block: usize,
        count: usize,
    },
}

/// The RX ring of a [`super::PacketSocket`] (TPACKET_V3 blocks or TPACKET_V2 frames, as
/// [`super::PacketConfig::version`] says).
#[derive(Debug)]
pub struct RxRing {
    fd: RawFd,
    base: *mut u8,
    block_size: usize,
    block_count: usize,
    layout: Layout,
    /// The next block (V3) or frame slot (V2) to look at.
    next: usize,
    vnet: bool,
    ifname: String,
    malformed: u64,
}

// SAFETY: `base` points into the owning socket's mapping (see PacketSocket's Send).
unsafe impl Send for RxRing {}

impl AsFd for RxRing {
    /// The socket's descriptor, to wait on it (readable: a frame or block is ready) while
    /// the rings are borrowed from the socket.
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the ring is a field of the PacketSocket that owns the descriptor and
        // closes it only when dropped, after the ring; a borrow of the ring cannot outlive it.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

/// Offset of the `sockaddr_ll` the kernel writes after each `tpacket3_hdr`
/// (TPACKET_ALIGN(sizeof(struct tpacket3_hdr))).
const SLL_OFFSET: usize = 48;
/// The same after a `tpacket2_hdr` (TPACKET_ALIGN(32)).
const SLL_OFFSET_V2: usize = 32;
/// `sizeof(struct sockaddr_ll)`.
const SLL_LEN: usize = 20;

impl RxRing {
    pub(super) fn new(
        fd: RawFd,
        base: *mut u8,
        block_size: usize,
        block_count: usize,
        vnet: bool,
        ifname: &str,
    ) -> Self {
        Self::with_layout(
            fd,
            base,
            block_size,
            block_count,
            Layout::Blocks,
            vnet,
            ifname,
        )
    }

    /// A TPACKET_V2 ring: `frame_size` slots, as many per block as fit.
    pub(super) fn new_v2(
        fd: RawFd,
        base: *mut u8,
        block_size: usize,
        block_count: usize,
        frame_size: usize,
        vnet: bool,
        ifname: &str,
    ) -> Self {
        let per_block = block_size / frame_size;
        let layout = Layout::Frames {
            frame_size,
            per_block,
            count: per_block * block_count,
        };
        Self::with_layout(fd, base, block_size, block_count, layout, vnet, ifname)
    }

    fn with_layout(
        fd: RawFd,
        base: *mut u8,
        block_size: usize,
        block_count: usize,
        layout: Layout,
        vnet: bool,
        ifname: &str,
    ) -> Self {
        Self {
            fd,
            base,
            block_size,
            block_count,
            layout,
            next: 0,
            vnet,
            ifname: ifname.to_owned(),
            malformed: 0,
        }
    }

    fn block_status(&self, idx: usize) -> &AtomicU32 {
        // SAFETY: block `idx` (< block_count) lies inside the mapping; block_status is
        // the first u32 of tpacket_hdr_v1 at offset 8 of the page-aligned block, so it is
        // aligned; the kernel writes it concurrently, hence the atomic view.
        unsafe {
            let desc = self.base.add(idx * self.block_size) as *mut libc::tpacket_block_desc;
            AtomicU32::from_ptr(&raw mut (*desc).hdr.bh1.block_status)
        }
    }

    /// Start of V2 slot `idx` (< count).
    fn slot(&self, idx: usize) -> *mut u8 {
        let Layout::Frames {
            frame_size,
            per_block,
            ..
        } = self.layout
        else {
            unreachable!("slot() on a block ring")
        };
        // SAFETY: idx < count = per_block × block_count, so the slot lies inside block
        // idx / per_block, inside the mapping.
        unsafe {
            self.base
                .add((idx / per_block) * self.block_size + (idx % per_block) * frame_size)
        }
    }

    fn slot_status(&self, idx: usize) -> &AtomicU32 {
        // SAFETY: tp_status is the first u32 of the 16-byte-aligned tpacket2_hdr at the
        // start of the slot; the kernel writes it concurrently, hence the atomic view.
        unsafe { AtomicU32::from_ptr(self.slot(idx).cast::<u32>()) }
    }

    /// True when the next block (V3) or frame (V2) belongs to userspace.
    pub fn ready(&self) -> bool {
        let status = match self.layout {
            Layout::Blocks => self.block_status(self.next),
            Layout::Frames { .. } => self.slot_status(self.next),
        };
        status.load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Waits (in `poll(2)`, no busy loop) until a block is ready or `timeout` passes
    /// (`None` = no limit). Returns whether a block is ready.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        if self.ready() {
            return Ok(true);
        }
        sys::poll_fd(
            self.fd,
            libc::POLLIN | libc::POLLRDNORM | libc::POLLERR,
            sys::timeout_ms(timeout),
            &self.ifname,
        )?;
        Ok(self.ready())
    }

    /// Takes the next block if the kernel has handed it over. Dropping the returned
    /// [`RxBlock`] gives it back to the kernel. Block rings (TPACKET_V3) only: always
    /// `None` on a frame ring (use [`RxRing::drain`]).
    pub fn next_block(&mut self) -> Option<RxBlock<'_>> {
        if matches!(self.layout, Layout::Frames { .. }) || !self.ready() {
            return None;
        }
        let idx = self.next;
        // SAFETY: block `idx` is inside the mapping and now owned by userspace (acquire
        // load above), so the kernel does not write it until we release it.
        let (num, first) = unsafe {
            let desc = self.base.add(idx * self.block_size) as *const libc::tpacket_block_desc;
            let h = &(*desc).hdr.bh1;
            (h.num_pkts, h.offset_to_first_pkt)
        };
        Some(RxBlock {
            ring: self,
            idx,
            remaining: num,
            offset: first as usize,
        })
    }

    /// Processes every frame of every block that is ready now, without waiting; returns
    /// how many frames `f` saw.
    pub fn drain(&mut self, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        if let Layout::Frames { .. } = self.layout {
            return self.drain_frames(usize::MAX, f);
        }
        let mut n = 0;
        while let Some(mut block) = self.next_block() {
            for frame in block.frames() {
                f(frame);
                n += 1;
            }
        }
        n
    }

    /// Frame ring: hands at most `max` ready frames to `f`, each given back to the kernel
    /// right after `f` returns. Block ring: like [`RxRing::drain`] (whole blocks).
    pub fn drain_max(&mut self, max: usize, f: impl FnMut(RxFrame<'_>)) -> usize {
        match self.layout {
            Layout::Frames { .. } => self.drain_frames(max, f),
            Layout::Blocks => self.drain(f),
        }
    }

    fn drain_frames(&mut self, max: usize, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        let Layout::Frames {
            frame_size, count, ..
        } = self.layout
        else {
            return 0;
        };
        let vnet_len = if self.vnet { VNET_HDR_LEN } else { 0 };
        let mut n = 0;
        while n < max && self.ready() {
            let idx = self.next;
            let p = self.slot(idx);
            // SAFETY: the slot is owned by userspace (acquire load in ready()) until the
            // release store below; tpacket2_hdr (32 bytes) and the sockaddr_ll after it
            // lie inside the slot (the kernel refuses frame sizes smaller than that).
            let (h, pkttype) = unsafe {
                let h = *(p as *const libc::tpacket2_hdr);
                let sll = p.add(SLL_OFFSET_V2) as *const libc::sockaddr_ll;
                (h, (*sll).sll_pkttype)
            };
            let mac = usize::from(h.tp_mac);
            let snap = h.tp_snaplen as usize;
            let room = SLL_OFFSET_V2 + SLL_LEN;
            if mac < room + vnet_len || mac + snap > frame_size {
                self.malformed += 1;
            } else {
                // SAFETY: `[mac - vnet_len, mac + snap)` lies inside the slot (checked).
                let vnet = (vnet_len > 0).then(|| unsafe {
                    VirtioNetHdr::from_bytes(
                        &*(p.add(mac - VNET_HDR_LEN) as *const [u8; VNET_HDR_LEN]),
                    )
                });
                let status = h.tp_status;
                let meta = RxMeta {
                    len: h.tp_len,
                    status,
                    pkt_type: PacketType::from_raw(pkttype),
                    vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0).then_some(h.tp_vlan_tci),
                    vlan_tpid: (status & libc::TP_STATUS_VLAN_TPID_VALID != 0)
                        .then_some(h.tp_vlan_tpid),
                    rxhash: 0,
                    vnet,
                    timestamp: (h.tp_sec, h.tp_nsec),
                };
                // SAFETY: `[room, mac + snap)` is inside the slot, owned by userspace until
                // the release below, which happens after `f` (and so every borrow) ends.
                let data = unsafe { std::slice::from_raw_parts_mut(p.add(mac), snap) };
                f(RxFrame {
                    data,
                    meta,
                    headroom: mac - room,
                    tailroom: frame_size - (mac + snap),
                });
            }
            // Release: our reads/writes of the slot happen before the kernel reuses it.
            self.slot_status(idx)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.next = (idx + 1) % count;
            n += 1;
        }
        n
    }

    /// Waits up to `timeout` for a block, then [`RxRing::drain`]s. Returns the frame count
    /// (0 on timeout).
    pub fn recv(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnMut(RxFrame<'_>),
    ) -> io::Result<usize> {
        if !self.wait(timeout)? {
            return Ok(0);
        }
        Ok(self.drain(f))
    }

    /// Reads and resets the socket's RX counters (`PACKET_STATISTICS`): frames the
    /// socket saw and frames dropped because the ring was full, since the last read. The
    /// same as [`super::PacketSocket::stats`], callable while the rings are borrowed.
    pub fn stats(&self) -> io::Result<super::RxStats> {
        super::read_stats(self.fd, &self.ifname)
    }

    /// Number of blocks whose frame list was found inconsistent (iteration stopped early).
    pub fn malformed_blocks(&self) -> u64 {
        self.malformed
    }
}

/// A block of the RX ring owned by userspace; given back to the kernel on drop.
#[derive(Debug)]
pub struct RxBlock<'r> {
    ring: &'r mut RxRing,
    idx: usize,
    remaining: u32,
    offset: usize,
}

impl<'r> RxBlock<'r> {
    /// The number of frames not yet iterated.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Iterates over the block's frames. Each frame borrows the block, so no frame
    /// outlives its release to the kernel.
    pub fn frames(&mut self) -> RxFrames<'_, 'r> {
        RxFrames { block: self }
    }

    /// The next frame as raw parts: data pointer, snaplen, metadata, headroom.
    fn next_raw(&mut self) -> Option<(*mut u8, usize, RxMeta, usize)> {
        if self.remaining == 0 {
            return None;
        }
        let bs = self.ring.block_size;
        let off = self.offset;
        if off < size_of::<libc::tpacket_block_desc>()
            || off + SLL_OFFSET + 20 > bs
            || !off.is_multiple_of(4)
        {
            return self.corrupt();
        }
        // SAFETY: `off + 68 <= block_size` was checked, the block is inside the mapping
        // and owned by userspace; tpacket3_hdr needs 4-byte alignment, checked above.
        let (h, pkttype) = unsafe {
            let blk = self.ring.base.add(self.idx * bs);
            let h = *(blk.add(off) as *const libc::tpacket3_hdr);
            let sll = blk.add(off + SLL_OFFSET) as *const libc::sockaddr_ll;
            (h, (*sll).sll_pkttype)
        };
        let mac = h.tp_mac as usize;
        let snap = h.tp_snaplen as usize;
        let vnet_len = if self.ring.vnet { VNET_HDR_LEN } else { 0 };
        if mac < SLL_OFFSET + SLL_LEN + vnet_len || off + mac + snap > bs {
            return self.corrupt();
        }
        // SAFETY: `[off + mac - vnet_len, off + mac + snap)` lies inside this block
        // (checked above), which is owned by userspace while `self` lives.
        let (data, vnet) = unsafe {
            let blk = self.ring.base.add(self.idx * bs);
            let vnet = (vnet_len > 0).then(|| {
                let p = blk.add(off + mac - VNET_HDR_LEN) as *const [u8; VNET_HDR_LEN];
                VirtioNetHdr::from_bytes(&*p)
            });
            (blk.add(off + mac), vnet)
        };
        let status = h.tp_status;
        let meta = RxMeta {
            len: h.tp_len,
            status,
            pkt_type: PacketType::from_raw(pkttype),
            vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0)
                .then_some(h.hv1.tp_vlan_tci as u16),
            vlan_tpid: (status & libc::TP_STATUS_VLAN_TPID_VALID != 0)
                .then_some(h.hv1.tp_vlan_tpid),
            rxhash: h.hv1.tp_rxhash,
            vnet,
            timestamp: (h.tp_sec, h.tp_nsec),
        };
        self.remaining -= 1;
        self.offset = if self.remaining == 0 {
            bs
        } else {
            off + h.tp_next_offset as usize
        };
        if self.remaining > 0 && h.tp_next_offset == 0 {
            self.remaining = 0;
            self.ring.malformed += 1;
        }
        Some((data, snap, meta, mac - (SLL_OFFSET + SLL_LEN)))
    }

    fn corrupt(&mut self) -> Option<(*mut u8, usize, RxMeta, usize)> {
        self.remaining = 0;
        self.ring.malformed += 1;
        None
    }
}

impl Drop for RxBlock<'_> {
    fn drop(&mut self) {
        // Release: our reads/writes of the block happen before the kernel may reuse it.
        self.ring
            .block_status(self.idx)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.ring.next = (self.idx + 1) % self.ring.block_count;
    }
}

/// Iterator over the frames of an [`RxBlock`].
#[derive(Debug)]
pub struct RxFrames<'b, 'r> {
    block: &'b mut RxBlock<'r>,
}

impl<'b> Iterator for RxFrames<'b, '_> {
    type Item = RxFrame<'b>;

    fn next(&mut self) -> Option<RxFrame<'b>> {
        let (ptr, len, meta, headroom) = self.block.next_raw()?;
        // SAFETY: `ptr..ptr+len` is inside the block, which stays owned by userspace for
        // 'b (it is released only when the `RxBlock`, borrowed for 'b, is dropped).
        // `next_raw` yields each frame once and frames of a block do not overlap, so this
        // is the only reference to these bytes.
        let data = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        Some(RxFrame {
            data,
            meta,
            headroom,
            tailroom: 0,
        })
    }
}
