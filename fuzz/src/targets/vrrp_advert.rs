//! VRRP advertisements: `AdvertPacket::new_checked` never panics and after it no accessor
//! does; what it accepts, emitted again from its fields (`AdvertRepr::emit`), parses to
//! the same fields with a checksum that verifies, and is the same bytes when the input was
//! already canonical (checksum right for the addresses used, v3's reserved bits clear, no
//! stray v2 authentication data).
//!
//! Input: one byte (bit 0: carried by IPv6) then the VRRP message (the IP payload).

use rvs_core::vrrp::packet::{
    AdvertPacket, AdvertRepr, Auth, EmitError, Family, MCAST_V4, MCAST_V6, Version, auth_type,
    peek_vrid,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let family = if sel & 1 == 0 {
        Family::Ipv4
    } else {
        Family::Ipv6
    };
    let vrid = peek_vrid(payload);
    let Ok(p) = AdvertPacket::new_checked(payload, family) else {
        return;
    };
    assert_eq!(vrid, Some(p.vrid()));
    let addrs: Vec<IpAddr> = p.addresses().collect();
    assert_eq!(addrs.len(), usize::from(p.count()));
    assert!(addrs.iter().all(|a| Family::of(*a) == family));
    assert!(addrs.iter().all(|a| p.contains(*a)));
    let (src, dst) = match family {
        Family::Ipv4 => (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(MCAST_V4)),
        Family::Ipv6 => (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(MCAST_V6),
        ),
    };
    let verified = p.verify_checksum(src, dst);
    let _ = p.checksum();
    let auth = match (p.auth_type(), p.auth_data()) {
        (None, None) => Auth::None,
        (Some(auth_type::NONE), Some(_)) => Auth::None,
        (Some(auth_type::PASS), Some(d)) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(d);
            Auth::Pass(a)
        }
        (Some(_), Some(_)) => return, // AH and unknown types are not emitted
        other => panic!("auth type and data disagree: {other:?}"),
    };
    let repr = AdvertRepr {
        version: p.version(),
        family,
        vrid: p.vrid(),
        priority: p.priority(),
        interval_cs: p.interval_cs(),
        auth,
        addresses: &addrs,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let n = match repr.emit(&mut buf, src, dst) {
        Ok(n) => n,
        Err(EmitError::BadInterval) => {
            assert_eq!(p.interval_cs(), 0, "only a zero interval is refused here");
            return;
        }
        Err(e) => panic!("emitting what parsed: {e:?}"),
    };
    assert_eq!(n, payload.len());
    let q = AdvertPacket::new_checked(&buf[..n], family).expect("the emitted message parses");
    assert!(q.verify_checksum(src, dst));
    assert_eq!(
        (q.version(), q.vrid(), q.priority(), q.interval_cs()),
        (p.version(), p.vrid(), p.priority(), p.interval_cs())
    );
    assert_eq!(q.addresses().collect::<Vec<_>>(), addrs);
    assert_eq!(q.auth_type(), p.auth_type());
    let reserved_clear = p.version() == Version::V2 || payload[4] >> 4 == 0;
    let auth_clean = p.auth_type() != Some(auth_type::NONE) || p.auth_data() == Some(&[0u8; 8]);
    if verified && reserved_clear && auth_clean {
        assert_eq!(&buf[..n], payload, "a canonical message emits to itself");
    }
}
