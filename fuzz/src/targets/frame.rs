//! Frames: `rvs_core::wire::parse` never panics and agrees with `parse_general` (its fast
//! path is documented to return exactly what the general parse returns); a director
//! (every forwarding method, IPv4 and IPv6) handles any sequence of frames without
//! panicking, and a frame it transmits still parses.
//!
//! Input: frames separated by `crate::SEP`, each one flags byte (see
//! `crate::run_frame`) then the Ethernet frame.

use rvs_core::director::Verdict;
use rvs_core::model::Config;
use rvs_core::time::Instant;
use rvs_core::wire::{self, CsumStatus, Frame};
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let config = CONFIG.get_or_init(crate::config);
    let mut d = crate::director(config);
    let mut now = Instant::ZERO;
    for rec in crate::records(data, 8) {
        let Some((&flags, bytes)) = rec.split_first() else {
            continue;
        };
        let fast = wire::parse(bytes);
        let general = wire::parse::parse_general(bytes);
        assert_eq!(fast, general, "parse and parse_general disagree");
        if bytes.len() > 14 {
            let _ = wire::parse_ip(&bytes[14..]);
        }

        now = now + std::time::Duration::from_secs(u64::from(flags >> 3));
        let port = if flags & 1 == 0 {
            crate::PUB
        } else {
            crate::PRIV
        };
        let csum = match (flags >> 1) & 3 {
            0 => CsumStatus::Complete,
            1 => CsumStatus::Valid,
            // TCP behind an untagged option-less IPv4 header, and behind IPv6.
            2 => CsumStatus::Partial {
                start: 34,
                offset: 16,
            },
            _ => CsumStatus::Partial {
                start: 54,
                offset: 6,
            },
        };
        let mut buf = vec![0u8; crate::HEAD + bytes.len() + crate::TAIL];
        buf[crate::HEAD..crate::HEAD + bytes.len()].copy_from_slice(bytes);
        let mut f = Frame::new(&mut buf, crate::HEAD, bytes.len()).expect("fits");
        f.set_csum(csum);
        let verdict = d.handle(now, port, &mut f);
        if let Verdict::Transmit(_) = verdict {
            let _ = f.finish_checksum();
            if let Err(e) = wire::parse(f.data()) {
                panic!(
                    "the director transmits a frame that does not parse ({e:?}): {:02x?}",
                    f.data()
                );
            }
        }
        crate::drain(&mut d);
    }
    // Timers after the traffic: everything expires.
    let _ = d.poll_timeout();
    let _ = d.expire(now + std::time::Duration::from_secs(3600));
    let _ = d.expire(now + std::time::Duration::from_secs(7200));
    crate::drain(&mut d);
}
