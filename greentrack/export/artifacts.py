"""The report beside the figures: Markdown (with its figures folder), HTML (figures embedded)
and JSON (the report schema, docs/report-schema.json), rendered from the one report whose
account the figures were read from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from greentrack.report.model import Report

STEM = "greentrack_report"
FORMATS = ("md", "html", "json")


def write_artifacts(report: Report, folder: Path, *, plots: bool = True) -> list[Path]:
    """Render ``report`` into ``folder`` (``greentrack_report.md`` with
    ``greentrack_report_figures/``, ``.html``, ``.json``); the files written, sorted."""
    from greentrack.report.api import RenderOptions, render_report

    options = RenderOptions(plots=plots)
    for fmt in FORMATS:
        render_report(report, fmt, folder / f"{STEM}.{fmt}", options)
    return sorted(p for p in folder.rglob("*") if p.is_file())
