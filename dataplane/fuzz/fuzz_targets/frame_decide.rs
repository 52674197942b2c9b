//! Frames as the XDP program hands them to a worker — any bytes, from any
//! ingress — through the whole engine: learn, look up, decide, rewrite.
//!
//! Input: a sequence of records `[ingress selector, length, bytes…]`, so
//! that learning from one frame influences the next. Checked on every
//! frame: no panic; every frame sent lies inside its buffer; split horizon
//! (nothing from a VTEP goes back to a VTEP); nothing goes back out of the
//! attachment it came from; the counters account for every frame.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use xvs_dataplane::bridge::{BridgeDomain, BridgeDomains};
use xvs_dataplane::decide::{Egress, FrameMeta, Ingress};
use xvs_dataplane::engine::{EncapConfig, Engine, MemTx};
use xvs_dataplane::fdb::{self, FdbConfig, Tick};
use xvs_dataplane::fixtures::{FRAME_SIZE, HEADROOM};
use xvs_dataplane::types::{Attachment, BdId, MacAddr, PortId, Vlan, Vni};

const BD: BdId = BdId(1);

fn vteps() -> [IpAddr; 3] {
    [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    ]
}

fn attachments() -> [Attachment; 2] {
    [
        Attachment::untagged(PortId(1)),
        Attachment::tagged(PortId(2), Vlan::new(10).unwrap()),
    ]
}

fn engine() -> (fdb::FdbOwner, Engine) {
    // A small owner inbox and cap keep each run cheap and reach "full".
    let config = FdbConfig {
        inbox_capacity: 16,
        default_max_macs: Some(8),
        ..FdbConfig::default()
    };
    let (owner, mut replicas, _control) = fdb::new(config, 1);
    let mut bd = BridgeDomain::new(BD, Vni::new(100));
    bd.attachments = attachments().to_vec();
    bd.flood = vteps().to_vec();
    let mut bds = BridgeDomains::new();
    bds.insert(bd);
    let encap = EncapConfig {
        src_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
        local_v4: Some(Ipv4Addr::new(192, 0, 2, 10)),
        local_v6: Some("2001:db8::10".parse().unwrap()),
        ..EncapConfig::default()
    };
    let mut e = Engine::new(replicas.remove(0), bds, encap);
    // One VTEP's next hop stays unresolved, to reach that drop too.
    for ip in &vteps()[..2] {
        e.set_next_hop(*ip, Some(MacAddr([2, 0xbb, 0, 0, 0, 1])));
    }
    (owner, e)
}

fn ingress(sel: u8) -> FrameMeta {
    let ingress = match sel % 6 {
        0 | 1 => Ingress::Local(attachments()[(sel % 2) as usize]),
        2..=4 => Ingress::Vtep(vteps()[(sel % 3) as usize]),
        _ => Ingress::Local(Attachment::untagged(PortId(9))),
    };
    // Now and then a bridge domain that does not exist.
    let bd = if sel >= 0xf0 { BdId(7) } else { BD };
    FrameMeta { bd, ingress }
}

fuzz_target!(|data: &[u8]| {
    let (mut owner, mut e) = engine();
    let mut tx = MemTx::new(4, FRAME_SIZE);
    let mut rest = data;
    let mut tick = 1;
    while rest.len() >= 2 {
        let (sel, want) = (rest[0], rest[1] as usize * 8);
        let len = want.min(rest.len() - 2).min(FRAME_SIZE - HEADROOM);
        let frame = &rest[2..2 + len];
        rest = &rest[2 + len..];

        let meta = ingress(sel);
        let mut buf = vec![0u8; FRAME_SIZE];
        buf[HEADROOM..HEADROOM + len].copy_from_slice(frame);
        tx.clear();
        e.begin_batch(Tick(tick));
        let before = e.counters().clone();
        let v = e.process(&meta, &mut buf, HEADROOM, len, &mut tx);
        owner.process(Tick(tick));
        tick += 250;

        assert_eq!(v.sent as usize, tx.sent.len());
        for s in &tx.sent {
            assert!(s.start + s.len <= FRAME_SIZE, "frame outside its buffer");
            match (meta.ingress, s.egress) {
                (Ingress::Vtep(_), Egress::Vtep { .. }) => panic!("split horizon broken"),
                (Ingress::Local(a), Egress::Local(b)) => assert_ne!(a, b, "hairpin"),
                _ => {}
            }
        }
        let after = e.counters();
        let counted = after.drops() > before.drops() || v.sent > 0;
        assert!(
            counted,
            "frame neither sent nor counted as a drop: {:?}",
            after
        );
    }
});
