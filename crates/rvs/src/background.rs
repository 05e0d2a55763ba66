//! The failover side's background work on one thread: hook scripts (VRRP notify scripts,
//! pulse's `active_cmd` / `inactive_cmd`, run by [`crate::scripts`]) and the checks of
//! `service = fos` run as tasks of one tokio current-thread runtime, started on first use,
//! instead of a thread (and a runtime) per run.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

static RUNTIME: OnceLock<Option<Handle>> = OnceLock::new();

/// The background runtime, started on first use; `None` (logged once) when its thread
/// cannot be started.
fn handle() -> Option<&'static Handle> {
    RUNTIME
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let started = std::thread::Builder::new()
                .name("rvs-background".into())
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(rt.handle().clone()));
                    // Drives the spawned tasks for the daemon's lifetime.
                    rt.block_on(std::future::pending::<()>());
                });
            let got = match started {
                Ok(_) => rx
                    .recv()
                    .unwrap_or_else(|_| Err(std::io::Error::other("exited"))),
                Err(e) => Err(e),
            };
            match got {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!(
                        "cannot start the background thread for scripts and checks: {e}"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Run `fut` on the background runtime; false when there is none.
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> bool {
    match handle() {
        Some(h) => {
            h.spawn(fut);
            true
        }
        None => false,
    }
}
