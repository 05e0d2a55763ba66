//! The fuzz targets' code ([`targets`], one module per `fuzz_targets/NAME.rs`) and the
//! helpers they share: a small director like the one
//! `crates/rvs-core/src/director/tests.rs` builds, and a way to run frames through it.
//!
//! The `corpora` test runs every committed seed (`corpus/NAME/*`) through its target once,
//! on stable Rust without libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml --lib`
//! (`scripts/test` does), so a seed that once found a bug stays a regression test.

use rvs_core::director::{Director, DirectorSettings, NetConfig, OwnedAddr, PortConfig, PortId};
use rvs_core::model::{Config, Prefix};
use rvs_core::time::Instant;
use std::net::IpAddr;

pub mod targets;

/// The public port.
pub const PUB: PortId = PortId(0);
/// The private port (real servers' side).
pub const PRIV: PortId = PortId(1);
/// The director's MAC on the public port.
pub const DIR_PUB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The director's MAC on the private port.
pub const DIR_PRIV_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// The client's MAC.
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
/// Headroom in front of each frame (tunnel headers are pushed there).
pub const HEAD: usize = 128;
/// Room behind each frame (the director may grow it, e.g. FTP rewrites).
pub const TAIL: usize = 128;

/// The rules every director of the targets starts with: every forwarding method, IPv4 and
/// IPv6, persistence, an FTP service, a firewall-mark service and a FullNAT local pool.
pub const RULES: &str = "\
--local-pool 20000-20999 10.2.0.250 2001:db8:2::250
-A -t 10.1.0.100:80 -s rr
-a -t 10.1.0.100:80 -r 10.2.0.11:8080 -m -w 1
-a -t 10.1.0.100:80 -r 10.2.0.12:8080 -m -w 2
-A -t 10.1.0.100:443 -s wlc -p 300
-a -t 10.1.0.100:443 -r 10.2.0.11:443 -g -w 1
-a -t 10.1.0.100:443 -r 10.2.0.12:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -u 10.1.0.100:53 -s sh -b sh-port
-a -u 10.1.0.100:53 -r 10.2.0.13:53 -i -w 1 --tun-type ipip
-a -u 10.1.0.100:53 -r 10.2.0.12:53 -i -w 1 --tun-type gre --tun-csum
-A -t 10.1.0.100:21 -s rr -p 60
-a -t 10.1.0.100:21 -r 10.2.0.11:21 -m -w 1
-A -t 10.1.0.100:8000 -s mh -b mh-port
-a -t 10.1.0.100:8000 -r 10.2.0.13:80 --fullnat -w 1
-A -t [2001:db8:1::100]:80 -s rr
-a -t [2001:db8:1::100]:80 -r [2001:db8:2::11]:80 -m -w 1
-a -t [2001:db8:1::100]:80 -r [2001:db8:2::12]:80 --fullnat -w 1
-A -u [2001:db8:1::100]:53 -s lc
-a -u [2001:db8:1::100]:53 -r [2001:db8:2::13]:53 -i -w 1 --tun-type gue --tun-port 6080
-A -f 7 -s wrr
-a -f 7 -r 10.2.0.12:0 -g -w 1
";

/// The addresses and ports of the director (as in the director's own tests).
pub fn net() -> NetConfig {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let prefix = |s: &str, len| Prefix { addr: ip(s), len };
    NetConfig {
        ports: vec![
            PortConfig {
                id: PUB,
                mac: DIR_PUB_MAC,
                addrs: vec![prefix("10.1.0.2", 16), prefix("2001:db8:1::2", 64)],
                mtu: 1500,
            },
            PortConfig {
                id: PRIV,
                mac: DIR_PRIV_MAC,
                addrs: vec![prefix("10.2.0.1", 24), prefix("2001:db8:2::1", 64)],
                mtu: 1500,
            },
        ],
        routes: vec![],
        owned: vec![
            OwnedAddr {
                addr: ip("10.1.0.100"),
                port: PUB,
                mac: None,
            },
            OwnedAddr {
                addr: ip("10.2.0.254"),
                port: PRIV,
                mac: None,
            },
            OwnedAddr {
                addr: ip("2001:db8:1::100"),
                port: PUB,
                mac: None,
            },
        ],
    }
}

/// Small tables, so that building a director per input is cheap.
pub fn settings() -> DirectorSettings {
    DirectorSettings {
        default_table_size: 1024,
        park_slots: 8,
        ..DirectorSettings::default()
    }
}

/// The configuration of [`RULES`].
pub fn config() -> Config {
    rvs_config::parse_rules(RULES, "fuzz.rules").expect("the fuzz director's rules parse")
}

/// A director running `config` on [`net`], with the client and real servers' MACs known.
pub fn director(config: &Config) -> Director {
    let mut d = Director::new(net(), config, settings()).expect("a valid configuration");
    learn(&mut d, Instant::ZERO);
    d
}

/// Teach the director the neighbours of the test network.
pub fn learn(d: &mut Director, t: Instant) {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    d.learn_neighbor(ip("10.1.0.10"), CLIENT_MAC, t);
    d.learn_neighbor(ip("2001:db8:1::10"), CLIENT_MAC, t);
    for i in 1..=3u8 {
        let mac = [2, 0, 0, 0, 1, i];
        d.learn_neighbor(ip(&format!("10.2.0.1{i}")), mac, t);
        d.learn_neighbor(ip(&format!("2001:db8:2::1{i}")), mac, t);
    }
}

/// Drain what the director wants to send.
pub fn drain(d: &mut Director) {
    let mut out = vec![0u8; 4096];
    while d.poll_transmit(&mut out).is_some() {}
}

/// Split `data` into records separated by [`SEP`]; at most `max` of them.
pub fn records(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// The separator between frames in an input of the `frame` target.
pub const SEP: &[u8] = b"\xffRVS\xff";

/// A client's first packet to `addr:port` (a TCP SYN, or a UDP datagram), as an Ethernet
/// frame from the client to the director's public port.
pub fn client_frame(udp: bool, addr: IpAddr, port: u16, sport: u16) -> Vec<u8> {
    let eth = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, DIR_PUB_MAC);
    let b = match addr {
        IpAddr::V4(a) => eth.ipv4([10, 1, 0, 10], a.octets(), 64),
        IpAddr::V6(a) => {
            let c: std::net::Ipv6Addr = "2001:db8:1::10".parse().unwrap();
            eth.ipv6(c.octets(), a.octets(), 64)
        }
    };
    let mut v = Vec::new();
    if udp {
        b.udp(sport, port).write(&mut v, b"query").unwrap();
    } else {
        b.tcp(sport, port, 1000, 64240)
            .syn()
            .write(&mut v, &[])
            .unwrap();
    }
    v
}

/// Run one complete-checksum frame through `d` on `port`.
pub fn send(
    d: &mut Director,
    now: rvs_core::time::Instant,
    port: PortId,
    bytes: &[u8],
) -> rvs_core::director::Verdict {
    let mut buf = vec![0u8; HEAD + bytes.len() + TAIL];
    buf[HEAD..HEAD + bytes.len()].copy_from_slice(bytes);
    let mut f = rvs_core::wire::Frame::new(&mut buf, HEAD, bytes.len()).expect("the frame fits");
    d.handle(now, port, &mut f)
}

#[cfg(test)]
mod corpora {
    use std::path::Path;

    /// Every target: its name (`fuzz_targets/NAME.rs`, `corpus/NAME/`) and its code.
    const TARGETS: &[(&str, fn(&[u8]))] = &[
        ("control", crate::targets::control::run),
        ("control_line", crate::targets::control_line::run),
        ("frame", crate::targets::frame::run),
        ("heartbeat", crate::targets::heartbeat::run),
        ("ipvsadm_command", crate::targets::ipvsadm_command::run),
        ("ipvsadm_rules", crate::targets::ipvsadm_rules::run),
        ("keepalived", crate::targets::keepalived::run),
        ("lvs_cf", crate::targets::lvs_cf::run),
        ("sync_message", crate::targets::sync_message::run),
        ("synproxy", crate::targets::synproxy::run),
        ("vrrp_advert", crate::targets::vrrp_advert::run),
    ];

    fn names_in(dir: &Path, strip: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(strip).map(str::to_string))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_target_has_a_corpus_and_is_listed_here() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let listed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names_in(&root.join("fuzz_targets"), ".rs"), listed);
        assert_eq!(names_in(&root.join("corpus"), ""), listed);
        for (name, _) in TARGETS {
            let bin =
                std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs"))).unwrap();
            assert!(
                bin.contains(&format!("rvs_fuzz::targets::{name}::run(data)")),
                "fuzz_targets/{name}.rs must run targets::{name}"
            );
        }
    }

    /// Each seed once through its target; a panic names the seed.
    #[test]
    fn every_committed_seed_runs_through_its_target() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let mut total = 0;
        for (name, run) in TARGETS {
            let dir = root.join(name);
            let mut seeds: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            seeds.sort();
            assert!(!seeds.is_empty(), "corpus/{name} has no seeds");
            for seed in seeds {
                let data = std::fs::read(&seed).unwrap();
                if std::panic::catch_unwind(|| run(&data)).is_err() {
                    panic!("corpus seed {} fails its target", seed.display());
                }
                total += 1;
            }
        }
        assert!(total >= TARGETS.len());
        eprintln!("{total} seeds replayed");
    }
}
