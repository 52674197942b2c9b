#!/usr/bin/env bash
# The xvs lab: a network node, two compute nodes (kernel VXLAN VTEPs, one over
# an IPv4 underlay, one over IPv6) and VMs, all as network namespaces joined
# by veth pairs on this one machine. See docs/lab.md for the picture.
#
#   scripts/lab.sh up   [--node xvs|kernel] [--id ID] [--no-vlan] [--queues N] [--tx-off]
#   scripts/lab.sh down [--id ID]
#   scripts/lab.sh demo [--node xvs|kernel] [--id ID] [--no-vlan] [--queues N] [--tx-off]
#   scripts/lab.sh exec [--id ID] NODE CMD...   NODE: ul nn ca cb vm1 vm2 vm3 vma vmb
#   scripts/lab.sh ctl  [--id ID] XVSCTL-ARGS...   (xvsctl on the lab's socket)
#   scripts/lab.sh config [--no-vlan]              (print the xvsd config of the lab)
#   scripts/lab.sh list                            (ids of the labs that exist)
#
# The lab id (XVS_LAB_ID or --id; default: this script's PID) prefixes every
# namespace (xvs-<id>-<node>), so labs coexist. Needs root. Sends only to
# addresses inside its own namespaces; every wait is bounded.
#
# Environment: XVS_LAB_ID, XVSD / XVSCTL (binaries; default target/{release,
# debug}/ of this repo, then PATH), XVSD_ARGS (extra xvsd flags, e.g.
# "--xdp-mode native --queues 2"), XVS_LAB_UNDERLAY_MTU (default 1600),
# XVS_LAB_STATE (state root, default /run/xvs-lab).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib/lab-common.sh
. "$SCRIPT_DIR/lib/lab-common.sh"

usage() {
    sed -n '6,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- options
OPT_NODE=xvs
OPT_VLAN=1
OPT_QUEUES=1
OPT_TX_OFF=""
OPT_ID=${XVS_LAB_ID:-}
ARGS=()

parse_opts() {
    while (($#)); do
        case $1 in
            --node) OPT_NODE=${2:?--node needs a network node: kernel or xvs}; shift 2 ;;
            --node=*) OPT_NODE=${1#*=}; shift ;;
            --id) OPT_ID=${2:?--id needs a value}; shift 2 ;;
            --id=*) OPT_ID=${1#*=}; shift ;;
            --no-vlan) OPT_VLAN=0; shift ;;
            --queues) OPT_QUEUES=${2:?--queues needs a number}; shift 2 ;;
            --tx-off) OPT_TX_OFF=1; shift ;;
            -h|--help) usage ;;
            --) shift; ARGS+=("$@"); break ;;
            -*) lab_die "unknown option $1 (see --help)" ;;
            *) ARGS+=("$@"); break ;;   # first operand: the rest is a command
        esac
    done
    if ! [[ $OPT_NODE =~ ^[a-z0-9_]+$ ]] || ! declare -F "network_node_$OPT_NODE" >/dev/null; then
        lab_die "--node: no network node '$OPT_NODE' (kernel, xvs)"
    fi
    [[ $OPT_QUEUES =~ ^[1-9][0-9]?$ ]] || lab_die "--queues must be 1..99"
    # An AF_XDP path (xvs, OVS afxdp) moves frames as they are: senders must
    # fill checksums themselves. The kernel node needs no such help.
    if [ -z "$OPT_TX_OFF" ]; then
        if [ "$OPT_NODE" = kernel ]; then OPT_TX_OFF=0; else OPT_TX_OFF=1; fi
    fi
}

need_id() {
    [ -n "$OPT_ID" ] || lab_die "which lab? give --id ID or XVS_LAB_ID (scripts/lab.sh list)"
    lab_set_id "$OPT_ID" || exit 2
}

default_id() {
    [ -n "$OPT_ID" ] || OPT_ID=$$
    lab_set_id "$OPT_ID" || exit 2
}

need_root() {
    [ "$(id -u)" -eq 0 ] || lab_die "run as root (network namespaces)"
    local t
    for t in ip bridge ethtool ping "$LAB_PYTHON" timeout ss; do
        command -v "$t" >/dev/null || lab_die "missing $t (scripts/deps.sh installs it)"
    done
}

lab_nodes() {
    local n
    for n in "${LAB_ALL_NODES[@]}"; do
        [ "$n" = vm3 ] && [ "$OPT_VLAN" = 0 ] && continue
        echo "$n"
    done
}

# ---------------------------------------------------------------- building
# veth NODE1 IF1 NODE2 IF2: a veth pair created straight into two namespaces
# (never in the host's), with --queues RX/TX queues on each end.
veth() {
    local q=(numtxqueues "$OPT_QUEUES" numrxqueues "$OPT_QUEUES")
    ip -n "$(ns "$1")" link add name "$2" "${q[@]}" type veth \
        peer name "$4" "${q[@]}" netns "$(ns "$3")"
}

new_namespace() {
    local n=$1
    ip netns add "$(ns "$n")"
    # IPv6 only where the underlay needs it (nn's and cb's uplinks, enabled
    # per device below); no DAD anywhere, so addresses are usable at once.
    nsx "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    case $n in
        nn|cb) nsx "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 ;;
        *) nsx "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1 ;;
    esac
    ip -n "$(ns "$n")" link set lo up
}

# a bridge that floods and learns like a dumb switch: no STP, no IGMP/MLD
# snooping (nothing here would answer as a querier).
new_bridge() {
    ip -n "$(ns "$1")" link add name "$2" type bridge stp_state 0 mcast_snooping 0
}

enable_ipv6() { nsx "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=0"; }

build_underlay() {
    local u; u=$(ns ul)
    new_bridge ul br-ul
    veth ul ul-nn nn uplink
    veth ul ul-ca ca eth0
    veth ul ul-cb cb eth0
    local p
    for p in ul-nn ul-ca ul-cb; do
        ip -n "$u" link set "$p" mtu "$LAB_UNDERLAY_MTU" master br-ul up
    done
    ip -n "$u" link set br-ul mtu "$LAB_UNDERLAY_MTU" up
}

build_network_node_base() {
    local n; n=$(ns nn)
    enable_ipv6 nn uplink
    ip -n "$n" link set uplink address "$LAB_NN_UL_MAC" mtu "$LAB_UNDERLAY_MTU" up
    ip -n "$n" addr add "$LAB_NN_UL4/$LAB_UL4_PLEN" dev uplink
    ip -n "$n" addr add "$LAB_NN_UL6/$LAB_UL6_PLEN" dev uplink nodad
    local vm
    for vm in vm1 vm2 vm3; do
        [ "$vm" = vm3 ] && [ "$OPT_VLAN" = 0 ] && continue
        veth nn "nn-$vm" "$vm" eth0
        ip -n "$n" link set "nn-$vm" mtu "$LAB_VM_MTU" up
    done
    [ "$OPT_VLAN" = 0 ] || vlan_offload_off nn nn-vm3
}

# 802.1Q tags stay in the frame bytes (not in skb metadata) on vm3's link,
# where XDP and AF_PACKET see them.
vlan_offload_off() {
    nsx "$1" ethtool -K "$2" txvlan off rxvlan off \
        tx-vlan-stag-hw-insert off rx-vlan-stag-hw-parse off >/dev/null
}

# compute NODE VM LOCAL NN_ADDR: a plain Linux VTEP. vx100 learns remote MACs
# from decapsulated traffic; BUM goes by head-end replication to the network
# node (the all-zeros FDB entry); br0 joins it to the VM's veth.
build_compute() {
    local c=$1 vm=$2 local_ip=$3 nn_ip=$4 n
    n=$(ns "$c")
    ip -n "$n" link add name vx100 type vxlan id "$LAB_VNI" local "$local_ip" \
        dstport "$LAB_VXLAN_PORT" ttl "$LAB_TTL"
    ip -n "$n" link set vx100 mtu "$LAB_VM_MTU"
    bridge -n "$n" fdb append 00:00:00:00:00:00 dev vx100 dst "$nn_ip"
    new_bridge "$c" br0
    veth "$c" "$c-vm" "$vm" eth0
    ip -n "$n" link set "$c-vm" mtu "$LAB_VM_MTU" master br0 up
    ip -n "$n" link set vx100 master br0 up
    ip -n "$n" link set br0 up
}

build_computes() {
    local a b
    a=$(ns ca); b=$(ns cb)
    ip -n "$a" link set eth0 address "$LAB_CA_UL_MAC" mtu "$LAB_UNDERLAY_MTU" up
    ip -n "$a" addr add "$LAB_CA_UL4/$LAB_UL4_PLEN" dev eth0
    build_compute ca vma "$LAB_CA_UL4" "$LAB_NN_UL4"

    enable_ipv6 cb eth0
    ip -n "$b" link set eth0 address "$LAB_CB_UL_MAC" mtu "$LAB_UNDERLAY_MTU" up
    ip -n "$b" addr add "$LAB_CB_UL4/$LAB_UL4_PLEN" dev eth0
    ip -n "$b" addr add "$LAB_CB_UL6/$LAB_UL6_PLEN" dev eth0 nodad
    build_compute cb vmb "$LAB_CB_UL6" "$LAB_NN_UL6"
}

build_vms() {
    local vm n
    for vm in vm1 vm2 vm3 vma vmb; do
        [ "$vm" = vm3 ] && [ "$OPT_VLAN" = 0 ] && continue
        n=$(ns "$vm")
        ip -n "$n" link set eth0 address "${LAB_VM_MAC[$vm]}" mtu "$LAB_VM_MTU" up
        # vm3 has no 802.1Q device (no 8021q module here): its tagged frames
        # are crafted on an AF_PACKET socket, so eth0 carries no address.
        [ "$vm" = vm3 ] && { vlan_offload_off vm3 eth0; continue; }
        ip -n "$n" addr add "${LAB_VM_IP[$vm]}/$LAB_VM_PLEN" dev eth0
    done
}

# ---------------------------------------------------------------- network nodes
# A network-node implementation NAME (--node NAME) is a set of functions:
#   network_node_NAME        required: make nn switch VNI 100 between nn-vm1,
#                            nn-vm2 (nn-vm3 on VLAN 10 if it can), and the
#                            VTEPs 192.0.2.1 and 2001:db8::2. It is called
#                            when every namespace is built, the underlay
#                            answers, and nn has: uplink (192.0.2.10/24,
#                            2001:db8::10/64), nn-vm1..3 up, unbridged,
#                            unaddressed, and $LAB_STATE/xvsd.toml written.
#   network_node_NAME_down   optional: stop what it started (runs before the
#                            namespaces are deleted; must not fail)
#   network_node_NAME_fdb    optional: print the learned FDB for a person
#   network_node_NAME_stats  optional: print its own counters
# scripts/bench.sh may source this file and define more (e.g. ovs).

# The kernel network node: br-nn joins the access ports and two kernel VXLAN
# devices of VNI 100, vx4 to compute A over IPv4 and vx6 to compute B over
# IPv6 (each with its peer as the default BUM destination), learning on.
# nn-vm3 stays unbridged: mapping VLAN 10 onto br-nn needs the 8021q module,
# bridge VLAN filtering or tc's vlan action, none of which this kernel has.
network_node_kernel() {
    local n; n=$(ns nn)
    new_bridge nn br-nn
    ip -n "$n" link add name vx4 type vxlan id "$LAB_VNI" local "$LAB_NN_UL4" \
        remote "$LAB_CA_UL4" dstport "$LAB_VXLAN_PORT" ttl "$LAB_TTL" learning
    ip -n "$n" link add name vx6 type vxlan id "$LAB_VNI" local "$LAB_NN_UL6" \
        remote "$LAB_CB_UL6" dstport "$LAB_VXLAN_PORT" ttl "$LAB_TTL" learning
    local p
    for p in vx4 vx6; do ip -n "$n" link set "$p" mtu "$LAB_VM_MTU"; done
    for p in nn-vm1 nn-vm2 vx4 vx6; do ip -n "$n" link set "$p" master br-nn up; done
    ip -n "$n" link set br-nn up
}

# The xvsd configuration of this lab (schema: docs/xvsd.example.toml,
# control/src/config.rs): the uplink, the access ports, one bridge domain on
# VNI 100 flooding to both compute nodes, vm3's port attached on VLAN 10.
xvsd_config() {
    cat <<EOF
# xvsd configuration of lab ${LAB_ID:-?}, generated by scripts/lab.sh.
[vtep]
local_ips = ["$LAB_NN_UL4", "$LAB_NN_UL6"]
udp_port = $LAB_VXLAN_PORT
ttl = $LAB_TTL

[[port]]
name = "uplink"
role = "uplink"

[[port]]
name = "nn-vm1"
role = "access"

[[port]]
name = "nn-vm2"
role = "access"
EOF
    if [ "$OPT_VLAN" = 1 ]; then
        printf '\n[[port]]\nname = "nn-vm3"\nrole = "access"\n'
    fi
    local attach='{ port = "nn-vm1" }, { port = "nn-vm2" }'
    [ "$OPT_VLAN" = 1 ] && attach+=", { port = \"nn-vm3\", vlan = $LAB_VM3_VLAN }"
    cat <<EOF

[[bridge_domain]]
name = "vni$LAB_VNI"
vni = $LAB_VNI
flood = ["$LAB_CA_UL4", "$LAB_CB_UL6"]
attach = [$attach]
EOF
}

# find_bin NAME: $XVSD / $XVSCTL, else the newer of this repo's release and
# debug builds (under $CARGO_TARGET_DIR when set; a stale release build must
# not shadow a fresh debug one), else PATH.
find_bin() {
    local name=$1 var
    var=$(echo "$name" | tr '[:lower:]' '[:upper:]')
    if [ -n "${!var:-}" ]; then echo "${!var}"; return 0; fi
    local target=${CARGO_TARGET_DIR:-$REPO_DIR/target} d best=
    for d in "$target/release" "$target/debug"; do
        [ -x "$d/$name" ] || continue
        if [ -z "$best" ] || [ "$d/$name" -nt "$best" ]; then best=$d/$name; fi
    done
    [ -n "$best" ] && { echo "$best"; return 0; }
    command -v "$name"
}

# THE HOOK for xvs: access ports and uplink stay unbridged; xvsd runs inside
# nn with the generated config and the lab's own socket, its log in the state
# dir. Ready when the socket exists (bounded); a daemon that dies is reported
# with the end of its log.
network_node_xvs() {
    local bin
    bin=$(find_bin xvsd) || lab_die "xvsd not found: cargo build --release, or set XVSD=/path/to/xvsd"
    mkdir -p "$LAB_SOCK_DIR"
    rm -f "$LAB_SOCK"
    local extra=()
    # shellcheck disable=SC2206  # XVSD_ARGS is a flag list, split on purpose
    [ -n "${XVSD_ARGS:-}" ] && extra=($XVSD_ARGS)
    lab_log "starting $bin in $(ns nn) (log: $LAB_STATE/xvsd.log)"
    ip netns exec "$(ns nn)" "$bin" --config "$LAB_STATE/xvsd.toml" \
        --socket "$LAB_SOCK" "${extra[@]}" </dev/null >"$LAB_STATE/xvsd.log" 2>&1 &
    local pid=$!
    # pid and command name (as /proc/PID/comm shows it), checked before any kill
    local comm; comm=$(basename "$bin")
    echo "$pid ${comm:0:15}" >"$LAB_STATE/xvsd.pid"
    local i
    for ((i = 0; i < 150; i++)); do   # 15 s
        [ -S "$LAB_SOCK" ] && { lab_log "xvsd $pid is up on $LAB_SOCK"; return 0; }
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LAB_STATE/xvsd.log" >&2 || true
            lab_die "xvsd exited before opening $LAB_SOCK"
        fi
        sleep 0.1
    done
    tail -n 30 "$LAB_STATE/xvsd.log" >&2 || true
    lab_die "xvsd did not open $LAB_SOCK within 15 s"
}

# Checksum offload off on every sender whose frames reach an XDP port: the
# AF_XDP path moves frames as they are, so partial checksums must be filled
# by the sender (VMs, compute underlay ports, the underlay port facing nn).
tx_offload_off() {
    local vm
    for vm in vm1 vm2 vm3 vma vmb; do
        [ "$vm" = vm3 ] && [ "$OPT_VLAN" = 0 ] && continue
        nsx "$vm" ethtool -K eth0 tx off >/dev/null
    done
    nsx ca ethtool -K eth0 tx off >/dev/null
    nsx cb ethtool -K eth0 tx off >/dev/null
    nsx ul ethtool -K ul-nn tx off >/dev/null
}

# Underlay reachability from nn (also resolves the VTEPs' neighbours, which
# xvsd reads from the kernel).
check_underlay() {
    local dst
    for dst in "$LAB_CA_UL4" "$LAB_CB_UL6" "$LAB_CB_UL4"; do
        wait_until 10 "underlay $dst from nn" \
            ip netns exec "$(ns nn)" ping -n -q -c 1 -W 1 "$dst" ||
            lab_die "underlay: nn cannot reach $dst"
    done
}

lab_up() {
    need_root
    default_id
    [ -z "$(lab_namespaces)" ] || lab_die "lab $LAB_ID exists already (scripts/lab.sh down --id $LAB_ID)"
    UP_DONE=0
    trap 'if [ "$UP_DONE" = 0 ]; then lab_log "up failed, removing lab $LAB_ID"; lab_down; fi' EXIT
    mkdir -p "$LAB_STATE"
    echo "$OPT_NODE" >"$LAB_STATE/node"
    xvsd_config >"$LAB_STATE/xvsd.toml"
    local n
    for n in $(lab_nodes); do new_namespace "$n"; done
    build_underlay
    build_network_node_base
    build_computes
    build_vms
    [ "$OPT_TX_OFF" = 1 ] && tx_offload_off
    check_underlay
    "network_node_$OPT_NODE"
    UP_DONE=1
    trap - EXIT
    lab_log "lab $LAB_ID is up (node: $OPT_NODE, namespaces xvs-$LAB_ID-*)"
    lab_log "  try:  scripts/lab.sh exec --id $LAB_ID vm1 ping -c 3 ${LAB_VM_IP[vma]}"
    lab_log "  down: scripts/lab.sh down --id $LAB_ID"
}

network_node_kernel_fdb() {
    nsx nn bridge -j fdb show br br-nn | "$LAB_PYTHON" "$LAB_PY" fdb-table
}

network_node_xvs_fdb() {
    local ctl; ctl=$(find_bin xvsctl) || { echo "  (xvsctl not found)"; return 0; }
    "$ctl" --socket "$LAB_SOCK" fdb show || true
}

network_node_xvs_stats() {
    local ctl; ctl=$(find_bin xvsctl) || { echo "  (xvsctl not found)"; return 0; }
    # counters that moved (the full list: scripts/lab.sh ctl --id ID stats)
    "$ctl" --socket "$LAB_SOCK" stats | awk 'NR == 1 || $NF != 0' || true
    echo
}

# SIGTERM to the xvsd this lab started (it detaches its XDP programs and
# exits 0), SIGKILL after 5 s.
network_node_xvs_down() {
    local pidf="$LAB_STATE/xvsd.pid" pid comm i
    [ -f "$pidf" ] || return 0
    read -r pid comm <"$pidf" || true
    [[ ${pid:-} =~ ^[0-9]+$ ]] || return 0
    # only if that pid is still our xvsd (pids get reused)
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "${comm:-xvsd}" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    lab_log "xvsd $pid ignored SIGTERM for 5 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# Removes everything of lab LAB_ID that exists; never fails.
lab_down() {
    set +e
    local node
    node=$(cat "$LAB_STATE/node" 2>/dev/null)
    if [[ $node =~ ^[a-z0-9_]+$ ]] && declare -F "network_node_${node}_down" >/dev/null; then
        "network_node_${node}_down"
    fi
    local name pids i
    for name in $(lab_namespaces); do
        # processes the lab started inside (iperf3, tcpdump, xvsd): by pid
        pids=$(ip netns pids "$name" 2>/dev/null)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null
            for ((i = 0; i < 20; i++)); do
                [ -z "$(ip netns pids "$name" 2>/dev/null)" ] && break
                sleep 0.1
            done
            pids=$(ip netns pids "$name" 2>/dev/null)
            # shellcheck disable=SC2086
            [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        fi
        ip netns del "$name" 2>/dev/null || lab_log "could not delete namespace $name"
    done
    rm -f "$LAB_SOCK"
    rm -rf "${LAB_STATE:?}"
    set -e
    return 0
}

# ---------------------------------------------------------------- demo
bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

DEMO_OK=0
DEMO_FAIL=0
demo_result() {   # demo_result WHAT CMD...: one line, CMD's output after it
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        printf '  ok    %-52s %s\n' "$what" "$out"; DEMO_OK=$((DEMO_OK + 1))
    else
        printf '  FAIL  %-52s\n' "$what"; DEMO_FAIL=$((DEMO_FAIL + 1))
        [ -z "$out" ] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/        | /'
    fi
}

# demo_ping SRC DST: quiet ping, prints the round-trip summary
demo_ping() {
    local out
    out=$(lab_ping "$1" "$2" 2>&1) || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out" | sed -n 's|^rtt min/avg/max/mdev = [^/]*/\([^/]*\)/.*|rtt avg \1 ms|p'
}

demo_iperf() {
    local out="$LAB_STATE/iperf-$1-$2.json"
    lab_iperf "$1" "$2" "$out" || { tail -n 3 "$out" 2>/dev/null; return 1; }
    "$LAB_PYTHON" "$LAB_PY" iperf-summary "$out"
}

show_fdb() {
    if declare -F "network_node_${OPT_NODE}_fdb" >/dev/null; then
        "network_node_${OPT_NODE}_fdb"
    else
        echo "  (network node $OPT_NODE shows no FDB)"
    fi
}

show_counters() {
    local n
    if declare -F "network_node_${OPT_NODE}_stats" >/dev/null; then
        "network_node_${OPT_NODE}_stats"
    fi
    local hdr=(--header)
    for n in nn ca cb; do
        nsx "$n" ip -j -s link show | "$LAB_PYTHON" "$LAB_PY" link-table --node "$n" "${hdr[@]}"
        hdr=()
    done
}

# build_xvs: on a fresh machine the demo is one command: install what is
# missing and build xvsd/xvsctl (release) unless XVSD points at a binary.
build_xvs() {
    [ -n "${XVSD:-}" ] && return 0
    "$REPO_DIR/scripts/deps.sh"
    command -v cargo >/dev/null || PATH="$PATH:${HOME:-/root}/.cargo/bin"
    bold "== cargo build --release (xvsd, xvsctl)"
    (cd "$REPO_DIR" && cargo build --release --locked --quiet -p xvs-dataplane --bin xvsd -p xvs-control --bin xvsctl) ||
        lab_die "building xvsd failed"
    local target=${CARGO_TARGET_DIR:-$REPO_DIR/target}
    export XVSD="$target/release/xvsd" XVSCTL="$target/release/xvsctl"
}

lab_demo() {
    need_root
    default_id
    [ "$OPT_NODE" = xvs ] && build_xvs
    trap 'bold "== teardown"; lab_down' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    bold "== lab $LAB_ID up (network node: $OPT_NODE)"
    lab_up
    # lab_up cleared the EXIT trap: set ours again
    trap 'bold "== teardown"; lab_down' EXIT
    bold "== ping (3 echo requests each)"
    demo_result "vm1 -> vm2   ${LAB_VM_IP[vm2]}  (local, network node)" demo_ping vm1 vm2
    demo_result "vm1 -> vmA   ${LAB_VM_IP[vma]} (VXLAN over IPv4 underlay)" demo_ping vm1 vma
    demo_result "vm1 -> vmB   ${LAB_VM_IP[vmb]} (VXLAN over IPv6 underlay)" demo_ping vm1 vmb
    if [ "$OPT_NODE" = xvs ]; then
        demo_result "vmA -> vmB   ${LAB_VM_IP[vmb]} (VTEP to VTEP: split horizon)" lab_no_transit vma vmb
    else
        demo_result "vmA -> vmB   ${LAB_VM_IP[vmb]} (IPv4 -> network node -> IPv6)" demo_ping vma vmb
    fi
    bold "== TCP (iperf3, 2 s)"
    demo_result "vm1 -> vmA" demo_iperf vm1 vma
    demo_result "vm1 -> vmB" demo_iperf vm1 vmb
    bold "== learned FDB of the network node"
    show_fdb
    bold "== counters"
    show_counters
    bold "== $DEMO_OK ok, $DEMO_FAIL failed"
    [ "$DEMO_FAIL" = 0 ]
}

# ---------------------------------------------------------------- main
main() {
    local cmd=${1:-}
    [ -n "$cmd" ] || usage
    shift
    parse_opts "$@"
    case $cmd in
        up) ((${#ARGS[@]} == 0)) || usage; lab_up ;;
        down) ((${#ARGS[@]} == 0)) || usage; need_root; need_id; lab_down
              lab_log "lab $LAB_ID is down" ;;
        demo) ((${#ARGS[@]} == 0)) || usage; lab_demo ;;
        exec)
            need_id
            ((${#ARGS[@]} >= 2)) || lab_die "usage: lab.sh exec [--id ID] NODE CMD..."
            local node
            node=$(lab_node "${ARGS[0]}") || lab_die "unknown node ${ARGS[0]} (ul nn ca cb vm1 vm2 vm3 vma vmb)"
            [ -e "/run/netns/$(ns "$node")" ] || lab_die "lab $LAB_ID has no node $node"
            exec ip netns exec "$(ns "$node")" "${ARGS[@]:1}" ;;
        ctl)
            need_id
            local ctl; ctl=$(find_bin xvsctl) || lab_die "xvsctl not found (set XVSCTL)"
            exec "$ctl" --socket "$LAB_SOCK" "${ARGS[@]}" ;;
        config) ((${#ARGS[@]} == 0)) || usage; [ -z "$OPT_ID" ] || lab_set_id "$OPT_ID"; xvsd_config ;;
        list)
            ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^xvs-\([A-Za-z0-9_]*\)-ul$/\1/p' ;;
        -h|--help|help) usage ;;
        *) lab_die "unknown command $cmd (up down demo exec ctl config list)" ;;
    esac
}

# Run, unless sourced (scripts/bench.sh reuses the builders and nodes).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
