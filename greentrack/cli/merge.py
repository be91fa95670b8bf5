"""``greentrack merge DEST SRC...``: one job's run directories from several hosts, into one.

On a cluster without a shared file system each node writes its ranks' parts into its own copy
of the run directory. Copy those directories to one place (rsync, scp) and merge them: every
part lands where a shared file system would have put it (rank 0 of segment 0 in ``DEST``,
rank R of segment S in ``DEST/parts/seg<S>-rank<R>``). Parts already there with the same run
id are skipped; a different run in the same place, or a part of another job, is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "merge",
        help="merge one job's run directories from several hosts into one",
        description="Merge the run directories that the nodes of one distributed job wrote "
        "on their own disks (no shared file system) into DEST: every rank's part lands where "
        "it belongs. Nothing is overwritten; parts of another job are refused.",
    )
    p.add_argument(
        "dest", type=Path, metavar="DEST", help="the merged run directory (created if missing)"
    )
    p.add_argument("sources", type=Path, nargs="+", metavar="SRC", help="run directories")


def _parts(src: Path) -> list[Path]:
    out = [src] if (src / "meta.json").exists() else []
    parts = src / "parts"
    if parts.is_dir():
        out += sorted(p for p in parts.iterdir() if (p / "meta.json").exists())
    return out


def _where(run: Path, meta: dict[str, Any], dest: Path) -> Path:
    from greentrack.rundir.format import PARTS, part_name

    part = meta.get("part") or {}
    segment, rank = int(part.get("segment", 0)), int(part.get("rank", 0))
    return dest if (segment, rank) == (0, 0) else dest / PARTS / part_name(segment, rank)


def merge(dest: Path, sources: list[Path]) -> tuple[int, int]:
    """Copy every part of ``sources`` into ``dest``; returns (copied, already there)."""
    copied = skipped = 0
    jobs: set[str] = set()
    if (dest / "meta.json").exists():
        own = json.loads((dest / "meta.json").read_text(encoding="utf-8")).get("part") or {}
        if own.get("job_id") is not None:
            jobs.add(str(own["job_id"]))
    for src in sources:
        found = _parts(src)
        if not found:
            raise ValueError(f"{src} holds no run directory (no meta.json, no parts/)")
        for run in found:
            meta = json.loads((run / "meta.json").read_text(encoding="utf-8"))
            job = (meta.get("part") or {}).get("job_id")
            if job is not None:
                jobs.add(str(job))
            if len(jobs) > 1:
                raise ValueError(
                    f"{run} belongs to job {job}, another source to job {sorted(jobs)[0]}: "
                    "merge the directories of one job only"
                )
            target = _where(run, meta, dest)
            if (target / "meta.json").exists():
                theirs = json.loads((target / "meta.json").read_text(encoding="utf-8"))
                if theirs.get("run_id") == meta.get("run_id"):
                    skipped += 1
                    continue
                raise ValueError(
                    f"{target} already holds another run ({theirs.get('run_id')}): {run} "
                    "would replace it; nothing was changed for it"
                )
            target.mkdir(parents=True, exist_ok=True)
            for item in run.iterdir():
                if item.name == "parts":
                    continue
                if item.is_dir():
                    shutil.copytree(item, target / item.name)
                else:
                    shutil.copy2(item, target / item.name)
            copied += 1
    return copied, skipped


def cmd_merge(args: argparse.Namespace) -> int:
    from greentrack.errors import GreentrackError

    try:
        copied, skipped = merge(args.dest, list(args.sources))
    except (GreentrackError, ValueError, OSError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    print(
        f"greentrack: merged {copied} part(s) into {args.dest} ({skipped} already there)",
        file=sys.stderr,
    )
    return 0
