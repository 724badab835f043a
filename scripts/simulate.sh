#!/usr/bin/env bash
# Runs the deterministic simulation (Tests/EventLogTests/SimulationTests.swift)
# for as long as asked: seeded random appends, reads, cursor commits, crashes
# and simulated power losses, checked against a model of what was
# acknowledged. The test command runs a fixed 2,000 seeds; this runs more.
#
#   bash scripts/simulate.sh                 # 20,000 seeds from seed 1
#   bash scripts/simulate.sh --seeds 100000 --first 50000
#   bash scripts/simulate.sh --minutes 60    # batches of 2,000 seeds until the time is up
#   bash scripts/simulate.sh --seed 1234     # one seed, with its trace
#
# A failing seed is printed with the command that replays it exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=20000 first=1 minutes="" one=""
while (($#)); do
    case "$1" in
        --seeds) seeds="$2"; shift 2 ;;
        --first) first="$2"; shift 2 ;;
        --minutes) minutes="$2"; shift 2 ;;
        --seed) one="$2"; shift 2 ;;
        *) echo "usage: simulate.sh [--seeds N] [--first S] [--minutes M] [--seed S]" >&2; exit 2 ;;
    esac
done
bash scripts/install-dependencies.sh
swift build --build-tests
run() { swift test --skip-build --filter SimulationTests; }
if [[ -n "$one" ]]; then
    EVENTLOG_SIM_SEED="$one" run
elif [[ -n "$minutes" ]]; then
    deadline=$(( $(date +%s) + minutes * 60 ))
    while (( $(date +%s) < deadline )); do
        echo "seeds $first..<$((first + 2000))" >&2
        EVENTLOG_SIM_FIRST_SEED="$first" EVENTLOG_SIM_SEEDS=2000 run
        first=$((first + 2000))
    done
else
    EVENTLOG_SIM_FIRST_SEED="$first" EVENTLOG_SIM_SEEDS="$seeds" run
fi
