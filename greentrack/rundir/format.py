"""The run directory's names: every file and folder a run directory holds, in one place.

Documented in docs/run-format.md (format version :data:`FORMAT_VERSION`). Writers and readers
import these names; no other module spells a file name of a run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FORMAT_VERSION = 1
META = "meta.json"
"""Written at start: host, hardware, software, channels, carbon settings; rewritten whole as
each field still ``pending`` at start (package versions, git) arrives."""
TIMELINE = "timeline.csv"
"""One row per ``row_interval_s``: mean power and cumulative energy per channel."""
SPANS = "spans.jsonl"
"""A ``begin`` and an ``end`` line per span."""
EVENTS = "events.jsonl"
"""Run start/end, meter errors, metrics, forecasts, budget messages, child exit."""
SUMMARY = "summary.json"
"""Written once at a clean stop: final totals."""
FL = "fl.jsonl"
"""Flower server runs: one line per client reply (bytes, client energy)."""
PARTS = "parts"
"""Folder of the runs measured by other processes of the same job (ranks, segments)."""


def segment_dir(root: Path, segment: int, rank: int) -> Path:
    """Where ``rank`` of ``segment`` of the job in ``root`` writes: ``root`` itself for rank 0
    of segment 0, else its part folder.

    >>> segment_dir(Path("run"), 0, 1).as_posix()
    'run/parts/seg0-rank1'
    """
    return root if (segment, rank) == (0, 0) else root / PARTS / part_name(segment, rank)


def part_name(segment: int, rank: int) -> str:
    """Folder name (under :data:`PARTS`) of the part of ``rank`` in ``segment``.

    >>> part_name(1, 3)
    'seg1-rank3'
    """
    return f"seg{segment}-rank{rank}"


def ranks_file(segment: int) -> str:
    """File in which rank 0 records every rank of ``segment``.

    >>> ranks_file(0)
    'ranks-seg0.json'
    """
    return f"ranks-seg{segment}.json"


def timeline_columns(channel_ids: Sequence[str]) -> list[str]:
    """Header of :data:`TIMELINE` for these channels."""
    cols = ["t_unix_s", "t_mono_s"]
    for cid in channel_ids:
        cols += [f"{cid}_power_w", f"{cid}_energy_j"]
    return [*cols, "gaps"]


INTENSITY = "intensity.json"
"""The grid-intensity series of the run's hours from a provider, with its query, time of fetch,
licence and attribution (written once; later reports read it offline)."""
CALIBRATION = "calibration.json"
"""A wall meter's correction of the run's IT total (``greentrack calibrate --store``): the
factor (meter / IT total over the meter's window) with its range, the window, the meter files'
SHA-256; every later account of the run applies it, labelled (written whole, replaced by the
next ``--store``)."""
