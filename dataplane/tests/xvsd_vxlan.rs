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

use xvs_control::proto::{Reply, Request};
use xvs_testkit::{privileged, unique_name, Netns};
use xvsd_common::{counter, Xvsd};

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

fn ipv6(ns: &Netns, on: bool) {
    let v = if on { "0" } else { "1" };
    for k in ["all", "default"] {
        ns.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{k}.disable_ipv6={v}")],
        );
    }
    ns.exec("sysctl", &["-qw", "net.ipv6.conf.all.accept_dad=0"]);
    ns.exec("sysctl", &["-qw", "net.ipv6.conf.default.accept_dad=0"]);
}

fn ping_once(ns: &Netns, dst: &str) -> bool {
    ns.exec_status("ping", &["-n", "-q", "-c", "1", "-W", "1", dst])
        .status
        .success()
}

fn run(u: &Underlay, prefix: &str) {
    let sw = Netns::new(&format!("{prefix}s"));
    let peer = Netns::new(&format!("{prefix}p"));
    let vm = Netns::new(&format!("{prefix}v"));
    ipv6(&sw, u.local.contains(':'));
    ipv6(&peer, u.local.contains(':'));
    ipv6(&vm, false);
    let (up, pa) = (unique_name("u"), unique_name("a"));

    // Underlay: sw/up ⇄ peer/eth0, the peer's end down for now.
    sw.ip(&[
        "link",
        "add",
        &up,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        peer.name(),
    ]);
    sw.ip(&[
        "addr",
        "add",
        &format!("{}/{}", u.local, u.plen),
        "dev",
        &up,
        "nodad",
    ]);
    sw.ip(&["link", "set", &up, "mtu", "1600", "up"]);
    peer.ip(&[
        "addr",
        "add",
        &format!("{}/{}", u.remote, u.plen),
        "dev",
        "eth0",
        "nodad",
    ]);
    peer.ip(&["link", "set", "eth0", "mtu", "1600"]);
    peer.exec("ethtool", &["-K", "eth0", "tx", "off"]);
    // The kernel VTEP: BUM to us by head-end replication, learning on.
    peer.ip(&[
        "link", "add", "vx", "address", VX_MAC, "type", "vxlan", "id", "100", "local", u.remote,
        "dstport", "4789", "learning",
    ]);
    peer.exec(
        "bridge",
        &[
            "fdb",
            "append",
            "00:00:00:00:00:00",
            "dev",
            "vx",
            "dst",
            u.local,
        ],
    );
    peer.ip(&["addr", "add", "10.9.0.2/24", "dev", "vx"]);
    peer.ip(&["link", "set", "vx", "up"]);
    // The VM on an access port.
    sw.ip(&[
        "link",
        "add",
        &pa,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        vm.name(),
    ]);
    sw.ip(&["link", "set", &pa, "up"]);
    vm.ip(&["link", "set", "eth0", "address", VM_MAC, "up"]);
    vm.ip(&["addr", "add", "10.9.0.1/24", "dev", "eth0"]);
    vm.exec("ethtool", &["-K", "eth0", "tx", "off"]);

    let config = format!(
        "[vtep]\nlocal_ips = [\"{}\"]\n\n\
         [[port]]\nname = \"{up}\"\nrole = \"uplink\"\n\n\
         [[port]]\nname = \"{pa}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"vni100\"\nvni = 100\nflood = [\"{}\"]\n\
         attach = [{{ port = \"{pa}\" }}]\n",
        u.local, u.remote
    );
    let d = Xvsd::start(&sw, &config, &[]);

    // Unresolvable: the ARP request's VTEP copy is dropped and counted.
    assert!(
        !ping_once(&vm, "10.9.0.2"),
        "reply through a link that is down"
    );
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
    let show = match d.call(&Request::Show {}) {
        Ok(Reply::Show(v)) => v,
        other => panic!("show: {other:?}"),
    };
    let hop = show["next_hops"][u.remote]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(hop.starts_with("pending"), "next hop while down: {hop:?}");

    // The link comes up: xvsd's retries resolve it, traffic flows.
    peer.ip(&["link", "set", "eth0", "up"]);
    let end = Instant::now() + Duration::from_secs(15);
    let mut ok = false;
    while !ok && Instant::now() < end {
        ok = ping_once(&vm, "10.9.0.2");
    }
    assert!(ok, "no ping reply once the underlay is up:\n{}", d.log());
    assert!(ping_once(&vm, "10.9.0.2"));

    // The kernel decoded our frames: it learned the VM behind our VTEP.
    let fdb = String::from_utf8_lossy(&peer.exec("bridge", &["fdb", "show", "dev", "vx"]).stdout)
        .into_owned();
    assert!(
        fdb.lines()
            .any(|l| l.starts_with(VM_MAC) && l.contains(&format!("dst {}", u.local))),
        "kernel VTEP did not learn {VM_MAC} behind {}:\n{fdb}",
        u.local
    );
    // And we learned the kernel's MAC behind its VTEP.
    let ours = d.fdb();
    let vx = ours
        .iter()
        .find(|e| e.mac.to_string() == VX_MAC)
        .unwrap_or_else(|| panic!("{VX_MAC} not learned: {ours:?}"));
    assert_eq!(vx.vtep.map(|a| a.to_string()).as_deref(), Some(u.remote));
    let show = match d.call(&Request::Show {}) {
        Ok(Reply::Show(v)) => v,
        other => panic!("show: {other:?}"),
    };
    let hop = show["next_hops"][u.remote]
        .as_str()
        .unwrap_or("")
        .to_owned();
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
