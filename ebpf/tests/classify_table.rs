//! The classifier's decision table, frame by frame, through
//! `BPF_PROG_TEST_RUN` (no NIC needed; needs root to load BPF).
//!
//! Every input and expected output frame is built with etherparse (not with
//! the code under test; the builders are shared with the end-to-end corpus
//! in `xvs_testkit::frames`); where a header is deliberately broken, the case's
//! `how` says which bytes were patched after etherparse built it (Katran
//! fixture style). Each case asserts the XDP action, the exact bytes the
//! kernel copies out (metadata area, then the frame), the metadata length
//! the kernel reports, and exactly which counters moved.
//!
//! The kernel refuses test input shorter than 14 bytes, so runts are
//! covered on a real veth by `tests/attach_veth.rs`.

use std::net::Ipv4Addr;

use etherparse::{EtherType, Ethernet2Header, IpFragOffset, IpNumber};
use xvs_ebpf::{Classifier, Counter, PortRole, XdpAction};
use xvs_testkit::frames::*;

/// The test runs on the loopback device: its ifindex is 1 in every namespace.
const LO: u32 = 1;
const UPLINK_PORT: u32 = 3;
const ACCESS_PORT: u32 = 4;

const VNI_BD: u32 = 1;
const VNI_BIG: u32 = 0x00ab_cdef;
const VNI_BIG_BD: u32 = 2;
const BD_UNTAGGED: u32 = 10;
const BD_VLAN10: u32 = 11;
const BD_VLAN100: u32 = 12;

const META_F_VXLAN: u16 = 0x1;
const META_F_VTEP_IPV6: u16 = 0x2;
const META_F_TAGGED: u16 = 0x4;
const META_F_INNER_TAG: u16 = 0x8;

/// Which role loopback plays for a case.
#[derive(Clone, Copy, Debug)]
enum Role {
    Uplink,
    Access,
    NotAPort,
}

/// What comes out.
enum Out {
    /// The frame, untouched, and no metadata.
    Unchanged,
    /// Metadata (the 32 bytes the test expects) followed by this frame.
    Switched { meta: [u8; 32], frame: Vec<u8> },
}

struct Case {
    name: &'static str,
    /// How the input was made, beyond the etherparse calls in `cases()`.
    how: &'static str,
    role: Role,
    input: Vec<u8>,
    action: XdpAction,
    out: Out,
    counters: &'static [Counter],
}

// ---------------------------------------------------------------- frames --

/// The metadata the program should write, laid out as the ABI header says
/// (host byte order; written out field by field here, not with the crate).
fn meta(bd: u32, port: u32, src: [u8; 16], vni: u32, vid: u16, flags: u16) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0..4].copy_from_slice(&bd.to_ne_bytes());
    m[4..8].copy_from_slice(&port.to_ne_bytes());
    m[8..24].copy_from_slice(&src);
    m[24..28].copy_from_slice(&vni.to_ne_bytes());
    m[28..30].copy_from_slice(&vid.to_ne_bytes());
    m[30..32].copy_from_slice(&flags.to_ne_bytes());
    m
}

fn v4_mapped(a: Ipv4Addr) -> [u8; 16] {
    a.to_ipv6_mapped().octets()
}

fn decap4(bd: u32, vni: u32, inner: Vec<u8>) -> Out {
    Out::Switched {
        meta: meta(bd, UPLINK_PORT, v4_mapped(REMOTE4), vni, 0, META_F_VXLAN),
        frame: inner,
    }
}

fn decap6(inner: Vec<u8>) -> Out {
    Out::Switched {
        meta: meta(
            VNI_BD,
            UPLINK_PORT,
            v6(REMOTE6),
            VNI,
            0,
            META_F_VXLAN | META_F_VTEP_IPV6,
        ),
        frame: inner,
    }
}

fn switched(bd: u32, vid: u16, flags: u16, frame: Vec<u8>) -> Out {
    Out::Switched {
        meta: meta(bd, ACCESS_PORT, [0; 16], 0, vid, flags),
        frame,
    }
}

// ----------------------------------------------------------------- cases --

use Counter::*;
use XdpAction::{Drop as XDrop, Pass as XPass};

fn cases() -> Vec<Case> {
    let inner = inner_frame();
    let vx = vxlan_payload(VNI, &inner);
    let good4 = udp4(&[], REMOTE4, VTEP4, 4789, &vx);
    let good6 = udp6(&[], REMOTE6, VTEP6, 4789, &vx);
    let decap_v4: &[Counter] = &[DecapV4, RedirectFailed];
    let decap_v6: &[Counter] = &[DecapV6, RedirectFailed];

    let mut c = vec![
        // ---- uplink: VXLAN that is decapsulated
        Case {
            name: "vxlan_ipv4_decapsulated",
            how: "eth/ipv4 192.0.2.1>192.0.2.10/udp 54321>4789/vxlan I vni 100/inner eth-ipv4-udp",
            role: Role::Uplink,
            input: good4.clone(),
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_ipv6_decapsulated",
            how: "eth/ipv6 2001:db8::1>2001:db8::10/udp 4789/vxlan vni 100/inner",
            role: Role::Uplink,
            input: good6.clone(),
            action: XDrop,
            out: decap6(inner.clone()),
            counters: decap_v6,
        },
        Case {
            name: "vxlan_ipv4_over_8021q_underlay_decapsulated",
            how: "eth/802.1Q vid 5/ipv4/udp 4789/vxlan vni 100/inner",
            role: Role::Uplink,
            input: udp4(&[5], REMOTE4, VTEP4, 4789, &vx),
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_ipv4_over_qinq_8021ad_underlay_decapsulated",
            how: "etherparse double_vlan(5, 6), then outer TPID bytes 12..14 patched to 0x88a8",
            role: Role::Uplink,
            input: {
                let mut f = udp4(&[5, 6], REMOTE4, VTEP4, 4789, &vx);
                f[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
                f
            },
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_ipv6_over_8021q_underlay_decapsulated",
            how: "eth/802.1Q vid 5/ipv6/udp 4789/vxlan vni 100/inner",
            role: Role::Uplink,
            input: udp6(&[5], REMOTE6, VTEP6, 4789, &vx),
            action: XDrop,
            out: decap6(inner.clone()),
            counters: decap_v6,
        },
        Case {
            name: "vxlan_ipv4_with_options_decapsulated",
            how: "ipv4 options NOP NOP NOP EOL (IHL 6)",
            role: Role::Uplink,
            input: {
                let mut h = ipv4_header();
                h.options = [1u8, 1, 1, 0].into();
                udp4_with(h, 4789, &vx)
            },
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_ipv4_with_40_bytes_of_options_decapsulated",
            how: "ipv4 options 39 x NOP + EOL (IHL 15, the maximum)",
            role: Role::Uplink,
            input: {
                let mut h = ipv4_header();
                let mut o = [1u8; 40];
                o[39] = 0;
                h.options = o.into();
                udp4_with(h, 4789, &vx)
            },
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_24_bit_vni_maps_to_its_bridge_domain",
            how: "vxlan vni 0xabcdef",
            role: Role::Uplink,
            input: udp4(&[], REMOTE4, VTEP4, 4789, &vxlan_payload(VNI_BIG, &inner)),
            action: XDrop,
            out: decap4(VNI_BIG_BD, VNI_BIG, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_reserved_bits_are_ignored",
            how: "vxlan flags 0xff (I + all reserved), reserved bytes 0xff",
            role: Role::Uplink,
            input: {
                let mut p = vxlan(0xff, VNI, 0xff).to_vec();
                p.extend_from_slice(&inner);
                udp4(&[], REMOTE4, VTEP4, 4789, &p)
            },
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_trailing_ethernet_padding_is_trimmed",
            how: "good ipv4 vxlan frame + 6 zero bytes after the IP total length",
            role: Role::Uplink,
            input: {
                let mut f = good4.clone();
                f.extend_from_slice(&[0; 6]);
                f
            },
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_inner_vlan_tag_is_kept",
            how: "inner frame eth/802.1Q vid 7/ipv4/udp",
            role: Role::Uplink,
            input: udp4(
                &[],
                REMOTE4,
                VTEP4,
                4789,
                &vxlan_payload(VNI, &inner_tagged_frame()),
            ),
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner_tagged_frame()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_minimal_inner_frame_of_14_bytes_decapsulated",
            how: "inner = bare ethernet header, EtherType 0x88b5",
            role: Role::Uplink,
            input: {
                let e = Ethernet2Header {
                    source: VM1,
                    destination: VM2,
                    ether_type: EtherType(0x88b5),
                };
                udp4(
                    &[],
                    REMOTE4,
                    VTEP4,
                    4789,
                    &vxlan_payload(VNI, &e.to_bytes()),
                )
            },
            action: XDrop,
            out: decap4(
                VNI_BD,
                VNI,
                Ethernet2Header {
                    source: VM1,
                    destination: VM2,
                    ether_type: EtherType(0x88b5),
                }
                .to_bytes()
                .to_vec(),
            ),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_ipv4_with_dont_fragment_is_decapsulated",
            how: "ipv4 DF=1 (not a fragment)",
            role: Role::Uplink,
            input: {
                let mut h = ipv4_header();
                h.dont_fragment = true;
                udp4_with(h, 4789, &vx)
            },
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        Case {
            name: "vxlan_over_priority_tagged_underlay_is_decapsulated",
            how: "eth/802.1Q pcp 6 vid 0/ipv4/udp 4789/vxlan (tag by hand)",
            role: Role::Uplink,
            input: tagged(
                &[(EtherType::VLAN_TAGGED_FRAME, 0, 6)],
                EtherType::IPV4,
                &good4[L3..],
            ),
            action: XDrop,
            out: decap4(VNI_BD, VNI, inner.clone()),
            counters: decap_v4,
        },
        // ---- uplink: not ours → kernel
        Case {
            name: "ipv6_udp_to_other_port_is_passed",
            how: "eth/ipv6/udp 4790/vxlan",
            role: Role::Uplink,
            input: udp6(&[], REMOTE6, VTEP6, 4790, &vx),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        Case {
            name: "ipv6_tcp_to_the_vtep_is_passed",
            how: "eth/ipv6 next 6 + 20 bytes of (zero) tcp header",
            role: Role::Uplink,
            input: ip6_raw(IpNumber::TCP, &[0; 20]),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        Case {
            name: "vlan_tagged_arp_on_the_uplink_is_passed",
            how: "eth/802.1Q vid 5/arp type, 28 zero bytes (tag by hand)",
            role: Role::Uplink,
            input: tagged(
                &[(EtherType::VLAN_TAGGED_FRAME, 5, 0)],
                EtherType::ARP,
                &[0; 28],
            ),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        Case {
            name: "udp_to_other_port_is_passed",
            how: "vxlan payload to udp port 4790",
            role: Role::Uplink,
            input: udp4(&[], REMOTE4, VTEP4, 4790, &vx),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        Case {
            name: "vxlan_not_addressed_to_a_local_vtep_is_passed",
            how: "ipv4 dst 192.0.2.99",
            role: Role::Uplink,
            input: udp4(&[], REMOTE4, Ipv4Addr::new(192, 0, 2, 99), 4789, &vx),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotLocal],
        },
        Case {
            name: "vxlan_ipv6_not_addressed_to_a_local_vtep_is_passed",
            how: "ipv6 dst 2001:db8::99",
            role: Role::Uplink,
            input: udp6(&[], REMOTE6, "2001:db8::99".parse().unwrap(), 4789, &vx),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotLocal],
        },
        Case {
            name: "ipv4_fragment_with_more_fragments_is_passed",
            how: "ipv4 MF=1 offset 0",
            role: Role::Uplink,
            input: {
                let mut h = ipv4_header();
                h.more_fragments = true;
                udp4_with(h, 4789, &vx)
            },
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassFragment],
        },
        Case {
            name: "ipv4_fragment_with_offset_is_passed",
            how: "ipv4 MF=0 offset 100 (x8 bytes)",
            role: Role::Uplink,
            input: {
                let mut h = ipv4_header();
                h.fragment_offset = IpFragOffset::try_new(100).unwrap();
                udp4_with(h, 4789, &vx)
            },
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassFragment],
        },
        Case {
            name: "ipv6_hop_by_hop_extension_is_passed",
            how: "ipv6 next 0; hop-by-hop [next 17, len 0, PadN 4] then udp 4789/vxlan",
            role: Role::Uplink,
            input: {
                let mut p = vec![17, 0, 1, 4, 0, 0, 0, 0];
                p.extend_from_slice(&udp_vxlan(4789, VNI, &inner));
                ip6_raw(IpNumber::IPV6_HEADER_HOP_BY_HOP, &p)
            },
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassIpv6Ext],
        },
        Case {
            name: "ipv6_fragment_extension_is_passed",
            how: "ipv6 next 44; fragment header [next 17, 0, offset 0 M=1, id 1] then udp/vxlan",
            role: Role::Uplink,
            input: {
                let mut p = vec![17, 0, 0, 1, 0, 0, 0, 1];
                p.extend_from_slice(&udp_vxlan(4789, VNI, &inner));
                ip6_raw(IpNumber::IPV6_FRAGMENTATION_HEADER, &p)
            },
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassIpv6Ext],
        },
        Case {
            name: "arp_for_the_vtep_address_is_passed",
            how: "eth type 0x0806 + 28-byte ARP request who-has 192.0.2.10",
            role: Role::Uplink,
            input: {
                let mut f = Ethernet2Header {
                    source: OUTER_SRC_MAC,
                    destination: [0xff; 6],
                    ether_type: EtherType::ARP,
                }
                .to_bytes()
                .to_vec();
                f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
                f.extend_from_slice(&OUTER_SRC_MAC);
                f.extend_from_slice(&REMOTE4.octets());
                f.extend_from_slice(&[0; 6]);
                f.extend_from_slice(&VTEP4.octets());
                f
            },
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        Case {
            name: "ssh_over_tcp_to_the_vtep_is_passed",
            how: "eth/ipv4/tcp 40000>22 SYN",
            role: Role::Uplink,
            input: tcp_syn4(),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        Case {
            name: "three_vlan_tags_on_the_uplink_are_passed",
            how: "eth/802.1ad 5/802.1Q 6/802.1Q 7/ipv4/udp 4789/vxlan (tags by hand)",
            role: Role::Uplink,
            input: tagged(
                &[
                    (EtherType::PROVIDER_BRIDGING, 5, 0),
                    (EtherType::VLAN_TAGGED_FRAME, 6, 0),
                    (EtherType::VLAN_TAGGED_FRAME, 7, 0),
                ],
                EtherType::IPV4,
                &good4[L3..],
            ),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNotVxlan],
        },
        // ---- uplink: VXLAN for us but bad → dropped
        Case {
            name: "ipv6_version_4_under_ipv6_ethertype_is_dropped",
            how: "good ipv6 vxlan frame, byte 14 patched 0x60 -> 0x40",
            role: Role::Uplink,
            input: {
                let mut f = good6.clone();
                f[L3] = 0x40;
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadIpVersion],
        },
        Case {
            name: "vxlan_with_i_flag_clear_is_dropped",
            how: "vxlan flags 0x00",
            role: Role::Uplink,
            input: {
                let mut p = vxlan(0x00, VNI, 0).to_vec();
                p.extend_from_slice(&inner);
                udp4(&[], REMOTE4, VTEP4, 4789, &p)
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropVxlanNoIFlag],
        },
        Case {
            name: "vxlan_with_unknown_vni_is_dropped",
            how: "vxlan vni 200 (not configured)",
            role: Role::Uplink,
            input: udp4(&[], REMOTE4, VTEP4, 4789, &vxlan_payload(200, &inner)),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropUnknownVni],
        },
        Case {
            name: "frame_ending_inside_the_vlan_tag_is_dropped",
            how: "eth type 0x8100 + 2 bytes of TCI",
            role: Role::Uplink,
            input: {
                let mut f = tagged(&[], EtherType::VLAN_TAGGED_FRAME, &[]);
                f.extend_from_slice(&[0, 5]);
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncVlan],
        },
        Case {
            name: "frame_ending_inside_the_second_vlan_tag_is_dropped",
            how: "eth/802.1ad vid 5 (next 0x8100) + 2 bytes",
            role: Role::Uplink,
            input: {
                let mut f = tagged(
                    &[(EtherType::PROVIDER_BRIDGING, 5, 0)],
                    EtherType::VLAN_TAGGED_FRAME,
                    &[],
                );
                f.extend_from_slice(&[0, 6]);
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncVlan],
        },
        Case {
            name: "ethernet_header_only_with_ipv4_type_is_truncated_ipv4",
            how: "eth type 0x0800, nothing after (14 bytes, the smallest test input)",
            role: Role::Uplink,
            input: tagged(&[], EtherType::IPV4, &[]),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncIpv4],
        },
        Case {
            name: "frame_ending_inside_the_ipv4_header_is_dropped",
            how: "good ipv4 vxlan frame cut to 14 + 10 bytes",
            role: Role::Uplink,
            input: good4[..L3 + 10].to_vec(),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncIpv4],
        },
        Case {
            name: "frame_ending_inside_the_ipv4_options_is_dropped",
            how: "ipv4 IHL 15 frame cut to 14 + 24 bytes",
            role: Role::Uplink,
            input: {
                let mut h = ipv4_header();
                h.options = [1u8; 40].into();
                udp4_with(h, 4789, &vx)[..L3 + 24].to_vec()
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncIpv4],
        },
        Case {
            name: "frame_ending_inside_the_ipv6_header_is_dropped",
            how: "good ipv6 vxlan frame cut to 14 + 30 bytes",
            role: Role::Uplink,
            input: good6[..L3 + 30].to_vec(),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncIpv6],
        },
        Case {
            name: "ipv4_ihl_below_5_is_dropped",
            how: "good ipv4 vxlan frame, byte 14 patched 0x45 -> 0x44",
            role: Role::Uplink,
            input: {
                let mut f = good4.clone();
                f[L3] = 0x44;
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadIhl],
        },
        Case {
            name: "ipv4_version_6_under_ipv4_ethertype_is_dropped",
            how: "good ipv4 vxlan frame, byte 14 patched 0x45 -> 0x65",
            role: Role::Uplink,
            input: {
                let mut f = good4.clone();
                f[L3] = 0x65;
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadIpVersion],
        },
        Case {
            name: "ipv4_total_length_beyond_the_frame_is_dropped",
            how: "good ipv4 vxlan frame, total length (bytes 16..18) + 1",
            role: Role::Uplink,
            input: {
                let mut f = good4.clone();
                let t = u16::from_be_bytes([f[L3 + 2], f[L3 + 3]]) + 1;
                f[L3 + 2..L3 + 4].copy_from_slice(&t.to_be_bytes());
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadIpLen],
        },
        Case {
            name: "ipv4_total_length_below_the_header_is_dropped",
            how: "good ipv4 vxlan frame, total length patched to 19",
            role: Role::Uplink,
            input: {
                let mut f = good4.clone();
                f[L3 + 2..L3 + 4].copy_from_slice(&19u16.to_be_bytes());
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadIpLen],
        },
        Case {
            name: "ipv6_payload_length_beyond_the_frame_is_dropped",
            how: "good ipv6 vxlan frame, payload length (bytes 18..20) + 1",
            role: Role::Uplink,
            input: {
                let mut f = good6.clone();
                let p = u16::from_be_bytes([f[L3 + 4], f[L3 + 5]]) + 1;
                f[L3 + 4..L3 + 6].copy_from_slice(&p.to_be_bytes());
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadIpLen],
        },
        Case {
            name: "ipv4_payload_shorter_than_udp_header_is_dropped",
            how: "eth/ipv4 proto 17 with a 4-byte payload (first half of a udp header)",
            role: Role::Uplink,
            input: ip4_raw(IpNumber::UDP, &udp_hdr(4789, 0)[..4]),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncUdp],
        },
        Case {
            name: "ipv6_payload_shorter_than_udp_header_is_dropped",
            how: "eth/ipv6 next 17 with a 4-byte payload",
            role: Role::Uplink,
            input: ip6_raw(IpNumber::UDP, &udp_hdr(4789, 0)[..4]),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncUdp],
        },
        Case {
            name: "udp_length_beyond_the_ip_payload_is_dropped",
            how: "ipv4 payload = udp vxlan, udp length field + 1",
            role: Role::Uplink,
            input: {
                let mut p = udp_vxlan(4789, VNI, &inner);
                let l = u16::from_be_bytes([p[4], p[5]]) + 1;
                p[4..6].copy_from_slice(&l.to_be_bytes());
                ip4_raw(IpNumber::UDP, &p)
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadUdpLen],
        },
        Case {
            name: "udp_length_below_8_is_dropped",
            how: "ipv4 payload = udp vxlan, udp length field 7",
            role: Role::Uplink,
            input: {
                let mut p = udp_vxlan(4789, VNI, &inner);
                p[4..6].copy_from_slice(&7u16.to_be_bytes());
                ip4_raw(IpNumber::UDP, &p)
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropBadUdpLen],
        },
        Case {
            name: "udp_payload_shorter_than_vxlan_header_is_dropped",
            how: "eth/ipv4/udp 4789 with 4 bytes of vxlan header",
            role: Role::Uplink,
            input: udp4(&[], REMOTE4, VTEP4, 4789, &vxlan(0x08, VNI, 0)[..4]),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncVxlan],
        },
        Case {
            name: "vxlan_payload_shorter_than_ethernet_header_is_dropped",
            how: "eth/ipv4/udp 4789/vxlan vni 100 + first 10 bytes of the inner frame",
            role: Role::Uplink,
            input: udp4(&[], REMOTE4, VTEP4, 4789, &vxlan_payload(VNI, &inner[..10])),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncInner],
        },
        Case {
            name: "ipv6_vxlan_payload_shorter_than_ethernet_header_is_dropped",
            how: "eth/ipv6/udp 4789/vxlan vni 100, no inner frame",
            role: Role::Uplink,
            input: udp6(&[], REMOTE6, VTEP6, 4789, &vxlan_payload(VNI, &[])),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncInner],
        },
        // ---- access ports: every frame switched
        Case {
            name: "access_untagged_frame_switched_to_port_vlan_0",
            how: "eth/ipv4/udp from a VM",
            role: Role::Access,
            input: vm_frame(&[]),
            action: XDrop,
            out: switched(BD_UNTAGGED, 0, 0, vm_frame(&[])),
            counters: &[SwitchedAccess, RedirectFailed],
        },
        Case {
            name: "access_priority_tagged_frame_uses_vlan_0_and_tag_is_popped",
            how: "eth/802.1Q pcp 5 vid 0/ipv4/udp (tag by hand)",
            role: Role::Access,
            input: tagged(
                &[(EtherType::VLAN_TAGGED_FRAME, 0, 5)],
                EtherType::IPV4,
                &vm_ipv4_packet(),
            ),
            action: XDrop,
            out: switched(BD_UNTAGGED, 0, META_F_TAGGED, vm_frame(&[])),
            counters: &[VlanPopped, SwitchedAccess, RedirectFailed],
        },
        Case {
            name: "access_known_vid_switched_and_tag_popped",
            how: "eth/802.1Q vid 10/ipv4/udp",
            role: Role::Access,
            input: vm_frame(&[10]),
            action: XDrop,
            out: switched(BD_VLAN10, 10, META_F_TAGGED, vm_frame(&[])),
            counters: &[VlanPopped, SwitchedAccess, RedirectFailed],
        },
        Case {
            name: "access_8021ad_tag_selects_attachment_and_is_popped",
            how: "eth/802.1ad vid 10/ipv4/udp (tag by hand)",
            role: Role::Access,
            input: tagged(
                &[(EtherType::PROVIDER_BRIDGING, 10, 0)],
                EtherType::IPV4,
                &vm_ipv4_packet(),
            ),
            action: XDrop,
            out: switched(BD_VLAN10, 10, META_F_TAGGED, vm_frame(&[])),
            counters: &[VlanPopped, SwitchedAccess, RedirectFailed],
        },
        Case {
            name: "access_unknown_vid_is_dropped",
            how: "eth/802.1Q vid 20/ipv4/udp",
            role: Role::Access,
            input: vm_frame(&[20]),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropUnknownAttachment],
        },
        Case {
            name: "access_qinq_outer_tag_selects_and_is_popped_inner_stays",
            how: "etherparse double_vlan(100, 10): expected = single_vlan(10) frame",
            role: Role::Access,
            input: vm_frame(&[100, 10]),
            action: XDrop,
            out: switched(
                BD_VLAN100,
                100,
                META_F_TAGGED | META_F_INNER_TAG,
                vm_frame(&[10]),
            ),
            counters: &[VlanPopped, SwitchedAccess, RedirectFailed],
        },
        Case {
            name: "access_qinq_with_unknown_outer_vid_is_dropped",
            how: "etherparse double_vlan(20, 10): inner 10 is known, outer 20 is not",
            role: Role::Access,
            input: vm_frame(&[20, 10]),
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropUnknownAttachment],
        },
        Case {
            name: "access_frame_ending_inside_the_tag_is_dropped",
            how: "eth type 0x8100 + 2 bytes",
            role: Role::Access,
            input: {
                let mut f = tagged(&[], EtherType::VLAN_TAGGED_FRAME, &[]);
                f.extend_from_slice(&[0, 10]);
                f
            },
            action: XDrop,
            out: Out::Unchanged,
            counters: &[DropTruncVlan],
        },
        Case {
            name: "access_14_byte_frame_is_switched",
            how: "bare ethernet header, EtherType 0x88b5",
            role: Role::Access,
            input: tagged(&[], EtherType(0x88b5), &[]),
            action: XDrop,
            out: switched(BD_UNTAGGED, 0, 0, tagged(&[], EtherType(0x88b5), &[])),
            counters: &[SwitchedAccess, RedirectFailed],
        },
        Case {
            name: "access_vxlan_is_switched_not_decapsulated",
            how: "the good ipv4 vxlan frame, received on an access port",
            role: Role::Access,
            input: good4.clone(),
            action: XDrop,
            out: switched(BD_UNTAGGED, 0, 0, good4.clone()),
            counters: &[SwitchedAccess, RedirectFailed],
        },
        // ---- interfaces that are not ports
        Case {
            name: "frame_on_an_interface_that_is_not_a_port_is_passed",
            how: "the good ipv4 vxlan frame, port map entry for the interface removed",
            role: Role::NotAPort,
            input: good4.clone(),
            action: XPass,
            out: Out::Unchanged,
            counters: &[PassNoPort],
        },
    ];
    c.sort_by_key(|case| matches!(case.role, Role::NotAPort));
    c
}

// ----------------------------------------------------------------- runner --

fn configured_classifier() -> Classifier {
    let cls = Classifier::load().unwrap_or_else(|e| panic!("load: {e}"));
    cls.add_local_vtep(VTEP4.into()).unwrap();
    cls.add_local_vtep(VTEP6.into()).unwrap();
    cls.set_vni(VNI, VNI_BD).unwrap();
    cls.set_vni(VNI_BIG, VNI_BIG_BD).unwrap();
    cls.set_attachment(ACCESS_PORT, 0, BD_UNTAGGED).unwrap();
    cls.set_attachment(ACCESS_PORT, 10, BD_VLAN10).unwrap();
    cls.set_attachment(ACCESS_PORT, 100, BD_VLAN100).unwrap();
    cls
}

fn set_role(cls: &Classifier, role: Role) {
    match role {
        Role::Uplink => cls.set_port(LO, PortRole::Uplink, UPLINK_PORT).unwrap(),
        Role::Access => cls.set_port(LO, PortRole::Access, ACCESS_PORT).unwrap(),
        Role::NotAPort => cls.remove_port(LO).unwrap(),
    }
}

/// Runs one case; returns a description of every mismatch.
fn run_case(cls: &Classifier, case: &Case) -> Vec<String> {
    set_role(cls, case.role);
    let before = cls.counters().unwrap();
    let run = cls
        .test_run(&case.input, LO, 0)
        .unwrap_or_else(|e| panic!("{}: test_run: {e}", case.name));
    let moved = cls.counters().unwrap().since(&before);

    let mut errors = Vec::new();
    if run.action != case.action {
        errors.push(format!(
            "action {:?}, expected {:?}",
            run.action, case.action
        ));
    }
    let (want_meta_len, want_data) = match &case.out {
        Out::Unchanged => (0, case.input.clone()),
        Out::Switched { meta, frame } => (32, [meta.as_slice(), frame].concat()),
    };
    if run.meta_len != want_meta_len {
        errors.push(format!(
            "metadata length {}, expected {want_meta_len}",
            run.meta_len
        ));
    }
    if run.data != want_data {
        errors.push(format!(
            "output bytes differ\n   got  {}\n   want {}",
            hex(&run.data),
            hex(&want_data)
        ));
    }
    let mut want_moved: Vec<(Counter, u64)> = case.counters.iter().map(|&c| (c, 1)).collect();
    want_moved.sort();
    if moved.nonzero() != want_moved {
        errors.push(format!(
            "counters moved {:?}, expected {want_moved:?}",
            moved.nonzero()
        ));
    }
    errors
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_crafted_frame_gets_its_action_output_bytes_metadata_and_counter() {
    if !xvs_testkit::privileged(
        "every_crafted_frame_gets_its_action_output_bytes_metadata_and_counter",
    ) {
        return;
    }
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let cls = configured_classifier();
    let mut failures = Vec::new();
    for case in &cases {
        let errors = run_case(&cls, case);
        if !errors.is_empty() {
            failures.push(format!(
                "{} ({}):\n  {}",
                case.name,
                case.how,
                errors.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn vxlan_udp_port_is_configurable() {
    if !xvs_testkit::privileged("vxlan_udp_port_is_configurable") {
        return;
    }
    let cls = configured_classifier();
    cls.set_port(LO, PortRole::Uplink, UPLINK_PORT).unwrap();
    cls.set_vxlan_port(8472).unwrap();
    let inner = inner_frame();
    let vx = vxlan_payload(VNI, &inner);

    let on_8472 = udp4(&[], REMOTE4, VTEP4, 8472, &vx);
    let run = cls.test_run(&on_8472, LO, 0).unwrap();
    assert_eq!(run.action, XdpAction::Drop);
    assert_eq!(
        run.frame(),
        inner.as_slice(),
        "decapsulated on the configured port"
    );

    let on_4789 = udp4(&[], REMOTE4, VTEP4, 4789, &vx);
    let before = cls.counters().unwrap();
    let run = cls.test_run(&on_4789, LO, 0).unwrap();
    assert_eq!(run.action, XdpAction::Pass);
    assert_eq!(run.data, on_4789, "4789 is an ordinary port now");
    assert_eq!(
        cls.counters().unwrap().since(&before).nonzero(),
        vec![(PassNotVxlan, 1)]
    );
}

#[test]
fn removed_vni_and_vtep_stop_decapsulation() {
    if !xvs_testkit::privileged("removed_vni_and_vtep_stop_decapsulation") {
        return;
    }
    let cls = configured_classifier();
    cls.set_port(LO, PortRole::Uplink, UPLINK_PORT).unwrap();
    let frame = udp4(
        &[],
        REMOTE4,
        VTEP4,
        4789,
        &vxlan_payload(VNI, &inner_frame()),
    );
    assert_eq!(cls.test_run(&frame, LO, 0).unwrap().meta_len, 32);

    cls.remove_vni(VNI).unwrap();
    let before = cls.counters().unwrap();
    assert_eq!(cls.test_run(&frame, LO, 0).unwrap().action, XdpAction::Drop);
    assert_eq!(
        cls.counters().unwrap().since(&before).nonzero(),
        vec![(DropUnknownVni, 1)]
    );

    cls.remove_local_vtep(VTEP4.into()).unwrap();
    let run = cls.test_run(&frame, LO, 0).unwrap();
    assert_eq!((run.action, run.data), (XdpAction::Pass, frame));
}

#[test]
fn metadata_parses_back_through_the_public_type() {
    if !xvs_testkit::privileged("metadata_parses_back_through_the_public_type") {
        return;
    }
    let cls = configured_classifier();
    cls.set_port(LO, PortRole::Uplink, UPLINK_PORT).unwrap();
    let frame = udp6(
        &[],
        REMOTE6,
        VTEP6,
        4789,
        &vxlan_payload(VNI_BIG, &inner_frame()),
    );
    let run = cls.test_run(&frame, LO, 0).unwrap();
    let m = run.meta().expect("metadata written");
    assert_eq!(
        (m.bd, m.port_index, m.vni, m.vid),
        (VNI_BIG_BD, UPLINK_PORT, VNI_BIG, 0)
    );
    assert_eq!(m.src_vtep_ip(), Some(REMOTE6.into()));
    assert_eq!(run.frame(), inner_frame().as_slice());
}

#[test]
fn out_of_range_vni_vid_port_and_udp_port_are_rejected_without_touching_maps() {
    if !xvs_testkit::privileged(
        "out_of_range_vni_vid_port_and_udp_port_are_rejected_without_touching_maps",
    ) {
        return;
    }
    let cls = configured_classifier();
    assert!(matches!(
        cls.set_vni(1 << 24, 1),
        Err(xvs_ebpf::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        cls.set_attachment(ACCESS_PORT, 4096, 1),
        Err(xvs_ebpf::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        cls.set_vxlan_port(0),
        Err(xvs_ebpf::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        cls.set_port(LO, PortRole::Access, xvs_ebpf::MAX_PORTS),
        Err(xvs_ebpf::Error::InvalidArgument { .. })
    ));
    // Nothing was written: the loopback is still not a port.
    let run = cls.test_run(&vm_frame(&[]), LO, 0).unwrap();
    assert_eq!(run.action, XdpAction::Pass);
}
