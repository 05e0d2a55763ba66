//! How long the worker stops forwarding to install a configuration change
//! (`rvs_worker_install_seconds`): a histogram the worker records into with relaxed atomic
//! adds (no lock, no allocation) and the metrics render reads.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds, in seconds.
const BOUNDS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0,
];

/// A histogram of durations (Prometheus's cumulative buckets are summed at render).
pub(super) struct Histogram {
    /// Per bound, then one for larger durations.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// Count one duration.
    pub(super) fn record(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = BOUNDS.iter().position(|&b| s <= b).unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// The histogram as `name` (with `_bucket`, `_sum`, `_count`) and `max_name`, appended
    /// to `out` in the text exposition format.
    fn render(&self, out: &mut String, name: &str, help: &str, max_name: &str, max_help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut n = 0u64;
        for (i, b) in BOUNDS.iter().enumerate() {
            n += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {n}");
        }
        n += self.buckets[BOUNDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {n}");
        let max = self.max_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "# HELP {max_name} {max_help}\n# TYPE {max_name} gauge\n{max_name} {max}"
        );
    }
}

/// The worker's installs of configuration changes (reloads, rvsadm edits, health
/// decisions): from taking the change to forwarding again.
pub(super) static INSTALLS: Histogram = Histogram::new();

/// Time `f` (on the worker) into [`INSTALLS`].
pub(super) fn timed<T>(f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let r = f();
    INSTALLS.record(start.elapsed());
    r
}

/// The install metrics, appended to `out`.
pub(super) fn render(out: &mut String) {
    INSTALLS.render(
        out,
        "rvs_worker_install_seconds",
        "How long the data-plane worker stopped forwarding to install each configuration change (reload, rvsadm edit, health decision).",
        "rvs_worker_install_max_seconds",
        "The longest such install since the daemon started.",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_cumulative_buckets() {
        let h = Histogram::new();
        h.record(Duration::from_micros(3));
        h.record(Duration::from_micros(300));
        h.record(Duration::from_secs(2));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "h", "x_max_seconds", "m");
        assert!(out.contains("# TYPE x_seconds histogram\n"), "{out}");
        assert!(
            out.contains("x_seconds_bucket{le=\"0.00001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{le=\"0.00025\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{le=\"0.0005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 2.000303\n"), "{out}");
        assert!(out.contains("x_max_seconds 2\n"), "{out}");
    }
}
