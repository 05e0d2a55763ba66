//! The failover tables of the native TOML: `[[vrrp_instance]]`, `[[vrrp_sync_group]]`,
//! `[[vrrp_script]]` (keepalived's blocks, with keepalived's key names), `[pulse]` (lvs.cf's
//! heartbeat keys), `[[failover_service]]` (lvs.cf's `failover` blocks, run as Piranha's
//! `service = fos` runs them) and `[sync]` (the connection-synchronisation daemon).
//!
//! The VRRP tables are read into keepalived's parsed blocks and mapped by
//! [`crate::failover::failover_from_keepalived`], so that a TOML instance means exactly what
//! the same keepalived.conf instance means (defaults, rounding, the checks across blocks).
//! Writing is the inverse: every [`FailoverConfig`] is written so that it reads back equal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use rvs_core::vrrp::{Auth, GarpConfig, InitialState, Preempt, RouterConfig, Track, Version};
use serde::Deserialize;
use toml::Spanned;

use super::{Cx, Int, RawCheck, RawVip, Secs, Span, Str, quote, secs};
use crate::diag::Place;
use crate::failover::{
    AddressSetup, FailoverConfig, FailoverMode, FosServiceSetup, FosSetup, PulseSetup, SyncSetup,
    VrrpInstanceSetup, VrrpSetup,
};
use crate::keepalived::{
    AuthType, Authentication, GlobalDefs, KeepalivedConf, Tracked, VirtualIp, Vrrp, VrrpInstance,
    VrrpScript, VrrpState, VrrpSyncGroup,
};
use crate::lvs::Vip;
use crate::script::{Script, ScriptPolicy};

type Value = Spanned<toml::Value>;

/// `[[vrrp_instance]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    name: Str,
    state: Option<Str>,
    interface: Option<Str>,
    virtual_router_id: Int,
    priority: Option<Int>,
    advert_int: Option<Secs>,
    version: Option<Int>,
    nopreempt: Option<bool>,
    strict_mode: Option<bool>,
    preempt_delay: Option<Secs>,
    accept: Option<bool>,
    authentication: Option<Spanned<RawAuth>>,
    unicast_src_ip: Option<Str>,
    #[serde(default)]
    unicast_peer: Vec<Str>,
    check_unicast_src: Option<bool>,
    #[serde(default)]
    virtual_ipaddress: Vec<Value>,
    #[serde(default)]
    virtual_ipaddress_excluded: Vec<Value>,
    dont_track_primary: Option<bool>,
    #[serde(default)]
    track_interface: Vec<Value>,
    #[serde(default)]
    track_script: Vec<Value>,
    notify_master: Option<Value>,
    notify_backup: Option<Value>,
    notify_fault: Option<Value>,
    notify_stop: Option<Value>,
    notify: Option<Value>,
    garp_master_delay: Option<Secs>,
    garp_master_repeat: Option<Int>,
    garp_master_refresh: Option<Secs>,
    garp_master_refresh_repeat: Option<Int>,
    garp_lower_prio_delay: Option<Secs>,
    garp_lower_prio_repeat: Option<Int>,
    lower_prio_no_advert: Option<bool>,
    higher_prio_send_advert: Option<bool>,
    skip_check_adv_addr: Option<bool>,
    use_vmac: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    auth_type: Str,
    auth_pass: Option<Str>,
}

/// `[[vrrp_sync_group]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSyncGroup {
    name: Str,
    group: Vec<Str>,
    notify_master: Option<Value>,
    notify_backup: Option<Value>,
    notify_fault: Option<Value>,
    notify_stop: Option<Value>,
    notify: Option<Value>,
}

/// `[[vrrp_script]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScript {
    name: Str,
    script: Str,
    interval: Option<Secs>,
    timeout: Option<Secs>,
    weight: Option<Int>,
    reverse: Option<bool>,
    rise: Option<Int>,
    fall: Option<Int>,
    user: Option<Str>,
    init_fail: Option<bool>,
}

/// `[scripts]`: keepalived's `script_user` and `enable_script_security`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScriptPolicy {
    script_user: Option<Str>,
    enable_script_security: Option<bool>,
}

/// `[pulse]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPulse {
    primary: Str,
    backup: Option<Str>,
    primary_private: Option<Str>,
    backup_private: Option<Str>,
    heartbeat_port: Option<Int>,
    keepalive: Option<Secs>,
    deadtime: Option<Secs>,
    backup_active: Option<bool>,
    monitor_links: Option<bool>,
    active_cmd: Option<Str>,
    inactive_cmd: Option<Str>,
}

/// `[[failover_service]]`: an lvs.cf `failover` block as fos runs it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFosService {
    pub(super) name: Str,
    address: Str,
    device: Str,
    label: Option<Str>,
    port: Option<Int>,
    protocol: Option<Str>,
    start_cmd: Option<Spanned<Vec<Str>>>,
    stop_cmd: Option<Spanned<Vec<Str>>>,
    check: Spanned<RawCheck>,
}

/// `[sync]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    interface: Str,
    syncid: Option<Int>,
    group: Option<Str>,
    port: Option<Int>,
    ttl: Option<Int>,
    maxlen: Option<Int>,
    vrrp_instance: Option<Str>,
    unicast_peer: Option<Str>,
}

/// The failover tables of a file.
pub(super) struct RawFailover<'a> {
    pub(super) instances: &'a [Spanned<RawInstance>],
    pub(super) sync_groups: &'a [Spanned<RawSyncGroup>],
    pub(super) scripts: &'a [Spanned<RawScript>],
    pub(super) pulse: Option<&'a Spanned<RawPulse>>,
    pub(super) fos: &'a [Spanned<RawFosService>],
    pub(super) sync: Option<&'a Spanned<RawSync>>,
    pub(super) scripts_policy: Option<&'a RawScriptPolicy>,
}

impl Cx<'_> {
    fn place(&self, span: Span) -> Place {
        Place::new(self.text, self.path, span)
    }

    fn string(&self, v: &Option<Str>) -> Option<String> {
        v.as_ref().map(|s| s.get_ref().clone())
    }

    fn table_str<'t>(
        &mut self,
        t: &'t toml::Table,
        key: &str,
        at: &Span,
        what: &str,
    ) -> Option<&'t str> {
        match t.get(key) {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => {
                self.error(
                    at.clone(),
                    format!("`{key}` of {what} is not a string"),
                    "a string in double quotes",
                );
                None
            }
        }
    }

    fn unknown_keys(&mut self, t: &toml::Table, known: &[&str], at: &Span, what: &str) {
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
                self.error(
                    at.clone(),
                    format!("unknown key `{k}` in {what}"),
                    super::one_of(&names),
                );
            }
        }
    }

    /// `"IP[/LEN]"` or `{ address = "IP[/LEN]", dev, label, scope }`.
    fn virtual_ip(&mut self, v: &Value) -> Option<VirtualIp> {
        let at = v.span();
        let (text, dev, label, scope) = match v.get_ref() {
            toml::Value::String(s) => (s.clone(), None, None, None),
            toml::Value::Table(t) => {
                let what = "a virtual address";
                self.unknown_keys(t, &["address", "dev", "label", "scope"], &at, what);
                let Some(a) = self.table_str(t, "address", &at, what) else {
                    self.error(
                        at,
                        "a virtual address without `address`",
                        "`address = \"IP[/LEN]\"`",
                    );
                    return None;
                };
                let s = |cx: &mut Cx<'_>, k| cx.table_str(t, k, &at, what).map(str::to_string);
                (
                    a.to_string(),
                    s(self, "dev"),
                    s(self, "label"),
                    s(self, "scope"),
                )
            }
            _ => {
                self.error(
                    at,
                    "a virtual address is a string or a table",
                    "`\"IP[/LEN]\"` or `{ address = \"IP[/LEN]\", dev = \"DEV\" }`",
                );
                return None;
            }
        };
        let (addr, prefix) = self.prefix(&Spanned::new(at.clone(), text))?;
        Some(VirtualIp {
            addr,
            prefix,
            dev,
            label,
            scope,
            place: self.place(at),
        })
    }

    /// `"NAME"` or `{ name = "NAME", weight = N, reverse = BOOL }`.
    fn tracked(&mut self, v: &Value) -> Option<Tracked> {
        let at = v.span();
        let place = self.place(at.clone());
        match v.get_ref() {
            toml::Value::String(s) => Some(Tracked {
                name: s.clone(),
                weight: None,
                reverse: false,
                place,
            }),
            toml::Value::Table(t) => {
                let what = "a tracked object";
                self.unknown_keys(t, &["name", "weight", "reverse"], &at, what);
                let name = self.table_str(t, "name", &at, what)?.to_string();
                let weight = match t.get("weight") {
                    None => None,
                    Some(toml::Value::Integer(w)) if (-254..=254).contains(w) => Some(*w as i32),
                    Some(_) => {
                        self.error(
                            at,
                            "`weight` of a tracked object is out of range",
                            "an integer in -254..=254",
                        );
                        return None;
                    }
                };
                let reverse = matches!(t.get("reverse"), Some(toml::Value::Boolean(true)));
                Some(Tracked {
                    name,
                    weight,
                    reverse,
                    place,
                })
            }
            _ => {
                self.error(
                    at,
                    "a tracked object is a string or a table",
                    "`\"NAME\"` or `{ name = \"NAME\", weight = N }`",
                );
                None
            }
        }
    }
}

fn instance(cx: &mut Cx<'_>, s: &Spanned<RawInstance>) -> Option<VrrpInstance> {
    let before = cx.errors.len();
    let r = s.get_ref();
    let mut places = BTreeMap::new();
    places.insert("vrrp_instance".to_string(), cx.place(r.name.span()));
    let mut put = |k: &str, span: Span, cx: &Cx<'_>| {
        places.insert(k.to_string(), cx.place(span));
    };
    let state = match &r.state {
        None => None,
        Some(v) => {
            put("state", v.span(), cx);
            cx.choice(
                &Spanned::new(v.span(), v.get_ref().to_ascii_uppercase()),
                "state",
                &[("MASTER", VrrpState::Master), ("BACKUP", VrrpState::Backup)],
            )
        }
    };
    put("virtual_router_id", r.virtual_router_id.span(), cx);
    let vrid = cx.int(&r.virtual_router_id, 1, 255, "virtual_router_id");
    let priority = match &r.priority {
        Some(p) => {
            put("priority", p.span(), cx);
            cx.int(p, 1, 255, "priority").map(|n| n as u8)
        }
        None => Some(100),
    };
    let advert_int = match &r.advert_int {
        Some(v) => {
            put("advert_int", v.span(), cx);
            cx.positive_seconds(v, "advert_int")
        }
        None => Some(Duration::from_secs(1)),
    };
    let version = match &r.version {
        Some(v) => {
            put("version", v.span(), cx);
            cx.int(v, 2, 3, "version").map(|n| Some(n as u8))
        }
        None => Some(None),
    };
    let preempt_delay = match &r.preempt_delay {
        Some(v) => {
            put("preempt_delay", v.span(), cx);
            cx.seconds(v, "preempt_delay")
        }
        None => Some(Duration::ZERO),
    };
    let authentication = match &r.authentication {
        None => None,
        Some(a) => {
            let ar = a.get_ref();
            let t = cx.choice(
                &Spanned::new(
                    ar.auth_type.span(),
                    ar.auth_type.get_ref().to_ascii_uppercase(),
                ),
                "auth_type",
                &[("PASS", AuthType::Pass), ("AH", AuthType::Ah)],
            );
            t.map(|auth_type| Authentication {
                auth_type,
                auth_pass: cx.string(&ar.auth_pass),
                place: cx.place(ar.auth_type.span()),
            })
        }
    };
    let unicast_src_ip = match &r.unicast_src_ip {
        Some(v) => {
            put("unicast_src_ip", v.span(), cx);
            cx.ip(v)
        }
        None => None,
    };
    let mut unicast_peers = Vec::new();
    let mut unicast_peer_places = Vec::new();
    for p in &r.unicast_peer {
        if let Some(a) = cx.ip(p) {
            unicast_peers.push(a);
            unicast_peer_places.push(cx.place(p.span()));
        }
    }
    let virtual_ipaddresses = r
        .virtual_ipaddress
        .iter()
        .filter_map(|v| cx.virtual_ip(v))
        .collect();
    let virtual_ipaddresses_excluded = r
        .virtual_ipaddress_excluded
        .iter()
        .filter_map(|v| cx.virtual_ip(v))
        .collect();
    let track_interfaces = r
        .track_interface
        .iter()
        .filter_map(|v| cx.tracked(v))
        .collect();
    let track_scripts = r
        .track_script
        .iter()
        .filter_map(|v| cx.tracked(v))
        .collect();
    let mut timer = |v: &Option<Secs>, k: &str, cx: &mut Cx<'_>| {
        v.as_ref().and_then(|v| {
            places.insert(k.to_string(), cx.place(v.span()));
            cx.seconds(v, k)
        })
    };
    let garp_master_delay = timer(&r.garp_master_delay, "garp_master_delay", cx);
    let garp_master_refresh = timer(&r.garp_master_refresh, "garp_master_refresh", cx);
    let garp_lower_prio_delay = timer(&r.garp_lower_prio_delay, "garp_lower_prio_delay", cx);
    let count = |v: &Option<Int>, k: &str, cx: &mut Cx<'_>| v.as_ref().and_then(|v| cx.u32(v, k));
    let use_vmac = match r.use_vmac.as_ref() {
        None => None,
        Some(v) => match v.get_ref() {
            toml::Value::Boolean(false) => None,
            toml::Value::Boolean(true) => Some(None),
            toml::Value::String(n) => Some(Some(n.clone())),
            _ => {
                cx.error(
                    v.span(),
                    "`use_vmac` is `true` or the macvlan's name",
                    "`use_vmac = true` or `use_vmac = \"NAME\"`",
                );
                None
            }
        },
    };
    let i = VrrpInstance {
        name: r.name.get_ref().clone(),
        state,
        interface: cx.string(&r.interface),
        virtual_router_id: vrid.unwrap_or(1) as u8,
        priority: priority.unwrap_or(100),
        advert_int: advert_int.unwrap_or(Duration::from_secs(1)),
        virtual_ipaddresses,
        virtual_ipaddresses_excluded,
        nopreempt: r.nopreempt.unwrap_or(false),
        strict_mode: r.strict_mode,
        preempt_delay: preempt_delay.unwrap_or_default(),
        authentication,
        unicast_src_ip,
        unicast_peers,
        unicast_peer_places,
        mcast_src_ip: None,
        version: version.flatten(),
        track_interfaces,
        track_scripts,
        notify_master: notify_script(cx, &r.notify_master, "notify_master"),
        notify_backup: notify_script(cx, &r.notify_backup, "notify_backup"),
        notify_fault: notify_script(cx, &r.notify_fault, "notify_fault"),
        notify_stop: notify_script(cx, &r.notify_stop, "notify_stop"),
        notify: notify_script(cx, &r.notify, "notify"),
        garp_master_delay,
        garp_master_repeat: count(&r.garp_master_repeat, "garp_master_repeat", cx)
            .map(|n| n.max(1)),
        garp_master_refresh,
        garp_master_refresh_repeat: count(
            &r.garp_master_refresh_repeat,
            "garp_master_refresh_repeat",
            cx,
        )
        .map(|n| n.max(1)),
        garp_lower_prio_delay,
        garp_lower_prio_repeat: count(&r.garp_lower_prio_repeat, "garp_lower_prio_repeat", cx),
        lower_prio_no_advert: r.lower_prio_no_advert,
        higher_prio_send_advert: r.higher_prio_send_advert,
        check_unicast_src: r.check_unicast_src,
        skip_check_adv_addr: r.skip_check_adv_addr,
        lvs_sync_daemon_interface: None,
        use_vmac,
        accept: r.accept,
        dont_track_primary: r.dont_track_primary.unwrap_or(false),
        places,
    };
    (cx.errors.len() == before).then_some(i)
}

fn script(cx: &mut Cx<'_>, s: &Spanned<RawScript>) -> Option<VrrpScript> {
    let before = cx.errors.len();
    let r = s.get_ref();
    let interval = match &r.interval {
        Some(v) => cx.positive_seconds(v, "interval"),
        None => Some(Duration::from_secs(1)),
    };
    let timeout = match &r.timeout {
        Some(v) => cx.positive_seconds(v, "timeout"),
        None => None,
    };
    let weight = match &r.weight {
        Some(w) => cx.int(w, -253, 253, "weight").map(|n| n as i32),
        None => Some(0),
    };
    let rise = match &r.rise {
        Some(v) => cx.at_least_one(v, "rise"),
        None => Some(1),
    };
    let fall = match &r.fall {
        Some(v) => cx.at_least_one(v, "fall"),
        None => Some(1),
    };
    let sc = VrrpScript {
        name: r.name.get_ref().clone(),
        script: r.script.get_ref().clone(),
        interval: interval.unwrap_or(Duration::from_secs(1)),
        timeout,
        weight: weight.unwrap_or(0),
        reverse: r.reverse.unwrap_or(false),
        rise: rise.unwrap_or(1),
        fall: fall.unwrap_or(1),
        user: cx.string(&r.user),
        init_fail: r.init_fail.unwrap_or(false),
        place: cx.place(r.name.span()),
    };
    (cx.errors.len() == before).then_some(sc)
}

fn sync_group(cx: &mut Cx<'_>, s: &Spanned<RawSyncGroup>) -> VrrpSyncGroup {
    let r = s.get_ref();
    VrrpSyncGroup {
        name: r.name.get_ref().clone(),
        group: r.group.iter().map(|g| g.get_ref().clone()).collect(),
        group_places: r.group.iter().map(|g| cx.place(g.span())).collect(),
        place: cx.place(r.name.span()),
        notify_master: notify_script(cx, &r.notify_master, "notify_master"),
        notify_backup: notify_script(cx, &r.notify_backup, "notify_backup"),
        notify_fault: notify_script(cx, &r.notify_fault, "notify_fault"),
        notify_stop: notify_script(cx, &r.notify_stop, "notify_stop"),
        notify: notify_script(cx, &r.notify, "notify"),
    }
}

fn pulse(cx: &mut Cx<'_>, p: &Spanned<RawPulse>) -> Option<PulseSetup> {
    let before = cx.errors.len();
    let r = p.get_ref();
    let primary = cx.ip(&r.primary);
    let opt_ip = |v: &Option<Str>, cx: &mut Cx<'_>| v.as_ref().and_then(|v| cx.ip(v));
    let backup = opt_ip(&r.backup, cx);
    let primary_private = opt_ip(&r.primary_private, cx);
    let backup_private = opt_ip(&r.backup_private, cx);
    let port = r.heartbeat_port.as_ref().map_or(Some(539), |v| cx.port(v));
    let keepalive = r
        .keepalive
        .as_ref()
        .map_or(Some(Duration::from_secs(2)), |v| {
            cx.positive_seconds(v, "keepalive")
        });
    let deadtime = r
        .deadtime
        .as_ref()
        .map_or(Some(Duration::from_secs(5)), |v| {
            cx.positive_seconds(v, "deadtime")
        });
    let backup_active = r.backup_active.unwrap_or(false);
    if let (Some(p), Some(b)) = (primary, backup)
        && p.is_ipv4() != b.is_ipv4()
        && let Some(v) = &r.backup
    {
        cx.error(
            v.span(),
            format!("`backup` {b} is not of the primary's address family"),
            "the backup's address in the primary's family",
        );
    }
    if backup_active && backup.is_none() {
        cx.error(
            r.primary.span(),
            "`backup_active = true` needs `backup`",
            "`backup = \"IP\"` (the backup director's public address), or no `backup_active`",
        );
    }
    if cx.errors.len() != before {
        return None;
    }
    Some(PulseSetup {
        primary: primary?,
        backup,
        primary_private,
        backup_private,
        port: port?,
        keepalive: keepalive?,
        deadtime: deadtime?,
        backup_active,
        monitor_links: r.monitor_links.unwrap_or(false),
        active_cmd: cx.string(&r.active_cmd),
        inactive_cmd: cx.string(&r.inactive_cmd),
    })
}

/// One `[[failover_service]]`: what lvs.cf's `failover` block with `active = 1` says
/// (crate::lvs `fos_block`), each value written out.
fn fos_service(cx: &mut Cx<'_>, s: &Spanned<RawFosService>) -> Option<FosServiceSetup> {
    let before = cx.errors.len();
    let r = s.get_ref();
    if r.name.get_ref().is_empty() {
        cx.error(
            r.name.span(),
            "the failover service's `name` is empty",
            "a name, as lvs.cf's `failover NAME`",
        );
    }
    let address = super::vip(
        cx,
        &RawVip {
            address: r.address.clone(),
            device: r.device.clone(),
            label: r.label.clone(),
        },
    );
    let port = r.port.as_ref().map_or(Some(80), |v| cx.port(v));
    // fos.c runs nanny on TCP or UDP (lvsconfig.c's `protocol = tcp | udp`).
    let protocol = match &r.protocol {
        None => Some(rvs_core::model::Protocol::Tcp),
        Some(p) => cx.choice(
            p,
            "failover service protocol",
            &[
                ("tcp", rvs_core::model::Protocol::Tcp),
                ("udp", rvs_core::model::Protocol::Udp),
            ],
        ),
    };
    let argv = |v: &Option<Spanned<Vec<Str>>>, key: &str, cx: &mut Cx<'_>| {
        let v = v.as_ref()?;
        if v.get_ref().is_empty() {
            cx.error(
                v.span(),
                format!("`{key}` is empty"),
                "the program and its arguments, e.g. `[\"/sbin/service\", \"httpd\", \"start\"]`",
            );
        }
        Some(v.get_ref().iter().map(|a| a.get_ref().clone()).collect())
    };
    let start_cmd = argv(&r.start_cmd, "start_cmd", cx);
    let stop_cmd = argv(&r.stop_cmd, "stop_cmd", cx);
    let udp = protocol == Some(rvs_core::model::Protocol::Udp);
    let check = super::check(cx, &r.check, udp);
    if cx.errors.len() != before {
        return None;
    }
    Some(FosServiceSetup {
        name: r.name.get_ref().clone(),
        address: address?,
        port: port?,
        protocol: protocol?,
        check: check?,
        start_cmd,
        stop_cmd,
    })
}

fn sync(cx: &mut Cx<'_>, s: &Spanned<RawSync>, vrrp: Option<&VrrpSetup>) -> Option<SyncSetup> {
    let before = cx.errors.len();
    let r = s.get_ref();
    let interface = r.interface.get_ref().clone();
    if interface.is_empty() {
        cx.error(
            r.interface.span(),
            "`interface` is empty",
            "the interface sync messages use",
        );
    }
    let instance = r.vrrp_instance.as_ref().map(|n| n.get_ref().clone());
    let mut vrid = None;
    if let Some(n) = &r.vrrp_instance {
        match vrrp.and_then(|v| v.instances.iter().find(|i| &i.name == n.get_ref())) {
            Some(i) => vrid = Some(i.router.vrid),
            None => cx.error(
                n.span(),
                format!(
                    "`vrrp_instance` names an unknown vrrp_instance `{}`",
                    n.get_ref()
                ),
                "the name of a `[[vrrp_instance]]`",
            ),
        }
    }
    let syncid = match &r.syncid {
        Some(v) => cx.int(v, 0, 255, "syncid").map(|n| n as u8),
        None => Some(vrid.unwrap_or(0)),
    };
    let mut out = SyncSetup::new(interface, syncid.unwrap_or(0));
    out.vrrp_instance = instance;
    if let Some(g) = &r.group {
        match cx.ip(g) {
            Some(a) if a.is_multicast() => out.group = a,
            Some(_) => cx.error(
                g.span(),
                "`group` is not a multicast address",
                "a multicast group (a unicast peer is `unicast_peer`)",
            ),
            None => {}
        }
    }
    if let Some(v) = &r.port {
        out.port = cx.port(v).unwrap_or(out.port);
    }
    if let Some(v) = &r.ttl {
        out.ttl = cx.int(v, 1, 255, "ttl").map_or(out.ttl, |n| n as u8);
    }
    if let Some(v) = &r.maxlen {
        out.maxlen = cx
            .int(v, 1, 65_535, "maxlen")
            .map_or(out.maxlen, |n| n as u16);
    }
    if let Some(p) = &r.unicast_peer {
        out.unicast_peer = cx.ip(p);
    }
    (cx.errors.len() == before).then_some(out)
}

/// The failover the tables say; errors go to `cx`, the mapping's warnings into the result.
pub(super) fn parse(cx: &mut Cx<'_>, raw: &RawFailover<'_>) -> FailoverConfig {
    let before = cx.errors.len();
    let vrrp = Vrrp {
        instances: raw
            .instances
            .iter()
            .filter_map(|i| instance(cx, i))
            .collect(),
        sync_groups: raw.sync_groups.iter().map(|g| sync_group(cx, g)).collect(),
        scripts: raw.scripts.iter().filter_map(|s| script(cx, s)).collect(),
    };
    if let (Some(p), Some(i)) = (raw.pulse, raw.instances.first()) {
        cx.error(
            p.get_ref().primary.span(),
            format!(
                "`[pulse]` and `[[vrrp_instance]]` (`{}`): a director fails over by one of them",
                i.get_ref().name.get_ref()
            ),
            "either `[pulse]` or `[[vrrp_instance]]` tables",
        );
    }
    if let (Some(f), Some(i)) = (raw.fos.first(), raw.instances.first()) {
        cx.error(
            f.get_ref().name.span(),
            format!(
                "`[[failover_service]]` and `[[vrrp_instance]]` (`{}`): failover services \
                 move by pulse's heartbeat (`[pulse]`), not by VRRP",
                i.get_ref().name.get_ref()
            ),
            "either `[[failover_service]]` (with `[pulse]`) or `[[vrrp_instance]]` tables",
        );
    }
    let mut out = FailoverConfig::default();
    if cx.errors.len() != before {
        return out;
    }
    if !raw.fos.is_empty() {
        let services: Vec<FosServiceSetup> =
            raw.fos.iter().filter_map(|s| fos_service(cx, s)).collect();
        let pulse = raw.pulse.and_then(|p| pulse(cx, p));
        if cx.errors.len() == before {
            out.mode = FailoverMode::Fos(FosSetup { pulse, services });
        }
    } else if let Some(p) = raw.pulse {
        if let Some(p) = pulse(cx, p) {
            out.mode = FailoverMode::Pulse(p);
        }
    } else if !vrrp.instances.is_empty() || !vrrp.scripts.is_empty() {
        let kc = KeepalivedConf {
            config: Default::default(),
            global: GlobalDefs::default(),
            checkers: Vec::new(),
            health: Default::default(),
            vrrp,
            warnings: Vec::new(),
            fwmark_places: Vec::new(),
        };
        match crate::failover::failover_from_keepalived(&kc) {
            Ok(f) => out = f,
            Err(errs) => cx.errors.extend(errs),
        }
    }
    if let Some(s) = raw.sync {
        let v = match &out.mode {
            FailoverMode::Vrrp(v) => Some(v),
            _ => None,
        };
        out.sync = sync(cx, s, v);
    }
    if let Some(p) = raw.scripts_policy {
        out.scripts = ScriptPolicy {
            script_user: cx.string(&p.script_user),
            enable_script_security: p.enable_script_security.unwrap_or(false),
        };
    }
    out
}

/// A notify script: `"COMMAND"` or `{ script = "COMMAND", user = "USER [GROUP]" }`.
fn notify_script(cx: &mut Cx<'_>, v: &Option<Value>, key: &str) -> Option<Script> {
    let v = v.as_ref()?;
    match v.get_ref() {
        toml::Value::String(c) => Some(Script::new(c.clone())),
        toml::Value::Table(t)
            if t.keys().all(|k| k == "script" || k == "user")
                && matches!(t.get("script"), Some(toml::Value::String(_)))
                && t.get("user").is_none_or(toml::Value::is_str) =>
        {
            Some(Script {
                command: t.get("script").and_then(toml::Value::as_str)?.to_string(),
                user: t
                    .get("user")
                    .and_then(toml::Value::as_str)
                    .map(str::to_string),
            })
        }
        _ => {
            cx.error(
                v.span(),
                format!("`{key}` is a command line, or a table with `script` and `user`"),
                format!("`{key} = \"/path/script args\"` or `{key} = {{ script = \"...\", user = \"nobody\" }}`"),
            );
            None
        }
    }
}

/// A notify script as [`notify_script`] reads it.
fn notify_value(s: &Script) -> String {
    match &s.user {
        None => quote(&s.command),
        Some(u) => format!("{{ script = {}, user = {} }}", quote(&s.command), quote(u)),
    }
}

/// `[scripts]`, when the policy is not the default.
pub(super) fn write_script_policy(out: &mut String, p: &ScriptPolicy) {
    if *p == ScriptPolicy::default() {
        return;
    }
    out.push_str("\n[scripts]\n");
    if let Some(u) = &p.script_user {
        let _ = writeln!(out, "script_user = {}", quote(u));
    }
    if p.enable_script_security {
        out.push_str("enable_script_security = true\n");
    }
}

/// The failover services' floating addresses as VIPs ([`FosSetup::addresses`]; none for
/// another failover).
pub fn fos_vips(f: &FailoverConfig) -> Vec<Vip> {
    match &f.mode {
        FailoverMode::Fos(fos) => fos.addresses(),
        _ => Vec::new(),
    }
}

/// The addresses of every VRRP instance as VIPs (device: `dev`, else the instance's
/// interface; label: the device unless given), as [`crate::keepalived_vips`] reads them
/// from a keepalived.conf.
pub fn vrrp_vips(f: &FailoverConfig) -> Vec<Vip> {
    let FailoverMode::Vrrp(v) = &f.mode else {
        return Vec::new();
    };
    v.instances
        .iter()
        .flat_map(|i| &i.addresses)
        .map(|a| Vip {
            addr: a.addr,
            prefix: a.prefix,
            device: a.device.clone(),
            label: a.label.clone().unwrap_or_else(|| a.device.clone()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Writing.

fn address(a: &AddressSetup, interface: &str) -> String {
    let max = if a.addr.is_ipv4() { 32 } else { 128 };
    let text = if a.prefix == max {
        a.addr.to_string()
    } else {
        format!("{}/{}", a.addr, a.prefix)
    };
    if a.device == interface && a.label.is_none() && a.scope.is_none() {
        return quote(&text);
    }
    let mut parts = vec![format!("address = {}", quote(&text))];
    if a.device != interface {
        parts.push(format!("dev = {}", quote(&a.device)));
    }
    if let Some(l) = &a.label {
        parts.push(format!("label = {}", quote(l)));
    }
    if let Some(s) = &a.scope {
        parts.push(format!("scope = {}", quote(s)));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn list(items: Vec<String>) -> String {
    if items.len() <= 1 {
        format!("[{}]", items.join(", "))
    } else {
        format!("[\n  {},\n]", items.join(",\n  "))
    }
}

/// Whether the instance tracks its own interface as keepalived does unless told not to:
/// first, weight 0 (down means fault).
pub(crate) fn tracks_primary(i: &VrrpInstanceSetup) -> bool {
    i.track_interfaces.first() == Some(&i.interface)
        && i.router.tracks.first()
            == Some(&Track {
                weight: 0,
                reverse: false,
                initially_up: true,
            })
}

/// The authentication type word (`PASS` or `AH`) and its password as written (the trailing
/// zero padding removed), Some(None) without authentication, or None when the password
/// holds bytes a configuration file cannot carry.
pub(crate) fn auth_pass(auth: &Auth) -> Option<Option<(&'static str, String)>> {
    let (word, data) = match auth {
        Auth::None => return Some(None),
        Auth::Pass(data) => ("PASS", data),
        Auth::Ah(data) => ("AH", data),
    };
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let b = &data[..end];
    if b.is_empty() || b.contains(&0) {
        return None;
    }
    std::str::from_utf8(b)
        .ok()
        .map(|s| Some((word, s.to_string())))
}

/// A gratuitous ARP setting's value: a time or a count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GarpValue {
    /// `garp_master_delay`, `garp_master_refresh`, `garp_lower_prio_delay`.
    Time(Duration),
    /// `garp_master_repeat`, `garp_master_refresh_repeat`, `garp_lower_prio_repeat`.
    Count(u32),
}

/// The gratuitous ARP settings of `g` that differ from keepalived's defaults
/// (`garp_master_refresh` whenever set), by keyword, in the order the writers write them.
pub(crate) fn garp_settings(g: &GarpConfig) -> impl Iterator<Item = (&'static str, GarpValue)> {
    let d = GarpConfig::default();
    let time = |v: Duration, d: Duration| (v != d).then_some(GarpValue::Time(v));
    let count = |v: u32, d: u32| (v != d).then_some(GarpValue::Count(v));
    [
        ("garp_master_delay", time(g.master_delay, d.master_delay)),
        (
            "garp_master_repeat",
            count(g.master_repeat, d.master_repeat),
        ),
        ("garp_master_refresh", g.master_refresh.map(GarpValue::Time)),
        (
            "garp_master_refresh_repeat",
            count(g.master_refresh_repeat, d.master_refresh_repeat),
        ),
        (
            "garp_lower_prio_delay",
            time(g.lower_prio_delay, d.lower_prio_delay),
        ),
        (
            "garp_lower_prio_repeat",
            count(g.lower_prio_repeat, d.lower_prio_repeat),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
}

/// The advertisement switches that are on in `r`, by keyword.
pub(crate) fn advert_switches(r: &RouterConfig) -> impl Iterator<Item = &'static str> {
    [
        ("lower_prio_no_advert", r.lower_prio_no_advert),
        ("higher_prio_send_advert", r.higher_prio_send_advert),
        ("skip_check_adv_addr", r.skip_check_adv_addr),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
}

/// The family's default VRRP version (keepalived: 3 for IPv6, else 2).
pub(crate) fn default_version(primary: IpAddr) -> Version {
    if primary.is_ipv6() {
        Version::V3
    } else {
        Version::V2
    }
}

/// Write the failover tables of `f` (nothing for no failover).
pub(super) fn write(out: &mut String, f: &FailoverConfig) {
    write_script_policy(out, &f.scripts);
    match &f.mode {
        FailoverMode::None => {}
        FailoverMode::Fos(fos) => {
            if let Some(p) = &fos.pulse {
                write_pulse(out, p);
            }
            for s in &fos.services {
                write_fos_service(out, s);
            }
        }
        FailoverMode::Pulse(p) => write_pulse(out, p),
        FailoverMode::Vrrp(v) => {
            for sc in &v.scripts {
                out.push_str("\n[[vrrp_script]]\n");
                let _ = writeln!(
                    out,
                    "name = {}\nscript = {}",
                    quote(&sc.name),
                    quote(&sc.script)
                );
                let _ = writeln!(out, "interval = {}", secs(sc.interval));
                if let Some(t) = sc.timeout {
                    let _ = writeln!(out, "timeout = {}", secs(t));
                }
                let _ = writeln!(out, "weight = {}", sc.weight);
                if sc.reverse {
                    out.push_str("reverse = true\n");
                }
                let _ = writeln!(out, "rise = {}\nfall = {}", sc.rise, sc.fall);
                if let Some(u) = &sc.user {
                    let _ = writeln!(out, "user = {}", quote(u));
                }
                if sc.init_fail {
                    out.push_str("init_fail = true\n");
                }
            }
            for i in &v.instances {
                write_instance(out, i, v);
            }
            for g in &v.sync_groups {
                out.push_str("\n[[vrrp_sync_group]]\n");
                let _ = writeln!(out, "name = {}", quote(&g.name));
                let names: Vec<String> = g
                    .members
                    .iter()
                    .filter_map(|&m| v.instances.get(m).map(|i| quote(&i.name)))
                    .collect();
                let _ = writeln!(out, "group = [{}]", names.join(", "));
                for (k, c) in g.notify_scripts() {
                    if let Some(c) = c {
                        let _ = writeln!(out, "{k} = {}", notify_value(c));
                    }
                }
            }
        }
    }
    if let Some(s) = &f.sync {
        out.push_str("\n[sync]\n");
        let _ = writeln!(
            out,
            "interface = {}\nsyncid = {}",
            quote(&s.interface),
            s.syncid
        );
        if let Some(i) = &s.vrrp_instance {
            let _ = writeln!(out, "vrrp_instance = {}", quote(i));
        }
        let _ = writeln!(
            out,
            "group = {}\nport = {}\nttl = {}\nmaxlen = {}",
            quote(&s.group.to_string()),
            s.port,
            s.ttl,
            s.maxlen
        );
        if let Some(p) = s.unicast_peer {
            let _ = writeln!(out, "unicast_peer = {}", quote(&p.to_string()));
        }
    }
}

/// `[pulse]`.
fn write_pulse(out: &mut String, p: &PulseSetup) {
    out.push_str("\n[pulse]\n");
    let _ = writeln!(out, "primary = {}", quote(&p.primary.to_string()));
    for (k, v) in [
        ("backup", p.backup),
        ("primary_private", p.primary_private),
        ("backup_private", p.backup_private),
    ] {
        if let Some(a) = v {
            let _ = writeln!(out, "{k} = {}", quote(&a.to_string()));
        }
    }
    let _ = writeln!(
        out,
        "heartbeat_port = {}\nkeepalive = {}\ndeadtime = {}\nbackup_active = {}",
        p.port,
        secs(p.keepalive),
        secs(p.deadtime),
        p.backup_active
    );
    if p.monitor_links {
        out.push_str("monitor_links = true\n");
    }
    for (k, v) in [
        ("active_cmd", &p.active_cmd),
        ("inactive_cmd", &p.inactive_cmd),
    ] {
        if let Some(c) = v {
            let _ = writeln!(out, "{k} = {}", quote(c));
        }
    }
}

/// One `[[failover_service]]` with its `[failover_service.check]`.
fn write_fos_service(out: &mut String, s: &FosServiceSetup) {
    out.push_str("\n[[failover_service]]\n");
    let _ = writeln!(out, "name = {}", quote(&s.name));
    super::write_vip(out, &s.address);
    let udp = s.protocol == rvs_core::model::Protocol::Udp;
    let _ = writeln!(
        out,
        "port = {}\nprotocol = \"{}\"",
        s.port,
        if udp { "udp" } else { "tcp" }
    );
    for (k, c) in [("start_cmd", &s.start_cmd), ("stop_cmd", &s.stop_cmd)] {
        if let Some(argv) = c {
            let words: Vec<String> = argv.iter().map(|a| quote(a)).collect();
            let _ = writeln!(out, "{k} = [{}]", words.join(", "));
        }
    }
    out.push_str("\n[failover_service.check]\n");
    super::write_check(out, "failover_service.check", &s.check, udp);
}

fn write_instance(out: &mut String, i: &VrrpInstanceSetup, v: &VrrpSetup) {
    let r = &i.router;
    out.push_str("\n[[vrrp_instance]]\n");
    let _ = writeln!(out, "name = {}", quote(&i.name));
    let state = match r.initial_state {
        InitialState::Master => "MASTER",
        InitialState::Backup => "BACKUP",
    };
    let _ = writeln!(
        out,
        "state = \"{state}\"\ninterface = {}",
        quote(&i.interface)
    );
    let _ = writeln!(
        out,
        "virtual_router_id = {}\npriority = {}\nadvert_int = {}",
        r.vrid,
        r.priority,
        secs(r.advert_int)
    );
    let like = i.addresses.first().map(|a| a.addr).unwrap_or(r.primary_ip);
    if r.version != default_version(like) {
        let _ = writeln!(out, "version = {}", r.version.number());
    }
    match r.preempt {
        Preempt::Always => {}
        Preempt::Never => out.push_str("nopreempt = true\n"),
        Preempt::After(d) => {
            let _ = writeln!(out, "preempt_delay = {}", secs(d));
        }
    }
    if !r.accept {
        out.push_str("accept = false\n");
    }
    match auth_pass(&r.auth) {
        Some(Some((word, p))) => {
            let _ = writeln!(
                out,
                "authentication = {{ auth_type = \"{word}\", auth_pass = {} }}",
                quote(&p)
            );
        }
        Some(None) => {}
        // Bytes TOML could carry only escaped: the engine's eight bytes, as the file
        // would give them.
        None => {
            let (word, s): (&str, String) = match r.auth {
                Auth::Pass(d) => ("PASS", d.iter().map(|&b| char::from(b)).collect()),
                Auth::Ah(d) => ("AH", d.iter().map(|&b| char::from(b)).collect()),
                Auth::None => ("PASS", String::new()),
            };
            let _ = writeln!(
                out,
                "authentication = {{ auth_type = \"{word}\", auth_pass = {} }}",
                quote(&s)
            );
        }
    }
    if !i.primary_from_interface {
        let _ = writeln!(out, "unicast_src_ip = {}", quote(&r.primary_ip.to_string()));
    }
    if !r.unicast_peers.is_empty() {
        let p: Vec<String> = r
            .unicast_peers
            .iter()
            .map(|a| quote(&a.to_string()))
            .collect();
        let _ = writeln!(out, "unicast_peer = {}", list(p));
    }
    if r.check_unicast_src {
        out.push_str("check_unicast_src = true\n");
    }
    let a: Vec<String> = i
        .addresses
        .iter()
        .map(|a| address(a, &i.interface))
        .collect();
    if !a.is_empty() {
        let _ = writeln!(out, "virtual_ipaddress = {}", list(a));
    }
    let x: Vec<String> = i
        .excluded_addresses
        .iter()
        .map(|a| address(a, &i.interface))
        .collect();
    if !x.is_empty() {
        let _ = writeln!(out, "virtual_ipaddress_excluded = {}", list(x));
    }
    let n_if = i.track_interfaces.len();
    let implicit = tracks_primary(i);
    if !implicit {
        out.push_str("dont_track_primary = true\n");
    }
    let ifs: Vec<String> = i
        .track_interfaces
        .iter()
        .zip(&r.tracks)
        .skip(usize::from(implicit))
        .map(|(n, t)| {
            if t.weight == 0 && !t.reverse {
                quote(n)
            } else {
                let rev = if t.reverse { ", reverse = true" } else { "" };
                format!("{{ name = {}, weight = {}{rev} }}", quote(n), t.weight)
            }
        })
        .collect();
    if !ifs.is_empty() {
        let _ = writeln!(out, "track_interface = {}", list(ifs));
    }
    let scs: Vec<String> = i
        .track_scripts
        .iter()
        .zip(r.tracks.iter().skip(n_if))
        .map(|(n, t)| {
            let rev = if t.reverse { ", reverse = true" } else { "" };
            format!("{{ name = {}, weight = {}{rev} }}", quote(n), t.weight)
        })
        .collect();
    if !scs.is_empty() {
        let _ = writeln!(out, "track_script = {}", list(scs));
    }
    let _ = v;
    for (k, c) in i.notify_scripts() {
        if let Some(c) = c {
            let _ = writeln!(out, "{k} = {}", notify_value(c));
        }
    }
    for (k, v) in garp_settings(&r.garp) {
        let _ = match v {
            GarpValue::Time(t) => writeln!(out, "{k} = {}", secs(t)),
            GarpValue::Count(n) => writeln!(out, "{k} = {n}"),
        };
    }
    for k in advert_switches(r) {
        let _ = writeln!(out, "{k} = true");
    }
    if i.use_vmac {
        match &i.vmac_name {
            Some(n) => {
                let _ = writeln!(out, "use_vmac = {}", quote(n));
            }
            None => out.push_str("use_vmac = true\n"),
        }
    }
}
