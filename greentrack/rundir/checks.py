"""The reader's door: every value read back from a run directory is checked here, once.

A run directory is plain files that anyone can edit, copy between runs or damage. Before a
value reaches the account it must be what greentrack writes: the right type, finite, within
physical bounds, nested no deeper than greentrack nests it, and consistent with the rest of
the run (a ``summary.json`` of this run, a timeline that does not run backwards). What is not
is skipped and said, one line each, in :attr:`greentrack.rundir.reader.Run.damage` (the
account's notes); what the run cannot be read without (its id, its start, its channels) is a
:class:`~greentrack.errors.RunFormatError`: one line naming the file, the value and the fix.

The bounds are physical, not statistical (docs/robustness.md, "Values read back"):

* :data:`MAX_CHANNEL_W`: no channel (a GPU board, a CPU package, a DRAM estimate) draws more;
  a channel's energy over ``t`` seconds is at most ``MAX_CHANNEL_W * (t + 1)`` joules;
* times lie between 1970 and :data:`MAX_UNIX_S` (2200);
* nothing greentrack writes is nested deeper than :data:`MAX_DEPTH`.

This module knows files, not carbon: the carbon block's intensity and PUE are checked where
the account reads them (:mod:`greentrack.account.build`), against the carbon tables' bounds.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.errors import RunFormatError
from greentrack.numbers import num

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_CHANNEL_W = 10_000.0
"""The most one channel (a GPU board, a CPU package, a DRAM estimate) is taken to draw: an
energy above ``MAX_CHANNEL_W`` x its seconds, or a power above it, is damage."""
MAX_REPLY_W = 100 * MAX_CHANNEL_W
"""The most a Flower client (a whole machine) is taken to draw during one reply."""
MAX_UNIX_S = 7_258_118_400.0
"""2200-01-01 UTC: a later time in a run directory is damage (pandas times end in 2262)."""
MAX_DEPTH = 32
"""Deepest nesting of any value greentrack writes (a config mapping included)."""
MAX_BYTES = 1 << 50
"""The most bytes one Flower message is taken to carry (a petabyte)."""
FALL = 0.05
"""A channel with an energy counter and a power sensor may read a little less than the row
before it: the ledger re-anchors its power integral to the counter at each counter read
(docs/methodology.md), and an integral that ran high falls back. Such a fall is at most half
of what the channel added since the counter read before (:data:`RESNAP`) or this fraction of
its total (after a long bridge over a failing counter), whichever is more."""
RESNAP = 0.5
"""See :data:`FALL`."""
CLOCK_SLACK_S = 86_400.0
"""How far the wall clock may move apart from the monotonic clock between two timeline rows
(an NTP step, a suspended machine): further is damage."""
COMPONENTS = ("gpu", "cpu", "dram")
SOURCES = ("measured", "estimated")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_CHANNEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}")


def as_read(value: float) -> str:
    """A number as the damaged file holds it, to six significant figures: the one place a
    message may write an exponent, where ``1e+300`` says what the file held (the words of a
    measured or estimated figure go through :mod:`greentrack.numbers`).

    >>> as_read(1e300), as_read(12.5), as_read(-0.000123456789)
    ('1e+300', '12.5', '-0.000123457')
    """
    return f"{value:.6g}"  # raw value


def shown(value: Any) -> str:
    """A value for a note: its ``repr``, cut to 40 characters (control characters escaped)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number(value: Any) -> bool:
    """A finite number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def joules(value: Any) -> bool:
    """A finite number of joules, not negative."""
    return number(value) and value >= 0


def unix_time(value: Any) -> bool:
    """A time a run can have: finite seconds from 1970 to :data:`MAX_UNIX_S`."""
    return number(value) and 0 <= value <= MAX_UNIX_S


def seconds(value: Any) -> bool:
    """A duration a run can have: finite, not negative, within the representable times."""
    return number(value) and 0 <= value <= MAX_UNIX_S


def _positive(value: Any) -> bool:
    return number(value) and value > 0


def scalar(value: Any) -> bool:
    """A JSON scalar as greentrack writes them: a string, a bool, ``None`` or a finite number."""
    return value is None or isinstance(value, str | bool) or number(value)


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep ``value`` nests (a scalar is 0), counted without recursion and only up to
    ``limit + 1``: a value nested 100k deep costs no more than one nested ``limit + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, Mapping | list):
            continue
        level += 1
        deepest = max(deepest, level)
        if level > limit:
            return deepest
        children = item.values() if isinstance(item, Mapping) else item
        stack.extend((child, level) for child in children)
    return deepest


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a number"


# --- meta.json ---------------------------------------------------------------------------------

_OBJECTS = (
    "host",
    "software",
    "git",
    "sampling",
    "carbon",
    "part",
    "fl",
    "intensity_provider",
    "config",
)
"""Optional fields of ``meta.json`` that are objects (``null`` allowed)."""
_TEXTS: tuple[str, ...] = ("project", "name", "greentrack_version", "cwd", "framework")
_TEXTS += ("cuda_visible_devices", "fl_role")
"""Optional fields of ``meta.json`` that are strings (``null`` allowed)."""
_FLAT = ("host", "software", "git")
"""Objects whose values are scalars."""
_SAMPLING = {"power_hz": 10_000.0, "row_interval_s": 86_400.0, "counter_interval_s": 86_400.0}
"""The sampling settings and the most each can be (Hz, s)."""
_CHANNEL_TEXTS = ("name", "method", "energy_method", "power_method")


def check_meta(path: Path, meta: Any, fix: str) -> tuple[dict[str, Any], list[str]]:
    """``meta.json`` checked: ``(meta, notes)``, where optional fields that are damaged are
    left out (each with a note), and a run that cannot be read without its damaged fields
    (format version, id, start, channels) is a :class:`RunFormatError`."""
    if not isinstance(meta, dict):
        raise RunFormatError(f"{path} holds a JSON {type(meta).__name__}, not an object: {fix}")
    meta = dict(meta)
    _check_identity(path, meta, fix)
    notes: list[str] = []
    name = path.name

    def drop(key: str, why: str) -> None:
        notes.append(f"{name}: {key!r} is {why}: ignored")
        meta.pop(key, None)

    for key in list(meta):
        value = meta[key]
        if key in _OBJECTS and value is not None and not isinstance(value, dict):
            drop(key, f"{shown(value)} ({_kind(value)}), not an object")
        elif key in _TEXTS and value is not None and not isinstance(value, str):
            drop(key, f"{shown(value)} ({_kind(value)}), not a string")
        elif key != "channels" and depth(value) > MAX_DEPTH:
            drop(key, f"nested deeper than {MAX_DEPTH} levels")
    for key in _FLAT:
        block = meta.get(key)
        if isinstance(block, dict):
            bad = [k for k, v in block.items() if not scalar(v)]
            if bad:
                notes.append(f"{name}: {key}.{bad[0]} is {shown(block[bad[0]])}: ignored")
                meta[key] = {k: v for k, v in block.items() if k not in bad}
    provider = meta.get("intensity_provider")
    if isinstance(provider, dict) and not (
        isinstance(provider.get("id"), str) and isinstance(provider.get("region", ""), str)
    ):
        drop("intensity_provider", f"{shown(provider)}, not a provider id and region")
    _check_lists(meta, notes, name)
    sampling = meta.get("sampling")
    if isinstance(sampling, dict):
        bad = [
            k
            for k, most in _SAMPLING.items()
            if k in sampling and not (_positive(sampling[k]) and sampling[k] <= most)
        ]
        if bad:
            notes.append(
                f"{name}: sampling.{bad[0]} is {shown(sampling[bad[0]])}, not a number from 0 to "
                f"{num(_SAMPLING[bad[0]])}: ignored"
            )
            meta["sampling"] = {k: v for k, v in sampling.items() if k not in bad}
    meta["channels"] = _check_channels(path, meta.get("channels", []), notes, fix)
    return meta, notes


def _check_identity(path: Path, meta: dict[str, Any], fix: str) -> None:
    run_id = meta.get("run_id")
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise RunFormatError(
            f"{path}: 'run_id' is missing or not valid ({shown(run_id)}; greentrack writes 32 "
            f"hex characters): {fix}"
        )
    start = meta.get("start_unix_s")
    if not unix_time(start):
        raise RunFormatError(
            f"{path}: 'start_unix_s' is missing or not valid ({shown(start)}, not a time from "
            f"1970 to 2200 in Unix seconds): {fix}"
        )
    if not isinstance(meta.get("start_utc"), str):
        raise RunFormatError(f"{path}: 'start_utc' is missing or not valid: {fix}")


_PART_INTS = {"segment": 0, "rank": 0, "local_rank": 0, "world_size": 1, "local_world_size": 1}
"""The integers of a ``part`` block and the least each can be."""
_PART_TEXTS = ("job_id", "stage", "host", "launcher")


def check_root_part(meta: dict[str, Any], notes: list[str], name: str) -> None:
    """The ``part`` block of the run directory's own ``meta.json`` (rank 0 of segment 0 of its
    job): integers where integers belong, texts where texts belong (a damaged entry is left
    out, with a note), and the place of the run directory itself (another segment or rank is
    read as segment 0, rank 0, with a note). Parts under ``parts/`` are checked by
    :func:`greentrack.rundir.parts.part_problem`, which skips a damaged one whole."""
    part = meta.get("part")
    if not isinstance(part, dict):
        return
    part = dict(part)
    for key, least in _PART_INTS.items():
        v = part.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < least):
            notes.append(f"{name}: part.{key} is {shown(v)}, not an integer >= {least}: ignored")
            part.pop(key)
    for key in _PART_TEXTS:
        if part.get(key) is not None and not isinstance(part[key], str):
            notes.append(f"{name}: part.{key} is {shown(part[key])}, not a string: ignored")
            part.pop(key)
    place = (part.get("segment", 0), part.get("rank", 0))
    if place != (0, 0):
        notes.append(
            f"{name}: part says segment {place[0]}, rank {place[1]}, but the run directory "
            "itself is rank 0 of segment 0: read as such"
        )
        part.update(segment=0, rank=0)
    meta["part"] = part


def start_utc_problem(meta: Mapping[str, Any]) -> str | None:
    """Why ``start_utc`` does not say the time ``start_unix_s`` says (it is then shown from
    ``start_unix_s``), or ``None``."""
    text = meta["start_utc"]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return f"{shown(text)} is not an ISO 8601 time"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if abs(parsed.timestamp() - float(meta["start_unix_s"])) > 1.0:
        return f"{shown(text)} is not the time of start_unix_s ({iso(meta['start_unix_s'])})"
    return None


def iso(t_unix_s: float) -> str:
    """UTC ISO 8601 with milliseconds, as greentrack writes times."""
    return datetime.fromtimestamp(t_unix_s, timezone.utc).isoformat(timespec="milliseconds")


def _check_lists(meta: dict[str, Any], notes: list[str], name: str) -> None:
    """``command`` (a list of strings), ``pending`` (a list of names), ``boundary`` (a list of
    ``{component, status, detail}`` objects)."""
    nodes = meta.get("node_channels")
    if nodes is not None and (
        not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes)
    ):
        notes.append(f"{name}: 'node_channels' is {shown(nodes)}, not a list of objects: ignored")
        meta.pop("node_channels")
    for key in ("command", "pending"):
        value = meta.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            notes.append(f"{name}: {key!r} is {shown(value)}, not a list of strings: ignored")
            meta.pop(key)
    boundary = meta.get("boundary")
    if boundary is None:
        return
    if not isinstance(boundary, list):
        notes.append(f"{name}: 'boundary' is {shown(boundary)}, not a list: ignored")
        meta.pop("boundary")
        return
    good = [
        b
        for b in boundary
        if isinstance(b, dict)
        and all(isinstance(b.get(k), str) for k in ("component", "status"))
        and isinstance(b.get("detail", ""), str)
    ]
    if len(good) < len(boundary):
        notes.append(
            f"{name}: {len(boundary) - len(good)} 'boundary' entry(ies) without a component, "
            "status and detail (strings): ignored"
        )
        meta["boundary"] = good


def _check_channels(path: Path, channels: Any, notes: list[str], fix: str) -> list[Any]:
    if not isinstance(channels, list):
        raise RunFormatError(f"{path}: 'channels' is not a list: {fix}")
    seen: set[str] = set()
    out = []
    for i, ch in enumerate(channels):
        if not isinstance(ch, dict) or not isinstance(ch.get("id"), str):
            raise RunFormatError(f"{path}: channel {i} has no 'id': {fix}")
        cid = ch["id"]
        if not _CHANNEL_ID.fullmatch(cid) or cid in seen:
            what = "appears twice" if cid in seen else "is not a channel id"
            raise RunFormatError(f"{path}: channel {shown(cid)} {what}: {fix}")
        seen.add(cid)
        if ch.get("component") not in COMPONENTS or ch.get("source") not in SOURCES:
            raise RunFormatError(
                f"{path}: channel {cid!r} has component {shown(ch.get('component'))} and source "
                f"{shown(ch.get('source'))} (expected one of {COMPONENTS} and {SOURCES}): {fix}"
            )
        ch = dict(ch)
        for key in _CHANNEL_TEXTS:
            if ch.get(key) is not None and not isinstance(ch[key], str):
                instead = cid if key == "name" else None  # the name views fall back to
                notes.append(
                    f"{path.name}: channel {cid}: {key!r} is {shown(ch[key])}: read as {instead!r}"
                )
                ch[key] = instead
        details = ch.get("details")
        if details is not None and (not isinstance(details, dict) or depth(details) > MAX_DEPTH):
            notes.append(f"{path.name}: channel {cid}: 'details' is damaged: ignored")
            ch.pop("details")
        limit = (ch.get("details") or {}).get("power_limit_w")
        if limit is not None and not (_positive(limit) and limit <= MAX_CHANNEL_W):
            notes.append(
                f"{path.name}: channel {cid}: power_limit_w is {shown(limit)}, not a power from "
                f"0 to {num(MAX_CHANNEL_W)} W: ignored"
            )
            ch["details"] = {k: v for k, v in ch["details"].items() if k != "power_limit_w"}
        out.append(ch)
    return out


# --- summary.json ------------------------------------------------------------------------------


def summary_problem(final: Any, meta: Mapping[str, Any], channel_ids: Sequence[str]) -> str | None:
    """Why ``summary.json`` cannot stand for this run's totals (a clause), or ``None``: it is
    another run's, or its totals, times or records are not what a run can hold."""
    if not isinstance(final, dict):
        return f"holds {_kind(final)}, not an object"
    if "run_id" in final and final["run_id"] != meta["run_id"]:
        return f"belongs to run {shown(final['run_id'])}, not to this run ({meta['run_id']})"
    energy: Any = final.get("energy_j")
    end: Any = final.get("end_unix_s")
    duration: Any = final.get("duration_s")
    if not isinstance(energy, dict) or not unix_time(end) or not seconds(duration):
        return (
            "lacks its totals (energy_j, end_unix_s, duration_s: finite numbers, energy and "
            "duration not negative)"
        )
    wall = float(end) - float(meta["start_unix_s"])
    if wall < -CLOCK_SLACK_S or float(duration) > wall + CLOCK_SLACK_S:
        return (
            f"says the run lasted {as_read(float(duration))} s, ending at {shown(end)}: not a run "
            f"that started at {meta['start_unix_s']!r}"
        )
    ceiling = MAX_CHANNEL_W * (float(duration) + 1.0)
    for cid in channel_ids:
        value = energy.get(cid)
        if value is None:
            continue
        if not joules(value):
            return f"lacks its totals: energy_j.{cid} is {shown(value)}, not joules >= 0"
        if value > ceiling:
            return (
                f"says {cid} used {as_read(value)} J in {as_read(duration)} s, more than "
                f"{num(MAX_CHANNEL_W)} W could"
            )
    for key in ("counter_trouble", "io_trouble"):
        if key in final and (not isinstance(final[key], dict) or depth(final[key]) > MAX_DEPTH):
            return f"has a damaged {key!r} record"
    io = final.get("io_trouble")
    if isinstance(io, dict) and not (
        all(unix_time(io.get(k)) for k in ("first_unix_s", "last_unix_s"))
        and all(isinstance(io.get(k, 0), int) and io.get(k, 0) >= 0 for k in ("records_lost",))
    ):
        return "has a damaged 'io_trouble' record (times, records lost)"
    if not isinstance(final.get("status", ""), str):
        return f"has a status of {shown(final['status'])}, not a string"
    return None


def least_after(last_j: float, before_j: float, may_fall: bool) -> float:
    """The least a channel's cumulative energy may read after ``last_j`` (``before_j``: what it
    read a counter interval earlier; ``may_fall``: it has both a counter and a power sensor,
    see :data:`FALL`); 1 J allows for the 3 decimals of the file."""
    if not may_fall:
        return last_j - 1.0
    return last_j - max(RESNAP * (last_j - before_j), FALL * last_j) - 1.0


def against_timeline(
    final: Mapping[str, Any], last: Mapping[str, tuple[float, float, float]]
) -> str | None:
    """Why the summary's totals cannot follow the timeline's last readings ``last`` (channel ->
    ``(t_mono_s, energy_j, least_j)``, ``least_j`` the least a later total may be): energy
    cannot fall below it, nor grow faster than :data:`MAX_CHANNEL_W` after the row."""
    duration = float(final["duration_s"])
    for cid, (t_mono, energy, least) in last.items():
        if duration < t_mono - 1.0:
            return (
                f"says the run lasted {as_read(duration)} s; its timeline runs to "
                f"{as_read(t_mono)} s: it is not this run's"
            )
        value = final["energy_j"].get(cid)
        if value is None:
            continue
        if value < least:
            return (
                f"says {cid} used {as_read(value)} J, less than the timeline had already counted "
                f"({as_read(energy)} J): it is not this run's"
            )
        if value > energy + MAX_CHANNEL_W * (max(duration - t_mono, 0.0) + 1.0):
            return (
                f"says {cid} used {as_read(value)} J; the timeline's last row "
                f"({as_read(t_mono)} s) has {as_read(energy)} J, and no channel draws the "
                f"difference in {as_read(duration)} s: it is not this run's"
            )
    return None


# --- timeline.csv ------------------------------------------------------------------------------

Row = tuple[float, float, Sequence[float], frozenset[str]]
"""A timeline row as checked: ``(t_unix_s, t_mono_s, energy_j per channel, failing ids)``,
``nan`` for an empty cell."""


def timeline_keep(
    t_unix: npt.NDArray[np.float64],
    t_mono: npt.NDArray[np.float64],
    energy: npt.NDArray[np.float64],
    gaps: npt.NDArray[np.object_],
    channel_ids: Sequence[str],
    *,
    may_fall: Sequence[bool],
    start_unix_s: float,
    window_s: float,
) -> tuple[list[bool], tuple[int, str] | None]:
    """Which timeline rows to keep (``energy``: one column per channel, ``nan`` for an empty
    cell; ``gaps``: each row's failing channel ids), and the first skipped row's index with a
    clause saying what it held.

    A row is kept when its times lie within the run's and its energies are finite joules >= 0
    that never rise faster than :data:`MAX_CHANNEL_W` and never fall, except where
    ``may_fall`` (a channel whose power integral is re-anchored to its counter at least every
    ``window_s``) and then by no more than :func:`least_after` allows. A row that the next row
    contradicts, when the next fits without it, is the odd one out and skipped too: one
    damaged row does not cost the rows after it.
    """
    import numpy as np

    n = len(t_unix)
    kept = np.zeros(n, dtype=bool)
    first: tuple[int, str] | None = None

    def row(i: int) -> Row:
        g = str(gaps[i])
        failing = frozenset(g.split(";")) if g else frozenset()
        return float(t_unix[i]), float(t_mono[i]), energy[i].tolist(), failing

    pos = episodes = 0
    while pos < n:
        # the rows in line at numpy speed; from the first that is not, row by row until a
        # row past it is kept again (after 16 such episodes, row by row to the end)
        f = (
            pos
            if episodes >= 16
            else _first_out_of_line(
                t_unix, t_mono, energy, kept, pos, may_fall, start_unix_s, window_s
            )
        )
        kept[pos:f] = True
        if f >= n:
            break
        start = max(pos, f - 1)  # the row before may be the odd one out
        kept[start:f] = False
        tail = [row(i) for i in _tail(kept, start)]
        history = _History.of(channel_ids, may_fall, window_s, t_mono, energy, kept[:start], tail)
        i = start
        while i < n:
            current = row(i)
            problem = _cell_problem(current, channel_ids, start_unix_s) or history.problem(current)
            if problem is None and i + 1 < n:
                after = row(i + 1)
                if (
                    _cell_problem(after, channel_ids, start_unix_s) is None
                    and history.problem(after) is None
                    and history.problem(after, before=current) is not None
                ):
                    problem = f"{history.problem(after, before=current)} on the next row"
            if problem is None:
                history.add(current)
                kept[i] = True
            elif first is None:
                first = (i, problem)
            i += 1
            if problem is None and i > f and episodes < 15:
                break
        pos = i
        episodes += 1
    return kept.tolist(), first


def _tail(kept: npt.NDArray[np.bool_], end: int) -> list[int]:
    """The kept rows before ``end`` that a history needs row by row: the last one, and the
    run of rows before it that may flag a failing meter (at most 64)."""
    import numpy as np

    idx = np.flatnonzero(kept[:end])
    return [int(i) for i in idx[-64:]]


def _first_out_of_line(
    t_unix: npt.NDArray[np.float64],
    t_mono: npt.NDArray[np.float64],
    energy: npt.NDArray[np.float64],
    kept: npt.NDArray[np.bool_],
    lo: int,
    may_fall: Sequence[bool],
    start_unix_s: float,
    window_s: float,
) -> int:
    """The first row from ``lo`` on that is out of line with the rows kept before ``lo`` and
    the rows from ``lo`` up to it, at numpy speed (``len(t_unix)`` when there is none).
    Stricter than the row-by-row check (no allowance for failing meters): a row it flags is
    decided row by row."""
    import numpy as np

    n = len(t_unix)
    seq = np.concatenate([np.flatnonzero(kept[:lo]), np.arange(lo, n)])
    h = len(seq) - (n - lo)  # rows of history at the head of seq
    tu, tm, en = t_unix[seq], t_mono[seq], energy[seq]
    # values damaged to 1e308 overflow to inf here and are judged impossible: no warning
    with np.errstate(invalid="ignore", over="ignore"):
        cu, cm, ce = tu[h:], tm[h:], en[h:]
        bad = ~np.isfinite(cu) | (cu < max(start_unix_s - CLOCK_SLACK_S, 0.0)) | (cu > MAX_UNIX_S)
        bad |= ~np.isfinite(cm) | (cm < 0) | (cm > MAX_UNIX_S)
        bad |= (np.isinf(ce) | (ce < 0)).any(axis=1)
        if len(seq) > 1:
            dt, dw = np.diff(tm), np.diff(tu)
            step = (dt < -1e-3) | (np.abs(dw - dt) > CLOCK_SLACK_S)
            at = np.arange(h, len(seq))
            bad |= np.where(at > 0, step[np.maximum(at - 1, 0)], False)
        for k in range(en.shape[1]):
            idx = np.flatnonzero(~np.isnan(en[:, k]))
            if not len(idx):
                continue
            e, t = en[idx, k], tm[idx]
            prev_t = np.concatenate([[0.0], t[:-1]])
            prev_e = np.concatenate([[0.0], e[:-1]])
            jump = e > prev_e + MAX_CHANNEL_W * (np.maximum(t - prev_t, 0.0) + 1.0)
            j = np.searchsorted(t, prev_t - window_s, side="right") - 1
            before = np.where(j >= 0, e[np.maximum(j, 0)], 0.0)
            fall = np.maximum(RESNAP * (prev_e - before), FALL * prev_e) if may_fall[k] else 0.0
            wrong = jump | (e < prev_e - fall - 1.0)
            mine = idx >= h
            bad[idx[mine] - h] |= wrong[mine]
    hits = np.flatnonzero(bad)
    return lo + int(hits[0]) if len(hits) else n


def _cell_problem(row: Row, channel_ids: Sequence[str], start_unix_s: float) -> str | None:
    t_unix, t_mono, energies, _ = row
    if not unix_time(t_unix) or t_unix < start_unix_s - CLOCK_SLACK_S:
        return f"t_unix_s = {shown(t_unix)}"
    if not seconds(t_mono):
        return f"t_mono_s = {shown(t_mono)}"
    for cid, e in zip(channel_ids, energies, strict=True):
        if not math.isnan(e) and not joules(e):
            return f"{cid}_energy_j = {shown(e)}"
    return None


class _History:
    """The rows kept so far, per channel: the times and energies of its readings, and since
    when its meter has been failing (for the floor below which its energy cannot fall)."""

    def __init__(self, channel_ids: Sequence[str], may_fall: Sequence[bool], window_s: float):
        self.ids = list(channel_ids)
        self.may_fall = list(may_fall)
        self.window_s = window_s
        self.last: Row | None = None
        self.times: list[list[float]] = [[] for _ in self.ids]
        self.values: list[list[float]] = [[] for _ in self.ids]
        self.failing_since: list[float | None] = [None for _ in self.ids]

    @classmethod
    def of(
        cls,
        channel_ids: Sequence[str],
        may_fall: Sequence[bool],
        window_s: float,
        t_mono: npt.NDArray[np.float64],
        energy: npt.NDArray[np.float64],
        kept: npt.NDArray[np.bool_],
        tail: Sequence[Row],
    ) -> _History:
        """The history of the rows ``kept`` (a mask over the first rows): their readings at
        numpy speed, then the last of them (``tail``) added one by one, for the failing
        meters' streaks and the last row."""
        import numpy as np

        history = cls(channel_ids, may_fall, window_s)
        head = np.flatnonzero(kept)[: max(int(kept.sum()) - len(tail), 0)]
        for k in range(len(history.ids)):
            col = energy[head, k]
            ok = ~np.isnan(col)
            history.times[k] = t_mono[head][ok].tolist()
            history.values[k] = col[ok].tolist()
        for row in tail:
            history.add(row)
        return history

    def add(self, row: Row) -> None:
        self.last = row
        _, t_mono, energies, failing = row
        for k, e in enumerate(energies):
            if not math.isnan(e):
                self.times[k].append(t_mono)
                self.values[k].append(e)
            if self.ids[k] not in failing:
                self.failing_since[k] = None
            elif self.failing_since[k] is None:
                self.failing_since[k] = t_mono

    def problem(self, row: Row, before: Row | None = None) -> str | None:
        """Why ``row`` cannot follow the kept rows (and ``before``, when given, as the last of
        them), or ``None``."""
        last = before or self.last
        t_unix, t_mono, energies, _ = row
        if last is not None:
            if t_mono < last[1] - 1e-3:
                return f"t_mono_s runs backwards ({as_read(t_mono)} after {as_read(last[1])})"
            if abs((t_unix - last[0]) - (t_mono - last[1])) > CLOCK_SLACK_S:
                return (
                    f"t_unix_s = {shown(float(t_unix))}, not {as_read(t_mono - last[1])} s after "
                    "the row before"
                )
        for k, e in enumerate(energies):
            if math.isnan(e):
                continue
            t0, e0 = 0.0, 0.0
            if before is not None and not math.isnan(before[2][k]):
                t0, e0 = before[1], before[2][k]
            elif self.times[k]:
                t0, e0 = self.times[k][-1], self.values[k][-1]
            cid = self.ids[k]
            if e > e0 + MAX_CHANNEL_W * (max(t_mono - t0, 0.0) + 1.0):
                return (
                    f"{cid}_energy_j jumps from {as_read(e0)} to {as_read(e)} J in "
                    f"{as_read(t_mono - t0)} s"
                )
            since = self.failing_since[k]
            edge = min(t0, since) if since is not None else t0
            before_j = self._floor(k, edge - self.window_s, before)
            if e < least_after(e0, before_j, self.may_fall[k]):
                return f"{cid}_energy_j runs backwards ({as_read(e)} J after {as_read(e0)} J)"
        return None

    def _floor(self, k: int, at: float, before: Row | None) -> float:
        """The channel's energy at its last reading at or before ``at`` (0 before any)."""
        if before is not None and before[1] <= at and not math.isnan(before[2][k]):
            return before[2][k]
        i = bisect.bisect_right(self.times[k], at)
        return self.values[k][i - 1] if i else 0.0


# --- spans.jsonl, events.jsonl, fl.jsonl ---------------------------------------------------------


def _energy_map(value: Any, channel_ids: Sequence[str]) -> str | None:
    """Why a span's ``energy_j`` is not joules per channel (``null``: no reading), or ``None``."""
    if not isinstance(value, dict):
        return f"energy_j is {shown(value)}, not an object"
    for cid in channel_ids:
        e = value.get(cid)
        if e is not None and not joules(e):
            return f"{cid} energy {shown(e)}, not joules >= 0"
    return None


def span_line_problem(rec: Mapping[str, Any], channel_ids: Sequence[str]) -> str | None:
    """Why a ``begin`` or ``end`` line of ``spans.jsonl`` is not one greentrack writes."""
    if rec.get("event") == "begin":
        name = rec.get("name")
        if not isinstance(name, str) or not name.strip():
            return f"name {shown(name)}"
        parent = rec.get("parent_id")
        if parent is not None and not isinstance(parent, str):
            return f"parent_id {shown(parent)}"
    elif not seconds(rec.get("duration_s")):
        return f"duration_s {shown(rec.get('duration_s'))}"
    if not unix_time(rec.get("t_unix_s")):
        return f"t_unix_s {shown(rec.get('t_unix_s'))}"
    mono = rec.get("t_mono_s")
    if (rec.get("event") == "begin" or mono is not None) and not seconds(mono):
        return f"t_mono_s {shown(mono)}"
    if not isinstance(rec.get("status", ""), str):
        return f"status {shown(rec.get('status'))}"
    return _energy_map(rec.get("energy_j"), channel_ids)


def span_problem(
    begin: Mapping[str, Any],
    end: Mapping[str, Any] | None,
    channel_ids: Sequence[str],
    totals_j: Mapping[str, float] | None,
    start_unix_s: float,
) -> str | None:
    """Why a span (its ``begin`` line and, once ended, its ``end`` line) is not one this run
    can hold: it ends before it begins, its duration is not its times', or its energy is more
    than a channel can draw in it or than the run's total (``totals_j``: the run's final
    totals, when it stopped cleanly), or it begins before the run (``start_unix_s``)."""
    if float(begin["t_unix_s"]) < start_unix_s - CLOCK_SLACK_S:
        return f"begins at {begin['t_unix_s']!r}, before the run started"
    if totals_j is not None:
        for cid in channel_ids:
            e, total = begin["energy_j"].get(cid), totals_j.get(cid)
            if e is not None and total is not None and e > total * (1 + FALL) + 1.0:
                return f"{cid} at its start {as_read(e)} J, more than the run's {as_read(total)} J"
    if end is None:
        return None
    duration = float(end["duration_s"])
    if end.get("t_mono_s") is not None:
        elapsed = float(end["t_mono_s"]) - float(begin["t_mono_s"])
        if elapsed < -1e-3 or abs(elapsed - duration) > 1e-3 + 1e-9 * duration:
            return (
                f"ends {as_read(elapsed)} s after it begins (monotonic clock) but says it lasted "
                f"{as_read(duration)} s"
            )
    wall = float(end["t_unix_s"]) - float(begin["t_unix_s"])
    if abs(wall - duration) > CLOCK_SLACK_S:
        return (
            f"lasted {as_read(duration)} s but ends {as_read(wall)} s after it begins (t_unix_s): "
            "the times are not one span's"
        )
    for cid in channel_ids:
        e = end["energy_j"].get(cid)
        if e is None:
            continue
        if e > MAX_CHANNEL_W * (duration + 1.0):
            return (
                f"{cid} used {as_read(e)} J in {as_read(duration)} s, more than "
                f"{num(MAX_CHANNEL_W)} W could"
            )
        total = totals_j.get(cid) if totals_j is not None else None
        if total is not None and math.isfinite(total) and e > total * (1 + FALL) + 1.0:
            return f"{cid} used {as_read(e)} J, more than the run's total {as_read(total)} J"
    return None


def clean_tags(tags: Any) -> tuple[dict[str, Any], bool]:
    """A span's tags as greentrack writes them (a mapping of names to JSON scalars), and
    whether anything was left out."""
    if not isinstance(tags, dict):
        return {}, tags is not None
    good = {k: v for k, v in tags.items() if scalar(v)}
    return good, len(good) < len(tags)


_FORECAST = ("forecast_j", "forecast_j_low", "forecast_j_high")


MAX_PARAMETERS = 10**15
"""A model's parameter count that a record can hold: below a quadrillion (the report's
``--parameters`` takes up to 1e15 too)."""


def parameter_count(value: Any) -> bool:
    """A model's parameter count: an integer (not a bool) from 0 to below :data:`MAX_PARAMETERS`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_PARAMETERS


def _model_problem(rec: Mapping[str, Any]) -> str | None:
    """Why a ``model`` event (the parameter count an integration recorded) cannot be used."""
    for key in ("parameters", "trainable_parameters"):
        if (key in rec or key == "parameters") and not parameter_count(rec.get(key)):
            return f"a model's {key} is {shown(rec.get(key))}"
    trainable = rec.get("trainable_parameters")
    if trainable is not None and trainable > rec["parameters"]:
        return "a model's trainable_parameters is more than its parameters"
    return None


def event_problem(rec: Mapping[str, Any]) -> str | None:
    """Why an ``events.jsonl`` record cannot be used (a forecast's figures, a model's parameter
    count), or ``None``."""
    if rec.get("event") == "model":
        return _model_problem(rec)
    if rec.get("event") != "forecast" or "forecast_j" not in rec:
        return None
    bad = [k for k in _FORECAST if not joules(rec.get(k))]
    if bad:
        return f"a forecast's {bad[0]} is {shown(rec.get(bad[0]))}"
    if not rec["forecast_j_low"] <= rec["forecast_j"] <= rec["forecast_j_high"]:
        return "a forecast's range does not hold its value"
    for key in ("units_done", "units_remaining"):
        if key in rec and not (number(rec[key]) and rec[key] >= 0):
            return f"a forecast's {key} is {shown(rec[key])}"
    return None


_FL_JOULES = ("client_measured_j", "client_estimated_j", "client_measured_raw_j")
_FL_COUNTS = {"download_bytes": MAX_BYTES, "upload_bytes": MAX_BYTES, "num_examples": MAX_BYTES}
_FL_COUNTS.update(node_id=(1 << 64) - 1, client_pid=(1 << 64) - 1)
_FL_TEXTS = ("phase", "client_basis", "client_methods", "attribution", "client_host")


def fl_problem(rec: Mapping[str, Any], run_s: float) -> str | None:
    """Why an ``fl.jsonl`` line (one client reply) is not one a reply can be: counts that are
    not integers >= 0 (bytes up to :data:`MAX_BYTES`), energy that is not joules >= 0 or more
    than :data:`MAX_REPLY_W` could draw in the reply's time (else the server run's,
    ``run_s``)."""
    rnd = rec.get("round")
    if not isinstance(rnd, int) or isinstance(rnd, bool) or rnd < 0:
        return f"round {shown(rnd)}"
    for key, most in _FL_COUNTS.items():
        v = rec.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= most):
            return f"{key} {shown(v)}"
    for key in _FL_TEXTS:
        if rec.get(key) is not None and not isinstance(rec[key], str):
            return f"{key} {shown(rec[key])}"
    duration = rec.get("client_duration_s")
    if duration is not None and not seconds(duration):
        return f"client_duration_s {shown(duration)}"
    limit = MAX_REPLY_W * ((duration if duration is not None else run_s) + 1.0)
    for key in _FL_JOULES:
        v = rec.get(key)
        if v is not None and (not joules(v) or v > limit):
            return f"{key} {shown(v)}"
    comps = rec.get("client_components")
    if comps is not None:
        if not isinstance(comps, dict):
            return f"client_components {shown(comps)}"
        for name, pair in comps.items():
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(joules(v) and v <= limit for v in pair)
            ):
                return f"client_components.{name} {shown(pair)}"
    ancestors = rec.get("client_ancestors")
    if ancestors is not None and not (
        isinstance(ancestors, list) and all(isinstance(a, int) for a in ancestors)
    ):
        return f"client_ancestors {shown(ancestors)}"
    error = rec.get("error")
    if error is not None and not isinstance(error, bool | str):
        return f"error {shown(error)}"
    return None
