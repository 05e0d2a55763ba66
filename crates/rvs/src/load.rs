//! Loading a director's configuration from any of the formats operators bring, and turning
//! it into the daemon's plan (which interfaces to attach to, which addresses to own).
//!
//! Formats: Piranha's `lvs.cf`, keepalived.conf (its LVS, checker and VRRP parts), ipvsadm
//! rules (`ipvsadm -S` output) and rvs's native TOML. The format is detected from the file
//! name and content ([`detect`]) unless given. Everything is parsed into the one
//! [`rvs_core::model::Config`], plus the addresses the director owns: VIPs (with their
//! device when the format names one) and the NAT router's floating IP, the health
//! monitoring, and the failover setup (VRRP from keepalived.conf, pulse from lvs.cf).

use rvs_config::{Diagnostic, FailoverConfig};
use rvs_core::model::{Config, Prefix, ServiceKey};
use std::io;
use std::net::IpAddr;
use std::path::Path;

/// A configuration format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Piranha's `lvs.cf`.
    LvsCf,
    /// keepalived.conf.
    Keepalived,
    /// ipvsadm rules (`ipvsadm -S` / `-R`).
    Ipvsadm,
    /// rvs's native TOML.
    Toml,
}

impl Format {
    /// The format of a `--format` argument.
    pub fn from_name(s: &str) -> Option<Format> {
        match s {
            "lvs.cf" | "lvscf" | "piranha" => Some(Format::LvsCf),
            "keepalived" | "keepalived.conf" => Some(Format::Keepalived),
            "ipvsadm" | "rules" => Some(Format::Ipvsadm),
            "toml" | "native" => Some(Format::Toml),
            _ => None,
        }
    }

    /// Its name as `--format` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::LvsCf => "lvs.cf",
            Format::Keepalived => "keepalived",
            Format::Ipvsadm => "ipvsadm",
            Format::Toml => "toml",
        }
    }
}

/// An address the director owns (answers ARP/ND for, announces on takeover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The address.
    pub addr: IpAddr,
    /// The interface the format names for it, if any (else: the one on whose link it is).
    pub device: Option<String>,
}

/// A loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The format it was read as.
    pub format: Format,
    /// The forwarding configuration (validated).
    pub config: Config,
    /// Addresses the director owns: VIPs and the NAT router's floating IP.
    pub owned: Vec<Owned>,
    /// The VIPs with their devices, prefixes and labels, as far as the format says (for
    /// conversions).
    pub vips: Vec<rvs_config::Vip>,
    /// The NAT router's floating IP, if the format names one.
    pub nat_router: Option<rvs_config::Vip>,
    /// Health monitoring (nanny's keys, keepalived's checkers, `[service.health]`; none for
    /// ipvsadm rules).
    pub health: rvs_core::health::HealthConfig,
    /// Keys rvs does not act on yet, with their locations.
    pub warnings: Vec<Diagnostic>,
    /// How this director fails over (keepalived: VRRP; lvs.cf: pulse; TOML: either;
    /// ipvsadm rules: none) and the connection-synchronisation daemon. Its warnings are
    /// already in [`Self::warnings`].
    pub failover: FailoverConfig,
    /// Names of services and real servers, and inactive real servers (lvs.cf, TOML).
    pub names: rvs_config::Names,
    /// What was read but no format rvs writes carries (lvs.cf's inactive virtuals): named
    /// as losses by every conversion.
    pub uncarried: Vec<String>,
    /// Where each fwmark service's mark is written, for the warning when no rule gives
    /// packets that mark ([`crate::marks`]).
    pub fwmark_places: Vec<(u32, rvs_config::Place)>,
}

/// Guess the format from the file name, then from the first meaningful line.
pub fn detect(path: &Path, text: &str) -> Format {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".toml") {
        return Format::Toml;
    }
    if name.contains("keepalived") {
        return Format::Keepalived;
    }
    if name.ends_with(".cf") {
        return Format::LvsCf;
    }
    if name.ends_with(".rules") || name.contains("ipvsadm") {
        return Format::Ipvsadm;
    }
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let first = l.split_whitespace().next().unwrap_or("");
        if first.starts_with('-') || first == "ipvsadm" {
            return Format::Ipvsadm;
        }
        // keepalived's parameter definitions, conditional lines and sequences.
        if first.starts_with('$')
            || first.starts_with('@')
            || first.starts_with("~SEQ")
            || first.starts_with("~LST")
        {
            return Format::Keepalived;
        }
        if matches!(
            first,
            "global_defs"
                | "virtual_server"
                | "virtual_server_group"
                | "vrrp_instance"
                | "vrrp_sync_group"
                | "vrrp_script"
                | "include"
        ) {
            return Format::Keepalived;
        }
        if l.starts_with('[') {
            return Format::Toml;
        }
        if l.contains('=') || first == "virtual" {
            return Format::LvsCf;
        }
    }
    Format::LvsCf
}

/// The file's text. The original tools read bytes: bytes that are not UTF-8 are read as
/// U+FFFD (and warned where they matter, [`rvs_config::diag::non_utf8`]).
fn read(path: &Path) -> Result<String, Vec<Diagnostic>> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| {
            vec![Diagnostic::new(
                "",
                &path.display().to_string(),
                0..0,
                rvs_config::Severity::Error,
                format!("cannot read the file: {e}"),
                None,
            )]
        })
}

/// keepalived's default configuration id (`-i`), which selects its `@ID` lines: the host
/// name up to its first dot (keepalived core/main.c: `config_id` from `uname`'s nodename).
pub fn default_config_id() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let short = name.trim().split('.').next().unwrap_or("").to_string();
    (!short.is_empty()).then_some(short)
}

/// How keepalived.conf is read: configuration id `config_id` (None: the host's short name,
/// [`default_config_id`]), `${_RANDOM}` seeded from the clock as keepalived seeds it.
pub fn keepalived_options(config_id: Option<&str>) -> rvs_config::ParseOptions {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rvs_config::ParseOptions {
        config_id: config_id.map(str::to_string).or_else(default_config_id),
        random_seed: seed,
    }
}

/// Read and parse `path` in `format` (detected when None): keepalived.conf with the host's
/// configuration id; host and service names in an ipvsadm rules file looked up in the
/// system, as `ipvsadm -R` looks them up ([`crate::names::SystemNames`]).
pub fn load(path: &Path, format: Option<Format>) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(
        path,
        format,
        &keepalived_options(None),
        &crate::names::SystemNames,
    )
}

/// [`load`] with keepalived's configuration id and random seed given, and the names of an
/// ipvsadm rules file looked up in `names`.
pub fn load_with(
    path: &Path,
    format: Option<Format>,
    keepalived: &rvs_config::ParseOptions,
    names: &dyn rvs_config::ipvsadm::Names,
) -> Result<Loaded, Vec<Diagnostic>> {
    let text = read(path)?;
    let format = format.unwrap_or_else(|| detect(path, &text));
    let mut loaded = load_from(path, &text, format, true, keepalived, names)?;
    let bang = format == Format::Keepalived;
    if let Some(w) = rvs_config::diag::non_utf8(&text, &path.display().to_string(), bang) {
        loaded.warnings.insert(0, w);
    }
    Ok(loaded)
}

/// Parse `text` as a file named `path` in `format`, without reading anything (a
/// keepalived.conf's `include`s are not followed).
pub fn load_text(path: &Path, text: &str, format: Format) -> Result<Loaded, Vec<Diagnostic>> {
    load_from(
        path,
        text,
        format,
        false,
        &keepalived_options(None),
        &rvs_config::ipvsadm::NoNames,
    )
}

fn load_from(
    path: &Path,
    text: &str,
    format: Format,
    file: bool,
    keepalived: &rvs_config::ParseOptions,
    ipvsadm_names: &dyn rvs_config::ipvsadm::Names,
) -> Result<Loaded, Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let mut names = rvs_config::Names::default();
    let mut uncarried = Vec::new();
    let mut fwmark_places = Vec::new();
    let (config, mut warnings, vips, nat_router, health, mut failover) = match format {
        Format::LvsCf => {
            let cf = rvs_config::parse_lvs_cf(text, &shown)?;
            let failover = rvs_config::failover_from_lvs_cf(&cf)?;
            names = rvs_config::lvs_cf_names(&cf);
            for v in cf.virtuals.iter().filter(|v| !v.active) {
                uncarried.push(format!(
                    "inactive virtual `{}` (active = 0): rvs keeps only the virtuals it runs",
                    v.name
                ));
            }
            // The `failover` blocks fos does not run (all of them with `service = lvs`).
            let run: Vec<&str> = cf.fos_services.iter().map(|s| s.name.as_str()).collect();
            for b in cf
                .failover_services
                .iter()
                .filter(|b| !run.contains(&b.name.as_str()))
            {
                uncarried.push(format!(
                    "failover `{}`, which {}: rvs keeps only the failover services it runs",
                    b.name,
                    if cf.failover.service == rvs_config::ServiceType::Fos {
                        "fos skips (inactive or without an address)"
                    } else {
                        "`service = lvs` leaves unused"
                    }
                ));
            }
            fwmark_places.clone_from(&cf.fwmark_places);
            // service = fos: no virtual service; the director owns (while active) each
            // failover service's floating address, on the device its `address` names.
            let vips = match &failover.mode {
                rvs_config::FailoverMode::Fos(fos) => fos.addresses(),
                _ => cf.vips,
            };
            (
                cf.config,
                cf.warnings,
                vips,
                cf.nat_router,
                cf.health,
                failover,
            )
        }
        Format::Keepalived => {
            let kc = if file {
                rvs_config::load_keepalived_with(path, keepalived)?
            } else {
                rvs_config::parse_keepalived_with(text, &shown, keepalived)?
            };
            let failover = rvs_config::failover_from_keepalived(&kc)?;
            // VRRP's virtual addresses (VIPs and the NAT gateway) carry their devices.
            let vips = rvs_config::keepalived_vips(&kc);
            fwmark_places.clone_from(&kc.fwmark_places);
            (kc.config, kc.warnings, vips, None, kc.health, failover)
        }
        Format::Ipvsadm => {
            let (config, warnings) = rvs_config::ipvsadm::read_rules(text, &shown, ipvsadm_names)?;
            (
                config,
                warnings,
                Vec::new(),
                None,
                Default::default(),
                FailoverConfig::default(),
            )
        }
        Format::Toml => {
            let n = rvs_config::parse_native(text, &shown)?;
            names = n.names;
            (
                n.config,
                Vec::new(),
                n.vips,
                n.nat_router,
                n.health,
                n.failover,
            )
        }
    };
    // The failover mapping's warnings (findings across blocks) follow the parser's.
    warnings.append(&mut failover.warnings);
    for svc in &config.services {
        if let ServiceKey::Fwmark { mark, .. } = svc.key
            && !fwmark_places.iter().any(|(m, _)| *m == mark)
        {
            fwmark_places.push((mark, rvs_config::netfilter::mark_place(text, &shown, mark)));
        }
    }
    let mut owned: Vec<Owned> = vips
        .iter()
        .chain(nat_router.iter())
        .map(|v| Owned {
            addr: v.addr,
            device: Some(v.device.clone()),
        })
        .collect();
    // Every address service's VIP is owned (on its link when no device is named).
    for svc in &config.services {
        if let ServiceKey::Addr { addr, .. } = svc.key
            && !owned.iter().any(|o| o.addr == addr)
        {
            owned.push(Owned { addr, device: None });
        }
    }
    Ok(Loaded {
        format,
        config,
        owned,
        vips,
        nat_router,
        health,
        warnings,
        failover,
        names,
        uncarried,
        fwmark_places,
    })
}

/// A file as `rvs daemon`, a reload and `rvs check-config` take it, one way for all three:
/// read ([`load_with`], keepalived.conf with configuration id `config_id`, names looked up in
/// the system), this host's MARK rules added ([`crate::marks::add_host_marks`]), then refused
/// when it would give the daemon nothing to run ([`preflight`]) or, with `strict`, when it
/// warns. The error is the text to show: diagnostics (warnings first) and the reason.
pub fn admit(
    path: &Path,
    format: Option<Format>,
    config_id: Option<&str>,
    strict: bool,
) -> Result<(Loaded, crate::marks::HostMarks), String> {
    let keepalived = keepalived_options(config_id);
    let mut loaded = load_with(path, format, &keepalived, &crate::names::SystemNames)
        .map_err(|d| rvs_config::render_all(&d))?;
    let marks = crate::marks::add_host_marks(&mut loaded);
    if let Err(why) = preflight(&loaded) {
        return Err(format!(
            "{}{}: error: {why}\n",
            rvs_config::render_all(&loaded.warnings),
            path.display()
        ));
    }
    if strict && !loaded.warnings.is_empty() {
        return Err(rvs_config::render_all(&strict_errors(&loaded.warnings)));
    }
    Ok((loaded, marks))
}

/// What the daemon refuses before it touches the system, checked on the file alone (so that
/// `rvs check-config` refuses it too): a configuration that would attach the director to
/// no interface — no address to own, no real server, no FullNAT local address — gives a
/// daemon with nothing to do, which `rvs daemon` refuses to start.
pub fn preflight(l: &Loaded) -> Result<(), String> {
    let has_real_server = l.config.services.iter().any(|s| !s.real_servers.is_empty());
    if l.owned.is_empty() && !has_real_server && l.config.local_pool.addrs.is_empty() {
        return Err(format!(
            "read as {}, the file defines no virtual service address, real server or address \
             to own: the daemon would attach to no interface and refuses to start",
            l.format.name()
        ));
    }
    Ok(())
}

/// The effective configuration as `rvs check-config` prints it: the `ipvsadm -S -n`
/// rules, then what ipvsadm cannot express as `# rvs:` comments: the format read, owned
/// addresses with their devices (and prefix and label where the format gives them), fwmark
/// classifier rules, switches, table size, names and inactive real servers, `# rvs:
/// health ...` lines (what will be checked on each real server) and `# rvs: failover ...`
/// lines (VRRP instances, sync groups, scripts, pulse, connection sync).
pub fn effective(l: &Loaded) -> String {
    use std::fmt::Write as _;
    let mut out = rvs_config::ipvsadm::save(&l.config);
    let _ = writeln!(out, "# rvs: read as {}", l.format.name());
    for o in &l.owned {
        let vip = l
            .vips
            .iter()
            .chain(l.nat_router.iter())
            .find(|v| v.addr == o.addr);
        let detail = match vip {
            Some(v) if v.label != v.device => format!("/{} label {}", v.prefix, v.label),
            Some(v) => format!("/{}", v.prefix),
            None => String::new(),
        };
        // Active-active: announced by route, not owned (crate::announce::strip_owned).
        if l.failover.cluster.is_some() && !l.config.local_pool.addrs.contains(&o.addr) {
            let _ = writeln!(out, "# rvs: announces {} (active-active)", o.addr);
            continue;
        }
        let _ = writeln!(
            out,
            "# rvs: owns {}{detail} on {}",
            o.addr,
            o.device.as_deref().unwrap_or("its link")
        );
    }
    if let Some(n) = &l.nat_router {
        let _ = writeln!(out, "# rvs: nat router {}", n.addr);
    }
    for r in &l.config.fwmark_rules {
        let proto = r
            .protocol
            .map_or("any".to_string(), |p| p.to_string().to_lowercase());
        let from = r
            .src
            .map_or(String::new(), |s| format!(" from {}/{}", s.addr, s.len));
        let _ = writeln!(
            out,
            "# rvs: fwmark {} <- {proto} {}/{}{from} ports {}-{}",
            r.mark, r.dst.addr, r.dst.len, r.ports.0, r.ports.1
        );
    }
    let sw = l.config.switches;
    if sw != rvs_core::model::Switches::default() {
        let _ = writeln!(
            out,
            "# rvs: expire_nodest_conn={} expire_quiescent_template={} sloppy_tcp={} conn_reuse_mode={}",
            u8::from(sw.expire_nodest_conn),
            u8::from(sw.expire_quiescent_template),
            u8::from(sw.sloppy_tcp),
            sw.conn_reuse_mode
        );
    }
    if l.config.conn_table_max != 0
        || l.config.table_full != rvs_core::model::TableFullPolicy::default()
        || l.config.conn_table_bytes != 0
    {
        let _ = writeln!(
            out,
            "# rvs: connection table max {} memory {} when full {:?}",
            l.config.conn_table_max,
            rvs_config::format_size(l.config.conn_table_bytes),
            l.config.table_full
        );
    }
    if l.config.defense != rvs_core::model::Defense::default() {
        let d = l.config.defense;
        let _ = writeln!(
            out,
            "# rvs: defence amemthresh {} am_droprate {} drop_entry {} drop_packet {} secure_tcp {}",
            d.amemthresh, d.am_droprate, d.drop_entry, d.drop_packet, d.secure_tcp
        );
    }
    for line in describe_names(&l.names) {
        let _ = writeln!(out, "# rvs: {line}");
    }
    for line in rvs_config::describe_health(&l.health) {
        let _ = writeln!(out, "# rvs: health {line}");
    }
    for line in rvs_config::describe_failover(&l.failover) {
        let _ = writeln!(out, "# rvs: failover {line}");
    }
    out
}

/// One line per named service, named real server and inactive real server.
fn describe_names(n: &rvs_config::Names) -> Vec<String> {
    let mut out = Vec::new();
    for s in &n.services {
        let key = service_words(&s.service);
        if let Some(name) = &s.name {
            out.push(format!("name {key} {name}"));
        }
        let mut k = 0;
        let svc_port = match s.service {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        let _ = svc_port;
        for slot in &s.slots {
            match slot {
                rvs_config::ServerSlot::Active(name) => {
                    if let Some(name) = name {
                        out.push(format!("name {key} real server #{} {name}", k + 1));
                    }
                    k += 1;
                }
                rvs_config::ServerSlot::Inactive(x) => out.push(format!(
                    "inactive {key} -r {} weight {}{}",
                    rvs_core::model::sock(x.addr, x.port),
                    x.weight,
                    x.name
                        .as_ref()
                        .map_or(String::new(), |n| format!(" name {n}"))
                )),
            }
        }
    }
    out
}

fn service_words(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!(
            "-{} {}",
            if protocol == rvs_core::model::Protocol::Udp {
                "u"
            } else {
                "t"
            },
            rvs_core::model::sock(addr, port)
        ),
        ServiceKey::Fwmark { mark, .. } => format!("-f {mark}"),
    }
}

/// Everything a configuration means, for comparing two files regardless of their format:
/// the forwarding model, health monitoring, failover (without the mapping's warnings),
/// names and inactive real servers, and the addresses the director owns with their
/// devices, prefixes and labels (VIPs and the NAT router together, as the daemon owns them
/// alike; keepalived.conf has no separate NAT router).
#[derive(Debug, Clone, PartialEq)]
pub struct Meaning {
    /// Services, real servers, classifier rules, timeouts, switches.
    pub config: Config,
    /// Health monitoring.
    pub health: rvs_core::health::HealthConfig,
    /// Failover and connection sync.
    pub failover: FailoverConfig,
    /// Names and inactive real servers.
    pub names: rvs_config::Names,
    /// Owned addresses, sorted.
    pub addresses: Vec<rvs_config::Vip>,
}

/// The meaning of `l`.
pub fn meaning(l: &Loaded) -> Meaning {
    let mut addresses: Vec<rvs_config::Vip> =
        l.vips.iter().chain(l.nat_router.iter()).cloned().collect();
    addresses.sort_by_key(|v| (v.addr, v.device.clone(), v.label.clone(), v.prefix));
    addresses.dedup();
    Meaning {
        config: l.config.clone(),
        health: l.health.clone(),
        failover: FailoverConfig {
            warnings: Vec::new(),
            ..l.failover.clone()
        },
        names: l.names.clone(),
        addresses,
    }
}

/// The parts in which two meanings differ, named for people.
pub fn differences(a: &Meaning, b: &Meaning) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.config != b.config {
        out.push("the virtual services, real servers or director settings");
    }
    if a.health != b.health {
        out.push("the health monitoring");
    }
    if a.failover != b.failover {
        out.push("the failover or connection sync");
    }
    if a.names != b.names {
        out.push("the names or inactive real servers");
    }
    if a.addresses != b.addresses {
        out.push("the addresses the director owns");
    }
    out
}

/// A configuration written in another format (`rvs convert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The file.
    pub text: String,
    /// What the target format cannot express (empty: the file means the same).
    pub losses: Vec<String>,
}

/// Write a loaded configuration in another format. The text is always produced; the
/// losses name everything it does not carry. When the writer names none, the text is
/// read back and its [`meaning`] compared, so that nothing is lost unnamed.
pub fn convert(l: &Loaded, to: Format) -> Converted {
    let conf = rvs_config::NativeConf {
        config: l.config.clone(),
        vips: l.vips.clone(),
        nat_router: l.nat_router.clone(),
        health: l.health.clone(),
        failover: FailoverConfig {
            warnings: Vec::new(),
            ..l.failover.clone()
        },
        names: l.names.clone(),
    };
    let (text, mut losses) = match to {
        Format::Toml => (rvs_config::emit_native(&conf), Vec::new()),
        Format::Keepalived => {
            let w = rvs_config::write_keepalived(&conf);
            (w.text, w.losses)
        }
        Format::LvsCf => {
            let w = rvs_config::write_lvs_cf(&conf);
            (w.text, w.losses)
        }
        Format::Ipvsadm => {
            let w = rvs_config::write_ipvsadm(&conf);
            (w.text, w.losses)
        }
    };
    losses.extend(l.uncarried.iter().cloned());
    if losses.is_empty() {
        let name = format!("(converted to {})", to.name());
        match load_text(Path::new(&name), &text, to) {
            Err(diags) => losses.push(format!(
                "the written file does not read back: {}",
                diags.first().map_or(String::new(), |d| d.message.clone())
            )),
            Ok(back) => {
                for part in differences(&meaning(l), &meaning(&back)) {
                    losses.push(format!("the written file reads back with different {part}"));
                }
            }
        }
    }
    Converted { text, losses }
}

/// What the daemon runs: the forwarding configuration and where it lives on the links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Virtual services, real servers, timeouts.
    pub config: Config,
    /// Interfaces to attach to, in port order (port 0 = the first).
    pub interfaces: Vec<String>,
    /// Addresses the engine owns (VIPs, the NAT router's floating IP, FullNAT local
    /// addresses) and their interface.
    pub owned: Vec<(IpAddr, String)>,
}

/// The plan for `loaded` on this host's interfaces (the calling thread's namespace).
pub fn plan(loaded: &Loaded) -> io::Result<Plan> {
    let links = rvs_sys::iface::all_addresses()?;
    let routes = crate::kernel::routes()?;
    plan_with_links(loaded, &links, &routes)
}

/// The interface on whose link `a` lies (not one of the host's own addresses).
pub(crate) fn on_link(links: &[(String, IpAddr, u8)], a: IpAddr) -> Option<String> {
    links
        .iter()
        .find(|(_, net, len)| {
            *net != a
                && Prefix {
                    addr: *net,
                    len: *len,
                }
                .contains(a)
        })
        .map(|(dev, _, _)| dev.clone())
}

/// Attach to every device an owned address names or lies on, and to every interface on
/// whose link (or towards whose gateway) a real server or a FullNAT local address lies.
pub fn plan_with_links(
    loaded: &Loaded,
    links: &[(String, IpAddr, u8)],
    routes: &[rvs_core::director::Route],
) -> io::Result<Plan> {
    let mut interfaces: Vec<String> = Vec::new();
    let add = |dev: &str, interfaces: &mut Vec<String>| {
        if !interfaces.iter().any(|d| d == dev) {
            interfaces.push(dev.to_string());
        }
    };
    let reach = |a: IpAddr| {
        on_link(links, a).or_else(|| {
            routes
                .iter()
                .filter(|r| r.dst.contains(a))
                .max_by_key(|r| r.dst.len)
                .and_then(|r| on_link(links, r.via))
        })
    };
    let mut owned = Vec::new();
    for o in &loaded.owned {
        let dev = match (&o.device, reach(o.addr)) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d,
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} names no device and is on no link of this host: give it one \
                         (lvs.cf `address = IP DEV`, keepalived `dev DEV`)",
                        o.addr
                    ),
                ));
            }
        };
        add(&dev, &mut interfaces);
        if !owned.iter().any(|(a, _)| *a == o.addr) {
            owned.push((o.addr, dev));
        }
    }
    for svc in &loaded.config.services {
        for rs in &svc.real_servers {
            match reach(rs.addr) {
                Some(dev) => add(&dev, &mut interfaces),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "real server {} is on no link of this host and no route leads to it",
                            rs.addr
                        ),
                    ));
                }
            }
        }
    }
    for a in &loaded.config.local_pool.addrs {
        let Some(dev) = on_link(links, *a) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("FullNAT local address {a} is on no link of this host"),
            ));
        };
        add(&dev, &mut interfaces);
        owned.push((*a, dev));
    }
    Ok(Plan {
        config: loaded.config.clone(),
        interfaces,
        owned,
    })
}

/// `--strict`: every warning of a load, as an error (for CI pipelines that must not let a
/// file through that the daemon would run differently from what its author meant).
pub fn strict_errors(warnings: &[Diagnostic]) -> Vec<Diagnostic> {
    warnings
        .iter()
        .map(|w| Diagnostic {
            severity: rvs_config::Severity::Error,
            message: format!("{} (a warning; an error with --strict)", w.message),
            ..w.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Vec<(String, IpAddr, u8)> {
        vec![
            ("eth0".to_string(), "10.1.0.2".parse().unwrap(), 24),
            ("eth1".to_string(), "10.2.0.1".parse().unwrap(), 24),
        ]
    }

    fn loaded_from(name: &str, text: &str) -> Loaded {
        let dir = std::env::temp_dir().join(format!("rvs-load-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let l = load(&p, None).unwrap_or_else(|d| panic!("{}", rvs_config::render_all(&d)));
        let _ = std::fs::remove_dir_all(&dir);
        l
    }

    /// `rvs daemon -c` / `rvs check-config` on a rules file saved without `-n`: the names
    /// are looked up (here in a fake resolver; `load` asks the system).
    #[test]
    fn rules_file_names_are_resolved_when_loaded() {
        let dir = std::env::temp_dir().join(format!("rvs-load-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("web.rules");
        std::fs::write(
            &p,
            "-A -t web01:http -s wlc\n-a -t web01:http -r 192.168.1.10:http -m -w 1\n",
        )
        .unwrap();
        let names = rvs_config::ipvsadm::FixedNames::new(
            &[("web01", "192.168.1.100")],
            &[("http", 80, "tcp")],
        );
        let l = load_with(&p, None, &keepalived_options(None), &names)
            .unwrap_or_else(|d| panic!("{}", rvs_config::render_all(&d)));
        assert_eq!(
            rvs_config::ipvsadm::save(&l.config),
            "-A -t 192.168.1.100:80 -s wlc\n-a -t 192.168.1.100:80 -r 192.168.1.10:80 -m -w 1\n"
        );
        // An unknown name is the located refusal ipvsadm -R gives.
        let d = load_with(
            &p,
            None,
            &keepalived_options(None),
            &rvs_config::ipvsadm::NoNames,
        )
        .unwrap_err();
        assert_eq!((d[0].line, d[0].column), (1, 7));
        assert_eq!(
            d[0].message,
            "illegal virtual server address[:port] specified"
        );
        // The system's names: localhost and http.
        std::fs::write(&p, "-A -t localhost:http -s rr\n").unwrap();
        let l = load(&p, None).unwrap_or_else(|d| panic!("{}", rvs_config::render_all(&d)));
        assert_eq!(
            rvs_config::ipvsadm::save(&l.config),
            "-A -t 127.0.0.1:80 -s rr\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lvs_cf_attaches_vip_devices_and_real_server_links() {
        let l = loaded_from(
            "t.cf",
            "network = nat\nnat_router = 10.2.0.254 eth1:1\n\
             virtual web {\n active = 1\n address = 10.1.0.100 eth0:1\n port = 80\n\
             server a { address = 10.2.0.11\n active = 1 }\n}\n",
        );
        assert_eq!(l.format, Format::LvsCf);
        let plan = plan_with_links(&l, &links(), &[]).unwrap();
        assert_eq!(plan.interfaces, ["eth0", "eth1"]);
        assert_eq!(
            plan.owned,
            [
                ("10.1.0.100".parse().unwrap(), "eth0".to_string()),
                ("10.2.0.254".parse().unwrap(), "eth1".to_string())
            ]
        );
    }

    #[test]
    fn ipvsadm_rules_and_keepalived_find_their_links() {
        let rules = loaded_from(
            "rules",
            "-A -t 10.1.0.100:80 -s rr\n-a -t 10.1.0.100:80 -r 10.2.0.11:80 -m -w 1\n",
        );
        assert_eq!(rules.format, Format::Ipvsadm);
        let plan = plan_with_links(&rules, &links(), &[]).unwrap();
        assert_eq!(plan.interfaces, ["eth0", "eth1"]);
        assert_eq!(
            plan.owned,
            [("10.1.0.100".parse().unwrap(), "eth0".to_string())]
        );

        let ka = loaded_from(
            "ka.conf",
            "vrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 51\n \
             priority 100\n virtual_ipaddress {\n  10.1.0.100/24\n  10.2.0.254/24 dev eth1\n }\n}\n\
             virtual_server 10.1.0.100 80 {\n protocol TCP\n lvs_sched rr\n lvs_method NAT\n \
             real_server 10.2.0.11 80 {\n  weight 1\n }\n}\n",
        );
        assert_eq!(ka.format, Format::Keepalived);
        let plan = plan_with_links(&ka, &links(), &[]).unwrap();
        assert_eq!(plan.interfaces, ["eth0", "eth1"]);
        assert_eq!(
            plan.owned,
            [
                ("10.1.0.100".parse().unwrap(), "eth0".to_string()),
                ("10.2.0.254".parse().unwrap(), "eth1".to_string())
            ]
        );
    }

    #[test]
    fn failover_comes_with_the_format() {
        let ka = loaded_from(
            "fo.conf",
            "vrrp_script chk {\n script /bin/true\n}\n\
             vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 150\n \
             advert_int 1.4\n track_script {\n  chk\n }\n virtual_ipaddress {\n  10.1.0.100/24\n }\n}\n",
        );
        let rvs_config::FailoverMode::Vrrp(v) = &ka.failover.mode else {
            panic!("{:?}", ka.failover.mode)
        };
        assert_eq!(v.instances[0].router.priority, 150);
        assert_eq!(v.instances[0].track_scripts, ["chk"]);
        // The mapping's warnings (advert_int rounded) join the parser's.
        assert!(ka.failover.warnings.is_empty());
        assert!(
            ka.warnings
                .iter()
                .any(|w| w.line == 8 && w.message.contains("rounded to 1s")),
            "{}",
            rvs_config::render_all(&ka.warnings)
        );
        assert_eq!(
            rvs_config::describe_failover(&ka.failover),
            [
                "vrrp VI_1 on eth0 vrid 51 v2 priority 150 advert 1s from eth0's address: \
                 10.1.0.100/24 on eth0",
                "vrrp VI_1 tracks eth0 (fault), chk (fault)"
            ]
        );

        let cf = loaded_from(
            "fo.cf",
            "primary = 10.1.0.2\nbackup = 10.1.0.3\nbackup_active = 1\nheartbeat = 1\n\
             syncdaemon = 1\nsyncd_iface = eth1\n\
             virtual v {\n active = 1\n address = 10.1.0.100 eth0:1\n}\n",
        );
        let rvs_config::FailoverMode::Pulse(p) = &cf.failover.mode else {
            panic!("{:?}", cf.failover.mode)
        };
        assert_eq!(p.backup, Some("10.1.0.3".parse().unwrap()));
        assert_eq!(cf.failover.sync.as_ref().unwrap().interface, "eth1");
        let rules = loaded_from("r.rules", "-A -t 10.1.0.100:80 -s rr\n");
        assert_eq!(rules.failover, FailoverConfig::default());
    }

    #[test]
    fn a_failover_refusal_is_a_located_load_error() {
        let dir = std::env::temp_dir().join(format!("rvs-load-{}-bad", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.conf");
        std::fs::write(
            &p,
            "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 5\n}\n",
        )
        .unwrap();
        let e = load(&p, None).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            (e[0].line, e[0].column),
            (7, 20),
            "{}",
            rvs_config::render_all(&e)
        );
        assert!(e[0].message.contains("already used on eth0"));
    }

    #[test]
    fn a_vip_on_no_link_without_a_device_is_refused() {
        let rules = loaded_from(
            "far.rules",
            "-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 10.2.0.11:80 -m -w 1\n",
        );
        let e = plan_with_links(&rules, &links(), &[]).unwrap_err();
        assert!(e.to_string().contains("192.0.2.1 names no device"), "{e}");
    }
}
