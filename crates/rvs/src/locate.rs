//! Finding the running daemon's control socket, for `rvsadm`, `rvs list` and `rvs reload`.
//!
//! ipvsadm needs no address: there is one kernel table. rvs may run several daemons on one
//! host (one per configuration file, each with its own socket), so a client takes, in order:
//! `--control PATH`; the `RVS_CONTROL` environment variable; else the one live control socket
//! in the run directory (`RVS_RUN_DIR`, default `/run/rvs`), where `rvs daemon` puts its
//! socket unless told otherwise (`<run dir>/<config file stem>.ctl`). With none live it says
//! no daemon runs; with several it names them and asks for `--control`. A socket file that
//! nobody listens on (a daemon killed with SIGKILL) does not count.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The run directory without `RVS_RUN_DIR`.
pub const DEFAULT_RUN_DIR: &str = "/run/rvs";

/// Where daemons put their control sockets by default: `RVS_RUN_DIR`, else `/run/rvs`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("RVS_RUN_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_RUN_DIR), PathBuf::from)
}

/// The control socket a daemon for `config` uses when none is given: one per configuration
/// file, so two daemons with different configurations on one host never collide.
pub fn default_control_path(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rvs".into());
    run_dir().join(format!("{stem}.ctl"))
}

/// The control socket a client should use: `explicit` (`--control`), else `RVS_CONTROL`,
/// else the one live socket in [`run_dir`]. The error is a sentence for the operator.
pub fn control_socket(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("RVS_CONTROL").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    find_in(&run_dir())
}

/// The one live control socket in `dir`.
pub fn find_in(dir: &Path) -> Result<PathBuf, String> {
    let live = live_sockets(dir);
    match live.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no rvs daemon is running: no live control socket in {} \
             (start one with `rvs daemon -c FILE`, or name its socket with --control PATH \
             or RVS_CONTROL)",
            dir.display()
        )),
        several => {
            let names: Vec<String> = several.iter().map(|p| p.display().to_string()).collect();
            Err(format!(
                "{} rvs daemons are running ({}); name one with --control PATH or RVS_CONTROL",
                several.len(),
                names.join(", ")
            ))
        }
    }
}

/// The `*.ctl` sockets in `dir` that accept a connection, sorted by path.
fn live_sockets(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ctl"))
        .filter(|p| UnixStream::connect(p).is_ok())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rvs-locate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn one_live_socket_is_found_stale_and_other_files_are_not() {
        let d = temp_dir("one");
        assert!(
            find_in(&d)
                .unwrap_err()
                .starts_with("no rvs daemon is running")
        );
        // A stale socket (its listener gone) and a plain file named .ctl do not count.
        drop(UnixListener::bind(d.join("old.ctl")).unwrap());
        std::fs::write(d.join("plain.ctl"), "").unwrap();
        let err = find_in(&d).unwrap_err();
        assert!(err.contains(&d.display().to_string()), "{err}");
        let _web = UnixListener::bind(d.join("web.ctl")).unwrap();
        // A live socket without the .ctl suffix is not a daemon's.
        let _other = UnixListener::bind(d.join("web.sock")).unwrap();
        assert_eq!(find_in(&d), Ok(d.join("web.ctl")));
        let _mail = UnixListener::bind(d.join("mail.ctl")).unwrap();
        let err = find_in(&d).unwrap_err();
        assert!(err.starts_with("2 rvs daemons are running ("), "{err}");
        assert!(
            err.contains(&format!(
                "{}, {}",
                d.join("mail.ctl").display(),
                d.join("web.ctl").display()
            )),
            "{err}"
        );
        assert!(
            err.ends_with("name one with --control PATH or RVS_CONTROL"),
            "{err}"
        );
        assert_eq!(
            control_socket(Some(d.join("x.ctl"))),
            Ok(d.join("x.ctl")),
            "--control wins"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_default_socket_is_named_after_the_configuration_file() {
        assert_eq!(
            default_control_path(Path::new("/some/dir/web.cf")).file_name(),
            Some(std::ffi::OsStr::new("web.ctl"))
        );
    }
}
