//! The next-hop thread: resolves every remote VTEP xvsd sends to (flood
//! lists, static and learned FDB entries) from the kernel's routing and
//! neighbour tables and tells every worker.
//!
//! While a VTEP is unresolved the kernel is asked to resolve it (ARP / ND,
//! by [`Resolver::resolve`]) every [`PENDING_RETRY`]; the workers count the
//! frames they drop meanwhile (`drop_no_next_hop`). Route and neighbour
//! changes (netlink notifications) trigger a full refresh, as does a timer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::Sender;
use xvs_dataplane::daemon::hops::{hop_state, transition, HopState};
use xvs_dataplane::daemon::NextHopUpdate;
use xvs_dataplane::fdb::FdbControl;
use xvs_dataplane::nexthop::{ChangeWatcher, Resolver};
use xvs_dataplane::xsk::PortId;

use crate::live::SharedModel;
use crate::setup::Uplink;

/// How often an unresolved VTEP is tried again.
pub const PENDING_RETRY: Duration = Duration::from_millis(200);
/// How often every VTEP is resolved again even without a change event.
const FULL_REFRESH: Duration = Duration::from_secs(30);
/// How often the set of VTEPs is recomputed (flood lists, and the VTEPs
/// FDB entries point at, which the FDB owner keeps counted).
const RESCAN: Duration = Duration::from_secs(1);

/// Next-hop states by VTEP, shared with the control handler.
pub type HopTable = Arc<Mutex<BTreeMap<IpAddr, HopState>>>;

/// The uplink as the next-hop thread sees it: a live change swaps it and
/// raises `changed`, and every VTEP is resolved again.
#[derive(Debug, Default)]
pub struct UplinkCell {
    uplink: Mutex<Option<Uplink>>,
    changed: AtomicBool,
}

impl UplinkCell {
    /// A cell holding `uplink`.
    pub fn new(uplink: Option<Uplink>) -> Arc<UplinkCell> {
        Arc::new(UplinkCell {
            uplink: Mutex::new(uplink),
            changed: AtomicBool::new(false),
        })
    }

    /// The uplink now.
    pub fn get(&self) -> Option<Uplink> {
        *self.uplink.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the uplink's MTU (nothing to resolve again).
    pub fn set_mtu(&self, mtu: u32) {
        if let Some(u) = self
            .uplink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            u.mtu = mtu;
        }
    }

    /// Replaces the uplink; the next-hop thread re-resolves everything.
    pub fn set(&self, uplink: Option<Uplink>) {
        *self.uplink.lock().unwrap_or_else(|p| p.into_inner()) = uplink;
        self.changed.store(true, Ordering::Release);
    }
}

struct NextHops {
    model: SharedModel,
    fdb: FdbControl,
    uplink: Arc<UplinkCell>,
    workers: Vec<Sender<NextHopUpdate>>,
    table: HopTable,
    resolver: Resolver,
}

impl NextHops {
    fn vteps(&self) -> BTreeSet<IpAddr> {
        let model = self.model.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut v: BTreeSet<IpAddr> = model.flood_vteps().into_iter().collect();
        // The owner keeps the VTEPs its entries point at counted: this
        // costs the number of VTEPs, not of MACs (64k-MAC tables).
        if let Ok(vteps) = self.fdb.remote_vteps() {
            v.extend(vteps);
        }
        v
    }

    fn tell(&self, u: NextHopUpdate) {
        for w in &self.workers {
            // A worker that stopped no longer listens; nothing to do.
            let _ = w.send(u);
        }
    }

    /// Drops a VTEP nothing refers to any more from the table and the
    /// workers.
    fn forget(&mut self, vtep: IpAddr) {
        let had = self
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&vtep);
        if had.is_some() {
            self.tell(NextHopUpdate::Clear { vtep });
            tracing::debug!(%vtep, "VTEP no longer used");
        }
    }

    /// Resolves one VTEP and publishes a change; returns whether it is
    /// still unresolved.
    fn refresh(&mut self, vtep: IpAddr) -> bool {
        let up = self.uplink.get();
        let uplink = up.map(|u| u.ifindex);
        let group = xvs_dataplane::daemon::mcast::group_state(vtep);
        let state = match (uplink, group) {
            // A flood group needs no ARP/ND: its MAC is derived.
            (Some(_), Some(g)) => g,
            (Some(_), None) => hop_state(self.resolver.resolve(vtep), uplink),
            (None, _) => HopState::Failed("no uplink port configured".into()),
        };
        let pending = matches!(state, HopState::Pending { .. });
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let old = table.get(&vtep).cloned();
        let port = PortId::new(up.map_or(0, |u| u.port));
        if let Some(update) = transition(vtep, old.as_ref(), &state, port) {
            self.tell(update);
        }
        if old.as_ref() != Some(&state) {
            match &state {
                HopState::Resolved { .. } => {
                    tracing::info!(%vtep, next_hop = %state, "VTEP resolved")
                }
                HopState::Failed(_) => tracing::warn!(%vtep, state = %state, "VTEP next hop"),
                HopState::Pending { .. } => tracing::debug!(%vtep, state = %state, "VTEP next hop"),
            }
            table.insert(vtep, state);
        }
        pending
    }
}

/// Starts the next-hop thread. It stops when `stop` is set.
pub fn spawn(
    model: SharedModel,
    fdb: FdbControl,
    uplink: Arc<UplinkCell>,
    workers: Vec<Sender<NextHopUpdate>>,
    table: HopTable,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    // Both sockets open here, in the daemon's network namespace, so that
    // failures stop start-up with a clear error.
    let resolver = Resolver::new().context("opening an rtnetlink socket")?;
    let mut watcher = ChangeWatcher::new().context("subscribing to route/neighbour changes")?;
    let mut hops = NextHops {
        model,
        fdb,
        uplink,
        workers,
        table,
        resolver,
    };
    std::thread::Builder::new()
        .name("xvs-nexthop".into())
        .spawn(move || {
            let mut vteps = BTreeSet::new();
            let mut last_scan: Option<Instant> = None;
            let mut last_full = Instant::now();
            let mut full = true;
            let mut pending: BTreeSet<IpAddr> = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if last_scan.is_none_or(|t| now.duration_since(t) >= RESCAN) {
                    let fresh = hops.vteps();
                    for v in fresh.difference(&vteps) {
                        pending.insert(*v);
                    }
                    // Gone from every flood list and the FDB (live
                    // changes, ageing): forgotten.
                    for v in vteps.difference(&fresh) {
                        hops.forget(*v);
                    }
                    vteps = fresh;
                    last_scan = Some(now);
                }
                if hops.uplink.changed.swap(false, Ordering::AcqRel) {
                    // Another uplink (or none): every VTEP is told to the
                    // workers again, with the new port.
                    hops.table.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    full = true;
                }
                if now.duration_since(last_full) >= FULL_REFRESH {
                    full = true;
                }
                let todo: Vec<IpAddr> = if full {
                    last_full = now;
                    vteps.iter().copied().collect()
                } else {
                    pending.iter().copied().collect()
                };
                full = false;
                pending.clear();
                for v in todo {
                    if hops.refresh(v) {
                        pending.insert(v);
                    }
                }
                let wait = if pending.is_empty() {
                    RESCAN
                } else {
                    PENDING_RETRY
                };
                match watcher.wait(wait) {
                    Ok(true) => full = true,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "route/neighbour notifications failed");
                        std::thread::sleep(wait);
                        full = true;
                    }
                }
            }
        })
        .context("spawning the next-hop thread")
}
