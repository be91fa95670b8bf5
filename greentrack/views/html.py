"""The run summary as HTML, for a notebook cell (``Summary._repr_html_``, and the tracker's).

A headline (the run, its IT energy and CO2e with their ranges) over the text summary itself
(:func:`greentrack.views.summary.format_summary`), so that a cell shows exactly the figures
``print(summary)`` shows, formatted once, by the same functions: the two cannot drift apart.
Every text that comes from the run directory (names, devices, methods, tags, notes, sources)
is escaped (:func:`greentrack.views.escape.html_escape`). Inline styles only: a cell's HTML
must not restyle the notebook around it.
"""

from __future__ import annotations

from greentrack.account import RunAccount
from greentrack.views.escape import html_escape as esc
from greentrack.views.summary import format_range, format_summary

_CELL = "padding:.15rem .8rem .15rem 0;text-align:left"
_PRE = "font-size:.85em;line-height:1.35;margin:.4rem 0 0;white-space:pre;overflow-x:auto"


def headline(a: RunAccount) -> list[tuple[str, str]]:
    """The figures a cell shows first, as (label, text): each is a string the text summary
    shows too."""
    what = "federated total" if a.parts else "IT energy"
    rows = [(what, format_range(a.it_kwh))]
    if a.carbon and a.co2e_g:
        rows.append(("CO2e", format_range(a.co2e_g, "mass")))
    return rows


def summary_html(a: RunAccount) -> str:
    """The summary of ``a`` as an HTML fragment."""
    label = f" &quot;{esc(a.name)}&quot;" if a.name else ""
    title = f"<strong>greentrack run {esc(a.run_id[:8])}{label}</strong>: {esc(a.status)}"
    rows = "".join(
        f'<tr><th style="{_CELL}">{esc(k)}</th><td style="{_CELL}"><strong>{esc(v)}</strong>'
        "</td></tr>"
        for k, v in headline(a)
    )
    return (
        f'<div class="greentrack-summary"><div>{title}</div>'
        f'<table style="border-collapse:collapse;margin:.3rem 0">{rows}</table>'
        f'<details open><summary>summary</summary><pre style="{_PRE}">'
        f"{esc(format_summary(a))}</pre></details></div>"
    )
