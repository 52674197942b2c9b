//! The forwarding engine per frame: one 64-byte frame through learn +
//! lookup + decide + rewrite. See `docs/performance.md` for the figures and
//! the 67 ns budget of 10 GbE at 64 bytes.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use xvs_benches::Scenario;

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));

    let mut s = Scenario::known_unicast_encap(1);
    g.bench_function("known_unicast_encap_1mac", |b| {
        b.iter(|| black_box(s.step()))
    });

    let mut s = Scenario::known_unicast_encap(65_536);
    g.bench_function("known_unicast_encap_64k_macs", |b| {
        b.iter(|| black_box(s.step()))
    });

    let mut s = Scenario::decap_to_local(65_536);
    g.bench_function("decap_to_local_64k_macs", |b| {
        b.iter(|| black_box(s.step()))
    });

    let mut s = Scenario::flood(8);
    g.bench_function("flood_8_vteps", |b| b.iter(|| black_box(s.step())));

    g.finish();
}

// What `criterion_group!`/`criterion_main!` would generate, minus an
// undocumented public function.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    engine(&mut c);
    c.final_summary();
}
