//! A worker's replica of the FDB: read and written by that worker alone,
//! without locks; kept in step with the owner over channels.

use std::net::IpAddr;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use hashbrown::{HashMap, HashSet};

use super::place::{self, Place, VtepIndex, STATIC};
use super::slots::SlotTable;
use super::{EntryKind, FdbKey, Tick, ToOwner, ToReplica};
use crate::types::{BdId, Location, MacAddr};

/// One replica entry: 8 bytes, so that with its 8-byte key a table slot is
/// 16 bytes (four to a cache line). What only flapping MACs need (the end
/// of their hold) lives apart, in [`FdbReplica::held`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Where the MAC lives, packed ([`place`]), with [`STATIC`] set for a
    /// static entry.
    loc: u32,
    /// Last time this worker told the owner about the MAC: the low 32 bits
    /// of its [`Tick`] (milliseconds), compared with wrapping arithmetic —
    /// exact for the refresh interval, which is far below the 49 days the
    /// counter takes to wrap.
    last_sent: u32,
}

impl Entry {
    #[inline(always)]
    fn is_static(&self) -> bool {
        self.loc & STATIC != 0
    }

    #[inline(always)]
    fn kind(&self) -> EntryKind {
        if self.is_static() {
            EntryKind::Static
        } else {
            EntryKind::Learned
        }
    }
}

/// The packed location with the kind bit.
fn with_kind(p: u32, kind: EntryKind) -> u32 {
    match kind {
        EntryKind::Static => p | STATIC,
        EntryKind::Learned => p,
    }
}

/// What the empty slots of the table hold (never read as an entry).
const FILLER: Entry = Entry {
    loc: 0,
    last_sent: 0,
};

/// The low 32 bits of a tick, as [`Entry::last_sent`] keeps them.
#[inline(always)]
fn low(t: Tick) -> u32 {
    t.0 as u32
}

/// What [`FdbReplica::learn`] did with a source MAC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LearnOutcome {
    /// Known at this location; nothing sent.
    Known,
    /// Known at this location; a refresh was sent to the owner.
    Refreshed,
    /// New: applied locally and sent to the owner.
    Learned,
    /// Moved: applied locally and sent to the owner.
    Moved,
    /// A static entry puts the MAC elsewhere: not moved.
    Static,
    /// Held by flap damping: not moved.
    Held,
    /// New, but the BD is at its cap: not learned.
    CapReached,
    /// The owner's channel is full: the local change was undone.
    QueueFull,
}

/// A worker's replica of the FDB.
pub struct FdbReplica {
    worker: usize,
    table: SlotTable<Entry>,
    /// The numbers the entries' remote VTEPs go by.
    vteps: VtepIndex,
    /// Entries held by flap damping: not moved while `now < held_until`.
    /// Only flapping MACs are here (the owner says which), so the per-frame
    /// path never reads it.
    held: HashMap<FdbKey, Tick>,
    full: HashSet<BdId>,
    to_owner: Sender<ToOwner>,
    inbox: Receiver<ToReplica>,
    refresh_ms: u64,
}

impl FdbReplica {
    pub(super) fn new(
        worker: usize,
        to_owner: Sender<ToOwner>,
        inbox: Receiver<ToReplica>,
        refresh: Duration,
    ) -> FdbReplica {
        FdbReplica {
            worker,
            table: SlotTable::new(FILLER),
            vteps: VtepIndex::default(),
            held: HashMap::new(),
            full: HashSet::new(),
            to_owner,
            inbox,
            refresh_ms: refresh.as_millis() as u64,
        }
    }

    /// The worker index this replica belongs to.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Applies every change the owner has sent; returns how many. Call once
    /// per batch.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(msg) = self.inbox.try_recv() {
            self.apply(msg);
            n += 1;
        }
        n
    }

    fn apply(&mut self, msg: ToReplica) {
        match msg {
            ToReplica::Upsert {
                key,
                loc,
                kind,
                held_until,
            } => {
                // Acquire before releasing: a VTEP that stays keeps its number.
                let p = with_kind(self.vteps.acquire(loc), kind);
                if let Some(e) = self.table.get_mut(&key) {
                    self.vteps.release(e.loc);
                    e.loc = p;
                } else {
                    self.table.insert(
                        key,
                        Entry {
                            loc: p,
                            last_sent: 0,
                        },
                    );
                }
                if held_until > Tick(0) {
                    self.held.insert(key, held_until);
                } else {
                    self.held.remove(&key);
                }
            }
            ToReplica::Remove { key } => {
                if let Some(e) = self.table.remove(&key) {
                    self.vteps.release(e.loc);
                }
                self.held.remove(&key);
            }
            ToReplica::Flush { bd } => {
                let vteps = &mut self.vteps;
                self.table.retain(|k, e| {
                    let keep = e.is_static() || bd.is_some_and(|b| k.bd != b);
                    if !keep {
                        vteps.release(e.loc);
                    }
                    keep
                });
                let table = &self.table;
                self.held.retain(|k, _| table.get(k).is_some());
            }
            ToReplica::BdFull { bd, full } => {
                if full {
                    self.full.insert(bd);
                } else {
                    self.full.remove(&bd);
                }
            }
        }
    }

    /// Starts loading the table slot of `mac` in `bd` into the cache
    /// without waiting for it, so that a later [`lookup`](Self::lookup) or
    /// [`learn`](Self::learn) of it finds it there. A worker calls this for
    /// the frames of a batch before processing them: their cache misses then
    /// overlap instead of coming one after another.
    #[inline(always)]
    pub fn prefetch(&self, bd: BdId, mac: MacAddr) {
        self.table.prefetch(FdbKey::new(bd, mac).packed());
    }

    /// Where `mac` lives in `bd`, if known.
    pub fn lookup(&self, bd: BdId, mac: MacAddr) -> Option<Location> {
        self.table
            .get(&FdbKey::new(bd, mac))
            .map(|e| self.vteps.location(e.loc))
    }

    /// Where `mac` lives in `bd`, if known, as the replica stores it: a
    /// remote VTEP by its number ([`vtep_addr`](Self::vtep_addr) gives its
    /// address). The engine's per-frame lookup.
    #[inline(always)]
    pub fn lookup_place(&self, bd: BdId, mac: MacAddr) -> Option<Place> {
        self.table
            .get(&FdbKey::new(bd, mac))
            .map(|e| place::unpack(e.loc))
    }

    /// The address of the VTEP an entry calls number `i`.
    #[inline(always)]
    pub fn vtep_addr(&self, i: u32) -> Option<IpAddr> {
        self.vteps.addr(i)
    }

    /// The number the entries give VTEP `ip`, if any entry points at it.
    pub fn vtep_number(&self, ip: IpAddr) -> Option<u32> {
        self.vteps.find(ip)
    }

    /// Every VTEP number in use and its address.
    pub fn vtep_numbers(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.vteps.live()
    }

    /// How many VTEP numbers were ever given out (live or free): the length
    /// a table indexed by number needs. Never more than the most entries
    /// the replica held at once.
    pub fn vtep_capacity(&self) -> usize {
        self.vteps.capacity()
    }

    /// Whether VTEP numbers were given out (anew or reused) since the last
    /// [`drain_new_vteps`](Self::drain_new_vteps).
    #[inline(always)]
    pub fn has_new_vteps(&self) -> bool {
        self.vteps.has_new()
    }

    /// Calls `f` with each VTEP number given out (anew or reused, and still
    /// in use) since the last call, and its address: whoever keeps data per
    /// number (the engine's templates) updates it here, before any frame
    /// can find the number in an entry it looks up.
    pub fn drain_new_vteps(&mut self, f: impl FnMut(u32, IpAddr)) {
        self.vteps.drain_new(f);
    }

    /// Whether packed location `p` (of an entry) is `loc`.
    #[inline(always)]
    fn is_at(vteps: &VtepIndex, p: u32, loc: Location) -> bool {
        match loc {
            Location::Local(a) => p & !STATIC == place::pack_local(a),
            Location::Vtep(ip) => vteps.is(p, ip),
        }
    }

    /// Records that `mac` (a valid source: the caller has checked
    /// [`MacAddr::is_learnable`]) was seen in `bd` at `loc` at `now`.
    ///
    /// A new or moved MAC is applied here at once and reported to the owner;
    /// a known one is refreshed with the owner at most once per refresh
    /// interval. Never blocks, never allocates once the table has grown.
    #[inline]
    pub fn learn(&mut self, bd: BdId, mac: MacAddr, loc: Location, now: Tick) -> LearnOutcome {
        let key = FdbKey::new(bd, mac);
        match self.table.get_mut(&key) {
            Some(e) if Self::is_at(&self.vteps, e.loc, loc) => {
                // Statics never age: nothing to refresh.
                let since = u64::from(low(now).wrapping_sub(e.last_sent));
                if e.is_static() || since < self.refresh_ms {
                    return LearnOutcome::Known;
                }
                // A refresh changes nothing but the owner's last-seen time:
                // when it cannot be sent, the next one a refresh interval
                // later will do (ageing is minutes), so do not retry per frame.
                e.last_sent = low(now);
                if Self::send(&self.to_owner, self.worker, key, loc, now) {
                    LearnOutcome::Refreshed
                } else {
                    LearnOutcome::QueueFull
                }
            }
            Some(e) => {
                if e.is_static() {
                    return LearnOutcome::Static;
                }
                if self.held.get(&key).is_some_and(|&until| now < until) {
                    return LearnOutcome::Held;
                }
                if Self::send(&self.to_owner, self.worker, key, loc, now) {
                    let p = self.vteps.acquire(loc);
                    self.vteps.release(e.loc);
                    e.loc = p;
                    e.last_sent = low(now);
                    LearnOutcome::Moved
                } else {
                    LearnOutcome::QueueFull
                }
            }
            None => self.learn_new(key, loc, now),
        }
    }

    #[cold]
    fn learn_new(&mut self, key: FdbKey, loc: Location, now: Tick) -> LearnOutcome {
        if self.full.contains(&key.bd) {
            return LearnOutcome::CapReached;
        }
        if !Self::send(&self.to_owner, self.worker, key, loc, now) {
            return LearnOutcome::QueueFull;
        }
        let p = self.vteps.acquire(loc);
        self.table.insert(
            key,
            Entry {
                loc: p,
                last_sent: low(now),
            },
        );
        LearnOutcome::Learned
    }

    fn send(tx: &Sender<ToOwner>, worker: usize, key: FdbKey, loc: Location, now: Tick) -> bool {
        match tx.try_send(ToOwner::Learn {
            key,
            loc,
            worker,
            now,
        }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Entries in the replica.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the replica has no entries.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Reserves room for `n` more entries, so learning does not allocate.
    pub fn reserve(&mut self, n: usize) {
        self.table.reserve(n);
    }

    /// Every entry as (key, location, kind), sorted by key: for tests and
    /// debugging, not the per-packet path.
    pub fn snapshot(&self) -> Vec<(FdbKey, Location, EntryKind)> {
        let mut v: Vec<_> = self
            .table
            .iter()
            .map(|(k, e)| (k, self.vteps.location(e.loc), e.kind()))
            .collect();
        v.sort_by_key(|(k, _, _)| *k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_with_its_packed_key_fits_in_16_bytes() {
        // A table slot (8-byte packed key + entry) is 16 bytes, four to a
        // cache line; docs/fdb.md quotes this footprint: keep them in step.
        assert_eq!(std::mem::size_of::<(u64, Entry)>(), 16);
    }
}
