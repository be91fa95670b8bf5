"""Embodied carbon (optional): each run's share of its GPUs' manufacturing emissions, from a
cited per-device figure amortised over the device's life, shown apart from the operational
CO2e in every format, never added to it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from greentrack.account.embodied import PRESETS, SECONDS_PER_YEAR, embodied
from greentrack.cli import main
from greentrack.report.model import ReportOptions, build_report
from greentrack.report.references import cited
from tests.paper_helpers import compile_in, overfull
from tests.report_helpers import training_run


def test_share_is_devices_times_figure_times_time_over_life() -> None:
    e = embodied(2, 3600.0, "a100-server-share", 4.0)
    assert e is not None
    expected = 2 * 318.0 * 1000 * 3600 / (4 * SECONDS_PER_YEAR)
    assert e.co2e_g.value == pytest.approx(expected)
    p = PRESETS["a100-server-share"]
    assert (e.co2e_g.low, e.co2e_g.high) == pytest.approx((expected * p.low, expected * p.high))
    assert embodied(0, 3600.0) is None  # no GPU: not estimated
    with pytest.raises(ValueError, match="lifetime"):
        embodied(1, 1.0, lifetime_years=0)
    with pytest.raises(ValueError, match="known: a100-server-share, gpu-card"):
        embodied(1, 1.0, "tpu")


def test_report_keeps_embodied_apart_from_the_operational_co2e(tmp_path: Path) -> None:
    run = training_run(tmp_path / "run")
    plain = build_report([run]).to_dict()["runs"][0]
    data = build_report([run], ReportOptions(embodied="gpu-card")).to_dict()
    r = data["runs"][0]
    assert plain["embodied"] is None
    assert r["headline"] == plain["headline"]  # the operational figures do not move
    gpus = r["hardware"]["gpu_count"]
    assert r["embodied"]["gpus"] == gpus == 2
    assert r["embodied"]["co2e_g"] == pytest.approx(
        gpus * 60.0 * 1000 * r["duration_s"] / (4 * SECONDS_PER_YEAR)
    )
    assert any("EcoInfo" in ref.title for ref in cited(data))


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_every_format_says_embodied_is_apart(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = training_run(tmp_path / "run")
    argv = ["report", str(run), "--embodied", "--device-lifetime-years", "5", "-f", fmt]
    assert main([*argv, "--no-plots"]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        e = json.loads(out)["runs"][0]["embodied"]
        assert e["preset"] == "a100-server-share" and e["lifetime_years"] == 5
    else:
        assert "Embodied carbon (not in the CO2e above)" in out and "Chien et al." in out


def test_lifetime_without_embodied_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = training_run(tmp_path / "run")
    assert main(["report", str(run), "--device-lifetime-years", "5"]) == 2
    assert "--device-lifetime-years needs --embodied" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="no TeX engine")
def test_latex_with_embodied_compiles_and_cites(tmp_path: Path) -> None:
    run = training_run(tmp_path / "run")
    out, bib = tmp_path / "a.tex", tmp_path / "refs.bib"
    assert main(["report", str(run), "--embodied", "--bib", str(bib), "-o", str(out)]) == 0
    assert "chien2023reducing" in bib.read_text()
    assert "\\cite{chien2023reducing}" in out.read_text()
    _, log = compile_in("twocolumn", out, tmp_path)
    assert overfull(log) == []
