//! The benchmark's generator and sink, end to end on a veth pair in a
//! throw-away namespace (root; skipped with `SKIPPED-PRIVILEGED` otherwise):
//! the generator sends exactly N frames of the configured shape, the sink
//! counts exactly N and drops them all (the kernel's own XDP counters agree),
//! VXLAN frames parse as VXLAN with the configured VNI and inner frame
//! (etherparse, on frames captured without the sink), pacing still delivers
//! every frame. Counts only: nothing here asserts a rate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::Value;
use xvs_testkit::{privileged, unique_name, Netns, RawSocket};

const GEN: &str = env!("CARGO_BIN_EXE_xvs-gen");
const SINK: &str = env!("CARGO_BIN_EXE_xvs-sink");

/// A namespace with a veth pair: the generator sends on `tx`, frames arrive
/// on `rx`. IPv6 off, so the kernel sends nothing of its own.
fn pair(prefix: &str) -> (Netns, String, String) {
    let ns = Netns::new(prefix);
    ns.exec("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.exec("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    let (tx, rx) = (unique_name("gt"), unique_name("gr"));
    ns.veth(&tx, &rx);
    (ns, tx, rx)
}

fn json_of(out: &Output, what: &str) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: no JSON ({e}): stdout {text:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs the generator in `ns` and returns its JSON report (it must succeed).
fn generate(ns: &Netns, iface: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--iface", iface, "--seconds", "20"];
    args.extend_from_slice(extra);
    let out = ns.exec_status(GEN, &args);
    assert!(
        out.status.success(),
        "xvs-gen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&out, "xvs-gen")
}

/// A running sink; stopped (SIGTERM) and reaped on drop if still running.
struct Sink {
    child: Option<Child>,
    ready: PathBuf,
}

impl Sink {
    fn start(ns: &Netns, iface: &str) -> Sink {
        let ready = std::env::temp_dir().join(format!("{}.ready", unique_name("snk")));
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), SINK, "--iface", iface])
            .args(["--max-seconds", "60", "--ready-file"])
            .arg(&ready)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn xvs-sink");
        let mut sink = Sink {
            child: Some(child),
            ready,
        };
        sink.wait_ready();
        sink
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while !Path::new(&self.ready).exists() {
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(st)) = child.try_wait() {
                let out = self.child.take().expect("child").wait_with_output().ok();
                panic!(
                    "xvs-sink exited ({st}) before attaching: {:?}",
                    out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "xvs-sink not ready in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the sink and returns its JSON report.
    fn stop(mut self) -> Value {
        let child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // reaped yet (so the pid cannot have been reused).
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let out = child.wait_with_output().expect("wait xvs-sink");
        assert!(
            out.status.success(),
            "xvs-sink failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out, "xvs-sink")
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ready);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `rx_queue_0_xdp_drops` of a veth, from `ethtool -S`.
fn xdp_drops(ns: &Netns, iface: &str) -> u64 {
    let out = ns.exec("ethtool", &["-S", iface]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rx_queue_0_xdp_drops:"))
        .map(|v| v.trim().parse::<u64>().expect("a number"))
        .sum()
}

#[test]
fn sink_counts_exactly_what_the_generator_sent_and_drops_it() {
    if !privileged("sink_counts_exactly_what_the_generator_sent_and_drops_it") {
        return;
    }
    let (ns, tx, rx) = pair("gs");
    let sink = Sink::start(&ns, &rx);
    let rx2 = rx.clone();
    // A packet socket on the sink's interface: XDP_DROP comes before the
    // stack, so it must see nothing.
    let (g, seen) = ns.run(move || {
        let cap = RawSocket::open(&rx2);
        let out = Command::new(GEN)
            .args([
                "--iface", &tx, "--count", "5000", "--macs", "16", "--flows", "64",
            ])
            .args(["--seconds", "20"])
            .output()
            .expect("run xvs-gen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = cap.recv_matching(1, Duration::from_millis(200), |_| true);
        (json_of(&out, "xvs-gen"), !seen.is_empty())
    });
    assert_eq!(g["sent"], 5000, "{g}");
    assert_eq!(g["queued"], 5000, "{g}");
    assert_eq!(g["frame_len"], 60);
    assert!(!seen, "a frame got past the sink to the stack");
    // Bounded wait for the last frames to be counted.
    std::thread::sleep(Duration::from_millis(200));
    let s = sink.stop();
    let t = &s["total"];
    assert_eq!(t["frames"], 5000, "{s}");
    assert_eq!(t["udp"], 5000, "{s}");
    assert_eq!(t["vxlan"], 0, "{s}");
    assert_eq!(t["bytes"], 5000 * 60, "{s}");
    // Dropped in XDP: the kernel's own counter agrees.
    assert_eq!(xdp_drops(&ns, &rx), 5000);
}

#[test]
fn vxlan_frames_are_counted_as_vxlan_and_windows_are_reported() {
    if !privileged("vxlan_frames_are_counted_as_vxlan_and_windows_are_reported") {
        return;
    }
    let (ns, tx, rx) = pair("gv");
    let sink = Sink::start(&ns, &rx);
    let g = generate(&ns, &tx, &["--vxlan", "--vni", "4242", "--count", "3000"]);
    assert_eq!(g["sent"], 3000, "{g}");
    assert_eq!(g["frame_len"], 110);
    std::thread::sleep(Duration::from_millis(200));
    let s = sink.stop();
    assert_eq!(s["total"]["vxlan"], 3000, "{s}");
    assert_eq!(s["total"]["frames"], 3000, "{s}");
    assert_eq!(s["total"]["bytes"], 3000 * 110, "{s}");
    // A sink on another VXLAN port sees the same frames as plain UDP.
    let sink = Command::new("ip")
        .args(["netns", "exec", ns.name(), SINK, "--iface", &rx])
        .args(["--vxlan-port", "8472", "--warmup", "0", "--window", "0.2"])
        .args(["--max-seconds", "0.5"])
        .output()
        .expect("run xvs-sink");
    assert!(
        sink.status.success(),
        "{:?}",
        String::from_utf8_lossy(&sink.stderr)
    );
    let s = json_of(&sink, "xvs-sink");
    assert_eq!(s["window"]["frames"], 0, "{s}");
    assert!(s["window"]["secs"].as_f64().expect("secs") >= 0.2, "{s}");
}

#[test]
fn paced_generator_still_sends_every_frame() {
    if !privileged("paced_generator_still_sends_every_frame") {
        return;
    }
    let (ns, tx, rx) = pair("gp");
    let sink = Sink::start(&ns, &rx);
    let g = generate(
        &ns,
        &tx,
        &["--rate", "20000", "--count", "2000", "--size", "128"],
    );
    assert_eq!(g["sent"], 2000, "{g}");
    std::thread::sleep(Duration::from_millis(200));
    let s = sink.stop();
    assert_eq!(s["total"]["udp"], 2000, "{s}");
    assert_eq!(s["total"]["bytes"], 2000 * 128, "{s}");
}

#[test]
fn bad_arguments_fail_cleanly() {
    for args in [
        vec!["--iface", "lo", "--size", "41"],
        vec!["--iface", "lo", "--macs", "0"],
        vec!["--iface", "lo", "--vxlan", "--vni", "16777216"],
        vec!["--iface", "lo", "--src-mac", "02:00"],
        vec!["--iface", "lo", "--seconds", "0"],
    ] {
        let out = Command::new(GEN).args(&args).output().expect("run xvs-gen");
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    let out = Command::new(SINK)
        .args(["--iface", "lo", "--window", "0"])
        .output()
        .expect("run xvs-sink");
    assert!(!out.status.success());
}

#[test]
fn vxlan_mode_frames_parse_as_vxlan_with_the_vni_and_inner_shape() {
    if !privileged("vxlan_mode_frames_parse_as_vxlan_with_the_vni_and_inner_shape") {
        return;
    }
    let (ns, tx, rx) = pair("gx");
    let frames = ns.run(move || {
        let cap = RawSocket::open(&rx);
        let out = Command::new(GEN)
            .args([
                "--iface", &tx, "--vxlan", "--vni", "700001", "--count", "256",
            ])
            .args([
                "--macs",
                "8",
                "--flows",
                "32",
                "--size",
                "64",
                "--seconds",
                "20",
            ])
            .args([
                "--outer-src-ip",
                "198.51.100.7",
                "--outer-dst-ip",
                "198.51.100.9",
            ])
            .output()
            .expect("run xvs-gen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut frames: Vec<Vec<u8>> = cap
            .recv_matching(256, Duration::from_secs(5), |_| true)
            .into_iter()
            .map(|f| f.bytes)
            .collect();
        // Nothing beyond the 256.
        let extra = cap.recv_matching(1, Duration::from_millis(200), |_| true);
        frames.extend(extra.into_iter().map(|f| f.bytes));
        frames
    });
    assert_eq!(frames.len(), 256);
    let (mut macs, mut flows, mut entropy) = (HashSet::new(), HashSet::new(), HashSet::new());
    for f in &frames {
        assert_eq!(f.len(), 64 + 50);
        let p = SlicedPacket::from_ethernet(f).expect("outer parses");
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("outer not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "outer IPv4 checksum"
        );
        assert_eq!(h.source, [198, 51, 100, 7]);
        assert_eq!(h.destination, [198, 51, 100, 9]);
        let Some(TransportSlice::Udp(udp)) = &p.transport else {
            panic!("outer not UDP")
        };
        assert_eq!(udp.destination_port(), 4789);
        assert!(udp.source_port() >= 49152);
        entropy.insert(udp.source_port());
        let vx = udp.payload();
        assert_eq!(vx[0], 0x08, "VXLAN I flag");
        let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
        assert_eq!(vni, 700_001);
        let inner = SlicedPacket::from_ethernet(&vx[8..]).expect("inner parses");
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &inner.link else {
            panic!("inner not Ethernet II")
        };
        assert_eq!(eth.destination(), [0x02, 0, 0, 0x64, 0, 0x0b]);
        macs.insert(eth.source());
        let Some(NetSlice::Ipv4(iip)) = &inner.net else {
            panic!("inner not IPv4")
        };
        let ih = iip.header().to_header();
        assert_eq!(
            ih.header_checksum,
            ih.calc_header_checksum(),
            "inner IPv4 checksum"
        );
        let Some(TransportSlice::Udp(iudp)) = &inner.transport else {
            panic!("inner not UDP")
        };
        assert_eq!(usize::from(iudp.length()), 64 - 34);
        flows.insert((ih.source, iudp.source_port()));
    }
    assert_eq!(macs.len(), 8);
    assert_eq!(flows.len(), 32);
    assert!(entropy.len() > 1, "outer source ports carry flow entropy");
}
