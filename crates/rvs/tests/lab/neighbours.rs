//! The neighbour table under attack (issue 12): a flood of ARP requests, gratuitous ARPs,
//! neighbour solicitations and unsolicited advertisements from a million random source
//! addresses and MACs, sent from the client's namespace through an AF_PACKET socket, does
//! not grow the daemon (the table is bounded and preallocated) and does not disturb the
//! spread over the real servers; a forged ARP reply and a forged gratuitous ARP claiming a
//! real server's address with another MAC do not move that real server's traffic.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rvs_sys::packet::{PacketConfig, PacketSocket, TxRingConfig};

use crate::cluster::{Virtual, even, get_name, lvs_cf, spread};
use crate::harness::{lab, rvs_exe};
use crate::lab::{self, Lab, LabOptions, Method};

/// The bound given with `--gc-thresh3` (not the default, to see the option act).
const BOUND: usize = 2048;
/// Stated cost of one neighbour entry for the RSS bound: the entry (≈ 72 bytes) and its
/// two index slots (8 bytes), rounded up generously for allocator and page noise.
const PER_ENTRY: usize = 256;
/// Frames in the flood, each from its own random source address and MAC.
const FLOOD: u32 = 1_000_000;
/// The flood stops here even if the socket is slower.
const FLOOD_LIMIT: Duration = Duration::from_secs(90);

const EVIL: [u8; 6] = [0x02, 0xee, 0xee, 0xee, 0xee, 0x01];

/// A bijective mix of a counter: distinct, random-looking values.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A random locally administered unicast MAC.
fn mac_of(r: u64) -> [u8; 6] {
    let b = r.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// An ARP frame: `op` 1 request, 2 reply.
fn arp(
    buf: &mut [u8],
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) -> usize {
    buf[0..6].copy_from_slice(&eth_dst);
    buf[6..12].copy_from_slice(&sha);
    buf[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    buf[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op as u8]);
    buf[22..28].copy_from_slice(&sha);
    buf[28..32].copy_from_slice(&spa);
    buf[32..38].copy_from_slice(&tha);
    buf[38..42].copy_from_slice(&tpa);
    buf[42..60].fill(0);
    60
}

/// The ICMPv6 checksum over the pseudo-header and `body`.
fn icmp6_csum(src: &[u8; 16], dst: &[u8; 16], body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(src);
    add(dst);
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(body);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An NS (135, option 1 = source link-layer address) or NA (136, option 2 = target's).
fn nd(
    buf: &mut [u8],
    ty: u8,
    mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
) -> usize {
    let d = dst.octets();
    let eth_dst = if d[0] == 0xff {
        [0x33, 0x33, d[12], d[13], d[14], d[15]]
    } else {
        [0xff; 6]
    };
    buf[0..6].copy_from_slice(&eth_dst);
    buf[6..12].copy_from_slice(&mac);
    buf[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    buf[14..18].copy_from_slice(&[0x60, 0, 0, 0]);
    buf[18..20].copy_from_slice(&32u16.to_be_bytes());
    buf[20] = 58;
    buf[21] = 255;
    buf[22..38].copy_from_slice(&src.octets());
    buf[38..54].copy_from_slice(&d);
    let body = &mut buf[54..86];
    body.fill(0);
    body[0] = ty;
    if ty == 136 {
        body[4] = 0x20; // Override, not solicited.
    }
    body[8..24].copy_from_slice(&target.octets());
    body[24] = if ty == 135 { 1 } else { 2 };
    body[25] = 1;
    body[26..32].copy_from_slice(&mac);
    let c = icmp6_csum(&src.octets(), &d, &buf[54..86]);
    buf[56..58].copy_from_slice(&c.to_be_bytes());
    86
}

/// Frame `i` of the flood: 40 % ARP requests for the VIP, 20 % gratuitous ARPs, 30 %
/// solicitations for the director's IPv6 address, 10 % unsolicited advertisements — every one from its own
/// random source address and MAC.
fn flood_frame(buf: &mut [u8], i: u32, salt: u64) -> usize {
    let r = mix(u64::from(i) ^ salt);
    let mac = mac_of(r);
    let v4 = ((r >> 16) as u32).to_be_bytes();
    let mut v6 = lab::CLIENT6.octets();
    v6[8..16].copy_from_slice(&mix(r).to_be_bytes());
    let v6 = Ipv6Addr::from(v6);
    let me6 = lab::DIRECTOR_PUB6;
    let t = me6.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    match i % 10 {
        0..=3 => arp(buf, [0xff; 6], 1, mac, v4, [0; 6], lab::VIP.octets()),
        4 | 5 => arp(buf, [0xff; 6], 1, mac, v4, [0; 6], v4),
        6..=8 => nd(buf, 135, mac, v6, group, me6),
        _ => nd(buf, 136, mac, v6, "ff02::1".parse().unwrap(), v6),
    }
}

/// Send `n` flood frames on `ifname` (the caller's namespace); returns how many went out.
fn flood(ifname: &str, n: u32, salt: u64) -> u64 {
    let cfg = PacketConfig {
        rx: None,
        tx: Some(TxRingConfig {
            frame_size: 256,
            frame_count: 4096,
        }),
        ignore_outgoing: true,
        ..PacketConfig::default()
    };
    let mut s = PacketSocket::open(ifname, &cfg).expect("a packet socket for the flood");
    let tx = s.tx().expect("its TX ring");
    let deadline = Instant::now() + FLOOD_LIMIT;
    let mut buf = [0u8; 128];
    let mut sent = 0u64;
    let mut i = 0;
    while i < n && Instant::now() < deadline {
        let len = flood_frame(&mut buf, i, salt);
        if tx.send(&buf[..len], None).expect("a frame fits a slot") {
            i += 1;
            sent += 1;
            if i % 512 == 0 {
                let _ = tx.flush();
            }
        } else {
            let _ = tx.flush();
            let _ = tx.wait_writable(Duration::from_millis(100));
        }
    }
    let _ = tx.flush();
    let _ = tx.wait_writable(Duration::from_secs(1));
    sent
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// A sample's value in a metrics page.
fn metric(page: &str, line_start: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_start} in\n{page}"))
}

struct Daemon<'a> {
    lab: &'a Lab,
    pid: u32,
    control: PathBuf,
}

impl Daemon<'_> {
    fn metrics(&self) -> String {
        rvs::daemon::control_request(&self.control, "metrics").expect("metrics")
    }

    fn neigh(&self, event: &str) -> u64 {
        metric(
            &self.metrics(),
            &format!("rvs_neighbor_events_total{{event=\"{event}\"}} "),
        )
    }
}

fn start<'a>(lab: &'a Lab, config: &str) -> Daemon<'a> {
    let wd = lab.info().workdir();
    let cf = wd.join("neigh.cf");
    std::fs::write(&cf, config).unwrap();
    let control = wd.join("neigh.ctl");
    let bound = BOUND.to_string();
    let pid = lab
        .spawn(
            "director",
            rvs_exe(),
            [
                "daemon".as_ref(),
                "-c".as_ref(),
                cf.as_os_str(),
                "--control".as_ref(),
                control.as_os_str(),
                "--gc-thresh3".as_ref(),
                bound.as_ref(),
            ] as [&std::ffi::OsStr; 7],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while rvs::daemon::request_listing(Path::new(&control), &[]).is_err() {
        assert!(
            lab.try_wait(pid).unwrap().is_none() && Instant::now() < deadline,
            "the daemon did not come up:\n{}",
            lab.log_tail(pid)
        );
        thread::sleep(Duration::from_millis(50));
    }
    Daemon { lab, pid, control }
}

/// Requests until every real server answered or `limit` passes; answers per real server.
fn reaches_all(lab: &Lab, vip: IpAddr, limit: Duration) -> BTreeMap<String, usize> {
    let addr = SocketAddr::new(vip, 80);
    lab.run("client", move || {
        let deadline = Instant::now() + limit;
        let mut by_rs = BTreeMap::new();
        while by_rs.len() < 3 && Instant::now() < deadline {
            if let Ok(name) = get_name(addr, Duration::from_secs(3)) {
                *by_rs.entry(name).or_insert(0) += 1;
            }
        }
        by_rs
    })
    .unwrap()
}

#[test]
fn a_million_frame_neighbour_flood_neither_grows_the_daemon_nor_moves_traffic() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: true,
        ..LabOptions::default()
    });
    // The switch would learn a million MACs from the client's port: not the subject here.
    lab.exec(
        "switch",
        "bridge",
        ["link", "set", "dev", "client-eth0", "learning", "off"],
    )
    .unwrap();
    // IPv4 traffic (lvs.cf has one NAT router, so one family through it); the IPv6 part of
    // the flood solicits the director's own address on the public link.
    let config = lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 3)]);
    let d = start(&lab, &config);
    let vip: IpAddr = lab::VIP.into();
    assert_eq!(reaches_all(&lab, vip, Duration::from_secs(15)).len(), 3);
    assert_eq!(spread(&lab, vip, 30), even(3, 10));
    let page = d.metrics();
    assert_eq!(
        metric(&page, "rvs_neighbor_capacity{family=\"ipv4\"} "),
        BOUND as u64
    );

    // Warm-up: every page of the RX rings touched once, so RSS then measures the table.
    let warm = lab.run("client", || flood("eth0", 200_000, 1)).unwrap();
    thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib(d.pid);
    let rx_before = metric(&d.metrics(), "rvs_frames_total{kind=\"rx\"} ");

    // The flood, with requests through both VIPs meanwhile.
    let t0 = Instant::now();
    let sender = {
        let lab = &lab;
        thread::scope(|s| {
            let f = s.spawn(|| lab.run("client", || flood("eth0", FLOOD, 2)).unwrap());
            let during = reaches_all(lab, vip, Duration::from_secs(60));
            (f.join().unwrap(), during)
        })
    };
    let (sent, during) = sender;
    let took = t0.elapsed();
    thread::sleep(Duration::from_millis(500));
    let rss_after = rss_kib(d.pid);
    let page = d.metrics();
    let rx = metric(&page, "rvs_frames_total{kind=\"rx\"} ") - rx_before;
    let entries4 = metric(&page, "rvs_neighbor_entries{family=\"ipv4\"} ");
    let entries6 = metric(&page, "rvs_neighbor_entries{family=\"ipv6\"} ");
    let counters: Vec<(String, u64)> = [
        "created",
        "unsolicited_ignored",
        "evicted",
        "table_full",
        "spoof_probes",
        "spoof_refused",
    ]
    .iter()
    .map(|e| {
        (
            e.to_string(),
            metric(
                &page,
                &format!("rvs_neighbor_events_total{{event=\"{e}\"}} "),
            ),
        )
    })
    .collect();
    eprintln!(
        "neighbour flood: warm-up {warm} frames; flood {sent} frames in {took:?}, daemon rx \
         {rx}; VmRSS {rss_before} KiB -> {rss_after} KiB; entries v4 {entries4} v6 \
         {entries6} (bound {BOUND}); {counters:?}"
    );
    assert_eq!(sent, u64::from(FLOOD), "the whole flood went out");
    assert!(
        rx > 500_000,
        "the daemon saw most of the flood ({rx} frames)"
    );
    assert!(
        (rss_after.saturating_sub(rss_before) as usize) * 1024 < BOUND * PER_ENTRY,
        "VmRSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(entries4 <= BOUND as u64 && entries6 <= BOUND as u64);
    let get = |name: &str| counters.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(get("evicted") > 100_000, "{counters:?}");
    assert!(get("unsolicited_ignored") > 100_000, "{counters:?}");
    assert_eq!(
        during.len(),
        3,
        "every real server reached during the flood: {during:?}"
    );
    assert!(
        entries6 > 0,
        "solicitations for the director's address made entries"
    );
    assert_eq!(spread(&lab, vip, 30), even(3, 10), "after the flood");

    // A flood sender can draw an address the table already holds (the client's, a real
    // server's) and be probed for it: count the forged claims' probes from here.
    let probes_before = d.neigh("spoof_probes");
    let refused_before = d.neigh("spoof_refused");
    // Forged claims for rs1's address from rs3's link with another MAC: a reply to the
    // director, then a gratuitous ARP. rs1 answers the director's probes: nothing moves.
    let rs1 = lab::rs_addr(1).octets();
    let dir_priv = lab::DIRECTOR_PRIV.octets();
    let dir_mac = {
        let out = lab
            .exec("director", "cat", ["/sys/class/net/eth1/address"])
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let v: Vec<u8> = s
            .split(':')
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        <[u8; 6]>::try_from(v).unwrap()
    };
    let mut reply = [0u8; 64];
    let n = arp(&mut reply, dir_mac, 2, EVIL, rs1, dir_mac, dir_priv);
    let mut garp = [0u8; 64];
    arp(&mut garp, [0xff; 6], 1, EVIL, rs1, [0; 6], rs1);
    for (k, forged) in [(1, reply), (2, garp)] {
        lab.run("rs3", move || {
            let cfg = PacketConfig {
                rx: None,
                tx: Some(TxRingConfig::default()),
                ..PacketConfig::default()
            };
            let mut s = PacketSocket::open("eth0", &cfg).unwrap();
            let tx = s.tx().unwrap();
            assert!(tx.send(&forged[..n], None).unwrap());
            tx.flush().unwrap();
            let _ = tx.wait_writable(Duration::from_secs(1));
        })
        .unwrap();
        // The probe and rs1's answer take well under a second.
        let deadline = Instant::now() + Duration::from_secs(5);
        while d.neigh("spoof_refused") - refused_before < k {
            assert!(
                Instant::now() < deadline,
                "claim {k} not refused:\n{}",
                d.metrics()
            );
            thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(spread(&lab, vip, 30), even(3, 10), "after forged claim {k}");
    }
    assert_eq!(d.neigh("spoof_probes") - probes_before, 2);
    let _ = d.lab.stop(d.pid);
}
