//! rvs-sys: the Linux side of rvs — AF_PACKET rings, the XDP fast path, netlink, raw
//! sockets and namespaces. Every `unsafe` block of the project lives here, each with a
//! `// SAFETY:` line.
//!
//! What is here now:
//! - [`packet`]: an AF_PACKET socket bound to one interface with a TPACKET_V2 (the daemon's)
//!   or TPACKET_V3 RX ring, a frame-based TX ring, `PACKET_VNET_HDR`, fanout, qdisc bypass, own-frame
//!   filtering and promiscuous membership.
//! - [`iface`]: interface index, name, MAC address and MTU, in the calling thread's
//!   network namespace.
//! - [`netlink`]: links, addresses, routes and `fwmark` rules over rtnetlink (what the
//!   daemon and the real-server agent use instead of `ip`).
//! - [`netns`]: network-namespace helpers for tests and the lab (unique names, veth pairs,
//!   running code inside a namespace, cleanup on drop).
//! - [`pktinfo`]: datagrams sent from a chosen source address and received with their
//!   destination and hop limit (raw VRRP sockets).
//! - [`tun`]: TUN devices (open, name, bring up, read/write IP packets).
//! - [`rawsock`]: raw IPv4 sockets and a UDP socket that receive tunnelled packets whole
//!   (IPIP, GRE, GUE/FOU), a raw sender, a multi-descriptor poll and a SIGTERM signalfd.
//! - [`sched`]: real-time scheduling of the data-plane thread.
//! - [`netdb`]: host and service names through the C library (`gethostbyname_r` and
//!   friends), as ipvsadm looks them up.
//! - [`caps`]: capability sets kept or dropped, becoming another user with some kept.
//! - [`process`]: scripts started as another user in a process group; group kill.
//! - [`random`]: random bytes from `getrandom(2)` (hash seeds).
//! - [`sockopt`]: socket options `socket2` lacks (`SO_RCVBUFFORCE`).
//! - [`xdp`]: the XDP fast path: the BPF program (C, `bpf/`, compiled by `build.rs` with
//!   clang) and its loader (aya), attach/detach and the flow map.
//!
//! Nothing here parses or rewrites packets: that is `rvs-core::wire`'s job.

pub mod caps;
pub mod iface;
pub mod netdb;
pub mod netlink;
pub mod netns;
pub mod packet;
pub mod pktinfo;
pub mod poll;
pub mod process;
pub mod random;
pub mod rawsock;
pub mod sched;
pub mod sockopt;
mod sys;
pub mod tun;
pub mod xdp;
