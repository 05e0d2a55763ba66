//! `rvs convert` keeps a configuration's whole meaning or refuses, naming each loss.
//!
//! The round trip walks every configuration file under `crates/rvs-config/tests/data`
//! and the real-world corpus (`RVS_CORPUS_DIR`): each file loads, or is refused where it is
//! listed as refused (`REFUSED`, `broken/` folders, the corpus's `EXPECT`) — a file that
//! fails otherwise fails the test. For each file A that loads, and each target format B,
//! A → B either names its losses, or B read back
//! means what A means and B → A → read back means it too — compared on the full effective
//! configuration ([`rvs::load::meaning`]: model, health, failover, names, owned addresses),
//! not on text. Writing a file in its own format and in the native TOML never loses
//! anything but what no format carries (lvs.cf's inactive virtuals).

use std::path::{Path, PathBuf};
use std::process::Command;

use rvs::load::{Format, Loaded, convert, differences, load, load_text, meaning, preflight};

const FORMATS: [Format; 4] = [
    Format::Toml,
    Format::Keepalived,
    Format::LvsCf,
    Format::Ipvsadm,
];

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rvs-config/tests/data")
}

/// Every file under `dir`, recursively, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The real-world corpus (see tests/corpus.rs), where it is: `RVS_CORPUS_DIR`, else
/// `../shared/corpus` beside the checkout. Its files cannot be committed here.
fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RVS_CORPUS_DIR") {
        return Some(PathBuf::from(d));
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    shared.is_dir().then_some(shared)
}

/// Files under the tests' data that are not configurations (listings, notes, rule sets
/// and include fragments read only through another file).
const NOT_CONFIGS: &[&str] = &[
    "corpus/",
    "netfilter/",
    "keepalived/dpvs/README",
    "keepalived/include/conf.d/ignored.txt",
    "keepalived/include/servers.inc",
];

/// Configurations under the tests' data that rvs refuses on purpose (besides every file in
/// a `broken/` folder), with the text the refusal must contain.
const REFUSED: &[(&str, &str)] = &[
    ("keepalived/cycle/a.conf", "include cycle"),
    ("keepalived/cycle/b.conf", "include cycle"),
    // Both keep nothing to run once keepalived's leniency has skipped the bad item.
    (
        "keepalived/lenient/bad_address.conf",
        "defines no virtual service address",
    ),
    (
        "keepalived/lenient/port_out_of_range.conf",
        "defines no virtual service address",
    ),
    // Host and service names: resolved through the system by check-config and the daemon;
    // `load` here resolves none, as ipvsadm without a resolver.
    (
        "names/saved_with_names.rules",
        "illegal virtual server address",
    ),
];

/// The corpus's `EXPECT`: `folder/name` → the text a refusal must contain.
fn corpus_refusals() -> Vec<(String, String)> {
    std::fs::read_to_string(data().join("corpus/EXPECT"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

/// Load `file`; a refusal is allowed only where `expected` names it (the text it must
/// contain), and an expected refusal must happen: nothing is dropped from the round trip
/// without a word.
fn load_as_expected(
    file: &Path,
    name: &str,
    format: Option<Format>,
    expected: Option<&str>,
) -> Option<Loaded> {
    // What the daemon and check-config take (rvs::load::admit without this host's MARK
    // rules and names): the file read, then the preflight refusal of nothing to run.
    let got = load(file, format)
        .map_err(|d| rvs_config::render_all(&d))
        .and_then(|l| preflight(&l).map(|()| l));
    match (got, expected) {
        (Ok(l), None) => Some(l),
        (Ok(_), Some(want)) => panic!("{name} loads, but is listed as refused ({want:?})"),
        (Err(text), Some(want)) => {
            assert!(
                text.contains(want),
                "{name}: refused, but not for {want:?}:\n{text}"
            );
            None
        }
        (Err(text), None) => panic!(
            "{name} does not load (list it as refused, with the reason, if that is right):\n{text}"
        ),
    }
}

/// The configurations rvs accepts, with how each was read: the files under the tests'
/// data, and the corpus's (read in its folder's format) where the corpus is. A file that
/// does not load fails the test unless it is listed as refused (`REFUSED`, `broken/`
/// folders, the corpus's `EXPECT`).
fn accepted() -> Vec<(PathBuf, Loaded)> {
    let mut files = Vec::new();
    walk(&data(), &mut files);
    let mut out = Vec::new();
    for f in files {
        let name = f.strip_prefix(data()).unwrap().display().to_string();
        if NOT_CONFIGS.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let expected = if name.split('/').any(|part| part == "broken") {
            Some("")
        } else {
            REFUSED.iter().find(|(n, _)| *n == name).map(|(_, w)| *w)
        };
        out.extend(load_as_expected(&f, &name, None, expected).map(|l| (f, l)));
    }
    if let Some(dir) = corpus_dir() {
        let refusals = corpus_refusals();
        let before = out.len();
        for (folder, format) in [
            ("keepalived", Format::Keepalived),
            ("lvs_cf", Format::LvsCf),
            ("ipvsadm", Format::Ipvsadm),
        ] {
            let mut files = Vec::new();
            walk(&dir.join(folder), &mut files);
            for f in files {
                let name = format!("{folder}/{}", f.file_name().unwrap().to_string_lossy());
                let expected = refusals
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, w)| w.as_str());
                out.extend(load_as_expected(&f, &name, Some(format), expected).map(|l| (f, l)));
            }
        }
        assert!(
            out.len() - before >= 40,
            "the corpus at {} gives {} files",
            dir.display(),
            out.len() - before
        );
    }
    out
}

fn read_back(text: &str, format: Format, what: &str) -> Loaded {
    load_text(Path::new(what), text, format).unwrap_or_else(|d| {
        panic!(
            "{what} does not read back:\n{}\n{text}",
            rvs_config::render_all(&d)
        )
    })
}

#[test]
fn every_file_round_trips_through_every_format_or_names_its_losses() {
    let files = accepted();
    assert!(
        files.len() >= 40,
        "the samples are found ({} files)",
        files.len()
    );
    let mut kept = 0;
    let mut refused = 0;
    for (path, a) in &files {
        let name = path
            .strip_prefix(data())
            .unwrap_or(path)
            .display()
            .to_string();
        for b in FORMATS {
            let what = format!("{name} -> {}", b.name());
            let there = convert(a, b);
            if b == Format::Toml || b == a.format {
                // What no format carries is the only loss allowed here.
                assert_eq!(there.losses, a.uncarried, "{what}");
            }
            if !there.losses.is_empty() {
                refused += 1;
                assert!(
                    there.losses.iter().all(|l| l.len() > 10),
                    "{what}: each loss is a sentence: {:?}",
                    there.losses
                );
                continue;
            }
            kept += 1;
            let lb = read_back(&there.text, b, &what);
            assert_eq!(
                differences(&meaning(a), &meaning(&lb)),
                Vec::<&str>::new(),
                "{what}"
            );
            assert_eq!(meaning(&lb), meaning(a), "{what}\n{}", there.text);
            let what_back = format!("{what} -> {}", a.format.name());
            let back = convert(&lb, a.format);
            assert_eq!(back.losses, Vec::<String>::new(), "{what_back}");
            let aa = read_back(&back.text, a.format, &what_back);
            assert_eq!(meaning(&aa), meaning(a), "{what_back}\n{}", back.text);
        }
    }
    // Both outcomes occur: the test exercises writers, not only refusals.
    assert!(kept >= files.len() * 2, "{kept} kept, {refused} refused");
    assert!(refused > 0);
}

fn rvs(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
        .args(args)
        .current_dir(data())
        .output()
        .expect("rvs runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_nat_lvs_cf_to_ipvsadm_is_refused_naming_the_nat_router() {
    let (code, out, err) = rvs(&["convert", "--to", "ipvsadm", "nat_two_tier.cf"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(
            "the NAT router 10.11.12.10/24 on eth1:1: the real servers' gateway, which ipvsadm \
             rules do not bring up"
        ),
        "{err}"
    );
    // Every other loss is named too: pulse, health, names, the VIP.
    for what in [
        "pulse's heartbeat (primary 192.168.26.9 backup 192.168.26.8)",
        "health monitoring -t 192.168.26.10:80 -r 10.11.12.1:80",
        "is named `http`",
        "VIP 192.168.26.10/24 on eth0:1",
        "nothing written; --lossy writes it without them",
    ] {
        assert!(err.contains(what), "{what}: {err}");
    }

    let (code, out, err) = rvs(&["convert", "--lossy", "--to", "ipvsadm", "nat_two_tier.cf"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: written with --lossy"), "{err}");
    assert!(err.contains("the NAT router 10.11.12.10/24"), "{err}");
    assert!(out.contains("-A -t 192.168.26.10:80 -s wlc\n"), "{out}");
    assert!(
        out.contains("-a -t 192.168.26.10:80 -r 10.11.12.1:80 -m -w 1\n"),
        "{out}"
    );
}

#[test]
fn keepalived_to_keepalived_keeps_each_vrrp_instance() {
    let file = "keepalived/samples/keepalived.conf.vrrp";
    let (code, out, err) = rvs(&["convert", "--to", "keepalived", file]);
    assert_eq!(code, 0, "{err}");
    let a = load(&data().join(file), None).unwrap();
    let rvs_config::FailoverMode::Vrrp(v) = &a.failover.mode else {
        panic!("{:?}", a.failover.mode)
    };
    assert!(v.instances.len() >= 2);
    let back = read_back(&out, Format::Keepalived, "converted");
    assert_eq!(meaning(&back), meaning(&a));
    // Each instance with its own state and priority, as the sample has them.
    for i in &v.instances {
        let block = out
            .split(&format!("vrrp_instance {} {{", i.name))
            .nth(1)
            .unwrap_or_else(|| panic!("{} written:\n{out}", i.name));
        let block = &block[..block.find("\n}").unwrap()];
        assert!(
            block.contains(&format!("priority {}", i.router.priority)),
            "{block}"
        );
    }
    assert!(
        out.contains("state MASTER") && out.contains("state BACKUP"),
        "{out}"
    );
}

#[test]
fn keepalived_to_toml_keeps_failover_and_sync() {
    for (file, tables) in [
        (
            "keepalived/samples/keepalived.conf.vrrp.lvs_syncd",
            &[
                "[[vrrp_instance]]",
                "[sync]\ninterface = \"eth1\"\nsyncid = 51\n",
            ][..],
        ),
        (
            "keepalived/samples/keepalived.conf.vrrp.sync",
            &["[[vrrp_instance]]", "[[vrrp_sync_group]]"][..],
        ),
    ] {
        let (code, out, err) = rvs(&["convert", "--to", "toml", file]);
        assert_eq!(code, 0, "{err}");
        for table in tables {
            assert!(out.contains(table), "{file}: {table}:\n{out}");
        }
        let a = load(&data().join(file), None).unwrap();
        assert_ne!(a.failover, rvs_config::FailoverConfig::default());
        assert_eq!(
            meaning(&read_back(&out, Format::Toml, "t.toml")),
            meaning(&a)
        );
    }
}

#[test]
fn lvs_cf_through_toml_keeps_pulse_names_and_inactive_servers() {
    let (code, toml, err) = rvs(&["convert", "--to", "toml", "nat_two_tier.cf"]);
    assert_eq!(code, 0, "{err}");
    assert!(toml.contains("[pulse]\nprimary = \"192.168.26.9\"\nbackup = \"192.168.26.8\"\n"));
    assert!(
        toml.contains("keepalive = 6\ndeadtime = 18\nbackup_active = true\n"),
        "{toml}"
    );
    assert!(toml.contains("name = \"http\""), "{toml}");
    let dir = std::env::temp_dir().join(format!("rvs-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("web.toml");
    std::fs::write(&t, &toml).unwrap();
    let (code, cf, err) = rvs(&["convert", "--to", "lvs.cf", t.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "{err}");
    for line in [
        "primary = 192.168.26.9\n",
        "backup = 192.168.26.8\n",
        "backup_active = 1\nheartbeat = 1\nheartbeat_port = 539\n",
        "keepalive = 6\ndeadtime = 18\n",
        "virtual http {\n",
        "    server web1 {\n",
    ] {
        assert!(cf.contains(line), "{line:?}:\n{cf}");
    }

    // An inactive server survives lvs.cf -> TOML -> lvs.cf in its place.
    let cf_in = "network = direct\nvirtual web {\n active = 1\n address = 10.1.0.100 eth0:1\n \
                 port = 80\n server a { address = 10.2.0.11\n active = 1 }\n \
                 server spare { address = 10.2.0.12\n active = 0\n weight = 3 }\n \
                 server rs3 { address = 10.2.0.13\n active = 1 }\n}\n";
    let a = read_back(cf_in, Format::LvsCf, "in.cf");
    let t = convert(&a, Format::Toml);
    assert_eq!(t.losses, Vec::<String>::new());
    assert!(
        t.text.contains(
            "name = \"spare\"\n  active = false\n  address = \"10.2.0.12\"\n  port = 80\n  weight = 3\n"
        ),
        "{}",
        t.text
    );
    let back = convert(&read_back(&t.text, Format::Toml, "t.toml"), Format::LvsCf);
    assert_eq!(back.losses, Vec::<String>::new());
    assert!(
        back.text.contains(
            "    server spare {\n        address = 10.2.0.12\n        active = 0\n        \
             port = 80\n        weight = 3\n    }\n    server rs3 {"
        ),
        "{}",
        back.text
    );
}

#[test]
fn vrrp_to_lvs_cf_and_pulse_to_keepalived_are_refused() {
    let (code, _, err) = rvs(&[
        "convert",
        "--to",
        "lvs.cf",
        "keepalived/samples/keepalived.conf.vrrp",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "vrrp_instance `VI_1` (virtual_router_id 51 on eth0): lvs.cf fails over by pulse's \
             heartbeat"
        ),
        "{err}"
    );
    let (code, _, err) = rvs(&["convert", "--to", "keepalived", "nat_two_tier.cf"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "pulse's heartbeat (primary 192.168.26.9 backup 192.168.26.8): keepalived.conf \
             fails over by VRRP"
        ),
        "{err}"
    );
}

#[test]
fn check_config_prints_failover_health_and_names() {
    let (code, out, err) = rvs(&["check-config", "nat_two_tier.cf"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "# rvs: failover pulse primary 192.168.26.9 backup 192.168.26.8 port 539 keepalive 6s \
         deadtime 18s\n",
        "# rvs: name -t 192.168.26.10:80 http\n",
        "# rvs: health -t 192.168.26.10:80 -r 10.11.12.1:80 ",
        "# rvs: nat router 10.11.12.10\n",
    ] {
        assert!(out.contains(line), "{line:?}:\n{out}");
    }
}

/// Every VRRP key the daemon acts on, through keepalived.conf -> TOML -> keepalived.conf.
#[test]
fn every_vrrp_key_survives_toml_and_keepalived() {
    let ka = "global_defs {\n    lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8850 ttl 2 group 239.1.1.1\n}\n\
vrrp_script chk_web {\n    script \"/usr/bin/curl -sf http://127.0.0.1/\"\n    interval 2\n    timeout 1.5\n    \
weight -20\n    rise 3\n    fall 2\n    user nobody\n    init_fail\n}\n\
vrrp_script chk_up {\n    script /bin/true\n    weight 10 reverse\n}\n\
vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    \
advert_int 2\n    preempt_delay 30\n    no_accept\n    authentication {\n        auth_type PASS\n        \
auth_pass s3cret\n    }\n    unicast_src_ip 10.1.0.2\n    unicast_peer {\n        10.1.0.3\n        \
10.1.0.4\n    }\n    check_unicast_src\n    virtual_ipaddress {\n        10.1.0.100/24\n        \
10.2.0.254/24 dev eth1 label eth1:1 scope link\n    }\n    virtual_ipaddress_excluded {\n        \
10.3.0.1/32 dev eth2\n    }\n    track_interface {\n        eth1 weight -30\n        eth2 weight 5 reverse\n    }\n    \
track_script {\n        chk_web\n        chk_up weight 7\n    }\n    notify_master \"/etc/rvs/master.sh a\"\n    \
notify_backup /etc/rvs/backup.sh\n    notify_fault /etc/rvs/fault.sh\n    notify_stop /etc/rvs/stop.sh\n    \
notify /etc/rvs/notify.sh\n    garp_master_delay 3\n    garp_master_repeat 2\n    garp_master_refresh 60\n    \
garp_master_refresh_repeat 3\n    garp_lower_prio_delay 4\n    garp_lower_prio_repeat 6\n    \
lower_prio_no_advert\n    higher_prio_send_advert\n    skip_check_adv_addr\n    use_vmac vrrp51\n}\n\
vrrp_instance VI_2 {\n    state BACKUP\n    interface eth0\n    dont_track_primary\n    virtual_router_id 52\n    \
priority 90\n    nopreempt\n    virtual_ipaddress {\n        fd00::100/64\n    }\n}\n\
vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n    notify_master /etc/rvs/g.sh\n}\n";
    let a = read_back(ka, Format::Keepalived, "ka.conf");
    let rvs_config::FailoverMode::Vrrp(v) = &a.failover.mode else {
        panic!("{:?}", a.failover.mode)
    };
    assert_eq!(v.instances.len(), 2);
    assert_eq!(v.scripts.len(), 2);
    assert_eq!(v.sync_groups.len(), 1);
    let s = a.failover.sync.as_ref().unwrap();
    assert_eq!((s.syncid, s.maxlen, s.port, s.ttl), (7, 1400, 8850, 2));
    for b in [Format::Toml, Format::Keepalived] {
        let there = convert(&a, b);
        assert_eq!(there.losses, Vec::<String>::new(), "{}", there.text);
        let lb = read_back(&there.text, b, "b");
        assert_eq!(meaning(&lb), meaning(&a), "{}", there.text);
        let back = convert(&lb, Format::Keepalived);
        assert_eq!(back.losses, Vec::<String>::new());
        assert_eq!(
            meaning(&read_back(&back.text, Format::Keepalived, "a")),
            meaning(&a)
        );
    }
    // To lvs.cf and ipvsadm, each instance is named as a loss.
    for b in [Format::LvsCf, Format::Ipvsadm] {
        let there = convert(&a, b);
        for name in ["VI_1", "VI_2"] {
            assert!(
                there
                    .losses
                    .iter()
                    .any(|l| l.contains(&format!("vrrp_instance `{name}`"))),
                "{:?}",
                there.losses
            );
        }
        assert!(
            there.losses.iter().any(|l| l.contains("connection sync")),
            "{:?}",
            there.losses
        );
    }
}

/// lvs.cf `service = fos`: lvs.cf and the native TOML carry the failover services (each
/// field of them, the heartbeat with them) and read back to the same meaning both ways;
/// keepalived.conf and ipvsadm rules cannot, and say why.
#[test]
fn failover_services_go_through_toml_and_lvs_cf_and_are_refused_elsewhere() {
    let text = "service = fos\nprimary = 10.1.0.2\nbackup = 10.1.0.3\nbackup_active = 1\n\
                heartbeat = 1\nkeepalive = 3\ndeadtime = 9\n\
                failover web {\n active = 1\n address = 10.1.0.100 eth0:1\n \
                vip_nmask = 255.255.255.0\n port = 8080\n send = \"HEAD / HTTP/1.0\\r\\n\\r\\n\"\n \
                expect = \"HTTP/1.\"\n timeout = 4\n start_cmd = \"/sbin/service httpd start\"\n \
                stop_cmd = \"/sbin/service  httpd stop\"\n}\n\
                failover dns {\n active = 1\n address = 10.1.0.101 eth0:2\n port = 53\n \
                protocol = udp\n send_program = \"/usr/bin/dig @%h -p %p\"\n expect = \"ok\"\n \
                start_cmd = \"/sbin/named\"\n}\n\
                failover spare {\n active = 0\n address = 10.1.0.102 eth0:3\n}\n";
    let a = read_back(text, Format::LvsCf, "fos.cf");
    let spare = "failover `spare`, which fos skips (inactive or without an address): rvs keeps \
                 only the failover services it runs";
    assert_eq!(a.uncarried, [spare]);
    for to in [Format::Toml, Format::LvsCf] {
        let there = convert(&a, to);
        assert_eq!(there.losses, [spare], "{}", to.name());
        let b = read_back(&there.text, to, "there");
        assert_eq!(meaning(&b), meaning(&a), "{}\n{}", to.name(), there.text);
        // And back to lvs.cf: the same again.
        let back = convert(&b, Format::LvsCf);
        let aa = read_back(&back.text, Format::LvsCf, "back.cf");
        assert_eq!(meaning(&aa), meaning(&a), "{}\n{}", to.name(), back.text);
    }
    let toml = convert(&a, Format::Toml).text;
    for part in [
        "[[failover_service]]\nname = \"web\"\naddress = \"10.1.0.100/24\"\ndevice = \"eth0\"\n\
         label = \"eth0:1\"\nport = 8080\nprotocol = \"tcp\"\n\
         start_cmd = [\"/sbin/service\", \"httpd\", \"start\"]\n\
         stop_cmd = [\"/sbin/service\", \"\", \"httpd\", \"stop\"]\n",
        "[pulse]\nprimary = \"10.1.0.2\"\nbackup = \"10.1.0.3\"\n",
    ] {
        assert!(toml.contains(part), "{part}\n{toml}");
    }
    assert!(!toml.contains("[[vip]]"), "{toml}");
    for (to, why) in [
        (
            Format::Keepalived,
            "keepalived.conf cannot carry them (keepalived moves",
        ),
        (
            Format::Ipvsadm,
            "ipvsadm rules cannot carry them (they hold the IPVS table",
        ),
    ] {
        let c = convert(&a, to);
        let want = format!("failover services (`service = fos`: web, dns): {why}");
        assert!(
            c.losses.iter().any(|x| x.starts_with(&want)),
            "{}: {:?}",
            to.name(),
            c.losses
        );
    }
}
