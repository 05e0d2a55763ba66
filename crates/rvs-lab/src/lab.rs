//! The namespace lab: a client, a director and real servers in network namespaces, joined
//! by two Linux bridges — the topology of `../shared/bench/peers.sh` — for `rvs demo`, the
//! integration tests and the benchmarks. `rvs lab up|down|exec|list|show` is its command
//! line; [`Lab`] is the guard the demo and the tests hold (everything goes when it drops,
//! also when a test panics).
//!
//! ```text
//!   client --[swpub]-- director (eth0 | eth1) --[swpriv]-- rs1, rs2, rs3 (eth0)
//!                 \_________________________________________/  rs eth1 (DR and TUN only)
//! ```
//! Addresses (the constants below): client 10.1.0.10/24; director eth0 10.1.0.2/24 and
//! eth1 10.2.0.1/24; real servers 10.2.0.11.. on eth0; the same in IPv6 under 2001:db8:1::/64
//! and 2001:db8:2::/64 (`nodad` everywhere). The VIP (10.1.0.100, 2001:db8:1::100), the NAT
//! router's floating address (10.2.0.254, 2001:db8:2::254) and FullNAT's local address
//! (10.2.0.250) belong to the rvs daemon: no kernel holds them (except the real servers'
//! loopback VIP in DR and TUN). The director's kernel keeps forwarding off (IPv4 and IPv6)
//! so it never forwards a second copy of VIP traffic; its offloads keep their defaults
//! (the daemon handles GSO/checksum-partial frames).
//!
//! Per forwarding method, the real servers' side:
//! - **NAT**: default route via the NAT router's floating address (10.2.0.254): replies
//!   must go back through the director.
//! - **FullNAT**: no default route at all — the director rewrites the source too, so the
//!   real servers only ever talk to 10.2.0.250 on their own LAN. The lab proves it.
//! - **DR and TUN**: the real servers reply to the client with source = VIP, which must not
//!   cross the director (its kernel must stay out of VIP traffic, so it cannot route the
//!   replies). Each real server is therefore **dual-homed**, as in the LVS-DR documents
//!   where real servers share the client-facing LAN: eth0 on the private bridge, where the
//!   director delivers requests (MAC rewrite or IPIP to 10.2.0.1x), and eth1 on the public
//!   bridge (10.1.0.1x, 2001:db8:1::1x) through which replies go straight to the client.
//!   The VIP sits on `lo` (/32 and /128) with `arp_ignore=1` and `arp_announce=2`, so the
//!   real servers, which see the client's ARP requests on eth1, do not answer for the VIP
//!   (the seeds' "ARP limitation" is real here); `rp_filter` is off because requests from
//!   the client arrive on eth0 while the route back to it is eth1. Requests and replies
//!   take different LANs; the configuration (real-server addresses 10.2.0.1x) is the same
//!   for every method. The lab runs `rvs realserver dr --vip VIP --vip VIP6` in each real
//!   server for the loopback VIPs and ARP sysctls (it sets `rp_filter` itself). TUN also
//!   needs IPIP decapsulation (no `ipip` module here): the lab starts
//!   `rvs realserver tun --vip ...` in each real server as a tracked process and waits
//!   until it decapsulates.
//!
//! Namespaces are named `LAB-NODE-PID-N` ([`Netns`] adds the pid and a counter); the lab
//! name is claimed atomically by creating its state file `/run/rvs-lab/LAB` (default names
//! `rvs1`, `rvs2`, ...), which records the namespaces so `rvs lab down --name LAB` and
//! `rvs lab exec` find them from another process. Logs and generated configurations live in
//! `/run/rvs-lab/LAB.d/`. The lab does not start a director: that is the demo's (or the
//! test's) business.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rvs_sys::netns::{self, Netns};

/// The client's address on the public LAN.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
/// The director's public interface (eth0) address.
pub const DIRECTOR_PUB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
/// The director's private interface (eth1) address.
pub const DIRECTOR_PRIV: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
/// The backup director's address on the public LAN.
pub const DIRECTOR2_PUB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 3);
/// The backup director's address on the private LAN.
pub const DIRECTOR2_PRIV: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
/// The backup director's IPv6 address on the public LAN.
pub const DIRECTOR2_PUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 3);
/// The backup director's IPv6 address on the private LAN.
pub const DIRECTOR2_PRIV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
/// The virtual IP (owned by the rvs daemon, not by the director's kernel).
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
/// The NAT router's floating address on the private LAN (owned by the rvs daemon).
pub const NAT_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 254);
/// FullNAT's local (source) address on the private LAN (owned by the rvs daemon).
pub const FULLNAT_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 250);
/// IPv6 counterparts.
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
/// The director's public IPv6 address.
pub const DIRECTOR_PUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// The director's private IPv6 address.
pub const DIRECTOR_PRIV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
/// The IPv6 VIP.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
/// The NAT router's floating IPv6 address.
pub const NAT_ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x254);
/// Most real servers a lab takes (their addresses stay below FullNAT's local address).
pub const MAX_REAL_SERVERS: usize = 200;
/// Where lab state files live unless [`LabOptions::state_dir`] says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/rvs-lab";

const PUB_BRIDGE: &str = "swpub";
const PRIV_BRIDGE: &str = "swpriv";

/// Real server `i`'s (1-based) address on the private LAN: 10.2.0.(10+i).
pub fn rs_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 2, 0, 10 + i as u8)
}
/// Real server `i`'s address on the public LAN (DR and TUN only): 10.1.0.(10+i).
pub fn rs_pub_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 10 + i as u8)
}
/// Real server `i`'s private IPv6 address: 2001:db8:2::(0x10+i), i.e. ::11, ::12, ...
pub fn rs_addr6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10 + i as u16)
}
/// Real server `i`'s public IPv6 address (DR and TUN only).
pub fn rs_pub_addr6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + i as u16)
}

/// The forwarding method the lab is wired for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Masquerading: real servers route back through the director.
    Nat,
    /// Direct routing (MAC rewrite): VIP on the real servers' loopback.
    #[value(alias = "direct")]
    Dr,
    /// IP tunnelling: as DR, plus decapsulation on the real servers.
    #[value(alias = "tunnel")]
    Tun,
    /// FullNAT: source rewritten too; real servers need no route back.
    #[value(name = "fullnat")]
    FullNat,
}

impl Method {
    /// Parses `nat`, `dr`/`direct`, `tun`/`tunnel`, `fullnat`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "nat" => Self::Nat,
            "dr" | "direct" => Self::Dr,
            "tun" | "tunnel" => Self::Tun,
            "fullnat" => Self::FullNat,
            _ => return None,
        })
    }
    /// The short name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nat => "nat",
            Self::Dr => "dr",
            Self::Tun => "tun",
            Self::FullNat => "fullnat",
        }
    }
    /// Whether real servers hold the VIP and reply to the client directly.
    pub fn direct_return(self) -> bool {
        matches!(self, Self::Dr | Self::Tun)
    }
}

/// Which HTTP server the real servers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Httpd {
    /// `rvs httpd` (this binary): answers `NAME\n`, `GET /bytes/N`.
    Builtin,
    /// nginx with a generated configuration (as in peers.sh), answering `NAME\n`.
    Nginx,
    /// Nothing: the caller starts its own.
    None,
}

/// What [`Lab::up`] builds.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Exact lab name; `None` claims `PREFIX1`, `PREFIX2`, ... (the first one free).
    pub name: Option<String>,
    /// Prefix of generated lab names.
    pub name_prefix: String,
    /// Forwarding method the real servers are set up for.
    pub method: Method,
    /// Add the IPv6 addresses and routes.
    pub ipv6: bool,
    /// Number of real servers, 1..=[`MAX_REAL_SERVERS`].
    pub real_servers: usize,
    /// A second director (`director2`, for failover): on both LANs beside the first, with
    /// its own addresses [`DIRECTOR2_PUB`] and [`DIRECTOR2_PRIV`].
    pub backup_director: bool,
    /// The real servers' HTTP server on port 80.
    pub httpd: Httpd,
    /// The `rvs` executable for [`Httpd::Builtin`]; `None` = the running executable.
    pub rvs_exe: Option<PathBuf>,
    /// Directory of state files (and `NAME.d` work directories).
    pub state_dir: PathBuf,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            name: None,
            name_prefix: "rvs".into(),
            method: Method::Nat,
            ipv6: true,
            real_servers: 3,
            backup_director: false,
            httpd: Httpd::Builtin,
            rvs_exe: None,
            state_dir: DEFAULT_STATE_DIR.into(),
        }
    }
}

/// What identifies a lab: enough to describe it, find its namespaces and remove it, also
/// from another process (it is what the state file holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabInfo {
    /// The lab's name.
    pub name: String,
    /// Forwarding method.
    pub method: Method,
    /// IPv6 configured.
    pub ipv6: bool,
    /// Number of real servers (`rs1`..`rsN`).
    pub real_servers: usize,
    /// `(node, namespace)` in creation order: switch, client, director, rs1..rsN.
    pub namespaces: Vec<(String, String)>,
    /// Directory holding the state file.
    pub state_dir: PathBuf,
    /// Processes the lab started, as recorded in the state file (informational: `down`
    /// ends everything in the namespaces anyway).
    pub pids: Vec<u32>,
    /// The process holding the lab's guard; `None` once detached (`rvs lab up`). A lab
    /// whose owner is gone was left by a killed process: [`sweep_orphans`] removes it.
    pub owner: Option<u32>,
}

impl LabInfo {
    /// `STATE_DIR/NAME`.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join(&self.name)
    }
    /// `STATE_DIR/NAME.d`: logs and generated configurations.
    pub fn workdir(&self) -> PathBuf {
        self.state_dir.join(format!("{}.d", self.name))
    }
    /// The namespace of `node` (`client`, `director`, `switch`, `rs1`, ...).
    pub fn namespace(&self, node: &str) -> Option<&str> {
        self.namespaces
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, ns)| ns.as_str())
    }

    fn to_state(&self) -> String {
        let mut s = format!(
            "# rvs lab state; remove the lab with: rvs lab down --name {}\nname {}\nmethod {}\nipv6 {}\nreal_servers {}\n",
            self.name,
            self.name,
            self.method.as_str(),
            self.ipv6,
            self.real_servers
        );
        if let Some(pid) = self.owner {
            let _ = writeln!(s, "owner {pid}");
        }
        for (node, ns) in &self.namespaces {
            let _ = writeln!(s, "ns {node} {ns}");
        }
        s
    }

    fn parse_state(text: &str, state_dir: &Path) -> Result<Self, String> {
        let mut info = LabInfo {
            name: String::new(),
            method: Method::Nat,
            ipv6: false,
            real_servers: 0,
            namespaces: Vec::new(),
            state_dir: state_dir.to_owned(),
            pids: Vec::new(),
            owner: None,
        };
        for (n, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("line {}: cannot read {line:?}", n + 1);
            match words.as_slice() {
                [] => {}
                [w, ..] if w.starts_with('#') => {}
                ["name", v] => info.name = (*v).to_owned(),
                ["method", v] => info.method = Method::parse(v).ok_or_else(bad)?,
                ["ipv6", v] => info.ipv6 = v.parse().map_err(|_| bad())?,
                ["real_servers", v] => info.real_servers = v.parse().map_err(|_| bad())?,
                ["owner", v] => info.owner = Some(v.parse().map_err(|_| bad())?),
                ["ns", node, ns] => info.namespaces.push(((*node).into(), (*ns).into())),
                ["pid", _node, pid] => info.pids.push(pid.parse().map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
        if info.name.is_empty() {
            return Err("no `name` line".into());
        }
        Ok(info)
    }

    /// A readable account of nodes, namespaces and addresses.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "lab {} (method {}, {} real server{}, IPv6 {})\n",
            self.name,
            self.method.as_str(),
            self.real_servers,
            if self.real_servers == 1 { "" } else { "s" },
            if self.ipv6 { "on" } else { "off" }
        );
        let v6 = |a: Ipv6Addr, len: u8| {
            if self.ipv6 {
                format!(" {a}/{len}")
            } else {
                String::new()
            }
        };
        for (node, ns) in &self.namespaces {
            let what = match node.as_str() {
                "switch" => format!("bridges {PUB_BRIDGE} (public), {PRIV_BRIDGE} (private)"),
                "client" => format!("eth0 {CLIENT}/24{}", v6(CLIENT6, 64)),
                "director" => format!(
                    "eth0 {DIRECTOR_PUB}/24{}; eth1 {DIRECTOR_PRIV}/24{}; forwarding off",
                    v6(DIRECTOR_PUB6, 64),
                    v6(DIRECTOR_PRIV6, 64)
                ),
                "director2" => format!(
                    "eth0 {DIRECTOR2_PUB}/24{}; eth1 {DIRECTOR2_PRIV}/24{}; forwarding off",
                    v6(DIRECTOR2_PUB6, 64),
                    v6(DIRECTOR2_PRIV6, 64)
                ),
                other if !other.starts_with("rs") => "added by a test".to_owned(),
                rs => {
                    let i: usize = rs.trim_start_matches("rs").parse().unwrap_or(0);
                    let mut w = format!("eth0 {}/24{}", rs_addr(i), v6(rs_addr6(i), 64));
                    match self.method {
                        Method::Nat => {
                            let _ = write!(w, "; default via {NAT_ROUTER}");
                            if self.ipv6 {
                                let _ = write!(w, ", {NAT_ROUTER6}");
                            }
                        }
                        Method::FullNat => w.push_str("; no default route"),
                        Method::Dr | Method::Tun => {
                            let _ = write!(
                                w,
                                "; eth1 {}/24{}; lo {VIP}/32{}; arp_ignore=1 arp_announce=2",
                                rs_pub_addr(i),
                                v6(rs_pub_addr6(i), 64),
                                v6(VIP6, 128)
                            );
                        }
                    }
                    w
                }
            };
            let _ = writeln!(s, "  {node:<9} {ns:<28} {what}");
        }
        let _ = write!(s, "  daemon-owned (no kernel holds them): VIP {VIP}");
        if self.ipv6 {
            let _ = write!(s, ", {VIP6}");
        }
        match self.method {
            Method::Nat => {
                let _ = write!(s, "; NAT router {NAT_ROUTER}");
                if self.ipv6 {
                    let _ = write!(s, ", {NAT_ROUTER6}");
                }
            }
            Method::FullNat => {
                let _ = write!(s, "; FullNAT local {FULLNAT_LOCAL}");
            }
            Method::Dr | Method::Tun => {}
        }
        s.push('\n');
        if self.method == Method::Tun {
            s.push_str("  note: each real server decapsulates IPIP with `rvs realserver tun`\n");
        }
        s
    }
}

struct Tracked {
    node: String,
    log: PathBuf,
    child: Child,
}

/// A running lab. Dropping it stops the processes it started (SIGTERM, then SIGKILL),
/// ends anything else left in its namespaces, deletes them and removes its state.
pub struct Lab {
    info: LabInfo,
    /// Parallel to `info.namespaces`.
    nodes: Vec<Netns>,
    children: Mutex<Vec<Tracked>>,
    rvs_exe: PathBuf,
    detached: bool,
}

impl Lab {
    /// Builds the lab. On error everything built so far is removed again.
    pub fn up(opts: LabOptions) -> io::Result<Self> {
        if !(1..=MAX_REAL_SERVERS).contains(&opts.real_servers) {
            return Err(invalid(format!(
                "--real-servers must be 1..={MAX_REAL_SERVERS}, not {}",
                opts.real_servers
            )));
        }
        let rvs_exe = match &opts.rvs_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        let name = claim_name(&opts)?;
        let mut lab = Lab {
            info: LabInfo {
                name,
                method: opts.method,
                ipv6: opts.ipv6,
                real_servers: opts.real_servers,
                namespaces: Vec::new(),
                state_dir: opts.state_dir.clone(),
                pids: Vec::new(),
                owner: Some(std::process::id()),
            },
            nodes: Vec::new(),
            children: Mutex::new(Vec::new()),
            rvs_exe,
            detached: false,
        };
        fs::create_dir_all(lab.info.workdir())?;
        lab.build(&opts)?;
        Ok(lab)
    }

    fn add_node(&mut self, node: &str) -> io::Result<usize> {
        let ns = Netns::new(&format!("{}-{node}", self.info.name))?;
        self.info
            .namespaces
            .push((node.to_owned(), ns.name().to_owned()));
        self.nodes.push(ns);
        // Record each namespace as soon as it exists: a process killed mid-build still
        // leaves a state file `rvs lab down` can clean up from.
        self.write_state()?;
        let n = self.nodes.len() - 1;
        // No duplicate address detection on the lab's links: the link-local addresses are
        // usable at once (VRRPv3 advertises from them), as on hosts whose links came up
        // long before.
        self.sysctl(
            n,
            &[
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0",
            ],
        )?;
        Ok(n)
    }

    /// Plugs `ifname` of node `n` into `bridge` of the switch (node 0).
    fn port(&self, n: usize, ifname: &str, bridge: &str) -> io::Result<()> {
        let sw = &self.nodes[0];
        let peer = format!("{}-{ifname}", self.info.namespaces[n].0);
        netns::veth_pair(&self.nodes[n], ifname, sw, &peer)?;
        sw.ip(["link", "set", "dev", &peer, "master", bridge])
            .map(drop)
    }

    fn addr6(&self, n: usize, ifname: &str, a: Ipv6Addr, len: u8) -> io::Result<()> {
        self.nodes[n]
            .ip([
                "-6",
                "addr",
                "add",
                &format!("{a}/{len}"),
                "dev",
                ifname,
                "nodad",
            ])
            .map(drop)
    }

    fn sysctl(&self, n: usize, settings: &[&str]) -> io::Result<()> {
        let mut args = vec!["-qw"];
        args.extend_from_slice(settings);
        self.nodes[n].exec("sysctl", args).map(drop)
    }

    fn build(&mut self, opts: &LabOptions) -> io::Result<()> {
        let ipv6 = opts.ipv6;
        let sw = self.add_node("switch")?;
        // The switch is a switch: br_netfilter, when loaded, runs iptables/arptables over
        // every bridged frame in every namespace by default (a quarter of the CPU a SYN
        // flood costs here). Nothing to turn off where it is not loaded.
        if Path::new("/proc/sys/net/bridge").exists() {
            self.sysctl(
                sw,
                &[
                    "net.bridge.bridge-nf-call-iptables=0",
                    "net.bridge.bridge-nf-call-ip6tables=0",
                    "net.bridge.bridge-nf-call-arptables=0",
                ],
            )?;
        }
        for bridge in [PUB_BRIDGE, PRIV_BRIDGE] {
            self.nodes[sw].ip(["link", "add", "name", bridge, "type", "bridge"])?;
            self.nodes[sw].link_up(bridge)?;
        }

        let client = self.add_node("client")?;
        self.port(client, "eth0", PUB_BRIDGE)?;
        self.nodes[client].add_addr("eth0", &format!("{CLIENT}/24"))?;
        if ipv6 {
            self.addr6(client, "eth0", CLIENT6, 64)?;
        }

        let mut directors = vec![(
            "director",
            (DIRECTOR_PUB, DIRECTOR_PRIV),
            (DIRECTOR_PUB6, DIRECTOR_PRIV6),
        )];
        if opts.backup_director {
            directors.push((
                "director2",
                (DIRECTOR2_PUB, DIRECTOR2_PRIV),
                (DIRECTOR2_PUB6, DIRECTOR2_PRIV6),
            ));
        }
        for (node, (pub4, priv4), (pub6, priv6)) in directors {
            let dir = self.add_node(node)?;
            self.port(dir, "eth0", PUB_BRIDGE)?;
            self.port(dir, "eth1", PRIV_BRIDGE)?;
            self.nodes[dir].add_addr("eth0", &format!("{pub4}/24"))?;
            self.nodes[dir].add_addr("eth1", &format!("{priv4}/24"))?;
            if ipv6 {
                self.addr6(dir, "eth0", pub6, 64)?;
                self.addr6(dir, "eth1", priv6, 64)?;
            }
            // The director's kernel must never forward VIP traffic (the daemon does).
            self.sysctl(
                dir,
                &["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"],
            )?;
        }

        for i in 1..=opts.real_servers {
            let rs = self.add_node(&format!("rs{i}"))?;
            self.port(rs, "eth0", PRIV_BRIDGE)?;
            let ns = &self.nodes[rs];
            ns.add_addr("eth0", &format!("{}/24", rs_addr(i)))?;
            if ipv6 {
                self.addr6(rs, "eth0", rs_addr6(i), 64)?;
            }
            match opts.method {
                Method::Nat => {
                    ns.ip(["route", "add", "default", "via", &NAT_ROUTER.to_string()])?;
                    if ipv6 {
                        ns.ip([
                            "-6",
                            "route",
                            "add",
                            "default",
                            "via",
                            &NAT_ROUTER6.to_string(),
                        ])?;
                    }
                }
                Method::FullNat => {}
                Method::Dr | Method::Tun => {
                    self.port(rs, "eth1", PUB_BRIDGE)?;
                    let ns = &self.nodes[rs];
                    ns.add_addr("eth1", &format!("{}/24", rs_pub_addr(i)))?;
                    if ipv6 {
                        self.addr6(rs, "eth1", rs_pub_addr6(i), 64)?;
                    }
                    // Requests arrive on eth0, the route back to the client is eth1.
                    self.sysctl(
                        rs,
                        &[
                            "net.ipv4.conf.all.rp_filter=0",
                            "net.ipv4.conf.default.rp_filter=0",
                            "net.ipv4.conf.eth0.rp_filter=0",
                            "net.ipv4.conf.eth1.rp_filter=0",
                            "net.ipv4.conf.lo.rp_filter=0",
                        ],
                    )?;
                    // The VIPs on lo and the ARP sysctls: the real-server companion's job.
                    let vips = self.vip_args(ipv6);
                    let mut args = vec!["realserver", "dr"];
                    args.extend(vips.iter().map(String::as_str));
                    let exe = self.rvs_exe.to_string_lossy().into_owned();
                    self.nodes[rs].exec(&exe, args)?;
                }
            }
        }

        if opts.method == Method::Tun {
            // Userspace IPIP decapsulation (no `ipip` module here), one per real server.
            let vips = self.vip_args(ipv6);
            let mut args = vec!["realserver", "tun"];
            args.extend(vips.iter().map(String::as_str));
            let exe = self.rvs_exe.clone();
            let mut decaps = Vec::new();
            for i in 1..=opts.real_servers {
                let node = format!("rs{i}");
                decaps.push((node.clone(), self.spawn(&node, &exe, &args)?));
            }
            for (node, pid) in decaps {
                self.wait_log(&node, pid, "decapsulating", Duration::from_secs(10))?;
            }
        }

        let mut started = Vec::new();
        for i in 1..=opts.real_servers {
            let node = format!("rs{i}");
            let pid = match opts.httpd {
                Httpd::None => continue,
                Httpd::Builtin => {
                    let listen = if ipv6 { "[::]:80" } else { "0.0.0.0:80" };
                    let exe = self.rvs_exe.clone();
                    self.spawn(&node, &exe, ["httpd", "--listen", listen, "--name", &node])?
                }
                Httpd::Nginx => {
                    let conf = self.nginx_conf(&node)?;
                    self.spawn(&node, "nginx", [OsStr::new("-c"), conf.as_os_str()])?
                }
            };
            started.push((node, pid));
        }
        for (node, pid) in started {
            self.wait_listening(&node, pid, 80, Duration::from_secs(10))?;
        }
        self.write_state()
    }

    /// Adds node `node` joined to the existing node `to` by its own veth pair (`node_if`
    /// in the new node, `to_if` in `to`), outside the bridges — e.g. a host behind the
    /// client, which then routes for it. Addresses and routes are the caller's; the lab
    /// removes the node with the others.
    pub fn add_linked_node(
        &mut self,
        node: &str,
        node_if: &str,
        to: &str,
        to_if: &str,
    ) -> io::Result<()> {
        if !valid_name(node) || self.info.namespace(node).is_some() {
            return Err(invalid(format!("bad or taken node name {node:?}")));
        }
        let peer = self
            .info
            .namespaces
            .iter()
            .position(|(n, _)| n == to)
            .ok_or_else(|| invalid(format!("lab {} has no node {to:?}", self.info.name)))?;
        let n = self.add_node(node)?;
        netns::veth_pair(&self.nodes[n], node_if, &self.nodes[peer], to_if)
    }

    /// `--vip VIP [--vip VIP6]` for `rvs realserver`.
    fn vip_args(&self, ipv6: bool) -> Vec<String> {
        let mut v = vec!["--vip".to_owned(), VIP.to_string()];
        if ipv6 {
            v.extend(["--vip".to_owned(), VIP6.to_string()]);
        }
        v
    }

    /// Waits until tracked process `pid`'s log holds `needle` (bounded); fails early, with
    /// the log's tail, if the process exits first.
    pub fn wait_log(&self, node: &str, pid: u32, needle: &str, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.log_tail(pid).contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.try_wait(pid)? {
                return Err(io::Error::other(format!(
                    "process {pid} in {node} exited ({status}) before logging {needle:?}: {}",
                    self.log_tail(pid)
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "process {pid} in {node} did not log {needle:?} within {limit:?}: {}",
                        self.log_tail(pid)
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn nginx_conf(&self, node: &str) -> io::Result<PathBuf> {
        let wd = self.info.workdir();
        let conf = wd.join(format!("{node}-nginx.conf"));
        let w = wd.display();
        fs::write(
            &conf,
            format!(
                "daemon off; worker_processes 1; pid {w}/{node}-nginx.pid;\n\
                 error_log {w}/{node}-nginx.err;\n\
                 events {{ worker_connections 8192; }}\n\
                 http {{ access_log off;\n\
                 server {{ listen 80 backlog=4096; listen [::]:80 backlog=4096;\n\
                 location / {{ return 200 \"{node}\\n\"; }} }} }}\n"
            ),
        )?;
        Ok(conf)
    }

    /// Waits until something accepts on `127.0.0.1:port` inside `node` (bounded); fails
    /// early, with the log's tail, if process `pid` exits first.
    pub fn wait_listening(
        &self,
        node: &str,
        pid: u32,
        port: u16,
        limit: Duration,
    ) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let up = self.run(node, move || {
                TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    Duration::from_millis(200),
                )
                .is_ok()
            })?;
            if up {
                return Ok(());
            }
            if let Some(status) = self.try_wait(pid)? {
                return Err(io::Error::other(format!(
                    "process {pid} in {node} exited ({status}) before listening on port {port}: {}",
                    self.log_tail(pid)
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing listens on port {port} in {node} after {limit:?}"),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_state(&self) -> io::Result<()> {
        let mut s = self.info.to_state();
        for t in self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(s, "pid {} {}", t.node, t.child.id());
        }
        fs::write(self.info.state_file(), s)
    }

    /// Name, method, namespaces.
    pub fn info(&self) -> &LabInfo {
        &self.info
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The guard of `node`'s namespace.
    pub fn netns(&self, node: &str) -> io::Result<&Netns> {
        self.info
            .namespaces
            .iter()
            .position(|(n, _)| n == node)
            .map(|i| &self.nodes[i])
            .ok_or_else(|| invalid(format!("lab {} has no node {node:?}", self.info.name)))
    }

    /// Runs `program args...` in `node` and waits; an error if it exits non-zero.
    pub fn exec<I, S>(&self, node: &str, program: &str, args: I) -> io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.netns(node)?.exec(program, args)
    }

    /// A `Command` running `program` in `node` (`ip netns exec NS program`): add arguments
    /// and run it however the caller likes (its exit status is not checked).
    pub fn command(&self, node: &str, program: impl AsRef<OsStr>) -> io::Result<Command> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.netns(node)?.name()])
            .arg(program);
        Ok(cmd)
    }

    /// Runs `f` on a thread inside `node`'s namespace (sockets made there stay there).
    pub fn run<T, F>(&self, node: &str, f: F) -> io::Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        self.netns(node)?.run(f)
    }

    /// Starts `program args...` in `node`, output to a log in the lab's work directory.
    /// Returns its pid (`ip netns exec` execs the program, so the pid is the program's);
    /// the lab stops it when dropped, or earlier with [`Lab::stop`].
    pub fn spawn<P, I, S>(&self, node: &str, program: P, args: I) -> io::Result<u32>
    where
        P: AsRef<OsStr>,
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let base = Path::new(program.as_ref())
            .file_name()
            .unwrap_or(program.as_ref())
            .to_string_lossy()
            .into_owned();
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let log = self
            .info
            .workdir()
            .join(format!("{node}-{base}-{}.log", children.len()));
        let out = fs::File::create(&log)?;
        let mut cmd = self.command(node, program)?;
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))?;
        let pid = child.id();
        children.push(Tracked {
            node: node.to_owned(),
            log,
            child,
        });
        Ok(pid)
    }

    /// The pids of the processes this lab started and still tracks.
    pub fn pids(&self) -> Vec<u32> {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.iter().map(|t| t.child.id()).collect()
    }

    /// Whether tracked process `pid` has exited (and how).
    pub fn try_wait(&self, pid: u32) -> io::Result<Option<ExitStatus>> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        match children.iter_mut().find(|t| t.child.id() == pid) {
            Some(t) => t.child.try_wait(),
            None => Err(invalid(format!(
                "process {pid} was not started by this lab"
            ))),
        }
    }

    /// The last lines of tracked process `pid`'s output.
    pub fn log_tail(&self, pid: u32) -> String {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let Some(t) = children.iter().find(|t| t.child.id() == pid) else {
            return String::new();
        };
        let text = fs::read_to_string(&t.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Tracked process `pid`'s whole output so far.
    pub fn log_text(&self, pid: u32) -> String {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children
            .iter()
            .find(|t| t.child.id() == pid)
            .and_then(|t| fs::read_to_string(&t.log).ok())
            .unwrap_or_default()
    }

    /// Kills tracked process `pid` at once (SIGKILL: a crash, no clean-up) and reaps it.
    pub fn kill(&self, pid: u32) -> io::Result<ExitStatus> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = children.iter().position(|t| t.child.id() == pid) else {
            return Err(invalid(format!(
                "process {pid} was not started by this lab"
            )));
        };
        let mut t = children.remove(i);
        drop(children);
        t.child.kill()?;
        t.child.wait()
    }

    /// Stops tracked process `pid` (SIGTERM, SIGKILL after a second) and reaps it.
    pub fn stop(&self, pid: u32) -> io::Result<Option<ExitStatus>> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = children.iter().position(|t| t.child.id() == pid) else {
            return Err(invalid(format!(
                "process {pid} was not started by this lab"
            )));
        };
        let mut t = children.remove(i);
        drop(children);
        stop_children(std::slice::from_mut(&mut t));
        t.child.try_wait()
    }

    /// Leaves the lab running after this process exits: namespaces and processes stay,
    /// the state file says how to remove them (`rvs lab down --name NAME`).
    pub fn detach(mut self) -> io::Result<LabInfo> {
        self.info.owner = None;
        if let Err(e) = self.write_state() {
            self.info.owner = Some(std::process::id());
            return Err(e);
        }
        self.info.pids = self.pids();
        self.detached = true;
        for ns in std::mem::take(&mut self.nodes) {
            std::mem::forget(ns);
        }
        // Dropping a `Child` does not stop the process.
        self.children
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(self.info.clone())
    }

    /// Removes the lab now (as dropping it does).
    pub fn down(self) {}
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let children = self.children.get_mut().unwrap_or_else(|e| e.into_inner());
        stop_children(children);
        // Real servers first, the switch (and with it the bridges) last.
        while let Some(ns) = self.nodes.pop() {
            drop(ns);
        }
        let _ = fs::remove_dir_all(self.info.workdir());
        let _ = fs::remove_file(self.info.state_file());
    }
}

/// SIGTERM to all, a second's grace, then SIGKILL; reaps them all.
fn stop_children(children: &mut [Tracked]) {
    let running: Vec<String> = children
        .iter_mut()
        .filter_map(|t| matches!(t.child.try_wait(), Ok(None)).then(|| t.child.id().to_string()))
        .collect();
    if !running.is_empty() {
        signal("-TERM", &running);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    for t in children.iter_mut() {
        while matches!(t.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if matches!(t.child.try_wait(), Ok(None)) {
            let _ = t.child.kill();
        }
        let _ = t.child.wait();
    }
}

/// `kill SIGNAL PIDS...` (the binary forbids `unsafe`, so no `kill(2)` here).
fn signal(sig: &str, pids: &[String]) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg("--")
        .args(pids)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Claims a lab name by creating its state file (atomic across processes).
fn claim_name(opts: &LabOptions) -> io::Result<String> {
    fs::create_dir_all(&opts.state_dir)?;
    let try_claim = |name: &str| {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(opts.state_dir.join(name))
            .map(drop)
    };
    if let Some(name) = &opts.name {
        if !valid_name(name) {
            return Err(invalid(format!(
                "lab name {name:?}: use 1 to 32 letters, digits, '-' or '_'"
            )));
        }
        return match try_claim(name) {
            Ok(()) => Ok(name.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(io::Error::new(
                e.kind(),
                format!("lab {name} exists already; remove it with: rvs lab down --name {name}"),
            )),
            Err(e) => Err(e),
        };
    }
    if !valid_name(&format!("{}1", opts.name_prefix)) {
        return Err(invalid(format!(
            "bad lab name prefix {:?}",
            opts.name_prefix
        )));
    }
    for n in 1.. {
        let name = format!("{}{n}", opts.name_prefix);
        match try_claim(&name) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!()
}

/// Reads lab `name`'s state file.
pub fn load(state_dir: &Path, name: &str) -> io::Result<LabInfo> {
    if !valid_name(name) {
        return Err(invalid(format!("bad lab name {name:?}")));
    }
    let path = state_dir.join(name);
    let text = fs::read_to_string(&path).map_err(|e| {
        io::Error::new(e.kind(), format!("no lab {name} ({}: {e})", path.display()))
    })?;
    LabInfo::parse_state(&text, state_dir)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// The names of the labs with a state file.
pub fn list(state_dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = match fs::read_dir(state_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        if e.file_type()?.is_file() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Removes the labs whose owning process is gone (killed before its guard could clean
/// up); detached labs (`rvs lab up`) have no owner and stay. Returns their names.
pub fn sweep_orphans(state_dir: &Path) -> io::Result<Vec<String>> {
    let mut swept = Vec::new();
    for name in list(state_dir)? {
        let Ok(info) = load(state_dir, &name) else {
            continue;
        };
        if info.owner.is_some_and(|pid| !owner_alive(pid)) {
            down_by_name(state_dir, &name)?;
            swept.push(name);
        }
    }
    Ok(swept)
}

fn owner_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes lab `name` from its state file (for labs left running by `rvs lab up`, or by a
/// process that died): ends every process in its namespaces (SIGTERM, then SIGKILL),
/// deletes the namespaces, the work directory and the state file.
pub fn down_by_name(state_dir: &Path, name: &str) -> io::Result<LabInfo> {
    let info = load(state_dir, name)?;
    let existing = netns::list()?;
    let present: Vec<&str> = info
        .namespaces
        .iter()
        .map(|(_, ns)| ns.as_str())
        .filter(|ns| existing.iter().any(|e| e == ns))
        .collect();
    let pids = |ns: &[&str]| -> Vec<String> {
        ns.iter()
            .filter_map(|n| netns::ip(["netns", "pids", n]).ok())
            .flat_map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let running = pids(&present);
    if !running.is_empty() {
        signal("-TERM", &running);
        let deadline = Instant::now() + Duration::from_secs(1);
        while !pids(&present).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let left = pids(&present);
        if !left.is_empty() {
            signal("-KILL", &left);
            thread::sleep(Duration::from_millis(50));
        }
    }
    let mut failed = Vec::new();
    // Reverse order: the switch (with the bridges) last.
    for ns in present.iter().rev() {
        if let Err(e) = netns::ip(["netns", "del", ns]) {
            failed.push(e.to_string());
        }
    }
    if !failed.is_empty() {
        return Err(io::Error::other(failed.join("; ")));
    }
    let _ = fs::remove_dir_all(info.workdir());
    fs::remove_file(info.state_file())?;
    Ok(info)
}

/// `rvs lab`'s command line.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "NODE is client, director, switch, rs1, rs2, ...; --name may be left out when \
                  exactly one lab exists."
)]
pub struct LabArgs {
    /// What to do with a lab.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// Which lab, and where its state lives.
#[derive(clap::Args, Debug, Clone)]
pub struct Which {
    /// The lab's name (default: for `up` the first free of rvs1, rvs2, ...; otherwise the
    /// only lab that is up).
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// Where lab state files live.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// `rvs lab`'s commands.
#[derive(clap::Subcommand, Debug)]
pub enum LabCommand {
    /// Build a lab (client, director, real servers in network namespaces, two bridges) and
    /// leave it running; prints its namespaces and addresses.
    Up {
        /// The lab's name and state directory.
        #[command(flatten)]
        which: Which,
        /// The forwarding method the real servers are set up for.
        #[arg(long, value_enum, default_value = "nat")]
        method: Method,
        /// How many real servers (1..=200).
        #[arg(long, value_name = "N", default_value_t = 3)]
        real_servers: usize,
        /// The real servers' HTTP server on port 80: `rvs httpd`, nginx, or none.
        #[arg(long, value_enum, default_value = "builtin")]
        httpd: Httpd,
        /// Leave out the IPv6 addresses and routes.
        #[arg(long)]
        no_ipv6: bool,
    },
    /// Remove a lab: its processes, namespaces, bridges and state.
    Down {
        /// The lab's name and state directory.
        #[command(flatten)]
        which: Which,
    },
    /// Run a command in one of a lab's namespaces; exits with the command's status.
    Exec {
        /// The lab's name and state directory.
        #[command(flatten)]
        which: Which,
        /// The node: client, director, switch, rs1, rs2, ...
        node: String,
        /// The command and its arguments (write `--` before it when it has options).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// Describe a lab: its nodes, namespaces and addresses.
    Show {
        /// The lab's name and state directory.
        #[command(flatten)]
        which: Which,
    },
    /// List the labs that are up, and which are orphaned.
    List {
        /// Where lab state files live.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

/// `rvs lab ...`: exit 0, the command's status for `exec`, 1 when it cannot be done.
pub fn main(args: LabArgs) -> ExitCode {
    match cli(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rvs lab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cli(command: LabCommand) -> Result<ExitCode, String> {
    let err = |e: io::Error| e.to_string();
    match command {
        LabCommand::Up {
            which,
            method,
            real_servers,
            httpd,
            no_ipv6,
        } => {
            let opts = LabOptions {
                name: which.name,
                state_dir: which.state_dir,
                method,
                real_servers,
                httpd,
                ipv6: !no_ipv6,
                ..LabOptions::default()
            };
            let info = Lab::up(opts).and_then(Lab::detach).map_err(err)?;
            print!("{}", info.describe());
            println!(
                "lab {0} is up; run commands with: rvs lab exec --name {0} NODE -- CMD...\n\
                 remove it with: rvs lab down --name {0}",
                info.name
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down { which } => {
            let name = pick(&which)?;
            let info = down_by_name(&which.state_dir, &name).map_err(err)?;
            println!("lab {} removed", info.name);
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Show { which } => {
            let info = load(&which.state_dir, &pick(&which)?).map_err(err)?;
            print!("{}", info.describe());
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::List { state_dir } => {
            for name in list(&state_dir).map_err(err)? {
                match load(&state_dir, &name).map(|i| i.owner) {
                    Ok(Some(pid)) if !owner_alive(pid) => {
                        println!(
                            "{name} (orphaned: its process {pid} is gone; remove it with `rvs lab down`)"
                        )
                    }
                    Ok(Some(pid)) => println!("{name} (held by process {pid})"),
                    _ => println!("{name}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Exec {
            which,
            node,
            command,
        } => {
            let info = load(&which.state_dir, &pick(&which)?).map_err(err)?;
            let Some(ns) = info.namespace(&node) else {
                let nodes: Vec<&str> = info.namespaces.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "no node {node:?} in lab {} (nodes: {})",
                    info.name,
                    nodes.join(", ")
                ));
            };
            let status = Command::new("ip")
                .args(["netns", "exec", ns])
                .args(&command)
                .status()
                .map_err(|e| format!("ip netns exec {ns}: {e}"))?;
            io::stdout().flush().ok();
            Ok(match status.code() {
                Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
                None => ExitCode::FAILURE,
            })
        }
    }
}

/// `--name`, or the only lab there is.
fn pick(opts: &Which) -> Result<String, String> {
    if let Some(n) = &opts.name {
        return Ok(n.clone());
    }
    let labs = list(&opts.state_dir).map_err(|e| e.to_string())?;
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("no lab is up".into()),
        many => Err(format!(
            "several labs are up ({}): say which with --name",
            many.join(", ")
        )),
    }
}
