//! The IPVS connection synchronisation protocol (the kernel's `ip_vs_sync.c`): the active
//! director multicasts the state of its connections so that a backup director can keep
//! serving them after a failover.
//!
//! This module is the message codec only: [`SyncMessageBuilder`] packs connection records
//! into messages up to a size limit exactly as the kernel's `ip_vs_sync_conn` does (one
//! message per full buffer, records padded to 32 bits), and [`SyncMessage`] parses a
//! received datagram as the kernel's `ip_vs_process_message` does, yielding
//! [`SyncConn`] records or the reason a message or a record is refused.
//!
//! Transport (done by the daemon): UDP to 224.0.0.81 port 8848 ([`MCAST_GROUP`],
//! [`PORT`]; one more port per extra sync thread), multicast TTL 1, loopback off, a
//! message at most [`DEFAULT_MAX_LEN`] (1500 − IP − UDP headers). Which connections to
//! send and when (`sync_threshold`, `sync_period`), and what a backup does with a record
//! (find or create the connection, bind its real server, apply `IP_VS_CONN_F_BACKUP_MASK`,
//! default timeouts) belong to the engine ([`crate::director::sync`]) and are not here.
//! Protocol and state numbers are carried as the kernel numbers them (`IP_VS_TCP_S_*`, …)
//! and not validated: that needs the protocol tables.
//!
//! One rvs extension: FullNAT's local address and port travel in an option the kernel
//! skips ([`opt::RVS_LOCAL`], [`SyncConn::local`]).
//!
//! Version 0 (the pre-2.6.39 format, IPv4 only, no timeout or fwmark) is *read*, never
//! written: the kernel still accepts it, and a v1 header starts with a zero byte that v0
//! receivers take as "no connections".

mod message;

pub use message::{
    ConnIter, SyncBuildError, SyncError, SyncMessage, SyncMessageBuilder, SyncVersion, conn_len,
    pack,
};

use std::net::{IpAddr, Ipv4Addr};

/// The IPv4 multicast group of the sync daemon, 224.0.0.81.
pub const MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);

/// The UDP port of the first sync thread (thread `n` uses `PORT + n`).
pub const PORT: u16 = 8848;

/// The kernel's default maximum message length over IPv4 (`sync_maxlen`: an MTU of 1500
/// minus the IPv4 and UDP headers).
pub const DEFAULT_MAX_LEN: usize = 1500 - 20 - 8;

/// The same over IPv6 multicast (1500 minus the IPv6 and UDP headers).
pub const DEFAULT_MAX_LEN_V6: usize = 1500 - 40 - 8;

/// Length of the version 1 message header.
pub const HEADER_LEN: usize = 8;

/// Length of the version 0 message header.
pub const HEADER_LEN_V0: usize = 4;

/// Length of an IPv4 record without options (`struct ip_vs_sync_v4`).
pub const CONN_V4_LEN: usize = 36;

/// Length of an IPv6 record without options (`struct ip_vs_sync_v6`).
pub const CONN_V6_LEN: usize = 72;

/// Length of a version 0 record without sequence options (`SIMPLE_CONN_SIZE`).
pub const CONN_V0_LEN: usize = 24;

/// Length of the sequence data (`struct ip_vs_sync_conn_options`: two `ip_vs_seq`).
pub const SEQ_DATA_LEN: usize = 24;

/// The most records a message can count (`nr_conns` is 8 bits).
pub const MAX_CONNS: usize = 255;

/// Longest persistence-engine data (`IP_VS_PEDATA_MAXLEN`).
pub const PE_DATA_MAXLEN: usize = 255;

/// Longest persistence-engine name (`IP_VS_PENAME_MAXLEN`).
pub const PE_NAME_MAXLEN: usize = 16;

/// Option types of a version 1 record.
pub mod opt {
    /// TCP sequence adjustment data (`IPVS_OPT_SEQ_DATA`).
    pub const SEQ_DATA: u8 = 1;
    /// Persistence-engine data, e.g. a SIP Call-ID (`IPVS_OPT_PE_DATA`).
    pub const PE_DATA: u8 = 2;
    /// Persistence-engine name (`IPVS_OPT_PE_NAME`).
    pub const PE_NAME: u8 = 3;
    /// Flag: the option may be ignored if unknown (`IPVS_OPT_F_PARAM`, bit 6).
    pub const F_PARAM: u8 = 1 << 6;
    /// **rvs extension**: the FullNAT local (source) address and port of a connection
    /// towards its real server, which the kernel protocol has no field for. The data is the
    /// address (4 or 16 bytes, the record's family) then the port (be16). rvs sends it as
    /// `RVS_LOCAL | F_PARAM`: kernels and keepalived backups skip an unknown option that
    /// has the `IPVS_OPT_F_PARAM` bit (`ip_vs_proc_sync_conn`: "Param data mandatory ?"),
    /// so they still take the record, as a NAT connection. The value is far above the
    /// kernel's own types (1 to 3) to stay clear of the ones it may add.
    pub const RVS_LOCAL: u8 = 0x30;
}

/// Connection flags (`IP_VS_CONN_F_*`, include/uapi/linux/ip_vs.h).
pub mod flags {
    /// Mask of the forwarding method.
    pub const FWD_MASK: u32 = 0x0007;
    /// Masquerading (NAT).
    pub const MASQ: u32 = 0x0000;
    /// Local node.
    pub const LOCALNODE: u32 = 0x0001;
    /// Tunnelling.
    pub const TUNNEL: u32 = 0x0002;
    /// Direct routing.
    pub const DROUTE: u32 = 0x0003;
    /// Cache bypass.
    pub const BYPASS: u32 = 0x0004;
    /// Created by sync (set by the receiver).
    pub const SYNC: u32 = 0x0020;
    /// Hashed entry (never sent).
    pub const HASHED: u32 = 0x0040;
    /// No output packets.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Not established.
    pub const INACTIVE: u32 = 0x0100;
    /// Output sequence adjustment.
    pub const OUT_SEQ: u32 = 0x0200;
    /// Input sequence adjustment.
    pub const IN_SEQ: u32 = 0x0400;
    /// Either sequence adjustment: the record carries sequence data.
    pub const SEQ_MASK: u32 = 0x0600;
    /// Client port not set yet (persistence template with port 0).
    pub const NO_CPORT: u32 = 0x0800;
    /// Persistence template, not a connection.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling (never synced).
    pub const ONE_PACKET: u32 = 0x2000;
    /// The flags a backup keeps from a record (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
}

/// One direction's TCP sequence adjustment (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq {
    /// Sequence number where the adjustment starts.
    pub init_seq: u32,
    /// Delta from there on.
    pub delta: u32,
    /// Delta before `init_seq`.
    pub previous_delta: u32,
}

/// The sequence data of a record (`struct ip_vs_sync_conn_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqData {
    /// Client-to-server direction.
    pub in_seq: Seq,
    /// Server-to-client direction.
    pub out_seq: Seq,
}

/// A connection (or persistence template) record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncConn<'a> {
    /// IP protocol (6 TCP, 17 UDP, 132 SCTP).
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` flags as sent (see [`flags`]).
    pub flags: u32,
    /// Protocol state (`IP_VS_TCP_S_*`, …; 0 for templates).
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark (0 when none; always 0 in version 0).
    pub fwmark: u32,
    /// Timeout in seconds (0 in version 0: the receiver uses its protocol default).
    pub timeout: u32,
    /// Client address.
    pub caddr: IpAddr,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Real server address.
    pub daddr: IpAddr,
    /// TCP sequence adjustment, present when `flags` has [`flags::SEQ_MASK`] bits.
    pub seq: Option<SeqData>,
    /// Persistence-engine data (e.g. a SIP Call-ID).
    pub pe_data: Option<&'a [u8]>,
    /// Persistence-engine name (e.g. `sip`).
    pub pe_name: Option<&'a [u8]>,
    /// FullNAT local address and port towards the real server: the rvs extension option
    /// [`opt::RVS_LOCAL`]. Of the record's family.
    pub local: Option<(IpAddr, u16)>,
}
