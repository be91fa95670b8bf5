"""Units: the one place where greentrack converts between joules, kWh, grams and kilograms.

Every energy in a run directory is in joules; reports speak kWh (or Wh, MWh) and grams of
CO2e. Conversions are exact (``1 kWh = 3.6e6 J`` by definition), never rounded constants.

>>> kwh_from_j(3.6e6), j_from_kwh(0.5)
(1.0, 1800000.0)
"""

from __future__ import annotations

J_PER_KWH = 3.6e6
"""Joules in one kilowatt-hour (exact: 1000 W x 3600 s)."""
J_PER_WH = 3.6e3
G_PER_KG = 1e3
G_PER_T = 1e6
BYTES_PER_GB = 1e9
"""Network coefficients are per GB of 1e9 bytes, as in the studies they come from."""


def kwh_from_j(joules: float) -> float:
    """Joules to kilowatt-hours."""
    return joules / J_PER_KWH


def j_from_kwh(kwh: float) -> float:
    """Kilowatt-hours to joules."""
    return kwh * J_PER_KWH


def kg_from_g(grams: float) -> float:
    """Grams to kilograms."""
    return grams / G_PER_KG
