#!/usr/bin/env bash
# Echo benchmark of the Reactor through the node: builds in release, builds the malloc counter,
# starts the node pinned to CPU 0 with the counter preloaded, drives it from CPU 1 with
# switchboard-bench, once per epoll trigger mode. Prints the bench tables; JSON goes to
# .build/bench/echo-<mode>.json.
#   usage: Benchmarks/echo.sh [CONNECTIONS] [WINDOW] [SIZE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-100}
window=${2:-1}
size=${3:-128}
seconds=${4:-5}
swift build -c release >&2
mkdir -p .build/bench
cc -O2 -shared -fPIC -o .build/bench/malloc_counter.so Benchmarks/malloc-counter/malloc_counter.c
for mode in edge level; do
    data=$(mktemp -d)
    count_file=.build/bench/malloc-count-$mode
    MALLOC_COUNT_FILE=$count_file LD_PRELOAD=$PWD/.build/bench/malloc_counter.so \
        taskset -c 0 .build/release/switchboard serve --listen 127.0.0.1:0 --threads 1 --data "$data" \
        --epoll "$mode" --log-level warn > .build/bench/node-$mode.out &
    node=$!
    for _ in $(seq 100); do grep -q "listening on" .build/bench/node-$mode.out 2>/dev/null && break; sleep 0.05; done
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' .build/bench/node-$mode.out)
    .build/release/switchboard-bench echo --target 127.0.0.1:$port --connections "$connections" \
        --window "$window" --size "$size" --duration "$seconds" --pin-cpu 1 --server-pid $node \
        --malloc-count-file "$count_file" --label "epoll=$mode" --json .build/bench/echo-$mode.json
    kill -TERM $node
    wait $node || true
    rm -rf "$data"
done
