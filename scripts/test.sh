#!/usr/bin/env bash
# The whole xvs test suite, from a fresh Debian 12 machine:
# installs what is missing, checks formatting and lints, builds, and runs every
# test, privileged ones included. Run as root: privileged tests (XDP attach,
# AF_XDP, network namespaces) then run; set XVS_REQUIRE_PRIVILEGED=1 to make a
# skipped privileged test fail (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== cargo test"
# One test thread per binary: privileged tests share the host's netns list
# and 2 cores; parallel builds still use both.
cargo test --workspace --locked -- --test-threads="${XVS_TEST_THREADS:-2}"

echo "== lab (kernel network node)"
# The lab's own test: topology, kernel VXLAN peers, pings, TCP, FDB, teardown.
if [ "$(id -u)" -eq 0 ]; then
    scripts/lab-test.sh --node kernel
elif [ -n "${XVS_REQUIRE_PRIVILEGED:-}" ] && [ "${XVS_REQUIRE_PRIVILEGED}" != 0 ]; then
    echo "lab-test needs root but XVS_REQUIRE_PRIVILEGED is set" >&2
    exit 1
else
    echo "SKIPPED-PRIVILEGED lab-test: not root"
fi

echo "== fuzz (bounded)"
# Every cargo-fuzz target for XVS_FUZZ_SECONDS (default 60) each; 0 skips.
if [ "${XVS_FUZZ_SECONDS:-60}" -gt 0 ]; then
    scripts/fuzz.sh "${XVS_FUZZ_SECONDS:-60}"
fi
