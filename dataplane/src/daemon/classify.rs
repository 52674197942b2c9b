//! The one translation of a [`Model`] into the XDP classifier's map entries
//! ([`ClassifierEntries`]: ports by ifindex, local VTEP addresses and
//! multicast flood groups, the VXLAN UDP port, VNIs, attachments), and
//! [`ClassifierSync`], which brings a classifier to given entries by
//! writing only what differs and remembers what it wrote.
//!
//! xvsd programs its live classifier with it at start-up and on every live
//! change (in stages, see `bin/xvsd/live.rs`; a failed change is rolled back
//! by syncing to the old entries), and `xvsctl trace` syncs its private
//! copy to the live classifier's entries before each trace: the two cannot
//! disagree. AF_XDP socket slots (XSKMAP) are not entries here: only the
//! live classifier has sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use thiserror::Error;
use xvs_control::config::Role;
use xvs_ebpf::{Classifier, PortRole};

use super::model::{Model, Port};

/// What a classifier's maps hold for a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassifierEntries {
    /// The VXLAN UDP port.
    pub udp_port: u16,
    /// Ports by ifindex: role and port index.
    pub ports: BTreeMap<u32, (PortRole, u32)>,
    /// Local VTEP addresses and multicast flood groups (VXLAN to either is
    /// decapsulated).
    pub local: BTreeSet<IpAddr>,
    /// VNI → bridge domain.
    pub vnis: BTreeMap<u32, u32>,
    /// (port index, VLAN id or 0) → bridge domain.
    pub attachments: BTreeMap<(u32, u16), u32>,
}

impl ClassifierEntries {
    /// The entries for `model`; `ifindex` gives a port's interface index
    /// (`None`: the interface does not exist now, the port gets no entry).
    pub fn of(model: &Model, mut ifindex: impl FnMut(&Port) -> Option<u32>) -> ClassifierEntries {
        let vtep = &model.config().vtep;
        let mut local: BTreeSet<IpAddr> = vtep.local_ips.iter().copied().collect();
        local.extend(model.flood_vteps().into_iter().filter(IpAddr::is_multicast));
        let ports = model
            .ports()
            .iter()
            .filter_map(|p| {
                let role = match p.role {
                    Role::Uplink => PortRole::Uplink,
                    Role::Access => PortRole::Access,
                };
                ifindex(p).map(|i| (i, (role, u32::from(p.id.0))))
            })
            .collect();
        let mut vnis = BTreeMap::new();
        let mut attachments = BTreeMap::new();
        for b in model.bridge_domains() {
            if let Some(vni) = b.vni {
                vnis.insert(vni.get(), u32::from(b.id.0));
            }
            for a in &b.attachments {
                let key = (u32::from(a.port.0), a.vlan.map_or(0, |v| v.id()));
                attachments.insert(key, u32::from(b.id.0));
            }
        }
        ClassifierEntries {
            udp_port: vtep.udp_port,
            ports,
            local,
            vnis,
            attachments,
        }
    }
}

/// A kind of entry, for syncing in stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The VXLAN UDP port.
    UdpPort,
    /// Port entries.
    Ports,
    /// Local addresses and flood groups.
    Local,
    /// VNI entries.
    Vnis,
    /// Attachment entries.
    Attachments,
}

/// Every part.
pub const ALL: &[Part] = &[
    Part::UdpPort,
    Part::Local,
    Part::Ports,
    Part::Vnis,
    Part::Attachments,
];

/// One map write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Set the VXLAN UDP port.
    UdpPort(u16),
    /// Write a port entry (ifindex, role, port index).
    SetPort(u32, PortRole, u32),
    /// Delete the port entry of an ifindex.
    RemovePort(u32),
    /// Add a local address or flood group.
    AddLocal(IpAddr),
    /// Remove a local address or flood group.
    RemoveLocal(IpAddr),
    /// Map a VNI to a bridge domain.
    SetVni(u32, u32),
    /// Unmap a VNI.
    RemoveVni(u32),
    /// Map (port index, VLAN id or 0) to a bridge domain.
    SetAttachment(u32, u16, u32),
    /// Unmap (port index, VLAN id or 0).
    RemoveAttachment(u32, u16),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::UdpPort(p) => write!(f, "setting the VXLAN UDP port {p}"),
            Op::SetPort(i, r, p) => write!(f, "port entry of ifindex {i} ({r:?}, index {p})"),
            Op::RemovePort(i) => write!(f, "removing the port entry of ifindex {i}"),
            Op::AddLocal(ip) => write!(f, "adding local VTEP address {ip}"),
            Op::RemoveLocal(ip) => write!(f, "removing local VTEP address {ip}"),
            Op::SetVni(v, b) => write!(f, "mapping VNI {v} to bridge domain {b}"),
            Op::RemoveVni(v) => write!(f, "unmapping VNI {v}"),
            Op::SetAttachment(p, v, b) => {
                write!(f, "attaching port {p} vlan {v} to bridge domain {b}")
            }
            Op::RemoveAttachment(p, v) => write!(f, "detaching port {p} vlan {v}"),
        }
    }
}

/// A map write the kernel refused.
#[derive(Debug, Error)]
#[error("programming the classifier: {op}: {source}")]
pub struct SyncError {
    /// What was being written.
    pub op: Op,
    /// Why it failed.
    #[source]
    pub source: xvs_ebpf::Error,
}

/// What one classifier holds, as written through it.
#[derive(Debug, Clone, Default)]
pub struct ClassifierSync {
    now: ClassifierEntries,
    /// The UDP port was written at least once.
    udp_set: bool,
}

impl ClassifierSync {
    /// For a classifier nothing was written to yet.
    pub fn new() -> ClassifierSync {
        ClassifierSync::default()
    }

    /// What the classifier holds now.
    pub fn entries(&self) -> &ClassifierEntries {
        &self.now
    }

    /// The writes (adds and changes) of `parts` that bring the classifier
    /// towards `target`, nothing removed.
    pub fn upserts(&self, target: &ClassifierEntries, parts: &[Part]) -> Vec<Op> {
        let now = &self.now;
        let mut ops = Vec::new();
        for part in parts {
            match part {
                Part::UdpPort => {
                    if !self.udp_set || now.udp_port != target.udp_port {
                        ops.push(Op::UdpPort(target.udp_port));
                    }
                }
                Part::Ports => ops.extend(
                    target
                        .ports
                        .iter()
                        .filter(|(i, v)| now.ports.get(i) != Some(v))
                        .map(|(i, (r, p))| Op::SetPort(*i, *r, *p)),
                ),
                Part::Local => ops.extend(
                    target
                        .local
                        .iter()
                        .filter(|ip| !now.local.contains(ip))
                        .map(|ip| Op::AddLocal(*ip)),
                ),
                Part::Vnis => ops.extend(
                    target
                        .vnis
                        .iter()
                        .filter(|(v, b)| now.vnis.get(v) != Some(b))
                        .map(|(v, b)| Op::SetVni(*v, *b)),
                ),
                Part::Attachments => ops.extend(
                    target
                        .attachments
                        .iter()
                        .filter(|(k, b)| now.attachments.get(k) != Some(b))
                        .map(|((p, v), b)| Op::SetAttachment(*p, *v, *b)),
                ),
            }
        }
        ops
    }

    /// The removals of `parts`: what the classifier holds and `target`
    /// does not.
    pub fn removals(&self, target: &ClassifierEntries, parts: &[Part]) -> Vec<Op> {
        let now = &self.now;
        let mut ops = Vec::new();
        for part in parts {
            match part {
                Part::UdpPort => {}
                Part::Ports => ops.extend(
                    now.ports
                        .keys()
                        .filter(|i| !target.ports.contains_key(i))
                        .map(|i| Op::RemovePort(*i)),
                ),
                Part::Local => ops.extend(
                    now.local
                        .iter()
                        .filter(|ip| !target.local.contains(ip))
                        .map(|ip| Op::RemoveLocal(*ip)),
                ),
                Part::Vnis => ops.extend(
                    now.vnis
                        .keys()
                        .filter(|v| !target.vnis.contains_key(v))
                        .map(|v| Op::RemoveVni(*v)),
                ),
                Part::Attachments => ops.extend(
                    now.attachments
                        .keys()
                        .filter(|k| !target.attachments.contains_key(k))
                        .map(|(p, v)| Op::RemoveAttachment(*p, *v)),
                ),
            }
        }
        ops
    }

    /// Writes `ops` in order, remembering each that succeeded; stops at the
    /// first the kernel refuses.
    pub fn apply(&mut self, cls: &Classifier, ops: &[Op]) -> Result<(), SyncError> {
        for &op in ops {
            let r = match op {
                Op::UdpPort(p) => cls.set_vxlan_port(p),
                Op::SetPort(i, r, p) => cls.set_port(i, r, p),
                Op::RemovePort(i) => cls.remove_port(i),
                Op::AddLocal(ip) => cls.add_local_vtep(ip),
                Op::RemoveLocal(ip) => cls.remove_local_vtep(ip),
                Op::SetVni(v, b) => cls.set_vni(v, b),
                Op::RemoveVni(v) => cls.remove_vni(v),
                Op::SetAttachment(p, v, b) => cls.set_attachment(p, v, b),
                Op::RemoveAttachment(p, v) => cls.remove_attachment(p, v),
            };
            r.map_err(|source| SyncError { op, source })?;
            self.record(op);
        }
        Ok(())
    }

    /// Adds and changes of `parts` towards `target`.
    pub fn upsert(
        &mut self,
        cls: &Classifier,
        target: &ClassifierEntries,
        parts: &[Part],
    ) -> Result<(), SyncError> {
        let ops = self.upserts(target, parts);
        self.apply(cls, &ops)
    }

    /// Removals of `parts` towards `target`.
    pub fn remove(
        &mut self,
        cls: &Classifier,
        target: &ClassifierEntries,
        parts: &[Part],
    ) -> Result<(), SyncError> {
        let ops = self.removals(target, parts);
        self.apply(cls, &ops)
    }

    /// Brings the classifier to exactly `target`: every add and change,
    /// then every removal.
    pub fn sync(&mut self, cls: &Classifier, target: &ClassifierEntries) -> Result<(), SyncError> {
        self.upsert(cls, target, ALL)?;
        self.remove(cls, target, ALL)
    }

    /// Notes a write that succeeded.
    fn record(&mut self, op: Op) {
        let now = &mut self.now;
        match op {
            Op::UdpPort(p) => {
                now.udp_port = p;
                self.udp_set = true;
            }
            Op::SetPort(i, r, p) => {
                now.ports.insert(i, (r, p));
            }
            Op::RemovePort(i) => {
                now.ports.remove(&i);
            }
            Op::AddLocal(ip) => {
                now.local.insert(ip);
            }
            Op::RemoveLocal(ip) => {
                now.local.remove(&ip);
            }
            Op::SetVni(v, b) => {
                now.vnis.insert(v, b);
            }
            Op::RemoveVni(v) => {
                now.vnis.remove(&v);
            }
            Op::SetAttachment(p, v, b) => {
                now.attachments.insert((p, v), b);
            }
            Op::RemoveAttachment(p, v) => {
                now.attachments.remove(&(p, v));
            }
        }
    }

    /// Notes `ops` as written without writing them (tests of the plans).
    #[cfg(test)]
    fn assume(&mut self, ops: &[Op]) {
        for &op in ops {
            self.record(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use xvs_control::config::Config;

    use super::*;

    fn model(text: &str) -> Model {
        Model::from_config(&Config::parse(text).expect("config")).expect("model")
    }

    const BASE: &str = "[vtep]\nlocal_ips = [\"192.0.2.10\"]\n\n\
        [[port]]\nname = \"up\"\nrole = \"uplink\"\n\n\
        [[port]]\nname = \"vm1\"\nrole = \"access\"\n\n\
        [[bridge_domain]]\nname = \"blue\"\nvni = 100\nlearn_from_any_vtep = true\n\
        flood = [\"239.1.1.1\"]\nattach = [{ port = \"vm1\", vlan = 10 }]\n";

    /// Interface indices: "up" 7, "vm1" 8, "vm2" 9.
    fn ifindex(p: &Port) -> Option<u32> {
        match p.name.as_str() {
            "up" => Some(7),
            "vm1" => Some(8),
            "vm2" => Some(9),
            _ => None,
        }
    }

    #[test]
    fn entries_of_a_model_cover_every_map() {
        let e = ClassifierEntries::of(&model(BASE), ifindex);
        assert_eq!(e.udp_port, 4789);
        assert_eq!(
            e.ports.into_iter().collect::<Vec<_>>(),
            vec![(7, (PortRole::Uplink, 0)), (8, (PortRole::Access, 1))]
        );
        let local: Vec<IpAddr> = e.local.into_iter().collect();
        assert_eq!(
            local,
            vec![
                "192.0.2.10".parse::<IpAddr>().unwrap(),
                "239.1.1.1".parse().unwrap()
            ]
        );
        assert_eq!(e.vnis.into_iter().collect::<Vec<_>>(), vec![(100, 1)]);
        assert_eq!(
            e.attachments.into_iter().collect::<Vec<_>>(),
            vec![((1, 10), 1)]
        );
    }

    #[test]
    fn a_fresh_classifier_gets_everything_then_only_the_differences() {
        let base = ClassifierEntries::of(&model(BASE), ifindex);
        let mut s = ClassifierSync::new();
        let first = s.upserts(&base, ALL);
        assert_eq!(first.len(), 1 + 2 + 2 + 1 + 1, "{first:?}");
        assert!(s.removals(&base, ALL).is_empty());
        s.assume(&first);
        assert_eq!(s.entries(), &base);
        assert!(s.upserts(&base, ALL).is_empty());

        // vm1's interface re-created (new ifindex), another VNI, the VLAN
        // changed, the flood group gone, another UDP port.
        let changed = BASE
            .replace("vni = 100", "vni = 200")
            .replace("vlan = 10", "vlan = 20")
            .replace("\"239.1.1.1\"", "\"192.0.2.1\"")
            .replace("[vtep]\n", "[vtep]\nudp_port = 8472\n");
        let next = ClassifierEntries::of(&model(&changed), |p| {
            if p.name == "vm1" {
                Some(12)
            } else {
                ifindex(p)
            }
        });
        assert_eq!(
            s.upserts(&next, ALL),
            vec![
                Op::UdpPort(8472),
                Op::SetPort(12, PortRole::Access, 1),
                Op::SetVni(200, 1),
                Op::SetAttachment(1, 20, 1),
            ]
        );
        assert_eq!(
            s.removals(&next, ALL),
            vec![
                Op::RemoveLocal("239.1.1.1".parse().unwrap()),
                Op::RemovePort(8),
                Op::RemoveVni(100),
                Op::RemoveAttachment(1, 10),
            ]
        );
        // Stages: only the parts asked for.
        assert_eq!(s.upserts(&next, &[Part::Vnis]), vec![Op::SetVni(200, 1)]);
        assert!(s.removals(&next, &[Part::UdpPort]).is_empty());
        // Rolling back is syncing to the old entries: after a partial
        // change, exactly what was written is undone.
        s.assume(&[Op::SetVni(200, 1), Op::SetPort(12, PortRole::Access, 1)]);
        let mut back = s.upserts(&base, ALL);
        back.extend(s.removals(&base, ALL));
        assert_eq!(back, vec![Op::RemovePort(12), Op::RemoveVni(200)]);
    }

    /// The bridge domain the loaded classifier switches `frame` to on the
    /// loopback (ifindex 1), or `None` when it drops or passes it.
    fn classified_bd(cls: &Classifier, frame: &[u8]) -> Option<u32> {
        let out = cls.test_run(frame, 1, 0).expect("test run");
        // No socket in the XSKMAP: a switched frame is dropped with its
        // metadata in front.
        out.meta().map(|m| m.bd)
    }

    /// Every VNI and tagged attachment of `e` classifies to its bridge
    /// domain through the real program, and each of `gone` is not switched.
    fn check_classifies(
        cls: &Classifier,
        e: &ClassifierEntries,
        gone_vnis: &[u32],
        gone_vids: &[u16],
    ) {
        use xvs_testkit::frames::{udp4, vm_frame, vxlan_payload, REMOTE4, VTEP4};
        cls.set_port(1, PortRole::Uplink, 0).unwrap();
        let vxlan = |vni| {
            udp4(
                &[],
                REMOTE4,
                VTEP4,
                4789,
                &vxlan_payload(vni, &vm_frame(&[])),
            )
        };
        for (&vni, &bd) in &e.vnis {
            assert_eq!(classified_bd(cls, &vxlan(vni)), Some(bd), "VNI {vni}");
        }
        for &vni in gone_vnis {
            assert_eq!(classified_bd(cls, &vxlan(vni)), None, "VNI {vni}");
        }
        cls.set_port(1, PortRole::Access, 1).unwrap();
        for (&(port, vid), &bd) in &e.attachments {
            if port == 1 {
                assert_eq!(classified_bd(cls, &vm_frame(&[vid])), Some(bd), "VID {vid}");
            }
        }
        for &vid in gone_vids {
            assert_eq!(classified_bd(cls, &vm_frame(&[vid])), None, "VID {vid}");
        }
    }

    /// Live adds, changes and removals through `ClassifierSync` keep every
    /// VNI and (port, VID) classifying, whether the classifier's
    /// direct-mapped tables hold them or they share a slot and are found in
    /// the hash, across the table rebuilds the changes cause.
    #[test]
    fn live_syncs_keep_every_vni_and_attachment_classifying() {
        if !xvs_testkit::privileged("live_syncs_keep_every_vni_and_attachment_classifying") {
            return;
        }
        let cls = Classifier::load().expect("load");
        let mut sync = ClassifierSync::new();
        let mut e = ClassifierEntries {
            udp_port: 4789,
            local: ["192.0.2.10".parse().unwrap()].into_iter().collect(),
            ..ClassifierEntries::default()
        };
        // A dense range and a scattered set: more than any seed places.
        let mut x = 0x2545_f491u32;
        let mut scattered = Vec::new();
        while scattered.len() < 1500 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            scattered.push(x & 0x00ff_ffff);
        }
        for vni in (5000..5400).chain(scattered.iter().copied()) {
            e.vnis.insert(vni, vni % 97 + 1);
        }
        for vid in 1..2000u16 {
            e.attachments.insert((1, vid), u32::from(vid % 50) + 1);
            e.attachments.insert((2, vid), 7);
        }
        sync.sync(&cls, &e).expect("first sync");
        let t = cls.direct_tables();
        assert_eq!(t.vnis.keys, e.vnis.len());
        assert!(t.vnis.placed < t.vnis.keys, "{t:?}");
        assert!(t.vnis.placed > 0 && t.attachments.placed > 0, "{t:?}");
        check_classifies(&cls, &e, &[4999, 5400], &[2000, 3000]);

        // Change: a third of the VNIs gone, others remapped, new ones; VIDs
        // likewise.
        let mut next = e.clone();
        let gone_vnis: Vec<u32> = e.vnis.keys().copied().step_by(3).collect();
        for v in &gone_vnis {
            next.vnis.remove(v);
        }
        for v in e.vnis.keys().skip(1).step_by(3) {
            next.vnis.insert(*v, 4242);
        }
        for vni in 20_000..20_300 {
            next.vnis.insert(vni, 3);
        }
        let gone_vids: Vec<u16> = (1..2000u16).filter(|v| v % 4 == 0).collect();
        for v in &gone_vids {
            next.attachments.remove(&(1, *v));
        }
        for vid in 2000..2100u16 {
            next.attachments.insert((1, vid), 9);
        }
        sync.sync(&cls, &next).expect("live change");
        assert_eq!(cls.direct_tables().vnis.keys, next.vnis.len());
        check_classifies(&cls, &next, &gone_vnis, &gone_vids);

        // Back to the first entries (what a rollback does), then to none.
        sync.sync(&cls, &e).expect("roll back");
        check_classifies(&cls, &e, &[20_000, 20_299], &[2000, 2099]);
        let all_vnis: Vec<u32> = e.vnis.keys().copied().collect();
        let none = ClassifierEntries {
            vnis: BTreeMap::new(),
            attachments: BTreeMap::new(),
            ..e.clone()
        };
        sync.sync(&cls, &none).expect("to none");
        check_classifies(&cls, &none, &all_vnis, &[1, 2, 1999]);
        let t = cls.direct_tables();
        assert_eq!((t.vnis.keys, t.vnis.placed), (0, 0));
        assert_eq!((t.attachments.keys, t.attachments.placed), (0, 0));
    }

    #[test]
    fn a_port_without_an_interface_gets_no_entry() {
        let text = BASE.replace(
            "[[bridge_domain]]",
            "[[port]]\nname = \"gone\"\nrole = \"access\"\n\n[[bridge_domain]]",
        );
        let e = ClassifierEntries::of(&model(&text), ifindex);
        assert_eq!(e.ports.len(), 2);
    }
}
