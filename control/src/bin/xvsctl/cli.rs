//! Command line → protocol request.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xvs_control::config::Role;
use xvs_control::proto::{Mac, Request, VlanId, Vni};
use xvs_control::server::DEFAULT_SOCKET;

/// Control a running xvsd: ports, bridge domains, VXLAN flood lists, the
/// FDB, counters and the whole configuration.
#[derive(Debug, Parser)]
#[command(name = "xvsctl", version)]
pub struct Args {
    /// xvsd's control socket.
    #[arg(long, global = true, default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print read commands' output as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ports, bridge domains and daemon state.
    Show,
    /// Counters per port, worker, bridge domain and drop reason.
    Stats,
    /// The running configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Add or remove ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Add or remove bridge domains.
    #[command(subcommand)]
    Bd(BdCmd),
    /// Attach an access port (optionally one VLAN of it) to a bridge domain.
    Attach(AttachArgs),
    /// Detach an access port (VLAN) from a bridge domain.
    Detach(AttachArgs),
    /// Remote VTEPs that receive a bridge domain's flooded frames.
    #[command(subcommand)]
    Flood(FloodCmd),
    /// The MAC forwarding database.
    #[command(subcommand)]
    Fdb(FdbCmd),
    /// Explain what xvsd would do with a frame, without sending it (like
    /// `ovs-appctl ofproto/trace`).
    Trace(Box<crate::trace::TraceArgs>),
}

/// `config` verbs.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the running configuration as a file `config apply` accepts.
    Dump,
    /// Replace the running configuration with FILE, atomically.
    Apply {
        /// A TOML configuration file.
        file: PathBuf,
    },
}

/// `port` verbs.
#[derive(Debug, Subcommand)]
pub enum PortCmd {
    /// Start switching on an interface.
    Add {
        /// Interface name.
        name: String,
        /// `uplink` (VXLAN underlay) or `access` (VMs).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Stop switching on an interface.
    Del {
        /// Interface name.
        name: String,
    },
}

/// `bd` verbs.
#[derive(Debug, Subcommand)]
pub enum BdCmd {
    /// Create a bridge domain.
    Add {
        /// Name.
        name: String,
        /// VXLAN network identifier (1…16777215).
        #[arg(long)]
        vni: Option<u32>,
        /// Cap on learned MACs.
        #[arg(long)]
        max_macs: Option<u32>,
    },
    /// Delete a bridge domain.
    Del {
        /// Name.
        name: String,
    },
}

/// Arguments of `attach` / `detach`.
#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Bridge domain.
    pub bd: String,
    /// Access port.
    pub port: String,
    /// 802.1Q VLAN ID (1…4094); omit for untagged.
    #[arg(long)]
    pub vlan: Option<u16>,
}

/// `flood` verbs.
#[derive(Debug, Subcommand)]
pub enum FloodCmd {
    /// Add a remote VTEP to the flood list.
    Add {
        /// Bridge domain.
        bd: String,
        /// Remote VTEP address.
        vtep: IpAddr,
    },
    /// Remove a remote VTEP from the flood list.
    Del {
        /// Bridge domain.
        bd: String,
        /// Remote VTEP address.
        vtep: IpAddr,
    },
}

/// `fdb` verbs.
#[derive(Debug, Subcommand)]
pub enum FdbCmd {
    /// List entries (all bridge domains, or one).
    Show {
        /// Bridge domain.
        bd: Option<String>,
    },
    /// Add a static entry: `--port P [--vlan V]` or `--vtep IP`.
    Add {
        /// Bridge domain.
        bd: String,
        /// Unicast MAC address.
        mac: String,
        /// Local access port.
        #[arg(long, conflicts_with = "vtep", required_unless_present = "vtep")]
        port: Option<String>,
        /// VLAN on that port.
        #[arg(long, requires = "port")]
        vlan: Option<u16>,
        /// Remote VTEP address.
        #[arg(long)]
        vtep: Option<IpAddr>,
    },
    /// Delete an entry.
    Del {
        /// Bridge domain.
        bd: String,
        /// MAC address.
        mac: String,
    },
    /// Forget learned entries (all bridge domains, or one).
    Flush {
        /// Bridge domain.
        bd: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "uplink" => Ok(Role::Uplink),
        "access" => Ok(Role::Access),
        _ => Err(format!("{s:?}: role is `uplink` or `access`")),
    }
}

pub fn vlan(v: Option<u16>) -> anyhow::Result<Option<VlanId>> {
    match v {
        Some(v) if v == 0 || v > xvs_control::config::VLAN_MAX => {
            anyhow::bail!("vlan {v} outside 1..=4094")
        }
        v => Ok(v.map(VlanId)),
    }
}

fn mac(s: &str) -> anyhow::Result<Mac> {
    Ok(s.parse()?)
}

impl Command {
    /// A short name for error context.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Show => "show",
            Command::Stats => "stats",
            Command::Config(_) => "config",
            Command::Port(_) => "port",
            Command::Bd(_) => "bd",
            Command::Attach(_) => "attach",
            Command::Detach(_) => "detach",
            Command::Flood(_) => "flood",
            Command::Fdb(_) => "fdb",
            Command::Trace(_) => "trace",
        }
    }

    /// The protocol request this command sends. Values are range-checked
    /// here too, so obvious mistakes never leave the machine's shell.
    pub fn to_request(&self) -> anyhow::Result<Request> {
        Ok(match self {
            Command::Show => Request::Show {},
            Command::Stats => Request::Stats {},
            Command::Config(ConfigCmd::Dump) => Request::ConfigDump {},
            Command::Config(ConfigCmd::Apply { file }) => Request::ConfigApply {
                toml: std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?,
            },
            Command::Port(PortCmd::Add { name, role }) => Request::PortAdd {
                name: name.clone(),
                role: *role,
            },
            Command::Port(PortCmd::Del { name }) => Request::PortDel { name: name.clone() },
            Command::Bd(BdCmd::Add {
                name,
                vni,
                max_macs,
            }) => Request::BdAdd {
                name: name.clone(),
                vni: match vni {
                    Some(v) if *v == 0 || *v > xvs_control::config::VNI_MAX => {
                        anyhow::bail!("vni {v} outside 1..=16777215")
                    }
                    v => v.map(Vni),
                },
                max_macs: *max_macs,
            },
            Command::Bd(BdCmd::Del { name }) => Request::BdDel { name: name.clone() },
            Command::Attach(a) => Request::Attach {
                bd: a.bd.clone(),
                port: a.port.clone(),
                vlan: vlan(a.vlan)?,
            },
            Command::Detach(a) => Request::Detach {
                bd: a.bd.clone(),
                port: a.port.clone(),
                vlan: vlan(a.vlan)?,
            },
            Command::Flood(FloodCmd::Add { bd, vtep }) => Request::FloodAdd {
                bd: bd.clone(),
                vtep: *vtep,
            },
            Command::Flood(FloodCmd::Del { bd, vtep }) => Request::FloodDel {
                bd: bd.clone(),
                vtep: *vtep,
            },
            Command::Fdb(FdbCmd::Show { bd }) => Request::FdbShow { bd: bd.clone() },
            Command::Fdb(FdbCmd::Add {
                bd,
                mac: m,
                port,
                vlan: v,
                vtep,
            }) => Request::FdbAdd {
                bd: bd.clone(),
                mac: mac(m)?,
                port: port.clone(),
                vlan: vlan(*v)?,
                vtep: *vtep,
            },
            Command::Fdb(FdbCmd::Del { bd, mac: m }) => Request::FdbDel {
                bd: bd.clone(),
                mac: mac(m)?,
            },
            Command::Fdb(FdbCmd::Flush { bd }) => Request::FdbFlush { bd: bd.clone() },
            Command::Trace(t) => t.to_request()?,
        })
    }
}
