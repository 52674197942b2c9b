//! `xvsctl trace` against a running xvsd (privileged, in a namespace): an
//! uplink with a resolved remote VTEP and two access ports, one of them on
//! VLAN 10. Traces from a port (to a static remote MAC: the exact outer
//! headers), from the VTEP (decapsulated by the classifier, a new MAC that
//! would be learned), a tagged broadcast (flooded), a foreign VLAN (dropped
//! by the classifier); and none of it changes the FDB or any counter.

mod xvsd_common;

use std::time::{Duration, Instant};

use serde_json::Value;
use xvs_control::proto::{FdbEntry, Reply, Request};
use xvs_testkit::{privileged, unique_name, RawSocket};
use xvsd_common::{counter, frame, quiet_netns, recv_test, veth, Xvsd};

const M1: [u8; 6] = [0x02, 0, 0, 0, 0x71, 1];
const M2: [u8; 6] = [0x02, 0, 0, 0, 0x71, 2];
const M3: &str = "02:00:00:00:71:03";
const M9: &str = "02:00:00:00:71:09";
const HOP: &str = "02:00:00:00:71:ee";

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `fdb show` without the ages (they tick on their own).
fn fdb(d: &Xvsd) -> Vec<FdbEntry> {
    let mut v = d.fdb();
    for e in &mut v {
        e.age_secs = None;
    }
    v.sort_by_key(|e| (e.bd.clone(), e.mac));
    v
}

fn trace(d: &Xvsd, args: &[&str]) -> Value {
    let mut all = vec!["--json", "trace"];
    all.extend_from_slice(args);
    let out = d.xvsctl(&all);
    assert!(
        out.status.success(),
        "xvsctl {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("trace --json is JSON")
}

#[test]
fn trace_explains_frames_and_changes_nothing() {
    if !privileged("trace_explains_frames_and_changes_nothing") {
        return;
    }
    let ns = quiet_netns("xt");
    let [up, hu, p1, h1, p2, h2] = [
        unique_name("u"),
        unique_name("hu"),
        unique_name("p"),
        unique_name("h"),
        unique_name("p"),
        unique_name("h"),
    ];
    veth(&ns, &up, &hu, 1);
    veth(&ns, &p1, &h1, 1);
    veth(&ns, &p2, &h2, 1);
    // The underlay: our VTEP address on the uplink, the remote VTEP a
    // permanent neighbour behind it.
    ns.ip(&["addr", "add", "192.0.2.10/24", "dev", &up]);
    ns.ip(&[
        "neigh",
        "add",
        "192.0.2.1",
        "lladdr",
        HOP,
        "dev",
        &up,
        "nud",
        "permanent",
    ]);
    let config = format!(
        "[vtep]\nlocal_ips = [\"192.0.2.10\"]\n\n\
         [[port]]\nname = \"{up}\"\nrole = \"uplink\"\n\n\
         [[port]]\nname = \"{p1}\"\nrole = \"access\"\n\n\
         [[port]]\nname = \"{p2}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"blue\"\nvni = 100\nflood = [\"192.0.2.1\"]\n\
         attach = [{{ port = \"{p1}\" }}, {{ port = \"{p2}\", vlan = 10 }}]\n"
    );
    let d = Xvsd::start(
        &ns,
        &config,
        &["--xdp-mode", "native", "--metrics", "127.0.0.1:9418"],
    );

    // M1 learned at p1 by real traffic; M3 static behind the VTEP.
    let hh1 = h1.clone();
    ns.run(move || {
        let s = RawSocket::open(&hh1);
        s.send(&frame([0xff; 6], M1, 1, 60));
    });
    let ok = d.xvsctl(&["fdb", "add", "blue", M3, "--vtep", "192.0.2.1"]);
    assert!(ok.status.success(), "{ok:?}");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let show = match d.call(&Request::Show {}) {
            Ok(Reply::Show(v)) => v,
            other => panic!("show: {other:?}"),
        };
        let hop = show["next_hops"]["192.0.2.1"].as_str().unwrap_or("");
        let learned = d.fdb().iter().any(|e| e.mac.0 == M1);
        if hop.starts_with(HOP) && learned {
            break;
        }
        assert!(Instant::now() < end, "no next hop / no M1 in 10 s: {show}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Counters settle (workers publish every 200 ms, socket stats every 1 s).
    std::thread::sleep(Duration::from_millis(1500));
    let fdb_before = fdb(&d);
    // The bridge domain's FDB size, in stats and as a Prometheus gauge.
    let stats = d.stats();
    assert_eq!(counter(&stats, "bd", "blue", "fdb_entries"), 2, "{stats:?}");
    assert_eq!(counter(&stats, "bd", "blue", "fdb_learned"), 1);
    let metrics = ns.run(|| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.0.0.1:9418").expect("metrics port");
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("metrics response");
        text
    });
    assert!(
        metrics.contains("# TYPE xvs_bd_fdb_entries gauge")
            && metrics.contains("xvs_bd_fdb_entries{instance=\"blue\"} 2"),
        "{metrics}"
    );
    let stats_idle = d.stats();
    std::thread::sleep(Duration::from_millis(1500));
    let stats_before = d.stats();
    // Counters that move on their own while idle (the kernel counts every
    // empty-TX-ring wakeup of an idle socket): only those are left out.
    let idle_noise: Vec<(String, String)> = stats_idle
        .iter()
        .zip(&stats_before)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| (a.instance.clone(), a.name.clone()))
        .collect();
    assert!(
        idle_noise.iter().all(|(_, n)| n.starts_with("xsk_")),
        "counters moved with no traffic: {idle_noise:?}"
    );

    // 1. From p1 to the static remote MAC: encapsulated towards the VTEP.
    let t = trace(&d, &["--port", &p1, "--src-mac", &mac(M1), "--dst-mac", M3]);
    assert_eq!(t["xdp"]["action"], "redirect", "{t:#}");
    let xdp: Vec<&str> = t["xdp"]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(xdp.contains(&"switched_access"), "{xdp:?}");
    assert_eq!(t["learn"]["outcome"], "refresh", "{t:#}");
    assert_eq!(t["lookup"]["outcome"], "hit", "{t:#}");
    assert_eq!(t["decision"], "unicast", "{t:#}");
    let e = &t["egress"][0];
    assert_eq!(e["sent"], true, "{t:#}");
    assert_eq!(e["port"], up.as_str());
    let o = &e["outer"];
    assert_eq!(o["src_ip"], "192.0.2.10");
    assert_eq!(o["dst_ip"], "192.0.2.1");
    assert_eq!(o["dst_mac"], HOP);
    assert_eq!(
        (o["udp_dst"].as_u64(), o["vni"].as_u64()),
        (Some(4789), Some(100))
    );
    assert_eq!(
        (o["ttl"].as_u64(), o["df"].as_bool()),
        (Some(64), Some(true))
    );
    let sport = o["udp_src"].as_u64().unwrap();
    assert!((49152..=65535).contains(&sport), "{sport}");
    assert_eq!(e["len"].as_u64(), Some(60 + 50));

    // 2. From the VTEP: decapsulated by the classifier; a new MAC.
    let t = trace(
        &d,
        &[
            "--vtep",
            "192.0.2.1",
            "--vni",
            "100",
            "--src-mac",
            M9,
            "--dst-mac",
            &mac(M1),
        ],
    );
    assert_eq!(t["xdp"]["action"], "redirect", "{t:#}");
    let xdp = t["xdp"]["counters"].to_string();
    assert!(xdp.contains("decap_v4"), "{xdp}");
    assert_eq!(t["learn"]["outcome"], "learn", "{t:#}");
    assert_eq!(t["decision"], "unicast");
    assert_eq!(t["egress"][0]["port"], p1.as_str());
    assert_eq!(t["egress"][0]["len"].as_u64(), Some(60));

    // 3. A broadcast on VLAN 10 of p2: flooded to p1 and the VTEP.
    let t = trace(
        &d,
        &[
            "--port",
            &p2,
            "--vlan",
            "10",
            "--src-mac",
            &mac(M2),
            "--dst-mac",
            "ff:ff:ff:ff:ff:ff",
        ],
    );
    assert_eq!(t["decision"], "flood", "{t:#}");
    assert_eq!(t["lookup"]["outcome"], "group");
    let to: Vec<&str> = t["egress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, vec![p1.as_str(), "vtep 192.0.2.1 vni 100"], "{t:#}");

    // 4. VLAN 20 is not attached: the classifier drops it.
    let t = trace(
        &d,
        &[
            "--port",
            &p2,
            "--vlan",
            "20",
            "--src-mac",
            &mac(M2),
            "--dst-mac",
            &mac(M1),
        ],
    );
    assert_eq!(t["xdp"]["action"], "drop", "{t:#}");
    assert_eq!(t["counter"], "drop_unknown_attachment", "{t:#}");

    // The human form.
    let out = d.xvsctl(&[
        "trace",
        "--port",
        &p1,
        "--src-mac",
        &mac(M1),
        "--dst-mac",
        M3,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("XDP       redirect"), "{text}");
    assert!(
        text.contains("outer IP 192.0.2.10 > 192.0.2.1, ttl 64, DF"),
        "{text}"
    );

    // Nothing was sent, learned or counted.
    let hh1 = h1.clone();
    let hhu = hu.clone();
    let leaked = ns.run(move || {
        let s1 = RawSocket::open(&hh1);
        let su = RawSocket::open(&hhu);
        let a = recv_test(&s1, 1, Duration::from_millis(300));
        let b = su.recv_matching(1, Duration::from_millis(300), |b| {
            b.len() > 42 && b[12..14] == [0x08, 0x00] && b[36..38] == 4789u16.to_be_bytes()
        });
        a.len() + b.len()
    });
    assert_eq!(leaked, 0, "a traced frame was sent");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fdb(&d), fdb_before, "trace changed the FDB");
    let stats_after = d.stats();
    let changed: Vec<_> = stats_before
        .iter()
        .zip(&stats_after)
        .filter(|(a, b)| a != b)
        .filter(|(a, _)| !idle_noise.contains(&(a.instance.clone(), a.name.clone())))
        .collect();
    assert!(
        changed.is_empty() && stats_before.len() == stats_after.len(),
        "trace moved counters: {changed:?}"
    );
    let _ = h2;
    assert!(d.stop().success());
}
