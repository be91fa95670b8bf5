"""greentrack next to CodeCarbon, Zeus and carbontracker: overhead, import and start-up cost.

Run in the benchmark environment (``bash benchmarks/setup_anchors.sh`` makes .venv-bench):

    .venv-bench/bin/python -m benchmarks.anchors [--pairs 5] [--steps 150] [--gpu]

* Overhead: the same training loop (a small transformer encoder on synthetic tokens,
  benchmarks/anchor_worker.py), each run in a fresh process, untracked and tracked by each
  tool at its default settings, interleaved (none, tool A, none, tool B, ... with the order of
  the tools rotated each pair). Per tool: the median over pairs of tracked/untracked, of the
  training loop's wall time and of the process's CPU time (the steadier figure on a shared VM).
* Energy: what each tool reported for the run, and how (on a machine without RAPL or a GPU,
  every tool falls back to a model, or cannot measure: both are findings).
* Import and start-up: ``python -c "import X"`` and a tracker started and stopped around
  nothing, each in a fresh process, median of 5.

Results: benchmarks/results/anchors[_gpu].json; docs/benchmarks.md shows the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import save

TOOLS = ("greentrack", "codecarbon", "zeus", "carbontracker")
IMPORTS = {
    "greentrack": "import greentrack",
    "codecarbon": "import codecarbon",
    "zeus": "import zeus.monitor",
    "carbontracker": "import carbontracker.tracker",
}
START_STOP = {
    "greentrack": "import greentrack, tempfile; d = tempfile.mkdtemp(); "
    "t = greentrack.track(d + '/r'); t.start(); t.stop()",
    "codecarbon": "from codecarbon import OfflineEmissionsTracker as T; "
    "t = T(country_iso_code='DEU', save_to_file=False, log_level='error'); t.start(); t.stop()",
    "zeus": "from zeus.monitor import ZeusMonitor; m = ZeusMonitor(); "
    "m.begin_window('w'); m.end_window('w')",
    "carbontracker": "import tempfile; from carbontracker.tracker import CarbonTracker; "
    "t = CarbonTracker(epochs=1, log_dir=tempfile.mkdtemp(), verbose=0); "
    "t.epoch_start(); t.epoch_end(); t.stop()",
}


def worker(tool: str, steps: int, gpu: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.anchor_worker", tool, str(steps)]
    done = subprocess.run(
        cmd + (["--gpu"] if gpu else []), capture_output=True, text=True, timeout=900
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"tool": tool, "error": (done.stderr or done.stdout)[-500:]}
    return dict(json.loads(lines[-1]))


def timed_python(code: str, repeats: int = 5) -> dict[str, Any]:
    times, error = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            error = done.stderr.strip().splitlines()[-1][:300] if done.stderr else "failed"
            break
    return {"median_s": statistics.median(times), "error": error}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {t: [] for t in TOOLS}
    for pair in range(args.pairs):
        order = TOOLS[pair % len(TOOLS) :] + TOOLS[: pair % len(TOOLS)]
        for tool in order:
            base = worker("none", args.steps, args.gpu)
            tracked = worker(tool, args.steps, args.gpu)
            runs[tool].append((base, tracked))
            note = tracked.get("error", "")[:80]
            print(
                f"pair {pair + 1} {tool:<14} none {base.get('loop_wall_s', 0):.2f} s, tracked "
                f"{tracked.get('loop_wall_s', 0):.2f} s {note}",
                flush=True,
            )
    table = []
    for tool in TOOLS:
        ok = [(b, t) for b, t in runs[tool] if "loop_wall_s" in t and "loop_wall_s" in b]
        errors = sorted({t["error"] for _, t in runs[tool] if t.get("error")})
        row: dict[str, Any] = {"tool": tool, "pairs": len(ok), "errors": errors}
        if ok:
            wall = [t["loop_wall_s"] / b["loop_wall_s"] - 1 for b, t in ok]
            cpu = [t["cpu_s"] / b["cpu_s"] - 1 for b, t in ok]
            energies = [t["energy_kwh"] for _, t in ok if t.get("energy_kwh") is not None]
            row |= {
                "wall_overhead_median": statistics.median(wall),
                "wall_overhead_range": [min(wall), max(wall)],
                "cpu_overhead_median": statistics.median(cpu),
                "cpu_overhead_range": [min(cpu), max(cpu)],
                "energy_kwh_median": statistics.median(energies) if energies else None,
                "method": next((t.get("method") for _, t in ok if t.get("method")), None),
                "loop_wall_s_median": statistics.median(t["loop_wall_s"] for _, t in ok),
            }
        table.append(row)
    startup = {
        tool: {"import": timed_python(IMPORTS[tool]), "start_stop": timed_python(START_STOP[tool])}
        for tool in TOOLS
    }
    startup["python"] = {"import": timed_python("pass"), "start_stop": timed_python("pass")}
    versions = {}
    for tool in TOOLS:
        from importlib import metadata

        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            versions[tool] = None
    result = {
        "device": "gpu" if args.gpu else "cpu",
        "steps": args.steps,
        "pairs": args.pairs,
        "versions": versions,
        "overhead": table,
        "startup": startup,
    }
    print(json.dumps(result, indent=2))
    save("anchors_gpu" if args.gpu else "anchors", result)


if __name__ == "__main__":
    main()
