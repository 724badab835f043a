#!/usr/bin/env bash
# The order service's place-order latency under a fixed loopback load (issue 14, "Speed"): builds
# order-service, starts it on a free loopback port with a fresh data directory on the disk (`.always`
# durability: each 201 waits for its batch's fdatasync; not /dev/shm, where a sync costs nothing), warms up for
# 3 s, then runs wrk (Debian package `wrk`) with scripts/place-order.lua: a fixed number of connections, each
# placing new orders back to back (unique order ids and Idempotency-Keys). Prints wrk's latency distribution and
# the script's summary line (p50, p90, p99, max, requests/s, answers other than 201), and the syncs of the
# events log (count and mean, from the log's own metrics).
#
#   bash Examples/OrderService/scripts/load.sh [--config release|debug] [--connections N] [--threads N]
#                                              [--duration SECONDS] [--data-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
config=release
connections=16
threads=2
duration=20
data=""
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --data-dir) data="$2"; shift 2 ;;
        *) echo "load.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ! command -v wrk >/dev/null; then
    echo "load.sh needs wrk: apt-get install wrk" >&2
    exit 2
fi
swift build -c "$config" --product order-service
binary="$(swift build -c "$config" --show-bin-path)/order-service"
scratch=$(mktemp -d "$PWD/.build/load.XXXXXX")
data="${data:-$scratch/data}"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$binary" --port "$port" --data-dir "$data" --log-level warning &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$scratch"' EXIT
for _ in $(seq 1 200); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then break; fi
    sleep 0.1
done
run="run$(date +%s)"
echo "order-service ($config) on 127.0.0.1:$port, data in $data; wrk: $threads threads, $connections connections, ${duration} s"
wrk -t"$threads" -c"$connections" -d3s -s scripts/place-order.lua "http://127.0.0.1:$port" -- "${run}w" >/dev/null
wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s scripts/place-order.lua "http://127.0.0.1:$port" -- "$run"
# What the log did meanwhile (its own metrics, from /metrics): syncs of each file of the events log, and their mean.
python3 - "$port" <<'PY'
import re, sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
sums, counts = {}, {}
for line in text.splitlines():
    m = re.match(r'eventlog_sync_duration_(sum|count)\{log="([^"]*)",file="([^"]*)"\} (\S+)', line)
    if m and m.group(2).endswith("/events"):
        (sums if m.group(1) == "sum" else counts)[m.group(3)] = float(m.group(4))
for name in sorted(counts):
    if counts[name]:
        print(f"events log, {name}: {int(counts[name])} syncs, mean {1000 * sums[name] / counts[name]:.2f} ms")
PY
