//! Configuration editing (admin): the daemon's file as text, checked with rvs's own parser
//! (what `rvs check-config` runs, through [`Control::check_config`]), shown as a unified
//! diff, then applied: the previous version kept, the new text written atomically in the
//! same file (its own format: the text is what the admin wrote, comments and order
//! included; an lvs.cf `serial_no` is incremented as Piranha's tool did), and the daemon
//! told to reload. An edit made against an older version of the file (it changed since the
//! form was loaded) is refused; a reload the daemon refuses puts the previous file back.
//!
//! Piranha's per-panel forms ([`crate::panels`]) produce a new text and take this path too.

use crate::Control;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file being edited and where its previous versions go.
pub struct ConfigStore {
    path: PathBuf,
    versions: PathBuf,
    /// One apply at a time.
    busy: Mutex<()>,
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The file changed since `version` was read.
    Conflict(String),
    /// The parser's diagnostics (file:line:column).
    Invalid(String),
    /// Reading, writing, or the daemon.
    Failed(String),
}

impl Refusal {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Conflict(m) | Refusal::Invalid(m) | Refusal::Failed(m) => m,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// The diff applied.
    pub diff: String,
    /// The version before (its digest).
    pub before: String,
    /// The version now.
    pub after: String,
    /// The previous text's file in the versions directory.
    pub saved: String,
    /// The daemon's answer to the reload.
    pub reload: String,
}

/// The version of a text: the first 16 hex digits of its SHA-256.
pub fn version_of(text: &str) -> String {
    crate::users::hex(&Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// A unified diff of `old` → `new` (empty when equal).
pub fn diff(name: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// lvs.cf's `serial_no = N` (the first one): its value.
pub fn serial_of(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("serial_no")?;
        rest.trim_start().strip_prefix('=')?.trim().parse().ok()
    })
}

/// lvs.cf's `serial_no = N` set to one more than N and `floor` (the file's serial before
/// the edit, so a rollback still counts up, as Piranha's tool counted every write); text
/// without one is unchanged.
pub fn bump_serial(text: &str, floor: u64) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if !done
            && let Some(rest) = t.strip_prefix("serial_no")
            && let Some(v) = rest.trim_start().strip_prefix('=')
            && let Ok(n) = v.trim().parse::<u64>()
        {
            let indent = &line[..line.len() - t.len()];
            let nl = if line.ends_with('\n') { "\n" } else { "" };
            out.push_str(&format!("{indent}serial_no = {}{nl}", n.max(floor) + 1));
            done = true;
        } else {
            out.push_str(line);
        }
    }
    out
}

impl ConfigStore {
    /// Edit `path`, keeping previous versions in `versions`.
    pub fn new(path: PathBuf, versions: PathBuf) -> ConfigStore {
        ConfigStore {
            path,
            versions,
            busy: Mutex::new(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .map_or("config".into(), |n| n.to_string_lossy().into_owned())
    }

    /// The text and its version.
    pub fn read(&self) -> io::Result<(String, String)> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
        let v = version_of(&text);
        Ok((text, v))
    }

    /// A file beside the real one (same directory, so relative includes resolve alike;
    /// same name ending, so the format is detected alike) holding `text`.
    fn stage(&self, text: &str) -> io::Result<PathBuf> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".rvs-console-{}-{}.{}",
            std::process::id(),
            crate::users::random_hex(4),
            self.name()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(tmp)
    }

    /// Check `text` with rvs's parser: its effective configuration, or the diagnostics
    /// (naming the real file).
    pub fn validate(&self, control: &dyn Control, text: &str) -> Result<String, String> {
        let tmp = self
            .stage(text)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let r = control.check_config(&tmp);
        let _ = std::fs::remove_file(&tmp);
        let fix = |s: String| s.replace(&*tmp.to_string_lossy(), &self.path.to_string_lossy());
        r.map(fix).map_err(fix)
    }

    /// Validate `text` and, unless the file is no longer at `base`, make it the file and
    /// reload the daemon.
    pub fn apply(&self, control: &dyn Control, text: &str, base: &str) -> Result<Applied, Refusal> {
        let _one = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let failed = |e: io::Error| Refusal::Failed(e.to_string());
        let (old, current) = self.read().map_err(failed)?;
        if current != base {
            return Err(Refusal::Conflict(format!(
                "{} changed since it was loaded (version {base}, now {current}): load it again and redo the edit",
                self.path.display()
            )));
        }
        let text = text.replace("\r\n", "\n");
        let new = if text == old {
            text
        } else {
            bump_serial(&text, serial_of(&old).unwrap_or(0))
        };
        self.validate(control, &new).map_err(Refusal::Invalid)?;
        let saved = self.keep(&old).map_err(failed)?;
        let tmp = self.stage(&new).map_err(failed)?;
        copy_mode(&self.path, &tmp);
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed(e)
        })?;
        match control.request("reload") {
            Ok(msg) => Ok(Applied {
                diff: diff(&self.name(), &old, &new),
                before: current,
                after: version_of(&new),
                saved,
                reload: msg.trim_end().to_string(),
            }),
            Err(e) => {
                // The daemon runs the old file still: put it back.
                let back = self
                    .stage(&old)
                    .and_then(|t| std::fs::rename(&t, &self.path));
                Err(Refusal::Failed(format!(
                    "the daemon refused the reload ({e}); the previous file {}",
                    if back.is_ok() {
                        "is back"
                    } else {
                        "could NOT be put back"
                    }
                )))
            }
        }
    }

    /// Keep `text` in the versions directory: its file name there.
    fn keep(&self, text: &str) -> io::Result<String> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.versions)?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("{secs:011}-{}-{}", version_of(text), self.name());
        let path = self.versions.join(&name);
        if !path.exists() {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        Ok(name)
    }

    /// The kept versions, newest first.
    pub fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.versions)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| valid_version_name(n))
            .collect();
        v.sort();
        v.reverse();
        v
    }

    /// A kept version's text (`name` as [`ConfigStore::versions`] lists it).
    pub fn version_text(&self, name: &str) -> Result<String, String> {
        if !valid_version_name(name) {
            return Err(format!("no version {name:?}"));
        }
        std::fs::read_to_string(self.versions.join(name))
            .map_err(|_| format!("no version {name:?}"))
    }
}

/// `SECONDS-VERSION-NAME` with no path in it.
fn valid_version_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && !n.starts_with('.')
        && n.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Give `to` the permissions of `from` (the file keeps its mode across the rename).
fn copy_mode(from: &Path, to: &Path) {
    if let Ok(m) = std::fs::metadata(from) {
        let _ = std::fs::set_permissions(to, m.permissions());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_no_is_incremented_once() {
        assert_eq!(
            bump_serial("# c\nserial_no = 41\nprimary = 1.2.3.4\n", 0),
            "# c\nserial_no = 42\nprimary = 1.2.3.4\n"
        );
        assert_eq!(bump_serial("serial_no = 3\n", 7), "serial_no = 8\n");
        assert_eq!(bump_serial("primary = 1.2.3.4", 5), "primary = 1.2.3.4");
        assert_eq!(serial_of("a = 1\n  serial_no= 9\n"), Some(9));
    }

    #[test]
    fn diffs_are_unified() {
        let d = diff("lvs.cf", "a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(
            d,
            "--- a/lvs.cf\n+++ b/lvs.cf\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(diff("x", "a\n", "a\n"), "");
    }

    #[test]
    fn version_names_hold_no_path() {
        assert!(valid_version_name("01796672412-0123456789abcdef-lvs.cf"));
        assert!(!valid_version_name("../etc/shadow"));
        assert!(!valid_version_name("1/../../x"));
        assert!(!valid_version_name(".hidden"));
    }
}
