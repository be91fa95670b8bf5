"""``greentrack when``: if I start the job now or later, what changes?

:func:`best_start` slides a job of ``duration_s`` seconds over start times on a forecast's grid,
from ``now`` to ``now + within_s`` (the job must end inside the forecast). At constant power
the energy-weighted mean intensity of a window is its time-weighted mean, intervals cut by the
window counting for their overlap:

    I(a) = (1 / d) * sum_k  overlap([a, a + d), interval k) [s] x I_k [gCO2e/kWh]

The best start is the one with the lowest mean (the earliest of equal ones). With a power (W)
or an energy (kWh), the job's CO2e at each start comes from
:func:`greentrack.account.charge.co2e_g`, the one place the CO2e formula lives.

A forecast is an estimate: with *average* figures (UK Carbon Intensity, Electricity Maps) the
saving is a proxy; with *marginal* figures (WattTime) it estimates the emissions the shift
avoids.

>>> from greentrack.carbon.series import IntensitySeries
>>> f = IntensitySeries(0.0, 1800.0, (300.0, 300.0, 100.0, 100.0, 300.0))
>>> r = best_start(f, duration_s=3600, within_s=3600, now_unix_s=0.0)
>>> r.best_start_unix_s, r.best_gco2e_per_kwh, r.now_gco2e_per_kwh
(3600.0, 100.0, 300.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from greentrack.account.charge import co2e_g
from greentrack.carbon.series import IntensitySeries
from greentrack.errors import GreentrackError
from greentrack.numbers import num
from greentrack.units import kwh_from_j

DEFAULT_WITHIN = "24h"


class WhenError(GreentrackError, ValueError):
    """The question cannot be answered from this forecast (says why and what to change)."""


@dataclass(frozen=True)
class WhenResult:
    """When to start, and what it changes. Times in UTC seconds, intensities in gCO2e/kWh.

    Attributes:
        now_unix_s: the "start now" time.
        duration_s: job duration.
        within_s: how far after ``now`` the job may start.
        best_start_unix_s: the start with the lowest mean intensity (earliest of ties).
        best_gco2e_per_kwh: mean intensity over the job at the best start.
        now_gco2e_per_kwh: mean intensity over the job when started now.
        candidates: how many start times were compared.
        kind: ``"average"`` or ``"marginal"`` (from the forecast).
        source: where the forecast comes from.
        pue: PUE applied to the IT energy.
        it_energy_kwh: the job's IT energy, when a power or energy was given.
        now_co2e_g, best_co2e_g: the job's CO2e when started now / at the best start.
        saving_g, saving_fraction: ``now - best`` in grams and as a fraction of ``now``.
    """

    now_unix_s: float
    duration_s: float
    within_s: float
    best_start_unix_s: float
    best_gco2e_per_kwh: float
    now_gco2e_per_kwh: float
    candidates: int
    kind: str
    source: str
    pue: float = 1.0
    it_energy_kwh: float | None = None
    now_co2e_g: float | None = None
    best_co2e_g: float | None = None
    saving_g: float | None = None
    saving_fraction: float | None = None

    @property
    def delay_s(self) -> float:
        """Seconds from now to the best start."""
        return self.best_start_unix_s - self.now_unix_s

    @property
    def intensity_change_fraction(self) -> float:
        """``(best - now) / now`` of the mean intensity (negative: cleaner); 0 if now is 0."""
        if self.now_gco2e_per_kwh <= 0:
            return 0.0
        return (self.best_gco2e_per_kwh - self.now_gco2e_per_kwh) / self.now_gco2e_per_kwh

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["now_utc"] = iso_utc(self.now_unix_s)
        d["best_start_utc"] = iso_utc(self.best_start_unix_s)
        d["delay_s"] = self.delay_s
        d["intensity_change_fraction"] = self.intensity_change_fraction
        return d


class _Integral:
    """Integral of a series over time (gCO2e/kWh x s) and gap counts, by prefix sums."""

    def __init__(self, series: IntensitySeries) -> None:
        self.t0, self.step, self.n = series.start_unix_s, series.step_s, len(series.values)
        self.cum = [0.0]
        self.gaps = [0]
        for v in series.values:
            gap = math.isnan(v)
            self.cum.append(self.cum[-1] + (0.0 if gap else v * self.step))
            self.gaps.append(self.gaps[-1] + gap)

    def _at(self, t: float) -> float:
        k = min(max(math.floor((t - self.t0) / self.step), 0), self.n - 1)
        rate = (self.cum[k + 1] - self.cum[k]) / self.step
        return self.cum[k] + (t - (self.t0 + k * self.step)) * rate

    def mean(self, a: float, b: float) -> float:
        """Time-weighted mean over ``[a, b)``; NaN if it leaves the series or meets a gap."""
        if a < self.t0 - 1e-6 or b > self.t0 + self.n * self.step + 1e-6 or b <= a:
            return math.nan
        k0 = max(0, math.floor((a - self.t0) / self.step + 1e-9))
        k1 = min(self.n, math.ceil((b - self.t0) / self.step - 1e-9))
        if self.gaps[k1] - self.gaps[k0] > 0:
            return math.nan
        return (self._at(b) - self._at(a)) / (b - a)


def best_start(
    forecast: IntensitySeries,
    *,
    duration_s: float,
    within_s: float,
    now_unix_s: float,
    power_w: float | None = None,
    energy_kwh: float | None = None,
    pue: float = 1.0,
) -> WhenResult:
    """The start in ``[now, now + within_s]`` with the lowest mean forecast intensity.

    Candidates are ``now`` and the forecast's grid times after it; a candidate whose window
    leaves the forecast or meets a gap is skipped. ``power_w`` (W, constant) or ``energy_kwh``
    (IT energy of the whole job) adds the job's CO2e at PUE ``pue``. Raises :class:`WhenError`
    when starting now cannot be evaluated (window longer than the forecast, a gap, a forecast
    that starts after now) or an argument is out of range.
    """
    _check_args(duration_s, within_s, now_unix_s, power_w, energy_kwh, pue)
    if not forecast.values:
        raise WhenError("the forecast is empty; fetch one that covers the next hours")
    integral = _Integral(forecast)
    end = forecast.end_unix_s
    if now_unix_s < forecast.start_unix_s - 1e-6:
        raise WhenError(
            f"the forecast starts at {iso_utc(forecast.start_unix_s)}, after now "
            f"({iso_utc(now_unix_s)}); fetch a forecast that covers the present"
        )
    if now_unix_s + duration_s > end + 1e-6:
        raise WhenError(
            f"a {hours_text(duration_s)} job starting now ({iso_utc(now_unix_s)}) ends after the "
            f"forecast, which ends at {iso_utc(end)}; shorten the job or use a longer forecast"
        )
    now_mean = integral.mean(now_unix_s, now_unix_s + duration_s)
    if math.isnan(now_mean):
        raise WhenError(
            f"the forecast has gaps in the {hours_text(duration_s)} from now, so starting now "
            "cannot be evaluated; fetch the forecast again or use the bundled annual figure"
        )
    best_t, best_mean, count = now_unix_s, now_mean, 1
    k = math.floor((now_unix_s - forecast.start_unix_s) / forecast.step_s) + 1
    while True:
        t = forecast.start_unix_s + k * forecast.step_s
        if t > now_unix_s + within_s + 1e-6 or t + duration_s > end + 1e-6:
            break
        k += 1
        if t <= now_unix_s + 1e-6:
            continue
        mean = integral.mean(t, t + duration_s)
        if math.isnan(mean):
            continue
        count += 1
        if mean < best_mean - 1e-9 * max(1.0, abs(best_mean)):
            best_t, best_mean = t, mean
    it_kwh = kwh_from_j(power_w * duration_s) if power_w is not None else energy_kwh
    now_g = best_g = saving = fraction = None
    if it_kwh is not None:
        now_g = co2e_g(it_kwh, pue, now_mean)
        best_g = co2e_g(it_kwh, pue, best_mean)
        saving = now_g - best_g
        fraction = saving / now_g if now_g > 0 else 0.0
    return WhenResult(
        now_unix_s=float(now_unix_s),
        duration_s=float(duration_s),
        within_s=float(within_s),
        best_start_unix_s=float(best_t),
        best_gco2e_per_kwh=best_mean,
        now_gco2e_per_kwh=now_mean,
        candidates=count,
        kind=forecast.kind,
        source=forecast.source,
        pue=float(pue),
        it_energy_kwh=it_kwh,
        now_co2e_g=now_g,
        best_co2e_g=best_g,
        saving_g=saving,
        saving_fraction=fraction,
    )


def _check_args(
    duration_s: float,
    within_s: float,
    now_unix_s: float,
    power_w: float | None,
    energy_kwh: float | None,
    pue: float,
) -> None:
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise WhenError(f"the job duration must be positive seconds, got {duration_s!r}")
    if not (math.isfinite(within_s) and within_s >= 0):
        raise WhenError(f"the start window must be >= 0 seconds, got {within_s!r}")
    if not math.isfinite(now_unix_s):
        raise WhenError("now must be finite UTC seconds")
    if power_w is not None and energy_kwh is not None:
        raise WhenError("give a power (W) or an energy (kWh), not both")
    for name, value in (("power", power_w), ("energy", energy_kwh)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise WhenError(f"the {name} must be a finite number >= 0, got {value!r}")
    if not (math.isfinite(pue) and pue >= 1.0):
        raise WhenError(f"PUE must be >= 1.0, got {pue!r}")


def iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hours_text(seconds: float) -> str:
    return f"{num(seconds / 3600, 4)} h"


def clock_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"+{minutes // 60} h {minutes % 60:02d} min"


# --- the command -------------------------------------------------------------------------------
