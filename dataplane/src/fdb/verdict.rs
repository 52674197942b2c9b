//! What the owner makes of a learn report, decided before anything changes:
//! the owner acts on the verdict, and `xvsctl trace` reports it without
//! acting ([`FdbOwner::preview`](super::FdbOwner::preview)). One judgement
//! for both, so a trace can never disagree with what learning does.

use super::table::Table;
use super::{EntryKind, FdbConfig, FdbEntry, FdbKey, Tick};
use crate::types::{BdId, Location};

/// The owner's verdict on "`key` was seen at `loc`".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LearnVerdict {
    /// A new MAC and room in its bridge domain: learned.
    Learn,
    /// A new MAC, but its bridge domain holds `max` learned MACs: refused.
    CapReached {
        /// The cap.
        max: u32,
    },
    /// Known at this place: its age is refreshed.
    Refresh,
    /// A static entry at this very place: nothing changes.
    StaticHere,
    /// A static entry puts the MAC at `at`: refused.
    Static {
        /// Where the static entry puts it.
        at: Location,
    },
    /// Held at `at` by flap damping for `ms` more milliseconds: refused.
    Held {
        /// Where it is held.
        at: Location,
        /// Remaining hold.
        ms: u64,
    },
    /// A move from `from` past the move limit: the MAC is held at `from`.
    Flap {
        /// Where it stays.
        from: Location,
    },
    /// A move from `from`.
    Move {
        /// Where it was.
        from: Location,
    },
}

/// Learned MACs of one bridge domain against its cap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BdFill {
    /// The bridge domain.
    pub bd: BdId,
    /// Entries in the table, learned and static.
    pub entries: u64,
    /// Learned entries (the ones the cap counts).
    pub learned: u32,
    /// The cap; `None`: unlimited.
    pub max: Option<u32>,
}

/// What the owner would do with one frame: its verdict on the source MAC,
/// the entry of the destination MAC, and the source's bridge domain's fill.
/// Nothing is changed to compute it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Preview {
    /// The verdict on the source MAC at the frame's ingress.
    pub learn: LearnVerdict,
    /// The source MAC's own entry, if any.
    pub src: Option<FdbEntry>,
    /// The destination MAC's entry, if any.
    pub dst: Option<FdbEntry>,
    /// The bridge domain's learned MACs and cap.
    pub fill: BdFill,
}

/// The verdict on `key` seen at `loc` at `now`.
pub(crate) fn judge(
    table: &Table,
    config: &FdbConfig,
    key: FdbKey,
    loc: Location,
    now: Tick,
) -> LearnVerdict {
    let Some(e) = table.entries.get(&key) else {
        if table.is_full(key.bd) {
            return LearnVerdict::CapReached {
                max: table.max(key.bd).unwrap_or(0),
            };
        }
        return LearnVerdict::Learn;
    };
    if e.kind == EntryKind::Static {
        return if e.loc == loc {
            LearnVerdict::StaticHere
        } else {
            LearnVerdict::Static { at: e.loc }
        };
    }
    if e.loc == loc {
        return LearnVerdict::Refresh;
    }
    if now < e.held_until {
        return LearnVerdict::Held {
            at: e.loc,
            ms: e.held_until.millis_since(now),
        };
    }
    let window_moves = if now.millis_since(e.window_start) >= 1000 {
        1
    } else {
        e.window_moves + 1
    };
    if window_moves > config.move_limit {
        LearnVerdict::Flap { from: e.loc }
    } else {
        LearnVerdict::Move { from: e.loc }
    }
}
