//! The owner's authoritative table: entries with their ageing and damping
//! state, and per-BD accounting of learned MACs against the cap.

use std::net::IpAddr;

use hashbrown::HashMap;

use super::{EntryKind, FdbKey, Tick};
use crate::types::{BdId, Location, MacAddr};

/// One entry of the owner's table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnerEntry {
    pub loc: Location,
    pub kind: EntryKind,
    /// Last time a worker reported the MAC (learned entries).
    pub last_seen: Tick,
    /// Moves since the entry was created.
    pub moves: u64,
    /// Start of the current one-second damping window.
    pub window_start: Tick,
    /// Moves within the current damping window.
    pub window_moves: u32,
    /// While `now < held_until` the entry does not move.
    pub held_until: Tick,
}

impl OwnerEntry {
    pub fn new(loc: Location, kind: EntryKind, now: Tick) -> OwnerEntry {
        OwnerEntry {
            loc,
            kind,
            last_seen: now,
            moves: 0,
            window_start: now,
            window_moves: 0,
            held_until: Tick(0),
        }
    }
}

/// Per-BD accounting.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BdState {
    /// Learned entries (statics are not counted).
    pub learned: u32,
    /// The cap; `None` for unlimited.
    pub max: Option<u32>,
}

impl BdState {
    pub fn is_full(&self) -> bool {
        self.max.is_some_and(|m| self.learned >= m)
    }
}

/// The owner's table and accounting.
#[derive(Default)]
pub(crate) struct Table {
    pub entries: HashMap<FdbKey, OwnerEntry>,
    pub bds: HashMap<BdId, BdState>,
    pub default_max: Option<u32>,
    /// Remote VTEPs that entries point at, with how many entries do: the
    /// next-hop thread reads these instead of every entry.
    pub vteps: HashMap<IpAddr, u32>,
}

/// Counts one more (`more`) or one less entry at `loc` in `vteps`.
pub(crate) fn count_vtep(vteps: &mut HashMap<IpAddr, u32>, loc: Location, more: bool) {
    let Location::Vtep(ip) = loc else {
        return;
    };
    if more {
        *vteps.entry(ip).or_insert(0) += 1;
    } else if let Some(n) = vteps.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            vteps.remove(&ip);
        }
    }
}

impl Table {
    pub fn bd(&mut self, bd: BdId) -> &mut BdState {
        let default_max = self.default_max;
        self.bds.entry(bd).or_insert(BdState {
            learned: 0,
            max: default_max,
        })
    }

    /// The cap of `bd` (its own, or the default).
    pub fn max(&self, bd: BdId) -> Option<u32> {
        self.bds.get(&bd).map_or(self.default_max, |s| s.max)
    }

    pub fn is_full(&self, bd: BdId) -> bool {
        match self.bds.get(&bd) {
            Some(s) => s.is_full(),
            None => self.default_max == Some(0),
        }
    }

    /// Removes an entry, keeping the learned count right.
    pub fn remove(&mut self, key: &FdbKey) -> Option<OwnerEntry> {
        let e = self.entries.remove(key)?;
        count_vtep(&mut self.vteps, e.loc, false);
        if e.kind == EntryKind::Learned {
            self.bd(key.bd).learned -= 1;
        }
        Some(e)
    }

    /// Inserts or replaces an entry, keeping the learned count right.
    pub fn insert(&mut self, key: FdbKey, e: OwnerEntry) {
        let old = self.entries.insert(key, e);
        if let Some(o) = old {
            count_vtep(&mut self.vteps, o.loc, false);
        }
        count_vtep(&mut self.vteps, e.loc, true);
        let bd = self.bd(key.bd);
        if old.is_some_and(|o| o.kind == EntryKind::Learned) {
            bd.learned -= 1;
        }
        if e.kind == EntryKind::Learned {
            bd.learned += 1;
        }
    }
}

/// One row of `fdb show`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FdbEntry {
    /// The bridge domain.
    pub bd: BdId,
    /// The MAC address.
    pub mac: MacAddr,
    /// Where it lives.
    pub loc: Location,
    /// Learned or static.
    pub kind: EntryKind,
    /// Milliseconds since a worker last reported it (0 for statics).
    pub idle_ms: u64,
    /// True while the entry is held by flap damping.
    pub held: bool,
    /// Moves since the entry was created.
    pub moves: u64,
}

/// The owner's counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FdbStats {
    /// Entries now in the table (learned and static).
    pub entries: u64,
    /// New MACs learned.
    pub learned: u64,
    /// Learn reports that only refreshed an entry.
    pub refreshes: u64,
    /// MAC moves applied.
    pub moves: u64,
    /// New MACs not learned because their BD was at its cap.
    pub cap_rejects: u64,
    /// Learns refused because the MAC has a static entry elsewhere.
    pub static_rejects: u64,
    /// Moves refused because the MAC was held by flap damping.
    pub held_rejects: u64,
    /// Times a MAC started being held for flapping.
    pub flaps: u64,
    /// Entries removed by ageing.
    pub aged: u64,
    /// Entries removed by flushes.
    pub flushed: u64,
}
