//! xvs XDP classifier and its loader.
//!
//! The C program (`src/bpf/xvs_xdp.bpf.c`, built by `build.rs` into a
//! libbpf-rs skeleton) classifies every frame an attached interface
//! receives: on **uplink** ports it validates and decapsulates VXLAN
//! addressed to a local VTEP and passes everything else to the kernel; on
//! **access** ports it maps (port, outer VLAN) to a bridge domain and pops
//! that tag. Switched frames carry a [`Meta`] in front of them and are
//! redirected to the AF_XDP socket of their (port, RX queue). Every decision moves
//! one of the [`Counter`]s. The decision table is `docs/classifier.md`.
//!
//! This crate loads and configures that program:
//!
//! ```no_run
//! # fn main() -> Result<(), xvs_ebpf::Error> {
//! use xvs_ebpf::{Classifier, Counter, PortRole, XdpMode};
//! let cls = Classifier::load()?;
//! cls.add_local_vtep("192.0.2.10".parse().unwrap())?;
//! cls.set_vni(100, 1)?; // VNI 100 → bridge domain 1
//! cls.set_attachment(2, 10, 1)?; // port 2, VLAN 10 → bridge domain 1
//! cls.set_port(xvs_ebpf::ifindex_of("eth1")?, PortRole::Uplink, 1)?;
//! cls.set_port(xvs_ebpf::ifindex_of("tap-vm1")?, PortRole::Access, 2)?;
//! let uplink = cls.attach("eth1", XdpMode::Auto)?; // reports the mode chosen
//! let access = cls.attach("tap-vm1", XdpMode::Auto)?;
//! // cls.set_xsk(port_index, queue, xsk_fd)? for each AF_XDP socket …
//! let c = cls.counters()?;
//! println!("{} decapsulated, {} dropped for unknown VNI on {} ({})",
//!     c.get(Counter::DecapV4), c.get(Counter::DropUnknownVni), uplink.iface(), uplink.mode());
//! # drop(access); Ok(()) }
//! ```
//!
//! What it does not do: create AF_XDP sockets or UMEMs (the dataplane's
//! job), pin maps or links (attachments leave with the process by design),
//! or verify IPv4 header checksums (the program does not either).

#![deny(missing_docs)]

mod abi;
mod attach;
mod classifier;
mod counters;
mod direct;
mod error;
mod maps;
mod skel;
mod test_run;

pub use abi::{
    xsk_slot, AttachKey, ConfigValue, Meta, PortRole, PortValue, VtepAddr, MAX_PORTS, MAX_QUEUES,
    META_F_INNER_TAG, META_F_TAGGED, META_F_VTEP_IPV6, META_F_VXLAN, VID_MAX, VNI_MAX,
    VXLAN_PORT_DEFAULT, XSK_SLOTS,
};
pub use attach::{ifindex_of, Attachment, LinkStatus, XdpMode};
pub use classifier::Classifier;
pub use counters::{Counter, Counters};
pub use direct::{DirectStats, DirectTables};
pub use error::{Error, Result};
pub use test_run::{TestRun, XdpAction};
