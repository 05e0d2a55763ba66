//! Start-up: the engine's view of the links, the kernel checks, the packet rings.

use crate::load::Plan;
use rvs_config::failover::FailoverConfig;
use rvs_core::director::{NetConfig, OwnedAddr, PortConfig, PortId};
use rvs_core::model::Prefix;
use rvs_sys::packet::{
    Fanout, FanoutMode, PacketConfig, PacketSocket, RingVersion, RxRingConfig, TxRingConfig,
};
use std::io;
use std::net::IpAddr;

/// Room in front of a frame for tunnel headers (outer IPv6 + UDP + GUE with options),
/// reserved in every RX slot (`PACKET_RESERVE`) so frames are rewritten in place.
pub(super) const HEADROOM: u32 = 128;

/// An RX slot: a GSO super-frame (64 KiB of IP + Ethernet) after the slot header, the
/// headroom and the vnet header; 17 pages.
pub(super) const RX_SLOT: u32 = 17 * 4096;

/// Build the engine's view of the links from the kernel's interfaces and routes.
pub(super) fn net_config(plan: &Plan) -> io::Result<NetConfig> {
    let mut ports = Vec::new();
    for (i, name) in plan.interfaces.iter().enumerate() {
        let mac = rvs_sys::iface::mac_address(name)?;
        let addrs = rvs_sys::iface::addresses(name)?
            .into_iter()
            .filter(|(a, _)| !is_link_local(a))
            .map(|(addr, len)| Prefix { addr, len })
            .collect();
        ports.push(PortConfig {
            id: PortId(i as u8),
            mac,
            addrs,
            mtu: u16::try_from(rvs_sys::iface::mtu(name)?).unwrap_or(u16::MAX),
        });
    }
    let mut owned = Vec::new();
    for (addr, dev) in &plan.owned {
        let Some(i) = plan.interfaces.iter().position(|n| n == dev) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address {addr} is on {dev}, which the daemon does not attach to"),
            ));
        };
        owned.push(OwnedAddr {
            addr: *addr,
            port: PortId(i as u8),
            mac: None,
        });
    }
    Ok(NetConfig {
        ports,
        routes: crate::kernel::routes()?,
        owned,
    })
}

pub(super) fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// TPACKET_V2 rings: every frame is handed over as soon as the kernel wrote it. With V3,
/// a frame waited in an unretired block for up to `retire_blk_tov` (≥ 1 ms) per hop, which
/// capped keep-alive request/response traffic (2 hops per round trip) at a fraction of
/// the kernel's NAT.
pub(super) fn socket_config() -> PacketConfig {
    PacketConfig {
        version: RingVersion::V2,
        rx: Some(RxRingConfig {
            // 15 slots of RX_SLOT per 1 MiB block, 480 slots.
            block_size: 1 << 20,
            block_count: 32,
            frame_size: RX_SLOT,
            retire_blk_tov_ms: 0,
            reserve: HEADROOM,
        }),
        tx: Some(TxRingConfig {
            frame_size: 1 << 17,
            frame_count: 128,
        }),
        vnet_hdr: true,
        qdisc_bypass: true,
        ignore_outgoing: true,
        promiscuous: false,
    }
}

/// The SYN ring: connections' first segments (TCP SYN without ACK) only, in small slots
/// (a SYN is under 2 KiB; 8,192 of them, 16 MiB), so a SYN flood fills this ring rather
/// than the main one, and a worker that fell behind still finds the frames of known
/// connections (ACKs completing SYN-proxy handshakes, requests, replies) on time.
pub(super) fn syn_socket_config() -> PacketConfig {
    PacketConfig {
        version: RingVersion::V2,
        rx: Some(RxRingConfig {
            block_size: 1 << 20,
            block_count: 16,
            frame_size: 2048,
            retire_blk_tov_ms: 0,
            reserve: HEADROOM,
        }),
        tx: None,
        vnet_hdr: true,
        qdisc_bypass: false,
        ignore_outgoing: true,
        promiscuous: false,
    }
}

/// Splits `main`'s interface into two rings: `main` keeps every frame but connections'
/// first segments, which go to a new SYN-only socket (a `PACKET_FANOUT_CBPF` group of the
/// two, [`rvs_sys::packet::SYN_SPLIT`]). None, with a warning, where the kernel refuses
/// the group (`PACKET_FANOUT_FLAG_IGNORE_OUTGOING` needs Linux 6.9): `main` then receives
/// everything, as before.
pub(super) fn open_syn_ring(main: &PacketSocket) -> io::Result<Option<PacketSocket>> {
    let syn = PacketSocket::open(main.ifname(), &syn_socket_config())?;
    let fanout = |group, unique_id| Fanout {
        group,
        mode: FanoutMode::Cbpf(&rvs_sys::packet::SYN_SPLIT),
        rollover: false,
        ignore_outgoing: true,
        unique_id,
    };
    // Member 0 (the program's "other frames") is the first to join: `main`.
    let joined = main
        .join_fanout(&fanout(0, true))
        .and_then(|()| main.fanout_group())
        .and_then(|g| syn.join_fanout(&fanout(g, false)));
    match joined {
        Ok(()) => Ok(Some(syn)),
        Err(e) => {
            tracing::warn!(
                interface = main.ifname(),
                "no separate SYN ring ({e}); SYNs share the interface's ring"
            );
            Ok(None)
        }
    }
}

/// Fresh randomness for the connection table's hash seed (hash-flooding defence), from
/// `getrandom(2)`. A seed an attacker could guess (the PID, the time) would let them aim
/// flows at one hash bucket, so start-up fails instead of falling back.
pub(super) fn random_seed() -> io::Result<u64> {
    rvs_sys::random::u64().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read randomness for the connection table's hash seed (getrandom): {e}"),
        )
    })
}

/// The virtual MAC of each address of a VRRP instance with `use_vmac` (RFC 5798 §7.3:
/// 00-00-5E-00-01-VRID for IPv4, 00-00-5E-00-02-VRID for IPv6). rvs answers and announces
/// the address with it; no macvlan interface is needed (`use_vmac NAME` is logged and the
/// name unused).
pub(super) fn virtual_macs(f: &FailoverConfig) -> Vec<(IpAddr, [u8; 6])> {
    let rvs_config::failover::FailoverMode::Vrrp(v) = &f.mode else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in v.instances.iter().filter(|i| i.use_vmac) {
        if let Some(name) = &i.vmac_name {
            tracing::info!(instance = %i.name, "use_vmac {name}: rvs needs no macvlan interface; the name is not used");
        }
        for a in i.addresses.iter().chain(&i.excluded_addresses) {
            let family = rvs_core::vrrp::packet::Family::of(a.addr);
            let mac = rvs_core::vrrp::packet::virtual_mac(family, i.router.vrid).0;
            out.push((a.addr, mac));
        }
    }
    out
}

/// `net` with each owned address of `vmacs` answered with its virtual MAC.
pub(super) fn with_vmacs(mut net: NetConfig, vmacs: &[(IpAddr, [u8; 6])]) -> NetConfig {
    for o in &mut net.owned {
        if let Some((_, mac)) = vmacs.iter().find(|(a, _)| *a == o.addr) {
            o.mac = Some(*mac);
        }
    }
    net
}

/// The director's own kernel addresses that `via_vip` health checks use as their source: per
/// family, the first address of the interface that owns a VIP of that family.
pub(super) fn probe_sources(plan: &Plan) -> Vec<IpAddr> {
    let Ok(links) = rvs_sys::iface::all_addresses() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for (vip, dev) in &plan.owned {
        if out.iter().any(|a| a.is_ipv4() == vip.is_ipv4()) {
            continue;
        }
        if let Some((_, a, _)) = links
            .iter()
            .find(|(n, a, _)| n == dev && a.is_ipv4() == vip.is_ipv4() && !is_link_local(a))
        {
            out.push(*a);
        }
    }
    out
}
