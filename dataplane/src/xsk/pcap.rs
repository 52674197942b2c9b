//! [`PcapIo`]: a [`FrameIo`] wrapper that records every frame received and
//! every frame sent to a classic pcap stream (Ethernet link type), for
//! debugging. Everything else is delegated unchanged.
//!
//! Classic pcap has no direction or interface field: a record is written for
//! each frame returned by `recv` and each frame `send` accepted, in call
//! order. Write errors never disturb the data path: the first one is kept
//! ([`PcapIo::error`]) and recording stops.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Frame, FrameIo, PortId, Spares};

/// pcap magic for microsecond timestamps.
const MAGIC_USEC: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;
/// Snapshot length written in the header (frames are never longer).
const SNAPLEN: u32 = 65535;

/// A [`FrameIo`] that also writes every received and sent frame to `W`.
#[derive(Debug)]
pub struct PcapIo<I, W: Write> {
    inner: I,
    out: W,
    error: Option<io::Error>,
    scratch: Vec<u8>,
}

impl<I: FrameIo, W: Write> PcapIo<I, W> {
    /// Wraps `inner`, writing the pcap file header to `out` first.
    pub fn new(inner: I, mut out: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_USEC.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapIo {
            inner,
            out,
            error: None,
            scratch: Vec::new(),
        })
    }

    /// The wrapped I/O.
    pub fn inner(&self) -> &I {
        &self.inner
    }

    /// The wrapped I/O, mutable.
    pub fn inner_mut(&mut self) -> &mut I {
        &mut self.inner
    }

    /// Unwraps into the I/O and the writer (flushed).
    pub fn into_parts(mut self) -> (I, W) {
        let _ = self.out.flush();
        (self.inner, self.out)
    }

    /// The first write error, after which recording stopped.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    fn record(out: &mut W, error: &mut Option<io::Error>, bytes: &[u8]) {
        if error.is_some() {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(ts.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&ts.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        if let Err(e) = out.write_all(&h).and_then(|()| out.write_all(bytes)) {
            *error = Some(e);
        }
    }
}

impl<I: FrameIo, W: Write> FrameIo for PcapIo<I, W> {
    fn port_count(&self) -> usize {
        self.inner.port_count()
    }

    fn recv(&mut self, port: PortId, out: &mut Vec<Frame>, max: usize) -> usize {
        let start = out.len();
        let n = self.inner.recv(port, out, max);
        for f in &out[start..] {
            Self::record(&mut self.out, &mut self.error, self.inner.data(f));
        }
        n
    }

    fn send(&mut self, port: PortId, frame: Frame) -> Result<(), Frame> {
        self.scratch.clear();
        self.scratch.extend_from_slice(self.inner.data(&frame));
        self.inner.send(port, frame)?;
        Self::record(&mut self.out, &mut self.error, &self.scratch);
        Ok(())
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn alloc(&mut self) -> Option<Frame> {
        self.inner.alloc()
    }

    fn free(&mut self, frame: Frame) {
        self.inner.free(frame);
    }

    fn data(&self, frame: &Frame) -> &[u8] {
        self.inner.data(frame)
    }

    fn data_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.inner.data_mut(frame)
    }

    fn chunk(&self, frame: &Frame) -> &[u8] {
        self.inner.chunk(frame)
    }

    fn chunk_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.inner.chunk_mut(frame)
    }

    fn split(&mut self, frame: &Frame) -> (&mut [u8], Spares<'_>) {
        self.inner.split(frame)
    }

    fn meta(&self, frame: &Frame, len: usize) -> Option<&[u8]> {
        self.inner.meta(frame, len)
    }

    fn clone_frame(&mut self, frame: &Frame) -> Option<Frame> {
        self.inner.clone_frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::{MemIo, XskConfig};

    /// Splits a pcap stream into (header, records).
    fn parse(b: &[u8]) -> (u32, Vec<Vec<u8>>) {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(0), MAGIC_USEC);
        let link = u32_at(20);
        let (mut o, mut recs) = (24, Vec::new());
        while o < b.len() {
            let (incl, orig) = (u32_at(o + 8) as usize, u32_at(o + 12) as usize);
            assert_eq!(incl, orig);
            recs.push(b[o + 16..o + 16 + incl].to_vec());
            o += 16 + incl;
        }
        (link, recs)
    }

    #[test]
    fn records_received_and_sent_frames() {
        let cfg = XskConfig {
            frame_count: 8,
            ..XskConfig::default()
        };
        let mut mem = MemIo::new(2, &cfg).unwrap();
        let a = b"frame number one, from port 0".to_vec();
        let b = b"frame number two, also port 0".to_vec();
        assert!(mem.inject(PortId::new(0), &[], &a));
        assert!(mem.inject(PortId::new(0), &[], &b));
        let mut io = PcapIo::new(mem, Vec::new()).unwrap();
        let mut v = Vec::new();
        assert_eq!(io.recv(PortId::new(0), &mut v, 8), 2);
        let second = v.pop().unwrap();
        io.send(PortId::new(1), second).unwrap();
        let first = v.pop().unwrap();
        // A refused send is not recorded.
        let first = io.send(PortId::new(7), first).unwrap_err();
        io.free(first);
        io.flush();
        assert!(io.error().is_none());
        let (mem, out) = io.into_parts();
        assert_eq!(mem.frames_free(), mem.frames_total());
        let (link, recs) = parse(&out);
        assert_eq!(link, LINKTYPE_ETHERNET);
        assert_eq!(recs, vec![a, b.clone(), b]);
    }
}
