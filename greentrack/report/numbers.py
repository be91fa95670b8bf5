"""The report's names for the one number formatter of :mod:`greentrack.views.numbers`.

Every figure of a report is written by that module's rule (a unit per column, three
significant figures, the same decimals down a column, ranges rounded outward, never more
than two leading zeros); these are the shapes the templates and the prose ask for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from greentrack.views.numbers import (
    DASH,
    ENERGY,
    MASS,
    PLAIN,
    SHARE,
    SIGNIFICANT,
    Column,
    Scale,
    bounds,
    column,
    duration,
    num,
    plural,
    quantity,
    quantity_range,
    share,
)

__all__ = [
    "DASH",
    "ENERGY",
    "MASS",
    "PLAIN",
    "SHARE",
    "SIGNIFICANT",
    "Column",
    "bounds",
    "column",
    "duration",
    "energy",
    "energy_range",
    "energy_unit",
    "in_unit",
    "mass",
    "mass_range",
    "mass_unit",
    "num",
    "pct",
    "plural",
    "range_in",
    "ranged",
    "span",
]

_BY_UNIT: dict[str, Scale] = {u: s for s in (ENERGY, MASS) for u, _ in s.units}


def energy(kwh: float | None, sig: int = SIGNIFICANT) -> str:
    """Energy in prose, in the unit that reads best.

    >>> energy(1523.0), energy(2.5), energy(0.0042), energy(0.0000523), energy(0.0)
    ('1.52 MWh', '2.50 kWh', '4.20 Wh', '52.3 mWh', '0 kWh')
    """
    return quantity(kwh, ENERGY, sig)


def mass(grams: float | None, sig: int = SIGNIFICANT) -> str:
    """CO2e mass in prose, in the unit that reads best.

    >>> mass(1534.0), mass(12.0), mass(2.5e6), mass(0.00043)
    ('1.53 kg', '12.0 g', '2.50 t', '430 µg')
    """
    return quantity(grams, MASS, sig)


def pct(x: float | None) -> str:
    """A fraction as a percentage (:func:`~greentrack.views.numbers.share`).

    >>> pct(0.12345), pct(None), pct(1.0)
    ('12.3%', 'n/a', '100%')
    """
    return share(x)


def energy_range(
    kwh: float | None, low: float | None, high: float | None, sig: int = SIGNIFICANT
) -> str:
    """Energy and its range in one unit and precision, rounded outward.

    >>> energy_range(0.0042, 0.004, 0.0045), energy_range(2.0, 2.0, 2.0)
    ('4.20 Wh (4.00–4.50 Wh)', '2.00 kWh')
    """
    return quantity_range(kwh, low, high, ENERGY, sig)


def mass_range(
    grams: float | None, low: float | None, high: float | None, sig: int = SIGNIFICANT
) -> str:
    """CO2e and its range in one unit and precision, rounded outward.

    >>> mass_range(1534.0, 1249.0, 1901.0)
    '1.53 kg (1.24–1.91 kg)'
    """
    return quantity_range(grams, low, high, MASS, sig)


def span(
    value: float | None, low: float | None, high: float | None, fmt: Any, sig: int = SIGNIFICANT
) -> str:
    """The range alone with its unit, as :func:`energy_range` or :func:`mass_range` (``fmt``
    :func:`energy` or :func:`mass`) prints it beside ``value``; empty when exact.

    >>> span(0.0042, 0.004, 0.0045, energy), span(2.0, 2.0, 2.0, energy)
    ('4.00–4.50 Wh', '')
    """
    scale = MASS if fmt is mass else ENERGY
    if value is None or low is None or high is None:
        return ""
    return column([value, low, high], scale, sig).range_text(low, high)


def energy_unit(kwh_values: Iterable[float | None]) -> str:
    """The unit of a column of energies in kWh.

    >>> energy_unit([0.0012, 0.5]), energy_unit([3.0, None]), energy_unit([2500.0])
    ('Wh', 'kWh', 'MWh')
    >>> energy_unit([0.0000523]), energy_unit([]), energy_unit([136.0, 0.0104])
    ('mWh', 'kWh', 'Wh')
    """
    return column(kwh_values, ENERGY).unit


def mass_unit(gram_values: Iterable[float | None]) -> str:
    """The unit of a column of CO2e masses in grams.

    >>> mass_unit([12.0, 1534.0]), mass_unit([1.4]), mass_unit([0.0025]), mass_unit([])
    ('kg', 'g', 'mg', 'g')
    """
    return column(gram_values, MASS).unit


def _fixed(unit: str, values: list[float | None], sig: int) -> Column:
    """The column of ``values`` in a given ``unit`` (its decimals from the values)."""
    scale = _BY_UNIT[unit]
    factor = scale.factor(unit)
    probe = column([abs(v) * factor for v in values if v is not None], PLAIN, sig)
    return Column(unit, factor, probe.decimals, sig)


def in_unit(x: float | None, unit: str, sig: int = SIGNIFICANT) -> str:
    """``x`` (kWh for an energy unit, grams for a mass unit) in ``unit``, to ``sig``
    significant figures, trailing zeros kept.

    >>> in_unit(0.001234, "Wh"), in_unit(1534.0, "kg"), in_unit(None, "g"), in_unit(12.0, "g")
    ('1.23', '1.53', 'n/a', '12.0')
    """
    return _fixed(unit, [x], sig).cell(x)


def range_in(low: float | None, high: float | None, unit: str, sig: int = SIGNIFICANT) -> str:
    """A range in ``unit``, rounded outward, one precision for both bounds; ``'exact'``
    when ``low == high``; empty when unknown.

    >>> range_in(0.0011, 0.0014, "Wh"), range_in(2.0, 2.0, "kWh"), range_in(None, 1.0, "g")
    ('1.10–1.40', 'exact', '')
    >>> range_in(149.4e-6, 605.0e-6, "µg"), range_in(34.46e3, 81.94e3, "kg")
    ('149–605', '34.4–82.0')
    """
    return _fixed(unit, [low, high], sig).range(low, high)


def ranged(
    x: float | None, low: float | None, high: float | None, scale: Scale | str = ENERGY
) -> str:
    """A figure with its unit, written in the column of the figure and its range (as
    :func:`~greentrack.views.numbers.quantity_range` writes it, without the range): rows of
    a table that each carry their own unit then print alike.

    >>> ranged(0.09, 0.045, 0.135), ranged(3980.0, 1990.0, 5970.0, MASS)
    ('90 Wh', '3.98 kg')
    """
    return column([x, low, high], scale).text(x)
