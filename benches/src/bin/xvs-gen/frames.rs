//! The generator's frames, written byte by byte from a [`Shape`] — on
//! purpose not with the dataplane's own encapsulation code, so that a bug
//! there cannot hide behind the same bug here (the tests check the bytes
//! with etherparse).
//!
//! Frame `k` of a shape (`k < Shape::distinct()`) has source MAC number
//! `k % macs` and flow number `k % flows`; a flow is the inner IPv4 source
//! address and UDP source port (and, in VXLAN mode, the outer UDP source
//! port, as a VTEP would derive it for ECMP entropy).

use std::net::Ipv4Addr;

/// Ethernet header length.
const ETH: usize = 14;
/// IPv4 header length (no options).
const IP4: usize = 20;
/// UDP header length.
const UDP: usize = 8;
/// VXLAN header length.
const VXLAN: usize = 8;
/// Outer headers of VXLAN over IPv4.
pub const VXLAN_OVERHEAD: usize = ETH + IP4 + UDP + VXLAN;
/// The smallest inner frame: Ethernet + IPv4 + UDP headers.
pub const MIN_INNER: usize = ETH + IP4 + UDP;
/// The largest inner frame we build (fits a 2 KiB UMEM chunk with the
/// outer headers and the 256-byte XDP headroom).
pub const MAX_INNER: usize = 1514;
/// Inner UDP destination port.
const INNER_DPORT: u16 = 5001;
/// First inner UDP source port; flows count up from here.
const SPORT_BASE: u16 = 1024;
/// Source ports per inner source address before the address moves on.
const SPORTS: u32 = 60_000;

/// The VXLAN outer headers of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// Outer source MAC (the remote VTEP's, or ours).
    pub src_mac: [u8; 6],
    /// Outer destination MAC (the VTEP's next hop).
    pub dst_mac: [u8; 6],
    /// Outer source address (the sending VTEP).
    pub src_ip: Ipv4Addr,
    /// Outer destination address (the receiving VTEP).
    pub dst_ip: Ipv4Addr,
    /// UDP destination port (4789).
    pub port: u16,
    /// The 24-bit VNI.
    pub vni: u32,
}

/// What to send: the inner frame and, optionally, its VXLAN wrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Inner frame length without FCS (60 = a 64-byte frame on the wire).
    pub size: usize,
    /// First source MAC; MAC `m` adds `m` to its last three bytes.
    pub src_mac: [u8; 6],
    /// Destination MAC (`ff:ff:ff:ff:ff:ff` for broadcast).
    pub dst_mac: [u8; 6],
    /// Number of source MACs (≥ 1).
    pub macs: u32,
    /// First inner source address; flows move it on every 60 000 ports.
    pub src_ip: Ipv4Addr,
    /// Inner destination address.
    pub dst_ip: Ipv4Addr,
    /// Number of flows (≥ 1).
    pub flows: u32,
    /// VXLAN outer headers, if encapsulated.
    pub outer: Option<Outer>,
}

/// A shape that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Inner size outside `MIN_INNER..=MAX_INNER`.
    #[error("frame size {0} is not in {MIN_INNER}..={MAX_INNER}")]
    Size(usize),
    /// Zero or too many MACs or flows.
    #[error("{what} must be in 1..=16777216, got {n}")]
    Count {
        /// `macs` or `flows`.
        what: &'static str,
        /// The value given.
        n: u32,
    },
    /// VNI wider than 24 bits.
    #[error("VNI {0} does not fit 24 bits")]
    Vni(u32),
}

impl Shape {
    /// Checks sizes and counts.
    pub fn validate(&self) -> Result<(), ShapeError> {
        if !(MIN_INNER..=MAX_INNER).contains(&self.size) {
            return Err(ShapeError::Size(self.size));
        }
        for (what, n) in [("macs", self.macs), ("flows", self.flows)] {
            if n == 0 || n > 1 << 24 {
                return Err(ShapeError::Count { what, n });
            }
        }
        if let Some(o) = &self.outer {
            if o.vni >= 1 << 24 {
                return Err(ShapeError::Vni(o.vni));
            }
        }
        Ok(())
    }

    /// Bytes of every frame of this shape.
    pub fn frame_len(&self) -> usize {
        self.size + self.outer.map_or(0, |_| VXLAN_OVERHEAD)
    }

    /// How many different frames the shape has before it repeats:
    /// `max(macs, flows)` (each frame's MAC and flow count up together).
    pub fn distinct(&self) -> usize {
        self.macs.max(self.flows) as usize
    }

    /// Source MAC number `m`.
    pub fn mac(&self, m: u32) -> [u8; 6] {
        let mut mac = self.src_mac;
        let base = u32::from_be_bytes([0, mac[3], mac[4], mac[5]]);
        let v = base.wrapping_add(m).to_be_bytes();
        mac[3..6].copy_from_slice(&v[1..4]);
        mac
    }

    /// Writes frame `k` into `out` (exactly [`frame_len`](Self::frame_len)
    /// bytes).
    ///
    /// # Panics
    /// If `out` has another length (a bug of the caller).
    pub fn write(&self, k: usize, out: &mut [u8]) {
        assert_eq!(out.len(), self.frame_len(), "frame buffer length");
        let mac = self.mac((k % self.macs as usize) as u32);
        let flow = (k % self.flows as usize) as u32;
        let sport = SPORT_BASE + (flow % SPORTS) as u16;
        let src_ip = Ipv4Addr::from(u32::from(self.src_ip).wrapping_add(flow / SPORTS));
        let inner = match &self.outer {
            None => out,
            Some(o) => {
                let (head, inner) = out.split_at_mut(VXLAN_OVERHEAD);
                // ECMP entropy in 49152..=65535, derived from the flow.
                let entropy = 49152 | (flow.wrapping_mul(0x9e37_79b1) >> 18) as u16;
                let ip_len = (IP4 + UDP + VXLAN + self.size) as u16;
                write_eth(&mut head[..ETH], o.dst_mac, o.src_mac);
                write_ipv4(&mut head[ETH..ETH + IP4], o.src_ip, o.dst_ip, ip_len);
                // UDP checksum 0: allowed for VXLAN over IPv4 (RFC 7348).
                write_udp(
                    &mut head[ETH + IP4..ETH + IP4 + UDP],
                    entropy,
                    o.port,
                    ip_len - 20,
                );
                let v = &mut head[ETH + IP4 + UDP..];
                v.copy_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0]);
                v[4..7].copy_from_slice(&o.vni.to_be_bytes()[1..4]);
                inner
            }
        };
        let ip_len = (self.size - ETH) as u16;
        write_eth(&mut inner[..ETH], self.dst_mac, mac);
        write_ipv4(&mut inner[ETH..ETH + IP4], src_ip, self.dst_ip, ip_len);
        write_udp(
            &mut inner[ETH + IP4..MIN_INNER],
            sport,
            INNER_DPORT,
            ip_len - 20,
        );
        for (i, b) in inner[MIN_INNER..].iter_mut().enumerate() {
            *b = i as u8;
        }
    }

    /// Every distinct frame, back to back (`distinct() * frame_len()`
    /// bytes), so the send loop only copies.
    pub fn build_all(&self) -> Vec<u8> {
        let len = self.frame_len();
        let mut all = vec![0u8; self.distinct() * len];
        for (k, f) in all.chunks_exact_mut(len).enumerate() {
            self.write(k, f);
        }
        all
    }
}

fn write_eth(b: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    b[0..6].copy_from_slice(&dst);
    b[6..12].copy_from_slice(&src);
    b[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
}

/// An IPv4 header (no options, TTL 64, DF clear, protocol UDP) with its
/// checksum; `total_len` covers the header and payload.
fn write_ipv4(b: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, total_len: u16) {
    b.copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    b[2..4].copy_from_slice(&total_len.to_be_bytes());
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(b);
    b[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// A UDP header with checksum 0 (none: allowed over IPv4).
fn write_udp(b: &mut [u8], sport: u16, dport: u16, len: u16) {
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..6].copy_from_slice(&len.to_be_bytes());
    b[6..8].copy_from_slice(&[0, 0]);
}

/// The Internet checksum (RFC 1071) of `b` (even length).
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts
            .next()
            .ok_or_else(|| format!("{s:?}: not a MAC address"))?;
        *b = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?}: not a MAC address"))?;
    }
    if parts.next().is_some() {
        return Err(format!("{s:?}: not a MAC address"));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn shape(outer: Option<Outer>) -> Shape {
        Shape {
            size: 60,
            src_mac: [2, 0, 0, 0, 0xff, 0xfe],
            dst_mac: [2, 0, 0, 0, 0, 9],
            macs: 4,
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::new(10, 0, 0, 2),
            flows: 70_000,
            outer,
        }
    }

    fn outer() -> Outer {
        Outer {
            src_mac: [2, 0, 0, 0, 1, 1],
            dst_mac: [2, 0, 0, 0, 1, 2],
            src_ip: Ipv4Addr::new(192, 0, 2, 1),
            dst_ip: Ipv4Addr::new(192, 0, 2, 10),
            port: 4789,
            vni: 0x12_3456,
        }
    }

    /// (source MAC, inner source address, inner source port) of a plain
    /// frame, checked by etherparse (headers, lengths, IPv4 checksum).
    fn inner_of(f: &[u8]) -> ([u8; 6], Ipv4Addr, u16) {
        let p = SlicedPacket::from_ethernet(f).expect("parses");
        let eth = p
            .link
            .as_ref()
            .and_then(|l| l.to_header())
            .expect("ethernet");
        let Some(etherparse::LinkHeader::Ethernet2(eth)) = Some(eth) else {
            panic!("not Ethernet II")
        };
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        assert_eq!(usize::from(h.total_len), f.len() - 14);
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP")
        };
        assert_eq!(usize::from(udp.length()), f.len() - 34);
        (eth.source, h.source.into(), udp.source_port())
    }

    #[test]
    fn plain_frames_parse_and_spread_macs_and_flows() {
        let s = shape(None);
        s.validate().unwrap();
        assert_eq!(s.frame_len(), 60);
        assert_eq!(s.distinct(), 70_000);
        let all = s.build_all();
        let (m0, ip0, p0) = inner_of(&all[..60]);
        assert_eq!(m0, [2, 0, 0, 0, 0xff, 0xfe]);
        assert_eq!((ip0, p0), (Ipv4Addr::new(10, 0, 0, 1), 1024));
        // MAC 2 carries into the next byte; flow 60 000 moves the address.
        assert_eq!(inner_of(&all[120..180]).0, [2, 0, 0, 1, 0, 0]);
        let f = 60_000 * 60;
        assert_eq!(inner_of(&all[f..f + 60]).1, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(inner_of(&all[f..f + 60]).2, 1024);
    }

    #[test]
    fn vxlan_frames_parse_with_vni_and_inner_frame() {
        let s = shape(Some(outer()));
        assert_eq!(s.frame_len(), 110);
        let mut f = vec![0u8; 110];
        s.write(5, &mut f);
        let p = SlicedPacket::from_ethernet(&f).expect("parses");
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.destination, [192, 0, 2, 10]);
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP")
        };
        assert_eq!(udp.destination_port(), 4789);
        assert!(udp.source_port() >= 49152);
        let payload = udp.payload();
        assert_eq!(payload[0], 0x08, "I flag");
        assert_eq!(&payload[4..7], &[0x12, 0x34, 0x56], "VNI");
        let (mac, _, sport) = inner_of(&payload[8..]);
        assert_eq!(mac, s.mac(1));
        assert_eq!(sport, 1029);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let mut s = shape(None);
        s.size = 41;
        assert_eq!(s.validate(), Err(ShapeError::Size(41)));
        s.size = 60;
        s.macs = 0;
        assert!(matches!(
            s.validate(),
            Err(ShapeError::Count { what: "macs", .. })
        ));
        let mut s = shape(Some(Outer {
            vni: 1 << 24,
            ..outer()
        }));
        s.macs = 1;
        assert_eq!(s.validate(), Err(ShapeError::Vni(1 << 24)));
    }

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("02:0a:ff:00:01:10"), Ok([2, 10, 255, 0, 1, 16]));
        assert!(parse_mac("02:0a:ff:00:01").is_err());
        assert!(parse_mac("02:0a:ff:00:01:10:11").is_err());
        assert!(parse_mac("zz:0a:ff:00:01:10").is_err());
    }
}
