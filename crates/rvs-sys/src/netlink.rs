//! Links, addresses, routes and policy-routing rules over rtnetlink, with a small
//! synchronous API for the daemon's plain threads.
//!
//! Each call opens a `NETLINK_ROUTE` socket in the network namespace of the *calling
//! thread*, drives the request on a throw-away current-thread tokio runtime
//! ([`rtnetlink`]) and closes the socket: nothing is cached, so every answer is the
//! kernel's state at the time of the call. A call made from inside a tokio runtime runs on a
//! scoped helper thread, which inherits the caller's namespaces.
//!
//! This is what the daemon and the real-server agent use instead of running `ip` or
//! reading `/proc/net/*`. It changes only what a director or a real server needs: an
//! address on an interface, a link's MTU and up flag, a default route in a table of its
//! own, an `fwmark` rule. Lab set-up (veth pairs, bridges, namespaces) stays in
//! [`crate::netns`], which runs `ip`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkUnspec, RouteMessageBuilder};

/// An address family, for the calls that act on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    fn version(self) -> IpVersion {
        match self {
            Family::V4 => IpVersion::V4,
            Family::V6 => IpVersion::V6,
        }
    }
}

/// A network interface as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// The hardware address, for an Ethernet link (`ARPHRD_ETHER`); `None` otherwise.
    pub mac: Option<[u8; 6]>,
    /// The MTU.
    pub mtu: u32,
    /// `IFF_UP` and `IFF_RUNNING` both set (administratively up, with a carrier).
    pub up: bool,
}

/// An interface address as `RTM_GETADDR` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The index of the interface it is on.
    pub index: u32,
    /// The address (`IFA_LOCAL` for IPv4, `IFA_ADDRESS` for IPv6).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// The IPv4 label (`eth0:1`), if the kernel reports one.
    pub label: Option<String>,
}

/// A route through a gateway in the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayRoute {
    /// The destination prefix's address.
    pub dst: IpAddr,
    /// The destination prefix's length.
    pub len: u8,
    /// The next hop.
    pub via: IpAddr,
}

fn nl_err(what: &str, e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) if m.raw_code() != 0 => {
            let io = m.to_io();
            io::Error::new(io.kind(), format!("netlink {what}: {io}"))
        }
        other => io::Error::other(format!("netlink {what}: {other}")),
    }
}

/// Run `f` with a fresh rtnetlink handle in the calling thread's network namespace.
fn run<T, F, Fut>(f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = io::Result<T>>,
{
    let go = move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            let driver = tokio::spawn(conn);
            let out = f(handle).await;
            driver.abort();
            out
        })
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        // A runtime cannot be started inside another one; a new thread starts in the
        // caller's namespaces (clone(2) without CLONE_NEWNET shares them).
        std::thread::scope(|s| {
            s.spawn(go)
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("netlink helper thread panicked")))
        })
    } else {
        go()
    }
}

fn link_from(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up | LinkFlags::Running),
    };
    let ether = m.header.link_layer_type == LinkLayerType::Ether;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(v) => link.mtu = *v,
            LinkAttribute::Address(b) if ether => link.mac = <[u8; 6]>::try_from(&b[..]).ok(),
            _ => {}
        }
    }
    link
}

/// Every link of the calling thread's namespace.
pub fn links() -> io::Result<Vec<Link>> {
    run(|h| async move {
        let msgs: Vec<LinkMessage> = h
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("link dump", e))?;
        Ok(msgs.iter().map(link_from).collect())
    })
}

/// The link named `name`; an error naming it if there is none.
pub fn link(name: &str) -> io::Result<Link> {
    let index = crate::iface::if_index(name)?;
    let name = name.to_string();
    run(|h| async move {
        let msgs: Vec<LinkMessage> = h
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err(&format!("get link {name}"), e))?;
        msgs.first()
            .map(link_from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))
    })
}

/// Set link `name` up (`ip link set dev NAME up`).
pub fn set_link_up(name: &str) -> io::Result<()> {
    let index = crate::iface::if_index(name)?;
    let name = name.to_string();
    run(|h| async move {
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| nl_err(&format!("set {name} up"), e))
    })
}

/// Set link `name`'s MTU (`ip link set dev NAME mtu MTU`).
pub fn set_link_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let index = crate::iface::if_index(name)?;
    let name = name.to_string();
    run(|h| async move {
        h.link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .execute()
            .await
            .map_err(|e| nl_err(&format!("set {name} mtu {mtu}"), e))
    })
}

fn address_from(m: &AddressMessage) -> Option<Address> {
    let (mut local, mut address, mut label) = (None, None, None);
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    Some(Address {
        index: m.header.index,
        addr: local.or(address)?,
        prefix: m.header.prefix_len,
        label,
    })
}

/// Every address of every interface, IPv4 then IPv6, in the kernel's order.
pub fn addresses() -> io::Result<Vec<Address>> {
    run(|h| async move {
        let msgs: Vec<AddressMessage> = h
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("address dump", e))?;
        Ok(msgs.iter().filter_map(address_from).collect())
    })
}

/// Add `addr/prefix` to interface `dev` (`ip addr replace`: an address already there is
/// not an error), with IPv4 label `label` when given.
pub fn replace_address(dev: &str, addr: IpAddr, prefix: u8, label: Option<&str>) -> io::Result<()> {
    let index = crate::iface::if_index(dev)?;
    let what = format!("add {addr}/{prefix} to {dev}");
    let label = label.map(str::to_string);
    run(|h| async move {
        let mut req = h.address().add(index, addr, prefix).replace();
        if let Some(l) = label {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Label(l));
        }
        req.execute().await.map_err(|e| nl_err(&what, e))
    })
}

/// Remove `addr/prefix` from interface `dev` (`ip addr del`); `Ok(false)` if it was not
/// there.
pub fn delete_address(dev: &str, addr: IpAddr, prefix: u8) -> io::Result<bool> {
    let index = crate::iface::if_index(dev)?;
    let what = format!("delete {addr}/{prefix} from {dev}");
    run(|h| async move {
        let found: Vec<AddressMessage> = h
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(addr)
            .set_prefix_length_filter(prefix)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err(&what, e))?;
        let mut any = false;
        for m in found {
            h.address()
                .del(m)
                .execute()
                .await
                .map_err(|e| nl_err(&what, e))?;
            any = true;
        }
        Ok(any)
    })
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

async fn route_dump(h: &Handle, family: Family) -> io::Result<Vec<RouteMessage>> {
    let query = match family {
        Family::V4 => RouteMessageBuilder::<Ipv4Addr>::new().build(),
        Family::V6 => RouteMessageBuilder::<Ipv6Addr>::new().build(),
    };
    h.route()
        .get(query)
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl_err("route dump", e))
}

/// The main table's unicast routes through a gateway, IPv4 then IPv6 (what
/// `/proc/net/route` and `/proc/net/ipv6_route` list with a gateway). A multipath route
/// gives one entry per next hop.
pub fn gateway_routes() -> io::Result<Vec<GatewayRoute>> {
    run(|h| async move {
        let mut out = Vec::new();
        for family in [Family::V4, Family::V6] {
            for m in route_dump(&h, family).await? {
                if route_table(&m) != u32::from(RouteHeader::RT_TABLE_MAIN)
                    || m.header.kind != RouteType::Unicast
                {
                    continue;
                }
                let len = m.header.destination_prefix_length;
                let dst = m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Destination(d) => route_ip(d),
                        _ => None,
                    })
                    .unwrap_or(match family {
                        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    });
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Gateway(g) => {
                            if let Some(via) = route_ip(g) {
                                out.push(GatewayRoute { dst, len, via });
                            }
                        }
                        RouteAttribute::MultiPath(hops) => {
                            for hop in hops {
                                for a in &hop.attributes {
                                    if let RouteAttribute::Gateway(g) = a
                                        && let Some(via) = route_ip(g)
                                    {
                                        out.push(GatewayRoute { dst, len, via });
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(out)
    })
}

/// Make the default route of `family` in table `table` go out of device `dev`
/// (`ip route replace default dev DEV table TABLE`: protocol `boot`, scope `link`, as `ip`
/// makes it).
pub fn replace_default_route(family: Family, dev: &str, table: u32) -> io::Result<()> {
    let index = crate::iface::if_index(dev)?;
    let what = format!("default route via {dev} in table {table}");
    run(|h| async move {
        let msg = match family {
            Family::V4 => RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(index)
                .table_id(table)
                .scope(RouteScope::Link)
                .protocol(RouteProtocol::Boot)
                .build(),
            Family::V6 => RouteMessageBuilder::<Ipv6Addr>::new()
                .output_interface(index)
                .table_id(table)
                .scope(RouteScope::Link)
                .protocol(RouteProtocol::Boot)
                .build(),
        };
        h.route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(&what, e))
    })
}

/// Remove every route of `family` in table `table` (`ip route flush table TABLE`).
pub fn flush_table(family: Family, table: u32) -> io::Result<()> {
    run(|h| async move {
        for m in route_dump(&h, family).await? {
            if route_table(&m) == table {
                h.route()
                    .del(m)
                    .execute()
                    .await
                    .map_err(|e| nl_err(&format!("flush table {table}"), e))?;
            }
        }
        Ok(())
    })
}

fn rule_matches(m: &RuleMessage, mark: u32, table: u32) -> bool {
    let (mut fw, mut t) = (None, u32::from(m.header.table));
    for a in &m.attributes {
        match a {
            RuleAttribute::FwMark(v) => fw = Some(*v),
            RuleAttribute::Table(v) => t = *v,
            _ => {}
        }
    }
    fw == Some(mark) && t == table
}

/// Add the rule `fwmark MARK lookup TABLE pref PRIORITY` for `family`.
pub fn add_fwmark_rule(family: Family, mark: u32, table: u32, priority: u32) -> io::Result<()> {
    let what = format!("add rule fwmark {mark:#x} lookup {table}");
    run(|h| async move {
        let req = h
            .rule()
            .add()
            .fw_mark(mark)
            .table_id(table)
            .priority(priority)
            .action(rtnetlink::packet_route::rule::RuleAction::ToTable);
        let r = match family {
            Family::V4 => req.v4().execute().await,
            Family::V6 => req.v6().execute().await,
        };
        r.map_err(|e| nl_err(&what, e))
    })
}

/// Remove every rule `fwmark MARK lookup TABLE` of `family`; how many there were.
pub fn delete_fwmark_rules(family: Family, mark: u32, table: u32) -> io::Result<usize> {
    let what = format!("delete rule fwmark {mark:#x} lookup {table}");
    run(|h| async move {
        let rules: Vec<RuleMessage> = h
            .rule()
            .get(family.version())
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err(&what, e))?;
        let mut n = 0;
        for m in rules.into_iter().filter(|m| rule_matches(m, mark, table)) {
            h.rule()
                .del(m)
                .execute()
                .await
                .map_err(|e| nl_err(&what, e))?;
            n += 1;
        }
        Ok(n)
    })
}

/// Add (or replace) the host route `addr/32` (`/128`) out of device `dev` in table `table`
/// (`ip route replace ADDR dev DEV table TABLE proto static`): scope global, protocol
/// `static`, so a routing daemon that learns "alien" routes from the table (BIRD's `kernel`
/// protocol with `learn`) takes it; routes of protocol `kernel` it would ignore.
pub fn replace_host_route(addr: IpAddr, dev: &str, table: u32) -> io::Result<()> {
    let index = crate::iface::if_index(dev)?;
    let what = format!("route {addr} dev {dev} table {table}");
    run(|h| async move {
        let msg = host_route(addr, table).output_interface(index).build();
        h.route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(&what, e))
    })
}

fn host_route(addr: IpAddr, table: u32) -> RouteMessageBuilder<IpAddr> {
    let len = if addr.is_ipv4() { 32 } else { 128 };
    let b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(addr, len)
        .expect("a host prefix of the address's own family");
    b.table_id(table)
        .scope(RouteScope::Universe)
        .protocol(RouteProtocol::Static)
        .kind(RouteType::Unicast)
}

/// Remove the host route to `addr` from table `table`; `Ok(false)` if there was none.
pub fn delete_host_route(addr: IpAddr, table: u32) -> io::Result<bool> {
    let what = format!("delete route {addr} table {table}");
    run(|h| async move {
        let family = if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let mut any = false;
        for m in route_dump(&h, family).await? {
            if route_table(&m) == table && host_dst(&m) == Some(addr) {
                h.route()
                    .del(m)
                    .execute()
                    .await
                    .map_err(|e| nl_err(&what, e))?;
                any = true;
            }
        }
        Ok(any)
    })
}

fn host_dst(m: &RouteMessage) -> Option<IpAddr> {
    let full = match m.header.address_family {
        rtnetlink::packet_route::AddressFamily::Inet => 32,
        rtnetlink::packet_route::AddressFamily::Inet6 => 128,
        _ => return None,
    };
    if m.header.destination_prefix_length != full {
        return None;
    }
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => route_ip(d),
        _ => None,
    })
}

/// The host routes (`/32`, `/128`) of table `table`, IPv4 then IPv6, in the kernel's order.
pub fn host_routes(table: u32) -> io::Result<Vec<IpAddr>> {
    run(|h| async move {
        let mut out = Vec::new();
        for family in [Family::V4, Family::V6] {
            for m in route_dump(&h, family).await? {
                if route_table(&m) == table
                    && let Some(a) = host_dst(&m)
                {
                    out.push(a);
                }
            }
        }
        Ok(out)
    })
}
