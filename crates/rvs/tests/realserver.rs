//! `rvs realserver` against real kernels, in network namespaces: a "director" namespace
//! sends TCP SYNs to a VIP inside IPIP, GRE and GUE to a "real server" namespace running
//! `rvs realserver tun`, and sees the real server's own kernel answer with a SYN-ACK from
//! the VIP; `rvs realserver dr` sets the VIP and the ARP sysctls, and `--undo` removes
//! them; `rvs realserver agent` answers load queries over UDP from its load file. Needs
//! root; fails (never skips) when a namespace cannot be built.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use rvs_core::wire::encap::{GueOptions, Outer, encap_gre, encap_gue, encap_ipip};
use rvs_core::wire::frame::Frame;
use rvs_sys::netns::{Netns, veth_pair};
use rvs_sys::rawsock::RawIpSocket;

const DIR_IP: [u8; 4] = [10, 96, 0, 1];
const RS_IP: [u8; 4] = [10, 96, 0, 2];
const VIP: [u8; 4] = [10, 96, 100, 1];
const GUE_PORT: u16 = 6080;

/// The `rvs` binary, killed on drop if still running.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rvs_in(ns: &Netns, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_rvs")])
        .args(args)
        .stdin(Stdio::null());
    c
}

fn sysctl(ns: &Netns, path: &str) -> String {
    let out = ns
        .exec("cat", [format!("/proc/sys/net/ipv4/conf/{path}")])
        .expect("read sysctl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn syn(dst: [u8; 4], sport: u16) -> Vec<u8> {
    let b = PacketBuilder::ipv4(DIR_IP, dst, 64)
        .tcp(sport, 80, 1000, 64240)
        .syn();
    let mut v = Vec::with_capacity(b.size(0));
    b.write(&mut v, &[]).unwrap();
    v
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ipip,
    Gre,
    Gue,
}

fn encapsulate(inner: &[u8], kind: Kind) -> Vec<u8> {
    let mut buf = vec![0u8; 128 + inner.len()];
    buf[128..].copy_from_slice(inner);
    let mut f = Frame::new(&mut buf, 128, inner.len()).unwrap();
    let o = Outer::for_inner(inner, DIR_IP.into(), RS_IP.into(), 1, true).unwrap();
    match kind {
        Kind::Ipip => encap_ipip(&mut f, &o).unwrap(),
        Kind::Gre => encap_gre(&mut f, &o, true).unwrap(),
        Kind::Gue => {
            let g = GueOptions {
                src_port: 40999,
                dst_port: GUE_PORT,
                csum: true,
                remcsum: false,
            };
            encap_gue(&mut f, &o, &g).unwrap()
        }
    }
    f.data().to_vec()
}

/// The client port of a SYN-ACK from VIP:80 answering our SYN (ack 1001), if `pkt` is one.
fn syn_ack_port(pkt: &[u8]) -> Option<u16> {
    let p = SlicedPacket::from_ip(pkt).ok()?;
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) = (&p.net, &p.transport) else {
        return None;
    };
    (ip.header().source() == VIP
        && ip.header().destination() == DIR_IP
        && tcp.source_port() == 80
        && tcp.syn()
        && tcp.ack()
        && tcp.acknowledgment_number() == 1001)
        .then(|| tcp.destination_port())
}

/// SIGTERM, and the exit status within 5 s.
fn sigterm(daemon: &mut Daemon) -> std::process::ExitStatus {
    let pid = daemon.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "rvs did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, wait up to 5 s, and the exit status with the standard error.
fn stop(daemon: &mut Daemon) -> (std::process::ExitStatus, String) {
    let status = sigterm(daemon);
    let log = std::io::read_to_string(daemon.0.stderr.take().unwrap()).unwrap();
    (status, log)
}

#[test]
fn tun_decapsulates_ipip_gre_and_gue_and_the_kernel_answers_from_the_vip() {
    let dir = Netns::new("rvs-rs-dir").expect("create director namespace (are we root?)");
    let rs = Netns::new("rvs-rs-rs").expect("create real-server namespace");
    veth_pair(&dir, "rsdir0", &rs, "rsrs0").expect("veth pair");
    dir.add_addr("rsdir0", "10.96.0.1/24").unwrap();
    rs.add_addr("rsrs0", "10.96.0.2/24").unwrap();

    // Strict reverse-path filtering for the whole host: rvs must turn it off for its TUN
    // device only.
    rs.exec(
        "sh",
        ["-c", "echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter"],
    )
    .expect("set all.rp_filter");

    // The real server's service: the kernel answers a SYN with a SYN-ACK from the backlog.
    let _listener = rs
        .run(|| TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .expect("listener on :80 in the real server");
    let child = rvs_in(
        &rs,
        &[
            "realserver",
            "tun",
            "--vip",
            "10.96.100.1",
            "--gre",
            "--gue-port",
            "6080",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start rvs realserver tun");
    let mut daemon = Daemon(child);

    let tx = dir.run(RawIpSocket::sender).unwrap().expect("raw sender");
    let tcp_rx = dir
        .run(|| RawIpSocket::open_v4(6))
        .unwrap()
        .expect("raw TCP socket in the director namespace");

    // Ports 40001 (IPIP), 40002 (GRE), 40003 (GUE); resend until each is answered (the
    // real server needs a moment to set up).
    let kinds = [(40001, Kind::Ipip), (40002, Kind::Gre), (40003, Kind::Gue)];
    let mut answered = [false; 3];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    while answered.contains(&false) {
        if let Ok(Some(status)) = daemon.0.try_wait() {
            let out = daemon.0.stderr.take().map(std::io::read_to_string);
            panic!("rvs realserver tun exited early ({status}): {out:?}");
        }
        if Instant::now() >= deadline {
            let (status, log) = stop(&mut daemon);
            panic!(
                "no SYN-ACK from the VIP for {:?}; rvs exited {status}, log:\n{log}",
                kinds
                    .iter()
                    .zip(answered)
                    .filter(|(_, a)| !a)
                    .map(|(k, _)| k.1)
                    .collect::<Vec<_>>()
            );
        }
        for (i, (port, kind)) in kinds.iter().enumerate() {
            if !answered[i] {
                tx.send_to(&encapsulate(&syn(VIP, *port), *kind), RS_IP.into())
                    .expect("send tunnelled SYN");
            }
        }
        let until = Instant::now() + Duration::from_millis(300);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Some(n) = tcp_rx.recv_timeout(&mut buf, Some(left)).unwrap() else {
                break;
            };
            if let Some(p) = syn_ack_port(&buf[..n])
                && let Some(i) = kinds.iter().position(|k| k.0 == p)
            {
                answered[i] = true;
            }
        }
    }

    // The real server is set up as the command says.
    assert_eq!(sysctl(&rs, "rvstun0/rp_filter"), "0");
    assert_eq!(sysctl(&rs, "all/rp_filter"), "0");
    assert_eq!(
        sysctl(&rs, "rsrs0/rp_filter"),
        "1",
        "still strict where it was"
    );
    assert_eq!(sysctl(&rs, "all/arp_ignore"), "1");
    assert_eq!(sysctl(&rs, "all/arp_announce"), "2");
    assert_eq!(sysctl(&rs, "rsrs0/arp_ignore"), "1");

    // An inner packet for an address that is no VIP is dropped and counted.
    tx.send_to(
        &encapsulate(&syn([10, 96, 0, 2], 40004), Kind::Ipip),
        RS_IP.into(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let (status, log) = stop(&mut daemon);
    assert!(status.success(), "exit {status}; log:\n{log}");
    let counters = log
        .lines()
        .find(|l| l.contains("decapsulated "))
        .unwrap_or_else(|| panic!("no counters in the log:\n{log}"));
    let decapsulated: u64 = counters
        .split("decapsulated ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("counter line: {counters}"));
    assert!(decapsulated >= 3, "{counters}");
    assert!(counters.contains("not-a-vip 1"), "{counters}");
    assert!(counters.contains("malformed 0"), "{counters}");
    assert!(
        rs.ip(["link", "show", "rvstun0"]).is_err(),
        "the TUN device goes away with the process"
    );
}

#[test]
fn dr_sets_vips_and_arp_sysctls_idempotently_and_undo_reverses_it() {
    let ns = Netns::new("rvs-rs-dr").expect("create namespace (are we root?)");
    ns.ip([
        "link", "add", "rsdr0", "type", "veth", "peer", "name", "rsdr1",
    ])
    .expect("veth in the namespace");
    let vips = ["--vip", "10.95.0.100", "--vip", "2001:db8::100"];
    let lo_addrs = || {
        let out = ns.ip(["-o", "addr", "show", "dev", "lo"]).unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for round in 0..2 {
        let out = rvs_in(&ns, &[&["realserver", "dr"][..], &vips].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dr round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addrs = lo_addrs();
        assert_eq!(addrs.matches("10.95.0.100/32").count(), 1, "{addrs}");
        assert_eq!(addrs.matches("2001:db8::100/128").count(), 1, "{addrs}");
        for conf in ["all", "rsdr0", "rsdr1"] {
            assert_eq!(sysctl(&ns, &format!("{conf}/arp_ignore")), "1", "{conf}");
            assert_eq!(sysctl(&ns, &format!("{conf}/arp_announce")), "2", "{conf}");
        }
    }
    for round in 0..2 {
        let out = rvs_in(&ns, &[&["realserver", "dr", "--undo"][..], &vips].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "undo round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addrs = lo_addrs();
        assert!(
            !addrs.contains("10.95.0.100") && !addrs.contains("2001:db8::100"),
            "{addrs}"
        );
        for conf in ["all", "rsdr0"] {
            assert_eq!(sysctl(&ns, &format!("{conf}/arp_ignore")), "0", "{conf}");
            assert_eq!(sysctl(&ns, &format!("{conf}/arp_announce")), "0", "{conf}");
        }
    }
    // Misuse is the operator's error: exit status 2 with the usage text.
    let out = rvs_in(&ns, &["realserver", "dr"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--vip"));
}

/// One datagram to the agent and its answer, if one comes within `wait`.
fn ask(agent: SocketAddr, datagram: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(datagram, agent).unwrap();
    let mut buf = [0u8; 512];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => {
            assert_eq!(from, agent, "answered from the agent's address");
            Some(buf[..n].to_vec())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("receive from the agent: {e}"),
    }
}

#[test]
fn agent_answers_load_queries_from_its_load_file_and_stops_on_sigterm() {
    use rvs::loadagent::{REQUEST, parse_reply};
    let dir = std::env::temp_dir().join(format!(
        "rvs-loadagent-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let load_file = dir.join("loadavg");
    std::fs::write(&load_file, "0.52 0.58 0.59 2/345 12345\n").unwrap();

    // Port 0: the agent picks a free port and names it on its start-up line, so parallel
    // test runs never collide.
    let child = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args([
            "realserver",
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--load-file",
        ])
        .arg(&load_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rvs realserver agent");
    let mut daemon = Daemon(child);
    let mut log = BufReader::new(daemon.0.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    let agent: SocketAddr = first
        .split(" on ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no listening address in the start-up line {first:?}"));
    assert_eq!(agent.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(agent.port(), 0);

    let wait = Duration::from_secs(2);
    let reply = ask(agent, REQUEST, wait).expect("an answer to rvs-load?");
    assert_eq!(reply, b"rvs-load 0.52 0.58 0.59\n");
    assert_eq!(parse_reply(&reply).unwrap().load1, 0.52);

    // The file is read for every request.
    std::fs::write(&load_file, "3.10 2.20 1.30 1/99 777\n").unwrap();
    let reply = ask(agent, REQUEST, wait).expect("a second answer");
    assert_eq!(reply, b"rvs-load 3.10 2.20 1.30\n");
    assert_eq!(parse_reply(&reply).unwrap().load1, 3.1);

    // Anything but the exact request gets no answer; neither does a request while the
    // load file is garbage.
    let short = Duration::from_millis(300);
    assert_eq!(ask(agent, b"hello", short), None);
    assert_eq!(ask(agent, b"rvs-load?\n", short), None);
    std::fs::write(&load_file, "busy\n").unwrap();
    assert_eq!(ask(agent, REQUEST, short), None);

    let status = sigterm(&mut daemon);
    let mut rest = String::new();
    log.read_to_string(&mut rest).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "exit {status}; log:\n{first}{rest}");
    assert!(
        rest.contains("answered 2; bad requests 2; load unreadable 1; send errors 0"),
        "{first}{rest}"
    );
    assert!(rest.contains("stopped by signal 15"), "{rest}");
}
