#!/usr/bin/env bash
# The line-rate benchmark: xvs, the Linux kernel (bridge + vxlan), Open
# vSwitch (userspace datapath, AF_XDP ports) and the lab's ceiling (the
# generator straight into the sink), measured in one run on the same
# topology and cores. docs/performance.md ("Line rate") explains the setup
# and how to read the output.
#
#   scripts/bench.sh [--json FILE] [--chart FILE] [--smoke]
#                    [--scenario encap,decap,many-macs,flood]
#                    [--system ceiling,kernel,ovs,xvs] [--runs N] [--seconds S]
#                    [--release]
#
# Output: a table on stdout; --json FILE: per scenario, the Mpps of every
# system and xvs's ratios; a PNG chart (default docs/bench/line-rate.png and
# the JSON beside it, full runs only). --smoke: two short runs per system and
# scenario that only checks every system forwarded something (CI; never a
# timed assertion; debug builds unless --release). Needs root; installs
# Open vSwitch and gnuplot on demand.
#
# Environment: XVS_BENCH_GEN_CPU (generator core, default 0),
# XVS_BENCH_SUT_CPU (the network node's core, default 1), XVS_BENCH_NICE
# (their nice level, default -20), XVSD (an xvsd
# binary instead of building one), XVS_GEN and XVS_SINK (both set: prebuilt
# generator and sink, nothing is built), CARGO_TARGET_DIR, XVS_BENCH_ID (lab id).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lab.sh
. "$BENCH_DIR/lab.sh"
# shellcheck source=scripts/lib/bench-nodes.sh
. "$BENCH_DIR/lib/bench-nodes.sh"
# shellcheck source=scripts/lib/bench-report.sh
. "$BENCH_DIR/lib/bench-report.sh"

ALL_SCENARIOS=(encap decap many-macs flood)
ALL_SYSTEMS=(ceiling kernel ovs xvs)

bench_usage() {
    sed -n '8,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

OPT_JSON=""
OPT_CHART=""
OPT_SMOKE=0
OPT_RELEASE=0
OPT_SCENARIOS=$(IFS=,; echo "${ALL_SCENARIOS[*]}")
OPT_SYSTEMS=$(IFS=,; echo "${ALL_SYSTEMS[*]}")
OPT_RUNS=""
OPT_SECONDS=""
while (($#)); do
    case $1 in
        --json) OPT_JSON=${2:?--json needs a file}; shift 2 ;;
        --chart) OPT_CHART=${2:?--chart needs a file}; shift 2 ;;
        --smoke) OPT_SMOKE=1; shift ;;
        --release) OPT_RELEASE=1; shift ;;
        --scenario|--scenarios) OPT_SCENARIOS=${2:?--scenario needs a list}; shift 2 ;;
        --system|--systems) OPT_SYSTEMS=${2:?--system needs a list}; shift 2 ;;
        --runs) OPT_RUNS=${2:?--runs needs a number}; shift 2 ;;
        --seconds) OPT_SECONDS=${2:?--seconds needs a number}; shift 2 ;;
        -h|--help) bench_usage ;;
        *) bench_log "unknown option $1"; bench_usage ;;
    esac
done

if [ "$OPT_SMOKE" = 1 ]; then
    # Two short runs: a system passes when either forwarded, so one run
    # starved by a loaded machine does not fail CI (no timed assertion).
    RUNS=${OPT_RUNS:-2}; SECONDS_PER_RUN=${OPT_SECONDS:-1}; WARMUP=0.3
else
    RUNS=${OPT_RUNS:-3}; SECONDS_PER_RUN=${OPT_SECONDS:-3}; WARMUP=0.5
    OPT_CHART=${OPT_CHART:-$REPO_DIR/docs/bench/line-rate.png}
fi
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || lab_die "--runs must be 1..99"
[[ $SECONDS_PER_RUN =~ ^[0-9]+(\.[0-9]+)?$ ]] || lab_die "--seconds must be a number"
IFS=, read -r -a SCENARIOS <<<"$OPT_SCENARIOS"
IFS=, read -r -a SYSTEMS <<<"$OPT_SYSTEMS"
for s in "${SCENARIOS[@]}"; do
    [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || lab_die "unknown scenario $s (${ALL_SCENARIOS[*]})"
done
for s in "${SYSTEMS[@]}"; do
    [[ " ${ALL_SYSTEMS[*]} " == *" $s "* ]] || lab_die "unknown system $s (${ALL_SYSTEMS[*]})"
done

BENCH_GEN_CPU=${XVS_BENCH_GEN_CPU:-0}
BENCH_SUT_CPU=${XVS_BENCH_SUT_CPU:-1}
# The generator and the network node's threads run at this nice level, so
# that other work on the machine (compilers) takes less from the
# measurement; kernel forwarding runs in softirq context, above any task.
BENCH_NICE=${XVS_BENCH_NICE:--20}
[[ $BENCH_NICE =~ ^-?[0-9]+$ ]] || lab_die "XVS_BENCH_NICE must be a nice level (-20..19)"
[ "$(id -u)" -eq 0 ] || lab_die "run as root (network namespaces, XDP)"

# ---------------------------------------------------------------- deps
# Open vSwitch and gnuplot only for the benchmark (scripts/deps.sh keeps the
# test path light); Debian 12's openvswitch-switch is linked with libxdp.
bench_deps() {
    "$REPO_DIR/scripts/deps.sh"
    local want=() p
    [[ " ${SYSTEMS[*]} " == *" ovs "* ]] && want+=(openvswitch-switch)
    [ -n "$OPT_CHART" ] && want+=(gnuplot-nox)
    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        bench_log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

# ---------------------------------------------------------------- build
# Full runs measure release builds; the smoke run only needs frames to
# move, so it reuses the debug build that scripts/test.sh already made.
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_DIR/target}
if [ "$OPT_SMOKE" = 1 ] && [ "$OPT_RELEASE" = 0 ]; then
    PROFILE=debug; CARGO_PROFILE=()
else
    PROFILE=release; CARGO_PROFILE=(--release)
fi
GEN=${XVS_GEN:-$TARGET_DIR/$PROFILE/xvs-gen}
SINK=${XVS_SINK:-$TARGET_DIR/$PROFILE/xvs-sink}
declare -A UNAVAILABLE=()

bench_build() {
    command -v cargo >/dev/null || PATH="$PATH:${HOME:-/root}/.cargo/bin"
    if [ -n "${XVS_GEN:-}" ] && [ -n "${XVS_SINK:-}" ]; then
        # prebuilt (e.g. while the tree is mid-edit): nothing to build
        if [ ! -x "$GEN" ] || [ ! -x "$SINK" ]; then lab_die "XVS_GEN/XVS_SINK are not executable"; fi
    else
        bench_log "building xvs-gen, xvs-sink ($PROFILE)"
        (cd "$REPO_DIR" && cargo build "${CARGO_PROFILE[@]}" --locked --quiet -p xvs-benches --bins) ||
            lab_die "cannot build the generator and sink"
    fi
    if [[ " ${SYSTEMS[*]} " == *" xvs "* ]]; then
        if [ -n "${XVSD:-}" ]; then
            [ -x "$XVSD" ] || UNAVAILABLE[xvs]="XVSD=$XVSD is not executable"
        elif [ ! -d "$REPO_DIR/dataplane/src/bin/xvsd" ]; then
            UNAVAILABLE[xvs]="xvsd does not exist yet"
        elif (cd "$REPO_DIR" && cargo build "${CARGO_PROFILE[@]}" --locked --quiet -p xvs-dataplane \
            --bin xvsd) >"$RESULTS_DIR/xvsd-build.log" 2>&1; then
            export XVSD=$TARGET_DIR/$PROFILE/xvsd
            # xvsctl, for the counters kept with the results (optional)
            (cd "$REPO_DIR" && cargo build "${CARGO_PROFILE[@]}" --locked --quiet -p xvs-control \
                --bin xvsctl) >>"$RESULTS_DIR/xvsd-build.log" 2>&1 || true
        else
            UNAVAILABLE[xvs]="xvsd does not build (see $RESULTS_DIR/xvsd-build.log)"
        fi
    fi
    if [[ " ${SYSTEMS[*]} " == *" ovs "* ]] && ! command -v ovs-vswitchd >/dev/null; then
        UNAVAILABLE[ovs]="ovs-vswitchd not installed"
    fi
}

# ---------------------------------------------------------------- one lab
BENCH_SYS=""
# bench_up_job SYSTEM: fresh topology + network node. Run as a background
# job (so `set -e` holds inside it and a failure is one exit status).
bench_up_job() {
    [ -z "$(lab_namespaces)" ] || lab_die "lab $LAB_ID exists (scripts/lab.sh down --id $LAB_ID)"
    mkdir -p "$LAB_STATE"
    bench_topology
    if [ "$1" != ceiling ]; then
        "bench_node_$1"
    fi
}

bench_down() {
    [ -n "$BENCH_SYS" ] || return 0
    # keep the network node's logs and counters with the results
    local keep="$RESULTS_DIR/$BENCH_SYS-${BENCH_SC:-x}"
    if [ "$BENCH_SYS" = xvs ] && [ -S "$LAB_SOCK" ]; then
        local ctl; ctl=${XVSCTL:-$(dirname "${XVSD:-/nonexistent}")/xvsctl}
        [ -x "$ctl" ] && timeout 5 "$ctl" --socket "$LAB_SOCK" stats >"$keep.stats.txt" 2>&1
    fi
    [ -f "$LAB_STATE/xvsd.log" ] && cp "$LAB_STATE/xvsd.log" "$keep.xvsd.log"
    [ -f "$LAB_STATE/ovs/ovs-vswitchd.log" ] && cp "$LAB_STATE/ovs/ovs-vswitchd.log" "$keep.ovs-vswitchd.log"
    if [ "$BENCH_SYS" = ovs ] && [ -S "$LAB_STATE/ovs/ovs-vswitchd.ctl" ]; then
        bench_ovs_appctl ovs-vswitchd dpif-netdev/pmd-perf-show >"$keep.pmd-perf.txt" 2>&1 || true
    fi
    if declare -F "bench_node_${BENCH_SYS}_down" >/dev/null; then
        "bench_node_${BENCH_SYS}_down" || true
    fi
    lab_down
    BENCH_SYS=""
}

# gen_args SCENARIO: the generator's frames for a scenario
gen_args() {
    case $1 in
        encap) echo "--src-mac $BENCH_LOCAL_MAC --dst-mac $BENCH_REMOTE_MAC" ;;
        decap) echo "--vxlan --vni $LAB_VNI --src-mac $BENCH_REMOTE_MAC --dst-mac $BENCH_LOCAL_MAC" ;;
        many-macs) echo "--src-mac 02:10:00:00:00:00 --macs 65536 --flows 65536 --dst-mac $BENCH_REMOTE_MAC" ;;
        flood) echo "--src-mac $BENCH_LOCAL_MAC --broadcast" ;;
    esac
}

# where SYSTEM SCENARIO: "GEN_NODE GEN_IF SINK_NODE SINK_IF FIELD"
where() {
    if [ "$1" = ceiling ]; then echo "ca bgen ca bsnk frames"; return; fi
    case $2 in
        decap) echo "ul ul-nn vm1 eth0 udp" ;;
        *) echo "vm1 eth0 ul ul-nn vxlan" ;;
    esac
}

# Teaches the switch both hosts the way traffic would: a few frames from
# the local host (to the remote one, flooded while unknown), then a few
# VXLAN frames from the remote host behind VTEP 192.0.2.1.
bench_prime() {
    nsx vm1 "$GEN" --iface eth0 --count 32 --rate 2000 --seconds 5 \
        --src-mac "$BENCH_LOCAL_MAC" --dst-mac "$BENCH_REMOTE_MAC" >/dev/null ||
        bench_log "priming from vm1 failed"
    nsx ul "$GEN" --iface ul-nn --count 32 --rate 2000 --seconds 5 --vxlan --vni "$LAB_VNI" \
        --src-mac "$BENCH_REMOTE_MAC" --dst-mac "$BENCH_LOCAL_MAC" >/dev/null ||
        bench_log "priming from ul failed"
    sleep 0.3
}

# measure SYSTEM SCENARIO RUN: one timed run; appends a line to RESULTS
measure() {
    local sys=$1 sc=$2 run=$3 gn gi sn si field
    read -r gn gi sn si field <<<"$(where "$sys" "$sc")"
    local tag="$sys-$sc-$run"
    local ready="$RESULTS_DIR/$tag.ready" sink_out="$RESULTS_DIR/$tag.sink.json"
    local gen_out="$RESULTS_DIR/$tag.gen.json"
    rm -f "$ready"
    local maxs
    maxs=$(awk -v w="$WARMUP" -v d="$SECONDS_PER_RUN" 'BEGIN { print w + d + 15 }')
    # ip netns exec execs the sink: $! is the sink itself (for the SIGTERM)
    ip netns exec "$(ns "$sn")" "$SINK" --iface "$si" --warmup "$WARMUP" --window "$SECONDS_PER_RUN" \
        --max-seconds "$maxs" --ready-file "$ready" >"$sink_out" 2>"$RESULTS_DIR/$tag.sink.err" &
    local spid=$!
    if ! wait_until 10 "sink on $si" test -e "$ready"; then
        kill "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        bench_log "$tag: the sink did not attach: $(tail -n 3 "$RESULTS_DIR/$tag.sink.err")"
        echo "$sys $sc $run fail 0" >>"$RESULTS"
        return 0
    fi
    local gsecs
    gsecs=$(awk -v w="$WARMUP" -v d="$SECONDS_PER_RUN" 'BEGIN { print w + d + 0.3 }')
    # shellcheck disable=SC2046  # gen_args is a flag list
    if ! nsx "$gn" nice -n "$BENCH_NICE" taskset -c "$BENCH_GEN_CPU" "$GEN" --iface "$gi" --seconds "$gsecs" \
        $(gen_args "$sc") >"$gen_out" 2>"$RESULTS_DIR/$tag.gen.err"; then
        bench_log "$tag: generator: $(tail -n 3 "$RESULTS_DIR/$tag.gen.err")"
    fi
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    local line
    line=$(bench_run_line "$sink_out" "$gen_out" "$field") || line="fail 0"
    echo "$sys $sc $run $line" >>"$RESULTS"
    bench_log "$tag: $line"
}

# ---------------------------------------------------------------- main
RESULTS_DIR=$(mktemp -d /tmp/xvs-bench.XXXXXX)
RESULTS=$RESULTS_DIR/runs.txt
: >"$RESULTS"
# With autogroup scheduling (kernel.sched_autogroup_enabled=1) every
# session is its own group and per-thread nice only ranks threads inside
# it: give this session's group the benchmark's nice for the run.
AUTOGROUP_NICE=""
if [ -w "/proc/$$/autogroup" ]; then
    AUTOGROUP_NICE=$(sed -n 's/.* nice //p' "/proc/$$/autogroup")
    echo "$BENCH_NICE" >"/proc/$$/autogroup" 2>/dev/null || AUTOGROUP_NICE=""
fi
bench_exit() {
    bench_down
    [ -z "$AUTOGROUP_NICE" ] || echo "$AUTOGROUP_NICE" >"/proc/$$/autogroup" 2>/dev/null || true
}
trap 'bench_exit' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_set_id "${XVS_BENCH_ID:-b$$}" || exit 2
bench_deps
bench_build
BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for sys in "${SYSTEMS[@]}"; do
    [ -z "${UNAVAILABLE[$sys]:-}" ] || bench_log "$sys: not available: ${UNAVAILABLE[$sys]}"
done
# Round robin: run r of every (scenario, system) before run r+1 of any, each
# on a freshly built network node, so that load from elsewhere on the
# machine spreads over all systems alike instead of hitting one system's
# block of runs.
for ((run = 1; run <= RUNS; run++)); do
    for sc in "${SCENARIOS[@]}"; do
        for sys in "${SYSTEMS[@]}"; do
            [ -z "${UNAVAILABLE[$sys]:-}" ] || continue
            bench_log "== $sys / $sc (run $run of $RUNS)"
            BENCH_SYS=$sys BENCH_SC=$sc-$run
            bench_up_job "$sys" 2>"$RESULTS_DIR/$sys-$sc-$run.up.err" &
            rc=0
            wait $! || rc=$?
            if [ "$rc" != 0 ]; then
                UNAVAILABLE[$sys]="network node failed to start: $(tail -n 3 "$RESULTS_DIR/$sys-$sc-$run.up.err" | tr '\n' ' ')"
                bench_log "$sys: ${UNAVAILABLE[$sys]}"
                bench_down
                continue
            fi
            [ "$sys" = ceiling ] || bench_prime
            measure "$sys" "$sc" "$run"
            bench_down
        done
    done
done

unavail=""
for sys in "${!UNAVAILABLE[@]}"; do unavail+="$sys=${UNAVAILABLE[$sys]}"$'\n'; done
bench_report "$RESULTS" "$unavail"
