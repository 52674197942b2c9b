//! 802.1Q tag push: the MAC addresses move four bytes into the headroom and
//! the tag goes where they were.

use super::{check_room, RewriteError};
use crate::types::Vlan;
use crate::wire::vlan::TAG_LEN;
use crate::wire::EtherType;

/// Offset of the EtherType in an Ethernet header (just after the MACs).
const MACS_LEN: usize = 12;

/// Pushes an 802.1Q tag (priority 0) carrying `vlan` onto the frame at
/// `buf[headroom .. headroom + len]`; returns the tagged frame's
/// `(start, len)`, which is `(headroom - 4, len + 4)`.
///
/// One fixed-size window of 16 bytes covers the new MACs, TPID and TCI: the
/// MACs are read into registers, then written 4 bytes lower with the tag
/// after them (the original EtherType, already in place, follows the tag).
#[inline(always)]
pub fn push_vlan(
    buf: &mut [u8],
    headroom: usize,
    len: usize,
    vlan: Vlan,
) -> Result<(usize, usize), RewriteError> {
    check_room(buf.len(), headroom, len, TAG_LEN)?;
    if len < crate::wire::ethernet::HEADER_LEN {
        return Err(RewriteError::Runt(len));
    }
    let start = headroom - TAG_LEN;
    let w: &mut [u8; MACS_LEN + TAG_LEN] = (&mut buf[start..start + MACS_LEN + TAG_LEN])
        .try_into()
        .expect("a 16-byte window");
    let mut macs = [0u8; MACS_LEN];
    macs.copy_from_slice(&w[TAG_LEN..]);
    w[..MACS_LEN].copy_from_slice(&macs);
    let tpid = u16::from(EtherType::Vlan).to_be_bytes();
    // TCI: priority 0, DEI 0, the VLAN ID.
    let tci = vlan.id().to_be_bytes();
    w[MACS_LEN..].copy_from_slice(&[tpid[0], tpid[1], tci[0], tci[1]]);
    Ok((start, len + TAG_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::Frame;
    use crate::wire::vlan::Tag;

    #[test]
    fn push_keeps_macs_and_ethertype() {
        let frame: Vec<u8> = (0u8..64).collect();
        let mut buf = vec![0xeeu8; 16 + 64];
        buf[16..].copy_from_slice(&frame);
        let vlan = Vlan::new(0x123).unwrap();
        let (start, len) = push_vlan(&mut buf, 16, 64, vlan).unwrap();
        assert_eq!((start, len), (12, 68));
        let out = &buf[start..start + len];
        let eth = Frame::new_checked(out).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Vlan);
        assert_eq!(&out[..12], &frame[..12]);
        let tag = Tag::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.vid(), 0x123);
        assert_eq!(tag.pcp(), 0);
        assert_eq!(u16::from(tag.ethertype()), u16::from_be_bytes([12, 13]));
        assert_eq!(tag.payload(), &frame[14..]);
    }

    #[test]
    fn errors_leave_the_frame_alone() {
        let vlan = Vlan::new(1).unwrap();
        let mut buf = [0u8; 80];
        assert_eq!(
            push_vlan(&mut buf, 3, 64, vlan),
            Err(RewriteError::NoHeadroom { need: 4, have: 3 })
        );
        assert!(matches!(
            push_vlan(&mut buf, 20, 64, vlan),
            Err(RewriteError::OutOfBounds { .. })
        ));
        assert_eq!(
            push_vlan(&mut buf, 16, 13, vlan),
            Err(RewriteError::Runt(13))
        );
    }
}
