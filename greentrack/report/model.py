"""The report model: everything a report says about one or more runs, as plain data.

Every figure comes from the runs' accounts (:mod:`greentrack.account`): the sentence, the
carbon section, the tables, the counterfactuals, the equivalences, the emissions to reach a
metric, the forecast comparison, the figures and the model card all read the same totals, so
no two of them can disagree. This module arranges them; :mod:`.facts` adds hardware, software
and boundary, :mod:`.prose` the sentences, :mod:`.outcomes` metric and forecast. Every output
format renders the dict :meth:`Report.to_dict` returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack._version import __version__
from greentrack.account import Account, AccountOptions, Figure, RunAccount, account_run
from greentrack.account.embodied import NO_GPU, Embodied, embodied_of, embodied_of_work
from greentrack.account.federated import binned_rounds
from greentrack.account.notes import split_advice, without_advice
from greentrack.analysis.untracked import DeclaredWork, load_declared
from greentrack.carbon.providers.cache import series_of_run
from greentrack.metadata import utc_iso
from greentrack.report import facts, outcomes, project, prose, references
from greentrack.report.equivalences import equivalences
from greentrack.report.places import place
from greentrack.views.numbers import num

if TYPE_CHECKING:
    from greentrack.carbon.series import EnergyCurve, IntensitySeries
    from greentrack.rundir.reader import Run

SCHEMA = "greentrack-report/2"


@dataclass
class ReportOptions:
    """What a report adds to what the runs recorded.

    Attributes:
        region: charge the runs at this region's annual intensity (overrides the run's).
        pue: PUE to apply (overrides the run's); needs a region, or a run with one.
        regions: counterfactual regions; ``None``: a fixed set of grids; ``[]``: none.
        intensity_csv: an intensity time series to weight the run's energy with.
        flexible_start_s / pause_resume: Flexible Start window in seconds and Pause & Resume
            maximum stretch (both need a series).
        embodied / device_lifetime_years: a preset of
            :data:`greentrack.account.embodied.PRESETS` to add each run's share of its GPUs'
            embodied carbon (apart from the operational CO2e), over a lifetime in years.
        untracked: a YAML/JSON file declaring work that was not tracked (exploration, failed
            jobs...): added to the total as estimated (:mod:`greentrack.analysis.untracked`).
        intensity_provider, provider_region: charge each run's own hours with a provider's
            series (stored in the run directory on first use, read offline after).
        metric / target: the model metric to report emissions against, and the value to
            reach (default: the best value reached).
        title: the report's title.
        group_by: how several runs are grouped, a section each with the mean and standard
            error over its runs: ``name`` (the name up to a seed suffix), ``project``,
            ``run``, ``all``, or a config key (``lr``, ``config.lr``); ``None``: by name where
            runs share one, else one group (:mod:`greentrack.report.project`).
        parameters / flops: the model's parameter count and its training FLOPs, for the
            brief sentence (Henderson et al. 2020; the ACL Responsible NLP checklist).
        anonymize: for double-blind review: no paths, host or user names, git commits or
            remotes, run ids or commands in any format.
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
    intensity_provider: str | None = None
    provider_region: str | None = None
    untracked: Path | None = None
    embodied: str | None = None
    device_lifetime_years: float | None = None
    group_by: str | None = None
    anonymize: bool = False
    parameters: float | None = None
    flops: float | None = None


@dataclass
class Report:
    """A report over one or more runs. ``data`` is what every format renders; ``accounts``
    are the figures it was built from (the figures read them too)."""

    data: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    accounts: list[RunAccount] = field(default_factory=list)
    series: IntensitySeries | None = None
    advice: list[str] = field(default_factory=list)
    """What the terminal should say and the paper not (a provider that could not be reached,
    and how to reach it): the CLI prints it to stderr."""

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def _repr_html_(self) -> str:
        """The report in a notebook cell: its HTML page (``greentrack report --format html``,
        without figures) in a frame, so that the page's styles stay out of the notebook."""
        import html

        from greentrack.report.render import render

        page = render(self, "html")
        return (
            f'<iframe srcdoc="{html.escape(page, quote=True)}" title="greentrack report" '
            'style="width:100%;height:36rem;border:1px solid #ddd"></iframe>'
        )

    def curve(self, run: Run) -> EnergyCurve:
        """Cumulative IT energy of ``run`` and its parts (from its account)."""
        return self.account(run).curve

    def account(self, run: Run) -> RunAccount:
        for r, a in zip(self.runs, self.accounts, strict=True):
            if r is run:
                return a
        raise KeyError(f"{run.path} is not in this report")


def build_report(paths: Sequence[str | Path], options: ReportOptions | None = None) -> Report:
    """Load each run directory, account it and build the report.

    Raises:
        RunFormatError: a path is not a run directory.
        ValueError: inconsistent options (e.g. Flexible Start without a series).
    """
    from greentrack.carbon.series import IntensitySeries
    from greentrack.rundir.reader import load_run

    opts = options or ReportOptions()
    if not paths:
        raise ValueError("no run directory given")
    if opts.target is not None and opts.metric is None:
        raise ValueError("--target needs --metric NAME (the metric the target is for)")
    series = (
        IntensitySeries.from_csv(opts.intensity_csv, tz=opts.tz, kind=opts.kind)
        if opts.intensity_csv
        else None
    )
    runs = [load_run(p) for p in paths]
    accounts = []
    advice: list[str] = []
    for run in runs:
        run_series, note = (
            (series, None)
            if series is not None
            else series_of_run(run, opts.intensity_provider, opts.provider_region, opts.region)
        )
        if note:  # the provider's words (and how to fix it) go to the terminal, not the paper
            advice.append(f"{run.path}: {note}")
            provider = opts.intensity_provider or (run.meta.get("intensity_provider") or {}).get(
                "id"
            )
            note = f"{provider} gave no series for this run" if provider else SERIES_NOT_USED
            note += ": it is charged at its region's annual figure"
        accounts.append(
            account_run(
                run,
                AccountOptions(
                    region=opts.region,
                    pue=opts.pue,
                    series=run_series,
                    fill_gaps=opts.fill_gaps,
                    regions=opts.regions,
                    flexible_start_s=opts.flexible_start_s,
                    pause_resume=opts.pause_resume,
                    series_note=note,
                ),
            )
        )
        # a note's advice ("... with `greentrack merge`") goes to the terminal, not the paper
        advice += [f"{run.path}: {tip}" for n in accounts[-1].notes if (tip := split_advice(n)[1])]
        if run_series is not None and series is None and len(runs) == 1:
            series = run_series  # the figures draw the series of a single run
    declared = load_declared(opts.untracked) if opts.untracked is not None else []
    how, named = project.group_runs(runs, opts.group_by) if len(runs) > 1 else ("all", [])
    if named:  # the runs group by group: numbered alike in every table and figure
        order = [i for _, idx in named for i in idx]
        runs, accounts = [runs[i] for i in order], [accounts[i] for i in order]
        at = {old: new for new, old in enumerate(order)}
        named = [(name, [at[i] for i in idx]) for name, idx in named]
    labels = _unique_labels(runs, opts.anonymize)
    reports = [
        run_report(run, acct, label, opts, metric=_metric_of(run, runs, opts.metric))
        for run, acct, label in zip(runs, accounts, labels, strict=True)
    ]
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "title": opts.title or _default_title(reports),
        "generated_utc": utc_iso(time.time()),
        "greentrack_version": __version__,
        "runs": reports,
        "untracked": [_declared(d, opts) for d in declared] or None,
    }
    # a total, and the table that shows it: every row that enters the total is in that table
    totalled = len(reports) > 1 or bool(declared)
    data["comparison"] = _comparison(reports, data["untracked"] or []) if totalled else None
    data["total"] = _total(Account.of(accounts, declared)) if totalled else None
    data["groups"] = project.groups(named, how, accounts, reports) if named else None
    data["project"] = (
        project.project(reports, accounts, declared, how, opts.group_by, named) if named else None
    )
    data["embodied_total"] = _embodied_total(reports, data["untracked"] or [])
    data["brief"] = _brief(reports, accounts, data, opts, _recorded_parameters(runs))
    data["references"] = [ref.to_dict() for ref in references.cited(data)]
    if opts.anonymize:
        data = _anonymize(data, runs)
    return Report(data, runs, accounts, series, advice)


SERIES_NOT_USED = "no intensity series could be used for this run"
"""The paper's words for a provider's series that was not used (the reason, and what to do
about it, go to the terminal: :attr:`Report.advice`)."""


def _default_title(reports: list[dict[str, Any]]) -> str:
    if len(reports) == 1:
        return f"Energy and carbon footprint of {reports[0]['label']}"
    return f"Energy and carbon footprint of {len(reports)} runs"


def _unique_labels(runs: list[Run], anonymize: bool = False) -> list[str]:
    """Each run's label: its name, else (not for anonymous review: a directory's name may say
    who ran it) its directory's name, else ``run1``, ``run2``... as the anonymised ids."""
    labels = [
        str(
            r.meta.get("name")
            or (f"run{i + 1}" if anonymize else r.path.name or r.meta["run_id"][:8])
        )
        for i, r in enumerate(runs)
    ]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label if n == 0 and labels.count(label) == 1 else f"{label} ({n + 1})")
    return out


def _value(f: Figure | None) -> float | None:
    return f.value if f is not None else None


def _metric_of(run: Run, runs: list[Run], name: str | None) -> str | None:
    """The metric a run reports against: ``name``; in a report of several runs, none for a
    run that did not record it (a federated run beside Lightning runs), unless no run did
    (then the run's report says which metrics it recorded)."""
    if name is None or len(runs) == 1:
        return name
    if not outcomes.records_metric([run, *run.parts], name) and any(
        outcomes.records_metric([r, *r.parts], name) for r in runs
    ):
        return None
    return name


def run_report(
    run: Run,
    a: RunAccount,
    label: str,
    opts: ReportOptions,
    *,
    metric: str | None,
) -> dict[str, Any]:
    """The report of one run, every figure read from its account ``a`` (``metric``: the
    metric it reports against, :func:`_metric_of`)."""
    all_runs = [run, *run.parts]
    total_it = sum(c.energy_kwh.value for c in a.components) or 1.0
    out: dict[str, Any] = {
        "id": a.run_id,
        "label": label,
        "path": a.path,
        "project": a.project,
        "kind": a.kind,
        "status": a.status,
        "complete": a.complete,
        "start_utc": a.start_utc,
        "duration_s": a.duration_s,
        "gpu_hours": a.gpu_hours,
        "hardware": facts.hardware(all_runs),
        "software": facts.software(run),
        "boundary": facts.boundary(all_runs, a.components),
        "sampling": dict(run.meta.get("sampling") or {}),
        "energy": {
            "measured_kwh": a.measured_kwh,
            "estimated_kwh": a.estimated_kwh,
            "it_kwh": a.it_kwh.value,
            "it_kwh_low": a.it_kwh.low,
            "it_kwh_high": a.it_kwh.high,
            "pue": a.carbon.pue.value if a.carbon else None,
            "facility_kwh": _value(a.facility_kwh),
            "devices": project.devices_of(a),  # identical devices as one row
            "components": [
                {
                    "channel": c.key,
                    "component": c.component,
                    "device": c.label,
                    "source": c.provenance,
                    "method": c.method,
                    "energy_kwh": c.energy_kwh.value,
                    "energy_kwh_low": c.energy_kwh.low,
                    "energy_kwh_high": c.energy_kwh.high,
                    "avg_power_w": c.avg_power_w,
                    "share": c.energy_kwh.value / total_it,
                    "co2e_g": _value(c.co2e_g),
                }
                for c in a.components
            ],
        },
        "phases": [dict(p) for p in a.phases],
        "units": _units(a),
        "carbon": _carbon(a),
        "counterfactuals": _counterfactuals(a),
        "federated": _federated(a),
        "metric": outcomes.metric_outcome(
            all_runs, a, metric, opts.target if metric is not None else None
        ),
        "forecast": outcomes.forecast_outcome(all_runs, a),
        "equivalences": [
            e.to_dict()
            for e in equivalences(
                _value(a.co2e_g),
                a.facility_kwh.value if a.facility_kwh else a.it_kwh.value,
            )
        ],
        "reproducibility": facts.reproducibility(run),
        "notes": [facts.paper_text(without_advice(n)) for n in a.notes],
    }
    out["embodied"] = None
    if opts.embodied is not None:  # off by default; never added to the operational CO2e
        # the GPU device-seconds the run used (a resume on another board is not two GPUs)
        share = embodied_of(a, opts.embodied, opts.device_lifetime_years)
        out["embodied"] = share.to_dict() if share else None
        _embodied_boundary(out["boundary"], share)
        if share is None:
            out["notes"].append(f"Embodied carbon was not added: {NO_GPU}.")
    out["headline"] = {
        "energy_kwh": a.it_kwh.value,
        "energy_kwh_low": a.it_kwh.low,
        "energy_kwh_high": a.it_kwh.high,
        "measured_kwh": a.measured_kwh,
        "estimated_kwh": a.estimated_kwh,
        "provenances": sorted({i.provenance for i in a.items if i.in_total}),
        "co2e_g": _value(a.co2e_g),
        "co2e_g_low": a.co2e_g.low if a.co2e_g else None,
        "co2e_g_high": a.co2e_g.high if a.co2e_g else None,
        "pue": a.carbon.pue.value if a.carbon else None,
    }
    if out["forecast"]:
        out["forecast"]["text"] = prose.forecast_sentence(out["forecast"])
        out["forecast"]["short"] = prose.forecast_short(out["forecast"])
    out["tiers"] = _tiers(a)
    out["headline"]["it_tier"] = a.tiers.it_tier if a.tiers else "devices"
    out["calibration"] = _calibration(a)
    out["method"] = prose.method(out)
    out["sentence"] = prose.sentence(out)
    return out


def _tiers(a: RunAccount) -> dict[str, Any] | None:
    """The run's tiers (devices, node, residual, facility) where a node was measured, with
    the sentence that states them; ``None`` without a node meter."""
    t = a.tiers
    if t is None:
        return None
    out: dict[str, Any] = {
        "it_tier": t.it_tier,
        "nodes": t.nodes,
        "nodes_measured": t.nodes_measured,
        "flagged": t.flagged,
        "residual_share": t.residual_share,
    }
    figures = {
        "node_kwh": t.node_kwh,
        "devices_kwh": t.covered_devices_kwh,
        "residual_kwh": t.residual_kwh,
        "it_kwh": a.it_kwh,
        "facility_kwh": a.facility_kwh,
    }
    for key, f in figures.items():
        out[key] = f.value if f else None
        out[f"{key}_low"] = f.low if f else None
        out[f"{key}_high"] = f.high if f else None
    out["sentence"] = prose.tiers_sentence(out)
    return out


def _calibration(a: RunAccount) -> dict[str, Any] | None:
    """A wall meter's correction of the run's IT total (``greentrack calibrate --store``,
    applied by the account): the summary's words for it, the factor with its range, the
    corrected IT total (the headline's) and the run's own before it; ``None`` without one."""
    cal = a.calibration
    if not cal:
        return None
    factor, own = cal["factor"], cal["it_kwh"]
    return {
        "label": str(cal["label"]),
        "factor": float(factor["value"]),
        "factor_low": float(factor["low"]),
        "factor_high": float(factor["high"]),
        "it_kwh": a.it_kwh.value,
        "it_kwh_low": a.it_kwh.low,
        "it_kwh_high": a.it_kwh.high,
        "uncalibrated_it_kwh": float(own["value"]),
        "uncalibrated_it_kwh_low": float(own["low"]),
        "uncalibrated_it_kwh_high": float(own["high"]),
        "it_tier": str(cal["it_tier"]),
        "accuracy_percent": float(cal["accuracy_percent"]),
        "coverage": float(cal["coverage"]),
        "created_utc": str(cal["created_utc"]),
    }


def _embodied_boundary(rows: list[dict[str, Any]], share: Embodied | None) -> None:
    """The boundary's "embodied carbon" row, as ``--embodied`` leaves it: estimated and
    reported apart from the operational CO2e, or, without a GPU, not counted and why."""
    for row in rows:
        if row["component"] != "embodied carbon":
            continue
        if share is None:
            row["detail"] = f"not estimated: {NO_GPU}"
            continue
        p = share.preset
        row.update(
            status="estimated, apart",
            method=f"share of the GPUs' manufacturing emissions: {p.covers}",
            sampling=f"GPU-hours in use over a {num(share.lifetime_years)}-year life",
            accuracy=p.range_basis,
            detail="reported apart from the operational CO2e, never added to it",
        )


def _declared(d: DeclaredWork, opts: ReportOptions) -> dict[str, Any]:
    """An item of declared work as the report shows it: its account's figures, its region in
    words, and (``--embodied``, GPU work) its share of the GPUs' embodied carbon."""
    out = d.to_dict()
    if d.region_name is not None:
        out["region_name"] = place(d.region, d.region_name).cell
    out["embodied"] = None
    if opts.embodied is not None and d.gpu_hours:
        share = embodied_of_work(
            d.count, d.hours, d.hardware, opts.embodied, opts.device_lifetime_years
        )
        out["embodied"] = share.to_dict()
    return out


def _embodied_total(
    reports: list[dict[str, Any]], declared: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The embodied carbon of the runs and the declared GPU work together (``--embodied``),
    summed from the account's figures; ``None`` when none was estimated."""
    items = [r["embodied"] for r in reports if r["embodied"]]
    items += [d["embodied"] for d in declared if d.get("embodied")]
    if not items:
        return None
    return {
        "co2e_g": sum(e["co2e_g"] for e in items),
        "co2e_g_low": sum(e["co2e_g_low"] for e in items),
        "co2e_g_high": sum(e["co2e_g_high"] for e in items),
        "gpu_hours": sum(e["gpu_hours"] for e in items),
        "items": len(items),
        "caveats": sorted({e["caveat"] for e in items if e.get("caveat")}),
    }


def _units(a: RunAccount) -> dict[str, Any] | None:
    if not a.units:
        return None
    return {"unit": a.units["unit"], "rows": [dict(r) for r in a.units["rows"]]}


def _carbon(a: RunAccount) -> dict[str, Any] | None:
    c = a.carbon
    if c is None or a.co2e_g is None:
        return None
    split = a.co2e_g_by_provenance or {}
    where = place(c.region, c.region_name)
    return {
        "method": c.method,
        "pue": c.pue.value,
        "pue_low": c.pue.low,
        "pue_high": c.pue.high,
        "pue_source": c.pue_source,
        "pue_year": c.pue_year,
        "chosen_by": c.chosen_by,
        "series": dict(c.series) if c.series else None,
        "region": c.region,
        # a cloud region and the grid it is charged at, in words ("AWS us-east-1, Ashburn,
        # Virginia; Virginia grid"), never the data table's "Ashburn, Virginia -> Virginia"
        "region_name": where.cell if c.region_name else None,
        "place": where.phrase,
        "grid_name": where.name,
        "gco2e_per_kwh": c.annual_gco2e_per_kwh,
        "year": c.year,
        "basis": c.basis,
        "intensity_kind": c.kind,
        "source": c.source,
        "licence": c.licence,
        "effective_gco2e_per_kwh": c.intensity.value,
        "intensity_low": c.intensity.low,
        "intensity_high": c.intensity.high,
        "intensity_accuracy": c.intensity_accuracy,
        "co2e_g": a.co2e_g.value,
        "co2e_g_low": a.co2e_g.low,
        "co2e_g_high": a.co2e_g.high,
        "measured_co2e_g": split.get("measured", 0.0),
        "estimated_co2e_g": sum(v for k, v in split.items() if k != "measured"),
    }


def _counterfactuals(a: RunAccount) -> dict[str, Any] | None:
    cf = a.counterfactuals
    if not cf:
        return None
    out = {k: v for k, v in cf.items()}
    out["regions"] = [{**r, "name": place(r["region"], r["name"]).cell} for r in cf["regions"]]
    return out


def _federated(a: RunAccount) -> dict[str, Any] | None:
    f = a.federated
    if not f:
        return None
    parts = {p["part"]: p for p in f["parts"]}
    total = f["total_kwh"]
    apart = f["network_apart_kwh"]
    return {
        "rounds": f["rounds"],
        "client_replies": f["client_replies"],
        "unmeasured_replies": f["unmeasured_replies"],
        "upload_bytes": f["upload_bytes"],
        "download_bytes": f["download_bytes"],
        "network": f["network"],
        "parts": [
            {
                "part": key,
                "source": p["provenance"],
                "energy_kwh": p["energy_kwh"]["value"],
                "energy_kwh_low": p["energy_kwh"]["low"],
                "energy_kwh_high": p["energy_kwh"]["high"],
                "share": p["share"],
                "co2e_g": p["co2e_g"]["value"] if p["co2e_g"] else None,
            }
            for key, p in parts.items()
        ],
        # each part's energy as the account has it (the parts above, by name)
        "client_kwh": parts["client_compute"]["energy_kwh"]["value"],
        "upload_kwh": parts["upload"]["energy_kwh"]["value"],
        "download_kwh": parts["download"]["energy_kwh"]["value"],
        "server_kwh": parts["server"]["energy_kwh"]["value"],
        "total_kwh": total["value"],
        "total_kwh_low": total["low"],
        "total_kwh_high": total["high"],
        "co2e_g": f["co2e_g"]["value"] if f["co2e_g"] else None,
        "network_apart_kwh": apart["value"] if apart else None,
        "network_apart_kwh_low": apart["low"] if apart else None,
        "network_apart_kwh_high": apart["high"] if apart else None,
        "network_apart_co2e_g": f["network_apart_co2e_g"]["value"]
        if f["network_apart_co2e_g"]
        else None,
        "co_located_replies": f["co_located_replies"],
        "per_round": [dict(r) for r in f["per_round"]],
        "round_table": binned_rounds(f["per_round"], ROUND_TABLE_ROWS),
        "notes": list(f["notes"]),
    }


ROUND_TABLE_ROWS = 20  # a per-round table longer than this groups consecutive rounds


def _comparison(
    reports: list[dict[str, Any]], declared: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The table of what the total adds up: a row per run, then a row per item of declared
    untracked work (``kind`` ``declared``, estimated, no duration or metric), each read from
    its account; their sum is the total (``total``)."""
    rows = []
    for r in reports:
        m = r["metric"] or {}
        h = r["headline"]
        rows.append(
            {
                "label": r["label"],
                "kind": r["kind"],
                "duration_s": r["duration_s"],
                "energy_kwh": h["energy_kwh"],
                "energy_kwh_low": h["energy_kwh_low"],
                "energy_kwh_high": h["energy_kwh_high"],
                "measured_kwh": h["measured_kwh"],
                "co2e_g": h["co2e_g"],
                "co2e_g_low": h["co2e_g_low"],
                "co2e_g_high": h["co2e_g_high"],
                "metric_name": m.get("name"),
                "metric_best": m.get("best"),
                "co2e_g_to_reach": m.get("co2e_g_to_reach"),
            }
        )
    for d in declared:
        co2e = d["co2e_g"] or {}
        rows.append(
            {
                "label": declared_label(d),
                "kind": "declared",
                "duration_s": None,
                "energy_kwh": d["energy_kwh"]["value"],
                "energy_kwh_low": d["energy_kwh"]["low"],
                "energy_kwh_high": d["energy_kwh"]["high"],
                "measured_kwh": 0.0,
                "co2e_g": co2e.get("value"),
                "co2e_g_low": co2e.get("low"),
                "co2e_g_high": co2e.get("high"),
                "metric_name": None,
                "metric_best": None,
                "co2e_g_to_reach": None,
            }
        )
    return rows


def declared_label(d: dict[str, Any]) -> str:
    """The row label of an item of declared work, in every table that lists it."""
    return f"untracked: {d['label']}"


def _total(group: Account) -> dict[str, Any]:
    """The runs' total, from the account of the group (CO2e over the runs that have it)."""
    co2e = group.co2e_g
    return {
        "energy_kwh": group.it_kwh.value,
        "energy_kwh_low": group.it_kwh.low,
        "energy_kwh_high": group.it_kwh.high,
        "measured_kwh": group.measured_kwh,
        "co2e_g": co2e.value if co2e else None,
        "co2e_g_low": co2e.low if co2e else None,
        "co2e_g_high": co2e.high if co2e else None,
        "runs_without_co2e": group.runs_without_carbon,
        "untracked_kwh": group.declared_kwh,
        "untracked_without_co2e": group.declared_without_carbon,
    }


def gpu_hours(r: dict[str, Any]) -> float | None:
    """The run's GPU-hours from its account (each GPU's seconds in use, over every segment and
    rank that measured it), or ``None`` without a GPU."""
    hours = r.get("gpu_hours")
    return float(hours) if hours else None


def _recorded_parameters(runs: list[Run]) -> int | None:
    """The model's parameter count the runs recorded (:attr:`Run.parameters`), where every
    run recorded one and all agree (one sentence for several runs names one model, or
    none)."""
    counts = {run.parameters for run in runs}
    (count,) = counts if len(counts) == 1 else (None,)
    return count or None


def _brief(
    reports: list[dict[str, Any]],
    accounts: list[RunAccount],
    data: dict[str, Any],
    opts: ReportOptions,
    recorded: int | None = None,
) -> dict[str, Any]:
    """The main-text block: one row per run (or group) and a total row for several runs,
    every energy and CO2e figure read from the accounts (``recorded``: the model's parameter
    count the runs recorded, used where none is given)."""
    rows = []
    for r, a in zip(reports, accounts, strict=True):
        h = r["headline"]
        m = r["metric"] or {}
        rows.append(
            {
                "label": r["label"],
                "kind": "run",
                "gpu_hours": gpu_hours(r),
                "energy_kwh": h["energy_kwh"],
                "energy_kwh_low": h["energy_kwh_low"],
                "energy_kwh_high": h["energy_kwh_high"],
                "measured_kwh": a.measured_kwh,
                "estimated_kwh": a.estimated_kwh,
                "co2e_g": h["co2e_g"],
                "co2e_g_low": h["co2e_g_low"],
                "co2e_g_high": h["co2e_g_high"],
                "co2e_g_to_reach": m.get("co2e_g_to_reach") if opts.metric else None,
            }
        )
    declared = data["untracked"] or []
    for d in declared:  # declared work: estimated, read from its account
        co2e = d["co2e_g"] or {}
        rows.append(
            {
                "label": declared_label(d),
                "kind": "declared",
                "gpu_hours": d["gpu_hours"],
                "energy_kwh": d["energy_kwh"]["value"],
                "energy_kwh_low": d["energy_kwh"]["low"],
                "energy_kwh_high": d["energy_kwh"]["high"],
                "measured_kwh": 0.0,
                "estimated_kwh": d["energy_kwh"]["value"],
                "co2e_g": co2e.get("value"),
                "co2e_g_low": co2e.get("low"),
                "co2e_g_high": co2e.get("high"),
                "co2e_g_to_reach": None,
            }
        )
    total = None
    if data["total"] is not None:
        t = data["total"]
        hours = [row["gpu_hours"] for row in rows if row["gpu_hours"] is not None]
        total = {
            "label": "total",
            "kind": "total",
            "gpu_hours": sum(hours) if hours else None,
            "energy_kwh": t["energy_kwh"],
            "energy_kwh_low": t["energy_kwh_low"],
            "energy_kwh_high": t["energy_kwh_high"],
            "measured_kwh": t["measured_kwh"],
            "estimated_kwh": sum(a.estimated_kwh for a in accounts) + t["untracked_kwh"],
            "co2e_g": t["co2e_g"],
            "co2e_g_low": t["co2e_g_low"],
            "co2e_g_high": t["co2e_g_high"],
            "co2e_g_to_reach": None,
        }
    gpus = sorted({g["model"] for r in reports for g in r["hardware"]["gpus"]})
    gpus += sorted({d["hardware"] for d in declared if d["gpu_hours"]} - set(gpus))
    carbon = [r["carbon"] for r in reports if r["carbon"]]
    charged = [d for d in declared if d["co2e_g"]]
    regions = list(
        dict.fromkeys(
            [c["grid_name"] or c["region"] for c in carbon if c["region"]]
            + [place(d["region"], d["region_name"]).name for d in charged]
        )
    )
    pues = sorted({c["pue"] for c in carbon} | {d["pue"] for d in charged})
    intensities = sorted(
        {c["effective_gco2e_per_kwh"] for c in carbon} | {d["gco2e_per_kwh"] for d in charged}
    )
    out: dict[str, Any] = {
        "rows": rows,
        "total": total,
        "metric": opts.metric,
        "target": opts.target,
        "gpus": gpus,
        "has_gpu": bool(gpus),
        "devices": _devices(reports, declared),
        "duration_s": sum(r["duration_s"] for r in reports),
        "regions": regions,
        "pue": pues[0] if len(pues) == 1 else None,
        "pues": pues,
        "gco2e_per_kwh": intensities[0] if len(intensities) == 1 else None,
        "runs_without_co2e": len(reports) - len(carbon),
        "runs": len(reports),
        "declared": len(declared),
        "declared_without_co2e": sum(1 for d in declared if not d["co2e_g"]),
        "intensity_source": references.readable(carbon[0]["source"]) if carbon else None,
        "sources": _intensity_sources(carbon, charged),
        # a given count wins; else the one the runs recorded, where every run recorded the same
        "parameters": opts.parameters if opts.parameters is not None else recorded,
        "parameters_recorded": opts.parameters is None and recorded is not None,
        "flops": opts.flops,
        # the table lists groups (mean and standard error per run, each in its own unit)
        "by_group": bool(data.get("project") and data["project"]["by_group"]),
    }
    out["subject"] = prose.brief_subject(out)  # what the sentence and the caption count
    # runs whose IT total a wall meter corrected: the run's label and the summary's words
    out["calibrated"] = [
        (r["label"], r["calibration"]["label"]) for r in reports if r.get("calibration")
    ]
    out["sentence"] = prose.brief_sentence(out)
    # where a node was measured, the tiers' sentence of each such run (the node tier)
    out["tiers"] = [(r["label"], r["tiers"]["sentence"]) for r in reports if r.get("tiers")]
    return out


def _devices(reports: list[dict[str, Any]], declared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ran and for how long, for the brief sentence ("2 x NVIDIA H100 80GB HBM3 for
    25 min in all"): the runs by their set of devices (their wall time summed), then each
    item of declared work (its devices x hours)."""
    sets: dict[str, dict[str, Any]] = {}
    for r in reports:
        gpus = r["hardware"]["gpus"]
        what = (
            " and ".join(f"{g['count']} \u00d7 {g['model']}" for g in gpus) if gpus else "CPU only"
        )
        row = sets.setdefault(what, {"devices": what, "duration_s": 0.0, "runs": 0})
        row["duration_s"] += r["duration_s"]
        row["runs"] += 1
    out = list(sets.values())
    for d in declared:
        what = d["hardware"]
        if d["count"] == 1:
            what = "one " + (what[:-1] if what.endswith(" devices") else what)
        else:
            what = f"{d['count']} \u00d7 {what}"
        out.append({"devices": what, "duration_s": d["hours"] * 3600.0, "runs": 0})
    return out


def _intensity_sources(
    carbon: list[dict[str, Any]], declared: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The grid intensities' sources the brief sentence names, each once, with the year of
    its figure and its BibTeX key: the runs' (annual table or series), then the declared
    items' (their region's annual table)."""
    from greentrack.carbon.intensity import resolve_region

    found: list[tuple[str | None, int | None]] = []
    for c in carbon:
        if c["method"] == "series":
            found.append(((c["series"] or {}).get("source"), None))
        else:
            found.append((c["source"], c["year"]))
    for d in declared:
        try:
            year = resolve_region(d["region"]).year
        except (KeyError, ValueError):
            year = None
        found.append((d["carbon_source"], year))
    out: list[dict[str, Any]] = []
    for text, year in found:
        ref = references.reference(text)
        short = ref.short if ref else references.readable(text)
        item = {
            "short": short,
            "year": year,
            "text": f"{short} {year}" if year else short,
            "key": ref.key if ref else None,
        }
        if short and item not in out:
            out.append(item)
    return out


def _anonymize(data: dict[str, Any], runs: list[Run]) -> dict[str, Any]:
    """``data`` for double-blind review: run ids become ``run1``..., paths, commands and git
    facts are dropped, and any host name, user name, path, git commit or remote or run id
    left in a text is replaced."""
    import os
    import re

    secrets: dict[str, str] = {}
    for i, run in enumerate(runs):
        meta = run.meta
        secrets[str(meta["run_id"])] = f"run{i + 1}"
        secrets[str(run.path.resolve())] = "[path]"
        secrets[str(run.path)] = "[path]"
        if meta.get("cwd"):
            secrets[str(meta["cwd"])] = "[path]"
        host = (meta.get("host") or {}).get("hostname")
        if host:
            secrets[str(host)] = "[host]"
        git = meta.get("git") or {}
        for k in ("commit", "remote", "remote_url", "url"):
            if git.get(k):
                secrets[str(git[k])] = "[git]"
                if k == "commit":
                    secrets[str(git[k])[:12]] = "[git]"
    for name in (os.environ.get("USER"), os.environ.get("LOGNAME")):
        if name and len(name) > 1:
            secrets.setdefault(name, "[user]")
    home = os.path.expanduser("~")
    if home not in ("~", "/"):
        secrets[home] = "[path]"
    ordered = sorted(secrets, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(s)}(?![\w-])" for s in ordered))
    abspath = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+[\w.+-]*")

    def scrub(x: Any) -> Any:
        if isinstance(x, str):
            text = pattern.sub(lambda m: secrets[m.group()], x) if ordered else x
            return abspath.sub("[path]", text)
        if isinstance(x, dict):
            return {k: scrub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [scrub(v) for v in x]
        return x

    for i, r in enumerate(data["runs"]):
        r["id"] = f"run{i + 1}"
        r["path"] = "[path]"
        rep = r["reproducibility"]
        rep.update(run_id=f"run{i + 1}", git_commit=None, git_dirty=None, command=None)
    out: dict[str, Any] = scrub(data)
    out["anonymized"] = True
    return out
