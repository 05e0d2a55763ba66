//! Piranha pulse heartbeats: `Heartbeat::parse` never panics; it accepts exactly the
//! 4-byte RUNNING and STOPPED magics, in either byte order, and what it accepts is what
//! `to_bytes` writes (or its byte swap); other 4-byte inputs are another pulse mode's magic
//! or not a magic, anything else is of the wrong length.
//!
//! Input: one received datagram.

use rvs_core::pulse::{Heartbeat, HeartbeatError, OTHER_PULSE_MAGICS};

/// Run one input through the target.
pub fn run(data: &[u8]) {
    match Heartbeat::parse(data) {
        Ok(h) => {
            let ne = h.to_bytes();
            let mut swapped = ne;
            swapped.reverse();
            assert!(data == ne || data == swapped, "{data:x?} is not {h:?}");
            assert_eq!(Heartbeat::parse(&ne), Ok(h));
            assert_eq!(Heartbeat::parse(&swapped), Ok(h));
        }
        Err(HeartbeatError::BadLength) => assert_ne!(data.len(), 4),
        Err(e) => {
            let b: [u8; 4] = data.try_into().expect("4 bytes");
            let other = OTHER_PULSE_MAGICS.contains(&u32::from_le_bytes(b))
                || OTHER_PULSE_MAGICS.contains(&u32::from_be_bytes(b));
            let want = if other {
                HeartbeatError::Incompatible
            } else {
                HeartbeatError::BadMagic
            };
            assert_eq!(e, want);
        }
    }
}
