#!/usr/bin/env bash
# The benchmark suite: builds the node, the bench client and the SwiftNIO peer (Benchmarks/Peers) in
# release, the malloc counter, and installs redis-server (the other reference peer) if missing; then runs `switchboard-bench suite`, which
# starts every server itself on loopback (pinned to CPU 0, load on CPU 1) and prints the table.
#   usage: Benchmarks/suite.sh [--quick] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
switchboard_install_packages redis-server
swift build -c release >&2
swift build -c release --package-path Benchmarks/Peers >&2
mkdir -p .build/bench
cc -O2 -shared -fPIC -o .build/bench/malloc_counter.so Benchmarks/malloc-counter/malloc_counter.c
exec .build/release/switchboard-bench suite --malloc-counter "$PWD/.build/bench/malloc_counter.so" \
    --nio-peer Benchmarks/Peers/.build/release/nio-relay-peer "$@"
