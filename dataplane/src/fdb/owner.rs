//! The FDB owner: the one thread that changes the authoritative table and
//! tells the replicas.

use std::net::IpAddr;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::replica::FdbReplica;
use super::table::{count_vtep, OwnerEntry, Table};
use super::verdict::{judge, BdFill, LearnVerdict, Preview};
use super::{
    ControlReply, ControlRequest, EntryKind, FdbConfig, FdbEntry, FdbError, FdbKey, FdbStats, Tick,
    ToOwner, ToReplica,
};
use crate::ratelog::RateLimit;
use crate::types::{BdId, Location};

/// The owner of the authoritative FDB.
///
/// Run it on its own thread with [`run`](Self::run), or drive it by hand
/// ([`process`](Self::process), [`age`](Self::age) and the control methods)
/// in tests and single-threaded tools.
pub struct FdbOwner {
    config: FdbConfig,
    table: Table,
    inbox: Receiver<ToOwner>,
    replicas: Vec<Sender<ToReplica>>,
    stats: FdbStats,
    flap_log: RateLimit,
    /// "Bridge domain at its MAC cap" lines (a MAC flood sends many).
    cap_log: RateLimit,
}

/// A cloneable handle for control operations on a running owner; each call
/// is a request/response over the owner's channel.
#[derive(Clone)]
pub struct FdbControl {
    tx: Sender<ToOwner>,
}

pub(super) fn build(config: FdbConfig, workers: usize) -> (FdbOwner, Vec<FdbReplica>, FdbControl) {
    let (to_owner, inbox) = bounded(config.inbox_capacity.max(1));
    let mut senders = Vec::with_capacity(workers);
    let mut replicas = Vec::with_capacity(workers);
    for worker in 0..workers {
        // Unbounded: the owner never blocks on a slow worker, and never drops
        // a change (replicas must converge). Workers drain once per batch.
        let (tx, rx) = unbounded();
        senders.push(tx);
        replicas.push(FdbReplica::new(
            worker,
            to_owner.clone(),
            rx,
            config.refresh_interval,
        ));
    }
    let table = Table {
        default_max: config.default_max_macs,
        ..Table::default()
    };
    let owner = FdbOwner {
        config,
        table,
        inbox,
        replicas: senders,
        stats: FdbStats::default(),
        flap_log: RateLimit::default(),
        cap_log: RateLimit::default(),
    };
    (owner, replicas, FdbControl { tx: to_owner })
}

impl FdbOwner {
    /// Handles every message waiting in the inbox; returns how many.
    pub fn process(&mut self, now: Tick) -> usize {
        let mut n = 0;
        loop {
            match self.inbox.try_recv() {
                Ok(msg) => {
                    self.handle(msg, now);
                    n += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return n,
            }
        }
    }

    /// Runs until every replica and control handle is dropped: handles
    /// messages as they come and ages the table once a second. `clock` gives
    /// the current tick. Returns the final counters.
    pub fn run(mut self, mut clock: impl FnMut() -> Tick) -> FdbStats {
        let mut next_age = clock();
        loop {
            match self.inbox.recv_timeout(Duration::from_millis(100)) {
                Ok(msg) => {
                    let now = clock();
                    self.handle(msg, now);
                    self.process(now);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = clock();
            if now >= next_age {
                self.age(now);
                next_age = now.after(Duration::from_secs(1));
            }
        }
        self.stats()
    }

    fn handle(&mut self, msg: ToOwner, now: Tick) {
        match msg {
            ToOwner::Learn {
                key,
                loc,
                worker,
                now: seen,
            } => self.learn(key, loc, worker, seen.max(now)),
            ToOwner::Control(req, reply) => {
                let answer = match req {
                    ControlRequest::Show(bd) => ControlReply::Entries(self.show(bd, now)),
                    ControlRequest::Flush(bd) => ControlReply::Count(self.flush(bd)),
                    ControlRequest::StaticAdd(key, loc) => {
                        ControlReply::Done(self.static_add(key, loc, now))
                    }
                    ControlRequest::StaticDel(key) => ControlReply::Done(self.static_del(key)),
                    ControlRequest::SetMaxMacs(bd, max) => {
                        self.set_max_macs(bd, max);
                        ControlReply::Done(Ok(()))
                    }
                    ControlRequest::Stats => ControlReply::Stats(self.stats()),
                    ControlRequest::Preview { src, loc, dst } => {
                        ControlReply::Preview(self.preview(src, loc, dst, now))
                    }
                    ControlRequest::Fills => ControlReply::Fills(self.fills()),
                    ControlRequest::Vteps => ControlReply::Vteps(self.remote_vteps()),
                };
                // The requester may have given up waiting; nothing to undo.
                let _ = reply.send(answer);
            }
        }
    }

    fn broadcast(&self, msg: ToReplica) {
        for tx in &self.replicas {
            // A dropped replica (worker gone) simply stops receiving.
            let _ = tx.send(msg);
        }
    }

    fn tell(&self, worker: usize, msg: ToReplica) {
        if let Some(tx) = self.replicas.get(worker) {
            let _ = tx.send(msg);
        }
    }

    fn upsert_msg(key: FdbKey, e: &OwnerEntry) -> ToReplica {
        ToReplica::Upsert {
            key,
            loc: e.loc,
            kind: e.kind,
            held_until: e.held_until,
        }
    }

    /// Broadcasts a BD's full flag when it differs from `was_full`.
    fn note_fullness(&self, bd: BdId, was_full: bool) {
        let full = self.table.is_full(bd);
        if full != was_full {
            self.broadcast(ToReplica::BdFull { bd, full });
        }
    }

    /// A bridge domain reached its cap, or refused a MAC for it: a warning,
    /// at most one per [`RateLimit`] interval, saying how many such events
    /// it stands for. (Once the workers know the BD is full they refuse new
    /// MACs themselves and count them as `learn_cap_reached`.)
    fn log_cap(&mut self, bd: BdId, now: Tick) {
        if let Some(suppressed) = self.cap_log.allow(now.0) {
            tracing::warn!(
                bd = bd.0,
                max = self.table.max(bd).unwrap_or(0),
                cap_rejects = self.stats.cap_rejects,
                suppressed,
                "bridge domain at its MAC cap: new source MACs are flooded, not learned \
                 (rate-limited log: `suppressed` cap events since the last line)"
            );
        }
    }

    /// A worker saw `key` at `loc`: acts on the [`LearnVerdict`].
    fn learn(&mut self, key: FdbKey, loc: Location, worker: usize, now: Tick) {
        let verdict = judge(&self.table, &self.config, key, loc, now);
        match verdict {
            LearnVerdict::Learn => {
                let e = OwnerEntry::new(loc, EntryKind::Learned, now);
                self.table.insert(key, e);
                self.stats.learned += 1;
                self.broadcast(Self::upsert_msg(key, &e));
                self.note_fullness(key.bd, false);
                if self.table.is_full(key.bd) {
                    self.log_cap(key.bd, now);
                }
            }
            LearnVerdict::CapReached { .. } => {
                self.stats.cap_rejects += 1;
                // Undo the worker's local guess.
                self.tell(worker, ToReplica::Remove { key });
                self.log_cap(key.bd, now);
            }
            LearnVerdict::StaticHere => {}
            LearnVerdict::Static { .. } | LearnVerdict::Held { .. } => {
                if matches!(verdict, LearnVerdict::Static { .. }) {
                    self.stats.static_rejects += 1;
                } else {
                    self.stats.held_rejects += 1;
                }
                // Put the worker's local guess back where the entry is.
                if let Some(e) = self.table.entries.get(&key) {
                    let msg = Self::upsert_msg(key, e);
                    self.tell(worker, msg);
                }
            }
            LearnVerdict::Refresh => {
                if let Some(e) = self.table.entries.get_mut(&key) {
                    e.last_seen = now;
                }
                self.stats.refreshes += 1;
            }
            LearnVerdict::Flap { .. } | LearnVerdict::Move { .. } => {
                let hold = self.config.hold_time;
                let move_limit = self.config.move_limit;
                let Some(e) = self.table.entries.get_mut(&key) else {
                    return;
                };
                if now.millis_since(e.window_start) >= 1000 {
                    e.window_start = now;
                    e.window_moves = 0;
                }
                e.window_moves += 1;
                if let LearnVerdict::Flap { .. } = verdict {
                    e.held_until = now.after(hold);
                    e.window_moves = 0;
                    e.window_start = e.held_until;
                    self.stats.flaps += 1;
                    if let Some(suppressed) = self.flap_log.allow(now.0) {
                        tracing::warn!(
                            bd = key.bd.0,
                            mac = %key.mac,
                            at = %e.loc,
                            to = %loc,
                            hold_ms = hold.as_millis() as u64,
                            flaps = self.stats.flaps,
                            suppressed,
                            "MAC flapping: more than {move_limit} moves in a second, held \
                             (rate-limited log: `suppressed` other flaps since the last line)"
                        );
                    }
                } else {
                    count_vtep(&mut self.table.vteps, e.loc, false);
                    count_vtep(&mut self.table.vteps, loc, true);
                    e.loc = loc;
                    e.last_seen = now;
                    e.moves += 1;
                    self.stats.moves += 1;
                }
                let msg = Self::upsert_msg(key, e);
                self.broadcast(msg);
            }
        }
    }

    /// What the owner would make of a frame from `loc` with source `src`
    /// and destination `dst` at `now`, changing nothing (no learning, no
    /// refresh, no counter): for `xvsctl trace`.
    pub fn preview(&self, src: FdbKey, loc: Location, dst: FdbKey, now: Tick) -> Preview {
        let entry = |key: FdbKey| {
            self.table
                .entries
                .get(&key)
                .map(|e| Self::entry_row(key, e, now))
        };
        Preview {
            learn: judge(&self.table, &self.config, src, loc, now),
            src: entry(src),
            dst: entry(dst),
            fill: self.fill(src.bd),
        }
    }

    /// Entries, learned entries and cap of one bridge domain.
    pub fn fill(&self, bd: BdId) -> BdFill {
        BdFill {
            bd,
            entries: self.table.entries.keys().filter(|k| k.bd == bd).count() as u64,
            learned: self.learned_in(bd),
            max: self.table.max(bd),
        }
    }

    /// [`fill`](Self::fill) of every bridge domain that has entries or a
    /// cap, sorted by bridge domain.
    pub fn fills(&self) -> Vec<BdFill> {
        let mut counts: std::collections::BTreeMap<BdId, u64> = self
            .table
            .bds
            .iter()
            .filter(|(_, s)| s.max.is_some() || s.learned > 0)
            .map(|(b, _)| (*b, 0))
            .collect();
        for k in self.table.entries.keys() {
            *counts.entry(k.bd).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(bd, entries)| BdFill {
                bd,
                entries,
                learned: self.learned_in(bd),
                max: self.table.max(bd),
            })
            .collect()
    }

    fn entry_row(key: FdbKey, e: &OwnerEntry, now: Tick) -> FdbEntry {
        FdbEntry {
            bd: key.bd,
            mac: key.mac,
            loc: e.loc,
            kind: e.kind,
            idle_ms: match e.kind {
                EntryKind::Learned => now.millis_since(e.last_seen),
                EntryKind::Static => 0,
            },
            held: now < e.held_until,
            moves: e.moves,
        }
    }

    /// The remote VTEPs entries (learned or static) point at, sorted: kept
    /// as counts as entries come, move and go, so this costs the number of
    /// VTEPs, not of entries.
    pub fn remote_vteps(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.table.vteps.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Removes learned entries not reported for [`FdbConfig::ageing`];
    /// returns how many.
    pub fn age(&mut self, now: Tick) -> usize {
        let ageing = self.config.ageing.as_millis() as u64;
        let mut expired = Vec::new();
        for (key, e) in &self.table.entries {
            if e.kind == EntryKind::Learned && now.millis_since(e.last_seen) >= ageing {
                expired.push(*key);
            }
        }
        for key in &expired {
            let was_full = self.table.is_full(key.bd);
            self.table.remove(key);
            self.broadcast(ToReplica::Remove { key: *key });
            self.note_fullness(key.bd, was_full);
        }
        self.stats.aged += expired.len() as u64;
        expired.len()
    }

    /// The entries of one BD (or all), sorted by BD then MAC.
    pub fn show(&self, bd: Option<BdId>, now: Tick) -> Vec<FdbEntry> {
        let mut v: Vec<FdbEntry> = self
            .table
            .entries
            .iter()
            .filter(|(k, _)| bd.is_none_or(|b| k.bd == b))
            .map(|(k, e)| Self::entry_row(*k, e, now))
            .collect();
        v.sort_by_key(|e| (e.bd, e.mac));
        v
    }

    /// Removes the learned entries of one BD (or all); returns how many.
    pub fn flush(&mut self, bd: Option<BdId>) -> usize {
        let keys: Vec<FdbKey> = self
            .table
            .entries
            .iter()
            .filter(|(k, e)| e.kind == EntryKind::Learned && bd.is_none_or(|b| k.bd == b))
            .map(|(k, _)| *k)
            .collect();
        let mut bds: Vec<(BdId, bool)> = Vec::new();
        for k in &keys {
            if !bds.iter().any(|(b, _)| *b == k.bd) {
                bds.push((k.bd, self.table.is_full(k.bd)));
            }
            self.table.remove(k);
        }
        self.broadcast(ToReplica::Flush { bd });
        for (b, was_full) in bds {
            self.note_fullness(b, was_full);
        }
        self.stats.flushed += keys.len() as u64;
        keys.len()
    }

    /// Adds (or replaces) a static entry. It replaces a learned entry of the
    /// same MAC, never ages, and learning never moves it.
    pub fn static_add(&mut self, key: FdbKey, loc: Location, now: Tick) -> Result<(), FdbError> {
        if !key.mac.is_learnable() {
            return Err(FdbError::NotUnicast(key.mac));
        }
        let was_full = self.table.is_full(key.bd);
        let e = OwnerEntry::new(loc, EntryKind::Static, now);
        self.table.insert(key, e);
        self.broadcast(Self::upsert_msg(key, &e));
        self.note_fullness(key.bd, was_full);
        Ok(())
    }

    /// Deletes a static entry.
    pub fn static_del(&mut self, key: FdbKey) -> Result<(), FdbError> {
        match self.table.entries.get(&key) {
            None => Err(FdbError::NotFound {
                bd: key.bd,
                mac: key.mac,
            }),
            Some(e) if e.kind != EntryKind::Static => Err(FdbError::NotStatic {
                bd: key.bd,
                mac: key.mac,
            }),
            Some(_) => {
                self.table.remove(&key);
                self.broadcast(ToReplica::Remove { key });
                Ok(())
            }
        }
    }

    /// Sets a BD's cap of learned MACs (`None`: unlimited). Lowering it
    /// below the current count removes nothing: new MACs are refused until
    /// ageing or a flush brings the count under the cap.
    pub fn set_max_macs(&mut self, bd: BdId, max: Option<u32>) {
        let was_full = self.table.is_full(bd);
        self.table.bd(bd).max = max;
        self.note_fullness(bd, was_full);
    }

    /// Learned entries now in `bd`.
    pub fn learned_in(&self, bd: BdId) -> u32 {
        self.table.bds.get(&bd).map_or(0, |s| s.learned)
    }

    /// Every entry as (key, location, kind), sorted by key: the same shape
    /// as [`FdbReplica::snapshot`], to compare them.
    pub fn snapshot(&self) -> Vec<(FdbKey, Location, EntryKind)> {
        let mut v: Vec<_> = self
            .table
            .entries
            .iter()
            .map(|(k, e)| (*k, e.loc, e.kind))
            .collect();
        v.sort_by_key(|(k, _, _)| *k);
        v
    }

    /// The counters.
    pub fn stats(&self) -> FdbStats {
        FdbStats {
            entries: self.table.entries.len() as u64,
            ..self.stats
        }
    }
}

impl FdbControl {
    fn ask(&self, req: ControlRequest) -> Result<ControlReply, FdbError> {
        let (tx, rx) = bounded(1);
        self.tx
            .send(ToOwner::Control(req, tx))
            .map_err(|_| FdbError::OwnerGone)?;
        rx.recv().map_err(|_| FdbError::OwnerGone)
    }

    /// The entries of one BD (or all), sorted.
    pub fn show(&self, bd: Option<BdId>) -> Result<Vec<FdbEntry>, FdbError> {
        match self.ask(ControlRequest::Show(bd))? {
            ControlReply::Entries(v) => Ok(v),
            _ => unreachable!("show answers with entries"),
        }
    }

    /// Removes the learned entries of one BD (or all); returns how many.
    pub fn flush(&self, bd: Option<BdId>) -> Result<usize, FdbError> {
        match self.ask(ControlRequest::Flush(bd))? {
            ControlReply::Count(n) => Ok(n),
            _ => unreachable!("flush answers with a count"),
        }
    }

    /// Adds or replaces a static entry.
    pub fn static_add(&self, key: FdbKey, loc: Location) -> Result<(), FdbError> {
        match self.ask(ControlRequest::StaticAdd(key, loc))? {
            ControlReply::Done(r) => r,
            _ => unreachable!("static add answers done"),
        }
    }

    /// Deletes a static entry.
    pub fn static_del(&self, key: FdbKey) -> Result<(), FdbError> {
        match self.ask(ControlRequest::StaticDel(key))? {
            ControlReply::Done(r) => r,
            _ => unreachable!("static del answers done"),
        }
    }

    /// Sets a BD's cap of learned MACs.
    pub fn set_max_macs(&self, bd: BdId, max: Option<u32>) -> Result<(), FdbError> {
        match self.ask(ControlRequest::SetMaxMacs(bd, max))? {
            ControlReply::Done(r) => r,
            _ => unreachable!("set max answers done"),
        }
    }

    /// The owner's counters.
    pub fn stats(&self) -> Result<FdbStats, FdbError> {
        match self.ask(ControlRequest::Stats)? {
            ControlReply::Stats(s) => Ok(s),
            _ => unreachable!("stats answers with stats"),
        }
    }

    /// What the owner would make of a frame from `loc` with source `src` and
    /// destination `dst`, changing nothing ([`FdbOwner::preview`]).
    pub fn preview(&self, src: FdbKey, loc: Location, dst: FdbKey) -> Result<Preview, FdbError> {
        match self.ask(ControlRequest::Preview { src, loc, dst })? {
            ControlReply::Preview(p) => Ok(p),
            _ => unreachable!("preview answers with a preview"),
        }
    }

    /// The remote VTEPs entries point at ([`FdbOwner::remote_vteps`]).
    pub fn remote_vteps(&self) -> Result<Vec<IpAddr>, FdbError> {
        match self.ask(ControlRequest::Vteps)? {
            ControlReply::Vteps(v) => Ok(v),
            _ => unreachable!("vteps answers with VTEPs"),
        }
    }

    /// Entries, learned entries and cap per bridge domain
    /// ([`FdbOwner::fills`]).
    pub fn fills(&self) -> Result<Vec<BdFill>, FdbError> {
        match self.ask(ControlRequest::Fills)? {
            ControlReply::Fills(v) => Ok(v),
            _ => unreachable!("fills answers with fills"),
        }
    }
}
