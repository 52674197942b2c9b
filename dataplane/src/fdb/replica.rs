//! A worker's replica of the FDB: read and written by that worker alone,
//! without locks; kept in step with the owner over channels.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use hashbrown::{HashMap, HashSet};

use super::slots::SlotTable;
use super::{EntryKind, FdbKey, Tick, ToOwner, ToReplica};
use crate::types::{Attachment, BdId, Location, MacAddr, PortId};

/// One replica entry: 24 bytes, so that with its 8-byte key a table slot is
/// 32 bytes and never straddles two cache lines. What only flapping MACs
/// need (the end of their hold) lives apart, in [`FdbReplica::held`].
#[derive(Clone, Copy, Debug)]
struct Entry {
    loc: Location,
    kind: EntryKind,
    /// Last time this worker told the owner about the MAC: the low 32 bits
    /// of its [`Tick`] (milliseconds), compared with wrapping arithmetic —
    /// exact for the refresh interval, which is far below the 49 days the
    /// counter takes to wrap.
    last_sent: u32,
}

/// What the empty slots of the table hold (never read as an entry).
const FILLER: Entry = Entry {
    loc: Location::Local(Attachment::untagged(PortId(0))),
    kind: EntryKind::Learned,
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
                if let Some(e) = self.table.get_mut(&key) {
                    e.loc = loc;
                    e.kind = kind;
                } else {
                    self.table.insert(
                        key,
                        Entry {
                            loc,
                            kind,
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
                self.table.remove(&key);
                self.held.remove(&key);
            }
            ToReplica::Flush { bd } => {
                self.table
                    .retain(|k, e| e.kind == EntryKind::Static || bd.is_some_and(|b| k.bd != b));
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
    #[inline]
    pub fn lookup(&self, bd: BdId, mac: MacAddr) -> Option<Location> {
        self.table.get(&FdbKey::new(bd, mac)).map(|e| e.loc)
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
            Some(e) if e.loc == loc => {
                // Statics never age: nothing to refresh.
                let since = u64::from(low(now).wrapping_sub(e.last_sent));
                if e.kind == EntryKind::Static || since < self.refresh_ms {
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
                if e.kind == EntryKind::Static {
                    return LearnOutcome::Static;
                }
                if self.held.get(&key).is_some_and(|&until| now < until) {
                    return LearnOutcome::Held;
                }
                let previous = *e;
                e.loc = loc;
                e.last_sent = low(now);
                if Self::send(&self.to_owner, self.worker, key, loc, now) {
                    LearnOutcome::Moved
                } else {
                    *e = previous;
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
        self.table.insert(
            key,
            Entry {
                loc,
                kind: EntryKind::Learned,
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
        let mut v: Vec<_> = self.table.iter().map(|(k, e)| (k, e.loc, e.kind)).collect();
        v.sort_by_key(|(k, _, _)| *k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_with_its_packed_key_fits_in_32_bytes() {
        // A table slot (8-byte packed key + entry) must not straddle cache
        // lines; docs/fdb.md quotes this footprint: keep them in step.
        assert!(std::mem::size_of::<(u64, Entry)>() <= 32);
    }
}
