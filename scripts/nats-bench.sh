#!/usr/bin/env bash
# The NATS relay's and inbox's speed (issue 12): builds eventlog-nats-bench in
# release mode, starts nats-server -js on a free loopback port with its store
# in a temporary directory, runs the bench against it, and stops it.
# Arguments go to the bench (--events N, --window N, --rate N, --seconds S, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-dependencies.sh
swift build -c release --package-path Benchmarks --product eventlog-nats-bench >&2
server=$(command -v nats-server || echo /usr/sbin/nats-server)
work=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-nats-bench.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" -js -a 127.0.0.1 -p "$port" -sd "$work/js" >"$work/nats-server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.05
done
uptime >&2  # the machine is shared: the load says how much of it the figures had
Benchmarks/.build/release/eventlog-nats-bench --nats "nats://127.0.0.1:$port" --dir "$work/logs" --server-pid "$pid" "$@"
