//! The hostile-traffic corpus: malformed and hostile frames, each with the
//! port it is sent on and the counters it must land in (per copy sent).
//!
//! Frames are built with the classifier table's builders
//! (`xvs_testkit::frames`, etherparse) and then patched where a case says
//! so; offsets are those of an untagged IPv4 VXLAN frame: Ethernet 0..14,
//! IPv4 14..34, UDP 34..42, VXLAN 42..50, inner frame from 50 (IPv6: IPv6
//! 14..54, UDP 54..62).
//!
//! The topology (`xvsd_malformed.rs`): the uplink answers to 192.0.2.10 and
//! 2001:db8::10, bridge domain `blue` has VNI 100, flood list 192.0.2.1
//! (every VXLAN frame here comes from that VTEP but one, which is dropped
//! for it: `drop_unknown_vtep`), and the hostile access
//! port is attached untagged and on VLAN 10. Frames that are forwarded go to
//! a MAC the test learned beforehand, never to the VMs that ping each
//! other: inner frames from the uplink to [`SINK_A`] (on the hostile access
//! port), access frames to [`SINK_V`] (behind the remote VTEP).

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, Ethernet2Header, IpFragOffset, IpNumber};
use xvs_testkit::frames::*;

/// Learned on the hostile access port (untagged) before the corpus runs.
pub const SINK_A: [u8; 6] = [0x02, 0, 0, 0x0d, 0, 0x0a];
/// Learned behind the remote VTEP 192.0.2.1 before the corpus runs.
pub const SINK_V: [u8; 6] = [0x02, 0, 0, 0x0d, 0, 0x0b];
/// Source of untagged frames on the hostile access port.
pub const A_UNTAG: [u8; 6] = [0x02, 0, 0, 0x0d, 0, 0x01];
/// Source of VLAN-10 frames on the hostile access port.
pub const A_V10: [u8; 6] = [0x02, 0, 0, 0x0d, 0, 0x10];
/// A static FDB entry on another access port (the test adds it).
pub const STATIC: [u8; 6] = [0x02, 0, 0, 0x0d, 0, 0x5e];
/// A multicast source MAC.
const MCAST: [u8; 6] = [0x01, 0, 0x5e, 0, 0, 0xfb];
const BCAST: [u8; 6] = [0xff; 6];
const ZERO: [u8; 6] = [0; 6];

/// Where a frame is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The uplink (underlay).
    Uplink,
    /// An access port attached untagged and on VLAN 10.
    Access,
}

/// A counter a frame lands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lands {
    /// A classifier counter (`xvsctl stats`, scope `xdp`).
    Xdp(&'static str),
    /// A counter of worker 0 (engine or worker loop, scope `worker`).
    Worker(&'static str),
    /// A kernel statistic of the receiving xvsd port
    /// (`/sys/class/net/PORT/statistics/…`): refused before XDP runs.
    Kernel(&'static str),
}

/// One corpus entry.
pub struct Hostile {
    /// What it is.
    pub name: &'static str,
    /// Where it is sent.
    pub port: Port,
    /// The counters one copy moves, each by one.
    pub lands: &'static [Lands],
    /// The bytes.
    pub frame: Vec<u8>,
}

use Lands::{Kernel, Worker, Xdp};
use Port::{Access, Uplink};

const DECAP: &[Lands] = &[Xdp("decap_v4")];
const SWITCHED: &[Lands] = &[Xdp("switched_access")];
const POPPED: &[Lands] = &[Xdp("vlan_popped"), Xdp("switched_access")];
const BAD_IP_LEN: &[Lands] = &[Xdp("drop_bad_ip_len")];
const BAD_UDP_LEN: &[Lands] = &[Xdp("drop_bad_udp_len")];
const TRUNC_IPV4: &[Lands] = &[Xdp("drop_trunc_ipv4")];
const UNKNOWN_VNI: &[Lands] = &[Xdp("drop_unknown_vni")];
const UNKNOWN_ATT: &[Lands] = &[Xdp("drop_unknown_attachment")];
const FRAGMENT: &[Lands] = &[Xdp("pass_fragment")];
const NOT_VXLAN: &[Lands] = &[Xdp("pass_not_vxlan")];
const BAD_SRC_UP: &[Lands] = &[Xdp("decap_v4"), Worker("drop_bad_src_mac")];
const BAD_SRC_ACC: &[Lands] = &[Xdp("switched_access"), Worker("drop_bad_src_mac")];
const OVER_MTU: &[Lands] = &[Kernel("rx_dropped")];

fn h(name: &'static str, port: Port, lands: &'static [Lands], frame: Vec<u8>) -> Hostile {
    Hostile {
        name,
        port,
        lands,
        frame,
    }
}

/// `f` with `bytes` written at `at`.
fn patch(f: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut f = f.to_vec();
    f[at..at + bytes.len()].copy_from_slice(bytes);
    f
}

/// `f` with the big-endian `v` at `at`.
fn patch16(f: &[u8], at: usize, v: u16) -> Vec<u8> {
    patch(f, at, &v.to_be_bytes())
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

/// IPv4 VXLAN (VNI 100) from the remote VTEP to us around `inner`.
pub fn enc4(inner: &[u8]) -> Vec<u8> {
    udp4(&[], REMOTE4, VTEP4, 4789, &vxlan_payload(VNI, inner))
}

/// `f` padded with zeros to `len` bytes.
fn padded(f: &[u8], len: usize) -> Vec<u8> {
    let mut f = f.to_vec();
    f.resize(len, 0);
    f
}

/// The whole corpus.
pub fn corpus() -> Vec<Hostile> {
    let inner = with_macs(inner_frame(), SINK_A, VM1);
    let vx = vxlan_payload(VNI, &inner);
    let good4 = udp4(&[], REMOTE4, VTEP4, 4789, &vx);
    let good6 = udp6(&[], REMOTE6, VTEP6, 4789, &vx);
    let n4 = good4.len();
    let with_vxlan = |flags: u8, vni: u32, reserved: u8| {
        let mut p = vxlan(flags, vni, reserved).to_vec();
        p.extend_from_slice(&inner);
        udp4(&[], REMOTE4, VTEP4, 4789, &p)
    };
    let options = |o: Vec<u8>| {
        let mut hdr = ipv4_header();
        hdr.options = o.as_slice().try_into().unwrap();
        udp4_with(hdr, 4789, &vx)
    };
    let fragment = |mf: bool, offset: u16| {
        let mut hdr = ipv4_header();
        hdr.more_fragments = mf;
        hdr.fragment_offset = IpFragOffset::try_new(offset).unwrap();
        udp4_with(hdr, 4789, &vx)
    };
    let acc = |vlans: &[u16], src: [u8; 6]| with_macs(vm_frame(vlans), SINK_V, src);
    let q = EtherType::VLAN_TAGGED_FRAME;
    let ad = EtherType::PROVIDER_BRIDGING;
    let hand_tagged = |tags: &[(EtherType, u16, u8)], src: [u8; 6]| {
        with_macs(
            tagged(tags, EtherType::IPV4, &vm_ipv4_packet()),
            SINK_V,
            src,
        )
    };
    let eth_only = |dst, src| {
        Ethernet2Header {
            source: src,
            destination: dst,
            ether_type: EtherType(0x88b5),
        }
        .to_bytes()
        .to_vec()
    };

    vec![
        // ------------------------------------------------ uplink: controls
        h("up_vxlan_ipv4_control", Uplink, DECAP, good4.clone()),
        h(
            "up_trailing_ethernet_padding",
            Uplink,
            DECAP,
            padded(&good4, n4 + 6),
        ),
        // ------------------------------ uplink: cut at every header boundary
        h(
            "up_cut_after_ethernet_header",
            Uplink,
            TRUNC_IPV4,
            good4[..14].to_vec(),
        ),
        h(
            "up_cut_inside_ipv4_header",
            Uplink,
            TRUNC_IPV4,
            good4[..24].to_vec(),
        ),
        h(
            "up_cut_after_ipv4_header",
            Uplink,
            BAD_IP_LEN,
            good4[..34].to_vec(),
        ),
        h(
            "up_cut_inside_udp_header",
            Uplink,
            BAD_IP_LEN,
            good4[..38].to_vec(),
        ),
        h(
            "up_cut_after_udp_header",
            Uplink,
            BAD_IP_LEN,
            good4[..42].to_vec(),
        ),
        h(
            "up_cut_inside_vxlan_header",
            Uplink,
            BAD_IP_LEN,
            good4[..46].to_vec(),
        ),
        h(
            "up_cut_after_vxlan_header",
            Uplink,
            BAD_IP_LEN,
            good4[..50].to_vec(),
        ),
        h(
            "up_cut_inside_inner_ethernet",
            Uplink,
            BAD_IP_LEN,
            good4[..57].to_vec(),
        ),
        h(
            "up_cut_last_byte",
            Uplink,
            BAD_IP_LEN,
            good4[..n4 - 1].to_vec(),
        ),
        h(
            "up_cut_inside_ipv6_header",
            Uplink,
            &[Xdp("drop_trunc_ipv6")],
            good6[..34].to_vec(),
        ),
        h(
            "up_cut_after_ipv6_header",
            Uplink,
            BAD_IP_LEN,
            good6[..54].to_vec(),
        ),
        h(
            "up_cut_inside_8021q_tag",
            Uplink,
            &[Xdp("drop_trunc_vlan")],
            udp4(&[5], REMOTE4, VTEP4, 4789, &vx)[..16].to_vec(),
        ),
        h(
            "up_cut_inside_second_tag",
            Uplink,
            &[Xdp("drop_trunc_vlan")],
            udp4(&[5, 6], REMOTE4, VTEP4, 4789, &vx)[..20].to_vec(),
        ),
        // ------------- uplink: truncations the lengths agree with (no lies)
        h(
            "up_ip_payload_is_half_a_udp_header",
            Uplink,
            &[Xdp("drop_trunc_udp")],
            ip4_raw(IpNumber::UDP, &udp_hdr(4789, 0)[..4]),
        ),
        h(
            "up_ipv6_payload_is_half_a_udp_header",
            Uplink,
            &[Xdp("drop_trunc_udp")],
            ip6_raw(IpNumber::UDP, &udp_hdr(4789, 0)[..4]),
        ),
        h(
            "up_udp_payload_is_half_a_vxlan_header",
            Uplink,
            &[Xdp("drop_trunc_vxlan")],
            udp4(&[], REMOTE4, VTEP4, 4789, &vxlan(0x08, VNI, 0)[..4]),
        ),
        h(
            "up_vxlan_without_inner_frame",
            Uplink,
            &[Xdp("drop_trunc_inner")],
            enc4(&[]),
        ),
        h(
            "up_inner_frame_of_10_bytes",
            Uplink,
            &[Xdp("drop_trunc_inner")],
            enc4(&inner[..10]),
        ),
        // ------------------------------------------ uplink: bad IPv4 header
        h(
            "up_ipv4_ihl_0",
            Uplink,
            &[Xdp("drop_bad_ihl")],
            patch(&good4, 14, &[0x40]),
        ),
        h(
            "up_ipv4_ihl_4",
            Uplink,
            &[Xdp("drop_bad_ihl")],
            patch(&good4, 14, &[0x44]),
        ),
        h(
            "up_ipv4_ihl_15_beyond_the_frame",
            Uplink,
            TRUNC_IPV4,
            patch(&ip4_raw(IpNumber::UDP, &udp_hdr(4789, 0)), 14, &[0x4f]),
        ),
        h(
            "up_ipv4_version_6_under_ipv4_ethertype",
            Uplink,
            &[Xdp("drop_bad_ip_version")],
            patch(&good4, 14, &[0x65]),
        ),
        h(
            "up_ipv6_version_4_under_ipv6_ethertype",
            Uplink,
            &[Xdp("drop_bad_ip_version")],
            patch(&good6, 14, &[0x40]),
        ),
        h(
            "up_ipv4_total_length_one_past_the_frame",
            Uplink,
            BAD_IP_LEN,
            patch16(&good4, 16, be16(&good4, 16) + 1),
        ),
        h(
            "up_ipv4_total_length_19",
            Uplink,
            BAD_IP_LEN,
            patch16(&good4, 16, 19),
        ),
        h(
            "up_ipv4_total_length_0",
            Uplink,
            BAD_IP_LEN,
            patch16(&good4, 16, 0),
        ),
        h(
            "up_ipv4_total_length_65535",
            Uplink,
            BAD_IP_LEN,
            patch16(&good4, 16, 0xffff),
        ),
        h(
            "up_ipv4_total_length_short_of_the_udp_length",
            Uplink,
            BAD_UDP_LEN,
            patch16(&good4, 16, be16(&good4, 16) - 1),
        ),
        h(
            "up_bad_ipv4_header_checksum_is_not_checked",
            Uplink,
            DECAP,
            patch(&good4, 24, &[!good4[24], !good4[25]]),
        ),
        // ----------------------------------- uplink: IPv6 payload length lies
        h(
            "up_ipv6_payload_length_one_past_the_frame",
            Uplink,
            BAD_IP_LEN,
            patch16(&good6, 18, be16(&good6, 18) + 1),
        ),
        h(
            "up_ipv6_payload_length_65535",
            Uplink,
            BAD_IP_LEN,
            patch16(&good6, 18, 0xffff),
        ),
        h(
            "up_ipv6_payload_length_0",
            Uplink,
            &[Xdp("drop_trunc_udp")],
            patch16(&good6, 18, 0),
        ),
        // -------------------------------------------- uplink: UDP length lies
        h(
            "up_udp_length_one_past_the_ip_payload",
            Uplink,
            BAD_UDP_LEN,
            patch16(&good4, 38, be16(&good4, 38) + 1),
        ),
        h(
            "up_udp_length_7",
            Uplink,
            BAD_UDP_LEN,
            patch16(&good4, 38, 7),
        ),
        h(
            "up_udp_length_0",
            Uplink,
            BAD_UDP_LEN,
            patch16(&good4, 38, 0),
        ),
        h(
            "up_udp_length_ends_inside_vxlan_header",
            Uplink,
            &[Xdp("drop_trunc_vxlan")],
            patch16(&good4, 38, 12),
        ),
        h(
            "up_udp_length_leaves_10_inner_bytes",
            Uplink,
            &[Xdp("drop_trunc_inner")],
            patch16(&good4, 38, 8 + 8 + 10),
        ),
        h(
            "up_udp_length_leaves_14_inner_bytes_frame_trimmed",
            Uplink,
            DECAP,
            patch16(&good4, 38, 8 + 8 + 14),
        ),
        // ------------------------------------------------ uplink: VXLAN header
        h(
            "up_vxlan_i_flag_clear",
            Uplink,
            &[Xdp("drop_vxlan_no_i_flag")],
            with_vxlan(0x00, VNI, 0),
        ),
        h(
            "up_vxlan_i_flag_clear_all_other_bits_set",
            Uplink,
            &[Xdp("drop_vxlan_no_i_flag")],
            with_vxlan(0xf7, VNI, 0xff),
        ),
        h(
            "up_vxlan_reserved_bits_set_are_ignored",
            Uplink,
            DECAP,
            with_vxlan(0xff, VNI, 0xff),
        ),
        h(
            "up_vxlan_unknown_vni_101",
            Uplink,
            UNKNOWN_VNI,
            with_vxlan(0x08, 101, 0),
        ),
        h(
            "up_vxlan_vni_0",
            Uplink,
            UNKNOWN_VNI,
            with_vxlan(0x08, 0, 0),
        ),
        h(
            "up_vxlan_vni_16777215",
            Uplink,
            UNKNOWN_VNI,
            with_vxlan(0x08, 0xff_ffff, 0),
        ),
        // ---------------------------------------- uplink: not ours → kernel
        h(
            "up_vxlan_to_a_non_local_ipv4_address",
            Uplink,
            &[Xdp("pass_not_local")],
            udp4(&[], REMOTE4, Ipv4Addr::new(192, 0, 2, 99), 4789, &vx),
        ),
        h(
            "up_vxlan_to_a_non_local_ipv6_address",
            Uplink,
            &[Xdp("pass_not_local")],
            udp6(
                &[],
                REMOTE6,
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99),
                4789,
                &vx,
            ),
        ),
        h(
            "up_udp_to_port_4790",
            Uplink,
            NOT_VXLAN,
            udp4(&[], REMOTE4, VTEP4, 4790, &vx),
        ),
        h("up_tcp_syn_to_the_vtep", Uplink, NOT_VXLAN, tcp_syn4()),
        h(
            "up_ipv6_tcp_to_the_vtep",
            Uplink,
            NOT_VXLAN,
            ip6_raw(IpNumber::TCP, &[0; 20]),
        ),
        // --------------------------------- uplink: IPv4 options and fragments
        h(
            "up_ipv4_options_nop",
            Uplink,
            DECAP,
            options(vec![1, 1, 1, 0]),
        ),
        h(
            "up_ipv4_options_40_bytes",
            Uplink,
            DECAP,
            options({
                let mut o = vec![1u8; 40];
                o[39] = 0;
                o
            }),
        ),
        h(
            "up_ipv4_first_fragment",
            Uplink,
            FRAGMENT,
            fragment(true, 0),
        ),
        h(
            "up_ipv4_middle_fragment",
            Uplink,
            FRAGMENT,
            fragment(true, 100),
        ),
        h(
            "up_ipv4_last_fragment",
            Uplink,
            FRAGMENT,
            fragment(false, 100),
        ),
        h("up_ipv4_dont_fragment_is_not_a_fragment", Uplink, DECAP, {
            let mut hdr = ipv4_header();
            hdr.dont_fragment = true;
            udp4_with(hdr, 4789, &vx)
        }),
        h(
            "up_ipv6_hop_by_hop_header",
            Uplink,
            &[Xdp("pass_ipv6_ext")],
            {
                let mut p = vec![17, 0, 1, 4, 0, 0, 0, 0];
                p.extend_from_slice(&udp_vxlan(4789, VNI, &inner));
                ip6_raw(IpNumber::IPV6_HEADER_HOP_BY_HOP, &p)
            },
        ),
        h(
            "up_ipv6_fragment_header",
            Uplink,
            &[Xdp("pass_ipv6_ext")],
            {
                let mut p = vec![17, 0, 0, 1, 0, 0, 0, 1];
                p.extend_from_slice(&udp_vxlan(4789, VNI, &inner));
                ip6_raw(IpNumber::IPV6_FRAGMENTATION_HEADER, &p)
            },
        ),
        // ------------------------------------------------- uplink: VLAN stacks
        h(
            "up_one_8021q_tag",
            Uplink,
            DECAP,
            udp4(&[5], REMOTE4, VTEP4, 4789, &vx),
        ),
        h(
            "up_two_tags",
            Uplink,
            DECAP,
            udp4(&[5, 6], REMOTE4, VTEP4, 4789, &vx),
        ),
        h(
            "up_three_tags",
            Uplink,
            NOT_VXLAN,
            tagged(
                &[(ad, 5, 0), (q, 6, 0), (q, 7, 0)],
                EtherType::IPV4,
                &good4[L3..],
            ),
        ),
        // ---------------------------------------- uplink: MACs, inner frames
        h(
            "up_inner_multicast_source",
            Uplink,
            BAD_SRC_UP,
            enc4(&with_macs(inner_frame(), SINK_A, MCAST)),
        ),
        h(
            "up_inner_broadcast_source",
            Uplink,
            BAD_SRC_UP,
            enc4(&with_macs(inner_frame(), SINK_A, BCAST)),
        ),
        h(
            "up_inner_zero_source",
            Uplink,
            BAD_SRC_UP,
            enc4(&with_macs(inner_frame(), SINK_A, ZERO)),
        ),
        h(
            "up_inner_truncated_ipv4_is_still_ethernet",
            Uplink,
            DECAP,
            enc4(&inner[..20]),
        ),
        h(
            "up_outer_multicast_source_is_the_underlay_s_business",
            Uplink,
            DECAP,
            with_macs(good4.clone(), OUTER_DST_MAC, MCAST),
        ),
        h(
            "up_outer_zero_source",
            Uplink,
            DECAP,
            with_macs(good4.clone(), OUTER_DST_MAC, ZERO),
        ),
        h(
            "up_inner_frame_is_vxlan_again_decapsulated_once",
            Uplink,
            DECAP,
            enc4(&with_macs(good4.clone(), SINK_A, VM1)),
        ),
        h(
            "up_inner_ethernet_header_only",
            Uplink,
            DECAP,
            enc4(&eth_only(SINK_A, VM1)),
        ),
        h(
            "up_inner_vlan_tagged",
            Uplink,
            DECAP,
            enc4(&with_macs(inner_tagged_frame(), SINK_A, VM1)),
        ),
        h(
            "up_inner_addressed_back_to_its_vtep_split_horizon",
            Uplink,
            &[Xdp("decap_v4"), Worker("drop_split_horizon")],
            enc4(&with_macs(inner_frame(), VM1, VM1)),
        ),
        h(
            "up_vxlan_from_a_vtep_not_in_the_flood_list",
            Uplink,
            &[Xdp("decap_v4"), Worker("drop_unknown_vtep")],
            udp4(&[], Ipv4Addr::new(192, 0, 2, 77), VTEP4, 4789, &vx),
        ),
        h(
            "up_over_the_port_mtu",
            Uplink,
            OVER_MTU,
            enc4(&padded(&inner, 1600 - 50)),
        ),
        // ------------------------------------------------- access: controls
        h("acc_untagged_control", Access, SWITCHED, acc(&[], A_UNTAG)),
        h("acc_vlan_10_control", Access, POPPED, acc(&[10], A_V10)),
        // ------------------------------------------ access: short and cut
        // (Below 14 bytes nothing can be sent: AF_PACKET refuses with
        // EINVAL, see ebpf/tests/attach_veth.rs; 14 to 59 bytes arrive.)
        h(
            "acc_ethernet_header_only",
            Access,
            SWITCHED,
            eth_only(SINK_V, A_UNTAG),
        ),
        h(
            "acc_20_byte_runt",
            Access,
            SWITCHED,
            padded(&eth_only(SINK_V, A_UNTAG), 20),
        ),
        h(
            "acc_cut_inside_vlan_tag",
            Access,
            &[Xdp("drop_trunc_vlan")],
            acc(&[10], A_V10)[..16].to_vec(),
        ),
        // --------------------------------------------------- access: VLANs
        h(
            "acc_unknown_vlan_20",
            Access,
            UNKNOWN_ATT,
            acc(&[20], A_V10),
        ),
        h(
            "acc_vlan_4095",
            Access,
            UNKNOWN_ATT,
            hand_tagged(&[(q, 4095, 0)], A_V10),
        ),
        h(
            "acc_two_tags_unknown_outer",
            Access,
            UNKNOWN_ATT,
            acc(&[20, 10], A_V10),
        ),
        h(
            "acc_two_tags_known_outer",
            Access,
            POPPED,
            acc(&[10, 20], A_V10),
        ),
        h(
            "acc_three_tags_known_outer",
            Access,
            POPPED,
            hand_tagged(&[(q, 10, 0), (q, 20, 0), (q, 30, 0)], A_V10),
        ),
        h(
            "acc_three_tags_unknown_outer",
            Access,
            UNKNOWN_ATT,
            hand_tagged(&[(ad, 30, 0), (q, 10, 0), (q, 10, 0)], A_V10),
        ),
        h(
            "acc_8021ad_tag_10",
            Access,
            POPPED,
            hand_tagged(&[(ad, 10, 0)], A_V10),
        ),
        h(
            "acc_priority_tag_is_untagged",
            Access,
            POPPED,
            hand_tagged(&[(q, 0, 5)], A_UNTAG),
        ),
        // ------------------------------------------------ access: bad sources
        h("acc_multicast_source", Access, BAD_SRC_ACC, acc(&[], MCAST)),
        h("acc_broadcast_source", Access, BAD_SRC_ACC, acc(&[], BCAST)),
        h("acc_zero_source", Access, BAD_SRC_ACC, acc(&[], ZERO)),
        h(
            "acc_multicast_source_on_vlan_10",
            Access,
            &[
                Xdp("vlan_popped"),
                Xdp("switched_access"),
                Worker("drop_bad_src_mac"),
            ],
            acc(&[10], MCAST),
        ),
        h(
            "acc_addressed_to_itself_hairpin",
            Access,
            &[Xdp("switched_access"), Worker("drop_hairpin")],
            with_macs(vm_frame(&[]), A_UNTAG, A_UNTAG),
        ),
        h(
            "acc_spoofs_a_static_mac_not_moved",
            Access,
            &[Xdp("switched_access"), Worker("learn_static")],
            acc(&[], STATIC),
        ),
        // ---------------------------------------------------- access: sizes
        h(
            "acc_full_size_frame_too_big_to_encapsulate",
            Access,
            &[Xdp("switched_access"), Worker("drop_mtu")],
            padded(&acc(&[], A_UNTAG), 1514),
        ),
        h(
            "acc_over_the_port_mtu",
            Access,
            OVER_MTU,
            padded(&acc(&[], A_UNTAG), 2000),
        ),
        // ------------------------------------------------ access: odd payloads
        h(
            "acc_vxlan_for_us_is_switched_not_decapsulated",
            Access,
            SWITCHED,
            with_macs(good4.clone(), SINK_V, A_UNTAG),
        ),
        h("acc_8023_length_field_llc", Access, SWITCHED, {
            let mut f = eth_only(SINK_V, A_UNTAG);
            f[12..14].copy_from_slice(&46u16.to_be_bytes());
            f.extend_from_slice(&[0x42, 0x42, 0x03]);
            padded(&f, 60)
        }),
        h("acc_ethertype_0xffff", Access, SWITCHED, {
            let mut f = padded(&eth_only(SINK_V, A_UNTAG), 64);
            f[12..14].copy_from_slice(&[0xff, 0xff]);
            f
        }),
    ]
}
