//! One worker's forwarding loop over any [`FrameIo`]: RX batch from every
//! port → classifier metadata → [`Engine::process`] → TX on the egress
//! port, then one flush.
//!
//! Unicast leaves from the very chunk it arrived in (zero copies in
//! userspace); flood copies go into frames taken from the same UMEM while
//! the received chunk is borrowed ([`FrameIo::split`] and [`Spares`]). The
//! FDB replica drains its inbox and next-hop updates are applied once per
//! batch, between frames, so the per-frame path never locks or blocks.
//!
//! The loop is I/O-agnostic: xvsd runs it over AF_XDP sockets
//! ([`XskIo`](crate::xsk::XskIo)), the unit tests over
//! [`MemIo`](crate::xsk::MemIo).

use std::net::IpAddr;

use crossbeam_channel::Receiver;
use hashbrown::HashMap;
use xvs_ebpf::Meta;

use crate::decide::Egress;
use crate::engine::{Counters, Engine, TxFrames};
use crate::fdb::Tick;
use crate::prefetch::prefetch_read;
use crate::types::{BdId, MacAddr};
use crate::xsk::{Frame, FrameIo, PortId, Spares};

use super::model::frame_meta;
use super::reconfig::LiveUpdate;

/// A change of the next hop towards one remote VTEP, from the next-hop
/// thread to every worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHopUpdate {
    /// Frames for `vtep` leave on `port` to next-hop MAC `mac`.
    Set {
        /// The remote VTEP.
        vtep: IpAddr,
        /// Ethernet address of the next hop.
        mac: MacAddr,
        /// The uplink port they leave on.
        port: PortId,
    },
    /// `vtep` has no usable next hop: its frames are dropped and counted.
    Clear {
        /// The remote VTEP.
        vtep: IpAddr,
    },
}

/// A worker's own counters, beside the engine's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Loop iterations that received at least one frame.
    pub batches: u64,
    /// Frames dropped because their metadata was missing or unusable.
    pub drop_bad_meta: u64,
    /// Frames dropped: the egress VTEP has no uplink port (not resolved).
    pub drop_no_egress_port: u64,
    /// Frames dropped: the egress port's TX ring was full.
    pub drop_tx_full: u64,
    /// Next-hop updates applied.
    pub nexthop_updates: u64,
    /// FDB changes applied from the owner.
    pub fdb_changes: u64,
}

/// One worker: its engine plus the bookkeeping of its I/O.
pub struct Worker {
    index: usize,
    engine: Engine,
    batch: usize,
    updates: Receiver<NextHopUpdate>,
    bd_updates: Option<Receiver<LiveUpdate>>,
    vtep_ports: HashMap<IpAddr, PortId>,
    rx: Vec<Frame>,
    out: Vec<(PortId, Frame)>,
    counters: WorkerCounters,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("batch", &self.batch)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Worker `index` over `engine`, receiving up to `batch` frames per port
    /// per iteration and next-hop changes from `updates`.
    pub fn new(
        index: usize,
        engine: Engine,
        batch: usize,
        updates: Receiver<NextHopUpdate>,
    ) -> Worker {
        let batch = batch.max(1);
        Worker {
            index,
            engine,
            batch,
            updates,
            bd_updates: None,
            vtep_ports: HashMap::new(),
            rx: Vec::with_capacity(batch),
            out: Vec::with_capacity(64),
            counters: WorkerCounters::default(),
        }
    }

    /// The worker's index (its queue).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The engine's counters.
    pub fn engine_counters(&self) -> &Counters {
        self.engine.counters()
    }

    /// The worker's own counters.
    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    /// Takes live bridge-domain and encapsulation changes from `rx`
    /// (applied between batches, with the next-hop updates).
    pub fn set_bd_updates(&mut self, rx: Receiver<LiveUpdate>) {
        self.bd_updates = Some(rx);
    }

    /// Applies every pending next-hop update and bridge-domain change;
    /// returns how many.
    pub fn apply_updates(&mut self) -> usize {
        let mut n = 0;
        if let Some(rx) = &self.bd_updates {
            while let Ok(u) = rx.try_recv() {
                apply_bd_update(&mut self.engine, u);
            }
        }
        while let Ok(u) = self.updates.try_recv() {
            match u {
                NextHopUpdate::Set { vtep, mac, port } => {
                    self.engine.set_next_hop(vtep, Some(mac));
                    self.vtep_ports.insert(vtep, port);
                }
                NextHopUpdate::Clear { vtep } => {
                    self.engine.set_next_hop(vtep, None);
                    self.vtep_ports.remove(&vtep);
                }
            }
            n += 1;
        }
        self.counters.nexthop_updates += n as u64;
        n
    }

    /// One iteration: applies pending FDB and next-hop changes, receives up
    /// to `batch` frames from every port of `io`, forwards them, and
    /// flushes. Returns the number of frames received.
    pub fn run_batch<I: FrameIo>(&mut self, io: &mut I, now: Tick) -> usize {
        self.counters.fdb_changes += self.engine.begin_batch(now) as u64;
        self.apply_updates();
        let mut total = 0;
        for p in 0..io.port_count() {
            let port = PortId::new(p as u16);
            self.rx.clear();
            let got = io.recv(port, &mut self.rx, self.batch);
            total += got;
            let mut frames = std::mem::take(&mut self.rx);
            prefetch_frames(io, &frames);
            prefetch_fdb(io, &self.engine, &frames);
            for f in frames.drain(..) {
                self.forward(io, f);
            }
            self.rx = frames;
        }
        if total > 0 {
            self.counters.batches += 1;
        }
        io.flush();
        total
    }

    /// Forwards one received frame and hands every resulting frame to `io`.
    fn forward<I: FrameIo>(&mut self, io: &mut I, mut f: Frame) {
        let meta = io
            .meta(&f, Meta::SIZE)
            .and_then(Meta::from_bytes)
            .and_then(|m| frame_meta(&m));
        let Some(meta) = meta else {
            self.counters.drop_bad_meta += 1;
            io.free(f);
            return;
        };
        let (headroom, len) = (f.offset(), f.len());
        let (buf, spares) = io.split(&f);
        let mut tx = Tx {
            spares,
            cur: None,
            out: &mut self.out,
            in_place: None,
            vtep_ports: &self.vtep_ports,
            no_port: 0,
        };
        self.engine.process(&meta, buf, headroom, len, &mut tx);
        let (in_place, no_port) = (tx.in_place, tx.no_port);
        tx.finish();
        self.counters.drop_no_egress_port += no_port;
        for (port, frame) in self.out.drain(..) {
            if let Err(frame) = io.send(port, frame) {
                self.counters.drop_tx_full += 1;
                io.free(frame);
            }
        }
        match in_place {
            Some((port, start, n)) if f.set_window(start, n) => {
                if let Err(frame) = io.send(port, f) {
                    self.counters.drop_tx_full += 1;
                    io.free(frame);
                }
            }
            _ => io.free(f),
        }
    }
}

/// One live change (see [`LiveUpdate`]).
fn apply_bd_update(engine: &mut Engine, u: LiveUpdate) {
    match u {
        LiveUpdate::Encap(e) => engine.set_encap_config(e),
        LiveUpdate::Upsert(bd) => engine.bridge_domains_mut().insert(bd),
        LiveUpdate::Remove(id) => {
            engine.bridge_domains_mut().remove(id);
        }
        LiveUpdate::PortMtu(port, mtu) => engine.set_port_mtu(port, mtu),
        LiveUpdate::Sync(done) => {
            let _ = done.send(());
        }
    }
}

/// Cache lines of a received frame that [`prefetch_frames`] asks for at
/// most: the metadata line plus the first 256 bytes of data cover a small
/// frame whole (what the kernel copies out again on transmit); longer
/// frames are streamed by the hardware prefetcher.
const PREFETCH_LINES: usize = 4;

/// Prefetches every received frame's metadata and data lines (up to
/// [`PREFETCH_LINES`] of data) before any frame is processed. The kernel
/// wrote them on another core (copy mode), so each first touch is a cache
/// miss: prefetches do not wait for their data, so the whole batch's misses
/// overlap instead of being paid one after another inside `forward` — and
/// in the kernel's copy on transmit, which reads the lines the worker never
/// touches (the inner frame's tail after decapsulation).
fn prefetch_frames<I: FrameIo>(io: &I, frames: &[Frame]) {
    for f in frames {
        if let Some(m) = io.meta(f, Meta::SIZE) {
            prefetch_read(m.as_ptr());
        }
        let data = io.data(f);
        let Some(last) = data.len().checked_sub(1) else {
            continue;
        };
        // Every line the data spans (its start need not be line-aligned).
        let skew = data.as_ptr() as usize % 64;
        for at in (0..=skew + last).step_by(64).take(PREFETCH_LINES) {
            prefetch_read(data.as_ptr().wrapping_add(at).wrapping_sub(skew));
        }
    }
}

/// Asks the engine to prefetch the FDB slots of every received frame's MACs
/// ([`Engine::prefetch`]) before any is processed, so that with a large FDB
/// the batch's table misses overlap as the header misses do. Runs after
/// [`prefetch_frames`]: the metadata and header lines are on their way.
fn prefetch_fdb<I: FrameIo>(io: &I, engine: &Engine, frames: &[Frame]) {
    for f in frames {
        // Only the bridge domain word is read (a wrong one would only
        // prefetch a useless line).
        let at = std::mem::offset_of!(Meta, bd);
        let bd = io
            .meta(f, Meta::SIZE)
            .and_then(|m| m.get(at..at + 4))
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        engine.prefetch(BdId(bd as u16), io.data(f));
    }
}

/// The engine's [`TxFrames`] over a borrowed chunk and the UMEM's spares:
/// records where each frame goes; the worker sends them once the borrow
/// ends.
struct Tx<'a, 'b> {
    spares: Spares<'a>,
    cur: Option<Frame>,
    out: &'b mut Vec<(PortId, Frame)>,
    in_place: Option<(PortId, usize, usize)>,
    vtep_ports: &'b HashMap<IpAddr, PortId>,
    no_port: u64,
}

impl Tx<'_, '_> {
    #[inline]
    fn port_of(&self, e: &Egress) -> Option<PortId> {
        match *e {
            Egress::Local(a) => Some(PortId::new(a.port.0)),
            Egress::Vtep { ip, .. } => self.vtep_ports.get(&ip).copied(),
        }
    }

    /// Gives back a spare the engine took but never sent or discarded.
    fn finish(mut self) {
        if let Some(f) = self.cur.take() {
            self.spares.free(f);
        }
    }
}

impl TxFrames for Tx<'_, '_> {
    fn spare(&mut self) -> Option<&mut [u8]> {
        if let Some(f) = self.cur.take() {
            self.spares.free(f);
        }
        let f = self.spares.alloc()?;
        let f = self.cur.insert(f);
        Some(self.spares.chunk_mut(f))
    }

    fn send_spare(&mut self, egress: &Egress, start: usize, len: usize) {
        let Some(mut f) = self.cur.take() else {
            return;
        };
        match self.port_of(egress) {
            Some(port) if f.set_window(start, len) => self.out.push((port, f)),
            _ => {
                self.no_port += 1;
                self.spares.free(f);
            }
        }
    }

    fn discard_spare(&mut self) {
        if let Some(f) = self.cur.take() {
            self.spares.free(f);
        }
    }

    fn send_in_place(&mut self, egress: &Egress, start: usize, len: usize) {
        match self.port_of(egress) {
            Some(port) => self.in_place = Some((port, start, len)),
            None => self.no_port += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crossbeam_channel::unbounded;
    use etherparse::{PacketBuilder, SlicedPacket};

    use super::*;
    use crate::bridge::{BridgeDomain, BridgeDomains};
    use crate::engine::EncapConfig;
    use crate::fdb::{self, FdbConfig};
    use crate::types::{Attachment, BdId, PortId as SwPort, Vlan, Vni};
    use crate::xsk::{MemIo, XskConfig};

    const UPLINK: u16 = 0;
    const VM1: u16 = 1;
    const VM2: u16 = 2;
    const TRUNK: u16 = 3;
    const VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const HOP_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xee]);

    fn mac(n: u8) -> [u8; 6] {
        [2, 0, 0, 0, 1, n]
    }

    fn udp(src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(src, dst)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000);
        let payload = [0xab; 32];
        let mut v = Vec::new();
        b.write(&mut v, &payload).unwrap();
        v
    }

    fn access_meta(port: u16, vid: u16) -> [u8; Meta::SIZE] {
        Meta {
            bd: 1,
            port_index: u32::from(port),
            vid,
            flags: if vid != 0 { xvs_ebpf::META_F_TAGGED } else { 0 },
            ..Meta::default()
        }
        .to_bytes()
    }

    struct Rig {
        io: MemIo,
        worker: Worker,
        owner: fdb::FdbOwner,
        hops: crossbeam_channel::Sender<NextHopUpdate>,
    }

    fn rig() -> Rig {
        let mut bd = BridgeDomain::new(BdId(1), Vni::new(100));
        bd.attachments = vec![
            Attachment::untagged(SwPort(VM1)),
            Attachment::untagged(SwPort(VM2)),
            Attachment::tagged(SwPort(TRUNK), Vlan::new(10).unwrap()),
        ];
        bd.flood = vec![IpAddr::V4(VTEP)];
        let mut bds = BridgeDomains::new();
        bds.insert(bd);
        let (owner, mut replicas, _ctl) = fdb::new(FdbConfig::default(), 1);
        let encap = EncapConfig {
            src_mac: MacAddr([2, 0, 0, 0, 0, 0x10]),
            local_v4: Some(Ipv4Addr::new(192, 0, 2, 10)),
            ..EncapConfig::default()
        };
        let engine = Engine::new(replicas.remove(0), bds, encap);
        let (hops, rx) = unbounded();
        let cfg = XskConfig {
            frame_count: 64,
            ..XskConfig::default()
        };
        Rig {
            io: MemIo::new(4, &cfg).unwrap(),
            worker: Worker::new(0, engine, 16, rx),
            owner,
            hops,
        }
    }

    fn sent(io: &mut MemIo, port: u16) -> Vec<Vec<u8>> {
        io.take_sent(PortId::new(port))
            .into_iter()
            .map(|s| s.bytes)
            .collect()
    }

    #[test]
    fn floods_then_forwards_known_unicast_in_place_without_leaking() {
        let mut r = rig();
        let total = r.io.frames_free();
        r.hops
            .send(NextHopUpdate::Set {
                vtep: IpAddr::V4(VTEP),
                mac: HOP_MAC,
                port: PortId::new(UPLINK),
            })
            .unwrap();
        // vm1 → unknown vm2: flooded to vm2, the trunk (tagged) and the VTEP.
        let f = udp(mac(1), mac(2));
        assert!(r.io.inject(PortId::new(VM1), &access_meta(VM1, 0), &f));
        assert_eq!(r.worker.run_batch(&mut r.io, Tick(1)), 1);
        assert_eq!(sent(&mut r.io, VM2), vec![f.clone()]);
        let trunk = sent(&mut r.io, TRUNK);
        assert_eq!(trunk.len(), 1);
        assert_eq!(&trunk[0][12..16], &[0x81, 0x00, 0x00, 10], "tag pushed");
        let up = sent(&mut r.io, UPLINK);
        assert_eq!(up.len(), 1);
        let outer = SlicedPacket::from_ethernet(&up[0]).unwrap();
        assert_eq!(
            &up[0][0..6],
            &HOP_MAC.0,
            "outer destination is the next hop"
        );
        assert!(outer.net.is_some());
        assert_eq!(
            &up[0][50..],
            &f[..],
            "inner frame after 50 bytes of outer headers"
        );
        assert!(sent(&mut r.io, VM1).is_empty(), "never back to the ingress");
        assert_eq!(r.worker.counters().nexthop_updates, 1);

        // vm2 answers: vm1 was learned, so this is known unicast to vm1 only.
        let back = udp(mac(2), mac(1));
        assert!(r.io.inject(PortId::new(VM2), &access_meta(VM2, 0), &back));
        r.worker.run_batch(&mut r.io, Tick(2));
        assert_eq!(sent(&mut r.io, VM1), vec![back]);
        for p in [UPLINK, VM2, TRUNK] {
            assert!(sent(&mut r.io, p).is_empty());
        }
        assert_eq!(r.worker.engine_counters().unicast, 1);
        assert_eq!(
            r.io.frames_free(),
            total,
            "every frame back in the free stack"
        );
        assert!(r.owner.process(Tick(3)) >= 2, "learns reached the owner");
    }

    #[test]
    fn tagged_ingress_is_learned_on_its_vlan_and_answered_tagged() {
        let mut r = rig();
        // From the trunk (tag already popped by XDP, VID in the metadata).
        let f = udp(mac(3), mac(1));
        assert!(r.io.inject(PortId::new(TRUNK), &access_meta(TRUNK, 10), &f));
        r.worker.run_batch(&mut r.io, Tick(1));
        assert_eq!(sent(&mut r.io, VM1), vec![f.clone()], "untagged on vm1");
        let back = udp(mac(1), mac(3));
        assert!(r.io.inject(PortId::new(VM1), &access_meta(VM1, 0), &back));
        r.worker.run_batch(&mut r.io, Tick(2));
        let trunk = sent(&mut r.io, TRUNK);
        assert_eq!(trunk.len(), 1, "known unicast back to the trunk only");
        assert_eq!(&trunk[0][12..16], &[0x81, 0x00, 0x00, 10]);
        assert_eq!(&trunk[0][16..], &back[12..]);
    }

    #[test]
    fn unresolved_vtep_is_counted_and_decapsulated_frames_learn_the_vtep() {
        let mut r = rig();
        let total = r.io.frames_free();
        // No next hop yet: the VTEP copy is dropped and counted, the local
        // copies still go.
        let f = udp(mac(1), [0xff; 6]);
        assert!(r.io.inject(PortId::new(VM1), &access_meta(VM1, 0), &f));
        r.worker.run_batch(&mut r.io, Tick(1));
        assert!(sent(&mut r.io, UPLINK).is_empty());
        assert_eq!(sent(&mut r.io, VM2).len(), 1);
        assert_eq!(r.worker.engine_counters().drop_no_next_hop, 1);

        // A decapsulated frame from the VTEP to vm1.
        let meta = Meta {
            bd: 1,
            port_index: u32::from(UPLINK),
            src_vtep: VTEP.to_ipv6_mapped().octets(),
            vni: 100,
            flags: xvs_ebpf::META_F_VXLAN,
            ..Meta::default()
        };
        let g = udp(mac(9), mac(1));
        assert!(r.io.inject(PortId::new(UPLINK), &meta.to_bytes(), &g));
        r.worker.run_batch(&mut r.io, Tick(2));
        assert_eq!(sent(&mut r.io, VM1), vec![g]);
        // vm1 → mac 9 is now known unicast to the VTEP, still unresolved.
        let h = udp(mac(1), mac(9));
        assert!(r.io.inject(PortId::new(VM1), &access_meta(VM1, 0), &h));
        r.worker.run_batch(&mut r.io, Tick(3));
        assert_eq!(r.worker.engine_counters().drop_no_next_hop, 2);
        // Resolved: the next one goes.
        r.hops
            .send(NextHopUpdate::Set {
                vtep: IpAddr::V4(VTEP),
                mac: HOP_MAC,
                port: PortId::new(UPLINK),
            })
            .unwrap();
        assert!(r.io.inject(PortId::new(VM1), &access_meta(VM1, 0), &h));
        r.worker.run_batch(&mut r.io, Tick(4));
        assert_eq!(sent(&mut r.io, UPLINK).len(), 1);
        // Cleared again: dropped again.
        r.hops
            .send(NextHopUpdate::Clear {
                vtep: IpAddr::V4(VTEP),
            })
            .unwrap();
        assert!(r.io.inject(PortId::new(VM1), &access_meta(VM1, 0), &h));
        r.worker.run_batch(&mut r.io, Tick(5));
        assert!(sent(&mut r.io, UPLINK).is_empty());
        assert_eq!(r.worker.engine_counters().drop_no_next_hop, 3);
        assert_eq!(r.io.frames_free(), total);
    }

    #[test]
    fn frames_without_usable_metadata_are_dropped_and_counted() {
        let mut r = rig();
        let total = r.io.frames_free();
        let meta = Meta {
            bd: 1 << 20,
            ..Meta::default()
        };
        assert!(r
            .io
            .inject(PortId::new(VM1), &meta.to_bytes(), &udp(mac(1), mac(2))));
        r.worker.run_batch(&mut r.io, Tick(1));
        assert_eq!(r.worker.counters().drop_bad_meta, 1);
        assert_eq!(r.io.frames_free(), total);
    }
}
