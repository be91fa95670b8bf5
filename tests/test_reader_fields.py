"""Every field the reader reads back, damaged in every way: the reader's door holds.

A valid two-rank job (GPU with counter and power, CPU counter, carbon DE with PUE 1.1, two
epochs, a forecast) is copied and one field of one file is damaged: NaN, infinity, negative,
zero where zero is not a value it can hold, huge, text, a list where an object or number
belongs, nesting 100k deep, another run's id. ``greentrack summary``, ``report`` and
``whatif`` (called in-process) then either print one line naming the file with exit 2, or
print the account with a note naming the damaged file; never a traceback, and never an
absurd figure (negative or non-finite energy, energy above what the channels can draw,
CO2e above the dirtiest grid at the highest PUE).

A hypothesis property damages any field of any file with any such value: the account's
energy is finite and not negative, and it is the undamaged account's or it carries a note.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greentrack
from greentrack.account import account_run
from greentrack.cli import main
from greentrack.errors import RunFormatError
from greentrack.launcher import RankInfo
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.rundir.checks import MAX_CHANNEL_W
from tests.helpers import run_for

START = 1_678_795_200.0
SECONDS = 6.0
CHANNELS = 4  # gpu0 and cpu0 of two ranks
MOST_J = CHANNELS * MAX_CHANNEL_W * (SECONDS + 2.0)  # what the channels could draw at most
MOST_GCO2E_PER_KWH = 3000.0 * 5.0  # the dirtiest grid at the highest PUE
OTHER_RUN = "0123456789abcdef0123456789abcdef"
SENTINEL = "\x00damage\x00"

# --- the damages: JSON text (for JSON files) and CSV cells --------------------------------------

JSON_VALUES = {
    "nan": "NaN",
    "inf": "Infinity",
    "negative": "-1e6",
    "zero": "0",
    "huge": "1e300",
    "text": '"lots"',
    "list": "[1, 2]",
    "deep": "[" * 100_000 + "]" * 100_000,
    "other run": json.dumps(OTHER_RUN),
}
CSV_VALUES = {
    "nan": "nan",
    "inf": "inf",
    "negative": "-1000000",
    "zero": "0",
    "huge": "1e300",
    "text": "lots",
    "backwards": "100",
}
NUMBER = ["nan", "inf", "negative", "huge", "text", "list", "deep"]  # zero is a value
POSITIVE = [*NUMBER, "zero"]  # zero is not a value either
OBJECT = ["text", "list", "deep", "huge"]
TEXT = ["huge", "list", "deep"]


def _job(root: Path) -> None:
    """A job of two ranks (job id ``j``) into ``root``, each with a GPU (counter and power)
    and a CPU (counter only), carbon DE at PUE 1.1, two epochs and a forecast event."""
    for rank, gpu_w in ((0, 250.0), (1, 150.0)):
        clock = ManualClock(START)
        meters = [
            FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(gpu_w))], clock),
            FakeMeter(
                [FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(40.0), has_power=False)],
                clock,
            ),
        ]
        info = RankInfo(
            rank=rank,
            local_rank=rank,
            world_size=2,
            local_world_size=2,
            launcher="torchrun",
            job_id="j",
        )
        with greentrack.track(
            root, meters=meters, clock=clock, background=False, rank=info, region="DE", pue=1.1
        ) as t:
            for epoch in range(2):
                with t.span("train_epoch", epoch=epoch):
                    run_for(t, clock, SECONDS / 2)
    forecast = {
        "event": "forecast",
        "t_unix_s": START + 3.0,
        "epoch": 0,
        "units_done": 1,
        "units_remaining": 1,
        "done_j": 870.0,
        "forecast_j": 1740.0,
        "forecast_j_low": 1600.0,
        "forecast_j_high": 1900.0,
    }
    with (root / "events.jsonl").open("a") as f:
        f.write(json.dumps(forecast) + "\n")


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fields") / "job"
    _job(root)
    return root


def _set_json(text: str, keys: Sequence[Any], value: str) -> str:
    """``text`` (one JSON document) with the value at ``keys`` replaced by the JSON ``value``
    (any text: nesting 100k deep cannot go through ``json.dumps``)."""
    if not keys:
        return value
    data = json.loads(text)
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = SENTINEL
    return json.dumps(data).replace(json.dumps(SENTINEL), value)


def json_field(name: str, keys: Sequence[Any], line: int | None = None) -> Callable[..., None]:
    """A damage of file ``name`` (a ``.jsonl`` file: its ``line``) at ``keys``."""

    def damage(run: Path, value: str) -> None:
        path = run / name
        if line is None:
            path.write_text(_set_json(path.read_text(), keys, value))
            return
        lines = path.read_text().splitlines()
        lines[line] = _set_json(lines[line], keys, value)
        path.write_text("\n".join(lines) + "\n")

    return damage


def csv_cell(name: str, row: int, column: str, *, drop_summary: bool) -> Callable[..., None]:
    """A damage of the cell ``column`` of data row ``row`` of timeline ``name``; with
    ``drop_summary`` the run's summary.json is removed first (its totals then come from the
    timeline: a run that was killed)."""

    def damage(run: Path, value: str) -> None:
        path = run / name
        lines = path.read_text().splitlines()
        header = lines[0].split(",")
        data = lines[1:]
        cells = data[row].split(",")
        if value == CSV_VALUES["backwards"] and column == "t_mono_s":
            value = "0.5"
        cells[header.index(column)] = value
        data[row] = ",".join(cells)
        path.write_text("\n".join([lines[0], *data]) + "\n")
        if drop_summary:
            (path.parent / "summary.json").unlink()

    return damage


P1 = "parts/seg0-rank1"
# (field, damage, kinds, files: a note or the error line names one of them)
FIELDS: list[tuple[str, Callable[..., None], list[str], tuple[str, ...]]] = [
    # meta.json: carbon
    (
        "meta carbon intensity",
        json_field("meta.json", ["carbon", "intensity", "gco2e_per_kwh"]),
        NUMBER,
        ("meta.json",),
    ),
    (
        "meta carbon pue",
        json_field("meta.json", ["carbon", "pue", "pue"]),
        POSITIVE,
        ("meta.json",),
    ),
    ("meta carbon block", json_field("meta.json", ["carbon"]), OBJECT, ("meta.json",)),
    (
        "meta carbon intensity block",
        json_field("meta.json", ["carbon", "intensity"]),
        OBJECT,
        ("meta.json",),
    ),
    ("meta carbon pue block", json_field("meta.json", ["carbon", "pue"]), OBJECT, ("meta.json",)),
    (
        "meta carbon year",
        json_field("meta.json", ["carbon", "intensity", "year"]),
        ["nan", "inf", "negative", "huge", "text", "list", "deep"],
        ("meta.json",),
    ),
    (
        "meta carbon region",
        json_field("meta.json", ["carbon", "intensity", "region"]),
        TEXT,
        ("meta.json",),
    ),
    # meta.json: identity
    ("meta start_unix_s", json_field("meta.json", ["start_unix_s"]), POSITIVE, ("meta.json",)),
    ("meta start_utc", json_field("meta.json", ["start_utc"]), [*TEXT, "text"], ("meta.json",)),
    (
        "meta run_id",
        json_field("meta.json", ["run_id"]),
        [*TEXT, "other run"],
        ("meta.json", "summary.json"),
    ),
    (
        "meta format_version",
        json_field("meta.json", ["format_version"]),
        [*POSITIVE, "huge"],
        ("meta.json",),
    ),
    ("meta name", json_field("meta.json", ["name"]), TEXT, ("meta.json",)),
    ("meta project", json_field("meta.json", ["project"]), TEXT, ("meta.json",)),
    ("meta host", json_field("meta.json", ["host"]), OBJECT, ("meta.json",)),
    (
        "meta hostname",
        json_field("meta.json", ["host", "hostname"]),
        ["list", "deep"],
        ("meta.json",),
    ),
    (
        "meta command",
        json_field("meta.json", ["command"]),
        ["text", "huge", "deep"],
        ("meta.json",),
    ),
    ("meta config", json_field("meta.json", ["config"]), ["deep", "list"], ("meta.json",)),
    ("meta git", json_field("meta.json", ["git"]), OBJECT, ("meta.json",)),
    (
        "meta sampling",
        json_field("meta.json", ["sampling", "counter_interval_s"]),
        POSITIVE,
        ("meta.json",),
    ),
    (
        "meta boundary",
        json_field("meta.json", ["boundary"]),
        ["text", "list", "deep", "huge"],
        ("meta.json",),
    ),
    # meta.json: channels
    (
        "meta channels",
        json_field("meta.json", ["channels"]),
        ["text", "deep", "huge"],
        ("meta.json",),
    ),
    ("meta channel id", json_field("meta.json", ["channels", 0, "id"]), TEXT, ("meta.json",)),
    (
        "meta channel source",
        json_field("meta.json", ["channels", 0, "source"]),
        [*TEXT, "text"],
        ("meta.json",),
    ),
    ("meta channel name", json_field("meta.json", ["channels", 0, "name"]), TEXT, ("meta.json",)),
    (
        "meta channel details",
        json_field("meta.json", ["channels", 0, "details"]),
        ["text", "list", "deep"],
        ("meta.json",),
    ),
    (
        "meta power limit",
        json_field("meta.json", ["channels", 0, "details", "power_limit_w"]),
        POSITIVE,
        ("meta.json",),
    ),
    # meta.json: the job
    ("meta part block", json_field("meta.json", ["part"]), OBJECT, ("meta.json",)),
    (
        "meta part rank",
        json_field("meta.json", ["part", "rank"]),
        ["nan", "inf", "negative", "huge", "text", "list"],
        ("meta.json",),
    ),
    ("meta part stage", json_field("meta.json", ["part", "stage"]), TEXT, ("meta.json",)),
    ("meta provider", json_field("meta.json", ["intensity_provider"]), OBJECT, ("meta.json",)),
    ("meta fl block", json_field("meta.json", ["fl"]), OBJECT, ("meta.json",)),
    (
        "meta job id",
        json_field("meta.json", ["part", "job_id"]),
        ["huge", "list", "other run"],
        (P1,),
    ),
    # summary.json
    (
        "summary energy",
        json_field("summary.json", ["energy_j", "gpu0"]),
        POSITIVE,
        ("summary.json",),
    ),
    ("summary energy block", json_field("summary.json", ["energy_j"]), OBJECT, ("summary.json",)),
    ("summary end", json_field("summary.json", ["end_unix_s"]), POSITIVE, ("summary.json",)),
    ("summary duration", json_field("summary.json", ["duration_s"]), POSITIVE, ("summary.json",)),
    (
        "summary run_id",
        json_field("summary.json", ["run_id"]),
        [*TEXT, "other run"],
        ("summary.json",),
    ),
    ("summary status", json_field("summary.json", ["status"]), TEXT, ("summary.json",)),
    ("summary io_trouble", json_field("summary.json", ["io_trouble"]), OBJECT, ("summary.json",)),
    ("summary file", json_field("summary.json", []), OBJECT, ("summary.json",)),
    # spans.jsonl: begin s1, end s1, begin s2, end s2
    (
        "span end energy",
        json_field("spans.jsonl", ["energy_j", "gpu0"], 1),
        NUMBER,
        ("spans.jsonl",),
    ),
    ("span end energy block", json_field("spans.jsonl", ["energy_j"], 1), OBJECT, ("spans.jsonl",)),
    (
        "span begin energy",
        json_field("spans.jsonl", ["energy_j", "gpu0"], 2),
        NUMBER,
        ("spans.jsonl",),
    ),
    ("span begin time", json_field("spans.jsonl", ["t_unix_s"], 2), POSITIVE, ("spans.jsonl",)),
    ("span begin mono", json_field("spans.jsonl", ["t_mono_s"], 2), POSITIVE, ("spans.jsonl",)),
    ("span end time", json_field("spans.jsonl", ["t_unix_s"], 1), POSITIVE, ("spans.jsonl",)),
    ("span end mono", json_field("spans.jsonl", ["t_mono_s"], 1), POSITIVE, ("spans.jsonl",)),
    ("span duration", json_field("spans.jsonl", ["duration_s"], 1), POSITIVE, ("spans.jsonl",)),
    ("span name", json_field("spans.jsonl", ["name"], 0), [*TEXT, "zero"], ("spans.jsonl",)),
    ("span tags", json_field("spans.jsonl", ["tags"], 0), OBJECT, ("spans.jsonl",)),
    ("span parent", json_field("spans.jsonl", ["parent_id"], 2), TEXT, ("spans.jsonl",)),
    ("span status", json_field("spans.jsonl", ["status"], 1), TEXT, ("spans.jsonl",)),
    ("span line", json_field("spans.jsonl", [], 1), OBJECT, ("spans.jsonl",)),
    # events.jsonl: the forecast (last line)
    ("forecast", json_field("events.jsonl", ["forecast_j"], -1), NUMBER, ("events.jsonl",)),
    # timeline.csv, the run killed (no summary.json): the totals come from it
    (
        "timeline last energy",
        csv_cell("timeline.csv", -1, "gpu0_energy_j", drop_summary=True),
        ["nan", "inf", "negative", "zero", "huge", "text", "backwards"],
        ("timeline.csv",),
    ),
    (
        "timeline middle energy",
        csv_cell("timeline.csv", 3, "gpu0_energy_j", drop_summary=True),
        ["nan", "inf", "negative", "huge", "text"],
        ("timeline.csv",),
    ),
    (
        "timeline cpu energy",
        csv_cell("timeline.csv", -1, "cpu0_energy_j", drop_summary=True),
        ["negative", "huge", "text", "backwards"],
        ("timeline.csv",),
    ),
    (
        "timeline last mono",
        csv_cell("timeline.csv", -1, "t_mono_s", drop_summary=True),
        ["nan", "inf", "negative", "huge", "text", "backwards"],
        ("timeline.csv",),
    ),
    (
        "timeline last time",
        csv_cell("timeline.csv", -1, "t_unix_s", drop_summary=True),
        ["nan", "inf", "negative", "zero", "huge", "text"],
        ("timeline.csv",),
    ),
    (
        "timeline power",
        csv_cell("timeline.csv", -1, "gpu0_power_w", drop_summary=True),
        ["nan", "inf", "negative", "huge", "text"],
        ("timeline.csv",),
    ),
    # timeline.csv beside a summary (the curve the series weights)
    (
        "timeline row, summary kept",
        csv_cell("timeline.csv", 2, "gpu0_energy_j", drop_summary=False),
        ["huge", "negative", "text"],
        ("timeline.csv",),
    ),
    # a part (rank 1)
    (
        "part summary energy",
        json_field(f"{P1}/summary.json", ["energy_j", "gpu0"]),
        POSITIVE,
        ("seg0-rank1/summary.json",),
    ),
    (
        "part summary run_id",
        json_field(f"{P1}/summary.json", ["run_id"]),
        ["other run"],
        ("seg0-rank1/summary.json",),
    ),
    (
        "part job id",
        json_field(f"{P1}/meta.json", ["part", "job_id"]),
        ["huge", "list", "other run"],
        (P1,),
    ),
    ("part rank", json_field(f"{P1}/meta.json", ["part", "rank"]), POSITIVE, (P1,)),
    ("part meta file", json_field(f"{P1}/meta.json", []), OBJECT, (P1,)),
    ("part config", json_field(f"{P1}/meta.json", ["config"]), ["deep"], ("seg0-rank1/meta.json",)),
    (
        "part spans",
        json_field(f"{P1}/spans.jsonl", ["energy_j", "gpu0"], 1),
        NUMBER,
        ("seg0-rank1/spans.jsonl",),
    ),
    (
        "part timeline",
        csv_cell(f"{P1}/timeline.csv", -2, "gpu0_energy_j", drop_summary=False),
        ["huge", "negative", "text"],
        ("seg0-rank1/timeline.csv",),
    ),
]
CASES = [
    (f"{name}: {kind}", damage, kind, files)
    for name, damage, kinds, files in FIELDS
    for kind in kinds
]


def _account_is_sane(data: dict[str, Any]) -> None:
    """No absurd figure: energy finite, not negative, within what the channels could draw;
    CO2e finite, not negative, within the dirtiest grid at the highest PUE."""
    most_kwh = MOST_J / 3.6e6
    energy = data["energy"]["it_kwh"]
    for key in ("value", "low", "high"):
        assert math.isfinite(energy[key]) and 0 <= energy[key] <= most_kwh, energy
    for item in data["components"]:
        e = item["energy_kwh"]
        assert all(math.isfinite(e[k]) and 0 <= e[k] <= most_kwh for k in ("value", "high")), e
    for phase in data["phases"]:
        assert 0 <= phase["energy_kwh"] <= most_kwh and math.isfinite(phase["energy_kwh"])
        assert 0 <= phase["duration_s"] <= 2 * 86_400.0, phase
    if data["co2e_g"] is not None:
        co2e = data["co2e_g"]
        most_g = energy["high"] * MOST_GCO2E_PER_KWH
        for key in ("value", "low", "high"):
            assert math.isfinite(co2e[key]) and 0 <= co2e[key] <= most_g * (1 + 1e-9), co2e


def _through_the_cli(
    run: Path, capsys: pytest.CaptureFixture[str], files: Sequence[str]
) -> dict[str, Any] | None:
    """``summary``, ``report`` and ``whatif`` of ``run``: each exits 2 with one line naming
    one of ``files``, or 0; never a traceback. The summary's account (``None`` on exit 2)."""
    codes = []
    account = None
    for argv in (
        ["summary", str(run), "--format", "json"],
        ["report", str(run), "-f", "json", "--no-plots"],
        ["whatif", str(run), "--regions", "FR", "--format", "json"],
    ):
        code = main(argv)  # an exception here is the traceback the door must prevent
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("greentrack: "), (argv, err)
            assert any(f in err for f in files), (argv, err)
        else:
            assert code == 0, (argv, err)
            if argv[0] == "summary":
                account = json.loads(out)
        codes.append(code)
    assert len(set(codes)) == 1, codes  # the three commands agree
    return account


@pytest.fixture(scope="module")
def baseline(good: Path) -> dict[str, Any]:
    return account_run(greentrack.load_run(good)).to_dict()


def test_the_undamaged_job_reads_without_a_note(
    good: Path, baseline: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    account = _through_the_cli(good, capsys, ["-"])
    assert account is not None and not account["notes"], account["notes"]
    _account_is_sane(account)
    assert account["processes"] == 2 and account["co2e_g"] is not None
    assert baseline["energy"]["it_kwh"]["value"] == account["energy"]["it_kwh"]["value"]


@pytest.mark.parametrize("case,damage,kind,files", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_field_is_a_note_or_one_line(
    good: Path,
    baseline: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    damage: Callable[[Path, str], None],
    kind: str,
    files: tuple[str, ...],
) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    value = CSV_VALUES[kind] if kind in CSV_VALUES and "timeline" in case else JSON_VALUES[kind]
    damage(run, value)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    account = _through_the_cli(run, capsys, files)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing written
    if account is None:
        return  # one line naming the file, exit 2
    _account_is_sane(account)
    new = [n for n in account["notes"] if n not in baseline["notes"]]
    assert any(f in n for n in new for f in files), (files, account["notes"])


# --- the issue's own examples, with their figures ---------------------------------------------


@pytest.mark.parametrize(
    "keys,value,said",
    [
        (["carbon", "intensity", "gco2e_per_kwh"], "-300", "an intensity of -300 gCO2e/kWh"),
        (["carbon", "intensity", "gco2e_per_kwh"], "1e300", "an intensity of 1e+300"),
        (["carbon", "pue", "pue"], "0.5", "a PUE of 0.5, not one from 1.0 to 5.0"),
        (["carbon", "pue", "pue"], "1e6", "a PUE of 1e+06"),
        (["carbon"], "[1, 2]", "'carbon' is [1, 2] (a list), not an object"),
        (["carbon", "pue", "pue"], '"lots"', "its pue.pue is 'lots', not a number"),
    ],
)
def test_a_damaged_carbon_block_is_never_applied(
    good: Path, tmp_path: Path, keys: list[str], value: str, said: str
) -> None:
    """The run is still read: its energy as measured, no CO2e from the damaged block, a note
    naming the value and the fix; a region given charges it, with that region's PUE."""
    run = tmp_path / "job"
    shutil.copytree(good, run)
    json_field("meta.json", keys)(run, value)
    account = account_run(greentrack.load_run(run))
    assert account.co2e_g is None and account.it_kwh.value > 0
    assert any(said in n for n in account.notes), account.notes
    if keys != ["carbon"]:
        assert any("--region REGION" in n for n in account.notes), account.notes
    from greentrack.account import AccountOptions
    from greentrack.carbon.settings import resolve_settings

    charged = account_run(greentrack.load_run(run), AccountOptions(region="FR"))
    france = resolve_settings("FR")
    assert france is not None and charged.co2e_g is not None and charged.carbon is not None
    assert charged.carbon.pue.value == france.pue.value  # not the damaged block's
    assert charged.co2e_g.value == pytest.approx(
        charged.it_kwh.value * france.pue.value * france.intensity.gco2e_per_kwh
    )


def _with_summary_energy(run: Path, factor: float) -> float:
    path = run / "summary.json"
    data = json.loads(path.read_text())
    good = sum(data["energy_j"].values())
    data["energy_j"] = {k: v * factor for k, v in data["energy_j"].items()}
    path.write_text(json.dumps(data))
    return good


def test_a_summary_copied_from_another_run_is_not_used(good: Path, tmp_path: Path) -> None:
    """Another run's summary.json (its run id), or one with 10x the timeline's energy: a note,
    and the totals from the timeline (the figures of the undamaged run)."""
    expected = account_run(greentrack.load_run(good)).it_kwh.value
    run = tmp_path / "ten"
    shutil.copytree(good, run)
    _with_summary_energy(run, 10.0)
    account = account_run(greentrack.load_run(run))
    assert account.it_kwh.value == pytest.approx(expected, rel=1e-6)
    assert any("summary.json says gpu0 used" in n for n in account.notes), account.notes
    other = tmp_path / "other"
    shutil.copytree(good, other)
    json_field("summary.json", ["run_id"])(other, json.dumps(OTHER_RUN))
    account = account_run(greentrack.load_run(other))
    assert account.it_kwh.value == pytest.approx(expected, rel=1e-6)
    assert any(f"belongs to run '{OTHER_RUN}'" in n for n in account.notes), account.notes


def test_a_timeline_that_runs_backwards_or_jumps_is_not_the_total(
    good: Path, tmp_path: Path
) -> None:
    """No summary.json: a last row of 1e300 J, or one that runs backwards, is skipped with a
    note; the total is the row before (never 2.8e293 kWh, never a negative total)."""
    killed = tmp_path / "killed"
    shutil.copytree(good, killed)
    (killed / "summary.json").unlink()
    clean = account_run(greentrack.load_run(killed)).it_kwh.value
    for value in ("1e300", "-5", "100"):
        run = tmp_path / value
        shutil.copytree(killed, run)
        csv_cell("timeline.csv", -1, "gpu0_energy_j", drop_summary=False)(run, value)
        account = account_run(greentrack.load_run(run))
        assert 0 < account.it_kwh.value <= clean
        assert account.it_kwh.value == pytest.approx(clean, rel=0.2)  # the row before
        assert any("timeline.csv: 1 row with impossible values" in n for n in account.notes)


def test_one_damaged_row_does_not_cost_the_rows_after_it(good: Path, tmp_path: Path) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    csv_cell("timeline.csv", 2, "t_mono_s", drop_summary=True)(run, "1e6")
    loaded = greentrack.load_run(run)
    rows = len((good / "timeline.csv").read_text().splitlines()) - 1
    assert len(loaded._wide) == rows - 1
    assert any("1 row with impossible values skipped (line 4" in d for d in loaded.damage)


def test_a_timeline_with_no_usable_row_and_no_summary_is_one_line(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    (run / "summary.json").unlink()
    lines = (run / "timeline.csv").read_text().splitlines()
    cells = [ln.split(",") for ln in lines[1:]]
    for c in cells:
        c[3] = "-1"  # gpu0_energy_j
    (run / "timeline.csv").write_text("\n".join([lines[0]] + [",".join(c) for c in cells]) + "\n")
    assert main(["summary", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "timeline.csv: no row can be used" in err
    assert "gpu0_energy_j = -1.0" in err and "restore it from a copy" in err


# --- parts: links out of the run directory are not followed ---------------------------------


def test_a_parts_summary_linked_outside_the_run_directory_is_not_followed(
    good: Path, tmp_path: Path
) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    outside = tmp_path / "elsewhere.json"
    part_summary = run / P1 / "summary.json"
    data = json.loads(part_summary.read_text())
    data["energy_j"] = {k: v * 5 for k, v in data["energy_j"].items()}
    outside.write_text(json.dumps(data))
    part_summary.unlink()
    os.symlink(outside, part_summary)
    expected = account_run(greentrack.load_run(good)).it_kwh.value
    account = account_run(greentrack.load_run(run))
    assert account.it_kwh.value == pytest.approx(expected, rel=1e-6)  # from its timeline
    assert any(
        "seg0-rank1/summary.json is a link to a file outside the run directory: not followed" in n
        for n in account.notes
    ), account.notes


def test_a_part_folder_linked_outside_the_run_directory_is_not_followed(
    good: Path, tmp_path: Path
) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    outside = tmp_path / "outside-part"
    shutil.move(str(run / P1), outside)
    os.symlink(outside, run / P1, target_is_directory=True)
    loaded = greentrack.load_run(run)
    assert loaded.parts == []
    assert any("is a link to a folder outside the run directory" in d for d in loaded.damage)


def test_a_link_inside_the_run_directory_is_followed(good: Path, tmp_path: Path) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    part_summary = run / P1 / "summary.json"
    kept = run / P1 / "summary.copy.json"
    part_summary.rename(kept)
    os.symlink(kept.name, part_summary)
    account = account_run(greentrack.load_run(run))
    assert not account.notes, account.notes


# --- a resumed segment names the earlier part it cannot read ----------------------------------


def test_the_live_total_of_a_resumed_segment_names_a_part_it_cannot_read(
    good: Path, tmp_path: Path
) -> None:
    from greentrack.live import _energy_so_far

    run = tmp_path / "job"
    shutil.copytree(good, run)
    json_field(f"{P1}/meta.json", ["part", "job_id"])(run, json.dumps("another"))
    with pytest.warns(RuntimeWarning, match=r"parts/seg0-rank1 cannot be read") as caught:
        measured, _ = _energy_so_far(run)
    assert len(caught) == 1 and "belongs to job another" in str(caught[0].message)
    assert measured.value > 0  # rank 0's energy still counts
    (run / "meta.json").write_text("[")
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        measured, _ = _energy_so_far(run)
    assert measured.value == 0


# --- fl.jsonl: a client's reply -----------------------------------------------------------------

REPLY = {
    "round": 1,
    "phase": "train",
    "node_id": 7,
    "download_bytes": 1000,
    "upload_bytes": 2000,
    "error": False,
    "client_measured_j": 100.0,
    "client_estimated_j": 0.0,
    "client_duration_s": 2.0,
    "client_methods": "nvml-total-energy-counter",
    "client_basis": "measured",
}


@pytest.mark.parametrize(
    "key,value",
    [
        ("client_measured_j", "-1e6"),
        ("client_measured_j", "1e300"),
        ("client_measured_j", '"lots"'),
        ("client_measured_j", "Infinity"),
        ("upload_bytes", "-5"),
        ("upload_bytes", "1e300"),
        ("download_bytes", '"many"'),
        ("client_duration_s", "NaN"),
        ("client_components", "[1, 2]"),
        ("round", "-1"),
    ],
)
def test_a_damaged_client_reply_is_skipped_and_said(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    run = tmp_path / "job"
    shutil.copytree(good, run)
    lines = [json.dumps(REPLY), _set_json(json.dumps(REPLY), [key], value)]
    (run / "fl.jsonl").write_text("\n".join(lines) + "\n")
    account = _through_the_cli(run, capsys, ("fl.jsonl",))
    assert account is not None
    _account_is_sane(account)
    assert any("fl.jsonl: 1 line " in n for n in account["notes"]), account["notes"]
    assert account["federated"]["client_replies"] == 1


# --- the property -------------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e300", "-1e300", "[1, 2]", "{}", "true"]),
    st.floats(max_value=-1e-3, allow_nan=False, allow_infinity=False).map(repr),
    st.integers(max_value=-1).map(str),
    st.text(min_size=0, max_size=8).map(json.dumps),
    st.lists(st.integers(), max_size=3).map(json.dumps),
    st.just("[" * 100_000 + "]" * 100_000),
)
CSV_HOSTILE = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e300", "-1", "lots", "0x10", "1e999"]),
    st.floats(max_value=-1e-3, allow_nan=False, allow_infinity=False).map(repr),
)


def _places(draw: st.DrawFn, text: str) -> tuple[Any, ...]:
    """A place in the JSON document ``text``: half the time one holding a number (where
    damage changes figures), else any (its root included)."""
    document = json.loads(text)
    places = _paths(document)
    numbers = [p for p in places if _at(document, p).__class__ in (int, float)]
    return draw(
        st.sampled_from(numbers) if numbers and draw(st.booleans()) else st.sampled_from(places)
    )


def _at(document: Any, place: Sequence[Any]) -> Any:
    for key in place:
        document = document[key]
    return document


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (its root included)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


JSON_FILES = ["meta.json", "summary.json", f"{P1}/meta.json", f"{P1}/summary.json"]
JSONL_FILES = ["spans.jsonl", "events.jsonl", f"{P1}/spans.jsonl"]
CSV_FILES = ["timeline.csv", f"{P1}/timeline.csv"]


@st.composite
def damages(draw: st.DrawFn, good: Path) -> tuple[str, Callable[[Path], None]]:
    """A damage of one field of one file of the job, with a hostile value; a description."""
    kind = draw(st.sampled_from(["json", "jsonl", "csv"]))
    killed = draw(st.booleans())  # summary.json removed: the totals from the timeline
    if kind == "json":
        name = draw(st.sampled_from(JSON_FILES))
        keys = _places(draw, (good / name).read_text())
        value = draw(HOSTILE)

        def apply(run: Path) -> None:
            json_field(name, keys)(run, value)

        what = f"{name} {list(keys)} = {value[:40]}"
    elif kind == "jsonl":
        name = draw(st.sampled_from(JSONL_FILES))
        lines = (good / name).read_text().splitlines()
        line = draw(st.integers(0, len(lines) - 1))
        keys = _places(draw, lines[line])
        value = draw(HOSTILE)

        def apply(run: Path) -> None:
            json_field(name, keys, line)(run, value)

        what = f"{name}:{line} {list(keys)} = {value[:40]}"
    else:
        name = draw(st.sampled_from(CSV_FILES))
        lines = (good / name).read_text().splitlines()
        row = draw(st.one_of(st.just(len(lines) - 2), st.integers(0, len(lines) - 2)))
        column = draw(st.sampled_from(lines[0].split(",")[:-1]))
        value = draw(CSV_HOSTILE)

        def apply(run: Path) -> None:
            csv_cell(name, row, column, drop_summary=False)(run, value)

        what = f"{name} row {row} {column} = {value}"
    if not killed:
        return what, apply

    def apply_killed(run: Path) -> None:
        (run / "summary.json").unlink()
        if name != "summary.json":
            apply(run)

    return f"{what} (no summary.json)", apply_killed


@pytest.fixture(scope="module")
def killed_baseline(good: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = tmp_path_factory.mktemp("killed") / "job"
    shutil.copytree(good, run)
    (run / "summary.json").unlink()
    return account_run(greentrack.load_run(run)).to_dict()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_damage_gives_a_sane_account_equal_or_noted(
    good: Path,
    baseline: dict[str, Any],
    killed_baseline: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    what, apply = data.draw(damages(good))
    run = tmp_path_factory.mktemp("prop") / "job"
    shutil.copytree(good, run)
    apply(run)
    before = baseline if (run / "summary.json").exists() else killed_baseline
    try:
        account = account_run(greentrack.load_run(run)).to_dict()
    except RunFormatError as e:  # what the run cannot be read without: one line
        assert "\n" not in str(e) and ("meta.json" in str(e) or "timeline.csv" in str(e)), what
        return
    _account_is_sane(account)
    same = (
        account["energy"]["it_kwh"] == before["energy"]["it_kwh"]
        and account["co2e_g"] == before["co2e_g"]
    )
    noted = [n for n in account["notes"] if n not in before["notes"]]
    assert same or noted, (what, account["energy"]["it_kwh"], before["energy"]["it_kwh"])


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.floats(0.0, 300.0), min_size=1, max_size=40),
    damage=st.lists(
        st.tuples(
            st.integers(0, 39),
            st.sampled_from(["t_unix", "t_mono", "e0", "e1"]),
            st.sampled_from([math.nan, math.inf, -1.0, 0.0, 1e300, 1e9, 5.0]),
        ),
        max_size=4,
    ),
    may_fall=st.booleans(),
)
def test_the_numpy_path_keeps_the_rows_the_row_by_row_path_keeps(
    steps: list[float],
    damage: list[tuple[int, str, float]],
    may_fall: bool,
) -> None:
    """The timeline check at numpy speed decides as the row-by-row check does, and what it
    keeps is a timeline: times forward, energy finite, not negative, within 10 kW."""
    import numpy as np

    from greentrack.rundir import checks

    n = len(steps)
    t_mono = np.arange(1, n + 1, dtype=float)
    t_unix = START + t_mono
    energy = np.column_stack([np.cumsum(steps), np.cumsum(steps) / 2])
    for row, column, value in damage:
        if row < n:
            if column in ("e0", "e1"):
                energy[row, int(column[1])] = value
            else:
                (t_unix if column == "t_unix" else t_mono)[row] = value
    gaps = np.array([""] * n, dtype=object)
    args = (t_unix, t_mono, energy, gaps, ["gpu0", "cpu0"])
    kw = {"may_fall": [may_fall, False], "start_unix_s": START, "window_s": 7.0}
    fast, first = checks.timeline_keep(*args, **kw)
    with patch.object(checks, "_first_out_of_line", lambda *a: a[4]):  # row by row
        slow, slow_first = checks.timeline_keep(*args, **kw)
    assert fast == slow and first == slow_first
    k = np.asarray(fast, dtype=bool)
    kept_e, kept_t = energy[k], t_mono[k]
    read = ~np.isnan(kept_e)
    assert np.isfinite(kept_e[read]).all() and (kept_e[read] >= 0).all()
    assert (np.diff(kept_t) >= -1e-3).all()
    most = MAX_CHANNEL_W * (kept_t[:, None] + len(kept_t))  # 10 kW from the start, row by row
    assert (np.where(read, kept_e, 0.0) <= most).all()


@pytest.mark.parametrize("value", ["-1", "1e300", "NaN", '"lots"', "[1, 2]", "true"])
def test_a_damaged_network_coefficient_is_never_applied(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """meta.json's ``fl.network`` (what a Flower server recorded): a coefficient that is not
    kWh/GB within the bundled bounds is not applied; the default is, with a note."""
    from greentrack.carbon.network import coefficient

    run = tmp_path / "job"
    shutil.copytree(good, run)
    default = coefficient()
    block = {
        "key": default.key,
        "kwh_per_gb": default.kwh_per_gb,
        "scope": default.scope,
        "data_year": default.data_year,
        "source": default.source,
        "note": default.note,
    }
    meta = json.loads((run / "meta.json").read_text())
    meta["fl"] = {"network": {"upload": block, "download": block}}
    (run / "meta.json").write_text(json.dumps(meta))
    json_field("meta.json", ["fl", "network", "upload", "kwh_per_gb"])(run, value)
    (run / "fl.jsonl").write_text(json.dumps(REPLY) + "\n")
    account = _through_the_cli(run, capsys, ("meta.json",))
    assert account is not None
    _account_is_sane(account)
    assert any("fl.network.upload is damaged" in n for n in account["notes"]), account["notes"]
    assert account["federated"]["network"] == (
        f"{default.kwh_per_gb:g} kWh/GB ({default.source.split(',')[0]}, {default.scope})"
    )


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ('"parameters": -1', "a model's parameters is -1"),
        ('"parameters": 1000000000000000', "a model's parameters is 1000000000000000"),
        ('"parameters": 12.5', "a model's parameters is 12.5"),
        ('"parameters": true', "a model's parameters is True"),
        ('"parameters": "9"', "a model's parameters is '9'"),
        ('"trainable_parameters": 9', "a model's parameters is None"),
        ('"parameters": 9, "trainable_parameters": -1', "a model's trainable_parameters is -1"),
        ('"parameters": 9, "trainable_parameters": 10', "trainable_parameters is more than"),
    ],
)
def test_a_damaged_model_record_is_skipped_with_a_note(
    good: Path, tmp_path: Path, fields: str, why: str
) -> None:
    """A ``model`` event (the parameter count an integration recorded) must hold an integer
    from 0 to below 1e15: else it is skipped, one damage line says why, and a good record
    after it is still read."""
    run = tmp_path / "job"
    shutil.copytree(good, run)
    with (run / "events.jsonl").open("a") as f:
        f.write('{"event": "model", ' + fields + "}\n")
    loaded = greentrack.load_run(run)
    assert loaded.parameters is None
    assert [d for d in loaded.damage if why in d and "1 record" in d], loaded.damage
    with (run / "events.jsonl").open("a") as f:
        f.write('{"event": "model", "parameters": 999999999999999, "trainable_parameters": 0}\n')
    assert greentrack.load_run(run).parameters == 999999999999999
