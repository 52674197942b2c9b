//! An `AF_PACKET` raw socket bound to one interface, for tests that inject
//! Ethernet frames and look at exactly what arrived.
//!
//! The socket lives in the network namespace of the thread that opens it, so
//! tests open it inside a [`Netns::run`](crate::Netns::run) closure (or on a
//! thread that called [`enter`](crate::enter)). Every receive is bounded: one
//! [`RawSocket::recv_one`] waits at most [`RECV_TICK`], and
//! [`RawSocket::recv_matching`] stops after `want` frames or `wait`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long one [`RawSocket::recv_one`] blocks at most (`SO_RCVTIMEO`).
pub const RECV_TICK: Duration = Duration::from_millis(20);

/// Receive buffer of a [`RawSocket::open`]ed socket (`SO_RCVBUFFORCE`, which
/// may exceed `rmem_max` as root): room for a whole burst of test frames.
pub const RECV_BUFFER: usize = 64 << 20;

/// How often [`RawSocket::send`] retries a send the device queue refused
/// with `ENOBUFS`, [`SEND_RETRY_PAUSE`] apart (100 ms in all).
const SEND_RETRIES: u32 = 1000;
const SEND_RETRY_PAUSE: Duration = Duration::from_micros(100);

/// One received frame and the 802.1Q tag the kernel took off it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The bytes as received (without the tag the kernel stripped).
    pub bytes: Vec<u8>,
    /// The stripped 802.1Q VLAN ID, from `PACKET_AUXDATA`.
    pub vlan: Option<u16>,
}

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface: sends frames as
/// they are and shows exactly what arrived, tags included (the kernel strips
/// an 802.1Q tag into metadata before `AF_PACKET` sees the frame; the socket
/// asks for it back with `PACKET_AUXDATA`).
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live T of the size passed; `fd` is open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(v).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl RawSocket {
    /// Opens a socket that sends and receives on `ifname` (every protocol,
    /// `ETH_P_ALL`), in the calling thread's network namespace.
    ///
    /// Receives wait at most [`RECV_TICK`] each; the receive buffer is
    /// [`RECV_BUFFER`]; stripped VLAN tags are reported. Panics (with the
    /// cause) if the interface does not exist or a call fails.
    pub fn open(ifname: &str) -> RawSocket {
        let s = RawSocket::bind(ifname, libc::ETH_P_ALL as u16);
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: RECV_TICK.as_micros() as libc::suseconds_t,
        };
        setsockopt(&s.fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).expect("SO_RCVTIMEO");
        let size = RECV_BUFFER as libc::c_int;
        setsockopt(&s.fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).expect("SO_RCVBUFFORCE");
        let one: libc::c_int = 1;
        setsockopt(&s.fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one).expect("PACKET_AUXDATA");
        s
    }

    /// Opens a socket that only sends on `ifname`, in the calling thread's
    /// network namespace: bound with protocol 0, so the kernel queues no
    /// received frames on it. Panics (with the cause) on failure.
    pub fn open_send_only(ifname: &str) -> RawSocket {
        RawSocket::bind(ifname, 0)
    }

    /// A raw socket for `proto` (host order) bound to `ifname`.
    fn bind(ifname: &str, proto: u16) -> RawSocket {
        let proto = proto.to_be();
        // SAFETY: plain socket(2); the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = CString::new(ifname).expect("interface name has no NUL");
        // SAFETY: `c` is NUL-terminated and lives across the call.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert!(ifindex != 0, "no interface {ifname}");
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed; `fd` is open.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            rc,
            0,
            "bind AF_PACKET to {ifname}: {}",
            io::Error::last_os_error()
        );
        RawSocket { fd }
    }

    /// Sends one frame as it is, once: the number of bytes sent, or the
    /// kernel's error (e.g. `EINVAL` for a frame shorter than the device's
    /// header, `ENOBUFS` when the device queue is full).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of its length; `fd` is open.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// Sends one frame as it is, retrying while the device queue is full
    /// (`ENOBUFS`) for at most 100 ms. Panics on any other error, a short
    /// send, or a queue that stays full.
    pub fn send(&self, frame: &[u8]) {
        for _ in 0..SEND_RETRIES {
            match self.try_send(frame) {
                Ok(n) => {
                    assert_eq!(n, frame.len(), "AF_PACKET send: short send");
                    return;
                }
                // The device queue is full: give it a moment.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    std::thread::sleep(SEND_RETRY_PAUSE);
                }
                Err(e) => panic!("AF_PACKET send: {e}"),
            }
        }
        panic!("AF_PACKET send: ENOBUFS for 100 ms");
    }

    /// One incoming frame, received into `buf` (a longer frame is
    /// truncated to `buf.len()`) and copied out with its stripped VLAN tag.
    ///
    /// `None` after one [`RECV_TICK`] timeout, on a receive error, or when
    /// the frame was one this host sent (`PACKET_OUTGOING`).
    pub fn recv_one(&self, buf: &mut [u8]) -> Option<RawFrame> {
        let mut cmsg = [0u64; 16];
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = std::ptr::from_mut(&mut sll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cmsg);
        // SAFETY: every pointer in `msg` (sll, iov → buf, cmsg) is live and
        // writable for the length given; `fd` is open.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
            return None;
        }
        let bytes = buf[..(n as usize).min(buf.len())].to_vec();
        let mut vlan = None;
        // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR only
        // return headers inside msg_control..msg_controllen (or null), and a
        // PACKET_AUXDATA message carries a tpacket_auxdata, read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                    let aux = std::ptr::read_unaligned(
                        libc::CMSG_DATA(c).cast::<libc::tpacket_auxdata>(),
                    );
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                        vlan = Some(aux.tp_vlan_tci & 0x0fff);
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Some(RawFrame { bytes, vlan })
    }

    /// Incoming frames for which `filter(bytes)` holds, in arrival order,
    /// until `want` of them arrived or `wait` passed. Frames are received
    /// into a 4096-byte buffer.
    pub fn recv_matching(
        &self,
        want: usize,
        wait: Duration,
        mut filter: impl FnMut(&[u8]) -> bool,
    ) -> Vec<RawFrame> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        let end = Instant::now() + wait;
        while got.len() < want && Instant::now() < end {
            if let Some(f) = self.recv_one(&mut buf) {
                if filter(&f.bytes) {
                    got.push(f);
                }
            }
        }
        got
    }
}
