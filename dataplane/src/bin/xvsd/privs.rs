//! Dropping privileges once start-up is done.
//!
//! Start-up needs a lot (loading the classifier and creating its maps:
//! `CAP_BPF` + `CAP_PERFMON` or `CAP_SYS_ADMIN`; AF_XDP sockets:
//! `CAP_NET_RAW`; UMEM registration beyond `RLIMIT_MEMLOCK`:
//! `CAP_IPC_LOCK`; attaching XDP: `CAP_NET_ADMIN`). The running daemon
//! needs only [`KEPT`]. What it still does, and what that takes (measured
//! on Linux 6.18, `tests/xvsd_privs.rs`):
//! * re-attaching the classifier (the watchdog, `watch`) and attaching it
//!   to a port added live: `BPF_LINK_CREATE` with the program's fd, which
//!   xvsd holds: no capability at all;
//! * filling the classifier's maps (ports, VNIs, attachments, XSKMAP):
//!   through map fds xvsd holds: none;
//! * asking the kernel to resolve a next hop (`RTM_NEWNEIGH`), and
//!   busy-polling options above the system's defaults on the sockets of a
//!   port added live (`--busy-poll`): `CAP_NET_ADMIN`;
//! * opening AF_XDP sockets for a port added live: `CAP_NET_RAW`;
//! * registering a UMEM again when a port is added to a queue whose
//!   sockets were all closed: `CAP_IPC_LOCK` (AF_XDP still charges UMEM
//!   pages to `RLIMIT_MEMLOCK`, memcg accounting or not);
//! * pinning its own threads to CPUs, serving the control socket and the
//!   metrics endpoint (bound before the drop): none.
//!
//! [`drop_to_kept`] clears every other capability from the effective,
//! permitted, inheritable, ambient and bounding sets and sets
//! `no_new_privs`, so neither xvsd nor anything it could exec gets them
//! back. `docs/security.md` is the operator's view.
//!
//! Capabilities belong to threads, and new threads inherit their
//! creator's: the drop must run on the main thread before any other
//! thread exists, which [`drop_to_kept`] checks.

use std::io;

use anyhow::{bail, Context, Result};

/// `CAP_SETPCAP`: needed to shrink the bounding set.
const CAP_SETPCAP: u32 = 8;
/// `CAP_NET_ADMIN`.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_RAW`.
pub const CAP_NET_RAW: u32 = 13;
/// `CAP_IPC_LOCK`.
pub const CAP_IPC_LOCK: u32 = 14;

/// What the running daemon keeps, and why.
pub const KEPT: [(u32, &str); 3] = [
    (
        CAP_NET_ADMIN,
        "next-hop resolution (RTM_NEWNEIGH); busy-poll options of live ports",
    ),
    (CAP_NET_RAW, "AF_XDP sockets for ports added live"),
    (
        CAP_IPC_LOCK,
        "UMEM registration beyond RLIMIT_MEMLOCK for ports added live",
    ),
];

/// Capability names by number (`capabilities(7)`), for the log.
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The name of capability `cap`.
pub fn name(cap: u32) -> String {
    NAMES
        .get(cap as usize)
        .map_or_else(|| format!("cap_{cap}"), |n| (*n).to_owned())
}

/// The [`KEPT`] set as a 64-bit mask (bit n = capability n).
pub fn kept_mask() -> u64 {
    KEPT.iter().fold(0, |m, (c, _)| m | 1 << c)
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// This thread's (effective, permitted, inheritable) sets.
fn capget() -> io::Result<(u64, u64, u64)> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget(2) with a version-3 header reads two CapData words
    // into `d`, which is exactly that long; pid 0 is this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |f: fn(&CapData) -> u32| u64::from(f(&d[0])) | u64::from(f(&d[1])) << 32;
    Ok((
        join(|c| c.effective),
        join(|c| c.permitted),
        join(|c| c.inheritable),
    ))
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let word = |m: u64, i: u32| (m >> (32 * i)) as u32;
    let d = [0, 1].map(|i| CapData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: word(inheritable, i),
    });
    // SAFETY: capset(2) with a version-3 header reads two CapData words
    // from `d`; pid 0 is this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn prctl(op: libc::c_int, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the prctl operations used here take integer arguments only.
    let rc = unsafe { libc::prctl(op, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Threads of this process now.
fn threads() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

fn names(mask: u64) -> String {
    let v: Vec<String> = (0..64).filter(|c| mask & 1 << c != 0).map(name).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

/// Reduces this process to [`KEPT`] (or to what of it it has) and sets
/// `no_new_privs`. Must run before any other thread is spawned.
pub fn drop_to_kept() -> Result<()> {
    match threads() {
        Some(1) => {}
        Some(n) => bail!(
            "dropping capabilities with {n} threads running: they would keep theirs \
             (xvsd drops them before it spawns any thread)"
        ),
        None => tracing::warn!("cannot count threads (/proc); dropping capabilities anyway"),
    }
    let (eff, perm, _) = capget().context("capget")?;
    let keep = kept_mask() & perm;
    let last = last_cap().min(63);

    // The bounding set first: shrinking it needs CAP_SETPCAP, dropped below.
    let mut bset_kept = 0u64;
    for cap in 0..=last {
        if prctl(libc::PR_CAPBSET_READ, cap.into()).unwrap_or(0) != 1 {
            continue;
        }
        if keep & 1 << cap != 0 {
            bset_kept |= 1 << cap;
            continue;
        }
        if eff & 1 << CAP_SETPCAP == 0 {
            bset_kept |= 1 << cap;
            continue;
        }
        prctl(libc::PR_CAPBSET_DROP, cap.into())
            .with_context(|| format!("dropping {} from the bounding set", name(cap)))?;
    }
    if bset_kept & !keep != 0 {
        tracing::warn!(
            left = %names(bset_kept & !keep),
            "no cap_setpcap: the bounding set keeps what the service manager gave it"
        );
    }
    // Ambient capabilities would survive an exec of an unprivileged binary.
    if let Err(e) = prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _) {
        // EINVAL: a kernel without ambient capabilities (< 4.3).
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e).context("clearing the ambient set");
        }
    }
    capset(keep, keep, 0).context("capset")?;
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1).context("setting no_new_privs")?;

    let (e2, p2, i2) = capget().context("capget")?;
    if e2 != keep || p2 != keep || i2 != 0 {
        bail!("capabilities after the drop are {e2:#x}/{p2:#x}/{i2:#x}, expected {keep:#x}");
    }
    if keep != kept_mask() {
        tracing::warn!(
            missing = %names(kept_mask() & !keep),
            "started without some capabilities the running daemon uses: re-attaching XDP or \
             adding ports may fail"
        );
    }
    tracing::info!(kept = %names(keep), dropped = %names(perm & !keep), "capabilities dropped");
    Ok(())
}
