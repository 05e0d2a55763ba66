//! The probe path: health checks of DR and TUN real servers that travel the forwarding path
//! (`check_via_vip`), so a real server that does not answer for the VIP — the VIP missing
//! from its loopback, a broken decapsulator — fails its check although its own address
//! still answers.
//!
//! A check's socket in the director's kernel connects to VIP:port from the director's own
//! address, with SO_MARK [`PROBE_MARK`]. A policy-routing rule, made over netlink (`ip rule
//! fwmark MARK lookup TABLE`), sends marked packets — and only those — into a TUN device the daemon owns. The
//! data-plane worker reads them, finds the real server from the source port
//! ([`crate::health::Probes`]) and hands them to the engine
//! ([`rvs_core::director::Director::forward_probe_with`]), which rewrites them as it would a
//! client's packet for that real server. The real server answers from the VIP straight to the
//! director's address, as DR and TUN replies go to clients, and the kernel's socket takes the
//! reply like any other.

use std::io;
use std::net::IpAddr;

use rvs_core::director::{Director, Verdict};
use rvs_core::model::{ForwardMethod, ServiceKey};
use rvs_core::time::Instant;
use rvs_core::wire::Frame;
use rvs_sys::netlink::{self, Family};
use rvs_sys::tun::Tun;

pub use crate::health::PROBE_MARK;

/// The routing table of the probe rule (and its rule priority).
pub const PROBE_TABLE: u32 = 29_301;
/// The probe device's name.
const DEVICE: &str = "rvsprobe0";
/// Room in front of a probe packet: headroom for encapsulation, then the Ethernet header.
const HEAD: usize = 128;
const ETH: usize = 14;

/// The TUN device and routing rules of the probe path; removed when dropped.
pub struct ProbePath {
    tun: Tun,
    buf: Vec<u8>,
    families: Vec<Family>,
}

impl ProbePath {
    /// Create the device (with MTU `mtu`, so the kernel never builds a probe the forwarding
    /// path cannot carry) and the rules (IPv4, and IPv6 where the kernel has it).
    pub fn open(mtu: Option<u16>) -> io::Result<ProbePath> {
        let tun = Tun::create(DEVICE)?;
        if let Some(mtu) = mtu {
            netlink::set_link_mtu(DEVICE, u32::from(mtu))?;
        }
        tun.set_up()?;
        let mut families = Vec::new();
        for fam in [Family::V4, Family::V6] {
            if fam == Family::V6 && !std::path::Path::new("/proc/net/if_inet6").exists() {
                continue;
            }
            // A rule left by a daemon that was killed is replaced, not doubled.
            netlink::delete_fwmark_rules(fam, PROBE_MARK, PROBE_TABLE)?;
            netlink::add_fwmark_rule(fam, PROBE_MARK, PROBE_TABLE, PROBE_TABLE)?;
            netlink::replace_default_route(fam, DEVICE, PROBE_TABLE)?;
            families.push(fam);
        }
        Ok(ProbePath {
            tun,
            buf: vec![0; HEAD + ETH + 65_536],
            families,
        })
    }

    /// The TUN device, for the worker's poll set.
    pub fn device(&self) -> &Tun {
        &self.tun
    }

    /// Read the probe packets waiting and forward each: `who(source port)` names its
    /// service, real server and forwarding method; `send(port, frame)` transmits. Packets of
    /// no known probe are dropped (counted by the caller through the return value).
    pub fn drain(
        &mut self,
        d: &mut Director,
        now: Instant,
        who: impl Fn(u16) -> Option<(ServiceKey, IpAddr, u16, ForwardMethod)>,
        mut send: impl FnMut(rvs_core::director::PortId, &[u8]),
    ) -> io::Result<(u64, u64)> {
        let (mut sent, mut dropped) = (0, 0);
        for _ in 0..64 {
            let Some(n) = self.tun.read(&mut self.buf[HEAD + ETH..])? else {
                break;
            };
            let pkt = &self.buf[HEAD + ETH..HEAD + ETH + n];
            let Some((ethertype, sport)) = source_port(pkt) else {
                dropped += 1;
                continue;
            };
            let Some((service, addr, _port, method)) = who(sport) else {
                dropped += 1;
                continue;
            };
            self.buf[HEAD..HEAD + 12].fill(0);
            self.buf[HEAD + 12..HEAD + ETH].copy_from_slice(&ethertype.to_be_bytes());
            let Ok(mut f) = Frame::new(&mut self.buf, HEAD, ETH + n) else {
                dropped += 1;
                continue;
            };
            match d.forward_probe_with(now, &service, addr, method, &mut f) {
                Verdict::Transmit(p) => {
                    send(p, f.data());
                    sent += 1;
                }
                Verdict::Drop(_) => dropped += 1,
                _ => sent += 1,
            }
        }
        Ok((sent, dropped))
    }
}

impl Drop for ProbePath {
    fn drop(&mut self) {
        for &fam in &self.families {
            let _ = netlink::delete_fwmark_rules(fam, PROBE_MARK, PROBE_TABLE);
            let _ = netlink::flush_table(fam, PROBE_TABLE);
        }
    }
}

/// The ethertype and TCP/UDP source port of an IP packet.
fn source_port(pkt: &[u8]) -> Option<(u16, u16)> {
    let (ethertype, proto, l4) = match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            (0x0800, *pkt.get(9)?, ihl)
        }
        6 => (0x86dd, *pkt.get(6)?, 40),
        _ => return None,
    };
    if proto != 6 && proto != 17 {
        return None;
    }
    let p = pkt.get(l4..l4 + 2)?;
    Some((ethertype, u16::from_be_bytes([p[0], p[1]])))
}

#[cfg(test)]
mod tests {
    use super::source_port;

    #[test]
    fn source_ports_of_v4_and_v6_tcp_and_udp() {
        let mut v4 = vec![0u8; 40];
        v4[0] = 0x45;
        v4[9] = 6;
        v4[20..22].copy_from_slice(&40_001u16.to_be_bytes());
        assert_eq!(source_port(&v4), Some((0x0800, 40_001)));
        v4[9] = 1;
        assert_eq!(source_port(&v4), None, "ICMP has no port");
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[6] = 17;
        v6[40..42].copy_from_slice(&40_002u16.to_be_bytes());
        assert_eq!(source_port(&v6), Some((0x86dd, 40_002)));
        assert_eq!(source_port(&v6[..41]), None, "truncated");
        assert_eq!(source_port(&[]), None);
    }
}
