"""The model's own metrics (loss, accuracy...) recorded next to the energy of a run.

The Lightning callback stores the scalar metrics of each epoch, and the Flower wrapper the
aggregated metrics of each round, as ``metrics`` events in ``events.jsonl``. With them a report
can put emissions next to accuracy: the energy and CO2e spent until a metric first reached its
best value or a target (the Green FL paper's "emissions to reach target accuracy").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def scalar_metrics(values: Mapping[str, Any] | None) -> dict[str, float]:
    """The finite scalar entries of a metrics mapping (one-element tensors included).

    >>> scalar_metrics({"acc": 0.5, "name": "x", "loss": float("nan"), "n": 3})
    {'acc': 0.5, 'n': 3.0}
    """
    out: dict[str, float] = {}
    for key, value in dict(values or {}).items():
        try:
            number = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError):
            continue  # a string, a list, a tensor of several elements
        if math.isfinite(number):
            out[str(key)] = number
    return out


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """A metric's value after ``step`` epochs or rounds (``step`` as the framework counts)."""

    step: int
    value: float


def metric_series(events: Iterable[Mapping[str, Any]]) -> dict[str, list[MetricPoint]]:
    """Every metric recorded in ``events``, as a series ordered by epoch or round. A step
    recorded twice (a resumed run repeats its last epoch) keeps its first value."""
    series: dict[str, dict[int, float]] = {}
    for e in events:
        if e.get("event") != "metrics" or not isinstance(e.get("metrics"), Mapping):
            continue
        step = e.get("epoch", e.get("round"))
        if not isinstance(step, int):
            continue
        for name, value in scalar_metrics(e["metrics"]).items():
            series.setdefault(name, {}).setdefault(step, value)
    return {
        name: [MetricPoint(k, v) for k, v in sorted(points.items())]
        for name, points in sorted(series.items())
    }


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` is better (losses, errors, perplexity).

    >>> lower_is_better("val_loss"), lower_is_better("evaluate_accuracy")
    (True, False)
    """
    lowered = name.lower()
    return any(w in lowered for w in ("loss", "err", "perplexity", "ppl", "mse", "mae", "wer"))


def first_reaching(
    points: list[MetricPoint], target: float | None, *, lower_better: bool
) -> MetricPoint | None:
    """The first point at or past ``target`` (the best value when ``target`` is None)."""
    if not points:
        return None
    if target is None:
        target = min(p.value for p in points) if lower_better else max(p.value for p in points)
    for p in points:
        if (p.value <= target) if lower_better else (p.value >= target):
            return p
    return None
