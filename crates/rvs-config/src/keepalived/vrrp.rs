//! keepalived's VRRP blocks (`vrrp_instance`, `vrrp_sync_group`, `vrrp_script`) parsed into
//! data, with keepalived's defaults where they do not depend on other blocks (priority 100,
//! or 255 for `state MASTER` without a priority; advert_int 1 s; script interval 1 s, rise
//! and fall 1). Values whose default comes from `global_defs` (the `garp_*` timings and
//! the advertisement switches) stay `None` when not written; [`crate::failover`] resolves
//! them, checks names across blocks and builds what the daemon runs. Every value keeps the
//! [`Place`] it was written at, for those later checks. Nothing here sends an advertisement.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use super::syntax::{Loc, Stmt, Word};
use super::{Ctx, Scope, Use};
use crate::diag::Place;
use crate::script::Script;

/// `state` of a VRRP instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    /// `MASTER`: start as master (still subject to election).
    Master,
    /// `BACKUP`.
    Backup,
}

/// `auth_type` (VRRPv2 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `PASS`: simple password.
    Pass,
    /// `AH`: keepalived's IPsec AH (IPv4 protocol 51, HMAC-MD5-96 keyed with `auth_pass`).
    Ah,
}

/// `authentication { auth_type ...; auth_pass ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// `auth_type`.
    pub auth_type: AuthType,
    /// `auth_pass` (up to 8 characters are used).
    pub auth_pass: Option<String>,
    /// Where `auth_type` was written.
    pub place: Place,
}

/// One address of `virtual_ipaddress`: `IP[/LEN] [dev DEV] [label LABEL] [scope SCOPE] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length [32 / 128].
    pub prefix: u8,
    /// `dev` [the instance's interface].
    pub dev: Option<String>,
    /// `label`: an alias label such as `eth0:1`.
    pub label: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// Where the address was written.
    pub place: Place,
}

/// An entry of `track_interface` or `track_script`: `NAME [weight N [reverse]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// Interface or script name.
    pub name: String,
    /// `weight` [none: failure means FAULT; for scripts the script's weight].
    pub weight: Option<i32>,
    /// `reverse`.
    pub reverse: bool,
    /// Where the name was written.
    pub place: Place,
}

/// A `vrrp_instance NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// Its name.
    pub name: String,
    /// `state` [BACKUP behaviour when absent].
    pub state: Option<VrrpState>,
    /// `interface`.
    pub interface: Option<String>,
    /// `virtual_router_id` (required, 1..=255).
    pub virtual_router_id: u8,
    /// `priority` [100, or 255 for `state MASTER` without a priority, as keepalived's
    /// `vrrp_complete_instance` does] (255 = address owner).
    pub priority: u8,
    /// `advert_int` [1 s].
    pub advert_int: Duration,
    /// `virtual_ipaddress`.
    pub virtual_ipaddresses: Vec<VirtualIp>,
    /// `virtual_ipaddress_excluded`.
    pub virtual_ipaddresses_excluded: Vec<VirtualIp>,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` [0].
    pub preempt_delay: Duration,
    /// `authentication`.
    pub authentication: Option<Authentication>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer { ... }`: unicast instead of multicast adverts.
    pub unicast_peers: Vec<IpAddr>,
    /// Where each unicast peer was written (parallel to `unicast_peers`).
    pub unicast_peer_places: Vec<Place>,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `version` [global `vrrp_version`, 2].
    pub version: Option<u8>,
    /// `track_interface`.
    pub track_interfaces: Vec<Tracked>,
    /// `track_script`.
    pub track_scripts: Vec<Tracked>,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify_stop`.
    pub notify_stop: Option<Script>,
    /// `notify`: called with the new state.
    pub notify: Option<Script>,
    /// `garp_master_delay` [global `vrrp_garp_master_delay`, 5 s].
    pub garp_master_delay: Option<Duration>,
    /// `garp_master_repeat` [global `vrrp_garp_master_repeat`, 5].
    pub garp_master_repeat: Option<u32>,
    /// `garp_master_refresh` [global `vrrp_garp_master_refresh`, none; 0 means none].
    pub garp_master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat` [global `vrrp_garp_master_refresh_repeat`, 1].
    pub garp_master_refresh_repeat: Option<u32>,
    /// `garp_lower_prio_delay` [global `vrrp_garp_lower_prio_delay`, else the global
    /// `vrrp_garp_master_delay`].
    pub garp_lower_prio_delay: Option<Duration>,
    /// `garp_lower_prio_repeat` [global `vrrp_garp_lower_prio_repeat`, else the global
    /// `vrrp_garp_master_repeat`].
    pub garp_lower_prio_repeat: Option<u32>,
    /// `lower_prio_no_advert [BOOL]` [global `vrrp_lower_prio_no_advert`, false].
    pub lower_prio_no_advert: Option<bool>,
    /// `higher_prio_send_advert [BOOL]` [global `vrrp_higher_prio_send_advert`, false].
    pub higher_prio_send_advert: Option<bool>,
    /// `check_unicast_src` [global `vrrp_check_unicast_src`, false].
    pub check_unicast_src: Option<bool>,
    /// `skip_check_adv_addr [BOOL]` [global `vrrp_skip_check_adv_addr`, false].
    pub skip_check_adv_addr: Option<bool>,
    /// `strict_mode [BOOL]` [global `vrrp_strict`]: rvs acts only on its refusal of
    /// authentication.
    pub strict_mode: Option<bool>,
    /// `lvs_sync_daemon_interface IF` (deprecated form of the global `lvs_sync_daemon IF
    /// THIS_INSTANCE`).
    pub lvs_sync_daemon_interface: Option<String>,
    /// `use_vmac [NAME]`: the VRRP virtual MAC on a macvlan interface.
    pub use_vmac: Option<Option<String>>,
    /// `accept` / `no_accept`.
    pub accept: Option<bool>,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// Where each keyword's value was written (the keyword itself when it has none), by
    /// keyword; `vrrp_instance` is the instance's name.
    pub places: BTreeMap<String, Place>,
}

impl VrrpInstance {
    /// Where `key`'s value was written, else the instance's name.
    pub fn place(&self, key: &str) -> Place {
        self.places
            .get(key)
            .or_else(|| self.places.get("vrrp_instance"))
            .cloned()
            .unwrap_or_default()
    }
}

/// A `vrrp_sync_group NAME { group { ... } ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpSyncGroup {
    /// Its name.
    pub name: String,
    /// The instances that change state together.
    pub group: Vec<String>,
    /// Where each member was written (parallel to `group`).
    pub group_places: Vec<Place>,
    /// Where the group's name was written.
    pub place: Place,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify_stop`.
    pub notify_stop: Option<Script>,
    /// `notify`.
    pub notify: Option<Script>,
}

/// A `vrrp_script NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    /// Its name.
    pub name: String,
    /// `script`: the command line.
    pub script: String,
    /// `interval` [1 s].
    pub interval: Duration,
    /// `timeout` [the interval].
    pub timeout: Option<Duration>,
    /// `weight` [0]: priority change (0: failure means FAULT).
    pub weight: i32,
    /// `weight ... reverse`.
    pub reverse: bool,
    /// `rise` [1].
    pub rise: u32,
    /// `fall` [1].
    pub fall: u32,
    /// `user USER [GROUP]` to run it as [the global `script_user`].
    pub user: Option<String>,
    /// `init_fail`: start in the failed state.
    pub init_fail: bool,
    /// Where the script's name was written.
    pub place: Place,
}

/// The VRRP side of a keepalived.conf. Kept for the failover issue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vrrp {
    /// `vrrp_instance` blocks, in file order.
    pub instances: Vec<VrrpInstance>,
    /// `vrrp_sync_group` blocks.
    pub sync_groups: Vec<VrrpSyncGroup>,
    /// `vrrp_script` blocks.
    pub scripts: Vec<VrrpScript>,
}

const INSTANCE_KEPT: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "authentication",
    "unicast_src_ip",
    "unicast_peer",
    "mcast_src_ip",
    "version",
    "track_interface",
    "track_script",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "use_vmac",
    "accept",
    "no_accept",
    "dont_track_primary",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "check_unicast_src",
    "skip_check_adv_addr",
    "lvs_sync_daemon_interface",
];

const INSTANCE_IGNORED: &[&str] = &[
    "virtual_routes",
    // DPVS: the DPDK port under the KNI `interface`; rvs uses `interface` itself.
    "dpdk_interface",
    "virtual_rules",
    "vmac_xmit_base",
    "use_ipvlan",
    "debug",
    "unicast_ttl",
    "unicast_fault_no_peer",
    "native_ipv6",
    "kernel_rx_buf_size",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "old_unicast_checksum",
    "promote_secondaries",
    "linkbeat_use_polling",
    "track_src_ip",
    "down_timer_adverts",
];

pub(crate) fn instance_keys() -> Vec<(&'static str, Use)> {
    INSTANCE_KEPT
        .iter()
        .map(|&k| (k, Use::Applied))
        .chain(INSTANCE_IGNORED.iter().map(|&k| (k, Use::Ignored)))
        .chain([("smtp_alert", Use::NotActed(super::NO_MAIL))])
        .chain([("strict_mode", Use::NotActed(super::STRICT))])
        .chain(
            ["track_process", "track_file", "track_bfd"]
                .map(|k| (k, Use::NotActed(super::VRRP_TRACKS))),
        )
        .chain(["garp_interval", "gna_interval"].map(|k| (k, Use::NotActed(super::GARP_TIMING))))
        .collect()
}

pub(crate) fn sync_group_keys() -> Vec<(&'static str, Use)> {
    let kept = [
        "group",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify",
    ];
    let ignored = [
        "global_tracking",
        "sync_group_tracking_weight",
        "track_interface",
        "track_script",
        "track_process",
        "track_file",
        "track_bfd",
        "notify_priority_changes",
    ];
    kept.iter()
        .map(|&k| (k, Use::Applied))
        .chain(ignored.iter().map(|&k| (k, Use::Ignored)))
        .chain([("smtp_alert", Use::NotActed(super::NO_MAIL))])
        .collect()
}

pub(crate) fn script_keys() -> Vec<(&'static str, Use)> {
    [
        "script",
        "interval",
        "timeout",
        "weight",
        "rise",
        "fall",
        "init_fail",
    ]
    .iter()
    .map(|&k| (k, Use::Applied))
    .chain([("user", Use::Applied)])
    .collect()
}

/// A root-level VRRP block.
pub(crate) fn root(cx: &mut Ctx, s: &Stmt, vrrp: &mut Vrrp) {
    let key = s.key().text.clone();
    let name = match s.args() {
        [n] => n.clone(),
        [] => {
            cx.error(
                &s.key().loc.after(),
                format!("`{key}` needs a name"),
                Some(format!("`{key} NAME {{`")),
            );
            return;
        }
        [_, extra @ ..] => {
            cx.error(
                &extra[0].loc,
                format!("`{key}` takes one name"),
                Some("`{`".to_string()),
            );
            return;
        }
    };
    let Some(body) = cx.need_block(s) else {
        return;
    };
    match key.as_str() {
        "vrrp_instance" => {
            if let Some(i) = instance(cx, &name, body, &vrrp.scripts) {
                if let Some(first) = vrrp.instances.iter().find(|x| x.name == i.name) {
                    cx.error(
                        &name.loc,
                        format!("vrrp_instance `{}` is defined twice", first.name),
                        Some("a unique name for each instance".to_string()),
                    );
                } else {
                    vrrp.instances.push(i);
                }
            }
        }
        "vrrp_sync_group" => {
            if let Some(g) = sync_group(cx, &name, body) {
                vrrp.sync_groups.push(g);
            }
        }
        _ => {
            if let Some(sc) = script(cx, &name, body) {
                vrrp.scripts.push(sc);
            }
        }
    }
}

/// `scripts`: the `vrrp_script` blocks read so far (keepalived looks a tracked script up
/// while it reads the instance).
fn instance(
    cx: &mut Ctx,
    name: &Word,
    body: &[Stmt],
    scripts: &[VrrpScript],
) -> Option<VrrpInstance> {
    let errors_before = cx.error_count();
    let mut i = VrrpInstance {
        name: name.text.clone(),
        state: None,
        interface: None,
        virtual_router_id: 0,
        priority: 100,
        advert_int: Duration::from_secs(1),
        virtual_ipaddresses: Vec::new(),
        virtual_ipaddresses_excluded: Vec::new(),
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        authentication: None,
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        unicast_peer_places: Vec::new(),
        mcast_src_ip: None,
        version: None,
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        garp_lower_prio_delay: None,
        garp_lower_prio_repeat: None,
        lower_prio_no_advert: None,
        higher_prio_send_advert: None,
        check_unicast_src: None,
        skip_check_adv_addr: None,
        strict_mode: None,
        lvs_sync_daemon_interface: None,
        use_vmac: None,
        accept: None,
        dont_track_primary: false,
        places: BTreeMap::new(),
    };
    i.places
        .insert("vrrp_instance".to_string(), cx.place(&name.loc));
    let mut priority_written = false;
    let mut vrid_seen = false;
    let mut vrid_written = false;
    let mut seen: HashMap<String, Loc> = HashMap::new();
    for st in body {
        match cx.check_key(Scope::VrrpInstance, st) {
            Some(Use::Applied) => {}
            // Warned as not acted on, but its refusal of authentication is applied.
            Some(Use::NotActed(_)) if st.key().text == "strict_mode" => {}
            _ => continue,
        }
        let key = st.key().text.as_str();
        let at = st.args().first().map_or(&st.key().loc, |w| &w.loc);
        i.places.insert(key.to_string(), cx.place(at));
        let block_key = matches!(
            key,
            "virtual_ipaddress"
                | "virtual_ipaddress_excluded"
                | "authentication"
                | "unicast_peer"
                | "track_interface"
                | "track_script"
        );
        if !block_key {
            cx.no_block(st);
            cx.warn_duplicate(&mut seen, st);
        }
        match key {
            "state" => {
                if let Some(w) = cx.one(st, "MASTER or BACKUP") {
                    match w.text.as_str() {
                        "MASTER" => i.state = Some(VrrpState::Master),
                        "BACKUP" => i.state = Some(VrrpState::Backup),
                        _ => cx.error(
                            &w.loc,
                            format!("unknown state `{}`", w.text),
                            Some("`MASTER` or `BACKUP`".to_string()),
                        ),
                    }
                }
            }
            "interface" => i.interface = cx.one(st, "an interface").map(|w| w.text.clone()),
            "virtual_router_id" => {
                vrid_written = true;
                if let Some(w) = cx.one(st, "a router id in 1..=255")
                    && let Some(n) = cx.int_of(w, "virtual_router_id", 1, 255)
                {
                    i.virtual_router_id = n as u8;
                    vrid_seen = true;
                }
            }
            // keepalived vrrp_parser.c vrrp_prio_handler: a priority outside 1..=255 (or
            // not a number, e.g. a `$NAME` left undefined) is logged ("Priority not valid!
            // ... Using default 100") and the priority is 100 - set, so not derived from
            // `state` below.
            "priority" => {
                priority_written = true;
                if let Some(w) = cx.one(st, "a priority in 1..=255") {
                    match w.text.parse::<u8>() {
                        Ok(n) if n >= 1 => i.priority = n,
                        _ => {
                            let why = if w.text.starts_with('$') {
                                " (no parameter of that name is defined for this \
                                 configuration id, so it stays as written)"
                            } else {
                                ""
                            };
                            cx.warn(
                                &w.loc,
                                format!(
                                    "`{}` is not a priority in 1..=255{why}: keepalived uses \
                                     100 (\"Priority not valid!\") and so does rvs",
                                    w.text
                                ),
                            );
                            i.priority = 100;
                        }
                    }
                }
            }
            "advert_int" => {
                if let Some(t) = cx.timer(st) {
                    if t.is_zero() {
                        cx.error(
                            &st.args()[0].loc,
                            "`advert_int` cannot be 0",
                            Some("seconds > 0, e.g. `1`".to_string()),
                        );
                    } else {
                        i.advert_int = t;
                    }
                }
            }
            "virtual_ipaddress" => {
                if let Some(b) = cx.need_block(st) {
                    i.virtual_ipaddresses = b.iter().filter_map(|e| vip(cx, e)).collect();
                }
            }
            "virtual_ipaddress_excluded" => {
                if let Some(b) = cx.need_block(st) {
                    i.virtual_ipaddresses_excluded = b.iter().filter_map(|e| vip(cx, e)).collect();
                }
            }
            "nopreempt" => i.nopreempt = true,
            "preempt" => i.nopreempt = false,
            "preempt_delay" => {
                if let Some(t) = cx.timer(st) {
                    i.preempt_delay = t;
                }
            }
            "authentication" => {
                if let Some(b) = cx.need_block(st) {
                    i.authentication = authentication(cx, st, b);
                }
            }
            "unicast_src_ip" => {
                if let Some(w) = cx.one(st, "an IP address") {
                    i.unicast_src_ip = sockaddr(cx, w, "source address");
                }
            }
            "mcast_src_ip" => {
                if let Some(w) = cx.one(st, "an IP address") {
                    i.mcast_src_ip = sockaddr(cx, w, "source address");
                }
            }
            "unicast_peer" => {
                if let Some(b) = cx.need_block(st) {
                    for e in b {
                        // `IP [min_ttl N] [max_ttl N]`: the TTL bounds are not read.
                        if let Some(a) = sockaddr(cx, e.key(), "unicast peer address") {
                            i.unicast_peers.push(a);
                            i.unicast_peer_places.push(cx.place(&e.key().loc));
                        }
                        if let Some(w) = e.args().first() {
                            cx.warn(
                                &w.loc,
                                format!("unicast peer option `{}` is ignored by rvs", w.text),
                            );
                        }
                    }
                }
            }
            "version" => {
                if let Some(w) = cx.one(st, "2 or 3")
                    && let Some(n) = cx.int_of(w, "version", 2, 3)
                {
                    i.version = Some(n as u8);
                }
            }
            "track_interface" => {
                if let Some(b) = cx.need_block(st) {
                    i.track_interfaces = b.iter().filter_map(|e| tracked(cx, e)).collect();
                }
            }
            "track_script" => {
                if let Some(b) = cx.need_block(st) {
                    i.track_scripts = Vec::new();
                    for e in b {
                        if let Some(t) = tracked(cx, e) {
                            let at = &e.words[0].loc;
                            track_script_entry(
                                cx,
                                &name.text,
                                t,
                                at,
                                scripts,
                                &mut i.track_scripts,
                            );
                        }
                    }
                }
            }
            "notify_master" => i.notify_master = super::notify_script(cx, st),
            "notify_backup" => i.notify_backup = super::notify_script(cx, st),
            "notify_fault" => i.notify_fault = super::notify_script(cx, st),
            "notify_stop" => i.notify_stop = super::notify_script(cx, st),
            "notify" => i.notify = super::notify_script(cx, st),
            "garp_master_delay" => i.garp_master_delay = cx.timer(st),
            "garp_master_repeat" => {
                if let Some(n) = cx.u32_of(st, u32::MAX) {
                    i.garp_master_repeat = Some(n.max(1));
                }
            }
            "garp_master_refresh" => i.garp_master_refresh = cx.timer(st),
            "garp_master_refresh_repeat" => {
                if let Some(n) = cx.u32_of(st, u32::MAX) {
                    i.garp_master_refresh_repeat = Some(n.max(1));
                }
            }
            "garp_lower_prio_delay" => i.garp_lower_prio_delay = cx.timer(st),
            "garp_lower_prio_repeat" => i.garp_lower_prio_repeat = cx.u32_of(st, u32::MAX),
            "lower_prio_no_advert" => i.lower_prio_no_advert = Some(cx.flag(st)),
            "higher_prio_send_advert" => i.higher_prio_send_advert = Some(cx.flag(st)),
            "check_unicast_src" => i.check_unicast_src = Some(cx.flag(st)),
            "skip_check_adv_addr" => i.skip_check_adv_addr = Some(cx.flag(st)),
            // keepalived vrrp_parser.c vrrp_strict_mode_handler: no argument means true.
            "strict_mode" => i.strict_mode = Some(cx.flag(st)),
            "lvs_sync_daemon_interface" => {
                i.lvs_sync_daemon_interface = cx.one(st, "an interface").map(|w| w.text.clone());
            }
            "use_vmac" => {
                i.use_vmac = Some(st.args().first().map(|w| w.text.clone()));
            }
            "accept" => i.accept = Some(true),
            "no_accept" => i.accept = Some(false),
            "dont_track_primary" => i.dont_track_primary = true,
            _ => {}
        }
    }
    // keepalived vrrp.c, vrrp_complete_instance: "If no priority has been set, derive it
    // from the initial state" (MASTER: the address owner's 255).
    if !priority_written && i.state == Some(VrrpState::Master) {
        i.priority = 255;
    }
    if !vrid_seen && !vrid_written {
        cx.error(
            &name.loc,
            format!("vrrp_instance `{}` has no `virtual_router_id`", name.text),
            Some("`virtual_router_id N` (1..=255) in the block".to_string()),
        );
    }
    (cx.error_count() == errors_before).then_some(i)
}

fn authentication(cx: &mut Ctx, st: &Stmt, body: &[Stmt]) -> Option<Authentication> {
    let mut auth_type = None;
    let mut place = cx.place(&st.key().loc);
    let mut pass = None;
    for e in body {
        if cx.check_key(Scope::Authentication, e).is_none() {
            continue;
        }
        cx.no_block(e);
        match e.key().text.as_str() {
            "auth_type" => {
                if let Some(w) = cx.one(e, "PASS or AH") {
                    place = cx.place(&w.loc);
                    match w.text.as_str() {
                        "PASS" => auth_type = Some(AuthType::Pass),
                        "AH" => auth_type = Some(AuthType::Ah),
                        _ => cx.error(
                            &w.loc,
                            format!("unknown auth_type `{}`", w.text),
                            Some("`PASS` or `AH`".to_string()),
                        ),
                    }
                }
            }
            _ => {
                if let Some(w) = cx.one(e, "a password") {
                    if w.text.chars().count() > 8 {
                        cx.warn(
                            &w.loc,
                            "`auth_pass` is longer than 8 characters; only the first 8 are used",
                        );
                    }
                    pass = Some(w.text.chars().take(8).collect());
                }
            }
        }
    }
    match auth_type {
        Some(auth_type) => Some(Authentication {
            auth_type,
            auth_pass: pass,
            place,
        }),
        None => {
            cx.error(
                &st.key().loc,
                "`authentication` has no `auth_type`",
                Some("`auth_type PASS` or `auth_type AH` in the block".to_string()),
            );
            None
        }
    }
}

/// `IP[/LEN] [dev DEV] [label LABEL] [scope SCOPE] [brd IP] ...`.
fn vip(cx: &mut Ctx, e: &Stmt) -> Option<VirtualIp> {
    let w = &e.words;
    let (a, len) = match w[0].text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w[0].text.as_str(), None),
    };
    let Ok(addr) = a.parse::<IpAddr>() else {
        // keepalived vrrp_ipaddress.c alloc_ipaddress(): "VRRP parsed invalid IP %s.
        // skipping IP..." - the entry is dropped, the instance runs.
        cx.warn(
            &w[0].loc,
            format!(
                "`{}` is not an IP address: keepalived skips this address (\"VRRP parsed \
                 invalid IP\") and so does rvs",
                w[0].text
            ),
        );
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                cx.error(
                    &w[0].loc,
                    format!("`{}` has a bad prefix length", w[0].text),
                    Some(format!("a prefix length in 0..={max}")),
                );
                return None;
            }
        },
    };
    let mut v = VirtualIp {
        addr,
        prefix,
        dev: None,
        label: None,
        scope: None,
        place: cx.place(&w[0].loc),
    };
    let mut i = 1;
    while i < w.len() {
        let opt = w[i].text.as_str();
        let takes_value = matches!(
            opt,
            "dev"
                | "label"
                | "scope"
                | "brd"
                | "broadcast"
                | "peer"
                | "preferred_lft"
                | "track_group"
        );
        if takes_value {
            let Some(val) = w.get(i + 1) else {
                cx.error(
                    &w[i].loc.after(),
                    format!("`{opt}` needs a value"),
                    Some("a value".to_string()),
                );
                return None;
            };
            match opt {
                "dev" => v.dev = Some(val.text.clone()),
                "label" => v.label = Some(val.text.clone()),
                "scope" => v.scope = Some(val.text.clone()),
                _ => cx.warn(
                    &w[i].loc,
                    format!("virtual address option `{opt}` is ignored by rvs"),
                ),
            }
            i += 2;
            continue;
        }
        match opt {
            "home" | "-nodad" | "nodad" | "noprefixroute" | "autojoin" | "no_track" => cx.warn(
                &w[i].loc,
                format!("virtual address option `{opt}` is ignored by rvs"),
            ),
            _ => {
                cx.error(
                    &w[i].loc,
                    format!("unknown virtual address option `{opt}`"),
                    Some("`dev DEV`, `label LABEL`, `scope SCOPE`, `brd IP` ...".to_string()),
                );
                return None;
            }
        }
        i += 1;
    }
    Some(v)
}

/// One `track_script` entry, kept when it names a script defined before the instance and
/// not yet tracked by it. keepalived vrrp_track.c `alloc_track_script`: the script is looked
/// up by name while the instance is read (`find_script_by_name`); not found, "(VI) track
/// script NAME not found, ignoring..."; tracked twice, "(VI) duplicate track_script NAME -
/// ignoring". The entry is dropped and the instance runs without it.
fn track_script_entry(
    cx: &mut Ctx,
    instance: &str,
    t: Tracked,
    loc: &Loc,
    scripts: &[VrrpScript],
    kept: &mut Vec<Tracked>,
) {
    if !scripts.iter().any(|s| s.name == t.name) {
        cx.warn(
            loc,
            format!(
                "vrrp_instance `{instance}` tracks `{}`, which names no vrrp_script defined \
                 before it: keepalived ignores this entry (\"track script {} not found\") and \
                 so does rvs - the instance runs without it",
                t.name, t.name
            ),
        );
    } else if kept.iter().any(|k| k.name == t.name) {
        cx.warn(
            loc,
            format!(
                "vrrp_instance `{instance}` tracks `{}` twice: keepalived ignores the second \
                 entry and so does rvs",
                t.name
            ),
        );
    } else {
        kept.push(t);
    }
}

/// An address read as keepalived's `inet_stosockaddr` (lib/utils.c) reads it for
/// `mcast_src_ip`, `unicast_src_ip` (vrrp_parser.c vrrp_srcip_handler) and a `unicast_peer`
/// entry (vrrp_data.c alloc_vrrp_unicast_peer): cut at the first `-` or `/` (so
/// `10.1.1.1/24` is 10.1.1.1, as written when a parameter holds the VIP with its prefix);
/// one it cannot read is logged ("malformed ... Skipping...") and the line ignored.
fn sockaddr(cx: &mut Ctx, w: &Word, what: &str) -> Option<IpAddr> {
    let cut = w
        .text
        .find(['-', '/'])
        .map_or(w.text.as_str(), |i| &w.text[..i]);
    match cut.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.warn(
                &w.loc,
                format!(
                    "`{}` is not an IP address: keepalived ignores this {what} (\"malformed\") \
                     and so does rvs (rvs does not resolve host names)",
                    w.text
                ),
            );
            None
        }
    }
}

/// `NAME [weight N [reverse]]`.
fn tracked(cx: &mut Ctx, e: &Stmt) -> Option<Tracked> {
    let w = &e.words;
    let mut t = Tracked {
        name: w[0].text.clone(),
        weight: None,
        reverse: false,
        place: cx.place(&w[0].loc),
    };
    match &w[1..] {
        [] => {}
        [k, n] if k.text == "weight" => t.weight = Some(cx.int_of(n, "weight", -254, 254)? as i32),
        [k, n, r] if k.text == "weight" && r.text == "reverse" => {
            t.weight = Some(cx.int_of(n, "weight", -254, 254)? as i32);
            t.reverse = true;
        }
        _ => {
            cx.error(
                &w[1].loc,
                format!("unexpected `{}` after `{}`", w[1].text, w[0].text),
                Some("`weight N [reverse]` or the end of the line".to_string()),
            );
            return None;
        }
    }
    Some(t)
}

fn sync_group(cx: &mut Ctx, name: &Word, body: &[Stmt]) -> Option<VrrpSyncGroup> {
    let errors_before = cx.error_count();
    let mut g = VrrpSyncGroup {
        name: name.text.clone(),
        group: Vec::new(),
        group_places: Vec::new(),
        place: cx.place(&name.loc),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
    };
    for st in body {
        match cx.check_key(Scope::VrrpSyncGroup, st) {
            Some(Use::Applied) => {}
            _ => continue,
        }
        let key = st.key().text.as_str();
        if key != "group" {
            cx.no_block(st);
        }
        match key {
            "group" => {
                if let Some(b) = cx.need_block(st) {
                    for e in b {
                        for w in &e.words {
                            g.group.push(w.text.clone());
                            g.group_places.push(cx.place(&w.loc));
                        }
                    }
                }
            }
            "notify_master" => g.notify_master = super::notify_script(cx, st),
            "notify_backup" => g.notify_backup = super::notify_script(cx, st),
            "notify_fault" => g.notify_fault = super::notify_script(cx, st),
            "notify_stop" => g.notify_stop = super::notify_script(cx, st),
            _ => g.notify = super::notify_script(cx, st),
        }
    }
    if g.group.is_empty() && cx.error_count() == errors_before {
        cx.warn(
            &name.loc,
            format!(
                "vrrp_sync_group `{}` has no `group {{ ... }}`: it syncs nothing",
                name.text
            ),
        );
    }
    (cx.error_count() == errors_before).then_some(g)
}

fn script(cx: &mut Ctx, name: &Word, body: &[Stmt]) -> Option<VrrpScript> {
    let errors_before = cx.error_count();
    let mut sc = VrrpScript {
        name: name.text.clone(),
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        reverse: false,
        rise: 1,
        fall: 1,
        user: None,
        init_fail: false,
        place: cx.place(&name.loc),
    };
    let mut has_script = false;
    for st in body {
        if cx.check_key(Scope::VrrpScript, st).is_none() {
            continue;
        }
        cx.no_block(st);
        match st.key().text.as_str() {
            // vrrp_parser.c vrrp_vscript_script_handler() re-reads the line (lib/parser.c
            // alloc_strvec_quoted_escaped()): with no command it sets none and the line is
            // ignored (the script is then dropped for want of one); when an unterminated
            // string took it, keepalived 2.2 dereferences the NULL it gets and crashes:
            // refused.
            "script" if st.args().is_empty() && st.key().cut => cx.error(
                &st.key().loc.after(),
                "`script` lost its command to an unterminated string: keepalived crashes \
                 reading this line",
                Some("the command in a closed string".to_string()),
            ),
            "script" if cx.no_value_ignored(st) => {}
            "script" => {
                if let Some(s) = cx.string(st, "a command") {
                    sc.script = s;
                    has_script = true;
                }
            }
            "interval" => {
                if let Some(t) = cx.timer(st) {
                    sc.interval = t.max(Duration::from_secs(1));
                }
            }
            "timeout" => sc.timeout = cx.timer(st),
            "weight" => match st.args() {
                [w] => sc.weight = cx.int_of(w, "weight", -253, 253).unwrap_or(0) as i32,
                [w, r] if r.text == "reverse" => {
                    sc.weight = cx.int_of(w, "weight", -253, 253).unwrap_or(0) as i32;
                    sc.reverse = true;
                }
                _ => cx.error(
                    &st.line_loc(),
                    "`weight` takes a number and an optional `reverse`",
                    Some("`weight N [reverse]` with N in -253..=253".to_string()),
                ),
            },
            "rise" => sc.rise = cx.u32_of(st, u32::MAX).unwrap_or(1).max(1),
            "fall" => sc.fall = cx.u32_of(st, u32::MAX).unwrap_or(1).max(1),
            "user" => sc.user = cx.string(st, "a user [group]"),
            _ => sc.init_fail = true,
        }
    }
    if !has_script && cx.error_count() == errors_before {
        // keepalived drops such a script with a log line; so does rvs.
        cx.warn(
            &name.loc,
            format!(
                "vrrp_script `{}` has no `script`; dropped, as keepalived does",
                name.text
            ),
        );
        return None;
    }
    (cx.error_count() == errors_before).then_some(sc)
}
