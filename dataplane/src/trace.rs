//! `xvsctl trace` in the dataplane: what the engine would do with one frame,
//! worked out by the engine's own code — [`admit`], the FDB owner's
//! [`LearnVerdict`], [`decide`] and [`Engine::rewrite_egress`] — without
//! sending it, learning from it or counting it.
//!
//! [`explain`] takes the frame as the engine receives it (after the XDP
//! classifier: tag popped, VXLAN stripped) with its [`FrameMeta`], an
//! [`Engine`] built like a worker's (same bridge domains, encapsulation
//! settings and next hops) and the FDB owner's [`Preview`]; it returns a
//! [`Trace`] holding every step and every egress copy's bytes.
//! [`Trace::report`] names it all for the control protocol.
//!
//! The FDB answers come from the owner (the authoritative table); a
//! worker's replica can lag it by one batch.

use std::net::IpAddr;

use xvs_control::proto::{self, TraceEgress, TraceOuter, TraceReport, TraceStep};

use crate::daemon::Model;
use crate::decide::{decide, Decision, DropReason, Egress, FrameMeta, Ingress};
use crate::engine::{admit, EgressDrop, Engine, FrameDrop};
use crate::fdb::{BdFill, EntryKind, FdbEntry, FdbKey, LearnVerdict, Preview};
use crate::rewrite::{encap, EncapParams, RewriteError};
use crate::types::{Location, MacAddr};
use crate::wire::{ethernet, ipv4, ipv6, udp, vlan, vxlan, EtherType, IpProtocol};

/// Headroom the traced copies are rewritten in: the least a worker has
/// (the kernel's `XDP_PACKET_HEADROOM`).
pub const TRACE_HEADROOM: usize = crate::xsk::XDP_PACKET_HEADROOM;

/// Where the destination MAC was found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lookup {
    /// A group (multicast or broadcast) address: flooded without a lookup.
    Group,
    /// In the FDB.
    Hit(FdbEntry),
    /// The source MAC itself, at the place this very frame teaches.
    Learned(Location),
    /// Not in the FDB: flooded as unknown unicast.
    Miss,
}

/// One egress copy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EgressTrace {
    /// Where it goes.
    pub egress: Egress,
    /// The bytes that would be sent, or why the copy is dropped.
    pub result: Result<Vec<u8>, EgressDrop>,
}

/// What the engine would do with one frame, step by step.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Trace {
    /// The frame's metadata.
    pub meta: FrameMeta,
    /// The frame as the engine receives it.
    pub frame: Vec<u8>,
    /// Refused before any decision (nothing after this is set).
    pub refused: Option<Refused>,
    /// The FDB owner's view: verdict on the source, entry of the
    /// destination, the bridge domain's fill.
    pub preview: Option<Preview>,
    /// The destination lookup.
    pub lookup: Option<Lookup>,
    /// The forwarding decision.
    pub decision: Option<Decision>,
    /// Every copy.
    pub egress: Vec<EgressTrace>,
    /// The bridge domain's BUM storm limit, when a flood meets one.
    pub storm_pps: Option<u32>,
}

/// Why the engine refuses a frame before learning from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refused {
    /// One of the engine's first checks ([`admit`]).
    Frame(FrameDrop),
    /// VXLAN from a VTEP the bridge domain does not accept (not in its
    /// flood list, `learn_from_any_vtep` off): `drop_unknown_vtep`.
    UnknownVtep(IpAddr),
}

impl Refused {
    /// The counter it moves.
    pub const fn counter(self) -> &'static str {
        match self {
            Refused::Frame(f) => f.counter(),
            Refused::UnknownVtep(_) => "drop_unknown_vtep",
        }
    }

    /// In words.
    pub fn what(self) -> String {
        match self {
            Refused::Frame(f) => f.what().into(),
            Refused::UnknownVtep(ip) => format!(
                "VXLAN from {ip}, which is not in the bridge domain's flood list \
                 (learn_from_any_vtep is off)"
            ),
        }
    }
}

/// Whether the engine's replica applies a learn verdict to itself at once
/// (the owner may still refuse it later: a flap is held by the owner).
fn applies_locally(v: LearnVerdict) -> bool {
    matches!(
        v,
        LearnVerdict::Learn | LearnVerdict::Move { .. } | LearnVerdict::Flap { .. }
    )
}

/// Explains what `engine` would do with `frame` (as the engine receives it)
/// and its metadata. `fdb` answers the FDB owner's preview for (source key,
/// ingress location, destination key); `None` when the owner cannot answer
/// (the trace then stops after admission).
pub fn explain(
    engine: &Engine,
    meta: &FrameMeta,
    frame: &[u8],
    fdb: impl FnOnce(FdbKey, Location, FdbKey) -> Option<Preview>,
) -> Trace {
    let mut t = Trace {
        meta: *meta,
        frame: frame.to_vec(),
        refused: None,
        preview: None,
        lookup: None,
        decision: None,
        egress: Vec::new(),
        storm_pps: None,
    };
    let a = match admit(engine.bridge_domains(), meta, frame, 0, frame.len()) {
        Ok(a) => a,
        Err(why) => {
            t.refused = Some(Refused::Frame(why));
            return t;
        }
    };
    if let Ingress::Vtep(ip) = meta.ingress {
        if !engine.bridge_domains().admits_vtep(meta.bd, ip) {
            t.refused = Some(Refused::UnknownVtep(ip));
            return t;
        }
    }
    let loc = meta.ingress.location();
    let Some(p) = fdb(
        FdbKey::new(meta.bd, a.src),
        loc,
        FdbKey::new(meta.bd, a.dst),
    ) else {
        return t;
    };
    t.preview = Some(p);
    let lookup = if a.dst.is_multicast() {
        Lookup::Group
    } else if a.dst == a.src && applies_locally(p.learn) {
        Lookup::Learned(loc)
    } else {
        p.dst.map_or(Lookup::Miss, Lookup::Hit)
    };
    let known = match lookup {
        Lookup::Hit(e) => Some(e.loc),
        Lookup::Learned(l) => Some(l),
        Lookup::Group | Lookup::Miss => None,
    };
    t.lookup = Some(lookup);
    let mut out = Vec::new();
    let decision = decide(a.bd, &meta.ingress, known, &mut out);
    t.decision = Some(decision);
    if decision == Decision::Flood {
        t.storm_pps = a.bd.storm_pps;
    }
    if let Decision::Unicast(e) = decision {
        out = vec![e];
    } else if let Decision::Drop(_) = decision {
        out.clear();
    }
    for e in out {
        let mut buf = vec![0u8; TRACE_HEADROOM + frame.len()];
        buf[TRACE_HEADROOM..].copy_from_slice(frame);
        let result = engine
            .rewrite_egress(&e, &mut buf, TRACE_HEADROOM, frame.len())
            .map(|(start, len)| buf[start..start + len].to_vec());
        t.egress.push(EgressTrace { egress: e, result });
    }
    t
}

/// The outer VXLAN frame a remote VTEP would send us for `inner`: the
/// engine's own encapsulation with the roles reversed (`p.src_*` is the
/// remote side). For tracing a frame from a VTEP through the classifier.
pub fn vxlan_frame(inner: &[u8], p: &EncapParams) -> Result<Vec<u8>, RewriteError> {
    let head = crate::rewrite::OUTER_V6_LEN;
    let mut buf = vec![0u8; head + inner.len()];
    buf[head..].copy_from_slice(inner);
    let (start, len) = encap(&mut buf, head, inner.len(), p)?;
    Ok(buf[start..start + len].to_vec())
}

/// The outer headers of an encapsulated frame, read back from its bytes.
pub fn outer_headers(frame: &[u8]) -> Option<TraceOuter> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let (src_ip, dst_ip, ttl, df, ip_len, l4) = match eth.ethertype() {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
            let l4 = eth.payload().get(usize::from(ip.header_len())..)?;
            (
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ip.ttl(),
                ip.dont_frag(),
                usize::from(ip.total_len()),
                l4,
            )
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(eth.payload()).ok()?;
            let l4 = eth.payload().get(ipv6::HEADER_LEN..)?;
            (
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                ip.hop_limit(),
                false,
                ipv6::HEADER_LEN + usize::from(ip.payload_len()),
                l4,
            )
        }
        _ => return None,
    };
    let u = udp::Packet::new_checked(l4).ok()?;
    let vx = vxlan::Header::new_checked(u.payload()).ok()?;
    Some(TraceOuter {
        src_mac: proto::Mac(eth.src_addr().octets()),
        dst_mac: proto::Mac(eth.dst_addr().octets()),
        src_ip,
        dst_ip,
        ttl,
        df,
        ip_len,
        udp_src: u.src_port(),
        udp_dst: u.dst_port(),
        udp_checksum: u.checksum(),
        vni: vx.vni().get(),
    })
}

/// One line about a frame: MACs, tags, and IP / UDP / VXLAN when present.
pub fn summary(frame: &[u8]) -> String {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return format!("runt ({} bytes)", frame.len());
    };
    let mut s = format!("{} > {}", eth.src_addr(), eth.dst_addr());
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    for _ in 0..2 {
        if !matches!(u16::from(ethertype), 0x8100 | 0x88a8) {
            break;
        }
        let Ok(tag) = vlan::Tag::new_checked(rest) else {
            s.push_str(", truncated tag");
            return s;
        };
        s.push_str(&format!(", 802.1Q vlan {}", tag.vid()));
        ethertype = tag.ethertype();
        rest = &rest[vlan::TAG_LEN..];
    }
    let (l4, proto) = match ethertype {
        EtherType::Ipv4 => match ipv4::Packet::new_checked(rest) {
            Ok(ip) => {
                s.push_str(&format!(", IPv4 {} > {}", ip.src_addr(), ip.dst_addr()));
                let hl = usize::from(ip.header_len()).min(rest.len());
                (&rest[hl..], ip.protocol())
            }
            Err(_) => return s + ", truncated IPv4",
        },
        EtherType::Ipv6 => match ipv6::Packet::new_checked(rest) {
            Ok(ip) => {
                s.push_str(&format!(", IPv6 {} > {}", ip.src_addr(), ip.dst_addr()));
                (&rest[ipv6::HEADER_LEN..], ip.next_header())
            }
            Err(_) => return s + ", truncated IPv6",
        },
        other => return format!("{s}, ethertype {:#06x}", u16::from(other)),
    };
    match proto {
        IpProtocol::Udp => match udp::Packet::new_checked(l4) {
            Ok(u) => {
                s.push_str(&format!(", UDP {} > {}", u.src_port(), u.dst_port()));
                if let Ok(vx) = vxlan::Header::new_checked(u.payload()) {
                    if vx.flags() & 0x08 != 0 && u.dst_port() == vxlan::DEFAULT_PORT {
                        s.push_str(&format!(", VXLAN vni {}", vx.vni().get()));
                    }
                }
            }
            Err(_) => s.push_str(", truncated UDP"),
        },
        IpProtocol::Tcp => s.push_str(", TCP"),
        other => s.push_str(&format!(", protocol {}", u8::from(other))),
    }
    s
}

fn location_name(model: &Model, loc: &Location) -> String {
    match loc {
        Location::Local(a) => {
            let name = model.port(a.port).map_or("?", |p| p.name.as_str());
            match a.vlan {
                Some(v) => format!("{name} vlan {}", v.id()),
                None => name.to_owned(),
            }
        }
        Location::Vtep(ip) => format!("vtep {ip}"),
    }
}

fn fill_text(f: &BdFill) -> String {
    match f.max {
        Some(m) => format!("{} of {m} learned MACs", f.learned),
        None => format!("{} learned MACs, no cap", f.learned),
    }
}

fn kind(e: &FdbEntry) -> &'static str {
    match e.kind {
        EntryKind::Learned => "learned",
        EntryKind::Static => "static",
    }
}

fn drop_counter(r: DropReason) -> (&'static str, &'static str) {
    match r {
        DropReason::Hairpin => (
            "drop_hairpin",
            "the destination is behind the attachment the frame came in on (hairpin off)",
        ),
        DropReason::SplitHorizon => (
            "drop_split_horizon",
            "from a VTEP to a VTEP (split horizon)",
        ),
        DropReason::NoVni => (
            "drop_no_vni",
            "the destination is a VTEP but the bridge domain has no VNI",
        ),
        DropReason::NoDestination => (
            "drop_no_destination",
            "a flood with nowhere to go (no other attachment, no VTEP)",
        ),
    }
}

impl Trace {
    /// The trace with names instead of numbers, for the control protocol.
    /// `hop` tells the next-hop state of a remote VTEP; `uplink` names the
    /// port encapsulated copies leave on. The ingress, the frame as
    /// received and the classifier's part are the caller's to fill.
    pub fn report(
        &self,
        model: &Model,
        hop: impl Fn(IpAddr) -> Option<String>,
        uplink: Option<&str>,
    ) -> TraceReport {
        let bd = model.bd(self.meta.bd);
        let mut r = TraceReport {
            ingress: match self.meta.ingress {
                Ingress::Local(a) => location_name(model, &Location::Local(a)),
                Ingress::Vtep(ip) => format!("vtep {ip}"),
            },
            frame: summary(&self.frame),
            frame_len: self.frame.len(),
            xdp: None,
            inner: Some(format!(
                "{} bytes: {}",
                self.frame.len(),
                summary(&self.frame)
            )),
            bd: Some(match bd {
                Some(b) => match b.vni {
                    Some(v) => format!("{} (id {}, vni {})", b.name, b.id.0, v.get()),
                    None => format!("{} (id {}, no vni)", b.name, b.id.0),
                },
                None => format!("unknown (id {})", self.meta.bd.0),
            }),
            learn: None,
            lookup: None,
            decision: "drop".into(),
            reason: String::new(),
            counter: None,
            egress: Vec::new(),
        };
        if let Some(why) = self.refused {
            r.reason = format!("refused before learning: {}", why.what());
            r.counter = Some(why.counter().into());
            return r;
        }
        let Some(p) = self.preview else {
            r.reason = "the FDB owner did not answer".into();
            return r;
        };
        let eth = ethernet::Frame::new_unchecked(&self.frame[..]);
        let (src, dst) = (eth.src_addr(), eth.dst_addr());
        let here = location_name(model, &self.meta.ingress.location());
        let (outcome, detail) = match p.learn {
            LearnVerdict::Learn => (
                "learn",
                format!("new: would be learned at {here} ({})", fill_text(&p.fill)),
            ),
            LearnVerdict::CapReached { max } => (
                "refused_cap",
                format!(
                    "new, but the bridge domain holds its cap of {max} learned MACs: not \
                     learned (counted as learn_cap_reached)"
                ),
            ),
            LearnVerdict::Refresh => (
                "refresh",
                format!(
                    "known at {here}: its age would be refreshed (idle {} s)",
                    p.src.map_or(0, |e| e.idle_ms / 1000)
                ),
            ),
            LearnVerdict::StaticHere => ("static", format!("static entry at {here}")),
            LearnVerdict::Static { at } => (
                "refused_static",
                format!(
                    "a static entry puts it at {}: not moved (learn_static)",
                    location_name(model, &at)
                ),
            ),
            LearnVerdict::Held { at, ms } => (
                "refused_held",
                format!(
                    "held at {} by flap damping for {ms} ms more: not moved (learn_held)",
                    location_name(model, &at)
                ),
            ),
            LearnVerdict::Flap { from } => (
                "flap",
                format!(
                    "a move from {} to {here} past the move limit: it would be held at {} \
                     (MAC flapping)",
                    location_name(model, &from),
                    location_name(model, &from)
                ),
            ),
            LearnVerdict::Move { from } => (
                "move",
                format!("would move from {} to {here}", location_name(model, &from)),
            ),
        };
        r.learn = Some(TraceStep {
            mac: proto::Mac(src.octets()),
            outcome: outcome.into(),
            detail,
        });
        let (outcome, detail) = match self.lookup {
            Some(Lookup::Group) => (
                "group",
                if dst == MacAddr::BROADCAST {
                    "broadcast: flooded".to_string()
                } else {
                    "multicast: flooded".to_string()
                },
            ),
            Some(Lookup::Hit(e)) => (
                "hit",
                format!(
                    "{} entry at {}{}",
                    kind(&e),
                    location_name(model, &e.loc),
                    if e.held { " (held)" } else { "" }
                ),
            ),
            Some(Lookup::Learned(l)) => (
                "hit",
                format!(
                    "its own source, at {} from this frame",
                    location_name(model, &l)
                ),
            ),
            Some(Lookup::Miss) | None => {
                ("miss", "not in the FDB: flooded as unknown unicast".into())
            }
        };
        r.lookup = Some(TraceStep {
            mac: proto::Mac(dst.octets()),
            outcome: outcome.into(),
            detail,
        });
        match self.decision {
            Some(Decision::Unicast(_)) => {
                r.decision = "unicast".into();
                r.reason = "known unicast: one destination".into();
            }
            Some(Decision::Flood) => {
                r.decision = "flood".into();
                r.reason = match self.meta.ingress {
                    Ingress::Vtep(_) => "to every local attachment; not to VTEPs (split horizon: \
                                         it came from one)"
                        .into(),
                    Ingress::Local(_) => "to every other attachment and every VTEP of the flood \
                                          list (head-end replication)"
                        .into(),
                };
                if let Some(pps) = self.storm_pps {
                    r.reason.push_str(&format!(
                        "; storm control: at most {pps} flooded frames/s in this bridge \
                         domain, a flood over that budget is dropped (drop_storm)"
                    ));
                }
            }
            Some(Decision::Drop(why)) => {
                let (c, text) = drop_counter(why);
                r.reason = text.into();
                r.counter = Some(c.into());
            }
            None => r.reason = "no decision".into(),
        }
        for e in &self.egress {
            let (to, port, next_hop, vlan) = match e.egress {
                Egress::Local(a) => (
                    location_name(model, &Location::Local(a)),
                    model.port(a.port).map(|p| p.name.clone()),
                    None,
                    a.vlan.map(|v| v.id()),
                ),
                Egress::Vtep { ip, vni } => (
                    format!("vtep {ip} vni {}", vni.get()),
                    uplink.map(str::to_owned),
                    Some(hop(ip).unwrap_or_else(|| "unknown".into())),
                    None,
                ),
            };
            let mut te = TraceEgress {
                to,
                port,
                sent: e.result.is_ok(),
                reason: None,
                counter: None,
                vlan: None,
                outer: None,
                next_hop,
                len: None,
                hex: None,
            };
            match &e.result {
                Ok(bytes) => {
                    te.vlan = vlan;
                    te.outer = match e.egress {
                        Egress::Vtep { .. } => outer_headers(bytes),
                        Egress::Local(_) => None,
                    };
                    te.len = Some(bytes.len());
                    te.hex = Some(proto::encode_hex(bytes));
                }
                Err(why) => {
                    te.reason = Some(why.what().into());
                    te.counter = Some(why.counter().into());
                }
            }
            r.egress.push(te);
        }
        if r.decision == "flood" || r.decision == "unicast" {
            let sent = r.egress.iter().filter(|e| e.sent).count();
            if sent == 0 {
                r.reason.push_str("; every copy is dropped");
            }
        }
        r
    }
}

#[cfg(test)]
mod tests;
