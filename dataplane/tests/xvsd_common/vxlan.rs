//! The VXLAN topology shared by the tests against the kernel's own VXLAN
//! driver: an underlay veth between xvsd's namespace and a peer's, the
//! peer's kernel VTEP, a VM on an access port, and the matching xvsd
//! config, plus the checks those tests make on both sides.
//!
//! ```text
//!  vm ns: eth0 10.9.0.1 ─ veth ─ pa ┐
//!                                   xvsd (sw ns) ─ up ─ veth ─ eth0 (peer ns)
//!                                                               └ vx: kernel VXLAN VNI 100, 10.9.0.2
//! ```

use std::time::{Duration, Instant};

use xvs_testkit::Netns;

use super::{veth_to_eth0, Xvsd};

/// The VM's overlay address.
pub const VM_IP: &str = "10.9.0.1";
/// The kernel VTEP's overlay address.
pub const VX_IP: &str = "10.9.0.2";

/// IPv6 on (`on`) or off in `ns`, duplicate address detection off.
pub fn ipv6(ns: &Netns, on: bool) {
    let v = if on { "0" } else { "1" };
    for k in ["all", "default"] {
        ns.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{k}.disable_ipv6={v}")],
        );
        ns.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{k}.accept_dad=0")],
        );
    }
}

/// One ping of `dst` from `ns`, waiting at most a second for the reply.
pub fn ping_once(ns: &Netns, dst: &str) -> bool {
    ns.exec_status("ping", &["-n", "-q", "-c", "1", "-W", "1", dst])
        .status
        .success()
}

/// Pings `dst` from `ns` until one answers, for at most `wait`.
pub fn ping_until(ns: &Netns, dst: &str, wait: Duration) -> bool {
    let end = Instant::now() + wait;
    while Instant::now() < end {
        if ping_once(ns, dst) {
            return true;
        }
    }
    false
}

/// A command's standard output as text.
pub fn text(out: std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The underlay veth: `up` with `local` (an address/prefix) in `sw` ─
/// `eth0` with `remote` in `peer`, both MTU 1600; the peer's end is set up
/// only if `peer_up`.
pub fn underlay(sw: &Netns, peer: &Netns, up: &str, local: &str, remote: &str, peer_up: bool) {
    veth_to_eth0(sw, up, peer);
    sw.ip(&["addr", "add", local, "dev", up, "nodad"]);
    sw.ip(&["link", "set", up, "mtu", "1600", "up"]);
    peer.ip(&["addr", "add", remote, "dev", "eth0", "nodad"]);
    peer.ip(&["link", "set", "eth0", "mtu", "1600"]);
    if peer_up {
        peer.ip(&["link", "set", "eth0", "up"]);
    }
    peer.exec("ethtool", &["-K", "eth0", "tx", "off"]);
}

/// Where the kernel VTEP sends BUM traffic.
pub enum Bum<'a> {
    /// Head-end replication to this VTEP address (xvsd's).
    HeadEnd(&'a str),
    /// To this multicast group over `eth0`; it listens on it too.
    Group(&'a str),
}

/// The peer's kernel VTEP `vx`: VNI 100, MAC `mac`, underlay address
/// `local`, learning on, overlay address [`VX_IP`], up.
pub fn kernel_vtep(peer: &Netns, mac: &str, local: &str, bum: Bum) {
    let mut args = vec![
        "link", "add", "vx", "address", mac, "type", "vxlan", "id", "100", "local", local,
    ];
    if let Bum::Group(g) = bum {
        args.extend(["group", g, "dev", "eth0"]);
    }
    args.extend(["dstport", "4789", "learning"]);
    peer.ip(&args);
    if let Bum::HeadEnd(dst) = bum {
        peer.exec(
            "bridge",
            &[
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vx",
                "dst",
                dst,
            ],
        );
    }
    peer.ip(&["addr", "add", &format!("{VX_IP}/24"), "dev", "vx"]);
    peer.ip(&["link", "set", "vx", "up"]);
}

/// xvsd's config: VTEP address `local`, uplink `up`, access port `pa` in
/// bridge domain `vni100` (VNI 100) flooding to `flood`; `extra` goes into
/// the bridge domain's table.
pub fn config(local: &str, up: &str, pa: &str, flood: &str, extra: &str) -> String {
    format!(
        "[vtep]\nlocal_ips = [\"{local}\"]\n\n\
         [[port]]\nname = \"{up}\"\nrole = \"uplink\"\n\n\
         [[port]]\nname = \"{pa}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"vni100\"\nvni = 100\nflood = [\"{flood}\"]\n\
         {extra}attach = [{{ port = \"{pa}\" }}]\n"
    )
}

/// What `show` says of the next hop to `addr` ("" if none).
pub fn next_hop(d: &Xvsd, addr: &str) -> String {
    d.show()["next_hops"][addr]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Asserts the peer's kernel VTEP learned `mac` behind VTEP `vtep`.
pub fn assert_kernel_learned(peer: &Netns, mac: &str, vtep: &str) {
    let fdb = text(peer.exec("bridge", &["fdb", "show", "dev", "vx"]));
    assert!(
        fdb.lines()
            .any(|l| l.starts_with(mac) && l.contains(&format!("dst {vtep}"))),
        "kernel VTEP did not learn {mac} behind {vtep}:\n{fdb}"
    );
}

/// Asserts xvsd learned `mac` behind VTEP `vtep`.
pub fn assert_learned(d: &Xvsd, mac: &str, vtep: &str) {
    let ours = d.fdb();
    let e = ours
        .iter()
        .find(|e| e.mac.to_string() == mac)
        .unwrap_or_else(|| panic!("{mac} not learned: {ours:?}"));
    assert_eq!(e.vtep.map(|a| a.to_string()).as_deref(), Some(vtep));
}
