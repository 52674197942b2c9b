//! Benchmark support for xvs: fixtures shared by the criterion benches.
