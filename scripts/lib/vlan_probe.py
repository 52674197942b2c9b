#!/usr/bin/env python3
"""The lab's VLAN-10 attachment, probed without an 8021q device.

Run inside vm3 (its eth0 faces nn-vm3, attached to VNI 100 on VLAN 10):

  scripts/lab.sh exec --id ID vm3 /usr/bin/python3 scripts/lib/vlan_probe.py [--target IP]

Sends an 802.1Q-tagged (VLAN 10) ARP request from vm3 (02:00:00:64:00:03,
10.100.0.3) for TARGET (default vm1, 10.100.0.1) on an AF_PACKET socket
and waits (bounded) for the reply. The network node must pop the tag on the
way in (vm1 sees a plain ARP request) and push it on the way out (the reply
reaches vm3 tagged with VLAN 10). Prints one line; exit 0 when the reply
came back tagged with VLAN 10 and from the target's MAC (--expect-mac).

--respond turns it around, for testing the probe itself: answer tagged ARP
requests on IFACE for --target as --expect-mac, for --seconds.
"""

import argparse
import select
import sys
import time

from scapy.all import ARP, Dot1Q, Ether, conf, sendp, sniff  # python3-scapy

VM3_MAC, VM3_IP, VLAN = "02:00:00:64:00:03", "10.100.0.3", 10


def probe(args):
    req = (Ether(src=VM3_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=args.vlan)
           / ARP(op="who-has", hwsrc=VM3_MAC, psrc=VM3_IP, pdst=args.target))
    seen = []

    def is_reply(p):
        return ARP in p and p[ARP].op == 2 and p[ARP].psrc == args.target and p[ARP].pdst == VM3_IP

    deadline = time.monotonic() + args.seconds
    sock = conf.L2socket(iface=args.iface)
    try:
        while time.monotonic() < deadline and not seen:
            sock.send(req)
            end = min(deadline, time.monotonic() + 1.0)
            while not seen:
                left = end - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    break  # bounded: never block on a silent wire
                p = sock.recv()
                if p is not None and is_reply(p):
                    seen.append(p)
    finally:
        sock.close()
    if not seen:
        print(f"no ARP reply for {args.target} within {args.seconds:g} s")
        return 1
    p = seen[0]
    vlan = p[Dot1Q].vlan if Dot1Q in p else None
    mac = p[ARP].hwsrc
    print(f"{args.target} is at {mac}, reply on VLAN {vlan}")
    if vlan != args.vlan:
        return 1
    if args.expect_mac and mac.lower() != args.expect_mac.lower():
        return 1
    return 0


def respond(args):
    def answer(p):
        if Dot1Q in p and ARP in p and p[ARP].op == 1 and p[ARP].pdst == args.target:
            sendp(Ether(src=args.expect_mac, dst=p[Ether].src) / Dot1Q(vlan=p[Dot1Q].vlan)
                  / ARP(op="is-at", hwsrc=args.expect_mac, psrc=args.target,
                        hwdst=p[ARP].hwsrc, pdst=p[ARP].psrc), iface=args.iface, verbose=0)

    sniff(iface=args.iface, prn=answer, store=False, timeout=args.seconds)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--target", default="10.100.0.1")
    ap.add_argument("--vlan", type=int, default=VLAN)
    ap.add_argument("--expect-mac", default="02:00:00:64:00:01")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--respond", action="store_true")
    args = ap.parse_args()
    conf.verb = 0
    return respond(args) if args.respond else probe(args)


if __name__ == "__main__":
    sys.exit(main())
