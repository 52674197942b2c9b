//! Local VTEP addresses as the classifier sees them through
//! `BPF_PROG_TEST_RUN`, whichever of them the fast-path hint
//! (`xvs_vtep_hint`) holds: adding, removing and re-adding addresses in any
//! order decapsulates exactly the addresses currently configured.

use std::net::IpAddr;

use xvs_ebpf::{Classifier, Counter, PortRole};
use xvs_testkit::frames::*;

/// Loopback: ifindex 1 in every namespace.
const LO: u32 = 1;

/// The counter a VXLAN frame to `dst` moves besides the redirect.
fn verdict(cls: &Classifier, dst: IpAddr) -> Counter {
    let vx = vxlan_payload(VNI, &vm_frame(&[]));
    let frame = match dst {
        IpAddr::V4(d) => udp4(&[], REMOTE4, d, 4789, &vx),
        IpAddr::V6(d) => udp6(&[], REMOTE6, d, 4789, &vx),
    };
    let before = cls.counters().unwrap();
    cls.test_run(&frame, LO, 0).unwrap();
    let moved = cls.counters().unwrap().since(&before);
    let got: Vec<Counter> = moved
        .nonzero()
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| *c != Counter::RedirectFailed)
        .collect();
    assert_eq!(got.len(), 1, "{dst}: {got:?}");
    got[0]
}

#[test]
fn every_configured_vtep_decapsulates_whatever_the_hint_holds() {
    if !xvs_testkit::privileged("every_configured_vtep_decapsulates_whatever_the_hint_holds") {
        return;
    }
    let cls = Classifier::load().unwrap_or_else(|e| panic!("load: {e}"));
    cls.set_vni(VNI, 1).unwrap();
    cls.set_port(LO, PortRole::Uplink, 3).unwrap();
    let (v4, v6): (IpAddr, IpAddr) = (VTEP4.into(), VTEP6.into());

    assert_eq!(verdict(&cls, v4), Counter::PassNotLocal);
    cls.add_local_vtep(v4).unwrap(); // the hint
    cls.add_local_vtep(v6).unwrap(); // the hash only
    assert_eq!(verdict(&cls, v4), Counter::DecapV4);
    assert_eq!(verdict(&cls, v6), Counter::DecapV6);

    // Removing the hinted address: it stops, the other goes on.
    cls.remove_local_vtep(v4).unwrap();
    assert_eq!(verdict(&cls, v4), Counter::PassNotLocal);
    assert_eq!(verdict(&cls, v6), Counter::DecapV6);

    // Re-added (it becomes the hint again), then the other removed.
    cls.add_local_vtep(v4).unwrap();
    cls.remove_local_vtep(v6).unwrap();
    assert_eq!(verdict(&cls, v4), Counter::DecapV4);
    assert_eq!(verdict(&cls, v6), Counter::PassNotLocal);

    // Both gone, then the IPv6 one alone (now the hint).
    cls.remove_local_vtep(v4).unwrap();
    assert_eq!(verdict(&cls, v4), Counter::PassNotLocal);
    cls.add_local_vtep(v6).unwrap();
    assert_eq!(verdict(&cls, v4), Counter::PassNotLocal);
    assert_eq!(verdict(&cls, v6), Counter::DecapV6);
}
