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
//! Steps 2–4 can fail (an interface that refuses XDP or AF_XDP, a full map,
//! a worker that does not answer); everything done so far is then undone in
//! reverse order and the running config stays as it was. Steps 5–7 do not
//! fail (their errors are logged). The model every reader sees is swapped
//! last.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use xvs_control::config::{Config, Role};
use xvs_dataplane::daemon::mcast::UPLINK_GROUPS;
use xvs_dataplane::daemon::{netdev, Diff, LiveUpdate, Model};
use xvs_dataplane::engine::EncapConfig;
use xvs_dataplane::fdb::{EntryKind, FdbControl, FdbKey};
use xvs_dataplane::types::{BdId, Location, MacAddr};
use xvs_dataplane::xsk::PortId as IoPort;
use xvs_ebpf::{Classifier, PortRole, XdpMode};

use crate::nexthop::UplinkCell;
use crate::setup::{PortInfo, Uplink};
use crate::watch::{Watched, Watchlist};
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
    /// Remove a new port's classifier entry.
    Port(u32),
    /// Put the workers' bridge domains back.
    Bds(Vec<LiveUpdate>),
    /// Write back (or delete with `None`) a VNI entry.
    Vni(u32, Option<BdId>),
    /// Write back (or delete) an attachment entry.
    Attachment(u32, u16, Option<BdId>),
    /// Forget a multicast flood group added to the local addresses.
    LocalGroup(IpAddr),
    /// Put the uplink's group memberships back (uplink ifindex, groups).
    Memberships(u32, Vec<IpAddr>),
    /// Forget a local VTEP address added live.
    LocalVtep(IpAddr),
    /// Put the VXLAN UDP port back.
    UdpPort(u16),
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
}

/// The multicast groups among every flood list of `m`, sorted.
fn flood_groups(m: &Model) -> Vec<IpAddr> {
    m.flood_vteps()
        .into_iter()
        .filter(IpAddr::is_multicast)
        .collect()
}

fn role(r: Role) -> PortRole {
    match r {
        Role::Uplink => PortRole::Uplink,
        Role::Access => PortRole::Access,
    }
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

        let mut undo = Vec::new();
        let next = Next {
            model: &new,
            diff: &d,
            ifindexes: &ifindexes,
            uplink,
        };
        if let Err(e) = self.commit(&old, &next, &mut undo) {
            self.rollback(undo);
            return Err(e);
        }
        self.finish(&old, &next);
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
            let io = IoPort::new(p.id.0);
            let mut opened = Vec::new();
            let mut result = Ok(());
            for (q, w) in self.workers.iter().enumerate() {
                let fd = Self::open_socket(q, w, &p.name, io);
                match fd {
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
            self.classifier
                .set_port(ifindex, role(p.role), u32::from(p.id.0))
                .map_err(|e| format!("port {:?}: programming the classifier: {e}", p.name))?;
            undo.push(Undo::Port(ifindex));
        }

        // [vtep]: new local addresses and the UDP port before the encap
        // settings that use them.
        let (ov, nv) = (&old.config().vtep, &new.config().vtep);
        for ip in nv.local_ips.iter().filter(|ip| !ov.local_ips.contains(ip)) {
            self.classifier
                .add_local_vtep(*ip)
                .map_err(|e| format!("adding local VTEP address {ip}: {e}"))?;
            undo.push(Undo::LocalVtep(*ip));
        }
        if nv.udp_port != ov.udp_port {
            self.classifier
                .set_vxlan_port(nv.udp_port)
                .map_err(|e| format!("setting the VXLAN UDP port {}: {e}", nv.udp_port))?;
            undo.push(Undo::UdpPort(ov.udp_port));
        }
        let (old_encap, new_encap) = (
            encap_of(old, self.uplink.get().as_ref()),
            encap_of(new, next.uplink.as_ref()),
        );
        if old_encap != new_encap {
            undo.push(Undo::Bds(vec![LiveUpdate::Encap(old_encap)]));
            self.tell_workers(std::iter::once(LiveUpdate::Encap(new_encap)))?;
        }

        // Multicast flood groups: decapsulated like our own addresses, and
        // joined on the uplink (before any BD floods to them).
        let (old_groups, new_groups) = (flood_groups(old), flood_groups(new));
        let old_up = self.uplink.get().map(|u| u.ifindex);
        let new_up = next.uplink.map(|u| u.ifindex);
        if old_groups != new_groups || old_up != new_up {
            for g in new_groups.iter().filter(|g| !old_groups.contains(g)) {
                self.classifier
                    .add_local_vtep(*g)
                    .map_err(|e| format!("adding flood group {g}: {e}"))?;
                undo.push(Undo::LocalGroup(*g));
            }
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

        let old_vni: BTreeMap<u32, BdId> = old
            .bridge_domains()
            .iter()
            .filter_map(|b| b.vni.map(|v| (v.get(), b.id)))
            .collect();
        for &(vni, bd) in &d.vni_set {
            self.classifier
                .set_vni(vni, u32::from(bd.0))
                .map_err(|e| format!("mapping VNI {vni}: {e}"))?;
            undo.push(Undo::Vni(vni, old_vni.get(&vni).copied()));
        }
        for &vni in &d.vni_del {
            self.classifier
                .remove_vni(vni)
                .map_err(|e| format!("unmapping VNI {vni}: {e}"))?;
            undo.push(Undo::Vni(vni, old_vni.get(&vni).copied()));
        }
        let old_attach = |port: u16, vid: u16| {
            old.bridge_domains().iter().find_map(|b| {
                b.attachments
                    .iter()
                    .any(|a| a.port.0 == port && a.vlan.map_or(0, |v| v.id()) == vid)
                    .then_some(b.id)
            })
        };
        for &(a, bd) in &d.attach_set {
            let vid = a.vlan.map_or(0, |v| v.id());
            self.classifier
                .set_attachment(u32::from(a.port.0), vid, u32::from(bd.0))
                .map_err(|e| format!("attachment {a}: {e}"))?;
            undo.push(Undo::Attachment(
                u32::from(a.port.0),
                vid,
                old_attach(a.port.0, vid),
            ));
        }
        for &a in &d.attach_del {
            let vid = a.vlan.map_or(0, |v| v.id());
            self.classifier
                .remove_attachment(u32::from(a.port.0), vid)
                .map_err(|e| format!("detaching {a}: {e}"))?;
            undo.push(Undo::Attachment(
                u32::from(a.port.0),
                vid,
                old_attach(a.port.0, vid),
            ));
        }
        Ok(())
    }

    /// Undoes what `commit` did, newest first. Errors are logged: the
    /// state before the change is what every step restores.
    fn rollback(&mut self, undo: Vec<Undo>) {
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
                Undo::Port(ifindex) => self.classifier.remove_port(ifindex),
                Undo::Bds(updates) => {
                    if let Err(e) = self.tell_workers(updates.into_iter()) {
                        tracing::warn!(error = %e, "rollback: bridge domains");
                    }
                    Ok(())
                }
                Undo::Vni(vni, Some(bd)) => self.classifier.set_vni(vni, u32::from(bd.0)),
                Undo::Vni(vni, None) => self.classifier.remove_vni(vni),
                Undo::Attachment(port, vid, Some(bd)) => {
                    self.classifier.set_attachment(port, vid, u32::from(bd.0))
                }
                Undo::Attachment(port, vid, None) => self.classifier.remove_attachment(port, vid),
                Undo::LocalGroup(g) | Undo::LocalVtep(g) => self.classifier.remove_local_vtep(g),
                Undo::UdpPort(port) => self.classifier.set_vxlan_port(port),
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
    fn finish(&mut self, old: &Model, next: &Next<'_>) {
        let (new, d) = (next.model, next.diff);
        let nv = &new.config().vtep;
        for ip in old
            .config()
            .vtep
            .local_ips
            .iter()
            .filter(|ip| !nv.local_ips.contains(ip))
        {
            if let Err(e) = self.classifier.remove_local_vtep(*ip) {
                tracing::warn!(%ip, error = %e, "removing a local VTEP address");
            }
        }
        if self.uplink.get().map(|u| (u.ifindex, u.port))
            != next.uplink.map(|u| (u.ifindex, u.port))
        {
            // The next-hop thread re-resolves every VTEP through it.
            self.uplink.set(next.uplink);
        }
        let new_groups = flood_groups(new);
        for g in flood_groups(old)
            .into_iter()
            .filter(|g| !new_groups.contains(g))
        {
            if let Err(e) = self.classifier.remove_local_vtep(g) {
                tracing::warn!(group = %g, error = %e, "removing a flood group");
            }
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
            for p in &d.ports_removed {
                if let Some(info) = self.ports.remove(&p.id.0) {
                    let _ = self.classifier.remove_port(info.ifindex);
                }
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
