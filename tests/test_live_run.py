"""The live run at its doors: damaged directories, checkpoints and carbon blocks give one line
(or a warning), never an exception from deep inside into the training."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import greentrack
from greentrack.errors import RunExistsError
from greentrack.live import LiveRun
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace


def _meters() -> list[FakeMeter]:
    return [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(50.0))], time.monotonic)]


@pytest.mark.parametrize(
    "text", ["", "not json", "[1, 2]", "[" * 100_000 + "]" * 100_000, '{"run_id": 12345}']
)
def test_a_used_directory_with_a_damaged_meta_is_refused_in_one_line(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "meta.json").write_text(text)
    live = LiveRun(tmp_path / "run")
    with pytest.raises(RunExistsError, match=r"holds a run whose meta\.json cannot be read"):
        live.open("fit", meters=_meters())
    # resume=True goes on, into a part, and says the first segment cannot be read
    resumed = LiveRun(tmp_path / "run", resume=True)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        resumed.open("fit", meters=_meters())
    resumed.close()
    assert (tmp_path / "run" / "parts" / "seg1-rank0" / "summary.json").exists()


@pytest.mark.parametrize(
    "state",
    [
        {"segments": "abc"},
        {"segments": None},
        {"units_j": ["x"]},
        {"run_id": 5},
        {"segments": -3},
        ["not", "a", "mapping"],
    ],
)
def test_a_damaged_checkpoint_state_is_set_aside(tmp_path: Path, state: object) -> None:
    live = LiveRun(tmp_path / "run")
    with pytest.warns(RuntimeWarning, match="ignored"):
        live.restore(state)
    assert live.run_id is None and live.segment == -1 and live.units_j == []
    live.open("fit", meters=_meters())  # a new run: nothing was resumed
    live.close()
    assert greentrack.load_run(tmp_path / "run").complete


@pytest.mark.parametrize(
    ("carbon", "match"),
    [
        ({}, "not the carbon block"),
        ({"intensity": 5}, "not the carbon block"),
        ("DE", "carbon takes greentrack.CarbonSettings"),
    ],
)
def test_a_carbon_argument_that_is_no_carbon_block_is_named(carbon: object, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        LiveRun(carbon=carbon)  # type: ignore[arg-type]


def test_a_carbon_block_with_impossible_numbers_is_refused() -> None:
    block = greentrack.CarbonSettings.resolve("DE", pue=1.2).to_dict()
    nan = {**block, "intensity": {**block["intensity"], "gco2e_per_kwh": float("nan")}}
    with pytest.raises(ValueError, match="intensity of nan"):
        LiveRun(carbon=nan)
    low_pue = {**block, "pue": {**block["pue"], "pue": -5.0}}
    with pytest.raises(ValueError, match="not a PUE"):
        greentrack.track(carbon=low_pue)  # type: ignore[arg-type]
    assert LiveRun(carbon=block).carbon is not None  # a good block, as a checkpoint keeps it
