"""greentrack: measured energy and CO2e of PyTorch training and federated learning.

Importing greentrack does not import torch, lightning, flwr or pandas (tests/test_packaging.py
checks it in a fresh interpreter).

>>> import greentrack
>>> run = greentrack.track  # the entry point: ``with greentrack.track(run_dir=...) as run:``
"""

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
    "load_run",
    "summarize",
    "track",
]
