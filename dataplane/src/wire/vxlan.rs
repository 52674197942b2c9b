//! VXLAN headers (RFC 7348): eight bytes, the I flag and a 24-bit VNI.

use super::{Error, Result};
use crate::types::Vni;

mod field {
    use crate::wire::{Field, Rest};
    pub const FLAGS: usize = 0;
    pub const RESERVED1: Field = 1..4;
    pub const VNI: Field = 4..7;
    pub const RESERVED2: usize = 7;
    pub const PAYLOAD: Rest = 8..;
}

/// The length of a VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The default VXLAN UDP destination port (IANA).
pub const DEFAULT_PORT: u16 = 4789;

const FLAG_I: u8 = 0x08;

/// A view over a VXLAN header and the inner frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// A view without a length check.
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// A view after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Errors when the buffer cannot hold the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// True when the I flag (valid VNI) is set.
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The VNI field.
    pub fn vni(&self) -> Vni {
        let b = &self.buffer.as_ref()[field::VNI];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        Vni::new(v).unwrap_or_else(|| unreachable!("24-bit value"))
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Writes flags = I, the VNI and zero reserved fields.
    pub fn set_vni(&mut self, vni: Vni) {
        let b = self.buffer.as_mut();
        b[field::FLAGS] = FLAG_I;
        b[field::RESERVED1].fill(0);
        let v = vni.get();
        b[field::VNI].copy_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        b[field::RESERVED2] = 0;
    }
}

/// The meaning of a VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The network identifier.
    pub vni: Vni,
}

impl Repr {
    /// The meaning of a checked header; errors when the I flag is clear.
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Repr> {
        h.check_len()?;
        if !h.vni_valid() {
            return Err(Error);
        }
        Ok(Repr { vni: h.vni() })
    }

    /// The header's length on the wire.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header; panics if the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_vni(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [u8; 8] = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];

    #[test]
    fn deconstruct_and_construct() {
        let h = Header::new_checked(&HEADER[..]).unwrap();
        let repr = Repr::parse(&h).unwrap();
        assert_eq!(repr.vni.get(), 0x123456);
        let mut b = [0xffu8; 8];
        repr.emit(&mut Header::new_unchecked(&mut b[..]));
        assert_eq!(b, HEADER);
    }

    #[test]
    fn missing_i_flag_or_short_is_an_error() {
        let mut b = HEADER;
        b[0] = 0;
        assert_eq!(
            Repr::parse(&Header::new_checked(&b[..]).unwrap()),
            Err(Error)
        );
        assert_eq!(Header::new_checked(&HEADER[..7]), Err(Error));
    }
}
