//! How a worker's replica stores where a MAC lives: a [`Place`] packed into
//! 32 bits, with remote VTEPs numbered by a per-replica [`VtepIndex`]
//! instead of carried as 17-byte addresses.
//!
//! The owner, the control plane and `fdb show` speak [`Location`] (with the
//! VTEP's `IpAddr`); only the replica's slots and the engine's per-frame
//! path use the packed form. A slot is then an 8-byte key and an 8-byte
//! value (packed place + last refresh), 16 bytes in all.
//!
//! The [`VtepIndex`] interns each VTEP address an entry of the replica
//! points at into a small number, counting the entries that use it. When
//! the last such entry goes (aged, flushed, moved, removed), the number is
//! freed and later reused, so the index table never holds more live VTEPs
//! than the replica holds entries (bounded by the bridge domains' MAC caps
//! plus static entries), however many addresses a hostile underlay sends
//! from. Numbers given out anew (fresh or reused) are listed until
//! [`VtepIndex::drain_new`] hands them to whoever keeps per-VTEP data by
//! number (the engine's encapsulation templates).

use std::net::IpAddr;

use hashbrown::HashMap;

use crate::types::{Attachment, Location, PortId, Vlan};

/// Where a MAC lives, as the replica stores it: a local attachment or the
/// number the replica gives a remote VTEP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Place {
    /// Behind a local (port, VLAN) attachment.
    Local(Attachment),
    /// Behind the remote VTEP with this number (see
    /// [`FdbReplica::vtep_addr`](super::FdbReplica::vtep_addr)).
    Vtep(u32),
}

/// Bit 31 of a packed value: the entry is static.
pub(super) const STATIC: u32 = 1 << 31;
/// Bit 30: the place is a VTEP (its number in bits 0–29); clear: a local
/// attachment (port in bits 0–15, VLAN in bits 16–27, 0 for untagged).
const VTEP: u32 = 1 << 30;
/// The VTEP numbers a packed value can carry.
pub(super) const MAX_VTEPS: usize = 1 << 30;

/// The packed form of a local attachment.
#[inline(always)]
pub(super) const fn pack_local(a: Attachment) -> u32 {
    let vlan = match a.vlan {
        Some(v) => v.id() as u32,
        None => 0,
    };
    (a.port.0 as u32) | vlan << 16
}

/// The packed form of VTEP number `i` (below [`MAX_VTEPS`]).
#[inline(always)]
pub(super) const fn pack_vtep(i: u32) -> u32 {
    VTEP | i
}

/// The place a packed value stands for (the static bit ignored).
#[inline(always)]
pub(super) fn unpack(p: u32) -> Place {
    if p & VTEP != 0 {
        Place::Vtep(p & (VTEP - 1))
    } else {
        Place::Local(Attachment {
            port: PortId(p as u16),
            // Only VLANs that passed `Vlan::new` are packed; 0: untagged.
            vlan: Vlan::from_stored(((p >> 16) & 0xfff) as u16),
        })
    }
}

/// The VTEP number of a packed value, if it is a VTEP.
#[inline(always)]
pub(super) const fn vtep_of(p: u32) -> Option<u32> {
    if p & VTEP != 0 {
        Some(p & (VTEP - 1))
    } else {
        None
    }
}

/// More numbers given out anew than this between two
/// [`drain_new`](VtepIndex::drain_new) calls and the list is dropped for a
/// "everything changed" mark, so a replica nobody drains stays bounded.
const NEW_LIST_MAX: usize = 4096;

/// The replica's numbering of remote VTEPs; see the module docs.
#[derive(Debug, Default)]
pub(super) struct VtepIndex {
    /// Per number: its address and how many entries use it (0: free).
    slots: Vec<(IpAddr, u32)>,
    by_addr: HashMap<IpAddr, u32>,
    free: Vec<u32>,
    /// Numbers given out since the last `drain_new`.
    new: Vec<u32>,
    /// `new` is not empty or `all_new` is set: one flag to test per frame.
    pending: bool,
    /// `new` overflowed: every live number counts as new.
    all_new: bool,
}

impl VtepIndex {
    /// The address of VTEP number `i` (the last one it had if it is free).
    #[inline(always)]
    pub fn addr(&self, i: u32) -> Option<IpAddr> {
        self.slots.get(i as usize).map(|s| s.0)
    }

    /// The number of `ip`, if an entry uses it.
    pub fn find(&self, ip: IpAddr) -> Option<u32> {
        self.by_addr.get(&ip).copied()
    }

    /// Whether packed value `p` is VTEP `ip`.
    #[inline(always)]
    pub fn is(&self, p: u32, ip: IpAddr) -> bool {
        match (vtep_of(p).and_then(|i| self.slots.get(i as usize)), ip) {
            (Some((IpAddr::V4(a), _)), IpAddr::V4(b)) => u32::from(*a) == u32::from(b),
            (Some((IpAddr::V6(a), _)), IpAddr::V6(b)) => a == &b,
            _ => false,
        }
    }

    /// The packed form of `loc` for one more entry that uses it: a VTEP is
    /// numbered (anew if no entry used it) and its count raised.
    pub fn acquire(&mut self, loc: Location) -> u32 {
        let ip = match loc {
            Location::Local(a) => return pack_local(a),
            Location::Vtep(ip) => ip,
        };
        if let Some(&i) = self.by_addr.get(&ip) {
            self.slots[i as usize].1 += 1;
            return pack_vtep(i);
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = (ip, 1);
                i
            }
            None => {
                // Never more numbers than entries: far below MAX_VTEPS.
                debug_assert!(self.slots.len() < MAX_VTEPS);
                self.slots.push((ip, 1));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_addr.insert(ip, i);
        self.pending = true;
        if !self.all_new {
            if self.new.len() < NEW_LIST_MAX {
                self.new.push(i);
            } else {
                self.new.clear();
                self.all_new = true;
            }
        }
        pack_vtep(i)
    }

    /// One entry with packed value `p` no longer uses it: a VTEP's count is
    /// lowered, and its number freed at zero.
    pub fn release(&mut self, p: u32) {
        let Some(i) = vtep_of(p) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        debug_assert!(slot.1 > 0, "VTEP {i} released more than acquired");
        slot.1 = slot.1.saturating_sub(1);
        if slot.1 == 0 {
            self.by_addr.remove(&slot.0);
            self.free.push(i);
        }
    }

    /// The location packed value `p` stands for.
    pub fn location(&self, p: u32) -> Location {
        match unpack(p) {
            Place::Local(a) => Location::Local(a),
            Place::Vtep(i) => Location::Vtep(
                self.addr(i)
                    .unwrap_or_else(|| unreachable!("entries hold live VTEP numbers")),
            ),
        }
    }

    /// Whether numbers were given out since the last [`drain_new`](Self::drain_new).
    #[inline(always)]
    pub fn has_new(&self) -> bool {
        self.pending
    }

    /// Calls `f` with each number given out (and still live) since the last
    /// call, and its address.
    pub fn drain_new(&mut self, mut f: impl FnMut(u32, IpAddr)) {
        if self.all_new {
            for (i, &(ip, n)) in self.slots.iter().enumerate() {
                if n > 0 {
                    f(i as u32, ip);
                }
            }
        } else {
            for &i in &self.new {
                let (ip, n) = self.slots[i as usize];
                if n > 0 {
                    f(i, ip);
                }
            }
        }
        self.new.clear();
        self.all_new = false;
        self.pending = false;
    }

    /// Every live number and its address.
    pub fn live(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 > 0)
            .map(|(i, s)| (i as u32, s.0))
    }

    /// Numbers in use.
    #[cfg(test)]
    pub fn live_count(&self) -> usize {
        self.by_addr.len()
    }

    /// Numbers ever allocated (live or free): the length of a table indexed
    /// by number.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(i: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))
    }

    #[test]
    fn packed_places_round_trip() {
        let mut ix = VtepIndex::default();
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        let locs = [
            Location::Local(Attachment::untagged(PortId(0))),
            Location::Local(Attachment::untagged(PortId(u16::MAX))),
            Location::Local(Attachment::tagged(PortId(3), Vlan::new(1).unwrap())),
            Location::Local(Attachment::tagged(
                PortId(u16::MAX),
                Vlan::new(4094).unwrap(),
            )),
            Location::Vtep(v4(1)),
            Location::Vtep(v6),
        ];
        for loc in locs {
            let p = ix.acquire(loc);
            assert_eq!(p & STATIC, 0);
            assert_eq!(ix.location(p), loc);
            assert_eq!(ix.location(p | STATIC), loc);
            let place = unpack(p);
            match (place, loc) {
                (Place::Local(a), Location::Local(b)) => assert_eq!(a, b),
                (Place::Vtep(i), Location::Vtep(ip)) => {
                    assert_eq!(ix.addr(i), Some(ip));
                    assert!(ix.is(p, ip));
                    assert!(ix.is(p | STATIC, ip));
                }
                other => panic!("{other:?}"),
            }
        }
        // Distinct locations, distinct packed values.
        let mut all: Vec<u32> = locs.iter().map(|&l| ix.acquire(l)).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), locs.len());
    }

    #[test]
    fn a_vtep_whose_last_entry_goes_frees_its_number_for_reuse() {
        let mut ix = VtepIndex::default();
        let a = ix.acquire(Location::Vtep(v4(1)));
        let a2 = ix.acquire(Location::Vtep(v4(1)));
        assert_eq!(a, a2);
        assert_eq!(ix.live_count(), 1);
        let mut got = Vec::new();
        ix.drain_new(|i, ip| got.push((i, ip)));
        assert_eq!(got, vec![(vtep_of(a).unwrap(), v4(1))]);
        assert!(!ix.has_new());

        ix.release(a);
        assert_eq!(ix.find(v4(1)), vtep_of(a));
        ix.release(a);
        assert_eq!(ix.find(v4(1)), None);
        assert_eq!(ix.live_count(), 0);

        // The freed number goes to the next new VTEP, and is announced anew.
        let b = ix.acquire(Location::Vtep(v4(2)));
        assert_eq!(vtep_of(b), vtep_of(a));
        assert_eq!(ix.capacity(), 1);
        assert!(!ix.is(b, v4(1)));
        assert!(ix.is(b, v4(2)));
        let mut got = Vec::new();
        ix.drain_new(|i, ip| got.push((i, ip)));
        assert_eq!(got, vec![(vtep_of(b).unwrap(), v4(2))]);
    }

    #[test]
    fn churn_of_many_vteps_keeps_the_table_at_the_peak_in_use() {
        let mut ix = VtepIndex::default();
        // 10 000 VTEPs, never more than 16 in use at once.
        let mut held = std::collections::VecDeque::new();
        for n in 0..10_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            held.push_back(ix.acquire(Location::Vtep(ip)));
            if held.len() > 16 {
                ix.release(held.pop_front().unwrap());
            }
        }
        assert_eq!(ix.live_count(), 16);
        assert!(ix.capacity() <= 17, "{}", ix.capacity());
        // Nobody drained: the list of new numbers stays bounded, and a
        // drain still reports every live number.
        assert!(ix.new.len() <= NEW_LIST_MAX);
        let mut got = Vec::new();
        ix.drain_new(|i, ip| got.push((i, ip)));
        got.sort_unstable();
        let mut want: Vec<_> = ix.live().collect();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(got.len(), 16);
    }
}
