//! The Prometheus endpoint: a scrape parses with the reference parser
//! (Python's `prometheus_client`), and carries every counter exactly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use xvs_control::metrics::{render, MetricsServer};
use xvs_control::proto::Counter;

fn counter(scope: &str, instance: &str, name: &str, value: u64) -> Counter {
    Counter {
        scope: scope.into(),
        instance: instance.into(),
        name: name.into(),
        value,
    }
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Parses exposition text with prometheus_client and prints
/// `family<TAB>type<TAB>sample<TAB>labels-json<TAB>value` per sample.
const PARSER: &str = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        print("\t".join([fam.name, fam.type, s.name, json.dumps(s.labels, sort_keys=True), repr(s.value)]))
"#;

fn parse_with_reference(text: &str) -> Vec<String> {
    // Debian's python3 carries python3-prometheus-client (scripts/deps.sh).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference parser refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn scrape_parses_with_the_reference_parser_and_carries_every_counter() {
    let scrapes = Arc::new(AtomicU64::new(0));
    let source = {
        let scrapes = scrapes.clone();
        Arc::new(move || {
            let n = scrapes.fetch_add(1, Ordering::Relaxed);
            vec![
                counter("xdp", "", "decap_v4", 1000 + n),
                counter("xdp", "", "drop_unknown_vni", 7),
                counter("port", "eth1", "rx_frames", 42),
                counter("port", "tap \"vm\"\\1", "rx_frames", 43),
                counter("fdb", "blue", "learned", 3),
                counter("worker", "0", "drop-mtu", 2),
            ]
        })
    };
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), source).unwrap();
    let resp = get(server.addr(), "/metrics");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");

    let samples = parse_with_reference(body);
    let expect = [
        "xvs_fdb_learned\tcounter\txvs_fdb_learned_total\t{\"instance\": \"blue\"}\t3.0",
        "xvs_port_rx_frames\tcounter\txvs_port_rx_frames_total\t{\"instance\": \"eth1\"}\t42.0",
        "xvs_port_rx_frames\tcounter\txvs_port_rx_frames_total\t{\"instance\": \"tap \\\"vm\\\"\\\\1\"}\t43.0",
        "xvs_worker_drop_mtu\tcounter\txvs_worker_drop_mtu_total\t{\"instance\": \"0\"}\t2.0",
        "xvs_xdp_decap_v4\tcounter\txvs_xdp_decap_v4_total\t{}\t1000.0",
        "xvs_xdp_drop_unknown_vni\tcounter\txvs_xdp_drop_unknown_vni_total\t{}\t7.0",
    ];
    assert_eq!(samples, expect, "body:\n{body}");

    // Each scrape asks the source again.
    let again = get(server.addr(), "/metrics");
    assert!(again.contains("xvs_xdp_decap_v4_total 1001"), "{again}");
    assert!(get(server.addr(), "/other").starts_with("HTTP/1.1 404"));
}

#[test]
fn one_family_header_per_metric_in_a_stable_order() {
    let c = vec![
        counter("port", "b", "rx_frames", 1),
        counter("port", "a", "rx_frames", 2),
        counter("bd", "x", "flooded", 3),
    ];
    let text = render(&c);
    assert_eq!(
        text.matches("# TYPE xvs_port_rx_frames_total counter")
            .count(),
        1
    );
    assert!(text.find("xvs_bd_flooded").unwrap() < text.find("xvs_port_rx").unwrap());
    assert_eq!(render(&c), text);
    assert_eq!(parse_with_reference(&text).len(), 3);
}

#[test]
fn sizes_are_gauges_and_parse_as_such() {
    let text = render(&[
        counter("bd", "blue", "fdb_entries", 12),
        counter("bd", "blue", "fdb_learned", 10),
        counter("bd", "blue", "max_macs", 100),
        counter("fdb", "", "entries", 12),
        counter("fdb", "", "learned", 40),
        counter("worker", "0", "umem_frames_free", 4000),
    ]);
    let parsed = parse_with_reference(&text);
    for want in [
        "xvs_bd_fdb_entries\tgauge\txvs_bd_fdb_entries\t{\"instance\": \"blue\"}\t12.0",
        "xvs_bd_fdb_learned\tgauge\txvs_bd_fdb_learned\t{\"instance\": \"blue\"}\t10.0",
        "xvs_bd_max_macs\tgauge\txvs_bd_max_macs\t{\"instance\": \"blue\"}\t100.0",
        "xvs_fdb_entries\tgauge\txvs_fdb_entries\t{}\t12.0",
        "xvs_fdb_learned\tcounter\txvs_fdb_learned_total\t{}\t40.0",
        "xvs_worker_umem_frames_free\tgauge\txvs_worker_umem_frames_free\t{\"instance\": \"0\"}\t4000.0",
    ] {
        assert!(parsed.iter().any(|l| l == want), "{want} not in {parsed:#?}\n{text}");
    }
}
