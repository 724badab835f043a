#!/usr/bin/env bash
# The test command: installs what the build needs, builds, runs every test
# (the library, the CLI, crash tests with real child processes; and the
# benchmark harness: the workload generator's check values, every phase of
# EventLog and of each peer at a tiny N checked against the generator, the
# JSON output), then runs the benchmark's quick mode once as a smoke test
# (debug build, no time thresholds), checks that the ClientCheck target (built with the
# tests; Tests/ClientCheck) holds README's and the DocC articles' snippets,
# builds the example service (Examples/OrderService), the fuzz targets, the
# DocC documentation (any warning fails the run; scripts/docs.sh) and the
# ThreadSanitizer build, two builds at a time, then runs the example service's
# tests, the suites that run threads against one log under ThreadSanitizer
# (scripts/tsan.sh; any report fails the run), and last every fuzz target for
# a bounded time (scripts/fuzz.sh; EVENTLOG_FUZZ_SECONDS each, default 8, one
# target per CPU at a time; any crash, hang or memory error fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's start, with the seconds since the run began, so a slow run shows where its time went.
step() { echo "== test.sh +${SECONDS}s ($(date -u +%T)): $*" >&2; }
step "dependencies"
bash scripts/install-dependencies.sh
bash Benchmarks/scripts/install-peers.sh
step "the harness: build and tests"
swift test --package-path Benchmarks
quick=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-quick.XXXXXX")
trap 'rm -rf "$quick"' EXIT
# The quick mode runs the debug build its tests just made: a release build of the harness would take minutes
# more, and the fuzz build below compiles the library optimized anyway.
step "the harness: quick mode"
swift run --package-path Benchmarks eventlog-bench --quick --json "$quick/quick.json"
grep -q '"results"' "$quick/quick.json"
step "the library and the CLI: build"
swift build --build-tests
step "the library and the CLI: tests"
swift test --skip-build
# The ClientCheck target (built above with the tests) compiles every Swift snippet of README.md and the DocC
# articles as a user would (in functions and as top-level code); here the snippets must match their sources.
python3 scripts/readme-snippets.py
# Three more builds, each of which keeps only about one and a half of the two cores busy (the optimized fuzz
# build compiles the library as one job for most of its time): two lanes build at once, each writing to its own
# log, printed when both are done. Lane A: the example service (Examples/OrderService: Hummingbird,
# swift-prometheus; a package of its own with its own .build), then the fuzz targets (scripts/fuzz.sh). Lane B:
# the DocC documentation, which must build with no warning (scripts/docs.sh), then the suites that run threads
# against one log, under ThreadSanitizer (scripts/tsan.sh). The tests these builds made run after both lanes,
# one at a time, with both cores to themselves. EVENTLOG_SKIP_EXAMPLE_SERVICE=1 leaves the example service out
# (its clean build takes minutes on 2 cores).
lanes=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-lanes.XXXXXX")
trap 'rm -rf "$quick" "$lanes"' EXIT
step "two lanes: the example service and the fuzz build; the documentation and the ThreadSanitizer build"
(
    set -euo pipefail
    if [ "${EVENTLOG_SKIP_EXAMPLE_SERVICE:-0}" != 1 ]; then
        step "lane A: the example service: build"
        swift build --package-path Examples/OrderService --build-tests
    fi
    step "lane A: the fuzz targets: build"
    bash scripts/fuzz.sh --build
    step "lane A: done"
) >"$lanes/a.log" 2>&1 &
lane_a=$!
(
    set -euo pipefail
    step "lane B: documentation"
    bash scripts/docs.sh
    step "lane B: ThreadSanitizer: build"
    bash scripts/tsan.sh --build
    step "lane B: done"
) >"$lanes/b.log" 2>&1 &
lane_b=$!
status_a=0
status_b=0
wait "$lane_a" || status_a=$?
wait "$lane_b" || status_b=$?
cat "$lanes/a.log" "$lanes/b.log"
if [ "$status_a" -ne 0 ] || [ "$status_b" -ne 0 ]; then
    echo "test.sh: lane A exited $status_a, lane B exited $status_b (their output is above)" >&2
    exit 1
fi
# The example service's tests start the binary on a loopback port, drive it over HTTP and kill -9 it mid-run.
if [ "${EVENTLOG_SKIP_EXAMPLE_SERVICE:-0}" != 1 ]; then
    step "the example service: tests"
    swift test --package-path Examples/OrderService --skip-build
fi
# Any ThreadSanitizer report fails the run.
step "ThreadSanitizer: the suites"
bash scripts/tsan.sh --no-build
step "fuzzing: every target"
bash scripts/fuzz.sh --no-build all "${EVENTLOG_FUZZ_SECONDS:-8}"
step "done"
