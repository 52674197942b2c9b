//! Configuration errors of the AF_XDP layer: typed, never a panic. These
//! need no privilege (nothing reaches the kernel's AF_XDP code).

use xvs_dataplane::xsk::{BindMode, BusyPoll, FrameIo, MemIo, PortId, XskConfig, XskError, XskIo};

fn cfg() -> XskConfig {
    XskConfig {
        frame_count: 64,
        fill_size: 64,
        fill_target: 32,
        ..XskConfig::default()
    }
}

#[test]
fn frame_size_must_be_a_power_of_two_in_range() {
    for fs in [3000, 1024, 8192, 0] {
        let e = XskIo::new(XskConfig {
            frame_size: fs,
            ..cfg()
        })
        .unwrap_err();
        assert!(matches!(e, XskError::FrameSize(f) if f == fs), "{fs}: {e}");
        assert!(e.to_string().contains("power of two"), "{e}");
    }
    assert!(XskIo::new(XskConfig {
        frame_size: 4096,
        ..cfg()
    })
    .is_ok());
}

#[test]
fn ring_sizes_must_be_powers_of_two() {
    type Case = (fn(&mut XskConfig), &'static str);
    let cases: [Case; 4] = [
        (|c| c.fill_size = 1000, "fill"),
        (|c| c.comp_size = 0, "completion"),
        (|c| c.rx_size = 3, "rx"),
        (|c| c.tx_size = 1 << 20, "tx"),
    ];
    for (set, name) in cases {
        let mut c = cfg();
        set(&mut c);
        match XskIo::new(c) {
            Err(XskError::RingSize { ring, .. }) => assert_eq!(ring, name),
            other => panic!("{name}: expected RingSize, got {other:?}"),
        }
    }
}

#[test]
fn other_bad_geometry_is_reported() {
    let e = XskIo::new(XskConfig {
        frame_count: 0,
        ..cfg()
    })
    .unwrap_err();
    assert!(matches!(e, XskError::FrameCount(0)), "{e}");
    let e = XskIo::new(XskConfig {
        headroom: 512,
        ..cfg()
    })
    .unwrap_err();
    assert!(matches!(e, XskError::Headroom { headroom: 512, .. }), "{e}");
    let e = XskIo::new(XskConfig {
        fill_target: 65,
        ..cfg()
    })
    .unwrap_err();
    assert!(matches!(e, XskError::FillTarget { target: 65, .. }), "{e}");
    for bp in [
        BusyPoll {
            usecs: 0,
            budget: 64,
        },
        BusyPoll {
            usecs: 50,
            budget: 0,
        },
    ] {
        let e = XskIo::new(XskConfig {
            busy_poll: Some(bp),
            ..cfg()
        })
        .unwrap_err();
        assert!(matches!(e, XskError::BusyPoll(b) if b == bp), "{e}");
    }
    let e = MemIo::new(
        1,
        &XskConfig {
            frame_size: 100,
            ..cfg()
        },
    )
    .unwrap_err();
    assert!(matches!(e, XskError::FrameSize(100)), "{e}");
}

#[test]
fn no_such_interface() {
    let mut io = XskIo::new(XskConfig {
        bind: BindMode::Copy,
        ..cfg()
    })
    .unwrap();
    for name in [
        "xvs-no-such-if",
        "",
        "bad\0name",
        "much-too-long-interface-name",
    ] {
        match io.open_port(name, 0) {
            Err(XskError::NoSuchInterface(n)) => assert_eq!(n, name),
            other => panic!("{name:?}: expected NoSuchInterface, got {other:?}"),
        }
    }
    assert_eq!(io.port_count(), 0);
    assert_eq!(io.bound_mode(), None);
    assert_eq!(io.frames_free(), io.frames_total());
    // Operations on ports that do not exist are harmless.
    let mut v = Vec::new();
    assert_eq!(io.recv(PortId::new(0), &mut v, 8), 0);
    let f = io.alloc().unwrap();
    let f = io.send(PortId::new(0), f).unwrap_err();
    io.free(f);
    io.flush();
    assert_eq!(io.frames_free(), io.frames_total());
}
