"""The report model: everything a report says about one or more runs, as plain data.

Every output format (LaTeX, Markdown, HTML, JSON, model card) is rendered from the dict that
:meth:`Report.to_dict` returns, and every number in prose is formatted by :mod:`.numbers`, so
the formats cannot disagree. Nothing here is hard-coded: energies come from the run directory
(:func:`greentrack.load_run`), carbon from the settings the run recorded (or those given to
the report), counterfactuals from :mod:`greentrack.analysis.counterfactual`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack._version import __version__
from greentrack.report.equivalences import equivalences
from greentrack.report.numbers import duration, energy, mass, num
from greentrack.store import FORMAT_VERSION

if TYPE_CHECKING:
    from greentrack.carbon.accounting import CarbonSettings
    from greentrack.carbon.series import EnergyCurve, IntensitySeries
    from greentrack.run import Run, RunSummary

SCHEMA = "greentrack-report/1"
J_PER_KWH = 3.6e6
DEFAULT_REGIONS = ("SE", "FR", "GB", "DE", "US", "PL", "IN", "ZA")

# What each method is, and how good a source it is (the boundary table's "accuracy class").
METHODS: dict[str, tuple[str, str]] = {
    "nvml-total-energy-counter": (
        "NVML total-energy counter (mJ since driver load), read at span edges and every 5 s",
        "on-chip sensor of the GPU board; not a calibrated meter",
    ),
    "integral of nvml-field-power-instant": (
        "NVML instantaneous power field, sampled and integrated",
        "on-chip sensor of the GPU board; not a calibrated meter",
    ),
    "integral of nvml-power-usage (~1 s average on recent GPUs)": (
        "NVML power usage (a ~1 s average on recent GPUs), sampled and integrated",
        "on-chip sensor, averaged: misses bursts shorter than its window",
    ),
    "rapl-powercap-energy-counter": (
        "RAPL energy counter (Linux powercap), read every sample",
        "on-chip model of package/DRAM power; not a calibrated meter",
    ),
    "tdp-x-utilisation": (
        "CPU TDP x the process's CPU utilisation",
        "model: can be off by tens of percent",
    ),
    "per-vcpu-specpower-coefficients": (
        "per-vCPU min/max watts (Cloud Carbon Footprint, SPECpower) x utilisation",
        "model: can be off by tens of percent",
    ),
    "w-per-gb-x-installed-memory": (
        "constant watts per GB of installed memory",
        "model: contested constant-power assumption",
    ),
}

NOT_COUNTED_ALWAYS = (
    ("embodied carbon", "manufacturing and end of life of the hardware are outside the scope"),
    ("networking", "data-centre and Internet networking, except FL traffic where reported"),
    ("cooling and facility", "beyond what the PUE factor covers"),
    ("idle and preparation", "data preparation, failed runs and idle hardware outside the run"),
)


@dataclass
class ReportOptions:
    """What a report adds to what the runs recorded.

    Attributes:
        region: charge the runs at this region's annual intensity (overrides the run's).
        pue: PUE to apply (overrides the run's); needs a region, or a run with one.
        regions: counterfactual regions; ``None`` uses :data:`DEFAULT_REGIONS` (or the
            regions of a ``whatif.json`` next to the run), ``[]`` shows none.
        intensity_csv: an intensity time series (``timestamp,gco2e_per_kwh``) to charge
            the run with, instead of the annual figure.
        flexible_start_s / pause_resume: Flexible Start window in seconds and Pause & Resume
            maximum stretch (both need ``intensity_csv``).
        metric / target: the model metric to report emissions against, and the value to
            reach (default: the best value reached).
        title: the report's title.
    """

    region: str | None = None
    pue: float | str | None = None
    regions: Sequence[str] | None = None
    intensity_csv: Path | None = None
    tz: str | None = None
    kind: str = "average"
    fill_gaps: str = "error"
    flexible_start_s: float | None = None
    pause_resume: float | None = None
    metric: str | None = None
    target: float | None = None
    title: str | None = None


@dataclass
class Report:
    """A report over one or more runs. ``data`` is what every format renders."""

    data: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    series: IntensitySeries | None = None
    curves: dict[str, EnergyCurve] = field(default_factory=dict)  # by run id

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def curve(self, run: Run) -> EnergyCurve:
        """Cumulative IT energy of ``run`` and its parts over time, built once per run and
        shared by the carbon series, the counterfactuals, the metric and the figures."""
        key = run.meta["run_id"]
        if key not in self.curves:
            self.curves[key] = _combined_curve([run, *run.parts])
        return self.curves[key]


def build_report(paths: Sequence[str | Path], options: ReportOptions | None = None) -> Report:
    """Load each run directory and build the report.

    Raises:
        RunFormatError: a path is not a run directory.
        ValueError: inconsistent options (e.g. Flexible Start without a series).
    """
    from greentrack.carbon.series import IntensitySeries
    from greentrack.run import load_run

    opts = options or ReportOptions()
    if (opts.flexible_start_s is not None or opts.pause_resume is not None) and (
        opts.intensity_csv is None
    ):
        raise ValueError(
            "Flexible Start and Pause & Resume need an intensity series (--intensity-csv)"
        )
    if not paths:
        raise ValueError("no run directory given")
    runs = [load_run(p) for p in paths]
    series = (
        IntensitySeries.from_csv(opts.intensity_csv, tz=opts.tz, kind=opts.kind)
        if opts.intensity_csv
        else None
    )
    report = Report({}, runs, series)
    labels = _unique_labels(runs)
    reports = [
        _run_report(run, label, opts, report) for run, label in zip(runs, labels, strict=True)
    ]
    import time

    from greentrack.metadata import utc_iso

    data: dict[str, Any] = {
        "schema": SCHEMA,
        "title": opts.title or _default_title(reports),
        "generated_utc": utc_iso(time.time()),
        "greentrack_version": __version__,
        "runs": reports,
        "comparison": _comparison(reports) if len(reports) > 1 else None,
    }
    report.data = data
    return report


def _default_title(reports: list[dict[str, Any]]) -> str:
    if len(reports) == 1:
        return f"Energy and carbon footprint of {reports[0]['label']}"
    return f"Energy and carbon footprint of {len(reports)} runs"


def _unique_labels(runs: list[Run]) -> list[str]:
    labels = [str(r.meta.get("name") or r.path.name or r.meta["run_id"][:8]) for r in runs]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label if n == 0 and labels.count(label) == 1 else f"{label} ({n + 1})")
    return out


# --- one run -------------------------------------------------------------------------------


def _run_report(run: Run, label: str, opts: ReportOptions, report: Report) -> dict[str, Any]:
    summary = run.summary()
    settings, chosen_by = _carbon_settings(run, opts)
    all_runs = [run, *run.parts]
    kind = _kind(run)
    measured_kwh = _finite(summary.measured_energy_j) / J_PER_KWH
    estimated_kwh = _finite(summary.estimated_energy_j) / J_PER_KWH
    it_kwh = measured_kwh + estimated_kwh
    pue = settings.pue.value if settings else None
    notes = list(summary.notes)
    federated = _federated(run, settings) if (run.path / "fl.jsonl").exists() else None
    series = report.series
    curve = report.curve(run) if (series is not None or opts.metric) else None
    carbon = _carbon(summary, settings, chosen_by, series, curve, opts, notes)
    total_kwh_facility = it_kwh * pue if pue else None
    if federated:
        # the run's own channels are the server's: FL totals add clients and the network
        notes.append(
            "the federated breakdown adds the clients' reported energy and the network "
            "energy of the bytes exchanged to the server's own energy"
        )
    out: dict[str, Any] = {
        "id": run.meta["run_id"],
        "label": label,
        "path": str(run.path),
        "project": run.meta.get("project"),
        "kind": kind,
        "status": summary.status,
        "complete": summary.complete,
        "start_utc": summary.start_utc,
        "duration_s": summary.duration_s,
        "hardware": _hardware(all_runs),
        "software": _software(run),
        "boundary": _boundary(all_runs, summary),
        "sampling": dict(run.meta.get("sampling") or {}),
        "energy": {
            "measured_kwh": measured_kwh,
            "estimated_kwh": estimated_kwh,
            "it_kwh": it_kwh,
            "pue": pue,
            "facility_kwh": total_kwh_facility,
            "components": _components(summary, pue, settings),
        },
        "phases": _phases(summary),
        "units": _units(summary, federated),
        "carbon": carbon,
        "counterfactuals": _counterfactuals(run, opts, series, settings, it_kwh, curve),
        "federated": federated,
        "metric": _metric(all_runs, opts, federated, summary, settings, curve),
        "forecast": _forecast(run, summary, federated),
        "equivalences": [
            e.to_dict()
            for e in equivalences(
                carbon["co2e_g"] if carbon else None,
                total_kwh_facility if total_kwh_facility is not None else it_kwh,
            )
        ],
        "reproducibility": _reproducibility(run),
        "notes": notes,
    }
    out["headline"] = {
        "energy_kwh": federated["total_kwh"] if federated else it_kwh,
        "measured_kwh": measured_kwh + (federated["client_measured_kwh"] if federated else 0.0),
        "co2e_g": (federated["co2e_g"] if federated else carbon["co2e_g"]) if carbon else None,
        "pue": pue,
    }
    out["method"] = _method(out)
    out["sentence"] = _sentence(out)
    return out


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _kind(run: Run) -> str:
    meta = run.meta
    if meta.get("fl_role") == "server" or (run.path / "fl.jsonl").exists():
        return "federated"
    if meta.get("framework") == "lightning" or any(s == "fit" for s in _span_names(run)):
        return "training"
    return "run"


def _span_names(run: Run) -> set[str]:
    frame = run.spans
    return set(frame["name"]) if not frame.empty else set()


def _carbon_settings(run: Run, opts: ReportOptions) -> tuple[CarbonSettings | None, str | None]:
    from greentrack.carbon.accounting import resolve_settings, settings_from_meta

    if opts.region is not None:
        return resolve_settings(opts.region, pue=opts.pue), "given to greentrack report"
    recorded = settings_from_meta(run.meta)
    if recorded is not None and opts.pue is not None:
        from greentrack.carbon.accounting import CarbonSettings
        from greentrack.carbon.pue import resolve_pue

        return (
            CarbonSettings(
                recorded.intensity, resolve_pue(opts.pue, recorded.intensity), recorded.how_chosen
            ),
            f"{recorded.how_chosen} (PUE given to greentrack report)",
        )
    if recorded is None and opts.pue is not None:
        raise ValueError(
            f"{run.path} recorded no region: --pue needs --region too (e.g. --region DE)"
        )
    return recorded, (recorded.how_chosen if recorded else None)


def _hardware(runs: list[Run]) -> dict[str, Any]:
    gpus: dict[str, dict[str, Any]] = {}
    hosts: set[str] = set()
    cpu: dict[str, Any] = {}
    memory_bytes = 0
    for r in runs:
        host = r.meta.get("host") or {}
        name = str(host.get("hostname", ""))
        if name not in hosts:
            hosts.add(name)
            memory_bytes += int(host.get("memory_total_bytes") or 0)
        if not cpu and host.get("cpu_model"):
            cpu = {
                "model": host.get("cpu_model"),
                "packages": host.get("cpu_packages"),
                "logical_cores": host.get("cpu_logical_cores"),
            }
        for ch in r.channels:
            if ch["component"] != "gpu":
                continue
            d = ch.get("details") or {}
            key = f"{name}/{d.get('uuid', ch['id'])}"
            gpus.setdefault(
                ch["name"],
                {
                    "model": ch["name"],
                    "devices": set(),
                    "driver": d.get("driver"),
                    "power_limit_w": d.get("power_limit_w"),
                    "mig": bool(d.get("mig")),
                },
            )["devices"].add(key)
    return {
        "gpus": [
            {
                "model": g["model"],
                "count": len(g["devices"]),
                "driver": g["driver"],
                "power_limit_w": g["power_limit_w"],
                "mig": g["mig"],
            }
            for g in gpus.values()
        ],
        "gpu_count": sum(len(g["devices"]) for g in gpus.values()),
        "cpu": cpu or None,
        "memory_gb": memory_bytes / 1e9 if memory_bytes else None,
        "hosts": len(hosts),
        "processes": len(runs),
        "container": bool((runs[0].meta.get("host") or {}).get("container")),
    }


def _software(run: Run) -> dict[str, Any]:
    host = run.meta.get("host") or {}
    return {
        "greentrack": run.meta.get("greentrack_version"),
        "python": host.get("python"),
        "os": host.get("os"),
        "packages": dict(run.meta.get("software") or {}),
    }


def _boundary(runs: list[Run], summary: RunSummary) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    sampling = runs[0].meta.get("sampling") or {}
    for ch in (c for r in runs for c in r.channels):
        method, accuracy = METHODS.get(ch["method"], (ch["method"], "see the method"))
        rate = (
            f"power at {sampling.get('power_hz', '?'):g} Hz"
            if ch.get("power_method") and isinstance(sampling.get("power_hz"), int | float)
            else "counter read at each sample"
        )
        row = rows.setdefault(
            ch["component"],
            {
                "component": ch["component"],
                "status": ch["source"],
                "method": method,
                "sampling": rate,
                "accuracy": accuracy,
                "devices": 0,
                "detail": "",
            },
        )
        row["devices"] += 1
    for b in runs[0].meta.get("boundary", []):
        if b["component"] not in rows:
            rows[b["component"]] = {
                "component": b["component"],
                "status": b["status"],
                "method": "",
                "sampling": "",
                "accuracy": "",
                "devices": 0,
                "detail": b["detail"],
            }
    out = list(rows.values())
    out += [
        {
            "component": c,
            "status": "not counted",
            "method": "",
            "sampling": "",
            "accuracy": "",
            "devices": 0,
            "detail": why,
        }
        for c, why in NOT_COUNTED_ALWAYS
    ]
    return out


def _components(
    summary: RunSummary, pue: float | None, settings: CarbonSettings | None
) -> list[dict[str, Any]]:
    total = sum(_finite(c.energy_j) for c in summary.components) or 1.0
    out = []
    for c in summary.components:
        kwh = _finite(c.energy_j) / J_PER_KWH
        out.append(
            {
                "channel": c.channel,
                "component": c.component,
                "device": c.name,
                "source": c.source,
                "method": c.method,
                "energy_kwh": kwh,
                "avg_power_w": c.energy_j / summary.duration_s if summary.duration_s > 0 else None,
                "share": _finite(c.energy_j) / total,
                "co2e_g": kwh * pue * settings.intensity.gco2e_per_kwh
                if settings and pue
                else None,
            }
        )
    return out


def _phases(summary: RunSummary) -> list[dict[str, Any]]:
    """Energy by span name (phase), in order of first appearance."""
    by_name: dict[str, dict[str, Any]] = {}
    for s in summary.spans:
        p = by_name.setdefault(
            s.name,
            {
                "name": s.name,
                "depth": s.depth,
                "count": 0,
                "duration_s": 0.0,
                "measured_kwh": 0.0,
                "estimated_kwh": 0.0,
            },
        )
        p["count"] += 1
        p["duration_s"] += s.duration_s
        p["measured_kwh"] += _finite(s.measured_energy_j) / J_PER_KWH
        p["estimated_kwh"] += _finite(s.estimated_energy_j) / J_PER_KWH
    for p in by_name.values():
        p["energy_kwh"] = p["measured_kwh"] + p["estimated_kwh"]
    return list(by_name.values())


def _units(summary: RunSummary, federated: dict[str, Any] | None) -> dict[str, Any] | None:
    """Energy per epoch (Lightning) or per round (Flower, with clients and network)."""
    if federated:
        return {"unit": "round", "rows": federated["per_round"]}
    rows = []
    for s in summary.spans:
        if s.name == "train_epoch" and isinstance(s.tags.get("epoch"), int):
            rows.append(
                {
                    "index": s.tags["epoch"],
                    "duration_s": s.duration_s,
                    "energy_kwh": (_finite(s.measured_energy_j) + _finite(s.estimated_energy_j))
                    / J_PER_KWH,
                }
            )
    return {"unit": "epoch", "rows": rows} if rows else None


def _combined_curve(runs: list[Run]) -> EnergyCurve:
    """Cumulative IT energy of a run and its parts (other ranks, segments) over UTC time."""
    import numpy as np

    from greentrack.carbon.accounting import energy_curve
    from greentrack.carbon.series import EnergyCurve

    curves = [energy_curve(r) for r in runs]
    if len(curves) == 1:
        return curves[0]
    t = np.unique(np.concatenate([c.t_unix_s for c in curves]))
    total = np.zeros(len(t))
    for c in curves:
        total += np.interp(t, c.t_unix_s, c.energy_j, left=0.0, right=float(c.energy_j[-1]))
    return EnergyCurve(t, total)


def _carbon(
    summary: RunSummary,
    settings: CarbonSettings | None,
    chosen_by: str | None,
    series: IntensitySeries | None,
    curve: EnergyCurve | None,
    opts: ReportOptions,
    notes: list[str],
) -> dict[str, Any] | None:
    if settings is None and series is None:
        return None
    measured = _finite(summary.measured_energy_j) / J_PER_KWH
    estimated = _finite(summary.estimated_energy_j) / J_PER_KWH
    pue = settings.pue.value if settings else 1.0
    out: dict[str, Any] = {
        "method": "annual",
        "pue": pue,
        "pue_source": settings.pue.source if settings else "not given (1.0 applied)",
        "pue_year": settings.pue.year if settings else None,
        "chosen_by": chosen_by,
        "series": None,
    }
    if settings is not None:
        i = settings.intensity
        out.update(
            region=i.region,
            region_name=i.name,
            gco2e_per_kwh=i.gco2e_per_kwh,
            year=i.year,
            basis=i.basis,
            intensity_kind=i.kind,
            source=i.source.cite(),
            licence=i.source.licence,
        )
    else:
        out.update(
            region=None,
            region_name=None,
            gco2e_per_kwh=None,
            year=None,
            basis=None,
            intensity_kind=opts.kind,
            source=None,
            licence=None,
        )
    if series is not None and curve is not None:
        from greentrack.carbon.series import integrate

        annual = settings.intensity.gco2e_per_kwh if settings else None
        result = integrate(
            curve,
            series,
            pue=pue,
            gaps="annual" if opts.fill_gaps == "annual" else "error",
            annual_gco2e_per_kwh=annual if opts.fill_gaps == "annual" else None,
        )
        out["series"] = result.to_dict()
        out["method"] = "series"
        weighted = result.weighted_gco2e_per_kwh
        out["effective_gco2e_per_kwh"] = weighted
        share = estimated / (measured + estimated) if measured + estimated > 0 else 0.0
        out["co2e_g"] = result.co2e_g
        out["measured_co2e_g"] = result.co2e_g * (1 - share)
        out["estimated_co2e_g"] = result.co2e_g * share
    else:
        assert settings is not None
        g = settings.intensity.gco2e_per_kwh
        out["effective_gco2e_per_kwh"] = g
        out["measured_co2e_g"] = measured * pue * g
        out["estimated_co2e_g"] = estimated * pue * g
        out["co2e_g"] = out["measured_co2e_g"] + out["estimated_co2e_g"]
    return out


def _counterfactuals(
    run: Run,
    opts: ReportOptions,
    series: IntensitySeries | None,
    settings: CarbonSettings | None,
    it_kwh: float,
    curve: EnergyCurve | None,
) -> dict[str, Any] | None:
    from greentrack.analysis import counterfactual as cf
    from greentrack.carbon.intensity import resolve_region

    saved: dict[str, Any] = {}
    whatif = run.path / "whatif.json"
    if whatif.exists():
        try:
            saved = json.loads(whatif.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            saved = {}
    pue = settings.pue.value if settings else 1.0
    keys: Sequence[str]
    if opts.regions is not None:
        keys = opts.regions
    elif saved.get("regions"):
        keys = [r["region"] for r in saved["regions"]]
    else:
        keys = DEFAULT_REGIONS
    out: dict[str, Any] = {
        "pue": pue,
        "assumption": "the run's power profile is unchanged by moving, shifting or pausing it",
        "regions": [],
        "flexible_start": None,
        "pause_resume": None,
        "from_whatif": [],
    }
    if keys:
        grids = [resolve_region(k) for k in keys]
        if settings is not None and settings.intensity.grid_key not in {g.grid_key for g in grids}:
            grids.append(settings.intensity)
        rows = [r.to_dict() for r in cf.regions(it_kwh, pue, grids)]
        actual = settings.intensity.region if settings else None
        for r in rows:
            r["actual"] = r["region"] == actual
        out["regions"] = rows
    if series is not None and curve is not None:
        if opts.flexible_start_s is not None:
            out["flexible_start"] = _with_grams(
                cf.flexible_start(curve, series, opts.flexible_start_s, pue=pue).to_dict()
            )
        if opts.pause_resume is not None:
            out["pause_resume"] = _with_grams(
                cf.pause_resume(curve, series, opts.pause_resume, pue=pue).to_dict()
            )
    else:
        for key in ("flexible_start", "pause_resume"):
            if key in saved:
                out[key] = _with_grams(saved[key])  # from `greentrack whatif`, with its series
                out["from_whatif"].append(key)
    has_any = out["regions"] or out["flexible_start"] or out["pause_resume"]
    return out if has_any else None


def _part_source(part: str, b: Any) -> str:
    if part in ("upload", "download"):
        return "estimated"
    if part == "client_compute" and b.client_estimated_kwh:
        kind = (
            "modeled"
            if any("modeled from a device profile" in n for n in b.notes)
            else ("estimated")
        )
        return f"measured + {kind}" if b.client_measured_kwh else kind
    return "measured"


def _with_grams(d: dict[str, Any]) -> dict[str, Any]:
    """``*_kg`` figures of a counterfactual also in grams (``*_g``), as the report shows them."""
    out = dict(d)
    for key, value in d.items():
        if key.endswith("_kg") and isinstance(value, int | float):
            out[key[:-3] + "_g"] = value * 1000.0
    return out


def _federated(run: Run, settings: CarbonSettings | None) -> dict[str, Any]:
    from greentrack.analysis.fl import breakdown, per_round

    b = breakdown(run)
    d = b.to_dict()
    g_per_kwh = settings.pue.value * settings.intensity.gco2e_per_kwh if settings else None
    parts = {
        "client_compute": b.client_measured_kwh + b.client_estimated_kwh,
        "upload": b.upload_kwh,
        "download": b.download_kwh,
        "server": b.server_kwh,
    }
    d["parts"] = [
        {
            "part": k,
            "energy_kwh": v,
            "share": d["shares"][k],
            "co2e_g": v * g_per_kwh if g_per_kwh is not None else None,
            "source": _part_source(k, b),
        }
        for k, v in parts.items()
    ]
    d["co2e_g"] = b.total_kwh * g_per_kwh if g_per_kwh is not None else None
    d["per_round"] = per_round(run)
    d["network_range_co2e_g"] = (
        [x * g_per_kwh for x in b.network_range_kwh] if g_per_kwh is not None else None
    )
    return d


def _metric(
    runs: list[Run],
    opts: ReportOptions,
    federated: dict[str, Any] | None,
    summary: RunSummary,
    settings: CarbonSettings | None,
    curve: EnergyCurve | None,
) -> dict[str, Any] | None:
    from greentrack.analysis.metrics import first_reaching, lower_is_better, metric_series

    events = [e for r in runs for e in r.events]
    series = metric_series(events)
    if not series:
        return None
    name = opts.metric
    if name is None:
        return {"available": sorted(series), "name": None}
    if name not in series:
        raise ValueError(
            f"metric {name!r} was not recorded in {runs[0].path}; "
            f"recorded: {', '.join(sorted(series))}. Pass one of them to --metric"
        )
    points = series[name]
    lower = lower_is_better(name)
    hit = first_reaching(points, opts.target, lower_better=lower)
    out: dict[str, Any] = {
        "available": sorted(series),
        "name": name,
        "lower_is_better": lower,
        "target": opts.target,
        "best": min(p.value for p in points) if lower else max(p.value for p in points),
        "final": points[-1].value,
        "points": [{"index": p.step, "value": p.value} for p in points],
        "reached_at": hit.step if hit else None,
        "energy_kwh_to_reach": None,
        "co2e_g_to_reach": None,
    }
    if hit is None:
        return out
    kwh: float | None = None
    if federated:
        kwh = sum(r["total_kwh"] for r in federated["per_round"] if r["round"] <= hit.step)
    else:
        ends = [
            s for s in summary.spans if s.name == "train_epoch" and s.tags.get("epoch") == hit.step
        ]
        if ends and curve is not None:
            frame = runs[0].spans
            row = frame[frame["span_id"] == ends[-1].span_id]
            t_end = float(row["end_unix_s"].iloc[0])
            kwh = float(curve.energy_between(curve.start, t_end)) / J_PER_KWH
    out["energy_kwh_to_reach"] = kwh
    if kwh is not None and settings is not None:
        out["co2e_g_to_reach"] = kwh * settings.pue.value * settings.intensity.gco2e_per_kwh
    return out


def _forecast(
    run: Run, summary: RunSummary, federated: dict[str, Any] | None
) -> dict[str, Any] | None:
    forecasts = [e for r in [run, *run.parts] for e in r.events if e.get("event") == "forecast"]
    forecasts = [f for f in forecasts if "forecast_j" in f]
    if not forecasts:
        return None
    forecasts.sort(key=lambda f: f.get("units_done", 0))
    if federated:
        final_j = (
            federated["server_kwh"]
            + federated["client_measured_kwh"]
            + federated["client_estimated_kwh"]
        ) * J_PER_KWH
        unit, scope = "round", "server and client compute (network not included)"
    else:
        final_j = _finite(summary.measured_energy_j) + _finite(summary.estimated_energy_j)
        unit, scope = "epoch", "all measured and estimated energy"

    def row(f: dict[str, Any]) -> dict[str, Any]:
        return {
            "units_done": f.get("units_done"),
            "forecast_kwh": f["forecast_j"] / J_PER_KWH,
            "low_kwh": f["forecast_j_low"] / J_PER_KWH,
            "high_kwh": f["forecast_j_high"] / J_PER_KWH,
            "error": (f["forecast_j"] - final_j) / final_j if final_j > 0 else None,
            "inside": f["forecast_j_low"] <= final_j * (1 + 1e-9)
            and final_j <= f["forecast_j_high"] * (1 + 1e-9),
        }

    return {
        "unit": unit,
        "scope": scope,
        "final_kwh": final_j / J_PER_KWH,
        "complete": summary.complete,
        "first": row(forecasts[0]),
        "last": row(forecasts[-1]),
        "count": len(forecasts),
    }


def _reproducibility(run: Run) -> dict[str, Any]:
    config = run.meta.get("config") or {}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    git = run.meta.get("git") or {}
    return {
        "greentrack_version": run.meta.get("greentrack_version"),
        "format_version": run.meta.get("format_version", FORMAT_VERSION),
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "config_sha256": digest[:16] if config else None,
        "command": " ".join(run.meta.get("command") or []) or None,
        "run_id": run.meta["run_id"],
    }


# --- prose -------------------------------------------------------------------------------


def _method(r: dict[str, Any]) -> list[str]:
    out = []
    measured = [b for b in r["boundary"] if b["status"] == "measured"]
    estimated = [b for b in r["boundary"] if b["status"] == "estimated"]
    if measured:
        out.append(
            "Measured: "
            + "; ".join(f"{b['component'].upper()} by {b['method']}" for b in measured)
            + "."
        )
    if estimated:
        out.append(
            "Estimated (a model, not a measurement): "
            + "; ".join(f"{b['component'].upper()} by {b['method']}" for b in estimated)
            + "."
        )
    s = r["sampling"]
    if s:
        out.append(
            f"The sampler reads power at {num(s.get('power_hz', math.nan))} Hz, writes a "
            f"timeline row every {num(s.get('row_interval_s', math.nan))} s and reads energy "
            f"counters at least every {num(s.get('counter_interval_s', math.nan))} s; totals "
            "come from energy counters where the hardware has them."
        )
    c = r["carbon"]
    if c:
        if c["method"] == "series":
            out.append(
                "CO2e = energy in each interval x PUE x the grid intensity of that interval "
                f"({c['series']['kind']} intensity, {c['series']['source']})."
            )
        else:
            out.append(
                "CO2e = IT energy x PUE x annual grid intensity "
                f"({c['region']}, {c['source']}, {c['year']})."
            )
    if r["federated"]:
        out.append(
            "Federated: client compute is what each client's greentrack mod measured and "
            "returned with its reply; upload and download are the serialized message bytes "
            f"x {r['federated']['network']}; server is the server process's own energy."
        )
    out.append(
        "Not counted: "
        + "; ".join(
            f"{b['component']} ({b['detail']})"
            for b in r["boundary"]
            if b["status"] == "not counted"
        )
        + "."
    )
    return out


def _sentence(r: dict[str, Any]) -> str:
    e = r["energy"]
    subject = {
        "training": "Training",
        "federated": f"Federated training ({r['federated']['rounds']} rounds)"
        if r["federated"]
        else "Federated training",
    }.get(r["kind"], "The run")
    if r["federated"]:
        f = r["federated"]
        total_it = f["total_kwh"]
        parts = (
            f"{energy(total_it)} of electricity in total "
            f"({energy(f['client_measured_kwh'] + f['client_estimated_kwh'])} on the clients, "
            f"{energy(f['server_kwh'])} on the server, "
            f"{energy(f['upload_kwh'] + f['download_kwh'])} estimated for the network)"
        )
    else:
        total_it = e["it_kwh"]
        if e["estimated_kwh"] and e["measured_kwh"]:
            parts = (
                f"{energy(total_it)} of electricity ({energy(e['measured_kwh'])} measured, "
                f"{energy(e['estimated_kwh'])} estimated)"
            )
        elif e["estimated_kwh"]:
            parts = f"{energy(total_it)} of electricity (estimated, not measured)"
        else:
            parts = f"{energy(total_it)} of electricity (measured)"
    gpus = r["hardware"]["gpus"]
    on = " on " + ", ".join(f"{g['count']}x {g['model']}" for g in gpus) if gpus else ""
    text = f"{subject}{on} took {duration(r['duration_s'])} and used {parts}"
    c = r["carbon"]
    if c is None:
        return text + "; CO2e was not computed because no region or intensity was recorded."
    co2e = r["headline"]["co2e_g"]
    if c["method"] == "series":
        where = (
            f"a run-weighted {num(c['effective_gco2e_per_kwh'])} gCO2e/kWh "
            f"({c['series']['source']})"
        )
    else:
        year = f", {c['year']}" if c["year"] else ""
        where = (
            f"{num(c['gco2e_per_kwh'])} gCO2e/kWh "
            f"({c['region_name'] or c['region']}; {c['source']}{year})"
        )
    return f"{text}; with a PUE of {num(c['pue'])} this emitted {mass(co2e)} CO2e at {where}."


def _comparison(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in reports:
        m = r["metric"] or {}
        rows.append(
            {
                "label": r["label"],
                "kind": r["kind"],
                "duration_s": r["duration_s"],
                "energy_kwh": r["headline"]["energy_kwh"],
                "measured_kwh": r["headline"]["measured_kwh"],
                "co2e_g": r["headline"]["co2e_g"],
                "metric_name": m.get("name"),
                "metric_best": m.get("best"),
                "co2e_g_to_reach": m.get("co2e_g_to_reach"),
            }
        )
    return rows
