//! The SYN proxy (`rvs_core::director::synproxy`): a director with the proxy on for every
//! service handles any sequence of frames without panicking and every frame it transmits
//! (directly or through `poll_transmit`) still parses; the TCP option walkers never panic,
//! SACK translation keeps the checksum and undoes itself, and a cookie made for the tuple
//! and ISN the input names validates within its age.
//!
//! Input: frames separated by `crate::SEP`, each one flags byte (bit 0: private port,
//! bits 3-7: seconds to advance the clock) then the Ethernet frame. The first record also
//! serves as TCP option bytes and as the cookie's tuple material.

use rvs_core::director::Verdict;
use rvs_core::director::synproxy::{self, cookie};
use rvs_core::model::Config;
use rvs_core::time::Instant;
use rvs_core::wire::{self, Frame, checksum};
use std::net::IpAddr;
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();

fn pure(bytes: &[u8]) {
    let _ = synproxy::syn_options(bytes);
    let mut opts = bytes.to_vec();
    let delta = u32::from_le_bytes([0, 1, 2, 3].map(|i| bytes.get(i).copied().unwrap_or(0)));
    let hc = checksum::checksum(&opts);
    let hc2 = synproxy::translate_sack(&mut opts, delta, hc);
    assert!(
        checksum::same(hc2, checksum::checksum(&opts)),
        "SACK checksum"
    );
    synproxy::translate_sack(&mut opts, delta.wrapping_neg(), 0);
    assert_eq!(opts, bytes, "SACK translation undoes itself");
    let b = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let t = cookie::Tuple {
        saddr: IpAddr::from([b(4), b(5), b(6), b(7)]),
        daddr: IpAddr::from([b(8), b(9), b(10), b(11)]),
        sport: u16::from_le_bytes([b(12), b(13)]),
        dport: u16::from_le_bytes([b(14), b(15)]),
    };
    let k = cookie::CookieKey::from_seed(u64::from(delta));
    let data = cookie::CookieData::for_client(u16::from_le_bytes([b(16), b(17)]), b(18) & 1 != 0);
    let count = u32::from(b(19));
    let c = k.make(&t, delta, count, data);
    assert_eq!(
        k.check(&t, delta, count + u32::from(b(20) & 1), c),
        Some(data)
    );
}

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let config = CONFIG.get_or_init(|| {
        let mut c = crate::config();
        c.synproxy.all = true;
        c
    });
    let mut d = crate::director(config);
    let mut now = Instant::ZERO;
    for (i, rec) in crate::records(data, 8).into_iter().enumerate() {
        let Some((&flags, bytes)) = rec.split_first() else {
            continue;
        };
        if i == 0 {
            pure(bytes);
        }
        now = now + std::time::Duration::from_secs(u64::from(flags >> 3));
        let port = if flags & 1 == 0 {
            crate::PUB
        } else {
            crate::PRIV
        };
        let mut buf = vec![0u8; crate::HEAD + bytes.len() + crate::TAIL];
        buf[crate::HEAD..crate::HEAD + bytes.len()].copy_from_slice(bytes);
        let mut f = Frame::new(&mut buf, crate::HEAD, bytes.len()).expect("fits");
        if let Verdict::Transmit(_) = d.handle(now, port, &mut f) {
            let _ = f.finish_checksum();
            assert!(
                wire::parse(f.data()).is_ok(),
                "transmitted: {:02x?}",
                f.data()
            );
        }
        let mut out = vec![0u8; 4096];
        while let Some((_, len)) = d.poll_transmit(&mut out) {
            assert!(
                wire::parse(&out[..len]).is_ok(),
                "queued: {:02x?}",
                &out[..len]
            );
        }
    }
    let _ = d.expire(now + std::time::Duration::from_secs(3600));
}
