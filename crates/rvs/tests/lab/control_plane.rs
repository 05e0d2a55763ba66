//! The control plane off the forwarding thread (issue 13): `rvsadm -Z` zeroes what
//! `-L --stats` shows and counting goes on; a configured sync daemon's socket is opened
//! by the sync thread on a role change and only put in place by the worker.

use std::time::{Duration, Instant};

use crate::cluster::{Director, Virtual, lvs_cf, spread};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};
use crate::rvsadm::{ok, rvsadm};

/// The counters of `-L -n --stats --exact`'s lines: per line (service or real server),
/// its first word(s) and Conns InPkts OutPkts InBytes OutBytes.
fn stats(listing: &str) -> Vec<(String, [u64; 5])> {
    listing
        .lines()
        .skip(3)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let n = w.len();
            let c: Vec<u64> = w[n - 5..].iter().map(|v| v.parse().unwrap()).collect();
            (w[..n - 5].join(" "), [c[0], c[1], c[2], c[3], c[4]])
        })
        .collect()
}

#[test]
fn zeroed_counters_show_zero_and_counting_resumes() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 2,
        ..LabOptions::default()
    });
    let d = Director::start(
        &lab,
        "zero",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 2)]),
    );
    let c = d.control().to_path_buf();
    spread(&lab, lab::VIP.into(), 4);
    let before = ok(&c, "-L -n --stats --exact");
    let rows = stats(&before);
    assert_eq!(rows.len(), 3, "{before}");
    assert!(rows[0].1[0] >= 4 && rows[0].1[1] > 0, "{before}");

    // The connections' last packets (their closes) are counted before zeroing.
    std::thread::sleep(Duration::from_secs(1));
    ok(&c, "-Z");
    let zeroed = ok(&c, "-L -n --stats --exact");
    let rows = stats(&zeroed);
    assert_eq!(rows.len(), 3, "{zeroed}");
    assert!(rows.iter().all(|(_, v)| *v == [0; 5]), "{zeroed}");
    // ipvsadm's header and columns are unchanged, only the numbers.
    assert_eq!(
        zeroed.lines().take(3).collect::<Vec<_>>(),
        before.lines().take(3).collect::<Vec<_>>()
    );
    // A service that does not run: ipvsadm's message.
    let o = rvsadm(&c, &format!("-Z -t {}:81", lab::VIP), None);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "No such service\n");

    spread(&lab, lab::VIP.into(), 3);
    let after = ok(&c, "-L -n --stats --exact");
    let rows = stats(&after);
    assert!(rows[0].1[0] >= 3 && rows[0].1[1] > 0, "{after}");
    let rs: u64 = rows[1..].iter().map(|(_, v)| v[0]).sum();
    assert_eq!(rs, rows[0].1[0], "{after}");

    // One service: zeroed the same way.
    std::thread::sleep(Duration::from_secs(1));
    ok(&c, &format!("-Z -t {}:80", lab::VIP));
    let rows = stats(&ok(&c, "-L -n --stats --exact"));
    assert!(rows.iter().all(|(_, v)| *v == [0; 5]));
}

/// A configured sync daemon follows the role without the worker opening its socket:
/// `follow` only asks the sync thread, and the daemon appears (in `-L --daemon`'s lines)
/// once the worker's `poll` has put in place what the thread opened.
#[test]
fn a_role_change_has_the_sync_socket_opened_by_the_sync_thread() {
    use rvs::syncd::{SyncDaemons, describe};
    use rvs_config::ipvsadm::DaemonState;
    use rvs_core::director::{Director, DirectorSettings, NetConfig};
    use rvs_core::model::Config;
    let setup = rvs_config::failover::SyncSetup::new("lo".into(), 9);
    let mut sync = SyncDaemons::new(Some(setup.clone())).expect("sync on lo");
    let mut d = Director::new(
        NetConfig::default(),
        &Config::default(),
        DirectorSettings::default(),
    )
    .unwrap();
    let published = sync.published();
    let poll_until = |sync: &mut SyncDaemons, d: &mut Director, want: String| {
        let start = Instant::now();
        while published.listing() != want {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?} never became {want:?}",
                published.listing()
            );
            sync.poll(d, rvs_core::time::Instant::ZERO);
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // Owning addresses: the master is wanted; follow returns before any socket is there.
    sync.follow(&mut d, true, false);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        published.listing(),
        "",
        "nothing in place before the worker polls"
    );
    poll_until(&mut sync, &mut d, describe(DaemonState::Master, &setup));
    // Standing by: the master is taken out at once, the backup comes from the thread.
    sync.follow(&mut d, false, false);
    poll_until(&mut sync, &mut d, describe(DaemonState::Backup, &setup));
}

/// `sync_sock_size` sizes the master's send buffer and the backup's receive buffer as the
/// kernel's `set_sock_size()` does (doubled); at 0 the backup gets rvs's larger default
/// (it is read between packet batches, not by a thread of its own).
#[test]
fn sync_sock_size_sets_the_buffers_and_the_backup_defaults_large() {
    use rvs::syncd::{BACKUP_RECV_BUFFER, SyncDaemon};
    use rvs_config::ipvsadm::DaemonState;
    use socket2::SockRef;
    crate::harness::require_root_lab();
    let setup = rvs_config::failover::SyncSetup::new("lo".into(), 11);
    let backup = SyncDaemon::open_sized(DaemonState::Backup, &setup, 0).expect("backup on lo");
    assert_eq!(
        rvs_sys::sockopt::recv_buffer(backup.socket()).unwrap(),
        2 * BACKUP_RECV_BUFFER
    );
    drop(backup);
    let backup = SyncDaemon::open_sized(DaemonState::Backup, &setup, 50_000).expect("backup on lo");
    assert_eq!(
        rvs_sys::sockopt::recv_buffer(backup.socket()).unwrap(),
        100_000
    );
    drop(backup);
    let master = SyncDaemon::open_sized(DaemonState::Master, &setup, 50_000).expect("master on lo");
    assert_eq!(
        SockRef::from(&master.socket()).send_buffer_size().unwrap(),
        100_000
    );
}
