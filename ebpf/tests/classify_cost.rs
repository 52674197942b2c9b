//! The classifier's cost per frame on its hot paths, measured by the kernel
//! (`BPF_PROG_TEST_RUN`, one frame per call, the mean of 200 000 calls, best
//! of several rounds). A benchmark, not a test: it asserts only that each
//! frame takes the path it is meant to measure (the counters that moved),
//! never a time. Run it by hand, as root:
//!
//! ```sh
//! cargo test --release -p xvs-ebpf --test classify_cost -- --ignored --nocapture
//! ```

use xvs_ebpf::{Classifier, Counter, PortRole};
use xvs_testkit::frames::*;

/// Loopback: ifindex 1 in every namespace.
const LO: u32 = 1;
const UPLINK_PORT: u32 = 3;
const ACCESS_PORT: u32 = 4;
const CALLS: u32 = 200_000;
const RUNS: usize = 5;

/// Best (lowest) kernel-measured time per frame over `RUNS` runs, in ns,
/// after checking that one run of `frame` moves exactly `path`'s counters.
fn cost(cls: &Classifier, frame: &[u8], path: &[Counter]) -> f64 {
    let before = cls.counters().unwrap();
    cls.test_run_timed(frame, LO, 0).unwrap();
    let moved = cls.counters().unwrap().since(&before);
    let mut got: Vec<Counter> = moved.nonzero().into_iter().map(|(c, _)| c).collect();
    let mut want = path.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the frame did not take the measured path");
    let before = cls.counters().unwrap();
    let best = (0..RUNS)
        .map(|_| mean_ns(cls, frame))
        .fold(f64::INFINITY, f64::min);
    // Every call took the path.
    let moved = cls.counters().unwrap().since(&before);
    for c in path {
        assert_eq!(moved.get(*c), RUNS as u64 * u64::from(CALLS), "{c}");
    }
    best
}

/// Mean kernel-measured duration of one run over `CALLS` calls, in ns.
fn mean_ns(cls: &Classifier, frame: &[u8]) -> f64 {
    let total: u128 = (0..CALLS)
        .map(|_| cls.test_run_timed(frame, LO, 0).unwrap().as_nanos())
        .sum();
    total as f64 / f64::from(CALLS)
}

#[test]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
fn classifier_cost_per_frame() {
    if !xvs_testkit::privileged("classifier_cost_per_frame") {
        return;
    }
    let cls = Classifier::load().unwrap_or_else(|e| panic!("load: {e}"));
    cls.add_local_vtep(VTEP4.into()).unwrap();
    cls.set_vni(VNI, 1).unwrap();
    cls.set_attachment(ACCESS_PORT, 0, 10).unwrap();
    cls.set_attachment(ACCESS_PORT, 10, 11).unwrap();

    // No socket in the XSKMAP: a switched frame ends in redirect_failed.
    let switched = [Counter::SwitchedAccess, Counter::RedirectFailed];
    let popped = [
        Counter::VlanPopped,
        Counter::SwitchedAccess,
        Counter::RedirectFailed,
    ];
    let decap = [Counter::DecapV4, Counter::RedirectFailed];

    // The floor: the kernel's timer, the counter block, the port lookup.
    let no_port = cost(&cls, &vm_frame(&[]), &[Counter::PassNoPort]);
    cls.set_port(LO, PortRole::Access, ACCESS_PORT).unwrap();
    let access = cost(&cls, &vm_frame(&[]), &switched);
    let tagged = cost(&cls, &vm_frame(&[10]), &popped);
    cls.set_port(LO, PortRole::Uplink, UPLINK_PORT).unwrap();
    let vx = vxlan_payload(VNI, &vm_frame(&[]));
    let vxlan = cost(&cls, &udp4(&[], REMOTE4, VTEP4, 4789, &vx), &decap);

    println!("classifier ns/frame (best of {RUNS} rounds of {CALLS} calls, no socket):");
    println!("  not a port        {no_port:6.1}");
    println!("  access untagged   {access:6.1}");
    println!("  access tagged     {tagged:6.1}");
    println!("  uplink VXLAN/IPv4 {vxlan:6.1}");
}
