//! Interned bindings: what an IPv6 entry holds of its virtual address, real server, local
//! address, real-server id and service, as one `u32` index into a refcounted arena.
//!
//! An IPv6 entry with the three 16-byte addresses and the two ids inline is 136 bytes; a
//! table holds many connections per (virtual address, real server, local address) and few
//! such bindings (one per VIP, real server and FullNAT local address; a firewall-mark
//! service over a prefix gives one per VIP address in use), so each entry keeps an index
//! instead (88 bytes). IPv4 entries keep the binding inline ([`Binding<[u8; 4]>`] is 20
//! bytes, no larger than an index and a pointer chase): their packet path stays as it was.
//!
//! The arena never allocates after construction, like the slab: it asks for a larger one
//! ([`Need::Bindings`](super::Need::Bindings)) once fewer than a quarter of its slots are
//! left, the caller builds it off the packet path and [`ConnTable::provide`](super::ConnTable::provide)
//! copies the bindings over at the same indices (so no entry changes) and hands the old
//! one back to be dropped off the packet path. A growing table starts with 128 slots (8 KiB)
//! and asks for twice as many once fewer than a quarter of them, or fewer than 64, are
//! left; a fixed table ([`ConnTable::new`](super::ConnTable::new)) holds one per entry. Its bytes count in the table's memory and
//! byte limit. A binding lives while an entry refers to it: its count returns to zero,
//! and its slot to the free list, when the last such entry is removed.

use super::{ConnAddr, NIL, Seed};

/// One binding: everything of an entry that many entries share.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Binding<A> {
    /// Virtual address (the mark for firewall-mark templates).
    pub vaddr: A,
    /// Real-server address.
    pub daddr: A,
    /// FullNAT local address (zero when not FullNAT).
    pub laddr: A,
    /// Real-server id.
    pub dest: u32,
    /// Service id.
    pub service: u32,
}

impl<A: ConnAddr> Binding<A> {
    /// The binding of a new entry.
    #[inline(always)]
    pub(super) fn of(new: &super::NewConn<A>) -> Binding<A> {
        Binding {
            vaddr: new.vaddr,
            daddr: new.daddr,
            laddr: new.local.map_or(A::default(), |l| l.0),
            dest: new.dest,
            service: new.service,
        }
    }
}

/// A slot of the arena: a binding, how many entries refer to it (0: free), and the link of
/// its hash chain (of the free list when free).
#[derive(Debug, Clone, Copy, Default)]
struct Slot<A> {
    b: Binding<A>,
    refs: u32,
    next: u32,
}

/// The arena of interned bindings (empty and unused for IPv4).
#[doc(hidden)]
pub struct Bindings<A> {
    slots: Box<[Slot<A>]>,
    heads: Box<[u32]>,
    mask: u64,
    /// Slots handed out at least once (the bump pointer).
    used: u32,
    free: u32,
    live: u32,
    nil: Binding<A>,
}

impl<A: ConnAddr> Bindings<A> {
    /// An arena of `n` slots (and hash heads for them), every page written.
    pub(super) fn with_capacity(n: usize) -> Bindings<A> {
        let n = n.min(NIL as usize - 1);
        let buckets = n.max(1).next_power_of_two();
        Bindings {
            slots: vec![Slot::default(); n].into_boxed_slice(),
            heads: vec![NIL; if n == 0 { 0 } else { buckets }].into_boxed_slice(),
            mask: buckets as u64 - 1,
            used: 0,
            free: NIL,
            live: 0,
            nil: Binding::default(),
        }
    }

    /// Slots in the arena.
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bindings in use.
    pub(super) fn live(&self) -> usize {
        self.live as usize
    }

    /// Bytes allocated.
    pub(super) fn bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot<A>>() + self.heads.len() * size_of::<u32>()
    }

    /// Bytes an arena of `n` slots allocates.
    pub(super) fn bytes_for(n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        n * size_of::<Slot<A>>() + n.next_power_of_two() * size_of::<u32>()
    }

    /// Whether fewer than a quarter of the slots (and fewer than 64) are left.
    pub(super) fn low(&self) -> bool {
        let cap = self.slots.len();
        cap - (self.live as usize) < (cap / 4).max(64).min(cap)
    }

    /// The binding at `i` (a default one for an index out of range: never for an index
    /// an entry holds).
    #[inline(always)]
    pub(super) fn get(&self, i: u32) -> &Binding<A> {
        self.slots.get(i as usize).map_or(&self.nil, |s| &s.b)
    }

    fn hash(seed: &Seed, b: &Binding<A>) -> u64 {
        let h = A::hash2(
            seed,
            &b.vaddr,
            &b.daddr,
            (u64::from(b.dest) << 32) | u64::from(b.service),
        );
        A::hash2(seed, &b.laddr, &b.laddr, h)
    }

    fn find(&self, h: u64, b: &Binding<A>) -> Option<u32> {
        let mut i = *self.heads.get((h & self.mask) as usize)?;
        while let Some(s) = self.slots.get(i as usize) {
            if s.b == *b {
                return Some(i);
            }
            i = s.next;
        }
        None
    }

    /// Whether [`Bindings::acquire`] of `b` would succeed.
    pub(super) fn has_room(&self, seed: &Seed, b: &Binding<A>) -> bool {
        self.free != NIL
            || (self.used as usize) < self.slots.len()
            || self.find(Self::hash(seed, b), b).is_some()
    }

    /// One more reference to `b`: its index, interned now if it is new; `None` when the
    /// arena is full.
    pub(super) fn acquire(&mut self, seed: &Seed, b: Binding<A>) -> Option<u32> {
        let h = Self::hash(seed, &b);
        if let Some(i) = self.find(h, &b) {
            let s = self.slots.get_mut(i as usize)?;
            s.refs += 1;
            return Some(i);
        }
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots.get(i as usize).map_or(NIL, |s| s.next);
            i
        } else if (self.used as usize) < self.slots.len() {
            self.used += 1;
            self.used - 1
        } else {
            return None;
        };
        let head = self.heads.get_mut((h & self.mask) as usize)?;
        let next = core::mem::replace(head, i);
        let s = self.slots.get_mut(i as usize)?;
        *s = Slot { b, refs: 1, next };
        self.live += 1;
        Some(i)
    }

    /// One reference to binding `i` fewer; the last one frees it.
    pub(super) fn release(&mut self, seed: &Seed, i: u32) {
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        if s.refs == 0 {
            return;
        }
        s.refs -= 1;
        if s.refs > 0 {
            return;
        }
        let (b, next_of_i) = (s.b, s.next);
        let h = Self::hash(seed, &b);
        let Some(head) = self.heads.get_mut((h & self.mask) as usize) else {
            return;
        };
        if *head == i {
            *head = next_of_i;
        } else {
            let mut p = *head;
            while let Some(s) = self.slots.get_mut(p as usize) {
                if s.next == i {
                    s.next = next_of_i;
                    break;
                }
                p = s.next;
            }
        }
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.next = self.free;
        }
        self.free = i;
        self.live -= 1;
    }

    /// Take over `old`'s bindings at the same indices (this arena is larger and empty);
    /// false (nothing changed) when it does not fit.
    pub(super) fn take_over(&mut self, seed: &Seed, old: &Bindings<A>) -> bool {
        if self.slots.len() <= old.slots.len() || self.used != 0 {
            return false;
        }
        let Some(dst) = self.slots.get_mut(..old.slots.len()) else {
            return false;
        };
        dst.copy_from_slice(&old.slots);
        self.used = old.used;
        self.free = old.free;
        self.live = old.live;
        for i in 0..old.used {
            let Some(s) = self.slots.get(i as usize) else {
                break;
            };
            if s.refs == 0 {
                continue;
            }
            let h = Self::hash(seed, &s.b);
            let Some(head) = self.heads.get_mut((h & self.mask) as usize) else {
                continue;
            };
            let next = core::mem::replace(head, i);
            if let Some(s) = self.slots.get_mut(i as usize) {
                s.next = next;
            }
        }
        true
    }

    /// Every binding in use with its reference count (tests).
    #[cfg(test)]
    pub(super) fn refs(&self) -> impl Iterator<Item = (u32, Binding<A>, u32)> + '_ {
        self.slots
            .iter()
            .take(self.used as usize)
            .enumerate()
            .filter(|(_, s)| s.refs > 0)
            .map(|(i, s)| (i as u32, s.b, s.refs))
    }
}
