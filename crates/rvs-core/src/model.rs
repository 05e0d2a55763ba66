//! The configuration model: what a director is told to do.
//!
//! Every configuration format (Piranha `lvs.cf`, keepalived.conf, ipvsadm rules, the native
//! TOML) maps to these types; the engine reads nothing else. Values here are validated
//! ([`Config::validate`]) but carry no run-time state: connection counts, overload flags and
//! scheduler positions live in [`crate::dest`], [`crate::sched`] and [`crate::conn`].
//!
//! Names follow ipvsadm and the kernel (`include/uapi/linux/ip_vs.h`): a *virtual service*
//! (`-A`) has *real servers* (`-a`), each with a forwarding method, weight and thresholds.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a virtual service or real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits (32 or 128): the longest prefix.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// Transport protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// SCTP (IP protocol 132): scheduled on INIT, run through the kernel's SCTP state
    /// table (`ip_vs_proto_sctp.c`).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol for an IP protocol number, if it is one a service can carry.
    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// How a virtual service is addressed: `-t|-u addr:port` or `-f mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// A protocol, virtual IP and port (port 0 = all ports, persistent services only).
    Addr {
        /// TCP, UDP or SCTP.
        protocol: Protocol,
        /// The virtual IP (VIP).
        addr: IpAddr,
        /// The virtual port.
        port: u16,
    },
    /// A firewall-mark service: matches packets the classifier marked with `mark`.
    Fwmark {
        /// The mark (non-zero).
        mark: u32,
        /// Which family of packets the mark service takes (`-6`).
        family: Family,
    },
}

impl ServiceKey {
    /// The address family of the service.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

/// The 14 IPVS schedulers (`-s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (the default).
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl SchedulerKind {
    /// Every scheduler, in the order above.
    pub const ALL: [SchedulerKind; 14] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Mh,
        SchedulerKind::Twos,
    ];

    /// The kernel's name (`ip_vs_<name>.ko`, ipvsadm's `-s` argument).
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Lblc => "lblc",
            SchedulerKind::Lblcr => "lblcr",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Fo => "fo",
            SchedulerKind::Ovf => "ovf",
            SchedulerKind::Mh => "mh",
            SchedulerKind::Twos => "twos",
        }
    }

    /// The scheduler of a kernel name.
    pub fn from_name(name: &str) -> Option<SchedulerKind> {
        SchedulerKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Default for SchedulerKind {
    /// wlc, ipvsadm's and keepalived's default.
    fn default() -> Self {
        SchedulerKind::Wlc
    }
}

/// Scheduler flags (`-b`): bit values as in `IP_VS_SVC_F_SCHED1..3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags(pub u8);

impl SchedFlags {
    /// flag-1: sh-fallback / mh-fallback.
    pub const FLAG_1: u8 = 1;
    /// flag-2: sh-port / mh-port.
    pub const FLAG_2: u8 = 2;
    /// flag-3: unused by the kernel's schedulers.
    pub const FLAG_3: u8 = 4;

    /// sh/mh fallback: look for another server when the hashed one is unavailable.
    pub fn fallback(self) -> bool {
        self.0 & Self::FLAG_1 != 0
    }

    /// sh/mh port: hash the client port as well as its address.
    pub fn port(self) -> bool {
        self.0 & Self::FLAG_2 != 0
    }
}

/// Persistence (`-p timeout -M netmask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Template timeout in seconds (1..=2678400; ipvsadm's default 360).
    pub timeout: u32,
    /// Client-address prefix length the template covers (32 / 128 = one client).
    pub prefix: u8,
}

impl Persistence {
    /// The kernel's bounds on the timeout (`IP_VS_MAX_PERSIST`... ipvsadm accepts 1..=2678400).
    pub const MAX_TIMEOUT: u32 = 2_678_400;
    /// ipvsadm's default timeout.
    pub const DEFAULT_TIMEOUT: u32 = 360;
}

/// Encapsulation used by the tunnelling method (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelKind {
    /// IP in IP (RFC 2003), the default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation to a UDP port (`--tun-port`).
    Gue {
        /// Destination UDP port of the GUE packets.
        port: u16,
    },
    /// Generic Routing Encapsulation (RFC 2784).
    Gre,
}

/// Tunnel checksum option (`--tun-nocsum | --tun-csum | --tun-remcsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelCsum {
    /// No outer checksum (the default).
    #[default]
    NoCsum,
    /// Outer UDP/GRE checksum.
    Csum,
    /// Remote checksum offload (GUE only).
    RemCsum,
}

/// How packets reach a real server (`-g | -m | -i`, plus FullNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ForwardMethod {
    /// Masquerading (NAT): destination rewritten, replies return through the director.
    Masq,
    /// Direct routing (gatewaying): destination MAC rewritten; ipvsadm's default.
    #[default]
    DirectRoute,
    /// IP tunnelling.
    Tunnel {
        /// Encapsulation.
        kind: TunnelKind,
        /// Outer checksum option.
        csum: TunnelCsum,
    },
    /// Full NAT: destination and source rewritten (source from the local address pool), so
    /// real servers need no route back through the director.
    FullNat,
}

/// A real server of a virtual service (`-a -r addr:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RealServerConfig {
    /// The real server's address.
    pub addr: IpAddr,
    /// The real server's port (= the virtual port unless NAT/FullNAT remaps it).
    pub port: u16,
    /// Weight 0..=65535; 0 quiesces the server.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
    /// Forwarding method.
    pub method: ForwardMethod,
}

impl RealServerConfig {
    /// The largest weight the kernel accepts.
    pub const MAX_WEIGHT: u32 = 65_535;

    /// A real server with ipvsadm's defaults: weight 1, no thresholds, direct routing.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        RealServerConfig {
            addr,
            port,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            method: ForwardMethod::DirectRoute,
        }
    }
}

/// The Maglev table sizes the kernel offers (`CONFIG_IP_VS_MH_TAB_INDEX`), plus 65537 (the
/// Maglev paper's choice), all prime.
pub const MH_TABLE_SIZES: [u32; 11] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071,
];

/// A virtual service (`-A`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServiceConfig {
    /// Address or fwmark.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`, UDP and fwmark only).
    pub one_packet: bool,
    /// Maglev table size (a prime, see [`MH_TABLE_SIZES`]); only used by mh.
    pub mh_table_size: u32,
    /// Real servers in the order they were added (the kernel puts each new one at the head
    /// of its list; [`crate::dest`] reproduces that).
    pub real_servers: Vec<RealServerConfig>,
}

impl VirtualServiceConfig {
    /// The kernel's default Maglev table size.
    pub const DEFAULT_MH_TABLE_SIZE: u32 = 4093;

    /// A service with ipvsadm's defaults (wlc, no persistence) and no real servers.
    pub fn new(key: ServiceKey) -> Self {
        VirtualServiceConfig {
            key,
            scheduler: SchedulerKind::Wlc,
            flags: SchedFlags::default(),
            persistence: None,
            one_packet: false,
            mh_table_size: Self::DEFAULT_MH_TABLE_SIZE,
            real_servers: Vec::new(),
        }
    }
}

/// An IP prefix (`addr/len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address (host bits may be set; [`Prefix::contains`] masks them).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Prefix {
    /// Whether `a` lies in this prefix (false across families).
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask_v4(self.len);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask_v6(self.len);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// The IPv4 netmask of a prefix length (lengths over 32 clamp to 32).
pub fn mask_v4(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - l),
    }
}

/// The IPv6 netmask of a prefix length (lengths over 128 clamp to 128).
pub fn mask_v6(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - l),
    }
}

/// `addr` with the host bits beyond `len` cleared.
pub fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(len))),
    }
}

/// A firewall-mark classifier rule: packets matching it carry `mark` (what `iptables -t
/// mangle ... -j MARK` does for kernel LVS). Rules are tried in order; the first match wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FwmarkRule {
    /// Transport protocol, or any.
    pub protocol: Option<Protocol>,
    /// Destination prefix.
    pub dst: Prefix,
    /// Source prefix (iptables `-s`, nftables `ip saddr`), or any source.
    pub src: Option<Prefix>,
    /// Destination port range (inclusive); `0..=65535` for any.
    pub ports: (u16, u16),
    /// The mark to set (non-zero).
    pub mark: u32,
}

/// IPVS timeouts in seconds (`--set tcp tcpfin udp` and the per-state defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// TCP ESTABLISHED (`--set tcp`), default 900.
    pub tcp: u32,
    /// TCP FIN_WAIT (`--set tcpfin`), default 120.
    pub tcp_fin: u32,
    /// UDP (`--set udp`), default 300.
    pub udp: u32,
}

impl Default for Timeouts {
    /// The kernel's defaults (`tcp_timeouts[]`, `udp_timeouts[]`).
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// The sysctl-like switches of `/proc/sys/net/ipv4/vs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Switches {
    /// `expire_nodest_conn`: expire a connection whose real server is gone on its next packet
    /// (0 = drop such packets and keep the entry until it times out).
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`: stop honouring persistence templates whose real server
    /// has weight 0.
    pub expire_quiescent_template: bool,
    /// `sloppy_tcp`: create TCP connections on any packet, not only SYN.
    pub sloppy_tcp: bool,
    /// `conn_reuse_mode` (kernel default 1): bit 0 — a new SYN on an entry in TIME_WAIT or
    /// CLOSE is scheduled afresh instead of reusing the entry's real server; bit 1 — also
    /// on a FIN_WAIT entry of a direct-routing or tunnelled connection; 0 — always reuse.
    pub conn_reuse_mode: u8,
}

impl Default for Switches {
    /// The kernel's defaults: everything off, `conn_reuse_mode` 1.
    fn default() -> Self {
        Switches {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            conn_reuse_mode: 1,
        }
    }
}

/// IPVS's defence strategies against connection floods: the sysctls `amemthresh`,
/// `am_droprate`, `drop_entry`, `drop_packet` and `secure_tcp` of `/proc/sys/net/ipv4/vs/`
/// (Documentation/networking/ipvs-sysctl.rst; `update_defense_level()` in `ip_vs_ctl.c`).
/// Each mode is 0 (off), 1 (automatic, off now), 2 (automatic, on now) or 3 (always on);
/// "available memory" is the room left under the connection table's memory limit (see
/// [`crate::conn::defense`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Defense {
    /// `amemthresh`: the available-memory threshold, in 4 KiB pages (kernel default 1024).
    pub amemthresh: u32,
    /// `am_droprate`: `drop_packet` mode 3 drops one packet in this many (default 10).
    pub am_droprate: u32,
    /// `drop_entry`: randomly drop embryonic (and long-idle) connection entries.
    pub drop_entry: u8,
    /// `drop_packet`: drop a share of new-connection packets.
    pub drop_packet: u8,
    /// `secure_tcp`: the stricter TCP state table (`tcp_states_dos`) with shorter timeouts.
    pub secure_tcp: u8,
}

impl Default for Defense {
    /// The kernel's defaults: every strategy off, `amemthresh` 1024, `am_droprate` 10.
    fn default() -> Self {
        Defense {
            amemthresh: 1024,
            am_droprate: 10,
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
        }
    }
}

/// What to do when the connection table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TableFullPolicy {
    /// Refuse the new connection (count it as dropped); established ones are untouched.
    #[default]
    DropNew,
    /// Evict the entry closest to expiry among non-established ones, else refuse.
    EvictEmbryonic,
}

/// FullNAT's local address pool: the source addresses the director uses towards real servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LocalPool {
    /// Local addresses (each gives `port_range` ports per real server address/port).
    pub addrs: Vec<IpAddr>,
    /// Inclusive source-port range to allocate from.
    pub port_range: (u16, u16),
}

/// Which virtual services have the SYN proxy on (`director/synproxy`): all TCP services
/// forwarded by NAT or FullNAT, or the listed ones (DPVS: `syn_proxy` in a keepalived
/// `virtual_server`, `ipvsadm -A ... -j enable`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SynProxyConfig {
    /// Every TCP virtual service.
    pub all: bool,
    /// These virtual services (TCP ones; others are not proxied).
    pub services: Vec<ServiceKey>,
}

impl SynProxyConfig {
    /// Whether the configuration asks for the proxy on the service `key` (`all`, or the
    /// service listed); [`SynProxyConfig::applies`] says whether it runs there.
    pub fn covers(&self, key: &ServiceKey) -> bool {
        self.all || self.services.contains(key)
    }

    /// Whether the proxy runs for `svc`: asked for ([`SynProxyConfig::covers`]) and able to
    /// ([`VirtualServiceConfig::synproxy_capable`]). `all` skips the services it cannot
    /// serve (the readers warn); a listed service it cannot serve is refused by
    /// [`Config::validate`].
    pub fn applies(&self, svc: &VirtualServiceConfig) -> bool {
        self.covers(&svc.key) && svc.synproxy_capable()
    }
}

impl ForwardMethod {
    /// Whether the SYN proxy can serve a real server of this method: NAT and FullNAT
    /// replies come back through the director, which translates their sequence numbers;
    /// direct routing and tunnelling send them past it (DPVS's proxy has the same limit:
    /// `dp_vs_synproxy_synack_rcv()` keeps sequence state for NAT and FNAT only).
    pub fn carries_synproxy(self) -> bool {
        matches!(self, ForwardMethod::Masq | ForwardMethod::FullNat)
    }
}

impl VirtualServiceConfig {
    /// Whether the SYN proxy can serve this service: TCP (or a firewall-mark service, whose
    /// TCP connections it proxies) with every real server forwarded by a method that
    /// [carries it](ForwardMethod::carries_synproxy).
    pub fn synproxy_capable(&self) -> bool {
        !matches!(
            self.key,
            ServiceKey::Addr {
                protocol: Protocol::Udp | Protocol::Sctp,
                ..
            }
        ) && self
            .real_servers
            .iter()
            .all(|r| r.method.carries_synproxy())
    }

    /// The first real server the SYN proxy cannot serve (direct routing, tunnelling).
    pub fn synproxy_blocker(&self) -> Option<&RealServerConfig> {
        self.real_servers
            .iter()
            .find(|r| !r.method.carries_synproxy())
    }
}

/// SYN admission under overload (`director/shed.rs`, docs/operating.md): while the SYN
/// ring overflows, SYNs from sources that never completed a handshake are dropped but for
/// `budget` a second. An rvs addition; IPVS has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SynShed {
    /// On (the default): it acts only while the kernel would otherwise drop SYNs at random.
    pub enabled: bool,
    /// SYNs per second from unproven sources admitted while congested.
    pub budget: u32,
    /// Proven sources kept per family (IPv4 addresses, IPv6 /64s); allocated at start.
    pub proven: usize,
}

impl SynShed {
    /// The default budget, SYNs per second.
    pub const BUDGET: u32 = 2000;
    /// The default bound of proven sources per family.
    pub const PROVEN: usize = 65_536;
    /// The largest bound accepted (12 B a slot: 48 MiB per family).
    pub const PROVEN_MAX: usize = 1 << 22;
}

impl Default for SynShed {
    fn default() -> Self {
        SynShed {
            enabled: true,
            budget: SynShed::BUDGET,
            proven: SynShed::PROVEN,
        }
    }
}

/// The whole configuration of a director's forwarding: one immutable snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Virtual services, in the order they were added.
    pub services: Vec<VirtualServiceConfig>,
    /// Firewall-mark classifier rules, first match wins.
    pub fwmark_rules: Vec<FwmarkRule>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Behaviour switches.
    pub switches: Switches,
    /// Connection-table capacity (entries, templates included); 0 = the engine's default.
    pub conn_table_max: usize,
    /// Policy when the connection table is full.
    pub table_full: TableFullPolicy,
    /// Neighbour-table bound per family (Linux `gc_thresh3`); 0 = the engine's default
    /// (1024). Read when the engine starts.
    pub neigh_gc_thresh3: usize,
    /// Memory limit of each family's connection table in bytes; 0 = the engine's default.
    pub conn_table_bytes: usize,
    /// The defence strategies (`drop_entry`, `drop_packet`, `secure_tcp`).
    pub defense: Defense,
    /// FullNAT local address pool.
    pub local_pool: LocalPool,
    /// The SYN proxy (DPVS `syn_proxy`): which TCP services answer SYNs with SYN cookies.
    pub synproxy: SynProxyConfig,
    /// SYN admission under overload (`[syn_shed]`).
    pub syn_shed: SynShed,
}

/// Why a configuration was refused. The config layer maps these to file:line:column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Two virtual services with the same key.
    DuplicateService(ServiceKey),
    /// Two real servers with the same address and port in one service.
    DuplicateRealServer {
        /// The service.
        service: ServiceKey,
        /// The repeated real server.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
    /// Weight above 65535.
    WeightOutOfRange(u32),
    /// A lower threshold above the upper one (ipvsadm refuses it).
    ThresholdOrder {
        /// Upper threshold.
        upper: u32,
        /// Lower threshold.
        lower: u32,
    },
    /// Port 0 on a service that is not persistent ("Zero port specified for non-persistent
    /// service").
    ZeroPortNonPersistent(ServiceKey),
    /// One-packet scheduling on a TCP service ("One-Packet Scheduling is only for UDP virtual
    /// services").
    OnePacketTcp(ServiceKey),
    /// Persistence timeout outside 1..=2678400.
    PersistenceTimeout(u32),
    /// Persistence prefix longer than the family allows.
    PersistencePrefix(u8),
    /// A firewall mark of 0.
    ZeroFwmark,
    /// An mh table size that is not one of [`MH_TABLE_SIZES`].
    MhTableSize(u32),
    /// A real server of another family than its service, on a method other than tunnelling.
    FamilyMismatch {
        /// The service.
        service: ServiceKey,
        /// The real server.
        addr: IpAddr,
    },
    /// FullNAT needs a local address pool of the real server's family and a port range.
    NoLocalPool(IpAddr),
    /// A service the SYN proxy is explicitly on for has a real server forwarded by direct
    /// routing or tunnelling, whose replies bypass the director (rvs's rule, as its
    /// `ipvsadm -j` refuses it: [`ForwardMethod::carries_synproxy`]).
    SynProxyMethod {
        /// The service.
        service: ServiceKey,
        /// The real server.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::DuplicateService(k) => write!(f, "virtual service {k:?} defined twice"),
            ConfigError::DuplicateRealServer { addr, port, .. } => {
                write!(
                    f,
                    "real server {} defined twice in one service",
                    sock(*addr, *port)
                )
            }
            ConfigError::WeightOutOfRange(w) => write!(f, "weight {w} out of range 0..=65535"),
            ConfigError::ThresholdOrder { upper, lower } => write!(
                f,
                "lower threshold {lower} is above the upper threshold {upper}"
            ),
            ConfigError::ZeroPortNonPersistent(_) => {
                f.write_str("Zero port specified for non-persistent service")
            }
            ConfigError::OnePacketTcp(_) => {
                f.write_str("One-Packet Scheduling is only for UDP virtual services")
            }
            ConfigError::PersistenceTimeout(t) => {
                write!(f, "persistence timeout {t} out of range 1..=2678400")
            }
            ConfigError::PersistencePrefix(p) => write!(f, "persistence netmask /{p} too long"),
            ConfigError::ZeroFwmark => f.write_str("firewall mark must be non-zero"),
            ConfigError::MhTableSize(m) => {
                write!(f, "mh table size {m} is not one of {MH_TABLE_SIZES:?}")
            }
            ConfigError::FamilyMismatch { addr, .. } => write!(
                f,
                "real server {addr} is of another address family than its service \
                 (only tunnelling may cross families)"
            ),
            ConfigError::NoLocalPool(a) => write!(
                f,
                "FullNAT real server {a} needs a local address pool of its family"
            ),
            ConfigError::SynProxyMethod { addr, port, .. } => write!(
                f,
                "real server {} of a SYN-proxied service is forwarded by direct routing or \
                 tunnelling: its replies bypass the director, which must translate their \
                 sequence numbers (the SYN proxy needs NAT or FullNAT real servers)",
                sock(*addr, *port)
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `addr:port` as ipvsadm prints it (`[v6]:port` for IPv6).
pub fn sock(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl Config {
    /// Check the rules ipvsadm and the kernel enforce, and the ones rvs adds.
    /// Returns every problem found, in configuration order.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for svc in &self.services {
            if !seen.insert(svc.key) {
                errs.push(ConfigError::DuplicateService(svc.key));
            }
            validate_service(svc, &self.local_pool, &mut errs);
        }
        for rule in &self.fwmark_rules {
            if rule.mark == 0 {
                errs.push(ConfigError::ZeroFwmark);
            }
        }
        // An explicit per-service SYN proxy on a service it cannot serve (`all` skips it).
        for svc in &self.services {
            if self.synproxy.services.contains(&svc.key)
                && let Some(rs) = svc.synproxy_blocker()
            {
                errs.push(ConfigError::SynProxyMethod {
                    service: svc.key,
                    addr: rs.addr,
                    port: rs.port,
                });
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

fn validate_service(svc: &VirtualServiceConfig, pool: &LocalPool, errs: &mut Vec<ConfigError>) {
    let family = svc.key.family();
    match svc.key {
        ServiceKey::Addr { protocol, port, .. } => {
            if port == 0 && svc.persistence.is_none() {
                errs.push(ConfigError::ZeroPortNonPersistent(svc.key));
            }
            if svc.one_packet && protocol == Protocol::Tcp {
                errs.push(ConfigError::OnePacketTcp(svc.key));
            }
        }
        ServiceKey::Fwmark { mark, .. } => {
            if mark == 0 {
                errs.push(ConfigError::ZeroFwmark);
            }
        }
    }
    if let Some(p) = svc.persistence {
        if p.timeout == 0 || p.timeout > Persistence::MAX_TIMEOUT {
            errs.push(ConfigError::PersistenceTimeout(p.timeout));
        }
        if p.prefix > family.max_prefix() {
            errs.push(ConfigError::PersistencePrefix(p.prefix));
        }
    }
    if svc.scheduler == SchedulerKind::Mh && !MH_TABLE_SIZES.contains(&svc.mh_table_size) {
        errs.push(ConfigError::MhTableSize(svc.mh_table_size));
    }
    let mut seen = std::collections::HashSet::new();
    for rs in &svc.real_servers {
        if !seen.insert((rs.addr, rs.port)) {
            errs.push(ConfigError::DuplicateRealServer {
                service: svc.key,
                addr: rs.addr,
                port: rs.port,
            });
        }
        if rs.weight > RealServerConfig::MAX_WEIGHT {
            errs.push(ConfigError::WeightOutOfRange(rs.weight));
        }
        if rs.l_threshold > rs.u_threshold && rs.u_threshold != 0 {
            errs.push(ConfigError::ThresholdOrder {
                upper: rs.u_threshold,
                lower: rs.l_threshold,
            });
        }
        let tunnel = matches!(rs.method, ForwardMethod::Tunnel { .. });
        if Family::of(&rs.addr) != family && !tunnel {
            errs.push(ConfigError::FamilyMismatch {
                service: svc.key,
                addr: rs.addr,
            });
        }
        if rs.method == ForwardMethod::FullNat
            && (pool
                .addrs
                .iter()
                .all(|a| Family::of(a) != Family::of(&rs.addr))
                || pool.port_range.0 > pool.port_range.1
                || pool.port_range.0 == 0)
        {
            errs.push(ConfigError::NoLocalPool(rs.addr));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: v4("192.168.0.100"),
            port,
        }
    }

    #[test]
    fn scheduler_names_round_trip() {
        for k in SchedulerKind::ALL {
            assert_eq!(SchedulerKind::from_name(k.name()), Some(k));
        }
        assert_eq!(SchedulerKind::from_name("wlcx"), None);
    }

    #[test]
    fn prefix_contains_masks_host_bits() {
        let p = Prefix {
            addr: v4("10.1.2.3"),
            len: 24,
        };
        assert!(p.contains(v4("10.1.2.200")));
        assert!(!p.contains(v4("10.1.3.1")));
        assert!(!p.contains("::1".parse().unwrap()));
        assert_eq!(mask_addr(v4("10.1.2.3"), 0), v4("0.0.0.0"));
        assert_eq!(
            mask_addr("2001:db8::1".parse().unwrap(), 32),
            v4_6("2001:db8::")
        );
    }

    fn v4_6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn validate_reports_every_problem_in_order() {
        let mut svc = VirtualServiceConfig::new(tcp(0));
        svc.one_packet = true;
        let mut rs = RealServerConfig::new(v4("10.0.0.2"), 0);
        rs.weight = 70_000;
        svc.real_servers = vec![rs, rs];
        let cfg = Config {
            services: vec![svc.clone(), svc],
            ..Config::default()
        };
        let errs = cfg.validate().unwrap_err();
        assert_eq!(
            errs[..4],
            [
                ConfigError::ZeroPortNonPersistent(tcp(0)),
                ConfigError::OnePacketTcp(tcp(0)),
                ConfigError::WeightOutOfRange(70_000),
                ConfigError::DuplicateRealServer {
                    service: tcp(0),
                    addr: v4("10.0.0.2"),
                    port: 0
                },
            ]
        );
        assert!(errs.contains(&ConfigError::DuplicateService(tcp(0))));
        assert_eq!(
            ConfigError::OnePacketTcp(tcp(0)).to_string(),
            "One-Packet Scheduling is only for UDP virtual services"
        );
    }

    #[test]
    fn fullnat_needs_a_pool_of_the_family() {
        let mut svc = VirtualServiceConfig::new(tcp(80));
        let mut rs = RealServerConfig::new(v4("10.0.0.2"), 80);
        rs.method = ForwardMethod::FullNat;
        svc.real_servers.push(rs);
        let mut cfg = Config {
            services: vec![svc],
            ..Config::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            vec![ConfigError::NoLocalPool(v4("10.0.0.2"))]
        );
        cfg.local_pool = LocalPool {
            addrs: vec![v4("10.0.0.250")],
            port_range: (1024, 65535),
        };
        assert_eq!(cfg.validate(), Ok(()));
    }
}
