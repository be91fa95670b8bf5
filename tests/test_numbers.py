"""One number formatter (greentrack.views.numbers) for every view: properties of its columns
over any mix of magnitudes, and the views that must use it."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

from greentrack.account import Figure
from greentrack.views.numbers import (
    DASH,
    ENERGY,
    MASS,
    MAX_DECIMALS,
    PLAIN,
    SHARE,
    Scale,
    column,
    leading_zeros,
    quantities,
    quantity,
    quantity_range,
    share,
)

ROOT = Path(__file__).parents[1]
SCALES = [ENERGY, MASS, PLAIN, SHARE]
# any magnitude a report can meet: a microjoule's kWh to a cluster-year's, zeros, and None
magnitude = st.floats(1e-13, 1e9, allow_nan=False, allow_infinity=False)
values = st.lists(st.one_of(magnitude, st.just(0.0), st.none()), min_size=1, max_size=12)


def _decimals_of(cell: str) -> int:
    digits = cell.lstrip("<-")
    return len(digits.split(".")[1]) if "." in digits else 0


def _significant(cell: str) -> int:
    """Significant digits a cell claims (trailing zeros of an integer are placeholders)."""
    digits = cell.lstrip("<-").replace(".", "").lstrip("0")
    return len(digits.rstrip("0")) if "." not in cell else len(digits)


@settings(max_examples=400, deadline=None)
@given(xs=values, scale=st.sampled_from(SCALES))
def test_a_column_of_any_magnitudes_reads_one_way(xs: list[float | None], scale: Scale) -> None:
    """One unit per column (one of its scale's), the same decimals in every cell, never more
    than two leading zeros nor three significant figures, no exponent, and each cell within
    its rounding of the value (a figure too small for the column reads "<0.01", never 0)."""
    c = column(xs, scale)
    assert c.unit in [u for u, _ in scale.units]
    assert 0 <= c.decimals <= MAX_DECIMALS
    for x in xs:
        cell = c.cell(x)
        if x is None:
            assert cell == "n/a"
            continue
        assert not re.search(r"[eE]", cell), cell
        assert leading_zeros(cell) <= 2, (xs, cell)
        assert _decimals_of(cell) == c.decimals, (xs, c, cell)
        assert _significant(cell) <= c.sig or x == 0, (x, cell)
        v = x * c.factor
        if cell.startswith("<"):
            assert 0 < v < float(cell[1:]), (x, cell)
            continue
        step = max(10.0**-c.decimals, 10.0 ** (math.floor(math.log10(v)) - c.sig + 1) if v else 0)
        assert abs(float(cell) - v) <= step / 2 * (1 + 1e-9) + 1e-12, (x, cell, step)


@settings(max_examples=400, deadline=None)
@given(
    xs=st.lists(magnitude, min_size=1, max_size=8),
    low=st.floats(0.05, 1.0),
    high=st.floats(1.0, 20.0),
    scale=st.sampled_from([ENERGY, MASS, PLAIN]),
)
def test_ranges_are_rounded_outward_in_their_column(
    xs: list[float], low: float, high: float, scale: Scale
) -> None:
    """Every range, printed in its column's unit and decimals, contains the computed one."""
    c = column(xs, scale)
    for x in xs:
        lo, hi = x * low, x * high
        text = c.range(lo, hi)
        if lo == hi:
            assert text == "exact"
            continue
        a, b = text.split(DASH)
        assert _decimals_of(a) == _decimals_of(b) == c.decimals, text
        assert leading_zeros(a) <= 2 and leading_zeros(b) <= 2, text
        assert Decimal(a) <= Decimal(repr(lo * c.factor)) * Decimal("1.000000001"), (lo, a)
        assert Decimal(b) >= Decimal(repr(hi * c.factor)) * Decimal("0.999999999"), (hi, b)


@settings(max_examples=300, deadline=None)
@given(x=magnitude, low=st.floats(0.05, 1.0), high=st.floats(1.0, 20.0))
def test_prose_writes_a_figure_and_its_range_as_one_column(
    x: float, low: float, high: float
) -> None:
    text = quantity_range(x, x * low, x * high, ENERGY)
    m = re.fullmatch(r"(\S+) (\S+) \((\S+)\u2013(\S+) (\S+)\)", text)
    if low == high == 1.0:
        assert m is None
        return
    assert m is not None, text
    value, unit, a, b, unit2 = m.groups()
    assert unit == unit2  # one unit for the figure and its range
    assert len({_decimals_of(value), _decimals_of(a), _decimals_of(b)}) == 1, text
    assert all(leading_zeros(t) <= 2 for t in (value, a, b)), text


def test_the_unit_follows_the_magnitudes_a_column_holds() -> None:
    # the column: tiny and large items together no longer read "0.00000319"
    c = column([3.19e-3, 1.3e-3, 5.8e-3, 54_400.0], MASS)  # no unit shows 3 mg beside 54 kg
    assert c.unit == "kg" and [c.cell(x) for x in (3.19e-3, 54_400.0)] == ["<0.1", "54.4"]
    c = column([3.19, 1.3, 54_400.0], MASS)  # grams show the small ones: grams it is
    assert c.unit == "g" and [c.cell(x) for x in (3.19, 54_400.0)] == ["3", "54400"]
    assert column([128.0, 7.2, 0.9, 0.0104], ENERGY).unit == "Wh"  # runs stay visible
    assert column([2.5], ENERGY).unit == "kWh" and column([0.0025], ENERGY).unit == "Wh"
    assert column([1534.0], MASS).unit == "kg" and column([2.5e6], MASS).unit == "t"
    assert column([4e-10], ENERGY).unit == "\u00b5Wh" and column([4e-7], MASS).unit == "\u00b5g"
    # trailing zeros kept: "24.0" beside "36.5", never "24"
    assert [column([24.0, 36.5], PLAIN).cell(x) for x in (24.0, 36.5)] == ["24.0", "36.5"]
    # summaries: one unit in a sentence, never "0 kWh measured, 65.66 Wh estimated"
    assert quantities([0.0, 0.06566]) == ["0.0 Wh", "65.7 Wh"]
    assert quantity(0.00001214) == "12.1 mWh"


def test_shares_read_alike_in_every_format() -> None:
    assert [share(x) for x in (1.0, 0.0, 0.45, 0.004)] == ["100%", "0%", "45.0%", "0.400%"]
    c = column([1.0, 0.935, 0.0001], SHARE)
    assert [c.text(x) for x in (1.0, 0.935, 0.0001)] == ["100%", "94%", "<1%"]


def test_the_summary_and_the_report_write_a_figure_alike() -> None:
    from greentrack.report.numbers import energy_range, mass_range
    from greentrack.views.summary import format_kwh, format_range

    f = Figure(0.0042, 0.004, 0.0045)
    assert format_range(f) == energy_range(f.value, f.low, f.high) == "4.20 Wh (4.00–4.50 Wh)"
    assert format_range(Figure(1534.0, 1249.0, 1901.0), "mass") == mass_range(
        1534.0, 1249.0, 1901.0
    )
    assert format_kwh(0.0042) == quantity(0.0042)


def test_no_view_keeps_a_formatter_of_its_own() -> None:
    """Significant-figure formats ("%.4g", ":.3g", ":g") live in greentrack.views.numbers
    alone among the views, the report and the templates."""
    files = [
        *ROOT.joinpath("greentrack", "views").glob("*.py"),
        *ROOT.joinpath("greentrack", "report").glob("*.py"),
        *ROOT.joinpath("templates").glob("*.j2"),
    ]
    pattern = re.compile(r":\.?\d*g\}|%\.\d+g")
    found = [
        f"{path.name}:{i}: {line.strip()}"
        for path in files
        if path.name not in ("numbers.py", "api.py")  # api: error messages of its options
        for i, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []
