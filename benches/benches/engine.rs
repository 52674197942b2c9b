//! The forwarding engine per frame: one 64-byte frame through learn +
//! lookup + decide + rewrite. See `docs/performance.md` for the figures and
//! the 67 ns budget of 10 GbE at 64 bytes.
//!
//! `XVS_BENCH_CLOCK=cpu` measures the benchmark thread's CPU time instead of
//! wall-clock time: on a machine shared with other busy processes, wall time
//! also counts the time slices the thread spent waiting for a core.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};
use xvs_benches::Scenario;

fn engine<M: Measurement>(c: &mut Criterion<M>) {
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

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
struct ThreadCpuTime;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant the kernel supports for every thread.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNanos
    }
}

/// Formats CPU nanoseconds like criterion formats wall time.
struct CpuNanos;

impl ValueFormatter for CpuNanos {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if ns < 1e3 {
            (1.0, "ns")
        } else if ns < 1e6 {
            (1e-3, "µs")
        } else {
            (1e-6, "ms")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => {
                n as f64
            }
        };
        values.iter_mut().for_each(|v| *v = per * 1e3 / *v);
        "M/s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

// What `criterion_group!`/`criterion_main!` would generate, minus an
// undocumented public function, plus the choice of clock.
fn main() {
    if std::env::var("XVS_BENCH_CLOCK").is_ok_and(|v| v == "cpu") {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        engine(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(WallTime)
            .configure_from_args();
        engine(&mut c);
        c.final_summary();
    }
}
