//! xvs dataplane: the userspace half of the switch.
//!
//! The forwarding logic here is pure: it parses, decides and rewrites frames
//! in memory and never touches a socket, so it is unit-tested, fuzzed and
//! benchmarked without a NIC.
//!
//! The forwarding engine, from the bytes up:
//!
//! * [`types`] — MAC, BD, port, VLAN, VNI, attachment, location;
//! * [`wire`] — zero-copy views and `Repr`s of Ethernet, 802.1Q, IPv4, IPv6,
//!   UDP and VXLAN headers;
//! * [`fdb`] — the forwarding database: one owner thread, a lock-free
//!   replica per worker, channels between them (`docs/fdb.md`);
//! * [`bridge`] and [`decide`] — bridge-domain config and the forwarding
//!   decision (known unicast, flooding with split horizon, hairpin off),
//!   and which VTEPs a bridge domain accepts VXLAN from;
//! * [`storm`] — BUM storm control: per bridge domain token buckets;
//! * [`rewrite`] — VLAN push and VXLAN encapsulation into headroom;
//! * [`engine`] — one worker's pipeline over all of the above, behind the
//!   [`engine::TxFrames`] seam (`docs/performance.md`);
//! * [`fixtures`] — frames shared by the tests and the benches.

pub mod nexthop;
pub mod xsk;

pub mod bridge;
pub mod daemon;
pub mod decide;
pub mod engine;
pub mod fdb;
pub mod fixtures;
pub mod ratelog;
pub mod rewrite;
pub mod storm;
pub mod trace;
pub mod types;
pub mod wire;

mod prefetch;
mod vtep_map;
