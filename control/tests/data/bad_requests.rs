// The bad requests of the control protocol, shared by the in-memory
// server's tests (control/tests/protocol.rs) and the running daemon's
// (dataplane/tests/xvsd_control.rs), which pull this file in with
// `include!`. The names in `REFUSED` exist in both configurations: bridge
// domain "blue" and access port "tap-vm1" (docs/xvsd.example.toml, and the
// config xvsd_control.rs starts xvsd on); "nosuch" exists in neither.

/// Bad request lines, each with a word its error must contain.
const BAD: &[(&str, &str)] = &[
    ("", "EOF"),
    ("not json", "expected"),
    ("{}", "version"),
    (r#"{"version":2,"request":{"verb":"show"}}"#, "version 2"),
    (
        r#"{"version":"1","request":{"verb":"show"}}"#,
        "invalid type",
    ),
    (r#"{"version":1}"#, "request"),
    (r#"{"version":1,"request":{"verb":"reboot"}}"#, "reboot"),
    (r#"{"version":1,"request":{}}"#, "verb"),
    (
        r#"{"version":1,"request":{"verb":"show","extra":1}}"#,
        "extra",
    ),
    (
        r#"{"version":1,"request":{"verb":"bd_add","name":"x","vni":0}}"#,
        "vni 0",
    ),
    (
        r#"{"version":1,"request":{"verb":"bd_add","name":"x","vni":16777216}}"#,
        "vni 16777216",
    ),
    (
        r#"{"version":1,"request":{"verb":"bd_add","name":"x","vni":-1}}"#,
        "invalid value",
    ),
    (
        r#"{"version":1,"request":{"verb":"bd_add","name":"","vni":5}}"#,
        "empty name",
    ),
    (
        r#"{"version":1,"request":{"verb":"bd_add","name":"x","max_macs":0}}"#,
        "max_macs",
    ),
    (
        r#"{"version":1,"request":{"verb":"attach","bd":"b","port":"p","vlan":0}}"#,
        "vlan 0",
    ),
    (
        r#"{"version":1,"request":{"verb":"attach","bd":"b","port":"p","vlan":4095}}"#,
        "vlan 4095",
    ),
    (
        r#"{"version":1,"request":{"verb":"attach","bd":"b","vlan":5}}"#,
        "port",
    ),
    (
        r#"{"version":1,"request":{"verb":"flood_add","bd":"b","vtep":"300.1.1.1"}}"#,
        "invalid IP",
    ),
    (
        r#"{"version":1,"request":{"verb":"flood_add","bd":"b","vtep":"224.0.0.5"}}"#,
        "unicast",
    ),
    (
        r#"{"version":1,"request":{"verb":"flood_add","bd":"b","vtep":"0.0.0.0"}}"#,
        "unicast",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"b","mac":"02:00:00:00:00","port":"p"}}"#,
        "bad MAC",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"b","mac":"zz:00:00:00:00:01","port":"p"}}"#,
        "bad MAC",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"b","mac":"01:00:5e:00:00:01","port":"p"}}"#,
        "unicast",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"b","mac":"02:00:00:00:00:01"}}"#,
        "exactly one",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"b","mac":"02:00:00:00:00:01","port":"p","vtep":"192.0.2.1"}}"#,
        "exactly one",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"b","mac":"02:00:00:00:00:01","vlan":3,"vtep":"192.0.2.1"}}"#,
        "vlan",
    ),
    (
        r#"{"version":1,"request":{"verb":"port_add","name":"x","role":"trunk"}}"#,
        "unknown variant",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","frame":"ffffffffffff020000000001 88b5"}}"#,
        "exactly one of `port` and `vtep`",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"p","vtep":"192.0.2.1","vni":5,"frame":"ffffffffffff02000000000188b5"}}"#,
        "exactly one of `port` and `vtep`",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","vtep":"192.0.2.1","frame":"ffffffffffff02000000000188b5"}}"#,
        "needs its `vni`",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"p","vni":5,"frame":"ffffffffffff02000000000188b5"}}"#,
        "`vni` goes with `vtep`",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","vtep":"192.0.2.1","vni":0,"frame":"ffffffffffff02000000000188b5"}}"#,
        "vni 0",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","vtep":"ff02::1","vni":5,"frame":"ffffffffffff02000000000188b5"}}"#,
        "unicast",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"p","frame":"ffffffffffff02000000000188b"}}"#,
        "odd number of hex digits",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"p","frame":"ffffffffffff02000000000188zz"}}"#,
        "not a hex digit",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"p","frame":"ffffffffffff"}}"#,
        "shorter than an Ethernet header",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"p"}}"#,
        "frame",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"","frame":"ffffffffffff02000000000188b5"}}"#,
        "empty name",
    ),
];

/// Requests that parse but that the handler must refuse (names that exist
/// twice or not at all), each with the text its error must contain.
const REFUSED: &[(&str, &str)] = &[
    (
        r#"{"version":1,"request":{"verb":"bd_add","name":"blue","vni":4000}}"#,
        "bridge domain \"blue\" already exists",
    ),
    (
        r#"{"version":1,"request":{"verb":"bd_del","name":"nosuch"}}"#,
        "no bridge domain \"nosuch\"",
    ),
    (
        r#"{"version":1,"request":{"verb":"attach","bd":"nosuch","port":"tap-vm1"}}"#,
        "no bridge domain \"nosuch\"",
    ),
    (
        r#"{"version":1,"request":{"verb":"attach","bd":"blue","port":"nosuch","vlan":30}}"#,
        "attachment to unknown port \"nosuch\"",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"nosuch","mac":"02:00:00:00:00:01","port":"tap-vm1"}}"#,
        "no bridge domain \"nosuch\"",
    ),
    (
        r#"{"version":1,"request":{"verb":"fdb_add","bd":"blue","mac":"02:00:00:00:00:01","port":"nosuch"}}"#,
        "no port \"nosuch\"",
    ),
    (
        r#"{"version":1,"request":{"verb":"trace","port":"nosuch","frame":"ffffffffffff02000000000188b5"}}"#,
        "no port \"nosuch\"",
    ),
];

/// Connects as uid/gid 65534 (nobody/nogroup) with python3 and returns the
/// daemon's first line.
fn call_as_nobody(path: &std::path::Path, gid: u32) -> String {
    use std::os::unix::process::CommandExt;
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(5)\n\
                  s.connect(sys.argv[1])\ns.sendall(b'{\"version\":1,\"request\":{\"verb\":\"show\"}}\\n')\n\
                  print(s.makefile().readline().strip())";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, path.to_str().unwrap()])
        .uid(65534)
        .gid(gid)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
