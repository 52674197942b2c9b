//! A harness for instruction counting: runs N frames of one engine scenario
//! (the criterion benches' fixtures) inside one non-inlined function, so a
//! profiler can count just that function:
//!
//! ```text
//! cargo build --profile bench -p xvs-benches --example engine_count
//! valgrind --tool=callgrind --toggle-collect='*run_frames*' \
//!     target/release/examples/engine_count encap_64k 100000
//! ```
//!
//! Instructions per frame = the `Ir` callgrind reports / N. Unlike timings on
//! a shared machine, the count repeats exactly from run to run.
//! Scenarios: `encap_1mac`, `encap_64k`, `decap_1mac`, `decap_64k`, `flood_8`.

use std::hint::black_box;

use xvs_benches::Scenario;

/// Runs `n` frames; the function callgrind is told to count.
#[inline(never)]
fn run_frames(s: &mut Scenario, n: u64) -> u64 {
    let mut sent = 0u64;
    for _ in 0..n {
        sent += u64::from(black_box(s.step()).sent);
    }
    sent
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "encap_1mac".to_owned());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut s = match name.as_str() {
        "encap_1mac" => Scenario::known_unicast_encap(1),
        "encap_64k" => Scenario::known_unicast_encap(65_536),
        "decap_64k" => Scenario::decap_to_local(65_536),
        "decap_1mac" => Scenario::decap_to_local(2),
        "flood_8" => Scenario::flood(8),
        other => {
            eprintln!(
                "unknown scenario {other}: encap_1mac, encap_64k, decap_1mac, decap_64k, flood_8"
            );
            std::process::exit(2);
        }
    };
    // Warm the table and caches once (as criterion's warm-up does).
    run_frames(&mut s, n.min(65_536));
    let sent = run_frames(&mut s, n);
    let c = s.engine().counters();
    println!("{name}: {n} frames, {sent} sent, {} drops", c.drops());
}
