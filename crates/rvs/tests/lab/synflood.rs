//! Issue 12: a spoofed SYN flood against a NAT director without the SYN proxy, with the
//! defence strategies on.
//!
//! A legitimate client makes one HTTP request per connection (sequential, 1 s timeout);
//! first alone (the no-flood rate), then while `hping3 -S --flood --rand-source -p 80 VIP`
//! runs in the client's namespace at `nice -n 19` (stopped by its PID after 12 s), then 20
//! requests right after it. The table is capped at 8 MiB per family with
//! `when_full = "evict-embryonic"` and `drop_entry`, `secure_tcp` in their automatic mode.
//! The figures are printed (`--nocapture`) for BENCHMARKS.md.
//!
//! - `legitimate_clients_keep_working_through_a_spoofed_syn_flood`: the daemon as it runs
//!   by default, with SYN admission under overload (docs/operating.md): the SYN ring's
//!   backlog makes the director congested, the flood's SYNs (unproven sources) are shed
//!   before they are scheduled, and the client (proven by its no-flood requests) keeps
//!   issue 12's 30 % of its no-flood rate (release builds; debug builds 15 %, see the
//!   assertion); the table stays bounded; every request after the flood succeeds. Before SYN admission the same flood left 0-1 % (every spoofed SYN was
//!   scheduled and forwarded, the real servers' SYN-ACKs came back, the SYN ring
//!   overflowed and the kernel dropped SYNs at random, legitimate ones among them).
//! - `with_syn_admission_off_the_defence_strategies_bound_the_table`: `--syn-shed off`,
//!   what IPVS's defence strategies alone guarantee: the table fills to its limit and stays
//!   there, drop_entry switches on, the client is not locked out (as before issue 12: 0
//!   requests during and after), and every request right after the flood succeeds.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::{Director, get_name};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

/// The documented defence settings (docs/operating.md, "Connection floods").
fn config() -> String {
    format!(
        "[switches]\ndrop_entry = 1\nsecure_tcp = 1\n\n\
         [conn_table]\nmemory = \"8M\"\nwhen_full = \"evict-embryonic\"\n\n\
         [nat_router]\naddress = \"{router}/24\"\ndevice = \"eth1\"\n\n\
         [[vip]]\naddress = \"{vip}/24\"\ndevice = \"eth0\"\n\n\
         [[service]]\nvip = \"{vip}\"\nport = 80\nscheduler = \"rr\"\nmethod = \"nat\"\n\n\
         [[service.real_server]]\naddress = \"{rs1}\"\n\n\
         [[service.real_server]]\naddress = \"{rs2}\"\n",
        router = lab::NAT_ROUTER,
        vip = lab::VIP,
        rs1 = lab::rs_addr(1),
        rs2 = lab::rs_addr(2),
    )
}

/// Requests, one connection each, until `stop` is set or `limit` passes: (successes,
/// failures, elapsed).
fn requests(addr: SocketAddr, limit: Duration, stop: &AtomicBool) -> (u64, u64, Duration) {
    let start = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    while start.elapsed() < limit && !stop.load(Ordering::Relaxed) {
        match get_name(addr, Duration::from_secs(1)) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    (ok, failed, start.elapsed())
}

/// A metric's value from the daemon's metrics text.
fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in metrics"))
}

/// What one flood run measured.
struct Run {
    base_rate: f64,
    flood_rate: f64,
    flood_ok: u64,
    flood_failed: u64,
    peak: u64,
    max_entries: u64,
    peak_bytes: u64,
    defended: bool,
    after: Vec<Result<String, String>>,
    metrics: String,
    log: String,
}

/// The lab, the no-flood rate, the flood with the client's requests, the requests after
/// it; the daemon started with `extra` options.
fn flood_run(name: &str, extra: &[&str]) -> Run {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 2,
        ..LabOptions::default()
    });
    let d = Director::start_with(
        &lab,
        "director",
        name,
        &config(),
        &[&["--format", "toml"], extra].concat(),
    );
    let vip: IpAddr = lab::VIP.into();
    d.wait_http(vip);
    let addr = SocketAddr::new(vip, 80);
    let never = AtomicBool::new(false);

    // The rate without a flood, in the same lab.
    let (base_ok, base_failed, base_t) = lab
        .run("client", || requests(addr, Duration::from_secs(4), &never))
        .unwrap();
    assert_eq!(base_failed, 0, "no-flood requests failed\n{}", d.log());
    let base_rate = base_ok as f64 / base_t.as_secs_f64();

    let metrics = || rvs::daemon::control_request(d.control(), "metrics").unwrap();
    let max_entries = {
        let m = metrics();
        let limit = metric(&m, "rvs_connection_table_limit_bytes{family=\"ipv4\"}");
        assert_eq!(limit, 8 << 20);
        rvs_core::conn::entries_for_bytes::<[u8; 4]>(limit as usize) as u64
    };

    let rx_before = metric(&metrics(), "rvs_frames_total{kind=\"rx\"}");
    let client_tx = || -> u64 {
        let o = lab
            .exec(
                "client",
                "cat",
                ["/sys/class/net/eth0/statistics/tx_packets"],
            )
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let tx_before = client_tx();
    let hping = lab
        .spawn(
            "client",
            "nice",
            [
                "-n",
                "19",
                "hping3",
                "-S",
                "--flood",
                "--rand-source",
                "-p",
                "80",
                &lab::VIP.to_string(),
            ],
        )
        .expect("hping3 (scripts/test installs it)");
    let flood_start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let stop = AtomicBool::new(false);
    let mut peak = 0;
    let mut peak_bytes = 0;
    let mut defended = false;
    let (flood_ok, flood_failed, flood_t) = std::thread::scope(|s| {
        let client = s.spawn(|| {
            lab.run("client", || requests(addr, Duration::from_secs(10), &stop))
                .unwrap()
        });
        while !client.is_finished() {
            let m = metrics();
            peak = peak.max(metric(&m, "rvs_connection_table_entries{family=\"ipv4\"}"));
            peak_bytes = peak_bytes.max(metric(&m, "rvs_connection_table_bytes{family=\"ipv4\"}"));
            defended |= metric(&m, "rvs_defense_active{strategy=\"drop_entry\"}") == 1;
            if flood_start.elapsed() > Duration::from_secs(12) {
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        client.join().unwrap()
    });
    assert!(flood_start.elapsed() <= Duration::from_secs(15));
    let hping_alive = lab.try_wait(hping).unwrap().is_none();
    let _ = lab.kill(hping);
    assert!(hping_alive, "hping3 ended early:\n{}", lab.log_tail(hping));
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let m = metrics();
    let tx_rate = (client_tx() - tx_before) as f64 / flood_secs;
    let rx_rate = (metric(&m, "rvs_frames_total{kind=\"rx\"}") - rx_before) as f64 / flood_secs;
    let flood_rate = flood_ok as f64 / flood_t.as_secs_f64();

    // Right after the flood: every request succeeds.
    let after: Vec<Result<String, String>> = lab
        .run("client", || {
            (0..20)
                .map(|_| get_name(addr, Duration::from_secs(2)).map_err(|e| e.to_string()))
                .collect()
        })
        .unwrap();

    let shed = |e: &str| metric(&m, &format!("rvs_syn_shed_total{{event=\"{e}\"}}"));
    let syn_ring = |e: &str| {
        metric(
            &m,
            &format!("rvs_rx_ring_frames_total{{interface=\"eth0:syn\",event=\"{e}\"}}"),
        )
    };
    let syn_drops = metric(&m, "rvs_drops_total{reason=\"drop_packet\"}");
    let entry_drops = metric(&m, "rvs_defense_entries_dropped_total");
    let evicted_note = metric(&m, "rvs_drops_total{reason=\"table_full\"}");
    eprintln!(
        "issue-12 synflood ({} build, {name}): no-flood {base_rate:.0} req/s ({base_ok} in {:.1} s); during \
         flood {flood_rate:.0} req/s ({flood_ok} ok, {flood_failed} failed in {:.1} s) = \
         {:.0} %; table peak {peak} of {max_entries} entries, {peak_bytes} bytes (limit {}); \
         drop_entry removed {entry_drops}, drop_packet dropped {syn_drops}, table_full drops \
         {evicted_note}; flood ran {flood_secs:.1} s, client sent {tx_rate:.0} packets/s, director received {rx_rate:.0} frames/s; \
         SYN admission: congested {} time(s), shed {}, budget admitted {}, proven admitted {}, \
         proven sources {}; SYN ring {} seen {} dropped; after: {}/20 ok",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        base_t.as_secs_f64(),
        flood_t.as_secs_f64(),
        100.0 * flood_rate / base_rate,
        8 << 20,
        shed("congested_entered"),
        shed("shed"),
        shed("budget_admitted"),
        shed("proven_admitted"),
        metric(&m, "rvs_syn_shed_proven_sources{family=\"ipv4\"}"),
        syn_ring("seen"),
        syn_ring("dropped"),
        after.iter().filter(|r| r.is_ok()).count()
    );
    let log = d.log();
    d.stop();
    Run {
        base_rate,
        flood_rate,
        flood_ok,
        flood_failed,
        peak,
        max_entries,
        peak_bytes,
        defended,
        after,
        metrics: m,
        log,
    }
}

/// What holds in both runs: the table within its limit, every request after the flood.
fn bounded_and_after_ok(r: &Run) {
    assert!(
        r.peak <= r.max_entries,
        "table grew past its limit: {}",
        r.peak
    );
    assert!(r.peak_bytes <= 8 << 20, "{} bytes", r.peak_bytes);
    for (i, a) in r.after.iter().enumerate() {
        assert!(a.is_ok(), "request {i} after the flood: {a:?}\n{}", r.log);
    }
}

#[test]
fn legitimate_clients_keep_working_through_a_spoofed_syn_flood() {
    let r = flood_run("synflood", &[]);
    let shed = |e: &str| metric(&r.metrics, &format!("rvs_syn_shed_total{{event=\"{e}\"}}"));
    bounded_and_after_ok(&r);
    // SYN admission acted: congested, the flood's SYNs shed, the client's admitted.
    assert!(
        shed("congested_entered") >= 1,
        "never congested\n{}",
        r.metrics
    );
    assert!(shed("shed") > 10_000, "{}", r.metrics);
    // (Only SYNs that arrive while congested are counted; the state may come and go.)
    assert!(shed("proven_admitted") > 0, "{}", r.metrics);
    // Issue 12: >= 30 % of the no-flood rate with the SYN proxy off. Measured (machine
    // shared, BENCHMARKS.md): release 48 % and 55 %; debug 33-45 % with hping3 starved by
    // the load (20-40k packets/s), 21 % with it at 100k packets/s: a debug build's shed path
    // (parse, two table misses, the service lookup, the proven-set probe) occupies the
    // data plane, and the client's SYN queues in the SYN ring behind the flood's. Debug
    // builds assert 15 %.
    let share = if cfg!(debug_assertions) { 0.15 } else { 0.30 };
    assert!(
        r.flood_rate >= share * r.base_rate,
        "{:.0} req/s under the flood against {:.0} without ({} ok, {} failed)",
        r.flood_rate,
        r.base_rate,
        r.flood_ok,
        r.flood_failed
    );
    assert!(
        r.flood_failed * 100 <= r.flood_ok,
        "{} of {} requests failed",
        r.flood_failed,
        r.flood_ok + r.flood_failed
    );
}

#[test]
fn with_syn_admission_off_the_defence_strategies_bound_the_table() {
    let r = flood_run("synflood-noshed", &["--syn-shed", "off"]);
    bounded_and_after_ok(&r);
    assert!(r.defended, "drop_entry never switched on\n{}", r.metrics);
    assert_eq!(
        metric(&r.metrics, "rvs_syn_shed_total{event=\"shed\"}"),
        0,
        "shed with --syn-shed off"
    );
    assert!(
        r.flood_ok > 0 && r.flood_failed * 10 <= r.flood_ok,
        "legitimate clients locked out under the flood: {} ok, {} failed ({:.0}/s vs {:.0}/s \
         without)",
        r.flood_ok,
        r.flood_failed,
        r.flood_rate,
        r.base_rate
    );
}
