//! The running switch as xvsd numbers it: a validated [`Config`] turned into
//! port indices, bridge-domain ids and the engine's types.
//!
//! At start ([`Model::from_config`]) port `i` is the `i`-th `[[port]]` of the
//! file and bridge domain `i` (0-based) is [`BdId`] `i + 1` (0 is never
//! used, so a zeroed metadata field never names a real domain). A port's
//! number is the classifier's `port_index`, the engine's [`PortId`] and the
//! index of the port's socket in every worker's I/O.
//!
//! Live changes ([`Model::evolve`]) keep those numbers stable: a port or
//! bridge domain that is still there (same name) keeps its id, a new one
//! takes an id that neither the old nor the new model uses (ports: the
//! lowest such; bridge domains: counting up from the highest ever given,
//! so a deleted domain's id is not reused soon and stale FDB learns of it
//! cannot leak into a new domain).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvs_control::config::{Config, Role};
use xvs_control::proto;
use xvs_ebpf::Meta;

use crate::bridge::{BridgeDomain, BridgeDomains};
use crate::decide::{FrameMeta, Ingress};
use crate::engine::EncapConfig;
use crate::fdb::{self, EntryKind};
use crate::types::{Attachment, BdId, Location, MacAddr, PortId, Vlan, Vni};

/// Most ports one xvsd switches (the classifier's `MAX_PORTS`).
pub const MAX_PORTS: usize = xvs_ebpf::MAX_PORTS as usize;

/// Why a (syntactically valid) configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// More ports than the classifier has slots for.
    #[error("{0} ports configured, at most {MAX_PORTS} are supported")]
    TooManyPorts(usize),
    /// More bridge domains than ids.
    #[error("{0} bridge domains configured, at most 65534 are supported")]
    TooManyBridgeDomains(usize),
    /// More than one uplink: encapsulated frames have one outer source MAC.
    #[error("uplinks {0:?}: one uplink port is supported (bond the NICs for more)")]
    MultipleUplinks(Vec<String>),
    /// The configuration refers to something it does not define (the
    /// control crate's validation normally catches this first).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Interface name.
    pub name: String,
    /// Uplink or access.
    pub role: Role,
    /// xvs's number for it (its position in the file).
    pub id: PortId,
}

/// One bridge domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bd {
    /// Its name in the configuration.
    pub name: String,
    /// Its id (FDB key prefix, XDP metadata).
    pub id: BdId,
    /// Its VNI, if it extends over VXLAN.
    pub vni: Option<Vni>,
    /// Local attachments.
    pub attachments: Vec<Attachment>,
    /// Remote VTEPs for head-end replication.
    pub flood: Vec<IpAddr>,
    /// Cap on learned MACs.
    pub max_macs: Option<u32>,
    /// Flood limit in frames per second, node-wide (storm control).
    pub storm_pps: Option<u32>,
    /// Accept VXLAN from any VTEP, not only the flood list's.
    pub learn_from_any_vtep: bool,
}

/// The running configuration, numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    config: Config,
    ports: Vec<Port>,
    bds: Vec<Bd>,
    /// The highest bridge-domain id ever given by this model's lineage.
    bd_high: u16,
}

impl Model {
    /// Numbers a configuration. `config` is validated again (cheap) so a
    /// model never holds a dangling reference.
    pub fn from_config(config: &Config) -> Result<Model, ModelError> {
        Model::build(config, None)
    }

    /// The model of `config` as a live change of `self`: ports and bridge
    /// domains that keep their name keep their id; new ones take fresh ids
    /// (see the module documentation).
    pub fn evolve(&self, config: &Config) -> Result<Model, ModelError> {
        Model::build(config, Some(self))
    }

    fn build(config: &Config, prev: Option<&Model>) -> Result<Model, ModelError> {
        config
            .validate()
            .map_err(|e| ModelError::Invalid(e.to_string()))?;
        if config.ports.len() > MAX_PORTS {
            return Err(ModelError::TooManyPorts(config.ports.len()));
        }
        if config.bridge_domains.len() >= usize::from(u16::MAX) {
            return Err(ModelError::TooManyBridgeDomains(
                config.bridge_domains.len(),
            ));
        }
        let uplinks: Vec<String> = config
            .ports
            .iter()
            .filter(|p| p.role == Role::Uplink)
            .map(|p| p.name.clone())
            .collect();
        if uplinks.len() > 1 {
            return Err(ModelError::MultipleUplinks(uplinks));
        }
        let port_ids = assign_port_ids(config, prev)?;
        let (bd_ids, bd_high) = assign_bd_ids(config, prev)?;
        let ports: Vec<Port> = config
            .ports
            .iter()
            .zip(port_ids)
            .map(|(p, id)| Port {
                name: p.name.clone(),
                role: p.role,
                id,
            })
            .collect();
        let mut bds = Vec::with_capacity(config.bridge_domains.len());
        for (b, id) in config.bridge_domains.iter().zip(bd_ids) {
            let mut attachments = Vec::with_capacity(b.attach.len());
            for a in &b.attach {
                let port = ports
                    .iter()
                    .find(|p| p.name == a.port)
                    .ok_or_else(|| ModelError::Invalid(format!("unknown port {:?}", a.port)))?;
                let vlan = match a.vlan {
                    None => None,
                    Some(v) => Some(
                        Vlan::new(v)
                            .ok_or_else(|| ModelError::Invalid(format!("vlan {v} out of range")))?,
                    ),
                };
                attachments.push(Attachment {
                    port: port.id,
                    vlan,
                });
            }
            let vni = match b.vni {
                None => None,
                Some(v) => {
                    Some(Vni::new(v).ok_or_else(|| ModelError::Invalid(format!("vni {v}")))?)
                }
            };
            bds.push(Bd {
                name: b.name.clone(),
                id,
                vni,
                attachments,
                flood: b.flood.clone(),
                max_macs: b.max_macs,
                storm_pps: b.storm_pps,
                learn_from_any_vtep: b.learn_from_any_vtep,
            });
        }
        Ok(Model {
            config: config.clone(),
            ports,
            bds,
            bd_high,
        })
    }

    /// The configuration this model was built from (what `config dump`
    /// prints).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every port, by index.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// Every bridge domain, in file order.
    pub fn bridge_domains(&self) -> &[Bd] {
        &self.bds
    }

    /// The port with index `id`.
    pub fn port(&self, id: PortId) -> Option<&Port> {
        self.ports.iter().find(|p| p.id == id)
    }

    /// The port named `name`.
    pub fn port_by_name(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The bridge domain `id`.
    pub fn bd(&self, id: BdId) -> Option<&Bd> {
        self.bds.iter().find(|b| b.id == id)
    }

    /// The bridge domain named `name`.
    pub fn bd_by_name(&self, name: &str) -> Option<&Bd> {
        self.bds.iter().find(|b| b.name == name)
    }

    /// The uplink port, if there is one.
    pub fn uplink(&self) -> Option<&Port> {
        self.ports.iter().find(|p| p.role == Role::Uplink)
    }

    /// The first local IPv4 VTEP address (outer source towards IPv4 VTEPs).
    pub fn local_v4(&self) -> Option<Ipv4Addr> {
        self.config.vtep.local_ips.iter().find_map(|ip| match ip {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
    }

    /// The first local IPv6 VTEP address (outer source towards IPv6 VTEPs).
    pub fn local_v6(&self) -> Option<Ipv6Addr> {
        self.config.vtep.local_ips.iter().find_map(|ip| match ip {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        })
    }

    /// The engine's view of the bridge domains.
    pub fn engine_bridge_domains(&self) -> BridgeDomains {
        let mut out = BridgeDomains::new();
        for b in &self.bds {
            out.insert(Model::engine_bd(b));
        }
        out
    }

    /// The engine's view of one bridge domain.
    pub fn engine_bd(b: &Bd) -> BridgeDomain {
        let mut bd = BridgeDomain::new(b.id, b.vni);
        bd.attachments = b.attachments.clone();
        bd.flood = b.flood.clone();
        bd.max_macs = b.max_macs;
        bd.storm_pps = b.storm_pps;
        bd.learn_from_any_vtep = b.learn_from_any_vtep;
        bd
    }

    /// The encapsulation settings, given the uplink's MAC and IP MTU.
    pub fn encap_config(&self, src_mac: MacAddr, mtu: usize) -> EncapConfig {
        EncapConfig {
            src_mac,
            local_v4: self.local_v4(),
            local_v6: self.local_v6(),
            dst_port: self.config.vtep.udp_port,
            ttl: self.config.vtep.ttl,
            dont_frag: self.config.vtep.df,
            mtu,
        }
    }

    /// Every remote VTEP of every flood list, each once, sorted.
    pub fn flood_vteps(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.bds.iter().flat_map(|b| b.flood.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// An FDB entry as the control protocol reports it (names instead of
    /// numbers). `None` for an entry of a bridge domain this model does not
    /// know (cannot happen while the model is the running one).
    pub fn fdb_entry(&self, e: &fdb::FdbEntry) -> Option<proto::FdbEntry> {
        let bd = self.bd(e.bd)?;
        let (port, vlan, vtep) = match e.loc {
            Location::Local(a) => (
                Some(self.port(a.port)?.name.clone()),
                a.vlan.map(|v| v.id()),
                None,
            ),
            Location::Vtep(ip) => (None, None, Some(ip)),
        };
        let (kind, age_secs) = match e.kind {
            EntryKind::Learned => (proto::FdbKind::Learned, Some(e.idle_ms / 1000)),
            EntryKind::Static => (proto::FdbKind::Static, None),
        };
        Some(proto::FdbEntry {
            bd: bd.name.clone(),
            mac: proto::Mac(e.mac.octets()),
            kind,
            port,
            vlan,
            vtep,
            age_secs,
        })
    }

    /// Where a static `fdb add` puts a MAC: a local (port, VLAN) attachment
    /// of `bd`, or a remote VTEP. Errors are one line for the client.
    pub fn static_location(
        &self,
        bd: &Bd,
        port: Option<&str>,
        vlan: Option<u16>,
        vtep: Option<IpAddr>,
    ) -> Result<Location, String> {
        match (port, vtep) {
            (Some(name), None) => {
                let p = self
                    .port_by_name(name)
                    .ok_or_else(|| format!("no port {name:?}"))?;
                let vlan = match vlan {
                    None => None,
                    Some(v) => Some(Vlan::new(v).ok_or_else(|| format!("vlan {v} out of range"))?),
                };
                let a = Attachment { port: p.id, vlan };
                if !bd.attachments.contains(&a) {
                    return Err(format!(
                        "{name}{} is not attached to bridge domain {:?}",
                        vlan.map_or(String::new(), |v| format!(" vlan {}", v.id())),
                        bd.name
                    ));
                }
                Ok(Location::Local(a))
            }
            (None, Some(ip)) => {
                if bd.vni.is_none() {
                    return Err(format!("bridge domain {:?} has no VNI", bd.name));
                }
                if vlan.is_some() {
                    return Err("vlan applies to a port, not a VTEP".into());
                }
                Ok(Location::Vtep(ip))
            }
            _ => Err("give exactly one of a port and a VTEP".into()),
        }
    }
}

/// Port ids for `config`'s ports, in file order: kept by name from `prev`,
/// else positional (no `prev`), else the lowest id neither model uses.
fn assign_port_ids(config: &Config, prev: Option<&Model>) -> Result<Vec<PortId>, ModelError> {
    let Some(prev) = prev else {
        return Ok((0..config.ports.len()).map(|i| PortId(i as u16)).collect());
    };
    let kept: Vec<Option<PortId>> = config
        .ports
        .iter()
        .map(|p| prev.port_by_name(&p.name).map(|o| o.id))
        .collect();
    let mut used: Vec<bool> = vec![false; MAX_PORTS];
    for id in prev
        .ports
        .iter()
        .map(|p| p.id)
        .chain(kept.iter().flatten().copied())
    {
        if let Some(u) = used.get_mut(usize::from(id.0)) {
            *u = true;
        }
    }
    let mut out = Vec::with_capacity(kept.len());
    for k in kept {
        let id = match k {
            Some(id) => id,
            None => {
                let free = used
                    .iter()
                    .position(|u| !u)
                    .ok_or(ModelError::TooManyPorts(
                        config.ports.len() + prev.ports.len(),
                    ))?;
                used[free] = true;
                PortId(free as u16)
            }
        };
        out.push(id);
    }
    Ok(out)
}

/// Bridge-domain ids for `config`'s domains, in file order, and the new
/// highest id given: kept by name from `prev`, else `1..` (no `prev`), else
/// counting up from the highest id ever given (wrapping to 1), skipping ids
/// either model uses.
fn assign_bd_ids(config: &Config, prev: Option<&Model>) -> Result<(Vec<BdId>, u16), ModelError> {
    const TOP: u16 = u16::MAX - 1;
    let Some(prev) = prev else {
        let ids: Vec<BdId> = (1..=config.bridge_domains.len())
            .map(|i| BdId(i as u16))
            .collect();
        let high = ids.last().map_or(0, |b| b.0);
        return Ok((ids, high));
    };
    let kept: Vec<Option<BdId>> = config
        .bridge_domains
        .iter()
        .map(|b| prev.bd_by_name(&b.name).map(|o| o.id))
        .collect();
    let mut used: std::collections::BTreeSet<u16> = prev.bds.iter().map(|b| b.id.0).collect();
    used.extend(kept.iter().flatten().map(|b| b.0));
    let mut high = prev.bd_high;
    let mut out = Vec::with_capacity(kept.len());
    for k in kept {
        let id = match k {
            Some(id) => id,
            None => {
                let mut cand = high;
                let mut tries = 0u32;
                loop {
                    cand = if cand >= TOP { 1 } else { cand + 1 };
                    tries += 1;
                    if !used.contains(&cand) {
                        break;
                    }
                    if tries > u32::from(TOP) {
                        return Err(ModelError::TooManyBridgeDomains(
                            config.bridge_domains.len() + prev.bds.len(),
                        ));
                    }
                }
                used.insert(cand);
                high = cand;
                BdId(cand)
            }
        };
        out.push(id);
    }
    Ok((out, high))
}

/// The engine's metadata for a frame from the classifier's [`Meta`]:
/// decapsulated frames come from their outer source VTEP, access frames
/// from (port, popped VLAN; 0 = untagged). `None` when the metadata names
/// no possible bridge domain or port.
pub fn frame_meta(meta: &Meta) -> Option<FrameMeta> {
    let bd = BdId(u16::try_from(meta.bd).ok()?);
    let ingress = match meta.src_vtep_ip() {
        Some(ip) => Ingress::Vtep(ip),
        None => Ingress::Local(Attachment {
            port: PortId(u16::try_from(meta.port_index).ok()?),
            vlan: Vlan::new(meta.vid),
        }),
    };
    Some(FrameMeta { bd, ingress })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"
[vtep]
local_ips = ["192.0.2.10", "2001:db8::10"]

[[port]]
name = "uplink"
role = "uplink"

[[port]]
name = "nn-vm1"
role = "access"

[[port]]
name = "nn-vm3"
role = "access"

[[bridge_domain]]
name = "vni100"
vni = 100
flood = ["192.0.2.1", "2001:db8::2"]
attach = [{ port = "nn-vm1" }, { port = "nn-vm3", vlan = 10 }]
max_macs = 100

[[bridge_domain]]
name = "other"
vni = 200
flood = ["192.0.2.1"]
"#;

    fn model() -> Model {
        Model::from_config(&Config::parse(LAB).unwrap()).unwrap()
    }

    #[test]
    fn numbers_ports_and_bridge_domains_in_file_order() {
        let m = model();
        assert_eq!(m.ports().len(), 3);
        assert_eq!(m.port_by_name("nn-vm3").unwrap().id, PortId(2));
        assert_eq!(m.uplink().unwrap().name, "uplink");
        let bd = m.bd_by_name("vni100").unwrap();
        assert_eq!(bd.id, BdId(1));
        assert_eq!(m.bd(BdId(1)).unwrap().name, "vni100");
        assert!(m.bd(BdId(0)).is_none());
        assert_eq!(
            bd.attachments,
            vec![
                Attachment::untagged(PortId(1)),
                Attachment::tagged(PortId(2), Vlan::new(10).unwrap())
            ]
        );
        assert_eq!(
            m.flood_vteps(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::2".parse().unwrap()
            ]
        );
        let bds = m.engine_bridge_domains();
        assert_eq!(bds.get(BdId(1)).unwrap().max_macs, Some(100));
        let e = m.encap_config(MacAddr([2, 0, 0, 0, 0, 1]), 1500);
        assert_eq!(e.local_v4, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(e.local_v6, Some("2001:db8::10".parse().unwrap()));
        assert_eq!((e.dst_port, e.ttl, e.dont_frag), (4789, 64, true));
    }

    #[test]
    fn refuses_two_uplinks() {
        let text = "[[port]]\nname = \"a\"\nrole = \"uplink\"\n[[port]]\nname = \"b\"\nrole = \"uplink\"\n";
        let err = Model::from_config(&Config::parse(text).unwrap()).unwrap_err();
        assert_eq!(
            err,
            ModelError::MultipleUplinks(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn fdb_entries_name_bd_port_vlan_and_vtep() {
        let m = model();
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let local = fdb::FdbEntry {
            bd: BdId(1),
            mac,
            loc: Location::Local(Attachment::tagged(PortId(2), Vlan::new(10).unwrap())),
            kind: EntryKind::Learned,
            idle_ms: 2500,
            held: false,
            moves: 0,
        };
        let e = m.fdb_entry(&local).unwrap();
        assert_eq!(e.bd, "vni100");
        assert_eq!(e.mac.to_string(), "02:00:00:00:00:09");
        assert_eq!(e.kind, proto::FdbKind::Learned);
        assert_eq!(
            (e.port.as_deref(), e.vlan, e.vtep),
            (Some("nn-vm3"), Some(10), None)
        );
        assert_eq!(e.age_secs, Some(2));
        let remote = fdb::FdbEntry {
            loc: Location::Vtep("2001:db8::2".parse().unwrap()),
            kind: EntryKind::Static,
            ..local
        };
        let e = m.fdb_entry(&remote).unwrap();
        assert_eq!(
            (e.port, e.vtep),
            (None, Some("2001:db8::2".parse().unwrap()))
        );
        assert_eq!((e.kind, e.age_secs), (proto::FdbKind::Static, None));
        assert!(m
            .fdb_entry(&fdb::FdbEntry {
                bd: BdId(7),
                ..local
            })
            .is_none());
    }

    #[test]
    fn static_locations_must_be_attachments_or_vteps() {
        let m = model();
        let bd = m.bd_by_name("vni100").unwrap();
        assert_eq!(
            m.static_location(bd, Some("nn-vm3"), Some(10), None),
            Ok(Location::Local(Attachment::tagged(
                PortId(2),
                Vlan::new(10).unwrap()
            )))
        );
        assert!(m.static_location(bd, Some("nn-vm3"), None, None).is_err());
        assert!(m.static_location(bd, Some("nope"), None, None).is_err());
        assert!(m.static_location(bd, None, None, None).is_err());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            m.static_location(bd, None, None, Some(ip)),
            Ok(Location::Vtep(ip))
        );
    }

    #[test]
    fn metadata_to_ingress() {
        let mut meta = Meta {
            bd: 1,
            port_index: 2,
            vid: 10,
            flags: xvs_ebpf::META_F_TAGGED,
            ..Meta::default()
        };
        assert_eq!(
            frame_meta(&meta),
            Some(FrameMeta {
                bd: BdId(1),
                ingress: Ingress::Local(Attachment::tagged(PortId(2), Vlan::new(10).unwrap()))
            })
        );
        meta.vid = 0;
        meta.flags = 0;
        assert_eq!(
            frame_meta(&meta).unwrap().ingress,
            Ingress::Local(Attachment::untagged(PortId(2)))
        );
        let vtep: Ipv4Addr = "192.0.2.1".parse().unwrap();
        meta.src_vtep = vtep.to_ipv6_mapped().octets();
        meta.flags = xvs_ebpf::META_F_VXLAN;
        meta.port_index = 0;
        assert_eq!(
            frame_meta(&meta).unwrap().ingress,
            Ingress::Vtep(IpAddr::V4(vtep))
        );
        meta.bd = 1 << 20;
        assert_eq!(frame_meta(&meta), None);
    }
}
