//! What the console asks the daemon, and what it makes of the answers.
//!
//! A [`Snapshot`] is read from five control requests: ipvsadm's `-L -n --exact` (scheduler,
//! forwarding method, weight, active/inactive connections), `-L -n --stats --exact` and
//! `-L -n --rate --exact` (ipvsadm 1.31's listing formats, which rvsadm reproduces), and
//! rvs's `list --health` and `list --failover`.
//!
//! Actions on a real server go through rvsadm's edit path: the server's own rule is read
//! from `-S -n` (so its forwarding method, thresholds and tunnel options are kept) and sent
//! back as `-e ... -w N` (drain: weight 0; ready: its configured weight; weight: N), or
//! `-d` (maintenance: removed, its rule remembered by the console to add back on ready).
//! A reload of the daemon's file replaces these changes, as it replaces rvsadm's.

use crate::{Control, IpvsadmReply};
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// Counters of `--stats`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Connections.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
}

/// Rates of `--rate` (per second).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Rates {
    /// Connections.
    pub cps: u64,
    /// Packets in.
    pub inpps: u64,
    /// Packets out.
    pub outpps: u64,
    /// Bytes in.
    pub inbps: u64,
    /// Bytes out.
    pub outbps: u64,
}

/// The health monitor's view of a real server (`list --health`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Health {
    /// Passing its checks.
    pub up: bool,
    /// The weight the monitor gives it.
    pub weight: i64,
    /// Its configured weight.
    pub configured_weight: i64,
    /// Checks passed.
    pub successes: u64,
    /// Checks failed.
    pub failures: u64,
    /// The last failure's reason.
    pub last_failure: Option<String>,
}

/// A real server.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RealServer {
    /// `address:port` (IPv6 in brackets).
    pub address: String,
    /// `up`, `down` (failing its checks, removed), `quiesced` (failing, weight 0),
    /// `drained` (weight 0), `maintenance` (removed by an operator).
    pub state: String,
    /// ipvsadm's forwarding column (Masq, Route, Tunnel, ...).
    pub forward: String,
    /// The weight in the table (effective).
    pub weight: i64,
    /// The configured weight (the health monitor's, else the table's).
    pub configured_weight: i64,
    /// Active connections.
    pub active: u64,
    /// Inactive connections.
    pub inactive: u64,
    /// Totals.
    pub stats: Stats,
    /// Rates.
    pub rates: Rates,
    /// Its health checks, when it has any.
    pub health: Option<Health>,
}

/// A virtual service.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Service {
    /// ipvsadm's name of it: `TCP 192.168.0.100:80`, `FWM 5`.
    pub id: String,
    /// `active`, or `inactive` (taken out of the table by this console's deactivate).
    pub state: String,
    /// `TCP`, `UDP`, `SCTP`, `FWM`.
    pub protocol: String,
    /// Address and port, or the mark.
    pub address: String,
    /// The scheduler.
    pub scheduler: String,
    /// What follows it on ipvsadm's line (`persistent 300`, ...).
    pub flags: String,
    /// Totals.
    pub stats: Stats,
    /// Rates.
    pub rates: Rates,
    /// Its real servers.
    pub servers: Vec<RealServer>,
}

/// A VRRP instance (`list --failover`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Instance {
    /// Name.
    pub name: String,
    /// Virtual router id.
    pub vrid: String,
    /// `inet` or `inet6`.
    pub family: String,
    /// Interface.
    pub interface: String,
    /// MASTER, BACKUP, FAULT, INIT.
    pub state: String,
    /// Priority.
    pub priority: String,
    /// Adverts received.
    pub adverts_in: String,
    /// Adverts sent.
    pub adverts_out: String,
    /// Adverts refused.
    pub refused: String,
    /// Times it became master.
    pub masters: String,
}

/// The failover panel.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Failover {
    /// Pulse's line (`pulse: active (primary), heartbeats ...`), if pulse runs.
    pub pulse: Option<String>,
    /// VRRP instances.
    pub instances: Vec<Instance>,
    /// The daemon's text as it sent it.
    pub text: String,
}

/// An active-active director's announcement state (`list --announce`; docs/operating.md,
/// "Active-active directors: running them").
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Announce {
    /// `in service` or `drained` (`rvs drain-director`).
    pub director: String,
    /// Each VIP: announced to the routers or not, and why not.
    pub vips: Vec<AnnouncedVip>,
    /// The daemon's text as it sent it.
    pub text: String,
}

/// One VIP of [`Announce`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AnnouncedVip {
    /// The address.
    pub vip: String,
    /// Its route is in the active-active table (BIRD exports it).
    pub announced: bool,
    /// Why not (`quorum lost: TCP 10.1.0.100:80`, `director drained`), else empty.
    pub reason: String,
}

/// `list --announce`, from a director in active-active mode; None from any other (the
/// daemon refuses the request there).
fn parse_announce(text: &str) -> Option<Announce> {
    let mut lines = text.lines();
    let head = lines.next()?.strip_prefix("Active-active: ")?;
    let director = head.rsplit_once(", director ")?.1.trim().to_string();
    let vips = lines
        .filter(|l| !l.starts_with("VIP "))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (vip, on) = (w.first()?, w.get(1)?);
            Some(AnnouncedVip {
                vip: (*vip).to_string(),
                announced: *on == "yes",
                reason: w[2..].join(" "),
            })
        })
        .collect();
    Some(Announce {
        director,
        vips,
        text: text.to_string(),
    })
}

/// Everything the live page shows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was read (UTC).
    pub time: String,
    /// Virtual services.
    pub services: Vec<Service>,
    /// Failover.
    pub failover: Failover,
    /// Active-active announcement, when the director runs in that mode.
    pub announce: Option<Announce>,
    /// Connection-sync counters (the daemon's `rvs_sync_*` metrics: `messages sent`,
    /// `records imported`, ...), empty when the daemon does not say.
    pub sync: Vec<SyncCounter>,
    /// Why the daemon could not be read (the rest is then empty).
    pub error: Option<String>,
}

/// One connection-sync counter.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncCounter {
    /// `messages sent`, `records queued`, `send errors`.
    pub name: String,
    /// Its value.
    pub value: u64,
}

/// The `rvs_sync_*` samples of the daemon's metrics text (`rvs_sync_records_total{event="sent"} 5`).
fn parse_sync(metrics: &str) -> Vec<SyncCounter> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("rvs_sync_")?;
            let (series, value) = rest.rsplit_once(' ')?;
            let (name, label) = match series.split_once('{') {
                Some((n, labels)) => (n, labels.split('"').nth(1).unwrap_or_default()),
                None => (series, ""),
            };
            let name = name
                .strip_suffix("_total")
                .unwrap_or(name)
                .replace('_', " ");
            Some(SyncCounter {
                name: if label.is_empty() {
                    name
                } else {
                    format!("{name} {label}")
                },
                value: value.trim().parse().ok()?,
            })
        })
        .collect()
}

/// `sorry`'s lines: the service id and the sorry server that is in.
fn parse_sorry(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (server, svc) = w.split_last()?;
            (!svc.is_empty()).then(|| (svc.join(" "), server.to_string()))
        })
        .collect()
}

/// A real server flattened with its service (`/api/stats`, the CSV).
#[derive(Debug, Clone, Serialize)]
pub struct Row<'a> {
    /// The service.
    pub service: &'a str,
    /// The scheduler.
    pub scheduler: &'a str,
    /// The real server.
    #[serde(flatten)]
    pub server: &'a RealServer,
}

impl Snapshot {
    /// Every real server with its service.
    pub fn rows(&self) -> Vec<Row<'_>> {
        self.services
            .iter()
            .flat_map(|s| {
                s.servers.iter().map(move |r| Row {
                    service: &s.id,
                    scheduler: &s.scheduler,
                    server: r,
                })
            })
            .collect()
    }

    /// The stats table as CSV (RFC 4180; fields quoted where they need it).
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "service,server,state,forward,weight,configured_weight,active,inactive,conns,inpkts,outpkts,inbytes,outbytes,cps,inpps,outpps,inbps,outbps,health_ok,health_failed,last_failure\n",
        );
        for r in self.rows() {
            let s = r.server;
            let h = s.health.as_ref();
            let fields = [
                r.service.to_string(),
                s.address.clone(),
                s.state.clone(),
                s.forward.clone(),
                s.weight.to_string(),
                s.configured_weight.to_string(),
                s.active.to_string(),
                s.inactive.to_string(),
                s.stats.conns.to_string(),
                s.stats.inpkts.to_string(),
                s.stats.outpkts.to_string(),
                s.stats.inbytes.to_string(),
                s.stats.outbytes.to_string(),
                s.rates.cps.to_string(),
                s.rates.inpps.to_string(),
                s.rates.outpps.to_string(),
                s.rates.inbps.to_string(),
                s.rates.outbps.to_string(),
                h.map_or(String::new(), |h| h.successes.to_string()),
                h.map_or(String::new(), |h| h.failures.to_string()),
                h.and_then(|h| h.last_failure.clone()).unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

/// One CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-` or `@` gets a `'` so a spreadsheet does not run it as a formula.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) && f.parse::<f64>().is_err() {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

/// A line of an ipvsadm listing.
enum Line<'a> {
    /// A service: its id and the words after it.
    Service(String, Vec<&'a str>),
    /// A real server: its address and the words after it.
    Real(&'a str, Vec<&'a str>),
}

/// The service and real-server lines of an ipvsadm listing (headers skipped).
fn listing_lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("  -> ") {
            let mut w = rest.split_whitespace();
            match w.next() {
                Some("RemoteAddress:Port") | None => {}
                Some(addr) => out.push(Line::Real(addr, w.collect())),
            }
        } else {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() >= 2 && matches!(w[0], "TCP" | "UDP" | "SCTP" | "FWM") {
                out.push(Line::Service(format!("{} {}", w[0], w[1]), w[2..].to_vec()));
            }
        }
    }
    out
}

fn num(w: &[&str], i: usize) -> u64 {
    w.get(i).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Stores five numbers of a listing line in a service (`None`) or its real server.
type Setter<'a> = dyn FnMut(&mut Service, Option<usize>, [u64; 5]) + 'a;

/// Parse the five listings into services (without health merged).
fn parse_table(plain: &str, stats: &str, rates: &str) -> Vec<Service> {
    let mut services: Vec<Service> = Vec::new();
    for line in listing_lines(plain) {
        match line {
            Line::Service(id, rest) => {
                let (protocol, address) = id.split_once(' ').unwrap_or((&id, ""));
                services.push(Service {
                    protocol: protocol.into(),
                    address: address.into(),
                    scheduler: rest.first().unwrap_or(&"").to_string(),
                    flags: rest.get(1..).unwrap_or_default().join(" "),
                    id,
                    ..Service::default()
                });
            }
            Line::Real(addr, rest) => {
                if let Some(s) = services.last_mut() {
                    // Forward Weight ActiveConn InActConn
                    let weight = rest.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                    s.servers.push(RealServer {
                        address: addr.into(),
                        forward: rest.first().unwrap_or(&"").to_string(),
                        weight,
                        configured_weight: weight,
                        active: num(&rest, 2),
                        inactive: num(&rest, 3),
                        ..RealServer::default()
                    });
                }
            }
        }
    }
    let mut fill = |text: &str, set: &mut Setter<'_>| {
        let mut current: Option<usize> = None;
        for line in listing_lines(text) {
            match line {
                Line::Service(id, rest) => {
                    current = services.iter().position(|s| s.id == id);
                    if let Some(i) = current {
                        let v = [0, 1, 2, 3, 4].map(|k| num(&rest, k));
                        set(&mut services[i], None, v);
                    }
                }
                Line::Real(addr, rest) => {
                    if let Some(i) = current
                        && let Some(j) = services[i].servers.iter().position(|r| r.address == addr)
                    {
                        let v = [0, 1, 2, 3, 4].map(|k| num(&rest, k));
                        set(&mut services[i], Some(j), v);
                    }
                }
            }
        }
    };
    fill(stats, &mut |s, j, [a, b, c, d, e]| {
        let st = Stats {
            conns: a,
            inpkts: b,
            outpkts: c,
            inbytes: d,
            outbytes: e,
        };
        match j {
            None => s.stats = st,
            Some(j) => s.servers[j].stats = st,
        }
    });
    fill(rates, &mut |s, j, [a, b, c, d, e]| {
        let r = Rates {
            cps: a,
            inpps: b,
            outpps: c,
            inbps: d,
            outbps: e,
        };
        match j {
            None => s.rates = r,
            Some(j) => s.servers[j].rates = r,
        }
    });
    services
}

/// `list --health`'s rows: service id, server, health.
fn parse_health(text: &str) -> Vec<(String, String, Health)> {
    let mut out = Vec::new();
    for l in text.lines().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        // Prot Address Server State Weight Conf Ok/Failed Last-failure...
        if w.len() < 8 {
            continue;
        }
        let (ok, failed) = w[6].split_once('/').unwrap_or(("0", "0"));
        let last = w[7..].join(" ");
        out.push((
            format!("{} {}", w[0], w[1]),
            w[2].to_string(),
            Health {
                up: w[3] == "up",
                weight: w[4].parse().unwrap_or(0),
                configured_weight: w[5].parse().unwrap_or(0),
                successes: ok.parse().unwrap_or(0),
                failures: failed.parse().unwrap_or(0),
                last_failure: (last != "-").then_some(last),
            },
        ));
    }
    out
}

/// `list --failover`.
fn parse_failover(text: &str) -> Failover {
    let mut f = Failover {
        text: text.to_string(),
        ..Failover::default()
    };
    for l in text.lines() {
        if l.starts_with("pulse:") {
            f.pulse = Some(l.to_string());
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() == 10 && w[0] != "Instance" {
            let s = |i: usize| w[i].to_string();
            f.instances.push(Instance {
                name: s(0),
                vrid: s(1),
                family: s(2),
                interface: s(3),
                state: s(4),
                priority: s(5),
                adverts_in: s(6),
                adverts_out: s(7),
                refused: s(8),
                masters: s(9),
            });
        }
    }
    f
}

/// What the console remembers of servers it took out of the table (maintenance).
/// With a state file ([`Memory::open`]) it is written there after every change and read
/// back at start, so `ready` and `activate` still work after a console restart.
#[derive(Default)]
pub struct Memory {
    /// The state file, if any.
    file: Option<std::path::PathBuf>,
    /// `(service id, server)` → its `-a` rule, for the servers in maintenance.
    maintenance: Mutex<HashMap<(String, String), Vec<String>>>,
    /// `(service id, server)` → its weight before a drain, for ready.
    drained: Mutex<HashMap<(String, String), i64>>,
    /// Service id → its `-A` and `-a` rules, for the services deactivated.
    inactive: Mutex<HashMap<String, Vec<Vec<String>>>>,
}

/// The state file's contents (JSON).
#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
struct Saved {
    /// `(service, server, rule)` in maintenance.
    maintenance: Vec<(String, String, Vec<String>)>,
    /// `(service, server, weight before the drain)`.
    drained: Vec<(String, String, i64)>,
    /// `(service, its -A and -a rules)` deactivated.
    inactive: Vec<(String, Vec<Vec<String>>)>,
}

impl Memory {
    /// The memory kept in `file` (none when it is not there), reconciled with the daemon's
    /// table: an entry the table no longer bears out (a server in maintenance that is back,
    /// a deactivated service that is back, a drained server whose weight is not 0 — a
    /// reload of the daemon's file put them back) is dropped. What it did, for the log.
    pub fn open(file: std::path::PathBuf, control: &dyn Control) -> (Memory, String) {
        let saved: Saved = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let table = listing(control, &["-S", "-n"]);
        let rules: Vec<Vec<String>> = table
            .as_ref()
            .map(|t| {
                t.lines()
                    .map(|l| l.split_whitespace().map(String::from).collect())
                    .collect()
            })
            .unwrap_or_default();
        let server_rule = |svc: &str, server: &str| -> Option<Vec<String>> {
            let t = Target::parse(svc, server).ok()?;
            let want: SocketAddr = t.server.parse().ok()?;
            rules
                .iter()
                .find(|w| {
                    w.first().map(String::as_str) == Some("-a")
                        && w.get(1..3) == Some(&t.service_args[..])
                        && w.iter()
                            .position(|x| x == "-r")
                            .and_then(|i| w.get(i + 1))
                            .and_then(|a| a.parse::<SocketAddr>().ok())
                            == Some(want)
                })
                .cloned()
        };
        let service_there = |id: &str| {
            ServiceTarget::parse(id).is_ok_and(|t| {
                rules.iter().any(|w| {
                    w.first().map(String::as_str) == Some("-A") && w.get(1..3) == Some(&t.args[..])
                })
            })
        };
        let known = table.is_ok();
        let before = saved.maintenance.len() + saved.drained.len() + saved.inactive.len();
        let m = Memory {
            file: Some(file),
            maintenance: Mutex::new(
                saved
                    .maintenance
                    .into_iter()
                    .filter(|(s, r, _)| !known || server_rule(s, r).is_none())
                    .map(|(s, r, rule)| ((s, r), rule))
                    .collect(),
            ),
            drained: Mutex::new(
                saved
                    .drained
                    .into_iter()
                    .filter(|(s, r, _)| {
                        !known || server_rule(s, r).is_some_and(|w| weight_of(&w) == Some(0))
                    })
                    .map(|(s, r, w)| ((s, r), w))
                    .collect(),
            ),
            inactive: Mutex::new(
                saved
                    .inactive
                    .into_iter()
                    .filter(|(id, _)| !known || !service_there(id))
                    .collect(),
            ),
        };
        let kept = lock(&m.maintenance).len() + lock(&m.drained).len() + lock(&m.inactive).len();
        let said = match table {
            Ok(_) => format!(
                "{kept} of {before} remembered changes still hold in the daemon's table (maintenance, drained, deactivated)"
            ),
            Err(e) => format!("{before} remembered changes kept unchecked (the daemon: {e})"),
        };
        m.save();
        (m, said)
    }

    /// Write the state file (atomically: a new file renamed over it), if there is one.
    fn save(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let mut saved = Saved {
            maintenance: lock(&self.maintenance)
                .iter()
                .map(|((s, r), rule)| (s.clone(), r.clone(), rule.clone()))
                .collect(),
            drained: lock(&self.drained)
                .iter()
                .map(|((s, r), w)| (s.clone(), r.clone(), *w))
                .collect(),
            inactive: lock(&self.inactive)
                .iter()
                .map(|(id, r)| (id.clone(), r.clone()))
                .collect(),
        };
        saved.maintenance.sort();
        saved.drained.sort();
        saved.inactive.sort();
        let text = serde_json::to_string_pretty(&saved).unwrap_or_default();
        let tmp = file.with_extension("tmp");
        let r = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file));
        if let Err(e) = r {
            eprintln!("rvs console: state file {}: {e}", file.display());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ipvsadm(control: &dyn Control, args: &[&str]) -> io::Result<IpvsadmReply> {
    let mut v = vec!["rvsadm".to_string()];
    v.extend(args.iter().map(|a| a.to_string()));
    control.ipvsadm(&v)
}

fn listing(control: &dyn Control, args: &[&str]) -> io::Result<String> {
    let r = ipvsadm(control, args)?;
    if r.code != 0 {
        return Err(io::Error::other(r.stderr.trim_end().to_string()));
    }
    Ok(r.stdout)
}

/// Read a snapshot; a daemon that cannot be read gives one with `error` set.
pub fn snapshot(control: &dyn Control, memory: &Memory) -> Snapshot {
    let time = crate::time::now();
    match read(control, memory) {
        Ok(mut s) => {
            s.time = time;
            s
        }
        Err(e) => Snapshot {
            time,
            error: Some(e.to_string()),
            ..Snapshot::default()
        },
    }
}

fn read(control: &dyn Control, memory: &Memory) -> io::Result<Snapshot> {
    let plain = listing(control, &["-L", "-n", "--exact"])?;
    let stats = listing(control, &["-L", "-n", "--stats", "--exact"])?;
    let rates = listing(control, &["-L", "-n", "--rate", "--exact"])?;
    let mut services = parse_table(&plain, &stats, &rates);
    let health = control.request("list --health").unwrap_or_default();
    for (svc, server, h) in parse_health(&health) {
        let Some(s) = services.iter_mut().find(|s| s.id == svc) else {
            continue;
        };
        match s.servers.iter_mut().find(|r| r.address == server) {
            Some(r) => {
                r.configured_weight = h.configured_weight;
                r.health = Some(h);
            }
            None => s.servers.push(RealServer {
                address: server,
                state: "down".into(),
                configured_weight: h.configured_weight,
                health: Some(h),
                ..RealServer::default()
            }),
        }
    }
    let drained = lock(&memory.drained).clone();
    for s in &mut services {
        for r in &mut s.servers {
            // rvsadm's edit sets the weight the monitor calls configured too: the weight
            // before this console's drain is the one ready gives back.
            if let Some(w) = drained.get(&(s.id.clone(), r.address.clone()))
                && r.weight == 0
            {
                r.configured_weight = *w;
            }
            if r.state.is_empty() {
                r.state = match &r.health {
                    Some(h) if !h.up => "quiesced",
                    _ if r.weight == 0 => "drained",
                    _ => "up",
                }
                .into();
            }
        }
    }
    for (svc, server) in lock(&memory.maintenance).keys() {
        if let Some(s) = services.iter_mut().find(|s| &s.id == svc) {
            match s.servers.iter_mut().find(|r| &r.address == server) {
                Some(r) => r.state = "maintenance".into(),
                None => s.servers.push(RealServer {
                    address: server.clone(),
                    state: "maintenance".into(),
                    ..RealServer::default()
                }),
            }
        }
    }
    for s in &mut services {
        s.state = "active".into();
    }
    for (id, rules) in lock(&memory.inactive).iter() {
        if services.iter().any(|s| &s.id == id) {
            continue;
        }
        let (protocol, address) = id.split_once(' ').unwrap_or((id, ""));
        let word = |rule: &[String], flag: &str| {
            let i = rule.iter().position(|w| w == flag)?;
            rule.get(i + 1).cloned()
        };
        services.push(Service {
            id: id.clone(),
            state: "inactive".into(),
            protocol: protocol.into(),
            address: address.into(),
            scheduler: rules
                .first()
                .and_then(|r| word(r, "-s"))
                .unwrap_or_default(),
            servers: rules
                .iter()
                .skip(1)
                .filter_map(|r| word(r, "-r"))
                .map(|address| RealServer {
                    address,
                    state: "inactive".into(),
                    ..RealServer::default()
                })
                .collect(),
            ..Service::default()
        });
    }
    // The sorry server while it is in (a daemon without the request: none).
    for (svc, server) in parse_sorry(&control.request("sorry").unwrap_or_default()) {
        if let Some(r) = services
            .iter_mut()
            .filter(|s| s.id == svc)
            .flat_map(|s| s.servers.iter_mut())
            .find(|r| r.address == server)
        {
            r.state = "sorry".into();
        }
    }
    let failover = parse_failover(&control.request("list --failover").unwrap_or_default());
    let sync = parse_sync(&control.request("metrics").unwrap_or_default());
    let announce = parse_announce(&control.request("list --announce").unwrap_or_default());
    Ok(Snapshot {
        time: String::new(),
        services,
        failover,
        announce,
        sync,
        error: None,
    })
}

/// An operator's action on a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Back in service at its configured weight (re-added after maintenance).
    Ready,
    /// Weight 0: no new connections, existing ones finish.
    Drain,
    /// Removed from the table.
    Maintenance,
    /// A new weight.
    Weight(u32),
    /// Remove its connections (the daemon's `flush` request).
    Flush,
}

impl Action {
    /// From the form's or the API's fields.
    pub fn parse(action: &str, weight: Option<&str>) -> Result<Action, String> {
        Ok(match action {
            "ready" => Action::Ready,
            "drain" => Action::Drain,
            "maint" | "maintenance" => Action::Maintenance,
            "flush" => Action::Flush,
            "weight" => {
                let w = weight
                    .map(str::trim)
                    .and_then(|w| w.parse::<u32>().ok())
                    .filter(|&w| w <= 65535)
                    .ok_or("weight: a number from 0 to 65535")?;
                Action::Weight(w)
            }
            other => return Err(format!("unknown action {other:?}")),
        })
    }

    /// Its name in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Action::Ready => "ready",
            Action::Drain => "drain",
            Action::Maintenance => "maint",
            Action::Weight(_) => "weight",
            Action::Flush => "flush",
        }
    }
}

/// A service and real server named by a client, checked and put back in ipvsadm's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The service id (`TCP 10.0.0.1:80`).
    pub service: String,
    /// The service's ipvsadm options (`-t 10.0.0.1:80`).
    pub service_args: Vec<String>,
    /// The real server (`10.0.0.2:80`).
    pub server: String,
}

impl Target {
    /// Check `service` (`TCP|UDP|SCTP ADDR:PORT` or `FWM MARK`) and `server` (`ADDR:PORT`);
    /// what is sent to the daemon is re-formatted from the parsed values.
    pub fn parse(service: &str, server: &str) -> Result<Target, String> {
        let bad = || format!("not a service: {service:?}");
        let (proto, addr) = service.trim().split_once(' ').ok_or_else(bad)?;
        let addr = addr.trim();
        let (id, args) = if proto == "FWM" {
            let mark: u32 = addr.parse().map_err(|_| bad())?;
            (
                format!("FWM {mark}"),
                vec!["-f".to_string(), mark.to_string()],
            )
        } else {
            let flag = match proto {
                "TCP" => "-t",
                "UDP" => "-u",
                "SCTP" => "--sctp-service",
                _ => return Err(bad()),
            };
            let sa: SocketAddr = addr.parse().map_err(|_| bad())?;
            (
                format!("{proto} {sa}"),
                vec![flag.to_string(), sa.to_string()],
            )
        };
        let server = server.trim();
        let rs = server
            .parse::<SocketAddr>()
            .map_err(|_| format!("not a real server: {server:?}"))?;
        Ok(Target {
            service: id,
            service_args: args,
            server: rs.to_string(),
        })
    }

    /// `TCP 10.0.0.1:80 -> 10.0.0.2:80`.
    pub fn object(&self) -> String {
        format!("{} -> {}", self.service, self.server)
    }

    fn key(&self) -> (String, String) {
        (self.service.clone(), self.server.clone())
    }

    /// The server's `-a` rule in `-S -n`, as words.
    fn find_rule(&self, control: &dyn Control) -> io::Result<Option<Vec<String>>> {
        let save = listing(control, &["-S", "-n"])?;
        let want: SocketAddr = self.server.parse().map_err(io::Error::other)?;
        Ok(save.lines().find_map(|l| {
            let w: Vec<String> = l.split_whitespace().map(String::from).collect();
            let same_service = w.first().map(String::as_str) == Some("-a")
                && w.get(1..3) == Some(&self.service_args[..]);
            let r = w.iter().position(|x| x == "-r")?;
            let addr = w.get(r + 1)?;
            let same_server = addr.parse::<SocketAddr>().ok() == Some(want)
                || (want.port() == 0 && addr.parse::<IpAddr>().ok() == Some(want.ip()));
            (same_service && same_server).then_some(w)
        }))
    }
}

/// Set (or add) `-w N` in a rule's words.
fn with_weight(mut rule: Vec<String>, weight: i64) -> Vec<String> {
    match rule.iter().position(|w| w == "-w") {
        Some(i) if i + 1 < rule.len() => rule[i + 1] = weight.to_string(),
        _ => {
            rule.push("-w".into());
            rule.push(weight.to_string());
        }
    }
    rule
}

fn weight_of(rule: &[String]) -> Option<i64> {
    let i = rule.iter().position(|w| w == "-w")?;
    rule.get(i + 1)?.parse().ok()
}

/// What an action did: the rule before and after (`absent` when not in the table).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// Before.
    pub before: String,
    /// After.
    pub after: String,
}

fn run(control: &dyn Control, words: &[String]) -> Result<(), String> {
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let r = ipvsadm(control, &args).map_err(|e| format!("the daemon: {e}"))?;
    if r.code == 0 {
        Ok(())
    } else {
        Err(format!(
            "rvsadm {}: {}",
            words.join(" "),
            r.stderr.trim_end()
        ))
    }
}

/// Do `action` on `t`: the outcome, or why not (the rule before is in the message). What
/// the console remembers is saved after it.
pub fn act(
    control: &dyn Control,
    memory: &Memory,
    t: &Target,
    action: Action,
) -> Result<Outcome, (String, String)> {
    let r = act_now(control, memory, t, action);
    memory.save();
    r
}

fn act_now(
    control: &dyn Control,
    memory: &Memory,
    t: &Target,
    action: Action,
) -> Result<Outcome, (String, String)> {
    let show = |r: &Option<Vec<String>>| r.as_ref().map_or("absent".to_string(), |w| w.join(" "));
    let before = t
        .find_rule(control)
        .map_err(|e| ("unknown".to_string(), format!("the daemon: {e}")))?;
    let b = show(&before);
    let fail = |why: String| (b.clone(), why);
    let edit = |rule: &[String], weight: i64| -> Result<(), String> {
        let mut words = with_weight(rule.to_vec(), weight);
        words[0] = "-e".into();
        run(control, &words)
    };
    let health_weight = || -> Option<i64> {
        let text = control.request("list --health").ok()?;
        parse_health(&text)
            .into_iter()
            .find(|(s, r, _)| *s == t.service && *r == t.server)
            .map(|(_, _, h)| h.configured_weight)
    };
    match (action, &before) {
        (Action::Drain, Some(rule)) => {
            let w = weight_of(rule).unwrap_or(1);
            if w > 0 {
                lock(&memory.drained).insert(t.key(), w);
            }
            edit(rule, 0).map_err(fail)?;
        }
        (Action::Weight(n), Some(rule)) => {
            edit(rule, i64::from(n)).map_err(fail)?;
            lock(&memory.drained).remove(&t.key());
        }
        (Action::Ready, Some(rule)) => {
            let remembered = lock(&memory.drained).get(&t.key()).copied();
            let w = remembered
                .or_else(|| health_weight().filter(|&w| w > 0))
                .or(weight_of(rule).filter(|&w| w > 0))
                .unwrap_or(1);
            edit(rule, w).map_err(fail)?;
            lock(&memory.drained).remove(&t.key());
            lock(&memory.maintenance).remove(&t.key());
        }
        (Action::Ready, None) => {
            let saved = lock(&memory.maintenance).get(&t.key()).cloned();
            let Some(rule) = saved else {
                return Err(fail(
                    "not in the table, and not put in maintenance by this console".into(),
                ));
            };
            let w = health_weight()
                .filter(|&w| w > 0)
                .or(weight_of(&rule).filter(|&w| w > 0))
                .unwrap_or(1);
            run(control, &with_weight(rule, w)).map_err(fail)?;
            lock(&memory.maintenance).remove(&t.key());
        }
        (Action::Maintenance, Some(rule)) => {
            let mut words = vec!["-d".to_string()];
            words.extend(t.service_args.iter().cloned());
            words.extend(["-r".to_string(), t.server.clone()]);
            run(control, &words).map_err(fail)?;
            let mut keep = rule.clone();
            if weight_of(&keep) == Some(0)
                && let Some(w) = lock(&memory.drained).get(&t.key())
            {
                keep = with_weight(keep, *w);
            }
            lock(&memory.maintenance).insert(t.key(), keep);
        }
        (Action::Flush, Some(_)) => {
            let said = control
                .request(&format!("flush {} {}", t.service, t.server))
                .map_err(|e| fail(format!("the daemon: {e}")))?;
            return Ok(Outcome {
                before: b.clone(),
                after: format!("{b} ({})", said.trim()),
            });
        }
        (_, None) => return Err(fail("no such real server in the table".into())),
    }
    let after = t
        .find_rule(control)
        .map_err(|e| (b.clone(), format!("the daemon, after the change: {e}")))?;
    Ok(Outcome {
        before: b,
        after: show(&after),
    })
}

/// (De)activate a virtual service: deactivate takes it (`-D`) and its real servers out of
/// the table, remembering their rules from `-S -n`; activate puts them back (`-A`, `-a`).
/// Piranha's VIRTUAL SERVERS panel's (de)activate (there: `active = 0|1` in lvs.cf, which
/// the configuration page edits). The outcome's before/after name the service's rules.
pub fn service_act(
    control: &dyn Control,
    memory: &Memory,
    t: &ServiceTarget,
    activate: bool,
) -> Result<Outcome, (String, String)> {
    let r = service_act_now(control, memory, t, activate);
    memory.save();
    r
}

fn service_act_now(
    control: &dyn Control,
    memory: &Memory,
    t: &ServiceTarget,
    activate: bool,
) -> Result<Outcome, (String, String)> {
    let save = listing(control, &["-S", "-n"])
        .map_err(|e| ("unknown".into(), format!("the daemon: {e}")))?;
    let rules: Vec<Vec<String>> = save
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|w| {
            matches!(w.first().map(String::as_str), Some("-A" | "-a"))
                && w.get(1..3) == Some(&t.args[..])
        })
        .collect();
    let show = |r: &[Vec<String>]| {
        if r.is_empty() {
            "absent".to_string()
        } else {
            r.iter().map(|w| w.join(" ")).collect::<Vec<_>>().join("; ")
        }
    };
    let before = show(&rules);
    if activate {
        if !rules.is_empty() {
            return Err((before, "the service is active".into()));
        }
        let Some(saved) = lock(&memory.inactive).get(&t.id).cloned() else {
            return Err((before, "not deactivated by this console".into()));
        };
        for r in &saved {
            run(control, r).map_err(|e| (before.clone(), e))?;
        }
        lock(&memory.inactive).remove(&t.id);
        Ok(Outcome {
            before,
            after: show(&saved),
        })
    } else {
        if rules.is_empty() {
            return Err((before, "no such service in the table".into()));
        }
        let mut words = vec!["-D".to_string()];
        words.extend(t.args.iter().cloned());
        run(control, &words).map_err(|e| (before.clone(), e))?;
        lock(&memory.inactive).insert(t.id.clone(), rules);
        Ok(Outcome {
            before,
            after: "absent".into(),
        })
    }
}

/// A virtual service named by a client, checked and put back in ipvsadm's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// `TCP 10.0.0.1:80`.
    pub id: String,
    /// `-t 10.0.0.1:80`.
    pub args: Vec<String>,
}

impl ServiceTarget {
    /// As [`Target::parse`] for the service alone.
    pub fn parse(service: &str) -> Result<ServiceTarget, String> {
        let t = Target::parse(service, "0.0.0.0:0")?;
        Ok(ServiceTarget {
            id: t.service,
            args: t.service_args,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn announce_reads_the_daemons_listing() {
        // As crates/rvs/src/announce.rs `render` writes it.
        let text = "Active-active: table 29302 dev rvsvip0, convergence delay 5 s, director drained\n\
                    VIP                                      Announced  Reason\n\
                    10.1.0.100                               no         director drained\n\
                    10.1.0.101                               yes        \n";
        let a = super::parse_announce(text).unwrap();
        assert_eq!(a.director, "drained");
        assert_eq!(a.vips.len(), 2);
        assert_eq!(
            (
                a.vips[0].vip.as_str(),
                a.vips[0].announced,
                a.vips[0].reason.as_str()
            ),
            ("10.1.0.100", false, "director drained")
        );
        assert_eq!(
            (
                a.vips[1].vip.as_str(),
                a.vips[1].announced,
                a.vips[1].reason.as_str()
            ),
            ("10.1.0.101", true, "")
        );
        assert_eq!(
            super::parse_announce("error: not an active-active director\n"),
            None
        );
        assert_eq!(super::parse_announce(""), None);
    }

    use super::*;

    const PLAIN: &str = "IP Virtual Server version 1.2.1 (size=65536)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.1:80 wlc persistent 300\n\
\x20 -> 10.0.1.1:80                  Masq    1      3          7\n\
\x20 -> 10.0.1.2:80                  Masq    0      1          0\n\
FWM  5 rr\n\
\x20 -> 10.0.1.3:0                   Route   2      0          0\n";
    const STATS: &str = "IP Virtual Server version 1.2.1 (size=65536)\n\
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n\
\x20 -> RemoteAddress:Port\n\
TCP  10.0.0.1:80                        10      100       90     6000    70000\n\
\x20 -> 10.0.1.1:80                         9       90       80     5000    60000\n\
\x20 -> 10.0.1.2:80                         1       10       10     1000    10000\n\
FWM  5                                   0        0        0        0        0\n\
\x20 -> 10.0.1.3:0                          0        0        0        0        0\n";
    const HEALTH: &str = "Prot LocalAddress:Port            Server                         State Weight Conf   Ok/Failed       Last failure\n\
TCP  10.0.0.1:80                  10.0.1.1:80                    up    1      1      5/0             -\n\
TCP  10.0.0.1:80                  10.0.1.9:80                    down  0      1      0/4             connect: connection refused\n";

    #[test]
    fn listings_merge_into_services() {
        let mut s = parse_table(PLAIN, STATS, "");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].id, "TCP 10.0.0.1:80");
        assert_eq!(
            (s[0].scheduler.as_str(), s[0].flags.as_str()),
            ("wlc", "persistent 300")
        );
        assert_eq!(s[0].stats.outbytes, 70000);
        let r = &s[0].servers[0];
        assert_eq!(
            (r.weight, r.active, r.inactive, r.stats.conns),
            (1, 3, 7, 9)
        );
        assert_eq!(s[1].servers[0].forward, "Route");
        let h = parse_health(HEALTH);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1].2.last_failure.as_deref(),
            Some("connect: connection refused")
        );
        assert!(!h[1].2.up);
        s.truncate(1);
        let csv = Snapshot {
            services: s,
            ..Snapshot::default()
        }
        .csv();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("TCP 10.0.0.1:80,10.0.1.1:80,,Masq,1,1,3,7,9,")
        );
    }

    #[test]
    fn targets_are_checked_and_reformatted() {
        let t = Target::parse("TCP 10.0.0.1:80", "10.0.1.1:80").unwrap();
        assert_eq!(t.service_args, ["-t", "10.0.0.1:80"]);
        let t = Target::parse("FWM 5", "[2001:db8::1]:0").unwrap();
        assert_eq!(t.service_args, ["-f", "5"]);
        assert_eq!(t.server, "[2001:db8::1]:0");
        assert!(Target::parse("TCP 10.0.0.1:80; rm -rf /", "10.0.1.1:80").is_err());
        assert!(Target::parse("TCP 10.0.0.1:80", "-C").is_err());
        assert!(Target::parse("ICMP 10.0.0.1:80", "10.0.1.1:80").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-1"), "-1");
    }

    #[test]
    fn actions_parse() {
        assert_eq!(Action::parse("weight", Some("7")), Ok(Action::Weight(7)));
        assert!(Action::parse("weight", Some("-1")).is_err());
        assert!(Action::parse("weight", None).is_err());
        assert_eq!(Action::parse("flush", None), Ok(Action::Flush));
        assert!(Action::parse("purge", None).is_err());
    }
}
