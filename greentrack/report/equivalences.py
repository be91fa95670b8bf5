"""Illustrative equivalences for a run's CO2e and energy, each with its cited factor.

They help a reader picture a quantity; they are not offsets and they carry the uncertainty of
the factor (national averages of one country and year). Reports mark them as illustrative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Factor:
    """``per_unit`` grams CO2e (``basis="co2e"``) or kWh (``basis="energy"``) per ``unit``."""

    key: str
    label: str
    unit: str
    per_unit: float
    basis: str
    source: str


FACTORS: tuple[Factor, ...] = (
    Factor(
        "car_km",
        "driving an average US passenger car",
        "km",
        404.0 / 1.609344,  # 404 gCO2/mile -> 251.0 g/km
        "co2e",
        "US EPA, Greenhouse Gas Emissions from a Typical Passenger Vehicle, EPA-420-F-18-008 "
        "(2018): 404 gCO2 per mile",
    ),
    Factor(
        "gasoline_l",
        "burning gasoline",
        "litres",
        8887.0 / 3.785411784,  # 8,887 gCO2/US gallon -> 2,347.7 g/L
        "co2e",
        "US EPA, EPA-420-F-18-008 (2018) and 40 CFR 600.113: 8,887 gCO2 per US gallon",
    ),
    Factor(
        "household_days",
        "the electricity of an average US home",
        "days",
        10_649.0 / 365.0,  # kWh per day
        "energy",
        "US EIA, average annual electricity consumption of a US residential utility customer, "
        "2019: 10,649 kWh",
    ),
)


MIN_SHOWN = 0.1
"""An equivalence is printed only from a tenth of its unit ("0.2 km of driving"): below,
("0.0000006 km") it helps no reader picture anything. JSON keeps every one (``shown``)."""


@dataclass(frozen=True, slots=True)
class Equivalence:
    key: str
    label: str
    amount: float
    unit: str
    source: str

    @property
    def shown(self) -> bool:
        """Whether the amount is worth printing (:data:`MIN_SHOWN`)."""
        return self.amount >= MIN_SHOWN

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "amount": self.amount,
            "unit": self.unit,
            "source": self.source,
            "shown": self.shown,
        }


def equivalences(co2e_g: float | None, energy_kwh: float) -> list[Equivalence]:
    """What ``co2e_g`` grams and ``energy_kwh`` (after PUE) compare with.

    >>> [round(e.amount, 3) for e in equivalences(251.0, 29.175)]
    [1.0, 0.107, 1.0]
    """
    out = []
    for f in FACTORS:
        quantity = co2e_g if f.basis == "co2e" else energy_kwh
        if quantity is None:
            continue
        out.append(Equivalence(f.key, f.label, quantity / f.per_unit, f.unit, f.source))
    return out
