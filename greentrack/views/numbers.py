"""How the views write numbers: :mod:`greentrack.numbers`, under the name the views, the
report and the templates import it by.

The formatter itself (a unit per column, three significant figures, the same decimals down a
column, ranges rounded outward, never more than two leading zeros; docs/report.md, "How
numbers are written") lives in the bottom layer, :mod:`greentrack.numbers`, so that the
account's notes and the reader's damage lines, which reach the views, are written by the same
rule. This module re-exports it: one implementation, never a copy.

>>> quantity(2.5, ENERGY), plural(3, "rank")
('2.50 kWh', '3 ranks')
"""

from __future__ import annotations

from greentrack.numbers import (
    DASH,
    DATA,
    ENERGY,
    MASS,
    MAX_DECIMALS,
    MAX_INTEGER_DIGITS,
    PLAIN,
    SCALES,
    SHARE,
    SIGNIFICANT,
    Column,
    Rounding,
    Scale,
    bounds,
    column,
    duration,
    in_column,
    leading_zeros,
    num,
    plural,
    quantities,
    quantity,
    quantity_range,
    share,
    when,
)

__all__ = [
    "DASH",
    "DATA",
    "ENERGY",
    "MASS",
    "MAX_DECIMALS",
    "MAX_INTEGER_DIGITS",
    "PLAIN",
    "SCALES",
    "SHARE",
    "SIGNIFICANT",
    "Column",
    "Rounding",
    "Scale",
    "bounds",
    "column",
    "duration",
    "in_column",
    "leading_zeros",
    "num",
    "plural",
    "quantities",
    "quantity",
    "quantity_range",
    "share",
    "when",
]
