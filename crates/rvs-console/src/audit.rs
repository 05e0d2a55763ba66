//! The audit log: one JSON object a line, appended (`O_APPEND`, mode 0600) for every
//! login and every change, and echoed on the console's stderr.

use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// UTC, RFC 3339.
    pub time: String,
    /// The user (`token:NAME` for an API token; the name tried for a failed login).
    pub user: String,
    /// The client's address and port.
    pub source: String,
    /// `login`, `logout`, `ready`, `drain`, `maint`, `weight`.
    pub action: String,
    /// What it acted on (`TCP 10.0.0.1:80 -> 10.0.0.2:80`), empty for a login.
    pub object: String,
    /// The real server's rule before (`-a ... -w 1`, or `absent`).
    pub before: String,
    /// And after.
    pub after: String,
    /// `ok`, or why it was refused or failed.
    pub result: String,
}

/// The open log.
pub struct Audit {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Audit {
    /// Open (create) `path` for appending; its directory is created.
    pub fn open(path: &Path) -> io::Result<Audit> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Audit {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Append `r` (one write of one line) and echo it on stderr.
    pub fn record(&self, r: &Record) {
        let mut line = serde_json::to_string(r).unwrap_or_default();
        line.push('\n');
        eprint!("rvs console: audit: {line}");
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            eprintln!("rvs console: audit log {}: {e}", self.path.display());
        }
    }

    /// The last `n` records, newest first (lines that do not parse are skipped).
    pub fn tail(&self, n: usize) -> Vec<Record> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str(l).ok())
            .take(n)
            .collect()
    }
}
