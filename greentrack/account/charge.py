"""The CO2e formula, in one place.

    CO2e [g] = E_IT [kWh] x PUE x I [gCO2e/kWh]          (Patterson et al. 2021)

Every figure of CO2e greentrack prints (run summaries, reports, the live figures of the
integrations, counterfactuals, estimates) is computed by :func:`co2e_g`. With a time series of
intensity, ``I`` is the energy-weighted average intensity over the run (Dodge et al. 2022),
computed by :func:`greentrack.carbon.series.weighted_intensity`.

>>> co2e_g(2.0, 1.5, 400.0)
1200.0
"""

from __future__ import annotations

from greentrack.account.figures import Figure


def co2e_g(it_kwh: float, pue: float, gco2e_per_kwh: float) -> float:
    """Grams of CO2e of ``it_kwh`` kWh of IT energy at PUE ``pue`` and intensity
    ``gco2e_per_kwh``."""
    return it_kwh * pue * gco2e_per_kwh


def co2e_figure(it_kwh: Figure, pue: Figure, gco2e_per_kwh: Figure) -> Figure:
    """:func:`co2e_g` of a figure with its range: bounds by interval arithmetic (all inputs
    are non-negative, so the low bound is the product of the lows)."""
    return Figure(
        co2e_g(it_kwh.value, pue.value, gco2e_per_kwh.value),
        co2e_g(it_kwh.low, pue.low, gco2e_per_kwh.low),
        co2e_g(it_kwh.high, pue.high, gco2e_per_kwh.high),
    )
