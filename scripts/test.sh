#!/usr/bin/env bash
# The test command: installs what the build needs, builds, runs every test
# (the library, the CLI, crash tests with real child processes, and the
# benchmark workload generator's check values).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-dependencies.sh
swift test --package-path Benchmarks
swift build --build-tests
swift test --skip-build
