#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in the repository:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# Installs cargo-fuzz (crates.io) and uses the nightly toolchain. New corpus
# entries go to a temporary directory, so the seed corpora in the repository
# stay as committed; a crash leaves its input under <crate>/fuzz/artifacts/
# and fails the run (turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
toolchain=nightly
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

failed=0
passed=0
for dir in control/fuzz dataplane/fuzz; do
    [ -d "$dir" ] || continue
    crate=${dir%/fuzz}
    for target in $(cd "$crate" && cargo "+$toolchain" fuzz list); do
        work=$(mktemp -d)
        echo "== fuzz $crate/$target for ${secs}s"
        if (cd "$crate" && cargo "+$toolchain" fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
                -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 25); then
            passed=$((passed + 1))
        else
            echo "fuzz: $crate/$target FAILED (artifacts in $crate/fuzz/artifacts/$target)"
            failed=$((failed + 1))
        fi
        rm -rf "$work"
    done
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
