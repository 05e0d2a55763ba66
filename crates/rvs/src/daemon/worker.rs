//! The data-plane loop: receive, forward, transmit; the control plane's work between batches.

use super::control::Request;
use super::housekeeping::ControlPlane;
use crate::fastpath::FastPath;
use rvs_core::director::{Director, PortId, Verdict};
use rvs_core::time::Instant;
use rvs_core::wire::{CsumStatus, Frame};
use rvs_sys::packet::vnet::{F_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, VirtioNetHdr};
use rvs_sys::packet::{PacketSocket, RxFrame, RxRing, TxRing};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Frames taken from one RX ring before the others get a turn (and before the TX rings
/// are flushed).
pub(super) const BATCH: usize = 64;

/// How often, at most, the worker runs the engine's timers and answers control requests
/// while traffic keeps it busy (it always does before it sleeps).
pub(super) const HOUSEKEEPING: Duration = Duration::from_millis(1);

/// How often the worker reads the RX rings' drop counters (and before each answer).
pub(super) const RING_STATS_EVERY: Duration = Duration::from_millis(100);

/// Forward one received frame: rewritten in place in its RX slot (with the slot's
/// headroom for encapsulation), then copied once into the egress port's TX ring.
pub(super) fn forward(
    d: &mut Director,
    now: Instant,
    port: PortId,
    frame: RxFrame<'_>,
    txs: &mut [Option<&mut TxRing>],
    fast: &mut Option<FastPath>,
) {
    let n = frame.data.len();
    let seg = fast
        .as_ref()
        .and_then(|_| crate::fastpath::peek(frame.data));
    let vnet = frame.meta.vnet.unwrap_or_default();
    let csum_valid = frame.meta.csum_valid();
    let (buf, head) = frame.into_buf();
    let Ok(mut f) = Frame::new(buf, head, n) else {
        return;
    };
    if vnet.needs_csum() {
        f.set_csum(CsumStatus::Partial {
            start: vnet.csum_start,
            offset: vnet.csum_offset,
        });
    } else if csum_valid || vnet.data_valid() {
        f.set_csum(CsumStatus::Valid);
    }
    if matches!(vnet.gso_type & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6) {
        // A TSO/GRO super-frame: the engine cuts it itself where the kernel cannot (tunnels).
        f.set_gso_size(vnet.gso_size);
    }
    if let Verdict::Transmit(p) = d.handle(now, port, &mut f) {
        let mut h = vnet;
        match f.csum() {
            CsumStatus::Partial { start, offset } => {
                h.flags = F_NEEDS_CSUM;
                h.csum_start = start;
                h.csum_offset = offset;
            }
            _ => {
                h.flags = 0;
                h.csum_start = 0;
                h.csum_offset = 0;
            }
        }
        if f.len() != n {
            // Encapsulated: the GSO type no longer describes the frame.
            h.gso_type = 0;
            h.gso_size = 0;
            h.hdr_len = 0;
        }
        if let Some(Some(t)) = txs.get_mut(usize::from(p.0)) {
            let _ = t.send(f.data(), Some(&h));
        }
        if let (Some(fp), Some((seg, flags))) = (fast, seg) {
            fp.forwarded(d, now, seg, flags);
        }
    }
}

/// How the data-plane thread is scheduled and how it waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pacing {
    /// `SCHED_FIFO` priority, 0 for ordinary scheduling (`--rt-priority`).
    pub(super) rt_priority: u8,
    /// Keep polling the rings this long after the last frame before sleeping
    /// (`--busy-poll`; zero: sleep as soon as a round finds nothing).
    pub(super) busy_poll: Duration,
}

/// The data-plane loop: drain the RX rings (frame rings: each frame is available as soon
/// as the kernel wrote it), the main rings before the SYN rings, forward, flush the TX rings
/// (after the main rings and once per round), and sleep in `poll(2)` only when a round
/// found nothing (and, with `--busy-poll`, nothing came for that long).
pub(super) fn worker(
    d: &mut Director,
    (sockets, syn_sockets): (&mut [PacketSocket], &mut [Option<PacketSocket>]),
    stop: &AtomicBool,
    requests: &mpsc::Receiver<Request>,
    cp: &mut ControlPlane<'_>,
    clock: std::time::Instant,
    Pacing {
        rt_priority,
        busy_poll,
    }: Pacing,
) -> io::Result<()> {
    let now = || Instant(clock.elapsed().as_nanos() as u64);
    let mut out = vec![0u8; 2048];
    let nports = sockets.len();
    let mut rxs: [Option<&mut RxRing>; rvs_sys::poll::MAX_WAIT_FDS] = Default::default();
    let mut txs: [Option<&mut TxRing>; rvs_sys::poll::MAX_WAIT_FDS] = Default::default();
    let mut syn_port: [usize; rvs_sys::poll::MAX_WAIT_FDS] = std::array::from_fn(|i| i);
    for (i, s) in sockets.iter_mut().enumerate() {
        (rxs[i], txs[i]) = s.rings();
    }
    // SYN rings after the main ones, each for the port of the same index.
    let mut nrings = nports;
    for (i, s) in syn_sockets.iter_mut().enumerate() {
        if let Some(s) = s
            && nrings < rxs.len()
        {
            rxs[nrings] = s.rx();
            syn_port[nrings] = i;
            nrings += 1;
        }
    }
    let txs = &mut txs[..nports];
    d.announce(now());
    // Forward ahead of ordinary processes, as the kernel's NAT does in softirq: under CPU
    // contention an ordinary thread's wake-up waits for the running task's slice (up to
    // milliseconds), so a server's FIN sent microseconds after its response could reach
    // the client long after the data. A client that reads the response and closes before
    // the FIN arrives closes first and keeps a TIME_WAIT socket for 60 s; a single busy
    // client then runs out of ephemeral ports (28k / 60 s ≈ 470 conn/s).
    if rt_priority > 0 {
        match rvs_sys::sched::set_fifo(i32::from(rt_priority)) {
            Ok(()) => tracing::info!("data plane scheduled SCHED_FIFO priority {rt_priority}"),
            Err(e) => tracing::warn!(
                "data plane stays under ordinary scheduling (SCHED_FIFO {rt_priority} refused: \
                 {e}); under CPU contention its forwarding waits for other processes"
            ),
        }
    }
    let mut housekept = now();
    let spin_ns = busy_poll.as_nanos() as u64;
    let mut last_frame = housekept;
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        let mut got = 0;
        // A SYN ring that still had a full batch waiting: its backlog (SYN admission).
        let mut syn_backlog = false;
        // Known connections' frames first, then new connections' SYNs: under a SYN flood
        // the SYN rings fill (and drop) while the main rings are served every round.
        for (i, rxr) in rxs[..nrings].iter_mut().enumerate() {
            let Some(rxr) = rxr.as_mut() else { continue };
            if i == nports {
                // Their output leaves before the SYN-ACKs' (each transmission runs the
                // receiving side's stack in this thread on veth).
                for tx in txs.iter_mut().flatten() {
                    let _ = tx.flush();
                }
            }
            let port = PortId(syn_port[i] as u8);
            let n = rxr.drain_max(BATCH, |frame| forward(d, t, port, frame, txs, &mut cp.fast));
            syn_backlog |= i >= nports && n == BATCH;
            got += n;
        }
        d.syn_backlog(t, syn_backlog);
        if got > 0 {
            last_frame = t;
        }
        // `--busy-poll`: a quiet round soon after traffic polls again instead of sleeping,
        // and keeps the housekeeping to its usual pace.
        let spinning = got == 0 && t.0.saturating_sub(last_frame.0) < spin_ns;
        // Frames the engine originated (ARP/ND, released parked frames).
        while let Some((p, len)) = d.poll_transmit(&mut out) {
            if let Some(Some(tx)) = txs.get_mut(usize::from(p.0)) {
                let _ = tx.send(&out[..len], Some(&VirtioNetHdr::default()));
            }
        }
        for tx in txs.iter_mut().flatten() {
            let _ = tx.flush();
        }
        let due = d.poll_timeout().is_some_and(|at| at <= t);
        if (got == 0 && !spinning)
            || due
            || t.0.saturating_sub(housekept.0) >= HOUSEKEEPING.as_nanos() as u64
        {
            if let Some(fp) = &mut cp.fast {
                fp.fold(d, t, false);
            }
            d.expire(t);
            cp.housekeeping(d, t);
            cp.forward_probes(d, t, txs);
            cp.read_rings(&rxs[..nrings], t, false);
            while let Ok(req) = requests.try_recv() {
                cp.read_rings(&rxs[..nrings], t, true);
                if let Some(fp) = &mut cp.fast {
                    fp.fold(d, t, true);
                }
                let answer = cp.answer(d, req.ask, t);
                let _ = req.reply.send(answer);
            }
            cp.view = None;
            cp.exports.step(d, t, super::conn_export::CHUNK_SLOTS);
            cp.zeroing.step(d, super::zeroing::CHUNK);
            housekept = t;
        }
        if got > 0 {
            continue;
        }
        if spinning {
            std::hint::spin_loop();
            continue;
        }
        // Nothing arrived this round: sleep until traffic, a timer or the next stop check.
        let wait = d
            .poll_timeout()
            .map(|at| Duration::from_nanos(at.0.saturating_sub(t.0)))
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        // A listing being copied goes on at least every millisecond.
        let wait = if cp.exports.busy() || cp.zeroing.busy() {
            wait.min(super::conn_export::Exports::WAIT)
        } else {
            wait
        };
        let mut fds: [Option<BorrowedFd<'_>>; rvs_sys::poll::MAX_WAIT_FDS] = [None; 8];
        let mut n = 0;
        for r in rxs[..nrings].iter().flatten() {
            fds[n] = Some(r.as_fd());
            n += 1;
        }
        if let Some(p) = &cp.probe
            && n < fds.len()
        {
            fds[n] = Some(p.device().as_fd());
            n += 1;
        }
        if let Some(r) = &cp.roles
            && n < fds.len()
        {
            fds[n] = Some(r.wake_fd());
            n += 1;
        }
        if let Some(fd) = cp.sync.fd()
            && n < fds.len()
        {
            fds[n] = Some(fd);
            n += 1;
        }
        let fds: [BorrowedFd<'_>; rvs_sys::poll::MAX_WAIT_FDS] =
            std::array::from_fn(|i| fds[i.min(n.saturating_sub(1))].expect("an RX ring"));
        let mut ready = [false; rvs_sys::poll::MAX_WAIT_FDS];
        rvs_sys::poll::wait_readable(&fds[..n], &mut ready, Some(wait))?;
    }
    Ok(())
}
