//! [`XskIo`]: one worker's AF_XDP I/O — one UMEM, one socket per port.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::frame::Frame;
use super::pool::Pool;
use super::ring::RingSizes;
use super::socket::{UmemSource, XskSocket};
use super::sys;
use super::{BindMode, BoundMode, FrameIo, PortId, Spares, XskConfig, XskError, MIN_FRAME_LEN};

#[path = "afxdp_close.rs"]
mod close;
pub use close::ClosedPort;

/// Kicks per port and flush while a copy-mode TX ring still holds frames
/// (the kernel sends at most 32 frames per `sendto` in copy mode, or the
/// socket's `XDP_MAX_TX_SKB_BUDGET` where it has one: see `socket.rs`).
const COPY_MODE_KICKS: u32 = 8;

/// Userspace counters of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_frames: u64,
    /// RX descriptors the kernel gave that did not describe a chunk
    /// (never expected; the chunk is recycled when it can be identified).
    pub rx_invalid: u64,
    /// Frames queued for TX.
    pub tx_frames: u64,
    /// Frames the kernel reported transmitted (completion ring).
    pub tx_completed: u64,
    /// `send` calls refused because the TX ring was full.
    pub tx_ring_full: u64,
    /// TX wakeup syscalls (`sendto`).
    pub tx_kicks: u64,
    /// TX wakeups that failed with a non-transient error.
    pub tx_kick_errors: u64,
    /// RX/fill-ring wakeup syscalls (`recvfrom`): fill ring flagged
    /// `need_wakeup`, or an empty RX ring under busy polling.
    pub fill_kicks: u64,
}

/// The kernel's counters of one socket (`XDP_STATISTICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames dropped for reasons other than an empty fill ring / full RX ring
    /// (e.g. too big for the frame).
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the TX ring.
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was found empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was found empty on a wakeup.
    pub tx_ring_empty_descs: u64,
}

#[derive(Debug)]
struct Port {
    sock: XskSocket,
    /// Frames posted to the fill ring and not yet back through RX.
    in_fill: u32,
    /// Frames on the TX ring and not yet back through completion.
    in_tx: u32,
    stats: PortStats,
}

/// One worker's AF_XDP I/O: a UMEM and one socket per opened port, all
/// sharing it. See the [module documentation](super).
///
/// ```no_run
/// use xvs_dataplane::xsk::{FrameIo, XskConfig, XskIo};
/// let mut io = XskIo::new(XskConfig::default())?;
/// let uplink = io.open_port("eth1", 0)?;
/// let vm = io.open_port("tap-vm1", 0)?;
/// // (the classifier's XSKMAP gets io.port_fd(uplink) for queue 0, …)
/// let mut batch = Vec::with_capacity(64);
/// loop {
///     io.poll(std::time::Duration::from_millis(100))?;
///     io.recv(uplink, &mut batch, 64);
///     for f in batch.drain(..) {
///         let _meta = io.meta(&f, 8); // the XDP program's metadata
///         if let Err(f) = io.send(vm, f) {
///             io.free(f);
///         }
///     }
///     io.flush();
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct XskIo {
    // Sockets before the area: they drop (and unregister the UMEM) first.
    // `None`: a port closed live (`close_port`); its index stays reserved.
    ports: Vec<Option<Port>>,
    pool: Pool,
    cfg: XskConfig,
    names: Vec<(String, u32)>,
    pollfds: Vec<libc::pollfd>,
}

impl XskIo {
    /// Validates `cfg` and maps the UMEM area. No socket exists yet: the
    /// first [`open_port`](Self::open_port) registers the UMEM.
    pub fn new(cfg: XskConfig) -> Result<Self, XskError> {
        cfg.validate()?;
        Ok(XskIo {
            ports: Vec::new(),
            pool: Pool::new(&cfg)?,
            cfg,
            names: Vec::new(),
            pollfds: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &XskConfig {
        &self.cfg
    }

    /// Opens an AF_XDP socket on queue `queue` of interface `ifname` (looked
    /// up in the calling thread's network namespace), sharing this UMEM, and
    /// posts `fill_target` frames to its fill ring.
    ///
    /// The first port decides the bind mode for all (kernel rule for shared
    /// UMEMs): with [`BindMode::Auto`] it tries zero-copy, then copy. Later
    /// ports inherit it; a later port whose driver cannot do the first
    /// port's zero-copy fails with [`XskError::Bind`].
    pub fn open_port(&mut self, ifname: &str, queue: u32) -> Result<PortId, XskError> {
        let id = u16::try_from(self.ports.len()).map_err(|_| XskError::TooManyPorts)?;
        self.open_port_at(ifname, queue, PortId::new(id))
    }

    /// [`open_port`](Self::open_port) at a chosen index: one past the last
    /// port, or the index of a port closed with
    /// [`close_port`](Self::close_port) (indexes in between are reserved
    /// as closed). Fails with [`XskError::PortInUse`] if the index holds an
    /// open port.
    pub fn open_port_at(
        &mut self,
        ifname: &str,
        queue: u32,
        at: PortId,
    ) -> Result<PortId, XskError> {
        let ifindex =
            sys::ifindex(ifname).ok_or_else(|| XskError::NoSuchInterface(ifname.to_owned()))?;
        let id = at.0;
        if self.ports.get(at.index()).is_some_and(Option::is_some) {
            return Err(XskError::PortInUse(id));
        }
        let sizes = RingSizes {
            fill: self.cfg.fill_size,
            comp: self.cfg.comp_size,
            rx: self.cfg.rx_size,
            tx: self.cfg.tx_size,
        };
        let err = |mode: BindMode, (step, source): (&'static str, io::Error)| {
            if step == "bind" {
                XskError::Bind {
                    ifname: ifname.to_owned(),
                    queue,
                    mode,
                    source,
                }
            } else {
                XskError::Setup {
                    ifname: ifname.to_owned(),
                    queue,
                    step,
                    source,
                }
            }
        };
        let sock = if let Some(first) = self.ports.iter().flatten().next() {
            // The kernel applies the first socket's mode: report that one.
            let mode = match mode_of(&first.sock) {
                BoundMode::Copy => BindMode::Copy,
                BoundMode::ZeroCopy => BindMode::ZeroCopy,
            };
            let shared = UmemSource::Share(first.sock.borrow_fd());
            XskSocket::open(ifindex, queue, shared, sizes, 0, self.cfg.busy_poll)
                .map_err(|e| err(mode, e))?
        } else {
            let wake = if self.cfg.need_wakeup {
                libc::XDP_USE_NEED_WAKEUP
            } else {
                0
            };
            let reg = || UmemSource::Register {
                area: &self.pool.area,
                headroom: self.cfg.headroom,
            };
            let busy = self.cfg.busy_poll;
            let open = |mode: u16| XskSocket::open(ifindex, queue, reg(), sizes, mode | wake, busy);
            match self.cfg.bind {
                BindMode::Copy => open(libc::XDP_COPY).map_err(|e| err(BindMode::Copy, e))?,
                BindMode::ZeroCopy => {
                    open(libc::XDP_ZEROCOPY).map_err(|e| err(BindMode::ZeroCopy, e))?
                }
                BindMode::Auto => match open(libc::XDP_ZEROCOPY) {
                    Ok(s) => s,
                    Err(("bind", _)) => open(libc::XDP_COPY).map_err(|e| err(BindMode::Copy, e))?,
                    Err(e) => return Err(err(BindMode::ZeroCopy, e)),
                },
            }
        };
        let i = usize::from(id);
        if self.ports.len() <= i {
            self.ports.resize_with(i + 1, || None);
            self.names.resize_with(i + 1, || (String::new(), 0));
            self.pollfds.resize(i + 1, sys::pollin(-1));
        }
        self.pollfds[i] = sys::pollin(sock.fd.as_raw_fd());
        self.ports[i] = Some(Port {
            sock,
            in_fill: 0,
            in_tx: 0,
            stats: PortStats::default(),
        });
        self.names[i] = (ifname.to_owned(), queue);
        self.refill(i);
        Ok(PortId::new(id))
    }

    /// The mode the kernel bound the UMEM's sockets in (`None` before the
    /// first port is open).
    pub fn bound_mode(&self) -> Option<BoundMode> {
        self.ports.iter().flatten().next().map(|p| mode_of(&p.sock))
    }

    /// The mode of one port's socket.
    pub fn port_mode(&self, port: PortId) -> Option<BoundMode> {
        self.port(port.index()).map(|p| mode_of(&p.sock))
    }

    /// The socket descriptor of a port, for the XDP program's XSKMAP (with
    /// the classifier: `Classifier::set_xsk(port_index, queue, fd)`).
    pub fn port_fd(&self, port: PortId) -> Option<BorrowedFd<'_>> {
        self.port(port.index()).map(|p| p.sock.borrow_fd())
    }

    /// Interface name and queue of a port.
    pub fn port_name(&self, port: PortId) -> Option<(&str, u32)> {
        self.port(port.index())?;
        self.names.get(port.index()).map(|(n, q)| (n.as_str(), *q))
    }

    /// Userspace counters of a port.
    pub fn stats(&self, port: PortId) -> Option<PortStats> {
        self.port(port.index()).map(|p| p.stats)
    }

    /// The kernel's counters of a port's socket.
    pub fn kernel_stats(&self, port: PortId) -> Option<io::Result<KernelStats>> {
        let p = self.port(port.index())?;
        Some(sys::statistics(&p.sock.fd).map(|s| KernelStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        }))
    }

    /// Frames in the UMEM.
    pub fn frames_total(&self) -> usize {
        self.pool.free.total() as usize
    }

    /// Frames in the free stack.
    pub fn frames_free(&self) -> usize {
        self.pool.free.len()
    }

    /// Frames posted to fill rings (owned by the kernel until received).
    pub fn frames_in_fill(&self) -> usize {
        self.ports
            .iter()
            .flatten()
            .map(|p| p.in_fill as usize)
            .sum()
    }

    /// Frames on TX rings not yet completed.
    pub fn frames_in_tx(&self) -> usize {
        self.ports.iter().flatten().map(|p| p.in_tx as usize).sum()
    }

    /// Waits up to `timeout` until some port has RX descriptors (`poll`).
    /// Returns whether one has.
    pub fn poll(&mut self, timeout: Duration) -> io::Result<bool> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        sys::poll_in(&mut self.pollfds, ms)
    }

    /// Tops up a port's fill ring to `fill_target` frames from the free
    /// stack, publishes them with one store, and wakes the kernel if the
    /// ring asks for it. Returns the number of frames posted.
    pub fn refill_port(&mut self, port: PortId) -> u32 {
        if port.index() < self.ports.len() {
            self.refill(port.index())
        } else {
            0
        }
    }

    fn refill(&mut self, i: usize) -> u32 {
        let Some(p) = self.ports[i].as_mut() else {
            return 0;
        };
        let want = self.cfg.fill_target.saturating_sub(p.in_fill);
        let mut posted = 0;
        while posted < want {
            let Some(idx) = self.pool.free.pop() else {
                break;
            };
            if !p.sock.fill.push(self.pool.area.chunk_addr(idx)) {
                self.pool.free.push(idx);
                break;
            }
            posted += 1;
        }
        if posted > 0 {
            p.sock.fill.publish();
            p.in_fill += posted;
        }
        if self.cfg.need_wakeup && p.sock.fill.needs_wakeup() {
            sys::kick_rx(&p.sock.fd);
            p.stats.fill_kicks += 1;
        }
        posted
    }

    /// Publishes a port's TX descriptors and wakes the kernel if needed.
    fn kick_tx(&mut self, i: usize) {
        let need_wakeup = self.cfg.need_wakeup;
        let busy = self.cfg.busy_poll.is_some();
        let Some(p) = self.ports[i].as_mut() else {
            return;
        };
        if p.sock.tx.unpublished() > 0 {
            p.sock.tx.publish();
        }
        if p.sock.zerocopy {
            let asks = !need_wakeup || busy || p.sock.tx.needs_wakeup();
            if p.sock.tx.pending() > 0 && asks {
                p.stats.tx_kicks += 1;
                if sys::kick_tx(&p.sock.fd).is_err() {
                    p.stats.tx_kick_errors += 1;
                }
            }
            return;
        }
        // Copy mode: the kernel transmits only inside sendto, a bounded
        // number of frames per call; kick while that makes progress.
        let mut pending = p.sock.tx.pending();
        for _ in 0..COPY_MODE_KICKS {
            if pending == 0 {
                break;
            }
            p.stats.tx_kicks += 1;
            if sys::kick_tx(&p.sock.fd).is_err() {
                p.stats.tx_kick_errors += 1;
                break;
            }
            let now = p.sock.tx.pending();
            if now >= pending {
                break;
            }
            pending = now;
        }
    }

    /// Moves a port's completed TX frames to the free stack.
    fn reap(&mut self, i: usize) -> u32 {
        let Some(p) = self.ports[i].as_mut() else {
            return 0;
        };
        let mut n = 0;
        while let Some(addr) = p.sock.comp.pop() {
            if let Some(idx) = self.pool.area.idx_of(addr) {
                self.pool.free.push(idx);
            }
            n += 1;
        }
        if n > 0 {
            p.sock.comp.release();
            p.in_tx = p.in_tx.saturating_sub(n);
            p.stats.tx_completed += u64::from(n);
        }
        n
    }
}

impl XskIo {
    /// The open port at index `i`.
    #[inline]
    fn port(&self, i: usize) -> Option<&Port> {
        self.ports.get(i).and_then(Option::as_ref)
    }
}

fn mode_of(s: &XskSocket) -> BoundMode {
    if s.zerocopy {
        BoundMode::ZeroCopy
    } else {
        BoundMode::Copy
    }
}

impl FrameIo for XskIo {
    #[inline]
    fn port_count(&self) -> usize {
        self.ports.len()
    }

    fn recv(&mut self, port: PortId, out: &mut Vec<Frame>, max: usize) -> usize {
        let i = port.index();
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return 0;
        };
        let (mut popped, mut got) = (0u32, 0usize);
        while got < max {
            let Some(d) = p.sock.rx.pop() else { break };
            popped += 1;
            match self.pool.area.frame_at(d.addr, d.len) {
                Some(f) => {
                    out.push(f);
                    got += 1;
                }
                None => {
                    p.stats.rx_invalid += 1;
                    if let Some(idx) = self.pool.area.idx_of(d.addr) {
                        self.pool.free.push(idx);
                    }
                }
            }
        }
        if popped == 0 && self.cfg.busy_poll.is_some() {
            // Busy polling: this syscall runs the driver's NAPI for us.
            sys::kick_rx(&p.sock.fd);
            p.stats.fill_kicks += 1;
        }
        if popped > 0 {
            // One release store for the whole batch.
            p.sock.rx.release();
            p.in_fill = p.in_fill.saturating_sub(popped);
            p.stats.rx_frames += got as u64;
        }
        self.refill(i);
        got
    }

    fn send(&mut self, port: PortId, frame: Frame) -> Result<(), Frame> {
        assert_eq!(
            frame.pool(),
            self.pool.area.pool(),
            "frame of another XskIo"
        );
        let i = port.index();
        if self.port(i).is_none() || frame.len() < MIN_FRAME_LEN {
            return Err(frame);
        }
        let desc = libc::xdp_desc {
            addr: self.pool.area.data_addr(&frame),
            len: frame.len() as u32,
            options: 0,
        };
        let pushed = self.ports[i].as_mut().is_some_and(|p| p.sock.tx.push(desc));
        if !pushed {
            // Ring full: let the kernel drain it, then try once more.
            self.kick_tx(i);
            self.reap(i);
            let Some(p) = self.ports[i].as_mut() else {
                return Err(frame);
            };
            if !p.sock.tx.push(desc) {
                p.stats.tx_ring_full += 1;
                return Err(frame);
            }
        }
        let Some(p) = self.ports[i].as_mut() else {
            return Err(frame);
        };
        p.in_tx += 1;
        p.stats.tx_frames += 1;
        // The chunk now belongs to the kernel until it comes back through
        // the completion ring; the handle ends here.
        drop(frame);
        Ok(())
    }

    fn flush(&mut self) {
        for i in 0..self.ports.len() {
            self.kick_tx(i);
            self.reap(i);
        }
        for i in 0..self.ports.len() {
            self.refill(i);
        }
    }

    #[inline]
    fn alloc(&mut self) -> Option<Frame> {
        self.pool.alloc()
    }

    #[inline]
    fn free(&mut self, frame: Frame) {
        self.pool.free(frame)
    }

    #[inline]
    fn data(&self, frame: &Frame) -> &[u8] {
        self.pool.data(frame)
    }

    #[inline]
    fn data_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.data_mut(frame)
    }

    #[inline]
    fn split(&mut self, frame: &Frame) -> (&mut [u8], Spares<'_>) {
        self.pool.split(frame)
    }

    #[inline]
    fn chunk(&self, frame: &Frame) -> &[u8] {
        self.pool.chunk(frame)
    }

    #[inline]
    fn chunk_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.chunk_mut(frame)
    }

    #[inline]
    fn meta(&self, frame: &Frame, len: usize) -> Option<&[u8]> {
        self.pool.meta(frame, len)
    }

    fn clone_frame(&mut self, frame: &Frame) -> Option<Frame> {
        self.pool.clone_frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker owns its I/O on its own thread: `Send` is required.
    #[test]
    fn io_is_send() {
        fn is_send<T: Send>() {}
        is_send::<XskIo>();
        is_send::<crate::xsk::MemIo>();
    }
}
