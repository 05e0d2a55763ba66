//! DNS_CHECK, as keepalived's `check_dns.c`: one query over a connected UDP socket — a
//! random id, RD set, one question of the configured type and name, class IN — and the
//! first response with the same id and QR set decides: RCODE 0 passes, any other fails.
//! Datagrams shorter than a header, with another id, or that are queries are ignored
//! (`dns_recv_thread` keeps reading). The answer section is not looked at.

use rvs_core::health::DnsType;

use crate::Target;
use crate::budget::{Budget, Fail, Res};
use crate::net;

/// The DNS header's length.
const HEADER_LEN: usize = 12;

/// DNS_CHECK.
pub(crate) async fn check(qtype: DnsType, name: &str, target: &Target, budget: Budget) -> Res<()> {
    let id = random_id()?;
    let query = query(id, name, qtype.number())?;
    let sock = net::udp_connect(target).await?;
    budget.io("send", sock.send(&query)).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match budget.within(sock.recv(&mut buf)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) if net::is_port_unreachable(&e) => {
                return Err(Fail::new("port unreachable"));
            }
            Some(Err(e)) => return Err(Fail::io("recv", &e)),
            None => return Err(budget.timeout()),
        };
        match verdict(id, &buf[..n]) {
            Verdict::Ignore => continue,
            Verdict::Pass => return Ok(()),
            Verdict::Rcode(rcode) => {
                return Err(Fail::new(format!(
                    "dns: rcode {rcode} ({})",
                    rcode_name(rcode)
                )));
            }
        }
    }
}

/// A random query id (keepalived: `htons(random())`).
fn random_id() -> Res<u16> {
    let mut id = [0u8; 2];
    rustix::rand::getrandom(&mut id, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Fail::io("getrandom", &e.into()))?;
    Ok(u16::from_ne_bytes(id))
}

/// The query message.
fn query(id: u16, name: &str, qtype: u16) -> Res<Vec<u8>> {
    //= https://www.rfc-editor.org/rfc/rfc1035#section-4.1.1
    //# RD              Recursion Desired - this bit may be set in a query and
    //#                 is copied into the response.
    const RD: u16 = 0x0100;
    let mut msg = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&RD.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    msg.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    encode_name(name, &mut msg)?;
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes()); // QCLASS IN
    Ok(msg)
}

/// Appends `name` as a sequence of labels ("." is the root: a single zero octet).
fn encode_name(name: &str, out: &mut Vec<u8>) -> Res<()> {
    //= https://www.rfc-editor.org/rfc/rfc1035#section-3.1
    //# Each node has a label, which is zero to 63 octets in length.
    //= https://www.rfc-editor.org/rfc/rfc1035#section-2.3.4
    //# names           255 octets or less
    let start = out.len();
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(Fail::new(format!("dns: bad name {name:?}")));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        return Err(Fail::new(format!("dns: name {name:?} is too long")));
    }
    Ok(())
}

/// What a received datagram means for the check.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not the response to our query: keep waiting.
    Ignore,
    /// Our response, RCODE 0.
    Pass,
    /// Our response, with this error RCODE.
    Rcode(u8),
}

fn verdict(id: u16, msg: &[u8]) -> Verdict {
    if msg.len() < HEADER_LEN || u16::from_be_bytes([msg[0], msg[1]]) != id {
        return Verdict::Ignore;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    //= https://www.rfc-editor.org/rfc/rfc1035#section-4.1.1
    //# QR              A one bit field that specifies whether this message is a
    //#                 query (0), or a response (1).
    if flags & 0x8000 == 0 {
        return Verdict::Ignore;
    }
    match (flags & 0x000f) as u8 {
        0 => Verdict::Pass,
        rcode => Verdict::Rcode(rcode),
    }
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_has_id_rd_one_question_type_and_class_in() {
        let q = query(0xbeef, "www.example.com", DnsType::Aaaa.number()).unwrap();
        let mut want = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03www\x07example\x03com\x00");
        want.extend_from_slice(&[0, 28, 0, 1]);
        assert_eq!(q, want);
    }

    #[test]
    fn root_and_trailing_dot_names() {
        let root = query(1, ".", DnsType::Soa.number()).unwrap();
        assert_eq!(&root[HEADER_LEN..], &[0, 0, 6, 0, 1]);
        let fqdn = query(1, "example.com.", 1).unwrap();
        let plain = query(1, "example.com", 1).unwrap();
        assert_eq!(fqdn, plain);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(query(1, "a..b", 1).is_err());
        assert!(query(1, &"x".repeat(64), 1).is_err());
        let long = ["abcdefghij"; 25].join(".");
        assert!(query(1, &long, 1).is_err());
    }

    #[test]
    fn only_our_response_decides() {
        let mut resp = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(verdict(0x1234, &resp), Verdict::Pass);
        assert_eq!(verdict(0x1235, &resp), Verdict::Ignore);
        assert_eq!(verdict(0x1234, &resp[..11]), Verdict::Ignore);
        resp[3] = 0x83; // NXDOMAIN
        assert_eq!(verdict(0x1234, &resp), Verdict::Rcode(3));
        resp[2] = 0x01; // QR clear: a query, not a response
        assert_eq!(verdict(0x1234, &resp), Verdict::Ignore);
    }
}
