"""The run directory: append-only, crash-safe, readable while the run is alive.

Files (names in :mod:`greentrack.rundir.format`, documented in docs/run-format.md):

* ``meta.json``      written once at start (atomic rename): host, hardware, software, channels.
* ``timeline.csv``   one row per ``row_interval_s`` (1 s): per channel mean power and
                     cumulative energy. Appended and flushed by the sampler thread every row.
* ``spans.jsonl``    a ``begin`` and an ``end`` line per span, with energy per channel.
* ``events.jsonl``   run start/end, meter errors (gaps), warnings, child process exit.
* ``summary.json``   written once at a clean stop (atomic rename): final totals.

A run killed with SIGKILL keeps everything up to the last flush (at most one row interval,
plus the unflushed part of the current row): the OS holds written data even if the process
dies. Nothing grows in memory with the length of a run: rows go straight to disk.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from greentrack.errors import RunExistsError
from greentrack.rundir.format import (
    EVENTS,
    FORMAT_VERSION,
    META,
    SPANS,
    SUMMARY,
    TIMELINE,
    timeline_columns,
)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to ``path`` through a temporary file and a rename, so that a reader or a
    crash never sees half a file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fmt(value: float, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class RunWriter:
    """Appends a run's records to its directory. Thread-safe.

    Raises:
        RunExistsError: ``run_dir`` already holds a run (greentrack never overwrites one).
    """

    def __init__(self, run_dir: Path, meta: Mapping[str, Any], channel_ids: Sequence[str]) -> None:
        self.run_dir = Path(run_dir)
        if (self.run_dir / META).exists():
            raise RunExistsError(
                f"{self.run_dir} already holds a run ({META} exists); greentrack never overwrites "
                "one. Pass a new run_dir, or run_dir=None for a fresh timestamped directory under "
                "./runs"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._channel_ids = list(channel_ids)
        self._lock = threading.Lock()
        write_json_atomic(self.run_dir / META, {**meta, "format_version": FORMAT_VERSION})
        self._timeline: IO[str] = (self.run_dir / TIMELINE).open("a", encoding="utf-8")
        self._timeline.write(",".join(timeline_columns(self._channel_ids)) + "\n")
        self._spans: IO[str] = (self.run_dir / SPANS).open("a", encoding="utf-8")
        self._events: IO[str] = (self.run_dir / EVENTS).open("a", encoding="utf-8")
        self._closed = False
        self.flush()

    def write_row(
        self,
        t_unix_s: float,
        t_mono_s: float,
        power_w: Mapping[str, float],
        energy_j: Mapping[str, float],
        gaps: Sequence[str] = (),
    ) -> None:
        """Append one timeline row (power in W, cumulative energy in J)."""
        cells = [f"{t_unix_s:.3f}", f"{t_mono_s:.3f}"]
        for cid in self._channel_ids:
            cells += [_fmt(power_w.get(cid, math.nan), 3), _fmt(energy_j.get(cid, math.nan), 3)]
        cells.append(";".join(sorted(gaps)))
        with self._lock:
            if not self._closed:
                self._timeline.write(",".join(cells) + "\n")

    def write_span(self, record: Mapping[str, Any]) -> None:
        self._write_line(self._spans, record)

    def write_event(self, record: Mapping[str, Any]) -> None:
        self._write_line(self._events, record)

    def _write_line(self, f: IO[str], record: Mapping[str, Any]) -> None:
        line = json.dumps(record, default=str, allow_nan=False) + "\n"
        with self._lock:
            if not self._closed:
                f.write(line)

    def flush(self) -> None:
        """Hand buffered lines to the OS (survives the process being killed)."""
        with self._lock:
            if not self._closed:
                for f in (self._timeline, self._spans, self._events):
                    f.flush()

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.run_dir / SUMMARY, summary)

    def close(self) -> None:
        """Flush, fsync and close. Idempotent."""
        with self._lock:
            if self._closed:
                return
            for f in (self._timeline, self._spans, self._events):
                f.flush()
                os.fsync(f.fileno())
                f.close()
            self._closed = True
