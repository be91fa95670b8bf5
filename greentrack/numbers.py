"""How greentrack writes numbers: one formatter for every view (summary, report tables, prose,
figure axes, LaTeX, Markdown, HTML, the model card and the human strings of JSON) and for the
words the layers below write (the account's notes, the reader's damage lines), which reach
those views. It sits in the bottom layer, so that every layer may import it;
:mod:`greentrack.views.numbers` is the views' name for it (the same functions, no copy).

The rule (docs/report.md, "How numbers are written"):

* **A unit per column**, chosen from the magnitudes the column holds: energy in µWh, mWh, Wh,
  kWh or MWh, CO2e in µg, mg, g, kg or t. The column takes the unit in which its largest
  figure reads from 1 to 999, unless a smaller unit, in which the largest figure keeps at
  most :data:`MAX_INTEGER_DIGITS` digits, shows more of its figures (fewer read ``<1``): then
  the largest such unit. A figure axis is a column of the values it plots.
* **Three significant figures** (:data:`SIGNIFICANT`) for the column's largest figure; every
  figure of the column is written to the **same decimals** (trailing zeros kept: ``24.0``
  beside ``36.5``, never ``24``), and never to more than three significant figures (a large
  figure of an integer column reads ``136000``). A non-zero figure too small for the column's
  decimals reads ``<0.01`` (never ``0.00``: it is not zero).
* **Never more than two leading zeros**: a column has at most three decimals, so the smallest
  non-zero figure it prints is ``0.00x``; below that it switches to a smaller unit instead.
* **Ranges are rounded outward**: a low bound down, a high bound up, each with the decimals of
  its column, so the printed range always contains the one computed.
* **Prose** writes a figure, or a figure and its range, as a column of those numbers: three
  significant figures (at most four, ``sig=4``), its own unit.
* **Shares** are percentages written the same way (``100%``, ``45.0%``, ``<1%``).

>>> c = column([0.0042, 0.012, 0.0005], ENERGY)
>>> c.unit, [c.cell(x) for x in (0.0042, 0.012, 0.0005)]
('Wh', ['4.2', '12.0', '0.5'])
>>> quantity(2.5, ENERGY), quantity_range(1534.0, 1249.0, 1901.0, MASS)
('2.50 kWh', '1.53 kg (1.24\u20131.91 kg)')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal, TypeGuard

SIGNIFICANT = 3
"""Significant figures of a column's largest figure, and of a figure in prose."""
MAX_DECIMALS = 3
"""At most ``0.00x``: never more than two zeros between the point and the first digit."""
MAX_INTEGER_DIGITS = 6
"""A column takes a smaller unit only while its largest figure keeps at most this many digits
(``136000`` Wh rather than ``136`` kWh beside a row that would read ``<1``)."""
DASH = "\u2013"
"""The dash of a range (``4.20\u20134.50``), in every format."""

Rounding = Literal["nearest", "down", "up"]
_MODE = {"nearest": ROUND_HALF_EVEN, "down": ROUND_FLOOR, "up": ROUND_CEILING}


@dataclass(frozen=True, slots=True)
class Scale:
    """The units a quantity can be written in, largest first, each with its factor from the
    base unit the figures are kept in (kWh, grams...)."""

    name: str
    units: tuple[tuple[str, float], ...]
    base: str
    attached: bool = False  # the unit follows the number without a space ("45%")

    def factor(self, unit: str) -> float:
        for name, factor in self.units:
            if name == unit:
                return factor
        raise KeyError(f"{unit!r} is not a unit of {self.name}")


ENERGY = Scale(
    "energy",
    (("MWh", 1e-3), ("kWh", 1.0), ("Wh", 1e3), ("mWh", 1e6), ("\u00b5Wh", 1e9)),
    "kWh",
)
"""Energy kept in kWh."""
MASS = Scale(
    "mass",
    (("t", 1e-6), ("kg", 1e-3), ("g", 1.0), ("mg", 1e3), ("\u00b5g", 1e6)),
    "g",
)
"""CO2e mass kept in grams."""
DATA = Scale("data", (("TB", 1e-12), ("GB", 1e-9), ("MB", 1e-6), ("kB", 1e-3), ("B", 1.0)), "B")
"""Bytes (network traffic), decimal prefixes as the network coefficients use them."""
SHARE = Scale("share", (("%", 100.0),), "%", attached=True)
"""A fraction (0.45) written as a percentage (45.0%)."""
PLAIN = Scale("plain", (("", 1.0),), "")
"""A number in a unit of its own (GPU-hours, W, gCO2e/kWh, PUE): no prefixes."""
SCALES = {s.name: s for s in (ENERGY, MASS, DATA, SHARE, PLAIN)}


def _finite(x: float | None) -> TypeGuard[float]:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def _exponent(x: float) -> int:
    """The decimal exponent of ``x`` (``0.042`` -> -2), exact at powers of ten."""
    return Decimal(repr(float(abs(x)))).adjusted()


def _decimals(largest: float, sig: int) -> int:
    """Decimals that give ``largest`` ``sig`` significant figures (0 to :data:`MAX_DECIMALS`),
    counted after rounding: 0.99999 rounds to 1.00, two decimals, not 1.000.

    >>> _decimals(0.99999, 3), _decimals(0.998, 3), _decimals(99.96, 3)
    (2, 3, 0)
    """
    if largest > 0 and math.isfinite(largest):
        largest = float(_rounded(largest, MAX_DECIMALS, sig, "nearest")) or largest
    return min(max(sig - 1 - _exponent(largest), 0), MAX_DECIMALS)


def _rounded(x: float, decimals: int, sig: int, rounding: Rounding) -> Decimal:
    """``x`` to ``decimals`` decimals but never to more than ``sig`` significant figures, in
    decimal arithmetic (the float's last-bit noise, ``18.000000000000004``, is dropped first
    so that it cannot move a bound)."""
    d = Decimal(repr(float(x)))
    d = d.quantize(Decimal(1).scaleb(d.adjusted() - 11), rounding=ROUND_HALF_EVEN)
    step = max(-decimals, d.adjusted() - sig + 1)
    out = d.quantize(Decimal(1).scaleb(step), rounding=_MODE[rounding])
    if out.adjusted() - sig + 1 > step:  # 999.7 -> 1000: one more digit than sig; round again
        out = out.quantize(Decimal(1).scaleb(out.adjusted() - sig + 1), rounding=_MODE[rounding])
    return out


@dataclass(frozen=True, slots=True)
class Column:
    """How every figure of one column (a table column, an axis, a figure and its range in
    prose) is written: its ``unit``, the ``factor`` from the base unit, its ``decimals``."""

    unit: str
    factor: float
    decimals: int
    sig: int = SIGNIFICANT
    attached: bool = False

    def cell(self, x: float | None, rounding: Rounding = "nearest") -> str:
        """``x`` (base unit) in this column's unit and decimals, without the unit; ``'n/a'``
        for none. A non-zero figure too small for the decimals reads ``<0.01``."""
        if not _finite(x):
            return "n/a"
        v = float(x) * self.factor
        if v == 0:
            return f"{0:.{self.decimals}f}"
        out = _rounded(v, self.decimals, self.sig, rounding)
        if out == 0 and rounding == "nearest":
            tiny = f"{Decimal(1).scaleb(-self.decimals):f}"
            return f"<{tiny}" if v > 0 else f"{0:.{self.decimals}f}"
        text = format(out, f".{self.decimals}f")
        return "0" + text[2:] if text.startswith("-0") and out == 0 else text

    def text(self, x: float | None) -> str:
        """``x`` with its unit (``'4.20 Wh'``, ``'45.0%'``)."""
        return self.with_unit(self.cell(x)) if _finite(x) else "n/a"

    def with_unit(self, number: str) -> str:
        if not self.unit:
            return number
        return f"{number}{self.unit}" if self.attached else f"{number} {self.unit}"

    def bounds(self, low: float | None, high: float | None) -> tuple[str, str]:
        """A range's bounds, rounded outward (low down, high up)."""
        return self.cell(low, "down"), self.cell(high, "up")

    def range(self, low: float | None, high: float | None) -> str:
        """``'lo\u2013hi'`` rounded outward, ``'exact'`` when ``low == high`` (never ``x\u2013x``
        for a figure without a spread), empty when unknown."""
        if not (_finite(low) and _finite(high)):
            return ""
        if low == high:
            return "exact"
        lo, hi = self.bounds(low, high)
        return f"{lo}{DASH}{hi}"

    def range_text(self, low: float | None, high: float | None) -> str:
        """The range with its unit (``'4.00\u20134.50 Wh'``); empty when exact or unknown."""
        spread = self.range(low, high)
        return "" if spread in ("", "exact") else self.with_unit(spread)

    def value_range(self, x: float | None, low: float | None, high: float | None) -> str:
        """``'4.20 Wh (4.00\u20134.50 Wh)'``: the figure and its range (alone when exact)."""
        spread = self.range_text(low, high)
        return f"{self.text(x)} ({spread})" if spread and _finite(x) else self.text(x)


def column(
    values: Iterable[float | None], scale: Scale | str = ENERGY, sig: int = SIGNIFICANT
) -> Column:
    """The column of ``values`` (in ``scale``'s base unit; ``None`` and non-finite ignored).

    >>> c = column([136.0, 128.0, 7.2, 0.0104], ENERGY)   # kWh: 0.0104 would read "0"
    >>> c.unit, c.decimals, [c.cell(x) for x in (136.0, 7.2, 0.0104)]
    ('Wh', 0, ['136000', '7200', '10'])
    >>> c = column([24.0, 36.5, 12.25], PLAIN)
    >>> [c.cell(x) for x in (24.0, 36.5, 12.25)]
    ['24.0', '36.5', '12.2']
    >>> c = column([1.0, 0.45, 0.001], SHARE)
    >>> [c.text(x) for x in (1.0, 0.45, 0.001, 0.0)]
    ['100%', '45%', '<1%', '0%']
    """
    s = SCALES[scale] if isinstance(scale, str) else scale
    mags = [abs(float(v)) for v in values if _finite(v) and v != 0]
    units = s.units
    if not mags:
        return Column(s.base, s.factor(s.base), 0, sig, s.attached)
    hi = max(mags)
    natural = next((k for k, (_, f) in enumerate(units) if hi * f >= 1.0), len(units) - 1)
    best: tuple[int, str, float, int] | None = None
    for unit, factor in units[natural:]:
        if unit != units[natural][0] and hi * factor >= 10**MAX_INTEGER_DIGITS:
            break
        decimals = _decimals(hi * factor, sig)
        shown = sum(1 for m in mags if _rounded(m * factor, decimals, sig, "nearest") != 0)
        if best is None or shown > best[0]:  # a smaller unit only where it shows more figures
            best = (shown, unit, factor, decimals)
    assert best is not None
    return Column(best[1], best[2], best[3], sig, s.attached)


def in_column(values: Iterable[float | None], scale: Scale | str = ENERGY) -> list[str]:
    """Every value of a column as its cell (a list of strings), in one call.

    >>> in_column([2.0, 0.5, None], MASS)
    ['2.00', '0.50', 'n/a']
    """
    vals = list(values)
    c = column(vals, scale)
    return [c.cell(v) for v in vals]


def quantity(x: float | None, scale: Scale | str = ENERGY, sig: int = SIGNIFICANT) -> str:
    """One figure in prose, in the unit that reads best.

    >>> quantity(1523.0), quantity(0.0042), quantity(0.0000523), quantity(0.0), quantity(None)
    ('1.52 MWh', '4.20 Wh', '52.3 mWh', '0 kWh', 'n/a')
    >>> quantity(1534.0, MASS), quantity(0.00043, MASS), quantity(1234.5678, MASS, 4)
    ('1.53 kg', '430 \u00b5g', '1.235 kg')
    """
    return column([x], scale, sig).text(x)


def quantities(
    xs: Iterable[float | None], scale: Scale | str = ENERGY, sig: int = SIGNIFICANT
) -> list[str]:
    """Figures that a sentence sets side by side, in one unit ("0.0 Wh measured, 65.7 Wh
    estimated", never "0 kWh measured, 65.66 Wh estimated").

    >>> quantities([0.0, 0.06566])
    ['0.0 Wh', '65.7 Wh']
    """
    vals = list(xs)
    c = column(vals, scale, sig)
    return [c.text(v) for v in vals]


def quantity_range(
    x: float | None,
    low: float | None,
    high: float | None,
    scale: Scale | str = ENERGY,
    sig: int = SIGNIFICANT,
) -> str:
    """A figure and its range (rounded outward) in one unit and one precision; the figure
    alone when its range is exact.

    >>> quantity_range(0.0042, 0.004, 0.0045), quantity_range(2.0, 2.0, 2.0)
    ('4.20 Wh (4.00\u20134.50 Wh)', '2.00 kWh')
    """
    return column([x, low, high], scale, sig).value_range(x, low, high)


def share(x: float | None) -> str:
    """A fraction as a percentage, written as a share column writes it.

    >>> share(0.12345), share(1.0), share(0.0), share(0.004), share(None)
    ('12.3%', '100%', '0%', '0.400%', 'n/a')
    """
    return column([x], SHARE).text(x)


def num(x: float | None, sig: int = SIGNIFICANT, rounding: Rounding = "nearest") -> str:
    """A setting or a parameter (PUE, Hz, a metric's target, a year's intensity) to ``sig``
    significant figures, trailing zeros dropped, never in exponent notation; ``'n/a'`` for
    none. Measured and estimated figures go through :func:`column` instead.

    >>> num(1234.5678), num(0.000123456), num(12.0), num(None), num(1234567.0, 4)
    ('1230', '0.000123', '12', 'n/a', '1235000')
    >>> num(149.4, 2, "down"), num(605.0, 2, "up"), num(18.000000000000004, 3, "down")
    ('140', '610', '18')
    """
    if not _finite(x):
        return "n/a"
    if x == 0:
        return "0"
    out = _rounded(float(x), 40, sig, rounding)
    text = format(out, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def bounds(low: float | None, high: float | None, sig: int = SIGNIFICANT) -> tuple[str, str]:
    """A range's low and high to ``sig`` significant figures, rounded outward, as numbers
    (the model card's machine-readable range).

    >>> bounds(149.4, 605.0, 2), bounds(34.46, 81.94)
    (('140', '610'), ('34.4', '82'))
    """
    return num(low, sig, "down"), num(high, sig, "up")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` with a real plural (never "item(s)").

    >>> plural(1, "run"), plural(3, "run"), plural(2, "declared item"), plural(0, "GPU")
    ('1 run', '3 runs', '2 declared items', '0 GPUs')
    >>> plural(2, "package"), plural(2, "process", "processes")
    ('2 packages', '2 processes')
    """
    return f"{n} {word if n == 1 else (many or word + 's')}"


def duration(seconds: float | None, sig: int = SIGNIFICANT) -> str:
    """A duration in the unit that reads best (s, min, h or days).

    >>> duration(45.0), duration(600.0), duration(9000.0), duration(259200.0), duration(None)
    ('45 s', '10 min', '2.5 h', '3 days', 'n/a')
    """
    if not _finite(seconds):
        return "n/a"
    if seconds >= 2 * 86400:
        return f"{num(seconds / 86400, sig)} days"
    if seconds >= 2 * 3600:
        return f"{num(seconds / 3600, sig)} h"
    if seconds >= 120:
        return f"{num(seconds / 60, sig)} min"
    return f"{num(seconds, sig)} s"


def when(iso: str | None) -> str:
    """A UTC timestamp as a paper writes it: to the minute (``2023-03-14 12:00 UTC``), not
    ``2023-03-14T12:00:00.000+00:00``; the text itself when it is not a timestamp.

    >>> when("2023-03-14T12:00:00.000+00:00"), when("2023-03-14T13:30:59.9+01:00"), when("n/a")
    ('2023-03-14 12:00 UTC', '2023-03-14 12:30 UTC', 'n/a')
    """
    from datetime import datetime, timezone

    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return f"{t:%Y-%m-%d %H:%M} UTC"


def leading_zeros(cell: str) -> int:
    """Zeros between the decimal point and the first non-zero digit of a written number
    (``'0.0042'`` -> 2; ``'0.00'``, ``'12'`` -> 0): the count no cell may take above 2.

    >>> [leading_zeros(c) for c in ("0.0042", "<0.001", "0.000", "12")]
    [2, 2, 0, 0]
    """
    digits = cell.lstrip("<-")
    if not digits.startswith("0.") or not digits[2:].strip("0"):
        return 0
    return len(digits[2:]) - len(digits[2:].lstrip("0"))
