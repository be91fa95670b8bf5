"""One source of truth (issue 22): every view describes a run the same way.

* hosts and processes are counted one way (distinct host and rank, not run directories) in
  the summary (text, Markdown, JSON) and in the report (every format);
* the JSON report of every shape of run follows docs/report-schema.json;
* a run records the ML packages it imported, whenever it imported them;
* a report prints what it adds (every row of a total stands in the table that shows it),
  counts the same things in its captions and sentences, and prints a figure one way in a
  document (ranges rounded outward).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import greentrack
from greentrack.report.model import ReportOptions, build_report
from greentrack.report.numbers import energy, mass, range_in, span
from greentrack.report.render import render

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.report_helpers import training_run  # noqa: E402
from tests.test_account_properties import Shape, _process, build  # noqa: E402
from tests.test_untracked import DECLARATION  # noqa: E402

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "report-schema.json").read_text())
CLIENTS = (
    ("measured", "same-host", 50.0, 1_000_000),
    ("estimated", "other-host", 20.0, 200_000),
    ("none", "same-process", 1.0, 100),
    ("modeled", "same-process", 3.0, 5_000),
)
# the declaration of tests/test_untracked.py, and a third item of yet another size
DECLARED = (
    DECLARATION
    + """\
  - label: idle reservation
    watts: 150
    count: 4
    hours: 30
    region: US-CA
"""
)
ENERGY_KWH = {"MWh": 1000.0, "kWh": 1.0, "Wh": 1e-3, "mWh": 1e-6, "µWh": 1e-9}
MASS_G = {"t": 1e6, "kg": 1e3, "g": 1.0, "mg": 1e-3, "µg": 1e-6}


# --- run directories ------------------------------------------------------------------------


def _shape(kind: str, channels: str = "both", carbon: str = "annual") -> Shape:
    return Shape(kind, channels, carbon, 6.0, 300.0, 40.0, 2, CLIENTS)


def _set_host(path: Path, hostname: str) -> None:
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["host"]["hostname"] = hostname
    meta_path.write_text(json.dumps(meta))


def lightning_run(root: Path) -> Path:
    """A Lightning run on two hosts with two ranks each: fit (segment 0) on ranks 0-3, then
    test (segment 1) and predict (segment 2) on ranks 0 and 2 (one per host): 4 processes
    (distinct host and rank) on 2 hosts, in 8 run directories."""
    from greentrack.carbon.settings import resolve_settings

    shape = _shape("ranks")
    carbon = resolve_settings("GB", pue=1.2)
    path = root / "run"
    start = 1_678_795_200.0
    root = {"segment": 0, "rank": 0, "stage": "fit", "world_size": 4}
    _process(path, shape, start, part=root, carbon=carbon, federated=False)
    dirs: list[tuple[Path, int]] = [(path, 0)]
    for seg, stage, ranks in ((0, "fit", (1, 2, 3)), (1, "test", (0, 2)), (2, "predict", (0, 2))):
        for rank in ranks:
            part = path / "parts" / f"seg{seg}-rank{rank}"
            info = {"segment": seg, "rank": rank, "stage": stage, "world_size": 4}
            _process(part, shape, start + 100 * seg, part=info, carbon=carbon, federated=False)
            dirs.append((part, rank))
    for d, rank in dirs:
        _set_host(d, "node-a" if rank < 2 else "node-b")
    return path


# --- 1. hosts and processes, one count ----------------------------------------------------


def test_hosts_and_processes_are_counted_one_way_in_every_view(tmp_path: Path) -> None:
    path = lightning_run(tmp_path)
    summary = greentrack.summarize(greentrack.load_run(path))
    assert summary.to_dict()["processes"] == 4  # ranks, not stages: 8 directories
    assert ", 4 processes" in str(summary)
    assert ", 4 processes" in summary.to_markdown()
    report = build_report([path])
    hardware = report.to_dict()["runs"][0]["hardware"]
    assert (hardware["hosts"], hardware["processes"]) == (2, 4)
    assert "| hosts / processes | 2 / 4 |" in render(report, "md")
    assert "<td>2 / 4</td>" in render(report, "html")
    assert "hosts & 2 (4 processes)" in render(report, "latex")


def test_a_resumed_segment_on_the_same_host_and_rank_is_no_new_process(tmp_path: Path) -> None:
    path = build(_shape("resumed"), tmp_path)
    summary = greentrack.summarize(greentrack.load_run(path))
    assert summary.to_dict()["processes"] == 1 and "processes" not in str(summary)
    hardware = build_report([path]).to_dict()["runs"][0]["hardware"]
    assert (hardware["hosts"], hardware["processes"]) == (1, 1)


# --- 2. the JSON report of every shape follows the schema -------------------------------------


@pytest.fixture(scope="module")
def shapes() -> Iterator[dict[str, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out: dict[str, Path] = {}
        for name, shape in {
            "single": _shape("single"),
            "ranks": _shape("ranks"),
            "resumed": _shape("resumed"),
            "federated": _shape("federated"),
            "federated-estimated": _shape("federated", "estimated", "none"),
            "estimated-only": _shape("single", "estimated", "none"),
        }.items():
            (root / name).mkdir()
            out[name] = build(shape, root / name)
        (root / "lightning").mkdir()
        out["lightning"] = lightning_run(root / "lightning")
        declared = root / "untracked.yaml"
        declared.write_text(DECLARED)
        out["untracked"] = declared
        yield out


def _validate(data: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize(
    ("runs", "options"),
    [
        (["single"], {}),
        (["ranks"], {}),
        (["resumed"], {}),
        (["lightning"], {}),
        (["federated"], {"metric": "val_acc"}),
        (["federated-estimated"], {}),
        (["estimated-only"], {}),
        (["single"], {"untracked": True}),
        (["single", "ranks", "resumed", "federated", "estimated-only"], {}),
        (["single", "federated"], {"untracked": True, "group_by": "x", "anonymize": True}),
    ],
    ids=[
        "single",
        "ranks",
        "resumed",
        "lightning-stages",
        "federated",
        "federated-estimated-only",
        "estimated-only",
        "declared-untracked",
        "multi-run",
        "multi-run-declared-grouped-anonymized",
    ],
)
def test_json_report_of_every_shape_follows_the_schema(
    shapes: dict[str, Path], runs: list[str], options: dict[str, Any]
) -> None:
    chosen = dict(options)
    if chosen.get("untracked"):
        chosen["untracked"] = shapes["untracked"]
    data = json.loads(
        render(build_report([shapes[r] for r in runs], ReportOptions(**chosen)), "json")
    )
    _validate(data)
    for run in data["runs"]:  # the federated block is the account's, part by part
        if run["federated"]:
            f = run["federated"]
            parts = {p["part"]: p["energy_kwh"] for p in f["parts"]}
            assert (f["client_kwh"], f["upload_kwh"], f["download_kwh"], f["server_kwh"]) == (
                parts["client_compute"],
                parts["upload"],
                parts["download"],
                parts["server"],
            )


def test_the_schema_refuses_what_the_report_does_not_write(shapes: dict[str, Path]) -> None:
    """The schema describes the output exactly (the federated block has no room for keys it
    does not know): a renamed key fails it."""
    data = json.loads(render(build_report([shapes["federated"]]), "json"))
    data["runs"][0]["federated"]["network_kwh"] = data["runs"][0]["federated"].pop("upload_kwh")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


# --- 3. the software a run imported -----------------------------------------------------------


def test_a_run_records_the_ml_packages_it_imported_even_after_it_started() -> None:
    """The versions are of the known ML packages the process imported: one imported after the
    versions were first gathered (a framework imported after the run started) is seen by a
    later gathering (:func:`software_update`, for the run's stop), and an installed package
    the run never imported is not listed."""
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    code = """
import json, sys
from greentrack import metadata
first = metadata.package_versions()
assert metadata.software_update(first) is None  # nothing new
import transformers, accelerate
later = metadata.software_update(first)
print(json.dumps({"first": first, "later": later}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    from importlib.metadata import version

    assert "transformers" not in out["first"] and "flwr" not in out["first"]
    assert out["later"]["transformers"] == version("transformers")
    assert out["later"]["accelerate"] == version("accelerate")
    assert "flwr" not in out["later"]  # installed here, never imported by this run


def test_a_framework_imported_inside_the_run_is_in_its_meta(tmp_path: Path) -> None:
    """The tracker's stop rewrites meta.json when the process imported a known package after
    the run started (a Trainer script imports transformers inside ``track()``)."""
    pytest.importorskip("transformers")
    code = f"""
import time, greentrack
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace
meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(10.0))], time.monotonic)]
with greentrack.track({str(tmp_path / "run")!r}, meters=meters):
    import transformers
    time.sleep(0.2)
"""
    subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    from importlib.metadata import version

    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["software"]["transformers"] == version("transformers")
    assert "pending" not in meta


# --- 4. a report prints what it adds ----------------------------------------------------------


@pytest.fixture(scope="module")
def sweep() -> Iterator[tuple[list[Path], Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = [
            training_run(
                root / f"r{i}", name=f"sweep_lr{i}", epoch_s=40.0 + 10 * i, gpu_w=300 + 20 * i
            )
            for i in range(4)
        ]
        declared = root / "untracked.yaml"
        declared.write_text(DECLARED)
        yield runs, declared


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_after(md: str, heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``heading`` (header and rule dropped)."""
    lines = md[md.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows


def _printed(cell: str) -> float:
    """A table cell's number; a figure too small for its column ("<1") counts as 0."""
    return 0.0 if cell.startswith("<") else float(cell)


def _close_as_printed(parts: list[float], total: float) -> bool:
    """Whether ``total`` is the sum of ``parts`` within the rounding of 3 significant
    digits of each printed figure."""
    slack = 0.005 * (sum(abs(p) for p in parts) + abs(total))
    return abs(sum(parts) - total) <= slack


def test_the_total_row_is_the_sum_of_the_rows_listed_above_it(
    sweep: tuple[list[Path], Path],
) -> None:
    runs, declared = sweep
    report = build_report(runs, ReportOptions(untracked=declared))
    data = json.loads(render(report, "json"))
    _validate(data)
    # JSON: the comparison table lists the runs and the declared items; they add up to it
    rows, total = data["comparison"], data["total"]
    assert [r["kind"] for r in rows] == ["training"] * 4 + ["declared"] * 3
    assert math.isclose(sum(r["energy_kwh"] for r in rows), total["energy_kwh"], rel_tol=1e-9)
    with_co2e = [r["co2e_g"] for r in rows if r["co2e_g"] is not None]
    assert math.isclose(sum(with_co2e), total["co2e_g"], rel_tol=1e-9)
    assert math.isclose(sum(r["measured_kwh"] for r in rows), total["measured_kwh"])
    brief = data["brief"]
    assert math.isclose(
        sum(r["energy_kwh"] for r in brief["rows"]), brief["total"]["energy_kwh"], rel_tol=1e-9
    )
    # Markdown, as printed: the appendix's comparison table and the brief table
    md = render(report, "md")
    table = _table_after(md, "## Comparison of runs")
    *listed, last = table
    assert last[0] == "**total**" and len(listed) == 7
    # one unit per column, in its header: "energy (Wh)", "CO2e (g)"
    header = md[md.index("## Comparison of runs") :].split("\n| run ")[1].split("\n")[0]
    e_unit = ENERGY_KWH[re.search(r"energy \((\S+)\)", header).group(1)]  # type: ignore[union-attr]
    m_unit = MASS_G[re.search(r"CO2e \((\S+)\)", header).group(1)]  # type: ignore[union-attr]
    energies = [_printed(r[2]) * e_unit for r in listed]
    assert _close_as_printed(energies, _printed(last[2]) * e_unit)
    masses = [_printed(r[5]) * m_unit for r in listed if r[5] != "–"]
    assert len(masses) == 6  # "failed jobs" has no region: no CO2e, and the total says so
    assert _close_as_printed(masses, _printed(last[5]) * m_unit)
    assert "no CO2e for 1 declared item with no region" in last[6]
    brief_md = render(report, "md", brief=True)
    *listed, last = _table_after(brief_md, "|")
    assert last[0] == "**total**" and len(listed) == 7
    assert _close_as_printed([_printed(r[2]) for r in listed], _printed(last[2]))
    assert _close_as_printed([_printed(r[1]) for r in listed if r[1] != "–"], _printed(last[1]))


def test_captions_and_sentences_count_the_same_things(sweep: tuple[list[Path], Path]) -> None:
    runs, declared = sweep
    report = build_report(runs, ReportOptions(untracked=declared))
    counted = "the 4 runs and 3 items of declared untracked work"
    assert report.to_dict()["brief"]["sentence"].startswith(counted.capitalize())
    brief_tex = render(report, "latex", brief=True)
    caption = re.search(r"\\caption\{(.*)\}", brief_tex)
    assert caption is not None and counted in caption.group(1)
    full_tex = render(report, "latex")
    assert f"of {counted}, with the range" in full_tex
    for fmt in ("md", "html", "latex", "model-card"):
        for brief in (False, True):
            text = render(report, fmt, brief=brief)
            assert "(s)" not in text, (fmt, brief)


def _brief_cells(report: Any) -> tuple[str, list[str], list[str]]:
    md = render(report, "md", brief=True)
    header, _, *rows = [line for line in md.splitlines() if line.startswith("|")]
    return md.splitlines()[0], _cells(header), _cells(rows[-1])


@pytest.mark.parametrize("declared", [False, True], ids=["runs", "runs-and-declared"])
def test_a_figure_prints_alike_in_the_sentence_and_the_table(
    sweep: tuple[list[Path], Path], declared: bool
) -> None:
    runs, path = sweep
    report = build_report(runs, ReportOptions(untracked=path if declared else None))
    sentence, header, total = _brief_cells(report)
    energy_unit = re.search(r"energy \((\S+)\)", " ".join(header))
    mass_unit = re.search(r"CO2e \((\S+)\)", " ".join(header))
    assert energy_unit is not None and mass_unit is not None
    assert f" used {total[1]} GPU-hours " in sentence
    assert f" drew {total[2]} {energy_unit.group(1)} of electricity " in sentence
    assert f"{total[3]} measured" in sentence or total[3] in ("0%", "100%")
    assert f"emitting {total[4]} {mass_unit.group(1)} ({total[5]} {mass_unit.group(1)})" in (
        sentence
    )
    # LaTeX: the same digits in its sentence and its table (GPU-hours, the CO2e range)
    tex = render(report, "latex", brief=True).replace("~", " ")  # a tie between number and unit
    row = next(line for line in tex.splitlines() if line.startswith("total & "))
    cells = [c.strip() for c in row.rstrip("\\ ").split("&")]
    assert f" used {cells[1]} GPU-hours " in tex and f" drew {cells[2]} " in tex
    assert f"({cells[5]} {mass_unit.group(1)})" in tex


@settings(max_examples=300, deadline=None)
@given(
    low=st.floats(1e-9, 1e6, allow_nan=False, allow_infinity=False),
    width=st.floats(1.0001, 5.0),
    sig=st.integers(2, 4),
)
def test_ranges_are_rounded_outward(low: float, width: float, sig: int) -> None:
    from greentrack.report.numbers import bounds

    high = low * width
    lo, hi = bounds(low, high, sig)
    # outward, up to the float noise of the last bit (1.6500000000000001 prints 1.65)
    assert float(lo) <= low * (1 + 1e-12) and float(hi) >= high * (1 - 1e-12)
    for unit, scale in (("µg", 1e6), ("kg", 1e-3), ("Wh", 1e3)):
        lo_text, hi_text = range_in(low, high, unit, sig).split("\u2013")
        assert float(lo_text) <= low * scale * (1 + 1e-12)
        assert float(hi_text) >= high * scale * (1 - 1e-12)
    value = (low + high) / 2
    for fmt in (energy, mass):
        text = span(value, low, high, fmt, sig)
        a, b = text.split()[0].split("\u2013")
        unit = text.split()[1]
        scale = 1 / (ENERGY_KWH | MASS_G)[unit]
        assert float(a) <= low * scale * (1 + 1e-12) and float(b) >= high * scale * (1 - 1e-12)


def test_the_issues_ranges_print_outward() -> None:
    assert range_in(149.4e-6, 605.0e-6, "µg") == "149\u2013605"
    assert range_in(149.4e-6, 605.0e-6, "µg", 2) == "140\u2013610"  # never "150-600"
    assert range_in(34.46e3, 81.94e3, "kg") == "34.4\u201382.0"  # one precision for both


# --- 5. forecasts are compared only where they were forecasts ----------------------------------


def test_a_forecast_written_after_the_last_epoch_is_not_compared(tmp_path: Path) -> None:
    """Older runs wrote a 'forecast' after the last epoch (0 epochs left: the total itself);
    the report said 'the last, after 3 epochs' of it. Only forecasts made while epochs remained
    are compared."""
    path = training_run(tmp_path / "run", epochs=3)  # forecasts after epoch 1 (1 left) and 2 (0)
    events = greentrack.load_run(path).events
    assert [e["units_remaining"] for e in events if e["event"] == "forecast"] == [1.0, 0.0]
    outcome = build_report([path], ReportOptions()).to_dict()["runs"][0]["forecast"]
    assert outcome["count"] == 1 and outcome["last"]["units_done"] == 2
    for fmt in ("md", "html", "latex"):
        assert "after 3 epochs" not in render(build_report([path], ReportOptions()), fmt)
