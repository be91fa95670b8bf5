"""NVML checked against itself: a GPU's energy counter beside the integral of its power samples.

A GPU with NVML's energy counter is also sampled for power (10 Hz by default, for the
timeline). Both come from the same board, so over any window they should agree within their
accuracy. They do not always: Yang, Adamek and Armour (SC24, "Accurate and Convenient Energy
Measurements for GPUs", arXiv 2312.02741) show that on A100 and H100 the power reading is an
average over only about 25% of each update period, so a load that changes faster than that
is seen in part. Where the two disagree beyond their bounds, the account says so and widens the
channel's range to hold both; the figure stays the counter's.

Over the run and over each span, per channel (``C``: the counter's energy, ``P``: the
trapezoid integral of the power samples, from the timeline, whose rows hold each row's mean
sampled power; within a row it is prorated):

    |P - C| > a x C + a x P + 2 x (U + 1/f) x C / T

``a`` is NVML's accuracy (x0.95-x1.05, :data:`greentrack.account.accuracy.NVML`), ``U`` the
counter's update interval (the GPU's probed interval where the run recorded one,
``greentrack devices --probe``: :mod:`greentrack.meters.probe`; else
:data:`COUNTER_UPDATE_S`), ``f`` the power sampling rate and ``T`` the window: at each
edge the counter may be one update old and the samples one period apart.
A span also allows the energy of the two timeline rows its edges cut (the prorating).
Windows with a gap in the channel's readings are not checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from greentrack.account.accuracy import NVML, ChannelEnergy
from greentrack.account.figures import Figure
from greentrack.numbers import duration, num, plural, quantities
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.rundir.reader import Run

COUNTER_UPDATE_S = 0.1
"""How stale NVML's total-energy counter may be at a read: it updates about every 100 ms
(ML.ENERGY's profiling notes); greentrack's stated assumption until a probe measures it."""
ACCURACY = NVML.high - 1.0
COUNTER_METHOD = "nvml-total-energy-counter"
YANG = "Yang et al., SC24: NVML's power reading averages only part of each update period"


@dataclass(frozen=True)
class PowerCheck:
    """The counter against the power samples for one channel of one process."""

    key: str
    counter_j: float
    power_j: float
    tolerance_j: float
    flagged: bool
    spans_checked: int
    spans_flagged: int
    worst_span: str | None
    worst_rel: float | None
    counter_update_s: float = COUNTER_UPDATE_S
    probed_utc: str | None = None  # when U was probed on this GPU; None: the assumption

    @property
    def rel(self) -> float:
        """``(P - C) / C``: how far the power samples are from the counter."""
        return (self.power_j - self.counter_j) / self.counter_j if self.counter_j else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "counter_j": self.counter_j,
            "power_integral_j": self.power_j,
            "tolerance_j": self.tolerance_j,
            "relative_difference": self.rel,
            "flagged": self.flagged,
            "spans_checked": self.spans_checked,
            "spans_flagged": self.spans_flagged,
            "worst_span": self.worst_span,
            "worst_relative_difference": self.worst_rel,
            "counter_update_interval_s": self.counter_update_s,
            "counter_update_probed_utc": self.probed_utc,
        }

    @property
    def cited(self) -> str:
        """The counter's update interval as a report cites it.

        >>> c = PowerCheck("gpu0", 1.0, 1.0, 0.1, False, 0, 0, None, None, 0.025, "2025-01-02T03")
        >>> c.cited
        'counter update interval 25 ms, probed on 2025-01-02'
        """
        u = self.counter_update_s
        ms = f"{num(u * 1000)} ms" if u < 1 else duration(u)
        if self.probed_utc:
            return f"counter update interval {ms}, probed on {self.probed_utc[:10]}"
        return f"counter update interval {ms} (assumed: not probed on this GPU)"


def tolerance_j(
    counter_j: float,
    power_j: float,
    seconds: float,
    power_hz: float,
    counter_update_s: float = COUNTER_UPDATE_S,
) -> float:
    """How far the two may differ over a window of ``seconds`` and still agree.

    >>> round(tolerance_j(1000.0, 1000.0, 10.0, 10.0), 6)
    140.0
    """
    edge_s = counter_update_s + 1.0 / power_hz
    edges = 2.0 * edge_s * counter_j / seconds if seconds > 0 else 0
    return ACCURACY * (abs(counter_j) + abs(power_j)) + edges


def power_check(
    run: Run, channel: Mapping[str, Any], counter_j: float, key: str
) -> PowerCheck | None:
    """Check ``channel`` of ``run`` (its counter read ``counter_j`` over the run); ``None``
    where there is nothing to check: no counter or no power sensor, a gap in its readings, a
    timeline too short, or no energy."""
    import numpy as np

    if channel.get("energy_method") != COUNTER_METHOD or not channel.get("power_method"):
        return None
    final = run.final if isinstance(run.final, Mapping) else {}
    trouble = final.get("counter_trouble")
    if not final or (isinstance(trouble, Mapping) and channel.get("id") in trouble):
        return None
    cid = str(channel["id"])
    line = run.timeline
    rows = line[line["channel"] == cid]
    if len(rows) < 2 or bool(rows["gap"].any()) or bool(rows["power_w"].isna().any()):
        return None
    t_mono = rows["t_mono_s"].to_numpy(dtype=float)
    power = rows["power_w"].to_numpy(dtype=float)
    dt = np.diff(np.concatenate([[0.0], t_mono]))
    if np.any(dt < 0) or counter_j <= 0:
        return None
    start = float(run.meta["start_unix_s"])
    t_unix = start + t_mono  # the row ends on the run's own clock
    cum = np.concatenate([[0.0], np.cumsum(power * dt)])
    edges = np.concatenate([[start], t_unix])
    power_j = float(cum[-1])
    seconds = float(t_mono[-1])
    hz = float((run.meta.get("sampling") or {}).get("power_hz") or 10.0)
    update_s, probed_utc = counter_update(channel)
    tol = tolerance_j(counter_j, power_j, seconds, hz, update_s)
    checked = flagged_spans = 0
    worst: tuple[str, float] | None = None
    for span in _span_rows(run, cid):
        a, b, c = span["start_unix_s"], span["end_unix_s"], span["energy_j"]
        if not (b > a and c > 0 and a >= edges[0] and b <= edges[-1]):
            continue
        p = float(np.interp(b, edges, cum) - np.interp(a, edges, cum))
        cut = _row_energy(edges, power, dt, a) + _row_energy(edges, power, dt, b)
        checked += 1
        if abs(p - c) > tolerance_j(c, p, b - a, hz, update_s) + cut:
            flagged_spans += 1
            rel = (p - c) / c
            if worst is None or abs(rel) > abs(worst[1]):
                worst = (str(span["name"]), rel)
    return PowerCheck(
        key=key,
        counter_j=counter_j,
        power_j=power_j,
        tolerance_j=tol,
        flagged=abs(power_j - counter_j) > tol,
        spans_checked=checked,
        spans_flagged=flagged_spans,
        worst_span=worst[0] if worst else None,
        worst_rel=worst[1] if worst else None,
        counter_update_s=update_s,
        probed_utc=probed_utc,
    )


def counter_update(channel: Mapping[str, Any]) -> tuple[float, str | None]:
    """The counter's update interval (s) and when it was probed: the probe the run recorded
    for this GPU (``details.probe``, written by the NVML meter from ``greentrack devices
    --probe``), else :data:`COUNTER_UPDATE_S` and ``None``.

    >>> counter_update({"details": {"probe": {"counter_update_interval_s": 0.025,
    ...                                       "probed_utc": "2025-01-02T03:04:05Z"}}})
    (0.025, '2025-01-02T03:04:05Z')
    >>> counter_update({"details": {}})
    (0.1, None)
    """
    details = channel.get("details")
    probe = details.get("probe") if isinstance(details, Mapping) else None
    if not isinstance(probe, Mapping):
        return COUNTER_UPDATE_S, None
    try:
        value = float(probe.get("counter_update_interval_s"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return COUNTER_UPDATE_S, None
    if not (math.isfinite(value) and 0 < value <= 60):
        return COUNTER_UPDATE_S, None
    return value, str(probe.get("probed_utc") or "") or None


def _row_energy(edges: Any, power: Any, dt: Any, t: float) -> float:
    """The energy of the timeline row that holds time ``t`` (a span edge cuts it)."""
    import numpy as np

    i = int(np.searchsorted(edges, t, side="right")) - 1
    i = min(max(i, 0), len(power) - 1)
    return float(power[i] * dt[i])


def _span_rows(run: Run, cid: str) -> list[dict[str, Any]]:
    frame = run.spans
    column = f"energy_j.{cid}"
    if frame.empty or column not in frame.columns:
        return []
    out = []
    for row in frame[["name", "start_unix_s", "end_unix_s", column]].to_dict("records"):
        energy = row[column]
        if energy is None or not math.isfinite(float(energy)):
            continue
        out.append(
            {
                "name": row["name"],
                "start_unix_s": float(row["start_unix_s"]),
                "end_unix_s": float(row["end_unix_s"]),
                "energy_j": float(energy),
            }
        )
    return out


def widened(ce: ChannelEnergy, check: PowerCheck, shared_by: int = 1) -> ChannelEnergy:
    """``ce`` with its range widened to hold the power samples' integral (and its accuracy)
    where the check flagged the channel, and the notes that say so; unchanged otherwise."""
    notes = list(ce.notes)
    if check.probed_utc:  # the edges of each window allow the GPU's own interval: cite it
        notes.append(
            f"{check.key}: {check.cited} (greentrack devices --probe), used by the check of its "
            "energy counter against its power samples"
        )
    if check.spans_flagged and not check.flagged:
        notes.append(
            f"{check.key}: in {check.spans_flagged} of {plural(check.spans_checked, 'span')} the "
            f"power samples disagree with the energy counter beyond both bounds (worst: "
            f"{check.worst_span!r}, {check.worst_rel:+.0%}); {YANG}"
        )
    if not check.flagged:
        return replace(ce, notes=tuple(notes)) if notes != list(ce.notes) else ce
    share = 1.0 / max(shared_by, 1)
    low = kwh_from_j(check.power_j * (1.0 - ACCURACY) * share)
    high = kwh_from_j(check.power_j * (1.0 + ACCURACY) * share)
    e = ce.energy_kwh
    spans = (
        f"; so do {check.spans_flagged} of its {plural(check.spans_checked, 'span')}"
        if check.spans_flagged
        else ""
    )
    power_e, counter_e = quantities([kwh_from_j(check.power_j), kwh_from_j(check.counter_j)])
    notes.append(
        f"{check.key}: its power samples integrate to {power_e}, "
        f"its energy counter reads {counter_e} "
        f"({check.rel:+.0%}), beyond both bounds{spans}: {YANG}. The energy is the counter's; "
        "its range is widened to hold both"
    )
    return replace(
        ce,
        energy_kwh=Figure(e.value, min(e.low, low), max(e.high, high)),
        accuracy=f"{ce.accuracy}; widened: the power samples disagree with the counter ({YANG})",
        notes=tuple(notes),
    )
