//! Worker threads: one per queue, pinned, running the library's
//! [`Worker`] over that queue's AF_XDP sockets, publishing a counter
//! snapshot a few times a second for `xvsctl stats`, and opening or closing
//! sockets between batches when a live `port add|del` asks ([`IoCommand`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::os::fd::OwnedFd;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use xvs_dataplane::daemon::{Worker, WorkerCounters};
use xvs_dataplane::engine::Counters;
use xvs_dataplane::fdb::Tick;
use xvs_dataplane::ratelog::{DropWatch, DEFAULT_INTERVAL_MS};
use xvs_dataplane::xsk::{ClosedPort, FrameIo, KernelStats, PortId, PortStats, XskError, XskIo};

/// How often a worker publishes its counters.
const REPORT_EVERY: Duration = Duration::from_millis(200);
/// Empty iterations before a worker sleeps in `poll`.
const SPIN_BEFORE_SLEEP: u32 = 64;
/// Longest sleep of an idle worker (bounds the latency of next-hop and FDB
/// updates while idle, and of noticing the stop flag).
const IDLE_POLL: Duration = Duration::from_millis(10);
/// Sleep of an idle worker with frames still in flight on TX.
const TX_PENDING_POLL: Duration = Duration::from_millis(1);

/// A change to a worker's sockets, carried out between two batches.
#[derive(Debug)]
pub enum IoCommand {
    /// Open an AF_XDP socket on the worker's queue of interface `name` at
    /// socket index `port`; answer with a duplicate of its descriptor (for
    /// the XSKMAP).
    Open {
        /// Interface name.
        name: String,
        /// Socket index (the port's number).
        port: PortId,
        /// Where the answer goes.
        reply: Sender<Result<OwnedFd, OpenError>>,
    },
    /// Close the socket at index `port` (nothing may be redirected to it
    /// any more) and take its frames back. `Ok(None)`: it was not open
    /// (closed already, as the watchdog does for a deleted interface).
    Close {
        /// Socket index.
        port: PortId,
        /// Where the answer goes.
        reply: Sender<Result<Option<ClosedPort>, String>>,
    },
}

/// Why a socket could not be opened.
#[derive(Debug)]
pub struct OpenError {
    /// One line for the client.
    pub message: String,
    /// The queue was busy (`EBUSY`): a socket closed on it a moment ago is
    /// still being released by the kernel; trying again shortly works.
    pub busy: bool,
}

impl OpenError {
    fn other(message: String) -> OpenError {
        OpenError {
            message,
            busy: false,
        }
    }
}

fn handle(io: &mut XskIo, queue: u32, cmd: IoCommand) {
    match cmd {
        IoCommand::Open { name, port, reply } => {
            let r = match io.open_port_at(&name, queue, port) {
                Err(e) => Err(OpenError {
                    busy: matches!(&e, XskError::Bind { source, .. }
                        if source.raw_os_error() == Some(libc::EBUSY)),
                    message: e.to_string(),
                }),
                Ok(id) => {
                    let fd = io
                        .port_fd(id)
                        .map(|fd| fd.try_clone_to_owned())
                        .unwrap_or_else(|| Err(std::io::Error::other("socket vanished")))
                        .map_err(|e| {
                            OpenError::other(format!("duplicating the socket descriptor: {e}"))
                        });
                    if fd.is_err() {
                        // A port nobody can map would hold frames for
                        // nothing.
                        let _ = io.close_port(id);
                    }
                    fd
                }
            };
            let _ = reply.send(r);
        }
        IoCommand::Close { port, reply } => {
            let r = match io.close_port(port) {
                Ok(c) => Ok(Some(c)),
                Err(XskError::NoSuchPort(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            if let Ok(Some(c)) = &r {
                tracing::info!(
                    queue,
                    port = port.index(),
                    recovered = c.recovered,
                    lost = c.lost,
                    "socket closed"
                );
            }
            let _ = reply.send(r);
        }
    }
}

/// One socket's counters.
#[derive(Debug, Clone, Default)]
pub struct SocketReport {
    /// Interface name.
    pub port: String,
    /// Queue.
    pub queue: u32,
    /// Userspace ring counters.
    pub stats: PortStats,
    /// The kernel's socket counters (`XDP_STATISTICS`).
    pub kernel: Option<KernelStats>,
}

/// A worker's published counters.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The CPU it is pinned to.
    pub core: Option<usize>,
    /// Engine counters.
    pub engine: Counters,
    /// Worker counters.
    pub worker: WorkerCounters,
    /// Per socket.
    pub sockets: Vec<SocketReport>,
    /// Frames in the UMEM's free stack.
    pub frames_free: usize,
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; the index is checked
    // against the set's capacity first.
    unsafe {
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as in `pin`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return vec![0];
    }
    (0..8 * std::mem::size_of::<libc::cpu_set_t>())
        // SAFETY: CPU_ISSET reads one bit inside `set`, index in range.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

fn publish(report: &Mutex<Report>, worker: &Worker, io: &XskIo, with_kernel: bool) {
    let Ok(mut r) = report.lock() else { return };
    r.engine = *worker.engine_counters();
    r.worker = *worker.counters();
    r.frames_free = io.frames_free();
    // Closed ports (live `port del`) leave a hole: an empty name, skipped
    // by `stats`.
    r.sockets
        .resize_with(io.port_count(), SocketReport::default);
    for (i, s) in r.sockets.iter_mut().enumerate() {
        let id = PortId::new(i as u16);
        match io.port_name(id) {
            Some((name, queue)) => {
                if s.port != name {
                    *s = SocketReport {
                        port: name.to_owned(),
                        queue,
                        ..SocketReport::default()
                    };
                }
            }
            None => {
                *s = SocketReport::default();
                continue;
            }
        }
        s.stats = io.stats(id).unwrap_or_default();
        if with_kernel {
            s.kernel = io.kernel_stats(id).and_then(Result::ok);
        }
    }
}

/// Starts worker `index` on its own thread, pinned to `core`.
pub fn spawn(
    mut worker: Worker,
    mut io: XskIo,
    commands: Receiver<IoCommand>,
    core: Option<usize>,
    origin: Instant,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<Report>>,
) -> anyhow::Result<JoinHandle<()>> {
    let index = worker.index();
    std::thread::Builder::new()
        .name(format!("xvs-worker-{index}"))
        .spawn(move || {
            if let Some(cpu) = core {
                match pin(cpu) {
                    Ok(()) => tracing::info!(worker = index, cpu, "worker pinned"),
                    Err(e) => tracing::warn!(worker = index, cpu, error = %e, "cannot pin worker"),
                }
            }
            if let Ok(mut r) = report.lock() {
                r.core = core;
            }
            let mut idle = 0u32;
            let mut last_report = Instant::now();
            let mut reports = 0u64;
            let mut drops = DropWatch::new(format!("worker {index}"), DEFAULT_INTERVAL_MS);
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                while let Ok(cmd) = commands.try_recv() {
                    handle(&mut io, index as u32, cmd);
                }
                let got = worker.run_batch(&mut io, Tick::since(origin, now));
                if got == 0 {
                    idle = idle.saturating_add(1);
                    if idle >= SPIN_BEFORE_SLEEP {
                        // Frames still on a TX ring: come back soon to
                        // kick and reap them (poll only wakes on RX).
                        let wait = if io.frames_in_tx() > 0 {
                            TX_PENDING_POLL
                        } else {
                            IDLE_POLL
                        };
                        if let Err(e) = io.poll(wait) {
                            tracing::warn!(worker = index, error = %e, "poll failed");
                            std::thread::sleep(wait);
                        }
                    }
                } else {
                    idle = 0;
                }
                if now.duration_since(last_report) >= REPORT_EVERY {
                    reports += 1;
                    publish(&report, &worker, &io, reports % 5 == 0);
                    last_report = now;
                    // Drops that mean a bug or an undersized ring: a
                    // rate-limited warning (the counters have the rest).
                    let (w, e) = (worker.counters(), worker.engine_counters());
                    drops.observe(
                        now.duration_since(origin).as_millis() as u64,
                        &[
                            ("drop_tx_full", w.drop_tx_full),
                            ("drop_bad_meta", w.drop_bad_meta),
                            ("drop_no_egress_port", w.drop_no_egress_port),
                            ("drop_no_frame", e.drop_no_frame),
                            ("drop_no_headroom", e.drop_no_headroom),
                            ("drop_bad_range", e.drop_bad_range),
                        ],
                    );
                }
            }
            publish(&report, &worker, &io, true);
            tracing::info!(worker = index, "worker stopped");
        })
        .context("spawning a worker thread")
}
