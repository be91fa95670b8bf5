"""Flower at scale: wall time of FedAvg rounds with and without greentrack (goal: <= 1% at 100
and 1,000 clients per round with about 50 ms of client compute per message).

Runs Flower's own round loop (``Strategy.start``) over an in-process grid that hands every
message to the ClientApp path of a virtual client (mods + handler) in this process, so that
what is timed is Flower plus greentrack, not Ray's scheduling. The model is tiny (a 10,000
float ArrayRecord); each client's work is a real NumPy computation calibrated to
``--compute-ms`` (default 50 ms) per message. Tracked: ``EmissionsStrategy(FedAvg)`` on the
server (run directory, spans, fl.jsonl, exact payload bytes of every message) and
``EnergyMod`` on every client with greentrack's default discovery (meters opened once per
process and shared by every message, ``SharedMeters``). The CPU cost per message is the
tracked run's CPU time less the plain run's, per message. Pairs run interleaved
(plain, tracked, plain, ...) and the overhead is the median of the per-pair ratios, of wall
time and of the process's CPU time (all threads; on a shared VM the CPU time is the steadier
figure, since wall time also carries other tenants' load). The clients' handlers' own CPU time
is timed too (``time.thread_time``): it drifts by about ±1.5% from run to run on a shared VM,
the same code in both runs of a pair, so "outside the handler" (the pair's CPU difference
less the handlers' difference, over the untracked run's CPU) is the overhead with that noise
taken out; the handlers' drift is reported beside it (a tracker that slowed the clients'
own work would show there).

    python -m benchmarks.fl_scale [--clients 10 100 1000] [--rounds 3] [--pairs 3]
        [--compute-ms 50] [--out fl_scale]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import save

# one BLAS thread: on 2 vCPUs a second BLAS thread spin-waits and makes CPU time and wall
# time depend on whatever else runs. Set before NumPy is imported (lazily, below).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

N_FLOATS = 10_000
STEPS = [20]  # matmul steps of a client's work, calibrated to --compute-ms in main()


def make_grid(nodes: int, mod: Any) -> Any:
    from flwr.serverapp import Grid

    class InProcessGrid(Grid):  # type: ignore[misc]
        def get_node_ids(self) -> list[int]:
            return list(range(1, nodes + 1))

        def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
            if mod is None:
                return [timed_client(m, None) for m in messages]
            return [mod(m, None, timed_client) for m in messages]

        def create_message(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

        def push_messages(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

        def pull_messages(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

        def run(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

        def set_run(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

    return InProcessGrid()


CLIENT_CPU_S = [0.0]  # thread CPU time spent inside the client's handler, this run


def timed_client(msg: Any, context: Any) -> Any:
    """:func:`client` (looked up at call time: fl_fedjax replaces it), its thread CPU time
    added to :data:`CLIENT_CPU_S`."""
    t0 = time.thread_time()
    try:
        return client(msg, context)
    finally:
        CLIENT_CPU_S[0] += time.thread_time() - t0


def client(msg: Any, context: Any) -> Any:
    import numpy as np
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

    weights = msg.content["arrays"].to_numpy_ndarrays()[0]
    rng = np.random.default_rng(int(msg.metadata.dst_node_id))
    x = rng.standard_normal((64, 256))
    for _ in range(STEPS[0]):  # real compute, calibrated to --compute-ms
        x = np.tanh(x @ rng.standard_normal((256, 256)) * 0.05)
    if msg.metadata.message_type == "evaluate":
        content = RecordDict(
            {"metrics": MetricRecord({"num-examples": 64, "loss": float(x.mean())})}
        )
    else:
        new = ArrayRecord([(weights + 0.01 * float(x.mean())).astype(np.float32)])
        content = RecordDict({"arrays": new, "metrics": MetricRecord({"num-examples": 64})})
    return Message(content, reply_to=msg)


def calibrate(compute_ms: float) -> float:
    """Set the client's matmul steps so that one message costs about ``compute_ms`` of CPU;
    returns the measured milliseconds per message."""

    def per_message_ms() -> float:
        client_steps_only()
        t0 = time.process_time()
        for _ in range(5):
            client_steps_only()
        return (time.process_time() - t0) / 5 * 1e3

    STEPS[0] = 20
    STEPS[0] = max(1, round(20 * compute_ms / per_message_ms()))
    return per_message_ms()


def client_steps_only() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 256))
    for _ in range(STEPS[0]):
        x = np.tanh(x @ rng.standard_normal((256, 256)) * 0.05)


def one_run(nodes: int, rounds: int, tracked: bool, root: Path) -> tuple[float, float, float]:
    """(wall seconds, process CPU seconds, CPU seconds inside the clients' handlers) of
    ``rounds`` rounds with ``nodes`` clients."""
    import numpy as np
    from flwr.app import ArrayRecord
    from flwr.serverapp.strategy import FedAvg

    from greentrack.integrations.flower import EmissionsStrategy, EnergyMod

    strategy: Any = FedAvg(min_available_nodes=nodes, fraction_evaluate=1.0)
    mod = None
    if tracked:
        strategy = EmissionsStrategy(strategy, root / f"fl-{nodes}-{time.monotonic_ns()}")
        mod = EnergyMod()
    grid = make_grid(nodes, mod)
    CLIENT_CPU_S[0] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    strategy.start(grid, ArrayRecord([np.zeros(N_FLOATS, dtype=np.float32)]), num_rounds=rounds)
    return time.perf_counter() - t0, time.process_time() - c0, CLIENT_CPU_S[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--compute-ms", type=float, default=50.0)
    parser.add_argument("--out", default="fl_scale")
    args = parser.parse_args()
    compute_ms = calibrate(args.compute_ms)
    print(f"client compute: {STEPS[0]} steps, {compute_ms:.1f} ms CPU per message")
    logging.getLogger("flwr").setLevel(logging.WARNING)
    from flwr.common.logger import FLOWER_LOGGER

    FLOWER_LOGGER.setLevel(logging.WARNING)
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        one_run(10, 1, True, Path(tmp))  # warm-up: imports, first discovery
        for nodes in args.clients:
            pairs = []
            for _ in range(args.pairs):
                plain = one_run(nodes, args.rounds, False, Path(tmp))
                tracked = one_run(nodes, args.rounds, True, Path(tmp))
                pairs.append((plain, tracked))
            wall = [(p[0], t[0]) for p, t in pairs]
            cpu = [(p[1], t[1]) for p, t in pairs]
            ratios = [t / p for p, t in wall]
            cpu_ratios = [t / p for p, t in cpu]
            messages = 2 * nodes * args.rounds
            # the same handler's CPU time varies from run to run with the machine (cache,
            # neighbours); what the pair adds outside it is greentrack's (and Flower's) part
            outside = [((t[1] - t[2]) - (p[1] - p[2])) / p[1] for p, t in pairs]
            handler_drift = [t[2] / p[2] - 1 for p, t in pairs]
            row = {
                "clients_per_round": nodes,
                "rounds": args.rounds,
                "messages": messages,
                "plain_wall_s": [p for p, _ in wall],
                "tracked_wall_s": [t for _, t in wall],
                "plain_cpu_s": [p for p, _ in cpu],
                "tracked_cpu_s": [t for _, t in cpu],
                "wall_overhead_median": statistics.median(ratios) - 1,
                "wall_overhead_min": min(ratios) - 1,
                "wall_overhead_max": max(ratios) - 1,
                "cpu_overhead_median": statistics.median(cpu_ratios) - 1,
                "cpu_overhead_min": min(cpu_ratios) - 1,
                "cpu_overhead_max": max(cpu_ratios) - 1,
                "cpu_ms_per_message": statistics.median(t - p for p, t in cpu) / messages * 1e3,
                "plain_handler_cpu_s": [p[2] for p, _ in pairs],
                "tracked_handler_cpu_s": [t[2] for _, t in pairs],
                "outside_handler_overhead_median": statistics.median(outside),
                "outside_handler_overhead_min": min(outside),
                "outside_handler_overhead_max": max(outside),
                "outside_handler_ms_per_message": statistics.median(
                    ((t[1] - t[2]) - (p[1] - p[2])) for p, t in pairs
                )
                / messages
                * 1e3,
                "handler_drift_median": statistics.median(handler_drift),
            }
            results.append(row)
            print(
                f"{nodes:5d} clients: wall plain {statistics.median(row['plain_wall_s']):.2f} s, "
                f"tracked {statistics.median(row['tracked_wall_s']):.2f} s "
                f"({row['wall_overhead_median']:+.1%}, "
                f"{row['wall_overhead_min']:+.1%}..{row['wall_overhead_max']:+.1%}); CPU "
                f"{row['cpu_overhead_median']:+.1%} "
                f"({row['cpu_overhead_min']:+.1%}..{row['cpu_overhead_max']:+.1%}), "
                f"{row['cpu_ms_per_message']:.2f} CPU ms per message; outside the handler "
                f"{row['outside_handler_overhead_median']:+.2%} "
                f"({row['outside_handler_overhead_min']:+.2%}.."
                f"{row['outside_handler_overhead_max']:+.2%}), "
                f"{row['outside_handler_ms_per_message']:.2f} ms per message "
                f"(handler's own drift {row['handler_drift_median']:+.2%})"
            )
    save(
        args.out,
        {
            "model_floats": N_FLOATS,
            "client_compute_ms": compute_ms,
            "client_steps": STEPS[0],
            "results": results,
            "goal_overhead": 0.01,
            "goal_cpu_ms_per_message": 0.3,
        },
    )


if __name__ == "__main__":
    main()
