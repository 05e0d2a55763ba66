//! An SCTP virtual service (`protocol SCTP` in keepalived.conf) in NAT mode, on a kernel
//! without SCTP sockets: the test brings its own SCTP endpoints, written here on raw IP
//! sockets of protocol 132 (`rvs_sys::rawsock::RawIpSocket`, which work without the `sctp`
//! module; the kernel sends no "protocol unreachable" for packets a raw socket took).
//!
//! The client (in the client namespace) runs a whole association through the VIP: INIT,
//! COOKIE-ECHO, DATA, SHUTDOWN, SHUTDOWN-COMPLETE. The server (on real server 1, on another
//! port than the VIP's, so the director must rewrite ports and recompute the CRC32c)
//! answers INIT with INIT-ACK, COOKIE-ECHO with COOKIE-ACK, DATA with SACK + the data
//! echoed, SHUTDOWN with SHUTDOWN-ACK. Both ends verify the CRC32c of every packet they
//! receive with a bit-by-bit CRC written here (not the crate the director uses).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rvs_sys::rawsock::RawIpSocket;

use crate::cluster::Director;
use crate::harness::lab;
use crate::lab::{self, Httpd, LabOptions, Method};

const VPORT: u16 = 2905;
const RPORT: u16 = 3868;
const CPORT: u16 = 40123;

const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const SACK: u8 = 3;
const DATA: u8 = 0;
const SHUTDOWN: u8 = 7;
const SHUTDOWN_ACK: u8 = 8;
const COOKIE_ECHO: u8 = 10;
const COOKIE_ACK: u8 = 11;
const SHUTDOWN_COMPLETE: u8 = 14;

// crc32c and packet repeat rvs-core's test-only `wire::sctp::testing` on purpose: sharing them
// with this test binary would need a public test API in rvs-core.
/// CRC32c bit by bit (reflected polynomial 0x82f63b78, RFC 9260 appendix A).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An SCTP packet: common header, chunks padded to 4 bytes, CRC32c stored least
/// significant byte first.
fn packet(sport: u16, dport: u16, vtag: u32, chunks: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    for (kind, flags, value) in chunks {
        p.extend_from_slice(&[*kind, *flags]);
        p.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
        p.extend_from_slice(value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    let c = crc32c(&p);
    p[8..12].copy_from_slice(&c.to_le_bytes());
    p
}

/// A received SCTP packet.
#[derive(Debug)]
struct Got {
    src: Ipv4Addr,
    sport: u16,
    dport: u16,
    vtag: u32,
    /// (type, value) of each chunk.
    chunks: Vec<(u8, Vec<u8>)>,
}

/// Counts of received packets whose CRC32c was right and wrong.
#[derive(Default)]
struct Crcs {
    good: AtomicU32,
    bad: AtomicU32,
}

/// Parses an IPv4 packet from a raw socket; checks the CRC32c (counted in `crcs`).
fn parse(ip: &[u8], crcs: &Crcs) -> Option<Got> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let s = ip.get(ihl..total.min(ip.len()))?;
    if s.len() < 12 {
        return None;
    }
    let mut zeroed = s.to_vec();
    zeroed[8..12].fill(0);
    if s[8..12] == crc32c(&zeroed).to_le_bytes() {
        crcs.good.fetch_add(1, Ordering::Relaxed);
    } else {
        crcs.bad.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 4 <= s.len() {
        let len = usize::from(u16::from_be_bytes([s[at + 2], s[at + 3]]));
        if len < 4 || at + len > s.len() {
            break;
        }
        chunks.push((s[at], s[at + 4..at + len].to_vec()));
        at += len.next_multiple_of(4);
    }
    Some(Got {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        sport: u16::from_be_bytes([s[0], s[1]]),
        dport: u16::from_be_bytes([s[2], s[3]]),
        vtag: u32::from_be_bytes([s[4], s[5], s[6], s[7]]),
        chunks,
    })
}

/// Waits (bounded) for the next SCTP packet to `port`.
fn recv(sock: &RawIpSocket, port: u16, crcs: &Crcs, limit: Duration) -> Option<Got> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Some(n)) = sock.recv_timeout(&mut buf, Some(left))
            && let Some(g) = parse(&buf[..n.min(buf.len())], crcs)
            && g.dport == port
        {
            return Some(g);
        }
    }
    None
}

/// The server's tag and its state cookie (a parameter of INIT-ACK, type 7).
const SERVER_TAG: u32 = 0x5e4e_0001;
const COOKIE: &[u8] = b"rvs-lab-cookie";

/// Sets the flag when dropped (also while unwinding from a failed assertion).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The real server's endpoint: answers until SHUTDOWN-COMPLETE or `stop`. Returns the
/// chunk types it saw, in order.
fn server(sock: RawIpSocket, crcs: &Crcs, stop: &AtomicBool) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut peer_tag = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(g) = recv(&sock, RPORT, crcs, Duration::from_millis(100)) else {
            continue;
        };
        let Some((kind, value)) = g.chunks.first() else {
            continue;
        };
        seen.push(*kind);
        let reply: Vec<u8> = match *kind {
            INIT => {
                peer_tag = u32::from_be_bytes(value[0..4].try_into().unwrap());
                let mut v = Vec::new();
                v.extend_from_slice(&SERVER_TAG.to_be_bytes());
                v.extend_from_slice(&[0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1]);
                v.extend_from_slice(&7u16.to_be_bytes());
                v.extend_from_slice(&((4 + COOKIE.len()) as u16).to_be_bytes());
                v.extend_from_slice(COOKIE);
                packet(RPORT, g.sport, peer_tag, &[(INIT_ACK, 0, &v)])
            }
            COOKIE_ECHO => {
                assert_eq!(value, COOKIE, "the cookie comes back as sent");
                packet(RPORT, g.sport, peer_tag, &[(COOKIE_ACK, 0, &[])])
            }
            DATA => {
                let tsn = &value[0..4];
                let mut sack = tsn.to_vec();
                sack.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
                let mut echo = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
                echo.extend_from_slice(b"echo:");
                echo.extend_from_slice(&value[12..]);
                packet(
                    RPORT,
                    g.sport,
                    peer_tag,
                    &[(SACK, 0, &sack), (DATA, 3, &echo)],
                )
            }
            SHUTDOWN => packet(RPORT, g.sport, peer_tag, &[(SHUTDOWN_ACK, 0, &[])]),
            SHUTDOWN_COMPLETE => break,
            _ => continue,
        };
        sock.send_to(&reply, g.src).unwrap();
    }
    seen
}

/// Sends `pkt` to the VIP until a packet with a first chunk of `want` comes back (bounded).
fn exchange(sock: &RawIpSocket, pkt: &[u8], want: u8, crcs: &Crcs) -> Got {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        sock.send_to(pkt, lab::VIP).unwrap();
        if let Some(g) = recv(sock, CPORT, crcs, Duration::from_millis(300))
            && g.chunks.first().is_some_and(|c| c.0 == want)
        {
            assert_eq!(
                (g.src, g.sport),
                (lab::VIP, VPORT),
                "answers come from the VIP"
            );
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "no chunk {want} in answer to chunk {}",
            pkt[12]
        );
    }
}

fn keepalived_conf() -> String {
    format!(
        "vrrp_instance lab {{\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  \
         priority 100\n  virtual_ipaddress {{\n    {vip}/24 dev eth0\n    {router}/24 dev eth1\n  \
         }}\n}}\n\
         virtual_server {vip} {VPORT} {{\n  lb_algo rr\n  lb_kind NAT\n  protocol sctp\n  \
         real_server {rs} {RPORT} {{\n    weight 1\n  }}\n}}\n",
        vip = lab::VIP,
        router = lab::NAT_ROUTER,
        rs = lab::rs_addr(1),
    )
}

#[test]
fn nat_sctp_association_through_the_vip() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 1,
        httpd: Httpd::None,
        ..LabOptions::default()
    });
    let d = Director::start(&lab, "keepalived-sctp", &keepalived_conf());
    // `rvsadm -L -n` and `-S -n`, as an operator runs them.
    let listing = crate::rvsadm::ok(d.control(), "-L -n");
    let saved = crate::rvsadm::ok(d.control(), "-S -n");
    assert_eq!(
        saved,
        format!(
            "-A --sctp-service {vip}:{VPORT} -s rr\n\
             -a --sctp-service {vip}:{VPORT} -r {rs}:{RPORT} -m -w 1\n",
            vip = lab::VIP,
            rs = lab::rs_addr(1)
        )
    );
    let row = format!("SCTP  {}:{VPORT} rr", lab::VIP);
    assert!(listing.contains(&row), "{row} in\n{listing}");
    let rs_row = format!("  -> {}:{RPORT}", lab::rs_addr(1));
    assert!(listing.contains(&rs_row), "{rs_row} in\n{listing}");

    let srv_sock = lab
        .run("rs1", || RawIpSocket::open_v4(132))
        .unwrap()
        .unwrap();
    let cli_sock = lab
        .run("client", || RawIpSocket::open_v4(132))
        .unwrap()
        .unwrap();
    let (srv_crcs, cli_crcs) = (Crcs::default(), Crcs::default());
    let stop = AtomicBool::new(false);
    let client_tag = 0xc11e_0001u32;
    let (seen, (conns_established, svc_established), echoed) = thread::scope(|scope| {
        let server = scope.spawn(|| server(srv_sock, &srv_crcs, &stop));
        // A failed assertion below must end the server too, or the scope never returns.
        let _stop_on_unwind = StopOnDrop(&stop);
        let mut init = client_tag.to_be_bytes().to_vec();
        init.extend_from_slice(&[0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1]);
        let g = exchange(
            &cli_sock,
            &packet(CPORT, VPORT, 0, &[(INIT, 0, &init)]),
            INIT_ACK,
            &cli_crcs,
        );
        assert_eq!(g.vtag, client_tag, "INIT-ACK carries the client's tag");
        let v = &g.chunks[0].1;
        let server_tag = u32::from_be_bytes(v[0..4].try_into().unwrap());
        assert_eq!(server_tag, SERVER_TAG);
        assert_eq!(&v[16..18], &7u16.to_be_bytes(), "state cookie parameter");
        let cookie = v[20..20 + COOKIE.len()].to_vec();
        exchange(
            &cli_sock,
            &packet(CPORT, VPORT, server_tag, &[(COOKIE_ECHO, 0, &cookie)]),
            COOKIE_ACK,
            &cli_crcs,
        );
        let mut data = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(b"hello over sctp");
        let g = exchange(
            &cli_sock,
            &packet(CPORT, VPORT, server_tag, &[(DATA, 3, &data)]),
            SACK,
            &cli_crcs,
        );
        let echoed = g
            .chunks
            .iter()
            .find(|c| c.0 == DATA)
            .map(|c| String::from_utf8_lossy(&c.1[12..]).into_owned())
            .expect("the server's DATA rides with its SACK");
        let conns_established = (d.listing(&["-c"]), d.listing(&[]));
        let sack = [0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
        cli_sock
            .send_to(
                &packet(CPORT, VPORT, server_tag, &[(SACK, 0, &sack)]),
                lab::VIP,
            )
            .unwrap();
        exchange(
            &cli_sock,
            &packet(CPORT, VPORT, server_tag, &[(SHUTDOWN, 0, &[0, 0, 0, 1])]),
            SHUTDOWN_ACK,
            &cli_crcs,
        );
        cli_sock
            .send_to(
                &packet(CPORT, VPORT, server_tag, &[(SHUTDOWN_COMPLETE, 0, &[])]),
                lab::VIP,
            )
            .unwrap();
        // The server stops on SHUTDOWN-COMPLETE; `stop` bounds it if that is lost.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !server.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        (server.join().unwrap(), conns_established, echoed)
    });
    assert_eq!(echoed, "echo:hello over sctp", "data round trip");
    // Every packet either end received had a right CRC32c, after the director rewrote
    // the ports one way (2905 -> 3868) and back.
    assert_eq!(
        srv_crcs.bad.load(Ordering::Relaxed),
        0,
        "bad CRCs at the server"
    );
    assert_eq!(
        cli_crcs.bad.load(Ordering::Relaxed),
        0,
        "bad CRCs at the client"
    );
    assert!(srv_crcs.good.load(Ordering::Relaxed) >= 6);
    assert!(cli_crcs.good.load(Ordering::Relaxed) >= 4);
    // What the server saw (a retried packet counts once).
    let mut seen = seen;
    seen.dedup();
    assert_eq!(
        seen,
        [INIT, COOKIE_ECHO, DATA, SACK, SHUTDOWN, SHUTDOWN_COMPLETE],
        "chunk types at the server"
    );
    // `ipvsadm -L -c -n` while the association carried data, then after it closed:
    // `pro expire state source virtual destination`.
    let fields = |listing: &str| -> Vec<String> {
        let row = listing
            .lines()
            .find(|l| l.starts_with("SCTP"))
            .unwrap_or_else(|| panic!("an SCTP entry in\n{listing}"));
        row.split_whitespace().map(str::to_owned).collect()
    };
    let want = |state: &str| {
        [
            state.to_owned(),
            format!("{}:{CPORT}", lab::CLIENT),
            format!("{}:{VPORT}", lab::VIP),
            format!("{}:{RPORT}", lab::rs_addr(1)),
        ]
    };
    let established = fields(&conns_established);
    assert_eq!(established[2..], want("ESTABLISHED"), "{conns_established}");
    // ESTABLISHED is the one state that counts as active (`set_sctp_state()`).
    let rs_active = format!(
        "  -> {}:{RPORT}               Masq    1      1          0",
        lab::rs_addr(1)
    );
    assert!(svc_established.contains(&rs_active), "{svc_established}");
    let closed_listing = d.listing(&["-c"]);
    let closed = fields(&closed_listing);
    assert_eq!(closed[2..], want("CLOSED"), "{closed_listing}");
    let rs_inactive = format!(
        "  -> {}:{RPORT}               Masq    1      0          1",
        lab::rs_addr(1)
    );
    let after = d.listing(&[]);
    assert!(after.contains(&rs_inactive), "{after}");
    let stats = d.listing(&["--stats"]);
    assert!(
        stats.contains(&format!("SCTP  {}:{VPORT}", lab::VIP)),
        "{stats}"
    );
}
