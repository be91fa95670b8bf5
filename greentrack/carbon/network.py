"""Energy of moving bytes over a network: bytes x kWh/GB (federated learning traffic).

    E_network [kWh] = bytes / 1e9 x coefficient [kWh/GB]

Published coefficients span two orders of magnitude, by scope (core only, or access networks
and home routers too), medium (fixed, mobile) and year (intensity falls over time). greentrack
ships a default with its citation (Aslan et al. 2018: 0.06 kWh/GB end-to-end, for 2015), lets
the user choose per direction, and reports how a total moves across the published range
(:func:`network_range`). Coefficients live in ``data/network_coefficients.csv`` with their
sources; GB here is 1e9 bytes, as in those studies.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

DEFAULT = "aslan-2018-end-to-end"


@dataclass(frozen=True, slots=True)
class NetworkCoefficient:
    key: str
    kwh_per_gb: float
    scope: str
    data_year: int | None
    source: str
    note: str


@lru_cache(maxsize=1)
def coefficients() -> dict[str, NetworkCoefficient]:
    """The bundled coefficients by key."""
    path = resources.files("greentrack.carbon").joinpath("data/network_coefficients.csv")
    with path.open(encoding="utf-8") as f:
        return {
            r["key"]: NetworkCoefficient(
                r["key"],
                float(r["kwh_per_gb"]),
                r["scope"],
                int(r["data_year"]) if r["data_year"] else None,
                r["source"],
                r["note"],
            )
            for r in csv.DictReader(f)
        }


def coefficient(value: str | float | None = None) -> NetworkCoefficient:
    """A bundled coefficient by key, a user number in kWh/GB, or the default."""
    if value is None:
        return coefficients()[DEFAULT]
    if isinstance(value, str):
        table = coefficients()
        if value in table:
            return table[value]
        raise ValueError(
            f"unknown network coefficient {value!r}; bundled: {', '.join(table)}, "
            "or a number of kWh/GB"
        )
    if isinstance(value, bool) or not 0 < float(value) < 10:
        raise ValueError(f"a network coefficient is kWh per GB in (0, 10), got {value!r}")
    return NetworkCoefficient(
        "user", float(value), "given by the user", None, "given by the user", ""
    )


def network_kwh(nbytes: int | float, coeff: NetworkCoefficient) -> float:
    """Energy in kWh of moving ``nbytes`` bytes.

    >>> network_kwh(2_000_000_000, coefficient())
    0.12
    """
    if nbytes < 0:
        raise ValueError(f"bytes must be >= 0, got {nbytes}")
    return round(nbytes / 1e9 * coeff.kwh_per_gb, 15)


def network_range(nbytes: int | float) -> list[tuple[NetworkCoefficient, float]]:
    """The energy of ``nbytes`` under every bundled coefficient, lowest first."""
    rows = [(c, network_kwh(nbytes, c)) for c in coefficients().values()]
    return sorted(rows, key=lambda r: r[1])
