//! xvsd against the kernel's own VXLAN driver, over an IPv4 and an IPv6
//! underlay, on a topology built here (the lab test covers the full
//! picture; this one pins down next-hop resolution):
//!
//! ```text
//!  vm ns: eth0 10.9.0.1 ─ veth ─ pa ┐
//!                                   xvsd (sw ns) ─ up ─ veth ─ eth0 (peer ns)
//!                                                               └ vx: kernel VXLAN VNI 100, 10.9.0.2
//! ```
//!
//! The peer's underlay link starts down, so the remote VTEP's neighbour
//! cannot resolve: the VM's ARP broadcast is flooded to the access side
//! only and the VTEP copy is dropped and counted (`drop_no_next_hop`) while
//! xvsd keeps asking the kernel to resolve it. Once the link comes up the
//! next hop resolves, the VM pings the kernel VTEP's address, the kernel
//! decodes our frames and learns the VM's MAC behind our VTEP address, and
//! xvsd learns the kernel's MAC behind its VTEP.

mod xvsd_common;

use std::time::{Duration, Instant};

use xvs_testkit::{privileged, unique_name, Netns};
use xvsd_common::vxlan::{
    assert_kernel_learned, assert_learned, config, ipv6, kernel_vtep, next_hop, ping_once,
    ping_until, underlay, Bum, VM_IP, VX_IP,
};
use xvsd_common::{attach_vm, counter, Xvsd};

const VM_MAC: &str = "02:00:00:09:00:01";
const VX_MAC: &str = "02:00:00:09:00:02";

struct Underlay {
    local: &'static str,
    remote: &'static str,
    plen: u8,
}

const V4: Underlay = Underlay {
    local: "192.0.2.10",
    remote: "192.0.2.1",
    plen: 24,
};
const V6: Underlay = Underlay {
    local: "2001:db8::10",
    remote: "2001:db8::1",
    plen: 64,
};

fn run(u: &Underlay, prefix: &str) {
    let sw = Netns::new(&format!("{prefix}s"));
    let peer = Netns::new(&format!("{prefix}p"));
    let vm = Netns::new(&format!("{prefix}v"));
    ipv6(&sw, u.local.contains(':'));
    ipv6(&peer, u.local.contains(':'));
    ipv6(&vm, false);
    let (up, pa) = (unique_name("u"), unique_name("a"));

    // Underlay: sw/up ⇄ peer/eth0, the peer's end down for now.
    let local = format!("{}/{}", u.local, u.plen);
    let remote = format!("{}/{}", u.remote, u.plen);
    underlay(&sw, &peer, &up, &local, &remote, false);
    // The kernel VTEP: BUM to us by head-end replication, learning on.
    kernel_vtep(&peer, VX_MAC, u.remote, Bum::HeadEnd(u.local));
    // The VM on an access port.
    attach_vm(&sw, &pa, &vm, &format!("{VM_IP}/24"), VM_MAC);

    let d = Xvsd::start(&sw, &config(u.local, &up, &pa, u.remote, ""), &[]);

    // Unresolvable: the ARP request's VTEP copy is dropped and counted.
    assert!(!ping_once(&vm, VX_IP), "reply through a link that is down");
    let end = Instant::now() + Duration::from_secs(5);
    let mut dropped = 0;
    while dropped == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        dropped = counter(&d.stats(), "worker", "0", "drop_no_next_hop");
    }
    assert!(
        dropped > 0,
        "no drop counted while unresolved:\n{}",
        d.log()
    );
    let hop = next_hop(&d, u.remote);
    assert!(hop.starts_with("pending"), "next hop while down: {hop:?}");

    // The link comes up: xvsd's retries resolve it, traffic flows.
    peer.ip(&["link", "set", "eth0", "up"]);
    assert!(
        ping_until(&vm, VX_IP, Duration::from_secs(15)),
        "no ping reply once the underlay is up:\n{}",
        d.log()
    );
    assert!(ping_once(&vm, VX_IP));

    // The kernel decoded our frames: it learned the VM behind our VTEP.
    assert_kernel_learned(&peer, VM_MAC, u.local);
    // And we learned the kernel's MAC behind its VTEP.
    assert_learned(&d, VX_MAC, u.remote);
    let hop = next_hop(&d, u.remote);
    assert!(
        !hop.starts_with("pending"),
        "next hop after resolution: {hop:?}"
    );
    let st = d.stats();
    let decap = if u.local.contains(':') {
        "decap_v6"
    } else {
        "decap_v4"
    };
    assert!(counter(&st, "xdp", "", decap) > 0);
    assert!(d.stop().success());
}

#[test]
fn kernel_vxlan_peer_over_ipv4_with_next_hop_resolution() {
    if !privileged("kernel_vxlan_peer_over_ipv4_with_next_hop_resolution") {
        return;
    }
    run(&V4, "x4");
}

#[test]
fn kernel_vxlan_peer_over_ipv6_with_next_hop_resolution() {
    if !privileged("kernel_vxlan_peer_over_ipv6_with_next_hop_resolution") {
        return;
    }
    run(&V6, "x6");
}
