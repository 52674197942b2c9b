#!/usr/bin/env python3
"""Helpers of scripts/lab.sh and scripts/lab-test.sh: read what iproute2,
iperf3 and xvsctl print as JSON, and either show it to a person or check it.

  lab.py fdb-table                   < bridge -j fdb show br br-nn
  lab.py fdb-check --format kernel|xvs --mac MAC (--port P [--vlan V] | --vtep IP) < JSON
  lab.py link-table --node NODE [--header] < ip -j -s link show
  lab.py iperf-summary FILE          (iperf3 -J output; non-zero if nothing arrived)
  lab.py config-check FILE [--no-vlan]  (the generated xvsd config, with tomllib)
"""

import argparse
import ipaddress
import json
import sys

# Keep in step with scripts/lib/lab-common.sh.
VM_MACS = {
    "02:00:00:64:00:01": "vm1",
    "02:00:00:64:00:02": "vm2",
    "02:00:00:64:00:03": "vm3",
    "02:00:00:64:00:0b": "vmA",
    "02:00:00:64:00:0c": "vmB",
}
VTEPS = {"192.0.2.1": "compute A", "2001:db8::2": "compute B", "192.0.2.10": "nn", "2001:db8::10": "nn"}
ROLES = {
    "uplink": "underlay (VTEP)", "eth0": "underlay/VM port", "vx4": "VXLAN to compute A",
    "vx6": "VXLAN to compute B", "vx100": "VXLAN to nn", "nn-vm3": "vm3 (VLAN 10)",
}
NN_UL4, NN_UL6 = "192.0.2.10", "2001:db8::10"
CA_UL4, CB_UL6 = "192.0.2.1", "2001:db8::2"
VNI = 100
VM3_VLAN = 10


def ip_eq(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def load_stdin_json():
    text = sys.stdin.read()
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError as e:
        sys.exit(f"lab.py: not JSON ({e}): {text[:200]!r}")


# ------------------------------------------------------------------ FDB
def fdb_table(_args):
    """The learned FDB of the kernel network node, one line per MAC."""
    entries = load_stdin_json()
    rows = {}
    flood = []
    for e in entries:
        mac, dev = e.get("mac"), e.get("ifname", "?")
        if mac == "00:00:00:00:00:00" and e.get("dst"):
            flood.append((dev, e["dst"]))
            continue
        if e.get("state") == "permanent" or e.get("state") == "static":
            continue  # the bridge's own port addresses, multicast groups
        row = rows.setdefault((mac, dev), {"mac": mac, "dev": dev, "vtep": "", "age": ""})
        if e.get("dst"):
            row["vtep"] = e["dst"]
        if "updated" in e:
            row["age"] = f"{e['updated']}s"
    fmt = "  {:<19} {:<6} {:<8} {:<14} {}"
    print(fmt.format("MAC", "WHO", "PORT", "REMOTE VTEP", ""))
    for r in sorted(rows.values(), key=lambda r: (r["dev"], r["mac"])):
        who = VM_MACS.get(r["mac"], "?")
        vt = r["vtep"]
        note = f"({VTEPS[vt]})" if vt in VTEPS else ""
        print(fmt.format(r["mac"], who, r["dev"], vt or "-", note))
    for dev, dst in sorted(flood):
        print(fmt.format("(flood: BUM)", "", dev, dst, f"({VTEPS.get(dst, '?')}, head-end)"))
    if not rows:
        print("  (nothing learned)")


def fdb_check(args):
    """Is MAC learned against the expected port or VTEP?"""
    entries = load_stdin_json()
    mac = args.mac.lower()
    mine = [e for e in entries if str(e.get("mac", "")).lower() == mac]
    ok = False
    if args.format == "kernel":
        learned = [e for e in mine if e.get("master") and e.get("state") != "permanent"]
        if args.port:
            ok = any(e.get("ifname") == args.port for e in learned)
        else:
            # a bridge entry on a vxlan port and that port's own entry for
            # the MAC pointing at the VTEP
            vx = {e.get("ifname") for e in mine if e.get("dst") and ip_eq(e["dst"], args.vtep)}
            ok = any(e.get("ifname") in vx for e in learned)
    else:
        if isinstance(entries, dict):  # tolerate {"entries": [...]} wrappers
            mine = [e for e in entries.get("entries", []) if str(e.get("mac", "")).lower() == mac]
        for e in mine:
            if args.bd and str(e.get("bd")) != args.bd:
                continue
            if args.port and e.get("port") == args.port and e.get("vlan") == args.vlan:
                ok = True
            if args.vtep and e.get("vtep") and ip_eq(e["vtep"], args.vtep):
                ok = True
    if not ok:
        want = f"port {args.port}" + (f" vlan {args.vlan}" if args.vlan else "") if args.port else f"vtep {args.vtep}"
        print(f"lab.py: {mac} not learned on {want}; entries for it: {json.dumps(mine)}", file=sys.stderr)
    return 0 if ok else 1


# ------------------------------------------------------------------ counters
def link_table(args):
    links = load_stdin_json()
    fmt = "  {:<5} {:<8} {:>10} {:>8} {:>10} {:>8}  {}"
    if args.header:
        print(fmt.format("NODE", "DEV", "RX pkts", "RX drop", "TX pkts", "TX drop", "role"))
    for link in links:
        name = link.get("ifname", "?")
        if name == "lo":
            continue
        s = link.get("stats64", link.get("stats", {}))
        rx, tx = s.get("rx", {}), s.get("tx", {})
        kind = ROLES.get(name, "")
        master = link.get("master")
        if master:
            kind = f"{kind}, port of {master}" if kind else f"port of {master}"
        print(fmt.format(args.node, name, rx.get("packets", 0), rx.get("dropped", 0),
                         tx.get("packets", 0), tx.get("dropped", 0), kind))


# ------------------------------------------------------------------ iperf3
def iperf_summary(args):
    try:
        with open(args.file) as f:
            r = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"no iperf3 result ({e})")
        return 1
    if "error" in r:
        print(f"iperf3 error: {r['error']}")
        return 1
    end = r.get("end", {})
    recv = end.get("sum_received", {})
    sent = end.get("sum_sent", {})
    nbytes = recv.get("bytes", 0)
    bps = recv.get("bits_per_second", 0)
    secs = recv.get("seconds", 0)
    retr = sent.get("retransmits", "?")
    print(f"{bps / 1e9:.2f} Gbit/s, {nbytes / 1e6:.1f} MB received in {secs:.1f} s, {retr} retransmits")
    return 0 if nbytes > 0 else 1


# ------------------------------------------------------------------ config
def config_check(args):
    """The generated xvsd config parses as TOML and says what the lab is."""
    import tomllib

    with open(args.file, "rb") as f:
        try:
            cfg = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            print(f"config: not TOML: {e}", file=sys.stderr)
            return 1
    errors = []

    def expect(cond, what):
        if not cond:
            errors.append(what)

    # schema (control/src/config.rs denies unknown fields)
    expect(set(cfg) <= {"vtep", "port", "bridge_domain"}, f"unknown top-level keys {sorted(cfg)}")
    vtep = cfg.get("vtep", {})
    expect(set(vtep) <= {"local_ips", "udp_port", "ttl", "df"}, f"unknown vtep keys {sorted(vtep)}")
    local = [ipaddress.ip_address(a) for a in vtep.get("local_ips", [])]
    expect(local == [ipaddress.ip_address(NN_UL4), ipaddress.ip_address(NN_UL6)],
           f"vtep.local_ips {vtep.get('local_ips')}")
    expect(vtep.get("udp_port", 4789) == 4789, "udp_port")
    ports = cfg.get("port", [])
    for p in ports:
        expect(set(p) == {"name", "role"}, f"port keys {sorted(p)}")
        expect(0 < len(p.get("name", "")) <= 15, f"port name {p.get('name')!r} length")
    roles = {p.get("name"): p.get("role") for p in ports}
    want_ports = {"uplink": "uplink", "nn-vm1": "access", "nn-vm2": "access"}
    if not args.no_vlan:
        want_ports["nn-vm3"] = "access"
    expect(roles == want_ports and len(ports) == len(want_ports), f"ports {roles}, want {want_ports}")
    bds = cfg.get("bridge_domain", [])
    expect(len(bds) == 1, f"{len(bds)} bridge domains, want 1")
    for bd in bds:
        expect(set(bd) <= {"name", "vni", "flood", "attach", "max_macs"}, f"bd keys {sorted(bd)}")
        expect(bd.get("vni") == VNI, f"vni {bd.get('vni')}")
        flood = {ipaddress.ip_address(a) for a in bd.get("flood", [])}
        expect(flood == {ipaddress.ip_address(CA_UL4), ipaddress.ip_address(CB_UL6)},
               f"flood {bd.get('flood')}")
        expect(len(bd.get("flood", [])) == len(flood), "flood has duplicates")
        att = {(a.get("port"), a.get("vlan")) for a in bd.get("attach", [])}
        for a in bd.get("attach", []):
            expect(set(a) <= {"port", "vlan"}, f"attach keys {sorted(a)}")
            expect(roles.get(a.get("port")) == "access", f"attachment to non-access port {a}")
        want_att = {("nn-vm1", None), ("nn-vm2", None)}
        if not args.no_vlan:
            want_att.add(("nn-vm3", VM3_VLAN))
        expect(att == want_att, f"attachments {sorted(att, key=str)}, want {sorted(want_att, key=str)}")
    for e in errors:
        print(f"config: {e}", file=sys.stderr)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fdb-table")
    c = sub.add_parser("fdb-check")
    c.add_argument("--format", choices=["kernel", "xvs"], required=True)
    c.add_argument("--mac", required=True)
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--port")
    g.add_argument("--vtep")
    c.add_argument("--vlan", type=int)
    c.add_argument("--bd")
    c = sub.add_parser("link-table")
    c.add_argument("--node", required=True)
    c.add_argument("--header", action="store_true")
    c = sub.add_parser("iperf-summary")
    c.add_argument("file")
    c = sub.add_parser("config-check")
    c.add_argument("file")
    c.add_argument("--no-vlan", action="store_true")
    args = ap.parse_args()
    fn = {"fdb-table": fdb_table, "fdb-check": fdb_check, "link-table": link_table,
          "iperf-summary": iperf_summary, "config-check": config_check}[args.cmd]
    return fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
