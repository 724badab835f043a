#!/usr/bin/env bash
# ThreadSanitizer over the tests that run threads against one log (issue 16).
#
#   bash scripts/tsan.sh            build into .build-tsan/ and run the suites below
#   bash scripts/tsan.sh FILTER     the same with another `swift test --filter` regex
#
# The library locks with Support/Mutex.swift, a `Mutex` over
# pthread_mutex_t that TSan intercepts (the standard library's Mutex hands
# a contended lock over inside the kernel, where TSan cannot see it, so
# every access it guards looked like a race). Nothing is suppressed.
#
# Any ThreadSanitizer report fails the run: TSan's own exit code (66) fails
# `swift test`, and the output is checked for reports as well (a child
# process, such as the `eventlog` of the crash tests, reports on its stderr,
# which the tests may not look at).
set -euo pipefail
cd "$(dirname "$0")/.."

# The suites, and why each: every one runs threads against one log in this
# process (about 2 minutes here under TSan, which is 5-15 times slower):
# - ConcurrentLoadTests: appenders of every shape under group commit, readers,
#   a subscription, a consumer group, cursor commits, compaction by hand and
#   in the background, metrics on their timer and the LogService, all at once;
# - ConcurrencyTests: readers beside the writer; group commit;
# - ConsumerTests: live subscriptions across rolls, waits cut by cancel,
#   competing consumers, nack timeouts;
# - DurabilityTests, AsyncLogTests, AsyncSurfaceTests: the interval flusher; the
#   per-log executor of the async surface; CompactionPriorityTests: the pass thread;
# - MetricsTests: the metrics timer; LogServiceTests: the service's shutdown;
# - StreamTests/racingWriters: racing writers on one stream's versions;
# - RetentionTests/backgroundRetention, ScavengingTests/closeDuringABackgroundPass:
#   maintenance on its own thread beside the writer.
# - BatchCacheTests/concurrentReadersThroughASmallCache: point and stream
#   readers on four threads sharing the cache of decompressed LZ4 batches.
# - ScanReadAheadTests (not the truncation test, whose SIGBUS under TSan's
#   signal handling proves nothing): a scan and its read-ahead thread.
# - ParallelUnitCompressorTests: the writer and its LZ4 helper thread
#   compressing one batch's units.
# - GroupCommitTests: leaders, gatherers, sleeping waiters and waiters that
#   look for a running sync's end without the lock, on one group commit.
# - MutexTests: the lock taken after yielding (the writer lock under group commit).
# - LZ4DictionaryTests/concurrentPointReads: point readers on several threads
#   borrowing and giving back the segments' staged dictionary copies.
# A suite added here needs its file linked into ThreadSanitizer/Tests/EventLogRaceTests (with any file of helpers
# it uses), or the filter finds nothing of it there.
# Left out: suites that start child processes (CrossProcessWakeTests, the CLI
# and crash tests): under TSan a fork takes long enough for the child to hold
# a copy of another test's writer lock, and those tests fail for that alone;
# and the tests that fail at every step of a run (single-threaded, long).
filter="${1:-\\.(ConcurrentLoadTests|ConcurrencyTests|ConsumerTests|DurabilityTests|AsyncLogTests|AsyncSurfaceTests|CompactionPriorityTests|MetricsTests|LogServiceTests)/|\\.StreamTests/racingWriters|\\.RetentionTests/backgroundRetention|\\.ScavengingTests/closeDuringABackgroundPass|\\.BatchCacheTests/concurrentReadersThroughASmallCache|\\.ScanReadAheadTests/(aLongScan|aFiltered|aScanStopped|damageIs)|\\.ParallelUnitCompressorTests/|\\.GroupCommitTests/|\\.MutexTests/|\\.LZ4DictionaryTests/concurrentPointReads}"

# The backtracer trips sanitizers (and `swift test` then hangs).
export SWIFT_BACKTRACE=enable=no
export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1 history_size=4}"
# The suites are built from their own package (ThreadSanitizer/: symbolic
# links to their files in Tests/EventLogTests), which holds nothing but
# them, what they use, and the library: the library's package would also
# build every other suite, the CLI and the NATS modules under TSan.
flags=(--package-path ThreadSanitizer --scratch-path .build-tsan --sanitize=thread)

swift build --build-tests "${flags[@]}"
output=$(mktemp "${TMPDIR:-/tmp}/eventlog-tsan.XXXXXX")
trap 'rm -f "$output"' EXIT
status=0
swift test --skip-build "${flags[@]}" --filter "$filter" 2>&1 | tee "$output" || status=$?
reports=$(grep -c "WARNING: ThreadSanitizer" "$output" || true)
if [ "$status" -ne 0 ] || [ "$reports" -ne 0 ]; then
    echo "ThreadSanitizer: $reports report(s), swift test exited $status" >&2
    exit 1
fi
# With the default filter, every suite it names ran (a file not linked into ThreadSanitizer/ would run nothing).
if [ -z "${1:-}" ]; then
    for suite in ConcurrentLoadTests ConcurrencyTests ConsumerTests DurabilityTests AsyncLogTests AsyncSurfaceTests \
        CompactionPriorityTests MetricsTests LogServiceTests StreamTests RetentionTests ScavengingTests BatchCacheTests \
        ScanReadAheadTests ParallelUnitCompressorTests GroupCommitTests MutexTests LZ4DictionaryTests; do
        if ! grep -q "Suite $suite passed" "$output"; then
            echo "ThreadSanitizer: no test of $suite ran (is its file linked into ThreadSanitizer/Tests?)" >&2
            exit 1
        fi
    done
fi
echo "ThreadSanitizer: no reports"
