//! VXLAN encapsulation of any inner frame with any parameters: either a
//! clear error, or outer headers that an independent parser (etherparse)
//! reads back with valid checksums, the right VNI and ports, and the inner
//! frame untouched.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use libfuzzer_sys::fuzz_target;
use xvs_dataplane::rewrite::{encap, EncapParams};
use xvs_dataplane::types::{MacAddr, Vni};

const HEADROOM: usize = 128;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, inner) = data.split_at(8);
    let v6 = head[0] & 1 == 1;
    let (src_ip, dst_ip) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                0,
                head[1] as u16 + 1,
            )),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, head[1].max(1))),
        )
    };
    let Some(vni) = Vni::new(u32::from_be_bytes([0, head[2], head[3], head[4]])) else {
        return;
    };
    let p = EncapParams {
        src_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0xbb, 0, 0, 0, 1]),
        src_ip,
        dst_ip,
        vni,
        dst_port: 4789,
        ttl: head[5],
        dont_frag: head[6] & 1 == 1,
        mtu: 1280 + head[7] as usize * 4,
    };
    let mut buf = vec![0u8; HEADROOM + inner.len()];
    buf[HEADROOM..].copy_from_slice(inner);
    let Ok((start, len)) = encap(&mut buf, HEADROOM, inner.len(), &p) else {
        return;
    };
    let outer = &buf[start..start + len];
    assert_eq!(
        &outer[outer.len() - inner.len()..],
        inner,
        "inner frame changed"
    );
    let pkt = SlicedPacket::from_ethernet(outer).expect("outer headers parse");
    let ip_len = match &pkt.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert!(!v6);
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
            assert_eq!(h.time_to_live, p.ttl);
            assert_eq!(h.dont_fragment, p.dont_frag);
            h.total_len as usize
        }
        Some(NetSlice::Ipv6(ip)) => {
            assert!(v6);
            40 + ip.header().payload_length() as usize
        }
        other => panic!("no IP header: {other:?}"),
    };
    assert!(ip_len <= p.mtu, "outer packet over the MTU");
    let Some(TransportSlice::Udp(udp)) = &pkt.transport else {
        panic!("no UDP header");
    };
    assert_eq!(udp.destination_port(), 4789);
    assert!(udp.source_port() >= 49152);
    if v6 {
        let (IpAddr::V6(s), IpAddr::V6(d)) = (src_ip, dst_ip) else {
            unreachable!()
        };
        let h = udp.to_header();
        let sum = h
            .calc_checksum_ipv6_raw(s.octets(), d.octets(), udp.payload())
            .expect("checksum");
        assert_eq!(h.checksum, sum, "UDP checksum over IPv6");
    } else {
        assert_eq!(udp.checksum(), 0, "UDP checksum 0 over IPv4");
    }
    let vx = udp.payload();
    assert_eq!(vx[0], 0x08, "VXLAN I flag");
    assert_eq!(u32::from_be_bytes([0, vx[4], vx[5], vx[6]]), vni.get());
    assert_eq!(&vx[8..], inner);
});
