//! Closing one port of an [`XskIo`] while the others keep running (live
//! `port del` in xvsd), and getting its frames back.
//!
//! A socket being closed holds UMEM frames: posted on its fill ring,
//! received and not yet taken from its RX ring, queued on its TX ring, or
//! sent and not yet reaped from its completion ring. All four rings are
//! still mapped here, so every frame the kernel has not consumed is read
//! back from them into the free stack before the socket closes. That is
//! exact only when the kernel no longer touches the socket: the caller
//! first removes it from the XSKMAP (and detaches XDP from its interface),
//! and sends nothing more to it. Frames a zero-copy driver had already
//! taken off the fill ring are lost with the socket; [`ClosedPort::lost`]
//! counts them.

use std::os::fd::AsRawFd as _;

use super::super::{sys, PortId, XskError};
use super::XskIo;

/// What closing a port gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedPort {
    /// Frames returned to the free stack (RX, completion, fill and TX
    /// rings).
    pub recovered: u32,
    /// Frames the kernel still held when the socket closed (not returned).
    pub lost: u32,
}

impl XskIo {
    /// Closes the socket of `port`, returning its frames to the free stack.
    /// The index stays reserved (sends to it fail, receives give nothing)
    /// until [`open_port_at`](Self::open_port_at) reuses it.
    ///
    /// The frames are read back from the socket's four rings (fill, RX, TX,
    /// completion), which is exact only once the kernel no longer touches
    /// the socket: first remove it from the XSKMAP (and detach XDP from its
    /// interface) and send nothing more to it. Frames a zero-copy driver had
    /// already taken off the fill ring are lost with the socket
    /// ([`ClosedPort::lost`]).
    pub fn close_port(&mut self, port: PortId) -> Result<ClosedPort, XskError> {
        let i = port.index();
        let Some(mut p) = self.ports.get_mut(i).and_then(Option::take) else {
            return Err(XskError::NoSuchPort(port.0));
        };
        let mut back = Vec::new();
        let mut rx = 0u32;
        while let Some(d) = p.sock.rx.pop() {
            back.push(d.addr);
            rx += 1;
        }
        p.sock.rx.release();
        let mut done = 0u32;
        while let Some(addr) = p.sock.comp.pop() {
            back.push(addr);
            done += 1;
        }
        p.sock.comp.release();
        let fill = p.sock.fill.unconsumed();
        let tx = p.sock.tx.unconsumed();
        back.extend(fill.iter().copied());
        back.extend(tx.iter().map(|d| d.addr));
        let mut recovered = 0u32;
        for addr in back {
            if let Some(idx) = self.pool.area.idx_of(addr) {
                self.pool.free.push(idx);
                recovered += 1;
            }
        }
        let held = (p
            .in_fill
            .saturating_sub(rx)
            .saturating_sub(fill.len() as u32))
            + (p.in_tx.saturating_sub(done).saturating_sub(tx.len() as u32));
        tracing::debug!(
            fd = p.sock.fd.as_raw_fd(),
            port = i,
            recovered,
            lost = held,
            "AF_XDP socket closed"
        );
        drop(p);
        self.pollfds[i] = sys::pollin(-1);
        self.names[i] = (String::new(), 0);
        Ok(ClosedPort {
            recovered,
            lost: held,
        })
    }
}
