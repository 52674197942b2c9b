//! UDP headers (RFC 768) and their checksum over IPv4 or IPv6.

use std::net::IpAddr;

use super::{checksum, get_u16, set_u16, Error, IpProtocol, Result};

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// The length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view over a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without a length check.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Errors unless the buffer holds the header and the length field lies
    /// between the header length and the buffer length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN || l > len {
            return Err(Error);
        }
        Ok(())
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field (header and payload).
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True when the length field covers the header only.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field (0: none, over IPv4).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, as long as the length field says.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True when the checksum is correct for these addresses, or absent
    /// (zero) over IPv4.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 && src.is_ipv4() {
            return true;
        }
        let l = usize::from(self.len());
        let Some(pseudo) = pseudo(src, dst, l as u32) else {
            return false;
        };
        checksum::fold(pseudo + checksum::sum(&self.buffer.as_ref()[..l])) == 0xffff
    }
}

fn pseudo(src: IpAddr, dst: IpAddr, len: u32) -> Option<u64> {
    let udp = u8::from(IpProtocol::Udp);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(checksum::pseudo_v4(s, d, udp, len)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(checksum::pseudo_v6(s, d, udp, len)),
        _ => None,
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Computes and writes the checksum over the datagram (as long as its
    /// length field says) for these addresses. A computed zero is sent as
    /// 0xffff. Does nothing when the address families differ.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let l = usize::from(self.len());
        let Some(pseudo) = pseudo(src, dst, l as u32) else {
            return;
        };
        self.set_checksum(0);
        let c = !checksum::fold(pseudo + checksum::sum(&self.buffer.as_ref()[..l]));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// The meaning of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Repr {
    /// The meaning of a checked datagram (the checksum is not verified here:
    /// see [`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.len()) - HEADER_LEN,
        })
    }

    /// The header's length on the wire.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with a zero checksum; panics if the buffer is
    /// shorter than [`HEADER_LEN`] or the length does not fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(u16::try_from(HEADER_LEN + self.payload_len).expect("UDP length"));
        p.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn construct_deconstruct_and_checksum() {
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
        let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut b = [0u8; 12];
        let repr = Repr {
            src_port: 50000,
            dst_port: 4789,
            payload_len: 4,
        };
        let mut p = Packet::new_unchecked(&mut b[..]);
        repr.emit(&mut p);
        b[8..].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr));
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        // A zero checksum over IPv4 means "none".
        assert!(p.verify_checksum(src, dst));
        p.fill_checksum(src, dst);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(src, dst));
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert!(!p.verify_checksum(src, other));
    }

    #[test]
    fn bad_lengths_are_errors() {
        let b = [0, 1, 0, 2, 0, 7, 0, 0];
        assert_eq!(Packet::new_checked(&b[..]), Err(Error));
        let b = [0, 1, 0, 2, 0, 9, 0, 0];
        assert_eq!(Packet::new_checked(&b[..]), Err(Error));
        assert_eq!(Packet::new_checked(&b[..7]), Err(Error));
    }
}
