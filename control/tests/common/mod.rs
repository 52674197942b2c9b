//! A control server over an in-memory configuration and FDB, for tests of
//! the protocol, the server and xvsctl (the daemon's own handler is tested
//! with the daemon).

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xvs_control::client::Client;
use xvs_control::config::Config;
use xvs_control::proto::{
    self, Counter, FdbEntry, FdbKind, Mac, Reply, Request, TraceEgress, TraceReport, TraceStep,
};
use xvs_control::server::{Handler, Server, ServerConfig};

/// The shipped example configuration.
pub const EXAMPLE: &str = include_str!("../../../docs/xvsd.example.toml");

/// Holds a configuration and static FDB entries; every change is checked
/// against the configuration first and refused whole.
pub struct Store(pub Mutex<(Config, Vec<FdbEntry>)>);

impl Store {
    /// A store holding `config` and no FDB entries.
    pub fn new(config: Config) -> Store {
        Store(Mutex::new((config, Vec::new())))
    }
}

impl Handler for Store {
    fn handle(&self, req: Request) -> Result<Reply, String> {
        let mut guard = self.0.lock().unwrap();
        let (cfg, fdb) = &mut *guard;
        let known_bd = |cfg: &Config, bd: &str| {
            cfg.bridge_domain(bd)
                .map(|_| ())
                .ok_or_else(|| format!("no bridge domain {bd:?}"))
        };
        match req {
            Request::ConfigDump {} => Ok(Reply::Config(cfg.to_toml())),
            Request::ConfigApply { toml } => {
                *cfg = Config::parse(&toml).map_err(|e| e.to_string())?;
                Ok(Reply::Done)
            }
            Request::Show {} => Ok(Reply::Show(serde_json::json!({
                "ports": cfg.ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                "bridge_domains": cfg.bridge_domains.len(),
            }))),
            Request::Stats {} => Ok(Reply::Stats(vec![Counter {
                scope: "fdb".into(),
                instance: String::new(),
                name: "entries".into(),
                value: fdb.len() as u64,
            }])),
            // The store only refuses these (as xvsd does); it does not add.
            Request::BdAdd { name, .. } if cfg.bridge_domain(&name).is_some() => {
                Err(format!("bridge domain {name:?} already exists"))
            }
            Request::Attach { bd, port, .. } => {
                known_bd(cfg, &bd)?;
                cfg.port(&port).ok_or_else(|| {
                    format!("bridge domain {bd:?}: attachment to unknown port {port:?}")
                })?;
                Err("not supported by this store: attach".into())
            }
            Request::BdDel { name } => {
                known_bd(cfg, &name)?;
                cfg.bridge_domains.retain(|b| b.name != name);
                Ok(Reply::Done)
            }
            Request::FdbAdd {
                bd,
                mac,
                port,
                vlan,
                vtep,
            } => {
                known_bd(cfg, &bd)?;
                if let Some(p) = &port {
                    cfg.port(p).ok_or_else(|| format!("no port {p:?}"))?;
                }
                fdb.retain(|e| !(e.bd == bd && e.mac == mac));
                fdb.push(FdbEntry {
                    bd,
                    mac,
                    kind: FdbKind::Static,
                    port,
                    vlan: vlan.map(|v| v.0),
                    vtep,
                    age_secs: None,
                });
                Ok(Reply::Done)
            }
            Request::FdbDel { bd, mac } => {
                let before = fdb.len();
                fdb.retain(|e| !(e.bd == bd && e.mac == mac));
                if fdb.len() == before {
                    return Err(format!("no entry for {mac} in {bd:?}"));
                }
                Ok(Reply::Done)
            }
            Request::FdbShow { bd } => Ok(Reply::Fdb(
                fdb.iter()
                    .filter(|e| bd.as_ref().is_none_or(|b| *b == e.bd))
                    .cloned()
                    .collect(),
            )),
            Request::Trace {
                port,
                vtep,
                vni,
                frame,
            } => {
                if let Some(p) = &port {
                    cfg.port(p).ok_or_else(|| format!("no port {p:?}"))?;
                }
                let bytes = proto::decode_hex(&frame)?;
                let dst = Mac(bytes[0..6].try_into().unwrap());
                let hit = fdb.iter().find(|e| e.mac == dst).cloned();
                let ingress = match (port, vtep, vni) {
                    (Some(p), _, _) => format!("port {p}"),
                    (None, Some(ip), Some(v)) => format!("vtep {ip} vni {}", v.0),
                    _ => unreachable!("validated by the protocol"),
                };
                // The store's "switch": static entries only, no classifier;
                // `frame` echoes the hex it received so tests see the bytes.
                Ok(Reply::Trace(Box::new(TraceReport {
                    ingress,
                    frame,
                    frame_len: bytes.len(),
                    xdp: None,
                    inner: None,
                    bd: hit.as_ref().map(|e| e.bd.clone()),
                    learn: None,
                    lookup: Some(TraceStep {
                        mac: dst,
                        outcome: if hit.is_some() { "hit" } else { "miss" }.into(),
                        detail: "static entries of the store".into(),
                    }),
                    decision: if hit.is_some() { "unicast" } else { "flood" }.into(),
                    reason: "the store's answer".into(),
                    counter: None,
                    egress: hit
                        .map(|e| TraceEgress {
                            to: e.port.clone().unwrap_or_default(),
                            port: e.port,
                            sent: true,
                            reason: None,
                            counter: None,
                            vlan: e.vlan,
                            outer: None,
                            next_hop: None,
                            len: Some(bytes.len() + if e.vlan.is_some() { 4 } else { 0 }),
                            hex: None,
                        })
                        .into_iter()
                        .collect(),
                })))
            }
            other => Err(format!("not supported by this store: {other:?}")),
        }
    }
}

/// A server on a socket in a private temporary directory, removed on drop.
pub struct Fixture {
    pub dir: PathBuf,
    server: Option<Server>,
}

impl Fixture {
    /// Starts a server over the example config, after `tweak` adjusts its
    /// settings.
    pub fn new(tweak: impl FnOnce(&mut ServerConfig)) -> Fixture {
        let dir = std::env::temp_dir().join(xvs_testkit::unique_name("ctl"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cfg = ServerConfig {
            path: dir.join("xvsd.sock"),
            read_timeout: Duration::from_millis(400),
            ..ServerConfig::default()
        };
        tweak(&mut cfg);
        let store = Store::new(Config::parse(EXAMPLE).unwrap());
        let server = Server::start(cfg, Arc::new(store)).expect("server starts");
        Fixture {
            dir,
            server: Some(server),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        self.server.as_ref().unwrap().path()
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.path()).expect("connect")
    }

    /// The configuration as the server dumps it.
    pub fn dump(&self) -> String {
        match self.client().call(&Request::ConfigDump {}).unwrap() {
            Reply::Config(t) => t,
            other => panic!("dump answered {other:?}"),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
