//! The per-worker pipeline: one received frame through learn → lookup →
//! decide → rewrite, handing the results to a [`TxFrames`] seam.
//!
//! An [`Engine`] belongs to one worker thread. It holds that worker's FDB
//! replica, its view of the bridge domains, the encapsulation settings and
//! the next-hop MACs of remote VTEPs, and counts everything it drops in
//! plain [`Counters`]. It never blocks, never locks and, once its buffers
//! have grown, never allocates per frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bridge::{BridgeDomain, BridgeDomains};
use crate::decide::{
    decide, decide_to_local, decide_to_vtep, Decision, DropReason, Egress, FrameMeta, Ingress,
};
use crate::fdb::{FdbReplica, LearnOutcome, Place, Tick};
use crate::rewrite::{push_vlan, EncapParams, EncapTemplate, RewriteError};
use crate::storm::StormControl;
use crate::types::{BdId, MacAddr, PortId, Vni};
use crate::wire::{ethernet, vxlan};

use crate::vtep_map::VtepMap;

/// Settings of the outer headers this node writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncapConfig {
    /// The uplink's MAC (outer source).
    pub src_mac: MacAddr,
    /// Our IPv4 VTEP address, for IPv4 remote VTEPs.
    pub local_v4: Option<Ipv4Addr>,
    /// Our IPv6 VTEP address, for IPv6 remote VTEPs.
    pub local_v6: Option<Ipv6Addr>,
    /// UDP destination port (default 4789).
    pub dst_port: u16,
    /// TTL / hop limit (default 64).
    pub ttl: u8,
    /// IPv4 don't-fragment (default set).
    pub dont_frag: bool,
    /// The uplink's IP MTU (default 1500).
    pub mtu: usize,
}

impl Default for EncapConfig {
    fn default() -> Self {
        EncapConfig {
            src_mac: MacAddr::ZERO,
            local_v4: None,
            local_v6: None,
            dst_port: vxlan::DEFAULT_PORT,
            ttl: 64,
            dont_frag: true,
            mtu: 1500,
        }
    }
}

/// The transmit side as the engine sees it: where rewritten frames go.
///
/// A worker implements it over its AF_XDP TX rings and free-frame stack;
/// [`MemTx`] implements it in memory for tests and benches.
pub trait TxFrames {
    /// A free frame buffer for one extra copy of a flooded frame, as large
    /// as the received one; `None` when out of frames (that copy is dropped
    /// and counted).
    fn spare(&mut self) -> Option<&mut [u8]>;
    /// Sends the buffer last returned by [`spare`](Self::spare); the frame
    /// is at `start .. start + len`.
    fn send_spare(&mut self, egress: &Egress, start: usize, len: usize);
    /// Gives back the buffer last returned by [`spare`](Self::spare), unsent.
    fn discard_spare(&mut self);
    /// Sends the received buffer itself; the frame is at `start .. start +
    /// len`.
    fn send_in_place(&mut self, egress: &Egress, start: usize, len: usize);
}

/// What became of one received frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Verdict {
    /// The received buffer was handed to [`TxFrames::send_in_place`]; when
    /// false, the caller still owns it (recycle it).
    pub consumed: bool,
    /// Frames sent, copies included.
    pub sent: u32,
}

/// Per-worker counters. Drops are per reason; learning outcomes are not
/// drops (the frame is still forwarded).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// Frames processed.
    pub rx: u64,
    /// Frames sent (each flood copy counts).
    pub tx: u64,
    /// Frames forwarded as known unicast.
    pub unicast: u64,
    /// Frames flooded.
    pub flooded: u64,
    /// Dropped: `headroom + len` outside the buffer.
    pub drop_bad_range: u64,
    /// Dropped: shorter than an Ethernet header.
    pub drop_runt: u64,
    /// Dropped: multicast, broadcast or all-zero source MAC.
    pub drop_bad_src_mac: u64,
    /// Dropped: bridge domain not configured.
    pub drop_unknown_bd: u64,
    /// Dropped: destination is the ingress attachment (hairpin off).
    pub drop_hairpin: u64,
    /// Dropped: from a VTEP to a VTEP (split horizon).
    pub drop_split_horizon: u64,
    /// Dropped: to a VTEP in a BD without VNI.
    pub drop_no_vni: u64,
    /// Dropped: flood with no destination.
    pub drop_no_destination: u64,
    /// Dropped: flood over the bridge domain's storm limit (`storm_pps`).
    pub drop_storm: u64,
    /// Dropped: VXLAN from a VTEP the bridge domain does not accept (not
    /// in its flood list); not learned.
    pub drop_unknown_vtep: u64,
    /// Egress copies dropped: no next-hop MAC for the VTEP yet.
    pub drop_no_next_hop: u64,
    /// Egress copies dropped: no local VTEP address of the VTEP's family.
    pub drop_no_local_addr: u64,
    /// Egress copies dropped: over the uplink MTU once encapsulated, or
    /// over a local egress port's MTU (see [`Engine::set_port_mtu`]).
    pub drop_mtu: u64,
    /// Egress copies dropped: not enough headroom.
    pub drop_no_headroom: u64,
    /// Flood copies dropped: no spare frame.
    pub drop_no_frame: u64,
    /// New MACs learned (locally, reported to the owner).
    pub learned: u64,
    /// MAC moves (locally, reported to the owner).
    pub moved: u64,
    /// Refreshes sent to the owner.
    pub refreshed: u64,
    /// New MACs not learned: BD at its cap.
    pub learn_cap_reached: u64,
    /// Moves refused: static entry.
    pub learn_static: u64,
    /// Moves refused: flap damping hold.
    pub learn_held: u64,
    /// Learns undone: owner channel full.
    pub learn_queue_full: u64,
}

impl Counters {
    /// Counts one egress copy dropped for `why`.
    fn count_egress_drop(&mut self, why: EgressDrop) {
        match why {
            EgressDrop::NoNextHop => self.drop_no_next_hop += 1,
            EgressDrop::NoLocalAddr => self.drop_no_local_addr += 1,
            EgressDrop::Mtu => self.drop_mtu += 1,
            EgressDrop::NoHeadroom => self.drop_no_headroom += 1,
            EgressDrop::BadRange => self.drop_bad_range += 1,
        }
    }

    /// Every drop, all reasons together.
    pub fn drops(&self) -> u64 {
        self.drop_bad_range
            + self.drop_runt
            + self.drop_bad_src_mac
            + self.drop_unknown_bd
            + self.drop_hairpin
            + self.drop_split_horizon
            + self.drop_no_vni
            + self.drop_no_destination
            + self.drop_storm
            + self.drop_unknown_vtep
            + self.drop_no_next_hop
            + self.drop_no_local_addr
            + self.drop_mtu
            + self.drop_no_headroom
            + self.drop_no_frame
    }
}

/// Why the engine refuses a frame before deciding anything about it (each
/// reason is one drop counter).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameDrop {
    /// `headroom + len` outside the buffer (`drop_bad_range`).
    BadRange,
    /// Shorter than an Ethernet header (`drop_runt`).
    Runt,
    /// Multicast, broadcast or all-zero source MAC (`drop_bad_src_mac`).
    BadSrcMac,
    /// Bridge domain not configured (`drop_unknown_bd`).
    UnknownBd,
}

impl FrameDrop {
    /// The counter it moves.
    pub const fn counter(self) -> &'static str {
        match self {
            FrameDrop::BadRange => "drop_bad_range",
            FrameDrop::Runt => "drop_runt",
            FrameDrop::BadSrcMac => "drop_bad_src_mac",
            FrameDrop::UnknownBd => "drop_unknown_bd",
        }
    }

    /// In words.
    pub const fn what(self) -> &'static str {
        match self {
            FrameDrop::BadRange => "frame range outside its buffer",
            FrameDrop::Runt => "runt frame",
            FrameDrop::BadSrcMac => "multicast or zero source MAC",
            FrameDrop::UnknownBd => "unknown bridge domain",
        }
    }
}

/// Why one egress copy of a frame is dropped while rewriting it (each reason
/// is one drop counter).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EgressDrop {
    /// No next-hop MAC for the remote VTEP yet (`drop_no_next_hop`).
    NoNextHop,
    /// No local VTEP address of the remote VTEP's family
    /// (`drop_no_local_addr`).
    NoLocalAddr,
    /// Over the uplink MTU once encapsulated, or over the egress port's
    /// MTU (`drop_mtu`).
    Mtu,
    /// Not enough headroom for the new headers (`drop_no_headroom`).
    NoHeadroom,
    /// The frame range is outside its buffer (`drop_bad_range`).
    BadRange,
}

impl From<RewriteError> for EgressDrop {
    fn from(e: RewriteError) -> Self {
        match e {
            RewriteError::TooBig { .. } => EgressDrop::Mtu,
            RewriteError::NoHeadroom { .. } => EgressDrop::NoHeadroom,
            // Checked before rewriting; kept for completeness.
            RewriteError::OutOfBounds { .. }
            | RewriteError::Runt(_)
            | RewriteError::FamilyMismatch => EgressDrop::BadRange,
        }
    }
}

impl EgressDrop {
    /// The counter it moves.
    pub const fn counter(self) -> &'static str {
        match self {
            EgressDrop::NoNextHop => "drop_no_next_hop",
            EgressDrop::NoLocalAddr => "drop_no_local_addr",
            EgressDrop::Mtu => "drop_mtu",
            EgressDrop::NoHeadroom => "drop_no_headroom",
            EgressDrop::BadRange => "drop_bad_range",
        }
    }

    /// In words.
    pub const fn what(self) -> &'static str {
        match self {
            EgressDrop::NoNextHop => "no next-hop MAC for the remote VTEP yet",
            EgressDrop::NoLocalAddr => "no local VTEP address of the remote VTEP's family",
            EgressDrop::Mtu => "larger than the egress MTU (the uplink's once encapsulated)",
            EgressDrop::NoHeadroom => "not enough headroom for the new headers",
            EgressDrop::BadRange => "frame range outside its buffer",
        }
    }
}

/// A frame the engine accepts: its bridge domain and MAC addresses.
#[derive(Clone, Copy, Debug)]
pub struct Admitted<'a> {
    /// Its bridge domain.
    pub bd: &'a BridgeDomain,
    /// Source MAC (learnable).
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
}

/// The engine's first step on a frame at `buf[headroom .. headroom + len]`:
/// the checks that refuse it before learning or deciding. Shared by
/// [`Engine::process`] and `xvsctl trace` ([`crate::trace`]).
#[inline(always)]
pub fn admit<'a>(
    bds: &'a BridgeDomains,
    meta: &FrameMeta,
    buf: &[u8],
    headroom: usize,
    len: usize,
) -> Result<Admitted<'a>, FrameDrop> {
    let frame = headroom
        .checked_add(len)
        .and_then(|end| buf.get(headroom..end))
        .ok_or(FrameDrop::BadRange)?;
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| FrameDrop::Runt)?;
    let (src, dst) = (eth.src_addr(), eth.dst_addr());
    if !src.is_learnable() {
        return Err(FrameDrop::BadSrcMac);
    }
    let bd = bds.get(meta.bd).ok_or(FrameDrop::UnknownBd)?;
    Ok(Admitted { bd, src, dst })
}

/// One worker's forwarding engine.
pub struct Engine {
    replica: FdbReplica,
    bds: BridgeDomains,
    encap: EncapConfig,
    next_hops: VtepMap<MacAddr>,
    /// Outer headers per remote VTEP, rebuilt whenever a next hop or the
    /// encapsulation settings change; absent when no local address of the
    /// VTEP's family is configured.
    templates: VtepMap<EncapTemplate>,
    /// Per VTEP number of the replica ([`Place::Vtep`]): the address and
    /// its template, so that known unicast to a VTEP goes from the FDB slot
    /// straight to its template without a lookup by address. Kept in step
    /// with the replica's numbering by [`sync_vteps`](Self::sync_vteps) and
    /// with `templates` by `rebuild_template`; as long as the most VTEP
    /// numbers the replica ever used at once (at most its entries).
    by_number: Vec<VtepSlot>,
    /// IP MTU per local port, indexed by port number; `u32::MAX` (no
    /// check) for ports never given one.
    port_mtus: Vec<u32>,
    counters: Counters,
    egress: Vec<Egress>,
    /// Per bridge domain flood budgets (BUM storm control).
    storm: StormControl,
    now: Tick,
    last_drop_log: Option<Tick>,
}

impl Engine {
    /// An engine over a worker's replica, its bridge domains and the
    /// encapsulation settings.
    pub fn new(replica: FdbReplica, bds: BridgeDomains, encap: EncapConfig) -> Engine {
        let flood_max = bds
            .iter()
            .map(|b| b.attachments.len() + b.flood.len())
            .max()
            .unwrap_or(0);
        let mut storm = StormControl::new(1);
        if let Some(last) = bds.iter().map(|b| b.id).max() {
            storm.reserve(last);
        }
        Engine {
            replica,
            bds,
            encap,
            next_hops: VtepMap::default(),
            templates: VtepMap::default(),
            by_number: Vec::new(),
            port_mtus: Vec::new(),
            counters: Counters::default(),
            egress: Vec::with_capacity(flood_max.max(16)),
            storm,
            now: Tick(0),
            last_drop_log: None,
        }
    }

    /// Starts a batch: applies the FDB owner's changes and sets the time the
    /// batch's frames are seen at. Returns how many FDB changes were applied.
    pub fn begin_batch(&mut self, now: Tick) -> usize {
        self.now = now;
        let n = self.replica.drain();
        self.sync_vteps();
        n
    }

    /// Brings [`by_number`](Self::by_number) up to date with the VTEP
    /// numbers the replica gave out (anew or reused) since the last call.
    #[inline(always)]
    fn sync_vteps(&mut self) {
        sync_numbers(&mut self.replica, &mut self.by_number, &self.templates);
    }

    /// Sets (or with `None` forgets) the IP MTU of a local port. A frame
    /// that leaves any attachment of that port (tagged or untagged) and
    /// carries more than `mtu` bytes after its Ethernet header is dropped
    /// and counted (`drop_mtu`) instead of being sent. The 4-byte tag is not
    /// counted against the MTU, as 802.1Q and Linux do (a port with MTU 1500
    /// carries 1500-byte packets tagged, in 1518-byte frames).
    pub fn set_port_mtu(&mut self, port: PortId, mtu: Option<u32>) {
        let i = usize::from(port.0);
        if self.port_mtus.len() <= i {
            self.port_mtus.resize(i + 1, u32::MAX);
        }
        self.port_mtus[i] = mtu.unwrap_or(u32::MAX);
    }

    /// Sets (or with `None` forgets) the next-hop MAC towards a remote VTEP.
    pub fn set_next_hop(&mut self, vtep: IpAddr, mac: Option<MacAddr>) {
        match mac {
            Some(m) => {
                self.next_hops.insert(vtep, m);
            }
            None => {
                self.next_hops.remove(vtep);
            }
        }
        self.rebuild_template(vtep);
    }

    /// The bridge domains, to change between batches.
    pub fn bridge_domains_mut(&mut self) -> &mut BridgeDomains {
        &mut self.bds
    }

    /// The bridge domains.
    pub fn bridge_domains(&self) -> &BridgeDomains {
        &self.bds
    }

    /// Rewrites the frame at `buf[headroom .. headroom + len]` for one
    /// egress exactly as [`process`](Self::process) does (VLAN push or VXLAN
    /// encapsulation with this engine's next hops and settings), counting
    /// nothing; returns the new `(start, len)` or why that copy would be
    /// dropped. For `xvsctl trace`.
    pub fn rewrite_egress(
        &self,
        egress: &Egress,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
    ) -> Result<(usize, usize), EgressDrop> {
        let rw = Rewriter {
            next_hops: &self.next_hops,
            templates: &self.templates,
            port_mtus: &self.port_mtus,
        };
        rw.try_rewrite(egress, buf, headroom, len)
    }

    /// Tells this engine it is one of `workers` workers: it floods at most
    /// its share, `ceil(storm_pps / workers)` frames per second, of each
    /// bridge domain's storm limit (default 1: the whole limit).
    pub fn set_storm_workers(&mut self, workers: u32) {
        self.storm.set_workers(workers);
    }

    /// The encapsulation settings.
    pub fn encap_config(&self) -> &EncapConfig {
        &self.encap
    }

    /// Replaces the encapsulation settings (between batches).
    pub fn set_encap_config(&mut self, encap: EncapConfig) {
        self.encap = encap;
        let vteps = self.next_hops.keys();
        for vtep in vteps {
            self.rebuild_template(vtep);
        }
    }

    fn rebuild_template(&mut self, vtep: IpAddr) {
        let template = self.next_hops.get(vtep).and_then(|&dst_mac| {
            let src_ip = match vtep {
                IpAddr::V4(_) => self.encap.local_v4.map(IpAddr::V4),
                IpAddr::V6(_) => self.encap.local_v6.map(IpAddr::V6),
            }?;
            let params = EncapParams {
                src_mac: self.encap.src_mac,
                dst_mac,
                src_ip,
                dst_ip: vtep,
                vni: Vni::new(0).unwrap_or_else(|| unreachable!("0 is a VNI")),
                dst_port: self.encap.dst_port,
                ttl: self.encap.ttl,
                dont_frag: self.encap.dont_frag,
                mtu: self.encap.mtu,
            };
            EncapTemplate::new(&params).ok()
        });
        if let Some(slot) = self
            .replica
            .vtep_number(vtep)
            .and_then(|i| self.by_number.get_mut(i as usize))
        {
            // A number not synced yet gets its template when it is.
            if slot.ip == vtep {
                slot.template = template.clone();
            }
        }
        match template {
            Some(t) => {
                self.templates.insert(vtep, t);
            }
            None => {
                self.templates.remove(vtep);
            }
        }
    }

    /// Starts loading what [`process`](Self::process) will read first for
    /// the frame `frame` (from its first byte: the Ethernet header) of
    /// bridge domain `bd` — the FDB slots of its source and destination MACs
    /// — without waiting. Called for the frames of a batch a few frames
    /// ahead of processing them, it lets their cache misses overlap (a large
    /// FDB does not fit in the cache). Does nothing for a frame too short to
    /// have both MACs.
    #[inline]
    pub fn prefetch(&self, bd: BdId, frame: &[u8]) {
        if let Some(macs) = frame.get(..12) {
            let dst = MacAddr::from_bytes(&macs[..6]);
            let src = MacAddr::from_bytes(&macs[6..]);
            self.replica.prefetch(bd, src);
            if !dst.is_multicast() {
                self.replica.prefetch(bd, dst);
            }
        }
    }

    /// This worker's FDB replica.
    pub fn replica(&self) -> &FdbReplica {
        &self.replica
    }

    /// This worker's FDB replica, writable (e.g. to reserve room).
    pub fn replica_mut(&mut self) -> &mut FdbReplica {
        &mut self.replica
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Processes one received frame at `buf[headroom .. headroom + len]`
    /// (inner Ethernet frame, VLAN tag and outer headers already removed by
    /// the XDP program) with its metadata: learns its source, looks up its
    /// destination, decides, rewrites and hands every result to `tx`. Flood
    /// copies go into spare buffers at the same headroom; the last
    /// destination gets the received buffer itself.
    pub fn process<T: TxFrames>(
        &mut self,
        meta: &FrameMeta,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
        tx: &mut T,
    ) -> Verdict {
        self.counters.rx += 1;
        let (bd, src, dst) = match admit(&self.bds, meta, buf, headroom, len) {
            Ok(a) => (a.bd, a.src, a.dst),
            Err(why) => {
                let c = &mut self.counters;
                match why {
                    FrameDrop::BadRange => c.drop_bad_range += 1,
                    FrameDrop::Runt => c.drop_runt += 1,
                    FrameDrop::BadSrcMac => c.drop_bad_src_mac += 1,
                    FrameDrop::UnknownBd => c.drop_unknown_bd += 1,
                }
                self.log_drop(why.what());
                return Verdict::default();
            }
        };
        if let Ingress::Vtep(ip) = meta.ingress {
            if !self.bds.admits_vtep(meta.bd, ip) {
                self.counters.drop_unknown_vtep += 1;
                self.log_drop("VXLAN from a VTEP not in the bridge domain's flood list");
                return Verdict::default();
            }
        }

        let outcome = self
            .replica
            .learn(meta.bd, src, meta.ingress.location(), self.now);
        count_learn(&mut self.counters, outcome);
        // Learning may have numbered a new VTEP (or the caller changed the
        // replica): its template slot before any lookup can return it.
        sync_numbers(&mut self.replica, &mut self.by_number, &self.templates);

        let known = if dst.is_multicast() {
            None
        } else {
            self.replica.lookup_place(meta.bd, dst)
        };
        let rw = Rewriter {
            next_hops: &self.next_hops,
            templates: &self.templates,
            port_mtus: &self.port_mtus,
        };
        // Known unicast to a VTEP: its slot by number, template included.
        let mut by_number = None;
        let decision = match known {
            Some(Place::Vtep(i)) if (i as usize) < self.by_number.len() => {
                let slot = &self.by_number[i as usize];
                by_number = Some(slot);
                decide_to_vtep(bd, &meta.ingress, slot.ip)
            }
            Some(Place::Local(a)) => decide_to_local(bd, &meta.ingress, a),
            // A VTEP number without a slot is not reached (numbers are
            // synced right after learning): flooded like an unknown MAC.
            Some(Place::Vtep(_)) | None => decide(bd, &meta.ingress, None, &mut self.egress),
        };
        match decision {
            Decision::Unicast(e) => {
                self.counters.unicast += 1;
                let done = match (by_number, e) {
                    (Some(slot), Egress::Vtep { vni, .. }) => {
                        rw.rewrite_to(slot, &e, vni, buf, headroom, len, &mut self.counters)
                    }
                    _ => rw.rewrite(&e, buf, headroom, len, &mut self.counters),
                };
                let Some((start, n)) = done else {
                    return Verdict::default();
                };
                tx.send_in_place(&e, start, n);
                self.counters.tx += 1;
                return Verdict {
                    consumed: true,
                    sent: 1,
                };
            }
            Decision::Flood => {
                // Storm control before any copy is made.
                if let Some(pps) = bd.storm_pps {
                    if !self.storm.admit(meta.bd, pps, self.now) {
                        self.counters.drop_storm += 1;
                        return Verdict::default();
                    }
                }
                self.counters.flooded += 1;
            }
            Decision::Drop(reason) => {
                let c = &mut self.counters;
                match reason {
                    DropReason::Hairpin => c.drop_hairpin += 1,
                    DropReason::SplitHorizon => c.drop_split_horizon += 1,
                    DropReason::NoVni => c.drop_no_vni += 1,
                    DropReason::NoDestination => c.drop_no_destination += 1,
                }
                return Verdict::default();
            }
        }

        let mut verdict = Verdict::default();
        let Some((last, copies)) = self.egress.split_last() else {
            return verdict;
        };
        for e in copies {
            let Some(spare) = tx.spare() else {
                self.counters.drop_no_frame += 1;
                continue;
            };
            if spare.len() < headroom + len {
                tx.discard_spare();
                self.counters.drop_no_frame += 1;
                continue;
            }
            spare[headroom..headroom + len].copy_from_slice(&buf[headroom..headroom + len]);
            match rw.rewrite(e, spare, headroom, len, &mut self.counters) {
                Some((start, n)) => {
                    tx.send_spare(e, start, n);
                    verdict.sent += 1;
                }
                None => tx.discard_spare(),
            }
        }
        if let Some((start, n)) = rw.rewrite(last, buf, headroom, len, &mut self.counters) {
            tx.send_in_place(last, start, n);
            verdict.sent += 1;
            verdict.consumed = true;
        }
        self.counters.tx += u64::from(verdict.sent);
        verdict
    }

    /// Logs a drop at debug level, at most once a second (counters keep the
    /// full story).
    #[cold]
    fn log_drop(&mut self, what: &'static str) {
        if self
            .last_drop_log
            .is_none_or(|last| self.now.millis_since(last) >= 1000)
        {
            self.last_drop_log = Some(self.now);
            tracing::debug!(reason = what, "dropping frames (rate-limited log)");
        }
    }
}

/// [`Engine::sync_vteps`], on the engine's fields.
#[inline(always)]
fn sync_numbers(
    replica: &mut FdbReplica,
    slots: &mut Vec<VtepSlot>,
    templates: &VtepMap<EncapTemplate>,
) {
    if replica.has_new_vteps() {
        sync_numbers_now(replica, slots, templates);
    }
}

#[cold]
#[inline(never)]
fn sync_numbers_now(
    replica: &mut FdbReplica,
    slots: &mut Vec<VtepSlot>,
    templates: &VtepMap<EncapTemplate>,
) {
    replica.drain_new_vteps(|i, ip| {
        let i = i as usize;
        if slots.len() <= i {
            slots.resize_with(i + 1, VtepSlot::default);
        }
        slots[i] = VtepSlot {
            ip,
            template: templates.get(ip).cloned(),
        };
    });
}

fn count_learn(c: &mut Counters, outcome: LearnOutcome) {
    match outcome {
        LearnOutcome::Known => {}
        LearnOutcome::Refreshed => c.refreshed += 1,
        LearnOutcome::Learned => c.learned += 1,
        LearnOutcome::Moved => c.moved += 1,
        LearnOutcome::Static => c.learn_static += 1,
        LearnOutcome::Held => c.learn_held += 1,
        LearnOutcome::CapReached => c.learn_cap_reached += 1,
        LearnOutcome::QueueFull => c.learn_queue_full += 1,
    }
}

/// The rewriting half of the engine, borrowed apart from the egress list.
struct Rewriter<'a> {
    next_hops: &'a VtepMap<MacAddr>,
    templates: &'a VtepMap<EncapTemplate>,
    port_mtus: &'a [u32],
}

impl Rewriter<'_> {
    /// Rewrites the frame for one egress; `None` when dropped (counted).
    #[inline(always)]
    fn rewrite(
        &self,
        egress: &Egress,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
        c: &mut Counters,
    ) -> Option<(usize, usize)> {
        match self.try_rewrite(egress, buf, headroom, len) {
            Ok(r) => Some(r),
            Err(why) => {
                c.count_egress_drop(why);
                None
            }
        }
    }

    /// [`rewrite`](Self::rewrite) for known unicast to the VTEP of `slot`
    /// (`egress`), with the template found by number.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn rewrite_to(
        &self,
        slot: &VtepSlot,
        egress: &Egress,
        vni: Vni,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
        c: &mut Counters,
    ) -> Option<(usize, usize)> {
        match &slot.template {
            Some(t) => match t.apply(buf, headroom, len, vni) {
                Ok(r) => Some(r),
                Err(e) => {
                    c.count_egress_drop(e.into());
                    None
                }
            },
            // No template: the lookup by address says why.
            None => self.rewrite(egress, buf, headroom, len, c),
        }
    }

    /// Rewrites the frame for one egress, or says why that copy is dropped.
    #[inline(always)]
    fn try_rewrite(
        &self,
        egress: &Egress,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
    ) -> Result<(usize, usize), EgressDrop> {
        let result = match *egress {
            Egress::Local(a) => {
                // Tagged or not, the kernel drops what exceeds the port's
                // MTU without a word: counted here instead.
                let mtu = self.port_mtus.get(usize::from(a.port.0)).copied();
                let mtu = mtu.map_or(usize::MAX, |m| m as usize);
                if len.saturating_sub(ethernet::HEADER_LEN) > mtu {
                    return Err(EgressDrop::Mtu);
                }
                match a.vlan {
                    None => Ok((headroom, len)),
                    Some(vlan) => push_vlan(buf, headroom, len, vlan),
                }
            }
            Egress::Vtep { ip, vni } => match self.templates.get(ip) {
                Some(t) => t.apply(buf, headroom, len, vni),
                None if self.next_hops.get(ip).is_some() => return Err(EgressDrop::NoLocalAddr),
                None => return Err(EgressDrop::NoNextHop),
            },
        };
        result.map_err(EgressDrop::from)
    }
}

/// What the engine keeps per VTEP number of its replica.
#[derive(Clone, Debug)]
struct VtepSlot {
    /// The VTEP's address.
    ip: IpAddr,
    /// Its outer headers; `None` without a next hop or a local address of
    /// its family (the drop reason is then found by address).
    template: Option<EncapTemplate>,
}

impl Default for VtepSlot {
    fn default() -> Self {
        VtepSlot {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            template: None,
        }
    }
}

/// One frame [`MemTx`] was asked to send.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sent {
    /// Where it goes.
    pub egress: Egress,
    /// The spare buffer it is in, or `None` for the received buffer.
    pub spare: Option<usize>,
    /// Start of the frame in its buffer.
    pub start: usize,
    /// Length of the frame.
    pub len: usize,
}

/// An in-memory [`TxFrames`]: a fixed pool of spare buffers and a list of
/// what was sent. For tests and benches; [`clear`](Self::clear) between
/// frames makes it allocation-free.
pub struct MemTx {
    spares: Vec<Vec<u8>>,
    used: usize,
    /// Everything sent since the last [`clear`](Self::clear), in order.
    pub sent: Vec<Sent>,
}

impl MemTx {
    /// A pool of `count` spare buffers of `frame_size` bytes.
    pub fn new(count: usize, frame_size: usize) -> MemTx {
        MemTx {
            spares: vec![vec![0; frame_size]; count],
            used: 0,
            sent: Vec::with_capacity(count + 1),
        }
    }

    /// Forgets what was sent and makes every spare free again.
    #[inline]
    pub fn clear(&mut self) {
        self.used = 0;
        self.sent.clear();
    }

    /// The bytes of a sent frame; `rx` is the received buffer (for the
    /// frame sent in place).
    pub fn frame<'a>(&'a self, s: &Sent, rx: &'a [u8]) -> &'a [u8] {
        let buf = match s.spare {
            Some(i) => &self.spares[i][..],
            None => rx,
        };
        &buf[s.start..s.start + s.len]
    }
}

impl TxFrames for MemTx {
    #[inline]
    fn spare(&mut self) -> Option<&mut [u8]> {
        self.spares.get_mut(self.used).map(|b| &mut b[..])
    }

    #[inline]
    fn send_spare(&mut self, egress: &Egress, start: usize, len: usize) {
        self.sent.push(Sent {
            egress: *egress,
            spare: Some(self.used),
            start,
            len,
        });
        self.used += 1;
    }

    #[inline]
    fn discard_spare(&mut self) {}

    #[inline]
    fn send_in_place(&mut self, egress: &Egress, start: usize, len: usize) {
        self.sent.push(Sent {
            egress: *egress,
            spare: None,
            start,
            len,
        });
    }
}
