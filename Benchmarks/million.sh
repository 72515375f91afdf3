#!/usr/bin/env bash
# Holds TOTAL authenticated idle connections on this machine at once (default 1,000,000).
# One process may hold at most `ulimit -Hn` descriptors (20,000 here, a hard limit even for root),
# so one node cannot: the script starts K independent nodes (one loop each, listening on
# BASE..BASE+K-1, no cluster between them) and K `switchboard-bench connect` processes of PER
# connections each (XX registration, then idle with the bench's heartbeat), started WAVE at a time.
# Each load process binds its own loopback source addresses (`--source-offset`): the kernel hands
# out an address's ephemeral ports once, whatever the destination. When every load process holds
# its share or has stopped, it reads what the nodes hold and what the machine's memory did, then
# stops everything. It says how far it got and what stopped it.
#   usage: Benchmarks/million.sh [TOTAL]        e.g. Benchmarks/million.sh 100000
#   environment: PER=19000 WAVE=2 BASE=21000 WAVE_SECONDS=330
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-1000000}
wave=${WAVE:-2}
base=${BASE:-21000}
wave_seconds=${WAVE_SECONDS:-330}  # past the bench's own 300 s limit for connecting
swift build -c release >&2
ulimit -n "$(ulimit -Hn)"
hard=$(ulimit -Hn)
# Room for the node's own descriptors (epoll, eventfd, timerfd, listener, store files).
per=${PER:-$(( hard > 20000 ? 19000 : hard - 1000 ))}
(( per > 0 && per < hard )) || { echo "PER ($per) must be below the descriptor limit ($hard)" >&2; exit 2; }
count=$(( (total + per - 1) / per ))
(( base + count <= 32768 )) || { echo "BASE $base + $count nodes reaches the ephemeral port range" >&2; exit 2; }
file_max=$(cat /proc/sys/fs/file-max)
(( 2 * total + 10000 <= file_max )) || echo "warning: fs.file-max $file_max is below two descriptors per connection" >&2
work=$(mktemp -d)
nodes=()
clients=()
stop() {
    for pid in "${clients[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${nodes[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${nodes[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap stop EXIT
kb() { awk -v key="$1:" '$1 == key { print $2 }' "${2:-/proc/meminfo}"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# The last progress line of a load process ("holding N idle connections ...", "done", ...).
progress_of() { tr '\r' '\n' < "$work/c$1.err" 2>/dev/null | grep -a '\[connect\]' | tail -1 || true; }
held_by() { progress_of "$1" | sed -n 's/.*holding \([0-9]*\) idle connections.*/\1/p'; }
count_of() { progress_of "$1" | sed -n "s/.*[(, ]\([0-9]*\) $2.*/\1/p"; }  # "failed", "retried" 

echo "[million] $total connections: $count nodes and $count load processes of up to $per each" >&2
available_before=$(kb MemAvailable)
slab_before=$(kb Slab)
rss_before=0
for (( i = 0; i < count; i++ )); do
    mkdir -p "$work/n$i"
    .build/release/switchboard serve --listen "127.0.0.1:$(( base + i ))" --threads 1 --data "$work/n$i" \
        --log-level warn > "$work/n$i.out" 2> "$work/n$i.log" &
    nodes+=($!)
done
for (( i = 0; i < count; i++ )); do
    for _ in $(seq 400); do grep -q "listening on" "$work/n$i.out" 2>/dev/null && break; sleep 0.05; done
    grep -q "listening on" "$work/n$i.out" || { echo "node $i did not start: $(tail -3 "$work/n$i.log")" >&2; exit 1; }
    rss_before=$(( rss_before + $(rss_kb "${nodes[$i]}") + 0 ))
done

start=$(date +%s)
stopped_by=""
for (( first = 0; first < count; first += wave )); do
    for (( i = first; i < first + wave && i < count; i++ )); do
        n=$(( i == count - 1 ? total - per * (count - 1) : per ))
        # Eight source addresses of its own per load process: ~2,400 connections each, where the
        # kernel's search for a free ephemeral port of an address is still short.
        .build/release/switchboard-bench connect --connections "$n" --sources 8 --source-offset $(( 8 * i )) \
            --duration 3600 --target "127.0.0.1:$(( base + i ))" > "$work/c$i.json" 2> "$work/c$i.err" &
        clients+=($!)
    done
    deadline=$(( $(date +%s) + wave_seconds ))
    for (( i = first; i < first + wave && i < count; i++ )); do
        until [ -n "$(held_by "$i")" ] || ! kill -0 "${clients[$i]}" 2>/dev/null || (( $(date +%s) > deadline )); do sleep 1; done
        if [ -z "$(held_by "$i")" ]; then
            stopped_by="load process $i did not reach its hold: $(progress_of "$i" | cut -c1-160) $(tail -c 300 "$work/c$i.err" | tr '\r\n' '  ')"
        fi
    done
    sum=0
    for (( i = 0; i < ${#clients[@]}; i++ )); do sum=$(( sum + $(held_by "$i") + 0 )); done
    echo "[million] $(( $(date +%s) - start )) s: $sum connections held by ${#clients[@]} load processes" >&2
    [ -z "$stopped_by" ] || break
done
seconds=$(( $(date +%s) - start ))
sleep 5  # let heartbeats and late closes settle before reading

held=0
failed=0
retried=0
for (( i = 0; i < ${#clients[@]}; i++ )); do
    held=$(( held + $(held_by "$i") + 0 ))
    failed=$(( failed + $(count_of "$i" failed) + 0 ))
    retried=$(( retried + $(count_of "$i" retried) + 0 ))
done
rss_after=0
for (( i = 0; i < count; i++ )); do
    rss_after=$(( rss_after + $(rss_kb "${nodes[$i]}") + 0 ))
done
open=$( (ss -Htn state established "( sport >= :$base and sport < :$(( base + count )) )" || true) | wc -l)
available_after=$(kb MemAvailable)
slab_after=$(kb Slab)

echo "[million] done" >&2
printf '%-52s %s\n' "connections asked for" "$total"
printf '%-52s %s\n' "authenticated connections held at once (load side)" "$held"
printf '%-52s %s\n' "established TCP connections on the nodes' ports" "$open"
printf '%-52s %s\n' "handshakes tried again (node closed them unwelcomed)" "$retried"
printf '%-52s %s\n' "connections failed (all attempts, or dropped later)" "$failed"
printf '%-52s %s\n' "nodes (one process each)" "$count"
printf '%-52s %s\n' "seconds to open them" "$seconds"
if (( held > 0 )); then
    printf '%-52s %s\n' "node RSS growth per connection (bytes)" "$(( (rss_after - rss_before) * 1024 / held ))"
    printf '%-52s %s\n' "machine memory per connection, both ends (bytes)" "$(( (available_before - available_after) * 1024 / held ))"
    printf '%-52s %s\n' "kernel slab per connection, both ends (bytes)" "$(( (slab_after - slab_before) * 1024 / held ))"
fi
printf '%-52s %s\n' "MemAvailable after (MiB)" "$(( available_after / 1024 ))"
for (( i = 0; i < count; i++ )); do
    kill -0 "${nodes[$i]}" 2>/dev/null || stopped_by="${stopped_by:+$stopped_by; }node $i exited: $(tail -c 200 "$work/n$i.log" | tr '\n' ' ')"
done
for (( i = 0; i < ${#clients[@]}; i++ )); do
    kill -0 "${clients[$i]}" 2>/dev/null || stopped_by="${stopped_by:+$stopped_by; }load process $i exited: $(tail -c 200 "$work/c$i.err" | tr '\r\n' '  ')"
done
if [ -z "$stopped_by" ] && (( held < total )); then
    stopped_by="$(( total - held )) connections not held: $failed failed (every attempt, or dropped after the welcome)"
fi
if [ -n "$stopped_by" ]; then
    echo "stopped short: $stopped_by"
    exit 1
fi
echo "what limits one node: $hard descriptors per process (ulimit -Hn); $per connections per node in this run"
