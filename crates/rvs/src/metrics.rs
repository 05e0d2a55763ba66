//! Prometheus metrics of a running director, in the text exposition format (version 0.0.4).
//!
//! Rendered from the engine on request, so the packet path only keeps its plain counters.
//! Every metric is documented with `# HELP` and typed with `# TYPE`; label values are
//! escaped as the format requires. The set is small and fixed, so it is written directly
//! rather than through a registry.
//!
//! Naming follows Prometheus's guide (<https://prometheus.io/docs/practices/naming/>):
//! base units (seconds, bytes), `_total` on counters only, one thing per label. A virtual
//! service is labelled `protocol` (`tcp`, `udp`, `sctp`), `address` and `port`, or
//! `fwmark` and `family` (`ipv4`, `ipv6`) for a firewall-mark service; a real server
//! `real_server` (`ADDR:PORT`, IPv6 in brackets). Rates are left to PromQL (`rate()`),
//! so the IPVS estimator's rates are not exported. The list of every metric is
//! docs/metrics.md.

use crate::snapshot::{DestView, DirectorView, ServiceView};
use rvs_core::dest::Dest;
use rvs_core::model::{ServiceKey, sock};
use rvs_core::stats::Counters;
use rvs_core::wire::Malformed;
use std::fmt::Write as _;

/// Escape a label value (`\`, `"` and newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A service as text for logs: `TCP 10.1.0.100:80`, `FWM 7 V4`.
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

/// A service's labels: `protocol`, `address`, `port`, or `fwmark`, `family`.
pub(crate) fn service_labels(k: &ServiceKey) -> [(&'static str, String); 3] {
    match *k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => [
            ("protocol", protocol.to_string().to_ascii_lowercase()),
            ("address", addr.to_string()),
            ("port", port.to_string()),
        ],
        ServiceKey::Fwmark { mark, family } => [
            ("fwmark", mark.to_string()),
            ("family", family_name(family).to_string()),
            ("", String::new()),
        ],
    }
}

/// `ipv4` or `ipv6`.
fn family_name(f: rvs_core::model::Family) -> &'static str {
    match f {
        rvs_core::model::Family::V4 => "ipv4",
        rvs_core::model::Family::V6 => "ipv6",
    }
}

/// `service_labels(k)` (empty names dropped) followed by `more`.
fn labels_with<'a>(
    service: &'a [(&'static str, String); 3],
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    service
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (*k, v.as_str()))
        .chain(more.iter().copied())
        .collect()
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

    /// A sample with a fractional value (seconds).
    fn sample_f64(&mut self, name: &str, v: f64) {
        let _ = writeln!(self.out, "{name} {v}");
    }
}

/// The label text of every service (`protocol="tcp",address="10.1.0.100",port="80"`) and
/// of each of its real servers (the service's and `real_server="..."`), written once per
/// configuration rather than once per sample: a scrape of 10,000 services has ~200,000
/// samples.
#[derive(Default)]
struct LabelTexts {
    services: Vec<String>,
    dests: Vec<Vec<String>>,
}

/// What the label texts were written for: each service's key and its real servers.
type Shape = Vec<(ServiceKey, Vec<(std::net::IpAddr, u16)>)>;

/// Label texts kept from one render to the next (a daemon keeps one for its scrapes): they
/// are written again only when the services or their real servers changed, so a scrape of
/// an unchanged configuration only formats numbers.
#[derive(Default)]
pub struct LabelCache {
    shape: Shape,
    labels: LabelTexts,
    /// The health monitor's servers (service, address, port) and their label texts.
    health_shape: Vec<(ServiceKey, std::net::IpAddr, u16)>,
    health: Vec<String>,
    /// The last render's length, reserved at once for the next.
    last_len: usize,
}

impl LabelCache {
    /// The label texts for `svcs`, written again if they changed since the last call.
    fn services(&mut self, svcs: &[ServiceView]) -> &LabelTexts {
        let same = self.shape.len() == svcs.len()
            && self.shape.iter().zip(svcs).all(|((k, ds), s)| {
                *k == s.cfg.key
                    && ds.len() == s.dests.len()
                    && ds
                        .iter()
                        .zip(&s.dests)
                        .all(|(&(a, p), d)| a == d.dest.addr && p == d.dest.port)
            });
        if !same {
            self.shape = svcs
                .iter()
                .map(|s| {
                    let ds = s.dests.iter().map(|d| (d.dest.addr, d.dest.port)).collect();
                    (s.cfg.key, ds)
                })
                .collect();
            self.labels = LabelTexts::of(svcs);
        }
        &self.labels
    }

    /// The label texts of the health monitor's `servers`, written again if they changed.
    fn health(&mut self, servers: &[rvs_core::health::ServerStatus]) -> &[String] {
        let same = self.health_shape.len() == servers.len()
            && self
                .health_shape
                .iter()
                .zip(servers)
                .all(|(&(k, a, p), s)| k == s.service && a == s.addr && p == s.port);
        if !same {
            self.health_shape = servers
                .iter()
                .map(|s| (s.service, s.addr, s.port))
                .collect();
            self.health = servers
                .iter()
                .map(|s| {
                    let service = service_labels(&s.service);
                    let rs = sock(s.addr, s.port);
                    label_text(&labels_with(&service, &[("real_server", rs.as_str())]))
                })
                .collect();
        }
        &self.health
    }
}

/// `k="v",...` with the values escaped.
fn label_text(labels: &[(&str, &str)]) -> String {
    let mut t = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            t.push(',');
        }
        let _ = write!(t, "{k}=\"{}\"", esc(v));
    }
    t
}

/// Append `v` in decimal (what `write!(out, "{v}")` writes, without the formatting
/// machinery: a scrape formats ~200,000 numbers).
fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

impl LabelTexts {
    fn of(svcs: &[ServiceView]) -> LabelTexts {
        let text = |labels: &[(&str, &str)]| {
            let mut t = String::new();
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    t.push(',');
                }
                let _ = write!(t, "{k}=\"{}\"", esc(v));
            }
            t
        };
        let mut services = Vec::with_capacity(svcs.len());
        let mut dests = Vec::with_capacity(svcs.len());
        for s in svcs {
            let service = service_labels(&s.cfg.key);
            services.push(text(&labels_with(&service, &[])));
            dests.push(
                s.dests
                    .iter()
                    .map(|d| {
                        let rs = sock(d.dest.addr, d.dest.port);
                        text(&labels_with(&service, &[("real_server", rs.as_str())]))
                    })
                    .collect(),
            );
        }
        LabelTexts { services, dests }
    }
}

/// One sample: `name{labels[,direction="dir"]} v`.
fn sample_with(out: &mut String, name: &str, labels: &str, dir: Option<&str>, v: u64) {
    out.push_str(name);
    out.push('{');
    out.push_str(labels);
    if let Some(dir) = dir {
        out.push_str(",direction=\"");
        out.push_str(dir);
        out.push('"');
    }
    out.push_str("} ");
    push_u64(out, v);
    out.push('\n');
}

/// One metric family over every service: `value` of each, labelled by service (and
/// `direction` when given). `help` empty = a further direction of the family above.
fn per_service(
    out: &mut String,
    (svcs, labels): (&[ServiceView], &LabelTexts),
    (name, kind, help, dir): (&str, &str, &str, Option<&str>),
    value: impl Fn(&ServiceView) -> u64,
) {
    if !help.is_empty() {
        Family::header(out, name, kind, help);
    }
    for (s, l) in svcs.iter().zip(&labels.services) {
        sample_with(out, name, l, dir, value(s));
    }
}

/// One metric family over every real server of every service.
fn per_real_server(
    out: &mut String,
    (svcs, labels): (&[ServiceView], &LabelTexts),
    (name, kind, help, dir): (&str, &str, &str, Option<&str>),
    value: impl Fn(&DestView) -> u64,
) {
    if !help.is_empty() {
        Family::header(out, name, kind, help);
    }
    for (s, ls) in svcs.iter().zip(&labels.dests) {
        for (dest, l) in s.dests.iter().zip(ls) {
            sample_with(out, name, l, dir, value(dest));
        }
    }
}

/// Render every metric of the engine seen in `v`.
pub fn render(v: &DirectorView) -> String {
    render_cached(v, &mut LabelCache::default())
}

/// [`render`] with the label texts of `cache` (written again only for a changed
/// configuration).
pub fn render_cached(v: &DirectorView, cache: &mut LabelCache) -> String {
    let mut out = String::with_capacity(cache.last_len + cache.last_len / 8);
    Family::header(
        &mut out,
        "rvs_build_info",
        "gauge",
        "Always 1; the labels say which rvs is running.",
    );
    Family { out: &mut out }.sample(
        "rvs_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    let labels = cache.services(&v.services);
    let svcs = (v.services.as_slice(), labels);
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
        per_service(o, svcs, (&name, "counter", &help, dir), |s| pick(&s.stats));
    }
    for (suffix, help, dir, pick) in counters {
        let name = format!("rvs_real_server_{suffix}");
        let help = help.replace("{}", "real server");
        per_real_server(o, svcs, (&name, "counter", &help, dir), |dest| {
            pick(&dest.stats)
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
        per_real_server(o, svcs, (name, "gauge", help, None), |dest| {
            pick(&dest.dest)
        });
    }

    Family::header(
        &mut out,
        "rvs_drops_total",
        "counter",
        "Packets dropped, by reason.",
    );
    let mut f = Family { out: &mut out };
    for (r, n) in v.drops.iter() {
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
            v.counters.malformed[m.index() % 16],
        );
    }
    let c = &v.counters;
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
    Family::header(
        &mut out,
        "rvs_neighbor_events_total",
        "counter",
        "Neighbour-table events: entries created, frames refused or ignored, evictions.",
    );
    let mut f = Family { out: &mut out };
    for (event, n) in v.neigh.iter() {
        f.sample("rvs_neighbor_events_total", &[("event", event)], n);
    }
    Family::header(
        &mut out,
        "rvs_neighbor_entries",
        "gauge",
        "Entries in the neighbour table.",
    );
    let mut f = Family { out: &mut out };
    for (family, len) in ["ipv4", "ipv6"].into_iter().zip(v.neigh_len) {
        f.sample("rvs_neighbor_entries", &[("family", family)], len as u64);
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
            v.neigh_capacity as u64,
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
    let sh = &v.shed;
    Family::header(
        &mut out,
        "rvs_syn_shed_total",
        "counter",
        "SYN admission under overload: unproven SYNs shed and admitted by the budget, proven sources' SYNs admitted while congested, congested periods entered, sources proven and evicted.",
    );
    let mut f = Family { out: &mut out };
    for (event, n) in [
        ("shed", sh.shed),
        ("budget_admitted", sh.budget_admitted),
        ("proven_admitted", sh.proven_admitted),
        ("congested_entered", sh.congested_entered),
        ("proven_added", sh.proven_added),
        ("proven_evicted", sh.proven_evicted),
    ] {
        f.sample("rvs_syn_shed_total", &[("event", event)], n);
    }
    Family::header(
        &mut out,
        "rvs_syn_shed_congested",
        "gauge",
        "SYN admission: 1 while the SYN ring is congested and unproven sources' SYNs are shed.",
    );
    let mut f = Family { out: &mut out };
    f.sample("rvs_syn_shed_congested", &[], u64::from(v.shed_congested));
    Family::header(
        &mut out,
        "rvs_syn_shed_proven_sources",
        "gauge",
        "SYN admission: proven client sources held (IPv4 addresses, IPv6 /64 prefixes).",
    );
    let mut f = Family { out: &mut out };
    for (family, n) in [("ipv4", v.shed_proven[0]), ("ipv6", v.shed_proven[1])] {
        f.sample(
            "rvs_syn_shed_proven_sources",
            &[("family", family)],
            n as u64,
        );
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
        v.tables[0].len as u64,
    );
    f.sample(
        "rvs_connection_table_entries",
        &[("family", "ipv6")],
        v.tables[1].len as u64,
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
        v.tables[0].capacity as u64,
    );
    f.sample(
        "rvs_connection_table_capacity",
        &[("family", "ipv6")],
        v.tables[1].capacity as u64,
    );
    table_memory_and_defense(&mut out, v);
    cache.last_len = out.len();
    out
}

/// The connection tables' memory and the defence strategies (issue 12).
fn table_memory_and_defense(out: &mut String, v: &DirectorView) {
    let tables: [(&str, [u64; 3]); 2] = [
        (
            "ipv4",
            [
                v.tables[0].memory_bytes as u64,
                v.tables[0].limit_bytes.min(u64::MAX as usize) as u64,
                v.tables[0].buckets as u64,
            ],
        ),
        (
            "ipv6",
            [
                v.tables[1].memory_bytes as u64,
                v.tables[1].limit_bytes.min(u64::MAX as usize) as u64,
                v.tables[1].buckets as u64,
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
    let def = &v.defense;
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
    render_health_cached(out, m, &mut LabelCache::default());
}

/// [`render_health`] with the label texts of `cache`.
pub fn render_health_cached(out: &mut String, m: &crate::health::Monitor, cache: &mut LabelCache) {
    let servers: Vec<_> = crate::desired::lock(&m.health).servers().collect();
    let labels = cache.health(&servers);
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
        for (s, l) in servers.iter().zip(labels) {
            sample_with(out, name, l, None, value(s));
        }
    }
    let (count, sum, max) = m.lag.read();
    Family::header(
        out,
        "rvs_health_check_lag_seconds",
        "summary",
        "How late check rounds started after they were due",
    );
    let mut f = Family { out: &mut *out };
    f.sample("rvs_health_check_lag_seconds_count", &[], count);
    f.sample_f64("rvs_health_check_lag_seconds_sum", sum.as_secs_f64());
    Family::header(
        out,
        "rvs_health_check_lag_max_seconds",
        "gauge",
        "The latest any check round started after it was due",
    );
    Family { out: &mut *out }.sample_f64("rvs_health_check_lag_max_seconds", max.as_secs_f64());
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

/// The metrics endpoint's own cost, appended to `out`: how long the previous render took
/// (`took` seconds: the worker's copy of the engine and the formatting).
pub fn render_self(out: &mut String, took: f64) {
    let name = "rvs_metrics_render_seconds";
    Family::header(
        out,
        name,
        "gauge",
        "How long the previous metrics render took (copying the engine's numbers and formatting).",
    );
    Family { out: &mut *out }.sample_f64(name, took);
}

/// Whether the kernel forwards (any forwarding switch of the family on, see
/// [`crate::kernel`]), appended to `out`.
pub fn render_forwarding(out: &mut String) {
    let name = "rvs_kernel_forwarding";
    Family::header(
        out,
        name,
        "gauge",
        "1 while the kernel's IP forwarding is on for the director's interfaces (it would forward a second copy of VIP traffic).",
    );
    let mut f = Family { out: &mut *out };
    for (family, on) in crate::kernel::forwarding_gauges() {
        f.sample(name, &[("family", family)], on);
    }
}

/// Connection-sync metrics, appended to `out`.
pub fn render_sync(
    out: &mut String,
    c: &crate::syncd::SyncCounts,
    e: &rvs_core::director::SyncCounters,
) {
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
        f.sample("rvs_sync_records_total", &[("event", what)], v);
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
    use rvs_core::director::{Director, DirectorSettings, NetConfig};
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
        let text = render(&DirectorView::of(&d));
        assert!(text.contains(
            "rvs_real_server_weight{protocol=\"tcp\",address=\"10.1.0.100\",port=\"80\",real_server=\"10.2.0.11:80\"} 1\n"
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
