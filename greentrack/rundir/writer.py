"""The run directory: append-only, crash-safe, readable while the run is alive.

Files (names in :mod:`greentrack.rundir.format`, documented in docs/run-format.md):

* ``meta.json``      written at start (atomic rename): host, hardware, software, channels;
                     rewritten whole (atomic rename) as each field still being gathered at
                     start (``pending``: package versions, git state) arrives.
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

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

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
from greentrack.rundir.fs import REAL, FileSystem


def write_json_atomic(path: Path, data: Mapping[str, Any], fs: FileSystem = REAL) -> None:
    """Write JSON to ``path`` through a unique temporary file and a rename, so that a reader
    or a crash never sees half a file."""
    write_text_atomic(path, _json(data), fs)


def write_text_atomic(path: Path, text: str, fs: FileSystem = REAL) -> None:
    """Write ``text`` to ``path`` through a unique temporary file and a rename."""
    fs.replace_atomic(path, text)


def _meta_text(meta: Mapping[str, Any]) -> str:
    """``meta.json``'s text: ``meta`` with the format version."""
    return _json({**meta, "format_version": FORMAT_VERSION})


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def _fmt(value: float, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


@dataclass
class IoTrouble:
    """What could not be written: the first and last failure, how many records were lost."""

    error: str
    first_unix_s: float
    last_unix_s: float
    failures: int = 0
    records_lost: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "first_unix_s": self.first_unix_s,
            "last_unix_s": self.last_unix_s,
            "failures": self.failures,
            "records_lost": self.records_lost,
        }


class Writer(Protocol):
    """What the tracker and the sampler write through (a :class:`RunWriter`, or a
    :class:`NullWriter` when the directory could not be created)."""

    run_dir: Path
    trouble: IoTrouble | None

    def write_row(
        self,
        t_unix_s: float,
        t_mono_s: float,
        power_w: Mapping[str, float],
        energy_j: Mapping[str, float],
        gaps: Sequence[str] = (),
    ) -> None: ...

    def write_span(self, record: Mapping[str, Any]) -> None: ...

    def write_event(self, record: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def write_summary(self, summary: Mapping[str, Any]) -> bool: ...

    def rewrite_meta(self, meta: Mapping[str, Any]) -> bool: ...

    def close(self) -> None: ...


class RunWriter:
    """Appends a run's records to its directory. Thread-safe.

    Once the directory is claimed, nothing here raises: a write, flush or sync that fails
    (a full disk, a read-only or vanished file system) drops the records it could not write,
    counts them in :attr:`trouble`, warns once through ``on_trouble`` and keeps trying, so the
    run it records goes on; memory stays bounded (nothing is queued).

    Raises (from the constructor only):
        RunExistsError: ``run_dir`` already holds a run (greentrack never overwrites one).
        OSError: the directory or its ``meta.json`` cannot be created.
    """

    def __init__(
        self,
        run_dir: Path,
        meta: Mapping[str, Any],
        channel_ids: Sequence[str],
        *,
        fs: FileSystem = REAL,
        on_trouble: Callable[[IoTrouble], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.fs = fs
        self._on_trouble = on_trouble
        self._clock = clock
        self.trouble: IoTrouble | None = None
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise NotADirectoryError(
                f"{self.run_dir} is a file, not a directory: pass a run directory to create"
            )
        fs.mkdir(self.run_dir)
        try:
            fs.create_exclusive(self.run_dir / META, _meta_text(meta))
        except FileExistsError:
            raise RunExistsError(
                f"{self.run_dir} already holds a run ({META} exists); greentrack never overwrites "
                "one. Pass a new run directory (run_dir=... / --run-dir), or none for a fresh "
                "timestamped one under ./runs"
            ) from None
        self._channel_ids = list(channel_ids)
        self._lock = threading.Lock()
        self._files: dict[str, IO[str] | None] = {}
        for name in (TIMELINE, SPANS, EVENTS):
            try:
                self._files[name] = fs.open_append(self.run_dir / name)
            except OSError as e:
                self._files[name] = None
                self._fail(e, 1)
        self._closed = False
        self._append(TIMELINE, ",".join(timeline_columns(self._channel_ids)) + "\n")
        self.flush()

    # --- trouble -------------------------------------------------------------------------

    def _fail(self, error: BaseException, records: int) -> None:
        now = self._clock()
        first = self.trouble is None
        if self.trouble is None:
            self.trouble = IoTrouble(f"{type(error).__name__}: {error}", now, now)
        self.trouble.last_unix_s = now
        self.trouble.failures += 1
        self.trouble.records_lost += records
        if first and self._on_trouble is not None:
            # the callback must not turn a write failure into a crash
            with contextlib.suppress(Exception):
                self._on_trouble(self.trouble)

    def _append(self, name: str, text: str) -> None:
        f = self._files.get(name)
        if f is None:
            self._fail(OSError(f"{name} is not open"), 1)
            return
        try:
            self.fs.write(f, text)
        except Exception as e:  # a full disk, EIO, a closed file: lose this record, go on
            self._fail(e, 1)

    # --- records -------------------------------------------------------------------------

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
                self._append(TIMELINE, ",".join(cells) + "\n")

    def write_span(self, record: Mapping[str, Any]) -> None:
        self._write_line(SPANS, record)

    def write_event(self, record: Mapping[str, Any]) -> None:
        self._write_line(EVENTS, record)

    def _write_line(self, name: str, record: Mapping[str, Any]) -> None:
        try:
            line = json.dumps(record, default=str, allow_nan=False) + "\n"
        except ValueError:  # NaN or inf: write them as null rather than lose the record
            line = json.dumps(_finite(record), default=str) + "\n"
        with self._lock:
            if not self._closed:
                self._append(name, line)

    def flush(self) -> None:
        """Hand buffered lines to the OS (survives the process being killed)."""
        with self._lock:
            if self._closed:
                return
            for f in self._files.values():
                if f is None:
                    continue
                try:
                    self.fs.flush(f)
                except Exception as e:
                    self._fail(e, 0)

    def rewrite_meta(self, meta: Mapping[str, Any]) -> bool:
        """Replace ``meta.json`` whole (atomically: a reader sees the old or the new one) with
        ``meta`` completed (fields still being gathered at start); ``False`` when it could not
        be written (the first one stays)."""
        try:
            self.fs.replace_atomic(self.run_dir / META, _meta_text(meta))
        except Exception as e:
            with self._lock:
                self._fail(e, 1)
            return False
        return True

    def write_summary(self, summary: Mapping[str, Any]) -> bool:
        """Write ``summary.json`` (atomically); ``False`` when it could not be written."""
        data = dict(summary)
        if self.trouble is not None:
            data["io_trouble"] = self.trouble.to_dict()
        try:
            self.fs.replace_atomic(self.run_dir / SUMMARY, _json(_finite(data)))
        except Exception as e:
            self._fail(e, 1)
            return False
        return True

    def close(self) -> None:
        """Flush, fsync and close. Idempotent; never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for f in self._files.values():
                if f is None:
                    continue
                for op in (self.fs.flush, self.fs.fsync):
                    try:
                        op(f)
                    except Exception as e:
                        self._fail(e, 0)
                try:
                    self.fs.close(f)
                except Exception as e:
                    self._fail(e, 0)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class NullWriter:
    """Stands in for a :class:`RunWriter` whose directory could not be created: records
    nothing, so that the run it would have recorded goes on."""

    trouble: IoTrouble | None = None

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def write_row(self, *args: Any, **kwargs: Any) -> None:
        pass

    def write_span(self, record: Mapping[str, Any]) -> None:
        pass

    def write_event(self, record: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def write_summary(self, summary: Mapping[str, Any]) -> bool:
        return False

    def rewrite_meta(self, meta: Mapping[str, Any]) -> bool:
        return False

    def close(self) -> None:
        pass
