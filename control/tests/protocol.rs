//! The control protocol and its Unix-socket server: framing, validation,
//! peer credentials, and clients that misbehave.
//!
//! The handler here is a small configuration store built on the real
//! [`Config`] parser (the daemon's handler is tested in xvsd's own tests);
//! what is under test is everything between a client's bytes and the handler.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xvs_control::client::{Client, ClientError};
use xvs_control::config::Config;
use xvs_control::proto::{self, ProtoError, Reply, Request, MAX_REQUEST};
use xvs_control::server::{Server, ServerConfig, ServerError};

mod common;

use common::{Fixture, Store, EXAMPLE};

#[test]
fn requests_round_trip_through_encode_and_parse() {
    let reqs = [
        r#"{"verb":"show"}"#,
        r#"{"verb":"bd_add","name":"blue","vni":100,"max_macs":10}"#,
        r#"{"verb":"attach","bd":"blue","port":"tap1","vlan":10}"#,
        r#"{"verb":"flood_add","bd":"blue","vtep":"2001:db8::1"}"#,
        r#"{"verb":"fdb_add","bd":"blue","mac":"02:00:00:00:00:01","port":"tap1"}"#,
        r#"{"verb":"fdb_add","bd":"blue","mac":"02:00:00:00:00:01","vtep":"192.0.2.1"}"#,
        r#"{"verb":"fdb_show"}"#,
        r#"{"verb":"fdb_flush","bd":"blue"}"#,
        r#"{"verb":"port_add","name":"eth1","role":"uplink"}"#,
        r#"{"verb":"trace","port":"tap1","frame":"ffffffffffff020000000001 88b5"}"#,
        r#"{"verb":"trace","vtep":"192.0.2.1","vni":100,"frame":"ffffffffffff0200000000010800"}"#,
    ];
    for r in reqs {
        let line = format!(r#"{{"version":1,"request":{r}}}"#);
        let req = proto::parse_request(line.as_bytes()).unwrap_or_else(|e| panic!("{r}: {e}"));
        let again = proto::encode_request(&req);
        assert_eq!(again.last(), Some(&b'\n'));
        assert_eq!(
            proto::parse_request(&again[..again.len() - 1]).unwrap(),
            req
        );
    }
}

include!("data/bad_requests.rs");

#[test]
fn bad_request_lines_are_refused_with_their_reason() {
    assert!(BAD.len() >= 25);
    for (line, word) in BAD {
        match proto::parse_request(line.as_bytes()) {
            Ok(r) => panic!("{line}: accepted as {r:?}"),
            Err(e) => assert!(
                e.to_string().contains(word),
                "{line}: error {e:?} lacks {word:?}"
            ),
        }
    }
    for (line, _) in REFUSED {
        assert!(proto::parse_request(line.as_bytes()).is_ok(), "{line}");
    }
    let long = vec![b' '; MAX_REQUEST];
    assert_eq!(proto::parse_request(&long), Err(ProtoError::TooLong));
    // A trace frame longer than a jumbo frame.
    let big = format!(
        r#"{{"version":1,"request":{{"verb":"trace","port":"p","frame":"{}"}}}}"#,
        "ab".repeat(proto::MAX_TRACE_FRAME + 1)
    );
    let e = proto::parse_request(big.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("longer than 9216"), "{e}");
}

#[test]
fn hex_decodes_with_separators_and_round_trips() {
    assert_eq!(
        proto::decode_hex("02:00:0a ff\n0B").unwrap(),
        vec![2, 0, 10, 255, 11]
    );
    assert!(proto::decode_hex("02-00").is_err());
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(
        proto::decode_hex(&proto::encode_hex(&bytes)).unwrap(),
        bytes
    );
}

#[test]
fn over_the_socket_bad_requests_change_nothing_and_the_connection_survives() {
    let fx = Fixture::new(|_| {});
    let before = fx.dump();
    let mut c = fx.client();
    for (line, word) in BAD.iter().chain(REFUSED).filter(|(l, _)| !l.is_empty()) {
        match c.call_raw(format!("{line}\n").as_bytes()) {
            Err(ClientError::Refused(e)) => assert!(e.contains(word), "{line}: {e}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    // Valid requests that the handler refuses leave no trace either.
    let broken = EXAMPLE.replace("vni = 200", "vni = 100");
    assert!(matches!(
        c.call(&Request::ConfigApply { toml: broken }),
        Err(ClientError::Refused(e)) if e.contains("vni 100")
    ));
    assert!(matches!(
        c.call(&Request::BdDel { name: "green".into() }),
        Err(ClientError::Refused(e)) if e.contains("green")
    ));
    assert_eq!(fx.dump(), before);
    // The same connection still works.
    assert!(matches!(c.call(&Request::Show {}), Ok(Reply::Show(_))));
}

#[test]
fn config_apply_then_dump_returns_the_applied_config() {
    let fx = Fixture::new(|_| {});
    let smaller = Config::parse(&EXAMPLE.replace("vni = 200", "vni = 300")).unwrap();
    let mut c = fx.client();
    assert_eq!(
        c.call(&Request::ConfigApply {
            toml: smaller.to_toml()
        })
        .unwrap(),
        Reply::Done
    );
    assert_eq!(Config::parse(&fx.dump()).unwrap(), smaller);
}

#[test]
fn oversized_request_is_refused_and_the_connection_closed() {
    let fx = Fixture::new(|_| {});
    let mut s = UnixStream::connect(fx.path()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big = vec![b'x'; MAX_REQUEST + 4096];
    // The server may close before reading all of it; that is fine.
    let _ = s.write_all(&big);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.contains("longer than"), "answer: {answer:?}");
    assert!(fx.dump().contains("blue"), "daemon still serves");
}

#[test]
fn silent_client_times_out_without_stalling_others() {
    let fx = Fixture::new(|_| {});
    let mut silent = UnixStream::connect(fx.path()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t0 = Instant::now();
    assert!(fx.dump().contains("blue"));
    assert!(
        t0.elapsed() < Duration::from_millis(300),
        "served while a client is silent"
    );
    let mut answer = String::new();
    let _ = silent.read_to_string(&mut answer);
    assert!(answer.contains("timed out"), "answer: {answer:?}");
}

#[test]
fn connections_past_the_limit_are_refused_politely() {
    let fx = Fixture::new(|c| {
        c.max_clients = 2;
        c.read_timeout = Duration::from_secs(3);
    });
    let held: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(fx.path()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = fx.client();
    match third.call(&Request::Show {}) {
        Err(ClientError::Refused(e)) => assert!(e.contains("too many"), "{e}"),
        other => panic!("third client: {other:?}"),
    }
    drop(held);
}

#[test]
fn socket_is_owner_only_and_a_stale_file_is_replaced_but_a_live_one_is_not() {
    let fx = Fixture::new(|_| {});
    let mode = std::fs::metadata(fx.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let cfg = ServerConfig {
        path: fx.path().to_path_buf(),
        ..ServerConfig::default()
    };
    let store = Arc::new(Store::new(Config::default()));
    assert!(matches!(
        Server::start(cfg.clone(), store.clone()),
        Err(ServerError::InUse(_))
    ));
    // A file left by a dead daemon: nobody listens on it.
    let stale = fx.dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let cfg = ServerConfig { path: stale, ..cfg };
    let server = Server::start(cfg, store).expect("stale socket replaced");
    assert!(Client::connect(server.path()).is_ok());
}

#[test]
fn non_root_peer_is_refused_unless_in_the_configured_group() {
    if !xvs_testkit::privileged("non_root_peer_is_refused_unless_in_the_configured_group") {
        return;
    }
    // World-writable file mode, so that only the credential check stands
    // between the peer and the daemon.
    let open = Fixture::new(|c| c.mode = 0o666);
    let answer = call_as_nobody(open.path(), 65534);
    assert!(
        answer.contains("permission denied for uid 65534"),
        "{answer}"
    );

    let grouped = Fixture::new(|c| {
        c.mode = 0o660;
        c.group = Some(65534);
    });
    let meta = std::fs::metadata(grouped.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 65534);
    let answer = call_as_nobody(grouped.path(), 65534);
    assert!(answer.contains("\"ok\""), "{answer}");
}
