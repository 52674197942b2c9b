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

use xvs_control::proto::{Reply, Request};
use xvs_testkit::{privileged, unique_name, Netns};
use xvsd_common::{counter, Xvsd};

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

/// Pings until a reply or 15 s.
fn ping_within(ns: &Netns, dst: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if ping_once(ns, dst) {
            return true;
        }
    }
    false
}

fn text(out: std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
    let local = format!("{}/{}", u.local, u.plen);
    sw.ip(&["addr", "add", &local, "dev", &up, "nodad"]);
    sw.ip(&["link", "set", &up, "mtu", "1600", "up"]);
    let remote = format!("{}/{}", u.remote, u.plen);
    peer.ip(&["addr", "add", &remote, "dev", "eth0", "nodad"]);
    peer.ip(&["link", "set", "eth0", "mtu", "1600", "up"]);
    peer.exec("ethtool", &["-K", "eth0", "tx", "off"]);
    // The kernel VTEP in group mode: BUM to G, and it listens on G.
    peer.ip(&[
        "link", "add", "vx", "address", VX_MAC, "type", "vxlan", "id", "100", "local", u.remote,
        "group", u.group, "dev", "eth0", "dstport", "4789", "learning",
    ]);
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
         learn_from_any_vtep = true\nattach = [{{ port = \"{pa}\" }}]\n",
        u.local, u.group
    );
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
        let show = match d.call(&Request::Show {}) {
            Ok(Reply::Show(v)) => v,
            other => panic!("show: {other:?}"),
        };
        let hop = show["next_hops"][u.group].as_str().unwrap_or("").to_owned();
        if hop == u.group_mac || Instant::now() > end {
            break hop;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(hop, u.group_mac, "next hop of the group");

    // VM → kernel VTEP: our ARP broadcast can only reach it through G.
    assert!(
        ping_within(&vm, "10.9.0.2"),
        "VM → kernel VTEP failed:\n{}",
        d.log()
    );
    let fdb = text(peer.exec("bridge", &["fdb", "show", "dev", "vx"]));
    assert!(
        fdb.lines()
            .any(|l| l.starts_with(VM_MAC) && l.contains(&format!("dst {}", u.local))),
        "kernel VTEP did not learn {VM_MAC} behind {}:\n{fdb}",
        u.local
    );

    // Kernel VTEP → VM with nothing cached: its ARP request goes to G.
    peer.ip(&["neigh", "flush", "dev", "vx"]);
    peer.exec("bridge", &["fdb", "del", VM_MAC, "dev", "vx"]);
    vm.ip(&["neigh", "flush", "dev", "eth0"]);
    let decap = if v6 { "decap_v6" } else { "decap_v4" };
    let before = counter(&d.stats(), "xdp", "", decap);
    assert!(
        ping_within(&peer, "10.9.0.1"),
        "kernel VTEP → VM failed:\n{}",
        d.log()
    );
    assert!(counter(&d.stats(), "xdp", "", decap) > before);
    let ours = d.fdb();
    let vx = ours
        .iter()
        .find(|e| e.mac.to_string() == VX_MAC)
        .unwrap_or_else(|| panic!("{VX_MAC} not learned: {ours:?}"));
    assert_eq!(vx.vtep.map(|a| a.to_string()).as_deref(), Some(u.remote));
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
