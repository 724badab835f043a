#!/usr/bin/env bash
# Installs the system packages the build and the tests need when they are missing (Debian):
# liblz4-dev for the build, nats-server for the NATS relay and inbox tests (which skip without it).
set -euo pipefail
need=()
dpkg -s liblz4-dev >/dev/null 2>&1 || need+=(liblz4-dev)
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    need+=(nats-server)
fi
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
