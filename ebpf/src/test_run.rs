//! Running the classifier on one frame without a NIC (`BPF_PROG_TEST_RUN`),
//! for tests and benchmarks.
//!
//! What the kernel hands back for an XDP test run:
//! * the action the program returned. With an empty XSKMAP (no socket at
//!   the queue) `bpf_redirect_map` returns its fallback, `XDP_DROP`, so a
//!   switched frame comes back as [`XdpAction::Drop`] with the
//!   `redirect_failed` counter moved;
//! * the data from `data_meta` to `data_end`: the metadata area (empty
//!   unless the program wrote one) followed by the frame as the program left
//!   it (after decapsulation or tag pop);
//! * the output `xdp_md`, whose `data` field is the metadata length.

use libbpf_rs::ProgramInput;

use crate::abi::Meta;
use crate::classifier::Classifier;
use crate::error::{Error, Result};

/// An XDP program's return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0).
    Aborted,
    /// `XDP_DROP` (1).
    Drop,
    /// `XDP_PASS` (2).
    Pass,
    /// `XDP_TX` (3).
    Tx,
    /// `XDP_REDIRECT` (4).
    Redirect,
    /// Anything else.
    Unknown(u32),
}

impl From<u32> for XdpAction {
    fn from(v: u32) -> Self {
        match v {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            other => XdpAction::Unknown(other),
        }
    }
}

/// The outcome of one test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// What the program returned.
    pub action: XdpAction,
    /// Length of the metadata area the program left before the frame.
    pub meta_len: usize,
    /// Metadata area followed by the frame: exactly what the kernel copied
    /// out, from `data_meta` to `data_end`.
    pub data: Vec<u8>,
}

impl TestRun {
    /// The metadata, if the program wrote a full [`Meta`].
    pub fn meta(&self) -> Option<Meta> {
        (self.meta_len == Meta::SIZE)
            .then(|| Meta::from_bytes(&self.data))
            .flatten()
    }

    /// The frame as the program left it.
    pub fn frame(&self) -> &[u8] {
        &self.data[self.meta_len.min(self.data.len())..]
    }
}

/// Size of `struct xdp_md`.
const XDP_MD_SIZE: usize = 24;
/// Room for what the program may add in front (metadata) or behind.
const OUT_SLACK: usize = 256;

impl Classifier {
    /// Runs the program once on `frame` as if received on interface
    /// `ifindex` (which must exist in the calling thread's namespace; 1 is
    /// always the loopback) at RX queue `rx_queue`.
    ///
    /// The kernel refuses frames shorter than 14 bytes.
    pub fn test_run(&self, frame: &[u8], ifindex: u32, rx_queue: u32) -> Result<TestRun> {
        let mut ctx_in = xdp_md(0, frame.len() as u32, ifindex, rx_queue);
        let mut ctx_out = [0u8; XDP_MD_SIZE];
        let mut out = vec![0u8; frame.len() + OUT_SLACK];
        let input = ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            context_in: Some(&mut ctx_in),
            context_out: Some(&mut ctx_out),
            repeat: 1,
            ..Default::default()
        };
        let output = self
            .program()
            .test_run(input)
            .map_err(|source| Error::TestRun { source })?;
        let action = XdpAction::from(output.return_value);
        let data = output.data.map(|d| d.to_vec()).unwrap_or_default();
        // xdp_md.data (offset 0) is relative to data_meta: the metadata length.
        let meta_len =
            u32::from_ne_bytes([ctx_out[0], ctx_out[1], ctx_out[2], ctx_out[3]]) as usize;
        Ok(TestRun {
            action,
            meta_len,
            data,
        })
    }
}

/// `struct xdp_md { data, data_end, data_meta, ingress_ifindex,
/// rx_queue_index, egress_ifindex }` as bytes (offsets relative to the
/// start of the metadata area, as test runs expect).
fn xdp_md(data: u32, data_end: u32, ifindex: u32, rx_queue: u32) -> [u8; XDP_MD_SIZE] {
    let mut b = [0u8; XDP_MD_SIZE];
    for (i, v) in [data, data_end, 0, ifindex, rx_queue, 0]
        .into_iter()
        .enumerate()
    {
        b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    b
}

impl Classifier {
    /// Runs the program once on `frame` (received on `ifindex`, RX queue
    /// `rx_queue`) and returns the time the kernel measured around the run,
    /// for benchmarks: average many calls. One run per call because the
    /// kernel's `repeat` reruns the program on the frame the previous run
    /// left (decapsulated, tag popped, metadata in front), and its
    /// live-frames mode recycles pages without restoring the bytes a
    /// program rewrote; either would time a different path.
    pub fn test_run_timed(
        &self,
        frame: &[u8],
        ifindex: u32,
        rx_queue: u32,
    ) -> Result<std::time::Duration> {
        let mut ctx_in = xdp_md(0, frame.len() as u32, ifindex, rx_queue);
        let input = ProgramInput {
            data_in: Some(frame),
            context_in: Some(&mut ctx_in),
            repeat: 1,
            ..Default::default()
        };
        let output = self
            .program()
            .test_run(input)
            .map_err(|source| Error::TestRun { source })?;
        Ok(output.duration)
    }
}
