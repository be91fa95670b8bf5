"""Time-series intensity: reading, alignment arithmetic, gaps, counterfactuals.

Series here are hand-made so that every expected value is computed by hand; the 5-minute
series are synthesized (no openly licensed 5-minute series exists to ship)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from greentrack.account.counterfactual import flexible_start, pause_resume, regions
from greentrack.carbon.intensity import resolve_region
from greentrack.carbon.series import (
    EnergyCurve,
    IntensitySeries,
    IntensitySeriesError,
    weighted_intensity,
)


def integrate(curve, series, *, pue=1.0, gaps="error", annual_gco2e_per_kwh=None):
    """CO2e of ``curve`` under ``series``: the run-weighted intensity, then the account's
    one CO2e formula (what every view uses)."""
    from types import SimpleNamespace

    from greentrack.account.charge import co2e_g

    w = weighted_intensity(curve, series, gaps=gaps, annual_gco2e_per_kwh=annual_gco2e_per_kwh)
    return SimpleNamespace(co2e_g=co2e_g(w.energy_kwh, pue, w.weighted_gco2e_per_kwh), weighting=w)


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
H = 3600.0


def hourly(values, start=T0):
    return IntensitySeries(start, H, tuple(values))


def constant_power(start, seconds, watts=1000.0, step=1.0):
    t = np.linspace(start, start + seconds, round(seconds / step) + 1)
    return EnergyCurve(t, (t - start) * watts)


def test_step_changes_inside_a_run():
    # 1 kW from 00:30 to 02:30: 0.5 kWh at 100, 1 kWh at 200, 0.5 kWh at 300
    r = integrate(constant_power(T0 + 0.5 * H, 2 * H), hourly([100, 200, 300]))
    assert r.co2e_g == pytest.approx(0.5 * 100 + 1.0 * 200 + 0.5 * 300)
    w = r.weighting
    assert w.energy_kwh == pytest.approx(2.0)
    assert w.weighted_gco2e_per_kwh == pytest.approx(200.0)
    assert (w.min_gco2e_per_kwh, w.max_gco2e_per_kwh) == (100, 300)


def test_sub_interval_run_and_pue():
    r = integrate(constant_power(T0 + 600, 600), hourly([120, 999]), pue=1.5)
    assert r.co2e_g == pytest.approx(1000 * 600 / 3.6e6 * 1.5 * 120)


def test_varying_power_is_weighted_by_energy_not_time():
    # 3 kW in the first hour, 1 kW in the second
    t = np.array([T0, T0 + H, T0 + 2 * H])
    curve = EnergyCurve(t, np.array([0.0, 3.0, 4.0]) * 3.6e6)
    r = integrate(curve, hourly([100, 400]))
    assert r.co2e_g == pytest.approx(3 * 100 + 1 * 400)


def test_gap_is_an_error_or_filled_with_the_annual_figure():
    series = hourly([100, math.nan, 300])
    curve = constant_power(T0, 3 * H)
    with pytest.raises(IntensitySeriesError, match=r"33% of the run's energy.*gaps at"):
        integrate(curve, series)
    r = integrate(curve, series, gaps="annual", annual_gco2e_per_kwh=250.0)
    assert r.co2e_g == pytest.approx(100 + 250 + 300)
    w = r.weighting
    assert w.filled_kwh == pytest.approx(1.0) and w.fill_gco2e_per_kwh == 250.0


def test_partial_coverage_is_explicit():
    with pytest.raises(IntensitySeriesError, match="extends outside the series"):
        integrate(constant_power(T0 - 0.5 * H, H), hourly([100, 200]))


def test_csv_layouts(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "timestamp,gco2e_per_kwh\n2026-01-01T00:00+01:00,100\n"
        "2026-01-01T01:00+01:00,200\n2026-01-01T03:00+01:00,400\n"
    )
    s = IntensitySeries.from_csv(plain)
    assert s.start_unix_s == T0 - H and s.step_s == H
    assert s.values[:2] == (100, 200) and math.isnan(s.values[2]) and s.values[3] == 400

    naive = tmp_path / "naive.csv"
    naive.write_text("timestamp,gco2e_per_kwh\n2026-01-01 00:00,1\n2026-01-01 00:05,2\n")
    with pytest.raises(IntensitySeriesError, match="no UTC offset; pass tz='UTC'"):
        IntensitySeries.from_csv(naive)
    assert IntensitySeries.from_csv(naive, tz="UTC").step_s == 300

    em = tmp_path / "em.csv"
    em.write_text(
        "Datetime (UTC),Country,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (LCA)\n2026-01-01 00:00:00,DE,300,350\n"
        "2026-01-01 01:00:00,DE,310,360\n"
    )
    s = IntensitySeries.from_csv(em)
    assert s.start_unix_s == T0 and s.values == (350.0, 360.0)

    wt = tmp_path / "watttime.csv"
    wt.write_text("point_time,moer\n2026-01-01T00:00:00Z,1000\n2026-01-01T00:05:00Z,500\n")
    s = IntensitySeries.from_csv(wt, kind="marginal")
    assert s.values == pytest.approx((453.592, 226.796)) and s.kind == "marginal"
    assert "lbs/MWh" in s.notes[0]

    uk = tmp_path / "uk.csv"
    uk.write_text(
        "from,to,intensity.forecast,intensity.actual\n2026-01-01T00:00Z,2026-01-01T00:30Z,90,95\n"
        "2026-01-01T00:30Z,2026-01-01T01:00Z,80,\n2026-01-01T01:00Z,2026-01-01T01:30Z,70,71\n"
    )
    s = IntensitySeries.from_csv(uk)
    assert s.values[0] == 95 and math.isnan(s.values[1]) and s.step_s == 1800

    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    with pytest.raises(IntensitySeriesError, match="cannot find the timestamp column"):
        IntensitySeries.from_csv(bad)
    irregular = tmp_path / "irregular.csv"
    irregular.write_text(
        "timestamp,gco2e_per_kwh\n2026-01-01T00:00Z,1\n2026-01-01T00:30Z,1\n"
        "2026-01-01T00:47Z,1\n2026-01-01T01:30Z,1\n"
    )
    with pytest.raises(IntensitySeriesError, match="irregular"):
        IntensitySeries.from_csv(irregular)


def test_dst_change_in_local_timestamps(tmp_path):
    # Europe/London springs forward at 01:00 UTC on 2023-03-26: local 01:00-02:00 does not exist
    path = tmp_path / "london.csv"
    path.write_text(
        "timestamp,gco2e_per_kwh\n2023-03-26 00:00,100\n2023-03-26 02:00,200\n"
        "2023-03-26 03:00,300\n"
    )
    s = IntensitySeries.from_csv(path, tz="Europe/London")
    start = datetime(2023, 3, 26, tzinfo=timezone.utc).timestamp()
    assert s.start_unix_s == start and s.step_s == H and s.values == (100, 200, 300)
    # a 3 h run at 1 kW from 00:00 UTC sees 100, 200, 300
    assert integrate(constant_power(start, 3 * H), s).co2e_g == pytest.approx(600)


def test_run_crossing_a_day_boundary_with_synthetic_5_minute_series():
    start = datetime(2026, 1, 1, 23, 0, tzinfo=timezone.utc).timestamp()
    values = tuple(float(100 + i) for i in range(36))  # synthesized, 23:00 to 02:00
    s = IntensitySeries(start, 300.0, values)
    curve = constant_power(start + 150, 60 * 30)  # 23:02:30 to 23:32:30
    expected = sum(0.5 / 12 * v for v in (values[0], values[6])) + sum(
        1 / 12 * v for v in values[1:6]
    )
    assert integrate(curve, s).co2e_g == pytest.approx(expected)


def test_gb_example_series_is_real_and_has_its_gap():
    s = IntensitySeries.gb_example()
    assert s.step_s == 1800 and len(s.values) == 244
    gap = [i for i, v in enumerate(s.values) if math.isnan(v)]
    assert len(gap) == 1
    t_gap = pd.Timestamp(s.start_unix_s + gap[0] * 1800, unit="s", tz="UTC")
    assert t_gap.isoformat() == "2023-03-15T22:30:00+00:00"
    assert "NESO" in s.source


def test_flexible_start_known_optimum():
    # 1 kW for 2 h; hourly [100, 500, 50, 400]: start 0 -> 600 g, +1 h -> 550 g, +2 h -> 450 g
    series = hourly([100, 500, 50, 400])
    r = flexible_start(constant_power(T0, 2 * H), series, window_s=2 * H)
    assert r.actual_co2e_g == pytest.approx(600)
    assert r.best_delay_s == 2 * H and r.best_co2e_g == pytest.approx(450)
    assert r.saving == pytest.approx(0.25)
    assert [round(c) for _, c in r.curve] == [600, 550, 450]
    assert r.to_dict()["best_start"] == "2026-01-01T02:00:00.000+00:00"


def test_pause_resume_known_optimum():
    # 2 h of work within 4 h: run in the 100 and 50 hours, pausing through the 500 one
    series = hourly([100, 500, 50, 400])
    r = pause_resume(constant_power(T0, 2 * H), series, max_stretch=2.0)
    assert r.co2e_g == pytest.approx(150)
    assert r.saving == pytest.approx(0.75)
    assert r.schedule == [
        ("2026-01-01T00:00:00.000+00:00", "2026-01-01T01:00:00.000+00:00"),
        ("2026-01-01T02:00:00.000+00:00", "2026-01-01T03:00:00.000+00:00"),
    ]
    assert r.stretch == pytest.approx(1.5)
    # no stretch allowed: nothing to gain
    assert pause_resume(constant_power(T0, 2 * H), series, 1.0).saving == pytest.approx(0.0)
    with pytest.raises(ValueError, match=">= 1"):
        pause_resume(constant_power(T0, 2 * H), series, 0.5)


def test_pause_resume_partial_slot_and_real_profile():
    # 1.5 h of work; the profile is 2 kW in its first hour, 1 kW after
    t = np.array([T0, T0 + H, T0 + 1.5 * H])
    curve = EnergyCurve(t, np.array([0.0, 2.0, 2.5]) * 3.6e6)
    series = hourly([300, 100, 200])
    r = pause_resume(curve, series, max_stretch=2.0)
    # cleanest first: hour 1 (100), then half of hour 2 (200); work laid in time order:
    # first hour of work (2 kWh) at 100, last half hour (0.5 kWh) at 200
    assert r.co2e_g == pytest.approx(2 * 100 + 0.5 * 200)


def test_regions_sorted():
    out = regions(10.0, 1.1, [resolve_region(k) for k in ("PL", "SE", "DE")])
    assert [r.region for r in out] == ["SE", "DE", "PL"]
    assert out[0].co2e_g == pytest.approx(10 * 1.1 * resolve_region("SE").gco2e_per_kwh)
