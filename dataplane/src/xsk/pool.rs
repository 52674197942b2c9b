//! [`Pool`]: one worker's frame memory — the chunked area and its free
//! stack — with the buffer accessors every [`FrameIo`](super::FrameIo)
//! implementation shares, so [`XskIo`](super::XskIo) and
//! [`MemIo`](super::MemIo) differ only in how frames move, never in how
//! their bytes are reached.

use super::frame::{Frame, FreeFrames};
use super::umem::Area;
use super::{Spares, XskConfig, XskError};

/// The frame area and its free stack.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) free: FreeFrames,
    pub(crate) area: Area,
    data_offset: usize,
}

impl Pool {
    /// Maps an area of `cfg.frame_count` chunks of `cfg.frame_size` bytes,
    /// all free. `cfg` must be validated.
    pub(crate) fn new(cfg: &XskConfig) -> Result<Pool, XskError> {
        let area =
            Area::new(cfg.frame_size, cfg.frame_count, cfg.huge_pages).map_err(|source| {
                XskError::Umem {
                    bytes: cfg.frame_size as usize * cfg.frame_count as usize,
                    source,
                }
            })?;
        Ok(Pool {
            free: FreeFrames::full(cfg.frame_count),
            area,
            data_offset: cfg.data_offset(),
        })
    }

    /// Where received and allocated frames' data starts in their chunk.
    pub(crate) fn data_offset(&self) -> usize {
        self.data_offset
    }

    #[inline]
    pub(crate) fn alloc(&mut self) -> Option<Frame> {
        let idx = self.free.pop()?;
        self.area.frame(idx, self.data_offset, 0)
    }

    #[inline]
    pub(crate) fn free(&mut self, frame: Frame) {
        assert_eq!(frame.pool(), self.area.pool(), "frame of another pool");
        self.free.push(frame.idx());
    }

    #[inline]
    pub(crate) fn data(&self, frame: &Frame) -> &[u8] {
        self.area
            .bytes(frame, frame.offset(), frame.offset() + frame.len())
    }

    #[inline]
    pub(crate) fn data_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.area
            .bytes_mut(frame, frame.offset(), frame.offset() + frame.len())
    }

    #[inline]
    pub(crate) fn split(&mut self, frame: &Frame) -> (&mut [u8], Spares<'_>) {
        self.area.split(&mut self.free, frame, self.data_offset)
    }

    #[inline]
    pub(crate) fn chunk(&self, frame: &Frame) -> &[u8] {
        self.area.bytes(frame, 0, frame.capacity())
    }

    #[inline]
    pub(crate) fn chunk_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.area.bytes_mut(frame, 0, frame.capacity())
    }

    #[inline]
    pub(crate) fn meta(&self, frame: &Frame, len: usize) -> Option<&[u8]> {
        let start = frame.offset().checked_sub(len)?;
        Some(self.area.bytes(frame, start, frame.offset()))
    }

    pub(crate) fn clone_frame(&mut self, frame: &Frame) -> Option<Frame> {
        let idx = self.free.pop()?;
        let Some(copy) = self.area.frame(idx, frame.offset(), frame.len()) else {
            self.free.push(idx);
            return None;
        };
        self.area
            .copy_range(frame, &copy, frame.offset(), frame.offset() + frame.len());
        Some(copy)
    }
}
