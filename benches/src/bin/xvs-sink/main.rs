//! `xvs-sink`: the benchmark's receiving end. Attaches a tiny XDP program
//! (`src/bpf/sink.bpf.c`) to one interface with a bpf_link; it counts every
//! frame per CPU — all frames and bytes, and one class each: VXLAN, other
//! IPv4 UDP, other — and drops it. The counts are exact: nothing is sampled.
//!
//! ```text
//! xvs-sink --iface IF [--mode native|generic] [--vxlan-port 4789]
//!          [--warmup SECS --window SECS] [--max-seconds SECS] [--ready-file PATH]
//! ```
//!
//! Runs until SIGINT/SIGTERM or `--max-seconds`, then prints one JSON
//! object on stdout: `total` (everything since attach) and, with
//! `--window`, `window` (the counts between `--warmup` and
//! `--warmup + --window` seconds after attach, with their exact duration),
//! the rate a benchmark reports. `--ready-file` is created once the
//! program is attached, so a script knows when to start sending.
//! The link belongs to the process: the program detaches when it exits,
//! even when killed.

mod skel {
    //! The libbpf-rs skeleton generated from `src/bpf/sink.bpf.c`.
    #![allow(
        missing_docs,
        clippy::all,
        clippy::pedantic,
        clippy::undocumented_unsafe_blocks,
        unsafe_op_in_unsafe_fn,
        non_camel_case_types,
        dead_code,
        reason = "generated code"
    )]
    include!(concat!(env!("OUT_DIR"), "/sink.skel.rs"));
}

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags, OpenObject};
use serde_json::json;

use skel::{SinkSkel, SinkSkelBuilder};

/// The counter slots of `src/bpf/sink.h` (do not renumber).
#[derive(Debug, Clone, Copy)]
enum Slot {
    Frames = 0,
    Bytes = 1,
    Vxlan = 2,
    Udp = 3,
    Other = 4,
}

const SLOTS: [Slot; 5] = [
    Slot::Frames,
    Slot::Bytes,
    Slot::Vxlan,
    Slot::Udp,
    Slot::Other,
];

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Driver mode (veth has it): the program runs in the driver's RX path.
    Native,
    /// SKB mode: after the kernel built an skb; works everywhere, slower.
    Generic,
}

#[derive(Debug, Parser)]
#[command(about = "Count and drop every frame arriving on an interface (XDP)")]
struct Args {
    /// Interface to attach to (in the current network namespace).
    #[arg(long)]
    iface: String,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    mode: Mode,
    /// UDP destination port that counts as VXLAN.
    #[arg(long, default_value_t = 4789)]
    vxlan_port: u16,
    /// Seconds after attach at which the measurement window opens.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Length of the measurement window in seconds (none when absent).
    #[arg(long)]
    window: Option<f64>,
    /// Exit on its own after this many seconds (bounds every run).
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
    /// File to create once the program is attached.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

/// One reading of every slot, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts([u64; SLOTS.len()]);

impl Counts {
    fn get(&self, s: Slot) -> u64 {
        self.0[s as usize]
    }

    fn since(&self, earlier: &Counts) -> Counts {
        let mut d = Counts::default();
        for (i, v) in d.0.iter_mut().enumerate() {
            *v = self.0[i].wrapping_sub(earlier.0[i]);
        }
        d
    }

    fn to_json(self, secs: f64) -> serde_json::Value {
        json!({
            "frames": self.get(Slot::Frames),
            "bytes": self.get(Slot::Bytes),
            "vxlan": self.get(Slot::Vxlan),
            "udp": self.get(Slot::Udp),
            "other": self.get(Slot::Other),
            "secs": secs,
        })
    }
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

fn ifindex(name: &str) -> Result<u32> {
    let c = CString::new(name).context("interface name contains NUL")?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => bail!("no such interface: {name}"),
        i => Ok(i),
    }
}

/// Creates an XDP bpf_link for `skel`'s program on `ifindex`: it detaches
/// when the returned descriptor closes (also when the process dies).
fn attach(skel: &SinkSkel<'_>, ifindex: u32, mode: Mode) -> Result<OwnedFd> {
    let flags = match mode {
        Mode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
        Mode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
    };
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags,
        ..Default::default()
    };
    let prog_fd = skel.progs.xvs_sink.as_fd().as_raw_fd();
    // SAFETY: `prog_fd` is the loaded program's fd, alive for the call;
    // `opts` is a correctly sized, initialised options struct.
    let fd =
        unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd))
            .with_context(|| format!("attaching the sink to ifindex {ifindex} ({mode:?})"));
    }
    // SAFETY: a non-negative return is a new link fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads every slot, summing the per-CPU values.
fn read(skel: &SinkSkel<'_>) -> Result<Counts> {
    let mut c = Counts::default();
    for s in SLOTS {
        let key = (s as u32).to_ne_bytes();
        let per_cpu = skel
            .maps
            .xvs_sink_counters
            .lookup_percpu(&key, MapFlags::ANY)
            .context("reading the sink counters")?
            .unwrap_or_default();
        c.0[s as usize] = per_cpu
            .iter()
            .map(|v| {
                v.get(..8)
                    .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
            })
            .sum();
    }
    Ok(c)
}

/// Sleeps until `deadline`, a signal, or `limit`, in 10 ms steps. True if
/// the deadline was reached.
fn sleep_until(deadline: Instant, limit: Instant) -> bool {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        if STOP.load(Ordering::Relaxed) || now >= limit {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    for (what, v) in [
        ("--warmup", args.warmup),
        ("--max-seconds", args.max_seconds),
    ] {
        if !v.is_finite() || v < 0.0 {
            bail!("{what} must be a non-negative number of seconds");
        }
    }
    if let Some(w) = args.window {
        if !w.is_finite() || w <= 0.0 {
            bail!("--window must be a positive number of seconds");
        }
    }
    install_signal_handlers()?;
    let index = ifindex(&args.iface)?;

    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let mut open = SinkSkelBuilder::default()
        .open(&mut storage)
        .context("opening the sink BPF object")?;
    let Some(rodata) = open.maps.rodata_data.as_deref_mut() else {
        bail!("the sink BPF object has no .rodata (vxlan_port)");
    };
    rodata.vxlan_port = args.vxlan_port;
    let skel = open.load().context("loading the sink BPF program")?;
    let link = attach(&skel, index, args.mode)?;
    let start = Instant::now();
    let base = read(&skel)?;
    if let Some(p) = &args.ready_file {
        std::fs::write(p, b"ready\n").with_context(|| format!("writing {}", p.display()))?;
    }

    let limit = start + Duration::from_secs_f64(args.max_seconds);
    let mut window = None;
    if let Some(w) = args.window {
        if sleep_until(start + Duration::from_secs_f64(args.warmup), limit) {
            let (a, t0) = (read(&skel)?, Instant::now());
            if sleep_until(t0 + Duration::from_secs_f64(w), limit) {
                let (b, t1) = (read(&skel)?, Instant::now());
                window = Some(b.since(&a).to_json((t1 - t0).as_secs_f64()));
            }
        }
    }
    // Then keep counting (stragglers, exact totals) until told to stop.
    while !STOP.load(Ordering::Relaxed) && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(10));
    }
    let total = read(&skel)?.since(&base);
    drop(link);
    let out = json!({
        "iface": args.iface,
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "total": total.to_json(start.elapsed().as_secs_f64()),
        "window": window,
    });
    println!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_subtract_per_slot() {
        let a = Counts([10, 600, 4, 5, 1]);
        let b = Counts([15, 900, 8, 5, 2]);
        assert_eq!(b.since(&a), Counts([5, 300, 4, 0, 1]));
        let j = b.since(&a).to_json(1.5);
        assert_eq!(j["frames"], 5);
        assert_eq!(j["vxlan"], 4);
        assert_eq!(j["secs"], 1.5);
    }
}
