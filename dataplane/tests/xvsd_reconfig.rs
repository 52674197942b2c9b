//! Live reconfiguration of a running xvsd, through the real xvsctl: every
//! mutating verb round-trips (`config dump` shows exactly the change) and
//! traffic follows it; `config apply` switches to a valid file and leaves a
//! broken one (bad TOML, invalid, unknown interface, two uplinks, a port
//! that fails half-way) without a trace; and a bridge domain added and
//! removed again and again while another one carries a counted stream costs
//! that stream no frame.

mod xvsd_common;

use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use xvs_control::config::{AttachConfig, BridgeDomainConfig, Config, PortConfig, Role};
use xvs_control::proto::{Reply, Request};
use xvs_testkit::{privileged, unique_name, Netns, RawSocket};
use xvsd_common::{
    counter, frame, is_test_frame, quiet_netns, recv_test, seq_of, tagged, veth, Xvsd,
};

const M1: [u8; 6] = [0x02, 0, 0, 0, 0x61, 1];
const M2: [u8; 6] = [0x02, 0, 0, 0, 0x61, 2];
const M3: [u8; 6] = [0x02, 0, 0, 0, 0x61, 3];
const BCAST: [u8; 6] = [0xff; 6];
const LOCAL_VTEP: &str = "10.77.0.1";
const REMOTE_VTEP: &str = "10.77.0.2";
const REMOTE_MAC: &str = "02:00:00:00:77:02";
const GROUP: &str = "239.7.7.7";

fn ok(d: &Xvsd, args: &[&str]) -> String {
    let out = d.xvsctl(args);
    assert!(
        out.status.success(),
        "xvsctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(d: &Xvsd, args: &[&str]) -> String {
    let out: Output = d.xvsctl(args);
    assert!(
        !out.status.success(),
        "xvsctl {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dump(d: &Xvsd) -> Config {
    Config::parse(&ok(d, &["config", "dump"])).expect("config dump parses")
}

fn show(d: &Xvsd) -> Value {
    serde_json::from_str(&ok(d, &["--json", "show"])).expect("show --json")
}

fn show_ports(d: &Xvsd) -> Vec<String> {
    show(d)["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn show_bds(d: &Xvsd) -> Vec<String> {
    show(d)["bridge_domains"]
        .as_array()
        .expect("bridge_domains")
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn access(name: &str) -> PortConfig {
    PortConfig {
        name: name.into(),
        role: Role::Access,
    }
}

fn attach(port: &str, vlan: Option<u16>) -> AttachConfig {
    AttachConfig {
        port: port.into(),
        vlan,
    }
}

fn bd<'a>(c: &'a mut Config, name: &str) -> &'a mut BridgeDomainConfig {
    c.bridge_domains
        .iter_mut()
        .find(|b| b.name == name)
        .expect("bridge domain")
}

/// Worker 0's free UMEM frames once they stop changing (idle daemon).
fn settled_free_frames(d: &Xvsd) -> u64 {
    let mut last = u64::MAX;
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        std::thread::sleep(Duration::from_millis(450));
        let now = counter(&d.stats(), "worker", "0", "umem_frames_free");
        if now == last || Instant::now() > end {
            return now;
        }
        last = now;
    }
}

/// Sends `f` on `from` and returns the test frames `to` receives within
/// `wait` (at most `want`).
fn exchange(
    ns: &Netns,
    from: &str,
    to: &str,
    f: Vec<u8>,
    want: usize,
    wait: Duration,
) -> Vec<xvs_testkit::RawFrame> {
    let (from, to) = (from.to_owned(), to.to_owned());
    ns.run(move || {
        let rx = RawSocket::open(&to);
        let tx = RawSocket::open_send_only(&from);
        tx.send(&f);
        recv_test(&rx, want, wait)
    })
}

/// Whether `hup` sees `f` encapsulated (IPv4, UDP 4789, VNI `vni`, to
/// `dst`) within `wait`, while `h1` sends it every 200 ms.
fn vxlan_seen(
    ns: &Netns,
    ends: (&str, &str),
    f: Vec<u8>,
    (vni, dst): (u32, &str),
    wait: Duration,
) -> bool {
    vxlan_capture(ns, ends, f, (vni, dst, 4789), wait).is_some()
}

/// The first frame `hup` receives carrying `f` encapsulated (IPv4, UDP to
/// `port`, VNI `vni`, to `dst`) within `wait`, while `h1` sends `f` every
/// 200 ms.
fn vxlan_capture(
    ns: &Netns,
    (hup, h1): (&str, &str),
    f: Vec<u8>,
    (vni, dst, port): (u32, &str, u16),
    wait: Duration,
) -> Option<Vec<u8>> {
    let dst: std::net::Ipv4Addr = dst.parse().unwrap();
    let (hup, h1) = (hup.to_owned(), h1.to_owned());
    ns.run(move || {
        let rx = RawSocket::open(&hup);
        let tx = RawSocket::open_send_only(&h1);
        let end = Instant::now() + wait;
        while Instant::now() < end {
            tx.send(&f);
            let got = rx.recv_matching(1, Duration::from_millis(200), |b| {
                b.len() >= 50 + 14
                    && b[12..14] == [0x08, 0x00]
                    && b[23] == 17
                    && b[30..34] == dst.octets()
                    && b[36..38] == port.to_be_bytes()
                    && u32::from_be_bytes([0, b[46], b[47], b[48]]) == vni
                    && b[50..] == f[..]
            });
            if let Some(g) = got.into_iter().next() {
                return Some(g.bytes);
            }
        }
        None
    })
}

/// An uplink `up` (peer `hup`) with the local VTEP address and a permanent
/// neighbour for the remote VTEP, and access veths `p1..` / `h1..`.
fn topology(
    prefix: &str,
    access_pairs: usize,
    queues: u32,
) -> (Netns, [String; 2], Vec<[String; 2]>) {
    let ns = quiet_netns(prefix);
    let up = [unique_name("u"), unique_name("hu")];
    veth(&ns, &up[0], &up[1], queues);
    ns.ip(&["addr", "add", &format!("{LOCAL_VTEP}/24"), "dev", &up[0]]);
    ns.ip(&[
        "neigh",
        "add",
        REMOTE_VTEP,
        "lladdr",
        REMOTE_MAC,
        "dev",
        &up[0],
        "nud",
        "permanent",
    ]);
    let pairs: Vec<[String; 2]> = (0..access_pairs)
        .map(|_| {
            let pair = [unique_name("p"), unique_name("h")];
            veth(&ns, &pair[0], &pair[1], queues);
            pair
        })
        .collect();
    (ns, up, pairs)
}

fn base_config(up: &str, p1: &str, p2: &str) -> String {
    format!(
        "[vtep]\nlocal_ips = [\"{LOCAL_VTEP}\"]\n\n\
         [[port]]\nname = \"{up}\"\nrole = \"uplink\"\n\n\
         [[port]]\nname = \"{p1}\"\nrole = \"access\"\n\n\
         [[port]]\nname = \"{p2}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"blue\"\nvni = 100\n\
         attach = [{{ port = \"{p1}\" }}, {{ port = \"{p2}\" }}]\n"
    )
}

/// `h1` → `h2` in blue still works (unknown unicast, flooded to p2).
fn blue_flows(ns: &Netns, h1: &str, h2: &str, seq: u32) {
    let f = frame(M2, M1, seq, 80);
    let got = exchange(ns, h1, h2, f.clone(), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "blue h1 → h2 frame {seq} lost");
    assert_eq!(got[0].bytes, f);
}

#[test]
fn every_mutating_verb_round_trips_and_traffic_follows() {
    if !privileged("every_mutating_verb_round_trips_and_traffic_follows") {
        return;
    }
    let (ns, [up, hup], pairs) = topology("xr", 3, 1);
    let ([p1, h1], [p2, h2], [p3, h3]) = (pairs[0].clone(), pairs[1].clone(), pairs[2].clone());
    let d = Xvsd::start(&ns, &base_config(&up, &p1, &p2), &["--xdp-mode", "native"]);
    let mut want = dump(&d);
    let free_before = settled_free_frames(&d);

    // port add
    ok(&d, &["port", "add", &p3, "--role", "access"]);
    want.ports.push(access(&p3));
    assert_eq!(dump(&d), want);
    assert!(show_ports(&d).contains(&p3));
    assert!(fails(&d, &["port", "add", &p3, "--role", "access"]).contains("already exists"));

    // bd add, attach (untagged and tagged)
    ok(
        &d,
        &["bd", "add", "green", "--vni", "200", "--max-macs", "50"],
    );
    want.bridge_domains.push(BridgeDomainConfig {
        name: "green".into(),
        vni: Some(200),
        max_macs: Some(50),
        ..BridgeDomainConfig::default()
    });
    assert_eq!(dump(&d), want);
    assert!(show_bds(&d).contains(&"green".to_string()));
    ok(&d, &["attach", "green", &p3]);
    ok(&d, &["attach", "green", &p2, "--vlan", "20"]);
    bd(&mut want, "green").attach = vec![attach(&p3, None), attach(&p2, Some(20))];
    assert_eq!(dump(&d), want);
    assert!(fails(&d, &["attach", "green", &up]).contains("uplink"));

    // Traffic in green: h3 → (p2, VLAN 20) and back; blue untouched.
    let f = frame(M2, M3, 1, 90);
    let got = exchange(&ns, &h3, &h2, f.clone(), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "green: h3 → h2 not forwarded");
    assert_eq!((got[0].bytes.clone(), got[0].vlan), (f, Some(20)));
    let g = frame(M3, M2, 2, 90);
    let got = exchange(&ns, &h2, &h3, tagged(&g, 20), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "green: h2 vlan 20 → h3 not forwarded");
    assert_eq!((got[0].bytes.clone(), got[0].vlan), (g.clone(), None));
    blue_flows(&ns, &h1, &h2, 3);

    // detach: M3 is known at p3, but p3 is out of green now.
    ok(&d, &["detach", "green", &p3]);
    bd(&mut want, "green").attach = vec![attach(&p2, Some(20))];
    assert_eq!(dump(&d), want);
    assert!(fails(&d, &["detach", "green", &p3]).contains("not attached"));
    let got = exchange(&ns, &h2, &h3, tagged(&g, 20), 1, Duration::from_millis(500));
    assert!(got.is_empty(), "detached port still receives: {got:?}");
    let got = exchange(
        &ns,
        &h3,
        &h2,
        frame(M2, M3, 4, 90),
        1,
        Duration::from_millis(500),
    );
    assert!(got.is_empty(), "detached port still sends: {got:?}");

    // flood add: a broadcast in blue goes to the VTEP, encapsulated.
    ok(&d, &["flood", "add", "blue", REMOTE_VTEP]);
    bd(&mut want, "blue").flood = vec![REMOTE_VTEP.parse().unwrap()];
    assert_eq!(dump(&d), want);
    let b = frame(BCAST, M1, 5, 100);
    assert!(
        vxlan_seen(
            &ns,
            (&hup, &h1),
            b.clone(),
            (100, REMOTE_VTEP),
            Duration::from_secs(6)
        ),
        "no VXLAN copy to {REMOTE_VTEP} after flood add"
    );
    assert!(show(&d)["next_hops"].get(REMOTE_VTEP).is_some());
    ok(&d, &["flood", "del", "blue", REMOTE_VTEP]);
    bd(&mut want, "blue").flood.clear();
    assert_eq!(dump(&d), want);
    assert!(
        !vxlan_seen(
            &ns,
            (&hup, &h1),
            b.clone(),
            (100, REMOTE_VTEP),
            Duration::from_millis(600)
        ),
        "VXLAN copy after flood del"
    );
    assert!(fails(&d, &["flood", "del", "blue", REMOTE_VTEP]).contains("not in"));
    // The next-hop table forgets the VTEP (rescanned every second).
    let end = Instant::now() + Duration::from_secs(5);
    while show(&d)["next_hops"].get(REMOTE_VTEP).is_some() {
        assert!(Instant::now() < end, "{REMOTE_VTEP} still in next_hops");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A multicast flood group: joined on the uplink, floods go to it; and
    // left again. (A group needs learn_from_any_vtep: its senders are not
    // in the flood list. The config says so live too.)
    let err = fails(&d, &["flood", "add", "blue", GROUP]);
    assert!(err.contains("learn_from_any_vtep"), "{err}");
    assert_eq!(dump(&d), want);
    let mut open_blue = want.clone();
    bd(&mut open_blue, "blue").learn_from_any_vtep = true;
    let path = std::env::temp_dir().join(unique_name("ob"));
    std::fs::write(&path, open_blue.to_toml()).unwrap();
    ok(&d, &["config", "apply", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    want = open_blue;
    assert_eq!(dump(&d), want);
    let joined = |ns: &Netns| {
        let out = ns.ip(&["maddr", "show", "dev", &up]);
        String::from_utf8_lossy(&out.stdout).contains(GROUP)
    };
    ok(&d, &["flood", "add", "blue", GROUP]);
    bd(&mut want, "blue").flood = vec![GROUP.parse().unwrap()];
    assert_eq!(dump(&d), want);
    assert!(joined(&ns), "uplink did not join {GROUP}");
    assert!(
        vxlan_seen(
            &ns,
            (&hup, &h1),
            b.clone(),
            (100, GROUP),
            Duration::from_secs(6)
        ),
        "no VXLAN copy to {GROUP} after flood add"
    );
    ok(&d, &["flood", "del", "blue", GROUP]);
    bd(&mut want, "blue").flood.clear();
    assert_eq!(dump(&d), want);
    assert!(!joined(&ns), "uplink still in {GROUP}");

    // fdb add | del | flush
    ok(
        &d,
        &["fdb", "add", "blue", "02:00:00:00:61:99", "--port", &p1],
    );
    let fdb: Value = serde_json::from_str(&ok(&d, &["--json", "fdb", "show", "blue"])).unwrap();
    let statics: Vec<&Value> = fdb
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "static")
        .collect();
    assert_eq!(statics.len(), 1, "{fdb}");
    assert_eq!(statics[0]["mac"], "02:00:00:00:61:99");
    assert_eq!(statics[0]["port"], p1.as_str());
    ok(&d, &["fdb", "del", "blue", "02:00:00:00:61:99"]);
    ok(&d, &["fdb", "flush", "blue"]);
    let fdb: Value = serde_json::from_str(&ok(&d, &["--json", "fdb", "show", "blue"])).unwrap();
    assert_eq!(fdb.as_array().unwrap().len(), 0, "{fdb}");
    assert_eq!(dump(&d), want, "FDB verbs do not change the config");

    // port del: the port is gone from config, show and the data path, and
    // its sockets gave their frames back.
    ok(&d, &["port", "del", &p3]);
    want.ports.retain(|p| p.name != p3);
    assert_eq!(dump(&d), want);
    assert!(!show_ports(&d).contains(&p3));
    assert!(fails(&d, &["port", "del", &p3]).contains("no port"));
    assert_eq!(
        settled_free_frames(&d),
        free_before,
        "UMEM frames back after port add + del"
    );

    // bd del
    ok(&d, &["bd", "del", "green"]);
    want.bridge_domains.retain(|b| b.name != "green");
    assert_eq!(dump(&d), want);
    assert!(!show_bds(&d).contains(&"green".to_string()));
    let got = exchange(&ns, &h2, &h1, tagged(&g, 20), 1, Duration::from_millis(400));
    assert!(got.is_empty(), "VLAN 20 of a deleted BD leaked: {got:?}");

    // Add the port back under the same name: it works again.
    ok(&d, &["port", "add", &p3, "--role", "access"]);
    ok(&d, &["attach", "blue", &p3]);
    let f = frame(M1, M3, 6, 70);
    let got = exchange(&ns, &h3, &h1, f.clone(), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "re-added port does not forward");
    blue_flows(&ns, &h1, &h2, 7);

    // Delete and add back at once, a few times (the kernel releases a
    // closed socket's queue asynchronously; the bind is retried).
    for _ in 0..3 {
        ok(&d, &["port", "del", &p3]);
        ok(&d, &["port", "add", &p3, "--role", "access"]);
    }
    ok(&d, &["attach", "blue", &p3]);
    let got = exchange(
        &ns,
        &h3,
        &h1,
        frame(M1, M3, 8, 70),
        1,
        Duration::from_secs(3),
    );
    assert_eq!(got.len(), 1, "port added back at once does not forward");
    assert!(d.stop().success());
}

#[test]
fn config_apply_switches_atomically_or_changes_nothing() {
    if !privileged("config_apply_switches_atomically_or_changes_nothing") {
        return;
    }
    let (ns, [up, _hup], pairs) = topology("xa", 3, 1);
    let ([p1, h1], [p2, h2], [p3, h3]) = (pairs[0].clone(), pairs[1].clone(), pairs[2].clone());
    let d = Xvsd::start(&ns, &base_config(&up, &p1, &p2), &["--xdp-mode", "native"]);
    let dir = std::env::temp_dir().join(unique_name("xa"));
    std::fs::create_dir_all(&dir).unwrap();
    let apply = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        d.xvsctl(&["config", "apply", path.to_str().unwrap()])
    };

    // A valid file: p3 joins, blue gains a flood entry, a new BD "red"
    // holds p2's VLAN 30.
    let next = format!(
        "{}flood = [\"{REMOTE_VTEP}\"]\n\n\
         [[port]]\nname = \"{p3}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"red\"\nattach = [{{ port = \"{p3}\" }}, {{ port = \"{p2}\", vlan = 30 }}]\n",
        base_config(&up, &p1, &p2)
    );
    let out = apply("next.toml", &next);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = Config::parse(&next).unwrap();
    assert_eq!(
        ok(&d, &["config", "dump"]),
        file.to_toml(),
        "dump is the file, normalised"
    );
    let f = frame(M2, M3, 1, 64);
    let got = exchange(&ns, &h3, &h2, f.clone(), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "red: h3 → h2 not forwarded");
    assert_eq!(got[0].vlan, Some(30));
    blue_flows(&ns, &h1, &h2, 2);

    // Broken files: each refused with its reason; nothing changes.
    let before = ok(&d, &["config", "dump"]);
    let two_uplinks = next.replace(
        &format!("name = \"{p3}\"\nrole = \"access\""),
        &format!("name = \"{p3}\"\nrole = \"uplink\""),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("syntax.toml", "[[port]\nname = ".into(), "syntax"),
        ("vni.toml", next.replace("vni = 100", "vni = 0"), "vni 0"),
        (
            "missing.toml",
            next.replace(&format!("name = \"{p3}\""), "name = \"nosuchif0\"")
                .replace(&format!("port = \"{p3}\""), "port = \"nosuchif0\""),
            "nosuchif0",
        ),
        ("uplinks.toml", two_uplinks, "uplink"),
        (
            "vtep.toml",
            next.replace("local_ips = [", "local_ips = [\"224.1.1.1\", "),
            "vtep",
        ),
    ];
    for (name, text, why) in cases {
        let out = apply(name, &text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains(why),
            "{name}: {err:?} does not mention {why:?}"
        );
        assert_eq!(
            ok(&d, &["config", "dump"]),
            before,
            "{name} changed the config"
        );
        blue_flows(&ns, &h1, &h2, 10);
    }

    // Back to the start file: p3 and red go.
    let out = apply("base.toml", &base_config(&up, &p1, &p2));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        dump(&d),
        Config::parse(&base_config(&up, &p1, &p2)).unwrap()
    );
    let got = exchange(
        &ns,
        &h3,
        &h1,
        frame(M1, M3, 11, 64),
        1,
        Duration::from_millis(400),
    );
    assert!(got.is_empty(), "removed port still switched: {got:?}");
    blue_flows(&ns, &h1, &h2, 12);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(d.stop().success());
}

#[test]
fn a_port_that_fails_half_way_is_rolled_back() {
    if !privileged("a_port_that_fails_half_way_is_rolled_back") {
        return;
    }
    // Two workers, but the new port's veth has one RX queue: worker 0 opens
    // its socket, worker 1 cannot. Everything done is undone.
    let (ns, [up, _hup], pairs) = topology("xb", 2, 2);
    let ([p1, h1], [p2, h2]) = (pairs[0].clone(), pairs[1].clone());
    let (p3, h3) = (unique_name("p"), unique_name("h"));
    veth(&ns, &p3, &h3, 1);
    let d = Xvsd::start(
        &ns,
        &base_config(&up, &p1, &p2),
        &["--xdp-mode", "native", "--queues", "2"],
    );
    let before = ok(&d, &["config", "dump"]);
    let free_before = settled_free_frames(&d);
    let err = fails(&d, &["port", "add", &p3, "--role", "access"]);
    assert!(err.contains("queue 1"), "{err}");
    assert_eq!(ok(&d, &["config", "dump"]), before);
    assert!(!show_ports(&d).contains(&p3));
    assert_eq!(
        settled_free_frames(&d),
        free_before,
        "worker 0's socket gave its frames back"
    );
    // p3 is not switched (no XDP left on it): the kernel sees its frames.
    let got = exchange(
        &ns,
        &h3,
        &h1,
        frame(M1, M3, 1, 64),
        1,
        Duration::from_millis(400),
    );
    assert!(got.is_empty());
    blue_flows(&ns, &h1, &h2, 2);
    assert!(d.stop().success());
}

#[test]
fn bridge_domain_churn_loses_no_frame_of_another_bridge_domain() {
    if !privileged("bridge_domain_churn_loses_no_frame_of_another_bridge_domain") {
        return;
    }
    const FRAMES: u32 = 4000;
    let (ns, [up, _hup], pairs) = topology("xc", 3, 1);
    let ([p1, h1], [p2, h2], [p3, _h3]) = (pairs[0].clone(), pairs[1].clone(), pairs[2].clone());
    let config = format!(
        "{}\n[[port]]\nname = \"{p3}\"\nrole = \"access\"\n",
        base_config(&up, &p1, &p2)
    );
    let d = Xvsd::start(&ns, &config, &["--xdp-mode", "native"]);
    // M2 known at p2, so the stream is known unicast.
    let _ = exchange(
        &ns,
        &h2,
        &h1,
        frame(M1, M2, 0, 64),
        1,
        Duration::from_secs(3),
    );

    let done = Arc::new(AtomicBool::new(false));
    let (hh1, hh2b) = (h1.clone(), h2.clone());
    let receiver_ready = Arc::new(AtomicBool::new(false));
    let ready = receiver_ready.clone();
    let ns_name = ns.name().to_owned();
    let rx_thread = std::thread::spawn(move || {
        xvs_testkit::enter(&format!("/run/netns/{ns_name}"));
        let rx = RawSocket::open(&hh2b);
        ready.store(true, Ordering::Release);
        let mut seen = vec![false; FRAMES as usize];
        let mut n = 0u32;
        let end = Instant::now() + Duration::from_secs(60);
        let mut buf = vec![0u8; 4096];
        while n < FRAMES && Instant::now() < end {
            if let Some(f) = rx.recv_one(&mut buf) {
                if is_test_frame(&f.bytes) && f.bytes[0..6] == M2 {
                    let s = seq_of(&f.bytes) as usize;
                    if (1..=FRAMES as usize).contains(&s) && !seen[s - 1] {
                        seen[s - 1] = true;
                        n += 1;
                    }
                }
            }
        }
        n
    });
    while !receiver_ready.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ns_name = ns.name().to_owned();
    let tx_done = done.clone();
    let tx_thread = std::thread::spawn(move || {
        xvs_testkit::enter(&format!("/run/netns/{ns_name}"));
        let tx = RawSocket::open_send_only(&hh1);
        for seq in 1..=FRAMES {
            tx.send(&frame(M2, M1, seq, 64));
            // Paced: about 2 s in all, well under what one worker forwards.
            std::thread::sleep(Duration::from_micros(500));
        }
        tx_done.store(true, Ordering::Release);
    });

    // Meanwhile: add, populate and delete BD "green" again and again.
    let mut rounds = 0;
    while !done.load(Ordering::Acquire) && rounds < 50 {
        let calls = [
            Request::BdAdd {
                name: "green".into(),
                vni: Some(xvs_control::proto::Vni(300)),
                max_macs: None,
            },
            Request::Attach {
                bd: "green".into(),
                port: p3.clone(),
                vlan: None,
            },
            Request::BdDel {
                name: "green".into(),
            },
        ];
        for c in &calls {
            match d.call(c) {
                Ok(Reply::Done) => {}
                other => panic!("{c:?}: {other:?}"),
            }
        }
        rounds += 1;
    }
    tx_thread.join().unwrap();
    let got = rx_thread.join().unwrap();
    eprintln!("{got}/{FRAMES} frames through blue during {rounds} rounds of BD churn");
    assert!(
        rounds >= 3,
        "only {rounds} churn rounds overlapped the stream"
    );
    assert_eq!(
        got, FRAMES,
        "blue lost frames during {rounds} rounds of BD churn"
    );
    assert!(d.stop().success());
}

#[test]
fn vtep_section_and_uplink_change_live() {
    if !privileged("vtep_section_and_uplink_change_live") {
        return;
    }
    let (ns, [up, hup], pairs) = topology("xv", 2, 1);
    let ([p1, h1], [p2, _h2]) = (pairs[0].clone(), pairs[1].clone());
    let config = format!(
        "{}flood = [\"{REMOTE_VTEP}\"]\n",
        base_config(&up, &p1, &p2)
    );
    let d = Xvsd::start(&ns, &config, &["--xdp-mode", "native"]);
    let b = frame(BCAST, M1, 1, 100);
    let wait = Duration::from_secs(6);
    let outer = vxlan_capture(&ns, (&hup, &h1), b.clone(), (100, REMOTE_VTEP, 4789), wait)
        .expect("VXLAN copy to the flood VTEP");
    assert_eq!((outer[22], &outer[26..30]), (64, &[10, 77, 0, 1][..]));

    // [vtep]: another source address, TTL and UDP port, live.
    let mut want = dump(&d);
    want.vtep.local_ips = vec!["10.77.0.3".parse().unwrap()];
    want.vtep.ttl = 9;
    want.vtep.udp_port = 4790;
    let path = std::env::temp_dir().join(unique_name("vt"));
    std::fs::write(&path, want.to_toml()).unwrap();
    ok(&d, &["config", "apply", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(dump(&d), want);
    let outer = vxlan_capture(&ns, (&hup, &h1), b.clone(), (100, REMOTE_VTEP, 4790), wait)
        .expect("VXLAN copy on UDP 4790 after the [vtep] change");
    assert_eq!((outer[22], &outer[26..30]), (9, &[10, 77, 0, 3][..]));

    // The uplink goes: nothing is encapsulated, the VTEP is unreachable.
    ok(&d, &["port", "del", &up]);
    want.ports.retain(|p| p.name != up);
    assert_eq!(dump(&d), want);
    assert!(
        vxlan_capture(
            &ns,
            (&hup, &h1),
            b.clone(),
            (100, REMOTE_VTEP, 4790),
            Duration::from_millis(600)
        )
        .is_none(),
        "encapsulated without an uplink"
    );
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let hop = show(&d)["next_hops"][REMOTE_VTEP]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if hop.contains("unreachable") {
            break;
        }
        assert!(Instant::now() < end, "next hop without an uplink: {hop:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // And comes back (added live, as an uplink): encapsulation resumes.
    ok(&d, &["port", "add", &up, "--role", "uplink"]);
    want.ports.push(PortConfig {
        name: up.clone(),
        role: Role::Uplink,
    });
    assert_eq!(dump(&d), want);
    let outer = vxlan_capture(&ns, (&hup, &h1), b.clone(), (100, REMOTE_VTEP, 4790), wait)
        .expect("VXLAN copy after the uplink came back");
    assert_eq!(outer[22], 9);
    // A second uplink is still refused.
    let err = fails(&d, &["port", "add", "upl2x", "--role", "uplink"]);
    assert!(err.contains("uplink"), "{err}");
    assert!(d.stop().success());
}
