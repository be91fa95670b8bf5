"""Start and stop of the Flower server's tracker (``RoundRecorder``) in a fresh process,
with and without time for the constructor's background prefetch (host facts, git, package
versions) before ``start``.

    python -m benchmarks.fl_server_start [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

ONE = """
import sys, tempfile, time
from pathlib import Path
from greentrack.integrations.flower.recorder import RoundRecorder
rec = RoundRecorder(Path(tempfile.mkdtemp()) / "run")
time.sleep(float(sys.argv[1]))
t0 = time.perf_counter(); rec.start(3); t1 = time.perf_counter(); rec.stop()
print((t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for wait in (0.0, 0.3):
        starts, stops = [], []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, "-c", ONE, str(wait)], capture_output=True, text=True, check=True
            ).stdout.split()
            starts.append(float(out[-2]))
            stops.append(float(out[-1]))
        print(
            f"prefetch time {wait:.1f} s: start median {statistics.median(starts):.1f} ms "
            f"({min(starts):.1f}-{max(starts):.1f}), stop median {statistics.median(stops):.1f} ms"
        )


if __name__ == "__main__":
    main()
