//! Live reconfiguration: the one path every mutating control verb and
//! `config apply` take. The new config is validated and numbered
//! ([`Model::evolve`]: ids of what stays are kept), diffed against the
//! running one ([`Diff`]), and applied in an order that never lets a frame
//! reach something that is not ready for it:
//!
//! 1. **Check and acquire** (nothing visible yet): a port's role cannot
//!    change live; every new port's interface must exist (a new uplink's
//!    MAC and MTU are read).
//! 2. **New ports**: every worker opens a socket on its queue (between
//!    batches) → XSKMAP → XDP attach → classifier port entry (only now are
//!    the interface's frames switched).
//!    `[vtep]`: new local addresses and the UDP port go to the classifier;
//!    workers get the new encapsulation settings (addresses, port, TTL, DF,
//!    the uplink's MAC and MTU) and confirm. Multicast flood groups new to
//!    the flood lists: added to the classifier's local addresses (their
//!    VXLAN is decapsulated) and joined on the (new) uplink.
//! 3. **Workers' bridge domains**: new and changed ones are upserted, and
//!    the workers confirm (so a domain exists before frames are classified
//!    into it). Untouched domains are not sent at all.
//! 4. **Classifier maps**: VNI and (port, VLAN) entries written / deleted.
//! 5. **Workers drop removed domains** (confirmed).
//! 6. **FDB**: caps, flush of removed domains and of domains that lost an
//!    attachment or their VNI, their static entries there.
//!    Local addresses and flood groups no longer configured stop being
//!    local addresses (the uplink already left the groups in step 2). A new
//!    or removed uplink is handed to the next-hop thread, which resolves
//!    every VTEP again (no uplink: all unreachable, their frames dropped).
//! 7. **Removed ports**: classifier port entry → XSKMAP slots → XDP detach
//!    → a grace period → every worker closes its socket and takes its frames
//!    back (so no XSKMAP slot ever names a closed socket).
//!
//! Every classifier map write goes through one [`ClassifierSync`] towards
//! the new model's [`ClassifierEntries`], one part at a time in the order
//! above. Steps 2–4 can fail (an interface that refuses XDP or AF_XDP, a
//! full map, a worker that does not answer); the classifier is then synced
//! back to the entries it held before, everything else done so far is
//! undone in reverse order, and the running config stays as it was.
//!
//! The watchdog also comes here ([`following`]): a gone port whose
//! interface exists again is taken back through step 2's port-add path
//! ([`Live::reopen`]), and MTU changes reach the workers
//! ([`Live::port_mtu_changed`]). Steps 5–7 do not
//! fail (their errors are logged). The model every reader sees is swapped
//! last.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use xvs_control::config::{Config, Role};
use xvs_dataplane::daemon::classify::Part;
use xvs_dataplane::daemon::mcast::UPLINK_GROUPS;
use xvs_dataplane::daemon::model::Port;
use xvs_dataplane::daemon::{netdev, ClassifierEntries, ClassifierSync, Diff, LiveUpdate, Model};
use xvs_dataplane::engine::EncapConfig;
use xvs_dataplane::fdb::{EntryKind, FdbControl, FdbKey};
use xvs_dataplane::types::{Location, MacAddr};
use xvs_dataplane::xsk::PortId as IoPort;
use xvs_ebpf::{Classifier, XdpMode};

use crate::nexthop::UplinkCell;
use crate::setup::{PortInfo, Uplink};
use crate::watch::{ChangeHook, PortEvent, Watched, Watchlist};
use crate::worker::IoCommand;

/// How long a worker may take to answer (it answers between batches).
const WORKER_ANSWER: Duration = Duration::from_secs(3);
/// Wait between unmapping a port's sockets and closing them: a frame
/// redirected just before the XSKMAP update is delivered meanwhile.
const CLOSE_GRACE: Duration = Duration::from_millis(20);
/// How long a new socket's bind is retried while its queue is busy.
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// The running model, as readers (control queries, the next-hop thread)
/// see it; swapped whole by a live change.
pub type SharedModel = Arc<RwLock<Arc<Model>>>;

/// A worker as live changes reach it.
pub struct WorkerLink {
    /// Its bridge-domain updates.
    pub bds: Sender<LiveUpdate>,
    /// Its socket commands.
    pub io: Sender<IoCommand>,
}

/// Everything a live change touches. Held behind the control handler's
/// mutex, so changes are serialised.
pub struct Live {
    /// The running model (also published in `shared`).
    pub model: Arc<Model>,
    /// Where readers find the model.
    pub shared: SharedModel,
    /// The classifier's maps.
    pub classifier: Arc<Classifier>,
    /// What its maps hold (every write goes through it; `trace`'s copy is
    /// synced to it).
    pub sync: ClassifierSync,
    /// The FDB owner.
    pub fdb: FdbControl,
    /// Per worker (= queue).
    pub workers: Vec<WorkerLink>,
    /// Ports by number.
    pub ports: BTreeMap<u16, PortInfo>,
    /// The XDP attachments, under the watchdog's eye (removing one
    /// detaches).
    pub watched: Watchlist,
    /// How new ports attach.
    pub xdp_mode: XdpMode,
    /// The uplink, shared with the next-hop thread.
    pub uplink: Arc<UplinkCell>,
}

/// What to undo when a later step fails, newest last.
enum Undo {
    /// Close the sockets of a port opened on these workers.
    Sockets(IoPort, Vec<usize>),
    /// Remove the XSKMAP slot (port, queue).
    Xsk(u32, u32),
    /// Detach XDP from a new port (number, name).
    Attach(u16, String),
    /// Put the workers' bridge domains back.
    Bds(Vec<LiveUpdate>),
    /// Put the uplink's group memberships back (uplink ifindex, groups).
    Memberships(u32, Vec<IpAddr>),
}

/// The encapsulation settings of `m` with `uplink` (none: a zero source MAC
/// and 1500 bytes, as at start).
fn encap_of(m: &Model, uplink: Option<&Uplink>) -> EncapConfig {
    let (mac, mtu) = uplink.map_or((MacAddr::ZERO, 1500), |u| (u.mac, u.mtu as usize));
    m.encap_config(mac, mtu)
}

/// The change being applied.
struct Next<'a> {
    /// The new model.
    model: &'a Model,
    /// What differs from the running one.
    diff: &'a Diff,
    /// Interface index of every added port, in `diff.ports_added` order.
    ifindexes: &'a [u32],
    /// The uplink after the change.
    uplink: Option<Uplink>,
    /// The classifier's entries after the change.
    target: ClassifierEntries,
}

/// The multicast groups among every flood list of `m`, sorted.
fn flood_groups(m: &Model) -> Vec<IpAddr> {
    m.flood_vteps()
        .into_iter()
        .filter(IpAddr::is_multicast)
        .collect()
}

impl Live {
    /// Applies `config`: afterwards the running config is exactly `config`,
    /// or (error) still the old one.
    pub fn apply(&mut self, config: Config) -> Result<(), String> {
        config.validate().map_err(|e| e.to_string())?;
        let old = self.model.clone();
        let new = old.evolve(&config).map_err(|e| e.to_string())?;
        let d = Diff::between(&old, &new);
        if let Some(name) = d.ports_retyped.first() {
            return Err(format!(
                "port {name:?}: a port's role cannot change live (delete the port, then add it)"
            ));
        }
        let mut ifindexes = Vec::with_capacity(d.ports_added.len());
        let mut uplink = self.uplink.get();
        if old.uplink().is_some() && new.uplink().is_none() {
            uplink = None;
        }
        for p in &d.ports_added {
            let ifindex =
                xvs_ebpf::ifindex_of(&p.name).map_err(|e| format!("port {:?}: {e}", p.name))?;
            ifindexes.push(ifindex);
            if p.role == Role::Uplink {
                let err = |e: netdev::NetdevError| format!("uplink {:?}: {e}", p.name);
                uplink = Some(Uplink {
                    ifindex,
                    port: p.id.0,
                    mac: netdev::mac(&p.name).map_err(err)?,
                    mtu: netdev::mtu(&p.name).map_err(err)?,
                });
            }
        }

        let added: BTreeMap<u16, u32> = d
            .ports_added
            .iter()
            .map(|p| p.id.0)
            .zip(ifindexes.iter().copied())
            .collect();
        let target = ClassifierEntries::of(&new, |p| {
            added
                .get(&p.id.0)
                .or_else(|| self.ports.get(&p.id.0).map(|i| &i.ifindex))
                .copied()
        });
        let mut undo = Vec::new();
        let next = Next {
            model: &new,
            diff: &d,
            ifindexes: &ifindexes,
            uplink,
            target,
        };
        let before = self.sync.entries().clone();
        if let Err(e) = self.commit(&old, &next, &mut undo) {
            self.rollback(undo, &before);
            return Err(e);
        }
        self.finish(&next);
        let new = Arc::new(new);
        *self.shared.write().unwrap_or_else(|p| p.into_inner()) = new.clone();
        self.model = new;
        if !d.is_empty() {
            tracing::info!(
                ports_added = d.ports_added.len(),
                ports_removed = d.ports_removed.len(),
                bds_changed = d.bds_upsert.len(),
                bds_removed = d.bds_removed.len(),
                "configuration changed live"
            );
        }
        Ok(())
    }

    /// Steps 2–4 (see the module documentation), recording how to undo.
    fn commit(&mut self, old: &Model, next: &Next<'_>, undo: &mut Vec<Undo>) -> Result<(), String> {
        let (new, d) = (next.model, next.diff);
        for (p, &ifindex) in d.ports_added.iter().zip(next.ifindexes) {
            self.add_port(p, ifindex, undo)?;
        }
        // Only now are the new interfaces' frames switched.
        self.sync
            .upsert(&self.classifier, &next.target, &[Part::Ports])
            .map_err(|e| e.to_string())?;

        // [vtep]: new local addresses, multicast flood groups (decapsulated
        // like our own addresses) and the UDP port before the encap settings
        // that use them and before any BD floods to a group.
        self.sync
            .upsert(
                &self.classifier,
                &next.target,
                &[Part::Local, Part::UdpPort],
            )
            .map_err(|e| e.to_string())?;
        let (old_encap, new_encap) = (
            encap_of(old, self.uplink.get().as_ref()),
            encap_of(new, next.uplink.as_ref()),
        );
        if old_encap != new_encap {
            undo.push(Undo::Bds(vec![LiveUpdate::Encap(old_encap)]));
            self.tell_workers(std::iter::once(LiveUpdate::Encap(new_encap)))?;
        }

        // Multicast flood groups: joined on the uplink (before any BD floods
        // to them).
        let (old_groups, new_groups) = (flood_groups(old), flood_groups(new));
        let old_up = self.uplink.get().map(|u| u.ifindex);
        let new_up = next.uplink.map(|u| u.ifindex);
        if old_groups != new_groups || old_up != new_up {
            undo.push(Undo::Memberships(
                old_up.unwrap_or(0),
                if old_up.is_some() {
                    old_groups
                } else {
                    Vec::new()
                },
            ));
            // No uplink: leave every group (interface 0 holds none).
            let (ifindex, groups) = match new_up {
                Some(i) => (i, new_groups),
                None => (0, Vec::new()),
            };
            UPLINK_GROUPS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .sync(ifindex, &groups)
                .map_err(|e| format!("joining the flood groups on the uplink: {e}"))?;
        }

        if !d.bds_upsert.is_empty() {
            let back: Vec<LiveUpdate> = d
                .bds_upsert
                .iter()
                .map(|b| match old.bd(b.id) {
                    Some(o) => LiveUpdate::Upsert(Model::engine_bd(o)),
                    None => LiveUpdate::Remove(b.id),
                })
                .collect();
            undo.push(Undo::Bds(back));
            self.tell_workers(d.bds_upsert.iter().cloned().map(LiveUpdate::Upsert))?;
        }

        self.sync
            .upsert(
                &self.classifier,
                &next.target,
                &[Part::Vnis, Part::Attachments],
            )
            .map_err(|e| e.to_string())?;
        self.sync
            .remove(
                &self.classifier,
                &next.target,
                &[Part::Vnis, Part::Attachments],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// A new port (or a deleted one whose interface is back): every
    /// worker opens its socket → XSKMAP → XDP attach → under the
    /// watchdog's eye → the workers get its MTU. Its classifier entry is
    /// the caller's (through [`ClassifierSync`]).
    fn add_port(&mut self, p: &Port, ifindex: u32, undo: &mut Vec<Undo>) -> Result<(), String> {
        let io = IoPort::new(p.id.0);
        let mut opened = Vec::new();
        let mut result = Ok(());
        for (q, w) in self.workers.iter().enumerate() {
            match Self::open_socket(q, w, &p.name, io) {
                Ok(fd) => {
                    opened.push(q);
                    if let Err(e) = self.classifier.set_xsk(u32::from(p.id.0), q as u32, {
                        use std::os::fd::AsFd as _;
                        fd.as_fd()
                    }) {
                        result = Err(format!("port {:?} queue {q}: XSKMAP: {e}", p.name));
                        break;
                    }
                    undo.push(Undo::Xsk(u32::from(p.id.0), q as u32));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Sockets first in the undo log: they are closed after their
        // XSKMAP slots are cleared.
        let at = undo
            .iter()
            .position(|u| matches!(u, Undo::Xsk(port, _) if *port == u32::from(p.id.0)))
            .unwrap_or(undo.len());
        undo.insert(at, Undo::Sockets(io, opened));
        result?;
        let attachment = self
            .classifier
            .attach(&p.name, self.xdp_mode)
            .map_err(|e| format!("port {:?}: attaching XDP: {e}", p.name))?;
        let xdp_mode = attachment.mode().to_string();
        tracing::info!(port = %p.name, ifindex, mode = %xdp_mode, "XDP attached (live)");
        let info = PortInfo {
            ifindex,
            xdp_mode,
            health: Arc::default(),
        };
        self.watched
            .add(Watched::new(&p.name, attachment, info.health.clone()));
        self.ports.insert(p.id.0, info);
        undo.push(Undo::Attach(p.id.0, p.name.clone()));
        // Frames leaving it must fit its MTU (`drop_mtu`).
        let mtu = netdev::mtu(&p.name).ok();
        self.tell_workers(std::iter::once(LiveUpdate::PortMtu(p.id, mtu)))
    }

    /// Undoes what `commit` did: first the classifier's entries go back to
    /// `before` (no frame is steered to what is undone next), then the
    /// other steps, newest first. Errors are logged: the state before the
    /// change is what every step restores.
    fn rollback(&mut self, undo: Vec<Undo>, before: &ClassifierEntries) {
        if let Err(e) = self.sync.sync(&self.classifier, before) {
            tracing::warn!(error = %e, "rollback: classifier entries");
        }
        for u in undo.into_iter().rev() {
            let r = match u {
                Undo::Sockets(port, queues) => {
                    for q in queues {
                        if let Err(e) = self.close_socket(q, port) {
                            tracing::warn!(queue = q, error = %e, "rollback: closing a socket");
                        }
                    }
                    Ok(())
                }
                Undo::Xsk(port, q) => self.classifier.remove_xsk(port, q),
                Undo::Attach(port, name) => {
                    self.ports.remove(&port);
                    drop(self.watched.remove(&name));
                    Ok(())
                }
                Undo::Bds(updates) => {
                    if let Err(e) = self.tell_workers(updates.into_iter()) {
                        tracing::warn!(error = %e, "rollback: bridge domains");
                    }
                    Ok(())
                }
                Undo::Memberships(ifindex, groups) => {
                    if let Err(e) = UPLINK_GROUPS
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .sync(ifindex, &groups)
                    {
                        tracing::warn!(error = %e, "rollback: flood group memberships");
                    }
                    Ok(())
                }
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "rollback step failed");
            }
        }
    }

    /// Steps 5–7: removals and the FDB. Nothing here refuses the change.
    fn finish(&mut self, next: &Next<'_>) {
        let (new, d) = (next.model, next.diff);
        // Local addresses and flood groups no longer configured.
        if let Err(e) = self
            .sync
            .remove(&self.classifier, &next.target, &[Part::Local])
        {
            tracing::warn!(error = %e, "removing local VTEP addresses");
        }
        if self.uplink.get().map(|u| (u.ifindex, u.port))
            != next.uplink.map(|u| (u.ifindex, u.port))
        {
            // The next-hop thread re-resolves every VTEP through it.
            self.uplink.set(next.uplink);
        }
        if !d.bds_removed.is_empty() {
            if let Err(e) = self.tell_workers(d.bds_removed.iter().copied().map(LiveUpdate::Remove))
            {
                tracing::warn!(error = %e, "removing bridge domains from workers");
            }
        }
        for &(bd, max) in &d.max_macs {
            if let Err(e) = self.fdb.set_max_macs(bd, max) {
                tracing::warn!(bd = bd.0, error = %e, "setting the MAC cap");
            }
        }
        for &bd in &d.fdb_flush {
            let removed = d.bds_removed.contains(&bd);
            if let Err(e) = self.fdb.flush(Some(bd)) {
                tracing::warn!(bd = bd.0, error = %e, "flushing the FDB");
            }
            let Ok(entries) = self.fdb.show(Some(bd)) else {
                continue;
            };
            for e in entries.iter().filter(|e| e.kind == EntryKind::Static) {
                let stale = removed
                    || match e.loc {
                        Location::Local(a) => d.attachments_removed.contains(&(bd, a)),
                        Location::Vtep(_) => new.bd(bd).is_none_or(|b| b.vni.is_none()),
                    };
                if stale {
                    let _ = self.fdb.static_del(FdbKey::new(bd, e.mac));
                }
            }
        }
        if !d.ports_removed.is_empty() {
            let queues = self.workers.len() as u32;
            if let Err(e) = self
                .sync
                .remove(&self.classifier, &next.target, &[Part::Ports])
            {
                tracing::warn!(error = %e, "removing port entries");
            }
            for p in &d.ports_removed {
                self.ports.remove(&p.id.0);
                for q in 0..queues {
                    let _ = self.classifier.remove_xsk(u32::from(p.id.0), q);
                }
                if self.watched.remove(&p.name).is_some() {
                    tracing::info!(port = %p.name, "XDP detached (live)");
                }
            }
            std::thread::sleep(CLOSE_GRACE);
            for p in &d.ports_removed {
                for q in 0..self.workers.len() {
                    if let Err(e) = self.close_socket(q, IoPort::new(p.id.0)) {
                        tracing::warn!(port = %p.name, queue = q, error = %e, "closing a socket");
                    }
                }
            }
        }
    }

    /// The interface of configured port `name` was deleted and exists
    /// again (the watchdog saw it): the port is taken back as `port add`
    /// would add it ([`Live::add_port`]: sockets on every worker, XSKMAP,
    /// XDP, MTU), its classifier entry moves to the new ifindex, and a
    /// re-created uplink also gives the workers its MAC and MTU and joins
    /// the flood groups again. On error the port stays `gone` as it was.
    pub fn reopen(&mut self, name: &str) -> Result<(), String> {
        let model = self.model.clone();
        let p = model
            .port_by_name(name)
            .ok_or_else(|| format!("port {name:?} is no longer configured"))?
            .clone();
        let ifindex = xvs_ebpf::ifindex_of(name).map_err(|e| format!("port {name:?}: {e}"))?;
        let uplink = match p.role {
            Role::Uplink => {
                let err = |e: netdev::NetdevError| format!("uplink {name:?}: {e}");
                Some(Uplink {
                    ifindex,
                    port: p.id.0,
                    mac: netdev::mac(name).map_err(err)?,
                    mtu: netdev::mtu(name).map_err(err)?,
                })
            }
            Role::Access => None,
        };
        // The gone port: its slots cleared and its sockets closed (the
        // watchdog's hook did; a socket already closed answers so).
        let io = IoPort::new(p.id.0);
        for q in 0..self.workers.len() {
            let _ = self.classifier.remove_xsk(u32::from(p.id.0), q as u32);
            if let Err(e) = self.close_socket(q, io) {
                return Err(format!(
                    "port {name:?} queue {q}: closing the old socket: {e}"
                ));
            }
        }
        let old_watched = self.watched.remove(name);
        let old_info = self.ports.remove(&p.id.0);
        let before = self.sync.entries().clone();
        let mut undo = Vec::new();
        let mut r = self.add_port(&p, ifindex, &mut undo);
        if r.is_ok() {
            let target =
                ClassifierEntries::of(&model, |q| self.ports.get(&q.id.0).map(|i| i.ifindex));
            r = self
                .sync
                .sync(&self.classifier, &target)
                .map_err(|e| e.to_string());
        }
        if let Err(e) = r {
            self.rollback(undo, &before);
            if let Some(w) = old_watched {
                self.watched.add(w);
            }
            if let Some(info) = old_info {
                self.ports.insert(p.id.0, info);
            }
            return Err(e);
        }
        if let Some(u) = uplink {
            let encap = encap_of(&model, Some(&u));
            if let Err(e) = self.tell_workers(std::iter::once(LiveUpdate::Encap(encap))) {
                tracing::warn!(error = %e, "re-created uplink: encapsulation settings");
            }
            if let Err(e) = UPLINK_GROUPS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .sync(u.ifindex, &flood_groups(&model))
            {
                tracing::warn!(error = %e, "re-created uplink: joining the flood groups");
            }
            // The next-hop thread resolves every VTEP through it again.
            self.uplink.set(Some(u));
        }
        tracing::info!(port = %name, ifindex, "interface re-created: port taken back");
        Ok(())
    }

    /// The watchdog saw port `name`'s MTU change to `mtu`: the workers
    /// check local egress against it, and for the uplink, encapsulation
    /// too (its MTU is part of the encapsulation settings).
    pub fn port_mtu_changed(&mut self, name: &str, mtu: u32) {
        let Some(p) = self.model.port_by_name(name) else {
            return;
        };
        let mut updates = vec![LiveUpdate::PortMtu(p.id, Some(mtu))];
        if let Some(mut u) = self.uplink.get().filter(|u| u.port == p.id.0) {
            u.mtu = mtu;
            updates.push(LiveUpdate::Encap(encap_of(&self.model, Some(&u))));
            self.uplink.set_mtu(mtu);
        }
        match self.tell_workers(updates.into_iter()) {
            Ok(()) => {
                tracing::info!(port = %name, mtu, "MTU changed: frames over it are dropped (drop_mtu)")
            }
            Err(e) => tracing::warn!(port = %name, mtu, error = %e, "MTU change not applied"),
        }
    }

    /// Has worker `q` open its socket on `name` at index `io`; a queue still
    /// busy from a socket closed a moment ago (`port del` then `port add`)
    /// is tried again for up to [`BUSY_RETRY`], from this thread (the worker
    /// never waits).
    fn open_socket(q: usize, w: &WorkerLink, name: &str, io: IoPort) -> Result<OwnedFd, String> {
        let end = Instant::now() + BUSY_RETRY;
        loop {
            let (tx, rx) = bounded(1);
            let cmd = IoCommand::Open {
                name: name.to_owned(),
                port: io,
                reply: tx,
            };
            w.io.send(cmd)
                .map_err(|_| format!("worker {q} is not running"))?;
            match rx.recv_timeout(WORKER_ANSWER) {
                Err(_) => return Err(format!("worker {q} did not answer")),
                Ok(Ok(fd)) => return Ok(fd),
                Ok(Err(e)) if e.busy && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(Err(e)) => return Err(format!("port {name:?} queue {q}: {}", e.message)),
            }
        }
    }

    /// Sends `updates` then a sync to every worker and waits for them all.
    fn tell_workers(
        &self,
        updates: impl Iterator<Item = LiveUpdate> + Clone,
    ) -> Result<(), String> {
        let mut waits = Vec::with_capacity(self.workers.len());
        for (q, w) in self.workers.iter().enumerate() {
            for u in updates.clone() {
                w.bds
                    .send(u)
                    .map_err(|_| format!("worker {q} is not running"))?;
            }
            let (tx, rx) = bounded(1);
            w.bds
                .send(LiveUpdate::Sync(tx))
                .map_err(|_| format!("worker {q} is not running"))?;
            waits.push((q, rx));
        }
        for (q, rx) in waits {
            rx.recv_timeout(WORKER_ANSWER)
                .map_err(|_| format!("worker {q} did not apply the bridge-domain change"))?;
        }
        Ok(())
    }

    /// Has worker `q` close its socket at `port`; one that is not open
    /// (the watchdog closed a deleted interface's) is fine.
    fn close_socket(&self, q: usize, port: IoPort) -> Result<(), String> {
        let w = self
            .workers
            .get(q)
            .ok_or_else(|| format!("no worker {q}"))?;
        let (tx, rx) = bounded(1);
        w.io.send(IoCommand::Close { port, reply: tx })
            .map_err(|_| format!("worker {q} is not running"))?;
        rx.recv_timeout(WORKER_ANSWER)
            .map_err(|_| format!("worker {q} did not answer"))?
            .map(|_| ())
    }
}

/// The watchdog's [`ChangeHook`]: a re-created interface is taken back
/// ([`Live::reopen`]), an MTU change handed to the workers
/// ([`Live::port_mtu_changed`]). Holds the live state weakly: once xvsd is
/// shutting down, events are ignored.
pub fn following(live: Weak<Mutex<Live>>) -> ChangeHook {
    Box::new(move |event| {
        let Some(live) = live.upgrade() else { return };
        let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            PortEvent::Back(name) => {
                tracing::info!(port = %name, "interface of a gone port exists again: taking it back");
                if let Err(e) = live.reopen(&name) {
                    tracing::error!(port = %name, error = %e, "cannot take the re-created interface back; retrying");
                }
            }
            PortEvent::Mtu(name, mtu) => live.port_mtu_changed(&name, mtu),
        }
    })
}
