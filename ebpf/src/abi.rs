//! Rust mirrors of `src/bpf/xvs_abi.h`: map keys and values, the metadata
//! the program writes before each redirected frame, and the port roles.
//!
//! Agreement with C is checked mechanically at compile time: each mirror's
//! size and field offsets are asserted equal to the type the skeleton
//! generator produced from the object's BTF (that is, clang's own layout of
//! the header). The loader also checks every map's key and value size
//! against these types before loading ([`crate::Classifier::load`]).
//!
//! Multi-byte integers are in host byte order (the program and its reader
//! share a CPU); addresses are bytes in network order.

use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv6Addr};

use crate::skel::types as ctypes;

/// Default VXLAN UDP destination port (IANA, RFC 7348).
pub const VXLAN_PORT_DEFAULT: u16 = 4789;
/// Largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;
/// Largest 802.1Q VLAN ID.
pub const VID_MAX: u16 = 4095;
/// Port indexes are below this (`XVS_MAX_PORTS`).
pub const MAX_PORTS: u32 = 256;
/// RX queue indexes that can have a socket are below this (`XVS_MAX_QUEUES`).
pub const MAX_QUEUES: u32 = 64;
/// Entries of the XSKMAP: one per (port, queue) (`XVS_XSK_SLOTS`).
pub const XSK_SLOTS: u32 = MAX_PORTS * MAX_QUEUES;

/// Interfaces with an ifindex below this are kept in the array map
/// `xvs_ports_array`, the others in the hash `xvs_ports`
/// (`XVS_PORT_ARRAY_SIZE`).
pub const PORT_ARRAY_SIZE: u32 = 4096;
/// Marks a used entry of map `xvs_untagged` (the attachment (port, VID 0)):
/// the value is `UNTAGGED_PRESENT | bd`, 0 when there is none
/// (`XVS_UNTAGGED_PRESENT`).
pub const UNTAGGED_PRESENT: u64 = 1 << 32;
/// Entries of the direct-mapped tables `xvs_vni_direct` and
/// `xvs_attach_direct` (`XVS_DIRECT_SLOTS`); a table uses a power of two
/// of them.
pub const DIRECT_SLOTS: u32 = 65536;
/// Marks a used slot of a direct-mapped table: the slot is
/// `bd << 32 | DIRECT_VALID | key` (`XVS_DIRECT_VALID`).
pub const DIRECT_VALID: u32 = 0x8000_0000;
/// The XSKMAP slot of (port, RX queue): `port_index * MAX_QUEUES + queue`.
///
/// An AF_XDP socket is bound to one interface and queue, and the kernel
/// refuses to deliver frames from any other, so every port has its own row
/// of queue slots. `None` when either index is out of range.
pub fn xsk_slot(port_index: u32, queue: u32) -> Option<u32> {
    (port_index < MAX_PORTS && queue < MAX_QUEUES).then(|| port_index * MAX_QUEUES + queue)
}

/// What a port is to the classifier (`enum xvs_port_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PortRole {
    /// Underlay: VXLAN to a local VTEP address is decapsulated and switched,
    /// everything else goes to the kernel.
    Uplink = 1,
    /// Faces VMs or namespaces: every frame is switched by (port, VLAN).
    Access = 2,
}

/// Value of maps `xvs_ports_array` (index: ifindex below 4096, `XVS_PORT_ARRAY_SIZE`)
/// and `xvs_ports` (key: any other ifindex as `u32`): `struct xvs_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct PortValue {
    /// [`PortRole`] as its `u32` value.
    pub role: u32,
    /// xvs's own port number, copied into [`Meta::port_index`].
    pub port_index: u32,
}

/// Key of map `xvs_local_vteps`: `struct xvs_addr`, an IPv6 address or a
/// v4-mapped IPv4 address (`::ffff:a.b.c.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct VtepAddr {
    /// Address bytes, network order.
    pub addr: [u8; 16],
}

/// Key of map `xvs_attachments`: `struct xvs_attach_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct AttachKey {
    /// [`PortValue::port_index`] of the access port.
    pub port_index: u32,
    /// VLAN ID; 0 is the untagged / priority-tagged attachment.
    pub vid: u16,
    /// Zero (part of the hash key).
    pub pad: u16,
}

/// Value of map `xvs_config` at key 0: `struct xvs_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct ConfigValue {
    /// VXLAN UDP destination port; 0 means [`VXLAN_PORT_DEFAULT`].
    pub vxlan_port: u16,
    /// Zero.
    pub pad0: u16,
    /// Odd while direct-table slots are being written (a sequence lock:
    /// the program then uses the hashes).
    pub table_gen: u32,
    /// Multiplier of the VNI direct table (`xvs_vni_direct`); 0: no table.
    pub vni_seed: u32,
    /// `32 − log2(slots in use)` of the VNI direct table.
    pub vni_shift: u32,
    /// Multiplier of the attachment direct table (`xvs_attach_direct`); 0:
    /// no table.
    pub attach_seed: u32,
    /// `32 − log2(slots in use)` of the attachment direct table.
    pub attach_shift: u32,
}

/// [`Meta::flags`]: decapsulated from an uplink; `src_vtep` and `vni` valid.
pub const META_F_VXLAN: u16 = 0x0001;
/// [`Meta::flags`]: `src_vtep` is IPv6 (else a v4-mapped IPv4 address).
pub const META_F_VTEP_IPV6: u16 = 0x0002;
/// [`Meta::flags`]: the access frame arrived tagged; the tag was popped.
pub const META_F_TAGGED: u16 = 0x0004;
/// [`Meta::flags`]: the frame still starts with a VLAN tag (QinQ inner).
pub const META_F_INNER_TAG: u16 = 0x0008;

/// The metadata the program writes immediately before every redirected
/// frame (`struct xvs_meta`, 32 bytes: the kernel's maximum). In the UMEM it
/// occupies the [`Meta::SIZE`] bytes before the RX descriptor's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Meta {
    /// Bridge domain.
    pub bd: u32,
    /// Ingress port ([`PortValue::port_index`]).
    pub port_index: u32,
    /// Outer source address of a decapsulated frame (v4-mapped or IPv6);
    /// zero for access frames.
    pub src_vtep: [u8; 16],
    /// VNI of a decapsulated frame, else 0.
    pub vni: u32,
    /// VLAN ID of the popped access tag, else 0.
    pub vid: u16,
    /// `META_F_*` bits.
    pub flags: u16,
}

impl PortValue {
    pub(crate) fn to_bytes(self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0..4].copy_from_slice(&self.role.to_ne_bytes());
        b[4..8].copy_from_slice(&self.port_index.to_ne_bytes());
        b
    }
}

impl VtepAddr {
    /// The key for `ip`: IPv4 addresses are stored v4-mapped.
    pub fn from_ip(ip: IpAddr) -> Self {
        let v6 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        VtepAddr { addr: v6.octets() }
    }
}

impl AttachKey {
    pub(crate) fn to_bytes(self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0..4].copy_from_slice(&self.port_index.to_ne_bytes());
        b[4..6].copy_from_slice(&self.vid.to_ne_bytes());
        b[6..8].copy_from_slice(&self.pad.to_ne_bytes());
        b
    }
}

impl ConfigValue {
    pub(crate) fn to_bytes(self) -> [u8; size_of::<ConfigValue>()] {
        let mut b = [0; size_of::<ConfigValue>()];
        let mut put = |o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
        put(
            offset_of!(ConfigValue, vxlan_port),
            &self.vxlan_port.to_ne_bytes(),
        );
        put(offset_of!(ConfigValue, pad0), &self.pad0.to_ne_bytes());
        put(
            offset_of!(ConfigValue, table_gen),
            &self.table_gen.to_ne_bytes(),
        );
        put(
            offset_of!(ConfigValue, vni_seed),
            &self.vni_seed.to_ne_bytes(),
        );
        put(
            offset_of!(ConfigValue, vni_shift),
            &self.vni_shift.to_ne_bytes(),
        );
        put(
            offset_of!(ConfigValue, attach_seed),
            &self.attach_seed.to_ne_bytes(),
        );
        put(
            offset_of!(ConfigValue, attach_shift),
            &self.attach_shift.to_ne_bytes(),
        );
        b
    }
}

impl Meta {
    /// Size of the metadata area in bytes.
    pub const SIZE: usize = size_of::<Meta>();

    /// Reads metadata from the `SIZE` bytes that precede a frame; `None` if
    /// `bytes` is shorter than [`Meta::SIZE`]. Extra bytes are ignored.
    pub fn from_bytes(bytes: &[u8]) -> Option<Meta> {
        let b: &[u8; Meta::SIZE] = bytes.get(..Meta::SIZE)?.try_into().ok()?;
        let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u16_at = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
        let mut src_vtep = [0; 16];
        src_vtep.copy_from_slice(&b[offset_of!(Meta, src_vtep)..][..16]);
        Some(Meta {
            bd: u32_at(offset_of!(Meta, bd)),
            port_index: u32_at(offset_of!(Meta, port_index)),
            src_vtep,
            vni: u32_at(offset_of!(Meta, vni)),
            vid: u16_at(offset_of!(Meta, vid)),
            flags: u16_at(offset_of!(Meta, flags)),
        })
    }

    /// The bytes the program writes for this metadata.
    pub fn to_bytes(&self) -> [u8; Meta::SIZE] {
        let mut b = [0; Meta::SIZE];
        let mut put = |o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
        put(offset_of!(Meta, bd), &self.bd.to_ne_bytes());
        put(offset_of!(Meta, port_index), &self.port_index.to_ne_bytes());
        put(offset_of!(Meta, src_vtep), &self.src_vtep);
        put(offset_of!(Meta, vni), &self.vni.to_ne_bytes());
        put(offset_of!(Meta, vid), &self.vid.to_ne_bytes());
        put(offset_of!(Meta, flags), &self.flags.to_ne_bytes());
        b
    }

    /// The source VTEP as an address, for decapsulated frames.
    pub fn src_vtep_ip(&self) -> Option<IpAddr> {
        if self.flags & META_F_VXLAN == 0 {
            return None;
        }
        let v6 = Ipv6Addr::from(self.src_vtep);
        if self.flags & META_F_VTEP_IPV6 != 0 {
            Some(IpAddr::V6(v6))
        } else {
            v6.to_ipv4_mapped().map(IpAddr::V4)
        }
    }
}

/// Asserts at compile time that a mirror and the skeleton's type agree in
/// size and in the offset of every named field.
macro_rules! same_layout {
    ($ours:ty, $theirs:ty, $size:expr, { $($f:ident = $g:ident @ $off:expr),* $(,)? }) => {
        const _: () = assert!(size_of::<$ours>() == $size);
        const _: () = assert!(size_of::<$theirs>() == $size);
        $(
            const _: () = assert!(offset_of!($ours, $f) == $off);
            const _: () = assert!(offset_of!($theirs, $g) == $off);
        )*
    };
}

same_layout!(PortValue, ctypes::xvs_port, 8, { role = role @ 0, port_index = port_index @ 4 });
same_layout!(VtepAddr, ctypes::xvs_addr, 16, { addr = addr @ 0 });
same_layout!(AttachKey, ctypes::xvs_attach_key, 8, {
    port_index = port_index @ 0, vid = vid @ 4, pad = _pad @ 6,
});
same_layout!(ConfigValue, ctypes::xvs_config, 24, {
    vxlan_port = vxlan_port @ 0, pad0 = _pad0 @ 2, table_gen = table_gen @ 4,
    vni_seed = vni_seed @ 8, vni_shift = vni_shift @ 12,
    attach_seed = attach_seed @ 16, attach_shift = attach_shift @ 20,
});
same_layout!(Meta, ctypes::xvs_meta, 32, {
    bd = bd @ 0, port_index = port_index @ 4, src_vtep = src_vtep @ 8,
    vni = vni @ 24, vid = vid @ 28, flags = flags @ 30,
});
const _: () = {
    use ctypes::xvs_limits as l;
    assert!(VXLAN_PORT_DEFAULT as u32 == l::XVS_VXLAN_PORT_DEFAULT.0);
    assert!(MAX_PORTS == l::XVS_MAX_PORTS.0);
    assert!(MAX_QUEUES == l::XVS_MAX_QUEUES.0);
    assert!(XSK_SLOTS == l::XVS_XSK_SLOTS.0);
    assert!(PORT_ARRAY_SIZE == l::XVS_PORT_ARRAY_SIZE.0);
    assert!(DIRECT_SLOTS == l::XVS_DIRECT_SLOTS.0);
};
const _: () = assert!(PortRole::Uplink as u32 == ctypes::xvs_port_role::XVS_ROLE_UPLINK.0);
const _: () = assert!(PortRole::Access as u32 == ctypes::xvs_port_role::XVS_ROLE_ACCESS.0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_through_its_bytes() {
        let m = Meta {
            bd: 7,
            port_index: 3,
            src_vtep: VtepAddr::from_ip("192.0.2.1".parse().unwrap()).addr,
            vni: 0x00ab_cdef,
            vid: 10,
            flags: META_F_VXLAN,
        };
        assert_eq!(Meta::from_bytes(&m.to_bytes()), Some(m));
        assert_eq!(m.src_vtep_ip(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(Meta::from_bytes(&[0; 31]), None);
    }

    #[test]
    fn xsk_slots_give_every_port_its_own_row_of_queues() {
        assert_eq!(xsk_slot(0, 0), Some(0));
        assert_eq!(xsk_slot(1, 0), Some(MAX_QUEUES));
        assert_eq!(xsk_slot(MAX_PORTS - 1, MAX_QUEUES - 1), Some(XSK_SLOTS - 1));
        assert_eq!(xsk_slot(MAX_PORTS, 0), None);
        assert_eq!(xsk_slot(0, MAX_QUEUES), None);
    }

    #[test]
    fn ipv4_vtep_keys_are_v4_mapped() {
        let k = VtepAddr::from_ip("10.1.2.3".parse().unwrap());
        assert_eq!(
            k.addr,
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]
        );
    }
}
