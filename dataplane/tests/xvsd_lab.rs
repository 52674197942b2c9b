//! xvsd on the lab (`scripts/lab.sh`, `docs/lab.md`): a network node running
//! this xvsd between two access VMs, a VLAN-10 VM, and two compute nodes
//! that are the kernel's own VXLAN VTEPs — one over an IPv4 underlay, one
//! over IPv6. `scripts/lab-test.sh --node xvs` builds it with a unique id,
//! runs every check and tears it down; this test runs it with the binaries
//! Cargo built and requires every check below to pass:
//!
//! * ARP from vm1 for vmA resolves through head-end replication (the
//!   encapsulated broadcast is seen on the way to *both* compute nodes);
//! * ICMP both ways between vm1 and vmA (IPv4 underlay) and vmB (IPv6);
//!   full-size DF pings (the 50/70-byte overhead fits the underlay MTU);
//! * TCP (iperf3, 2 s) both ways over both underlays;
//! * the learned MACs in `xvsctl fdb show --json`: vm1/vm2 on their ports,
//!   vmA/vmB behind the right VTEP;
//! * interop: the kernel VTEPs decoded our frames and learned vm1 behind our
//!   VTEP address (their own FDB);
//! * vm3's tagged ARP (AF_PACKET) answered and re-tagged on VLAN 10;
//! * split horizon: vmA and vmB (behind two different VTEPs) do not reach
//!   each other through xvs.
//!
//! Once with one queue per veth, once with two queues and two workers.

mod xvsd_common;

use std::process::Command;

use xvs_testkit::privileged;

/// Check names (prefixes) of lab-test.sh that must report `ok`.
const REQUIRED: &[&str] = &[
    "lab up (--node xvs)",
    "xvsd answers on its socket",
    "ARP vm1 -> vmA through head-end replication",
    "ping vm1 -> vm2 (local)",
    "ping vm1 -> vmA (v4 underlay)",
    "ping vmA -> vm1 (v4 underlay)",
    "ping vm1 -> vmB (v6 underlay)",
    "ping vmB -> vm1 (v6 underlay)",
    "split horizon: vmA -> vmB not forwarded VTEP to VTEP",
    "split horizon: vmB -> vmA not forwarded VTEP to VTEP",
    "MTU: 1500-byte DF ping vm1 -> vmA",
    "MTU: 1500-byte DF ping vm1 -> vmB",
    "TCP vm1 -> vmA",
    "TCP vmA -> vm1",
    "TCP vm1 -> vmB",
    "TCP vmB -> vm1",
    "FDB nn: vm1 on nn-vm1",
    "FDB nn: vm2 on nn-vm2",
    "FDB nn: vmA behind VTEP 192.0.2.1",
    "FDB nn: vmB behind VTEP 2001:db8::2",
    "FDB compute A: vm1 behind VTEP 192.0.2.10",
    "FDB compute B: vm1 behind VTEP 2001:db8::10",
    "VLAN 10: vm3's tagged ARP for vm1 answered, re-tagged",
    "teardown: nothing of lab",
];

/// Removes the lab if the script could not (e.g. it was killed on timeout).
struct LabGuard {
    script: std::path::PathBuf,
    id: String,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["down", "--id", &self.id])
            .output();
    }
}

/// The two labs of this file run one after the other: each is a dozen
/// namespaces and iperf3 at full speed on a shared machine.
static ONE_LAB_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs lab-test.sh with xvsd on `queues` queues per veth (and as many
/// workers) and checks every required line.
fn lab_test(queues: u32) {
    let _one = ONE_LAB_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let id = format!("rs{}q{queues}", std::process::id());
    let _guard = LabGuard {
        script: repo.join("scripts/lab.sh"),
        id: id.clone(),
    };
    let q = queues.to_string();
    let out = Command::new("timeout")
        .arg("600")
        .arg(repo.join("scripts/lab-test.sh"))
        .args(["--node", "xvs", "--id", &id, "--queues", &q])
        .env("XVSD", xvsd_common::xvsd_bin())
        .env("XVSCTL", xvsd_common::xvsctl_bin())
        .env("XVSD_ARGS", format!("--queues {queues}"))
        .output()
        .expect("run scripts/lab-test.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    for check in REQUIRED {
        if !text.lines().any(|l| {
            l.strip_prefix("ok   ")
                .is_some_and(|rest| rest.starts_with(check))
        }) {
            problems.push(*check);
        }
    }
    assert!(
        problems.is_empty() && out.status.success() && text.contains(", 0 failed"),
        "lab-test --node xvs --queues {queues}: status {}, checks not ok: {problems:?}\n{text}\n{err}",
        out.status
    );
}

#[test]
fn lab_vxlan_v4_v6_arp_icmp_tcp_fdb_interop_and_vlan() {
    if !privileged("lab_vxlan_v4_v6_arp_icmp_tcp_fdb_interop_and_vlan") {
        return;
    }
    lab_test(1);
}

/// The same lab with two RX/TX queues on every veth and two xvsd workers.
#[test]
fn lab_with_two_queues_and_two_workers() {
    if !privileged("lab_with_two_queues_and_two_workers") {
        return;
    }
    lab_test(2);
}
