//! keepalived's checkers and `virtual_server` health keys → the health model
//! ([`HealthConfig`]): what rvs checks on each real server, how often, and what it does with
//! the answers.
//!
//! The mapping, after keepalived's `check_parser.c`, `check_api.c` and `ipwrapper.c`:
//! - a virtual service is monitored when its `virtual_server` gives it anything to do: a
//!   checker rvs performs on some real server, a `sorry_server`, `quorum_up`/`quorum_down`,
//!   or `notify_up`/`notify_down` on some real server. Then every real server of the service
//!   is listed, those without a checker as always up (keepalived counts them as alive in the
//!   quorum, and removes them with the others while the sorry server is in);
//! - a `virtual_server group` gives each service of the group its own monitoring, with the
//!   same settings;
//! - timers are the checker's resolved ones ([`super::CheckTimers`]): `delay_loop` → interval,
//!   `connect_timeout` → timeout, `retry`, `delay_before_retry`, `warmup`; MISC_CHECK's timeout
//!   is `misc_timeout`, else the delay loop (`check_misc.c`);
//! - rise and fall are 1 (keepalived has neither), no slow start, no load monitor;
//!   `inhibit_on_failure` quiesces instead of removing; a real server starts down (`alpha`) when
//!   any of its checkers does;
//! - HTTP_GET/SSL_GET's Host header is the url's `virtualhost`, else the checker's, else the
//!   real server's, else the virtual server's (`check_http.c`);
//! - SMTP_CHECK, FILE_CHECK, BFD_CHECK and a UDP_CHECK whose `require_reply` has wildcard
//!   nibbles are not performed (the parser warned about each).

use rvs_core::health::{
    CheckKind, CheckSpec, CheckTarget, CheckTimers, DnsType, HealthConfig, OnFailure,
    RealServerHealth, ServiceHealth, SorryServer, UrlCheck,
};
use rvs_core::model::{Config, ServiceKey};

use super::check::{self, Checker};
use super::{RealServerChecks, VirtualServerChecks};

/// The health configuration of a parsed keepalived.conf: one [`ServiceHealth`] per monitored
/// service, in service order.
pub(crate) fn health(config: &Config, vss: &[VirtualServerChecks]) -> HealthConfig {
    let mut services = Vec::new();
    for vs in vss {
        // The checks are the same for every service of a group: map them once.
        // Per real server: its checks, and whether any of them starts down (`alpha`).
        let mapped: Vec<(Vec<CheckSpec>, bool)> = vs
            .real_servers
            .iter()
            .map(|rs| {
                let mut alpha = false;
                let checks = rs
                    .checkers
                    .iter()
                    .filter_map(|c| {
                        let s = spec(vs, rs, c)?;
                        alpha |= c.alpha;
                        Some(s)
                    })
                    .collect();
                (checks, alpha)
            })
            .collect();
        let monitored = mapped.iter().any(|(c, _)| !c.is_empty())
            || vs.sorry_server.is_some()
            || vs.quorum_up.is_some()
            || vs.quorum_down.is_some()
            || vs
                .real_servers
                .iter()
                .any(|r| r.notify_up.is_some() || r.notify_down.is_some());
        if !monitored {
            continue;
        }
        for &i in &vs.services {
            let Some(svc) = config.services.get(i) else {
                continue;
            };
            let svc_port = match svc.key {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            };
            // virtual_server() keeps the real servers and their checks in step.
            let real_servers = svc
                .real_servers
                .iter()
                .zip(vs.real_servers.iter().zip(&mapped))
                .map(|(r, (rc, (checks, alpha)))| RealServerHealth {
                    addr: r.addr,
                    port: r.port,
                    on_failure: if rc.inhibit_on_failure {
                        OnFailure::Quiesce
                    } else {
                        OnFailure::Remove
                    },
                    alpha: *alpha,
                    rise: 1,
                    fall: 1,
                    slow_start: None,
                    notify_up: rc.notify_up.clone(),
                    notify_down: rc.notify_down.clone(),
                    load_monitor: None,
                    checks: checks.clone(),
                })
                .collect();
            services.push(ServiceHealth {
                service: svc.key,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                quorum_up: vs.quorum_up.clone(),
                quorum_down: vs.quorum_down.clone(),
                omega: vs.omega,
                sorry_server: vs.sorry_server.as_ref().map(|s| SorryServer {
                    addr: s.addr,
                    port: s.port.unwrap_or(svc_port),
                    method: s.method,
                    inhibit: s.inhibit,
                }),
                real_servers,
            });
        }
    }
    HealthConfig { services }
}

/// One checker as a check rvs performs, or None for those it does not.
fn spec(vs: &VirtualServerChecks, rs: &RealServerChecks, c: &Checker) -> Option<CheckSpec> {
    let t = &c.timers;
    let mut timeout = t.connect_timeout;
    let kind = match &c.kind {
        check::CheckKind::Http(h) | check::CheckKind::Ssl(h) => CheckKind::Http {
            tls: matches!(c.kind, check::CheckKind::Ssl(_)),
            urls: h
                .urls
                .iter()
                .map(|u| UrlCheck {
                    path: u.path.clone(),
                    digest: u.digest.clone(),
                    status_codes: u.status_codes.clone(),
                    virtualhost: u.virtualhost.clone(),
                    regex: u.regex.clone(),
                    regex_no_match: u.regex_no_match,
                })
                .collect(),
            virtualhost: h
                .virtualhost
                .clone()
                .or_else(|| rs.virtualhost.clone())
                .or_else(|| vs.virtualhost.clone()),
            // `1.0C` is HTTP/1.0 with `Connection: close`, which HTTP/1.0 implies.
            http_1_1: h.http_protocol.as_deref() == Some("1.1"),
            sni: h.enable_sni,
        },
        check::CheckKind::Tcp => CheckKind::Tcp,
        check::CheckKind::Ping => CheckKind::Ping,
        check::CheckKind::Dns(d) => CheckKind::Dns {
            // Validated by the parser; SOA is keepalived's default.
            qtype: DnsType::from_name(&d.query_type).unwrap_or(DnsType::Soa),
            name: d.name.clone(),
        },
        check::CheckKind::Misc(m) => {
            // check_misc.c: the script is killed after misc_timeout, else the delay loop.
            timeout = m.timeout.unwrap_or(t.delay_loop);
            CheckKind::Misc {
                path: m.path.clone(),
                user: m.user.clone(),
                timeout: m.timeout,
                dynamic: m.dynamic,
            }
        }
        check::CheckKind::Udp(u) => {
            let bytes = |h: &str| check::hex_bytes(h, true).ok();
            let payload = match &u.payload {
                Some(h) => bytes(h)?.0,
                None => Vec::new(),
            };
            let require_reply = match u.require_reply.as_deref() {
                None => None,
                Some("") => Some(Vec::new()),
                Some(h) => match bytes(h)? {
                    (_, true) => return None,
                    (b, false) => Some(b),
                },
            };
            CheckKind::Udp {
                payload,
                require_reply,
                min_reply_len: u.min_reply_length,
                max_reply_len: u.max_reply_length,
            }
        }
        check::CheckKind::Smtp(_) | check::CheckKind::File(_) | check::CheckKind::Bfd(_) => {
            return None;
        }
    };
    Some(CheckSpec {
        kind,
        target: CheckTarget {
            connect_ip: c.connect.connect_ip,
            connect_port: c.connect.connect_port,
            bindto: c.connect.bindto,
            bind_port: c.connect.bind_port,
            fwmark: c.connect.fwmark,
            via_vip: false,
        },
        timers: CheckTimers {
            interval: t.delay_loop,
            timeout,
            retry: t.retry,
            delay_before_retry: t.delay_before_retry,
            warmup: t.warmup,
        },
    })
}
