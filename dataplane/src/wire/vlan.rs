//! 802.1Q / 802.1ad tags: the four bytes (TCI, inner EtherType) that follow
//! an EtherType of 0x8100 or 0x88a8.

use super::{get_u16, set_u16, Error, EtherType, Result};
use crate::types::Vlan;

mod field {
    use crate::wire::{Field, Rest};
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: Rest = 4..;
}

/// The length of one tag after the outer EtherType.
pub const TAG_LEN: usize = field::PAYLOAD.start;

/// A view over a VLAN tag and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tag<T> {
    /// A view without a length check.
    pub const fn new_unchecked(buffer: T) -> Tag<T> {
        Tag { buffer }
    }

    /// A view after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Tag<T>> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Errors when the buffer cannot hold the tag.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < TAG_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// The whole tag control information word.
    pub fn tci(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TCI)
    }

    /// Priority code point (3 bits).
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The 12-bit VLAN identifier field (0 and 4095 included).
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType of what follows the tag.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The bytes after the tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    /// Sets the tag control information word.
    pub fn set_tci(&mut self, tci: u16) {
        set_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    /// Sets the inner EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.into());
    }
}

/// The meaning of a VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Priority code point, 0 … 7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// The VLAN; `None` for a priority-only tag (VID 0) or VID 4095.
    pub vlan: Option<Vlan>,
    /// EtherType of the payload.
    pub ethertype: EtherType,
}

impl Repr {
    /// The meaning of a tag.
    pub fn parse<T: AsRef<[u8]>>(tag: &Tag<T>) -> Result<Repr> {
        tag.check_len()?;
        Ok(Repr {
            pcp: tag.pcp(),
            dei: tag.dei(),
            vlan: Vlan::new(tag.vid()),
            ethertype: tag.ethertype(),
        })
    }

    /// The tag's length on the wire.
    pub const fn buffer_len(&self) -> usize {
        TAG_LEN
    }

    /// The TCI word this tag encodes.
    pub fn tci(&self) -> u16 {
        u16::from(self.pcp & 7) << 13 | u16::from(self.dei) << 12 | self.vlan.map_or(0, |v| v.id())
    }

    /// Writes the tag; panics if the buffer is shorter than [`TAG_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut Tag<T>) {
        tag.set_tci(self.tci());
        tag.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PCP 5, DEI 0, VID 10, then IPv4.
    const TAG: [u8; 4] = [0xa0, 0x0a, 0x08, 0x00];

    #[test]
    fn deconstruct() {
        let t = Tag::new_checked(&TAG[..]).unwrap();
        assert_eq!(t.pcp(), 5);
        assert!(!t.dei());
        assert_eq!(t.vid(), 10);
        assert_eq!(t.ethertype(), EtherType::Ipv4);
    }

    #[test]
    fn construct() {
        let repr = Repr {
            pcp: 5,
            dei: false,
            vlan: Vlan::new(10),
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0u8; 4];
        repr.emit(&mut Tag::new_unchecked(&mut buf[..]));
        assert_eq!(buf, TAG);
        assert_eq!(Repr::parse(&Tag::new_checked(&buf[..]).unwrap()), Ok(repr));
    }

    #[test]
    fn short_buffer_is_an_error() {
        assert_eq!(Tag::new_checked(&TAG[..3]), Err(Error));
    }
}
