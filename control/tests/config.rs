//! The configuration schema: the shipped example parses, dump → parse is the
//! identity, and every kind of bad config is refused with the error naming it.

use std::net::IpAddr;

use xvs_control::config::{Config, ConfigError, Role, DEFAULT_TTL, DEFAULT_UDP_PORT};

const EXAMPLE: &str = include_str!("../../docs/xvsd.example.toml");

#[test]
fn shipped_example_parses_with_every_field() {
    let c = Config::parse(EXAMPLE).expect("example config");
    assert_eq!(c.vtep.local_ips.len(), 2);
    assert_eq!(c.vtep.udp_port, 4789);
    assert_eq!(c.ports.len(), 3);
    assert_eq!(c.port("eth1").unwrap().role, Role::Uplink);
    let blue = c.bridge_domain("blue").unwrap();
    assert_eq!(blue.vni, Some(100));
    assert_eq!(blue.flood[1], "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(blue.attach[1].vlan, Some(10));
    assert_eq!(blue.max_macs, Some(16384));
    assert_eq!(blue.storm_pps, Some(10_000));
    assert!(!blue.learn_from_any_vtep);
    let red = c.bridge_domain("red").unwrap();
    assert_eq!((red.max_macs, red.storm_pps), (None, None));
    assert!(!red.learn_from_any_vtep);
}

#[test]
fn storm_limit_and_vtep_opt_in_parse_and_dump() {
    let c = Config::parse(&with(
        "learn_from_any_vtep = false",
        "learn_from_any_vtep = true\nstorm_pps = 1",
    ))
    .unwrap();
    let red = c.bridge_domain("red").unwrap();
    assert!(red.learn_from_any_vtep);
    assert_eq!(red.storm_pps, Some(1));
    let text = c.to_toml();
    assert!(text.contains("learn_from_any_vtep = true"), "{text}");
    assert!(text.contains("storm_pps = 1"), "{text}");
    assert_eq!(Config::parse(&text).unwrap(), c);
    // Defaults are left out of a dump: the opt-in off, no limit.
    let text = Config::parse(EXAMPLE).unwrap().to_toml();
    assert!(!text.contains("learn_from_any_vtep"), "{text}");
    assert_eq!(text.matches("storm_pps").count(), 1, "{text}");
    let e = Config::parse(&with("storm_pps = 10000", "storm_pps = 0")).unwrap_err();
    assert!(e.to_string().contains("blue"), "{e}");
}

#[test]
fn defaults_apply_when_fields_are_omitted() {
    let c = Config::parse("[vtep]\nlocal_ips = [\"198.51.100.1\"]\n").unwrap();
    assert_eq!(c.vtep.udp_port, DEFAULT_UDP_PORT);
    assert_eq!(c.vtep.ttl, DEFAULT_TTL);
    assert!(c.vtep.df);
    assert!(c.ports.is_empty() && c.bridge_domains.is_empty());
    assert_eq!(Config::parse("").unwrap(), Config::default());
}

#[test]
fn dump_then_parse_is_identity() {
    let c = Config::parse(EXAMPLE).unwrap();
    let text = c.to_toml();
    assert_eq!(Config::parse(&text).unwrap(), c, "dumped:\n{text}");
}

/// Builds a config from the example with one line replaced, so that each bad
/// case differs from a known-good file in exactly one place.
fn with(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "fixture line {from:?} missing");
    EXAMPLE.replacen(from, to, 1)
}

/// Checks that an error is the one a case expects.
type Expect = fn(&ConfigError) -> bool;

#[test]
fn bad_configs_are_refused_with_a_precise_error() {
    use ConfigError as E;
    let cases: Vec<(String, Expect)> = vec![
        (with("vni = 100", "vni = 0"), |e| {
            matches!(e, E::BadVni { vni: 0, .. })
        }),
        (with("vni = 100", "vni = 16777216"), |e| {
            matches!(e, E::BadVni { vni: 16777216, .. })
        }),
        (with("vni = 200", "vni = 100"), |e| {
            matches!(e, E::DuplicateVni { vni: 100, .. })
        }),
        (with("vlan = 10", "vlan = 4095"), |e| {
            matches!(e, E::BadVlan { vlan: 4095, .. })
        }),
        (with("vlan = 10", "vlan = 0"), |e| {
            matches!(e, E::BadVlan { vlan: 0, .. })
        }),
        (with("vlan = 20", "vlan = 10"), |e| {
            matches!(e, E::DuplicateAttachment { vlan: Some(10), .. })
        }),
        (
            with("{ port = \"tap-vm1\" }", "{ port = \"tap-vm9\" }"),
            |e| matches!(e, E::UnknownPort { port, .. } if port == "tap-vm9"),
        ),
        (with("{ port = \"tap-vm1\" }", "{ port = \"eth1\" }"), |e| {
            matches!(e, E::AttachToUplink { .. })
        }),
        (
            with("name = \"tap-vm2\"", "name = \"tap-vm1\""),
            |e| matches!(e, E::DuplicatePort(p) if p == "tap-vm1"),
        ),
        (
            with("name = \"eth1\"", "name = \"a-very-long-ifname\""),
            |e| matches!(e, E::BadPortName(_)),
        ),
        (with("name = \"eth1\"", "name = \"\""), |e| {
            matches!(e, E::BadPortName(_))
        }),
        (
            with("name = \"red\"", "name = \"blue\""),
            |e| matches!(e, E::DuplicateBd(b) if b == "blue"),
        ),
        (with("name = \"red\"", "name = \"\""), |e| {
            matches!(e, E::EmptyBdName)
        }),
        (
            with("\"192.0.2.1\", \"2001", "\"224.0.0.1\", \"2001"),
            |e| matches!(e, E::BadFloodAddress { .. }),
        ),
        (
            with("\"192.0.2.1\", \"2001", "\"192.0.2.10\", \"2001"),
            |e| matches!(e, E::BadFloodAddress { .. }),
        ),
        (
            with(
                "\"192.0.2.1\", \"2001:db8::2\"",
                "\"192.0.2.1\", \"192.0.2.1\"",
            ),
            |e| matches!(e, E::DuplicateFlood { .. }),
        ),
        (
            with("\"192.0.2.10\", \"2001:db8::10\"", "\"192.0.2.10\""),
            |e| matches!(e, E::NoLocalAddressForFamily { .. }),
        ),
        (
            with("flood = [\"192.0.2.1\"]", "flood = [\"239.1.1.1\"]"),
            |e| matches!(e, E::GroupNeedsAnyVtep { bd, .. } if bd == "red"),
        ),
        (
            with("\"192.0.2.1\", \"2001", "\"ff01::1:100\", \"2001"),
            |e| matches!(e, E::BadFloodAddress { .. }),
        ),
        (
            with("\"192.0.2.1\", \"2001", "\"224.0.0.251\", \"2001"),
            |e| matches!(e, E::BadFloodAddress { .. }),
        ),
        (with("max_macs = 16384", "max_macs = 0"), |e| {
            matches!(e, E::ZeroMaxMacs(_))
        }),
        (
            with("storm_pps = 10000", "storm_pps = 0"),
            |e| matches!(e, E::ZeroStormPps(b) if b == "blue"),
        ),
        (with("storm_pps = 10000", "storm_pps = -1"), |e| {
            matches!(e, E::Syntax(_))
        }),
        (with("storm_pps = 10000", "storm_pps = 4294967296"), |e| {
            matches!(e, E::Syntax(_))
        }),
        (
            with("learn_from_any_vtep = false", "learn_from_any_vtep = 1"),
            |e| matches!(e, E::Syntax(_)),
        ),
        (
            with("learn_from_any_vtep = false", "learn_from_any_vteps = true"),
            |e| matches!(e, E::Syntax(m) if m.contains("learn_from_any_vteps")),
        ),
        (with("\"192.0.2.10\", \"2001", "\"0.0.0.0\", \"2001"), |e| {
            matches!(e, E::BadLocalIp(_))
        }),
        (with("udp_port = 4789", "udp_port = 0"), |e| {
            matches!(e, E::ZeroUdpPort)
        }),
        (with("ttl = 64", "ttl = 0"), |e| matches!(e, E::ZeroTtl)),
        (with("udp_port = 4789", "udp_port = 70000"), |e| {
            matches!(e, E::Syntax(_))
        }),
        (with("role = \"uplink\"", "role = \"trunk\""), |e| {
            matches!(e, E::Syntax(_))
        }),
        (
            with("max_macs = 16384", "max_mac = 16384"),
            |e| matches!(e, E::Syntax(m) if m.contains("max_mac")),
        ),
        (with("vni = 100", "vni = \"100\""), |e| {
            matches!(e, E::Syntax(_))
        }),
        (with("\"192.0.2.1\", \"2001", "\"192.0.2\", \"2001"), |e| {
            matches!(e, E::Syntax(_))
        }),
        ("[[port]\nname=".to_string(), |e| matches!(e, E::Syntax(_))),
    ];
    assert!(Config::parse(EXAMPLE).is_ok());
    for (i, (text, expected)) in cases.iter().enumerate() {
        match Config::parse(text) {
            Ok(_) => panic!("case {i}: accepted a bad config:\n{text}"),
            Err(e) => {
                assert!(expected(&e), "case {i}: unexpected error {e:?}");
                assert!(!e.to_string().is_empty());
                // One line, as the control protocol and the logs want.
                assert!(!e.to_string().contains('\n'), "case {i}: {e}");
            }
        }
    }
}

#[test]
fn errors_name_the_item_at_fault() {
    let e = Config::parse(&with("vlan = 10", "vlan = 5000")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("blue") && msg.contains("tap-vm2") && msg.contains("5000"),
        "{msg}"
    );
    let e = Config::parse(&with("vlan = 20", "vlan = 10")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("blue") && msg.contains("red") && msg.contains("vlan 10"),
        "{msg}"
    );
}

#[test]
fn multicast_flood_groups_need_the_any_vtep_opt_in() {
    use xvs_control::config::is_flood_group;
    let text = with("flood = [\"192.0.2.1\"]", "flood = [\"239.1.1.1\"]")
        .replace("learn_from_any_vtep = false", "learn_from_any_vtep = true");
    let c = Config::parse(&text).expect("group with the opt-in");
    let red = c.bridge_domain("red").unwrap();
    assert_eq!(red.flood, vec!["239.1.1.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(Config::parse(&c.to_toml()).unwrap(), c);
    // IPv6 groups, mixed with unicast VTEPs.
    let text = text.replace("\"239.1.1.1\"", "\"ff05::100\", \"192.0.2.1\"");
    assert!(Config::parse(&text).is_ok(), "{text}");
    let e = Config::parse(&text.replace("learn_from_any_vtep = true", ""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("red") && e.contains("ff05::100") && e.contains("learn_from_any_vtep"),
        "{e}"
    );
    for (g, ok) in [
        ("239.1.1.1", true),
        ("224.0.1.1", true),
        ("224.0.0.1", false),
        ("192.0.2.1", false),
        ("ff02::1:100", true),
        ("ff0e::1", true),
        ("ff01::1", false),
        ("ff0f::1", false),
        ("2001:db8::1", false),
    ] {
        assert_eq!(is_flood_group(&g.parse().unwrap()), ok, "{g}");
    }
}

#[test]
fn syntax_errors_are_one_line_naming_where() {
    let text = EXAMPLE.replacen("udp_port = 4789", "udp_port = 70000", 1);
    let line = text
        .lines()
        .position(|l| l.contains("udp_port = 70000"))
        .expect("the replaced line")
        + 1;
    let e = Config::parse(&text).expect_err("out of range");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.starts_with(&format!("config syntax: line {line}, column ")),
        "{msg}"
    );
    let e = Config::parse("[[port]\nname=").expect_err("broken TOML");
    assert!(!e.to_string().contains('\n'), "{e}");
}
