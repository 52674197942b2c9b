//! Bridge-domain configuration as the forwarding decision sees it, and the
//! per-domain set of VTEPs it accepts VXLAN from.
//!
//! RFC 7348 (section 7, security considerations) warns that a VTEP learning
//! from any underlay source lets anyone on the underlay inject frames and
//! steer MAC addresses towards itself. So by default a bridge domain only
//! accepts decapsulated frames whose outer source address is a VTEP of its
//! flood list; [`BridgeDomain::learn_from_any_vtep`] opts out. The check
//! runs in the engine, per decapsulated frame, as one probe of a small
//! hash table built when the domain is inserted
//! ([`BridgeDomains::admits_vtep`], [`VtepSet`]).

use std::net::IpAddr;

use crate::types::{Attachment, BdId, Vni};
use crate::vtep_map::VtepMap;

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

/// A set of VTEP addresses: the engine's VTEP probe table with no values
/// (`crate::vtep_map`). An IPv4 membership test is one multiply and one
/// probe (the table's seed gives every member a slot of its own), with no
/// general-purpose hashing and no `IpAddr` comparisons; IPv6 members sit in
/// a hash map.
#[derive(Clone, Debug, Default)]
pub struct VtepSet {
    members: VtepMap<()>,
}

impl VtepSet {
    /// The set of `ips` (duplicates count once).
    pub fn new<'a>(ips: impl IntoIterator<Item = &'a IpAddr>) -> VtepSet {
        VtepSet {
            members: VtepMap::from_entries(ips.into_iter().map(|ip| (*ip, ()))),
        }
    }

    /// Whether `ip` is in the set.
    #[inline(always)]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.members.contains(ip)
    }

    /// How many addresses it holds.
    pub fn len(&self) -> usize {
        self.members.len()
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
    #[inline(always)]
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
        // A list larger than the probe table grows to (shared slots).
        let many: Vec<IpAddr> = (0..5000u32)
            .map(|i| IpAddr::V4((0xc633_0000u32 + 2 * i).into()))
            .collect();
        let set = VtepSet::new(&many);
        assert_eq!(set.len(), 5000);
        assert!(many.iter().all(|a| set.contains(*a)));
        assert!(!(0..5000u32).any(|i| set.contains(IpAddr::V4((0xc633_0001u32 + 2 * i).into()))));
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
