//! ARP for Ethernet/IPv4 (RFC 826): parse requests, build replies, requests and gratuitous ARP.
//!
//! The director answers ARP for the VIPs and floating IPs it owns and announces them on
//! takeover. Other hardware or protocol types are refused as [`Malformed::BadArp`]; no ARP
//! cache lives here.

use super::ethernet::{self, EtherType, EthernetAddress};
use super::{Malformed, rd16, wr16};
use std::net::Ipv4Addr;

/// Byte ranges of an Ethernet/IPv4 ARP packet.
pub mod field {
    use core::ops::Range;
    /// Hardware type (1 = Ethernet).
    pub const HTYPE: Range<usize> = 0..2;
    /// Protocol type (0x0800).
    pub const PTYPE: Range<usize> = 2..4;
    /// Hardware address length (6).
    pub const HLEN: usize = 4;
    /// Protocol address length (4).
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Range<usize> = 6..8;
    /// Sender hardware address.
    pub const SHA: Range<usize> = 8..14;
    /// Sender protocol address.
    pub const SPA: Range<usize> = 14..18;
    /// Target hardware address.
    pub const THA: Range<usize> = 18..24;
    /// Target protocol address.
    pub const TPA: Range<usize> = 24..28;
    /// Packet length.
    pub const LEN: usize = 28;
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpOperation(pub u16);

impl ArpOperation {
    /// who-has.
    pub const REQUEST: ArpOperation = ArpOperation(1);
    /// is-at.
    pub const REPLY: ArpOperation = ArpOperation(2);
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn mac(b: &[u8]) -> EthernetAddress {
    let mut a = [0; 6];
    a.copy_from_slice(&b[..6]);
    EthernetAddress(a)
}

fn ip4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wrap without checks.
    pub fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wrap, checking length and that it is Ethernet/IPv4 ARP.
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>, Malformed> {
        let b = buffer.as_ref();
        if b.len() < field::LEN {
            return Err(Malformed::Truncated);
        }
        if rd16(b, 0) != 1
            || rd16(b, 2) != EtherType::IPV4.0
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Malformed::BadArp);
        }
        Ok(ArpPacket { buffer })
    }

    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation(rd16(self.buffer.as_ref(), 6))
    }
    /// Sender hardware address.
    pub fn sender_hw(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::SHA])
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip4(&self.buffer.as_ref()[field::SPA])
    }
    /// Target hardware address.
    pub fn target_hw(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::THA])
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip4(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Set the operation.
    pub fn set_operation(&mut self, op: ArpOperation) {
        wr16(self.buffer.as_mut(), 6, op.0);
    }
    /// Set the sender hardware address.
    pub fn set_sender_hw(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0);
    }
    /// Set the sender protocol address.
    pub fn set_sender_ip(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }
    /// Set the target hardware address.
    pub fn set_target_hw(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0);
    }
    /// Set the target protocol address.
    pub fn set_target_ip(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }
}

/// A parsed (or to-be-built) Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_hw: EthernetAddress,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_hw: EthernetAddress,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Read a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> ArpRepr {
        ArpRepr {
            operation: p.operation(),
            sender_hw: p.sender_hw(),
            sender_ip: p.sender_ip(),
            target_hw: p.target_hw(),
            target_ip: p.target_ip(),
        }
    }

    /// who-has `target_ip`, tell `my_ip` at `my_hw`.
    pub fn request(my_hw: EthernetAddress, my_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::REQUEST,
            sender_hw: my_hw,
            sender_ip: my_ip,
            target_hw: EthernetAddress::ZERO,
            target_ip,
        }
    }

    /// The reply to `request` saying its target IP is at `my_hw`.
    pub fn reply(my_hw: EthernetAddress, request: &ArpRepr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::REPLY,
            sender_hw: my_hw,
            sender_ip: request.target_ip,
            target_hw: request.sender_hw,
            target_ip: request.sender_ip,
        }
    }

    /// A gratuitous ARP announcing `ip` at `hw`: a request with sender and target IP both
    /// `ip` (RFC 5227 section 3 "ARP Announcement"), as Linux `arping -U` and keepalived send.
    pub fn gratuitous(hw: EthernetAddress, ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::REQUEST,
            sender_hw: hw,
            sender_ip: ip,
            target_hw: EthernetAddress::ZERO,
            target_ip: ip,
        }
    }

    /// Write the 28-byte ARP packet into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Malformed> {
        if buf.len() < field::LEN {
            return Err(Malformed::Truncated);
        }
        wr16(buf, 0, 1);
        wr16(buf, 2, EtherType::IPV4.0);
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        let mut p = ArpPacket::new_unchecked(&mut buf[..field::LEN]);
        p.set_operation(self.operation);
        p.set_sender_hw(self.sender_hw);
        p.set_sender_ip(self.sender_ip);
        p.set_target_hw(self.target_hw);
        p.set_target_ip(self.target_ip);
        Ok(())
    }

    /// Write an Ethernet frame carrying this message into `buf` and return its length (42;
    /// the NIC pads to 60). The Ethernet destination is broadcast for requests and the
    /// target hardware address for replies; the source is the sender hardware address.
    pub fn emit_frame(&self, buf: &mut [u8]) -> Result<usize, Malformed> {
        let len = ethernet::field::HEADER_LEN + field::LEN;
        if buf.len() < len {
            return Err(Malformed::Truncated);
        }
        let dst = if self.operation == ArpOperation::REPLY {
            self.target_hw
        } else {
            EthernetAddress::BROADCAST
        };
        ethernet::emit_header(buf, dst, self.sender_hw, EtherType::ARP)?;
        self.emit(&mut buf[ethernet::field::HEADER_LEN..])?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_round_trip() {
        let me = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let peer = EthernetAddress([2, 0, 0, 0, 0, 2]);
        let req = ArpRepr::request(
            peer,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 100),
        );
        let mut buf = [0u8; 60];
        assert_eq!(req.emit_frame(&mut buf).unwrap(), 42);
        let e = ethernet::EthernetFrame::new_checked(&buf[..42]).unwrap();
        assert_eq!(e.ethertype(), EtherType::ARP);
        assert_eq!(e.dst_addr(), EthernetAddress::BROADCAST);
        let parsed = ArpRepr::parse(&ArpPacket::new_checked(e.payload()).unwrap());
        assert_eq!(parsed, req);
        let rep = ArpRepr::reply(me, &parsed);
        assert_eq!(rep.sender_ip, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(rep.target_hw, peer);
        let g = ArpRepr::gratuitous(me, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(g.sender_ip, g.target_ip);
        let mut bad = [0u8; 28];
        g.emit(&mut bad).unwrap();
        bad[5] = 16;
        assert_eq!(
            ArpPacket::new_checked(&bad[..]).unwrap_err(),
            Malformed::BadArp
        );
    }
}
