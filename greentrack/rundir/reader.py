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
)

if TYPE_CHECKING:
    import pandas as pd


def _complete_lines(path: Path) -> list[str]:
    """Lines of a file, without a torn last line (one not ending in a newline)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return [ln for ln in lines[:-1] if ln.strip()]  # lines[-1] is "" or a torn fragment


def _jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in _complete_lines(path):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write
    return out


class Run:
    """A run directory, loaded. Tables are built on first access.

    Attributes:
        path: the directory.
        meta: ``meta.json`` as a dict.
        complete: whether the run stopped cleanly (``summary.json`` exists).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.exists():
            hint = " (it does not exist)" if not self.path.exists() else ""
            raise RunFormatError(
                f"{self.path} is not a greentrack run directory{hint}: {META} is missing. "
                "Pass the directory given as run_dir / --run-dir."
            )
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise RunFormatError(f"{meta_path} is not valid JSON: {e}") from e
        version = self.meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RunFormatError(
                f"{self.path} has run format version {version!r}; this greentrack reads up to "
                f"{FORMAT_VERSION}. Upgrade greentrack: pip install -U greentrack"
            )
        summary_path = self.path / SUMMARY
        self.final: dict[str, Any] | None = (
            json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
        )
        self.complete = self.final is not None
        self.channels: list[dict[str, Any]] = list(self.meta.get("channels", []))

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, complete={self.complete})"

    @cached_property
    def parts(self) -> list[Run]:
        """Runs measured by other processes of the same logical run (other ranks, resumed
        segments), stored under ``parts/``; their energy is part of :meth:`summary`."""
        root = self.path / PARTS
        if not root.is_dir():
            return []
        return [Run(p) for p in sorted(root.iterdir()) if (p / META).exists()]

    @property
    def segment(self) -> int:
        return int(self.meta.get("part", {}).get("segment", 0))

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """``events.jsonl`` as a list of dicts."""
        return _jsonl(self.path / EVENTS)

    @cached_property
    def _wide(self) -> pd.DataFrame:
        import io

        import pandas as pd

        lines = _complete_lines(self.path / TIMELINE)
        if not lines:
            raise RunFormatError(f"{self.path / TIMELINE} is missing or has no header")
        frame = pd.read_csv(
            io.StringIO("\n".join(lines) + "\n"),
            keep_default_na=False,
            na_values={c: [""] for c in lines[0].split(",") if c != "gaps"},
        )
        frame["gaps"] = frame["gaps"].astype(str).replace("nan", "")
        return frame

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
        for rec in _jsonl(self.path / SPANS):
            (begins if rec.get("event") == "begin" else ends)[rec["span_id"]] = rec
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
        """``fl.jsonl`` (Flower server runs): one dict per client reply; empty otherwise."""
        return _jsonl(self.path / FL)

    @property
    def is_federated(self) -> bool:
        """Whether this is a Flower server run (it has ``fl.jsonl``)."""
        return (self.path / FL).exists()

    def totals_j(self) -> dict[str, float]:
        """Energy per channel in joules since the start: the final reading of a clean stop,
        else the last timeline row (a run that was killed)."""
        if self.final is not None:
            return {k: float(v) for k, v in self.final["energy_j"].items()}
        return self._last_energy_j()

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
