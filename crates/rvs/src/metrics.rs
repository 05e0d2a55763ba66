//! Prometheus metrics of a running director, in the text exposition format (version 0.0.4).
//!
//! Rendered from the engine on request (the daemon's worker answers between batches), so
//! the packet path only keeps its plain counters. Every metric is documented with `# HELP`
//! and typed with `# TYPE`; label values are escaped as the format requires. The set is
//! small and fixed, so it is written directly rather than through a registry.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rvs_service_connections_total` | counter | service |
//! | `rvs_service_packets_total`, `rvs_service_bytes_total` | counter | service, direction |
//! | `rvs_service_connections_per_second`, `rvs_service_packets_per_second`, `rvs_service_bytes_per_second` | gauge | service (direction) |
//! | `rvs_real_server_connections_total`, `..._packets_total`, `..._bytes_total` | counter | service, real_server (direction) |
//! | `rvs_real_server_active_connections`, `..._inactive_connections`, `..._persistent_connections` | gauge | service, real_server |
//! | `rvs_real_server_weight`, `rvs_real_server_overloaded` | gauge | service, real_server |
//! | `rvs_drops_total` | counter | reason |
//! | `rvs_malformed_total` | counter | reason |
//! | `rvs_frames_total` | counter | kind (rx, tx, passed) |
//! | `rvs_address_conflicts_total` | counter | |
//! | `rvs_synproxy_total` | counter | event (cookie_sent, ack_valid, ack_invalid, proxied, rs_refused, held, held_dropped) |
//! | `rvs_syn_shed_total` | counter | event (shed, budget_admitted, proven_admitted, congested_entered, proven_added, proven_evicted) |
//! | `rvs_syn_shed_state` | gauge | what (congested, proven_ipv4, proven_ipv6) |
//! | `rvs_neighbor_events_total` | counter | event (created, unsolicited_ignored, spoof_probes, spoof_refused, evicted, table_full, failed, gc) |
//! | `rvs_neighbor_entries`, `rvs_neighbor_capacity` | gauge | family |
//! | `rvs_connection_table_entries`, `rvs_connection_table_capacity` | gauge | family |
//! | `rvs_rx_ring_frames_total` | counter | interface, event (seen, dropped) |
//! | `rvs_connection_table_bytes`, `rvs_connection_table_limit_bytes`, `rvs_connection_table_buckets` | gauge | family |
//! | `rvs_defense_active` | gauge | strategy (drop_entry, drop_packet, secure_tcp) |
//! | `rvs_defense_sysctl` | gauge | name (amemthresh, am_droprate, drop_entry, drop_packet, secure_tcp) |
//! | `rvs_defense_entries_dropped_total`, `rvs_defense_packets_dropped_total` | counter | |

use rvs_core::dest::Dest;
use rvs_core::director::{DestId, Director, Service, ServiceId};
use rvs_core::model::{ServiceKey, sock};
use rvs_core::stats::{Counters, Rates};
use rvs_core::wire::Malformed;
use std::fmt::Write as _;

/// Escape a label value (`\`, `"` and newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A service as a label value: `TCP 10.1.0.100:80`, `FWM 7 V4`.
pub(crate) fn service_label(k: &ServiceKey) -> String {
    match *k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{protocol} {}", sock(addr, port)),
        ServiceKey::Fwmark { mark, family } => format!("FWM {mark} {family:?}"),
    }
}

/// A metric family being written: its header once, then samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(out: &mut String, name: &str, kind: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: u64) {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", esc(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {v}");
    }
}

/// One metric family over every service: `value` of each, labelled by service (and
/// `direction` when given). `help` empty = a further direction of the family above.
fn per_service(
    out: &mut String,
    svcs: &[(ServiceId, &Service)],
    (name, kind, help, dir): (&str, &str, &str, Option<&str>),
    value: impl Fn(&Service) -> u64,
) {
    if !help.is_empty() {
        Family::header(out, name, kind, help);
    }
    let mut f = Family { out };
    for (_, s) in svcs {
        let label = service_label(&s.cfg.key);
        let mut labels = vec![("service", label.as_str())];
        if let Some(dir) = dir {
            labels.push(("direction", dir));
        }
        f.sample(name, &labels, value(s));
    }
}

/// One metric family over every real server of every service.
fn per_real_server(
    out: &mut String,
    svcs: &[(ServiceId, &Service)],
    (name, kind, help, dir): (&str, &str, &str, Option<&str>),
    value: impl Fn(&Dest, DestId) -> u64,
) {
    if !help.is_empty() {
        Family::header(out, name, kind, help);
    }
    let mut f = Family { out };
    for (_, s) in svcs {
        let label = service_label(&s.cfg.key);
        for (dest, id) in s.dests.iter().zip(&s.dest_ids) {
            let rs = sock(dest.addr, dest.port);
            let mut labels = vec![("service", label.as_str()), ("real_server", rs.as_str())];
            if let Some(dir) = dir {
                labels.push(("direction", dir));
            }
            f.sample(name, &labels, value(dest, *id));
        }
    }
}

/// Render every metric of `d`.
pub fn render(d: &Director) -> String {
    let mut out = String::new();
    let svcs: Vec<_> = d.services().iter().collect();
    let o = &mut out;

    type Pick = fn(&Counters) -> u64;
    let counters: [(&str, &str, Option<&str>, Pick); 5] = [
        (
            "connections_total",
            "Connections scheduled to the {}.",
            None,
            |c| c.conns,
        ),
        (
            "packets_total",
            "Packets through the {}.",
            Some("in"),
            |c| c.inpkts,
        ),
        ("packets_total", "", Some("out"), |c| c.outpkts),
        (
            "bytes_total",
            "Bytes (IP) through the {}.",
            Some("in"),
            |c| c.inbytes,
        ),
        ("bytes_total", "", Some("out"), |c| c.outbytes),
    ];
    for (suffix, help, dir, pick) in counters {
        let name = format!("rvs_service_{suffix}");
        let help = help.replace("{}", "virtual service");
        per_service(o, &svcs, (&name, "counter", &help, dir), |s| pick(&s.stats));
    }
    type RatePick = fn(&Rates) -> u64;
    let rates: [(&str, &str, Option<&str>, RatePick); 5] = [
        (
            "connections_per_second",
            "Connection rate (IPVS estimator, 2 s EWMA).",
            None,
            |r| r.cps,
        ),
        (
            "packets_per_second",
            "Packet rate (IPVS estimator).",
            Some("in"),
            |r| r.inpps,
        ),
        ("packets_per_second", "", Some("out"), |r| r.outpps),
        (
            "bytes_per_second",
            "Byte rate (IPVS estimator).",
            Some("in"),
            |r| r.inbps,
        ),
        ("bytes_per_second", "", Some("out"), |r| r.outbps),
    ];
    for (suffix, help, dir, pick) in rates {
        let name = format!("rvs_service_{suffix}");
        per_service(o, &svcs, (&name, "gauge", help, dir), |s| {
            pick(&s.est.rates())
        });
    }
    for (suffix, help, dir, pick) in counters {
        let name = format!("rvs_real_server_{suffix}");
        let help = help.replace("{}", "real server");
        per_real_server(o, &svcs, (&name, "counter", &help, dir), |_, id| {
            d.services().dest_stats(id).map_or(0, pick)
        });
    }
    type DestPick = fn(&Dest) -> u64;
    let gauges: [(&str, &str, DestPick); 5] = [
        (
            "rvs_real_server_active_connections",
            "Connections counted active (ActiveConn).",
            |d| u64::from(d.active_conns),
        ),
        (
            "rvs_real_server_inactive_connections",
            "Connections counted inactive (InActConn).",
            |d| u64::from(d.inact_conns),
        ),
        (
            "rvs_real_server_persistent_connections",
            "Persistence templates pointing at the real server.",
            |d| u64::from(d.persist_conns),
        ),
        (
            "rvs_real_server_weight",
            "Current weight (0 = quiesced).",
            |d| u64::from(d.weight),
        ),
        (
            "rvs_real_server_overloaded",
            "1 while over its upper connection threshold.",
            |d| u64::from(d.overloaded),
        ),
    ];
    for (name, help, pick) in gauges {
        per_real_server(o, &svcs, (name, "gauge", help, None), |dest, _| pick(dest));
    }

    Family::header(
        &mut out,
        "rvs_drops_total",
        "counter",
        "Packets dropped, by reason.",
    );
    let mut f = Family { out: &mut out };
    for (r, n) in d.drops().iter() {
        f.sample("rvs_drops_total", &[("reason", r.name())], n);
    }
    Family::header(
        &mut out,
        "rvs_malformed_total",
        "counter",
        "Malformed frames, by what was wrong.",
    );
    let mut f = Family { out: &mut out };
    for m in Malformed::ALL {
        f.sample(
            "rvs_malformed_total",
            &[("reason", m.as_str())],
            d.counters().malformed[m.index() % 16],
        );
    }
    let c = d.counters();
    Family::header(
        &mut out,
        "rvs_frames_total",
        "counter",
        "Frames handled by the data plane (probe: health checks sent along the forwarding path).",
    );
    let mut f = Family { out: &mut out };
    for (kind, v) in [
        ("rx", c.rx),
        ("tx", c.tx),
        ("passed", c.passed),
        ("probe", c.probes),
    ] {
        f.sample("rvs_frames_total", &[("kind", kind)], v);
    }
    Family::header(
        &mut out,
        "rvs_address_conflicts_total",
        "counter",
        "ARP packets or neighbour advertisements from another host claiming an owned address.",
    );
    let mut f = Family { out: &mut out };
    f.sample("rvs_address_conflicts_total", &[], c.address_conflicts);
    let n = d.neighbors();
    Family::header(
        &mut out,
        "rvs_neighbor_events_total",
        "counter",
        "Neighbour-table events: entries created, frames refused or ignored, evictions.",
    );
    let mut f = Family { out: &mut out };
    for (event, v) in n.counters().iter() {
        f.sample("rvs_neighbor_events_total", &[("event", event)], v);
    }
    Family::header(
        &mut out,
        "rvs_neighbor_entries",
        "gauge",
        "Entries in the neighbour table.",
    );
    let mut f = Family { out: &mut out };
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        f.sample(
            "rvs_neighbor_entries",
            &[("family", family)],
            n.len(v6) as u64,
        );
    }
    Family::header(
        &mut out,
        "rvs_neighbor_capacity",
        "gauge",
        "Bound of the neighbour table per family (gc_thresh3).",
    );
    let mut f = Family { out: &mut out };
    for family in ["ipv4", "ipv6"] {
        f.sample(
            "rvs_neighbor_capacity",
            &[("family", family)],
            n.capacity() as u64,
        );
    }
    Family::header(
        &mut out,
        "rvs_synproxy_total",
        "counter",
        "SYN proxy events: cookies sent, cookie ACKs valid and invalid, real-server handshakes completed and refused, client segments held and dropped.",
    );
    let mut f = Family { out: &mut out };
    let sp = &c.synproxy;
    for (event, v) in [
        ("cookie_sent", sp.cookies_sent),
        ("ack_valid", sp.acks_valid),
        ("ack_invalid", sp.acks_invalid),
        ("proxied", sp.proxied),
        ("rs_refused", sp.rs_refused),
        ("held", sp.held),
        ("held_dropped", sp.held_dropped),
    ] {
        f.sample("rvs_synproxy_total", &[("event", event)], v);
    }
    let (sh, (p4, p6)) = (d.shed().counters(), d.shed().proven().len());
    Family::header(
        &mut out,
        "rvs_syn_shed_total",
        "counter",
        "SYN admission under overload: unproven SYNs shed and admitted by the budget, proven sources' SYNs admitted while congested, congested periods entered, sources proven and evicted.",
    );
    let mut f = Family { out: &mut out };
    for (event, v) in [
        ("shed", sh.shed),
        ("budget_admitted", sh.budget_admitted),
        ("proven_admitted", sh.proven_admitted),
        ("congested_entered", sh.congested_entered),
        ("proven_added", sh.proven_added),
        ("proven_evicted", sh.proven_evicted),
    ] {
        f.sample("rvs_syn_shed_total", &[("event", event)], v);
    }
    Family::header(
        &mut out,
        "rvs_syn_shed_state",
        "gauge",
        "SYN admission: congested (1 while shedding), proven sources held per family.",
    );
    let mut f = Family { out: &mut out };
    for (what, v) in [
        ("congested", u64::from(d.shed().congested())),
        ("proven_ipv4", p4 as u64),
        ("proven_ipv6", p6 as u64),
    ] {
        f.sample("rvs_syn_shed_state", &[("what", what)], v);
    }
    Family::header(
        &mut out,
        "rvs_connection_table_entries",
        "gauge",
        "Entries in the connection table (templates included).",
    );
    let mut f = Family { out: &mut out };
    f.sample(
        "rvs_connection_table_entries",
        &[("family", "ipv4")],
        d.table_v4().len() as u64,
    );
    f.sample(
        "rvs_connection_table_entries",
        &[("family", "ipv6")],
        d.table_v6().len() as u64,
    );
    Family::header(
        &mut out,
        "rvs_connection_table_capacity",
        "gauge",
        "Capacity of the connection table.",
    );
    let mut f = Family { out: &mut out };
    f.sample(
        "rvs_connection_table_capacity",
        &[("family", "ipv4")],
        d.table_v4().capacity() as u64,
    );
    f.sample(
        "rvs_connection_table_capacity",
        &[("family", "ipv6")],
        d.table_v6().capacity() as u64,
    );
    table_memory_and_defense(&mut out, d);
    out
}

/// The connection tables' memory and the defence strategies (issue 12).
fn table_memory_and_defense(out: &mut String, d: &Director) {
    let tables: [(&str, [u64; 3]); 2] = [
        (
            "ipv4",
            [
                d.table_v4().memory_bytes() as u64,
                d.table_v4().limit_bytes().min(u64::MAX as usize) as u64,
                d.table_v4().buckets() as u64,
            ],
        ),
        (
            "ipv6",
            [
                d.table_v6().memory_bytes() as u64,
                d.table_v6().limit_bytes().min(u64::MAX as usize) as u64,
                d.table_v6().buckets() as u64,
            ],
        ),
    ];
    for (i, (name, help)) in [
        (
            "rvs_connection_table_bytes",
            "Bytes the connection table has allocated (entries, hash heads, expiry wheel).",
        ),
        (
            "rvs_connection_table_limit_bytes",
            "The connection table's memory limit; it grows up to this.",
        ),
        (
            "rvs_connection_table_buckets",
            "Hash buckets of the connection table (ipvsadm -L's size=).",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        Family::header(out, name, "gauge", help);
        let mut f = Family { out: &mut *out };
        for (family, v) in &tables {
            f.sample(name, &[("family", family)], v[i]);
        }
    }
    let def = d.defense();
    Family::header(
        out,
        "rvs_defense_active",
        "gauge",
        "Whether a defence strategy is in force now (1) or not (0).",
    );
    let mut f = Family { out: &mut *out };
    for (strategy, on) in [
        ("drop_entry", def.drop_entry_active()),
        ("drop_packet", def.drop_rate() > 0),
        ("secure_tcp", def.secure_active()),
    ] {
        f.sample(
            "rvs_defense_active",
            &[("strategy", strategy)],
            u64::from(on),
        );
    }
    Family::header(
        out,
        "rvs_defense_sysctl",
        "gauge",
        "The defence sysctls as the kernel would show them (automatic modes read 1 or 2).",
    );
    let m = def.modes();
    let mut f = Family { out: &mut *out };
    for (name, v) in [
        ("amemthresh", m.amemthresh),
        ("am_droprate", m.am_droprate),
        ("drop_entry", u32::from(m.drop_entry)),
        ("drop_packet", u32::from(m.drop_packet)),
        ("secure_tcp", u32::from(m.secure_tcp)),
    ] {
        f.sample("rvs_defense_sysctl", &[("name", name)], u64::from(v));
    }
    for (name, help, v) in [
        (
            "rvs_defense_entries_dropped_total",
            "Connection entries removed by drop_entry.",
            def.counters.entries_dropped,
        ),
        (
            "rvs_defense_packets_dropped_total",
            "New-connection packets dropped by drop_packet.",
            def.counters.packets_dropped,
        ),
    ] {
        Family::header(out, name, "counter", help);
        Family { out: &mut *out }.sample(name, &[], v);
    }
}

/// The health monitor's metrics, appended to `out`: per monitored real server whether it is
/// up and its effective weight, the checks run, and how late check rounds start.
pub fn render_health(out: &mut String, m: &crate::health::Monitor) {
    let servers: Vec<_> = crate::desired::lock(&m.health).servers().collect();
    type StatusPick = fn(&rvs_core::health::ServerStatus) -> u64;
    let families: [(&str, &str, StatusPick); 4] = [
        (
            "rvs_health_real_server_up",
            "1 while the health checks say the real server is up",
            |s| u64::from(s.up),
        ),
        (
            "rvs_health_effective_weight",
            "The weight the health monitor gives the real server (0 while quiesced or removed)",
            |s| u64::from(s.weight),
        ),
        (
            "rvs_health_check_successes_total",
            "Checks of the real server that passed",
            |s| s.successes,
        ),
        (
            "rvs_health_check_failures_total",
            "Checks of the real server that failed",
            |s| s.failures,
        ),
    ];
    for (name, help, value) in families {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        Family::header(out, name, kind, help);
        let mut f = Family { out: &mut *out };
        for s in &servers {
            let label = service_label(&s.service);
            let rs = sock(s.addr, s.port);
            f.sample(
                name,
                &[("service", label.as_str()), ("real_server", rs.as_str())],
                value(s),
            );
        }
    }
    let (count, sum, max) = m.lag.read();
    Family::header(
        out,
        "rvs_health_check_lag_microseconds",
        "summary",
        "How late check rounds started after they were due",
    );
    let mut f = Family { out: &mut *out };
    f.sample("rvs_health_check_lag_microseconds_count", &[], count);
    f.sample(
        "rvs_health_check_lag_microseconds_sum",
        &[],
        sum.as_micros() as u64,
    );
    Family::header(
        out,
        "rvs_health_check_lag_max_microseconds",
        "gauge",
        "The latest any check round started after it was due",
    );
    let mut f = Family { out: &mut *out };
    f.sample(
        "rvs_health_check_lag_max_microseconds",
        &[],
        max.as_micros() as u64,
    );
}

/// The RX rings' kernel counters (`PACKET_STATISTICS`), appended to `out`: frames each
/// interface's socket saw and frames the kernel dropped because the ring was full (the
/// worker fell behind). `rings` holds (interface, seen, dropped).
pub fn render_rings(out: &mut String, rings: &[(String, u64, u64)]) {
    Family::header(
        out,
        "rvs_rx_ring_frames_total",
        "counter",
        "Frames an interface's RX ring saw, and frames the kernel dropped because the ring was full.",
    );
    let mut f = Family { out: &mut *out };
    for (name, seen, dropped) in rings {
        let name = esc(name);
        f.sample(
            "rvs_rx_ring_frames_total",
            &[("interface", &name), ("event", "seen")],
            *seen,
        );
        f.sample(
            "rvs_rx_ring_frames_total",
            &[("interface", &name), ("event", "dropped")],
            *dropped,
        );
    }
}

/// Connection-sync metrics, appended to `out`.
pub fn render_sync(out: &mut String, c: &crate::syncd::SyncCounts, d: &Director) {
    let e = d.sync_counters();
    Family::header(
        out,
        "rvs_sync_messages_total",
        "counter",
        "Connection-sync messages sent and received (accepted by sync id).",
    );
    let mut f = Family { out: &mut *out };
    for (dir, v) in [("sent", c.sent_messages), ("received", c.received_messages)] {
        f.sample("rvs_sync_messages_total", &[("direction", dir)], v);
    }
    Family::header(
        out,
        "rvs_sync_records_total",
        "counter",
        "Connection-sync records: queued by the engine, dropped from a full queue, sent, imported, refused.",
    );
    let mut f = Family { out: &mut *out };
    for (what, v) in [
        ("queued", e.queued),
        ("dropped", e.dropped),
        ("sent", c.sent_records),
        ("imported", c.imported),
        ("refused", c.refused),
    ] {
        f.sample("rvs_sync_records_total", &[("what", what)], v);
    }
    Family::header(
        out,
        "rvs_sync_send_errors_total",
        "counter",
        "Connection-sync messages the socket refused to send.",
    );
    let mut f = Family { out: &mut *out };
    f.sample("rvs_sync_send_errors_total", &[], c.send_errors);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::director::{DirectorSettings, NetConfig};
    use rvs_core::model::{Config, Protocol, RealServerConfig, VirtualServiceConfig};

    #[test]
    fn every_family_is_documented_and_samples_are_well_formed() {
        let mut svc = VirtualServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "10.1.0.100".parse().unwrap(),
            port: 80,
        });
        svc.real_servers
            .push(RealServerConfig::new("10.2.0.11".parse().unwrap(), 80));
        let cfg = Config {
            services: vec![svc],
            ..Config::default()
        };
        let d = Director::new(NetConfig::default(), &cfg, DirectorSettings::default()).unwrap();
        let text = render(&d);
        assert!(text.contains(
            "rvs_real_server_weight{service=\"TCP 10.1.0.100:80\",real_server=\"10.2.0.11:80\"} 1\n"
        ));
        assert!(text.contains("rvs_drops_total{reason=\"no_real_server\"} 0\n"));
        assert!(text.contains("rvs_neighbor_events_total{event=\"spoof_refused\"} 0\n"));
        assert!(text.contains("rvs_neighbor_capacity{family=\"ipv6\"} 1024\n"));
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(typed.insert(name.to_string()), "{name} typed twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    typed.contains(name),
                    "{name} has a # TYPE before its samples"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<u64>().is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
