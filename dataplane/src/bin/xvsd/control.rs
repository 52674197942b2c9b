//! The control socket's handler: `show`, `fdb show|add|del|flush`,
//! `stats`, `config dump`, and the verbs that change the running
//! configuration live: `port add|del`, `bd add|del`, `attach|detach`,
//! `flood add|del` and `config apply`.
//!
//! Every change is "take the running [`Config`], edit it, apply the result"
//! through [`Live::apply`](crate::live::Live::apply), which `config apply`
//! uses with the file's config: one path, atomic (the running config
//! becomes exactly the new one or stays as it was, with the error), and
//! bridge domains a change does not touch are not rewritten. Changes are
//! serialised by the [`Live`] mutex; queries read the shared model and do
//! not wait for a change in progress (except `show`, for the ports).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{json, Value};
use xvs_control::config::{AttachConfig, BridgeDomainConfig, Config, PortConfig, Role};
use xvs_control::proto::{Counter, Reply, Request};
use xvs_control::server::Handler;
use xvs_dataplane::daemon::Model;
use xvs_dataplane::fdb::{FdbControl, FdbKey};
use xvs_dataplane::types::MacAddr;
use xvs_ebpf::Classifier;

use crate::live::{Live, SharedModel};
use crate::nexthop::HopTable;
use crate::worker::Report;

/// The daemon as the control socket sees it.
pub struct Control {
    /// The running configuration, as queries read it.
    pub shared: SharedModel,
    /// What changes apply to (one change at a time; the watchdog's too).
    pub live: Arc<Mutex<Live>>,
    /// The FDB owner.
    pub fdb: FdbControl,
    /// The classifier (its counters).
    pub classifier: Arc<Classifier>,
    /// Per worker, its latest counters.
    pub reports: Vec<Arc<Mutex<Report>>>,
    /// Next hops by VTEP.
    pub hops: HopTable,
    /// AF_XDP bind mode the kernel chose.
    pub bound: &'static str,
    /// Config file path.
    pub config_path: String,
    /// When the daemon started.
    pub started: Instant,
}

fn counter(scope: &str, instance: &str, name: &str, value: u64) -> Counter {
    Counter {
        scope: scope.into(),
        instance: instance.into(),
        name: name.into(),
        value,
    }
}

/// `name`'s bridge domain in `config`, for editing.
fn bd_mut<'a>(config: &'a mut Config, name: &str) -> Result<&'a mut BridgeDomainConfig, String> {
    config
        .bridge_domains
        .iter_mut()
        .find(|b| b.name == name)
        .ok_or_else(|| format!("no bridge domain {name:?}"))
}

/// `(port, vlan)` as an error message names it.
fn attachment_text(port: &str, vlan: Option<u16>) -> String {
    match vlan {
        Some(v) => format!("{port} vlan {v}"),
        None => format!("{port} (untagged)"),
    }
}

/// The running config edited by one mutating verb (`None`: not a
/// mutating verb). Errors name what does not exist or already does.
fn edit(config: &Config, req: &Request) -> Option<Result<Config, String>> {
    let mut c = config.clone();
    let r = match req {
        Request::PortAdd { name, role } => {
            if c.port(name).is_some() {
                Err(format!("port {name:?} already exists"))
            } else {
                c.ports.push(PortConfig {
                    name: name.clone(),
                    role: *role,
                });
                Ok(())
            }
        }
        Request::PortDel { name } => {
            if c.port(name).is_none() {
                Err(format!("no port {name:?}"))
            } else {
                c.ports.retain(|p| p.name != *name);
                for b in &mut c.bridge_domains {
                    b.attach.retain(|a| a.port != *name);
                }
                Ok(())
            }
        }
        Request::BdAdd {
            name,
            vni,
            max_macs,
        } => {
            if c.bridge_domain(name).is_some() {
                Err(format!("bridge domain {name:?} already exists"))
            } else {
                c.bridge_domains.push(BridgeDomainConfig {
                    name: name.clone(),
                    vni: vni.map(|v| v.0),
                    max_macs: *max_macs,
                    ..BridgeDomainConfig::default()
                });
                Ok(())
            }
        }
        Request::BdDel { name } => {
            if c.bridge_domain(name).is_none() {
                Err(format!("no bridge domain {name:?}"))
            } else {
                c.bridge_domains.retain(|b| b.name != *name);
                Ok(())
            }
        }
        Request::Attach { bd, port, vlan } => {
            let a = AttachConfig {
                port: port.clone(),
                vlan: vlan.map(|v| v.0),
            };
            bd_mut(&mut c, bd).and_then(|b| {
                if b.attach.contains(&a) {
                    Err(format!(
                        "{} is already attached to {bd:?}",
                        attachment_text(port, a.vlan)
                    ))
                } else {
                    b.attach.push(a);
                    Ok(())
                }
            })
        }
        Request::Detach { bd, port, vlan } => {
            let a = AttachConfig {
                port: port.clone(),
                vlan: vlan.map(|v| v.0),
            };
            bd_mut(&mut c, bd).and_then(|b| {
                let before = b.attach.len();
                b.attach.retain(|x| *x != a);
                if b.attach.len() == before {
                    Err(format!(
                        "{} is not attached to {bd:?}",
                        attachment_text(port, a.vlan)
                    ))
                } else {
                    Ok(())
                }
            })
        }
        Request::FloodAdd { bd, vtep } => bd_mut(&mut c, bd).and_then(|b| {
            if b.flood.contains(vtep) {
                Err(format!("{vtep} is already in {bd:?}'s flood list"))
            } else {
                b.flood.push(*vtep);
                Ok(())
            }
        }),
        Request::FloodDel { bd, vtep } => bd_mut(&mut c, bd).and_then(|b| {
            let before = b.flood.len();
            b.flood.retain(|x| x != vtep);
            if b.flood.len() == before {
                Err(format!("{vtep} is not in {bd:?}'s flood list"))
            } else {
                Ok(())
            }
        }),
        _ => return None,
    };
    Some(r.map(|()| c))
}

impl Control {
    /// The running model (a snapshot: a change swaps it whole).
    pub(crate) fn model(&self) -> Arc<Model> {
        self.shared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `config` live (see [`Live::apply`]).
    fn apply(&self, config: Config) -> Result<Reply, String> {
        self.live().apply(config).map(|()| Reply::Done)
    }

    fn show(&self) -> Value {
        let live = self.live();
        let model = live.model.clone();
        let vtep = &model.config().vtep;
        let ports: Vec<Value> = model
            .ports()
            .iter()
            .filter_map(|p| live.ports.get(&p.id.0).map(|info| (p, info)))
            .map(|(p, info)| {
                json!({
                    "name": p.name,
                    "role": match p.role { Role::Uplink => "uplink", Role::Access => "access" },
                    "index": p.id.0,
                    "ifindex": info.ifindex,
                    "xdp_mode": info.xdp_mode,
                    "state": info.health.state().as_str(),
                    "xdp_link": info.health.xdp_link(),
                    "xdp_reattached": info.health.xdp_reattached(),
                    "af_xdp": self.bound,
                })
            })
            .collect();
        drop(live);
        let bds: Vec<Value> = model
            .bridge_domains()
            .iter()
            .map(|b| {
                let attach: Vec<String> = b
                    .attachments
                    .iter()
                    .map(|a| {
                        let name = model.port(a.port).map_or("?", |p| p.name.as_str());
                        match a.vlan {
                            Some(v) => format!("{name} vlan {}", v.id()),
                            None => name.to_owned(),
                        }
                    })
                    .collect();
                json!({
                    "name": b.name,
                    "id": b.id.0,
                    "vni": b.vni.map(|v| v.get()),
                    "attach": attach,
                    "flood": b.flood,
                    "max_macs": b.max_macs,
                    "storm_pps": b.storm_pps,
                    "learn_from_any_vtep": b.learn_from_any_vtep,
                })
            })
            .collect();
        let workers: Vec<Value> = self
            .reports
            .iter()
            .enumerate()
            .map(|(q, r)| {
                let r = r.lock().unwrap_or_else(|p| p.into_inner());
                json!({ "queue": q, "core": r.core, "rx": r.engine.rx, "tx": r.engine.tx })
            })
            .collect();
        let hops: serde_json::Map<String, Value> = self
            .hops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(ip, s)| (ip.to_string(), Value::String(s.to_string())))
            .collect();
        json!({
            "daemon": {
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
                "config": self.config_path,
                "uptime_secs": self.started.elapsed().as_secs(),
            },
            "vtep": {
                "local_ips": vtep.local_ips,
                "udp_port": vtep.udp_port,
                "ttl": vtep.ttl,
                "df": vtep.df,
            },
            "ports": ports,
            "bridge_domains": bds,
            "workers": workers,
            "next_hops": hops,
        })
    }

    /// Every counter: classifier, workers, sockets, FDB.
    pub fn stats(&self) -> Result<Vec<Counter>, String> {
        let mut out = Vec::new();
        let xdp = self
            .classifier
            .counters()
            .map_err(|e| format!("reading XDP counters: {e}"))?;
        for (c, v) in xdp.iter() {
            out.push(counter("xdp", "", c.name(), v));
        }
        for (i, r) in self.reports.iter().enumerate() {
            let r = r.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let w = i.to_string();
            let e = &r.engine;
            for (name, v) in [
                ("rx", e.rx),
                ("tx", e.tx),
                ("unicast", e.unicast),
                ("flooded", e.flooded),
                ("drops", e.drops()),
                ("drop_bad_range", e.drop_bad_range),
                ("drop_runt", e.drop_runt),
                ("drop_bad_src_mac", e.drop_bad_src_mac),
                ("drop_unknown_bd", e.drop_unknown_bd),
                ("drop_hairpin", e.drop_hairpin),
                ("drop_split_horizon", e.drop_split_horizon),
                ("drop_no_vni", e.drop_no_vni),
                ("drop_no_destination", e.drop_no_destination),
                ("drop_storm", e.drop_storm),
                ("drop_unknown_vtep", e.drop_unknown_vtep),
                ("drop_no_next_hop", e.drop_no_next_hop),
                ("drop_no_local_addr", e.drop_no_local_addr),
                ("drop_mtu", e.drop_mtu),
                ("drop_no_headroom", e.drop_no_headroom),
                ("drop_no_frame", e.drop_no_frame),
                ("learned", e.learned),
                ("moved", e.moved),
                ("refreshed", e.refreshed),
                ("learn_cap_reached", e.learn_cap_reached),
                ("learn_static", e.learn_static),
                ("learn_held", e.learn_held),
                ("learn_queue_full", e.learn_queue_full),
                ("batches", r.worker.batches),
                ("drop_bad_meta", r.worker.drop_bad_meta),
                ("drop_no_egress_port", r.worker.drop_no_egress_port),
                ("drop_tx_full", r.worker.drop_tx_full),
                ("nexthop_updates", r.worker.nexthop_updates),
                ("fdb_changes", r.worker.fdb_changes),
                ("umem_frames_free", r.frames_free as u64),
            ] {
                out.push(counter("worker", &w, name, v));
            }
            for s in r.sockets.iter().filter(|s| !s.port.is_empty()) {
                let inst = format!("{}/q{}", s.port, s.queue);
                let p = &s.stats;
                for (name, v) in [
                    ("rx_frames", p.rx_frames),
                    ("rx_invalid", p.rx_invalid),
                    ("tx_frames", p.tx_frames),
                    ("tx_completed", p.tx_completed),
                    ("tx_ring_full", p.tx_ring_full),
                    ("tx_kicks", p.tx_kicks),
                    ("tx_kick_errors", p.tx_kick_errors),
                    ("fill_kicks", p.fill_kicks),
                ] {
                    out.push(counter("port", &inst, name, v));
                }
                if let Some(k) = &s.kernel {
                    for (name, v) in [
                        ("xsk_rx_dropped", k.rx_dropped),
                        ("xsk_rx_invalid_descs", k.rx_invalid_descs),
                        ("xsk_tx_invalid_descs", k.tx_invalid_descs),
                        ("xsk_rx_ring_full", k.rx_ring_full),
                        ("xsk_rx_fill_ring_empty", k.rx_fill_ring_empty_descs),
                        ("xsk_tx_ring_empty", k.tx_ring_empty_descs),
                    ] {
                        out.push(counter("port", &inst, name, v));
                    }
                }
            }
        }
        let f = self.fdb.stats().map_err(|e| e.to_string())?;
        for (name, v) in [
            ("entries", f.entries),
            ("learned", f.learned),
            ("refreshes", f.refreshes),
            ("moves", f.moves),
            ("cap_rejects", f.cap_rejects),
            ("static_rejects", f.static_rejects),
            ("held_rejects", f.held_rejects),
            ("flaps", f.flaps),
            ("aged", f.aged),
            ("flushed", f.flushed),
        ] {
            out.push(counter("fdb", "", name, v));
        }
        out.extend(self.bd_counters()?);
        out.extend(self.live().watched.counters());
        Ok(out)
    }
}

impl Handler for Control {
    fn handle(&self, req: Request) -> Result<Reply, String> {
        let bd_of = |model: &Model, name: &str| {
            model
                .bd_by_name(name)
                .map(|b| b.id)
                .ok_or_else(|| format!("no bridge domain {name:?}"))
        };
        match req {
            Request::Show {} => Ok(Reply::Show(self.show())),
            Request::Stats {} => self.stats().map(Reply::Stats),
            Request::ConfigDump {} => Ok(Reply::Config(self.model().config().to_toml())),
            Request::FdbShow { bd } => {
                let model = self.model();
                let id = match bd.as_deref() {
                    Some(name) => Some(bd_of(&model, name)?),
                    None => None,
                };
                let entries = self.fdb.show(id).map_err(|e| e.to_string())?;
                Ok(Reply::Fdb(
                    entries.iter().filter_map(|e| model.fdb_entry(e)).collect(),
                ))
            }
            Request::FdbAdd {
                bd,
                mac,
                port,
                vlan,
                vtep,
            } => {
                // Under the change lock: the domain cannot go meanwhile.
                let live = self.live();
                let model = &live.model;
                let b = model
                    .bd_by_name(&bd)
                    .ok_or_else(|| format!("no bridge domain {bd:?}"))?;
                if mac.is_multicast() || mac.0 == [0; 6] {
                    return Err(format!("{mac} is not a unicast MAC address"));
                }
                let loc = model.static_location(b, port.as_deref(), vlan.map(|v| v.0), vtep)?;
                self.fdb
                    .static_add(FdbKey::new(b.id, MacAddr(mac.0)), loc)
                    .map_err(|e| e.to_string())?;
                Ok(Reply::Done)
            }
            Request::FdbDel { bd, mac } => {
                let id = bd_of(&self.model(), &bd)?;
                self.fdb
                    .static_del(FdbKey::new(id, MacAddr(mac.0)))
                    .map_err(|e| format!("{e} (learned entries leave with `fdb flush`)"))?;
                Ok(Reply::Done)
            }
            Request::FdbFlush { bd } => {
                let id = match bd.as_deref() {
                    Some(name) => Some(bd_of(&self.model(), name)?),
                    None => None,
                };
                self.fdb.flush(id).map_err(|e| e.to_string())?;
                Ok(Reply::Done)
            }
            Request::ConfigApply { toml } => {
                let config = Config::parse(&toml).map_err(|e| e.to_string())?;
                self.apply(config)
            }
            req @ (Request::PortAdd { .. }
            | Request::PortDel { .. }
            | Request::BdAdd { .. }
            | Request::BdDel { .. }
            | Request::Attach { .. }
            | Request::Detach { .. }
            | Request::FloodAdd { .. }
            | Request::FloodDel { .. }) => {
                let mut live = self.live();
                let config = edit(live.model.config(), &req)
                    .unwrap_or_else(|| Err("not a configuration change".into()))?;
                live.apply(config).map(|()| Reply::Done)
            }
            req @ Request::Trace { .. } => self.trace(req),
        }
    }
}

#[cfg(test)]
mod tests {
    use xvs_control::proto::{VlanId, Vni};

    use super::*;

    fn base() -> Config {
        Config::parse(xvs_dataplane::fixtures::TWO_BDS).unwrap()
    }

    fn edited(req: Request) -> Result<Config, String> {
        edit(&base(), &req).expect("a mutating verb")
    }

    #[test]
    fn verbs_edit_the_running_config() {
        let c = edited(Request::PortAdd {
            name: "vm3".into(),
            role: Role::Access,
        })
        .unwrap();
        assert_eq!(c.ports.last().unwrap().name, "vm3");
        // port del takes the port's attachments with it.
        let c = edited(Request::PortDel { name: "vm2".into() }).unwrap();
        assert!(c.port("vm2").is_none());
        assert!(c.bridge_domains[1].attach.is_empty());
        let c = edited(Request::BdAdd {
            name: "green".into(),
            vni: Some(Vni(7)),
            max_macs: Some(5),
        })
        .unwrap();
        let g = c.bridge_domain("green").unwrap();
        assert_eq!((g.vni, g.max_macs), (Some(7), Some(5)));
        let c = edited(Request::Detach {
            bd: "red".into(),
            port: "vm2".into(),
            vlan: Some(VlanId(10)),
        })
        .unwrap();
        assert!(c.bridge_domains[1].attach.is_empty());
        let vtep = "192.0.2.1".parse().unwrap();
        let c = edited(Request::FloodAdd {
            bd: "red".into(),
            vtep,
        })
        .unwrap();
        assert_eq!(c.bridge_domains[1].flood, vec![vtep]);
        assert!(edit(&base(), &Request::Show {}).is_none());
    }

    #[test]
    fn verbs_on_what_is_missing_or_already_there_say_so() {
        let cases = [
            (
                Request::PortAdd {
                    name: "vm1".into(),
                    role: Role::Access,
                },
                "already exists",
            ),
            (Request::PortDel { name: "x".into() }, "no port"),
            (
                Request::BdAdd {
                    name: "blue".into(),
                    vni: None,
                    max_macs: None,
                },
                "already exists",
            ),
            (Request::BdDel { name: "x".into() }, "no bridge domain"),
            (
                Request::Attach {
                    bd: "blue".into(),
                    port: "vm1".into(),
                    vlan: None,
                },
                "already attached",
            ),
            (
                Request::Detach {
                    bd: "blue".into(),
                    port: "vm2".into(),
                    vlan: None,
                },
                "not attached",
            ),
            (
                Request::FloodDel {
                    bd: "red".into(),
                    vtep: "192.0.2.1".parse().unwrap(),
                },
                "not in",
            ),
            (
                Request::FloodAdd {
                    bd: "nope".into(),
                    vtep: "192.0.2.1".parse().unwrap(),
                },
                "no bridge domain",
            ),
        ];
        for (req, want) in cases {
            let err = edited(req.clone()).unwrap_err();
            assert!(err.contains(want), "{req:?}: {err}");
        }
    }
}
