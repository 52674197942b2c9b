//! The library half of `xvsd`: everything the daemon does that can be
//! tested without privileges.
//!
//! * [`model`] numbers a validated configuration: port indices (classifier
//!   `port_index` = engine port = socket index in every worker), bridge
//!   domain ids, the engine's bridge domains and encapsulation settings, and
//!   FDB entries as the control protocol reports them.
//! * [`reconfig`] is what a live change does: the [`Diff`] between the
//!   running model and the next, and the bridge-domain updates workers
//!   apply between batches.
//! * [`classify`] is the one translation of a model into the XDP
//!   classifier's map entries, and a sync that writes only what differs
//!   (the live classifier and `trace`'s copy both use it).
//! * [`worker`] is one worker's forwarding loop over any
//!   [`FrameIo`](crate::xsk::FrameIo): RX batch → metadata → engine → TX,
//!   with next-hop updates and FDB changes applied between batches.
//! * [`hops`] turns next-hop resolutions into the state `xvsctl show`
//!   reports per remote VTEP and the updates workers need.
//! * [`mcast`] derives a multicast flood group's MAC and keeps the uplink's
//!   memberships of the groups.
//! * [`netdev`] reads an interface's MAC address and MTU in the calling
//!   thread's network namespace.
//!
//! The binary (`src/bin/xvsd/`) adds what needs a kernel: loading and
//! attaching the classifier, AF_XDP sockets, pinned threads, netlink next-hop
//! resolution, the control socket and signals. `docs/deployment.md` is the
//! operator's view.

pub mod classify;
pub mod hops;
pub mod mcast;
pub mod model;
pub mod netdev;
pub mod reconfig;
pub mod worker;

pub use classify::{ClassifierEntries, ClassifierSync};
pub use hops::HopState;
pub use model::{frame_meta, Model, ModelError};
pub use reconfig::{Diff, LiveUpdate};
pub use worker::{NextHopUpdate, Worker, WorkerCounters};
