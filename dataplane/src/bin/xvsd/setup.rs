//! Start-up: config → classifier maps → AF_XDP sockets per (port, queue) →
//! XSKMAP → attach. Every step's error names what it was doing.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use xvs_control::config::Role;
use xvs_dataplane::daemon::{netdev, ClassifierEntries, ClassifierSync, Model};
use xvs_dataplane::types::MacAddr;
use xvs_dataplane::xsk::{BoundMode, XskIo};
use xvs_ebpf::Classifier;

use crate::cli::Args;
use crate::watch::{PortHealth, Watched, Watchlist};

/// The uplink as the encapsulation and next-hop code need it.
#[derive(Debug, Clone, Copy)]
pub struct Uplink {
    /// Its ifindex (routes towards remote VTEPs must leave through it).
    pub ifindex: u32,
    /// Its port index.
    pub port: u16,
    /// Its MAC: the outer source of encapsulated frames.
    pub mac: MacAddr,
    /// Its IP MTU: encapsulated frames larger than this are dropped.
    pub mtu: u32,
}

/// One port as it was set up.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// Interface index.
    pub ifindex: u32,
    /// The XDP mode the classifier runs in on it.
    pub xdp_mode: String,
    /// Up/down/gone, as the watchdog (`watch`) last saw it.
    pub health: Arc<PortHealth>,
}

/// Everything start-up built; dropping it detaches and closes everything.
pub struct Running {
    /// The loaded classifier (maps, counters).
    pub classifier: Arc<Classifier>,
    /// The attachments, one per port, under the watchdog's eye
    /// (detached when removed from it or on drop).
    pub watched: Watchlist,
    /// One I/O (UMEM + sockets on every port) per queue.
    pub ios: Vec<XskIo>,
    /// Per port, by index.
    pub ports: Vec<PortInfo>,
    /// The uplink, if configured.
    pub uplink: Option<Uplink>,
    /// The AF_XDP mode the kernel bound the sockets in.
    pub bound: &'static str,
    /// What the classifier's maps hold.
    pub sync: ClassifierSync,
}

/// Loads and configures the classifier, opens the sockets and attaches.
pub fn start(args: &Args, model: &Model) -> Result<Running> {
    let cls = Classifier::load().context("loading the XDP classifier")?;
    let mut ports = Vec::with_capacity(model.ports().len());
    let mut uplink = None;
    for p in model.ports() {
        let ifindex =
            xvs_ebpf::ifindex_of(&p.name).with_context(|| format!("port {:?}", p.name))?;
        if p.role == Role::Uplink {
            let mac = netdev::mac(&p.name).with_context(|| format!("uplink {:?}", p.name))?;
            let mtu = netdev::mtu(&p.name).with_context(|| format!("uplink {:?}", p.name))?;
            uplink = Some(Uplink {
                ifindex,
                port: p.id.0,
                mac,
                mtu,
            });
        }
        ports.push(PortInfo {
            ifindex,
            xdp_mode: String::new(),
            health: Arc::default(),
        });
    }
    // Ports, local addresses and multicast flood groups (VXLAN to one is
    // decapsulated like VXLAN to our own addresses), UDP port, VNIs,
    // attachments: the one translation live changes and trace use too.
    let ifindexes: BTreeMap<u16, u32> = model
        .ports()
        .iter()
        .zip(&ports)
        .map(|(p, i)| (p.id.0, i.ifindex))
        .collect();
    let target = ClassifierEntries::of(model, |p| ifindexes.get(&p.id.0).copied());
    let mut sync = ClassifierSync::new();
    sync.sync(&cls, &target)?;
    // The uplink joins the flood groups (docs/config.md).
    if let Some(u) = &uplink {
        let groups: Vec<_> = model
            .flood_vteps()
            .into_iter()
            .filter(|g| g.is_multicast())
            .collect();
        xvs_dataplane::daemon::mcast::UPLINK_GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sync(u.ifindex, &groups)
            .context("joining the flood groups on the uplink")?;
    }

    let cfg = args.xsk_config(model.ports().len());
    cfg.validate().context("AF_XDP tuning flags")?;
    let mut ios = Vec::with_capacity(args.queues as usize);
    for q in 0..args.queues {
        let mut io = XskIo::new(cfg.clone()).with_context(|| format!("queue {q}: UMEM"))?;
        for p in model.ports() {
            let id = io.open_port(&p.name, q).with_context(|| {
                format!(
                    "port {:?} queue {q}: AF_XDP socket (--queues {} needs that many \
                         RX queues on every port: `ethtool -l`)",
                    p.name, args.queues
                )
            })?;
            ensure!(id.index() == usize::from(p.id.0), "socket index mismatch");
            let fd = io
                .port_fd(id)
                .context("socket vanished right after opening")?;
            cls.set_xsk(u32::from(p.id.0), q, fd)
                .with_context(|| format!("port {:?} queue {q}: XSKMAP", p.name))?;
        }
        ios.push(io);
    }
    let bound = match ios.first().and_then(|io| io.bound_mode()) {
        Some(BoundMode::ZeroCopy) => "zerocopy",
        Some(BoundMode::Copy) => "copy",
        None => "none",
    };

    let watched = Watchlist::default();
    for (p, info) in model.ports().iter().zip(&mut ports) {
        let at = cls
            .attach(&p.name, args.xdp_mode())
            .with_context(|| format!("port {:?}: attaching XDP", p.name))?;
        info.xdp_mode = at.mode().to_string();
        tracing::info!(port = %p.name, ifindex = info.ifindex, mode = %info.xdp_mode, "XDP attached");
        watched.add(Watched::new(&p.name, at, info.health.clone()));
    }
    if model.ports().is_empty() {
        bail!("the configuration has no ports");
    }
    Ok(Running {
        classifier: Arc::new(cls),
        watched,
        ios,
        ports,
        uplink,
        bound,
        sync,
    })
}
