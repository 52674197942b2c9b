//! Frame builders shared by the classifier's decision table
//! (`ebpf/tests/classify_table.rs`, through `BPF_PROG_TEST_RUN`) and the
//! end-to-end hostile-traffic corpus (`dataplane/tests/xvsd_malformed/`,
//! through a running xvsd on veths).
//!
//! Every frame is built with etherparse (not with the code under test); a
//! test that wants a broken header patches bytes of a well-formed frame and
//! says which. The addresses are the test underlay's: this node's VTEP
//! addresses [`VTEP4`]/[`VTEP6`], a remote VTEP [`REMOTE4`]/[`REMOTE6`],
//! VNI [`VNI`], and the inner hosts [`VM1`] → [`VM2`].

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    EtherType, Ethernet2Header, IpHeaders, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder,
    UdpHeader, VlanId,
};

/// This node's IPv4 VTEP address.
pub const VTEP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// This node's IPv6 VTEP address.
pub const VTEP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// A remote VTEP (IPv4): the outer source of the VXLAN frames built here.
pub const REMOTE4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// A remote VTEP (IPv6).
pub const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The VNI of the VXLAN frames built here.
pub const VNI: u32 = 100;
/// Outer source MAC of underlay frames.
pub const OUTER_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
/// Outer destination MAC of underlay frames.
pub const OUTER_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x02];
/// Source MAC of inner and VM frames.
pub const VM1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of inner and VM frames.
pub const VM2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Offset of the IPv4/IPv6 header in an untagged frame.
pub const L3: usize = 14;

/// `frame` with its Ethernet destination and source replaced (no checksum
/// covers them; a frame that is already inside a UDP payload is not fixed
/// up, so patch inner frames before encapsulating them).
pub fn with_macs(mut frame: Vec<u8>, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
    frame
}

/// The octets of an IPv4 address.
pub fn v4(a: Ipv4Addr) -> [u8; 4] {
    a.octets()
}

/// The octets of an IPv6 address.
pub fn v6(a: Ipv6Addr) -> [u8; 16] {
    a.octets()
}

/// A VLAN ID (panics outside 0..=4095).
pub fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

/// The inner frame every VXLAN case carries: Ethernet / IPv4 / UDP.
pub fn inner_frame() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(VM1, VM2)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut f, b"inner payload")
        .unwrap();
    f
}

/// An inner frame that carries its own 802.1Q tag (VID 7).
pub fn inner_tagged_frame() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(VM1, VM2)
        .single_vlan(vid(7))
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut f, b"inner payload")
        .unwrap();
    f
}

/// VXLAN header (RFC 7348): flags byte, 3 reserved, VNI (24 bits), 1 reserved.
pub fn vxlan(flags: u8, vni: u32, reserved: u8) -> [u8; 8] {
    let v = vni.to_be_bytes();
    [
        flags, reserved, reserved, reserved, v[1], v[2], v[3], reserved,
    ]
}

/// A VXLAN header (I flag set, `vni`) followed by `inner`.
pub fn vxlan_payload(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut p = vxlan(0x08, vni, 0).to_vec();
    p.extend_from_slice(inner);
    p
}

/// Ethernet / (VLAN tags) / IPv4 / UDP(sport → dport) / payload.
pub fn udp4(vlans: &[u16], src: Ipv4Addr, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let eth = PacketBuilder::ethernet2(OUTER_SRC_MAC, OUTER_DST_MAC);
    match vlans {
        [] => eth
            .ipv4(v4(src), v4(dst), 64)
            .udp(54321, dport)
            .write(&mut f, payload),
        [a] => eth
            .single_vlan(vid(*a))
            .ipv4(v4(src), v4(dst), 64)
            .udp(54321, dport)
            .write(&mut f, payload),
        [a, b] => eth
            .double_vlan(vid(*a), vid(*b))
            .ipv4(v4(src), v4(dst), 64)
            .udp(54321, dport)
            .write(&mut f, payload),
        _ => unreachable!(),
    }
    .unwrap();
    f
}

/// Ethernet / (VLAN tag) / IPv6 / UDP(sport → dport) / payload.
pub fn udp6(vlans: &[u16], src: Ipv6Addr, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let eth = PacketBuilder::ethernet2(OUTER_SRC_MAC, OUTER_DST_MAC);
    match vlans {
        [] => eth
            .ipv6(v6(src), v6(dst), 64)
            .udp(54321, dport)
            .write(&mut f, payload),
        [a] => eth
            .single_vlan(vid(*a))
            .ipv6(v6(src), v6(dst), 64)
            .udp(54321, dport)
            .write(&mut f, payload),
        _ => unreachable!(),
    }
    .unwrap();
    f
}

/// Ethernet / IPv4 (custom header: options, fragment fields) / UDP / payload.
pub fn udp4_with(hdr: Ipv4Header, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(OUTER_SRC_MAC, OUTER_DST_MAC)
        .ip(IpHeaders::Ipv4(hdr, Default::default()))
        .udp(54321, dport)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// An SSH connection attempt from [`REMOTE4`] to [`VTEP4`]: Ethernet /
/// IPv4 / TCP 40000 > 22 with SYN set (traffic for the node's own stack).
pub fn tcp_syn4() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(OUTER_SRC_MAC, OUTER_DST_MAC)
        .ipv4(v4(REMOTE4), v4(VTEP4), 64)
        .tcp(40000, 22, 1, 65535)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    f
}

/// An IPv4 UDP header from [`REMOTE4`] to [`VTEP4`], to customise.
pub fn ipv4_header() -> Ipv4Header {
    Ipv4Header::new(0, 64, IpNumber::UDP, v4(REMOTE4), v4(VTEP4)).unwrap()
}

/// Ethernet / IPv4 with `proto` / raw IP payload (lengths consistent).
pub fn ip4_raw(proto: IpNumber, ip_payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(OUTER_SRC_MAC, OUTER_DST_MAC)
        .ipv4(v4(REMOTE4), v4(VTEP4), 64)
        .write(&mut f, proto, ip_payload)
        .unwrap();
    f
}

/// Ethernet / IPv6 with `next` / raw IP payload (payload length consistent;
/// headers serialised by etherparse, payload appended as is).
pub fn ip6_raw(next: IpNumber, ip_payload: &[u8]) -> Vec<u8> {
    let eth = Ethernet2Header {
        source: OUTER_SRC_MAC,
        destination: OUTER_DST_MAC,
        ether_type: EtherType::IPV6,
    };
    let ip = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: ip_payload.len() as u16,
        next_header: next,
        hop_limit: 64,
        source: v6(REMOTE6),
        destination: v6(VTEP6),
    };
    [&eth.to_bytes()[..], &ip.to_bytes()[..], ip_payload].concat()
}

/// A UDP header to the VXLAN port with length = 8 + `payload_len`.
pub fn udp_hdr(dport: u16, payload_len: usize) -> [u8; 8] {
    UdpHeader {
        source_port: 54321,
        destination_port: dport,
        length: (8 + payload_len) as u16,
        checksum: 0,
    }
    .to_bytes()
}

/// A VXLAN-in-UDP IP payload (UDP header + VXLAN + inner).
pub fn udp_vxlan(dport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
    let vx = vxlan_payload(vni, inner);
    let mut p = udp_hdr(dport, vx.len()).to_vec();
    p.extend_from_slice(&vx);
    p
}

/// [`VM1`] → [`VM2`] Ethernet header, then one tag per `(TPID, VID, PCP)`
/// in order, then `ether_type` and `payload` (tags built by hand).
pub fn tagged(vlans: &[(EtherType, u16, u8)], ether_type: EtherType, payload: &[u8]) -> Vec<u8> {
    let first = vlans.first().map(|v| v.0).unwrap_or(ether_type);
    let mut f = Ethernet2Header {
        source: VM1,
        destination: VM2,
        ether_type: first,
    }
    .to_bytes()
    .to_vec();
    for (i, &(_, id, pcp)) in vlans.iter().enumerate() {
        let next = vlans.get(i + 1).map(|v| v.0).unwrap_or(ether_type);
        let tci = (u16::from(pcp) << 13) | id;
        f.extend_from_slice(&tci.to_be_bytes());
        f.extend_from_slice(&next.0.to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// A local VM's frame: Ethernet / (tags) / IPv4 / UDP, from etherparse.
pub fn vm_frame(vlans: &[u16]) -> Vec<u8> {
    let mut f = Vec::new();
    let eth = PacketBuilder::ethernet2(VM1, VM2);
    match vlans {
        [] => eth
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000)
            .write(&mut f, b"vm"),
        [a] => eth
            .single_vlan(vid(*a))
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000)
            .write(&mut f, b"vm"),
        [a, b] => eth
            .double_vlan(vid(*a), vid(*b))
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000)
            .write(&mut f, b"vm"),
        _ => unreachable!(),
    }
    .unwrap();
    f
}

/// The IPv4 payload of a VM frame (for frames whose tags are built by hand).
pub fn vm_ipv4_packet() -> Vec<u8> {
    vm_frame(&[])[14..].to_vec()
}
