//! `rvs console`'s way to the daemon: the control socket's client code
//! ([`crate::daemon::control_request`], [`crate::admin::request`]) behind
//! [`rvs_console::Control`]. The console itself is the crate `rvs-console`.

use rvs_console::{Control, IpvsadmReply};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The daemon at a control socket.
#[derive(Debug, Clone)]
pub struct SocketControl {
    /// The control socket.
    pub path: PathBuf,
}

impl SocketControl {
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }
}

impl Control for SocketControl {
    fn request(&self, line: &str) -> io::Result<String> {
        crate::daemon::control_request(&self.path, line).map_err(|e| self.named(e))
    }

    fn ipvsadm(&self, args: &[String]) -> io::Result<IpvsadmReply> {
        let r = crate::admin::request(&self.path, args, "").map_err(|e| self.named(e))?;
        Ok(IpvsadmReply {
            code: r.code,
            stdout: r.stdout,
            stderr: r.stderr,
        })
    }

    /// As `rvs check-config FILE` (format detected as the daemon detects it).
    fn check_config(&self, path: &std::path::Path) -> Result<String, String> {
        let (loaded, _) = crate::load::admit(path, None, None, false)?;
        let mut out = String::new();
        if !loaded.warnings.is_empty() {
            out.push_str(&rvs_config::render_all(&loaded.warnings));
        }
        out.push_str(&crate::load::effective(&loaded));
        Ok(out)
    }
}

/// The control socket named by `--control`, else `RVS_CONTROL`, else the one running
/// daemon's ([`crate::locate::control_socket`]).
pub fn connect(explicit: Option<PathBuf>) -> Result<Arc<dyn Control>, String> {
    let path = crate::locate::control_socket(explicit)?;
    Ok(Arc::new(SocketControl { path }))
}
