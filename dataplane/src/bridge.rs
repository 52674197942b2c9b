//! Bridge-domain configuration as the forwarding decision sees it.

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
        }
    }
}

/// The bridge domains a worker knows, indexed by [`BdId`] for an O(1),
/// hash-free lookup per frame.
#[derive(Clone, Debug, Default)]
pub struct BridgeDomains {
    slots: Vec<Option<BridgeDomain>>,
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
        self.slots[i] = Some(bd);
    }

    /// Removes a bridge domain; returns it if it was there.
    pub fn remove(&mut self, id: BdId) -> Option<BridgeDomain> {
        self.slots.get_mut(usize::from(id.0)).and_then(Option::take)
    }

    /// The bridge domain `id`.
    #[inline]
    pub fn get(&self, id: BdId) -> Option<&BridgeDomain> {
        self.slots.get(usize::from(id.0)).and_then(Option::as_ref)
    }

    /// Every bridge domain, by id.
    pub fn iter(&self) -> impl Iterator<Item = &BridgeDomain> {
        self.slots.iter().flatten()
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
}
