"""Declared work that was not tracked (exploration, failed jobs): read from a YAML/JSON file,
estimated as devices x hours x watts, charged by the account's formula, added to the report's
total in every format and labelled estimated; a bad file is refused with a message that names
the entry and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from greentrack.account import account_run
from greentrack.account.accuracy import DECLARED
from greentrack.analysis.untracked import load_declared
from greentrack.carbon.settings import resolve_settings
from greentrack.cli import main
from greentrack.report.model import ReportOptions, build_report
from greentrack.rundir.reader import load_run
from tests.paper_helpers import compile_in, overfull
from tests.report_helpers import training_run

DECLARATION = """\
untracked:
  - label: early exploration
    processor: a100-sxm4-40gb
    count: 8
    hours: 40
    region: DE
  - label: failed jobs
    watts: 300
    count: 2
    hours: 12
"""


@pytest.fixture
def declaration(tmp_path: Path) -> Path:
    path = tmp_path / "untracked.yaml"
    path.write_text(DECLARATION)
    return path


def test_entries_are_estimates_from_devices_hours_and_watts(declaration: Path) -> None:
    first, second = load_declared(declaration)
    assert first.energy_kwh.value == pytest.approx(8 * 40 * 400.0 / 1000)  # TDP of the A100
    assert (first.energy_kwh.low, first.energy_kwh.high) == pytest.approx(
        (first.energy_kwh.value * DECLARED.low, first.energy_kwh.value * DECLARED.high)
    )
    settings = resolve_settings("DE")
    assert settings is not None
    intensity, pue = settings.intensity.gco2e_per_kwh, settings.pue.value
    assert first.co2e_g is not None
    assert first.co2e_g.value == pytest.approx(first.energy_kwh.value * pue * intensity)
    assert second.energy_kwh.value == pytest.approx(2 * 12 * 300 / 1000)
    assert second.co2e_g is None  # no region: no CO2e, and the report says so
    assert first.to_dict()["provenance"] == "estimated"


def test_report_total_adds_declared_work(tmp_path: Path, declaration: Path) -> None:
    run = training_run(tmp_path / "run")
    report = build_report([run], ReportOptions(untracked=declaration)).to_dict()
    declared = load_declared(declaration)
    acct = account_run(load_run(run))
    total = report["total"]
    assert total["energy_kwh"] == pytest.approx(
        acct.it_kwh.value + sum(d.energy_kwh.value for d in declared)
    )
    assert total["untracked_kwh"] == pytest.approx(sum(d.energy_kwh.value for d in declared))
    assert total["measured_kwh"] == pytest.approx(acct.measured_kwh)  # declared adds none
    assert total["runs_without_co2e"] == 0  # the run has its CO2e
    assert total["untracked_without_co2e"] == 1  # the entry with no region
    brief = report["brief"]
    assert [r["label"] for r in brief["rows"]][1:] == [
        "untracked: early exploration",
        "untracked: failed jobs",
    ]
    assert brief["total"]["energy_kwh"] == total["energy_kwh"]


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_every_format_shows_the_declared_work(
    tmp_path: Path, declaration: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = training_run(tmp_path / "run")
    code = main(["report", str(run), "--untracked", str(declaration), "-f", fmt, "--no-plots"])
    out = capsys.readouterr().out
    assert code == 0
    if fmt == "json":
        jsonschema = pytest.importorskip("jsonschema")
        schema = Path(__file__).parents[1] / "docs" / "report-schema.json"
        jsonschema.validate(json.loads(out), json.loads(schema.read_text()))
        assert [d["label"] for d in json.loads(out)["untracked"]] == [
            "early exploration",
            "failed jobs",
        ]
    else:
        assert "Work not tracked (declared)" in out
        assert "early exploration" in out and "estimated, not measured" in out
        assert "Project total, tracked runs and declared work" in out


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="no TeX engine")
def test_latex_with_declared_work_compiles_without_overfull(
    tmp_path: Path, declaration: Path
) -> None:
    run = training_run(tmp_path / "run")
    out = tmp_path / "appendix.tex"
    code = main(["report", str(run), "--untracked", str(declaration), "-o", str(out)])
    assert code == 0
    for layout in ("twocolumn", "onecolumn"):
        _, log = compile_in(layout, out, tmp_path)
        assert overfull(log) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("untracked: []\n", "expected one entry or more in a list under 'untracked:'"),
        ("untracked:\n  - {watts: 300, hours: 1.0e+300}\n", "hours must be in (0, 100000]"),
        ("untracked:\n  - {watts: 300, hours: 2, count: 10000000}\n", "from 1 to 1,000,000"),
        ("untracked:\n  - {watts: 300, hours: 2023-01-01}\n", "hours must be a number, got date"),
        ("untracked:\n  - {watts: 300}\n", "hours is missing"),
        ("untracked:\n  - {watts: 300, hours: 2, label: [a, b]}\n", "label must be"),
        ("untracked:\n  - {watts: 300, hours: 2, region: [DE]}\n", "region must be a region"),
        ("untracked:\n  - {processor: tpu-v99, hours: 2}\n", "--list-processors"),
        ("untracked:\n  - {watts: 300, hours: 2, region: XX-NOPE}\n", "`greentrack regions`"),
        ("untracked:\n  - {watts: 300, hours: 2, colour: red}\n", "unknown key ['colour']"),
        ("untracked:\n  - {watts: 300, hours: -2}\n", "hours must be in (0, 100000]"),
        ("untracked:\n  - {watts: 300, count: 0, hours: 2}\n", "count must be a whole number"),
        ("untracked:\n  - {hours: 2}\n", "give either processor: KEY or watts"),
        ("untracked:\n  - {watts: 9000, hours: 2}\n", "watts must be in (0, 5000]"),
        ("untracked:\n  - {watts: 300, hours: 2, pue: 1.2}\n", "pue needs a region"),
        ("untracked: [unclosed\n", "is not valid YAML"),
    ],
)
def test_bad_declarations_are_refused_with_the_fix(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "untracked.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"untracked\.yaml") as e:
        load_declared(path)
    assert message in str(e.value)
    run = training_run(tmp_path / "run")
    assert main(["report", str(run), "--untracked", str(path), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback


def test_yaml_numbers_in_scientific_notation_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "u.yaml"
    path.write_text("untracked:\n  - {watts: 3e2, hours: 1e3, region: DE}\n")  # YAML 1.1: text
    (entry,) = load_declared(path)
    assert entry.energy_kwh.value == pytest.approx(300.0)


def test_not_utf8_and_invalid_yaml_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "u.yaml"
    path.write_bytes("untracked:\n  - {label: caf\u00e9, watts: 3, hours: 1}\n".encode("latin-1"))
    with pytest.raises(ValueError, match="save it as UTF-8"):
        load_declared(path)
    path.write_text("untracked: [\n")
    with pytest.raises(ValueError, match=r"is not valid YAML \(line \d+, column \d+: ") as e:
        load_declared(path)
    assert "\n" not in str(e.value)


def test_mixed_regions_are_named_and_cited(tmp_path: Path, declaration: Path) -> None:
    """Declared work in another region than the run's: the brief sentence gives no single
    intensity, names both regions, says which item has no CO2e; the model card lists the
    declared hardware and region; the sources cite the declared entry's intensity source."""
    run = training_run(tmp_path / "run", region="US-CA")
    report = build_report([run], ReportOptions(untracked=declaration)).to_dict()
    sentence = report["brief"]["sentence"]
    assert "gCO2e/kWh" not in sentence  # two intensities: none is the total's
    assert "Germany" in sentence and "1 declared item with no region" in sentence
    assert report["brief"]["total"]["gpu_hours"] == pytest.approx(
        report["brief"]["rows"][0]["gpu_hours"] + 8 * 40  # the declared A100-hours
    )
    from greentrack.report.render import model_card_front_matter

    card = model_card_front_matter(report, None)["co2_eq_emissions"]
    assert "NVIDIA A100 SXM4 40GB (declared)" in card["hardware_used"]
    assert "Germany" in card["geographical_location"]
    assert "declared untracked work" in card["source"]
    declared_source = load_declared(declaration)[0].carbon_source
    from greentrack.report.references import cited, reference

    assert reference(declared_source) in cited(report)


def test_unknown_processor_and_region_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    path.write_text(json.dumps({"untracked": [{"processor": "no-such-gpu", "hours": 1}]}))
    with pytest.raises(Exception, match="no-such-gpu"):
        load_declared(path)
    path.write_text(json.dumps({"untracked": [{"watts": 100, "hours": 1, "region": "XX-NOPE"}]}))
    with pytest.raises(Exception, match="XX-NOPE"):
        load_declared(path)
