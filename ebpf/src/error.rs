//! The loader's errors: each names the interface or map involved and the
//! cause.

use std::io;

use crate::attach::XdpMode;

/// Everything that can go wrong loading, configuring or attaching the
/// classifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The interface does not exist (in the calling thread's namespace).
    #[error("no such interface {iface:?}")]
    NoSuchInterface {
        /// The name asked for.
        iface: String,
    },
    /// The embedded BPF object could not be opened (parsed by libbpf).
    #[error("opening the BPF object: {source}")]
    Open {
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A map's key or value size (or entry count) differs from what the
    /// Rust ABI in `abi.rs` expects.
    #[error("map {map}: {what} is {actual} in the object, {expected} in the Rust ABI")]
    MapLayout {
        /// The map.
        map: &'static str,
        /// `"key size"`, `"value size"` or `"entries"`.
        what: &'static str,
        /// Size in the BPF object.
        actual: u32,
        /// Size of the Rust mirror.
        expected: u32,
    },
    /// The kernel refused to load the program (or create its maps).
    #[error("loading the XDP program: {source}\nverifier log:\n{log}")]
    Load {
        /// The verifier's log (empty when the failure was not the verifier's).
        log: String,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The interface (or its driver) does not support the requested mode.
    #[error("interface {iface}: XDP {mode} mode not supported: {source}")]
    ModeNotSupported {
        /// The interface.
        iface: String,
        /// The mode that was refused.
        mode: XdpMode,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Attaching failed for another reason (e.g. a program already attached).
    #[error("interface {iface}: attaching XDP in {mode} mode: {source}")]
    Attach {
        /// The interface.
        iface: String,
        /// The mode that was asked for.
        mode: XdpMode,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A map update, delete or lookup failed.
    #[error("map {map}: {op}: {source}")]
    Map {
        /// The map.
        map: &'static str,
        /// What was attempted (`"update"`, `"delete"`, `"lookup"`).
        op: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A configuration value is out of range (e.g. a VNI > 2^24 − 1).
    #[error("invalid {what}: {value}")]
    InvalidArgument {
        /// What was out of range.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("test run: {source}")]
    TestRun {
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
