//! VRRP (RFC 3768 version 2, RFC 5798 version 3), sans-IO and interoperable with
//! keepalived: the advertisement codec, the per-virtual-router state machine, and
//! keepalived's sync groups.
//!
//! - [`packet`]: views over received advertisements and an emitter, checksums included.
//! - [`router`]: [`VirtualRouter`], one `vrrp_instance`: election by priority and primary
//!   address, Master_Down_Interval with skew, preemption (`nopreempt`, `preempt_delay`),
//!   priority-0 resignation, Master_Adver_Interval learning (v3), unicast peers, PASS
//!   and AH authentication (v2), tracking as priority weights or Fault, and the timed
//!   gratuitous-ARP / unsolicited-NA "announce" actions.
//! - [`group`]: [`Vrrp`], every router of a daemon plus `vrrp_sync_group`s.
//! - [`ah`]: keepalived's `auth_type AH` on the wire (IPv4 protocol 51, HMAC-MD5-96).
//!
//! What this module does not do: open sockets, add addresses, send ARP or ND, run notify
//! scripts or track scripts, or read clocks. The daemon receives protocol 112 (raw socket,
//! joined to 224.0.0.18 / ff02::12 or unicast), passes the IP payload with its source,
//! destination and TTL to `handle_advert`, calls `handle_timeout` at `poll_timeout`, sends
//! what `poll_transmit` returns (TTL 255, TOS 0xc0) and performs what `poll_event` asks,
//! in that order. An instance with `auth_type AH` instead receives protocol 51 and passes
//! the whole IPv4 packet to `handle_ah_packet`, and its transmits are whole IPv4 packets
//! (`Transmit::header_included`, sent with `IP_HDRINCL`). VRRPv2 over IPv6 is not supported.
//!
//! Received advertisements whose address list differs from the configuration are
//! **dropped** and counted (keepalived's `addr_list_err`; a backup configured with
//! `skip_check_adv_addr` skips the check for the master it follows), so two directors with
//! different VIP lists never elect each other.

pub mod ah;
pub mod group;
pub mod packet;
pub mod router;

#[cfg(test)]
mod tests;

pub use group::{GroupError, GroupState, RouterId, SyncGroupId, Vrrp, VrrpEvent};
pub use packet::{
    AdvertError, AdvertPacket, AdvertRepr, Auth, EmitError, Family, IP_PROTO_VRRP, MCAST_V4,
    MCAST_V6, TTL, Version, peek_vrid, virtual_mac,
};
pub use router::{
    AnnounceReason, ConfigError, Event, GarpConfig, InitialState, Preempt, RouterConfig,
    RouterStats, State, Track, Transmit, VirtualRouter,
};
