# shellcheck shell=bash
# shellcheck disable=SC2034  # the constants are used by the scripts that source this
# Shared by scripts/lab.sh and scripts/lab-test.sh (sourced, not run): the
# lab's fixed addresses and names, and small bounded helpers.
# Topology and the reasons behind the numbers: docs/lab.md.

# ---------------------------------------------------------------- addresses
LAB_VNI=100
LAB_VXLAN_PORT=4789
LAB_TTL=64
# The underlay carries VMs' full 1500-byte frames plus VXLAN overhead (50 bytes
# over IPv4, 70 over IPv6), so VMs keep the ordinary MTU of 1500 on every path.
LAB_UNDERLAY_MTU=${XVS_LAB_UNDERLAY_MTU:-1600}
LAB_VM_MTU=1500

LAB_NN_UL4=192.0.2.10     # network node uplink (VTEP, IPv4)
LAB_NN_UL6=2001:db8::10   # network node uplink (VTEP, IPv6)
LAB_CA_UL4=192.0.2.1      # compute A: IPv4 VTEP
LAB_CB_UL6=2001:db8::2    # compute B: IPv6 VTEP
LAB_CB_UL4=192.0.2.2      # compute B: management only (its VXLAN runs over IPv6)
LAB_UL4_PLEN=24
LAB_UL6_PLEN=64

LAB_NN_UL_MAC=02:00:c0:00:02:0a
LAB_CA_UL_MAC=02:00:c0:00:02:01
LAB_CB_UL_MAC=02:00:c0:00:02:02

# VMs: overlay 10.100.0.0/24 (VNI 100). MAC = 02:00:00:64:00:<last octet in hex>.
declare -A LAB_VM_IP=([vm1]=10.100.0.1 [vm2]=10.100.0.2 [vm3]=10.100.0.3
                      [vma]=10.100.0.11 [vmb]=10.100.0.12)
declare -A LAB_VM_MAC=([vm1]=02:00:00:64:00:01 [vm2]=02:00:00:64:00:02
                       [vm3]=02:00:00:64:00:03 [vma]=02:00:00:64:00:0b
                       [vmb]=02:00:00:64:00:0c)
LAB_VM_PLEN=24
LAB_VM3_VLAN=10   # vm3's attachment on nn-vm3 is 802.1Q-tagged with this VLAN

# Every node of a lab, in build order; vm3 exists unless --no-vlan.
LAB_ALL_NODES=(ul nn ca cb vm1 vm2 vm3 vma vmb)

LAB_STATE_ROOT=${XVS_LAB_STATE:-/run/xvs-lab}
LAB_SOCK_DIR=/run/xvs

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_PY="$LAB_LIB_DIR/lab.py"
# Debian's python3 (3.11: tomllib; python3-scapy installs there), not a
# pyenv or venv python3 that may come first on PATH.
LAB_PYTHON=${XVS_LAB_PYTHON:-python3}
if [ -z "${XVS_LAB_PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then LAB_PYTHON=/usr/bin/python3; fi

# ---------------------------------------------------------------- names
# A lab id: letters, digits and '_' only, so "xvs-<id>-" never prefixes the
# namespaces of another lab.
lab_valid_id() { [[ $1 =~ ^[A-Za-z0-9_]{1,24}$ ]]; }

# lab_set_id ID: sets LAB_ID and everything named after it.
lab_set_id() {
    lab_valid_id "$1" || { echo "lab: bad id '$1' (1-24 of [A-Za-z0-9_])" >&2; return 2; }
    LAB_ID=$1
    LAB_STATE="$LAB_STATE_ROOT/$LAB_ID"
    LAB_SOCK="$LAB_SOCK_DIR/$LAB_ID.sock"
}

# ns NODE: the namespace name of a node (ul nn ca cb vm1 vm2 vm3 vma vmb).
ns() { printf 'xvs-%s-%s\n' "$LAB_ID" "$1"; }

# nsx NODE CMD...: run CMD in a node's namespace.
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

# lab_node NAME: canonical node name for what a user typed (case-insensitive,
# a few aliases), or non-zero.
lab_node() {
    local n=${1,,}
    case $n in
        ul|underlay) echo ul ;;
        nn|network|netnode) echo nn ;;
        ca|a|computea) echo ca ;;
        cb|b|computeb) echo cb ;;
        vm1|vm2|vm3|vma|vmb) echo "$n" ;;
        *) return 1 ;;
    esac
}

# lab_namespaces: the namespaces of this lab that exist now.
lab_namespaces() {
    local n name
    for n in "${LAB_ALL_NODES[@]}"; do
        name=$(ns "$n")
        [ -e "/run/netns/$name" ] && echo "$name"
    done
    return 0
}

# ---------------------------------------------------------------- helpers
lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# wait_until SECONDS WHAT CMD...: poll CMD every 0.1 s, at most SECONDS*10
# times; non-zero (with a message) when it never succeeded.
wait_until() {
    local secs=$1 what=$2 i tries
    shift 2
    tries=$((secs * 10))
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    lab_log "timed out after ${secs}s waiting for $what"
    return 1
}

# lab_ping SRC DST [extra ping args]: 3 echo requests from node SRC to VM
# DST's overlay address, all answered within 6 s.
lab_ping() {
    local src=$1 dst=$2
    shift 2
    timeout 10 ip netns exec "$(ns "$src")" \
        ping -n -q -c 3 -i 0.2 -w 6 "$@" "${LAB_VM_IP[$dst]}"
}

# lab_no_transit SRC DST: succeeds when SRC gets NO reply from DST. For xvs,
# which never forwards a frame from one VTEP to another (split horizon, as
# Neutron's br-tun): vmA <-> vmB through the network node must not work.
lab_no_transit() {
    if lab_ping "$1" "$2" >/dev/null 2>&1; then
        echo "$1 reached $2 through the network node"
        return 1
    fi
    echo "no reply: VTEP to VTEP is not forwarded (split horizon)"
}

# lab_ping_addr NODE ADDR: the same to any address (underlay checks).
lab_ping_addr() {
    local src=$1 addr=$2
    timeout 10 ip netns exec "$(ns "$src")" ping -n -q -c 3 -i 0.2 -w 6 "$addr"
}

# lab_iperf CLIENT SERVER OUT [-R]: a bounded 2-second iperf3 TCP transfer
# between VMs (CLIENT sends, or SERVER sends with -R); iperf3's JSON in OUT.
lab_iperf() {
    local cli=$1 srv=$2 out=$3 rc=0 spid
    shift 3
    local ip=${LAB_VM_IP[$srv]} port=5201
    timeout 25 ip netns exec "$(ns "$srv")" \
        iperf3 -s -1 -B "$ip" -p "$port" --rcv-timeout 10000 >/dev/null 2>&1 &
    spid=$!
    if ! wait_until 5 "iperf3 server in $srv" \
        ip netns exec "$(ns "$srv")" sh -c "ss -Hltn 'sport = :$port' | grep -q ."; then
        kill "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        return 1
    fi
    timeout 20 ip netns exec "$(ns "$cli")" \
        iperf3 -c "$ip" -p "$port" -t 2 -J --connect-timeout 3000 "$@" >"$out" 2>&1 || rc=$?
    # the one-off server exits after its client; don't leave it behind.
    local i
    for ((i = 0; i < 30; i++)); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    return "$rc"
}
