//! Memory for the connection tables, built off the packet path.
//!
//! The tables grow in chunks (`rvs_core::conn::ConnTable::need`). Allocating a chunk and
//! touching its pages takes about a millisecond: that is this helper thread's job, never the
//! worker's. Between batches the worker hands in what is built (an O(1) link), passes
//! retired memory (old hash heads) back here to be freed, and asks for what the tables need
//! next — through bounded channels, so the worker neither blocks nor allocates.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rvs_core::conn::{Need, Provision};
use rvs_core::director::Director;

enum Job {
    Build4(Need),
    Build6(Need),
    Free4(Provision<[u8; 4]>),
    Free6(Provision<[u8; 16]>),
}

enum Built {
    V4(Provision<[u8; 4]>),
    V6(Provision<[u8; 16]>),
}

/// The worker's end of the provisioning thread.
pub struct Provisioner {
    jobs: SyncSender<Job>,
    built: Receiver<Built>,
    /// A build is outstanding for IPv4, IPv6.
    pending: (bool, bool),
}

impl Provisioner {
    /// Start the thread. It ends when the provisioner is dropped.
    pub fn start() -> io::Result<Provisioner> {
        let (jobs, job_rx) = sync_channel::<Job>(8);
        let (built_tx, built) = sync_channel::<Built>(4);
        std::thread::Builder::new()
            .name("rvs-provision".into())
            .spawn(move || {
                for job in job_rx {
                    let sent = match job {
                        Job::Build4(n) => built_tx.send(Built::V4(Provision::build(n))),
                        Job::Build6(n) => built_tx.send(Built::V6(Provision::build(n))),
                        Job::Free4(p) => {
                            drop(p);
                            Ok(())
                        }
                        Job::Free6(p) => {
                            drop(p);
                            Ok(())
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            })?;
        Ok(Provisioner {
            jobs,
            built,
            pending: (false, false),
        })
    }

    /// Between batches: link in what is built, send retired memory away, ask for what the
    /// tables need next. Never blocks.
    pub fn service(&mut self, d: &mut Director) {
        while let Ok(b) = self.built.try_recv() {
            match b {
                Built::V4(p) => {
                    self.pending.0 = false;
                    if let Some(back) = d.provide_v4(p) {
                        let _ = self.jobs.try_send(Job::Free4(back));
                    }
                }
                Built::V6(p) => {
                    self.pending.1 = false;
                    if let Some(back) = d.provide_v6(p) {
                        let _ = self.jobs.try_send(Job::Free6(back));
                    }
                }
            }
        }
        let (r4, r6) = d.take_retired();
        if let Some(p) = r4 {
            let _ = self.jobs.try_send(Job::Free4(p));
        }
        if let Some(p) = r6 {
            let _ = self.jobs.try_send(Job::Free6(p));
        }
        let (n4, n6) = d.table_needs();
        if let (false, Some(n)) = (self.pending.0, n4) {
            self.pending.0 = self.jobs.try_send(Job::Build4(n)).is_ok();
        }
        if let (false, Some(n)) = (self.pending.1, n6) {
            self.pending.1 = self.jobs.try_send(Job::Build6(n)).is_ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::{DirectorSettings, NetConfig};
    use rvs_core::model::Config;

    #[test]
    fn the_thread_builds_what_the_table_needs() {
        let settings = DirectorSettings {
            initial_buckets: 16,
            ..DirectorSettings::default()
        };
        let mut d = Director::new(NetConfig::default(), &Config::default(), settings).unwrap();
        // An empty table with one chunk needs nothing yet.
        assert_eq!(d.table_needs(), (None, None));
        let mut p = Provisioner::start().unwrap();
        p.service(&mut d);
        assert_eq!(p.pending, (false, false));
        assert!(d.table_v4().capacity() > 0);
    }
}
