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
    std::fs::write(&rules, &text).unwrap();
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
    // A rules file with a bad line changes nothing.
    std::fs::write(&rules, format!("-C\n-A -t {vip}:0\n")).unwrap();
    let o = rvsadm(&c, "-R", Some(&rules));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(ok(&c, "-S -n"), text);

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
