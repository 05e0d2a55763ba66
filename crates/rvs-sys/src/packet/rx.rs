//! The TPACKET_V3 RX ring: the kernel fills blocks of variable-size frames; userspace
//! takes a whole block, reads (or rewrites in place) its frames without copying, and
//! hands the block back when done.
//!
//! Iteration validates every offset the kernel wrote against the block size before
//! making a slice, so a corrupt block ends the iteration instead of reading out of
//! bounds. It does not reassemble truncated frames or re-insert stripped VLAN tags: it
//! reports them (`len > snaplen`, [`RxMeta::vlan_tci`]).

use std::io;
use std::os::fd::RawFd;
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
}

/// The TPACKET_V3 RX ring of a [`super::PacketSocket`].
#[derive(Debug)]
pub struct RxRing {
    fd: RawFd,
    base: *mut u8,
    block_size: usize,
    block_count: usize,
    next: usize,
    vnet: bool,
    ifname: String,
    malformed: u64,
}

// SAFETY: `base` points into the owning socket's mapping (see PacketSocket's Send).
unsafe impl Send for RxRing {}

/// Offset of the `sockaddr_ll` the kernel writes after each `tpacket3_hdr`
/// (TPACKET_ALIGN(sizeof(struct tpacket3_hdr))).
const SLL_OFFSET: usize = 48;

impl RxRing {
    pub(super) fn new(
        fd: RawFd,
        base: *mut u8,
        block_size: usize,
        block_count: usize,
        vnet: bool,
        ifname: &str,
    ) -> Self {
        Self {
            fd,
            base,
            block_size,
            block_count,
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

    /// True when the next block belongs to userspace.
    pub fn ready(&self) -> bool {
        self.block_status(self.next).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
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
    /// [`RxBlock`] gives it back to the kernel.
    pub fn next_block(&mut self) -> Option<RxBlock<'_>> {
        if !self.ready() {
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
        let mut n = 0;
        while let Some(mut block) = self.next_block() {
            for frame in block.frames() {
                f(frame);
                n += 1;
            }
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

    /// The next frame as raw parts: data pointer, snaplen, metadata.
    fn next_raw(&mut self) -> Option<(*mut u8, usize, RxMeta)> {
        if self.remaining == 0 {
            return None;
        }
        let bs = self.ring.block_size;
        let off = self.offset;
        let hdr_len = size_of::<libc::tpacket3_hdr>();
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
        if mac < hdr_len + vnet_len || off + mac + snap > bs {
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
        Some((data, snap, meta))
    }

    fn corrupt(&mut self) -> Option<(*mut u8, usize, RxMeta)> {
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
        let (ptr, len, meta) = self.block.next_raw()?;
        // SAFETY: `ptr..ptr+len` is inside the block, which stays owned by userspace for
        // 'b (it is released only when the `RxBlock`, borrowed for 'b, is dropped).
        // `next_raw` yields each frame once and frames of a block do not overlap, so this
        // is the only reference to these bytes.
        let data = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        Some(RxFrame { data, meta })
    }
}
