//! `--fast-path xdp` with connection sync (docs/xdp.md, "Connection sync and failover"):
//! two rvs directors with `lvs_sync_daemon` and the fast path. On the master the
//! long-lived streams are offloaded although sync is on, and the sync records still go out
//! while their segments no longer reach the userspace path (the folded client packets count
//! towards `sync_threshold`); the backup's table holds them. After the master is killed,
//! the new master installs the synced established streams in its own map: its
//! `rvs_fast_path_flows` shows them, its program forwards their segments, and every stream
//! goes on.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::Director;
use crate::failover::{Seen, poll_until, wait_log_count, wait_seen};
use crate::fastpath::{metric, metrics, prepare_veths_of};
use crate::harness::lab;
use crate::lab::{self, Httpd, Lab, LabOptions, Method};

/// Long-lived echo streams (one round: 512 bytes written and read back, every 10 ms).
const STREAMS: usize = 4;
/// The echo port (see [`crate::reload::echo_server`]).
const ECHO_PORT: u16 = 7000;

/// A keepalived.conf for one of the two directors: VRRP version 3 with 100 ms adverts, the
/// sync daemon on eth0 following VI_1, web (80) and echo (7000) services by NAT over the
/// three real servers.
fn conf(priority: u8) -> String {
    let mut s = format!(
        "global_defs {{\n  router_id fps-{priority}\n  lvs_sync_daemon eth0 VI_1\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  version 3\n  advert_int 0.1\n  virtual_ipaddress {{\n    \
         {}/24 dev eth0\n    {}/24 dev eth1\n  }}\n}}\n",
        lab::VIP,
        lab::NAT_ROUTER
    );
    for port in [80, ECHO_PORT] {
        s += &format!(
            "virtual_server {} {port} {{\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n",
            lab::VIP
        );
        for i in 1..=3 {
            s += &format!(
                "  real_server {} {port} {{\n    weight 1\n  }}\n",
                lab::rs_addr(i)
            );
        }
        s += "}\n";
    }
    s
}

/// Established echo connections in a director's table.
fn echo_entries(d: &Director) -> usize {
    d.listing(&["-c"])
        .lines()
        .filter(|l| l.contains("ESTABLISHED") && l.contains(&format!(":{ECHO_PORT} ")))
        .count()
}

/// How one stream fared: rounds before and after the takeover, the first error.
#[derive(Debug, Default)]
struct Fate {
    rounds: u64,
    after: u64,
    error: Option<String>,
}

fn pair(lab: &Lab) -> (Director<'_>, Director<'_>) {
    let fp = ["--fast-path", "xdp"];
    let a = Director::start_with(lab, "director", "keepalived-fps-a", &conf(150), &fp);
    let b = Director::start_with(lab, "director2", "keepalived-fps-b", &conf(100), &fp);
    wait_seen(lab, Seen::Rvs, Duration::from_secs(8), "the master serves");
    wait_log_count(lab, b.pid(), "state=BACKUP", 1, Duration::from_secs(5));
    (a, b)
}

#[test]
fn synced_streams_are_offloaded_and_installed_on_the_new_master() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        backup_director: true,
        httpd: Httpd::Builtin,
        ..LabOptions::default()
    });
    prepare_veths_of(&lab, &["director", "director2"]);
    for i in 1..=3 {
        crate::reload::echo_server(&lab, &format!("rs{i}"));
    }
    let (master, backup) = pair(&lab);
    for d in [&master, &backup] {
        let log = lab.log_text(d.pid());
        assert!(
            log.contains("XDP fast path attached"),
            "the director attached the program:\n{log}"
        );
    }
    let vip_echo = SocketAddr::new(lab::VIP.into(), ECHO_PORT);
    let vip_web = SocketAddr::new(lab::VIP.into(), 80);
    let taken = std::sync::atomic::AtomicBool::new(false);
    let stop = std::sync::atomic::AtomicBool::new(false);
    use std::sync::atomic::Ordering::{Relaxed, SeqCst};

    lab.run("client", || {
        let conns: Vec<std::net::TcpStream> = (0..STREAMS)
            .map(|_| {
                let s = std::net::TcpStream::connect_timeout(&vip_echo, Duration::from_secs(5))
                    .expect("a long-lived connection through the VIP");
                s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
                s.set_nodelay(true).unwrap();
                s
            })
            .collect();
        thread::scope(|sc| {
            let streams: Vec<_> = conns
                .into_iter()
                .enumerate()
                .map(|(c, mut s)| {
                    let (taken, stop) = (&taken, &stop);
                    sc.spawn(move || {
                        use std::io::{Read, Write};
                        let mut fate = Fate::default();
                        let mut k = 0usize;
                        // Bounded: 20 s of rounds at most, whatever happens.
                        let end = Instant::now() + Duration::from_secs(20);
                        while !stop.load(Relaxed) && Instant::now() < end {
                            let after = taken.load(SeqCst);
                            let chunk: Vec<u8> = (0..512).map(|b| (b + c + k) as u8).collect();
                            let mut back = vec![0u8; chunk.len()];
                            let r = s.write_all(&chunk).and_then(|()| s.read_exact(&mut back));
                            if let Err(e) = r {
                                fate.error = Some(format!("round {k}: {e}"));
                                break;
                            }
                            if back != chunk {
                                fate.error = Some(format!("round {k}: corrupted echo"));
                                break;
                            }
                            fate.rounds += 1;
                            fate.after += u64::from(after);
                            k += 1;
                            thread::sleep(Duration::from_millis(10));
                        }
                        fate
                    })
                })
                .collect();

            // The master offloads the streams although sync is on.
            poll_until(Duration::from_secs(8), || {
                let m = metrics(&master);
                let flows = metric(&m, "rvs_fast_path_flows");
                if flows >= STREAMS as u64 {
                    Ok(())
                } else {
                    Err(format!(
                        "master: {flows} flows offloaded, want {STREAMS}\n{m}"
                    ))
                }
            });
            // While they are offloaded, sync records still go out: the folded client
            // packets pass 3 + k × 50 several times a second per stream.
            let m0 = metrics(&master);
            let sent0 = metric(&m0, "rvs_sync_records_total{event=\"sent\"}");
            let fast0 = metric(&m0, "rvs_fast_path_frames_total");
            let slow0 = metric(&m0, "rvs_frames_total{kind=\"tx\"}");
            thread::sleep(Duration::from_millis(1_500));
            let m1 = metrics(&master);
            let sent = metric(&m1, "rvs_sync_records_total{event=\"sent\"}") - sent0;
            let fast = metric(&m1, "rvs_fast_path_frames_total") - fast0;
            let slow = metric(&m1, "rvs_frames_total{kind=\"tx\"}") - slow0;
            eprintln!(
                "master over 1.5 s with the streams offloaded: {sent} sync records sent, \
                 {fast} frames by XDP, {slow} by the userspace path"
            );
            assert!(
                fast > (STREAMS * 50) as u64,
                "the streams' frames took the fast path: {fast} fast, {slow} slow\n{m1}"
            );
            assert!(
                sent >= STREAMS as u64,
                "the offloaded streams are still synced: {sent} records in 1.5 s\n{m1}"
            );
            // The backup knows every stream.
            poll_until(Duration::from_secs(3), || {
                let n = echo_entries(&backup);
                if n == STREAMS {
                    Ok(())
                } else {
                    Err(format!("the backup holds {n} of {STREAMS} streams"))
                }
            });
            let b0 = metrics(&backup);
            assert_eq!(
                metric(&b0, "rvs_fast_path_flows"),
                0,
                "the backup forwards nothing before the takeover\n{b0}"
            );

            // Takeover.
            let killed = Instant::now();
            lab.kill(master.pid()).unwrap();
            loop {
                if std::net::TcpStream::connect_timeout(&vip_web, Duration::from_millis(20)).is_ok()
                {
                    break;
                }
                assert!(
                    killed.elapsed() < Duration::from_secs(5),
                    "no takeover within 5 s"
                );
            }
            taken.store(true, SeqCst);
            // The new master's map holds the synced streams.
            poll_until(Duration::from_secs(5), || {
                let m = metrics(&backup);
                let flows = metric(&m, "rvs_fast_path_flows");
                if flows >= STREAMS as u64 {
                    Ok(())
                } else {
                    Err(format!(
                        "new master: {flows} flows offloaded, want {STREAMS}\n{m}\n{}",
                        lab.log_text(backup.pid())
                    ))
                }
            });
            let f0 = metric(&metrics(&backup), "rvs_fast_path_frames_total");
            thread::sleep(Duration::from_millis(1_500));
            let f1 = metric(&metrics(&backup), "rvs_fast_path_frames_total");
            eprintln!(
                "new master: {} frames by XDP in 1.5 s after the takeover; installed by the \
                 takeover walk (rather than with their first segment): {}",
                f1 - f0,
                lab.log_text(backup.pid())
                    .contains("installed after the takeover")
            );
            assert!(
                f1 - f0 > (STREAMS * 50) as u64,
                "the new master's program forwards the streams: {} frames",
                f1 - f0
            );
            stop.store(true, Relaxed);
            let fates: Vec<Fate> = streams.into_iter().map(|h| h.join().unwrap()).collect();
            let errors: Vec<_> = fates.iter().filter_map(|f| f.error.as_ref()).collect();
            assert!(errors.is_empty(), "streams lost: {errors:?}");
            for f in &fates {
                assert!(
                    f.after > 0,
                    "a stream made no progress after the takeover: {fates:?}"
                );
            }
        })
    })
    .unwrap();
    let log = backup.stop();
    assert!(!log.contains("XDP fast path:"), "no map errors:\n{log}");
}
