//! xvsd's privileges after start-up: every thread of the running daemon
//! holds exactly the documented capability set (`docs/security.md`:
//! `cap_net_admin`, `cap_net_raw`, `cap_ipc_lock`) in its effective,
//! permitted and bounding sets, nothing inheritable or ambient, and
//! `no_new_privs`; and with only those it still forwards, still
//! re-attaches its XDP program when it is detached from under it, and
//! still takes ports removed and added live.

mod xvsd_common;

use std::time::Duration;

use xvs_testkit::{privileged, unique_name, RawFrame, RawSocket};
use xvsd_common::{frame, quiet_netns, recv_test, veth, Xvsd};

const M1: [u8; 6] = [0x02, 0, 0, 0, 0x53, 1];
const M2: [u8; 6] = [0x02, 0, 0, 0, 0x53, 2];

/// CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_IPC_LOCK (14).
const KEPT: u64 = 1 << 12 | 1 << 13 | 1 << 14;

/// The `Cap*:` and `NoNewPrivs:` lines of one /proc status file.
fn caps(status: &str) -> (u64, u64, u64, u64, u64, u64) {
    let field = |name: &str| {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
            .trim();
        u64::from_str_radix(v, if name == "NoNewPrivs:" { 10 } else { 16 })
            .unwrap_or_else(|e| panic!("{name} {v:?}: {e}"))
    };
    (
        field("CapEff:"),
        field("CapPrm:"),
        field("CapBnd:"),
        field("CapInh:"),
        field("CapAmb:"),
        field("NoNewPrivs:"),
    )
}

/// One frame from `h1` arrives at `h2` (the BD floods unknown M2).
fn forwards(ns: &xvs_testkit::Netns, h1: &str, h2: &str, seq: u32) -> bool {
    let (h1, h2) = (h1.to_owned(), h2.to_owned());
    let got = ns.run(move || {
        let rx = RawSocket::open(&h2);
        let tx = RawSocket::open_send_only(&h1);
        tx.send(&frame(M2, M1, seq, 80));
        recv_test(&rx, 1, Duration::from_secs(3))
    });
    got == vec![RawFrame {
        bytes: frame(M2, M1, seq, 80),
        vlan: None,
    }]
}

#[test]
fn running_xvsd_keeps_exactly_the_documented_capabilities_and_still_works() {
    if !privileged("running_xvsd_keeps_exactly_the_documented_capabilities_and_still_works") {
        return;
    }
    let ns = quiet_netns("xp");
    let [p1, h1, p2, h2] = [
        unique_name("p"),
        unique_name("h"),
        unique_name("p"),
        unique_name("h"),
    ];
    veth(&ns, &p1, &h1, 1);
    veth(&ns, &p2, &h2, 1);
    let config = format!(
        "[[port]]\nname = \"{p1}\"\nrole = \"access\"\n\n\
         [[port]]\nname = \"{p2}\"\nrole = \"access\"\n\n\
         [[bridge_domain]]\nname = \"blue\"\nattach = [{{ port = \"{p1}\" }}, {{ port = \"{p2}\" }}]\n"
    );
    let d = Xvsd::start(
        &ns,
        &config,
        &[
            "--xdp-mode",
            "native",
            "--queues",
            "1",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let pid = d.show()["daemon"]["pid"].as_u64().expect("pid");

    // Every thread: workers, FDB owner, next hops, watchdog, control, metrics.
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .map(|e| e.expect("task").path())
        .collect();
    assert!(tasks.len() >= 5, "only {} threads", tasks.len());
    for t in &tasks {
        let status = match std::fs::read_to_string(t.join("status")) {
            Ok(s) => s,
            // A thread that ended since the listing holds nothing.
            Err(_) if !t.exists() => continue,
            Err(e) => panic!("{}: {e}", t.display()),
        };
        let (eff, prm, bnd, inh, amb, nnp) = caps(&status);
        let what = format!("{} (eff {eff:#x} prm {prm:#x} bnd {bnd:#x})", t.display());
        assert_eq!(eff, KEPT, "effective set of {what}");
        assert_eq!(prm, KEPT, "permitted set of {what}");
        assert_eq!(bnd, KEPT, "bounding set of {what}");
        assert_eq!(inh, 0, "inheritable set of {what}");
        assert_eq!(amb, 0, "ambient set of {what}");
        assert_eq!(nnp, 1, "no_new_privs of {what}");
    }
    assert!(
        d.log()
            .contains("capabilities dropped kept=cap_net_admin,cap_net_raw,cap_ipc_lock"),
        "{}",
        d.log()
    );

    // Still forwards…
    assert!(forwards(&ns, &h1, &h2, 1), "{}", d.log());
    // … and still re-attaches what is detached from under it.
    let link = d.port(&p1)["xdp_link"].as_u64().expect("xdp_link");
    ns.exec("bpftool", &["link", "detach", "id", &link.to_string()]);
    let p = d.wait_port(
        &p1,
        Duration::from_secs(2),
        "re-attached with the reduced capabilities",
        |p| p["xdp_reattached"] == 1,
    );
    assert_ne!(p["xdp_link"].as_u64(), Some(link));
    assert!(forwards(&ns, &h1, &h2, 2), "{}", d.log());

    // Ports removed and added live after the drop: with every socket of
    // the queue closed, the UMEM is registered again (`CAP_IPC_LOCK`), new
    // AF_XDP sockets open (`CAP_NET_RAW`), XDP attaches (nothing).
    for p in [&p1, &p2] {
        d.ctl(&["detach", "blue", p]);
        d.ctl(&["port", "del", p]);
    }
    for p in [&p1, &p2] {
        d.ctl(&["port", "add", p, "--role", "access"]);
        d.ctl(&["attach", "blue", p]);
    }
    assert!(forwards(&ns, &h1, &h2, 3), "{}", d.log());
    assert!(d.stop().success());
}
