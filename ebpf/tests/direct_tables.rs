//! The direct-mapped tables in front of the VNI and attachment hashes
//! (`xvs_vni_direct`, `xvs_attach_direct`), as the classifier sees them
//! through `BPF_PROG_TEST_RUN`: whether a key has a slot of its own, shares
//! one with a rival (and is found in the hash), or moved when the table was
//! rebuilt with another seed or size, every configured key classifies to
//! its bridge domain, every removed key is dropped as unknown, and a
//! changed bridge domain takes effect.

use std::collections::BTreeMap;

use xvs_ebpf::{Classifier, Counter, PortRole, XdpAction};
use xvs_testkit::frames::*;

/// Loopback: ifindex 1 in every namespace.
const LO: u32 = 1;
const UPLINK_PORT: u32 = 3;

/// The bridge domain a VXLAN frame with `vni` is switched to, or the drop
/// counter it moved.
fn vni_verdict(cls: &Classifier, vni: u32) -> Result<u32, Counter> {
    let vx = vxlan_payload(vni, &vm_frame(&[]));
    run(cls, &udp4(&[], REMOTE4, VTEP4, 4789, &vx))
}

/// The same for a frame tagged `vid` on the access port the loopback is.
fn vid_verdict(cls: &Classifier, vid: u16) -> Result<u32, Counter> {
    run(cls, &vm_frame(&[vid]))
}

fn run(cls: &Classifier, frame: &[u8]) -> Result<u32, Counter> {
    let before = cls.counters().unwrap();
    let out = cls.test_run(frame, LO, 0).unwrap();
    let moved = cls.counters().unwrap().since(&before);
    if moved.get(Counter::RedirectFailed) == 1 {
        assert_eq!(out.action, XdpAction::Drop);
        return Ok(out.meta().expect("metadata on a switched frame").bd);
    }
    let got: Vec<Counter> = moved.nonzero().into_iter().map(|(c, _)| c).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    Err(got[0])
}

/// xorshift32: the same "random" keys on every run.
fn keys(n: usize, mut x: u32, mask: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let k = x & mask;
        if k != 0 && !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Every key in `want` classifies to its bridge domain, every one in `gone`
/// is an unknown VNI.
fn check_vnis(cls: &Classifier, want: &BTreeMap<u32, u32>, gone: &[u32]) {
    for (&vni, &bd) in want {
        assert_eq!(vni_verdict(cls, vni), Ok(bd), "VNI {vni}");
    }
    for &vni in gone {
        assert_eq!(
            vni_verdict(cls, vni),
            Err(Counter::DropUnknownVni),
            "VNI {vni}"
        );
    }
}

#[test]
fn vnis_classify_whether_in_their_own_slot_or_the_hash() {
    if !xvs_testkit::privileged("vnis_classify_whether_in_their_own_slot_or_the_hash") {
        return;
    }
    let cls = Classifier::load().unwrap_or_else(|e| panic!("load: {e}"));
    cls.add_local_vtep(VTEP4.into()).unwrap();
    cls.set_port(LO, PortRole::Uplink, UPLINK_PORT).unwrap();
    assert_eq!(cls.direct_tables().vnis.slots, 0, "no table before a VNI");

    // Added one by one, everything added so far checked after each: the
    // table is rebuilt live (other seed or size) whenever a new VNI finds
    // its slot taken.
    let mut want = BTreeMap::new();
    let first = keys(120, 0x2545_f491, 0x00ff_ffff);
    let mut sizes = Vec::new();
    for (i, &vni) in first.iter().enumerate() {
        cls.set_vni(vni, i as u32 + 1).unwrap();
        want.insert(vni, i as u32 + 1);
        check_vnis(&cls, &want, &first[i + 1..]);
        sizes.push(cls.direct_tables().vnis.slots);
    }
    let stats = cls.direct_tables().vnis;
    assert_eq!(stats.keys, 120);
    assert_eq!(stats.placed, 120, "120 VNIs fit without collisions");
    assert!(
        sizes.windows(2).any(|w| w[0] != w[1]),
        "the table grew: {sizes:?}"
    );

    // Thousands: more than any seed can place, so some share slots and are
    // found in the hash; all classify.
    let many = keys(3000, 0x9e37_79b9, 0x00ff_ffff);
    for (i, &vni) in many.iter().enumerate() {
        let bd = 1000 + i as u32;
        cls.set_vni(vni, bd).unwrap();
        want.insert(vni, bd);
    }
    let stats = cls.direct_tables().vnis;
    println!("VNIs: {stats:?}");
    assert_eq!(stats.keys, want.len());
    assert!(stats.placed < stats.keys, "{stats:?}");
    assert!(stats.placed > stats.keys / 2, "{stats:?}");
    check_vnis(&cls, &want, &[]);

    // A changed bridge domain, in a slot or not.
    for &vni in many.iter().take(200) {
        cls.set_vni(vni, 7).unwrap();
        want.insert(vni, 7);
    }
    // Removing every other one: the rest still classify (rivals inherit
    // freed slots), the removed are unknown.
    let gone: Vec<u32> = want.keys().copied().step_by(2).collect();
    for vni in &gone {
        cls.remove_vni(*vni).unwrap();
        want.remove(vni);
    }
    check_vnis(&cls, &want, &gone);
    let stats = cls.direct_tables().vnis;
    assert_eq!(stats.keys, want.len());
    for vni in want.keys().copied().collect::<Vec<_>>() {
        cls.remove_vni(vni).unwrap();
    }
    check_vnis(&cls, &BTreeMap::new(), &first);
    assert_eq!(cls.direct_tables().vnis.placed, 0);
}

#[test]
fn tagged_attachments_classify_whether_in_their_own_slot_or_the_hash() {
    if !xvs_testkit::privileged("tagged_attachments_classify_whether_in_their_own_slot_or_the_hash")
    {
        return;
    }
    let cls = Classifier::load().unwrap_or_else(|e| panic!("load: {e}"));
    const PORT: u32 = 4;
    cls.set_port(LO, PortRole::Access, PORT).unwrap();
    // Every VID on this port and many on others share the table.
    for p in 0..8u32 {
        if p != PORT {
            for vid in (1..4095u16).step_by(3) {
                cls.set_attachment(p, vid, 100 + p).unwrap();
            }
        }
    }
    for vid in 1..4095u16 {
        cls.set_attachment(PORT, vid, u32::from(vid) * 2).unwrap();
    }
    let stats = cls.direct_tables().attachments;
    println!("attachments: {stats:?}");
    assert!(stats.placed > 0 && stats.placed <= stats.keys, "{stats:?}");
    for vid in 1..4095u16 {
        assert_eq!(vid_verdict(&cls, vid), Ok(u32::from(vid) * 2), "VID {vid}");
    }
    // Priority tag: (port, 0), not in the direct table.
    assert_eq!(vid_verdict(&cls, 0), Err(Counter::DropUnknownAttachment));
    cls.set_attachment(PORT, 0, 5).unwrap();
    assert_eq!(vid_verdict(&cls, 0), Ok(5));

    for vid in (1..4095u16).filter(|v| v % 2 == 1) {
        cls.remove_attachment(PORT, vid).unwrap();
    }
    cls.set_attachment(PORT, 10, 999).unwrap();
    for vid in 1..4095u16 {
        let want = match vid {
            10 => Ok(999),
            v if v % 2 == 1 => Err(Counter::DropUnknownAttachment),
            v => Ok(u32::from(v) * 2),
        };
        assert_eq!(vid_verdict(&cls, vid), want, "VID {vid}");
    }
}
