//! One AF_XDP socket bound to one (device, queue), with its four rings.
//!
//! Every socket of a worker has its own fill and completion ring, also when
//! it shares the UMEM (`XDP_SHARED_UMEM`): the kernel requires that when the
//! sharing crosses devices or queues, and it keeps each ring single-producer
//! single-consumer.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::ring::{ConsRing, ProdRing};
use super::sys;
use super::umem::Area;
use super::BusyPoll;

/// Which UMEM a new socket uses.
pub(crate) enum UmemSource<'a> {
    /// First socket: registers the area (`XDP_UMEM_REG`) with this headroom.
    Register { area: &'a Area, headroom: u32 },
    /// Later sockets: share the UMEM of this already bound socket.
    Share(BorrowedFd<'a>),
}

/// Ring sizes of one socket (all powers of two, validated by the caller).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingSizes {
    pub(crate) fill: u32,
    pub(crate) comp: u32,
    pub(crate) rx: u32,
    pub(crate) tx: u32,
}

/// A bound AF_XDP socket.
#[derive(Debug)]
pub(crate) struct XskSocket {
    // Rings first: fields drop in declaration order, so the mappings go
    // before the descriptor is closed.
    pub(crate) fill: ProdRing<u64>,
    pub(crate) comp: ConsRing<u64>,
    pub(crate) rx: ConsRing<libc::xdp_desc>,
    pub(crate) tx: ProdRing<libc::xdp_desc>,
    pub(crate) fd: OwnedFd,
    pub(crate) zerocopy: bool,
}

/// The step that failed, for error messages.
pub(crate) type StepError = (&'static str, io::Error);

impl XskSocket {
    /// Creates, configures, maps and binds a socket. `flags` are the bind
    /// flags (`XDP_COPY`/`XDP_ZEROCOPY`/`XDP_USE_NEED_WAKEUP`); for a shared
    /// UMEM the kernel refuses them and applies the first socket's instead,
    /// so they are replaced by `XDP_SHARED_UMEM`.
    pub(crate) fn open(
        ifindex: u32,
        queue: u32,
        umem: UmemSource<'_>,
        sizes: RingSizes,
        flags: u16,
        busy_poll: Option<BusyPoll>,
    ) -> Result<Self, StepError> {
        let fd = sys::xsk_socket().map_err(|e| ("socket(AF_XDP)", e))?;
        let (flags, shared) = match umem {
            UmemSource::Register { area, headroom } => {
                sys::umem_reg(
                    &fd,
                    area.base_addr(),
                    area.len() as u64,
                    area.frame_size(),
                    headroom,
                )
                .map_err(|e| ("setsockopt(XDP_UMEM_REG)", e))?;
                (flags, None)
            }
            UmemSource::Share(primary) => (libc::XDP_SHARED_UMEM, Some(primary)),
        };
        let sz = |opt, n, what| sys::ring_size(&fd, opt, n).map_err(|e| (what, e));
        sz(
            libc::XDP_UMEM_FILL_RING,
            sizes.fill,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        sz(
            libc::XDP_UMEM_COMPLETION_RING,
            sizes.comp,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        sz(libc::XDP_RX_RING, sizes.rx, "setsockopt(XDP_RX_RING)")?;
        sz(libc::XDP_TX_RING, sizes.tx, "setsockopt(XDP_TX_RING)")?;
        let off = sys::mmap_offsets(&fd).map_err(|e| ("getsockopt(XDP_MMAP_OFFSETS)", e))?;

        // The four maps below share one justification: the offsets are the
        // kernel's for this socket, the sizes are the ones just configured on
        // it, and the descriptor types match the rings (u64 for fill and
        // completion, xdp_desc for RX and TX).
        // SAFETY: see above.
        let fill = unsafe {
            ProdRing::map(
                &fd,
                &off.fr,
                sizes.fill,
                libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
            )
        }
        .map_err(|e| ("mmap(fill ring)", e))?;
        // SAFETY: see above.
        let comp = unsafe {
            ConsRing::map(
                &fd,
                &off.cr,
                sizes.comp,
                libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
            )
        }
        .map_err(|e| ("mmap(completion ring)", e))?;
        // SAFETY: see above.
        let rx = unsafe { ConsRing::map(&fd, &off.rx, sizes.rx, libc::XDP_PGOFF_RX_RING) }
            .map_err(|e| ("mmap(RX ring)", e))?;
        // SAFETY: see above.
        let tx = unsafe { ProdRing::map(&fd, &off.tx, sizes.tx, libc::XDP_PGOFF_TX_RING) }
            .map_err(|e| ("mmap(TX ring)", e))?;

        sys::bind(&fd, ifindex, queue, flags, shared).map_err(|e| ("bind", e))?;
        if let Some(bp) = busy_poll {
            sys::busy_poll(&fd, bp.usecs, bp.budget)
                .map_err(|e| ("setsockopt(SO_PREFER_BUSY_POLL/SO_BUSY_POLL)", e))?;
        }
        let zerocopy = sys::is_zerocopy(&fd).map_err(|e| ("getsockopt(XDP_OPTIONS)", e))?;
        Ok(XskSocket {
            fill,
            comp,
            rx,
            tx,
            fd,
            zerocopy,
        })
    }

    /// The socket's descriptor (for the XSKMAP and for sharing the UMEM).
    pub(crate) fn borrow_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
