//! Golden listings: a director built from ipvsadm rules, counters set by hand, and the
//! text ipvsadm 1.31 prints for that table (its printf formats, rendered by hand).

use super::*;
use crate::admin::{Reply, execute};
use rvs_core::director::{DirectorSettings, NetConfig, OwnedAddr, PortConfig, PortId};
use rvs_core::model::Prefix;
use rvs_core::stats::Counters;
use rvs_core::wire::Frame;

const RULES: &str = "\
-A -t 192.168.0.100:80 -s wlc -p 360 -M 255.255.255.0
-a -t 192.168.0.100:80 -r 10.0.0.2:80 -m -w 1
-a -t 192.168.0.100:80 -r 10.0.0.3:8080 -m -w 3 -x 100 -y 10
-A -u 192.168.0.100:53 -s rr
-a -u 192.168.0.100:53 -r 10.0.0.4:53 -g -w 2
-A -f 100 -s sh -b sh-port
-a -f 100 -r 10.0.0.5:0 -i -w 1 --tun-type ipip
-A -f 7 -6 -s rr -p 60 -M 64
-a -f 7 -6 -r [2001:db8:2::7]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -t [2001:db8::100]:443 -s wrr -p 600 -M 64
-a -t [2001:db8::100]:443 -r [2001:db8:2::11]:443 -m -w 5
-A -u 10.1.0.100:4500 -s rr -o
-a -u 10.1.0.100:4500 -r 10.2.0.11:4500 --fullnat -w 0
--local-pool 20000-60000 10.2.0.250
";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net() -> NetConfig {
    NetConfig {
        ports: vec![
            PortConfig {
                id: PortId(0),
                mac: [2, 0, 0, 0, 0, 1],
                addrs: vec![Prefix {
                    addr: ip("192.168.0.2"),
                    len: 24,
                }],
                mtu: 1500,
            },
            PortConfig {
                id: PortId(1),
                mac: [2, 0, 0, 0, 0, 2],
                addrs: vec![
                    Prefix {
                        addr: ip("10.0.0.1"),
                        len: 24,
                    },
                    Prefix {
                        addr: ip("10.2.0.1"),
                        len: 24,
                    },
                ],
                mtu: 1500,
            },
        ],
        routes: vec![],
        owned: vec![OwnedAddr {
            addr: ip("10.2.0.250"),
            port: PortId(1),
            mac: None,
        }],
    }
}

/// The director of [`RULES`] with a 4096-entry table.
fn director() -> Director {
    let cfg = rvs_config::parse_rules(RULES, "golden").expect("valid rules");
    let settings = DirectorSettings {
        default_table_size: 4096,
        ..DirectorSettings::default()
    };
    Director::new(net(), &cfg, settings).expect("a director")
}

fn svc_key(s: &str) -> ServiceKey {
    let (proto, rest) = s.split_once(' ').unwrap();
    let (addr, port) = rest.rsplit_once(':').unwrap();
    ServiceKey::Addr {
        protocol: if proto == "tcp" {
            rvs_core::model::Protocol::Tcp
        } else {
            rvs_core::model::Protocol::Udp
        },
        addr: ip(addr.trim_matches(['[', ']'])),
        port: port.parse().unwrap(),
    }
}

/// Set a service's counters, one real server's counters and its connection numbers.
fn set(d: &mut Director, svc: &str, rs: (&str, u16), c: Counters, conns: (u32, u32, u32)) {
    let key = svc_key(svc);
    let services = d.services_mut();
    let id = services.iter().find(|(_, s)| s.cfg.key == key).unwrap().0;
    let s = services.get_mut(id).unwrap();
    s.stats.add(&c);
    let i = s
        .dests
        .iter()
        .position(|x| x.addr == ip(rs.0) && x.port == rs.1)
        .unwrap();
    let dest = s.dest_ids[i];
    let dst = &mut s.dests[i];
    (dst.active_conns, dst.inact_conns, dst.persist_conns) = conns;
    *services.stats_mut(dest).0.unwrap() = c;
}

fn loaded() -> Director {
    let mut d = director();
    let web = Counters {
        conns: 1523,
        inpkts: 10234,
        outpkts: 9876,
        inbytes: 812345,
        outbytes: 123_456_789,
    };
    set(
        &mut d,
        "tcp 192.168.0.100:80",
        ("10.0.0.2", 80),
        web,
        (3, 12, 4),
    );
    let big = Counters {
        conns: 99_999_999,
        inpkts: 100_000_000,
        outpkts: 1_234_567_890,
        inbytes: 123_456_789_012,
        outbytes: 5_000_000_000_000_000,
    };
    set(
        &mut d,
        "tcp 192.168.0.100:80",
        ("10.0.0.3", 8080),
        big,
        (0, 1, 0),
    );
    let dns = Counters {
        conns: 7,
        inpkts: 7,
        outpkts: 0,
        inbytes: 420,
        outbytes: 0,
    };
    set(
        &mut d,
        "udp 192.168.0.100:53",
        ("10.0.0.4", 53),
        dns,
        (0, 7, 0),
    );
    d
}

fn opts(args: &str) -> ListOptions {
    let mut v = vec!["ipvsadm".to_string()];
    v.extend(args.split_whitespace().map(String::from));
    match rvs_config::parse_command(&v).unwrap() {
        rvs_config::Command::List(o) => o,
        other => panic!("{other:?}"),
    }
}

fn show(d: &Director, args: &str) -> String {
    list(d, &opts(args), Instant(0)).unwrap()
}

#[test]
fn largenum_switches_units_like_ipvsadm() {
    let mut s = String::new();
    for n in [
        0,
        99_999_999,
        100_000_000,
        123_456_789_012,
        5_000_000_000_000_000,
    ] {
        largenum(&mut s, n, false);
    }
    assert_eq!(s, "        0 99999999  100000K     123G    5000T");
    let mut s = String::new();
    for n in [0, 12_345_678, 123_456_789, 5_000_000_000_000_000] {
        largenum(&mut s, n, true);
    }
    assert_eq!(s, "        0 12345678 123456789 5000000000000000");
}

#[test]
fn plain_listing() {
    let d = loaded();
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.0.100:80 wlc persistent 360 mask 255.255.255.0
  -> 10.0.0.2:80                  Masq    1      3          12        
  -> 10.0.0.3:8080                Masq    3      0          1         
UDP  192.168.0.100:53 rr
  -> 10.0.0.4:53                  Route   2      0          7         
UDP  10.1.0.100:4500 rr ops
  -> 10.2.0.11:4500               FullNat 0      0          0         
TCP  [2001:db8::100]:443 wrr persistent 600 mask 64
  -> [2001:db8:2::11]:443         Masq    5      0          0         
FWM  7 IPv6 rr persistent 60 mask 64
  -> [2001:db8:2::7]:0            Tunnel  1      0          0         
FWM  100 sh (sh-port)
  -> 10.0.0.5:0                   Tunnel  1      0          0         
";
    assert_eq!(show(&d, "-L -n"), want);
    // -l, no -n, --sort: the same text (the daemon lists numbers; rvsadm names them).
    assert_eq!(show(&d, "-l --sort"), want);
}

#[test]
fn stats_listing_with_suffixes_and_exact() {
    let d = loaded();
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.0.100:80              100001K  100010K    1234M     123G    5000T
  -> 10.0.0.2:80                      1523    10234     9876   812345  123456K
  -> 10.0.0.3:8080                99999999  100000K    1234M     123G    5000T
UDP  192.168.0.100:53                    7        7        0      420        0
  -> 10.0.0.4:53                         7        7        0      420        0
UDP  10.1.0.100:4500                     0        0        0        0        0
  -> 10.2.0.11:4500                      0        0        0        0        0
TCP  [2001:db8::100]:443                 0        0        0        0        0
  -> [2001:db8:2::11]:443                0        0        0        0        0
FWM  7 IPv6                              0        0        0        0        0
  -> [2001:db8:2::7]:0                   0        0        0        0        0
FWM  100                                 0        0        0        0        0
  -> 10.0.0.5:0                          0        0        0        0        0
";
    assert_eq!(show(&d, "-L -n --stats"), want);
    let exact = show(&d, "-L -n --stats --exact");
    let rows: Vec<&str> = exact.lines().skip(3).take(3).collect();
    assert_eq!(
        rows,
        [
            "TCP  192.168.0.100:80             100001522 100010234 1234577766 123457601357 5000000123456789",
            "  -> 10.0.0.2:80                      1523    10234     9876   812345 123456789",
            "  -> 10.0.0.3:8080                99999999 100000000 1234567890 123456789012 5000000000000000",
        ]
    );
}

#[test]
fn rate_listing() {
    let mut d = loaded();
    // One estimator tick from zero: avg = (delta << 9) >> 2 for conns and packets (shown
    // (avg + 511) >> 10), (delta << 4) >> 2 for bytes (shown (avg + 15) >> 5): e.g.
    // 9876 packets -> (1264128 + 511) >> 10 = 1234; 123456789 bytes -> 15432099;
    // 1234567890 packets -> 154320986, 9 digits in ipvsadm's %8llu column.
    // Before the tick the estimators started from the counters' values at creation (0).
    d.services_mut().estimate();
    let text = show(&d, "-L -n --rate");
    let want_head = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  192.168.0.100:80             12500190 12501279  154322K   15432M     625T
  -> 10.0.0.2:80                       190     1279     1234   101543 15432099
  -> 10.0.0.3:8080                12500000 12500000 154320986   15432M     625T
UDP  192.168.0.100:53                    1        1        0       52        0
";
    assert!(text.starts_with(want_head), "{text}");
}

#[test]
fn thresholds_and_persistent_conn_listings() {
    let d = loaded();
    let t = show(&d, "-L -n --thresholds");
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.0.100:80 wlc persistent 360 mask 255.255.255.0
  -> 10.0.0.2:80                  0          0          3          12        
  -> 10.0.0.3:8080                100        10         0          1         
";
    assert!(t.starts_with(want), "{t}");
    let p = show(&d, "-L -n --persistent-conn");
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.0.100:80 wlc persistent 360 mask 255.255.255.0
  -> 10.0.0.2:80                  1         4           3          12        
  -> 10.0.0.3:8080                3         0           0          1         
";
    assert!(p.starts_with(want), "{p}");
}

#[test]
fn tun_info_listing() {
    let d = loaded();
    let t = show(&d, "-L -n --tun-info");
    assert!(t.contains(
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
    ));
    assert!(t.contains(
        "FWM  100 sh (sh-port)\n  -> 10.0.0.5:0                   Tunnel  ipip          1      0          0         \n"
    ));
    assert!(t.contains(
        "  -> [2001:db8:2::7]:0            Tunnel  gue:6080:csum 1      0          0         \n"
    ));
    assert!(t.contains(
        "  -> 10.0.0.2:80                  Masq    n/a           1      3          12        \n"
    ));
}

#[test]
fn one_service_and_other_lists() {
    let d = loaded();
    assert_eq!(
        show(&d, "-L -n -u 192.168.0.100:53"),
        "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  192.168.0.100:53 rr
  -> 10.0.0.4:53                  Route   2      0          7         
"
    );
    assert_eq!(
        list(&d, &opts("-L -n -t 192.168.0.100:53"), Instant(0)),
        Err("No such service".to_string())
    );
    assert_eq!(
        show(&d, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert_eq!(show(&d, "-L --daemon"), "");
    // --nosort: configuration order, real servers most recent first.
    let n = show(&d, "-L -n --nosort");
    let svcs: Vec<&str> = n.lines().filter(|l| !l.starts_with(' ')).skip(2).collect();
    assert_eq!(
        svcs,
        [
            "TCP  192.168.0.100:80 wlc persistent 360 mask 255.255.255.0",
            "UDP  192.168.0.100:53 rr",
            "FWM  100 sh (sh-port)",
            "FWM  7 IPv6 rr persistent 60 mask 64",
            "TCP  [2001:db8::100]:443 wrr persistent 600 mask 64",
            "UDP  10.1.0.100:4500 rr ops",
        ]
    );
    assert!(n.contains("Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  192.168.0.100:80 wlc persistent 360 mask 255.255.255.0\n  -> 10.0.0.3:8080"));
}

/// A TCP SYN from a client to 192.168.0.100:80 through the engine: one connection and
/// one persistence template.
fn syn(d: &mut Director, now: Instant) {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 1])
        .ipv4([172, 16, 5, 9], [192, 168, 0, 100], 64)
        .tcp(51234, 80, 1000, 64240)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    d.learn_neighbor(ip("10.0.0.2"), [2, 0, 0, 0, 1, 2], now);
    d.learn_neighbor(ip("10.0.0.3"), [2, 0, 0, 0, 1, 3], now);
    let head = 128;
    let mut buf = vec![0u8; head + v.len() + 64];
    buf[head..head + v.len()].copy_from_slice(&v);
    let mut f = Frame::new(&mut buf, head, v.len()).unwrap();
    let _ = d.handle(now, PortId(0), &mut f);
}

#[test]
fn connection_listing() {
    let mut d = director();
    let t0 = Instant(1_000_000_000);
    syn(&mut d, t0);
    let later = Instant(t0.0 + 1_500_000_000); // 1.5 s later
    let text = show_at(&d, "-L -n -c", later);
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries");
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            destination"
    );
    lines.drain(..2);
    lines.sort();
    // SYN_RECV lasts 60 s (58 whole seconds left); the template 360 s (358 = 05:58).
    let rs = if text.contains("10.0.0.2:80\n") {
        "10.0.0.2:80"
    } else {
        "10.0.0.3:8080"
    };
    assert_eq!(
        lines,
        [
            format!("TCP 00:58  SYN_RECV    172.16.5.9:51234   192.168.0.100:80   {rs}"),
            format!("TCP 05:58  NONE        172.16.5.0:0       192.168.0.100:80   {rs}"),
        ]
    );
    let p = show_at(&d, "-L -n -c --persistent-conn", later);
    assert_eq!(
        p.lines().nth(1).unwrap(),
        "pro expire state       source             virtual            destination        pe name          pe_data"
    );
}

fn show_at(d: &Director, args: &str, now: Instant) -> String {
    list(d, &opts(args), now).unwrap()
}

fn args(line: &str) -> Vec<String> {
    std::iter::once("ipvsadm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect()
}

#[test]
fn commands_change_the_running_director() {
    let mut d = loaded();
    let now = Instant(0);
    let run = |d: &mut Director, line: &str| execute(d, &args(line), "", now);
    // Add, edit to weight 0, delete; errors with ipvsadm's texts and statuses.
    let r = run(&mut d, "-a -t 192.168.0.100:80 -r 10.0.0.9:80 -m -w 2");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let r = run(&mut d, "-a -t 192.168.0.100:80 -r 10.0.0.9:80 -m");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (255, "Destination already exists\n")
    );
    let r = run(&mut d, "-e -t 192.168.0.100:80 -r 10.0.0.9:80 -m -w 0");
    assert_eq!(r.code, 0, "{r:?}");
    let listing = run(&mut d, "-L -n -t 192.168.0.100:80").stdout;
    assert!(
        listing
            .contains("  -> 10.0.0.9:80                  Masq    0      0          0         \n"),
        "{listing}"
    );
    let r = run(&mut d, "-d -t 192.168.0.100:80 -r 10.0.0.9:81");
    assert_eq!((r.code, r.stderr.as_str()), (255, "No such destination\n"));
    // -r without a port: the virtual port.
    assert_eq!(run(&mut d, "-d -t 192.168.0.100:80 -r 10.0.0.9").code, 0);
    let r = run(&mut d, "-D -t 1.2.3.4:80");
    assert_eq!((r.code, r.stderr.as_str()), (255, "No such service\n"));
    let r = run(&mut d, "-A -t 1.2.3.4:0");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "Zero port specified for non-persistent service\n")
    );
    // The counters of the edited service survive the edits; -Z zeroes one service.
    assert!(
        run(&mut d, "-L -n --stats")
            .stdout
            .contains("\n  -> 10.0.0.2:80                      1523")
    );
    assert_eq!(run(&mut d, "-Z -t 192.168.0.100:80").code, 0);
    let s = run(&mut d, "-L -n --stats").stdout;
    assert!(
        s.contains("\nTCP  192.168.0.100:80                    0        0"),
        "{s}"
    );
    assert!(
        s.contains("\n  -> 10.0.0.4:53                         7"),
        "{s}"
    );
    assert_eq!(run(&mut d, "-Z -t 9.9.9.9:1").code, 255);
    assert_eq!(run(&mut d, "-Z").code, 0);
    assert!(!run(&mut d, "-L -n --stats").stdout.contains("       7"));
    // --set, then -L --timeout; -S -n carries it.
    assert_eq!(run(&mut d, "--set 1000 0 0").code, 0);
    assert_eq!(
        run(&mut d, "-L --timeout").stdout,
        "Timeout (tcp tcpfin udp): 1000 120 300\n"
    );
    let saved = run(&mut d, "-S -n").stdout;
    assert!(saved.contains("-A -t 192.168.0.100:80 -s wlc -p 360 -M 255.255.255.0\n"));
    // -R runs each line as ipvsadm's restore_table() does: a -C line clears, then the
    // rules add.
    let r = execute(
        &mut d,
        &args("-R"),
        "-C\n-A -t 192.168.0.100:80 -s rr\n-a -t 192.168.0.100:80 -r 10.0.0.2:80 -m -w 1\n",
        now,
    );
    assert_eq!(r, Reply::ok(String::new()));
    let saved = "--local-pool 20000-60000 10.2.0.250\n--set 1000 120 300\n\
                 -A -t 192.168.0.100:80 -s rr\n-a -t 192.168.0.100:80 -r 10.0.0.2:80 -m -w 1\n";
    assert_eq!(
        execute(&mut d, &args("-S -n"), "", now).stdout,
        saved,
        "the rules set no timeouts and no pool: the running ones stay"
    );
    // Without -C the lines add to what runs; a line the kernel refuses prints its message
    // and the next runs; the status is the last line's.
    let r = execute(
        &mut d,
        &args("-R"),
        "-A -t 192.168.0.100:9090 -s rr\n-A -t 192.168.0.100:80 -s wlc\n\
         -a -t 192.168.0.100:9090 -r 10.0.0.3:9090 -m\n",
        now,
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, "Service already exists\n"));
    let now_saved = execute(&mut d, &args("-S -n"), "", now).stdout;
    assert!(now_saved.starts_with(saved), "{now_saved}");
    assert!(
        now_saved.ends_with(
            "-A -t 192.168.0.100:9090 -s rr\n-a -t 192.168.0.100:9090 -r 10.0.0.3:9090 -m -w 1\n"
        ),
        "{now_saved}"
    );
    // The last line refused: exit status 255 (main() returns -1).
    let r = execute(
        &mut d,
        &args("-R"),
        "-D -t 192.168.0.100:9090\n-D -t 9.9.9.9:1\n",
        now,
    );
    assert_eq!((r.code, r.stderr.as_str()), (255, "No such service\n"));
    assert_eq!(execute(&mut d, &args("-S -n"), "", now).stdout, saved);
    // A line ipvsadm cannot parse stops the restore (fail(2, ...)); the lines before it
    // stay applied, the ones after it do not run.
    let r = execute(
        &mut d,
        &args("-R"),
        "-A -t 1.2.3.4:81\n-A -t 1.2.3.4:0\n-A -t 1.2.3.5:80\n",
        now,
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (2, "Zero port specified for non-persistent service\n")
    );
    let keys: Vec<String> = d
        .config()
        .services
        .iter()
        .map(|s| format!("{:?}", s.key))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.contains("1.2.3.4") && k.contains("81")),
        "{keys:?}"
    );
    assert_eq!(execute(&mut d, &args("-D -t 1.2.3.4:81"), "", now).code, 0);
    // -C clears; the sync-daemon commands need the daemon (an engine alone runs none).
    assert_eq!(execute(&mut d, &args("-C"), "", now).code, 0);
    assert!(d.config().services.is_empty());
    let r = execute(&mut d, &args("--start-daemon master"), "", now);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("rvs daemon"), "{}", r.stderr);
    let r = execute(&mut d, &args("--stop-daemon master"), "", now);
    assert_eq!((r.code, r.stderr.as_str()), (255, "No daemon is running\n"));
}

/// The names of the listings without `-n`: a VIP name long enough to be cut (33 bytes
/// on the service line), a real server's too (28), an IPv6 VIP (never cut), services
/// by protocol (`domain` is UDP only here, `http-alt` TCP only).
fn names() -> rvs_config::ipvsadm::FixedNames {
    rvs_config::ipvsadm::FixedNames::new(
        &[
            ("vip-with-a-long-name.example.com", "192.168.0.100"),
            ("web-a", "10.0.0.2"),
            ("web-b-with-a-very-long-host-name.example.com", "10.0.0.3"),
            ("v6-vip", "2001:db8::100"),
            ("client", "172.16.5.9"),
        ],
        &[
            ("http", 80, "tcp"),
            ("http-alt", 8080, "tcp"),
            ("https", 443, "tcp"),
            ("domain", 53, "udp"),
        ],
    )
}

/// What `rvsadm` does around the daemon: names in the command line resolved to numbers,
/// the numeric answer named as ipvsadm prints it.
fn client(d: &mut Director, line: &str, now: Instant) -> crate::admin::Reply {
    let names = names();
    let (command, numeric) = rvs_config::ipvsadm::numeric_args(&args(line), &names);
    let command = command.expect("a valid command line");
    let mut reply = execute(d, &numeric, "", now);
    crate::admin::name_reply(&command, &mut reply, &names);
    reply
}

#[test]
fn plain_listing_with_names() {
    let mut d = loaded();
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  vip-with-a-long-name.example wlc persistent 360 mask 255.255.255.0
  -> web-a:http                   Masq    1      3          12        
  -> web-b-with-a-very-long-host- Masq    3      0          1         
UDP  vip-with-a-long-name.example rr
  -> 10.0.0.4:domain              Route   2      0          7         
UDP  10.1.0.100:4500 rr ops
  -> 10.2.0.11:4500               FullNat 0      0          0         
TCP  [v6-vip]:https wrr persistent 600 mask 64
  -> [2001:db8:2::11]:https       Masq    5      0          0         
FWM  7 IPv6 rr persistent 60 mask 64
  -> [2001:db8:2::7]:0            Tunnel  1      0          0         
FWM  100 sh (sh-port)
  -> 10.0.0.5:0                   Tunnel  1      0          0         
";
    assert_eq!(client(&mut d, "-L", Instant(0)).stdout, want);
    // No arguments at all lists the same way (ipvsadm: list_all(FMT_NONE)).
    let r = client(&mut d, "", Instant(0));
    assert_eq!(r.stdout, want);
    // -n: numbers, as the daemon answers.
    assert_eq!(
        client(&mut d, "-L -n", Instant(0)).stdout,
        show(&d, "-L -n")
    );
    // One service named by its names.
    assert_eq!(
        client(
            &mut d,
            "-L -u vip-with-a-long-name.example.com:domain",
            Instant(0)
        )
        .stdout,
        "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  vip-with-a-long-name.example rr
  -> 10.0.0.4:domain              Route   2      0          7         
"
    );
}

#[test]
fn stats_and_threshold_listings_with_names() {
    let mut d = loaded();
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  vip-with-a-long-name.example  100001K  100010K    1234M     123G    5000T
  -> web-a:http                       1523    10234     9876   812345  123456K
  -> web-b-with-a-very-long-host- 99999999  100000K    1234M     123G    5000T
UDP  vip-with-a-long-name.example        7        7        0      420        0
  -> 10.0.0.4:domain                     7        7        0      420        0
UDP  10.1.0.100:4500                     0        0        0        0        0
  -> 10.2.0.11:4500                      0        0        0        0        0
TCP  [v6-vip]:https                      0        0        0        0        0
  -> [2001:db8:2::11]:https              0        0        0        0        0
FWM  7 IPv6                              0        0        0        0        0
  -> [2001:db8:2::7]:0                   0        0        0        0        0
FWM  100                                 0        0        0        0        0
  -> 10.0.0.5:0                          0        0        0        0        0
";
    assert_eq!(client(&mut d, "-L --stats", Instant(0)).stdout, want);
    let t = client(&mut d, "-L --thresholds", Instant(0)).stdout;
    assert!(
        t.contains(
            "TCP  vip-with-a-long-name.example wlc persistent 360 mask 255.255.255.0\n  -> web-a:http                   0          0          3          12        \n  -> web-b-with-a-very-long-host- 100        10         0          1         \n"
        ),
        "{t}"
    );
}

#[test]
fn connection_listing_with_names() {
    let mut d = director();
    let t0 = Instant(1_000_000_000);
    syn(&mut d, t0);
    let text = client(&mut d, "-L -c", Instant(t0.0 + 1_500_000_000)).stdout;
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "IPVS connection entries",
            "pro expire state       source             virtual            destination"
        ]
    );
    lines.drain(..2);
    lines.sort();
    let rs = if text.contains("web-a:http\n") {
        "web-a:http"
    } else {
        "web-b-with-a-very-long-host-name.example.com:http-alt"
    };
    // Names are not cut in -c (only to ipvsadm's 59-byte buffer): columns overflow.
    assert_eq!(
        lines,
        [
            format!(
                "TCP 00:58  SYN_RECV    client:51234       vip-with-a-long-name.example.com:http {rs}"
            ),
            format!(
                "TCP 05:58  NONE        172.16.5.0:0       vip-with-a-long-name.example.com:http {rs}"
            ),
        ]
    );
}

#[test]
fn save_without_n_prints_names() {
    let mut d = loaded();
    let saved = client(&mut d, "-S", Instant(0)).stdout;
    let want = "\
--local-pool 20000-60000 10.2.0.250
-A -t vip-with-a-long-name.example.com:http -s wlc -p 360 -M 255.255.255.0
-a -t vip-with-a-long-name.example.com:http -r web-a:http -m -w 1
-a -t vip-with-a-long-name.example.com:http -r web-b-with-a-very-long-host-name.example.com:http-alt -m -w 3 -x 100 -y 10
-A -u vip-with-a-long-name.example.com:domain -s rr
-a -u vip-with-a-long-name.example.com:domain -r 10.0.0.4:domain -g -w 2
-A -u 10.1.0.100:4500 -s rr -o
-a -u 10.1.0.100:4500 -r 10.2.0.11:4500 --fullnat -w 0
-A -t [v6-vip]:https -s wrr -p 600 -M 64
-a -t [v6-vip]:https -r [2001:db8:2::11]:https -m -w 5
-A -f 7 -6 -s rr -p 60 -M 64
-a -f 7 -6 -r [2001:db8:2::7]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -f 100 -s sh -b sh-port
-a -f 100 -r 10.0.0.5:0 -i -w 1 --tun-type ipip
";
    assert_eq!(saved, want);
    assert_eq!(
        client(&mut d, "-S -n", Instant(0)).stdout,
        execute(&mut d, &args("-S -n"), "", Instant(0)).stdout
    );
    // Commands given names reach the director as numbers.
    let r = client(
        &mut d,
        "-e -t vip-with-a-long-name.example.com:http -r web-a:http -m -w 7",
        Instant(0),
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(
        show(&d, "-L -n").contains("  -> 10.0.0.2:80                  Masq    7 "),
        "{}",
        show(&d, "-L -n")
    );
}

/// DPVS's `-j enable` through the daemon's command path: the flag shows in `-L` as DPVS
/// prints it (` synproxy` after the flags), `-S` writes it back, `-E` without it turns it
/// off, and a direct-routing real server in a proxied service is refused with the
/// configuration unchanged.
#[test]
fn synproxy_switch_lists_saves_and_refuses() {
    let mut d = loaded();
    let now = Instant(0);
    let run = |d: &mut Director, line: &str| execute(d, &args(line), "", now);
    let r = run(&mut d, "-A -t 192.168.0.100:8080 -s rr -j enable");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        run(&mut d, "-a -t 192.168.0.100:8080 -r 10.0.0.2:80 -m").code,
        0
    );
    let l = run(&mut d, "-L -n -t 192.168.0.100:8080").stdout;
    assert!(l.contains("\nTCP  192.168.0.100:8080 rr synproxy\n"), "{l}");
    assert!(!show(&d, "-L -n").contains(":80 wlc persistent 360 mask 255.255.255.0 synproxy"));
    let s = run(&mut d, "-S -n").stdout;
    assert!(
        s.contains("\n-A -t 192.168.0.100:8080 -s rr -j enable\n"),
        "{s}"
    );
    let r = run(&mut d, "-a -t 192.168.0.100:8080 -r 10.0.0.3:8080 -g");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            255,
            "SYN proxy needs masquerading or FullNAT real servers (-m or --fullnat)\n"
        )
    );
    assert!(!run(&mut d, "-L -n").stdout.contains("10.0.0.3:80 "));
    assert_eq!(run(&mut d, "-E -t 192.168.0.100:8080 -s rr").code, 0);
    let l = run(&mut d, "-L -n -t 192.168.0.100:8080").stdout;
    assert!(l.contains("\nTCP  192.168.0.100:8080 rr\n"), "{l}");
}
