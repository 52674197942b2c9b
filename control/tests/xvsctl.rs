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
    assert_eq!(
        ok(
            &fx,
            &[
                "fdb",
                "add",
                "blue",
                "02:00:00:00:00:01",
                "--port",
                "tap-vm2",
                "--vlan",
                "10"
            ]
        ),
        ""
    );
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
