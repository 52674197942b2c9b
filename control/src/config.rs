//! The network configuration file (TOML) and its validation.
//!
//! This is the schema `xvsd --config FILE` reads and `xvsctl config apply`
//! sends: the local VTEP, the ports and the bridge domains. [`Config::parse`]
//! returns either a configuration that is internally consistent (every
//! reference resolves, every value is in range, nothing is claimed twice) or
//! a [`ConfigError`] that names the offending item; it never returns a
//! half-checked config. [`Config::to_toml`] writes a file that parses back to
//! the same config, which is what `xvsctl config dump` prints.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;
/// Largest usable 802.1Q VLAN ID (4095 is reserved).
pub const VLAN_MAX: u16 = 4094;
/// IANA-assigned VXLAN UDP port (RFC 7348).
pub const DEFAULT_UDP_PORT: u16 = 4789;
/// Default TTL (IPv4) / hop limit (IPv6) of encapsulated frames.
pub const DEFAULT_TTL: u8 = 64;
/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// A whole xvs network configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node as a VXLAN tunnel endpoint.
    #[serde(default)]
    pub vtep: VtepConfig,
    /// Ports xvs switches on.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
    /// Bridge domains (L2 segments).
    #[serde(default, rename = "bridge_domain")]
    pub bridge_domains: Vec<BridgeDomainConfig>,
}

/// The local VTEP: underlay addresses and encapsulation parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VtepConfig {
    /// This node's underlay addresses (IPv4 and/or IPv6); VXLAN addressed to
    /// any of them is decapsulated, and the first of the matching family is
    /// the source address of encapsulated frames.
    #[serde(default)]
    pub local_ips: Vec<IpAddr>,
    /// UDP destination port of VXLAN (default 4789).
    #[serde(default = "default_udp_port")]
    pub udp_port: u16,
    /// TTL / hop limit of the outer IP header (default 64).
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Set the IPv4 don't-fragment bit on outer headers (default true).
    #[serde(default = "default_true")]
    pub df: bool,
}

impl Default for VtepConfig {
    fn default() -> Self {
        VtepConfig {
            local_ips: Vec::new(),
            udp_port: DEFAULT_UDP_PORT,
            ttl: DEFAULT_TTL,
            df: true,
        }
    }
}

fn default_udp_port() -> u16 {
    DEFAULT_UDP_PORT
}
fn default_ttl() -> u8 {
    DEFAULT_TTL
}
fn default_true() -> bool {
    true
}

/// What a port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Underlay: carries VXLAN to and from other VTEPs; everything else on
    /// it goes to the kernel.
    Uplink,
    /// Faces local VMs or namespaces: every frame is switched.
    Access,
}

/// One port: an existing interface and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Interface name (must exist when xvsd attaches to it).
    pub name: String,
    /// Uplink or access.
    pub role: Role,
}

/// One attachment of a bridge domain: an access port, untagged or one VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachConfig {
    /// Access port name.
    pub port: String,
    /// 802.1Q VLAN ID on that port; `None` is untagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// One bridge domain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeDomainConfig {
    /// Unique name.
    pub name: String,
    /// VXLAN network identifier; `None` for a purely local bridge domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// Remote VTEPs that receive head-end-replicated BUM traffic, and/or
    /// multicast groups ([`is_flood_group`]) that receive one copy each
    /// (the group's members take it from there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flood: Vec<IpAddr>,
    /// Local attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach: Vec<AttachConfig>,
    /// Most MACs learned in this bridge domain; `None` is the daemon default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_macs: Option<u32>,
    /// BUM storm control: most frames per second flooded in this bridge
    /// domain (broadcast, multicast and unknown unicast, from any side),
    /// node-wide; frames over it are dropped and counted (`drop_storm`).
    /// `None` is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm_pps: Option<u32>,
    /// Accept and learn from VXLAN of this bridge domain's VNI sent by any
    /// VTEP. Off (the default), only the VTEPs of `flood` are accepted;
    /// VXLAN from any other source is dropped and counted
    /// (`drop_unknown_vtep`), as RFC 7348's security considerations advise.
    #[serde(default, skip_serializing_if = "is_false")]
    pub learn_from_any_vtep: bool,
}

/// A TOML error as one line: where (line and column, from 1) and what.
/// The toml crate's own text quotes the source over several lines; the
/// control protocol and the logs want one.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let at = e.span().and_then(|s| text.get(..s.start)).map(|before| {
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    });
    ConfigError::Syntax(match at {
        Some((line, column)) => format!("line {line}, column {column}: {what}"),
        None => what,
    })
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a configuration was refused. Each variant names the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The text is not valid TOML or does not match the schema.
    #[error("config syntax: {0}")]
    Syntax(String),
    /// A port name is empty or longer than an interface name can be.
    #[error("port {0:?}: interface name must be 1..={IFNAME_MAX} bytes without '/' or whitespace")]
    BadPortName(String),
    /// Two ports share a name.
    #[error("port {0:?} is listed twice")]
    DuplicatePort(String),
    /// A bridge domain name is empty.
    #[error("bridge domain with an empty name")]
    EmptyBdName,
    /// Two bridge domains share a name.
    #[error("bridge domain {0:?} is listed twice")]
    DuplicateBd(String),
    /// A VNI is outside 1..=16777215.
    #[error("bridge domain {bd:?}: vni {vni} outside 1..={VNI_MAX}")]
    BadVni {
        /// Bridge domain name.
        bd: String,
        /// The value given.
        vni: u32,
    },
    /// Two bridge domains share a VNI.
    #[error("vni {vni} is used by bridge domains {first:?} and {second:?}")]
    DuplicateVni {
        /// The VNI.
        vni: u32,
        /// The first bridge domain using it.
        first: String,
        /// The second one.
        second: String,
    },
    /// An attachment names a port that is not configured.
    #[error("bridge domain {bd:?}: attachment to unknown port {port:?}")]
    UnknownPort {
        /// Bridge domain name.
        bd: String,
        /// The port named.
        port: String,
    },
    /// An attachment names an uplink port.
    #[error("bridge domain {bd:?}: port {port:?} is an uplink, only access ports can be attached")]
    AttachToUplink {
        /// Bridge domain name.
        bd: String,
        /// The port named.
        port: String,
    },
    /// A VLAN ID is outside 1..=4094.
    #[error("bridge domain {bd:?}: port {port:?} vlan {vlan} outside 1..={VLAN_MAX}")]
    BadVlan {
        /// Bridge domain name.
        bd: String,
        /// The port named.
        port: String,
        /// The value given.
        vlan: u16,
    },
    /// The same (port, VLAN) is attached twice.
    #[error("port {port:?} {} is attached to both {first:?} and {second:?}", vlan_text(*.vlan))]
    DuplicateAttachment {
        /// The port.
        port: String,
        /// The VLAN (`None` = untagged).
        vlan: Option<u16>,
        /// The first bridge domain claiming it.
        first: String,
        /// The second one.
        second: String,
    },
    /// A flood entry is neither a usable unicast VTEP address nor a usable
    /// multicast group.
    #[error(
        "bridge domain {bd:?}: flood address {addr} is neither a unicast remote VTEP nor a \
         usable multicast group"
    )]
    BadFloodAddress {
        /// Bridge domain name.
        bd: String,
        /// The address given.
        addr: IpAddr,
    },
    /// A flood entry is listed twice in one bridge domain.
    #[error("bridge domain {bd:?}: flood address {addr} is listed twice")]
    DuplicateFlood {
        /// Bridge domain name.
        bd: String,
        /// The address.
        addr: IpAddr,
    },
    /// A multicast flood group without `learn_from_any_vtep = true`: the
    /// group's members are not known in advance, so their VXLAN would be
    /// refused.
    #[error(
        "bridge domain {bd:?}: flood group {group} sends to VTEPs not listed here; their \
         VXLAN is only accepted with learn_from_any_vtep = true"
    )]
    GroupNeedsAnyVtep {
        /// Bridge domain name.
        bd: String,
        /// The group.
        group: IpAddr,
    },
    /// A flood list needs a local address of the same family to send from.
    #[error("bridge domain {bd:?}: flood address {addr} has no local VTEP address of its family")]
    NoLocalAddressForFamily {
        /// Bridge domain name.
        bd: String,
        /// The remote address.
        addr: IpAddr,
    },
    /// `max_macs = 0`.
    #[error("bridge domain {0:?}: max_macs must be at least 1")]
    ZeroMaxMacs(String),
    /// `storm_pps = 0` (leave it out for no limit).
    #[error("bridge domain {0:?}: storm_pps must be at least 1 (leave it out for no limit)")]
    ZeroStormPps(String),
    /// A local VTEP address is unspecified, multicast or listed twice.
    #[error("vtep: local address {0} is unspecified, multicast or duplicated")]
    BadLocalIp(IpAddr),
    /// `udp_port = 0`.
    #[error("vtep: udp_port must not be 0")]
    ZeroUdpPort,
    /// `ttl = 0`.
    #[error("vtep: ttl must be at least 1")]
    ZeroTtl,
}

fn vlan_text(vlan: Option<u16>) -> String {
    match vlan {
        Some(v) => format!("vlan {v}"),
        None => "untagged".to_string(),
    }
}

impl Config {
    /// Parses and validates a TOML configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| syntax_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the configuration as TOML that [`Config::parse`] reads back.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serialises")
    }

    /// Looks a port up by name.
    pub fn port(&self, name: &str) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// Looks a bridge domain up by name.
    pub fn bridge_domain(&self, name: &str) -> Option<&BridgeDomainConfig> {
        self.bridge_domains.iter().find(|b| b.name == name)
    }

    /// Checks every cross-reference and range; see [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_vtep()?;
        let mut ports = HashSet::new();
        for p in &self.ports {
            if !valid_ifname(&p.name) {
                return Err(ConfigError::BadPortName(p.name.clone()));
            }
            if !ports.insert(p.name.as_str()) {
                return Err(ConfigError::DuplicatePort(p.name.clone()));
            }
        }
        let mut bd_names = HashSet::new();
        let mut vnis: Vec<(u32, &str)> = Vec::new();
        let mut attachments: Vec<(&AttachConfig, &str)> = Vec::new();
        for bd in &self.bridge_domains {
            if bd.name.is_empty() {
                return Err(ConfigError::EmptyBdName);
            }
            if !bd_names.insert(bd.name.as_str()) {
                return Err(ConfigError::DuplicateBd(bd.name.clone()));
            }
            if let Some(vni) = bd.vni {
                if vni == 0 || vni > VNI_MAX {
                    return Err(ConfigError::BadVni {
                        bd: bd.name.clone(),
                        vni,
                    });
                }
                if let Some((_, first)) = vnis.iter().find(|(v, _)| *v == vni) {
                    return Err(ConfigError::DuplicateVni {
                        vni,
                        first: first.to_string(),
                        second: bd.name.clone(),
                    });
                }
                vnis.push((vni, &bd.name));
            }
            if bd.max_macs == Some(0) {
                return Err(ConfigError::ZeroMaxMacs(bd.name.clone()));
            }
            if bd.storm_pps == Some(0) {
                return Err(ConfigError::ZeroStormPps(bd.name.clone()));
            }
            self.validate_flood(bd)?;
            for a in &bd.attach {
                self.validate_attachment(bd, a)?;
                if let Some((_, first)) = attachments.iter().find(|(x, _)| *x == a) {
                    return Err(ConfigError::DuplicateAttachment {
                        port: a.port.clone(),
                        vlan: a.vlan,
                        first: first.to_string(),
                        second: bd.name.clone(),
                    });
                }
                attachments.push((a, &bd.name));
            }
        }
        Ok(())
    }

    fn validate_vtep(&self) -> Result<(), ConfigError> {
        let v = &self.vtep;
        if v.udp_port == 0 {
            return Err(ConfigError::ZeroUdpPort);
        }
        if v.ttl == 0 {
            return Err(ConfigError::ZeroTtl);
        }
        for (i, ip) in v.local_ips.iter().enumerate() {
            if ip.is_unspecified() || ip.is_multicast() || v.local_ips[..i].contains(ip) {
                return Err(ConfigError::BadLocalIp(*ip));
            }
        }
        Ok(())
    }

    fn validate_flood(&self, bd: &BridgeDomainConfig) -> Result<(), ConfigError> {
        for (i, addr) in bd.flood.iter().enumerate() {
            if addr.is_multicast() {
                if !is_flood_group(addr) {
                    return Err(ConfigError::BadFloodAddress {
                        bd: bd.name.clone(),
                        addr: *addr,
                    });
                }
                if !bd.learn_from_any_vtep {
                    return Err(ConfigError::GroupNeedsAnyVtep {
                        bd: bd.name.clone(),
                        group: *addr,
                    });
                }
            }
            let bad = addr.is_unspecified()
                || addr.is_loopback()
                || matches!(addr, IpAddr::V4(a) if a.is_broadcast())
                || self.vtep.local_ips.contains(addr);
            if bad {
                return Err(ConfigError::BadFloodAddress {
                    bd: bd.name.clone(),
                    addr: *addr,
                });
            }
            if bd.flood[..i].contains(addr) {
                return Err(ConfigError::DuplicateFlood {
                    bd: bd.name.clone(),
                    addr: *addr,
                });
            }
            if !self
                .vtep
                .local_ips
                .iter()
                .any(|l| l.is_ipv4() == addr.is_ipv4())
            {
                return Err(ConfigError::NoLocalAddressForFamily {
                    bd: bd.name.clone(),
                    addr: *addr,
                });
            }
        }
        Ok(())
    }

    fn validate_attachment(
        &self,
        bd: &BridgeDomainConfig,
        a: &AttachConfig,
    ) -> Result<(), ConfigError> {
        match self.port(&a.port) {
            None => {
                return Err(ConfigError::UnknownPort {
                    bd: bd.name.clone(),
                    port: a.port.clone(),
                })
            }
            Some(p) if p.role != Role::Access => {
                return Err(ConfigError::AttachToUplink {
                    bd: bd.name.clone(),
                    port: a.port.clone(),
                })
            }
            Some(_) => {}
        }
        match a.vlan {
            Some(v) if v == 0 || v > VLAN_MAX => Err(ConfigError::BadVlan {
                bd: bd.name.clone(),
                port: a.port.clone(),
                vlan: v,
            }),
            _ => Ok(()),
        }
    }
}

/// Whether `addr` is a multicast group a bridge domain may flood to:
/// IPv4 224.0.0.0/4 outside the link-local control block 224.0.0.0/24,
/// IPv6 ff00::/8 of link-local or wider scope (2 … 14).
pub fn is_flood_group(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_multicast() && a.octets()[..3] != [224, 0, 0],
        IpAddr::V6(a) => a.is_multicast() && (2..=14).contains(&(a.octets()[1] & 0x0f)),
    }
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}
