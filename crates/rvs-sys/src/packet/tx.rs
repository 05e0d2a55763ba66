//! The TX ring: fixed-size frame slots shared with the kernel. Userspace reserves the
//! next free slot, writes a frame into it in place, commits it (`TP_STATUS_SEND_REQUEST`),
//! and [`TxRing::flush`] asks the kernel to send everything committed with one
//! `sendto(fd, NULL, 0, MSG_DONTWAIT)`.
//!
//! Back-pressure is reported, never waited out blindly: [`TxRing::reserve`] returns
//! `None` when the next slot is still owned by the kernel, and [`TxRing::wait_writable`]
//! waits with a timeout. This module does not queue frames of its own.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::vnet::{VNET_HDR_LEN, VirtioNetHdr};
use crate::sys::with_context;

/// Where the frame data starts in a TPACKET_V3 TX slot:
/// `TPACKET3_HDRLEN - sizeof(struct sockaddr_ll)` (af_packet.c, tpacket_parse_header).
const TX_DATA_OFFSET: usize = libc::TPACKET3_HDRLEN - size_of::<libc::sockaddr_ll>();
/// The same for a TPACKET_V2 slot (`TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`).
const TX_DATA_OFFSET_V2: usize = libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>();

/// The TX ring of a [`super::PacketSocket`].
#[derive(Debug)]
pub struct TxRing {
    fd: RawFd,
    base: *mut u8,
    frame_size: usize,
    frame_count: usize,
    next: usize,
    vnet: bool,
    /// TPACKET_V2 slot headers (`tpacket2_hdr`) instead of V3 ones.
    v2: bool,
    unflushed: usize,
    ifname: String,
    wrong_format: u64,
}

// SAFETY: `base` points into the owning socket's mapping (see PacketSocket's Send).
unsafe impl Send for TxRing {}

impl TxRing {
    pub(super) fn new(
        fd: RawFd,
        base: *mut u8,
        frame_size: usize,
        frame_count: usize,
        vnet: bool,
        v2: bool,
        ifname: &str,
    ) -> Self {
        Self {
            fd,
            base,
            frame_size,
            frame_count,
            next: 0,
            vnet,
            v2,
            unflushed: 0,
            ifname: ifname.to_owned(),
            wrong_format: 0,
        }
    }

    /// The largest frame (Ethernet header on, vnet header excluded) a slot holds.
    pub fn capacity(&self) -> usize {
        self.frame_size - self.data_offset() - if self.vnet { VNET_HDR_LEN } else { 0 }
    }

    fn data_offset(&self) -> usize {
        if self.v2 {
            TX_DATA_OFFSET_V2
        } else {
            TX_DATA_OFFSET
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.frame_count
    }

    /// Frames committed since the last successful [`TxRing::flush`].
    pub fn unflushed(&self) -> usize {
        self.unflushed
    }

    /// Frames the kernel rejected as malformed (`TP_STATUS_WRONG_FORMAT` seen on reuse).
    pub fn wrong_format(&self) -> u64 {
        self.wrong_format
    }

    fn hdr(&self, idx: usize) -> *mut libc::tpacket3_hdr {
        // SAFETY: idx < frame_count and every slot lies inside the TX part of the mapping
        // (blocks hold whole frames and are contiguous, so slot i starts at i*frame_size).
        unsafe { self.base.add(idx * self.frame_size) as *mut libc::tpacket3_hdr }
    }

    fn status(&self, idx: usize) -> &AtomicU32 {
        // SAFETY: tp_status of slot `idx` is inside the mapping, 4-byte aligned (slots
        // are 16-byte multiples), and shared with the kernel: accessed atomically. In a
        // V2 slot it is the first field of tpacket2_hdr.
        unsafe {
            if self.v2 {
                AtomicU32::from_ptr(self.hdr(idx).cast::<u32>())
            } else {
                AtomicU32::from_ptr(&raw mut (*self.hdr(idx)).tp_status)
            }
        }
    }

    /// True when the next slot is free.
    pub fn writable(&self) -> bool {
        let s = self.status(self.next).load(Ordering::Acquire);
        s == libc::TP_STATUS_AVAILABLE || s & libc::TP_STATUS_WRONG_FORMAT != 0
    }

    /// Reserves the next slot if the kernel is done with it; `None` means the ring is
    /// full (call [`TxRing::flush`], then [`TxRing::wait_writable`]). Dropping the slot
    /// without [`TxSlot::commit`] leaves it free.
    pub fn reserve(&mut self) -> Option<TxSlot<'_>> {
        let idx = self.next;
        let s = self.status(idx).load(Ordering::Acquire);
        if s & libc::TP_STATUS_WRONG_FORMAT != 0 {
            self.wrong_format += 1;
        } else if s != libc::TP_STATUS_AVAILABLE {
            return None;
        }
        let cap = self.capacity();
        let vnet = self.vnet;
        // SAFETY: slot `idx` is free (acquire load above), so the kernel does not touch it
        // until we store SEND_REQUEST; the data area `[TX_DATA_OFFSET, frame_size)` lies in it.
        let data = unsafe { (self.hdr(idx) as *mut u8).add(self.data_offset()) };
        if vnet {
            // SAFETY: the vnet header's 10 bytes are the first of the data area.
            unsafe {
                data.cast::<[u8; VNET_HDR_LEN]>()
                    .write(VirtioNetHdr::default().to_bytes())
            };
        }
        Some(TxSlot {
            ring: self,
            idx,
            data,
            cap,
        })
    }

    /// Copies `frame` into the next free slot (with `vnet` as its virtio header when the
    /// socket has them; `None` = no offloads) and commits it. Returns `false` when the
    /// ring is full. Fails when the frame does not fit a slot.
    pub fn send(&mut self, frame: &[u8], vnet: Option<&VirtioNetHdr>) -> io::Result<bool> {
        let cap = self.capacity();
        if frame.len() > cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TX frame of {} bytes on {}: slot holds {cap}",
                    frame.len(),
                    self.ifname
                ),
            ));
        }
        let Some(mut slot) = self.reserve() else {
            return Ok(false);
        };
        slot.buf()[..frame.len()].copy_from_slice(frame);
        if let Some(h) = vnet {
            slot.set_vnet_hdr(h);
        }
        slot.commit(frame.len());
        Ok(true)
    }

    /// Asks the kernel to transmit every committed frame:
    /// `sendto(fd, NULL, 0, MSG_DONTWAIT)`. A full device queue (`EAGAIN`/`ENOBUFS`) is
    /// not an error: the frames stay queued and `Ok(false)` says to retry later.
    pub fn flush(&mut self) -> io::Result<bool> {
        if self.unflushed == 0 {
            return Ok(true);
        }
        // SAFETY: a NULL buffer of length 0 and no address is how a TX ring is kicked;
        // the kernel reads the frames from the ring, not from the arguments.
        let rc = unsafe {
            libc::sendto(
                self.fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Ok(false),
                _ => Err(with_context(err, "sendto(TX ring flush)", &self.ifname)),
            };
        }
        self.unflushed = 0;
        Ok(true)
    }

    /// Waits until the next slot is free or `timeout` passes; returns whether it is.
    /// Flushes first when frames are committed but unsent (they would never free their
    /// slots otherwise).
    ///
    /// Observed on 6.18: `poll(2)` reports a packet socket writable whenever its send
    /// buffer has room (`datagram_poll`), whether or not a TX slot is free, so it cannot
    /// be used to sleep until a slot frees. This backs off in short sleeps instead
    /// (20 µs doubling to 1 ms): bounded, and no busy loop.
    pub fn wait_writable(&mut self, timeout: Duration) -> io::Result<bool> {
        if self.writable() {
            return Ok(true);
        }
        if self.unflushed > 0 {
            self.flush()?;
        }
        let end = std::time::Instant::now() + timeout;
        let mut nap = Duration::from_micros(20);
        loop {
            if self.writable() {
                return Ok(true);
            }
            let now = std::time::Instant::now();
            if now >= end {
                return Ok(false);
            }
            std::thread::sleep(nap.min(end - now));
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }
}

/// A reserved TX slot: write the frame with [`TxSlot::buf`], then [`TxSlot::commit`].
#[derive(Debug)]
pub struct TxSlot<'r> {
    ring: &'r mut TxRing,
    idx: usize,
    data: *mut u8,
    cap: usize,
}

impl TxSlot<'_> {
    fn frame_ptr(&self) -> *mut u8 {
        let skip = if self.ring.vnet { VNET_HDR_LEN } else { 0 };
        // SAFETY: the frame area starts `skip` bytes into the slot's data area.
        unsafe { self.data.add(skip) }
    }

    /// The slot's frame buffer ([`TxRing::capacity`] bytes); write the Ethernet frame
    /// from its start.
    pub fn buf(&mut self) -> &mut [u8] {
        // SAFETY: `cap` bytes from frame_ptr() lie inside this slot, which the kernel does
        // not touch until commit; `&mut self` makes this the only reference to them.
        unsafe { std::slice::from_raw_parts_mut(self.frame_ptr(), self.cap) }
    }

    /// Sets the frame's `virtio_net_hdr` (GSO and partial-checksum request). Defaults to
    /// all zero (no offload). Ignored when the socket has no vnet headers.
    pub fn set_vnet_hdr(&mut self, hdr: &VirtioNetHdr) {
        if self.ring.vnet {
            // SAFETY: the first 10 bytes of the slot's data area hold the vnet header.
            unsafe { self.data.cast::<[u8; VNET_HDR_LEN]>().write(hdr.to_bytes()) };
        }
    }

    /// Hands the first `len` bytes of [`TxSlot::buf`] to the kernel for the next flush.
    ///
    /// # Panics
    /// If `len` exceeds the slot's capacity (a caller bug).
    pub fn commit(self, len: usize) {
        assert!(
            len <= self.cap,
            "TX frame of {len} bytes exceeds slot capacity {}",
            self.cap
        );
        let vnet = if self.ring.vnet { VNET_HDR_LEN } else { 0 };
        let hdr = self.ring.hdr(self.idx);
        // SAFETY: the slot is ours until the release store below; plain writes of its
        // header fields (V3 TX wants tp_next_offset 0 and tp_len incl. the vnet header;
        // V2 reads tp_len).
        unsafe {
            if self.ring.v2 {
                let h2 = hdr.cast::<libc::tpacket2_hdr>();
                (*h2).tp_len = (len + vnet) as u32;
                (*h2).tp_snaplen = (len + vnet) as u32;
            } else {
                (*hdr).tp_next_offset = 0;
                (*hdr).tp_len = (len + vnet) as u32;
                (*hdr).tp_snaplen = (len + vnet) as u32;
            }
        }
        // Release: the frame bytes and header are visible before the kernel sees the request.
        self.ring
            .status(self.idx)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.ring.next = (self.idx + 1) % self.ring.frame_count;
        self.ring.unflushed += 1;
    }
}
