//! IPVS's defence strategies against connection floods: `drop_entry`, `drop_packet` and
//! `secure_tcp`, switched by the available-memory threshold `amemthresh` as
//! `update_defense_level()` in `net/netfilter/ipvs/ip_vs_ctl.c` switches them once a second
//! (`defense_work_handler()`, `DEFENSE_TIMER_PERIOD` = 1 s).
//!
//! Each strategy's sysctl is a mode: 0 off; 1 automatic and off now; 2 automatic and on now;
//! 3 always on. In the automatic modes the kernel rewrites the sysctl itself: 1 becomes 2
//! when available memory falls below `amemthresh` pages, 2 becomes 1 when it is back.
//!
//! **Available memory.** The kernel compares `freeram + bufferram` (system-wide pages) with
//! `amemthresh`. rvs's connection tables have their own memory limit, so rvs uses the room
//! left under it: bytes not yet allocated below the limit plus the free slots of the chunks
//! already allocated ([`ConnTable::room_bytes`](super::ConnTable::room_bytes)), in 4 KiB
//! pages, the smaller of the two families' tables. The defaults (`amemthresh` 1024 pages,
//! 4 MiB) then mean "defend once fewer than about 52,000 IPv4 entries' room is left".
//!
//! What each strategy does once active (the table and the director do the work):
//! - `drop_entry`: each second, look at 1/32 of the hash buckets chosen at random and drop
//!   entries there (`ip_vs_random_dropentry()` in `ip_vs_conn.c`): TCP SYN_RECV and SYNACK,
//!   SCTP INIT1 and INIT at once; ESTABLISHED TCP/SCTP and other protocols' entries only
//!   when idle for 60 s with 1..=8 input packets, one in *n* for *n* packets
//!   (`todrop_entry()`); templates only when they control nothing and belong to a
//!   one-packet service.
//! - `drop_packet`: drop one new-connection packet in `rate` (`ip_vs_todrop()`, checked
//!   in `tcp_conn_schedule()` / `udp_conn_schedule()` before scheduling), where rate is
//!   `amemthresh / (amemthresh - available)` in the automatic modes and `am_droprate` in
//!   mode 3.
//! - `secure_tcp`: TCP follows `tcp_states_dos` instead of `tcp_states`
//!   (`tcp_timeout_change()` in `ip_vs_proto_tcp.c`) and, as 2.4's
//!   `vs_timeout_table_dos` did, the embryonic and closing states get shorter timeouts
//!   (SYN_RECV 10 s; see [`StateTimeouts::set_secure`](super::StateTimeouts::set_secure)).

use crate::model::Defense;

/// Bytes per page in `amemthresh` (the kernel counts pages; rvs uses 4 KiB).
pub const PAGE_BYTES: usize = 4096;

/// Counters of what the defences did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefenseCounters {
    /// Entries removed by `drop_entry`.
    pub entries_dropped: u64,
    /// New-connection packets dropped by `drop_packet`.
    pub packets_dropped: u64,
}

/// The defence state: the modes as they stand (with the kernel's own 1 ↔ 2 rewrites), the
/// drop rate and counter, and whether the secure TCP table is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefenseState {
    modes: Defense,
    /// `ipvs->dropentry`.
    dropentry: bool,
    /// `ipvs->drop_rate` (0: no packet dropping).
    drop_rate: u32,
    /// `ipvs->drop_counter`.
    drop_counter: u32,
    /// `ipvs->old_secure_tcp`.
    old_secure_tcp: u8,
    /// Whether the secure TCP table is in force (`sysctl_secure_tcp > 1` at the last change).
    secure: bool,
    /// `ipvs->dropentry_counters` (one per input-packet count 1..=8).
    pub(crate) dropentry_counters: [i8; 8],
    /// What the defences did.
    pub counters: DefenseCounters,
}

impl DefenseState {
    /// The state for `modes` before the first update (everything off).
    pub fn new(modes: &Defense) -> DefenseState {
        DefenseState {
            modes: clamp(*modes),
            dropentry: false,
            drop_rate: 0,
            drop_counter: 0,
            old_secure_tcp: 0,
            secure: false,
            dropentry_counters: [0; 8],
            counters: DefenseCounters::default(),
        }
    }

    /// Write the sysctls (a reload): the next [`DefenseState::update`] acts on them, as a
    /// write to `/proc/sys/net/ipv4/vs/drop_entry` runs `update_defense_level()`. Unchanged
    /// values keep the kernel's automatic 1 ↔ 2 state.
    pub fn configure(&mut self, modes: &Defense) {
        let m = clamp(*modes);
        let keep = |cur: u8, new: u8| if matches!((cur, new), (2, 1)) { 2 } else { new };
        self.modes = Defense {
            drop_entry: keep(self.modes.drop_entry, m.drop_entry),
            drop_packet: keep(self.modes.drop_packet, m.drop_packet),
            secure_tcp: keep(self.modes.secure_tcp, m.secure_tcp),
            ..m
        };
    }

    /// The sysctls as the kernel would show them now (automatic modes read 1 or 2).
    pub fn modes(&self) -> Defense {
        self.modes
    }

    /// `update_defense_level()` with `avail_pages` of available memory. Returns
    /// `Some(on)` when the secure TCP table must be switched on or off
    /// (`ip_vs_protocol_timeout_change(ipvs, sysctl_secure_tcp > 1)`).
    pub fn update(&mut self, avail_pages: u64) -> Option<bool> {
        let thresh = u64::from(self.modes.amemthresh);
        let nomem = avail_pages < thresh;
        // drop_entry
        match self.modes.drop_entry {
            0 => self.dropentry = false,
            1 => {
                self.dropentry = nomem;
                if nomem {
                    self.modes.drop_entry = 2;
                }
            }
            2 => {
                self.dropentry = nomem;
                if !nomem {
                    self.modes.drop_entry = 1;
                }
            }
            _ => self.dropentry = true,
        }
        // drop_packet: rate = amemthresh / (amemthresh - availmem) while short of memory.
        let auto_rate = || {
            let gap = thresh.saturating_sub(avail_pages).max(1);
            u32::try_from(thresh / gap).unwrap_or(u32::MAX)
        };
        match self.modes.drop_packet {
            0 => self.drop_rate = 0,
            1 | 2 => {
                if nomem {
                    self.drop_rate = auto_rate();
                    self.drop_counter = self.drop_rate;
                    self.modes.drop_packet = 2;
                } else {
                    self.drop_rate = 0;
                    self.modes.drop_packet = 1;
                }
            }
            _ => self.drop_rate = self.modes.am_droprate,
        }
        // secure_tcp
        let old = self.old_secure_tcp;
        let mut change = false;
        match self.modes.secure_tcp {
            0 => change = old >= 2,
            1 | 2 => {
                if nomem {
                    change = old < 2;
                    self.modes.secure_tcp = 2;
                } else {
                    change = old >= 2;
                    self.modes.secure_tcp = 1;
                }
            }
            _ => change |= old < 2,
        }
        self.old_secure_tcp = self.modes.secure_tcp;
        if change {
            self.secure = self.modes.secure_tcp > 1;
            Some(self.secure)
        } else {
            None
        }
    }

    /// `ip_vs_todrop()`: whether to drop this new-connection packet (one in `drop_rate`).
    #[inline]
    pub fn todrop(&mut self) -> bool {
        if self.drop_rate == 0 {
            return false;
        }
        self.drop_counter = self.drop_counter.saturating_sub(1);
        if self.drop_counter > 0 {
            return false;
        }
        self.drop_counter = self.drop_rate;
        self.counters.packets_dropped += 1;
        true
    }

    /// Whether `drop_entry` is dropping entries now (`atomic_read(&ipvs->dropentry)`).
    pub fn drop_entry_active(&self) -> bool {
        self.dropentry
    }

    /// The current `drop_packet` rate (0: none).
    pub fn drop_rate(&self) -> u32 {
        self.drop_rate
    }

    /// Whether the secure TCP table is in force.
    pub fn secure_active(&self) -> bool {
        self.secure
    }

    /// A summary for metrics: 0 nothing active, else bit 0 drop_entry, bit 1 drop_packet,
    /// bit 2 secure_tcp.
    pub fn level(&self) -> u8 {
        u8::from(self.dropentry)
            | (u8::from(self.drop_rate > 0) << 1)
            | (u8::from(self.secure) << 2)
    }
}

/// Modes above 3 are refused by the kernel's `proc_do_defense_mode()` (`-EINVAL`); the
/// configuration layer refuses them too, so here they only ever clamp.
fn clamp(mut d: Defense) -> Defense {
    d.drop_entry = d.drop_entry.min(3);
    d.drop_packet = d.drop_packet.min(3);
    d.secure_tcp = d.secure_tcp.min(3);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(drop_entry: u8, drop_packet: u8, secure_tcp: u8) -> Defense {
        Defense {
            drop_entry,
            drop_packet,
            secure_tcp,
            ..Defense::default()
        }
    }

    #[test]
    fn automatic_modes_switch_with_memory_as_the_kernel_rewrites_its_sysctls() {
        let mut d = DefenseState::new(&modes(1, 1, 1));
        // Plenty of memory: nothing on, modes stay 1, no table change.
        assert_eq!(d.update(10_000), None);
        assert_eq!(d.modes(), modes(1, 1, 1));
        assert_eq!(d.level(), 0);
        // Short of memory: 1 -> 2, everything on, the secure table switched on once.
        assert_eq!(d.update(768), Some(true));
        assert_eq!(d.modes(), modes(2, 2, 2));
        assert!(d.drop_entry_active() && d.secure_active());
        // rate = 1024 / (1024 - 768) = 4.
        assert_eq!(d.drop_rate(), 4);
        assert_eq!(d.update(700), None, "already on: no second change");
        assert_eq!(d.drop_rate(), 1024 / (1024 - 700));
        // Memory back: 2 -> 1, all off, the table switched back once.
        assert_eq!(d.update(1024), Some(false));
        assert_eq!(d.modes(), modes(1, 1, 1));
        assert_eq!(d.level(), 0);
        assert_eq!(d.update(5000), None);
    }

    #[test]
    fn mode_three_is_always_on_and_zero_always_off() {
        let mut d = DefenseState::new(&modes(3, 3, 3));
        assert_eq!(d.update(1 << 30), Some(true));
        assert!(d.drop_entry_active());
        assert_eq!(d.drop_rate(), 10, "am_droprate");
        assert_eq!(d.modes(), modes(3, 3, 3));
        let mut z = DefenseState::new(&modes(0, 0, 0));
        assert_eq!(z.update(0), None);
        assert_eq!(z.level(), 0);
        // Switching 3 -> 0 at run time turns the secure table off again.
        d.configure(&modes(0, 0, 0));
        assert_eq!(d.update(0), Some(false));
        assert_eq!(d.level(), 0);
    }

    #[test]
    fn mode_two_written_with_memory_falls_back_to_one() {
        let mut d = DefenseState::new(&modes(2, 2, 2));
        assert_eq!(
            d.update(5000),
            None,
            "old_secure_tcp 0: nothing to switch off"
        );
        assert_eq!(d.modes(), modes(1, 1, 1));
    }

    #[test]
    fn todrop_drops_one_packet_in_rate() {
        let mut d = DefenseState::new(&modes(0, 3, 0));
        d.update(0);
        let dropped: Vec<bool> = (0..25).map(|_| d.todrop()).collect();
        let at: Vec<usize> = (0..25).filter(|&i| dropped[i]).collect();
        // Mode 3 sets the rate but not the counter (still 0), so the first packet goes.
        assert_eq!(at, vec![0, 10, 20]);
        assert_eq!(d.counters.packets_dropped, 3);
        let mut off = DefenseState::new(&modes(0, 0, 0));
        off.update(0);
        assert!((0..100).all(|_| !off.todrop()));
    }

    #[test]
    fn reconfiguring_keeps_the_automatic_state() {
        let mut d = DefenseState::new(&modes(1, 0, 0));
        d.update(0);
        assert_eq!(d.modes().drop_entry, 2);
        // A reload that still says 1 leaves the kernel-set 2 in place.
        d.configure(&modes(1, 0, 0));
        assert_eq!(d.modes().drop_entry, 2);
        assert!(d.drop_entry_active());
    }
}
