"""A report of several runs as a paper's project appendix: what is common to the runs stated
once (hardware, measurement boundary, method, carbon bases and sources, the regional
comparison, equivalences), and the runs in groups, one section each.

Runs are grouped (:func:`group_runs`):

* ``--group-by name``: by their common name, the run name up to a seed suffix
  (``resnet_lr0.1_seed2``, ``baseline-3``, ``ablation s1``: the name before ``_seed2``,
  ``-3``, `` s1``);
* ``--group-by project``: by the project the runs recorded (``track(project=...)``);
* ``--group-by run``: a group per run; ``--group-by all``: one group;
* ``--group-by KEY`` (or ``config.KEY``): by ``config[KEY]``, the runs' recorded settings
  (a run without the key: by its common name);
* without ``--group-by``: by common name where two runs or more share one (seeds of one
  experiment), else one group of all the runs.

Every figure here is read from the accounts (:mod:`greentrack.account.group`: the totals,
the mean and standard error over a group's runs, identical devices as one row, the runs at
other regions); this module arranges them.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from greentrack.account.group import Account, device_rows, region_totals
from greentrack.report import prose
from greentrack.report.equivalences import equivalences
from greentrack.report.places import place

if TYPE_CHECKING:
    from greentrack.account import RunAccount
    from greentrack.rundir.reader import Run

GROUP_BY = ("name", "project", "run", "all")
"""The ``--group-by`` values that are not a config key (``config.KEY`` names a key that
shares one of these names)."""

# a seed or repeat number at the end of a run name, after a separator: "_seed2", "-3", " s1",
# "_rep04", ".trial-2"; "lr0" is no seed ("lr" is not a seed word)
_SEED = re.compile(r"[\s_.\-]+(?:seed|rep|repeat|trial|run|s)?[=_\-]?\d+$", re.IGNORECASE)


def common_name(name: str) -> str:
    """A run name without its seed suffix (the name of the experiment it repeats).

    >>> common_name("resnet18_lr=0.1_seed2"), common_name("baseline-3"), common_name("abl s1")
    ('resnet18_lr=0.1', 'baseline', 'abl')
    >>> common_name("sweep_lr0"), common_name("smoke_test"), common_name("run_7")
    ('sweep_lr0', 'smoke_test', 'run')
    """
    stripped = _SEED.sub("", name)
    return stripped or name


def _name(run: Run) -> str:
    return str(run.meta.get("name") or run.path.name)


def group_runs(runs: list[Run], by: str | None) -> tuple[str, list[tuple[str, list[int]]]]:
    """How the runs are grouped (``name``, ``project``, ``config``, ``run`` or ``all``) and
    the groups, each a name and its runs' indices, in order of first appearance."""
    key = by
    how = "name"
    if by is None:
        named = _grouped(runs, lambda r: common_name(_name(r)))
        if any(len(idx) > 1 for _, idx in named) and len(named) < len(runs):
            return "name", named
        return "all", [("all runs", list(range(len(runs))))]
    if by == "all":
        return "all", [("all runs", list(range(len(runs))))]
    if by == "run":
        return "run", [(_name(r), [i]) for i, r in enumerate(runs)]
    if by == "name":
        return "name", _grouped(runs, lambda r: common_name(_name(r)))
    if by == "project":
        return "project", _grouped(runs, lambda r: str(r.meta.get("project") or "no project"))
    key = by.removeprefix("config.")
    how = "config"

    def of(run: Run) -> str:
        config = run.meta.get("config") or {}
        if key in config:
            return f"{key}={config[key]}"
        return common_name(_name(run))

    return how, _grouped(runs, of)


def _grouped(runs: list[Run], key: Any) -> list[tuple[str, list[int]]]:
    order: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        order.setdefault(str(key(run)), []).append(i)
    return list(order.items())


def groups(
    named: list[tuple[str, list[int]]],
    how: str,
    accounts: list[RunAccount],
    reports: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Per group: its runs (labels and numbers), the group's total (the account of the
    group), the mean and standard error of its runs' totals, its devices (identical ones as
    one row) and its largest run (the one whose power the figure draws)."""
    out = []
    for name, idx in named:
        accts = [accounts[i] for i in idx]
        group = Account.of(accts)
        energy, co2e = group.energy_spread, group.co2e_spread
        largest = max(idx, key=lambda i: (accounts[i].it_kwh.value, -i))
        durations = [accounts[i].duration_s for i in idx]
        row: dict[str, Any] = {
            "group": name,
            "by": how,
            "runs": [reports[i]["label"] for i in idx],
            "numbers": [i + 1 for i in idx],
            "n": len(idx),
            "gpu_hours": group.gpu_hours,
            "duration_s": sum(durations),
            "duration_s_min": min(durations),
            "duration_s_max": max(durations),
            "energy_kwh": group.it_kwh.value,
            "energy_kwh_low": group.it_kwh.low,
            "energy_kwh_high": group.it_kwh.high,
            "measured_kwh": group.measured_kwh,
            "co2e_g": group.co2e_g.value if group.co2e_g else None,
            "co2e_g_low": group.co2e_g.low if group.co2e_g else None,
            "co2e_g_high": group.co2e_g.high if group.co2e_g else None,
            "runs_without_co2e": group.runs_without_carbon,
            "energy_kwh_mean": energy.mean,
            "energy_kwh_se": energy.se,
            "co2e_g_mean": co2e.mean,
            "co2e_g_se": co2e.se,
            "largest": reports[largest]["label"],
            "largest_number": largest + 1,
            "devices": [_device(d, group.it_kwh.value) for d in device_rows(accts)],
            "hardware": _hardware_phrase([reports[i] for i in idx]),
        }
        row["sentence"] = prose.group_sentence(row)
        out.append(row)
    return out


def _device(d: Any, total_kwh: float) -> dict[str, Any]:
    """A collapsed device row as the report's tables show it (flat figures, its share)."""
    return {
        "component": d.component,
        "device": d.label,
        "count": d.count,
        "source": d.provenance,
        "method": d.method,
        "energy_kwh": d.energy_kwh.value,
        "energy_kwh_low": d.energy_kwh.low,
        "energy_kwh_high": d.energy_kwh.high,
        "avg_power_w": d.avg_power_w,
        "share": d.energy_kwh.value / total_kwh if total_kwh else 0.0,
        "co2e_g": d.co2e_g.value if d.co2e_g else None,
        "channels": list(d.keys),
    }


def devices_of(account: RunAccount) -> list[dict[str, Any]]:
    """One run's component rows, identical devices collapsed (the component table's rows)."""
    total_kwh = sum(c.energy_kwh.value for c in account.components)
    return [_device(d, total_kwh) for d in device_rows([account])]


def _hardware_phrase(reports: list[dict[str, Any]]) -> str:
    """What the runs ran on, in words ("2 × NVIDIA H100 80GB HBM3" or "a CPU alone"), each
    distinct set once."""
    sets = []
    for r in reports:
        gpus = r["hardware"]["gpus"]
        text = (
            " and ".join(f"{g['count']} \u00d7 {g['model']}" for g in gpus)
            if gpus
            else "a CPU alone"
        )
        if text not in sets:
            sets.append(text)
    return "; ".join(sets)


def numbers_label(numbers: list[int], total: int) -> str:
    """Which runs a line applies to, in words: "all runs", "run 3", "runs 1–4 and 7".

    >>> numbers_label([1, 2, 3, 4, 7], 9), numbers_label([3], 9), numbers_label([1, 2], 2)
    ('runs 1–4 and 7', 'run 3', 'all runs')
    """
    if len(numbers) == total and total > 1:
        return "all runs"
    spans: list[str] = []
    ordered = sorted(set(numbers))
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(
            str(start)
            if start == prev
            else f"{start}\u2013{prev}"
            if prev > start + 1
            else f"{start}, {prev}"
        )
        if n is not None:
            start = prev = n
    word = "run" if len(ordered) == 1 else "runs"
    text = spans[0] if len(spans) == 1 else ", ".join(spans[:-1]) + " and " + spans[-1]
    return f"{word} {text}"


def _variants(
    reports: list[dict[str, Any]], of: Any, key: Any = None
) -> list[tuple[Any, list[int]]]:
    """The distinct values ``of(report)`` takes over the runs, each with its run numbers."""
    found: dict[str, tuple[Any, list[int]]] = {}
    for i, r in enumerate(reports):
        value = of(r)
        if value is None:
            continue
        k = json.dumps(key(value) if key else value, sort_keys=True, default=str)
        found.setdefault(k, (value, []))[1].append(i + 1)
    return list(found.values())


def project(
    reports: list[dict[str, Any]],
    accounts: list[RunAccount],
    declared: list[Any],
    how: str,
    key: str | None,
    named: list[tuple[str, list[int]]],
) -> dict[str, Any]:
    """What the report states once for all its runs: their hardware and software sets, the
    measurement boundary, the method, the carbon bases, the runs at other regions, the
    equivalences of the total and the runs' notes (each once, with the runs it concerns)."""
    n = len(reports)

    def label(numbers: list[int]) -> str | None:
        return None if len(numbers) == n else numbers_label(numbers, n)

    hardware = [
        {**value, "runs": label(nums)}
        for value, nums in _variants(
            reports, lambda r: {"hardware": _hardware_facts(r), "software": r["software"]}
        )
    ]
    rows: dict[str, list[tuple[dict[str, Any], list[int]]]] = {}
    for i, r in enumerate(reports):
        for b in r["boundary"]:
            variants = rows.setdefault(b["component"], [])
            plain = {k: v for k, v in b.items() if k != "devices"}
            for value, nums in variants:
                if value == plain:
                    nums.append(i + 1)
                    break
            else:
                variants.append((plain, [i + 1]))
    boundary_rows = [
        {**value, "runs": label(nums)} for variants in rows.values() for value, nums in variants
    ]
    items: dict[str, list[int]] = {}
    for i, r in enumerate(reports):
        for item in r["method"]:
            # the CO2e formula and its sources: the carbon bases, stated apart below
            if not item.startswith("CO2e = "):
                items.setdefault(item, []).append(i + 1)
    # an item that holds for some runs only says which ("Run 5: Federated total = ...")
    method = [
        item if len(nums) == n else f"{numbers_label(nums, n).capitalize()}: {item}"
        for item, nums in items.items()
    ]
    carbon = [
        {**value, "runs": label(nums)}
        for value, nums in _variants(reports, lambda r: _carbon_basis(r["carbon"]))
    ]
    group = Account.of(accounts, declared)
    co2e = group.co2e_g.value if group.co2e_g else None
    notes = _notes(reports)
    embodied = next((r["embodied"] for r in reports if r.get("embodied")), None)
    return {
        "grouped_by": how,
        "key": key,
        # the brief and the project table list groups where runs were grouped into several
        # (seeds of one experiment, a project, a setting), else the runs themselves
        "by_group": how in ("name", "project", "config") and 1 < len(named) < n,
        "hardware": hardware,
        "boundary": boundary_rows,
        "method": method,
        "carbon": carbon,
        "regions": [
            {**row.to_dict(), "name": place(row.region, row.name).cell}
            for row in region_totals(accounts)
        ],
        "regions_assumption": "each run's power profile is unchanged by moving it, at its own PUE",
        "equivalences": [e.to_dict() for e in equivalences(co2e, group.facility_kwh)],
        "embodied": embodied,
        "notes": notes,
    }


def _notes(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct note of the runs once, with the runs it concerns."""
    found: dict[str, list[int]] = {}
    for i, r in enumerate(reports):
        for text in r["notes"]:
            nums = found.setdefault(text, [])
            if i + 1 not in nums:
                nums.append(i + 1)
    n = len(reports)
    return [{"text": t, "runs": numbers_label(nums, n)} for t, nums in found.items()]


def _hardware_facts(r: dict[str, Any]) -> dict[str, Any]:
    h = r["hardware"]
    return {
        "gpus": h["gpus"],
        "cpu": h["cpu"],
        "memory_gb": round(h["memory_gb"], 1) if h["memory_gb"] else None,
        "hosts": h["hosts"],
        "processes": h["processes"],
    }


def _carbon_basis(c: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a run's CO2e was charged at, without the run's own figures: two runs charged
    alike share it."""
    if c is None:
        return None
    keep = (
        "method",
        "region",
        "region_name",
        "place",
        "grid_name",
        "gco2e_per_kwh",
        "year",
        "basis",
        "intensity_kind",
        "source",
        "licence",
        "intensity_low",
        "intensity_high",
        "pue",
        "pue_low",
        "pue_high",
        "pue_source",
        "pue_year",
        "chosen_by",
    )
    out = {k: c.get(k) for k in keep}
    if c["method"] == "annual":
        out["effective_gco2e_per_kwh"] = c["effective_gco2e_per_kwh"]
    else:
        series = c.get("series") or {}
        out["series"] = {"kind": series.get("kind"), "source": series.get("source")}
    return out
