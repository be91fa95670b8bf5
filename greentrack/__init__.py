"""greentrack: measured energy and CO2e of PyTorch training and federated learning.

Importing greentrack does not import torch, lightning, flwr or pandas (tests/test_packaging.py
checks it in a fresh interpreter). ``greentrack.report(runs, format=..., output=None,
**options)`` (:mod:`greentrack.report.api`) and ``greentrack.export(run, to=..., **options)``
(:mod:`greentrack.export.api`) are imported when first used: each is a callable package.

>>> import greentrack
>>> run = greentrack.track  # the entry point: ``with greentrack.track(run_dir=...) as run:``
"""

from typing import TYPE_CHECKING, Any

from greentrack._version import __version__
from greentrack.analysis.budget import Budget
from greentrack.api import Tracker, summarize, track
from greentrack.carbon.settings import CarbonSettings
from greentrack.errors import (
    GreentrackError,
    MeterError,
    MeterUnavailableError,
    RunExistsError,
    RunFormatError,
    SpanError,
)
from greentrack.rundir.reader import Run, load_run
from greentrack.tracker import Span, SpanRecord, TrackerOptions

if TYPE_CHECKING:  # what a type checker sees; at run time, the callable packages
    from greentrack.export.api import export as export
    from greentrack.report.api import report as report


def __getattr__(name: str) -> Any:
    """``greentrack.report`` and ``greentrack.export``, imported on first use (the report
    and the exports need pandas and jinja2, which ``import greentrack`` does not load)."""
    if name in ("report", "export"):
        import importlib

        return importlib.import_module(f"greentrack.{name}")
    raise AttributeError(f"module 'greentrack' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "report", "export"})


__all__ = [
    "Budget",
    "CarbonSettings",
    "GreentrackError",
    "MeterError",
    "MeterUnavailableError",
    "Run",
    "RunExistsError",
    "RunFormatError",
    "Span",
    "SpanError",
    "SpanRecord",
    "Tracker",
    "TrackerOptions",
    "__version__",
    "export",
    "load_run",
    "report",
    "summarize",
    "track",
]
