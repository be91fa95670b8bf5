"""``greentrack merge DEST SRC...``: one job's run directories from several hosts, into one.

On a cluster without a shared file system each node writes its ranks' parts into its own copy
of the run directory. Copy those directories to one place (rsync, scp) and merge them: every
part lands where a shared file system would have put it (rank 0 of segment 0 in ``DEST``,
rank R of segment S in ``DEST/parts/seg<S>-rank<R>``). Parts already there with the same run
id are skipped.

Every part is checked first (greentrack.rundir.parts: the job's id, a rank and segment that
are a place in the job, a folder named after them, a readable ``meta.json``); if any is
refused, or would replace a different run, nothing at all is copied and each refused part gets
one line. Only regular files inside the sources are copied: no symbolic link is followed or
copied (each is skipped with a note).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.errors import PartError, RunFormatError
from greentrack.numbers import plural
from greentrack.rundir.format import META, PARTS, segment_dir
from greentrack.rundir.parts import Job, job_of, name_order, part_problem, place_of
from greentrack.rundir.reader import read_meta

REFUSED = "merge only the directories of one job (move it out of the source, or fix its meta.json)"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "merge",
        help="merge one job's run directories from several hosts into one",
        description="Merge the run directories that the nodes of one distributed job wrote "
        "on their own disks (no shared file system) into DEST: every rank's part lands where "
        "it belongs. Nothing is overwritten; if any part belongs to another job or is no valid "
        "rank of this one, nothing is copied. Only regular files are copied, no symbolic link.",
    )
    p.add_argument(
        "dest", type=Path, metavar="DEST", help="the merged run directory (created if missing)"
    )
    p.add_argument("sources", type=Path, nargs="+", metavar="SRC", help="run directories")


@dataclass
class _Found:
    """A run directory in a source: the source itself (``name`` None) or one of its parts."""

    path: Path
    name: str | None
    meta: dict[str, Any]


def _own_file(path: Path) -> bool:
    """Whether ``path`` is a regular file, not reached through a symbolic link."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _link_note(path: Path) -> str:
    return f"skipped {path}: a symbolic link (merge copies only regular files inside a source)"


def _scan(src: Path, notes: list[str], problems: list[str]) -> list[_Found]:
    """The run directories in ``src``: itself (with a meta.json) and its parts."""
    if not src.is_dir():
        problems.append(f"{src} is not a directory: pass the run directories copied from each host")
        return []
    dirs: list[tuple[Path, str | None]] = []
    if (src / META).is_symlink():
        notes.append(_link_note(src / META))
    elif _own_file(src / META):
        dirs.append((src, None))
    parts = src / PARTS
    if parts.is_symlink():
        notes.append(_link_note(parts))
    elif parts.is_dir():
        for p in sorted(parts.iterdir(), key=lambda p: name_order(p.name)):
            if p.is_symlink():
                notes.append(_link_note(p))
            elif not p.is_dir():
                notes.append(f"skipped {p}: a file where parts hold run directories")
            elif (p / META).is_symlink():
                notes.append(_link_note(p / META))
            elif not _own_file(p / META):
                notes.append(f"skipped {p}: it has no {META} (not a run directory)")
            else:
                dirs.append((p, p.name))
    if not dirs:
        problems.append(f"{src} holds no run directory (no {META}, no {PARTS}/)")
    found = []
    for path, name in dirs:
        try:
            found.append(_Found(path, name, read_meta(path / META)))
        except RunFormatError as e:
            problems.append(f"{path} refused: {e}")
    return found


def _job(dest: Path, found: list[_Found], problems: list[str]) -> Job:
    """The job being merged: DEST's root, else a source's root, else the first rank that ran
    (lowest segment, then rank) among DEST's parts and the sources'."""
    if (dest / META).exists():
        try:
            return job_of(read_meta(dest / META))
        except RunFormatError as e:
            problems.append(f"{dest} (DEST) cannot be merged into: {e}")
            return Job()
    for f in found:
        if f.name is None and "part" not in f.meta:
            return Job()  # a run of one process
        if f.name is None and place_of(f.meta) == (0, 0):
            return job_of(f.meta)
    leads: list[tuple[tuple[int, int, str], dict[str, Any]]] = [
        (name_order(f.name or ""), f.meta) for f in found if f.name is not None
    ]
    if (dest / PARTS).is_dir():
        for p in (dest / PARTS).iterdir():
            if _own_file(p / META):
                try:
                    leads.append((name_order(p.name), read_meta(p / META)))
                except RunFormatError:
                    continue
    for _, meta in sorted(leads, key=lambda lead: lead[0]):
        if part_problem(meta, None, None) is None:
            return job_of(meta)
    return Job()


def _problem(f: _Found, job: Job) -> str | None:
    if f.name is None and "part" not in f.meta:  # a run of one process: the root, no job id
        return None if job.job_id is None else f"it has no job id; this job is {job.job_id}"
    return part_problem(f.meta, f.name, job)


def merge(dest: Path, sources: list[Path], notes: list[str] | None = None) -> tuple[int, int]:
    """Copy every part of ``sources`` into ``dest``; returns (copied, already there).

    Raises :class:`PartError` (one line per refused part; nothing copied) when a part does not
    belong to the job or would replace another run. What was skipped (symbolic links, folders
    without a run) is added to ``notes``.
    """
    notes = [] if notes is None else notes
    problems: list[str] = []
    found = [f for src in sources for f in _scan(src, notes, problems)]
    job = _job(dest, found, problems)
    plan: dict[Path, _Found] = {}
    skipped = 0
    for f in found:
        problem = _problem(f, job)
        if problem is not None:
            problems.append(f"{f.path} refused: {problem}; {REFUSED}")
            continue
        segment, rank = place_of(f.meta) or (0, 0)
        target = segment_dir(dest, segment, rank)
        other = plan.get(target)
        if other is not None:
            if other.meta.get("run_id") == f.meta.get("run_id"):
                skipped += 1
            else:
                problems.append(
                    f"{f.path} refused: {other.path} is segment {segment}, rank {rank} too, "
                    f"another run of it; {REFUSED}"
                )
            continue
        if (target / META).exists():
            try:
                theirs = read_meta(target / META)
            except RunFormatError as e:
                problems.append(f"{f.path} refused: {target} holds a damaged run: {e}")
                continue
            if theirs.get("run_id") == f.meta.get("run_id"):
                skipped += 1
                continue
            problems.append(
                f"{f.path} refused: {target} already holds another run ({theirs.get('run_id')}) "
                "and would be replaced; move one of them elsewhere"
            )
            continue
        plan[target] = f
    if problems:
        raise PartError([f"{line}; nothing was copied" for line in problems])
    for target, f in plan.items():
        _copy_run(f.path, target, notes)
    return len(plan), skipped


def _copy_run(src: Path, dst: Path, notes: list[str], top: bool = True) -> None:
    """Copy the regular files and folders of ``src`` into ``dst`` (not a run's ``parts/``),
    following no symbolic link; a run's ``meta.json`` last, so that a copy cut short is not
    yet a run (merging again completes it)."""
    dst.mkdir(parents=True, exist_ok=True)
    last = []
    for item in sorted(src.iterdir()):
        if top and item.name == PARTS:
            continue
        mode = item.lstat().st_mode
        if stat.S_ISLNK(mode):
            notes.append(_link_note(item))
        elif stat.S_ISDIR(mode):
            _copy_run(item, dst / item.name, notes, top=False)
        elif not stat.S_ISREG(mode):
            notes.append(f"skipped {item}: not a regular file")
        elif top and item.name == META:
            last.append(item)
        else:
            _copy_file(item, dst / item.name, notes)
    for item in last:
        _copy_file(item, dst / item.name, notes)


def _copy_file(src: Path, dst: Path, notes: list[str]) -> None:
    """Copy one regular file, opened without following a link (one swapped in after the
    check is refused by the kernel)."""
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        if src.is_symlink():
            notes.append(_link_note(src))
            return
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            notes.append(f"skipped {src}: not a regular file")
            return
        with dst.open("wb") as out:
            shutil.copyfileobj(f, out)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def cmd_merge(args: argparse.Namespace) -> int:
    from greentrack.errors import GreentrackError

    notes: list[str] = []
    same = [s for s in args.sources if Path(s).resolve() == Path(args.dest).resolve()]
    if same:  # merging a run into itself copies nothing and would say it merged
        print(
            f"greentrack: merge: {same[0]} is the destination itself; give the folders that "
            "hold the other hosts' parts (DEST SOURCE...)",
            file=sys.stderr,
        )
        return 2
    try:
        copied, skipped = merge(args.dest, list(args.sources), notes)
    except PartError as e:
        for line in notes:
            print(f"greentrack: note: {line}", file=sys.stderr)
        for line in e.lines:
            print(f"greentrack: {line}", file=sys.stderr)
        return 2
    except OSError as e:
        from greentrack.cli.values import os_error

        print(f"greentrack: merge: {os_error(e)}", file=sys.stderr)
        return 2
    except (GreentrackError, ValueError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    for line in notes:
        print(f"greentrack: note: {line}", file=sys.stderr)
    print(
        f"greentrack: merged {plural(copied, 'part')} into {args.dest} ({skipped} already there)",
        file=sys.stderr,
    )
    return 0
