//! The forwarding decision: from a frame's bridge domain, ingress and
//! destination to the list of places it goes.
//!
//! * Known unicast goes to its one destination.
//! * Broadcast, multicast and unknown unicast (BUM) go to every other local
//!   attachment of the BD and, when the frame came from a local attachment,
//!   to every VTEP on the BD's flood list (head-end replication).
//! * Split horizon: a frame that came from a VTEP never goes to a VTEP.
//! * Hairpin off (the default): a frame never goes back out of the
//!   attachment it came in on.

use std::net::IpAddr;

use crate::bridge::BridgeDomain;
use crate::types::{Attachment, BdId, Location, Vni};

/// Where a frame came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Ingress {
    /// A local attachment (port, VLAN after the XDP program popped the tag).
    Local(Attachment),
    /// A remote VTEP: the outer source address of the decapsulated frame.
    Vtep(IpAddr),
}

impl Ingress {
    /// The location a source MAC arriving this way is learned at.
    #[inline(always)]
    pub fn location(&self) -> Location {
        match *self {
            Ingress::Local(a) => Location::Local(a),
            Ingress::Vtep(ip) => Location::Vtep(ip),
        }
    }
}

/// The metadata of one received frame (from the XDP program).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameMeta {
    /// Its bridge domain.
    pub bd: BdId,
    /// Where it came from.
    pub ingress: Ingress,
}

/// One place a frame goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Egress {
    /// Out of a local attachment (tagged if the attachment has a VLAN).
    Local(Attachment),
    /// To a remote VTEP, encapsulated with this VNI.
    Vtep {
        /// The VTEP's underlay address.
        ip: IpAddr,
        /// The BD's VNI.
        vni: Vni,
    },
}

/// What the decision made of a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Known unicast: one egress, returned by value (the egress list is
    /// left empty: the common case never goes through memory).
    Unicast(Egress),
    /// BUM: flooded to the egress list (at least one).
    Flood,
    /// Not forwarded.
    Drop(DropReason),
}

/// Why the decision dropped a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// Its destination is the attachment it came from (hairpin off).
    Hairpin,
    /// It came from a VTEP and its destination is a VTEP.
    SplitHorizon,
    /// Its destination is a VTEP but the BD has no VNI.
    NoVni,
    /// A flood with nowhere to go.
    NoDestination,
}

/// [`decide`] for a destination known behind the local attachment `a` (the
/// engine calls it directly; the egress list is not touched).
#[inline(always)]
pub fn decide_to_local(bd: &BridgeDomain, ingress: &Ingress, a: Attachment) -> Decision {
    if !bd.hairpin && *ingress == Ingress::Local(a) {
        return Decision::Drop(DropReason::Hairpin);
    }
    Decision::Unicast(Egress::Local(a))
}

/// [`decide`] for a destination known behind the remote VTEP `ip` (the
/// engine's known-unicast path, which finds the VTEP by number, calls it
/// directly; the egress list is not touched).
#[inline(always)]
pub fn decide_to_vtep(bd: &BridgeDomain, ingress: &Ingress, ip: IpAddr) -> Decision {
    if matches!(ingress, Ingress::Vtep(_)) {
        return Decision::Drop(DropReason::SplitHorizon);
    }
    let Some(vni) = bd.vni else {
        return Decision::Drop(DropReason::NoVni);
    };
    Decision::Unicast(Egress::Vtep { ip, vni })
}

/// Decides where a frame goes. Known unicast returns its one egress in
/// [`Decision::Unicast`]; a flood writes its egress list into `out` (cleared
/// first, so a caller that keeps one `Vec` per worker never allocates).
///
/// `known` is the FDB location of the destination MAC, or `None` for BUM
/// (group destination or unknown unicast).
#[inline]
pub fn decide(
    bd: &BridgeDomain,
    ingress: &Ingress,
    known: Option<Location>,
    out: &mut Vec<Egress>,
) -> Decision {
    out.clear();
    match known {
        Some(Location::Local(a)) => decide_to_local(bd, ingress, a),
        Some(Location::Vtep(ip)) => decide_to_vtep(bd, ingress, ip),
        None => {
            for a in &bd.attachments {
                if bd.hairpin || *ingress != Ingress::Local(*a) {
                    out.push(Egress::Local(*a));
                }
            }
            if let (Ingress::Local(_), Some(vni)) = (ingress, bd.vni) {
                out.extend(bd.flood.iter().map(|&ip| Egress::Vtep { ip, vni }));
            }
            if out.is_empty() {
                Decision::Drop(DropReason::NoDestination)
            } else {
                Decision::Flood
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PortId, Vlan};
    use std::net::Ipv4Addr;

    fn vtep(i: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))
    }

    fn bd() -> BridgeDomain {
        let mut bd = BridgeDomain::new(BdId(1), Vni::new(100));
        bd.attachments = vec![
            Attachment::untagged(PortId(1)),
            Attachment::tagged(PortId(2), Vlan::new(10).unwrap()),
            Attachment::untagged(PortId(3)),
        ];
        bd.flood = vec![vtep(1), vtep(2)];
        bd
    }

    #[test]
    fn known_unicast_goes_to_one_place() {
        let mut out = Vec::new();
        let from = Ingress::Local(Attachment::untagged(PortId(1)));
        let d = decide(&bd(), &from, Some(Location::Vtep(vtep(2))), &mut out);
        let want = Egress::Vtep {
            ip: vtep(2),
            vni: Vni::new(100).unwrap(),
        };
        assert_eq!(d, Decision::Unicast(want));
        assert!(out.is_empty());
        let to = Attachment::untagged(PortId(3));
        let d = decide(
            &bd(),
            &Ingress::Vtep(vtep(1)),
            Some(Location::Local(to)),
            &mut out,
        );
        assert_eq!(d, Decision::Unicast(Egress::Local(to)));
    }

    #[test]
    fn hairpin_is_off_by_default() {
        let mut out = vec![Egress::Local(Attachment::untagged(PortId(9)))];
        let a = Attachment::untagged(PortId(1));
        let d = decide(
            &bd(),
            &Ingress::Local(a),
            Some(Location::Local(a)),
            &mut out,
        );
        assert_eq!(d, Decision::Drop(DropReason::Hairpin));
        assert!(out.is_empty());
        let mut on = bd();
        on.hairpin = true;
        let d = decide(&on, &Ingress::Local(a), Some(Location::Local(a)), &mut out);
        assert_eq!(d, Decision::Unicast(Egress::Local(a)));
        // Same port, other VLAN: not a hairpin.
        let other = Attachment::tagged(PortId(1), Vlan::new(5).unwrap());
        let d = decide(
            &bd(),
            &Ingress::Local(other),
            Some(Location::Local(a)),
            &mut out,
        );
        assert_eq!(d, Decision::Unicast(Egress::Local(a)));
    }

    #[test]
    fn vtep_to_vtep_is_split_horizon() {
        let mut out = Vec::new();
        let d = decide(
            &bd(),
            &Ingress::Vtep(vtep(1)),
            Some(Location::Vtep(vtep(2))),
            &mut out,
        );
        assert_eq!(d, Decision::Drop(DropReason::SplitHorizon));
    }

    #[test]
    fn flood_from_local_reaches_other_attachments_and_every_vtep() {
        let mut out = Vec::new();
        let from = Attachment::untagged(PortId(1));
        let d = decide(&bd(), &Ingress::Local(from), None, &mut out);
        assert_eq!(d, Decision::Flood);
        assert_eq!(out.len(), 4);
        assert!(!out.contains(&Egress::Local(from)));
        assert!(out.contains(&Egress::Vtep {
            ip: vtep(1),
            vni: Vni::new(100).unwrap()
        }));
    }

    #[test]
    fn flood_from_a_vtep_stays_local() {
        let mut out = Vec::new();
        let d = decide(&bd(), &Ingress::Vtep(vtep(1)), None, &mut out);
        assert_eq!(d, Decision::Flood);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|e| matches!(e, Egress::Local(_))));
    }

    #[test]
    fn no_vni_means_no_vteps() {
        let mut local_only = bd();
        local_only.vni = None;
        let mut out = Vec::new();
        let from = Ingress::Local(Attachment::untagged(PortId(1)));
        assert_eq!(
            decide(&local_only, &from, Some(Location::Vtep(vtep(1))), &mut out),
            Decision::Drop(DropReason::NoVni)
        );
        decide(&local_only, &from, None, &mut out);
        assert_eq!(out.len(), 2);
        let mut alone = BridgeDomain::new(BdId(1), None);
        alone.attachments = vec![Attachment::untagged(PortId(1))];
        assert_eq!(
            decide(&alone, &from, None, &mut out),
            Decision::Drop(DropReason::NoDestination)
        );
    }
}
