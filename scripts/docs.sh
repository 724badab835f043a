#!/usr/bin/env bash
# Builds the DocC documentation of the EventLog and EventLogSourcing libraries
# (the catalogs in Sources/EventLog/EventLog.docc and
# Sources/EventLogSourcing/EventLogSourcing.docc, and every public symbol's doc comment) with
# swift-docc-plugin, and fails on any warning (a broken symbol link, an
# undocumented parameter). The archive lands in
# .build/plugins/Swift-DocC/outputs/EventLog.doccarchive (and EventLogSourcing.doccarchive); open it with
# `docc preview`, or pass --output-path and --transform-for-static-hosting
# through this script's arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
swift package --disable-sandbox generate-documentation --target EventLog --target EventLogSourcing --warnings-as-errors "$@"
