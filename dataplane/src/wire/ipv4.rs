//! IPv4 headers (RFC 791). Options are read past but never written.

use std::net::Ipv4Addr;

use super::{checksum, get_u16, set_u16, Error, IpProtocol, Result};

mod field {
    use crate::wire::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view over an IPv4 packet.
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

    /// Errors unless the buffer holds the fixed header, the IHL is at least 5
    /// and covered by the buffer, and the total length lies between the
    /// header length and the buffer length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error);
        }
        let hl = usize::from(self.header_len());
        let total = usize::from(self.total_len());
        if hl < HEADER_LEN || hl > len || total < hl || total > len {
            return Err(Error);
        }
        Ok(())
    }

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP and ECN byte.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The total length (header and payload).
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// The don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// True for a fragment (more-fragments set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        let v = get_u16(self.buffer.as_ref(), field::FLG_OFF);
        v & FLAG_MF != 0 || v & OFFSET_MASK != 0
    }

    /// The time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The payload's protocol.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// True when the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        let hl = usize::from(self.header_len());
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..hl])) == 0xffff
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[usize::from(self.header_len())..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: u8) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | (header_len / 4);
    }

    /// Sets the DSCP and ECN byte.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets flags and offset for an unfragmented packet, with or without DF.
    pub fn set_unfragmented(&mut self, dont_frag: bool) {
        let v = if dont_frag { FLAG_DF } else { 0 };
        set_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the payload's protocol.
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.into();
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = usize::from(self.header_len());
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

/// The meaning of an IPv4 header as the switch writes it: no options, not
/// fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// DSCP and ECN byte.
    pub dscp_ecn: u8,
}

impl Repr {
    /// The meaning of a checked packet (options are skipped); errors on a
    /// version other than 4, a wrong header checksum or a fragment.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.version() != 4 || !p.verify_checksum() || p.is_fragment() {
            return Err(Error);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.payload().len(),
            ttl: p.ttl(),
            dont_frag: p.dont_frag(),
            dscp_ecn: p.dscp_ecn(),
        })
    }

    /// The header's length on the wire.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with identification 0 and its checksum; panics if
    /// the buffer is shorter than [`HEADER_LEN`] or the payload length does
    /// not fit the 16-bit total length.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let total = u16::try_from(HEADER_LEN + self.payload_len).expect("IPv4 total length");
        p.set_version_and_header_len(HEADER_LEN as u8);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(total);
        p.set_ident(0);
        p.set_unfragmented(self.dont_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        // From the values, not by reading back the bytes just written.
        let flags = if self.dont_frag { FLAG_DF } else { 0 };
        let sum = u64::from(0x4500 | u16::from(self.dscp_ecn))
            + u64::from(total)
            + u64::from(flags)
            + u64::from(u16::from(self.ttl) << 8 | u16::from(u8::from(self.protocol)))
            + checksum::sum(&self.src_addr.octets())
            + checksum::sum(&self.dst_addr.octets());
        p.set_checksum(!checksum::fold(sum));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.0.2.10 -> 192.0.2.1, UDP, TTL 64, DF, 4 bytes of payload; checksum
    // 0xb6c9 computed with a few lines of Python (RFC 1071 sum).
    const PACKET: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb6, 0xc9, 0xc0, 0x00, 0x02,
        0x0a, 0xc0, 0x00, 0x02, 0x01, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 10),
            dst_addr: Ipv4Addr::new(192, 0, 2, 1),
            protocol: IpProtocol::Udp,
            payload_len: 4,
            ttl: 64,
            dont_frag: true,
            dscp_ecn: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Repr::parse(&p), Ok(repr()));
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 24];
        repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf[20..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn bad_lengths_and_checksums_are_errors() {
        assert_eq!(Packet::new_checked(&PACKET[..19]), Err(Error));
        // Total length beyond the buffer.
        assert_eq!(Packet::new_checked(&PACKET[..23]), Err(Error));
        let mut bad_ihl = PACKET;
        bad_ihl[0] = 0x44;
        assert_eq!(Packet::new_checked(&bad_ihl[..]), Err(Error));
        let mut bad_sum = PACKET;
        bad_sum[11] ^= 1;
        let p = Packet::new_checked(&bad_sum[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error));
    }
}
