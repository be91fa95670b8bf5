"""A figure with its range: the value greentrack reports and the low-high bounds that the
documented accuracy of its sources allows (docs/methodology.md, "Ranges")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    """``value`` with ``low <= value <= high``, in the unit its name says where it is used
    (``energy_kwh``, ``co2e_g``...).

    Bounds combine by interval arithmetic: sums add lows and highs, products multiply them.
    That assumes the errors of the parts can point the same way, so a range is a bound, not a
    confidence interval.

    >>> a = Figure(10.0, 9.0, 11.0) + Figure(5.0, 2.5, 7.5)
    >>> a, a.times(Figure(2.0, 1.0, 3.0))
    (Figure(value=15.0, low=11.5, high=18.5), Figure(value=30.0, low=11.5, high=55.5))
    """

    value: float
    low: float
    high: float

    @classmethod
    def exact(cls, value: float) -> Figure:
        return cls(value, value, value)

    @classmethod
    def relative(cls, value: float, low_factor: float, high_factor: float) -> Figure:
        """``value`` with bounds ``value x low_factor`` and ``value x high_factor``."""
        a, b = value * low_factor, value * high_factor
        return cls(value, min(a, b), max(a, b))

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.value + other.value, self.low + other.low, self.high + other.high)

    def scaled(self, factor: float) -> Figure:
        """Multiplied by an exact number (a unit conversion, a share)."""
        a, b = self.low * factor, self.high * factor
        return Figure(self.value * factor, min(a, b), max(a, b))

    def times(self, other: Figure) -> Figure:
        """Product of two figures with non-negative bounds."""
        return Figure(self.value * other.value, self.low * other.low, self.high * other.high)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high}


def total(figures: Iterable[Figure]) -> Figure:
    """Sum of figures (an empty sum is exactly 0)."""
    out = Figure.exact(0.0)
    for f in figures:
        out = out + f
    return out
