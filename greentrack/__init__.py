"""greentrack: measured energy and CO2e of PyTorch training and federated learning.

Importing greentrack does not import torch, lightning, flwr or pandas (tests/test_packaging.py
checks it in a fresh interpreter).

>>> import greentrack
>>> run = greentrack.track  # the entry point: ``with greentrack.track(run_dir=...) as run:``
"""

from greentrack._version import __version__
from greentrack.errors import (
    GreentrackError,
    MeterError,
    MeterUnavailableError,
    RunExistsError,
    RunFormatError,
    SpanError,
)
from greentrack.run import Run, RunSummary, load_run
from greentrack.tracker import Span, SpanRecord, Tracker, TrackerOptions, track

__all__ = [
    "GreentrackError",
    "MeterError",
    "MeterUnavailableError",
    "Run",
    "RunExistsError",
    "RunFormatError",
    "RunSummary",
    "Span",
    "SpanError",
    "SpanRecord",
    "Tracker",
    "TrackerOptions",
    "__version__",
    "load_run",
    "track",
]
