//! [`VtepMap`]: a small map keyed by remote VTEP address, read once per
//! frame sent to a VTEP (its encapsulation template, its next hop).
//!
//! IPv4 keys live in an open-addressing table of `(address, index)` pairs,
//! at most half full, found with one multiply and usually one probe; no
//! general-purpose hasher runs per frame. The values sit in a dense `Vec`.
//! Changes (a next hop resolved or lost, new settings) are rare and rebuild
//! the probe table. IPv6 keys, rarer still, use a `hashbrown` map.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;

/// An empty slot of the probe table.
const EMPTY: u32 = u32::MAX;

/// A map from remote VTEP address to `T`.
#[derive(Clone, Debug)]
pub(super) struct VtepMap<T> {
    /// IPv4 entries, in no particular order.
    v4: Vec<(u32, T)>,
    /// Probe table over `v4`: (address, index into `v4` or [`EMPTY`]); its
    /// length is a power of two at least twice `v4.len()`.
    slots: Vec<(u32, u32)>,
    v6: HashMap<u128, T>,
}

impl<T> Default for VtepMap<T> {
    fn default() -> Self {
        VtepMap {
            v4: Vec::new(),
            slots: vec![(0, EMPTY)],
            v6: HashMap::new(),
        }
    }
}

/// The home slot of `key` in a table of `mask + 1` slots (Fibonacci hashing:
/// the top bits of one multiply).
#[inline(always)]
fn home(key: u32, mask: usize) -> usize {
    ((u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize) & mask
}

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
        let mask = self.slots.len() - 1;
        let mut i = home(key, mask);
        // The table is never full, so an empty slot ends every probe.
        loop {
            let (k, idx) = self.slots[i];
            if idx == EMPTY {
                return None;
            }
            if k == key {
                // `idx` indexes `v4` (built together in `rebuild`).
                return Some(&self.v4[idx as usize].1);
            }
            i = (i + 1) & mask;
        }
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

    /// Rebuilds the probe table from `v4`.
    fn rebuild(&mut self) {
        let size = (2 * self.v4.len()).next_power_of_two().max(2);
        let mask = size - 1;
        self.slots.clear();
        self.slots.resize(size, (0, EMPTY));
        for (idx, &(key, _)) in self.v4.iter().enumerate() {
            let mut i = home(key, mask);
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
