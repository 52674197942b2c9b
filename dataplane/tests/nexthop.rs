//! Next-hop resolution against the kernel's real tables, in namespaces of
//! the test's own: an on-link VTEP (IPv4 and IPv6), a VTEP behind a gateway,
//! an unroutable VTEP, and change notifications.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use xvs_dataplane::nexthop::{ChangeWatcher, NexthopError, Resolution, Resolver};
use xvs_testkit::{privileged, unique_name, Netns};

/// Two namespaces joined by a veth: `a` (192.0.2.1, 2001:db8::1) and `b`
/// (192.0.2.2, 2001:db8::2). Returns the namespaces, a's device and b's MAC.
fn pair() -> (Netns, Netns, String, [u8; 6]) {
    let a = Netns::new("nha");
    let b = Netns::new("nhb");
    let (da, db) = (unique_name("nh"), unique_name("nh"));
    a.ip(&["link", "add", &da, "type", "veth", "peer", "name", &db]);
    a.ip(&["link", "set", &db, "netns", b.name()]);
    for (ns, dev, v4, v6) in [
        (&a, &da, "192.0.2.1/24", "2001:db8::1/64"),
        (&b, &db, "192.0.2.2/24", "2001:db8::2/64"),
    ] {
        ns.ip(&["addr", "add", v4, "dev", dev]);
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    let out = b.exec("cat", &[&format!("/sys/class/net/{db}/address")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mac: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("hex MAC"))
        .collect();
    (a, b, da, mac.try_into().expect("6-byte MAC"))
}

/// Resolves `vtep` until resolved, at most 50 tries over 5 s. Returns the
/// first answer and the final one.
fn resolve_until_done(vtep: IpAddr) -> (Resolution, Resolution) {
    let mut r = Resolver::new().expect("resolver");
    let first = r.resolve(vtep).expect("first resolve");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = first;
    for _ in 0..50 {
        if matches!(last, Resolution::Resolved(_)) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        last = r.resolve(vtep).expect("resolve");
    }
    (first, last)
}

#[test]
fn on_link_vtep_resolves_to_its_mac_after_solicitation_v4_and_v6() {
    if !privileged("on_link_vtep_resolves_to_its_mac_after_solicitation_v4_and_v6") {
        return;
    }
    let (a, _b, dev, mac) = pair();
    let ifindex = a.ifindex(&dev);
    for vtep in ["192.0.2.2", "2001:db8::2"] {
        let vtep: IpAddr = vtep.parse().unwrap();
        let (first, last) = a.run(move || resolve_until_done(vtep));
        assert_eq!(
            first,
            Resolution::Pending {
                ifindex,
                neighbour: vtep
            },
            "nothing was known about {vtep} before"
        );
        match last {
            Resolution::Resolved(nh) => {
                assert_eq!(nh.ifindex, ifindex);
                assert_eq!(nh.gateway, None);
                assert_eq!(nh.mac, mac, "{vtep} resolved to the peer's MAC");
            }
            other => panic!("{vtep} never resolved: {other:?}"),
        }
    }
}

#[test]
fn vtep_behind_a_gateway_resolves_to_the_gateway_mac() {
    if !privileged("vtep_behind_a_gateway_resolves_to_the_gateway_mac") {
        return;
    }
    let (a, _b, dev, mac) = pair();
    a.ip(&["route", "add", "203.0.113.0/24", "via", "192.0.2.2"]);
    a.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:99::/64",
        "via",
        "2001:db8::2",
    ]);
    let ifindex = a.ifindex(&dev);
    for (vtep, gw) in [
        ("203.0.113.7", "192.0.2.2"),
        ("2001:db8:99::7", "2001:db8::2"),
    ] {
        let vtep: IpAddr = vtep.parse().unwrap();
        let gw: IpAddr = gw.parse().unwrap();
        let (first, last) = a.run(move || resolve_until_done(vtep));
        assert_eq!(
            first,
            Resolution::Pending {
                ifindex,
                neighbour: gw
            }
        );
        let Resolution::Resolved(nh) = last else {
            panic!("{vtep} never resolved: {last:?}");
        };
        assert_eq!((nh.ifindex, nh.gateway, nh.mac), (ifindex, Some(gw), mac));
    }
}

#[test]
fn unroutable_vtep_is_a_no_route_error() {
    if !privileged("unroutable_vtep_is_a_no_route_error") {
        return;
    }
    let (a, _b, _dev, _mac) = pair();
    a.ip(&["route", "add", "blackhole", "198.51.100.0/24"]);
    let errs = a.run(|| {
        let mut r = Resolver::new().expect("resolver");
        ["203.0.113.1", "198.51.100.1", "2001:db8:77::1"].map(|v| r.resolve(v.parse().unwrap()))
    });
    for e in errs {
        assert!(matches!(e, Err(NexthopError::NoRoute(_))), "{e:?}");
    }
}

#[test]
fn watcher_wakes_on_neighbour_and_route_changes_only() {
    if !privileged("watcher_wakes_on_neighbour_and_route_changes_only") {
        return;
    }
    let (a, _b, dev, _mac) = pair();
    let ns = a.name().to_string();
    let woke = a.run(move || {
        let mut w = ChangeWatcher::new().expect("watcher");
        // Drain whatever the setup announced, then expect quiet.
        let mut drained = 0;
        while w.wait(Duration::from_millis(200)).expect("wait") && drained < 20 {
            drained += 1;
        }
        let quiet = w.wait(Duration::from_millis(200)).expect("wait");
        let mac = "02:00:00:00:00:09";
        xvs_testkit::run(
            "ip",
            &[
                "-n",
                &ns,
                "neigh",
                "add",
                "192.0.2.9",
                "lladdr",
                mac,
                "dev",
                &dev,
            ],
        );
        let neigh = w.wait(Duration::from_secs(2)).expect("wait");
        let route = [
            "-n",
            &ns,
            "route",
            "add",
            "203.0.113.0/24",
            "via",
            "192.0.2.9",
        ];
        xvs_testkit::run("ip", &route);
        let route = w.wait(Duration::from_secs(2)).expect("wait");
        (quiet, neigh, route)
    });
    assert_eq!(
        woke,
        (false, true, true),
        "(quiet, neighbour added, route added)"
    );
}
