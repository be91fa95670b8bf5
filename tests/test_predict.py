"""Forecasts on synthetic traces: steady, warm-up then steady, slowing down."""

from __future__ import annotations

import pytest

from greentrack.analysis.predict import forecast


def test_steady_is_exact():
    f = forecast([100.0] * 3, remaining=17)
    assert f.point == f.low == f.high == pytest.approx(2000.0)


def test_warm_up_epoch_is_left_out():
    # the first epoch costs 3x (compilation), then steady at 100 J: forecast after 3 of 20
    per_epoch = [300.0] + [100.0] * 19
    f = forecast(per_epoch[:3], remaining=17)
    assert f.point == pytest.approx(sum(per_epoch))
    # a naive mean over all epochs so far would overshoot by 45 %
    naive = sum(per_epoch[:3]) + sum(per_epoch[:3]) / 3 * 17
    assert naive / sum(per_epoch) > 1.4


def test_slowing_run_stays_inside_the_interval():
    # each epoch 4 J dearer than the previous (e.g. growing sequence lengths): 30 epochs
    per_epoch = [100.0 + 4.0 * k for k in range(30)]
    truth = sum(per_epoch)
    for k in (4, 10, 20):
        f = forecast(per_epoch[:k], remaining=30 - k)
        assert f.low <= truth <= f.high, k
        assert f.high == pytest.approx(truth)  # the trend bound is exact for a linear slowdown
        assert (truth - f.point) / truth < 0.35  # the point forecast assumes no trend
    # the stated error of the point forecast after a third of the run: under 25 % here
    assert (truth - forecast(per_epoch[:10], 20).point) / truth < 0.25


def test_noisy_steady_error_is_small():
    import random

    rng = random.Random(0)
    per_epoch = [100.0 * (1 + rng.uniform(-0.05, 0.05)) for _ in range(50)]
    f = forecast(per_epoch[:5], remaining=45)
    assert abs(f.point - sum(per_epoch)) / sum(per_epoch) < 0.03
    assert f.low <= sum(per_epoch) <= f.high


def test_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        forecast([], 3)
    with pytest.raises(ValueError, match=">= 0"):
        forecast([1.0], -1)
