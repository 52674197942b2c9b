//! What xvsd makes of a next-hop resolution: the state shown per remote
//! VTEP, and the update (if any) the workers need. Pure, so the rules are
//! unit-tested; the netlink calls live in [`crate::nexthop`] and the thread
//! that drives both in the daemon.

use std::fmt;
use std::net::IpAddr;

use crate::nexthop::{NexthopError, Resolution};
use crate::types::MacAddr;
use crate::xsk::PortId;

use super::worker::NextHopUpdate;

/// What is known about one remote VTEP's next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopState {
    /// Frames go to this MAC through the uplink.
    Resolved {
        /// Next-hop MAC.
        mac: MacAddr,
        /// Gateway, when the VTEP is not on-link.
        gateway: Option<IpAddr>,
    },
    /// Waiting for ARP/ND of this neighbour (resolution was triggered).
    Pending {
        /// The neighbour being resolved (the VTEP or its gateway).
        neighbour: IpAddr,
    },
    /// Cannot be reached through the uplink.
    Failed(String),
}

impl fmt::Display for HopState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HopState::Resolved { mac, gateway: None } => write!(f, "{mac}"),
            HopState::Resolved {
                mac,
                gateway: Some(g),
            } => write!(f, "{mac} via {g}"),
            HopState::Pending { neighbour } => write!(f, "pending (resolving {neighbour})"),
            HopState::Failed(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// The state a resolution attempt leads to. `uplink` is the uplink's
/// ifindex (`None`: no uplink configured); a route through any other
/// interface is unusable, since encapsulated frames leave on the uplink.
pub fn hop_state(res: Result<Resolution, NexthopError>, uplink: Option<u32>) -> HopState {
    let Some(up) = uplink else {
        return HopState::Failed("no uplink port configured".into());
    };
    let elsewhere = |i: u32| {
        HopState::Failed(format!(
            "the route leaves through ifindex {i}, not the uplink"
        ))
    };
    match res {
        Ok(Resolution::Resolved(nh)) if nh.ifindex == up => HopState::Resolved {
            mac: MacAddr(nh.mac),
            gateway: nh.gateway,
        },
        Ok(Resolution::Resolved(nh)) => elsewhere(nh.ifindex),
        Ok(Resolution::Pending { ifindex, .. }) if ifindex != up => elsewhere(ifindex),
        Ok(Resolution::Pending { neighbour, .. }) => HopState::Pending { neighbour },
        Err(e) => HopState::Failed(e.to_string()),
    }
}

/// The update the workers need when `vtep` goes from `old` to `new`
/// (`None` when nothing changes for them): a new or changed MAC is a
/// `Set` on `port`; losing a resolved next hop (or never having had one) is
/// a `Clear`.
pub fn transition(
    vtep: IpAddr,
    old: Option<&HopState>,
    new: &HopState,
    port: PortId,
) -> Option<NextHopUpdate> {
    if old == Some(new) {
        return None;
    }
    match new {
        HopState::Resolved { mac, .. } => {
            if let Some(HopState::Resolved { mac: was, .. }) = old {
                if was == mac {
                    return None; // only the gateway's name changed
                }
            }
            Some(NextHopUpdate::Set {
                vtep,
                mac: *mac,
                port,
            })
        }
        _ => match old {
            None | Some(HopState::Resolved { .. }) => Some(NextHopUpdate::Clear { vtep }),
            Some(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexthop::NextHop;

    const UP: u32 = 7;
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn vtep() -> IpAddr {
        "192.0.2.1".parse().unwrap()
    }

    fn resolved(ifindex: u32, mac: [u8; 6]) -> Result<Resolution, NexthopError> {
        Ok(Resolution::Resolved(NextHop {
            ifindex,
            gateway: None,
            mac,
        }))
    }

    #[test]
    fn states_from_resolutions() {
        assert_eq!(
            hop_state(resolved(UP, MAC), Some(UP)),
            HopState::Resolved {
                mac: MacAddr(MAC),
                gateway: None
            }
        );
        assert!(matches!(
            hop_state(resolved(UP + 1, MAC), Some(UP)),
            HopState::Failed(why) if why.contains("ifindex 8")
        ));
        let pending = Ok(Resolution::Pending {
            ifindex: UP,
            neighbour: vtep(),
        });
        assert_eq!(
            hop_state(pending, Some(UP)),
            HopState::Pending { neighbour: vtep() }
        );
        assert!(matches!(
            hop_state(Err(NexthopError::NoRoute(vtep())), Some(UP)),
            HopState::Failed(why) if why.contains("no route")
        ));
        assert!(matches!(
            hop_state(resolved(UP, MAC), None),
            HopState::Failed(_)
        ));
        assert_eq!(
            HopState::Pending { neighbour: vtep() }.to_string(),
            "pending (resolving 192.0.2.1)"
        );
    }

    #[test]
    fn updates_only_on_changes_that_matter_to_workers() {
        let port = PortId::new(0);
        let r1 = HopState::Resolved {
            mac: MacAddr(MAC),
            gateway: None,
        };
        let r2 = HopState::Resolved {
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            gateway: None,
        };
        let p = HopState::Pending { neighbour: vtep() };
        let set = |m| {
            Some(NextHopUpdate::Set {
                vtep: vtep(),
                mac: MacAddr(m),
                port,
            })
        };
        let clear = Some(NextHopUpdate::Clear { vtep: vtep() });
        assert_eq!(transition(vtep(), None, &r1, port), set(MAC));
        assert_eq!(transition(vtep(), Some(&r1), &r1, port), None);
        assert_eq!(
            transition(vtep(), Some(&r1), &r2, port),
            set([2, 0, 0, 0, 0, 2])
        );
        assert_eq!(transition(vtep(), None, &p, port), clear);
        assert_eq!(transition(vtep(), Some(&r1), &p, port), clear);
        assert_eq!(
            transition(vtep(), Some(&p), &HopState::Failed("x".into()), port),
            None
        );
        assert_eq!(transition(vtep(), Some(&p), &r1, port), set(MAC));
    }
}
