//! The frame area: one anonymous, page-aligned mapping cut into equal chunks.
//!
//! The same area type backs the AF_XDP UMEM (registered with the kernel by
//! the first socket) and the in-memory [`MemIo`](super::MemIo), so both
//! share one bounds-checked accessor path. This file and `ring.rs`/`sys.rs`
//! are the only places in `xsk` with `unsafe`.
//!
//! Aliasing contract: the kernel reads and writes only chunks that userspace
//! has handed to it (fill and TX rings) and not yet got back (RX and
//! completion rings). Userspace touches a chunk only through a [`Frame`],
//! which exists exactly while userspace owns the chunk, and only through the
//! area whose pool id the frame carries. So a `&[u8]`/`&mut [u8]` made here
//! never overlaps bytes the kernel may write.

use std::io;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::frame::{Frame, FrameIdx, FreeFrames};

/// Source of unique pool ids, so a frame is never used with another area.
static NEXT_POOL: AtomicU32 = AtomicU32::new(1);

/// An anonymous mapping of `count` chunks of `frame_size` bytes.
#[derive(Debug)]
pub(crate) struct Area {
    ptr: NonNull<u8>,
    len: usize,
    frame_size: u32,
    count: u32,
    pool: u32,
}

// SAFETY: `Area` owns its mapping exclusively (nothing else holds the
// pointer); moving it to another thread moves that ownership. Access goes
// through `&self`/`&mut self` under the aliasing contract above.
unsafe impl Send for Area {}

impl Area {
    /// Maps `count * frame_size` bytes, zeroed and pre-faulted; with
    /// `huge`, on transparent huge pages where the kernel gives them (see
    /// [`XskConfig::huge_pages`](super::XskConfig::huge_pages)).
    /// The caller has validated that the product fits in `usize`.
    pub(crate) fn new(frame_size: u32, count: u32, huge: bool) -> io::Result<Self> {
        let len = frame_size as usize * count as usize;
        // Huge pages must be asked for before the pages are faulted in.
        let populate = if huge { 0 } else { libc::MAP_POPULATE };
        // SAFETY: an anonymous private mapping with a null hint creates fresh
        // memory and has no preconditions; the result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | populate,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if huge {
            // SAFETY: `p..p+len` is the mapping just created; madvise only
            // changes how its (still untouched) pages are backed. Failure
            // (THP disabled) leaves ordinary pages: not an error.
            if unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) } != 0 {
                tracing::debug!("UMEM: no transparent huge pages");
            }
            // Fault every page in now (as MAP_POPULATE would), so that
            // neither registration nor the first frames pay for it.
            // SAFETY: as above; MADV_POPULATE_WRITE only faults pages in.
            if unsafe { libc::madvise(p, len, libc::MADV_POPULATE_WRITE) } != 0 {
                let page = super::sys::page_size();
                for off in (0..len).step_by(page) {
                    // SAFETY: `off < len`: inside the writable mapping,
                    // which nothing else references yet.
                    unsafe { p.cast::<u8>().add(off).write_volatile(0) };
                }
            }
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Area {
            ptr,
            len,
            frame_size,
            count,
            pool: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Start address (for `XDP_UMEM_REG`).
    pub(crate) fn base_addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn frame_size(&self) -> u32 {
        self.frame_size
    }

    #[inline]
    pub(crate) fn pool(&self) -> u32 {
        self.pool
    }

    /// UMEM address (offset in the area) of a chunk's first byte.
    #[inline]
    pub(crate) fn chunk_addr(&self, idx: FrameIdx) -> u64 {
        u64::from(idx.get()) * u64::from(self.frame_size)
    }

    /// UMEM address of a frame's first data byte (for a TX descriptor).
    #[inline]
    pub(crate) fn data_addr(&self, f: &Frame) -> u64 {
        self.chunk_addr(f.idx()) + f.offset() as u64
    }

    /// The chunk holding UMEM address `addr`, if in range.
    #[inline]
    pub(crate) fn idx_of(&self, addr: u64) -> Option<FrameIdx> {
        let i = addr / u64::from(self.frame_size);
        u32::try_from(i)
            .ok()
            .filter(|&i| i < self.count)
            .map(FrameIdx::new)
    }

    /// A frame for a chunk userspace owns, data window `[offset, offset+len)`.
    #[inline]
    pub(crate) fn frame(&self, idx: FrameIdx, offset: usize, len: usize) -> Option<Frame> {
        let size = u16::try_from(self.frame_size).ok()?;
        let o = u16::try_from(offset).ok()?;
        let l = u16::try_from(len).ok()?;
        (idx.get() < self.count && offset + len <= usize::from(size))
            .then(|| Frame::new(idx, self.pool, o, l, size))
    }

    /// A frame for the RX/TX descriptor `(addr, len)` (aligned chunk mode:
    /// the chunk is `addr / frame_size`, the offset is the remainder).
    #[inline]
    pub(crate) fn frame_at(&self, addr: u64, len: u32) -> Option<Frame> {
        let idx = self.idx_of(addr)?;
        let offset = (addr - self.chunk_addr(idx)) as usize;
        self.frame(idx, offset, len as usize)
    }

    /// Checks that `f` belongs here and returns the byte range of `[from, to)`
    /// within the chunk as an absolute range in the area.
    #[inline]
    fn range(&self, f: &Frame, from: usize, to: usize) -> (usize, usize) {
        assert_eq!(
            f.pool(),
            self.pool,
            "frame {} used with a frame area it does not belong to",
            f.idx().get()
        );
        let base = self.chunk_addr(f.idx()) as usize;
        let (start, end) = (base + from, base + to);
        // Frames are only built by `frame()`, which checks the bounds; keep
        // the check anyway: it is what makes the slices below sound.
        assert!(from <= to && to <= self.frame_size as usize && end <= self.len);
        (start, end)
    }

    /// Bytes `[from, to)` of the frame's chunk.
    #[inline]
    pub(crate) fn bytes(&self, f: &Frame, from: usize, to: usize) -> &[u8] {
        let (start, end) = self.range(f, from, to);
        // SAFETY: `start..end` lies inside the mapping (checked by `range`);
        // the frame proves userspace owns this chunk, so the kernel does not
        // write it, and `&self` rules out a live `&mut` from `bytes_mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), end - start) }
    }

    /// Mutable bytes `[from, to)` of the frame's chunk.
    #[inline]
    pub(crate) fn bytes_mut(&mut self, f: &Frame, from: usize, to: usize) -> &mut [u8] {
        let (start, end) = self.range(f, from, to);
        // SAFETY: as in `bytes`; `&mut self` makes this the only live slice
        // into the area.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), end - start) }
    }

    /// Copies bytes `[from, to)` of the chunk of `src` to the same place in
    /// the chunk of `dst`.
    pub(crate) fn copy_range(&mut self, src: &Frame, dst: &Frame, from: usize, to: usize) {
        let (s, e) = self.range(src, from, to);
        let (d, _) = self.range(dst, from, to);
        if s == d {
            return;
        }
        // SAFETY: both ranges lie inside the mapping (checked by `range`) and
        // in distinct chunks, hence disjoint; both chunks are owned by
        // userspace (each has a frame); `&mut self` excludes any other live
        // slice into the area.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(s),
                self.ptr.as_ptr().add(d),
                e - s,
            );
        }
    }
}

impl Area {
    /// Splits the borrow: `f`'s whole chunk, writable, and a [`Spares`] that
    /// allocates, writes and frees *other* frames meanwhile.
    pub(crate) fn split<'a>(
        &'a mut self,
        free: &'a mut FreeFrames,
        f: &Frame,
        data_offset: usize,
    ) -> (&'a mut [u8], Spares<'a>) {
        let (start, end) = self.range(f, 0, self.frame_size as usize);
        // SAFETY: `start..end` is `f`'s chunk inside the mapping (checked by
        // `range`), owned by userspace because `f` exists. `&'a mut self`
        // makes this the only slice into the area for `'a` apart from the
        // ones `Spares` hands out, which never cover `f.idx()`.
        let buf =
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), end - start) };
        let spares = Spares {
            base: self.ptr,
            len: self.len,
            frame_size: self.frame_size,
            count: self.count,
            pool: self.pool,
            excluded: f.idx(),
            data_offset,
            free,
            _area: PhantomData,
        };
        (buf, spares)
    }
}

/// The rest of a frame area while one frame's chunk is borrowed (see
/// [`FrameIo::split`](super::FrameIo::split)): allocates free frames, gives
/// their chunks, and frees them. It never gives out the borrowed chunk.
#[derive(Debug)]
pub struct Spares<'a> {
    base: NonNull<u8>,
    len: usize,
    frame_size: u32,
    count: u32,
    pool: u32,
    excluded: FrameIdx,
    data_offset: usize,
    free: &'a mut FreeFrames,
    _area: PhantomData<&'a mut [u8]>,
}

impl Spares<'_> {
    /// A free frame with an empty data window at the standard data offset.
    pub fn alloc(&mut self) -> Option<Frame> {
        let idx = self.free.pop()?;
        let size = u16::try_from(self.frame_size).ok()?;
        let off = u16::try_from(self.data_offset).ok()?;
        Some(Frame::new(idx, self.pool, off, 0, size))
    }

    /// A frame's whole chunk, writable.
    ///
    /// # Panics
    ///
    /// If `f` belongs to another area or is the borrowed frame (neither can
    /// happen with frames from [`alloc`](Self::alloc)).
    pub fn chunk_mut(&mut self, f: &Frame) -> &mut [u8] {
        assert_eq!(f.pool(), self.pool, "frame of another frame area");
        assert_ne!(f.idx(), self.excluded, "the borrowed frame's chunk");
        assert!(f.idx().get() < self.count);
        let start = u64::from(f.idx().get()) * u64::from(self.frame_size);
        let (start, n) = (start as usize, self.frame_size as usize);
        assert!(start + n <= self.len);
        // SAFETY: the chunk lies inside the mapping (checked above), is owned
        // by userspace (`f` exists), and is not the excluded chunk, so it is
        // disjoint from the slice `split` returned; `&mut self` allows one
        // such slice at a time; the area outlives `'_` (PhantomData borrow).
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(start), n) }
    }

    /// Returns a frame to the free stack.
    pub fn free(&mut self, f: Frame) {
        assert_eq!(f.pool(), self.pool, "frame of another frame area");
        self.free.push(f.idx());
    }

    /// Frames left in the free stack.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, and no
        // slice into it outlives `self`. Sockets that registered it are
        // dropped before the area (field order in `XskIo`); the kernel pins
        // its own page references in any case.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both backings give zeroed, writable chunks that keep what was
    /// written (huge pages where the kernel has them, ordinary ones where
    /// not: either way the area must work the same).
    #[test]
    fn huge_and_ordinary_areas_are_zeroed_and_writable() {
        for huge in [false, true] {
            let mut a = Area::new(2048, 2048, huge).expect("area");
            assert_eq!(a.len(), 2048 * 2048);
            for i in [0u32, 1, 1023, 2047] {
                let f = a.frame(FrameIdx::new(i), 0, 2048).expect("frame");
                assert!(a.bytes(&f, 0, 2048).iter().all(|&b| b == 0), "zeroed");
                a.bytes_mut(&f, 0, 2048).fill(i as u8 ^ 0x5a);
            }
            for i in [0u32, 1, 1023, 2047] {
                let f = a.frame(FrameIdx::new(i), 0, 2048).expect("frame");
                assert!(a.bytes(&f, 0, 2048).iter().all(|&b| b == i as u8 ^ 0x5a));
            }
        }
    }
}
