//! `rvsadm -Z`: the control thread checks the service ("No such service" answered from the
//! configuration the engine runs, [`crate::desired::Running`]); the worker zeroes one
//! service at once (its real servers' counters, a few), and every service a
//! [`CHUNK`] at a time between batches ([`Zeroing::step`]), answering when the last is
//! done. The counters are zeroed in the engine itself, so every listing (`--stats`,
//! `--rate`: the estimators restart as the kernel's do) stays ipvsadm's.

use super::control::{Answer, Ask, Shared, ask_worker};
use crate::admin::Reply;
use crate::desired::Running;
use rvs_core::director::Director;
use rvs_core::model::ServiceKey;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

/// `-Z [service]` on the control thread, against the configuration the engine runs.
pub(super) fn ipvsadm(shared: &Shared, running: &Running, key: Option<&ServiceKey>) -> Reply {
    if let Some(k) = key
        && !running.effective.services.iter().any(|s| s.key == *k)
    {
        return Reply::fail(255, "No such service");
    }
    let (tx, rx) = mpsc::sync_channel(1);
    match ask_worker(&shared.requests, Ask::Zero(key.copied(), tx)) {
        Ok(Answer::Zeroed(true)) => match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(()) => Reply::ok(String::new()),
            Err(_) => Reply::fail(255, "the data-plane worker did not finish zeroing"),
        },
        Ok(Answer::Zeroed(false)) => Reply::fail(255, "No such service"),
        Ok(_) => Reply::fail(255, "the data-plane worker answered something else"),
        Err(e) => Reply::fail(255, &e),
    }
}

/// Services zeroed per round of the worker.
pub(super) const CHUNK: usize = 512;

/// `-Z` of every service, being done.
#[derive(Default)]
pub(super) struct Zeroing {
    /// Per request: the next slot, and where to say it is done.
    jobs: VecDeque<(usize, mpsc::SyncSender<()>)>,
}

impl Zeroing {
    /// `-Z` (on the worker): one service at once, every service started; false when
    /// `key` names no running service.
    pub(super) fn ask(
        &mut self,
        d: &mut Director,
        key: Option<&ServiceKey>,
        done: mpsc::SyncSender<()>,
    ) -> bool {
        match key {
            Some(k) => {
                let found = d.zero_counters(Some(k));
                let _ = done.send(());
                found
            }
            None => {
                self.start(done);
                true
            }
        }
    }

    /// Zero every service, then send on `done`.
    pub(super) fn start(&mut self, done: mpsc::SyncSender<()>) {
        self.jobs.push_back((0, done));
    }

    /// Whether a zeroing is under way (the worker comes back soon).
    pub(super) fn busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Zero the next `max` services of the oldest request.
    pub(super) fn step(&mut self, d: &mut Director, max: usize) {
        let Some((from, _)) = self.jobs.front_mut() else {
            return;
        };
        match d.zero_counters_from(*from, max) {
            Some(next) => *from = next,
            None => {
                if let Some((_, done)) = self.jobs.pop_front() {
                    let _ = done.send(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::{DirectorSettings, NetConfig};
    use rvs_core::model::VirtualServiceConfig;
    use rvs_core::model::{Config, ForwardMethod, Protocol, RealServerConfig, ServiceKey};

    /// 2,000 services zeroed over rounds of [`CHUNK`]: done is said once, after the last.
    #[test]
    fn every_service_is_zeroed_a_chunk_at_a_time() {
        let mut c = Config::default();
        for port in 1000..3000u16 {
            let mut s = VirtualServiceConfig::new(ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: "10.1.0.100".parse().unwrap(),
                port,
            });
            let mut r = RealServerConfig::new("10.2.0.11".parse().unwrap(), port);
            r.method = ForwardMethod::Masq;
            s.real_servers.push(r);
            c.services.push(s);
        }
        let mut d = Director::new(NetConfig::default(), &c, DirectorSettings::default()).unwrap();
        let ids: Vec<_> = d.services().iter().map(|(_, s)| s.dest_ids[0]).collect();
        for &id in &ids {
            d.services_mut().count_packets(id, true, 1, 60);
        }
        let inpkts = |d: &Director| -> u64 {
            ids.iter()
                .map(|&id| d.services().dest_stats(id).unwrap().inpkts)
                .sum()
        };
        assert_eq!(inpkts(&d), 2000);
        let (tx, rx) = mpsc::sync_channel(1);
        let mut z = Zeroing::default();
        z.start(tx);
        let mut rounds = 0;
        while z.busy() {
            assert!(rx.try_recv().is_err(), "done before the last chunk");
            z.step(&mut d, CHUNK);
            rounds += 1;
        }
        assert_eq!(rounds, 2000usize.div_ceil(CHUNK));
        assert!(rx.try_recv().is_ok());
        assert_eq!(inpkts(&d), 0);
    }
}
