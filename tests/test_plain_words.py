"""Words below the views: the account's notes, the reader's damage lines, the budget's
message, the CLI's lines and its errors reach a reader, so every module of the package is
written as the views write: real plurals (never "line(s)"), numbers by the one formatter
(never an exponent from ``:.3g``; a refused raw value quoted as ``:.6g`` on a line marked
``# raw value``), and a note's terminal advice kept apart from what it states."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import given
from hypothesis import strategies as st

import greentrack.numbers as core
import greentrack.views.numbers as views
from greentrack.account.notes import ADVICE, split_advice, with_advice, without_advice
from greentrack.analysis.budget import Budget

REPO = Path(__file__).parents[1]
ROOT = REPO / "greentrack"
# every module whose words reach a reader: the package and the framework adapters. Left out
# for now: greentrack/report/** and templates/**, which another engineer is restructuring
# (their words are checked by tests/test_report*.py); scan them here once that lands.
NOT_YET = ("greentrack/report/",)
MODULES = sorted(
    path.relative_to(REPO).as_posix()
    for base in ("greentrack", "integrations")
    for path in (REPO / base).rglob("*.py")
    if not path.relative_to(REPO).as_posix().startswith(NOT_YET)
)
# "line(s)", "process(es)", and "{what}(s)" in an f-string
MACHINE_PLURAL = re.compile(r"[A-Za-z}]\((e)?s\)")
# a format that may write an exponent: any g, e or n type (":g", ":.3g", ":,.6g", ":.2e"), or
# a precision with no type (":.3", which formats a float as g), and the same in %-formats
EXPONENT_SPEC = re.compile(r"^[^%]*(?:[gGeEn]|\.\d+)$")
PERCENT_G = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?[gGeE]")
RAW = "# raw value"
"""The marker of a line that quotes a damaged or refused value as it was given (``:.6g``,
where ``1e+300`` says what the file held): the one place an exponent may be written."""


def _literals(path: Path) -> list[tuple[int, str, bool]]:
    """The string literals of a module (an f-string joined, ``{}`` for each field) and the
    format specs of its f-strings (``{:.3g}``), each with its line and whether that line is
    marked :data:`RAW`; docstrings and other bare string statements are left out."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    bare = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant | ast.JoinedStr)
    }
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    inner |= {
        id(v)
        for n in ast.walk(tree)
        if isinstance(n, ast.FormattedValue) and n.format_spec is not None
        for v in ast.walk(n.format_spec)
    }

    def raw(first: int, last: int) -> bool:
        return any(RAW in lines[i - 1] for i in range(first, last + 1))

    out: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        if id(node) in bare:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inner:
            out.append((node.lineno, node.value, raw(node.lineno, node.end_lineno or 0)))
        elif isinstance(node, ast.JoinedStr) and id(node) not in inner:
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            out.append((node.lineno, str(text), False))
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = "".join(
                str(v.value) for v in node.format_spec.values if isinstance(v, ast.Constant)
            )
            # the field's own line (a JoinedStr that spans lines gives its first to every part)
            first, last = node.value.lineno, node.value.end_lineno or node.value.lineno
            out.append((first, f"{{:{spec}}}", raw(first, last)))
    return out


def test_the_views_formatter_is_the_bottom_layers_one() -> None:
    """views/numbers.py re-exports greentrack/numbers.py: the same objects, no copy."""
    for name in views.__all__:
        assert getattr(views, name) is getattr(core, name), name
    tree = ast.parse((ROOT / "views" / "numbers.py").read_text(encoding="utf-8"))
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == []


def _offence(text: str) -> bool:
    if MACHINE_PLURAL.search(text):
        return True
    if text.startswith("{:") and text.endswith("}"):
        return bool(EXPONENT_SPEC.match(text[2:-1]))
    return bool(PERCENT_G.search(text))


def _offences(path: Path) -> list[str]:
    """The machine plurals and the formats that may write an exponent among a module's
    literals; a format on a line marked :data:`RAW` is let through (a plural never is)."""
    return [
        f"{path.name}:{line}: {text!r}"
        for line, text, raw in _literals(path)
        if _offence(text) and not (raw and text.startswith("{:"))
    ]


def test_the_scan_covers_the_package() -> None:
    """Not an empty list: the scan reaches every layer and the adapters."""
    for module in (
        "greentrack/numbers.py",
        "greentrack/cli/estimate.py",
        "integrations/lightning.py",
    ):
        assert module in MODULES
    assert not any(m.startswith("greentrack/report/") for m in MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_words_reaching_a_reader_have_real_plurals_and_the_one_formatter(module: str) -> None:
    assert _offences(REPO / module) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above is not blind: a machine plural (also after a field), a short ``g``, a
    ``,.6g`` and a ``%g`` are found; a docstring, a ``.2f`` and a ``:.6g`` marked as a raw value
    are not, and the marker does not excuse a plural."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Docs may say line(s)."""\n'
        "x = 2.0\n"
        'n = f"{x:.3g} kWh {x:.2f} J"\n'
        'm = "3 line(s)"\n'
        'w = "GPU"\n'
        'v = f"2 {w}(s)"\n'
        'k = f"{x:,.6g} kWh"\n'
        'r = f"the file says {x:.6g} J"  # raw value\n'
        'p = "%.3g kWh" % x\n'
        'q = ("{} GPU(s)"  # raw value\n'
        "     .format(2))\n"
    )
    assert sorted(_offences(bad)) == [
        "bad.py:10: '{} GPU(s)'",
        "bad.py:3: '{:.3g}'",
        "bad.py:4: '3 line(s)'",
        "bad.py:6: '2 {}(s)'",
        "bad.py:7: '{:,.6g}'",
        "bad.py:9: '%.3g kWh'",
    ]


@given(st.integers(0, 10**6), st.sampled_from(["line", "damaged row", "meter read", "node"]))
def test_plural_is_a_word(n: int, word: str) -> None:
    text = core.plural(n, word)
    assert text == f"{n} {word}" if n == 1 else text == f"{n} {word}s"
    assert core.plural(n, "client reply", "client replies").endswith(
        "reply" if n == 1 else "replies"
    )


@given(
    st.floats(1e-12, 1e6, allow_nan=False, allow_infinity=False),
    st.floats(1e-9, 10.0, allow_nan=False, allow_infinity=False),
)
def test_a_passed_budget_never_reads_as_its_budget(limit: float, over: float) -> None:
    """A figure past its budget reads above it, in one unit and without an exponent."""
    figure = limit * (1.0 + over)
    if not figure > limit:  # rounding of a tiny ``over``: not past the budget
        return
    for message in (
        Budget(kwh=limit).check(total_kwh=figure),
        Budget(kgco2e=limit).check(total_kg=figure),
    ):
        assert message is not None and message.startswith("forecast or total ")
        shown, cap = message.removeprefix("forecast or total ").split(" > budget ")
        assert shown != cap, message
        assert shown.split(" ", 1)[1] == cap.split(" ", 1)[1]  # one unit
        assert not re.search(r"\de[+-]?\d", message), message


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_advice_comes_off_a_note_exactly(note: str, advice: str) -> None:
    if ADVICE in note or ADVICE in advice or note.endswith("."):
        return
    both = with_advice(note, advice)
    assert split_advice(both) == (note, advice)
    assert without_advice(both) == note and without_advice(note) == note


def test_advice_may_not_hold_the_separator() -> None:
    with pytest.raises(ValueError, match="separator"):
        with_advice("a note", f"one{ADVICE}two")


# --- what the command line prints ---------------------------------------------------------------
# the commands a reader runs, on figures from the tiny to the huge: their words are checked as
# printed (a float's ``{x}`` or a ``:.2f`` of a huge figure escapes the scan above)

EXPONENT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE][+-]?\d+(?![\w.])")
HEX_ID = re.compile(r"[0-9A-Fa-f-]{8,}")  # run ids and UUIDs, which may hold "1e4"
START = 1_700_000_000.0
SECONDS = 60.0


def _plain(text: str) -> list[str]:
    """The lines of ``text`` that print an exponent or a machine plural."""
    return [
        line
        for line in text.splitlines()
        if EXPONENT.search(HEX_ID.sub("", line)) or MACHINE_PLURAL.search(line)
    ]


def test_the_output_check_finds_what_it_looks_for() -> None:
    text = "a 1e+300 J\nb 2.5e-07 kWh\nc 3 GPU(s)\nrun 3e45f001 (GPU-001e-4567)\nd 4.20 Wh\n"
    assert _plain(text) == ["a 1e+300 J", "b 2.5e-07 kWh", "c 3 GPU(s)"]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from greentrack.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out + err


def _run(path: Path, gpu_w: float) -> Path:
    """A minute of a GPU drawing ``gpu_w`` (the real tracker over a fake NVML), in DE."""
    import greentrack
    from greentrack.meters.fake import FakeGpu, FakeNvml, ManualClock, PowerTrace
    from tests.helpers import run_for

    clock = ManualClock(START)
    tracker = greentrack.track(
        path,
        clock=clock,
        background=False,
        sync="none",
        rank=None,
        nvml=FakeNvml([FakeGpu(trace=PowerTrace.constant(gpu_w))], clock),
        cpu=False,
        environ={},
        region="DE",
        pue=1.5,
    )
    with tracker:
        run_for(tracker, clock, SECONDS, step=1.0)
    return path


def _meter(path: Path, watts: float) -> Path:
    """A wall meter read every second from 5 s before the run to 5 s after it."""
    rows = ["time,watts"]
    rows += [f"{START + t:.3f},{watts:.9f}" for t in range(-5, round(SECONDS) + 6)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _series(path: Path) -> Path:
    """An hourly intensity series around the run, from 40 to 700 gCO2e/kWh."""
    from datetime import datetime, timezone

    rows = ["timestamp,gco2e_per_kwh"]
    for h in range(-24, 72):
        t = datetime.fromtimestamp(START - START % 3600 + h * 3600, timezone.utc)
        rows.append(f"{t.isoformat()},{40 + (h * 97) % 660}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("gpu_w", [0.0004, 350.0])
def test_summary_whatif_and_calibrate_print_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gpu_w: float
) -> None:
    """A run of micro-watt-hours (a GPU idling at 0.4 mW) and one of a busy GPU."""
    run = str(_run(tmp_path / "run", gpu_w))
    meter = str(_meter(tmp_path / "meter.csv", gpu_w * 1.3))
    series = str(_series(tmp_path / "series.csv"))
    shifted = ["--flexible-start", "24h", "--pause-resume", "2x"]
    printed = {
        "summary": _cli(["summary", run], capsys),
        "whatif": _cli(
            ["whatif", run, "--regions", "all", "--intensity-csv", series, "--tz", "UTC", *shifted],
            capsys,
        ),
        "calibrate": _cli(["calibrate", run, "--meter", meter], capsys),
    }
    assert "µWh" in printed["summary"] if gpu_w < 1 else "Wh" in printed["summary"]
    assert "Flexible Start" in printed["whatif"] and "correction factor" in printed["calibrate"]
    for command, text in printed.items():
        assert _plain(text) == [], command


@pytest.mark.parametrize(
    "plan",
    [
        ["--count", "1", "--power-w", "0.001", "--hours", "0.0001", "--intensity", "0.01"],
        ["--count", "1000000", "--power-w", "5000", "--hours", "1000000", "--region", "ZA"],
        [
            *("--count", "8", "--processor", "h100-sxm5-80gb", "--flops", "1e32"),
            *("--utilization", "0.01", "--region", "FR", "--sensitivity"),
        ],
        ["--count", "1", "--processor", "t4", "--flops", "1000", "--utilization", "1"],
    ],
)
def test_estimate_prints_plain_words(capsys: pytest.CaptureFixture[str], plan: list[str]) -> None:
    text = _cli(["estimate", *plan], capsys)
    assert text.startswith("estimate (not a measurement): ")
    assert _plain(text) == []


def test_devices_prints_plain_words(capsys: pytest.CaptureFixture[str]) -> None:
    text = _cli(["devices"], capsys)
    assert text.startswith("greentrack devices") and _plain(text) == []


@pytest.mark.parametrize("energy", [["--energy-kwh", "1e-9"], ["--energy-kwh", "1e9"]])
def test_when_prints_plain_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], energy: list[str]
) -> None:
    """``when`` on a forecast served by a local UK Carbon Intensity API (tests/test_providers.py),
    for a job of a nano-kilowatt-hour and one of a terawatt-hour."""
    from tests.test_providers import Api, ukci_app, utc

    server = Api()
    monkeypatch.setenv("GREENTRACK_UKCI_URL", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server.app = ukci_app(
        lambda t: 100 if utc("2024-03-14T05:00Z") <= t < utc("2024-03-14T06:30Z") else 200
    )
    try:
        job = ["--hours", "1.5", "--within", "12h", "--now", "2024-03-14T00:10Z", *energy]
        text = _cli(["when", "--provider", "ukci", "--region", "GB", *job], capsys)
    finally:
        server.close()
    assert "at the best start" in text and _plain(text) == []
