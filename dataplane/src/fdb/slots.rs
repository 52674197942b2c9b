//! [`SlotTable`]: the replica's hash table, open addressing with linear
//! probing over `(key, value)` slots, so that the slot a key lives in can be
//! computed — and prefetched — before it is read.
//!
//! `hashbrown` (which the owner uses) keeps its bucket addresses to itself;
//! a worker that wants the lookups of a whole batch in flight at once (the
//! 64k-MAC case is bound by cache misses, not instructions) needs them. Keys
//! are [`FdbKey::packed`] words; the hash is one multiply of the key with a
//! per-table random seed, folded (as foldhash does), so MACs chosen by
//! someone on the network do not pile up in one probe run. The table is at
//! most half full: a hit is about 1.5 probes, a miss about 2.5, and the
//! probed slots are adjacent in memory. Removal shifts the following run
//! back (no tombstones), so lookups never slow down with churn.

use std::hash::{BuildHasher, RandomState};

use super::FdbKey;

/// The key of an empty slot: BD 65535 with the broadcast MAC, which is
/// never learned and never a static entry.
const EMPTY: u64 = u64::MAX;

/// Slots in a new table.
const MIN_SLOTS: usize = 8;

/// Below this many slots (about 200 KiB) the table stays in the cache of a
/// busy worker and [`SlotTable::prefetch`] is not worth its hashing.
const PREFETCH_MIN_SLOTS: usize = 4096;

/// One slot; aligned to 32 bytes, so a slot of up to 32 bytes never
/// straddles two cache lines.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
struct Slot<V> {
    key: u64,
    val: V,
}

/// A map from [`FdbKey`] to `V` with computable slot addresses.
#[derive(Clone, Debug)]
pub(super) struct SlotTable<V: Copy> {
    slots: Vec<Slot<V>>,
    /// `slots.len() - 1` (a power of two minus one).
    mask: usize,
    len: usize,
    seed: u64,
    /// The value stored in empty slots (never returned).
    filler: V,
}

impl<V: Copy> SlotTable<V> {
    /// An empty table; `filler` is what empty slots hold.
    pub fn new(filler: V) -> Self {
        let seed = RandomState::new().hash_one(0x7876_735f_6664_6221u64) | 1;
        SlotTable {
            slots: vec![
                Slot {
                    key: EMPTY,
                    val: filler,
                };
                MIN_SLOTS
            ],
            mask: MIN_SLOTS - 1,
            len: 0,
            seed,
            filler,
        }
    }

    /// The home slot of a packed key.
    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        let p = u128::from(key ^ self.seed) * 0x9e37_79b9_7f4a_7c15u128;
        ((p as u64) ^ ((p >> 64) as u64)) as usize & self.mask
    }

    /// The slot index holding `key`, if present.
    #[inline(always)]
    fn find(&self, key: u64) -> Option<usize> {
        let mut i = self.home(key);
        // At most half full: an empty slot ends every probe run.
        loop {
            let k = self.slots[i].key;
            if k == key {
                return Some(i);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Asks the CPU to start loading the slot the key packed as `packed`
    /// ([`FdbKey::packed`]) would be found in first,
    /// without waiting for it; does nothing for a table small enough to stay
    /// cached. Never faults, whatever the key.
    #[inline(always)]
    pub fn prefetch(&self, packed: u64) {
        if self.slots.len() < PREFETCH_MIN_SLOTS {
            return;
        }
        let i = self.home(packed);
        let p = self.slots.as_ptr().wrapping_add(i);
        // Slots are 32-byte aligned: one of up to 32 bytes is in one line.
        prefetch_read(p.cast());
    }

    /// The value for `key`.
    #[inline(always)]
    pub fn get(&self, key: &FdbKey) -> Option<&V> {
        let k = key.packed();
        if k == EMPTY {
            return None;
        }
        self.find(k).map(|i| &self.slots[i].val)
    }

    /// The value for `key`, writable.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &FdbKey) -> Option<&mut V> {
        let k = key.packed();
        if k == EMPTY {
            return None;
        }
        self.find(k).map(|i| &mut self.slots[i].val)
    }

    /// Inserts or replaces the value for `key`. The one key that cannot be
    /// stored (BD 65535, broadcast MAC: never learnable) is ignored.
    pub fn insert(&mut self, key: FdbKey, val: V) {
        let k = key.packed();
        if k == EMPTY {
            return;
        }
        if let Some(i) = self.find(k) {
            self.slots[i].val = val;
            return;
        }
        if 2 * (self.len + 1) > self.slots.len() {
            self.resize(2 * self.slots.len());
        }
        self.place(k, val);
        self.len += 1;
    }

    /// Puts a key known to be absent into its first free slot.
    fn place(&mut self, key: u64, val: V) {
        let mut i = self.home(key);
        while self.slots[i].key != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot { key, val };
    }

    /// Removes `key`; returns its value if it was there.
    pub fn remove(&mut self, key: &FdbKey) -> Option<V> {
        let k = key.packed();
        if k == EMPTY {
            return None;
        }
        let mut hole = self.find(k)?;
        let val = self.slots[hole].val;
        // Backward shift: move every later entry of the run whose home is
        // not after the hole into it, so no probe run is ever broken.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let kj = self.slots[j].key;
            if kj == EMPTY {
                break;
            }
            let home = self.home(kj);
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = Slot {
            key: EMPTY,
            val: self.filler,
        };
        self.len -= 1;
        Some(val)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&FdbKey, &V) -> bool) {
        let kept: Vec<(u64, V)> = self
            .slots
            .iter()
            .filter(|s| s.key != EMPTY && keep(&unpack(s.key), &s.val))
            .map(|s| (s.key, s.val))
            .collect();
        if kept.len() == self.len {
            return;
        }
        for s in &mut self.slots {
            s.key = EMPTY;
            s.val = self.filler;
        }
        self.len = kept.len();
        for (k, v) in kept {
            self.place(k, v);
        }
    }

    /// Makes room for `n` more entries without growing on insert.
    pub fn reserve(&mut self, n: usize) {
        let want = (2 * (self.len + n)).next_power_of_two().max(MIN_SLOTS);
        if want > self.slots.len() {
            self.resize(want);
        }
    }

    fn resize(&mut self, size: usize) {
        let mut slots = Vec::with_capacity(size);
        advise_huge_pages(&slots);
        slots.resize(
            size,
            Slot {
                key: EMPTY,
                val: self.filler,
            },
        );
        let old = std::mem::replace(&mut self.slots, slots);
        self.mask = size - 1;
        for s in old {
            if s.key != EMPTY {
                self.place(s.key, s.val);
            }
        }
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every entry, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (FdbKey, &V)> {
        self.slots
            .iter()
            .filter(|s| s.key != EMPTY)
            .map(|s| (unpack(s.key), &s.val))
    }
}

/// The key a packed word stands for (the inverse of [`FdbKey::packed`]).
fn unpack(k: u64) -> FdbKey {
    FdbKey::new(
        crate::types::BdId((k >> 48) as u16),
        crate::types::MacAddr::from_u64(k & 0xffff_ffff_ffff),
    )
}

/// Asks the kernel to back the (not yet touched) allocation of `v` with
/// transparent huge pages where the system allows it (`madvise` mode): a
/// table of megabytes looked up at random then costs a handful of TLB
/// entries instead of one per 4 KiB page. Only the 2 MiB-aligned part
/// inside the allocation is advised; failure changes nothing but speed.
fn advise_huge_pages<T>(v: &Vec<T>) {
    const HUGE: usize = 2 << 20;
    let start = v.as_ptr() as usize;
    let end = start + v.capacity() * std::mem::size_of::<T>();
    let first = start.next_multiple_of(HUGE);
    let last = end / HUGE * HUGE;
    if last > first {
        // SAFETY: the range lies inside `v`'s own allocation, which stays
        // alive for the call; MADV_HUGEPAGE changes how it is backed, never
        // its contents, and needs no other invariant.
        let rc = unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_HUGEPAGE,
            )
        };
        if rc != 0 {
            tracing::debug!("FDB table: no transparent huge pages");
        }
    }
}

/// A read prefetch into all cache levels; a no-op off x86-64.
#[inline(always)]
fn prefetch_read(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into
    // the program, whatever the address (here one inside or one past the
    // slot array).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BdId, MacAddr};

    fn key(bd: u16, m: u64) -> FdbKey {
        FdbKey::new(BdId(bd), MacAddr::from_u64(m))
    }

    #[test]
    fn agrees_with_a_hash_map_through_churn() {
        let mut t = SlotTable::new(0u32);
        let mut model = std::collections::HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 2 000 keys over 3 BDs, so runs form and break up.
            let k = key((x % 3) as u16, (x >> 8) % 2_000);
            match (x >> 40) % 8 {
                0..=3 => {
                    t.insert(k, step);
                    model.insert(k, step);
                }
                4..=5 => assert_eq!(t.remove(&k), model.remove(&k)),
                6 => {
                    if let Some(v) = t.get_mut(&k) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&k) {
                        *v += 1;
                    }
                }
                _ => {
                    t.prefetch(k.packed());
                    assert_eq!(t.get(&k), model.get(&k));
                }
            }
            assert_eq!(t.len(), model.len());
            if step % 50_000 == 49_999 {
                let bd = (x % 3) as u16;
                t.retain(|k, _| k.bd.0 != bd);
                model.retain(|k, _| k.bd.0 != bd);
                t.reserve(100);
            }
        }
        let mut got: Vec<_> = t.iter().map(|(k, v)| (k, *v)).collect();
        got.sort_by_key(|(k, _)| *k);
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort_by_key(|(k, _)| *k);
        assert_eq!(got, want);
    }

    #[test]
    fn the_empty_marker_key_is_never_stored() {
        let mut t = SlotTable::new(0u8);
        let k = key(u16::MAX, 0xffff_ffff_ffff);
        assert_eq!(k.packed(), EMPTY);
        t.insert(k, 1);
        assert_eq!(t.get(&k), None);
        assert_eq!(t.len(), 0);
        assert_eq!(t.remove(&k), None);
        t.insert(key(0, 0), 2);
        assert_eq!(t.get(&key(0, 0)), Some(&2));
    }
}
