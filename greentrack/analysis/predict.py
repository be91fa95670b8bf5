"""Forecast a run's total from its first epochs (or rounds), with an interval.

Given the energy (and duration) of each completed unit of work and how many remain:

* point forecast: done so far + remaining x the mean of the recent units, where "recent" drops
  the first unit once there are two or more (it carries warm-up: compilation, caches,
  allocator), as carbontracker forecasts from its first epochs;
* interval: the lowest and highest of (a) the mean and the extremes of the recent units and
  (b) a linear trend through them extrapolated over the remaining units, so that a run that is
  slowing down (or speeding up) stays inside the interval.

The forecast is only as good as the assumption that the remaining units resemble the recent
ones; the interval widens with their spread and their trend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast of the total after ``units_done`` units, ``units_remaining`` to go."""

    units_done: int
    units_remaining: float
    done: float
    point: float
    low: float
    high: float

    def to_dict(self, unit: str) -> dict[str, float]:
        return {
            "units_done": self.units_done,
            "units_remaining": self.units_remaining,
            f"done_{unit}": self.done,
            f"forecast_{unit}": self.point,
            f"forecast_{unit}_low": self.low,
            f"forecast_{unit}_high": self.high,
        }


def _trend_total(values: Sequence[float], remaining: float) -> float:
    """Sum over the next ``remaining`` units of a least-squares line through ``values``."""
    n = len(values)
    xs = range(n)
    mx, my = (n - 1) / 2.0, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, values, strict=True)) / sxx
    whole = int(remaining)
    total = sum(max(0.0, my + slope * (n + k - mx)) for k in range(whole))
    frac = remaining - whole
    if frac > 0:
        total += frac * max(0.0, my + slope * (n + whole - mx))
    return total


def forecast(per_unit: Sequence[float], remaining: float, *, window: int = 5) -> Forecast:
    """Forecast the total of a quantity (J, s, gCO2e) from its value per completed unit.

    >>> f = forecast([12.0, 10.0, 10.0], remaining=7)
    >>> f.point, f.low, f.high
    (102.0, 102.0, 102.0)
    """
    if not per_unit:
        raise ValueError("a forecast needs at least one completed unit")
    if remaining < 0:
        raise ValueError(f"remaining units must be >= 0, got {remaining}")
    done = float(sum(per_unit))
    recent = list(per_unit[1:] if len(per_unit) >= 2 else per_unit)[-window:]
    mean = sum(recent) / len(recent)
    candidates = [mean * remaining, min(recent) * remaining, max(recent) * remaining]
    if len(recent) >= 3:
        candidates.append(_trend_total(recent, remaining))
    return Forecast(
        len(per_unit),
        remaining,
        done,
        done + mean * remaining,
        done + min(candidates),
        done + max(candidates),
    )
