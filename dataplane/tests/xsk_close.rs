//! `XskIo::close_port` and `open_port_at` on real veth sockets: closing one
//! port while another stays open gives every frame it held back (posted on
//! its fill ring, queued on its TX ring), the index stays reserved until it
//! is opened again, and closing every socket lets the next one register the
//! UMEM afresh.

mod xvsd_common;

use std::time::{Duration, Instant};

use xvs_dataplane::xsk::{FrameIo, PortId, XskConfig, XskError, XskIo};
use xvs_testkit::{privileged, unique_name};
use xvsd_common::{quiet_netns, veth};

/// Frames the UMEM accounts for: free, posted for RX, queued for TX.
fn accounted(io: &XskIo) -> usize {
    io.frames_free() + io.frames_in_fill() + io.frames_in_tx()
}

/// `open_port_at`, retried while the kernel still releases a socket just
/// closed on the same queue (`EBUSY`, at most 2 s).
fn reopen(io: &mut XskIo, name: &str, at: PortId) -> PortId {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        match io.open_port_at(name, 0, at) {
            Ok(id) => return id,
            Err(XskError::Bind { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) && Instant::now() < end =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("reopening {name}: {e}"),
        }
    }
}

#[test]
fn closing_one_port_gives_its_frames_back_and_its_index_can_be_reused() {
    if !privileged("closing_one_port_gives_its_frames_back_and_its_index_can_be_reused") {
        return;
    }
    let ns = quiet_netns("xk");
    let (a, b, c, d) = (
        unique_name("a"),
        unique_name("b"),
        unique_name("c"),
        unique_name("d"),
    );
    veth(&ns, &a, &b, 1);
    veth(&ns, &c, &d, 1);
    ns.run(move || {
        let cfg = XskConfig {
            frame_count: 512,
            fill_size: 128,
            comp_size: 128,
            rx_size: 128,
            tx_size: 128,
            fill_target: 100,
            ..XskConfig::default()
        };
        let mut io = XskIo::new(cfg).expect("UMEM");
        let total = io.frames_total();
        let pa = io.open_port(&a, 0).expect("open a");
        let pc = io.open_port(&c, 0).expect("open c");
        assert_eq!(io.frames_in_fill(), 200);

        // A frame queued on c's TX ring and never flushed.
        let mut f = io.alloc().expect("a free frame");
        f.set_window(f.offset(), 60);
        io.data_mut(&f).fill(0xaa);
        assert!(io.send(pc, f).is_ok());
        assert_eq!(accounted(&io), total);

        // Close c: its 100 fill frames and the TX frame come back.
        let closed = io.close_port(pc).expect("close c");
        assert_eq!((closed.recovered, closed.lost), (101, 0));
        assert_eq!(io.frames_in_fill(), 100);
        assert_eq!(io.frames_in_tx(), 0);
        assert_eq!(io.frames_free(), total - 100);
        assert_eq!(io.port_count(), 2, "the index stays reserved");
        assert!(io.port_fd(pc).is_none() && io.port_name(pc).is_none());
        let g = io.alloc().unwrap();
        let g = io.send(pc, g).expect_err("a closed port sends nothing");
        io.free(g);
        let mut rx = Vec::new();
        assert_eq!(io.recv(pc, &mut rx, 8), 0);
        assert!(matches!(io.close_port(pc), Err(XskError::NoSuchPort(1))));

        // An open index is refused; the closed one opens again.
        assert!(matches!(
            io.open_port_at(&c, 0, pa),
            Err(XskError::PortInUse(0))
        ));
        assert_eq!(reopen(&mut io, &c, pc), pc);
        assert_eq!(io.frames_in_fill(), 200);
        assert_eq!(accounted(&io), total);

        // Close both (the UMEM is unregistered with the last socket), then
        // a new first socket registers it again, at a new index.
        io.close_port(pa).expect("close a");
        io.close_port(pc).expect("close c again");
        assert_eq!(io.frames_free(), total);
        let far = PortId::new(5);
        assert_eq!(reopen(&mut io, &a, far), far);
        assert_eq!(io.port_count(), 6);
        assert!(io.bound_mode().is_some());
        assert_eq!(accounted(&io), total);
    });
}
