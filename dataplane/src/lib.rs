//! xvs dataplane: the userspace half of the switch.
//!
//! The forwarding logic here is pure: it parses, decides and rewrites frames
//! in memory and never touches a socket, so it is unit-tested, fuzzed and
//! benchmarked without a NIC.

pub mod nexthop;
pub mod xsk;

pub mod bridge;
pub mod daemon;
pub mod decide;
pub mod engine;
pub mod fdb;
pub mod fixtures;
pub mod rewrite;
pub mod types;
pub mod wire;
