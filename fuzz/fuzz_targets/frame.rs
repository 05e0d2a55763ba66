//! Frames: `rvs_core::wire::parse` never panics and agrees with `parse_general` (its fast
//! path is documented to return exactly what the general parse returns); a director
//! (every forwarding method, IPv4 and IPv6) handles any sequence of frames without
//! panicking, and a frame it transmits still parses.
//!
//! Input: frames separated by `rvs_fuzz::SEP`, each one flags byte (see
//! `rvs_fuzz::run_frame`) then the Ethernet frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::director::Verdict;
use rvs_core::model::Config;
use rvs_core::time::Instant;
use rvs_core::wire::{self, CsumStatus, Frame};
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let config = CONFIG.get_or_init(rvs_fuzz::config);
    let mut d = rvs_fuzz::director(config);
    let mut now = Instant::ZERO;
    for rec in rvs_fuzz::records(data, 8) {
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
            rvs_fuzz::PUB
        } else {
            rvs_fuzz::PRIV
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
        let mut buf = vec![0u8; rvs_fuzz::HEAD + bytes.len() + rvs_fuzz::TAIL];
        buf[rvs_fuzz::HEAD..rvs_fuzz::HEAD + bytes.len()].copy_from_slice(bytes);
        let mut f = Frame::new(&mut buf, rvs_fuzz::HEAD, bytes.len()).expect("fits");
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
        rvs_fuzz::drain(&mut d);
    }
    // Timers after the traffic: everything expires.
    let _ = d.poll_timeout();
    let _ = d.expire(now + std::time::Duration::from_secs(3600));
    let _ = d.expire(now + std::time::Duration::from_secs(7200));
    rvs_fuzz::drain(&mut d);
});
