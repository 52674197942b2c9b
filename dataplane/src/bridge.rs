//! Bridge-domain configuration as the forwarding decision sees it, and the
//! per-domain set of VTEPs it accepts VXLAN from.
//!
//! RFC 7348 (section 7, security considerations) warns that a VTEP learning
//! from any underlay source lets anyone on the underlay inject frames and
//! steer MAC addresses towards itself. So by default a bridge domain only
//! accepts decapsulated frames whose outer source address is a VTEP of its
//! flood list; [`BridgeDomain::learn_from_any_vtep`] opts out. The check
//! runs in the engine, per decapsulated frame, as a binary search in a
//! small sorted array of integers built when the domain is inserted
//! ([`BridgeDomains::admits_vtep`]).

use std::net::IpAddr;

use crate::types::{Attachment, BdId, Vni};

/// One bridge domain: an L2 segment with at most one VNI, its local
/// attachments and its flood list of remote VTEPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeDomain {
    /// Its identifier (the FDB key prefix and the XDP metadata's BD).
    pub id: BdId,
    /// The VNI carrying it between VTEPs; `None` for a local-only BD.
    pub vni: Option<Vni>,
    /// Local (port, VLAN) attachments.
    pub attachments: Vec<Attachment>,
    /// Remote VTEPs BUM traffic is replicated to (head-end replication).
    pub flood: Vec<IpAddr>,
    /// Cap on learned MACs (applied by the FDB owner); `None`: unlimited.
    pub max_macs: Option<u32>,
    /// Send frames back out of the attachment they came in on (default
    /// off).
    pub hairpin: bool,
    /// Most frames per second flooded in this domain, node-wide (BUM storm
    /// control, [`crate::storm`]); `None`: unlimited.
    pub storm_pps: Option<u32>,
    /// Accept (and learn from) VXLAN from any source VTEP, not only those
    /// of the flood list (default off).
    pub learn_from_any_vtep: bool,
}

impl BridgeDomain {
    /// A BD with no attachments, no flood list, no cap and hairpin off.
    pub fn new(id: BdId, vni: Option<Vni>) -> BridgeDomain {
        BridgeDomain {
            id,
            vni,
            attachments: Vec::new(),
            flood: Vec::new(),
            max_macs: None,
            hairpin: false,
            storm_pps: None,
            learn_from_any_vtep: false,
        }
    }
}

/// A set of VTEP addresses as sorted integers, one array per family: a
/// membership test is a binary search over a few cache lines, with no
/// hashing and no `IpAddr` comparisons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VtepSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl VtepSet {
    /// The set of `ips`.
    pub fn new<'a>(ips: impl IntoIterator<Item = &'a IpAddr>) -> VtepSet {
        let mut set = VtepSet::default();
        for ip in ips {
            match ip {
                IpAddr::V4(a) => set.v4.push(u32::from(*a)),
                IpAddr::V6(a) => set.v6.push(u128::from(*a)),
            }
        }
        set.v4.sort_unstable();
        set.v4.dedup();
        set.v6.sort_unstable();
        set.v6.dedup();
        set
    }

    /// Whether `ip` is in the set.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.binary_search(&u32::from(a)).is_ok(),
            IpAddr::V6(a) => self.v6.binary_search(&u128::from(a)).is_ok(),
        }
    }

    /// How many addresses it holds.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One slot of [`BridgeDomains`]: a domain and what is derived from it.
#[derive(Clone, Debug)]
struct Slot {
    bd: BridgeDomain,
    /// The VTEPs it accepts VXLAN from (its flood list).
    trusted: VtepSet,
}

/// The bridge domains a worker knows, indexed by [`BdId`] for an O(1),
/// hash-free lookup per frame. A domain is replaced as a whole
/// ([`insert`](Self::insert)), so what is derived from it (the trusted
/// VTEPs) is always rebuilt with it.
#[derive(Clone, Debug, Default)]
pub struct BridgeDomains {
    slots: Vec<Option<Slot>>,
}

impl BridgeDomains {
    /// No bridge domains.
    pub fn new() -> BridgeDomains {
        BridgeDomains::default()
    }

    /// Adds or replaces a bridge domain.
    pub fn insert(&mut self, bd: BridgeDomain) {
        let i = usize::from(bd.id.0);
        if self.slots.len() <= i {
            self.slots.resize(i + 1, None);
        }
        let trusted = VtepSet::new(&bd.flood);
        self.slots[i] = Some(Slot { bd, trusted });
    }

    /// Removes a bridge domain; returns it if it was there.
    pub fn remove(&mut self, id: BdId) -> Option<BridgeDomain> {
        self.slots
            .get_mut(usize::from(id.0))
            .and_then(Option::take)
            .map(|s| s.bd)
    }

    /// The bridge domain `id`.
    #[inline]
    pub fn get(&self, id: BdId) -> Option<&BridgeDomain> {
        self.slot(id).map(|s| &s.bd)
    }

    #[inline(always)]
    fn slot(&self, id: BdId) -> Option<&Slot> {
        self.slots.get(usize::from(id.0)).and_then(Option::as_ref)
    }

    /// Whether bridge domain `id` accepts VXLAN whose outer source address
    /// is `vtep`: a VTEP of its flood list, or any VTEP when it has
    /// [`learn_from_any_vtep`](BridgeDomain::learn_from_any_vtep). False
    /// for a domain that does not exist.
    #[inline]
    pub fn admits_vtep(&self, id: BdId, vtep: IpAddr) -> bool {
        self.slot(id)
            .is_some_and(|s| s.bd.learn_from_any_vtep || s.trusted.contains(vtep))
    }

    /// Every bridge domain, by id.
    pub fn iter(&self) -> impl Iterator<Item = &BridgeDomain> {
        self.slots.iter().flatten().map(|s| &s.bd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let mut bds = BridgeDomains::new();
        assert!(bds.get(BdId(7)).is_none());
        bds.insert(BridgeDomain::new(BdId(7), Vni::new(100)));
        bds.insert(BridgeDomain::new(BdId(2), None));
        assert_eq!(bds.get(BdId(7)).and_then(|b| b.vni), Vni::new(100));
        assert_eq!(bds.iter().map(|b| b.id.0).collect::<Vec<_>>(), vec![2, 7]);
        assert!(bds.remove(BdId(7)).is_some());
        assert!(bds.get(BdId(7)).is_none());
        assert!(bds.remove(BdId(9000)).is_none());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn vtep_sets_hold_both_families() {
        let list = [
            ip("192.0.2.3"),
            ip("2001:db8::2"),
            ip("192.0.2.1"),
            ip("192.0.2.3"),
        ];
        let set = VtepSet::new(&list);
        assert_eq!(set.len(), 3);
        for a in &list {
            assert!(set.contains(*a), "{a}");
        }
        assert!(!set.contains(ip("192.0.2.2")));
        assert!(!set.contains(ip("2001:db8::1")));
        // The IPv4-mapped form of a member is another address.
        assert!(!set.contains(ip("::ffff:192.0.2.1")));
        assert!(VtepSet::new(&[]).is_empty());
        assert!(!VtepSet::new(&[]).contains(ip("192.0.2.1")));
    }

    #[test]
    fn only_flood_list_vteps_are_admitted_by_default() {
        let mut bd = BridgeDomain::new(BdId(1), Vni::new(100));
        bd.flood = vec![ip("192.0.2.1"), ip("2001:db8::2")];
        let mut bds = BridgeDomains::new();
        bds.insert(bd.clone());
        assert!(bds.admits_vtep(BdId(1), ip("192.0.2.1")));
        assert!(bds.admits_vtep(BdId(1), ip("2001:db8::2")));
        assert!(!bds.admits_vtep(BdId(1), ip("192.0.2.66")));
        assert!(!bds.admits_vtep(BdId(1), ip("2001:db8::66")));
        // Another domain, another list; an unknown domain admits nothing.
        let mut other = BridgeDomain::new(BdId(2), Vni::new(200));
        other.flood = vec![ip("192.0.2.66")];
        bds.insert(other);
        assert!(bds.admits_vtep(BdId(2), ip("192.0.2.66")));
        assert!(!bds.admits_vtep(BdId(2), ip("192.0.2.1")));
        assert!(!bds.admits_vtep(BdId(3), ip("192.0.2.1")));
        // Re-inserting with a new flood list rebuilds the set.
        bd.flood = vec![ip("192.0.2.66")];
        bds.insert(bd.clone());
        assert!(bds.admits_vtep(BdId(1), ip("192.0.2.66")));
        assert!(!bds.admits_vtep(BdId(1), ip("192.0.2.1")));
        // The opt-in admits anyone.
        bd.learn_from_any_vtep = true;
        bds.insert(bd);
        assert!(bds.admits_vtep(BdId(1), ip("198.51.100.7")));
        assert!(bds.admits_vtep(BdId(1), ip("2001:db8::66")));
        bds.remove(BdId(1));
        assert!(!bds.admits_vtep(BdId(1), ip("192.0.2.66")));
    }
}
