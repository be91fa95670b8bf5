"""Live figures for the integrations: a process's energy so far, as kWh and CO2e with ranges,
by the same rules as the account of the finished run (callbacks log these per epoch or round;
budgets and forecasts compare against them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from greentrack.account.accuracy import energy_accuracy
from greentrack.account.build import AccountOptions, CarbonBasis, carbon_basis, charge
from greentrack.account.figures import Figure, total
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.carbon.settings import CarbonSettings
    from greentrack.meters.base import Channel


class LiveAccount:
    """Converts joules per channel of a running process into the account's figures.

    Args:
        carbon: the run's carbon settings (``None``: energy only).
        channels: the process's channels (their provenance and method give the ranges).

    >>> live = LiveAccount(None, [])
    >>> live.co2e_g(Figure.exact(1.0)) is None
    True
    """

    def __init__(self, carbon: CarbonSettings | None, channels: Sequence[Channel]) -> None:
        self.basis: CarbonBasis | None = (
            carbon_basis(carbon, carbon.how_chosen, AccountOptions(), None) if carbon else None
        )
        self._channels = {c.id: c for c in channels}

    def has(self, provenance: str) -> bool:
        """Whether any channel has this provenance (``measured`` or ``estimated``)."""
        return any(c.source == provenance for c in self._channels.values())

    def split_kwh(self, energy_j: Mapping[str, float]) -> tuple[Figure, Figure]:
        """(measured, estimated) energy of ``energy_j`` (joules per channel id), in kWh."""
        parts: dict[str, list[Figure]] = {"measured": [], "estimated": []}
        for cid, joules in energy_j.items():
            ch = self._channels.get(cid)
            if ch is None or joules is None or joules != joules:  # unknown channel or NaN
                continue
            a = energy_accuracy(ch.method, ch.source)
            key = "measured" if ch.source == "measured" else "estimated"
            parts[key].append(Figure.relative(kwh_from_j(float(joules)), a.low, a.high))
        return total(parts["measured"]), total(parts["estimated"])

    def co2e_g(self, it_kwh: Figure) -> Figure | None:
        """CO2e of ``it_kwh`` at the run's (annual) carbon basis; ``None`` without one."""
        return charge(it_kwh, self.basis)
