#!/usr/bin/env bash
# Installs the system packages the build needs when they are missing (Debian).
set -euo pipefail
need=()
dpkg -s liblz4-dev >/dev/null 2>&1 || need+=(liblz4-dev)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
