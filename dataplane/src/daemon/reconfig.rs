//! Live reconfiguration, the pure half: what changes between the running
//! [`Model`] and the next one ([`Diff`]), and the bridge-domain and
//! encapsulation updates a worker applies between batches ([`LiveUpdate`]).
//!
//! xvsd turns every mutating control verb into "edit the running config,
//! then apply the new config", and `config apply` into "apply this config";
//! both go through one path in the daemon (`bin/xvsd/reconfig.rs`) that
//! builds the next model with [`Model::evolve`] (ids of what stays are
//! kept), computes the [`Diff`], and applies it: classifier maps, FDB,
//! workers' bridge domains, ports. A bridge domain the change does not
//! touch is in no list of the diff, so nothing about it is rewritten.

use std::collections::BTreeMap;

use crossbeam_channel::Sender;

use crate::bridge::BridgeDomain;
use crate::engine::EncapConfig;
use crate::types::{Attachment, BdId, PortId};

use super::model::{Model, Port};

/// A change to one worker's bridge domains or encapsulation settings,
/// applied between batches.
#[derive(Debug, Clone)]
pub enum LiveUpdate {
    /// New encapsulation settings (`[vtep]` or the uplink changed).
    Encap(EncapConfig),
    /// Adds a bridge domain or replaces the one with its id.
    Upsert(BridgeDomain),
    /// Removes a bridge domain (its frames are then dropped as
    /// `drop_unknown_bd`).
    Remove(BdId),
    /// A local port's IP MTU (start, live `port add`, the watchdog saw it
    /// change; `None`: unknown, not checked): see
    /// [`Engine::set_port_mtu`](crate::engine::Engine::set_port_mtu).
    PortMtu(PortId, Option<u32>),
    /// Answered once every update sent before it is applied.
    Sync(Sender<()>),
}

/// What applying a new model changes, as lists of operations. Every list is
/// sorted, so a diff is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// The `[vtep]` section differs.
    pub vtep_changed: bool,
    /// Ports only the new model has.
    pub ports_added: Vec<Port>,
    /// Ports only the old model has.
    pub ports_removed: Vec<Port>,
    /// Names of ports whose role differs.
    pub ports_retyped: Vec<String>,
    /// Bridge domains (engine view) that are new or differ.
    pub bds_upsert: Vec<BridgeDomain>,
    /// Bridge domains only the old model has.
    pub bds_removed: Vec<BdId>,
    /// Learned-MAC caps to set: new domains and changed caps.
    pub max_macs: Vec<(BdId, Option<u32>)>,
    /// Classifier VNI map entries to write (VNI → BD).
    pub vni_set: Vec<(u32, BdId)>,
    /// Classifier VNI map entries to delete.
    pub vni_del: Vec<u32>,
    /// Classifier attachment entries to write ((port, VLAN) → BD).
    pub attach_set: Vec<(Attachment, BdId)>,
    /// Classifier attachment entries to delete.
    pub attach_del: Vec<Attachment>,
    /// Kept bridge domains that lost an attachment or changed or lost their
    /// VNI: their learned FDB entries go (they may point where frames no
    /// longer go); removed domains are flushed too, statics included.
    pub fdb_flush: Vec<BdId>,
    /// (bridge domain, attachment) pairs that went away in kept domains:
    /// static FDB entries there are deleted.
    pub attachments_removed: Vec<(BdId, Attachment)>,
}

fn vni_map(m: &Model) -> BTreeMap<u32, BdId> {
    m.bridge_domains()
        .iter()
        .filter_map(|b| b.vni.map(|v| (v.get(), b.id)))
        .collect()
}

fn attach_map(m: &Model) -> BTreeMap<(u16, u16), (Attachment, BdId)> {
    m.bridge_domains()
        .iter()
        .flat_map(|b| {
            b.attachments
                .iter()
                .map(move |a| ((a.port.0, a.vlan.map_or(0, |v| v.id())), (*a, b.id)))
        })
        .collect()
}

/// Entries of `new` that `old` lacks or maps differently, and keys of `old`
/// that `new` lacks.
fn map_diff<K: Ord + Clone, V: PartialEq + Clone>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
) -> (Vec<(K, V)>, Vec<K>) {
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let del = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    (set, del)
}

impl Diff {
    /// What turning `old` into `new` changes. `new` should come from
    /// `old.evolve(..)` so that ids are comparable.
    pub fn between(old: &Model, new: &Model) -> Diff {
        let mut d = Diff {
            vtep_changed: old.config().vtep != new.config().vtep,
            ..Diff::default()
        };
        for p in new.ports() {
            match old.port_by_name(&p.name) {
                None => d.ports_added.push(p.clone()),
                Some(o) if o.role != p.role || o.id != p.id => d.ports_retyped.push(p.name.clone()),
                Some(_) => {}
            }
        }
        d.ports_removed = old
            .ports()
            .iter()
            .filter(|p| new.port_by_name(&p.name).is_none())
            .cloned()
            .collect();
        for b in new.bridge_domains() {
            let eng = Model::engine_bd(b);
            match old.bd(b.id) {
                None => {
                    d.max_macs.push((b.id, b.max_macs));
                    d.bds_upsert.push(eng);
                }
                Some(o) => {
                    if Model::engine_bd(o) != eng {
                        d.bds_upsert.push(eng);
                    }
                    if o.max_macs != b.max_macs {
                        d.max_macs.push((b.id, b.max_macs));
                    }
                    let lost: Vec<Attachment> = o
                        .attachments
                        .iter()
                        .filter(|a| !b.attachments.contains(a))
                        .copied()
                        .collect();
                    if !lost.is_empty() || (o.vni.is_some() && o.vni != b.vni) {
                        d.fdb_flush.push(b.id);
                    }
                    d.attachments_removed
                        .extend(lost.into_iter().map(|a| (b.id, a)));
                }
            }
        }
        d.bds_removed = old
            .bridge_domains()
            .iter()
            .filter(|b| new.bd(b.id).is_none())
            .map(|b| b.id)
            .collect();
        d.fdb_flush.extend(d.bds_removed.iter().copied());
        let (vni_set, vni_del) = map_diff(&vni_map(old), &vni_map(new));
        d.vni_set = vni_set;
        d.vni_del = vni_del;
        let (attach_set, attach_del) = map_diff(&attach_map(old), &attach_map(new));
        d.attach_set = attach_set.into_iter().map(|(_, v)| v).collect();
        let old_attach = attach_map(old);
        d.attach_del = attach_del
            .iter()
            .filter_map(|k| old_attach.get(k).map(|(a, _)| *a))
            .collect();
        d.ports_added.sort_by_key(|p| p.id);
        d.ports_removed.sort_by_key(|p| p.id);
        d.bds_upsert.sort_by_key(|b| b.id);
        d.bds_removed.sort();
        d.fdb_flush.sort();
        d.fdb_flush.dedup();
        d.max_macs.sort();
        d
    }

    /// Nothing changes.
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PortId, Vlan};
    use xvs_control::config::Config;

    fn base() -> Model {
        Model::from_config(&Config::parse(crate::fixtures::TWO_BDS).unwrap()).unwrap()
    }

    fn edit(m: &Model, f: impl FnOnce(&mut Config)) -> Model {
        let mut c = m.config().clone();
        f(&mut c);
        m.evolve(&c).unwrap()
    }

    #[test]
    fn same_config_is_an_empty_diff() {
        let m = base();
        let n = m.evolve(m.config()).unwrap();
        assert_eq!(n, m);
        assert!(Diff::between(&m, &n).is_empty());
    }

    #[test]
    fn ids_survive_deleting_what_comes_before() {
        let m = base();
        let n = edit(&m, |c| {
            c.bridge_domains.remove(0);
            c.ports.remove(0);
        });
        assert_eq!(n.bd_by_name("red").unwrap().id, BdId(2));
        assert_eq!(n.port_by_name("vm2").unwrap().id, PortId(2));
        assert_eq!(n.port_by_name("vm1").unwrap().id, PortId(1));
        let d = Diff::between(&m, &n);
        assert_eq!(d.bds_removed, vec![BdId(1)]);
        assert_eq!(d.ports_removed.len(), 1);
        assert_eq!(d.ports_removed[0].name, "up");
        assert!(d.bds_upsert.is_empty(), "red is untouched: {d:?}");
        assert_eq!(d.vni_del, vec![100]);
        assert_eq!(d.attach_del, vec![Attachment::untagged(PortId(1))]);
        assert_eq!(d.fdb_flush, vec![BdId(1)]);
        assert!(d.vni_set.is_empty() && d.attach_set.is_empty());
    }

    #[test]
    fn new_ids_are_fresh_and_a_deleted_bd_id_is_not_reused_at_once() {
        let m = base();
        let n = edit(&m, |c| {
            c.bridge_domains.remove(0);
            c.ports.remove(1);
            c.bridge_domains[0].attach.clear();
        });
        // Add a port and a BD back under new names.
        let extra = Config::parse(
            "[[port]]\nname = \"vm3\"\nrole = \"access\"\n\
             [[bridge_domain]]\nname = \"green\"\nvni = 300\nmax_macs = 10\n\
             attach = [{ port = \"vm3\" }]\n",
        )
        .unwrap();
        let o = edit(&n, |c| {
            c.ports.extend(extra.ports);
            c.bridge_domains.extend(extra.bridge_domains);
        });
        // Port 1 is free in `n`, so vm3 takes it; green counts up from the
        // highest BD id given (2), so blue's freed id 1 is not reused.
        assert_eq!(o.port_by_name("vm3").unwrap().id, PortId(1));
        let green = o.bd_by_name("green").unwrap();
        assert_eq!(green.id, BdId(3));
        assert_eq!(o.bd_by_name("red").unwrap().id, BdId(2));
        let d = Diff::between(&n, &o);
        assert_eq!(d.ports_added.len(), 1);
        assert_eq!(d.bds_upsert.len(), 1);
        assert_eq!(d.bds_upsert[0].id, BdId(3));
        assert_eq!(d.max_macs, vec![(BdId(3), Some(10))]);
        assert_eq!(d.vni_set, vec![(300, BdId(3))]);
        assert_eq!(
            d.attach_set,
            vec![(Attachment::untagged(PortId(1)), BdId(3))]
        );
        assert!(d.fdb_flush.is_empty());
    }

    #[test]
    fn a_new_port_never_takes_the_id_of_one_removed_in_the_same_change() {
        let m = base();
        let n = edit(&m, |c| {
            c.ports[0].name = "up2".into();
        });
        assert_eq!(n.port_by_name("up2").unwrap().id, PortId(3));
        let d = Diff::between(&m, &n);
        assert_eq!(d.ports_added[0].id, PortId(3));
        assert_eq!(d.ports_removed[0].id, PortId(0));
    }

    #[test]
    fn attach_detach_and_flood_changes_touch_only_their_bd() {
        let m = base();
        let n = edit(&m, |c| {
            let mut a = c.bridge_domains[1].attach[0].clone();
            a.vlan = Some(20);
            c.bridge_domains[0].attach.push(a);
            c.bridge_domains[0].flood.push("192.0.2.2".parse().unwrap());
        });
        let d = Diff::between(&m, &n);
        assert_eq!(d.bds_upsert.len(), 1);
        assert_eq!(d.bds_upsert[0].id, BdId(1));
        assert_eq!(d.bds_upsert[0].flood.len(), 2);
        let a = Attachment::tagged(PortId(2), Vlan::new(20).unwrap());
        assert_eq!(d.attach_set, vec![(a, BdId(1))]);
        assert!(d.fdb_flush.is_empty(), "nothing was lost");
        // Detach again: the attachment goes, BD 1 is flushed.
        let d = Diff::between(&n, &m);
        assert_eq!(d.attach_del, vec![a]);
        assert_eq!(d.fdb_flush, vec![BdId(1)]);
        assert_eq!(d.attachments_removed, vec![(BdId(1), a)]);
        assert!(d.bds_removed.is_empty());
    }

    #[test]
    fn moving_a_vni_between_bds_rewrites_it_without_deleting_it() {
        let m = base();
        let n = edit(&m, |c| {
            c.bridge_domains[0].vni = None;
            c.bridge_domains[0].flood.clear();
            c.bridge_domains[1].vni = Some(100);
        });
        let d = Diff::between(&m, &n);
        assert_eq!(d.vni_set, vec![(100, BdId(2))]);
        assert_eq!(d.vni_del, vec![200]);
        assert_eq!(d.fdb_flush, vec![BdId(1), BdId(2)]);
        assert!(!d.vtep_changed);
        let v = edit(&m, |c| c.vtep.ttl = 3);
        assert!(Diff::between(&m, &v).vtep_changed);
    }

    #[test]
    fn workers_apply_bd_updates_between_batches_and_confirm() {
        use crate::daemon::worker::Worker;
        use crate::engine::{EncapConfig, Engine};
        use crate::fdb::{self, FdbConfig, Tick};
        use crate::xsk::{MemIo, PortId as IoPort, XskConfig};
        use crossbeam_channel::{bounded, unbounded};
        use xvs_ebpf::Meta;

        let m = base();
        let (_owner, mut replicas, _ctl) = fdb::new(FdbConfig::default(), 1);
        let engine = Engine::new(
            replicas.remove(0),
            m.engine_bridge_domains(),
            EncapConfig::default(),
        );
        let (_hops, hop_rx) = unbounded();
        let mut w = Worker::new(0, engine, 8, hop_rx);
        let (tx, rx) = unbounded();
        w.set_bd_updates(rx);
        let cfg = XskConfig {
            frame_count: 64,
            ..XskConfig::default()
        };
        let mut io = MemIo::new(3, &cfg).unwrap();
        let mut frame = vec![0u8; 60];
        frame[0..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        let meta = Meta {
            bd: 1,
            port_index: 1,
            ..Meta::default()
        }
        .to_bytes();
        // blue removed: its frames are dropped as unknown-BD.
        tx.send(LiveUpdate::Remove(BdId(1))).unwrap();
        let (done, confirmed) = bounded(1);
        tx.send(LiveUpdate::Sync(done)).unwrap();
        assert!(io.inject(IoPort::new(1), &meta, &frame));
        w.run_batch(&mut io, Tick(1));
        confirmed
            .try_recv()
            .expect("sync answered within the batch");
        assert_eq!(w.engine_counters().drop_unknown_bd, 1);
        // Back, with vm2 attached too: the broadcast reaches vm2.
        let mut blue = Model::engine_bd(m.bd(BdId(1)).unwrap());
        blue.attachments.push(Attachment::untagged(PortId(2)));
        tx.send(LiveUpdate::Upsert(blue)).unwrap();
        assert!(io.inject(IoPort::new(1), &meta, &frame));
        w.run_batch(&mut io, Tick(2));
        assert_eq!(io.take_sent(IoPort::new(2)).len(), 1);
        assert_eq!(w.engine_counters().drop_unknown_bd, 1);
    }

    #[test]
    fn role_changes_are_reported() {
        let m = base();
        let n = edit(&m, |c| {
            c.ports[0].role = xvs_control::config::Role::Access;
        });
        assert_eq!(Diff::between(&m, &n).ports_retyped, vec!["up".to_string()]);
    }
}
