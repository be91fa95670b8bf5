"""What an export writes, read from a run's account: metrics, params and series, named once.

The names are those of the live figures (docs/metrics.md) where they overlap, under the same
``energy/`` prefix: ``energy/total_kwh`` (with ``_low``/``_high``), ``energy/total_measured_kwh``,
``energy/total_estimated_kwh``, ``energy/total_co2e_g``, ``energy/epoch_kwh`` (``round_kwh``
for a federated run), ``energy/epoch_co2e_g``, ``energy/epoch_avg_power_w``. Added here:
facility energy, GPU-hours, intensity and PUE with their ranges and sources, and each channel
(or federated part) with its provenance. Every value is a field of the account, or one
division of two (average power); nothing is recomputed.

Steps: the series has one step per epoch (round), its index; ``energy/total_kwh`` and
``energy/total_co2e_g`` at each step are the run's figures so far (as the callbacks log them
live), and every total is written once more at :attr:`Record.final_step` (one past the last
epoch, 0 without epochs) with the account's final value, which is what an experiment tracker
shows as the metric's latest value.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greentrack._version import __version__
from greentrack.units import j_from_kwh

if TYPE_CHECKING:
    from greentrack.account import EnergyItem, Figure, RunAccount

PREFIX = "energy/"
MAX_PREFIX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ :]")
"""What MLflow refuses in a metric or param key (W&B and TensorBoard take it too)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a series: at ``step`` (the epoch or round index), written at
    ``wall_unix_s`` (the end of that epoch or round)."""

    step: int
    value: float
    wall_unix_s: float


@dataclass(frozen=True)
class Record:
    """A run's figures as an export writes them.

    ``metrics``: name -> the account's final value (kWh, g, h, s, gCO2e/kWh, W as the name
    says); ``params``: name -> text (region, sources, provenance of each channel...);
    ``series``: name -> points, one per epoch or round; ``final_step``: where the final
    values go on a target with steps.
    """

    run_id: str
    label: str
    prefix: str
    project: str | None
    run_dir: str
    status: str
    complete: bool
    start_unix_s: float
    end_unix_s: float
    unit: str | None
    final_step: int
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    series: Mapping[str, tuple[Point, ...]] = field(default_factory=dict)

    def steps(self) -> list[tuple[int, float, dict[str, float]]]:
        """The series grouped by step: ``(step, wall time, {name: value})``, in step order."""
        by_step: dict[int, tuple[float, dict[str, float]]] = {}
        for name, points in self.series.items():
            for p in points:
                by_step.setdefault(p.step, (p.wall_unix_s, {}))[1][name] = p.value
        return [(step, *by_step[step]) for step in sorted(by_step)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "label": self.label,
            "unit": self.unit,
            "final_step": self.final_step,
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "series": {
                name: [{"step": p.step, "value": p.value} for p in points]
                for name, points in self.series.items()
            },
        }


def check_prefix(prefix: str) -> str:
    """The prefix of every name: characters every target takes, at most 64 of them.

    >>> check_prefix("greentrack.")
    'greentrack.'
    """
    if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX or _UNSAFE.search(prefix):
        raise ValueError(
            f"prefix={prefix!r}: takes up to {MAX_PREFIX} letters, digits and _ - . / : or "
            "space (default 'energy/')"
        )
    return prefix


def safe_key(text: str) -> str:
    """``text`` as part of a metric name: characters MLflow refuses become ``_``.

    >>> safe_key("seg0-rank1/gpu0"), safe_key("gpu(0)")
    ('seg0-rank1/gpu0', 'gpu_0_')
    """
    return _UNSAFE.sub("_", text)


def record_of(account: RunAccount, label: str, prefix: str = PREFIX) -> Record:
    """The figures of ``account`` under ``prefix`` (checked by :func:`check_prefix`)."""
    p = check_prefix(prefix)
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}

    def figure(name: str, f: Figure | None) -> None:
        if f is not None:
            metrics[p + name] = f.value
            metrics[p + name + "_low"] = f.low
            metrics[p + name + "_high"] = f.high

    figure("total_kwh", account.it_kwh)
    metrics[p + "total_measured_kwh"] = account.measured_kwh
    metrics[p + "total_estimated_kwh"] = account.estimated_kwh
    figure("facility_kwh", account.facility_kwh)
    figure("total_co2e_g", account.co2e_g)
    metrics[p + "duration_s"] = account.duration_s
    if account.gpu_hours is not None:
        metrics[p + "gpu_hours"] = account.gpu_hours
    if account.carbon is not None:
        figure("intensity_gco2e_per_kwh", account.carbon.intensity)
        figure("pue", account.carbon.pue)
    for kind, items in (("component", account.components), ("part", account.parts)):
        for item in items:
            _item(metrics, params, f"{p}{kind}/{safe_key(item.key)}", item)
    params.update(_params(account, label, p))
    series, final_step = _series(account, p)
    for name, value in metrics.items():
        if not math.isfinite(value):  # the account's figures are finite: a bug, said so
            raise ValueError(f"the account's {name} is {value}: not exported (a greentrack bug)")
    return Record(
        run_id=account.run_id,
        label=_text(label),
        prefix=p,
        project=_text(account.project) if account.project is not None else None,
        run_dir=account.path,
        status=account.status,
        complete=account.complete,
        start_unix_s=account.start_unix_s,
        end_unix_s=account.end_unix_s,
        unit=account.units["unit"] if account.units else None,
        final_step=final_step,
        metrics=metrics,
        params={k: v for k, v in params.items() if v != ""},
        series=series,
    )


def _item(metrics: dict[str, float], params: dict[str, str], key: str, item: EnergyItem) -> None:
    """A channel (or a federated part): its energy and CO2e with ranges, and where they come
    from (provenance: measured, estimated, modeled, network-model; method; accuracy)."""
    for name, f in (("_kwh", item.energy_kwh), ("_co2e_g", item.co2e_g)):
        if f is not None:
            metrics[key + name] = f.value
            metrics[key + name + "_low"] = f.low
            metrics[key + name + "_high"] = f.high
    params[key + "/provenance"] = _text(item.provenance)
    params[key + "/method"] = _text(item.method)
    params[key + "/device"] = _text(item.label)
    params[key + "/accuracy"] = _text(item.accuracy)
    if not item.in_total:
        params[key + "/in_total"] = "false"


def _text(value: object) -> str:
    """A param's (or a run or experiment name's) text: one line, control characters shown as
    visible escapes (a run named with ESC sequences must not drive the terminal that lists
    the tracker's runs, nor break its table)."""
    from greentrack.views.escape import terminal_safe

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return terminal_safe(" ".join(str(value).replace("\r", " ").split("\n")))


def _params(a: RunAccount, label: str, p: str) -> dict[str, str]:
    out = {
        "run_id": a.run_id,
        "run_name": a.name or label,
        "project": a.project,
        "run_dir": a.path,
        "status": a.status,
        "complete": a.complete,
        "kind": a.kind,
        "start_utc": a.start_utc,
        "processes": a.processes,
        "gpu_devices": a.gpu_devices or None,
        "unit": a.units["unit"] if a.units else None,
        "greentrack_version": __version__,
    }
    c = a.carbon
    if c is not None:
        out |= {
            "region": c.region,
            "region_name": c.region_name,
            "intensity_method": c.method,
            "intensity_source": c.source,
            "intensity_year": c.year,
            "intensity_basis": c.basis,
            "intensity_kind": c.kind,
            "intensity_licence": c.licence,
            "intensity_accuracy": c.intensity_accuracy,
            "intensity_series_source": (c.series or {}).get("source"),
            "region_chosen_by": c.chosen_by,
            "pue_source": c.pue_source,
            "pue_year": c.pue_year,
        }
    return {p + k: _text(v) for k, v in out.items()}


def _series(a: RunAccount, p: str) -> tuple[dict[str, tuple[Point, ...]], int]:
    """Per epoch (round): its energy, CO2e and average power, and the run's totals so far."""
    rows = list(a.units["rows"]) if a.units else []
    if not rows:
        return {}, 0
    unit = str(a.units["unit"]) if a.units else "epoch"
    indices = [r["index"] for r in rows]
    increasing = all(isinstance(i, int) for i in indices) and all(
        x < y for x, y in itertools.pairwise(indices)
    )
    steps = [int(i) for i in indices] if increasing and indices[0] >= 0 else list(range(len(rows)))
    out: dict[str, list[Point]] = {}

    def add(name: str, step: int, value: float | None, wall: float) -> None:
        if value is not None:
            out.setdefault(p + name, []).append(Point(step, float(value), wall))

    for step, r in zip(steps, rows, strict=True):
        wall = float(r["end_unix_s"])
        add(f"{unit}_kwh", step, r["energy_kwh"], wall)
        add(f"{unit}_co2e_g", step, r["co2e_g"], wall)
        if r["duration_s"] and r["duration_s"] > 0:
            add(f"{unit}_avg_power_w", step, j_from_kwh(r["energy_kwh"]) / r["duration_s"], wall)
        add("total_kwh", step, r["cumulative_kwh"], wall)
        add("total_co2e_g", step, r["cumulative_co2e_g"], wall)
    return {k: tuple(v) for k, v in out.items()}, steps[-1] + 1
