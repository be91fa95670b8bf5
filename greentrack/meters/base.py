"""The meter protocol: what every energy source in ``greentrack.meters`` provides.

A meter owns one or more *channels*. A channel is one physical thing whose energy is
accounted separately: ``gpu0`` (a GPU), ``cpu0`` (CPU package 0), ``dram0`` (the DRAM
of package 0). Channel ids are stable within a run and name the timeline columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Component = Literal["gpu", "cpu", "dram", "node"]
"""``node``: a whole server as a node meter reads it (:mod:`greentrack.meters.node`), kept
apart from the device channels it contains."""
Source = Literal["measured", "estimated"]


@dataclass(frozen=True, slots=True)
class Channel:
    """One accounted energy channel.

    Attributes:
        id: stable id, e.g. ``"gpu0"``, ``"cpu1"``, ``"dram0"``.
        component: ``"gpu"``, ``"cpu"``, ``"dram"`` or ``"node"`` (a node meter).
        name: human name, e.g. ``"NVIDIA H100 80GB HBM3"`` or ``"package-0"``.
        source: ``"measured"`` (an on-chip sensor or counter) or ``"estimated"`` (a model).
        energy_method: how cumulative energy is obtained, or ``None`` when the channel has
            no energy counter and its energy is the integral of its sampled power.
        power_method: how instantaneous power is sampled, or ``None`` when the channel has
            no power sensor and its timeline power is derived from energy differences.
        details: vendor facts for the run metadata (UUID, driver, limits, notes).
    """

    id: str
    component: Component
    name: str
    source: Source
    energy_method: str | None
    power_method: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.energy_method is None and self.power_method is None:
            raise ValueError(f"channel {self.id!r} has neither an energy nor a power method")

    @property
    def method(self) -> str:
        """One-line description of how this channel's energy is obtained."""
        if self.energy_method is not None:
            return self.energy_method
        return f"integral of {self.power_method}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "component": self.component,
            "name": self.name,
            "source": self.source,
            "energy_method": self.energy_method,
            "power_method": self.power_method,
            "method": self.method,
            "details": dict(self.details),
        }


@runtime_checkable
class Meter(Protocol):
    """An energy source. Implementations live one per file in ``greentrack.meters``.

    Both read methods may raise :class:`greentrack.errors.MeterError`; the sampler turns
    that into a warning and a labelled gap, never into an exception in user code.
    """

    @property
    def channels(self) -> Sequence[Channel]:
        """The channels this meter accounts, fixed for the meter's lifetime."""
        ...

    def read_energy_j(self) -> dict[str, float]:
        """Cumulative energy in joules since the meter was opened, for every channel
        whose ``energy_method`` is not ``None``."""
        ...

    def read_power_w(self) -> dict[str, float]:
        """Instantaneous power in watts for every channel whose ``power_method`` is not
        ``None`` (an empty dict when there is none)."""
        ...

    def close(self) -> None:
        """Release vendor handles. Idempotent."""
        ...


def split_by_source(
    energy_j: Mapping[str, float | None], sources: Mapping[str, str]
) -> tuple[float, float]:
    """Sum energy per channel into (measured J, estimated J), never mixing the two; channels
    missing from ``sources`` or with no value (None, NaN) are skipped.

    >>> split_by_source({"gpu0": 10.0, "cpu": 2.0}, {"gpu0": "measured", "cpu": "estimated"})
    (10.0, 2.0)
    """
    totals = {"measured": 0.0, "estimated": 0.0}
    for cid, value in energy_j.items():
        src = sources.get(cid)
        if src in totals and value is not None and value == value:  # value == value: not NaN
            totals[src] += float(value)
    return totals["measured"], totals["estimated"]
