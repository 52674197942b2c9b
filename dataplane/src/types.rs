//! The switch's vocabulary: MAC addresses, bridge domains, ports, VLANs, VNIs
//! and where a MAC lives.
//!
//! These are plain `Copy` values, cheap to hash and compare, shared by the
//! FDB, the forwarding decision and the rewriters.

use core::fmt;
use std::net::IpAddr;

/// A six-octet Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// The all-zero address, never a valid source.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address from the first six bytes of `bytes`.
    ///
    /// # Panics
    /// If `bytes` is shorter than six bytes.
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> MacAddr {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bytes[..6]);
        MacAddr(mac)
    }

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True for group addresses (I/G bit set): multicast and broadcast.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True for `00:00:00:00:00:00`.
    #[inline]
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// True when the address may be learned as a source: an individual
    /// (unicast), non-zero address.
    #[inline]
    pub fn is_learnable(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The address as the low 48 bits of a `u64` (big-endian order).
    #[inline]
    pub const fn to_u64(&self) -> u64 {
        let b = self.0;
        (b[0] as u64) << 40
            | (b[1] as u64) << 32
            | (b[2] as u64) << 24
            | (b[3] as u64) << 16
            | (b[4] as u64) << 8
            | b[5] as u64
    }

    /// The address from the low 48 bits of `v`.
    pub const fn from_u64(v: u64) -> MacAddr {
        MacAddr([
            (v >> 40) as u8,
            (v >> 32) as u8,
            (v >> 24) as u8,
            (v >> 16) as u8,
            (v >> 8) as u8,
            v as u8,
        ])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A bridge domain: one L2 segment with its own FDB.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct BdId(pub u16);

/// A switch port (an access port or the uplink), as numbered by the daemon.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PortId(pub u16);

/// An 802.1Q VLAN ID, 1 … 4094.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Vlan(u16);

impl Vlan {
    /// The VLAN `id`, or `None` outside 1 … 4094 (0 and 4095 are reserved).
    pub const fn new(id: u16) -> Option<Vlan> {
        if id >= 1 && id <= 4094 {
            Some(Vlan(id))
        } else {
            None
        }
    }

    /// The VLAN of a 12-bit `id` that came from [`id`](Self::id) (or 0
    /// for none), without the range check of [`new`](Self::new): for the
    /// FDB's packed entries, which only ever hold VLANs that passed it.
    #[inline(always)]
    pub(crate) const fn from_stored(id: u16) -> Option<Vlan> {
        if id == 0 {
            None
        } else {
            Some(Vlan(id))
        }
    }

    /// The numeric VLAN ID.
    pub const fn id(&self) -> u16 {
        self.0
    }
}

/// A 24-bit VXLAN network identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI, 2^24 − 1.
    pub const MAX: u32 = 0x00ff_ffff;

    /// The VNI `v`, or `None` when it does not fit in 24 bits.
    pub const fn new(v: u32) -> Option<Vni> {
        if v <= Self::MAX {
            Some(Vni(v))
        } else {
            None
        }
    }

    /// The numeric VNI.
    pub const fn get(&self) -> u32 {
        self.0
    }
}

/// A local attachment of a bridge domain: a port, untagged or with one VLAN.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Attachment {
    /// The port.
    pub port: PortId,
    /// The VLAN on that port; `None` for untagged.
    pub vlan: Option<Vlan>,
}

impl Attachment {
    /// An untagged attachment on `port`.
    pub const fn untagged(port: PortId) -> Attachment {
        Attachment { port, vlan: None }
    }

    /// A tagged attachment on `port`, VLAN `vlan`.
    pub const fn tagged(port: PortId, vlan: Vlan) -> Attachment {
        Attachment {
            port,
            vlan: Some(vlan),
        }
    }
}

impl fmt::Display for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vlan {
            Some(v) => write!(f, "port {} vlan {}", self.port.0, v.id()),
            None => write!(f, "port {}", self.port.0),
        }
    }
}

/// Where a MAC address lives: behind a local attachment or a remote VTEP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Location {
    /// Behind a local (port, VLAN) attachment.
    Local(Attachment),
    /// Behind the remote VTEP with this underlay address.
    Vtep(IpAddr),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(a) => a.fmt(f),
            Location::Vtep(ip) => write!(f, "vtep {ip}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr::ZERO.is_learnable());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_learnable());
        assert!(!MacAddr([0x33, 0x33, 0, 0, 0, 1]).is_learnable());
    }

    #[test]
    fn mac_u64_roundtrip_and_display() {
        let m = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(m.to_u64(), 0x0211_2233_4455);
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert_eq!(m.to_string(), "02:11:22:33:44:55");
    }

    #[test]
    fn vlan_and_vni_ranges() {
        assert!(Vlan::new(0).is_none());
        assert!(Vlan::new(4095).is_none());
        assert_eq!(Vlan::new(4094).map(|v| v.id()), Some(4094));
        assert!(Vni::new(0x0100_0000).is_none());
        assert_eq!(Vni::new(Vni::MAX).map(|v| v.get()), Some(Vni::MAX));
    }
}
