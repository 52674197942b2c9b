//! `xvs-gen`: the benchmark's traffic generator. Transmits frames with
//! AF_XDP (`xvs_dataplane::xsk::XskIo`, copy mode on veth) on one queue of
//! one interface: plain IPv4/UDP frames or VXLAN-encapsulated ones, over
//! `--flows` flows and `--macs` source MACs, as fast as it can or at
//! `--rate` frames per second, for `--seconds` and/or `--count` frames.
//!
//! ```text
//! xvs-gen --iface IF [--size 60] [--macs N] [--flows N] [--src-mac M] [--dst-mac M]
//!         [--vxlan --vni V --outer-src-mac M --outer-dst-mac M --outer-src-ip A --outer-dst-ip A]
//!         [--rate PPS] [--count N] [--seconds S]
//! ```
//!
//! Every distinct frame is built once before sending ([`frames`]); the send
//! loop copies one into each UMEM chunk. At the end it waits (bounded) for
//! the kernel to complete every queued frame and prints one JSON object:
//! `sent` (frames the kernel completed: exact), `queued`, `secs` (the
//! sending time), `mpps`, and the TX ring's and kernel's counters. Exit
//! status 0 when every queued frame completed.

mod frames;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};
use serde_json::json;
use xvs_dataplane::xsk::{BindMode, FrameIo as _, XskConfig, XskIo};

use frames::{parse_mac, Outer, Shape};

/// AF_XDP bind mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bind {
    /// Zero-copy if the driver has it, else copy.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy (fails where the driver lacks it, e.g. veth).
    Zerocopy,
}

#[derive(Debug, Parser)]
#[command(about = "AF_XDP traffic generator: plain or VXLAN frames, exact counts")]
struct Args {
    /// Interface to send on (in the current network namespace).
    #[arg(long)]
    iface: String,
    /// Queue to bind.
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = Bind::Auto)]
    bind: Bind,
    /// Inner frame length without FCS (60 = 64 bytes on the wire).
    #[arg(long, default_value_t = 60)]
    size: usize,
    /// Number of source MACs (counting up from --src-mac).
    #[arg(long, default_value_t = 1)]
    macs: u32,
    /// Number of flows (inner source address + UDP source port).
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// First source MAC.
    #[arg(long, default_value = "02:00:00:64:00:01", value_parser = parse_mac)]
    src_mac: [u8; 6],
    /// Destination MAC.
    #[arg(long, default_value = "02:00:00:64:00:0b", value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// Send to the broadcast MAC instead of --dst-mac.
    #[arg(long)]
    broadcast: bool,
    /// Inner source address (first of the flows).
    #[arg(long, default_value = "10.100.0.1")]
    src_ip: Ipv4Addr,
    /// Inner destination address.
    #[arg(long, default_value = "10.100.0.11")]
    dst_ip: Ipv4Addr,
    /// Wrap every frame in VXLAN over IPv4.
    #[arg(long)]
    vxlan: bool,
    /// VXLAN network identifier.
    #[arg(long, default_value_t = 100)]
    vni: u32,
    /// VXLAN UDP destination port.
    #[arg(long, default_value_t = 4789)]
    vxlan_port: u16,
    /// Outer source MAC (VXLAN).
    #[arg(long, default_value = "02:00:c0:00:02:01", value_parser = parse_mac)]
    outer_src_mac: [u8; 6],
    /// Outer destination MAC (VXLAN).
    #[arg(long, default_value = "02:00:c0:00:02:0a", value_parser = parse_mac)]
    outer_dst_mac: [u8; 6],
    /// Outer source address: the sending VTEP (VXLAN).
    #[arg(long, default_value = "192.0.2.1")]
    outer_src_ip: Ipv4Addr,
    /// Outer destination address: the receiving VTEP (VXLAN).
    #[arg(long, default_value = "192.0.2.10")]
    outer_dst_ip: Ipv4Addr,
    /// Frames per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Stop after this many frames (0: no limit, --seconds decides).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Stop after this many seconds (always a bound).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Frames per TX batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() -> Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is async-signal-safe (one relaxed atomic
        // store) and has the signature `signal` expects.
        let prev = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if prev == libc::SIG_ERR {
            bail!("installing the handler of signal {sig} failed");
        }
    }
    Ok(())
}

impl Args {
    fn shape(&self) -> Shape {
        Shape {
            size: self.size,
            src_mac: self.src_mac,
            dst_mac: if self.broadcast {
                [0xff; 6]
            } else {
                self.dst_mac
            },
            macs: self.macs,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            flows: self.flows,
            outer: self.vxlan.then_some(Outer {
                src_mac: self.outer_src_mac,
                dst_mac: self.outer_dst_mac,
                src_ip: self.outer_src_ip,
                dst_ip: self.outer_dst_ip,
                port: self.vxlan_port,
                vni: self.vni,
            }),
        }
    }
}

/// Paces sending at `rate` frames per second (0: unpaced).
struct Pacer {
    rate: u64,
    start: Instant,
}

impl Pacer {
    /// How many more frames may go now, after `sent` (at most `max`).
    /// Sleeps briefly when ahead of schedule.
    fn allowance(&self, sent: u64, max: usize) -> usize {
        if self.rate == 0 {
            return max;
        }
        let due = (self.start.elapsed().as_secs_f64() * self.rate as f64) as u64;
        if due > sent {
            return max.min((due - sent) as usize);
        }
        // Ahead: sleep until the next frame is due (at most 1 ms, so the
        // caller re-checks its deadline and signals).
        let ahead = (sent + 1 - due) as f64 / self.rate as f64;
        std::thread::sleep(Duration::from_secs_f64(ahead.min(0.001)));
        0
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let shape = args.shape();
    shape.validate()?;
    if !args.seconds.is_finite() || args.seconds <= 0.0 {
        bail!("--seconds must be a positive number");
    }
    if !(1..=2048).contains(&args.batch) {
        bail!("--batch must be in 1..=2048");
    }
    install_signal_handlers()?;

    let all = shape.build_all();
    let len = shape.frame_len();
    let distinct = shape.distinct();

    let cfg = XskConfig {
        frame_count: 4096,
        // TX only: the fill ring just has to exist.
        fill_size: 64,
        fill_target: 8,
        rx_size: 64,
        tx_size: 2048,
        comp_size: 2048,
        bind: match args.bind {
            Bind::Auto => BindMode::Auto,
            Bind::Copy => BindMode::Copy,
            Bind::Zerocopy => BindMode::ZeroCopy,
        },
        ..XskConfig::default()
    };
    let mut io = XskIo::new(cfg).context("AF_XDP UMEM")?;
    let port = io
        .open_port(&args.iface, args.queue)
        .with_context(|| format!("AF_XDP socket on {} queue {}", args.iface, args.queue))?;

    let limit = if args.count == 0 {
        u64::MAX
    } else {
        args.count
    };
    let run_for = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let pacer = Pacer {
        rate: args.rate,
        start,
    };
    let (mut queued, mut k) = (0u64, 0usize);
    while queued < limit && !STOP.load(Ordering::Relaxed) && start.elapsed() < run_for {
        let room = (limit - queued).min(args.batch as u64) as usize;
        let n = pacer.allowance(queued, room);
        for _ in 0..n {
            let Some(mut f) = io.alloc() else { break };
            f.set_len(len);
            io.data_mut(&f)
                .copy_from_slice(&all[k * len..(k + 1) * len]);
            match io.send(port, f) {
                Ok(()) => {
                    queued += 1;
                    k += 1;
                    if k == distinct {
                        k = 0;
                    }
                }
                Err(f) => {
                    io.free(f);
                    break;
                }
            }
        }
        io.flush();
    }
    let secs = start.elapsed().as_secs_f64();
    // Drain: every queued frame completed, or 2 s passed.
    let drain = Instant::now();
    while io.frames_in_tx() > 0 && drain.elapsed() < Duration::from_secs(2) {
        io.flush();
        std::thread::sleep(Duration::from_micros(100));
    }
    let st = io.stats(port).unwrap_or_default();
    let kst = io
        .kernel_stats(port)
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let out = json!({
        "iface": args.iface,
        "mode": io.bound_mode().map(|m| format!("{m:?}").to_lowercase()),
        "frame_len": len,
        "queued": queued,
        "sent": st.tx_completed,
        "secs": secs,
        "mpps": st.tx_completed as f64 / secs / 1e6,
        "tx_ring_full": st.tx_ring_full,
        "tx_kicks": st.tx_kicks,
        "tx_invalid_descs": kst.tx_invalid_descs,
        "in_flight": io.frames_in_tx(),
    });
    println!("{out}");
    if st.tx_completed != queued {
        bail!(
            "{} of {queued} queued frames never completed",
            queued - st.tx_completed
        );
    }
    Ok(())
}
