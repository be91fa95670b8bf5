"""Intervals with no reading are never called measured: a channel whose counter and power
readings fail for part of a run keeps a range that holds what the device drew (issue 23), and
its label says how many seconds are missing and whether power readings bridged them."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.account.accuracy import channel_energy
from greentrack.ledger import EnergyLedger
from greentrack.meters.fake import (
    FakeChannelSpec,
    FakeGpu,
    FakeMeter,
    FakeNvml,
    ManualClock,
    PowerTrace,
)
from greentrack.meters.nvml import NvmlMeter
from greentrack.tracker import Tracker
from greentrack.units import J_PER_KWH

TRACE = PowerTrace([(1.0, 150.0), (1.0, 350.0)], repeat=True)  # 250 W on average
SECONDS = 8.0


def _gpu_run(path: Path, **gpu: object) -> tuple[greentrack.Run, float]:
    """A tracked run of SECONDS on one fake NVML GPU; returns the run and the joules drawn."""
    clock = ManualClock()
    fake = FakeGpu(trace=TRACE, **gpu)  # type: ignore[arg-type]
    meter = NvmlMeter(FakeNvml([fake], clock), environ={})
    tracker = Tracker(path, meters=[meter], clock=clock, background=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the meter's failure warning, expected here
        with tracker:
            for _ in range(round(SECONDS / 0.1)):
                clock.advance(0.1)
                tracker.sampler.tick()
    return greentrack.load_run(path), TRACE.energy_j(clock.t)


def _gpu_item(run: greentrack.Run):  # type: ignore[no-untyped-def]
    (item,) = [c for c in account_run(run).components if c.key == "gpu0"]
    return item


def test_counter_and_power_failing_widen_the_range_and_the_label_names_the_gap(
    tmp_path: Path,
) -> None:
    """Issue 23: the counter fails from 2 s for good, power reads fail from 2 to 5 s. Before,
    the GPU read as 'measured, nvml-total-energy-counter' with a +/-5% range far below what it
    drew. Now the range holds the true energy and the label says 3 s are not covered."""
    run, drawn = _gpu_run(
        tmp_path / "r", fail_energy_between=(2.0, math.inf), fail_power_between=(2.0, 5.0)
    )
    item = _gpu_item(run)
    joules = item.energy_kwh.to_dict()
    low, value, high = (joules[k] * J_PER_KWH for k in ("low", "value", "high"))
    assert value < drawn * 0.7  # the value holds what was read: the gap is not in it ...
    assert low <= drawn <= high  # ... but the range holds what the GPU drew
    assert high <= value * 1.05 + 700.0 * 3.3  # widened by the power limit x the gap, no more
    assert item.provenance == "measured"
    assert "s missing" in item.method and "bridged from power" in item.method
    assert "3.2 s not covered" in item.method
    trouble = run.final["counter_trouble"]["gpu0"]  # type: ignore[index]
    assert trouble["uncovered_s"] == pytest.approx(3.2)
    assert trouble["gaps"] == [[pytest.approx(1.9), pytest.approx(5.1)]]
    notes = account_run(run).notes
    assert any("gpu0: 3.2 s with no reading" in n and "700 W" in n for n in notes)
    # the report's boundary table lists the gap: "measured" alone is never said of it
    from greentrack.report.model import ReportOptions, build_report

    report = build_report([tmp_path / "r"], ReportOptions()).to_dict()
    (gpu,) = [b for b in report["runs"][0]["boundary"] if b["component"] == "gpu"]
    assert gpu["status"] == "measured, with gaps"
    assert "3.2 s not covered" in gpu["detail"]


def test_a_counter_bridged_by_power_has_no_uncovered_time(tmp_path: Path) -> None:
    run, drawn = _gpu_run(tmp_path / "r", fail_energy_between=(2.0, math.inf))
    item = _gpu_item(run)
    e = item.energy_kwh
    assert e.low * J_PER_KWH <= drawn <= e.high * J_PER_KWH
    assert "bridged from power" in item.method and "not covered" not in item.method
    assert e.high == pytest.approx(e.value * 1.05)  # instant power: the counter's accuracy


def test_a_counter_that_recovers_covers_the_power_gap(tmp_path: Path) -> None:
    """The counter fails once and reads again: nothing is missing, whatever power did."""
    run, drawn = _gpu_run(
        tmp_path / "r", fail_energy_between=(4.0, 6.0), fail_power_between=(2.0, 5.0)
    )
    item = _gpu_item(run)
    assert item.method == "nvml-total-energy-counter"
    assert item.energy_kwh.value * J_PER_KWH == pytest.approx(drawn, rel=1e-6)
    assert "counter_trouble" not in (run.final or {})


def test_a_gpu_without_counter_labels_its_power_gap(tmp_path: Path) -> None:
    run, drawn = _gpu_run(tmp_path / "r", has_energy_counter=False, fail_power_between=(2.0, 5.0))
    item = _gpu_item(run)
    e = item.energy_kwh
    assert e.value * J_PER_KWH < drawn * 0.8
    assert e.low * J_PER_KWH <= drawn <= e.high * J_PER_KWH
    assert item.method.startswith("integral of nvml-field-power-instant; 3.2 s missing")
    assert "not covered" in item.method


def test_a_counter_only_channel_failing_for_good_is_missing_and_widened(tmp_path: Path) -> None:
    clock = ManualClock()
    cpu = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(40.0), has_power=False)
    meter = FakeMeter([cpu], clock, fail_between=(3.0, math.inf))
    tracker = Tracker(tmp_path / "r", meters=[meter], clock=clock, background=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tracker:
            for _ in range(60):
                clock.advance(0.1)
                tracker.sampler.tick()
    item = account_run(greentrack.load_run(tmp_path / "r")).components[0]
    assert "4 s missing (not covered)" in item.method  # last good read at 2 s
    drawn = 40.0 * 6.0
    assert item.energy_kwh.low * J_PER_KWH <= drawn <= item.energy_kwh.high * J_PER_KWH


def test_ledger_holes_are_reported_since_the_run_start() -> None:
    clock = ManualClock()
    clock.advance(100.0)  # the meters opened long before the run
    meter = FakeMeter(
        [FakeChannelSpec("gpu0", has_energy=False)], clock, fail_between=(101.05, 102.55)
    )
    ledger = EnergyLedger([meter], clock, lambda *_: None)
    ledger.zero()
    for _ in range(40):
        clock.advance(0.1)
        ledger.sample_power()
    trouble = ledger.counter_trouble()["gpu0"]
    assert trouble["how"] == "power-gaps"
    assert trouble["gaps"] == [[pytest.approx(1.0), pytest.approx(2.6)]]
    assert trouble["uncovered_s"] == pytest.approx(1.6)
    assert ledger.totals_j()["gpu0"] == pytest.approx(100.0 * (4.0 - 1.6))


def _summary(trouble: object) -> dict[str, object]:
    return {"counter_trouble": {"gpu0": trouble}}


def test_averaged_power_bridge_carries_its_own_accuracy() -> None:
    ch = {"id": "gpu0", "method": "nvml-total-energy-counter", "details": {}}
    trouble = {
        "how": "bridged",
        "bridged_j": 600.0,
        "bridged_s": 6.0,
        "seconds": 6.0,
        "method": "integral of nvml-power-usage (~1 s average on recent GPUs)",
        "uncovered_s": 0.0,
    }
    e = channel_energy(ch, 1000.0, "measured", summary=_summary(trouble), duration_s=10.0)
    assert e.energy_kwh.low * J_PER_KWH == pytest.approx(400 * 0.95 + 600 * 0.65)
    assert e.energy_kwh.high * J_PER_KWH == pytest.approx(400 * 1.05 + 600 * 1.35)
    # no power limit known: the gap's high bound is an assumed 2x the average, and said so
    e = channel_energy(
        ch,
        1000.0,
        "measured",
        summary=_summary({"how": "power-gaps", "uncovered_s": 2.0}),
        duration_s=10.0,
    )
    assert e.energy_kwh.high * J_PER_KWH == pytest.approx(1050.0 + 2 * 125.0 * 2.0)
    assert "assumed" in e.accuracy


def test_damaged_trouble_records_never_break_the_account() -> None:
    ch = {"id": "gpu0", "method": "nvml-total-energy-counter"}
    for bad in ({"how": "bridged", "bridged_j": "x"}, {"uncovered_s": float("nan")}, [], None):
        e = channel_energy(ch, 10.0, "measured", summary=_summary(bad))  # type: ignore[arg-type]
        assert e.energy_kwh.low <= e.energy_kwh.value <= e.energy_kwh.high
    for summary in ({"counter_trouble": ["gpu0"]}, {"counter_trouble": None}, [], None):
        e = channel_energy(ch, 10.0, "measured", summary=summary)  # type: ignore[arg-type]
        assert e.energy_kwh.low <= e.energy_kwh.value <= e.energy_kwh.high


@pytest.mark.parametrize(
    "bad",
    [
        {"how": "bridged", "bridged_j": -1e6, "seconds": 3.0, "method": "x"},
        {"how": "bridged", "bridged_j": 1e308, "seconds": 3.0, "method": "x"},
        {"how": "bridged", "bridged_j": 50.0, "seconds": 3.0, "method": "x"},  # > the total
        {"how": "power-gaps", "uncovered_s": 1e306},
        {"how": "missing", "seconds": 10**400},
        {"how": "missing", "seconds": -5.0},
        {"how": "power-gaps", "uncovered_s": 3.0, "gaps": "x"},
    ],
)
@pytest.mark.parametrize("limit_w", [700.0, 1e308, -1.0, float("nan")])
def test_a_damaged_gap_record_gives_a_finite_range_around_what_was_read(
    bad: dict[str, object], limit_w: float
) -> None:
    """A counter_trouble entry read back from a damaged summary.json never makes a range
    negative, infinite or beside the value: gaps are bounded by the run's duration, bridged
    energy by the channel's total and a device's power by greentrack's bound."""
    ch = {
        "id": "gpu0",
        "method": "nvml-total-energy-counter",
        "details": {"power_limit_w": limit_w},
    }
    e = channel_energy(ch, 10.0, "measured", summary=_summary(bad), duration_s=20.0)
    low, value, high = e.energy_kwh.low, e.energy_kwh.value, e.energy_kwh.high
    assert all(math.isfinite(x) for x in (low, value, high))
    assert 0 <= low <= value <= high
    assert value == pytest.approx(10.0 / J_PER_KWH)
    assert high <= (10.0 * 1.1 + 10_000.0 * 20.0) / J_PER_KWH  # the device's bound x the run
