//! Malformed and hostile traffic through a running xvsd (issue 7, item 2).
//!
//! ```text
//!  vm1 ns: eth0 10.9.0.1 ─ veth ─ pa1 ┐
//!  vm2 ns: eth0 10.9.0.2 ─ veth ─ pa2 ┤ xvsd (sw ns), BD blue, VNI 100
//!              hostile host h3 ─ pa3 ─┤  (pa3 untagged and VLAN 10)
//!        hostile underlay upp ─── up ─┘  192.0.2.10, flood 192.0.2.1
//! ```
//!
//! The corpus (`xvsd_malformed/corpus.rs`, over 90 frames: truncations at
//! every header boundary, length lies, VXLAN flag and VNI errors, options,
//! fragments, VLAN stacks, bad source MACs, oversized frames, …) is sent on
//! the uplink (from `upp`) and on an access port (from `h3`) with AF_PACKET:
//!
//! 1. **Exact**: each frame [`COPIES`] times on its own, at low rate; every
//!    counter it names must move by exactly that much, and no other drop,
//!    pass or learning-anomaly counter may move at all.
//! 2. **Full rate**: the whole corpus round-robin as fast as AF_PACKET
//!    sends (bounded in time and count) while vm1 pings vm2 through xvsd:
//!    the ping loses nothing, xvsd stays up and answers its socket, every
//!    case's counters moved, no drop counter moved more than the frames
//!    sent that name it, and every frame the kernel accepted (plus the
//!    ping's echoes and replies) was classified exactly once.

#[path = "xvsd_malformed/corpus.rs"]
mod corpus;
mod xvsd_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corpus::{Hostile, Lands, Port, SINK_A, SINK_V, STATIC};
use xvs_control::proto::{Counter, Mac, Reply, Request};
use xvs_testkit::frames::{vm_frame, with_macs};
use xvs_testkit::{privileged, unique_name, Netns, RawSocket};
use xvsd_common::{
    attach_vm, counter, ping, ping_whole, quiet_netns, static_neighbour, veth, Xvsd,
};

/// Copies of each frame in the exact phase.
const COPIES: u64 = 3;
/// Bounds of the full-rate phase.
const FULL_RATE_MAX: Duration = Duration::from_secs(8);
const FULL_RATE_MAX_FRAMES: u64 = 20_000_000;
/// Pings during the full-rate phase, and their interval.
const PINGS: u32 = 200;

const VM1_MAC: &str = "02:00:00:0e:00:01";
const VM2_MAC: &str = "02:00:00:0e:00:02";

struct Lab {
    sw: Netns,
    vm1: Netns,
    _vm2: Netns,
    up: String,
    upp: String,
    pa1: String,
    pa3: String,
    h3: String,
    config: String,
}

/// Builds the namespaces and links of the picture above (xvsd not started).
fn lab() -> Lab {
    let sw = quiet_netns("hm");
    let vm1 = quiet_netns("h1");
    let vm2 = quiet_netns("h2");
    let (up, upp) = (unique_name("u"), unique_name("v"));
    let (pa1, pa2, pa3, h3) = (
        unique_name("a"),
        unique_name("a"),
        unique_name("a"),
        unique_name("h"),
    );
    veth(&sw, &up, &upp, 1);
    veth(&sw, &pa3, &h3, 1);
    // The hostile senders can send frames over xvsd's ports' MTU.
    sw.ip(&["link", "set", &upp, "mtu", "3000"]);
    sw.ip(&["link", "set", &h3, "mtu", "3000"]);
    sw.ip(&["addr", "add", "192.0.2.10/24", "dev", &up]);
    let upp_mac = String::from_utf8_lossy(
        &sw.exec("cat", &[&format!("/sys/class/net/{upp}/address")])
            .stdout,
    )
    .trim()
    .to_owned();
    // The remote VTEP's next hop is upp itself, which has no address: what
    // xvsd encapsulates to it ends there.
    sw.ip(&[
        "neigh",
        "add",
        "192.0.2.1",
        "lladdr",
        &upp_mac,
        "dev",
        &up,
        "nud",
        "permanent",
    ]);
    attach_vm(&sw, &pa1, &vm1, "10.9.0.1/24", VM1_MAC);
    attach_vm(&sw, &pa2, &vm2, "10.9.0.2/24", VM2_MAC);
    // No ARP between the VMs: nothing but the test's frames moves a counter
    // while the exact phase measures.
    static_neighbour(&vm1, "10.9.0.2", VM2_MAC);
    static_neighbour(&vm2, "10.9.0.1", VM1_MAC);
    let config = format!(
        "[vtep]\nlocal_ips = [\"192.0.2.10\", \"2001:db8::10\"]\n\n\
         [[port]]\nname = \"{up}\"\nrole = \"uplink\"\n\n\
         [[port]]\nname = \"{pa1}\"\nrole = \"access\"\n\n\
         [[port]]\nname = \"{pa2}\"\nrole = \"access\"\n\n\
         [[port]]\nname = \"{pa3}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"blue\"\nvni = 100\nflood = [\"192.0.2.1\"]\n\
         attach = [{{ port = \"{pa1}\" }}, {{ port = \"{pa2}\" }}, \
         {{ port = \"{pa3}\" }}, {{ port = \"{pa3}\", vlan = 10 }}]\n"
    );
    Lab {
        sw,
        vm1,
        _vm2: vm2,
        up,
        upp,
        pa1,
        pa3,
        h3,
        config,
    }
}

/// A kernel statistic of `dev` in `ns`.
fn kernel_stat(ns: &Netns, dev: &str, stat: &str) -> u64 {
    let out = ns.exec("cat", &[&format!("/sys/class/net/{dev}/statistics/{stat}")]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// Counters an unexpected frame could move: every classifier decision and
/// every drop or learning anomaly of the worker.
fn watched(c: &Counter) -> bool {
    match c.scope.as_str() {
        "xdp" => c.name != "redirected",
        "worker" => {
            c.instance == "0"
                && (c.name.starts_with("drop_")
                    || [
                        "moved",
                        "learn_static",
                        "learn_held",
                        "learn_cap_reached",
                        "learn_queue_full",
                    ]
                    .contains(&c.name.as_str()))
        }
        _ => false,
    }
}

type Key = (String, String, String);

fn key(l: Lands) -> Option<Key> {
    match l {
        Lands::Xdp(n) => Some(("xdp".into(), String::new(), n.into())),
        Lands::Worker(n) => Some(("worker".into(), "0".into(), n.into())),
        Lands::Kernel(_) => None,
    }
}

fn values(stats: &[Counter]) -> BTreeMap<Key, u64> {
    stats
        .iter()
        .filter(|c| watched(c))
        .map(|c| {
            (
                (c.scope.clone(), c.instance.clone(), c.name.clone()),
                c.value,
            )
        })
        .collect()
}

/// The xvsd port a case arrives on.
fn port_of<'a>(lab: &'a Lab, h: &Hostile) -> &'a str {
    match h.port {
        Port::Uplink => &lab.up,
        Port::Access => &lab.pa3,
    }
}

/// Sends `h` `n` times; frames the kernel refuses (over the MTU) count.
fn send_n(sock: &RawSocket, h: &Hostile, n: u64) {
    for _ in 0..n {
        if h.lands.iter().any(|l| matches!(l, Lands::Kernel(_))) {
            let r = sock.try_send(&h.frame);
            assert!(
                r.is_err(),
                "{}: the kernel took a frame over the MTU",
                h.name
            );
        } else {
            sock.send(&h.frame);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends each case [`COPIES`] times and checks every watched counter moved
/// by exactly what the case says. Returns the failures.
fn exact_phase(
    lab: &Lab,
    d: &Xvsd,
    cases: &[Hostile],
    up: &RawSocket,
    acc: &RawSocket,
) -> Vec<String> {
    let mut failures = Vec::new();
    for h in cases {
        let sock = if h.port == Port::Uplink { up } else { acc };
        let dev = port_of(lab, h);
        let kernel_before: Vec<u64> = h
            .lands
            .iter()
            .filter_map(|l| match l {
                Lands::Kernel(s) => Some(kernel_stat(&lab.sw, dev, s)),
                _ => None,
            })
            .collect();
        let before = values(&d.stats());
        send_n(sock, h, COPIES);
        let mut want: BTreeMap<Key, u64> = BTreeMap::new();
        for k in h.lands.iter().filter_map(|l| key(*l)) {
            *want.entry(k).or_default() += COPIES;
        }
        // Wait for the expected counts, then one more report period for
        // anything unexpected to show up too.
        let end = Instant::now() + Duration::from_secs(3);
        let mut after = values(&d.stats());
        while Instant::now() < end
            && want.iter().any(|(k, w)| {
                after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0) < *w
            })
        {
            std::thread::sleep(Duration::from_millis(20));
            after = values(&d.stats());
        }
        std::thread::sleep(Duration::from_millis(250));
        after = values(&d.stats());
        let mut wrong = Vec::new();
        for k in want.keys() {
            if !after.contains_key(k) {
                wrong.push(format!("no counter {k:?}"));
            }
        }
        for (k, a) in &after {
            let moved = a - before.get(k).copied().unwrap_or(0);
            let w = want.get(k).copied().unwrap_or(0);
            if moved != w {
                wrong.push(format!("{}/{} moved {moved}, want {w}", k.0, k.2));
            }
        }
        let kernel: Vec<&str> = h
            .lands
            .iter()
            .filter_map(|l| match l {
                Lands::Kernel(s) => Some(*s),
                _ => None,
            })
            .collect();
        for (s, b) in kernel.iter().zip(kernel_before) {
            let moved = kernel_stat(&lab.sw, dev, s) - b;
            if moved != COPIES {
                wrong.push(format!("{dev} {s} moved {moved}, want {COPIES}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{} ({:?}): {}", h.name, h.port, wrong.join("; ")));
        }
    }
    failures
}

/// Learns SINK_V behind the remote VTEP and SINK_A on the hostile access
/// port, so that forwarded corpus frames go there and not to the VMs.
fn prime(d: &Xvsd, up: &RawSocket, acc: &RawSocket) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        up.send(&corpus::enc4(&with_macs(vm_frame(&[]), SINK_A, SINK_V)));
        acc.send(&with_macs(vm_frame(&[]), SINK_V, SINK_A));
        let fdb = d.fdb();
        let has = |m: [u8; 6]| fdb.iter().any(|e| e.mac.0 == m);
        if has(SINK_A) && has(SINK_V) {
            let v = fdb.iter().find(|e| e.mac.0 == SINK_V).unwrap();
            assert_eq!(v.vtep.map(|a| a.to_string()).as_deref(), Some("192.0.2.1"));
            return;
        }
        assert!(Instant::now() < end, "sinks not learned: {fdb:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_next_hop(d: &Xvsd, vtep: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let show = match d.call(&Request::Show {}) {
            Ok(Reply::Show(v)) => v,
            other => panic!("show: {other:?}"),
        };
        let hop = show["next_hops"][vtep].as_str().unwrap_or("").to_owned();
        if !hop.is_empty() && !hop.starts_with("pending") {
            return;
        }
        assert!(
            Instant::now() < end,
            "next hop of {vtep} unresolved: {hop:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hostile_corpus_lands_in_its_counters_and_full_rate_replay_keeps_the_ping_whole() {
    if !privileged("hostile_corpus_lands_in_its_counters_and_full_rate_replay_keeps_the_ping_whole")
    {
        return;
    }
    let cases = corpus::corpus();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let lab = lab();
    let mut d = Xvsd::start(&lab.sw, &lab.config, &[]);
    match d.call(&Request::FdbAdd {
        bd: "blue".into(),
        mac: Mac(STATIC),
        port: Some(lab.pa1.clone()),
        vlan: None,
        vtep: None,
    }) {
        Ok(Reply::Done) => {}
        other => panic!("fdb add: {other:?}"),
    }
    wait_next_hop(&d, "192.0.2.1");
    let (upp, h3) = (lab.upp.clone(), lab.h3.clone());
    let (up_sock, acc_sock) = lab.sw.run(move || {
        (
            RawSocket::open_send_only(&upp),
            RawSocket::open_send_only(&h3),
        )
    });
    prime(&d, &up_sock, &acc_sock);
    // vm1 reaches vm2 before anything is measured.
    let end = Instant::now() + Duration::from_secs(10);
    while !ping(&lab.vm1, "10.9.0.2", 1, "1").contains(" 1 received") {
        assert!(Instant::now() < end, "vm1 cannot ping vm2:\n{}", d.log());
    }

    // One unmeasured pass: every source MAC of the corpus is learned.
    for h in &cases {
        send_n(
            if h.port == Port::Uplink {
                &up_sock
            } else {
                &acc_sock
            },
            h,
            1,
        );
    }
    std::thread::sleep(Duration::from_millis(500));

    // 1. Exact counts, frame by frame.
    let failures = exact_phase(&lab, &d, &cases, &up_sock, &acc_sock);
    assert!(
        failures.is_empty(),
        "{} of {} cases miscounted:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // 2. Full rate, while vm1 pings vm2.
    let before = d.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let frames: Vec<(Port, Vec<u8>)> = cases.iter().map(|h| (h.port, h.frame.clone())).collect();
    let stop2 = Arc::clone(&stop);
    let sender = std::thread::spawn(move || {
        let mut sent = vec![0u64; frames.len()];
        let (mut total, mut refused) = (0u64, 0u64);
        let start = Instant::now();
        'outer: while !stop2.load(Ordering::Relaxed) && start.elapsed() < FULL_RATE_MAX {
            for (i, (port, f)) in frames.iter().enumerate() {
                let s = if *port == Port::Uplink {
                    &up_sock
                } else {
                    &acc_sock
                };
                match s.try_send(f) {
                    Ok(_) => {}
                    // Over the MTU, or the device queue is full: refused
                    // by the kernel, never seen by xvsd.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => refused += 1,
                    Err(e) => panic!("send: {e}"),
                }
                sent[i] += 1;
                total += 1;
                if total >= FULL_RATE_MAX_FRAMES {
                    break 'outer;
                }
            }
        }
        (sent, total, refused, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let pinged = ping(&lab.vm1, "10.9.0.2", PINGS, "0.01");
    stop.store(true, Ordering::Relaxed);
    let (sent, total, refused, took) = sender.join().expect("sender");
    eprintln!(
        "full rate: {total} frames ({refused} refused by the kernel) in {:.2} s \
         ({:.0} frames/s); ping: {}",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        pinged
            .lines()
            .filter(|l| l.contains("packets"))
            .collect::<String>()
    );
    assert!(
        ping_whole(&pinged, PINGS),
        "the ping lost frames during the full-rate replay:\n{pinged}\n{}",
        d.log()
    );

    // xvsd is alive and answers.
    assert!(d.alive(), "xvsd died:\n{}", d.log());
    let mut failures = Vec::new();
    // Each frame that reaches XDP ends in exactly one classifier decision
    // (pass, drop, decapsulated or switched; popping a tag and the
    // redirect come on top). The kernel refuses the rest (ENOBUFS).
    let decided = |st: &[Counter]| -> u64 {
        st.iter()
            .filter(|c| {
                c.scope == "xdp"
                    && !["vlan_popped", "redirected", "redirect_failed"].contains(&c.name.as_str())
            })
            .map(|c| c.value)
            .sum()
    };
    let accepted = total - refused + 2 * u64::from(PINGS);
    // The last frames may still sit in a veth queue for a moment.
    let end = Instant::now() + Duration::from_secs(2);
    let mut after = d.stats();
    while decided(&after) - decided(&before) < accepted && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        after = d.stats();
    }
    let classified = decided(&after) - decided(&before);
    if classified != accepted {
        failures.push(format!(
            "{classified} frames classified, {accepted} accepted by the kernel \
             ({total} sent, {refused} refused, {PINGS} pings and replies)"
        ));
    }
    let mut cap: BTreeMap<Key, u64> = BTreeMap::new();
    for (h, n) in cases.iter().zip(&sent) {
        for k in h.lands.iter().filter_map(|l| key(*l)) {
            *cap.entry(k).or_default() += n;
        }
    }
    for h in &cases {
        for k in h.lands.iter().filter_map(|l| key(*l)) {
            let moved = counter(&after, &k.0, &k.1, &k.2) - counter(&before, &k.0, &k.1, &k.2);
            if moved == 0 {
                failures.push(format!("{}: {}/{} did not move", h.name, k.0, k.2));
            }
        }
    }
    for (k, most) in &cap {
        let is_drop = k.2.starts_with("drop_") || k.2.starts_with("pass_");
        let moved = counter(&after, &k.0, &k.1, &k.2) - counter(&before, &k.0, &k.1, &k.2);
        if is_drop && moved > *most {
            failures.push(format!(
                "{}/{} moved {moved} for {most} frames sent",
                k.0, k.2
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "full-rate phase:\n{}",
        failures.join("\n")
    );
    assert!(d.stop().success(), "xvsd did not exit cleanly");
}
