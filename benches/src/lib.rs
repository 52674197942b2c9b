//! Benchmark support for xvs: fixtures shared by the criterion benches.
//!
//! A [`Scenario`] is one worker's [`Engine`] with a pre-learned FDB, a ring
//! of receive buffers and a list of (source, destination) MAC pairs to cycle
//! through. [`Scenario::step`] puts the next pair's MACs into the next
//! buffer (standing in for the NIC's DMA: 12 bytes) and runs the frame
//! through learn + lookup + decide + rewrite. Frames are the 64-byte
//! IPv4/UDP frames of `xvs_dataplane::fixtures`.
//!
//! The clock does not advance during a run, so no refresh messages are sent
//! (in a real run a MAC costs at most one per second per worker).

use std::net::{IpAddr, Ipv4Addr};

use xvs_dataplane::bridge::{BridgeDomain, BridgeDomains};
use xvs_dataplane::decide::{Egress, FrameMeta, Ingress};
use xvs_dataplane::engine::{EncapConfig, Engine, TxFrames, Verdict};
use xvs_dataplane::fdb::{self, FdbConfig, FdbOwner, Tick};
use xvs_dataplane::fixtures::{in_buffer, mac, udp_frame, BENCH_FRAME, FRAME_SIZE, HEADROOM};
use xvs_dataplane::types::{Attachment, BdId, Location, MacAddr, PortId, Vlan, Vni};

/// The bridge domain of every scenario.
pub const BD: BdId = BdId(1);

/// Receive buffers in the ring.
const RING: usize = 64;

/// How many frames ahead of the one processed [`Scenario::step`] receives
/// and prefetches (less than the 64 receive buffers).
pub const AHEAD: usize = 16;

/// One benchmark scenario.
pub struct Scenario {
    engine: Engine,
    // Kept alive so the replica's channels stay connected.
    _owner: FdbOwner,
    bufs: Vec<Vec<u8>>,
    /// (frame metadata, source MAC, destination MAC) per step, cycled.
    pairs: Vec<(FrameMeta, MacAddr, MacAddr)>,
    tx: BenchTx,
    next: usize,
    /// Prefetch [`AHEAD`] frames ahead (default; `XVS_BENCH_PREFETCH=0`
    /// turns it off, to compare).
    prefetch: bool,
}

/// The transmit side of the benches: spare buffers for flood copies and a
/// record of the last frame sent — what a worker's own `TxFrames` keeps per
/// frame (an egress and a window), no more, so the figures are the engine's
/// and not a test recorder's (`MemTx` keeps a list of every send).
struct BenchTx {
    spares: Vec<Vec<u8>>,
    used: usize,
    /// Where the last frame went: egress, start and length.
    last: Option<(Egress, usize, usize)>,
}

impl BenchTx {
    fn new(spares: usize) -> BenchTx {
        BenchTx {
            spares: vec![vec![0; FRAME_SIZE]; spares],
            used: 0,
            last: None,
        }
    }

    #[inline]
    fn clear(&mut self) {
        self.used = 0;
    }
}

impl TxFrames for BenchTx {
    #[inline]
    fn spare(&mut self) -> Option<&mut [u8]> {
        self.spares.get_mut(self.used).map(|b| &mut b[..])
    }

    #[inline]
    fn send_spare(&mut self, egress: &Egress, start: usize, len: usize) {
        self.last = Some((*egress, start, len));
        self.used += 1;
    }

    #[inline]
    fn discard_spare(&mut self) {}

    #[inline]
    fn send_in_place(&mut self, egress: &Egress, start: usize, len: usize) {
        self.last = Some((*egress, start, len));
    }
}

/// The remote VTEP `i` (192.0.2.1 + i).
pub fn vtep(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8))
}

fn access() -> Attachment {
    Attachment::untagged(PortId(1))
}

fn trunk() -> Attachment {
    Attachment::tagged(PortId(2), Vlan::new(10).expect("VLAN 10"))
}

/// A small deterministic generator (xorshift64*) for spreading lookups.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

impl Scenario {
    fn build(vteps: usize, macs: usize) -> (Engine, FdbOwner) {
        let config = FdbConfig {
            inbox_capacity: macs + 16,
            ..FdbConfig::default()
        };
        let (owner, mut replicas, _control) = fdb::new(config, 1);
        let mut bd = BridgeDomain::new(BD, Vni::new(100));
        bd.attachments = vec![access(), trunk()];
        bd.flood = (0..vteps).map(vtep).collect();
        let mut bds = BridgeDomains::new();
        bds.insert(bd);
        let encap = EncapConfig {
            src_mac: MacAddr([0x02, 0xaa, 0, 0, 0, 1]),
            local_v4: Some(Ipv4Addr::new(192, 0, 2, 200)),
            ..EncapConfig::default()
        };
        let replica = replicas.pop().expect("one replica");
        let mut engine = Engine::new(replica, bds, encap);
        engine.replica_mut().reserve(macs + 16);
        for i in 0..vteps {
            engine.set_next_hop(vtep(i), Some(MacAddr([0x02, 0xbb, 0, 0, 0, i as u8])));
        }
        (engine, owner)
    }

    /// Learns `n` local MACs (on `at`) and `n` remote MACs (spread over
    /// `vteps` VTEPs) and lets the owner confirm them. Local MAC `i` is
    /// `mac(i)`, remote MAC `i` is `mac(1 << 24 | i)`.
    fn prefill(engine: &mut Engine, owner: &mut FdbOwner, n: usize, at: Attachment, vteps: usize) {
        let now = Tick(1);
        for i in 0..n {
            let r = engine.replica_mut();
            r.learn(BD, mac(i as u32), Location::Local(at), now);
            r.learn(BD, remote_mac(i), Location::Vtep(vtep(i % vteps)), now);
        }
        owner.process(now);
        engine.begin_batch(now);
        assert_eq!(engine.replica().len(), 2 * n, "prefill");
    }

    fn finish(
        engine: Engine,
        owner: FdbOwner,
        pairs: Vec<(FrameMeta, MacAddr, MacAddr)>,
        spares: usize,
    ) -> Scenario {
        assert!(pairs.len().is_power_of_two(), "{} pairs", pairs.len());
        let frame = udp_frame(mac(0), mac(1), 1000, BENCH_FRAME);
        let mut bufs: Vec<Vec<u8>> = (0..RING).map(|_| in_buffer(&frame)).collect();
        // The first frames are "received" before the first step.
        for (i, buf) in bufs.iter_mut().enumerate().take(AHEAD) {
            let (_, src, dst) = pairs[i % pairs.len()];
            buf[HEADROOM..HEADROOM + 6].copy_from_slice(&dst.0);
            buf[HEADROOM + 6..HEADROOM + 12].copy_from_slice(&src.0);
        }
        Scenario {
            engine,
            _owner: owner,
            bufs,
            pairs,
            tx: BenchTx::new(spares),
            next: 0,
            prefetch: std::env::var("XVS_BENCH_PREFETCH").map_or(true, |v| v != "0"),
        }
    }

    /// Local host → remote host, known unicast, VXLAN over IPv4. `macs`
    /// MACs in the FDB in all (half local, half remote); the frames cycle
    /// over 65 536 random pairs of them.
    pub fn known_unicast_encap(macs: usize) -> Scenario {
        let n = (macs / 2).max(1);
        let (mut engine, mut owner) = Self::build(8, 2 * n);
        Self::prefill(&mut engine, &mut owner, n, access(), 8);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let meta = FrameMeta {
            bd: BD,
            ingress: Ingress::Local(access()),
        };
        let pairs = (0..65_536.min(n * n))
            .map(|_| (meta, mac(rng.below(n) as u32), remote_mac(rng.below(n))))
            .collect();
        Self::finish(engine, owner, pairs, 0)
    }

    /// Remote host (decapsulated by XDP) → local host on a VLAN-tagged
    /// attachment: known unicast with a VLAN push. `macs` as above.
    pub fn decap_to_local(macs: usize) -> Scenario {
        let n = (macs / 2).max(1);
        let (mut engine, mut owner) = Self::build(8, 2 * n);
        Self::prefill(&mut engine, &mut owner, n, trunk(), 8);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let pairs = (0..65_536.min(n * n))
            .map(|_| {
                let r = rng.below(n);
                let meta = FrameMeta {
                    bd: BD,
                    ingress: Ingress::Vtep(vtep(r % 8)),
                };
                (meta, remote_mac(r), mac(rng.below(n) as u32))
            })
            .collect();
        Self::finish(engine, owner, pairs, 0)
    }

    /// A broadcast from a local host in a BD with `vteps` VTEPs on its flood
    /// list and one other (tagged) attachment removed: `vteps` copies, each
    /// encapsulated (`vteps - 1` into spare buffers, the last in place).
    pub fn flood(vteps: usize) -> Scenario {
        let (mut engine, mut owner) = Self::build(vteps, 2);
        if let Some(bd) = engine.bridge_domains_mut().get(BD).cloned() {
            let mut bd = bd;
            bd.attachments = vec![access()];
            engine.bridge_domains_mut().insert(bd);
        }
        Self::prefill(&mut engine, &mut owner, 1, access(), vteps.max(1));
        let meta = FrameMeta {
            bd: BD,
            ingress: Ingress::Local(access()),
        };
        Self::finish(
            engine,
            owner,
            vec![(meta, mac(0), MacAddr::BROADCAST)],
            vteps,
        )
    }

    /// Runs the next frame through the engine.
    ///
    /// Like a worker with a batch in hand, it first "receives" the frame
    /// [`AHEAD`] places later (writes its MACs into its buffer) and asks the
    /// engine to prefetch that frame's FDB slots, then processes the frame
    /// received [`AHEAD`] steps ago.
    #[inline]
    pub fn step(&mut self) -> Verdict {
        // `pairs.len()` is a power of two (or 1): no division per frame.
        let mask = self.pairs.len() - 1;
        let ahead = self.next.wrapping_add(AHEAD);
        let (meta, src, dst) = self.pairs[ahead & mask];
        let buf = &mut self.bufs[ahead % RING];
        buf[HEADROOM..HEADROOM + 6].copy_from_slice(&dst.0);
        buf[HEADROOM + 6..HEADROOM + 12].copy_from_slice(&src.0);
        if self.prefetch {
            self.engine.prefetch(meta.bd, &buf[HEADROOM..]);
        }
        let meta = self.pairs[self.next & mask].0;
        let buf = &mut self.bufs[self.next % RING];
        self.next = self.next.wrapping_add(1);
        self.tx.clear();
        self.engine
            .process(&meta, buf, HEADROOM, BENCH_FRAME, &mut self.tx)
    }

    /// Where the last frame sent went: egress, start and length in its
    /// buffer.
    pub fn last_sent(&self) -> Option<(Egress, usize, usize)> {
        self.tx.last
    }

    /// The engine, e.g. to read its counters after a run.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Remote MAC `i`: `mac(1 << 24 | i)`.
pub fn remote_mac(i: usize) -> MacAddr {
    mac(1 << 24 | i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_forwards_without_drops() {
        for (mut s, sent) in [
            (Scenario::known_unicast_encap(1), 1),
            (Scenario::known_unicast_encap(4096), 1),
            (Scenario::decap_to_local(4096), 1),
            (Scenario::flood(8), 8),
        ] {
            for _ in 0..1000 {
                let v = s.step();
                assert!(v.consumed);
                assert_eq!(v.sent, sent);
            }
            let (_, start, len) = s.last_sent().expect("a frame sent");
            assert!(start < HEADROOM && len > BENCH_FRAME, "{start} {len}");
            let c = s.engine().counters();
            assert_eq!(c.drops(), 0, "{c:?}");
            assert_eq!(c.learned + c.moved + c.learn_queue_full, 0, "{c:?}");
        }
    }
}
