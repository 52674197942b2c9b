//! Frames: the index newtype, the owned frame handle and the free-frame stack.
//!
//! Everything here is plain data; no memory is touched. A [`Frame`] is the
//! proof that userspace owns one chunk of a frame area: it is neither `Clone`
//! nor `Copy` and only this module's siblings construct one, so while a
//! `Frame` exists neither the kernel nor another handle uses that chunk.

/// Index of a frame (chunk) in a frame area: chunk `i` starts at byte
/// `i * frame_size` of the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameIdx(u32);

impl FrameIdx {
    /// Wraps a raw index.
    pub const fn new(idx: u32) -> Self {
        FrameIdx(idx)
    }

    /// The raw index.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// An owned frame: one chunk of a frame area with a data window inside it.
///
/// The window is `[offset, offset + len)` within the chunk; the bytes before
/// `offset` are headroom (where the XDP program's metadata sits right after
/// RX, and where encapsulation headers are pushed), the bytes after the
/// window up to the chunk end are tailroom. Read and write the bytes through
/// the [`FrameIo`](super::FrameIo) that produced the frame.
///
/// Dropping a `Frame` instead of handing it back
/// ([`FrameIo::send`](super::FrameIo::send) or
/// [`FrameIo::free`](super::FrameIo::free)) leaks its chunk until the frame
/// area is dropped; it is never unsafe.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a frame must be sent or freed, or its chunk leaks"]
pub struct Frame {
    idx: FrameIdx,
    /// Identity of the frame area this frame belongs to.
    pool: u32,
    offset: u16,
    len: u16,
    size: u16,
}

impl Frame {
    /// Creates a handle. Only for the frame areas of this module: the caller
    /// asserts that it owns the chunk and that `offset + len <= size`.
    pub(crate) fn new(idx: FrameIdx, pool: u32, offset: u16, len: u16, size: u16) -> Self {
        debug_assert!(usize::from(offset) + usize::from(len) <= usize::from(size));
        Frame {
            idx,
            pool,
            offset,
            len,
            size,
        }
    }

    /// The chunk this frame occupies.
    pub fn idx(&self) -> FrameIdx {
        self.idx
    }

    pub(crate) fn pool(&self) -> u32 {
        self.pool
    }

    /// Offset of the first data byte within the chunk.
    pub fn offset(&self) -> usize {
        usize::from(self.offset)
    }

    /// Number of data bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when the frame holds no data bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes available before the data (for pushing headers).
    pub fn headroom(&self) -> usize {
        usize::from(self.offset)
    }

    /// Bytes available after the data (for growing it).
    pub fn tailroom(&self) -> usize {
        usize::from(self.size - self.offset - self.len)
    }

    /// Size of the chunk (the configured frame size).
    pub fn capacity(&self) -> usize {
        usize::from(self.size)
    }

    /// Grows the data window by `n` bytes at the front (to prepend headers).
    /// Returns false, changing nothing, when the headroom is smaller than `n`.
    pub fn push_head(&mut self, n: usize) -> bool {
        match u16::try_from(n) {
            Ok(n) if n <= self.offset => {
                self.offset -= n;
                self.len += n;
                true
            }
            _ => false,
        }
    }

    /// Shrinks the data window by `n` bytes at the front (to strip headers).
    /// Returns false, changing nothing, when the frame is shorter than `n`.
    pub fn pull_head(&mut self, n: usize) -> bool {
        match u16::try_from(n) {
            Ok(n) if n <= self.len => {
                self.offset += n;
                self.len -= n;
                true
            }
            _ => false,
        }
    }

    /// Sets the data length (the window's start stays). Returns false,
    /// changing nothing, when `len` does not fit in the chunk.
    pub fn set_len(&mut self, len: usize) -> bool {
        match u16::try_from(len) {
            Ok(len) if usize::from(len) <= usize::from(self.size - self.offset) => {
                self.len = len;
                true
            }
            _ => false,
        }
    }

    /// Moves the data window to start at `offset` with `len` bytes. Returns
    /// false, changing nothing, when the window does not fit in the chunk.
    pub fn set_window(&mut self, offset: usize, len: usize) -> bool {
        match (u16::try_from(offset), u16::try_from(len)) {
            (Ok(o), Ok(l)) if offset + len <= usize::from(self.size) => {
                self.offset = o;
                self.len = l;
                true
            }
            _ => false,
        }
    }
}

/// LIFO stack of the frames that userspace owns and nobody uses.
///
/// LIFO keeps recently used (cache-warm) chunks in use. Fixed capacity: it
/// never allocates after construction.
#[derive(Debug)]
pub struct FreeFrames {
    stack: Vec<FrameIdx>,
    total: u32,
}

impl FreeFrames {
    /// A stack holding every frame `0..total`.
    pub fn full(total: u32) -> Self {
        // Reverse so that frame 0 is popped first (purely cosmetic).
        let stack = (0..total).rev().map(FrameIdx).collect();
        FreeFrames { stack, total }
    }

    /// Number of free frames.
    pub fn len(&self) -> usize {
        self.stack.len()
    }

    /// True when no frame is free.
    pub fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    /// Number of frames this stack was built for.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Takes a free frame.
    pub fn pop(&mut self) -> Option<FrameIdx> {
        self.stack.pop()
    }

    /// Returns a frame to the stack.
    ///
    /// # Panics
    ///
    /// When the index is out of range or the stack is already full (a frame
    /// freed twice): either is a bug in this module, never a runtime
    /// condition.
    pub fn push(&mut self, idx: FrameIdx) {
        assert!(idx.0 < self.total, "frame {} out of range", idx.0);
        assert!(
            self.stack.len() < self.total as usize,
            "free-frame stack overflow: frame {} freed twice",
            idx.0
        );
        self.stack.push(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_ops() {
        let mut f = Frame::new(FrameIdx(3), 0, 256, 100, 2048);
        assert_eq!((f.headroom(), f.len(), f.tailroom()), (256, 100, 1692));
        assert!(f.push_head(70));
        assert_eq!((f.offset(), f.len()), (186, 170));
        assert!(!f.push_head(187));
        assert!(f.pull_head(70));
        assert!(!f.pull_head(101));
        assert!(f.set_len(2048 - 256));
        assert!(!f.set_len(2048 - 255));
        assert!(f.set_window(0, 2048));
        assert!(!f.set_window(1, 2048));
        assert_eq!(f.idx(), FrameIdx::new(3));
    }

    #[test]
    fn free_stack_lifo_and_bounds() {
        let mut s = FreeFrames::full(4);
        assert_eq!(s.len(), 4);
        let a = s.pop().unwrap();
        assert_eq!(a, FrameIdx(0));
        s.push(a);
        assert_eq!(s.pop(), Some(a));
        while s.pop().is_some() {}
        assert!(s.is_empty());
    }

    #[test]
    #[should_panic(expected = "freed twice")]
    fn free_stack_double_free_panics() {
        let mut s = FreeFrames::full(2);
        s.push(FrameIdx(1));
    }
}
