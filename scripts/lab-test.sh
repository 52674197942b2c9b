#!/usr/bin/env bash
# The lab's own test: builds a lab with a unique id, checks every path of it,
# tears it down (also on failure or Ctrl-C) and checks that nothing is left.
#
#   scripts/lab-test.sh [--node kernel|xvs] [--id ID] [--queues N] [--inject-failure]
#
# One line per check ("ok   …" / "FAIL …" with the evidence below it), then
# exactly "lab: N passed, N failed"; exit status 0 only when nothing failed.
# --inject-failure (or XVS_LAB_TEST_INJECT_FAILURE=1) adds a check that must
# fail, to see the failure path and the cleanup work. Needs root.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB="$SCRIPT_DIR/lab.sh"
# shellcheck source=scripts/lib/lab-common.sh
. "$SCRIPT_DIR/lib/lab-common.sh"

NODE=kernel
ID="t$$"
INJECT=${XVS_LAB_TEST_INJECT_FAILURE:-0}
QUEUES=1
while (($#)); do
    case $1 in
        --node) NODE=${2:?}; shift 2 ;;
        --id) ID=${2:?}; shift 2 ;;
        --queues) QUEUES=${2:?}; shift 2 ;;
        --inject-failure) INJECT=1; shift ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "lab-test: unknown argument $1" >&2; exit 2 ;;
    esac
done
case $NODE in kernel|xvs) ;; *) echo "lab-test: --node kernel|xvs" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "lab-test: run as root" >&2; exit 2; }
lab_set_id "$ID"
HOOK_ID="${ID}h"   # the second, short-lived lab of the xvsd-hook check

PASS=0
FAIL=0
FINISHED=0
TMP=$(mktemp -d /tmp/xvs-lab-test.XXXXXX)
# the test's own stdout/stderr, for the exit trap: an interrupt can arrive
# while a check has them redirected
exec 3>&1 4>&2

# check NAME CMD...: runs CMD, prints one line (with CMD's last output line
# as detail when it passes, its last lines as evidence when it fails).
check() {
    local name=$1 detail
    shift
    if "$@" >"$TMP/out" 2>&1; then
        detail=$(tail -n 1 "$TMP/out")
        printf 'ok   %s%s\n' "$name" "${detail:+  ($detail)}"
        PASS=$((PASS + 1))
    else
        printf 'FAIL %s\n' "$name"
        tail -n 8 "$TMP/out" | sed 's/^/     | /'
        FAIL=$((FAIL + 1))
    fi
}

summary() { echo "lab: $PASS passed, $FAIL failed"; }

no_namespaces_left() {
    local left
    left=$(ip netns list | awk '{print $1}' | grep -E "^xvs-($ID|$HOOK_ID)-" || true)
    [ -z "$left" ] || { echo "left: $left"; return 1; }
    [ ! -e "$LAB_STATE_ROOT/$ID" ] || { echo "state dir left"; return 1; }
    [ ! -e "$LAB_SOCK_DIR/$ID.sock" ] || { echo "socket left"; return 1; }
    echo "no xvs-$ID-* namespace"
}

teardown() {
    check "teardown: lab.sh down" "$LAB" down --id "$ID"
    check "teardown: down again is a no-op" "$LAB" down --id "$ID"
    check "teardown: nothing of lab $ID remains" no_namespaces_left
}

on_exit() {
    local rc=$?
    exec 1>&3 2>&4
    if [ "$FINISHED" = 0 ]; then
        printf 'FAIL test aborted (status %s) before the end\n' "$rc"
        FAIL=$((FAIL + 1))
        "$LAB" down --id "$HOOK_ID" >/dev/null 2>&1 || true
        teardown
        summary
    fi
    rm -rf "$TMP"
    [ "$FAIL" = 0 ] || exit 1
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- checks
all_namespaces() {
    local n
    for n in "${LAB_ALL_NODES[@]}"; do
        [ -e "/run/netns/$(ns "$n")" ] || { echo "missing $(ns "$n")"; return 1; }
    done
    echo "${#LAB_ALL_NODES[@]} namespaces"
}

# ARP from vm1 for vmA with cold neighbour tables: the broadcast request must
# reach BOTH compute nodes as VXLAN (head-end replication by the network node),
# and vm1 must end up with vmA's MAC.
tcpdump_start() {   # tcpdump_start NAME IFACE FILTER: one matching frame, bounded
    local name=$1 dev=$2 filter=$3
    timeout 10 ip netns exec "$(ns ul)" tcpdump -i "$dev" -n -l -c 1 "$filter" \
        >"$TMP/$name.cap" 2>"$TMP/$name.err" &
    echo $! >"$TMP/$name.pid"
    wait_until 5 "tcpdump on $dev" grep -q "listening on" "$TMP/$name.err"
}

tcpdump_wait() {   # tcpdump_wait NAME: did it see its frame?
    local pid rc=0
    pid=$(cat "$TMP/$1.pid")
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] && grep -q . "$TMP/$1.cap"
}

arp_head_end() {
    local a_mac=${LAB_VM_MAC[vma]} v1_mac=${LAB_VM_MAC[vm1]}
    # inner frame: broadcast destination, ARP ethertype; outer to each VTEP
    tcpdump_start arp4 ul-ca "udp dst port $LAB_VXLAN_PORT and dst host $LAB_CA_UL4 and udp[16:4] = 0xffffffff and udp[20:2] = 0xffff and udp[28:2] = 0x0806" || return 1
    tcpdump_start arp6 ul-cb "ip6 dst host $LAB_CB_UL6 and ip6[6] = 17 and ip6[42:2] = $LAB_VXLAN_PORT and ip6[56:4] = 0xffffffff and ip6[60:2] = 0xffff and ip6[68:2] = 0x0806" || return 1
    nsx vm1 ip neigh flush dev eth0
    nsx vma ip neigh flush dev eth0
    timeout 10 ip netns exec "$(ns vm1)" ping -n -q -c 1 -W 3 "${LAB_VM_IP[vma]}" || { echo "no echo reply"; return 1; }
    tcpdump_wait arp4 || { echo "no encapsulated ARP broadcast to compute A"; return 1; }
    tcpdump_wait arp6 || { echo "no encapsulated ARP broadcast to compute B"; return 1; }
    local got
    got=$(nsx vm1 ip -j neigh show "${LAB_VM_IP[vma]}" dev eth0 |
        "$LAB_PYTHON" -c 'import json,sys; print(next((n.get("lladdr","") for n in json.load(sys.stdin)), ""))')
    [ "$got" = "$a_mac" ] || { echo "vm1 resolved ${LAB_VM_IP[vma]} to '$got', want $a_mac"; return 1; }
    got=$(nsx vma ip -j neigh show "${LAB_VM_IP[vm1]}" dev eth0 |
        "$LAB_PYTHON" -c 'import json,sys; print(next((n.get("lladdr","") for n in json.load(sys.stdin)), ""))')
    [ "$got" = "$v1_mac" ] || { echo "vmA has '$got' for vm1, want $v1_mac"; return 1; }
    echo "request replicated to $LAB_CA_UL4 and $LAB_CB_UL6; ${LAB_VM_IP[vma]} is at $a_mac"
}

# vm_ping SRC DST [ping args]: prints "3/3 replies, rtt avg X ms"
vm_ping() { ping_summary lab_ping "$@"; }

# underlay_ping NODE ADDR
underlay_ping() { ping_summary lab_ping_addr "$@"; }

ping_summary() {   # ping_summary PING-FUNCTION ARGS...
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = 0 ] || { printf '%s\n' "$out"; return "$rc"; }
    printf '%s\n' "$out" | "$LAB_PYTHON" -c '
import re, sys
t = sys.stdin.read()
tx, rx = re.search(r"(\d+) packets transmitted, (\d+) received", t).groups()
avg = re.search(r"= [\d.]+/([\d.]+)/", t).group(1)
print(f"{rx}/{tx} replies, rtt avg {avg} ms")'
}

# vm_ping_df SRC DST: full-size (1500-byte) IPv4 packets, don't fragment
vm_ping_df() { vm_ping "$1" "$2" -M "do" -s $((LAB_VM_MTU - 28)); }

iperf() {   # iperf CLIENT SERVER [-R]
    local out="$TMP/iperf-$1-$2${3:-}.json"
    lab_iperf "$1" "$2" "$out" "${@:3}" || { tail -n 5 "$out"; return 1; }
    "$LAB_PYTHON" "$LAB_PY" iperf-summary "$out"
}

# network-node FDB as JSON (kernel bridge, or xvsctl)
nn_fdb() {
    if [ "$NODE" = kernel ]; then
        nsx nn bridge -j fdb show br br-nn
    else
        "$LAB" ctl --id "$ID" fdb show --json
    fi
}

fdb_has() {   # fdb_has VM --port P | --vtep IP
    local vm=$1
    shift
    local extra=()
    [ "$NODE" = xvs ] && extra=(--bd "vni$LAB_VNI")
    nn_fdb >"$TMP/fdb.json" || return 1
    "$LAB_PYTHON" "$LAB_PY" fdb-check --format "$NODE" --mac "${LAB_VM_MAC[$vm]}" "$@" "${extra[@]}" \
        <"$TMP/fdb.json" && echo "${LAB_VM_MAC[$vm]} $*"
}

compute_fdb_has() {   # compute_fdb_has NODE VM VTEP: the compute node learned VM behind VTEP
    local c=$1 vm=$2 vtep=$3
    nsx "$c" bridge -j fdb show br br0 |
        "$LAB_PYTHON" "$LAB_PY" fdb-check --format kernel --mac "${LAB_VM_MAC[$vm]}" --vtep "$vtep" &&
        echo "${LAB_VM_MAC[$vm]} via $vtep"
}

config_ok() {
    "$LAB_PYTHON" "$LAB_PY" config-check "$LAB_STATE/xvsd.toml" && echo "$LAB_STATE/xvsd.toml"
}

config_novlan_ok() {
    "$LAB" config --no-vlan >"$TMP/novlan.toml" &&
        "$LAB_PYTHON" "$LAB_PY" config-check --no-vlan "$TMP/novlan.toml" && echo "without nn-vm3"
}

vlan_port() {
    local mac
    nsx nn ip link show nn-vm3 up | grep -q . || { echo "nn-vm3 not up"; return 1; }
    mac=$(nsx vm3 cat /sys/class/net/eth0/address)
    [ "$mac" = "${LAB_VM_MAC[vm3]}" ] || { echo "vm3 eth0 is $mac"; return 1; }
    echo "nn-vm3 <-> vm3 eth0 $mac, VLAN $LAB_VM3_VLAN in the xvs config"
}

# The VLAN-10 path. The kernel node can't switch VLANs here (no 8021q, no
# bridge VLAN filtering), so with it only the wiring and the probe are
# tested: a responder on nn-vm3 answers vm3's tagged ARP, tagged. With xvs,
# the real path: vm3's tagged ARP for vm1 answered by vm1 through xvsd.
vlan_path() {
    local probe="$LAB_LIB_DIR/vlan_probe.py" rpid rc=0
    if [ "$NODE" = kernel ]; then
        timeout 10 ip netns exec "$(ns nn)" "$LAB_PYTHON" "$probe" --iface nn-vm3 --respond --seconds 6 &
        rpid=$!
        sleep 1.5   # scapy's start-up; the probe retries for 3 s anyway
    fi
    timeout 10 ip netns exec "$(ns vm3)" "$LAB_PYTHON" "$probe" \
        --target "${LAB_VM_IP[vm1]}" --expect-mac "${LAB_VM_MAC[vm1]}" --vlan "$LAB_VM3_VLAN" || rc=$?
    if [ -n "${rpid:-}" ]; then kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null; fi
    return "$rc"
}

# A stand-in xvsd: checks that it runs in the lab's nn namespace with the
# generated config (parsed with tomllib) and serves a Unix socket, then waits
# for SIGTERM. It exercises the --node xvs hook before the real daemon exists.
make_fake_xvsd() {
    mkdir -p "$TMP/bin"
    cat >"$TMP/bin/xvsd" <<'EOF'
#!/usr/bin/env python3
import os, signal, socket, subprocess, sys, tomllib
args = sys.argv[1:]
cfg, sock = args[args.index("--config") + 1], args[args.index("--socket") + 1]
with open(cfg, "rb") as f:
    tomllib.load(f)
here = subprocess.run(["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True).stdout.strip()
print(f"fake xvsd: netns={here} args={' '.join(args)}", flush=True)
s = socket.socket(socket.AF_UNIX)
s.bind(sock)
s.listen()
signal.signal(signal.SIGTERM, lambda *_: (os.unlink(sock), sys.exit(0)))
signal.pause()
EOF
    chmod +x "$TMP/bin/xvsd"
}

xvs_hook() {
    make_fake_xvsd
    local log="$LAB_STATE_ROOT/$HOOK_ID/xvsd.log" sock="$LAB_SOCK_DIR/$HOOK_ID.sock"
    XVSD="$TMP/bin/xvsd" XVSD_ARGS="--queues 1" "$LAB" up --node xvs --id "$HOOK_ID" --no-vlan ||
        { echo "up --node xvs failed"; return 1; }
    [ -S "$sock" ] || { echo "no socket $sock"; return 1; }
    cat "$log"
    grep -q "netns=xvs-$HOOK_ID-nn " "$log" || { echo "xvsd not in xvs-$HOOK_ID-nn"; return 1; }
    grep -q -- "--config $LAB_STATE_ROOT/$HOOK_ID/xvsd.toml --socket $sock --queues 1" "$log" ||
        { echo "unexpected xvsd arguments"; return 1; }
    if ip -n "xvs-$HOOK_ID-nn" -o link show | grep -q ' master '; then
        echo "ports are bridged in xvs mode"; return 1
    fi
    "$LAB" down --id "$HOOK_ID" || return 1
    if [ -e "$sock" ] || ip netns list | grep -q "^xvs-$HOOK_ID-"; then
        echo "xvs lab $HOOK_ID not fully removed"; return 1
    fi
    echo "stand-in xvsd started in nn with the generated config, stopped by down"
}

xvs_hook_dead_daemon() {
    # a daemon that exits at once: up must fail and leave nothing behind
    if XVSD=/bin/false "$LAB" up --node xvs --id "$HOOK_ID" --no-vlan; then
        echo "up succeeded with a dead daemon"; return 1
    fi
    [ -z "$(ip netns list | grep "^xvs-$HOOK_ID-" || true)" ] || { echo "namespaces left"; return 1; }
    echo "up failed and removed its namespaces"
}

# the deliberately failing check of --inject-failure
fdb_has_injected() { fdb_has vm1 --port nn-vm2; }

xvsd_alive() { "$LAB" ctl --id "$ID" show; }

# ---------------------------------------------------------------- run
echo "lab-test: lab $ID, network node: $NODE, $QUEUES queue(s) per veth"
lab_up() { "$LAB" up --node "$NODE" --id "$ID" --queues "$QUEUES" && echo "namespaces xvs-$ID-*"; }

if check "lab up (--node $NODE)" lab_up; then
    check "namespaces: all nodes exist" all_namespaces
    [ "$NODE" = xvs ] && check "xvsd answers on its socket" xvsd_alive
    check "underlay v4: nn -> compute A ($LAB_CA_UL4)" underlay_ping nn "$LAB_CA_UL4"
    check "underlay v4: compute A -> nn ($LAB_NN_UL4)" underlay_ping ca "$LAB_NN_UL4"
    check "underlay v6: nn -> compute B ($LAB_CB_UL6)" underlay_ping nn "$LAB_CB_UL6"
    check "underlay v6: compute B -> nn ($LAB_NN_UL6)" underlay_ping cb "$LAB_NN_UL6"
    check "ARP vm1 -> vmA through head-end replication" arp_head_end
    check "ping vm1 -> vm2 (local)" vm_ping vm1 vm2
    check "ping vm2 -> vm1 (local)" vm_ping vm2 vm1
    check "ping vm1 -> vmA (v4 underlay)" vm_ping vm1 vma
    check "ping vmA -> vm1 (v4 underlay)" vm_ping vma vm1
    check "ping vm1 -> vmB (v6 underlay)" vm_ping vm1 vmb
    check "ping vmB -> vm1 (v6 underlay)" vm_ping vmb vm1
    if [ "$NODE" = xvs ]; then
        check "split horizon: vmA -> vmB not forwarded VTEP to VTEP" lab_no_transit vma vmb
        check "split horizon: vmB -> vmA not forwarded VTEP to VTEP" lab_no_transit vmb vma
    else
        check "ping vmA -> vmB (v4 -> nn -> v6)" vm_ping vma vmb
        check "ping vmB -> vmA (v6 -> nn -> v4)" vm_ping vmb vma
    fi
    check "MTU: 1500-byte DF ping vm1 -> vmA" vm_ping_df vm1 vma
    check "MTU: 1500-byte DF ping vm1 -> vmB" vm_ping_df vm1 vmb
    check "TCP vm1 -> vmA (iperf3 2 s)" iperf vm1 vma
    check "TCP vmA -> vm1 (iperf3 2 s, -R)" iperf vm1 vma -R
    check "TCP vm1 -> vmB (iperf3 2 s)" iperf vm1 vmb
    check "TCP vmB -> vm1 (iperf3 2 s, -R)" iperf vm1 vmb -R
    check "FDB nn: vm1 on nn-vm1" fdb_has vm1 --port nn-vm1
    check "FDB nn: vm2 on nn-vm2" fdb_has vm2 --port nn-vm2
    check "FDB nn: vmA behind VTEP $LAB_CA_UL4" fdb_has vma --vtep "$LAB_CA_UL4"
    check "FDB nn: vmB behind VTEP $LAB_CB_UL6" fdb_has vmb --vtep "$LAB_CB_UL6"
    check "FDB compute A: vm1 behind VTEP $LAB_NN_UL4" compute_fdb_has ca vm1 "$LAB_NN_UL4"
    check "FDB compute B: vm1 behind VTEP $LAB_NN_UL6" compute_fdb_has cb vm1 "$LAB_NN_UL6"
    check "VLAN port: nn-vm3 and vm3 exist" vlan_port
    if [ "$NODE" = kernel ]; then
        check "VLAN $LAB_VM3_VLAN probe: vm3's tagged ARP answered tagged on nn-vm3 (wiring only)" vlan_path
    else
        check "VLAN $LAB_VM3_VLAN: vm3's tagged ARP for vm1 answered, re-tagged" vlan_path
    fi
    check "xvsd config of the lab parses and matches (tomllib)" config_ok
    check "xvsd config --no-vlan parses and matches" config_novlan_ok
    if [ "$INJECT" = 1 ]; then
        check "injected failure (must fail): vm1's MAC on nn-vm2" fdb_has_injected
    fi
fi
check "xvs hook: stand-in xvsd runs in nn, down stops it" xvs_hook
check "xvs hook: a daemon that dies fails up and leaves nothing" xvs_hook_dead_daemon
teardown
FINISHED=1
summary
