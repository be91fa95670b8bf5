"""FedJAX-shaped Flower runs on the in-process grid: many clients, few per round, many short
rounds (FedJAX's federated EMNIST: 3,400 clients, 10 a round, 1,500 rounds), plus the
1,000-clients-a-round scale run.

Each configuration runs plain (FedAvg) and tracked (``EmissionsStrategy`` + ``EnergyMod``),
each in a fresh process so that its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
is its own. The model is tiny (10,000 floats) and each client does almost nothing (it returns
the model it got, nudged): the run is nearly all Flower and greentrack, the worst case for
overhead. Recorded:
wall and CPU time, run directory bytes, peak RSS, fl.jsonl rows; with ``--report``, the time
and size of ``greentrack report -f md`` and ``-f html`` of the scale run.

    python -m benchmarks.fl_fedjax [--configs fedjax-10 fedjax-50 scale-1000]
        [--rounds-scale 1.0] [--keep DIR] [--report]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import save

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

CONFIGS: dict[str, tuple[int, int, int]] = {
    # name: (clients, clients per round, rounds)
    "fedjax-10": (3400, 10, 1500),
    "fedjax-50": (3400, 50, 300),
    "scale-1000": (1000, 1000, 100),
}


def tiny_client(msg: Any, context: Any) -> Any:
    """A client that does almost nothing: the model back, nudged, and its metrics."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    if msg.metadata.message_type == "evaluate":
        metrics = MetricRecord({"num-examples": 64, "loss": 0.5})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)
    weights = msg.content["arrays"].to_numpy_ndarrays()[0]
    content = RecordDict(
        {"arrays": ArrayRecord([weights + 0.01]), "metrics": MetricRecord({"num-examples": 64})}
    )
    return Message(content, reply_to=msg)


def child(name: str, tracked: bool, run_dir: Path, rounds: int) -> dict[str, Any]:
    """One run in this process: its figures as a dict."""
    import logging

    import numpy as np
    from flwr.app import ArrayRecord
    from flwr.common.logger import FLOWER_LOGGER
    from flwr.serverapp.strategy import FedAvg
    from flwr.supercore.task_identity import TaskIdentity

    from benchmarks import fl_scale
    from greentrack.integrations.flower import EmissionsStrategy, EnergyMod

    FLOWER_LOGGER.setLevel(logging.WARNING)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    fl_scale.client = tiny_client  # make_grid's ClientApp path calls it
    nodes, per_round, _ = CONFIGS[name]
    fraction = (per_round + 0.5) / nodes  # FedAvg samples int(nodes x fraction)
    strategy: Any = FedAvg(
        fraction_train=min(1.0, fraction),
        fraction_evaluate=min(1.0, fraction),
        min_train_nodes=min(per_round, 2),
        min_evaluate_nodes=min(per_round, 2),
        min_available_nodes=nodes,
    )
    mod = None
    if tracked:
        strategy = EmissionsStrategy(strategy, run_dir)
        mod = EnergyMod()
    grid = fl_scale.make_grid(nodes, mod)
    initial = ArrayRecord([np.zeros(fl_scale.N_FLOATS, dtype=np.float32)])
    t0, c0 = time.perf_counter(), time.process_time()
    strategy.start(grid, initial, num_rounds=rounds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out: dict[str, Any] = {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if tracked:
        files = {p.name: p.stat().st_size for p in run_dir.iterdir() if p.is_file()}
        out["run_dir_bytes"] = sum(files.values())
        out["run_dir_files"] = files
        with (run_dir / "fl.jsonl").open("rb") as f:
            out["fl_rows"] = sum(1 for _ in f)
    return out


def run_child(name: str, tracked: bool, run_dir: Path, rounds: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.fl_fedjax",
            "--child",
            name,
            "tracked" if tracked else "plain",
            str(run_dir),
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "FLWR_DISABLE_UPDATE_CHECK": "1"},
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def render(run_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Time and size of ``greentrack report`` (md and html) of ``run_dir``."""
    out: dict[str, Any] = {}
    for fmt in ("md", "html"):
        target = out_dir / f"report.{fmt}"
        command = [sys.executable, "-m", "greentrack", "report", "-f", fmt, "-o", str(target)]
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*command, str(run_dir)],
            capture_output=True,
            text=True,
        )
        out[fmt] = {
            "seconds": time.perf_counter() - t0,
            "returncode": proc.returncode,
            "bytes": target.stat().st_size if target.exists() else None,
            "stderr_tail": proc.stderr[-500:],
        }
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, name, mode, run_dir, rounds = sys.argv
        print(json.dumps(child(name, mode == "tracked", Path(run_dir), int(rounds))))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds-scale", type=float, default=1.0, help="fraction of rounds")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run dirs here")
    parser.add_argument("--report", action="store_true", help="render the scale run's report")
    parser.add_argument("--out", default="fl_fedjax")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for name in args.configs:
            nodes, per_round, full_rounds = CONFIGS[name]
            rounds = max(1, round(full_rounds * args.rounds_scale))
            run_dir = root / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"
            plain = run_child(name, False, root / "unused", rounds)
            tracked = run_child(name, True, run_dir, rounds)
            row: dict[str, Any] = {
                "config": name,
                "clients": nodes,
                "clients_per_round": per_round,
                "rounds": rounds,
                "messages": 2 * per_round * rounds,
                "plain": plain,
                "tracked": tracked,
                "wall_overhead": tracked["wall_s"] / plain["wall_s"] - 1,
                "cpu_ms_per_message": (tracked["cpu_s"] - plain["cpu_s"])
                / (2 * per_round * rounds)
                * 1e3,
            }
            if args.report and name == "scale-1000":
                row["report"] = render(run_dir, root)
            results.append(row)
            print(
                f"{name}: {rounds} rounds x {per_round} clients: wall plain "
                f"{plain['wall_s']:.1f} s, tracked {tracked['wall_s']:.1f} s "
                f"({row['wall_overhead']:+.1%}), {row['cpu_ms_per_message']:.3f} CPU ms per "
                f"message; run dir {tracked['run_dir_bytes'] / 1e6:.1f} MB; peak RSS plain "
                f"{plain['peak_rss_bytes'] / 1e6:.0f} MB, tracked "
                f"{tracked['peak_rss_bytes'] / 1e6:.0f} MB",
                flush=True,
            )
            if "report" in row:
                print(json.dumps(row["report"], indent=1), flush=True)
    save(args.out, {"model_floats": 10_000, "results": results})


if __name__ == "__main__":
    main()
