//! The control socket of a running xvsd against clients that misbehave: the
//! table of bad requests the protocol tests use (control/tests/data/
//! bad_requests.rs, pulled in here unchanged) sent over the real socket on
//! one connection, each answered with its precise error while the
//! connection survives; requests that parse but name what exists twice or
//! not at all, refused by xvsd's own handler; an oversized request; a
//! client that says nothing; and a peer that is not root. `config dump`
//! and `fdb show` are the same before and after.

mod xvsd_common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use xvs_control::client::{Client, ClientError};
use xvs_control::proto::{FdbKind, Mac, Reply, Request, MAX_REQUEST};
use xvs_testkit::{privileged, Netns};
use xvsd_common::{quiet_netns, veth, Xvsd};

include!("../../control/tests/data/bad_requests.rs");

/// The names the shared table refers to: bridge domains "blue" and "red",
/// access ports "tap-vm1" and "tap-vm2" (as in docs/xvsd.example.toml,
/// which the in-memory server of control's tests holds).
const CONFIG: &str = r#"
[[port]]
name = "tap-vm1"
role = "access"

[[port]]
name = "tap-vm2"
role = "access"

[[bridge_domain]]
name = "blue"
attach = [{ port = "tap-vm1" }, { port = "tap-vm2", vlan = 10 }]

[[bridge_domain]]
name = "red"
attach = [{ port = "tap-vm2", vlan = 20 }]
"#;

/// A namespace with the ports of [`CONFIG`] (veth peers `h-vm1`, `h-vm2`)
/// and xvsd running on it, with one static FDB entry in "blue".
fn start(prefix: &str) -> (Netns, Xvsd) {
    let ns = quiet_netns(prefix);
    veth(&ns, "tap-vm1", "h-vm1", 1);
    veth(&ns, "tap-vm2", "h-vm2", 1);
    let d = Xvsd::start(&ns, CONFIG, &["--xdp-mode", "native"]);
    let add = Request::FdbAdd {
        bd: "blue".into(),
        mac: Mac([2, 0, 0, 0, 0x5c, 1]),
        port: Some("tap-vm1".into()),
        vlan: None,
        vtep: None,
    };
    assert_eq!(d.call(&add), Ok(Reply::Done), "{}", d.log());
    (ns, d)
}

fn dump(d: &Xvsd) -> String {
    match d.call(&Request::ConfigDump {}) {
        Ok(Reply::Config(t)) => t,
        other => panic!("config dump: {other:?}\n{}", d.log()),
    }
}

#[test]
fn every_bad_request_gets_its_error_and_changes_nothing() {
    if !privileged("every_bad_request_gets_its_error_and_changes_nothing") {
        return;
    }
    let (_ns, d) = start("xc");
    let (config, fdb) = (dump(&d), d.fdb());
    assert_eq!(fdb.len(), 1);
    assert_eq!(fdb[0].kind, FdbKind::Static);

    let rows: Vec<_> = BAD
        .iter()
        .chain(REFUSED)
        .filter(|(l, _)| !l.is_empty())
        .collect();
    assert!(rows.len() >= 25, "{} rows", rows.len());
    let mut c = Client::connect(&d.socket).expect("connect");
    for (line, word) in rows {
        match c.call_raw(format!("{line}\n").as_bytes()) {
            Err(ClientError::Refused(e)) => assert!(e.contains(word), "{line}: {e}"),
            other => panic!("{line}: {other:?}\n{}", d.log()),
        }
    }
    // The same connection still answers.
    assert!(matches!(c.call(&Request::Show {}), Ok(Reply::Show(_))));
    assert_eq!(dump(&d), config);
    assert_eq!(d.fdb(), fdb);
}

#[test]
fn oversized_and_silent_clients_are_cut_off_while_others_are_served() {
    if !privileged("oversized_and_silent_clients_are_cut_off_while_others_are_served") {
        return;
    }
    let (_ns, d) = start("xc");
    let (config, fdb) = (dump(&d), d.fdb());

    let mut big = UnixStream::connect(&d.socket).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // xvsd may close before reading all of it; that is fine.
    let _ = big.write_all(&vec![b'x'; MAX_REQUEST + 4096]);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.contains("longer than"), "answer: {answer:?}");

    // A client that connects and says nothing is timed out (the server's
    // read timeout is 5 s); meanwhile another is answered.
    let mut silent = UnixStream::connect(&d.socket).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(dump(&d), config, "served while a client is silent");
    let mut answer = String::new();
    let _ = silent.read_to_string(&mut answer);
    assert!(answer.contains("timed out"), "answer: {answer:?}");

    assert_eq!(dump(&d), config);
    assert_eq!(d.fdb(), fdb);
}

#[test]
fn a_peer_that_is_not_root_is_refused() {
    if !privileged("a_peer_that_is_not_root_is_refused") {
        return;
    }
    let (_ns, d) = start("xc");
    let (config, fdb) = (dump(&d), d.fdb());
    // World-writable, so that only xvsd's credential check stands between
    // uid 65534 and the daemon.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let dir = d.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let answer = call_as_nobody(&d.socket, 65534);
    assert!(
        answer.contains("permission denied for uid 65534"),
        "{answer}"
    );
    assert_eq!(dump(&d), config);
    assert_eq!(d.fdb(), fdb);
}
