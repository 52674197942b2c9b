//! The worker pipeline end to end, in memory: frames through learn → lookup
//! → decide → rewrite, the output checked with etherparse (an independent
//! parser), the drops with the counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Ethernet2Header, Ipv4Header, Ipv6Header, SingleVlanHeader, UdpHeader};
use xvs_dataplane::bridge::{BridgeDomain, BridgeDomains};
use xvs_dataplane::decide::{Egress, FrameMeta, Ingress};
use xvs_dataplane::engine::{EncapConfig, Engine, MemTx};
use xvs_dataplane::fdb::{self, FdbConfig, FdbKey, FdbOwner, Tick};
use xvs_dataplane::fixtures::{in_buffer, mac, udp_frame, HEADROOM};
use xvs_dataplane::types::{Attachment, BdId, Location, MacAddr, PortId, Vlan, Vni};

const BD: BdId = BdId(1);
const UPLINK_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
const NEXT_HOP: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 1]);

fn v4(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))
}

fn v6(i: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
}

fn vni() -> Vni {
    Vni::new(100).unwrap()
}

fn access(p: u16) -> Attachment {
    Attachment::untagged(PortId(p))
}

fn trunk(p: u16, v: u16) -> Attachment {
    Attachment::tagged(PortId(p), Vlan::new(v).unwrap())
}

/// An owner and `workers` engines over a BD with attachments port 1
/// (untagged), port 2 VLAN 10, and VTEPs 192.0.2.1, 192.0.2.2, 2001:db8::1.
fn setup(workers: usize, config: FdbConfig) -> (FdbOwner, Vec<Engine>) {
    let (owner, replicas, _control) = fdb::new(config, workers);
    let mut bd = BridgeDomain::new(BD, Some(vni()));
    bd.attachments = vec![access(1), trunk(2, 10)];
    bd.flood = vec![v4(1), v4(2), v6(1)];
    let mut bds = BridgeDomains::new();
    bds.insert(bd);
    let encap = EncapConfig {
        src_mac: UPLINK_MAC,
        local_v4: Some(Ipv4Addr::new(192, 0, 2, 10)),
        local_v6: Some("2001:db8::10".parse().unwrap()),
        ..EncapConfig::default()
    };
    let engines = replicas
        .into_iter()
        .map(|r| {
            let mut e = Engine::new(r, bds.clone(), encap);
            for ip in [v4(1), v4(2), v6(1)] {
                e.set_next_hop(ip, Some(NEXT_HOP));
            }
            e
        })
        .collect();
    (owner, engines)
}

fn from(a: Attachment) -> FrameMeta {
    FrameMeta {
        bd: BD,
        ingress: Ingress::Local(a),
    }
}

fn from_vtep(ip: IpAddr) -> FrameMeta {
    FrameMeta {
        bd: BD,
        ingress: Ingress::Vtep(ip),
    }
}

/// Checks an encapsulated frame with etherparse: outer Ethernet, IPv4 with a
/// correct header checksum and UDP checksum 0, or IPv6 with a correct UDP
/// checksum; VXLAN with the I flag and VNI; returns the inner frame.
fn check_vxlan(out: &[u8], dst_ip: IpAddr) -> Vec<u8> {
    let (eth, rest) = Ethernet2Header::from_slice(out).expect("outer Ethernet");
    assert_eq!(eth.destination, NEXT_HOP.0);
    assert_eq!(eth.source, UPLINK_MAC.0);
    let (udp, payload) = match dst_ip {
        IpAddr::V4(dst) => {
            let (ip, rest) = Ipv4Header::from_slice(rest).expect("outer IPv4");
            assert_eq!(ip.destination, dst.octets());
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            assert!(ip.dont_fragment);
            assert_eq!(ip.time_to_live, 64);
            assert_eq!(usize::from(ip.total_len), out.len() - 14);
            let (udp, payload) = UdpHeader::from_slice(rest).expect("outer UDP");
            assert_eq!(udp.checksum, 0);
            (udp, payload)
        }
        IpAddr::V6(dst) => {
            let (ip, rest) = Ipv6Header::from_slice(rest).expect("outer IPv6");
            assert_eq!(ip.destination, dst.octets());
            assert_eq!(ip.hop_limit, 64);
            let (udp, payload) = UdpHeader::from_slice(rest).expect("outer UDP");
            assert_eq!(udp.checksum, udp.calc_checksum_ipv6(&ip, payload).unwrap());
            assert_ne!(udp.checksum, 0);
            (udp, payload)
        }
    };
    assert_eq!(udp.destination_port, 4789);
    assert!(udp.source_port >= 49152);
    assert_eq!(usize::from(udp.length), 8 + payload.len());
    assert_eq!(payload[0], 0x08, "VXLAN I flag");
    let got_vni = u32::from_be_bytes([0, payload[4], payload[5], payload[6]]);
    assert_eq!(got_vni, vni().get());
    payload[8..].to_vec()
}

#[test]
fn known_unicast_to_a_vtep_is_encapsulated() {
    let (mut owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    // The remote host speaks first, from VTEP 192.0.2.2.
    let reply = udp_frame(mac(2), mac(1), 7, 64);
    let mut buf = in_buffer(&reply);
    e.begin_batch(Tick(1));
    e.process(&from_vtep(v4(2)), &mut buf, HEADROOM, 64, &mut tx);
    owner.process(Tick(1));
    // Now the local host's frame to it is known unicast.
    tx.clear();
    let frame = udp_frame(mac(1), mac(2), 1000, 64);
    let mut buf = in_buffer(&frame);
    let v = e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert!(v.consumed);
    assert_eq!(v.sent, 1);
    assert_eq!(tx.sent.len(), 1);
    let s = tx.sent[0];
    assert_eq!(
        s.egress,
        Egress::Vtep {
            ip: v4(2),
            vni: vni()
        }
    );
    assert_eq!((s.start, s.len), (HEADROOM - 50, 114));
    let inner = check_vxlan(tx.frame(&s, &buf), v4(2));
    assert_eq!(inner, frame);
    assert_eq!(e.counters().unicast, 1);
    assert_eq!(e.counters().learned, 2);
    assert_eq!(e.counters().drops(), 0);
}

#[test]
fn known_unicast_over_ipv6_has_a_valid_udp_checksum() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    let mut buf = in_buffer(&udp_frame(mac(2), mac(1), 7, 64));
    e.process(&from_vtep(v6(1)), &mut buf, HEADROOM, 64, &mut tx);
    tx.clear();
    let frame = udp_frame(mac(1), mac(2), 1000, 300);
    let mut buf = in_buffer(&frame);
    e.process(&from(access(1)), &mut buf, HEADROOM, 300, &mut tx);
    let s = tx.sent[0];
    assert_eq!(s.len, 300 + 70);
    assert_eq!(check_vxlan(tx.frame(&s, &buf), v6(1)), frame);
}

#[test]
fn decap_to_a_tagged_attachment_pushes_the_vlan() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    let mut buf = in_buffer(&udp_frame(mac(3), mac(9), 7, 64));
    e.process(&from(trunk(2, 10)), &mut buf, HEADROOM, 64, &mut tx);
    tx.clear();
    let frame = udp_frame(mac(4), mac(3), 5, 64);
    let mut buf = in_buffer(&frame);
    let v = e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(v.sent, 1);
    let s = tx.sent[0];
    assert_eq!(s.egress, Egress::Local(trunk(2, 10)));
    let out = tx.frame(&s, &buf);
    assert_eq!(out.len(), 68);
    let (eth, rest) = Ethernet2Header::from_slice(out).unwrap();
    assert_eq!(eth.ether_type.0, 0x8100);
    assert_eq!(eth.destination, mac(3).0);
    assert_eq!(eth.source, mac(4).0);
    let (tag, rest) = SingleVlanHeader::from_slice(rest).unwrap();
    assert_eq!(tag.vlan_id.value(), 10);
    assert_eq!(tag.ether_type.0, 0x0800);
    assert_eq!(rest, &frame[14..]);
}

#[test]
fn a_frame_over_the_tagged_ports_mtu_is_dropped_not_tagged() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    e.set_port_mtu(PortId(2), Some(100));
    let mut tx = MemTx::new(8, 2048);
    let mut buf = in_buffer(&udp_frame(mac(3), mac(9), 7, 64));
    e.process(&from(trunk(2, 10)), &mut buf, HEADROOM, 64, &mut tx);
    // 114 bytes = 100 after the Ethernet header: fits, tagged to 118 (the
    // tag is not counted against the MTU); 115 does not fit.
    for (len, ok) in [(114, true), (115, false)] {
        tx.clear();
        let frame = udp_frame(mac(4), mac(3), 5, len);
        let mut buf = in_buffer(&frame);
        let v = e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, len, &mut tx);
        assert_eq!(v.consumed, ok, "{len}");
        if ok {
            let out = tx.frame(&tx.sent[0], &buf);
            assert_eq!(out.len(), len + 4);
            let (eth, rest) = Ethernet2Header::from_slice(out).unwrap();
            assert_eq!(eth.ether_type.0, 0x8100);
            let (tag, rest) = SingleVlanHeader::from_slice(rest).unwrap();
            assert_eq!(tag.vlan_id.value(), 10);
            assert_eq!(rest, &frame[14..]);
        } else {
            assert!(tx.sent.is_empty());
        }
    }
    assert_eq!(e.counters().drop_mtu, 1);
    // A flood: the untagged copy goes, the tagged one is dropped and counted.
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(4), MacAddr::BROADCAST, 5, 115));
    let v = e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, 115, &mut tx);
    assert_eq!(v.sent, 1);
    assert_eq!(tx.sent[0].egress, Egress::Local(access(1)));
    assert_eq!(tx.sent[0].len, 115);
    assert_eq!(e.counters().drop_mtu, 2);
    // Another port's MTU does not apply; forgetting it lifts the check.
    e.set_port_mtu(PortId(1), Some(60));
    e.set_port_mtu(PortId(2), None);
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(4), mac(3), 5, 1500));
    let v = e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, 1500, &mut tx);
    assert!(v.consumed);
    assert_eq!(tx.sent[0].len, 1504);
    assert_eq!(e.counters().drop_mtu, 2);
}

#[test]
fn a_frame_over_an_untagged_ports_mtu_is_counted_not_sent() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    e.set_port_mtu(PortId(1), Some(100));
    e.set_port_mtu(PortId(2), Some(9000));
    let mut tx = MemTx::new(8, 2048);
    // A flood from a VTEP (decapsulated from a larger underlay): 114 bytes
    // (100 after the Ethernet header) leave the untagged port, 115 do not;
    // the tagged port's larger MTU lets both through.
    for (len, untagged_ok) in [(114, true), (115, false)] {
        tx.clear();
        let mut buf = in_buffer(&udp_frame(mac(4), MacAddr::BROADCAST, 5, len));
        let v = e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, len, &mut tx);
        let to_access: Vec<_> = tx
            .sent
            .iter()
            .filter(|s| s.egress == Egress::Local(access(1)))
            .collect();
        assert_eq!(to_access.len(), usize::from(untagged_ok), "{len}");
        if untagged_ok {
            assert_eq!(to_access[0].len, len);
        }
        assert!(tx
            .sent
            .iter()
            .any(|s| s.egress == Egress::Local(trunk(2, 10))));
        assert_eq!(v.sent, 1 + u32::from(untagged_ok), "{len}");
    }
    assert_eq!(e.counters().drop_mtu, 1);
}

#[test]
fn bum_from_local_floods_everywhere_else_and_from_a_vtep_stays_local() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    let frame = udp_frame(mac(1), MacAddr::BROADCAST, 1, 64);
    let mut buf = in_buffer(&frame);
    let v = e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    // Port 2 VLAN 10 and three VTEPs; never back to port 1.
    assert_eq!(v.sent, 4);
    assert!(v.consumed);
    let mut vteps = Vec::new();
    for s in &tx.sent {
        let out = tx.frame(s, &buf);
        match s.egress {
            Egress::Local(a) => {
                assert_eq!(a, trunk(2, 10));
                assert_eq!(out.len(), 68);
            }
            Egress::Vtep { ip, .. } => {
                assert_eq!(check_vxlan(out, ip), frame);
                vteps.push(ip);
            }
        }
    }
    vteps.sort();
    assert_eq!(vteps, vec![v4(1), v4(2), v6(1)]);

    // Unknown unicast from a VTEP: local attachments only (split horizon).
    tx.clear();
    let frame = udp_frame(mac(7), mac(99), 1, 64);
    let mut buf = in_buffer(&frame);
    let v = e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(v.sent, 2);
    assert!(tx.sent.iter().all(|s| matches!(s.egress, Egress::Local(_))));
    assert_eq!(e.counters().flooded, 2);
}

#[test]
fn flood_copies_are_dropped_and_counted_when_frames_run_out() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(1, 2048);
    let mut buf = in_buffer(&udp_frame(mac(1), MacAddr::BROADCAST, 1, 64));
    let v = e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    // Four destinations, one spare: one copy plus the original.
    assert_eq!(v.sent, 2);
    assert_eq!(e.counters().drop_no_frame, 2);
}

#[test]
fn a_new_mac_forwards_from_the_next_frame_on_the_same_worker() {
    let (_owner, mut engines) = setup(2, FdbConfig::default());
    let mut tx = MemTx::new(8, 2048);
    // Worker 0 learns mac(5) behind VTEP 1; the owner has not run.
    let mut buf = in_buffer(&udp_frame(mac(5), mac(6), 1, 64));
    engines[0].process(&from_vtep(v4(1)), &mut buf, HEADROOM, 64, &mut tx);
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(6), mac(5), 1, 64));
    engines[0].process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(tx.sent.len(), 1, "known unicast at once");
    // Worker 1 has not heard yet: it floods.
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(6), mac(5), 1, 64));
    engines[1].process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(tx.sent.len(), 4);
}

#[test]
fn invalid_sources_are_dropped_and_not_learned() {
    let (mut owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    for src in [
        MacAddr::ZERO,
        MacAddr::BROADCAST,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
    ] {
        let mut buf = in_buffer(&udp_frame(src, mac(1), 1, 64));
        let v = e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
        assert_eq!(v.sent, 0);
        assert!(!v.consumed);
    }
    assert_eq!(e.counters().drop_bad_src_mac, 3);
    assert_eq!(owner.process(Tick(0)), 0);
    assert!(e.replica().is_empty());
}

#[test]
fn runts_bad_ranges_unknown_bds_and_hairpins_are_counted() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    let frame = udp_frame(mac(1), mac(2), 1, 64);
    let mut buf = in_buffer(&frame);
    e.process(&from(access(1)), &mut buf, HEADROOM, 13, &mut tx);
    e.process(&from(access(1)), &mut buf, 2000, 64, &mut tx);
    e.process(&from(access(1)), &mut buf, usize::MAX, 64, &mut tx);
    let other_bd = FrameMeta {
        bd: BdId(9),
        ingress: Ingress::Local(access(1)),
    };
    e.process(&other_bd, &mut buf, HEADROOM, 64, &mut tx);
    // mac(2) learned on port 1, then a frame from port 1 to it.
    let mut b2 = in_buffer(&udp_frame(mac(2), mac(1), 1, 64));
    e.process(&from(access(1)), &mut b2, HEADROOM, 64, &mut tx);
    tx.clear();
    let v = e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(v.sent, 0);
    let c = e.counters();
    assert_eq!(c.drop_runt, 1);
    assert_eq!(c.drop_bad_range, 2);
    assert_eq!(c.drop_unknown_bd, 1);
    assert_eq!(c.drop_hairpin, 1);
}

#[test]
fn over_mtu_and_unresolved_vteps_are_counted() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 4096);
    let mut buf = in_buffer(&udp_frame(mac(2), mac(1), 1, 64));
    e.process(&from_vtep(v4(1)), &mut buf, HEADROOM, 64, &mut tx);
    // 1464 + 36 = 1500 fits the default MTU; 1465 does not.
    for (len, ok) in [(1464, true), (1465, false)] {
        tx.clear();
        let mut buf = in_buffer(&udp_frame(mac(1), mac(2), 1, len));
        let v = e.process(&from(access(1)), &mut buf, HEADROOM, len, &mut tx);
        assert_eq!(v.consumed, ok, "{len}");
    }
    assert_eq!(e.counters().drop_mtu, 1);
    e.set_next_hop(v4(1), None);
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(1), mac(2), 1, 64));
    let v = e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert!(!v.consumed);
    assert_eq!(e.counters().drop_no_next_hop, 1);
    let mut cfg = *e.encap_config();
    cfg.local_v4 = None;
    e.set_encap_config(cfg);
    e.set_next_hop(v4(1), Some(NEXT_HOP));
    e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(e.counters().drop_no_local_addr, 1);
    // Too little headroom for the outer headers.
    let mut small = vec![0u8; 40 + 64];
    small[40..].copy_from_slice(&udp_frame(mac(1), mac(2), 1, 64));
    cfg.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 10));
    e.set_encap_config(cfg);
    e.process(&from(access(1)), &mut small, 40, 64, &mut tx);
    assert_eq!(e.counters().drop_no_headroom, 1);
}

#[test]
fn statics_pin_a_mac_against_learning() {
    let (mut owner, mut engines) = setup(1, FdbConfig::default());
    owner
        .static_add(FdbKey::new(BD, mac(2)), Location::Vtep(v4(2)), Tick(0))
        .unwrap();
    let e = &mut engines[0];
    e.begin_batch(Tick(0));
    let mut tx = MemTx::new(8, 2048);
    // mac(2) shows up locally (spoofed or moved): the static wins.
    let mut buf = in_buffer(&udp_frame(mac(2), mac(1), 1, 64));
    e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(e.counters().learn_static, 1);
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(1), mac(2), 1, 64));
    e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(
        tx.sent[0].egress,
        Egress::Vtep {
            ip: v4(2),
            vni: vni()
        }
    );
}

#[test]
fn vxlan_from_a_vtep_off_the_flood_list_is_dropped_and_not_learned() {
    let (mut owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    let mut tx = MemTx::new(8, 2048);
    // 192.0.2.66 and 2001:db8::66 are no VTEPs of the BD: dropped before
    // learning, whatever the destination.
    for (i, ip) in [v4(66), v6(0x66)].into_iter().enumerate() {
        for dst in [mac(1), MacAddr::BROADCAST] {
            let mut buf = in_buffer(&udp_frame(mac(40 + i as u32), dst, 1, 64));
            let v = e.process(&from_vtep(ip), &mut buf, HEADROOM, 64, &mut tx);
            assert_eq!((v.sent, v.consumed), (0, false));
        }
    }
    assert!(tx.sent.is_empty());
    assert_eq!(e.counters().drop_unknown_vtep, 4);
    assert_eq!(e.counters().learned, 0);
    assert_eq!(owner.process(Tick(0)), 0);
    assert!(e.replica().is_empty());
    // A flood-list VTEP of either family is accepted and learned.
    for ip in [v4(2), v6(1)] {
        let mut buf = in_buffer(&udp_frame(mac(50), MacAddr::BROADCAST, 1, 64));
        let v = e.process(&from_vtep(ip), &mut buf, HEADROOM, 64, &mut tx);
        assert!(v.sent > 0, "from {ip}");
    }
    assert_eq!(e.counters().drop_unknown_vtep, 4);
    // The opt-in: the same unknown VTEP is now accepted and learned.
    let mut bd = e.bridge_domains_mut().get(BD).unwrap().clone();
    bd.learn_from_any_vtep = true;
    e.bridge_domains_mut().insert(bd);
    tx.clear();
    let mut buf = in_buffer(&udp_frame(mac(40), MacAddr::BROADCAST, 1, 64));
    let v = e.process(&from_vtep(v4(66)), &mut buf, HEADROOM, 64, &mut tx);
    assert_eq!(v.sent, 2, "flooded to the two local attachments");
    assert_eq!(e.counters().drop_unknown_vtep, 4);
    assert_eq!(
        e.replica().lookup(BD, mac(40)),
        Some(Location::Vtep(v4(66)))
    );
}

#[test]
fn storm_control_bounds_floods_per_bridge_domain_only() {
    let (_owner, mut engines) = setup(1, FdbConfig::default());
    let e = &mut engines[0];
    // BD 1 floods at most 1000 frames/s (bursts of 100); BD 2, on port 3,
    // has no limit.
    let mut bd = e.bridge_domains_mut().get(BD).unwrap().clone();
    bd.storm_pps = Some(1000);
    e.bridge_domains_mut().insert(bd);
    let mut other = BridgeDomain::new(BdId(2), Vni::new(200));
    other.attachments = vec![access(3), access(4)];
    e.bridge_domains_mut().insert(other);
    let in_other = FrameMeta {
        bd: BdId(2),
        ingress: Ingress::Local(access(3)),
    };
    let mut tx = MemTx::new(8, 2048);
    // mac(2) is known behind port 2 VLAN 10.
    let mut buf = in_buffer(&udp_frame(mac(2), mac(9), 1, 64));
    e.begin_batch(Tick(0));
    e.process(&from(trunk(2, 10)), &mut buf, HEADROOM, 64, &mut tx);
    let base = *e.counters();
    let (mut flooded, mut other_sent, mut unicast) = (0, 0, 0);
    // 2 s of a storm at 10 frames per millisecond, interleaved with one
    // broadcast in BD 2 and one known unicast in BD 1 per millisecond.
    for t in 1..=2000u64 {
        e.begin_batch(Tick(t));
        for i in 0..10 {
            tx.clear();
            let mut buf = in_buffer(&udp_frame(mac(1), MacAddr::BROADCAST, i, 64));
            if e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx)
                .sent
                > 0
            {
                flooded += 1;
            }
        }
        tx.clear();
        let mut buf = in_buffer(&udp_frame(mac(7), MacAddr::BROADCAST, 1, 64));
        other_sent += e.process(&in_other, &mut buf, HEADROOM, 64, &mut tx).sent;
        tx.clear();
        let mut buf = in_buffer(&udp_frame(mac(1), mac(2), 1, 64));
        unicast += e
            .process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx)
            .sent;
    }
    // One burst plus 1000 per second.
    assert!((2000..=2100).contains(&flooded), "{flooded} floods passed");
    assert_eq!(e.counters().drop_storm, 20_000 - flooded);
    assert_eq!(e.counters().flooded - base.flooded, flooded + 2000);
    assert_eq!(other_sent, 2000, "BD 2 floods everything");
    assert_eq!(unicast, 2000, "known unicast is never limited");
    // An idle second later, a full burst again.
    e.begin_batch(Tick(3000));
    let passed = (0..1000)
        .filter(|&i| {
            tx.clear();
            let mut buf = in_buffer(&udp_frame(mac(1), MacAddr::BROADCAST, i, 64));
            e.process(&from(access(1)), &mut buf, HEADROOM, 64, &mut tx)
                .sent
                > 0
        })
        .count();
    assert_eq!(passed, 100);
}
