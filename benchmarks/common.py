"""Helpers shared by the benchmark scripts: a small real training loop and result files."""

from __future__ import annotations

import json
import platform
import statistics
import sys
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
