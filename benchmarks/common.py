"""Helpers shared by the benchmark scripts: a small real training loop and result files."""

from __future__ import annotations

import json
import platform
import statistics
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    import psutil

    from greentrack import __version__
    from greentrack.meters.tdp import cpu_model_and_packages

    versions = {}
    for mod in ("torch", "pandas", "pynvml"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "?")
    return {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "greentrack": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model_and_packages()[0],
        "logical_cpus": psutil.cpu_count(),
        "versions": versions,
    }


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **data}, indent=2) + "\n")
    print(f"saved {path}")
    return path


def quantiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "q1": q[0],
        "q3": q[2],
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def paired_overhead(
    run: Callable[[Any], float], make: Callable[[int], Any], pairs: int
) -> dict[str, Any]:
    """Paired A/B of a tracked run against an untracked one, interleaved (even pairs run A
    first, odd pairs B first), and an A/A control (untracked in both) for the noise floor.
    ``run(callback)`` returns the wall time of one run; ``make(i)`` makes pair i's callback.
    Returns ``{"untracked-control": ..., "callback": ...}`` with the ratio B/A quantiles."""
    results = {}
    for variant in ("untracked-control", "callback"):
        ratios = []
        for i in range(pairs):

            def b(i: int = i, variant: str = variant) -> float:
                return run(None if variant == "untracked-control" else make(i))

            if i % 2 == 0:
                a, t = run(None), b()
            else:
                t, a = b(), run(None)
            ratios.append(t / a)
            print(f"{variant} pair {i}: A {a:.3f} s, B {t:.3f} s, ratio {t / a:.4f}")
        results[variant] = {"ratio_b_over_a": quantiles(ratios)}
    return results


def callback_overhead_main(
    name: str,
    train: Callable[[int, Any, Path], float],
    make_callback: Callable[[Path], Any],
) -> None:
    """The command line of a callback's paired A/B benchmark: ``--pairs`` and ``--steps``, a
    warm-up, :func:`paired_overhead`, printed and saved as ``<name>_<cpu|cuda>``.
    ``train(steps, callback_or_None, root)`` returns seconds; ``make_callback(run_dir)``."""
    import argparse
    import tempfile

    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train(6, None, root)  # warm-up
        results = paired_overhead(
            lambda cb: train(args.steps, cb, root),
            lambda i: make_callback(root / f"r{i}"),
            args.pairs,
        )
    print(json.dumps(results, indent=2))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    save(
        f"{name}_{device}",
        {"pairs": args.pairs, "steps": args.steps, "device": device, "results": results},
    )
