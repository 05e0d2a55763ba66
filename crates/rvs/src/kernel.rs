//! The director's own kernel: the routes the engine borrows from it (over netlink) and the
//! forwarding it must not do.
//!
//! rvs forwards VIP traffic in userspace from AF_PACKET taps; the kernel sees the same
//! frames. With IP forwarding on, the kernel would route a second copy of every frame
//! that is not addressed to it — double delivery to the real servers, ICMP redirects,
//! broken connections. So the daemon refuses to start while any forwarding switch that
//! covers its interfaces is on, and while it runs it re-reads them every
//! [`WATCH_EVERY`]: a change is logged (a warning when one turns on) and shown as the
//! `rvs_kernel_forwarding` gauge per family. It does not turn forwarding off itself: the
//! switch is the operator's, and another program on the host may need it.
//!
//! The switches, read from `/proc/sys` of the daemon's network namespace:
//! - IPv4: `net.ipv4.ip_forward` and `net.ipv4.conf.IFACE.forwarding` of each director
//!   interface (the kernel tests the receiving interface's flag, `IN_DEV_FORWARD()` in
//!   `ip_route_input_slow()`; `ip_forward` sets every interface's).
//! - IPv6: `net.ipv6.conf.all.forwarding` (the switch `ip6_forward()` tests) and
//!   `net.ipv6.conf.IFACE.forwarding` of each director interface (with it the kernel acts
//!   as a router on that interface: the ND router flag, router advertisements ignored — a
//!   host set up to forward). Without IPv6 in the kernel there is nothing to read and
//!   nothing forwards.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rvs_core::director::Route;
use rvs_core::model::Prefix;

/// How often the forwarding switches are re-read while the daemon runs.
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The main table's routes through a gateway (IPv4 and IPv6) of the calling thread's
/// namespace, over netlink: the engine routes replies to clients that are not on a link.
pub(crate) fn routes() -> io::Result<Vec<Route>> {
    Ok(rvs_sys::netlink::gateway_routes()?
        .into_iter()
        .map(|r| Route {
            dst: Prefix {
                addr: r.dst,
                len: r.len,
            },
            via: r.via,
        })
        .collect())
}

/// An address family's label value and its sysctl names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The `family` label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// A forwarding switch: its sysctl name and its `/proc/sys` path.
fn switches(interfaces: &[String]) -> Vec<(Family, String)> {
    // sysctl(8) writes an interface name's dots as slashes (`eth0.100` -> `eth0/100`).
    let conf =
        |fam: &str, dev: &str| format!("net.{fam}.conf.{}.forwarding", dev.replace('.', "/"));
    let mut out = vec![(Family::V4, "net.ipv4.ip_forward".to_string())];
    out.extend(interfaces.iter().map(|i| (Family::V4, conf("ipv4", i))));
    out.push((Family::V6, "net.ipv6.conf.all.forwarding".to_string()));
    out.extend(interfaces.iter().map(|i| (Family::V6, conf("ipv6", i))));
    out
}

fn proc_path(sysctl: &str) -> String {
    format!("/proc/sys/{}", sysctl.replace('.', "/"))
}

/// The switches that are on, read from `/proc/sys` under `root` (`""` for the real one).
/// A switch that cannot be read (no IPv6, an interface without IPv6) is off.
fn on_under(root: &str, interfaces: &[String]) -> Vec<(Family, String)> {
    switches(interfaces)
        .into_iter()
        .filter(|(_, name)| {
            std::fs::read_to_string(format!("{root}{}", proc_path(name)))
                .is_ok_and(|s| s.trim() != "0")
        })
        .collect()
}

/// Why start-up is refused, for the switches `on` (none: start).
fn refusal(on: &[(Family, String)]) -> Option<String> {
    if on.is_empty() {
        return None;
    }
    let names: Vec<&str> = on.iter().map(|(_, n)| n.as_str()).collect();
    let fix: Vec<String> = names.iter().map(|n| format!("{n}=0")).collect();
    Some(format!(
        "kernel forwarding is on in this namespace ({} = 1): the kernel would forward a \
         second copy of the traffic rvs forwards; set it to 0 (sysctl -w {}, and in \
         /etc/sysctl.d/ to keep it after a reboot)",
        names.join(", "),
        fix.join(" ")
    ))
}

/// Refuse to run while the kernel forwards on any of `interfaces` (IPv4 or IPv6).
pub(crate) fn check_forwarding(interfaces: &[String]) -> io::Result<()> {
    match refusal(&on_under("", interfaces)) {
        Some(msg) => Err(io::Error::other(msg)),
        None => Ok(()),
    }
}

/// Whether forwarding was on at the last reading, per family (IPv4, IPv6), for the metric.
static FORWARDING: [AtomicU8; 2] = [AtomicU8::new(0), AtomicU8::new(0)];

/// `rvs_kernel_forwarding`'s samples: (family, 1 if any switch of it is on).
pub(crate) fn forwarding_gauges() -> [(&'static str, u64); 2] {
    [Family::V4, Family::V6].map(|f| {
        (
            f.label(),
            u64::from(FORWARDING[f as usize].load(Ordering::Relaxed)),
        )
    })
}

/// The thread that re-reads the forwarding switches; stopped and joined when dropped.
pub(crate) struct ForwardingWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ForwardingWatch {
    /// Watch the switches of `interfaces` (in the calling thread's namespace, which the new
    /// thread inherits).
    pub(crate) fn start(interfaces: &[String]) -> io::Result<ForwardingWatch> {
        let stop = Arc::new(AtomicBool::new(false));
        let interfaces = interfaces.to_vec();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("rvs-forwarding".into())
            .spawn(move || watch(&interfaces, &flag))?;
        Ok(ForwardingWatch {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ForwardingWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn watch(interfaces: &[String], stop: &AtomicBool) {
    let mut last: Vec<(Family, String)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = on_under("", interfaces);
        for fam in [Family::V4, Family::V6] {
            let on = now.iter().any(|(f, _)| *f == fam);
            FORWARDING[fam as usize].store(u8::from(on), Ordering::Relaxed);
        }
        for (_, name) in now.iter().filter(|s| !last.contains(s)) {
            tracing::warn!(
                sysctl = %name,
                "kernel forwarding turned on under the running director: the kernel now \
                 forwards a second copy of the traffic rvs forwards; set {name}=0"
            );
        }
        for (_, name) in last.iter().filter(|s| !now.contains(s)) {
            tracing::info!(sysctl = %name, "kernel forwarding is off again");
        }
        last = now;
        std::thread::park_timeout(WATCH_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(on: &[&str]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for name in switches(&["eth0".into(), "eth0.7".into()])
            .iter()
            .map(|(_, n)| n)
        {
            let p = format!("{}{}", d.path(), proc_path(name));
            std::fs::create_dir_all(std::path::Path::new(&p).parent().unwrap()).unwrap();
            let v = if on.contains(&name.as_str()) {
                "1\n"
            } else {
                "0\n"
            };
            std::fs::write(&p, v).unwrap();
        }
        d
    }

    mod tempdir {
        pub(super) struct Dir(String);
        impl Dir {
            pub(super) fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let p = format!(
                    "{}/rvs-kernel-test-{}-{}",
                    std::env::temp_dir().display(),
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub(super) fn path(&self) -> &str {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn every_switch_that_covers_the_interfaces_is_read() {
        let ifs = ["eth0".to_string(), "eth0.7".to_string()];
        let names: Vec<String> = switches(&ifs).into_iter().map(|(_, n)| n).collect();
        assert_eq!(
            names,
            [
                "net.ipv4.ip_forward",
                "net.ipv4.conf.eth0.forwarding",
                "net.ipv4.conf.eth0/7.forwarding",
                "net.ipv6.conf.all.forwarding",
                "net.ipv6.conf.eth0.forwarding",
                "net.ipv6.conf.eth0/7.forwarding",
            ]
        );
        assert_eq!(
            proc_path("net.ipv6.conf.eth0/7.forwarding"),
            "/proc/sys/net/ipv6/conf/eth0/7/forwarding"
        );
        let off = fake_proc(&[]);
        assert!(on_under(off.path(), &ifs).is_empty());
        let v6 = fake_proc(&[
            "net.ipv6.conf.all.forwarding",
            "net.ipv6.conf.eth0.forwarding",
        ]);
        let on = on_under(v6.path(), &ifs);
        assert_eq!(
            on,
            [
                (Family::V6, "net.ipv6.conf.all.forwarding".to_string()),
                (Family::V6, "net.ipv6.conf.eth0.forwarding".to_string()),
            ]
        );
        assert_eq!(
            refusal(&on).unwrap(),
            "kernel forwarding is on in this namespace (net.ipv6.conf.all.forwarding, \
             net.ipv6.conf.eth0.forwarding = 1): the kernel would forward a second copy of \
             the traffic rvs forwards; set it to 0 (sysctl -w \
             net.ipv6.conf.all.forwarding=0 net.ipv6.conf.eth0.forwarding=0, and in \
             /etc/sysctl.d/ to keep it after a reboot)"
        );
        // A missing file (no IPv6 in the kernel, no such interface) is off.
        assert!(on_under("/nonexistent", &ifs).is_empty());
        assert_eq!(refusal(&[]), None);
    }
}
