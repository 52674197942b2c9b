//! Protocol reply → what xvsctl prints: aligned tables for people, JSON
//! with `--json`.

use std::fmt::Write;

use xvs_control::proto::{Counter, FdbEntry, FdbKind, Reply};

/// Renders a reply. Commands that change state print nothing on success.
pub fn render(reply: &Reply, json: bool) -> anyhow::Result<String> {
    let mut out = match (reply, json) {
        (Reply::Done, _) => return Ok(String::new()),
        (Reply::Config(text), _) => text.clone(),
        (Reply::Show(v), true) => serde_json::to_string_pretty(v)?,
        (Reply::Stats(c), true) => serde_json::to_string_pretty(c)?,
        (Reply::Fdb(e), true) => serde_json::to_string_pretty(e)?,
        (Reply::Show(v), false) => show_text(v),
        (Reply::Stats(c), false) => stats_table(c),
        (Reply::Fdb(e), false) => fdb_table(e),
        (Reply::Trace(t), true) => serde_json::to_string_pretty(t)?,
        (Reply::Trace(t), false) => crate::trace::text(t),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Formats rows into columns padded to the widest cell, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&width) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn fdb_table(entries: &[FdbEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let place = match (&e.port, e.vlan, e.vtep) {
                (Some(p), Some(v), _) => format!("{p} vlan {v}"),
                (Some(p), None, _) => p.clone(),
                (None, _, Some(ip)) => format!("vtep {ip}"),
                _ => "-".into(),
            };
            let kind = match e.kind {
                FdbKind::Learned => "learned",
                FdbKind::Static => "static",
            };
            let age = e.age_secs.map_or("-".into(), |a| a.to_string());
            vec![e.bd.clone(), e.mac.to_string(), kind.into(), place, age]
        })
        .collect();
    let mut out = table(&["BD", "MAC", "KIND", "WHERE", "AGE"], &rows);
    let _ = writeln!(out, "{} entries", entries.len());
    out
}

fn stats_table(counters: &[Counter]) -> String {
    let rows: Vec<Vec<String>> = counters
        .iter()
        .map(|c| {
            vec![
                c.scope.clone(),
                c.instance.clone(),
                c.name.clone(),
                c.value.to_string(),
            ]
        })
        .collect();
    table(&["SCOPE", "INSTANCE", "COUNTER", "VALUE"], &rows)
}

/// `show` is free-form JSON; print it as indented `key: value` lines.
fn show_text(v: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, indent: usize, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if v.is_object() || v.is_array() {
                        let _ = writeln!(out, "{:indent$}{k}:", "");
                        walk(v, indent + 2, out);
                    } else {
                        let _ = writeln!(out, "{:indent$}{k}: {}", "", scalar(v));
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    if item.is_object() || item.is_array() {
                        let _ = writeln!(out, "{:indent$}-", "");
                        walk(item, indent + 2, out);
                    } else {
                        let _ = writeln!(out, "{:indent$}- {}", "", scalar(item));
                    }
                }
            }
            other => {
                let _ = writeln!(out, "{:indent$}{}", "", scalar(other));
            }
        }
    }
    fn scalar(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    walk(v, 0, &mut out);
    out
}
