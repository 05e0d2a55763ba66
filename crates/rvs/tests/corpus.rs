//! The real-world corpus: configuration files gathered from public repositories, none written
//! here, run through `rvs check-config` as a new user would run them. `SOURCES` (in
//! `crates/rvs-config/tests/data/corpus/`) names each file's repository, commit and path;
//! `EXPECT` says what the original tool does with it — each file is accepted, or refused
//! exactly where the original refuses, with that reason. For keepalived files the original
//! is asked too: `keepalived -t -f FILE` (keepalived 2.2's configuration test; exit 4 = fatal)
//! must agree with the verdict.
//!
//! The files themselves are not in this tree: the tool that fetched them keeps fetched
//! content out of the project's commits (data files may live only under the steering
//! repository's `shared/`). The test reads them from `RVS_CORPUS_DIR`, else
//! `../shared/corpus` beside the checkout; `TRIAGE.md` records the last run by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn listing_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rvs-config/tests/data/corpus")
}

fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RVS_CORPUS_DIR") {
        return Some(PathBuf::from(d));
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    shared.is_dir().then_some(shared)
}

/// `folder/name` of every file SOURCES lists.
fn sources() -> Vec<String> {
    std::fs::read_to_string(listing_dir().join("SOURCES"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// `folder/name` → (text the refusal must contain, the original's reason).
fn refusals() -> BTreeMap<String, (String, String)> {
    std::fs::read_to_string(listing_dir().join("EXPECT"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "EXPECT line {l:?}");
            assert_eq!(f[1], "refuse", "EXPECT line {l:?}");
            (f[0].to_string(), (f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

fn format_of(entry: &str) -> &'static str {
    match entry.split('/').next() {
        Some("keepalived") => "keepalived",
        Some("lvs_cf") => "lvs.cf",
        Some("ipvsadm") => "ipvsadm",
        other => panic!("unknown corpus folder {other:?}"),
    }
}

/// `keepalived -t -f FILE`'s exit status (None: keepalived is not installed).
fn keepalived_verdict(file: &Path) -> Option<i32> {
    let out = Command::new("keepalived")
        .args(["-t", "-n", "-l", "-f"])
        .arg(file)
        .output()
        .ok()?;
    out.status.code()
}

#[test]
fn expectations_name_corpus_files() {
    let all = sources();
    assert!(all.len() >= 40, "the corpus lists {} files", all.len());
    for name in refusals().keys() {
        assert!(
            all.contains(name),
            "EXPECT names {name}, which SOURCES does not list"
        );
    }
}

#[test]
fn every_corpus_file_runs_as_under_the_original() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "NOTE: the corpus files are not here (set RVS_CORPUS_DIR, or place them in \
             ../shared/corpus): only SOURCES and EXPECT were checked"
        );
        return;
    };
    let refusals = refusals();
    let mut failures = Vec::new();
    let mut accepted = 0;
    let all = sources();
    for entry in &all {
        let file = dir.join(entry);
        assert!(
            file.is_file(),
            "{} is missing from the corpus",
            file.display()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_rvs"))
            .args(["check-config", "--format", format_of(entry)])
            .arg(&file)
            .output()
            .expect("rvs runs");
        let err = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        match refusals.get(entry) {
            Some((text, why)) => {
                if code != 1 || !err.contains(text.as_str()) {
                    failures.push(format!(
                        "{entry}: the original refuses it ({why}); rvs must refuse with \
                         {text:?}, but exit {code}:\n{err}"
                    ));
                }
            }
            None => {
                if code == 0 {
                    accepted += 1;
                } else {
                    failures.push(format!(
                        "{entry}: the original runs it; rvs exit {code}:\n{err}"
                    ));
                }
                if format_of(entry) == "keepalived"
                    && let Some(k) = keepalived_verdict(&file)
                {
                    assert_ne!(
                        k, 4,
                        "{entry}: keepalived -t calls it fatal, EXPECT says accept"
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files accepted ({} refused as the original refuses); {} wrong:\n\n{}",
        accepted,
        all.len(),
        refusals.len(),
        failures.len(),
        failures.join("\n")
    );
}
