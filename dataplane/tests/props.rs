//! Property tests: encapsulation and VLAN push checked by etherparse, FDB
//! invariants under random learn/move/age/static/flush sequences, split
//! horizon on every flood, storm buckets and VTEP allow-lists against
//! simple models, and parsers that never panic.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use etherparse::{Ethernet2Header, Ipv4Header, Ipv6Header, SingleVlanHeader, UdpHeader};
use proptest::prelude::*;
use xvs_dataplane::bridge::{BridgeDomain, BridgeDomains};
use xvs_dataplane::decide::{Egress, FrameMeta, Ingress};
use xvs_dataplane::engine::{EncapConfig, Engine, MemTx};
use xvs_dataplane::fdb::{
    self, EntryKind, FdbConfig, FdbKey, FdbOwner, FdbReplica, LearnOutcome, Tick,
};
use xvs_dataplane::fixtures::{in_buffer, mac, udp_frame, HEADROOM};
use xvs_dataplane::rewrite::{encap, push_vlan, EncapParams};
use xvs_dataplane::storm::{StormControl, TokenBucket};
use xvs_dataplane::types::{Attachment, BdId, Location, MacAddr, PortId, Vlan, Vni};
use xvs_dataplane::wire;

fn ip_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(a, b)| (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(a, b)| (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Encapsulate, then parse with etherparse: the checksums are right and
    /// the payload is the original inner frame, for any frame.
    #[test]
    fn encap_then_parse_returns_the_inner_frame(
        inner in proptest::collection::vec(any::<u8>(), 14..1600),
        (src_ip, dst_ip) in ip_pair(),
        vni in 0u32..=Vni::MAX,
        ttl in any::<u8>(),
        dst_port in any::<u16>(),
        dont_frag in any::<bool>(),
        extra_headroom in 0usize..64,
        src_mac in any::<[u8; 6]>(),
        dst_mac in any::<[u8; 6]>(),
    ) {
        let headroom = 70 + extra_headroom;
        let mut buf = vec![0xa5u8; headroom + inner.len()];
        buf[headroom..].copy_from_slice(&inner);
        let p = EncapParams {
            src_mac: MacAddr(src_mac),
            dst_mac: MacAddr(dst_mac),
            src_ip,
            dst_ip,
            vni: Vni::new(vni).unwrap(),
            dst_port,
            ttl,
            dont_frag,
            mtu: 9000,
        };
        let (start, len) = encap(&mut buf, headroom, inner.len(), &p).unwrap();
        let out = &buf[start..start + len];
        let (eth, rest) = Ethernet2Header::from_slice(out).unwrap();
        prop_assert_eq!(eth.source, src_mac);
        prop_assert_eq!(eth.destination, dst_mac);
        let (udp, payload) = match (src_ip, dst_ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                prop_assert_eq!(eth.ether_type.0, 0x0800);
                let (ip, rest) = Ipv4Header::from_slice(rest).unwrap();
                prop_assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                prop_assert_eq!(ip.source, s.octets());
                prop_assert_eq!(ip.destination, d.octets());
                prop_assert_eq!(ip.time_to_live, ttl);
                prop_assert_eq!(ip.dont_fragment, dont_frag);
                prop_assert!(!ip.more_fragments);
                prop_assert_eq!(usize::from(ip.total_len), len - 14);
                let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
                prop_assert_eq!(udp.checksum, 0);
                (udp, payload)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                prop_assert_eq!(eth.ether_type.0, 0x86dd);
                let (ip, rest) = Ipv6Header::from_slice(rest).unwrap();
                prop_assert_eq!(ip.source, s.octets());
                prop_assert_eq!(ip.destination, d.octets());
                prop_assert_eq!(ip.hop_limit, ttl);
                prop_assert_eq!(usize::from(ip.payload_length), len - 54);
                let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
                prop_assert_eq!(udp.checksum, udp.calc_checksum_ipv6(&ip, payload).unwrap());
                (udp, payload)
            }
            _ => unreachable!(),
        };
        prop_assert_eq!(udp.destination_port, dst_port);
        prop_assert!(udp.source_port >= 49152);
        prop_assert_eq!(usize::from(udp.length), 8 + payload.len());
        prop_assert_eq!(payload[0], 0x08);
        prop_assert_eq!(u32::from_be_bytes([0, payload[4], payload[5], payload[6]]), vni);
        prop_assert_eq!(&payload[8..], &inner[..]);
        // Our own parser agrees.
        let vx = wire::vxlan::Header::new_checked(payload).unwrap();
        prop_assert_eq!(wire::vxlan::Repr::parse(&vx).unwrap().vni.get(), vni);
    }

    /// The same flow always gets the same source port, whatever the payload.
    #[test]
    fn source_port_depends_on_the_flow_only(
        sport in any::<u16>(),
        a in proptest::collection::vec(any::<u8>(), 22),
        b in proptest::collection::vec(any::<u8>(), 22),
    ) {
        let mut f1 = udp_frame(mac(1), mac(2), sport, 64);
        let mut f2 = f1.clone();
        f1[42..].copy_from_slice(&a);
        f2[42..].copy_from_slice(&b);
        prop_assert_eq!(
            xvs_dataplane::rewrite::source_port(&f1),
            xvs_dataplane::rewrite::source_port(&f2)
        );
    }

    /// VLAN push, then parse with etherparse: the tag carries the VLAN and
    /// the rest of the frame is intact.
    #[test]
    fn vlan_push_then_parse(
        frame in proptest::collection::vec(any::<u8>(), 14..200),
        vid in 1u16..=4094,
    ) {
        let mut buf = vec![0u8; 8 + frame.len()];
        buf[8..].copy_from_slice(&frame);
        let (start, len) = push_vlan(&mut buf, 8, frame.len(), Vlan::new(vid).unwrap()).unwrap();
        let out = &buf[start..start + len];
        let (eth, rest) = Ethernet2Header::from_slice(out).unwrap();
        prop_assert_eq!(&eth.destination[..], &frame[..6]);
        prop_assert_eq!(&eth.source[..], &frame[6..12]);
        prop_assert_eq!(eth.ether_type.0, 0x8100);
        let (tag, rest) = SingleVlanHeader::from_slice(rest).unwrap();
        prop_assert_eq!(tag.vlan_id.value(), vid);
        prop_assert_eq!(tag.ether_type.0, u16::from_be_bytes([frame[12], frame[13]]));
        prop_assert_eq!(rest, &frame[14..]);
    }

    /// Views and parsers never panic after `new_checked`, whatever the bytes.
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        use wire::*;
        if let Ok(f) = ethernet::Frame::new_checked(&bytes[..]) {
            let _ = (ethernet::Repr::parse(&f), f.payload());
        }
        if let Ok(t) = vlan::Tag::new_checked(&bytes[..]) {
            let _ = (vlan::Repr::parse(&t), t.payload());
        }
        if let Ok(p) = ipv4::Packet::new_checked(&bytes[..]) {
            let _ = (ipv4::Repr::parse(&p), p.payload(), p.verify_checksum());
        }
        if let Ok(p) = ipv6::Packet::new_checked(&bytes[..]) {
            let _ = (ipv6::Repr::parse(&p), p.payload());
        }
        if let Ok(p) = udp::Packet::new_checked(&bytes[..]) {
            let any4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let any6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
            let _ = (udp::Repr::parse(&p), p.payload(), p.verify_checksum(any4, any4));
            let _ = p.verify_checksum(any6, any6);
        }
        if let Ok(h) = vxlan::Header::new_checked(&bytes[..]) {
            let _ = (vxlan::Repr::parse(&h), h.payload());
        }
        let _ = xvs_dataplane::rewrite::flow_hash(&bytes);
    }
}

// ---------------------------------------------------------------------------
// FDB: random sequences.

#[derive(Clone, Debug)]
enum Op {
    Learn {
        worker: usize,
        bd: u16,
        mac: u32,
        loc: u8,
    },
    Advance(u64),
    OwnerProcess,
    Drain(usize),
    Age,
    StaticAdd {
        bd: u16,
        mac: u32,
        loc: u8,
    },
    StaticDel {
        bd: u16,
        mac: u32,
    },
    Flush(Option<u16>),
    Settle,
}

const WORKERS: usize = 3;
const CAPS: [u32; 2] = [3, 5];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..WORKERS, 0u16..2, 0u32..10, 0u8..4)
            .prop_map(|(worker, bd, mac, loc)| Op::Learn { worker, bd, mac, loc }),
        2 => (0u64..8000).prop_map(Op::Advance),
        2 => Just(Op::OwnerProcess),
        2 => (0..WORKERS).prop_map(Op::Drain),
        1 => Just(Op::Age),
        1 => (0u16..2, 0u32..10, 0u8..4).prop_map(|(bd, mac, loc)| Op::StaticAdd { bd, mac, loc }),
        1 => (0u16..2, 0u32..10).prop_map(|(bd, mac)| Op::StaticDel { bd, mac }),
        1 => proptest::option::of(0u16..2).prop_map(Op::Flush),
        1 => Just(Op::Settle),
    ]
}

fn loc(i: u8) -> Location {
    match i {
        0 => Location::Local(Attachment::untagged(PortId(1))),
        1 => Location::Local(Attachment::tagged(PortId(1), Vlan::new(10).unwrap())),
        2 => Location::Vtep(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        _ => Location::Vtep(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    }
}

fn settle(owner: &mut FdbOwner, replicas: &mut [FdbReplica], now: Tick) {
    loop {
        let mut n = owner.process(now);
        for r in replicas.iter_mut() {
            n += r.drain();
        }
        if n == 0 {
            return;
        }
    }
}

fn check_converged(owner: &FdbOwner, replicas: &[FdbReplica]) -> Result<(), TestCaseError> {
    let want = owner.snapshot();
    for r in replicas {
        prop_assert_eq!(&r.snapshot(), &want, "replica {} diverged", r.worker());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For any sequence of learns, moves, time steps, ageing, statics and
    /// flushes: no BD ever holds more learned MACs than its cap, statics are
    /// exactly what was configured, and once channels drain every replica
    /// equals the owner's table.
    #[test]
    fn fdb_invariants_hold_for_random_sequences(ops in proptest::collection::vec(op(), 1..200)) {
        let config = FdbConfig {
            ageing: Duration::from_secs(20),
            refresh_interval: Duration::from_secs(1),
            move_limit: 2,
            hold_time: Duration::from_secs(3),
            default_max_macs: None,
            inbox_capacity: 8,
        };
        let (mut owner, mut replicas, _control) = fdb::new(config, WORKERS);
        for (bd, cap) in CAPS.iter().enumerate() {
            owner.set_max_macs(BdId(bd as u16), Some(*cap));
        }
        let mut statics: BTreeMap<FdbKey, Location> = BTreeMap::new();
        let mut now = Tick(0);
        for op in ops {
            match op {
                Op::Learn { worker, bd, mac: m, loc: l } => {
                    let key = FdbKey::new(BdId(bd), mac(m));
                    let outcome = replicas[worker].learn(key.bd, key.mac, loc(l), now);
                    // A learn or move forwards from this worker's very next
                    // frame, before the owner has seen it.
                    if matches!(
                        outcome,
                        LearnOutcome::Learned | LearnOutcome::Moved
                            | LearnOutcome::Known | LearnOutcome::Refreshed
                    ) {
                        prop_assert_eq!(replicas[worker].lookup(key.bd, key.mac), Some(loc(l)));
                    }
                }
                Op::Advance(ms) => now = Tick(now.0 + ms),
                Op::OwnerProcess => { owner.process(now); }
                Op::Drain(w) => { replicas[w].drain(); }
                Op::Age => { owner.age(now); }
                Op::StaticAdd { bd, mac: m, loc: l } => {
                    let key = FdbKey::new(BdId(bd), mac(m));
                    owner.static_add(key, loc(l), now).unwrap();
                    statics.insert(key, loc(l));
                }
                Op::StaticDel { bd, mac: m } => {
                    let key = FdbKey::new(BdId(bd), mac(m));
                    let r = owner.static_del(key);
                    prop_assert_eq!(r.is_ok(), statics.remove(&key).is_some());
                }
                Op::Flush(bd) => { owner.flush(bd.map(BdId)); }
                Op::Settle => {
                    settle(&mut owner, &mut replicas, now);
                    check_converged(&owner, &replicas)?;
                }
            }
            for (bd, cap) in CAPS.iter().enumerate() {
                prop_assert!(owner.learned_in(BdId(bd as u16)) <= *cap);
            }
            let owner_statics: BTreeMap<FdbKey, Location> = owner
                .snapshot()
                .into_iter()
                .filter(|(_, _, k)| *k == EntryKind::Static)
                .map(|(k, l, _)| (k, l))
                .collect();
            prop_assert_eq!(&owner_statics, &statics);
        }
        settle(&mut owner, &mut replicas, now);
        check_converged(&owner, &replicas)?;
        // And every static is where it was configured, on every worker.
        for r in &replicas {
            for (k, l) in &statics {
                prop_assert_eq!(r.lookup(k.bd, k.mac), Some(*l));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Split horizon and flooding through the engine.

fn bd_config() -> impl Strategy<Value = (Vec<Attachment>, Vec<IpAddr>)> {
    (
        proptest::collection::btree_set((1u16..6, 0u16..4), 0..6),
        proptest::collection::btree_set(1u8..50, 0..9),
    )
        .prop_map(|(atts, vteps)| {
            let atts = atts
                .into_iter()
                .map(|(p, v)| Attachment {
                    port: PortId(p),
                    vlan: Vlan::new(v),
                })
                .collect();
            let vteps = vteps
                .into_iter()
                .map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)))
                .collect();
            (atts, vteps)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every flood reaches every other attachment once, every flood-list
    /// VTEP once when it came from an attachment, and no VTEP when it came
    /// from one (split horizon); never the ingress attachment.
    #[test]
    fn floods_respect_split_horizon(
        (atts, vteps) in bd_config(),
        ingress_pick in any::<prop::sample::Index>(),
        from_vtep in any::<bool>(),
        broadcast in any::<bool>(),
    ) {
        let vni = Vni::new(100).unwrap();
        let mut bd = BridgeDomain::new(BdId(1), Some(vni));
        bd.attachments = atts.clone();
        bd.flood = vteps.clone();
        // The remote ingress below is no flood-list VTEP.
        bd.learn_from_any_vtep = true;
        let mut bds = BridgeDomains::new();
        bds.insert(bd);
        let (_owner, mut replicas, _c) = fdb::new(FdbConfig::default(), 1);
        let encap = EncapConfig {
            local_v4: Some(Ipv4Addr::new(192, 0, 2, 200)),
            ..EncapConfig::default()
        };
        let mut engine = Engine::new(replicas.pop().unwrap(), bds, encap);
        for ip in &vteps {
            engine.set_next_hop(*ip, Some(mac(0xbb)));
        }
        let ingress = if from_vtep || atts.is_empty() {
            Ingress::Vtep(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
        } else {
            Ingress::Local(atts[ingress_pick.index(atts.len())])
        };
        let dst = if broadcast { MacAddr::BROADCAST } else { mac(77) };
        let mut buf = in_buffer(&udp_frame(mac(1), dst, 9, 64));
        let mut tx = MemTx::new(32, 2048);
        engine.process(&FrameMeta { bd: BdId(1), ingress }, &mut buf, HEADROOM, 64, &mut tx);

        let mut want: Vec<Egress> = atts
            .iter()
            .filter(|a| Ingress::Local(**a) != ingress)
            .map(|a| Egress::Local(*a))
            .collect();
        if matches!(ingress, Ingress::Local(_)) {
            want.extend(vteps.iter().map(|&ip| Egress::Vtep { ip, vni }));
        }
        let mut got: Vec<Egress> = tx.sent.iter().map(|s| s.egress).collect();
        let key = |e: &Egress| format!("{e:?}");
        want.sort_by_key(key);
        got.sort_by_key(key);
        prop_assert_eq!(&got, &want);
        if let Ingress::Vtep(_) = ingress {
            prop_assert!(got.iter().all(|e| matches!(e, Egress::Local(_))));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The engine never panics, whatever the bytes, lengths, headroom and
    /// metadata, and every frame is accounted for: forwarded (unicast or
    /// flood) or dropped with a frame-level reason.
    #[test]
    fn the_engine_never_panics_on_garbage(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        headroom in 0usize..320,
        len in 0usize..320,
        bd in 0u16..3,
        ingress in 0u8..4,
    ) {
        let (_owner, mut replicas, _c) = fdb::new(FdbConfig::default(), 1);
        let mut b = BridgeDomain::new(BdId(1), Vni::new(5));
        b.attachments = vec![Attachment::untagged(PortId(1))];
        b.flood = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))];
        let mut bds = BridgeDomains::new();
        bds.insert(b);
        let encap = EncapConfig {
            local_v4: Some(Ipv4Addr::new(192, 0, 2, 9)),
            ..EncapConfig::default()
        };
        let mut engine = Engine::new(replicas.pop().unwrap(), bds, encap);
        engine.set_next_hop(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), Some(mac(3)));
        let ingress = match ingress {
            0 | 1 => Ingress::Local(Attachment::untagged(PortId(u16::from(ingress)))),
            _ => Ingress::Vtep(IpAddr::V4(Ipv4Addr::new(192, 0, 2, ingress))),
        };
        let mut buf = bytes;
        let mut tx = MemTx::new(4, 512);
        let meta = FrameMeta { bd: BdId(bd), ingress };
        let v = engine.process(&meta, &mut buf, headroom, len, &mut tx);
        prop_assert_eq!(v.sent as usize, tx.sent.len());
        let c = engine.counters();
        prop_assert_eq!(c.rx, 1);
        let frame_drops = c.drop_bad_range + c.drop_runt + c.drop_bad_src_mac
            + c.drop_unknown_bd + c.drop_hairpin + c.drop_split_horizon
            + c.drop_no_vni + c.drop_no_destination + c.drop_unknown_vtep + c.drop_storm;
        prop_assert_eq!(c.unicast + c.flooded + frame_drops, 1);
    }
}

/// A VTEP address from a small pool (so that probes hit members), either
/// family.
fn small_vtep() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..8).prop_map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
        (0u16..8).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each bridge domain's bucket behaves as if it were alone (a storm in
    /// one never spends another's tokens), and no bucket ever admits more
    /// than its burst plus its rate times the time since its first frame,
    /// even across jumps to the end of time.
    #[test]
    fn storm_buckets_are_independent_and_bounded(
        pps in 1u32..=2_000_000,
        workers in 1u32..8,
        ops in proptest::collection::vec((0u16..4, 0u64..3000, 1u32..50), 1..200),
        jump in any::<bool>(),
    ) {
        let mut s = StormControl::new(workers);
        let rate = s.share(pps);
        let mut alone = [TokenBucket::default(); 4];
        let mut first: [Option<u64>; 4] = [None; 4];
        let mut admitted = [0u64; 4];
        let mut now = 0u64;
        for (k, (bd, advance, frames)) in ops.iter().enumerate() {
            now = if jump && k == ops.len() / 2 {
                u64::MAX - 10_000
            } else {
                now.saturating_add(*advance)
            };
            let i = usize::from(*bd);
            for _ in 0..*frames {
                let got = s.admit(BdId(*bd), pps, Tick(now));
                prop_assert_eq!(got, alone[i].admit(rate, Tick(now)));
                admitted[i] += u64::from(got);
            }
            let since = now - *first[i].get_or_insert(now);
            let bound = TokenBucket::burst(rate)
                .saturating_add(since.saturating_mul(u64::from(rate)) / 1000 + 1);
            prop_assert!(admitted[i] <= bound, "bd {} admitted {} > {}", i, admitted[i], bound);
        }
    }

    /// A bridge domain admits VXLAN exactly from its flood list's VTEPs, or
    /// from anyone with the opt-in.
    #[test]
    fn vtep_allow_list_is_the_flood_list(
        flood in proptest::collection::vec(small_vtep(), 0..10),
        probes in proptest::collection::vec(small_vtep(), 1..20),
        any_vtep in any::<bool>(),
    ) {
        let mut bd = BridgeDomain::new(BdId(3), Vni::new(7));
        bd.flood = flood.clone();
        bd.learn_from_any_vtep = any_vtep;
        let mut bds = BridgeDomains::new();
        bds.insert(bd);
        for p in probes {
            prop_assert_eq!(bds.admits_vtep(BdId(3), p), any_vtep || flood.contains(&p));
            prop_assert!(!bds.admits_vtep(BdId(4), p));
        }
    }
}
