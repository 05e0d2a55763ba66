//! `rvsadm` against a running daemon: the service is rebuilt with ipvsadm commands,
//! serves traffic, a real server is quiesced (weight 0) and deleted, `-L -n` and `-S -n`
//! print ipvsadm's text, `-R` restores rules from a file, and usage errors exit with
//! ipvsadm's statuses and messages before any daemon is asked; service names are
//! resolved by rvsadm and printed back without `-n`.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use crate::cluster::{Director, Virtual, even, lvs_cf, spread};
use crate::harness::lab;
use crate::lab::{self, LabOptions, Method};

fn rvsadm_exe() -> &'static str {
    env!("CARGO_BIN_EXE_rvsadm")
}

/// `rvsadm ARGS` (argv[0] `rvsadm`) against `control`, stdin from `stdin` if given.
pub(crate) fn rvsadm(
    control: &std::path::Path,
    args: &str,
    stdin: Option<&std::path::Path>,
) -> Output {
    let mut c = Command::new(rvsadm_exe());
    c.arg0("rvsadm")
        .args(args.split_whitespace())
        .env("RVS_CONTROL", control);
    match stdin {
        Some(p) => c.stdin(std::fs::File::open(p).unwrap()),
        None => c.stdin(Stdio::null()),
    };
    c.output().expect("rvsadm runs")
}

pub(crate) fn ok(control: &std::path::Path, args: &str) -> String {
    let o = rvsadm(control, args, None);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "rvsadm {args}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `-L -n` with the ActiveConn / InActConn columns (which depend on TIME_WAIT timing)
/// replaced by `A` and `I`, checking they are where ipvsadm's format puts them.
fn masked(listing: &str) -> String {
    listing
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("  -> ")
                && !rest.starts_with("RemoteAddress")
            {
                // "  -> %-28s %-7s %-6d %-10u %-10u": counters at 49..59 and 60..70.
                assert_eq!(l.len(), 70, "{l:?}");
                let (a, i) = (&l[49..59], &l[60..70]);
                assert!(a.trim_end().parse::<u32>().is_ok(), "{l:?}");
                assert!(i.trim_end().parse::<u32>().is_ok(), "{l:?}");
                format!("{}A I", &l[..49])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rvsadm_builds_quiesces_deletes_and_restores() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        ..LabOptions::default()
    });
    // The file only attaches the daemon to the links; rvsadm replaces its service.
    let d = Director::start(
        &lab,
        "rvsadm",
        &lvs_cf(Method::Nat, &[Virtual::rr(lab::VIP.into(), 80, 1)]),
    );
    let c = d.control().to_path_buf();
    let vip = lab::VIP;
    let rs = |i| lab::rs_addr(i);

    ok(&c, &format!("-D -t {vip}:80"));
    assert_eq!(
        ok(&c, "-L -n"),
        "IP Virtual Server version 1.2.1 (size=65536)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    ok(&c, &format!("-A -t {vip}:80 -s rr"));
    for i in 1..=3 {
        ok(&c, &format!("-a -t {vip}:80 -r {}:80 -m -w 1", rs(i)));
    }
    // An existing real server: ipvsadm's kernel error, status 255.
    let o = rvsadm(&c, &format!("-a -t {vip}:80 -r {}:80 -m", rs(1)), None);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Destination already exists\n"
    );

    assert_eq!(spread(&lab, vip.into(), 9), even(3, 3), "{}", d.log());

    // Quiesce rs3: no new connections.
    ok(&c, &format!("-e -t {vip}:80 -r {}:80 -m -w 0", rs(3)));
    assert_eq!(spread(&lab, vip.into(), 6), even(2, 3), "{}", d.log());
    assert_eq!(
        masked(&ok(&c, "-L -n")),
        format!(
            "IP Virtual Server version 1.2.1 (size=65536)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  {vip}:80 rr\n\
             \x20 -> {:<28} Masq    1      A I\n\
             \x20 -> {:<28} Masq    1      A I\n\
             \x20 -> {:<28} Masq    0      A I",
            format!("{}:80", rs(1)),
            format!("{}:80", rs(2)),
            format!("{}:80", rs(3))
        )
    );
    // Delete rs2: everything goes to rs1.
    ok(&c, &format!("-d -t {vip}:80 -r {}", rs(2)));
    let only_rs1: BTreeMap<String, usize> = [("rs1".to_string(), 4)].into();
    assert_eq!(spread(&lab, vip.into(), 4), only_rs1, "{}", d.log());
    assert_eq!(
        ok(&c, "-S -n"),
        format!(
            "-A -t {vip}:80 -s rr\n\
             -a -t {vip}:80 -r {}:80 -m -w 1\n\
             -a -t {vip}:80 -r {}:80 -m -w 0\n",
            rs(1),
            rs(3)
        )
    );
    // --stats counts what went through: 3 + 3 + 4 connections on rs1.
    let stats = ok(&c, "-L -n --stats --exact");
    let rs1 = stats
        .lines()
        .find(|l| l.starts_with(&format!("  -> {}:80 ", rs(1))))
        .unwrap();
    assert_eq!(rs1.split_whitespace().nth(2), Some("10"), "{stats}");

    // -R from a file: persistent (300 s, so templates show 04:5x) wlc over rs2 and rs3.
    let rules = lab.info().workdir().join("rules");
    let text = format!(
        "-A -t {vip}:80 -s wlc -p 300\n\
         -a -t {vip}:80 -r {}:80 -m -w 1\n\
         -a -t {vip}:80 -r {}:80 -m -w 1\n",
        rs(2),
        rs(3)
    );
    std::fs::write(&rules, format!("-C\n{text}")).unwrap();
    let o = rvsadm(&c, "-R", Some(&rules));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ok(&c, "-S -n"), text);
    let got = spread(&lab, vip.into(), 4);
    assert_eq!(
        got.len(),
        1,
        "persistence keeps one client on one server: {got:?}"
    );
    assert!(!got.contains_key("rs1"), "{got:?}");
    let one = ok(&c, &format!("-L -n -t {vip}:80"));
    assert!(
        one.starts_with(&format!(
            "Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  {vip}:80 wlc persistent 300\n"
        )),
        "{one}"
    );
    let conns = ok(&c, "-L -n -c");
    assert!(
        conns.starts_with(
            "IPVS connection entries\n\
             pro expire state       source             virtual            destination\n"
        ),
        "{conns}"
    );
    assert!(
        conns
            .lines()
            .any(|l| l.starts_with("TCP 04:5") && l.contains(" NONE ")),
        "a persistence template: {conns}"
    );
    assert_eq!(
        ok(&c, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    // A line ipvsadm cannot parse stops the restore there: the -C after it never runs.
    std::fs::write(&rules, format!("-A -t {vip}:0\n-C\n")).unwrap();
    let o = rvsadm(&c, "-R", Some(&rules));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(ok(&c, "-S -n"), text);
    // -R adds to what runs, as ipvsadm's does: the running service and its real servers stay.
    std::fs::write(&rules, format!("-A -t {vip}:9090 -s rr\n")).unwrap();
    let o = rvsadm(&c, "-R", Some(&rules));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ok(&c, "-S -n"), format!("{text}-A -t {vip}:9090 -s rr\n"));
    // The same line again: "Service already exists", and the status of that last line.
    let o = rvsadm(&c, "-R", Some(&rules));
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Service already exists\n"
    );
    assert!(
        rvsadm(&c, &format!("-D -t {vip}:9090"), None)
            .status
            .success()
    );

    // Usage errors: ipvsadm's messages and statuses, no daemon needed.
    let gone = lab.info().workdir().join("no-daemon.ctl");
    for (args, code, msg) in [
        (
            format!("-A -t {vip}:0"),
            2,
            "Zero port specified for non-persistent service\n".to_string(),
        ),
        (
            "-Q".to_string(),
            255,
            "Try `rvsadm -h' or 'rvsadm --help' for more information.\n".to_string(),
        ),
        (
            format!("-a -t {vip}:80 -r 10.2.0.11 -w 70000"),
            2,
            "illegal weight specified\n".to_string(),
        ),
        (
            format!("-A -t {vip}:80 -o"),
            2,
            "One-Packet Scheduling is only for UDP virtual services\n".to_string(),
        ),
    ] {
        let o = rvsadm(&gone, &args, None);
        assert_eq!(o.status.code(), Some(code), "rvsadm {args}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), msg, "rvsadm {args}");
        assert!(o.stdout.is_empty());
    }
    // No daemon: a clear error, status 1.
    let o = rvsadm(&gone, "-L -n", None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Can't reach the rvs daemon at "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // -h and -v need no daemon either.
    let h = rvsadm(&gone, "-h", None);
    assert_eq!(h.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&h.stdout).contains("\nUsage:\n  rvsadm -A|E virtual-service"));

    // Names, as ipvsadm takes and prints them: rvsadm resolves service names through
    // /etc/services (netbase: http = www = 80/tcp) and sends the daemon numbers; without
    // -n it prints names (the lab's addresses have no host names: numbers).
    std::fs::write(
        &rules,
        format!(
            "-C\n-A -t {vip}:http -s rr\n-a -t {vip}:http -r {}:www -m -w 1\n",
            rs(1)
        ),
    )
    .unwrap();
    let o = rvsadm(&c, "-R", Some(&rules));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&c, &format!("-a -t {vip}:http -r {}:http -m -w 1", rs(2)));
    assert_eq!(
        ok(&c, "-S -n"),
        format!(
            "-A -t {vip}:80 -s rr\n-a -t {vip}:80 -r {}:80 -m -w 1\n-a -t {vip}:80 -r {}:80 -m -w 1\n",
            rs(1),
            rs(2)
        )
    );
    assert_eq!(
        ok(&c, "-S"),
        format!(
            "-A -t {vip}:http -s rr\n-a -t {vip}:http -r {}:http -m -w 1\n-a -t {vip}:http -r {}:http -m -w 1\n",
            rs(1),
            rs(2)
        )
    );
    let listing = ok(&c, &format!("-L -t {vip}:www"));
    assert!(
        listing.contains(&format!(
            "TCP  {vip}:http rr\n  -> {:<28} Masq    1      ",
            format!("{}:http", rs(1))
        )),
        "{listing}"
    );
    // A name no system knows is refused before any daemon is asked.
    let o = rvsadm(&gone, "-A -t no-such-host.invalid:http", None);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "illegal virtual server address[:port] specified\n"
    );
    let _ = d.stop();
}

/// `PROGRAM ARGS` from the test process with only `RVS_RUN_DIR` to find the daemon (no
/// `--control`, no `RVS_CONTROL`), as an operator types it.
fn plain(program: &std::path::Path, run_dir: &std::path::Path, args: &str) -> Output {
    let name = program.file_name().unwrap().to_owned();
    Command::new(program)
        .arg0(name)
        .args(args.split_whitespace())
        .env_remove("RVS_CONTROL")
        .env("RVS_RUN_DIR", run_dir)
        .stdin(Stdio::null())
        .output()
        .expect("the client runs")
}

fn text(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Weight column of real server `rs` in an `ipvsadm -L -n` listing.
fn weight_of(listing: &str, rs: &str) -> Option<u32> {
    listing.lines().find_map(|l| {
        let w: Vec<&str> = l
            .trim_start()
            .strip_prefix("-> ")?
            .split_whitespace()
            .collect();
        (w.first() == Some(&rs)).then(|| w.get(2)?.parse().ok())?
    })
}

/// `rvs daemon -c /some/dir/web.cf` with nothing else, then plain `rvsadm -L -n` finds it;
/// `rvsadm -e ... -w 5` shows weight 5 in the next listing and the traffic follows it while
/// nanny's checks keep running.
#[test]
fn plain_rvsadm_finds_the_daemon_and_its_weights_take_effect_under_health_checks() {
    let lab = lab(LabOptions {
        method: Method::Nat,
        ipv6: false,
        real_servers: 3,
        ..LabOptions::default()
    });
    let wd = lab.info().workdir();
    let run_dir = wd.join("run");
    let etc = wd.join("some").join("dir");
    std::fs::create_dir_all(&etc).unwrap();
    let cf = etc.join("web.cf");
    let vip = lab::VIP;
    let rs = |i| format!("{}:80", lab::rs_addr(i));
    let mut conf = format!(
        "serial_no = 7\nprimary = {}\nservice = lvs\nnetwork = nat\nnat_router = {} eth1:1\n\
         virtual web {{\n    address = {vip} eth0:1\n    active = 1\n    port = 80\n\
         \x20   protocol = tcp\n    scheduler = wrr\n    timeout = 1\n    reentry = 1\n",
        lab::DIRECTOR_PUB,
        lab::NAT_ROUTER
    );
    for i in 1..=3 {
        conf += &format!(
            "    server rs{i} {{\n        address = {}\n        active = 1\n        weight = 1\n    }}\n",
            lab::rs_addr(i)
        );
    }
    conf += "}\n";
    std::fs::write(&cf, conf).unwrap();
    let rvs = crate::harness::rvs_exe();
    let rvsadm_exe = std::path::PathBuf::from(rvsadm_exe());
    let env_arg = format!("RVS_RUN_DIR={}", run_dir.display());
    let pid = lab
        .spawn(
            "director",
            "env",
            [
                std::ffi::OsStr::new(&env_arg),
                rvs.as_os_str(),
                "daemon".as_ref(),
                "-c".as_ref(),
                cf.as_os_str(),
            ],
        )
        .unwrap();
    // Plain rvsadm -L -n answers once the daemon is up, with every server admitted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let listing = loop {
        let o = plain(&rvsadm_exe, &run_dir, "-L -n");
        if o.status.success() {
            let l = String::from_utf8_lossy(&o.stdout).into_owned();
            if (1..=3).all(|i| weight_of(&l, &rs(i)) == Some(1)) {
                break l;
            }
        }
        assert!(
            lab.try_wait(pid).unwrap().is_none(),
            "the daemon exited:\n{}",
            lab.log_tail(pid)
        );
        assert!(
            std::time::Instant::now() < deadline,
            "plain rvsadm -L -n did not show the service: {}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            lab.log_tail(pid)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        listing.contains(&format!("TCP  {vip}:80 wrr\n")),
        "{listing}"
    );
    assert!(
        run_dir.join("web.ctl").exists(),
        "the default socket is named after web.cf"
    );

    // The operator's weight: at once in the listing, and the spread follows it.
    let o = plain(
        &rvsadm_exe,
        &run_dir,
        &format!("-e -t {vip}:80 -r {} -m -w 5", rs(1)),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        weight_of(&text(&plain(&rvsadm_exe, &run_dir, "-L -n")), &rs(1)),
        Some(5)
    );
    let got = spread(&lab, vip.into(), 70);
    let want: BTreeMap<String, usize> =
        [("rs1".into(), 50), ("rs2".into(), 10), ("rs3".into(), 10)].into();
    assert_eq!(got, want, "wrr over 5:1:1\n{}", lab.log_tail(pid));
    // Checks keep running (interval 1 s) and the weight stays the operator's.
    let before = text(&plain(&rvs, &run_dir, "list --health"));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let after = text(&plain(&rvs, &run_dir, "list --health"));
    assert_ne!(before, after, "the health view moves on: checks run");
    let row = after
        .lines()
        .find(|l| l.contains(&rs(1)))
        .unwrap_or_else(|| panic!("{after}"));
    let w: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&w[3..6], ["up", "5", "5"], "{after}");
    assert_eq!(
        weight_of(&text(&plain(&rvsadm_exe, &run_dir, "-L -n")), &rs(1)),
        Some(5)
    );
    // -d, then -a -w 4: back with the operator's weight.
    text(&plain(
        &rvsadm_exe,
        &run_dir,
        &format!("-d -t {vip}:80 -r {}", rs(2)),
    ));
    assert_eq!(
        weight_of(&text(&plain(&rvsadm_exe, &run_dir, "-L -n")), &rs(2)),
        None
    );
    text(&plain(
        &rvsadm_exe,
        &run_dir,
        &format!("-a -t {vip}:80 -r {} -m -w 4", rs(2)),
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while weight_of(&text(&plain(&rvsadm_exe, &run_dir, "-L -n")), &rs(2)) != Some(4) {
        assert!(
            std::time::Instant::now() < deadline,
            "rs2 not back at weight 4: {}",
            text(&plain(&rvsadm_exe, &run_dir, "-L -n"))
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A service for a new address on the client link: owned (ARP answered) at once.
    let vip2: std::net::Ipv4Addr = "10.1.0.101".parse().unwrap();
    text(&plain(
        &rvsadm_exe,
        &run_dir,
        &format!("-A -t {vip2}:80 -s rr"),
    ));
    text(&plain(
        &rvsadm_exe,
        &run_dir,
        &format!("-a -t {vip2}:80 -r {} -m", rs(3)),
    ));
    let got = spread(&lab, vip2.into(), 3);
    assert_eq!(
        got,
        [("rs3".to_string(), 3)].into(),
        "{}",
        lab.log_tail(pid)
    );
    // One on no attached link: refused with the reason, and nothing changes — also when
    // the command is repeated.
    for attempt in 0..2 {
        let o = plain(&rvsadm_exe, &run_dir, "-A -t 192.0.2.80:80 -s rr");
        assert_eq!(o.status.code(), Some(255), "attempt {attempt}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("192.0.2.80 is on no link the director is attached to ("),
            "attempt {attempt}: {err}"
        );
        let listed = text(&plain(&rvsadm_exe, &run_dir, "-L -n"));
        assert!(
            !listed.contains("192.0.2.80"),
            "attempt {attempt}: {listed}"
        );
    }
    let saved = text(&plain(&rvsadm_exe, &run_dir, "-S -n"));
    assert!(!saved.contains("192.0.2.80"), "{saved}");
    assert!(saved.contains(&format!("-A -t {vip2}:80 -s rr")), "{saved}");

    // Two daemons in the run directory: rvsadm names both and asks which.
    let other = run_dir.join("other.ctl");
    let _l = std::os::unix::net::UnixListener::bind(&other).unwrap();
    let o = plain(&rvsadm_exe, &run_dir, "-L -n");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("rvsadm: 2 rvs daemons are running (")
            && err.contains(&other.display().to_string())
            && err.contains(&run_dir.join("web.ctl").display().to_string())
            && err.contains("--control"),
        "{err}"
    );
    // --control picks one.
    let o = plain(
        &rvsadm_exe,
        &run_dir,
        &format!("--control {} -L -n", run_dir.join("web.ctl").display()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    drop(_l);
    let _ = std::fs::remove_file(&other);
    let _ = lab.stop(pid);
    // No daemon: says so.
    let o = plain(&rvsadm_exe, &run_dir, "-L -n");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("rvsadm: no rvs daemon is running"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
