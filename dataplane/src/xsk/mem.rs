//! [`MemIo`]: the [`FrameIo`] seam in memory, for tests and benches of the
//! pure engine. Frames are injected per port and transmissions are recorded
//! per port; the frame area, free stack and accessors are the same [`Pool`] as
//! [`XskIo`](super::XskIo)'s.

use std::collections::VecDeque;

use super::frame::{Frame, FrameIdx};
use super::pool::Pool;
use super::{FrameIo, PortId, Spares, XskConfig, XskError, MIN_FRAME_LEN};

/// One transmitted frame as recorded by [`MemIo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The chunk it was sent from (to check that forwarding did not copy).
    pub idx: FrameIdx,
    /// The bytes sent.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct MemPort {
    rx: VecDeque<Frame>,
    tx: Vec<Sent>,
}

/// In-memory [`FrameIo`]: `inject` frames, run the engine, `take_sent`.
///
/// Sent frames go back to the free stack at the next [`FrameIo::flush`], as
/// completions do on AF_XDP.
#[derive(Debug)]
pub struct MemIo {
    ports: Vec<MemPort>,
    in_flight: Vec<FrameIdx>,
    pool: Pool,
}

impl MemIo {
    /// An instance with `ports` ports over a frame area shaped by `cfg`
    /// (only `frame_size`, `frame_count` and `headroom` matter).
    pub fn new(ports: usize, cfg: &XskConfig) -> Result<Self, XskError> {
        cfg.validate()?;
        Ok(MemIo {
            ports: (0..ports).map(|_| MemPort::default()).collect(),
            in_flight: Vec::new(),
            pool: Pool::new(cfg)?,
        })
    }

    /// Queues a received frame on `port`: `meta` is placed right before
    /// `data`, as the XDP program's metadata is. Returns false when no frame
    /// is free, the port does not exist or it does not fit.
    pub fn inject(&mut self, port: PortId, meta: &[u8], data: &[u8]) -> bool {
        if port.index() >= self.ports.len() || meta.len() > self.pool.data_offset() {
            return false;
        }
        let Some(mut f) = self.alloc() else {
            return false;
        };
        if !f.set_len(data.len()) {
            self.free(f);
            return false;
        }
        self.pool
            .area
            .bytes_mut(&f, f.offset() - meta.len(), f.offset())
            .copy_from_slice(meta);
        self.data_mut(&f).copy_from_slice(data);
        f.set_len(data.len());
        self.ports[port.index()].rx.push_back(f);
        true
    }

    /// Takes the frames sent on `port` so far.
    pub fn take_sent(&mut self, port: PortId) -> Vec<Sent> {
        self.ports
            .get_mut(port.index())
            .map(|p| std::mem::take(&mut p.tx))
            .unwrap_or_default()
    }

    /// Frames in the free stack.
    pub fn frames_free(&self) -> usize {
        self.pool.free.len()
    }

    /// Frames in the area.
    pub fn frames_total(&self) -> usize {
        self.pool.free.total() as usize
    }
}

impl FrameIo for MemIo {
    fn port_count(&self) -> usize {
        self.ports.len()
    }

    fn recv(&mut self, port: PortId, out: &mut Vec<Frame>, max: usize) -> usize {
        let Some(p) = self.ports.get_mut(port.index()) else {
            return 0;
        };
        let n = max.min(p.rx.len());
        out.extend(p.rx.drain(..n));
        n
    }

    fn send(&mut self, port: PortId, frame: Frame) -> Result<(), Frame> {
        if port.index() >= self.ports.len() || frame.len() < MIN_FRAME_LEN {
            return Err(frame);
        }
        let bytes = self.data(&frame).to_vec();
        self.ports[port.index()].tx.push(Sent {
            idx: frame.idx(),
            bytes,
        });
        self.in_flight.push(frame.idx());
        Ok(())
    }

    fn flush(&mut self) {
        for idx in self.in_flight.drain(..) {
            self.pool.free.push(idx);
        }
    }

    fn alloc(&mut self) -> Option<Frame> {
        self.pool.alloc()
    }

    fn free(&mut self, frame: Frame) {
        self.pool.free(frame)
    }

    fn data(&self, frame: &Frame) -> &[u8] {
        self.pool.data(frame)
    }

    fn data_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.data_mut(frame)
    }

    fn split(&mut self, frame: &Frame) -> (&mut [u8], Spares<'_>) {
        self.pool.split(frame)
    }

    fn chunk(&self, frame: &Frame) -> &[u8] {
        self.pool.chunk(frame)
    }

    fn chunk_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.chunk_mut(frame)
    }

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

    fn io() -> MemIo {
        let cfg = XskConfig {
            frame_count: 8,
            ..XskConfig::default()
        };
        MemIo::new(2, &cfg).unwrap()
    }

    #[test]
    fn inject_recv_forward_without_copy() {
        let mut io = io();
        assert!(io.inject(PortId::new(0), &[1, 2, 3, 4], b"hello, ethernet frame"));
        let mut v = Vec::new();
        assert_eq!(io.recv(PortId::new(0), &mut v, 64), 1);
        let f = v.pop().unwrap();
        assert_eq!(io.meta(&f, 4), Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(io.data(&f), b"hello, ethernet frame");
        let idx = f.idx();
        let free_before = io.frames_free();
        io.send(PortId::new(1), f).unwrap();
        assert_eq!(
            io.frames_free(),
            free_before,
            "forwarding allocated a frame"
        );
        let sent = io.take_sent(PortId::new(1));
        assert_eq!(
            sent,
            vec![Sent {
                idx,
                bytes: b"hello, ethernet frame".to_vec()
            }]
        );
        io.flush();
        assert_eq!(io.frames_free(), io.frames_total());
    }

    #[test]
    fn push_head_clone_and_exhaustion() {
        let mut io = io();
        let mut f = io.alloc().unwrap();
        assert!(f.set_len(4));
        io.data_mut(&f).copy_from_slice(b"data");
        assert!(f.push_head(70));
        io.data_mut(&f)[..70].fill(0xaa);
        let c = io.clone_frame(&f).unwrap();
        assert_ne!(c.idx(), f.idx());
        assert_eq!(io.data(&c), io.data(&f));
        let mut held = vec![f, c];
        while let Some(f) = io.alloc() {
            held.push(f);
        }
        assert_eq!(held.len(), 8);
        assert!(!io.inject(PortId::new(0), &[], b"x"));
        assert!(io.clone_frame(&held[0]).is_none());
        for f in held {
            io.free(f);
        }
        assert_eq!(io.frames_free(), 8);
        let mut f = io.alloc().unwrap();
        assert!(f.set_len(MIN_FRAME_LEN));
        let mut f = io.send(PortId::new(9), f).unwrap_err();
        assert!(f.set_len(MIN_FRAME_LEN - 1));
        let f = io.send(PortId::new(0), f).unwrap_err();
        io.free(f);
    }

    /// The buffer-plus-offsets view the engine works with.
    #[test]
    fn chunk_view_and_window() {
        let mut io = io();
        assert!(io.inject(PortId::new(0), &[9; 8], b"0123456789abcdef"));
        let mut v = Vec::new();
        io.recv(PortId::new(0), &mut v, 1);
        let mut f = v.pop().unwrap();
        let (off, len) = (f.offset(), f.len());
        assert_eq!(io.chunk(&f).len(), f.capacity());
        assert_eq!(&io.chunk(&f)[off - 8..off], &[9; 8]);
        // Prepend 4 bytes in the headroom through the chunk, then move the
        // window over them.
        io.chunk_mut(&f)[off - 4..off].copy_from_slice(b"HDR:");
        assert!(f.set_window(off - 4, len + 4));
        assert_eq!(io.data(&f), b"HDR:0123456789abcdef");
        io.free(f);
    }

    /// The engine's shape: rewrite the received chunk while allocating and
    /// filling flood copies, then send them all.
    #[test]
    fn split_borrow_for_flood_copies() {
        let mut io = io();
        assert!(io.inject(PortId::new(0), &[], b"broadcast frame payload"));
        let mut v = Vec::new();
        io.recv(PortId::new(0), &mut v, 1);
        let mut f = v.pop().unwrap();
        let (off, len) = (f.offset(), f.len());
        let mut copies = Vec::new();
        {
            let (buf, mut spares) = io.split(&f);
            for tag in [b'1', b'2'] {
                let mut c = spares.alloc().unwrap();
                let chunk = spares.chunk_mut(&c);
                chunk[off..off + len].copy_from_slice(&buf[off..off + len]);
                chunk[off] = tag;
                assert!(c.set_len(len));
                copies.push(c);
            }
            buf[off] = b'0';
            assert_eq!(spares.available(), 8 - 3);
        }
        assert!(f.set_len(len));
        io.send(PortId::new(1), f).unwrap();
        for c in copies {
            io.send(PortId::new(1), c).unwrap();
        }
        let sent: Vec<_> = io
            .take_sent(PortId::new(1))
            .into_iter()
            .map(|s| s.bytes)
            .collect();
        assert_eq!(sent[0], b"0roadcast frame payload");
        assert_eq!(sent[1], b"1roadcast frame payload");
        assert_eq!(sent[2], b"2roadcast frame payload");
        io.flush();
        assert_eq!(io.frames_free(), 8);
    }

    #[test]
    #[should_panic(expected = "borrowed frame")]
    fn spares_never_alias_the_borrowed_chunk() {
        let mut io = io();
        let f = io.alloc().unwrap();
        let g = Frame::new(f.idx(), f.pool(), 0, 0, 2048);
        let (_buf, mut spares) = io.split(&f);
        let _ = spares.chunk_mut(&g);
    }

    #[test]
    #[should_panic(expected = "does not belong")]
    fn frame_of_another_instance_panics() {
        let mut a = io();
        let b = io();
        let f = a.alloc().unwrap();
        let _ = b.data(&f);
    }
}
