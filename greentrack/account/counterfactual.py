"""What the same run would have emitted elsewhere or at other times (Dodge et al. 2022).

All three assume the run's power profile is unchanged by moving it: the same energy per unit
of work, whatever the region or the hour. Shifting or pausing real jobs has costs this does
not model (checkpoint/restart energy, idle power while paused, queueing).

* Regions: ``E x PUE x I_region`` for each region's annual intensity.
* Flexible Start: the run started ``d`` later, for every ``d`` on the series' grid up to the
  window; the best ``d`` and the saving against starting on time.
* Pause & Resume: the run may pause in the dirtiest intervals as long as it ends within
  ``max_stretch`` x its duration. Intervals of the window are taken cleanest first until they
  hold the run's duration (the last one partly); the run's work is laid into them in time
  order. With constant power this is optimal; with a varying profile it is the greedy schedule
  Dodge et al. describe, evaluated with the real profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from greentrack.account.charge import co2e_g
from greentrack.carbon.intensity import GridIntensity
from greentrack.carbon.series import (
    EnergyCurve,
    IntensitySeries,
    IntensitySeriesError,
    weighted_intensity,
)
from greentrack.metadata import utc_iso
from greentrack.units import G_PER_KG, kwh_from_j


@dataclass(frozen=True)
class RegionResult:
    region: str
    name: str
    gco2e_per_kwh: float
    year: int | None
    source: str
    co2e_g: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "name": self.name,
            "gco2e_per_kwh": self.gco2e_per_kwh,
            "year": self.year,
            "source": self.source,
            "co2e_g": self.co2e_g,
            "co2e_kg": self.co2e_g / G_PER_KG,
        }


def regions(energy_kwh_it: float, pue: float, grids: list[GridIntensity]) -> list[RegionResult]:
    """The same IT energy in each region, lowest CO2e first."""
    out = [
        RegionResult(
            g.region,
            g.name,
            g.gco2e_per_kwh,
            g.year,
            g.source.cite(),
            co2e_g(energy_kwh_it, pue, g.gco2e_per_kwh),
        )
        for g in grids
    ]
    return sorted(out, key=lambda r: r.co2e_g)


@dataclass(frozen=True)
class FlexibleStartResult:
    window_s: float
    step_s: float
    actual_co2e_g: float
    best_delay_s: float
    best_start_utc: str
    best_co2e_g: float
    saving: float
    worst_co2e_g: float
    delays_evaluated: int
    curve: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "step_s": self.step_s,
            "actual_co2e_kg": self.actual_co2e_g / G_PER_KG,
            "best_start": self.best_start_utc,
            "best_delay_s": self.best_delay_s,
            "co2e_kg": self.best_co2e_g / G_PER_KG,
            "saving": self.saving,
            "worst_co2e_kg": self.worst_co2e_g / G_PER_KG,
            "delays_evaluated": self.delays_evaluated,
            "co2e_kg_by_delay_s": [[d, c / G_PER_KG] for d, c in self.curve],
        }


def flexible_start(
    curve: EnergyCurve,
    series: IntensitySeries,
    window_s: float,
    *,
    pue: float = 1.0,
    step_s: float | None = None,
) -> FlexibleStartResult:
    """CO2e had the run started up to ``window_s`` later (step: the series' interval)."""
    if window_s < 0:
        raise ValueError(f"the Flexible Start window must be >= 0 seconds, got {window_s}")
    step = step_s or series.step_s
    actual = _series_co2e_g(curve, series, pue)
    results: list[tuple[float, float]] = []
    n = math.floor(window_s / step + 1e-9)
    for i in range(n + 1):
        delay = i * step
        shifted = curve.shifted(delay)
        if shifted.end > series.end_unix_s:
            break
        try:
            results.append((delay, _series_co2e_g(shifted, series, pue)))
        except IntensitySeriesError:
            continue  # a gap inside this shifted window: not a candidate
    if not results:
        raise IntensitySeriesError("the series does not cover any shifted start of the run")
    best = min(results, key=lambda r: r[1])
    return FlexibleStartResult(
        window_s=window_s,
        step_s=step,
        actual_co2e_g=actual,
        best_delay_s=best[0],
        best_start_utc=utc_iso(curve.start + best[0]),
        best_co2e_g=best[1],
        saving=1.0 - best[1] / actual if actual > 0 else 0.0,
        worst_co2e_g=max(r[1] for r in results),
        delays_evaluated=len(results),
        curve=results,
    )


@dataclass(frozen=True)
class PauseResumeResult:
    max_stretch: float
    actual_co2e_g: float
    co2e_g: float
    saving: float
    end_utc: str
    stretch: float
    schedule: list[tuple[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_stretch": self.max_stretch,
            "actual_co2e_kg": self.actual_co2e_g / G_PER_KG,
            "co2e_kg": self.co2e_g / G_PER_KG,
            "saving": self.saving,
            "end": self.end_utc,
            "stretch": self.stretch,
            "schedule": [list(s) for s in self.schedule],
        }


def pause_resume(
    curve: EnergyCurve, series: IntensitySeries, max_stretch: float, *, pue: float = 1.0
) -> PauseResumeResult:
    """CO2e had the run paused in the dirtiest intervals, ending within ``max_stretch`` x its
    duration of its start."""
    if max_stretch < 1.0:
        raise ValueError(f"max_stretch must be >= 1 (1 = no pausing), got {max_stretch}")
    actual = _series_co2e_g(curve, series, pue)
    duration = curve.end - curve.start
    window_end = curve.start + max_stretch * duration
    if window_end > series.end_unix_s:
        raise IntensitySeriesError(
            f"the series ends at {utc_iso(series.end_unix_s)}, before the Pause & Resume window "
            f"({utc_iso(window_end)}): supply a longer series or a smaller stretch"
        )
    slots: list[tuple[float, float, float]] = []  # (intensity, start, end)
    k = math.floor((curve.start - series.start_unix_s) / series.step_s)
    while True:
        s = series.start_unix_s + k * series.step_s
        if s >= window_end:
            break
        a, b = max(s, curve.start), min(s + series.step_s, window_end)
        value = series.values[k] if 0 <= k < len(series.values) else math.nan
        if b > a and not math.isnan(value):
            slots.append((value, a, b))
        k += 1
    chosen: list[tuple[float, float, float]] = []
    need = duration
    for value, a, b in sorted(slots, key=lambda x: (x[0], x[1])):
        if need <= 1e-9:
            break
        take = min(b - a, need)
        chosen.append((value, a, a + take))
        need -= take
    if need > 1e-6:
        raise IntensitySeriesError("the window has too few intervals with data to fit the run")
    chosen.sort(key=lambda x: x[1])
    weighted = 0.0  # sum of J x gCO2e/kWh over the schedule
    work = curve.start
    schedule: list[tuple[str, str]] = []
    for value, a, b in chosen:
        weighted += float(curve.energy_between(work, work + (b - a))) * value
        work += b - a
        if schedule and abs(_unix(schedule[-1][1]) - a) < 1e-6:
            schedule[-1] = (schedule[-1][0], utc_iso(b))
        else:
            schedule.append((utc_iso(a), utc_iso(b)))
    end = chosen[-1][2]
    total_j = curve.total_j
    co2e = co2e_g(kwh_from_j(total_j), pue, weighted / total_j if total_j > 0 else 0.0)
    return PauseResumeResult(
        max_stretch=max_stretch,
        actual_co2e_g=actual,
        co2e_g=co2e,
        saving=1.0 - co2e / actual if actual > 0 else 0.0,
        end_utc=utc_iso(end),
        stretch=(end - curve.start) / duration if duration > 0 else 1.0,
        schedule=schedule,
    )


def _series_co2e_g(curve: EnergyCurve, series: IntensitySeries, pue: float) -> float:
    w = weighted_intensity(curve, series)
    return co2e_g(w.energy_kwh, pue, w.weighted_gco2e_per_kwh) if w.energy_kwh > 0 else 0.0


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
