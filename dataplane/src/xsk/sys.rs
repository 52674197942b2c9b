//! Thin, safe wrappers over the AF_XDP system calls (socket options, bind,
//! wakeups, poll). Each keeps its `unsafe` to the one FFI call.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::umem::Area;

/// Turns a `-1` return into the errno.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The system page size (the largest aligned-mode chunk).
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

/// The ifindex of `name` in the calling thread's network namespace.
pub(crate) fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// A new `AF_XDP` socket.
pub(crate) fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = check(unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live `T` of the given size for the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `SOL_XDP` socket options whose value is a `T` the kernel fills in.
/// `T` must be a plain C struct for which all-zero bytes are valid.
fn getsockopt<T: Copy>(fd: &OwnedFd, opt: libc::c_int) -> io::Result<T> {
    let mut v = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is writable for `len` bytes for the call.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            v.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    // SAFETY: `v` started zeroed (valid for the plain C structs used here)
    // and the kernel wrote at most `size_of::<T>()` bytes into it.
    Ok(unsafe { v.assume_init() })
}

/// Registers `area` as the socket's UMEM (aligned chunks of the area's
/// frame size, `headroom` extra bytes before RX data).
pub(crate) fn umem_reg(fd: &OwnedFd, area: &Area, headroom: u32) -> io::Result<()> {
    let reg = libc::xdp_umem_reg {
        addr: area.base_addr(),
        len: area.len() as u64,
        chunk_size: area.frame_size(),
        headroom,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(fd, libc::XDP_UMEM_REG, &reg)
}

/// Sets the size of one ring (`XDP_RX_RING`, `XDP_UMEM_FILL_RING`, …).
pub(crate) fn ring_size(fd: &OwnedFd, opt: libc::c_int, size: u32) -> io::Result<()> {
    setsockopt(fd, opt, &size)
}

/// The ring offsets for `mmap`.
pub(crate) fn mmap_offsets(fd: &OwnedFd) -> io::Result<libc::xdp_mmap_offsets> {
    getsockopt(fd, libc::XDP_MMAP_OFFSETS)
}

/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17; `libc` does not export it yet).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// Lets one copy-mode `sendto` transmit up to `budget` TX descriptors
/// instead of the kernel's default 32 (`budget` from 32 to the TX ring
/// size). Kernels before 6.17 refuse it (`ENOPROTOOPT`).
pub(crate) fn tx_budget(fd: &OwnedFd, budget: u32) -> io::Result<()> {
    setsockopt(fd, XDP_MAX_TX_SKB_BUDGET, &budget)
}

// asm-generic socket option numbers (x86_64, aarch64, riscv64); `libc`
// does not export them for these targets.
const SO_BUSY_POLL: libc::c_int = 46;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// Turns on preferred busy polling for the socket: the kernel then runs the
/// driver's NAPI in our `recvfrom`/`sendto`/`poll` calls for up to `usecs`,
/// `budget` packets at a time.
pub(crate) fn busy_poll(fd: &OwnedFd, usecs: u32, budget: u32) -> io::Result<()> {
    let opt = |name, v: libc::c_int| {
        // SAFETY: `v` is a live c_int of the stated size for the call.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&v as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
        .map(drop)
    };
    let int = |v: u32| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
    opt(SO_PREFER_BUSY_POLL, 1)?;
    opt(SO_BUSY_POLL, int(usecs))?;
    opt(SO_BUSY_POLL_BUDGET, int(budget))
}

/// `XDP_OPTIONS`: true when the bound socket runs in zero-copy mode.
pub(crate) fn is_zerocopy(fd: &OwnedFd) -> io::Result<bool> {
    let o: libc::xdp_options = getsockopt(fd, libc::XDP_OPTIONS)?;
    Ok(o.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
}

/// The kernel's per-socket drop and error counters.
pub(crate) fn statistics(fd: &OwnedFd) -> io::Result<libc::xdp_statistics> {
    getsockopt(fd, libc::XDP_STATISTICS)
}

/// Binds the socket to `(ifindex, queue)`.
pub(crate) fn bind(
    fd: &OwnedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_umem_fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_umem_fd.map_or(0, |f| f.as_raw_fd() as u32),
    };
    // SAFETY: `sa` is a valid `sockaddr_xdp` of the stated length.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_xdp).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// TX wakeup: `sendto(MSG_DONTWAIT)` with no data. Transient errors (the
/// kernel is busy or out of buffers) are not failures: the caller kicks again.
pub(crate) fn kick_tx(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: a zero-length send with null buffer and address is valid.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if rc >= 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(()),
        _ => Err(e),
    }
}

/// RX/fill wakeup: `recvfrom(MSG_DONTWAIT)` with no buffer.
pub(crate) fn kick_rx(fd: &OwnedFd) {
    // SAFETY: a zero-length receive with null buffer and address is valid.
    // The result is irrelevant: the call exists only to wake the driver.
    let _ = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

/// A `pollfd` waiting for `POLLIN` on `fd`.
pub(crate) fn pollin(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// `poll(2)` on `fds` (their `revents` are updated); returns whether any
/// became readable. An interrupted poll reports nothing readable.
pub(crate) fn poll_in(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<bool> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()`
    // pollfds for the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(fds.iter().any(|p| p.revents & libc::POLLIN != 0))
}
