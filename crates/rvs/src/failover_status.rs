//! What the failover thread publishes for operators: each VRRP instance's state, priority
//! and advert counters, or pulse's role and heartbeats. The thread writes a snapshot after
//! each round of work ([`Published`]); `rvs list --failover` and the metrics read it.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rvs_core::vrrp::packet::AdvertError;
use rvs_core::vrrp::router::{RouterStats, State};

/// A snapshot of the failover thread.
#[derive(Debug, Clone, Default)]
pub struct FailoverStatus {
    /// VRRP instances, in configuration order.
    pub instances: Vec<InstanceStatus>,
    /// Pulse, when it decides.
    pub pulse: Option<PulseStatus>,
}

/// One VRRP instance.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    /// `vrrp_instance` name.
    pub name: String,
    /// Its interface.
    pub interface: String,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// IPv4 or IPv6.
    pub ipv6: bool,
    /// Its state.
    pub state: State,
    /// Its effective priority (configured, moved by tracking).
    pub priority: u8,
    /// Its counters.
    pub stats: RouterStats,
}

/// Pulse's side.
#[derive(Debug, Clone, Copy)]
pub struct PulseStatus {
    /// This director is the configured primary.
    pub primary: bool,
    /// It owns the addresses.
    pub active: bool,
    /// Heartbeats sent.
    pub sent: u64,
    /// Heartbeats received (valid).
    pub received: u64,
}

/// The shared snapshot: written by the failover thread, read by the worker.
#[derive(Debug, Clone, Default)]
pub struct Published(Arc<Mutex<FailoverStatus>>);

impl Published {
    /// Replace the snapshot.
    pub fn set(&self, s: FailoverStatus) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// A copy of the snapshot.
    pub fn get(&self) -> FailoverStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// keepalived's state names.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// `rvs list --failover`: one line per instance (or pulse's line); "no failover" without.
pub fn render(s: Option<&FailoverStatus>) -> String {
    let mut out = String::new();
    let Some(s) = s else {
        out.push_str("no failover: this director owns its addresses\n");
        return out;
    };
    if let Some(p) = &s.pulse {
        let _ = writeln!(
            out,
            "pulse: {} ({}), heartbeats sent {}, received {}",
            if p.active { "active" } else { "inactive" },
            if p.primary { "primary" } else { "backup" },
            p.sent,
            p.received
        );
    }
    if !s.instances.is_empty() {
        let _ = writeln!(
            out,
            "{:<16} {:<4} {:<4} {:<10} {:<7} {:>8} {:>10} {:>10} {:>9} {:>8}",
            "Instance",
            "VRID",
            "Fam",
            "Interface",
            "State",
            "Priority",
            "AdvertsIn",
            "AdvertsOut",
            "Refused",
            "Masters"
        );
    }
    for i in &s.instances {
        let refused: u64 = i.stats.errors.iter().sum();
        let _ = writeln!(
            out,
            "{:<16} {:<4} {:<4} {:<10} {:<7} {:>8} {:>10} {:>10} {:>9} {:>8}",
            i.name,
            i.vrid,
            if i.ipv6 { "inet6" } else { "inet" },
            i.interface,
            state_name(i.state),
            i.priority,
            i.stats.advert_rcvd,
            i.stats.advert_sent,
            refused,
            i.stats.become_master
        );
    }
    out
}

/// The failover metrics, appended to `out` in Prometheus text format.
pub fn render_metrics(out: &mut String, s: &FailoverStatus) {
    let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    if !s.instances.is_empty() {
        out.push_str(
            "# HELP rvs_vrrp_state VRRP instance state: 1 for the state it is in, 0 for the others.\n\
             # TYPE rvs_vrrp_state gauge\n",
        );
        for i in &s.instances {
            for (name, state) in [
                ("init", State::Initialize),
                ("backup", State::Backup),
                ("master", State::Master),
                ("fault", State::Fault),
            ] {
                let _ = writeln!(
                    out,
                    "rvs_vrrp_state{{instance=\"{}\",state=\"{name}\"}} {}",
                    esc(&i.name),
                    u8::from(i.state == state)
                );
            }
        }
        out.push_str(
            "# HELP rvs_vrrp_priority VRRP instance effective priority.\n\
             # TYPE rvs_vrrp_priority gauge\n",
        );
        for i in &s.instances {
            let _ = writeln!(
                out,
                "rvs_vrrp_priority{{instance=\"{}\"}} {}",
                esc(&i.name),
                i.priority
            );
        }
        out.push_str(
            "# HELP rvs_vrrp_adverts_total VRRP advertisements received (valid) and sent.\n\
             # TYPE rvs_vrrp_adverts_total counter\n",
        );
        for i in &s.instances {
            for (dir, v) in [("in", i.stats.advert_rcvd), ("out", i.stats.advert_sent)] {
                let _ = writeln!(
                    out,
                    "rvs_vrrp_adverts_total{{instance=\"{}\",direction=\"{dir}\"}} {v}",
                    esc(&i.name)
                );
            }
        }
        out.push_str(
            "# HELP rvs_vrrp_adverts_refused_total VRRP advertisements refused, by reason.\n\
             # TYPE rvs_vrrp_adverts_refused_total counter\n",
        );
        for i in &s.instances {
            for e in AdvertError::ALL {
                let v = i.stats.error(e);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "rvs_vrrp_adverts_refused_total{{instance=\"{}\",reason=\"{}\"}} {v}",
                        esc(&i.name),
                        e.as_str()
                    );
                }
            }
        }
        out.push_str(
            "# HELP rvs_vrrp_became_master_total Transitions to MASTER.\n\
             # TYPE rvs_vrrp_became_master_total counter\n",
        );
        for i in &s.instances {
            let _ = writeln!(
                out,
                "rvs_vrrp_became_master_total{{instance=\"{}\"}} {}",
                esc(&i.name),
                i.stats.become_master
            );
        }
    }
    if let Some(p) = &s.pulse {
        let _ = write!(
            out,
            "# HELP rvs_pulse_active 1 while pulse has this director active.\n\
             # TYPE rvs_pulse_active gauge\nrvs_pulse_active {}\n\
             # HELP rvs_pulse_heartbeats_total Pulse heartbeats sent and received.\n\
             # TYPE rvs_pulse_heartbeats_total counter\n\
             rvs_pulse_heartbeats_total{{direction=\"out\"}} {}\n\
             rvs_pulse_heartbeats_total{{direction=\"in\"}} {}\n",
            u8::from(p.active),
            p.sent,
            p.received
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, state: State, prio: u8) -> InstanceStatus {
        let stats = RouterStats {
            advert_rcvd: 7,
            advert_sent: 40,
            become_master: 1,
            ..RouterStats::default()
        };
        InstanceStatus {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 51,
            ipv6: false,
            state,
            priority: prio,
            stats,
        }
    }

    #[test]
    fn listing_and_metrics_show_each_instance() {
        let s = FailoverStatus {
            instances: vec![instance("VI_1", State::Master, 150)],
            pulse: None,
        };
        let text = render(Some(&s));
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("Instance         VRID Fam  Interface  State")
        );
        assert_eq!(
            lines.next().unwrap(),
            "VI_1             51   inet eth0       MASTER       150          7         40         0        1"
        );
        let mut m = String::new();
        render_metrics(&mut m, &s);
        assert!(
            m.contains("rvs_vrrp_state{instance=\"VI_1\",state=\"master\"} 1\n")
                && m.contains("rvs_vrrp_state{instance=\"VI_1\",state=\"backup\"} 0\n"),
            "{m}"
        );
        assert!(
            m.contains("rvs_vrrp_priority{instance=\"VI_1\"} 150\n"),
            "{m}"
        );
        assert!(m.contains("rvs_vrrp_adverts_total{instance=\"VI_1\",direction=\"out\"} 40\n"));
        assert!(!m.contains("rvs_pulse"), "{m}");
        assert_eq!(
            render(None),
            "no failover: this director owns its addresses\n"
        );
    }

    #[test]
    fn pulse_line_and_metrics() {
        let s = FailoverStatus {
            instances: Vec::new(),
            pulse: Some(PulseStatus {
                primary: false,
                active: true,
                sent: 3,
                received: 9,
            }),
        };
        assert_eq!(
            render(Some(&s)),
            "pulse: active (backup), heartbeats sent 3, received 9\n"
        );
        let mut m = String::new();
        render_metrics(&mut m, &s);
        assert!(m.contains("rvs_pulse_active 1\n"));
        // With the VRRP families too: Prometheus's linter has nothing to say.
        let vrrp = FailoverStatus {
            instances: vec![instance("VI_1", State::Backup, 100)],
            pulse: None,
        };
        render_metrics(&mut m, &vrrp);
        let mut lint = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (apt-get install prometheus)");
        std::io::Write::write_all(&mut lint.stdin.take().unwrap(), m.as_bytes()).unwrap();
        let out = lint.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool: {}{}\n{m}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(m.contains("rvs_pulse_heartbeats_total{direction=\"in\"} 9\n"));
    }
}
