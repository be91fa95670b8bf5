"""The report's prose: the method paragraph and the sentences to paste. Words around the
account's figures; every number is written by :mod:`greentrack.views.numbers` (a figure and
its range as one column: one unit, one precision, bounds rounded outward)."""

from __future__ import annotations

from typing import Any

from greentrack.report.references import readable
from greentrack.views.numbers import (
    ENERGY,
    MASS,
    PLAIN,
    SHARE,
    Column,
    column,
    duration,
    num,
    plural,
    quantities,
    quantity_range,
    share,
)


def method(r: dict[str, Any]) -> list[str]:
    """The method, a sentence per item: what was measured and estimated and how, the sampler,
    the CO2e formula with its source and year, the ranges, the federated total, what was left
    out. Sources are written by their titles, which hold no parentheses, so none nest."""
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
            "Estimated, a model and not a measurement: "
            + "; ".join(f"{b['component'].upper()} by {b['method']}" for b in estimated)
            + "."
        )
    s = r["sampling"]
    if s:
        out.append(
            f"The sampler reads power at {num(s.get('power_hz'))} Hz, writes a timeline row "
            f"every {num(s.get('row_interval_s'))} s and reads energy counters at least every "
            f"{num(s.get('counter_interval_s'))} s; totals come from energy counters where the "
            "hardware has them."
        )
    c = r["carbon"]
    if c:
        if c["method"] == "series":
            out.append(
                "CO2e = IT energy × PUE × the run-weighted grid intensity: the energy of each "
                f"interval × that interval's {c['series']['kind']} intensity, from "
                f"{readable(c['series']['source'])}."
            )
        else:
            year = f", {c['year']}" if c["year"] else ""
            out.append(
                "CO2e = IT energy × PUE × annual grid intensity, for "
                f"{c['place']}: {readable(c['source'])}{year}."
            )
    out.append(
        "Ranges: each energy figure carries the accuracy of its source (measured counters a "
        "few percent, models tens of percent), the intensity and the PUE their own; bounds "
        "combine by interval arithmetic (see the methodology)."
    )
    if r["federated"]:
        out.append(
            "Federated total = client compute + server + network. Client compute is what each "
            "client's greentrack mod measured or modeled and returned with its reply; upload "
            "and download are the message bytes × "
            f"{r['federated']['network']}; server is the server process's energy, less what "
            "clients on its own host already measured (a machine is counted once)."
        )
    out.append(
        "Not counted (see the measurement boundary): "
        + ", ".join(b["component"] for b in r["boundary"] if b["status"] == "not counted")
        + "."
    )
    return out


def sentence(r: dict[str, Any]) -> str:
    """The sentence to paste about one run: hardware, duration, energy (measured or
    estimated) and CO2e, each with its range, from the headline (the account's totals)."""
    h = r["headline"]
    subject = {
        "training": "Training",
        "federated": f"Federated training ({r['federated']['rounds']} rounds)"
        if r["federated"]
        else "Federated training",
    }.get(r["kind"], "The run")
    gpus = r["hardware"]["gpus"]
    on = " on " + " and ".join(f"{g['count']} \u00d7 {g['model']}" for g in gpus) if gpus else ""
    used = quantity_range(h["energy_kwh"], h["energy_kwh_low"], h["energy_kwh_high"], ENERGY)
    if h["measured_kwh"] and h["estimated_kwh"]:
        m, e = quantities([h["measured_kwh"], h["estimated_kwh"]], ENERGY)
        how = f"{m} measured, {e} estimated"
    elif h["estimated_kwh"] or "measured" not in h.get("provenances", ["measured"]):
        how = "estimated, not measured"
    else:
        how = "all measured"
    scope = " for clients, server and network" if r["federated"] else ""
    if (r.get("tiers") or {}).get("it_tier") == "node":  # the IT total is the node's
        scope = " at the node (its power supplies, devices inside)"
    text = (
        f"{subject}{on} took {duration(r['duration_s'])} and used {used} of electricity"
        f"{scope}, {how}"
    )
    c = r["carbon"]
    if c is None:
        return text + "; CO2e was not computed because no region or intensity was recorded."
    co2e = quantity_range(h["co2e_g"], h["co2e_g_low"], h["co2e_g_high"], MASS)
    if c["method"] == "series":
        where = f"a run-weighted {num(c['effective_gco2e_per_kwh'])} gCO2e/kWh"
    else:
        where = f"{num(c['gco2e_per_kwh'])} gCO2e/kWh in {c['place']}"
    return f"{text}; with a PUE of {num(c['pue'])} it emitted {co2e} CO2e at {where}."


def tiers_sentence(t: dict[str, Any]) -> str:
    """The tiers of a run with a node meter in one sentence: the node, its devices and the
    residual between, each with its range (a flagged node says so instead)."""
    node = quantity_range(t["node_kwh"], t["node_kwh_low"], t["node_kwh_high"], ENERGY)
    dev = quantity_range(t["devices_kwh"], t["devices_kwh_low"], t["devices_kwh_high"], ENERGY)
    if t["flagged"]:
        return (
            f"The node meters read {node}, less than the {dev} of its devices beyond both "
            "meters' bounds; the devices' figure is the IT total."
        )
    res = quantity_range(t["residual_kwh"], t["residual_kwh_low"], t["residual_kwh_high"], ENERGY)
    return (
        f"The node drew {node}; its devices {dev}; the residual {res}: fans, power supplies, "
        "networking and idle."
    )


# --- the main-text block ---------------------------------------------------------------------


def brief_columns(b: dict[str, Any]) -> dict[str, Column]:
    """The columns of the brief table (its rows and its total row), which the sentence
    prints its figures in too: ``gpu_hours``, ``energy``, ``share`` (measured) and
    ``co2e`` (its range in the same column)."""
    rows = b["rows"] + ([b["total"]] if b["total"] else [])
    return {
        "gpu_hours": column([r["gpu_hours"] for r in rows], PLAIN),
        "energy": column([r["energy_kwh"] for r in rows], ENERGY),
        "share": column([measured_fraction(r) for r in rows], SHARE),
        "co2e": column([r["co2e_g"] for r in rows], MASS),
    }


def measured_fraction(row: dict[str, Any]) -> float:
    """The share of a row's energy that was measured (0 without energy)."""
    energy = row.get("energy_kwh")
    return (row.get("measured_kwh") or 0.0) / energy if energy else 0.0


def measured_share(measured_kwh: float | None, energy_kwh: float | None) -> str:
    """The share of ``energy_kwh`` that was measured, as a lone figure.

    >>> measured_share(0.0, 2.0), measured_share(2.0, 2.0), measured_share(0.2, 153.0)
    ('0%', '100%', '0.131%')
    """
    return share((measured_kwh or 0.0) / energy_kwh if energy_kwh else 0.0)


def brief_figures(b: dict[str, Any]) -> dict[str, Any]:
    """The brief's headline figures (its total row, or its one row) as printed, once, for the
    sentence: in the brief table's columns, so that the sentence and the table print each
    figure alike."""
    head = b["total"] or b["rows"][0]
    cols = brief_columns(b)
    fraction = measured_fraction(head)
    if not head["measured_kwh"]:
        how = "estimated, not measured"
    elif cols["share"].cell(fraction) == cols["share"].cell(1.0):
        how = "all measured"
    else:
        how = f"{cols['share'].text(fraction)} measured"
    return {
        "gpu_hours": cols["gpu_hours"].cell(head["gpu_hours"])
        if head["gpu_hours"] is not None
        else None,
        "energy_unit": cols["energy"].unit,
        "energy": cols["energy"].cell(head["energy_kwh"]),
        "energy_range": cols["energy"].range(head["energy_kwh_low"], head["energy_kwh_high"]),
        "measured": how,
        "mass_unit": cols["co2e"].unit,
        "co2e": cols["co2e"].cell(head["co2e_g"]),
        "co2e_range": cols["co2e"].range(head["co2e_g_low"], head["co2e_g_high"]),
    }


MAX_DEVICE_SETS = 4  # the sentence names at most this many sets of devices


def devices_phrase(devices: list[dict[str, Any]]) -> str:
    """What ran and for how long: "2 × NVIDIA H100 80GB HBM3 for 25 min in all and 8 ×
    NVIDIA A100 SXM4 40GB for 40 h".

    >>> devices_phrase([{"devices": "8 × H100", "duration_s": 43200.0, "runs": 1}])
    '8 × H100 for 12 h'
    """
    parts = [
        f"{d['devices']} for {duration(d['duration_s'])}" + (" in all" if d["runs"] > 1 else "")
        for d in devices[:MAX_DEVICE_SETS]
    ]
    if len(devices) > MAX_DEVICE_SETS:
        parts.append(plural(len(devices) - MAX_DEVICE_SETS, "other set") + " of devices")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def brief_sentence(b: dict[str, Any]) -> str:
    """The main-text sentence: what ran (devices and wall time), GPU-hours, energy with its
    range and how much was measured, CO2e with its range, where, at what intensity from which
    source and year, and the PUE. Each figure is printed as the brief table prints it
    (:func:`brief_figures`), and it counts what the table's caption counts
    (:func:`brief_subject`)."""
    head = b["total"] or b["rows"][0]
    fig = brief_figures(b)
    what = brief_subject(b, capital=True)
    if b.get("declared"):  # the figures below are the runs' and the declared work's
        what += " (estimated)"
    if b.get("devices"):
        what += f", on {devices_phrase(b['devices'])},"
    e_unit = fig["energy_unit"]
    spread = "" if fig["energy_range"] in ("", "exact") else f"{fig['energy_range']} {e_unit}"
    detail = ", ".join(x for x in (spread, fig["measured"]) if x)
    used = f" used {fig['gpu_hours']} GPU-hours and" if fig["gpu_hours"] is not None else ""
    text = f"{what}{used} drew {fig['energy']} {e_unit} of electricity ({detail})"
    if head["co2e_g"] is None:
        return text + "; no CO2e was computed (no region recorded)."
    m_unit = fig["mass_unit"]
    co2e = f"{fig['co2e']} {m_unit}"
    if fig["co2e_range"] not in ("", "exact"):
        co2e += f" ({fig['co2e_range']} {m_unit})"
    where = f" in {_joined(b['regions'])}" if b["regions"] else ""
    if b["gco2e_per_kwh"] is not None:
        where += f" at {num(b['gco2e_per_kwh'])} gCO2e/kWh"
    sources = [s["text"] for s in b.get("sources") or []]
    if sources:
        where += f" ({'; '.join(sources)})"
    pues = b.get("pues") or ([b["pue"]] if b.get("pue") is not None else [])
    if pues:
        where += ", PUE " + (num(pues[0]) if len(pues) == 1 else _joined([num(p) for p in pues]))
    missing = b.get("declared_without_co2e") or 0
    gap = f"; no CO2e for {plural(missing, 'declared item')} with no region" if missing else ""
    return f"{text}, emitting {co2e} CO2e{where}{gap}."


def brief_subject(b: dict[str, Any], capital: bool = False) -> str:
    """What the brief block adds up, counted as its rows are: "the 4 runs and 3 items of
    declared untracked work", "the run". The sentence and the table's caption both say it.

    >>> brief_subject({"runs": 4, "declared": 3, "rows": []}, capital=True)
    'The 4 runs and 3 items of declared untracked work'
    >>> brief_subject({"runs": 1, "declared": 1, "rows": []})
    'the run and 1 item of declared untracked work'
    """
    n = b.get("runs", len(b["rows"]))
    what = f"the {plural(n, 'run')}" if n > 1 else "the run"
    declared = b.get("declared") or 0
    if declared:
        what += f" and {plural(declared, 'item')} of declared untracked work"
    return what[0].upper() + what[1:] if capital else what


def forecast_sentence(f: dict[str, Any]) -> str:
    """The in-run forecasts against the outcome, in one or two sentences."""

    def units(n: int | None) -> str:
        return plural(n or 0, f["unit"])

    def one(row: dict[str, Any]) -> str:
        return quantity_range(row["forecast_kwh"], row["low_kwh"], row["high_kwh"], ENERGY)

    first, last = f["first"], f["last"]
    text = f"The forecast after {units(first['units_done'])} was {one(first)}"
    if f["count"] > 1:
        text += f"; the last, after {units(last['units_done'])}, {one(last)}"
    if not f["complete"]:
        return text + ". The run did not finish what was forecast, so it is not compared."
    errors = f"error {share(first['error'])}"
    if f["count"] > 1:
        errors = f"errors {share(first['error'])} (first) and {share(last['error'])} (last)"
    final = quantity_range(f["final_kwh"], None, None, ENERGY)
    return f"{text}. The run used {final}, {f['scope']}: {errors}."
