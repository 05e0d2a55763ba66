//! Fanout: sockets of one `PACKET_FANOUT` group share the frames of many flows, each
//! frame delivered to exactly one member; HASH keeps a flow on one member, CBPF puts a
//! frame where the program says.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use rvs_sys::packet::{Fanout, FanoutMode, PacketConfig, PacketSocket};

use crate::lab::{A_IP, B_IP, Deadline, Lab, ipv4_l4};

const FLOWS: u16 = 64;
const PER_FLOW: u16 = 20;
const DPORT: u16 = 7777;

/// Sends PER_FLOW datagrams on each of FLOWS flows from namespace a, on another thread,
/// so the caller drains the rings meanwhile (a V3 ring retires a block every
/// `retire_blk_tov` ms, so an undrained ring fills with part-empty blocks and freezes).
fn send_flows(lab: &Lab) -> std::thread::JoinHandle<std::io::Result<()>> {
    lab.a.spawn(|| {
        let socks: Vec<UdpSocket> = (0..FLOWS)
            .map(|i| UdpSocket::bind(SocketAddr::from((A_IP, 40000 + i))).unwrap())
            .collect();
        for seq in 0..PER_FLOW {
            for (i, s) in socks.iter().enumerate() {
                let msg = [i as u8, (seq >> 8) as u8, seq as u8];
                s.send_to(&msg, SocketAddr::from((B_IP, DPORT))).unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Drains every member until all datagrams are accounted for; returns, per member, the
/// (source port, seq) pairs it saw.
fn collect(members: &mut [PacketSocket]) -> Vec<Vec<(u16, u16)>> {
    let mut seen = vec![Vec::new(); members.len()];
    let deadline = Deadline::new(Duration::from_secs(10), "all fanout datagrams");
    let want = usize::from(FLOWS) * usize::from(PER_FLOW);
    while seen.iter().map(Vec::len).sum::<usize>() < want {
        if deadline.passed() {
            let per: Vec<usize> = seen.iter().map(Vec::len).collect();
            let stats: Vec<_> = members.iter().map(|m| m.stats().unwrap()).collect();
            panic!("fanout: {per:?} of {want} datagrams after 10 s; ring stats {stats:?}");
        }
        for (m, out) in members.iter_mut().zip(seen.iter_mut()) {
            m.rx()
                .unwrap()
                .recv(Some(Duration::from_millis(10)), |f| {
                    let d = &f.data;
                    if let Some((17, l4)) = ipv4_l4(d)
                        && d[l4 + 2..l4 + 4] == DPORT.to_be_bytes()
                        && d.len() >= l4 + 11
                    {
                        let sport = u16::from_be_bytes([d[l4], d[l4 + 1]]);
                        let seq = u16::from_be_bytes([d[l4 + 9], d[l4 + 10]]);
                        out.push((sport, seq));
                    }
                })
                .unwrap();
        }
    }
    // Anything late would be a duplicate: give it a moment to show up.
    std::thread::sleep(Duration::from_millis(20));
    for (m, out) in members.iter_mut().zip(seen.iter_mut()) {
        m.rx().unwrap().drain(|f| {
            if let Some((17, l4)) = ipv4_l4(f.data)
                && f.data[l4 + 2..l4 + 4] == DPORT.to_be_bytes()
            {
                out.push((0, 0));
            }
        });
    }
    seen
}

fn assert_partition(seen: &[Vec<(u16, u16)>]) {
    let mut count: HashMap<(u16, u16), usize> = HashMap::new();
    for s in seen.iter().flatten() {
        *count.entry(*s).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicated across members: {dups:?}");
    assert_eq!(count.len(), usize::from(FLOWS) * usize::from(PER_FLOW));
}

fn members(lab: &Lab, n: usize, fanout: Fanout<'static>) -> Vec<PacketSocket> {
    (0..n)
        .map(|_| {
            let s = lab.open_b(PacketConfig {
                tx: None,
                ..PacketConfig::default()
            });
            s.join_fanout(&fanout).expect("join fanout group");
            s
        })
        .collect()
}

#[test]
fn hash_fanout_shares_flows_without_duplicates() {
    let lab = Lab::new();
    let mut m = members(
        &lab,
        2,
        Fanout {
            group: 42,
            mode: FanoutMode::Hash,
            rollover: false,
            ignore_outgoing: false,
            unique_id: false,
        },
    );
    let sender = send_flows(&lab);
    let seen = collect(&mut m);
    sender.join().unwrap().unwrap();
    assert_partition(&seen);
    let per: Vec<usize> = seen.iter().map(Vec::len).collect();
    eprintln!("HASH fanout over {FLOWS} flows: {per:?} datagrams per member");
    assert!(per.iter().all(|&n| n > 0), "a member got nothing: {per:?}");
    // The flow hash keeps each flow on one member.
    for (i, s) in seen.iter().enumerate() {
        for (j, t) in seen.iter().enumerate().filter(|(j, _)| *j != i) {
            for (sport, _) in s {
                assert!(
                    !t.iter().any(|(p, _)| p == sport),
                    "flow {sport} split over members {i} and {j}"
                );
            }
        }
    }
}

/// Classic BPF: member = UDP source port & 1 (the program sees the frame from its
/// network header). `ldxb 4*([0]&0xf); ldh [x+0]; and #1; ret a`.
static SPORT_PARITY: [libc::sock_filter; 4] = [
    libc::sock_filter {
        code: (libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    },
    libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_H | libc::BPF_IND) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    },
    libc::sock_filter {
        code: (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 1,
    },
    libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_A) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    },
];

#[test]
fn cbpf_fanout_steers_by_program() {
    let lab = Lab::new();
    let mut m = members(
        &lab,
        2,
        Fanout {
            group: 7,
            mode: FanoutMode::Cbpf(&SPORT_PARITY),
            rollover: false,
            ignore_outgoing: false,
            unique_id: false,
        },
    );
    let sender = send_flows(&lab);
    let seen = collect(&mut m);
    sender.join().unwrap().unwrap();
    assert_partition(&seen);
    for (i, s) in seen.iter().enumerate() {
        assert!(!s.is_empty());
        for (sport, _) in s {
            assert_eq!(usize::from(sport & 1), i, "port {sport} on member {i}");
        }
    }
}
