//! Frames shared by the tests and the benches, built from a description
//! rather than pasted as bytes, and the small switch configuration the
//! configuration-editing tests start from.
//!
//! Every frame here is an inner (customer) frame as the XDP program hands it
//! to a worker: untagged Ethernet II, no FCS. The tests check them with an
//! independent parser (etherparse), so the benches measure frames known to
//! be well-formed.

use std::net::Ipv4Addr;

use crate::types::MacAddr;
use crate::wire::{ethernet, ipv4, udp, EtherType, IpProtocol};

/// The smallest Ethernet frame without FCS: 60 bytes (64 on the wire).
pub const MIN_FRAME: usize = 60;

/// The length of the benches' frames: 64 bytes.
pub const BENCH_FRAME: usize = 64;

/// Headroom the tests and benches leave in front of a frame: room for IPv6
/// encapsulation (70 bytes) and a VLAN tag, rounded up like a UMEM headroom.
pub const HEADROOM: usize = 128;

/// A buffer size the tests and benches use for one frame (a 2 KiB chunk).
pub const FRAME_SIZE: usize = 2048;

/// A switch config for the tests that edit configurations: an uplink
/// `up` (ports 0), access ports `vm1` and `vm2` (1, 2); bridge domain
/// `blue` (BD 1, VNI 100, flooding to 192.0.2.1) with `vm1` untagged, `red`
/// (BD 2, VNI 200) with `vm2` on VLAN 10.
pub const TWO_BDS: &str = r#"
[vtep]
local_ips = ["192.0.2.10"]

[[port]]
name = "up"
role = "uplink"

[[port]]
name = "vm1"
role = "access"

[[port]]
name = "vm2"
role = "access"

[[bridge_domain]]
name = "blue"
vni = 100
flood = ["192.0.2.1"]
attach = [{ port = "vm1" }]

[[bridge_domain]]
name = "red"
vni = 200
attach = [{ port = "vm2", vlan = 10 }]
"#;

/// The locally administered unicast MAC `02:00:ii:ii:ii:ii` for index `i`.
pub fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

/// An IPv4/UDP frame of `len` bytes (at least 42) from `src` to `dst`:
/// 10.0.0.1:`sport` → 10.0.0.2:2000, TTL 64, payload bytes counting up.
///
/// # Panics
/// If `len` is under 42 (Ethernet + IPv4 + UDP headers).
pub fn udp_frame(src: MacAddr, dst: MacAddr, sport: u16, len: usize) -> Vec<u8> {
    let headers = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;
    assert!(len >= headers, "a UDP frame needs at least {headers} bytes");
    let mut f = vec![0u8; len];
    ethernet::Repr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut ethernet::Frame::new_unchecked(&mut f[..]));
    let ip_len = len - ethernet::HEADER_LEN;
    ipv4::Repr {
        src_addr: Ipv4Addr::new(10, 0, 0, 1),
        dst_addr: Ipv4Addr::new(10, 0, 0, 2),
        protocol: IpProtocol::Udp,
        payload_len: ip_len - ipv4::HEADER_LEN,
        ttl: 64,
        dont_frag: false,
        dscp_ecn: 0,
    }
    .emit(&mut ipv4::Packet::new_unchecked(
        &mut f[ethernet::HEADER_LEN..],
    ));
    let l4 = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
    udp::Repr {
        src_port: sport,
        dst_port: 2000,
        payload_len: len - l4 - udp::HEADER_LEN,
    }
    .emit(&mut udp::Packet::new_unchecked(&mut f[l4..]));
    for (i, b) in f[l4 + udp::HEADER_LEN..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

/// A `FRAME_SIZE` buffer holding `frame` at offset `HEADROOM`.
pub fn in_buffer(frame: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; FRAME_SIZE.max(HEADROOM + frame.len())];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    buf
}
