//! ipvsadm compatibility end to end: `save` against hand-written `ipvsadm -S -n` text,
//! `parse_command` for every command and a table of refused command lines with
//! ipvsadm's own message and exit status, located rules-file diagnostics, and property
//! tests (round trip of generated configurations, no panic on arbitrary input).
//!
//! Expected texts are written from ipvsadm 1.31 `print_service_entry()` with `FMT_RULE`:
//! `"-A %s -s %s"`, `" -p %u"`, `" -M %s"` (`inet_ntoa`, IPv4) or `" -M %i"` (IPv6),
//! `" --pe %s"`, `" -o"`, `" -b "` + `print_sched_flags()`; real servers
//! `"-a %s -r %s %s -w %d"` with `fwd_switch()`, and `print_tunnel_rule()`:
//! `" --tun-type ipip"`, `" --tun-type gue --tun-port %d %s"`, `" --tun-type gre %s"`.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;
use rvs_config::ipvsadm::{
    Command, DaemonOptions, DaemonState, FixedNames, ListFormat, ListOptions, ListWhat, UsageError,
    ipvsadm_order, name_save, numeric_args, numeric_rules, parse_command, parse_command_with,
    parse_rules, parse_rules_with, save, save_in_order,
};
use rvs_config::render_all;
use rvs_core::model::{
    Config, Family, ForwardMethod, LocalPool, Persistence, Protocol, RealServerConfig, SchedFlags,
    SchedulerKind, ServiceKey, Timeouts, TunnelCsum, TunnelKind, VirtualServiceConfig,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn args(line: &str) -> Vec<String> {
    std::iter::once("ipvsadm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect()
}

fn cmd(line: &str) -> Command {
    match parse_command(&args(line)) {
        Ok(c) => c,
        Err(e) => panic!("{line}: {e:?}"),
    }
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

fn rs(addr: &str, port: u16, weight: u32, method: ForwardMethod) -> RealServerConfig {
    RealServerConfig {
        weight,
        method,
        ..RealServerConfig::new(ip(addr), port)
    }
}

fn svc(key: ServiceKey, sched: SchedulerKind) -> VirtualServiceConfig {
    VirtualServiceConfig {
        scheduler: sched,
        ..VirtualServiceConfig::new(key)
    }
}

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/ipvsadm")
            .join(name),
    )
    .unwrap()
}

fn tunnel(kind: TunnelKind, csum: TunnelCsum) -> ForwardMethod {
    ForwardMethod::Tunnel { kind, csum }
}

/// The configuration of `every_kind.rules`, built by hand.
fn every_kind() -> Config {
    let mut a = svc(tcp("10.0.0.1", 80), SchedulerKind::Wlc);
    a.real_servers = vec![
        rs("192.168.1.2", 80, 1, ForwardMethod::DirectRoute),
        rs("192.168.1.3", 8080, 5, ForwardMethod::Masq),
    ];
    let mut b = svc(udp("10.0.0.1", 53), SchedulerKind::Rr);
    b.persistence = Some(Persistence {
        timeout: 360,
        prefix: 32,
    });
    b.one_packet = true;
    b.real_servers = vec![rs(
        "192.168.1.4",
        53,
        2,
        tunnel(TunnelKind::Ipip, TunnelCsum::NoCsum),
    )];
    let mut c = svc(tcp("200.0.0.1", 443), SchedulerKind::Sh);
    c.persistence = Some(Persistence {
        timeout: 3600,
        prefix: 24,
    });
    c.flags = SchedFlags(SchedFlags::FLAG_1 | SchedFlags::FLAG_2);
    c.real_servers = vec![
        rs(
            "192.168.1.5",
            443,
            1,
            tunnel(TunnelKind::Gue { port: 6080 }, TunnelCsum::Csum),
        ),
        rs(
            "192.168.1.6",
            443,
            1,
            tunnel(TunnelKind::Gre, TunnelCsum::NoCsum),
        ),
    ];
    let mut d = svc(tcp("2001:db8::1", 80), SchedulerKind::Mh);
    d.persistence = Some(Persistence {
        timeout: 60,
        prefix: 64,
    });
    d.flags = SchedFlags(SchedFlags::FLAG_2);
    d.real_servers = vec![
        RealServerConfig {
            u_threshold: 100,
            l_threshold: 50,
            ..rs("2001:db8::10", 80, 3, ForwardMethod::Masq)
        },
        rs(
            "192.168.1.7",
            80,
            1,
            tunnel(TunnelKind::Gue { port: 6080 }, TunnelCsum::RemCsum),
        ),
    ];
    let mut e = svc(
        ServiceKey::Fwmark {
            mark: 100,
            family: Family::V4,
        },
        SchedulerKind::Wrr,
    );
    e.flags = SchedFlags(SchedFlags::FLAG_2);
    e.real_servers = vec![rs("192.168.1.8", 0, 0, ForwardMethod::DirectRoute)];
    let mut f = svc(
        ServiceKey::Fwmark {
            mark: 100,
            family: Family::V6,
        },
        SchedulerKind::Lc,
    );
    f.persistence = Some(Persistence {
        timeout: 360,
        prefix: 48,
    });
    f.real_servers = vec![rs("2001:db8::20", 0, 7, ForwardMethod::FullNat)];
    Config {
        services: vec![a, b, c, d, e, f],
        local_pool: LocalPool {
            addrs: vec![ip("10.0.0.250"), ip("2001:db8:ff::250")],
            port_range: (1024, 65535),
        },
        ..Config::default()
    }
}

mod golden {
    use super::*;

    #[test]
    fn every_kind_of_service_in_config_order() {
        assert_eq!(save_in_order(&every_kind()), data("every_kind.rules"));
    }

    #[test]
    fn every_kind_parses_back() {
        let text = data("every_kind.rules");
        let cfg =
            parse_rules(&text, "every_kind.rules").unwrap_or_else(|d| panic!("{}", render_all(&d)));
        assert_eq!(cfg, every_kind());
    }

    /// `ipvsadm -S` sorts as `list_all()` does: `ipvs_cmp_services()` compares fwmark,
    /// family, protocol, then `ntohl(a) - ntohl(b)` as an `int`, so 200.0.0.1 comes
    /// before 10.0.0.1 (0x0a000001 - 0xc8000001 wraps to a positive int); fwmark
    /// services (fwmark > 0) come last, IPv4 before IPv6. Real servers likewise by
    /// `ipvs_cmp_dests()`, which compares a mixed pair by the first server's family: the
    /// IPv4 192.168.1.7 against the first word of 2001:db8::10 (0xc0a80107 - 0x20010db8
    /// is negative as an int), so the tunnelled IPv4 server comes first.
    #[test]
    fn sorted_like_libipvs() {
        let text = save(&every_kind());
        let expected = "\
--local-pool 1024-65535 10.0.0.250 2001:db8:ff::250
-A -t 200.0.0.1:443 -s sh -p 3600 -M 255.255.255.0 -b sh-fallback,sh-port
-a -t 200.0.0.1:443 -r 192.168.1.5:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -t 200.0.0.1:443 -r 192.168.1.6:443 -i -w 1 --tun-type gre --tun-nocsum
-A -t 10.0.0.1:80 -s wlc
-a -t 10.0.0.1:80 -r 192.168.1.2:80 -g -w 1
-a -t 10.0.0.1:80 -r 192.168.1.3:8080 -m -w 5
-A -u 10.0.0.1:53 -s rr -p 360 -o
-a -u 10.0.0.1:53 -r 192.168.1.4:53 -i -w 2 --tun-type ipip
-A -t [2001:db8::1]:80 -s mh -p 60 -M 64 -b mh-port
-a -t [2001:db8::1]:80 -r 192.168.1.7:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum
-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m -w 3 -x 100 -y 50
-A -f 100 -s wrr -b flag-2
-a -f 100 -r 192.168.1.8:0 -g -w 0
-A -f 100 -6 -s lc -p 360 -M 48
-a -f 100 -6 -r [2001:db8::20]:0 --fullnat -w 7
";
        assert_eq!(text, expected);
        assert_eq!(
            parse_rules(&text, "s").unwrap(),
            ipvsadm_order(&every_kind())
        );
    }

    #[test]
    fn real_servers_sorted_by_address_then_port() {
        let mut s = svc(tcp("192.168.0.100", 80), SchedulerKind::Wlc);
        s.real_servers = vec![
            rs("10.0.0.3", 80, 1, ForwardMethod::Masq),
            rs("10.0.0.2", 8080, 1, ForwardMethod::Masq),
            rs("10.0.0.2", 80, 1, ForwardMethod::Masq),
        ];
        let cfg = Config {
            services: vec![s],
            ..Config::default()
        };
        assert_eq!(
            save(&cfg),
            "-A -t 192.168.0.100:80 -s wlc\n\
             -a -t 192.168.0.100:80 -r 10.0.0.2:80 -m -w 1\n\
             -a -t 192.168.0.100:80 -r 10.0.0.2:8080 -m -w 1\n\
             -a -t 192.168.0.100:80 -r 10.0.0.3:80 -m -w 1\n"
        );
    }

    /// The reference's own example (`/work/shared/reference/ipvsadm.md`).
    #[test]
    fn reference_example() {
        let mut a = svc(tcp("192.168.0.100", 80), SchedulerKind::Wlc);
        a.persistence = Some(Persistence {
            timeout: 360,
            prefix: 24,
        });
        a.real_servers = vec![rs("10.0.0.2", 80, 1, ForwardMethod::Masq)];
        let mut b = svc(
            ServiceKey::Fwmark {
                mark: 100,
                family: Family::V4,
            },
            SchedulerKind::Sh,
        );
        b.flags = SchedFlags(SchedFlags::FLAG_2);
        b.real_servers = vec![rs(
            "10.0.0.5",
            0,
            1,
            tunnel(TunnelKind::Ipip, TunnelCsum::NoCsum),
        )];
        let cfg = Config {
            services: vec![a, b],
            ..Config::default()
        };
        assert_eq!(
            save(&cfg),
            "-A -t 192.168.0.100:80 -s wlc -p 360 -M 255.255.255.0\n\
             -a -t 192.168.0.100:80 -r 10.0.0.2:80 -m -w 1\n\
             -A -f 100 -s sh -b sh-port\n\
             -a -f 100 -r 10.0.0.5:0 -i -w 1 --tun-type ipip\n"
        );
    }

    #[test]
    fn timeouts_and_ipv4_compatible_v6_addresses() {
        let mut s = svc(tcp("::1.2.3.4", 80), SchedulerKind::Rr);
        s.real_servers = vec![rs("::ffff:10.0.0.1", 80, 1, ForwardMethod::DirectRoute)];
        let cfg = Config {
            services: vec![s],
            timeouts: Timeouts {
                tcp: 7200,
                tcp_fin: 120,
                udp: 300,
            },
            ..Config::default()
        };
        // inet_ntop() prints the IPv4 tail dotted, as glibc does.
        assert_eq!(
            save(&cfg),
            "--set 7200 120 300\n\
             -A -t [::1.2.3.4]:80 -s rr\n\
             -a -t [::1.2.3.4]:80 -r [::ffff:10.0.0.1]:80 -g -w 1\n"
        );
    }
}

mod commands {
    use super::*;

    /// ipvsadm 1.31's `--sctp-service` (no short option: `-s` is the scheduler), in a
    /// rules file and back through `-S` (`option_from_protocol()`).
    #[test]
    fn sctp_services_parse_and_save() {
        let s = add("-A --sctp-service 10.0.0.1:2905 -s rr");
        assert_eq!(
            s.key,
            ServiceKey::Addr {
                protocol: Protocol::Sctp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 2905
            }
        );
        assert_eq!(s.scheduler, SchedulerKind::Rr);
        let text = "-A --sctp-service 10.0.0.1:2905 -s rr\n\
                    -a --sctp-service 10.0.0.1:2905 -r 10.0.0.2:3868 -m -w 1\n";
        let cfg = parse_rules(text, "r").unwrap();
        assert_eq!(cfg.services[0].real_servers[0].port, 3868);
        assert_eq!(
            save(&cfg),
            "-A --sctp-service 10.0.0.1:2905 -s rr\n\
             -a --sctp-service 10.0.0.1:2905 -r 10.0.0.2:3868 -m -w 1\n"
        );
    }

    fn add(line: &str) -> VirtualServiceConfig {
        match cmd(line) {
            Command::AddService {
                service, pe: None, ..
            } => service,
            c => panic!("{c:?}"),
        }
    }

    fn add_rs(line: &str) -> (ServiceKey, RealServerConfig) {
        match cmd(line) {
            Command::AddServer { service, server } => (service, server),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn add_service_defaults_and_options() {
        let s = add("-A -t 10.0.0.1:80");
        assert_eq!(s, VirtualServiceConfig::new(tcp("10.0.0.1", 80)));
        let s = add("-A -t 10.0.0.1:0 -p");
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 360,
                prefix: 32
            })
        );
        let s = add("-A -u 10.0.0.1:53 -s rr -p 60 -M 255.255.0.0 -o");
        assert_eq!(s.scheduler, SchedulerKind::Rr);
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 60,
                prefix: 16
            })
        );
        assert!(s.one_packet);
        let s = add(
            "--add-service --tcp-service=[2001:db8::1]:443 --scheduler=sh --sched-flags sh-port,sh-fallback --persistent=10 --netmask 64",
        );
        assert_eq!(s.key, tcp("2001:db8::1", 443));
        assert_eq!(s.flags, SchedFlags(3));
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 10,
                prefix: 64
            })
        );
        // -p's value is optional: the next word is not taken when it starts with '-'.
        let s = add("-A -t 10.0.0.1:80 -p -s rr");
        assert_eq!(s.persistence.unwrap().timeout, 360);
        let s = add("-A -f 7 -6 -p 100 -M 96");
        assert_eq!(
            s.key,
            ServiceKey::Fwmark {
                mark: 7,
                family: Family::V6
            }
        );
        assert_eq!(s.persistence.unwrap().prefix, 96);
        // popt clusters: -At, -p with its value attached.
        let s = add("-At 10.0.0.1:80 -p300 -srr");
        assert_eq!(s.persistence.unwrap().timeout, 300);
        assert_eq!(s.scheduler, SchedulerKind::Rr);
        assert_eq!(
            cmd("-A -t 10.0.0.1:80 --pe sip -p"),
            Command::AddService {
                service: VirtualServiceConfig {
                    persistence: Some(Persistence {
                        timeout: 360,
                        prefix: 32
                    }),
                    ..VirtualServiceConfig::new(tcp("10.0.0.1", 80))
                },
                pe: Some("sip".into()),
                synproxy: false,
            }
        );
    }

    #[test]
    fn edit_and_delete_service() {
        assert!(matches!(
            cmd("-E -t 10.0.0.1:80 -s rr"),
            Command::EditService { service, .. } if service.scheduler == SchedulerKind::Rr
        ));
        assert_eq!(
            cmd("-D -u 10.0.0.1:53"),
            Command::DeleteService(udp("10.0.0.1", 53))
        );
        assert_eq!(cmd("-C"), Command::Clear);
        assert_eq!(cmd("--clear"), Command::Clear);
    }

    #[test]
    fn add_server_defaults_and_port_rules() {
        let (k, r) = add_rs("-a -t 10.0.0.1:80 -r 192.168.1.2");
        assert_eq!(k, tcp("10.0.0.1", 80));
        assert_eq!(r, RealServerConfig::new(ip("192.168.1.2"), 80));
        // -g and -i force the virtual port; -m keeps the given one.
        let (_, r) = add_rs("-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -g");
        assert_eq!(r.port, 80);
        let (_, r) = add_rs("-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 0 -x 10 -y 5");
        assert_eq!(
            (r.port, r.weight, r.u_threshold, r.l_threshold),
            (8080, 0, 10, 5)
        );
        assert_eq!(r.method, ForwardMethod::Masq);
        let (_, r) = add_rs("-a -f 1 -r 192.168.1.2:8080");
        assert_eq!(r.port, 8080);
        let (_, r) = add_rs(
            "-a -t 10.0.0.1:80 -r 192.168.1.2 -i --tun-type gue --tun-port 6080 --tun-remcsum",
        );
        assert_eq!(
            r.method,
            tunnel(TunnelKind::Gue { port: 6080 }, TunnelCsum::RemCsum)
        );
        let (_, r) = add_rs("-a -t [2001:db8::1]:80 -r 10.0.0.2 -i --tun-type gre --tun-csum");
        assert_eq!(r.method, tunnel(TunnelKind::Gre, TunnelCsum::Csum));
        let (_, r) = add_rs("-a -t 10.0.0.1:80 -r 192.168.1.2 --fullnat");
        assert_eq!(r.method, ForwardMethod::FullNat);
        assert!(matches!(
            cmd("-e -t 10.0.0.1:80 -r 192.168.1.2 -w 3"),
            Command::EditServer { server, .. } if server.weight == 3
        ));
        assert_eq!(
            cmd("-d -t 10.0.0.1:80 -r 192.168.1.2"),
            Command::DeleteServer {
                service: tcp("10.0.0.1", 80),
                addr: ip("192.168.1.2"),
                port: 80
            }
        );
    }

    #[test]
    fn list_save_zero_set_daemons_help() {
        assert_eq!(
            parse_command(&["ipvsadm".to_string()]).unwrap(),
            Command::List(ListOptions::default())
        );
        let numeric = ListFormat {
            numeric: true,
            ..ListFormat::default()
        };
        for l in ["-L -n", "-ln", "-Ln", "-l --numeric", "--list -n"] {
            assert_eq!(
                cmd(l),
                Command::List(ListOptions {
                    what: ListWhat::All,
                    format: numeric
                }),
                "{l}"
            );
        }
        assert!(matches!(
            cmd("-L -c -n"),
            Command::List(ListOptions {
                what: ListWhat::Connections,
                ..
            })
        ));
        assert!(matches!(
            cmd("-L --timeout"),
            Command::List(ListOptions {
                what: ListWhat::Timeout,
                ..
            })
        ));
        assert!(matches!(
            cmd("-L --daemon"),
            Command::List(ListOptions {
                what: ListWhat::Daemon,
                ..
            })
        ));
        assert!(matches!(
            cmd("-L -t 10.0.0.1:80 --stats --exact --nosort --sort"),
            Command::List(ListOptions { what: ListWhat::Service(_), format })
                if format.stats && format.exact && format.nosort
        ));
        assert_eq!(cmd("-S -n"), Command::Save { numeric: true });
        assert_eq!(cmd("-Sn"), Command::Save { numeric: true });
        assert_eq!(cmd("-R"), Command::Restore);
        assert_eq!(cmd("-Z"), Command::Zero(None));
        assert_eq!(
            cmd("-Z -t 10.0.0.1:80"),
            Command::Zero(Some(tcp("10.0.0.1", 80)))
        );
        assert_eq!(
            cmd("--set 900 0 300"),
            Command::SetTimeouts(Timeouts {
                tcp: 900,
                tcp_fin: 0,
                udp: 300
            })
        );
        assert_eq!(
            cmd("--start-daemon master"),
            Command::StartDaemon(DaemonOptions {
                state: DaemonState::Master,
                mcast_interface: "eth0".into(),
                syncid: 0,
                sync_maxlen: None,
                mcast_group: None,
                mcast_port: None,
                mcast_ttl: None
            })
        );
        assert_eq!(
            cmd(
                "--start-daemon backup --mcast-interface eth1 --syncid 5 --sync-maxlen 1472 --mcast-group 224.0.0.81 --mcast-port 8848 --mcast-ttl 1"
            ),
            Command::StartDaemon(DaemonOptions {
                state: DaemonState::Backup,
                mcast_interface: "eth1".into(),
                syncid: 5,
                sync_maxlen: Some(1472),
                mcast_group: Some(ip("224.0.0.81")),
                mcast_port: Some(8848),
                mcast_ttl: Some(1)
            })
        );
        assert_eq!(
            cmd("--stop-daemon backup --syncid 5"),
            Command::StopDaemon {
                state: DaemonState::Backup,
                syncid: 5
            }
        );
        assert_eq!(cmd("-h"), Command::Help);
        assert_eq!(cmd("-h --bogus"), Command::Help);
        assert_eq!(cmd("-v"), Command::Version);
        assert_eq!(
            cmd("--local-pool 1024-2047 10.0.0.250"),
            Command::LocalPool(LocalPool {
                addrs: vec![ip("10.0.0.250")],
                port_range: (1024, 2047)
            })
        );
    }

    /// Broken command lines: ipvsadm 1.31's exact stderr text and exit status. Each row
    /// names the ipvsadm.c function that produces it.
    #[test]
    fn refused_command_lines() {
        let try_help = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";
        let table: &[(&str, &str, i32)] = &[
            // process_options() after generic_opt_check()
            (
                "-A -t 10.0.0.1",
                "Zero port specified for non-persistent service",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -o",
                "One-Packet Scheduling is only for UDP virtual services",
                2,
            ),
            // DPVS ipvsadm.c `case 'j'`: fail(2, "synproxy switch must be enable or
            // disable\n") (its own newline); rvs: the proxy is for TCP only.
            (
                "-A -t 10.0.0.1:80 -j on",
                "synproxy switch must be enable or disable\n",
                2,
            ),
            (
                "-A -u 10.0.0.1:53 -j enable",
                "SYN proxy is only for TCP virtual services",
                2,
            ),
            (
                "-A --sctp-service 10.0.0.1:5000 --synproxy=enable",
                "SYN proxy is only for TCP virtual services",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -m -j enable",
                "Illegal 'synproxy' option with the 'add-server' command",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -j enable --synproxy disable",
                "multiple 'synproxy' options specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 2001:db8::2 -m",
                "Different address family is allowed only for tunneling servers",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gue",
                "Tunnel options conflict with forward method",
                2,
            ),
            ("-L -c --stats", "options conflicts in the list command", 2),
            (
                "-L --daemon --persistent-conn",
                "options conflicts in the list command",
                2,
            ),
            // tunnel_opt_check()
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue",
                "You need to supply the 'tun-port' option for the 'gue' tunnel type",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-port 5",
                "Illegal 'tun-port' option with the 'ipip' tunnel type",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum",
                "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum",
                "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
                2,
            ),
            // generic_opt_check() over commands_v_options
            (
                "-A -s rr",
                "You need to supply the 'service-address' option for the 'add-service' command",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -w 2",
                "You need to supply the 'real-server' option for the 'add-server' command",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -s rr",
                "Illegal 'scheduler' option with the 'add-server' command",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -r 10.0.0.2",
                "Illegal 'real-server' option with the 'add-service' command",
                2,
            ),
            (
                "-D -t 10.0.0.1:80 -s rr",
                "Illegal 'scheduler' option with the 'delete-service' command",
                2,
            ),
            (
                "-C -n",
                "Illegal 'numeric' option with the 'flush' command",
                2,
            ),
            (
                "-S -c",
                "Illegal 'connection' option with the 'save' command",
                2,
            ),
            (
                "-L -c --timeout",
                "The option 'timeout' conflicts with the 'connection' option in the 'list' command",
                2,
            ),
            (
                "-L -t 10.0.0.1:80 --daemon",
                "The option 'daemon' conflicts with the 'service-address' option in the 'list' command",
                2,
            ),
            (
                "--stop-daemon master --mcast-interface eth0",
                "Illegal 'mcast-interface' option with the 'stop-daemon' command",
                2,
            ),
            (
                "-d -t 10.0.0.1:80 -r 10.0.0.2 -w 1",
                "Illegal 'weight' option with the 'delete-server' command",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 --tun-info",
                "Illegal 'tun-info' option with the 'add-service' command",
                2,
            ),
            // set_option()
            (
                "-A -t 10.0.0.1:80 -u 10.0.0.1:53",
                "multiple 'service-address' options specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -g -m",
                "multiple 'forwarding-method' options specified",
                2,
            ),
            // parse_options() values
            (
                "-A -t 10.0.0.1:99999",
                "illegal virtual server address[:port] specified",
                2,
            ),
            (
                "-A -t foo.example:80",
                "illegal virtual server address[:port] specified",
                2,
            ),
            (
                "-A -t 80",
                "illegal virtual server address[:port] specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2:x",
                "illegal real server address[:port] specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536",
                "illegal weight specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1",
                "illegal weight specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -x abc",
                "illegal u_threshold specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -y 2147483648",
                "illegal l_threshold specified",
                2,
            ),
            ("-A -f 0", "invalid fwmark value `0' specified", 2),
            (
                "-A -f 4294967296",
                "invalid fwmark value `4294967296' specified",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -p 0",
                "invalid timeout value `0' specified",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -p 2678401",
                "invalid timeout value `2678401' specified",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -p foo",
                "invalid timeout value `foo' specified",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -p -M 1.2.3",
                "illegal virtual server persistent mask specified",
                2,
            ),
            (
                "-A -t [2001:db8::1]:80 -p -M 129",
                "illegal ipv6 netmask specified",
                2,
            ),
            ("-A -t 10.0.0.1:80 -6", "-6 used before -f\n", 2),
            (
                "-A -t 10.0.0.1:80 -b foo",
                "invalid scheduler flag `foo'",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -b sh-port",
                "incompatible scheduler flag `sh-port'",
                2,
            ),
            (
                "-A -t 10.0.0.1:80 -s sh -b mh-port",
                "incompatible scheduler flag `mh-port'",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan",
                "illegal tunnel type specified",
                2,
            ),
            (
                "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0",
                "illegal tunnel port specified",
                2,
            ),
            (
                "--start-daemon primary",
                "illegal start-daemon parameter specified",
                2,
            ),
            ("--stop-daemon primary", "illegal start_daemon specified", 2),
            (
                "--start-daemon master --syncid 256",
                "illegal syncid specified",
                2,
            ),
            (
                "--start-daemon master --mcast-group 10.0.0.1",
                "invalid IPv4 mcast-group `10.0.0.1'",
                2,
            ),
            (
                "--start-daemon master --mcast-group 2001:db8::1",
                "invalid IPv6 mcast-group `2001:db8::1'",
                2,
            ),
            (
                "--start-daemon master --mcast-port 0",
                "illegal mcast-port specified",
                2,
            ),
            (
                "--start-daemon master --mcast-ttl 256",
                "illegal mcast-ttl specified",
                2,
            ),
            (
                "--start-daemon master --sync-maxlen 65508",
                "illegal sync-maxlen specified",
                2,
            ),
            ("--set 1 2", "--set option requires 3 timeout values", 2),
            ("--set 1 2 x", "invalid timeout value `x' specified", 2),
            ("--set 1 2 3 4", "unexpected argument 4", 2),
            ("-A foo -t 10.0.0.1:80", "unexpected argument foo", 2),
            ("-A -t 10.0.0.1:80 -a", "invalid option `-a'", 2),
            ("-L -h", "invalid option `-h'", 2),
            // popt errors: parse_options() prints "%s: %s" and returns -1
            ("-A -t", "-t: missing argument", 255),
            ("-A --bogus", "--bogus: unknown option", 255),
            ("-Lq", "-Lq: unknown option", 255),
            (
                "-A --ops=1 -u 10.0.0.1:53",
                "--ops=1: option does not take an argument",
                255,
            ),
            // tryhelp_exit(argv[0], -1): the first option must be a command
            ("-t 10.0.0.1:80 -A", try_help, 255),
            ("-n -L", try_help, 255),
            ("--bogus", try_help, 255),
            ("list", try_help, 255),
            // the kernel's refusal, through ipvs_strerror()
            (
                "-A -t 10.0.0.1:80 -s fastest",
                "Scheduler or persistence engine not found",
                255,
            ),
            (
                "-A -t 10.0.0.1:80 -p --pe http",
                "Scheduler or persistence engine not found",
                255,
            ),
        ];
        let mut failures = Vec::new();
        for &(line, message, exit_code) in table {
            match parse_command(&args(line)) {
                Err(UsageError {
                    message: m,
                    exit_code: c,
                    ..
                }) if m == message && c == exit_code => {}
                other => failures.push(format!(
                    "{line}: {other:?}, expected {message:?} {exit_code}"
                )),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn rvs_refusals_beyond_ipvsadm() {
        // inet_aton("24") is 0.0.0.24: not a contiguous mask.
        let e = parse_command(&args("-A -t 10.0.0.1:80 -p -M 24")).unwrap_err();
        assert_eq!(
            e.message,
            "illegal virtual server persistent mask specified"
        );
        assert_eq!(e.arg_index, Some(5));
    }
}

mod rules {
    use super::*;

    #[test]
    fn restore_applies_in_order_with_edits_and_deletes() {
        let text = "\
# a comment line
ipvsadm -A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.0.3 -m\t-w 2   # trailing comment
-a -t 10.0.0.1:80 -r 10.0.0.2 -m

-e -t 10.0.0.1:80 -r 10.0.0.3 -m -w 9
-E -t 10.0.0.1:80 -s wrr
-A -u 10.0.0.1:53
-D -u 10.0.0.1:53
-A -t 10.0.0.9:80
-d -t 10.0.0.9:80 -r 10.0.0.9
--set 0 60 0\r
";
        let err = parse_rules(text, "r").unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!((err[0].line, err[0].column), (11, 22));
        assert_eq!(err[0].message, "No such destination");
        let text = text.replace("-d -t 10.0.0.9:80 -r 10.0.0.9\n", "");
        let cfg = parse_rules(&text, "r").unwrap();
        let mut s = svc(tcp("10.0.0.1", 80), SchedulerKind::Wrr);
        s.real_servers = vec![
            rs("10.0.0.3", 80, 9, ForwardMethod::Masq),
            rs("10.0.0.2", 80, 1, ForwardMethod::Masq),
        ];
        assert_eq!(
            cfg.services,
            vec![s, svc(tcp("10.0.0.9", 80), SchedulerKind::Wlc)]
        );
        assert_eq!(
            cfg.timeouts,
            Timeouts {
                tcp: 900,
                tcp_fin: 60,
                udp: 300
            }
        );
    }

    #[test]
    fn diagnostics_locate_the_offending_word() {
        let text = "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-a -t 10.0.0.2:80 -r 10.0.0.5\n  -a -t 10.0.0.1:80 -r 10.0.0.5 -w 70000\n-A -t 10.0.0.3:0 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.6 --fullnat\n";
        let d = parse_rules(text, "x.rules").unwrap_err();
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, 7, "Service already exists"),
                (3, 7, "Service not defined"),
                (4, 36, "illegal weight specified"),
                (5, 7, "Zero port specified for non-persistent service"),
            ]
        );
        // Only once the commands apply cleanly is the whole configuration validated.
        let text = "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.6 --fullnat\n";
        let d = parse_rules(text, "x.rules").unwrap_err();
        assert_eq!((d[0].line, d[0].column), (2, 22));
        assert!(
            d[0].message.contains("local address pool"),
            "{}",
            d[0].message
        );
        assert_eq!(
            d[0].to_string(),
            "x.rules:2:22: error: FullNAT real server 10.0.0.6 needs a local address pool of its family\n  |\n2 | -a -t 10.0.0.1:80 -r 10.0.0.6 --fullnat\n  |                      ^^^^^^^^\n"
        );
    }

    #[test]
    fn save_of_parse_is_stable() {
        let text = data("every_kind.rules");
        let once = save(&parse_rules(&text, "a").unwrap());
        let twice = save(&parse_rules(&once, "b").unwrap());
        assert_eq!(once, twice);
    }
}

/// Host and service names, with a fake resolver pinning what each lookup answers.
mod names {
    use super::*;

    /// The hosts and services of the tests: `web02` has two names for one address
    /// (`gethostbyaddr()` answers the first), `web6` only IPv6, `ns1` a UDP-only service.
    fn names() -> FixedNames {
        FixedNames::new(
            &[
                ("web01", "192.168.1.100"),
                ("web02", "192.168.1.11"),
                ("web02-alias", "192.168.1.11"),
                ("ns1", "192.168.1.200"),
                ("web6", "2001:db8::100"),
                ("mask24", "255.255.255.0"),
            ],
            &[
                ("http", 80, "tcp"),
                ("https", 443, "tcp"),
                ("domain", 53, "udp"),
                ("domain", 53, "tcp"),
            ],
        )
    }

    fn resolve(line: &str) -> (Result<Command, UsageError>, String) {
        let (r, a) = numeric_args(&args(line), &names());
        (r, a[1..].join(" "))
    }

    #[test]
    fn command_line_names_resolve_as_ipvsadm_resolves_them() {
        let (r, numeric) = resolve("-A -t web01:http -s rr");
        assert_eq!(numeric, "-A -t 192.168.1.100:80 -s rr");
        let Ok(Command::AddService { service, .. }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(service.key, tcp("192.168.1.100", 80));
        // The numeric line means the same to the numeric parser.
        assert_eq!(
            parse_command(&args(&numeric)),
            parse_command_with(&args("-A -t web01:http -s rr"), &names())
        );
        // Attached forms: the argument is the end of its word.
        let (_, n) = resolve("-A --tcp-service=web01:https -p -M mask24");
        assert_eq!(n, "-A --tcp-service=192.168.1.100:443 -p -M 255.255.255.0");
        let (_, n) = resolve("-a -tweb01:http -r web02 -m");
        assert_eq!(n, "-a -t192.168.1.100:80 -r 192.168.1.11 -m");
        // Numbers and mixed words: only the name part changes.
        let (_, n) = resolve("-a -t 10.0.0.1:http -r web02:8080 -g");
        assert_eq!(n, "-a -t 10.0.0.1:80 -r 192.168.1.11:8080 -g");
        let (_, n) = resolve("-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g");
        assert_eq!(n, "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g");
        // The real server takes the service's port when it names none (-g).
        let (r, _) = resolve("-a -t web01:http -r web02 -g -w 2");
        assert_eq!(
            r,
            Ok(Command::AddServer {
                service: tcp("192.168.1.100", 80),
                server: rs("192.168.1.11", 80, 2, ForwardMethod::DirectRoute),
            })
        );
        // Services by the service's protocol.
        let (r, n) = resolve("-A -u ns1:domain");
        assert_eq!(n, "-A -u 192.168.1.200:53");
        assert!(r.is_ok(), "{r:?}");
        // List and delete take names too.
        let (r, n) = resolve("-L -t web01:http");
        assert_eq!(n, "-L -t 192.168.1.100:80");
        assert!(
            matches!(r, Ok(Command::List(ListOptions { what: ListWhat::Service(k), .. })) if k == tcp("192.168.1.100", 80))
        );
        let (_, n) = resolve("-d -t web01:http -r web02:http");
        assert_eq!(n, "-d -t 192.168.1.100:80 -r 192.168.1.11:80");
    }

    #[test]
    fn names_that_do_not_resolve_are_ipvsadm_refusals() {
        let refused = |line: &str, msg: &str| {
            let (r, _) = resolve(line);
            let e = r.expect_err(line);
            assert_eq!((e.message.as_str(), e.exit_code), (msg, 2), "{line}");
        };
        let vs = "illegal virtual server address[:port] specified";
        let rs_msg = "illegal real server address[:port] specified";
        refused("-A -t nosuch:http", vs);
        refused("-A -t web01:nosuch", vs);
        // https is a TCP service here, not UDP.
        refused("-A -u web01:https", vs);
        // gethostbyname() gives IPv4 only: a host with only an IPv6 address is refused.
        refused("-A -t web6:http", vs);
        refused("-a -t web01:http -r nosuch -m", rs_msg);
        refused("-a -t web01:http -r web02:nosuch -m", rs_msg);
        // -r before -t: no protocol yet, so no service names (ipvsadm copies ce->svc).
        refused("-a -r web02:http -t web01:http -m", rs_msg);
        // A name without a port is port 0.
        refused(
            "-A -t web01 -s rr",
            "Zero port specified for non-persistent service",
        );
        refused(
            "-A -t web01:http -M nosuch -p",
            "illegal virtual server persistent mask specified",
        );
        // Without a resolver, a name is refused the same way.
        let e = parse_command(&args("-A -t web01:http")).unwrap_err();
        assert_eq!((e.message.as_str(), e.exit_code), (vs, 2));
        // Names resolved before a refusal are replaced, so a numeric reader refuses at
        // the same option.
        let (r, n) = resolve("-a -t web01:http -r web02:http -m -w 70000");
        assert_eq!(r.unwrap_err().message, "illegal weight specified");
        assert_eq!(n, "-a -t 192.168.1.100:80 -r 192.168.1.11:80 -m -w 70000");
        assert_eq!(
            parse_command(&args(&n)).unwrap_err().message,
            "illegal weight specified"
        );
    }

    /// A file as `ipvsadm -S` (without `-n`) writes it, names where the resolver has
    /// them: read with the resolver, it is the numeric table; printed back with
    /// names, it is the same text.
    #[test]
    fn a_rules_file_saved_without_n_reads_and_saves_back() {
        // Not among data/ipvsadm's samples: `rvs check-config` asks the system for
        // these names, and they are in no real /etc/hosts.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/names/saved_with_names.rules"),
        )
        .unwrap();
        let cfg = parse_rules_with(&text, "saved", &names()).expect("resolves");
        let numeric = "\
-A -t 192.168.1.100:80 -s wlc
-a -t 192.168.1.100:80 -r 192.168.1.10:80 -m -w 1
-a -t 192.168.1.100:80 -r 192.168.1.11:80 -m -w 3
-A -t 192.168.1.100:443 -s wrr -p 300 -M 255.255.255.0
-a -t 192.168.1.100:443 -r 192.168.1.11:443 -m -w 1
-A -u 192.168.1.200:53 -s rr
-a -u 192.168.1.200:53 -r 192.168.1.53:53 -g -w 1
-A -f 100 -s rr
-a -f 100 -r 192.168.1.11:0 -g -w 1
";
        assert_eq!(save(&cfg), numeric);
        assert_eq!(cfg, parse_rules(numeric, "numeric").unwrap());
        // `-S` without `-n`: web02-alias is not printed (the first name wins), the
        // address without a name stays a number, port 0 has no name.
        assert_eq!(name_save(&save(&cfg), &names()), text);
        // The file rewritten to numbers reads the same without a resolver.
        assert_eq!(numeric_rules(&text, &names()), numeric);
        // Without a resolver the first name is refused where ipvsadm -R refuses it.
        let d = parse_rules(&text, "saved").unwrap_err();
        assert_eq!(
            (d[0].line, d[0].column, d[0].message.as_str()),
            (1, 7, "illegal virtual server address[:port] specified")
        );
    }

    #[test]
    fn numeric_rules_keeps_everything_but_the_names() {
        let text = "# web farm\nipvsadm -A -t web01:http -s rr   # comment web01\n\n-a -t web01:http\t-r web02 -m\r\n-a -t nosuch:http -r web02 -m\n";
        assert_eq!(
            numeric_rules(text, &names()),
            "# web farm\nipvsadm -A -t 192.168.1.100:80 -s rr   # comment web01\n\n-a -t 192.168.1.100:80\t-r 192.168.1.11 -m\r\n-a -t nosuch:http -r web02 -m\n"
        );
    }

    #[test]
    fn save_prints_ipv6_names_in_brackets() {
        let cfg = parse_rules(
            "-A -t [2001:db8::100]:443 -s rr\n-a -t [2001:db8::100]:443 -r [2001:db8::7]:443 -m -w 1\n",
            "v6",
        )
        .unwrap();
        assert_eq!(
            name_save(&save(&cfg), &names()),
            "-A -t [web6]:https -s rr\n-a -t [web6]:https -r [2001:db8::7]:https -m -w 1\n"
        );
    }
}

mod props {
    use super::*;

    fn v4() -> impl Strategy<Value = IpAddr> {
        any::<[u8; 4]>().prop_map(IpAddr::from)
    }

    fn v6() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 16]>().prop_map(IpAddr::from),
            (any::<u16>(), any::<u16>())
                .prop_map(|(a, b)| { IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, a, b]) }),
            any::<[u8; 4]>()
                .prop_map(|o| IpAddr::from(std::net::Ipv4Addr::from(o).to_ipv6_mapped())),
        ]
    }

    fn addr(family: Family) -> BoxedStrategy<IpAddr> {
        match family {
            Family::V4 => v4().boxed(),
            Family::V6 => v6().boxed(),
        }
    }

    fn key() -> impl Strategy<Value = ServiceKey> {
        prop_oneof![
            (any::<bool>(), prop_oneof![v4(), v6()], any::<u16>()).prop_map(|(t, addr, port)| {
                ServiceKey::Addr {
                    protocol: if t { Protocol::Tcp } else { Protocol::Udp },
                    addr,
                    port,
                }
            }),
            (1u32.., any::<bool>()).prop_map(|(mark, six)| ServiceKey::Fwmark {
                mark,
                family: if six { Family::V6 } else { Family::V4 },
            }),
        ]
    }

    fn method() -> impl Strategy<Value = ForwardMethod> {
        prop_oneof![
            Just(ForwardMethod::Masq),
            Just(ForwardMethod::DirectRoute),
            Just(ForwardMethod::FullNat),
            Just(tunnel(TunnelKind::Ipip, TunnelCsum::NoCsum)),
            (
                1u16..,
                prop_oneof![
                    Just(TunnelCsum::NoCsum),
                    Just(TunnelCsum::Csum),
                    Just(TunnelCsum::RemCsum)
                ]
            )
                .prop_map(|(port, csum)| tunnel(TunnelKind::Gue { port }, csum)),
            prop_oneof![Just(TunnelCsum::NoCsum), Just(TunnelCsum::Csum)]
                .prop_map(|csum| tunnel(TunnelKind::Gre, csum)),
        ]
    }

    /// A service valid for `Config::validate` and expressible in ipvsadm's grammar:
    /// `-g`/`-i` real servers of address services listen on the virtual port (ipvsadm
    /// forces it); IPv6 persistence prefixes are 1..=128 (ipvsadm's range).
    fn service() -> impl Strategy<Value = VirtualServiceConfig> {
        (
            key(),
            0usize..14,
            0u8..8,
            proptest::option::of((1u32..=2_678_400, 0u8..=128)),
            any::<bool>(),
            proptest::collection::vec(
                (
                    any::<bool>(),
                    any::<u16>(),
                    0u32..=65535,
                    0u32..1000,
                    0u32..1000,
                    method(),
                ),
                0..5,
            ),
        )
            .prop_flat_map(|(key, sched, flags, pers, ops, servers)| {
                let fam = key.family();
                let n = servers.len();
                (
                    Just((key, sched, flags, pers, ops, servers)),
                    proptest::collection::vec(addr(fam), n),
                )
            })
            .prop_map(|((key, sched, flags, pers, ops, servers), addrs)| {
                let fam = key.family();
                let mut s = VirtualServiceConfig::new(key);
                s.scheduler = SchedulerKind::ALL[sched];
                s.flags = SchedFlags(flags);
                s.persistence = pers.map(|(timeout, p)| Persistence {
                    timeout,
                    prefix: match fam {
                        Family::V4 => p % 33,
                        Family::V6 => p.max(1),
                    },
                });
                let (vport, is_addr, udp) = match key {
                    ServiceKey::Addr { port, protocol, .. } => {
                        (port, true, protocol == Protocol::Udp)
                    }
                    ServiceKey::Fwmark { .. } => (0, false, true),
                };
                if is_addr && vport == 0 && s.persistence.is_none() {
                    s.persistence = Some(Persistence {
                        timeout: 360,
                        prefix: fam.max_prefix(),
                    });
                }
                s.one_packet = ops && udp;
                for ((other_fam, port, weight, u, l, method), mut a) in
                    servers.into_iter().zip(addrs)
                {
                    let tunnel = matches!(method, ForwardMethod::Tunnel { .. });
                    if tunnel && other_fam {
                        // Tunnels may cross families.
                        a = match a {
                            IpAddr::V4(v) => IpAddr::V6(v.to_ipv6_mapped()),
                            IpAddr::V6(_) => IpAddr::from([10, 1, (port >> 8) as u8, port as u8]),
                        };
                    }
                    let port = if is_addr
                        && matches!(
                            method,
                            ForwardMethod::DirectRoute | ForwardMethod::Tunnel { .. }
                        ) {
                        vport
                    } else {
                        port
                    };
                    let (u, l) = if l > u && u != 0 { (l, u) } else { (u, l) };
                    if s.real_servers.iter().any(|r| r.addr == a && r.port == port) {
                        continue;
                    }
                    s.real_servers.push(RealServerConfig {
                        addr: a,
                        port,
                        weight,
                        u_threshold: u,
                        l_threshold: l,
                        method,
                    });
                }
                s
            })
    }

    fn config() -> impl Strategy<Value = Config> {
        (
            proptest::collection::vec(service(), 0..6),
            (1u32..=2_678_400, 1u32..=2_678_400, 1u32..=2_678_400),
            any::<bool>(),
        )
            .prop_map(|(services, (tcp, tcp_fin, udp), default_t)| {
                let mut seen = std::collections::HashSet::new();
                let services: Vec<_> = services
                    .into_iter()
                    .filter(|s| seen.insert(s.key))
                    .collect();
                Config {
                    services,
                    timeouts: if default_t {
                        Timeouts::default()
                    } else {
                        Timeouts { tcp, tcp_fin, udp }
                    },
                    local_pool: LocalPool {
                        addrs: vec![ip("10.255.0.1"), ip("2001:db8:ffff::1")],
                        port_range: (1024, 65535),
                    },
                    ..Config::default()
                }
            })
            .prop_filter("valid", |c| c.validate().is_ok())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn round_trip(c in config()) {
            let text = save_in_order(&c);
            let back = parse_rules(&text, "p").map_err(|d| TestCaseError::fail(format!("{}\n{text}", render_all(&d))))?;
            prop_assert_eq!(&back, &c);
            prop_assert_eq!(save_in_order(&back), text);
            let sorted = save(&c);
            let back = parse_rules(&sorted, "p").map_err(|d| TestCaseError::fail(render_all(&d)))?;
            prop_assert_eq!(&back, &ipvsadm_order(&c));
            // libipvs' comparators wrap (10.0.0.1 > 192.168.0.1 < 100.0.0.1 > 10.0.0.1),
            // so sorting again is stable only when they order this set consistently;
            // ipvsadm's own output then depends on the kernel's hash-table order.
            if ipvsadm_order(&back) == back {
                prop_assert_eq!(save(&back), sorted);
            }
        }

        #[test]
        fn arbitrary_argv_never_panics(words in proptest::collection::vec(
            prop_oneof![
                "-[A-Za-z0-9]{0,4}",
                "--[a-z-]{0,14}(=[a-z0-9]{0,4})?",
                "[0-9.:\\[\\]a-f]{0,20}",
                Just("-p".to_string()),
                Just("-t".to_string()),
                Just("10.0.0.1:80".to_string()),
                Just("--tun-type".to_string()),
                Just("gue".to_string()),
                ".{0,8}",
            ], 0..10)) {
            let mut a = vec!["ipvsadm".to_string()];
            a.extend(words);
            if let Err(e) = parse_command(&a) {
                prop_assert!(matches!(e.exit_code, 2 | 255));
                prop_assert!(e.arg_index.is_none_or(|i| i < a.len()));
            }
        }

        #[test]
        fn arbitrary_rules_text_never_panics(text in "([-A-Za-z0-9 .:\\[\\]#\t\r\n]|ipvsadm|-t 10.0.0.1:80|-r ){0,120}") {
            let _ = parse_rules(&text, "p");
        }
    }
}

/// DPVS's per-service SYN-proxy switch, `-j enable|disable` / `--synproxy` (DPVS
/// tools/ipvsadm/ipvsadm.c `case 'j'`, `IP_VS_SVC_F_SYNPROXY`): parsed for `-A` and `-E`,
/// kept in `Config::synproxy`, written by `-S` as `-j enable`, refused where the proxy
/// cannot work.
mod synproxy {
    use super::*;

    fn add_sp(line: &str) -> (ServiceKey, bool) {
        match cmd(line) {
            Command::AddService {
                service, synproxy, ..
            } => (service.key, synproxy),
            c => panic!("{line}: {c:?}"),
        }
    }

    #[test]
    fn the_switch_in_its_spellings() {
        assert_eq!(
            add_sp("-A -t 10.0.0.1:80 -j enable"),
            (tcp("10.0.0.1", 80), true)
        );
        assert!(add_sp("-A -t 10.0.0.1:80 --synproxy=enable").1);
        assert!(!add_sp("-A -t 10.0.0.1:80 --synproxy disable").1);
        assert!(!add_sp("-A -t 10.0.0.1:80").1);
        // DPVS compares the first strlen("enable") bytes only.
        assert!(add_sp("-A -t 10.0.0.1:80 -jenabled").1);
        // A firewall-mark service: its TCP connections are proxied.
        assert!(add_sp("-A -f 7 -j enable").1);
        assert!(matches!(
            cmd("-E -t 10.0.0.1:80 -s rr -j enable"),
            Command::EditService { synproxy: true, .. }
        ));
    }

    #[test]
    fn rules_keep_it_and_save_writes_it() {
        let text = "-A -t 10.1.0.100:80 -s rr -j enable\n\
                    -a -t 10.1.0.100:80 -r 10.2.0.11:80 -m -w 1\n\
                    -A -t 10.1.0.100:443 -s wlc\n\
                    -a -t 10.1.0.100:443 -r 10.2.0.11:443 -g -w 1\n\
                    -A -f 7 -s rr -p 60 -j enable\n\
                    -a -f 7 -r 10.2.0.12:0 -m -w 1\n";
        let c = parse_rules(text, "sp.rules").unwrap_or_else(|d| panic!("{}", render_all(&d)));
        assert!(!c.synproxy.all);
        assert_eq!(
            c.synproxy.services,
            vec![
                tcp("10.1.0.100", 80),
                ServiceKey::Fwmark {
                    mark: 7,
                    family: Family::V4
                }
            ]
        );
        let saved = save(&c);
        insta::assert_snapshot!(saved);
        assert_eq!(parse_rules(&saved, "again").unwrap(), ipvsadm_order(&c));
    }

    #[test]
    fn edit_delete_and_clear_take_it_off() {
        let base = "-A -t 10.1.0.100:80 -j enable\n-a -t 10.1.0.100:80 -r 10.2.0.11 -m\n";
        // -E replaces the flags: without -j the proxy goes off (DPVS's edit sends the
        // whole service).
        let c = parse_rules(&format!("{base}-E -t 10.1.0.100:80 -s rr\n"), "e").unwrap();
        assert!(c.synproxy.services.is_empty());
        let c = parse_rules(&format!("{base}-E -t 10.1.0.100:80 -s rr -j enable\n"), "e").unwrap();
        assert_eq!(c.synproxy.services, vec![tcp("10.1.0.100", 80)]);
        let c = parse_rules(&format!("{base}-D -t 10.1.0.100:80\n"), "d").unwrap();
        assert!(c.synproxy.services.is_empty());
        let c = parse_rules(&format!("{base}-C\n-A -t 10.1.0.100:80\n"), "c").unwrap();
        assert!(c.synproxy.services.is_empty());
    }

    /// Direct routing and tunnelling send the real server's replies past the director,
    /// so nothing would translate their sequence numbers: refused when a proxied service
    /// gets such a real server, and when a service with one is proxied.
    #[test]
    fn direct_routing_and_tunnels_are_refused_in_a_proxied_service() {
        let text = "-A -t 10.1.0.100:80 -j enable\n\
                    -a -t 10.1.0.100:80 -r 10.2.0.11 -g\n\
                    -a -t 10.1.0.100:80 -r 10.2.0.12 -i\n\
                    -a -t 10.1.0.100:80 -r 10.2.0.13 -m\n\
                    -e -t 10.1.0.100:80 -r 10.2.0.13 -g\n\
                    -A -t 10.1.0.100:443\n\
                    -a -t 10.1.0.100:443 -r 10.2.0.11 -g\n\
                    -E -t 10.1.0.100:443 -j enable\n";
        let d = parse_rules(text, "sp.rules").unwrap_err();
        insta::assert_snapshot!(render_all(&d));
    }
}
