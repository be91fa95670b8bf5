"""A corpus of damaged run directories, hostile CSVs and hostile names: each gives one line
naming the file, the problem and the fix (exit 2, nothing written), or loads with a note
saying what was skipped; never a traceback."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import greentrack
from greentrack.cli import main
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.tracker import Tracker
from tests.helpers import run_for

GB = (
    Path(greentrack.__file__).parent
    / "carbon"
    / "data"
    / "gb_carbon_intensity_2023-03-14_to_19.csv"
)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from greentrack.carbon.settings import resolve_settings

    path = tmp_path_factory.mktemp("good") / "run"
    clock = ManualClock(1_678_795_200.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(100.0))], clock)]
    with Tracker(
        path, meters=meters, clock=clock, background=False, carbon=resolve_settings("DE")
    ) as t:
        with t.span("epoch", epoch=0):
            run_for(t, clock, 3.0)
    return path


def _edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def edit(run: Path) -> None:
        data = json.loads((run / name).read_text())
        change(data)  # changes data in place
        (run / name).write_text(json.dumps(data))

    return edit


def _append(name: str, text: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        with (run / name).open("a") as f:
            f.write(text)

    return edit


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        (run / name).write_bytes(data)

    return edit


# (case, damage, expected: ("error", text in the one line) or ("note", text in the notes))
CASES = [
    ("meta is a list", _write("meta.json", b"[1, 2]"), ("error", "meta.json holds a JSON list")),
    ("meta binary", _write("meta.json", b"\xff\xfe\x00garbage"), ("error", "not UTF-8")),
    ("meta torn", _write("meta.json", b'{"run_id": "x", '), ("error", "meta.json is not valid")),
    (
        "meta without run_id",
        _edit_json("meta.json", lambda m: m.pop("run_id")),
        ("error", "'run_id' is missing"),
    ),
    (
        "format_version as text",
        _edit_json("meta.json", lambda m: m.update(format_version="1")),
        ("error", "format_version is '1', not an integer"),
    ),
    (
        "channel without component",
        _edit_json("meta.json", lambda m: m["channels"][0].pop("component")),
        ("error", "channel 'gpu0' has component None"),
    ),
    (
        "broken carbon block",
        _edit_json("meta.json", lambda m: m["carbon"]["intensity"].pop("gco2e_per_kwh")),
        ("note", "meta.json: its carbon block is damaged (its field 'gco2e_per_kwh' is missing)"),
    ),
    (
        "span line without span_id",
        _append("spans.jsonl", '{"event": "begin", "name": "x"}\n'),
        ("note", "spans.jsonl: 1 damaged line skipped"),
    ),
    (
        "summary without energy_j",
        _edit_json("summary.json", lambda s: s.pop("energy_j")),
        ("note", "summary.json lacks its totals"),
    ),
    ("summary torn", _write("summary.json", b'{"energy_j": {"gpu'), ("note", "is damaged")),
    (
        "timeline row with extra fields",
        _append("timeline.csv", "1678795210.0,10.0,100.0,1000.0,,extra,cells\n"),
        ("note", "timeline.csv: 1 damaged row skipped"),
    ),
    (
        "timeline with text in a number",
        _append("timeline.csv", "this,10.0,100.0,1000.0,\n"),
        ("note", "timeline.csv: 1 damaged row skipped"),
    ),
    (
        "timeline of another run",
        _write("timeline.csv", b"t_unix_s,t_mono_s,cpu0_power_w,cpu0_energy_j,gaps\n1,1,1,1,\n"),
        ("error", "does not match the channels"),
    ),
    ("events garbage", _append("events.jsonl", "not json\n[1]\n"), ("note", "events.jsonl")),
]


@pytest.mark.parametrize("case,damage,expected", CASES, ids=[c[0] for c in CASES])
def test_damaged_run_directory(
    good: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    damage: Callable[[Path], None],
    expected: tuple[str, str],
) -> None:
    run = tmp_path / "run"
    shutil.copytree(good, run)
    damage(run)
    before = sorted(p.name for p in run.iterdir())
    for argv in (
        ["summary", str(run), "--format", "json"],
        ["report", str(run), "-f", "json", "--no-plots"],
        ["whatif", str(run), "--regions", "FR", "--format", "json"],
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        kind, text = expected
        if kind == "error":
            assert code == 2, (argv, out, err)
            assert err.count("\n") == 1 and err.startswith("greentrack: ") and text in err, err
            assert "Traceback" not in err
        else:
            assert code == 0, (argv, err)
            if argv[0] == "summary":
                assert any(text in n for n in json.loads(out)["notes"]), out
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written


HOSTILE_CSVS = [
    ("inf", "timestamp,gco2e_per_kwh\n2023-03-14T12:00Z,inf\n2023-03-14T12:30Z,100\n", "line 2"),
    ("huge", "timestamp,gco2e_per_kwh\n2023-03-14T12:00Z,1e300\n2023-03-14T12:30Z,1\n", "outside"),
    ("negative", "timestamp,gco2e_per_kwh\n2023-03-14T12:00Z,-5\n2023-03-14T12:30Z,1\n", "line 2"),
    ("text", "timestamp,gco2e_per_kwh\n2023-03-14T12:00Z,this\n2023-03-14T12:30Z,1\n", "'this'"),
    (
        "duplicate",
        "timestamp,gco2e_per_kwh\n2023-03-14T12:00Z,1\n2023-03-14T12:00Z,2\n",
        "appears on lines 2, 3",
    ),
    ("empty", "", "is empty"),
    ("header only", "timestamp,gco2e_per_kwh\n", "no data rows"),
    ("bad date", "timestamp,gco2e_per_kwh\nyesterday,1\n2023-03-14T12:30Z,1\n", "not a timestamp"),
    ("no columns", "a,b\n1,2\n", "cannot find the timestamp column"),
]


@pytest.mark.parametrize("case,text,message", HOSTILE_CSVS, ids=[c[0] for c in HOSTILE_CSVS])
def test_hostile_intensity_csv(
    good: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    text: str,
    message: str,
) -> None:
    csv = tmp_path / "grid.csv"
    csv.write_text(text)
    code = main(["whatif", str(good), "--intensity-csv", str(csv), "--format", "json"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and str(csv) in err, err


@pytest.mark.parametrize(
    "case,data,message",
    [
        ("binary", b"\x00\xff\xfe\x00\x01", "not UTF-8"),
        ("latin-1", "timestamp,x\né,1\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_intensity_csv_encodings(
    good: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    data: bytes,
    message: str,
) -> None:
    csv = tmp_path / "grid.csv"
    csv.write_bytes(data)
    code = main(["whatif", str(good), "--intensity-csv", str(csv)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_rows_out_of_order_are_sorted_and_said(tmp_path: Path) -> None:
    from greentrack.carbon.series import IntensitySeries

    csv = tmp_path / "grid.csv"
    csv.write_text(
        "timestamp,gco2e_per_kwh\n2023-03-14T13:00Z,3\n2023-03-14T12:00Z,1\n2023-03-14T12:30Z,2\n"
    )
    s = IntensitySeries.from_csv(csv)
    assert s.values == (1.0, 2.0, 3.0) and any("sorted" in n for n in s.notes)


def test_hostile_names_are_escaped_in_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run"
    clock = ManualClock()
    with Tracker(
        path,
        name="<img src=x onerror=alert(1)> | *b* `c`",
        meters=[FakeMeter([FakeChannelSpec("gpu0")], clock)],
        clock=clock,
        background=False,
        command=["train.py", "--note", "a\n\nb`c"],
    ) as t:
        run_for(t, clock, 1.0)
    assert main(["summary", str(path), "--format", "md"]) == 0
    md = capsys.readouterr().out
    raw_html = re.compile(r"(?<!\\)<img")
    assert not raw_html.search(md) and "\\<img" in md
    assert main(["report", str(path), "-f", "md", "--no-plots"]) == 0
    report = capsys.readouterr().out
    assert not raw_html.search(report)
    command_line = next(ln for ln in report.splitlines() if "command `" in ln)
    assert command_line.count("`") == 2  # the command stays one code span, on one line


@pytest.mark.parametrize("bad", [-1e9, 1e400, "lots", None])
def test_a_summary_with_impossible_energy_is_damage_and_the_timeline_counts(
    tmp_path: Path, bad: object
) -> None:
    """summary.json's energy read back: negative, non-finite or not a number is damage named
    in the run's notes; the totals come from the timeline (never a negative or infinite
    total)."""
    import json
    import math

    from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
    from tests.helpers import run_for

    clock = ManualClock(1_700_000_000.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(100.0))], clock)]
    with greentrack.track(tmp_path / "r", meters=meters, clock=clock, background=False) as t:
        run_for(t, clock, 10.0, step=0.5)
    path = tmp_path / "r" / "summary.json"
    summary = json.loads(path.read_text())
    good = summary["energy_j"]["gpu0"]
    summary["energy_j"]["gpu0"] = bad
    path.write_text(json.dumps(summary).replace("Infinity", "1e400"))
    run = greentrack.load_run(tmp_path / "r")
    account = greentrack.summarize(run).account
    assert math.isfinite(account.it_kwh.high) and account.it_kwh.low >= 0
    if bad is None:  # the format's "no reading": counted as 0, and said
        assert account.it_kwh.value == 0 and any("no reading" in n for n in account.notes)
        return
    assert account.it_kwh.value * 3.6e6 == pytest.approx(good, rel=0.06)
    assert any("summary.json" in n for n in account.notes)
