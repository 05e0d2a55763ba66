//! Active-active directors behind ECMP, announced by BIRD (docs/operating.md
//! "Active-active directors behind ECMP", issue 16): a router namespace runs BIRD 2 with
//! ECMP (`merge paths on`, `fib_multipath_hash_policy = 1`); three rvs directors run the
//! same `dist/active-active/rvs.toml` (direct routing, `consistent = true`, connection
//! sync) and the same `dist/active-active/bird-director.conf`, peering with the router's
//! `dist/active-active/bird-router.conf` over eBGP with 3-second hold timers. The files are
//! the operating guide's worked example, read here verbatim. Clients sit behind the router.
//!
//! ```text
//!   outside 192.0.2.10 -- router 192.0.2.1 | 10.1.0.1 --[swpub]-- director  10.1.0.2 | 10.2.0.1
//!                                                     \-- director2 10.1.0.3 | 10.2.0.2 --[swpriv]-- rs1..rs3
//!                                                      \- director3 10.1.0.4 | 10.2.0.3
//! ```
//!
//! One test walks the whole story, each step measured from a baseline taken just before
//! it: the load spreads over the three directors; a director whose real servers fail their
//! checks withdraws the VIP and the router drops that next hop, then takes it back; 50
//! long-lived streams survive a director's `kill -9` (mh + sync) while new connections keep
//! succeeding; the director started again takes streams back and they survive; its link
//! failing, the router drops it by the BGP hold timer and the streams survive; a drained
//! director carries no new flow and stops without losing a stream.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::Director;
use crate::harness::{Http, lab};
use crate::lab::{self, Lab, LabOptions, Method};

/// The worked example of docs/operating.md.
const RVS_TOML: &str = include_str!("../../../../dist/active-active/rvs.toml");
const BIRD_DIRECTOR: &str = include_str!("../../../../dist/active-active/bird-director.conf");
const BIRD_ROUTER: &str = include_str!("../../../../dist/active-active/bird-router.conf");

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const ROUTER_OUT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const DIRECTOR3_PUB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 4);
const DIRECTOR3_PRIV: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 3);

/// Routers converging, BGP sessions coming up, checks failing: generous bounds for a slow
/// CI machine (each loop ends as soon as its condition holds).
const CONVERGE: Duration = Duration::from_secs(40);

const STREAMS: usize = 50;

/// The three directors' nodes and public addresses.
const DIRECTORS: [(&str, Ipv4Addr); 3] = [
    ("director", lab::DIRECTOR_PUB),
    ("director2", lab::DIRECTOR2_PUB),
    ("director3", DIRECTOR3_PUB),
];

/// Adds the third director, the router and the clients' network to the lab.
fn build(lab: &mut Lab) {
    // director3: eth0 on the public bridge, eth1 on the private one, as the lab's two.
    lab.add_linked_node("director3", "eth0", "switch", "director3-eth0")
        .unwrap();
    let d3 = lab.netns("director3").unwrap().name().to_owned();
    let sw = lab.netns("switch").unwrap();
    sw.ip([
        "link",
        "add",
        "director3-eth1",
        "type",
        "veth",
        "peer",
        "name",
        "eth1",
        "netns",
        &d3,
    ])
    .unwrap();
    // The lab's bridges: swpub (public), swpriv (private).
    for (port, bridge) in [("director3-eth0", "swpub"), ("director3-eth1", "swpriv")] {
        sw.ip(["link", "set", "dev", port, "master", bridge, "up"])
            .unwrap();
    }
    let n3 = lab.netns("director3").unwrap();
    n3.link_up("eth1").unwrap();
    n3.add_addr("eth0", &format!("{DIRECTOR3_PUB}/24")).unwrap();
    n3.add_addr("eth1", &format!("{DIRECTOR3_PRIV}/24"))
        .unwrap();
    n3.link_up("lo").unwrap();
    sysctl(
        lab,
        "director3",
        &["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"],
    );

    // The router: on the public bridge, and towards the clients.
    lab.add_linked_node("router", "eth0", "switch", "router-eth0")
        .unwrap();
    lab.netns("switch")
        .unwrap()
        .ip(["link", "set", "dev", "router-eth0", "master", "swpub", "up"])
        .unwrap();
    lab.add_linked_node("outside", "eth0", "router", "eth1")
        .unwrap();
    let r = lab.netns("router").unwrap();
    r.add_addr("eth0", &format!("{ROUTER}/24")).unwrap();
    r.add_addr("eth1", &format!("{ROUTER_OUT}/24")).unwrap();
    r.link_up("lo").unwrap();
    sysctl(
        lab,
        "router",
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.conf.eth0.rp_filter=0",
        ],
    );
    let o = lab.netns("outside").unwrap();
    o.add_addr("eth0", &format!("{OUTSIDE}/24")).unwrap();
    o.link_up("lo").unwrap();
    o.ip(["route", "add", "default", "via", &ROUTER_OUT.to_string()])
        .unwrap();
    // Direct routing: the real servers answer the clients themselves, through the router.
    for i in 1..=3 {
        lab.netns(&format!("rs{i}"))
            .unwrap()
            .ip([
                "route",
                "add",
                "192.0.2.0/24",
                "via",
                &ROUTER.to_string(),
                "dev",
                "eth1",
            ])
            .unwrap();
    }
}

fn sysctl(lab: &Lab, node: &str, settings: &[&str]) {
    let mut args = vec!["-qw"];
    args.extend_from_slice(settings);
    lab.exec(node, "sysctl", args).unwrap();
}

/// A BIRD started in `node` with `conf`, its control socket and pid file in the lab's
/// work directory (stopped by pid with the lab).
struct Bird {
    node: String,
    socket: PathBuf,
    pid: u32,
}

impl Bird {
    fn start(lab: &Lab, node: &str, conf: &str) -> Bird {
        let wd = lab.info().workdir();
        let file = wd.join(format!("bird-{node}.conf"));
        std::fs::write(&file, conf).unwrap();
        let socket = wd.join(format!("bird-{node}.ctl"));
        let pid_file = wd.join(format!("bird-{node}.pid"));
        let pid = lab
            .spawn(
                node,
                "bird",
                [
                    "-f".as_ref(),
                    "-c".as_ref(),
                    file.as_os_str(),
                    "-s".as_ref(),
                    socket.as_os_str(),
                    "-P".as_ref(),
                    pid_file.as_os_str(),
                ],
            )
            .unwrap();
        let b = Bird {
            node: node.to_owned(),
            socket,
            pid,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.birdc(lab, &["show", "status"]).is_none() {
            if let Some(s) = lab.try_wait(pid).unwrap() {
                panic!("bird in {node} exited ({s}):\n{}", lab.log_tail(pid));
            }
            assert!(Instant::now() < deadline, "bird in {node} did not start");
            thread::sleep(Duration::from_millis(100));
        }
        b
    }

    fn birdc(&self, lab: &Lab, args: &[&str]) -> Option<String> {
        let mut c = lab.command(&self.node, "birdc").unwrap();
        c.arg("-s").arg(&self.socket).args(args);
        let out = c.output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The next hops of the VIP's routes in the router's BIRD (`birdc show route for`).
    fn next_hops(&self, lab: &Lab) -> (BTreeSet<Ipv4Addr>, String) {
        let text = self
            .birdc(lab, &["show", "route", "for", &format!("{}/32", lab::VIP)])
            .unwrap_or_default();
        let hops = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "via")
            .filter_map(|w| w[1].parse().ok())
            .collect();
        (hops, text)
    }

    /// Waits until the VIP's next hops are exactly `want`; the last `show route` output.
    fn wait_next_hops(&self, lab: &Lab, want: &[Ipv4Addr], what: &str) -> String {
        let want: BTreeSet<Ipv4Addr> = want.iter().copied().collect();
        let deadline = Instant::now() + CONVERGE;
        loop {
            let (got, text) = self.next_hops(lab);
            if got == want {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the router's next hops for the VIP are {got:?}, not {want:?}, after \
                 {CONVERGE:?}:\n{text}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The service's `InPkts` on a director (`--stats --exact`): packets it forwarded.
fn in_pkts(d: &Director<'_>) -> u64 {
    let text = d.listing(&["--stats", "--exact"]);
    text.lines()
        .find(|l| l.starts_with("TCP"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no service line in\n{text}"))
}

/// `n` fresh connections from outside, each one GET; how many were answered.
fn new_connections(lab: &Lab, n: usize) -> usize {
    let vip = SocketAddr::new(IpAddr::V4(lab::VIP), 80);
    lab.run("outside", move || {
        (0..n)
            .filter(|_| {
                crate::cluster::get_name(vip, Duration::from_secs(2)).is_ok_and(|s| !s.is_empty())
            })
            .count()
    })
    .unwrap()
}

/// A long-lived keep-alive stream and the real server that answered it first.
struct Stream {
    http: Http,
    server: String,
}

fn open_streams(lab: &Lab) -> Vec<Stream> {
    let vip = SocketAddr::new(IpAddr::V4(lab::VIP), 80);
    lab.run("outside", move || {
        (0..STREAMS)
            .map(|i| {
                let mut http = Http::connect_timeout(vip, Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("stream {i}: connect: {e}"));
                let r = http
                    .get("/")
                    .unwrap_or_else(|e| panic!("stream {i}: first request: {e}"));
                Stream {
                    http,
                    server: r.text().trim().to_owned(),
                }
            })
            .collect()
    })
    .unwrap()
}

/// Sends one more request on every stream: how many the same real server answered.
fn streams_alive(streams: &mut [Stream]) -> usize {
    let mut n = 0;
    for s in streams.iter_mut() {
        if s.http
            .get("/")
            .is_ok_and(|r| r.status == 200 && r.text().trim() == s.server)
        {
            n += 1;
        }
    }
    n
}

fn send_term(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM {pid}");
}

fn control(d: &Director<'_>, line: &str) -> String {
    rvs::announce::request(d.control(), line, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{line}: {e}\n{}", d.log()))
}

fn metrics(d: &Director<'_>) -> String {
    rvs::daemon::control_request(d.control(), "metrics").unwrap()
}

/// The value of the metrics sample `series` (name and labels as written).
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

fn blackhole_real_servers(lab: &Lab, node: &str, add: bool) {
    for i in 1..=3 {
        let rs = lab::rs_addr(i).to_string();
        let verb = if add { "add" } else { "del" };
        lab.exec(node, "ip", ["route", verb, "blackhole", &rs])
            .unwrap();
    }
}

/// docs/operating.md shows the three files of the worked example unchanged.
#[test]
fn the_guide_shows_the_lab_files_verbatim() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operating.md"),
    )
    .unwrap();
    for (name, fence, text) in [
        ("rvs.toml", "```toml\n", RVS_TOML),
        ("bird-director.conf", "```\n", BIRD_DIRECTOR),
        ("bird-router.conf", "```\n", BIRD_ROUTER),
    ] {
        assert!(
            guide.contains(&format!("{fence}{text}```\n")),
            "docs/operating.md should show dist/active-active/{name} verbatim"
        );
    }
}

#[test]
fn three_directors_behind_ecmp_spread_withdraw_survive_and_drain() {
    let mut lab = lab(LabOptions {
        method: Method::Dr,
        backup_director: true,
        ..LabOptions::default()
    });
    build(&mut lab);
    let lab = lab;
    let directors: Vec<Director<'_>> = DIRECTORS
        .iter()
        .enumerate()
        .map(|(i, (node, _))| {
            Director::start_with(
                &lab,
                node,
                &format!("aa{}", i + 1),
                RVS_TOML,
                &["--format", "toml"],
            )
        })
        .collect();
    for (node, _) in DIRECTORS {
        Bird::start(&lab, node, BIRD_DIRECTOR);
    }
    let router = Bird::start(&lab, "router", BIRD_ROUTER);
    let all: Vec<Ipv4Addr> = DIRECTORS.iter().map(|(_, a)| *a).collect();
    let shown = router.wait_next_hops(&lab, &all, "three directors announce the VIP");
    // The kernel got one ECMP route with a next hop per director.
    let kernel = lab
        .exec("router", "ip", ["route", "show", &lab::VIP.to_string()])
        .unwrap();
    let kernel = String::from_utf8_lossy(&kernel.stdout).into_owned();
    for a in &all {
        assert!(
            kernel.contains(&format!("nexthop via {a} ")),
            "kernel route on the router:\n{kernel}\nbird:\n{shown}"
        );
    }
    for d in &directors {
        let l = d.listing(&["--announce"]);
        assert!(l.contains("10.1.0.100") && l.contains(" yes "), "{l}");
        assert!(
            metrics(d).contains("rvs_vip_announced{vip=\"10.1.0.100\"} 1\n"),
            "{}",
            metrics(d)
        );
    }

    // 1. The load spreads: each director forwards a share of 90 new connections.
    let before: Vec<u64> = directors.iter().map(in_pkts).collect();
    assert_eq!(
        new_connections(&lab, 90),
        90,
        "every new connection answered"
    );
    let share: Vec<u64> = directors
        .iter()
        .zip(&before)
        .map(|(d, b)| in_pkts(d) - b)
        .collect();
    eprintln!("packets per director for 90 connections: {share:?}\n{shown}");
    assert!(
        share.iter().all(|&n| n > 0),
        "each director forwards a share of the flows: {share:?}"
    );

    // No director answers ARP for the VIP on the shared segment (a host there that tries
    // the VIP directly gets nowhere), before and after a reload.
    let on_link = || {
        let vip = SocketAddr::new(IpAddr::V4(lab::VIP), 80);
        lab.run("client", move || {
            crate::cluster::get_name(vip, Duration::from_secs(1))
        })
        .unwrap()
    };
    assert!(
        on_link().is_err(),
        "a director answered for the VIP on the link"
    );
    let said = rvs::daemon::control_request(directors[0].control(), "reload").unwrap();
    assert!(!said.starts_with("error"), "{said}");
    assert!(
        on_link().is_err(),
        "a director answered for the VIP on the link after a reload"
    );
    router.wait_next_hops(&lab, &all, "after director1's reload");

    // 2. Quorum: director3's checks fail, it withdraws the VIP; they pass, it is back.
    blackhole_real_servers(&lab, "director3", true);
    router.wait_next_hops(&lab, &all[..2], "director3 lost its quorum");
    let l = directors[2].listing(&["--announce"]);
    assert!(l.contains("quorum lost: TCP 10.1.0.100:80"), "{l}");
    assert!(
        metrics(&directors[2]).contains("rvs_vip_announced{vip=\"10.1.0.100\"} 0\n"),
        "{}",
        metrics(&directors[2])
    );
    blackhole_real_servers(&lab, "director3", false);
    router.wait_next_hops(&lab, &all, "director3's real servers are back");

    // 3. kill -9: streams survive, new connections keep succeeding.
    let mut streams = open_streams(&lab);
    // Let the sync messages of the streams' connections reach the other directors.
    thread::sleep(Duration::from_secs(1));
    // Every director runs both sync roles: it sent its own connections and imported others'.
    for (d, (node, _)) in directors.iter().zip(DIRECTORS) {
        let m = metrics(d);
        let sent = sample(&m, "rvs_sync_records_total{event=\"sent\"}");
        let imported = sample(&m, "rvs_sync_records_total{event=\"imported\"}");
        assert!(
            sent > 0 && imported > 0,
            "{node}: sync sent {sent}, imported {imported}"
        );
    }
    lab.kill(directors[1].pid()).unwrap();
    router.wait_next_hops(
        &lab,
        &[all[0], all[2]],
        "director2 killed: its routes went with its route device",
    );
    assert_eq!(
        new_connections(&lab, 30),
        30,
        "new connections after the kill"
    );
    let alive = streams_alive(&mut streams);
    let servers: BTreeSet<&str> = streams.iter().map(|s| s.server.as_str()).collect();
    eprintln!("{alive} of {STREAMS} streams survived the kill -9 (real servers {servers:?})");
    assert!(
        alive * 100 >= STREAMS * 99,
        "{alive} of {STREAMS} streams survived director2's kill -9"
    );

    // 3b. director2 comes back: the routers move some streams to it, which has none of
    // their entries (it started afresh); mh with sloppy_tcp picks the same real servers.
    let back = Director::start_with(
        &lab,
        "director2",
        "aa2-again",
        RVS_TOML,
        &["--format", "toml"],
    );
    router.wait_next_hops(&lab, &all, "director2 is back");
    let before = in_pkts(&back);
    let alive = streams_alive(&mut streams);
    eprintln!(
        "{alive} of {STREAMS} streams survived director2's return ({} packets through it)",
        in_pkts(&back) - before
    );
    assert!(
        alive * 100 >= STREAMS * 99,
        "{alive} of {STREAMS} streams survived director2's return"
    );
    assert_eq!(
        new_connections(&lab, 30),
        30,
        "new connections with director2 back"
    );
    // 3c. director2's link fails (its processes live on): the router drops it when the BGP
    // hold time (3 s) expires, and the streams it carried continue on the others.
    lab.netns("switch")
        .unwrap()
        .ip(["link", "set", "dev", "director2-eth0", "down"])
        .unwrap();
    router.wait_next_hops(&lab, &[all[0], all[2]], "director2's link failed");
    let log = lab.log_text(router.pid);
    assert!(
        log.contains("director2: Error: Hold timer expired"),
        "the router dropped director2 by its hold timer:\n{log}"
    );
    let alive = streams_alive(&mut streams);
    assert!(
        alive * 100 >= STREAMS * 99,
        "{alive} of {STREAMS} streams survived director2's link failure"
    );
    back.stop();

    // 4. Drain director1: no new flow reaches it; it stops without losing a stream.
    let said = control(&directors[0], "drain-director");
    assert!(said.starts_with("director drained"), "{said}");
    router.wait_next_hops(&lab, &[all[2]], "director1 drained");
    assert!(metrics(&directors[0]).contains("rvs_director_drained 1\n"));
    let d1_before = in_pkts(&directors[0]);
    assert_eq!(
        new_connections(&lab, 20),
        20,
        "new connections after the drain"
    );
    let alive = streams_alive(&mut streams);
    assert_eq!(
        in_pkts(&directors[0]),
        d1_before,
        "the drained director forwarded no packet"
    );
    assert!(
        alive * 100 >= STREAMS * 99,
        "{alive} of {STREAMS} streams survived the drain"
    );
    send_term(directors[0].pid());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = lab.try_wait(directors[0].pid()).unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "director1 did not stop");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "director1 exited with {status}");
    let alive = streams_alive(&mut streams);
    assert!(
        alive * 100 >= STREAMS * 99,
        "{alive} of {STREAMS} streams survived director1's stop"
    );
    drop(streams);

    // 5. The last director stops: it withdraws first, forwards while the routers converge,
    // then exits 0, and the router is left with no route to the VIP.
    let last = directors[2].pid();
    send_term(last);
    router.wait_next_hops(&lab, &[], "director3 stopping");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = lab.try_wait(last).unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "director3 did not stop");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "director3 exited with {status}");
    let log = lab.log_text(last);
    let withdrawn = log.find("active-active: VIP withdrawn");
    let waited = log.find("while the routers converge");
    let stopped = log.find("director stopped");
    assert!(
        withdrawn.is_some() && withdrawn < waited && waited < stopped,
        "withdraw, wait, then stop:\n{log}"
    );
}

/// An active-active director runs both sync daemons on one group: its backup skips what its
/// own master sent (by the sync interface's address) and imports what another director
/// sent. In a namespace of its own, on `lo`, with the "group" a unicast address.
#[test]
fn the_sync_backup_skips_its_own_masters_messages() {
    use rvs_config::ipvsadm::DaemonState;
    use rvs_core::director::{Director as Engine, DirectorSettings, NetConfig};
    use rvs_core::sync::SyncMessageBuilder;
    use std::net::UdpSocket;

    crate::harness::require_root_lab();
    let ns = rvs_sys::netns::Netns::new("aasync").unwrap();
    ns.link_up("lo").unwrap();
    let counts = ns
        .run(|| {
            let mut setup = rvs_config::SyncSetup::new("lo".into(), 7);
            setup.group = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let mut d = Engine::new(
                NetConfig::default(),
                &rvs_core::model::Config::default(),
                DirectorSettings::default(),
            )
            .unwrap();
            let mut daemons = rvs::syncd::SyncDaemons::default();
            let backup = rvs::syncd::SyncDaemon::open(DaemonState::Backup, &setup)
                .unwrap_or_else(|e| panic!("backup: {e}"));
            if daemons
                .put(&mut d, DaemonState::Backup, Box::new(backup))
                .is_err()
            {
                panic!("backup: not put in place");
            }
            let mut buf = [0u8; 64];
            let msg = SyncMessageBuilder::new(&mut buf, 7)
                .unwrap()
                .finish()
                .to_vec();
            // This director's own master sends from the sync interface's address; another
            // director's from its own (any other address of 127/8 reaches lo).
            for from in [Ipv4Addr::LOCALHOST, Ipv4Addr::new(127, 0, 0, 2)] {
                let s = UdpSocket::bind((from, 0)).unwrap();
                s.send_to(&msg, (Ipv4Addr::LOCALHOST, setup.port)).unwrap();
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while daemons.counts.own_skipped + daemons.counts.received_messages < 2
                && Instant::now() < deadline
            {
                daemons.poll(&mut d, rvs_core::time::Instant(0));
                thread::sleep(Duration::from_millis(10));
            }
            daemons.counts
        })
        .unwrap();
    assert_eq!(counts.own_skipped, 1, "{counts:?}");
    assert_eq!(counts.received_messages, 1, "{counts:?}");
}
