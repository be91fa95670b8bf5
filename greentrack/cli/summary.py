"""``greentrack summary RUN_DIR``: the run's energy (and CO2e) from its account."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "summary",
        help="print the energy and CO2e summary of a run directory",
        description="Print what a run used: energy per component with its range, the "
        "federated parts of a Flower server run, CO2e, spans. Every format shows the same "
        "figures (those of `greentrack report`).",
    )
    p.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        help="the run directory: the folder a run wrote (track(run_dir=...), greentrack run "
        "--run-dir, a callback's run_dir; default runs/<UTC time>-<id>)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "md"),
        default="text",
        help="text (default), json (the run's account) or md (Markdown)",
    )


def cmd_summary(args: argparse.Namespace) -> int:
    from greentrack.api import summarize
    from greentrack.errors import GreentrackError

    try:
        summary = summarize(args.run_dir)
    except (GreentrackError, ValueError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(summary.to_dict(), indent=2, allow_nan=False))
    elif args.format == "md":
        print(summary.to_markdown())
    else:
        print(summary)
    return 0
