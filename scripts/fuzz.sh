#!/usr/bin/env bash
# libFuzzer over every decoder of on-disk bytes and every line of `eventlog
# append` / `eventlog import` input (Fuzz/, issue 16).
#
#   bash scripts/fuzz.sh [TARGET|all] [SECONDS]   run one target, or each (EVENTLOG_FUZZ_JOBS at a time, default one
#                                                 per CPU), SECONDS each (default 10)
#   bash scripts/fuzz.sh --list                   the targets
#   bash scripts/fuzz.sh --seeds                  rewrite the committed seed corpus Fuzz/Corpus from real logs
#
# Builds Fuzz/ (release, -sanitize=fuzzer,address, -enable-testing for
# `@testable import EventLog`) into .build-fuzz/. Each target starts from its
# committed seeds (Fuzz/Corpus/<target>, never written; and the inputs that
# once failed, Fuzz/Regressions/<target>) and keeps what it
# finds in .build-fuzz/corpus/<target>, so a later run goes on from there.
# A crash, a hang (-timeout), an out-of-bounds access (Address Sanitizer) or
# a runaway allocation (-rss_limit_mb / -malloc_limit_mb) fails the run: the
# input is saved as .build-fuzz/crashes/<target>-crash-… and the script exits
# non-zero after the last target. Leak detection is off: a process-lifetime
# cache (Swift metadata, the whole-log target's directory) is not a defect.
# One allocation of more than 64 MiB (EVENTLOG_FUZZ_MALLOC_MB) fails the run:
# an input is at most 64 KiB, so a decoder that asks for that much trusted a
# length it read instead of checking it against the named limits (issue 17,
# bounded input).
# Extra libFuzzer flags: EVENTLOG_FUZZ_FLAGS="-jobs=2 ...".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch="$root/.build-fuzz"
binary="$scratch/release/EventLogFuzz"
targets=(batch segment-header offset-index time-index stream-index stream-table-run cursor-journal meta compaction swap key-store log log-files append-json import-json)

build() {
    bash scripts/install-dependencies.sh >/dev/null
    # `--sanitize fuzzer` makes SwiftPM build the executable as a library and
    # link libFuzzer's main. The sanitizers themselves go in one swiftc flag:
    # swiftc keeps only the last -sanitize=, so `--sanitize fuzzer --sanitize
    # address` would build the Swift code without coverage instrumentation.
    swift build --package-path Fuzz -c release --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address \
        -Xcc -fsanitize=address -Xswiftc -enable-testing --scratch-path "$scratch" --product EventLogFuzz
}

case "${1:-all}" in
--list)
    printf '%s\n' "${targets[@]}"
    exit 0
    ;;
--seeds)
    build
    rm -rf Fuzz/Corpus
    mkdir -p Fuzz/Corpus
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-seeds.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    SWIFT_BACKTRACE=enable=no TMPDIR="$tmp" EVENTLOG_FUZZ_SEEDS="$root/Fuzz/Corpus" "$binary"
    du -sh Fuzz/Corpus
    exit 0
    ;;
all) selected=("${targets[@]}") ;;
*)
    if ! printf '%s\n' "${targets[@]}" | grep -qx -- "$1"; then
        echo "unknown target $1; targets: ${targets[*]}" >&2
        exit 2
    fi
    selected=("$1")
    ;;
esac
seconds="${2:-10}"

build
mkdir -p "$scratch/crashes"
# The whole-log target's directory lives here, not in the caller's TMPDIR.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eventlog-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# One target's run: its log in $scratch/fuzz-<target>.log, its table row in $scratch/fuzz-<target>.row.
run_target() {
    local target=$1
    local work="$scratch/corpus/$target"
    mkdir -p "$work" "Fuzz/Corpus/$target"
    # Inputs that once failed (Fuzz/Regressions/<target>, kept by hand) run first, as seeds.
    local regressions=()
    [ -d "Fuzz/Regressions/$target" ] && regressions=("Fuzz/Regressions/$target")
    local log="$scratch/fuzz-$target.log"
    # A JSON line longer than a few KiB explores nothing new and slows every execution.
    local max_len
    case "$target" in *-json) max_len=8192 ;; *) max_len=65536 ;; esac
    local status=0
    # SWIFT_BACKTRACE: a trap goes straight to libFuzzer's handler (which saves
    # the input) instead of to Swift's backtracer first. Each target its own
    # TMPDIR: several may run at once.
    mkdir -p "$tmp/$target"
    SWIFT_BACKTRACE=enable=no TMPDIR="$tmp/$target" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" EVENTLOG_FUZZ_TARGET="$target" \
        "$binary" "$work" "Fuzz/Corpus/$target" "${regressions[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb="${EVENTLOG_FUZZ_MALLOC_MB:-64}" -max_len="$max_len" -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$scratch/crashes/$target-" ${EVENTLOG_FUZZ_FLAGS:-} >"$log" 2>&1 || status=$?
    local runs units bytes result
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    units=$(find "$work" -type f | wc -l)
    bytes=$(find "$work" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    if [ "$status" -eq 0 ]; then result=ok; else result="FAILED (exit $status; log $log)"; fi
    printf '%-18s %10s %8s %10s %s\n' "$target" "${runs:-?}" "$units" "$bytes" "$result" >"$scratch/fuzz-$target.row"
}

# Targets run EVENTLOG_FUZZ_JOBS at a time (default: one per CPU; each is one
# process on one core), each for SECONDS: the same budget a target, in less time.
jobs="${EVENTLOG_FUZZ_JOBS:-$(nproc)}"
running=0
for target in "${selected[@]}"; do
    rm -f "$scratch/fuzz-$target.row"
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_target "$target" &
    running=$((running + 1))
done
wait
failed=()
printf '%-18s %10s %8s %10s %s\n' target executions units bytes result
for target in "${selected[@]}"; do
    row=$(cat "$scratch/fuzz-$target.row" 2>/dev/null || echo "$target ? ? ? FAILED (no result)")
    echo "$row"
    case "$row" in
    *FAILED*)
        failed+=("$target")
        grep -E '^==[0-9]+==ERROR|^SUMMARY|deadly signal|Fatal error|Test unit written|timeout after|out-of-memory' \
            "$scratch/fuzz-$target.log" | head -8 >&2 || true
        ;;
    esac
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]} (inputs in $scratch/crashes/)" >&2
    exit 1
fi
