"""Reading a run directory back: ``greentrack.load_run(path)``.

Works on finished runs and on runs that died (SIGKILL, power loss): a torn last line is
dropped, spans that never ended are closed at the last timeline row and marked ``open``, and
totals come from the last row when ``summary.json`` is missing. pandas is imported here, not
at ``import greentrack``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.errors import RunFormatError
from greentrack.meters.base import split_by_source
from greentrack.store import EVENTS, FORMAT_VERSION, META, SPANS, SUMMARY, TIMELINE

if TYPE_CHECKING:
    import pandas as pd

J_PER_KWH = 3.6e6


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


@dataclass(frozen=True, slots=True)
class ComponentEnergy:
    """Energy of one channel over the run, in joules (``energy_kwh`` converts)."""

    channel: str
    component: str
    name: str
    source: str
    method: str
    energy_j: float

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH


@dataclass(frozen=True, slots=True)
class SpanEnergy:
    """A span in a summary (energy summed over channels, split by source)."""

    span_id: str
    parent_id: str | None
    name: str
    tags: Mapping[str, Any]
    duration_s: float
    measured_energy_j: float
    estimated_energy_j: float
    status: str
    depth: int


@dataclass(frozen=True)
class RunSummary:
    """What a run used: per component, per span, with measured and estimated kept apart."""

    run_id: str
    name: str | None
    project: str | None
    status: str
    complete: bool
    start_utc: str
    duration_s: float
    components: tuple[ComponentEnergy, ...]
    not_counted: tuple[tuple[str, str], ...]
    spans: tuple[SpanEnergy, ...] = ()
    notes: tuple[str, ...] = field(default=())
    carbon: Mapping[str, Any] | None = None
    federated: Mapping[str, Any] | None = None

    @property
    def measured_energy_j(self) -> float:
        return sum(c.energy_j for c in self.components if c.source == "measured")

    @property
    def estimated_energy_j(self) -> float:
        return sum(c.energy_j for c in self.components if c.source == "estimated")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "project": self.project,
            "status": self.status,
            "complete": self.complete,
            "start_utc": self.start_utc,
            "duration_s": self.duration_s,
            "measured_energy_j": self.measured_energy_j,
            "estimated_energy_j": self.estimated_energy_j,
            "components": [
                {
                    "channel": c.channel,
                    "component": c.component,
                    "name": c.name,
                    "source": c.source,
                    "method": c.method,
                    "energy_j": c.energy_j,
                    "energy_kwh": c.energy_kwh,
                }
                for c in self.components
            ],
            "not_counted": [{"component": c, "reason": r} for c, r in self.not_counted],
            "spans": [
                {
                    "span_id": s.span_id,
                    "parent_id": s.parent_id,
                    "name": s.name,
                    "tags": dict(s.tags),
                    "duration_s": s.duration_s,
                    "measured_energy_j": s.measured_energy_j,
                    "estimated_energy_j": s.estimated_energy_j,
                    "status": s.status,
                }
                for s in self.spans
            ],
            "notes": list(self.notes),
            "carbon": dict(self.carbon) if self.carbon else None,
            "federated": dict(self.federated) if self.federated else None,
        }

    def __str__(self) -> str:
        from greentrack.summary_text import format_summary

        return format_summary(self)


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
        root = self.path / "parts"
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

    def summary(self, energy_j: Mapping[str, float] | None = None) -> RunSummary:
        """Totals per component and per span. ``energy_j`` overrides the totals (the live
        tracker passes a fresh reading)."""
        notes: list[str] = []
        if energy_j is not None:
            totals, status = dict(energy_j), "running"
            duration = self._last_row_time()[1]
        elif self.final is not None:
            totals, status = self.final["energy_j"], self.final.get("status", "finished")
            duration = float(self.final["duration_s"])
        else:
            totals, status = self._last_energy_j(), "incomplete"
            last_unix, duration = self._last_row_time()
            from greentrack.metadata import utc_iso

            notes.append(
                "the process ended without stopping the tracker (killed or crashed): totals "
                f"are those of the last timeline row, at {utc_iso(last_unix)}"
            )
        gaps = [e for e in self.events if e.get("event") == "meter_error"]
        if gaps:
            notes.append(
                f"{len(gaps)} meter read(s) failed; affected rows are flagged in the timeline"
            )
        components = tuple(
            ComponentEnergy(
                ch["id"],
                ch["component"],
                ch["name"],
                ch["source"],
                ch["method"],
                float(totals.get(ch["id"], math.nan)),
            )
            for ch in self.channels
        )
        not_counted = tuple(
            (b["component"], b["detail"])
            for b in self.meta.get("boundary", [])
            if b["status"] == "not counted"
        )
        components, duration, part_notes = self._with_parts(components, duration)
        notes += part_notes
        return RunSummary(
            carbon=self._carbon(components),
            federated=self._federated(),
            run_id=self.meta["run_id"],
            name=self.meta.get("name"),
            project=self.meta.get("project"),
            status=status,
            complete=self.complete,
            start_utc=self.meta["start_utc"],
            duration_s=duration,
            components=components,
            not_counted=not_counted,
            spans=self._span_energies(),
            notes=tuple(notes),
        )

    def _with_parts(
        self, own: tuple[ComponentEnergy, ...], duration: float
    ) -> tuple[tuple[ComponentEnergy, ...], float, list[str]]:
        """Add the parts' channels (ids prefixed by the part's name) and their time: ranks of
        one segment overlap, so a segment lasts as long as its longest rank; segments add."""
        if not self.parts:
            return own, duration, []
        components = list(own)
        by_segment: dict[int, float] = {self.segment: duration}
        bounds: dict[int, tuple[float, float]] = {}
        notes = []
        for part in [self, *self.parts]:
            if part is not self:
                summary = part.summary()
                components += [
                    ComponentEnergy(
                        f"{part.path.name}/{c.channel}",
                        c.component,
                        c.name,
                        c.source,
                        c.method,
                        c.energy_j,
                    )
                    for c in summary.components
                ]
                seg = part.segment
                by_segment[seg] = max(by_segment.get(seg, 0.0), summary.duration_s)
                if not part.complete:
                    notes.append(f"part {part.path.name} did not stop cleanly")
            start = float(part.meta["start_unix_s"])
            end = float(part.final["end_unix_s"]) if part.final else part._last_row_time()[0]
            lo, hi = bounds.get(part.segment, (start, end))
            bounds[part.segment] = (min(lo, start), max(hi, end))
        segments = sorted(bounds)
        for a, b in itertools.pairwise(segments):
            gap = bounds[b][0] - bounds[a][1]
            notes.append(f"segment {b} resumed {gap:.1f} s after segment {a} ended (not counted)")
        return tuple(components), sum(by_segment.values()), notes

    def _federated(self) -> dict[str, Any] | None:
        """The Green FL breakdown when this is a Flower server run (``fl.jsonl``)."""
        if not (self.path / "fl.jsonl").exists():
            return None
        from greentrack.analysis.fl import breakdown

        return breakdown(self, include_server=False).to_dict()

    def _carbon(self, components: tuple[ComponentEnergy, ...]) -> dict[str, Any] | None:
        """Annual-intensity CO2e of the run, measured and estimated apart (``None`` when the
        run recorded no region or intensity)."""
        from greentrack.carbon.accounting import co2e_g, settings_from_meta

        settings = settings_from_meta(self.meta)
        if settings is None:
            return None
        measured, estimated = split_by_source(
            {c.channel: c.energy_j for c in components}, {c.channel: c.source for c in components}
        )
        return {
            **self.meta["carbon"],
            "measured_co2e_g": co2e_g(measured, settings),
            "estimated_co2e_g": co2e_g(estimated, settings),
            "measured_energy_kwh_after_pue": measured / J_PER_KWH * settings.pue.value,
            "estimated_energy_kwh_after_pue": estimated / J_PER_KWH * settings.pue.value,
        }

    def _span_energies(self) -> tuple[SpanEnergy, ...]:
        frame = self.spans
        if frame.empty:
            return ()
        sources = {ch["id"]: ch["source"] for ch in self.channels}
        depth: dict[str, int] = {}
        out = []
        for row in frame.sort_values("start_unix_s", kind="stable").to_dict("records"):
            parent = row["parent_id"] if isinstance(row["parent_id"], str) else None
            depth[row["span_id"]] = depth.get(parent, -1) + 1 if parent else 0
            measured, estimated = split_by_source(
                {cid: row.get(f"energy_j.{cid}") for cid in sources}, sources
            )
            out.append(
                SpanEnergy(
                    row["span_id"],
                    parent,
                    row["name"],
                    row["tags"],
                    float(row["duration_s"]),
                    measured,
                    estimated,
                    row["status"],
                    depth[row["span_id"]],
                )
            )
        return tuple(out)


def load_run(path: str | Path) -> Run:
    """Load a run directory written by :func:`greentrack.track` or ``greentrack run``.

    Raises:
        RunFormatError: not a run directory, or written by a newer greentrack.
    """
    return Run(path)
