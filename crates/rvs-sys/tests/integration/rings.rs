//! TX ring on one side of a veth pair → RX ring on the other: a batch of 1,000 frames
//! arrives intact and in order; with `PACKET_IGNORE_OUTGOING` the sender does not see its
//! own frames (and a socket without it does, as `PacketType::Outgoing`).

use std::time::Duration;

use rvs_sys::packet::{PacketConfig, PacketType, RxRingConfig, TxRingConfig};

use crate::lab::{Deadline, Lab, test_frame, test_seq};

const COUNT: u32 = 1000;

#[test]
fn tx_ring_to_rx_ring_across_veth() {
    let lab = Lab::new();
    let mut rx_b = lab.open_b(PacketConfig {
        rx: Some(RxRingConfig {
            block_size: 1 << 20,
            block_count: 8,
            // Received only after sending: a long retire timeout keeps the 1,000
            // frames in one or two blocks instead of one block per 2 ms.
            retire_blk_tov_ms: 200,
            ..RxRingConfig::default()
        }),
        tx: None,
        ..PacketConfig::default()
    });
    let mut tx_a = lab.open_a(PacketConfig {
        tx: Some(TxRingConfig {
            frame_size: 2048,
            frame_count: 128,
        }),
        ignore_outgoing: true,
        qdisc_bypass: true,
        ..PacketConfig::default()
    });
    let mut watch_a = lab.open_a(PacketConfig {
        tx: None,
        ignore_outgoing: false,
        ..PacketConfig::default()
    });

    // Send: reserve/write/commit, flush every 64 frames, wait (bounded) when full.
    let deadline = Deadline::new(Duration::from_secs(20), "sending 1000 frames");
    let tx = tx_a.tx().unwrap();
    assert_eq!(tx.capacity(), 2048 - 48);
    let mut seq = 0;
    let mut full_waits = 0;
    while seq < COUNT {
        deadline.check();
        let frame = test_frame(lab.a_mac, lab.b_mac, seq);
        match tx.reserve() {
            Some(mut slot) => {
                slot.buf()[..frame.len()].copy_from_slice(&frame);
                slot.commit(frame.len());
                seq += 1;
                if seq % 64 == 0 {
                    tx.flush().unwrap();
                }
            }
            None => {
                full_waits += 1;
                tx.flush().unwrap();
                tx.wait_writable(Duration::from_millis(100)).unwrap();
            }
        }
    }
    while !tx.flush().unwrap() {
        deadline.check();
    }
    eprintln!("sent {COUNT} frames, ring full {full_waits} times");

    // Receive on b: all test frames, in order, intact.
    let deadline = Deadline::new(Duration::from_secs(20), "receiving 1000 frames");
    let mut next = 0u32;
    let rx = rx_b.rx().unwrap();
    while next < COUNT {
        deadline.check();
        rx.recv(Some(Duration::from_millis(100)), |f| {
            if let Some(s) = test_seq(f.data) {
                assert_eq!(s, next, "frame out of order");
                assert_eq!(&f.data[..], &test_frame(lab.a_mac, lab.b_mac, s)[..]);
                assert_eq!(f.meta.len as usize, f.data.len());
                assert_eq!(f.meta.pkt_type, PacketType::Host);
                next += 1;
            }
        })
        .unwrap();
    }
    let stats = rx_b.stats().unwrap();
    assert_eq!(stats.drops, 0, "{stats:?}");

    // The sender's own RX ring never saw them; the watcher without the option did.
    std::thread::sleep(Duration::from_millis(20));
    let mut own = 0;
    tx_a.rx()
        .unwrap()
        .drain(|f| own += u32::from(test_seq(f.data).is_some()));
    assert_eq!(own, 0, "PACKET_IGNORE_OUTGOING socket saw its own frames");
    let mut seen = 0;
    watch_a.rx().unwrap().drain(|f| {
        if test_seq(f.data).is_some() {
            assert_eq!(f.meta.pkt_type, PacketType::Outgoing);
            seen += 1;
        }
    });
    // qdisc bypass skips the outgoing tap (dev_queue_xmit_nit), so a bypassing sender
    // is invisible to other sockets on its interface too.
    eprintln!("watcher without IGNORE_OUTGOING saw {seen} outgoing frames");
}

#[test]
fn outgoing_frames_are_seen_without_ignore_outgoing() {
    let lab = Lab::new();
    let mut tx_a = lab.open_a(PacketConfig {
        ignore_outgoing: true,
        ..PacketConfig::default()
    });
    let mut watch_a = lab.open_a(PacketConfig {
        tx: None,
        ignore_outgoing: false,
        ..PacketConfig::default()
    });
    let tx = tx_a.tx().unwrap();
    for seq in 0..10 {
        assert!(
            tx.send(&test_frame(lab.a_mac, lab.b_mac, seq), None)
                .unwrap()
        );
    }
    assert!(tx.flush().unwrap());
    let deadline = Deadline::new(Duration::from_secs(5), "watcher sees 10 frames");
    let mut seen = 0;
    while seen < 10 {
        deadline.check();
        watch_a
            .rx()
            .unwrap()
            .recv(Some(Duration::from_millis(50)), |f| {
                if test_seq(f.data).is_some() {
                    assert_eq!(f.meta.pkt_type, PacketType::Outgoing);
                    seen += 1;
                }
            })
            .unwrap();
    }
    let mut own = 0;
    tx_a.rx()
        .unwrap()
        .drain(|f| own += u32::from(test_seq(f.data).is_some()));
    assert_eq!(own, 0, "PACKET_IGNORE_OUTGOING socket saw its own frames");
}

/// TPACKET_V2 rings on both sides: every frame is handed over on its own as soon as it is
/// written (no block retirement), intact and in order, with the `PACKET_RESERVE` headroom
/// and the slot's tailroom writable around it.
#[test]
fn v2_frame_rings_hand_over_each_frame_at_once() {
    use rvs_sys::packet::RingVersion;
    let lab = Lab::new();
    let mut rx_b = lab.open_b(PacketConfig {
        version: RingVersion::V2,
        rx: Some(RxRingConfig {
            block_size: 1 << 16,
            block_count: 64,
            frame_size: 4096,
            retire_blk_tov_ms: 0,
            reserve: 128,
        }),
        tx: None,
        ..PacketConfig::default()
    });
    let mut tx_a = lab.open_a(PacketConfig {
        version: RingVersion::V2,
        tx: Some(TxRingConfig {
            frame_size: 2048,
            frame_count: 128,
        }),
        qdisc_bypass: true,
        ..PacketConfig::default()
    });
    let tx = tx_a.tx().unwrap();
    assert_eq!(tx.capacity(), 2048 - 32);
    let rx = rx_b.rx().unwrap();
    assert!(rx.next_block().is_none(), "a frame ring has no blocks");

    // One frame alone is readable at once (a V3 block would wait for its timeout).
    let frame = test_frame(lab.a_mac, lab.b_mac, 0);
    assert!(tx.send(&frame, None).unwrap());
    tx.flush().unwrap();
    let deadline = Deadline::new(Duration::from_secs(5), "the first frame");
    let mut got = 0;
    while got == 0 {
        deadline.check();
        rx.wait(Some(Duration::from_millis(100))).unwrap();
        rx.drain(|f| {
            if test_seq(f.data) == Some(0) {
                assert!(f.headroom() >= 128, "headroom {}", f.headroom());
                assert!(f.tailroom() > 0);
                let n = f.data.len();
                let (buf, head) = f.into_buf();
                assert_eq!(&buf[head..head + n], &frame[..]);
                buf[..head].fill(0xaa);
                buf[head + n..].fill(0xbb);
                got += 1;
            }
        });
    }

    // Then a batch, in order and intact, each slot reused as the ring wraps.
    let mut next = 1u32;
    let mut sent = 1u32;
    let deadline = Deadline::new(Duration::from_secs(20), "1000 frames over V2 rings");
    while next < COUNT {
        deadline.check();
        while sent < COUNT && sent < next + 200 {
            if !tx
                .send(&test_frame(lab.a_mac, lab.b_mac, sent), None)
                .unwrap()
            {
                break;
            }
            sent += 1;
        }
        tx.flush().unwrap();
        rx.wait(Some(Duration::from_millis(100))).unwrap();
        rx.drain_max(64, |f| {
            if let Some(s) = test_seq(f.data) {
                assert_eq!(s, next, "frame out of order");
                assert_eq!(&f.data[..], &test_frame(lab.a_mac, lab.b_mac, s)[..]);
                assert_eq!(f.meta.pkt_type, PacketType::Host);
                next += 1;
            }
        });
    }
    assert_eq!(rx.malformed_blocks(), 0);
}
