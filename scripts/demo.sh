#!/usr/bin/env bash
# The main job: builds EventLog in release mode, appends a realistic
# order-events workload through the library (Benchmarks/WORKLOAD.md's
# generator), reads it back, and prints `eventlog inspect` of the log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-dependencies.sh
swift build -c release --product eventlog
swift build -c release --package-path Benchmarks --product eventlog-demo
dir=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
Benchmarks/.build/release/eventlog-demo "$dir/orders" "${1:-200000}"
.build/release/eventlog inspect "$dir/orders"
.build/release/eventlog verify "$dir/orders"
