"""A run charged with a provider's series of its own hours: fetched at the end of the run,
kept in the run directory, read offline by every later report; on any provider error the
run and the report go on at the annual figure and say so; no secret reaches a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import greentrack
from greentrack.cli import main
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from tests.helpers import run_for
from tests.test_providers import KEY, Api, ukci_app

START = 1_767_225_600.0 + 12 * 3600  # 2026-01-01T12:00Z


def value(t: float) -> float:
    """A known series: 100 gCO2/kWh before 12:30, 300 after."""
    return 100.0 if t < START + 1800 else 300.0


@pytest.fixture
def ukci(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    server = Api()
    server.app = ukci_app(value)
    monkeypatch.setenv("GREENTRACK_UKCI_URL", server.url)
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield server
    server.close()


def _run(path: Path, **kwargs: object) -> Path:
    clock = ManualClock(START + 1500.0)  # 12:25 to 12:35: half at 100, half at 300
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(360.0))], clock)]
    with greentrack.track(
        path, meters=meters, clock=clock, background=False, region="GB", pue=1.0, **kwargs
    ) as run:
        run_for(run, clock, 600.0, step=1.0)
    return path


def _report(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    assert main(["report", str(path), "-f", "json", "--no-plots", *extra]) == 0
    return json.loads(capsys.readouterr().out)["runs"][0]  # type: ignore[no-any-return]


def test_the_runs_hours_are_fetched_kept_and_read_offline(
    tmp_path: Path, ukci: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _run(tmp_path / "run", intensity_provider="ukci")
    stored = json.loads((path / "intensity.json").read_text())
    assert stored["provider"] == "ukci" and stored["licence"] and stored["attribution"]
    assert KEY not in (path / "intensity.json").read_text()
    first = _report(path, capsys)
    c = first["carbon"]
    assert c["method"] == "series" and c["intensity_kind"] == "average"
    # 0.03 kWh at 100 and 0.03 kWh at 300 (360 W for 300 s each): weighted 200
    assert c["effective_gco2e_per_kwh"] == pytest.approx(200.0, rel=1e-3)
    assert first["headline"]["co2e_g"] == pytest.approx(0.06 * 200.0, rel=1e-3)
    ukci.close()  # offline from now on: the second report reads intensity.json
    second = _report(path, capsys)
    assert second["headline"] == first["headline"]


def test_report_fetches_for_a_run_that_recorded_none(
    tmp_path: Path, ukci: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _run(tmp_path / "run")
    annual = _report(path, capsys)
    assert annual["carbon"]["method"] == "annual"
    r = _report(path, capsys, "--intensity-provider", "ukci")
    assert r["carbon"]["method"] == "series" and (path / "intensity.json").exists()


@pytest.mark.parametrize("status", [500, 404, 200])
def test_provider_errors_fall_back_to_the_annual_figure(
    tmp_path: Path, ukci: Api, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    body = {"data": [{"from": "nonsense"}]} if status == 200 else {"error": "down"}
    ukci.app = lambda path, query, headers: (status, body, {})
    path = _run(tmp_path / "run", intensity_provider="ukci")  # the run completes
    assert greentrack.load_run(path).complete and not (path / "intensity.json").exists()
    r = _report(path, capsys)
    assert r["carbon"]["method"] == "annual"
    assert any("ukci gave no series" in n and "annual figure" in n for n in r["notes"])


def test_no_network_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GREENTRACK_UKCI_URL", "http://127.0.0.1:9")  # nothing listens there
    path = _run(tmp_path / "run", intensity_provider="ukci")
    r = _report(path, capsys)
    assert r["carbon"]["method"] == "annual" and any("ukci" in n for n in r["notes"])


def test_bad_provider_arguments_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown intensity provider 'nope'"):
        greentrack.track(tmp_path / "r", region="GB", intensity_provider="nope")
    with pytest.raises(ValueError, match="needs a region"):
        greentrack.track(tmp_path / "r", intensity_provider="ukci")
