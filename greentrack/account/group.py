"""The account of several runs: each run's account and their total; what a report of a
project needs beside: the mean and standard error over a group's runs (:class:`Spread`),
identical devices as one row (:func:`device_rows`) and the runs charged together at other
regions (:func:`region_totals`). Every view reads these figures; none computes its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.account.build import AccountOptions, RunAccount, account_run
from greentrack.account.figures import Figure, total
from greentrack.units import J_PER_KWH


@dataclass(frozen=True)
class Account:
    """Several runs: ``runs`` in the order given, and their totals (CO2e only over the runs
    that have a carbon basis; ``runs_without_carbon`` says how many do not)."""

    runs: tuple[RunAccount, ...]
    it_kwh: Figure
    co2e_g: Figure | None
    runs_without_carbon: int
    declared: tuple[Any, ...] = ()  # work not tracked, declared (estimated): energy_kwh, co2e_g

    @classmethod
    def of(cls, accounts: Sequence[RunAccount], declared: Sequence[Any] = ()) -> Account:
        """The group of these runs' accounts, and of work declared but not tracked (objects
        with ``energy_kwh`` and ``co2e_g`` figures, e.g.
        :class:`greentrack.analysis.untracked.DeclaredWork`), with their totals."""
        co2e = [a.co2e_g for a in accounts if a.co2e_g is not None]
        co2e += [d.co2e_g for d in declared if d.co2e_g is not None]
        missing = sum(1 for a in accounts if a.co2e_g is None)  # runs; declared apart
        return cls(
            runs=tuple(accounts),
            it_kwh=total([*(a.it_kwh for a in accounts), *(d.energy_kwh for d in declared)]),
            co2e_g=total(co2e) if co2e else None,
            runs_without_carbon=missing,
            declared=tuple(declared),
        )

    @property
    def measured_kwh(self) -> float:
        return sum(a.measured_kwh for a in self.runs)

    @property
    def declared_without_carbon(self) -> int:
        """Declared items with no CO2e (no region given)."""
        return sum(1 for d in self.declared if d.co2e_g is None)

    @property
    def declared_kwh(self) -> float:
        """Energy of the declared (untracked, estimated) work."""
        return float(sum(d.energy_kwh.value for d in self.declared))

    @property
    def energy_spread(self) -> Spread:
        """Mean and standard error of the runs' IT energy (kWh)."""
        return Spread.of([a.it_kwh.value for a in self.runs])

    @property
    def co2e_spread(self) -> Spread:
        """Mean and standard error of the runs' CO2e (g), over the runs that have one."""
        return Spread.of([a.co2e_g.value for a in self.runs if a.co2e_g is not None])

    @property
    def facility_kwh(self) -> float:
        """Energy at the facility: each run's IT energy x its PUE (its IT energy where it has
        no carbon basis), and each declared item's at its PUE (1 without a region)."""
        runs = sum((a.facility_kwh or a.it_kwh).value for a in self.runs)
        return float(runs + sum(d.energy_kwh.value * (d.pue or 1.0) for d in self.declared))

    @property
    def gpu_hours(self) -> float | None:
        """The runs' GPU-hours together (``None`` when none used a GPU)."""
        hours = [h for a in self.runs if (h := a.gpu_hours) is not None]
        return sum(hours) if hours else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "it_kwh": self.it_kwh.to_dict(),
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "runs_without_carbon": self.runs_without_carbon,
            "declared": [d.to_dict() for d in self.declared],
        }


def account_runs(paths_or_runs: Sequence[Any], options: AccountOptions | None = None) -> Account:
    """Load (paths) or take (:class:`~greentrack.rundir.reader.Run`) each run and account it."""
    from greentrack.rundir.reader import Run, load_run

    runs = [p if isinstance(p, Run) else load_run(Path(p)) for p in paths_or_runs]
    return Account.of([account_run(r, options) for r in runs])


@dataclass(frozen=True, slots=True)
class Spread:
    """The mean of per-run figures and its standard error (the sample standard deviation over
    ``sqrt(n)``): how much seeds of one experiment differ. ``se`` is ``None`` for fewer than
    two runs (one run says nothing about the spread), ``mean`` for none.

    >>> s = Spread.of([1.0, 2.0, 3.0])
    >>> s.n, s.mean, round(s.se, 4)
    (3, 2.0, 0.5774)
    >>> Spread.of([4.0]), Spread.of([])
    (Spread(n=1, mean=4.0, se=None), Spread(n=0, mean=None, se=None))
    """

    n: int
    mean: float | None
    se: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        xs = [float(x) for x in values]
        if not xs:
            return cls(0, None, None)
        m = sum(xs) / len(xs)
        if len(xs) < 2:
            return cls(len(xs), m, None)
        var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
        se = (var / len(xs)) ** 0.5
        return cls(len(xs), m, 0.0 if se <= 1e-9 * abs(m) else se)  # identical runs: no noise


@dataclass(frozen=True)
class DeviceRow:
    """Identical devices as one line of a component table ("8 × NVIDIA H100 80GB HBM3"): the
    channels of one component, device model, provenance and method, their energy summed.
    ``count`` is the devices of one run (the most any run of a group had); ``avg_power_w``
    is the average power of one device over the time the runs took."""

    component: str
    label: str
    provenance: str
    method: str
    count: int
    energy_kwh: Figure
    avg_power_w: float | None
    co2e_g: Figure | None
    keys: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "label": self.label,
            "provenance": self.provenance,
            "method": self.method,
            "count": self.count,
            "energy_kwh": self.energy_kwh.to_dict(),
            "avg_power_w": self.avg_power_w,
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "channels": list(self.keys),
        }


def device_rows(accounts: Sequence[RunAccount]) -> list[DeviceRow]:
    """The runs' channels with identical devices collapsed into one row each (same
    component, device model, provenance and method, including any gap the method notes), in
    the order they first appear; energy and CO2e summed over the devices and the runs."""
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for a in accounts:
        counts: dict[tuple[str, str, str, str], int] = {}
        for item in a.components:
            key = (item.component, item.label, item.provenance, item.method)
            counts[key] = counts.get(key, 0) + 1
            row = rows.setdefault(
                key, {"energy": [], "co2e": [], "keys": [], "count": 0, "device_s": 0.0}
            )
            row["energy"].append(item.energy_kwh)
            if item.co2e_g is not None:
                row["co2e"].append(item.co2e_g)
            if item.key not in row["keys"]:
                row["keys"].append(item.key)
            row["device_s"] += a.duration_s
        for key, n in counts.items():
            rows[key]["count"] = max(rows[key]["count"], n)
    out = []
    for (component, label, provenance, method), row in rows.items():
        energy = total(row["energy"])
        out.append(
            DeviceRow(
                component=component,
                label=label,
                provenance=provenance,
                method=method,
                count=row["count"],
                energy_kwh=energy,
                avg_power_w=energy.value * J_PER_KWH / row["device_s"]
                if row["device_s"] > 0
                else None,
                co2e_g=total(row["co2e"]) if row["co2e"] else None,
                keys=tuple(row["keys"]),
            )
        )
    return out


@dataclass(frozen=True)
class RegionTotal:
    """The runs charged together at one region's annual intensity, each at its own PUE
    (the sum of their counterfactual rows); ``actual``: every run was charged there."""

    region: str
    name: str
    gco2e_per_kwh: float
    year: int | None
    source: str
    co2e_g: float
    runs: int
    actual: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "name": self.name,
            "gco2e_per_kwh": self.gco2e_per_kwh,
            "year": self.year,
            "source": self.source,
            "co2e_g": self.co2e_g,
            "runs": self.runs,
            "actual": self.actual,
        }


def region_totals(accounts: Sequence[RunAccount]) -> list[RegionTotal]:
    """The regional comparison of several runs, once: each region that every run's
    counterfactuals priced, with the runs' CO2e there summed (a run's own region at its
    account's figure), lowest first. Empty when no region was priced for every run."""
    per_run = [
        {row["region"]: row for row in (a.counterfactuals or {}).get("regions") or []}
        for a in accounts
    ]
    if not per_run or not all(per_run):
        return []
    common = [k for k in per_run[0] if all(k in rows for rows in per_run[1:])]
    out = []
    for key in common:
        rows = [rows[key] for rows in per_run]
        first = rows[0]
        out.append(
            RegionTotal(
                region=str(first["region"]),
                name=str(first["name"]),
                gco2e_per_kwh=float(first["gco2e_per_kwh"]),
                year=first.get("year"),
                source=str(first.get("source") or ""),
                co2e_g=float(sum(r["co2e_g"] for r in rows)),
                runs=len(rows),
                actual=all(r.get("actual") for r in rows),
            )
        )
    return sorted(out, key=lambda r: r.co2e_g)
