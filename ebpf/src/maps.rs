//! Typed setters and deleters for the classifier's config maps, the XSKMAP,
//! counters, and the load-time check that every map's key and value size
//! matches its Rust mirror.
//!
//! Every change takes effect for the next frame; there is no transaction
//! across maps (configure the VNI or attachment before the port, and remove
//! in the opposite order, so that no frame meets half a configuration).

use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use libbpf_rs::{MapCore, MapFlags, MapMut};

use crate::abi::{
    xsk_slot, AttachKey, ConfigValue, PortRole, PortValue, VtepAddr, DIRECT_SLOTS, MAX_PORTS,
    PORT_ARRAY_SIZE, UNTAGGED_PRESENT, VID_MAX, VNI_MAX, XSK_SLOTS,
};
use crate::classifier::Classifier;
use crate::counters::{Counter, Counters};
use crate::direct::{DirectTable, DirectTables, Plan};
use crate::error::{Error, Result};
use crate::skel::OpenXvsXdpMaps;

/// What this process last wrote to `xvs_config` and the two direct-mapped
/// tables (see `direct.rs`); one lock serialises every write to them.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    config: ConfigValue,
    vnis: DirectTable,
    attachments: DirectTable,
}

/// Which direct-mapped table.
#[derive(Debug, Clone, Copy)]
enum Which {
    Vnis,
    Attachments,
}

impl Tables {
    fn table(&mut self, which: Which) -> &mut DirectTable {
        match which {
            Which::Vnis => &mut self.vnis,
            Which::Attachments => &mut self.attachments,
        }
    }
}

/// The direct-table key of attachment (port, VID): `port << 12 | vid`.
fn attach_key(port_index: u32, vid: u16) -> u32 {
    (port_index << 12) | u32::from(vid)
}

/// Checks each map's key and value size in the opened object against the
/// Rust mirror it is accessed through.
pub(crate) fn check_layout(maps: &OpenXvsXdpMaps<'_>) -> Result<()> {
    let u32s = size_of::<u32>();
    let table = [
        (
            "xvs_ports",
            maps.xvs_ports.key_size(),
            maps.xvs_ports.value_size(),
            u32s,
            size_of::<PortValue>(),
        ),
        (
            "xvs_ports_array",
            maps.xvs_ports_array.key_size(),
            maps.xvs_ports_array.value_size(),
            u32s,
            size_of::<PortValue>(),
        ),
        (
            "xvs_local_vteps",
            maps.xvs_local_vteps.key_size(),
            maps.xvs_local_vteps.value_size(),
            size_of::<VtepAddr>(),
            u32s,
        ),
        (
            "xvs_vtep_hint",
            maps.xvs_vtep_hint.key_size(),
            maps.xvs_vtep_hint.value_size(),
            u32s,
            size_of::<VtepAddr>(),
        ),
        (
            "xvs_vnis",
            maps.xvs_vnis.key_size(),
            maps.xvs_vnis.value_size(),
            u32s,
            u32s,
        ),
        (
            "xvs_attachments",
            maps.xvs_attachments.key_size(),
            maps.xvs_attachments.value_size(),
            size_of::<AttachKey>(),
            u32s,
        ),
        (
            "xvs_untagged",
            maps.xvs_untagged.key_size(),
            maps.xvs_untagged.value_size(),
            u32s,
            size_of::<u64>(),
        ),
        (
            "xvs_config",
            maps.xvs_config.key_size(),
            maps.xvs_config.value_size(),
            u32s,
            size_of::<ConfigValue>(),
        ),
        (
            "xvs_vni_direct",
            maps.xvs_vni_direct.key_size(),
            maps.xvs_vni_direct.value_size(),
            u32s,
            size_of::<u64>(),
        ),
        (
            "xvs_attach_direct",
            maps.xvs_attach_direct.key_size(),
            maps.xvs_attach_direct.value_size(),
            u32s,
            size_of::<u64>(),
        ),
        (
            "xvs_xsks",
            maps.xvs_xsks.key_size(),
            maps.xvs_xsks.value_size(),
            u32s,
            u32s,
        ),
        (
            "xvs_counters",
            maps.xvs_counters.key_size(),
            maps.xvs_counters.value_size(),
            u32s,
            size_of::<[u64; Counter::COUNT]>(),
        ),
    ];
    for (map, actual, expected) in [
        ("xvs_xsks", maps.xvs_xsks.max_entries(), XSK_SLOTS),
        (
            "xvs_ports_array",
            maps.xvs_ports_array.max_entries(),
            PORT_ARRAY_SIZE,
        ),
        ("xvs_untagged", maps.xvs_untagged.max_entries(), MAX_PORTS),
        ("xvs_counters", maps.xvs_counters.max_entries(), 1),
        (
            "xvs_vni_direct",
            maps.xvs_vni_direct.max_entries(),
            DIRECT_SLOTS,
        ),
        (
            "xvs_attach_direct",
            maps.xvs_attach_direct.max_entries(),
            DIRECT_SLOTS,
        ),
    ] {
        if actual != expected {
            return Err(Error::MapLayout {
                map,
                what: "entries",
                actual,
                expected,
            });
        }
    }
    for (map, key, value, want_key, want_value) in table {
        for (what, actual, expected) in [
            ("key size", key, want_key),
            ("value size", value, want_value),
        ] {
            if actual as usize != expected {
                return Err(Error::MapLayout {
                    map,
                    what,
                    actual,
                    expected: expected as u32,
                });
            }
        }
    }
    Ok(())
}

fn update(map: &MapMut<'_>, name: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
    map.update(key, value, MapFlags::ANY)
        .map_err(|source| Error::Map {
            map: name,
            op: "update",
            source,
        })
}

/// Deletes `key`; deleting what is not there is not an error.
fn delete(map: &MapMut<'_>, name: &'static str, key: &[u8]) -> Result<()> {
    match map.delete(key) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Map {
            map: name,
            op: "delete",
            source,
        }),
    }
}

fn slot_of(port_index: u32, queue: u32) -> Result<u32> {
    xsk_slot(port_index, queue).ok_or_else(|| Error::InvalidArgument {
        what: "(port index < 256, RX queue < 64)",
        value: format!("({port_index}, {queue})"),
    })
}

fn check_port_index(port_index: u32) -> Result<()> {
    if port_index >= MAX_PORTS {
        return Err(Error::InvalidArgument {
            what: "port index (0 … 255)",
            value: port_index.to_string(),
        });
    }
    Ok(())
}

fn check_vni(vni: u32) -> Result<()> {
    if vni > VNI_MAX {
        return Err(Error::InvalidArgument {
            what: "VNI (0 … 16777215)",
            value: vni.to_string(),
        });
    }
    Ok(())
}

fn check_vid(vid: u16) -> Result<()> {
    if vid > VID_MAX {
        return Err(Error::InvalidArgument {
            what: "VLAN ID (0 … 4095)",
            value: vid.to_string(),
        });
    }
    Ok(())
}

impl Classifier {
    /// Makes interface `ifindex` an xvs port with `role`; `port_index` is
    /// xvs's own number for it (metadata and attachments use it).
    pub fn set_port(&self, ifindex: u32, role: PortRole, port_index: u32) -> Result<()> {
        check_port_index(port_index)?;
        let value = PortValue {
            role: role as u32,
            port_index,
        };
        self.write_port(ifindex, &value)
    }

    /// Forgets interface `ifindex`: its frames go to the kernel again.
    pub fn remove_port(&self, ifindex: u32) -> Result<()> {
        if ifindex < PORT_ARRAY_SIZE {
            // An array entry cannot be deleted: role 0 is "not a port".
            let none = PortValue {
                role: 0,
                port_index: 0,
            };
            return self.write_port(ifindex, &none);
        }
        delete(
            &self.skel().maps.xvs_ports,
            "xvs_ports",
            &ifindex.to_ne_bytes(),
        )
    }

    /// Writes the (port, VID 0) attachment: 0 none, else
    /// `UNTAGGED_PRESENT | bd`.
    fn write_untagged(&self, port_index: u32, value: u64) -> Result<()> {
        update(
            &self.skel().maps.xvs_untagged,
            "xvs_untagged",
            &port_index.to_ne_bytes(),
            &value.to_ne_bytes(),
        )
    }

    /// Writes `ifindex`'s entry where the program looks for it: the array
    /// for small ifindexes, else the hash.
    fn write_port(&self, ifindex: u32, value: &PortValue) -> Result<()> {
        let maps = &self.skel().maps;
        let (map, name) = if ifindex < PORT_ARRAY_SIZE {
            (&maps.xvs_ports_array, "xvs_ports_array")
        } else {
            (&maps.xvs_ports, "xvs_ports")
        };
        update(map, name, &ifindex.to_ne_bytes(), &value.to_bytes())
    }

    /// Adds one of this node's VTEP addresses (VXLAN is decapsulated only
    /// when addressed to one of them).
    pub fn add_local_vtep(&self, addr: IpAddr) -> Result<()> {
        let key = VtepAddr::from_ip(addr);
        update(
            &self.skel().maps.xvs_local_vteps,
            "xvs_local_vteps",
            &key.addr,
            &1u32.to_ne_bytes(),
        )?;
        // After the hash: the hint only ever holds an address the hash has.
        if self.vtep_hint()? == [0; 16] && key.addr != [0; 16] {
            self.set_vtep_hint(&key.addr)?;
        }
        Ok(())
    }

    /// The address in `xvs_vtep_hint` (all zero: none).
    fn vtep_hint(&self) -> Result<[u8; 16]> {
        let value = self
            .skel()
            .maps
            .xvs_vtep_hint
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                map: "xvs_vtep_hint",
                op: "lookup",
                source,
            })?;
        let mut addr = [0u8; 16];
        if let Some(v) = value.filter(|v| v.len() == addr.len()) {
            addr.copy_from_slice(&v);
        }
        Ok(addr)
    }

    fn set_vtep_hint(&self, addr: &[u8; 16]) -> Result<()> {
        update(
            &self.skel().maps.xvs_vtep_hint,
            "xvs_vtep_hint",
            &0u32.to_ne_bytes(),
            addr,
        )
    }

    /// Removes a local VTEP address.
    pub fn remove_local_vtep(&self, addr: IpAddr) -> Result<()> {
        let key = VtepAddr::from_ip(addr);
        // Before the hash: the hint never outlives the hash's entry.
        if self.vtep_hint()? == key.addr {
            self.set_vtep_hint(&[0; 16])?;
        }
        delete(
            &self.skel().maps.xvs_local_vteps,
            "xvs_local_vteps",
            &key.addr,
        )
    }

    /// Maps VXLAN network identifier `vni` to bridge domain `bd`.
    pub fn set_vni(&self, vni: u32, bd: u32) -> Result<()> {
        check_vni(vni)?;
        let mut t = self.tables();
        update(
            &self.skel().maps.xvs_vnis,
            "xvs_vnis",
            &vni.to_ne_bytes(),
            &bd.to_ne_bytes(),
        )?;
        // After the hash: the direct table only ever caches what it holds.
        self.direct_set(&mut t, Which::Vnis, vni, bd)
    }

    /// Unmaps `vni`: its frames are dropped and counted as unknown VNI.
    pub fn remove_vni(&self, vni: u32) -> Result<()> {
        check_vni(vni)?;
        let mut t = self.tables();
        // Before the hash: the direct table never outlives its entry.
        self.direct_remove(&mut t, Which::Vnis, vni)?;
        delete(&self.skel().maps.xvs_vnis, "xvs_vnis", &vni.to_ne_bytes())
    }

    /// How full the direct-mapped tables in front of the VNI and
    /// attachment hashes are: keys found with one array lookup (`placed`)
    /// and keys left to the hash.
    pub fn direct_tables(&self) -> DirectTables {
        let t = self.tables();
        DirectTables {
            vnis: t.vnis.stats(),
            attachments: t.attachments.stats(),
        }
    }

    /// The direct-table state, whoever panicked while holding it (every
    /// write leaves it consistent with the kernel's maps).
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `key` (already in the hash) its slot. Never fails: if the
    /// kernel refuses a slot write the table is off (hashes only, always
    /// correct) until its next layout, and the key is found in the hash.
    fn direct_set(&self, t: &mut Tables, which: Which, key: u32, bd: u32) -> Result<()> {
        let plan = t.table(which).plan_set(key, bd);
        match self.write_plan(t, which, &plan) {
            Ok(()) => t.table(which).commit_set(key, bd, &plan),
            Err(e) => {
                tracing::warn!(table = ?which, key, error = %e, "direct-mapped table write failed: hash only");
                t.table(which).commit_set(key, bd, &Plan::default());
            }
        }
        Ok(())
    }

    /// Empties `key`'s slot before the hash entry goes. On failure the
    /// key stays (in the hash and perhaps its slot) and the caller must
    /// not delete it from the hash.
    fn direct_remove(&self, t: &mut Tables, which: Which, key: u32) -> Result<()> {
        let plan = t.table(which).plan_remove(key);
        self.write_plan(t, which, &plan)?;
        t.table(which).commit_remove(key, &plan);
        Ok(())
    }

    /// Writes `plan`'s slots under the sequence lock: `table_gen` odd (the
    /// program uses the hashes), the slots, then the layout and `table_gen`
    /// even. If a slot write fails the table is turned off (seed 0) and
    /// forgotten, which is always correct: the hashes hold every entry.
    fn write_plan(&self, t: &mut Tables, which: Which, plan: &Plan) -> Result<()> {
        if plan.is_empty() {
            return Ok(());
        }
        let (map, name) = match which {
            Which::Vnis => (&self.skel().maps.xvs_vni_direct, "xvs_vni_direct"),
            Which::Attachments => (&self.skel().maps.xvs_attach_direct, "xvs_attach_direct"),
        };
        let mut cfg = t.config;
        cfg.table_gen = cfg.table_gen.wrapping_add(1) | 1;
        self.write_config(&cfg)?;
        t.config = cfg;
        let slots = plan.writes.iter().try_for_each(|(idx, value)| {
            update(map, name, &idx.to_ne_bytes(), &value.to_ne_bytes())
        });
        let layout = match slots {
            Ok(()) => plan.layout,
            Err(_) => Default::default(),
        };
        match which {
            Which::Vnis => (cfg.vni_seed, cfg.vni_shift) = (layout.seed, layout.shift()),
            Which::Attachments => {
                (cfg.attach_seed, cfg.attach_shift) = (layout.seed, layout.shift())
            }
        }
        cfg.table_gen = cfg.table_gen.wrapping_add(1);
        let done = self.write_config(&cfg);
        if done.is_ok() {
            t.config = cfg;
        }
        if slots.is_err() || done.is_err() {
            // table_gen is still odd if the last write failed: hashes only.
            t.table(which).reset();
        }
        slots.and(done)
    }

    fn write_config(&self, cfg: &ConfigValue) -> Result<()> {
        update(
            &self.skel().maps.xvs_config,
            "xvs_config",
            &0u32.to_ne_bytes(),
            &cfg.to_bytes(),
        )
    }

    /// Attaches (access port `port_index`, VLAN `vid`) to bridge domain
    /// `bd`; `vid` 0 is the port's untagged (and priority-tagged) traffic.
    pub fn set_attachment(&self, port_index: u32, vid: u16, bd: u32) -> Result<()> {
        check_port_index(port_index)?;
        check_vid(vid)?;
        if vid == 0 {
            return self.write_untagged(port_index, UNTAGGED_PRESENT | u64::from(bd));
        }
        let key = AttachKey {
            port_index,
            vid,
            pad: 0,
        };
        let mut t = self.tables();
        update(
            &self.skel().maps.xvs_attachments,
            "xvs_attachments",
            &key.to_bytes(),
            &bd.to_ne_bytes(),
        )?;
        // After the hash, as for VNIs.
        let direct = attach_key(port_index, vid);
        self.direct_set(&mut t, Which::Attachments, direct, bd)
    }

    /// Removes an attachment: its frames are dropped and counted.
    pub fn remove_attachment(&self, port_index: u32, vid: u16) -> Result<()> {
        check_vid(vid)?;
        if vid == 0 {
            // No port index ≥ 256 can have been set: nothing to remove.
            if port_index >= MAX_PORTS {
                return Ok(());
            }
            return self.write_untagged(port_index, 0);
        }
        let key = AttachKey {
            port_index,
            vid,
            pad: 0,
        };
        let mut t = self.tables();
        if port_index < MAX_PORTS {
            // Before the hash, as for VNIs. (No port index ≥ 256 was set.)
            self.direct_remove(&mut t, Which::Attachments, attach_key(port_index, vid))?;
        }
        delete(
            &self.skel().maps.xvs_attachments,
            "xvs_attachments",
            &key.to_bytes(),
        )
    }

    /// Sets the VXLAN UDP destination port (4789 after load).
    pub fn set_vxlan_port(&self, port: u16) -> Result<()> {
        if port == 0 {
            return Err(Error::InvalidArgument {
                what: "VXLAN UDP port",
                value: "0".into(),
            });
        }
        let mut t = self.tables();
        let cfg = ConfigValue {
            vxlan_port: port,
            ..t.config
        };
        self.write_config(&cfg)?;
        t.config = cfg;
        Ok(())
    }

    /// Registers the AF_XDP socket `xsk`, bound to port `port_index`'s
    /// interface at RX queue `queue`: switched frames that port receives on
    /// that queue go to it (in the [`xsk_slot`] of the pair). The kernel
    /// keeps its own reference to the socket.
    pub fn set_xsk(&self, port_index: u32, queue: u32, xsk: BorrowedFd<'_>) -> Result<()> {
        let slot = slot_of(port_index, queue)?;
        let fd = xsk.as_raw_fd() as u32;
        update(
            &self.skel().maps.xvs_xsks,
            "xvs_xsks",
            &slot.to_ne_bytes(),
            &fd.to_ne_bytes(),
        )
    }

    /// Unregisters the socket of (port, RX queue); that port's frames on
    /// that queue are then dropped and counted as `redirect_failed`.
    pub fn remove_xsk(&self, port_index: u32, queue: u32) -> Result<()> {
        let slot = slot_of(port_index, queue)?;
        delete(&self.skel().maps.xvs_xsks, "xvs_xsks", &slot.to_ne_bytes())
    }

    /// Reads every counter, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let map = &self.skel().maps.xvs_counters;
        let per_cpu = map
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                map: "xvs_counters",
                op: "lookup",
                source,
            })?
            .unwrap_or_default();
        let mut values = [0u64; Counter::COUNT];
        for block in &per_cpu {
            // One CPU's block: u64 per counter, in index order.
            for (v, b) in values.iter_mut().zip(block.chunks_exact(8)) {
                *v += u64::from_ne_bytes(b.try_into().expect("chunks of 8"));
            }
        }
        Ok(Counters::from_values(values))
    }
}

#[cfg(test)]
mod tests {
    use xvs_testkit::frames::{udp4, vm_frame, vxlan_payload, REMOTE4, VTEP4};

    use super::*;
    use crate::direct::slot_value;

    /// The bridge domain a VXLAN frame with `vni` is switched to on the
    /// loopback (an uplink here).
    fn bd_of(cls: &Classifier, vni: u32) -> Option<u32> {
        let frame = udp4(
            &[],
            REMOTE4,
            VTEP4,
            4789,
            &vxlan_payload(vni, &vm_frame(&[])),
        );
        cls.test_run(&frame, 1, 0).unwrap().meta().map(|m| m.bd)
    }

    /// Overwrites the slot the VNI table gives `vni` with `value`.
    fn poke_slot(cls: &Classifier, vni: u32, value: u64) {
        let t = cls.tables();
        let l = t.vnis.layout();
        assert_ne!(l.seed, 0, "a table is in use");
        update(
            &cls.skel().maps.xvs_vni_direct,
            "xvs_vni_direct",
            &l.index(vni).to_ne_bytes(),
            &value.to_ne_bytes(),
        )
        .unwrap();
    }

    /// The program believes a slot that holds the frame's VNI (so the
    /// direct table really is the fast path), ignores one holding another
    /// key, and asks the hash while `table_gen` is odd.
    #[test]
    fn the_program_uses_a_matching_slot_and_the_hash_while_the_lock_is_held() {
        if !xvs_testkit::privileged(
            "the_program_uses_a_matching_slot_and_the_hash_while_the_lock_is_held",
        ) {
            return;
        }
        let cls = Classifier::load().unwrap();
        cls.add_local_vtep(VTEP4.into()).unwrap();
        cls.set_port(1, PortRole::Uplink, 0).unwrap();
        cls.set_vni(100, 1).unwrap();
        assert_eq!(bd_of(&cls, 100), Some(1));

        // A slot saying bridge domain 99 (the hash says 1): believed.
        poke_slot(&cls, 100, slot_value(100, 99));
        assert_eq!(bd_of(&cls, 100), Some(99), "the slot is the fast path");
        // A slot holding another VNI: the hash.
        poke_slot(&cls, 100, slot_value(101, 99));
        assert_eq!(bd_of(&cls, 100), Some(1));

        // Sequence lock held (odd): the hash, whatever the slot says.
        poke_slot(&cls, 100, slot_value(100, 99));
        let mut cfg = cls.tables().config;
        cfg.table_gen |= 1;
        cls.write_config(&cfg).unwrap();
        assert_eq!(bd_of(&cls, 100), Some(1), "odd table_gen: hash only");
        cfg.table_gen += 1;
        cls.write_config(&cfg).unwrap();
        assert_eq!(bd_of(&cls, 100), Some(99));

        // Seed 0: no table.
        cfg.vni_seed = 0;
        cls.write_config(&cfg).unwrap();
        assert_eq!(bd_of(&cls, 100), Some(1), "seed 0: hash only");
    }

    /// The same for tagged attachments: key `port << 12 | vid`.
    #[test]
    fn tagged_frames_use_a_matching_attachment_slot_and_the_hash_otherwise() {
        if !xvs_testkit::privileged(
            "tagged_frames_use_a_matching_attachment_slot_and_the_hash_otherwise",
        ) {
            return;
        }
        let cls = Classifier::load().unwrap();
        cls.set_port(1, PortRole::Access, 4).unwrap();
        cls.set_attachment(4, 10, 1).unwrap();
        let bd = |cls: &Classifier| {
            let out = cls.test_run(&vm_frame(&[10]), 1, 0).unwrap();
            out.meta().map(|m| m.bd)
        };
        assert_eq!(bd(&cls), Some(1));
        let key = attach_key(4, 10);
        let poke = |cls: &Classifier, value: u64| {
            let l = cls.tables().attachments.layout();
            assert_ne!(l.seed, 0, "a table is in use");
            update(
                &cls.skel().maps.xvs_attach_direct,
                "xvs_attach_direct",
                &l.index(key).to_ne_bytes(),
                &value.to_ne_bytes(),
            )
            .unwrap();
        };
        poke(&cls, slot_value(key, 77));
        assert_eq!(bd(&cls), Some(77), "the slot is the fast path");
        poke(&cls, slot_value(attach_key(4, 11), 77));
        assert_eq!(bd(&cls), Some(1), "a foreign slot: the hash");
        poke(&cls, slot_value(key, 77));
        let mut cfg = cls.tables().config;
        cfg.table_gen |= 1;
        cls.write_config(&cfg).unwrap();
        assert_eq!(bd(&cls), Some(1), "odd table_gen: hash only");
    }
}
