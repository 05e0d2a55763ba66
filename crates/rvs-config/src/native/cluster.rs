//! `[cluster]`: active-active directors behind ECMP (docs/operating.md "Active-active
//! directors behind ECMP"), a service's `consistent = true`, and the warning for an
//! active-active service whose scheduler chooses by this director's own state.
//!
//! ```toml
//! [cluster]
//! mode = "active-active"            # active-backup | active-active [active-backup]
//! route_table = 29302               # the kernel table of the VIP routes [29302]
//! route_device = "rvsvip0"          # the TUN device they point at [rvsvip0]
//! convergence_delay = 5             # seconds a withdrawal waits for the routers [5]
//! ```

use std::fmt::Write as _;

use rvs_core::model::{Config, SchedulerKind, ServiceKey, VirtualServiceConfig};
use serde::Deserialize;
use toml::Spanned;

use super::{Cx, Int, Secs, Span, Str, quote, secs};
use crate::diag::{Diagnostic, Severity};
use crate::failover::{ClusterSetup, FailoverConfig, FailoverMode};
use crate::locate;

/// `[cluster]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    mode: Option<Str>,
    route_table: Option<Int>,
    route_device: Option<Str>,
    convergence_delay: Option<Secs>,
}

/// `[cluster]`: None for `mode = "active-backup"` (the default); errors go to `cx`.
pub(super) fn parse(cx: &mut Cx<'_>, raw: &Spanned<RawCluster>) -> Option<ClusterSetup> {
    let r = raw.get_ref();
    let active = match &r.mode {
        Some(m) => cx.choice(
            m,
            "cluster mode",
            &[("active-backup", false), ("active-active", true)],
        ),
        None => Some(false),
    };
    let mut out = ClusterSetup::default();
    if let Some(t) = &r.route_table {
        // 0 is RT_TABLE_UNSPEC, 253..=255 the kernel's default, main and local tables.
        match cx.u32(t, "route_table") {
            Some(n) if n == 0 || (253..=255).contains(&n) => cx.error(
                t.span(),
                format!("route_table {n} is a table the kernel reserves"),
                "a table of its own, e.g. 29302 (not 0, 253, 254 or 255)",
            ),
            Some(n) => out.route_table = n,
            None => {}
        }
    }
    if let Some(d) = &r.route_device {
        let name = d.get_ref();
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
            cx.error(
                d.span(),
                format!("`{name}` is not an interface name"),
                "1 to 15 characters without `/`, `:` or spaces",
            );
        } else {
            out.route_device = name.clone();
        }
    }
    if let Some(v) = &r.convergence_delay
        && let Some(d) = cx.seconds(v, "convergence_delay")
    {
        out.convergence_delay = d;
    }
    active.unwrap_or(false).then_some(out)
}

/// Active-active directors fail over by routing, not by VRRP or pulse: refuse a file that
/// asks for both (`span`: the `[cluster]` table).
pub(super) fn check_mode(cx: &mut Cx<'_>, f: &FailoverConfig, span: Span) {
    if f.cluster.is_none() {
        return;
    }
    let other = match &f.mode {
        FailoverMode::None => return,
        FailoverMode::Vrrp(_) => "`[[vrrp_instance]]`",
        FailoverMode::Pulse(_) => "`[pulse]`",
        FailoverMode::Fos(_) => "`[[failover_service]]`",
    };
    cx.error(
        span,
        format!(
            "`[cluster] mode = \"active-active\"` with {other}: active-active directors all \
             serve at once and the routers choose among them; there is no master to elect"
        ),
        "either `[cluster] mode = \"active-active\"` or a failover protocol",
    );
}

/// A service's `consistent = true`: the Maglev scheduler (mh), which every director builds
/// alike from the same configuration. `scheduler` may say `mh` too; another scheduler is
/// refused.
pub(super) fn consistent(
    cx: &mut Cx<'_>,
    c: &Spanned<bool>,
    scheduler: Option<&Str>,
    svc: &mut VirtualServiceConfig,
) {
    if !*c.get_ref() {
        return;
    }
    match scheduler {
        Some(s) if s.get_ref() != SchedulerKind::Mh.name() => cx.error(
            s.span(),
            format!(
                "`consistent = true` with `scheduler = \"{}\"`: a consistent service is \
                 scheduled by Maglev hashing",
                s.get_ref()
            ),
            "`scheduler = \"mh\"` or no `scheduler`",
        ),
        _ => svc.scheduler = SchedulerKind::Mh,
    }
}

/// Whether `k`'s choice depends on this director's own state (connection counts, a
/// round-robin position, a random draw, the locality tables) rather than on the
/// configuration and the packet alone (sh, dh, mh).
pub fn depends_on_local_state(k: SchedulerKind) -> bool {
    !matches!(k, SchedulerKind::Sh | SchedulerKind::Dh | SchedulerKind::Mh)
}

/// Warn, at each service's scheduler (or its `vip` / `fwmark` when the scheduler is the
/// default), for an active-active file without `[sync]` whose service schedules by local
/// state: a flow ECMP moves to another director is scheduled afresh there. The file runs
/// as written.
pub(super) fn warn_local_state(
    cx: &Cx<'_>,
    f: &FailoverConfig,
    config: &Config,
    at: &[Span],
    out: &mut Vec<Diagnostic>,
) {
    if f.cluster.is_none() || f.sync.is_some() {
        return;
    }
    for (svc, span) in config.services.iter().zip(at) {
        if !depends_on_local_state(svc.scheduler) {
            continue;
        }
        out.push(Diagnostic::new(
            cx.text,
            cx.path,
            span.clone(),
            Severity::Warning,
            format!(
                "virtual service {}: scheduler `{}` chooses by this director's own state, and \
                 with `[cluster] mode = \"active-active\"` and no `[sync]` a flow that the \
                 routers move to another director is scheduled afresh there and may reach \
                 another real server; rvs runs it as written (`consistent = true` schedules \
                 by Maglev hashing, the same on every director; `[sync]` shares connections)",
                describe(&svc.key),
                svc.scheduler.name()
            ),
            None,
        ));
    }
}

fn describe(k: &ServiceKey) -> String {
    locate::describe(k)
}

/// `[cluster]` for an active-active file (nothing for the default).
pub(super) fn write(out: &mut String, c: Option<&ClusterSetup>) {
    let Some(c) = c else {
        return;
    };
    out.push_str("\n[cluster]\nmode = \"active-active\"\n");
    let _ = writeln!(
        out,
        "route_table = {}\nroute_device = {}\nconvergence_delay = {}",
        c.route_table,
        quote(&c.route_device),
        secs(c.convergence_delay)
    );
}
