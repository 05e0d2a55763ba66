//! `rvsadm -L -c` / `rvs list -c` off the packet path: the worker copies the connection
//! tables in bounded pieces, at most [`CHUNK_SLOTS`] slots per export and round between
//! packet batches, into buffers it hands to the control thread that asked, which formats
//! them. A listing of a million entries so never holds forwarding up for more than one
//! piece's copy (a few tens of microseconds); it takes as many rounds as it has pieces.
//!
//! Like the kernel's `/proc/net/ip_vs_conn` (`ip_vs_conn_seq_start()` / `_next()` walk the
//! hash table a bucket at a time under RCU, so entries added or removed during the read may
//! be listed or not), the listing is not one instant's table: each piece is taken at its
//! round's time, entries added or removed between pieces may be missing.

use crate::listing::{self, ConnRow};
use rvs_config::ipvsadm::ListFormat;
use rvs_core::director::Director;
use rvs_core::time::Instant;
use std::sync::mpsc;
use std::time::Duration;

/// Slots (occupied or not) the worker walks per export and round.
pub(super) const CHUNK_SLOTS: usize = 2048;

/// Pieces copied but not yet taken by the formatting thread, per export: the worker stops
/// copying (and keeps its piece) while the control thread is this far behind.
const AHEAD: usize = 2;

/// One listing being copied: where the walk is, and where the pieces go.
struct Export {
    /// 0: the IPv4 table, 1: the IPv6 table, 2: done.
    family: u8,
    /// The next slot of that table.
    from: u32,
    /// A piece the formatting thread had no room for yet.
    pending: Option<Vec<ConnRow>>,
    tx: mpsc::SyncSender<Vec<ConnRow>>,
}

/// The listings being copied (at most one per control connection).
#[derive(Default)]
pub(super) struct Exports {
    active: Vec<Export>,
}

impl Exports {
    /// Start copying the tables for the control thread that reads `tx`'s receiver.
    pub(super) fn start(&mut self, tx: mpsc::SyncSender<Vec<ConnRow>>) {
        self.active.push(Export {
            family: 0,
            from: 0,
            pending: None,
            tx,
        });
    }

    /// Whether a listing is being copied (the worker then sleeps at most
    /// [`Exports::WAIT`] when idle, so it goes on copying).
    pub(super) fn busy(&self) -> bool {
        !self.active.is_empty()
    }

    /// The longest idle sleep while [`busy`](Exports::busy).
    pub(super) const WAIT: Duration = Duration::from_millis(1);

    /// One round: each export hands over its pending piece or copies its next one
    /// (at most `max_slots` slots).
    pub(super) fn step(&mut self, d: &Director, now: Instant, max_slots: usize) {
        self.active.retain_mut(|e| {
            if let Some(piece) = e.pending.take() {
                match e.tx.try_send(piece) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(piece)) => {
                        e.pending = Some(piece);
                        return true;
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => return false,
                }
            }
            if e.family >= 2 {
                // Everything handed over: an empty piece says it is the end (a reader
                // whose sender is dropped without it knows the listing is cut short).
                return matches!(e.tx.try_send(Vec::new()), Err(mpsc::TrySendError::Full(_)));
            }
            let mut rows = Vec::new();
            let next = if e.family == 0 {
                d.table_v4().slots_from(e.from, max_slots, |c| {
                    rows.extend(ConnRow::of(&c, now));
                })
            } else {
                d.table_v6().slots_from(e.from, max_slots, |c| {
                    rows.extend(ConnRow::of(&c, now));
                })
            };
            match next {
                Some(n) => e.from = n,
                None => {
                    e.family += 1;
                    e.from = 0;
                }
            }
            if !rows.is_empty() {
                match e.tx.try_send(rows) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(rows)) => e.pending = Some(rows),
                    Err(mpsc::TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }
}

/// A channel for one export: the worker's end and the formatting thread's.
pub(super) fn channel() -> (mpsc::SyncSender<Vec<ConnRow>>, mpsc::Receiver<Vec<ConnRow>>) {
    mpsc::sync_channel(AHEAD)
}

/// Format the pieces arriving on `rx` as `list_conn()` does (on the control thread), until
/// the empty piece that ends them. A worker that stops sending for `stall`, or goes away
/// before the end, is an error.
pub(super) fn render(
    rx: &mpsc::Receiver<Vec<ConnRow>>,
    f: &ListFormat,
    stall: Duration,
) -> Result<String, String> {
    let mut out = String::new();
    listing::connection_title(&mut out, f);
    loop {
        match rx.recv_timeout(stall) {
            Ok(rows) if rows.is_empty() => return Ok(out),
            Ok(rows) => listing::connection_rows(&mut out, &rows),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the data-plane worker stopped during the listing".into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err("the data-plane worker stopped sending the connection table".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::{DirectorSettings, NetConfig, PortConfig, PortId};
    use rvs_core::model::Prefix;
    use rvs_core::wire::Frame;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A NAT director for 192.168.0.100:80 with `n` connections from distinct client ports.
    fn director_with(n: u16) -> (Director, Instant) {
        let cfg = rvs_config::parse_rules(
            "-A -t 192.168.0.100:80 -s rr\n-a -t 192.168.0.100:80 -r 10.0.0.2:80 -m\n",
            "t",
        )
        .unwrap();
        let net = NetConfig {
            ports: vec![
                PortConfig {
                    id: PortId(0),
                    mac: [2, 0, 0, 0, 0, 1],
                    addrs: vec![Prefix {
                        addr: ip("192.168.0.2"),
                        len: 24,
                    }],
                    mtu: 1500,
                },
                PortConfig {
                    id: PortId(1),
                    mac: [2, 0, 0, 0, 0, 2],
                    addrs: vec![Prefix {
                        addr: ip("10.0.0.1"),
                        len: 24,
                    }],
                    mtu: 1500,
                },
            ],
            routes: vec![],
            owned: vec![],
        };
        let settings = DirectorSettings {
            default_table_size: 16384,
            ..DirectorSettings::default()
        };
        let mut d = Director::new(net, &cfg, settings).unwrap();
        let now = Instant(1_000_000_000);
        d.learn_neighbor(ip("10.0.0.2"), [2, 0, 0, 0, 1, 2], now);
        for port in 0..n {
            let mut v = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 1])
                .ipv4([172, 16, 5, 9], [192, 168, 0, 100], 64)
                .tcp(10000 + port, 80, 1000, 64240)
                .syn()
                .write(&mut v, &[])
                .unwrap();
            let head = 128;
            let mut buf = vec![0u8; head + v.len() + 64];
            buf[head..head + v.len()].copy_from_slice(&v);
            let mut f = Frame::new(&mut buf, head, v.len()).unwrap();
            let _ = d.handle(now, PortId(0), &mut f);
        }
        (d, now)
    }

    #[test]
    fn a_listing_is_copied_in_bounded_pieces_and_equals_the_whole_walk() {
        let (d, now) = director_with(5000);
        assert_eq!(d.table_v4().len(), 5000);
        let (tx, rx) = channel();
        let mut ex = Exports::default();
        ex.start(tx);
        // Every slot is occupied: a piece of more than 100 rows walked more than 100 slots.
        let (ptx, prx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut sizes = Vec::new();
            let (ftx, frx) = channel();
            let fwd = std::thread::spawn(move || {
                render(&frx, &ListFormat::default(), Duration::from_secs(10)).unwrap()
            });
            for piece in rx {
                sizes.push(piece.len());
                ftx.send(piece).unwrap();
            }
            drop(ftx);
            ptx.send(sizes).unwrap();
            fwd.join().unwrap()
        });
        let (mut rounds, start) = (0, std::time::Instant::now());
        while ex.busy() {
            ex.step(&d, now, 100);
            rounds += 1;
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the export does not end"
            );
            std::thread::sleep(Duration::from_micros(20));
        }
        // 5000 IPv4 slots in pieces of 100, then the (empty) IPv6 table.
        assert!(rounds >= 50, "{rounds} rounds");
        let text = reader.join().unwrap();
        let sizes = prx.recv().unwrap();
        assert!(sizes.iter().all(|&n| n <= 100), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 5000);
        let opts = rvs_config::ipvsadm::ListOptions {
            what: rvs_config::ipvsadm::ListWhat::Connections,
            format: ListFormat::default(),
        };
        let whole = listing::list(&d, &opts, now).unwrap();
        assert_eq!(text.lines().count(), 5002);
        assert_eq!(text, whole);
    }

    #[test]
    fn a_slow_reader_holds_the_walk_and_a_gone_reader_ends_it() {
        let (d, now) = director_with(300);
        let (tx, rx) = channel();
        let mut ex = Exports::default();
        ex.start(tx);
        // Nobody reads: AHEAD pieces fit, then one waits, and the walk stops there.
        for _ in 0..10 {
            ex.step(&d, now, 10);
        }
        let queued: usize = rx.try_iter().take(AHEAD).map(|r| r.len()).sum();
        assert_eq!(queued, 20);
        assert!(ex.busy());
        drop(rx);
        ex.step(&d, now, 10);
        assert!(!ex.busy(), "the export of a reader that left goes on");
        // A worker gone before the end: the listing is refused, not cut short.
        let (tx, rx) = channel();
        let mut ex = Exports::default();
        ex.start(tx);
        ex.step(&d, now, 10);
        drop(ex);
        let r = render(&rx, &ListFormat::default(), Duration::from_secs(1));
        assert!(r.is_err(), "{r:?}");
    }
}
