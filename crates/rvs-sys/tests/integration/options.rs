//! Socket options and ring edge cases: promiscuous membership, TX back-pressure (a full
//! ring is reported, never waited on forever), and VLAN tags stripped on receive.

use std::time::Duration;

use rvs_sys::packet::{PacketConfig, RxRingConfig, TxRingConfig};

use crate::lab::{B_IF, Deadline, Lab, TEST_ETHERTYPE, test_frame, test_seq};

/// Whether the interface's promiscuity count is non-zero. Packet-socket membership
/// raises the count but not the user-visible IFF_PROMISC flag, so read `ip -d`'s
/// "promiscuity N".
fn promisc_flag(lab: &Lab) -> bool {
    let out = lab.b.ip(["-d", "link", "show", "dev", B_IF]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let n = text
        .split_whitespace()
        .skip_while(|w| *w != "promiscuity")
        .nth(1)
        .unwrap_or_else(|| panic!("no promiscuity in {text}"));
    n != "0"
}

#[test]
fn promiscuous_membership_follows_the_socket() {
    let lab = Lab::new();
    assert!(!promisc_flag(&lab));
    let s = lab.open_b(PacketConfig {
        promiscuous: true,
        tx: None,
        ..PacketConfig::default()
    });
    assert!(
        promisc_flag(&lab),
        "PACKET_MR_PROMISC did not raise the promiscuity count"
    );
    s.set_promiscuous(false).unwrap();
    assert!(!promisc_flag(&lab));
    s.set_promiscuous(true).unwrap();
    drop(s);
    assert!(
        !promisc_flag(&lab),
        "membership not dropped with the socket"
    );
}

#[test]
fn full_tx_ring_reports_back_pressure() {
    let lab = Lab::new();
    let mut a = lab.open_a(PacketConfig {
        rx: None,
        tx: Some(TxRingConfig {
            frame_size: 2048,
            frame_count: 8,
        }),
        ..PacketConfig::default()
    });
    let tx = a.tx().unwrap();
    assert_eq!(tx.slots(), 8);
    for seq in 0..8 {
        assert!(
            tx.send(&test_frame(lab.a_mac, lab.b_mac, seq), None)
                .unwrap()
        );
    }
    // Every slot is committed but not sent: full, and waiting times out instead of hanging.
    assert!(tx.reserve().is_none());
    assert!(!tx.send(&test_frame(lab.a_mac, lab.b_mac, 8), None).unwrap());
    let t = std::time::Instant::now();
    assert!(!tx.writable());
    assert_eq!(tx.unflushed(), 8);
    // wait_writable flushes the committed frames, then their slots come back.
    assert!(tx.wait_writable(Duration::from_secs(2)).unwrap());
    eprintln!(
        "wait_writable on a full ring returned after {:?}",
        t.elapsed()
    );
    assert_eq!(tx.unflushed(), 0);
    assert!(tx.reserve().is_some());
}

#[test]
fn vlan_tag_is_stripped_and_reported() {
    let lab = Lab::new();
    let mut b = lab.open_b(PacketConfig {
        rx: Some(RxRingConfig::default()),
        tx: None,
        ..PacketConfig::default()
    });
    let mut a = lab.open_a(PacketConfig {
        rx: None,
        ..PacketConfig::default()
    });
    // dst, src, 802.1Q (PCP 3, VID 10), then the test frame's EtherType and payload.
    let inner = test_frame(lab.a_mac, lab.b_mac, 77);
    let mut tagged = inner[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x60, 0x0a]);
    tagged.extend_from_slice(&inner[12..]);
    let tx = a.tx().unwrap();
    assert!(tx.send(&tagged, None).unwrap());
    assert!(tx.flush().unwrap());

    let deadline = Deadline::new(Duration::from_secs(5), "tagged frame at the peer");
    let mut got = None;
    while got.is_none() {
        deadline.check();
        b.rx()
            .unwrap()
            .recv(Some(Duration::from_millis(50)), |f| {
                if test_seq(f.data) == Some(77) || f.data.get(12..14) == Some(&[0x81, 0x00]) {
                    got = Some((f.meta, f.data.to_vec()));
                }
            })
            .unwrap();
    }
    let (meta, data) = got.unwrap();
    eprintln!(
        "802.1Q frame received: vlan_tci {:?}, tpid {:?}, status {:#x}, {} B",
        meta.vlan_tci,
        meta.vlan_tpid,
        meta.status,
        data.len()
    );
    // Observed on 6.18 veth: the receive path untags into skb->vlan_tci, the ring
    // reports it (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID) and the data has no tag.
    assert_eq!(meta.vlan_tci, Some(0x600a));
    assert_eq!(meta.vlan_tpid, Some(0x8100));
    assert_eq!(&data[12..14], &TEST_ETHERTYPE.to_be_bytes());
    assert_eq!(data, inner);
    assert_eq!(
        meta.len as usize,
        inner.len(),
        "tp_len excludes the stripped tag"
    );
}
