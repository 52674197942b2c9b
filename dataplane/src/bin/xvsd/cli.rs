//! Command line: the network config file, the control socket and tuning.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use xvs_control::server::DEFAULT_SOCKET;
use xvs_dataplane::xsk::{BindMode, BusyPoll, XskConfig};
use xvs_ebpf::XdpMode;

/// xvsd — the xvs XDP/AF_XDP virtual switch and VXLAN tunnel endpoint.
///
/// Loads the XDP classifier onto every port of the config file, opens one
/// AF_XDP socket per (port, queue), runs one pinned worker thread per queue
/// and serves xvsctl on a Unix socket. SIGINT/SIGTERM stop it cleanly
/// (programs detached, socket removed, exit status 0).
#[derive(Debug, Parser)]
#[command(name = "xvsd", version)]
pub struct Args {
    /// Network configuration: a TOML file with `vtep`, `port` and
    /// `bridge_domain` tables (see docs/config.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Control socket for xvsctl (created mode 0600; a stale one is
    /// replaced, a live one refused).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Number of queues to serve on every port, i.e. worker threads: worker
    /// N owns queue N of every port. Match it to the NIC's combined channels
    /// (`ethtool -L DEV combined N`); frames the NIC steers to other queues
    /// are not seen.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub queues: u32,

    /// CPUs to pin workers to, comma-separated (worker N runs on the N-th
    /// entry, wrapping around). Default: worker N on the N-th CPU this
    /// process may run on. Pin to the cores the queues' IRQs are affine to.
    #[arg(long, value_name = "CPU,…", value_delimiter = ',')]
    pub cores: Vec<usize>,

    /// Most frames a worker takes from one port's RX ring per iteration.
    /// Larger batches amortise ring and syscall costs; smaller ones cut
    /// latency.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,

    /// Size of each socket's fill, completion, RX and TX rings (power of
    /// two). Each port keeps its fill ring full (UMEM permitting): the
    /// deeper the rings, the longer a worker may be descheduled before the
    /// kernel drops frames (`xsk_rx_fill_ring_empty`, `xsk_rx_ring_full`),
    /// but the more frames cycle through the rings: in copy mode the kernel
    /// copies every frame into and out of them through a 4 KiB-page mapping
    /// of the UMEM, so a longer cycle costs it more cache and TLB misses
    /// (measured on veth: 1024 forwards more than 512 or 2048).
    #[arg(long, default_value_t = 1024)]
    pub ring_size: u32,

    /// Frames in each worker's UMEM, shared by its sockets on every port.
    /// Should cover ports × ring_size (posted for RX) plus frames in flight
    /// on TX; with fewer, each port posts at most ¾ of the UMEM / ports.
    #[arg(long, default_value_t = 16384)]
    pub umem_frames: u32,

    /// Bytes per UMEM frame: 2048 or 4096. 256 bytes of each are headroom
    /// (room for the 50/70-byte VXLAN outer headers); the rest bounds the
    /// largest frame.
    #[arg(long, default_value_t = 2048)]
    pub frame_size: u32,

    /// How to attach the XDP classifier: `native` (in the driver; fails
    /// where the driver has no XDP), `generic` (after SKB allocation; works
    /// everywhere, slower), `auto` (native, else generic).
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,

    /// How to bind AF_XDP sockets: `zerocopy` (the NIC DMAs into the UMEM;
    /// needs driver support and native XDP), `copy` (the kernel copies;
    /// works everywhere), `auto` (zero-copy, else copy).
    #[arg(long, value_enum, default_value_t = BindArg::Auto)]
    pub bind: BindArg,

    /// Preferred busy polling on every socket, with this many microseconds
    /// per poll (SO_PREFER_BUSY_POLL + SO_BUSY_POLL; budget = --batch).
    /// Lowers latency at the cost of a core spinning in the driver. Pair
    /// with `napi_defer_hard_irqs`/`gro_flush_timeout` on the NIC.
    #[arg(long, value_name = "USECS")]
    pub busy_poll: Option<u32>,

    /// Do not use XDP_USE_NEED_WAKEUP: kick the kernel on every TX flush
    /// and fill instead of only when it asks (more syscalls; for drivers
    /// that mishandle the flag).
    #[arg(long)]
    pub no_need_wakeup: bool,

    /// Back the UMEM with ordinary 4 KiB pages instead of transparent huge
    /// pages (huge pages save userspace a TLB miss on nearly every frame).
    #[arg(long)]
    pub no_huge_pages: bool,

    /// Serve the counters (`xvsctl stats`) in the Prometheus text format on
    /// this address, e.g. `127.0.0.1:9417` (GET /metrics). Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Seconds a learned MAC stays in the FDB without being seen.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub fdb_ageing: u64,

    /// Log filter: error, warn, info, debug, trace, or a tracing
    /// EnvFilter directive (e.g. `info,xvs_dataplane=debug`). Logs go to
    /// stderr.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

/// `--xdp-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Driver (native) XDP only.
    Native,
    /// Generic (SKB) XDP.
    Generic,
    /// Native, else generic.
    Auto,
}

/// `--bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindArg {
    /// Copy mode.
    Copy,
    /// Zero-copy.
    Zerocopy,
    /// Zero-copy, else copy.
    Auto,
}

impl Args {
    /// The classifier's attach mode.
    pub fn xdp_mode(&self) -> XdpMode {
        match self.xdp_mode {
            XdpModeArg::Native => XdpMode::Native,
            XdpModeArg::Generic => XdpMode::Generic,
            XdpModeArg::Auto => XdpMode::Auto,
        }
    }

    /// One worker's UMEM and socket configuration for `ports` ports.
    pub fn xsk_config(&self, ports: usize) -> XskConfig {
        let ports = ports.max(1) as u32;
        // The whole fill ring posted for RX, but never more than the UMEM
        // can give every port while keeping a quarter of it for TX and
        // floods.
        let fill = self.ring_size.min(self.umem_frames * 3 / 4 / ports).max(1);
        XskConfig {
            frame_size: self.frame_size,
            frame_count: self.umem_frames,
            headroom: 0,
            fill_size: self.ring_size,
            comp_size: self.ring_size,
            rx_size: self.ring_size,
            tx_size: self.ring_size,
            fill_target: fill,
            bind: match self.bind {
                BindArg::Copy => BindMode::Copy,
                BindArg::Zerocopy => BindMode::ZeroCopy,
                BindArg::Auto => BindMode::Auto,
            },
            need_wakeup: !self.no_need_wakeup,
            busy_poll: self.busy_poll.map(|usecs| BusyPoll {
                usecs,
                budget: self.batch,
            }),
            huge_pages: !self.no_huge_pages,
        }
    }

    /// FDB ageing time.
    pub fn fdb_ageing(&self) -> Duration {
        Duration::from_secs(self.fdb_ageing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn xsk_config_from_flags() {
        let a = Args::parse_from([
            "xvsd",
            "--config",
            "x.toml",
            "--ring-size",
            "1024",
            "--umem-frames",
            "4096",
            "--bind",
            "copy",
            "--busy-poll",
            "50",
            "--batch",
            "32",
            "--no-need-wakeup",
        ]);
        let c = a.xsk_config(4);
        assert_eq!((c.fill_size, c.tx_size, c.fill_target), (1024, 1024, 768));
        assert_eq!(c.bind, BindMode::Copy);
        assert!(!c.need_wakeup);
        assert_eq!(
            c.busy_poll,
            Some(BusyPoll {
                usecs: 50,
                budget: 32
            })
        );
        assert!(c.validate().is_ok());
        // A small UMEM shrinks the fill target instead of starving TX.
        let a = Args::parse_from(["xvsd", "--config", "x", "--umem-frames", "1024"]);
        assert_eq!(a.xsk_config(4).fill_target, 192);
        assert_eq!(a.xdp_mode(), XdpMode::Auto);
    }

    #[test]
    fn defaults_use_1024_rings_on_huge_pages() {
        let c = Args::parse_from(["xvsd", "--config", "x.toml"]).xsk_config(2);
        assert_eq!((c.fill_size, c.rx_size, c.fill_target), (1024, 1024, 1024));
        assert!(c.huge_pages);
        let c = Args::parse_from(["xvsd", "--config", "x.toml", "--no-huge-pages"]).xsk_config(2);
        assert!(!c.huge_pages);
        assert!(c.validate().is_ok());
    }
}
