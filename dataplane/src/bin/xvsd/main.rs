//! xvsd: the xvs daemon.
//!
//! Start-up (`setup`): config → numbered model → classifier maps → one
//! AF_XDP socket per (port, queue) in one UMEM per queue → XSKMAP → XDP
//! attach. Then threads: one pinned worker per queue (`worker`), the FDB
//! owner, the next-hop resolver (`nexthop`) and the control socket
//! (`control`). SIGINT/SIGTERM: stop the workers, detach, remove the
//! socket, exit 0. `docs/deployment.md` is the operator's guide.

mod cli;
mod control;
mod live;
mod nexthop;
mod privs;
mod setup;
mod stats_bd;
mod trace;
mod watch;
mod worker;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use crossbeam_channel::unbounded;
use tracing_subscriber::EnvFilter;
use xvs_control::config::Config;
use xvs_control::metrics::{self, MetricsServer};
use xvs_control::server::{Server, ServerConfig};
use xvs_dataplane::daemon::{netdev, Model, Worker};
use xvs_dataplane::engine::Engine;
use xvs_dataplane::fdb::{self, FdbConfig, Tick};
use xvs_dataplane::types::MacAddr;

use crate::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("xvsd: --log-level {:?}: {e}", args.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, blocked in every thread (threads inherit the mask)
/// and taken synchronously by the main thread with `sigtimedwait`.
struct Signals(libc::sigset_t);

impl Signals {
    fn block() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t for these calls; the signal
        // numbers are valid; a null old-set pointer is allowed.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Signals(set))
    }

    /// Waits up to `timeout` for one of the signals; returns it.
    fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `self.0` and `ts` are valid for the call; a null siginfo
        // pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}

fn run(args: &Args) -> Result<()> {
    let signals = Signals::block().context("blocking SIGINT/SIGTERM")?;
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = Config::parse(&text).with_context(|| format!("{}", args.config.display()))?;
    let model =
        Model::from_config(&config).with_context(|| format!("{}", args.config.display()))?;
    let queues = args.queues as usize;

    let running = setup::start(args, &model)?;
    trace::preload();
    // Before any thread exists: threads inherit the reduced sets.
    privs::drop_to_kept().context("dropping capabilities")?;
    let origin = Instant::now();

    // The FDB: an owner thread, one replica per worker.
    let fdb_config = FdbConfig {
        ageing: args.fdb_ageing(),
        ..FdbConfig::default()
    };
    let (mut owner, replicas, fdb_control) = fdb::new(fdb_config, queues);
    for b in model.bridge_domains() {
        if b.max_macs.is_some() {
            owner.set_max_macs(b.id, b.max_macs);
        }
    }
    std::thread::Builder::new()
        .name("xvs-fdb".into())
        .spawn(move || {
            let stats = owner.run(move || Tick::since(origin, Instant::now()));
            tracing::debug!(?stats, "FDB owner stopped");
        })
        .context("spawning the FDB owner")?;

    // Workers.
    let (src_mac, mtu) = running
        .uplink
        .map_or((MacAddr::ZERO, 1500), |u| (u.mac, u.mtu as usize));
    let encap = model.encap_config(src_mac, mtu);
    let cpus = if args.cores.is_empty() {
        worker::allowed_cpus()
    } else {
        args.cores.clone()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut hop_senders = Vec::with_capacity(queues);
    let mut links = Vec::with_capacity(queues);
    let mut reports = Vec::with_capacity(queues);
    let mut handles = Vec::with_capacity(queues);
    let setup::Running {
        classifier,
        watched,
        ios,
        ports,
        uplink,
        bound,
        sync,
    } = running;
    for (q, (replica, io)) in replicas.into_iter().zip(ios).enumerate() {
        let mut engine = Engine::new(replica, model.engine_bridge_domains(), encap);
        engine.set_storm_workers(args.queues);
        // Frames tagged onto a port must fit its MTU (`drop_mtu`).
        for p in model.ports() {
            match netdev::mtu(&p.name) {
                Ok(mtu) => engine.set_port_mtu(p.id, Some(mtu)),
                Err(e) => tracing::warn!(port = %p.name, error = %e, "no MTU: not checked"),
            }
        }
        let (tx, rx) = unbounded();
        hop_senders.push(tx);
        let mut w = Worker::new(q, engine, args.batch as usize, rx);
        // Live reconfiguration: bridge domains and sockets.
        let (bds, bd_rx) = unbounded();
        w.set_bd_updates(bd_rx);
        let (io_tx, io_rx) = unbounded();
        links.push(live::WorkerLink { bds, io: io_tx });
        let report = Arc::new(Mutex::new(worker::Report::default()));
        reports.push(report.clone());
        let core = (!cpus.is_empty()).then(|| cpus[q % cpus.len()]);
        handles.push(worker::spawn(
            w,
            io,
            io_rx,
            core,
            origin,
            stop.clone(),
            report,
        )?);
    }

    let watchdog = watch::spawn(classifier.clone(), watched.clone(), stop.clone())?;
    let hops: nexthop::HopTable = Arc::new(Mutex::new(BTreeMap::new()));
    let shared: live::SharedModel = Arc::new(RwLock::new(Arc::new(model.clone())));
    watched.on_gone(watch::closing_sockets(
        shared.clone(),
        classifier.clone(),
        links.iter().map(|l| l.io.clone()).collect(),
    ));
    let uplink = nexthop::UplinkCell::new(uplink);
    let nexthop_thread = nexthop::spawn(
        shared.clone(),
        fdb_control.clone(),
        uplink.clone(),
        hop_senders,
        hops.clone(),
        stop.clone(),
    )?;

    let live = live::Live {
        model: Arc::new(model.clone()),
        shared: shared.clone(),
        classifier: classifier.clone(),
        sync,
        fdb: fdb_control.clone(),
        workers: links,
        ports: model.ports().iter().map(|p| p.id.0).zip(ports).collect(),
        watched: watched.clone(),
        xdp_mode: args.xdp_mode(),
        uplink,
    };
    let live = Arc::new(Mutex::new(live));
    // Re-created interfaces and MTU changes the watchdog finds go through
    // the live-change path (one change at a time).
    watched.on_change(live::following(Arc::downgrade(&live)));
    let handler = control::Control {
        shared,
        live,
        fdb: fdb_control,
        classifier,
        reports,
        hops,
        bound,
        config_path: args.config.display().to_string(),
        started: Instant::now(),
    };
    let handler = Arc::new(handler);
    let metrics = match args.metrics {
        Some(addr) => {
            let h = handler.clone();
            let source: metrics::Source = Arc::new(move || h.stats().unwrap_or_default());
            let m = MetricsServer::start(addr, source)
                .with_context(|| format!("serving metrics on {addr}"))?;
            tracing::info!(addr = %m.addr(), "Prometheus metrics on /metrics");
            Some(m)
        }
        None => None,
    };
    let server = Server::start(
        ServerConfig {
            path: args.socket.clone(),
            ..ServerConfig::default()
        },
        handler,
    )
    .context("starting the control socket")?;
    tracing::info!(
        ports = model.ports().len(),
        bridge_domains = model.bridge_domains().len(),
        queues,
        af_xdp = bound,
        socket = %args.socket.display(),
        "xvsd running"
    );

    let mut failed = None;
    loop {
        if let Some(sig) = signals.wait(Duration::from_millis(500)) {
            tracing::info!(signal = sig, "stopping");
            break;
        }
        if let Some(i) = handles.iter().position(|h| h.is_finished()) {
            failed = Some(format!("worker {i} stopped unexpectedly"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        if h.join().is_err() {
            failed.get_or_insert_with(|| "a worker panicked".into());
        }
    }
    let _ = nexthop_thread.join();
    let _ = watchdog.join();
    watched.clear();
    drop(metrics);
    drop(server);
    tracing::info!("xvsd stopped");
    if let Some(why) = failed {
        bail!(why);
    }
    Ok(())
}
