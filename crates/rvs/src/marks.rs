//! The director's firewall marks from its own netfilter rules, as kernel LVS gets them.
//!
//! Red Hat's documents give a fwmark virtual service its packets with `iptables -t mangle
//! -A PREROUTING ... -j MARK --set-mark N` on the director. rvs reads frames before
//! netfilter runs, so it never sees those marks; instead, at start, on reload and in
//! `rvs check-config`, it runs `iptables-save -t mangle`, `ip6tables-save -t mangle` and
//! `nft -j list ruleset` (each only if installed), reads their MARK rules
//! ([`rvs_config::netfilter`]) and adds them to the classifier after the configuration
//! file's own rules (lvs.cf `fwmark_ports`, TOML `[[fwmark_rule]]`), which therefore win
//! where both match a packet.
//!
//! Nothing is read when the configuration has no fwmark service. A tool that is not
//! installed is no error; one that fails is warned. A fwmark service whose mark no rule
//! gives is warned at its mark.

use crate::load::Loaded;
use rvs_config::netfilter::{self, Director, Ruleset};
use rvs_config::{Diagnostic, Place, Severity};
use rvs_core::model::{Family, ServiceKey};
use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one of the commands may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`add_host_marks`] read, for the daemon's log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostMarks {
    /// The commands run.
    pub read: Vec<String>,
    /// The commands not installed.
    pub missing: Vec<String>,
    /// Classifier rules added.
    pub rules: usize,
}

impl std::fmt::Display for HostMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} classifier rules from the host's MARK rules",
            self.rules
        )?;
        if !self.read.is_empty() {
            write!(f, " (read: {})", self.read.join(", "))?;
        }
        if !self.missing.is_empty() {
            write!(f, " (not installed: {})", self.missing.join(", "))?;
        }
        Ok(())
    }
}

/// One source of MARK rules.
struct Source {
    /// The program.
    program: &'static str,
    /// Its arguments.
    args: &'static [&'static str],
    /// iptables-save's family; None for nft.
    family: Option<Family>,
}

const SOURCES: &[Source] = &[
    Source {
        program: "iptables-save",
        args: &["-t", "mangle"],
        family: Some(Family::V4),
    },
    Source {
        program: "ip6tables-save",
        args: &["-t", "mangle"],
        family: Some(Family::V6),
    },
    Source {
        program: "nft",
        args: &["-j", "list", "ruleset"],
        family: None,
    },
];

/// Read this host's MARK rules for the fwmark services of `loaded`, append the classifier
/// rules they give to its configuration (after the file's own), and their warnings — and
/// one at each fwmark service no rule gives its mark — to its warnings. Does nothing when
/// there is no fwmark service.
pub fn add_host_marks(loaded: &mut Loaded) -> HostMarks {
    add_marks_with(loaded, find_program, run)
}

/// Why a program gave no output: what happened, and its first line on stderr.
type Failure = (String, String);

/// [`add_host_marks`] with programs found by `find` and run by `run` (program path,
/// arguments → stdout, or why it failed).
fn add_marks_with(
    loaded: &mut Loaded,
    find: impl Fn(&str) -> Option<PathBuf>,
    mut run: impl FnMut(&Path, &[&str]) -> Result<String, Failure>,
) -> HostMarks {
    let mut summary = HostMarks::default();
    let services: Vec<(u32, Family)> = loaded
        .config
        .services
        .iter()
        .filter_map(|s| match s.key {
            ServiceKey::Fwmark { mark, family } => Some((mark, family)),
            ServiceKey::Addr { .. } => None,
        })
        .collect();
    if services.is_empty() {
        return summary;
    }
    let marks: Vec<u32> = services.iter().map(|(m, _)| *m).collect();
    let vips = vip_devices(loaded);
    let dir = Director {
        marks: &marks,
        vips: &vips,
    };
    let mut sets: Vec<Ruleset> = Vec::new();
    let mut failed = false;
    for src in SOURCES {
        let shown = format!("{} {}", src.program, src.args.join(" "));
        let Some(path) = find(src.program) else {
            summary.missing.push(src.program.to_string());
            continue;
        };
        match run(&path, src.args) {
            Ok(text) => {
                summary.read.push(shown.clone());
                sets.push(match src.family {
                    Some(f) => netfilter::parse_iptables_save(&text, &shown, f, &dir),
                    None => netfilter::parse_nft_json(&text, &shown, &dir),
                });
            }
            Err((why, stderr)) => {
                failed = true;
                // The program's own words (its first line on stderr) as the source line.
                loaded.warnings.push(Diagnostic::new(
                    &stderr,
                    &shown,
                    0..stderr.len(),
                    Severity::Warning,
                    format!(
                        "cannot read the director's MARK rules ({why}); the marks they give \
                         are not used"
                    ),
                    None,
                ));
            }
        }
    }
    let refs: Vec<&Ruleset> = sets.iter().collect();
    let (rules, compile_warnings) = netfilter::compile(&refs, &marks);
    for s in &sets {
        loaded.warnings.extend(s.warnings.iter().cloned());
    }
    loaded.warnings.extend(compile_warnings);
    summary.rules = rules.len();
    loaded.config.fwmark_rules.extend(rules);
    let placed: Vec<(u32, Family, Place)> = services
        .iter()
        .map(|(mark, family)| {
            let place = loaded
                .fwmark_places
                .iter()
                .find(|(m, _)| m == mark)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            (*mark, *family, place)
        })
        .collect();
    let sources = if failed {
        "readable iptables or nftables"
    } else {
        "iptables or nftables"
    };
    loaded.warnings.extend(netfilter::unmarked(
        &placed,
        &loaded.config.fwmark_rules,
        sources,
    ));
    summary
}

/// Each owned address and the interface its traffic arrives on: the one the file names,
/// else the one whose link holds it (None when neither is known).
fn vip_devices(loaded: &Loaded) -> Vec<(IpAddr, Option<String>)> {
    let links = rvs_sys::iface::all_addresses().unwrap_or_default();
    loaded
        .owned
        .iter()
        .map(|o| {
            let dev = o
                .device
                .clone()
                .or_else(|| crate::load::on_link(&links, o.addr));
            (o.addr, dev)
        })
        .collect()
}

/// The program's path on `PATH`, or in `/usr/sbin` and `/sbin` (where Debian puts
/// iptables and nft, often outside a user's `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Run a program with a deadline; its stdout, or what happened and its stderr's first line.
fn run(path: &Path, args: &[&str]) -> Result<String, Failure> {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot run {}: {e}", path.display()), String::new()))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Drain both pipes on threads so a large ruleset cannot block the program.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let why = format!(
                    "{} did not finish within {}s",
                    path.display(),
                    COMMAND_TIMEOUT.as_secs()
                );
                return Err((why, String::new()));
            }
            Err(e) => {
                return Err((
                    format!("waiting for {}: {e}", path.display()),
                    String::new(),
                ));
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err((
            format!("{} exited with {status}", path.display()),
            first.to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn loaded(text: &str) -> Loaded {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rvs-marks-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.cf");
        std::fs::write(&path, text).unwrap();
        let l = crate::load::load(&path, None).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        l
    }

    const CF: &str = "network = direct\nvirtual web {\n    active = 1\n    \
                      address = 10.1.0.100 eth0:1\n    fwmark = 80\n    persistent = 300\n    \
                      server a {\n        address = 10.2.0.11\n        active = 1\n    }\n}\n";

    fn installed(name: &str) -> Option<PathBuf> {
        Some(PathBuf::from(name))
    }

    const IPT: &str = "*mangle\n-A PREROUTING -d 10.1.0.100/32 -p tcp -m tcp --dport 80 -j MARK \
                       --set-xmark 0x50/0xffffffff\nCOMMIT\n";

    #[test]
    fn the_hosts_rules_follow_the_files_and_an_unmarked_service_is_warned() {
        let mut l = loaded(CF);
        let mut ran = Vec::new();
        let s = add_marks_with(
            &mut l,
            |name| (name != "ip6tables-save").then(|| PathBuf::from(name)),
            |p: &Path, args| {
                ran.push(format!("{} {}", p.display(), args.join(" ")));
                match p.to_str() {
                    Some("iptables-save") => Ok(IPT.to_string()),
                    _ => Err((
                        "/usr/sbin/nft exited with exit status: 1".to_string(),
                        "Error: x".to_string(),
                    )),
                }
            },
        );
        assert_eq!(ran, ["iptables-save -t mangle", "nft -j list ruleset"]);
        assert_eq!(s.rules, 1);
        assert_eq!(s.missing, ["ip6tables-save"]);
        assert_eq!(s.read, ["iptables-save -t mangle"]);
        assert_eq!(l.config.fwmark_rules.len(), 1);
        // The failing program is warned; the missing one and the marked service are not.
        let texts: Vec<String> = l
            .warnings
            .iter()
            .map(|w| format!("{}:{}: {} [{}]", w.path, w.line, w.message, w.source_line))
            .collect();
        assert_eq!(
            texts,
            [
                "nft -j list ruleset:1: cannot read the director's MARK rules (/usr/sbin/nft \
              exited with exit status: 1); the marks they give are not used [Error: x]"
            ]
        );

        // Nothing gives the mark: warned at `fwmark = 80`.
        let mut l = loaded(CF);
        add_marks_with(
            &mut l,
            installed,
            |_, _| Ok("*mangle\nCOMMIT\n".to_string()),
        );
        let w: Vec<&Diagnostic> = l
            .warnings
            .iter()
            .filter(|w| w.message.contains("no packet gets firewall mark 80"))
            .collect();
        assert_eq!(w.len(), 1, "{:?}", l.warnings);
        assert_eq!((w[0].line, w[0].column), (5, 14));
        assert!(
            w[0].message
                .ends_with("no iptables or nftables MARK rule for it on this host")
        );

        // When a program fails, the warning says only the readable rules were consulted.
        let mut l = loaded(CF);
        add_marks_with(&mut l, installed, |_, _| {
            Err(("x exited".to_string(), "denied".to_string()))
        });
        assert_eq!(l.warnings.len(), 4, "{:?}", l.warnings);
        assert!(
            l.warnings[3]
                .message
                .contains("no readable iptables or nftables MARK rule")
        );

        // `fwmark_ports` is enough, and comes first.
        let with_ports = CF.replace("fwmark = 80\n", "fwmark = 80\n    fwmark_ports = 443\n");
        let mut l = loaded(&with_ports);
        add_marks_with(&mut l, installed, |p: &Path, _| match p.to_str() {
            Some("iptables-save") => Ok(IPT.to_string()),
            Some("nft") => Ok(r#"{"nftables": []}"#.to_string()),
            _ => Ok("*mangle\nCOMMIT\n".to_string()),
        });
        assert_eq!(l.config.fwmark_rules[0].ports, (443, 443));
        assert!(
            !l.warnings
                .iter()
                .any(|w| w.message.contains("no packet gets"))
        );
    }

    #[test]
    fn no_fwmark_service_reads_nothing() {
        let cf = CF.replace("    fwmark = 80\n", "    port = 80\n");
        let mut l = loaded(&cf);
        let s = add_marks_with(&mut l, installed, |_, _| panic!("nothing to read"));
        assert_eq!(s, HostMarks::default());
    }

    #[test]
    fn run_gives_stdout_or_the_failure_with_its_stderr() {
        let (why, stderr) =
            run(Path::new("/bin/sh"), &["-c", "echo; echo oops >&2; exit 3"]).unwrap_err();
        assert_eq!(
            (why.as_str(), stderr.as_str()),
            ("/bin/sh exited with exit status: 3", "oops")
        );
        assert_eq!(
            run(Path::new("/bin/sh"), &["-c", "echo fine"]).unwrap(),
            "fine\n"
        );
        assert!(find_program("no-such-program-rvs").is_none());
    }
}
