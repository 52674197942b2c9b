//! The explain function on a switch of three access ports, a trunk and an
//! uplink, with one resolved and one unresolved remote VTEP.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use xvs_control::config::Config;

use super::*;
use crate::engine::EncapConfig;
use crate::fdb::{self, FdbConfig, FdbOwner, FdbReplica, Tick};
use crate::rewrite::source_port;
use crate::types::{Attachment, BdId, PortId, Vlan, Vni};

const CONFIG: &str = r#"
[vtep]
local_ips = ["192.0.2.10"]
ttl = 33

[[port]]
name = "eth1"
role = "uplink"

[[port]]
name = "vm1"
role = "access"

[[port]]
name = "vm2"
role = "access"

[[port]]
name = "trunk"
role = "access"

[[bridge_domain]]
name = "blue"
vni = 100
flood = ["192.0.2.1", "192.0.2.2"]
attach = [{ port = "vm1" }, { port = "vm2" }, { port = "trunk", vlan = 10 }]
max_macs = 3
"#;

const UPLINK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xaa]);
const HOP_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xee]);
const VTEP1: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const VTEP2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const BD: BdId = BdId(1);
const NOW: Tick = Tick(10_000);

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 1, i])
}

fn vm(p: u16) -> Attachment {
    Attachment::untagged(PortId(p))
}

fn trunk10() -> Attachment {
    Attachment::tagged(PortId(3), Vlan::new(10).unwrap())
}

struct Switch {
    model: Model,
    engine: Engine,
    owner: FdbOwner,
    learner: FdbReplica,
}

impl Switch {
    fn new() -> Switch {
        let model = Model::from_config(&Config::parse(CONFIG).unwrap()).unwrap();
        let (mut owner, mut reps, _) = fdb::new(FdbConfig::default(), 2);
        owner.set_max_macs(BD, Some(3));
        let learner = reps.pop().unwrap();
        let encap: EncapConfig = model.encap_config(UPLINK_MAC, 1500);
        let mut engine = Engine::new(reps.pop().unwrap(), model.engine_bridge_domains(), encap);
        engine.set_next_hop(VTEP1, Some(HOP_MAC));
        Switch {
            model,
            engine,
            owner,
            learner,
        }
    }

    /// Teaches the owner that `m` lives at `loc`.
    fn learn(&mut self, m: MacAddr, loc: Location) {
        self.learner.learn(BD, m, loc, NOW);
        self.owner.process(NOW);
    }

    fn trace(&self, from: Ingress, frame: &[u8]) -> Trace {
        let meta = FrameMeta {
            bd: BD,
            ingress: from,
        };
        explain(&self.engine, &meta, frame, |s, l, d| {
            Some(self.owner.preview(s, l, d, NOW))
        })
    }

    fn report(&self, t: &Trace) -> TraceReport {
        t.report(
            &self.model,
            |ip| (ip == VTEP1).then(|| HOP_MAC.to_string()),
            Some("eth1"),
        )
    }
}

fn udp(src: MacAddr, dst: MacAddr) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src.octets(), dst.octets())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut v, &[0xab; 20])
        .unwrap();
    v
}

fn sent(t: &Trace) -> Vec<(Egress, Vec<u8>)> {
    t.egress
        .iter()
        .filter_map(|e| e.result.clone().ok().map(|b| (e.egress, b)))
        .collect()
}

#[test]
fn known_unicast_to_a_vtep_shows_the_exact_outer_headers() {
    let mut sw = Switch::new();
    sw.learn(mac(2), Location::Vtep(VTEP1));
    let frame = udp(mac(1), mac(2));
    let t = sw.trace(Ingress::Local(vm(1)), &frame);
    let vxlan = Egress::Vtep {
        ip: VTEP1,
        vni: Vni::new(100).unwrap(),
    };
    assert_eq!(t.decision, Some(Decision::Unicast(vxlan)));
    let out = sent(&t);
    assert_eq!(out.len(), 1);
    let bytes = &out[0].1;
    assert_eq!(bytes.len(), 50 + frame.len());
    let h = PacketHeaders::from_ethernet_slice(bytes).unwrap();
    let eth = h.link.unwrap().ethernet2().unwrap();
    assert_eq!(
        (eth.source, eth.destination),
        (UPLINK_MAC.octets(), HOP_MAC.octets())
    );
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("outer IPv4 expected: {:?}", h.net)
    };
    assert_eq!(
        (ip.source, ip.destination),
        ([192, 0, 2, 10], [192, 0, 2, 1])
    );
    assert_eq!(ip.time_to_live, 33);
    assert!(ip.dont_fragment);
    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    let Some(TransportHeader::Udp(u)) = h.transport else {
        panic!("outer UDP expected")
    };
    assert_eq!(u.destination_port, 4789);
    assert_eq!(u.source_port, source_port(&frame));
    assert_eq!(u.checksum, 0);
    // VXLAN: I flag, VNI 100, then the inner frame untouched.
    assert_eq!(&h.payload.slice()[..8], &[0x08, 0, 0, 0, 0, 0, 100, 0]);
    assert_eq!(&h.payload.slice()[8..], &frame[..]);

    let r = sw.report(&t);
    assert_eq!(r.decision, "unicast");
    assert_eq!(r.lookup.as_ref().unwrap().outcome, "hit");
    assert_eq!(r.learn.as_ref().unwrap().outcome, "learn");
    let e = &r.egress[0];
    assert_eq!(
        (e.to.as_str(), e.port.as_deref()),
        ("vtep 192.0.2.1 vni 100", Some("eth1"))
    );
    let o = e.outer.as_ref().unwrap();
    assert_eq!(o.src_ip, "192.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!((o.ttl, o.df, o.udp_dst, o.vni), (33, true, 4789, 100));
    assert_eq!(o.udp_src, source_port(&frame));
    assert_eq!(o.dst_mac.0, HOP_MAC.octets());
    assert_eq!(e.next_hop.as_deref(), Some("02:00:00:00:00:ee"));
    assert_eq!(e.hex.as_deref(), Some(proto::encode_hex(bytes).as_str()));
}

#[test]
fn flood_from_a_vtep_stays_local_and_from_a_port_reaches_vteps() {
    let sw = Switch::new();
    let frame = udp(mac(1), MacAddr::BROADCAST);
    let t = sw.trace(Ingress::Vtep(VTEP1), &frame);
    assert_eq!(t.decision, Some(Decision::Flood));
    assert_eq!(t.lookup, Some(Lookup::Group));
    let to: Vec<Egress> = t.egress.iter().map(|e| e.egress).collect();
    assert_eq!(
        to,
        vec![
            Egress::Local(vm(1)),
            Egress::Local(vm(2)),
            Egress::Local(trunk10())
        ]
    );
    let r = sw.report(&t);
    assert!(r.reason.contains("split horizon"), "{}", r.reason);

    // From vm1: the other two attachments and both VTEPs; VTEP 2 has no
    // next hop, so that copy is dropped and counted.
    let t = sw.trace(Ingress::Local(vm(1)), &frame);
    assert_eq!(t.egress.len(), 4);
    assert!(!t.egress.iter().any(|e| e.egress == Egress::Local(vm(1))));
    let r = sw.report(&t);
    let v2 = r
        .egress
        .iter()
        .find(|e| e.to.starts_with("vtep 192.0.2.2"))
        .unwrap();
    assert!(!v2.sent);
    assert_eq!(v2.counter.as_deref(), Some("drop_no_next_hop"));
    assert_eq!(v2.next_hop.as_deref(), Some("unknown"));
    assert_eq!(r.egress.iter().filter(|e| e.sent).count(), 3);
    // The copy to the trunk is tagged.
    let tagged = sent(&t)
        .into_iter()
        .find(|(e, _)| *e == Egress::Local(trunk10()))
        .unwrap()
        .1;
    assert_eq!(&tagged[12..16], &[0x81, 0x00, 0, 10]);
    let _ = VTEP2;
}

#[test]
fn unknown_unicast_is_a_miss_and_floods() {
    let sw = Switch::new();
    let t = sw.trace(Ingress::Local(vm(2)), &udp(mac(1), mac(9)));
    assert_eq!(t.lookup, Some(Lookup::Miss));
    assert_eq!(t.decision, Some(Decision::Flood));
    let r = sw.report(&t);
    assert_eq!(r.lookup.unwrap().outcome, "miss");
    assert_eq!(r.decision, "flood");
}

#[test]
fn a_destination_behind_the_ingress_is_a_hairpin_drop() {
    let mut sw = Switch::new();
    sw.learn(mac(2), Location::Local(vm(1)));
    let t = sw.trace(Ingress::Local(vm(1)), &udp(mac(1), mac(2)));
    assert_eq!(t.decision, Some(Decision::Drop(DropReason::Hairpin)));
    assert!(t.egress.is_empty());
    let r = sw.report(&t);
    assert_eq!(
        (r.decision.as_str(), r.counter.as_deref()),
        ("drop", Some("drop_hairpin"))
    );
}

#[test]
fn learning_at_the_cap_is_refused_and_the_trace_changes_nothing() {
    let mut sw = Switch::new();
    for i in 1..=3 {
        sw.learn(mac(i), Location::Local(vm(1)));
    }
    let before = (sw.owner.snapshot(), sw.owner.stats());
    let t = sw.trace(Ingress::Local(vm(2)), &udp(mac(7), mac(1)));
    assert_eq!(
        t.preview.unwrap().learn,
        LearnVerdict::CapReached { max: 3 }
    );
    let r = sw.report(&t);
    let l = r.learn.unwrap();
    assert_eq!(l.outcome, "refused_cap");
    assert!(l.detail.contains("cap of 3"), "{}", l.detail);
    // Still forwarded to the known destination.
    assert_eq!(t.decision, Some(Decision::Unicast(Egress::Local(vm(1)))));
    // Tracing learned, refreshed and counted nothing.
    sw.owner.process(NOW);
    assert_eq!((sw.owner.snapshot(), sw.owner.stats()), before);
    assert_eq!(*sw.engine.counters(), crate::engine::Counters::default());
}

#[test]
fn unicast_to_a_tagged_attachment_pushes_the_tag() {
    let mut sw = Switch::new();
    sw.learn(mac(2), Location::Local(trunk10()));
    let frame = udp(mac(1), mac(2));
    let t = sw.trace(Ingress::Vtep(VTEP1), &frame);
    let out = sent(&t);
    assert_eq!(out.len(), 1);
    let h = PacketHeaders::from_ethernet_slice(&out[0].1).unwrap();
    let Some(etherparse::VlanHeader::Single(v)) = h.vlan else {
        panic!("one tag expected: {:?}", h.vlan)
    };
    assert_eq!(v.vlan_id.value(), 10);
    assert_eq!(out[0].1.len(), frame.len() + 4);
    let r = sw.report(&t);
    assert_eq!(r.egress[0].vlan, Some(10));
    assert_eq!(r.egress[0].to, "trunk vlan 10");
    assert_eq!(r.ingress, "vtep 192.0.2.1");
}

#[test]
fn refusals_before_learning_are_named() {
    let sw = Switch::new();
    let mut frame = udp(mac(1), mac(2));
    frame[6] = 0x01; // group source MAC
    let t = sw.trace(Ingress::Local(vm(1)), &frame);
    assert_eq!(t.refused, Some(Refused::Frame(FrameDrop::BadSrcMac)));
    let r = sw.report(&t);
    assert_eq!(r.counter.as_deref(), Some("drop_bad_src_mac"));
    let meta = FrameMeta {
        bd: BdId(9),
        ingress: Ingress::Local(vm(1)),
    };
    let t = explain(&sw.engine, &meta, &udp(mac(1), mac(2)), |_, _, _| None);
    assert_eq!(t.refused, Some(Refused::Frame(FrameDrop::UnknownBd)));
    // VXLAN from a VTEP outside the flood list: refused, not learned.
    let stranger: IpAddr = "192.0.2.77".parse().unwrap();
    let t = sw.trace(Ingress::Vtep(stranger), &udp(mac(1), mac(2)));
    assert_eq!(t.refused, Some(Refused::UnknownVtep(stranger)));
    assert_eq!(t.preview, None);
    let r = sw.report(&t);
    assert_eq!(r.counter.as_deref(), Some("drop_unknown_vtep"));
}

#[test]
fn a_vxlan_frame_built_for_tracing_carries_the_inner_frame() {
    let inner = udp(mac(1), mac(2));
    let p = EncapParams {
        src_mac: HOP_MAC,
        dst_mac: UPLINK_MAC,
        src_ip: VTEP1,
        dst_ip: "192.0.2.10".parse().unwrap(),
        vni: Vni::new(100).unwrap(),
        dst_port: 4789,
        ttl: 64,
        dont_frag: true,
        mtu: 9000,
    };
    let f = vxlan_frame(&inner, &p).unwrap();
    let o = outer_headers(&f).unwrap();
    assert_eq!((o.src_ip, o.vni, o.udp_dst), (VTEP1, 100, 4789));
    assert_eq!(&f[50..], &inner[..]);
    assert!(summary(&f).contains("VXLAN vni 100"), "{}", summary(&f));
}

#[test]
fn unicast_to_an_ipv6_vtep_has_a_valid_udp_checksum_and_hop_limit() {
    let text = CONFIG
        .replace(
            r#"local_ips = ["192.0.2.10"]"#,
            r#"local_ips = ["2001:db8::10"]"#,
        )
        .replace(
            r#"flood = ["192.0.2.1", "192.0.2.2"]"#,
            r#"flood = ["2001:db8::1"]"#,
        );
    let model = Model::from_config(&Config::parse(&text).unwrap()).unwrap();
    let (mut owner, mut reps, _) = fdb::new(FdbConfig::default(), 2);
    let mut learner = reps.pop().unwrap();
    let mut engine = Engine::new(
        reps.pop().unwrap(),
        model.engine_bridge_domains(),
        model.encap_config(UPLINK_MAC, 1500),
    );
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    engine.set_next_hop(v6, Some(HOP_MAC));
    learner.learn(BD, mac(2), Location::Vtep(v6), NOW);
    owner.process(NOW);
    let frame = udp(mac(1), mac(2));
    let meta = FrameMeta {
        bd: BD,
        ingress: Ingress::Local(vm(1)),
    };
    let t = explain(&engine, &meta, &frame, |s, l, d| {
        Some(owner.preview(s, l, d, NOW))
    });
    let out = sent(&t);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.len(), 70 + frame.len());
    let h = PacketHeaders::from_ethernet_slice(&out[0].1).unwrap();
    let Some(NetHeaders::Ipv6(ip, _)) = &h.net else {
        panic!("outer IPv6 expected: {:?}", h.net)
    };
    assert_eq!(ip.hop_limit, 33);
    assert_eq!(
        ip.source,
        "2001:db8::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    let Some(TransportHeader::Udp(u)) = &h.transport else {
        panic!("outer UDP expected")
    };
    assert_eq!(
        u.checksum,
        u.calc_checksum_ipv6(ip, h.payload.slice()).unwrap()
    );
    let o = outer_headers(&out[0].1).unwrap();
    assert_eq!((o.dst_ip, o.ttl, o.df), (v6, 33, false));
    assert_ne!(o.udp_checksum, 0);
}
