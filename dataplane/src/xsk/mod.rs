//! AF_XDP I/O: UMEM, rings and sockets (the only part of the dataplane that
//! touches the kernel), behind a narrow [`FrameIo`] seam.
//!
//! # What it does
//!
//! * [`XskIo`] is one worker's I/O: **one UMEM** (a frame area of
//!   `frame_count` chunks of `frame_size` bytes) shared by that worker's
//!   AF_XDP sockets on *every* port — one socket per (device, queue), each
//!   with its own fill, completion, RX and TX ring (`XDP_SHARED_UMEM` across
//!   devices). A frame received on one port is transmitted on another from
//!   the very same chunk: no userspace copy.
//! * Rings are driven in batches: [`FrameIo::recv`] takes a batch of RX
//!   descriptors with one acquire-load and one release-store and tops the
//!   port's fill ring back up; [`FrameIo::send`] writes TX descriptors
//!   without publishing; [`FrameIo::flush`] publishes them, wakes the kernel
//!   only when it asks (`XDP_USE_NEED_WAKEUP`; always in copy mode, whose TX
//!   only runs inside `sendto`), reaps completions into the free-frame stack
//!   and refills the fill rings.
//! * Bind mode: [`BindMode::Auto`] tries zero-copy and falls back to copy;
//!   [`BindMode::Copy`]/[`BindMode::ZeroCopy`] force one (and fail if the
//!   driver cannot). [`XskIo::bound_mode`] reports what the kernel gave. The
//!   kernel applies the first socket's mode to every socket sharing its UMEM.
//! * Metadata: the XDP program's `bpf_xdp_adjust_meta` bytes sit right
//!   before the RX data in the chunk (copy mode copies them too);
//!   [`FrameIo::meta`] exposes them.
//! * Optional preferred busy polling per socket ([`XskConfig::busy_poll`]).
//! * Headroom: RX data starts at `headroom + XDP_PACKET_HEADROOM` (256) into
//!   the chunk, as do frames from [`FrameIo::alloc`]; that is room for the 70
//!   bytes of IPv6 VXLAN outer headers plus metadata with `headroom = 0`.
//! * [`MemIo`] implements the same seam in memory, for tests and benches of
//!   the pure engine; [`PcapIo`] wraps any implementation and records every
//!   frame received and sent to a pcap stream.
//!
//! # What it does not do
//!
//! * Load or attach any XDP program, or fill the XSKMAP: the classifier in
//!   `ebpf/` does; [`XskIo::port_fd`] gives it the socket descriptor
//!   (`Classifier::set_xsk(port_index, queue, fd)`).
//! * Unaligned chunks, multi-buffer (`XDP_USE_SG`) frames or TX metadata.
//!   (Closing one port while others stay open is [`XskIo::close_port`]:
//!   the caller first stops the traffic to it, see there.)
//! * Threading: an [`XskIo`] belongs to one worker thread (`Send`, not
//!   `Sync`); nothing here locks.
//!
//! `unsafe` lives only in `umem.rs` (the frame area), `ring.rs` (the mapped
//! rings) and `sys.rs` (the system calls).

mod afxdp;
mod frame;
mod mem;
mod pcap;
mod pool;
mod ring;
mod socket;
mod sys;
mod umem;

use std::fmt;
use std::io;

pub use afxdp::{ClosedPort, KernelStats, PortStats, XskIo};
pub use frame::{Frame, FrameIdx, FreeFrames};
pub use mem::{MemIo, Sent};
pub use pcap::PcapIo;
pub use umem::Spares;

/// Bytes the kernel reserves before the packet data of every XDP buffer
/// (`XDP_PACKET_HEADROOM`); the UMEM headroom comes on top of it.
pub const XDP_PACKET_HEADROOM: usize = 256;

/// Smallest data room (frame size minus both headrooms) accepted: a
/// 1518-byte Ethernet frame with two VLAN tags, rounded up.
pub const MIN_DATA_ROOM: usize = 1536;

/// Shortest frame [`FrameIo::send`] accepts: an Ethernet header.
pub const MIN_FRAME_LEN: usize = 14;

/// A port of an I/O instance: the order in which ports were opened (`0..`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(u16);

impl PortId {
    /// Wraps a raw port number.
    pub const fn new(n: u16) -> Self {
        PortId(n)
    }

    /// The port number as an index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How to bind AF_XDP sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy if the driver supports it, copy otherwise.
    #[default]
    Auto,
    /// Force copy mode (`XDP_COPY`).
    Copy,
    /// Force zero-copy mode (`XDP_ZEROCOPY`); binding fails without driver
    /// support.
    ZeroCopy,
}

impl fmt::Display for BindMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindMode::Auto => "auto",
            BindMode::Copy => "copy",
            BindMode::ZeroCopy => "zerocopy",
        })
    }
}

/// The mode the kernel actually bound a socket in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundMode {
    /// Copy mode: the kernel copies frames between its buffers and the UMEM.
    Copy,
    /// Zero-copy: the NIC DMAs straight into and out of the UMEM.
    ZeroCopy,
}

/// Geometry and tuning of one worker's UMEM and sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XskConfig {
    /// Bytes per frame (chunk): a power of two from 2048 to the page size.
    pub frame_size: u32,
    /// Number of frames in the UMEM (shared by all the worker's ports).
    pub frame_count: u32,
    /// Extra UMEM headroom before RX data, on top of
    /// [`XDP_PACKET_HEADROOM`].
    pub headroom: u32,
    /// Fill ring size per socket (power of two).
    pub fill_size: u32,
    /// Completion ring size per socket (power of two).
    pub comp_size: u32,
    /// RX ring size per socket (power of two).
    pub rx_size: u32,
    /// TX ring size per socket (power of two).
    pub tx_size: u32,
    /// Frames kept posted in each socket's fill ring (at most `fill_size`).
    /// `frame_count` should cover `ports × fill_target` plus the frames in
    /// flight on TX.
    pub fill_target: u32,
    /// Bind mode.
    pub bind: BindMode,
    /// Ask the kernel to flag when it needs a wakeup syscall
    /// (`XDP_USE_NEED_WAKEUP`) instead of kicking it on every flush.
    pub need_wakeup: bool,
    /// Preferred busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
    /// `SO_BUSY_POLL_BUDGET`) on every socket; `None` leaves it off. With it,
    /// `recv` on an empty RX ring and every `flush` with pending TX make the
    /// syscall that lets the kernel poll the driver in our context.
    pub busy_poll: Option<BusyPoll>,
    /// Back the UMEM with transparent huge pages (`MADV_HUGEPAGE`; ordinary
    /// pages where the kernel has none). Frames of a busy ring are spread
    /// over megabytes, so with 4 KiB pages nearly every received frame
    /// costs userspace a TLB miss.
    pub huge_pages: bool,
}

/// Busy-poll settings (see [`XskConfig::busy_poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// How long one syscall may busy-poll the driver, in microseconds (> 0).
    pub usecs: u32,
    /// Packets per busy-poll round (1 ..= 65536; the batch size is a good
    /// value).
    pub budget: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 2048,
            frame_count: 8192,
            headroom: 0,
            fill_size: 2048,
            comp_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            fill_target: 1024,
            bind: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            huge_pages: false,
        }
    }
}

impl XskConfig {
    /// Checks the configuration without touching the kernel.
    pub fn validate(&self) -> Result<(), XskError> {
        let page = sys::page_size();
        if !self.frame_size.is_power_of_two()
            || self.frame_size < 2048
            || self.frame_size as usize > page
        {
            return Err(XskError::FrameSize(self.frame_size));
        }
        if self.frame_count == 0 || self.frame_count > 1 << 22 {
            return Err(XskError::FrameCount(self.frame_count));
        }
        for (ring, size) in [
            ("fill", self.fill_size),
            ("completion", self.comp_size),
            ("rx", self.rx_size),
            ("tx", self.tx_size),
        ] {
            if !size.is_power_of_two() || size > 1 << 16 {
                return Err(XskError::RingSize { ring, size });
            }
        }
        let room =
            (self.frame_size as usize).saturating_sub(XDP_PACKET_HEADROOM + self.headroom as usize);
        if room < MIN_DATA_ROOM {
            return Err(XskError::Headroom {
                headroom: self.headroom,
                frame_size: self.frame_size,
            });
        }
        if self.fill_target == 0 || self.fill_target > self.fill_size {
            return Err(XskError::FillTarget {
                target: self.fill_target,
                fill_size: self.fill_size,
            });
        }
        if let Some(bp) = self.busy_poll {
            if bp.usecs == 0 || bp.budget == 0 || bp.budget > 1 << 16 {
                return Err(XskError::BusyPoll(bp));
            }
        }
        Ok(())
    }

    /// Offset of the first data byte in a chunk, for RX (copy mode) and for
    /// frames from [`FrameIo::alloc`].
    pub fn data_offset(&self) -> usize {
        self.headroom as usize + XDP_PACKET_HEADROOM
    }
}

/// Errors of the AF_XDP layer. Configuration errors are reported before
/// anything is created; nothing here panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The frame size is not a power of two between 2048 and the page size.
    #[error("frame size {0} is not a power of two between 2048 and the page size")]
    FrameSize(u32),
    /// The frame count is zero or absurdly large.
    #[error("frame count {0} is not in 1..=4194304")]
    FrameCount(u32),
    /// A ring size is not a power of two (or above 65536).
    #[error("{ring} ring size {size} is not a power of two in 1..=65536")]
    RingSize {
        /// Which ring.
        ring: &'static str,
        /// The size asked for.
        size: u32,
    },
    /// The headroom leaves too little room for a frame.
    #[error(
        "headroom {headroom} + {XDP_PACKET_HEADROOM} leaves less than {MIN_DATA_ROOM} bytes \
         of a {frame_size}-byte frame"
    )]
    Headroom {
        /// The headroom asked for.
        headroom: u32,
        /// The frame size.
        frame_size: u32,
    },
    /// The fill target is zero or above the fill ring size.
    #[error("fill target {target} is not in 1..={fill_size} (the fill ring size)")]
    FillTarget {
        /// The target asked for.
        target: u32,
        /// The fill ring size.
        fill_size: u32,
    },
    /// Busy-poll time or budget out of range.
    #[error("busy poll needs usecs > 0 and a budget in 1..=65536, got {0:?}")]
    BusyPoll(BusyPoll),
    /// No interface of that name in the calling thread's network namespace.
    #[error("no such interface: {0:?}")]
    NoSuchInterface(String),
    /// Too many ports on one UMEM.
    #[error("too many ports on one UMEM")]
    TooManyPorts,
    /// [`XskIo::open_port_at`] at an index that holds an open port.
    #[error("port index {0} is already open")]
    PortInUse(u16),
    /// [`XskIo::close_port`] of an index with no open port.
    #[error("port index {0} is not open")]
    NoSuchPort(u16),
    /// The frame area could not be mapped.
    #[error("cannot map a {bytes}-byte frame area: {source}")]
    Umem {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// Creating or configuring a socket failed (before bind).
    #[error("AF_XDP socket for {ifname} queue {queue}: {step}: {source}")]
    Setup {
        /// Interface name.
        ifname: String,
        /// Queue id.
        queue: u32,
        /// The failing step (system call).
        step: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel refused to bind the socket (no such queue, mode not
    /// supported by the driver, queue already taken, …).
    #[error("cannot bind AF_XDP socket to {ifname} queue {queue} in {mode} mode: {source}")]
    Bind {
        /// Interface name.
        ifname: String,
        /// Queue id.
        queue: u32,
        /// The mode asked for (for a shared UMEM: the first socket's).
        mode: BindMode,
        /// The OS error.
        source: io::Error,
    },
}

/// The I/O seam between the forwarding engine and the wire, in the spirit of
/// smoltcp's `Device`: frames are owned handles into one frame area; the
/// engine reads and rewrites them in place and hands them back by sending or
/// freeing them.
///
/// Implemented by [`XskIo`] (AF_XDP) and [`MemIo`] (in memory); wrappers
/// (tracing, pcap, fault injection) implement it by delegation.
///
/// Frame accessors panic if given a frame of another instance (a bug, never
/// a runtime condition).
pub trait FrameIo {
    /// Number of ports; valid ports are `PortId::new(0..n)`.
    fn port_count(&self) -> usize;

    /// Receives up to `max` frames from `port`, appending them to `out`, and
    /// returns how many. Never blocks.
    fn recv(&mut self, port: PortId, out: &mut Vec<Frame>, max: usize) -> usize;

    /// Queues `frame` for transmission on `port` (visible to the kernel at
    /// the next [`flush`](Self::flush) at the latest). Gives the frame back
    /// when the port's TX ring is full, the port does not exist, or the frame
    /// is shorter than an Ethernet header ([`MIN_FRAME_LEN`]).
    fn send(&mut self, port: PortId, frame: Frame) -> Result<(), Frame>;

    /// Publishes queued transmissions, wakes the kernel where needed, returns
    /// completed frames to the free stack and refills the fill rings. Call
    /// once per batch.
    fn flush(&mut self);

    /// A free frame with an empty data window at the standard data offset.
    fn alloc(&mut self) -> Option<Frame>;

    /// Returns a frame to the free stack.
    fn free(&mut self, frame: Frame);

    /// The frame's data bytes.
    fn data(&self, frame: &Frame) -> &[u8];

    /// The frame's data bytes, writable.
    fn data_mut(&mut self, frame: &Frame) -> &mut [u8];

    /// The frame's whole chunk (headroom, data and tailroom,
    /// [`Frame::capacity`] bytes), for code that works on a buffer plus
    /// offsets; move the data window afterwards with [`Frame::set_window`].
    fn chunk(&self, frame: &Frame) -> &[u8];

    /// The frame's whole chunk, writable (see [`chunk`](Self::chunk)).
    fn chunk_mut(&mut self, frame: &Frame) -> &mut [u8];

    /// Borrows `frame`'s whole chunk (as [`chunk_mut`](Self::chunk_mut))
    /// and, at the same time, [`Spares`] to allocate and write other frames —
    /// what a rewrite that floods copies needs. Frames allocated from the
    /// spares are sent or freed through `self` once the borrow ends.
    fn split(&mut self, frame: &Frame) -> (&mut [u8], Spares<'_>);

    /// The `len` bytes right before the data: the XDP metadata of a frame
    /// just received (read it before moving the data window). `None` when
    /// the headroom is shorter than `len`.
    fn meta(&self, frame: &Frame, len: usize) -> Option<&[u8]>;

    /// A new frame holding a copy of `frame`'s data window at the same
    /// offset (for flooding one frame to several ports). `None` when no frame
    /// is free.
    fn clone_frame(&mut self, frame: &Frame) -> Option<Frame>;
}
