//! `ipvsadm -L -n`-style listings of a running director: services and real servers, their
//! counters and rates, and the connection table.
//!
//! Layouts follow ipvsadm 1.31's `print_title()` / `print_service_entry()` /
//! `print_largenum()` and the kernel's `/proc/net/ip_vs_conn` fields. Services are sorted as
//! ipvsadm sorts them by default (fwmark services after address services, then protocol,
//! address, port), real servers by address and port. Host and port names are never looked
//! up (`-n` is implied).

use rvs_core::conn::table::{Conn, ConnAddr};
use rvs_core::director::Director;
use rvs_core::model::{ForwardMethod, SchedFlags, SchedulerKind, ServiceKey, mask_v4};
use rvs_core::time::Instant;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// What to list (ipvsadm's list options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `-L -n`.
    #[default]
    Plain,
    /// `-L -n --stats`.
    Stats,
    /// `-L -n --rate`.
    Rate,
    /// `-L -n --thresholds`.
    Thresholds,
    /// `-L -n --persistent-conn`.
    PersistentConn,
    /// `-L -n -c`.
    Connections,
}

/// `addr:port`, IPv6 in brackets (`addrport_to_anyname()` with `FMT_NUMERIC`).
fn addrport(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// `print_largenum()`: 9 columns, K/M/G/T above 10^8 (`exact` prints it whole).
fn largenum(out: &mut String, n: u64, exact: bool) {
    let _ = if exact {
        write!(out, " {n:>8}")
    } else if n < 100_000_000 {
        write!(out, "{n:>9}")
    } else if n < 1_000_000_000 {
        write!(out, "{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        write!(out, "{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        write!(out, "{:>8}G", n / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", n / 1_000_000_000_000)
    };
}

fn forward_name(m: ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Masq => "Masq",
        ForwardMethod::DirectRoute => "Route",
        ForwardMethod::Tunnel { .. } => "Tunnel",
        ForwardMethod::FullNat => "FullNat",
    }
}

fn sched_flags(kind: SchedulerKind, f: SchedFlags) -> Option<String> {
    let names: [&str; 3] = match kind {
        SchedulerKind::Sh => ["sh-fallback", "sh-port", "flag-3"],
        SchedulerKind::Mh => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    let set: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| f.0 & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    (!set.is_empty()).then(|| set.join(","))
}

fn title(f: Format) -> &'static str {
    match f {
        Format::Plain => {
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        }
        Format::Stats => {
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
        }
        Format::Rate => {
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n"
        }
        Format::Thresholds => {
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn\n  -> RemoteAddress:Port\n"
        }
        Format::PersistentConn => {
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn\n  -> RemoteAddress:Port\n"
        }
        Format::Connections => {
            "IPVS connection entries\npro expire state       source             virtual            destination\n"
        }
    }
}

/// Sort key of a service: address services first, by protocol, address, port; then marks.
fn service_order(k: &ServiceKey) -> (u8, u8, IpAddr, u32) {
    match *k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (0, protocol.number(), addr, u32::from(port)),
        ServiceKey::Fwmark { mark, .. } => (1, 0, IpAddr::V4(Ipv4Addr::UNSPECIFIED), mark),
    }
}

/// The listing of `d` in format `f` (`exact`: `--exact` numbers).
pub fn render(d: &Director, f: Format, exact: bool, now: Instant) -> String {
    let mut out = String::new();
    if f == Format::Connections {
        out.push_str(title(f));
        connections(&mut out, d, now);
        return out;
    }
    let size = d.table_v4().capacity();
    let _ = writeln!(out, "IP Virtual Server version 1.2.1 (size={size})");
    out.push_str(title(f));
    let mut services: Vec<_> = d.services().iter().collect();
    services.sort_by_key(|(_, s)| service_order(&s.cfg.key));
    for (_, svc) in services {
        let name = match svc.cfg.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let mut n = format!("{protocol}  {}", addrport(addr, port));
                if addr.is_ipv4() {
                    n.truncate(33);
                }
                n
            }
            ServiceKey::Fwmark { mark, .. } => format!("FWM  {mark}"),
        };
        match f {
            Format::Stats => {
                let _ = write!(out, "{name:<33}");
                let s = &svc.stats;
                for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                    largenum(&mut out, n, exact);
                }
            }
            Format::Rate => {
                let _ = write!(out, "{name:<33}");
                let r = svc.est.rates();
                for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                    largenum(&mut out, n, exact);
                }
            }
            _ => {
                let _ = write!(out, "{name} {}", svc.cfg.scheduler.name());
                if let Some(fl) = sched_flags(svc.cfg.scheduler, svc.cfg.flags) {
                    let _ = write!(out, " ({fl})");
                }
                if let Some(p) = svc.cfg.persistence {
                    let _ = write!(out, " persistent {}", p.timeout);
                    match svc.cfg.key.family() {
                        rvs_core::model::Family::V4 if p.prefix < 32 => {
                            let _ = write!(out, " mask {}", Ipv4Addr::from(mask_v4(p.prefix)));
                        }
                        rvs_core::model::Family::V6 if p.prefix < 128 => {
                            let _ = write!(out, " mask {}", p.prefix);
                        }
                        _ => {}
                    }
                }
                if svc.cfg.one_packet {
                    out.push_str(" ops");
                }
            }
        }
        out.push('\n');
        let mut dests: Vec<_> = svc.dests.iter().zip(&svc.dest_ids).collect();
        dests.sort_by_key(|(d, _)| (d.addr, d.port));
        for (dest, id) in dests {
            let mut dname = addrport(dest.addr, dest.port);
            if dest.addr.is_ipv4() {
                dname.truncate(28);
            }
            match f {
                Format::Stats => {
                    let _ = write!(out, "  -> {dname:<28}");
                    if let Some(s) = d.services().dest_stats(*id) {
                        for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                            largenum(&mut out, n, exact);
                        }
                    }
                }
                Format::Rate => {
                    let r = d
                        .services()
                        .dest_estimator(*id)
                        .map(|e| e.rates())
                        .unwrap_or_default();
                    let _ = write!(
                        out,
                        "  -> {dname:<28} {:>8} {:>8} {:>8}",
                        r.cps, r.inpps, r.outpps
                    );
                    largenum(&mut out, r.inbps, exact);
                    largenum(&mut out, r.outbps, exact);
                }
                Format::Thresholds => {
                    let _ = write!(
                        out,
                        "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                        dest.u_threshold, dest.l_threshold, dest.active_conns, dest.inact_conns
                    );
                }
                Format::PersistentConn => {
                    let _ = write!(
                        out,
                        "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                        dest.weight, dest.persist_conns, dest.active_conns, dest.inact_conns
                    );
                }
                _ => {
                    let _ = write!(
                        out,
                        "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                        forward_name(dest.method),
                        dest.weight,
                        dest.active_conns,
                        dest.inact_conns
                    );
                }
            }
            out.push('\n');
        }
    }
    out
}

/// One `ipvsadm -L -n -c` row of a live entry, or None once it expired.
fn conn_row<A: ConnAddr>(c: &Conn<A>, now: Instant) -> Option<String>
where
    IpAddr: From<A>,
{
    if c.expires <= now {
        return None;
    }
    let pro = match c.protocol {
        6 => "TCP",
        17 => "UDP",
        _ => "IP",
    };
    let secs = c.remaining_secs(now);
    Some(format!(
        "{pro:<3} {:02}:{:02} {:<11} {:<18} {:<18} {}",
        secs / 60,
        secs % 60,
        c.state_name(),
        addrport(c.caddr.into(), c.cport),
        addrport(c.vaddr.into(), c.vport),
        addrport(c.daddr.into(), c.dport),
    ))
}

/// `ipvsadm -L -n -c` rows: `"%-3s %02d:%02d %-11s %-18s %-18s %s"`.
fn connections(out: &mut String, d: &Director, now: Instant) {
    let v4 = d.table_v4().iter().filter_map(|(_, c)| conn_row(&c, now));
    let v6 = d.table_v6().iter().filter_map(|(_, c)| conn_row(&c, now));
    for row in v4.chain(v6) {
        out.push_str(&row);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_switches_units_like_ipvsadm() {
        let mut s = String::new();
        for n in [
            0,
            99_999_999,
            100_000_000,
            123_456_789_012,
            5_000_000_000_000_000,
        ] {
            largenum(&mut s, n, false);
        }
        assert_eq!(s, "        0 99999999  100000K     123G    5000T");
    }
}
