"""The live run's figures are the account's: for generated runs (measured and/or estimated
channels, one segment or a resumed one, with or without carbon settings), the figures the
integrations log at the end of a stage equal, value and range, what the account of the run
directory gives for that moment; and a forecast is made only while units remain."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import greentrack  # noqa: E402
from greentrack.account import account_run  # noqa: E402
from greentrack.live import LiveRun  # noqa: E402
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace  # noqa: E402
from tests.helpers import run_for  # noqa: E402

CHANNEL = st.tuples(st.sampled_from(["measured", "estimated"]), st.floats(1.0, 700.0))
CARBON = st.sampled_from([None, ("DE", 1.2), ("FR", 1.5), ("US-CA", None)])


def _meters(channels: list[tuple[str, float]], clock: ManualClock) -> list[FakeMeter]:
    return [
        FakeMeter(
            [
                FakeChannelSpec(
                    f"ch{i}",
                    "gpu" if source == "measured" else "cpu",
                    PowerTrace.constant(watts),
                    source=source,  # type: ignore[arg-type]
                    has_power=source == "measured",
                )
            ],
            clock,
        )
        for i, (source, watts) in enumerate(channels)
    ]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    channels=st.lists(CHANNEL, min_size=1, max_size=4),
    carbon=CARBON,
    units=st.integers(1, 4),
    unit_s=st.floats(0.5, 20.0),
    segments=st.integers(1, 2),
)
def test_live_figures_at_a_stages_end_are_the_accounts(
    channels: list[tuple[str, float]],
    carbon: tuple[str, float | None] | None,
    units: int,
    unit_s: float,
    segments: int,
) -> None:
    root = Path(tempfile.mkdtemp()) / "run"
    clock = ManualClock(1_700_000_000.0)
    region, pue = carbon if carbon else (None, None)
    live = LiveRun(root, region=region, pue=pue, clock=clock)
    for _ in range(segments):
        live.open("fit", meters=_meters(channels, clock))
        assert live.tracker is not None
        run_for(live.tracker, clock, 1.0, step=0.5)  # set-up: inside the run, outside epochs
        for k in range(units):
            live.begin("epoch", "train_epoch", epoch=k)
            run_for(live.tracker, clock, unit_s, step=0.5)
            progress = live.step(live.end("epoch"), remaining=units - k - 1)
            m = progress.metrics
            # forecasts only while units remain, of the whole run: never below what it used,
            # with a range that holds the sources' accuracy as the total's does
            assert ("energy/forecast_kwh" in m) == (k < units - 1)
            if "energy/forecast_kwh" in m:
                assert m["energy/forecast_kwh"] >= m["energy/total_kwh"]
                assert m["energy/forecast_kwh_low"] >= m["energy/total_kwh_low"] * (1 - 1e-12)
                assert m["energy/forecast_kwh_high"] >= m["energy/total_kwh_high"]
                assert m["energy/forecast_kwh_low"] < m["energy/forecast_kwh"]
                assert m["energy/forecast_kwh"] < m["energy/forecast_kwh_high"]
        end = live.step(None).metrics  # the figures a callback logs at the stage's end
        live.close()
        account = account_run(greentrack.load_run(root))
        for bound in ("value", "low", "high"):
            suffix = "" if bound == "value" else f"_{bound}"
            assert _close(end[f"energy/total_kwh{suffix}"], getattr(account.it_kwh, bound))
            if account.co2e_g is None:
                assert "energy/total_co2e_g" not in end
            else:
                assert _close(end[f"energy/total_co2e_g{suffix}"], getattr(account.co2e_g, bound))
        by = account.kwh_by_provenance
        assert _close(end["energy/total_measured_kwh"], by.get("measured", 0.0))
        assert _close(end["energy/total_estimated_kwh"], by.get("estimated", 0.0))
