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
            f"{readable(r['federated']['network'])}; server is the server process's energy, "
            "less what clients on its own host already measured (a machine is counted once)."
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
    if r.get("calibration"):  # a wall meter's correction: the summary's words for it
        scope += f", {r['calibration']['label']}"
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


def forecast_error(error: float | None) -> str:
    """A forecast's relative error as a percentage to a tenth of a percent at most (a
    forecast is not more precise than that: "0%", never "0.000%" or "<0.001%").

    >>> forecast_error(0.1234), forecast_error(-2e-9), forecast_error(-0.15), forecast_error(None)
    ('12.3%', '0%', '-15%', 'n/a')
    """
    if error is None:
        return "n/a"
    return f"{num(round(float(error) * 100, 1) or 0.0)}%"


def forecast_short(f: dict[str, Any]) -> str:
    """A run's in-run forecast against its outcome in a line, for a table of many runs:
    "forecast after 2 epochs 10.1 Wh, used 10.1 Wh: error 0%".

    >>> forecast_short({"unit": "epoch", "count": 1, "complete": True, "final_kwh": 0.0101,
    ...     "first": {"units_done": 2, "forecast_kwh": 0.0101, "low_kwh": 0.009,
    ...               "high_kwh": 0.011, "error": 0.0}})
    'forecast after 2 epochs 10.1 Wh, used 10.1 Wh: error 0%'
    """
    row = f["first"] if f["count"] == 1 else f["last"]
    c = column([row["forecast_kwh"], f.get("final_kwh")], ENERGY)
    done = plural(row["units_done"] or 0, f["unit"])
    text = f"forecast after {done} {c.text(row['forecast_kwh'])}"
    if not f["complete"]:
        return text + ", not compared: the run did not finish what was forecast"
    return f"{text}, used {c.text(f['final_kwh'])}: error {forecast_error(row['error'])}"


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
    figure alike (a table of groups prints its total in units of its own, and so does the
    sentence)."""
    head = b["total"] or b["rows"][0]
    cols = brief_columns(b)
    if b.get("by_group"):  # the table prints its total row in units of its own
        cols = {
            "gpu_hours": column([head["gpu_hours"]], PLAIN),
            "energy": column(
                [head["energy_kwh"], head["energy_kwh_low"], head["energy_kwh_high"]], ENERGY
            ),
            "share": column([measured_fraction(head)], SHARE),
            "co2e": column([head["co2e_g"], head["co2e_g_low"], head["co2e_g_high"]], MASS),
        }
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
        parts.append(count_word(len(devices) - MAX_DEVICE_SETS, "other set") + " of devices")
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
    model = model_phrase(b.get("parameters"), b.get("flops"), b.get("parameters_recorded", False))
    if model:
        what += f"{'' if what.endswith(',') else ','} {model},"
    e_unit = fig["energy_unit"]
    spread = "" if fig["energy_range"] in ("", "exact") else f"{fig['energy_range']} {e_unit}"
    detail = ", ".join(x for x in (spread, fig["measured"]) if x)
    used = f" used {fig['gpu_hours']} GPU-hours and" if fig["gpu_hours"] is not None else ""
    text = f"{what}{used} drew {fig['energy']} {e_unit} of electricity ({detail})"
    if head["co2e_g"] is None:
        return text + "; no CO2e was computed (no region recorded)." + calibrated_sentence(b)
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
    return f"{text}, emitting {co2e} CO2e{where}{gap}." + calibrated_sentence(b)


def calibrated_sentence(b: dict[str, Any]) -> str:
    """What a wall meter corrected, after the brief's sentence: each calibrated run's IT
    total with its factor and range, in the summary's words; empty when none was.

    >>> calibrated_sentence({"rows": [{}], "calibrated": [("a", "calibrated against x")]})
    ' The IT total is calibrated against x.'
    >>> calibrated_sentence({"rows": [{}, {}], "calibrated": [("a", "calibrated against x")]})
    ' The IT total of a is calibrated against x.'
    """
    cal = b.get("calibrated") or []
    if len(cal) == 1 and len(b["rows"]) == 1:
        return f" The IT total is {cal[0][1]}."
    return "".join(f" The IT total of {label} is {text}." for label, text in cal)


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
    errors = f"error {forecast_error(first['error'])}"
    if f["count"] > 1:
        errors = (
            f"errors {forecast_error(first['error'])} (first) and "
            f"{forecast_error(last['error'])} (last)"
        )
    final = quantity_range(f["final_kwh"], None, None, ENERGY)
    return f"{text}. The run used {final}, {f['scope']}: {errors}."


# --- a project's groups ------------------------------------------------------------------------

_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def count_word(n: int, word: str, capital: bool = False) -> str:
    """``n`` ``word``\\ s as a sentence starts them: in words up to ten.

    >>> count_word(3, "run", capital=True), count_word(1, "run"), count_word(12, "run")
    ('Three runs', 'one run', '12 runs')
    """
    text = plural(n, word)
    if 0 <= n < len(_WORDS):
        text = f"{_WORDS[n]} {text.split(' ', 1)[1]}"
    return text[0].upper() + text[1:] if capital else text


def mean_se(mean: float | None, se: float | None, scale: Any) -> str:
    """A mean and its standard error in one unit and one precision ("12.3 ± 0.4 Wh"); the
    mean alone without a standard error.

    >>> mean_se(0.0123, 0.0004, ENERGY), mean_se(1534.0, None, MASS)
    ('12.3 ± 0.4 Wh', '1.53 kg')
    """
    c = column([mean, se], scale)
    if se is None:
        return c.text(mean)
    return c.with_unit(f"{c.cell(mean)} \u00b1 {c.cell(se)}")


def group_sentence(g: dict[str, Any]) -> str:
    """A group's runs in one sentence: how many, on what, how long each, and per run the mean
    and standard error of the energy and CO2e (a group of one run: its figures with their
    ranges)."""
    if g["n"] == 1:
        energy = quantity_range(g["energy_kwh"], g["energy_kwh_low"], g["energy_kwh_high"], ENERGY)
        text = (
            f"Run {g['numbers'][0]} ran on {g['hardware']} for {duration(g['duration_s'])}: "
            f"{energy} of IT energy"
        )
        if g["co2e_g"] is not None:
            co2e = quantity_range(g["co2e_g"], g["co2e_g_low"], g["co2e_g_high"], MASS)
            text += f" and {co2e} CO2e"
        return text + "."
    lo, hi = g["duration_s_min"], g["duration_s_max"]
    span = duration(lo) if duration(lo) == duration(hi) else f"{duration(lo)} to {duration(hi)}"
    text = (
        f"{count_word(g['n'], 'run', capital=True)} on {g['hardware']}, {span} each; per run "
        f"{mean_se(g['energy_kwh_mean'], g['energy_kwh_se'], ENERGY)} of IT energy"
    )
    if g["co2e_g_mean"] is not None:
        text += f" and {mean_se(g['co2e_g_mean'], g['co2e_g_se'], MASS)} CO2e"
    text += ", mean \u00b1 standard error over the runs"
    total = quantity_range(g["energy_kwh"], g["energy_kwh_low"], g["energy_kwh_high"], ENERGY)
    return f"{text}; {total} in all."


_LARGE = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand"))


def count_words(n: float) -> str:
    """A large count in words, to three significant figures ("124 million", "1.3 billion").

    >>> count_words(124_439_808), count_words(1.3e9), count_words(950), count_words(66_000)
    ('124 million', '1.3 billion', '950', '66 thousand')
    """
    for size, word in _LARGE:
        if n >= size:
            return f"{num(n / size)} {word}"
    return num(n)


def power_of_ten(x: float) -> str:
    """A large quantity as a mantissa and a power of ten ("3.2 × 10^18"; LaTeX sets the
    exponent as a superscript).

    >>> power_of_ten(3.2e18), power_of_ten(1e21), power_of_ten(5000.0)
    ('3.2 × 10^18', '1 × 10^21', '5000')
    """
    if x < 1e6:
        return num(x)
    exponent = len(str(int(x))) - 1
    mantissa = x / 10**exponent
    if float(num(mantissa)) >= 10:  # 9.996 rounds to 10
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{num(mantissa)} \u00d7 10^{exponent}"


def model_phrase(parameters: float | None, flops: float | None, recorded: bool = False) -> str:
    """What was trained, where the author gave it or the run recorded it (``recorded``: the
    count the training's callback read from the model): "training a model of 124 million
    parameters with 3.2 × 10^18 FLOPs"; empty without either.

    >>> model_phrase(124e6, 3.2e18)
    'training a model of 124 million parameters with 3.2 × 10^18 FLOPs'
    >>> model_phrase(None, 3.2e18), model_phrase(7e9, None), model_phrase(None, None)
    ('with 3.2 × 10^18 FLOPs of training', 'training a model of 7 billion parameters', '')
    >>> model_phrase(9, None, recorded=True)
    'training a model of 9 parameters (as recorded from the model trained)'
    """
    count = ""
    if parameters:
        count = f"training a model of {count_words(parameters)} parameters"
        if recorded:
            count += " (as recorded from the model trained)"
    if parameters and flops:
        return f"{count} with {power_of_ten(flops)} FLOPs"
    if parameters:
        return count
    if flops:
        return f"with {power_of_ten(flops)} FLOPs of training"
    return ""
