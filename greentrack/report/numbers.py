"""How a report writes numbers: one place, so every format shows the same digits.

One rounding per figure in a document: every figure is written to :data:`SIGNIFICANT`
significant digits, in text and in table cells alike, so the sentence and the table that show
the same figure print the same digits. A range is rounded outward (its low down, its high up),
so the printed range always contains the one computed.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

SIGNIFICANT = 3

Rounding = Literal["nearest", "down", "up"]
_DECIMAL_MODE = {"down": ROUND_FLOOR, "up": ROUND_CEILING}


def num(x: float | None, sig: int = SIGNIFICANT, rounding: Rounding = "nearest") -> str:
    """``x`` to ``sig`` significant digits, without exponent notation; ``'n/a'`` for none.
    ``rounding``: to the nearest (a value), ``down`` (a range's low) or ``up`` (its high).

    >>> num(1234.5678), num(0.000123456), num(12.0), num(None), num(1234567.0, 4)
    ('1230', '0.000123', '12', 'n/a', '1235000')

    A range's bounds are rounded outward:

    >>> num(81.94), num(34.46), num(34.46, rounding="down"), num(81.94, rounding="up")
    ('81.9', '34.5', '34.4', '82')
    >>> num(149.4, 2, "down"), num(605.0, 2, "up"), num(18.000000000000004, 3, "down")
    ('140', '610', '18')
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if rounding != "nearest":
        return _directed(x, sig, rounding)
    digits = sig - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, digits)
    if digits <= 0:
        return f"{rounded:.0f}"
    text = f"{rounded:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _directed(x: float, sig: int, rounding: Rounding) -> str:
    """``x`` rounded down or up to ``sig`` significant digits (decimal arithmetic; the float's
    last-bit noise, ``18.000000000000004``, is dropped first so it cannot move a bound)."""
    d = Decimal(repr(float(x)))
    d = d.quantize(Decimal(1).scaleb(d.adjusted() - 11), rounding=ROUND_HALF_EVEN)
    rounded = d.quantize(
        Decimal(1).scaleb(d.adjusted() - sig + 1), rounding=_DECIMAL_MODE[rounding]
    )
    text = format(rounded, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def bounds(low: float | None, high: float | None, sig: int = SIGNIFICANT) -> tuple[str, str]:
    """A range's low and high to ``sig`` significant digits, rounded outward.

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


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal.

    >>> pct(0.12345), pct(None)
    ('12.3%', 'n/a')
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    text = f"{x * 100:.1f}%"
    return "0.0%" if text == "-0.0%" else text


def energy(kwh: float | None, sig: int = SIGNIFICANT) -> str:
    """Energy in the unit that keeps the number readable (:func:`energy_unit`: MWh, kWh, Wh
    or mWh), the one a table column of this figure alone would take.

    >>> energy(1523.0), energy(2.5), energy(0.0042), energy(0.0000523), energy(0.0)
    ('1.52 MWh', '2.5 kWh', '4.2 Wh', '52.3 mWh', '0 kWh')
    """
    if kwh is None or not math.isfinite(kwh):
        return "n/a"
    unit = energy_unit([kwh])
    return f"{in_unit(kwh, unit, sig)} {unit}"


def mass(grams: float | None, sig: int = SIGNIFICANT) -> str:
    """CO2e mass in the unit that reads best (:func:`mass_unit`: t, kg, g, mg or µg).

    >>> mass(1534.0), mass(12.0), mass(2.5e6), mass(0.00043)
    ('1.53 kg', '12 g', '2.5 t', '430 µg')
    """
    if grams is None or not math.isfinite(grams):
        return "n/a"
    unit = mass_unit([grams])
    return f"{in_unit(grams, unit, sig)} {unit}"


def duration(seconds: float, sig: int = SIGNIFICANT) -> str:
    """A duration in the unit that reads best (s, min, h or days).

    >>> duration(45.0), duration(600.0), duration(9000.0), duration(259200.0)
    ('45 s', '10 min', '2.5 h', '3 days')
    """
    if seconds >= 2 * 86400:
        return f"{num(seconds / 86400, sig)} days"
    if seconds >= 2 * 3600:
        return f"{num(seconds / 3600, sig)} h"
    if seconds >= 120:
        return f"{num(seconds / 60, sig)} min"
    return f"{num(seconds, sig)} s"


def span(
    value: float | None,
    low: float | None,
    high: float | None,
    fmt: Any,
    sig: int = SIGNIFICANT,
) -> str:
    """The range alone, in the unit ``fmt`` chooses for ``value``, rounded outward (empty
    when exact).

    >>> span(0.0042, 0.004, 0.0045, energy), span(2.0, 2.0, 2.0, energy)
    ('4-4.5 Wh', '')
    >>> span(60.0, 34.46, 81.94, mass)
    '34.4-82 g'
    """
    if value is None or low is None or high is None or low == high:
        return ""
    unit = fmt(value, sig).split()[-1]
    lo, hi = bounds(low * _SCALE[unit], high * _SCALE[unit], sig)
    return f"{lo}-{hi} {unit}"


def energy_range(
    kwh: float | None, low: float | None, high: float | None, sig: int = SIGNIFICANT
) -> str:
    """Energy with its range (rounded outward), in the unit of the value.

    >>> energy_range(0.0042, 0.004, 0.0045), energy_range(2.0, 2.0, 2.0)
    ('4.2 Wh (4-4.5 Wh)', '2 kWh')
    """
    text = energy(kwh, sig)
    spread = span(kwh, low, high, energy, sig)
    return f"{text} ({spread})" if spread else text


def mass_range(
    grams: float | None, low: float | None, high: float | None, sig: int = SIGNIFICANT
) -> str:
    """CO2e mass with its range (rounded outward), in the unit of the value.

    >>> mass_range(1534.0, 1249.0, 1901.0)
    '1.53 kg (1.24-1.91 kg)'
    """
    text = mass(grams, sig)
    spread = span(grams, low, high, mass, sig)
    return f"{text} ({spread})" if spread else text


# --- table columns: one unit per column -----------------------------------------------------

TABLE_SIGNIFICANT = SIGNIFICANT  # one rounding of a figure, in a table as in the text
_ENERGY_UNITS = (
    ("MWh", 1e-3, 1000.0),
    ("kWh", 1.0, 1.0),
    ("Wh", 1e3, 1e-3),
    ("mWh", 1e6, 0.0),
)
_MASS_UNITS = (
    ("t", 1e-6, 1e6),
    ("kg", 1e-3, 1e3),
    ("g", 1.0, 1.0),
    ("mg", 1e3, 1e-3),
    ("µg", 1e6, 0.0),
)
_SCALE = {u: s for u, s, _ in (*_ENERGY_UNITS, *_MASS_UNITS)}


def _largest(values: Any) -> float:
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return max(finite, default=0.0)


def energy_unit(kwh_values: Any) -> str:
    """The unit for a table column of energies in kWh: the one that reads best for the
    largest value (MWh from 1000 kWh, kWh from 1 kWh, Wh from 1 Wh, mWh below).

    >>> energy_unit([0.0012, 0.5]), energy_unit([3.0, None]), energy_unit([2500.0])
    ('Wh', 'kWh', 'MWh')
    >>> energy_unit([0.0000523]), energy_unit([]), energy_unit([0.0])
    ('mWh', 'kWh', 'kWh')
    """
    big = _largest(kwh_values)
    if big == 0:
        return "kWh"
    return next(unit for unit, _, floor in _ENERGY_UNITS if big >= floor)


def mass_unit(gram_values: Any) -> str:
    """The unit for a table column of CO2e masses in grams (t, kg, g, mg or, below 1 mg,
    µg), so that a column of tiny figures reads "169" rather than "0.169".

    >>> mass_unit([12.0, 1534.0]), mass_unit([1.4]), mass_unit([0.0025]), mass_unit([])
    ('kg', 'g', 'mg', 'g')
    >>> mass_unit([0.00043])
    'µg'
    """
    big = _largest(gram_values)
    if big == 0:
        return "g"
    return next(unit for unit, _, floor in _MASS_UNITS if big >= floor)


def in_unit(x: float | None, unit: str, sig: int = TABLE_SIGNIFICANT) -> str:
    """``x`` (kWh for an energy unit, grams for a mass unit) in ``unit`` to ``sig``
    significant figures; ``'n/a'`` for none.

    >>> in_unit(0.001234, "Wh"), in_unit(1534.0, "kg"), in_unit(None, "g")
    ('1.23', '1.53', 'n/a')
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    return num(x * _SCALE[unit], sig)


def range_in(low: float | None, high: float | None, unit: str, sig: int = TABLE_SIGNIFICANT) -> str:
    """A range in ``unit`` for a table cell, rounded outward, or ``'exact'`` when
    ``low == high`` (never ``(x to x)``); empty when unknown.

    >>> range_in(0.0011, 0.0014, "Wh"), range_in(2.0, 2.0, "kWh"), range_in(None, 1.0, "g")
    ('1.1\u20131.4', 'exact', '')
    >>> range_in(149.4e-6, 605.0e-6, "µg")
    '149\u2013605'
    """
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if low == high:
        return "exact"
    lo, hi = bounds(low * _SCALE[unit], high * _SCALE[unit], sig)
    return f"{lo}\u2013{hi}"
