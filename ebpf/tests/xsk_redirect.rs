//! End to end on veth: switched frames reach the AF_XDP socket registered
//! for their (port, RX queue), with the classifier's metadata in the 32
//! bytes before the frame in the UMEM, in native and in generic mode.
//!
//! An uplink and an access port both use RX queue 0; each has its own
//! socket, in its own XSKMAP slot. The minimal copy-mode RX socket below is
//! test scaffolding only (the dataplane owns the real ring code).
//!
//! Needs root. Frames are only ever sent inside the test's namespaces.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etherparse::{PacketBuilder, VlanId};
use xvs_ebpf::{Classifier, Counter, PortRole, XdpMode};
use xvs_testkit::{privileged, unique_name, Netns, RawSocket};

const UPLINK_PORT: u32 = 5;
const ACCESS_PORT: u32 = 6;
const BD_VNI: u32 = 21;
const BD_VLAN: u32 = 22;
const VNI: u32 = 4242;
const VTEP: [u8; 4] = [192, 0, 2, 10];
const REMOTE: [u8; 4] = [192, 0, 2, 1];

const RING: u32 = 32; // entries in each ring (power of two)
const FRAME: usize = 4096; // UMEM chunk size
/// The kernel places received data this far into a chunk (UMEM headroom 0).
const XDP_PACKET_HEADROOM: u64 = 256;

/// A copy-mode AF_XDP socket with a fill ring and an RX ring.
struct XskRx {
    fd: i32,
    umem: NonNull<u8>,
    _fill: Mapping, // kept mapped while the socket lives
    rx: Mapping,
    off: libc::xdp_mmap_offsets,
    rx_cons: u32,
}

struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// # Safety
    /// `off` must be inside the mapping and 4-byte aligned.
    unsafe fn atomic(&self, off: u64) -> &AtomicU32 {
        // SAFETY: the caller guarantees bounds and alignment; the kernel
        // shares this word with us and only accesses it atomically.
        unsafe { &*self.ptr.as_ptr().add(off as usize).cast::<AtomicU32>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping made by mmap and used no more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn check(rc: i32, what: &str) {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
}

fn mmap(fd: i32, len: usize, offset: u64) -> Mapping {
    // SAFETY: a fresh shared mapping of a ring the socket exports; checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            offset as libc::off_t,
        )
    };
    assert!(
        p != libc::MAP_FAILED,
        "mmap ring: {}",
        std::io::Error::last_os_error()
    );
    Mapping {
        ptr: NonNull::new(p.cast()).unwrap(),
        len,
    }
}

fn setsockopt<T>(fd: i32, opt: i32, val: &T) {
    // SAFETY: `val` points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            std::ptr::from_ref(val).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    check(rc, "setsockopt SOL_XDP");
}

impl XskRx {
    /// Creates the socket, its UMEM and rings, fills the fill ring and binds
    /// to (`dev`, `queue`) in copy mode. Runs in `dev`'s namespace.
    fn bind(dev: &str, queue: u32) -> XskRx {
        let ifindex = xvs_ebpf::ifindex_of(dev).unwrap();
        // SAFETY: plain socket(2) call, checked.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(fd, "socket AF_XDP");
        let umem_len = FRAME * RING as usize;
        // SAFETY: anonymous private mapping, checked.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        assert!(umem != libc::MAP_FAILED, "mmap umem");
        let reg = libc::xdp_umem_reg {
            addr: umem as u64,
            len: umem_len as u64,
            chunk_size: FRAME as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(fd, libc::XDP_UMEM_REG, &reg);
        setsockopt(fd, libc::XDP_UMEM_FILL_RING, &RING);
        setsockopt(fd, libc::XDP_UMEM_COMPLETION_RING, &RING);
        setsockopt(fd, libc::XDP_RX_RING, &RING);

        // SAFETY: xdp_mmap_offsets is plain old data; all-zero is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut optlen = std::mem::size_of_val(&off) as u32;
        // SAFETY: `off` is writable for `optlen` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                std::ptr::from_mut(&mut off).cast(),
                &mut optlen,
            )
        };
        check(rc, "getsockopt XDP_MMAP_OFFSETS");
        let fill = mmap(
            fd,
            off.fr.desc as usize + RING as usize * 8,
            libc::XDP_UMEM_PGOFF_FILL_RING,
        );
        let rx = mmap(
            fd,
            off.rx.desc as usize + RING as usize * std::mem::size_of::<libc::xdp_desc>(),
            libc::XDP_PGOFF_RX_RING as u64,
        );

        // Give the kernel every chunk.
        for i in 0..RING as usize {
            // SAFETY: slot i of the fill ring's u64 array, inside the mapping.
            unsafe {
                fill.ptr
                    .as_ptr()
                    .add(off.fr.desc as usize + i * 8)
                    .cast::<u64>()
                    .write((i * FRAME) as u64)
            };
        }
        // SAFETY: the producer word is inside the fill mapping, aligned.
        // Release: the addresses above are visible before the kernel sees them.
        unsafe { fill.atomic(off.fr.producer) }.store(RING, Ordering::Release);

        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the size passed.
        let rc = unsafe {
            libc::bind(
                fd,
                std::ptr::from_ref(&sa).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as u32,
            )
        };
        check(rc, "bind AF_XDP");
        XskRx {
            fd,
            umem: NonNull::new(umem.cast()).unwrap(),
            _fill: fill,
            rx,
            off,
            rx_cons: 0,
        }
    }

    /// Takes every received frame: (32 bytes before it, the frame).
    fn drain(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        // SAFETY: producer/consumer words are inside the RX mapping, aligned.
        // Acquire pairs with the kernel's release of the descriptors.
        let prod = unsafe { self.rx.atomic(self.off.rx.producer) }.load(Ordering::Acquire);
        while self.rx_cons != prod {
            let i = (self.rx_cons % RING) as usize;
            let d_size = std::mem::size_of::<libc::xdp_desc>();
            // SAFETY: descriptor i is inside the RX mapping and published.
            let desc = unsafe {
                self.rx
                    .ptr
                    .as_ptr()
                    .add(self.off.rx.desc as usize + i * d_size)
                    .cast::<libc::xdp_desc>()
                    .read()
            };
            assert_eq!(
                desc.addr % FRAME as u64,
                XDP_PACKET_HEADROOM,
                "data starts after the kernel's headroom in its chunk"
            );
            let addr = desc.addr as usize;
            assert!(addr >= 32 && addr + desc.len as usize <= FRAME * RING as usize);
            // SAFETY: [addr - 32, addr + len) lies inside the UMEM (asserted)
            // and the kernel has finished writing this frame.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    self.umem.as_ptr().add(addr - 32),
                    32 + desc.len as usize,
                )
            };
            out.push((bytes[..32].to_vec(), bytes[32..].to_vec()));
            self.rx_cons = self.rx_cons.wrapping_add(1);
        }
        // SAFETY: as above; Release hands the slots back to the kernel.
        unsafe { self.rx.atomic(self.off.rx.consumer) }.store(self.rx_cons, Ordering::Release);
        out
    }
}

impl Drop for XskRx {
    fn drop(&mut self) {
        // SAFETY: the UMEM mapping and fd were created in `bind`, used no more.
        unsafe {
            libc::close(self.fd);
            libc::munmap(self.umem.as_ptr().cast(), FRAME * RING as usize);
        }
    }
}

/// Sends raw Ethernet frames out of `dev` (in the calling thread's
/// namespace), panicking on any failure.
fn send_frames(dev: &str, frames: &[Vec<u8>]) {
    let sock = RawSocket::open_send_only(dev);
    for f in frames {
        sock.send(f);
    }
}

fn inner() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut f, b"to the socket")
        .unwrap();
    f
}

fn vxlan_frame() -> Vec<u8> {
    let v = VNI.to_be_bytes();
    let mut payload = vec![0x08, 0, 0, 0, v[1], v[2], v[3], 0];
    payload.extend_from_slice(&inner());
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0xaa, 1], [2, 0, 0, 0, 0xaa, 2])
        .ipv4(REMOTE, VTEP, 64)
        .udp(50000, 4789)
        .write(&mut f, &payload)
        .unwrap();
    f
}

fn vm_frame(vlan: Option<u16>) -> Vec<u8> {
    let mut f = Vec::new();
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4]);
    match vlan {
        Some(v) => b
            .single_vlan(VlanId::try_new(v).unwrap())
            .ipv4([10, 0, 0, 3], [10, 0, 0, 4], 64)
            .udp(1000, 2000)
            .write(&mut f, b"from a vm"),
        None => b
            .ipv4([10, 0, 0, 3], [10, 0, 0, 4], 64)
            .udp(1000, 2000)
            .write(&mut f, b"from a vm"),
    }
    .unwrap();
    f
}

/// The 32 metadata bytes as `xvs_abi.h` lays them out (host order).
fn meta(bd: u32, port: u32, src: [u8; 16], vni: u32, vid: u16, flags: u16) -> Vec<u8> {
    [
        &bd.to_ne_bytes()[..],
        &port.to_ne_bytes(),
        &src,
        &vni.to_ne_bytes(),
        &vid.to_ne_bytes(),
        &flags.to_ne_bytes(),
    ]
    .concat()
}

fn one_queue_veth(ns: &Netns, a: &str, b: &str, peer: &Netns) {
    ns.ip(&[
        "link",
        "add",
        a,
        "numtxqueues",
        "1",
        "numrxqueues",
        "1",
        "type",
        "veth",
        "peer",
        "name",
        b,
        "numtxqueues",
        "1",
        "numrxqueues",
        "1",
    ]);
    ns.ip(&["link", "set", b, "netns", peer.name()]);
    ns.ip(&["link", "set", a, "up"]);
    peer.ip(&["link", "set", b, "up"]);
}

fn frames_reach_their_sockets(mode: XdpMode) {
    let ns = Netns::new("cx");
    let peer = Netns::new("cy");
    let (up, up_peer) = (unique_name("xu"), unique_name("xv"));
    let (acc, acc_peer) = (unique_name("xa"), unique_name("xb"));
    one_queue_veth(&ns, &up, &up_peer, &peer);
    one_queue_veth(&ns, &acc, &acc_peer, &peer);

    let cls = Arc::new(Classifier::load().expect("load"));
    cls.add_local_vtep(VTEP.into()).unwrap();
    cls.set_vni(VNI, BD_VNI).unwrap();
    cls.set_attachment(ACCESS_PORT, 10, BD_VLAN).unwrap();
    cls.set_port(ns.ifindex(&up), PortRole::Uplink, UPLINK_PORT)
        .unwrap();
    cls.set_port(ns.ifindex(&acc), PortRole::Access, ACCESS_PORT)
        .unwrap();

    let peer_path = format!("/run/netns/{}", peer.name());
    let c = Arc::clone(&cls);
    let (got_up, got_acc, counters) = ns.run(move || {
        let _up_att = c.attach(&up, mode).expect("attach uplink");
        let _acc_att = c.attach(&acc, mode).expect("attach access");
        let mut up_sock = XskRx::bind(&up, 0);
        let mut acc_sock = XskRx::bind(&acc, 0);
        c.set_xsk(UPLINK_PORT, 0, borrowed(up_sock.fd)).unwrap();
        c.set_xsk(ACCESS_PORT, 0, borrowed(acc_sock.fd)).unwrap();

        std::thread::spawn(move || {
            xvs_testkit::enter(&peer_path);
            send_frames(&up_peer, &vec![vxlan_frame(); 3]);
            send_frames(&acc_peer, &vec![vm_frame(Some(10)); 2]);
        })
        .join()
        .unwrap();

        let (mut got_up, mut got_acc) = (Vec::new(), Vec::new());
        let start = Instant::now();
        while (got_up.len() < 3 || got_acc.len() < 2) && start.elapsed() < Duration::from_secs(10) {
            got_up.extend(up_sock.drain());
            got_acc.extend(acc_sock.drain());
            std::thread::sleep(Duration::from_millis(20));
        }
        (got_up, got_acc, c.counters().unwrap())
    });

    assert_eq!(
        got_up.len(),
        3,
        "uplink socket frames; counters {:?}",
        counters.nonzero()
    );
    assert_eq!(
        got_acc.len(),
        2,
        "access socket frames; counters {:?}",
        counters.nonzero()
    );
    let vtep_meta = meta(
        BD_VNI,
        UPLINK_PORT,
        std::net::Ipv4Addr::from(REMOTE).to_ipv6_mapped().octets(),
        VNI,
        0,
        0x1,
    );
    for (m, frame) in &got_up {
        assert_eq!(m, &vtep_meta, "uplink metadata");
        assert_eq!(frame, &inner(), "decapsulated inner frame");
    }
    let acc_meta = meta(BD_VLAN, ACCESS_PORT, [0; 16], 0, 10, 0x4);
    for (m, frame) in &got_acc {
        assert_eq!(m, &acc_meta, "access metadata");
        assert_eq!(frame, &vm_frame(None), "frame with its tag popped");
    }
    assert_eq!(
        counters.get(Counter::Redirected),
        5,
        "{:?}",
        counters.nonzero()
    );
    assert_eq!(counters.get(Counter::DecapV4), 3);
    assert_eq!(counters.get(Counter::VlanPopped), 2);
}

fn borrowed(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the socket outlives its use here: set_xsk only passes the
    // number to the kernel, which takes its own reference.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

#[test]
fn native_mode_frames_reach_the_socket_of_their_port_and_queue_with_metadata() {
    if !privileged("native_mode_frames_reach_the_socket_of_their_port_and_queue_with_metadata") {
        return;
    }
    frames_reach_their_sockets(XdpMode::Native);
}

#[test]
fn generic_mode_frames_reach_the_socket_of_their_port_and_queue_with_metadata() {
    if !privileged("generic_mode_frames_reach_the_socket_of_their_port_and_queue_with_metadata") {
        return;
    }
    frames_reach_their_sockets(XdpMode::Generic);
}
