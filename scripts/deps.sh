#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test xvs:
# the BPF toolchain (clang, llvm, libbpf headers, libelf, zlib, bpftool),
# the lab tools (iproute2, ethtool, ping, tcpdump, iperf3, scapy) and the
# Rust components (rustfmt, clippy). Idempotent: does nothing when all is there.
set -euo pipefail

pkgs=(clang llvm libbpf-dev libelf-dev zlib1g-dev m4 pkg-config make gcc bpftool
      linux-libc-dev iproute2 ethtool iputils-ping tcpdump iperf3 python3 python3-scapy
      python3-prometheus-client
      procps kmod shellcheck)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# asm/types.h lives under the multiarch include dir; clang -target bpf needs it
# on the default include path.
arch_inc="/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
if [ ! -e /usr/include/asm ] && [ -d "$arch_inc/asm" ] && [ "$(id -u)" -eq 0 ]; then
    ln -s "$arch_inc/asm" /usr/include/asm
fi

if command -v rustup >/dev/null; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi
