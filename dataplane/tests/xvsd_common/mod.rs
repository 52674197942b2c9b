//! Shared by the xvsd integration tests: the daemon as a child process in a
//! namespace (stopped and cleaned up even when a test fails), xvsctl, and
//! the test frames sent and received with [`RawSocket`].
//!
//! Every wait is bounded; frames are only sent inside namespaces the tests
//! create.

#![allow(dead_code)] // each test file uses its own subset

pub mod vxlan;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use xvs_control::client::Client;
use xvs_control::proto::{Counter, FdbEntry, Reply, Request};
use xvs_testkit::{unique_name, Netns, RawFrame, RawSocket};

/// Local experimental ethertype: nothing else in the namespace sends it.
pub const ETHERTYPE: u16 = 0x88b5;
/// UDP destination port of [`udp_frame`]s.
pub const TEST_UDP_PORT: u16 = 4242;

/// A namespace with IPv6 off (no router solicitations or MLD on veths).
pub fn quiet_netns(prefix: &str) -> Netns {
    let ns = Netns::new(prefix);
    for k in ["all", "default"] {
        ns.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{k}.disable_ipv6=1")],
        );
    }
    ns
}

/// Adds a veth pair `a`/`b` to `ns` with `queues` RX and TX queues each,
/// both up.
pub fn veth(ns: &Netns, a: &str, b: &str, queues: u32) {
    let q = queues.to_string();
    ns.ip(&[
        "link",
        "add",
        a,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        b,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
    ]);
    ns.ip(&["link", "set", a, "up"]);
    ns.ip(&["link", "set", b, "up"]);
}

/// The xvsd binary Cargo built for these tests.
pub fn xvsd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xvsd"))
}

/// The xvsctl binary. Cargo gives tests only their own package's binaries,
/// so it is looked for next to xvsd (where `cargo build`/`cargo test
/// --workspace` put it, into the same target directory); when it is not
/// there, it is built once into a target directory of its own under this
/// one (a nested build into the same directory would wait on the running
/// cargo's lock).
pub fn xvsctl_bin() -> PathBuf {
    let xvsd = xvsd_bin();
    let dir = xvsd.parent().expect("xvsd has a directory");
    let next = dir.join("xvsctl");
    if next.is_file() {
        return next;
    }
    let target = dir.join("xvsd-tests-xvsctl");
    let built = target.join("debug").join("xvsctl");
    if built.is_file() {
        return built;
    }
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "build",
            "--offline",
            "-q",
            "-p",
            "xvs-control",
            "--bin",
            "xvsctl",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cargo}: {e}"));
    assert!(
        out.status.success() && built.is_file(),
        "building xvsctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    built
}

/// Spawns xvsd in `ns` on `config` and `socket` with `extra` flags, its
/// output into `log`.
fn spawn_xvsd(
    ns: &Netns,
    config: &Path,
    socket: &Path,
    log: std::fs::File,
    extra: &[&str],
) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(xvsd_bin())
        .arg("--config")
        .arg(config)
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .expect("spawn xvsd")
}

/// A running xvsd inside a namespace. Dropping it stops it (SIGTERM, then
/// SIGKILL after 5 s) and removes its files; [`Xvsd::stop`] does the same
/// and reports how it went.
pub struct Xvsd {
    child: Option<Child>,
    dir: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
}

impl Xvsd {
    /// Writes `config` and starts xvsd in `ns` with `extra` flags; returns
    /// once its control socket answers (at most 15 s).
    pub fn start(ns: &Netns, config: &str, extra: &[&str]) -> Xvsd {
        let dir = std::env::temp_dir().join(format!("xvsd-test-{}", unique_name("d")));
        std::fs::create_dir_all(&dir).expect("test dir");
        let cfg = dir.join("xvsd.toml");
        std::fs::write(&cfg, config).expect("write config");
        let socket = dir.join("xvsd.sock");
        let log = std::fs::File::create(dir.join("xvsd.log")).expect("log file");
        let child = spawn_xvsd(ns, &cfg, &socket, log, extra);
        let mut d = Xvsd {
            child: Some(child),
            dir,
            socket,
        };
        d.wait_ready();
        d
    }

    /// Waits (at most 15 s) until the control socket answers.
    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if self.socket.exists() && Client::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("xvsd exited ({st}) before serving:\n{}", self.log());
            }
            assert!(
                Instant::now() < end,
                "xvsd did not open its socket in 15 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no clean-up of any kind. Waits (at most 5 s) for the exit.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("xvsd running");
        child.kill().expect("SIGKILL xvsd");
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st;
            }
            assert!(Instant::now() < end, "xvsd survived SIGKILL for 5 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts xvsd again (after [`Xvsd::kill9`]) in `ns` with the same
    /// config file and socket path (the old socket file may still be
    /// there) and `extra` flags, logging to the same log; returns when the
    /// socket answers, with the instant the process was spawned.
    pub fn restart(&mut self, ns: &Netns, extra: &[&str]) -> Instant {
        assert!(self.child.is_none(), "xvsd is still running");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("xvsd.log"))
            .expect("log file");
        let t0 = Instant::now();
        self.child = Some(spawn_xvsd(
            ns,
            &self.dir.join("xvsd.toml"),
            &self.socket,
            log,
            extra,
        ));
        self.wait_ready();
        t0
    }

    /// Everything xvsd logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("xvsd.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// One request over the control socket.
    pub fn call(&self, req: &Request) -> Result<Reply, String> {
        let mut c = Client::connect(&self.socket).map_err(|e| e.to_string())?;
        c.call(req).map_err(|e| e.to_string())
    }

    /// `fdb show`.
    pub fn fdb(&self) -> Vec<FdbEntry> {
        match self.call(&Request::FdbShow { bd: None }) {
            Ok(Reply::Fdb(v)) => v,
            other => panic!("fdb show: {other:?}"),
        }
    }

    /// `stats`.
    pub fn stats(&self) -> Vec<Counter> {
        match self.call(&Request::Stats {}) {
            Ok(Reply::Stats(v)) => v,
            other => panic!("stats: {other:?}"),
        }
    }

    /// `show`, as JSON.
    pub fn show(&self) -> serde_json::Value {
        match self.call(&Request::Show {}) {
            Ok(Reply::Show(v)) => v,
            other => panic!("show: {other:?}\n{}", self.log()),
        }
    }

    /// `show`'s port named `name`.
    pub fn port(&self, name: &str) -> serde_json::Value {
        let v = self.show();
        v["ports"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no port {name} in {v}"))
    }

    /// Polls `show`'s port `name` every 20 ms until `ok` holds of it, for
    /// at most `wait` (panics saying it is not `what` by then); that port.
    pub fn wait_port(
        &self,
        name: &str,
        wait: Duration,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = Instant::now() + wait;
        loop {
            let p = self.port(name);
            if ok(&p) {
                return p;
            }
            assert!(
                Instant::now() < end,
                "port {name} not {what} after {wait:?}: {p}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the real xvsctl against this daemon.
    pub fn xvsctl(&self, args: &[&str]) -> Output {
        Command::new(xvsctl_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("spawn xvsctl")
    }

    /// Runs the real xvsctl against this daemon; panics (with its stderr
    /// and the daemon's log) if it fails.
    pub fn ctl(&self, args: &[&str]) {
        let out = self.xvsctl(args);
        assert!(
            out.status.success(),
            "xvsctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// xvsd's process id (`ip netns exec` execs it: the child's pid).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("xvsd running").id()
    }

    /// True while the process has not exited (it is not reaped here).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// xvsd's resident set size in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in:\n{status}"))
    }

    /// SIGTERM, then waits (at most 10 s) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let st = self.terminate(Duration::from_secs(10));
        st.unwrap_or_else(|| panic!("xvsd ignored SIGTERM for 10 s:\n{}", self.log()))
    }

    fn terminate(&mut self, wait: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // `ip netns exec` execs xvsd: the child's pid is xvsd's.
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + wait;
        while Instant::now() < end {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Xvsd {
    fn drop(&mut self) {
        if self.child.is_some() && self.terminate(Duration::from_secs(5)).is_none() {
            eprintln!("xvsd needed SIGKILL; log:\n{}", self.log());
        }
        if std::thread::panicking() {
            eprintln!("xvsd log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of one counter (0 when absent).
pub fn counter(stats: &[Counter], scope: &str, instance: &str, name: &str) -> u64 {
    stats
        .iter()
        .filter(|c| c.scope == scope && c.instance == instance && c.name == name)
        .map(|c| c.value)
        .sum()
}

/// A test frame: `dst`, `src`, our ethertype, then `seq` and filler.
pub fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(60)];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    f
}

/// An IPv4/UDP test frame to [`TEST_UDP_PORT`] from source port `sport`
/// (the flow hash, hence the veth queue, follows it), `seq` first in the
/// payload.
pub fn udp_frame(dst: [u8; 6], src: [u8; 6], seq: u32, sport: u16) -> Vec<u8> {
    let payload_len = 32usize;
    let mut f = vec![0u8; 14 + 20 + 8 + payload_len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 8 + payload_len) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 81, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 81, 0, 2]);
    let mut sum = 0u32;
    for w in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&TEST_UDP_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

/// True for our test frames: [`ETHERTYPE`], or IPv4/UDP to
/// [`TEST_UDP_PORT`].
pub fn is_test_frame(b: &[u8]) -> bool {
    if b.len() < 14 {
        return false;
    }
    if b[12..14] == ETHERTYPE.to_be_bytes() {
        return true;
    }
    b.len() >= 46
        && b[12..14] == [0x08, 0x00]
        && b[23] == 17
        && b[36..38] == TEST_UDP_PORT.to_be_bytes()
}

/// The sequence number of a test frame.
pub fn seq_of(b: &[u8]) -> u32 {
    let at = if b[12..14] == ETHERTYPE.to_be_bytes() {
        14
    } else {
        42
    };
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `f` with an 802.1Q tag for `vid` inserted after the MACs.
pub fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(f.len() + 4);
    t.extend_from_slice(&f[..12]);
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

/// Incoming test frames ([`is_test_frame`]) on `sock`, VLAN tags included,
/// until `want` arrived or `wait` passed.
pub fn recv_test(sock: &RawSocket, want: usize, wait: Duration) -> Vec<RawFrame> {
    sock.recv_matching(want, wait, is_test_frame)
}

/// A veth pair: `name` in `ns`, its peer `eth0` in `other`, both down.
pub fn veth_to_eth0(ns: &Netns, name: &str, other: &Netns) {
    ns.ip(&[
        "link",
        "add",
        name,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        other.name(),
    ]);
}

/// A VM: moves a new veth's `eth0` end into `vm` with `mac` and `cidr`
/// (checksum offload off, so frames leave complete), the other end `pa`
/// stays in `sw` (an xvsd access port), both up.
pub fn attach_vm(sw: &Netns, pa: &str, vm: &Netns, cidr: &str, mac: &str) {
    veth_to_eth0(sw, pa, vm);
    sw.ip(&["link", "set", pa, "up"]);
    vm.ip(&["link", "set", "eth0", "address", mac, "up"]);
    vm.ip(&["addr", "add", cidr, "dev", "eth0"]);
    vm.exec("ethtool", &["-K", "eth0", "tx", "off"]);
}

/// A permanent neighbour entry in `vm` (no ARP while a test measures).
pub fn static_neighbour(vm: &Netns, addr: &str, mac: &str) {
    vm.ip(&[
        "neigh",
        "replace",
        addr,
        "lladdr",
        mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
}

/// `ping -c COUNT -i INTERVAL -W 2 DST` in `vm`; its standard output.
pub fn ping(vm: &Netns, dst: &str, count: u32, interval: &str) -> String {
    let c = count.to_string();
    let out = vm.exec_status(
        "ping",
        &["-n", "-q", "-c", &c, "-i", interval, "-W", "2", dst],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when `ping` output says every one of `count` echoes came back.
pub fn ping_whole(out: &str, count: u32) -> bool {
    out.contains(&format!("{count} packets transmitted, {count} received"))
}
