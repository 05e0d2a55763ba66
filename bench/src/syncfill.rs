//! `rvs-bench-syncfill`: fills a director's connection table through connection sync, for
//! `bench/scale` (issue 15 item 5: forwarding cost with 10, 100 k and 1 M entries). It
//! sends IPVS sync version 1 messages (rvs-core's own builder, the format the kernel's
//! `ip_vs_sync.c` sends) for COUNT established NAT connections of one virtual service to
//! the sync group, from an address on the director's sync link (another director's master,
//! as far as the backup can tell; a backup skips what comes from its own sync address).
//!
//! Usage: `rvs-bench-syncfill SRCADDR VIP:PORT RS:PORT[,RS:PORT...] COUNT [SYNCID]`
//! — SRCADDR is an address on the sync link (it picks the interface); the clients
//! are 10.9.x.y:port (no collision with the lab's client), spread over the real servers in
//! turn, ESTABLISHED with a 900 s timeout. Messages go out at most 10,000 a second so the
//! backup's socket buffer keeps up; the tool prints what it sent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use rvs_core::sync::{MCAST_GROUP, PORT, SyncBuildError, SyncConn, SyncMessageBuilder, flags};

/// `IP_VS_TCP_S_ESTABLISHED`.
const ESTABLISHED: u16 = 1;
/// The kernel's default sync message size limit (`sync_maxlen`, an Ethernet MTU's worth).
const MAX_LEN: usize = 1472;
const MESSAGES_PER_SECOND: u64 = 10_000;

fn parse_sock(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("{s}: {e}"))
}

/// The `i`th filler client: 10.9.0.0/16 addresses, ports 1024.. (65,536 × 64,512 distinct).
fn client(i: u64) -> (IpAddr, u16) {
    let host = (i % 65_536) as u32;
    let port = 1024 + (i / 65_536) as u16;
    (
        IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 9, 0, 0)) | host)),
        port,
    )
}

fn run(args: &[String]) -> Result<(), String> {
    let [ifaddr, vip, servers, count, rest @ ..] = args else {
        return Err(
            "usage: rvs-bench-syncfill SRCADDR VIP:PORT RS:PORT[,RS:PORT...] COUNT [SYNCID]".into(),
        );
    };
    let ifaddr: Ipv4Addr = ifaddr.parse().map_err(|e| format!("{ifaddr}: {e}"))?;
    let vip = parse_sock(vip)?;
    let servers = servers
        .split(',')
        .map(parse_sock)
        .collect::<Result<Vec<_>, _>>()?;
    let count: u64 = count.parse().map_err(|e| format!("{count}: {e}"))?;
    let syncid: u8 = match rest.first() {
        Some(s) => s.parse().map_err(|e| format!("{s}: {e}"))?,
        None => 0,
    };
    let sock = UdpSocket::bind(SocketAddrV4::new(ifaddr, 0)).map_err(|e| e.to_string())?;
    sock.set_multicast_ttl_v4(1).map_err(|e| e.to_string())?;
    let to = SocketAddrV4::new(MCAST_GROUP, PORT);

    let start = Instant::now();
    let mut buf = [0u8; MAX_LEN];
    let (mut sent, mut messages) = (0u64, 0u64);
    while sent < count {
        let mut b = SyncMessageBuilder::new(&mut buf, syncid).map_err(|e| format!("{e:?}"))?;
        while sent < count {
            let (caddr, cport) = client(sent);
            let rs = servers[(sent % servers.len() as u64) as usize];
            let conn = SyncConn {
                protocol: 6,
                flags: flags::MASQ,
                state: ESTABLISHED,
                cport,
                vport: vip.port(),
                dport: rs.port(),
                fwmark: 0,
                timeout: 900,
                caddr,
                vaddr: vip.ip(),
                daddr: rs.ip(),
                seq: None,
                pe_data: None,
                pe_name: None,
                local: None,
            };
            match b.push(&conn) {
                Ok(()) => sent += 1,
                Err(SyncBuildError::Full) => break,
                Err(e) => return Err(format!("{e:?}")),
            }
        }
        sock.send_to(b.finish(), to).map_err(|e| e.to_string())?;
        messages += 1;
        // Paced: message n leaves no earlier than n / MESSAGES_PER_SECOND s after the start.
        let due = Duration::from_micros(messages * 1_000_000 / MESSAGES_PER_SECOND);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
    }
    println!(
        "syncfill: {sent} connections in {messages} messages to {to} from {ifaddr} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-bench-syncfill: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_clients_are_distinct_and_outside_the_lab() {
        let a: std::collections::HashSet<_> = (0..200_000).map(client).collect();
        assert_eq!(a.len(), 200_000);
        assert!(a.iter().all(|(ip, port)| {
            matches!(ip, IpAddr::V4(v) if v.octets()[..2] == [10, 9]) && *port >= 1024
        }));
    }

    #[test]
    fn a_message_holds_what_the_parser_reads_back() {
        let mut buf = [0u8; MAX_LEN];
        let mut b = SyncMessageBuilder::new(&mut buf, 7).unwrap();
        let (caddr, cport) = client(70_000);
        let conn = SyncConn {
            protocol: 6,
            flags: flags::MASQ,
            state: ESTABLISHED,
            cport,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr,
            vaddr: "10.1.0.100".parse().unwrap(),
            daddr: "10.2.0.11".parse().unwrap(),
            seq: None,
            pe_data: None,
            pe_name: None,
            local: None,
        };
        while b.push(&conn).is_ok() {}
        let n = b.nr_conns();
        let msg = b.finish().to_vec();
        assert!(msg.len() <= MAX_LEN);
        let parsed = rvs_core::sync::SyncMessage::parse(&msg).unwrap();
        assert_eq!(parsed.syncid(), 7);
        assert_eq!(parsed.nr_conns(), n);
        assert!(n > 20, "{n} records in one message");
    }
}
