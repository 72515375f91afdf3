#!/usr/bin/env bash
# Runs one switchboard-bench scenario against a fresh node: builds in release, builds the malloc
# counter, starts the node with one loop pinned to CPU 0 and the counter preloaded, runs the bench
# pinned to CPU 1 with the node's pid (CPU time, syscalls, RSS, allocations), then stops the node.
#   usage: Benchmarks/run.sh SCENARIO [switchboard-bench flags...]
#   e.g.   Benchmarks/run.sh ping --connections 100 --duration 5
#          Benchmarks/run.sh handshake --pattern ik --concurrency 32
#          TRANSPORT=https Benchmarks/run.sh relay --pairs 50   (the HTTP fallback; also http)
# Extra node flags: NODE_FLAGS="--epoll level" Benchmarks/run.sh ...
# Another node binary (A/B comparisons): SWITCHBOARD=/tmp/switchboard-before Benchmarks/run.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: Benchmarks/run.sh SCENARIO [flags]}
shift
swift build -c release >&2
mkdir -p .build/bench
cc -O2 -shared -fPIC -o .build/bench/malloc_counter.so Benchmarks/malloc-counter/malloc_counter.c
data=$(mktemp -d)
transport=${TRANSPORT:-native}
fallback=()
bench_transport=()
if [ "$transport" = http ]; then
    fallback=(--http 127.0.0.1:0)
elif [ "$transport" = https ]; then
    if [ ! -f .build/bench/tls-cert.pem ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
            -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            -keyout .build/bench/tls-key.pem -out .build/bench/tls-cert.pem 2>/dev/null
    fi
    fallback=(--https 127.0.0.1:0 --tls-cert .build/bench/tls-cert.pem --tls-key .build/bench/tls-key.pem)
    bench_transport=(--tls-ca .build/bench/tls-cert.pem)
fi
count_file=$PWD/.build/bench/malloc-count
out=.build/bench/node.out
# shellcheck disable=SC2086
MALLOC_COUNT_FILE=$count_file LD_PRELOAD=$PWD/.build/bench/malloc_counter.so \
    taskset -c 0 "${SWITCHBOARD:-.build/release/switchboard}" serve --listen 127.0.0.1:0 --threads 1 --data "$data" \
    --log-level info "${fallback[@]}" ${NODE_FLAGS:-} > "$out" 2> "$out.log" &
node=$!
trap 'kill -TERM $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 200); do grep -q "listening on" "$out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$out")
if [ "$transport" != native ]; then
    port=$(sed -n "s/.* $transport=[^ ]*:\([0-9]*\).*/\1/p" "$out.log" | head -1)
    bench_transport+=(--transport "$transport")
fi
.build/release/switchboard-bench "$scenario" --target 127.0.0.1:"$port" --pin-cpu 1 --server-pid $node \
    --malloc-count-file "$count_file" "${bench_transport[@]}" "$@"
