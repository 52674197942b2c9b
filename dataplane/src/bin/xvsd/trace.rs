//! `xvsctl trace` on the daemon's side: what xvsd would do with one frame,
//! without sending it and without changing any state.
//!
//! 1. The classifier: a private copy of the XDP program runs on the frame
//!    with `BPF_PROG_TEST_RUN`. A private copy, because the live program
//!    counts every frame it sees (the trace must not move counters); its
//!    own counters, read before and after, say which decisions the frame
//!    went through. It is loaded at start-up ([`preload`], before xvsd
//!    drops the capabilities loading needs) and, before each trace, synced
//!    to exactly the entries the live classifier holds (the live one's
//!    [`ClassifierSync`], only the differences written; map updates
//!    through fds xvsd holds need no capability), so the two never
//!    disagree. A frame "from a VTEP"
//!    is first wrapped in the outer VXLAN headers that VTEP would send to
//!    our uplink.
//! 2. The switch: an [`Engine`] built like a worker's (bridge domains,
//!    encapsulation settings, resolved next hops) and the FDB owner's
//!    preview go through [`xvs_dataplane::trace::explain`], the engine's own
//!    decision and rewrite code.

use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use xvs_control::proto::{self, Reply, Request, TraceReport, TraceXdp};
use xvs_dataplane::daemon::hops::HopState;
use xvs_dataplane::daemon::{frame_meta, netdev, ClassifierSync, Model};
use xvs_dataplane::engine::Engine;
use xvs_dataplane::fdb::{self, FdbConfig};
use xvs_dataplane::rewrite::EncapParams;
use xvs_dataplane::trace::{explain, summary, vxlan_frame};
use xvs_dataplane::types::{MacAddr, Vni};
use xvs_ebpf::{Classifier, Counter, Meta, XdpAction};

use crate::control::Control;

/// Outer source MAC of a traced frame from a VTEP whose next hop is not
/// resolved (the classifier does not look at it).
const PLACEHOLDER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

/// The private classifier and what is programmed into it.
struct Shadow {
    cls: Classifier,
    sync: ClassifierSync,
}

/// The private classifier, loaded once by [`preload`].
static SHADOW: OnceLock<Result<Mutex<Shadow>, String>> = OnceLock::new();

/// Loads the private classifier `trace` runs frames through. Call at
/// start-up, while xvsd may still load BPF programs; a failure only
/// disables the classifier half of `trace` (reported per request).
pub fn preload() {
    SHADOW.get_or_init(|| {
        Classifier::load()
            .map(|cls| {
                Mutex::new(Shadow {
                    cls,
                    sync: ClassifierSync::new(),
                })
            })
            .map_err(|e| {
                tracing::warn!(error = %e, "trace: cannot load a private classifier");
                format!("trace: the private classifier copy did not load at start-up: {e}")
            })
    });
}

/// What a classifier counter means for a frame that stops there.
fn xdp_reason(c: Counter) -> String {
    let what = match c {
        Counter::PassNoPort => "the interface is not one of xvsd's ports",
        Counter::PassNotVxlan => "not VXLAN (IPv4/IPv6 UDP to the VXLAN port)",
        Counter::PassNotLocal => "VXLAN, but not to a local VTEP address",
        Counter::PassFragment => "an IPv4 fragment",
        Counter::PassIpv6Ext => "IPv6 with an extension header",
        Counter::DropUnknownVni => "the VNI is not mapped to a bridge domain",
        Counter::DropUnknownAttachment => "(port, VLAN) is not attached to a bridge domain",
        Counter::DropVxlanNoIFlag => "the VXLAN I flag is clear",
        _ => "malformed",
    };
    format!("XDP classifier: {what}")
}

fn meta_text(m: &Meta, model: &Model) -> String {
    let bd = u16::try_from(m.bd)
        .ok()
        .and_then(|b| model.bd(xvs_dataplane::types::BdId(b)))
        .map_or("?", |b| b.name.as_str());
    let mut s = format!("bd {} ({bd}), port index {}", m.bd, m.port_index);
    if let Some(ip) = m.src_vtep_ip() {
        s.push_str(&format!(", from vtep {ip} vni {}", m.vni));
    } else if m.vid != 0 {
        s.push_str(&format!(", vlan {} popped", m.vid));
    }
    s
}

impl Control {
    /// Answers a `trace` request (see the module doc).
    pub(crate) fn trace(&self, req: Request) -> Result<Reply, String> {
        let Request::Trace {
            port,
            vtep,
            vni,
            frame,
        } = req
        else {
            return Err("not a trace request".into());
        };
        let frame = proto::decode_hex(&frame).map_err(|e| format!("trace: frame: {e}"))?;
        let model = self.model();
        let uplink = model.uplink();
        let (uplink_mac, uplink_mtu) = match uplink {
            Some(u) => (
                netdev::mac(&u.name).map_err(|e| format!("trace: uplink {:?}: {e}", u.name))?,
                netdev::mtu(&u.name).map_err(|e| format!("trace: uplink {:?}: {e}", u.name))?
                    as usize,
            ),
            None => (MacAddr::ZERO, 1500),
        };
        let hops: Vec<(IpAddr, HopState)> = self
            .hops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(ip, s)| (*ip, s.clone()))
            .collect();
        let hop_mac = |ip: IpAddr| {
            hops.iter().find_map(|(h, s)| match s {
                HopState::Resolved { mac, .. } if *h == ip => Some(*mac),
                _ => None,
            })
        };

        // Where the frame enters, and the bytes the classifier sees.
        let (ingress, in_port, wire) = match (port, vtep, vni) {
            (Some(name), None, None) => {
                let p = model
                    .port_by_name(&name)
                    .ok_or_else(|| format!("no port {name:?}"))?;
                (format!("port {name}"), p.name.clone(), frame.clone())
            }
            (None, Some(ip), Some(vni)) => {
                let u = uplink.ok_or("trace: a frame from a VTEP needs an uplink port")?;
                let local = match ip {
                    IpAddr::V4(_) => model.local_v4().map(IpAddr::V4),
                    IpAddr::V6(_) => model.local_v6().map(IpAddr::V6),
                }
                .ok_or_else(|| format!("trace: no local VTEP address of {ip}'s family"))?;
                let vtep_cfg = &model.config().vtep;
                let params = EncapParams {
                    src_mac: hop_mac(ip).unwrap_or(PLACEHOLDER_MAC),
                    dst_mac: uplink_mac,
                    src_ip: ip,
                    dst_ip: local,
                    vni: Vni::new(vni.0).ok_or("trace: bad vni")?,
                    dst_port: vtep_cfg.udp_port,
                    ttl: 64,
                    dont_frag: false,
                    mtu: usize::MAX,
                };
                let outer = vxlan_frame(&frame, &params).map_err(|e| format!("trace: {e}"))?;
                (
                    format!(
                        "vtep {ip} vni {} (outer headers built on {})",
                        vni.0, u.name
                    ),
                    u.name.clone(),
                    outer,
                )
            }
            _ => return Err("trace: give exactly one of a port and a VTEP with its VNI".into()),
        };

        // 1. The classifier, on the private copy (one trace at a time).
        let shadow = SHADOW
            .get()
            .ok_or("trace: the private classifier copy was never loaded")?
            .as_ref()
            .map_err(String::clone)?;
        let live_entries = self.live().sync.entries().clone();
        let mut shadow = shadow.lock().unwrap_or_else(|p| p.into_inner());
        let Shadow { cls, sync } = &mut *shadow;
        sync.sync(cls, &live_entries)
            .map_err(|e| format!("trace: classifier copy: {e}"))?;
        let cls = &*cls;
        let ifindex = xvs_ebpf::ifindex_of(&in_port).map_err(|e| format!("trace: {e}"))?;
        let before = cls
            .counters()
            .map_err(|e| format!("trace: counters: {e}"))?;
        let run = cls
            .test_run(&wire, ifindex, 0)
            .map_err(|e| format!("trace: running the classifier: {e}"))?;
        let moved = cls
            .counters()
            .map_err(|e| format!("trace: counters: {e}"))?
            .since(&before)
            .nonzero();
        // The copy has no AF_XDP sockets: where it fails to redirect, the
        // live program (a socket on every port and queue) redirects.
        let names: Vec<String> = moved
            .iter()
            .map(|(c, _)| match c {
                Counter::RedirectFailed => Counter::Redirected.name().to_string(),
                c => c.name().to_string(),
            })
            .collect();
        let redirected = moved
            .iter()
            .any(|(c, _)| matches!(c, Counter::Redirected | Counter::RedirectFailed));
        let meta = run.meta().filter(|_| redirected);
        let mut xdp = TraceXdp {
            action: match (meta.is_some(), run.action) {
                (true, _) => "redirect".into(),
                (false, XdpAction::Pass) => "pass".into(),
                (false, XdpAction::Drop) => "drop".into(),
                (false, other) => format!("{other:?}").to_lowercase(),
            },
            counters: names,
            meta: None,
        };
        drop(shadow);
        let Some(meta) = meta else {
            let last = moved.last().map(|(c, _)| *c);
            let passed = xdp.action == "pass";
            let report = TraceReport {
                ingress,
                frame: summary(&wire),
                frame_len: wire.len(),
                xdp: Some(xdp),
                inner: None,
                bd: None,
                learn: None,
                lookup: None,
                decision: if passed { "pass" } else { "drop" }.into(),
                reason: match last {
                    Some(c) if passed => format!("{}: left to the kernel", xdp_reason(c)),
                    Some(c) => xdp_reason(c),
                    None => "the classifier moved no counter".into(),
                },
                counter: last.filter(|c| c.is_drop()).map(|c| c.name().into()),
                egress: Vec::new(),
            };
            return Ok(Reply::Trace(Box::new(report)));
        };
        xdp.meta = Some(meta_text(&meta, &model));
        let fm = frame_meta(&meta).ok_or("trace: the classifier wrote unusable metadata")?;

        // 2. The switch: an engine like a worker's, the FDB owner's preview.
        let (_owner, mut replicas, _) = fdb::new(FdbConfig::default(), 1);
        let replica = replicas.pop().ok_or("trace: no replica")?;
        let encap = model.encap_config(uplink_mac, uplink_mtu);
        let mut engine = Engine::new(replica, model.engine_bridge_domains(), encap);
        for p in model.ports() {
            engine.set_port_mtu(p.id, netdev::mtu(&p.name).ok());
        }
        for (ip, _) in &hops {
            if let Some(mac) = hop_mac(*ip) {
                engine.set_next_hop(*ip, Some(mac));
            }
        }
        let t = explain(&engine, &fm, run.frame(), |s, l, d| {
            self.fdb.preview(s, l, d).ok()
        });
        let hop_text = |ip: IpAddr| {
            hops.iter()
                .find(|(h, _)| *h == ip)
                .map(|(_, s)| s.to_string())
        };
        let mut report = t.report(&model, hop_text, uplink.map(|u| u.name.as_str()));
        report.ingress = ingress;
        report.frame = summary(&wire);
        report.frame_len = wire.len();
        report.xdp = Some(xdp);
        Ok(Reply::Trace(Box::new(report)))
    }
}
