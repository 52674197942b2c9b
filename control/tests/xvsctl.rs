//! The xvsctl binary against a control server: arguments become requests,
//! replies become tables or JSON, errors become one stderr line and a
//! non-zero exit.

mod common;

use std::process::{Command, Output};

use common::{Fixture, EXAMPLE};

fn xvsctl(fx: &Fixture, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xvsctl"))
        .arg("--socket")
        .arg(fx.path())
        .args(args)
        .output()
        .expect("run xvsctl")
}

fn ok(fx: &Fixture, args: &[&str]) -> String {
    let out = xvsctl(fx, args);
    assert!(
        out.status.success(),
        "xvsctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `fdb add blue MAC --port tap-vm2 --vlan 10`; its output.
fn fdb_add_on_vm2_vlan10(fx: &Fixture, mac: &str) -> String {
    ok(
        fx,
        &[
            "fdb", "add", "blue", mac, "--port", "tap-vm2", "--vlan", "10",
        ],
    )
}

fn fails(fx: &Fixture, args: &[&str]) -> String {
    let out = xvsctl(fx, args);
    assert!(!out.status.success(), "xvsctl {args:?} succeeded");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    err
}

#[test]
fn fdb_add_show_del_round_trip_in_json_and_tables() {
    let fx = Fixture::new(|_| {});
    assert_eq!(fdb_add_on_vm2_vlan10(&fx, "02:00:00:00:00:01"), "");
    ok(
        &fx,
        &[
            "fdb",
            "add",
            "blue",
            "02:00:00:00:00:02",
            "--vtep",
            "192.0.2.1",
        ],
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&fx, &["--json", "fdb", "show"])).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["bd"], "blue");
    assert_eq!(entries[0]["mac"], "02:00:00:00:00:01");
    assert_eq!(entries[0]["kind"], "static");
    assert_eq!(entries[0]["port"], "tap-vm2");
    assert_eq!(entries[0]["vlan"], 10);
    assert_eq!(entries[1]["vtep"], "192.0.2.1");

    let table = ok(&fx, &["fdb", "show", "blue"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("BD") && lines[0].contains("MAC"),
        "{table}"
    );
    assert!(
        lines[1].contains("tap-vm2 vlan 10") && lines[1].contains("static"),
        "{table}"
    );
    assert!(lines[2].contains("vtep 192.0.2.1"), "{table}");
    // Columns line up: every row has MAC at the header's MAC column.
    let col = lines[0].find("MAC").unwrap();
    assert_eq!(&lines[1][col..col + 17], "02:00:00:00:00:01");
    assert_eq!(lines[3], "2 entries");

    ok(&fx, &["fdb", "del", "blue", "02:00:00:00:00:01"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&fx, &["fdb", "--json", "show"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
}

#[test]
fn config_dump_then_apply_of_the_dump_is_accepted() {
    let fx = Fixture::new(|_| {});
    let dump = ok(&fx, &["config", "dump"]);
    let file = fx.dir.join("dump.toml");
    std::fs::write(&file, &dump).unwrap();
    ok(&fx, &["config", "apply", file.to_str().unwrap()]);
    assert_eq!(ok(&fx, &["config", "dump"]), dump);
}

#[test]
fn broken_config_apply_fails_with_one_line_and_changes_nothing() {
    let fx = Fixture::new(|_| {});
    let before = fx.dump();
    let file = fx.dir.join("bad.toml");
    std::fs::write(&file, EXAMPLE.replace("vlan = 10", "vlan = 9999")).unwrap();
    let err = fails(&fx, &["config", "apply", file.to_str().unwrap()]);
    assert!(err.contains("vlan 9999"), "{err}");
    assert_eq!(fx.dump(), before);
    // Broken TOML: the parser's error, in one line naming where.
    std::fs::write(&file, EXAMPLE.replace("vlan = 10", "vlan = 10 10")).unwrap();
    let err = fails(&fx, &["config", "apply", file.to_str().unwrap()]);
    assert!(err.contains("config syntax: line "), "{err}");
    assert_eq!(fx.dump(), before);
    let err = fails(&fx, &["config", "apply", "/nonexistent/x.toml"]);
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
}

#[test]
fn bad_values_are_refused_before_sending_and_daemon_errors_are_reported() {
    let fx = Fixture::new(|_| {});
    for (args, word) in [
        (
            &["fdb", "add", "blue", "02:00:00:00:01", "--port", "tap-vm1"][..],
            "bad MAC",
        ),
        (
            &["attach", "blue", "tap-vm1", "--vlan", "4095"][..],
            "vlan 4095",
        ),
        (&["bd", "add", "green", "--vni", "0"][..], "vni 0"),
        (
            &[
                "fdb",
                "add",
                "green",
                "02:00:00:00:00:01",
                "--port",
                "tap-vm1",
            ][..],
            "green",
        ),
        (&["fdb", "del", "blue", "02:00:00:00:00:09"][..], "no entry"),
        (&["bd", "del", "green"][..], "green"),
    ] {
        let err = fails(&fx, args);
        assert!(
            err.starts_with("xvsctl: ") && err.contains(word),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn unreachable_daemon_is_one_line_naming_the_socket() {
    let fx = Fixture::new(|_| {});
    let out = Command::new(env!("CARGO_BIN_EXE_xvsctl"))
        .args(["--socket", "/nonexistent/xvsd.sock", "show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/xvsd.sock") && err.contains("xvsd running"),
        "{err}"
    );
    drop(fx);
}

#[test]
fn show_and_stats_print_text_and_json() {
    let fx = Fixture::new(|_| {});
    let show = ok(&fx, &["show"]);
    assert!(show.contains("ports:") && show.contains("- eth1"), "{show}");
    let stats = ok(&fx, &["stats"]);
    assert!(
        stats.lines().next().unwrap().starts_with("SCOPE"),
        "{stats}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&fx, &["stats", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "entries");
}

#[test]
fn trace_builds_the_frame_sends_it_and_prints_the_answer() {
    let fx = Fixture::new(|_| {});
    // Built from header fields, with a tag: the daemon gets these bytes.
    let json: serde_json::Value = serde_json::from_str(&ok(
        &fx,
        &[
            "trace",
            "--json",
            "--port",
            "tap-vm2",
            "--vlan",
            "10",
            "--src-mac",
            "02:00:00:00:00:01",
            "--dst-mac",
            "02:00:00:00:00:02",
            "--src-ip",
            "10.0.0.1",
            "--dst-ip",
            "10.0.0.2",
        ],
    ))
    .unwrap();
    let hex = json["frame"].as_str().unwrap();
    let bytes = xvs_control::proto::decode_hex(hex).unwrap();
    assert_eq!(bytes.len(), 64, "60 bytes padded, plus the tag");
    assert_eq!(&hex[..24], "020000000002020000000001");
    assert_eq!(&hex[24..32], "8100000a", "802.1Q tag, VLAN 10");
    assert_eq!(&hex[32..36], "0800");
    // IPv4, UDP 40000 > 5201, header checksum valid.
    let ip = &bytes[18..38];
    assert_eq!((ip[0], ip[9]), (0x45, 17));
    assert_eq!(&ip[12..20], &[10, 0, 0, 1, 10, 0, 0, 2]);
    let sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
    assert_eq!(&bytes[38..42], &[0x9c, 0x40, 0x14, 0x51]);
    assert_eq!(json["ingress"], "port tap-vm2");
    assert_eq!(json["decision"], "flood");
    assert_eq!(json["lookup"]["outcome"], "miss");

    // --hex with --vlan: the tag goes in after the MACs.
    fdb_add_on_vm2_vlan10(&fx, "02:00:00:00:00:02");
    let text = ok(
        &fx,
        &[
            "trace",
            "--vtep",
            "192.0.2.1",
            "--vni",
            "100",
            "--vlan",
            "7",
            "--hex",
            "02:00:00:00:00:02 02:00:00:00:00:01 88b5 00000000",
        ],
    );
    assert!(
        text.contains("Frame     22 bytes: 020000000002020000000001810000078"),
        "{text}"
    );
    assert!(text.contains("Ingress   vtep 192.0.2.1 vni 100"), "{text}");
    assert!(text.contains("Decision  unicast"), "{text}");
    assert!(text.contains("1. tap-vm2: sent, 26 bytes"), "{text}");
    assert!(text.contains("push 802.1Q vlan 10"), "{text}");
    assert!(
        text.contains("nothing was sent, learned or counted"),
        "{text}"
    );
}

#[test]
fn trace_refuses_bad_values_in_one_line() {
    let fx = Fixture::new(|_| {});
    for (args, word) in [
        (
            &["trace", "--port", "tap-vm1", "--hex", "0200zz"][..],
            "not a hex digit",
        ),
        (
            &[
                "trace",
                "--port",
                "tap-vm1",
                "--hex",
                "020000000002020000000001",
            ][..],
            "shorter than an Ethernet header",
        ),
        (
            &[
                "trace",
                "--port",
                "tap-vm1",
                "--vlan",
                "4095",
                "--hex",
                "ffffffffffff02000000000188b5",
            ][..],
            "vlan 4095",
        ),
        (
            &[
                "trace",
                "--vtep",
                "192.0.2.1",
                "--vni",
                "0",
                "--hex",
                "ffffffffffff02000000000188b5",
            ][..],
            "vni 0",
        ),
        (
            &[
                "trace",
                "--port",
                "nope",
                "--hex",
                "ffffffffffff02000000000188b5",
            ][..],
            "nope",
        ),
        (
            &[
                "trace",
                "--port",
                "tap-vm1",
                "--src-mac",
                "02:00:00:00:00:01",
                "--dst-mac",
                "ff:ff:ff:ff:ff:ff",
                "--src-ip",
                "10.0.0.1",
                "--dst-ip",
                "2001:db8::1",
            ][..],
            "same family",
        ),
    ] {
        let err = fails(&fx, args);
        assert!(
            err.starts_with("xvsctl: ") && err.contains(word),
            "{args:?}: {err}"
        );
    }
}
