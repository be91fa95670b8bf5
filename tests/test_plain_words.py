"""Words below the views: the account's notes, the reader's damage lines and the budget's
message reach the summary, the CLI and the report, so they are written as the views write:
real plurals (never "line(s)"), numbers by the one formatter (never an exponent from
``:.3g``), and a note's terminal advice kept apart from what it states."""

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

ROOT = Path(__file__).parents[1] / "greentrack"
# the modules whose words were made plain; each stays so (a module not listed here may still
# hold a "(s)" or a ":.3g": docs/architecture.md, "Words below the views")
PLAIN = [
    "account/build.py",
    "account/federated.py",
    "account/notes.py",
    "account/tiers.py",
    "analysis/budget.py",
    "rundir/reader.py",
    "rundir/checks.py",
    "views/summary.py",
]
MACHINE_PLURAL = re.compile(r"[A-Za-z]\((e)?s\)")
# a significant-figure format of fewer than six figures (":g", ":.3g", ":.4g"): an exponent
# for a small or large figure; ":.6g" is left to the values a damaged file holds ("1e+300")
SHORT_G = re.compile(r"^\.?[1-5]?g$")


def _literals(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module and the format specs of its f-strings (docstrings and
    other bare string statements left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bare = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = "".join(
                str(v.value) for v in node.format_spec.values if isinstance(v, ast.Constant)
            )
            out.append((node.lineno, f"{{:{spec}}}"))
    return out


def test_the_views_formatter_is_the_bottom_layers_one() -> None:
    """views/numbers.py re-exports greentrack/numbers.py: the same objects, no copy."""
    for name in views.__all__:
        assert getattr(views, name) is getattr(core, name), name
    tree = ast.parse((ROOT / "views" / "numbers.py").read_text(encoding="utf-8"))
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == []


def _offences(path: Path) -> list[str]:
    """The machine plurals and short ``g`` formats among a module's literals."""
    return [
        f"{path.name}:{line}: {text!r}"
        for line, text in _literals(path)
        if MACHINE_PLURAL.search(text) or (text.startswith("{:") and SHORT_G.match(text[2:-1]))
    ]


@pytest.mark.parametrize("module", PLAIN)
def test_words_below_the_views_have_real_plurals_and_the_one_formatter(module: str) -> None:
    assert _offences(ROOT / module) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above is not blind: a machine plural and a short ``g`` format are found, a
    docstring and a ``:.6g`` are not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Docs may say line(s)."""\nx = 2.0\nn = f"{x:.3g} kWh {x:.6g} J"\nm = "3 line(s)"\n'
    )
    assert sorted(_offences(bad)) == ["bad.py:3: '{:.3g}'", "bad.py:4: '3 line(s)'"]


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
