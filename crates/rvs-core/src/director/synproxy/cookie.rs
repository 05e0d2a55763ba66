//! SYN cookies: the director's initial sequence number towards a client, from which the
//! client's ACK alone proves that the client received the SYN-ACK (so its address is not
//! spoofed) and recovers the MSS the client announced.
//!
//! The scheme is the one of Linux `net/ipv4/syncookies.c` (`secure_tcp_syn_cookie()`,
//! `check_tcp_syn_cookie()`, `__cookie_v4_init_sequence()`) and of DPVS
//! `src/ipvs/ip_vs_synproxy.c` (which keeps it with MD5): with `count` a counter that
//! advances once a minute and `H₀`, `H₁` keyed hashes of the 4-tuple,
//!
//! ```text
//! cookie = H₀(tuple) + client_isn + (count << 24) + ((H₁(tuple, count) + data) mod 2²⁴)
//! ```
//!
//! The top 8 bits carry the counter, so a check recovers the counter the cookie was made
//! with, refuses it when it is more than [`MAX_AGE`]` - 1` minutes old (Linux
//! `MAX_SYNCOOKIE_AGE`), and then recovers `data`, which must be below [`DATA_LIMIT`]. `data`
//! holds the index of the client's MSS in [`MSS_TABLE`] (Linux's IPv4 `msstab`) and one bit
//! for SACK-permitted (DPVS keeps SACK-permitted, timestamps and window scale in its cookie
//! data the same way; rvs keeps only SACK, see `docs/synproxy.md`). The hash is SipHash-2-4
//! (Linux ≥ 4.13 uses siphash for cookies too) keyed by two 128-bit secrets derived from the
//! director's seed.
//!
//! A guessed cookie passes with probability about `MAX_AGE / 256 × DATA_LIMIT / 2²⁴` ≈ 2⁻²⁷.

use std::net::IpAddr;

/// The counter advances every this many seconds (Linux: `tcp_cookie_time()`, 60 s).
pub const COUNTER_PERIOD_SECS: u64 = 60;

/// Cookies made with a counter at most `MAX_AGE - 1` periods old are accepted (Linux
/// `MAX_SYNCOOKIE_AGE` = 2: a cookie lives 60 to 120 s).
pub const MAX_AGE: u32 = 2;

/// The MSS values a cookie can carry (Linux `msstab` for IPv4): the largest not above the
/// client's MSS is used.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// `data` values at or above this are refused (2 bits of MSS index, 1 bit of SACK).
pub const DATA_LIMIT: u32 = 8;

const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;

/// What a cookie carries besides the proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieData {
    /// The MSS (one of [`MSS_TABLE`]).
    pub mss: u16,
    /// The client offered SACK-permitted (and the director accepted it).
    pub sack: bool,
}

impl CookieData {
    /// The data for a client that announced `mss` (536 when it announced none, RFC 879)
    /// and `sack`: the MSS rounded down to the table (`__cookie_v4_init_sequence()`; below
    /// the smallest entry, the smallest).
    pub fn for_client(mss: u16, sack: bool) -> CookieData {
        let i = MSS_TABLE.iter().rposition(|&m| mss >= m).unwrap_or(0);
        CookieData {
            mss: MSS_TABLE[i],
            sack,
        }
    }

    fn encode(self) -> u32 {
        let i = MSS_TABLE.iter().position(|&m| m == self.mss).unwrap_or(0) as u32;
        i | (u32::from(self.sack) << 2)
    }

    fn decode(d: u32) -> Option<CookieData> {
        if d >= DATA_LIMIT {
            return None;
        }
        Some(CookieData {
            mss: MSS_TABLE[(d & 3) as usize],
            sack: d & 4 != 0,
        })
    }
}

/// A connection's 4-tuple as the client sent its SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// Client address.
    pub saddr: IpAddr,
    /// Virtual address.
    pub daddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual port.
    pub dport: u16,
}

/// The two secrets of the cookie hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieKey {
    k: [[u64; 2]; 2],
}

/// SplitMix64 (Steele, Lea, Flood 2014): spreads a seed into key words.
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl CookieKey {
    /// Secrets derived from the director's seed (the daemon seeds it with fresh randomness).
    pub fn from_seed(seed: u64) -> CookieKey {
        let mut x = seed ^ 0x5359_4e43_4f4f_4b49; // "SYNCOOKI"
        CookieKey {
            k: [
                [splitmix(&mut x), splitmix(&mut x)],
                [splitmix(&mut x), splitmix(&mut x)],
            ],
        }
    }

    fn hash(&self, c: usize, t: &Tuple, count: u32) -> u32 {
        let mut m = [0u8; 40];
        let put = |m: &mut [u8], a: IpAddr| match a {
            IpAddr::V4(a) => m[12..16].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => m.copy_from_slice(&a.octets()),
        };
        put(&mut m[0..16], t.saddr);
        put(&mut m[16..32], t.daddr);
        m[32..34].copy_from_slice(&t.sport.to_be_bytes());
        m[34..36].copy_from_slice(&t.dport.to_be_bytes());
        m[36..40].copy_from_slice(&count.to_be_bytes());
        siphash24(self.k[c], &m) as u32
    }

    /// The cookie for a SYN of `t` with initial sequence `isn` at counter `count`.
    pub fn make(&self, t: &Tuple, isn: u32, count: u32, data: CookieData) -> u32 {
        self.hash(0, t, 0)
            .wrapping_add(isn)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(self.hash(1, t, count).wrapping_add(data.encode()) & COOKIE_MASK)
    }

    /// Check `cookie` (the client's acknowledgement − 1) for `t` with the client's initial
    /// sequence `isn` (its sequence − 1) at counter `count`: the data, or None.
    pub fn check(&self, t: &Tuple, isn: u32, count: u32, cookie: u32) -> Option<CookieData> {
        let c = cookie.wrapping_sub(self.hash(0, t, 0).wrapping_add(isn));
        let diff = count.wrapping_sub(c >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if diff >= MAX_AGE {
            return None;
        }
        let made = count.wrapping_sub(diff);
        CookieData::decode(c.wrapping_sub(self.hash(1, t, made)) & COOKIE_MASK)
    }
}

/// The cookie counter at `now_ns` (nanoseconds of the engine's clock).
pub fn counter(now_ns: u64) -> u32 {
    (now_ns / (COUNTER_PERIOD_SECS * 1_000_000_000)) as u32
}

/// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012) of `m`
/// under the 128-bit key `k` (little-endian words, as the paper's reference).
pub fn siphash24(k: [u64; 2], m: &[u8]) -> u64 {
    let mut v = [
        k[0] ^ 0x736f_6d65_7073_6575,
        k[1] ^ 0x646f_7261_6e64_6f6d,
        k[0] ^ 0x6c79_6765_6e65_7261,
        k[1] ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = m.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        v[3] ^= w;
        round(&mut v);
        round(&mut v);
        v[0] ^= w;
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = m.len() as u8;
    let w = u64::from_le_bytes(last);
    v[3] ^= w;
    round(&mut v);
    round(&mut v);
    v[0] ^= w;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn siphash_matches_the_papers_test_vector() {
        // Appendix A of the SipHash paper: key 00..0f, message 00..0e.
        let k = [
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ];
        let m: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(k, &m), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn mss_rounds_down_to_the_table() {
        assert_eq!(CookieData::for_client(1460, false).mss, 1460);
        assert_eq!(CookieData::for_client(9000, false).mss, 1460);
        assert_eq!(CookieData::for_client(1448, true).mss, 1440);
        assert_eq!(CookieData::for_client(1400, false).mss, 1300);
        assert_eq!(CookieData::for_client(100, false).mss, 536);
    }

    fn ip_strategy() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    fn tuple_strategy() -> impl Strategy<Value = Tuple> {
        (ip_strategy(), ip_strategy(), any::<u16>(), any::<u16>()).prop_map(
            |(saddr, daddr, sport, dport)| Tuple {
                saddr,
                daddr,
                sport,
                dport,
            },
        )
    }

    proptest! {
        #[test]
        fn cookies_round_trip_within_their_age(
            seed in any::<u64>(), t in tuple_strategy(), isn in any::<u32>(),
            count in any::<u32>(), age in 0..MAX_AGE, mss in any::<u16>(), sack in any::<bool>(),
        ) {
            let k = CookieKey::from_seed(seed);
            let data = CookieData::for_client(mss, sack);
            let c = k.make(&t, isn, count, data);
            prop_assert_eq!(k.check(&t, isn, count.wrapping_add(age), c), Some(data));
        }

        #[test]
        fn wrong_secret_tuple_isn_or_stale_counter_fail(
            seed in any::<u64>(), t in tuple_strategy(), isn in any::<u32>(),
            count in any::<u32>(), mss in any::<u16>(), other in any::<u64>(),
            port in any::<u16>(), stale in MAX_AGE..256,
        ) {
            let k = CookieKey::from_seed(seed);
            let c = k.make(&t, isn, count, CookieData::for_client(mss, false));
            // The counter too old (or from the future).
            prop_assert_eq!(k.check(&t, isn, count.wrapping_add(stale), c), None);
            prop_assert_eq!(k.check(&t, isn, count.wrapping_sub(1), c), None);
            // Another secret, tuple or client ISN: refused except with the guessing odds
            // (~2^-27 per try), so a failure here is a bug, not bad luck.
            prop_assume!(other != seed);
            prop_assert_eq!(CookieKey::from_seed(other).check(&t, isn, count, c), None);
            prop_assume!(port != t.sport);
            let t2 = Tuple { sport: port, ..t };
            prop_assert_eq!(k.check(&t2, isn, count, c), None);
            // (An ISN off by less than DATA_LIMIT can decode as other data, as in Linux:
            // the client chooses its ISN, so that proves nothing to an attacker.)
            prop_assert_eq!(k.check(&t, isn.wrapping_add(1 << 12), count, c), None);
        }
    }
}
