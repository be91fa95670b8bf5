"""NVML checked against itself: the energy counter beside the integral of the power samples,
over the run and each span, through the real NVML meter over a fake pynvml whose power
sensor sees only 25% of each 100 ms (A100/H100-like, Yang et al. SC24)."""

from __future__ import annotations

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.account.crosscheck import ACCURACY, tolerance_j
from greentrack.meters.fake import FakeGpu, FakeNvml, ManualClock, PowerTrace
from greentrack.rundir.reader import load_run
from greentrack.units import J_PER_KWH

# bursty: 25 ms at 100 W, then 75 ms at 400 W, every 100 ms: a mean of 325 W
BURSTY = PowerTrace([(0.025, 100.0), (0.075, 400.0)], repeat=True)
TRUE_W = 0.25 * 100.0 + 0.75 * 400.0
SECONDS = 30.0


def _run(tmp_path, gpu: FakeGpu, clock: ManualClock):
    nvml = FakeNvml([gpu], clock)
    tracker = greentrack.track(
        tmp_path / "run",
        clock=clock,
        background=False,
        sync="none",
        rank=None,
        nvml=nvml,
        cpu=False,
        environ={},
    )
    with tracker:
        for epoch in range(3):
            with tracker.span("train_epoch", epoch=epoch):
                for _ in range(round(SECONDS / 3 / 0.1)):
                    clock.advance(0.1)
                    tracker.sampler.tick()
    return account_run(load_run(tmp_path / "run"))


def test_partial_coverage_is_flagged_and_the_range_covers_the_truth(tmp_path):
    clock = ManualClock()
    gpu = FakeGpu(trace=BURSTY, power_update_s=0.1, power_coverage=0.25)
    a = _run(tmp_path, gpu, clock)
    (item,) = a.components
    truth_kwh = TRUE_W * SECONDS / J_PER_KWH
    assert item.energy_kwh.value == pytest.approx(truth_kwh, rel=0.01)  # the counter is right
    assert item.energy_kwh.low <= truth_kwh <= item.energy_kwh.high
    # the sensor saw the 100 W part of each period: the samples integrate to ~100 W x T
    sampled_kwh = 100.0 * SECONDS / J_PER_KWH
    assert item.energy_kwh.low <= sampled_kwh * (1 - ACCURACY) * 1.01
    assert "widened" in item.accuracy
    flagged = [n for n in a.notes if "power samples integrate to" in n]
    assert len(flagged) == 1 and "Yang et al., SC24" in flagged[0]
    assert "so do 3 of its 3 spans" in flagged[0]


def test_full_coverage_agrees_and_changes_nothing(tmp_path):
    clock = ManualClock()
    steady = FakeGpu(trace=PowerTrace.constant(325.0), power_update_s=0.1, power_coverage=0.25)
    a = _run(tmp_path, steady, clock)
    (item,) = a.components
    assert item.energy_kwh.low == pytest.approx(item.energy_kwh.value * 0.95)
    assert item.energy_kwh.high == pytest.approx(item.energy_kwh.value * 1.05)
    assert not any("power samples" in n for n in a.notes)
    assert "widened" not in item.accuracy


def test_tolerance_allows_the_edges_of_short_windows():
    # over 1 s the counter may be one 100 ms update old at each edge, the samples 0.1 s apart
    assert tolerance_j(300.0, 300.0, 1.0, 10.0) == pytest.approx(0.05 * 600 + 2 * 0.2 * 300)
    assert tolerance_j(300.0, 300.0, 0.0, 10.0) == pytest.approx(30.0)
