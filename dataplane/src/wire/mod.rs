//! Zero-copy views over the bytes of the headers the switch reads and writes:
//! Ethernet, 802.1Q, IPv4, IPv6, UDP and VXLAN.
//!
//! Each protocol has two levels, in the spirit of smoltcp's `wire` module:
//!
//! * a typed **view** (`Frame`, `Packet`, `Header`) over any `T: AsRef<[u8]>`
//!   that reads fields in place, and writes them when `T: AsMut<[u8]>` too, so
//!   one type serves a received slice and the headroom of a frame being built;
//! * a **`Repr`**, the meaning of a header (addresses, VNI, VLAN…), with
//!   `parse` (from a checked view), `emit` (into a view) and `buffer_len`.
//!
//! Field offsets live in a private `field` module of `const` ranges per
//! protocol.
//!
//! # Contract
//!
//! `new_checked` checks the buffer length (and the header's own length
//! fields) once; after it, **accessors and `parse` never panic**, whatever the
//! bytes. `new_unchecked` skips the check and is for buffers whose length the
//! caller already knows (e.g. headroom it sized itself). **`emit` and setters
//! panic only when the buffer is too short** for the header being written.
//! Errors are the zero-sized [`Error`]: the hot path never builds strings.

pub mod checksum;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod vlan;
pub mod vxlan;

/// A byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;
/// The bytes from an offset to the end of the buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;

/// A packet was truncated or malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated or malformed packet")]
pub struct Error;

/// The result of a parse or check.
pub type Result<T> = core::result::Result<T, Error>;

macro_rules! enum_with_unknown {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$variant_attr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
        pub enum $name {
            $( $(#[$variant_attr])* $variant, )+
            /// A value this enum does not name.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// An Ethernet II EtherType.
    pub enum EtherType(u16) {
        /// IPv4.
        Ipv4 = 0x0800,
        /// ARP.
        Arp = 0x0806,
        /// 802.1Q customer VLAN tag.
        Vlan = 0x8100,
        /// 802.1ad service VLAN tag (QinQ outer tag).
        QinQ = 0x88a8,
        /// IPv6.
        Ipv6 = 0x86dd,
    }
}

enum_with_unknown! {
    /// An IP protocol number (IPv4 protocol / IPv6 next header).
    pub enum IpProtocol(u8) {
        /// ICMP.
        Icmp = 1,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// ICMPv6.
        Icmpv6 = 58,
    }
}

#[inline]
pub(crate) fn get_u16(b: &[u8], f: Field) -> u16 {
    let s = &b[f];
    u16::from_be_bytes([s[0], s[1]])
}

#[inline]
pub(crate) fn set_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_roundtrip_and_keep_unknown_values() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        assert_eq!(u16::from(EtherType::Unknown(0x1234)), 0x1234);
        assert_eq!(u16::from(EtherType::Ipv6), 0x86dd);
        assert_eq!(IpProtocol::from(17), IpProtocol::Udp);
        assert_eq!(u8::from(IpProtocol::Unknown(99)), 99);
    }
}
