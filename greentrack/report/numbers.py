"""How a report writes numbers: one place, so every format shows the same digits."""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT = 4


def num(x: float | None, sig: int = SIGNIFICANT) -> str:
    """``x`` to ``sig`` significant digits, without exponent notation; ``'n/a'`` for none.

    >>> num(1234.5678), num(0.000123456), num(12.0), num(None), num(1234567.0)
    ('1235', '0.0001235', '12', 'n/a', '1235000')
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    digits = sig - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, digits)
    if digits <= 0:
        return f"{rounded:.0f}"
    text = f"{rounded:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


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
    """Energy with a unit that keeps the number readable (MWh, kWh or Wh).

    >>> energy(1523.0), energy(2.5), energy(0.0042)
    ('1.523 MWh', '2.5 kWh', '4.2 Wh')
    """
    if kwh is None or not math.isfinite(kwh):
        return "n/a"
    if abs(kwh) >= 1000:
        return f"{num(kwh / 1000, sig)} MWh"
    if abs(kwh) >= 1 or kwh == 0:
        return f"{num(kwh, sig)} kWh"
    return f"{num(kwh * 1000, sig)} Wh"


def mass(grams: float | None, sig: int = SIGNIFICANT) -> str:
    """CO2e mass with a readable unit (t, kg or g).

    >>> mass(1534.0), mass(12.0), mass(2.5e6)
    ('1.534 kg', '12 g', '2.5 t')
    """
    if grams is None or not math.isfinite(grams):
        return "n/a"
    for unit, scale in (("t", 1e6), ("kg", 1e3)):
        if abs(grams) >= scale:
            return f"{num(grams / scale, sig)} {unit}"
    return f"{num(grams, sig)} g"


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
    """The range alone, in the unit ``fmt`` chooses for ``value`` (empty when exact).

    >>> span(0.0042, 0.004, 0.0045, energy), span(2.0, 2.0, 2.0, energy)
    ('4-4.5 Wh', '')
    """
    if value is None or low is None or high is None or low == high:
        return ""
    unit = fmt(value).split()[-1]
    scale = {"MWh": 1e-3, "kWh": 1.0, "Wh": 1e3, "t": 1e-6, "kg": 1e-3, "g": 1.0}[unit]
    return f"{num(low * scale, sig)}-{num(high * scale, sig)} {unit}"


def energy_range(
    kwh: float | None, low: float | None, high: float | None, sig: int = SIGNIFICANT
) -> str:
    """Energy with its range, in the unit of the value.

    >>> energy_range(0.0042, 0.004, 0.0045)
    '4.2 Wh (4-4.5 Wh)'
    """
    if kwh is None or low is None or high is None:
        return energy(kwh, sig)
    text = energy(kwh, sig)
    unit = text.split()[-1]
    scale = {"MWh": 1e-3, "kWh": 1.0, "Wh": 1e3}.get(unit, 1.0)
    if low == high:
        return text
    return f"{text} ({num(low * scale, sig)}-{num(high * scale, sig)} {unit})"


def mass_range(
    grams: float | None, low: float | None, high: float | None, sig: int = SIGNIFICANT
) -> str:
    """CO2e mass with its range, in the unit of the value.

    >>> mass_range(1534.0, 1200.0, 1900.0)
    '1.534 kg (1.2-1.9 kg)'
    """
    if grams is None or low is None or high is None:
        return mass(grams, sig)
    text = mass(grams, sig)
    unit = text.split()[-1]
    scale = {"t": 1e-6, "kg": 1e-3, "g": 1.0}.get(unit, 1.0)
    if low == high:
        return text
    return f"{text} ({num(low * scale, sig)}-{num(high * scale, sig)} {unit})"


# --- table columns: one unit per column -----------------------------------------------------

TABLE_SIGNIFICANT = 3
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


def range_in(low: float | None, high: float | None, unit: str, sig: int = 2) -> str:
    """A range in ``unit`` for a table cell, or ``'exact'`` when ``low == high`` (never
    ``(x to x)``); empty when unknown.

    >>> range_in(0.0011, 0.0014, "Wh"), range_in(2.0, 2.0, "kWh"), range_in(None, 1.0, "g")
    ('1.1\u20131.4', 'exact', '')
    """
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if low == high:
        return "exact"
    return f"{num(low * _SCALE[unit], sig)}\u2013{num(high * _SCALE[unit], sig)}"
