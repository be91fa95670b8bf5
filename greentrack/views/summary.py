"""The run summary (``print(run.summary())``, ``greentrack summary``): text, JSON, Markdown.

Every number comes from the run's :class:`~greentrack.account.RunAccount`; this module only
formats. JSON is the account itself (``RunAccount.to_dict()``), so the summary and the report
of a run can never disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greentrack.account import EnergyItem, Figure, RunAccount
from greentrack.units import G_PER_KG, G_PER_T, j_from_kwh
from greentrack.views.escape import terminal_safe

MAX_SPAN_LINES = 40


@dataclass(frozen=True, slots=True)
class ComponentRow:
    """A channel of the run in joules (``channel`` is ``part/id`` for other processes)."""

    channel: str
    component: str
    name: str
    source: str
    method: str
    energy_j: float
    energy_kwh: Figure


class Summary:
    """The summary view of a :class:`RunAccount`."""

    def __init__(self, account: RunAccount) -> None:
        self.account = account

    # --- convenient reads of the account ---------------------------------------------------
    @property
    def status(self) -> str:
        return self.account.status

    @property
    def complete(self) -> bool:
        return self.account.complete

    @property
    def notes(self) -> tuple[str, ...]:
        return self.account.notes

    @property
    def duration_s(self) -> float:
        return self.account.duration_s

    @property
    def components(self) -> list[ComponentRow]:
        return [
            ComponentRow(
                c.key,
                c.component,
                c.label,
                c.provenance,
                c.method,
                j_from_kwh(c.energy_kwh.value),
                c.energy_kwh,
            )
            for c in self.account.components
        ]

    @property
    def measured_energy_j(self) -> float:
        """Measured IT energy of the whole run (all parts; a federated run's total)."""
        return j_from_kwh(self.account.measured_kwh)

    @property
    def estimated_energy_j(self) -> float:
        return j_from_kwh(self.account.estimated_kwh)

    @property
    def spans(self) -> tuple[Mapping[str, Any], ...]:
        return self.account.spans

    @property
    def carbon(self) -> dict[str, Any] | None:
        return self.account.carbon.to_dict() if self.account.carbon else None

    @property
    def federated(self) -> Mapping[str, Any] | None:
        return self.account.federated

    def to_dict(self) -> dict[str, Any]:
        """The account as JSON-ready data (``greentrack summary --format json``)."""
        return self.account.to_dict()

    def to_markdown(self) -> str:
        """The summary in Markdown, from the bundled ``summary.md.j2`` template."""
        import jinja2

        from greentrack.templates import template
        from greentrack.views.escape import md_escape

        env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)
        env.filters.update(md=md_escape, energy=format_kwh, mass=format_grams, rng=format_range)
        text = template("summary.md.j2").read_text(encoding="utf-8")
        out = env.from_string(text).render(s=self.account.to_dict(), max_spans=MAX_SPAN_LINES)
        return re.sub(r"\n{3,}", "\n\n", out).strip() + "\n"

    def __str__(self) -> str:
        return format_summary(self.account)


# --- text ----------------------------------------------------------------------------------


def format_kwh(kwh: float | None) -> str:
    """Energy with a readable unit (Wh below 1 kWh).

    >>> format_kwh(0.0042), format_kwh(12.5), format_kwh(None)
    ('4.2 Wh', '12.5 kWh', 'n/a')
    """
    if kwh is None or not math.isfinite(kwh):
        return "n/a"
    if abs(kwh) >= 1000:
        return f"{kwh / 1000:.4g} MWh"
    if abs(kwh) >= 1 or kwh == 0:
        return f"{kwh:.4g} kWh"
    return f"{kwh * 1000:.4g} Wh"


def format_grams(grams: float | None) -> str:
    """Grams of CO2e with a readable unit.

    >>> format_grams(1534.0), format_grams(0.0123)
    ('1.534 kg', '0.0123 g')
    """
    if grams is None or not math.isfinite(grams):
        return "n/a"
    for unit, scale in (("t", G_PER_T), ("kg", G_PER_KG)):
        if abs(grams) >= scale:
            return f"{grams / scale:.4g} {unit}"
    return f"{grams:.4g} g"


def format_range(f: Mapping[str, float] | Figure | None, kind: str = "energy") -> str:
    """``value (low-high)`` of a figure, in kWh or grams.

    >>> format_range(Figure(2.0, 1.5, 2.5))
    '2 kWh (1.5-2.5 kWh)'
    """
    if f is None:
        return "n/a"
    d = f.to_dict() if isinstance(f, Figure) else f
    fmt = format_kwh if kind == "energy" else format_grams
    value, low, high = fmt(d["value"]), fmt(d["low"]), fmt(d["high"])
    unit = value.split()[-1]
    if low.endswith(" " + unit) and high.endswith(" " + unit):  # one unit for the three
        low = low[: -len(unit) - 1]
    return f"{value} ({low}-{high})"


def _item_line(c: EnergyItem, duration_s: float, width: int) -> str:
    power = f"avg {c.avg_power_w:7.1f} W" if c.avg_power_w is not None else " " * 13
    return (
        f"    {f'{c.key} {c.label}':<{width}}  {format_kwh(c.energy_kwh.value):>11}  "
        f"{power}  {c.provenance:<9}  {c.method}"
    )


def format_summary(a: RunAccount) -> str:
    """The plain-text summary of an account."""
    label = f' "{a.name}"' if a.name else ""
    project = f" [project {a.project}]" if a.project else ""
    lines = [
        f"greentrack run {a.run_id[:8]}{label}{project}: {a.status}",
        f"  started {a.start_utc}, duration {a.duration_s:.1f} s"
        + (f", {a.processes} processes" if a.processes > 1 else ""),
    ]
    if a.components:
        lines.append("  energy by component" + (" (server process)" if a.parts else "") + ":")
        width = max(len(f"{c.key} {c.label}") for c in a.components)
        lines += [_item_line(c, a.duration_s, width) for c in a.components]
    else:
        lines.append("  no energy measured or estimated on this machine")
    if a.federated:
        f = a.federated
        unmeasured = f["unmeasured_replies"]
        lines.append(
            f"  federated: {f['rounds']} rounds, {f['client_replies']} client replies"
            + (f" ({unmeasured} without an energy record)" if unmeasured else "")
            + f", {f['upload_bytes'] / 1e6:.4g} MB up, {f['download_bytes'] / 1e6:.4g} MB down"
        )
        for p in f["parts"]:
            lines.append(
                f"    {p['part'].replace('_', ' '):<15} {format_range(p['energy_kwh'])}"
                f"  {p['provenance']}"
            )
        if f["network_apart_kwh"]:
            lines.append(
                "    network (not in the total: no network was crossed; modeled for a real "
                f"deployment) {format_range(f['network_apart_kwh'])}"
            )
    what = "federated total (clients + server + network)" if a.parts else "total"
    lines.append(f"  {what}: {format_range(a.it_kwh)} of IT energy")
    lines.append(
        f"    measured {format_kwh(a.measured_kwh)}, estimated {format_kwh(a.estimated_kwh)}"
        + (" (a model, not a measurement)" if a.estimated_kwh else "")
    )
    if a.carbon and a.co2e_g:
        c = a.carbon
        where = (
            f"{c.intensity.value:.4g} gCO2e/kWh for {c.region} ({c.region_name}"
            + (f", {c.year}" if c.year else "")
            + f"; {c.source})"
            if c.method == "annual"
            else f"run-weighted {c.intensity.value:.4g} gCO2e/kWh ({(c.series or {})['source']})"
        )
        lines.append(f"  carbon: {where}, PUE {c.pue.value:g} ({c.pue_source})")
        lines.append(f"  CO2e: {format_range(a.co2e_g, 'mass')}")
    for component, reason in a.not_counted:
        lines.append(f"  not counted: {component}: {reason}")
    if a.spans:
        lines.append("  spans:")
        for span in a.spans[:MAX_SPAN_LINES]:
            tags = ", ".join(f"{k}={v}" for k, v in span["tags"].items())
            title = "  " * span["depth"] + span["name"] + (f" [{tags}]" if tags else "")
            status = "" if span["status"] == "ok" else f"  ({span['status']})"
            energy = format_kwh(span["measured_kwh"] + span["estimated_kwh"])
            est = f" (est. {format_kwh(span['estimated_kwh'])})" if span["estimated_kwh"] else ""
            lines.append(f"    {title:<36} {span['duration_s']:9.2f} s  {energy}{est}{status}")
        if len(a.spans) > MAX_SPAN_LINES:
            lines.append(
                f"    ... {len(a.spans) - MAX_SPAN_LINES} more spans (load_run(path).spans)"
            )
    lines += [f"  note: {n}" for n in a.notes]
    lines += [f"  note: {n}" for n in (a.federated or {}).get("notes") or ()]
    # names, tags and notes come from the run directory: none may drive the terminal
    return terminal_safe("\n".join(lines))
