//! Privileged AF_XDP tests on real veth pairs inside throw-away network
//! namespaces: TX on two devices from one shared UMEM, bind modes, and RX
//! with XDP metadata forwarded to a second device without a copy.
//!
//! RX needs an XDP program that redirects into an XSKMAP. Until the
//! classifier in `ebpf/` offers one to tests, this file loads a 17-instruction
//! program of its own through the raw `bpf(2)` syscall (see [`bpf`]): it
//! writes 8 bytes of metadata with `bpf_xdp_adjust_meta` and redirects every
//! frame to the XSKMAP slot of its RX queue.
//!
//! Every loop is bounded in count and time; frames are only sent inside the
//! namespaces created here.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use xvs_dataplane::xsk::{
    BindMode, BoundMode, BusyPoll, FrameIo, PortId, XskConfig, XskError, XskIo, XDP_PACKET_HEADROOM,
};
use xvs_testkit::{privileged, unique_name, Netns, RawSocket};

/// Local experimental ethertype: nothing else in the namespace sends it.
const ETHERTYPE: u16 = 0x88b5;
const DEADLINE: Duration = Duration::from_secs(10);

/// Frame `seq` of a test run: distinct length and contents per frame.
fn test_frame(run: u8, seq: u32) -> Vec<u8> {
    let len = 60 + (seq as usize * 37) % 1400;
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xbb]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xaa]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14] = run;
    f[15..19].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[19..].iter_mut().enumerate() {
        *b = (i as u32 ^ seq.wrapping_mul(2654435761)) as u8;
    }
    f
}

/// Compares frame lists, reporting the first difference compactly.
#[track_caller]
fn assert_frames(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    let tag = |b: &[u8]| {
        (
            b.get(14).copied(),
            b.get(15..19).map(|s| s.to_vec()),
            b.len(),
        )
    };
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: frame {i} differs: got {:?}, want {:?} (got {} frames, want {})",
            tag(&got[i]),
            tag(&want[i]),
            got.len(),
            want.len()
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: frame count");
}

fn is_test_frame(b: &[u8]) -> bool {
    b.len() >= 14 && b[12..14] == ETHERTYPE.to_be_bytes()
}

/// Namespace with IPv6 off (no router solicitations or MLD on the veths).
fn quiet_netns(prefix: &str) -> Netns {
    let ns = Netns::new(prefix);
    for k in ["all", "default"] {
        ns.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{k}.disable_ipv6=1")],
        );
    }
    ns
}

/// A quiet namespace with two veth pairs, `a0`–`b0` and `a1`–`b1`, up.
fn two_pairs(prefix: &str) -> (Netns, [String; 4]) {
    let ns = quiet_netns(prefix);
    let names = [
        unique_name("xa"),
        unique_name("xb"),
        unique_name("xa"),
        unique_name("xb"),
    ];
    ns.veth(&names[0], &names[1]);
    ns.veth(&names[2], &names[3]);
    (ns, names)
}

fn small_cfg(bind: BindMode) -> XskConfig {
    XskConfig {
        frame_count: 1024,
        fill_size: 256,
        comp_size: 256,
        rx_size: 256,
        tx_size: 256,
        fill_target: 128,
        bind,
        ..XskConfig::default()
    }
}

/// Incoming test frames on `sock` (a [`RawSocket`] on the peer end of a
/// veth) until `want` arrived or the deadline passed.
fn recv_test_frames(sock: &RawSocket, want: usize) -> Vec<Vec<u8>> {
    recv_test_frames_for(sock, want, DEADLINE)
}

/// Incoming test frames on `sock` until `want` arrived or `wait` passed.
fn recv_test_frames_for(sock: &RawSocket, want: usize, wait: Duration) -> Vec<Vec<u8>> {
    sock.recv_matching(want, wait, is_test_frame)
        .into_iter()
        .map(|f| f.bytes)
        .collect()
}

/// Sends `frames` on `port`, flushing whenever the TX ring is full, then
/// flushes until every frame completed.
fn send_all(io: &mut XskIo, port: PortId, frames: &[Vec<u8>]) {
    let end = Instant::now() + DEADLINE;
    for bytes in frames {
        let mut f = io.alloc().expect("a free frame");
        assert!(f.set_len(bytes.len()));
        io.data_mut(&f).copy_from_slice(bytes);
        loop {
            match io.send(port, f) {
                Ok(()) => break,
                Err(back) => {
                    assert!(Instant::now() < end, "TX ring stayed full");
                    f = back;
                    io.flush();
                }
            }
        }
    }
    drain_tx(io);
}

fn drain_tx(io: &mut XskIo) {
    let end = Instant::now() + DEADLINE;
    io.flush();
    while io.frames_in_tx() > 0 {
        assert!(
            Instant::now() < end,
            "{} TX frames never completed",
            io.frames_in_tx()
        );
        std::thread::sleep(Duration::from_millis(1));
        io.flush();
    }
}

/// All frames are either free or posted to a fill ring: nothing leaked.
fn assert_no_leak(io: &XskIo) {
    assert_eq!(io.frames_in_tx(), 0);
    assert_eq!(
        io.frames_free() + io.frames_in_fill(),
        io.frames_total(),
        "frames leaked (free {}, in fill {}, total {})",
        io.frames_free(),
        io.frames_in_fill(),
        io.frames_total()
    );
}

#[test]
fn tx_on_two_devices_from_one_shared_umem() {
    if !privileged("tx_on_two_devices_from_one_shared_umem") {
        return;
    }
    let (ns, [a0, b0, a1, b1]) = two_pairs("xt");
    ns.run(move || {
        let mut io = XskIo::new(small_cfg(BindMode::Copy)).expect("UMEM");
        let p0 = io.open_port(&a0, 0).expect("port on first device");
        let p1 = io
            .open_port(&a1, 0)
            .expect("shared-UMEM port on second device");
        assert_eq!(io.bound_mode(), Some(BoundMode::Copy));
        assert_eq!(io.port_mode(p1), Some(BoundMode::Copy));
        assert_eq!(io.port_name(p1), Some((a1.as_str(), 0)));
        assert_ne!(
            io.port_fd(p0).unwrap().as_raw_fd(),
            io.port_fd(p1).unwrap().as_raw_fd()
        );
        assert_eq!(
            io.frames_in_fill(),
            256,
            "each port posts fill_target frames"
        );

        let sniff0 = RawSocket::open(&b0);
        let sniff1 = RawSocket::open(&b1);

        // 600 distinct frames on device 1: more than the TX ring (256) and
        // far more than one copy-mode sendto moves (32).
        let frames0: Vec<_> = (0..600).map(|s| test_frame(1, s)).collect();
        send_all(&mut io, p0, &frames0);
        assert_frames(
            &recv_test_frames(&sniff0, frames0.len()),
            &frames0,
            "device 1 bytes",
        );
        assert_eq!(io.stats(p0).unwrap().tx_completed, 600);
        assert_no_leak(&io);

        // Same UMEM, second device: the chunks that just went out on device 1
        // (the free stack is LIFO) carry the frames for device 2.
        let frames1: Vec<_> = (0..300).map(|s| test_frame(2, s)).collect();
        send_all(&mut io, p1, &frames1);
        assert_frames(
            &recv_test_frames(&sniff1, frames1.len()),
            &frames1,
            "device 2",
        );
        assert_eq!(io.stats(p1).unwrap().tx_completed, 300);
        assert!(
            recv_test_frames_for(&sniff0, 1, Duration::from_millis(200)).is_empty(),
            "device 1 saw device 2's frames"
        );

        // One chunk written once, sent on device 1, completed, then sent on
        // device 2 again straight from the same chunk (no rewrite).
        let bytes = test_frame(3, 7);
        let mut f = io.alloc().unwrap();
        let idx = f.idx();
        assert!(f.set_len(bytes.len()));
        io.data_mut(&f).copy_from_slice(&bytes);
        io.send(p0, f).unwrap();
        drain_tx(&mut io);
        let mut again = io.alloc().unwrap();
        assert_eq!(
            again.idx(),
            idx,
            "LIFO free stack hands back the completed chunk"
        );
        assert!(again.set_len(bytes.len()));
        assert_eq!(io.data(&again), &bytes[..], "chunk still holds the frame");
        io.send(p1, again).unwrap();
        drain_tx(&mut io);
        assert_frames(
            &recv_test_frames(&sniff0, 1),
            std::slice::from_ref(&bytes),
            "reuse dev 1",
        );
        assert_frames(&recv_test_frames(&sniff1, 1), &[bytes], "reuse dev 2");

        assert_no_leak(&io);
        let k = io.kernel_stats(p0).unwrap().unwrap();
        assert_eq!(k.tx_invalid_descs, 0);
    });
}

/// Opens queue 0 of `ifname`, retrying while the kernel still finishes
/// releasing a socket closed just before (its teardown is deferred, and the
/// queue reports EBUSY until it is done).
fn open_retrying_busy(io: &mut XskIo, ifname: &str) -> PortId {
    open_queue_retrying_busy(io, ifname, 0)
}

/// [`open_retrying_busy`] for any queue.
fn open_queue_retrying_busy(io: &mut XskIo, ifname: &str, queue: u32) -> PortId {
    let end = Instant::now() + DEADLINE;
    loop {
        match io.open_port(ifname, queue) {
            Ok(p) => return p,
            Err(XskError::Bind { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) && Instant::now() < end =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("open {ifname} queue {queue}: {e}"),
        }
    }
}

#[test]
fn bind_modes_on_veth() {
    if !privileged("bind_modes_on_veth") {
        return;
    }
    let ns = quiet_netns("xm");
    let (a, b) = (unique_name("xa"), unique_name("xb"));
    ns.veth(&a, &b);
    ns.run(move || {
        // veth has no zero-copy support: auto falls back to copy and says so.
        let mut io = XskIo::new(small_cfg(BindMode::Auto)).unwrap();
        let p = io.open_port(&a, 0).expect("auto bind");
        assert_eq!(io.bound_mode(), Some(BoundMode::Copy));
        assert_eq!(io.port_mode(p), Some(BoundMode::Copy));
        drop(io);

        // Forcing zero-copy fails with a typed bind error, not a panic.
        let mut io = XskIo::new(small_cfg(BindMode::ZeroCopy)).unwrap();
        match io.open_port(&a, 0) {
            Err(XskError::Bind { mode, ifname, .. }) => {
                assert_eq!(mode, BindMode::ZeroCopy);
                assert_eq!(ifname, a);
            }
            other => panic!("expected a bind error, got {other:?}"),
        }
        assert_eq!(io.port_count(), 0);
        assert_eq!(io.frames_free(), io.frames_total());

        // A queue the device does not have.
        let mut io = XskIo::new(small_cfg(BindMode::Copy)).unwrap();
        let e = io.open_port(&a, 5).unwrap_err();
        assert!(matches!(e, XskError::Bind { queue: 5, .. }), "{e}");
        assert!(e.to_string().contains(&a), "{e}");

        // Need-wakeup off works too (the kernel is kicked every flush).
        let mut io = XskIo::new(XskConfig {
            need_wakeup: false,
            ..small_cfg(BindMode::Copy)
        })
        .unwrap();
        let p = open_retrying_busy(&mut io, &a);
        let sniff = RawSocket::open(&b);
        let frames: Vec<_> = (0..40).map(|s| test_frame(4, s)).collect();
        send_all(&mut io, p, &frames);
        assert_frames(&recv_test_frames(&sniff, 40), &frames, "no need_wakeup");
        assert_no_leak(&io);
        drop(io);

        // Busy polling: the socket options are accepted and TX still flows.
        let mut io = XskIo::new(XskConfig {
            busy_poll: Some(BusyPoll {
                usecs: 20,
                budget: 64,
            }),
            ..small_cfg(BindMode::Copy)
        })
        .unwrap();
        let p = open_retrying_busy(&mut io, &a);
        let frames: Vec<_> = (0..40).map(|s| test_frame(7, s)).collect();
        send_all(&mut io, p, &frames);
        assert_frames(&recv_test_frames(&sniff, 40), &frames, "busy poll");
        let mut v = Vec::new();
        assert_eq!(io.recv(p, &mut v, 8), 0);
        assert!(
            io.stats(p).unwrap().fill_kicks > 0,
            "busy poll drives RX by syscall"
        );
        assert_no_leak(&io);
    });
}

#[test]
fn rx_with_metadata_forwarded_to_second_device_without_copy() {
    if !privileged("rx_with_metadata_forwarded_to_second_device_without_copy") {
        return;
    }
    let (ns, [a0, b0, a1, b1]) = two_pairs("xr");
    ns.run(move || {
        // On huge pages (xvsd's default): the kernel copies into and out of
        // the same UMEM as with ordinary pages.
        let mut io = XskIo::new(XskConfig {
            headroom: 64,
            huge_pages: true,
            ..small_cfg(BindMode::Auto)
        })
        .unwrap();
        let p0 = io.open_port(&a0, 0).unwrap();
        let p1 = io.open_port(&a1, 0).unwrap();

        let map = bpf::xskmap(4);
        bpf::map_set(&map, 0, io.port_fd(p0).unwrap().as_raw_fd() as u32);
        let prog = bpf::redirect_with_meta(&map);
        let _link = bpf::attach_xdp(&prog, &a0);

        let inject = RawSocket::open(&b0);
        let sniff = RawSocket::open(&b1);
        let frames: Vec<_> = (0..500).map(|s| test_frame(5, s)).collect();

        let mut received = Vec::new();
        let mut batch = Vec::new();
        let end = Instant::now() + DEADLINE;
        // Inject in bursts below the fill target so the RX ring never starves.
        for chunk in frames.chunks(50) {
            for f in chunk {
                inject.send(f);
            }
            let want = received.len() + chunk.len();
            while received.len() < want {
                assert!(
                    Instant::now() < end,
                    "only {} frames received",
                    received.len()
                );
                io.poll(Duration::from_millis(20)).unwrap();
                io.recv(p0, &mut batch, 64);
                for f in batch.drain(..) {
                    if !is_test_frame(io.data(&f)) {
                        io.free(f);
                        continue;
                    }
                    // The metadata the XDP program wrote sits right before
                    // the data; data starts at headroom + XDP_PACKET_HEADROOM.
                    assert_eq!(io.meta(&f, 8).unwrap(), &bpf::META[..]);
                    assert_eq!(f.offset(), 64 + XDP_PACKET_HEADROOM);
                    assert!(f.headroom() >= 70 + 8, "room for IPv6 VXLAN outer headers");
                    received.push(io.data(&f).to_vec());
                    // Forward the very chunk to the second device.
                    let free_before = io.frames_free();
                    let idx = f.idx();
                    io.send(p1, f)
                        .unwrap_or_else(|f| panic!("TX full for {:?}", f.idx()));
                    assert_eq!(io.frames_free(), free_before, "forwarding {idx:?} copied");
                }
                io.flush();
            }
        }
        assert_frames(&received, &frames, "RX");
        assert_eq!(io.stats(p0).unwrap().rx_frames, 500);
        drain_tx(&mut io);
        assert_frames(&recv_test_frames(&sniff, 500), &frames, "forwarded");
        assert_eq!(io.stats(p1).unwrap().tx_completed, 500);
        let k = io.kernel_stats(p0).unwrap().unwrap();
        assert_eq!((k.rx_dropped, k.rx_ring_full), (0, 0), "{k:?}");
        assert_no_leak(&io);
    });
}

/// Just enough of `bpf(2)` to build the RX test's XDP program.
mod bpf {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// The metadata the program writes: two native-endian u32 stores.
    pub const META: [u8; 8] = {
        let a = 0x5856_5331u32.to_ne_bytes();
        let b = 0x0bad_cafeu32.to_ne_bytes();
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    };

    const BPF_MAP_CREATE: i64 = 0;
    const BPF_MAP_UPDATE_ELEM: i64 = 2;
    const BPF_PROG_LOAD: i64 = 5;
    const BPF_LINK_CREATE: i64 = 28;
    const BPF_MAP_TYPE_XSKMAP: u32 = 17;
    const BPF_PROG_TYPE_XDP: u32 = 6;
    const BPF_XDP: u32 = 37;

    /// `union bpf_attr`, large enough for the commands used here.
    #[repr(C, align(8))]
    struct Attr([u8; 128]);

    impl Attr {
        fn new() -> Self {
            Attr([0; 128])
        }
        fn u32(mut self, off: usize, v: u32) -> Self {
            self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn u64(mut self, off: usize, v: u64) -> Self {
            self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
            self
        }
    }

    fn sys(cmd: i64, attr: &mut Attr) -> io::Result<OwnedFd> {
        // SAFETY: `attr` is a live, zero-padded bpf_attr of the size passed;
        // the kernel reads (and for PROG_LOAD's log, writes through pointers
        // the caller set up) only within it.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), 128usize) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: these commands return a fresh descriptor we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
    }

    pub fn xskmap(entries: u32) -> OwnedFd {
        let mut a = Attr::new()
            .u32(0, BPF_MAP_TYPE_XSKMAP)
            .u32(4, 4)
            .u32(8, 4)
            .u32(12, entries);
        sys(BPF_MAP_CREATE, &mut a).expect("create XSKMAP")
    }

    pub fn map_set(map: &OwnedFd, key: u32, value: u32) {
        let mut a = Attr::new()
            .u32(0, map.as_raw_fd() as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, &value as *const u32 as u64);
        // SAFETY: `key`/`value` outlive the call; MAP_UPDATE_ELEM returns 0,
        // not a descriptor, so handle the result by hand.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_ELEM,
                a.0.as_mut_ptr(),
                128usize,
            )
        };
        assert_eq!(rc, 0, "XSKMAP update: {}", io::Error::last_os_error());
    }

    /// `struct bpf_insn`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Insn {
        code: u8,
        regs: u8,
        off: i16,
        imm: i32,
    }

    const fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        }
    }

    /// ```text
    ///  0: r6 = r1
    ///  1: r2 = -8
    ///  2: call bpf_xdp_adjust_meta        ; 8 bytes of metadata
    ///  3: if r0 != 0 goto 11
    ///  4: r2 = ctx->data_meta
    ///  5: r3 = ctx->data
    ///  6: r4 = r2
    ///  7: r4 += 8
    ///  8: if r4 > r3 goto 11
    ///  9: *(u32 *)(r2 + 0) = 0x58565331
    /// 10: *(u32 *)(r2 + 4) = 0x0bad_cafe
    /// 11: r2 = ctx->rx_queue_index
    /// 12: r1 = map fd (ld_imm64, 2 slots)
    /// 14: r3 = XDP_PASS                   ; action when the slot is empty
    /// 15: call bpf_redirect_map
    /// 16: exit
    /// ```
    pub fn redirect_with_meta(map: &OwnedFd) -> OwnedFd {
        let fd = map.as_raw_fd();
        let insns = [
            ins(0xbf, 6, 1, 0, 0),
            ins(0xb7, 2, 0, 0, -8),
            ins(0x85, 0, 0, 0, 54),
            ins(0x55, 0, 0, 7, 0),
            ins(0x61, 2, 6, 8, 0),
            ins(0x61, 3, 6, 0, 0),
            ins(0xbf, 4, 2, 0, 0),
            ins(0x07, 4, 0, 0, 8),
            ins(0x2d, 4, 3, 2, 0),
            ins(0x62, 2, 0, 0, 0x5856_5331),
            ins(0x62, 2, 0, 4, 0x0bad_cafe),
            ins(0x61, 2, 6, 16, 0),
            ins(0x18, 1, 1, 0, fd),
            ins(0, 0, 0, 0, 0),
            ins(0xb7, 3, 0, 0, 2),
            ins(0x85, 0, 0, 0, 51),
            ins(0x95, 0, 0, 0, 0),
        ];
        let license = b"Dual MIT/GPL\0";
        let mut log = vec![0u8; 1 << 16];
        let mut a = Attr::new()
            .u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .u32(68, BPF_XDP);
        sys(BPF_PROG_LOAD, &mut a).unwrap_or_else(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            panic!(
                "load XDP program: {e}\n{}",
                String::from_utf8_lossy(&log[..end])
            )
        })
    }

    /// Attaches with a bpf_link: detached when the returned descriptor closes.
    pub fn attach_xdp(prog: &OwnedFd, ifname: &str) -> OwnedFd {
        let c = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: `c` is NUL-terminated and lives across the call.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert!(ifindex != 0, "no interface {ifname}");
        let mut a = Attr::new()
            .u32(0, prog.as_raw_fd() as u32)
            .u32(4, ifindex)
            .u32(8, BPF_XDP);
        sys(BPF_LINK_CREATE, &mut a).expect("attach XDP link")
    }
}

/// `test_frame` with an 802.1Q tag (VID `vid`) after the MAC addresses.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// The real classifier (`xvs-ebpf`) on an access port: untagged and
/// VLAN-tagged frames arrive in the UMEM with its 32-byte `Meta` in front
/// (tag popped, VID in the metadata) and leave on a second device from the
/// same chunk.
#[test]
fn rx_through_the_classifier_on_an_access_port() {
    use xvs_ebpf::{Classifier, Meta, PortRole, XdpMode};
    if !privileged("rx_through_the_classifier_on_an_access_port") {
        return;
    }
    const PORT: u32 = 3;
    const BD: u32 = 7;
    let (ns, [a0, b0, a1, b1]) = two_pairs("xc");
    ns.run(move || {
        let mut io = XskIo::new(small_cfg(BindMode::Auto)).unwrap();
        let p0 = io.open_port(&a0, 0).unwrap();
        let p1 = io.open_port(&a1, 0).unwrap();

        let cls = Classifier::load().expect("load classifier");
        let ifindex = xvs_ebpf::ifindex_of(&a0).unwrap();
        cls.set_port(ifindex, PortRole::Access, PORT).unwrap();
        cls.set_attachment(PORT, 0, BD).unwrap();
        cls.set_attachment(PORT, 10, BD).unwrap();
        cls.set_xsk(PORT, 0, io.port_fd(p0).unwrap()).unwrap();
        let _att = cls.attach(&a0, XdpMode::Auto).expect("attach");

        let inject = RawSocket::open(&b0);
        let sniff = RawSocket::open(&b1);
        // Even frames untagged, odd ones on VLAN 10.
        let frames: Vec<_> = (0..200).map(|s| test_frame(6, s)).collect();
        let mut received = Vec::new();
        let mut batch = Vec::new();
        let end = Instant::now() + DEADLINE;
        for (chunk_no, chunk) in frames.chunks(50).enumerate() {
            for (i, f) in chunk.iter().enumerate() {
                let seq = chunk_no * 50 + i;
                if seq % 2 == 1 {
                    inject.send(&tagged(f, 10));
                } else {
                    inject.send(f);
                }
            }
            let want = received.len() + chunk.len();
            while received.len() < want {
                assert!(
                    Instant::now() < end,
                    "only {} frames received",
                    received.len()
                );
                io.poll(Duration::from_millis(20)).unwrap();
                io.recv(p0, &mut batch, 64);
                for f in batch.drain(..) {
                    let meta = Meta::from_bytes(io.meta(&f, Meta::SIZE).unwrap()).unwrap();
                    if !is_test_frame(io.data(&f)) {
                        io.free(f);
                        continue;
                    }
                    let seq = received.len();
                    assert_eq!((meta.bd, meta.port_index), (BD, PORT), "{meta:?}");
                    assert_eq!(meta.vid, if seq % 2 == 1 { 10 } else { 0 }, "{meta:?}");
                    assert!(f.headroom() >= Meta::SIZE + 70);
                    received.push(io.data(&f).to_vec());
                    let free_before = io.frames_free();
                    io.send(p1, f).unwrap_or_else(|_| panic!("TX ring full"));
                    assert_eq!(io.frames_free(), free_before);
                }
                io.flush();
            }
        }
        assert_frames(&received, &frames, "classified RX (tags popped)");
        drain_tx(&mut io);
        assert_frames(&recv_test_frames(&sniff, 200), &frames, "forwarded");
        assert_no_leak(&io);
    });
}

/// Not a check, a measurement (`cargo test -- --ignored --nocapture`): one
/// thread drives an AF_XDP generator on one veth and the forwarder (RX on
/// device 1 through an XSKMAP redirect, TX from the same chunk on device 2)
/// and prints the forwarding rate. Copy mode on veth, so it measures the
/// kernel's copy path as much as ours.
#[test]
#[ignore = "measurement, not a check"]
fn forward_rate_on_veth() {
    if !privileged("forward_rate_on_veth") {
        return;
    }
    let ns = quiet_netns("xp");
    let (g, a0, a1, s) = (
        unique_name("xg"),
        unique_name("xa"),
        unique_name("xa"),
        unique_name("xs"),
    );
    ns.veth(&g, &a0);
    ns.veth(&a1, &s);
    ns.run(move || {
        const BATCH: usize = 64;
        const RUN: Duration = Duration::from_secs(3);
        let mut gen = XskIo::new(small_cfg(BindMode::Copy)).unwrap();
        let pg = gen.open_port(&g, 0).unwrap();
        let mut io = XskIo::new(XskConfig {
            frame_count: 4096,
            fill_size: 2048,
            fill_target: 2048,
            comp_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            ..small_cfg(BindMode::Copy)
        })
        .unwrap();
        let p0 = io.open_port(&a0, 0).unwrap();
        let p1 = io.open_port(&a1, 0).unwrap();
        let map = bpf::xskmap(4);
        bpf::map_set(&map, 0, io.port_fd(p0).unwrap().as_raw_fd() as u32);
        let prog = bpf::redirect_with_meta(&map);
        let _link = bpf::attach_xdp(&prog, &a0);

        let frame = test_frame(8, 0)[..60].to_vec();
        let mut batch = Vec::with_capacity(BATCH);
        let (mut offered, start) = (0u64, Instant::now());
        while start.elapsed() < RUN {
            for _ in 0..BATCH {
                let Some(mut f) = gen.alloc() else { break };
                f.set_len(frame.len());
                gen.data_mut(&f).copy_from_slice(&frame);
                match gen.send(pg, f) {
                    Ok(()) => offered += 1,
                    Err(f) => {
                        gen.free(f);
                        break;
                    }
                }
            }
            gen.flush();
            for _ in 0..4 {
                io.recv(p0, &mut batch, BATCH);
                for f in batch.drain(..) {
                    if let Err(f) = io.send(p1, f) {
                        io.free(f);
                    }
                }
                io.flush();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let fwd = io.stats(p1).unwrap().tx_completed;
        let k = io.kernel_stats(p0).unwrap().unwrap();
        eprintln!(
            "RATE offered {:.3} Mpps, forwarded {:.3} Mpps ({} of {} frames; rx_dropped {}, \
             rx_ring_full {}, fill_empty {})",
            offered as f64 / secs / 1e6,
            fwd as f64 / secs / 1e6,
            fwd,
            offered,
            k.rx_dropped,
            k.rx_ring_full,
            k.rx_fill_ring_empty_descs
        );
        assert!(fwd > 0);
    });
}

/// Two queues of one device: two workers (one UMEM each) bind queue 0 and
/// queue 1, and one UMEM can also hold sockets on both queues (shared UMEM
/// across queues of the same device). All frames arrive exactly.
#[test]
fn two_queues_two_workers_and_one_umem_across_queues() {
    if !privileged("two_queues_two_workers_and_one_umem_across_queues") {
        return;
    }
    let ns = quiet_netns("xq");
    let (a, b) = (unique_name("xa"), unique_name("xb"));
    ns.ip(&[
        "link",
        "add",
        &a,
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
    ]);
    ns.ip(&["link", "set", &a, "up"]);
    ns.ip(&["link", "set", &b, "up"]);
    ns.run(move || {
        let sniff = RawSocket::open(&b);
        let mut w0 = XskIo::new(small_cfg(BindMode::Copy)).unwrap();
        let mut w1 = XskIo::new(small_cfg(BindMode::Copy)).unwrap();
        let q0 = w0.open_port(&a, 0).unwrap();
        let q1 = w1.open_port(&a, 1).unwrap();
        // The same queue twice is refused with a typed error.
        let mut dup = XskIo::new(small_cfg(BindMode::Copy)).unwrap();
        assert!(matches!(
            dup.open_port(&a, 1),
            Err(XskError::Bind { queue: 1, .. })
        ));
        let f0: Vec<_> = (0..100).map(|s| test_frame(9, s)).collect();
        let f1: Vec<_> = (100..200).map(|s| test_frame(9, s)).collect();
        send_all(&mut w0, q0, &f0);
        send_all(&mut w1, q1, &f1);
        let mut got = recv_test_frames(&sniff, 200);
        got.sort();
        let mut want: Vec<_> = f0.iter().chain(&f1).cloned().collect();
        want.sort();
        assert_frames(&got, &want, "two workers");
        assert_no_leak(&w0);
        assert_no_leak(&w1);
        drop((w0, w1));

        // One UMEM, sockets on both queues of the device.
        let mut io = XskIo::new(small_cfg(BindMode::Copy)).unwrap();
        let q0 = open_retrying_busy(&mut io, &a);
        let q1 = open_queue_retrying_busy(&mut io, &a, 1);
        send_all(&mut io, q0, &f0);
        send_all(&mut io, q1, &f1);
        let mut got = recv_test_frames(&sniff, 200);
        got.sort();
        assert_frames(&got, &want, "one UMEM, two queues");
        assert_no_leak(&io);
    });
}
