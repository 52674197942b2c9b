//! The userspace half of the direct-mapped tables `xvs_vni_direct` and
//! `xvs_attach_direct` (see `xvs_abi.h`): which slot each key gets, which
//! multiplier ("seed") and size the table uses, and which slot writes
//! bring the kernel's table from one state to the next.
//!
//! A key's slot is `key * seed >> (32 − bits)` (32-bit multiply): one
//! multiply and an array lookup the verifier inlines, instead of a hash
//! lookup (jhash and a bucket walk). The hash maps stay authoritative: a key
//! without a slot of its own is still found there, so a table never has to
//! be perfect, only as full as it can cheaply be made. When a new key finds
//! its slot taken, [`DirectTable::set`] searches a few seeds and sizes (up
//! to [`DIRECT_SLOTS`]) for a layout that gives every key its own slot, and
//! moves to the best one found; when none places more keys than the
//! current layout, the key is left to the hash and no search is tried again
//! until a key is removed.
//!
//! Pure bookkeeping: `maps.rs` writes the planned slots under the sequence
//! lock (`xvs_config.table_gen`) and then records them here.

use std::collections::{BTreeMap, HashMap};

use crate::abi::{DIRECT_SLOTS, DIRECT_VALID};

/// Smallest table, in bits of slot index.
const MIN_BITS: u32 = 6;
/// Largest table: [`DIRECT_SLOTS`] slots.
const MAX_BITS: u32 = DIRECT_SLOTS.trailing_zeros();
/// Multipliers tried at each size, the golden-ratio one first (it spreads
/// runs of consecutive keys evenly); all odd.
const SEEDS: [u32; 8] = [
    0x9e37_79b9,
    0x85eb_ca6b,
    0xc2b2_ae35,
    0x27d4_eb2f,
    0x1656_67b1,
    0xd3a2_646d,
    0xfd70_46c5,
    0xb55a_4f09,
];

/// How full one direct-mapped table is ([`crate::Classifier::direct_tables`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectStats {
    /// Keys configured (all of them are in the hash map).
    pub keys: usize,
    /// Keys with a slot of their own: found without the hash.
    pub placed: usize,
    /// Slots the table uses now (0: no table).
    pub slots: u32,
}

/// Both direct-mapped tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectTables {
    /// VNI → bridge domain (`xvs_vni_direct`).
    pub vnis: DirectStats,
    /// (port, VID ≥ 1) → bridge domain (`xvs_attach_direct`).
    pub attachments: DirectStats,
}

/// A table's seed and size; seed 0 is "no table".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Layout {
    /// Odd multiplier, or 0.
    pub seed: u32,
    /// log2 of the slots in use.
    pub bits: u32,
}

impl Layout {
    /// The slot of `key`.
    pub fn index(self, key: u32) -> u32 {
        key.wrapping_mul(self.seed) >> (32 - self.bits)
    }

    /// The shift the program applies (`32 − bits`; 0 without a table).
    pub fn shift(self) -> u32 {
        if self.seed == 0 {
            0
        } else {
            32 - self.bits
        }
    }
}

/// The value of a used slot.
pub(crate) fn slot_value(key: u32, bd: u32) -> u64 {
    (u64::from(bd) << 32) | u64::from(key | DIRECT_VALID)
}

/// Slot writes (index, value; 0 empties the slot), then the layout the
/// table uses afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Slot writes, in order.
    pub writes: Vec<(u32, u64)>,
    /// The layout once the writes are done.
    pub layout: Layout,
    /// The layout differs from the current one.
    pub relayout: bool,
    /// A search for a better layout found none.
    pub searched_in_vain: bool,
}

impl Plan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && !self.relayout
    }
}

/// One direct-mapped table and the keys behind it.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirectTable {
    /// Every key (what the hash map holds) and its bridge domain.
    entries: BTreeMap<u32, u32>,
    layout: Layout,
    /// Used slots: index → key.
    slots: HashMap<u32, u32>,
    /// A search at this many keys found no better layout: none is tried
    /// again until there are twice as many, or a key is removed.
    hopeless_at: Option<usize>,
    /// A write failed half-way: slots may hold anything until the next
    /// layout rewrites them all.
    dirty: bool,
}

impl DirectTable {
    /// The current layout.
    #[cfg(test)]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Keys with a slot of their own.
    #[cfg(test)]
    pub fn placed(&self) -> usize {
        self.slots.len()
    }

    /// How full the table is.
    pub fn stats(&self) -> DirectStats {
        DirectStats {
            keys: self.entries.len(),
            placed: self.slots.len(),
            slots: if self.layout.seed == 0 {
                0
            } else {
                1 << self.layout.bits
            },
        }
    }

    /// The writes that give `key` (now mapped to `bd` in the hash) its slot,
    /// or a new layout, or nothing (the key stays with the hash).
    pub fn plan_set(&self, key: u32, bd: u32) -> Plan {
        let n = self.entries.len() + usize::from(!self.entries.contains_key(&key));
        if self.layout.seed != 0 {
            let idx = self.layout.index(key);
            match self.slots.get(&idx) {
                Some(&k) if k != key => {}
                _ => {
                    return Plan {
                        writes: vec![(idx, slot_value(key, bd))],
                        layout: self.layout,
                        ..Plan::default()
                    }
                }
            }
            if self.hopeless_at.is_some_and(|h| n < 2 * h) {
                return Plan {
                    layout: self.layout,
                    ..Plan::default()
                };
            }
        }
        let mut entries = self.entries.clone();
        entries.insert(key, bd);
        self.plan_relayout(&entries)
    }

    /// The writes that free `key`'s slot (before it leaves the hash), and
    /// give the slot to another key that has it as its own, if any.
    pub fn plan_remove(&self, key: u32) -> Plan {
        let mut plan = Plan {
            layout: self.layout,
            ..Plan::default()
        };
        if self.layout.seed == 0 {
            return plan;
        }
        let idx = self.layout.index(key);
        if self.slots.get(&idx) != Some(&key) {
            return plan;
        }
        let heir = self
            .entries
            .iter()
            .find(|(&k, _)| k != key && self.layout.index(k) == idx);
        let value = heir.map_or(0, |(&k, &bd)| slot_value(k, bd));
        plan.writes.push((idx, value));
        plan
    }

    /// Records `key → bd` (written to the hash) and `plan` (written to the
    /// table; an empty plan when the write failed and the table was reset).
    pub fn commit_set(&mut self, key: u32, bd: u32, plan: &Plan) {
        self.entries.insert(key, bd);
        if plan.is_empty() && !plan.searched_in_vain {
            // Nothing written: the layout stays as it is (or as reset).
            return;
        }
        if plan.relayout {
            self.hopeless_at = None;
        } else if plan.searched_in_vain {
            self.hopeless_at = Some(self.entries.len());
        }
        self.record(plan);
    }

    /// Records `key` gone (from the table by `plan`, then from the hash).
    pub fn commit_remove(&mut self, key: u32, plan: &Plan) {
        self.entries.remove(&key);
        self.hopeless_at = None;
        self.record(plan);
    }

    /// Forgets the slots (a write failed half-way): the caller has turned
    /// the table off; the next layout rewrites every slot it could have
    /// left behind.
    pub fn reset(&mut self) {
        self.layout = Layout::default();
        self.slots.clear();
        self.hopeless_at = None;
        self.dirty = true;
    }

    fn record(&mut self, plan: &Plan) {
        self.layout = plan.layout;
        for &(idx, value) in &plan.writes {
            if value == 0 {
                self.slots.remove(&idx);
            } else {
                self.slots.insert(idx, (value as u32) & !DIRECT_VALID);
            }
        }
        if plan.relayout {
            self.dirty = false;
        }
    }

    /// Moves to the layout that places most of `entries` (all of them if a
    /// seed and size up to the cap allow), if it places all, or an eighth
    /// more than the current one would (so that a table that cannot be
    /// perfect is not rewritten for every key); otherwise an empty plan.
    fn plan_relayout(&self, entries: &BTreeMap<u32, u32>) -> Plan {
        let (layout, placed) = best_layout(entries);
        if self.layout.seed != 0 && !self.dirty {
            let current = place(entries, self.layout).len();
            let better =
                placed > current && (placed == entries.len() || placed > current + current / 8);
            if !better {
                return Plan {
                    layout: self.layout,
                    searched_in_vain: true,
                    ..Plan::default()
                };
            }
        }
        let new = place(entries, layout);
        let mut writes = Vec::new();
        if self.dirty {
            // Slots of a failed write may hold anything: empty them all.
            writes.extend(
                (0..DIRECT_SLOTS)
                    .filter(|i| !new.contains_key(i))
                    .map(|i| (i, 0)),
            );
        } else {
            let mut old: Vec<u32> = self
                .slots
                .keys()
                .copied()
                .filter(|i| !new.contains_key(i))
                .collect();
            old.sort_unstable();
            writes.extend(old.into_iter().map(|i| (i, 0)));
        }
        let mut fresh: Vec<(u32, u64)> = new
            .iter()
            .filter(|(i, &k)| self.dirty || self.slot_of_key(**i) != Some((k, entries[&k])))
            .map(|(&i, &k)| (i, slot_value(k, entries[&k])))
            .collect();
        fresh.sort_unstable();
        writes.extend(fresh);
        Plan {
            writes,
            layout,
            relayout: true,
            searched_in_vain: false,
        }
    }

    /// What slot `idx` holds now: (key, bd).
    fn slot_of_key(&self, idx: u32) -> Option<(u32, u32)> {
        let k = *self.slots.get(&idx)?;
        Some((k, *self.entries.get(&k)?))
    }
}

/// Slot → key for `layout`: in key order, the first key to want a slot gets
/// it.
fn place(entries: &BTreeMap<u32, u32>, layout: Layout) -> HashMap<u32, u32> {
    let mut slots = HashMap::with_capacity(entries.len());
    for &k in entries.keys() {
        slots.entry(layout.index(k)).or_insert(k);
    }
    slots
}

/// The smallest collision-free layout found, else the one placing most
/// keys (the largest tried), with the number of keys it places.
fn best_layout(entries: &BTreeMap<u32, u32>) -> (Layout, usize) {
    let n = entries.len();
    // At most half full, and never below MIN_BITS.
    let min_bits = (2 * n.max(1))
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_BITS);
    let mut best = (
        Layout {
            seed: SEEDS[0],
            bits: min_bits.min(MAX_BITS),
        },
        0,
    );
    let mut used = vec![0u64; (DIRECT_SLOTS / 64) as usize];
    for bits in min_bits.min(MAX_BITS)..=MAX_BITS {
        for seed in SEEDS {
            let layout = Layout { seed, bits };
            used.iter_mut().for_each(|w| *w = 0);
            let mut placed = 0;
            for &k in entries.keys() {
                let i = layout.index(k) as usize;
                let (w, b) = (i / 64, 1u64 << (i % 64));
                if used[w] & b == 0 {
                    used[w] |= b;
                    placed += 1;
                }
            }
            if placed == n {
                return (layout, n);
            }
            if placed > best.1 {
                best = (layout, placed);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies plans the way `maps.rs` does, to a model of the kernel's
    /// slots, and checks every key is found (slot or hash) with its bd.
    struct Model {
        table: DirectTable,
        kernel: HashMap<u32, u64>,
    }

    impl Model {
        fn new() -> Model {
            Model {
                table: DirectTable::default(),
                kernel: HashMap::new(),
            }
        }

        fn apply(&mut self, plan: &Plan) {
            for &(i, v) in &plan.writes {
                assert!(i < DIRECT_SLOTS);
                if v == 0 {
                    self.kernel.remove(&i);
                } else {
                    self.kernel.insert(i, v);
                }
            }
        }

        fn set(&mut self, key: u32, bd: u32) {
            let plan = self.table.plan_set(key, bd);
            self.apply(&plan);
            self.table.commit_set(key, bd, &plan);
        }

        fn remove(&mut self, key: u32) {
            let plan = self.table.plan_remove(key);
            self.apply(&plan);
            self.table.commit_remove(key, &plan);
        }

        /// What the program would find in the slot: Some(bd) on a hit.
        fn slot_hit(&self, key: u32) -> Option<u32> {
            let l = self.table.layout();
            if l.seed == 0 {
                return None;
            }
            let v = *self.kernel.get(&l.index(key))?;
            ((v as u32) == (key | DIRECT_VALID)).then_some((v >> 32) as u32)
        }

        /// Every slot the kernel holds is a current entry, in the slot the
        /// layout gives it, and every key placed is a hit.
        fn check(&self) {
            for (&i, &v) in &self.kernel {
                let key = (v as u32) & !DIRECT_VALID;
                assert_eq!(self.table.entries.get(&key), Some(&((v >> 32) as u32)));
                assert_eq!(
                    self.table.layout().index(key),
                    i,
                    "key {key} in a foreign slot"
                );
            }
            assert_eq!(self.kernel.len(), self.table.placed());
        }
    }

    #[test]
    fn a_few_keys_all_get_slots_of_their_own() {
        let mut m = Model::new();
        for vni in [100, 101, 102, 5000, 16_000_000, 7] {
            m.set(vni, vni % 13);
        }
        m.check();
        for vni in [100, 101, 102, 5000, 16_000_000, 7] {
            assert_eq!(m.slot_hit(vni), Some(vni % 13));
        }
        assert_eq!(m.slot_hit(103), None);
        // A changed bridge domain is rewritten in place.
        let before = m.table.layout();
        m.set(101, 42);
        assert_eq!(m.slot_hit(101), Some(42));
        assert_eq!(m.table.layout(), before);
        m.check();
    }

    #[test]
    fn a_collision_moves_to_a_layout_without_one() {
        let mut m = Model::new();
        m.set(1, 1);
        let l = m.table.layout();
        // A key with the same slot under the current layout.
        let other = (2..1_000_000).find(|&k| l.index(k) == l.index(1)).unwrap();
        m.set(other, 2);
        assert_ne!(m.table.layout(), l, "relayout expected");
        assert_eq!(m.slot_hit(1), Some(1));
        assert_eq!(m.slot_hit(other), Some(2));
        m.check();
    }

    #[test]
    fn dense_ranges_fit_a_small_table() {
        let mut m = Model::new();
        for vni in 1000..1512 {
            m.set(vni, vni);
        }
        m.check();
        assert_eq!(m.table.placed(), 512);
        assert!(m.table.layout().bits <= 12, "{:?}", m.table.layout());
        // Ten thousand consecutive keys still fit, each in its own slot.
        let many: BTreeMap<u32, u32> = (70_000..80_000).map(|k| (k, 1)).collect();
        assert_eq!(best_layout(&many).1, 10_000);
        // 300 scattered ones too (about the birthday bound at 65 536 slots).
        let mut x = 0x1234_5678u32;
        let scattered: BTreeMap<u32, u32> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 0x00ff_ffff, 1)
            })
            .collect();
        assert_eq!(best_layout(&scattered).1, scattered.len());
    }

    #[test]
    fn too_many_keys_leave_some_to_the_hash_and_stay_consistent() {
        let mut m = Model::new();
        let mut x = 0x1234_5678u32;
        let mut keys = Vec::new();
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = x & 0x00ff_ffff;
            keys.push(k);
            m.set(k, k ^ 1);
        }
        m.check();
        let placed = m.table.placed();
        let distinct = m.table.stats().keys;
        assert!(placed < distinct, "3000 random keys cannot all be placed");
        assert!(placed > distinct / 2, "placed {placed} of {distinct}");
        for &k in &keys {
            if let Some(bd) = m.slot_hit(k) {
                assert_eq!(bd, k ^ 1);
            }
        }
        // Removing gives freed slots to keys that want them.
        for &k in keys.iter().step_by(2) {
            m.remove(k);
            assert_eq!(m.slot_hit(k), None);
        }
        m.check();
        for &k in &keys {
            m.remove(k);
        }
        m.check();
        assert!(m.kernel.is_empty());
    }

    #[test]
    fn removing_a_key_frees_its_slot_for_its_rival() {
        let mut m = Model::new();
        // Fill past what a search can fix so that rivals stay in the hash.
        m.table.hopeless_at = Some(1000);
        m.set(1, 1); // first key: a layout is made
        let l = m.table.layout();
        let rival = (2..1_000_000).find(|&k| l.index(k) == l.index(1)).unwrap();
        m.table.hopeless_at = Some(1000);
        m.set(rival, 2);
        assert_eq!(m.slot_hit(rival), None, "left to the hash");
        m.remove(1);
        assert_eq!(m.slot_hit(rival), Some(2), "the rival inherits the slot");
        m.check();
    }

    #[test]
    fn a_reset_table_rewrites_every_slot_on_its_next_layout() {
        let mut m = Model::new();
        m.set(5, 5);
        m.table.reset();
        m.kernel.insert(3, slot_value(9, 9)); // garbage a failed write left
        m.set(6, 6);
        assert!(!m.kernel.values().any(|&v| v == slot_value(9, 9)));
        m.check();
    }
}
