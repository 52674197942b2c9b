//! A MAC flood (CAM overflow) through a running xvsd (issue 7, item 3).
//!
//! ```text
//!  vm1 ns: eth0 10.9.0.1 ─ veth ─ pa1 ┐
//!  vm2 ns: eth0 10.9.0.2 ─ veth ─ pa2 ┤ xvsd (sw ns), BD blue, max_macs 4096
//!                   flooder h3 ─ pa3 ─┤
//!                  observer h4 ─ pa4 ─┘
//! ```
//!
//! h3 sends [`FLOOD`] frames, each from a different source MAC (a bijective
//! scramble of a counter: no two alike, no pattern a hash could favour), to
//! h4's learned MAC, as fast as AF_PACKET goes, while vm1 pings vm2. Then:
//!
//! * the FDB holds exactly the cap, and the hosts learned before the flood
//!   are still there, where they were; the ping lost nothing;
//! * xvsd's RSS grew by less than [`RSS_GROWTH_MAX_KIB`] (measured after a
//!   warm-up that has every UMEM frame in circulation touched);
//! * every flood frame the worker received is accounted for: learned, or
//!   refused for the cap (`learn_cap_reached` in the worker, `cap_rejects`
//!   in the FDB owner for the few that raced the "full" notice), or refused
//!   because the owner's bounded learn queue was full (`learn_queue_full`);
//! * a frame to a flood MAC past the cap is flooded to every other port,
//!   one to a MAC learned before the cap goes to h3 alone;
//! * xvsd's log says the BD is at its cap, rate-limited.

mod xvsd_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xvs_control::proto::Counter;
use xvs_testkit::{privileged, unique_name, RawSocket};
use xvsd_common::{
    attach_vm, counter, frame, ping, ping_whole, quiet_netns, recv_test, seq_of, static_neighbour,
    veth, Xvsd,
};

/// Flood frames, each with its own source MAC.
const FLOOD: u32 = 1_000_000;
/// The bridge domain's cap.
const MAX_MACS: u64 = 4096;
/// Bound on xvsd's RSS growth over the flood: the FDB at its cap is a few
/// hundred KiB; the learn channel is bounded (65 536 messages); nothing
/// else may grow with the number of distinct MACs seen.
const RSS_GROWTH_MAX_KIB: u64 = 32 * 1024;
/// The whole flood must be sent within this (a bound, not a speed claim).
const FLOOD_DEADLINE: Duration = Duration::from_secs(120);

const VM1_MAC: &str = "02:00:00:0f:00:01";
const VM2_MAC: &str = "02:00:00:0f:00:02";
/// The observer's MAC (h4), learned before the flood.
const M4: [u8; 6] = [0x02, 0, 0, 0x0f, 0, 0x04];
/// The flooder's own MAC (h3) for the warm-up.
const M3: [u8; 6] = [0x02, 0, 0, 0x0f, 0, 0x03];

/// The `i`-th flood source MAC: unicast, locally administered, distinct for
/// every `i` (multiplication by an odd constant is a bijection mod 2^32).
fn flood_mac(i: u32) -> [u8; 6] {
    let x = i.wrapping_mul(0x9e37_79b1).to_be_bytes();
    [0x02, 0xf1, x[0], x[1], x[2], x[3]]
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(p, 16).expect("hex");
    }
    m
}

fn delta(after: &[Counter], before: &[Counter], scope: &str, inst: &str, name: &str) -> u64 {
    counter(after, scope, inst, name) - counter(before, scope, inst, name)
}

#[test]
fn million_mac_flood_stays_at_the_cap_with_bounded_memory_and_learned_hosts_keep_forwarding() {
    if !privileged(
        "million_mac_flood_stays_at_the_cap_with_bounded_memory_and_learned_hosts_keep_forwarding",
    ) {
        return;
    }
    let sw = quiet_netns("mf");
    let vm1 = quiet_netns("m1");
    let vm2 = quiet_netns("m2");
    let [pa1, pa2, pa3, pa4] = [(); 4].map(|_| unique_name("a"));
    let (h3, h4) = (unique_name("h"), unique_name("h"));
    veth(&sw, &pa3, &h3, 1);
    veth(&sw, &pa4, &h4, 1);
    attach_vm(&sw, &pa1, &vm1, "10.9.0.1/24", VM1_MAC);
    attach_vm(&sw, &pa2, &vm2, "10.9.0.2/24", VM2_MAC);
    static_neighbour(&vm1, "10.9.0.2", VM2_MAC);
    static_neighbour(&vm2, "10.9.0.1", VM1_MAC);
    let ports: String = [&pa1, &pa2, &pa3, &pa4]
        .iter()
        .map(|p| format!("[[port]]\nname = \"{p}\"\nrole = \"access\"\n\n"))
        .collect();
    let config = format!(
        "{ports}[[bridge_domain]]\nname = \"blue\"\nmax_macs = {MAX_MACS}\n\
         attach = [{{ port = \"{pa1}\" }}, {{ port = \"{pa2}\" }}, \
         {{ port = \"{pa3}\" }}, {{ port = \"{pa4}\" }}]\n"
    );
    let mut d = Xvsd::start(&sw, &config, &[]);

    // Before the flood: vm1, vm2 and h4 are learned.
    let end = Instant::now() + Duration::from_secs(10);
    while !ping_whole(&ping(&vm1, "10.9.0.2", 1, "1"), 1) {
        assert!(Instant::now() < end, "vm1 cannot ping vm2:\n{}", d.log());
    }
    let (hh3, hh4) = (h3.clone(), h4.clone());
    let (s3, s4) = sw.run(move || {
        (
            RawSocket::open_send_only(&hh3),
            RawSocket::open_send_only(&hh4),
        )
    });
    s4.send(&frame(parse_mac(VM1_MAC), M4, 0, 60));
    // Warm-up: 30k frames from one MAC put every UMEM frame in
    // circulation to use, so RSS is measured after the buffers are touched.
    for i in 0..30_000 {
        s3.send(&frame(M4, M3, i, 60));
    }
    std::thread::sleep(Duration::from_millis(500));
    let learned_before = d.fdb();
    for m in [parse_mac(VM1_MAC), parse_mac(VM2_MAC), M4, M3] {
        assert!(
            learned_before.iter().any(|e| e.mac.0 == m),
            "{m:02x?} not learned before the flood: {learned_before:?}"
        );
    }
    let hosts_before = learned_before.len() as u64;
    let rss_before = d.rss_kib();
    let before = d.stats();

    // The flood, while vm1 pings vm2 in batches.
    let done = Arc::new(AtomicBool::new(false));
    let done2 = Arc::clone(&done);
    let started = Instant::now();
    let flooder = std::thread::spawn(move || {
        let mut f = frame(M4, M3, 0, 60);
        let mut busy = 0u64;
        for i in 0..FLOOD {
            f[6..12].copy_from_slice(&flood_mac(i));
            loop {
                match s3.try_send(&f) {
                    Ok(_) => break,
                    // The veth's queue is full: xvsd is behind; try again.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        busy += 1;
                        assert!(started.elapsed() < FLOOD_DEADLINE, "flood too slow");
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        done2.store(true, Ordering::Relaxed);
        (busy, started.elapsed())
    });
    let mut pings = Vec::new();
    while !done.load(Ordering::Relaxed) && started.elapsed() < FLOOD_DEADLINE {
        pings.push(ping(&vm1, "10.9.0.2", 50, "0.01"));
    }
    let (busy, took) = flooder.join().expect("flooder");
    eprintln!(
        "flood: {FLOOD} MACs in {:.2} s ({:.0} frames/s, {busy} ENOBUFS retries), \
         {} ping batches during it",
        took.as_secs_f64(),
        f64::from(FLOOD) / took.as_secs_f64(),
        pings.len()
    );
    assert!(!pings.is_empty(), "no ping ran during the flood");
    for p in &pings {
        assert!(ping_whole(p, 50), "ping lost frames during the flood:\n{p}");
    }
    assert!(d.alive(), "xvsd died:\n{}", d.log());

    // Every flood frame the worker received is accounted for, once the
    // owner has caught up with the learn queue.
    let port3 = format!("{pa3}/q0");
    let end = Instant::now() + Duration::from_secs(10);
    let mut after;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        after = d.stats();
        let w = |n| delta(&after, &before, "worker", "0", n);
        let f = |n| delta(&after, &before, "fdb", "", n);
        let received = delta(&after, &before, "port", &port3, "rx_frames");
        let settled = w("learned") + w("learn_cap_reached") + w("learn_queue_full") == received
            && w("learned") == f("learned") + f("cap_rejects");
        if settled || Instant::now() >= end {
            break;
        }
    }
    let w = |n| delta(&after, &before, "worker", "0", n);
    let f = |n| delta(&after, &before, "fdb", "", n);
    let received = delta(&after, &before, "port", &port3, "rx_frames");
    let summary = format!(
        "pa3 received {received}; worker learned {} cap_reached {} queue_full {}; \
         owner learned {} cap_rejects {}; xsk rx dropped {}",
        w("learned"),
        w("learn_cap_reached"),
        w("learn_queue_full"),
        f("learned"),
        f("cap_rejects"),
        delta(&after, &before, "port", &port3, "xsk_rx_dropped"),
    );
    eprintln!("{summary}");
    assert!(
        received > 10 * MAX_MACS,
        "too few flood frames reached xvsd: {summary}"
    );
    assert_eq!(
        w("learned") + w("learn_cap_reached") + w("learn_queue_full"),
        received,
        "a flood frame is neither learned nor refused: {summary}"
    );
    assert_eq!(
        w("learned"),
        f("learned") + f("cap_rejects"),
        "owner and worker disagree: {summary}"
    );
    assert_eq!(
        f("learned"),
        MAX_MACS - hosts_before,
        "the owner learned past the cap: {summary}"
    );
    assert!(
        w("learn_cap_reached") + f("cap_rejects") > 0,
        "no refusal counted: {summary}"
    );

    // The FDB is at its cap, through the real xvsctl, and the hosts learned
    // before the flood are where they were.
    let out = d.xvsctl(&["--json", "fdb", "show", "blue"]);
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert_eq!(rows.len() as u64, MAX_MACS, "FDB not at its cap");
    assert_eq!(counter(&after, "fdb", "", "entries"), MAX_MACS);
    let fdb = d.fdb();
    for e in &learned_before {
        assert!(
            fdb.iter()
                .any(|n| n.mac == e.mac && n.port == e.port && n.vlan == e.vlan),
            "{e:?} lost or moved by the flood"
        );
    }

    // Memory stayed bounded.
    let rss_after = d.rss_kib();
    eprintln!("xvsd RSS: {rss_before} KiB before, {rss_after} KiB after the flood");
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_MAX_KIB,
        "xvsd grew from {rss_before} to {rss_after} KiB"
    );

    // Past the cap a MAC is flooded; before it, forwarded.
    let unlearned = (0..FLOOD)
        .map(flood_mac)
        .find(|m| !fdb.iter().any(|e| e.mac.0 == *m))
        .expect("some flood MAC is not learned");
    let learned = fdb
        .iter()
        .find(|e| e.mac.0[..2] == [0x02, 0xf1])
        .expect("some flood MAC is learned")
        .mac
        .0;
    let (hh3, hh4) = (h3.clone(), h4.clone());
    let (r3, s4) = sw.run(move || (RawSocket::open(&hh3), RawSocket::open_send_only(&hh4)));
    let r1 = vm1.run(|| RawSocket::open("eth0"));
    let r2 = vm2.run(|| RawSocket::open("eth0"));
    s4.send(&frame(unlearned, M4, 1, 60));
    for (name, r) in [("h3", &r3), ("vm1", &r1), ("vm2", &r2)] {
        let got = recv_test(r, 1, Duration::from_secs(3));
        assert!(
            got.iter().any(|f| seq_of(&f.bytes) == 1),
            "a frame to a MAC past the cap was not flooded to {name}"
        );
    }
    s4.send(&frame(learned, M4, 2, 60));
    let got = recv_test(&r3, 1, Duration::from_secs(3));
    assert!(
        got.iter().any(|f| seq_of(&f.bytes) == 2),
        "a frame to a learned flood MAC did not reach h3"
    );
    let leaked = recv_test(&r1, 2, Duration::from_millis(300));
    assert!(
        !leaked.iter().any(|f| seq_of(&f.bytes) == 2),
        "a frame to a learned MAC was flooded"
    );

    // Logged, rate-limited.
    let log = d.log();
    let cap_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("bridge domain at its MAC cap"))
        .collect();
    assert!(
        cap_lines
            .iter()
            .all(|l| l.contains("suppressed=") && l.contains("max=4096")),
        "a cap line without its cap or suppressed count:\n{log}"
    );
    let lines = cap_lines.len() as u64;
    let bound = started.elapsed().as_secs() / 5 + 2;
    assert!(lines >= 1, "the cap was never logged:\n{log}");
    assert!(
        lines <= bound,
        "{lines} cap lines in {:?} (at most {bound}):\n{log}",
        started.elapsed()
    );
    assert!(d.stop().success(), "xvsd did not exit cleanly");
}
