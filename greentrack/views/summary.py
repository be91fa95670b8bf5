"""The run summary (``print(run.summary())``, ``greentrack summary``): text, JSON, Markdown.

Every number comes from the run's :class:`~greentrack.account.RunAccount`; this module only
formats. JSON is the account itself (``RunAccount.to_dict()``), so the summary and the report
of a run can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greentrack.account import EnergyItem, Figure, RunAccount
from greentrack.units import j_from_kwh
from greentrack.views.escape import one_line, terminal_safe
from greentrack.views.numbers import (
    ENERGY,
    MASS,
    Column,
    column,
    num,
    plural,
    quantities,
    quantity,
)

MAX_SPAN_LINES = 40
"""The most spans the text and Markdown summaries list: the first :data:`FIRST_SPANS` and the
last of the run's timeline, with a line between saying how many more there are and where
they all are (JSON keeps every span): 100,000 spans are not 100,000 lines."""
FIRST_SPANS = 30
MORE_SPANS = "see greentrack summary --format json or spans.jsonl"


def listed_spans(
    spans: tuple[Mapping[str, Any], ...],
) -> tuple[tuple[Mapping[str, Any], ...], int, tuple[Mapping[str, Any], ...]]:
    """The spans a summary lists: the first ones, how many are left out, the last ones.

    >>> head, hidden, tail = listed_spans(tuple({"i": i} for i in range(100)))
    >>> len(head), hidden, [s["i"] for s in tail][:2]
    (30, 60, [90, 91])
    """
    if len(spans) <= MAX_SPAN_LINES:
        return spans, 0, ()
    last = MAX_SPAN_LINES - FIRST_SPANS
    return spans[:FIRST_SPANS], len(spans) - MAX_SPAN_LINES, spans[-last:]


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
        env.filters.update(
            md=md_escape, energy=format_kwh, mass=format_grams, rng=format_range, num=num
        )
        env.globals.update(column=column, quantities=quantities)
        text = template("summary.md.j2").read_text(encoding="utf-8")
        data = self.account.to_dict()
        head, hidden, tail = listed_spans(tuple(data["spans"]))
        out = env.from_string(text).render(
            s=data,
            spans_head=head,
            spans_hidden=hidden,
            spans_tail=tail,
            more_spans=MORE_SPANS,
            span_kwh=[sp["measured_kwh"] + sp["estimated_kwh"] for sp in (*head, *tail)],
        )
        return re.sub(r"\n{3,}", "\n\n", out).strip() + "\n"

    def __str__(self) -> str:
        return format_summary(self.account)

    def _repr_html_(self) -> str:
        """The summary in a notebook cell: the figures of ``str(summary)``, as HTML."""
        from greentrack.views.html import summary_html

        return summary_html(self.account)


# --- text ----------------------------------------------------------------------------------


def format_kwh(kwh: float | None) -> str:
    """Energy in the unit that reads best, three significant figures
    (:func:`greentrack.views.numbers.quantity`, as every view writes it).

    >>> format_kwh(0.0042), format_kwh(12.5), format_kwh(None)
    ('4.20 Wh', '12.5 kWh', 'n/a')
    """
    return quantity(kwh, ENERGY)


def format_grams(grams: float | None) -> str:
    """Grams of CO2e in the unit that reads best.

    >>> format_grams(1534.0), format_grams(0.0123)
    ('1.53 kg', '12.3 mg')
    """
    return quantity(grams, MASS)


def format_range(f: Mapping[str, float] | Figure | None, kind: str = "energy") -> str:
    """``value (low–high)`` of a figure (kWh, or grams for ``kind="mass"``): one unit and
    one precision for the three, the range rounded outward.

    >>> format_range(Figure(2.0, 1.5, 2.5))
    '2.00 kWh (1.50–2.50 kWh)'
    """
    if f is None:
        return "n/a"
    d = f.to_dict() if isinstance(f, Figure) else f
    c = column([d["value"], d["low"], d["high"]], ENERGY if kind == "energy" else MASS)
    return c.value_range(d["value"], d["low"], d["high"])


def _item_line(c: EnergyItem, energy: Column, power: Column, width: int) -> str:
    watts = f"avg {power.cell(c.avg_power_w):>7} W" if c.avg_power_w is not None else " " * 13
    return (
        f"    {one_line(f'{c.key} {c.label}'):<{width}}  {energy.text(c.energy_kwh.value):>11}  "
        f"{watts}  {c.provenance:<9}  {c.method}"
    )


def tier_lines(a: RunAccount) -> list[str]:
    """The tiers of a run with a node meter: node, devices, residual, facility, each with its
    range, and which one the IT total is (docs/methodology.md, "Node meters and tiers")."""
    t = a.tiers
    if t is None:
        return []
    share = f", {t.residual_share:.0%} of the node" if t.residual_share is not None else ""
    meters = "its node meter" if len(t.figures) == 1 else "its node meters"
    out = [
        f"  tiers (IT total = {t.it_tier}; {t.nodes_measured} of {plural(t.nodes, 'node')} "
        "measured):",
        f"    node      {format_range(t.node_kwh)}  measured by {meters}",
        f"    devices   {format_range(t.covered_devices_kwh)}  GPU + CPU + DRAM on those nodes",
        f"    residual  {format_range(t.residual_kwh)}  fans, power supplies, networking and "
        f"idle{share}",
    ]
    if a.facility_kwh is not None and a.carbon is not None:
        out.append(
            f"    facility  {format_range(a.facility_kwh)}  "
            f"IT total x PUE {num(a.carbon.pue.value)}"
        )
    if t.flagged:
        out.append(f"    flagged: {t.flagged}")
    return out


def _span_line(span: Mapping[str, Any], spans: Column) -> str:
    tags = ", ".join(f"{one_line(k)}={one_line(v)}" for k, v in span["tags"].items())
    title = "  " * span["depth"] + one_line(span["name"]) + (f" [{tags}]" if tags else "")
    status = "" if span["status"] == "ok" else f"  ({one_line(span['status'])})"
    energy = spans.text(span["measured_kwh"] + span["estimated_kwh"])
    est = f" (est. {spans.text(span['estimated_kwh'])})" if span["estimated_kwh"] else ""
    return f"    {title:<36} {span['duration_s']:9.2f} s  {energy}{est}{status}"


def format_summary(a: RunAccount) -> str:
    """The plain-text summary of an account."""
    # names, tags and notes come from the run directory: each stays on its line
    label = f' "{one_line(a.name)}"' if a.name else ""
    project = f" [project {one_line(a.project)}]" if a.project else ""
    lines = [
        f"greentrack run {a.run_id[:8]}{label}{project}: {a.status}",
        f"  started {a.start_utc}, duration {a.duration_s:.1f} s"
        + (f", {a.processes} processes" if a.processes > 1 else ""),
    ]
    if a.components:
        lines.append("  energy by component" + (" (server process)" if a.parts else "") + ":")
        width = max(len(one_line(f"{c.key} {c.label}")) for c in a.components)
        energies = column([c.energy_kwh.value for c in a.components], ENERGY)
        powers = column([c.avg_power_w for c in a.components], "plain")
        lines += [_item_line(c, energies, powers, width) for c in a.components]
    else:
        lines.append("  no energy measured or estimated on this machine")
    if a.federated:
        f = a.federated
        unmeasured = f["unmeasured_replies"]
        lines.append(
            f"  federated: {f['rounds']} rounds, {f['client_replies']} client replies"
            + (f" ({unmeasured} without an energy record)" if unmeasured else "")
            + f", {num(f['upload_bytes'] / 1e6)} MB up, {num(f['download_bytes'] / 1e6)} MB down"
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
    if a.tiers is not None:  # the IT total is the highest tier measured: say which
        what += f" (the {a.tiers.it_tier} tier)"
    if a.calibration:  # a wall meter's correction (greentrack calibrate --store): say so
        what += f", {a.calibration['label']}"
    lines.append(f"  {what}: {format_range(a.it_kwh)} of IT energy")
    measured, estimated = quantities([a.measured_kwh, a.estimated_kwh], ENERGY)
    lines.append(
        f"    measured {measured}, estimated {estimated}"
        + (" (a model, not a measurement)" if a.estimated_kwh else "")
    )
    lines += tier_lines(a)  # the node, its devices, the residual: where a node was measured
    if a.carbon and a.co2e_g:
        c = a.carbon
        where = (
            f"{num(c.intensity.value, 4)} gCO2e/kWh for {c.region} ({c.region_name}"
            + (f", {c.year}" if c.year else "")
            + f"; {c.source})"
            if c.method == "annual"
            else f"run-weighted {num(c.intensity.value, 4)} gCO2e/kWh "
            f"({(c.series or {})['source']})"
        )
        lines.append(f"  carbon: {where}, PUE {num(c.pue.value)} ({c.pue_source})")
        lines.append(f"  CO2e: {format_range(a.co2e_g, 'mass')}")
    for component, reason in a.not_counted:
        lines.append(f"  not counted: {one_line(component)}: {one_line(reason)}")
    if a.spans:
        lines.append("  spans:")
        head, hidden, tail = listed_spans(a.spans)
        shown = (*head, *tail)
        spans = column(
            [s["measured_kwh"] + s["estimated_kwh"] for s in shown]
            + [s["estimated_kwh"] for s in shown],
            ENERGY,
        )
        lines += [_span_line(span, spans) for span in head]
        if hidden:
            lines.append(f"    \u2026 {plural(hidden, 'more span')}: {MORE_SPANS}")
        lines += [_span_line(span, spans) for span in tail]
    lines += [f"  note: {one_line(n)}" for n in a.notes]
    lines += [f"  note: {one_line(n)}" for n in (a.federated or {}).get("notes") or ()]
    # names, tags and notes come from the run directory: none may drive the terminal
    return terminal_safe("\n".join(lines))
