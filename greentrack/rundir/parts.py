"""Which parts belong to a job: the one rule that the reader and ``greentrack merge`` share.

A distributed job writes one run directory: rank 0 of segment 0 writes the root, rank R of
segment S writes ``parts/seg<S>-rank<R>`` with a ``part`` block in its ``meta.json``
(docs/distributed.md). A part belongs to the job only if its block says so consistently:

* ``segment``: an integer >= 0; ``rank``: an integer >= 0 (``true``, ``1.9``, ``-1`` are not);
* ``world_size`` (when given, else the job's for its segment): an integer >= 1 with ``rank`` in
  ``[0, world_size)``; a part of the job's own segment has the job's world size;
* its folder is named ``seg<S>-rank<R>`` after its own segment and rank, and it is not rank 0
  of segment 0 (that is the root's place);
* it carries the job's id when the job has one (a part of another job, or one without an id,
  is not this job's).

:func:`part_problem` says why a part does not belong (one clause, for a note or an error
line), or ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greentrack.rundir.format import part_name

_NAME = re.compile(r"seg(\d+)-rank(\d+)")


@dataclass(frozen=True, slots=True)
class Job:
    """What a part is checked against: the job's id (``None``: the job has none), and the
    segment and world size of the run that leads it (the root, or the first rank that ran)."""

    job_id: str | None = None
    segment: int = 0
    world_size: int | None = None


def _int(value: Any) -> int | None:
    """``value`` when it is an integer (not a bool), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def job_of(meta: Mapping[str, Any]) -> Job:
    """The job that the run with this ``meta.json`` leads (its ``part`` block; none: a run of
    one process)."""
    part = meta.get("part")
    if not isinstance(part, Mapping):
        return Job(world_size=1)  # a run of one process: its segment 0 has no other rank
    job = part.get("job_id")
    world = _int(part.get("world_size"))
    return Job(
        job_id=None if job is None else str(job),
        segment=_int(part.get("segment")) or 0,
        world_size=world if world is not None and world >= 1 else None,
    )


def place_of(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(segment, rank)`` of a run whose ``part`` block is valid; ``(0, 0)`` for a run without
    one; ``None`` when the block is damaged."""
    part = meta.get("part")
    if part is None:
        return (0, 0)
    if not isinstance(part, Mapping):
        return None
    segment, rank = _int(part.get("segment", 0)), _int(part.get("rank", 0))
    if segment is None or rank is None or segment < 0 or rank < 0:
        return None
    return segment, rank


def name_order(name: str) -> tuple[int, int, str]:
    """Sort key of a folder under ``parts/``: by segment, then rank (``seg0-rank10`` after
    ``seg0-rank2``); other names last."""
    m = _NAME.fullmatch(name)
    return (int(m[1]), int(m[2]), name) if m else (1 << 62, 0, name)


def part_problem(meta: Mapping[str, Any], name: str | None, job: Job | None) -> str | None:
    """Why the run with ``meta`` does not belong to ``job`` as the part in folder ``name``
    (``None`` for a folder that is not under ``parts/``, whose name is not checked; ``job``
    ``None`` for the first rank of a job without its root), or ``None`` when it does."""
    part = meta.get("part")
    if not isinstance(part, Mapping):
        return (
            "its meta.json has no 'part' block (segment, rank, world size): it is no rank of a job"
        )
    segment, rank = _int(part.get("segment")), _int(part.get("rank"))
    if segment is None or segment < 0:
        return f"its segment is {part.get('segment')!r}, not an integer >= 0"
    if rank is None or rank < 0:
        return f"its rank is {part.get('rank')!r}, not an integer >= 0"
    given = part.get("world_size")
    world = _int(given)
    if given is not None and (world is None or world < 1):
        return f"its world size is {given!r}, not an integer >= 1"
    if world is None and job is not None and job.segment == segment:
        world = job.world_size
    if world is not None and rank >= world:
        return f"its rank {rank} is outside its world of {world} (ranks 0 to {world - 1})"
    if (
        job is not None
        and job.segment == segment
        and job.world_size is not None
        and part.get("world_size") is not None
        and world != job.world_size
    ):
        return (
            f"it says segment {segment} had {world} ranks; the job's segment {segment} "
            f"had {job.world_size}"
        )
    if name is not None:
        if (segment, rank) == (0, 0):
            return "it says rank 0 of segment 0, whose place is the run directory itself"
        if name != part_name(segment, rank):
            return (
                f"it says segment {segment}, rank {rank}, so its folder would be "
                f"{part_name(segment, rank)}"
            )
    theirs = part.get("job_id")
    if job is not None and job.job_id is not None:
        if theirs is None:
            return f"it has no job id; this job is {job.job_id}"
        if str(theirs) != job.job_id:
            return f"it belongs to job {theirs}, not to this job ({job.job_id})"
    elif job is not None and theirs is not None:
        return f"it belongs to job {theirs}; this run has no job id (it is no rank of it)"
    return None
