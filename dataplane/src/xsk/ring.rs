//! The four single-producer/single-consumer rings an AF_XDP socket shares
//! with the kernel: fill and TX (userspace produces), RX and completion
//! (userspace consumes).
//!
//! Layout (kernel `xdp_mmap_offsets`): a `u32` producer head, a `u32`
//! consumer head, a `u32` flags word and `size` descriptors, each at an
//! offset the kernel reports. Heads run freely and wrap; the slot of head
//! `h` is `h & (size - 1)`.
//!
//! Memory synchronisation, as in the kernel's `xsk_queue.h`:
//! * producer side: write descriptors, then store the producer head with
//!   `Release` — the kernel's acquire-load of the head then sees the
//!   descriptors (and, for TX, the frame bytes written before);
//! * consumer side: load the producer head with `Acquire` before reading the
//!   descriptors it covers, and store the consumer head with `Release` after
//!   the last read of those slots, so the kernel does not overwrite a slot we
//!   are still reading.
//!
//! Both sides cache the other side's head and only reload it when the cached
//! value says the ring is full/empty, as libxdp does.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use super::sys;

/// The step that failed, for error messages.
pub(crate) type StepError = (&'static str, io::Error);

/// Ring sizes of one socket (all powers of two, validated by the caller).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingSizes {
    pub(crate) fill: u32,
    pub(crate) comp: u32,
    pub(crate) rx: u32,
    pub(crate) tx: u32,
}

/// The four rings of one socket.
#[derive(Debug)]
pub(crate) struct Rings {
    pub(crate) fill: ProdRing<u64>,
    pub(crate) comp: ConsRing<u64>,
    pub(crate) rx: ConsRing<libc::xdp_desc>,
    pub(crate) tx: ProdRing<libc::xdp_desc>,
}

impl Rings {
    /// Sizes the four rings of an unbound AF_XDP socket, asks the kernel for
    /// their offsets and maps them. Sizes and offsets come from this one
    /// call, which is what makes the mappings sound.
    pub(crate) fn setup(fd: &OwnedFd, sizes: RingSizes) -> Result<Rings, StepError> {
        let set = |opt, n, step| sys::ring_size(fd, opt, n).map_err(|e| (step, e));
        set(
            libc::XDP_UMEM_FILL_RING,
            sizes.fill,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        set(
            libc::XDP_UMEM_COMPLETION_RING,
            sizes.comp,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        set(libc::XDP_RX_RING, sizes.rx, "setsockopt(XDP_RX_RING)")?;
        set(libc::XDP_TX_RING, sizes.tx, "setsockopt(XDP_TX_RING)")?;
        let off = sys::mmap_offsets(fd).map_err(|e| ("getsockopt(XDP_MMAP_OFFSETS)", e))?;
        let fill_pg = libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t;
        let comp_pg = libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t;
        // The four maps share one justification: the offsets are the
        // kernel's for this socket, each size is the one just set for that
        // ring, and the descriptor types match the rings (u64 for fill and
        // completion, xdp_desc for RX and TX).
        // SAFETY: see above.
        let fill = unsafe { ProdRing::map(fd, &off.fr, sizes.fill, fill_pg) }
            .map_err(|e| ("mmap(fill ring)", e))?;
        // SAFETY: see above.
        let comp = unsafe { ConsRing::map(fd, &off.cr, sizes.comp, comp_pg) }
            .map_err(|e| ("mmap(completion ring)", e))?;
        // SAFETY: see above.
        let rx = unsafe { ConsRing::map(fd, &off.rx, sizes.rx, libc::XDP_PGOFF_RX_RING) }
            .map_err(|e| ("mmap(RX ring)", e))?;
        // SAFETY: see above.
        let tx = unsafe { ProdRing::map(fd, &off.tx, sizes.tx, libc::XDP_PGOFF_TX_RING) }
            .map_err(|e| ("mmap(TX ring)", e))?;
        Ok(Rings { fill, comp, rx, tx })
    }
}

/// A mapped ring; unmapped on drop.
#[derive(Debug)]
struct RingMap<T> {
    map: NonNull<u8>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    desc: NonNull<T>,
    mask: u32,
}

// SAFETY: the mapping is owned by this value alone (each ring is mapped once
// and wrapped once); the kernel is the only other party and synchronises
// through the atomics. Moving ownership to another thread is sound.
unsafe impl<T: Send> Send for RingMap<T> {}

impl<T: Copy> RingMap<T> {
    /// Maps the ring at page offset `pgoff` of socket `fd`.
    ///
    /// # Safety
    ///
    /// `off` must be the offsets the kernel reported (`XDP_MMAP_OFFSETS`) for
    /// this very ring of `fd`, `size` the (power of two) ring size configured
    /// on `fd` for it, and `T` the ring's descriptor type (`u64` for fill and
    /// completion, `libc::xdp_desc` for RX and TX).
    unsafe fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> io::Result<Self> {
        debug_assert!(size.is_power_of_two());
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a shared mapping of the socket's ring region; the kernel
        // validates offset and length against the ring it allocated.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        // SAFETY: the kernel's offsets lie inside the `map_len` bytes just
        // mapped (caller contract); heads and flags are 4-byte aligned u32s
        // and the descriptor array is aligned for `T`.
        let at = |o: u64| unsafe { NonNull::new_unchecked(map.as_ptr().add(o as usize)) };
        Ok(RingMap {
            map,
            map_len,
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            desc: at(off.desc).cast(),
            mask: size - 1,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping, aligned, and only ever
        // accessed atomically (by us and by the kernel).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    fn size(&self) -> u32 {
        self.mask + 1
    }

    /// The ring asks for a wakeup syscall (`XDP_RING_NEED_WAKEUP`).
    fn needs_wakeup(&self) -> bool {
        // The kernel sets the flag and then re-checks the ring; a full fence
        // orders our preceding head store before this load (libxdp relies on
        // the syscall boundary instead; the fence is cheap and conservative).
        fence(Ordering::SeqCst);
        self.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Writes the descriptor of head `head`.
    ///
    /// # Safety
    ///
    /// The slot must be owned by userspace: on a producer ring, `head` lies in
    /// `[producer, consumer + size)` as last synchronised with the kernel.
    unsafe fn write(&mut self, head: u32, v: T) {
        // SAFETY: `head & mask < size`, inside the mapped descriptor array;
        // the caller guarantees the kernel is not reading this slot.
        unsafe { self.desc.as_ptr().add((head & self.mask) as usize).write(v) }
    }

    /// Reads the descriptor of head `head`.
    ///
    /// # Safety
    ///
    /// The slot must be readable by userspace: on a consumer ring, `head`
    /// lies in `[consumer, producer)` after an acquire-load of `producer`.
    unsafe fn read(&self, head: u32) -> T {
        // SAFETY: `head & mask < size`, inside the mapped descriptor array;
        // the caller guarantees the kernel has published and will not rewrite
        // this slot before our consumer store.
        unsafe { self.desc.as_ptr().add((head & self.mask) as usize).read() }
    }
}

impl<T> Drop for RingMap<T> {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping created in `map`; no reference into it
        // outlives `self`.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

/// A ring userspace produces into (fill: `u64` addresses; TX: descriptors).
#[derive(Debug)]
pub(crate) struct ProdRing<T> {
    ring: RingMap<T>,
    /// Next head we will write (may be ahead of the published producer).
    cached_prod: u32,
    /// Our view of the kernel's consumer head plus `size`: the first head we
    /// may not write.
    cached_limit: u32,
}

impl<T: Copy> ProdRing<T> {
    /// Maps a producer ring.
    ///
    /// # Safety
    ///
    /// As [`RingMap::map`]; the ring must be a fill or TX ring.
    pub(crate) unsafe fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> io::Result<Self> {
        // SAFETY: forwarded caller contract.
        let ring = unsafe { RingMap::map(fd, off, size, pgoff)? };
        let cached_prod = ring.producer().load(Ordering::Relaxed);
        let cached_limit = ring.consumer().load(Ordering::Acquire).wrapping_add(size);
        Ok(ProdRing {
            ring,
            cached_prod,
            cached_limit,
        })
    }

    /// Free slots, reloading the kernel's consumer head only when fewer than
    /// `want` are known to be free.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_limit.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        // Acquire pairs with the kernel's release of the consumer head: the
        // kernel is done with the slots it consumed before we overwrite them.
        let cons = self.ring.consumer().load(Ordering::Acquire);
        self.cached_limit = cons.wrapping_add(self.ring.size());
        self.cached_limit.wrapping_sub(self.cached_prod)
    }

    /// Writes one descriptor into the next slot without publishing it.
    /// Returns false when the ring is full.
    pub(crate) fn push(&mut self, v: T) -> bool {
        if self.free(1) == 0 {
            return false;
        }
        // SAFETY: `free` just established `cached_prod < cached_limit`, i.e.
        // the slot is one the kernel has consumed (or never held).
        unsafe { self.ring.write(self.cached_prod, v) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
        true
    }

    /// Slots written by `push` but not yet published.
    pub(crate) fn unpublished(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.ring.producer().load(Ordering::Relaxed))
    }

    /// Publishes every pushed descriptor to the kernel.
    pub(crate) fn publish(&mut self) {
        // Release: the descriptor writes (and the frame bytes written before
        // them) happen-before the kernel's acquire-load of the producer head.
        // This store is the memory-synchronisation edge userspace → kernel.
        self.ring
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Published descriptors the kernel has not consumed yet.
    pub(crate) fn pending(&self) -> u32 {
        let prod = self.ring.producer().load(Ordering::Relaxed);
        prod.wrapping_sub(self.ring.consumer().load(Ordering::Acquire))
    }

    /// See [`RingMap::needs_wakeup`].
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    /// Every entry written (published or not) that the kernel has not
    /// consumed, oldest first: what a socket being closed still holds on
    /// this ring. Only meaningful once the kernel no longer consumes from
    /// it (no traffic redirected to the socket, no TX kick).
    pub(crate) fn unconsumed(&self) -> Vec<T> {
        let cons = self.ring.consumer().load(Ordering::Acquire);
        let n = self.cached_prod.wrapping_sub(cons).min(self.ring.size());
        (0..n)
            // SAFETY: heads in `[consumer, cached_prod)` are slots we wrote
            // and the kernel has not consumed; reading them races with at
            // most a kernel read of the same bytes.
            .map(|k| unsafe { self.ring.read(cons.wrapping_add(k)) })
            .collect()
    }
}

/// A ring userspace consumes from (RX: descriptors; completion: `u64`).
#[derive(Debug)]
pub(crate) struct ConsRing<T> {
    ring: RingMap<T>,
    /// Next head we will read (may be ahead of the published consumer).
    cached_cons: u32,
    /// Our view of the kernel's producer head.
    cached_prod: u32,
}

impl<T: Copy> ConsRing<T> {
    /// Maps a consumer ring.
    ///
    /// # Safety
    ///
    /// As [`RingMap::map`]; the ring must be an RX or completion ring.
    pub(crate) unsafe fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: libc::off_t,
    ) -> io::Result<Self> {
        // SAFETY: forwarded caller contract.
        let ring = unsafe { RingMap::map(fd, off, size, pgoff)? };
        let cached_cons = ring.consumer().load(Ordering::Relaxed);
        let cached_prod = ring.producer().load(Ordering::Acquire);
        Ok(ConsRing {
            ring,
            cached_cons,
            cached_prod,
        })
    }

    /// Entries ready to read, reloading the producer head when the cached
    /// view has none left.
    pub(crate) fn available(&mut self) -> u32 {
        let n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n > 0 {
            return n;
        }
        // Acquire pairs with the kernel's release of the producer head: the
        // descriptors (and the frame bytes the kernel wrote for RX) are
        // visible before we read them. Memory-synchronisation edge
        // kernel → userspace.
        self.cached_prod = self.ring.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Takes the next entry (not yet released to the kernel).
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.available() == 0 {
            return None;
        }
        // SAFETY: `available` established `cached_cons < cached_prod` after an
        // acquire-load: the slot is published and the kernel will not rewrite
        // it before we release it.
        let v = unsafe { self.ring.read(self.cached_cons) };
        self.cached_cons = self.cached_cons.wrapping_add(1);
        Some(v)
    }

    /// Releases every popped slot to the kernel.
    pub(crate) fn release(&mut self) {
        // Release: our reads of the popped slots happen-before the kernel
        // reuses them. Memory-synchronisation edge userspace → kernel.
        self.ring
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }
}
