"""Reading a run directory back: ``greentrack.load_run(path)``.

Works on finished runs and on runs that died (SIGKILL, power loss): a torn last line is
dropped, spans that never ended are closed at the last timeline row and marked ``open``, and
totals come from the last row when ``summary.json`` is missing. pandas is imported here, not
at ``import greentrack``.

The reader knows files, not figures: it knows no carbon, no account and no report. What a run
used, with CO2e and ranges, is computed once by :mod:`greentrack.account`.
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.errors import RunFormatError
from greentrack.rundir.format import (
    EVENTS,
    FL,
    FORMAT_VERSION,
    META,
    PARTS,
    SPANS,
    SUMMARY,
    TIMELINE,
    timeline_columns,
)
from greentrack.rundir.parts import job_of, name_order, part_problem

if TYPE_CHECKING:
    import pandas as pd


COMPONENTS = ("gpu", "cpu", "dram")
SOURCES = ("measured", "estimated")
FIX = (
    "it was damaged or edited: restore it from a copy, or re-run; greentrack reads the run "
    "directories it writes"
)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RunFormatError(f"{path} is not UTF-8 text ({e.reason}): {FIX}") from e
    except OSError as e:
        raise RunFormatError(f"cannot read {path}: {e.strerror or e}") from e


def _complete_lines(path: Path) -> list[str]:
    """Lines of a file, without a torn last line (one not ending in a newline)."""
    if not path.exists():
        return []
    lines = _read_text(path).split("\n")
    return [ln for ln in lines[:-1] if ln.strip()]  # lines[-1] is "" or a torn fragment


def loads(text: str) -> Any:
    """``json.loads`` for text read back from a run directory: JSON nested past Python's
    recursion limit is a ``ValueError`` (damage, named where it is read), never a
    ``RecursionError`` into the caller."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deep to be a greentrack record") from None


def _jsonl(path: Path, damage: list[str] | None = None) -> list[dict[str, Any]]:
    """JSON objects, one per line; torn or damaged lines are skipped (and counted)."""
    out = []
    bad = 0
    for line in _complete_lines(path):
        try:
            record = loads(line)
        except ValueError:
            bad += 1  # a line torn by a crash mid-write, or damaged
            continue
        if isinstance(record, dict):
            out.append(record)
        else:
            bad += 1
    if bad and damage is not None:
        damage.append(f"{path.name}: {bad} damaged line(s) skipped")
    return out


def _check_meta(path: Path, meta: Any) -> None:
    """One line naming the file, the problem and the fix for a ``meta.json`` that is not
    greentrack's."""
    if not isinstance(meta, dict):
        raise RunFormatError(f"{path} holds a JSON {type(meta).__name__}, not an object: {FIX}")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise RunFormatError(
            f"{path}: format_version is {version!r}, not an integer run format version: {FIX}"
        )
    if version > FORMAT_VERSION:
        raise RunFormatError(
            f"{path.parent} has run format version {version}; this greentrack reads up to "
            f"{FORMAT_VERSION}. Upgrade greentrack: pip install -U greentrack"
        )
    for key, kind in (("run_id", str), ("start_utc", str), ("start_unix_s", (int, float))):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise RunFormatError(f"{path}: {key!r} is missing or not valid: {FIX}")
    channels = meta.get("channels", [])
    if not isinstance(channels, list):
        raise RunFormatError(f"{path}: 'channels' is not a list: {FIX}")
    for i, ch in enumerate(channels):
        if not isinstance(ch, dict) or not isinstance(ch.get("id"), str):
            raise RunFormatError(f"{path}: channel {i} has no 'id': {FIX}")
        if ch.get("component") not in COMPONENTS or ch.get("source") not in SOURCES:
            raise RunFormatError(
                f"{path}: channel {ch['id']!r} has component {ch.get('component')!r} and source "
                f"{ch.get('source')!r} (expected one of {COMPONENTS} and {SOURCES}): {FIX}"
            )


def _number(value: Any) -> bool:
    """A finite number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _joules(value: Any) -> bool:
    """A channel total a run can hold: a finite number of joules, not negative."""
    return _number(value) and value >= 0


def peek_meta(path: Path) -> dict[str, Any] | None:
    """A ``meta.json`` glanced at before a run claims its directory: ``None`` when there is
    none, ``{}`` when it is there but cannot be read (it still marks a used directory), else
    its mapping unchecked. Never raises (the writers' doors call it)."""
    if not path.exists() and not path.parent.is_dir():
        return None
    try:
        meta = loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def read_meta(path: Path) -> dict[str, Any]:
    """A run's ``meta.json``, checked (:class:`RunFormatError`: one line naming the file, the
    problem and the fix)."""
    try:
        meta = loads(_read_text(path))
    except ValueError as e:
        raise RunFormatError(f"{path} is not valid JSON ({e}): {FIX}") from e
    _check_meta(path, meta)
    return dict(meta)


FL_MESSAGE_COLUMNS: dict[str, tuple[str, str]] = {
    # column: (fl.jsonl key, pandas dtype)
    "round": ("round", "Int64"),
    "phase": ("phase", "string"),
    "node_id": ("node_id", "UInt64"),
    "download_bytes": ("download_bytes", "Int64"),
    "upload_bytes": ("upload_bytes", "Int64"),
    "failed": ("error", "bool"),
    "failure": ("error", "string"),
    "num_examples": ("num_examples", "Int64"),
    "client_measured_j": ("client_measured_j", "float64"),
    "client_estimated_j": ("client_estimated_j", "float64"),
    "client_basis": ("client_basis", "string"),
    "client_methods": ("client_methods", "string"),
    "client_duration_s": ("client_duration_s", "float64"),
    "client_measured_raw_j": ("client_measured_raw_j", "float64"),
    "attribution": ("attribution", "string"),
    "client_host": ("client_host", "string"),
    "client_pid": ("client_pid", "Int64"),
}
"""The columns of :attr:`Run.fl_messages`: name -> (``fl.jsonl`` key, pandas dtype)."""


def _failure(error: Any) -> str | None:
    """Why a client's message failed: ``"error"`` (an error reply), ``"no reply"``, or None."""
    if not error:
        return None
    return "error" if error is True else str(error)


class Run:
    """A run directory, loaded. Tables are built on first access.

    A job whose rank 0 of segment 0 left no ``meta.json`` loads from the first rank that ran
    (the lowest segment, then rank, under ``parts/``): its files are read from there, and
    :attr:`damage` says so.

    Attributes:
        path: the directory.
        meta: ``meta.json`` as a dict.
        complete: whether the run stopped cleanly (``summary.json`` exists).
        damage: what the reader skipped or stood in for, one line each (the account's notes).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.damage: list[str] = []  # what the reader skipped, for the account's notes
        self._dir = self.path  # where this run's files are (see _lead)
        meta_path = self.path / META
        if not meta_path.exists():
            lead = self._lead()
            if lead is None:
                hint = " (it does not exist)" if not self.path.exists() else ""
                raise RunFormatError(
                    f"{self.path} is not a greentrack run directory{hint}: {META} is missing. "
                    "Pass the folder the run wrote (run_dir= in Python, --run-dir of "
                    "greentrack run)."
                )
            self._dir, meta = lead
        elif not self.path.is_dir():
            raise RunFormatError(f"{self.path} is a file, not a run directory")
        else:
            meta = read_meta(meta_path)
        self.meta: dict[str, Any] = meta
        self.final: dict[str, Any] | None = self._read_summary()
        self.complete = self.final is not None
        self.channels: list[dict[str, Any]] = list(self.meta.get("channels", []))

    def _lead(self) -> tuple[Path, dict[str, Any]] | None:
        """For a job whose root (rank 0 of segment 0) left no ``meta.json``: the first part
        that ran (lowest segment, then rank) and its ``meta.json``; ``None`` without parts.
        Raises :class:`RunFormatError` when there are parts but none can lead."""
        root = self.path / PARTS
        if not root.is_dir():
            return None
        refused = []
        for p in sorted(root.iterdir(), key=lambda p: name_order(p.name)):
            if not (p / META).is_file():
                continue
            try:
                meta = read_meta(p / META)
            except RunFormatError as e:
                refused.append(f"{PARTS}/{p.name}: {e}")
                continue
            problem = part_problem(meta, p.name, None)
            if problem is not None:
                refused.append(f"{PARTS}/{p.name}: {problem}")
                continue
            self.damage.append(
                f"{META} is missing: rank 0 of segment 0 left no run directory here; the job "
                f"is read from the ranks that ran ({PARTS}/{p.name} first)"
            )
            return p, meta
        if refused:
            raise RunFormatError(
                f"{self.path}: {META} is missing and no part can stand for the job ("
                + "; ".join(refused)
                + "). Pass the folder the run wrote (run_dir= in Python, --run-dir of "
                "greentrack run), or load a part itself"
            )
        return None

    def _read_summary(self) -> dict[str, Any] | None:
        """``summary.json``, or ``None`` (the run reads as incomplete, from its timeline) when
        it is missing or damaged."""
        path = self._dir / SUMMARY
        if not path.exists():
            return None
        try:
            final = loads(_read_text(path))
        except (ValueError, RunFormatError) as e:
            self.damage.append(f"{SUMMARY} is damaged ({e}); totals come from the timeline")
            return None
        energy = final.get("energy_j") if isinstance(final, dict) else None
        ok = (
            isinstance(energy, dict)
            and all(v is None or _joules(v) for v in energy.values())
            and _number(final.get("end_unix_s"))
            and _number(final.get("duration_s"))
            and final["duration_s"] >= 0
        )
        if not ok:
            self.damage.append(
                f"{SUMMARY} lacks its totals (energy_j, end_unix_s, duration_s: finite numbers, "
                "energy and duration not negative); totals come from the timeline"
            )
            return None
        return dict(final)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, complete={self.complete})"

    @cached_property
    def parts(self) -> list[Run]:
        """Runs measured by other processes of the same job (other ranks, resumed segments),
        stored under ``parts/``, by segment and rank; their energy is part of the job's.

        Only the job's own parts (greentrack.rundir.parts): a part of another job, one with
        a rank or segment that is not a valid place in the job, one in a folder not named
        after them, or one that cannot be read is skipped, with a line in :attr:`damage`
        naming it and why; it is never added silently."""
        root = self.path / PARTS
        if not root.is_dir():
            return []
        job = job_of(self.meta)
        found = []
        for p in sorted(root.iterdir(), key=lambda p: name_order(p.name)):
            if p == self._dir or not p.is_dir():
                continue
            where = f"{PARTS}/{p.name}"
            if not (p / META).exists():
                self.damage.append(
                    f"{where} has no {META} (a rank that ended as it began, or a copy not "
                    "finished): skipped"
                )
                continue
            try:
                part = Run(p)
                part._read_all()
            except (ValueError, TypeError, KeyError) as e:  # RunFormatError is a ValueError
                self.damage.append(f"{where} skipped, its energy not counted: {e}")
                continue
            problem = part_problem(part.meta, p.name, job)
            if problem is not None:
                self.damage.append(
                    f"{where} skipped, its energy not counted: {problem} (a part of another "
                    "job, or a damaged one: move it out of this run directory)"
                )
                continue
            found.append(part)
        return found

    def _read_all(self) -> None:
        """Read every file now, so that a damaged part is found while parts are chosen."""
        _ = self._wide, self.events, self.spans, self.fl_records

    @property
    def segment(self) -> int:
        part = self.meta.get("part")
        segment = part.get("segment", 0) if isinstance(part, dict) else 0
        return segment if isinstance(segment, int) and not isinstance(segment, bool) else 0

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """``events.jsonl`` as a list of dicts."""
        return _jsonl(self._dir / EVENTS, self.damage)

    @cached_property
    def _wide(self) -> pd.DataFrame:
        """The timeline as written: rows that cannot be parsed (torn, damaged, or with the
        wrong number of cells) are skipped and counted in :attr:`damage`."""
        import io

        import pandas as pd

        path = self._dir / TIMELINE
        columns = timeline_columns([c["id"] for c in self.channels])
        lines = _complete_lines(path)
        if lines and lines[0].startswith("t_unix_s"):
            if lines[0].split(",") != columns:
                raise RunFormatError(
                    f"{path}: its header does not match the channels of {META}: the file does "
                    f"not belong to this run. {FIX}"
                )
            lines = lines[1:]
        elif lines:
            self.damage.append(f"{TIMELINE} has no header; read with the channels of {META}")
        elif path.exists() or self.complete:
            self.damage.append(f"{TIMELINE} is missing or empty: the run has no timeline")
        good = [ln for ln in lines if ln.count(",") == len(columns) - 1]
        frame = pd.read_csv(
            io.StringIO("\n".join(good) + "\n"),
            header=None,
            names=columns,
            keep_default_na=False,
            dtype=str,
        )
        for col in columns[:-1]:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
        valid = frame["t_unix_s"].notna() & frame["t_mono_s"].notna()
        dropped = len(lines) - int(valid.sum())
        if dropped:
            self.damage.append(f"{TIMELINE}: {dropped} damaged row(s) skipped")
        frame = frame[valid].reset_index(drop=True)
        frame["gaps"] = frame["gaps"].fillna("").astype(str)
        return frame  # type: ignore[no-any-return]

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """One row per timeline row and channel: ``time`` (UTC), ``t_mono_s``, ``channel``,
        ``component``, ``source``, ``power_w`` (mean over the row), ``energy_j`` (cumulative
        since the start), ``gap`` (the channel's meter failed in this row)."""
        import pandas as pd

        wide = self._wide
        parts = []
        for ch in self.channels:
            cid = ch["id"]
            parts.append(
                pd.DataFrame(
                    {
                        "time": pd.to_datetime(wide["t_unix_s"], unit="s", utc=True),
                        "t_mono_s": wide["t_mono_s"],
                        "channel": cid,
                        "component": ch["component"],
                        "source": ch["source"],
                        "power_w": wide[f"{cid}_power_w"],
                        "energy_j": wide[f"{cid}_energy_j"],
                        "gap": wide["gaps"].map(lambda g, c=cid: c in str(g).split(";")),
                    }
                )
            )
        if not parts:
            return pd.DataFrame(  # type: ignore[no-any-return]
                columns=[
                    "time",
                    "t_mono_s",
                    "channel",
                    "component",
                    "source",
                    "power_w",
                    "energy_j",
                    "gap",
                ]
            )
        return pd.concat(parts, ignore_index=True)  # type: ignore[no-any-return]

    def _last_energy_j(self) -> dict[str, float]:
        wide = self._wide
        if wide.empty:
            return {}
        out = {}
        for ch in self.channels:
            col = wide[f"{ch['id']}_energy_j"].dropna()
            out[ch["id"]] = float(col.iloc[-1]) if len(col) else 0.0
        return out

    def _last_row_time(self) -> tuple[float, float]:
        wide = self._wide
        if wide.empty:
            return self.meta["start_unix_s"], 0.0
        return float(wide["t_unix_s"].iloc[-1]), float(wide["t_mono_s"].iloc[-1])

    @cached_property
    def spans(self) -> pd.DataFrame:
        """One row per span: ``span_id``, ``parent_id``, ``name``, ``tags`` (dict), ``start``,
        ``end`` (UTC), ``duration_s``, ``status`` (``ok``, ``error``, ``unclosed``, or ``open``
        when the process died inside it), ``energy_j`` (all channels) and one
        ``energy_j.<channel>`` column per channel."""
        import pandas as pd

        begins: dict[str, dict[str, Any]] = {}
        ends: dict[str, dict[str, Any]] = {}
        bad = 0
        for rec in _jsonl(self._dir / SPANS, self.damage):
            sid, kind = rec.get("span_id"), rec.get("event")
            if not isinstance(sid, str) or kind not in ("begin", "end"):
                bad += 1
                continue
            if kind == "begin" and not (
                isinstance(rec.get("name"), str)
                and isinstance(rec.get("t_unix_s"), int | float)
                and isinstance(rec.get("t_mono_s"), int | float)
                and isinstance(rec.get("energy_j"), dict)
            ):
                bad += 1
                continue
            if kind == "end" and not (
                isinstance(rec.get("t_unix_s"), int | float)
                and isinstance(rec.get("duration_s"), int | float)
                and isinstance(rec.get("energy_j"), dict)
            ):
                bad += 1
                continue
            (begins if kind == "begin" else ends)[sid] = rec
        if bad:
            self.damage.append(f"{SPANS}: {bad} damaged line(s) skipped")
        last_unix, last_mono = self._last_row_time()
        last_energy = self._last_energy_j()
        rows = []
        for sid, b in begins.items():
            e = ends.get(sid)
            if e is not None:
                energy = e["energy_j"]
                end_unix, duration, status = e["t_unix_s"], e["duration_s"], e.get("status", "ok")
            else:
                energy = {
                    c: last_energy.get(c, 0.0) - b["energy_j"].get(c, 0.0) for c in last_energy
                }
                end_unix, status = max(last_unix, b["t_unix_s"]), "open"
                duration = max(0.0, last_mono - b["t_mono_s"])
            row = {
                "span_id": sid,
                "parent_id": b.get("parent_id"),
                "name": b["name"],
                "tags": b.get("tags", {}),
                "start_unix_s": b["t_unix_s"],
                "end_unix_s": end_unix,
                "duration_s": duration,
                "status": status,
                "energy_j": float(sum(v for v in energy.values() if v is not None)),
            }
            for cid, v in energy.items():
                row[f"energy_j.{cid}"] = v
            rows.append(row)
        frame = pd.DataFrame(
            rows,
            columns=None
            if rows
            else [
                "span_id",
                "parent_id",
                "name",
                "tags",
                "start_unix_s",
                "end_unix_s",
                "duration_s",
                "status",
                "energy_j",
            ],
        )
        frame["start"] = pd.to_datetime(frame["start_unix_s"], unit="s", utc=True)
        frame["end"] = pd.to_datetime(frame["end_unix_s"], unit="s", utc=True)
        return frame  # type: ignore[no-any-return]

    @cached_property
    def fl_records(self) -> list[dict[str, Any]]:
        """``fl.jsonl`` (Flower server runs): one dict per client reply; empty otherwise.
        Lines without a round number are skipped (and counted in :attr:`damage`)."""
        rows = _jsonl(self._dir / FL, self.damage)
        good = [r for r in rows if isinstance(r.get("round"), int)]
        if len(good) < len(rows):
            self.damage.append(f"{FL}: {len(rows) - len(good)} line(s) without a round skipped")
        return good

    @cached_property
    def fl_messages(self) -> pd.DataFrame:
        """``fl.jsonl`` as a table: one row per client and phase of a round (a Flower server
        run), with typed columns (nullable where a reply did not say); empty, with the same
        columns, for any other run. See :data:`FL_MESSAGE_COLUMNS` and docs/flower.md."""
        import pandas as pd

        records = self.fl_records
        data: dict[str, Any] = {}
        for name, (key, dtype) in FL_MESSAGE_COLUMNS.items():
            if name == "failed":
                values: list[Any] = [bool(r.get("error")) for r in records]
            elif name == "failure":
                values = [_failure(r.get("error")) for r in records]
            else:
                values = [r.get(key) for r in records]
            if dtype in ("Int64", "UInt64", "float64"):
                series = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
                data[name] = series.astype(dtype)
            else:
                data[name] = pd.Series(
                    [None if v is None else v if isinstance(v, bool) else str(v) for v in values],
                    dtype=dtype,
                )
        frame: pd.DataFrame = pd.DataFrame(data)
        return frame

    @property
    def is_federated(self) -> bool:
        """Whether this is a Flower server run (it has ``fl.jsonl``)."""
        return (self._dir / FL).exists()

    def totals_j(self) -> dict[str, float]:
        """Energy per channel in joules since the start: the final reading of a clean stop,
        else the last timeline row (a run that was killed). A channel without a reading is
        NaN (the account counts it as 0, with a note)."""
        if self.final is not None:
            return {
                k: math.nan if v is None else float(v) for k, v in self.final["energy_j"].items()
            }
        return self._last_energy_j()

    @property
    def start_unix_s(self) -> float:
        """When the run started (UTC seconds)."""
        return float(self.meta["start_unix_s"])

    @property
    def end_unix_s(self) -> float:
        """When the run stopped (clean stop), else its last timeline row."""
        if self.final is not None:
            return float(self.final["end_unix_s"])
        return self._last_row_time()[0]

    @property
    def duration_s(self) -> float:
        """Seconds from start to stop (or to the last timeline row)."""
        if self.final is not None:
            return float(self.final["duration_s"])
        return self._last_row_time()[1]

    @property
    def status(self) -> str:
        """``finished``, ``failed: ...``, ``incomplete`` (killed) and the like."""
        if self.final is not None:
            return str(self.final.get("status", "finished"))
        return "incomplete"


def load_run(path: str | Path) -> Run:
    """Load a run directory written by :func:`greentrack.track` or ``greentrack run``.

    Raises:
        RunFormatError: not a run directory, or written by a newer greentrack.
    """
    return Run(path)
