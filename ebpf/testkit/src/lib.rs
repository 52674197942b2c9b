//! Test support shared by xvs's privileged tests.
//!
//! * [`privileged`] gates a test that needs root (XDP attach, AF_XDP, network
//!   namespaces). Outside CI it skips with a `SKIPPED-PRIVILEGED` line; with
//!   `XVS_REQUIRE_PRIVILEGED=1` (set by `.ci/run`) a missing privilege fails
//!   the test instead, so CI can never go green on skipped privileged tests.
//! * [`Netns`] is a network namespace with a unique name that is deleted on
//!   drop, even while the test is panicking; [`Netns::run`] executes a closure
//!   on a thread that has entered the namespace.
//! * [`RawSocket`] is an `AF_PACKET` socket on one interface that injects
//!   Ethernet frames and receives them as [`RawFrame`]s, VLAN tag included.
//! * [`frames`] builds well-formed (and, patched, malformed) underlay and VM
//!   frames with etherparse, for the classifier table and the end-to-end
//!   hostile-traffic corpus.
//!
//! Tests only ever send to addresses inside namespaces they created.

use std::ffi::CString;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub mod frames;
mod packet;

pub use packet::{RawFrame, RawSocket, RECV_BUFFER, RECV_TICK};

/// Environment variable that turns a skipped privileged test into a failure.
pub const REQUIRE_ENV: &str = "XVS_REQUIRE_PRIVILEGED";

/// Returns true when the test may run privileged operations.
///
/// When not root: panics if [`REQUIRE_ENV`] is set, otherwise prints
/// `SKIPPED-PRIVILEGED <test>` and returns false (the caller returns early).
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v != "0") {
        panic!("{test}: privileged test needs root but {REQUIRE_ENV} is set");
    }
    eprintln!("SKIPPED-PRIVILEGED {test}: not root");
    false
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command and reports whether it succeeded, without panicking.
pub fn try_run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Makes a name unique to this process and call: `<prefix><pid>x<n>`,
/// short enough for an interface name (15 bytes) when `prefix` is ≤ 4 bytes.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id());
    assert!(name.len() <= 15, "name {name} too long for an interface");
    name
}

/// A network namespace that is deleted (with everything in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `xvs<prefix><pid>x<n>` and brings its
    /// loopback up.
    pub fn new(prefix: &str) -> Self {
        let name = format!("xvs{}", unique_name(prefix));
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip ARGS…` inside the namespace, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `CMD ARGS…` inside the namespace, panicking on failure.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", self.name.as_str(), cmd];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `CMD ARGS…` inside the namespace and returns its output, whatever
    /// its exit status.
    pub fn exec_status(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.name.as_str(), cmd])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("spawn {cmd} in {}: {e}", self.name))
    }

    /// Creates a veth pair `a`/`b` inside this namespace, both up.
    pub fn veth(&self, a: &str, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        self.ip(&["link", "set", a, "up"]);
        self.ip(&["link", "set", b, "up"]);
    }

    /// Returns the ifindex of `dev` inside this namespace.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.exec("cat", &[&format!("/sys/class/net/{dev}/ifindex")]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("ifindex of {dev}: {e}"))
    }

    /// Runs `f` on a new thread that has entered this namespace (setns only
    /// affects the calling thread, so the test's own thread stays put).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &str) {
    let c = CString::new(path).expect("namespace path has no NUL");
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is an open namespace file descriptor owned by this function.
    let rc = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` is open and not used after this point.
    unsafe { libc::close(fd) };
    assert!(rc == 0, "setns {path}: {err}");
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Never panic here: a drop during unwinding would abort the test run.
        if !try_run("ip", &["netns", "del", &self.name]) && !std::thread::panicking() {
            eprintln!("warning: could not delete netns {}", self.name);
        }
    }
}
