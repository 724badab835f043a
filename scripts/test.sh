#!/usr/bin/env bash
# The test command: installs what the build needs, builds, runs every test
# (the library, the CLI, crash tests with real child processes; and the
# benchmark harness: the workload generator's check values, every phase of
# EventLog and of each peer at a tiny N checked against the generator, the
# JSON output), then runs the benchmark's quick mode once as a smoke test
# (debug build, no time thresholds), checks that the ClientCheck target
# (built with the tests; Tests/ClientCheck) holds README's and the DocC
# articles' snippets, builds and tests the example service
# (Examples/OrderService), builds the DocC documentation (any warning fails
# the run; scripts/docs.sh), runs the suites that run threads against one log
# under ThreadSanitizer (scripts/tsan.sh; any report fails the run), and last
# every fuzz target for a bounded time (scripts/fuzz.sh; EVENTLOG_FUZZ_SECONDS
# each, default 8, one target per CPU at a time; any crash, hang or memory
# error fails the run). The library is built first; the harness and the
# example service then build into its .build directory (below).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's start, with the seconds since the run began, so a slow run shows where its time went.
step() { echo "== test.sh +${SECONDS}s ($(date -u +%T)): $*" >&2; }
step "dependencies"
bash scripts/install-dependencies.sh
bash Benchmarks/scripts/install-peers.sh
step "the library and the CLI: build"
swift build --build-tests
step "the library and the CLI: tests"
swift test --skip-build
# The ClientCheck target (built above with the tests) compiles every Swift snippet of README.md and the DocC
# articles as a user would (in functions and as top-level code); here the snippets must match their sources.
python3 scripts/readme-snippets.py
# The harness and the example service are packages of their own that depend on this one by path. Here they build
# into this package's .build (--scratch-path), so what they share with it (the library, swift-crypto with its
# BoringSSL, swift-nio, ...) is compiled once, not three times: each compiles only its own modules (clean-clone run:
# the harness's build 188-261 s alone, ~100 s so; the example service's 164-210 s, ~80 s). SwiftPM reuses the
# build plan it cached in .build (of whichever package built there last) unless told not to: without
# --disable-build-manifest-caching the example service's build built nothing.
shared=(--scratch-path .build --disable-build-manifest-caching)
step "the harness: build and tests"
swift build --package-path Benchmarks "${shared[@]}" --build-tests
swift test --package-path Benchmarks "${shared[@]}" --skip-build
quick=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-quick.XXXXXX")
trap 'rm -rf "$quick"' EXIT
# The quick mode runs the debug build its tests just made: a release build of the harness would take minutes
# more, and the fuzz build below compiles the library optimized anyway.
step "the harness: quick mode"
swift run --package-path Benchmarks "${shared[@]}" eventlog-bench --quick --json "$quick/quick.json"
grep -q '"results"' "$quick/quick.json"
# The example service (Examples/OrderService: Hummingbird, swift-prometheus): built, and its tests run, which
# start the binary on a loopback port, drive it over HTTP and kill -9 it mid-run. EVENTLOG_SKIP_EXAMPLE_SERVICE=1
# leaves it out.
if [ "${EVENTLOG_SKIP_EXAMPLE_SERVICE:-0}" != 1 ]; then
    step "the example service: build and tests"
    swift build --package-path Examples/OrderService "${shared[@]}" --build-tests
    swift test --package-path Examples/OrderService "${shared[@]}" --skip-build
fi
# The library's own build plan back in .build for the documentation's build (nothing is compiled again).
swift build --build-tests --disable-build-manifest-caching
# The DocC documentation builds with no warning (scripts/docs.sh).
step "documentation"
bash scripts/docs.sh
# The suites that run threads against one log, under ThreadSanitizer (any report fails the run).
step "ThreadSanitizer: build and suites"
bash scripts/tsan.sh
step "fuzzing: build and targets"
bash scripts/fuzz.sh all "${EVENTLOG_FUZZ_SECONDS:-8}"
step "done"
