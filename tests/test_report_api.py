"""greentrack.report(runs, format=..., output=None, **options): the text ``greentrack report``
prints, in every format; files only when asked (``output``); ``-o -`` is stdout; a bad option
is one line."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.cli import main
from greentrack.report.render import FORMATS
from tests.report_helpers import training_run

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def same(text: str) -> str:
    """``text`` without the moment it was generated (two renders a second apart differ)."""
    return STAMP.sub("<generated>", text)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return training_run(tmp_path_factory.mktemp("runs") / "resnet")


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_api_gives_the_text_the_command_prints(
    fmt: str,
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    options = {"region": "FR", "pue": 1.2, "metric": "val_acc", "plots": False}
    text = greentrack.report(run_dir, format=fmt, **options)
    assert list(tmp_path.iterdir()) == []  # no output: nothing written
    argv = ["report", str(run_dir), "-f", fmt, "--region", "FR", "--pue", "1.2"]
    argv += ["--metric", "val_acc", "--no-plots"]
    assert main(argv) == 0
    assert same(capsys.readouterr().out) == same(text)
    assert main([*argv, "-o", "-"]) == 0  # -o -: stdout, as without -o
    captured = capsys.readouterr()
    assert same(captured.out) == same(text) and "wrote" not in captured.err
    assert list(tmp_path.iterdir()) == []
    assert "France" in text  # the options reached the report (the run itself was in DE)


def test_output_writes_what_the_command_writes(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "api").mkdir()
    (tmp_path / "cli").mkdir()
    text = greentrack.report(
        [run_dir], output=tmp_path / "api" / "energy.md", bib=tmp_path / "api" / "refs.bib"
    )
    argv = ["report", str(run_dir), "-o", str(tmp_path / "cli" / "energy.md")]
    assert main([*argv, "--bib", str(tmp_path / "cli" / "refs.bib")]) == 0
    api = sorted(p.relative_to(tmp_path / "api") for p in (tmp_path / "api").rglob("*"))
    cli = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*"))
    assert api == cli and any(p.suffix == ".png" for p in api)
    assert same((tmp_path / "api" / "energy.md").read_text()) == same(text)
    assert same(text) == same((tmp_path / "cli" / "energy.md").read_text())
    assert (tmp_path / "api" / "refs.bib").read_text() == (
        tmp_path / "cli" / "refs.bib"
    ).read_text()


def test_runs_may_be_loaded_runs_and_lists(run_dir: Path, tmp_path: Path) -> None:
    other = training_run(tmp_path / "b", name="resnet_lr=0.01", gpu_w=200.0)
    loaded = greentrack.load_run(run_dir)
    json_text = greentrack.report([loaded, other], format="json")
    assert '"comparison"' in json_text and "resnet_lr=0.01" in json_text
    assert same(greentrack.report(loaded, format="json")) == same(
        greentrack.report(str(run_dir), format="json")
    )


def test_the_package_stays_a_package_and_is_callable(run_dir: Path) -> None:
    """``greentrack.report`` is both the function and the package of its modules."""
    import greentrack.report.model as model

    assert callable(greentrack.report)
    assert greentrack.report.model is model
    from greentrack.report.api import report

    assert same(report(run_dir, plots=False)) == same(greentrack.report(run_dir, plots=False))


def test_no_matplotlib_is_a_warning_not_an_error(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greentrack.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)
    with pytest.warns(UserWarning, match="matplotlib is not installed"):
        greentrack.report(run_dir, output=tmp_path / "a.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        greentrack.report(run_dir)  # no output: no figures were asked for


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "green"}, "unknown report option 'colour'"),
        ({"format": "docx"}, "not a report format"),
        ({"target": 0.9}, "--target needs --metric"),
        ({"metric": "acc", "target": float("nan")}, "target=nan"),
        ({"embodied": "gpu-card", "device_lifetime_years": 0}, "device_lifetime_years=0"),
        ({"device_lifetime_years": 4}, "needs --embodied"),
        ({"flexible_start_s": -5.0}, "flexible_start_s=-5.0"),
        ({"pause_resume": 0.5}, "pause_resume=0.5"),
        ({"template_dir": "nowhere"}, "is not a directory"),
        ({"output": "nodir/energy.md"}, "does not exist; create it first"),
        ({"bib": "refs.txt"}, ".bib suffix"),
        ({"metric": "acc"}, "recorded: val_acc, val_loss"),
        ({"region": "Atlantis"}, "Atlantis"),
    ],
)
def test_a_bad_option_is_one_line(
    options: dict[str, object],
    message: str,
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ValueError, greentrack.GreentrackError)) as e:
        greentrack.report(run_dir, **options)  # type: ignore[arg-type]
    assert message in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_no_run_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no run directory given"):
        greentrack.report([])
    with pytest.raises(ValueError, match="takes run directories or loaded runs"):
        greentrack.report([3.5])
    with pytest.raises(greentrack.RunFormatError, match="not a greentrack run directory"):
        greentrack.report(tmp_path / "missing")
