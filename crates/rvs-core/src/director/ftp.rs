//! The FTP helper for NAT virtual services: what the kernel's `ip_vs_ftp.c` does.
//!
//! FTP carries addresses inside its control channel. Through a NAT VIP:
//! - **Passive mode**: the real server answers `PASV` with `227 Entering Passive Mode
//!   (h1,h2,h3,h4,p1,p2)` naming its *private* address. The director rewrites it to the VIP
//!   (`ip_vs_ftp_out()`), and expects the client's data connection to VIP:port, which must go
//!   to the same real server and port. `EPSV`'s `229 ... (|||port|)` carries no address: only
//!   the expectation is needed.
//! - **Active mode**: the client sends `PORT h1,h2,h3,h4,p1,p2` (or `EPRT |af|addr|port|`)
//!   naming its own public address, which stays as it is (`ip_vs_ftp_in()`); the real server
//!   then connects from its port 20 (`dport - 1`) to that address through the director, which
//!   must translate that connection's source to VIP:20.
//!
//! Rewriting the 227 reply changes the payload length, so the director shifts the sequence
//! numbers of later server→client segments and the acknowledgements of client→server ones
//! ([`SeqAdjust`], the kernel's `ip_vs_seq` with `init_seq`, `delta`, `previous_delta`).
//!
//! This module is pure text and arithmetic: finding and rewriting the commands, and the
//! sequence bookkeeping. The director decides when to call it and creates the connections.

use std::net::{IpAddr, Ipv4Addr};

/// The FTP control port (`FTPPORT`).
pub const FTP_PORT: u16 = 21;

/// An address and port found in a control-channel line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Byte range of the address text in the payload (`h1,h2,h3,h4,p1,p2`, or for EPSV/EPRT
    /// the whole `|...|` field).
    pub start: usize,
    /// End of that range (exclusive).
    pub end: usize,
    /// The address, when the line carries one (not for EPSV).
    pub addr: Option<IpAddr>,
    /// The port.
    pub port: u16,
}

/// What a control-channel segment announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Server → client `227` reply: the server listens at this address and port.
    Passive(Found),
    /// Server → client `229` reply: the server listens at this port (of its address).
    ExtendedPassive(Found),
    /// Client → server `PORT` / `EPRT`: the client listens at this address and port.
    Active(Found),
}

/// Parse `h1,h2,h3,h4,p1,p2` starting at `at`: the address, port and the end of the text.
fn parse_tuple(b: &[u8], at: usize) -> Option<(Ipv4Addr, u16, usize)> {
    let mut nums = [0u32; 6];
    let mut i = at;
    for (k, n) in nums.iter_mut().enumerate() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            *n = *n * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i == start || *n > 255 {
            return None;
        }
        if k < 5 {
            if b.get(i) != Some(&b',') {
                return None;
            }
            i += 1;
        }
    }
    let addr = Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8);
    Some((addr, (nums[4] << 8 | nums[5]) as u16, i))
}

/// Parse `|...|` fields of EPRT (`|1|addr|port|`) / EPSV (`|||port|`) starting at the first
/// delimiter at `at` (RFC 2428: the delimiter is the first character).
fn parse_extended(b: &[u8], at: usize) -> Option<(Option<IpAddr>, u16, usize)> {
    let d = *b.get(at)?;
    if !(33..=126).contains(&d) {
        return None;
    }
    let mut fields: [&[u8]; 3] = [&[]; 3];
    let mut i = at + 1;
    for f in &mut fields {
        let start = i;
        while i < b.len() && b[i] != d && b[i] != b'\r' && b[i] != b'\n' {
            i += 1;
        }
        if b.get(i) != Some(&d) {
            return None;
        }
        *f = &b[start..i];
        i += 1;
    }
    let port: u16 = std::str::from_utf8(fields[2]).ok()?.parse().ok()?;
    let addr = if fields[1].is_empty() {
        None
    } else {
        Some(std::str::from_utf8(fields[1]).ok()?.parse().ok()?)
    };
    Some((addr, port, i))
}

fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Look at a server → client control segment (`ip_vs_ftp_out()`): a `227` or `229` reply.
pub fn inspect_reply(payload: &[u8]) -> Option<Announce> {
    if payload.starts_with(b"227 ") || payload.starts_with(b"227-") {
        let open = payload.iter().position(|&c| c == b'(')?;
        let (a, port, end) = parse_tuple(payload, open + 1)?;
        return Some(Announce::Passive(Found {
            start: open + 1,
            end,
            addr: Some(IpAddr::V4(a)),
            port,
        }));
    }
    if payload.starts_with(b"229 ") {
        let open = payload.iter().position(|&c| c == b'(')?;
        let (addr, port, end) = parse_extended(payload, open + 1)?;
        return Some(Announce::ExtendedPassive(Found {
            start: open + 1,
            end,
            addr,
            port,
        }));
    }
    None
}

/// Look at a client → server control segment (`ip_vs_ftp_in()`): `PORT` or `EPRT`.
pub fn inspect_command(payload: &[u8]) -> Option<Announce> {
    if starts_with_ci(payload, b"PORT ") {
        let (a, port, end) = parse_tuple(payload, 5)?;
        return Some(Announce::Active(Found {
            start: 5,
            end,
            addr: Some(IpAddr::V4(a)),
            port,
        }));
    }
    if starts_with_ci(payload, b"EPRT ") {
        let (addr, port, end) = parse_extended(payload, 5)?;
        return Some(Announce::Active(Found {
            start: 5,
            end,
            addr,
            port,
        }));
    }
    None
}

/// The text of an IPv4 address and port in `227` form: `h1,h2,h3,h4,p1,p2`.
pub fn tuple_text(addr: Ipv4Addr, port: u16, out: &mut [u8; 24]) -> usize {
    let o = addr.octets();
    let parts = [o[0], o[1], o[2], o[3], (port >> 8) as u8, port as u8];
    let mut n = 0;
    for (k, p) in parts.iter().enumerate() {
        let mut digits = [0u8; 3];
        let mut len = 0;
        let mut v = *p;
        loop {
            digits[len] = b'0' + v % 10;
            len += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits[..len].iter().rev() {
            out[n] = *d;
            n += 1;
        }
        if k < 5 {
            out[n] = b',';
            n += 1;
        }
    }
    n
}

/// Sequence-number bookkeeping of a control connection whose server → client payload grew
/// or shrank: the kernel's `struct ip_vs_seq` (`cp->out_seq`) with `vs_seq_update()`,
/// `vs_fix_seq()` and `vs_fix_ack_seq()` (`ip_vs_app.c`).
///
/// `delta` applies to segments that start after `init_seq` (the start of the last rewritten
/// segment); `previous_delta` to that segment and earlier ones (retransmissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqAdjust {
    /// Start (original numbering) of the last segment whose length changed.
    pub init_seq: u32,
    /// Bytes added (negative: removed) by all rewrites so far.
    pub delta: i32,
    /// The delta before the last rewrite.
    pub previous_delta: i32,
    /// A rewrite has been recorded (`IP_VS_CONN_F_OUT_SEQ`).
    pub set: bool,
}

/// `a` is after `b` in sequence space (the kernel's `after()`).
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

impl SeqAdjust {
    /// The segment starting at `seq` (original numbering) changed length by `diff`
    /// (`vs_seq_update()`): only the first rewrite or one later than the last counts.
    pub fn record(&mut self, seq: u32, diff: i32) {
        if !self.set || after(seq, self.init_seq) {
            self.previous_delta = self.delta;
            self.delta += diff;
            self.init_seq = seq;
            self.set = true;
        }
    }

    /// The sequence number a server → client segment carries after adjustment
    /// (`vs_fix_seq()`).
    pub fn out_seq(&self, seq: u32) -> u32 {
        if !self.active() {
            return seq;
        }
        let d = if after(seq, self.init_seq) {
            self.delta
        } else {
            self.previous_delta
        };
        seq.wrapping_add(d as u32)
    }

    /// The acknowledgement a client → server segment carries, back in the server's
    /// numbering (`vs_fix_ack_seq()`: compared with `init_seq + delta`).
    pub fn in_ack(&self, ack: u32) -> u32 {
        if !self.active() {
            return ack;
        }
        let d = if after(ack, self.init_seq.wrapping_add(self.delta as u32)) {
            self.delta
        } else {
            self.previous_delta
        };
        ack.wrapping_sub(d as u32)
    }

    /// Whether any adjustment is in force.
    pub fn active(&self) -> bool {
        self.delta != 0 || self.previous_delta != 0
    }
}

/// How long an expected data connection waits for its first packet: the kernel's initial
/// timeout of a new entry (`cp->timeout = 3*HZ` in `ip_vs_conn_new()`).
pub const EXPECT_TIMEOUT_SECS: u64 = 3;

/// A passive-mode data connection the director expects (the kernel's `IP_VS_CONN_F_NO_CPORT`
/// entry from `ip_vs_ftp_out()`): from `caddr` (any port) to `vaddr:vport`, to be sent to
/// `daddr:dport` on the control connection's real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The client.
    pub caddr: IpAddr,
    /// The VIP.
    pub vaddr: IpAddr,
    /// The announced port.
    pub vport: u16,
    /// The real server's address.
    pub daddr: IpAddr,
    /// The real server's port.
    pub dport: u16,
    /// The control connection's real server (director id).
    pub dest: u32,
    /// The control connection's service (director id).
    pub service: u32,
    /// When the expectation lapses (monotonic nanoseconds).
    pub until: u64,
}

/// A bounded set of expectations; the oldest is replaced when full.
#[derive(Debug)]
pub struct Expectations {
    slots: Vec<Option<Expect>>,
    next: usize,
    /// Occupied slots (so the check on every SYN is one comparison).
    live: usize,
}

impl Expectations {
    /// Room for `n` outstanding expectations.
    pub fn new(n: usize) -> Expectations {
        Expectations {
            slots: vec![None; n.max(1)],
            next: 0,
            live: 0,
        }
    }

    /// Expect a data connection (replacing an equal one).
    pub fn add(&mut self, e: Expect) {
        let same = |x: &Expect| x.caddr == e.caddr && x.vaddr == e.vaddr && x.vport == e.vport;
        if let Some(slot) = self.slots.iter_mut().find(|s| s.as_ref().is_some_and(same)) {
            *slot = Some(e);
            return;
        }
        let n = self.slots.len();
        let free = self.slots.iter().position(Option::is_none);
        if free.is_some() {
            self.live += 1;
        }
        let i = free.unwrap_or(self.next % n);
        self.slots[i] = Some(e);
        self.next = (i + 1) % n;
    }

    /// Take the expectation a SYN from `caddr` to `vaddr:vport` fulfils, if any (live).
    pub fn take(&mut self, caddr: IpAddr, vaddr: IpAddr, vport: u16, now: u64) -> Option<Expect> {
        // Lapsed expectations are cleared on the way (they would otherwise only be
        // overwritten).
        let mut found = None;
        for slot in &mut self.slots {
            let Some(x) = slot else { continue };
            if x.until <= now {
                *slot = None;
                self.live -= 1;
            } else if found.is_none() && x.caddr == caddr && x.vaddr == vaddr && x.vport == vport {
                found = slot.take();
                self.live -= 1;
            }
        }
        found
    }

    /// Whether any expectation is outstanding (so the engine can skip the search).
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

/// The sequence state of FTP control connections whose replies were resized, keyed by the
/// connection (its id plus client address and port, so a reused id never matches).
#[derive(Debug)]
pub struct Controls {
    slots: Vec<Option<(u32, IpAddr, u16, SeqAdjust)>>,
    next: usize,
}

impl Controls {
    /// Room for `n` resized control connections (the oldest is forgotten beyond that).
    pub fn new(n: usize) -> Controls {
        Controls {
            slots: vec![None; n.max(1)],
            next: 0,
        }
    }

    /// The state of a control connection, if it has any.
    pub fn get(&self, id: u32, caddr: IpAddr, cport: u16) -> Option<SeqAdjust> {
        self.slots
            .iter()
            .flatten()
            .find(|(i, a, p, _)| *i == id && *a == caddr && *p == cport)
            .map(|(_, _, _, s)| *s)
    }

    /// Store the state of a control connection.
    pub fn set(&mut self, id: u32, caddr: IpAddr, cport: u16, seq: SeqAdjust) {
        let mine = |x: &(u32, IpAddr, u16, SeqAdjust)| x.0 == id && x.1 == caddr && x.2 == cport;
        if let Some(slot) = self.slots.iter_mut().find(|s| s.as_ref().is_some_and(mine)) {
            *slot = Some((id, caddr, cport, seq));
            return;
        }
        let n = self.slots.len();
        let i = self
            .slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.next % n);
        self.slots[i] = Some((id, caddr, cport, seq));
        self.next = (i + 1) % n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_passive_reply_and_rewrites_its_address() {
        let p = b"227 Entering Passive Mode (10,2,0,11,195,80).\r\n";
        let Some(Announce::Passive(f)) = inspect_reply(p) else {
            panic!("not found")
        };
        assert_eq!(f.addr, Some("10.2.0.11".parse().unwrap()));
        assert_eq!(f.port, 195 * 256 + 80);
        assert_eq!(&p[f.start..f.end], b"10,2,0,11,195,80");
        let mut t = [0u8; 24];
        let n = tuple_text(Ipv4Addr::new(192, 168, 100, 100), f.port, &mut t);
        assert_eq!(&t[..n], b"192,168,100,100,195,80");
    }

    #[test]
    fn finds_port_eprt_and_epsv() {
        let Some(Announce::Active(f)) = inspect_command(b"PORT 10,1,0,10,4,1\r\n") else {
            panic!()
        };
        assert_eq!((f.addr, f.port), (Some("10.1.0.10".parse().unwrap()), 1025));
        let Some(Announce::Active(f)) = inspect_command(b"eprt |2|2001:db8::10|5282|\r\n") else {
            panic!()
        };
        assert_eq!(
            (f.addr, f.port),
            (Some("2001:db8::10".parse().unwrap()), 5282)
        );
        let Some(Announce::ExtendedPassive(f)) =
            inspect_reply(b"229 Entering Extended Passive Mode (|||6446|)\r\n")
        else {
            panic!()
        };
        assert_eq!((f.addr, f.port), (None, 6446));
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            &b"227 Entering Passive Mode (10,2,0,11,195)\r\n"[..],
            b"227 Entering Passive Mode (10,2,0,256,1,1)\r\n",
            b"227 no parenthesis\r\n",
            b"229 (|||notaport|)\r\n",
            b"230 Login successful.\r\n",
        ] {
            assert_eq!(inspect_reply(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(inspect_command(b"PORT 1,2,3\r\n"), None);
        assert_eq!(inspect_command(b"RETR file\r\n"), None);
    }

    #[test]
    fn sequence_adjustment_follows_the_kernel() {
        let mut s = SeqAdjust::default();
        assert_eq!(s.out_seq(5), 5);
        // A 50-byte 227 reply at seq 1000 grew by 6 bytes.
        s.record(1000, 6);
        assert_eq!(
            s.out_seq(1000),
            1000,
            "the rewritten segment itself keeps its seq"
        );
        assert_eq!(s.out_seq(1050), 1056);
        // The client acknowledges the grown segment: 1056 → 1050.
        assert_eq!(s.in_ack(1056), 1050);
        // An ack up to the segment's start is before the change.
        assert_eq!(s.in_ack(1000), 1000);
        // A second rewrite later shrinking by 2; a retransmission of an earlier one is
        // not recorded again.
        s.record(2000, -2);
        s.record(1000, 6);
        assert_eq!((s.delta, s.previous_delta), (4, 6));
        assert_eq!(s.out_seq(2040), 2044);
        assert_eq!(
            s.out_seq(1500),
            1506,
            "between the rewrites: the previous delta"
        );
        assert_eq!(s.in_ack(2044), 2040);
        assert!(s.active());
    }

    #[test]
    fn expectations_are_taken_once_and_lapse() {
        let e = |vport, until| Expect {
            caddr: "10.1.0.10".parse().unwrap(),
            vaddr: "10.1.0.100".parse().unwrap(),
            vport,
            daddr: "10.2.0.11".parse().unwrap(),
            dport: vport,
            dest: 0,
            service: 0,
            until,
        };
        let mut x = Expectations::new(4);
        assert!(x.is_empty());
        x.add(e(1000, 10));
        x.add(e(1001, 20));
        x.add(e(1001, 30)); // replaces the equal one
        let (c, v) = ("10.1.0.10".parse().unwrap(), "10.1.0.100".parse().unwrap());
        assert_eq!(x.take(c, v, 1001, 5).map(|e| e.until), Some(30));
        assert_eq!(x.take(c, v, 1001, 5), None, "taken once");
        assert!(!x.is_empty());
        assert_eq!(x.take(c, v, 1000, 10), None, "lapsed at its deadline");
        assert!(x.is_empty(), "the lapsed one was cleared");
    }
}
