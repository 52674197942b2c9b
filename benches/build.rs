//! Compiles the benchmark sink `src/bpf/sink.bpf.c` with clang and
//! generates its libbpf-rs skeleton into `OUT_DIR` (included by the
//! `xvs-sink` binary). Same pattern as `ebpf/build.rs`.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/sink.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    // asm/types.h (pulled in by the UAPI headers) lives in the multiarch
    // include directory, which clang -target bpf does not search by itself.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");

    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([multiarch.as_str(), "-Wall", "-Wextra", "-Werror"])
        .build_and_generate(out.join("sink.skel.rs"))
        .unwrap_or_else(|e| panic!("building the BPF skeleton from {SRC}: {e:#}"));

    println!("cargo:rerun-if-changed=src/bpf");
}
