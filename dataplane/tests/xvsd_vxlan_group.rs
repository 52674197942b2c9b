//! xvsd flooding to a multicast group, against the kernel's own VXLAN
//! driver in group mode (`ip link add vx type vxlan … group G dev eth0`),
//! over an IPv4 and an IPv6 underlay:
//!
//! ```text
//!  vm ns: eth0 10.9.0.1 ─ veth ─ pa ┐
//!                                   xvsd (sw ns) ─ up ─ veth ─ eth0 (peer ns)
//!                                                               └ vx: VXLAN VNI 100, group G, 10.9.0.2
//! ```
//!
//! The bridge domain's flood list is the group alone, so:
//!
//! * xvsd's uplink joins G (the kernel's multicast list shows it);
//! * the VM's ARP request reaches the kernel VTEP only if xvsd sends it to
//!   G (the kernel has no other address to hear it on), and the ping
//!   succeeds;
//! * with its neighbour and FDB entries flushed, the kernel's own ARP
//!   request goes to G; the VM answers only if xvsd's classifier took VXLAN
//!   addressed to G as its own.

mod xvsd_common;

use std::time::{Duration, Instant};

use xvs_testkit::{privileged, unique_name, Netns};
use xvsd_common::vxlan::{
    assert_kernel_learned, assert_learned, config, ipv6, kernel_vtep, next_hop, ping_until, text,
    underlay, Bum, VM_IP, VX_IP,
};
use xvsd_common::{attach_vm, counter, Xvsd};

const VM_MAC: &str = "02:00:00:09:00:01";
const VX_MAC: &str = "02:00:00:09:00:02";

struct Underlay {
    local: &'static str,
    remote: &'static str,
    group: &'static str,
    group_mac: &'static str,
    plen: u8,
}

const V4: Underlay = Underlay {
    local: "192.0.2.10",
    remote: "192.0.2.1",
    group: "239.1.1.1",
    group_mac: "01:00:5e:01:01:01",
    plen: 24,
};
const V6: Underlay = Underlay {
    local: "2001:db8::10",
    remote: "2001:db8::1",
    group: "ff05::100",
    group_mac: "33:33:00:00:01:00",
    plen: 64,
};

fn run(u: &Underlay, prefix: &str) {
    let sw = Netns::new(&format!("{prefix}s"));
    let peer = Netns::new(&format!("{prefix}p"));
    let vm = Netns::new(&format!("{prefix}v"));
    let v6 = u.local.contains(':');
    ipv6(&sw, v6);
    ipv6(&peer, v6);
    ipv6(&vm, false);
    let (up, pa) = (unique_name("u"), unique_name("a"));

    // Underlay: sw/up ⇄ peer/eth0.
    let local = format!("{}/{}", u.local, u.plen);
    let remote = format!("{}/{}", u.remote, u.plen);
    underlay(&sw, &peer, &up, &local, &remote, true);
    // The kernel VTEP in group mode: BUM to G, and it listens on G.
    kernel_vtep(&peer, VX_MAC, u.remote, Bum::Group(u.group));
    // The VM on an access port.
    attach_vm(&sw, &pa, &vm, &format!("{VM_IP}/24"), VM_MAC);

    let config = config(u.local, &up, &pa, u.group, "learn_from_any_vtep = true\n");
    let d = Xvsd::start(&sw, &config, &["--xdp-mode", "native"]);

    // The uplink is a member of the group.
    let maddr = text(sw.ip(&["maddr", "show", "dev", &up]));
    assert!(
        maddr
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == u.group)),
        "{up} did not join {}:\n{maddr}",
        u.group
    );
    // The group "resolves" to its MAC at once.
    let end = Instant::now() + Duration::from_secs(5);
    let hop = loop {
        let hop = next_hop(&d, u.group);
        if hop == u.group_mac || Instant::now() > end {
            break hop;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(hop, u.group_mac, "next hop of the group");

    // VM → kernel VTEP: our ARP broadcast can only reach it through G.
    assert!(
        ping_until(&vm, VX_IP, Duration::from_secs(15)),
        "VM → kernel VTEP failed:\n{}",
        d.log()
    );
    assert_kernel_learned(&peer, VM_MAC, u.local);

    // Kernel VTEP → VM with nothing cached: its ARP request goes to G.
    peer.ip(&["neigh", "flush", "dev", "vx"]);
    peer.exec("bridge", &["fdb", "del", VM_MAC, "dev", "vx"]);
    vm.ip(&["neigh", "flush", "dev", "eth0"]);
    let decap = if v6 { "decap_v6" } else { "decap_v4" };
    let before = counter(&d.stats(), "xdp", "", decap);
    assert!(
        ping_until(&peer, VM_IP, Duration::from_secs(15)),
        "kernel VTEP → VM failed:\n{}",
        d.log()
    );
    assert!(counter(&d.stats(), "xdp", "", decap) > before);
    assert_learned(&d, VX_MAC, u.remote);
    assert_eq!(counter(&d.stats(), "worker", "0", "drop_unknown_vtep"), 0);
    assert!(d.stop().success());
}

#[test]
fn kernel_vxlan_group_peer_over_ipv4() {
    if !privileged("kernel_vxlan_group_peer_over_ipv4") {
        return;
    }
    run(&V4, "g4");
}

#[test]
fn kernel_vxlan_group_peer_over_ipv6() {
    if !privileged("kernel_vxlan_group_peer_over_ipv6") {
        return;
    }
    run(&V6, "g6");
}
