//! One AF_XDP socket bound to one (device, queue), with its four rings.
//!
//! Every socket of a worker has its own fill and completion ring, also when
//! it shares the UMEM (`XDP_SHARED_UMEM`): the kernel requires that when the
//! sharing crosses devices or queues, and it keeps each ring single-producer
//! single-consumer.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::ring::{ConsRing, ProdRing, RingSizes, Rings};
use super::sys;
use super::umem::Area;
use super::BusyPoll;

/// TX descriptors one copy-mode `sendto` may transmit (`XDP_MAX_TX_SKB_BUDGET`,
/// where the kernel has it; its default is 32): four default worker batches,
/// so one kick sends everything a batch queued, while a kick stays short.
const COPY_TX_BUDGET: u32 = 256;

/// Which UMEM a new socket uses.
pub(crate) enum UmemSource<'a> {
    /// First socket: registers the area (`XDP_UMEM_REG`) with this headroom.
    Register { area: &'a Area, headroom: u32 },
    /// Later sockets: share the UMEM of this already bound socket.
    Share(BorrowedFd<'a>),
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

pub(crate) use super::ring::StepError;

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
                sys::umem_reg(&fd, area, headroom).map_err(|e| ("setsockopt(XDP_UMEM_REG)", e))?;
                (flags, None)
            }
            UmemSource::Share(primary) => (libc::XDP_SHARED_UMEM, Some(primary)),
        };
        // Ring sizes, offsets and mappings in one step, so that the maps
        // always match what the kernel allocated.
        let Rings { fill, comp, rx, tx } = Rings::setup(&fd, sizes)?;

        sys::bind(&fd, ifindex, queue, flags, shared).map_err(|e| ("bind", e))?;
        if let Some(bp) = busy_poll {
            sys::busy_poll(&fd, bp.usecs, bp.budget)
                .map_err(|e| ("setsockopt(SO_PREFER_BUSY_POLL/SO_BUSY_POLL)", e))?;
        }
        let zerocopy = sys::is_zerocopy(&fd).map_err(|e| ("getsockopt(XDP_OPTIONS)", e))?;
        if !zerocopy && sizes.tx >= COPY_TX_BUDGET {
            // Copy mode transmits only inside `sendto`, 32 frames per call
            // by default: let one call drain a whole batch. Older kernels
            // refuse the option; the worker then kicks more often.
            if let Err(e) = sys::tx_budget(&fd, COPY_TX_BUDGET) {
                tracing::debug!(error = %e, "no XDP_MAX_TX_SKB_BUDGET: 32 frames per sendto");
            }
        }
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
