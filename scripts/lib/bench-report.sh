# shellcheck shell=bash
# The benchmark's arithmetic and output (sourced by scripts/bench.sh):
# one run's rate from the sink's and generator's JSON; medians, the JSON
# file, the table and the gnuplot chart from all runs.

# bench_run_line SINK_JSON GEN_JSON FIELD: "MPPS OFFERED_MPPS" of one run —
# the sink's count of FIELD (vxlan, udp or frames) in its measurement
# window over the window's length, and the generator's completed frames per
# second. Fails when a report is missing.
bench_run_line() {
    "$LAB_PYTHON" - "$1" "$2" "$3" <<'PY'
import json, sys
sink_path, gen_path, field = sys.argv[1:4]
with open(sink_path) as f:
    sink = json.load(f)
with open(gen_path) as f:
    gen = json.load(f)
w = sink.get("window")
if not w or w["secs"] <= 0:
    sys.exit("no measurement window")
print(f"{w[field] / w['secs'] / 1e6:.6f} {gen['mpps']:.4f}")
PY
}

# shellcheck disable=SC2153  # RUNS, SCENARIOS, … are bench.sh globals
# bench_report RUNS_FILE UNAVAILABLE: medians per (system, scenario); table
# on stdout; OPT_JSON and OPT_CHART written when set; in smoke mode, fails
# unless every available system forwarded something in every scenario.
bench_report() {
    local runs=$1 unavail=$2 data="$RESULTS_DIR/chart.dat"
    local machine kernel date
    machine=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    machine="${machine:-$(uname -m)}, $(nproc) CPUs"
    kernel=$(uname -r)
    date=$(date -u +%Y-%m-%dT%H:%MZ)
    local json_out=${OPT_JSON:-}
    if [ -z "$json_out" ] && [ -n "$OPT_CHART" ]; then json_out="${OPT_CHART%.png}.json"; fi
    [ -z "$json_out" ] || mkdir -p "$(dirname "$json_out")"
    local rc=0
    BENCH_MACHINE=$machine BENCH_KERNEL=$kernel BENCH_DATE=$date \
        BENCH_SMOKE=$OPT_SMOKE BENCH_RUNS=$RUNS BENCH_SECONDS=$SECONDS_PER_RUN \
        BENCH_GEN_CPU=$BENCH_GEN_CPU BENCH_SUT_CPU=$BENCH_SUT_CPU \
        BENCH_SCENARIOS="${SCENARIOS[*]}" BENCH_SYSTEMS="${SYSTEMS[*]}" \
        BENCH_LOAD_START=$BENCH_LOAD_START BENCH_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)" \
        BENCH_COMMIT="$(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo unknown)" \
        BENCH_OVS_VERSION="$(ovs-vswitchd --version 2>/dev/null | sed -n '1s/.* //p')" \
        BENCH_UNAVAILABLE=$unavail BENCH_JSON=$json_out BENCH_DAT=$data \
        "$LAB_PYTHON" - "$runs" <<'PY' || rc=$?
import json, os, statistics, sys

env = os.environ
scenarios = env["BENCH_SCENARIOS"].split()
systems = env["BENCH_SYSTEMS"].split()
unavailable = dict(
    line.split("=", 1) for line in env["BENCH_UNAVAILABLE"].splitlines() if "=" in line
)
runs = {}
offered = {}
failed = {}
with open(sys.argv[1]) as f:
    for line in f:
        parts = line.split()
        if len(parts) != 5:
            continue
        system, scenario, _run, mpps, off = parts
        key = (system, scenario)
        if mpps == "fail":
            failed[key] = failed.get(key, 0) + 1
            continue
        runs.setdefault(key, []).append(float(mpps))
        offered.setdefault(key, []).append(float(off))

def median(key):
    v = runs.get(key)
    return round(statistics.median(v), 4) if v else None

def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None

out = {
    "machine": env["BENCH_MACHINE"],
    "kernel": env["BENCH_KERNEL"],
    "date": env["BENCH_DATE"],
    "mode": "smoke" if env["BENCH_SMOKE"] == "1" else "full",
    "runs": int(env["BENCH_RUNS"]),
    "seconds_per_run": float(env["BENCH_SECONDS"]),
    "frame_bytes": 64,
    "cores": {"generator": int(env["BENCH_GEN_CPU"]), "network_node": int(env["BENCH_SUT_CPU"])},
    "unit": "Mpps (median of runs; flood: encapsulated copies out)",
    "load_average": {"start": env["BENCH_LOAD_START"], "end": env["BENCH_LOAD_END"]},
    "commit": env["BENCH_COMMIT"],
    "versions": {"ovs": env["BENCH_OVS_VERSION"]},
    "unavailable": unavailable,
    "scenarios": {},
}
for sc in scenarios:
    m = {sys_: median((sys_, sc)) for sys_ in ["xvs", "kernel", "ovs", "ceiling"]}
    out["scenarios"][sc] = {
        **m,
        "ratios": {
            "xvs_vs_kernel": ratio(m["xvs"], m["kernel"]),
            "xvs_vs_ovs": ratio(m["xvs"], m["ovs"]),
            "xvs_vs_ceiling": ratio(m["xvs"], m["ceiling"]),
        },
        "runs": {s: runs.get((s, sc), []) for s in systems},
        "offered": {
            s: round(statistics.median(offered[(s, sc)]), 4)
            for s in systems
            if (s, sc) in offered
        },
    }

if env["BENCH_JSON"]:
    with open(env["BENCH_JSON"], "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")

def fmt(v):
    return f"{v:7.3f}" if v is not None else "    n/a"

def fmtr(v):
    return f"{v:5.2f}x" if v is not None else "   n/a"

print(f"xvs line-rate benchmark — {out['machine']}, Linux {out['kernel']}, {out['date']}")
print(f"load average (1/5/15 min) at start {out['load_average']['start']}, "
      f"at end {out['load_average']['end']} (a busy machine lowers every figure)")
print(f"{out['mode']} mode: median of {out['runs']} run(s) of {out['seconds_per_run']} s, "
      f"64-byte frames, generator on CPU {out['cores']['generator']}, "
      f"network node on CPU {out['cores']['network_node']}; Mpps")
print()
print(f"{'scenario':<10} {'xvs':>7} {'kernel':>7} {'ovs':>7} {'ceiling':>7}   "
      f"{'xvs/kern':>8} {'xvs/ovs':>8} {'xvs/ceil':>8}")
for sc in scenarios:
    s = out["scenarios"][sc]
    r = s["ratios"]
    print(f"{sc:<10} {fmt(s['xvs'])} {fmt(s['kernel'])} {fmt(s['ovs'])} {fmt(s['ceiling'])}   "
          f"{fmtr(r['xvs_vs_kernel']):>8} {fmtr(r['xvs_vs_ovs']):>8} {fmtr(r['xvs_vs_ceiling']):>8}")
for s, why in sorted(unavailable.items()):
    print(f"  {s}: not available — {why}")

# gnuplot data: one row per scenario, columns in system order
with open(env["BENCH_DAT"], "w") as f:
    # no header row: gnuplot's histogram would draw it as an empty group
    for sc in scenarios:
        s = out["scenarios"][sc]
        vals = ["NaN" if s[k] is None else str(s[k]) for k in ["xvs", "kernel", "ovs", "ceiling"]]
        f.write(f"{sc} {' '.join(vals)}\n")

bad = []
if out["mode"] == "smoke":
    for sc in scenarios:
        for s in systems:
            if s in unavailable:
                bad.append(f"{s}: not available ({unavailable[s]})")
            elif not max(runs.get((s, sc)) or [0]) > 0:
                bad.append(f"{s}/{sc}: forwarded nothing (failed runs: {failed.get((s, sc), 0)})")
    if bad:
        print()
        print("smoke: FAILED")
        for b in dict.fromkeys(bad):
            print(f"  {b}")
        sys.exit(1)
    print()
    print("smoke: ok (every system forwarded frames in every scenario)")
PY
    if [ -n "$OPT_CHART" ]; then
        local sub
        sub="$( ((OPT_SMOKE)) && echo smoke || echo full) run: median of $RUNS × ${SECONDS_PER_RUN} s"
        sub+=", load average $BENCH_LOAD_START → $(cut -d' ' -f1-3 /proc/loadavg)"
        bench_chart "$data" "$OPT_CHART" "$machine" "$kernel" "$date" "$sub" \
            "${#SCENARIOS[@]}" || rc=1
    fi
    [ -z "$json_out" ] || bench_log "JSON: $json_out"
    return "$rc"
}

# bench_chart DATA PNG MACHINE KERNEL DATE SUBTITLE NSCENARIOS: grouped
# bars, one group per scenario, one bar per system (gnuplot).
bench_chart() {
    local data=$1 png=$2
    command -v gnuplot >/dev/null || { bench_log "gnuplot missing: no chart"; return 1; }
    mkdir -p "$(dirname "$png")"
    # (a system without figures draws nothing; gnuplot's warning about it
    # is noise)
    gnuplot 2> >(grep -v "No valid points" >&2) <<EOF
set terminal pngcairo size 1000,600 font "DejaVu Sans,11" noenhanced
set output "$png"
set title "xvs line rate, 64-byte frames: $3, Linux $4, $5\n$6" noenhanced
set xrange [-0.5:$7 - 0.5]
set ylabel "Mpps (median)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside bottom center horizontal
set grid ytics
set yrange [0:*]
set xtics nomirror
plot "$data" using 2:xtic(1) title "xvs" lc rgb "#1b9e77", \
     "" using 3 title "Linux bridge + vxlan" lc rgb "#d95f02", \
     "" using 4 title "OVS userspace + AF_XDP" lc rgb "#7570b3", \
     "" using 5 title "lab ceiling (gen -> sink)" lc rgb "#999999"
EOF
    bench_log "chart: $png"
}
