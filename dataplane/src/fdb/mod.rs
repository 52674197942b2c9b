//! The forwarding database: MAC → [`Location`] per bridge domain, shared
//! between workers without locks.
//!
//! One [`FdbOwner`] holds the authoritative table; each worker holds an
//! [`FdbReplica`], a table of its own (16-byte slots, remote VTEPs by
//! number: see [`Place`]) it reads and writes without locks.
//!
//! * A worker that sees a new or moved source MAC applies it to its own
//!   replica at once (so its very next frame forwards correctly) and sends a
//!   learn message to the owner over a bounded `crossbeam` channel. A known
//!   MAC at the same place sends a refresh at most once per
//!   [`FdbConfig::refresh_interval`], so ageing never costs a message per
//!   packet.
//! * The owner applies the per-BD cap, static entries, MAC-move damping and
//!   ageing, and fans every change out to all replicas (or a correction to
//!   the one replica whose local guess it refused).
//! * Workers [`drain`](FdbReplica::drain) their inbox once per batch. Once all
//!   channels are drained, every replica equals the owner's table.
//! * Control operations (show, flush, static add/del, caps) go through the
//!   owner, directly or over the same channel with an [`FdbControl`] handle.
//!
//! Time is a [`Tick`] passed in by the caller (milliseconds since an origin
//! all parties share), so tests drive ageing and damping without sleeping.
//! `docs/fdb.md` explains the model and its limits.

mod owner;
mod place;
mod replica;
mod slots;
mod table;
mod verdict;

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

pub use owner::{FdbControl, FdbOwner};
pub use place::Place;
pub use replica::{FdbReplica, LearnOutcome};
pub use table::{FdbEntry, FdbStats};
pub use verdict::{BdFill, LearnVerdict, Preview};

use crate::types::{BdId, Location, MacAddr};

/// A point in time, in milliseconds since an origin shared by the owner and
/// every worker.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Tick(pub u64);

impl Tick {
    /// The tick of `now` on a clock whose origin is `origin`.
    pub fn since(origin: Instant, now: Instant) -> Tick {
        Tick(now.saturating_duration_since(origin).as_millis() as u64)
    }

    /// `self` plus `d`.
    pub fn after(self, d: Duration) -> Tick {
        Tick(self.0.saturating_add(d.as_millis() as u64))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Tick) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The key of an FDB entry: a MAC in a bridge domain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct FdbKey {
    /// The bridge domain.
    pub bd: BdId,
    /// The MAC address.
    pub mac: MacAddr,
}

impl FdbKey {
    /// The key of `mac` in `bd`.
    pub const fn new(bd: BdId, mac: MacAddr) -> FdbKey {
        FdbKey { bd, mac }
    }

    /// The key packed into one `u64`: BD in the top 16 bits, MAC below.
    pub const fn packed(&self) -> u64 {
        (self.bd.0 as u64) << 48 | self.mac.to_u64()
    }
}

impl Hash for FdbKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // One word instead of a u16 and six bytes: one round of the hasher.
        state.write_u64(self.packed());
    }
}

/// How an entry came to be.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EntryKind {
    /// Learned from traffic; ages, moves, counts against the BD's cap.
    Learned,
    /// Configured; never ages, never moved or overwritten by learning, not
    /// counted against the cap.
    Static,
}

/// FDB tuning.
#[derive(Clone, Debug)]
pub struct FdbConfig {
    /// A learned entry not seen for this long is removed (default 300 s).
    pub ageing: Duration,
    /// A worker refreshes a known MAC with the owner at most this often
    /// (default 1 s). Must be well below `ageing`.
    pub refresh_interval: Duration,
    /// A MAC that moves more than this many times within one second is held
    /// (default 10).
    pub move_limit: u32,
    /// How long a flapping MAC is held where it is (default 10 s).
    pub hold_time: Duration,
    /// The cap of learned MACs for bridge domains without their own
    /// (default `None`: unlimited).
    pub default_max_macs: Option<u32>,
    /// Capacity of the workers → owner channel (default 65 536). A worker
    /// never blocks on it: when it is full the local change is undone and
    /// counted, and the next frame of that MAC tries again.
    pub inbox_capacity: usize,
}

impl Default for FdbConfig {
    fn default() -> Self {
        FdbConfig {
            ageing: Duration::from_secs(300),
            refresh_interval: Duration::from_secs(1),
            move_limit: 10,
            hold_time: Duration::from_secs(10),
            default_max_macs: None,
            inbox_capacity: 65_536,
        }
    }
}

/// Errors of FDB control operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdbError {
    /// No entry for this MAC in this bridge domain.
    #[error("no entry for {mac} in bridge domain {}", bd.0)]
    NotFound {
        /// The bridge domain.
        bd: BdId,
        /// The MAC address.
        mac: MacAddr,
    },
    /// The entry exists but was learned, not configured.
    #[error("the entry for {mac} in bridge domain {} is not static", bd.0)]
    NotStatic {
        /// The bridge domain.
        bd: BdId,
        /// The MAC address.
        mac: MacAddr,
    },
    /// Static entries must be individual, non-zero MACs.
    #[error("{0} is not a unicast MAC address")]
    NotUnicast(MacAddr),
    /// The owner has stopped.
    #[error("the FDB owner is not running")]
    OwnerGone,
}

/// A message from a worker (or a control handle) to the owner.
pub(crate) enum ToOwner {
    /// `key` was seen at `loc` by worker `worker` at `now`.
    Learn {
        key: FdbKey,
        loc: Location,
        worker: usize,
        now: Tick,
    },
    /// A control request and where to answer.
    Control(ControlRequest, Sender<ControlReply>),
}

/// A control request carried over the owner's channel.
pub(crate) enum ControlRequest {
    Show(Option<BdId>),
    Flush(Option<BdId>),
    StaticAdd(FdbKey, Location),
    StaticDel(FdbKey),
    SetMaxMacs(BdId, Option<u32>),
    Stats,
    Preview {
        src: FdbKey,
        loc: Location,
        dst: FdbKey,
    },
    Fills,
    Vteps,
}

/// The owner's answer to a [`ControlRequest`].
pub(crate) enum ControlReply {
    Entries(Vec<FdbEntry>),
    Count(usize),
    Stats(FdbStats),
    Done(Result<(), FdbError>),
    Preview(Preview),
    Fills(Vec<BdFill>),
    Vteps(Vec<IpAddr>),
}

/// A message from the owner to a replica.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ToReplica {
    /// Insert or replace.
    Upsert {
        key: FdbKey,
        loc: Location,
        kind: EntryKind,
        held_until: Tick,
    },
    /// Remove.
    Remove { key: FdbKey },
    /// Remove every learned entry of one BD, or of all.
    Flush { bd: Option<BdId> },
    /// The BD reached (or left) its cap: do not learn new MACs locally.
    BdFull { bd: BdId, full: bool },
}

/// A new FDB: its owner and one replica per worker (replica `i` is worker
/// `i`'s), plus a control handle.
pub fn new(config: FdbConfig, workers: usize) -> (FdbOwner, Vec<FdbReplica>, FdbControl) {
    owner::build(config, workers)
}

#[cfg(test)]
mod tests;
