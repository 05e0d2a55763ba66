//! Least privilege: at the start of `rvs daemon`, before any other thread exists (Linux
//! capabilities are per thread; later threads inherit the sets of the thread that starts
//! them), the daemon gives up every capability but those it uses while running, and with
//! `--user NAME` becomes that user keeping them.
//!
//! Kept, from the bounding, permitted and effective sets alike (so no program the daemon or
//! a script runs, even as root, gets another back):
//! - `CAP_NET_RAW`: the AF_PACKET rings, raw VRRP/AH and ICMP sockets, `SO_BINDTODEVICE`.
//! - `CAP_NET_ADMIN`: addresses, routes and rules (VIPs, the probe path, FOS floating
//!   addresses), `SO_MARK` on checks, the TUN device, sysctls of the network namespace,
//!   multicast membership, firewall marks through iptables / nft.
//! - `CAP_SYS_NICE` while `--rt-priority` is above 0 (the default, 1): the data-plane
//!   thread switches itself to `SCHED_FIFO` once the other threads run.
//! - `CAP_NET_BIND_SERVICE` when a port below 1024 is bound: `--metrics` there, or pulse's
//!   heartbeat (`heartbeat_port`, 539 by default) with lvs.cf.
//! - `CAP_CHOWN` with `--control-group`: the control socket is given to that group after
//!   the capabilities are dropped.
//! - `CAP_SETUID`, `CAP_SETGID` and `CAP_KILL` when some script runs as a user or group
//!   other than the daemon's own (keepalived's `script_user`, a script's `user`, the
//!   `keepalived_script` user): to switch to it in the child before `exec`, and to kill the
//!   script's process group at its time limit.
//!
//! With `service = fos` the bounding set stays whole: `start_cmd` and `stop_cmd` start and
//! stop the failover services themselves as root, and those need what root has.
//!
//! Everything else goes, `CAP_DAC_OVERRIDE` and `CAP_SYS_ADMIN` included: the daemon reads
//! its configuration and writes its control socket, PID file and sysctls as the owner
//! (root, or the `--user`). Which scripts run as whom is decided at start: a reload that
//! adds a script for another user while those capabilities were given up is warned, and the
//! script fails to start until the daemon is restarted.
//!
//! With `--user NAME` the daemon's uid, gid and supplementary groups become the user's;
//! `CAP_NET_RAW` and `CAP_NET_ADMIN` are also raised into the ambient set so that the
//! programs it runs for itself (iptables, nft, ip) keep them. Scripts never inherit them
//! (`rvs_sys::process::script_command` clears the ambient set).

use std::io;

use rvs_check::script::RunAs;
use rvs_sys::caps::{self, Cap, CapSet};

/// What the daemon keeps (see the module's documentation): `ports` are the ports it binds
/// after start.
pub fn needed(rt_priority: u8, ports: &[u16], scripts_as_others: bool) -> CapSet {
    let mut keep = vec![Cap::NET_RAW, Cap::NET_ADMIN];
    if rt_priority > 0 {
        keep.push(Cap::SYS_NICE);
    }
    if ports.iter().any(|p| (1..1024).contains(p)) {
        keep.push(Cap::NET_BIND_SERVICE);
    }
    if scripts_as_others {
        keep.extend([Cap::SETUID, Cap::SETGID, Cap::KILL]);
    }
    CapSet::of(&keep)
}

/// At start: configure the scripts ([`crate::scripts::configure`], [`crate::scripts::audit`]),
/// become `--user` if asked, keep only what is [`needed`], and log what is held.
pub fn at_start(
    failover: &rvs_config::FailoverConfig,
    health: &rvs_core::health::HealthConfig,
    opts: &crate::daemon::Options,
) -> io::Result<()> {
    let target = match &opts.user {
        Some(name) => Some(rvs_sys::process::user_by_name(name)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("--user {name}: no such user"),
            )
        })?),
        None => None,
    };
    let (uid, gid) = caps::ids();
    let me = target.unwrap_or(RunAs { uid, gid });
    if target.is_some() && matches!(failover.mode, rvs_config::failover::FailoverMode::Fos(_)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--user cannot be used with service = fos: start_cmd and stop_cmd run as root",
        ));
    }
    crate::scripts::configure(&failover.scripts, opts.script_timeout, Some(me));
    let users = crate::scripts::audit(failover, health);
    let others = users.iter().any(|u| *u != me);
    let mut ports: Vec<u16> = opts.metrics.map(|a| a.port()).into_iter().collect();
    match &failover.mode {
        rvs_config::failover::FailoverMode::Pulse(p) => ports.push(p.port),
        rvs_config::failover::FailoverMode::Fos(f) => {
            ports.extend(f.pulse.as_ref().map(|p| p.port))
        }
        _ => {}
    }
    let mut keep = needed(opts.rt_priority, &ports, others);
    if opts.control_group.is_some() {
        // CAP_CHOWN (0): the control socket is given to `--control-group` after this
        // (daemon/console_ops.rs `share_socket`).
        keep = keep.union(CapSet::of(&[Cap(0)]));
    }
    // FOS's start_cmd / stop_cmd start the services themselves as root (a web server that
    // binds port 80 and changes to its own user, ...): they get root's whole bounding set.
    if !matches!(failover.mode, rvs_config::failover::FailoverMode::Fos(_)) {
        caps::drop_bounding(keep)?;
    }
    match target {
        Some(t) => caps::become_user(
            t.uid,
            t.gid,
            keep,
            CapSet::of(&[Cap::NET_RAW, Cap::NET_ADMIN]),
        )?,
        None => caps::restrict(keep)?,
    }
    log_held("privileges dropped");
    Ok(())
}

/// On reload: the scripts' policy again, and a warning when a script now runs as another
/// user while the capabilities to switch to it were given up at start.
pub fn reloaded(
    failover: &rvs_config::FailoverConfig,
    health: &rvs_core::health::HealthConfig,
    script_timeout: std::time::Duration,
) {
    let (uid, gid) = caps::ids();
    let me = RunAs { uid, gid };
    crate::scripts::configure(&failover.scripts, script_timeout, Some(me));
    let users = crate::scripts::audit(failover, health);
    let held = caps::current().map(|c| c.effective).unwrap_or_default();
    for u in users.iter().filter(|u| **u != me) {
        if !held.has(Cap::SETUID) || !held.has(Cap::SETGID) {
            tracing::warn!(
                uid = u.uid,
                gid = u.gid,
                "a script now runs as another user, but the daemon gave up CAP_SETUID/CAP_SETGID \
                 at start: it will fail to start until rvs restarts"
            );
        }
    }
}

/// Log the user and the capabilities held.
fn log_held(what: &str) {
    let (uid, gid) = caps::ids();
    match caps::current() {
        Ok(c) => tracing::info!(
            uid,
            gid,
            user = %rvs_sys::process::user_name(uid).unwrap_or_default(),
            effective = %c.effective,
            permitted = %c.permitted,
            bounding = %c.bounding,
            ambient = %c.ambient,
            "{what}"
        ),
        Err(e) => tracing::warn!("{what}: cannot read the capabilities: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept() {
        assert_eq!(
            needed(0, &[], false).to_string(),
            "CAP_NET_ADMIN,CAP_NET_RAW"
        );
        assert_eq!(
            needed(1, &[9100], false).to_string(),
            "CAP_NET_ADMIN,CAP_NET_RAW,CAP_SYS_NICE"
        );
        assert_eq!(
            needed(0, &[9100, 539], true).to_string(),
            "CAP_KILL,CAP_SETGID,CAP_SETUID,CAP_NET_BIND_SERVICE,CAP_NET_ADMIN,CAP_NET_RAW"
        );
    }
}
