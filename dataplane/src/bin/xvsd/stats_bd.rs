//! Per bridge domain numbers for `xvsctl stats` and `/metrics`: FDB entries
//! (learned and static), learned MACs against the cap, from the FDB owner.

use xvs_control::proto::Counter;

use crate::control::Control;

impl Control {
    /// `bd` counters, one set per bridge domain of the running model:
    /// `fdb_entries`, `fdb_learned` and, for a capped domain, `max_macs`.
    pub(crate) fn bd_counters(&self) -> Result<Vec<Counter>, String> {
        let model = self.model();
        let fills = self.fdb.fills().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for b in model.bridge_domains() {
            let f = fills.iter().find(|f| f.bd == b.id);
            let (entries, learned) = f.map_or((0, 0), |f| (f.entries, u64::from(f.learned)));
            let mut push = |name: &str, value: u64| {
                out.push(Counter {
                    scope: "bd".into(),
                    instance: b.name.clone(),
                    name: name.into(),
                    value,
                })
            };
            push("fdb_entries", entries);
            push("fdb_learned", learned);
            if let Some(max) = b.max_macs {
                push("max_macs", u64::from(max));
            }
        }
        Ok(out)
    }
}
