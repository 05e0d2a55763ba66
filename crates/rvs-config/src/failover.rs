//! Failover configuration: what the daemon runs to decide which director is active — VRRP
//! instances and sync groups (keepalived.conf) or Piranha's pulse heartbeat (lvs.cf) — and
//! the connection-synchronisation daemon that lets established connections survive the
//! switch.
//!
//! [`failover_from_keepalived`] and [`failover_from_lvs_cf`] map the parsed data with
//! keepalived's and Piranha's defaults and semantics (keepalived `vrrp_parser.c`, `vrrp.c`
//! `vrrp_complete_instance` / `vrrp_complete_init`, `global_parser.c`; Piranha `pulse.c`),
//! and check what only the whole file can tell: names that must refer to another block,
//! conflicts between instances, values the chosen VRRP version cannot carry. Errors and
//! warnings are located at file:line:column like the parsers' own.
//!
//! What this module does not do: it runs nothing (no socket, address, script or timer) and
//! does not know this host. The daemon fills each VRRP instance's primary address from its
//! interface ([`VrrpInstanceSetup::primary_from_interface`]) and picks the pulse role from
//! the host's addresses ([`PulseSetup::config_for`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use rvs_core::pulse::{PulseConfig, Role};
use rvs_core::vrrp::{
    Auth, GarpConfig, InitialState, Preempt, RouterConfig, Track, Version, VirtualRouter,
};

use crate::diag::{Diagnostic, Place};
use crate::keepalived::{
    AuthType, GlobalDefs, KeepalivedConf, VirtualIp, VrrpInstance, VrrpScript, VrrpState,
};
use crate::lvs::{LvsCf, ServiceType};
use crate::script::{Script, ScriptPolicy};

/// What the daemon runs for failover.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailoverConfig {
    /// How this director decides whether it is active.
    pub mode: FailoverMode,
    /// The connection-synchronisation daemon, if configured.
    pub sync: Option<SyncSetup>,
    /// Non-fatal findings of the mapping (values rounded or clamped as keepalived does,
    /// settings without effect), located; the caller shows them with the parser's.
    pub warnings: Vec<Diagnostic>,
    /// keepalived's `script_user` and `enable_script_security` (for the health checkers'
    /// scripts too).
    pub scripts: ScriptPolicy,
    /// `[cluster] mode = "active-active"` (or `rvs daemon --active-active`): every director
    /// serves the VIPs at once behind ECMP and announces them through a routing daemon
    /// (see [`ClusterSetup`]); None: the usual active/backup directors.
    pub cluster: Option<ClusterSetup>,
}

/// Active-active directors (`[cluster]` in the TOML, docs/operating.md "Active-active
/// directors behind ECMP"): no VRRP or pulse, no ARP/ND answered for the VIPs; connection
/// sync runs as master and backup at once; each VIP this director can serve is written as a
/// host route into a routing table of its own, which a BGP daemon (BIRD) announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSetup {
    /// The kernel routing table the VIP routes are written to \[[`ClusterSetup::DEFAULT_TABLE`]\].
    pub route_table: u32,
    /// The device the VIP routes point at, a TUN device the daemon owns (its routes vanish
    /// with the daemon, even after `kill -9`) \[`rvsvip0`\].
    pub route_device: String,
    /// How long a withdrawal (drain, shutdown) waits for the routers to converge before it
    /// is reported done or the daemon stops forwarding \[5 s\].
    pub convergence_delay: Duration,
}

impl ClusterSetup {
    /// The default routing table of the VIP routes (next to the probe path's 29301).
    pub const DEFAULT_TABLE: u32 = 29_302;
    /// The default TUN device of the VIP routes.
    pub const DEFAULT_DEVICE: &'static str = "rvsvip0";
    /// The default convergence delay.
    pub const DEFAULT_CONVERGENCE: Duration = Duration::from_secs(5);
}

impl Default for ClusterSetup {
    fn default() -> Self {
        ClusterSetup {
            route_table: Self::DEFAULT_TABLE,
            route_device: Self::DEFAULT_DEVICE.to_string(),
            convergence_delay: Self::DEFAULT_CONVERGENCE,
        }
    }
}

/// How a director decides whether it is active.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FailoverMode {
    /// No failover: the director is always active (owns its VIPs from the start).
    #[default]
    None,
    /// keepalived's VRRP instances.
    Vrrp(VrrpSetup),
    /// Piranha's pulse heartbeat.
    Pulse(PulseSetup),
    /// Piranha's failover services (`service = fos`): pulse's heartbeat (with the FOS
    /// magics) decides where each service runs; the director forwards nothing.
    Fos(FosSetup),
}

/// Failover services (lvs.cf `service = fos`), as pulse, fos and nanny run them (Piranha
/// pulse.c `activateFosServices()` / `activateFosMonitors()`, fos.c `run()`, nanny.c
/// `run()` with `--fos`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FosSetup {
    /// pulse's heartbeat (`heartbeat = 1`); None: no partner, the services run here from
    /// the start.
    pub pulse: Option<PulseSetup>,
    /// The active `failover` blocks with an address, in file order.
    pub services: Vec<FosServiceSetup>,
}

impl FosSetup {
    /// The heartbeat engine's configuration for a host with addresses `me`
    /// ([`PulseSetup::config_for`] with the FOS magics). A primary without a backup starts
    /// active (pulse.c main(): "Warning: FOS backup node not defined -- skipping checks").
    pub fn pulse_config_for(&self, me: &[IpAddr]) -> Option<PulseConfig> {
        let mut c = self.pulse.as_ref()?.config_for(me)?;
        c.fos = true;
        if c.role == Role::Primary && !c.backup_active {
            c.force_active = true;
        }
        Some(c)
    }

    /// The floating addresses, one per distinct address, in file order.
    pub fn addresses(&self) -> Vec<crate::lvs::Vip> {
        let mut out: Vec<crate::lvs::Vip> = Vec::new();
        for s in &self.services {
            if !out.iter().any(|v| v.addr == s.address.addr) {
                out.push(s.address.clone());
            }
        }
        out
    }
}

/// One failover service: a `failover NAME { ... }` block with `active = 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FosServiceSetup {
    /// The block's name.
    pub name: String,
    /// `address = IP DEV` with `vip_nmask`: the floating address the active node holds
    /// (and announces), and where the inactive node checks the service.
    pub address: crate::lvs::Vip,
    /// `port` \[80\].
    pub port: u16,
    /// `protocol` \[tcp\].
    pub protocol: rvs_core::model::Protocol,
    /// nanny's check of the service (`send`, `expect`, `send_program`; on port 80 with none
    /// of them `GET / HTTP/1.0` expecting `HTTP`), every `timeout` \[10 s\] seconds, each
    /// within `timeout`.
    pub check: rvs_core::health::CheckSpec,
    /// `start_cmd`, cut at each space: run (without a shell, waited for) when this node
    /// becomes active, after `stop_cmd`.
    pub start_cmd: Option<Vec<String>>,
    /// `stop_cmd`, cut at each space: run at start, before `start_cmd`, and when this node
    /// stops serving.
    pub stop_cmd: Option<Vec<String>>,
}

/// Every VRRP instance, sync group and tracking script of a keepalived.conf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VrrpSetup {
    /// The `vrrp_instance` blocks, in file order.
    pub instances: Vec<VrrpInstanceSetup>,
    /// The `vrrp_sync_group` blocks with two or more members.
    pub sync_groups: Vec<SyncGroupSetup>,
    /// The `vrrp_script` blocks some instance tracks (keepalived does not run the others).
    pub scripts: Vec<TrackScriptSetup>,
}

impl VrrpSetup {
    /// The index of the instance named `name`.
    pub fn instance(&self, name: &str) -> Option<usize> {
        self.instances.iter().position(|i| i.name == name)
    }

    /// The tracking script named `name`.
    pub fn script(&self, name: &str) -> Option<&TrackScriptSetup> {
        self.scripts.iter().find(|s| s.name == name)
    }
}

/// One `vrrp_instance`: the engine's configuration and what the daemon does around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstanceSetup {
    /// The instance's name.
    pub name: String,
    /// `interface`: where advertisements are sent and received.
    pub interface: String,
    /// The engine's configuration. `primary_ip` is `unicast_src_ip` (or `mcast_src_ip`)
    /// when given, else the unspecified address of the instance's family, which the daemon
    /// replaces with the interface's primary address (IPv6: its link-local address) at
    /// start ([`Self::primary_from_interface`]). `tracks` are `track_interfaces` then
    /// `track_scripts`, in that order.
    pub router: RouterConfig,
    /// Whether `router.primary_ip` is a placeholder to fill from the interface.
    pub primary_from_interface: bool,
    /// `virtual_ipaddress`: the advertised addresses, added while master.
    pub addresses: Vec<AddressSetup>,
    /// `virtual_ipaddress_excluded`: added while master, not advertised (either family).
    pub excluded_addresses: Vec<AddressSetup>,
    /// `notify_master`: a command line run on becoming master.
    pub notify_master: Option<Script>,
    /// `notify_backup`: run on becoming backup.
    pub notify_backup: Option<Script>,
    /// `notify_fault`: run on entering the fault state.
    pub notify_fault: Option<Script>,
    /// `notify_stop`: run when the instance stops.
    pub notify_stop: Option<Script>,
    /// keepalived's generic `notify`: run on every change with the arguments `INSTANCE`
    /// NAME STATE PRIORITY (STATE one of MASTER, BACKUP, FAULT, STOP).
    pub notify: Option<Script>,
    /// Tracked interfaces, for `router.tracks[0..n]` in this order. Unless
    /// `dont_track_primary` is set, the instance's own interface comes first (weight 0:
    /// down means fault), as keepalived tracks it.
    pub track_interfaces: Vec<String>,
    /// Tracked scripts, for `router.tracks[n..]` in this order: names into
    /// [`VrrpSetup::scripts`].
    pub track_scripts: Vec<String>,
    /// `use_vmac`: own the virtual MAC on a macvlan interface.
    pub use_vmac: bool,
    /// `use_vmac NAME`: the macvlan's name \[keepalived: `vrrp.VRID`\].
    pub vmac_name: Option<String>,
}

impl VrrpInstanceSetup {
    /// The notify scripts by keyword (`notify_master`, `notify_backup`, `notify_fault`,
    /// `notify_stop`, `notify`), in that order, None where unset: what the writers write.
    pub fn notify_scripts(&self) -> [(&'static str, Option<&Script>); 5] {
        notify_scripts([
            &self.notify_master,
            &self.notify_backup,
            &self.notify_fault,
            &self.notify_stop,
            &self.notify,
        ])
    }
}

/// The five notify keywords paired with their scripts, in keepalived's order.
fn notify_scripts(scripts: [&Option<Script>; 5]) -> [(&'static str, Option<&Script>); 5] {
    let [m, b, f, s, n] = scripts.map(Option::as_ref);
    [
        ("notify_master", m),
        ("notify_backup", b),
        ("notify_fault", f),
        ("notify_stop", s),
        ("notify", n),
    ]
}

/// A virtual address: `IP/LEN dev DEV label LABEL scope SCOPE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSetup {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length \[32 / 128\].
    pub prefix: u8,
    /// `dev` \[the instance's interface\].
    pub device: String,
    /// `label`, e.g. `eth0:1`.
    pub label: Option<String>,
    /// `scope` (`global`, `link`, `host` ...) \[global\].
    pub scope: Option<String>,
}

/// A `vrrp_sync_group`: instances that change state together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupSetup {
    /// The group's name.
    pub name: String,
    /// Indices into [`VrrpSetup::instances`], as listed.
    pub members: Vec<usize>,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify_stop`.
    pub notify_stop: Option<Script>,
    /// `notify`: run with `GROUP` NAME STATE.
    pub notify: Option<Script>,
}

impl SyncGroupSetup {
    /// The notify scripts by keyword, as [`VrrpInstanceSetup::notify_scripts`].
    pub fn notify_scripts(&self) -> [(&'static str, Option<&Script>); 5] {
        notify_scripts([
            &self.notify_master,
            &self.notify_backup,
            &self.notify_fault,
            &self.notify_stop,
            &self.notify,
        ])
    }
}

/// A `vrrp_script` that some instance tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScriptSetup {
    /// Its name.
    pub name: String,
    /// `script`: the command line.
    pub script: String,
    /// `interval` \[1 s\]: time between runs.
    pub interval: Duration,
    /// `timeout` \[none: the interval\]: a run taking longer has failed.
    pub timeout: Option<Duration>,
    /// `weight` \[0\] (the default for instances that track it without a weight).
    pub weight: i32,
    /// `weight ... reverse`.
    pub reverse: bool,
    /// `rise` \[1\]: successes in a row to become up.
    pub rise: u32,
    /// `fall` \[1\]: failures in a row to become down.
    pub fall: u32,
    /// `user USER [GROUP]` to run it as \[keepalived's `script_user`\].
    pub user: Option<String>,
    /// `init_fail`: down until it first succeeds.
    pub init_fail: bool,
}

/// Piranha's pulse heartbeat between a primary and a backup director (lvs.cf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulseSetup {
    /// `primary`: the primary director's public address.
    pub primary: IpAddr,
    /// `backup`: the backup director's public address (none when `backup_active = 0`
    /// and the primary runs alone).
    pub backup: Option<IpAddr>,
    /// `primary_private`: the primary's address on the private network.
    pub primary_private: Option<IpAddr>,
    /// `backup_private`: the backup's address on the private network.
    pub backup_private: Option<IpAddr>,
    /// `heartbeat_port` \[539\].
    pub port: u16,
    /// `keepalive` \[2 s\]: time between heartbeats.
    pub keepalive: Duration,
    /// `deadtime` \[5 s\]: silence before the partner is declared dead.
    pub deadtime: Duration,
    /// `backup_active` \[0\]: whether a backup director is configured.
    pub backup_active: bool,
    /// `active_cmd`: run on becoming active.
    pub active_cmd: Option<String>,
    /// `inactive_cmd`: run on becoming inactive.
    pub inactive_cmd: Option<String>,
    /// `monitor_links` \[0\]: the links of this node's own addresses (public and private)
    /// are checked each loop; one down disables the node (only with `backup_active`).
    pub monitor_links: bool,
}

impl PulseSetup {
    /// Which node a host with addresses `me` is, as pulse decides: the primary if it owns
    /// `primary` (or `primary_private`), else the backup if it owns `backup` (or
    /// `backup_private`), else neither.
    pub fn role_for(&self, me: &[IpAddr]) -> Option<Role> {
        let mine = |a: Option<IpAddr>| a.is_some_and(|a| me.contains(&a));
        if mine(Some(self.primary)) || mine(self.primary_private) {
            Some(Role::Primary)
        } else if mine(self.backup) || mine(self.backup_private) {
            Some(Role::Backup)
        } else {
            None
        }
    }

    /// The heartbeat engine's configuration for a host with addresses `me`: its role and
    /// its partner's public address (a primary running alone gets the unspecified address:
    /// it sends nothing, `backup_active` being 0). None when `me` holds neither node's
    /// address.
    pub fn config_for(&self, me: &[IpAddr]) -> Option<PulseConfig> {
        let role = self.role_for(me)?;
        let partner = match role {
            Role::Primary => self.backup.unwrap_or(unspecified(self.primary)),
            Role::Backup => self.primary,
        };
        Some(PulseConfig {
            port: self.port,
            keepalive: self.keepalive,
            deadtime: self.deadtime,
            backup_active: self.backup_active,
            monitor_links: self.monitor_links,
            ..PulseConfig::new(role, partner)
        })
    }

    /// This node's own addresses for `role` (public, then private if any): the links
    /// `monitor_links` watches (pulse.c `check_links()`).
    pub fn own_addresses(&self, role: Role) -> Vec<IpAddr> {
        match role {
            Role::Primary => std::iter::once(self.primary)
                .chain(self.primary_private)
                .collect(),
            Role::Backup => self.backup.into_iter().chain(self.backup_private).collect(),
        }
    }

    /// The partner's private address for `role` (`backup_private` for the primary,
    /// `primary_private` for the backup): the second heartbeat path, if configured.
    pub fn private_partner(&self, role: Role) -> Option<IpAddr> {
        match role {
            Role::Primary => self.backup_private,
            Role::Backup => self.primary_private,
        }
    }
}

/// The connection-synchronisation daemon (keepalived `lvs_sync_daemon`, lvs.cf
/// `syncdaemon`): the active director sends its connection table, the others receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSetup {
    /// The interface sync messages use.
    pub interface: String,
    /// The sync id (keepalived: `id` \[the instance's virtual_router_id\]; lvs.cf:
    /// `syncd_id` \[0\]).
    pub syncid: u8,
    /// The multicast group \[224.0.0.81\].
    pub group: IpAddr,
    /// The UDP port \[8848\].
    pub port: u16,
    /// The multicast TTL \[1\].
    pub ttl: u8,
    /// The largest sync message \[1472: a 1500-byte MTU less the IP and UDP headers\].
    pub maxlen: u16,
    /// The VRRP instance whose state decides sender (master) or receiver (backup); None
    /// with pulse (its active state decides) or without failover (both directions, as
    /// keepalived runs the daemon without VRRP).
    pub vrrp_instance: Option<String>,
    /// Send to this address instead of the group: the rvs extension
    /// `lvs_sync_daemon ... group UNICAST-ADDRESS` (keepalived takes only multicast groups).
    pub unicast_peer: Option<IpAddr>,
}

impl SyncSetup {
    /// The IPVS defaults for `interface` and `syncid`.
    pub fn new(interface: String, syncid: u8) -> SyncSetup {
        SyncSetup {
            interface,
            syncid,
            group: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81)),
            port: 8848,
            ttl: 1,
            maxlen: 1472,
            vrrp_instance: None,
            unicast_peer: None,
        }
    }
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn family_name(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Errors and warnings gathered while mapping.
#[derive(Default)]
struct Findings {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Findings {
    fn error(&mut self, at: &Place, msg: impl Into<String>, expected: impl Into<String>) {
        self.errors.push(at.error(msg, expected));
    }

    fn warn(&mut self, at: &Place, msg: impl Into<String>) {
        self.warnings.push(at.warning(msg));
    }

    fn finish(
        mut self,
        mode: FailoverMode,
        sync: Option<SyncSetup>,
    ) -> Result<FailoverConfig, Vec<Diagnostic>> {
        let order = |d: &Diagnostic| (d.path.clone(), d.line, d.column);
        if !self.errors.is_empty() {
            self.errors.sort_by_key(order);
            return Err(self.errors);
        }
        self.warnings.sort_by_key(order);
        Ok(FailoverConfig {
            mode,
            sync,
            warnings: self.warnings,
            scripts: ScriptPolicy::default(),
            cluster: None,
        })
    }
}

/// What rvs runs for the VRRP side of a keepalived.conf: every `vrrp_instance` (with the
/// `global_defs` VRRP defaults applied), the `vrrp_sync_group`s, the tracked
/// `vrrp_script`s, and `lvs_sync_daemon` (or an instance's deprecated
/// `lvs_sync_daemon_interface`). No instance: [`FailoverMode::None`].
///
/// Refused, each at the place it blames: a `virtual_router_id` outside 1..=255 or a
/// `priority` outside 1..=255; an instance without `interface`; addresses of both families
/// in one instance (keepalived drops the odd ones with a configuration error); an IPv6
/// instance with `version 2`; a VRRPv3 (or IPv6) instance without virtual addresses; an
/// `advert_int` the version cannot carry once rounded as keepalived rounds (v2: whole
/// seconds 1..=255, v3: centiseconds 1..=4095); two instances with the
/// same virtual_router_id and family on one interface; a sync group naming an unknown instance, or an instance in two groups;
/// `lvs_sync_daemon` naming an unknown instance.
pub fn failover_from_keepalived(kc: &KeepalivedConf) -> Result<FailoverConfig, Vec<Diagnostic>> {
    let mut f = Findings::default();
    let v = &kc.vrrp;
    let mut instances = Vec::new();
    let mut used_scripts: Vec<&str> = Vec::new();
    for i in &v.instances {
        if let Some(s) = instance(i, &kc.global, &v.scripts, &mut f) {
            for sc in v
                .scripts
                .iter()
                .filter(|x| s.track_scripts.contains(&x.name))
            {
                if !used_scripts.contains(&sc.name.as_str()) {
                    used_scripts.push(sc.name.as_str());
                }
            }
            instances.push((i, s));
        }
    }
    duplicate_vrids(&instances, &mut f);

    let mut sync_groups = Vec::new();
    let mut grouped: Vec<(usize, &str)> = Vec::new();
    for g in &v.sync_groups {
        let mut members = Vec::new();
        for (k, name) in g.group.iter().enumerate() {
            let at = g.group_places.get(k).unwrap_or(&g.place);
            let Some(idx) = v.instances.iter().position(|i| &i.name == name) else {
                f.error(
                    at,
                    format!(
                        "vrrp_sync_group `{}` names an unknown vrrp_instance `{name}`",
                        g.name
                    ),
                    "the name of a `vrrp_instance` block",
                );
                continue;
            };
            if let Some((_, other)) = grouped.iter().find(|(x, _)| *x == idx) {
                // keepalived vrrp_sync.c: "cannot exist in more than one sync group".
                f.error(
                    at,
                    format!("vrrp_instance `{name}` is already in vrrp_sync_group `{other}`"),
                    "each instance in at most one sync group",
                );
                continue;
            }
            grouped.push((idx, g.name.as_str()));
            members.push(idx);
        }
        match members.len() {
            0 => {}
            1 => f.warn(
                &g.place,
                format!(
                    "vrrp_sync_group `{}` has only one instance: removed, as keepalived does",
                    g.name
                ),
            ),
            _ => sync_groups.push(SyncGroupSetup {
                name: g.name.clone(),
                members,
                notify_master: g.notify_master.clone(),
                notify_backup: g.notify_backup.clone(),
                notify_fault: g.notify_fault.clone(),
                notify_stop: g.notify_stop.clone(),
                notify: g.notify.clone(),
            }),
        }
    }

    let mut scripts = Vec::new();
    for sc in &v.scripts {
        if used_scripts.contains(&sc.name.as_str()) {
            scripts.push(track_script(sc));
        } else {
            f.warn(
                &sc.place,
                format!(
                    "vrrp_script `{}` is not tracked by any vrrp_instance: not run, as keepalived does",
                    sc.name
                ),
            );
        }
    }

    let sync = keepalived_sync(kc, &mut f);
    let mode = if v.instances.is_empty() {
        FailoverMode::None
    } else {
        FailoverMode::Vrrp(VrrpSetup {
            instances: instances.into_iter().map(|(_, s)| s).collect(),
            sync_groups,
            scripts,
        })
    };
    f.finish(mode, sync).map(|mut c| {
        c.scripts = kc.global.scripts.clone();
        c
    })
}

fn track_script(sc: &VrrpScript) -> TrackScriptSetup {
    TrackScriptSetup {
        name: sc.name.clone(),
        script: sc.script.clone(),
        interval: sc.interval,
        timeout: sc.timeout,
        weight: sc.weight,
        reverse: sc.reverse,
        rise: sc.rise,
        fall: sc.fall,
        user: sc.user.clone(),
        init_fail: sc.init_fail,
    }
}

/// Two instances on one interface with the same VRID and family would receive each
/// other's advertisements (keepalived: "VRID conflict between %s and %s IPv%d vrid %d").
fn duplicate_vrids(instances: &[(&VrrpInstance, VrrpInstanceSetup)], f: &mut Findings) {
    for (k, (i, s)) in instances.iter().enumerate() {
        let first = instances[..k].iter().find(|(_, o)| {
            o.interface == s.interface
                && o.router.vrid == s.router.vrid
                && o.router.primary_ip.is_ipv4() == s.router.primary_ip.is_ipv4()
        });
        if let Some((oi, o)) = first {
            f.error(
                &i.place("virtual_router_id"),
                format!(
                    "virtual_router_id {} is already used on {} for {} by vrrp_instance `{}` (line {})",
                    s.router.vrid,
                    s.interface,
                    family_name(s.router.primary_ip),
                    o.name,
                    oi.place("vrrp_instance").line
                ),
                "a virtual_router_id unique per interface and address family",
            );
        }
    }
}

fn instance(
    i: &VrrpInstance,
    g: &GlobalDefs,
    scripts: &[VrrpScript],
    f: &mut Findings,
) -> Option<VrrpInstanceSetup> {
    let errors_before = f.errors.len();
    let name = &i.name;
    if i.virtual_router_id == 0 {
        f.error(
            &i.place("virtual_router_id"),
            format!("vrrp_instance `{name}`: virtual_router_id 0 is reserved"),
            "a virtual_router_id in 1..=255",
        );
    }
    if i.priority == 0 {
        f.error(
            &i.place("priority"),
            format!("vrrp_instance `{name}`: priority 0 is reserved for a resigning master"),
            "a priority in 1..=255",
        );
    }
    let interface = match &i.interface {
        Some(x) => x.clone(),
        None => {
            f.error(
                &i.place("vrrp_instance"),
                format!("vrrp_instance `{name}` has no `interface`"),
                "`interface IF` in the block",
            );
            String::new()
        }
    };

    // The family: the first virtual address's (keepalived alloc_vrrp_vip), else the source
    // address's, else the first peer's, else IPv4 ("Default to IPv4").
    let src = i.unicast_src_ip.or(i.mcast_src_ip);
    let src_key = if i.unicast_src_ip.is_some() {
        "unicast_src_ip"
    } else {
        "mcast_src_ip"
    };
    let like = i
        .virtual_ipaddresses
        .first()
        .map(|v| v.addr)
        .or(src)
        .or(i.unicast_peers.first().copied())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let v6 = like.is_ipv6();
    let why = match i.virtual_ipaddresses.first() {
        Some(first) => format!("its first virtual address {} is", first.addr),
        None => format!("its {src_key} is"),
    };
    for a in &i.virtual_ipaddresses {
        if a.addr.is_ipv6() != v6 {
            f.error(
                &a.place,
                format!(
                    "vrrp_instance `{name}` mixes address families: {} is {} but {why} {}",
                    a.addr,
                    family_name(a.addr),
                    family_name(like)
                ),
                "addresses of one family per vrrp_instance (one instance per family)",
            );
        }
    }
    if let Some(a) = src
        && a.is_ipv6() != v6
    {
        f.error(
            &i.place(src_key),
            format!(
                "`{src_key}` {a} is {} but vrrp_instance `{name}` is {}",
                family_name(a),
                family_name(like)
            ),
            "a source address of the instance's family",
        );
    }
    for (k, a) in i.unicast_peers.iter().enumerate() {
        if a.is_ipv6() != v6 {
            let at = i
                .unicast_peer_places
                .get(k)
                .cloned()
                .unwrap_or_else(|| i.place("unicast_peer"));
            f.error(
                &at,
                format!(
                    "unicast peer {a} is {} but vrrp_instance `{name}` is {}",
                    family_name(*a),
                    family_name(like)
                ),
                "peers of the instance's family",
            );
        }
    }

    // keepalived vrrp_complete_instance: IPv6 means version 3 unless set; IPv4 takes the
    // global `vrrp_version` [2].
    let version = match (i.version, v6) {
        (Some(2), true) => {
            f.error(
                &i.place("version"),
                format!("vrrp_instance `{name}` is IPv6, which VRRP version 2 cannot carry"),
                "`version 3` (the default for IPv6)",
            );
            Version::V2
        }
        (Some(3), _) | (None, true) => Version::V3,
        (Some(2), false) => Version::V2,
        (Some(n), _) => {
            f.error(
                &i.place("version"),
                format!("vrrp_instance `{name}`: there is no VRRP version {n}"),
                "`version 2` or `version 3`",
            );
            Version::V2
        }
        (None, false) => match g.vrrp.version {
            Some(3) => Version::V3,
            _ => Version::V2,
        },
    };
    if i.virtual_ipaddresses.is_empty() && (version == Version::V3 || v6) {
        f.error(
            &i.place("vrrp_instance"),
            format!("vrrp_instance `{name}` has no virtual address: VRRPv3 needs at least one"),
            "a `virtual_ipaddress { ... }` block with an address",
        );
    }

    let advert_int = advert_int(i, version, f);

    // keepalived vrrp.c vrrp_complete_instance, in its order: strict mode, VRRPv3, no
    // password — each logged and the authentication dropped ("Ignoring"); then AH with an
    // initial state MASTER below 255, which starts as BACKUP ("We need to have received an
    // advert to get the AH sequence no before taking over"). AH over IPv6 cannot occur
    // here: an IPv6 instance is VRRPv3, and `version 2` with IPv6 is refused above.
    let strict = i.strict_mode.unwrap_or(g.vrrp.strict);
    let auth = match (&i.authentication, version) {
        (None, _) => Auth::None,
        (Some(a), _) if strict => {
            f.warn(
                &a.place,
                "strict mode (`vrrp_strict` or `strict_mode`) does not support authentication: \
                 ignored, as keepalived does",
            );
            Auth::None
        }
        (Some(a), Version::V3) => {
            f.warn(
                &a.place,
                "VRRP version 3 has no authentication: ignored, as keepalived does",
            );
            Auth::None
        }
        (Some(a), Version::V2) => match (a.auth_type, &a.auth_pass) {
            (AuthType::Pass, Some(p)) if !p.is_empty() => Auth::pass(p),
            (AuthType::Ah, Some(p)) if !p.is_empty() => Auth::ah(p),
            (t, _) => {
                let name = match t {
                    AuthType::Pass => "PASS",
                    AuthType::Ah => "AH",
                };
                f.warn(
                    &a.place,
                    format!("`auth_type {name}` without `auth_pass`: ignored, as keepalived does"),
                );
                Auth::None
            }
        },
    };
    let ah_master =
        matches!(auth, Auth::Ah(_)) && i.state == Some(VrrpState::Master) && i.priority != 255;
    if ah_master {
        f.warn(
            &i.place("state"),
            "`state MASTER` is incompatible with AH authentication (a router must hear the \
             master's sequence number before taking over): starts as BACKUP, as keepalived does",
        );
    }

    let preempt = if i.nopreempt {
        if !i.preempt_delay.is_zero() {
            f.warn(
                &i.place("preempt_delay"),
                "`preempt_delay` has no effect with `nopreempt` (keepalived resets it)",
            );
        }
        Preempt::Never
    } else if i.preempt_delay.is_zero() {
        Preempt::Always
    } else {
        Preempt::After(i.preempt_delay)
    };
    // keepalived vrrp_complete_instance: the address owner without nopreempt acts "as
    // though state MASTER had been specified".
    let initial_state = if (i.state == Some(VrrpState::Master) && !ah_master)
        || (i.priority == 255 && !i.nopreempt)
    {
        InitialState::Master
    } else {
        InitialState::Backup
    };

    // The garp defaults: the instance's, else global_defs', else keepalived's; the
    // lower-priority ones default to the global master ones (vrrp_complete_init).
    let gv = &g.vrrp;
    let master_delay = gv.garp_master_delay.unwrap_or(Duration::from_secs(5));
    let master_repeat = gv.garp_master_repeat.unwrap_or(5);
    let refresh = i
        .garp_master_refresh
        .or(gv.garp_master_refresh)
        .filter(|d| !d.is_zero());
    let garp = GarpConfig {
        master_delay: i.garp_master_delay.unwrap_or(master_delay),
        master_repeat: i.garp_master_repeat.unwrap_or(master_repeat),
        master_refresh: refresh,
        master_refresh_repeat: i
            .garp_master_refresh_repeat
            .or(gv.garp_master_refresh_repeat)
            .unwrap_or(1),
        lower_prio_delay: i
            .garp_lower_prio_delay
            .or(gv.garp_lower_prio_delay)
            .unwrap_or(master_delay),
        lower_prio_repeat: i
            .garp_lower_prio_repeat
            .or(gv.garp_lower_prio_repeat)
            .unwrap_or(master_repeat),
    };

    // Tracking: the instance's own interface (unless dont_track_primary, or listed with a
    // weight of its own), then track_interface, then track_script.
    let mut tracks = Vec::new();
    let mut track_interfaces = Vec::new();
    if !i.dont_track_primary
        && !interface.is_empty()
        && !i.track_interfaces.iter().any(|t| t.name == interface)
    {
        track_interfaces.push(interface.clone());
        tracks.push(Track {
            weight: 0,
            reverse: false,
            initially_up: true,
        });
    }
    for t in &i.track_interfaces {
        track_interfaces.push(t.name.clone());
        tracks.push(Track {
            weight: track_weight(t.weight.unwrap_or(0), &t.place, f),
            reverse: t.reverse,
            initially_up: true,
        });
    }
    let mut track_scripts = Vec::new();
    for t in &i.track_scripts {
        // The parser drops entries naming no script defined before the instance, as
        // keepalived does (vrrp_track.c alloc_track_script); this only guards data built by
        // hand.
        let Some(sc) = scripts.iter().find(|s| s.name == t.name) else {
            f.error(
                &t.place,
                format!(
                    "vrrp_instance `{name}` tracks an unknown vrrp_script `{}`",
                    t.name
                ),
                "the name of a `vrrp_script` block (with a `script`)",
            );
            continue;
        };
        // keepalived alloc_track_script: the entry's weight (and reverse) override the
        // script's.
        let (weight, reverse) = match t.weight {
            Some(w) => (w, t.reverse),
            None => (sc.weight, sc.reverse),
        };
        track_scripts.push(sc.name.clone());
        tracks.push(Track {
            weight: track_weight(weight, &t.place, f),
            reverse,
            initially_up: !sc.init_fail,
        });
    }

    let address = |a: &VirtualIp| AddressSetup {
        addr: a.addr,
        prefix: a.prefix,
        device: a.dev.clone().unwrap_or_else(|| interface.clone()),
        label: a.label.clone(),
        scope: a.scope.clone(),
    };
    let addresses: Vec<AddressSetup> = i.virtual_ipaddresses.iter().map(address).collect();
    let excluded_addresses = i.virtual_ipaddresses_excluded.iter().map(address).collect();
    let primary_ip = src.unwrap_or(unspecified(like));
    let router = RouterConfig {
        version,
        priority: i.priority,
        advert_int,
        preempt,
        accept: i.accept.unwrap_or(true),
        auth,
        unicast_peers: i.unicast_peers.clone(),
        check_unicast_src: i
            .check_unicast_src
            .or(gv.check_unicast_src)
            .unwrap_or(false),
        initial_state,
        garp,
        lower_prio_no_advert: i
            .lower_prio_no_advert
            .or(gv.lower_prio_no_advert)
            .unwrap_or(false),
        higher_prio_send_advert: i
            .higher_prio_send_advert
            .or(gv.higher_prio_send_advert)
            .unwrap_or(false),
        skip_check_adv_addr: i
            .skip_check_adv_addr
            .or(gv.skip_check_adv_addr)
            .unwrap_or(false),
        tracks,
        ..RouterConfig::new(
            i.virtual_router_id,
            primary_ip,
            addresses.iter().map(|a| a.addr).collect(),
        )
    };
    if f.errors.len() != errors_before {
        return None;
    }
    // What the engine would still refuse (e.g. more than 255 addresses).
    if let Err(e) = VirtualRouter::new(router.clone()) {
        f.error(
            &i.place("vrrp_instance"),
            format!("vrrp_instance `{name}` cannot run: {e}"),
            "a configuration the VRRP engine accepts",
        );
        return None;
    }
    Some(VrrpInstanceSetup {
        name: name.clone(),
        interface,
        router,
        primary_from_interface: src.is_none(),
        addresses,
        excluded_addresses,
        notify_master: i.notify_master.clone(),
        notify_backup: i.notify_backup.clone(),
        notify_fault: i.notify_fault.clone(),
        notify_stop: i.notify_stop.clone(),
        notify: i.notify.clone(),
        track_interfaces,
        track_scripts,
        use_vmac: i.use_vmac.is_some(),
        vmac_name: i.use_vmac.clone().flatten(),
    })
}

/// keepalived reads track weights in -254..=254; a priority only moves within 1..=254, so
/// ±254 acts as ±253, the engine's bound.
fn track_weight(w: i32, at: &Place, f: &mut Findings) -> i32 {
    let c = w.clamp(-253, 253);
    if c != w {
        f.warn(
            at,
            format!("track weight {w} acts as {c}: a priority moves within 1..=254"),
        );
    }
    c
}

/// `advert_int` rounded as keepalived's vrrp_complete_instance rounds it (to the nearest
/// second for v2, centisecond for v3), then checked against what the version carries.
fn advert_int(i: &VrrpInstance, version: Version, f: &mut Findings) -> Duration {
    let micros = i.advert_int.as_micros();
    let (unit, max, unit_name, range) = match version {
        //= https://www.rfc-editor.org/rfc/rfc3768#section-5.3.7
        //# The Advertisement interval indicates the time interval (in seconds)
        //# between ADVERTISEMENTS.  The default is 1 second.
        Version::V2 => (1_000_000u128, 255u128, "whole seconds", "1..=255 s"),
        //= https://www.rfc-editor.org/rfc/rfc5798#section-5.2.7
        //# The Maximum Advertisement Interval is a 12-bit field that indicates
        //# the time interval (in centiseconds) between ADVERTISEMENTS.
        Version::V3 => (10_000u128, 4095u128, "centiseconds", "0.01..=40.95 s"),
    };
    let n = (micros + unit / 2) / unit;
    let at = i.place("advert_int");
    let v = version.number();
    if n == 0 || n > max {
        f.error(
            &at,
            format!(
                "advert_int {} is out of range for VRRP version {v}",
                crate::emit::human_duration(i.advert_int)
            ),
            format!("an interval in {range} ({unit_name})"),
        );
        return Duration::from_secs(1);
    }
    let d = Duration::from_micros((n * unit) as u64);
    if d != i.advert_int {
        f.warn(
            &at,
            format!(
                "advert_int {} rounded to {}: VRRP version {v} carries {unit_name}",
                crate::emit::human_duration(i.advert_int),
                crate::emit::human_duration(d)
            ),
        );
    }
    d
}

/// `lvs_sync_daemon IF INSTANCE [id N] ...`, else the last instance with the deprecated
/// `lvs_sync_daemon_interface IF` (keepalived's handler sets the same global).
fn keepalived_sync(kc: &KeepalivedConf, f: &mut Findings) -> Option<SyncSetup> {
    let instances = &kc.vrrp.instances;
    if let Some(d) = &kc.global.lvs_sync_daemon {
        let vrid = match &d.vrrp_instance {
            None => None,
            Some(n) => match instances.iter().find(|i| &i.name == n) {
                Some(i) => Some(i.virtual_router_id),
                None => {
                    let at = d
                        .places
                        .get("instance")
                        .or_else(|| d.places.get("lvs_sync_daemon"))
                        .cloned()
                        .unwrap_or_default();
                    f.error(
                        &at,
                        format!("lvs_sync_daemon names an unknown vrrp_instance `{n}`"),
                        "the name of a `vrrp_instance` block",
                    );
                    return None;
                }
            },
        };
        let mut s = SyncSetup::new(d.interface.clone(), d.sync_id.or(vrid).unwrap_or(0));
        s.vrrp_instance = d.vrrp_instance.clone();
        match d.group {
            Some(g) if g.is_multicast() => s.group = g,
            // rvs extension: a unicast `group` is the peer director sync messages go to
            // (keepalived ignores a group that is not multicast). Each director names the
            // other; the backup daemon hears them on the port.
            Some(g) => s.unicast_peer = Some(g),
            None => {}
        }
        if let Some(p) = d.port {
            s.port = p;
        }
        if let Some(t) = d.ttl {
            s.ttl = t;
        }
        if let Some(m) = d.maxlen {
            s.maxlen = m;
        }
        return Some(s);
    }
    let i = instances
        .iter()
        .rev()
        .find(|i| i.lvs_sync_daemon_interface.is_some())?;
    let mut s = SyncSetup::new(
        i.lvs_sync_daemon_interface.clone().unwrap_or_default(),
        i.virtual_router_id,
    );
    s.vrrp_instance = Some(i.name.clone());
    Some(s)
}

/// What rvs runs for the redundancy keys of an lvs.cf: pulse when `heartbeat = 1`
/// (otherwise no failover), and the sync daemon when `syncdaemon = 1`.
///
/// `backup_active = 1` without `backup` (or with `backup = 0.0.0.0`, which the Piranha tool
/// writes for no backup) is cleared with a warning, as pulse clears it: the primary runs
/// alone. Refused, each at the key it blames: `heartbeat = 1` without `primary`; `backup`
/// of another family than `primary`; `keepalive` or `deadtime` 0;
/// `syncd_id` above 255. And, as pulse refuses to start: no active `virtual` with an address
/// (`service = lvs`) or no active `failover` block (`service = fos`), at the first block of
/// that kind.
pub fn failover_from_lvs_cf(cf: &LvsCf) -> Result<FailoverConfig, Vec<Diagnostic>> {
    let mut f = Findings::default();
    let fo = &cf.failover;
    let place = |key: &str| fo.places.get(key).cloned().unwrap_or_default();
    // pulse.c main(): with no active service of the kind `service` names, pulse prints
    // "pulse: no active lvs services defined in FILE" (or "fos") and exits 1.
    match fo.service {
        ServiceType::Lvs if cf.config.services.is_empty() => f.error(
            &place(crate::lvs::SERVICES_PLACE),
            "no active lvs services defined: pulse refuses to start without an active \
             `virtual` that has an address",
            "`active = 1` and `address = IP DEVICE` in at least one `virtual` block",
        ),
        ServiceType::Fos
            if !cf.failover_services.iter().any(|s| {
                s.keys.iter().any(|(k, v)| {
                    k == "active"
                        && matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "true" | "on")
                })
            }) =>
        {
            f.error(
                &place(crate::lvs::SERVICES_PLACE),
                "no active fos services defined: pulse refuses to start without an active \
                 `failover` block",
                "`active = 1` in at least one `failover` block",
            )
        }
        ServiceType::Fos if cf.fos_services.is_empty() => f.error(
            &place(crate::lvs::SERVICES_PLACE),
            "no active fos service has an address: fos would bring up and monitor 0.0.0.0",
            "`address = IP DEVICE` in an active `failover` block",
        ),
        _ => {}
    }
    let given = |a: Option<IpAddr>| a.filter(|a| !a.is_unspecified());
    let mut pulse = None;
    if fo.heartbeat {
        let backup = given(fo.backup);
        match given(fo.primary) {
            None => f.error(
                &place("heartbeat"),
                "`heartbeat = 1` needs `primary`: pulse finds its role by that address",
                "`primary = IP` (this director's or its partner's public address)",
            ),
            Some(primary) => {
                // pulse.c main(): "Undefined backup node marked as active? -- clearing
                // that!", and the primary runs alone.
                let backup_active = fo.backup_active && backup.is_some();
                if backup.is_none() && fo.backup_active {
                    f.warn(
                        &place("backup_active"),
                        "`backup_active = 1` without a `backup` address: cleared, as pulse \
                         clears it; the primary runs alone",
                    );
                }
                if let Some(b) = backup
                    && b.is_ipv4() != primary.is_ipv4()
                {
                    f.error(
                        &place("backup"),
                        format!(
                            "`backup` {b} is {} but `primary` is {}",
                            family_name(b),
                            family_name(primary)
                        ),
                        "the backup's address in the primary's family",
                    );
                }
                for (key, v) in [("keepalive", fo.keepalive), ("deadtime", fo.deadtime)] {
                    if v == 0 {
                        f.error(
                            &place(key),
                            format!("`{key} = 0`: pulse needs a time in seconds"),
                            "seconds > 0",
                        );
                    }
                }
                if fo.deadtime <= fo.keepalive && fo.deadtime > 0 {
                    f.warn(
                        &place("deadtime"),
                        format!(
                            "`deadtime` ({} s) is not longer than `keepalive` ({} s): one late \
                             heartbeat fails over",
                            fo.deadtime, fo.keepalive
                        ),
                    );
                }
                pulse = Some(PulseSetup {
                    primary,
                    backup,
                    primary_private: given(fo.primary_private),
                    backup_private: given(fo.backup_private),
                    port: fo.heartbeat_port,
                    keepalive: Duration::from_secs(u64::from(fo.keepalive)),
                    deadtime: Duration::from_secs(u64::from(fo.deadtime)),
                    backup_active,
                    active_cmd: fo.active_cmd.clone(),
                    inactive_cmd: fo.inactive_cmd.clone(),
                    monitor_links: fo.monitor_links,
                });
                if fo.monitor_links && !backup_active {
                    // pulse.c check_links(): "If we're monitoring links but no backup,
                    // disable... us being quasi-up is better than nothing up at all".
                    f.warn(
                        &place("monitor_links"),
                        "`monitor_links` has no effect without a backup (`backup_active = 1` \
                         and `backup`): a director running alone stays up, as pulse does",
                    );
                }
            }
        }
    }
    let mode = match (fo.service, pulse) {
        (ServiceType::Fos, pulse) => FailoverMode::Fos(FosSetup {
            pulse,
            services: cf.fos_services.clone(),
        }),
        (ServiceType::Lvs, Some(p)) => FailoverMode::Pulse(p),
        (ServiceType::Lvs, None) => FailoverMode::None,
    };
    let mut sync = None;
    if fo.syncdaemon && fo.service == ServiceType::Fos {
        // pulse.c starts the IPVS sync daemon only with lvsd; failover services have no
        // connections to synchronise.
        f.warn(
            &place("syncdaemon"),
            "`syncdaemon` has no effect with `service = fos`: failover services forward no \
             connections",
        );
    } else if fo.syncdaemon {
        match u8::try_from(fo.syncd_id) {
            Ok(id) => sync = Some(SyncSetup::new(fo.syncd_iface.clone(), id)),
            Err(_) => f.error(
                &place("syncd_id"),
                format!("`syncd_id` {} is out of range", fo.syncd_id),
                "a sync id in 0..=255",
            ),
        }
    }
    f.finish(mode, sync)
}

fn describe_pulse_line(p: &PulseSetup) -> String {
    format!(
        "pulse primary {} backup {} port {} keepalive {} deadtime {}",
        p.primary,
        p.backup.map_or("none".to_string(), |b| b.to_string()),
        p.port,
        crate::emit::human_duration(p.keepalive),
        crate::emit::human_duration(p.deadtime)
    )
}

/// One line per VRRP instance (and one for its tracked objects), sync group, pulse setup and
/// sync daemon: what rvs will run for failover, for people (`rvs check-config` and the
/// like). Nothing for a configuration without failover.
pub fn describe_failover(f: &FailoverConfig) -> Vec<String> {
    let mut out = Vec::new();
    match &f.mode {
        FailoverMode::None => {}
        FailoverMode::Vrrp(v) => {
            for i in &v.instances {
                let r = &i.router;
                let primary = if i.primary_from_interface {
                    format!("{}'s address", i.interface)
                } else {
                    r.primary_ip.to_string()
                };
                let preempt = match r.preempt {
                    Preempt::Always => String::new(),
                    Preempt::Never => " nopreempt".to_string(),
                    Preempt::After(d) => {
                        format!(" preempt_delay {}", crate::emit::human_duration(d))
                    }
                };
                let unicast = if r.unicast_peers.is_empty() {
                    String::new()
                } else {
                    let p: Vec<String> = r.unicast_peers.iter().map(|p| p.to_string()).collect();
                    format!(" unicast to {}", p.join(" "))
                };
                let addrs: Vec<String> = i
                    .addresses
                    .iter()
                    .map(|a| format!("{}/{} on {}", a.addr, a.prefix, a.device))
                    .collect();
                out.push(format!(
                    "vrrp {} on {} vrid {} v{} priority {} advert {} from {primary}{preempt}{unicast}: {}",
                    i.name,
                    i.interface,
                    r.vrid,
                    r.version.number(),
                    r.priority,
                    crate::emit::human_duration(r.advert_int),
                    addrs.join(", ")
                ));
                let tracked: Vec<String> = i
                    .track_interfaces
                    .iter()
                    .chain(&i.track_scripts)
                    .zip(&r.tracks)
                    .map(|(n, t)| match t.weight {
                        0 => format!("{n} (fault)"),
                        w => format!("{n} ({w:+})"),
                    })
                    .collect();
                if !tracked.is_empty() {
                    out.push(format!("vrrp {} tracks {}", i.name, tracked.join(", ")));
                }
            }
            for g in &v.sync_groups {
                let names: Vec<&str> = g
                    .members
                    .iter()
                    .filter_map(|&m| v.instances.get(m).map(|i| i.name.as_str()))
                    .collect();
                out.push(format!("vrrp sync group {}: {}", g.name, names.join(" ")));
            }
        }
        FailoverMode::Pulse(p) => out.push(describe_pulse_line(p)),
        FailoverMode::Fos(fos) => {
            match &fos.pulse {
                Some(p) => out.push(format!("{} (failover services)", describe_pulse_line(p))),
                None => out.push("failover services without heartbeat: run here".to_string()),
            }
            for s in &fos.services {
                let cmd = |c: &Option<Vec<String>>| {
                    c.as_ref()
                        .map_or("none".to_string(), |a| format!("{:?}", a.join(" ")))
                };
                out.push(format!(
                    "fos service {} on {}/{} ({}) {} port {}: check {}; start {} stop {}",
                    s.name,
                    s.address.addr,
                    s.address.prefix,
                    s.address.label,
                    if s.protocol == rvs_core::model::Protocol::Udp {
                        "udp"
                    } else {
                        "tcp"
                    },
                    s.port,
                    crate::emit::describe_check(&s.check),
                    cmd(&s.start_cmd),
                    cmd(&s.stop_cmd)
                ));
            }
        }
    }
    if let Some(s) = &f.sync {
        out.push(format!(
            "connection sync on {} syncid {} to {}:{}{}",
            s.interface,
            s.syncid,
            s.unicast_peer.unwrap_or(s.group),
            s.port,
            s.vrrp_instance
                .as_ref()
                .map_or(String::new(), |i| format!(" following vrrp {i}"))
        ));
    }
    if let Some(c) = &f.cluster {
        out.push(format!(
            "active-active: VIP routes in table {} dev {}, convergence delay {}",
            c.route_table,
            c.route_device,
            crate::emit::human_duration(c.convergence_delay)
        ));
    }
    out
}
