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
from greentrack.numbers import num, plural
from greentrack.rundir.checks import (
    FALL,
    MAX_CHANNEL_W,
    MAX_DEPTH,
    against_timeline,
    as_read,
    check_meta,
    check_root_part,
    clean_tags,
    depth,
    event_problem,
    fl_problem,
    iso,
    least_after,
    number,
    shown,
    span_line_problem,
    span_problem,
    start_utc_problem,
    summary_problem,
    timeline_keep,
)
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
        if isinstance(record, dict) and depth(record) <= MAX_DEPTH:
            out.append(record)
        else:
            bad += 1
    if bad and damage is not None:
        damage.append(f"{path.name}: {plural(bad, 'damaged line')} skipped")
    return out


def _check_version(path: Path, meta: Any) -> None:
    """One line naming the file, the problem and the fix for a ``meta.json`` that is not
    greentrack's, or that a newer greentrack wrote."""
    if not isinstance(meta, dict):
        raise RunFormatError(f"{path} holds a JSON {type(meta).__name__}, not an object: {FIX}")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RunFormatError(
            f"{path}: format_version is {shown(version)}, not an integer run format version: {FIX}"
        )
    if version > FORMAT_VERSION:
        raise RunFormatError(
            f"{path.parent} has run format version {version}; this greentrack reads up to "
            f"{FORMAT_VERSION}. Upgrade greentrack: update your clone (git pull) and install "
            "it again (pip install /path/to/greentrack)"
        )


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
    problem and the fix); damaged optional fields are left out."""
    return _read_meta(path)[0]


def _read_meta(path: Path) -> tuple[dict[str, Any], list[str]]:
    """:func:`read_meta`, with a note for each damaged field left out."""
    try:
        meta = loads(_read_text(path))
    except ValueError as e:
        raise RunFormatError(f"{path} is not valid JSON ({e}): {FIX}") from e
    _check_version(path, meta)
    meta, notes = check_meta(path, meta, FIX)
    problem = start_utc_problem(meta)
    if problem is not None:
        notes.append(f"{path.name}: start_utc {problem}: the start is read from start_unix_s")
        meta["start_utc"] = iso(float(meta["start_unix_s"]))
    return meta, notes


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


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, its links followed, lies inside ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def _failure(error: Any) -> str | None:
    """Why a client's message failed: ``"error"`` (an error reply), ``"no reply"``, or None."""
    if not error:
        return None
    return "error" if error is True else str(error)


class Run:
    """A run directory, loaded. Tables are built on first access.

    Every value is checked as it is read (:mod:`greentrack.rundir.checks`): a damaged line, row,
    record or optional field is skipped and said in :attr:`damage`; what the run cannot be
    read without is a :class:`RunFormatError` (one line: the file, the value, the fix).

    A job whose rank 0 of segment 0 left no ``meta.json`` loads from the first rank that ran
    (the lowest segment, then rank, under ``parts/``): its files are read from there, and
    :attr:`damage` says so.

    Attributes:
        path: the directory.
        meta: ``meta.json`` as a dict (damaged optional fields left out).
        damage: what the reader skipped or stood in for, one line each (the account's notes).
        summary_refused: whether a ``summary.json`` is there but is not used (damaged, or
            another run's; read :attr:`final` first): the run reads as incomplete.
    """

    def __init__(self, path: str | Path, *, within: Path | None = None) -> None:
        self.path = Path(path)
        self.damage: list[str] = []  # what the reader skipped, for the account's notes
        self._dir = self.path  # where this run's files are (see _lead)
        self._within = within  # a part: the job's directory, which its files may not leave
        self._timeline_rows = 0  # rows the timeline holds, usable or not
        self._timeline_problem: str | None = None  # what its first skipped row held
        self.summary_refused = False  # a summary.json that is there but cannot be used
        self._power_blanked = 0  # timeline power cells that are not a number
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
            if self._readable(META) is None:
                raise RunFormatError(
                    f"{meta_path} is a link to a file outside the run directory: not followed"
                )
            meta, notes = _read_meta(meta_path)
            if within is None:  # the run directory itself: rank 0 of segment 0 of its job
                check_root_part(meta, notes, META)
            self.damage += notes
        self.meta: dict[str, Any] = meta
        self.channels: list[dict[str, Any]] = list(self.meta.get("channels", []))

    def _readable(self, name: str) -> Path | None:
        """The path of this run's file ``name``; ``None`` (with a note) for a part's file that
        is a link to outside the job's directory: it is not followed."""
        path = self._dir / name
        if self._within is None or not (path.is_symlink() or path.exists()):
            return path
        if _inside(path, self._within):
            return path
        note = f"{name} is a link to a file outside the run directory: not followed"
        if note not in self.damage:
            self.damage.append(note)
        return None

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
            if not _inside(p / META, self.path):
                refused.append(f"{PARTS}/{p.name}: a link to outside the run directory")
                continue
            try:
                meta, notes = _read_meta(p / META)
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
            self.damage += notes
            self._within = self.path
            return p, meta
        if refused:
            raise RunFormatError(
                f"{self.path}: {META} is missing and no part can stand for the job ("
                + "; ".join(refused)
                + "). Pass the folder the run wrote (run_dir= in Python, --run-dir of "
                "greentrack run), or load a part itself"
            )
        return None

    @cached_property
    def final(self) -> dict[str, Any] | None:
        """``summary.json``, or ``None`` (the run reads as incomplete, from its timeline) when
        it is missing or damaged: unreadable, another run's, with totals that are not joules a
        run can hold, or that its own timeline contradicts."""
        path = self._readable(SUMMARY)
        if path is None or not path.exists():
            self.summary_refused = path is None
            return None
        try:
            final = loads(_read_text(path))
        except (ValueError, RunFormatError) as e:
            self.damage.append(f"{SUMMARY} is damaged ({e}); totals come from the timeline")
            self.summary_refused = True
            return None
        ids = [c["id"] for c in self.channels]
        problem = summary_problem(final, self.meta, ids)
        if problem is None:
            problem = against_timeline(final, self._last_readings())
        if problem is not None:
            self.damage.append(
                f"{SUMMARY} {problem}: not used; totals come from the timeline ({TIMELINE})"
            )
            self.summary_refused = True
            return None
        return dict(final)

    @property
    def complete(self) -> bool:
        """Whether the run stopped cleanly (a usable ``summary.json``)."""
        return self.final is not None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, complete={self.complete})"

    @cached_property
    def parts(self) -> list[Run]:
        """Runs measured by other processes of the same job (other ranks, resumed segments),
        stored under ``parts/``, by segment and rank; their energy is part of the job's.

        Only the job's own parts (greentrack.rundir.parts): a part of another job, one with
        a rank or segment that is not a valid place in the job, one in a folder not named
        after them, one that is a link to outside the run directory, or one that cannot be
        read is skipped, with a line in :attr:`damage` naming it and why; it is never added
        silently. A part's file that is a link to outside the run directory is not followed."""
        root = self.path / PARTS
        if not root.is_dir():
            return []
        job = job_of(self.meta)
        found = []
        for p in sorted(root.iterdir(), key=lambda p: name_order(p.name)):
            if p == self._dir or not p.is_dir():
                continue
            where = f"{PARTS}/{p.name}"
            if not _inside(p, self.path):
                self.damage.append(
                    f"{where} is a link to a folder outside the run directory: not followed, "
                    "its energy not counted"
                )
                continue
            if not (p / META).exists():
                self.damage.append(
                    f"{where} has no {META} (a rank that ended as it began, or a copy not "
                    "finished): skipped"
                )
                continue
            try:
                part = Run(p, within=self.path)
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
        _ = self._wide, self.final, self.events, self.spans, self.span_readings
        _ = self.fl_records
        self.totals_j()

    @property
    def segment(self) -> int:
        part = self.meta.get("part")
        segment = part.get("segment", 0) if isinstance(part, dict) else 0
        return segment if isinstance(segment, int) and not isinstance(segment, bool) else 0

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """``events.jsonl`` as a list of dicts (a forecast whose figures are not joules, or
        whose range does not hold its value, is skipped and counted in :attr:`damage`)."""
        path = self._readable(EVENTS)
        records = _jsonl(path, self.damage) if path is not None else []
        good = [r for r in records if event_problem(r) is None]
        if len(good) < len(records):
            first = next(event_problem(r) for r in records if event_problem(r) is not None)
            self.damage.append(
                f"{EVENTS}: {plural(len(records) - len(good), 'record')} with impossible values "
                f"skipped ({first})"
            )
        return good

    @property
    def parameters(self) -> int | None:
        """The model's parameter count an integration recorded (the last good ``model`` event
        of this directory or, where it has none, of its parts, in their order); ``None`` where
        none was recorded. A damaged record is skipped by :attr:`events` (a line in
        :attr:`damage`)."""
        for run in (self, *self.parts):
            counts = [r["parameters"] for r in run.events if r.get("event") == "model"]
            if counts:
                return int(counts[-1])
        return None

    @cached_property
    def _wide(self) -> pd.DataFrame:
        """The timeline as written, checked: rows that cannot be parsed (torn, damaged, or
        with the wrong number of cells) or hold impossible values (times outside the run's,
        energy that is not finite joules, that runs backwards or rises faster than any
        channel draws) are skipped and counted in :attr:`damage`; a power cell that is not
        0 to MAX_CHANNEL_W watts is left empty."""
        import io

        import numpy as np
        import pandas as pd

        path = self._readable(TIMELINE)
        columns = timeline_columns([c["id"] for c in self.channels])
        lines = _complete_lines(path) if path is not None else []
        first_line = 1
        if lines and lines[0].startswith("t_unix_s"):
            if lines[0].split(",") != columns:
                raise RunFormatError(
                    f"{path}: its header does not match the channels of {META}: the file does "
                    f"not belong to this run. {FIX}"
                )
            lines, first_line = lines[1:], 2
        elif lines:
            self.damage.append(f"{TIMELINE} has no header; read with the channels of {META}")
        elif path is not None and (path.exists() or (self._dir / SUMMARY).exists()):
            self.damage.append(f"{TIMELINE} is missing or empty: the run has no timeline")
        self._timeline_rows = len(lines)
        numbers = [i for i, ln in enumerate(lines) if ln.count(",") == len(columns) - 1]
        frame = pd.read_csv(
            io.StringIO("\n".join(lines[i] for i in numbers) + "\n"),
            header=None,
            names=columns,
            keep_default_na=False,
            dtype=str,
        )
        line_of = np.asarray(numbers, dtype=int) + first_line
        # a cell that is not empty (a missing value) and not a finite number is damage, and
        # so is a row without both its times
        unreadable = np.zeros(len(frame), dtype=bool)
        first: tuple[int, str] | None = None
        for col in columns[:-1]:
            raw = frame[col].to_numpy(dtype=object)
            cells = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            frame[col] = cells
            bad = ~np.isfinite(cells) & ((raw != "") | (col in ("t_unix_s", "t_mono_s")))
            if col.endswith("_power_w"):  # left empty (_checked_rows), the row kept
                self._power_blanked += int(bad.sum())
                continue
            if bad.any():
                i = int(np.argmax(bad))
                if first is None or line_of[i] < first[0]:
                    first = (int(line_of[i]), f"{col} = {shown(raw[i])}")
                unreadable |= bad
        frame["line"] = line_of
        valid = pd.Series(~unreadable, index=frame.index)
        dropped = len(lines) - int(valid.sum())
        if dropped:
            whole = set(numbers)
            torn = next((i for i in range(len(lines)) if i not in whole), None)
            if torn is not None and (first is None or torn + first_line < first[0]):
                cells_n = lines[torn].count(",") + 1
                first = (torn + first_line, f"{cells_n} cells, not {len(columns)}")
            where = f" (line {first[0]}: {first[1]})" if first else ""
            self.damage.append(f"{TIMELINE}: {plural(dropped, 'damaged row')} skipped{where}")
        frame = frame[valid].reset_index(drop=True)
        frame["gaps"] = frame["gaps"].fillna("").astype(str)
        checked: pd.DataFrame = self._checked_rows(frame).drop(columns="line")
        return checked

    def _checked_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The timeline's parsed rows without those holding impossible values (said in
        :attr:`damage`); power cells outside 0 to MAX_CHANNEL_W watts emptied."""
        import numpy as np

        ids = [c["id"] for c in self.channels]
        blanked = self._power_blanked
        for cid in ids:
            power = frame[f"{cid}_power_w"]
            bad = power.notna() & ~((power >= -1e-3) & (power <= MAX_CHANNEL_W))
            if bad.any():
                blanked += int(bad.sum())
                frame.loc[bad, f"{cid}_power_w"] = np.nan
        if blanked:
            self.damage.append(
                f"{TIMELINE}: {plural(blanked, 'power reading')} not from 0 to "
                f"{num(MAX_CHANNEL_W)} W "
                "left out (energy is read from the energy columns)"
            )
        energy = (
            np.column_stack([frame[f"{cid}_energy_j"].to_numpy(dtype=float) for cid in ids])
            if ids
            else np.zeros((len(frame), 0))
        )
        keep, first = timeline_keep(
            frame["t_unix_s"].to_numpy(dtype=float),
            frame["t_mono_s"].to_numpy(dtype=float),
            energy,
            frame["gaps"].to_numpy(dtype=object),
            ids,
            start_unix_s=float(self.meta["start_unix_s"]),
            may_fall=self._may_fall(),
            window_s=self._reanchor_s(),
        )
        if first is None:
            return frame
        self._timeline_problem = f"line {int(frame['line'].iloc[first[0]])}: {first[1]}"
        self.damage.append(
            f"{TIMELINE}: {plural(keep.count(False), 'row')} with impossible values skipped "
            f"({self._timeline_problem})"
        )
        kept: pd.DataFrame = frame[np.asarray(keep, dtype=bool)].reset_index(drop=True)
        return kept

    def _may_fall(self) -> list[bool]:
        """Per channel: whether its cumulative energy may fall a little between rows (a power
        integral re-anchored to an energy counter; a counter alone, or power alone, never
        falls)."""
        return [bool(c.get("energy_method")) and bool(c.get("power_method")) for c in self.channels]

    def _reanchor_s(self) -> float:
        """How long a channel's power integral runs before it is re-anchored to its counter:
        a counter interval and a row (the counter is read at the first row after each
        ``counter_interval_s``), from the run's sampling settings (else 5 s and 1 s), and 1 s
        more for the threads' timing."""
        sampling = self.meta.get("sampling")
        sampling = sampling if isinstance(sampling, dict) else {}
        counter, row = sampling.get("counter_interval_s", 5.0), sampling.get("row_interval_s", 1.0)
        counter = float(counter) if number(counter) and counter > 0 else 5.0
        row = float(row) if number(row) and row > 0 else 1.0
        return counter + row + 1.0

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

    def _last_readings(self) -> dict[str, tuple[float, float, float]]:
        """Per channel, its last reading in the timeline: ``(t_mono_s, energy_j, least_j)``,
        ``least_j`` the least a later total may be (:func:`least_after`)."""
        wide = self._wide
        out = {}
        window = self._reanchor_s()
        for ch, may_fall in zip(self.channels, self._may_fall(), strict=True):
            col = wide[f"{ch['id']}_energy_j"]
            ok = col.notna()
            if not ok.any():
                continue
            t = wide["t_mono_s"][ok].to_numpy(dtype=float)
            e = col[ok].to_numpy(dtype=float)
            earlier = e[t <= t[-1] - window]
            before = float(earlier[-1]) if len(earlier) else 0.0
            out[ch["id"]] = (
                float(t[-1]),
                float(e[-1]),
                least_after(float(e[-1]), before, may_fall),
            )
        return out

    def _last_energy_j(self) -> dict[str, float]:
        wide = self._wide
        if wide.empty:
            if self._timeline_rows and self.final is None:
                raise RunFormatError(
                    f"{self._dir / TIMELINE}: no row can be used ("
                    f"{self._timeline_problem or 'every row is damaged'}) and there is no "
                    f"usable {SUMMARY}: the run's energy cannot be read. {FIX}"
                )
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
    def _span_lines(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The ``begin`` and ``end`` lines of ``spans.jsonl`` by span id, checked (once: the
        spans and their edges' readings share them, and their damage is said once): a line that
        is not one greentrack writes, or a span that this run cannot hold (it ends before it
        begins, uses more energy than a channel draws or than the run's total), is skipped
        and counted in :attr:`damage`; tags that are not JSON scalars are left out."""
        ids = [c["id"] for c in self.channels]
        begins: dict[str, dict[str, Any]] = {}
        ends: dict[str, dict[str, Any]] = {}
        bad = 0
        first = ""
        damaged: set[str] = set()
        path = self._readable(SPANS)
        for rec in _jsonl(path, self.damage) if path is not None else []:
            sid, kind = rec.get("span_id"), rec.get("event")
            if not isinstance(sid, str) or kind not in ("begin", "end"):
                bad += 1
                continue
            problem = span_line_problem(rec, ids)
            if problem is not None:
                bad += 1
                first = first or f" (span {shown(sid)} {kind}: {problem})"
                damaged.add(sid)
                continue
            (begins if kind == "begin" else ends)[sid] = rec
        for sid in damaged:  # a span with a damaged line is left out whole (never "open")
            begins.pop(sid, None)
        if bad:
            self.damage.append(f"{SPANS}: {plural(bad, 'damaged line')} skipped{first}")
        tags_dropped = 0
        for sid, b in begins.items():
            tags, dropped = clean_tags(b.get("tags", {}))
            if dropped:
                begins[sid] = {**b, "tags": tags}
                tags_dropped += 1
        if tags_dropped:
            self.damage.append(
                f"{SPANS}: {plural(tags_dropped, 'span')} with tags that are not JSON scalars "
                "(left out)"
            )
        totals = self.totals_j() if self.final is not None else None
        skipped: list[str] = []
        for sid in list(begins):
            problem = span_problem(
                begins[sid], ends.get(sid), ids, totals, float(self.meta["start_unix_s"])
            )
            if problem is not None:
                skipped.append(f"span {sid} ({shown(begins[sid]['name'])}) {problem}")
                del begins[sid]
        if skipped:
            self.damage.append(
                f"{SPANS}: {plural(len(skipped), 'span')} with impossible values skipped "
                f"({skipped[0]})"
            )
        return begins, ends

    @cached_property
    def spans(self) -> pd.DataFrame:
        """One row per span: ``span_id``, ``parent_id``, ``name``, ``tags`` (dict), ``start``,
        ``end`` (UTC), ``duration_s``, ``status`` (``ok``, ``error``, ``unclosed``, or ``open``
        when the process died inside it), ``energy_j`` (all channels) and one
        ``energy_j.<channel>`` column per channel."""
        import pandas as pd

        begins, ends = self._span_lines
        last_unix, last_mono = self._last_row_time()
        last_energy = self._last_energy_j()
        rows = []
        for sid, b in begins.items():
            e = ends.get(sid)
            if e is not None:
                energy = e["energy_j"]
                end_unix = max(e["t_unix_s"], b["t_unix_s"])
                duration, status = e["duration_s"], e.get("status", "ok")
            else:
                energy = {
                    c: max(last_energy.get(c, 0.0) - (b["energy_j"].get(c) or 0.0), 0.0)
                    for c in last_energy
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
    def span_readings(self) -> pd.DataFrame:
        """The exact readings at the spans' edges: one row per edge, ``span_id``, ``edge``
        (``begin`` or ``end``), ``t_unix_s`` (the edge's time, as :attr:`spans` gives it) and
        ``<channel>_energy_j``, the cumulative energy since the start (NaN where the line has
        no reading), as the timeline names it.

        These are the ledger's own snapshots, taken when the span began and ended (what a
        live figure at that moment reads), finer than the timeline's rows: a ``begin`` line
        holds the reading, an ``end`` line the span's energy, so an end's reading is the two
        added. Only the spans :attr:`spans` keeps, and not the end of an ``open`` one (it was
        never read); an edge whose reading is more than a channel's final total is skipped and
        said in :attr:`damage`."""
        import pandas as pd

        ids = [c["id"] for c in self.channels]
        begins, ends = self._span_lines
        totals = self.totals_j() if self.final is not None else {}
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        for sid, b in begins.items():
            edges = [("begin", float(b["t_unix_s"]), dict(b["energy_j"]))]
            e = ends.get(sid)
            if e is not None:
                # the end line holds the span's energy: the reading is begin + energy
                at, used = b["energy_j"], e["energy_j"]
                after = {
                    c: None if at.get(c) is None or used.get(c) is None else at[c] + used[c]
                    for c in ids
                }
                edges.append(("end", max(float(e["t_unix_s"]), float(b["t_unix_s"])), after))
            for edge, t, reading in edges:
                over = next(
                    (
                        (c, reading[c], totals[c])
                        for c in ids
                        if reading.get(c) is not None
                        and math.isfinite(totals.get(c, math.nan))
                        and reading[c] > totals[c] * (1 + FALL) + 1.0
                    ),
                    None,
                )
                if over is not None:
                    skipped.append(
                        f"span {sid} ({shown(b['name'])}) {over[0]} at its {edge} "
                        f"{as_read(over[1])} J, more than the run's {as_read(over[2])} J"
                    )
                    continue
                row: dict[str, Any] = {"span_id": sid, "edge": edge, "t_unix_s": t}
                for c in ids:
                    v = reading.get(c)
                    row[f"{c}_energy_j"] = math.nan if v is None else float(v)
                rows.append(row)
        if skipped:
            self.damage.append(
                f"{SPANS}: {plural(len(skipped), 'span edge')} with impossible readings left "
                f"out of the energy curve ({skipped[0]})"
            )
        columns = ["span_id", "edge", "t_unix_s"] + [f"{c}_energy_j" for c in ids]
        frame: pd.DataFrame = pd.DataFrame(rows, columns=columns)
        return frame

    @cached_property
    def fl_records(self) -> list[dict[str, Any]]:
        """``fl.jsonl`` (Flower server runs): one dict per client reply; empty otherwise.
        Lines without a round number, or with values no reply can hold (negative or
        non-integer counts, energy that is not joules or more than a machine draws in the
        reply), are skipped (and counted in :attr:`damage`)."""
        path = self._readable(FL)
        rows = _jsonl(path, self.damage) if path is not None else []
        good = [r for r in rows if isinstance(r.get("round"), int)]
        if len(good) < len(rows):
            self.damage.append(
                f"{FL}: {plural(len(rows) - len(good), 'line')} without a round skipped"
            )
        run_s = self.duration_s
        checked = [r for r in good if fl_problem(r, run_s) is None]
        if len(checked) < len(good):
            first = next(p for r in good if (p := fl_problem(r, run_s)) is not None)
            self.damage.append(
                f"{FL}: {plural(len(good) - len(checked), 'line')} with impossible values "
                f"skipped ({first}); "
                + ("its reply is" if len(good) - len(checked) == 1 else "their replies are")
                + " not counted"
            )
        return checked

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
            energy = self.final["energy_j"]
            return {
                c["id"]: math.nan if energy[c["id"]] is None else float(energy[c["id"]])
                for c in self.channels
                if c["id"] in energy
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
