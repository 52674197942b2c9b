//! The control protocol between `xvsctl` and `xvsd`: its types and framing.
//!
//! One request and one response per line, each a JSON object, over xvsd's
//! Unix socket. Every message carries the protocol [`VERSION`]; a daemon
//! answers a request of another version with an error rather than guessing.
//!
//! ```text
//! → {"version":1,"request":{"verb":"fdb_show","bd":"blue"}}
//! ← {"version":1,"ok":{"fdb":[{"bd":"blue","mac":"02:00:00:00:00:01",…}]}}
//! ← {"version":1,"error":"no bridge domain \"green\""}
//! ```
//!
//! A request line longer than [`MAX_REQUEST`] bytes is refused without being
//! parsed. Parsing here checks shape and ranges (VNI, VLAN, MAC, addresses);
//! whether a named port or bridge domain exists is the daemon's to check.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::config::{Role, VLAN_MAX, VNI_MAX};

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;
/// Longest request line accepted, newline included (a `config apply` of a
/// large file fits; anything longer is refused unread).
pub const MAX_REQUEST: usize = 1 << 20;

/// An Ethernet MAC address, written `02:00:00:00:00:01` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// True for group (multicast and broadcast) addresses.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A MAC address that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad MAC address {0:?}: want six hex octets like 02:00:00:00:00:01")]
pub struct BadMac(pub String);

impl FromStr for Mac {
    type Err = BadMac;
    fn from_str(s: &str) -> Result<Self, BadMac> {
        let bad = || BadMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A VXLAN network identifier, checked to be in 1..=16777215 when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Vni(pub u32);

impl<'de> Deserialize<'de> for Vni {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v == 0 || v > VNI_MAX {
            return Err(serde::de::Error::custom(format!(
                "vni {v} outside 1..={VNI_MAX}"
            )));
        }
        Ok(Vni(v))
    }
}

/// An 802.1Q VLAN ID, checked to be in 1..=4094 when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VlanId(pub u16);

impl<'de> Deserialize<'de> for VlanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u16::deserialize(d)?;
        if v == 0 || v > VLAN_MAX {
            return Err(serde::de::Error::custom(format!(
                "vlan {v} outside 1..={VLAN_MAX}"
            )));
        }
        Ok(VlanId(v))
    }
}

/// Everything a client can ask. Each variant is one verb; `verb` names it on
/// the wire (`{"verb":"bd_add","name":"blue","vni":100}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Ports, bridge domains and the daemon's state.
    Show {},
    /// Counters.
    Stats {},
    /// The running configuration as TOML.
    ConfigDump {},
    /// Replace the running configuration atomically with this TOML text.
    ConfigApply {
        /// The whole configuration file.
        toml: String,
    },
    /// Add a port.
    PortAdd {
        /// Interface name.
        name: String,
        /// Uplink or access.
        role: Role,
    },
    /// Remove a port (and its attachments).
    PortDel {
        /// Interface name.
        name: String,
    },
    /// Add a bridge domain.
    BdAdd {
        /// Unique name.
        name: String,
        /// VNI, if the domain extends over VXLAN.
        #[serde(default)]
        vni: Option<Vni>,
        /// Cap on learned MACs.
        #[serde(default)]
        max_macs: Option<u32>,
    },
    /// Remove a bridge domain.
    BdDel {
        /// Its name.
        name: String,
    },
    /// Attach (port, VLAN) to a bridge domain.
    Attach {
        /// Bridge domain.
        bd: String,
        /// Access port.
        port: String,
        /// VLAN; absent = untagged.
        #[serde(default)]
        vlan: Option<VlanId>,
    },
    /// Detach (port, VLAN) from its bridge domain.
    Detach {
        /// Bridge domain.
        bd: String,
        /// Access port.
        port: String,
        /// VLAN; absent = untagged.
        #[serde(default)]
        vlan: Option<VlanId>,
    },
    /// Add a remote VTEP to a bridge domain's flood list.
    FloodAdd {
        /// Bridge domain.
        bd: String,
        /// Remote VTEP address.
        vtep: IpAddr,
    },
    /// Remove a remote VTEP from a flood list.
    FloodDel {
        /// Bridge domain.
        bd: String,
        /// Remote VTEP address.
        vtep: IpAddr,
    },
    /// List FDB entries, of one bridge domain or all.
    FdbShow {
        /// Bridge domain; absent = all.
        #[serde(default)]
        bd: Option<String>,
    },
    /// Add a static FDB entry.
    FdbAdd {
        /// Bridge domain.
        bd: String,
        /// The MAC (unicast).
        mac: Mac,
        /// Local access port (with `vlan`), or …
        #[serde(default)]
        port: Option<String>,
        /// … VLAN on that port (absent = untagged), or …
        #[serde(default)]
        vlan: Option<VlanId>,
        /// … a remote VTEP. Exactly one of `port` and `vtep`.
        #[serde(default)]
        vtep: Option<IpAddr>,
    },
    /// Delete an FDB entry (static or learned).
    FdbDel {
        /// Bridge domain.
        bd: String,
        /// The MAC.
        mac: Mac,
    },
    /// Flush learned entries, of one bridge domain or all.
    FdbFlush {
        /// Bridge domain; absent = all.
        #[serde(default)]
        bd: Option<String>,
    },
    /// Explain what xvsd would do with one frame, without sending it or
    /// changing any state.
    Trace {
        /// The frame arrives on this port (as on the wire, tags included), or …
        #[serde(default)]
        port: Option<String>,
        /// … from this remote VTEP (`frame` is then the inner frame; the
        /// daemon builds the outer VXLAN headers). Exactly one of `port`
        /// and `vtep`.
        #[serde(default)]
        vtep: Option<IpAddr>,
        /// The VNI of a frame from `vtep` (required with it).
        #[serde(default)]
        vni: Option<Vni>,
        /// The frame's bytes in hex (14 to [`MAX_TRACE_FRAME`] bytes).
        frame: String,
    },
}

/// Longest frame `trace` accepts, in bytes (a jumbo frame).
pub const MAX_TRACE_FRAME: usize = 9216;

/// Decodes hex bytes; ASCII whitespace and `:` between digits are ignored
/// (so `tcpdump -xx` and `02:00:…` styles both paste).
pub fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hex = |b: u8| (b as char).to_digit(16);
            match (hex(pair[0]), hex(pair[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!(
                    "not a hex digit: {:?}",
                    String::from_utf8_lossy(pair)
                )),
            }
        })
        .collect()
}

/// Encodes bytes as lowercase hex, no separators.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `trace`: what xvsd would do with one frame. Every step names what it
/// looked at and what it concluded; nothing was sent or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReport {
    /// Where the frame enters (`port nn-vm1`, `vtep 192.0.2.1 vni 100`).
    pub ingress: String,
    /// The frame as traced, in one line.
    pub frame: String,
    /// Its length in bytes.
    pub frame_len: usize,
    /// The XDP classifier's verdict, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp: Option<TraceXdp>,
    /// The frame the switch works on, after the classifier (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<String>,
    /// Its bridge domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bd: Option<String>,
    /// Learning of the source MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn: Option<TraceStep>,
    /// Lookup of the destination MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<TraceStep>,
    /// `unicast`, `flood`, `drop` or `pass` (left to the kernel).
    pub decision: String,
    /// Why, in words.
    pub reason: String,
    /// The drop counter the decision moves, for a drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    /// Each copy of the frame and what is written on it.
    #[serde(default)]
    pub egress: Vec<TraceEgress>,
}

/// The classifier's part of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceXdp {
    /// `redirect` (to xvsd's AF_XDP socket), `pass` or `drop`.
    pub action: String,
    /// The classifier counters this frame moves, in order.
    pub counters: Vec<String>,
    /// The metadata it writes, in one line, when it redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
}

/// One step of a trace (learning, lookup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    /// The MAC looked at.
    pub mac: Mac,
    /// A short keyword (`learn`, `refresh`, `move`, `refused_cap`, `hit`,
    /// `miss`, `group`, …).
    pub outcome: String,
    /// The explanation.
    pub detail: String,
}

/// One copy of a traced frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEgress {
    /// Where it goes (`nn-vm3 vlan 10`, `vtep 192.0.2.1 vni 100`).
    pub to: String,
    /// The interface it leaves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Sent, or dropped (see `reason`).
    pub sent: bool,
    /// Why it is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The drop counter it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    /// The VLAN tag pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// The outer headers written (VXLAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer: Option<TraceOuter>,
    /// The state of the next hop towards a remote VTEP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    /// Length on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<usize>,
    /// The bytes that would be sent, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

/// The outer headers of an encapsulated copy, as read back from its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceOuter {
    /// Outer Ethernet source (the uplink's MAC).
    pub src_mac: Mac,
    /// Outer Ethernet destination (the next hop's MAC).
    pub dst_mac: Mac,
    /// Outer IP source (our VTEP address).
    pub src_ip: IpAddr,
    /// Outer IP destination (the remote VTEP).
    pub dst_ip: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 don't-fragment (false over IPv6).
    pub df: bool,
    /// Outer IP packet length.
    pub ip_len: usize,
    /// UDP source port (flow entropy).
    pub udp_src: u16,
    /// UDP destination port.
    pub udp_dst: u16,
    /// UDP checksum (0 over IPv4).
    pub udp_checksum: u16,
    /// The VNI.
    pub vni: u32,
}

/// One FDB entry as `fdb show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbEntry {
    /// Bridge domain name.
    pub bd: String,
    /// The MAC.
    pub mac: Mac,
    /// `learned` or `static`.
    pub kind: FdbKind,
    /// Local port, for a local entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// VLAN on that port (absent = untagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Remote VTEP, for a remote entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep: Option<IpAddr>,
    /// Seconds since the entry was last refreshed (learned entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_secs: Option<u64>,
}

/// How an FDB entry came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdbKind {
    /// Learned from traffic; ages out.
    Learned,
    /// Configured; never ages, never moved by learning.
    Static,
}

/// One counter: where it was counted, what, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// What counted it: `xdp`, `port`, `worker`, `bd`, `fdb`.
    pub scope: String,
    /// Which one of that scope (`eth1`, `0`, `blue`), empty when global.
    #[serde(default)]
    pub instance: String,
    /// The counter's name (`rx_frames`, `drop_unknown_vni`, …).
    pub name: String,
    /// Its value.
    pub value: u64,
}

/// What the daemon answers on success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The request was carried out; nothing to report.
    Done,
    /// `show`: the daemon's state, as free-form JSON.
    Show(serde_json::Value),
    /// `stats`.
    Stats(Vec<Counter>),
    /// `config dump`: TOML text.
    Config(String),
    /// `fdb show`.
    Fdb(Vec<FdbEntry>),
    /// `trace`.
    Trace(Box<TraceReport>),
}

/// One request on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestEnvelope {
    /// Protocol version of the sender.
    pub version: u32,
    /// The request.
    pub request: Request,
}

/// One response on the wire: exactly one of `ok` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    /// Protocol version of the daemon.
    pub version: u32,
    /// The reply, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<Reply>,
    /// A one-line error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ResponseEnvelope {
    /// Wraps a handler's result.
    pub fn from_result(r: Result<Reply, String>) -> Self {
        match r {
            Ok(reply) => ResponseEnvelope {
                version: VERSION,
                ok: Some(reply),
                error: None,
            },
            Err(e) => ResponseEnvelope {
                version: VERSION,
                ok: None,
                error: Some(e),
            },
        }
    }

    /// Turns the envelope back into the handler's result.
    pub fn into_result(self) -> Result<Reply, String> {
        match (self.ok, self.error) {
            (_, Some(e)) => Err(e),
            (Some(r), None) => Ok(r),
            (None, None) => Err("response carries neither a reply nor an error".into()),
        }
    }
}

/// Why a request line was refused before reaching the daemon's logic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// Longer than [`MAX_REQUEST`].
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    /// Not UTF-8, not JSON, or not a known request of the right shape.
    #[error("bad request: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("protocol version {0} not supported (this daemon speaks {VERSION})")]
    Version(u32),
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, ProtoError> {
    if line.len() >= MAX_REQUEST {
        return Err(ProtoError::TooLong);
    }
    // Look at the version first, so that a newer client gets "version"
    // rather than a confusing shape error.
    #[derive(Deserialize)]
    struct VersionOnly {
        version: Option<u32>,
    }
    let v: VersionOnly =
        serde_json::from_slice(line).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    match v.version {
        Some(VERSION) => {}
        Some(other) => return Err(ProtoError::Version(other)),
        None => return Err(ProtoError::Malformed("missing field `version`".into())),
    }
    let env: RequestEnvelope =
        serde_json::from_slice(line).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    validate(&env.request)?;
    Ok(env.request)
}

/// Range checks serde cannot express on its own.
fn validate(req: &Request) -> Result<(), ProtoError> {
    let bad = |m: String| Err(ProtoError::Malformed(m));
    match req {
        Request::FdbAdd { mac, .. } if mac.is_multicast() || mac.0 == [0; 6] => {
            bad(format!("fdb add: {mac} is not a unicast MAC"))
        }
        Request::BdAdd {
            max_macs: Some(0), ..
        } => bad("bd add: max_macs must be at least 1".into()),
        Request::FdbAdd { port, vtep, .. } if port.is_some() == vtep.is_some() => {
            bad("fdb add: give exactly one of `port` and `vtep`".into())
        }
        Request::FdbAdd {
            vlan: Some(_),
            vtep: Some(_),
            ..
        } => bad("fdb add: `vlan` goes with `port`, not `vtep`".into()),
        // A flood list also takes a multicast group (docs/config.md).
        Request::FloodAdd { vtep, .. }
            if !crate::config::is_flood_group(vtep)
                && (vtep.is_unspecified() || vtep.is_multicast() || vtep.is_loopback()) =>
        {
            bad(format!(
                "{vtep} is not a unicast VTEP address or a usable multicast group"
            ))
        }
        Request::FdbAdd {
            vtep: Some(vtep), ..
        } if vtep.is_unspecified() || vtep.is_multicast() || vtep.is_loopback() => {
            bad(format!("{vtep} is not a unicast VTEP address"))
        }
        Request::PortAdd { name, .. } | Request::BdAdd { name, .. } if name.is_empty() => {
            bad("empty name".into())
        }
        Request::Trace { port, vtep, .. } if port.is_some() == vtep.is_some() => {
            bad("trace: give exactly one of `port` and `vtep`".into())
        }
        Request::Trace {
            vtep: Some(_),
            vni: None,
            ..
        } => bad("trace: a frame from a `vtep` needs its `vni`".into()),
        Request::Trace {
            port: Some(_),
            vni: Some(_),
            ..
        } => bad("trace: `vni` goes with `vtep`, not `port`".into()),
        Request::Trace {
            vtep: Some(vtep), ..
        } if vtep.is_unspecified() || vtep.is_multicast() || vtep.is_loopback() => {
            bad(format!("{vtep} is not a unicast VTEP address"))
        }
        Request::Trace {
            port: Some(name), ..
        } if name.is_empty() => bad("empty name".into()),
        Request::Trace { frame, .. } => match decode_hex(frame) {
            Err(e) => bad(format!("trace: frame: {e}")),
            Ok(b) if b.len() < 14 => bad(format!(
                "trace: frame of {} bytes is shorter than an Ethernet header (14)",
                b.len()
            )),
            Ok(b) if b.len() > MAX_TRACE_FRAME => bad(format!(
                "trace: frame of {} bytes is longer than {MAX_TRACE_FRAME}",
                b.len()
            )),
            Ok(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Serialises a request as one line, newline included.
pub fn encode_request(req: &Request) -> Vec<u8> {
    let env = RequestEnvelope {
        version: VERSION,
        request: req.clone(),
    };
    let mut out = serde_json::to_vec(&env).expect("requests always serialise");
    out.push(b'\n');
    out
}

/// Serialises a response as one line, newline included.
pub fn encode_response(resp: &ResponseEnvelope) -> Vec<u8> {
    let mut out = serde_json::to_vec(resp).expect("responses always serialise");
    out.push(b'\n');
    out
}
