"""The report's prose: the method paragraph and the sentence to paste. Words around the
account's figures; every number is formatted by :mod:`greentrack.report.numbers`."""

from __future__ import annotations

from typing import Any

from greentrack.report.numbers import (
    duration,
    energy,
    energy_unit,
    in_unit,
    mass_range,
    mass_unit,
    num,
    pct,
    plural,
    range_in,
    span,
)
from greentrack.report.references import readable


def method(r: dict[str, Any]) -> list[str]:
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
            f"The sampler reads power at {num(s.get('power_hz'))} Hz, writes a timeline row "
            f"every {num(s.get('row_interval_s'))} s and reads energy counters at least every "
            f"{num(s.get('counter_interval_s'))} s; totals come from energy counters where the "
            "hardware has them."
        )
    c = r["carbon"]
    if c:
        if c["method"] == "series":
            out.append(
                "CO2e = IT energy × PUE × the run-weighted grid intensity (the energy of each "
                f"interval × that interval's intensity; {c['series']['kind']} intensity, "
                f"{c['series']['source']})."
            )
        else:
            out.append(
                "CO2e = IT energy × PUE × annual grid intensity "
                f"({c['region']}, {readable(c['source'])}, {c['year']})."
            )
    out.append(
        "Ranges: each energy figure carries the accuracy of its source (measured counters a "
        "few percent, models tens of percent), the intensity and the PUE their own; bounds "
        "combine by interval arithmetic (see the methodology)."
    )
    if r["federated"]:
        out.append(
            "Federated total = client compute + server + network. Client compute is what each "
            "client's greentrack mod measured (or modeled) and returned with its reply; upload "
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
    """The sentence to paste: hardware, duration, energy (measured or estimated) and CO2e,
    each with its range, from the headline (the account's totals)."""
    h = r["headline"]
    subject = {
        "training": "Training",
        "federated": f"Federated training ({r['federated']['rounds']} rounds)"
        if r["federated"]
        else "Federated training",
    }.get(r["kind"], "The run")
    gpus = r["hardware"]["gpus"]
    on = " on " + ", ".join(f"{g['count']}\u00d7 {g['model']}" for g in gpus) if gpus else ""
    spread = span(h["energy_kwh"], h["energy_kwh_low"], h["energy_kwh_high"], energy)
    if h["measured_kwh"] and h["estimated_kwh"]:
        how = f"{energy(h['measured_kwh'])} measured, {energy(h['estimated_kwh'])} estimated"
    elif h["estimated_kwh"] or "measured" not in h.get("provenances", ["measured"]):
        how = "estimated, not measured"
    else:
        how = "measured"
    scope = " for clients, server and network" if r["federated"] else ""
    text = (
        f"{subject}{on} took {duration(r['duration_s'])} and used {energy(h['energy_kwh'])} "
        f"of electricity{scope} ({'; '.join(x for x in (spread, how) if x)})"
    )
    c = r["carbon"]
    if c is None:
        return text + "; CO2e was not computed because no region or intensity was recorded."
    co2e = mass_range(h["co2e_g"], h["co2e_g_low"], h["co2e_g_high"])
    if c["method"] == "series":
        where = f"a run-weighted {num(c['effective_gco2e_per_kwh'])} gCO2e/kWh"
    else:
        where = f"{num(c['gco2e_per_kwh'])} gCO2e/kWh ({c['region_name'] or c['region']})"
    return f"{text}; with a PUE of {num(c['pue'])} this emitted {co2e} CO2e at {where}."


def brief_sentence(b: dict[str, Any]) -> str:
    """The main-text sentence (at most ~50 words): GPU-hours, energy with its range and how
    much was measured, CO2e with its range, the intensity, region and PUE. Each figure is
    printed as the brief table prints it (:func:`brief_figures`), and it counts what the
    table's caption counts (:func:`brief_subject`)."""
    head = b["total"] or b["rows"][0]
    fig = brief_figures(b)
    on = ""
    if fig["gpu_hours"] is not None:
        on = f" used {fig['gpu_hours']} GPU-hours on {', '.join(b['gpus'])} and"
    what = brief_subject(b, capital=True)
    if b.get("declared"):  # the figures below are the runs' and the declared work's
        what += " (estimated)"
    e_unit = fig["energy_unit"]
    spread = "" if fig["energy_range"] in ("", "exact") else f"{fig['energy_range']} {e_unit}"
    detail = ", ".join(x for x in (spread, fig["measured"]) if x)
    text = f"{what}{on} drew {fig['energy']} {e_unit} of electricity ({detail})"
    if head["co2e_g"] is None:
        return text + "; no CO2e was computed (no region recorded)."
    m_unit = fig["mass_unit"]
    co2e = f"{fig['co2e']} {m_unit}"
    if fig["co2e_range"] not in ("", "exact"):
        co2e += f" ({fig['co2e_range']} {m_unit})"
    where = []
    if b["gco2e_per_kwh"] is not None:
        where.append(f"{num(b['gco2e_per_kwh'])} gCO2e/kWh")
    if b["regions"]:
        where.append("in " + ", ".join(b["regions"]))
    if b["pue"] is not None:
        where.append(f"PUE {num(b['pue'])}")
    at = f" ({', '.join(where)})" if where else ""
    missing = b.get("declared_without_co2e") or 0
    gap = f"; no CO2e for {plural(missing, 'declared item')} with no region" if missing else ""
    return f"{text}, emitting {co2e} CO2e{at}{gap}."


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


def measured_share(measured_kwh: float | None, energy_kwh: float | None) -> str:
    """The share of ``energy_kwh`` that was measured, as every view of the brief writes it.

    >>> measured_share(0.0, 2.0), measured_share(2.0, 2.0), measured_share(0.2, 153.0)
    ('0.0%', '100.0%', '0.1%')
    """
    return pct((measured_kwh or 0.0) / energy_kwh if energy_kwh else 0.0)


def brief_figures(b: dict[str, Any]) -> dict[str, Any]:
    """The brief's headline figures (its total row, or its one row) as printed, once, for the
    sentence: in the units of the brief table's columns and with the table's rounding, so the
    sentence and the table print each figure alike."""
    head = b["total"] or b["rows"][0]
    rows = b["rows"] + ([b["total"]] if b["total"] else [])
    e_unit = energy_unit([r["energy_kwh"] for r in rows])
    m_unit = mass_unit([r["co2e_g"] for r in rows if r["co2e_g"] is not None])
    share = measured_share(head["measured_kwh"], head["energy_kwh"])
    if not head["measured_kwh"]:
        how = "estimated, not measured"
    elif share == pct(1.0):
        how = "all measured"
    else:
        how = f"{share} measured"
    return {
        "gpu_hours": num(head["gpu_hours"]) if head["gpu_hours"] is not None else None,
        "energy_unit": e_unit,
        "energy": in_unit(head["energy_kwh"], e_unit),
        "energy_range": range_in(head["energy_kwh_low"], head["energy_kwh_high"], e_unit),
        "measured": how,
        "mass_unit": m_unit,
        "co2e": in_unit(head["co2e_g"], m_unit),
        "co2e_range": range_in(head["co2e_g_low"], head["co2e_g_high"], m_unit),
    }


def forecast_sentence(f: dict[str, Any]) -> str:
    """The in-run forecasts against the outcome, in one or two sentences."""

    def units(n: int | None) -> str:
        return f"{n} {f['unit']}{'' if n == 1 else 's'}"

    def one(row: dict[str, Any]) -> str:
        if row["low_kwh"] == row["high_kwh"]:
            return energy(row["forecast_kwh"])
        spread = span(row["forecast_kwh"], row["low_kwh"], row["high_kwh"], energy)
        return f"{energy(row['forecast_kwh'])} ({spread})"

    first, last = f["first"], f["last"]
    text = f"The forecast after {units(first['units_done'])} was {one(first)}"
    if f["count"] > 1:
        text += f"; the last, after {units(last['units_done'])}, {one(last)}"
    if not f["complete"]:
        return text + ". The run did not finish what was forecast, so it is not compared."
    errors = f"error {pct(first['error'])}"
    if f["count"] > 1:
        errors = f"errors {pct(first['error'])} (first) and {pct(last['error'])} (last)"
    return f"{text}. The run used {energy(f['final_kwh'])} ({f['scope']}): {errors}."
