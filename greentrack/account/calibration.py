"""A wall meter against the run's tiers, and the correction a run keeps from it.

A metered PDU outlet or a plug meter between the server and the wall sees what every tier
of the account estimates from inside: the devices, the node, the IT total. ``greentrack
calibrate RUN --meter readings.csv`` integrates the meter's power over the run (only where the
two overlap, and only over the times a process of the run was measuring) and states each
tier's error against it; ``--store`` keeps the ratio in the run directory
(:data:`greentrack.rundir.format.CALIBRATION`), and every later account of the run applies it
to the IT total (:func:`apply_calibration`, called once by
:func:`greentrack.account.build.account_run`), labelled, so every view shows the corrected
figure and says so.

Over the windows ``W`` (the run's processes' times where the meter has readings):

    M   = sum over meters of the trapezoid integral of their power over W
    I_W = IT x s,   s = the IT tier's share of its energy that falls in W
    F   = M / I_W,  F_low = M (1 - m) / I_W,  F_high = M (1 + m) / I_W

``m`` is the meter's stated accuracy (``--meter-accuracy-percent``). The calibrated IT total
is the meter over W plus the rest of the run scaled by the same factor,

    IT' = F x I_W + F x (IT - I_W)   (= F x IT)

its range ``F_low x I_W + min(F_low x U, U_low)`` to ``F_high x I_W + max(F_high x U,
U_high)``, with ``U = IT - I_W`` and ``U_low``, ``U_high`` the run's own range of it: outside
the meter's windows either the ratio holds or the run's own range does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greentrack.account.figures import Figure
from greentrack.numbers import PLAIN, duration, num, quantity_range
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.account.build import RunAccount
    from greentrack.carbon.series import EnergyCurve
    from greentrack.rundir.reader import Run

FORMAT = 1
KIND = "wall-meter"
DEFAULT_ACCURACY_PERCENT = 2.0
ACCURACY_BASIS = (
    "IEC 62053-21 accuracy class 2 (active energy within +/-2 % over the meter's rated "
    "range; class 1, +/-1 %, is typical of billing-grade metered PDUs)"
)
"""What ``--meter-accuracy-percent`` assumes when not given: greentrack's stated default."""
MIN_STORE_COVERAGE = 0.5
"""A meter covering less of the run than this is not stored as its correction."""
MAX_FACTOR = 100.0
"""A meter reading more than this many times the run's IT energy, or less than its inverse,
is not the same machine or not the same unit (kW read as W): refused, stored or read back."""
STORE_MAX_BYTES = 256 * 1024


class CalibrationError(ValueError):
    """The meter and the run cannot be compared (no overlap, no energy); the message is one
    line with the fix."""


@dataclass(frozen=True)
class MeterReadings:
    """One wall meter's power readings (UTC seconds, watts), increasing in time."""

    source: str
    t_unix_s: tuple[float, ...]
    watts: tuple[float, ...]
    sha256: str

    @property
    def first(self) -> float:
        return self.t_unix_s[0]

    @property
    def last(self) -> float:
        return self.t_unix_s[-1]

    def energy_j(self, a: float, b: float) -> float:
        """The trapezoid integral of the power over ``[a, b]`` (inside the readings), the
        power at ``a`` and ``b`` interpolated between the readings around them.

        >>> m = MeterReadings("m", (0.0, 10.0, 20.0), (100.0, 200.0, 200.0), "")
        >>> m.energy_j(5.0, 15.0)
        1875.0
        """
        import numpy as np

        t = np.asarray(self.t_unix_s, dtype=float)
        w = np.asarray(self.watts, dtype=float)
        a, b = max(a, self.first), min(b, self.last)
        if b <= a:
            return 0.0
        inside = (t > a) & (t < b)
        ts = np.concatenate([[a], t[inside], [b]])
        ws = np.concatenate([[np.interp(a, t, w)], w[inside], [np.interp(b, t, w)]])
        return float(np.sum((ws[1:] + ws[:-1]) / 2.0 * np.diff(ts)))

    def longest_gap_s(self, a: float, b: float) -> float:
        """The longest time between two readings (or a window's edge) within ``[a, b]``."""
        t = [a, *(x for x in self.t_unix_s if a < x < b), b]
        return max((y - x for x, y in itertools.pairwise(t)), default=0.0)


@dataclass(frozen=True)
class TierError:
    """One tier over the meter's windows against the meter: ``error = (tier - meter) /
    meter``; ``meter_inside``: the meter's value lies within the tier's range; ``overlap``:
    the two ranges meet."""

    tier: str
    label: str
    energy_kwh: Figure
    error: float
    meter_inside: bool
    overlap: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "label": self.label,
            "energy_kwh": self.energy_kwh.to_dict(),
            "error_percent": self.error * 100.0,
            "meter_inside_range": self.meter_inside,
            "ranges_overlap": self.overlap,
        }


@dataclass(frozen=True)
class Comparison:
    """A wall meter against a run (:func:`compare`)."""

    run_id: str
    windows: tuple[tuple[float, float], ...]
    measured_s: float  # the seconds the run's processes measured (their union)
    covered_s: float  # of those, the seconds the meter has readings for
    meter_kwh: Figure
    accuracy_percent: float
    accuracy_basis: str
    meters: tuple[Mapping[str, Any], ...]
    tiers: tuple[TierError, ...]
    it_tier: str
    it_kwh: Figure  # the run's own IT total, the whole run
    it_share: float  # the share of it in the meter's windows
    factor: Figure | None  # None: no IT energy in the windows
    nodes: int
    notes: tuple[str, ...] = field(default=())

    @property
    def coverage(self) -> float:
        """The share of the run's measured time the meter covers."""
        return self.covered_s / self.measured_s if self.measured_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "window": {
                "start_unix_s": self.windows[0][0] if self.windows else None,
                "end_unix_s": self.windows[-1][1] if self.windows else None,
                "intervals": [list(w) for w in self.windows],
                "covered_s": self.covered_s,
                "run_s": self.measured_s,
                "coverage": self.coverage,
            },
            "meter": {
                "energy_kwh": self.meter_kwh.to_dict(),
                "accuracy_percent": self.accuracy_percent,
                "accuracy_basis": self.accuracy_basis,
                "files": [dict(m) for m in self.meters],
            },
            "it_tier": self.it_tier,
            "tiers": [t.to_dict() for t in self.tiers],
            "it_kwh": self.it_kwh.to_dict(),
            "it_share_in_window": self.it_share,
            "factor": self.factor.to_dict() if self.factor else None,
            "nodes": self.nodes,
            "notes": list(self.notes),
        }

    def record(self, created_utc: str) -> dict[str, Any]:
        """What ``--store`` writes (:data:`greentrack.rundir.format.CALIBRATION`)."""
        if self.factor is None:
            raise CalibrationError("no IT energy in the meter's window: nothing to calibrate")
        return {
            "format": FORMAT,
            "kind": KIND,
            "created_utc": created_utc,
            "run_id": self.run_id,
            "factor": self.factor.to_dict(),
            "it_tier": self.it_tier,
            "it_kwh": self.it_kwh.to_dict(),
            "it_share_in_window": self.it_share,
            "meter_kwh": self.meter_kwh.to_dict(),
            "accuracy_percent": self.accuracy_percent,
            "accuracy_basis": self.accuracy_basis,
            "coverage": self.coverage,
            "covered_s": self.covered_s,
            "meters": [dict(m) for m in self.meters],
        }


# --- comparing ---------------------------------------------------------------------------------


def compare(
    account: RunAccount,
    runs: Sequence[Run],
    meters: Sequence[MeterReadings],
    accuracy_percent: float = DEFAULT_ACCURACY_PERCENT,
    accuracy_basis: str = ACCURACY_BASIS,
) -> Comparison:
    """Each tier of ``account`` (the run's own figures: built with ``calibrated=False``) over
    the times the ``meters`` cover, against the meters' energy there. ``runs`` are the run
    and its parts (their measuring times and, for the node tier, its readings in time)."""
    if account.federated is not None:
        raise CalibrationError(
            "a federated run's total holds its clients and the network, which no wall meter "
            "at the server sees: calibrate the runs of the machines you metered instead"
        )
    if not meters:
        raise CalibrationError("no meter readings: give --meter FILE")
    measured = _union([(r.start_unix_s, r.end_unix_s) for r in runs])
    first = max(m.first for m in meters)
    last = min(m.last for m in meters)
    windows = tuple(
        (max(a, first), min(b, last)) for a, b in measured if min(b, last) > max(a, first)
    )
    measured_s = sum(b - a for a, b in measured)
    if not windows:
        raise CalibrationError(
            f"the meter's readings ({_utc(first)} to {_utc(last)}) do not overlap the run "
            f"({_utc(measured[0][0])} to {_utc(measured[-1][1])}): check the file, its time "
            "zone (an ISO time needs its offset) and both machines' clocks"
        )
    covered_s = sum(b - a for a, b in windows)
    m_j = sum(m.energy_j(a, b) for m in meters for a, b in windows)
    if m_j <= 0:
        raise CalibrationError(
            "the meter read 0 W over the run: no energy to compare the tiers with (is it the "
            "server's outlet, and its watts column?)"
        )
    a_frac = accuracy_percent / 100.0
    meter = Figure(kwh_from_j(m_j), kwh_from_j(m_j * (1 - a_frac)), kwh_from_j(m_j * (1 + a_frac)))
    device_share = _share(account.curve, windows, covered_s / measured_s if measured_s else 0)
    notes: list[str] = []
    tiers: list[TierError] = []
    t = account.tiers
    it_tier = t.it_tier if t is not None else "devices"
    devices = t.devices_kwh if t is not None else account.it_kwh
    devices_w = devices.scaled(device_share)
    tiers.append(_error("devices", _devices_label(account), devices_w, meter))
    it_share = device_share
    if t is not None:
        node_share = _node_share(runs, windows)
        if node_share is None:
            node_share = device_share
            if device_share < 1.0:
                notes.append(
                    "the node meter left no readings in time: its share of the window is taken "
                    "as the devices'"
                )
        tiers.append(_error("node", "node (its node meters)", t.node_kwh.scaled(node_share), meter))
        if it_tier == "node":
            node_part = t.node_kwh.value * node_share
            rest = t.uncovered_devices_kwh.value * device_share
            it_share = (node_part + rest) / t.it_kwh.value if t.it_kwh.value > 0 else device_share
    it_label = f"IT total (the {it_tier} tier)"
    tiers.append(_error("it", it_label, account.it_kwh.scaled(it_share), meter))
    it_w = account.it_kwh.value * it_share
    factor = None
    if it_w > 0 and m_j > 0:
        f = meter.value / it_w
        factor = Figure(f, meter.low / it_w, meter.high / it_w)
        if factor.high > MAX_FACTOR:
            raise CalibrationError(
                f"the meter read {num(factor.value)} x the run's IT energy: not the same machine "
                "or not the same time? (check the file, its unit and the clocks)"
            )
        if factor.low < 1 / MAX_FACTOR:  # a kW column read as W, or another outlet
            raise CalibrationError(
                f"the meter read {num(factor.value)} x the run's IT energy, less than "
                f"1/{num(MAX_FACTOR)} of what the devices alone measured: a column in kW "
                "rather than W, or a meter on another outlet? (check the file, its unit and "
                "the clocks)"
            )
    nodes = t.nodes if t is not None else len({_host(r) for r in runs})
    if nodes > 1:
        notes.append(
            f"the run spans {nodes} nodes: the meter files must hold all of them (one "
            "--meter per outlet or node); a meter on one node compares it to the whole run"
        )
    for m in meters:
        gaps = [m.longest_gap_s(a, b) for a, b in windows]
        steps = [y - x for x, y in itertools.pairwise(m.t_unix_s)]
        median = sorted(steps)[len(steps) // 2]
        if gaps and max(gaps) > max(10 * median, 60.0):
            notes.append(
                f"{m.source}: {duration(max(gaps))} without a reading (its median step is "
                f"{duration(median)}): the meter's power across it is interpolated"
            )
    return Comparison(
        run_id=account.run_id,
        windows=windows,
        measured_s=measured_s,
        covered_s=covered_s,
        meter_kwh=meter,
        accuracy_percent=accuracy_percent,
        accuracy_basis=accuracy_basis,
        meters=tuple(_meter_block(m, windows) for m in meters),
        tiers=tuple(tiers),
        it_tier=it_tier,
        it_kwh=account.it_kwh,
        it_share=it_share,
        factor=factor,
        nodes=nodes,
        notes=tuple(notes),
    )


_COMPONENT_NAMES = {"gpu": "GPU", "cpu": "CPU", "dram": "DRAM"}


def _devices_label(account: RunAccount) -> str:
    """``devices (GPU measured, CPU estimated)``: the components the devices tier holds, each
    with its provenance (not a fixed "GPU + CPU + DRAM": a run without a GPU has none, and an
    estimate compared with a meter must say it is one)."""
    seen: dict[str, set[str]] = {}
    for c in account.components:
        if c.in_total:
            seen.setdefault(c.component, set()).add(c.provenance)
    if not seen:
        return "devices (none counted)"
    order = list(_COMPONENT_NAMES)
    keys = sorted(seen, key=lambda k: (order.index(k) if k in order else len(order), k))
    parts = [f"{_COMPONENT_NAMES.get(k, k)} {' and '.join(sorted(seen[k]))}" for k in keys]
    return f"devices ({', '.join(parts)})"


def _error(tier: str, label: str, energy: Figure, meter: Figure) -> TierError:
    m = meter.value
    return TierError(
        tier=tier,
        label=label,
        energy_kwh=energy,
        error=(energy.value - m) / m if m > 0 else math.nan,
        meter_inside=energy.low <= m <= energy.high,
        overlap=energy.low <= meter.high and meter.low <= energy.high,
    )


def _meter_block(m: MeterReadings, windows: Sequence[tuple[float, float]]) -> dict[str, Any]:
    return {
        "file": m.source,
        "sha256": m.sha256,
        "rows": len(m.t_unix_s),
        "first_unix_s": m.first,
        "last_unix_s": m.last,
        "energy_j": sum(m.energy_j(a, b) for a, b in windows),
    }


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Merged, sorted intervals.

    >>> _union([(3.0, 4.0), (0.0, 2.0), (1.0, 2.5)])
    [(0.0, 2.5), (3.0, 4.0)]
    """
    out: list[tuple[float, float]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _share(curve: EnergyCurve, windows: Sequence[tuple[float, float]], time_share: float) -> float:
    """The share of the devices' energy that falls in ``windows`` (their energy curve); the
    share of the time where the curve holds no energy."""
    total = curve.total_j
    if total <= 0:
        return time_share
    inside = sum(float(curve.energy_between(a, b)) for a, b in windows)
    return min(max(inside / total, 0.0), 1.0)


def _node_share(runs: Sequence[Run], windows: Sequence[tuple[float, float]]) -> float | None:
    """The share of the node meters' energy in ``windows``, from their readings in time
    (``node_reading`` events, 0 J at each run's start, the final figure at its stop);
    ``None`` without readings."""
    import numpy as np

    inside = total = 0.0
    for r in runs:
        for ch in r.meta.get("node_channels") or ():
            cid = ch.get("id") if isinstance(ch, Mapping) else None
            if not cid:
                continue
            points = [(r.start_unix_s, 0.0)]
            for e in r.events:
                energy = e.get("energy_j")
                if e.get("event") == "node_reading" and isinstance(energy, Mapping):
                    value, at = energy.get(cid), e.get("t_unix_s")
                    if isinstance(value, int | float) and isinstance(at, int | float):
                        points.append((float(at), float(value)))
            final = r.final.get("node_energy_j") if isinstance(r.final, Mapping) else None
            if isinstance(final, Mapping) and isinstance(final.get(cid), int | float):
                points.append((r.end_unix_s, float(final[cid])))
            if len(points) < 2:
                continue
            points.sort()
            times = np.array([p[0] for p in points], dtype=float)
            joules = np.maximum.accumulate(np.array([p[1] for p in points], dtype=float))
            total += float(joules[-1] - joules[0])
            inside += sum(
                float(np.interp(b, times, joules) - np.interp(a, times, joules)) for a, b in windows
            )
    if total <= 0:
        return None
    return min(max(inside / total, 0.0), 1.0)


def _host(r: Run) -> str:
    from greentrack.account.tiers import host_of

    return host_of(r)


def _utc(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- applying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """A stored calibration read back: the corrected IT total and its split by provenance,
    or (``it_kwh`` ``None``) why it was not applied; ``notes`` say which."""

    it_kwh: Figure | None
    kwh_by_provenance: Mapping[str, float]
    notes: tuple[str, ...]
    record: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any] | None:
        return dict(self.record) if self.record is not None else None


def apply_calibration(
    run: Run, it_kwh: Figure, kwh_by_provenance: Mapping[str, float]
) -> Applied | None:
    """The run's stored calibration applied to its IT total (``None``: the run has none).

    Not applied, with a note, when the file is damaged, belongs to another run, or was made
    against another IT total than the run's now (parts merged since, another greentrack):
    the factor is a ratio to that total, and the run's figures stand."""
    from greentrack.rundir.format import CALIBRATION

    path = run.path / CALIBRATION
    if not path.exists():
        return None
    try:
        rec = _load(path)
    except (ValueError, TypeError, KeyError) as e:
        return _refused(
            f"{CALIBRATION} is damaged ({str(e)[:200]}): not applied; store it again with "
            "greentrack calibrate RUN --meter FILE --store"
        )
    if rec["run_id"] != run.meta.get("run_id"):
        return _refused(f"{CALIBRATION} is of another run ({rec['run_id'][:8]}): not applied")
    was = float(rec["it_kwh"]["value"])
    if not math.isclose(was, it_kwh.value, rel_tol=1e-6, abs_tol=1e-12):
        return _refused(
            f"{CALIBRATION} was made against an IT total of {_wh(was)}; the run's is now "
            f"{_wh(it_kwh.value)} (the run changed since: parts merged?): not applied; "
            "calibrate it again"
        )
    f = Figure(**{k: float(rec["factor"][k]) for k in ("value", "low", "high")})
    share = float(rec["it_share_in_window"])
    covered = it_kwh.value * share
    rest = it_kwh.scaled(1.0 - share)
    corrected = Figure(
        f.value * it_kwh.value,
        f.low * covered + min(f.low * rest.value, rest.low),
        f.high * covered + max(f.high * rest.value, rest.high),
    )
    total = sum(kwh_by_provenance.values())
    split = {p: v / total for p, v in kwh_by_provenance.items()} if total > 0 else {}
    by_prov: dict[str, float] = {p: f.value * rest.value * s for p, s in split.items()}
    by_prov["measured"] = by_prov.get("measured", 0.0) + f.value * covered
    # the factor and its range as the report writes a range: rounded outward, one precision
    factor = quantity_range(f.value, f.low, f.high, PLAIN, 4)
    label = f"calibrated against a wall meter, factor {factor}"
    files = ", ".join(str(m.get("file")) for m in rec.get("meters") or ())
    own = " and ".join(sorted(p for p, v in kwh_by_provenance.items() if v > 0))
    note = (
        f"IT total {label}: the wall meter ({files or 'its readings'}, "
        f"+/-{num(float(rec['accuracy_percent']))} %) covered {float(rec['coverage']):.0%} of the "
        f"run, on {str(rec['created_utc'])[:10]}; the run's own {rec['it_tier']} total was "
        f"{_wh(it_kwh.value)}{f', {own}' if own else ''} ({CALIBRATION}, greentrack calibrate)"
    )
    record = {**rec, "label": label, "it_kwh_calibrated": corrected.to_dict()}
    return Applied(corrected, by_prov, (note,), record)


def _refused(note: str) -> Applied:
    return Applied(None, {}, (note,), None)


def _load(path: Any) -> dict[str, Any]:
    """``calibration.json``, checked (``ValueError`` naming what is wrong)."""
    from greentrack.safeload import Limits, load_json_text, read_text

    limits = Limits(max_bytes=STORE_MAX_BYTES, max_depth=8)
    rec = load_json_text(read_text(path, what="calibration", limits=limits), source=str(path))
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or rec.get("kind") != KIND:
        raise ValueError(f"not a {KIND} calibration of format {FORMAT}")
    if not isinstance(rec.get("run_id"), str):
        raise ValueError("no run_id")
    low, value, high = (float(rec["factor"][k]) for k in ("low", "value", "high"))
    if not all(math.isfinite(x) for x in (low, value, high)) or not (
        1 / MAX_FACTOR <= low <= value <= high <= MAX_FACTOR
    ):
        raise ValueError(f"a factor of {value!r} ({low!r} to {high!r})")
    share = float(rec["it_share_in_window"])
    coverage = float(rec["coverage"])
    if not (0 < share <= 1 and MIN_STORE_COVERAGE <= coverage <= 1):
        raise ValueError(f"a share of {share!r} or a coverage of {coverage!r}")
    if not math.isfinite(float(rec["it_kwh"]["value"])) or float(rec["accuracy_percent"]) < 0:
        raise ValueError("an IT total or an accuracy that is not a number")
    return rec


def _wh(kwh: float) -> str:
    """Energy in the unit that reads best, four significant figures, by the one formatter
    every view uses (:func:`greentrack.numbers.quantity`): ``17.31 mWh``, not ``0.01731 Wh``.

    >>> _wh(2.5), _wh(1.731e-5)
    ('2.500 kWh', '17.31 mWh')
    """
    from greentrack.numbers import ENERGY, quantity

    return quantity(kwh, ENERGY, 4)


__all__ = [
    "ACCURACY_BASIS",
    "DEFAULT_ACCURACY_PERCENT",
    "MIN_STORE_COVERAGE",
    "Applied",
    "CalibrationError",
    "Comparison",
    "MeterReadings",
    "TierError",
    "apply_calibration",
    "compare",
]
