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
//! most a quarter full ([`MAX_LOAD`]): a hit is at most about 1.17 probes on
//! average, a miss about 1.4, and the probed slots are adjacent in memory
//! (four 16-byte slots to a cache line). Removal shifts the following run
//! back (no tombstones), so lookups never slow down with churn. From 2 MiB
//! up the slot array is aligned to a huge page ([`SlotArray`]).

use std::alloc::Layout;
use std::hash::{BuildHasher, RandomState};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::FdbKey;
use crate::prefetch::prefetch_read;

/// The key of an empty slot: BD 65535 with the broadcast MAC, which is
/// never learned and never a static entry.
const EMPTY: u64 = u64::MAX;

/// Slots in a new table.
const MIN_SLOTS: usize = 8;

/// The most a table is filled before it doubles: `MAX_LOAD.0 /
/// MAX_LOAD.1` of its slots. Measured in the 64k-MAC benches
/// (`docs/performance.md`), a sparser table is faster although larger:
/// at 1/4, 64k entries (plus a few) take 512k slots, 8 MiB, and a frame
/// ~27 ns; at 1/2, 4 MiB and ~29 ns; at 5/8, 2 MiB and ~37 ns. Every slot
/// a probe goes past its home costs more than the cache misses a smaller
/// table saves.
pub(super) const MAX_LOAD: (usize, usize) = (1, 4);

/// Whether `len` entries fit in `slots` slots.
#[inline]
const fn fits(len: usize, slots: usize) -> bool {
    len * MAX_LOAD.1 <= slots * MAX_LOAD.0
}

/// Below this many slots (64 KiB) the table stays in the cache of a
/// busy worker and [`SlotTable::prefetch`] is not worth its hashing.
const PREFETCH_MIN_SLOTS: usize = 4096;

/// One slot; aligned to 16 bytes, so a slot of up to 16 bytes (the
/// replica's) never straddles two cache lines.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(16))]
struct Slot<V> {
    key: u64,
    val: V,
}

/// A map from [`FdbKey`] to `V` with computable slot addresses.
#[derive(Debug)]
pub(super) struct SlotTable<V: Copy> {
    slots: SlotArray<V>,
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
            slots: SlotArray::new(
                MIN_SLOTS,
                Slot {
                    key: EMPTY,
                    val: filler,
                },
            ),
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
        // Never full: an empty slot ends every probe run.
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
        // Slots are 16-byte aligned: one of up to 16 bytes is in one line.
        prefetch_read(p);
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
        if !fits(self.len + 1, self.slots.len()) {
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
        for s in self.slots.iter_mut() {
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
        let mut want = self.slots.len();
        while !fits(self.len + n, want) {
            want *= 2;
        }
        if want > self.slots.len() {
            self.resize(want);
        }
    }

    fn resize(&mut self, size: usize) {
        let slots = SlotArray::new(
            size,
            Slot {
                key: EMPTY,
                val: self.filler,
            },
        );
        let old = std::mem::replace(&mut self.slots, slots);
        self.mask = size - 1;
        for &s in old.iter() {
            if s.key != EMPTY {
                self.place(s.key, s.val);
            }
        }
    }

    /// Slots probed to find `key` (present or not).
    #[cfg(test)]
    fn probes(&self, key: &FdbKey) -> usize {
        let k = key.packed();
        let mut i = self.home(k);
        let mut n = 1;
        while self.slots[i].key != k && self.slots[i].key != EMPTY {
            i = (i + 1) & self.mask;
            n += 1;
        }
        n
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

/// A huge page (x86-64).
const HUGE: usize = 2 << 20;

/// The slot array: a fixed number of slots in one allocation which, from
/// 2 MiB up, is aligned to 2 MiB and asks for transparent huge pages
/// (`madvise`), so that a table of megabytes looked up at random costs a
/// handful of TLB entries instead of one per 4 KiB page. (A `Vec` is only
/// aligned to its element: a 2 MiB table in a `Vec` almost never holds a
/// whole aligned huge page, and a 4 MiB one only one of two.)
struct SlotArray<V> {
    ptr: NonNull<Slot<V>>,
    len: usize,
    layout: Layout,
}

// SAFETY: a `SlotArray` owns its slots alone, like a `Box<[Slot<V>]>`:
// sending or sharing it is sending or sharing them.
unsafe impl<V: Send> Send for SlotArray<V> {}
// SAFETY: as above; `&SlotArray` only hands out `&[Slot<V>]`.
unsafe impl<V: Sync> Sync for SlotArray<V> {}

impl<V: Copy> SlotArray<V> {
    /// `len` (at least 1) copies of `fill`.
    fn new(len: usize, fill: Slot<V>) -> Self {
        let size = len
            .checked_mul(std::mem::size_of::<Slot<V>>())
            .expect("FDB table size overflows");
        let align = if size >= HUGE {
            HUGE
        } else {
            std::mem::align_of::<Slot<V>>()
        };
        let layout = Layout::from_size_align(size, align).expect("FDB table layout");
        assert!(size > 0, "an FDB table has slots");
        // SAFETY: the layout has a non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<Slot<V>>();
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        if size >= HUGE {
            advise_huge_pages(raw.cast(), size);
        }
        for i in 0..len {
            // SAFETY: `i < len`: inside the allocation just made for `len`
            // slots, properly aligned; `Slot<V>` is `Copy` (nothing to drop
            // in the uninitialised memory written over).
            unsafe { raw.add(i).write(fill) };
        }
        SlotArray { ptr, len, layout }
    }
}

impl<V> Deref for SlotArray<V> {
    type Target = [Slot<V>];

    #[inline(always)]
    fn deref(&self) -> &[Slot<V>] {
        // SAFETY: `ptr` points to `len` initialised slots (`new`), owned by
        // `self` and alive as long as it is.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<V> DerefMut for SlotArray<V> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [Slot<V>] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<V> Drop for SlotArray<V> {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout, freed once;
        // slots are `Copy` in every `SlotArray` made (nothing to drop).
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for SlotArray<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotArray")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Asks the kernel to back the (not yet touched) `len` bytes at `start`,
/// 2 MiB-aligned, with transparent huge pages where the system allows it
/// (`madvise` mode). Failure changes nothing but speed.
fn advise_huge_pages(start: *mut u8, len: usize) {
    // SAFETY: the range is one live allocation of ours (the caller's,
    // not yet handed out); MADV_HUGEPAGE changes how it is backed, never
    // its contents, and needs no other invariant.
    let rc = unsafe { libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE) };
    if rc != 0 {
        tracing::debug!("FDB table: no transparent huge pages");
    }
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
    fn at_its_highest_load_the_table_keeps_short_probes_through_churn() {
        // Reserved for 2 048: the table holds them at its highest load, and
        // churn at that load (remove one, insert another) neither grows it
        // nor lengthens the probes (backward-shift removal: no tombstones).
        const N: usize = 2048;
        let mut t = SlotTable::new(0u64);
        t.reserve(N);
        let slots = t.slots.len();
        assert!(fits(N, slots) && !fits(N, slots / 2), "{slots} slots");
        assert_eq!(std::mem::size_of::<Slot<u64>>(), 16);
        let mut live: Vec<FdbKey> = (0..N as u64).map(|m| key(1, m)).collect();
        for (i, k) in live.iter().enumerate() {
            t.insert(*k, i as u64);
        }
        let mean = |t: &SlotTable<u64>, keys: &[FdbKey]| {
            keys.iter().map(|k| t.probes(k)).sum::<usize>() as f64 / keys.len() as f64
        };
        let load = N as f64 / slots as f64;
        // Linear probing: a hit takes (1 + 1/(1 - load)) / 2 probes on
        // average; allow a quarter more for the hash's luck.
        let bound = 1.25 * (1.0 + 1.0 / (1.0 - load)) / 2.0;
        let before = mean(&t, &live);
        assert!(before <= bound, "{before} probes per hit at load {load}");
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % N as u64) as usize;
            assert!(t.remove(&live[i]).is_some());
            live[i] = key(1 + (step % 3) as u16, 1_000_000 + step);
            t.insert(live[i], step);
            assert_eq!(t.slots.len(), slots, "grew at step {step}");
        }
        assert_eq!(t.len(), N);
        for k in &live {
            assert!(t.get(k).is_some());
        }
        let after = mean(&t, &live);
        assert!(after <= bound, "{after} probes per hit after churn");
        // Misses end at the first empty slot.
        let misses: Vec<FdbKey> = (0..1000).map(|m| key(9, m)).collect();
        assert!(misses.iter().all(|k| t.get(k).is_none()));
    }

    #[test]
    fn a_table_of_two_mebibytes_or_more_is_aligned_to_a_huge_page() {
        let mut t = SlotTable::new(0u64);
        t.reserve(100_000);
        assert!(t.slots.len() * 16 >= HUGE);
        assert_eq!(t.slots.as_ptr() as usize % HUGE, 0);
        t.insert(key(1, 1), 7);
        assert_eq!(t.get(&key(1, 1)), Some(&7));
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
