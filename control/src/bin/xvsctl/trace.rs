//! `xvsctl trace`: the frame to trace (hex, or built from header fields),
//! and the daemon's explanation as readable lines.

use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::{bail, Context};
use xvs_control::proto::{self, Mac, Request, TraceReport, Vni};

/// Arguments of `trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The frame arrives on this port (uplink or access) …
    #[arg(long, conflicts_with = "vtep", required_unless_present = "vtep")]
    pub port: Option<String>,
    /// … or from this remote VTEP (with --vni): xvsd wraps the frame in the
    /// outer VXLAN headers that VTEP would send to it.
    #[arg(long, requires = "vni")]
    pub vtep: Option<IpAddr>,
    /// VNI of a frame from --vtep.
    #[arg(long, requires = "vtep")]
    pub vni: Option<u32>,
    /// The frame carries an 802.1Q tag with this VLAN ID (inserted after the
    /// MAC addresses, also into a --hex frame).
    #[arg(long)]
    pub vlan: Option<u16>,
    /// The whole frame in hex (from the destination MAC; spaces and `:`
    /// ignored). Without it the frame is built from the options below.
    #[arg(long, conflicts_with_all = ["src_mac", "dst_mac", "ethertype", "src_ip", "dst_ip"])]
    pub hex: Option<String>,
    /// Source MAC of a built frame.
    #[arg(long, required_unless_present = "hex")]
    pub src_mac: Option<String>,
    /// Destination MAC of a built frame.
    #[arg(long, required_unless_present = "hex")]
    pub dst_mac: Option<String>,
    /// EtherType of a built frame (e.g. 0x0806); default: from the IP
    /// addresses, else 0x88b5 (local experimental).
    #[arg(long, value_parser = parse_u16)]
    pub ethertype: Option<u16>,
    /// Source IP: the frame carries IPv4/IPv6 and --proto.
    #[arg(long, requires = "dst_ip")]
    pub src_ip: Option<IpAddr>,
    /// Destination IP.
    #[arg(long, requires = "src_ip")]
    pub dst_ip: Option<IpAddr>,
    /// Transport of a built IP frame: udp, tcp or icmp.
    #[arg(long, default_value = "udp", value_parser = ["udp", "tcp", "icmp"])]
    pub proto: String,
    /// UDP/TCP source port.
    #[arg(long, default_value_t = 40000)]
    pub src_port: u16,
    /// UDP/TCP destination port.
    #[arg(long, default_value_t = 5201)]
    pub dst_port: u16,
    /// Total frame length to pad a built frame to (at least 60).
    #[arg(long, default_value_t = 60)]
    pub len: usize,
}

fn parse_u16(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

impl TraceArgs {
    /// The `trace` request.
    pub fn to_request(&self) -> anyhow::Result<Request> {
        let vni = match self.vni {
            Some(v) if v == 0 || v > xvs_control::config::VNI_MAX => {
                bail!("vni {v} outside 1..=16777215")
            }
            v => v.map(Vni),
        };
        let vlan = crate::cli::vlan(self.vlan)?.map(|v| v.0);
        let mut frame = match &self.hex {
            Some(h) => proto::decode_hex(h)
                .map_err(anyhow::Error::msg)
                .context("--hex")?,
            None => self.build()?,
        };
        if let Some(vid) = vlan {
            if frame.len() < 12 {
                bail!("--hex: a {}-byte frame has no MAC addresses", frame.len());
            }
            let tag = [0x81, 0x00, (vid >> 8) as u8, vid as u8];
            frame.splice(12..12, tag);
        }
        if frame.len() > proto::MAX_TRACE_FRAME {
            bail!("a frame of {} bytes is too long to trace", frame.len());
        }
        Ok(Request::Trace {
            port: self.port.clone(),
            vtep: self.vtep,
            vni,
            frame: proto::encode_hex(&frame),
        })
    }

    /// Builds the frame from the header options (untagged: `--vlan` is
    /// inserted afterwards for both ways).
    fn build(&self) -> anyhow::Result<Vec<u8>> {
        let mac = |s: &Option<String>, what: &str| -> anyhow::Result<Mac> {
            let s = s
                .as_deref()
                .with_context(|| format!("--{what} (or --hex) is required"))?;
            Ok(s.parse()?)
        };
        let (src, dst) = (
            mac(&self.src_mac, "src-mac")?,
            mac(&self.dst_mac, "dst-mac")?,
        );
        let ip = match (self.src_ip, self.dst_ip) {
            (Some(s), Some(d)) => Some(ip_packet(s, d, &self.proto, self.src_port, self.dst_port)?),
            _ => None,
        };
        let ethertype = self.ethertype.unwrap_or(match self.src_ip {
            Some(IpAddr::V4(_)) => 0x0800,
            Some(IpAddr::V6(_)) => 0x86dd,
            None => 0x88b5,
        });
        let mut f = Vec::with_capacity(self.len.max(60));
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&ethertype.to_be_bytes());
        if let Some(p) = ip {
            f.extend_from_slice(&p);
        }
        if f.len() < self.len.max(60) {
            f.resize(self.len.max(60), 0);
        }
        Ok(f)
    }
}

/// An IP packet with a minimal UDP, TCP (SYN) or ICMP echo header and no
/// payload. IPv4 gets its header checksum; transport checksums are left 0
/// (the switch does not read them).
fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    l4: &str,
    sport: u16,
    dport: u16,
) -> anyhow::Result<Vec<u8>> {
    let v6 = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => bail!("--src-ip and --dst-ip must be of the same family"),
    };
    let (proto, l4): (u8, Vec<u8>) = match l4 {
        "tcp" => {
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&sport.to_be_bytes());
            h[2..4].copy_from_slice(&dport.to_be_bytes());
            h[12] = 5 << 4;
            h[13] = 0x02; // SYN
            h[14..16].copy_from_slice(&64240u16.to_be_bytes());
            (6, h)
        }
        "icmp" => {
            let t = if v6 { 128 } else { 8 }; // echo request
            (if v6 { 58 } else { 1 }, vec![t, 0, 0, 0, 0, 1, 0, 1])
        }
        _ => {
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&sport.to_be_bytes());
            h[2..4].copy_from_slice(&dport.to_be_bytes());
            h[4..6].copy_from_slice(&8u16.to_be_bytes());
            (17, h)
        }
    };
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + l4.len()) as u16;
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let mut sum: u32 = p
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => unreachable!("families checked above"),
    }
    p.extend_from_slice(&l4);
    Ok(p)
}

/// The report as lines for people, in the order xvsd works.
pub fn text(t: &TraceReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Frame     {} bytes: {}", t.frame_len, t.frame);
    let _ = writeln!(o, "Ingress   {}", t.ingress);
    if let Some(x) = &t.xdp {
        let _ = writeln!(o, "XDP       {} ({})", x.action, x.counters.join(", "));
        if let Some(m) = &x.meta {
            let _ = writeln!(o, "          metadata: {m}");
        }
    }
    if let Some(i) = &t.inner {
        let _ = writeln!(o, "Switched  {i}");
    }
    if let Some(bd) = &t.bd {
        let _ = writeln!(o, "BD        {bd}");
    }
    for (label, step) in [("Learn", &t.learn), ("Lookup", &t.lookup)] {
        if let Some(s) = step {
            let _ = writeln!(o, "{label:<9} {} {}: {}", s.mac, s.outcome, s.detail);
        }
    }
    let counter = t
        .counter
        .as_deref()
        .map_or(String::new(), |c| format!(" [{c}]"));
    let _ = writeln!(o, "Decision  {}: {}{counter}", t.decision, t.reason);
    if !t.egress.is_empty() {
        let sent = t.egress.iter().filter(|e| e.sent).count();
        let _ = writeln!(
            o,
            "Egress    {} cop{}, {sent} sent",
            t.egress.len(),
            if t.egress.len() == 1 { "y" } else { "ies" }
        );
    }
    for (i, e) in t.egress.iter().enumerate() {
        // A VTEP's copy leaves on the uplink; a local one names its port.
        let via = match e.port.as_deref() {
            Some(p) if !e.to.starts_with(p) => format!(" via {p}"),
            _ => String::new(),
        };
        let what = if e.sent {
            format!("sent, {} bytes", e.len.unwrap_or(0))
        } else {
            let c = e
                .counter
                .as_deref()
                .map_or(String::new(), |c| format!(" [{c}]"));
            format!("dropped: {}{c}", e.reason.as_deref().unwrap_or("?"))
        };
        let _ = writeln!(o, "  {}. {}{via}: {what}", i + 1, e.to);
        if let Some(v) = e.vlan {
            let _ = writeln!(o, "       push 802.1Q vlan {v}");
        }
        if let Some(h) = &e.outer {
            let _ = writeln!(o, "       outer Ethernet {} > {}", h.src_mac, h.dst_mac);
            let df = if h.df { ", DF" } else { "" };
            let _ = writeln!(
                o,
                "       outer IP {} > {}, ttl {}{df}, length {}",
                h.src_ip, h.dst_ip, h.ttl, h.ip_len
            );
            let _ = writeln!(
                o,
                "       outer UDP {} > {}, checksum {:#06x}; VXLAN vni {}",
                h.udp_src, h.udp_dst, h.udp_checksum, h.vni
            );
        }
        if let Some(n) = &e.next_hop {
            let _ = writeln!(o, "       next hop: {n}");
        }
    }
    let _ = writeln!(o, "(traced only: nothing was sent, learned or counted)");
    o
}
