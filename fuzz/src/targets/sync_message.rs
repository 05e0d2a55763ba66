//! Connection-sync messages: `SyncMessage::parse` never panics, yields at most the records
//! its header announces and nothing after a fatal error; every record that parsed and that
//! the builder can encode packs again and parses back equal (`HASHED` cleared, as the
//! kernel's sender clears it); a backup director applies every parsed record without
//! panicking, each either applied or refused and counted.
//!
//! Input: one received datagram.

use rvs_core::model::Config;
use rvs_core::sync::{
    DEFAULT_MAX_LEN, SyncBuildError, SyncConn, SyncMessage, SyncVersion, conn_len, flags, pack,
};
use rvs_core::time::Instant;
use std::sync::OnceLock;
use std::time::Duration;

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Run one input through the target.
pub fn run(data: &[u8]) {
    let Ok(msg) = SyncMessage::parse(data) else {
        return;
    };
    let recs: Vec<_> = msg.conns().collect();
    assert!(recs.len() <= usize::from(msg.nr_conns()));
    if let Some(i) = recs
        .iter()
        .position(|r| r.as_ref().is_err_and(|e| e.is_fatal()))
    {
        assert_eq!(i + 1, recs.len(), "records after a fatal error");
    }
    let ok: Vec<SyncConn<'_>> = recs.iter().filter_map(|r| r.ok()).collect();

    // Re-pack what the builder can encode (it refuses what a sender never sends).
    let mut encodable = Vec::new();
    for c in &ok {
        match conn_len(c) {
            Ok(_) => encodable.push(*c),
            Err(
                SyncBuildError::OnePacket
                | SyncBuildError::SeqMismatch
                | SyncBuildError::BadPeName
                | SyncBuildError::BadPeData,
            ) => {}
            Err(e) => panic!("a parsed record the builder refuses with {e:?}: {c:?}"),
        }
    }
    let msgs = pack(&encodable, msg.syncid(), DEFAULT_MAX_LEN).expect("encodable records pack");
    let mut back = Vec::new();
    for m in &msgs {
        assert!(m.len() <= DEFAULT_MAX_LEN);
        let p = SyncMessage::parse(m).expect("a packed message parses");
        assert_eq!(p.version(), SyncVersion::V1);
        assert_eq!(p.syncid(), msg.syncid());
        for r in p.conns() {
            back.push(r.expect("a packed record parses"));
        }
    }
    let want: Vec<SyncConn<'_>> = encodable
        .iter()
        .map(|c| SyncConn {
            flags: c.flags & !flags::HASHED,
            ..*c
        })
        .collect();
    assert_eq!(back, want);

    // A backup (every forwarding method, persistence, fwmark, FullNAT pool) applies them.
    let config = CONFIG.get_or_init(crate::config);
    let mut d = crate::director(config);
    let mut now = Instant::ZERO;
    for c in &ok {
        let _ = d.sync_import(now, c);
        now = now + Duration::from_secs(1);
    }
    let s = d.sync_counters();
    let refused: u64 = s.refused.iter().sum();
    assert_eq!(s.created + s.updated + refused, ok.len() as u64);
    let _ = d.expire(now + Duration::from_secs(4000));
}
