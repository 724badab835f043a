#!/usr/bin/env bash
# Installs the peers' development packages (Debian 12: SQLite 3.40, LMDB 0.9.24,
# RocksDB 7.8) when any is missing; the Benchmarks package links all three.
set -euo pipefail
need=()
for pkg in libsqlite3-dev liblmdb-dev librocksdb-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
