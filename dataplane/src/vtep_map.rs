//! [`VtepMap`]: a small map keyed by remote VTEP address, read once per
//! frame that goes to or comes from a VTEP: the engine's encapsulation
//! templates and next hops, and (as a set, `VtepMap<()>`) each bridge
//! domain's VTEP allow-list ([`crate::bridge::VtepSet`]).
//!
//! IPv4 keys live in an open-addressing table of `(address, index)` pairs,
//! at most half full, found with one multiply; no general-purpose hasher
//! runs per frame. The values sit in a dense `Vec`. Changes (a next hop
//! resolved or lost, new settings, a new flood list) are rare and rebuild
//! the probe table, choosing a hash seed — and if need be a larger table,
//! up to 4096 slots — under which no two addresses share a home slot: a
//! lookup is then one probe, always, and its branches are predictable
//! whichever VTEP a frame goes to or comes from. IPv6 keys, rarer still,
//! use a `hashbrown` map.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;

/// An empty slot of the probe table.
const EMPTY: u32 = u32::MAX;

/// A map from remote VTEP address to `T`.
#[derive(Clone, Debug)]
pub(crate) struct VtepMap<T> {
    /// IPv4 entries, in no particular order.
    v4: Vec<(u32, T)>,
    /// Probe table over `v4`: (address, index into `v4` or [`EMPTY`]); its
    /// length is a power of two at least twice `v4.len()`.
    slots: Vec<(u32, u32)>,
    /// Mixed into keys before hashing; chosen by `rebuild`.
    seed: u32,
    v6: HashMap<u128, T>,
}

impl<T> Default for VtepMap<T> {
    fn default() -> Self {
        VtepMap {
            v4: Vec::new(),
            slots: vec![(0, EMPTY)],
            seed: 0,
            v6: HashMap::new(),
        }
    }
}

/// The home slot of `key` in a table of `mask + 1` slots (Fibonacci hashing
/// of the seeded key: the top bits of one multiply).
#[inline(always)]
fn home(key: u32, seed: u32, mask: usize) -> usize {
    ((u64::from(key ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize) & mask
}

/// The largest probe table `rebuild` grows to while looking for a seed
/// without shared home slots (32 KiB).
const MAX_PERFECT_SLOTS: usize = 4096;

impl<T> VtepMap<T> {
    /// The value for `ip`.
    #[inline(always)]
    pub fn get(&self, ip: IpAddr) -> Option<&T> {
        match ip {
            IpAddr::V4(a) => self.get_v4(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)),
        }
    }

    #[inline(always)]
    fn get_v4(&self, key: u32) -> Option<&T> {
        // The index comes from `slots`, built together with `v4` in
        // `rebuild`.
        self.find_v4(key).map(|idx| &self.v4[idx as usize].1)
    }

    /// The index into `v4` of `key`'s entry, if any.
    #[inline(always)]
    fn find_v4(&self, key: u32) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = home(key, self.seed, mask);
        // The table is never full, so an empty slot ends every probe.
        loop {
            let (k, idx) = self.slots[i];
            if idx == EMPTY {
                return None;
            }
            if k == key {
                return Some(idx);
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether `ip` has a value.
    #[inline(always)]
    pub fn contains(&self, ip: IpAddr) -> bool {
        // Without reading the value: one probe of `slots` and no more.
        match ip {
            IpAddr::V4(a) => self.find_v4(u32::from(a)).is_some(),
            IpAddr::V6(a) => self.v6.contains_key(&u128::from(a)),
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The map of `entries`; a later value for the same key replaces an
    /// earlier one. The probe table is built once, at the end.
    pub fn from_entries(entries: impl IntoIterator<Item = (IpAddr, T)>) -> VtepMap<T> {
        let mut m = VtepMap::default();
        for (ip, v) in entries {
            match ip {
                IpAddr::V4(a) => {
                    let key = u32::from(a);
                    match m.v4.iter_mut().find(|(k, _)| *k == key) {
                        Some(e) => e.1 = v,
                        None => m.v4.push((key, v)),
                    }
                }
                IpAddr::V6(a) => {
                    m.v6.insert(u128::from(a), v);
                }
            }
        }
        m.rebuild();
        m
    }

    /// Inserts or replaces the value for `ip`.
    pub fn insert(&mut self, ip: IpAddr, v: T) {
        match ip {
            IpAddr::V4(a) => {
                let key = u32::from(a);
                match self.v4.iter_mut().find(|(k, _)| *k == key) {
                    Some(e) => e.1 = v,
                    None => {
                        self.v4.push((key, v));
                        self.rebuild();
                    }
                }
            }
            IpAddr::V6(a) => {
                self.v6.insert(u128::from(a), v);
            }
        }
    }

    /// Removes the value for `ip`, if any.
    pub fn remove(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                let key = u32::from(a);
                if let Some(at) = self.v4.iter().position(|(k, _)| *k == key) {
                    self.v4.swap_remove(at);
                    self.rebuild();
                }
            }
            IpAddr::V6(a) => {
                self.v6.remove(&u128::from(a));
            }
        }
    }

    /// Every key.
    pub fn keys(&self) -> Vec<IpAddr> {
        let v4 = self.v4.iter().map(|&(k, _)| IpAddr::V4(Ipv4Addr::from(k)));
        let v6 = self.v6.keys().map(|&k| IpAddr::V6(Ipv6Addr::from(k)));
        v4.chain(v6).collect()
    }

    /// Rebuilds the probe table from `v4`: the first seed (of 16 per
    /// size) under which every address has a home slot of its own, growing
    /// the table while none is found; past [`MAX_PERFECT_SLOTS`] the last
    /// try stands and shared slots are probed linearly.
    fn rebuild(&mut self) {
        let mut size = (2 * self.v4.len()).next_power_of_two().max(2);
        let mut seed = 0u32;
        'search: loop {
            for _ in 0..16 {
                let mask = size - 1;
                let mut used = vec![false; size];
                let distinct = self.v4.iter().all(|&(key, _)| {
                    let i = home(key, seed, mask);
                    !std::mem::replace(&mut used[i], true)
                });
                if distinct {
                    break 'search;
                }
                seed = seed.wrapping_add(0x9e37_79b9);
            }
            if size >= MAX_PERFECT_SLOTS {
                break;
            }
            size *= 2;
        }
        let mask = size - 1;
        self.seed = seed;
        self.slots.clear();
        self.slots.resize(size, (0, EMPTY));
        for (idx, &(key, _)) in self.v4.iter().enumerate() {
            let mut i = home(key, seed, mask);
            while self.slots[i].1 != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = (key, idx as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i))
    }

    #[test]
    fn a_few_vteps_each_get_a_home_slot_of_their_own() {
        let mut m = VtepMap::default();
        for i in 1..=64 {
            m.insert(v4(i), i);
        }
        let mask = m.slots.len() - 1;
        let mut homes: Vec<_> = m.v4.iter().map(|&(k, _)| home(k, m.seed, mask)).collect();
        homes.sort_unstable();
        homes.dedup();
        assert_eq!(homes.len(), 64, "{} slots", m.slots.len());
        // Far more than fit without sharing: still all found.
        for i in 64..3000 {
            m.insert(v4(i), i);
        }
        for i in 1..3000 {
            assert_eq!(m.get(v4(i)), Some(&i));
        }
        assert_eq!(m.get(v4(3000)), None);
    }

    #[test]
    fn from_entries_equals_inserting_one_by_one() {
        let entries: Vec<(IpAddr, u32)> = (0..200u32)
            .map(|n| {
                // Repeats (n % 150) so later values replace earlier ones.
                let ip = match n % 150 {
                    m if m % 7 == 0 => IpAddr::V6(Ipv6Addr::from(u128::from(m) << 64 | 1)),
                    m => v4(m),
                };
                (ip, n)
            })
            .collect();
        let built = VtepMap::from_entries(entries.iter().copied());
        let mut one_by_one = VtepMap::default();
        for &(ip, n) in &entries {
            one_by_one.insert(ip, n);
        }
        assert_eq!(built.len(), 150);
        assert_eq!(one_by_one.len(), 150);
        for m in 0..160 {
            for ip in [v4(m), IpAddr::V6(Ipv6Addr::from(u128::from(m) << 64 | 1))] {
                assert_eq!(built.get(ip), one_by_one.get(ip), "{ip}");
                assert_eq!(built.contains(ip), built.get(ip).is_some());
            }
        }
        assert_eq!(built.get(v4(1)), Some(&151));
        assert!(!VtepMap::<()>::from_entries([]).contains(v4(0)));
    }

    #[test]
    fn agrees_with_a_hash_map_through_inserts_and_removes() {
        let mut m = VtepMap::default();
        let mut model = std::collections::HashMap::new();
        assert_eq!(m.get(v4(1)), None);
        // Deterministic pseudo-random operations over 300 addresses of both
        // families (0.0.0.0 and 255.255.255.255 included).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 300) as u32;
            let ip = match n {
                0 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                1 => IpAddr::V4(Ipv4Addr::BROADCAST),
                n if n % 5 == 0 => IpAddr::V6(Ipv6Addr::from(u128::from(n) << 64 | 1)),
                n => v4(n),
            };
            if (x >> 32) % 3 == 0 {
                m.remove(ip);
                model.remove(&ip);
            } else {
                m.insert(ip, step);
                model.insert(ip, step);
            }
            let probe = v4((x >> 40) as u32 % 300);
            assert_eq!(m.get(probe), model.get(&probe));
            assert_eq!(m.get(ip), model.get(&ip));
        }
        let mut keys = m.keys();
        keys.sort();
        let mut want: Vec<_> = model.keys().copied().collect();
        want.sort();
        assert_eq!(keys, want);
        for ip in want {
            assert_eq!(m.get(ip), model.get(&ip));
        }
    }
}
