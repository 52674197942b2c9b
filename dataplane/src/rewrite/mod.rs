//! Header rewriting in place: VLAN push and VXLAN encapsulation, both
//! written into the headroom in front of a frame so nothing is copied.
//!
//! A frame lives in a buffer (e.g. a UMEM chunk) at `buf[headroom ..
//! headroom + len]`. Each rewriter returns the new `(start, len)` of the
//! frame in the same buffer, or a [`RewriteError`] and leaves the frame
//! bytes as they were (it may have written into the headroom).

pub mod encap;
pub mod vlan;

pub use encap::{
    encap, flow_hash, source_port, EncapParams, EncapTemplate, OUTER_V4_LEN, OUTER_V6_LEN,
};
pub use vlan::push_vlan;

/// Why a frame could not be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// `headroom + len` lies beyond the buffer.
    #[error("frame range {headroom}+{len} lies outside a {buf_len}-byte buffer")]
    OutOfBounds {
        /// Headroom given.
        headroom: usize,
        /// Frame length given.
        len: usize,
        /// Buffer length.
        buf_len: usize,
    },
    /// Not enough headroom for the new headers.
    #[error("{need} bytes of headroom needed, {have} available")]
    NoHeadroom {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The frame is shorter than an Ethernet header.
    #[error("frame of {0} bytes is shorter than an Ethernet header")]
    Runt(usize),
    /// The result would exceed the egress MTU.
    #[error("{len}-byte packet exceeds the {mtu}-byte MTU")]
    TooBig {
        /// Outer IP packet length that would result.
        len: usize,
        /// The MTU.
        mtu: usize,
    },
    /// Source and destination addresses are not of the same family.
    #[error("source and destination VTEP addresses differ in family")]
    FamilyMismatch,
}

/// Checks that `headroom + len` fits `buf_len` and that `need` bytes of
/// headroom are there.
fn check_room(
    buf_len: usize,
    headroom: usize,
    len: usize,
    need: usize,
) -> Result<(), RewriteError> {
    if headroom.checked_add(len).is_none_or(|end| end > buf_len) {
        return Err(RewriteError::OutOfBounds {
            headroom,
            len,
            buf_len,
        });
    }
    if headroom < need {
        return Err(RewriteError::NoHeadroom {
            need,
            have: headroom,
        });
    }
    Ok(())
}
