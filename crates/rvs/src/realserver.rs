//! `rvs realserver`: the real-server companion. It prepares a real server for the
//! direct-routing and IP-tunnelling forwarding methods, and for tunnelling it
//! decapsulates in userspace, because the kernels rvs runs on may have no `ipip` module.
//!
//! - `dr`: each VIP on `lo` (/32 or /128) and the ARP sysctls `arp_ignore=1`,
//!   `arp_announce=2`, so the real server accepts traffic for the VIP but never answers
//!   ARP for it — the seeds' "direct routing and the ARP limitation". `--undo` reverses it.
//! - `tun`: the same VIP setup, then a TUN device (`rvstun0`) with reverse-path
//!   filtering off, and a loop that takes IPIP (and GRE, GUE/FOU when asked) packets from raw
//!   and UDP sockets, finds the inner packet with `rvs_core::wire::encap::decap`, checks
//!   that its destination is one of the VIPs, and writes it to the TUN device, where the
//!   local stack receives it. Replies leave the normal way, from the VIP straight to the
//!   client (as in direct routing). Userspace decapsulation is used even where the kernel
//!   has a working `ipip` module: it is explicit, counted and testable.
//! - `agent`: the load agent for the director's weight feedback (`load_monitor`, the docs'
//!   "load feedback"): a UDP responder that answers `rvs-load?` with the load averages
//!   ([`crate::loadagent`]).
//!
//! Not here yet: IPv6 outer headers (IPv6 raw sockets do not deliver the outer header; an
//! IPv6 underlay needs AF_PACKET), and netlink instead of the `ip` program for the VIP
//! addresses.

use std::io;
use std::net::IpAddr;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::ExitCode;

use crate::loadagent;
use rvs_core::wire::checksum;
use rvs_core::wire::encap::{Tunnel, decap};
use rvs_core::wire::{finish_partial, ip_proto, parse_ip};
use rvs_sys::poll::wait_readable;
use rvs_sys::rawsock::{RawIpSocket, TermSignals, UdpDatagram, UdpTunnelSocket};
use rvs_sys::tun::Tun;

/// `rvs realserver`'s commands.
#[derive(Debug, clap::Subcommand)]
pub enum RealServerCommand {
    /// Set up a real server for direct routing (VIPs on lo, ARP sysctls).
    ///
    /// Prepares this host as a direct-routing real server: each VIP is added to lo (/32 for
    /// IPv4, /128 for IPv6) so the host accepts packets for it, and
    /// net.ipv4.conf.all.arp_ignore=1 and arp_announce=2 (also set on each interface named,
    /// by default on every interface but lo) so it never answers ARP for the VIP nor uses it
    /// as an ARP source: the director alone owns the VIP on the wire. Running it again
    /// changes nothing (idempotent). Needs CAP_NET_ADMIN (the addresses are set over
    /// netlink) and write access to /proc/sys; it acts in the network namespace it runs in.
    Dr(DrArgs),
    /// The dr setup plus userspace decapsulation of tunnelled traffic through TUN.
    ///
    /// Prepares this host as an IP-tunnelling real server and decapsulates in userspace:
    /// does the `dr` setup (VIPs on lo, ARP sysctls), creates the TUN device with
    /// reverse-path filtering off on it (the inner source is the client; if
    /// net.ipv4.conf.all.rp_filter is on, it is moved onto every other interface so their
    /// effective value stays), then receives IPIP packets (IP protocol 4; protocol 41 too
    /// when a VIP is IPv6) on raw sockets, finds the inner packet, drops it unless its
    /// destination is one of the VIPs, and writes it to the TUN device so the local stack
    /// delivers it. Replies leave normally, from the VIP straight to the client. Runs until
    /// SIGTERM or SIGINT, then logs its counters (decapsulated, dropped by reason) and
    /// removes the TUN device; the VIPs stay on lo (`rvs realserver dr --undo` removes
    /// them). The kernel's own ipip/gre modules are not used even where they exist.
    Tun(TunArgs),
    /// Answer the director's load queries (load_monitor weight feedback) over UDP.
    ///
    /// A UDP datagram holding exactly `rvs-load?` gets the answer
    /// `rvs-load <load1> <load5> <load15>\n`, the first three fields of /proc/loadavg. Any
    /// other datagram gets no answer and is counted as a bad request; when the load file
    /// cannot be read the request goes unanswered (the director then treats the agent as
    /// silent). It answers whoever can reach it, so bind it to the address the director
    /// uses. Runs until SIGTERM or SIGINT, then logs its counters. Try it with:
    /// printf 'rvs-load?' | nc -u -w1 HOST 5391
    Agent(loadagent::AgentOptions),
}

/// `rvs realserver dr`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct DrArgs {
    /// A virtual IP address (IPv4 or IPv6); repeat for several.
    #[arg(long = "vip", value_name = "IP", required = true, value_parser = parse_vip)]
    pub vips: Vec<IpAddr>,
    /// Also set the ARP sysctls on interface NAME (repeatable); default: every interface in
    /// /proc/sys/net/ipv4/conf except lo (`all` is always set, and the kernel uses the
    /// larger of `all` and the interface's value).
    #[arg(long = "iface", value_name = "NAME")]
    pub ifaces: Vec<String>,
    /// Reverse it: remove the VIPs from lo and set arp_ignore and arp_announce back to the
    /// kernel defaults (0) on `all` and the same interfaces.
    #[arg(long)]
    pub undo: bool,
}

/// `rvs realserver tun`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct TunArgs {
    /// A virtual IP address (IPv4 or IPv6); repeat for several.
    #[arg(long = "vip", value_name = "IP", required = true, value_parser = parse_vip)]
    pub vips: Vec<IpAddr>,
    /// Also decapsulate GRE (IP protocol 47; RFC 2784 with RFC 2890 key and sequence
    /// fields; a packet whose GRE checksum is wrong is dropped).
    #[arg(long)]
    pub gre: bool,
    /// Also decapsulate GUE (variant 0, with remote checksum offload) and FOU (GUE variant
    /// 1) arriving on UDP port N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub gue_port: Option<u16>,
    /// The TUN device's name.
    #[arg(long, value_name = "NAME", default_value = "rvstun0")]
    pub tun_name: String,
}

/// A `--vip`: an address that can be a virtual IP.
fn parse_vip(v: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = v.parse().map_err(|_| "not an IP address".to_owned())?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(format!("{ip} cannot be a virtual IP address"));
    }
    Ok(ip)
}

/// `rvs realserver COMMAND`: exit 0, or 1 (with the reason on stderr) when it cannot be
/// done. Usage errors (exit 2) are clap's, before this.
pub fn main(cmd: RealServerCommand) -> ExitCode {
    let (name, result) = match cmd {
        RealServerCommand::Dr(a) => ("dr", run_dr(&Opts::from(a))),
        RealServerCommand::Tun(a) => ("tun", run_tun(&Opts::from(a))),
        RealServerCommand::Agent(o) => ("agent", loadagent::run(&o)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs realserver {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone, PartialEq, Eq)]
struct Opts {
    vips: Vec<IpAddr>,
    ifaces: Option<Vec<String>>,
    undo: bool,
    gre: bool,
    gue_port: Option<u16>,
    tun_name: String,
}

/// Each VIP once, in the order given.
fn dedup(vips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(vips.len());
    for ip in vips {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

impl From<DrArgs> for Opts {
    fn from(a: DrArgs) -> Self {
        Opts {
            vips: dedup(a.vips),
            ifaces: (!a.ifaces.is_empty()).then_some(a.ifaces),
            undo: a.undo,
            gre: false,
            gue_port: None,
            tun_name: String::new(),
        }
    }
}

impl From<TunArgs> for Opts {
    fn from(a: TunArgs) -> Self {
        Opts {
            vips: dedup(a.vips),
            ifaces: None,
            undo: false,
            gre: a.gre,
            gue_port: a.gue_port,
            tun_name: a.tun_name,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Direct-routing setup

fn vip_prefix(vip: IpAddr) -> u8 {
    if vip.is_ipv4() { 32 } else { 128 }
}

/// Whether `vip` (as a /32 or /128) is on lo (`ip addr show dev lo to VIP/LEN`, over
/// netlink).
fn vip_on_lo(vip: IpAddr) -> Result<bool, String> {
    let lo = rvs_sys::iface::if_index("lo").map_err(|e| e.to_string())?;
    Ok(rvs_sys::netlink::addresses()
        .map_err(|e| e.to_string())?
        .iter()
        .any(|a| a.index == lo && a.addr == vip && a.prefix == vip_prefix(vip)))
}

fn write_sysctl(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot set {path} = {value}: {e}"))
}

/// The interfaces whose ARP sysctls are set: the ones named, or all but lo.
fn arp_ifaces(opts: &Opts) -> Result<Vec<String>, String> {
    if let Some(v) = &opts.ifaces {
        return Ok(v.clone());
    }
    let dir = "/proc/sys/net/ipv4/conf";
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {dir}: {e}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !matches!(n.as_str(), "all" | "default" | "lo"))
        .collect();
    v.sort();
    Ok(v)
}

fn set_arp_sysctls(ifaces: &[String], ignore: &str, announce: &str) -> Result<(), String> {
    // The kernel applies the larger of conf/all and conf/IFACE for both settings
    // (`IN_DEV_ARP_IGNORE` / `IN_DEV_ARP_ANNOUNCE` use IN_DEV_MAXCONF), so `all` decides;
    // the interfaces are set too, as the LVS-DR recipes do, for tools that read them.
    for name in std::iter::once("all").chain(ifaces.iter().map(String::as_str)) {
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{name}/arp_ignore"),
            ignore,
        )?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{name}/arp_announce"),
            announce,
        )?;
    }
    Ok(())
}

/// VIPs on lo and the ARP sysctls; idempotent.
fn dr_setup(opts: &Opts) -> Result<(), String> {
    let ifaces = arp_ifaces(opts)?;
    // Sysctls first: from the moment a VIP is local the host must not answer ARP for it.
    set_arp_sysctls(&ifaces, "1", "2")?;
    for &vip in &opts.vips {
        if !vip_on_lo(vip)? {
            rvs_sys::netlink::replace_address("lo", vip, vip_prefix(vip), None)
                .map_err(|e| e.to_string())?;
        }
    }
    eprintln!(
        "rvs realserver: VIPs on lo: {}; arp_ignore=1 arp_announce=2 on all{}",
        list(&opts.vips),
        ifaces.iter().map(|i| format!(", {i}")).collect::<String>()
    );
    Ok(())
}

fn run_dr(opts: &Opts) -> Result<(), String> {
    if !opts.undo {
        return dr_setup(opts);
    }
    let ifaces = arp_ifaces(opts)?;
    // VIPs first, then the sysctls: never a local VIP while the host would answer ARP.
    for &vip in &opts.vips {
        if vip_on_lo(vip)? {
            rvs_sys::netlink::delete_address("lo", vip, vip_prefix(vip))
                .map_err(|e| e.to_string())?;
        }
    }
    set_arp_sysctls(&ifaces, "0", "0")?;
    eprintln!(
        "rvs realserver: removed from lo: {}; arp_ignore=0 arp_announce=0",
        list(&opts.vips)
    );
    Ok(())
}

fn list(vips: &[IpAddr]) -> String {
    vips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// Decapsulation (sans-IO: bytes in, a verdict out)

/// Why a received packet was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropReason {
    /// The outer packet is not a tunnel packet `decap` knows (e.g. GRE of another type).
    NotTunnel,
    /// The outer or tunnel headers are malformed.
    Malformed,
    /// The GRE checksum is present and wrong.
    BadGreChecksum,
    /// The inner packet is malformed (or its remote checksum cannot be finished).
    MalformedInner,
    /// The inner destination is not one of the VIPs.
    NotVip,
    /// Larger than the receive buffer.
    Truncated,
    /// Writing to the TUN device failed.
    TunWrite,
}

impl DropReason {
    const ALL: [DropReason; 7] = [
        DropReason::NotTunnel,
        DropReason::Malformed,
        DropReason::BadGreChecksum,
        DropReason::MalformedInner,
        DropReason::NotVip,
        DropReason::Truncated,
        DropReason::TunWrite,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DropReason::NotTunnel => "not-a-tunnel",
            DropReason::Malformed => "malformed",
            DropReason::BadGreChecksum => "bad-gre-checksum",
            DropReason::MalformedInner => "malformed-inner",
            DropReason::NotVip => "not-a-vip",
            DropReason::Truncated => "truncated",
            DropReason::TunWrite => "tun-write-error",
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counters {
    decapsulated: u64,
    dropped: [u64; DropReason::ALL.len()],
    /// Packets the local stack routed into the TUN device (read and discarded).
    tun_outbound: u64,
}

impl Counters {
    fn drop(&mut self, r: DropReason) {
        self.dropped[r as usize] += 1;
    }

    fn dropped(&self, r: DropReason) -> u64 {
        self.dropped[r as usize]
    }
}

impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decapsulated {}; dropped:", self.decapsulated)?;
        for r in DropReason::ALL {
            write!(f, " {} {}", r.as_str(), self.dropped(r))?;
        }
        write!(f, "; tun-outbound {}", self.tun_outbound)
    }
}

/// The decision part of the loop: which VIPs are served, and the GUE port.
#[derive(Debug)]
struct Decapsulator {
    vips: Vec<IpAddr>,
    gue_port: Option<u16>,
}

impl Decapsulator {
    /// Finds the inner packet of the tunnel packet `l3` (from its outer IP header on) and
    /// returns its range in `l3` if it is to be delivered. Finishes a GUE remote checksum
    /// in place. Allocates nothing.
    fn inner(&self, l3: &mut [u8]) -> Result<Range<usize>, DropReason> {
        let d = match decap(l3, self.gue_port) {
            Ok(Some(d)) => d,
            Ok(None) => return Err(DropReason::NotTunnel),
            Err(_) => return Err(DropReason::Malformed),
        };
        let inner = &mut l3[d.inner.clone()];
        match d.tunnel {
            Tunnel::Gre {
                checksum_ok: Some(false),
            } => return Err(DropReason::BadGreChecksum),
            Tunnel::Gue {
                remcsum: Some((start, field)),
            } => {
                let offset = usize::from(field)
                    .checked_sub(usize::from(start))
                    .ok_or(DropReason::MalformedInner)?;
                finish_partial(inner, usize::from(start), offset)
                    .map_err(|_| DropReason::MalformedInner)?;
            }
            _ => {}
        }
        let p = parse_ip(inner).map_err(|_| DropReason::MalformedInner)?;
        if !self.vips.contains(&p.dst) {
            return Err(DropReason::NotVip);
        }
        // Cut link padding or trailing bytes: the TUN device gets exactly the IP packet.
        Ok(d.inner.start..d.inner.start + usize::from(p.l3_len))
    }
}

/// Room in front of a UDP payload for the outer IPv4 and UDP headers put back.
const UDP_HEADROOM: usize = 28;

/// A UDP socket hands over the payload only, while `decap` reads a packet from its outer
/// IP header on: write an outer IPv4 + UDP header (the kernel has already checked the
/// real ones, and the UDP checksum) into `hdr` for the datagram `d` received on `port`.
fn put_back_udp_headers(hdr: &mut [u8; UDP_HEADROOM], d: &UdpDatagram, port: u16) {
    let total = (UDP_HEADROOM + d.len) as u16;
    hdr.fill(0);
    hdr[0] = 0x45;
    hdr[2..4].copy_from_slice(&total.to_be_bytes());
    hdr[8] = 64;
    hdr[9] = ip_proto::UDP;
    hdr[12..16].copy_from_slice(&d.src.ip().octets());
    hdr[16..20].copy_from_slice(&d.dst.octets());
    let c = !checksum::sum(&hdr[..20]);
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
    hdr[20..22].copy_from_slice(&d.src.port().to_be_bytes());
    hdr[22..24].copy_from_slice(&port.to_be_bytes());
    hdr[24..26].copy_from_slice(&(total - 20).to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// The `tun` command: setup, then the loop

fn read_sysctl(path: &str) -> Result<u32, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    s.trim()
        .parse()
        .map_err(|_| format!("{path} holds {:?}, not a number", s.trim()))
}

/// Turns reverse-path filtering off for `tun` while keeping every other interface's
/// effective setting. The inner source is the client, whose route leaves through another
/// interface, and a TUN device without an IPv4 address fails even loose mode
/// (`__fib_validate_source` sends an address-less device to its "last resort", which
/// rejects whenever rp_filter is on). The kernel applies the larger of conf/all and
/// conf/DEV, so when `all` is on it is lowered to 0 after raising each other interface
/// (and `default`, for interfaces to come) to at least its old value: their effective
/// value stays what it was. This is the LVS-TUN recipe (`rp_filter` 0 on `tunl0` and
/// `all`) without its side effect.
fn rp_filter_off(tun: &str) -> Result<(), String> {
    let conf = "/proc/sys/net/ipv4/conf";
    write_sysctl(&format!("{conf}/{tun}/rp_filter"), "0")?;
    let all = read_sysctl(&format!("{conf}/all/rp_filter"))?;
    if all == 0 {
        return Ok(());
    }
    let names = std::fs::read_dir(conf)
        .map_err(|e| format!("cannot list {conf}: {e}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "all" && n != tun);
    for name in names {
        let path = format!("{conf}/{name}/rp_filter");
        if read_sysctl(&path)? < all {
            write_sysctl(&path, &all.to_string())?;
        }
    }
    write_sysctl(&format!("{conf}/all/rp_filter"), "0")?;
    eprintln!(
        "rvs realserver tun: net.ipv4.conf.all.rp_filter {all} -> 0, each interface raised \
         to at least {all} (effective values unchanged), {tun} 0"
    );
    Ok(())
}

/// Most packets taken from one socket per wake-up, so one busy tunnel cannot starve the
/// others or the signal descriptor.
const BATCH: usize = 64;

fn io_err(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn run_tun(opts: &Opts) -> Result<(), String> {
    // Before anything else, so a SIGTERM during setup is queued rather than fatal.
    let signals = TermSignals::new().map_err(io_err("signal setup"))?;
    for kernel_dev in ["tunl0", "gre0"] {
        if rvs_sys::iface::if_index(kernel_dev).is_ok() {
            eprintln!(
                "rvs realserver tun: note: {kernel_dev} exists, so the kernel has its own \
                 tunnel module; rvs decapsulates in userspace anyway. Keep {kernel_dev} down, \
                 or the stack may receive each packet twice."
            );
        }
    }
    dr_setup(opts)?;

    let ipip = RawIpSocket::open_v4(ip_proto::IPIP).map_err(io_err("IPIP socket"))?;
    let ip6 = if opts.vips.iter().any(IpAddr::is_ipv6) {
        Some(RawIpSocket::open_v4(ip_proto::IPV6).map_err(io_err("IPv6-in-IPv4 socket"))?)
    } else {
        None
    };
    let gre = if opts.gre {
        Some(RawIpSocket::open_v4(ip_proto::GRE).map_err(io_err("GRE socket"))?)
    } else {
        None
    };
    let gue = match opts.gue_port {
        Some(p) => Some(UdpTunnelSocket::bind_v4(p).map_err(io_err("GUE socket"))?),
        None => None,
    };
    let tun = Tun::create(&opts.tun_name).map_err(io_err("TUN device"))?;
    rp_filter_off(tun.name())?;
    tun.set_up().map_err(io_err("TUN device up"))?;

    let raws: Vec<&RawIpSocket> = [Some(&ipip), ip6.as_ref(), gre.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    eprintln!(
        "rvs realserver tun: decapsulating IPIP{}{}{} for {} into {}",
        if ip6.is_some() { ", IPv6-in-IP" } else { "" },
        if gre.is_some() { ", GRE" } else { "" },
        opts.gue_port
            .map(|p| format!(", GUE/FOU on udp/{p}"))
            .unwrap_or_default(),
        list(&opts.vips),
        tun.name()
    );

    let dec = Decapsulator {
        vips: opts.vips.clone(),
        gue_port: opts.gue_port,
    };
    let mut counters = Counters::default();
    let stopped_by = decap_loop(&signals, &tun, &raws, gue.as_ref(), &dec, &mut counters);
    eprintln!("rvs realserver tun: {counters}");
    let signo = stopped_by?;
    eprintln!(
        "rvs realserver tun: stopped by signal {signo}; {} removed",
        tun.name()
    );
    Ok(())
}

/// Runs until SIGTERM/SIGINT (returns its number). One buffer for every packet.
fn decap_loop(
    signals: &TermSignals,
    tun: &Tun,
    raws: &[&RawIpSocket],
    gue: Option<&UdpTunnelSocket>,
    dec: &Decapsulator,
    counters: &mut Counters,
) -> Result<i32, String> {
    // [signal, tun, raw sockets..., gue]
    let mut fds: Vec<BorrowedFd<'_>> = vec![signals.as_fd(), tun.as_fd()];
    fds.extend(raws.iter().map(|r| r.as_fd()));
    fds.extend(gue.map(|g| g.as_fd()));
    let mut ready = vec![false; fds.len()];
    let mut buf = vec![0u8; UDP_HEADROOM + 65536];

    loop {
        wait_readable(&fds, &mut ready, None).map_err(io_err("wait"))?;
        if ready[0]
            && let Some(signo) = signals.take().map_err(io_err("signalfd"))?
        {
            return Ok(signo);
        }
        if ready[1] {
            for _ in 0..BATCH {
                match tun.read(&mut buf) {
                    Ok(Some(_)) => counters.tun_outbound += 1,
                    Ok(None) => break,
                    Err(e) => return Err(format!("TUN read: {e}")),
                }
            }
        }
        for (raw, _) in raws.iter().zip(&ready[2..]).filter(|(_, r)| **r) {
            for _ in 0..BATCH {
                let n = match raw.recv(&mut buf) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) => return Err(format!("raw socket receive: {e}")),
                };
                if n > buf.len() {
                    counters.drop(DropReason::Truncated);
                    continue;
                }
                deliver(dec, tun, &mut buf[..n], counters);
            }
        }
        if let Some(g) = gue
            && ready[2 + raws.len()]
        {
            for _ in 0..BATCH {
                let (hdr, payload) = buf.split_at_mut(UDP_HEADROOM);
                let d = match g.recv(payload) {
                    Ok(Some(d)) => d,
                    Ok(None) => break,
                    Err(e) => return Err(format!("GUE socket receive: {e}")),
                };
                if d.len > payload.len() || UDP_HEADROOM + d.len > usize::from(u16::MAX) {
                    counters.drop(DropReason::Truncated);
                    continue;
                }
                let hdr: &mut [u8; UDP_HEADROOM] = hdr.try_into().expect("split at headroom");
                put_back_udp_headers(hdr, &d, g.port());
                deliver(dec, tun, &mut buf[..UDP_HEADROOM + d.len], counters);
            }
        }
    }
}

fn deliver(dec: &Decapsulator, tun: &Tun, l3: &mut [u8], counters: &mut Counters) {
    match dec.inner(l3) {
        Ok(r) => match tun.write(&l3[r]) {
            Ok(()) => counters.decapsulated += 1,
            Err(_) => counters.drop(DropReason::TunWrite),
        },
        Err(reason) => counters.drop(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::wire::encap::{GueOptions, Outer, encap_gre, encap_gue, encap_ipip};
    use rvs_core::wire::frame::Frame;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const VIP: [u8; 4] = [10, 0, 0, 100];

    /// A minimal IPv4/UDP packet with a zero (absent) UDP checksum.
    fn inner_udp(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 28 + 4];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&32u16.to_be_bytes());
        p[8] = 64;
        p[9] = ip_proto::UDP;
        p[12..16].copy_from_slice(&[192, 0, 2, 1]);
        p[16..20].copy_from_slice(&dst);
        let c = !checksum::sum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..22].copy_from_slice(&1234u16.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        p[24..26].copy_from_slice(&12u16.to_be_bytes());
        p[28..].copy_from_slice(b"ping");
        p
    }

    fn wrap(inner: &[u8], f: impl Fn(&mut Frame<'_>, &Outer)) -> Vec<u8> {
        let mut buf = vec![0u8; 64 + inner.len()];
        buf[64..].copy_from_slice(inner);
        let mut frame = Frame::new(&mut buf, 64, inner.len()).unwrap();
        let outer = Outer::for_inner(
            inner,
            Ipv4Addr::new(10, 1, 0, 1).into(),
            Ipv4Addr::new(10, 1, 0, 2).into(),
            1,
            true,
        )
        .unwrap();
        f(&mut frame, &outer);
        frame.data().to_vec()
    }

    fn dec(gue_port: Option<u16>) -> Decapsulator {
        Decapsulator {
            vips: vec![Ipv4Addr::from(VIP).into()],
            gue_port,
        }
    }

    /// `rvs realserver ARGS` through clap, as the binary parses it.
    fn parse(line: &str) -> Result<Opts, clap::Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            c: RealServerCommand,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("realserver").chain(line.split_whitespace()),
        )?;
        Ok(match cli.c {
            RealServerCommand::Dr(a) => Opts::from(a),
            RealServerCommand::Tun(a) => Opts::from(a),
            RealServerCommand::Agent(_) => panic!("not dr or tun"),
        })
    }

    #[test]
    fn options_parse_and_refuse() {
        let o =
            parse("tun --vip 10.0.0.100 --vip=2001:db8::1 --vip 10.0.0.100 --gre --gue-port 6080")
                .unwrap();
        assert_eq!(o.vips.len(), 2, "a repeated VIP counts once");
        assert!(o.gre);
        assert_eq!(o.gue_port, Some(6080));
        assert_eq!(o.tun_name, "rvstun0");
        let o = parse("dr --vip 10.0.0.1 --iface eth0 --undo").unwrap();
        assert_eq!(o.ifaces, Some(vec!["eth0".to_owned()]));
        assert!(o.undo);
        assert_eq!(parse("dr --vip 10.0.0.1").unwrap().ifaces, None);
        assert_eq!(
            parse("dr --help").unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
        for bad in [
            "dr",
            "dr --vip 10.0.0.1 --gre",
            "tun --vip 10.0.0.1 --undo",
            "dr --vip nope",
            "dr --vip 0.0.0.0",
            "tun --vip 10.0.0.1 --gue-port 0",
            "dr --vip",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn ipip_to_a_vip_is_delivered_exactly() {
        let inner = inner_udp(VIP);
        let mut pkt = wrap(&inner, |f, o| encap_ipip(f, o).unwrap());
        pkt.extend_from_slice(&[0; 6]); // trailing bytes are not delivered
        let r = dec(None).inner(&mut pkt).unwrap();
        assert_eq!(&pkt[r], &inner[..]);
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let d = dec(None);
        let mut other = wrap(&inner_udp([10, 0, 0, 99]), |f, o| encap_ipip(f, o).unwrap());
        assert_eq!(d.inner(&mut other), Err(DropReason::NotVip));
        let mut plain = inner_udp(VIP);
        assert_eq!(d.inner(&mut plain), Err(DropReason::NotTunnel));
        let mut short = wrap(&inner_udp(VIP), |f, o| encap_ipip(f, o).unwrap());
        short.truncate(24);
        assert_eq!(d.inner(&mut short), Err(DropReason::Malformed));
        let mut gre = wrap(&inner_udp(VIP), |f, o| encap_gre(f, o, true).unwrap());
        let last = gre.len() - 1;
        gre[last] ^= 0xff;
        assert_eq!(d.inner(&mut gre), Err(DropReason::BadGreChecksum));

        let mut c = Counters::default();
        c.drop(DropReason::NotVip);
        c.decapsulated = 3;
        let s = c.to_string();
        assert!(
            s.contains("decapsulated 3") && s.contains("not-a-vip 1"),
            "{s}"
        );
    }

    #[test]
    fn gre_to_a_vip_is_delivered() {
        let inner = inner_udp(VIP);
        let mut pkt = wrap(&inner, |f, o| encap_gre(f, o, true).unwrap());
        let r = dec(None).inner(&mut pkt).unwrap();
        assert_eq!(&pkt[r], &inner[..]);
    }

    #[test]
    fn gue_remote_checksum_offload_is_finished_before_delivery() {
        use rvs_core::wire::frame::CsumStatus;
        use rvs_core::wire::l4::{fill_l4_checksum, partial_seed_v4};
        let mut inner = inner_udp(VIP);
        let seed = partial_seed_v4([192, 0, 2, 1].into(), VIP.into(), ip_proto::UDP, 12);
        inner[26..28].copy_from_slice(&seed.to_be_bytes());
        let mut complete = inner.clone();
        assert!(fill_l4_checksum(&mut complete).unwrap());

        let mut buf = vec![0u8; 64 + inner.len()];
        buf[64..].copy_from_slice(&inner);
        let mut f = Frame::new(&mut buf, 64, inner.len()).unwrap();
        f.set_csum(CsumStatus::Partial {
            start: 20,
            offset: 6,
        });
        let outer = Outer::for_inner(
            &inner,
            Ipv4Addr::new(10, 1, 0, 1).into(),
            Ipv4Addr::new(10, 1, 0, 2).into(),
            1,
            true,
        )
        .unwrap();
        let g = GueOptions {
            src_port: 40000,
            dst_port: 6080,
            csum: true,
            remcsum: true,
        };
        encap_gue(&mut f, &outer, &g).unwrap();
        let mut pkt = f.data().to_vec();
        assert_eq!(pkt[28] & 0x1f, 2, "GUE header carries the remcsum option");
        assert_ne!(
            &pkt[pkt.len() - 32..],
            &complete[..],
            "still partial on the wire"
        );
        let r = dec(Some(6080)).inner(&mut pkt).unwrap();
        assert_eq!(&pkt[r], &complete[..], "inner UDP checksum finished");
    }

    #[test]
    fn gue_payload_with_headers_put_back_is_delivered() {
        let inner = inner_udp(VIP);
        let pkt = wrap(&inner, |f, o| {
            let g = GueOptions {
                src_port: 40000,
                dst_port: 6080,
                csum: false,
                remcsum: false,
            };
            encap_gue(f, o, &g).unwrap()
        });
        // What the UDP socket hands over: the payload after outer IP (20) and UDP (8).
        let payload = &pkt[28..];
        let mut buf = vec![0u8; UDP_HEADROOM + payload.len()];
        buf[UDP_HEADROOM..].copy_from_slice(payload);
        let d = UdpDatagram {
            len: payload.len(),
            src: SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 1), 40000),
            dst: Ipv4Addr::new(10, 1, 0, 2),
        };
        let hdr: &mut [u8; UDP_HEADROOM] = (&mut buf[..UDP_HEADROOM]).try_into().unwrap();
        put_back_udp_headers(hdr, &d, 6080);
        assert_eq!(checksum::sum(&buf[..20]), 0xffff, "valid header checksum");
        let r = dec(Some(6080)).inner(&mut buf).unwrap();
        assert_eq!(&buf[r], &inner[..]);
        // Not the GUE port: not a tunnel.
        assert_eq!(dec(Some(6081)).inner(&mut buf), Err(DropReason::NotTunnel));
    }
}
