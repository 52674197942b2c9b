//! VXLAN encapsulation into headroom: outer Ethernet / IPv4 or IPv6 / UDP /
//! VXLAN, 50 or 70 bytes, written in front of the inner frame.

use std::net::IpAddr;

use super::{check_room, RewriteError};
use crate::types::{MacAddr, Vni};
use crate::wire::{checksum, ethernet, ipv4, ipv6, udp, vxlan, EtherType, IpProtocol};

/// Outer headers over IPv4: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
pub const OUTER_V4_LEN: usize =
    ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
/// Outer headers over IPv6: Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8.
pub const OUTER_V6_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;

/// The lowest UDP source port used for ECMP entropy (RFC 7348: 49152–65535).
pub const SOURCE_PORT_MIN: u16 = 49152;

/// Everything the outer headers need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncapParams {
    /// Our uplink's MAC.
    pub src_mac: MacAddr,
    /// The next hop's MAC towards the remote VTEP.
    pub dst_mac: MacAddr,
    /// Our VTEP address (same family as `dst_ip`).
    pub src_ip: IpAddr,
    /// The remote VTEP's address.
    pub dst_ip: IpAddr,
    /// The network identifier.
    pub vni: Vni,
    /// UDP destination port (4789 by default).
    pub dst_port: u16,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// Set IPv4 don't-fragment (ignored over IPv6).
    pub dont_frag: bool,
    /// The uplink's IP MTU: the outer IP packet may not exceed it.
    pub mtu: usize,
}

/// Encapsulates the inner frame at `buf[headroom .. headroom + len]` in
/// VXLAN, writing the outer headers into the headroom. Returns the outer
/// frame's `(start, len)`.
///
/// The IPv4 header checksum is computed; the UDP checksum is 0 over IPv4 and
/// computed over IPv6. The UDP source port is [`source_port`] of the inner
/// frame. The inner frame is not touched. A worker sending many frames to
/// one VTEP keeps an [`EncapTemplate`] instead, which this builds each call.
pub fn encap(
    buf: &mut [u8],
    headroom: usize,
    len: usize,
    p: &EncapParams,
) -> Result<(usize, usize), RewriteError> {
    EncapTemplate::new(p)?.apply(buf, headroom, len, p.vni)
}

/// The outer headers towards one remote VTEP, prepared once: per frame only
/// the lengths, the checksums, the source port and the VNI change, so
/// [`apply`](Self::apply) copies the template and patches those fields.
/// Checksums are computed from values, never by reading back the bytes just
/// written (which would stall on store forwarding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncapTemplate {
    /// The outer headers, lengths / checksums / port / VNI zeroed.
    hdr: [u8; OUTER_V6_LEN],
    /// 50 for IPv4, 70 for IPv6.
    outer_len: usize,
    v6: bool,
    /// IPv4: unfolded sum of the IPv4 header with zero length and checksum.
    /// IPv6: unfolded sum of the pseudo-header addresses and next header,
    /// the UDP destination port and the VXLAN flags.
    partial: u64,
    mtu: usize,
}

mod outer {
    //! Offsets of the patched fields in the outer headers.
    use crate::wire::{ethernet, ipv4, ipv6, udp};
    pub const IP: usize = ethernet::HEADER_LEN;
    pub const UDP_V4: usize = IP + ipv4::HEADER_LEN;
    pub const UDP_V6: usize = IP + ipv6::HEADER_LEN;
    pub const VXLAN_V4: usize = UDP_V4 + udp::HEADER_LEN;
    pub const VXLAN_V6: usize = UDP_V6 + udp::HEADER_LEN;
}

impl EncapTemplate {
    /// The template for the tunnel `p` describes. The VNI is given per frame
    /// to [`apply`](Self::apply), so one template serves every bridge domain
    /// towards that VTEP; `p.vni` only fills the template's own bytes.
    /// Errors when the address families differ.
    pub fn new(p: &EncapParams) -> Result<EncapTemplate, RewriteError> {
        let mut hdr = [0u8; OUTER_V6_LEN];
        let v6 = match (p.src_ip, p.dst_ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(RewriteError::FamilyMismatch),
        };
        ethernet::Repr {
            src_addr: p.src_mac,
            dst_addr: p.dst_mac,
            ethertype: if v6 { EtherType::Ipv6 } else { EtherType::Ipv4 },
        }
        .emit(&mut ethernet::Frame::new_unchecked(&mut hdr[..]));
        let (udp_at, vxlan_at) = if v6 {
            (outer::UDP_V6, outer::VXLAN_V6)
        } else {
            (outer::UDP_V4, outer::VXLAN_V4)
        };
        let partial = match (p.src_ip, p.dst_ip) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut ip = ipv4::Packet::new_unchecked(&mut hdr[outer::IP..udp_at]);
                ipv4::Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: IpProtocol::Udp,
                    payload_len: 0,
                    ttl: p.ttl,
                    dont_frag: p.dont_frag,
                    dscp_ecn: 0,
                }
                .emit(&mut ip);
                ip.set_total_len(0);
                ip.set_checksum(0);
                checksum::sum(&hdr[outer::IP..udp_at])
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                ipv6::Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Udp,
                    payload_len: 0,
                    hop_limit: p.ttl,
                    traffic_class: 0,
                    flow_label: 0,
                }
                .emit(&mut ipv6::Packet::new_unchecked(
                    &mut hdr[outer::IP..udp_at],
                ));
                checksum::pseudo_v6(src, dst, IpProtocol::Udp.into(), 0)
                    + u64::from(p.dst_port)
                    + u64::from(VXLAN_FLAGS_WORD)
            }
            _ => unreachable!("families checked above"),
        };
        udp::Packet::new_unchecked(&mut hdr[udp_at..vxlan_at]).set_dst_port(p.dst_port);
        vxlan::Header::new_unchecked(&mut hdr[vxlan_at..]).set_vni(p.vni);
        Ok(EncapTemplate {
            hdr,
            outer_len: if v6 { OUTER_V6_LEN } else { OUTER_V4_LEN },
            v6,
            partial,
            mtu: p.mtu,
        })
    }

    /// Bytes of outer headers: 50 (IPv4) or 70 (IPv6).
    pub fn outer_len(&self) -> usize {
        self.outer_len
    }

    /// Encapsulates the inner frame at `buf[headroom .. headroom + len]`
    /// with `vni`; returns the outer frame's `(start, len)`. Same contract
    /// as [`encap`].
    ///
    /// The outer headers are one fixed-size copy of the template, then
    /// stores of the patched fields at constant offsets (no bounds checks
    /// per field, no read-back of what was just written). Inlined: the
    /// result is then returned in registers, not through memory.
    #[inline(always)]
    pub fn apply(
        &self,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
        vni: Vni,
    ) -> Result<(usize, usize), RewriteError> {
        if self.v6 {
            return self.apply_v6(buf, headroom, len, vni);
        }
        const N: usize = OUTER_V4_LEN;
        check_room(buf.len(), headroom, len, N)?;
        let ip_len = N - ethernet::HEADER_LEN + len;
        if ip_len > self.mtu {
            return Err(RewriteError::TooBig {
                len: ip_len,
                mtu: self.mtu,
            });
        }
        let start = headroom - N;
        let (head, inner) = buf[start..headroom + len].split_at_mut(N);
        let sport = source_port(inner);
        let udp_len = (udp::HEADER_LEN + vxlan::HEADER_LEN + len) as u16;
        let check = !checksum::fold(self.partial + ip_len as u64);
        let h: &mut [u8; N] = head.try_into().expect("split at N");
        h.copy_from_slice(&self.hdr[..N]);
        h[o4::TOTAL_LEN..o4::TOTAL_LEN + 2].copy_from_slice(&(ip_len as u16).to_be_bytes());
        h[o4::CHECKSUM..o4::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
        h[o4::SPORT..o4::SPORT + 2].copy_from_slice(&sport.to_be_bytes());
        h[o4::UDP_LEN..o4::UDP_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
        h[o4::VNI..o4::VNI + 4].copy_from_slice(&(vni.get() << 8).to_be_bytes());
        Ok((start, N + len))
    }

    /// [`apply`](Self::apply) over IPv6: the UDP checksum covers the inner
    /// frame.
    #[inline(never)]
    fn apply_v6(
        &self,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
        vni: Vni,
    ) -> Result<(usize, usize), RewriteError> {
        const N: usize = OUTER_V6_LEN;
        check_room(buf.len(), headroom, len, N)?;
        let ip_len = N - ethernet::HEADER_LEN + len;
        if ip_len > self.mtu {
            return Err(RewriteError::TooBig {
                len: ip_len,
                mtu: self.mtu,
            });
        }
        let start = headroom - N;
        let (head, inner) = buf[start..headroom + len].split_at_mut(N);
        let sport = source_port(inner);
        let udp_len = udp::HEADER_LEN + vxlan::HEADER_LEN + len;
        // Pseudo-header length and UDP length field (both udp_len), the
        // source port, the VNI words, and the inner frame.
        let v = vni.get();
        let sum = self.partial
            + 2 * udp_len as u64
            + u64::from(sport)
            + u64::from((v >> 8) & 0xffff)
            + u64::from((v & 0xff) << 8)
            + checksum::sum(inner);
        let c = !checksum::fold(sum);
        let c = if c == 0 { 0xffff } else { c };
        let udp_len = udp_len as u16;
        let h: &mut [u8; N] = head.try_into().expect("split at N");
        h.copy_from_slice(&self.hdr[..N]);
        h[o6::PAYLOAD_LEN..o6::PAYLOAD_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
        h[o6::SPORT..o6::SPORT + 2].copy_from_slice(&sport.to_be_bytes());
        h[o6::UDP_LEN..o6::UDP_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
        h[o6::UDP_CHECKSUM..o6::UDP_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        h[o6::VNI..o6::VNI + 4].copy_from_slice(&(v << 8).to_be_bytes());
        Ok((start, N + len))
    }
}

/// Byte offsets of the fields [`EncapTemplate::apply`] patches in the 50
/// bytes of outer headers over IPv4.
mod o4 {
    use super::outer::{IP, UDP_V4, VXLAN_V4};
    pub const TOTAL_LEN: usize = IP + 2;
    pub const CHECKSUM: usize = IP + 10;
    pub const SPORT: usize = UDP_V4;
    pub const UDP_LEN: usize = UDP_V4 + 4;
    /// The VNI and the reserved byte after it, as one big-endian word.
    pub const VNI: usize = VXLAN_V4 + 4;
}

/// Byte offsets of the fields patched in the 70 bytes over IPv6.
mod o6 {
    use super::outer::{IP, UDP_V6, VXLAN_V6};
    pub const PAYLOAD_LEN: usize = IP + 4;
    pub const SPORT: usize = UDP_V6;
    pub const UDP_LEN: usize = UDP_V6 + 4;
    pub const UDP_CHECKSUM: usize = UDP_V6 + 6;
    /// The VNI and the reserved byte after it, as one big-endian word.
    pub const VNI: usize = VXLAN_V6 + 4;
}

/// The first 16-bit word of a VXLAN header: flags with I set.
const VXLAN_FLAGS_WORD: u16 = 0x0800;

/// A hash of the inner frame's flow: MACs and EtherType, plus for IPv4/IPv6
/// the addresses and protocol, plus TCP/UDP ports of unfragmented packets.
/// One 802.1Q tag is skipped. Deterministic: the same flow always hashes the
/// same; never panics on short or malformed frames.
#[inline]
pub fn flow_hash(inner: &[u8]) -> u32 {
    match flow_hash_v4(inner) {
        Some(h) => h,
        None => flow_hash_general(inner),
    }
}

/// [`flow_hash`] of the common frame, untagged IPv4 without options: the
/// same words mixed in the same order as [`flow_hash_general`], read at
/// constant offsets. `None` for any other frame.
#[inline(always)]
fn flow_hash_v4(inner: &[u8]) -> Option<u32> {
    // Ethernet 14 + IPv4 20 + the 4 bytes of ports.
    const L4: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
    let b: &[u8; L4 + 4] = inner.get(..L4 + 4)?.try_into().ok()?;
    if b[12] != 0x08 || b[13] != 0x00 || b[14] & 0x0f != 5 {
        return None;
    }
    // What `ipv4::Packet::new_checked` requires of the total length.
    let total = usize::from(u16::from_be_bytes([b[16], b[17]]));
    if total < ipv4::HEADER_LEN || total > inner.len() - ethernet::HEADER_LEN {
        return None;
    }
    let word = |at: usize| {
        u64::from_le_bytes([
            b[at],
            b[at + 1],
            b[at + 2],
            b[at + 3],
            b[at + 4],
            b[at + 5],
            b[at + 6],
            b[at + 7],
        ])
    };
    let mut h = Mix::default();
    h.word(word(0));
    // The 6-byte remainder of the Ethernet header, as `Mix::bytes` pads it.
    let rest = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], 0, 0]);
    h.word(rest ^ 6 << 59);
    // Source and destination addresses.
    h.word(word(ethernet::HEADER_LEN + 12));
    let proto = b[ethernet::HEADER_LEN + 9];
    h.word(u64::from(proto));
    let flags_offset = u16::from_be_bytes([b[20], b[21]]);
    // More-fragments or a non-zero offset: no ports.
    if flags_offset & 0x3fff != 0 {
        return Some(h.finish());
    }
    if proto == u8::from(IpProtocol::Tcp) || proto == u8::from(IpProtocol::Udp) {
        let ports = u32::from_le_bytes([b[L4], b[L4 + 1], b[L4 + 2], b[L4 + 3]]);
        h.word(u64::from(ports) ^ 4 << 59);
    }
    Some(h.finish())
}

/// [`flow_hash`] for any frame: tagged, IPv6, with IPv4 options, short or
/// malformed.
#[cold]
#[inline(never)]
fn flow_hash_general(inner: &[u8]) -> u32 {
    let mut h = Mix::default();
    if inner.len() < ethernet::HEADER_LEN {
        h.bytes(inner);
        return h.finish();
    }
    h.bytes(&inner[..ethernet::HEADER_LEN]);
    let mut l3 = ethernet::HEADER_LEN;
    let mut ethertype = u16::from_be_bytes([inner[12], inner[13]]);
    if ethertype == u16::from(EtherType::Vlan) && inner.len() >= l3 + 4 {
        ethertype = u16::from_be_bytes([inner[l3 + 2], inner[l3 + 3]]);
        l3 += 4;
    }
    let ip = &inner[l3..];
    let (proto, l4) = match EtherType::from(ethertype) {
        EtherType::Ipv4 => match ipv4::Packet::new_checked(ip) {
            Ok(p) => {
                h.bytes(&ip[12..20]);
                let proto = u8::from(p.protocol());
                h.word(u64::from(proto));
                if p.is_fragment() {
                    return h.finish();
                }
                (proto, usize::from(p.header_len()))
            }
            Err(_) => return h.finish(),
        },
        EtherType::Ipv6 => match ipv6::Packet::new_checked(ip) {
            Ok(p) => {
                h.bytes(&ip[8..40]);
                let proto = u8::from(p.next_header());
                h.word(u64::from(proto));
                (proto, ipv6::HEADER_LEN)
            }
            Err(_) => return h.finish(),
        },
        _ => return h.finish(),
    };
    let is_tcp_udp = proto == u8::from(IpProtocol::Tcp) || proto == u8::from(IpProtocol::Udp);
    if is_tcp_udp && ip.len() >= l4 + 4 {
        h.bytes(&ip[l4..l4 + 4]);
    }
    h.finish()
}

/// The outer UDP source port for an inner frame: [`flow_hash`] folded into
/// 49152–65535.
#[inline]
pub fn source_port(inner: &[u8]) -> u16 {
    SOURCE_PORT_MIN | (flow_hash(inner) as u16 & 0x3fff)
}

/// A small multiply-rotate mixer (not cryptographic; only spreads flows).
#[derive(Default)]
struct Mix(u64);

impl Mix {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w) ^ (rest.len() as u64) << 59);
        }
    }

    #[inline]
    fn finish(&self) -> u32 {
        let x = self.0 ^ (self.0 >> 29);
        let x = x.wrapping_mul(Self::K);
        (x ^ (x >> 32)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn params(v6: bool) -> EncapParams {
        let (src_ip, dst_ip) = if v6 {
            (
                IpAddr::V6("2001:db8::10".parse::<Ipv6Addr>().unwrap()),
                IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            )
        };
        EncapParams {
            src_mac: MacAddr([2, 0, 0, 0, 0, 0x10]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 0x01]),
            src_ip,
            dst_ip,
            vni: Vni::new(100).unwrap(),
            dst_port: 4789,
            ttl: 64,
            dont_frag: true,
            mtu: 1500,
        }
    }

    fn inner() -> Vec<u8> {
        // Eth + IPv4 UDP 10.0.0.1:1000 -> 10.0.0.2:2000, padded to 64 bytes.
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Udp,
            payload_len: 30,
            ttl: 64,
            dont_frag: false,
            dscp_ecn: 0,
        };
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut f[14..34]));
        f[34..36].copy_from_slice(&1000u16.to_be_bytes());
        f[36..38].copy_from_slice(&2000u16.to_be_bytes());
        f
    }

    #[test]
    fn outer_lengths_are_50_and_70() {
        assert_eq!(OUTER_V4_LEN, 50);
        assert_eq!(OUTER_V6_LEN, 70);
    }

    #[test]
    fn encap_v4_layout() {
        let f = inner();
        let mut buf = vec![0u8; 256];
        buf[128..192].copy_from_slice(&f);
        let (start, len) = encap(&mut buf, 128, 64, &params(false)).unwrap();
        assert_eq!((start, len), (78, 114));
        let out = &buf[start..start + len];
        let eth = ethernet::Frame::new_checked(out).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv4);
        let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert!(ip.dont_frag());
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.total_len(), 100);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(u.checksum(), 0);
        assert_eq!(u.dst_port(), 4789);
        assert!(u.src_port() >= SOURCE_PORT_MIN);
        let vx = vxlan::Header::new_checked(u.payload()).unwrap();
        assert_eq!(vxlan::Repr::parse(&vx).unwrap().vni.get(), 100);
        assert_eq!(vx.payload(), &f[..]);
    }

    #[test]
    fn encap_v6_computes_the_udp_checksum() {
        let f = inner();
        let mut buf = vec![0u8; 256];
        buf[128..192].copy_from_slice(&f);
        let p = params(true);
        let (start, len) = encap(&mut buf, 128, 64, &p).unwrap();
        assert_eq!(len, 134);
        let out = &buf[start..start + len];
        let ip = ipv6::Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(ip.hop_limit(), 64);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_ne!(u.checksum(), 0);
        assert!(u.verify_checksum(p.src_ip, p.dst_ip));
    }

    #[test]
    fn mtu_headroom_and_family_are_checked() {
        let mut buf = vec![0u8; 2000];
        let mut p = params(false);
        p.mtu = 113; // 64 + 50 - 14 = 100 fits; 113 fits too.
        assert!(encap(&mut buf, 128, 64, &p).is_ok());
        p.mtu = 99;
        assert_eq!(
            encap(&mut buf, 128, 64, &p),
            Err(RewriteError::TooBig { len: 100, mtu: 99 })
        );
        let p6 = params(true);
        assert_eq!(
            encap(&mut buf, 69, 64, &p6),
            Err(RewriteError::NoHeadroom { need: 70, have: 69 })
        );
        let mut mixed = params(false);
        mixed.dst_ip = p6.dst_ip;
        assert_eq!(
            encap(&mut buf, 128, 64, &mixed),
            Err(RewriteError::FamilyMismatch)
        );
    }

    #[test]
    fn the_ipv4_fast_path_hashes_like_the_general_one() {
        // Frames the fast path takes (and some it refuses): random bytes
        // with an IPv4 EtherType and IHL 5 most of the time, random
        // protocol (often TCP/UDP), flags/offset and total length.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut fast = 0;
        for _ in 0..20_000 {
            let n = 30 + (next() % 60) as usize;
            let mut f: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            if next() % 8 != 0 {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                if n > 14 && next() % 8 != 0 {
                    f[14] = 0x45;
                }
                if n > 23 {
                    f[23] = [6, 17, 1, 17][(next() % 4) as usize];
                }
                if n > 21 && next() % 2 == 0 {
                    f[20] &= 0xc0;
                    f[21] = 0;
                }
                if n > 17 && next() % 4 != 0 {
                    let total = (20 + next() % (n as u64 - 14)) as u16;
                    f[16..18].copy_from_slice(&total.to_be_bytes());
                }
            }
            if flow_hash_v4(&f).is_some() {
                fast += 1;
            }
            assert_eq!(flow_hash(&f), flow_hash_general(&f), "{f:02x?}");
        }
        assert!(fast > 5_000, "fast path taken {fast} times");
    }

    #[test]
    fn source_port_follows_the_flow() {
        let a = inner();
        let mut b = a.clone();
        // Same flow, different payload byte: same port.
        b[50] ^= 0xff;
        assert_eq!(source_port(&a), source_port(&b));
        // Different L4 source port: (almost surely) another port; over
        // many flows the ports spread over the range.
        let mut ports = std::collections::HashSet::new();
        for sp in 0..2000u16 {
            let mut c = a.clone();
            c[34..36].copy_from_slice(&sp.to_be_bytes());
            let port = source_port(&c);
            assert!(port >= SOURCE_PORT_MIN);
            ports.insert(port);
        }
        assert!(ports.len() > 1800, "only {} distinct ports", ports.len());
        // Short and garbage frames hash without panicking.
        for n in 0..64 {
            let _ = source_port(&a[..n]);
        }
    }
}
