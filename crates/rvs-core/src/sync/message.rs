//! Sync messages: the builder (kernel `ip_vs_sync_conn`) and the parser (kernel
//! `ip_vs_process_message`, `ip_vs_proc_sync_conn`, `ip_vs_process_message_v0`).
//!
//! ```text
//! v1 header:  | 0 | SyncID | Size (be16, whole message) |
//!             | Count Conns | Version = 1 | Reserved = 0 (16) |
//! v1 record:  | Type (bit 0: IPv6) | Protocol | Ver (4) = 0 | Size (12) |
//!             | Flags (be32) | State (be16) | cport | vport | dport |
//!             | fwmark (be32) | timeout (be32, s) | caddr | vaddr | daddr |
//!             | options: type (1) length (1) data ... |  padded to 32 bits before the next
//! v0 header:  | Count Conns | SyncID | Size (be16) |
//! v0 record:  | 0 | Protocol | cport | vport | dport | caddr | vaddr | daddr |
//!             | Flags (be16) | State (be16) | [sequence data, sender's host order] |
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    CONN_V0_LEN, CONN_V4_LEN, CONN_V6_LEN, HEADER_LEN, HEADER_LEN_V0, MAX_CONNS, PE_DATA_MAXLEN,
    PE_NAME_MAXLEN, SEQ_DATA_LEN, Seq, SeqData, SyncConn, flags, opt,
};

/// Version 1 of the protocol, in the header (`SYNC_PROTO_VER`).
const SYNC_PROTO_VER: u8 = 1;

/// Bit 0 of a record's type: IPv6 (`STYPE_F_INET6`).
const STYPE_F_INET6: u8 = 1;

/// Why a message or one of its records was refused. The kernel drops the rest of the
/// message on a *fatal* error and only the record on the others ([`SyncError::is_fatal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncError {
    /// Shorter than the 4-byte header ("message header too short").
    HeaderTooShort,
    /// The size field differs from the datagram length ("bogus message size").
    BadSize,
    /// A record starts too close to the end ("Dropping buffer, too small"; v0: "bogus
    /// conn").
    TruncatedConn,
    /// A record's size runs past the message ("msg > buffer"; v0: "bogus conn options").
    ConnBeyondMessage,
    /// A record version other than 0 ("Unknown version").
    UnknownConnVersion,
    /// A record type with bits other than IPv6 (`ip_vs_proc_sync_conn` -10).
    BadConnType,
    /// A record size below its fixed part (-20).
    ConnTooShort,
    /// An option header or data past the record, or of length 0 (-30, -40).
    BadOption,
    /// Sequence data of a length other than 24, or twice (-50).
    BadSeqOption,
    /// Persistence-engine data twice (-60).
    BadPeData,
    /// A persistence-engine name longer than 16 bytes, or twice (-70).
    BadPeName,
    /// An unknown option without the "may ignore" flag: this record is dropped.
    UnknownMandatoryOption,
    /// Persistence-engine data without a name ("Invalid PE parameters"): this record is
    /// dropped.
    PeDataWithoutName,
    /// The rvs FullNAT option ([`opt::RVS_LOCAL`]) of a length other than the record
    /// family's address + port, or twice: this record is dropped (a kernel would ignore
    /// the option; rvs cannot trust the mapping).
    BadLocalOption,
}

impl SyncError {
    /// Number of reasons.
    pub const COUNT: usize = 14;

    /// Every reason, in [`SyncError::index`] order.
    pub const ALL: [SyncError; SyncError::COUNT] = [
        SyncError::HeaderTooShort,
        SyncError::BadSize,
        SyncError::TruncatedConn,
        SyncError::ConnBeyondMessage,
        SyncError::UnknownConnVersion,
        SyncError::BadConnType,
        SyncError::ConnTooShort,
        SyncError::BadOption,
        SyncError::BadSeqOption,
        SyncError::BadPeData,
        SyncError::BadPeName,
        SyncError::UnknownMandatoryOption,
        SyncError::PeDataWithoutName,
        SyncError::BadLocalOption,
    ];

    /// A dense index for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// True when the kernel drops the rest of the message (false: only this record).
    pub fn is_fatal(self) -> bool {
        !matches!(
            self,
            SyncError::UnknownMandatoryOption
                | SyncError::PeDataWithoutName
                | SyncError::BadLocalOption
        )
    }

    /// A short snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncError::HeaderTooShort => "header_too_short",
            SyncError::BadSize => "bad_size",
            SyncError::TruncatedConn => "truncated_conn",
            SyncError::ConnBeyondMessage => "conn_beyond_message",
            SyncError::UnknownConnVersion => "unknown_conn_version",
            SyncError::BadConnType => "bad_conn_type",
            SyncError::ConnTooShort => "conn_too_short",
            SyncError::BadOption => "bad_option",
            SyncError::BadSeqOption => "bad_seq_option",
            SyncError::BadPeData => "bad_pe_data",
            SyncError::BadPeName => "bad_pe_name",
            SyncError::UnknownMandatoryOption => "unknown_mandatory_option",
            SyncError::PeDataWithoutName => "pe_data_without_name",
            SyncError::BadLocalOption => "bad_local_option",
        }
    }
}

impl core::fmt::Display for SyncError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for SyncError {}

/// Why a record could not be added (caller mistakes, and a full message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncBuildError {
    /// The buffer cannot hold even the header.
    BufferTooSmall,
    /// The record (with its padding) does not fit in what is left, or the message already
    /// counts 255 records: finish this message and start another.
    Full,
    /// The record does not fit even in an empty message of this size.
    TooLarge,
    /// The three addresses (and the FullNAT local address) are not of one family.
    MixedFamilies,
    /// `ONE_PACKET` connections are never synced (the kernel skips them).
    OnePacket,
    /// Sequence data present without a `SEQ_MASK` flag, or the reverse.
    SeqMismatch,
    /// Persistence-engine data empty, or without a name.
    BadPeData,
    /// Persistence-engine name empty, longer than 16 bytes, or without data.
    BadPeName,
}

impl core::fmt::Display for SyncBuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SyncBuildError::BufferTooSmall => "buffer smaller than the header",
            SyncBuildError::Full => "message full",
            SyncBuildError::TooLarge => "record larger than a message",
            SyncBuildError::MixedFamilies => "addresses of different families",
            SyncBuildError::OnePacket => "one-packet connections are not synced",
            SyncBuildError::SeqMismatch => "sequence data and SEQ flags disagree",
            SyncBuildError::BadPeData => "bad persistence-engine data",
            SyncBuildError::BadPeName => "bad persistence-engine name",
        })
    }
}

impl std::error::Error for SyncBuildError {}

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4_at(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6_at(b: &[u8], at: usize) -> IpAddr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(o))
}

fn seq_at(b: &[u8], at: usize, rd: fn(&[u8], usize) -> u32) -> SeqData {
    let s = |o: usize| Seq {
        init_seq: rd(b, at + o),
        delta: rd(b, at + o + 4),
        previous_delta: rd(b, at + o + 8),
    };
    SeqData {
        in_seq: s(0),
        out_seq: s(12),
    }
}

/// The sender's host order: the kernel's version 0 `memcpy`s `ip_vs_seq` as it is in
/// memory and reads it back the same way, so only same-endian peers agree.
fn rd32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncVersion {
    /// The original format (IPv4 only, no timeout or fwmark), read only.
    V0,
    /// The current format.
    V1,
}

/// A received sync message, its header checked.
#[derive(Debug, Clone, Copy)]
pub struct SyncMessage<'a> {
    bytes: &'a [u8],
    version: SyncVersion,
    syncid: u8,
    nr_conns: u8,
}

impl<'a> SyncMessage<'a> {
    /// Check the header of a received datagram: at least 4 bytes, the size field equal to
    /// the length; version 1 when the first byte, the version and the spare field say so
    /// (kernel: `version == 1 && reserved == 0 && spare == 0`), else version 0.
    pub fn parse(bytes: &'a [u8]) -> Result<SyncMessage<'a>, SyncError> {
        if bytes.len() < HEADER_LEN_V0 {
            return Err(SyncError::HeaderTooShort);
        }
        if usize::from(rd16(bytes, 2)) != bytes.len() {
            return Err(SyncError::BadSize);
        }
        let v1 = bytes.len() >= HEADER_LEN
            && bytes[0] == 0
            && bytes[5] == SYNC_PROTO_VER
            && rd16(bytes, 6) == 0;
        Ok(if v1 {
            SyncMessage {
                bytes,
                version: SyncVersion::V1,
                syncid: bytes[1],
                nr_conns: bytes[4],
            }
        } else {
            SyncMessage {
                bytes,
                version: SyncVersion::V0,
                syncid: bytes[1],
                nr_conns: bytes[0],
            }
        })
    }

    /// The format.
    pub fn version(&self) -> SyncVersion {
        self.version
    }

    /// The master's sync id.
    pub fn syncid(&self) -> u8 {
        self.syncid
    }

    /// The number of records the header announces.
    pub fn nr_conns(&self) -> u8 {
        self.nr_conns
    }

    /// Whether a backup configured with `backup_syncid` processes this message (0 accepts
    /// every sync id; kernel "SyncID sanity check").
    pub fn accepted_by(&self, backup_syncid: u8) -> bool {
        backup_syncid == 0 || self.syncid == backup_syncid
    }

    /// The records, in order. After a fatal error the iterator yields that error and ends;
    /// records before it stay valid (the kernel has applied them by then).
    pub fn conns(&self) -> ConnIter<'a> {
        ConnIter {
            bytes: self.bytes,
            version: self.version,
            remaining: self.nr_conns,
            pos: match self.version {
                SyncVersion::V0 => HEADER_LEN_V0,
                SyncVersion::V1 => HEADER_LEN,
            },
            done: false,
        }
    }
}

/// Iterator over the records of a [`SyncMessage`].
#[derive(Debug, Clone)]
pub struct ConnIter<'a> {
    bytes: &'a [u8],
    version: SyncVersion,
    remaining: u8,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for ConnIter<'a> {
    type Item = Result<SyncConn<'a>, SyncError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let r = match self.version {
            SyncVersion::V1 => self.next_v1(),
            SyncVersion::V0 => self.next_v0(),
        };
        if let Err(e) = r
            && e.is_fatal()
        {
            self.done = true;
        }
        Some(r)
    }
}

impl<'a> ConnIter<'a> {
    fn next_v1(&mut self) -> Result<SyncConn<'a>, SyncError> {
        let b = self.bytes;
        let p = self.pos;
        if p + CONN_V4_LEN > b.len() {
            return Err(SyncError::TruncatedConn);
        }
        let ver_size = rd16(b, p + 2);
        let size = usize::from(ver_size & 0x0fff);
        let end = p + size;
        if end > b.len() {
            return Err(SyncError::ConnBeyondMessage);
        }
        if ver_size >> 12 != 0 {
            return Err(SyncError::UnknownConnVersion);
        }
        // Make sure we have 32 bit alignment (the next record, whatever this one holds).
        self.pos = p + ((size + 3) & !3);
        parse_v1_record(b, p, end)
    }

    fn next_v0(&mut self) -> Result<SyncConn<'a>, SyncError> {
        let b = self.bytes;
        let p = self.pos;
        if p + CONN_V0_LEN > b.len() {
            return Err(SyncError::TruncatedConn);
        }
        let fl = u32::from(rd16(b, p + 20));
        let seq = if fl & flags::SEQ_MASK != 0 {
            if p + CONN_V0_LEN + SEQ_DATA_LEN > b.len() {
                return Err(SyncError::ConnBeyondMessage);
            }
            self.pos = p + CONN_V0_LEN + SEQ_DATA_LEN;
            Some(seq_at(b, p + CONN_V0_LEN, rd32_ne))
        } else {
            self.pos = p + CONN_V0_LEN;
            None
        };
        Ok(SyncConn {
            protocol: b[p + 1],
            flags: fl,
            state: rd16(b, p + 22),
            cport: rd16(b, p + 2),
            vport: rd16(b, p + 4),
            dport: rd16(b, p + 6),
            fwmark: 0,
            timeout: 0,
            caddr: v4_at(b, p + 8),
            vaddr: v4_at(b, p + 12),
            daddr: v4_at(b, p + 16),
            seq,
            pe_data: None,
            pe_name: None,
            local: None,
        })
    }
}

/// The version 1 record at `b[p..end]` (kernel `ip_vs_proc_sync_conn`). The caller has
/// checked that `b` holds at least an IPv4 record from `p`, which may be longer than the
/// record's own size: like the kernel, the type is read before the size is checked.
fn parse_v1_record(b: &[u8], p: usize, end: usize) -> Result<SyncConn<'_>, SyncError> {
    let ty = b[p];
    let v6 = ty & STYPE_F_INET6 != 0;
    if !v6 && ty != 0 {
        return Err(SyncError::BadConnType);
    }
    let base = if v6 { CONN_V6_LEN } else { CONN_V4_LEN };
    if p + base > end {
        return Err(SyncError::ConnTooShort);
    }
    let r = &b[p..end];
    let mut seq = None;
    let mut pe_data = None;
    let mut pe_name = None;
    let mut local = None;
    let mut bad_local = false;
    let addr_len = if v6 { 16 } else { 4 };
    let mut q = base;
    while q < r.len() {
        if q + 2 > r.len() {
            return Err(SyncError::BadOption);
        }
        let ptype = r[q];
        let plen = usize::from(r[q + 1]);
        q += 2;
        if plen == 0 || q + plen > r.len() {
            return Err(SyncError::BadOption);
        }
        let data = &r[q..q + plen];
        match ptype & !opt::F_PARAM {
            opt::SEQ_DATA => {
                if plen != SEQ_DATA_LEN || seq.is_some() {
                    return Err(SyncError::BadSeqOption);
                }
                seq = Some(seq_at(data, 0, rd32));
            }
            opt::PE_DATA => {
                if pe_data.is_some() {
                    return Err(SyncError::BadPeData);
                }
                pe_data = Some(data);
            }
            opt::PE_NAME => {
                if plen > PE_NAME_MAXLEN || pe_name.is_some() {
                    return Err(SyncError::BadPeName);
                }
                pe_name = Some(data);
            }
            // The rvs extension. A bad one spoils this record only, after the options a
            // kernel would refuse the whole message for have all been checked.
            opt::RVS_LOCAL => {
                if plen != addr_len + 2 || local.is_some() {
                    bad_local = true;
                } else {
                    let a = if v6 { v6_at(data, 0) } else { v4_at(data, 0) };
                    local = Some((a, rd16(data, addr_len)));
                }
            }
            _ => {
                if ptype & opt::F_PARAM == 0 {
                    return Err(SyncError::UnknownMandatoryOption);
                }
            }
        }
        q += plen;
    }
    if pe_data.is_some() && pe_name.is_none() {
        return Err(SyncError::PeDataWithoutName);
    }
    if bad_local {
        return Err(SyncError::BadLocalOption);
    }
    let (caddr, vaddr, daddr) = if v6 {
        (v6_at(r, 24), v6_at(r, 40), v6_at(r, 56))
    } else {
        (v4_at(r, 24), v4_at(r, 28), v4_at(r, 32))
    };
    Ok(SyncConn {
        protocol: r[1],
        flags: rd32(r, 4),
        state: rd16(r, 8),
        cport: rd16(r, 10),
        vport: rd16(r, 12),
        dport: rd16(r, 14),
        fwmark: rd32(r, 16),
        timeout: rd32(r, 20),
        caddr,
        vaddr,
        daddr,
        seq,
        pe_data,
        pe_name,
        local,
    })
}

/// Check a record for the builder; its encoded length (without padding).
fn validate(conn: &SyncConn<'_>) -> Result<usize, SyncBuildError> {
    let v6 = match (conn.caddr, conn.vaddr, conn.daddr) {
        (IpAddr::V4(_), IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(SyncBuildError::MixedFamilies),
    };
    if conn.flags & flags::ONE_PACKET != 0 {
        return Err(SyncBuildError::OnePacket);
    }
    if (conn.flags & flags::SEQ_MASK != 0) != conn.seq.is_some() {
        return Err(SyncBuildError::SeqMismatch);
    }
    let mut len = if v6 { CONN_V6_LEN } else { CONN_V4_LEN };
    if conn.seq.is_some() {
        len += 2 + SEQ_DATA_LEN;
    }
    match (conn.pe_data, conn.pe_name) {
        (None, None) => {}
        (Some(d), Some(n)) => {
            if d.is_empty() || d.len() > PE_DATA_MAXLEN {
                return Err(SyncBuildError::BadPeData);
            }
            if n.is_empty() || n.len() > PE_NAME_MAXLEN {
                return Err(SyncBuildError::BadPeName);
            }
            len += 2 + d.len() + 2 + n.len();
        }
        (Some(_), None) => return Err(SyncBuildError::BadPeData),
        (None, Some(_)) => return Err(SyncBuildError::BadPeName),
    }
    if let Some((a, _)) = conn.local {
        if a.is_ipv6() != v6 {
            return Err(SyncBuildError::MixedFamilies);
        }
        len += 2 + if v6 { 16 } else { 4 } + 2;
    }
    Ok(len)
}

/// The encoded length of a record (without the padding before the next), or why it
/// cannot be encoded.
pub fn conn_len(conn: &SyncConn<'_>) -> Result<usize, SyncBuildError> {
    validate(conn)
}

/// Packs records into one version 1 message in a caller-provided buffer (its length is
/// the message size limit).
#[derive(Debug)]
pub struct SyncMessageBuilder<'b> {
    buf: &'b mut [u8],
    syncid: u8,
    len: usize,
    nr: u8,
}

impl<'b> SyncMessageBuilder<'b> {
    /// An empty message from a master with `syncid`, at most `buf.len()` bytes long.
    pub fn new(buf: &'b mut [u8], syncid: u8) -> Result<SyncMessageBuilder<'b>, SyncBuildError> {
        if buf.len() < HEADER_LEN {
            return Err(SyncBuildError::BufferTooSmall);
        }
        Ok(SyncMessageBuilder {
            buf,
            syncid,
            len: HEADER_LEN,
            nr: 0,
        })
    }

    /// The message length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True while no record was added.
    pub fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// Records added.
    pub fn nr_conns(&self) -> u8 {
        self.nr
    }

    /// Add a record, after the zero padding that aligns it to 32 bits (kernel
    /// `ip_vs_sync_conn`: `pad = (4 - head) & 3`; a record that does not fit with its
    /// padding goes to the next message). The `HASHED` flag is cleared, as the kernel does.
    pub fn push(&mut self, conn: &SyncConn<'_>) -> Result<(), SyncBuildError> {
        let len = validate(conn)?;
        if HEADER_LEN + len > self.buf.len() {
            return Err(SyncBuildError::TooLarge);
        }
        let pad = (4 - (self.len & 3)) & 3;
        if self.len + pad + len > self.buf.len() || usize::from(self.nr) >= MAX_CONNS {
            return Err(SyncBuildError::Full);
        }
        let start = self.len + pad;
        self.buf[self.len..start].fill(0);
        let r = &mut self.buf[start..start + len];
        let v6 = conn.caddr.is_ipv6();
        r[0] = if v6 { STYPE_F_INET6 } else { 0 };
        r[1] = conn.protocol;
        r[2..4].copy_from_slice(&((len & 0x0fff) as u16).to_be_bytes());
        r[4..8].copy_from_slice(&(conn.flags & !flags::HASHED).to_be_bytes());
        r[8..10].copy_from_slice(&conn.state.to_be_bytes());
        r[10..12].copy_from_slice(&conn.cport.to_be_bytes());
        r[12..14].copy_from_slice(&conn.vport.to_be_bytes());
        r[14..16].copy_from_slice(&conn.dport.to_be_bytes());
        r[16..20].copy_from_slice(&conn.fwmark.to_be_bytes());
        r[20..24].copy_from_slice(&conn.timeout.to_be_bytes());
        let mut q = 24;
        for a in [conn.caddr, conn.vaddr, conn.daddr] {
            match a {
                IpAddr::V4(v) => {
                    r[q..q + 4].copy_from_slice(&v.octets());
                    q += 4;
                }
                IpAddr::V6(v) => {
                    r[q..q + 16].copy_from_slice(&v.octets());
                    q += 16;
                }
            }
        }
        if let Some(s) = conn.seq {
            r[q] = opt::SEQ_DATA;
            r[q + 1] = SEQ_DATA_LEN as u8;
            q += 2;
            for d in [s.in_seq, s.out_seq] {
                for w in [d.init_seq, d.delta, d.previous_delta] {
                    r[q..q + 4].copy_from_slice(&w.to_be_bytes());
                    q += 4;
                }
            }
        }
        if let (Some(d), Some(n)) = (conn.pe_data, conn.pe_name) {
            for (t, v) in [(opt::PE_DATA, d), (opt::PE_NAME, n)] {
                r[q] = t;
                r[q + 1] = v.len() as u8;
                r[q + 2..q + 2 + v.len()].copy_from_slice(v);
                q += 2 + v.len();
            }
        }
        if let Some((a, port)) = conn.local {
            let mut octets = [0u8; 16];
            let n = match a {
                IpAddr::V4(v) => {
                    octets[..4].copy_from_slice(&v.octets());
                    4
                }
                IpAddr::V6(v) => {
                    octets.copy_from_slice(&v.octets());
                    16
                }
            };
            r[q] = opt::RVS_LOCAL | opt::F_PARAM;
            r[q + 1] = (n + 2) as u8;
            r[q + 2..q + 2 + n].copy_from_slice(&octets[..n]);
            r[q + 2 + n..q + 4 + n].copy_from_slice(&port.to_be_bytes());
            q += 4 + n;
        }
        debug_assert_eq!(q, len);
        self.len = start + len;
        self.nr += 1;
        Ok(())
    }

    /// Write the header and return the message.
    pub fn finish(self) -> &'b [u8] {
        let h = &mut self.buf[..HEADER_LEN];
        h[0] = 0;
        h[1] = self.syncid;
        h[2..4].copy_from_slice(&(self.len as u16).to_be_bytes());
        h[4] = self.nr;
        h[5] = SYNC_PROTO_VER;
        h[6..8].copy_from_slice(&[0, 0]);
        &self.buf[..self.len]
    }
}

/// Pack `conns`, in order, into as few messages of at most `max_len` bytes as the kernel
/// would (each message filled until the next record does not fit).
pub fn pack(
    conns: &[SyncConn<'_>],
    syncid: u8,
    max_len: usize,
) -> Result<Vec<Vec<u8>>, SyncBuildError> {
    let max_len = max_len.min(usize::from(u16::MAX));
    let mut out = Vec::new();
    let mut buf = vec![0u8; max_len];
    let mut b = SyncMessageBuilder::new(&mut buf, syncid)?;
    for c in conns {
        match b.push(c) {
            Ok(()) => {}
            Err(SyncBuildError::Full) => {
                out.push(b.finish().to_vec());
                b = SyncMessageBuilder::new(&mut buf, syncid)?;
                b.push(c)?;
            }
            Err(e) => return Err(e),
        }
    }
    if !b.is_empty() {
        out.push(b.finish().to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::DEFAULT_MAX_LEN;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp_dr() -> SyncConn<'static> {
        SyncConn {
            protocol: 6,
            flags: flags::DROUTE,
            state: 1,
            cport: 40000,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: ip("192.0.2.1"),
            vaddr: ip("198.51.100.10"),
            daddr: ip("10.0.0.11"),
            seq: None,
            pe_data: None,
            pe_name: None,
            local: None,
        }
    }

    fn collect(m: &[u8]) -> Vec<Result<SyncConn<'_>, SyncError>> {
        SyncMessage::parse(m).unwrap().conns().collect()
    }

    #[test]
    fn one_ipv4_record_byte_exact() {
        let mut buf = [0u8; DEFAULT_MAX_LEN];
        let mut b = SyncMessageBuilder::new(&mut buf, 7).unwrap();
        b.push(&tcp_dr()).unwrap();
        let m = b.finish();
        #[rustfmt::skip]
        let expected: [u8; 44] = [
            0x00, 0x07, 0x00, 0x2c, 0x01, 0x01, 0x00, 0x00, // header: syncid 7, 44 bytes, 1 conn, v1
            0x00, 0x06, 0x00, 0x24,                         // IPv4, TCP, version 0, 36 bytes
            0x00, 0x00, 0x00, 0x03,                         // flags: DROUTE
            0x00, 0x01, 0x9c, 0x40,                         // state ESTABLISHED, cport 40000
            0x00, 0x50, 0x00, 0x50,                         // vport 80, dport 80
            0x00, 0x00, 0x00, 0x00,                         // fwmark
            0x00, 0x00, 0x03, 0x84,                         // timeout 900 s
            0xc0, 0x00, 0x02, 0x01,                         // caddr
            0xc6, 0x33, 0x64, 0x0a,                         // vaddr
            0x0a, 0x00, 0x00, 0x0b,                         // daddr
        ];
        assert_eq!(m, &expected[..]);
        let msg = SyncMessage::parse(m).unwrap();
        assert_eq!(msg.version(), SyncVersion::V1);
        assert_eq!(msg.syncid(), 7);
        assert!(msg.accepted_by(0));
        assert!(msg.accepted_by(7));
        assert!(!msg.accepted_by(8));
        assert_eq!(collect(m), vec![Ok(tcp_dr())]);
    }

    #[test]
    fn ipv6_with_sequence_and_persistence_engine() {
        let c = SyncConn {
            protocol: 17,
            flags: flags::MASQ | flags::IN_SEQ | flags::HASHED,
            state: 0,
            cport: 5060,
            vport: 5060,
            dport: 5060,
            fwmark: 42,
            timeout: 300,
            caddr: ip("2001:db8::1"),
            vaddr: ip("2001:db8::100"),
            daddr: ip("fd00::11"),
            seq: Some(SeqData {
                in_seq: Seq {
                    init_seq: 0x01020304,
                    delta: 5,
                    previous_delta: 6,
                },
                out_seq: Seq {
                    init_seq: 7,
                    delta: 8,
                    previous_delta: 0xfffffff0,
                },
            }),
            pe_data: Some(b"call-id-1234@example.net"),
            pe_name: Some(b"sip"),
            local: None,
        };
        let msgs = pack(&[c], 1, DEFAULT_MAX_LEN).unwrap();
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        let len = 72 + 26 + 2 + 24 + 2 + 3;
        assert_eq!(conn_len(&c), Ok(len));
        assert_eq!(m.len(), 8 + len);
        assert_eq!(m[8], 1, "type: IPv6");
        assert_eq!(rd16(m, 10) as usize, len);
        // HASHED is never sent.
        assert_eq!(rd32(m, 12), flags::IN_SEQ);
        // Options after the fixed part: SEQ (type 1, 24 bytes, network order).
        assert_eq!(&m[8 + 72..8 + 72 + 6], &[1, 24, 1, 2, 3, 4]);
        let back = collect(m);
        let expect = SyncConn {
            flags: flags::IN_SEQ,
            ..c
        };
        assert_eq!(back, vec![Ok(expect)]);
    }

    #[test]
    fn records_are_padded_to_32_bits_between_not_after() {
        let mut with_seq = tcp_dr();
        with_seq.flags |= flags::OUT_SEQ;
        with_seq.seq = Some(SeqData::default());
        // 36 + 26 = 62 bytes: alone, the message is 70 bytes (no trailing pad).
        let one = pack(&[with_seq], 0, DEFAULT_MAX_LEN).unwrap();
        assert_eq!(one[0].len(), 70);
        // Followed by another record: 2 zero bytes, the next record at offset 72.
        let two = pack(&[with_seq, tcp_dr()], 0, DEFAULT_MAX_LEN).unwrap();
        let m = &two[0];
        assert_eq!(m.len(), 8 + 62 + 2 + 36);
        assert_eq!(&m[70..72], &[0, 0]);
        assert_eq!(rd16(m, 72 + 2), 36);
        assert_eq!(collect(m), vec![Ok(with_seq), Ok(tcp_dr())]);
    }

    fn many(n: usize) -> Vec<SyncConn<'static>> {
        (0..n)
            .map(|i| {
                let mut c = tcp_dr();
                c.cport = 1024 + i as u16;
                c.caddr = IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i as u32));
                if i % 3 == 0 {
                    c.flags |= flags::IN_SEQ;
                    c.seq = Some(SeqData {
                        in_seq: Seq {
                            init_seq: i as u32,
                            delta: 1,
                            previous_delta: 0,
                        },
                        out_seq: Seq::default(),
                    });
                }
                if i % 7 == 0 {
                    c.caddr = IpAddr::V6(Ipv6Addr::from(i as u128));
                    c.vaddr = ip("2001:db8::100");
                    c.daddr = ip("fd00::11");
                }
                c
            })
            .collect()
    }

    #[test]
    fn many_records_pack_and_parse_back() {
        let conns = many(1000);
        let msgs = pack(&conns, 3, DEFAULT_MAX_LEN).unwrap();
        let mut back = Vec::new();
        for (k, m) in msgs.iter().enumerate() {
            assert!(m.len() <= DEFAULT_MAX_LEN);
            let msg = SyncMessage::parse(m).unwrap();
            assert_eq!(msg.syncid(), 3);
            let before = back.len();
            for r in msg.conns() {
                back.push(r.unwrap());
            }
            assert_eq!(back.len() - before, usize::from(msg.nr_conns()));
            // Every message but the last is full: the next record would not fit.
            if k + 1 < msgs.len() {
                let next = &conns[back.len()];
                let pad = (4 - (m.len() & 3)) & 3;
                assert!(m.len() + pad + conn_len(next).unwrap() > DEFAULT_MAX_LEN);
            }
        }
        assert_eq!(back, conns);
        // 1000 records of 36..134 bytes in 1472-byte messages.
        assert!(msgs.len() > 30 && msgs.len() < 80, "{}", msgs.len());
    }

    #[test]
    fn at_most_255_records_per_message() {
        let conns: Vec<SyncConn<'_>> = (0..600).map(|_| tcp_dr()).collect();
        let msgs = pack(&conns, 0, 65_000).unwrap();
        let counts: Vec<u8> = msgs
            .iter()
            .map(|m| SyncMessage::parse(m).unwrap().nr_conns())
            .collect();
        assert_eq!(counts, vec![255, 255, 90]);
    }

    #[test]
    fn builder_refuses_what_it_cannot_encode() {
        let mut buf = [0u8; 64];
        let mut b = SyncMessageBuilder::new(&mut buf, 0).unwrap();
        let mut c = tcp_dr();
        c.daddr = ip("::1");
        assert_eq!(b.push(&c), Err(SyncBuildError::MixedFamilies));
        let mut c = tcp_dr();
        c.flags |= flags::ONE_PACKET;
        assert_eq!(b.push(&c), Err(SyncBuildError::OnePacket));
        let mut c = tcp_dr();
        c.flags |= flags::IN_SEQ;
        assert_eq!(b.push(&c), Err(SyncBuildError::SeqMismatch));
        let mut c = tcp_dr();
        c.pe_data = Some(b"x");
        assert_eq!(b.push(&c), Err(SyncBuildError::BadPeData));
        c.pe_name = Some(b"a-name-longer-than-16");
        assert_eq!(b.push(&c), Err(SyncBuildError::BadPeName));
        b.push(&tcp_dr()).unwrap();
        assert_eq!(b.push(&tcp_dr()), Err(SyncBuildError::Full));
        let mut v6 = tcp_dr();
        v6.caddr = ip("::1");
        v6.vaddr = ip("::2");
        v6.daddr = ip("::3");
        assert_eq!(b.push(&v6), Err(SyncBuildError::TooLarge));
        assert_eq!(
            SyncMessageBuilder::new(&mut [0u8; 7], 0).err(),
            Some(SyncBuildError::BufferTooSmall)
        );
    }

    /// A message of `records` (each already encoded, padded between) with a correct header.
    fn message(nr: u8, records: &[&[u8]]) -> Vec<u8> {
        let mut m = vec![0, 9, 0, 0, nr, 1, 0, 0];
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                while m.len() % 4 != 0 {
                    m.push(0);
                }
            }
            m.extend_from_slice(r);
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    fn encoded(c: &SyncConn<'_>) -> Vec<u8> {
        let m = pack(&[*c], 0, DEFAULT_MAX_LEN).unwrap().remove(0);
        m[8..].to_vec()
    }

    #[test]
    fn malformed_messages_and_records() {
        assert_eq!(
            SyncMessage::parse(&[0, 1, 0]).err(),
            Some(SyncError::HeaderTooShort)
        );
        let good = encoded(&tcp_dr());
        let mut m = message(1, &[&good]);
        m[3] += 1;
        assert_eq!(SyncMessage::parse(&m).err(), Some(SyncError::BadSize));

        // Two records announced, one present: the first is returned, then the error.
        let m = message(2, &[&good]);
        assert_eq!(
            collect(&m),
            vec![Ok(tcp_dr()), Err(SyncError::TruncatedConn)]
        );

        // A record size past the end, and a record version 1.
        let mut r = good.clone();
        r[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            collect(&message(1, &[&r])),
            vec![Err(SyncError::ConnBeyondMessage)]
        );
        let mut r = good.clone();
        r[2] = 0x10;
        assert_eq!(
            collect(&message(1, &[&r])),
            vec![Err(SyncError::UnknownConnVersion)]
        );
        // Bad type, then nothing more (fatal).
        let mut r = good.clone();
        r[0] = 2;
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::BadConnType)]
        );
        // A record size of 0, and an IPv6 record of IPv4 size: shorter than their fixed part.
        let mut r = good.clone();
        r[2..4].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::ConnTooShort)]
        );
        let mut r = good.clone();
        r[0] = 1;
        assert_eq!(
            collect(&message(1, &[&r])),
            vec![Err(SyncError::ConnTooShort)]
        );
        // An option with length 0, and one running past the record.
        let mut r = good.clone();
        r.extend_from_slice(&[opt::PE_NAME, 0, 0, 0]);
        r[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(collect(&message(1, &[&r])), vec![Err(SyncError::BadOption)]);
        let mut r = good.clone();
        r.extend_from_slice(&[opt::PE_NAME, 9, b's', b'i']);
        r[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(collect(&message(1, &[&r])), vec![Err(SyncError::BadOption)]);
        // Sequence data of the wrong length.
        let mut r = good.clone();
        r.extend_from_slice(&[opt::SEQ_DATA, 2, 0, 0]);
        r[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            collect(&message(1, &[&r])),
            vec![Err(SyncError::BadSeqOption)]
        );
    }

    #[test]
    fn unknown_options_mandatory_or_not() {
        let good = encoded(&tcp_dr());
        // An unknown mandatory option drops that record only: the next one is read.
        let mut r = good.clone();
        r.extend_from_slice(&[5, 2, 0xaa, 0xbb]);
        r[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::UnknownMandatoryOption), Ok(tcp_dr())]
        );
        // The same with IPVS_OPT_F_PARAM is ignored.
        r[36] = 5 | opt::F_PARAM;
        assert_eq!(collect(&message(1, &[&r])), vec![Ok(tcp_dr())]);
        // PE data without a name drops the record only.
        let mut r = good.clone();
        r.extend_from_slice(&[opt::PE_DATA, 2, b'i', b'd']);
        r[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::PeDataWithoutName), Ok(tcp_dr())]
        );
        assert!(!SyncError::PeDataWithoutName.is_fatal());
        assert!(SyncError::BadOption.is_fatal());
    }

    #[test]
    fn fullnat_local_option_is_an_ignorable_rvs_extension() {
        let mut c = tcp_dr();
        c.flags = flags::MASQ;
        c.local = Some((ip("10.0.0.250"), 20001));
        assert_eq!(conn_len(&c), Ok(36 + 2 + 6));
        let m = pack(&[c], 0, DEFAULT_MAX_LEN).unwrap().remove(0);
        // After the fixed part: type RVS_LOCAL with IPVS_OPT_F_PARAM (0x30 | 0x40), length
        // 6, the address, the port.
        assert_eq!(&m[8 + 36..], &[0x70, 6, 10, 0, 0, 250, 0x4e, 0x21]);
        assert_eq!(rd16(&m, 10), 44);
        assert_eq!(collect(&m), vec![Ok(c)]);
        // What a kernel does with it: the type without F_PARAM is unknown to it, and
        // F_PARAM says it may be skipped. Renumbered to a type rvs does not know either,
        // the record parses as the same connection without the mapping.
        let mut k = m.clone();
        k[8 + 36] = 0x3f | opt::F_PARAM;
        assert_eq!(collect(&k), vec![Ok(SyncConn { local: None, ..c })]);

        let mut v6 = c;
        v6.caddr = ip("2001:db8::1");
        v6.vaddr = ip("2001:db8::100");
        v6.daddr = ip("fd00::11");
        assert_eq!(
            conn_len(&v6),
            Err(SyncBuildError::MixedFamilies),
            "an IPv4 local address on an IPv6 record"
        );
        v6.local = Some((ip("fd00::250"), 65535));
        assert_eq!(conn_len(&v6), Ok(72 + 2 + 18));
        let m = pack(&[v6, c], 0, DEFAULT_MAX_LEN).unwrap().remove(0);
        assert_eq!(collect(&m), vec![Ok(v6), Ok(c)]);
    }

    #[test]
    fn a_bad_local_option_drops_its_record_only() {
        let good = encoded(&tcp_dr());
        // A 4-byte local option on an IPv4 record (6 expected).
        let mut r = good.clone();
        r.extend_from_slice(&[opt::RVS_LOCAL | opt::F_PARAM, 4, 10, 0, 0, 1]);
        let len = r.len() as u16;
        r[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::BadLocalOption), Ok(tcp_dr())]
        );
        // Twice.
        let mut r = good.clone();
        for _ in 0..2 {
            r.extend_from_slice(&[opt::RVS_LOCAL, 6, 10, 0, 0, 1, 0, 80]);
        }
        let len = r.len() as u16;
        r[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::BadLocalOption), Ok(tcp_dr())]
        );
        assert!(!SyncError::BadLocalOption.is_fatal());
        // A bad local option does not hide a fatal error after it.
        let mut r = good.clone();
        r.extend_from_slice(&[opt::RVS_LOCAL, 1, 0, opt::SEQ_DATA, 2, 0, 0, 0]);
        let len = r.len() as u16;
        r[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            collect(&message(2, &[&r, &good])),
            vec![Err(SyncError::BadSeqOption)]
        );
    }

    #[test]
    fn version_0_is_read() {
        let mut m = vec![2u8, 5, 0, 0];
        // A plain record: UDP 53, 192.0.2.7:33000 -> 198.51.100.53 -> 10.0.0.53, flags MASQ.
        m.extend_from_slice(&[0, 17, 0x80, 0xe8, 0, 53, 0, 53]);
        m.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 53, 10, 0, 0, 53]);
        m.extend_from_slice(&[0, 0, 0, 0]);
        // A record with sequence data (flags IN_SEQ), in this host's order.
        m.extend_from_slice(&[0, 6, 0x80, 0xe9, 0, 80, 0, 80]);
        m.extend_from_slice(&[192, 0, 2, 8, 198, 51, 100, 80, 10, 0, 0, 80]);
        m.extend_from_slice(&[0x04, 0x00, 0, 1]);
        for w in [10u32, 20, 30, 40, 50, 60] {
            m.extend_from_slice(&w.to_ne_bytes());
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(m.len(), 4 + 24 + 48);
        let msg = SyncMessage::parse(&m).unwrap();
        assert_eq!(msg.version(), SyncVersion::V0);
        assert_eq!(msg.syncid(), 5);
        let recs: Vec<SyncConn<'_>> = msg.conns().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].protocol, 17);
        assert_eq!(recs[0].cport, 33000);
        assert_eq!(recs[0].daddr, ip("10.0.0.53"));
        assert_eq!(recs[0].timeout, 0);
        assert_eq!(recs[0].seq, None);
        assert_eq!(recs[1].flags, flags::IN_SEQ);
        assert_eq!(recs[1].state, 1);
        let s = recs[1].seq.unwrap();
        assert_eq!((s.in_seq.init_seq, s.out_seq.previous_delta), (10, 60));
        // A v0 record cut short is fatal.
        let cut = &mut m[..4 + 24 + 30].to_vec();
        let len = cut.len() as u16;
        cut[2..4].copy_from_slice(&len.to_be_bytes());
        let r: Vec<_> = SyncMessage::parse(cut).unwrap().conns().collect();
        assert_eq!(r[1], Err(SyncError::ConnBeyondMessage));
    }

    fn arb_conn() -> impl Strategy<Value = SyncConn<'static>> {
        (
            any::<u8>(),
            any::<u32>(),
            any::<(u16, u16, u16, u16)>(),
            any::<(u32, u32)>(),
            any::<bool>(),
            any::<[u8; 48]>(),
            proptest::option::of(any::<[u32; 6]>()),
            proptest::option::of((1usize..=40, 1usize..=16)),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(
                |(proto, fl, (state, cp, vp, dp), (mark, to), v6, a, seq, pe, lport)| {
                    let addr = |i: usize| -> IpAddr {
                        if v6 {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(&a[i * 16..i * 16 + 16]);
                            IpAddr::V6(Ipv6Addr::from(o))
                        } else {
                            IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]))
                        }
                    };
                    let mut flags_ = fl & !(flags::ONE_PACKET | flags::HASHED | flags::SEQ_MASK);
                    let seq = seq.map(|w| {
                        flags_ |= flags::OUT_SEQ;
                        SeqData {
                            in_seq: Seq {
                                init_seq: w[0],
                                delta: w[1],
                                previous_delta: w[2],
                            },
                            out_seq: Seq {
                                init_seq: w[3],
                                delta: w[4],
                                previous_delta: w[5],
                            },
                        }
                    });
                    const DATA: &[u8; 40] = b"0123456789abcdefghijklmnopqrstuvwxyzABCD";
                    SyncConn {
                        protocol: proto,
                        flags: flags_,
                        state,
                        cport: cp,
                        vport: vp,
                        dport: dp,
                        fwmark: mark,
                        timeout: to,
                        caddr: addr(0),
                        vaddr: addr(1),
                        daddr: addr(2),
                        seq,
                        pe_data: pe.map(|(d, _)| &DATA[..d]),
                        pe_name: pe.map(|(_, n)| &DATA[..n]),
                        local: lport.map(|p| (addr(1), p)),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut b = bytes;
            // Mostly make the size field right so the records are reached, and often make
            // the header a version 1 one.
            if b.len() >= 4 && b[0] & 3 != 3 {
                let len = b.len() as u16;
                b[2..4].copy_from_slice(&len.to_be_bytes());
                if b.len() >= 8 && b[0] & 1 == 0 {
                    b[0] = 0;
                    b[5] = 1;
                    b[6] = 0;
                    b[7] = 0;
                }
            }
            if let Ok(m) = SyncMessage::parse(&b) {
                let n = m.conns().count();
                prop_assert!(n <= usize::from(m.nr_conns()));
            }
        }

        #[test]
        fn structured_garbage_never_panics(
            nr in 0u8..6,
            recs in proptest::collection::vec(
                (0u8..3, 0u16..140, proptest::collection::vec(any::<u8>(), 0..140)), 0..5),
        ) {
            // Records with plausible types and sizes and random contents (options included).
            let mut m = vec![0, 0, 0, 0, nr, 1, 0, 0];
            for (ty, size, body) in &recs {
                while m.len() % 4 != 0 {
                    m.push(0);
                }
                let mut r = body.clone();
                r.resize(r.len().max(4), 0);
                r[0] = *ty;
                r[2..4].copy_from_slice(&size.to_be_bytes());
                m.extend_from_slice(&r);
            }
            let len = m.len() as u16;
            m[2..4].copy_from_slice(&len.to_be_bytes());
            let msg = SyncMessage::parse(&m).unwrap();
            prop_assert_eq!(msg.version(), SyncVersion::V1);
            prop_assert!(msg.conns().count() <= usize::from(nr));
        }

        #[test]
        fn round_trip(conns in proptest::collection::vec(arb_conn(), 0..60),
                      max in 200usize..3000, syncid in any::<u8>()) {
            let msgs = pack(&conns, syncid, max).unwrap();
            let mut back = Vec::new();
            for m in &msgs {
                prop_assert!(m.len() <= max);
                let msg = SyncMessage::parse(m).unwrap();
                prop_assert_eq!(msg.version(), SyncVersion::V1);
                prop_assert!(msg.accepted_by(syncid) && msg.accepted_by(0));
                for r in msg.conns() {
                    back.push(r.unwrap());
                }
            }
            prop_assert_eq!(back, conns);
        }
    }
}
