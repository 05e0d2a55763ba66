//! Scripts made ready to run as keepalived makes them (lib/notify.c): the command line cut
//! into an argument vector, the user it runs as (its own `USER [GROUP]`, else `script_user`,
//! else `keepalived_script` when that user exists, else the daemon's own), a bare name found
//! on `PATH`, and `check_script_secure()`: a script that will run as root must not be
//! writable by anyone else, nor lie in a directory that is. With `enable_script_security` an
//! unsafe script is not run; without, it runs and is warned about. Piranha's commands
//! (`send_program`, `active_cmd`, `inactive_cmd`) are run by pulse and nanny through the shell
//! as root: [`Style::Shell`] keeps that.
//!
//! Every caller that runs a script — VRRP notify and track scripts, MISC_CHECK, the checkers'
//! notify and quorum scripts, Piranha's commands — goes through [`prepare`] and starts the
//! result with [`Prepared::command`]. Running, bounding and reaping are the callers' (this
//! crate's MISC_CHECK, the daemon's script runner).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub use rvs_sys::process::RunAs;

/// How a command line is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// keepalived's: cut into words (quotes and escapes as keepalived reads them) and
    /// executed without a shell, as the script's user, after the security check.
    Keepalived,
    /// Piranha's: handed to `/bin/sh -c` with the arguments appended, as the daemon's user
    /// (pulse's `system()`, nanny's `popen()`); no security check (Piranha has none).
    Shell,
}

/// The settings every keepalived-style script is prepared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Who scripts without a user of their own run as, or why they cannot run.
    pub default_user: Result<RunAs, String>,
    /// `enable_script_security`.
    pub security: bool,
    /// The daemon's own user and group.
    pub daemon: RunAs,
}

impl Policy {
    /// keepalived's default script user (`get_default_script_user()` /
    /// `set_default_script_user()`): `script_user USER [GROUP]` when given (a user or group
    /// that does not exist leaves scripts without one unrunnable); else `keepalived_script`
    /// when that user exists; else the daemon's own — except that with
    /// `enable_script_security` a missing `keepalived_script` leaves them unrunnable too.
    pub fn new(script_user: Option<&str>, security: bool) -> Policy {
        let (uid, gid) = rvs_sys::caps::ids();
        Policy::for_daemon(script_user, security, RunAs { uid, gid })
    }

    /// [`Policy::new`] for a daemon that runs (or is about to run) as `daemon`.
    pub fn for_daemon(script_user: Option<&str>, security: bool, daemon: RunAs) -> Policy {
        let default_user = match script_user.and_then(rvs_config::script::user_group) {
            Some((user, group)) => lookup(user, group),
            None => match rvs_sys::process::user_by_name("keepalived_script") {
                Ok(Some(r)) => Ok(r),
                _ if security => Err(
                    "Unable to set default user keepalived_script for script (it does not \
                     exist, and enable_script_security is set without script_user)"
                        .to_string(),
                ),
                _ => Ok(daemon),
            },
        };
        Policy {
            default_user,
            security,
            daemon,
        }
    }
}

static POLICY: RwLock<Option<Policy>> = RwLock::new(None);

/// Set the policy every later [`prepare`] uses (at start and on each reload).
pub fn set_policy(p: Policy) {
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
}

/// The policy in force: the one set, else no `script_user` and no security.
pub fn policy() -> Policy {
    POLICY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| Policy::new(None, false))
}

/// A user `USER` with group `GROUP` (default: the user's own), looked up now.
pub fn lookup(user: &str, group: Option<&str>) -> Result<RunAs, String> {
    let mut r = match rvs_sys::process::user_by_name(user) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(format!("Script user '{user}' does not exist")),
        Err(e) => return Err(format!("Unable to resolve script username '{user}': {e}")),
    };
    if let Some(g) = group {
        r.gid = match rvs_sys::process::group_by_name(g) {
            Ok(Some(gid)) => gid,
            Ok(None) => return Err(format!("Script group '{g}' does not exist")),
            Err(e) => return Err(format!("Unable to resolve script group name '{g}': {e}")),
        };
    }
    Ok(r)
}

/// A script ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// What is executed: the program, then its arguments.
    pub argv: Vec<String>,
    /// The user and group it runs as, when not the daemon's own.
    pub run_as: Option<RunAs>,
    /// Who it runs as (the daemon's ids when `run_as` is None).
    pub ids: RunAs,
    /// Its permissions are unsafe (run because `enable_script_security` is off).
    pub insecure: bool,
    /// What keepalived would log about it (path search, unsafe permissions).
    pub notes: Vec<String>,
}

impl Prepared {
    /// The command that starts it: see [`rvs_sys::process::script_command`].
    pub fn command(&self) -> std::process::Command {
        rvs_sys::process::script_command(self.argv[0].as_ref(), &self.argv[1..], self.run_as)
    }

    /// The command line for logs: the words joined with spaces.
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

/// Make `command` (with `user`, `USER [GROUP]`, and `args` appended) ready to run under
/// the current [`policy`]. An error is keepalived's reason for not running it
/// ("... - disabling").
pub fn prepare(
    command: &str,
    user: Option<&str>,
    args: &[&str],
    style: Style,
) -> Result<Prepared, String> {
    let policy = policy();
    if style == Style::Shell {
        let mut line = command.to_string();
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        return Ok(Prepared {
            argv: vec!["/bin/sh".into(), "-c".into(), line],
            run_as: None,
            ids: policy.daemon,
            insecure: false,
            notes: Vec::new(),
        });
    }
    let ids = match user.and_then(rvs_config::script::user_group) {
        Some((u, g)) => lookup(u, g)
            .map_err(|e| format!("{e}: invalid user/group for script {command} - ignoring"))?,
        None => policy.default_user.clone().map_err(|e| {
            format!("{e}: failed to set default user for script {command} - ignoring")
        })?,
    };
    let mut argv = rvs_config::script::split_words(command)
        .map_err(|e| format!("Unable to parse script '{command}' - ignoring ({e})"))?;
    if argv.is_empty() {
        return Err(format!("Unable to parse script '{command}' - ignoring"));
    }
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut notes = Vec::new();
    if !argv[0].contains('/') {
        let found = find_path(&argv[0], ids).map_err(|denied| {
            if denied {
                format!(
                    "Permissions failure for script {} in path - disabling",
                    argv[0]
                )
            } else {
                format!("Cannot find script {} in path - disabling", argv[0])
            }
        })?;
        notes.push(format!(
            "WARNING - script `{}` resolved by path search to `{}`. Please specify full path.",
            argv[0],
            found.display()
        ));
        argv[0] = found.to_string_lossy().into_owned();
    }
    let (path, insecure) = check_secure(&argv[0], ids, policy.security, &mut notes)?;
    argv[0] = path;
    Ok(Prepared {
        argv,
        run_as: (ids != policy.daemon).then_some(ids),
        ids,
        insecure,
        notes,
    })
}

/// keepalived lib/notify.c `is_executable()`.
fn is_executable(m: &std::fs::Metadata, ids: RunAs) -> bool {
    let mode = m.mode();
    (ids.uid == 0 && mode & 0o111 != 0)
        || (ids.uid == m.uid() && mode & 0o100 != 0)
        || (ids.uid != m.uid()
            && ((ids.gid == m.gid() && mode & 0o010 != 0)
                || (ids.gid != m.gid() && mode & 0o001 != 0)))
}

/// `find_path()`: the first regular file named `name` in `PATH` (or `/bin:/usr/bin`)
/// executable for `ids`; Err(true) when one was found but not executable.
fn find_path(name: &str, ids: RunAs) -> Result<PathBuf, bool> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    let mut denied = false;
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if let Ok(m) = std::fs::metadata(&p) {
            if m.is_file() && is_executable(&m, ids) {
                return Ok(p);
            }
            denied = true;
        }
    }
    Err(denied)
}

/// `check_script_secure()`: Err when the script is not to run; otherwise the path to run
/// it by (its directories resolved, its own name kept when that names the same file, as
/// keepalived rewrites it) and whether it is insecure.
fn check_secure(
    file: &str,
    ids: RunAs,
    security: bool,
    notes: &mut Vec<String>,
) -> Result<(String, bool), String> {
    use std::os::unix::fs::MetadataExt as _;
    let real = std::fs::canonicalize(file)
        .map_err(|e| format!("Script {file} cannot be accessed - {e}"))?;
    let given = Path::new(file);
    let run_path = match (
        given.parent().and_then(|d| std::fs::canonicalize(d).ok()),
        given.file_name(),
    ) {
        (Some(dir), Some(name)) => {
            let p = dir.join(name);
            let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
                (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
                _ => false,
            };
            if same(&p, &real) { p } else { real.clone() }
        }
        _ => real.clone(),
    };
    let m = std::fs::metadata(&real)
        .map_err(|_| format!("Unable to access script `{file}` - disabling"))?;
    if !is_executable(&m, ids) {
        return Err(format!(
            "WARNING - script '{file}' is not executable for uid:gid {}:{} - disabling.",
            ids.uid, ids.gid
        ));
    }
    let mode = m.permissions().mode();
    let root_setid =
        (m.uid() == 0 && mode & 0o4100 == 0o4100) || (m.gid() == 0 && mode & 0o2010 == 0o2010);
    let shown = run_path.to_string_lossy().into_owned();
    if !(ids.uid == 0 || ids.gid == 0 || root_setid) {
        return Ok((shown, false));
    }
    let mut insecure = false;
    for path in [run_path.as_path(), real.as_path()] {
        if let Some(why) = unsafe_component(path)? {
            notes.push(format!(
                "Unsafe permissions found for script '{file}'{}.{why}",
                if security { " - disabling" } else { "" }
            ));
            if security {
                return Err(notes.pop().unwrap_or_default());
            }
            insecure = true;
            break;
        }
    }
    Ok((shown, insecure))
}

/// `check_security()`: walk `/`, `/a`, `/a/b`, ... `path` without following the last
/// link; a component owned by someone other than root, or writable by a group other than
/// root's or by anyone (a directory with the sticky bit excepted) is unsafe: Ok(Some(what)).
/// A non-directory inside the path or a last component that is neither a file nor a link is
/// refused outright.
fn unsafe_component(path: &Path) -> Result<Option<String>, String> {
    let mut prefix = PathBuf::new();
    let comps: Vec<_> = path.components().collect();
    for (k, c) in comps.iter().enumerate() {
        prefix.push(c);
        let last = k + 1 == comps.len();
        let m = std::fs::symlink_metadata(&prefix).map_err(|_| {
            format!(
                "check_script_secure could not find script '{}' - disabling",
                path.display()
            )
        })?;
        let ft = m.file_type();
        if (!last && !ft.is_dir()) || (last && !ft.is_file() && !ft.is_symlink()) {
            return Err(format!(
                "Wrong file type found in script path '{}'.",
                path.display()
            ));
        }
        let mode = m.mode();
        let sticky_dir = ft.is_dir() && mode & 0o1000 != 0;
        let writable = (m.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0;
        if m.uid() != 0 || ((!sticky_dir && !ft.is_symlink()) && writable) {
            return Ok(Some(format!(
                " ({} is owned by uid {} with mode {:o})",
                prefix.display(),
                m.uid(),
                mode & 0o7777
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rvs-script-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn argv_without_a_shell_and_path_search() {
        let p = prepare("true 'a b' c", None, &["X", "Y"], Style::Keepalived).unwrap();
        assert!(p.argv[0].ends_with("/true"), "{:?}", p.argv);
        assert_eq!(&p.argv[1..], ["a b", "c", "X", "Y"]);
        assert!(
            p.notes[0].contains("resolved by path search"),
            "{:?}",
            p.notes
        );
        let p = prepare("/bin/echo hi; exit 1", None, &[], Style::Shell).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "/bin/echo hi; exit 1"]);
        assert!(
            prepare("no-such-script-rvs", None, &[], Style::Keepalived)
                .unwrap_err()
                .starts_with("Cannot find script no-such-script-rvs in path")
        );
        assert!(
            prepare(
                "/bin/true",
                Some("no-such-user-rvs"),
                &[],
                Style::Keepalived
            )
            .unwrap_err()
            .starts_with("Script user 'no-such-user-rvs' does not exist")
        );
    }

    #[test]
    fn unsafe_scripts_as_keepalived_sees_them() {
        if rvs_sys::caps::ids().0 != 0 {
            return; // the files below must belong to root
        }
        let d = tmpdir("secure");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = d.join("s.sh");
        std::fs::write(&s, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = RunAs { uid: 0, gid: 0 };
        let mut notes = Vec::new();
        // /tmp is world-writable but sticky: safe; the file and its directory root's 755.
        assert_eq!(
            check_secure(s.to_str().unwrap(), root, true, &mut notes),
            Ok((s.display().to_string(), false))
        );
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert_eq!(
            check_secure(s.to_str().unwrap(), root, false, &mut notes),
            Ok((s.display().to_string(), true))
        );
        assert!(
            notes[0].starts_with("Unsafe permissions found for script"),
            "{notes:?}"
        );
        assert!(!notes[0].contains("disabling"));
        let e = check_secure(s.to_str().unwrap(), root, true, &mut Vec::new()).unwrap_err();
        assert!(e.contains(" - disabling."), "{e}");
        // A user other than root: its own business, not checked.
        let nobody = RunAs {
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(
            check_secure(s.to_str().unwrap(), nobody, true, &mut Vec::new()),
            Ok((s.display().to_string(), false))
        );
        // Not executable for that user.
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert!(
            check_secure(s.to_str().unwrap(), nobody, false, &mut Vec::new())
                .unwrap_err()
                .contains("is not executable for uid:gid 65534:65534")
        );
        // A directory given through a link is resolved; the file keeps its name.
        let p = prepare("/bin/sh -c true", Some("root"), &[], Style::Keepalived).unwrap();
        assert_eq!(
            p.argv[0],
            std::fs::canonicalize("/bin")
                .unwrap()
                .join("sh")
                .display()
                .to_string()
        );
        // A group-writable directory above it.
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&d, None, Some(65534)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(check_secure(s.to_str().unwrap(), root, true, &mut Vec::new()).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
