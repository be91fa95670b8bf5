from __future__ import annotations

import pytest

from greentrack.ledger import EnergyLedger
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace


def _ledger(meters, clock):
    errors = []
    return EnergyLedger(meters, clock, lambda m, op, e: errors.append((op, str(e)))), errors


def test_power_integral_matches_exact_energy_of_a_bursty_trace(clock):
    # 300 ms on (400 W) / 300 ms off (60 W), sampled at 10 Hz for 60 s, no counter reads
    trace = PowerTrace([(0.3, 400.0), (0.3, 60.0)], repeat=True)
    meter = FakeMeter([FakeChannelSpec("gpu0", trace=trace, has_energy=False)], clock)
    ledger, _ = _ledger([meter], clock)
    ledger.sample_power()
    for _ in range(600):
        clock.advance(0.1)
        ledger.sample_power()
    exact = trace.energy_j(60.0)
    assert ledger.totals_j()["gpu0"] == pytest.approx(exact, rel=0.01)
    assert ledger.power_integrals_j()["gpu0"] == ledger.totals_j()["gpu0"]


def test_counter_anchors_totals_and_power_fills_between(clock):
    trace = PowerTrace([(1.0, 100.0), (1.0, 300.0)], repeat=True)
    meter = FakeMeter([FakeChannelSpec("gpu0", trace=trace)], clock)
    ledger, _ = _ledger([meter], clock)
    ledger.snapshot_j()
    for _ in range(25):  # 2.5 s of power samples only
        clock.advance(0.1)
        ledger.sample_power()
    between = ledger.totals_j()["gpu0"]
    assert between == pytest.approx(trace.energy_j(2.5), rel=0.05)
    ledger.read_counters()
    assert ledger.totals_j()["gpu0"] == pytest.approx(trace.energy_j(2.5), abs=1e-9)
    # the pure power integral is never re-anchored
    assert ledger.power_integrals_j()["gpu0"] == pytest.approx(between)


def test_failed_meter_marks_gap_and_counter_recovers(clock):
    trace = PowerTrace.constant(200.0)
    meter = FakeMeter([FakeChannelSpec("gpu0", trace=trace)], clock, fail_between=(1.0, 2.0))
    ledger, errors = _ledger([meter], clock)
    ledger.snapshot_j()
    for _ in range(30):
        clock.advance(0.1)
        ledger.sample_power()
        if abs(clock.t - 1.5) < 1e-9:
            assert ledger.gaps() == {"gpu0"}
    assert ledger.gaps() == set()
    assert errors and errors[0][0] == "read_power_w"
    # power-only integration lost the gap (~1 s at 200 W) ...
    assert ledger.totals_j()["gpu0"] == pytest.approx(200.0 * 2.0, rel=0.06)
    ledger.read_counters()  # ... the counter does not
    assert ledger.totals_j()["gpu0"] == pytest.approx(600.0)


def test_duplicate_channel_ids_rejected(clock):
    a = FakeMeter([FakeChannelSpec("gpu0")], clock)
    b = FakeMeter([FakeChannelSpec("gpu0")], clock)
    with pytest.raises(ValueError, match="'gpu0'"):
        _ledger([a, b], clock)
