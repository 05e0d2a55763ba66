//! The control requests the web console (`rvs console`, issue 14) adds, kept out of the
//! rest of the control socket's code (the hook is one call in [`super::control::serve`]):
//!
//! - `flush SERVICE SERVER` (`flush TCP 10.0.0.1:80 10.0.1.2:80`, `flush FWM 5 10.0.1.2:0`):
//!   remove every connection and persistence template bound to that real server
//!   ([`rvs_core::director::Director::flush_dest`], on the worker between batches); the
//!   answer is `flushed N`. IPVS has no such request (ipvsadm can only delete the server).
//! - `audit TEXT`: write TEXT (the console's audit record, one line of JSON, at most 4096
//!   bytes) to the daemon's log as an `info` event `console audit` with the field `record`,
//!   so the changes made through the console are in the daemon's log too (journal, log
//!   shipper) beside the reloads and edits they cause. The answer is `ok`.
//! - `sorry`: one line per monitored virtual service whose sorry server is in
//!   (`TCP  10.0.0.1:80 10.0.0.9:80`, the service as `list --health` names it).
//!
//! And `--control-group NAME` ([`share_socket`]): the socket made group-accessible, for a
//! console run as an unprivileged user in that group.

use super::control::{Answer, Ask, Shared, ask_worker};
use crate::desired::lock;
use rvs_core::director::Director;
use rvs_core::model::{Family, Protocol, ServiceKey};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Work the worker does on the engine for the console, between batches.
pub(super) struct EngineJob(pub(super) Box<dyn FnOnce(&mut Director) -> String + Send>);

impl std::fmt::Debug for EngineJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineJob")
    }
}

/// The longest audit record the daemon logs.
const MAX_AUDIT: usize = 4096;

/// Answer `line` if it is one of the console's requests (else None: not ours).
pub(super) fn answer(line: &str, shared: &Shared) -> Option<Result<String, String>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    Some(match word {
        "flush" => flush(rest, shared),
        "audit" => {
            if rest.len() > MAX_AUDIT || rest.trim().is_empty() {
                Err(format!("audit: 1 to {MAX_AUDIT} bytes of text"))
            } else {
                tracing::info!(record = %rest.trim(), "console audit");
                Ok("ok\n".into())
            }
        }
        "sorry" => {
            let health = lock(&shared.monitor.health);
            let mut out = String::new();
            for s in health.services() {
                if let Some((addr, port)) = s.sorry_server_in {
                    out.push_str(&format!(
                        "{} {}\n",
                        crate::listing::service_name(&s.service),
                        rvs_core::model::sock(addr, port)
                    ));
                }
            }
            Ok(out)
        }
        _ => return None,
    })
}

/// `TCP ADDR:PORT`, `UDP ...`, `SCTP ...`, `FWM MARK [IPv6]` and a real server
/// `ADDR:PORT`.
fn parse_flush(rest: &str) -> Result<(ServiceKey, IpAddr, u16), String> {
    let w: Vec<&str> = rest.split_whitespace().collect();
    let usage = || {
        "usage: flush TCP|UDP|SCTP ADDR:PORT SERVER:PORT, or flush FWM MARK [IPv6] SERVER:PORT"
            .to_string()
    };
    let (key, server) = match w.as_slice() {
        ["FWM", mark, rest @ ..] => {
            let mark: u32 = mark.parse().map_err(|_| usage())?;
            let (family, server) = match rest {
                ["IPv6", s] => (Family::V6, *s),
                [s] => (Family::V4, *s),
                _ => return Err(usage()),
            };
            (ServiceKey::Fwmark { mark, family }, server)
        }
        [proto, addr, server] => {
            let protocol = match *proto {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => return Err(usage()),
            };
            let sa: SocketAddr = addr.parse().map_err(|_| usage())?;
            (
                ServiceKey::Addr {
                    protocol,
                    addr: sa.ip(),
                    port: sa.port(),
                },
                *server,
            )
        }
        _ => return Err(usage()),
    };
    let rs: SocketAddr = server.parse().map_err(|_| usage())?;
    Ok((key, rs.ip(), rs.port()))
}

fn flush(rest: &str, shared: &Shared) -> Result<String, String> {
    let (key, addr, port) = parse_flush(rest)?;
    let job = EngineJob(Box::new(move |d: &mut Director| {
        match d.flush_dest(&key, addr, port) {
            Some(n) => {
                tracing::info!(
                    service = %crate::listing::service_name(&key),
                    server = %rvs_core::model::sock(addr, port),
                    removed = n,
                    "connections flushed on request"
                );
                format!("flushed {n}\n")
            }
            None => "error: no such real server\n".into(),
        }
    }));
    match ask_worker(&shared.requests, Ask::Engine(job))? {
        Answer::Text(t) => match t.strip_prefix("error: ") {
            Some(e) => Err(e.trim_end().to_string()),
            None => Ok(t),
        },
        _ => Err("the data-plane worker answered with no text".into()),
    }
}

/// `--control-group NAME`: the control socket owned by group NAME with mode 0660, so a
/// console (or rvsadm) run as a user in that group reaches it; without it the socket stays
/// 0600, the daemon's user's only.
pub(super) fn share_socket(path: &Path, group: Option<&str>) -> std::io::Result<()> {
    let Some(name) = group else {
        return Ok(());
    };
    let gid = rvs_sys::process::group_by_name(name)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("--control-group {name}: no such group"),
        )
    })?;
    std::os::unix::fs::chown(path, None, Some(gid))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660))?;
    tracing::info!(group = name, control = %path.display(), "control socket shared with the group (mode 0660)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_requests_parse() {
        let (k, a, p) = parse_flush("TCP 10.0.0.1:80 10.0.1.2:8080").unwrap();
        assert_eq!(
            k,
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 80
            }
        );
        assert_eq!((a, p), ("10.0.1.2".parse().unwrap(), 8080));
        let (k, _, _) = parse_flush("FWM 5 IPv6 [2001:db8::2]:0").unwrap();
        assert_eq!(
            k,
            ServiceKey::Fwmark {
                mark: 5,
                family: Family::V6
            }
        );
        assert!(parse_flush("TCP 10.0.0.1:80").is_err());
        assert!(parse_flush("ICMP 10.0.0.1:80 10.0.1.2:80").is_err());
    }
}
