//! The replica numbers remote VTEPs and the engine finds encapsulation
//! templates by number: numbers are freed with their last MAC and reused,
//! and a reused number never sends frames to the VTEP it used to name.
//! Outputs are checked with etherparse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use etherparse::{Ethernet2Header, Ipv4Header, Ipv6Header};
use xvs_dataplane::bridge::{BridgeDomain, BridgeDomains};
use xvs_dataplane::decide::{Egress, FrameMeta, Ingress};
use xvs_dataplane::engine::{EncapConfig, Engine, MemTx};
use xvs_dataplane::fdb::{self, FdbConfig, FdbOwner, Tick};
use xvs_dataplane::fixtures::{in_buffer, mac, udp_frame, HEADROOM};
use xvs_dataplane::types::{Attachment, BdId, MacAddr, PortId, Vni};

const BD: BdId = BdId(1);
const UPLINK_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);

fn v4(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))
}

fn v6(i: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
}

/// The next-hop MAC of VTEP `ip`: distinct per VTEP, so a frame's outer
/// Ethernet header says which template it got.
fn next_hop(ip: IpAddr) -> MacAddr {
    let o = match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15] | 0x80,
    };
    MacAddr([0x02, 0xbb, 0, 0, 0, o])
}

fn access() -> Attachment {
    Attachment::untagged(PortId(1))
}

/// One engine over a BD with VNI 100, port 1 and `vteps` on its flood list
/// (or accepting any VTEP), next hops for all of them unless `resolved` is
/// false.
fn setup(config: FdbConfig, vteps: &[IpAddr], any_vtep: bool) -> (FdbOwner, Engine) {
    let (owner, mut replicas, _control) = fdb::new(config, 1);
    let mut bd = BridgeDomain::new(BD, Vni::new(100));
    bd.attachments = vec![access()];
    bd.flood = vteps.to_vec();
    bd.learn_from_any_vtep = any_vtep;
    let mut bds = BridgeDomains::new();
    bds.insert(bd);
    let encap = EncapConfig {
        src_mac: UPLINK_MAC,
        local_v4: Some(Ipv4Addr::new(192, 0, 2, 200)),
        local_v6: Some("2001:db8::200".parse().unwrap()),
        ..EncapConfig::default()
    };
    let replica = replicas.pop().unwrap();
    let mut e = Engine::new(replica, bds, encap);
    for &ip in vteps {
        e.set_next_hop(ip, Some(next_hop(ip)));
    }
    (owner, e)
}

fn from_vtep(ip: IpAddr) -> FrameMeta {
    FrameMeta {
        bd: BD,
        ingress: Ingress::Vtep(ip),
    }
}

fn from_access() -> FrameMeta {
    FrameMeta {
        bd: BD,
        ingress: Ingress::Local(access()),
    }
}

/// A frame from `src` (behind VTEP `ip`) to a local host: learns `src`
/// behind `ip`.
fn hear_from(e: &mut Engine, ip: IpAddr, src: MacAddr) {
    let mut tx = MemTx::new(4, 2048);
    let mut buf = in_buffer(&udp_frame(src, mac(1), 7, 64));
    e.process(&from_vtep(ip), &mut buf, HEADROOM, 64, &mut tx);
}

/// Sends a local frame to `dst`; returns where it went and its outer
/// destination (next-hop MAC, IP) when encapsulated.
fn send_to(e: &mut Engine, dst: MacAddr) -> Vec<(Egress, Option<(MacAddr, IpAddr)>)> {
    let mut tx = MemTx::new(8, 2048);
    let frame = udp_frame(mac(1), dst, 1000, 64);
    let mut buf = in_buffer(&frame);
    e.process(&from_access(), &mut buf, HEADROOM, 64, &mut tx);
    tx.sent
        .iter()
        .map(|s| {
            let out = tx.frame(s, &buf);
            let outer = match s.egress {
                Egress::Vtep { .. } => {
                    let (eth, rest) = Ethernet2Header::from_slice(out).expect("outer Ethernet");
                    let ip = if eth.ether_type.0 == 0x0800 {
                        let (ip, _) = Ipv4Header::from_slice(rest).expect("outer IPv4");
                        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                        IpAddr::V4(ip.destination.into())
                    } else {
                        let (ip, _) = Ipv6Header::from_slice(rest).expect("outer IPv6");
                        IpAddr::V6(ip.destination.into())
                    };
                    assert_eq!(&out[out.len() - 64..], &frame[..], "inner frame");
                    Some((MacAddr(eth.destination), ip))
                }
                Egress::Local(_) => None,
            };
            (s.egress, outer)
        })
        .collect()
}

fn unicast_to(ip: IpAddr) -> Vec<(Egress, Option<(MacAddr, IpAddr)>)> {
    vec![(
        Egress::Vtep {
            ip,
            vni: Vni::new(100).unwrap(),
        },
        Some((next_hop(ip), ip)),
    )]
}

#[test]
fn a_reused_vtep_number_encapsulates_to_the_new_vtep_after_ageing() {
    let config = FdbConfig {
        ageing: Duration::from_secs(300),
        ..FdbConfig::default()
    };
    let (mut owner, mut e) = setup(config, &[v4(1), v4(2)], false);
    let (a, b) = (mac(10), mac(11));
    e.begin_batch(Tick(1));
    hear_from(&mut e, v4(1), a);
    owner.process(Tick(1));
    let n1 = e.replica().vtep_number(v4(1)).expect("VTEP 1 numbered");
    assert_eq!(send_to(&mut e, a), unicast_to(v4(1)));

    // A ages out: VTEP 1 has no MAC left and loses its number.
    assert_eq!(owner.age(Tick(1).after(Duration::from_secs(301))), 1);
    e.begin_batch(Tick(2));
    assert_eq!(e.replica().vtep_number(v4(1)), None);
    assert_eq!(e.replica().lookup(BD, a), None);

    // B behind VTEP 2 gets the freed number, learned mid-batch (no
    // begin_batch between the learn and the lookup).
    hear_from(&mut e, v4(2), b);
    assert_eq!(e.replica().vtep_number(v4(2)), Some(n1), "number reused");
    assert_eq!(e.replica().vtep_capacity(), 1);
    assert_eq!(send_to(&mut e, b), unicast_to(v4(2)));
    // A is unknown: flooded to both VTEPs and nowhere else.
    let flood = send_to(&mut e, a);
    assert_eq!(flood.len(), 2);
    assert!(flood.contains(&unicast_to(v4(1))[0]));
    assert!(flood.contains(&unicast_to(v4(2))[0]));
    assert_eq!(e.counters().drops(), 0);
}

#[test]
fn a_reused_vtep_number_encapsulates_to_the_new_vtep_after_a_flush_or_a_move() {
    let (mut owner, mut e) = setup(FdbConfig::default(), &[v4(1), v4(2), v6(3)], false);
    e.begin_batch(Tick(1));
    hear_from(&mut e, v4(1), mac(10));
    owner.process(Tick(1));
    let n1 = e.replica().vtep_number(v4(1)).unwrap();

    // Flushed through the owner, then a MAC behind an IPv6 VTEP.
    assert_eq!(owner.flush(Some(BD)), 1);
    e.begin_batch(Tick(2));
    assert!(e.replica().is_empty());
    hear_from(&mut e, v6(3), mac(20));
    assert_eq!(e.replica().vtep_number(v6(3)), Some(n1));
    assert_eq!(send_to(&mut e, mac(20)), unicast_to(v6(3)));
    owner.process(Tick(2));
    e.begin_batch(Tick(3));

    // The MAC moves to VTEP 2: VTEP 3 is left without MACs and loses its
    // number, which the next new VTEP gets, within the batch.
    hear_from(&mut e, v4(2), mac(20));
    assert_eq!(e.replica().vtep_number(v6(3)), None);
    let n2 = e.replica().vtep_number(v4(2)).unwrap();
    assert_ne!(n2, n1);
    assert_eq!(send_to(&mut e, mac(20)), unicast_to(v4(2)));
    assert_eq!(e.counters().moved, 1);
    hear_from(&mut e, v4(1), mac(21));
    assert_eq!(e.replica().vtep_number(v4(1)), Some(n1));
    assert_eq!(send_to(&mut e, mac(21)), unicast_to(v4(1)));
    assert_eq!(send_to(&mut e, mac(20)), unicast_to(v4(2)));
    assert_eq!(e.replica().vtep_capacity(), 2);
    // The owner agrees; after its updates the replica still does.
    owner.process(Tick(3));
    e.begin_batch(Tick(4));
    assert_eq!(send_to(&mut e, mac(20)), unicast_to(v4(2)));
    assert_eq!(e.replica().snapshot(), owner.snapshot());
}

#[test]
fn a_vtep_numbered_before_its_next_hop_gets_its_template_when_resolved() {
    let (mut owner, mut e) = setup(FdbConfig::default(), &[v4(1)], true);
    e.begin_batch(Tick(1));
    // VTEP 9 is not on the flood list (learn_from_any_vtep) and has no
    // next hop yet.
    hear_from(&mut e, v4(9), mac(30));
    owner.process(Tick(1));
    assert!(e.replica().vtep_number(v4(9)).is_some());
    assert_eq!(send_to(&mut e, mac(30)), vec![]);
    assert_eq!(e.counters().drop_no_next_hop, 1);

    e.set_next_hop(v4(9), Some(next_hop(v4(9))));
    assert_eq!(send_to(&mut e, mac(30)), unicast_to(v4(9)));

    // Lost again: dropped again, counted.
    e.set_next_hop(v4(9), None);
    assert_eq!(send_to(&mut e, mac(30)), vec![]);
    assert_eq!(e.counters().drop_no_next_hop, 2);

    // New settings rebuild the template of a numbered VTEP too: without an
    // IPv4 address of ours, the drop says so.
    e.set_next_hop(v4(9), Some(next_hop(v4(9))));
    let mut encap = *e.encap_config();
    encap.local_v4 = None;
    e.set_encap_config(encap);
    assert_eq!(send_to(&mut e, mac(30)), vec![]);
    assert_eq!(e.counters().drop_no_local_addr, 1);
    encap.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 200));
    e.set_encap_config(encap);
    assert_eq!(send_to(&mut e, mac(30)), unicast_to(v4(9)));
}

#[test]
fn a_hostile_underlay_cannot_grow_the_vtep_numbers_past_the_mac_cap() {
    // Every frame from a new VTEP with a new MAC; the BD accepts any VTEP
    // and caps learned MACs at 64. Ageing and flushes come and go.
    let config = FdbConfig {
        default_max_macs: Some(64),
        ..FdbConfig::default()
    };
    let (mut owner, mut e) = setup(config, &[v4(1)], true);
    let mut now = Tick(1);
    e.begin_batch(now);
    let mut peak = 0;
    for n in 0..20_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        hear_from(&mut e, ip, mac(1000 + n));
        peak = peak.max(e.replica().len());
        if n % 16 == 15 {
            owner.process(now);
            e.begin_batch(now);
        }
        if n % 1000 == 999 {
            now = now.after(Duration::from_secs(400));
            owner.age(now);
            owner.process(now);
            e.begin_batch(now);
        }
    }
    owner.process(now);
    e.begin_batch(now);
    assert!(e.replica().len() <= 64, "{}", e.replica().len());
    // Numbers never outnumber the entries the replica held at once.
    let cap = e.replica().vtep_capacity();
    assert!(cap <= peak, "{cap} VTEP numbers, at most {peak} entries");
    assert!(cap <= 64 + 16, "{cap}");
    assert_eq!(
        e.replica().vtep_numbers().count(),
        e.replica()
            .snapshot()
            .iter()
            .map(|(_, loc, _)| *loc)
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    assert!(e.counters().learn_cap_reached > 0);
    // What is left still forwards to its own VTEP.
    for (k, loc, _) in e.replica().snapshot() {
        if let xvs_dataplane::types::Location::Vtep(ip) = loc {
            e.set_next_hop(ip, Some(next_hop(ip)));
            assert_eq!(send_to(&mut e, k.mac), unicast_to(ip));
        }
    }
}
