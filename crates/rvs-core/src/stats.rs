//! IPVS-style traffic counters and rate estimators (`net/netfilter/ipvs/ip_vs_est.c`).
//!
//! [`Counters`] are the five totals `ipvsadm -L --stats` shows for a virtual service, a real
//! server or the whole director. An [`Estimator`] turns samples of them, taken every 2 s,
//! into the rates `ipvsadm -L --rate` shows, with the kernel's fixed-point arithmetic so the
//! numbers match a kernel director's bit for bit.
//!
//! Deliberately not here: the timer (the daemon calls [`Estimator::tick`] every
//! [`Estimator::INTERVAL`]), summing per-worker counters (use [`Counters::add`], as
//! `ip_vs_read_cpu_stats()` sums per-CPU ones), and locking (each estimator has one owner).

use core::time::Duration;

/// Traffic totals (`struct ip_vs_kstats`'s counters): connections scheduled, packets and
/// bytes in (client → real server) and out (real server → client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counters {
    /// Connections created (`conns`).
    pub conns: u64,
    /// Packets from clients (`inpkts`).
    pub inpkts: u64,
    /// Packets to clients (`outpkts`; zero for DR and TUN, whose replies bypass the director).
    pub outpkts: u64,
    /// Bytes from clients, IP header included (`inbytes`: the kernel adds `skb->len`).
    pub inbytes: u64,
    /// Bytes to clients (`outbytes`).
    pub outbytes: u64,
}

impl Counters {
    /// A new connection (`ip_vs_conn_stats()`).
    pub fn count_conn(&mut self) {
        self.conns = self.conns.wrapping_add(1);
    }

    /// A packet from a client of `bytes` bytes (`ip_vs_in_stats()`).
    pub fn count_in(&mut self, bytes: u64) {
        self.inpkts = self.inpkts.wrapping_add(1);
        self.inbytes = self.inbytes.wrapping_add(bytes);
    }

    /// A packet to a client of `bytes` bytes (`ip_vs_out_stats()`).
    pub fn count_out(&mut self, bytes: u64) {
        self.outpkts = self.outpkts.wrapping_add(1);
        self.outbytes = self.outbytes.wrapping_add(bytes);
    }

    /// `packets` packets of `bytes` bytes in all, to (`inward`) or from the clients.
    pub fn count_many(&mut self, inward: bool, packets: u64, bytes: u64) {
        let (p, b) = if inward {
            (&mut self.inpkts, &mut self.inbytes)
        } else {
            (&mut self.outpkts, &mut self.outbytes)
        };
        *p = p.wrapping_add(packets);
        *b = b.wrapping_add(bytes);
    }

    /// Add another set of counters (e.g. another worker's), wrapping like the kernel's u64s.
    pub fn add(&mut self, o: &Counters) {
        self.conns = self.conns.wrapping_add(o.conns);
        self.inpkts = self.inpkts.wrapping_add(o.inpkts);
        self.outpkts = self.outpkts.wrapping_add(o.outpkts);
        self.inbytes = self.inbytes.wrapping_add(o.inbytes);
        self.outbytes = self.outbytes.wrapping_add(o.outbytes);
    }
}

/// Rates per second as `ipvsadm -L --rate` prints them: CPS, InPPS, OutPPS, InBPS, OutBPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

/// The kernel's rate estimator (`struct ip_vs_estimator`).
///
/// Every 2 s (`estimation_timer()` in older kernels, `ip_vs_chain_estimation()` since 6.2)
/// each counter's increase over the interval is turned into a fixed-point rate per second:
/// - connections and packets: `delta << 9`, i.e. per second (÷2) scaled by 2^10;
/// - bytes: `delta << 4`, i.e. per second (÷2) scaled by 2^5;
///
/// then smoothed with an EWMA of weight 1/4: `avg += (rate - avg) >> 2`, computed in signed
/// 64-bit with an arithmetic shift (so a falling rate rounds towards −∞). Reading
/// (`ip_vs_read_estimator()`) rounds to the nearest unit: `(avg + 0x1FF) >> 10` for cps and
/// pps, `(avg + 0xF) >> 5` for bps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Estimator {
    last: Counters,
    /// Scaled averages: cps, inpps, outpps (×2^10), inbps, outbps (×2^5).
    avg: Rates,
}

/// One EWMA step of `ip_vs_est.c`: `e += ((s64)rate - (s64)e) >> 2` on u64 storage.
fn ewma(avg: u64, rate: u64) -> u64 {
    let step = (rate as i64).wrapping_sub(avg as i64) >> 2;
    avg.wrapping_add(step as u64)
}

impl Estimator {
    /// How often [`Estimator::tick`] must be called (`2*HZ`).
    pub const INTERVAL: Duration = Duration::from_secs(2);

    /// An estimator starting from the counters' current values (rates 0), as a freshly
    /// started kernel estimator whose `last_*` equal the stats it watches.
    pub fn new(current: &Counters) -> Estimator {
        Estimator {
            last: *current,
            avg: Rates::default(),
        }
    }

    /// Take the 2-second sample.
    pub fn tick(&mut self, c: &Counters) {
        let d = |now: u64, last: u64| now.wrapping_sub(last);
        let a = &mut self.avg;
        a.cps = ewma(a.cps, d(c.conns, self.last.conns) << 9);
        a.inpps = ewma(a.inpps, d(c.inpkts, self.last.inpkts) << 9);
        a.outpps = ewma(a.outpps, d(c.outpkts, self.last.outpkts) << 9);
        a.inbps = ewma(a.inbps, d(c.inbytes, self.last.inbytes) << 4);
        a.outbps = ewma(a.outbps, d(c.outbytes, self.last.outbytes) << 4);
        self.last = *c;
    }

    /// The rates `ipvsadm --rate` shows (`ip_vs_read_estimator()`).
    pub fn rates(&self) -> Rates {
        let a = &self.avg;
        Rates {
            cps: a.cps.wrapping_add(0x1ff) >> 10,
            inpps: a.inpps.wrapping_add(0x1ff) >> 10,
            outpps: a.outpps.wrapping_add(0x1ff) >> 10,
            inbps: a.inbps.wrapping_add(0xf) >> 5,
            outbps: a.outbps.wrapping_add(0xf) >> 5,
        }
    }

    /// The raw scaled averages (cps/pps ×1024, bps ×32).
    pub fn scaled(&self) -> Rates {
        self.avg
    }

    /// `ipvsadm -Z`: forget the averages and restart from the counters' current values
    /// (`ip_vs_zero_estimator()`).
    pub fn zero(&mut self, current: &Counters) {
        *self = Estimator::new(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_load_converges_to_the_true_rate() {
        // 1000 connections, 10 000 packets in, 8 000 out, 1.5 MB in, 12 MB out per 2 s.
        let mut c = Counters::default();
        let mut e = Estimator::new(&c);
        let mut cps = Vec::new();
        let mut scaled = Vec::new();
        for _ in 0..60 {
            c.conns += 1000;
            c.inpkts += 10_000;
            c.outpkts += 8_000;
            c.inbytes += 1_500_000;
            c.outbytes += 12_000_000;
            e.tick(&c);
            cps.push(e.rates().cps);
            scaled.push(e.scaled().cps);
        }
        // By hand: rate = 1000 << 9 = 512000 (500/s × 1024);
        // avg1 = 0 + 512000/4 = 128000, avg2 = 128000 + 384000/4 = 224000,
        // avg3 = 224000 + 288000/4 = 296000, avg4 = 296000 + 216000/4 = 350000.
        assert_eq!(&scaled[..4], &[128_000, 224_000, 296_000, 350_000]);
        // Shown: (avg + 511) >> 10.
        assert_eq!(&cps[..4], &[125, 219, 289, 342]);
        // The gap loses floor(gap / 4) per tick until it is below 4, where `>> 2` stops
        // it (after 40 ticks it is still 7; it reaches 3 at tick 44).
        assert_eq!(
            (scaled[39], scaled[43], scaled[59]),
            (511_993, 511_997, 511_997)
        );
        assert_eq!(
            e.rates(),
            Rates {
                cps: 500,
                inpps: 5_000,
                outpps: 4_000,
                inbps: 750_000,
                outbps: 6_000_000
            }
        );
    }

    #[test]
    fn falling_rate_rounds_towards_minus_infinity() {
        let mut c = Counters::default();
        let mut e = Estimator::new(&c);
        c.count_conn();
        e.tick(&c); // rate 512 -> avg 128
        let mut seq = vec![e.scaled().cps];
        for _ in 0..16 {
            e.tick(&c); // no new connections: rate 0
            seq.push(e.scaled().cps);
        }
        // (0 - 54) >> 2 = -14 (not -13), (0 - 3) >> 2 = -1, ...
        assert_eq!(
            seq,
            [128, 96, 72, 54, 40, 30, 22, 16, 12, 9, 6, 4, 3, 2, 1, 0, 0]
        );
        // 128 / 1024 per second rounds to 0 shown.
        assert_eq!(e.rates().cps, 0);
    }

    #[test]
    fn rounding_when_read() {
        // The added constants are one below half a unit: exact halves round down.
        let e = Estimator {
            avg: Rates {
                cps: 511,
                inpps: 513,
                outpps: 1535,
                inbps: 16,
                outbps: 17,
            },
            ..Estimator::default()
        };
        assert_eq!(
            e.rates(),
            Rates {
                cps: 0,
                inpps: 1,
                outpps: 1,
                inbps: 0,
                outbps: 1
            }
        );
    }

    #[test]
    fn zero_restarts_from_current_counters() {
        let mut c = Counters::default();
        let mut e = Estimator::new(&c);
        c.conns = 10_000;
        e.tick(&c);
        assert!(e.rates().cps > 0);
        e.zero(&c);
        assert_eq!(e.rates(), Rates::default());
        e.tick(&c);
        assert_eq!(e.rates(), Rates::default(), "no delta since zeroing");
    }

    #[test]
    fn counters_count_and_add() {
        let mut a = Counters::default();
        a.count_conn();
        a.count_in(60);
        a.count_in(1500);
        a.count_out(40);
        let mut b = a;
        b.add(&a);
        assert_eq!(
            b,
            Counters {
                conns: 2,
                inpkts: 4,
                outpkts: 2,
                inbytes: 3120,
                outbytes: 80
            }
        );
        // Counter wrap does not disturb the estimator.
        let mut c = Counters {
            conns: u64::MAX - 99,
            ..Counters::default()
        };
        let mut e = Estimator::new(&c);
        c.conns = c.conns.wrapping_add(1000);
        e.tick(&c);
        assert_eq!(e.scaled().cps, 128_000);
    }
}
