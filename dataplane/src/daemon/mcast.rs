//! Multicast flood groups: the Ethernet address a group's frames are sent
//! to, and the uplink's membership of the groups xvsd floods to.
//!
//! A bridge domain may name an IPv4 or IPv6 multicast group in its flood
//! list (as `ip link add … type vxlan … group 239.1.1.1` does): its BUM
//! frames then go out once, encapsulated to the group, with the group's
//! derived MAC as the outer destination ([`group_mac`]; no ARP or ND), and
//! VXLAN addressed to the group is decapsulated like VXLAN to one of our own
//! addresses (xvsd adds the group to the classifier's local addresses).
//! For the NIC to accept those frames and the underlay's switches (IGMP/MLD
//! snooping) to deliver them, the uplink must be a member of the group:
//! [`Memberships`] joins each group on the uplink with a datagram socket
//! (`IP_ADD_MEMBERSHIP` / `IPV6_JOIN_GROUP`) and leaves it when the socket
//! closes. The kernel never sees the VXLAN itself: the classifier redirects
//! it before the stack.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

use super::hops::HopState;
use crate::types::MacAddr;

/// The Ethernet address of IPv4 or IPv6 multicast group `group`
/// (RFC 1112: `01:00:5e` and the low 23 bits; RFC 2464: `33:33` and the
/// low 32 bits); `None` for a unicast address.
pub fn group_mac(group: IpAddr) -> Option<MacAddr> {
    match group {
        IpAddr::V4(a) if a.is_multicast() => {
            let o = a.octets();
            Some(MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]))
        }
        IpAddr::V6(a) if a.is_multicast() => {
            let o = a.octets();
            Some(MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]]))
        }
        _ => None,
    }
}

/// The next-hop state of a flood group: resolved at once to its MAC,
/// without ARP or ND (`None` for a unicast address).
pub fn group_state(group: IpAddr) -> Option<HopState> {
    group_mac(group).map(|mac| HopState::Resolved { mac, gateway: None })
}

/// The multicast groups one interface is a member of, one socket each (a
/// membership lasts as long as its socket).
#[derive(Debug, Default)]
pub struct Memberships {
    ifindex: u32,
    joined: BTreeMap<IpAddr, OwnedFd>,
}

/// xvsd's memberships on its uplink, for the life of the process: start-up
/// and live reconfiguration call [`Memberships::sync`] on it with the
/// groups of every flood list.
pub static UPLINK_GROUPS: Mutex<Memberships> = Mutex::new(Memberships::new());

impl Memberships {
    /// No memberships.
    pub const fn new() -> Memberships {
        Memberships {
            ifindex: 0,
            joined: BTreeMap::new(),
        }
    }

    /// Makes interface `ifindex` a member of exactly the multicast groups
    /// among `addrs` (unicast addresses are ignored): joins the new ones,
    /// leaves the others (all of them if the interface changed). On an
    /// error, the groups joined so far stay joined.
    pub fn sync(&mut self, ifindex: u32, addrs: &[IpAddr]) -> io::Result<()> {
        if ifindex != self.ifindex {
            self.joined.clear();
            self.ifindex = ifindex;
        }
        let want: Vec<IpAddr> = addrs.iter().copied().filter(IpAddr::is_multicast).collect();
        self.joined.retain(|g, _| want.contains(g));
        for g in want {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.joined.entry(g) {
                slot.insert(join(g, ifindex)?);
                tracing::info!(group = %g, ifindex, "joined multicast flood group");
            }
        }
        Ok(())
    }

    /// The groups joined, sorted.
    pub fn groups(&self) -> Vec<IpAddr> {
        self.joined.keys().copied().collect()
    }
}

/// A datagram socket that has joined `group` on interface `ifindex`.
fn join(group: IpAddr, ifindex: u32) -> io::Result<OwnedFd> {
    let family = match group {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let rc = match group {
        IpAddr::V4(g) => {
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(g.octets()),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as libc::c_int,
            };
            // SAFETY: `mreq` is a valid ip_mreqn of the size passed; `fd`
            // is open.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_ADD_MEMBERSHIP,
                    std::ptr::from_ref(&mreq).cast(),
                    std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
                )
            }
        }
        IpAddr::V6(g) => {
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: g.octets(),
                },
                ipv6mr_interface: ifindex,
            };
            // SAFETY: `mreq` is a valid ipv6_mreq of the size passed; `fd`
            // is open.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_ADD_MEMBERSHIP,
                    std::ptr::from_ref(&mreq).cast(),
                    std::mem::size_of::<libc::ipv6_mreq>() as libc::socklen_t,
                )
            }
        }
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("joining {group} on ifindex {ifindex}: {e}"),
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_macs_follow_rfc_1112_and_2464() {
        let m = |s: &str| group_mac(s.parse().unwrap());
        assert_eq!(m("239.1.1.1"), Some(MacAddr([1, 0, 0x5e, 1, 1, 1])));
        // Only 23 bits survive: 239.129.1.1 shares 239.1.1.1's MAC.
        assert_eq!(m("239.129.1.1"), m("239.1.1.1"));
        assert_eq!(m("224.0.0.251"), Some(MacAddr([1, 0, 0x5e, 0, 0, 0xfb])));
        assert_eq!(m("ff05::1:3"), Some(MacAddr([0x33, 0x33, 0, 1, 0, 3])));
        assert_eq!(m("192.0.2.1"), None);
        assert_eq!(
            group_state("239.1.1.1".parse().unwrap()),
            Some(HopState::Resolved {
                mac: MacAddr([1, 0, 0x5e, 1, 1, 1]),
                gateway: None
            })
        );
        assert_eq!(group_state("192.0.2.1".parse().unwrap()), None);
        assert_eq!(m("2001:db8::1"), None);
        for g in ["239.1.1.1", "ff02::1:100"] {
            assert!(m(g).unwrap().is_multicast(), "{g}");
        }
    }

    #[test]
    fn an_empty_sync_joins_nothing() {
        let mut m = Memberships::new();
        let unicast: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
        m.sync(1, &unicast).unwrap();
        assert!(m.groups().is_empty());
    }
}
