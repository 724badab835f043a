#!/usr/bin/env python3
"""Cross-process wake latency of a read-only log (issue 12), measured with the
release `eventlog` binary: one process appends (`eventlog append`, one event a
batch, fed through stdin), another follows it (`eventlog tail -f --json`,
read-only, woken by its watch on the log directory), and this script reads
tail's lines.

Each sample is from the event's timestamp (stamped by the writer when it
builds the batch, just before its pwrite) to the moment this script has read
the line tail printed for it: the writer's write, the reader's wake and
refresh, tail's formatting and the pipe. An upper bound on the wake itself.
Events are sent one at a time, `--gap-ms` apart, so each sample is a wake
from idle.

    swift build -c release --product eventlog
    python3 scripts/wake-latency.py [--count 500] [--durability none|always] [--binary PATH]
"""
import argparse
import json
import select
import os
import statistics
import subprocess
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--durability", default="none", choices=["none", "always", "interval"])
    parser.add_argument("--gap-ms", type=float, default=2.0)
    parser.add_argument("--segment-bytes", type=int, default=128 << 20)
    parser.add_argument("--preload", type=int, default=0, help="events appended before tail starts (with a small --segment-bytes: many segments)")
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "eventlog"))
    args = parser.parse_args()
    durability = ["--durability", "interval:100"] if args.durability == "interval" else ["--durability", args.durability]

    with tempfile.TemporaryDirectory(prefix="wake-latency-") as directory:
        log = os.path.join(directory, "log")
        segment_bytes = ["--segment-bytes", str(args.segment_bytes)]
        # A log of --preload events (with a small --segment-bytes: of many segments).
        lines = "".join('{"stream":"p-%d","type":"T","data":{"pad":"%s"}}\n' % (i % 50, "x" * 200) for i in range(max(1, args.preload)))
        subprocess.run([args.binary, "append", log, *segment_bytes, "--durability", "none", "--batch", "100"],
                       input=lines, text=True, capture_output=True, check=True)
        segments = len([name for name in os.listdir(log) if name.endswith(".segment")])
        writer = subprocess.Popen(
            [args.binary, "append", log, "--batch", "1", *segment_bytes, *durability],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        tail = subprocess.Popen([args.binary, "tail", log, "-f", "--json", "--from", "end"], stdout=subprocess.PIPE, text=True, bufsize=1)
        # Event 0, until tail prints it: tail is following.
        while True:
            writer.stdin.write('{"stream":"s","type":"T","data":{"n":0}}\n')
            writer.stdin.flush()
            writer.stdout.readline()
            ready, _, _ = select.select([tail.stdout], [], [], 0.5)
            if ready:
                tail.stdout.readline()
                break
        samples = []
        for n in range(1, args.count + 1):
            writer.stdin.write('{"stream":"s","type":"T","data":{"n":%d}}\n' % n)
            writer.stdin.flush()
            event = {"data": {"n": 0}}
            while event["data"]["n"] == 0:  # an extra event 0 of the start
                line = tail.stdout.readline()
                now = time.time_ns() // 1000
                event = json.loads(line)
            assert event["data"]["n"] == n, line
            samples.append(now - event["timestamp"])
            writer.stdout.readline()
            time.sleep(args.gap_ms / 1000)
        tail.terminate()
        writer.stdin.close()
        writer.wait()
        tail.wait()

    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"durability {args.durability}, {segments} segments, {len(samples)} events one at a time, {args.gap_ms} ms apart")
    print(f"writer stamp -> tail -f line read: median {statistics.median(samples):.0f} us, "
          f"p90 {pick(0.9)} us, p99 {pick(0.99)} us, min {samples[0]} us, max {samples[-1]} us")


if __name__ == "__main__":
    main()
