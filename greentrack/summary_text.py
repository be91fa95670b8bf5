"""Plain-text rendering of a :class:`greentrack.run.RunSummary` (what ``print`` shows)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greentrack.run import RunSummary

MAX_SPAN_LINES = 40


def format_energy(joules: float) -> str:
    """Joules with a readable prefix and the same in kWh, e.g. ``'1.23 kJ (0.000342 kWh)'``.

    >>> format_energy(1234.0)
    '1.234 kJ (0.000343 kWh)'
    """
    if not math.isfinite(joules):
        return "n/a"
    value, unit = joules, "J"
    for prefix, scale in (("MJ", 1e6), ("kJ", 1e3)):
        if abs(joules) >= scale:
            value, unit = joules / scale, prefix
            break
    return f"{value:.4g} {unit} ({joules / 3.6e6:.3g} kWh)"


def format_summary(s: RunSummary) -> str:
    label = f' "{s.name}"' if s.name else ""
    project = f" [project {s.project}]" if s.project else ""
    lines = [
        f"greentrack run {s.run_id[:8]}{label}{project}: {s.status}",
        f"  started {s.start_utc}, duration {s.duration_s:.1f} s",
    ]
    if s.components:
        lines.append("  energy by component:")
        width = max(len(f"{c.channel} {c.name}") for c in s.components)
        for c in s.components:
            power = c.energy_j / s.duration_s if s.duration_s > 0 else math.nan
            lines.append(
                f"    {f'{c.channel} {c.name}':<{width}}  {format_energy(c.energy_j):>24}  "
                f"avg {power:7.1f} W  {c.source:<9}  {c.method}"
            )
        if any(c.source == "measured" for c in s.components):
            lines.append(f"  measured total:  {format_energy(s.measured_energy_j)}")
        else:
            lines.append("  measured total:  nothing measured on this machine")
        if any(c.source == "estimated" for c in s.components):
            lines.append(
                f"  estimated total: {format_energy(s.estimated_energy_j)}"
                " (a model, not a measurement)"
            )
    else:
        lines.append("  no energy measured or estimated on this machine")
    if s.carbon:
        lines += _carbon_lines(s.carbon)
    if s.federated:
        lines += _federated_lines(s.federated)
    for component, reason in s.not_counted:
        lines.append(f"  not counted: {component}: {reason}")
    has_measured = any(c.source == "measured" for c in s.components)
    has_estimated = any(c.source == "estimated" for c in s.components)
    if s.spans:
        kinds = " + ".join(
            k for k, f in (("measured", has_measured), ("estimated", has_estimated)) if f
        )
        lines.append(f"  spans ({kinds or 'duration only'}):")
        for span in s.spans[:MAX_SPAN_LINES]:
            tags = ", ".join(f"{k}={v}" for k, v in span.tags.items())
            title = "  " * span.depth + span.name + (f" [{tags}]" if tags else "")
            status = "" if span.status == "ok" else f"  ({span.status})"
            parts = []
            if has_measured:
                parts.append(format_energy(span.measured_energy_j))
            if has_estimated:
                parts.append(f"est. {format_energy(span.estimated_energy_j)}")
            energy = " + ".join(parts) or "no energy channel"
            lines.append(f"    {title:<36} {span.duration_s:9.2f} s  {energy}{status}")
        if len(s.spans) > MAX_SPAN_LINES:
            lines.append(
                f"    ... {len(s.spans) - MAX_SPAN_LINES} more spans (load_run(path).spans)"
            )
    lines += [f"  note: {n}" for n in s.notes]
    return "\n".join(lines)


def _carbon_lines(c: Mapping[str, Any]) -> list[str]:
    i, p = c["intensity"], c["pue"]
    year = f", {i['year']}" if i.get("year") else ""
    out = [
        f"  carbon: {i['gco2e_per_kwh']:.4g} gCO2e/kWh for {i['region']} ({i['name']}{year}; "
        f"{i['basis']}; {i['source']}), PUE {p['pue']:g} ({p['source']}) on "
        f"{', '.join(c['pue_applies_to'])}",
    ]
    if c["measured_co2e_g"] or not c["estimated_co2e_g"]:
        out.append(f"  CO2e of measured energy:  {format_mass(c['measured_co2e_g'])}")
    if c["estimated_co2e_g"]:
        out.append(f"  CO2e of estimated energy: {format_mass(c['estimated_co2e_g'])} (a model)")
    return out


def format_mass(grams: float) -> str:
    """Grams of CO2e with a readable unit.

    >>> format_mass(1534.0)
    '1.534 kgCO2e'
    """
    for unit, scale in (("tCO2e", 1e6), ("kgCO2e", 1e3)):
        if abs(grams) >= scale:
            return f"{grams / scale:.4g} {unit}"
    return f"{grams:.4g} gCO2e"


def _federated_lines(f: Mapping[str, Any]) -> list[str]:
    j = 3.6e6
    lo, hi = f["network_range_kwh"]
    out = [
        f"  federated: {f['rounds']} rounds, {f['client_replies']} client replies",
        f"    client compute: {format_energy(f['client_measured_kwh'] * j)} measured"
        + (
            f" + {format_energy(f['client_estimated_kwh'] * j)} estimated"
            if f["client_estimated_kwh"]
            else ""
        ),
        f"    upload {f['upload_bytes'] / 1e6:.4g} MB -> {format_energy(f['upload_kwh'] * j)}, "
        f"download {f['download_bytes'] / 1e6:.4g} MB -> {format_energy(f['download_kwh'] * j)}"
        f" (estimated at {f['network']}; published range "
        f"{format_energy(lo * j)} to {format_energy(hi * j)} for both directions)",
    ]
    out += [f"    note: {n}" for n in f["notes"]]
    return out
