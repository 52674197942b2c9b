//! Counters in the Prometheus text exposition format, and the small HTTP
//! endpoint `xvsd --metrics ADDR` serves them on.
//!
//! Each [`Counter`] `{scope, instance, name, value}` becomes one sample of
//! the family `xvs_<scope>_<name>_total`, labelled `instance="…"` when the
//! counter belongs to one port, worker or bridge domain. The few values
//! that go down as well as up ([`GAUGES`]: FDB sizes, free UMEM frames, a
//! cap, a port's link being up) are gauges instead, `xvs_<scope>_<name>`
//! without `_total`. Families are emitted once each, with `# HELP` and
//! `# TYPE` lines, in a stable order, so a scrape diffs cleanly.
//!
//! The endpoint answers `GET /metrics` (and `/`) and nothing else, one
//! request per connection, with read/write timeouts so a stuck scraper
//! cannot pile up threads: it is a diagnostic port, not a web server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::proto::Counter;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `(scope, name)` of the values that are gauges, not counters.
pub const GAUGES: &[(&str, &str)] = &[
    ("fdb", "entries"),
    ("worker", "umem_frames_free"),
    ("bd", "fdb_entries"),
    ("bd", "fdb_learned"),
    ("bd", "max_macs"),
    ("link", "up"),
];

/// True for a gauge ([`GAUGES`]).
pub fn is_gauge(c: &Counter) -> bool {
    GAUGES.iter().any(|&(s, n)| c.scope == s && c.name == n)
}

/// Renders counters in the Prometheus text format.
pub fn render(counters: &[Counter]) -> String {
    let mut families: BTreeMap<String, Vec<&Counter>> = BTreeMap::new();
    for c in counters {
        let suffix = if is_gauge(c) { "" } else { "_total" };
        let family = format!("xvs_{}_{}{suffix}", sanitize(&c.scope), sanitize(&c.name));
        families.entry(family).or_default().push(c);
    }
    let mut out = String::new();
    for (family, samples) in families {
        let first = samples[0];
        let kind = if is_gauge(first) { "gauge" } else { "counter" };
        let _ = writeln!(
            out,
            "# HELP {family} xvs {} {kind} {}.",
            first.scope, first.name
        );
        let _ = writeln!(out, "# TYPE {family} {kind}");
        for c in samples {
            if c.instance.is_empty() {
                let _ = writeln!(out, "{family} {}", c.value);
            } else {
                let _ = writeln!(
                    out,
                    "{family}{{instance=\"{}\"}} {}",
                    escape_label(&c.instance),
                    c.value
                );
            }
        }
    }
    out
}

/// Metric names allow `[a-zA-Z0-9_]` (and `:`, reserved for rules).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Label values escape backslash, double quote and newline.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Where the endpoint gets its numbers: called once per scrape.
pub type Source = Arc<dyn Fn() -> Vec<Counter> + Send + Sync>;

/// A running metrics endpoint; stops on drop.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (e.g. `127.0.0.1:9417`; port 0 picks one) and
    /// serves scrapes on a background thread.
    pub fn start(addr: SocketAddr, source: Source) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xvs-metrics".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                if let Err(e) = serve(stream, &source) {
                                    tracing::debug!(error = %e, "metrics: scrape failed");
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "metrics: accept failed");
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                })?
        };
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one HTTP/1.x request.
fn serve(mut stream: TcpStream, source: &Source) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    // Read the request head (bounded); only its first line matters.
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, ctype, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics" | b"/")) => ("200 OK", CONTENT_TYPE, render(&source())),
        (Some(b"GET"), _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes())
}
