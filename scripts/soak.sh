#!/usr/bin/env bash
# The soak of issue 16 (not in CI): round after round of mixed load and
# faults until the time is up (Tests/EventLogTests/SoakTests.swift): appends
# of every shape from several threads with readers, a subscription, a
# consumer group, cursor commits, compaction, metrics and the service
# (ConcurrentLoad); the deterministic simulation's crashes and power losses;
# kill -9 of real child writers; a full disk at each moment (needs root to
# mount a tmpfs); EIO on the sync of each kind of file.
#
#   bash scripts/soak.sh --minutes 10 [--seed 7]   rounds drawn from the seed until the time is up
#   bash scripts/soak.sh --round 1234567           one round alone, by the seed the soak printed
#
# Prints each round, then the figures: events acknowledged and verified,
# faults injected by kind, and each violation with the seed of its round.
# Exits 1 on any violation, including a failed expectation of a reused test
# helper (printed in its round).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10 seed=1 round=""
while (($#)); do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --round) round="$2"; shift 2 ;;
        *) echo "usage: soak.sh [--minutes N] [--seed S] | --round SEED" >&2; exit 2 ;;
    esac
done
bash scripts/install-dependencies.sh >/dev/null
swift build --build-tests
output=$(mktemp "${TMPDIR:-/tmp}/eventlog-soak.XXXXXX")
trap 'rm -f "$output"' EXIT
export SWIFT_BACKTRACE=enable=no
status=0
EVENTLOG_SOAK_MINUTES="$minutes" EVENTLOG_SOAK_SEED="$seed" EVENTLOG_SOAK_ROUND="$round" \
    swift test --skip-build --filter 'SoakTests' 2>&1 | tee "$output" || status=$?
# Expectations that failed inside a round (Swift Testing prints "recorded an issue").
issues=$(grep -c "recorded an issue" "$output" || true)
if [ "$issues" -gt 0 ]; then
    echo "failed expectations, by round:"
    awk '/^soak round [0-9]+ begins/ { round = $0 } /recorded an issue/ { print "  " round ": " $0 }' "$output" | head -40
fi
if [ "$status" -ne 0 ] || [ "$issues" -gt 0 ]; then
    echo "soak: violations found (swift test exited $status, $issues failed expectation(s))" >&2
    exit 1
fi
