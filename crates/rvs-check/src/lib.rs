//! rvs-check: the health checkers' I/O. One call of [`run`] performs one attempt of one check
//! of a real server — nanny's send/expect and `send_program`, keepalived's TCP_CHECK,
//! HTTP_GET, SSL_GET, MISC_CHECK, UDP_CHECK, DNS_CHECK and PING_CHECK — and says
//! [`Outcome::Up`], [`Outcome::UpWithWeight`] or [`Outcome::Down`] with a short reason.
//!
//! What it deliberately does not do: decide when a check is due, retry, count rise/fall, or
//! change weights. Those are decisions, and they live in `rvs_core::health`, which the daemon
//! feeds with these outcomes. Nothing here keeps state between attempts (no connection
//! pools, no cached resolvers); every attempt opens its own sockets and closes them.
//!
//! Each attempt is bounded by the check's timeout (`timers.timeout`, or `misc_timeout` for
//! MISC_CHECK): connecting, sending and reading all share that one budget. A check that runs
//! out of it is down with `"timeout after 2s"` — except UDP_CHECK without `require_reply`,
//! which, like keepalived, is up when no ICMP error arrived within the timeout.

#![forbid(unsafe_code)]

mod budget;
mod dns;
mod http;
mod net;
mod ping;
mod program;
pub mod script;
mod stream;
mod tls;
mod udp;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rvs_core::health::{CheckKind, CheckSpec, CheckTarget, Outcome};

use crate::budget::Budget;

pub use crate::http::{Genhash, genhash, md5_hex};

/// Where a check goes, resolved: `connect_ip`/`connect_port` already applied by
/// [`Target::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The address the check connects to.
    pub addr: IpAddr,
    /// The port (TCP or UDP; ignored by PING_CHECK and MISC_CHECK).
    pub port: u16,
    /// The local address (`bindto`) and port (`bind_port`) of the check's socket.
    pub bind: Option<SocketAddr>,
    /// `fwmark`: the SO_MARK of the check's socket.
    pub fwmark: Option<u32>,
}

impl Target {
    /// Applies a check's `connect_ip`, `connect_port`, `bindto`, `bind_port` and `fwmark` to
    /// the real server's address and port. A `bind_port` without `bindto` binds the
    /// unspecified address of the target's family.
    ///
    /// `via_vip` is not applied here: sending the check to the VIP through one real
    /// server's forwarding path is the daemon's routing, not the checker's.
    pub fn resolve(spec: &CheckTarget, rs_addr: IpAddr, rs_port: u16) -> Target {
        let addr = spec.connect_ip.unwrap_or(rs_addr);
        let port = spec.connect_port.unwrap_or(rs_port);
        let bind = match (spec.bindto, spec.bind_port) {
            (None, None) => None,
            (Some(ip), port) => Some(SocketAddr::new(ip, port.unwrap_or(0))),
            (None, Some(port)) => {
                let any = match addr {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                Some(SocketAddr::new(any, port))
            }
        };
        Target {
            addr,
            port,
            bind,
            fwmark: spec.fwmark,
        }
    }

    /// The socket address the check connects to.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// How long after the budget the safety net around a whole attempt fires. Every checker
/// watches its own deadline; this only catches a step that forgot to.
const SAFETY_NET: Duration = Duration::from_millis(250);

/// Runs one attempt of `check` against `target`, bounded by the spec's timeout
/// (`timers.timeout`, or `misc_timeout` for MISC). Never panics; every failure is
/// [`Outcome::Down`] with a short human reason (`"connect: connection refused"`,
/// `"expect: got \"HTTP/1.1 500\""`, `"digest mismatch"`, `"timeout after 2s"`,
/// `"exit status 1"`, ...).
///
/// Cancel-safe: dropping the future closes its sockets and kills a running program's whole
/// process group.
pub async fn run(check: &CheckSpec, target: &Target) -> Outcome {
    let limit = match &check.kind {
        CheckKind::Misc {
            timeout: Some(t), ..
        } => *t,
        _ => check.timers.timeout,
    };
    let budget = Budget::new(limit);
    let attempt = run_kind(&check.kind, target, budget);
    match tokio::time::timeout_at(budget.deadline() + SAFETY_NET, attempt).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(fail)) => Outcome::Down(fail.into_reason()),
        Err(_) => Outcome::Down(budget.timeout_reason()),
    }
}

async fn run_kind(kind: &CheckKind, target: &Target, budget: Budget) -> budget::Res<Outcome> {
    match kind {
        CheckKind::Tcp => stream::tcp(target, budget).await.map(|()| Outcome::Up),
        CheckKind::SendExpect { send, expect, udp } => {
            stream::send_expect(send, expect.as_ref(), *udp, target, budget)
                .await
                .map(|()| Outcome::Up)
        }
        CheckKind::Program { command, expect } => {
            program::send_program(command, expect.as_deref(), target, budget)
                .await
                .map(|()| Outcome::Up)
        }
        CheckKind::Http {
            tls,
            urls,
            virtualhost,
            http_1_1,
            sni,
        } => {
            let opts = http::Options {
                tls: *tls,
                virtualhost: virtualhost.as_deref(),
                http_1_1: *http_1_1,
                sni: *sni,
            };
            http::check(urls, &opts, target, budget)
                .await
                .map(|()| Outcome::Up)
        }
        CheckKind::Misc {
            path,
            user,
            dynamic,
            ..
        } => program::misc(path, user.as_deref(), *dynamic, budget).await,
        CheckKind::Udp {
            payload,
            require_reply,
            min_reply_len,
            max_reply_len,
        } => {
            let reply = udp::Reply {
                required: require_reply.as_deref(),
                min_len: *min_reply_len,
                max_len: *max_reply_len,
            };
            udp::check(payload, &reply, target, budget)
                .await
                .map(|()| Outcome::Up)
        }
        CheckKind::Dns { qtype, name } => dns::check(*qtype, name, target, budget)
            .await
            .map(|()| Outcome::Up),
        CheckKind::Ping => ping::check(target, budget).await.map(|()| Outcome::Up),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_applies_connect_and_bind_options() {
        let rs: IpAddr = "192.0.2.10".parse().unwrap();
        let plain = Target::resolve(&CheckTarget::default(), rs, 80);
        assert_eq!(plain.socket_addr(), "192.0.2.10:80".parse().unwrap());
        assert_eq!(plain.bind, None);
        assert_eq!(plain.fwmark, None);

        let spec = CheckTarget {
            connect_ip: Some("192.0.2.20".parse().unwrap()),
            connect_port: Some(8080),
            bindto: Some("192.0.2.1".parse().unwrap()),
            bind_port: Some(4000),
            fwmark: Some(7),
            via_vip: false,
        };
        let t = Target::resolve(&spec, rs, 80);
        assert_eq!(t.socket_addr(), "192.0.2.20:8080".parse().unwrap());
        assert_eq!(t.bind, Some("192.0.2.1:4000".parse().unwrap()));
        assert_eq!(t.fwmark, Some(7));

        let only_addr = CheckTarget {
            bindto: Some("192.0.2.1".parse().unwrap()),
            ..CheckTarget::default()
        };
        assert_eq!(
            Target::resolve(&only_addr, rs, 80).bind,
            Some("192.0.2.1:0".parse().unwrap())
        );
    }

    #[test]
    fn bind_port_alone_binds_the_unspecified_address_of_the_family() {
        let spec = CheckTarget {
            bind_port: Some(5000),
            ..CheckTarget::default()
        };
        let v4 = Target::resolve(&spec, "192.0.2.10".parse().unwrap(), 80);
        assert_eq!(v4.bind, Some("0.0.0.0:5000".parse().unwrap()));
        let v6 = Target::resolve(&spec, "2001:db8::10".parse().unwrap(), 80);
        assert_eq!(v6.bind, Some("[::]:5000".parse().unwrap()));
    }
}
