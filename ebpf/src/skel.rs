//! The libbpf-rs skeleton generated from `src/bpf/xvs_xdp.bpf.c` by
//! `build.rs`: the BPF object's bytes, its maps and program, and Rust
//! definitions of the ABI types as clang laid them out.

#![allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    unsafe_op_in_unsafe_fn,
    non_camel_case_types,
    dead_code,
    reason = "generated code"
)]

include!(concat!(env!("OUT_DIR"), "/xvs_xdp.skel.rs"));
