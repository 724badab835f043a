#!/usr/bin/env bash
# The driver's one command: installs the peers' packages when missing, builds
# eventlog-bench in release mode and runs it with the given arguments.
#
#   bash Benchmarks/scripts/bench.sh --rounds 3 --json Benchmarks/Results/results.json --report Benchmarks/Results
#   bash Benchmarks/scripts/bench.sh --quick
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/../scripts/install-dependencies.sh"
bash "$here/scripts/install-peers.sh"
swift build -c release --package-path "$here" --product eventlog-bench >&2
exec "$here/.build/release/eventlog-bench" "$@"
