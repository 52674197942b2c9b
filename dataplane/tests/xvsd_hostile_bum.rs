//! xvsd under hostile BUM and underlay traffic, on veth pairs in throw-away
//! namespaces (the daemon attaches to one end, the test sends and receives
//! on the other with AF_PACKET):
//!
//! * storm control: a broadcast storm at full speed into bridge domain
//!   "storm" (limited to [`LIMIT`] floods per second) for a bounded time,
//!   while a paced stream of known unicast and broadcasts runs in bridge
//!   domain "calm". "calm" receives every frame; "storm"'s flood output
//!   stays within its limit (with a generous margin, no speed asserted);
//!   the excess is counted as `drop_storm`.
//! * who may talk VXLAN to us: VXLAN from an underlay address that is not
//!   in the bridge domain's flood list is dropped, counted
//!   (`drop_unknown_vtep`) and not learned, while a flood-list VTEP's is
//!   forwarded and learned; with `learn_from_any_vtep = true` the same
//!   stranger is accepted and learned.

mod xvsd_common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xvs_control::proto::FdbKind;
use xvs_testkit::frames::{udp4, vxlan_payload, with_macs};
use xvs_testkit::{privileged, unique_name, Netns, RawSocket};
use xvsd_common::{counter, frame, is_test_frame, quiet_netns, seq_of, veth, Xvsd};

const BROADCAST: [u8; 6] = [0xff; 6];
/// Floods per second allowed in bridge domain "storm" (and "calm").
const LIMIT: u64 = 1000;
/// How long the storm blows.
const STORM: Duration = Duration::from_secs(2);
/// Most frames the storm sends (a bound besides the time).
const STORM_MAX: u64 = 5_000_000;

/// The storm's source, in "storm".
const S1: [u8; 6] = [0x02, 0, 0, 0, 0x53, 1];
/// Hosts of "calm": C1 sends to C2.
const C1: [u8; 6] = [0x02, 0, 0, 0, 0x43, 1];
const C2: [u8; 6] = [0x02, 0, 0, 0, 0x43, 2];

fn src_of(b: &[u8]) -> [u8; 6] {
    b[6..12].try_into().expect("six bytes")
}

/// Four veth pairs: xvsd's ports `pa1`, `pa2` ("storm"), `pb1`, `pb2`
/// ("calm") and the hosts' ends `ha1`, `ha2`, `hb1`, `hb2`.
fn storm_topology() -> (Netns, [String; 8]) {
    let ns = quiet_netns("xb");
    let n: [String; 8] = std::array::from_fn(|i| unique_name(if i % 2 == 0 { "p" } else { "h" }));
    for pair in n.chunks(2) {
        veth(&ns, &pair[0], &pair[1], 1);
    }
    (ns, n)
}

#[test]
fn a_broadcast_storm_is_limited_and_does_not_starve_another_bridge_domain() {
    if !privileged("a_broadcast_storm_is_limited_and_does_not_starve_another_bridge_domain") {
        return;
    }
    let (ns, [pa1, ha1, pa2, ha2, pb1, hb1, pb2, hb2]) = storm_topology();
    let config = format!(
        "[[port]]\nname = \"{pa1}\"\nrole = \"access\"\n\
         [[port]]\nname = \"{pa2}\"\nrole = \"access\"\n\
         [[port]]\nname = \"{pb1}\"\nrole = \"access\"\n\
         [[port]]\nname = \"{pb2}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"storm\"\nstorm_pps = {LIMIT}\n\
         attach = [{{ port = \"{pa1}\" }}, {{ port = \"{pa2}\" }}]\n\n\
         [[bridge_domain]]\nname = \"calm\"\nstorm_pps = {LIMIT}\n\
         attach = [{{ port = \"{pb1}\" }}, {{ port = \"{pb2}\" }}]\n"
    );
    let d = Xvsd::start(&ns, &config, &["--xdp-mode", "native"]);
    // `xvsctl show` tells each BD's limit and VTEP opt-in, in both forms.
    let out = d.xvsctl(&["--json", "show"]);
    assert!(out.status.success(), "{out:?}");
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show --json");
    for b in show["bridge_domains"].as_array().expect("bridge domains") {
        assert_eq!(b["storm_pps"], LIMIT, "{b}");
        assert_eq!(b["learn_from_any_vtep"], false, "{b}");
    }
    let out = d.xvsctl(&["show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("storm_pps: {LIMIT}")), "{text}");
    assert!(text.contains("learn_from_any_vtep: false"), "{text}");
    let (sa1, sa2, sb1, sb2) = ns.run(move || {
        (
            RawSocket::open_send_only(&ha1),
            RawSocket::open(&ha2),
            RawSocket::open_send_only(&hb1),
            RawSocket::open(&hb2),
        )
    });

    // "calm" learns C2 behind pb2 (its first frame floods to hb1's port).
    sb2.send(&frame(C1, C2, 0, 60));
    let end = Instant::now() + Duration::from_secs(5);
    while !d.fdb().iter().any(|e| e.mac.0 == C2) {
        assert!(Instant::now() < end, "C2 not learned:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // The storm: broadcasts into "storm" as fast as AF_PACKET sends them.
    let storm = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let f = frame(BROADCAST, S1, 0, 60);
            let (mut sent, end) = (0u64, Instant::now() + STORM);
            while sent < STORM_MAX && Instant::now() < end && !stop.load(Ordering::Relaxed) {
                match sa1.try_send(&f) {
                    Ok(_) => sent += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
            sent
        })
    };
    // What "storm" floods out of pa2, until a second after the storm.
    let flood_out = std::thread::spawn(move || {
        sa2.recv_matching(usize::MAX, STORM + Duration::from_secs(1), |b| {
            is_test_frame(b) && src_of(b) == S1
        })
        .len() as u64
    });
    // Meanwhile "calm": a paced stream, every third frame a broadcast
    // (flooded, under "calm"'s own limit), the rest known unicast to C2.
    let calm = std::thread::spawn(move || {
        let n = 300u32;
        for seq in 1..=n {
            let dst = if seq % 3 == 0 { BROADCAST } else { C2 };
            sb1.send(&frame(dst, C1, seq, 60));
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = sb2.recv_matching(n as usize, Duration::from_secs(5), |b| {
            is_test_frame(b) && src_of(b) == C1
        });
        (n, got)
    });

    let (calm_sent, calm_got) = calm.join().expect("calm stream");
    stop.store(true, Ordering::Relaxed);
    let storm_sent = storm.join().expect("storm");
    let flooded = flood_out.join().expect("flood receiver");
    let elapsed = started.elapsed();
    eprintln!("storm: {storm_sent} sent, {flooded} flooded in {elapsed:?}");

    let mut seqs: Vec<u32> = calm_got.iter().map(|f| seq_of(&f.bytes)).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs,
        (1..=calm_sent).collect::<Vec<_>>(),
        "\"calm\" lost frames during the storm (storm sent {storm_sent}, flooded {flooded})"
    );

    // The limit: one burst (a tenth of a second) plus LIMIT per second over
    // the whole run, with half a second of slack for frames still queued.
    let bound = LIMIT / 10 + LIMIT * (elapsed.as_millis() as u64 + 500) / 1000;
    assert!(
        flooded <= bound,
        "\"storm\" flooded {flooded} frames in {elapsed:?}, limit {LIMIT}/s (bound {bound})"
    );
    assert!(flooded > 0, "nothing of the storm was flooded");
    assert!(
        storm_sent > 3 * bound,
        "the storm was no storm: {storm_sent} frames sent"
    );
    let stats = d.stats();
    let dropped = counter(&stats, "worker", "0", "drop_storm");
    assert!(
        dropped > 0 && dropped <= storm_sent,
        "drop_storm = {dropped} for {storm_sent} sent, {flooded} flooded"
    );
    // Also as the operator sees it.
    let out = d.xvsctl(&["stats"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("drop_storm") && l.contains(&dropped.to_string())),
        "xvsctl stats:\n{text}"
    );
    assert!(d.stop().success());
}

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const KNOWN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const STRANGER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x55, 0x10];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x55, 0x01];

/// Inner hosts behind remote VTEPs.
const R1: [u8; 6] = [0x02, 0, 0, 0, 0x52, 1];
const R2: [u8; 6] = [0x02, 0, 0, 0, 0x52, 2];
const R3: [u8; 6] = [0x02, 0, 0, 0, 0x52, 3];

/// A VXLAN frame for VNI 100 from underlay address `from` to our VTEP,
/// carrying a broadcast test frame from `inner_src`.
fn vxlan_from(from: Ipv4Addr, inner_src: [u8; 6], seq: u32) -> Vec<u8> {
    let inner = frame(BROADCAST, inner_src, seq, 60);
    let outer = udp4(&[], from, LOCAL, 4789, &vxlan_payload(100, &inner));
    with_macs(outer, UPLINK_MAC, PEER_MAC)
}

fn vtep_config(up: &str, pa: &str, any: bool) -> String {
    format!(
        "[vtep]\nlocal_ips = [\"{LOCAL}\"]\n\n\
         [[port]]\nname = \"{up}\"\nrole = \"uplink\"\n\n\
         [[port]]\nname = \"{pa}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"vni100\"\nvni = 100\nflood = [\"{KNOWN}\"]\n\
         attach = [{{ port = \"{pa}\" }}]\nlearn_from_any_vtep = {any}\n"
    )
}

/// Sends `f` on the uplink's peer; returns the test frames from
/// `inner_src` that reached the access host within `wait`.
fn deliver(
    send: &RawSocket,
    recv: &RawSocket,
    f: &[u8],
    inner_src: [u8; 6],
    wait: Duration,
) -> usize {
    send.send(f);
    recv.recv_matching(1, wait, |b| is_test_frame(b) && src_of(b) == inner_src)
        .len()
}

#[test]
fn vxlan_from_an_unknown_vtep_is_dropped_unless_the_bridge_domain_opts_in() {
    if !privileged("vxlan_from_an_unknown_vtep_is_dropped_unless_the_bridge_domain_opts_in") {
        return;
    }
    let ns = quiet_netns("xu");
    let (up, hu, pa, ha) = (
        unique_name("u"),
        unique_name("h"),
        unique_name("a"),
        unique_name("h"),
    );
    veth(&ns, &up, &hu, 1);
    veth(&ns, &pa, &ha, 1);
    ns.ip(&["link", "set", &up, "address", "02:00:00:00:55:10"]);
    ns.ip(&["addr", "add", &format!("{LOCAL}/24"), "dev", &up]);
    let (hu2, ha2) = (hu.clone(), ha.clone());
    let (su, sa) = ns.run(move || (RawSocket::open_send_only(&hu2), RawSocket::open(&ha2)));

    let d = Xvsd::start(
        &ns,
        &vtep_config(&up, &pa, false),
        &["--xdp-mode", "native"],
    );
    // A stranger on the underlay: not forwarded, counted, not learned.
    let strange = vxlan_from(STRANGER, R1, 1);
    assert_eq!(
        deliver(&su, &sa, &strange, R1, Duration::from_millis(500)),
        0,
        "VXLAN from {STRANGER} was forwarded"
    );
    let end = Instant::now() + Duration::from_secs(5);
    let mut dropped = 0;
    while dropped == 0 && Instant::now() < end {
        dropped = counter(&d.stats(), "worker", "0", "drop_unknown_vtep");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(dropped, 1, "drop_unknown_vtep:\n{}", d.log());
    // The flood-list VTEP is accepted and learned…
    assert_eq!(
        deliver(
            &su,
            &sa,
            &vxlan_from(KNOWN, R2, 2),
            R2,
            Duration::from_secs(5)
        ),
        1,
        "VXLAN from flood-list VTEP {KNOWN} not forwarded:\n{}",
        d.log()
    );
    let end = Instant::now() + Duration::from_secs(5);
    let fdb = loop {
        let fdb = d.fdb();
        if fdb.iter().any(|e| e.mac.0 == R2) || Instant::now() > end {
            break fdb;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let r2 = fdb.iter().find(|e| e.mac.0 == R2).expect("R2 learned");
    assert_eq!((r2.vtep, r2.kind), (Some(KNOWN.into()), FdbKind::Learned));
    // … and the stranger's host never was.
    assert!(fdb.iter().all(|e| e.mac.0 != R1), "{fdb:?}");
    assert_eq!(counter(&d.stats(), "worker", "0", "drop_unknown_vtep"), 1);
    assert!(d.stop().success());

    // Opted in: the stranger is accepted and learned.
    let d = Xvsd::start(&ns, &vtep_config(&up, &pa, true), &["--xdp-mode", "native"]);
    assert_eq!(
        deliver(
            &su,
            &sa,
            &vxlan_from(STRANGER, R3, 3),
            R3,
            Duration::from_secs(5)
        ),
        1,
        "VXLAN from {STRANGER} not forwarded with learn_from_any_vtep:\n{}",
        d.log()
    );
    let end = Instant::now() + Duration::from_secs(5);
    let r3 = loop {
        if let Some(e) = d.fdb().into_iter().find(|e| e.mac.0 == R3) {
            break e;
        }
        assert!(Instant::now() < end, "R3 not learned:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r3.vtep, Some(STRANGER.into()));
    assert_eq!(counter(&d.stats(), "worker", "0", "drop_unknown_vtep"), 0);
    assert!(d.stop().success());
}
