//! `rvsadm --start-daemon`, `--stop-daemon` and `-L --daemon` on the control thread: the
//! checks, ipvsadm's messages (libipvs `ipvs_strerror()`, exit status 255), the socket's
//! set-up and closing, the log lines and `-L --daemon`'s listing all happen here; the
//! worker only puts an opened daemon in place or takes one out ([`crate::syncd`]).
//!
//! rvsadm's sync requests hold [`crate::syncd::Published`]'s lock from their check to
//! their change, so they apply one after the other, each seeing the one before.

use super::control::{Answer, Ask, Shared, ask_worker};
use crate::admin::{Reply, SyncRequest};
use crate::syncd::{self, SyncDaemon};

/// The refusal while the configuration runs the daemons.
const CONFIGURED: &str = "the connection sync daemons follow the configuration \
                          (lvs_sync_daemon / syncdaemon): change them there";

/// Answer an rvsadm sync-daemon request.
pub(super) fn ipvsadm(shared: &Shared, r: SyncRequest<'_>) -> Reply {
    let p = &shared.sync;
    match r {
        SyncRequest::List => Reply::ok(p.listing()),
        _ if p.configured => Reply::fail(255, CONFIGURED),
        SyncRequest::Start(o) => {
            let mut lines = p.lock();
            let i = syncd::index(o.state);
            // The kernel's order (`start_sync_thread()`): one running is `EEXIST` before
            // the device is looked up.
            if lines[i].is_some() {
                return Reply::fail(255, "Daemon has already run");
            }
            let size = shared.reloader.tuning.sync_sock_size();
            let s = match SyncDaemon::open_sized(o.state, &syncd::setup_of(o), size) {
                Ok(s) => s,
                Err(e) => return Reply::fail(255, &e.to_string()),
            };
            let line = s.line();
            match ask_worker(&shared.requests, Ask::SyncPut(o.state, Box::new(s))) {
                Ok(Answer::SyncPut(Ok(()))) => {
                    tracing::info!("connection sync: started {}", line.trim_end());
                    lines[i] = Some(line);
                    Reply::ok(String::new())
                }
                Ok(Answer::SyncPut(Err((e, s)))) => {
                    drop(s);
                    Reply::fail(255, &e.to_string())
                }
                Ok(_) => Reply::fail(255, "the data-plane worker answered something else"),
                Err(e) => Reply::fail(255, &e),
            }
        }
        SyncRequest::Stop(state) => {
            let mut lines = p.lock();
            let i = syncd::index(state);
            if lines[i].is_none() {
                return Reply::fail(255, "No daemon is running");
            }
            match ask_worker(&shared.requests, Ask::SyncTake(state)) {
                Ok(Answer::SyncTaken(taken)) => {
                    lines[i] = None;
                    match taken {
                        Some(s) => {
                            tracing::info!("connection sync: stopped {:?} daemon", s.state());
                            drop(s);
                            Reply::ok(String::new())
                        }
                        None => Reply::fail(255, "No daemon is running"),
                    }
                }
                Ok(_) => Reply::fail(255, "the data-plane worker answered something else"),
                Err(e) => Reply::fail(255, &e),
            }
        }
    }
}
